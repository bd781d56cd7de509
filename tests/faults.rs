//! Faults lose nothing: signals mid-epoch leave a resumable run that continues exactly as an
//! uninterrupted one; a kill during a checkpoint write leaves the previous one loadable; a
//! panic, a divergence and a full disk are reported and leave the run directory intact.

// Signals to children and a child's memory limit are libc calls.
#![allow(unsafe_code)]

mod common;

use common::{metrics_without_times, valleys};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tch::Device;
use valleys::config::Experiment;
use valleys::data::dataset::Dataset;
use valleys::model::Model;
use valleys::rundir::RunDir;
use valleys::train::checkpoint;

const SMALL: &str = "\
name: small
seed: 5
data: {dataset: fashion-mnist, train_subset: 512, test_subset: 256}
model: {arch: preresnet, depth: 8}
train: {epochs: 3, batch_size: 64, lr: 0.05, weight_decay: 5.0e-4}
swa: {start_epoch: 2, lr: 0.02}
eval: {train_subset: 256}
";

fn experiment(dir: &Path, text: &str) {
    std::fs::write(dir.join("x.yaml"), text).unwrap();
}

/// Starts a headless run and returns once it has printed a line starting with `marker`. The
/// stop signals start at their defaults in the run, whatever this test inherited: a run keeps
/// a signal its parent ignores (so `nohup make test` would otherwise never see a hang-up).
fn start_until(dir: &Path, out: &str, marker: &str) -> Child {
    let mut command = valleys(dir);
    command
        .args(["run", "x.yaml", "--headless", "--out", out])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(signal, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = lines.next().expect("the run printed the marker").unwrap();
        if line.trim_start().starts_with(marker) {
            break;
        }
        assert!(Instant::now() < deadline);
    }
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

fn wait(mut child: Child) -> (Option<i32>, String) {
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

fn loads(run: &Path, name: &str) -> checkpoint::TrainingState {
    let exp = Experiment::load(&run.join("config.yaml"), &[]).unwrap();
    let data = Dataset::load(&exp.data, None, exp.seed, Device::Cpu).unwrap();
    let build = || Model::build(&exp.model, &data.input_shape, data.classes, Device::Cpu).unwrap();
    let (sgd, swa) = (build(), build());
    let loaded = checkpoint::load(&run.join("checkpoints").join(name), &sgd, Some(&swa)).unwrap();
    assert!(sgd.is_finite());
    loaded.state
}

#[test]
fn a_run_stopped_by_any_signal_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    experiment(d, SMALL);
    let status = valleys(d)
        .args(["run", "x.yaml", "--headless", "--out", "whole"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let whole = metrics_without_times(&d.join("whole"));

    for (signal, name) in [
        (libc::SIGINT, "int"),
        (libc::SIGTERM, "term"),
        (libc::SIGHUP, "hup"),
    ] {
        let child = start_until(d, name, "epoch 1/3");
        std::thread::sleep(Duration::from_millis(150));
        unsafe { libc::kill(child.id() as i32, signal) };
        let started = Instant::now();
        let (code, stderr) = wait(child);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: the exit is prompt"
        );
        assert_eq!(code, Some(130), "{name}: {stderr}");
        let run = d.join(name);
        let state = loads(&run, "latest.safetensors");
        assert!(state.step > 0, "{name}: a checkpoint of the point reached");
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
        assert_eq!(info["outcome"]["outcome"], "stopped");
        // Every metric so far is on disk and consistent with the uninterrupted run.
        let partial = metrics_without_times(&run);
        assert_eq!(partial[..], whole[..partial.len()], "{name}: rows so far");

        let resumed = valleys(d)
            .args(["run", "--resume", name, "--headless"])
            .output()
            .unwrap();
        assert!(
            resumed.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        assert_eq!(
            metrics_without_times(&run),
            whole,
            "{name}: resumed rows match the uninterrupted run"
        );
        // The path too, byte for byte: no iterate lost or stored twice.
        for file in ["trajectory/index.json", "trajectory/weights.f32"] {
            assert!(
                std::fs::read(run.join(file)).unwrap()
                    == std::fs::read(d.join("whole").join(file)).unwrap(),
                "{name}: {file} differs from the uninterrupted run's"
            );
        }
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
        assert_eq!(info["resumed"].as_array().unwrap().len(), 1);
        assert_eq!(info["outcome"]["outcome"], "completed");
    }
    let finished = valleys(d)
        .args(["run", "--resume", "whole"])
        .output()
        .unwrap();
    assert_eq!(finished.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&finished.stderr).contains("already finished its 3 epochs"));
}

#[test]
fn a_kill_during_checkpoint_writes_leaves_the_previous_checkpoint_loadable() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // One batch per epoch and a checkpoint after each: the run mostly writes checkpoints.
    experiment(
        d,
        &SMALL
            .replace("train_subset: 512", "train_subset: 64")
            .replace("epochs: 3", "epochs: 100000")
            .replace(
                "eval: {train_subset: 256}",
                "eval: {train_subset: 64, every_epochs: 100000}",
            ),
    );
    for (round, delay_ms) in [40u64, 170, 330, 90, 250, 420].into_iter().enumerate() {
        let out = format!("k{round}");
        let mut child = start_until(d, &out, "plan:");
        let latest = d.join(&out).join("checkpoints/latest.safetensors");
        // Kill at a different moment after the first checkpoint each round; with a checkpoint
        // every few milliseconds most kills land inside a write.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !latest.exists() {
            assert!(
                Instant::now() < deadline,
                "no first checkpoint within 120 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let state = loads(&d.join(&out), "latest.safetensors");
        assert!(state.epoch >= 1);
        if round == 0 {
            // A killed run resumes, leftovers and all.
            let resumed = valleys(d)
                .args(["run", "--resume", &out, "--headless", "--set"])
                .arg(format!("train.epochs={}", state.epoch + 3))
                .output()
                .unwrap();
            assert!(
                resumed.status.success(),
                "{}",
                String::from_utf8_lossy(&resumed.stderr)
            );
            // The path holds every epoch end once, whatever the kill interrupted.
            let run = valleys::rundir::RunDir::open(&d.join(&out)).unwrap();
            let index = valleys::trajectory::store::read_index(&run)
                .unwrap()
                .unwrap();
            let epochs: Vec<u32> = index.points.iter().map(|p| p.epoch).collect();
            assert_eq!(epochs, (0..=state.epoch + 3).collect::<Vec<_>>());
            assert_eq!(
                valleys::trajectory::store::read_weights(&run, &index)
                    .unwrap()
                    .len(),
                epochs.len()
            );
        }
    }
}

#[test]
fn a_failure_in_a_training_step_is_one_line_and_keeps_the_last_completed_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    experiment(d, SMALL);
    let out = valleys(d)
        .env("VALLEYS_FAULT", "panic-at-step:20")
        .args(["run", "x.yaml", "--headless", "--out", "p"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed in epoch 3, batch")
            && stderr.contains("(a training step): injected fault: panic at step 20")
            && stderr.contains("the checkpoint holds the last completed batch"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let run = d.join("p");
    let latest = loads(&run, "latest.safetensors");
    assert_eq!(
        (latest.epoch, latest.step),
        (2, 20),
        "the 20 steps before the failure"
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["outcome"]["outcome"], "failed");
    assert!(!metrics_without_times(&run).is_empty());
}

#[test]
fn a_diverged_run_keeps_its_last_finite_checkpoint_and_can_still_be_probed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    experiment(
        d,
        &SMALL
            .replace("epochs: 3", "epochs: 1")
            .replace("swa: {start_epoch: 2, lr: 0.02}", "swa: {start_epoch: 1}"),
    );
    let first = valleys(d)
        .args(["run", "x.yaml", "--headless", "--out", "v"])
        .output()
        .unwrap();
    assert!(first.status.success());
    let blown = valleys(d)
        .args([
            "run",
            "--resume",
            "v",
            "--headless",
            "--set",
            "train.epochs=3",
            "--set",
            "swa.lr=1.0e6",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&blown.stdout);
    assert_eq!(blown.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("diverged in epoch 2"), "{stdout}");
    let run = d.join("v");
    assert_eq!(
        loads(&run, "latest.safetensors").epoch,
        1,
        "the last finite checkpoint"
    );
    let probe = valleys(d)
        .args(["probe", "v", "--points", "5", "--train-subset", "64"])
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
}

#[test]
fn a_full_disk_during_a_checkpoint_or_trajectory_write_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // No file may grow past 300 kB (a checkpoint is about 930 kB, an iterate of the path
    // 310 kB): the write fails as on a full disk, with EFBIG instead of ENOSPC. The path is
    // written first (the initial weights); without it, the checkpoint is.
    for (text, out, file) in [
        (
            format!("{SMALL}checkpoint: {{trajectory_every_epochs: 0}}\n"),
            "f",
            "latest.safetensors",
        ),
        (SMALL.to_owned(), "g", "weights.f32"),
    ] {
        experiment(d, &text);
        let mut command = valleys(d);
        command.args(["run", "x.yaml", "--headless", "--out", out]);
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 300_000,
                    rlim_max: 300_000,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(file) && stderr.contains("cannot write: File too large"),
            "{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        let run = RunDir::open(&d.join(out)).unwrap();
        assert!(
            !run.read_metrics().unwrap().is_empty(),
            "the metrics so far are kept"
        );
        let leftovers: Vec<_> = std::fs::read_dir(run.checkpoints_dir()).unwrap().collect();
        assert!(leftovers.is_empty(), "no partial checkpoint: {leftovers:?}");
        // The path's index lists nothing the failed write left half done.
        if file == "weights.f32" {
            let index = valleys::trajectory::store::read_index(&run).unwrap();
            assert!(
                index.as_ref().is_none_or(|i| i.points.is_empty()),
                "{index:?}"
            );
        }
    }
}
