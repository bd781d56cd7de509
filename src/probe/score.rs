//! The asymmetry score of a loss curve along a line, as pure maths over (t, loss) samples.
//!
//! With T the half-range of the grid (the smaller of -t_min and t_max) and r a fraction of T
//! (default T/2):
//! - rise at -T and +T: L(-T) - L(0) and L(+T) - L(0);
//! - one-sided mean slopes beyond r, measured outwards: s+ = (L(T) - L(r)) / (T - r) and
//!   s- = (L(-T) - L(-r)) / (T - r);
//! - c = max(s+, s-) / min(s+, s-) >= 1 (infinite when one side is flat or falls while the other
//!   rises); the flat side is the one with the smaller slope;
//! - the direction is (r, p, c)-asymmetric, with p the flat side's slope, when c >= threshold
//!   (He et al.'s definition asks the sharp side to rise at least c times as fast as the flat
//!   side beyond r);
//! - the noise floors F- and F+, one per side: how much that side's rise could be sampling
//!   noise, F± = max(min_rise, 2·sqrt(SE(0)² + SE(±T)²)) from the standard errors of the
//!   losses measured at 0 and at that side's end, and never below a stated minimum rise. c is
//!   only a measurement when the rises stand out of their noise: a direction is *flat* when
//!   neither rise exceeds its floor, *asymmetric* when c >= threshold and either both rises
//!   exceed their floors or one does by at least threshold times the other side's floor (the
//!   other side, within its noise, then rises at least threshold times less), *symmetric*
//!   when both exceed their floors and c < threshold, and *undecided* when one side is within
//!   noise and the other rises less than threshold times that floor. (The floor is
//!   conservative: the losses at 0 and ±T are measured on the same samples, so their errors
//!   are correlated and the rise's own error is smaller.)
//! - the bias: where along the line the loss is lowest (the grid's minimum refined by a
//!   parabola through it and its neighbours; exact for smooth minima, within half a grid step
//!   for kinks); positive means towards +.
//!
//! Values between grid points are interpolated linearly.

use serde::{Deserialize, Serialize};

/// Which way the flat side lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Plus,
    Minus,
    /// Both sides rise alike (c = 1) or neither rises.
    Neither,
}

impl Side {
    /// "+", "-" or "=".
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Plus => "+",
            Self::Minus => "-",
            Self::Neither => "=",
        }
    }
}

/// What a curve's rises say, given the noise floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Asymmetric,
    Symmetric,
    /// Neither side rises above the noise floor.
    Flat,
    /// One side is within noise and the other rises too little to bound c.
    Undecided,
    /// Scored before the noise floor existed.
    #[default]
    Unclassified,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asymmetric => "asymmetric",
            Self::Symmetric => "symmetric",
            Self::Flat => "flat",
            Self::Undecided => "undecided",
            Self::Unclassified => "unclassified",
        }
    }
}

/// How curves are scored: where r sits, the c that counts as asymmetric and the smallest rise
/// that is not noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scoring {
    pub r_fraction: f64,
    pub threshold: f64,
    pub min_rise: f64,
}

/// Standard errors between the floor and a rise: rises below 2 SE of their difference are
/// not told from noise (about 98% one-sided).
pub const NOISE_Z: f64 = 2.0;

/// The smallest rise that counts when the losses' standard errors are smaller (or unknown).
pub const DEFAULT_MIN_RISE: f64 = 1e-3;

impl Scoring {
    /// r at T/2, the stated threshold and minimum rise.
    pub fn new(threshold: f64, min_rise: f64) -> Self {
        Self {
            r_fraction: 0.5,
            threshold,
            min_rise,
        }
    }
}

/// The asymmetry of one curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub half_range: f64,
    pub r: f64,
    #[serde(with = "crate::nonfinite")]
    pub centre_loss: f64,
    #[serde(with = "crate::nonfinite")]
    pub rise_minus: f64,
    #[serde(with = "crate::nonfinite")]
    pub rise_plus: f64,
    #[serde(with = "crate::nonfinite")]
    pub slope_minus: f64,
    #[serde(with = "crate::nonfinite")]
    pub slope_plus: f64,
    /// Ratio of the steeper to the flatter side's slope; `None` stands for infinity in JSON.
    #[serde(with = "finite_or_null")]
    pub c: f64,
    pub flat_side: Side,
    pub threshold: f64,
    /// True for the class `Asymmetric`.
    pub asymmetric: bool,
    /// The larger of the two sides' noise floors (see the module's notes).
    #[serde(default, with = "crate::nonfinite")]
    pub noise_floor: f64,
    /// The smallest rise at -T that is not sampling noise; NaN in results scored before the
    /// floors were per side.
    #[serde(default = "not_measured", with = "crate::nonfinite")]
    pub noise_floor_minus: f64,
    /// The same at +T.
    #[serde(default = "not_measured", with = "crate::nonfinite")]
    pub noise_floor_plus: f64,
    #[serde(default)]
    pub class: Class,
    /// t of the lowest loss along the line.
    #[serde(with = "crate::nonfinite")]
    pub bias: f64,
}

fn not_measured() -> f64 {
    f64::NAN
}

impl Score {
    /// The noise floors in words: one number when both sides share it (or only one is known).
    pub fn describe_noise_floors(&self) -> String {
        let (minus, plus) = (self.noise_floor_minus, self.noise_floor_plus);
        // Floors within a tenth of each other are one number (their larger).
        if minus.is_nan() || plus.is_nan() || (minus - plus).abs() <= 0.1 * minus.max(plus) {
            format!("{:.3}", self.noise_floor)
        } else {
            format!("-T {minus:.3}, +T {plus:.3}")
        }
    }

