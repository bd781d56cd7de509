//! The experiment's `probe:` section (and the probe form's and flags' settings): what to
//! probe and how. Plain data; the probe module carries it out.

use crate::names::named_enum;
use serde::{Deserialize, Serialize};

/// The deepest Hessian eigenvector a probe (or a curvature job's top k) goes to.
pub const MAX_EIGENVECTOR: usize = 10;

named_enum! {
    /// Where the line goes through.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum CentreKind {
        /// The SGD iterate.
        Sgd = "sgd",
        /// The SWA average (falls back to SGD while the average is empty).
        #[default]
        Swa = "swa",
    }
}

named_enum! {
    /// How the direction is drawn.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum DirectionKind {
        /// U(0, 1) entries, unit L2 norm over the chosen parameters (the paper's setting).
        #[default]
        Uniform = "uniform",
        /// N(0, 1) entries, normalised as `norm` says.
        Gaussian = "gaussian",
        /// |N(0, 1)| with the sign of the centre's weights (sign-consistent noise, the 2024
        /// follow-up), unit L2 norm.
        Sign = "sign",
        /// Towards the other iterate: from SWA (t = 0) to SGD (t = 1), as in the authors' code.
        Interp = "interp",
        /// An eigenvector of the training-loss Hessian at the centre (the top one unless
        /// `eigenvector` says), by Lanczos.
        Hessian = "hessian",
        /// |N(0, 1)| whose signs agree with the centre's weights on exactly a fraction `ratio`
        /// of the entries (chosen at random), unit L2 norm: Li et al. 2024's knob.
        SignMatch = "sign-match",
    }
}

impl DirectionKind {
    /// True for the kinds drawn from a seed.
    pub fn is_random(self) -> bool {
        matches!(
            self,
            Self::Uniform | Self::Gaussian | Self::Sign | Self::SignMatch
        )
    }
}

named_enum! {
    /// How a Gaussian direction is scaled.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Normalisation {
        /// Unit L2 norm over all chosen parameters.
        #[default]
        Global = "global",
        /// Each parameter tensor scaled to the norm of the matching weights.
        Layer = "layer",
        /// Each filter (output slice) scaled to the norm of the matching weight filter
        /// (Li et al. 2018).
        Filter = "filter",
    }
}

named_enum! {
    /// What layer and filter normalisation do with 1-D tensors (biases, BN scales and shifts).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum BiasBn {
        /// Zero them: the line moves only weight matrices and filters (`--xignore biasbn`).
        #[default]
        Zero = "zero",
        /// Set them to the weights' own values, as Li et al. do without `--xignore`.
        Keep = "keep",
    }
}

named_enum! {
    /// Which parameters the direction may move.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum ParamGroup {
        #[default]
        All = "all",
        /// Batch-norm scales and shifts only.
        Bn = "bn",
        /// Everything but batch-norm scales and shifts.
        NonBn = "non-bn",
    }
}

impl ParamGroup {}

named_enum! {
    /// BN statistics at each point of the line.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum BnMode {
        /// Recomputed exactly over a training subset at every point, as the authors do.
        #[default]
        Recompute = "recompute",
        /// The centre's running statistics, unchanged along the line.
        Frozen = "frozen",
        /// Batch statistics of each evaluation batch (train mode without updates).
        Batch = "batch",
    }
}

impl BnMode {}

/// A probe as configured (the experiment's `probe:` section, the form, or the flags). Fields
/// left out take defaults that depend on the direction; see [`ProbeSpec::resolved`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    #[serde(default)]
    pub centre: CentreKind,
    #[serde(default)]
    pub direction: DirectionKind,
    #[serde(default)]
    pub norm: Normalisation,
    #[serde(default)]
    pub bias_bn: BiasBn,
    #[serde(default)]
    pub params: ParamGroup,
    /// Start of the t grid (default -10, or -2 for interp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<f64>,
    /// End of the t grid (default 10, or 3 for interp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<f64>,
    /// Grid points (default on a GPU 41, or the authors' 201 for interp; on a CPU 21 for
    /// both, so that a probe of the quick run answers in about a minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<usize>,
    /// Choose the range per direction: T where the training loss has covered this fraction
    /// of the way from the centre's loss to chance (e.g. 0.5), the grid then [-T, T].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_range: Option<f64>,
    /// Training samples the training loss is measured on (default: the run's own evaluation
    /// subset, `eval.train_subset`, so that t = 0 matches the dashboard; `all`: every one).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "samples")]
    pub train_subset: Option<usize>,
    /// Test samples the test loss is measured on (default: the whole test set).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "samples")]
    pub test_subset: Option<usize>,
    #[serde(default)]
    pub bn: BnMode,
    /// Training samples of each BN recomputation (default: the run's own pass over
    /// `swa.bn_subset`, every training sample unless set; `all`: every one).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "samples")]
    pub bn_subset: Option<usize>,
    /// Seed of random directions (default: the experiment's seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// A sign-match direction's share of entries whose sign agrees with the centre's weight,
    /// 0 to 1 (required with it, refused with any other direction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// c at or above which a direction counts as asymmetric (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The smallest rise of the loss that counts, when the losses' standard errors are
    /// smaller (default 0.001); see `score`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rise: Option<f64>,
    /// Lanczos steps of the Hessian direction at most (default 20; it stops once the
    /// eigenvector has converged) and its batch (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hessian_iterations: Option<usize>,
    /// Which Hessian eigenvector the direction is: 1 the top one (the default), k the k-th
    /// largest eigenvalue's (at most 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eigenvector: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hessian_batch: Option<usize>,
    /// Points measured at once, side by side in one forward pass (default 16 on a GPU, 1 on
    /// a CPU, where it is slower); the numbers are the same either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_batch: Option<usize>,
}

