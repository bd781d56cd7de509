//! Batch-norm ablations: the twin differs only by its BN layers, stale and recomputed SWA
//! statistics differ, frozen BN affine parameters stay put, and every stored summary number
//! can be recomputed from the stored probe files.

mod common;

use std::path::Path;
use tch::{Device, Tensor};
use valleys::ablation::{self, AblationKind};
use valleys::config::Experiment;
use valleys::model::Model;
use valleys::protocol::{Iterate, Split};
use valleys::rundir::RunDir;

const TINY: &str = "\
name: tiny
seed: 4
data: {dataset: fashion-mnist, train_subset: 512, test_subset: 256}
model: {arch: mlp, hidden: 32, norm: batch}
train: {epochs: 3, batch_size: 64, lr: 0.05}
swa: {start_epoch: 2, lr: 0.02, stale_bn: true}
eval: {train_subset: 256}
ablation:
  directions: 2
  probe: {from: -3, to: 3, points: 7, train_subset: 128, test_subset: 128, bn_subset: 128}
";

fn valleys(dir: &Path, args: &[&str]) -> std::process::Output {
    common::valleys(dir).args(args).output().unwrap()
}

#[test]
fn the_twin_has_no_bn_and_starts_from_the_same_other_parameters() {
    let exp = Experiment::from_yaml(TINY, "t.yaml", &[]).unwrap();
    let twin = ablation::twin_of(&exp);
    assert_eq!(twin.model.norm, valleys::config::Norm::None);
    assert_eq!(
        (twin.seed, twin.train.clone(), twin.data.clone()),
        (exp.seed, exp.train.clone(), exp.data.clone())
    );
    let generator = common::torch_generator();
    tch::manual_seed(exp.seed as i64);
    let with = Model::build(&exp.model, &[1, 28, 28], 10, Device::Cpu).unwrap();
    tch::manual_seed(twin.seed as i64);
    let without = Model::build(&twin.model, &[1, 28, 28], 10, Device::Cpu).unwrap();
    drop(generator);
    assert!(with.has_bn() && !without.has_bn());
    let state = |m: &Model| -> std::collections::HashMap<String, Tensor> {
        m.named_state().into_iter().collect()
    };
    let (a, b) = (state(&with), state(&without));
    for p in with.params().iter().filter(|p| !p.role.is_bn()) {
        assert!(
            a[&p.name].equal(&b[&p.name]),
            "{} starts from the same values",
            p.name
        );
    }
}

#[test]
fn a_run_and_its_twin_are_compared_and_the_summary_recomputes_from_the_probe_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("x.yaml"), TINY).unwrap();
    let out = valleys(d, &["run", "x.yaml", "--headless", "--out", "r"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("training the no-BN twin"), "{stdout}");
    assert!(
        stdout.contains("SWA gain in test loss (SGD − SWA): with BN"),
        "{stdout}"
    );

    let run = RunDir::open(&d.join("r")).unwrap();
    // Stale and recomputed SWA statistics give different losses.
    let rows = run.read_metrics().unwrap();
    let last = |it: Iterate| {
        rows.iter()
            .rev()
            .find(|r| r.iterate == it && r.split == Split::Test)
            .unwrap()
            .loss
    };
    assert_ne!(last(Iterate::Swa), last(Iterate::SwaStale));
    // The twin trained with no BN at all.
    let twin_run = RunDir::open(&ablation::twin_dir(&run)).unwrap();
    let twin_exp = Experiment::load(&twin_run.config_path(), &[]).unwrap();
    assert_eq!(twin_exp.model.norm, valleys::config::Norm::None);
    let twin_ckpt =
        Tensor::read_safetensors(twin_run.checkpoints_dir().join("final.safetensors")).unwrap();
    assert!(
        twin_ckpt.iter().all(|(name, _)| !name.contains("bn")),
        "no BN tensor in the twin"
    );

    let (stored, unreadable) = ablation::read_all(&run);
    assert!(unreadable.is_empty(), "{unreadable:?}");
    let kinds: Vec<AblationKind> = stored.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [
            AblationKind::Groups,
            AblationKind::BnModes,
            AblationKind::Summary
        ]
    );
    let summary = stored.last().unwrap();
    let names: Vec<(&str, &str)> = summary
        .arms
        .iter()
        .map(|a| (a.name.as_str(), a.centre.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("bn", "sgd"),
            ("bn", "swa"),
            ("bn-only", "sgd"),
            ("bn-only", "swa"),
            ("non-bn", "sgd"),
            ("non-bn", "swa"),
            ("none", "sgd"),
            ("none", "swa")
        ]
    );
    for arm in &summary.arms {
        let probes = ablation::arm_probes(run.root(), arm);
        assert_eq!(probes.len(), 2, "{}: every probe file is there", arm.name);
        assert_eq!(
            ablation::arm(&arm.name, &arm.run, &probes),
            *arm,
            "{} recomputes",
            arm.name
        );
        let group = probes[0].spec.params;
        let want = match arm.name.as_str() {
            "bn-only" => valleys::probe::ParamGroup::Bn,
            "non-bn" => valleys::probe::ParamGroup::NonBn,
            _ => valleys::probe::ParamGroup::All,
        };
        assert_eq!(group, want);
    }
    assert!(summary.swa_gain.bn.is_some() && summary.swa_gain.none.is_some());
    let csv =
        std::fs::read_to_string(ablation::dir(&run).join(format!("{}.csv", summary.id))).unwrap();
    assert_eq!(csv.lines().count(), 9);
}