    /// "yes" (asymmetric), "no", "flat" (neither rise above the noise floor) or "?" (one side
    /// within noise, the other rising too little): the verdict in tables.
    pub fn verdict(&self) -> &'static str {
        match self.class {
            _ if self.asymmetric => "yes",
            Class::Flat => "flat",
            Class::Undecided => "?",
            _ => "no",
        }
    }
}

/// Serialises infinity as null, since JSON has no infinity.
mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
    }
}

/// Linear interpolation of `ys` over ascending `ts` at `t` (clamped to the ends).
pub fn interpolate(ts: &[f64], ys: &[f64], t: f64) -> f64 {
    let n = ts.len();
    if t <= ts[0] {
        return ys[0];
    }
    if t >= ts[n - 1] {
        return ys[n - 1];
    }
    let i = ts.partition_point(|&x| x <= t).clamp(1, n - 1);
    let (t0, t1, y0, y1) = (ts[i - 1], ts[i], ys[i - 1], ys[i]);
    if t1 == t0 {
        y0
    } else {
        y0 + (y1 - y0) * (t - t0) / (t1 - t0)
    }
}

/// Slopes at or below this count as flat (losses are O(1); this is far below noise).
const FLAT: f64 = 1e-9;

/// Scores a curve sampled at ascending `ts`, with the standard errors of its losses (`ses`,
/// empty when unknown: the floor is then the minimum rise). Returns None unless the grid has
/// points on both sides of 0.
pub fn score(ts: &[f64], losses: &[f64], ses: &[f64], how: Scoring) -> Option<Score> {
    let Scoring {
        r_fraction,
        threshold,
        min_rise,
    } = how;
    if ts.len() < 3 || ts.len() != losses.len() || losses.iter().any(|l| !l.is_finite()) {
        return None;
    }
    let t_min = ts[0];
    let t_max = ts[ts.len() - 1];
    if !(t_min < 0.0 && t_max > 0.0) {
        return None;
    }
    let big_t = (-t_min).min(t_max);
    let r = (r_fraction * big_t).clamp(0.0, big_t * 0.999);
    let at = |t: f64| interpolate(ts, losses, t);
    let centre = at(0.0);
    let slope_plus = (at(big_t) - at(r)) / (big_t - r);
    let slope_minus = (at(-big_t) - at(-r)) / (big_t - r);
    let (lo, hi) = (slope_plus.min(slope_minus), slope_plus.max(slope_minus));
    let c = if hi <= FLAT {
        1.0
    } else if lo <= FLAT {
        f64::INFINITY
    } else {
        hi / lo
    };
    let flat_side = if c == 1.0 || (hi - lo).abs() <= FLAT {
        Side::Neither
    } else if slope_plus < slope_minus {
        Side::Plus
    } else {
        Side::Minus
    };
    let (rise_minus, rise_plus) = (at(-big_t) - centre, at(big_t) - centre);
    let (floor_minus, floor_plus) = if ses.len() == ts.len() && ses.iter().all(|s| s.is_finite()) {
        let se = |t: f64| interpolate(ts, ses, t);
        let floor = |end: f64| (NOISE_Z * (se(0.0).powi(2) + se(end).powi(2)).sqrt()).max(min_rise);
        (floor(-big_t), floor(big_t))
    } else {
        (min_rise, min_rise)
    };
    let class = classify(
        (rise_minus, rise_plus),
        (floor_minus, floor_plus),
        c,
        threshold,
    );
    Some(Score {
        half_range: big_t,
        r,
        centre_loss: centre,
        rise_minus,
        rise_plus,
        slope_minus,
        slope_plus,
        c,
        flat_side: if class == Class::Flat {
            Side::Neither
        } else {
            flat_side
        },
        threshold,
        asymmetric: class == Class::Asymmetric,
        noise_floor: floor_minus.max(floor_plus),
        noise_floor_minus: floor_minus,
        noise_floor_plus: floor_plus,
        class,
        bias: minimum_location(ts, losses),
    })
}

/// The class of a curve from its rises and their sides' noise floors, as (-T, +T) pairs.
fn classify(
    (rise_minus, rise_plus): (f64, f64),
    (floor_minus, floor_plus): (f64, f64),
    c: f64,
    threshold: f64,
) -> Class {
    match (rise_minus > floor_minus, rise_plus > floor_plus) {
        (false, false) => Class::Flat,
        (true, true) if c >= threshold => Class::Asymmetric,
        (true, true) => Class::Symmetric,
        // One side within its noise: the other must rise threshold times that noise.
        (true, false) if c >= threshold && rise_minus >= threshold * floor_plus => {
            Class::Asymmetric
        }
        (false, true) if c >= threshold && rise_plus >= threshold * floor_minus => {
            Class::Asymmetric
        }
        _ => Class::Undecided,
    }
}

/// Where the sampled curve is lowest: the grid minimum refined by the parabola through it and
/// its two neighbours.
pub fn minimum_location(ts: &[f64], ys: &[f64]) -> f64 {
    let i = ys
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    if i == 0 || i + 1 == ts.len() {
        return ts[i];
    }
    let (y0, y1, y2) = (ys[i - 1], ys[i], ys[i + 1]);
    let curvature = y0 - 2.0 * y1 + y2;
    let h = (ts[i + 1] - ts[i - 1]) / 2.0;
    if curvature <= 0.0 {
        return ts[i];
    }
    ts[i] + 0.5 * h * (y0 - y2) / curvature
}

#[cfg(test)]
mod tests;
