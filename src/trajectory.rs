//! The path a run takes through weight space: the SGD iterate at every N-th epoch end (and at
//! initialisation), kept in the run directory so that planes can draw it and span it (`--plane
//! pca`), and where a plane puts each iterate. Plain data; the files are [`store`]'s, which
//! reads and writes the weights as `f32` slices.
//!
//! `trajectory/weights.f32` holds the iterates back to back, little-endian, `dimension`
//! floats each; `trajectory/index.json` says which epochs they are and how many there are.
//! An append writes its record at the place the index gives it (overwriting whatever a killed
//! append left behind), syncs it, and then rewrites the index atomically: readers trust the
//! index alone, so a kill at any moment leaves the iterates before it. A run resumed from a
//! checkpoint cuts the index back to it, as metrics.jsonl is cut.

use serde::{Deserialize, Serialize};

pub mod store;

/// One stored iterate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    /// Epochs finished (0: the initial weights).
    pub epoch: u32,
    pub step: u64,
    /// True when this iterate went into the SWA average.
    pub swa_snapshot: bool,
}

/// trajectory/index.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryIndex {
    /// Floats per iterate: the model's parameters.
    pub dimension: usize,
    pub points: Vec<TrajectoryPoint>,
}

impl crate::stored::Stored for TrajectoryIndex {
    fn check(&self) -> Result<(), crate::stored::StoredError> {
        if self.dimension == 0 {
            return Err(crate::stored::StoredError(
                "dimension is 0; expected the model's parameter count".into(),
            ));
        }
        if self
            .points
            .windows(2)
            .any(|w| w[0].step > w[1].step || w[0].epoch >= w[1].epoch)
        {
            return Err(crate::stored::StoredError(
                "points are not in the order of training (epochs increasing)".into(),
            ));
        }
        Ok(())
    }
}

/// Where a point w lies on the plane w_c + x·d₁ + y·d₂: the least-squares (x, y) of
/// r = w − w_c in span(d₁, d₂), and the share of r the plane does not hold,
/// |r − x·d₁ − y·d₂| / |r| (0 for w = w_c). Given the inner products d₁·d₁, d₁·d₂, d₂·d₂,
/// d₁·r, d₂·r and r·r.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub x: f64,
    pub y: f64,
    pub residual: f64,
}

/// The inner products a projection needs.
#[derive(Debug, Clone, Copy)]
pub struct Inner {
    pub d1d1: f64,
    pub d1d2: f64,
    pub d2d2: f64,
    pub d1r: f64,
    pub d2r: f64,
    pub rr: f64,
}

/// Solves the 2×2 normal equations; d₁ and d₂ must be independent (a plane's are orthogonal).
pub fn project(p: Inner) -> Projection {
    let det = p.d1d1 * p.d2d2 - p.d1d2 * p.d1d2;
    let (x, y) = if det.abs() > 0.0 {
        (
            (p.d2d2 * p.d1r - p.d1d2 * p.d2r) / det,
            (p.d1d1 * p.d2r - p.d1d2 * p.d1r) / det,
        )
    } else {
        (0.0, 0.0)
    };
    // |r − P r|² = r·r − (x d₁·r + y d₂·r) for the least-squares projection.
    let left = (p.rr - (x * p.d1r + y * p.d2r)).max(0.0);
    let residual = if p.rr > 0.0 {
        (left / p.rr).sqrt()
    } else {
        0.0
    };
    Projection { x, y, residual }
}

/// A stored iterate where a plane puts it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PathPoint {
    #[serde(flatten)]
    pub at: TrajectoryPoint,
    #[serde(flatten)]
    pub projection: Projection,
}

/// A projection residual above which the plane does not hold a point: drawn dim.
pub const HELD: f64 = 0.5;

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(a, b)| a * b).sum()
    }

    fn inner(d1: &[f64], d2: &[f64], r: &[f64]) -> Inner {
        Inner {
            d1d1: dot(d1, d1),
            d1d2: dot(d1, d2),
            d2d2: dot(d2, d2),
            d1r: dot(d1, r),
            d2r: dot(d2, r),
            rr: dot(r, r),
        }
    }

    /// By hand: d₁ = (1, 0, 0), d₂ = (1, 1, 0) (not orthogonal), r = (2, 3, 4): the plane is
    /// z = 0, so r's part in it is (2, 3, 0) = −1·d₁ + 3·d₂, and what is left is (0, 0, 4),
    /// |(0,0,4)| / |r| = 4 / √29.
    #[test]
    fn projections_are_the_least_squares_solution_by_hand() {
        let p = project(inner(&[1.0, 0.0, 0.0], &[1.0, 1.0, 0.0], &[2.0, 3.0, 4.0]));
        assert!(
            (p.x + 1.0).abs() < 1e-12 && (p.y - 3.0).abs() < 1e-12,
            "{p:?}"
        );
        assert!((p.residual - 4.0 / 29f64.sqrt()).abs() < 1e-12, "{p:?}");
        // A point in the plane has no residual; the centre itself neither.
        let p = project(inner(&[2.0, 0.0, 0.0], &[0.0, 0.5, 0.0], &[1.0, 1.0, 0.0]));
        assert!((p.x - 0.5).abs() < 1e-12 && (p.y - 2.0).abs() < 1e-12 && p.residual < 1e-9);
        let p = project(inner(&[1.0, 0.0], &[0.0, 1.0], &[0.0, 0.0]));
        assert_eq!((p.x, p.y, p.residual), (0.0, 0.0, 0.0));
    }
}
