//! The experiment's `curvature:` section (and `valleys curvature`'s flags and the dashboard's
//! form): which Hessian numbers to measure at the SGD and SWA iterates, on which loss, and
//! how hard to try. Plain data; `curvature` carries it out.

use super::probe::{ParamGroup, samples};
use crate::error::Invalid;
use crate::names::named_enum;
use serde::{Deserialize, Serialize};

/// The most eigenpairs one job asks for.
pub const MAX_TOP_K: usize = super::probe::MAX_EIGENVECTOR;
/// The most Lanczos steps (and SLQ steps) of one run: the Krylov basis is kept whole.
pub const MAX_STEPS: usize = 500;
/// The most disjoint sample sets, probe vectors, noise draws or ascent steps.
pub const MAX_REPEATS: usize = 1000;

named_enum! {
    /// Which iterates of the checkpoint are measured.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum CurvatureCentres {
        /// The SGD iterate and the SWA average (the average is left out while it is empty).
        #[default]
        Both = "both",
        Sgd = "sgd",
        Swa = "swa",
    }
}

named_enum! {
    /// How batch norm normalises in the loss whose Hessian is measured.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum CurvatureBn {
        /// Batch statistics of each batch of `batch` samples: the loss as it is trained.
        #[default]
        Batch = "batch",
        /// The checkpoint's running statistics (eval mode; what PyHessian measures).
        Eval = "eval",
    }
}

named_enum! {
    /// The shape of the ball the sharpness measures perturb the weights in.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum SharpnessScale {
        /// Each weight moves in proportion to its own size, by about ρ of itself in the
        /// average case and by at most ρ of itself in the worst case (adaptive sharpness,
        /// Kwon et al. 2021; Andriushchenko et al. 2023): a rescaling of the layers that
        /// leaves the function unchanged does not change it.
        #[default]
        Adaptive = "adaptive",
        /// Every weight moves on the same scale: ρ times the group's RMS weight.
        Plain = "plain",
    }
}

/// A curvature job as configured. Fields left out take the defaults listed with them; see
/// [`CurvatureSpec::resolved`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CurvatureSpec {
    #[serde(default)]
    pub centre: CurvatureCentres,
    /// Parameters whose Hessian block is measured.
    #[serde(default)]
    pub params: ParamGroup,
    #[serde(default)]
    pub bn: CurvatureBn,
    /// Training samples in each sample set (default: the run's own evaluation subset,
    /// `eval.train_subset`, which is the first set; `all`: every training sample, one set).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "samples")]
    pub samples: Option<usize>,
    /// Disjoint sample sets each number is measured on; the spread over them is its
    /// interval over data (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sets: Option<usize>,
    /// Top eigenvalues (and eigenvectors) by Lanczos (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// The most Lanczos steps (default 60); it stops earlier once the top k have converged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lanczos_steps: Option<usize>,
    /// Converged: each top Ritz value's residual bound within this fraction of it (default 1e-3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Rademacher vectors of the trace estimate (0: no trace; default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_vectors: Option<usize>,
    /// Independent stochastic Lanczos quadrature runs per set (0: no density; default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density_runs: Option<usize>,
    /// Lanczos steps of each SLQ run (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density_steps: Option<usize>,
    /// The sharpness measures' relative scale ρ (default 0.01): Gaussian noise of ρ times
    /// each weight (average case), and a box of ±ρ times each weight (worst case); see `scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    #[serde(default)]
    pub scale: SharpnessScale,
    /// Gaussian draws of the average-case sharpness (0: none; default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_draws: Option<usize>,
    /// Projected gradient-ascent steps of the worst-case sharpness (0: none; default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ascent_steps: Option<usize>,
    /// Samples per forward pass (default: train.batch_size with `bn: batch`, whose batch
    /// statistics it sets; 500 in eval mode, where it changes nothing but memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Seed of the random vectors (default: the experiment's seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Measure the top eigenvalue and the trace of SGD and SWA every N epochs while training
    /// (one sample set, no density or sharpness): the dashboard's curvature chart. Off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_epochs: Option<u32>,
}

/// Every setting of a curvature job, defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResolvedCurvature {
    pub centre: CurvatureCentres,
    pub params: ParamGroup,
    pub bn: CurvatureBn,
    /// Samples per set (already limited by the data).
    pub samples: usize,
    pub sets: usize,
    pub top_k: usize,
    pub lanczos_steps: usize,
    pub tolerance: f64,
    pub trace_vectors: usize,
    pub density_runs: usize,
    pub density_steps: usize,
    pub rho: f64,
    pub scale: SharpnessScale,
    pub noise_draws: usize,
    pub ascent_steps: usize,
    pub batch: usize,
    pub seed: u64,
}

/// What the run gives a curvature job's defaults.
#[derive(Debug, Clone, Copy)]
pub struct RunDefaults {
    pub seed: u64,
    /// The run's evaluation subset of the training data (its size).
    pub eval_subset: usize,
    pub train_samples: usize,
    pub train_batch: usize,
}

