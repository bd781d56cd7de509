//! Sweeps through a real Slurm (`make test-slurm` starts a single-node one with
//! scripts/slurm-local.sh): a 2×2 sweep as an sbatch array, a requeued task that resumes to
//! the metrics of an uninterrupted run, a bad partition refused in one line. Without Slurm
//! these tests say so and pass.

mod common;

use common::{metrics_without_times, run, write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn slurm_here() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up {
        eprintln!("skipped: no Slurm answers here (`make test-slurm` starts a local one)");
    }
    up
}

const BASE: &str = common::TINY_BN;

/// Writes `sweep` (with BASE as base.yaml) and submits it into `d/s`; returns the sweep
/// directory and the Slurm job id.
fn submit(d: &Path, base: &str, sweep: &str) -> (String, String) {
    write(d, "base.yaml", base);
    write(d, "s.yaml", sweep);
    let out = d.join("s").to_str().unwrap().to_owned();
    let said = run(
        d,
        &["sweep", "s.yaml", "--executor", "slurm", "--out", &out],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("submitted Slurm job"),
        "{}",
        said.stdout
    );
    let jobs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("s/jobs.json")).unwrap()).unwrap();
    let job = jobs["job_id"].as_str().unwrap().to_owned();
    assert!(job.parse::<u64>().is_ok(), "{jobs}");
    (out, job)
}

