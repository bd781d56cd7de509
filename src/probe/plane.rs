//! Loss surfaces in 2-D: the plane w(x, y) = w_c + x·d₁ + y·d₂ through the centre.
//!
//! - `swa-sgd`: d₁ = w_SGD − w_SWA, d₂ a random direction made orthogonal to d₁ and scaled to
//!   its norm, so SWA sits at (0, 0) and SGD at (1, 0);
//! - `random`: two random directions (Li et al.'s filter-normalised Gaussians by default), the
//!   second made orthogonal to the first and given back its norm;
//! - `hessian`: two eigenvectors of the training loss's Hessian at the centre (the top two by
//!   default), unit length and orthogonal, so the plane holds the sharpest directions there;
//! - `pca`: the two leading principal directions of the run's stored trajectory (Li et al.
//!   2018), each scaled to the path's farthest point along it, so the path fits in ±1.
//!
//! A plane of a run that keeps its trajectory carries the path projected onto it, each point
//! with the share of its distance from the centre the plane does not hold.
//!
//! Each row y of the grid is a line through w_c + y·d₂ along d₁, measured exactly as a probe
//! measures its line ([`Line`]), so the row through the centre is the 1-D probe along d₁. The
//! points are visited coarse to fine (every 4th in both directions, then every 2nd, then the
//! rest), so a picture of the whole plane exists after a sixteenth of the cost.
//!
//! This module is plain data: what a plane measures ([`PlaneSpec`]), what it found
//! ([`PlaneResult`]) and the grid's arithmetic, free of tensors, so the dashboard and the
//! reports read it without libtorch. `probe::runner::plane` measures planes and
//! `probe::store` keeps them in the run directory.

mod path;
mod result;
mod settings;
pub mod tiles;

pub use path::{path_line, path_marks};
pub use result::*;
pub use settings::PlaneSettings;

use super::{BiasBn, BnMode, CentreKind, DirectionKind, Normalisation, ParamGroup, ProbePoint};
use crate::names::named_enum;
use serde::{Deserialize, Serialize};

named_enum! {
    /// Which plane.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum PlaneKind {
        /// Through SWA (0, 0) and SGD (1, 0), and a random direction.
        #[default]
        SwaSgd = "swa-sgd",
        /// Two random directions through the centre.
        Random = "random",
        /// Two Hessian eigenvectors (the top two by default) through the centre.
        Hessian = "hessian",
        /// The trajectory's two leading principal directions through the centre.
        Pca = "pca",
    }
}

named_enum! {
    /// Which value of its points a plane is coloured by.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum PlaneValue {
        #[default]
        Test = "test",
        Train = "train",
        /// Test minus training loss.
        Gap = "gap",
    }
}

impl PlaneValue {
    /// What it is, in words.
    pub fn label(self) -> &'static str {
        match self {
            Self::Test => "test loss",
            Self::Train => "training loss",
            Self::Gap => "test − training loss",
        }
    }

    /// The value of a point.
    pub fn of(self, p: &ProbePoint) -> f64 {
        match self {
            Self::Test => p.test_loss,
            Self::Train => p.train_loss,
            Self::Gap => p.test_loss - p.train_loss,
        }
    }
}

/// What d₂'s seed adds to the plane's `seed` (wrapping): d₂ of a random plane must not be
/// its d₁, nor the direction a probe draws with the same seed.
pub const D2_SEED_OFFSET: u64 = 0x9E37_79B9;

/// The seed d₂ of a plane with `seed` is drawn from.
pub fn d2_seed(seed: u64) -> u64 {
    seed.wrapping_add(D2_SEED_OFFSET)
}

/// The largest grid side: 201 × 201 points is already a day of work on a CPU.
pub const MAX_SIDE: usize = 201;

