//! Statistics end to end: a probe's t = 0 is the dashboard's SWA point, interpolation keeps its
//! own grid, the auto range stops where the loss reaches its target, and batch summaries carry
//! intervals recomputed here by hand from the stored probes.

mod common;

use common::{run, train};
use serde_json::Value;
use std::path::Path;

/// An MLP with BN and SWA; its experiment sets a grid for random directions.
const BN_RUN: &str = "\
name: s
seed: 3
data: {dataset: fashion-mnist, train_subset: 512, test_subset: 256}
model: {arch: mlp, hidden: 32, norm: batch}
train: {epochs: 3, batch_size: 64, lr: 0.05}
swa: {start_epoch: 2, lr: 0.02}
eval: {train_subset: 256}
probe: {from: -5, to: 5, points: 41}
";

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn probe(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["probe", "r", "--checkpoint", "final"];
    all.extend_from_slice(args);
    let said = run(dir, &all);
    assert_eq!(said.code, Some(0), "{said:?}");
    let id = said
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("wrote r/probes/"))
        .and_then(|l| l.split(".json").next())
        .unwrap_or_else(|| panic!("no probe written: {said:?}"))
        .to_owned();
    json(&dir.join("r/probes").join(format!("{id}.json")))
}

fn last_row(dir: &Path, iterate: &str, split: &str) -> Value {
    std::fs::read_to_string(dir.join("r/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .rfind(|r| r["iterate"] == iterate && r["split"] == split)
        .unwrap()
}

fn point_at_zero(result: &Value) -> &Value {
    result["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["t"].as_f64() == Some(0.0))
        .unwrap()
}

#[test]
fn a_probe_through_swa_starts_at_the_dashboards_swa_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    train(tmp.path(), BN_RUN, "r");
    let row = last_row(tmp.path(), "swa", "train");
    let test_row = last_row(tmp.path(), "swa", "test");
    let r = probe(tmp.path(), &["--range", "1", "--points", "5"]);
    let zero = point_at_zero(&r);
    for (probe_value, metric) in [
        (&zero["train_loss"], &row["loss"]),
        (&zero["train_acc"], &row["acc"]),
        (&zero["test_loss"], &test_row["loss"]),
    ] {
        let (a, b) = (probe_value.as_f64().unwrap(), metric.as_f64().unwrap());
        assert!((a - b).abs() < 1e-6, "probe {a} vs dashboard {b}");
    }
    assert_eq!(r["samples"]["train"], 256, "the run's evaluation subset");
    assert_eq!(
        r["samples"]["bn"], 512,
        "the run's own BN pass: every sample"
    );
    // A BN pass of another size is another measurement: t = 0 moves.
    let other = probe(
        tmp.path(),
        &["--range", "1", "--points", "5", "--bn-subset", "100"],
    );
    let moved = point_at_zero(&other)["train_loss"].as_f64().unwrap();
    assert!((moved - row["loss"].as_f64().unwrap()).abs() > 1e-6);
    assert_eq!(other["spec"]["bn_subset"], 100);
    let all = probe(
        tmp.path(),
        &["--range", "1", "--points", "5", "--bn-subset", "all"],
    );
    assert_eq!(all["spec"]["bn_subset"], "all");
    assert_eq!(all["samples"]["bn"], 512);
}

#[test]
fn interpolation_keeps_its_grid_unless_given_one_and_auto_ranges_stop_at_their_target() {
    let tmp = tempfile::tempdir().unwrap();
    train(tmp.path(), BN_RUN, "r");
    // The experiment's -5..5 is for random directions; interp keeps [-2, 3], with 21 points
    // on a CPU (201 on a GPU, or when asked for).
    let r = probe(tmp.path(), &["--direction", "interp"]);
    assert_eq!(
        (&r["spec"]["from"], &r["spec"]["to"], &r["spec"]["points"]),
        (&Value::from(-2.0), &Value::from(3.0), &Value::from(21))
    );
    let r = probe(
        tmp.path(),
        &["--direction", "interp", "--from", "-1", "--points", "11"],
    );
    assert_eq!(
        (&r["spec"]["from"], &r["spec"]["to"], &r["spec"]["points"]),
        (&Value::from(-1.0), &Value::from(3.0), &Value::from(11))
    );
    // Uniform takes the experiment's grid.
    let r = probe(tmp.path(), &["--points", "5"]);
    assert_eq!(
        (&r["spec"]["from"], &r["spec"]["to"]),
        (&Value::from(-5.0), &Value::from(5.0))
    );

    let r = probe(tmp.path(), &["--range", "auto", "--points", "9"]);
    let auto = &r["auto_range"];
    let t = auto["half_range"].as_f64().unwrap();
    assert_eq!(auto["reached"], true);
    assert_eq!(
        (r["spec"]["from"].as_f64(), r["spec"]["to"].as_f64()),
        (Some(-t), Some(t))
    );
    let points = r["points"].as_array().unwrap();
    let loss = |p: &Value| p["train_loss"].as_f64().unwrap();
    let centre = loss(point_at_zero(&r));
    let chance = (10f64).ln();
    assert!((auto["chance_loss"].as_f64().unwrap() - chance).abs() < 1e-12);
    let target = centre + 0.5 * (chance - centre);
    assert!((auto["target_loss"].as_f64().unwrap() - target).abs() < 1e-9);
    // The ends of the grid reach the target on at least one side...
    let ends = loss(&points[0]).max(loss(&points[points.len() - 1]));
    assert!(ends >= target, "ends {ends} below {target}");
    // The grid reuses the search's centre and ends; every point is what a probe with that
    // range given outright measures, digit for digit.
    let fixed = probe(tmp.path(), &["--range", &t.to_string(), "--points", "9"]);
    assert_eq!(r["points"], fixed["points"], "T = {t}");
    // ...and the command says what it chose.
    let said = run(
        tmp.path(),
        &[
            "probe",
            "r",
            "--checkpoint",
            "final",
            "--range",
            "auto",
            "--points",
            "9",
        ],
    );
    assert!(said.stdout.contains("auto range: T = "), "{said:?}");
}

#[test]
fn a_batch_reports_intervals_that_match_a_recount_of_its_probes() {
    let tmp = tempfile::tempdir().unwrap();
    train(tmp.path(), BN_RUN, "r");
    let said = run(
        tmp.path(),
        &[
            "probe",
            "r",
            "--checkpoint",
            "final",
            "--directions",
            "5",
            "--range",
            "4",
            "--points",
            "9",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("% [95% CI]") && said.stdout.contains("swa − sgd"),
        "{said:?}"
    );
    let probes = tmp.path().join("r/probes");
    let batch = std::fs::read_dir(&probes)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.to_string_lossy().contains("batch") && p.extension().is_some_and(|e| e == "json")
        })
        .unwrap();
    let batch = json(&batch);
    for centre in batch["centres"].as_array().unwrap() {
        let ids = centre["probes"].as_array().unwrap();
        let mut asymmetric = 0;
        for id in ids {
            let r = json(&probes.join(format!("{}.json", id.as_str().unwrap())));
            let s = &r["train_score"];
            // The class follows from the stored rises, floor and c.
            let floor = s["noise_floor"].as_f64().unwrap();
            let (lo, hi) = (
                s["rise_minus"].as_f64().unwrap(),
                s["rise_plus"].as_f64().unwrap(),
            );
            let c = s["c"].as_f64().unwrap_or(f64::INFINITY);
            let expected = match (lo > floor, hi > floor) {
                (false, false) => "flat",
                (true, true) if c >= 3.0 => "asymmetric",
                (true, true) => "symmetric",
                _ if c >= 3.0 && lo.max(hi) >= 3.0 * floor => "asymmetric",
                _ => "undecided",
            };
            assert_eq!(s["class"], expected, "{s}");
            asymmetric += usize::from(expected == "asymmetric");
        }
        assert_eq!(centre["asymmetric"], asymmetric);
        // Wilson's interval, by hand.
        let (k, n, z) = (
            asymmetric as f64,
            ids.len() as f64,
            1.959_963_984_540_054_f64,
        );
        let p = k / n;
        let mid = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
        let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
        let i = &centre["fraction_interval"];
        assert!(
            (i["lo"].as_f64().unwrap() - (mid - half).max(0.0)).abs() < 1e-9,
            "{i}"
        );
        assert!(
            (i["hi"].as_f64().unwrap() - (mid + half).min(1.0)).abs() < 1e-9,
            "{i}"
        );
    }
    assert_eq!(batch["comparisons"][0]["a"], "swa");
}
