//! Chart maths, free of terminals: log axes, tick placement, smoothing and bounds.
//!
//! ratatui's Chart spaces its labels evenly between the axis bounds, so ticks here are chosen
//! evenly spaced and the bounds are set to the first and last tick; on a log axis that means
//! whole decades (or 1-2-5 steps when the data span less than one).

/// log10 that saturates instead of giving -inf or NaN, so zero losses leave no gaps.
pub fn log10_saturating(v: f64) -> f64 {
    v.max(1e-12).log10()
}

/// The smoothing strengths `s` cycles through (0: the raw data).
pub const SMOOTHING_STEPS: [f64; 5] = [0.0, 0.6, 0.8, 0.9, 0.95];

/// Smoothing with strength `w` in [0, 1): at each point, the value at that point of a straight
/// line fitted by least squares with weights w^|i − j| over its neighbours on both sides.
/// Unlike TensorBoard's exponential moving average it does not lag behind a trend (a straight
/// line comes back unchanged, at the ends too), while noise is averaged away as strongly.
/// `w = 0` returns the data.
pub fn smooth(values: &[f64], w: f64) -> Vec<f64> {
    if w <= 0.0 || values.len() < 3 {
        return values.to_vec();
    }
    // Weights below 1e-3 change nothing visible; cutting them keeps this linear in n.
    let reach = ((1e-3f64).ln() / w.ln()).ceil().max(1.0) as usize;
    let n = values.len();
    (0..n)
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(reach), (i + reach).min(n - 1));
            let (mut sw, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (j, &y) in values.iter().enumerate().take(hi + 1).skip(lo) {
                if !y.is_finite() {
                    continue;
                }
                let x = j as f64 - i as f64;
                let weight = w.powi(x.abs() as i32);
                sw += weight;
                sx += weight * x;
                sy += weight * y;
                sxx += weight * x * x;
                sxy += weight * x * y;
            }
            let det = sw * sxx - sx * sx;
            if sw == 0.0 {
                values[i]
            } else if det.abs() < 1e-12 * sw * sw.max(1.0) {
                sy / sw
            } else {
                // The fitted line's value at x = 0, the point itself.
                (sxx * sy - sx * sxy) / det
            }
        })
        .collect()
}

/// The y range that ignores outliers (like TensorBoard's default): the 5th to the 95th
/// percentile of all `ys`, widened to take in every value of `keep` (the latest points, which
/// must stay on the chart), or None when there is no finite value. With few points (under 20)
/// every value is kept.
pub fn robust_range(ys: &[f64], keep: &[f64]) -> Option<(f64, f64)> {
    let mut sorted: Vec<f64> = ys.iter().copied().filter(|y| y.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let (mut lo, mut hi) = if sorted.len() < 20 {
        (sorted[0], sorted[sorted.len() - 1])
    } else {
        let at = |q: f64| sorted[(q * (sorted.len() - 1) as f64).round() as usize];
        (at(0.05), at(0.95))
    };
    for &k in keep.iter().filter(|k| k.is_finite()) {
        (lo, hi) = (lo.min(k), hi.max(k));
    }
    Some((lo, hi))
}

/// The texts of a legend that fit in `width` columns, for items given as (full, short) texts
/// in order of importance: every item in full, two spaces apart; else every item short, one
/// space apart; else the short items that fit, the least important dropped first. An item is
/// shown whole or not at all, so no word is ever cut. Each kept item comes with its index.
pub fn fit_legend(items: &[(String, String)], width: usize) -> Vec<(usize, String)> {
    let columns = |texts: &[&String], gap: usize| -> usize {
        texts.iter().map(|t| t.chars().count()).sum::<usize>() + gap * texts.len()
    };
    let full: Vec<&String> = items.iter().map(|i| &i.0).collect();
    // One leading space, then each item followed by its gap.
    if columns(&full, 2) < width {
        return items
            .iter()
            .enumerate()
            .map(|(i, t)| (i, t.0.clone()))
            .collect();
    }
    let mut kept: Vec<usize> = (0..items.len()).collect();
    loop {
        let short: Vec<&String> = kept.iter().map(|&i| &items[i].1).collect();
        if columns(&short, 1) < width || kept.is_empty() {
            return kept.into_iter().map(|i| (i, items[i].1.clone())).collect();
        }
        kept.pop();
    }
}

/// Small crosses of dots (one dot each way) around measured points, to mark them on a line
/// drawn at braille resolution; none when the points are closer than `min_gap` dots on
/// average along x (a dense per-step series is its own mark).
pub fn point_marks(points: &[(f64, f64)], scale: (f64, f64), min_gap: f64) -> Vec<(f64, f64)> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    if finite.len() > 1 {
        let span = (finite[finite.len() - 1].0 - finite[0].0) * scale.0;
        if span / ((finite.len() - 1) as f64) < min_gap {
            return Vec::new();
        }
    }
    let (ex, ey) = (1.0 / scale.0, 1.0 / scale.1);
    finite
        .iter()
        .flat_map(|&(x, y)| [(x, y), (x - ex, y), (x + ex, y), (x, y - ey), (x, y + ey)])
        .collect()
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
    // A range of one value (or one nudged apart by rounding, as an axis of one point is) has
    // no scale of its own: ticks around it, not a dozen labels of the same number.
    let (lo, hi) = if hi - lo > 1e-6 * lo.abs().max(hi.abs()).max(1e-3) {
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

/// Ticks for a log axis, as log10 values: whole decades when the data span two or more;
/// otherwise the 1-2-5 values (…, 0.1, 0.2, 0.5, 1, 2, …) around the data, or, when fewer than
/// four of those cover it, 1-1.5-2-3-5-7. The axis runs from the first tick to the last, so
/// the ticks are not evenly spaced: each is drawn at its own height.
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
        return ticks;
    }
    for mantissas in [&[1.0, 2.0, 5.0][..], &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0]] {
        let candidates: Vec<f64> = (first as i32 - 1..=last as i32)
            .flat_map(|e| mantissas.iter().map(move |m| (m * 10f64.powi(e)).log10()))
            .collect();
        // The tick just below the data, those on it, and the one just above.
        let below = candidates
            .iter()
            .copied()
            .filter(|&t| t <= a + 1e-12)
            .fold(f64::NEG_INFINITY, f64::max);
        let above = candidates
            .iter()
            .copied()
            .filter(|&t| t >= b - 1e-12)
            .fold(f64::INFINITY, f64::min);
        let ticks: Vec<f64> = candidates
            .into_iter()
            .filter(|&t| t >= below - 1e-12 && t <= above + 1e-12)
            .collect();
        if ticks.len() >= 4 || mantissas.len() > 3 {
            return thin(ticks, max_ticks);
        }
    }
    unreachable!("the second mantissa set always returns")
}

