use super::*;

#[test]
fn a_range_of_one_value_gets_distinct_ticks_around_it() {
    for (lo, hi) in [
        (-1.0, -1.0),
        (-1.0, -1.0 + 1e-9),
        (0.0, 0.0),
        (2.5, 2.5 + 1e-12),
    ] {
        let ticks = nice_ticks(lo, hi, 6);
        assert!(ticks.len() >= 2, "{lo}..{hi}: {ticks:?}");
        assert!(ticks.windows(2).all(|w| w[1] - w[0] >= 0.1), "{ticks:?}");
        assert!(ticks[0] <= lo && *ticks.last().unwrap() >= hi, "{ticks:?}");
    }
    // A small real range keeps its own scale.
    let small = nice_ticks(0.001, 0.002, 6);
    assert!(small.windows(2).all(|w| w[1] - w[0] < 0.001), "{small:?}");
}

#[test]
fn saturating_log_never_leaves_gaps() {
    assert_eq!(log10_saturating(100.0), 2.0);
    assert_eq!(log10_saturating(0.0), -12.0);
    assert_eq!(log10_saturating(-1.0), -12.0);
}

#[test]
fn smoothing_keeps_lines_and_averages_noise_away() {
    assert_eq!(smooth(&[1.0, 2.0, 3.0], 0.0), vec![1.0, 2.0, 3.0]);
    // A falling straight line comes back as it is, its last point too: no lag.
    let line: Vec<f64> = (0..15).map(|i| 0.9 - 0.04 * f64::from(i)).collect();
    for w in SMOOTHING_STEPS {
        let s = smooth(&line, w);
        assert!(
            line.iter().zip(&s).all(|(a, b)| (a - b).abs() < 1e-9),
            "w {w}: {s:?}"
        );
    }
    // Alternating noise around 1: the smoothed middle is much closer to 1.
    let noisy: Vec<f64> = (0..41)
        .map(|i| 1.0 + if i % 2 == 0 { 0.1 } else { -0.1 })
        .collect();
    let s = smooth(&noisy, 0.9);
    assert!((s[20] - 1.0).abs() < 0.02, "{}", s[20]);
    // Weighted least squares by hand at the middle of [1, 3, 2] with w = 0.5: weights
    // 0.5, 1, 0.5 at x = -1, 0, 1; symmetric, so the intercept is the weighted mean 2.25.
    assert!((smooth(&[1.0, 3.0, 2.0], 0.5)[1] - 2.25).abs() < 1e-12);
}

#[test]
fn the_robust_range_ignores_a_first_outlier_but_keeps_the_latest_points() {
    // Accuracy: 10% at epoch 0, then 80..89%: the 10% no longer sets the axis.
    let mut ys = vec![10.0];
    ys.extend((0..30).map(|i| 80.0 + 0.3 * f64::from(i)));
    let (lo, hi) = robust_range(&ys, &[88.7]).unwrap();
    assert!(lo > 79.0 && hi >= 88.7, "{lo}..{hi}");
    // A latest value outside the percentiles is kept on the chart.
    let (lo, _) = robust_range(&ys, &[10.0]).unwrap();
    assert_eq!(lo, 10.0);
    // Few points: everything counts.
    assert_eq!(robust_range(&[10.0, 80.0, 81.0], &[]), Some((10.0, 81.0)));
    assert_eq!(robust_range(&[f64::NAN], &[]), None);
}

#[test]
fn a_legend_keeps_whole_items_and_drops_the_least_important_first() {
    let items: Vec<(String, String)> = [
        ("── SGD train", "─ SGD train"),
        ("╌╌ SGD test", "╌ SGD test"),
        ("┊ SWA start", "┊ SWA start"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    // 1 + 12 + 2 + 11 + 2 + 11 + 2 = 41 columns in full.
    let all = fit_legend(&items, 41);
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].1, "── SGD train");
    // Short: 1 + 11 + 1 + 10 + 1 + 11 + 1 = 36.
    let short = fit_legend(&items, 40);
    assert_eq!(short.iter().map(|k| k.0).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(short[1].1, "╌ SGD test");
    let two = fit_legend(&items, 35);
    assert_eq!(two.iter().map(|k| k.0).collect::<Vec<_>>(), [0, 1]);
    assert!(fit_legend(&items, 5).is_empty());
    // Whatever the width, every kept text is one of the items' texts, never a cut one.
    for width in 0..60 {
        for (i, text) in fit_legend(&items, width) {
            assert!(text == items[i].0 || text == items[i].1);
        }
    }
}

#[test]
fn marks_cross_each_point() {
    let marks = point_marks(&[(0.0, 0.0), (10.0, 1.0)], (2.0, 4.0), 4.0);
    assert_eq!(marks.len(), 10);
    assert!(marks.contains(&(0.5, 0.0)) && marks.contains(&(10.0, 1.25)));
    // Points a dot apart mark nothing.
    let dense: Vec<(f64, f64)> = (0..100).map(|i| (f64::from(i), 0.0)).collect();
    assert!(point_marks(&dense, (1.0, 1.0), 4.0).is_empty());
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
    // Less than two decades: 1-2-5 ticks, labelled with their values.
    let labels = |lo, hi, n| -> Vec<String> {
        log_ticks(lo, hi, n)
            .into_iter()
            .map(log_tick_label)
            .collect()
    };
    assert_eq!(labels(0.15, 2.3, 8), ["0.1", "0.2", "0.5", "1", "2", "5"]);
    // Within one 1-2-5 step: the finer 1-1.5-2-3-5-7 ticks.
    assert_eq!(labels(0.25, 0.6, 8), ["0.2", "0.3", "0.5", "0.7"]);
    // Too many for the room: thinned, first and last kept.
    let t = labels(0.011, 0.95, 3);
    assert!(
        t.len() <= 3 && t[0] == "0.01" && t[t.len() - 1] == "1",
        "{t:?}"
    );
    assert_eq!(log_tick_label(5.0f64.log10() + 5.0), "5e5");
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

#[test]
fn time_ticks_fall_on_round_clock_times() {
    let (ticks, step) = time_ticks(0.0, 68.0, 8);
    assert_eq!(step, 10.0);
    assert_eq!(ticks, [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]);
    let (ticks, step) = time_ticks(125.0, 3400.0, 6);
    assert_eq!(step, 900.0, "{ticks:?}");
    assert_eq!(ticks.first(), Some(&0.0));
    assert_eq!(ticks.last(), Some(&3600.0));
    // Hours of a long run.
    let (_, step) = time_ticks(0.0, 30.0 * 3600.0, 8);
    assert_eq!(step, 21_600.0);
    assert_eq!(elapsed_label(3725.0), "1:02:05");
    assert_eq!(clock_label(14.0 * 3600.0 + 5.0 * 60.0, 300.0), "14:05");
    assert_eq!(
        clock_label(14.0 * 3600.0 + 5.0 * 60.0 + 30.0, 10.0),
        "14:05:30"
    );
    assert_eq!(clock_label(86_400.0 + 60.0, 60.0), "00:01", "the day wraps");
}
