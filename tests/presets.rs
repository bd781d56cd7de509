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
