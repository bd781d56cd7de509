//! The run directory: everything a run leaves behind, written so that an interruption at any
//! moment leaves it consistent.
//!
//! ```text
//! RUN_DIR/config.yaml        the resolved experiment (every default spelled out)
//! RUN_DIR/run.json           device and why, data, model, program version, start time
//! RUN_DIR/metrics.jsonl      one MetricRow per line, appended and synced per epoch
//! RUN_DIR/checkpoints/       latest.safetensors, epoch-NNNN.safetensors, final.safetensors
//! RUN_DIR/model.pt           a TorchScript model's copy (and twin-model.pt, its no-BN variant)
//! ```
//! Whole files are written to a temporary name, synced and renamed over the old one.

use crate::config::Experiment;
use crate::protocol::MetricRow;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

mod lock;
mod results;

pub use lock::RunLock;
pub use results::{check_writable, next_sequence_number, read_json_files, write_result};

/// Why a run directory could not be created, opened or written.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error(
        "{0}: the run directory already exists; choose another with --out (valleys never overwrites a run)"
    )]
    Exists(PathBuf),
    #[error("{0}: no such run directory")]
    Missing(PathBuf),
    #[error("{0}: not a run directory (it has no config.yaml)")]
    NotARun(PathBuf),
    #[error(
        "{path}: another valleys process is writing this run directory ({holder}); wait for it to end or stop it"
    )]
    Busy { path: PathBuf, holder: String },
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
}

pub(crate) fn io_err<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> RunDirError + 'a {
    move |source| RunDirError::Io {
        path: path.to_owned(),
        action,
        source,
    }
}

/// The run directory's copy of a TorchScript model, and of its no-BN twin.
pub const MODEL_COPY: &str = "model.pt";
pub const TWIN_MODEL_COPY: &str = "twin-model.pt";

/// A run directory on disk.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// `runs/<name>-<local date>-<time>`.
    pub fn default_path(name: &str) -> PathBuf {
        let now = jiff::Zoned::now();
        PathBuf::from("runs").join(format!("{name}-{}", now.strftime("%Y%m%d-%H%M%S")))
    }

    /// Creates a new run directory holding the resolved experiment; never reuses one.
    pub fn create(root: &Path, experiment: &Experiment) -> Result<Self, RunDirError> {
        if root.exists() {
            return Err(RunDirError::Exists(root.to_owned()));
        }
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(io_err(parent, "cannot create the directory"))?;
        }
        std::fs::create_dir(root).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => RunDirError::Exists(root.to_owned()),
            _ => io_err(root, "cannot create the run directory")(e),
        })?;
        let dir = Self {
            root: root.to_owned(),
        };
        std::fs::create_dir(dir.checkpoints_dir()).map_err(io_err(
            &dir.checkpoints_dir(),
            "cannot create the directory",
        ))?;
        dir.store_experiment(experiment)?;
        Ok(dir)
    }

    /// Writes `experiment` as the run's config.yaml. A TorchScript model (and its no-BN twin)
    /// is copied in first, as `model.pt` (and `twin-model.pt`), and the stored experiment
    /// names the copies: the run stays whole if the original file changes or the run
    /// directory moves.
    pub fn store_experiment(&self, experiment: &Experiment) -> Result<(), RunDirError> {
        let mut stored = experiment.clone();
        let copies = [
            (stored.model.path.as_mut(), MODEL_COPY),
            (
                stored.ablation.as_mut().and_then(|a| a.twin_model.as_mut()),
                TWIN_MODEL_COPY,
            ),
        ];
        for (path, name) in copies {
            let Some(path) = path else { continue };
            let copy = self.root.join(name);
            let same = matches!(
                (path.canonicalize(), copy.canonicalize()),
                (Ok(a), Ok(b)) if a == b
            );
            if !same {
                let bytes = std::fs::read(&*path).map_err(io_err(path, "cannot read"))?;
                write_atomic(&copy, &bytes)?;
            }
            *path = PathBuf::from(name);
        }
        write_atomic(&self.config_path(), stored.to_yaml().as_bytes())
    }

    /// Opens an existing run directory.
    pub fn open(root: &Path) -> Result<Self, RunDirError> {
        if !root.is_dir() {
            return Err(RunDirError::Missing(root.to_owned()));
        }
        let dir = Self {
            root: root.to_owned(),
        };
        if !dir.config_path().is_file() {
            return Err(RunDirError::NotARun(root.to_owned()));
        }
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.yaml")
    }

    pub fn run_info_path(&self) -> PathBuf {
        self.root.join("run.json")
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// Writes run.json.
    pub fn write_run_info(&self, info: &serde_json::Value) -> Result<(), RunDirError> {
        let text = serde_json::to_string_pretty(info).expect("JSON values serialise");
        write_atomic(&self.run_info_path(), format!("{text}\n").as_bytes())
    }

    /// run.json as JSON (null when missing or unreadable).
    pub fn run_info(&self) -> serde_json::Value {
        std::fs::read_to_string(self.run_info_path())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// How the run ended, as recorded in run.json; None while it runs (or if it was killed).
    pub fn outcome(&self) -> Option<crate::protocol::Outcome> {
        serde_json::from_value(self.run_info().get("outcome")?.clone()).ok()
    }

    /// Adds the outcome and the end time to run.json, so that `watch` and reports know how
    /// the run ended.
    pub fn record_outcome(&self, outcome: &crate::protocol::Outcome) -> Result<(), RunDirError> {
        let mut value = self.run_info();
        if !value.is_object() {
            value = serde_json::json!({ "program": "valleys" });
        }
        value["outcome"] = serde_json::to_value(outcome).expect("outcomes serialise");
        value["finished"] = serde_json::Value::String(jiff::Zoned::now().to_string());
        self.write_run_info(&value)
    }

    /// Opens metrics.jsonl for appending.
    pub fn metrics_writer(&self) -> Result<MetricsWriter, RunDirError> {
        let path = self.metrics_path();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path, "cannot open for appending"))?;
        Ok(MetricsWriter { path, file })
    }

    /// Reads every row of metrics.jsonl, skipping a torn last line (from a crash mid-write).
    pub fn read_metrics(&self) -> Result<Vec<MetricRow>, RunDirError> {
        let path = self.metrics_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&path, "cannot read")(e)),
        };
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }
}

