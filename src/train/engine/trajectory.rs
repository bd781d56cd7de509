//! The run's path: the SGD iterate at every N-th epoch end (and the initial weights) appended
//! to trajectory/ ([`crate::trajectory::store`]).

use super::{Engine, EngineError};
use crate::protocol::Event;
use crate::trajectory::{TrajectoryPoint, store};

impl Engine {
    /// Keeps the SGD iterate of this epoch end (`snapshot`: it went into the SWA average) if
    /// the experiment keeps this epoch's and it is not stored yet (a resumed run may hold it).
    /// Non-finite weights are no place on a path.
    pub(super) fn keep_iterate(&mut self, snapshot: bool) -> Result<(), EngineError> {
        let every = self.exp.checkpoint.trajectory_every_epochs;
        let epoch = self.state.epoch;
        if every == 0 || !epoch.is_multiple_of(every) || !self.sgd.is_finite() {
            return Ok(());
        }
        let stored = store::read_index(&self.run)?;
        if stored
            .as_ref()
            .and_then(|i| i.points.last())
            .is_some_and(|p| p.step >= self.state.step)
        {
            return Ok(());
        }
        let weights = Vec::<f32>::try_from(
            &self
                .sgd
                .flat()
                .to_device(tch::Device::Cpu)
                .to_kind(tch::Kind::Float),
        )
        .map_err(|e| crate::model::ModelError::State(format!("the iterate cannot be read: {e}")))?;
        let point = TrajectoryPoint {
            epoch,
            step: self.state.step,
            swa_snapshot: snapshot,
        };
        store::append(&self.run, point, &weights)?;
        // Planes measured earlier draw the path as it grows.
        let (grown, problems) =
            crate::probe::runner::plane::path::extend(&self.run, &self.sgd, point, self.sgd.flat());
        for problem in problems {
            self.events.log(problem);
        }
        for plane in grown {
            self.events.send(Event::PlanePath {
                id: plane.id,
                path: plane.path,
            });
        }
        Ok(())
    }
}
