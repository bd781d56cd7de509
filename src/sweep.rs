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
//! ablation: {twin: false, directions: 10} # after training, as in an experiment
//! slurm: {partition: gpu, gres: "gpu:1", cpus_per_task: 8, mem: 32G, time: "12:00:00"}
//! ```
//!
//! The sweep directory holds `sweep.yaml` (the file as resolved), `variants.json`, one
//! experiment file per variant under `variants/` (what its run trains), the runs under
//! `runs/<variant-id>/`, `jobs.json` (how it was launched), `job.sbatch` for Slurm and the
//! tasks' output under `logs/`.

pub mod report;
pub mod slurm;

use crate::config::Experiment;
use crate::config::ablation::AblationConfig;
use crate::config::probe::ProbeSpec;
use crate::rundir::{RunDir, write_atomic};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use slurm::SlurmConfig;

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
const KEYS: [&str; 8] = [
    "name",
    "experiment",
    "set",
    "axes",
    "runs",
    "probe",
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
        let experiment = base.join(experiment);
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
        let mut axes = Vec::new();
        for (k, v) in mapping("axes")? {
            let key = k.as_str().unwrap_or_default().to_owned();
            let values = v
                .as_sequence()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| fail(format!("axes.{key}: expected a non-empty list of values")))?;
            axes.push((key, values.iter().map(scalar).collect()));
        }
        let runs = match get("runs") {
            None => Vec::new(),
            Some(serde_yaml::Value::Sequence(list)) => list
                .iter()
                .enumerate()
                .map(|(i, r)| match r {
                    serde_yaml::Value::Mapping(m) => pairs(m, &format!("runs[{i}]")),
                    _ => Err(format!("runs[{i}]: expected a mapping of field: value")),
                })
                .collect::<Result<_, _>>()
                .map_err(fail)?,
            Some(_) => return Err(fail("runs: expected a list of overrides".into())),
        };
        let probe = match get("probe") {
            None => None,
            Some(v) => Some(sweep_probe(v).map_err(|m| fail(format!("probe: {m}")))?),
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
        Ok(exp)
    }
}

