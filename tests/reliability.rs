//! Run data is never lost or mixed up at the edges: resuming under a changed model, a kill
//! while finishing, a stop before the first batch, two writers at once, degenerate batch
//! norm, non-finite results, hang-ups under nohup, and probes that fail inside the dashboard.

mod common;

use common::{TINY, Tmux, run, snapshot, train, trained_tiny, valleys, write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use valleys::protocol::{Iterate, Split};
use valleys::rundir::RunDir;

fn metric_rows(run_dir: &Path) -> Vec<valleys::protocol::MetricRow> {
    RunDir::open(run_dir).unwrap().read_metrics().unwrap()
}

#[test]
fn resuming_under_a_model_that_changes_the_tensors_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let bn = train(d, TINY, "bn");
    let none = train(
        d,
        &TINY.replace("hidden: 16}", "hidden: 16, norm: none}"),
        "none",
    );
    for (dir, set, field) in [
        (&bn, "model.norm=none", "model.norm"),
        (&none, "model.norm=batch", "model.norm"),
        (&bn, "model.hidden=32", "model.hidden"),
        (&bn, "data.pad_to=32", "data.pad_to"),
    ] {
        let before = snapshot(dir);
        let said = run(
            d,
            &[
                "run",
                "--resume",
                dir.to_str().unwrap(),
                "--headless",
                "--set",
                "train.epochs=2",
                "--set",
                set,
            ],
        );
        assert_eq!(said.code, Some(2), "{set}: {said:?}");
        assert!(
            said.stderr
                .contains(&format!("{field} cannot change when resuming")),
            "{set}: {}",
            said.stderr
        );
        assert_eq!(said.stderr.trim_end().lines().count(), 1, "{}", said.stderr);
        assert!(snapshot(dir) == before, "{set}: the run directory changed");
    }
    // The runs are still whole: they resume and probe as before.
    let said = run(
        d,
        &[
            "run",
            "--resume",
            "bn",
            "--headless",
            "--set",
            "train.epochs=2",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let said = run(
        d,
        &["probe", "none", "--checkpoint", "final", "--points", "5"],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
}

#[test]
fn a_run_killed_while_finishing_is_completed_by_resume() {
    let tmp = trained_tiny();
    let d = tmp.path();
    let r = d.join("r");
    let checkpoints = r.join("checkpoints");
    // As if killed during the final checkpoint's write: the temporary file of a dead
    // process, no final.safetensors, no outcome in run.json.
    std::fs::remove_file(checkpoints.join("final.safetensors")).unwrap();
    let stale = checkpoints.join(".final.safetensors.2147483632.tmp");
    std::fs::write(&stale, "half a checkpoint").unwrap();
    let info = r.join("run.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&info).unwrap()).unwrap();
    value.as_object_mut().unwrap().remove("outcome");
    std::fs::write(&info, value.to_string()).unwrap();

    let said = run(d, &["run", "--resume", "r", "--headless"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(said.stdout.contains("nothing to train"), "{said:?}");
    assert!(said.stderr.contains("recreated"), "{said:?}");
    assert_eq!(
        std::fs::read(checkpoints.join("final.safetensors")).unwrap(),
        std::fs::read(checkpoints.join("latest.safetensors")).unwrap()
    );
    assert!(!stale.exists(), "the stale temporary file is removed");
    assert_eq!(
        RunDir::open(&r).unwrap().outcome(),
        Some(valleys::protocol::Outcome::Completed)
    );
    let said = run(d, &["probe", "r", "--checkpoint", "final", "--points", "5"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    // Nothing is left to recover: a finished run is finished.
    let said = run(d, &["run", "--resume", "r", "--headless"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert!(
        said.stderr.contains("already finished its 1 epochs"),
        "{said:?}"
    );
}

#[test]
fn a_stop_before_the_first_batch_and_a_resume_write_the_first_evaluation_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "x.yaml", TINY);
    let out = valleys(d)
        .args(["run", "x.yaml", "--headless", "--out", "r"])
        .env("VALLEYS_FAULT", "stop-at-step:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("stopped; continue with: valleys run --resume r"),
        "{printed}"
    );
    // The stopped part's peak memory, made larger than any this machine reaches: the resumed
    // run keeps the most of its parts.
    let run_json = d.join("r/run.json");
    let mut info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&run_json).unwrap()).unwrap();
    assert!(
        info["machine"]["rss_peak_bytes"].as_u64().unwrap() > 0,
        "{info}"
    );
    info["machine"]["rss_peak_bytes"] = serde_json::json!(1u64 << 50);
    std::fs::write(&run_json, serde_json::to_string(&info).unwrap()).unwrap();
    let said = run(d, &["run", "--resume", "r", "--headless"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&run_json).unwrap()).unwrap();
    assert_eq!(info["machine"]["rss_peak_bytes"], 1u64 << 50, "{info}");
    assert!(
        info["resumed"].as_array().is_some_and(|r| r.len() == 1),
        "{info}"
    );
    let rows = metric_rows(&d.join("r"));
    let first = rows
        .iter()
        .filter(|r| r.epoch == 0 && r.iterate == Iterate::Sgd && r.split == Split::Test)
        .count();
    assert_eq!(first, 1, "{rows:?}");
    assert!(rows.iter().any(|r| r.epoch == 1));
}

#[test]
fn a_second_writer_is_refused_while_another_holds_the_run() {
    let tmp = trained_tiny();
    let d = tmp.path();
    let r = d.join("r");
    let lock = RunDir::open(&r).unwrap().lock().unwrap();
    let before = snapshot(&r);
    let resume = [
        "run",
        "--resume",
        "r",
        "--headless",
        "--set",
        "train.epochs=2",
    ];
    for args in [&resume[..], &["ablate", "r", "--kind", "groups"]] {
        let said = run(d, args);
        assert_eq!(said.code, Some(2), "{args:?}: {said:?}");
        assert!(
            said.stderr
                .contains("another valleys process is writing this run directory")
                && said.stderr.contains(&format!("pid {}", std::process::id())),
            "{args:?}: {}",
            said.stderr
        );
    }
    assert!(
        snapshot(&r) == before,
        "nothing written by the refused writers"
    );
    // Probing reads the run and writes only its own files: it may go on beside training.
    let said = run(d, &["probe", "r", "--points", "5"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    drop(lock);
    let said = run(d, &resume);
    assert_eq!(said.code, Some(0), "{said:?}");
}

#[test]
fn two_resumes_at_once_never_interleave_their_metrics() {
    let tmp = trained_tiny();
    let d = tmp.path();
    let resume = || {
        valleys(d)
            .args([
                "run",
                "--resume",
                "r",
                "--headless",
                "--set",
                "train.epochs=3",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (resume(), resume());
    let codes: Vec<Option<i32>> = [a, b]
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code())
        .collect();
    // Either one ran and the other was refused, or the second came after the first ended
    // (and found the run finished): never two writers.
    assert!(codes.contains(&Some(0)), "{codes:?}");
    assert!(
        codes.iter().all(|c| matches!(c, Some(0) | Some(2))),
        "{codes:?}"
    );
    let rows = metric_rows(&d.join("r"));
    let mut keys: Vec<(u32, u64, String)> = rows
        .iter()
        .map(|r| (r.epoch, r.step, format!("{:?}{:?}", r.iterate, r.split)))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "duplicated metric rows");
}

#[test]
fn batch_norm_on_an_mlp_with_a_last_batch_of_one_sample_trains_finite() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // 257 samples in batches of 64: a last batch of one sample.
    let r = train(
        d,
        &TINY.replace(
            "train_subset: 256, test_subset",
            "train_subset: 257, test_subset",
        ),
        "r",
    );
    let rows = metric_rows(&r);
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.loss.is_finite()), "{rows:?}");
    assert!(r.join("checkpoints/final.safetensors").is_file());
}

#[test]
fn a_run_that_diverges_before_any_checkpoint_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "x.yaml", &TINY.replace("lr: 0.1", "lr: 1.0e+12"));
    let said = run(d, &["run", "x.yaml", "--headless", "--out", "r"]);
    assert_eq!(said.code, Some(3), "{said:?}");
    let text = format!("{}{}", said.stdout, said.stderr);
    assert!(
        text.contains("no checkpoint had been written yet"),
        "{text}"
    );
    assert!(
        !text.contains("the last finite checkpoint is kept"),
        "{text}"
    );
}

#[test]
fn report_out_never_overwrites_a_directory_of_files_without_force() {
    let tmp = trained_tiny();
    let d = tmp.path();
    let notes = write(d, "mine/report.md", "my own report");
    let said = run(d, &["report", "r", "--out", "mine"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my own report");
    let said = run(d, &["report", "r", "--out", "mine", "--force"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert_ne!(std::fs::read_to_string(&notes).unwrap(), "my own report");
    // The default report directory belongs to the run and is rewritten each time.
    for _ in 0..2 {
        let said = run(d, &["report", "r"]);
        assert_eq!(said.code, Some(0), "{said:?}");
    }
}

#[test]
fn probe_results_that_are_not_finite_are_stored_and_read_back() {
    let tmp = trained_tiny();
    let d = tmp.path();
    // So far out along the line that the weights overflow: the losses are not finite.
    let said = run(
        d,
        &["probe", "r", "--from=-1e38", "--to=1e38", "--points", "3"],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let run_dir = RunDir::open(&d.join("r")).unwrap();
    let (stored, unreadable) = valleys::probe::store::read_all(&run_dir);
    assert!(unreadable.is_empty(), "{unreadable:?}");
    assert_eq!(stored.len(), 1);
    let p = &stored[0].points;
    assert!(
        !p[0].train_loss.is_finite() && !p[2].test_loss.is_finite(),
        "{p:?}"
    );
    assert!(p[1].train_loss.is_finite());
    let said = run(d, &["report", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(!said.stderr.contains("left out"), "{said:?}");
    // A file that cannot be read is named, not silently dropped.
    write(d, "r/probes/099-broken.json", "{\"id\": ");
    let said = run(d, &["report", "r"]);
    assert!(
        said.stderr
            .contains("warning: left out of the report: r/probes/099-broken.json"),
        "{said:?}"
    );
}

#[test]
fn a_probe_of_a_run_that_cannot_store_it_fails_before_computing() {
    let tmp = trained_tiny();
    let d = tmp.path();
    // (Tests run as root, for whom nothing is read-only: a file where probes/ should be
    // blocks writing the same way.)
    write(d, "r/probes", "not a directory");
    let start = Instant::now();
    let said = run(d, &["probe", "r", "--points", "101"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert!(
        said.stderr.contains("r/probes: cannot store results there"),
        "{said:?}"
    );
    assert!(
        !said.stderr.contains("probe 0"),
        "no point was computed: {said:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_hessian_probe_of_a_convolutional_model_works() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let yaml = TINY
        .replace("{arch: mlp, hidden: 16}", "{arch: preresnet, depth: 8}")
        .replace(
            "train_subset: 256, test_subset: 128",
            "train_subset: 128, test_subset: 64",
        )
        + "probe: {hessian_iterations: 3, hessian_batch: 32, train_subset: 64, bn_subset: 64}\n";
    train(d, &yaml, "r");
    let said = run(
        d,
        &["probe", "r", "--direction", "hessian", "--points", "5"],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(said.stdout.contains("top Hessian eigenvalue"), "{said:?}");
}

#[test]
fn ablate_trains_no_twin_unless_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let yaml = format!("{TINY}probe: {{points: 5, train_subset: 64, bn_subset: 64}}\n");
    let r = train(d, &yaml, "r");
    let said = run(d, &["ablate", "r", "--kind", "groups"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(!r.join("twin-nobn").exists(), "{said:?}");
    assert!(said.stdout.contains("bn-only"), "{said:?}");
}

#[test]
fn a_hangup_that_the_parent_ignores_does_not_stop_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
        d,
        "x.yaml",
        &TINY
            .replace("epochs: 1", "epochs: 8")
            .replace("train_subset: 256", "train_subset: 2048"),
    );
    let mut child = std::process::Command::new("nohup")
        .current_dir(d)
        .arg(env!("CARGO_BIN_EXE_valleys"))
        .args(["run", "x.yaml", "--headless", "--out", "r"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Hang up once training is under way (after the first epoch's rows).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !d.join("r/metrics.jsonl").is_file()
        || metric_rows(&d.join("r")).iter().all(|r| r.epoch == 0)
    {
        assert!(Instant::now() < deadline, "the run did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the hang-up stopped the run");
    assert_eq!(
        RunDir::open(&d.join("r")).unwrap().outcome(),
        Some(valleys::protocol::Outcome::Completed)
    );
}

/// The dashboard in a real terminal (tmux): a probe that fails on the worker is reported on
/// screen, the dashboard keeps drawing, and quitting restores the terminal.
#[test]
fn a_probe_that_fails_in_the_dashboard_is_reported_and_the_dashboard_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "x.yaml", TINY);
    let command = format!(
        "VALLEYS_FAULT=panic-in-probe {} run x.yaml --out r; echo exit=$? > done; sleep 60",
        env!("CARGO_BIN_EXE_valleys")
    );
    let Some(tmux) = Tmux::start(d, "fault", &command) else {
        return;
    };
    let wait_for = |what: &dyn Fn(&str) -> bool, label: &str| tmux.wait_for(what, label);
    wait_for(
        &|s| d.join("r/checkpoints/final.safetensors").is_file() && s.contains("valleys"),
        "the run to finish",
    );
    tmux.send("p");
    std::thread::sleep(Duration::from_millis(500));
    tmux.send("Enter");
    let s = wait_for(&|s| s.contains("probe failed"), "the failure on screen");
    assert!(s.contains("injected fault"), "{s}");
    tmux.send("q");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !d.join("done").is_file() {
        assert!(
            Instant::now() < deadline,
            "the dashboard did not quit; screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = tmux.screen();
    assert_eq!(
        std::fs::read_to_string(d.join("done")).unwrap().trim(),
        "exit=0"
    );
    // The shell's screen is back, the dashboard's frame gone, and one line says what next.
    assert!(!s.contains("probe failed"), "{s}");
    assert!(
        s.contains("r: finished; report it with: valleys report r"),
        "{s}"
    );
}
