//! End to end: the quick experiment, shortened, trains headless on the CPU and leaves a
//! complete run directory whose checkpoints load back bit for bit.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use tch::{Device, Kind, Tensor};
use valleys::config::Experiment;
use valleys::data::dataset::Dataset;
use valleys::model::Model;
use valleys::model::eval;
use valleys::protocol::{Iterate, MetricRow, Split};
use valleys::rundir::RunDir;
use valleys::train::checkpoint;

fn valleys() -> Command {
    common::valleys(Path::new("."))
}

fn read_safetensors(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

#[test]
fn the_quick_experiment_trains_headless_and_leaves_a_complete_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let quick = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/quick.yaml");
    let result = valleys()
        .args(["run", quick, "--headless", "--device", "cpu", "--out"])
        .arg(&out)
        .args([
            "--set",
            "train.epochs=4",
            "--set",
            "swa.start_epoch=2",
            "--set",
            "data.train_subset=2560",
            "--set",
            "eval.train_subset=500",
            "--set",
            "checkpoint.keep_every_epochs=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("device: cpu (requested with --device cpu)"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("finished in")),
        "{stdout}"
    );

    let dir = RunDir::open(&out).unwrap();
    let exp = Experiment::load(&dir.config_path(), &[]).unwrap();
    assert_eq!((exp.train.epochs, exp.swa.start_epoch), (4, Some(2)));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.run_info_path()).unwrap()).unwrap();
    assert_eq!(info["device"]["name"], "cpu");
    assert!(
        info["device"]["reason"]
            .as_str()
            .unwrap()
            .contains("--device cpu")
    );
    assert_eq!(info["parameters"], 77_562);
    // The machine it ran on: no GPU here, the process's peak resident memory (libtorch and
    // the model take more than 50 MB).
    let machine = &info["machine"];
    assert!(machine.get("gpu_name").is_none(), "{machine}");
    assert!(
        machine["rss_peak_bytes"].as_u64().unwrap() > 50 << 20,
        "{machine}"
    );

    // metrics.jsonl: every row has the documented fields; the loss falls; accuracy is far
    // above chance (10%).
    let raw = std::fs::read_to_string(dir.metrics_path()).unwrap();
    for line in raw.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in [
            "epoch",
            "step",
            "iterate",
            "split",
            "loss",
            "acc",
            "lr",
            "elapsed_s",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
    }
    let rows = dir.read_metrics().unwrap();
    let find = |epoch: u32, it: Iterate, sp: Split| -> &MetricRow {
        rows.iter()
            .find(|r| r.epoch == epoch && r.iterate == it && r.split == sp)
            .unwrap_or_else(|| panic!("no {it:?} {sp:?} row at epoch {epoch}"))
    };
    let first = find(0, Iterate::Sgd, Split::Test);
    let last = find(4, Iterate::Sgd, Split::Test);
    assert!(
        last.loss < 0.6 * first.loss,
        "{} -> {}",
        first.loss,
        last.loss
    );
    assert!(last.acc > 0.6, "test accuracy {}", last.acc);
    let swa_last = find(4, Iterate::Swa, Split::Test);
    assert_eq!(swa_last.swa_n, Some(3));
    assert!(swa_last.acc > 0.6, "SWA test accuracy {}", swa_last.acc);
    assert!(
        find(1, Iterate::Sgd, Split::TrainRunning).loss
            > find(4, Iterate::Sgd, Split::TrainRunning).loss
    );

    // Checkpoints: latest, one per epoch, and final.
    let ckpt = dir.checkpoints_dir();
    for name in ["latest", "final", "epoch-0001", "epoch-0004"] {
        assert!(ckpt.join(format!("{name}.safetensors")).is_file(), "{name}");
    }

    // The SWA average is the mean of the SGD snapshots after epochs 2, 3 and 4, computed here
    // independently from the per-epoch checkpoints.
    let final_state = read_safetensors(&ckpt.join("final.safetensors"));
    let snapshots: Vec<_> = (2..=4)
        .map(|e| read_safetensors(&ckpt.join(format!("epoch-{e:04}.safetensors"))))
        .collect();
    let mut compared = 0;
    for (key, swa) in final_state.iter().filter(|(k, _)| k.starts_with("swa/")) {
        let name = &key[4..];
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            continue;
        }
        let mean = snapshots
            .iter()
            .map(|s| s[&format!("sgd/{name}")].to_kind(Kind::Double))
            .fold(Tensor::zeros_like(&swa.to_kind(Kind::Double)), |acc, t| {
                acc + t
            })
            / 3.0;
        let diff = (swa.to_kind(Kind::Double) - mean)
            .abs()
            .max()
            .double_value(&[]);
        assert!(
            diff < 1e-6,
            "{name}: SWA differs from the snapshot mean by {diff}"
        );
        compared += 1;
    }
    assert!(compared > 20);

    // Loading a checkpoint into fresh models reproduces every tensor bit for bit, and the
    // loaded SGD iterate gives back the recorded test loss.
    let data = Dataset::load(&exp.data, exp.eval.train_subset, exp.seed, Device::Cpu).unwrap();
    let sgd = Model::build(&exp.model, &data.input_shape, data.classes, Device::Cpu).unwrap();
    let swa = Model::build(&exp.model, &data.input_shape, data.classes, Device::Cpu).unwrap();
    let loaded = checkpoint::load(&ckpt.join("final.safetensors"), &sgd, Some(&swa)).unwrap();
    assert_eq!((loaded.state.epoch, loaded.state.swa_n), (4, 3));
    assert!(loaded.momentum.is_some());
    for (prefix, model) in [("sgd/", &sgd), ("swa/", &swa)] {
        for (name, t) in model.named_state() {
            assert!(
                t.equal(&final_state[&format!("{prefix}{name}")]),
                "{prefix}{name}"
            );
        }
    }
    let reloaded = eval::evaluate(&sgd, &data, &data.test, exp.eval.batch_for(false));
    assert!(
        (reloaded.loss - last.loss).abs() < 1e-5,
        "{} vs {}",
        reloaded.loss,
        last.loss
    );
}

#[test]
fn a_run_directory_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let quick = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/quick.yaml");
    let result = valleys()
        .args(["run", quick, "--headless", "--out"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("the run directory already exists"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
