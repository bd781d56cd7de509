//! The dashboard chart's data: which series are shown and their points after the chart's
//! settings (quantity, x axis, window, smoothing, log axis). Plain data over the app's state,
//! no terminal: the view draws it, the value cursor reads it, tests check it.

use super::app::{App, Point, Quantity};
use super::chart;
use crate::protocol::{Iterate, Split};

/// The evaluated series in drawing order, with their legend names.
pub const SERIES: [(Iterate, Split, &str); 5] = [
    (Iterate::Sgd, Split::Train, "SGD train"),
    (Iterate::Sgd, Split::Test, "SGD test"),
    (Iterate::Swa, Split::Train, "SWA train"),
    (Iterate::Swa, Split::Test, "SWA test"),
    // Only present when swa.stale_bn asks for it.
    (Iterate::SwaStale, Split::Test, "SWA stale-BN test"),
];

/// One curve of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub iterate: Iterate,
    /// `TrainRunning` for the per-step training loss and the learning rate.
    pub split: Split,
    pub name: &'static str,
    /// The measured points (x, y as drawn: log10 on a log axis).
    pub measured: Vec<(f64, f64)>,
    /// The measured values themselves, for the value cursor.
    pub values: Vec<f64>,
    /// What is drawn: the measured points, smoothed when smoothing is on.
    pub drawn: Vec<(f64, f64)>,
    /// Test curves are drawn dashed, so that they are told from training curves without
    /// colour; measured points of sparse curves are marked.
    pub dashed: bool,
    pub marked: bool,
    /// The least and most of the raw values behind each stretch of the curve, as (x, low,
    /// high) in drawn units: the per-step loss's band (empty for every other curve).
    pub envelope: Vec<(f64, f64, f64)>,
}

/// True when the y axis is logarithmic for what the chart shows.
pub fn log_axis(app: &App) -> bool {
    app.chart.log_y && app.chart.quantity != Quantity::Accuracy
}

/// The chart's curves for `app`'s settings.
pub fn curves(app: &App) -> Vec<Curve> {
    let c = &app.chart;
    let make = |iterate, split, name, points: Vec<Point>, dashed, marked| {
        curve(app, (iterate, split, name), points, dashed, marked)
    };
    if c.quantity == Quantity::LearningRate {
        // Per step while this process trains; otherwise at each evaluation.
        let points = if app.per_step.is_empty() {
            app.series
                .get(&(Iterate::Sgd, Split::Test))
                .map(|s| s.points())
                .unwrap_or_default()
        } else {
            app.per_step.points()
        };
        let curve = make(
            Iterate::Sgd,
            Split::TrainRunning,
            "learning rate",
            points,
            false,
            false,
        );
        return if curve.measured.is_empty() {
            Vec::new()
        } else {
            vec![curve]
        };
    }
    if c.quantity == Quantity::Curvature {
        return curvature_curves(app);
    }
    let mut out: Vec<Curve> = SERIES
        .iter()
        .filter(|(_, split, _)| c.splits.shows(*split))
        .filter_map(|&(iterate, split, name)| {
            let points = app.series.get(&(iterate, split))?.points();
            Some(make(
                iterate,
                split,
                name,
                points,
                split == Split::Test,
                true,
            ))
        })
        .collect();
    if c.per_step && c.splits.shows(Split::Train) {
        // Per step while this process trains; a watched or reopened run has the epochs'
        // running means (metrics.jsonl's train_running rows).
        let (name, points, marked) = if app.per_step.is_empty() {
            let rows = app.series.get(&(Iterate::Sgd, Split::TrainRunning));
            (
                "train running (epoch mean)",
                rows.map(|s| s.points()).unwrap_or_default(),
                true,
            )
        } else {
            ("train per step, min–max band", app.per_step.points(), false)
        };
        let mut per_step = make(
            Iterate::Sgd,
            Split::TrainRunning,
            name,
            points,
            false,
            marked,
        );
        if c.quantity == Quantity::Loss && !app.per_step.is_empty() {
            per_step.envelope = envelope(app);
        }
        out.insert(0, per_step);
    }
    out.retain(|c| !c.measured.is_empty());
    out
}