/// What a plane measures ([`PlaneSpec::for_kind`] gives the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaneSpec {
    pub kind: PlaneKind,
    /// The centre of a `random` or `hessian` plane (a `swa-sgd` plane is centred on SWA).
    pub centre: CentreKind,
    /// How the random direction(s) are drawn: uniform, gaussian or sign (unused by a
    /// `hessian` plane).
    pub direction: DirectionKind,
    pub norm: Normalisation,
    pub bias_bn: BiasBn,
    pub params: ParamGroup,
    /// Grid points along x and y.
    pub points: (usize, usize),
    pub x: (f64, f64),
    pub y: (f64, f64),
    pub bn: BnMode,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    pub bn_subset: Option<usize>,
    pub seed: Option<u64>,
    /// Points of a row measured at once on a stacked copy of the model, as probes do (None:
    /// the device's default, 1 on a CPU and 16 on a GPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_batch: Option<usize>,
    /// Which eigenvectors a `hessian` plane spans, (k₁, k₂) with 1 the top one (None: 1 and 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eigenvectors: Option<(usize, usize)>,
    /// The first training samples a `hessian` plane's Hessian is taken on (None: 512), in one
    /// batch, BN as a probe's Hessian direction has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hessian_batch: Option<usize>,
}

/// The eigenvectors a `hessian` plane spans unless told: the top two.
pub const DEFAULT_EIGENVECTORS: (usize, usize) = (1, 2);

/// Training samples of a `hessian` plane's Hessian unless told (as a Hessian probe's).
pub const DEFAULT_HESSIAN_BATCH: usize = 512;

/// Lanczos steps of a `hessian` plane at most: it stops once both eigenvectors converge.
pub const HESSIAN_STEPS: usize = 30;

/// Training samples of a plane point's BN recomputation unless told otherwise: the first
/// 2 000 of the run's own pass. The BN pass is most of a point's cost (on the quick run it
/// reads 10 000 samples against the 4 000 the losses read); 2 000 cut a 21×21 plane there from
/// 16 to under 6 minutes on two cores and moved the test loss at SWA by 0.0007, against its
/// standard error of 0.0167. Every point shares the same samples, so what they change varies
/// smoothly over the plane instead of speckling it. `all` restores the whole pass.
pub const DEFAULT_BN_SAMPLES: usize = 2000;

impl Default for PlaneSpec {
    fn default() -> Self {
        Self::for_kind(PlaneKind::SwaSgd)
    }
}

impl PlaneSpec {
    /// The defaults of a plane of `kind`: 21×21 points; x from −0.5 to 1.5 and y from −1 to 1
    /// around SWA and SGD, −1 to 1 both ways for two random directions (each as long as the
    /// filters it follows), −0.5 to 0.5 both ways along two unit eigenvectors (as PyHessian's
    /// examples perturb along them); Gaussian, filter-normalised random directions; BN
    /// statistics recomputed at each point from the first [`DEFAULT_BN_SAMPLES`] samples of the
    /// run's own pass.
    pub fn for_kind(kind: PlaneKind) -> Self {
        let (x, y) = match kind {
            PlaneKind::SwaSgd => ((-0.5, 1.5), (-1.0, 1.0)),
            PlaneKind::Random => ((-1.0, 1.0), (-1.0, 1.0)),
            PlaneKind::Hessian => ((-0.5, 0.5), (-0.5, 0.5)),
            PlaneKind::Pca => ((-1.2, 1.2), (-1.2, 1.2)),
        };
        Self {
            kind,
            centre: CentreKind::Swa,
            direction: DirectionKind::Gaussian,
            norm: Normalisation::Filter,
            bias_bn: BiasBn::Zero,
            params: ParamGroup::All,
            points: (21, 21),
            x,
            y,
            bn: BnMode::Recompute,
            train_subset: None,
            test_subset: None,
            bn_subset: Some(DEFAULT_BN_SAMPLES),
            seed: None,
            point_batch: None,
            eigenvectors: None,
            hessian_batch: None,
        }
    }

