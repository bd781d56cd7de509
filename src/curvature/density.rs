//! The spectral density from stochastic Lanczos quadrature, as plain maths: each SLQ run is a
//! discrete measure (Ritz values with weights summing to 1); runs are pooled with equal
//! weight, smoothed with a Gaussian for drawing, and compared with an exact spectrum by the
//! Wasserstein-1 distance.

use super::Quadrature;

/// Why a stored quadrature cannot be one.
pub fn check(q: &Quadrature) -> Result<(), String> {
    if q.nodes.is_empty() || q.nodes.len() != q.weights.len() {
        return Err(format!(
            "{} nodes and {} weights; expected as many of each, at least one",
            q.nodes.len(),
            q.weights.len()
        ));
    }
    if let Some(x) = q.nodes.iter().find(|x| !x.is_finite()) {
        return Err(format!("a node is {x}; expected finite eigenvalues"));
    }
    if let Some(w) = q.weights.iter().find(|w| !(0.0..=1.0 + 1e-9).contains(*w)) {
        return Err(format!("a weight is {w}; expected weights in [0, 1]"));
    }
    let total: f64 = q.weights.iter().sum();
    if (total - 1.0).abs() > 1e-6 {
        return Err(format!("the weights sum to {total}; expected 1"));
    }
    Ok(())
}

/// The runs pooled into one measure: every node with its weight over the number of runs.
pub fn pooled(runs: &[&Quadrature]) -> Vec<(f64, f64)> {
    let share = 1.0 / runs.len().max(1) as f64;
    runs.iter()
        .flat_map(|q| {
            q.nodes
                .iter()
                .zip(&q.weights)
                .map(move |(&x, &w)| (x, w * share))
        })
        .collect()
}

/// The Wasserstein-1 distance between two discrete measures on the line (atoms as (position,
/// weight), each summing to 1): the area between their cumulative distribution functions.
pub fn wasserstein1(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    let mut events: Vec<(f64, f64)> = a
        .iter()
        .copied()
        .chain(b.iter().map(|&(x, w)| (x, -w)))
        .collect();
    events.sort_by(|p, q| p.0.total_cmp(&q.0));
    let mut difference = 0.0;
    let mut distance = 0.0;
    for pair in events.windows(2) {
        difference += pair[0].1;
        distance += difference.abs() * (pair[1].0 - pair[0].0);
    }
    distance
}

/// Where to draw a density: from below the smallest node to above the largest, and the
/// Gaussian width that smooths it (1% of that span, PyHessian's choice in spirit).
pub fn span(runs: &[&Quadrature]) -> Option<(f64, f64, f64)> {
    let nodes = runs.iter().flat_map(|q| q.nodes.iter().copied());
    let (lo, hi) = nodes.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if !lo.is_finite() {
        return None;
    }
    let width = (hi - lo).max(hi.abs().max(1e-12) * 1e-3);
    let sigma = 0.01 * width;
    Some((lo - 0.05 * width, hi + 0.05 * width, sigma))
}

/// The smoothed density at `points` evenly spaced eigenvalues over `span`: the pooled
/// measure convolved with a Gaussian of width `sigma`; it integrates to about 1.
pub fn curve(
    runs: &[&Quadrature],
    (lo, hi, sigma): (f64, f64, f64),
    points: usize,
) -> Vec<(f64, f64)> {
    let atoms = pooled(runs);
    let norm = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
    (0..points.max(2))
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / (points.max(2) - 1) as f64;
            let y: f64 = atoms
                .iter()
                .map(|&(c, w)| w * norm * (-0.5 * ((x - c) / sigma).powi(2)).exp())
                .sum();
            (x, y)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasserstein_by_hand() {
        // A point mass at 0 against one at 2: distance 2.
        assert!((wasserstein1(&[(0.0, 1.0)], &[(2.0, 1.0)]) - 2.0).abs() < 1e-12);
        // {0, 1} half each against a mass at 0.5: every half moves 0.5.
        let d = wasserstein1(&[(0.0, 0.5), (1.0, 0.5)], &[(0.5, 1.0)]);
        assert!((d - 0.5).abs() < 1e-12, "{d}");
        // A measure against itself, atoms in another order.
        let a = [(3.0, 0.2), (-1.0, 0.3), (0.5, 0.5)];
        let b = [(0.5, 0.5), (3.0, 0.2), (-1.0, 0.3)];
        assert!(wasserstein1(&a, &b).abs() < 1e-12);
    }

    #[test]
    fn the_smoothed_density_integrates_to_one_and_peaks_at_the_nodes() {
        let q = Quadrature {
            nodes: vec![1.0, 10.0],
            weights: vec![0.75, 0.25],
        };
        let span = span(&[&q]).unwrap();
        let c = curve(&[&q, &q], span, 2001);
        let dx = c[1].0 - c[0].0;
        let area: f64 = c.iter().map(|p| p.1 * dx).sum();
        assert!((area - 1.0).abs() < 0.01, "{area}");
        let at = |x: f64| {
            c.iter()
                .min_by(|a, b| (a.0 - x).abs().total_cmp(&(b.0 - x).abs()))
                .unwrap()
                .1
        };
        assert!(at(1.0) > 2.5 * at(10.0) && at(10.0) > 100.0 * at(5.5));
        assert_eq!(pooled(&[&q, &q]).len(), 4);
    }

    #[test]
    fn a_stored_quadrature_is_checked() {
        let bad = Quadrature {
            nodes: vec![1.0],
            weights: vec![0.5],
        };
        assert!(check(&bad).unwrap_err().contains("sum to 0.5"));
        let uneven = Quadrature {
            nodes: vec![1.0, 2.0],
            weights: vec![1.0],
        };
        assert!(
            check(&uneven)
                .unwrap_err()
                .contains("2 nodes and 1 weights")
        );
    }
}
