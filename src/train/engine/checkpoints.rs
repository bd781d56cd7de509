//! Checkpoints of a run: writing them (never from non-finite weights) and resuming from the
//! latest one.

use super::EngineError;
use super::{Engine, Running};
use crate::protocol::{Event, Iterate, Split};
use crate::train::checkpoint::{self, TrainingState};
use crate::train::resume;
use std::path::PathBuf;
use std::time::Instant;

impl Engine {
    /// Restores the run from checkpoints/latest.safetensors: weights, momentum, the SWA
    /// average and its count, the position in the schedule and the epoch's running loss. The
    /// metrics written after that checkpoint are dropped; the run writes them again.
    pub fn resume(&mut self) -> Result<TrainingState, EngineError> {
        let state = self.load_latest()?;
        let dropped = resume::truncate_metrics(&self.run, state.step)?;
        crate::curvature::store::truncate_track(&self.run, state.step)?;
        crate::trajectory::store::truncate(&self.run, state.step)?;
        crate::probe::store::truncate_plane_paths(&self.run, state.step)?;
        self.checkpoint_written = true;
        self.initial_evaluated = state.step > 0
            || self
                .run
                .read_metrics()?
                .iter()
                .any(|r| r.step == 0 && r.split == Split::Test && r.iterate == Iterate::Sgd);
        // The file was replaced: append to the new one.
        self.metrics = self.run.metrics_writer()?;
        self.clock = Instant::now();
        self.resume_note = Some(format!(
            "resumed at epoch {} batch {} (step {}); {dropped} metric rows after it dropped",
            state.epoch, state.batch, state.step
        ));
        Ok(state)
    }

    /// Loads checkpoints/latest.safetensors into the models, the optimiser and the state, and
    /// writes nothing: what `valleys open` probes.
    pub fn load_latest(&mut self) -> Result<TrainingState, EngineError> {
        let path = resume::latest(&self.run);
        let swa_model = self.swa.as_ref().map(|s| &s.model);
        let loaded = checkpoint::load(&path, &self.sgd, swa_model)?;
        let state = loaded.state;
        self.opt.set_momentum_buffer(loaded.momentum);
        if let Some(swa) = self.swa.as_mut() {
            swa.restore(state.swa_n, state.swa_bn_fresh);
        }
        let device = self.sgd.flat().device();
        self.running = Running::new(
            device,
            state.running_loss_sum,
            state.running_correct,
            state.running_seen,
        );
        self.state = state.clone();
        Ok(state)
    }

    /// Writes checkpoints/<name>.safetensors, unless the weights are no longer finite.
    pub fn save_checkpoint(&mut self, name: &str) -> Result<(), EngineError> {
        if self.diverged || !self.sgd.is_finite() {
            self.events
                .log("checkpoint skipped: the weights are not finite");
            return Ok(());
        }
        let (_, _, loss_sum, correct) = self.running.read();
        let state = TrainingState {
            swa_n: self.swa.as_ref().map_or(0, |s| s.n),
            swa_bn_fresh: self.swa.as_ref().is_some_and(|s| s.bn_is_fresh()),
            elapsed_s: self.elapsed(),
            running_loss_sum: loss_sum,
            running_correct: correct,
            running_seen: self.running.seen,
            ..self.state.clone()
        };
        let path: PathBuf = self
            .run
            .checkpoints_dir()
            .join(format!("{name}.safetensors"));
        let swa = self.swa.as_ref().filter(|s| s.n > 0).map(|s| &s.model);
        checkpoint::save(&path, &self.sgd, swa, self.opt.momentum_buffer(), &state)?;
        self.checkpoint_written = true;
        self.events.send(Event::CheckpointWritten {
            path,
            epoch: state.epoch,
            step: state.step,
        });
        Ok(())
    }
}
