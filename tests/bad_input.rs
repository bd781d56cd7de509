//! Every kind of bad input gets one line naming the file, field or value and what was
//! expected, exit code 2, no backtrace, and nothing written.

mod common;

use common::{run, write};
use std::path::Path;
use std::process::Command;

const GOOD: &str = "\
name: t
data: {dataset: fashion-mnist, train_subset: 256, test_subset: 128}
model: {arch: mlp, hidden: 16}
train: {epochs: 15, batch_size: 64, lr: 0.1}
";

/// An experiment file with `from` replaced by `to`.
fn variant(dir: &Path, from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    write(dir, "x.yaml", &GOOD.replace(from, to));
    "x.yaml".into()
}

fn idx_dir(dir: &Path, images: &[u8]) -> String {
    idx_dir_with_labels(dir, images, &[1, 2])
}

fn idx_dir_with_labels(dir: &Path, images: &[u8], label_values: &[u8]) -> String {
    let d = dir.join("idx");
    std::fs::create_dir_all(&d).unwrap();
    let mut labels: Vec<u8> = [2049u32, label_values.len() as u32]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect();
    labels.extend(label_values);
    for split in ["train", "t10k"] {
        std::fs::write(d.join(format!("{split}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(d.join(format!("{split}-labels-idx1-ubyte")), &labels).unwrap();
    }
    write(
        dir,
        "x.yaml",
        &GOOD.replace("dataset: fashion-mnist,", "dataset: mnist, dir: idx,"),
    );
    "x.yaml".into()
}

fn idx_images(magic: u32, count: u32, pixels: usize) -> Vec<u8> {
    let mut v: Vec<u8> = [magic, count, 28, 28]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect();
    v.extend(std::iter::repeat_n(7u8, pixels));
    v
}

#[test]
fn every_bad_input_is_one_clear_line_and_exit_code_2() {
    type Setup = Box<dyn Fn(&Path) -> Vec<String>>;
    let cases: Vec<(&str, Setup, &str)> = vec![
        (
            "a YAML syntax error",
            Box::new(|d| {
                write(d, "x.yaml", "name: [unclosed\n");
                vec!["run".into(), "x.yaml".into()]
            }),
            "x.yaml:2:1: YAML syntax error",
        ),
        (
            "an empty file",
            Box::new(|d| {
                write(d, "x.yaml", "");
                vec!["run".into(), "x.yaml".into()]
            }),
            "x.yaml: the file is empty",
        ),
        (
            "an unknown key",
            Box::new(|d| vec!["run".into(), variant(d, "lr: 0.1", "lrr: 0.1")]),
            "train.lrr: unknown field `lrr`",
        ),
        (
            "a wrong type",
            Box::new(|d| vec!["run".into(), variant(d, "epochs: 15", "epochs: many")]),
            "train.epochs: invalid type: string \"many\"",
        ),
        (
            "a negative learning rate",
            Box::new(|d| vec!["run".into(), variant(d, "lr: 0.1", "lr: -0.1")]),
            "train.lr = -0.1: expected a positive learning rate",
        ),
        (
            "SWA starting after the last epoch",
            Box::new(|d| {
                vec![
                    "run".into(),
                    variant(d, "lr: 0.1}", "lr: 0.1}\nswa: {start_epoch: 99}"),
                ]
            }),
            "swa.start_epoch = 99: expected an epoch in 1..=15",
        ),
        (
            "a zero batch size",
            Box::new(|d| vec!["run".into(), variant(d, "batch_size: 64", "batch_size: 0")]),
            "train.batch_size = 0: expected a batch size of at least 1",
        ),
        (
            "an empty probe range",
            Box::new(|d| {
                vec![
                    "run".into(),
                    variant(d, "lr: 0.1}", "lr: 0.1}\nprobe: {from: 1, to: 1}"),
                ]
            }),
            "probe: probe range [1, 1]: expected from < to",
        ),
        (
            "an unknown model",
            Box::new(|d| vec!["run".into(), variant(d, "arch: mlp", "arch: resnet9")]),
            "model.arch: unknown variant `resnet9`",
        ),
        (
            "an unknown data set",
            Box::new(|d| {
                vec![
                    "run".into(),
                    variant(d, "dataset: fashion-mnist", "dataset: imagenet"),
                ]
            }),
            "data.dataset: unknown variant `imagenet`",
        ),
        (
            "an unknown device",
            Box::new(|d| {
                write(d, "x.yaml", GOOD);
                vec![
                    "run".into(),
                    "x.yaml".into(),
                    "--device".into(),
                    "tpu9".into(),
                ]
            }),
            "unknown device 'tpu9': expected auto, cpu, cuda or cuda:N",
        ),
        (
            "CUDA where there is none",
            Box::new(|d| {
                write(d, "x.yaml", GOOD);
                vec![
                    "run".into(),
                    "x.yaml".into(),
                    "--device".into(),
                    "cuda".into(),
                ]
            }),
            "--device cuda: no CUDA device",
        ),
        (
            "a missing experiment file",
            Box::new(|_| vec!["run".into(), "nope.yaml".into()]),
            "nope.yaml: cannot read the experiment file",
        ),
        (
            "a missing data directory",
            Box::new(|d| {
                vec![
                    "run".into(),
                    variant(
                        d,
                        "dataset: fashion-mnist,",
                        "dataset: mnist, dir: /nonexistent/mnist,",
                    ),
                ]
            }),
            "/nonexistent/mnist: no mnist data: the directory does not exist; expected train-images-idx3-ubyte",
        ),
        (
            "a truncated IDX file",
            Box::new(|d| vec!["run".into(), idx_dir(d, &idx_images(2051, 2, 784))]),
            "but the header promises 2 images of 28x28 (1584 bytes): truncated",
        ),
        (
            "an IDX file with a wrong magic",
            Box::new(|d| vec!["run".into(), idx_dir(d, &idx_images(2049, 2, 1568))]),
            "magic number 2049 (0x00000801) instead of 2051",
        ),
        (
            "a CIFAR file of the wrong size",
            Box::new(|d| {
                let c = d.join("cifar");
                std::fs::create_dir_all(&c).unwrap();
                std::fs::write(c.join("data_batch_1.bin"), vec![0u8; 3073 + 5]).unwrap();
                std::fs::write(c.join("test_batch.bin"), vec![0u8; 3073]).unwrap();
                vec![
                    "run".into(),
                    variant(
                        d,
                        "dataset: fashion-mnist,",
                        "dataset: cifar10, dir: cifar,",
                    ),
                ]
            }),
            "3078 bytes is not a whole number of 3073-byte records",
        ),
        (
            "an existing run directory",
            Box::new(|d| {
                write(d, "x.yaml", GOOD);
                std::fs::create_dir_all(d.join("taken")).unwrap();
                vec![
                    "run".into(),
                    "x.yaml".into(),
                    "--out".into(),
                    "taken".into(),
                ]
            }),
            "taken: the run directory already exists",
        ),
        (
            "an unwritable output directory",
            Box::new(|d| {
                write(d, "x.yaml", GOOD);
                write(d, "file", "x");
                vec![
                    "run".into(),
                    "x.yaml".into(),
                    "--out".into(),
                    "file/run".into(),
                ]
            }),
            "file: cannot create the directory",
        ),
        (
            "a missing run directory to probe",
            Box::new(|_| vec!["probe".into(), "runs/nope".into()]),
            "runs/nope: no such run directory",
        ),
        (
            "a missing run directory to watch",
            Box::new(|_| vec!["watch".into(), "runs/nope".into()]),
            "runs/nope: no such run directory",
        ),
        (
            "a missing run directory to open",
            Box::new(|_| vec!["open".into(), "runs/nope".into()]),
            "runs/nope: no such run directory",
        ),
        (
            "open without a terminal",
            Box::new(|d| {
                let exp = valleys::config::Experiment::from_yaml(GOOD, "g", &[]).unwrap();
                valleys::rundir::RunDir::create(&d.join("r"), &exp).unwrap();
                vec!["open".into(), "r".into()]
            }),
            "open needs a terminal: stdout is not one",
        ),
        (
            "several runs to open, one missing",
            Box::new(|d| {
                let exp = valleys::config::Experiment::from_yaml(GOOD, "g", &[]).unwrap();
                valleys::rundir::RunDir::create(&d.join("r1"), &exp).unwrap();
                vec!["open".into(), "r1".into(), "runs/nope".into()]
            }),
            "runs/nope: no such run directory",
        ),
        (
            "several runs to open without a terminal",
            Box::new(|d| {
                let exp = valleys::config::Experiment::from_yaml(GOOD, "g", &[]).unwrap();
                valleys::rundir::RunDir::create(&d.join("r1"), &exp).unwrap();
                valleys::rundir::RunDir::create(&d.join("r2"), &exp).unwrap();
                vec!["open".into(), "r1".into(), "r2".into()]
            }),
            "open needs a terminal: stdout is not one",
        ),
        (
            "probe flags that contradict each other",
            Box::new(|_| {
                ["probe", "r", "--range", "5", "--auto-fraction", "0.3"]
                    .map(String::from)
                    .to_vec()
            }),
            "--range 5 with --auto-fraction 0.3: a fixed range has no fraction",
        ),
        (
            "an auto range for interp",
            Box::new(|_| {
                ["probe", "r", "--direction", "interp", "--range", "auto"]
                    .map(String::from)
                    .to_vec()
            }),
            "probe.auto_range: interp runs from SWA (t = 0) to SGD (t = 1)",
        ),
        (
            "a bad sample count",
            Box::new(|_| {
                ["probe", "r", "--bn-subset", "most"]
                    .map(String::from)
                    .to_vec()
            }),
            "'most': expected a number of samples or 'all'",
        ),
        (
            "a missing run directory to resume",
            Box::new(|_| vec!["run".into(), "--resume".into(), "runs/nope".into()]),
            "runs/nope: no such run directory",
        ),
        (
            "a run with nothing to resume",
            Box::new(|d| {
                let exp = valleys::config::Experiment::from_yaml(GOOD, "g", &[]).unwrap();
                valleys::rundir::RunDir::create(&d.join("fresh"), &exp).unwrap();
                vec!["run".into(), "--resume".into(), "fresh".into()]
            }),
            "fresh: nothing to resume from: checkpoints/latest.safetensors does not exist",
        ),
        (
            "a corrupt checkpoint",
            Box::new(|d| {
                let exp = valleys::config::Experiment::from_yaml(GOOD, "g", &[]).unwrap();
                valleys::rundir::RunDir::create(&d.join("r"), &exp).unwrap();
                write(
                    d,
                    "r/checkpoints/latest.safetensors",
                    "this is not a checkpoint",
                );
                vec!["probe".into(), "r".into()]
            }),
            "latest.safetensors: not a valleys checkpoint",
        ),
        (
            "a checkpoint that does not exist",
            Box::new(|d| {
                let exp = valleys::config::Experiment::from_yaml(GOOD, "g", &[]).unwrap();
                valleys::rundir::RunDir::create(&d.join("r"), &exp).unwrap();
                vec![
                    "probe".into(),
                    "r".into(),
                    "--checkpoint".into(),
                    "epoch-0003".into(),
                ]
            }),
            "no checkpoint 'epoch-0003'; expected one of: (none yet)",
        ),
        (
            "a model too large for any machine",
            Box::new(|d| {
                write(d, "x.yaml", GOOD);
                vec![
                    "run".into(),
                    "x.yaml".into(),
                    "--set".into(),
                    "model.hidden=4000000000".into(),
                ]
            }),
            "model.hidden = 4000000000: expected 1..=16777216 hidden units",
        ),
        (
            "a widening factor out of range",
            Box::new(|d| {
                let wrn = GOOD.replace("{arch: mlp, hidden: 16}", "{arch: wrn, depth: 10}");
                write(d, "x.yaml", &wrn);
                vec![
                    "run".into(),
                    "x.yaml".into(),
                    "--set".into(),
                    "model.width=100000".into(),
                ]
            }),
            "model.width = 100000: expected a widening factor in 1..=1024",
        ),
        (
            "a model larger than this machine's memory",
            Box::new(|d| {
                let wrn = GOOD.replace(
                    "{arch: mlp, hidden: 16}",
                    "{arch: wrn, depth: 16, width: 1024}",
                );
                write(d, "x.yaml", &wrn);
                vec!["run".into(), "x.yaml".into()]
            }),
            "parameters (",
        ),
        (
            "too many toy points",
            Box::new(|d| {
                let toy = GOOD
                    .replace(
                        "dataset: fashion-mnist, train_subset: 256, test_subset: 128",
                        "dataset: toy",
                    )
                    .replace("{arch: mlp, hidden: 16}", "{arch: toy}");
                write(d, "x.yaml", &toy);
                vec![
                    "run".into(),
                    "x.yaml".into(),
                    "--set".into(),
                    "data.toy_points=4000000000".into(),
                ]
            }),
            "data.toy_points = 4000000000: expected at most 10000000 points",
        ),
        (
            "a probe of four billion points",
            Box::new(|_| {
                vec![
                    "probe".into(),
                    "runs/nope".into(),
                    "--points".into(),
                    "4000000000".into(),
                ]
            }),
            "probe.points = 4000000000: expected 3..=100001",
        ),
        (
            "a probe of no points",
            Box::new(|_| {
                vec![
                    "probe".into(),
                    "runs/nope".into(),
                    "--points".into(),
                    "0".into(),
                ]
            }),
            "probe.points = 0: expected 3..=100001",
        ),
        (
            "a probe range of NaN",
            Box::new(|_| {
                vec![
                    "probe".into(),
                    "runs/nope".into(),
                    "--range".into(),
                    "nan".into(),
                ]
            }),
            "probe range [NaN, NaN]: expected from < to, both finite",
        ),
        (
            "a probe of zero directions",
            Box::new(|_| {
                vec![
                    "probe".into(),
                    "runs/nope".into(),
                    "--directions".into(),
                    "0".into(),
                ]
            }),
            "--directions 0: expected 1..=10000",
        ),
        (
            "an ablation of zero directions",
            Box::new(|_| {
                vec![
                    "ablate".into(),
                    "runs/nope".into(),
                    "--directions".into(),
                    "0".into(),
                ]
            }),
            "--directions 0: expected 2..=10000 directions per arm",
        ),
        (
            "an ablation of one direction",
            Box::new(|_| {
                vec![
                    "ablate".into(),
                    "runs/nope".into(),
                    "--directions".into(),
                    "1".into(),
                ]
            }),
            "--directions 1: expected 2..=10000 directions per arm",
        ),
        (
            "an ablation of four billion directions",
            Box::new(|_| {
                vec![
                    "ablate".into(),
                    "runs/nope".into(),
                    "--directions".into(),
                    "4000000000".into(),
                ]
            }),
            "--directions 4000000000: expected 2..=10000 directions per arm",
        ),
        (
            "an unknown ablation kind",
            Box::new(|_| {
                vec![
                    "ablate".into(),
                    "runs/nope".into(),
                    "--kind".into(),
                    "foo".into(),
                ]
            }),
            "--kind foo: expected groups, bn-modes, summary or all",
        ),
        (
            "an ablation of a run without batch norm",
            Box::new(|d| {
                let yaml = GOOD.replace("hidden: 16}", "hidden: 16, norm: none}");
                let exp = valleys::config::Experiment::from_yaml(&yaml, "g", &[]).unwrap();
                valleys::rundir::RunDir::create(&d.join("r"), &exp).unwrap();
                vec!["ablate".into(), "r".into()]
            }),
            "r: the model has no batch norm (model.norm: none)",
        ),
        (
            "watch without a terminal",
            Box::new(|d| {
                let exp = valleys::config::Experiment::from_yaml(GOOD, "g", &[]).unwrap();
                valleys::rundir::RunDir::create(&d.join("r"), &exp).unwrap();
                vec!["watch".into(), "r".into()]
            }),
            "watch needs a terminal: stdout is not one",
        ),
        (
            "an unknown key in a schedule without fields",
            Box::new(|d| {
                vec![
                    "run".into(),
                    variant(d, "lr: 0.1}", "lr: 0.1, schedule: {kind: swa, warmup: 3}}"),
                ]
            }),
            "unknown field `warmup`",
        ),
        (
            "an override of an unknown field",
            Box::new(|d| {
                write(d, "x.yaml", GOOD);
                vec![
                    "run".into(),
                    "x.yaml".into(),
                    "--set".into(),
                    "foo=1".into(),
                ]
            }),
            "--set foo=1: foo: unknown field `foo`",
        ),
        (
            "an override without a value",
            Box::new(|d| {
                write(d, "x.yaml", GOOD);
                vec![
                    "run".into(),
                    "x.yaml".into(),
                    "--set".into(),
                    "train.epochs".into(),
                ]
            }),
            "--set train.epochs: expected KEY=VALUE",
        ),
        (
            "a multi-line override",
            Box::new(|d| {
                write(d, "x.yaml", GOOD);
                vec![
                    "run".into(),
                    "x.yaml".into(),
                    "--set".into(),
                    "name=a\nb: [c".into(),
                ]
            }),
            "--set name=a\\nb: [c: the value is not valid YAML",
        ),
        (
            "a deeply nested file",
            Box::new(|d| {
                write(d, "x.yaml", &"[".repeat(100_000));
                vec!["run".into(), "x.yaml".into()]
            }),
            "x.yaml: YAML syntax error: lists or maps nested 100000 deep",
        ),
        (
            "an empty training split",
            Box::new(|d| {
                vec![
                    "run".into(),
                    idx_dir_with_labels(d, &idx_images(2051, 0, 0), &[]),
                ]
            }),
            "the training split holds no samples",
        ),
        (
            "a hidden run name",
            Box::new(|d| vec!["run".into(), variant(d, "name: t", "name: .")]),
            "name = \".\": expected a name of 1 to 100 letters",
        ),
        (
            "a parent-directory run name",
            Box::new(|d| vec!["run".into(), variant(d, "name: t", "name: ..")]),
            "name = \"..\": expected a name of 1 to 100 letters",
        ),
        (
            "batch norm over single samples",
            Box::new(|d| vec!["run".into(), variant(d, "batch_size: 64", "batch_size: 1")]),
            "train.batch_size = 1: expected at least 2 with batch norm on an mlp",
        ),
        (
            "batch norm on an mlp over a single training sample",
            Box::new(|d| {
                vec![
                    "run".into(),
                    variant(d, "train_subset: 256", "train_subset: 1"),
                ]
            }),
            "data.train_subset: 1 training sample; batch norm on an mlp needs at least 2",
        ),
        (
            "a report of a missing run",
            Box::new(|_| vec!["report".into(), "runs/nope".into()]),
            "runs/nope: no such run directory",
        ),
        (
            "a report into a directory that holds files",
            Box::new(|d| {
                let exp = valleys::config::Experiment::from_yaml(GOOD, "g", &[]).unwrap();
                valleys::rundir::RunDir::create(&d.join("r"), &exp).unwrap();
                write(d, "mine/notes.md", "my own notes");
                vec!["report".into(), "r".into(), "--out".into(), "mine".into()]
            }),
            "mine: the directory exists and holds files; choose a new directory, or add --force",
        ),
    ];
    for (name, setup, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let args = setup(tmp.path());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let said = run(tmp.path(), &args);
        let (code, stderr) = (said.code, said.stderr);
        assert_eq!(code, Some(2), "{name}: exit code; stderr: {stderr}");
        assert!(
            stderr.contains(want),
            "{name}: expected «{want}» in «{stderr}»"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{name}: one line, got «{stderr}»"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{name}: {stderr}"
        );
        assert!(!tmp.path().join("runs").exists(), "{name}: nothing written");
        let r = tmp.path().join("r");
        if r.is_dir() {
            let entries: Vec<String> = std::fs::read_dir(&r)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".lock")
                .collect();
            let mut entries = entries;
            entries.sort();
            assert_eq!(
                entries,
                ["checkpoints", "config.yaml"],
                "{name}: nothing written in r"
            );
        }
    }
    assert!(cases_count() >= 40);
}

fn cases_count() -> usize {
    // Counted by the test above; kept as a function so the floor is visible.
    include_str!("bad_input.rs")
        .matches("\n        (\n            \"")
        .count()
}

#[test]
fn a_memory_limit_refuses_what_cannot_fit_before_anything_is_written() {
    // 10 000 + 2 000 Fashion-MNIST images padded to 512x512 take 12 GiB as floats.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
        d,
        "x.yaml",
        &GOOD.replace("train_subset: 256, test_subset: 128", "pad_to: 512"),
    );
    let out = Command::new("bash")
        .current_dir(d)
        .args([
            "-c",
            "ulimit -v 6000000 && exec \"$0\" run x.yaml --headless",
        ])
        .arg(env!("CARGO_BIN_EXE_valleys"))
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is available (the address-space limit (ulimit -v))"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the data take 11.") || stderr.contains("the data take 12."),
        "{stderr}"
    );
    assert!(stderr.contains("data.pad_to"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!d.join("runs").exists());
}

#[test]
fn a_checkpoint_of_another_model_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "x.yaml", &GOOD.replace("epochs: 15", "epochs: 1"));
    let said = run(d, &["run", "x.yaml", "--headless", "--out", "r"]);
    let (code, stderr) = (said.code, said.stderr);
    assert_eq!(code, Some(0), "{stderr}");
    // Change the model behind the run's back, then probe its checkpoint.
    let config = d.join("r/config.yaml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("hidden: 16", "hidden: 32");
    std::fs::write(&config, text).unwrap();
    let said = run(d, &["probe", "r", "--checkpoint", "final"]);
    let (code, stderr) = (said.code, said.stderr);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("written for another model (tensor sgd/fc1.weight has shape [16, 784], the model expects [32, 784]"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
