//! Sweeps: many runs of one experiment (seeds, models, BN on or off) as ordinary run
//! directories under one sweep directory, trained by child processes on this machine or by a
//! Slurm job array, and reported together.
//!
//! A sweep file names a base experiment and what varies:
//!
//! ```yaml
//! name: bn-seeds
//! experiment: ../quick.yaml       # relative to the sweep file
//! set: {train.epochs: 6}          # overrides of every variant
//! axes:                           # the cartesian product, the last axis fastest
//!   model.norm: [batch, none]
//!   seed: [1, 2, 3]
//! runs:                           # and/or an explicit list of overrides
//!   - {model.depth: 20}
//! probe: {directions: 10, range: auto}   # after training: random directions per centre
//! plane: {points: 11x11}                  # after training: a plane (as `valleys plane`;
//!                                         # tiles: N splits it into N jobs)
//! curvature: {samples: 256, top_k: 3}     # after training: the Hessian (as `valleys curvature`)
//! connect: {pairs: seeds}                # once all have trained: lines between runs (as `valleys connect`)
//! ablation: {twin: false, directions: 10} # after training, as in an experiment
//! slurm: {partition: gpu, gres: "gpu:1", cpus_per_task: 8, mem: 32G, time: "12:00:00"}
//! ```
//!
//! The sweep directory holds `sweep.yaml` (the file as resolved), `variants.json`, one
//! experiment file per variant under `variants/` (what its run trains), the runs under
//! `runs/<variant-id>/`, `jobs.json` (how it was launched), `job.sbatch` for Slurm and the
//! tasks' output under `logs/`.

mod dir;
pub mod pairs;
pub mod report;
mod sections;
pub mod slurm;
mod state;

use crate::config::Experiment;
use crate::config::ablation::AblationConfig;
use crate::config::probe::ProbeSpec;
use crate::probe::plane::PlaneSpec;
use crate::rundir::{RunDir, write_atomic};
use sections::{sweep_connect, sweep_curvature, sweep_plane, sweep_probe};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use dir::{JobEntry, Jobs, SweepDir};
pub use slurm::SlurmConfig;
pub use state::{AfterTraining, RunSet, VariantState, run_state};

/// Random directions probed through each centre after a variant has trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepProbe {
    pub directions: usize,
    /// The probe settings (as an experiment's `probe:` section).
    pub spec: ProbeSpec,
}

/// A sweep file, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepFile {
    pub name: String,
    /// The base experiment (absolute once resolved).
    pub experiment: PathBuf,
    pub set: Vec<(String, String)>,
    pub axes: Vec<(String, Vec<String>)>,
    pub runs: Vec<Vec<(String, String)>>,
    pub probe: Option<SweepProbe>,
    /// The plane to measure through each variant after training.
    pub plane: Option<PlaneSpec>,
    /// The plane's tiles (`plane: {tiles: N}`): bands of rows, each its own job under the
    /// sweep's executor (an array of its own on Slurm), merged into the same plane.
    pub plane_tiles: Option<usize>,
    /// The curvature job to run on each variant after training.
    pub curvature: Option<crate::config::curvature::CurvatureSpec>,
    /// Pairs of runs to connect once every variant has trained.
    pub connect: Option<pairs::SweepConnect>,
    pub ablation: Option<AblationConfig>,
    pub slurm: SlurmConfig,
}

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub index: usize,
    /// "003-model.norm=none-seed=1": the index and what it sets; the run's directory name.
    pub id: String,
    /// What the variant sets (the sweep's common `set:` not included).
    pub overrides: Vec<(String, String)>,
}

/// Why a sweep cannot start. Each names the file, the field or the variant.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("variant {id}: {message}")]
    Variant { id: String, message: String },
    #[error("{0}")]
    Dir(String),
}

/// Keys of the sweep file.
const KEYS: [&str; 11] = [
    "name",
    "experiment",
    "set",
    "axes",
    "runs",
    "probe",
    "plane",
    "curvature",
    "connect",
    "ablation",
    "slurm",
];

/// At most this many variants in one sweep.
pub const MAX_VARIANTS: usize = 10_000;

