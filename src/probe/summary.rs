//! What a batch of random directions found: per centre, how many directions are asymmetric,
//! the median c and its histogram. Plain data over finished probe results (no tensors), read
//! by the dashboard, the reports and the protocol.

use super::ProbeResult;
use super::score;
use crate::config::probe::ProbeSpec;
use serde::{Deserialize, Serialize};

/// Asymmetry statistics of many random directions through one centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CentreStats {
    pub centre: String,
    pub probes: Vec<String>,
    /// c of each direction (null: infinite, or not scored).
    pub c: Vec<Option<f64>>,
    pub asymmetric: usize,
    pub fraction_asymmetric: f64,
    pub median_c: Option<f64>,
    pub flat_plus: usize,
    pub flat_minus: usize,
    /// Counts of c in [1, 1.5), [1.5, 2), [2, 3), [3, 5), [5, 10), [10, inf].
    pub histogram: Vec<usize>,
}

/// Upper edges of the c histogram bins (the last bin is open).
pub const C_BIN_EDGES: [f64; 5] = [1.5, 2.0, 3.0, 5.0, 10.0];

/// Summarises the train-loss scores of probes through one centre.
pub fn summarise(centre: &str, results: &[ProbeResult]) -> CentreStats {
    let scores: Vec<&score::Score> = results
        .iter()
        .filter_map(|r| r.train_score.as_ref())
        .collect();
    let mut histogram = vec![0; C_BIN_EDGES.len() + 1];
    for s in &scores {
        let bin = C_BIN_EDGES
            .iter()
            .position(|&edge| s.c < edge)
            .unwrap_or(C_BIN_EDGES.len());
        histogram[bin] += 1;
    }
    let mut cs: Vec<f64> = scores.iter().map(|s| s.c).collect();
    cs.sort_by(f64::total_cmp);
    let median_c = (!cs.is_empty()).then(|| {
        let m = cs.len() / 2;
        if cs.len() % 2 == 1 {
            cs[m]
        } else {
            (cs[m - 1] + cs[m]) / 2.0
        }
    });
    let asymmetric = scores.iter().filter(|s| s.asymmetric).count();
    CentreStats {
        centre: centre.to_owned(),
        probes: results.iter().map(|r| r.id.clone()).collect(),
        c: results
            .iter()
            .map(|r| {
                r.train_score
                    .as_ref()
                    .map(|s| s.c)
                    .filter(|c| c.is_finite())
            })
            .collect(),
        asymmetric,
        fraction_asymmetric: asymmetric as f64 / results.len().max(1) as f64,
        median_c: median_c.filter(|c| c.is_finite()),
        flat_plus: scores
            .iter()
            .filter(|s| s.flat_side == score::Side::Plus)
            .count(),
        flat_minus: scores
            .iter()
            .filter(|s| s.flat_side == score::Side::Minus)
            .count(),
        histogram,
    }
}

/// The outcome of a batch: N random directions through the SGD iterate and through the SWA
/// average (when there is one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchSummary {
    pub id: String,
    /// Always true: tells batch summaries from single probes in probes/.
    pub batch: bool,
    pub spec: ProbeSpec,
    pub directions: usize,
    pub threshold: f64,
    pub centres: Vec<CentreStats>,
}
