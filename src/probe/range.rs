//! The `auto` range: how far along a direction to look. A small model reaches chance loss by
//! |t| ≈ 4 and a ResNet-164 does not, so one fixed range either saturates (the steep side's
//! slope is cut off and c shrinks) or sees nothing. T is set where the loss along the line,
//! on either side, has first covered a given fraction of the way from the centre's loss to
//! chance. Pure search over a loss function of t.

use serde::{Deserialize, Serialize};

/// The range found for one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoRange {
    /// The fraction of the way to chance asked for.
    pub fraction: f64,
    #[serde(with = "crate::nonfinite")]
    pub centre_loss: f64,
    #[serde(with = "crate::nonfinite")]
    pub chance_loss: f64,
    /// centre + fraction · (chance − centre).
    #[serde(with = "crate::nonfinite")]
    pub target_loss: f64,
    /// T: the grid runs over [-T, T].
    pub half_range: f64,
    /// False when the loss stayed below the target up to the largest T tried.
    pub reached: bool,
    /// Points evaluated to find T.
    pub evaluations: usize,
}

/// The first T tried; T doubles from here.
const FIRST: f64 = 0.25;
/// The largest T tried.
pub const LARGEST: f64 = 1024.0;
/// Halvings of the last doubling step: T is found within 1/8 of that step.
const BISECTIONS: usize = 3;

/// Finds T for `loss(t)`: doubles |t| until max(loss(-t), loss(t)) reaches the target, then
/// narrows the last step by bisection, returning the smallest T known to reach it.
pub fn find(fraction: f64, chance_loss: f64, mut loss: impl FnMut(f64) -> f64) -> AutoRange {
    let centre_loss = loss(0.0);
    let mut evaluations = 1;
    let target_loss = centre_loss + fraction * (chance_loss - centre_loss).max(0.0);
    let mut reaches = |t: f64| {
        evaluations += 2;
        let worst = loss(-t).max(loss(t));
        // A non-finite loss (the weights overflowed) is as far from the centre as it gets.
        !worst.is_finite() || worst >= target_loss
    };
    let (mut below, mut above) = (0.0, FIRST);
    let mut reached = reaches(above);
    while !reached && above < LARGEST {
        below = above;
        above *= 2.0;
        reached = reaches(above);
    }
    if reached {
        for _ in 0..BISECTIONS {
            let middle = (below + above) / 2.0;
            if reaches(middle) {
                above = middle;
            } else {
                below = middle;
            }
        }
    }
    AutoRange {
        fraction,
        centre_loss,
        chance_loss,
        target_loss,
        half_range: (above * 1000.0).round() / 1000.0,
        reached,
        evaluations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quadratic_valley_gets_t_where_it_crosses_the_target() {
        // L = 0.2 + 0.1 t² on the steep side, 0.2 + 0.01 t² on the other; chance 2.3, half
        // way: 1.25 → the steep side crosses at t = sqrt(10.5) ≈ 3.24.
        let r = find(0.5, 2.3, |t| 0.2 + if t < 0.0 { 0.1 } else { 0.01 } * t * t);
        let exact = 10.5f64.sqrt();
        assert!(r.reached);
        assert!((r.target_loss - 1.25).abs() < 1e-12);
        // Known to reach at T and not at T − (step / 8); the doubling step here is 2 → 4.
        assert!(
            r.half_range >= exact && r.half_range <= exact + 2.0 / 8.0 + 1e-3,
            "{r:?}"
        );
        assert_eq!(r.evaluations, 1 + 2 * (5 + BISECTIONS));
    }

    #[test]
    fn a_flat_line_stops_at_the_largest_range() {
        let r = find(0.5, 2.3, |_| 0.3);
        assert!(!r.reached);
        assert_eq!(r.half_range, LARGEST);
    }

    #[test]
    fn a_centre_at_chance_or_an_overflow_reaches_at_once() {
        let r = find(0.5, 2.3, |_| 2.5);
        assert!(r.reached && r.half_range <= FIRST);
        let r = find(0.5, 2.3, |t| if t.abs() > 3.0 { f64::NAN } else { 0.2 });
        assert!(
            r.reached && r.half_range > 3.0 && r.half_range <= 4.0,
            "{r:?}"
        );
    }
}
