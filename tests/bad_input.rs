//! Every kind of bad input gets one line naming the file, field or value and what was
//! expected, exit code 2, no backtrace, and nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;

const GOOD: &str = "\
name: t
data: {dataset: fashion-mnist, train_subset: 256, test_subset: 128}
model: {arch: mlp, hidden: 16}
train: {epochs: 15, batch_size: 64, lr: 0.1}
";

fn valleys(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_valleys"))
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// An experiment file with `from` replaced by `to`.
fn variant(dir: &Path, from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    write(dir, "x.yaml", &GOOD.replace(from, to));
    "x.yaml".into()
}

fn idx_dir(dir: &Path, images: &[u8]) -> String {
    let d = dir.join("idx");
    std::fs::create_dir_all(&d).unwrap();
    let mut labels: Vec<u8> = [2049u32, 2].iter().flat_map(|w| w.to_be_bytes()).collect();
    labels.extend([1, 2]);
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
    ];
    for (name, setup, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let args = setup(tmp.path());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = valleys(tmp.path(), &args);
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
    }
}

#[test]
fn a_checkpoint_of_another_model_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "x.yaml", &GOOD.replace("epochs: 15", "epochs: 1"));
    let (code, stderr) = valleys(d, &["run", "x.yaml", "--headless", "--out", "r"]);
    assert_eq!(code, Some(0), "{stderr}");
    // Change the model behind the run's back, then probe its checkpoint.
    let config = d.join("r/config.yaml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("hidden: 16", "hidden: 32");
    std::fs::write(&config, text).unwrap();
    let (code, stderr) = valleys(d, &["probe", "r", "--checkpoint", "final"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("written for another model (tensor sgd/fc1.weight has shape [16, 784], the model expects [32, 784]"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