/// Appends metric rows, one `write` per line so that readers never see half a row.
#[derive(Debug)]
pub struct MetricsWriter {
    path: PathBuf,
    file: File,
}

impl MetricsWriter {
    pub fn append(&mut self, row: &MetricRow) -> Result<(), RunDirError> {
        let mut line = serde_json::to_string(row).expect("metric rows serialise");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(io_err(&self.path, "cannot append a metric row"))
    }

    /// Makes the rows written so far durable.
    pub fn sync(&mut self) -> Result<(), RunDirError> {
        self.file
            .sync_data()
            .map_err(io_err(&self.path, "cannot sync"))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced before it
/// is renamed into place: readers and crashes see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunDirError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(io_err(&tmp, "cannot create"))?;
        file.write_all(bytes)
            .map_err(io_err(&tmp, "cannot write"))?;
        file.sync_all().map_err(io_err(&tmp, "cannot sync"))?;
        std::fs::rename(&tmp, path).map_err(io_err(path, "cannot replace"))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::{Iterate, Split};

    pub(crate) fn experiment() -> Experiment {
        let yaml = "name: t\ndata: {dataset: fashion-mnist}\nmodel: {arch: mlp}\ntrain: {epochs: 2, batch_size: 8, lr: 0.1}\n";
        Experiment::from_yaml(yaml, "t.yaml", &[]).unwrap()
    }

    #[test]
    fn a_run_directory_is_created_once_and_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("nested/run");
        let dir = RunDir::create(&root, &experiment()).unwrap();
        assert!(dir.config_path().is_file() && dir.checkpoints_dir().is_dir());
        let stored = Experiment::load(&dir.config_path(), &[]).unwrap();
        assert_eq!(stored, experiment());
        let err = RunDir::create(&root, &experiment())
            .unwrap_err()
            .to_string();
        assert!(err.contains("already exists"), "{err}");
        assert!(RunDir::open(&root).is_ok());
        assert!(matches!(
            RunDir::open(&tmp.path().join("nope")),
            Err(RunDirError::Missing(_))
        ));
        assert!(matches!(
            RunDir::open(tmp.path()),
            Err(RunDirError::NotARun(_))
        ));
    }

    #[test]
    fn metric_rows_round_trip_and_a_torn_last_line_is_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::create(&tmp.path().join("r"), &experiment()).unwrap();
        let row = MetricRow {
            epoch: 1,
            step: 10,
            iterate: Iterate::Swa,
            split: Split::Test,
            loss: 0.5,
            acc: 0.8,
            lr: 0.01,
            elapsed_s: 3.0,
            samples: 100,
            swa_n: Some(1),
        };
        let mut w = dir.metrics_writer().unwrap();
        w.append(&row).unwrap();
        w.sync().unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.metrics_path())
            .unwrap()
            .write_all(b"{\"epoch\": 2, \"st")
            .unwrap();
        assert_eq!(dir.read_metrics().unwrap(), vec![row]);
    }

    #[test]
    fn an_atomic_write_replaces_the_whole_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f.txt");
        write_atomic(&path, b"first version").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        let err = write_atomic(&tmp.path().join("missing/f.txt"), b"x").unwrap_err();
        assert!(err.to_string().contains("cannot create"), "{err}");
    }
}
