//! Uncertainty of the conclusions valleys draws from a handful of random directions: 95%
//! intervals for a fraction (Wilson), for the difference of two fractions (Newcombe's hybrid
//! score interval) and for a median and a difference of medians (percentile bootstrap over
//! directions). Pure maths, no tensors.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The two-sided 95% normal quantile.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Bootstrap resamples behind every median interval: the 2.5% and 97.5% percentiles move by
/// well under a grid step of c at this count.
pub const RESAMPLES: usize = 4000;

/// A two-sided interval. Bounds may be infinite (a median c can be).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    #[serde(with = "crate::nonfinite")]
    pub lo: f64,
    #[serde(with = "crate::nonfinite")]
    pub hi: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }

    /// True when the whole interval lies above 0 (a difference that is there).
    pub fn above_zero(&self) -> bool {
        self.lo > 0.0
    }

    /// True when the whole interval lies below 0.
    pub fn below_zero(&self) -> bool {
        self.hi < 0.0
    }
}

/// Wilson's score interval for `k` successes in `n` trials; None for `n = 0`. Unlike the
/// normal approximation it stays inside [0, 1] and is not degenerate at 0 or n successes,
/// which matter with 5 to 20 directions.
pub fn wilson(k: usize, n: usize, z: f64) -> Option<Interval> {
    if n == 0 || k > n {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    // At 0 or n successes one bound is exactly 0 or 1; rounding must not move it.
    Some(Interval {
        lo: if k == 0.0 {
            0.0
        } else {
            (centre - half).max(0.0)
        },
        hi: if k == n {
            1.0
        } else {
            (centre + half).min(1.0)
        },
    })
}

/// Newcombe's hybrid score interval (his method 10) for p1 − p2 of two independent
/// proportions, built from the two Wilson intervals.
pub fn proportion_difference(
    k1: usize,
    n1: usize,
    k2: usize,
    n2: usize,
    z: f64,
) -> Option<Interval> {
    let (a, b) = (wilson(k1, n1, z)?, wilson(k2, n2, z)?);
    let (p1, p2) = (k1 as f64 / n1 as f64, k2 as f64 / n2 as f64);
    let d = p1 - p2;
    Some(Interval {
        lo: d - ((p1 - a.lo).powi(2) + (b.hi - p2).powi(2)).sqrt(),
        hi: d + ((a.hi - p1).powi(2) + (p2 - b.lo).powi(2)).sqrt(),
    })
}

/// The median (the mean of the middle two for an even count); None when empty. Infinite
/// values take part like any other (c is infinite when one side is flat).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let m = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[m]
    } else if sorted[m - 1] == sorted[m] {
        // Keeps ∞ + ∞ from becoming anything but ∞.
        sorted[m]
    } else {
        (sorted[m - 1] + sorted[m]) / 2.0
    })
}

/// Student's t quantile t_{0.975, df}: exact to three decimals from a table up to 30 degrees
/// of freedom, then the Cornish-Fisher expansion around the normal quantile.
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            let (z, n) = (Z95, df as f64);
            z + (z.powi(3) + z) / (4.0 * n)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n)
        }
    }
}

/// The sample standard deviation (n − 1 in the denominator); 0 for fewer than two values.
pub fn sample_deviation(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    (ss / (n - 1) as f64).sqrt()
}

/// The mean of `values` and its 95% interval by Student's t (independent draws: sample sets,
/// random vectors); the interval is None for a single value, and None is returned for none.
pub fn mean_interval(values: &[f64]) -> Option<(f64, Option<Interval>)> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let interval = (n > 1).then(|| {
        let half = t975(n - 1) * sample_deviation(values) / (n as f64).sqrt();
        Interval {
            lo: mean - half,
            hi: mean + half,
        }
    });
    Some((mean, interval))
}

/// Ranks of `values` from 1, ties sharing the mean of their ranks.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let shared = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = shared;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's rank correlation of paired `x` and `y` (Pearson's correlation of their ranks,
/// ties at mean ranks) and its 95% interval by Fisher's z with the variance 1.06/(n − 3) of
/// Fieller, Hartley and Pearson (1957), which needs n ≥ 4. None for fewer than three pairs,
/// a constant variable or a non-finite value.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<(f64, Option<Interval>)> {
    let n = x.len();
    if n < 3 || y.len() != n || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let mean = (n as f64 + 1.0) / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mean) * (b - mean);
        sxx += (a - mean).powi(2);
        syy += (b - mean).powi(2);
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    let rho = (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0);
    let interval = (n >= 4).then(|| {
        let z = rho.clamp(-0.999_999, 0.999_999).atanh();
        let half = Z95 * (1.06 / (n as f64 - 3.0)).sqrt();
        Interval {
            lo: (z - half).tanh(),
            hi: (z + half).tanh(),
        }
    });
    Some((rho, interval))
}

