//! Probes end to end: a probe never disturbs training, interpolation ends exactly at the two
//! iterates, the toy's curve matches its closed form, and batch summaries match the stored
//! probe files.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command as Process;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tch::{Device, Tensor};
use valleys::config::Experiment;
use valleys::probe::offline::SavedRun;
use valleys::probe::summary::{BatchSummary, summarise};
use valleys::probe::{DirectionKind, ProbeResult, ProbeSpec, store};
use valleys::protocol::{Command, Event, Iterate, Outcome, ProbeRequest, Split};
use valleys::rundir::RunDir;
use valleys::runtime::{self, DeviceRequest};
use valleys::worker::{Worker, WorkerSpec};

const TINY: &str = "\
name: tiny
seed: 3
data: {dataset: fashion-mnist, train_subset: 512, test_subset: 256}
model: {arch: mlp, hidden: 32, norm: batch}
train: {epochs: 3, batch_size: 64, lr: 0.05, weight_decay: 5.0e-4}
swa: {start_epoch: 2, lr: 0.02}
eval: {train_subset: 256}
";

fn tiny() -> Experiment {
    Experiment::from_yaml(TINY, "tiny.yaml", &[]).unwrap()
}

fn next(worker: &mut Worker) -> Event {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(e) = worker.events.try_recv() {
            return e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no event within two minutes"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn wait_for(worker: &mut Worker, mut want: impl FnMut(&Event) -> bool) -> Event {
    loop {
        let e = next(worker);
        if let Event::Finished(Outcome::Failed { message }) = &e {
            panic!("the run failed: {message}");
        }
        if want(&e) {
            return e;
        }
    }
}

fn start(root: &Path) -> Worker {
    let exp = tiny();
    let run_dir = RunDir::create(root, &exp).unwrap();
    let data = valleys::worker::WorkerData::Raw(valleys::data::read(&exp.data, exp.seed).unwrap());
    Worker::spawn(WorkerSpec {
        experiment: exp,
        data,
        start: valleys::worker::Start::New,
        device: runtime::choose_device(DeviceRequest::Cpu).unwrap(),
        run_dir,
        stop: Arc::new(AtomicBool::new(false)),
        argv: vec![],
    })
    .unwrap()
}

fn tensors(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

fn probe(direction: DirectionKind, points: usize) -> Command {
    Command::Probe(Box::new(ProbeRequest {
        spec: ProbeSpec {
            direction,
            points: Some(points),
            train_subset: Some(128),
            ..Default::default()
        },
        directions: None,
    }))
}

#[test]
fn a_probe_in_the_middle_of_training_leaves_the_run_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    // Undisturbed run.
    let mut plain = start(&tmp.path().join("plain"));
    wait_for(&mut plain, |e| matches!(e, Event::Finished(_)));
    plain.finish();
    // The same run, probed after its first progress report and again after the average starts.
    let mut probed = start(&tmp.path().join("probed"));
    wait_for(&mut probed, |e| matches!(e, Event::Progress(_)));
    probed
        .commands
        .send(probe(DirectionKind::Uniform, 5))
        .unwrap();
    wait_for(&mut probed, |e| matches!(e, Event::ProbeFinished(_)));
    wait_for(
        &mut probed,
        |e| matches!(e, Event::Metric(r) if r.iterate == Iterate::Swa),
    );
    probed
        .commands
        .send(probe(DirectionKind::Gaussian, 5))
        .unwrap();
    wait_for(&mut probed, |e| matches!(e, Event::ProbeFinished(_)));
    wait_for(&mut probed, |e| matches!(e, Event::Finished(_)));
    // After training the worker still answers probes.
    probed
        .commands
        .send(probe(DirectionKind::Interp, 5))
        .unwrap();
    let Event::ProbeFinished(result) =
        wait_for(&mut probed, |e| matches!(e, Event::ProbeFinished(_)))
    else {
        unreachable!()
    };
    assert_eq!(result.centre.iterate, "swa→sgd");
    probed.finish();

    let a = tensors(&tmp.path().join("plain/checkpoints/final.safetensors"));
    let b = tensors(&tmp.path().join("probed/checkpoints/final.safetensors"));
    assert_eq!(a.len(), b.len());
    assert!(
        a.keys().any(|k| k.starts_with("momentum/")) && a.keys().any(|k| k.starts_with("swa/"))
    );
    for (key, t) in &a {
        assert!(t.equal(&b[key]), "{key} differs after probing");
    }
    let rows = |name: &str| {
        RunDir::open(&tmp.path().join(name))
            .unwrap()
            .read_metrics()
            .unwrap()
    };
    let losses =
        |rows: Vec<valleys::protocol::MetricRow>| rows.iter().map(|r| r.loss).collect::<Vec<_>>();
    assert_eq!(
        losses(rows("plain")),
        losses(rows("probed")),
        "identical metrics"
    );
    let stored = store::read_all(&RunDir::open(&tmp.path().join("probed")).unwrap()).0;
    assert_eq!(stored.len(), 3);
}

#[test]
fn interpolation_starts_at_the_swa_point_and_ends_exactly_at_sgd() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("run");
    let mut worker = start(&root);
    wait_for(&mut worker, |e| matches!(e, Event::Finished(_)));
    worker.finish();

    let saved = SavedRun::load(&root, "final", Device::Cpu).unwrap();
    let swa = saved.swa.as_ref().expect("the average holds snapshots");
    let spec = ProbeSpec {
        direction: DirectionKind::Interp,
        bn: valleys::probe::BnMode::Frozen,
        points: Some(21),
        ..Default::default()
    };
    let mut quiet = Quiet;
    let result =
        valleys::probe::runner::run_one(&saved.context(), &spec, None, &mut quiet).unwrap();
    let at = |t: f64| *result.points.iter().find(|p| p.t == t).unwrap();
    // t = 0 is the SWA model with its own statistics: the run's last SWA test evaluation.
    let rows = saved.run.read_metrics().unwrap();
    let swa_test = rows
        .iter()
        .rev()
        .find(|r| r.iterate == Iterate::Swa && r.split == Split::Test)
        .unwrap();
    assert_eq!(at(0.0).test_loss, swa_test.loss);
    // The line's far end is the SGD weights to the last bit.
    let line_end = swa.flat().lerp(saved.sgd.flat(), 1.0);
    assert!(line_end.equal(saved.sgd.flat()));
    let distance = (saved.sgd.flat() - swa.flat()).norm().double_value(&[]);
    assert!((result.direction.norm - distance).abs() < 1e-6 * distance.max(1.0));
}