impl ProbeSpec {
    /// Every default filled in for `seed` (the experiment's) and the device the points are
    /// measured on (`gpu`). The subsets stay unset when they are the run's own (see the
    /// fields).
    pub fn resolved(&self, seed: u64, gpu: bool) -> Self {
        let interp = self.direction == DirectionKind::Interp;
        let (from, to) = match self.auto_range {
            // The range is found per direction; until then, the default's.
            Some(_) => (self.from.or(Some(-10.0)), self.to.or(Some(10.0))),
            None => (
                Some(self.from.unwrap_or(if interp { -2.0 } else { -10.0 })),
                Some(self.to.unwrap_or(if interp { 3.0 } else { 10.0 })),
            ),
        };
        Self {
            from,
            to,
            points: Some(self.points.unwrap_or(default_points(interp, gpu))),
            seed: Some(self.seed.unwrap_or(seed)),
            threshold: Some(self.threshold.unwrap_or(3.0)),
            min_rise: Some(
                self.min_rise
                    .unwrap_or(crate::probe::score::DEFAULT_MIN_RISE),
            ),
            hessian_iterations: Some(self.hessian_iterations.unwrap_or(20)),
            hessian_batch: Some(self.hessian_batch.unwrap_or(512)),
            ..self.clone()
        }
    }

    /// These settings for a probe along `direction`: the grid (range, points, auto range)
    /// belongs to the direction it was set for, so moving between interpolation (t from SWA
    /// to SGD, default [-2, 3]) and directions through a centre (default [-10, 10]) drops it
    /// and the new kind's defaults apply.
    pub fn with_direction(&self, direction: DirectionKind) -> Self {
        let interp = |d: DirectionKind| d == DirectionKind::Interp;
        let mut s = self.clone();
        if interp(direction) != interp(self.direction) {
            (s.from, s.to, s.points, s.auto_range) = (None, None, None, None);
        }
        s.direction = direction;
        if direction != DirectionKind::SignMatch {
            s.ratio = None;
        }
        s
    }

    /// The t grid: `points` evenly spaced values from `from` to `to`.
    pub fn grid(&self) -> Vec<f64> {
        let (a, b) = (self.from.unwrap_or(-10.0), self.to.unwrap_or(10.0));
        let n = self.points.unwrap_or(41).max(2);
        (0..n)
            .map(|i| {
                let t = a + (b - a) * i as f64 / (n - 1) as f64;
                // Snap to the grid's own spacing so that t = 0 is exactly 0.
                (t * 1e9).round() / 1e9
            })
            .collect()
    }

