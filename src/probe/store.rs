//! Probe results in the run directory: probes/<id>.json (every setting, seed, centre, norms,
//! scores, cost) and probes/<id>.csv (t, train_loss, train_acc, test_loss, test_acc), written
//! atomically; batch summaries in probes/<id>.json with `"batch": true`; planes in
//! planes/<id>.json and planes/<id>.csv (one row per point). Everything valleys stores of its
//! measurements along lines and planes is written and read here.

use super::plane::{self, PlaneKind, PlaneResult};
use super::{ProbeResult, ProbeSpec};
use crate::rundir::{RunDir, RunDirError};
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
    let json = crate::rundir::write_result(&dir(run), &result.id, result, Some(&csv(result)))?;
    Ok((json.clone(), json.with_extension("csv")))
}

/// Writes a JSON document (a batch summary) as probes/<id>.json.
pub fn write_json(
    run: &RunDir,
    id: &str,
    value: &serde_json::Value,
) -> Result<PathBuf, RunDirError> {
    crate::rundir::write_result(&dir(run), id, value, None)
}

/// Every batch summary stored in a run, in id order, and the files that could not be read.
pub fn read_batches(run: &RunDir) -> (Vec<super::summary::BatchSummary>, Vec<String>) {
    crate::rundir::read_json_files(&dir(run), |v| {
        v.get("batch").and_then(|b| b.as_bool()) == Some(true)
    })
}

/// Every single-probe result stored in a run, in id order (batch summaries are passed
/// over), and the files that could not be read, each with why.
pub fn read_all(run: &RunDir) -> (Vec<ProbeResult>, Vec<String>) {
    crate::rundir::read_json_files(&dir(run), |v| v.get("batch").is_none())
}

/// The planes directory of a run.
pub fn plane_dir(run: &RunDir) -> PathBuf {
    run.root().join("planes")
}

/// A fresh plane id: a sequence number, the plane and its centre, e.g. "002-swa-sgd-swa".
pub fn next_plane_id(run: &RunDir, kind: PlaneKind, label: &str) -> String {
    let n = crate::rundir::next_sequence_number(&plane_dir(run));
    format!("{n:03}-{}-{label}", kind.as_str())
}

/// Writes planes/<id>.json and planes/<id>.csv, atomically.
pub fn write_plane(run: &RunDir, result: &PlaneResult) -> Result<PathBuf, RunDirError> {
    crate::rundir::write_result(
        &plane_dir(run),
        &result.id,
        result,
        Some(&plane::csv(result)),
    )
}

/// Every plane stored in a run, in id order, and the files that could not be read.
pub fn read_planes(run: &RunDir) -> (Vec<PlaneResult>, Vec<String>) {
    crate::rundir::read_json_files(&plane_dir(run), |_| true)
}

/// Drops the path points after optimiser step `step` from every plane of the run (a run
/// resumed from that checkpoint adds them again); returns how many planes changed.
pub fn truncate_plane_paths(run: &RunDir, step: u64) -> Result<usize, RunDirError> {
    let (planes, _) = read_planes(run);
    let mut changed = 0;
    for mut plane in planes {
        let before = plane.path.len();
        plane.path.retain(|p| p.at.step <= step);
        if plane.path.len() < before {
            write_plane(run, &plane)?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// The connections directory of a run.
pub fn connection_dir(run: &RunDir) -> PathBuf {
    run.root().join("connections")
}

/// Writes connections/<id>.json and connections/<id>.csv, atomically.
pub fn write_connection(
    run: &RunDir,
    result: &super::connect::ConnectResult,
) -> Result<PathBuf, RunDirError> {
    crate::rundir::write_result(
        &connection_dir(run),
        &result.id,
        result,
        Some(&super::connect::csv(result)),
    )
}

/// Every connection stored in a run, in id order, and the files that could not be read.
pub fn read_connections(run: &RunDir) -> (Vec<super::connect::ConnectResult>, Vec<String>) {
    crate::rundir::read_json_files(&connection_dir(run), |_| true)
}
