//! A TorchScript model and safetensors data through the whole program: training, resuming,
//! probes, the twin, bad modules; and the zoo's PreResNet-8 exported to TorchScript training
//! like the native one.

mod common;

use common::{metrics_without_times, run, train, write};
use std::path::{Path, PathBuf};
use valleys::config::Experiment;
use valleys::model::Model;
use valleys::protocol::{Iterate, MetricRow, Split};
use valleys::rundir::RunDir;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/torchscript")
        .join(name)
}

/// `valleys run` of the experiment `text` is refused in one line containing `expected`, with
/// exit 2, no panic and no run directory.
fn refused_up_front(d: &Path, text: &str, expected: &str) {
    write(d, "bad.yaml", text);
    let said = run(d, &["run", "bad.yaml", "--headless", "--out", "never"]);
    assert_eq!(said.code, Some(2), "{expected}: {said:?}");
    assert!(
        said.stderr.contains(expected),
        "{expected}: {}",
        said.stderr
    );
    assert_eq!(said.stderr.trim_end().lines().count(), 1, "{}", said.stderr);
    assert!(!said.stderr.contains("panicked"), "{}", said.stderr);
    assert!(
        !d.join("never").exists(),
        "{expected}: a run directory was created"
    );
}

/// The fixture conv net with BN on the fixture images, two epochs.
fn convbn() -> String {
    format!(
        "\
name: ts
data: {{dataset: tensors, path: {}, augment: {{flip: true}}}}
model: {{arch: torchscript, path: {}}}
train: {{epochs: 2, batch_size: 64, lr: 0.05, weight_decay: 5.0e-4}}
swa: {{start_epoch: 1}}
",
        fixture("images.safetensors").display(),
        fixture("convbn.pt").display()
    )
}

fn rows(run_dir: &Path) -> Vec<MetricRow> {
    RunDir::open(run_dir).unwrap().read_metrics().unwrap()
}