    /// The eigenvectors a `hessian` plane spans.
    pub fn eigenvector_pair(&self) -> (usize, usize) {
        self.eigenvectors.unwrap_or(DEFAULT_EIGENVECTORS)
    }

    /// What d₁ and d₂ are, in words: "SGD − SWA" and "gaussian filter", or "Hessian
    /// eigenvector 1" and "Hessian eigenvector 2".
    pub fn direction_labels(&self) -> (String, String) {
        let random = match self.direction {
            DirectionKind::Gaussian => format!("gaussian {}", self.norm.as_str()),
            other => other.as_str().to_owned(),
        };
        match self.kind {
            PlaneKind::SwaSgd => ("SGD − SWA".into(), random),
            PlaneKind::Random => (random.clone(), random),
            PlaneKind::Hessian => {
                let (a, b) = self.eigenvector_pair();
                (
                    format!("Hessian eigenvector {a}"),
                    format!("Hessian eigenvector {b}"),
                )
            }
            PlaneKind::Pca => ("trajectory PC 1".into(), "trajectory PC 2".into()),
        }
    }

    /// True for planes whose directions are not drawn at random (nor from SGD − SWA).
    pub fn derived_directions(&self) -> bool {
        matches!(self.kind, PlaneKind::Hessian | PlaneKind::Pca)
    }

    /// Checks the grid and the direction; one line naming the value and what was expected.
    pub fn validate(&self) -> Result<(), crate::error::Invalid> {
        for (n, what) in [
            (self.train_subset, "train_subset"),
            (self.test_subset, "test_subset"),
            (self.bn_subset, "bn_subset"),
        ] {
            if n == Some(0) {
                return Err(crate::error::Invalid(format!(
                    "{what} 0: expected at least 1 sample, or all (a point measured on no sample has no loss)"
                )));
            }
        }
        let (nx, ny) = self.points;
        for (n, axis) in [(nx, "x"), (ny, "y")] {
            if !(2..=MAX_SIDE).contains(&n) {
                return Err(crate::error::Invalid(format!(
                    "points {nx}x{ny}: {n} along {axis}; expected 2..={MAX_SIDE} points per side"
                )));
            }
        }
        for ((a, b), axis) in [(self.x, "x"), (self.y, "y")] {
            if !(a.is_finite() && b.is_finite() && a < b) {
                return Err(crate::error::Invalid(format!(
                    "{axis} {a}:{b}: expected a range FROM:TO of finite numbers with FROM < TO"
                )));
            }
        }
        if self.kind == PlaneKind::Hessian {
            let (a, b) = self.eigenvector_pair();
            let most = crate::config::probe::MAX_EIGENVECTOR;
            if a == b || !(1..=most).contains(&a) || !(1..=most).contains(&b) {
                return Err(crate::error::Invalid(format!(
                    "eigenvectors {a},{b}: expected two different eigenvectors K1,K2 in 1..={most}"
                )));
            }
            if self.hessian_batch == Some(0) {
                return Err(crate::error::Invalid(
                    "hessian_batch 0: expected at least 1 sample to take the Hessian on".into(),
                ));
            }
            return Ok(());
        }
        if self.eigenvectors.is_some() || self.hessian_batch.is_some() {
            return Err(crate::error::Invalid(format!(
                "eigenvectors and hessian_batch are for plane hessian; this plane is {}",
                self.kind.as_str()
            )));
        }
        if self.kind == PlaneKind::Pca {
            return Ok(());
        }
        if self.params == ParamGroup::Bn
            && self.direction == DirectionKind::Gaussian
            && self.norm != Normalisation::Global
            && self.bias_bn == BiasBn::Zero
        {
            return Err(crate::error::Invalid(format!(
                "params bn with norm {} and bias_bn zero: every BN parameter is 1-D, so the directions would be zero; expected --norm global (or --bias-bn keep)",
                self.norm.as_str()
            )));
        }
        if !matches!(
            self.direction,
            DirectionKind::Uniform | DirectionKind::Gaussian | DirectionKind::Sign
        ) {
            return Err(crate::error::Invalid(format!(
                "direction {}: expected uniform, gaussian or sign (a plane draws its random directions)",
                self.direction.as_str()
            )));
        }
        Ok(())
    }