struct Quiet;

impl valleys::probe::runner::Observer for Quiet {
    fn started(&mut self, _: &str, _: &ProbeSpec, _: &[f64], _: f64) {}
    fn point(&mut self, _: &str, _: usize, _: &valleys::probe::ProbePoint) {}
    fn cancelled(&mut self) -> bool {
        false
    }
}

fn softplus(z: f64) -> f64 {
    if z > 30.0 { z } else { z.exp().ln_1p() }
}

#[test]
fn the_toy_curve_matches_its_closed_form() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("toy");
    let preset = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/paper/toy-2params.yaml"
    );
    let bin = env!("CARGO_BIN_EXE_valleys");
    let ok = Process::new(bin)
        .args(["run", preset, "--headless", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let probe = Process::new(bin)
        .args(["probe"])
        .arg(&out)
        .args([
            "--checkpoint",
            "final",
            "--direction",
            "uniform",
            "--range",
            "7.5",
            "--points",
            "31",
            "--device",
            "cpu",
        ])
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let stdout = String::from_utf8_lossy(&probe.stdout);
    assert!(stdout.contains("train c = "), "{stdout}");

    let run = RunDir::open(&out).unwrap();
    let result: ProbeResult = store::read_all(&run).0.pop().unwrap();
    assert_eq!(result.points.len(), 31);
    // The curve, recomputed here in double precision from the data, the averaged weights and
    // the direction: L(t) = mean over points of softplus(-z) for label 1, softplus(z) for 0,
    // z = (w + t dw) x + (b + t db).
    let exp = Experiment::load(&run.config_path(), &[]).unwrap();
    let raw = valleys::data::read(&exp.data, exp.seed).unwrap();
    let valleys::data::Features::Vectors { values, .. } = &raw.train.features else {
        panic!()
    };
    let ckpt = tensors(&run.checkpoints_dir().join("final.safetensors"));
    let w = ckpt["swa/linear.weight"].double_value(&[0, 0]);
    let b = ckpt["swa/linear.bias"].double_value(&[0]);
    let saved = SavedRun::load(&out, "final", Device::Cpu).unwrap();
    let d = valleys::probe::direction::random(
        DirectionKind::Uniform,
        Default::default(),
        Default::default(),
        Default::default(),
        exp.seed,
        saved.swa.as_ref().unwrap(),
    );
    let (dw, db) = (d.vector.double_value(&[0]), d.vector.double_value(&[1]));
    assert!(((dw * dw + db * db).sqrt() - 1.0).abs() < 1e-6 && dw > 0.0 && db > 0.0);
    for p in &result.points {
        let loss: f64 = values
            .iter()
            .zip(&raw.train.labels)
            .map(|(&x, &y)| {
                let z = (w + p.t * dw) * f64::from(x) + (b + p.t * db);
                if y == 1 { softplus(-z) } else { softplus(z) }
            })
            .sum::<f64>()
            / values.len() as f64;
        assert!(
            (p.train_loss - loss).abs() < 1e-5 * loss.max(1.0),
            "t = {}: {} vs {loss}",
            p.t,
            p.train_loss
        );
    }
}

#[test]
fn a_batch_summary_is_recomputed_from_its_stored_probes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("run");
    let mut worker = start(&root);
    wait_for(&mut worker, |e| matches!(e, Event::Finished(_)));
    worker
        .commands
        .send(Command::Probe(Box::new(ProbeRequest {
            spec: ProbeSpec {
                points: Some(9),
                train_subset: Some(128),
                ..Default::default()
            },
            directions: Some(3),
        })))
        .unwrap();
    let Event::ProbeBatchFinished(summary) =
        wait_for(&mut worker, |e| matches!(e, Event::ProbeBatchFinished(_)))
    else {
        unreachable!()
    };
    worker.finish();
    assert_eq!(summary.centres.len(), 2, "SGD and SWA centres");
    let run = RunDir::open(&root).unwrap();
    let text =
        std::fs::read_to_string(store::dir(&run).join(format!("{}.json", summary.id))).unwrap();
    let stored: BatchSummary = serde_json::from_str(&text).unwrap();
    assert_eq!(stored, *summary);
    let probes = store::read_all(&run).0;
    assert_eq!(probes.len(), 6);
    for centre in &stored.centres {
        let mine: Vec<ProbeResult> = probes
            .iter()
            .filter(|p| centre.probes.contains(&p.id))
            .cloned()
            .collect();
        assert_eq!(mine.len(), 3);
        assert_eq!(summarise(&centre.centre, &mine), *centre);
        let flagged = mine
            .iter()
            .filter(|p| p.train_score.as_ref().is_some_and(|s| s.c >= 3.0))
            .count();
        assert_eq!(flagged, centre.stats.asymmetric);
    }
}

