//! Checkpoints in safetensors: the SGD iterate and the SWA average (each with BN statistics,
//! under the model's parameter names), the momentum buffer, and where training stood.
//!
//! Keys: `sgd/<name>`, `swa/<name>`, `momentum/<param name>`. The metadata holds
//! `format = valleys-checkpoint`, the model description and the [`TrainingState`] as JSON.
//! Files are written atomically, so an interrupted write leaves the previous checkpoint.

use crate::model::Model;
use crate::rundir::{RunDirError, write_atomic};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

const FORMAT: &str = "valleys-checkpoint";

/// Where training stood when a checkpoint was written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// Completed epochs.
    pub epoch: u32,
    /// Batches completed within the next epoch (0 at an epoch boundary).
    pub batch: u32,
    /// Completed optimiser steps.
    pub step: u64,
    /// Snapshots in the SWA average.
    pub swa_n: u64,
    /// Seconds of training and evaluation so far.
    pub elapsed_s: f64,
    /// Training-mode loss sum, correct count and samples of the unfinished epoch.
    pub running_loss_sum: f64,
    pub running_correct: f64,
    pub running_seen: u64,
    /// Whether the SWA average's BN statistics in the checkpoint match its weights.
    #[serde(default)]
    pub swa_bn_fresh: bool,
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Write(#[from] RunDirError),
    #[error("{path}: cannot read the checkpoint: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valleys checkpoint ({problem})")]
    Corrupt { path: PathBuf, problem: String },
    #[error("{dir}: no checkpoint '{name}'; expected one of: {available}")]
    NotFound {
        dir: PathBuf,
        name: String,
        available: String,
    },
    #[error("{path}: written for another model ({problem}); this experiment builds {model}")]
    OtherModel {
        path: PathBuf,
        problem: String,
        model: String,
    },
}

/// What a checkpoint holds besides the weights loaded into the models.
#[derive(Debug)]
pub struct Loaded {
    pub state: TrainingState,
    pub momentum: Option<Tensor>,
    /// Description of the model that wrote it.
    pub model: String,
}