#[test]
fn frozen_bn_affine_parameters_stay_at_one_and_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("x.yaml"),
        TINY.replace("ablation:", "unused:")
            .split("unused:")
            .next()
            .unwrap(),
    )
    .unwrap();
    let out = valleys(
        d,
        &[
            "run",
            "x.yaml",
            "--headless",
            "--out",
            "f",
            "--set",
            "train.freeze_bn_affine=true",
            "--set",
            "train.epochs=1",
            "--set",
            "swa.start_epoch=1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ckpt: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(d.join("f/checkpoints/final.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    assert!(ckpt["sgd/bn1.weight"].eq(1.0).all().int64_value(&[]) == 1);
    assert!(ckpt["sgd/bn1.bias"].eq(0.0).all().int64_value(&[]) == 1);
    assert!(
        ckpt["sgd/bn1.running_mean"]
            .abs()
            .sum(tch::Kind::Float)
            .double_value(&[])
            > 0.0,
        "statistics still track"
    );
    let _generator = common::torch_generator();
    tch::manual_seed(4);
    let exp = Experiment::load(&d.join("f/config.yaml"), &[]).unwrap();
    let fresh = Model::build(&exp.model, &[1, 28, 28], 10, Device::Cpu).unwrap();
    let init: std::collections::HashMap<String, Tensor> = fresh.named_state().into_iter().collect();
    assert!(
        !ckpt["sgd/fc1.weight"].equal(&init["fc1.weight"]),
        "the other parameters train"
    );
}

#[test]
fn the_live_run_trains_its_twin_after_itself_on_a_cpu_and_ablates_against_it() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use valleys::protocol::{Command, Event, Outcome};
    use valleys::worker::{Worker, WorkerSpec};
    // The worker builds and trains in this process, drawing from the generator throughout.
    let _generator = common::torch_generator();
    let tmp = tempfile::tempdir().unwrap();
    let exp = Experiment::from_yaml(TINY, "t.yaml", &[]).unwrap();
    let run_dir = RunDir::create(&tmp.path().join("live"), &exp).unwrap();
    let data = valleys::worker::WorkerData::Raw(valleys::data::read(&exp.data, exp.seed).unwrap());
    let mut worker = Worker::spawn(WorkerSpec {
        experiment: exp,
        device: valleys::runtime::choose_device(valleys::runtime::DeviceRequest::Cpu).unwrap(),
        data,
        run_dir: run_dir.clone(),
        start: valleys::worker::Start::New,
        stop: Arc::new(AtomicBool::new(false)),
        argv: vec![],
    })
    .unwrap();
    worker.commands.send(Command::StartTwin).unwrap();
    let mut next = || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if let Ok(e) = worker.events.try_recv() {
                return e;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no event within two minutes"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    };
    let mut main_finished = false;
    loop {
        match next() {
            Event::Finished(Outcome::Completed) => main_finished = true,
            Event::Twin(event) => {
                if let Event::Ready(_) = *event {
                    assert!(main_finished, "on a CPU the twin waits for the run");
                }
                if let Event::Finished(outcome) = *event {
                    assert_eq!(outcome, Outcome::Completed);
                    break;
                }
            }
            Event::Finished(other) => panic!("{other:?}"),
            _ => {}
        }
    }
    worker
        .commands
        .send(Command::Ablate {
            kind: AblationKind::Summary,
            directions: Some(2),
        })
        .unwrap();
    let result = loop {
        if let Event::AblationFinished { result, .. } = next() {
            break result;
        }
    };
    assert!(
        result
            .arms
            .iter()
            .any(|a| a.name == "none" && a.run == "twin-nobn")
    );
    worker.finish();
}
