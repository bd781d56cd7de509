use super::*;

#[test]
fn mean_and_sample_deviation_by_hand() {
    // 1, 2, 3, 4: mean 2.5, sample variance 5/3.
    let s = stat(&[1.0, 2.0, 3.0, 4.0, f64::NAN]).unwrap();
    assert_eq!((s.mean, s.n), (2.5, 4));
    assert!((s.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!(stat(&[7.0]).unwrap().std, 0.0);
    assert!(stat(&[]).is_none());
    assert_eq!(describe(stat(&[1.0, 2.0, 3.0, 4.0]), 2), "2.50 ± 1.29");
}

#[test]
fn pooled_counts_carry_wilsons_interval() {
    let p = pool([(3, 10), (5, 10)].into_iter()).unwrap();
    assert_eq!((p.k, p.n), (8, 20));
    let i = p.interval.unwrap();
    // Wilson for 8/20: [0.2188, 0.6134].
    assert!(
        (i.lo - 0.2188).abs() < 1e-4 && (i.hi - 0.6134).abs() < 1e-4,
        "{i:?}"
    );
    assert!(p.describe().starts_with("40% [22, 61] (8/20)"));
    assert!(pool(std::iter::empty()).is_none());
}

#[test]
fn groups_gather_the_seeds_of_each_setting() {
    let run = |index: usize, norm: &str, seed: u32| RunSummary {
        variant: Variant {
            index,
            id: format!("{index:03}"),
            overrides: vec![
                ("model.norm".into(), norm.into()),
                ("seed".into(), seed.to_string()),
            ],
        },
        state: VariantState::Done,
        epoch: 3,
        epochs: Some(3),
        sgd: None,
        swa: None,
        swa_gain: Some(0.01 * f64::from(seed)),
        asymmetric: vec![("swa".into(), seed as usize, 5)],
        arms: Vec::new(),
        curves: Vec::new(),
        curvature: ["sgd", "swa"]
            .iter()
            .map(|&centre| CentreNumbers {
                centre: centre.into(),
                // SGD 10, 12, 14 over seeds 1, 2, 3; SWA 8 each time.
                lambda_max: Some(if centre == "sgd" {
                    8.0 + 2.0 * f64::from(seed)
                } else {
                    8.0
                }),
                trace: None,
                average_sharpness: None,
                worst_sharpness: Some(0.1),
            })
            .collect(),
    };
    let three = group(vec![
        run(0, "batch", 1),
        run(1, "batch", 2),
        run(2, "batch", 3),
    ]);
    let (mean, interval, n) = three[0].curvature("sgd", |c| c.lambda_max).unwrap();
    // Mean 12, s = 2, t(2) = 4.303: 12 ± 4.303 · 2 / √3.
    let half = 4.303 * 2.0 / 3f64.sqrt();
    let i = interval.unwrap();
    assert_eq!((mean, n), (12.0, 3));
    assert!((i.hi - 12.0 - half).abs() < 1e-3 && (12.0 - i.lo - half).abs() < 1e-3);
    let (d, _, n) = three[0].curvature_difference(|c| c.lambda_max).unwrap();
    assert_eq!((d, n), (4.0, 3), "SGD − SWA per run, then the mean");
    assert!(three[0].curvature("sgd", |c| c.trace).is_none());
    let groups = group(vec![
        run(0, "batch", 1),
        run(1, "batch", 2),
        run(2, "none", 1),
        run(3, "none", 2),
    ]);
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1].label(), "model.norm=none");
    let gain = groups[0].metric(|r| r.swa_gain).unwrap();
    assert!((gain.mean - 0.015).abs() < 1e-12 && gain.n == 2);
    let a = groups[0].asymmetric("swa").unwrap();
    assert_eq!((a.k, a.n), (3, 10));
    // Pooled 3/10 in both groups: no difference, and Newcombe's interval around it.
    let b = groups[1].asymmetric("swa").unwrap();
    let (d, interval) = groups[1].asymmetric_difference(&groups[0], "swa").unwrap();
    assert!((d - (b.fraction() - a.fraction())).abs() < 1e-12);
    let expected = stats::proportion_difference(b.k, b.n, a.k, a.n, 1.96).unwrap();
    assert_eq!(interval.unwrap(), expected);
    // Newcombe (1998b), table II, method 10: 56/70 − 48/80 → [0.0524, 0.3339].
    let i = stats::proportion_difference(56, 70, 48, 80, 1.96).unwrap();
    assert!((i.lo - 0.0524).abs() < 1e-4 && (i.hi - 0.3339).abs() < 1e-4);
}
