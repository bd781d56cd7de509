//! `valleys plane`: a plane through a saved run, its files, and bad grids in one line.

mod common;

use common::{TINY_BN, run, snapshot, train};

#[test]
fn a_plane_of_a_saved_run_is_printed_and_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = train(d, TINY_BN, "r");
    let said = run(
        d,
        &[
            "plane",
            "r",
            "--points",
            "5x3",
            "--test-subset",
            "64",
            "--ascii",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let out = &said.stdout;
    assert!(
        out.contains(
            "plane 001-swa-sgd-swa: test loss over x -0.5..1.5 (d₁ = SGD − SWA) × y -1..1"
        ),
        "{out}"
    );
    assert!(
        out.contains("marks: A = SWA at (0, 0), S = SGD at (1, 0)"),
        "{out}"
    );
    assert!(out.contains("cos(d₁, d₂)"), "{out}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(r.join("planes/001-swa-sgd-swa.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["points"].as_array().unwrap().len(), 15);
    assert_eq!(json["xs"].as_array().unwrap().len(), 5);
    assert!(json["cosine"].as_f64().unwrap().abs() < 1e-6);
    let csv = std::fs::read_to_string(r.join("planes/001-swa-sgd-swa.csv")).unwrap();
    assert_eq!(csv.lines().count(), 16);
    assert!(
        csv.starts_with("x,y,train_loss,train_acc,test_loss,test_acc,train_loss_se,test_loss_se\n")
    );

    // Bad grids, ranges and planes: one line, exit 2, nothing written.
    let before = snapshot(&r);
    for (args, expected) in [
        (
            &["--points", "1x5"][..],
            "points 1x5: 1 along x; expected 2..=201",
        ),
        (&["--points", "7y"], "expected NxM grid points"),
        (&["--x", "2:1"], "x 2:1: expected a range FROM:TO"),
        (&["--y", "a:b"], "expected FROM:TO"),
        (
            &["--direction", "interp"],
            "invalid value 'interp' for '--direction <DIRECTION>' [possible values: uniform, gaussian, sign]",
        ),
        (
            &["--bn-subset", "0"],
            "bn_subset 0: expected at least 1 sample",
        ),
        (
            &["--test-subset", "0"],
            "test_subset 0: expected at least 1 sample",
        ),
        (
            &["--train-subset", "0"],
            "train_subset 0: expected at least 1 sample",
        ),
        (
            &["--centre", "sgd"],
            "centre sgd: a swa-sgd plane is centred on SWA by definition",
        ),
        (
            &["--plane", "hessian", "--direction", "uniform"],
            "direction: a hessian plane's directions are Hessian eigenvectors",
        ),
        (
            &["--plane", "hessian", "--eigenvectors", "1,11"],
            "eigenvectors 1,11: expected two different eigenvectors K1,K2 in 1..=10",
        ),
        (
            &["--plane", "hessian", "--hessian-batch", "0"],
            "hessian_batch 0: expected at least 1 sample",
        ),
        (&["--eigenvectors", "3"], "expected two eigenvectors K1,K2"),
        (
            &["--plane", "random", "--eigenvectors", "1,2"],
            "eigenvectors and hessian_batch are for plane hessian; this plane is random",
        ),
    ] {
        let mut all = vec!["plane", "r"];
        all.extend_from_slice(args);
        let said = run(d, &all);
        assert_eq!(said.code, Some(2), "{args:?}: {said:?}");
        assert!(said.stderr.contains(expected), "{args:?}: {}", said.stderr);
        assert_eq!(said.stderr.trim_end().lines().count(), 1, "{}", said.stderr);
    }
    assert!(snapshot(&r) == before, "a refused plane wrote something");

    // The plane of the top two Hessian eigenvectors (through SGD), with their eigenvalues.
    let said = run(
        d,
        &[
            "plane",
            "r",
            "--plane",
            "hessian",
            "--centre",
            "sgd",
            "--points",
            "3x3",
            "--test-subset",
            "64",
            "--hessian-batch",
            "64",
            "--ascii",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let out = &said.stdout;
    assert!(
        out.contains("plane 002-hessian-sgd: test loss over x -0.5..0.5 (d₁ = Hessian eigenvector 1) × y -0.5..0.5 (d₂ = Hessian eigenvector 2)"),
        "{out}"
    );
    assert!(out.contains("Hessian eigenvalues λ1 "), "{out}");
    assert!(
        out.contains("Lanczos steps on 64 training samples"),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(r.join("planes/002-hessian-sgd.json")).unwrap(),
    )
    .unwrap();
    let values = json["eigenvalues"].as_array().unwrap();
    let (l1, l2) = (values[0].as_f64().unwrap(), values[1].as_f64().unwrap());
    assert!(l1 >= l2, "λ1 {l1} < λ2 {l2}");
    assert!((json["d1_norm"].as_f64().unwrap() - 1.0).abs() < 1e-5);

    // The report draws it: the heatmap and the slices through the centre.
    let said = run(d, &["report", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let md = std::fs::read_to_string(r.join("report/report.md")).unwrap();
    assert!(md.contains("## Planes"), "{md}");
    assert!(
        md.contains("d₁ Hessian eigenvector 1, d₂ Hessian eigenvector 2"),
        "{md}"
    );
    assert!(md.contains("Hessian eigenvalues λ1 = "), "{md}");
    for figure in [
        "plane-001-swa-sgd-swa",
        "plane-slices-001-swa-sgd-swa",
        "plane-002-hessian-sgd",
    ] {
        for ext in ["svg", "png"] {
            assert!(
                r.join(format!("report/{figure}.{ext}")).is_file(),
                "{figure}.{ext}"
            );
        }
    }
}

#[test]
fn a_swa_sgd_plane_needs_an_average() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    train(
        d,
        &TINY_BN.replace("swa: {start_epoch: 2}", "swa: {enabled: false}"),
        "r",
    );
    let said = run(d, &["plane", "r", "--points", "3x3"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert!(
        said.stderr.contains("use --plane random"),
        "{}",
        said.stderr
    );
    let said = run(
        d,
        &[
            "plane",
            "r",
            "--plane",
            "random",
            "--points",
            "3x3",
            "--test-subset",
            "64",
            "--ascii",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("marks: S = SGD at (0, 0)"),
        "{}",
        said.stdout
    );
}

/// One rule for parameter groups a model does not have, zoo or TorchScript: a BN-only plane,
/// probe or ablation of a model without BN would move nothing and read as flat.
#[test]
fn bn_only_requests_on_a_model_without_bn_and_unwritable_results_are_refused_before_work() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = train(d, &TINY_BN.replace("norm: batch", "norm: none"), "r");
    let before = snapshot(&r);
    for args in [
        &[
            "plane", "r", "--params", "bn", "--norm", "global", "--points", "3x3",
        ][..],
        &["probe", "r", "--params", "bn", "--points", "5"],
        &[
            "probe",
            "r",
            "--params",
            "bn",
            "--directions",
            "2",
            "--points",
            "5",
        ],
        &["ablate", "r"],
    ] {
        let said = run(d, args);
        assert_eq!(said.code, Some(2), "{args:?}: {said:?}");
        assert!(
            said.stderr.contains("the model has no batch norm"),
            "{args:?}: {}",
            said.stderr
        );
        assert_eq!(said.stderr.trim_end().lines().count(), 1, "{}", said.stderr);
    }
    assert!(snapshot(&r) == before, "a refused request wrote something");

    // A planes/ (or probes/) path that is a file is found before the first point.
    std::fs::write(r.join("planes"), "in the way").unwrap();
    std::fs::write(r.join("probes"), "in the way").unwrap();
    for (args, path) in [
        (
            &["plane", "r", "--plane", "random", "--points", "3x3"][..],
            "planes",
        ),
        (&["probe", "r", "--points", "5"], "probes"),
    ] {
        let started = std::time::Instant::now();
        let said = run(d, args);
        assert_ne!(said.code, Some(0), "{args:?}: {said:?}");
        assert!(
            said.stderr
                .contains(&format!("{path}: cannot store results there")),
            "{args:?}: {}",
            said.stderr
        );
        assert!(
            !said.stderr.contains("points"),
            "no point was measured: {}",
            said.stderr
        );
        assert!(started.elapsed().as_secs() < 30);
    }
}

/// `--plane pca` against an independent SVD (LAPACK's, through libtorch) of the stored
/// trajectory, read here from its files by hand: the offsets w_i − w_SGD centred on their
/// mean, the top two right singular vectors, their shares of the variance, and every
/// iterate's coordinates and residual on the plane.
#[test]
fn a_pca_plane_spans_the_trajectorys_principal_directions() {
    use tch::{Kind, Tensor};
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = train(d, &TINY_BN.replace("epochs: 2", "epochs: 5"), "r");
    let said = run(
        d,
        &[
            "plane",
            "r",
            "--plane",
            "pca",
            "--centre",
            "sgd",
            "--points",
            "3x3",
            "--test-subset",
            "64",
            "--ascii",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("the trajectory's variance along d₁"),
        "{}",
        said.stdout
    );
    assert!(
        said.stdout.contains("path: 6 iterates (epochs 0..5)"),
        "{}",
        said.stdout
    );
    let plane: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("planes/001-pca-sgd.json")).unwrap())
            .unwrap();

    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("trajectory/index.json")).unwrap())
            .unwrap();
    let dimension = index["dimension"].as_u64().unwrap() as i64;
    let bytes = std::fs::read(r.join("trajectory/weights.f32")).unwrap();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let n = index["points"].as_array().unwrap().len() as i64;
    assert_eq!(n, 6, "the initial weights and 5 epoch ends");
    let w = Tensor::from_slice(&floats[..(n * dimension) as usize])
        .reshape([n, dimension])
        .to_kind(Kind::Double);
    // The final checkpoint's SGD iterate is the last epoch end's.
    let offsets = &w - w.get(n - 1);
    let centred = &offsets - offsets.mean_dim(0, true, Kind::Double);
    // torch.svd (LAPACK's gesdd on the CPU): V's columns are the right singular vectors.
    let (_, s, v) = centred.svd(true, true);
    let vh = v.tr();
    let s = Vec::<f64>::try_from(&s).unwrap();
    let total: f64 = s.iter().map(|v| v * v).sum();
    let shares = plane["explained_variance"].as_array().unwrap();
    for k in 0..2 {
        let share = s[k] * s[k] / total;
        let stored = shares[k].as_f64().unwrap();
        assert!(
            (stored - share).abs() < 1e-4,
            "PC {}: {stored} against {share}",
            k + 1
        );
    }
    let along: Vec<Vec<f64>> = (0..2)
        .map(|k| Vec::<f64>::try_from(&offsets.matmul(&vh.get(k))).unwrap())
        .collect();
    let path = plane["path"].as_array().unwrap();
    assert_eq!(path.len() as i64, n);
    for (k, axis) in ["x", "y"].into_iter().enumerate() {
        let reach = along[k].iter().fold(0.0f64, |m, v| m.max(v.abs()));
        // The first iterate on the negative side, the farthest at ±1.
        let sign = if along[k][0] > 0.0 { -1.0 } else { 1.0 };
        for (i, p) in path.iter().enumerate() {
            let expected = sign * along[k][i] / reach;
            let got = p[axis].as_f64().unwrap();
            assert!(
                (got - expected).abs() < 1e-4,
                "iterate {i}: {axis} {got} against {expected}"
            );
        }
    }
    for (i, p) in path.iter().enumerate() {
        let offset = offsets.get(i as i64);
        let norm = offset.norm().double_value(&[]);
        let left = (&offset - vh.get(0) * along[0][i] - vh.get(1) * along[1][i])
            .norm()
            .double_value(&[]);
        let expected = if norm > 0.0 { left / norm } else { 0.0 };
        let got = p["residual"].as_f64().unwrap();
        assert!(
            (got - expected).abs() < 1e-3,
            "iterate {i}: residual {got} against {expected}"
        );
    }

    // Without a stored path, or with settings it has no use for: one line, exit 2.
    let bare = train(
        d,
        &format!("{TINY_BN}checkpoint: {{trajectory_every_epochs: 0}}\n"),
        "bare",
    );
    assert!(!bare.join("trajectory").exists());
    let before = snapshot(&bare);
    for (args, expected) in [
        (
            &["plane", "bare", "--plane", "pca"][..],
            "plane pca spans the run's stored trajectory, and this run has none",
        ),
        (
            &["plane", "r", "--plane", "pca", "--direction", "uniform"],
            "direction: a pca plane's directions are the trajectory's principal directions",
        ),
        (
            &["plane", "r", "--plane", "pca", "--eigenvectors", "1,2"],
            "eigenvectors and hessian_batch are for plane hessian; this plane is pca",
        ),
    ] {
        let said = run(d, args);
        assert_eq!(said.code, Some(2), "{args:?}: {said:?}");
        assert!(said.stderr.contains(expected), "{args:?}: {}", said.stderr);
        assert_eq!(said.stderr.trim_end().lines().count(), 1, "{}", said.stderr);
    }
    assert!(snapshot(&bare) == before, "a refused plane wrote something");
}

fn floats(path: &std::path::Path) -> Vec<f64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect()
}

/// A plane measured on a run keeps growing the run's path when the run trains on: the
/// iterates of the epochs after it are projected onto it as they are kept, with the same
/// least squares as the ones before, computed here by hand from the plane's stored centre and
/// directions and the stored iterates.
#[test]
fn a_planes_path_grows_while_the_run_trains_on() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = train(d, TINY_BN, "r");
    let said = run(
        d,
        &[
            "plane",
            "r",
            "--plane",
            "random",
            "--centre",
            "sgd",
            "--points",
            "3x3",
            "--test-subset",
            "64",
            "--ascii",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let read = || -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(r.join("planes/001-random-sgd.json")).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(read()["path"].as_array().unwrap().len(), 3, "epochs 0 to 2");
    let said = run(
        d,
        &[
            "run",
            "--resume",
            "r",
            "--headless",
            "--set",
            "train.epochs=4",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let plane = read();
    let path = plane["path"].as_array().unwrap();
    let epochs: Vec<u64> = path.iter().map(|p| p["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, vec![0, 1, 2, 3, 4]);

    let kept = floats(&r.join("planes/001-random-sgd.directions.f32"));
    let n = kept.len() / 3;
    let (centre, d1, d2) = (&kept[..n], &kept[n..2 * n], &kept[2 * n..]);
    let weights = floats(&r.join("trajectory/weights.f32"));
    assert_eq!(weights.len(), 5 * n);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
    for (i, p) in path.iter().enumerate() {
        let r: Vec<f64> = weights[i * n..(i + 1) * n]
            .iter()
            .zip(centre)
            .map(|(w, c)| w - c)
            .collect();
        // The normal equations of min |r − x d₁ − y d₂|, solved by Cramer's rule.
        let (a, b, c) = (dot(d1, d1), dot(d1, d2), dot(d2, d2));
        let (e, f) = (dot(d1, &r), dot(d2, &r));
        let det = a * c - b * b;
        let (x, y) = ((c * e - b * f) / det, (a * f - b * e) / det);
        let left: Vec<f64> = (0..n).map(|k| r[k] - x * d1[k] - y * d2[k]).collect();
        let norm = dot(&r, &r).sqrt();
        let residual = if norm > 0.0 {
            dot(&left, &left).sqrt() / norm
        } else {
            0.0
        };
        for (name, expected) in [("x", x), ("y", y), ("residual", residual)] {
            let got = p[name].as_f64().unwrap();
            assert!(
                (got - expected).abs() < 1e-4 * expected.abs().max(1.0),
                "epoch {i}: {name} {got} against {expected}"
            );
        }
    }
}