struct Bytes {
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn to_bytes(t: &Tensor) -> Bytes {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let numel = t.numel();
    let mut data = vec![0u8; numel * 4];
    t.copy_data_u8(&mut data, numel);
    Bytes {
        shape: t.size().iter().map(|&d| d as usize).collect(),
        data,
    }
}

/// Writes a checkpoint of `sgd`, the optional SWA average and momentum buffer.
pub fn save(
    path: &Path,
    sgd: &Model,
    swa: Option<&Model>,
    momentum: Option<&Tensor>,
    state: &TrainingState,
) -> Result<(), CheckpointError> {
    let mut tensors: Vec<(String, Bytes)> = Vec::new();
    for (prefix, model) in [("sgd/", Some(sgd)), ("swa/", swa)] {
        if let Some(model) = model {
            for (name, t) in model.named_state() {
                tensors.push((format!("{prefix}{name}"), to_bytes(&t)));
            }
        }
    }
    if let Some(buf) = momentum {
        for p in sgd.params() {
            let piece = buf.narrow(0, p.offset, p.numel).view(&p.shape[..]);
            tensors.push((format!("momentum/{}", p.name), to_bytes(&piece)));
        }
    }
    let views = tensors.iter().map(|(name, b)| {
        let view = TensorView::new(Dtype::F32, b.shape.clone(), &b.data)
            .expect("shape and data length agree by construction");
        (name.clone(), view)
    });
    let metadata = HashMap::from([
        ("format".to_owned(), FORMAT.to_owned()),
        ("model".to_owned(), sgd.description().to_owned()),
        (
            "state".to_owned(),
            serde_json::to_string(state).expect("state serialises"),
        ),
    ]);
    let bytes =
        safetensors::serialize(views, &Some(metadata)).map_err(|e| CheckpointError::Corrupt {
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
    write_atomic(path, &bytes)?;
    Ok(())
}

/// Reads only the training state of a checkpoint.
pub fn read_state(path: &Path) -> Result<TrainingState, CheckpointError> {
    let bytes = read(path)?;
    Ok(header(path, &bytes)?.0)
}

/// A checkpoint's header: where training stood, which model wrote it, and every tensor's
/// name and shape. Reads no tensor data.
#[derive(Debug)]
pub struct Header {
    pub state: TrainingState,
    pub model: String,
    pub tensors: BTreeMap<String, Vec<i64>>,
}

/// Reads a checkpoint's header.
pub fn read_header(path: &Path) -> Result<Header, CheckpointError> {
    let bytes = read(path)?;
    let (state, model) = header(path, &bytes)?;
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| CheckpointError::Corrupt {
            path: path.to_owned(),
            problem: format!("unreadable safetensors header: {e}"),
        })?;
    let tensors = meta
        .tensors()
        .into_iter()
        .map(|(name, info)| (name, info.shape.iter().map(|&d| d as i64).collect()))
        .collect();
    Ok(Header {
        state,
        model,
        tensors,
    })
}

impl Header {
    /// Checks that the tensors under `prefix` ("sgd/", "swa/") are exactly those of a model
    /// laid out as `layout`, with the same shapes: none missing, none extra.
    pub fn check_layout(
        &self,
        path: &Path,
        prefix: &str,
        layout: &crate::model::Layout,
    ) -> Result<(), CheckpointError> {
        let other = |problem: String| CheckpointError::OtherModel {
            path: path.to_owned(),
            problem: format!("{problem}; it was written by {}", self.model),
            model: layout.name.clone(),
        };
        for (name, shape) in layout.tensors() {
            let key = format!("{prefix}{name}");
            match self.tensors.get(&key) {
                None => return Err(other(format!("tensor {key} is missing"))),
                Some(found) if found != shape => {
                    return Err(other(format!(
                        "tensor {key} has shape {found:?}, the model expects {shape:?}"
                    )));
                }
                Some(_) => {}
            }
        }
        let expected: std::collections::BTreeSet<String> = layout
            .tensors()
            .map(|(name, _)| format!("{prefix}{name}"))
            .collect();
        if let Some(extra) = self
            .tensors
            .keys()
            .find(|k| k.starts_with(prefix) && !expected.contains(*k))
        {
            return Err(other(format!(
                "tensor {extra} is in the checkpoint but not in the model"
            )));
        }
        Ok(())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| CheckpointError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The training state and the description of the model that wrote the checkpoint.
fn header(path: &Path, bytes: &[u8]) -> Result<(TrainingState, String), CheckpointError> {
    let corrupt = |problem: String| CheckpointError::Corrupt {
        path: path.to_owned(),
        problem,
    };
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| corrupt(format!("unreadable safetensors header: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(corrupt("no valleys-checkpoint format tag".into()));
    }
    let state = meta
        .get("state")
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| corrupt("missing or unreadable training state".into()))?;
    Ok((state, meta.get("model").cloned().unwrap_or_default()))
}

/// Loads a checkpoint into `sgd` (and `swa` when given), checking that it fits the model.
pub fn load(path: &Path, sgd: &Model, swa: Option<&Model>) -> Result<Loaded, CheckpointError> {
    let bytes = read(path)?;
    let (state, written_by) = header(path, &bytes)?;
    let corrupt = |problem: String| CheckpointError::Corrupt {
        path: path.to_owned(),
        problem,
    };
    let tensors = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| corrupt(format!("unreadable tensors: {e}")))?;
    let device = sgd.flat().device();
    let lookup = |key: &str| -> Option<Tensor> {
        let view = tensors.tensor(key).ok()?;
        if view.dtype() != Dtype::F32 {
            return None;
        }
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        Some(Tensor::from_data_size(view.data(), &shape, Kind::Float).to_device(device))
    };
    let other_model = |e: crate::model::ModelError| CheckpointError::OtherModel {
        path: path.to_owned(),
        problem: format!("{e}; it was written by {written_by}"),
        model: sgd.description().to_owned(),
    };
    let extra = |prefix: &str, model: &Model| {
        let names: std::collections::HashSet<String> = model
            .named_state()
            .into_iter()
            .map(|(n, _)| format!("{prefix}{n}"))
            .collect();
        tensors
            .names()
            .into_iter()
            .find(|k| k.starts_with(prefix) && !names.contains(*k))
            .map(|k| {
                other_model(crate::model::ModelError::State(format!(
                    "tensor {k} is in the checkpoint but not in the model"
                )))
            })
    };
    if let Some(e) = extra("sgd/", sgd) {
        return Err(e);
    }
    sgd.load_named_state("sgd/", &lookup).map_err(other_model)?;
    if let Some(swa) = swa
        && state.swa_n > 0
    {
        swa.load_named_state("swa/", &lookup).map_err(other_model)?;
    }
    let pieces: Option<Vec<Tensor>> = sgd
        .params()
        .iter()
        .map(|p| lookup(&format!("momentum/{}", p.name)).map(|t| t.view([-1])))
        .collect();
    let momentum = pieces.map(|p| Tensor::cat(&p, 0));
    Ok(Loaded {
        state,
        momentum,
        model: written_by,
    })
}
