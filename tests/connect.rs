//! `valleys connect A B`: the straight line between two solutions, checked against the
//! interpolation probe it generalises, and bad requests refused in one line.

mod common;

use common::{TINY_BN, run, snapshot, train};

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_connection_is_the_interpolation_probe_between_its_ends_and_bad_ends_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = train(d, TINY_BN, "r");
    let said = run(
        d,
        &[
            "connect",
            "r:swa",
            "r:sgd",
            "--points",
            "3",
            "--test-subset",
            "128",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout
            .contains("connection 001-swa-sgd: r:swa@latest → r:sgd@latest"),
        "{}",
        said.stdout
    );
    let connection = json(&r.join("connections/001-swa-sgd.json"));

    // The interpolation probe from SWA (t = 0) to SGD (t = 1) measures the same points.
    let said = run(
        d,
        &[
            "probe",
            "r",
            "--direction",
            "interp",
            "--from",
            "0",
            "--to",
            "1",
            "--points",
            "3",
            "--test-subset",
            "128",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let probe_file = std::fs::read_dir(r.join("probes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let probe = json(&probe_file);
    let (ours, theirs) = (
        connection["points"].as_array().unwrap(),
        probe["points"].as_array().unwrap(),
    );
    assert_eq!(ours.len(), 3);
    for (a, b) in ours.iter().zip(theirs) {
        for key in ["t", "train_loss", "test_loss", "train_acc", "test_acc"] {
            let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!((x - y).abs() < 1e-6, "{key}: {x} against the probe's {y}");
        }
    }
    // The barrier by its definition from the stored points.
    let losses: Vec<f64> = ours
        .iter()
        .map(|p| p["train_loss"].as_f64().unwrap())
        .collect();
    let top = losses.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let barrier = connection["train_barrier"]["value"].as_f64().unwrap();
    assert!((barrier - (top - (losses[0] + losses[2]) / 2.0)).abs() < 1e-12);
    let ratio = connection["sign_consistency"].as_f64().unwrap();
    assert!(
        ratio > 0.5 && ratio <= 1.0,
        "SWA and SGD of one run mostly agree: {ratio}"
    );

    // The report draws it; a connection file broken by hand is left out with its reason.
    std::fs::write(r.join("connections/009-broken.json"), "{\"id\": 1}").unwrap();
    let said = run(d, &["report", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let md = std::fs::read_to_string(r.join("report/report.md")).unwrap();
    assert!(
        md.contains("## Connections")
            && md.contains("| 001-swa-sgd | `r:swa@latest` → `r:sgd@latest` |"),
        "{md}"
    );
    assert!(md.contains("009-broken.json"), "{md}");
    assert!(r.join("report/connection-001-swa-sgd.png").is_file());
    std::fs::remove_file(r.join("connections/009-broken.json")).unwrap();

    // Two runs of different seeds connect too; runs of other models or without an average
    // are refused, as are the same weights twice.
    train(d, &format!("{TINY_BN}seed: 2\n"), "r2");
    let said = run(
        d,
        &["connect", "r", "r2", "--points", "2", "--test-subset", "64"],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(said.stdout.contains("sign consistency"), "{}", said.stdout);
    train(d, &TINY_BN.replace("hidden: 32", "hidden: 16"), "narrow");
    train(
        d,
        &TINY_BN.replace("swa: {start_epoch: 2}", "swa: {enabled: false}"),
        "plain",
    );
    let before = snapshot(&r);
    for (args, expected) in [
        (&["connect", "r", "r:sgd"][..], "are the same weights"),
        (&["connect", "r", "narrow"], "are different models"),
        (&["connect", "plain:swa", "r"], "holds no snapshot yet"),
        (
            &["connect", "r:ema", "r"],
            "iterate 'ema'; expected sgd or swa",
        ),
        (
            &["connect", "r", "r:swa", "--points", "1"],
            "--points 1: expected 2..=1001",
        ),
        (&["connect", "missing", "r"], "missing"),
    ] {
        let said = run(d, args);
        assert_eq!(said.code, Some(2), "{args:?}: {said:?}");
        assert!(said.stderr.contains(expected), "{args:?}: {}", said.stderr);
        assert_eq!(said.stderr.trim_end().lines().count(), 1, "{}", said.stderr);
    }
    assert!(
        snapshot(&r) == before,
        "a refused connection wrote something"
    );
}

/// A Bézier curve between two seeds: its ends are the line's ends, it is trained to a lower
/// loss than the line between them, it is stored beside the line (JSON and CSV) and drawn in
/// the report; bad curve settings are one line and write nothing.
#[test]
fn a_bezier_curve_starts_and_ends_at_the_line_s_ends_and_lies_lower() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = train(d, TINY_BN, "r");
    train(d, &format!("{TINY_BN}seed: 2\n"), "r2");
    let before = snapshot(&r);
    for (args, expected) in [
        (
            &["connect", "r:swa", "r2:swa", "--curve-lr", "0.1"][..],
            "--curve-lr without --curve-epochs",
        ),
        (
            &[
                "connect",
                "r:swa",
                "r2:swa",
                "--curve-epochs",
                "2",
                "--curve-lr=0",
            ],
            "curve lr 0: expected a positive number",
        ),
    ] {
        let said = run(d, args);
        assert_eq!(said.code, Some(2), "{args:?}: {said:?}");
        assert!(said.stderr.contains(expected), "{args:?}: {}", said.stderr);
        assert_eq!(said.stderr.trim_end().lines().count(), 1, "{}", said.stderr);
    }
    assert!(snapshot(&r) == before, "a refused curve wrote something");

    let said = run(
        d,
        &[
            "connect",
            "r:swa",
            "r2:swa",
            "--points",
            "5",
            "--curve-epochs",
            "4",
            "--test-subset",
            "128",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("Bézier curve (4 epochs, lr 0.05)"),
        "{}",
        said.stdout
    );
    let connection = json(&r.join("connections/001-swa-swa.json"));
    let (line, curve) = (
        connection["points"].as_array().unwrap(),
        connection["curve"]["points"].as_array().unwrap(),
    );
    assert_eq!((line.len(), curve.len()), (5, 5));
    let loss = |p: &serde_json::Value, key: &str| p[key].as_f64().unwrap();
    for end in [0, 4] {
        for key in ["t", "train_loss", "test_loss"] {
            let (x, y) = (loss(&line[end], key), loss(&curve[end], key));
            assert!(
                (x - y).abs() < 1e-6,
                "point {end} {key}: line {x}, curve {y}"
            );
        }
    }
    let interior = |points: &[serde_json::Value]| -> f64 {
        points[1..4]
            .iter()
            .map(|p| loss(p, "train_loss"))
            .sum::<f64>()
            / 3.0
    };
    assert!(
        interior(curve) < interior(line),
        "the curve's inner points ({}) lie no lower than the line's ({})",
        interior(curve),
        interior(line)
    );
    let settings = &connection["curve"]["settings"];
    assert_eq!(settings["epochs"], 4);
    assert_eq!(settings["batch_size"], 64, "the run's own batch size");
    // 512 samples in batches of 64: 8 steps an epoch.
    assert_eq!(connection["curve"]["steps"], 32);
    let csv = std::fs::read_to_string(r.join("connections/001-swa-swa.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.starts_with("t,train_loss") && header.contains(",curve_train_loss,"),
        "{header}"
    );
    assert_eq!(csv.lines().nth(1).unwrap().split(',').count(), 13);

    let said = run(d, &["report", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let md = std::fs::read_to_string(r.join("report/report.md")).unwrap();
    assert!(md.contains("Bézier"), "{md}");
}
