//! `connect:` in a sweep: once every variant has trained, the runs of each configuration are
//! connected pairwise; the report puts each pair's barrier against its sign consistency with
//! Spearman's rank correlation, which is checked here against the stored connections by the
//! textbook formula. A removed pair is measured again on continuing, and nothing else.

mod common;

use common::{run, write};

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// 1 − 6Σd²/(n(n² − 1)) for values without ties.
fn spearman_by_hand(x: &[f64], y: &[f64]) -> f64 {
    let rank = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .map(|a| v.iter().filter(|b| *b < a).count() as f64 + 1.0)
            .collect()
    };
    let (rx, ry) = (rank(x), rank(y));
    let n = x.len() as f64;
    let d2: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - b).powi(2)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

#[test]
fn a_sweep_connects_its_seeds_and_reports_barrier_against_sign_consistency() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "base.yaml", common::TINY_BN);
    write(
        d,
        "s.yaml",
        "experiment: base.yaml\naxes:\n  model.bn_init: [one, uniform]\n  seed: [1, 2, 3]\nconnect: {points: 3, test_subset: 64}\n",
    );
    let said = run(d, &["sweep", "s.yaml", "--jobs", "2", "--out", "s"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("connecting 6 of 6 pairs"),
        "{}",
        said.stdout
    );
    let runs = d.join("s/runs");
    let ids = [
        "000-model.bn_init=one-seed=1",
        "001-model.bn_init=one-seed=2",
        "002-model.bn_init=one-seed=3",
        "003-model.bn_init=uniform-seed=1",
        "004-model.bn_init=uniform-seed=2",
        "005-model.bn_init=uniform-seed=3",
    ];
    let mut barriers = Vec::new();
    let mut ratios = Vec::new();
    for (a, b) in [(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)] {
        let dir = runs.join(ids[a]).join("connections");
        let found: Vec<serde_json::Value> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| json(&p))
            .filter(|c| c["b"]["run"].as_str().unwrap().ends_with(ids[b]))
            .collect();
        assert_eq!(found.len(), 1, "{} → {}", ids[a], ids[b]);
        assert_eq!(found[0]["a"]["iterate"], "swa");
        assert_eq!(found[0]["points"].as_array().unwrap().len(), 3);
        barriers.push(found[0]["train_barrier"]["value"].as_f64().unwrap());
        ratios.push(found[0]["sign_consistency"].as_f64().unwrap());
    }
    // No pair across the two configurations.
    assert!(!runs.join(ids[2]).join("connections").exists());

    let status = run(d, &["sweep", "--status", "s"]);
    assert!(
        status
            .stdout
            .contains("pairs (seeds, swa): 6 of 6 connected"),
        "{}",
        status.stdout
    );
    let said = run(d, &["report", "s"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let md = std::fs::read_to_string(d.join("s/report/report.md")).unwrap();
    assert!(
        md.contains("## Barrier against sign consistency (seeds pairs, swa iterates)"),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "| {} | {} | model.bn_init=uniform |",
            ids[3], ids[4]
        )),
        "{md}"
    );
    let rho = spearman_by_hand(&ratios, &barriers);
    assert!(
        md.contains(&format!("train ρ = {rho:+.2} [")) && md.contains("over 6 pairs"),
        "ρ by hand {rho:+.2}: {md}"
    );

    // A pair whose file is gone is measured again on continuing; the others are kept.
    let first = runs.join(ids[0]).join("connections");
    let kept = std::fs::read_dir(&first).unwrap().count();
    for e in std::fs::read_dir(runs.join(ids[3]).join("connections")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let said = run(d, &["sweep", "s"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("connecting 2 of 6 pairs"),
        "{}",
        said.stdout
    );
    assert_eq!(std::fs::read_dir(&first).unwrap().count(), kept);

    // A bad section is one line naming the key, before anything is created.
    for (connect, says) in [
        (
            "{iterate: ema}",
            "connect: iterate: 'ema': expected sgd or swa",
        ),
        ("{pair: all}", "connect: pair: unknown field `pair`"),
        ("{points: 1}", "connect: points: 1: expected 2..=1001"),
    ] {
        write(
            d,
            "bad.yaml",
            &format!("experiment: base.yaml\nconnect: {connect}\n"),
        );
        let said = run(d, &["sweep", "bad.yaml", "--out", "bad"]);
        assert_eq!(said.code, Some(2), "{said:?}");
        assert_eq!(said.stderr.lines().count(), 1, "{}", said.stderr);
        assert!(said.stderr.contains(says), "{connect}: {}", said.stderr);
        assert!(!d.join("bad").exists());
    }
}