/// The percentile bootstrap 95% interval of the median of `values`, resampling the values
/// (the directions) with replacement; None with fewer than two values.
pub fn bootstrap_median(values: &[f64], seed: u64) -> Option<Interval> {
    if values.len() < 2 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let medians: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| median(&resample(values, &mut rng)))
        .collect();
    percentile_interval(medians)
}

/// The percentile bootstrap 95% interval of median(a) − median(b), resampling each set on its
/// own. Resamples where both medians are infinite have no difference and are left out; None
/// when more than 5% of them are, or either set has fewer than two values.
pub fn bootstrap_median_difference(a: &[f64], b: &[f64], seed: u64) -> Option<Interval> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let differences: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| {
            let (ma, mb) = (
                median(&resample(a, &mut rng))?,
                median(&resample(b, &mut rng))?,
            );
            let d = ma - mb;
            (!d.is_nan()).then_some(d)
        })
        .collect();
    if differences.len() * 20 < RESAMPLES * 19 {
        return None;
    }
    percentile_interval(differences)
}

fn resample(values: &[f64], rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..values.len())
        .map(|_| values[rng.gen_range(0..values.len())])
        .collect()
}

fn percentile_interval(mut samples: Vec<f64>) -> Option<Interval> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        samples[((q * (samples.len() - 1) as f64).round() as usize).min(samples.len() - 1)]
    };
    Some(Interval {
        lo: at(0.025),
        hi: at(0.975),
    })
}

/// "[0.12, 0.48]" with `digits` decimals; infinite bounds as ∞.
pub fn format_interval(i: &Interval, digits: usize) -> String {
    let f = |v: f64| {
        if v.is_finite() {
            format!("{v:.digits$}")
        } else if v > 0.0 {
            "∞".to_owned()
        } else {
            "-∞".to_owned()
        }
    };
    format!("[{}, {}]", f(i.lo), f(i.hi))
}