impl CurvatureSpec {
    /// Every default filled in from the run, or why the settings cannot be met by its data
    /// (sample sets that do not fit in the training set).
    pub fn resolved(&self, run: RunDefaults) -> Result<ResolvedCurvature, Invalid> {
        self.validate()?;
        if let Some(n) = self.samples
            && n != usize::MAX
            && n > run.train_samples
        {
            return Err(Invalid(format!(
                "curvature.samples = {n}: expected at most {}, the run's training samples (or all)",
                run.train_samples
            )));
        }
        let samples = self
            .samples
            .unwrap_or(run.eval_subset)
            .min(run.train_samples);
        // By default as many sets as fit, up to 3; sets asked for must fit.
        let fit = (run.train_samples / samples.max(1)).max(1);
        let sets = if self.samples == Some(usize::MAX) {
            1
        } else {
            self.sets.unwrap_or(fit.min(3))
        };
        if samples.saturating_mul(sets) > run.train_samples {
            return Err(Invalid(format!(
                "curvature.samples = {samples} in {sets} disjoint sets: expected at most {} samples in all (the training set); lower samples or sets",
                run.train_samples
            )));
        }
        let bn = self.bn;
        let batch = self.batch.unwrap_or(match bn {
            CurvatureBn::Batch => run.train_batch,
            CurvatureBn::Eval => 500,
        });
        let top_k = self.top_k.unwrap_or(3);
        Ok(ResolvedCurvature {
            centre: self.centre,
            params: self.params,
            bn,
            samples,
            sets,
            top_k,
            lanczos_steps: self.lanczos_steps.unwrap_or(60).max(top_k),
            tolerance: self.tolerance.unwrap_or(1e-3),
            trace_vectors: self.trace_vectors.unwrap_or(20),
            density_runs: self.density_runs.unwrap_or(2),
            density_steps: self.density_steps.unwrap_or(30),
            rho: self.rho.unwrap_or(0.01),
            scale: self.scale,
            noise_draws: self.noise_draws.unwrap_or(10),
            ascent_steps: self.ascent_steps.unwrap_or(5),
            batch: batch.min(samples).max(1),
            seed: self.seed.unwrap_or(run.seed),
        })
    }

    /// Settings that cannot mean anything, whatever the run; `curvature.<field>` names them.
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad = |field: &str, value: &dyn std::fmt::Display, expected: &str| {
            Err(Invalid(format!(
                "curvature.{field} = {value}: expected {expected}"
            )))
        };
        if let Some(k) = self.top_k
            && !(1..=MAX_TOP_K).contains(&k)
        {
            return bad("top_k", &k, &format!("1..={MAX_TOP_K}"));
        }
        // Lanczos finds at most one eigenvalue a step: fewer steps than eigenvalues asked
        // would be more steps than asked, or fewer eigenvalues.
        if let (Some(k), Some(steps)) = (self.top_k, self.lanczos_steps)
            && steps < k
        {
            return bad(
                "lanczos_steps",
                &steps,
                &format!("at least top_k = {k} (Lanczos finds at most one eigenvalue a step)"),
            );
        }
        for (field, value) in [
            ("lanczos_steps", self.lanczos_steps),
            ("density_steps", self.density_steps),
        ] {
            if let Some(n) = value
                && !(2..=MAX_STEPS).contains(&n)
            {
                return bad(field, &n, &format!("2..={MAX_STEPS}"));
            }
        }
        for (field, value, least) in [
            ("samples", self.samples, 1),
            ("sets", self.sets, 1),
            ("batch", self.batch, 1),
            ("trace_vectors", self.trace_vectors, 0),
            ("density_runs", self.density_runs, 0),
            ("noise_draws", self.noise_draws, 0),
            ("ascent_steps", self.ascent_steps, 0),
        ] {
            let most = if field == "samples" || field == "batch" {
                usize::MAX
            } else {
                MAX_REPEATS
            };
            if let Some(n) = value
                && !(least..=most).contains(&n)
            {
                return bad(field, &n, &format!("{least}..={most}"));
            }
        }
        if let Some(t) = self.tolerance
            && !(t.is_finite() && t > 0.0 && t < 1.0)
        {
            return bad("tolerance", &t, "a fraction in (0, 1), e.g. 0.001");
        }
        if let Some(rho) = self.rho
            && !(rho.is_finite() && rho > 0.0 && rho <= 10.0)
        {
            return bad("rho", &rho, "a relative scale in (0, 10], e.g. 0.01");
        }
        if self.every_epochs == Some(0) {
            return bad(
                "every_epochs",
                &0,
                "at least 1 (leave it out for no live tracking)",
            );
        }
        Ok(())
    }
}

impl CurvatureSpec {
    /// The job measured every `every_epochs` while training: the top eigenvalue and the trace
    /// of SGD and SWA on one sample set, with this section's loss (samples, BN mode, group)
    /// and effort (Lanczos steps, tolerance, trace vectors); no density or sharpness.
    pub fn for_tracking(&self) -> CurvatureSpec {
        CurvatureSpec {
            centre: CurvatureCentres::Both,
            sets: Some(1),
            top_k: Some(1),
            density_runs: Some(0),
            noise_draws: Some(0),
            ascent_steps: Some(0),
            every_epochs: None,
            ..self.clone()
        }
    }
}

impl ResolvedCurvature {
    /// Hessian-vector products one sample set takes at most (Lanczos may stop earlier):
    /// Lanczos, the trace's vectors and the SLQ runs.
    pub fn products_per_set(&self) -> usize {
        self.lanczos_steps + self.trace_vectors + self.density_runs * self.density_steps
    }

    /// What the loss is, in words: "training loss on 3 disjoint sets of 512 samples, BN with
    /// batch statistics of 128 samples".
    pub fn describe_loss(&self, has_bn: bool) -> String {
        let sets = match self.sets {
            1 => format!("{} training samples", self.samples),
            k => format!("{k} disjoint sets of {} training samples", self.samples),
        };
        let bn = match (has_bn, self.bn) {
            (false, _) => "no BN".to_owned(),
            (true, CurvatureBn::Batch) => {
                format!(
                    "BN with batch statistics of {} samples (train mode)",
                    self.batch
                )
            }
            (true, CurvatureBn::Eval) => "BN with the checkpoint's statistics (eval mode)".into(),
        };
        format!("training loss on {sets}, {bn}")
    }
}

#[cfg(test)]
mod tests;
