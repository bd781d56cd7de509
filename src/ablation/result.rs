//! What an ablation found: its arms and their asymmetry statistics. Plain data over finished
//! probe results (no tensors), read by the dashboard, the reports and the protocol.

use crate::config::probe::ProbeSpec;
use crate::names::named_enum;
use crate::probe::{ProbeResult, format_c};
use serde::{Deserialize, Serialize};

named_enum! {
    /// Which comparison an ablation makes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum AblationKind {
        /// One direction through BN-only, non-BN and all parameters.
        Groups = "groups",
        /// One direction with recomputed, frozen and batch BN statistics.
        BnModes = "bn-modes",
        /// N directions per arm: BN vs none, BN-only vs non-BN, SGD vs SWA.
        Summary = "summary",
    }
}

/// One arm of an ablation: a set of probes through one centre under one treatment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// e.g. "bn", "none", "bn-only", "non-bn", "recompute", "frozen", "batch".
    pub name: String,
    /// The run probed, relative to the ablation's run directory ("." or "twin-nobn").
    pub run: String,
    /// "sgd", "swa" or "swa→sgd".
    pub centre: String,
    /// Probe ids (files under `<run>/probes/`).
    pub probes: Vec<String>,
    pub asymmetric: usize,
    pub fraction_asymmetric: f64,
    /// Mean and median of c over the directions with a finite c.
    pub mean_c: Option<f64>,
    pub median_c: Option<f64>,
    /// Directions whose c is infinite (one side flat or falling).
    pub infinite_c: usize,
}

/// SGD test loss minus SWA test loss at the end of a run: what averaging bought.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwaGain {
    pub bn: Option<f64>,
    pub none: Option<f64>,
}

/// A finished ablation, as stored in ablations/<id>.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AblationResult {
    pub id: String,
    pub kind: AblationKind,
    pub threshold: f64,
    pub spec: ProbeSpec,
    pub arms: Vec<Arm>,
    pub swa_gain: SwaGain,
    pub created: String,
}

/// Arm statistics from probe results (the same numbers whether the results are fresh or read
/// back from their files).
pub fn arm(name: &str, run: &str, results: &[ProbeResult], threshold: f64) -> Arm {
    let cs: Vec<f64> = results
        .iter()
        .filter_map(|r| r.train_score.as_ref())
        .map(|s| s.c)
        .collect();
    let mut finite: Vec<f64> = cs.iter().copied().filter(|c| c.is_finite()).collect();
    finite.sort_by(f64::total_cmp);
    let asymmetric = cs.iter().filter(|&&c| c >= threshold).count();
    let median_c = (!finite.is_empty()).then(|| {
        let m = finite.len() / 2;
        if finite.len() % 2 == 1 {
            finite[m]
        } else {
            (finite[m - 1] + finite[m]) / 2.0
        }
    });
    Arm {
        name: name.to_owned(),
        run: run.to_owned(),
        centre: results
            .first()
            .map(|r| r.centre.iterate.clone())
            .unwrap_or_default(),
        probes: results.iter().map(|r| r.id.clone()).collect(),
        asymmetric,
        fraction_asymmetric: asymmetric as f64 / results.len().max(1) as f64,
        mean_c: (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64),
        median_c,
        infinite_c: cs.len() - finite.len(),
    }
}

/// The arm table as CSV.
pub fn csv(result: &AblationResult) -> String {
    let mut out = String::from(
        "arm,run,centre,directions,asymmetric,fraction_asymmetric,mean_c,median_c,infinite_c\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for a in &result.arms {
        out += &format!(
            "{},{},{},{},{},{},{},{},{}\n",
            a.name,
            a.run,
            a.centre,
            a.probes.len(),
            a.asymmetric,
            a.fraction_asymmetric,
            opt(a.mean_c),
            opt(a.median_c),
            a.infinite_c
        );
    }
    out
}

/// A table of arms, one line each, for terminals and logs.
pub fn table(result: &AblationResult) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<10} {:<10} {:<8} {:>10} {:>11} {:>7} {:>9}",
        "arm", "run", "centre", "directions", "asymmetric", "mean c", "median c"
    )];
    let c = |v: Option<f64>| v.map_or("∞".to_owned(), format_c);
    for a in &result.arms {
        lines.push(format!(
            "{:<10} {:<10} {:<8} {:>10} {:>5} ({:>3.0}%) {:>7} {:>9}",
            a.name,
            a.run,
            a.centre,
            a.probes.len(),
            a.asymmetric,
            100.0 * a.fraction_asymmetric,
            c(a.mean_c),
            c(a.median_c)
        ));
    }
    let gain = |g: Option<f64>| g.map_or("–".to_owned(), |g| format!("{g:+.4}"));
    lines.push(format!(
        "SWA gain in test loss (SGD − SWA): with BN {}, without BN {}",
        gain(result.swa_gain.bn),
        gain(result.swa_gain.none)
    ));
    lines
}
