//! Probes of a saved run (`valleys probe RUN_DIR`): the experiment rebuilt from config.yaml,
//! the weights from a checkpoint.

use super::runner::ProbeContext;
use crate::config::Experiment;
use crate::data::dataset::Dataset;
use crate::model::Model;
use crate::rundir::RunDir;
use crate::train::checkpoint::{self, CheckpointError, TrainingState};
use std::path::{Path, PathBuf};
use tch::Device;

/// Why a saved run could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    RunDir(#[from] crate::rundir::RunDirError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("loading the run's data: {0}")]
    Data(crate::data::DataError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

/// A run directory's experiment, data and models at one checkpoint.
pub struct SavedRun {
    pub run: RunDir,
    pub experiment: Experiment,
    pub data: Dataset,
    pub sgd: Model,
    pub swa: Option<Model>,
    pub scratch: Model,
    pub state: TrainingState,
    pub checkpoint: PathBuf,
}

/// `name` as a checkpoint of `run`: a path to a file, or a name under checkpoints/
/// ("latest", "final", "epoch-0010").
pub fn resolve_checkpoint(run: &RunDir, name: &str) -> Result<PathBuf, CheckpointError> {
    let as_path = Path::new(name);
    if as_path.is_file() {
        return Ok(as_path.to_owned());
    }
    let stem = name.trim_end_matches(".safetensors");
    let candidate = run.checkpoints_dir().join(format!("{stem}.safetensors"));
    if candidate.is_file() {
        return Ok(candidate);
    }
    let mut available: Vec<String> = std::fs::read_dir(run.checkpoints_dir())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .map(|n| n.trim_end_matches(".safetensors").to_owned())
                })
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    available.sort();
    Err(CheckpointError::NotFound {
        dir: run.checkpoints_dir(),
        name: name.to_owned(),
        available: {
            let mut listed = if available.is_empty() {
                "(none yet)".to_owned()
            } else {
                available.join(", ")
            };
            if stem == "final" && !available.is_empty() {
                listed += &format!(
                    " (a run writes 'final' when it finishes; if it was killed at the end, `valleys run --resume {}` completes it)",
                    run.root().display()
                );
            }
            listed
        },
    })
}

impl SavedRun {
    /// Rebuilds the run at `checkpoint` on `device`.
    pub fn load(dir: &Path, checkpoint_name: &str, device: Device) -> Result<Self, LoadError> {
        let run = RunDir::open(dir)?;
        let experiment = Experiment::load(&run.config_path(), &[])?;
        let checkpoint = resolve_checkpoint(&run, checkpoint_name)?;
        let data = Dataset::load(
            &experiment.data,
            experiment.eval.train_subset,
            experiment.seed,
            device,
        )
        .map_err(LoadError::Data)?;
        let build = || Model::build(&experiment.model, &data.input_shape, data.classes, device);
        let (sgd, swa_model, scratch) = (build()?, build()?, build()?);
        let loaded = checkpoint::load(&checkpoint, &sgd, Some(&swa_model))?;
        let swa = (loaded.state.swa_n > 0).then_some(swa_model);
        Ok(Self {
            run,
            experiment,
            data,
            sgd,
            swa,
            scratch,
            state: loaded.state,
            checkpoint,
        })
    }

    /// What a probe of these weights reads.
    pub fn context(&self) -> ProbeContext<'_> {
        ProbeContext {
            data: &self.data,
            sgd: &self.sgd,
            swa: self.swa.as_ref(),
            scratch: &self.scratch,
            seed: self.experiment.seed,
            eval_batch: self
                .experiment
                .eval
                .batch_for(self.sgd.flat().device().is_cuda()),
            bn_pass: crate::train::swa::bn_pass(&self.experiment, self.state.step),
            epoch: self.state.epoch,
            step: self.state.step,
            swa_n: self.state.swa_n,
            source: self.checkpoint.display().to_string(),
        }
    }
}
