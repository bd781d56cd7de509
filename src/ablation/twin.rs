//! The no-BN twin: the same experiment (seed, data order, schedule) with `norm: none`,
//! trained in RUN_DIR/twin-nobn/ for the BN-vs-none arm of an ablation.

use crate::config::{Experiment, Norm};
use crate::rundir::RunDir;
use crate::rundir::RunDirError;
use std::path::PathBuf;

/// The experiment of the no-BN twin: identical but for `norm: none`.
pub fn twin_of(experiment: &Experiment) -> Experiment {
    let mut twin = experiment.clone();
    twin.model.norm = Norm::None;
    twin.name = format!("{}-nobn", experiment.name);
    twin.ablation = None;
    twin
}

/// Where a run's twin lives.
pub fn twin_dir(run: &RunDir) -> PathBuf {
    run.root().join("twin-nobn")
}

/// The twin of the run in `run` under `experiment`, ready to train: its experiment, its run
/// directory (created, or opened to resume when it has a checkpoint) and whether it resumes.
/// The dashboard and `valleys ablate --twin` both start their twins from here.
pub fn prepare(
    run: &RunDir,
    experiment: &Experiment,
) -> Result<(Experiment, RunDir, bool), RunDirError> {
    let twin = twin_of(experiment);
    let root = twin_dir(run);
    let resume = root.join("checkpoints/latest.safetensors").is_file();
    let run_dir = if resume {
        RunDir::open(&root)?
    } else {
        RunDir::create(&root, &twin)?
    };
    Ok((twin, run_dir, resume))
}
