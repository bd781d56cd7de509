//! `valleys plane RUN --tiles N`: a plane measured as tiles (bands of rows), each its own
//! process, stopped and killed part-way and continued, merges into the plane measured in one
//! go, byte for byte. (The same through a real Slurm is in tests/slurm.rs.)

mod common;

use common::{plane_without_times, run, snapshot, tiled_experiment, train, valleys};
use std::path::Path;
use std::time::{Duration, Instant};

const ID: &str = "001-random-swa";
const PLANE: [&str; 6] = ["--plane", "random", "--points", "9x9", "--bn-subset", "all"];

/// The thread count every measurement here shares: what makes two measurements' bits equal.
fn one_thread(d: &Path, args: &[&str]) -> common::Said {
    valleys(d)
        .args(args)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap()
        .into()
}

/// A trained run `a` and its copy `b`.
fn two_copies(d: &Path) {
    train(d, &tiled_experiment(), "a");
    common::copy_dir(d, "a", "b");
}

fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within a minute");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn tile_points(tiles: &Path, k: usize) -> usize {
    let text = std::fs::read_to_string(tiles.join(format!("tile-{k:03}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["points"].as_array().unwrap().len()
}

#[test]
fn tiles_merge_into_the_plane_measured_in_one_go() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    two_copies(d);
    let args: Vec<&str> = ["plane", "a"]
        .into_iter()
        .chain(PLANE)
        .chain(["--tiles", "4", "--jobs", "2", "--ascii"])
        .collect();
    let tiled = one_thread(d, &args);
    assert_eq!(tiled.code, Some(0), "{tiled:?}");
    assert!(
        tiled.stderr.contains("81 points in 4 tiles of 2–3 rows"),
        "the cost up front: {}",
        tiled.stderr
    );
    assert!(
        tiled.stdout.contains("plane 001-random-swa: test loss"),
        "{}",
        tiled.stdout
    );
    let args: Vec<&str> = ["plane", "b"]
        .into_iter()
        .chain(PLANE)
        .chain(["--ascii"])
        .collect();
    let whole = one_thread(d, &args);
    assert_eq!(whole.code, Some(0), "{whole:?}");
    assert_eq!(
        plane_without_times(&d.join("a"), ID),
        plane_without_times(&d.join("b"), ID)
    );
    let status = run(d, &["plane", "--status", "a"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(
        status.stdout.contains("4 tiles · local executor")
            && status
                .stdout
                .contains("4 finished · 81 of 81 points · merged"),
        "{}",
        status.stdout
    );
    // The report reads the merged plane as any other.
    let report = run(d, &["report", "a"]);
    assert_eq!(report.code, Some(0), "{report:?}");
}

#[test]
fn a_stopped_and_a_killed_tile_continue_to_the_same_plane() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    two_copies(d);
    let tiles = d.join(format!("a/planes/{ID}.tiles"));
    // The executor is killed while tile 0 measures: tile 0 is told to stop and keeps what it
    // measured.
    let mut executor = valleys(d)
        .args(["plane", "a"])
        .args(PLANE)
        .args(["--tiles", "4", "--jobs", "1"])
        .env("OMP_NUM_THREADS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("tile 0's first points", || {
        tiles.join("tile-000.json").is_file()
    });
    executor.kill().unwrap();
    executor.wait().unwrap();
    let log = tiles.join("logs/000.out");
    wait_for("tile 0 stopping", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("tile 0 stopped"))
    });
    let kept = tile_points(&tiles, 0);
    assert!((1..18).contains(&kept), "tile 0 kept {kept} of 18 points");
    // Tile 1 is killed outright.
    let mut tile = valleys(d)
        .args(["plane", tiles.to_str().unwrap(), "--tile", "1"])
        .env("OMP_NUM_THREADS", "1")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("tile 1's first points", || {
        tiles.join("tile-001.json").is_file()
    });
    tile.kill().unwrap();
    tile.wait().unwrap();
    let killed_at = tile_points(&tiles, 1);
    assert!(
        (1..18).contains(&killed_at),
        "tile 1 kept {killed_at} of 18 points"
    );
    let status = run(d, &["plane", "--status", tiles.to_str().unwrap()]);
    assert!(
        status.stdout.contains(&format!("{kept}/18  stopped")),
        "{}",
        status.stdout
    );
    assert!(!d.join(format!("a/planes/{ID}.json")).exists());
    // Continued: every tile finishes, the stopped ones from where they stopped.
    let continued = one_thread(d, &["plane", tiles.to_str().unwrap(), "--ascii"]);
    assert_eq!(continued.code, Some(0), "{continued:?}");
    let log = std::fs::read_to_string(tiles.join("logs/000.out")).unwrap();
    assert!(
        log.contains(&format!("continuing after {kept} points (attempt 2)")),
        "{log}"
    );
    let log = std::fs::read_to_string(tiles.join("logs/001.out")).unwrap();
    assert!(log.contains("continuing after"), "{log}");
    let args: Vec<&str> = ["plane", "b"].into_iter().chain(PLANE).collect();
    assert_eq!(one_thread(d, &args).code, Some(0));
    assert_eq!(
        plane_without_times(&d.join("a"), ID),
        plane_without_times(&d.join("b"), ID)
    );
    // Continuing a merged plane measures nothing again.
    let before = snapshot(&tiles);
    let again = run(d, &["plane", tiles.to_str().unwrap(), "--ascii"]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(snapshot(&tiles), before);
}

