//! Resuming a run from its latest checkpoint: what must hold before, and the metrics written
//! after the checkpoint, which the resumed run writes again.

use super::checkpoint::{self, TrainingState};
use crate::config::Experiment;
use crate::rundir::{RunDir, RunDirError, write_atomic};
use std::path::PathBuf;

/// Why a run cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(
        "{0}: nothing to resume from: checkpoints/latest.safetensors does not exist (the run stopped before its first checkpoint); start it again"
    )]
    NoCheckpoint(PathBuf),
    #[error(
        "{dir}: the run already finished its {epochs} epochs; to train on, raise them, e.g. --set train.epochs={more}"
    )]
    Finished {
        dir: PathBuf,
        epochs: u32,
        more: u32,
    },
}

/// The checkpoint a resumed run starts from.
pub fn latest(run: &RunDir) -> PathBuf {
    run.checkpoints_dir().join("latest.safetensors")
}

/// Checks that `run` can go on under `experiment` (its config.yaml, perhaps with --set
/// overrides), and stores the experiment if the overrides changed it.
pub fn prepare(run: &RunDir, experiment: &Experiment) -> anyhow::Result<TrainingState> {
    let path = latest(run);
    if !path.is_file() {
        return Err(ResumeError::NoCheckpoint(run.root().to_owned()).into());
    }
    let state = checkpoint::read_state(&path)?;
    if state.epoch >= experiment.train.epochs {
        return Err(ResumeError::Finished {
            dir: run.root().to_owned(),
            epochs: experiment.train.epochs,
            more: experiment.train.epochs * 2,
        }
        .into());
    }
    // A process killed while writing leaves its temporary file behind; the real files are whole.
    for dir in [run.root().to_owned(), run.checkpoints_dir()] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let stored = std::fs::read_to_string(run.config_path()).unwrap_or_default();
    let yaml = experiment.to_yaml();
    if stored != yaml {
        write_atomic(&run.config_path(), yaml.as_bytes())?;
    }
    Ok(state)
}

/// The lines of a metrics.jsonl text measured at or before optimiser step `step`, unchanged;
/// later rows and a torn last line are dropped.
pub fn rows_up_to(text: &str, step: u64) -> String {
    text.lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("step")?.as_u64())
                .is_some_and(|s| s <= step)
        })
        .flat_map(|line| [line, "\n"])
        .collect()
}

/// Rewrites metrics.jsonl without the rows measured after `step`; returns how many went.
pub fn truncate_metrics(run: &RunDir, step: u64) -> Result<usize, RunDirError> {
    let path = run.metrics_path();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let kept = rows_up_to(&text, step);
    let dropped = text.lines().count() - kept.lines().count();
    if dropped > 0 {
        write_atomic(&path, kept.as_bytes())?;
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_after_the_checkpoint_and_torn_lines_are_dropped() {
        let text =
            "{\"step\":0,\"a\":1}\n{\"step\":79,\"a\":2}\n{\"step\":158,\"a\":3}\n{\"step\":1";
        assert_eq!(
            rows_up_to(text, 79),
            "{\"step\":0,\"a\":1}\n{\"step\":79,\"a\":2}\n"
        );
        assert_eq!(rows_up_to(text, 0), "{\"step\":0,\"a\":1}\n");
        assert_eq!(rows_up_to("", 5), "");
    }
}