/// A YAML value as a `--set` takes it: scalars as written, the rest as JSON (a YAML flow).
fn scalar(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Null => "null".into(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn pairs(map: &serde_yaml::Mapping, what: &str) -> Result<Vec<(String, String)>, String> {
    map.iter()
        .map(|(k, v)| match k.as_str() {
            Some(k) => Ok((k.to_owned(), scalar(v))),
            None => Err(format!(
                "{what}: keys are field names such as seed or model.norm"
            )),
        })
        .collect()
}

/// `axes:`: each field with its non-empty list of values, as `--set` takes them.
fn axes(map: &serde_yaml::Mapping) -> Result<Vec<(String, Vec<String>)>, String> {
    map.iter()
        .map(|(k, v)| {
            let key = k.as_str().unwrap_or_default().to_owned();
            let values = v
                .as_sequence()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("axes.{key}: expected a non-empty list of values"))?;
            Ok((key, values.iter().map(scalar).collect()))
        })
        .collect()
}

/// `runs:`: a list of overrides, each a mapping of field: value.
fn runs(value: Option<&serde_yaml::Value>) -> Result<Vec<Vec<(String, String)>>, String> {
    match value {
        None => Ok(Vec::new()),
        Some(serde_yaml::Value::Sequence(list)) => list
            .iter()
            .enumerate()
            .map(|(i, r)| match r {
                serde_yaml::Value::Mapping(m) => pairs(m, &format!("runs[{i}]")),
                _ => Err(format!("runs[{i}]: expected a mapping of field: value")),
            })
            .collect(),
        Some(_) => Err("runs: expected a list of overrides".into()),
    }
}

impl SweepFile {
    /// Reads a sweep file; relative paths in it are relative to the file.
    pub fn load(path: &Path) -> Result<Self, SweepError> {
        let fail = |message: String| SweepError::File {
            path: path.to_owned(),
            message,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it ({e})")))?;
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| fail(e.to_string().replace('\n', " ")))?;
        let map = doc
            .as_mapping()
            .ok_or_else(|| fail("expected a mapping with experiment: and axes: or runs:".into()))?;
        for key in map.keys() {
            let key = key.as_str().unwrap_or_default();
            if !KEYS.contains(&key) {
                return Err(fail(format!(
                    "unknown key '{key}': expected one of {}",
                    KEYS.join(", ")
                )));
            }
        }
        let get = |key: &str| map.get(key);
        let experiment = get("experiment").and_then(|v| v.as_str()).ok_or_else(|| {
            fail("experiment: expected the path of the base experiment file".into())
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let experiment = crate::config::tidy_path(&base.join(experiment));
        let name = match get("name") {
            Some(v) => v
                .as_str()
                .filter(|n| is_name(n))
                .ok_or_else(|| fail("name: expected letters, digits, '-', '_' or '.'".into()))?
                .to_owned(),
            None => path
                .file_stem()
                .map_or("sweep".into(), |s| s.to_string_lossy().into_owned()),
        };
        let mapping = |key: &str| -> Result<serde_yaml::Mapping, SweepError> {
            match get(key) {
                None => Ok(serde_yaml::Mapping::new()),
                Some(serde_yaml::Value::Mapping(m)) => Ok(m.clone()),
                Some(_) => Err(fail(format!("{key}: expected a mapping of field: value"))),
            }
        };
        let set = pairs(&mapping("set")?, "set").map_err(fail)?;
        let axes = axes(&mapping("axes")?).map_err(fail)?;
        let runs = runs(get("runs")).map_err(fail)?;
        let probe = match get("probe") {
            None => None,
            Some(v) => Some(sweep_probe(v).map_err(|m| fail(format!("probe: {m}")))?),
        };
        let (plane, plane_tiles) = match get("plane") {
            None => (None, None),
            Some(v) => {
                let (plane, tiles) = sweep_plane(v).map_err(|m| fail(format!("plane: {m}")))?;
                (Some(plane), tiles)
            }
        };
        let curvature = match get("curvature") {
            None => None,
            Some(v) => Some(sweep_curvature(v).map_err(|m| fail(format!("curvature: {m}")))?),
        };
        let connect = match get("connect") {
            None => None,
            Some(v) => Some(sweep_connect(v).map_err(|m| fail(format!("connect: {m}")))?),
        };
        let ablation = match get("ablation") {
            None => None,
            Some(v) => Some(
                serde_yaml::from_value::<AblationConfig>(v.clone())
                    .map_err(|e| fail(format!("ablation: {}", e.to_string().replace('\n', " "))))?,
            ),
        };
        let slurm = match get("slurm") {
            None => SlurmConfig::default(),
            Some(v) => serde_yaml::from_value::<SlurmConfig>(v.clone())
                .map_err(|e| fail(format!("slurm: {}", e.to_string().replace('\n', " "))))?,
        };
        slurm.validate().map_err(|m| fail(format!("slurm.{m}")))?;
        let file = Self {
            name,
            experiment: std::path::absolute(&experiment).unwrap_or(experiment),
            set,
            axes,
            runs,
            probe,
            plane,
            plane_tiles,
            curvature,
            connect,
            ablation,
            slurm,
        };
        let n = file.count();
        if n > MAX_VARIANTS {
            return Err(fail(format!(
                "{n} variants: expected at most {MAX_VARIANTS} (fewer axis values, or several sweeps)"
            )));
        }
        Ok(file)
    }

    /// Number of variants: the product of the axes' lengths (1 without axes unless `runs`
    /// lists some) plus the listed runs.
    pub fn count(&self) -> usize {
        let product = if self.axes.is_empty() {
            usize::from(self.runs.is_empty())
        } else {
            self.axes
                .iter()
                .fold(1usize, |n, (_, v)| n.saturating_mul(v.len()))
        };
        product.saturating_add(self.runs.len())
    }

    /// Every variant, in order: the cartesian product of the axes (the last axis fastest),
    /// then the listed runs.
    pub fn variants(&self) -> Vec<Variant> {
        let mut sets: Vec<Vec<(String, String)>> = Vec::new();
        if !self.axes.is_empty() {
            sets.push(Vec::new());
            for (key, values) in &self.axes {
                sets = sets
                    .into_iter()
                    .flat_map(|prefix| {
                        values.iter().map(move |v| {
                            let mut next = prefix.clone();
                            next.push((key.clone(), v.clone()));
                            next
                        })
                    })
                    .collect();
            }
        } else if self.runs.is_empty() {
            sets.push(Vec::new());
        }
        sets.extend(self.runs.iter().cloned());
        sets.into_iter()
            .enumerate()
            .map(|(index, overrides)| Variant {
                index,
                id: variant_id(index, &overrides),
                overrides,
            })
            .collect()
    }

    /// The experiment `variant` trains: the base with the sweep's and the variant's
    /// overrides, and the sweep's ablation section.
    pub fn experiment_of(&self, variant: &Variant) -> Result<Experiment, SweepError> {
        let overrides: Vec<String> = self
            .set
            .iter()
            .chain(&variant.overrides)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut exp =
            Experiment::load(&self.experiment, &overrides).map_err(|e| SweepError::Variant {
                id: variant.id.clone(),
                message: e.to_string(),
            })?;
        if let Some(ablation) = &self.ablation {
            exp.ablation = Some(ablation.clone());
        }
        if let Some(plane) = &self.plane
            && plane.kind == crate::probe::plane::PlaneKind::SwaSgd
            && !exp.swa.enabled
        {
            return Err(SweepError::Variant {
                id: variant.id.clone(),
                message: "plane: swa-sgd runs through the SWA average, and this variant trains without one (swa.enabled: false); expected plane: random, or swa.enabled: true".into(),
            });
        }
        Ok(exp)
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// "003-model.norm=none-seed=1": the index, then each key=value with anything but letters,
/// digits and `.-_+` replaced by '_'.
pub fn variant_id(index: usize, overrides: &[(String, String)]) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || ".-_+".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut id = format!("{index:03}");
    for (k, v) in overrides {
        id += &format!("-{}={}", clean(k), clean(v));
    }
    // File names stay well under the usual 255-byte limit.
    if id.len() > 120 {
        id.truncate(120);
    }
    id
}

#[cfg(test)]
mod tests;
