//! Chart maths, free of terminals: log axes, tick placement, smoothing and bounds.
//!
//! ratatui's Chart spaces its labels evenly between the axis bounds, so ticks here are chosen
//! evenly spaced and the bounds are set to the first and last tick; on a log axis that means
//! whole decades (or 1-2-5 steps when the data span less than one).

/// log10 that saturates instead of giving -inf or NaN, so zero losses leave no gaps.
pub fn log10_saturating(v: f64) -> f64 {
    v.max(1e-12).log10()
}

/// TensorBoard-style smoothing: an exponential moving average with weight `w` in [0, 1),
/// debiased so that early points are not pulled towards zero. `w = 0` returns the data.
pub fn smooth(values: &[f64], w: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut out = Vec::with_capacity(values.len());
    for (i, &v) in values.iter().enumerate() {
        acc = w * acc + (1.0 - w) * v;
        let debias = 1.0 - w.powi(i as i32 + 1);
        out.push(if debias > 0.0 { acc / debias } else { v });
    }
    out
}

/// Evenly spaced "nice" ticks (1, 2, 2.5 or 5 times a power of ten apart) covering [lo, hi]
/// with at most `max_ticks` ticks. The step balances the axis length wasted beyond the data
/// against ticks left unused. The first and last tick bound the axis.
pub fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    ticks(lo, hi, max_ticks, false)
}

/// Like [`nice_ticks`] with whole-number steps only (epochs, steps).
pub fn integer_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    ticks(lo, hi, max_ticks, true)
}

fn ticks(lo: f64, hi: f64, max_ticks: usize, integer: bool) -> Vec<f64> {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let intervals = (max_ticks.max(2) - 1) as f64;
    let magnitude = 10f64.powf(((hi - lo) / intervals).log10().floor());
    let best = [1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0]
        .iter()
        .map(|m| m * magnitude)
        .filter(|&step| !integer || (step >= 1.0 && step.fract() == 0.0))
        .map(|step| (step, (lo / step).floor(), (hi / step).ceil()))
        .filter(|(_, first, last)| last - first <= intervals)
        .min_by(|a, b| {
            let score = |&(step, first, last): &(f64, f64, f64)| {
                let span = (last - first) * step;
                let wasted = (span - (hi - lo)) / span;
                let unused = (intervals - (last - first)) / intervals;
                wasted + 0.5 * unused
            };
            score(a).total_cmp(&score(b)).then(a.0.total_cmp(&b.0))
        });
    let (step, first, last) = best.unwrap_or_else(|| {
        let step = 10.0 * magnitude.max(if integer { 1.0 } else { 0.0 });
        (step, (lo / step).floor(), (hi / step).ceil())
    });
    let n = (last - first) as usize;
    (0..=n)
        .map(|i| clean_zero((first + i as f64) * step))
        .collect()
}

fn clean_zero(v: f64) -> f64 {
    if v.abs() < 1e-12 { 0.0 } else { v }
}

/// Ticks for a log axis, as log10 values: whole decades when the data span two or more,
/// otherwise evenly spaced ticks in log space (labelled with their values), so that a curve
/// spanning 0.2 to 3 fills the chart instead of a third of it.
pub fn log_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    let (a, b) = (log10_saturating(lo), log10_saturating(hi));
    let (first, last) = (a.floor(), b.ceil().max(a.floor() + 1.0));
    let decades = (last - first) as usize;
    if b - a >= 2.0 {
        let step = decades.div_ceil(max_ticks.max(2) - 1).max(1);
        let mut ticks: Vec<f64> = (0..=decades)
            .step_by(step)
            .map(|i| first + i as f64)
            .collect();
        if *ticks.last().unwrap_or(&first) < last {
            ticks.push(ticks.last().unwrap_or(&first) + step as f64);
        }
        ticks
    } else {
        nice_ticks(a, b, max_ticks)
    }
}

