//! Every stored result is untrusted input to whatever reads it back (`report`, `open`,
//! `watch`, sweeps): a file truncated, with counts that disagree, with wrong types or numbers
//! out of range is left out with one warning naming it, and everything else still works.

mod common;

use common::{TINY_BN, run, train};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use valleys::rundir::RunDir;

/// The one `*.json` file in `dir` whose name contains `part`.
fn stored(dir: &Path, part: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name().unwrap().to_string_lossy().contains(part)
        })
        .collect();
    assert_eq!(found.len(), 1, "{part} in {}: {found:?}", dir.display());
    found.remove(0)
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Ways to spoil a stored result, each as the text to write in its place.
fn spoiled(original: &str, value: &Value, kind: &str) -> Vec<(&'static str, String)> {
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = value.clone();
        f(&mut v);
        v.to_string()
    };
    let mut cases = vec![
        ("truncated", original[..original.len() / 2].to_owned()),
        ("empty", String::new()),
        ("not an object", "[1, 2, 3]".to_owned()),
        (
            "a number out of range",
            original.replacen(": 0.", ": 1e999 + 0.", 1),
        ),
        ("wrong types", edit(&|v| v["id"] = json!(42))),
    ];
    match kind {
        "plane" => {
            cases.push((
                "fewer points than its grid",
                edit(&|v| {
                    v["points"].as_array_mut().unwrap().pop();
                }),
            ));
            cases.push((
                "a one-point grid",
                edit(&|v| {
                    v["xs"] = json!([0.0]);
                    v["ys"] = json!([0.0]);
                    v["spec"]["points"] = json!([1, 1]);
                    let first = v["points"][0].clone();
                    v["points"] = json!([first]);
                }),
            ));
            cases.push((
                "axes out of order",
                edit(&|v| {
                    v["xs"].as_array_mut().unwrap().reverse();
                }),
            ));
            cases.push((
                "a grid that disagrees with its spec",
                edit(&|v| {
                    v["spec"]["points"] = json!([7, 7]);
                }),
            ));
        }
        "probe" => {
            cases.push((
                "one point",
                edit(&|v| {
                    v["points"].as_array_mut().unwrap().truncate(1);
                }),
            ));
            cases.push((
                "points out of order",
                edit(&|v| {
                    v["points"].as_array_mut().unwrap().reverse();
                }),
            ));
        }
        "batch" => {
            cases.push(("no centre", edit(&|v| v["centres"] = json!([]))));
            cases.push((
                "c values for other probes",
                edit(&|v| {
                    v["centres"][0]["c"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!(2.0));
                }),
            ));
            cases.push((
                "a fraction above one",
                edit(&|v| {
                    v["centres"][0]["fraction_asymmetric"] = json!(7.5);
                }),
            ));
        }
        _ => {
            cases.push(("no arm", edit(&|v| v["arms"] = json!([]))));
            cases.push((
                "a negative fraction",
                edit(&|v| {
                    v["arms"][0]["fraction_asymmetric"] = json!(-0.5);
                }),
            ));
        }
    }
    cases
}