/// The tracked top eigenvalue of SGD and of SWA, and the edge of stability 2/lr at the same
/// epochs (where a step of plain gradient descent stops being stable along the top
/// eigenvector; Cohen et al. 2021).
fn curvature_curves(app: &App) -> Vec<Curve> {
    let point = |r: &crate::curvature::track::TrackRow, value: f64| Point {
        epoch: f64::from(r.epoch),
        step: r.step as f64,
        time: f64::NAN,
        loss: value,
        acc: f64::NAN,
        lr: r.lr,
    };
    let track = &app.curvature.track;
    let of = |centre: &str| -> Vec<Point> {
        track
            .iter()
            .filter(|r| r.centre == centre)
            .map(|r| point(r, r.top_eigenvalue))
            .collect()
    };
    let mut edge: Vec<Point> = track
        .iter()
        .filter(|r| r.centre == "sgd")
        .filter_map(|r| Some(point(r, crate::curvature::track::stability_edge(r.lr)?)))
        .collect();
    edge.dedup_by(|a, b| a.epoch == b.epoch);
    let mut out = vec![
        curve(
            app,
            (Iterate::Sgd, Split::TrainRunning, "2/lr (edge)"),
            edge,
            false,
            false,
        ),
        curve(
            app,
            (Iterate::Sgd, Split::Train, "SGD λ_max"),
            of("sgd"),
            false,
            true,
        ),
        curve(
            app,
            (Iterate::Swa, Split::Train, "SWA λ_max"),
            of("swa"),
            false,
            true,
        ),
    ];
    out.retain(|c| !c.measured.is_empty());
    out
}

