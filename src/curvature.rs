//! Curvature at the SGD and SWA iterates: the top eigenvalues of the training loss's Hessian
//! (Lanczos with full reorthogonalisation), its trace (Hutchinson's estimator deflated by the
//! top eigenvectors, Hutch++-style), its spectral density (stochastic Lanczos quadrature), and
//! average- and worst-case sharpness, each with an interval: over disjoint sample sets (the
//! data), and over random vectors where there is one set.
//!
//! This module holds the results and the maths on them as plain data (the UI and the reports
//! read them). The measuring is in the tensor modules: `operator` (Hessian-vector products
//! by double backward on a fixed sample set), `lanczos`, and `measure` (one job, one or both
//! centres); `store` writes and reads RUN_DIR/curvature/.

pub mod compare;
pub mod density;
pub mod lanczos;
pub mod measure;
pub mod operator;
pub mod store;
pub mod track;

use crate::config::curvature::ResolvedCurvature;
use crate::stats::{self, Interval};
use crate::stored::{Stored, StoredError, finite};
use serde::{Deserialize, Serialize};

/// A number and its 95% interval, when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
}

impl Estimate {
    /// The mean of `values` with Student's t interval (none for fewer than two values).
    pub fn mean_of(values: &[f64]) -> Option<Self> {
        let (value, interval) = stats::mean_interval(values)?;
        Some(Self { value, interval })
    }

    /// "12.3 [11.9, 12.8]" with `digits` significant digits.
    pub fn describe(&self, digits: usize) -> String {
        match &self.interval {
            Some(i) => format!(
                "{} [{}, {}]",
                significant(self.value, digits),
                significant(i.lo, digits),
                significant(i.hi, digits)
            ),
            None => significant(self.value, digits),
        }
    }
}

/// `x` with `digits` significant digits, without an exponent for everyday sizes.
pub fn significant(x: f64, digits: usize) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        return format!("{:.*e}", digits.saturating_sub(1), x);
    }
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    format!("{x:.decimals$}")
}

/// A quadrature of the spectral density: Ritz values (nodes) and their weights (summing to 1)
/// from one SLQ run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quadrature {
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
}

/// The trace estimate of one sample set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEstimate {
    /// The estimate, with its interval over the random vectors.
    pub trace: Estimate,
    /// The exact part: the sum of the top-k Ritz values (the deflated subspace).
    pub top_part: f64,
    /// The Hutchinson part over the rest, one sample per vector.
    pub samples: Vec<f64>,
}

/// Everything measured on one sample set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetCurvature {
    /// The training loss on the set, as the Hessian sees it (BN as the job says).
    pub loss: f64,
    /// Top eigenvalues, largest first.
    pub eigenvalues: Vec<f64>,
    /// Their residual bounds |Hv - θv| (each Ritz value is within it of an eigenvalue).
    pub residuals: Vec<f64>,
    /// Lanczos steps taken.
    pub lanczos_steps: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceEstimate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub density: Vec<Quadrature>,
    /// Average-case sharpness: the mean loss increase over the noise draws, and those draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_sharpness: Option<Estimate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noise_increases: Vec<f64>,
    /// Worst-case sharpness: the largest loss increase projected gradient ascent found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_sharpness: Option<f64>,
}

/// The numbers of one centre (SGD or SWA), each over the sample sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CentreCurvature {
    /// "sgd" or "swa".
    pub centre: String,
    pub test_loss: f64,
    pub test_acc: f64,
    pub loss: Estimate,
    /// Top eigenvalues, largest first, each with its interval over the sets.
    pub eigenvalues: Vec<Estimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Estimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_sharpness: Option<Estimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_sharpness: Option<Estimate>,
    /// The top eigenvalue's spread over the sets: its sample standard deviation over its
    /// mean (None with one set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_relative_spread: Option<f64>,
    pub sets: Vec<SetCurvature>,
}

