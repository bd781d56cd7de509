//! Direction probes: the loss along a line `w(t) = w_c + t·d` through the live (or saved)
//! weights, and how asymmetric it is.
//!
//! [`ProbeSpec`] says what to probe (centre, direction, parameters, grid, BN handling); the
//! worker runs it on a scratch copy of the weights, so training state is never touched.
//! This file holds the plain results ([`ProbeResult`], [`ProbePoint`]). `direction`,
//! `scan`, `runner` (probes, batches and, in `runner::plane`, planes) and
//! `offline` (a saved run's weights) hold the tensor work; `plane` (what a plane is and
//! found), `score`, `shift`, `summary` and `range` are plain data and maths over the
//! resulting curves; `store` keeps probes, batches and planes in the run directory.

pub mod connect;
pub mod direction;
pub mod offline;
pub mod plane;
pub mod range;
pub mod ratios;
pub mod runner;
pub mod scan;
pub mod score;
pub mod shift;
pub mod store;
pub mod summary;

pub use crate::config::probe::*;
use serde::{Deserialize, Serialize};

/// One point of a probe's curves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbePoint {
    #[serde(with = "crate::nonfinite")]
    pub t: f64,
    #[serde(with = "crate::nonfinite")]
    pub train_loss: f64,
    #[serde(with = "crate::nonfinite")]
    pub train_acc: f64,
    #[serde(with = "crate::nonfinite")]
    pub test_loss: f64,
    #[serde(with = "crate::nonfinite")]
    pub test_acc: f64,
    /// Standard errors of the two mean losses (absent from results of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_loss_se: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_loss_se: Option<f64>,
}

/// Which weights a probe's line goes through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeCentre {
    /// "sgd", "swa", or "swa→sgd" for interpolation.
    pub iterate: String,
    pub epoch: u32,
    pub step: u64,
    pub swa_n: u64,
    /// "live" or the checkpoint file.
    pub source: String,
}

/// What is known about a probe's direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectionInfo {
    /// ||d|| over the moved parameters (for interp: the SWA-SGD distance).
    #[serde(with = "crate::nonfinite")]
    pub norm: f64,
    /// ||w_c|| over the moved parameters.
    #[serde(with = "crate::nonfinite")]
    pub centre_norm: f64,
    /// Fraction of moved entries whose sign agrees with the centre's weights.
    #[serde(with = "crate::nonfinite")]
    pub sign_consistency: f64,
    /// Hessian directions: the eigenvalue (of `spec.eigenvector`, the top one by default) and
    /// the Lanczos steps it took (power iterations in runs before 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eigenvalue: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hessian_iterations: Option<usize>,
}

/// What a probe cost, against the lower bound of one forward pass over the same samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeCost {
    pub seconds: f64,
    pub seconds_per_point: f64,
    /// One plain forward pass (eval mode) over every sample a point reads: the training
    /// subset, the test set and, when BN is recomputed, the BN pass's samples.
    pub forward_seconds: f64,
    /// seconds_per_point / forward_seconds.
    pub ratio_to_forward: f64,
}

/// A finished probe: its settings, curves, scores and cost. Written to probes/<id>.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub id: String,
    pub spec: ProbeSpec,
    pub centre: ProbeCentre,
    pub direction: DirectionInfo,
    /// Sorted by t.
    pub points: Vec<ProbePoint>,
    pub train_score: Option<score::Score>,
    pub test_score: Option<score::Score>,
    pub shift: Option<shift::ShiftCheck>,
    pub cost: ProbeCost,
    pub created: String,
    /// The samples the losses were measured on (absent from results of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<ProbeSamples>,
    /// How an `auto` range was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_range: Option<range::AutoRange>,
}

/// How many samples a probe's losses and BN statistics come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSamples {
    pub train: usize,
    pub test: usize,
    /// Samples of each BN recomputation; None when BN was not recomputed.
    pub bn: Option<usize>,
}

impl ProbeResult {
    /// The t values of the curves.
    pub fn ts(&self) -> Vec<f64> {
        self.points.iter().map(|p| p.t).collect()
    }
}

impl crate::stored::Stored for ProbeResult {
    fn check(&self) -> Result<(), crate::stored::StoredError> {
        use crate::stored::increasing;
        if self.points.len() < 2 {
            return Err(crate::stored::StoredError(format!(
                "{} points; expected at least 2 along the line",
                self.points.len()
            )));
        }
        // Losses far out along a line may be infinite: they are stored as such, and drawn
        // as gaps.
        increasing("the points' t", &self.ts())?;
        Ok(())
    }
}

/// One line about a finished probe: id, settings, c and flat side, bias.
pub fn one_line(r: &ProbeResult) -> String {
    let score = match &r.train_score {
        Some(s) => format!(
            "c = {}{} · flat side {} · bias {:+.2}",
            format_c(s.c),
            match s.class {
                _ if s.asymmetric => " (asymmetric)",
                score::Class::Unclassified | score::Class::Symmetric => "",
                score::Class::Flat => " (flat: rises within noise)",
                _ => " (undecided: one side within noise)",
            },
            s.flat_side.symbol(),
            s.bias
        ),
        None => "not scored".into(),
    };
    format!("probe {}: {} · {score}", r.id, r.spec.summary())
}

/// One line about a score, most telling first: c and its class, flat side, bias, then the
/// rises against the noise floors and the slopes.
pub fn describe_score(name: &str, s: &score::Score) -> String {
    score_fields(name, s).join(" · ")
}

/// The fields of [`describe_score`], most telling first, for views that drop whole fields
/// where the line is too long.
pub fn score_fields(name: &str, s: &score::Score) -> Vec<String> {
    let verdict = match s.class {
        score::Class::Asymmetric => format!(" → asymmetric (≥ {})", s.threshold),
        score::Class::Unclassified if s.asymmetric => format!(" → asymmetric (≥ {})", s.threshold),
        score::Class::Unclassified => String::new(),
        other => format!(" → {}", other.as_str()),
    };
    vec![
        format!("{name:<5} c = {}{verdict}", format_c(s.c)),
        format!("flat {}", s.flat_side.symbol()),
        format!("bias {:+.2}", s.bias),
        format!(
            "rise -T {:.3} +T {:.3} (noise floor {})",
            s.rise_minus,
            s.rise_plus,
            s.describe_noise_floors()
        ),
        format!(
            "slopes beyond r={:.2}: {:.3} / {:.3}",
            s.r, s.slope_minus, s.slope_plus
        ),
    ]
}

/// How an `auto` range was chosen, in one line.
pub fn describe_auto_range(a: &range::AutoRange) -> String {
    if a.reached {
        format!(
            "auto range: T = {} where the training loss reached {:.3} ({:.0}% of the way from {:.3} to chance {:.3}); {} extra points",
            a.half_range,
            a.target_loss,
            100.0 * a.fraction,
            a.centre_loss,
            a.chance_loss,
            a.evaluations
        )
    } else {
        format!(
            "auto range: the training loss stayed below {:.3} up to T = {}; the grid stops there",
            a.target_loss, a.half_range
        )
    }
}

/// Which samples a probe measured, in one line.
pub fn describe_samples(n: &ProbeSamples) -> String {
    match n.bn {
        Some(bn) => format!(
            "samples: {} training, {} test; BN statistics recomputed at each point over {bn} training samples",
            n.train, n.test
        ),
        None => format!("samples: {} training, {} test", n.train, n.test),
    }
}

/// c for display: "4.1", or "∞".
pub fn format_c(c: f64) -> String {
    if c.is_finite() {
        format!("{c:.2}")
    } else {
        "∞".into()
    }
}