    /// Checks values that would make a meaningless (or impossibly large) probe; `field` names use the YAML keys.
    pub fn validate(&self) -> Result<(), crate::error::Invalid> {
        let (a, b) = (self.from.unwrap_or(-10.0), self.to.unwrap_or(10.0));
        if !(a.is_finite() && b.is_finite() && a < b) {
            return Err(crate::error::Invalid(format!(
                "probe range [{a}, {b}]: expected from < to, both finite"
            )));
        }
        if let Some(n) = self.points
            && !(3..=MAX_POINTS).contains(&n)
        {
            return Err(crate::error::Invalid(format!(
                "probe.points = {n}: expected 3..={MAX_POINTS}"
            )));
        }
        check_point_batch(self.point_batch)?;
        if let Some(n) = self.hessian_iterations
            && n > 10_000
        {
            return Err(crate::error::Invalid(format!(
                "probe.hessian_iterations = {n}: expected at most 10000"
            )));
        }
        if let Some(k) = self.eigenvector
            && !(1..=MAX_EIGENVECTOR).contains(&k)
        {
            return Err(crate::error::Invalid(format!(
                "probe.eigenvector = {k}: expected 1..={MAX_EIGENVECTOR}"
            )));
        }
        for (name, v) in [
            ("train_subset", self.train_subset),
            ("bn_subset", self.bn_subset),
            ("test_subset", self.test_subset),
            ("hessian_iterations", self.hessian_iterations),
            ("hessian_batch", self.hessian_batch),
        ] {
            if v == Some(0) {
                return Err(crate::error::Invalid(format!(
                    "probe.{name} = 0: expected at least 1"
                )));
            }
        }
        match (self.direction, self.ratio) {
            (DirectionKind::SignMatch, Some(r)) if !(0.0..=1.0).contains(&r) => {
                return Err(crate::error::Invalid(format!(
                    "probe.ratio = {r}: expected a fraction of agreeing signs, 0 <= ratio <= 1"
                )));
            }
            (DirectionKind::SignMatch, None) => {
                return Err(crate::error::Invalid(
                    "direction sign-match: expected a ratio of agreeing signs, e.g. --ratio 0.7 (0 to 1)".into(),
                ));
            }
            (other, Some(_)) if other != DirectionKind::SignMatch => {
                return Err(crate::error::Invalid(format!(
                    "probe.ratio is for direction sign-match; this probe's direction is {}",
                    other.as_str()
                )));
            }
            _ => {}
        }
        if let Some(c) = self.threshold
            && !(c.is_finite() && c >= 1.0)
        {
            return Err(crate::error::Invalid(format!(
                "probe.threshold = {c}: expected c >= 1"
            )));
        }
        if let Some(m) = self.min_rise
            && !(m.is_finite() && m >= 0.0)
        {
            return Err(crate::error::Invalid(format!(
                "probe.min_rise = {m}: expected a finite rise >= 0"
            )));
        }
        if let Some(f) = self.auto_range {
            if !(f.is_finite() && f > 0.0 && f < 1.0) {
                return Err(crate::error::Invalid(format!(
                    "probe.auto_range = {f}: expected a fraction of the way to chance loss, 0 < f < 1"
                )));
            }
            if self.direction == DirectionKind::Interp {
                return Err(crate::error::Invalid(
                    "probe.auto_range: interp runs from SWA (t = 0) to SGD (t = 1); set its from/to instead".into(),
                ));
            }
        }
        Ok(())
    }

    /// A short description, e.g. "uniform seed 7 · swa · all · BN recompute · 41 pts".
    pub fn summary(&self) -> String {
        let mut s = self.direction.as_str().to_owned();
        if self.direction == DirectionKind::Gaussian {
            s += &format!(
                " ({})",
                match self.norm {
                    Normalisation::Global => "global",
                    Normalisation::Layer => "layer",
                    Normalisation::Filter => "filter",
                }
            );
        }
        if let (DirectionKind::SignMatch, Some(r)) = (self.direction, self.ratio) {
            s += &format!(" ρ {r}");
        }
        if self.direction.is_random() {
            s += &format!(" seed {}", self.seed.unwrap_or(0));
        }
        if self.direction == DirectionKind::Hessian
            && let Some(k) = self.eigenvector.filter(|&k| k > 1)
        {
            s += &format!(" #{k}");
        }
        let centre = match (self.direction, self.centre) {
            (DirectionKind::Interp, _) => "swa→sgd",
            (_, CentreKind::Sgd) => "sgd",
            (_, CentreKind::Swa) => "swa",
        };
        format!(
            "{s} · {centre} · {} · BN {} · {} pts",
            self.params.as_str(),
            self.bn.as_str(),
            self.points.unwrap_or(41)
        )
    }
}

/// Grid points when none are asked for. A CPU measures 21 (a point of the quick run costs
/// about two seconds on two cores; the grid is measured coarse to fine, so its shape shows
/// first); a GPU the authors' 201 along an interpolation and 41 along a direction.
pub fn default_points(interp: bool, gpu: bool) -> usize {
    match (gpu, interp) {
        (false, _) => 21,
        (true, true) => 201,
        (true, false) => 41,
    }
}

/// The most points of a line measured in one stacked forward pass.
pub const MAX_POINT_BATCH: usize = 64;

/// The one check of `point_batch`, wherever it comes from (a flag, an experiment's `probe:`,
/// a sweep's `plane:`, a form).
pub fn check_point_batch(point_batch: Option<usize>) -> Result<(), crate::error::Invalid> {
    match point_batch {
        Some(k) if !(1..=MAX_POINT_BATCH).contains(&k) => Err(crate::error::Invalid(format!(
            "point_batch {k}: expected 1..={MAX_POINT_BATCH} points per pass"
        ))),
        _ => Ok(()),
    }
}

/// At most this many points on a probe's grid.
pub const MAX_POINTS: usize = 100_001;

/// Sample counts that may also be `all` (every sample; stored as `usize::MAX`, which every
/// subset of a smaller set is).
pub mod samples;

#[cfg(test)]
mod tests;
