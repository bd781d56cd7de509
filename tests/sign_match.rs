//! `--direction sign-match`: directions whose signs agree with the weights on a chosen share
//! of entries (Li et al. 2024), one probe or a sweep over the share, and bad requests refused.

mod common;

use common::{TINY_BN, run, snapshot, train};

#[test]
fn a_sweep_over_the_ratio_of_agreeing_signs_is_printed_and_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = train(d, TINY_BN, "r");

    // One probe: its sign agreement is the ratio asked for, exactly as counted.
    let said = run(
        d,
        &[
            "probe",
            "r",
            "--direction",
            "sign-match",
            "--ratio",
            "0.25",
            "--points",
            "5",
            "--from",
            "-2",
            "--to",
            "2",
            "--train-subset",
            "64",
            "--test-subset",
            "64",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("sign agreement 25.0%"),
        "{}",
        said.stdout
    );

    let said = run(
        d,
        &[
            "probe",
            "r",
            "--direction",
            "sign-match",
            "--ratios",
            "0:1:1",
            "--directions",
            "2",
            "--points",
            "5",
            "--from",
            "-2",
            "--to",
            "2",
            "--train-subset",
            "64",
            "--test-subset",
            "64",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let out = &said.stdout;
    assert!(
        out.contains("sign-match sweep: 2 directions per centre and ratio"),
        "{out}"
    );
    let csv_path = out
        .lines()
        .find_map(|l| l.strip_prefix("wrote "))
        .filter(|p| p.ends_with("-ratios.csv"))
        .expect("the sweep's CSV");
    let csv = std::fs::read_to_string(d.join(csv_path)).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 4, "2 ratios × 2 centres: {csv}");
    // ρ = 0 draws ρ = 1's directions turned around, so each end's rise is the other's.
    let rise = |ratio: &str, centre: &str, column: usize| -> f64 {
        rows.iter()
            .find(|r| r[0] == ratio && r[1] == centre)
            .unwrap()[column]
            .parse()
            .unwrap()
    };
    for centre in ["sgd", "swa"] {
        assert!(
            (rise("0", centre, 10) - rise("1", centre, 13)).abs() < 1e-9,
            "{csv}"
        );
        assert!(
            (rise("0", centre, 13) - rise("1", centre, 10)).abs() < 1e-9,
            "{csv}"
        );
    }

    // Bad requests: one line, exit 2, nothing written.
    let before = snapshot(&r);
    for (args, expected) in [
        (
            &["--direction", "sign-match"][..],
            "direction sign-match: expected a ratio of agreeing signs",
        ),
        (
            &["--direction", "sign-match", "--ratio", "1.5"],
            "probe.ratio = 1.5: expected a fraction of agreeing signs, 0 <= ratio <= 1",
        ),
        (
            &["--direction", "uniform", "--ratio", "0.5"],
            "probe.ratio is for direction sign-match; this probe's direction is uniform",
        ),
        (
            &[
                "--direction",
                "uniform",
                "--ratios",
                "0:1:0.5",
                "--directions",
                "2",
            ],
            "--ratios sweeps the ratio of a sign-match direction",
        ),
        (
            &["--direction", "sign-match", "--ratios", "0:1:0.5"],
            "expected --directions N with N >= 2",
        ),
        (
            &[
                "--direction",
                "sign-match",
                "--ratios",
                "0:2:0.5",
                "--directions",
                "2",
            ],
            "expected FROM:TO:STEP with 0 <= FROM <= TO <= 1",
        ),
    ] {
        let mut all = vec!["probe", "r"];
        all.extend_from_slice(args);
        let said = run(d, &all);
        assert_eq!(said.code, Some(2), "{args:?}: {said:?}");
        assert!(said.stderr.contains(expected), "{args:?}: {}", said.stderr);
        assert_eq!(said.stderr.trim_end().lines().count(), 1, "{}", said.stderr);
    }
    assert!(snapshot(&r) == before, "a refused probe wrote something");
}
