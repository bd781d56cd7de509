//! What an ablation found: its arms and their asymmetry statistics. Plain data over finished
//! probe results (no tensors), read by the dashboard, the reports and the protocol.

use crate::config::probe::ProbeSpec;
use crate::names::named_enum;
use crate::probe::summary::{Asymmetry, Comparison, asymmetry};
use crate::probe::{ProbeResult, format_c};
use crate::stats;
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
    /// Mean of c over the directions with a finite c.
    pub mean_c: Option<f64>,
    #[serde(flatten)]
    pub stats: Asymmetry,
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
    /// Arm against arm (BN-only against non-BN, with BN against without), per centre.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparisons: Vec<Comparison>,
    pub swa_gain: SwaGain,
    pub created: String,
}

impl crate::stored::Stored for AblationResult {
    fn check(&self) -> Result<(), crate::stored::StoredError> {
        crate::stored::finite("threshold", self.threshold)?;
        if self.arms.is_empty() {
            return Err(crate::stored::StoredError(
                "no arm; expected the arms the ablation compared".into(),
            ));
        }
        for arm in &self.arms {
            arm.stats.check(&format!("arm {}:", arm.name))?;
        }
        Ok(())
    }
}

/// Arm statistics from probe results (the same numbers whether the results are fresh or read
/// back from their files).
pub fn arm(name: &str, run: &str, results: &[ProbeResult]) -> Arm {
    let finite: Vec<f64> = results
        .iter()
        .filter_map(|r| r.train_score.as_ref())
        .map(|s| s.c)
        .filter(|c| c.is_finite())
        .collect();
    Arm {
        name: name.to_owned(),
        run: run.to_owned(),
        centre: results
            .first()
            .map(|r| r.centre.iterate.clone())
            .unwrap_or_default(),
        probes: results.iter().map(|r| r.id.clone()).collect(),
        mean_c: (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64),
        stats: asymmetry(results),
    }
}

/// The arm table as CSV, with each arm's 95% intervals.
pub fn csv(result: &AblationResult) -> String {
    let mut out = String::from(
        "arm,run,centre,directions,asymmetric,symmetric,flat,undecided,fraction_asymmetric,fraction_lo,fraction_hi,mean_c,median_c,median_c_lo,median_c_hi,infinite_c\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for a in &result.arms {
        let s = &a.stats;
        let (f, m) = (s.fraction_interval, s.median_c_interval);
        out += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            a.name,
            a.run,
            a.centre,
            a.probes.len(),
            s.asymmetric,
            s.symmetric,
            s.flat,
            s.undecided,
            s.fraction_asymmetric,
            opt(f.map(|i| i.lo)),
            opt(f.map(|i| i.hi)),
            opt(a.mean_c),
            opt(s.median_c),
            opt(m.map(|i| i.lo)),
            opt(m.map(|i| i.hi)),
            s.infinite_c
        );
    }
    out
}

/// A table of arms, one line each, then the comparisons, for terminals and logs.
pub fn table(result: &AblationResult) -> Vec<String> {
    // Every class is counted, so that the columns add up to the directions probed (an
    // unscored curve, whose grid missed a side, is the remainder).
    let mut lines = vec![format!(
        "{:<8} {:<9} {:<7} {:>5} {:>5} {:>14} {:>5} {:>5} {:>6} {:>20}",
        "arm",
        "run",
        "centre",
        "dirs",
        "asym",
        "% [95% CI]",
        "sym",
        "flat",
        "undec",
        "median c [95% CI]"
    )];
    let c = |v: Option<f64>| v.map_or("–".to_owned(), format_c);
    for a in &result.arms {
        let s = &a.stats;
        let percent = s.fraction_interval.map_or_else(
            || format!("{:.0}%", 100.0 * s.fraction_asymmetric),
            |i| {
                format!(
                    "{:.0}% [{:.0},{:.0}]",
                    100.0 * s.fraction_asymmetric,
                    100.0 * i.lo,
                    100.0 * i.hi
                )
            },
        );
        let median = match (s.median_c, &s.median_c_interval) {
            (Some(m), Some(i)) => format!("{} {}", format_c(m), stats::format_interval(i, 2)),
            (m, _) => c(m),
        };
        lines.push(format!(
            "{:<8} {:<9} {:<7} {:>5} {:>5} {:>14} {:>5} {:>5} {:>6} {:>20}",
            a.name,
            a.run,
            a.centre,
            a.probes.len(),
            s.asymmetric,
            percent,
            s.symmetric,
            s.flat,
            s.undecided,
            median
        ));
    }
    for comparison in &result.comparisons {
        lines.push(comparison.describe());
    }
    let gain = |g: Option<f64>| g.map_or("–".to_owned(), |g| format!("{g:+.4}"));
    lines.push(format!(
        "SWA gain in test loss (SGD − SWA): with BN {}, without BN {}",
        gain(result.swa_gain.bn),
        gain(result.swa_gain.none)
    ));
    lines
}