#[test]
fn a_plane_asked_of_the_live_run_reports_every_point_and_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let mut worker = start(&tmp.path().join("r"));
    wait_for(&mut worker, |e| matches!(e, Event::Finished(_)));
    let spec = valleys::probe::plane::PlaneSpec {
        points: (4, 3),
        train_subset: Some(64),
        test_subset: Some(64),
        bn_subset: Some(128),
        ..Default::default()
    };
    worker
        .commands
        .send(Command::Plane(Box::new(spec)))
        .unwrap();
    let Event::PlaneStarted(header) =
        wait_for(&mut worker, |e| matches!(e, Event::PlaneStarted(_)))
    else {
        unreachable!()
    };
    assert_eq!((header.xs.len(), header.ys.len()), (4, 3));
    assert_eq!(header.markers.len(), 2, "SWA and SGD");
    let mut seen = std::collections::HashSet::new();
    let result = loop {
        match wait_for(&mut worker, |e| {
            matches!(
                e,
                Event::PlanePoint { .. } | Event::PlaneFinished(_) | Event::ProbeFailed { .. }
            )
        }) {
            Event::PlanePoint { id, i, j, point } => {
                assert_eq!(id, header.id);
                assert_eq!((point.x, point.y), (header.xs[i], header.ys[j]));
                assert!(seen.insert((i, j)), "({i}, {j}) twice");
            }
            Event::PlaneFinished(result) => break result,
            other => panic!("{other:?}"),
        }
    };
    worker.finish();
    assert_eq!(seen.len(), 12, "every point once");
    // What the events said is what was stored.
    let run = RunDir::open(&tmp.path().join("r")).unwrap();
    let (stored, problems) = valleys::probe::store::read_planes(&run);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(stored, vec![*result]);
}

/// The connect form's request on the live run: the live SGD iterate to the initial weights the
/// run kept (epoch 0 of its trajectory), stored in the run's connections/; an epoch it did not
/// keep fails alone, naming the epochs it has, and training goes on.
#[test]
fn a_live_connection_reaches_a_kept_epoch_and_a_missing_one_fails_alone() {
    use valleys::protocol::ConnectRequest;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("run");
    let mut worker = start(&root);
    wait_for(&mut worker, |e| {
        matches!(e, Event::CheckpointWritten { epoch: 1, .. })
    });
    let request = |b_epoch| {
        Command::Connect(Box::new(ConnectRequest {
            a: Iterate::Sgd,
            b: Iterate::Sgd,
            b_epoch,
            points: 3,
            bn: valleys::probe::BnMode::Recompute,
            curve_epochs: 0,
        }))
    };
    worker.commands.send(request(Some(7))).unwrap();
    let failed = wait_for(&mut worker, |e| matches!(e, Event::ProbeFailed { .. }));
    let Event::ProbeFailed { message } = failed else {
        unreachable!()
    };
    assert!(
        message.contains("epoch 7: the run kept its SGD iterate at epochs 0, 1"),
        "{message}"
    );
    worker.commands.send(request(Some(0))).unwrap();
    let finished = wait_for(&mut worker, |e| matches!(e, Event::ConnectFinished(_)));
    let Event::ConnectFinished(result) = finished else {
        unreachable!()
    };
    assert_eq!(result.b.checkpoint, "epoch-0000");
    assert_eq!(result.points.len(), 3);
    // From a trained iterate to the initial weights the loss rises (chance is ln 10 ≈ 2.3).
    assert!(
        result.points[2].train_loss > result.points[0].train_loss,
        "{:?}",
        result.points
    );
    assert!(
        root.join("connections")
            .join(format!("{}.json", result.id))
            .is_file()
    );
    let outcome = wait_for(&mut worker, |e| matches!(e, Event::Finished(_)));
    assert_eq!(outcome, Event::Finished(Outcome::Completed));
    worker.finish();
}