impl CentreCurvature {
    /// The centre's numbers from its sets': means with intervals over the sets, or, with one
    /// set, its own intervals over random vectors.
    pub fn from_sets(centre: &str, test: (f64, f64), sets: Vec<SetCurvature>) -> Self {
        let over_sets = |f: &dyn Fn(&SetCurvature) -> Option<f64>| -> Option<Estimate> {
            let values: Vec<f64> = sets.iter().filter_map(f).collect();
            match values.len() {
                0 => None,
                1 => Some(Estimate {
                    value: values[0],
                    interval: None,
                }),
                _ => Estimate::mean_of(&values),
            }
        };
        let k = sets.iter().map(|s| s.eigenvalues.len()).min().unwrap_or(0);
        let eigenvalues = (0..k)
            .filter_map(|i| over_sets(&|s| Some(s.eigenvalues[i])))
            .collect();
        let single = sets.len() == 1;
        let own = |e: Option<Estimate>, mine: Option<Estimate>| if single { mine } else { e };
        let trace = own(
            over_sets(&|s| s.trace.as_ref().map(|t| t.trace.value)),
            sets.first().and_then(|s| s.trace.as_ref().map(|t| t.trace)),
        );
        let average_sharpness = own(
            over_sets(&|s| s.average_sharpness.map(|a| a.value)),
            sets.first().and_then(|s| s.average_sharpness),
        );
        let tops: Vec<f64> = sets
            .iter()
            .filter_map(|s| s.eigenvalues.first().copied())
            .collect();
        let top_relative_spread = (tops.len() > 1).then(|| {
            let mean = tops.iter().sum::<f64>() / tops.len() as f64;
            stats::sample_deviation(&tops) / mean.abs().max(1e-30)
        });
        Self {
            centre: centre.to_owned(),
            test_loss: test.0,
            test_acc: test.1,
            loss: over_sets(&|s| Some(s.loss)).unwrap_or(Estimate {
                value: f64::NAN,
                interval: None,
            }),
            eigenvalues,
            trace,
            average_sharpness,
            worst_sharpness: over_sets(&|s| s.worst_sharpness),
            top_relative_spread,
            sets,
        }
    }

    /// The spectral density's quadratures over every set and run.
    pub fn quadratures(&self) -> Vec<&Quadrature> {
        self.sets.iter().flat_map(|s| &s.density).collect()
    }
}

/// What a curvature job cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvatureCost {
    pub products: usize,
    pub seconds: f64,
    pub seconds_per_product: f64,
    /// One forward and backward pass over the same samples.
    pub forward_backward_seconds: f64,
    /// One product against one forward and backward pass.
    pub ratio: f64,
}

/// A curvature job's result: what was measured, on which loss, and the numbers per centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvatureResult {
    pub id: String,
    pub settings: ResolvedCurvature,
    /// The loss in words (samples, sets, BN mode).
    pub loss: String,
    pub model: String,
    /// Parameters in the measured group (the Hessian's size).
    pub dimension: usize,
    pub source: String,
    pub epoch: u32,
    pub step: u64,
    pub swa_n: u64,
    pub centres: Vec<CentreCurvature>,
    pub cost: CurvatureCost,
}

impl CurvatureResult {
    pub fn centre(&self, name: &str) -> Option<&CentreCurvature> {
        self.centres.iter().find(|c| c.centre == name)
    }
}

/// One line about a result: λ_max and the trace of each centre, with intervals, and the loss.
pub fn one_line(r: &CurvatureResult) -> String {
    let per_centre = |name: &str, f: &dyn Fn(&CentreCurvature) -> Option<Estimate>| {
        let parts: Vec<String> = r
            .centres
            .iter()
            .filter_map(|c| Some(format!("{} {}", c.centre, f(c)?.describe(3))))
            .collect();
        (!parts.is_empty()).then(|| format!("{name} {}", parts.join(", ")))
    };
    let numbers: Vec<String> = [
        per_centre("λ_max", &|c| c.eigenvalues.first().copied()),
        per_centre("trace", &|c| c.trace),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        "curvature {}: {} ({}, {} s)",
        r.id,
        numbers.join(" · "),
        r.loss,
        r.cost.seconds.round()
    )
}