#[test]
fn a_torchscript_run_trains_resumes_bit_identically_and_probes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let whole = train(d, &convbn(), "whole");
    let measured = rows(&whole);
    assert_eq!(measured.iter().map(|r| r.epoch).max(), Some(2));
    assert!(
        measured
            .iter()
            .any(|r| (r.epoch, r.iterate, r.split) == (2, Iterate::Swa, Split::Test))
    );

    // The run keeps its own copy of the module and names it relative to itself.
    let stored = std::fs::read_to_string(whole.join("config.yaml")).unwrap();
    assert!(stored.contains("path: model.pt"), "{stored}");
    assert_eq!(
        std::fs::read(whole.join("model.pt")).unwrap(),
        std::fs::read(fixture("convbn.pt")).unwrap()
    );

    // Stopped after one epoch and resumed: the same numbers and the same final weights.
    let said = run(
        d,
        &[
            "run",
            "train.yaml",
            "--headless",
            "--out",
            "halves",
            "--set",
            "train.epochs=1",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let said = run(
        d,
        &[
            "run",
            "--resume",
            "halves",
            "--headless",
            "--set",
            "train.epochs=2",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert_eq!(
        metrics_without_times(&whole),
        metrics_without_times(&d.join("halves"))
    );
    let tensors = |run: &Path| {
        let mut all =
            tch::Tensor::read_safetensors(run.join("checkpoints/final.safetensors")).unwrap();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    };
    let (a, b) = (tensors(&whole), tensors(&d.join("halves")));
    assert_eq!(a.len(), b.len());
    for ((name, x), (other, y)) in a.iter().zip(&b) {
        assert_eq!(name, other);
        assert!(x.equal(y), "{name} differs after the resume");
    }

    // A probe of the saved run, with stacked points asked for: one point per pass, said once.
    let said = run(
        d,
        &[
            "probe",
            "whole",
            "--points",
            "5",
            "--point-batch",
            "4",
            "--test-subset",
            "64",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let all = format!("{}{}", said.stdout, said.stderr);
    assert!(
        all.contains("a TorchScript model is evaluated one point per pass"),
        "{all}"
    );
    let probes = std::fs::read_dir(whole.join("probes")).unwrap().count();
    assert!(probes >= 2, "a .json and a .csv");

    // A Bézier curve between the two runs' averages trains on the module as on a zoo model:
    // its ends are the line's.
    let said = run(
        d,
        &[
            "connect",
            "whole:swa",
            "halves:sgd",
            "--points",
            "3",
            "--curve-epochs",
            "1",
            "--test-subset",
            "64",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let connection: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(whole.join("connections/001-swa-sgd.json")).unwrap(),
    )
    .unwrap();
    let (line, curve) = (&connection["points"], &connection["curve"]["points"]);
    for end in [0, 2] {
        let (a, b) = (
            line[end]["train_loss"].as_f64().unwrap(),
            curve[end]["train_loss"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-6, "end {end}: line {a}, curve {b}");
    }
    assert!(connection["curve"]["steps"].as_u64().unwrap() > 0);
}

#[test]
fn without_a_named_variant_the_twin_arm_is_left_out_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let yaml = convbn().replace("epochs: 2", "epochs: 1")
        + "ablation: {directions: 2, probe: {points: 5, test_subset: 64, train_subset: 64, bn_subset: 64}}\n";
    write(d, "a.yaml", &yaml);
    let said = run(d, &["run", "a.yaml", "--headless", "--out", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let all = format!("{}{}", said.stdout, said.stderr);
    assert!(
        all.contains("the no-BN twin of a TorchScript model cannot be derived from it; set ablation.twin_model"),
        "{all}"
    );
    assert!(!d.join("r/twin-nobn").exists());
    assert!(d.join("r/ablations").is_dir(), "the other arms ran");
}

#[test]
fn bad_modules_and_data_are_one_line_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("garbage.pt"), b"not a module").unwrap();
    let yaml = convbn();
    let convbn_path = fixture("convbn.pt").display().to_string();
    let images = fixture("images.safetensors").display().to_string();
    let cases: Vec<(String, &str)> = vec![
        (
            yaml.replace(&convbn_path, "garbage.pt"),
            "garbage.pt: not a TorchScript module",
        ),
        (
            yaml.replace(&convbn_path, &fixture("noparams.pt").display().to_string()),
            "the module has no parameters",
        ),
        (
            yaml.replace(&convbn_path, &fixture("nanout.pt").display().to_string()),
            "is not finite",
        ),
        (
            yaml.replace(&convbn_path, &fixture("mlp.pt").display().to_string()),
            "the module fails on a batch of the data, shape [2, 1, 28, 28]",
        ),
        (
            yaml.replace(&images, &fixture("rows.safetensors").display().to_string()),
            "the module fails on a batch of the data, shape [2, 20]",
        ),
        (
            yaml.replace(
                &images,
                &fixture("golden.safetensors").display().to_string(),
            ),
            "key x_train is missing (the file holds direction, sgd_two_steps",
        ),
        (
            yaml.replace(
                "model: {arch: torchscript, path: ",
                "model: {arch: torchscript, depth: 8, path: ",
            ),
            "model.depth = 8: expected no depth",
        ),
        (
            yaml.replace(&format!(", path: {convbn_path}"), ""),
            "model.path = (missing)",
        ),
    ];
    for (text, expected) in cases {
        refused_up_front(d, &text, expected);
    }
}

#[test]
fn paths_are_relative_to_the_experiment_file() {
    let tmp = tempfile::tempdir().unwrap();
    let nets = tmp.path().join("project/nets");
    std::fs::create_dir_all(&nets).unwrap();
    std::fs::copy(fixture("convbn.pt"), nets.join("my_net.pt")).unwrap();
    std::fs::copy(fixture("images.safetensors"), nets.join("data.safetensors")).unwrap();
    let yaml = write(
        &tmp.path().join("project/experiments"),
        "mine.yaml",
        "name: mine\n\
         data: {dataset: tensors, path: ../nets/data.safetensors}\n\
         model: {arch: torchscript, path: ../nets/my_net.pt}\n\
         train: {epochs: 1, batch_size: 64, lr: 0.05}\n",
    );
    let e = Experiment::load(&yaml, &[]).unwrap();
    assert_eq!(
        e.model.path.unwrap().canonicalize().unwrap(),
        nets.join("my_net.pt").canonicalize().unwrap()
    );
    assert_eq!(
        e.data.path.unwrap().canonicalize().unwrap(),
        nets.join("data.safetensors").canonicalize().unwrap()
    );
}

/// The zoo's PreResNet-8, exported to TorchScript by the fixture script with the same tensor
/// names and filled with valleys' own initial weights for the seed, trains like the native
/// model: same data order, augmentation and schedule, so the same numbers up to float
/// rounding. (SWA is off: the average's BN statistics are recomputed as update_bn does for a
/// TorchScript model, per-batch averages, and as exact pass moments for the zoo.)
#[test]
fn the_zoo_preresnet8_as_torchscript_trains_like_the_native_one() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let native_yaml = "\
name: native
seed: 3
data: {dataset: fashion-mnist, train_subset: 1024, test_subset: 512}
model: {arch: preresnet, depth: 8}
train: {epochs: 2, batch_size: 128, lr: 0.05, weight_decay: 5.0e-4}
swa: {enabled: false}
eval: {train_subset: 512}
";
    // valleys' initial weights for seed 3, as its engine draws them.
    tch::manual_seed(3);
    let native_exp = Experiment::from_yaml(native_yaml, "native.yaml", &[]).unwrap();
    let native = Model::build(&native_exp.model, &[1, 28, 28], 10, tch::Device::Cpu).unwrap();
    let script_yaml = native_yaml.replace("name: native", "name: script").replace(
        "model: {arch: preresnet, depth: 8}",
        &format!(
            "model: {{arch: torchscript, path: {}}}",
            d.join("init.pt").display()
        ),
    );
    let mut script_exp = Experiment::from_yaml(&script_yaml, "script.yaml", &[]).unwrap();
    script_exp.model.path = Some(fixture("preresnet8.pt"));
    let script = Model::build(&script_exp.model, &[1, 28, 28], 10, tch::Device::Cpu).unwrap();
    let theirs: std::collections::HashMap<String, tch::Tensor> =
        script.named_state().into_iter().collect();
    for (name, tensor) in native.named_state() {
        let target = theirs
            .get(&name)
            .unwrap_or_else(|| panic!("the exported PreResNet-8 has no {name}"));
        assert_eq!(target.size(), tensor.size(), "{name}");
        tch::no_grad(|| target.shallow_clone().copy_(&tensor));
    }
    script
        .script_module()
        .unwrap()
        .save(&d.join("init.pt"))
        .unwrap();

    let native_run = train(d, native_yaml, "native");
    let script_run = train(d, &script_yaml, "script");
    let (a, b) = (rows(&native_run), rows(&script_run));
    assert_eq!(a.iter().map(|r| r.epoch).max(), Some(2));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.epoch, x.iterate, x.split), (y.epoch, y.iterate, y.split));
        assert!((x.loss - y.loss).abs() < 1e-4, "{x:?} vs {y:?}");
        assert!((x.acc - y.acc).abs() < 1e-4, "{x:?} vs {y:?}");
    }
}

/// A Python with torch 2.11.0 for scripts/export_model.py: VALLEYS_TEST_PYTHON, or the
/// benchmarks' bench/.venv (make bench); None (the test says it was skipped) otherwise.
fn python_with_torch() -> Option<PathBuf> {
    let candidates = std::env::var_os("VALLEYS_TEST_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/.venv/bin/python")]);
    candidates.into_iter().find(|python| {
        std::process::Command::new(python)
            .args([
                "-c",
                "import torch, safetensors; assert torch.__version__.startswith('2.11.0')",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn export_model_py_writes_a_module_and_data_that_valleys_trains() {
    let Some(python) = python_with_torch() else {
        eprintln!(
            "skipped: no Python with torch 2.11.0 and safetensors (set VALLEYS_TEST_PYTHON or run make bench once)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "mypkg/__init__.py", "");
    write(
        d,
        "mypkg/nets.py",
        "import torch, torch.nn as nn\n\
         def build_net():\n\
         \x20   return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),\n\
         \x20       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(8, 4))\n\
         def traced_bn():\n\
         \x20   return nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.BatchNorm1d(4))\n\
         class Fake:\n\
         \x20   def __init__(self, root, train=True):\n\
         \x20       n = 48 if train else 16\n\
         \x20       g = torch.Generator().manual_seed(int(train))\n\
         \x20       self.data = (torch.rand(n, 8, 8, 3, generator=g) * 255).to(torch.uint8).numpy()\n\
         \x20       self.targets = [i % 4 for i in range(n)]\n",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/export_model.py");
    let export = |args: &[&str]| {
        std::process::Command::new(&python)
            .arg(&script)
            .args(args)
            .current_dir(d)
            .output()
            .unwrap()
    };
    let out = export(&[
        "mypkg.nets:build_net",
        "--out",
        "nets/net.pt",
        "--data",
        "mypkg.nets:Fake:/nowhere",
    ]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("scripted"), "{printed}");
    assert!(
        printed.contains("model:\n  arch: torchscript\n  path: nets/net.pt"),
        "{printed}"
    );
    // A traced module with batch norm keeps its tracing mode: refused, in one line.
    let out = export(&[
        "mypkg.nets:traced_bn",
        "--out",
        "nets/t.pt",
        "--input-shape",
        "3,2,2",
        "--trace",
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("make the model scriptable"), "{said}");
    assert!(!d.join("nets/t.pt").exists());

    write(
        d,
        "mine.yaml",
        "name: mine\n\
         data: {dataset: tensors, path: nets/data.safetensors, augment: {crop_padding: 2, flip: true}}\n\
         model: {arch: torchscript, path: nets/net.pt}\n\
         train: {epochs: 2, batch_size: 16, lr: 0.05}\n",
    );
    let said = run(d, &["run", "mine.yaml", "--headless", "--out", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout
            .contains("net.pt (TorchScript, BN, 276 parameters)"),
        "{}",
        said.stdout
    );
}

/// A module run only as the plan will run it fails later; the up-front check runs it in
/// training mode with a backward pass on every batch size the run uses, so each of these is
/// refused in one line with exit 2 before anything is created.
#[test]
fn modules_that_fail_only_in_training_on_a_short_batch_or_with_integer_logits_are_refused_up_front()
{
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let images = fixture("images.safetensors").display().to_string();
    let experiment = |module: &str, data_extra: &str, batch: u32, extra: &str| {
        format!(
            "name: bad\ndata: {{dataset: tensors, path: {images}{data_extra}}}\nmodel: {{arch: torchscript, path: {}}}\ntrain: {{epochs: 1, batch_size: {batch}, lr: 0.05}}\n{extra}",
            fixture(module).display()
        )
    };
    let twin = format!(
        "swa: {{start_epoch: 1}}\nablation: {{twin: true, twin_model: {}}}\n",
        fixture("trainfail.pt").display()
    );
    let cases: Vec<(String, &str)> = vec![
        (
            experiment("trainfail.pt", "", 64, ""),
            "in training mode on a batch of 64 (the batch size): the module fails: shape '[3, -1]' is invalid",
        ),
        // 300 samples in batches of 64: four of 64, then one of 44.
        (
            experiment("shortbatch.pt", ", train_subset: 300", 64, ""),
            "in training mode on a batch of 44 (the last batch of each epoch)",
        ),
        (
            experiment("intlogits.pt", "", 64, ""),
            "the module's logits are Int64; expected float32",
        ),
        (
            experiment("zerosize.pt", "", 64, ""),
            "every one of the module's 2 parameters holds no element",
        ),
        // The named no-BN twin is checked as the run's own module is.
        (
            experiment("convbn.pt", "", 64, &twin),
            "trainfail.pt: in training mode on a batch of 64",
        ),
        // A zoo model's twin is derived; a twin module would make a config valleys refuses.
        (
            format!(
                "name: zoo\ndata: {{dataset: fashion-mnist, train_subset: 256}}\nmodel: {{arch: mlp, hidden: 8, norm: batch}}\ntrain: {{epochs: 1, batch_size: 64, lr: 0.1}}\nablation: {{twin_model: {}}}\n",
                fixture("convnobn.pt").display()
            ),
            "ablation.twin_model",
        ),
        // BN ablations of a module without BN.
        (
            experiment("mlp.pt", "", 64, "ablation: {twin: false}\n")
                .replace(&images, &fixture("rows.safetensors").display().to_string()),
            "mlp.pt: the module has no batch norm",
        ),
    ];
    for (text, expected) in cases {
        refused_up_front(d, &text, expected);
    }
    // Without a short batch (384 samples in batches of 64) the same module trains.
    let fine = experiment("shortbatch.pt", "", 64, "");
    train(d, &fine, "fine");
}

/// A failure no check can foresee (the module raises on its 13th training call) ends the run
/// with one line naming the module, the epoch and the batch; the checkpoint holds the last
/// completed batch and the run can be probed. In a twin, the same line says it was the twin.
#[test]
fn a_module_that_fails_later_ends_the_run_in_one_line_with_its_checkpoint_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let yaml = convbn()
        .replace(
            &fixture("convbn.pt").display().to_string(),
            &fixture("laterfail.pt").display().to_string(),
        )
        .replace("epochs: 2", "epochs: 3");
    write(d, "later.yaml", &yaml);
    let said = run(d, &["run", "later.yaml", "--headless", "--out", "r"]);
    assert_eq!(said.code, Some(1), "{said:?}");
    let line = said.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    // Six batches an epoch: the 13th training call is epoch 3's first batch.
    for part in [
        "the model laterfail.pt",
        "failed in epoch 3, batch 1 of 6 (a training step)",
        "injected failure on training call 13",
        "the checkpoint holds the last completed batch",
    ] {
        assert!(line.contains(part), "{part}: {line}");
    }
    assert!(
        !line.contains("panicked") && !line.contains("Exception raised"),
        "{line}"
    );
    let run_dir = RunDir::open(&d.join("r")).unwrap();
    assert!(
        run_dir
            .checkpoints_dir()
            .join("latest.safetensors")
            .is_file()
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r/run.json")).unwrap()).unwrap();
    assert_eq!(info["outcome"]["outcome"], "failed");
    let probed = run(d, &["probe", "r", "--points", "5"]);
    assert_eq!(probed.code, Some(0), "{probed:?}");

    // The same module as the no-BN twin of the fixture net.
    let twin = format!(
        "{}ablation: {{twin: true, twin_model: {}, directions: 2}}\n",
        convbn().replace("epochs: 2", "epochs: 3"),
        fixture("laterfail.pt").display()
    );
    write(d, "twin.yaml", &twin);
    let said = run(d, &["run", "twin.yaml", "--headless", "--out", "t"]);
    assert_eq!(said.code, Some(1), "{said:?}");
    let line = said.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("the no-BN twin in t/twin-nobn failed: the model laterfail.pt"),
        "{line}"
    );
    assert!(
        d.join("t/checkpoints/final.safetensors").is_file(),
        "the run itself is whole"
    );
}
