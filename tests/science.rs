//! scripts/science.sh, the long check of the BN claim, runs end to end here on a tiny BN
//! network: it trains, ablates, and reports a verdict that follows from the stored ablation.

use std::process::Command;

#[test]
fn the_science_check_reports_the_bn_only_minus_non_bn_difference_per_centre() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/science.sh");
    let said = Command::new("bash")
        .arg(script)
        .args([
            "--valleys",
            env!("CARGO_BIN_EXE_valleys"),
            "--small",
            "--directions",
            "3",
        ])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&said.stdout).into_owned() + &String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(0), "{text}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("science.json")).unwrap()).unwrap();
    let verdicts = doc["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2, "one per centre: {doc}");
    for v in verdicts {
        let (k1, n1) = (
            v["bn_only"][0].as_f64().unwrap(),
            v["bn_only"][1].as_f64().unwrap(),
        );
        let (k2, n2) = (
            v["non_bn"][0].as_f64().unwrap(),
            v["non_bn"][1].as_f64().unwrap(),
        );
        assert_eq!((n1, n2), (3.0, 3.0));
        assert!((v["difference"].as_f64().unwrap() - (k1 / n1 - k2 / n2)).abs() < 1e-12);
        let lo = v["interval"]["lo"].as_f64().unwrap();
        assert_eq!(v["shown"], lo > 0.0, "{v}");
        let word = if lo > 0.0 { "shown" } else { "not shown" };
        let centre = v["centre"].as_str().unwrap();
        assert!(text.contains(&format!("science: {centre}: ")), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("science: {centre}")) && l.ends_with(word)),
            "{text}"
        );
    }
    // Failing to run is exit 1 and says why.
    let said = Command::new("bash")
        .arg(script)
        .args([
            "--valleys",
            "/nonexistent/valleys",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(said.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&said.stderr).contains("science: could not run: no valleys binary")
    );
}

/// scripts/science-curvature.sh, the long check of "beyond sharp and flat", end to end on a
/// tiny BN network over three seeds: each seed's numbers come from its stored curvature job
/// and probe batch, and the SGD − SWA column is the mean of the per-seed differences.
#[test]
fn the_curvature_check_tables_curvature_beside_asymmetry_over_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/science-curvature.sh");
    let said = Command::new("bash")
        .arg(script)
        .args(["--valleys", env!("CARGO_BIN_EXE_valleys"), "--small"])
        .args(["--directions", "2", "--seeds", "1 2 3"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&said.stdout).into_owned() + &String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(0), "{text}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("science-curvature.json")).unwrap())
            .unwrap();
    let seeds = doc["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 3, "{doc}");
    // Each seed's λ_max is its own stored job's.
    let mut differences = Vec::new();
    for (seed, row) in seeds.iter().enumerate() {
        let dir = out.join(format!("seed-{}/curvature", seed + 1));
        let path = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .unwrap();
        let job: valleys::curvature::CurvatureResult =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for centre in ["sgd", "swa"] {
            assert_eq!(
                row[centre]["lambda_max"].as_f64().unwrap(),
                job.centre(centre).unwrap().eigenvalues[0].value
            );
        }
        differences.push(
            row["sgd"]["lambda_max"].as_f64().unwrap() - row["swa"]["lambda_max"].as_f64().unwrap(),
        );
    }
    let mean = differences.iter().sum::<f64>() / 3.0;
    let d = &doc["sgd_minus_swa"]["lambda_max"];
    assert!((d["mean"].as_f64().unwrap() - mean).abs() < 1e-9, "{d}");
    assert!(d["lo"].as_f64().unwrap() <= mean && mean <= d["hi"].as_f64().unwrap());
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(
        table.starts_with("| over 3 seeds | test loss | λ_max | trace"),
        "{table}"
    );
    assert!(table.contains("| SGD − SWA |"), "{table}");
}

/// scripts/science-paths.sh, the long check of the 2024 follow-up, end to end on a tiny BN
/// network: the sweep's asymmetry and pairs sections are carried into table.md, the sign-match
/// fractions are the stored ratio tables pooled over the seeds (checked here by hand), and
/// sign-match at ρ and 1 − ρ are mirror images (the direction is negated).
#[test]
fn the_paths_check_pools_sign_match_over_seeds_and_tables_pairs_and_curves() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/science-paths.sh");
    let said = Command::new("bash")
        .arg(script)
        .args(["--valleys", env!("CARGO_BIN_EXE_valleys"), "--small"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&said.stdout).into_owned() + &String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(0), "{text}");
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    for heading in [
        "## Asymmetric fraction against model.bn_init=one",
        "## Barrier against sign consistency (seeds pairs, swa iterates)",
        "## Sign-match directions against the ratio ρ",
        "## Bézier curve against the straight line",
    ] {
        assert!(table.contains(heading), "{heading}: {table}");
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("science-paths.json")).unwrap())
            .unwrap();
    // By hand: each (ratio, centre)'s asymmetric count summed over the three seeds' CSVs.
    let mut by_hand = std::collections::HashMap::<(String, String), (u64, u64)>::new();
    for seed in 1..=3 {
        let probes = out.join(format!(
            "bn-init/runs/00{}-model.bn_init=one-seed={seed}/probes",
            seed - 1
        ));
        let csv = std::fs::read_dir(&probes)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-ratios.csv"))
            .unwrap();
        for line in std::fs::read_to_string(csv).unwrap().lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            let entry = by_hand
                .entry((cells[0].to_owned(), cells[1].to_owned()))
                .or_default();
            entry.0 += cells[2].parse::<u64>().unwrap();
            entry.1 += cells[3].parse::<u64>().unwrap();
        }
    }
    let rows = doc["sign_match"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "ρ = 0, 0.5, 1 at SGD and SWA: {doc}");
    for row in rows {
        let key = (
            row["ratio"].as_f64().unwrap().to_string(),
            row["centre"].as_str().unwrap().to_owned(),
        );
        let (k, n) = by_hand[&key];
        assert_eq!(
            (
                row["asymmetric"].as_u64().unwrap(),
                row["directions"].as_u64().unwrap()
            ),
            (k, n),
            "{key:?}"
        );
    }
    let at = |ratio: f64, centre: &str| {
        rows.iter()
            .find(|r| r["ratio"].as_f64() == Some(ratio) && r["centre"] == centre)
            .unwrap()
    };
    for centre in ["sgd", "swa"] {
        let (zero, one) = (at(0.0, centre), at(1.0, centre));
        assert_eq!(zero["asymmetric"], one["asymmetric"], "{centre}");
        let (a, b) = (
            zero["rise_minus"].as_f64().unwrap(),
            one["rise_plus"].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() < 1e-6,
            "{centre}: ρ = 0's rise at −T {a} against ρ = 1's at +T {b}"
        );
    }
    let curves = doc["curves"].as_array().unwrap();
    assert_eq!(curves.len(), 1, "{doc}");
    assert_eq!(curves[0]["epochs"], 1);
    // A second run continues: nothing is measured again.
    let said = Command::new("bash")
        .arg(script)
        .args(["--valleys", env!("CARGO_BIN_EXE_valleys"), "--small"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&said.stdout).into_owned();
    assert_eq!(said.status.code(), Some(0), "{text}");
    assert!(!text.contains("sign-match directions at ratios"), "{text}");
    assert!(!text.contains("a Bézier curve between"), "{text}");
}
