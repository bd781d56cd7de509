//! A failure of the model inside the run (a TorchScript module that raises, a libtorch
//! operation that refuses its input): one line that names the model, the epoch and the batch,
//! with the run's checkpoint kept, instead of a panic of the worker.

use super::Engine;
use crate::protocol::Outcome;

/// What the engine was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Activity {
    /// Evaluating before the first step or after an epoch (`epoch` done, from 1).
    Evaluating { epoch: u32 },
    /// Training on batch `batch` (from 0) of `batches` in epoch `epoch` (from 0).
    Training {
        epoch: u32,
        batch: u32,
        batches: u32,
    },
}

impl Activity {
    /// "epoch 3, batch 7 of 6 (a training step)".
    pub fn describe(self) -> String {
        match self {
            Self::Evaluating { epoch: 0 } => "the evaluation before the first step".into(),
            Self::Evaluating { epoch } => format!("the evaluation after epoch {epoch}"),
            Self::Training {
                epoch,
                batch,
                batches,
            } => format!(
                "epoch {}, batch {} of {batches} (a training step)",
                epoch + 1,
                batch + 1
            ),
        }
    }
}

impl Engine {
    /// The outcome of a run whose model failed with `message` during `self.activity`. A
    /// training step that fails has not changed the weights, so the checkpoint written now
    /// holds the last completed batch (as a stop's does) and `--resume` starts again there;
    /// a failed evaluation keeps the checkpoint already on disk.
    pub(super) fn fail(&mut self, message: &str) -> Outcome {
        let activity = self.activity;
        let kept = match activity {
            Activity::Training { .. } => match self.save_checkpoint("latest") {
                Ok(()) if self.checkpoint_written => {
                    "the checkpoint holds the last completed batch".to_owned()
                }
                Ok(()) => "no checkpoint could be written (the weights are not finite)".into(),
                Err(e) => format!("the checkpoint could not be written: {e}"),
            },
            Activity::Evaluating { .. } if self.checkpoint_written => {
                "the last checkpoint is kept".into()
            }
            Activity::Evaluating { .. } => "no checkpoint had been written yet".into(),
        };
        let _ = self.metrics.sync();
        Outcome::Failed {
            message: format!(
                "the model {} failed in {}: {message}; {kept}",
                self.sgd.description(),
                activity.describe()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Activity;

    #[test]
    fn a_failure_names_the_epoch_and_batch_counted_from_one() {
        let at = Activity::Training {
            epoch: 2,
            batch: 6,
            batches: 6,
        };
        assert_eq!(at.describe(), "epoch 3, batch 7 of 6 (a training step)");
        assert_eq!(
            Activity::Evaluating { epoch: 0 }.describe(),
            "the evaluation before the first step"
        );
        assert_eq!(
            Activity::Evaluating { epoch: 4 }.describe(),
            "the evaluation after epoch 4"
        );
    }
}
