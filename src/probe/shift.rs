//! The random-shift check of the paper's assumption (E3): is the test curve along a direction
//! the training curve moved sideways (and up)? The assumption reads L(w) = L̂(w + δ) + ζ, so
//! for each shift δ the gap g(t) = L_train(t) − L_test(t + δ) is compared with its own mean
//! ζ_δ over the t whose t + δ stays on the grid:
//! ξ_δ = mean |g(t) − ζ_δ|, zero exactly when the curves match up to a constant. The best δ
//! minimises ξ_δ, and ξ_δ / ξ_0 shows how much better a shifted match is than none.
//! A positive δ means the test curve sits to the right of the training curve.

use super::score::interpolate;
use serde::{Deserialize, Serialize};

/// ξ_δ / ξ_0 over a range of shifts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftCheck {
    #[serde(with = "crate::nonfinite::vec")]
    pub deltas: Vec<f64>,
    #[serde(with = "crate::nonfinite::vec")]
    pub xi: Vec<f64>,
    #[serde(with = "crate::nonfinite::vec")]
    pub ratio: Vec<f64>,
    #[serde(with = "crate::nonfinite")]
    pub best_delta: f64,
    #[serde(with = "crate::nonfinite")]
    pub best_ratio: f64,
}

impl ShiftCheck {
    /// True when the best shift is the largest tried on its side: the true best may lie
    /// beyond, and the ratio is only an upper bound.
    pub fn at_edge(&self) -> bool {
        let edge = self.deltas.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        edge > 0.0 && self.best_delta.abs() >= edge - 1e-12
    }

    /// "best δ +0.300 (ξ ratio 0.412)", with a warning when it sits at the edge.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "best δ {:+.3} (ξ ratio {:.3})",
            self.best_delta, self.best_ratio
        );
        if self.at_edge() {
            s += " — at the edge of the shifts tried: the best shift may lie further out";
        }
        s
    }
}

/// How far the training curve and the test curve shifted by `delta` are from differing by a
/// constant: the mean absolute deviation of their gap.
pub fn xi(ts: &[f64], train: &[f64], test: &[f64], delta: f64) -> Option<f64> {
    let (lo, hi) = (ts[0], ts[ts.len() - 1]);
    let gaps: Vec<f64> = ts
        .iter()
        .zip(train)
        .filter(|(t, _)| (lo..=hi).contains(&(**t + delta)))
        .map(|(t, l)| l - interpolate(ts, test, t + delta))
        .collect();
    if gaps.is_empty() {
        return None;
    }
    let zeta = gaps.iter().sum::<f64>() / gaps.len() as f64;
    Some(gaps.iter().map(|g| (g - zeta).abs()).sum::<f64>() / gaps.len() as f64)
}

/// Evaluates shifts in [-max_shift, max_shift] with `steps` values on each side of 0.
pub fn random_shift(
    ts: &[f64],
    train: &[f64],
    test: &[f64],
    max_shift: f64,
    steps: usize,
) -> Option<ShiftCheck> {
    if ts.len() < 3 || train.len() != ts.len() || test.len() != ts.len() {
        return None;
    }
    let xi0 = xi(ts, train, test, 0.0)?;
    let steps = steps.max(1) as i64;
    let mut check = ShiftCheck {
        deltas: Vec::new(),
        xi: Vec::new(),
        ratio: Vec::new(),
        best_delta: 0.0,
        best_ratio: 1.0,
    };
    let mut best = xi0;
    for k in -steps..=steps {
        let delta = max_shift * k as f64 / steps as f64;
        let Some(x) = xi(ts, train, test, delta) else {
            continue;
        };
        let ratio = if xi0 > 0.0 { x / xi0 } else { 1.0 };
        if x < best {
            best = x;
            check.best_delta = delta;
            check.best_ratio = ratio;
        }
        check.deltas.push(delta);
        check.xi.push(x);
        check.ratio.push(ratio);
    }
    Some(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valley(t: f64) -> f64 {
        if t >= 0.0 { 0.1 * t } else { -0.5 * t }
    }

    #[test]
    fn a_shifted_copy_is_found_at_its_shift() {
        let ts: Vec<f64> = (0..81).map(|i| -4.0 + 0.1 * i as f64).collect();
        let train: Vec<f64> = ts.iter().map(|&t| valley(t)).collect();
        // Test loss: the training loss moved right by 0.4 and raised by 0.05.
        let test: Vec<f64> = ts.iter().map(|&t| valley(t - 0.4) + 0.05).collect();
        let c = random_shift(&ts, &train, &test, 1.0, 20).unwrap();
        assert!((c.best_delta - 0.4).abs() < 1e-9, "{}", c.best_delta);
        assert!(
            c.best_ratio < 1e-9,
            "a perfect match up to the offset: {}",
            c.best_ratio
        );
        let zero = c.deltas.iter().position(|d| *d == 0.0).unwrap();
        assert_eq!(c.ratio[zero], 1.0);
        assert_eq!(c.deltas.len(), 41);
        assert!(!c.at_edge());
        // Allowing shifts of at most 0.2, the best is the edge, and it says so.
        let c = random_shift(&ts, &train, &test, 0.2, 4).unwrap();
        assert!((c.best_delta - 0.2).abs() < 1e-9 && c.at_edge());
        assert!(c.describe().contains("at the edge"), "{}", c.describe());
    }

    #[test]
    fn identical_curves_need_no_shift() {
        let ts: Vec<f64> = (0..21).map(|i| -1.0 + 0.1 * i as f64).collect();
        let y: Vec<f64> = ts.iter().map(|t| t * t).collect();
        let c = random_shift(&ts, &y, &y, 0.5, 5).unwrap();
        assert_eq!(c.best_delta, 0.0);
        assert_eq!(xi(&ts, &y, &y, 0.0), Some(0.0));
    }
}
