//! What the integration tests share: running the binary in a directory, writing files, and a
//! tiny experiment that trains in a second or two.
#![allow(dead_code)]

pub mod http;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A 1-epoch MLP on 256 embedded samples: the cheapest real run.
pub const TINY: &str = "\
name: t
data: {dataset: fashion-mnist, train_subset: 256, test_subset: 128}
model: {arch: mlp, hidden: 16}
train: {epochs: 1, batch_size: 64, lr: 0.1}
eval: {train_subset: 128}
";

/// A 2-epoch MLP with BN and SWA on 512 embedded samples: a run worth probing in seconds.
pub const TINY_BN: &str = "\
name: tiny
data: {dataset: fashion-mnist, train_subset: 512, test_subset: 256}
model: {arch: mlp, hidden: 32, norm: batch}
train: {epochs: 2, batch_size: 64, lr: 0.05}
swa: {start_epoch: 2}
eval: {train_subset: 256}
";

/// The rows of `run`'s metrics.jsonl without their clock times, for "the same run" checks.
pub fn metrics_without_times(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("elapsed_s");
            v
        })
        .collect()
}

/// libtorch's global generator, held by a test while it seeds it and draws from it in this
/// process. The generator is one per process and the tests of one file run on several threads,
/// so a test that relies on what a seed draws (the same weights twice, a statistic that holds
/// at the seeded weights) holds this, and so does every test of its file that draws in-process
/// (a model built, a worker training): otherwise a draw of one lands between the other's seed
/// and its draws.
pub fn torch_generator() -> std::sync::MutexGuard<'static, ()> {
    static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that failed while holding it poisons nothing the others rely on.
    GENERATOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The binary, run in `dir`, without a backtrace setting of ours.
pub fn valleys(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_valleys"));
    c.current_dir(dir).env_remove("RUST_BACKTRACE");
    c
}

/// What a finished command said.
#[derive(Debug)]
pub struct Said {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Said {
    fn from(out: std::process::Output) -> Self {
        Said {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs the binary in `dir` with `args` and waits for it.
pub fn run(dir: &Path, args: &[&str]) -> Said {
    valleys(dir).args(args).output().unwrap().into()
}

/// Writes `text` to `dir/name`, creating folders.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// Trains `yaml` headless into `dir/out` and checks that it completed.
pub fn train(dir: &Path, yaml: &str, out: &str) -> PathBuf {
    write(dir, "train.yaml", yaml);
    let said = run(dir, &["run", "train.yaml", "--headless", "--out", out]);
    assert_eq!(said.code, Some(0), "training {out}: {said:?}");
    dir.join(out)
}

/// A fresh directory holding the tiny experiment trained into `r/`.
pub fn trained_tiny() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    train(tmp.path(), TINY, "r");
    tmp
}

/// Every file below `dir` with its contents, for "nothing changed" checks.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            // A refused writer may leave its pid in the lock file; that is not run data.
            if path.file_name().is_some_and(|n| n == ".lock") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// A command in a detached tmux session of 120x40: a real terminal for the dashboard.
pub struct Tmux {
    session: String,
}

impl Tmux {
    /// None (after saying why) when tmux is not installed.
    pub fn start(dir: &Path, name: &str, command: &str) -> Option<Self> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("tmux is not installed: this test needs a terminal");
            return None;
        }
        let session = format!("valleys-{name}-{}", std::process::id());
        let started = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "120",
                "-y",
                "40",
                "-c",
            ])
            .arg(dir)
            .arg(command)
            .output()
            .unwrap();
        assert!(started.status.success(), "{started:?}");
        Some(Self { session })
    }

    /// What the terminal shows now.
    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `keys` (tmux key names, e.g. "p", "Enter").
    pub fn send(&self, keys: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.session, keys])
            .output()
            .unwrap();
    }

    /// Waits up to 90 s until `what` holds for the screen; returns that screen.
    pub fn wait_for(&self, what: &dyn Fn(&str) -> bool, label: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let s = self.screen();
            if what(&s) {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waiting for {label}; screen:\n{s}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Tmux {
    /// Waits up to 30 s for the command to have written `file` (its exit status), and
    /// returns what it wrote.
    pub fn wait_for_exit(&self, file: &Path) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !file.is_file() {
            assert!(
                std::time::Instant::now() < deadline,
                "the command did not end; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::fs::read_to_string(file).unwrap().trim().to_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .output();
    }
}

/// The tiny BN experiment with a wider MLP on 4 096 samples: a plane point takes tens of
/// milliseconds, enough to stop a plane's tile part-way.
pub fn tiled_experiment() -> String {
    TINY_BN
        .replace("hidden: 32", "hidden: 256")
        .replace(
            "train_subset: 512, test_subset: 256",
            "train_subset: 4096, test_subset: 2048",
        )
        .replace("epochs: 2,", "epochs: 3,")
        .replace("eval: {train_subset: 256}", "eval: {train_subset: 2048}")
}

/// A stored plane of `run` as a second measurement of it must give it: its CSV byte for
/// byte, and its JSON without the two things a measurement cannot repeat (the time it took
/// and the path of the checkpoint it read).
pub fn plane_without_times(run: &Path, id: &str) -> (String, serde_json::Value) {
    let planes = run.join("planes");
    let csv = std::fs::read_to_string(planes.join(format!("{id}.csv"))).unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(planes.join(format!("{id}.json"))).unwrap())
            .unwrap();
    let object = json.as_object_mut().unwrap();
    assert!(object.remove("cost").is_some() && object.remove("source").is_some());
    (csv, json)
}

/// Copies the directory `from` to `to`, both under `dir` (a second run to measure the same way).
pub fn copy_dir(dir: &Path, from: &str, to: &str) {
    let copied = Command::new("cp")
        .args(["-r", from, to])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(copied.success(), "cp -r {from} {to}");
}