fn wait_done(d: &Path, sweep: &str, variants: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let said = run(d, &["sweep", "--status", sweep]);
        if said.stdout.contains(&format!("{variants} done")) {
            return said.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "not done in 5 minutes:\n{}",
            said.stdout
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_two_by_two_sweep_runs_as_an_sbatch_array() {
    if !slurm_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (out, _) = submit(
        d,
        BASE,
        "name: t\nexperiment: base.yaml\naxes:\n  model.norm: [batch, none]\n  seed: [1, 2]\nslurm: {cpus_per_task: 1, max_parallel: 2}\n",
    );
    let out = out.as_str();
    let status = wait_done(d, out, 4);
    for line in status.lines().skip(2) {
        assert!(line.contains(" done "), "{status}");
    }
    for log in 0..4 {
        let text = std::fs::read_to_string(d.join(format!("s/logs/{log:03}.out"))).unwrap();
        assert!(text.contains("finished in"), "task {log}: {text}");
    }
}

#[test]
fn a_requeued_task_resumes_to_the_metrics_of_an_uninterrupted_run() {
    if !slurm_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let base = BASE
        .replace("train_subset: 512", "train_subset: 4096")
        .replace("epochs: 2", "epochs: 12");
    let (out, job) = submit(d, &base, "name: rq\nexperiment: base.yaml\n");
    let out = out.as_str();
    let run_dir = d.join("s/runs/000");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !run_dir.join("checkpoints/latest.safetensors").is_file() {
        assert!(Instant::now() < deadline, "no checkpoint within 2 minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
    let requeue = Command::new("scontrol")
        .args(["requeue", &format!("{job}_0")])
        .output()
        .unwrap();
    assert!(requeue.status.success(), "{requeue:?}");
    wait_done(d, out, 1);
    let log = std::fs::read_to_string(d.join("s/logs/000.out")).unwrap();
    assert!(log.contains("resumed at epoch"), "the task resumed:\n{log}");
    // The same experiment, uninterrupted.
    let said = run(
        d,
        &[
            "run",
            "s/variants/000.yaml",
            "--headless",
            "--out",
            "straight",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert_eq!(
        metrics_without_times(&run_dir),
        metrics_without_times(&d.join("straight"))
    );
}

#[test]
fn a_bad_partition_is_one_clear_line_and_leaves_nothing() {
    if !slurm_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "base.yaml", BASE);
    write(
        d,
        "s.yaml",
        "experiment: base.yaml\nslurm: {partition: no-such-partition}\n",
    );
    let out = d.join("s");
    let said = run(
        d,
        &[
            "sweep",
            "s.yaml",
            "--executor",
            "slurm",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(said.code, Some(2), "{said:?}");
    assert_eq!(said.stderr.lines().count(), 1, "{}", said.stderr);
    assert!(said.stderr.contains("sbatch"), "{}", said.stderr);
    assert!(
        said.stderr.to_lowercase().contains("partition"),
        "{}",
        said.stderr
    );
    assert!(!out.exists());
}

#[test]
fn a_plane_in_tiles_on_slurm_with_a_requeued_tile_equals_the_plane_in_one_go() {
    if !slurm_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    common::train(d, &common::tiled_experiment(), "a");
    common::copy_dir(d, "a", "b");
    let plane = ["--plane", "random", "--points", "9x9", "--bn-subset", "all"];
    // sbatch passes the environment on: every tile runs on one thread, as the plane in one
    // go below does.
    let submitted = common::valleys(d)
        .args(["plane", "a"])
        .args(plane)
        .args([
            "--tiles",
            "4",
            "--executor",
            "slurm",
            "--cpus-per-task",
            "1",
        ])
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&submitted.stdout).into_owned();
    assert!(submitted.status.success(), "{submitted:?}");
    assert!(said.contains("submitted Slurm job"), "{said}");
    let tiles = d.join("a/planes/001-random-swa.tiles");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiles.join("plan.json")).unwrap()).unwrap();
    let job = plan["job_id"].as_str().unwrap().to_owned();
    // Tile 2 is requeued once it has kept its first points.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !tiles.join("tile-002.json").is_file() {
        assert!(
            Instant::now() < deadline,
            "tile 2 kept nothing within 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let requeue = Command::new("scontrol")
        .args(["requeue", &format!("{job}_2")])
        .output()
        .unwrap();
    assert!(requeue.status.success(), "{requeue:?}");
    let merged = d.join("a/planes/001-random-swa.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !merged.is_file() {
        assert!(Instant::now() < deadline, "not merged within 5 minutes");
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = std::fs::read_to_string(tiles.join("logs/002.out")).unwrap();
    assert!(log.contains("attempt 2"), "tile 2 ran again:\n{log}");
    let status = run(d, &["plane", "--status", tiles.to_str().unwrap()]);
    assert!(
        status.stdout.contains(&format!("Slurm job {job}"))
            && status
                .stdout
                .contains("4 finished · 81 of 81 points · merged"),
        "{}",
        status.stdout
    );
    let whole = common::valleys(d)
        .args(["plane", "b"])
        .args(plane)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(whole.status.success(), "{whole:?}");
    assert_eq!(
        common::plane_without_times(&d.join("a"), "001-random-swa"),
        common::plane_without_times(&d.join("b"), "001-random-swa")
    );
}

#[test]
fn a_slurm_sweeps_tiled_plane_runs_as_an_array_of_its_own() {
    if !slurm_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (out, _) = submit(
        d,
        BASE,
        "name: tp\nexperiment: base.yaml\nplane: {plane: random, points: 5x4, tiles: 2}\nslurm: {cpus_per_task: 1}\n",
    );
    let merged = d.join("s/runs/000/planes/001-random-swa.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !merged.is_file() {
        assert!(
            Instant::now() < deadline,
            "the plane was not merged within 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = std::fs::read_to_string(d.join("s/logs/000.out")).unwrap();
    assert!(
        log.contains("submitted Slurm job"),
        "the task submitted the tiles:\n{log}"
    );
    let tiles = d.join("s/runs/000/planes/001-random-swa.tiles");
    for k in 0..2 {
        let tile_log = std::fs::read_to_string(tiles.join(format!("logs/{k:03}.out"))).unwrap();
        assert!(
            tile_log.contains(&format!("tile {k} finished")),
            "{tile_log}"
        );
    }
    wait_done(d, &out, 1);
}