/// One curve of the chart: `points` of `iterate` and `split`, named `name`, in the chart's
/// window, x axis and quantity, measured and smoothed, on a log axis when it is one.
fn curve(
    app: &App,
    (iterate, split, name): (Iterate, Split, &'static str),
    points: Vec<Point>,
    dashed: bool,
    marked: bool,
) -> Curve {
    let c = &app.chart;
    let points: Vec<Point> = points
        .into_iter()
        .filter(|p| in_window(app, p))
        .filter(|p| c.x.of(p).is_finite())
        .collect();
    let xs: Vec<f64> = points.iter().map(|p| c.x.of(p)).collect();
    let values: Vec<f64> = points
        .iter()
        .map(|p| match c.quantity {
            Quantity::Loss => p.loss,
            Quantity::Accuracy => 100.0 * p.acc,
            Quantity::LearningRate => p.lr,
            // Curvature points carry their value where a loss would be.
            Quantity::Curvature => p.loss,
        })
        .collect();
    let measured: Vec<(f64, f64)> = xs
        .iter()
        .zip(&values)
        .map(|(&x, &v)| (x, shown(app, v)))
        .collect();
    let smoothed = chart::smooth(&values, c.smooth);
    let drawn = xs
        .iter()
        .zip(smoothed)
        .map(|(&x, v)| (x, shown(app, v)))
        .collect();
    Curve {
        iterate,
        split,
        name,
        measured,
        values,
        drawn,
        dashed,
        marked,
        envelope: Vec::new(),
    }
}

/// True for a point in the chart's window of the latest epochs (every point without one).
fn in_window(app: &App, p: &Point) -> bool {
    app.chart
        .window
        .is_none_or(|w| p.epoch >= f64::from(app.last_epoch().saturating_sub(w)))
}

/// A value as the y axis draws it: log10 on a log axis.
fn shown(app: &App, v: f64) -> f64 {
    if log_axis(app) {
        chart::log10_saturating(v)
    } else {
        v
    }
}

/// The per-step loss's band in the chart's window, x axis and y scale.
fn envelope(app: &App) -> Vec<(f64, f64, f64)> {
    let shown = |v| shown(app, v);
    app.per_step_range
        .buckets()
        .iter()
        .filter(|(p, _, _)| in_window(app, p))
        .map(|(p, lo, hi)| (app.chart.x.of(p), shown(*lo), shown(*hi)))
        .filter(|(x, _, _)| x.is_finite())
        .collect()
}

/// A band as one line that zigzags between each stretch's low and high: on a braille grid it
/// fills the band.
pub fn zigzag(envelope: &[(f64, f64, f64)]) -> Vec<(f64, f64)> {
    envelope
        .iter()
        .enumerate()
        .flat_map(|(k, &(x, lo, hi))| {
            if k % 2 == 0 {
                [(x, lo), (x, hi)]
            } else {
                [(x, hi), (x, lo)]
            }
        })
        .collect()
}

/// The y range of the chart and whether values lie outside it. With outliers clipped (the
/// default) it fits the later half of the x range (the 5th to 95th percentile there, and each
/// curve's latest value), where SGD and SWA are told apart; the first epochs' fall from
/// chance then runs off the top (or bottom) instead of flattening the rest. Otherwise it fits
/// every value drawn.
pub fn y_range(app: &App, curves: &[Curve]) -> Option<((f64, f64), bool)> {
    // The edge of stability is a reference, not data: with outliers clipped the axis fits the
    // eigenvalues, and an edge far above them runs off the top (o shows it).
    let fitted: Vec<Curve>;
    let curves = if app.chart.quantity == Quantity::Curvature && app.chart.clip_outliers {
        fitted = curves
            .iter()
            .filter(|c| c.split != Split::TrainRunning)
            .cloned()
            .collect();
        if fitted.is_empty() {
            curves
        } else {
            &fitted[..]
        }
    } else {
        curves
    };
    let points = || {
        curves
            .iter()
            .flat_map(|s| s.drawn.iter().chain(&s.measured))
    };
    let ys: Vec<f64> = points().map(|p| p.1).collect();
    let all = chart::robust_range(&ys, &ys)?;
    if !app.chart.clip_outliers {
        return Some((all, false));
    }
    let (x_lo, x_hi) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    let middle = (x_lo + x_hi) / 2.0;
    let later: Vec<f64> = points().filter(|p| p.0 >= middle).map(|p| p.1).collect();
    let latest: Vec<f64> = curves
        .iter()
        .filter_map(|s| s.measured.last().map(|p| p.1))
        .collect();
    // Too few points in the later half (early in a run): every value counts.
    if later.len() < 8 {
        return Some((all, false));
    }
    let fitted = chart::robust_range(&later, &latest)?;
    Some((fitted, fitted != all))
}

/// Where the x axis starts when y is fitted to the later half: at the last point of the
/// earlier half that lies off the fitted range, so that the chart shows the curves from where
/// they come into view instead of a blank stretch where they ran off the scale. None when
/// nothing of the earlier half is off it.
pub fn fitted_x_start(curves: &[Curve], (lo, hi): (f64, f64)) -> Option<f64> {
    let points = || curves.iter().flat_map(|s| s.drawn.iter());
    let (x_lo, x_hi) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let middle = (x_lo + x_hi) / 2.0;
    points()
        .filter(|p| p.0 < middle && p.1.is_finite() && !(lo..=hi).contains(&p.1))
        .map(|p| p.0)
        .max_by(f64::total_cmp)
        .filter(|&x| x > x_lo)
}

/// Each curve's measured value at the cursor's x (None where it has no point there), and
/// the SGD − SWA test gap there.
pub fn readout(curves: &[Curve], x: f64) -> (Vec<(&'static str, Option<f64>)>, Option<f64>) {
    let at = |c: &Curve| {
        c.measured
            .iter()
            .position(|p| (p.0 - x).abs() < 1e-9)
            .map(|i| c.values[i])
    };
    let values: Vec<(&'static str, Option<f64>)> = curves.iter().map(|c| (c.name, at(c))).collect();
    let test = |it: Iterate| {
        curves
            .iter()
            .find(|c| c.iterate == it && c.split == Split::Test)
            .and_then(at)
    };
    let gap = match (test(Iterate::Sgd), test(Iterate::Swa)) {
        (Some(sgd), Some(swa)) => Some(sgd - swa),
        _ => None,
    };
    (values, gap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::app::tests::history;
    use crate::ui::theme::Theme;

    fn app() -> App {
        history(Theme {
            color: true,
            ascii: false,
        })
    }

    #[test]
    fn test_curves_are_dashed_and_sparse_curves_marked() {
        let app = app();
        let cs = curves(&app);
        assert!(!cs.is_empty());
        for c in &cs {
            assert_eq!(c.dashed, c.split == Split::Test, "{}", c.name);
            assert_eq!(c.measured.len(), c.values.len());
        }
    }

    #[test]
    fn the_accuracy_axis_fits_the_data_not_the_first_evaluation() {
        let mut app = app();
        app.chart.quantity = Quantity::Accuracy;
        let cs = curves(&app);
        let ((lo, hi), clipped) = y_range(&app, &cs).unwrap();
        let first = cs[0].values[0];
        assert!(first < 10.0, "the first evaluation is near chance: {first}");
        assert!(
            clipped && lo > 75.0,
            "fitted to the later epochs: {lo}..{hi}"
        );
        let latest = cs.iter().map(|c| *c.values.last().unwrap());
        assert!(latest.clone().all(|v| v >= lo && v <= hi));
        // The SGD and SWA test accuracies at the end differ by 0.8%: over a range this
        // narrow (under 12%) that is over a text row of a 30-row chart (120 braille dots).
        assert!(hi - lo < 12.0, "{lo}..{hi}");
        app.chart.clip_outliers = false;
        let ((lo, _), clipped) = y_range(&app, &curves(&app)).unwrap();
        assert!(lo <= first && !clipped);
    }

    #[test]
    fn the_readout_gives_each_series_at_the_cursor_and_the_gap() {
        let app = app();
        let cs = curves(&app);
        let x = cs[0].measured.last().unwrap().0;
        let (values, gap) = readout(&cs, x);
        let value = |name: &str| values.iter().find(|v| v.0 == name).and_then(|v| v.1);
        let sgd = value("SGD test").unwrap();
        let swa = value("SWA test").unwrap();
        assert!((gap.unwrap() - (sgd - swa)).abs() < 1e-12);
        // The values are the rows' own, not smoothed or transformed.
        let row = app.latest.get(&(Iterate::Sgd, Split::Test)).unwrap();
        assert_eq!(sgd, row.loss);
    }
}