/// A fraction and its interval as percentages: "40% [17, 69]".
pub fn format_percent(p: f64, i: Option<&Interval>) -> String {
    match i {
        Some(i) => format!(
            "{:.0}% [{:.0}, {:.0}]",
            100.0 * p,
            100.0 * i.lo,
            100.0 * i.hi
        ),
        None => format!("{:.0}%", 100.0 * p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), table I: 81/263 → [0.2553, 0.3662]; 0/10 → [0, 0.2775];
        // 1/29 → [0.0061, 0.1718]; 15/148 → [0.0624, 0.1605].
        for (k, n, lo, hi) in [
            (81, 263, 0.2553, 0.3662),
            (0, 10, 0.0, 0.2775),
            (1, 29, 0.0061, 0.1718),
            (15, 148, 0.0624, 0.1605),
        ] {
            let i = wilson(k, n, Z95).unwrap();
            assert!(
                close(i.lo, lo, 1e-4) && close(i.hi, hi, 1e-4),
                "{k}/{n}: {i:?}"
            );
        }
        // All successes: the mirror image of none.
        let i = wilson(10, 10, Z95).unwrap();
        assert!(close(i.lo, 1.0 - 0.2775, 1e-4) && i.hi == 1.0, "{i:?}");
        assert!(wilson(0, 0, Z95).is_none() && wilson(3, 2, Z95).is_none());
    }

    #[test]
    fn the_difference_of_proportions_matches_newcombe() {
        // Newcombe (1998b), table II, method 10: 56/70 − 48/80 → [0.0524, 0.3339];
        // 9/10 − 3/10 → [0.1705, 0.8090].
        for ((k1, n1, k2, n2), (lo, hi)) in [
            ((56, 70, 48, 80), (0.0524, 0.3339)),
            ((9, 10, 3, 10), (0.1705, 0.8090)),
        ] {
            let i = proportion_difference(k1, n1, k2, n2, Z95).unwrap();
            assert!(close(i.lo, lo, 1e-4) && close(i.hi, hi, 1e-4), "{i:?}");
            assert!(i.above_zero());
        }
        let i = proportion_difference(5, 10, 5, 10, Z95).unwrap();
        assert!(i.contains(0.0) && close(i.lo, -i.hi, 1e-12));
    }

    #[test]
    fn medians_of_odd_even_and_infinite_sets() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(
            median(&[1.0, f64::INFINITY, f64::INFINITY]),
            Some(f64::INFINITY)
        );
        assert_eq!(median(&[f64::INFINITY, f64::INFINITY]), Some(f64::INFINITY));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn the_bootstrap_median_interval_agrees_with_order_statistics() {
        // For 1..=101 the distribution-free 95% interval of the median runs between the
        // 41st and 61st order statistics (binomial(101, 1/2) quantiles); the bootstrap's
        // percentile interval lands close to it.
        let values: Vec<f64> = (1..=101).map(f64::from).collect();
        let i = bootstrap_median(&values, 7).unwrap();
        assert!(
            (38.0..=45.0).contains(&i.lo) && (57.0..=64.0).contains(&i.hi),
            "{i:?}"
        );
        // A constant set has no spread; one value has no interval.
        let i = bootstrap_median(&[2.5; 9], 1).unwrap();
        assert_eq!((i.lo, i.hi), (2.5, 2.5));
        assert!(bootstrap_median(&[1.0], 1).is_none());
        // The same seed gives the same interval.
        assert_eq!(bootstrap_median(&values, 7), bootstrap_median(&values, 7));
    }

    #[test]
    fn the_median_difference_interval_separates_shifted_sets() {
        let a: Vec<f64> = (0..20).map(|i| 10.0 + f64::from(i) * 0.1).collect();
        let b: Vec<f64> = (0..20).map(|i| 1.0 + f64::from(i) * 0.1).collect();
        let i = bootstrap_median_difference(&a, &b, 3).unwrap();
        assert!(i.contains(9.0) && i.above_zero(), "{i:?}");
        let i = bootstrap_median_difference(&b, &b, 3).unwrap();
        assert!(i.contains(0.0), "{i:?}");
        // Mostly infinite on both sides: no difference can be told.
        let inf = [f64::INFINITY; 5];
        assert!(bootstrap_median_difference(&inf, &inf, 3).is_none());
    }

    #[test]
    fn intervals_print_compactly() {
        let i = Interval {
            lo: 0.25,
            hi: f64::INFINITY,
        };
        assert_eq!(format_interval(&i, 2), "[0.25, ∞]");
        assert_eq!(
            format_percent(
                0.4,
                Some(&Interval {
                    lo: 0.168,
                    hi: 0.687
                })
            ),
            "40% [17, 69]"
        );
    }

    #[test]
    fn a_mean_interval_by_hand() {
        // 1, 2, 3, 4: mean 2.5, s = sqrt(5/3), t(3) = 3.182, half = 3.182 * 1.29099 / 2.
        let (mean, interval) = mean_interval(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(mean, 2.5);
        let i = interval.unwrap();
        let half = 3.182 * (5.0f64 / 3.0).sqrt() / 2.0;
        assert!((i.hi - 2.5 - half).abs() < 1e-12 && (2.5 - i.lo - half).abs() < 1e-12);
        assert_eq!(mean_interval(&[3.0]), Some((3.0, None)));
        assert_eq!(mean_interval(&[]), None);
        // The expansion continues the table: t(31) just below t(30), t(1000) near z.
        assert!(t975(31) < t975(30) && t975(31) > 2.03);
        assert!((t975(1000) - 1.9623).abs() < 1e-3);
    }

    /// By hand: x = 1..5, y = 2, 1, 4, 3, 5: rank differences −1, 1, −1, 1, 0, Σd² = 4, so
    /// ρ = 1 − 6·4/(5·24) = 0.8; z = atanh 0.8 = ln 9 / 2 = 1.098612, half-width
    /// 1.959964·√(1.06/2) = 1.426875, interval tanh(−0.328263) = −0.316959 to
    /// tanh(2.525488) = 0.987275.
    /// With ties, x = 1, 2, 2, 3 (ranks 1, 2.5, 2.5, 4) against itself is 1; reversed, −1.
    #[test]
    fn spearman_matches_the_textbook_formula_and_handles_ties() {
        let (rho, interval) =
            spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]).unwrap();
        assert!((rho - 0.8).abs() < 1e-12, "{rho}");
        let i = interval.unwrap();
        assert!(
            (i.lo + 0.316959).abs() < 1e-5 && (i.hi - 0.987275).abs() < 1e-5,
            "{i:?}"
        );
        let x = [1.0, 2.0, 2.0, 3.0];
        assert!((spearman(&x, &x).unwrap().0 - 1.0).abs() < 1e-12);
        assert!((spearman(&x, &[3.0, 2.0, 2.0, 1.0]).unwrap().0 + 1.0).abs() < 1e-12);
        assert!(spearman(&[1.0, 2.0, 3.0], &[1.0, 1.0, 1.0]).is_none());
        assert!(spearman(&[1.0, 2.0], &[1.0, 2.0]).is_none());
        assert!(
            spearman(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0])
                .unwrap()
                .1
                .is_none()
        );
    }
}
