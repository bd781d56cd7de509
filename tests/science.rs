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
