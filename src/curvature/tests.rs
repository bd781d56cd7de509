use super::*;

fn set(loss: f64, top: f64, trace: f64) -> SetCurvature {
    SetCurvature {
        loss,
        eigenvalues: vec![top, top / 2.0],
        residuals: vec![0.0, 0.0],
        lanczos_steps: 10,
        trace: Some(TraceEstimate {
            trace: Estimate {
                value: trace,
                interval: Some(Interval {
                    lo: trace - 1.0,
                    hi: trace + 1.0,
                }),
            },
            top_part: top * 1.5,
            samples: vec![trace - top * 1.5],
        }),
        density: Vec::new(),
        average_sharpness: None,
        noise_increases: Vec::new(),
        worst_sharpness: Some(0.5),
    }
}

#[test]
fn a_centre_averages_its_sets_with_t_intervals() {
    let c = CentreCurvature::from_sets(
        "swa",
        (0.3, 0.9),
        vec![
            set(0.1, 10.0, 100.0),
            set(0.2, 12.0, 110.0),
            set(0.3, 14.0, 120.0),
        ],
    );
    let top = c.eigenvalues[0];
    assert_eq!(top.value, 12.0);
    // s = 2, t(2) = 4.303: 12 ± 4.303 · 2 / √3.
    let half = 4.303 * 2.0 / 3f64.sqrt();
    let i = top.interval.unwrap();
    assert!((i.hi - 12.0 - half).abs() < 1e-9 && (12.0 - i.lo - half).abs() < 1e-9);
    assert_eq!(c.eigenvalues[1].value, 6.0);
    assert_eq!(c.trace.unwrap().value, 110.0);
    assert!((c.top_relative_spread.unwrap() - 2.0 / 12.0).abs() < 1e-12);
    assert_eq!(c.worst_sharpness.unwrap().value, 0.5);
    assert!(c.average_sharpness.is_none());
}

#[test]
fn one_set_keeps_its_own_interval_over_vectors() {
    let c = CentreCurvature::from_sets("sgd", (0.3, 0.9), vec![set(0.1, 10.0, 100.0)]);
    assert_eq!(
        c.trace.unwrap().interval,
        Some(Interval {
            lo: 99.0,
            hi: 101.0
        })
    );
    assert!(c.eigenvalues[0].interval.is_none());
    assert!(c.top_relative_spread.is_none());
}

#[test]
fn numbers_print_with_significant_digits() {
    assert_eq!(significant(1234.5678, 4), "1235");
    assert_eq!(significant(0.012345, 3), "0.0123");
    assert_eq!(significant(2.5e-7, 2), "2.5e-7");
    let e = Estimate {
        value: 12.0,
        interval: Some(Interval {
            lo: 11.5,
            hi: 12.26,
        }),
    };
    assert_eq!(e.describe(3), "12.0 [11.5, 12.3]");
}