#[test]
fn every_kind_of_stored_result_spoiled_every_way_is_left_out_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = train(d, TINY_BN, "r");
    for args in [
        &["probe", "r", "--points", "5", "--test-subset", "64"][..],
        &[
            "probe",
            "r",
            "--directions",
            "2",
            "--points",
            "5",
            "--test-subset",
            "64",
        ],
        &[
            "plane",
            "r",
            "--points",
            "3x3",
            "--test-subset",
            "64",
            "--bn-subset",
            "128",
        ],
        &["ablate", "r", "--kind", "groups", "--points", "5"],
    ] {
        let said = run(d, args);
        assert_eq!(said.code, Some(0), "{args:?}: {said:?}");
    }
    let files = [
        ("probe", stored(&r.join("probes"), "001-")),
        ("batch", {
            let dir = r.join("probes");
            std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.extension().is_some_and(|x| x == "json") && read(p)["batch"] == json!(true)
                })
                .unwrap()
        }),
        ("plane", stored(&r.join("planes"), "swa-sgd")),
        ("ablation", stored(&r.join("ablations"), "groups")),
    ];
    let run_dir = RunDir::open(&r).unwrap();
    let whole = valleys::follow::history(&run_dir);
    assert!(whole.unreadable.is_empty(), "{:?}", whole.unreadable);
    for (kind, path) in &files {
        let original = std::fs::read_to_string(path).unwrap();
        let value = read(path);
        for (how, text) in spoiled(&original, &value, kind) {
            std::fs::write(path, &text).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // The dashboard's reader (open, watch, a resumed run) leaves it out and names it.
            let history = valleys::follow::history(&run_dir);
            assert!(
                history.unreadable.iter().any(|u| u.contains(&name)),
                "{kind} {how}: {:?}",
                history.unreadable
            );
            // The report is written whole, without it, with one warning naming it.
            let said = run(d, &["report", "r"]);
            assert_eq!(said.code, Some(0), "{kind} {how}: {said:?}");
            assert!(!said.stderr.contains("panicked"), "{kind} {how}: {said:?}");
            let warnings: Vec<&str> = said.stderr.lines().filter(|l| l.contains(&name)).collect();
            assert_eq!(warnings.len(), 1, "{kind} {how}: {}", said.stderr);
            assert!(
                warnings[0].starts_with("valleys: warning: left out of the report: "),
                "{kind} {how}: {}",
                said.stderr
            );
            assert!(r.join("report/report.md").is_file());
        }
        std::fs::write(path, original).unwrap();
    }
    // Restored, everything reads again.
    let said = run(d, &["report", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(!said.stderr.contains("left out"), "{}", said.stderr);
}

/// The metrics and run.json are read the same way: torn or foreign lines are passed over,
/// and the report still draws what is there.
#[test]
fn torn_metrics_and_a_spoiled_run_json_do_not_stop_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = train(d, TINY_BN, "r");
    let metrics = r.join("metrics.jsonl");
    let original = std::fs::read_to_string(&metrics).unwrap();
    for (how, text) in [
        (
            "a torn last line",
            format!("{original}{{\"epoch\": 3, \"iter"),
        ),
        (
            "a line of another shape",
            format!("{original}[1, 2]\n{{\"epoch\": \"three\"}}\n"),
        ),
        (
            "a number out of range",
            format!("{original}{{\"epoch\": 1e999}}\n"),
        ),
    ] {
        std::fs::write(&metrics, text).unwrap();
        let said = run(d, &["report", "r"]);
        assert_eq!(said.code, Some(0), "{how}: {said:?}");
        assert!(!said.stderr.contains("panicked"), "{how}: {said:?}");
    }
    std::fs::write(&metrics, &original).unwrap();
    for text in ["", "{\"outcome\": 7", "[]"] {
        std::fs::write(r.join("run.json"), text).unwrap();
        let said = run(d, &["report", "r"]);
        assert_eq!(said.code, Some(0), "run.json {text:?}: {said:?}");
    }
}

/// A sweep's own files: its index of variants (variants.json) is needed by every reader, so
/// a spoiled one is one line naming it, exit 2, and no report half-written; the files only a
/// launch or a status line read (jobs.json, settings.json) are passed over.
#[test]
fn a_sweeps_spoiled_files_are_named_or_passed_over() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    common::write(d, "base.yaml", TINY_BN);
    common::write(d, "s.yaml", "experiment: base.yaml\naxes:\n  seed: [1]\n");
    let said = run(d, &["sweep", "s.yaml", "--jobs", "1", "--out", "sw"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let sw = d.join("sw");
    let index = std::fs::read_to_string(sw.join("variants.json")).unwrap();
    for text in ["", "{\"x\": ", "[1, 2]", "{\"variants\": 7}"] {
        std::fs::write(sw.join("variants.json"), text).unwrap();
        for args in [&["sweep", "sw", "--status"][..], &["report", "sw"]] {
            let said = run(d, args);
            assert_eq!(said.code, Some(2), "{args:?} {text:?}: {said:?}");
            assert_eq!(said.stderr.trim_end().lines().count(), 1, "{said:?}");
            assert!(said.stderr.contains("sw/variants.json"), "{said:?}");
        }
        assert!(!sw.join("report").exists(), "no half-written report");
    }
    std::fs::write(sw.join("variants.json"), index).unwrap();
    for name in ["jobs.json", "settings.json"] {
        let original = std::fs::read_to_string(sw.join(name)).unwrap();
        for text in ["", "[1, 2]", "{\"executor\": 7}"] {
            std::fs::write(sw.join(name), text).unwrap();
            for args in [&["sweep", "sw", "--status"][..], &["report", "sw"]] {
                let said = run(d, args);
                assert_eq!(said.code, Some(0), "{name} {text:?} {args:?}: {said:?}");
            }
        }
        std::fs::write(sw.join(name), original).unwrap();
    }
}