    /// "swa-sgd 21x21 · x -0.5..1.5 · y -1..1 · gaussian filter · params all · BN recompute".
    pub fn summary(&self) -> String {
        let direction = match self.kind {
            PlaneKind::Hessian => {
                let (a, b) = self.eigenvector_pair();
                format!("eigenvectors {a},{b}")
            }
            PlaneKind::Pca => "trajectory PCs".into(),
            _ => self.direction_labels().1,
        };
        format!(
            "{} {}x{} · x {}..{} · y {}..{} · {direction} · params {} · BN {}",
            self.kind.as_str(),
            self.points.0,
            self.points.1,
            self.x.0,
            self.x.1,
            self.y.0,
            self.y.1,
            self.params.as_str(),
            self.bn.as_str()
        )
    }

    /// The grid's x values.
    pub fn xs(&self) -> Vec<f64> {
        linspace(self.x, self.points.0)
    }

    /// The grid's y values.
    pub fn ys(&self) -> Vec<f64> {
        linspace(self.y, self.points.1)
    }
}

/// `n` evenly spaced values from `a` to `b`, both included; 0 exactly when it is a grid
/// value (so that the centre's row and column are the 1-D probes through it).
fn linspace((a, b): (f64, f64), n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let v = a + (b - a) * i as f64 / (n - 1) as f64;
            if v.abs() < 1e-12 * (b - a) { 0.0 } else { v }
        })
        .collect()
}

/// `--points NxM` (or a single N for N×N).
pub fn parse_points(text: &str) -> Result<(usize, usize), crate::error::Invalid> {
    let bad = || format!("'{text}': expected NxM grid points, e.g. 21x21 (or one N for NxN)");
    let (a, b) = match text.split_once(['x', 'X']) {
        Some((a, b)) => (a, b),
        None => (text, text),
    };
    let n = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
    Ok((n(a)?, n(b)?))
}

/// `--eigenvectors K1,K2`.
pub fn parse_eigenvectors(text: &str) -> Result<(usize, usize), crate::error::Invalid> {
    let bad = || format!("'{text}': expected two eigenvectors K1,K2, e.g. 1,2 (1: the top one)");
    let (a, b) = text.split_once(',').ok_or_else(bad)?;
    let k = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
    Ok((k(a)?, k(b)?))
}

/// `--x FROM:TO`.
pub fn parse_range(text: &str) -> Result<(f64, f64), crate::error::Invalid> {
    let bad = || format!("'{text}': expected FROM:TO, e.g. -0.5:1.5");
    let (a, b) = text.split_once(':').ok_or_else(bad)?;
    let v = |s: &str| s.trim().parse::<f64>().map_err(|_| bad());
    Ok((v(a)?, v(b)?))
}

/// The order in which to measure an `nx` × `ny` grid, as (column, row) pairs: every 4th
/// point in both directions (and the last row and column), then every 2nd, then the rest;
/// every point exactly once.
pub fn coarse_to_fine(nx: usize, ny: usize) -> Vec<(usize, usize)> {
    let mut seen = vec![false; nx * ny];
    let mut order = Vec::with_capacity(nx * ny);
    for stride in [4, 2, 1] {
        let on = |i: usize, n: usize| i.is_multiple_of(stride) || (stride == 4 && i == n - 1);
        for j in (0..ny).filter(|&j| on(j, ny)) {
            for i in (0..nx).filter(|&i| on(i, nx)) {
                if !std::mem::replace(&mut seen[j * nx + i], true) {
                    order.push((i, j));
                }
            }
        }
    }
    order
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fixture;
#[cfg(test)]
pub(crate) use fixture::valley_fixture;