#[test]
fn bad_tilings_are_one_line_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = train(d, common::TINY_BN, "r");
    let before = snapshot(&r);
    for (args, expected) in [
        (
            &["--points", "9x9", "--tiles", "10"][..],
            "--tiles 10: expected 1..=9 tiles",
        ),
        (&["--tiles", "0"], "--tiles 0: expected 1..=21 tiles"),
        (&["--executor", "slurm"], "add --tiles N"),
        (&["--jobs", "2"], "add --tiles N"),
        (
            &["--tiles", "2", "--partition", "gpu"],
            "the Slurm options are for --executor slurm",
        ),
        (
            &["--tiles", "2", "--jobs", "0"],
            "--jobs 0: expected 1..=256",
        ),
        (
            &[
                "--tiles",
                "2",
                "--executor",
                "slurm",
                "--sbatch",
                "qos=long",
            ],
            "extra: \"qos=long\"",
        ),
    ] {
        let full: Vec<&str> = ["plane", "r"]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        let said = run(d, &full);
        assert_eq!(said.code, Some(2), "{args:?}: {said:?}");
        assert_eq!(said.stderr.lines().count(), 1, "{args:?}: {}", said.stderr);
        assert!(said.stderr.contains(expected), "{args:?}: {}", said.stderr);
    }
    // Slurm's client missing: refused before the directions or the plan are written.
    let empty = tempfile::tempdir().unwrap();
    let out = valleys(d)
        .args(["plane", "r", "--tiles", "2", "--executor", "slurm"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "valleys: error: sbatch not found: Slurm's client commands must be on PATH for --executor slurm (or use --executor local)\n"
    );
    assert_eq!(snapshot(&r), before, "nothing written");
    let said = run(d, &["plane", "--status", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(said.stdout.contains("no tiled planes"), "{}", said.stdout);
    let said = run(d, &["plane", "r", "--tile", "0"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert!(
        said.stderr.contains("not a tiled plane's directory"),
        "{}",
        said.stderr
    );
    // A tile beyond the plan's.
    let said = run(
        d,
        &["plane", "r", "--points", "5x3", "--tiles", "3", "--ascii"],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let tiles = r.join("planes/001-swa-sgd-swa.tiles");
    let said = run(d, &["plane", tiles.to_str().unwrap(), "--tile", "3"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert!(
        said.stderr.contains("--tile 3: the plane has tiles 0..2"),
        "{}",
        said.stderr
    );
    // A broken plan is one line.
    std::fs::write(tiles.join("plan.json"), "{").unwrap();
    let said = run(d, &["plane", "--status", tiles.to_str().unwrap()]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert_eq!(said.stderr.lines().count(), 1, "{}", said.stderr);
    assert!(said.stderr.contains("plan.json"), "{}", said.stderr);
}

#[test]
fn a_sweeps_tiled_plane_is_the_plane_in_one_go() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    common::write(d, "base.yaml", &tiled_experiment());
    common::write(
        d,
        "s.yaml",
        "name: t\nexperiment: base.yaml\nplane: {plane: random, points: 9x9, bn_subset: all, tiles: 3}\n",
    );
    // As many jobs as cores: the executor gives each task one thread, as below.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let said = run(
        d,
        &[
            "sweep",
            "s.yaml",
            "--out",
            "s",
            "--jobs",
            &cores.to_string(),
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let variant = d.join("s/runs/000");
    let log = std::fs::read_to_string(d.join("s/logs/000.out")).unwrap();
    assert!(log.contains("81 points in 3 tiles"), "{log}");
    let status = run(d, &["plane", "--status", variant.to_str().unwrap()]);
    assert!(
        status
            .stdout
            .contains("3 finished · 81 of 81 points · merged"),
        "{}",
        status.stdout
    );
    common::copy_dir(d, "s/runs/000", "b");
    std::fs::remove_dir_all(d.join("b/planes")).unwrap();
    let args: Vec<&str> = ["plane", "b"].into_iter().chain(PLANE).collect();
    assert_eq!(one_thread(d, &args).code, Some(0));
    assert_eq!(
        plane_without_times(&variant, ID),
        plane_without_times(&d.join("b"), ID)
    );
}

#[test]
fn a_cancelled_tiled_plane_keeps_its_tiles_and_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    train(d, &tiled_experiment(), "a");
    let tiles = d.join(format!("a/planes/{ID}.tiles"));
    let executor = valleys(d)
        .args(["plane", "a"])
        .args(PLANE)
        .args(["--tiles", "2", "--jobs", "1"])
        .env("OMP_NUM_THREADS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("tile 0's first points", || {
        tiles.join("tile-000.json").is_file()
    });
    let cancelled = run(d, &["plane", "--cancel", tiles.to_str().unwrap()]);
    assert_eq!(cancelled.code, Some(0), "{cancelled:?}");
    assert!(
        cancelled.stdout.contains("asked the local executor"),
        "{}",
        cancelled.stdout
    );
    let out = executor.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "stopped, as a signal stops a plane"
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("continue with: valleys plane"), "{said}");
    let kept = tile_points(&tiles, 0);
    assert!((1..36).contains(&kept), "tile 0 kept {kept} of 36 points");
    let again = run(d, &["plane", "--cancel", tiles.to_str().unwrap()]);
    assert!(
        again.stdout.contains("is not running; nothing to cancel"),
        "{again:?}"
    );
    let continued = one_thread(d, &["plane", tiles.to_str().unwrap(), "--ascii"]);
    assert_eq!(continued.code, Some(0), "{continued:?}");
    assert!(d.join(format!("a/planes/{ID}.json")).is_file());
}

/// A pid in plan.json is signalled only while it is the executor that wrote it: an edited or
/// stale pid (another process of the user's, 0 for the process group) gets nothing.
#[test]
fn cancel_signals_no_process_but_the_executor_that_wrote_the_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    train(d, &tiled_experiment(), "a");
    let args: Vec<&str> = ["plane", "a", "--tiles", "2", "--jobs", "1"]
        .into_iter()
        .chain(PLANE)
        .collect();
    assert_eq!(one_thread(d, &args).code, Some(0));
    let tiles = d.join(format!("a/planes/{ID}.tiles"));
    let plan_path = tiles.join("plan.json");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    assert!(plan["process"]["started"].as_u64().is_some(), "{plan}");
    let mut stranger = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let stranger_id = valleys::process::ProcessIdentity::of(stranger.id()).unwrap();
    let cases: Vec<(serde_json::Value, &str)> = vec![
        // The executor's identity, the stranger's pid.
        (
            serde_json::json!(stranger.id()),
            "records the identity of pid",
        ),
        (serde_json::json!(0), "never a valleys executor"),
    ];
    for (pid, why) in cases {
        let mut edited = plan.clone();
        edited["pid"] = pid;
        std::fs::write(&plan_path, edited.to_string()).unwrap();
        let said = run(d, &["plane", "--cancel", tiles.to_str().unwrap()]);
        assert_eq!(said.code, Some(2), "{said:?}");
        assert!(said.stderr.contains(why), "{said:?}");
        assert!(
            said.stderr.ends_with("; nothing was signalled\n"),
            "{said:?}"
        );
    }
    // The stranger's own pid and start, but another executable than the one that wrote it.
    let mut edited = plan.clone();
    edited["pid"] = serde_json::json!(stranger.id());
    edited["process"]["pid"] = serde_json::json!(stranger.id());
    edited["process"]["started"] = serde_json::json!(stranger_id.started);
    std::fs::write(&plan_path, edited.to_string()).unwrap();
    let said = run(d, &["plane", "--cancel", tiles.to_str().unwrap()]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert!(
        said.stderr.contains("runs ") && said.stderr.contains("sleep"),
        "{said:?}"
    );
    // A plan from before identities were kept: a living pid is not signalled on its word.
    let mut edited = plan.clone();
    edited["pid"] = serde_json::json!(stranger.id());
    edited.as_object_mut().unwrap().remove("process");
    std::fs::write(&plan_path, edited.to_string()).unwrap();
    let said = run(d, &["plane", "--cancel", tiles.to_str().unwrap()]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert!(said.stderr.contains("older valleys"), "{said:?}");
    assert!(stranger.try_wait().unwrap().is_none(), "the stranger lives");
    stranger.kill().unwrap();
    stranger.wait().unwrap();
    // The executor itself is long gone: nothing to cancel, said as before.
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    let said = run(d, &["plane", "--cancel", tiles.to_str().unwrap()]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains("is not running; nothing to cancel"),
        "{said:?}"
    );
}