/// A label for a tick: as many decimals as the spacing between ticks needs.
pub fn tick_label(v: f64, spacing: f64) -> String {
    let decimals = (0..6)
        .find(|&d| {
            let scaled = spacing.abs() * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6) as usize;
    format!("{v:.decimals$}")
}

/// The label of a log-axis tick given as log10: "0.01", "1", "100", or "1e-5" / "1e5" beyond.
pub fn log_tick_label(log_value: f64) -> String {
    let v = 10f64.powf(log_value);
    if (log_value - log_value.round()).abs() < 1e-9 {
        let e = log_value.round() as i32;
        return match e {
            -3..=0 => format!("{:.*}", (-e) as usize, v),
            1..=4 => format!("{v:.0}"),
            _ => format!("1e{e}"),
        };
    }
    let digits = (2 - v.log10().floor() as i32).max(0) as usize;
    format!("{v:.digits$}")
}

/// The smallest and largest finite y over several series, or None if there is none.
pub fn y_range<'a>(series: impl IntoIterator<Item = &'a [(f64, f64)]>) -> Option<(f64, f64)> {
    let mut range: Option<(f64, f64)> = None;
    for points in series {
        for &(_, y) in points.iter().filter(|p| p.1.is_finite()) {
            range = Some(match range {
                None => (y, y),
                Some((lo, hi)) => (lo.min(y), hi.max(y)),
            });
        }
    }
    range
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_log_never_leaves_gaps() {
        assert_eq!(log10_saturating(100.0), 2.0);
        assert_eq!(log10_saturating(0.0), -12.0);
        assert_eq!(log10_saturating(-1.0), -12.0);
    }

    #[test]
    fn smoothing_is_a_debiased_moving_average() {
        assert_eq!(smooth(&[1.0, 2.0, 3.0], 0.0), vec![1.0, 2.0, 3.0]);
        let s = smooth(&[2.0, 2.0, 2.0], 0.9);
        assert!(
            s.iter().all(|v| (v - 2.0).abs() < 1e-12),
            "a constant stays constant: {s:?}"
        );
        // Second point: acc = 0.5*(0.5*1) + 0.5*3 = 1.75, debias 1 - 0.25 = 0.75.
        let s = smooth(&[1.0, 3.0], 0.5);
        assert!((s[1] - 1.75 / 0.75).abs() < 1e-12);
    }

    #[test]
    fn nice_ticks_are_round_and_cover_the_data() {
        assert_eq!(
            nice_ticks(0.23, 2.31, 6),
            vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
        );
        assert_eq!(nice_ticks(0.23, 2.31, 5), vec![0.0, 1.0, 2.0, 3.0]);
        // Three ticks: 0, 2.5 wastes much less of the axis than 0, 2, 4.
        assert_eq!(nice_ticks(0.23, 2.31, 3), vec![0.0, 2.5]);
        assert_eq!(nice_ticks(0.23, 2.61, 3), vec![0.0, 2.0, 4.0]);
        assert_eq!(nice_ticks(0.0, 15.0, 6), vec![0.0, 5.0, 10.0, 15.0]);
        assert_eq!(integer_ticks(0.0, 15.0, 7), vec![0.0, 5.0, 10.0, 15.0]);
        assert!(integer_ticks(0.0, 3.0, 8).iter().all(|t| t.fract() == 0.0));
        let t = nice_ticks(0.87, 0.93, 4);
        assert!(
            t.len() <= 4 && t[0] <= 0.87 && *t.last().unwrap() >= 0.93,
            "{t:?}"
        );
        assert!(
            nice_ticks(3.0, 3.0, 5).len() >= 2,
            "a flat series still gets an axis"
        );
    }

    #[test]
    fn log_ticks_are_whole_decades_when_the_data_span_them() {
        assert_eq!(log_ticks(0.02, 5.3, 6), vec![-2.0, -1.0, 0.0, 1.0]);
        let labels: Vec<String> = log_ticks(0.02, 5.3, 6)
            .into_iter()
            .map(log_tick_label)
            .collect();
        assert_eq!(labels, ["0.01", "0.1", "1", "10"]);
        assert_eq!(log_tick_label(-6.0), "1e-6");
        // Less than a decade: evenly spaced in log space, labelled with values.
        let t = log_ticks(0.25, 0.6, 4);
        assert!(t.len() >= 2 && t[0] <= 0.25f64.log10() && *t.last().unwrap() >= 0.6f64.log10());
    }

    #[test]
    fn labels_have_the_decimals_the_spacing_needs() {
        assert_eq!(tick_label(0.5, 0.5), "0.5");
        assert_eq!(tick_label(10.0, 5.0), "10");
        assert_eq!(tick_label(0.88, 0.02), "0.88");
        assert_eq!(tick_label(7.5, 2.5), "7.5");
        assert_eq!(tick_label(5.0, 2.5), "5.0");
    }

    #[test]
    fn the_y_range_ignores_non_finite_values() {
        let a = [(0.0, 1.0), (1.0, f64::NAN)];
        let b = [(0.0, 0.5), (1.0, f64::INFINITY)];
        assert_eq!(y_range([&a[..], &b[..]]), Some((0.5, 1.0)));
        assert_eq!(y_range([&[][..]]), None);
    }
}
