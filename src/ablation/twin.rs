//! The no-BN twin: the same experiment (seed, data order, schedule) with `norm: none`,
//! trained in RUN_DIR/twin-nobn/ for the BN-vs-none arm of an ablation.

use crate::config::{Arch, Experiment, Norm};
use crate::rundir::RunDir;
use crate::rundir::{RunDirError, RunLock};
use std::path::PathBuf;

/// Why a run has no twin, if it cannot have one: a TorchScript model's no-BN variant cannot
/// be derived, only named (`ablation.twin_model`).
pub fn unavailable(experiment: &Experiment) -> Option<String> {
    let named = experiment
        .ablation
        .as_ref()
        .is_some_and(|a| a.twin_model.is_some());
    (experiment.model.arch == Arch::Torchscript && !named).then(|| {
        "the no-BN twin of a TorchScript model cannot be derived from it; set ablation.twin_model to the file of your no-BN variant (the twin arm is left out)".to_owned()
    })
}

/// The experiment of the no-BN twin: identical but for `norm: none` (for a TorchScript
/// model, its named no-BN variant; see [`unavailable`]).
pub fn twin_of(experiment: &Experiment) -> Experiment {
    let mut twin = experiment.clone();
    twin.model.norm = Norm::None;
    if let Some(variant) = experiment
        .ablation
        .as_ref()
        .and_then(|a| a.twin_model.clone())
    {
        twin.model.path = Some(variant);
    }
    twin.name = format!("{}-nobn", experiment.name);
    twin.ablation = None;
    twin
}

/// Where a run's twin lives.
pub fn twin_dir(run: &RunDir) -> PathBuf {
    run.root().join("twin-nobn")
}

/// A twin ready to train: its experiment, its run directory (locked for as long as this
/// lives) and whether it resumes from a checkpoint.
pub struct PreparedTwin {
    pub experiment: Experiment,
    pub run_dir: RunDir,
    pub resume: bool,
    pub lock: RunLock,
}

/// The twin of the run in `run` under `experiment`, ready to train. Its directory is created,
/// or opened to resume when it has a checkpoint; a twin killed before its first checkpoint
/// starts again from scratch (it is derived data). The dashboard and `valleys ablate --twin`
/// both start their twins from here.
pub fn prepare(run: &RunDir, experiment: &Experiment) -> Result<PreparedTwin, RunDirError> {
    let twin = twin_of(experiment);
    let root = twin_dir(run);
    let resume = root.join("checkpoints/latest.safetensors").is_file();
    let run_dir = if root.join("config.yaml").is_file() {
        RunDir::open(&root)?
    } else {
        RunDir::create(&root, &twin)?
    };
    let lock = run_dir.lock()?;
    if !resume {
        // Whatever a killed first attempt wrote is replaced.
        for stale in [run_dir.metrics_path(), run_dir.run_info_path()] {
            match std::fs::remove_file(&stale) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(RunDirError::Io {
                        path: stale,
                        action: "cannot remove",
                        source: e,
                    });
                }
                _ => {}
            }
        }
        run_dir.store_experiment(&twin)?;
    }
    Ok(PreparedTwin {
        experiment: twin,
        run_dir,
        resume,
        lock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_twin_killed_before_its_first_checkpoint_starts_again_and_is_locked() {
        let tmp = tempfile::tempdir().unwrap();
        let exp = crate::rundir::tests::experiment();
        let run = RunDir::create(&tmp.path().join("r"), &exp).unwrap();
        let first = prepare(&run, &exp).unwrap();
        assert!(!first.resume);
        std::fs::write(first.run_dir.metrics_path(), "{\"half\": ").unwrap();
        let busy = prepare(&run, &exp)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(busy.contains("another valleys process"), "{busy}");
        drop(first);
        let again = prepare(&run, &exp).unwrap();
        assert!(!again.resume && !again.run_dir.metrics_path().exists());
        assert_eq!(again.experiment.model.norm, Norm::None);
    }
}
