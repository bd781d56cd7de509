//! Sweeps on this machine (`--executor local`): a 2×2 sweep trains with two jobs at once,
//! a killed sweep continues without redoing finished runs, and a bad variant is refused
//! before anything is created.

mod common;

use common::{metrics_without_times, run, valleys, write};
use std::path::Path;
use std::time::{Duration, Instant};

const BASE: &str = common::TINY_BN;

const SWEEP: &str = "\
name: t
experiment: base.yaml
axes:
  model.norm: [batch, none]
  seed: [1, 2]
probe: {directions: 2, range: 2, points: 5}
";

fn metrics(run: &Path) -> String {
    std::fs::read_to_string(run.join("metrics.jsonl")).unwrap()
}

#[test]
fn a_two_by_two_sweep_trains_two_at_once_and_reports_per_group() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "base.yaml", BASE);
    write(d, "s.yaml", SWEEP);
    let said = run(d, &["sweep", "s.yaml", "--jobs", "2", "--out", "s"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("4 variants to train, 2 at once"),
        "{}",
        said.stdout
    );
    let ids = [
        "000-model.norm=batch-seed=1",
        "001-model.norm=batch-seed=2",
        "002-model.norm=none-seed=1",
        "003-model.norm=none-seed=2",
    ];
    for id in ids {
        let r = valleys::rundir::RunDir::open(&d.join("s/runs").join(id)).unwrap();
        assert_eq!(
            r.outcome(),
            Some(valleys::protocol::Outcome::Completed),
            "{id}"
        );
        assert_eq!(
            valleys::probe::store::read_batches(&r).0.len(),
            1,
            "{id} probed"
        );
    }
    // Each run trained what its variant says, exactly as the same run started by hand.
    write(
        d,
        "by-hand.yaml",
        &std::fs::read_to_string(d.join("s/variants/003-model.norm=none-seed=2.yaml")).unwrap(),
    );
    // Two jobs on this machine's cores: the sweep gave each its share of threads.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_hand = valleys(d)
        .args(["run", "by-hand.yaml", "--headless", "--out", "h"])
        .env("OMP_NUM_THREADS", (cores / 2).max(1).to_string())
        .output()
        .unwrap();
    assert!(by_hand.status.success(), "{by_hand:?}");
    assert_eq!(
        metrics_without_times(&d.join("s/runs/003-model.norm=none-seed=2")),
        metrics_without_times(&d.join("h"))
    );
    let status = run(d, &["sweep", "--status", "s"]);
    assert_eq!(status.code, Some(0));
    assert!(
        status.stdout.contains("4 done, 0 running"),
        "{}",
        status.stdout
    );
    for id in ids {
        assert!(
            status
                .stdout
                .lines()
                .any(|l| l.starts_with(id) && l.contains(" done ")),
            "{}",
            status.stdout
        );
    }
    let report = run(d, &["report", "s"]);
    assert_eq!(report.code, Some(0), "{report:?}");
    let md = std::fs::read_to_string(d.join("s/report/report.md")).unwrap();
    // A batch probed by hand afterwards is the user's: the sweep's numbers stay its own.
    let said = run(
        d,
        &[
            "probe",
            &format!("s/runs/{}", ids[0]),
            "--direction",
            "sign-match",
            "--ratio",
            "1",
            "--directions",
            "3",
            "--points",
            "5",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    // (Its 3 directions per centre would show as k/3 where the sweep's show k/2.)
    assert_eq!(
        run(d, &["sweep", "--status", "s"]).stdout,
        status.stdout,
        "the status reads the sweep's own batch"
    );
    let report = run(d, &["report", "s", "--force"]);
    assert_eq!(report.code, Some(0), "{report:?}");
    let again = std::fs::read_to_string(d.join("s/report/report.md")).unwrap();
    let groups = |md: &str| -> Vec<String> {
        md.lines()
            .filter(|l| l.starts_with("| model.norm="))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(groups(&again), groups(&md));
    assert!(md.contains("| model.norm=batch | 2 |"), "{md}");
    assert!(md.contains("| model.norm=none | 2 |"), "{md}");
    assert!(d.join("s/report/sweep-test-loss.png").is_file());
}

#[test]
fn a_killed_sweep_continues_without_redoing_finished_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // The second variant trains long enough to be killed in the middle.
    let base = BASE
        .replace("train_subset: 512", "train_subset: 4096")
        .replace("swa: {start_epoch: 2}\n", "");
    write(d, "base.yaml", &base);
    write(
        d,
        "s.yaml",
        "name: k\nexperiment: base.yaml\nruns:\n  - {train.epochs: 1}\n  - {train.epochs: 40}\n",
    );
    let mut child = valleys(d)
        .args(["sweep", "s.yaml", "--out", "s"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = d.join("s/runs/000-train.epochs=1");
    let second = d.join("s/runs/001-train.epochs=40");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !second.join("checkpoints/latest.safetensors").is_file() {
        assert!(
            Instant::now() < deadline,
            "the second variant never checkpointed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The executor dies at once (SIGKILL); its task is told to stop and checkpoints.
    child.kill().unwrap();
    child.wait().unwrap();
    let run_dir = valleys::rundir::RunDir::open(&second).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while run_dir.is_busy() {
        assert!(Instant::now() < deadline, "the orphaned task did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(run_dir.outcome(), Some(valleys::protocol::Outcome::Stopped));
    let finished = metrics(&first);
    let modified = std::fs::metadata(first.join("metrics.jsonl"))
        .unwrap()
        .modified()
        .unwrap();
    let said = run(d, &["sweep", "s", "--jobs", "1"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("1 variants already done"),
        "{}",
        said.stdout
    );
    assert!(!said.stdout.contains("started 000"), "{}", said.stdout);
    assert_eq!(metrics(&first), finished);
    assert_eq!(
        std::fs::metadata(first.join("metrics.jsonl"))
            .unwrap()
            .modified()
            .unwrap(),
        modified
    );
    let log = std::fs::read_to_string(d.join("s/logs/001.out")).unwrap();
    assert!(log.contains("resumed at epoch"), "{log}");
    let r = valleys::rundir::RunDir::open(&second).unwrap();
    assert_eq!(r.outcome(), Some(valleys::protocol::Outcome::Completed));
}

#[test]
fn a_bad_variant_is_one_line_naming_it_and_nothing_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "base.yaml", BASE);
    write(
        d,
        "s.yaml",
        "experiment: base.yaml\naxes:\n  model.hidden: [32, -4]\n",
    );
    let said = run(d, &["sweep", "s.yaml", "--out", "s"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert_eq!(said.stderr.lines().count(), 1, "{}", said.stderr);
    assert!(
        said.stderr.contains("variant 001-model.hidden=-4"),
        "{}",
        said.stderr
    );
    assert!(!d.join("s").exists());
    // A dry run checks the same and creates nothing either; for Slurm it shows the script.
    write(d, "ok.yaml", SWEEP);
    let said = run(
        d,
        &[
            "sweep",
            "ok.yaml",
            "--dry-run",
            "--executor",
            "slurm",
            "--out",
            "x",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("#SBATCH --array=0-3"),
        "{}",
        said.stdout
    );
    assert!(!d.join("x").exists());
    // A sweep directory is never reused.
    let said = run(d, &["sweep", "ok.yaml", "--out", "base.yaml"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    // What would fail in every task after training is refused for the whole sweep first,
    // by a dry run too.
    for (sweep, expected) in [
        (
            "experiment: base.yaml\naxes:\n  swa.enabled: [true, false]\nplane: {points: 3x3}\n",
            "variant 001-swa.enabled=false: plane: swa-sgd runs through the SWA average",
        ),
        (
            "experiment: base.yaml\nplane: {centre: sgd}\n",
            "centre sgd: a swa-sgd plane is centred on SWA by definition",
        ),
        (
            "experiment: base.yaml\nplane: {plane: random, bn_subset: 0}\n",
            "bn_subset 0: expected at least 1 sample",
        ),
        (
            "experiment: base.yaml\nplane: {points: 0x3}\n",
            "plane: points: 3: expected NxM grid points as text",
        ),
        (
            "experiment: base.yaml\nplane: {grid: 3x3}\n",
            "plane: grid: unknown field `grid`",
        ),
    ] {
        write(d, "late.yaml", sweep);
        for dry in [true, false] {
            let mut args = vec!["sweep", "late.yaml", "--out", "late"];
            if dry {
                args.push("--dry-run");
            }
            let said = run(d, &args);
            assert_eq!(said.code, Some(2), "{sweep}: {said:?}");
            assert_eq!(said.stderr.lines().count(), 1, "{}", said.stderr);
            assert!(
                said.stderr.contains(expected),
                "{expected}: {}",
                said.stderr
            );
            assert!(!d.join("late").exists());
        }
    }
}

#[test]
fn the_sweep_presets_read_and_every_variant_is_a_valid_experiment() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/sweeps");
    for (name, variants) in [("bn-seeds.yaml", 6), ("paper-cifar10.yaml", 9)] {
        let file = valleys::sweep::SweepFile::load(&dir.join(name)).unwrap();
        let all = file.variants();
        assert_eq!(all.len(), variants, "{name}");
        for v in &all {
            file.experiment_of(v)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn a_sweep_can_measure_a_plane_through_each_run() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "base.yaml", BASE);
    write(
        d,
        "s.yaml",
        "experiment: base.yaml\naxes:\n  seed: [1, 2]\nplane: {points: 3x3, x: '-0.5:1.5', test_subset: 64, bn_subset: 128}\n",
    );
    let said = run(d, &["sweep", "s.yaml", "--jobs", "1", "--out", "s"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    for id in ["000-seed=1", "001-seed=2"] {
        let r = valleys::rundir::RunDir::open(&d.join("s/runs").join(id)).unwrap();
        let (planes, problems) = valleys::probe::store::read_planes(&r);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(planes.len(), 1, "{id}");
        assert_eq!(planes[0].points.len(), 9);
        assert_eq!(planes[0].spec.test_subset, Some(64));
    }
    let status = run(d, &["sweep", "--status", "s"]);
    assert!(
        status.stdout.contains("2 done, 0 running"),
        "{}",
        status.stdout
    );
    // Bad plane settings are one line naming the key, before anything is created.
    for (plane, says) in [
        ("{points: 1x9}", "plane: points 1x9"),
        (
            "{pixels: 3}",
            "plane: pixels: unknown field `pixels`, expected one of `plane`",
        ),
        ("{bn: sometimes}", "plane: bn: unknown variant `sometimes`"),
        (
            "{plane: hessian, eigenvectors: 3}",
            "plane: eigenvectors: 3: expected two eigenvectors as text K1,K2",
        ),
        (
            "{plane: hessian, eigenvectors: '4,4'}",
            "plane: eigenvectors 4,4: expected two different eigenvectors",
        ),
        (
            "{plane: hessian, norm: layer}",
            "plane: norm: a hessian plane's directions are Hessian eigenvectors",
        ),
    ] {
        write(
            d,
            "bad.yaml",
            &format!("experiment: base.yaml\nplane: {plane}\n"),
        );
        let said = run(d, &["sweep", "bad.yaml", "--out", "bad"]);
        assert_eq!(said.code, Some(2), "{said:?}");
        assert_eq!(said.stderr.lines().count(), 1, "{}", said.stderr);
        assert!(said.stderr.contains(says), "{plane}: {}", said.stderr);
        assert!(!d.join("bad").exists());
    }
}

/// `curvature:` in a sweep: each run gets a curvature job after training, and the report's
/// per-group table gives every number over the seeds with its interval, beside the asymmetry.
#[test]
fn a_sweep_measures_the_curvature_of_each_run_and_reports_it_per_group() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "base.yaml", BASE);
    write(
        d,
        "s.yaml",
        "experiment: base.yaml\naxes:\n  seed: [1, 2, 3]\nprobe: {directions: 2, range: 2, points: 5}\ncurvature: {samples: 64, sets: 2, top_k: 2, trace_vectors: 4, density_runs: 1, density_steps: 5, noise_draws: 2, ascent_steps: 2}\n",
    );
    let said = run(d, &["sweep", "s.yaml", "--jobs", "1", "--out", "s"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let mut tops = Vec::new();
    for id in ["000-seed=1", "001-seed=2", "002-seed=3"] {
        let r = valleys::rundir::RunDir::open(&d.join("s/runs").join(id)).unwrap();
        let (jobs, problems) = valleys::curvature::store::read_all(&r);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(jobs.len(), 1, "{id}");
        assert_eq!(jobs[0].settings.samples, 64);
        tops.push(jobs[0].centre("sgd").unwrap().eigenvalues[0].value);
    }
    let status = run(d, &["sweep", "--status", "s"]);
    assert!(status.stdout.contains("3 done"), "{}", status.stdout);
    let said = run(d, &["report", "s"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let md = std::fs::read_to_string(d.join("s/report/report.md")).unwrap();
    assert!(md.contains("## Curvature per group"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| all runs | sgd | 3 |"))
        .unwrap_or_else(|| panic!("{md}"));
    let mean = tops.iter().sum::<f64>() / 3.0;
    let shown = valleys::curvature::significant(mean, 3);
    assert!(row.contains(&format!("| {shown} [")), "{shown}: {row}");
    assert!(md.contains("| all runs | SGD − SWA |"), "{md}");
    // Bad curvature settings are one line naming the key, before anything is created.
    for (curvature, says) in [
        ("{top_k: 11}", "curvature: top_k = 11: expected 1..=10"),
        ("{rho: 0}", "curvature: rho = 0"),
        (
            "{every_epochs: 2}",
            "curvature: every_epochs: the sweep's curvature job runs after training",
        ),
        ("{eigen: 3}", "curvature: eigen: unknown field `eigen`"),
    ] {
        write(
            d,
            "bad.yaml",
            &format!("experiment: base.yaml\ncurvature: {curvature}\n"),
        );
        let said = run(d, &["sweep", "bad.yaml", "--out", "bad"]);
        assert_eq!(said.code, Some(2), "{said:?}");
        assert_eq!(said.stderr.lines().count(), 1, "{}", said.stderr);
        assert!(said.stderr.contains(says), "{curvature}: {}", said.stderr);
        assert!(!d.join("bad").exists());
    }
}

/// A variant that fails while it trains says why on the sweep's stderr, not only in its log.
#[test]
fn a_variant_that_fails_says_why_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "base.yaml", BASE);
    write(d, "s.yaml", "experiment: base.yaml\naxes:\n  seed: [1]\n");
    let out = valleys(d)
        .env("VALLEYS_FAULT", "panic-at-step:3")
        .args(["sweep", "s.yaml", "--jobs", "1", "--out", "s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("valleys: variant 000-seed=1 failed: ")
            && stderr.contains("injected fault: panic at step 3"),
        "{stderr}"
    );
}

/// `--cancel` signals the local executor only while it is the process that wrote jobs.json: a
/// stale or edited pid (another process of the user's, 0 for our own process group) is named
/// and left alone.
#[test]
fn cancel_signals_no_process_but_the_executor_that_wrote_jobs_json() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "base.yaml", common::TINY);
    write(d, "s.yaml", "experiment: base.yaml\naxes:\n  seed: [1]\n");
    let said = run(d, &["sweep", "s.yaml", "--jobs", "1", "--out", "s"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let jobs_path = d.join("s/jobs.json");
    let jobs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jobs_path).unwrap()).unwrap();
    assert!(
        jobs["process"]["exe"]
            .as_str()
            .is_some_and(|e| e.contains("valleys")),
        "{jobs}"
    );
    let mut stranger = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    for (pid, why) in [
        (
            serde_json::json!(stranger.id()),
            "records the identity of pid",
        ),
        (serde_json::json!(0), "never a valleys executor"),
    ] {
        let mut edited = jobs.clone();
        edited["pid"] = pid;
        std::fs::write(&jobs_path, edited.to_string()).unwrap();
        let said = run(d, &["sweep", "--cancel", "s"]);
        assert_eq!(
            said.code,
            Some(2),
            "not signalled, ourselves included: {said:?}"
        );
        assert!(said.stderr.contains(why), "{said:?}");
        assert_eq!(said.stderr.lines().count(), 1, "{said:?}");
    }
    let mut edited = jobs.clone();
    edited["pid"] = serde_json::json!(stranger.id());
    edited.as_object_mut().unwrap().remove("process");
    std::fs::write(&jobs_path, edited.to_string()).unwrap();
    let said = run(d, &["sweep", "--cancel", "s"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert!(said.stderr.contains("older valleys"), "{said:?}");
    assert!(stranger.try_wait().unwrap().is_none(), "the stranger lives");
    stranger.kill().unwrap();
    stranger.wait().unwrap();
    std::fs::write(&jobs_path, jobs.to_string()).unwrap();
    let said = run(d, &["sweep", "--cancel", "s"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("is not running; nothing to cancel"),
        "{said:?}"
    );
}
