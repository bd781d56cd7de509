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
