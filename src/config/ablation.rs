//! The experiment's `ablation:` section: the batch-norm ablations `valleys run` does after
//! training. Plain data; the ablation module carries it out.

use super::probe::ProbeSpec;
use serde::{Deserialize, Serialize};

/// The experiment's `ablation:` section: what `valleys run` does after training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AblationConfig {
    /// Train the no-BN twin (after the run on a CPU).
    #[serde(default = "yes")]
    pub twin: bool,
    /// Random directions per arm and centre in the summary.
    #[serde(default = "default_directions")]
    pub directions: usize,
    /// Settings shared by every ablation probe (range, points, subsets, seed).
    #[serde(default)]
    pub probe: ProbeSpec,
    /// The no-BN variant of a TorchScript model (relative to the experiment file): the twin
    /// of a custom model cannot be derived from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twin_model: Option<std::path::PathBuf>,
}

fn yes() -> bool {
    true
}

fn default_directions() -> usize {
    5
}

impl Default for AblationConfig {
    fn default() -> Self {
        Self {
            twin: true,
            directions: default_directions(),
            probe: ProbeSpec::default(),
            twin_model: None,
        }
    }
}
