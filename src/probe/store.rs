//! Probe results in the run directory: probes/<id>.json (every setting, seed, centre, norms,
//! scores, cost) and probes/<id>.csv (t, train_loss, train_acc, test_loss, test_acc), written
//! atomically; batch summaries in probes/<id>.json with `"batch": true`.

use super::{ProbeResult, ProbeSpec};
use crate::rundir::{RunDir, RunDirError, write_atomic};
use std::path::PathBuf;

/// The probes directory of a run.
pub fn dir(run: &RunDir) -> PathBuf {
    run.root().join("probes")
}

/// A fresh id: a sequence number, the direction and the centre, e.g. "003-uniform-swa".
pub fn next_id(run: &RunDir, spec: &ProbeSpec, label: &str) -> String {
    let n = crate::rundir::next_sequence_number(&dir(run));
    format!("{n:03}-{}-{label}", spec.direction.as_str())
}

/// The CSV of a probe's curves.
pub fn csv(result: &ProbeResult) -> String {
    let mut out = String::from("t,train_loss,train_acc,test_loss,test_acc\n");
    for p in &result.points {
        out += &format!(
            "{},{},{},{},{}\n",
            p.t, p.train_loss, p.train_acc, p.test_loss, p.test_acc
        );
    }
    out
}

/// Writes probes/<id>.json and probes/<id>.csv.
pub fn write(run: &RunDir, result: &ProbeResult) -> Result<(PathBuf, PathBuf), RunDirError> {
    let dir = dir(run);
    std::fs::create_dir_all(&dir).map_err(|source| RunDirError::Io {
        path: dir.clone(),
        action: "cannot create the directory",
        source,
    })?;
    let json = dir.join(format!("{}.json", result.id));
    let csv_path = dir.join(format!("{}.csv", result.id));
    write_atomic(&csv_path, csv(result).as_bytes())?;
    let text = serde_json::to_string_pretty(result).expect("probe results serialise");
    write_atomic(&json, format!("{text}\n").as_bytes())?;
    Ok((json, csv_path))
}

/// Writes a JSON document (a batch summary) as probes/<id>.json.
pub fn write_json(
    run: &RunDir,
    id: &str,
    value: &serde_json::Value,
) -> Result<PathBuf, RunDirError> {
    let dir = dir(run);
    std::fs::create_dir_all(&dir).map_err(|source| RunDirError::Io {
        path: dir.clone(),
        action: "cannot create the directory",
        source,
    })?;
    let path = dir.join(format!("{id}.json"));
    let text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    write_atomic(&path, format!("{text}\n").as_bytes())?;
    Ok(path)
}

/// Every single-probe result stored in a run, in id order (batch summaries are skipped).
pub fn read_all(run: &RunDir) -> Vec<ProbeResult> {
    crate::rundir::read_json_files(&dir(run))
}
