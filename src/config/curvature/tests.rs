use super::*;

fn run() -> RunDefaults {
    RunDefaults {
        seed: 7,
        eval_subset: 2000,
        train_samples: 10_000,
        train_batch: 128,
    }
}

#[test]
fn defaults_come_from_the_run() {
    let r = CurvatureSpec::default().resolved(run()).unwrap();
    assert_eq!((r.samples, r.sets, r.batch, r.seed), (2000, 3, 128, 7));
    assert_eq!(r.top_k, 3);
    assert_eq!(r.products_per_set(), 60 + 20 + 2 * 30);
    let eval = CurvatureSpec {
        bn: CurvatureBn::Eval,
        samples: Some(300),
        ..Default::default()
    };
    assert_eq!(
        eval.resolved(run()).unwrap().batch,
        300,
        "no larger than a set"
    );
    let all = CurvatureSpec {
        samples: Some(usize::MAX),
        ..Default::default()
    };
    let r = all.resolved(run()).unwrap();
    assert_eq!((r.samples, r.sets), (10_000, 1));
    let big = CurvatureSpec {
        samples: Some(4000),
        ..Default::default()
    };
    assert_eq!(big.resolved(run()).unwrap().sets, 2, "as many as fit");
}

#[test]
fn settings_that_cannot_mean_anything_name_the_field() {
    for (spec, expected) in [
        (
            CurvatureSpec {
                top_k: Some(11),
                ..Default::default()
            },
            "curvature.top_k = 11: expected 1..=10",
        ),
        (
            CurvatureSpec {
                rho: Some(0.0),
                ..Default::default()
            },
            "curvature.rho = 0: expected a relative scale",
        ),
        (
            CurvatureSpec {
                rho: Some(-1.0),
                ..Default::default()
            },
            "curvature.rho = -1",
        ),
        (
            CurvatureSpec {
                samples: Some(0),
                ..Default::default()
            },
            "curvature.samples = 0: expected 1..=",
        ),
        (
            CurvatureSpec {
                sets: Some(0),
                ..Default::default()
            },
            "curvature.sets = 0",
        ),
        (
            CurvatureSpec {
                lanczos_steps: Some(1),
                ..Default::default()
            },
            "curvature.lanczos_steps = 1: expected 2..=500",
        ),
        (
            CurvatureSpec {
                every_epochs: Some(0),
                ..Default::default()
            },
            "curvature.every_epochs = 0",
        ),
        (
            CurvatureSpec {
                top_k: Some(5),
                lanczos_steps: Some(2),
                ..Default::default()
            },
            "curvature.lanczos_steps = 2: expected at least top_k = 5",
        ),
    ] {
        let e = spec.validate().unwrap_err().0;
        assert!(e.starts_with(expected), "{e}");
    }
    let more_than_the_data = CurvatureSpec {
        samples: Some(20_000),
        ..Default::default()
    };
    let e = more_than_the_data.resolved(run()).unwrap_err().0;
    assert!(
        e.contains("curvature.samples = 20000: expected at most 10000"),
        "{e}"
    );
    let too_many = CurvatureSpec {
        samples: Some(4000),
        sets: Some(3),
        ..Default::default()
    };
    let e = too_many.resolved(run()).unwrap_err().0;
    assert!(
        e.contains("4000 in 3 disjoint sets: expected at most 10000"),
        "{e}"
    );
}
