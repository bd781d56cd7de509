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
/// Once the loss has risen at least `RISEN` of the way from the centre to the target, a
/// doubling that brings it less than `PLATEAU` of the way further is a step on a plateau;
/// after two in a row the search stops there. A loss that rises and then levels off below the
/// target (as along many BN-only directions) would otherwise cost every doubling up to
/// `LARGEST`; a flat bottom around the centre, before any rise, is no plateau.
const PLATEAU: f64 = 0.01;
const RISEN: f64 = 0.1;

/// The most points the search evaluates: the centre, both sides of every doubling up to
/// `LARGEST`, and both sides of every bisection. Said before a search starts.
pub fn max_evaluations() -> usize {
    let doublings = (LARGEST / FIRST).log2().round() as usize + 1;
    1 + 2 * doublings + 2 * BISECTIONS
}

/// Finds T for `loss(t)`: doubles |t| until max(loss(-t), loss(t)) reaches the target (or
/// stops rising), then narrows the last step by bisection, returning the smallest T known to
/// reach it. Every T it returns is one it evaluated on both sides, so a grid over [-T, T]
/// can reuse those two points and the centre. At most [`max_evaluations`] calls of `loss`.
pub fn find(fraction: f64, chance_loss: f64, mut loss: impl FnMut(f64) -> f64) -> AutoRange {
    let centre_loss = loss(0.0);
    let mut evaluations = 1;
    let target_loss = centre_loss + fraction * (chance_loss - centre_loss).max(0.0);
    // The worse side's loss at t, and whether it reaches the target.
    let mut worst_at = |t: f64| {
        evaluations += 2;
        let worst = loss(-t).max(loss(t));
        // A non-finite loss (the weights overflowed) is as far from the centre as it gets.
        (worst, !worst.is_finite() || worst >= target_loss)
    };
    let (mut below, mut above) = (0.0, FIRST);
    let (mut worst, mut reached) = worst_at(above);
    let mut flat_steps = 0;
    while !reached && above < LARGEST && flat_steps < 2 {
        below = above;
        above *= 2.0;
        let previous = worst;
        (worst, reached) = worst_at(above);
        let way = (target_loss - centre_loss).max(1e-12);
        let (risen, gained) = ((worst - centre_loss) / way, (worst - previous) / way);
        flat_steps = if risen >= RISEN && gained < PLATEAU {
            flat_steps + 1
        } else {
            0
        };
    }
    if reached {
        for _ in 0..BISECTIONS {
            let middle = (below + above) / 2.0;
            if worst_at(middle).1 {
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
        half_range: above,
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
    fn a_flat_line_is_followed_to_the_largest_range() {
        let mut calls = 0;
        let r = find(0.5, 2.3, |_| {
            calls += 1;
            0.3
        });
        assert!(!r.reached);
        assert_eq!(r.half_range, LARGEST);
        assert_eq!((r.evaluations, calls), (1 + 2 * 13, 1 + 2 * 13));
    }

    #[test]
    fn a_loss_that_levels_off_below_the_target_stops_where_it_levels() {
        // Rises to 0.5 by |t| = 2, then stays: half way to chance (1.25) is never reached.
        let r = find(0.5, 2.3, |t: f64| 0.2 + 0.3 * (t.abs() / 2.0).min(1.0));
        assert!(!r.reached);
        assert_eq!(r.half_range, 8.0, "{r:?}");
        // A slow, steady rise is no plateau: it is followed until the target.
        let r = find(0.5, 2.3, |t: f64| 0.2 + 0.01 * t.abs());
        assert!(
            r.reached && r.half_range > 100.0 && r.half_range <= 128.0,
            "{r:?}"
        );
    }

    #[test]
    fn the_search_is_bounded_and_its_bound_is_what_it_can_cost() {
        // A loss that rises too slowly to stop early or to reach: every doubling to LARGEST.
        let mut calls = 0;
        let r = find(0.5, 1e9, |t: f64| {
            calls += 1;
            0.2 + 0.05 * t.abs()
        });
        assert!(!r.reached);
        assert_eq!(r.half_range, LARGEST);
        assert!(calls <= max_evaluations());
        assert_eq!(max_evaluations(), 1 + 2 * 13 + 2 * 3);
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