fn sweep_probe(value: &serde_yaml::Value) -> Result<SweepProbe, String> {
    let mut map = value
        .as_mapping()
        .cloned()
        .ok_or("expected a mapping with directions: and probe settings")?;
    let directions = map
        .remove("directions")
        .and_then(|v| v.as_u64())
        .ok_or("directions: expected the number of random directions per centre (2 or more)")?
        as usize;
    if !(2..=crate::config::MAX_DIRECTIONS).contains(&directions) {
        return Err(format!(
            "directions: {directions}: expected 2..={}",
            crate::config::MAX_DIRECTIONS
        ));
    }
    // `range: auto` or `range: R`, as the probe command takes it.
    if let Some(range) = map.remove("range") {
        match range.as_str() {
            Some("auto") => {
                map.entry("auto_range".into()).or_insert(0.5.into());
            }
            _ => {
                let r = range
                    .as_f64()
                    .ok_or("range: expected a half-width or auto")?;
                map.insert("from".into(), (-r).into());
                map.insert("to".into(), r.into());
            }
        }
    }
    let spec: ProbeSpec = serde_yaml::from_value(serde_yaml::Value::Mapping(map))
        .map_err(|e| e.to_string().replace('\n', " "))?;
    if !spec.direction.is_random() {
        return Err(format!(
            "direction: {} is not random; a sweep probes random directions",
            spec.direction.as_str()
        ));
    }
    spec.validate()?;
    Ok(SweepProbe { directions, spec })
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

/// How a sweep was launched, in `jobs.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    /// "local" or "slurm".
    pub executor: String,
    /// The Slurm job id of the array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The local executor's process (it stops its tasks on SIGTERM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub submitted: String,
    /// Variant index → id, experiment file and run directory (relative to the sweep).
    pub variants: Vec<JobEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEntry {
    pub index: usize,
    pub id: String,
    pub experiment: String,
    pub run: String,
    /// The Slurm array task id (the index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// A sweep directory.
#[derive(Debug, Clone)]
pub struct SweepDir {
    pub root: PathBuf,
}

impl SweepDir {
    /// The default place of a new sweep: sweeps/<name>-<date>-<time>.
    pub fn default_path(name: &str) -> PathBuf {
        let now = jiff::Zoned::now();
        PathBuf::from("sweeps").join(format!("{name}-{}", now.strftime("%Y%m%d-%H%M%S")))
    }

    /// Whether `path` is a sweep directory (it has sweep.yaml and variants.json).
    pub fn is_sweep(path: &Path) -> bool {
        path.join("sweep.yaml").is_file() && path.join("variants.json").is_file()
    }

    pub fn open(root: &Path) -> Result<Self, SweepError> {
        if !Self::is_sweep(root) {
            return Err(SweepError::Dir(format!(
                "{}: not a sweep directory (no sweep.yaml and variants.json); `valleys sweep SWEEP.yaml` creates one",
                root.display()
            )));
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// Creates the directory for `file` with every variant's experiment file, after each
    /// one was checked (by `check`, which may read data and lay out the model). Nothing is
    /// created when a variant fails.
    pub fn create(
        root: &Path,
        file: &SweepFile,
        sweep_text: &str,
        check: &dyn Fn(&Variant, &Experiment) -> Result<(), String>,
    ) -> Result<Self, SweepError> {
        let variants = file.variants();
        let mut experiments = Vec::new();
        for v in &variants {
            let exp = file.experiment_of(v)?;
            check(v, &exp).map_err(|message| SweepError::Variant {
                id: v.id.clone(),
                message,
            })?;
            experiments.push(exp);
        }
        if root.exists() {
            return Err(SweepError::Dir(format!(
                "{}: already exists; a sweep directory is never reused (continue it with `valleys sweep {}`)",
                root.display(),
                root.display()
            )));
        }
        let io = |what: &str, e: &dyn std::fmt::Display| {
            SweepError::Dir(format!("{}: cannot {what} ({e})", root.display()))
        };
        for sub in ["variants", "runs", "logs"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| io("create the directory", &e))?;
        }
        for (v, exp) in variants.iter().zip(&experiments) {
            write_atomic(
                &root.join("variants").join(format!("{}.yaml", v.id)),
                exp.to_yaml().as_bytes(),
            )
            .map_err(|e| io("write a variant's experiment", &e))?;
        }
        let resolved = format!(
            "# as given, with the base experiment resolved to {}\n{sweep_text}",
            file.experiment.display()
        );
        write_atomic(&root.join("sweep.yaml"), resolved.as_bytes())
            .map_err(|e| io("write sweep.yaml", &e))?;
        let json = serde_json::to_string_pretty(&variants).expect("variants serialise");
        write_atomic(&root.join("variants.json"), json.as_bytes())
            .map_err(|e| io("write variants.json", &e))?;
        let settings = serde_json::json!({
            "probe": file.probe,
            "name": file.name,
        });
        write_atomic(
            &root.join("settings.json"),
            serde_json::to_string_pretty(&settings)
                .expect("settings serialise")
                .as_bytes(),
        )
        .map_err(|e| io("write settings.json", &e))?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    pub fn variants(&self) -> Result<Vec<Variant>, SweepError> {
        let path = self.root.join("variants.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SweepError::Dir(format!("{}: cannot read it ({e})", path.display())))?;
        serde_json::from_str(&text).map_err(|e| SweepError::Dir(format!("{}: {e}", path.display())))
    }

    /// The probe to run after training, if the sweep asks for one.
    pub fn probe(&self) -> Option<SweepProbe> {
        let text = std::fs::read_to_string(self.root.join("settings.json")).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        serde_json::from_value(value.get("probe")?.clone()).ok()
    }

    /// The sweep's name.
    pub fn name(&self) -> String {
        std::fs::read_to_string(self.root.join("settings.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["name"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "sweep".into())
    }

    pub fn experiment_path(&self, v: &Variant) -> PathBuf {
        self.root.join("variants").join(format!("{}.yaml", v.id))
    }

    pub fn run_path(&self, v: &Variant) -> PathBuf {
        self.root.join("runs").join(&v.id)
    }

    pub fn log_path(&self, v: &Variant) -> PathBuf {
        self.root.join("logs").join(format!("{:03}.out", v.index))
    }

    pub fn jobs(&self) -> Option<Jobs> {
        let text = std::fs::read_to_string(self.root.join("jobs.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write_jobs(&self, jobs: &Jobs) -> Result<(), crate::rundir::RunDirError> {
        let json = serde_json::to_string_pretty(jobs).expect("jobs serialise");
        write_atomic(&self.root.join("jobs.json"), json.as_bytes())
    }

    /// `jobs.json` for `executor`, every variant listed.
    pub fn jobs_for(&self, executor: &str) -> Result<Jobs, SweepError> {
        let rel = |p: PathBuf| {
            p.strip_prefix(&self.root)
                .map_or(p.clone(), Path::to_path_buf)
                .display()
                .to_string()
        };
        Ok(Jobs {
            executor: executor.to_owned(),
            job_id: None,
            pid: None,
            submitted: jiff::Zoned::now().to_string(),
            variants: self
                .variants()?
                .iter()
                .map(|v| JobEntry {
                    index: v.index,
                    id: v.id.clone(),
                    experiment: rel(self.experiment_path(v)),
                    run: rel(self.run_path(v)),
                    task: (executor == "slurm").then(|| v.index.to_string()),
                })
                .collect(),
        })
    }

    /// Where a variant stands, from its run directory alone.
    pub fn state(&self, v: &Variant) -> VariantState {
        run_state(&self.run_path(v), self.probe().is_some())
    }
}

/// Runs shown together: a sweep's, or run directories named one by one.
pub enum RunSet {
    Sweep(SweepDir),
    Dirs(Vec<PathBuf>),
}

impl RunSet {
    pub fn name(&self) -> String {
        match self {
            Self::Sweep(dir) => format!("sweep {}", dir.name()),
            Self::Dirs(dirs) => format!("{} run directories", dirs.len()),
        }
    }

    /// Every run's summary, in order.
    pub fn summaries(&self) -> Vec<report::RunSummary> {
        match self {
            Self::Sweep(dir) => dir
                .variants()
                .unwrap_or_default()
                .iter()
                .map(|v| report::summarise(dir, v))
                .collect(),
            Self::Dirs(dirs) => dirs
                .iter()
                .enumerate()
                .map(|(index, path)| {
                    let id = path.file_name().map_or_else(
                        || path.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    );
                    let v = Variant {
                        index,
                        id,
                        overrides: Vec::new(),
                    };
                    report::summarise_run(path, v, run_state(path, false))
                })
                .collect(),
        }
    }

    /// The run directory of run `index`.
    pub fn path(&self, index: usize) -> Option<PathBuf> {
        match self {
            Self::Sweep(dir) => dir
                .variants()
                .ok()?
                .iter()
                .find(|v| v.index == index)
                .map(|v| dir.run_path(v)),
            Self::Dirs(dirs) => dirs.get(index).cloned(),
        }
    }
}

/// Where the run at `path` stands; `probed` says whether it is done only once it has a batch
/// of probes.
pub fn run_state(path: &Path, probed: bool) -> VariantState {
    let Ok(run) = RunDir::open(path) else {
        return VariantState::Pending;
    };
    if run.is_busy() {
        return VariantState::Running;
    }
    match run.outcome() {
        Some(crate::protocol::Outcome::Completed) => {
            if probed && crate::probe::store::read_batches(&run).0.is_empty() {
                VariantState::Trained
            } else {
                VariantState::Done
            }
        }
        Some(crate::protocol::Outcome::Diverged { .. }) => VariantState::Diverged,
        Some(crate::protocol::Outcome::Failed { .. }) => VariantState::Failed,
        Some(crate::protocol::Outcome::Stopped) | None => {
            if path.join("checkpoints/latest.safetensors").is_file() {
                VariantState::Stopped
            } else {
                VariantState::Pending
            }
        }
    }
}

/// Where a variant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantState {
    /// Not started (or stopped before its first checkpoint).
    Pending,
    /// Its run directory is locked by a process training it.
    Running,
    /// Stopped with a checkpoint: the next task resumes it.
    Stopped,
    /// Trained; its probes are still to run.
    Trained,
    Done,
    Diverged,
    Failed,
}

impl VariantState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Trained => "trained",
            Self::Done => "done",
            Self::Diverged => "diverged",
            Self::Failed => "failed",
        }
    }

    /// Nothing is left to do for the variant (done, or ended in a way a retry won't change).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Diverged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(yaml: &str) -> Result<SweepFile, SweepError> {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("base.yaml"),
            "name: b\ndata: {dataset: fashion-mnist, train_subset: 256, test_subset: 128}\nmodel: {arch: mlp, hidden: 16}\ntrain: {epochs: 2, batch_size: 64, lr: 0.1}\n",
        )
        .unwrap();
        let path = tmp.path().join("s.yaml");
        std::fs::write(&path, yaml).unwrap();
        let f = SweepFile::load(&path);
        drop(tmp);
        f
    }

    #[test]
    fn axes_make_a_cartesian_product_with_the_last_axis_fastest() {
        let f = file("experiment: base.yaml\naxes:\n  model.norm: [batch, none]\n  seed: [1, 2, 3]\nruns:\n  - {model.hidden: 32}\n").unwrap();
        let v = f.variants();
        assert_eq!(f.count(), 7);
        assert_eq!(v.len(), 7);
        assert_eq!(v[0].id, "000-model.norm=batch-seed=1");
        assert_eq!(v[1].id, "001-model.norm=batch-seed=2");
        assert_eq!(v[3].id, "003-model.norm=none-seed=1");
        assert_eq!(
            v[6].overrides,
            [("model.hidden".to_owned(), "32".to_owned())]
        );
        assert_eq!(f.name, "s");
    }

    #[test]
    fn a_sweep_without_axes_or_runs_is_one_run_and_bad_files_name_what_is_wrong() {
        let f = file("experiment: base.yaml\n").unwrap();
        assert_eq!(f.variants().len(), 1);
        for (yaml, want) in [
            (
                "experiment: base.yaml\naxis: {seed: [1]}\n",
                "unknown key 'axis'",
            ),
            ("axes: {seed: [1]}\n", "experiment: expected the path"),
            (
                "experiment: base.yaml\naxes: {seed: []}\n",
                "axes.seed: expected a non-empty list",
            ),
            (
                "experiment: base.yaml\nprobe: {directions: 1}\n",
                "probe: directions: 1: expected 2..=",
            ),
            (
                "experiment: base.yaml\nprobe: {directions: 5, direction: interp}\n",
                "is not random",
            ),
            (
                "experiment: base.yaml\nslurm: {partiton: x}\n",
                "slurm: unknown field `partiton`",
            ),
            (
                "experiment: base.yaml\nname: ../x\n",
                "name: expected letters",
            ),
        ] {
            let e = file(yaml).unwrap_err().to_string();
            assert!(e.contains(want), "{yaml}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn ids_are_file_names() {
        let id = variant_id(12, &[("data.dir".into(), "/data/cifar 10".into())]);
        assert_eq!(id, "012-data.dir=_data_cifar_10");
    }
}
