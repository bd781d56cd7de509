//! Every shipped experiment parses and validates; the toy preset trains end to end.

use std::path::{Path, PathBuf};
use std::process::Command;
use valleys::config::Experiment;
use valleys::protocol::{Iterate, Split};
use valleys::rundir::RunDir;

fn presets(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // Sweep files are not experiments (tests/sweep.rs reads them).
        if path.is_dir() && !path.ends_with("sweeps") {
            found.extend(presets(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            found.push(path);
        }
    }
    found
}

#[test]
fn every_shipped_experiment_is_valid() {
    let all = presets(&Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"));
    assert!(all.len() >= 7, "{all:?}");
    for path in all {
        let e = Experiment::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
        let stem = path.file_stem().unwrap().to_string_lossy();
        assert_eq!(e.name, stem, "the name matches the file name");
    }
}

#[test]
fn the_paper_presets_carry_the_authors_settings() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/paper/preresnet164-cifar10.yaml");
    let e = Experiment::load(&path, &[]).unwrap();
    assert_eq!((e.train.epochs, e.train.batch_size), (225, 128));
    assert_eq!((e.train.lr, e.train.weight_decay), (0.1, 3e-4));
    assert_eq!((e.swa.start_epoch, e.swa.lr), (Some(126), Some(0.05)));
    assert_eq!(e.model.depth, Some(164));
}

#[test]
fn the_toy_preset_trains_and_averages_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("toy");
    let preset = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/paper/toy-2params.yaml"
    );
    let result = Command::new(env!("CARGO_BIN_EXE_valleys"))
        .args(["run", preset, "--headless", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let rows = RunDir::open(&out).unwrap().read_metrics().unwrap();
    let at = |epoch: u32, it: Iterate| {
        rows.iter()
            .find(|r| r.epoch == epoch && r.iterate == it && r.split == Split::Train)
            .unwrap()
            .clone()
    };
    assert_eq!(at(30, Iterate::Swa).swa_n, Some(30));
    assert!(
        at(30, Iterate::Sgd).loss < at(0, Iterate::Sgd).loss,
        "gradient descent lowers the loss"
    );
    assert!(out.join("checkpoints/final.safetensors").is_file());
}

/// A folder holding a named set's upstream layout, made of the 20 real test images of the
/// fixtures (as both the training and the test file).
fn fixture_dir(dataset: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/cifar");
    let (sub, fixture, files) = match dataset {
        "cifar10" => (
            "cifar-10-batches-bin",
            "cifar10_test20.bin",
            ["data_batch_1.bin", "test_batch.bin"],
        ),
        "cifar100" => (
            "cifar-100-binary",
            "cifar100_test20.bin",
            ["train.bin", "test.bin"],
        ),
        other => panic!("no fixture for {other}"),
    };
    std::fs::create_dir(tmp.path().join(sub)).unwrap();
    for f in files {
        std::fs::copy(assets.join(fixture), tmp.path().join(sub).join(f)).unwrap();
    }
    tmp
}

/// Every paper preset trains two optimiser steps on data of its real shape (3x32x32, 10 or 100
/// classes): a preset whose model or data does not fit fails here, on a CPU, before a GPU box
/// sees it. Only the budget is shrunk; the model, its BN and its data set are the preset's.
#[test]
fn every_paper_preset_trains_two_steps_on_data_of_its_shape() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/paper");
    let mut trained = 0;
    for path in presets(&dir) {
        let e = Experiment::load(&path, &[]).unwrap();
        if e.data.dataset.as_str() == "toy" {
            continue;
        }
        assert!(
            e.data.dir.is_none(),
            "{}: fetched, not a dir",
            path.display()
        );
        let data = fixture_dir(e.data.dataset.as_str());
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("run");
        let set = |kv: String| ["--set".to_owned(), kv];
        let mut args: Vec<String> = vec![
            "run".into(),
            path.display().to_string(),
            "--headless".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        for kv in [
            format!("data.dir={}", data.path().display()),
            "data.train_subset=4".into(),
            "data.test_subset=2".into(),
            "train.epochs=1".into(),
            "train.batch_size=2".into(),
            "eval.train_subset=2".into(),
            "swa.start_epoch=1".into(),
        ] {
            args.extend(set(kv));
        }
        let result = Command::new(env!("CARGO_BIN_EXE_valleys"))
            .args(&args)
            // Nothing may be fetched: the folder is given.
            .env("XDG_CACHE_HOME", tmp.path().join("cache"))
            .env("VALLEYS_DATA_MIRROR", tmp.path().join("no-mirror"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&result.stdout);
        assert!(
            result.status.success(),
            "{}: {}{}",
            path.display(),
            stdout,
            String::from_utf8_lossy(&result.stderr)
        );
        assert!(
            stdout.contains("1 epochs × 2 batches") || stdout.contains("1 epoch × 2 batches"),
            "{stdout}"
        );
        let rows = RunDir::open(&out).unwrap().read_metrics().unwrap();
        assert!(
            rows.iter()
                .any(|r| r.epoch == 1 && r.iterate == Iterate::Sgd && r.loss.is_finite()),
            "{}: a finite loss after two steps",
            path.display()
        );
        assert!(!tmp.path().join("cache").exists(), "nothing fetched");
        trained += 1;
    }
    assert_eq!(trained, 5, "the five CIFAR presets");
}

/// The sweep over the paper's CIFAR-10 models checks every variant without the data in the
/// cache (and without internet): the catalog knows the images' shape.
#[test]
fn the_paper_sweep_passes_a_dry_run_without_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/sweeps/paper-cifar10.yaml"
    );
    let result = Command::new(env!("CARGO_BIN_EXE_valleys"))
        .args(["sweep", sweep, "--dry-run"])
        .current_dir(tmp.path())
        .env("XDG_CACHE_HOME", tmp.path().join("cache"))
        .env("VALLEYS_DATA_MIRROR", "http://127.0.0.1:9/")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        stdout.contains("data: CIFAR-10, binary version (Krizhevsky 2009): not cached; fetched on first use (162.2 MiB to download)"),
        "{stdout}"
    );
    assert!(stdout.contains("9 variants of"), "{stdout}");
    assert!(
        !tmp.path().join("cache").exists(),
        "a dry run downloads nothing"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing created"
    );
}