/// At most `max` ticks, keeping the first and the last.
fn thin(ticks: Vec<f64>, max: usize) -> Vec<f64> {
    let max = max.max(2);
    if ticks.len() <= max {
        return ticks;
    }
    let stride = (ticks.len() - 1).div_ceil(max - 1);
    let mut kept: Vec<f64> = ticks.iter().copied().step_by(stride).collect();
    if kept.last() != ticks.last() {
        kept.push(ticks[ticks.len() - 1]);
    }
    kept
}

/// Steps of a time axis, in seconds: the round ones a clock is read in.
const TIME_STEPS: [f64; 20] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    10800.0, 21600.0, 43200.0, 86400.0, 172_800.0, 604_800.0,
];

/// Ticks of a time axis over [lo, hi] seconds, at most `max_ticks`: whole multiples of the
/// smallest round step (1 s, 2 s, 5 s, …, 15 min, 30 min, 1 h, …) that needs no more; the
/// first and last bound the axis. With the step.
pub fn time_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, f64) {
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let intervals = (max_ticks.max(2) - 1) as f64;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|step| (hi / step).ceil() - (lo / step).floor() <= intervals)
        .unwrap_or_else(|| ((hi - lo) / intervals / 604_800.0).ceil() * 604_800.0);
    let (first, last) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
    ((first..=last).map(|k| k as f64 * step).collect(), step)
}

/// A label of a tick `seconds` into the run on a run-clock axis: "0:45", "12:30", "1:02:00".
pub fn elapsed_label(seconds: f64) -> String {
    crate::format::clock(seconds)
}

/// A label of a tick `seconds_of_day` (local) on a wall-clock axis, to the minute unless the
/// ticks are less than a minute apart: "14:05", "14:05:30"; the day wraps.
pub fn clock_label(seconds_of_day: f64, step: f64) -> String {
    let s = seconds_of_day.rem_euclid(86_400.0).round() as u64 % 86_400;
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if step < 60.0 {
        format!("{h:02}:{m:02}:{sec:02}")
    } else {
        format!("{h:02}:{m:02}")
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

/// The label of a log-axis tick given as log10: "0.01", "0.2", "1.5", "100", or "1e-5" /
/// "2e5" beyond; the fewest digits that give the tick's value.
pub fn log_tick_label(log_value: f64) -> String {
    let v = 10f64.powf(log_value);
    let e = v.log10().floor() as i32;
    if !(-4..=4).contains(&e) {
        let m = v / 10f64.powi(e);
        return if (m - m.round()).abs() < 1e-6 {
            format!("{}e{e}", m.round())
        } else {
            format!("{m:.1}e{e}")
        };
    }
    (0..8)
        .map(|d| format!("{v:.d$}"))
        .find(|text| text.parse::<f64>().is_ok_and(|p| (p - v).abs() <= 1e-6 * v))
        .unwrap_or_else(|| format!("{v}"))
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
mod tests;
