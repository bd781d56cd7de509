//! Resuming a run from its latest checkpoint: what must hold before, and the metrics written
//! after the checkpoint, which the resumed run writes again.

use super::checkpoint::{self, CheckpointError, TrainingState};
use crate::config::Experiment;
use crate::model::Layout;
use crate::rundir::{RunDir, RunDirError, write_atomic};
use std::path::PathBuf;

/// Why a run cannot be resumed. Each is input the user can change.
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
    #[error(
        "{dir}: {field} cannot change when resuming (it changes the tensors the checkpoint holds: {problem}); start a new run for it"
    )]
    Changed {
        dir: PathBuf,
        field: String,
        problem: String,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// What resuming a run will do.
#[derive(Debug)]
pub enum Resumption {
    /// Train on from this state.
    From(TrainingState),
    /// The run had finished all its epochs but was killed before it said so: what was
    /// recovered (the final checkpoint, the outcome in run.json), nothing to train.
    Recovered(Vec<String>),
}

/// The checkpoint a resumed run starts from.
pub fn latest(run: &RunDir) -> PathBuf {
    run.checkpoints_dir().join("latest.safetensors")
}

/// Checks that `run` can go on under `experiment` (its config.yaml, perhaps with --set
/// overrides) with a model laid out as `layout`, and only then writes: stale temporary
/// files are removed, a finished run's missing final checkpoint and outcome are recovered,
/// and the experiment is stored if the overrides changed it. Call with the run's lock held.
pub fn prepare(
    run: &RunDir,
    stored: &Experiment,
    experiment: &Experiment,
    layout: &Layout,
) -> Result<Resumption, ResumeError> {
    let path = latest(run);
    let state = check_latest(run, stored, experiment, layout)?;
    run.remove_stale_temporaries();
    if state.epoch >= experiment.train.epochs {
        let recovered = recover_finished(run, &path)?;
        if recovered.is_empty() {
            return Err(ResumeError::Finished {
                dir: run.root().to_owned(),
                epochs: experiment.train.epochs,
                more: experiment.train.epochs * 2,
            });
        }
        return Ok(Resumption::Recovered(recovered));
    }
    if experiment != stored {
        run.store_experiment(experiment)
            .map_err(CheckpointError::from)?;
    }
    Ok(Resumption::From(state))
}

/// Checks, reading only its header, that the latest checkpoint exists and holds exactly the
/// tensors of a model laid out as `layout` under `experiment` (`stored`: the run's own
/// experiment, to name a changed field); returns its state.
pub fn check_latest(
    run: &RunDir,
    stored: &Experiment,
    experiment: &Experiment,
    layout: &Layout,
) -> Result<TrainingState, ResumeError> {
    let path = latest(run);
    if !path.is_file() {
        return Err(ResumeError::NoCheckpoint(run.root().to_owned()));
    }
    let header = checkpoint::read_header(&path)?;
    let changed = |field: &str, problem: String| ResumeError::Changed {
        dir: run.root().to_owned(),
        field: field.to_owned(),
        problem,
    };
    if let Err(e) = header.check_layout(&path, "sgd/", layout) {
        let field = changed_field(stored, experiment);
        return Err(changed(&field, e.to_string()));
    }
    let state = header.state.clone();
    if state.swa_n > 0 && !experiment.swa.enabled {
        return Err(changed(
            "swa.enabled",
            format!(
                "the checkpoint holds an SWA average of {} snapshots",
                state.swa_n
            ),
        ));
    }
    if state.swa_n > 0 {
        header.check_layout(&path, "swa/", layout)?;
    }
    Ok(state)
}

/// The first top-level field of the model or data that differs between the two experiments
/// (the cause of a different tensor set), e.g. "model.norm".
fn changed_field(stored: &Experiment, now: &Experiment) -> String {
    let fields = |e: &Experiment| -> Vec<(String, serde_yaml::Value)> {
        let value = serde_yaml::to_value(e).unwrap_or_default();
        ["model", "data"]
            .iter()
            .flat_map(|section| {
                value
                    .get(section)
                    .and_then(|v| v.as_mapping())
                    .into_iter()
                    .flatten()
                    .map(move |(k, v)| {
                        (
                            format!("{section}.{}", k.as_str().unwrap_or_default()),
                            v.clone(),
                        )
                    })
            })
            .collect()
    };
    let (before, after) = (fields(stored), fields(now));
    after
        .iter()
        .find(|(k, v)| before.iter().find(|(k2, _)| k2 == k).map(|(_, v2)| v2) != Some(v))
        .or_else(|| {
            before
                .iter()
                .find(|(k, _)| !after.iter().any(|(k2, _)| k2 == k))
        })
        .map_or_else(|| "the model".to_owned(), |(k, _)| k.clone())
}

/// A run whose latest checkpoint is at its last epoch, killed before its final checkpoint
/// or its outcome were written: writes them now (the final checkpoint is the latest one, as
/// a finished run writes it). Returns what was recovered.
fn recover_finished(run: &RunDir, latest: &std::path::Path) -> Result<Vec<String>, ResumeError> {
    let mut recovered = Vec::new();
    let final_path = run.checkpoints_dir().join("final.safetensors");
    if !final_path.is_file() {
        let bytes = std::fs::read(latest).map_err(|source| CheckpointError::Read {
            path: latest.to_owned(),
            source,
        })?;
        write_atomic(&final_path, &bytes).map_err(CheckpointError::from)?;
        recovered.push(format!(
            "recreated {} from latest.safetensors",
            final_path.display()
        ));
    }
    if run.outcome() != Some(crate::protocol::Outcome::Completed) {
        run.record_outcome(&crate::protocol::Outcome::Completed)
            .map_err(CheckpointError::from)?;
        recovered.push(format!(
            "recorded the outcome (completed) in {}",
            run.run_info_path().display()
        ));
    }
    Ok(recovered)
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
