//! Ablations in the run directory: ablations/<id>.json (arms and their scores, the probe
//! files they come from) and <id>.csv (the arm table), written atomically.

use super::result::{AblationKind, AblationResult, Arm, csv};
use crate::probe::ProbeResult;
use crate::rundir::{RunDir, RunDirError};
use std::path::{Path, PathBuf};

/// The ablations directory of a run.
pub fn dir(run: &RunDir) -> PathBuf {
    run.root().join("ablations")
}

pub fn next_id(run: &RunDir, kind: AblationKind) -> String {
    let n = crate::rundir::next_sequence_number(&dir(run));
    format!("{n:03}-{}", kind.as_str())
}

/// Writes ablations/<id>.json and .csv.
pub fn write(run: &RunDir, result: &AblationResult) -> Result<PathBuf, RunDirError> {
    crate::rundir::write_result(&dir(run), &result.id, result, Some(&csv(result)))
}

/// Every ablation stored in a run, in id order, and the files that could not be read.
pub fn read_all(run: &RunDir) -> (Vec<AblationResult>, Vec<String>) {
    crate::rundir::read_json_files(&dir(run), |_| true)
}

/// The probes an arm refers to, read back from their files (`root` is the ablation's run).
pub fn arm_probes(root: &Path, arm: &Arm) -> Vec<ProbeResult> {
    let Ok(run) = RunDir::open(&root.join(&arm.run)) else {
        return Vec::new();
    };
    let (stored, _) = crate::probe::store::read_all(&run);
    arm.probes
        .iter()
        .filter_map(|id| stored.iter().find(|r| &r.id == id).cloned())
        .collect()
}

/// SGD test loss minus SWA test loss at the last evaluation of a run.
pub fn swa_gain(run: &RunDir) -> Option<f64> {
    crate::protocol::swa_gain(&run.read_metrics().ok()?)
}