impl Stored for CurvatureResult {
    fn check(&self) -> Result<(), StoredError> {
        if self.centres.is_empty() {
            return Err(StoredError(
                "centres is empty; expected sgd, swa or both".into(),
            ));
        }
        for c in &self.centres {
            let name = |field: &str| format!("centres.{}.{field}", c.centre);
            if c.sets.is_empty() {
                return Err(StoredError(format!("{} is empty", name("sets"))));
            }
            for (i, e) in c.eigenvalues.iter().enumerate() {
                finite(&name(&format!("eigenvalues[{i}]")), e.value)?;
            }
            if c.eigenvalues.windows(2).any(|w| w[0].value < w[1].value) {
                return Err(StoredError(format!(
                    "{} are not in decreasing order",
                    name("eigenvalues")
                )));
            }
            for set in &c.sets {
                if set.eigenvalues.len() != set.residuals.len() {
                    return Err(StoredError(format!(
                        "{}: {} eigenvalues but {} residuals",
                        name("sets"),
                        set.eigenvalues.len(),
                        set.residuals.len()
                    )));
                }
                for q in &set.density {
                    density::check(q)
                        .map_err(|e| StoredError(format!("{}: {e}", name("sets.density"))))?;
                }
            }
            for (field, value) in [
                ("trace", c.trace.map(|t| t.value)),
                ("average_sharpness", c.average_sharpness.map(|t| t.value)),
                ("worst_sharpness", c.worst_sharpness.map(|t| t.value)),
            ] {
                if let Some(v) = value {
                    finite(&name(field), v)?;
                }
            }
        }
        Ok(())
    }
}

/// A finished job as the worker reports it, its numbers chosen by hand: two centres over three
/// sets, SWA flatter than SGD, a density of a bulk near zero and the top eigenvalues apart.
#[cfg(test)]
pub(crate) fn fixture(id: &str) -> CurvatureResult {
    use crate::config::curvature::{CurvatureSpec, RunDefaults};
    let set = |scale: f64, shift: f64| SetCurvature {
        loss: 0.25 * scale,
        eigenvalues: vec![10.0 * scale + shift, 6.0 * scale, 4.0 * scale],
        residuals: vec![0.001; 3],
        lanczos_steps: 30,
        trace: Some(TraceEstimate {
            trace: Estimate {
                value: 200.0 * scale + shift,
                interval: None,
            },
            top_part: 20.0 * scale,
            samples: vec![180.0 * scale],
        }),
        density: vec![Quadrature {
            nodes: vec![
                -0.1 * scale,
                0.05 * scale,
                0.5 * scale,
                4.0 * scale,
                10.0 * scale,
            ],
            weights: vec![0.3, 0.4, 0.2, 0.07, 0.03],
        }],
        average_sharpness: Some(Estimate {
            value: 0.001 * scale,
            interval: None,
        }),
        noise_increases: vec![0.001 * scale],
        worst_sharpness: Some(0.2 * scale + shift / 100.0),
    };
    let centre = |name: &str, scale: f64, test: f64| {
        CentreCurvature::from_sets(
            name,
            (test, 0.88),
            vec![set(scale, -0.5), set(scale, 0.0), set(scale, 0.5)],
        )
    };
    let settings = CurvatureSpec::default()
        .resolved(RunDefaults {
            seed: 1,
            eval_subset: 256,
            train_samples: 10_000,
            train_batch: 128,
        })
        .expect("defaults resolve");
    CurvatureResult {
        id: id.to_owned(),
        settings,
        loss: settings.describe_loss(true),
        model: "preresnet-8 (BN, 77 562 parameters)".into(),
        dimension: 77_562,
        source: "live".into(),
        epoch: 15,
        step: 1185,
        swa_n: 7,
        centres: vec![centre("sgd", 1.0, 0.3329), centre("swa", 0.75, 0.3017)],
        cost: CurvatureCost {
            products: 242,
            seconds: 75.5,
            seconds_per_product: 0.266,
            forward_backward_seconds: 0.102,
            ratio: 2.61,
        },
    }
}

#[cfg(test)]
mod tests;
