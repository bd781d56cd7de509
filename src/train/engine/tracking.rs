//! The curvature tracked while training (`curvature.every_epochs`): at the end of every N-th
//! epoch (and before the first) training waits while the top Hessian eigenvalue and the trace
//! of SGD and SWA are measured; the rows go to curvature/track.jsonl and to the dashboard.

use super::{Engine, EngineError};
use crate::config::curvature::RunDefaults;
use crate::curvature::{measure, store, track};
use crate::probe::runner::ProbeError;
use crate::protocol::Event;
use crate::train::probing::TrackingObserver;
use std::time::Instant;

impl Engine {
    /// The experiment as the run goes (after resumes and live changes).
    pub fn experiment(&self) -> &crate::config::Experiment {
        &self.exp
    }

    /// What the run gives curvature jobs' defaults.
    pub fn curvature_defaults(&self) -> RunDefaults {
        measure::run_defaults(&self.exp, &self.data)
    }

    /// Measures the curvature of this epoch end if the experiment tracks it and it has not been
    /// measured yet (a resumed run may already hold it). A measurement that fails is said in
    /// the log and tracking stops; training goes on. Returns false when a stop cut it short.
    pub(super) fn track_curvature(&mut self, lr: f64) -> Result<bool, EngineError> {
        let Some(every) = self.exp.curvature.every_epochs else {
            return Ok(true);
        };
        let epoch = self.state.epoch;
        if !epoch.is_multiple_of(every) || self.curvature_tracking_failed || self.diverged {
            return Ok(true);
        }
        let (stored, _) = store::read_track(&self.run);
        if stored
            .iter()
            .any(|r| r.epoch == epoch && r.step == self.state.step)
        {
            return Ok(true);
        }
        let spec = self.exp.curvature.for_tracking();
        let started = Instant::now();
        let label = format!("curvature at epoch {epoch}");
        let outcome = {
            let ctx = self.probe_context();
            let mut observer = TrackingObserver::new(&self.events, &self.stop, label.clone());
            measure::run(&ctx, &spec, self.curvature_defaults(), None, &mut observer)
        };
        self.waited_s += started.elapsed().as_secs_f64();
        match outcome {
            Ok(result) => {
                let rows = track::rows(&result, lr);
                store::append_track(&self.run, &rows)?;
                self.events.send(Event::CurvatureTracked(rows));
                Ok(true)
            }
            Err(ProbeError::Cancelled) => {
                self.events.log(format!(
                    "{label}: stopped before it finished; nothing written"
                ));
                Ok(false)
            }
            Err(e) => {
                self.curvature_tracking_failed = true;
                self.events.log(format!(
                    "{label}: {e}; curvature tracking is off for the rest of this run"
                ));
                Ok(true)
            }
        }
    }
}
