//! What ends an epoch: its running training loss recorded, a snapshot added to the SWA
//! average when one is due, the evaluation, and the checkpoints the experiment keeps.

use super::running::Running;
use super::{Engine, EngineError};
use crate::protocol::{Iterate, Split};

impl Engine {
    /// Ends the epoch trained at learning rate `lr`; sets `diverged` when a loss is not finite.
    pub(super) fn finish_epoch(&mut self, lr: f64) -> Result<(), EngineError> {
        let (loss, acc, _, _) = self.running.read();
        self.state.epoch += 1;
        self.state.batch = 0;
        let seen = self.running.seen as usize;
        self.running = Running::new(self.sgd.flat().device(), 0.0, 0.0, 0);
        if !loss.is_finite() {
            self.diverged = true;
            return Ok(());
        }
        self.record(Iterate::Sgd, Split::TrainRunning, lr, loss, acc, seen, None)?;

        let epoch = self.state.epoch;
        let s = &self.exp.swa;
        let mut snapshot = false;
        if let Some(swa) = self.swa.as_mut()
            && let Some(every) = s.every_epochs
            && epoch >= s.start_epoch.unwrap_or(u32::MAX)
            && (epoch - s.start_epoch.unwrap_or(0)).is_multiple_of(every)
        {
            swa.add(&self.sgd);
            snapshot = true;
            let plural = if swa.n == 1 { "" } else { "s" };
            let n = swa.n;
            self.events.log(format!(
                "epoch {epoch}: SWA average of {n} snapshot{plural}"
            ));
        }
        // Before the checkpoint: a kill between the two resumes from the previous checkpoint,
        // which cuts this iterate and stores it again.
        self.keep_iterate(snapshot)?;
        let last = epoch == self.exp.train.epochs;
        if (epoch.is_multiple_of(self.exp.eval.every_epochs) || last) && !self.evaluate(lr)? {
            self.diverged = true;
            return Ok(());
        }
        if epoch.is_multiple_of(self.exp.checkpoint.every_epochs) || last {
            self.save_checkpoint("latest")?;
        }
        let keep = self.exp.checkpoint.keep_every_epochs;
        if keep > 0 && epoch.is_multiple_of(keep) {
            self.save_checkpoint(&format!("epoch-{epoch:04}"))?;
        }
        self.metrics.sync()?;
        Ok(())
    }
}
