//! Curvature checked against independent maths: the full Hessian of small models (a zoo MLP
//! with BN, a TorchScript conv net with BN, ≤ 5 000 parameters), built row by row by autograd
//! and diagonalised by `eigh` in double precision, against what `valleys curvature`
//! estimates with Lanczos, Hutchinson and SLQ; in both BN modes and on a parameter group.
//! Then the command end to end: its files, and bad input refused before anything is written.

mod common;

use std::path::Path;
use tch::{Device, Kind, Tensor};
use valleys::config::Experiment;
use valleys::config::curvature::{CurvatureBn, CurvatureCentres, CurvatureSpec};
use valleys::curvature::density;
use valleys::curvature::measure::{self, CurvatureObserver, Plan};
use valleys::data::dataset::Dataset;
use valleys::model::{Mode, Model};
use valleys::probe::ParamGroup;
use valleys::probe::runner::ProbeContext;

struct Quiet;

impl CurvatureObserver for Quiet {
    fn planned(&mut self, _plan: &Plan) {}
    fn progress(&mut self, _done: usize, _planned: usize, _what: &str) {}
    fn cancelled(&mut self) -> bool {
        false
    }
}

struct Setup {
    experiment: Experiment,
    data: Dataset,
    sgd: Model,
    scratch: Model,
}

/// The seeded model and its SGD steps: the checks' intervals are judged at these weights, so the
/// seed's draws are taken with the generator held (nothing else in this file draws in-process).
fn setup(yaml: &str) -> Setup {
    let _generator = common::torch_generator();
    tch::manual_seed(11);
    let experiment = Experiment::from_yaml(yaml, "check.yaml", &[]).unwrap();
    let data = Dataset::load(
        &experiment.data,
        experiment.eval.train_subset,
        experiment.seed,
        Device::Cpu,
    )
    .unwrap();
    let build = || {
        Model::build(
            &experiment.model,
            &data.input_shape,
            data.classes,
            Device::Cpu,
        )
        .unwrap()
    };
    let (sgd, scratch) = (build(), build());
    // Away from the initialisation, where the Hessian is more than a few large modes: a few
    // plain SGD steps on the training data.
    for step in 0..30 {
        let (x, y) = data.eval_batch(&data.train, (step * 64) % 448, 64);
        let logits = sgd.forward(&x, Mode::Train);
        let (loss, _) = sgd
            .objective()
            .loss_and_correct(&logits, &y, tch::Reduction::Mean);
        let g = sgd.flat_grad(&loss);
        tch::no_grad(|| {
            let _ = sgd.flat().shallow_clone().f_sub_(&(g * 0.2)).unwrap();
        });
    }
    Setup {
        experiment,
        data,
        sgd,
        scratch,
    }
}

fn context(s: &Setup) -> ProbeContext<'_> {
    ProbeContext {
        data: &s.data,
        sgd: &s.sgd,
        swa: None,
        scratch: &s.scratch,
        seed: s.experiment.seed,
        eval_batch: 256,
        bn_pass: valleys::train::swa::bn_pass(&s.experiment, 0),
        epoch: 1,
        step: 30,
        swa_n: 0,
        source: "test".into(),
    }
}

/// The exact Hessian of the mean loss over the sample set (cut into `batches` equal batches,
/// as the job cuts it), restricted to `group`: one backward pass per row through the
/// gradient's graph, in the model's own float32, returned in double precision.
fn exact_hessian(
    s: &Setup,
    samples: usize,
    batches: usize,
    mode: Mode,
    group: ParamGroup,
) -> (Tensor, Tensor) {
    let set = &s.data.train_sample_sets(samples, 1, s.experiment.seed)[0];
    exact_hessian_on(s, set, samples, batches, mode, group)
}

fn exact_hessian_on(
    s: &Setup,
    set: &valleys::data::dataset::DeviceSplit,
    samples: usize,
    batches: usize,
    mode: Mode,
    group: ParamGroup,
) -> (Tensor, Tensor) {
    let model = &s.sgd;
    let per = (samples / batches) as i64;
    let mut loss = Tensor::zeros([], (Kind::Float, Device::Cpu));
    for b in 0..batches as i64 {
        let (x, y) = s.data.eval_batch(set, b * per, per);
        let logits = model.forward(&x, mode);
        let (l, _) = model
            .objective()
            .loss_and_correct(&logits, &y, tch::Reduction::Mean);
        loss += l / batches as f64;
    }
    let handles = model.param_handles();
    let parts = Tensor::run_backward(&[&loss], handles, true, true);
    let g = Tensor::cat(
        &parts.iter().map(|p| p.reshape([-1])).collect::<Vec<_>>(),
        0,
    );
    let keep: Vec<i64> = {
        let mask = valleys::probe::direction::group_mask(model, group);
        let m = Vec::<f32>::try_from(&mask).unwrap();
        (0..m.len() as i64)
            .filter(|&i| m[i as usize] > 0.0)
            .collect()
    };
    let rows: Vec<Tensor> = keep
        .iter()
        .map(|&i| {
            let parts = Tensor::run_backward(&[g.get(i)], handles, true, false);
            let row = Tensor::cat(
                &parts
                    .iter()
                    .zip(model.params())
                    .map(|(p, info)| {
                        if p.defined() {
                            p.reshape([-1])
                        } else {
                            Tensor::zeros([info.numel], (Kind::Float, Device::Cpu))
                        }
                    })
                    .collect::<Vec<_>>(),
                0,
            );
            row.index_select(0, &Tensor::from_slice(&keep))
        })
        .collect();
    let h = Tensor::stack(&rows, 0).to_kind(Kind::Double);
    // Symmetric up to float32 rounding.
    ((&h + h.tr()) / 2.0, Tensor::from_slice(&keep))
}

struct Exact {
    /// Descending.
    values: Vec<f64>,
    vectors: Tensor,
    trace: f64,
}

fn diagonalise(h: &Tensor) -> Exact {
    let (values, vectors) = h.linalg_eigh("L");
    let n = values.size()[0];
    let order = Tensor::arange_start_step(n - 1, -1, -1, (Kind::Int64, Device::Cpu));
    Exact {
        values: Vec::<f64>::try_from(&values.index_select(0, &order)).unwrap(),
        vectors: vectors.index_select(1, &order),
        trace: h.trace().double_value(&[]),
    }
}

const MLP_BN: &str = "\
name: check
seed: 5
data: {dataset: fashion-mnist, train_subset: 512, test_subset: 128}
model: {arch: mlp, hidden: 4, norm: batch}
train: {epochs: 1, batch_size: 100, lr: 0.1}
eval: {train_subset: 200}
";

fn convbn() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/torchscript/convbn.pt");
    format!(
        "\
name: check
seed: 5
data: {{dataset: fashion-mnist, train_subset: 512, test_subset: 128}}
model: {{arch: torchscript, path: {}}}
train: {{epochs: 1, batch_size: 100, lr: 0.1}}
eval: {{train_subset: 200}}
",
        path.display()
    )
}

/// Runs a job on `s`'s SGD iterate and checks it against the exact Hessian.
fn check_against_exact(
    s: &Setup,
    bn: CurvatureBn,
    group: ParamGroup,
    (samples, batches): (usize, usize),
    trace_vectors: usize,
) {
    let ctx = context(s);
    let spec = CurvatureSpec {
        centre: CurvatureCentres::Sgd,
        params: group,
        bn,
        samples: Some(samples),
        sets: Some(1),
        top_k: Some(5),
        lanczos_steps: Some(300),
        tolerance: Some(1e-7),
        trace_vectors: Some(trace_vectors),
        density_runs: Some(8),
        density_steps: Some(40),
        noise_draws: Some(0),
        ascent_steps: Some(0),
        batch: Some(samples / batches),
        ..Default::default()
    };
    let defaults = measure::run_defaults(&s.experiment, &s.data);
    let result = measure::run(&ctx, &spec, defaults, None, &mut Quiet).unwrap();
    let mode = match bn {
        CurvatureBn::Batch => Mode::BatchStats,
        CurvatureBn::Eval => Mode::PlainEval,
    };
    let (h, keep) = exact_hessian(s, samples, batches, mode, group);
    let exact = diagonalise(&h);
    let label = format!("{} {bn:?} {group:?}", s.sgd.description());
    assert_eq!(result.dimension as i64, exact.vectors.size()[0], "{label}");
    let c = &result.centres[0];
    let set = &c.sets[0];
    // Top-k eigenvalues within 1e-4 relative.
    for (i, (got, want)) in set.eigenvalues.iter().zip(&exact.values).enumerate() {
        assert!(
            (got - want).abs() <= 1e-4 * want.abs().max(exact.values[0] * 1e-3),
            "{label}: λ{} {got} against the exact {want}",
            i + 1
        );
    }
    // Eigenvectors, where the eigenvalue is apart from its neighbours (a pair closer than
    // the tolerance has no single eigenvector to match).
    let ctx_vectors = measure::top_eigenvectors(&ctx, &spec, defaults).unwrap();
    for i in 0..5usize {
        let gap = [i.checked_sub(1), Some(i + 1)]
            .into_iter()
            .flatten()
            .map(|j| (exact.values[i] - exact.values[j]).abs())
            .fold(f64::INFINITY, f64::min);
        if gap < 1e-3 * exact.values[0] {
            continue;
        }
        let truth = exact.vectors.select(1, i as i64);
        let got = ctx_vectors
            .get(i as i64)
            .index_select(0, &keep)
            .to_kind(Kind::Double);
        let cos = got.dot(&truth).abs().double_value(&[]) / got.norm().double_value(&[]);
        assert!(cos > 0.999, "{label}: eigenvector {} |cos| {cos}", i + 1);
    }
    // The trace within its interval, and within 1% with this many vectors.
    let trace = set.trace.as_ref().unwrap().trace;
    let interval = trace.interval.unwrap();
    assert!(
        interval.contains(exact.trace),
        "{label}: exact trace {} outside [{}, {}]",
        exact.trace,
        interval.lo,
        interval.hi
    );
    // Within 1% where that many vectors allow it (the MLP's off-diagonal mass is small; the
    // conv net's eval-mode Hessian would need about 4 000 for 1%, so there it is the interval).
    let tolerance = if trace_vectors >= 300 && result.dimension > 3000 {
        0.01
    } else {
        0.03
    };
    assert!(
        (trace.value - exact.trace).abs() <= tolerance * exact.trace.abs(),
        "{label}: trace {} against the exact {}",
        trace.value,
        exact.trace
    );
    // The SLQ density within W1 ≤ 2% of the spectrum's width of the exact spectral measure.
    let runs: Vec<_> = set.density.iter().collect();
    let estimated = density::pooled(&runs);
    let n = exact.values.len() as f64;
    let truth: Vec<(f64, f64)> = exact.values.iter().map(|&x| (x, 1.0 / n)).collect();
    let w1 = density::wasserstein1(&estimated, &truth);
    let width = exact.values[0] - exact.values[exact.values.len() - 1];
    assert!(
        w1 <= 0.02 * width,
        "{label}: W1 {w1} against the width {width}"
    );
    eprintln!(
        "{label}: n {} λ {:?} trace {} ± {} (exact {}), W1 {:.2e} of width {:.3}",
        result.dimension,
        &set.eigenvalues,
        trace.value,
        (interval.hi - interval.lo) / 2.0,
        exact.trace,
        w1 / width,
        width
    );
}

#[test]
fn a_zoo_mlp_with_bn_matches_its_exact_hessian_in_both_bn_modes() {
    let s = setup(MLP_BN);
    assert!(s.sgd.num_params() <= 5000);
    check_against_exact(&s, CurvatureBn::Batch, ParamGroup::All, (200, 2), 300);
    check_against_exact(&s, CurvatureBn::Eval, ParamGroup::All, (200, 1), 300);
    check_against_exact(&s, CurvatureBn::Batch, ParamGroup::NonBn, (200, 1), 300);
}

#[test]
fn a_torchscript_conv_net_with_bn_matches_its_exact_hessian() {
    let s = setup(&convbn());
    assert!(s.sgd.num_params() <= 5000);
    check_against_exact(&s, CurvatureBn::Batch, ParamGroup::All, (48, 1), 400);
    check_against_exact(&s, CurvatureBn::Eval, ParamGroup::All, (48, 2), 400);
    check_against_exact(&s, CurvatureBn::Batch, ParamGroup::Bn, (48, 1), 400);
}

const TINY_BN4: &str = "\
name: tiny
data: {dataset: fashion-mnist, train_subset: 512, test_subset: 256}
model: {arch: mlp, hidden: 4, norm: batch}
train: {epochs: 2, batch_size: 64, lr: 0.05}
swa: {start_epoch: 2}
eval: {train_subset: 128}
";

#[test]
fn the_command_writes_its_numbers_and_refuses_bad_input_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::train(dir, TINY_BN4, "r");
    common::train(dir, &TINY_BN4.replace("norm: batch", "norm: none"), "nobn");
    let before = common::snapshot(dir);
    for (run, args, expected) in [
        (
            "r",
            vec!["--params", "bn", "--top-k", "9"],
            "curvature.top_k = 9: expected at most 8, the parameters in group bn",
        ),
        (
            "r",
            vec!["--rho", "0"],
            "curvature.rho = 0: expected a relative scale",
        ),
        ("r", vec!["--rho", "-0.5"], "curvature.rho = -0.5"),
        (
            "r",
            vec!["--top-k", "11"],
            "curvature.top_k = 11: expected 1..=10",
        ),
        ("r", vec!["--samples", "0"], "curvature.samples = 0"),
        (
            "r",
            vec!["--samples", "600"],
            "curvature.samples = 600: expected at most 512",
        ),
        (
            "r",
            vec!["--samples", "200", "--sets", "3"],
            "expected at most 512 samples in all",
        ),
        (
            "nobn",
            vec!["--params", "bn"],
            "params bn: the model has no batch norm",
        ),
    ] {
        let mut all = vec!["curvature", run];
        all.extend(args.iter().copied());
        let said = common::run(dir, &all);
        assert_eq!(said.code, Some(2), "{args:?}: {said:?}");
        let lines: Vec<&str> = said.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line: {said:?}");
        assert!(lines[0].contains(expected), "{args:?}: {}", lines[0]);
    }
    assert!(
        before == common::snapshot(dir),
        "a refused job wrote nothing"
    );

    let said = common::run(
        dir,
        &[
            "curvature",
            "r",
            "--samples",
            "100",
            "--sets",
            "2",
            "--top-k",
            "2",
            "--trace-vectors",
            "8",
            "--density-runs",
            "1",
            "--density-steps",
            "10",
            "--noise-draws",
            "3",
            "--ascent-steps",
            "2",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stderr.contains("Hessian-vector products ×"),
        "the cost up front: {}",
        said.stderr
    );
    for needle in [
        "λ1",
        "trace",
        "worst-case sharpness",
        "λ_max [95% CI]",
        "swa",
        "sgd",
    ] {
        assert!(said.stdout.contains(needle), "{needle}: {}", said.stdout);
    }
    let json = dir.join("r/curvature/001-both.json");
    let result: valleys::curvature::CurvatureResult =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(result.centres.len(), 2);
    assert_eq!(result.centres[1].sets.len(), 2);
    let csv = std::fs::read_to_string(dir.join("r/curvature/001-both.csv")).unwrap();
    assert!(csv.starts_with("centre,set,quantity,index,value,lo,hi\n"));
    assert!(csv.contains("swa,all,eigenvalue,1,"), "{csv}");

    // The report's section: the comparison table and the density figure.
    let said = common::run(dir, &["report", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let md = std::fs::read_to_string(dir.join("r/report/report.md")).unwrap();
    assert!(md.contains("## Curvature"), "{md}");
    assert!(md.contains("| centre | test loss | λ_max [95% CI]"), "{md}");
    assert!(md.contains("Spectral density of the Hessian"), "{md}");
    let svg = std::fs::read_to_string(dir.join("r/report/curvature-001-both.svg")).unwrap();
    assert!(
        svg.contains("sgd λ_max") && svg.contains("swa"),
        "markers and legend"
    );
}

/// SIGTERM (as Slurm or `kill` sends; SIGINT from a terminal takes the same path, but a
/// background test harness may start us with SIGINT ignored, which valleys keeps).
#[test]
fn a_job_stopped_by_a_signal_writes_no_half_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::train(dir, TINY_BN4, "r");
    let mut child = common::valleys(dir)
        .args([
            "curvature",
            "r",
            "--samples",
            "128",
            "--lanczos-steps",
            "500",
            "--tolerance",
            "1e-9",
            "--trace-vectors",
            "1000",
            "--sets",
            "3",
        ])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("products") {
        line.clear();
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(
        rest.contains("curvature cancelled; nothing written"),
        "{rest}"
    );
    let written: Vec<_> = std::fs::read_dir(dir.join("r/curvature"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| !n.to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(written.is_empty(), "{written:?}");
}

/// `curvature.every_epochs`: training waits at every N-th epoch end (and before the first)
/// while λ_max and the trace of SGD and SWA are measured; the rows are in track.jsonl and in
/// the headless output, and the last one is what `valleys curvature` measures on the final
/// checkpoint with the same settings (the tracker reads the live weights the run saves).
#[test]
fn training_tracks_the_top_eigenvalue_and_the_trace_every_n_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let yaml = TINY_BN4.replace("epochs: 2,", "epochs: 4,").replace(
        "swa: {start_epoch: 2}",
        "swa: {start_epoch: 2}\ncurvature: {samples: 96, trace_vectors: 6, every_epochs: 2}",
    );
    common::write(dir, "t.yaml", &yaml);
    let said = common::run(dir, &["run", "t.yaml", "--headless", "--out", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    for needle in [
        "curvature at epoch 0: training loss on 96 training samples",
        "Hessian-vector products ×",
        "epoch 0 curvature: λ_max sgd ",
        "epoch 2 curvature: λ_max sgd ",
        "epoch 4 curvature: λ_max sgd ",
        "2/lr 40.0",
    ] {
        assert!(said.stdout.contains(needle), "{needle}: {}", said.stdout);
    }
    let text = std::fs::read_to_string(dir.join("r/curvature/track.jsonl")).unwrap();
    let rows: Vec<valleys::curvature::track::TrackRow> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(u32, &str)> = rows.iter().map(|r| (r.epoch, r.centre.as_str())).collect();
    assert_eq!(
        seen,
        [(0, "sgd"), (2, "sgd"), (2, "swa"), (4, "sgd"), (4, "swa")],
        "SWA once it averages"
    );
    for r in &rows {
        assert!(
            r.top_eigenvalue.is_finite() && r.top_eigenvalue > 0.0,
            "{r:?}"
        );
        let trace = r.trace.expect("a trace");
        let i = trace.interval.expect("an interval over the vectors");
        assert!(i.lo <= trace.value && trace.value <= i.hi, "{r:?}");
    }
    // The job on the final checkpoint with the tracker's settings gives the same numbers.
    let said = common::run(
        dir,
        &[
            "curvature",
            "r",
            "--samples",
            "96",
            "--sets",
            "1",
            "--top-k",
            "1",
            "--trace-vectors",
            "6",
            "--density-runs",
            "0",
            "--noise-draws",
            "0",
            "--ascent-steps",
            "0",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let json = std::fs::read_to_string(dir.join("r/curvature/001-both.json")).unwrap();
    let job: valleys::curvature::CurvatureResult = serde_json::from_str(&json).unwrap();
    for centre in ["sgd", "swa"] {
        let tracked = rows
            .iter()
            .find(|r| r.epoch == 4 && r.centre == centre)
            .unwrap();
        let measured = &job.centre(centre).unwrap().sets[0];
        let relative =
            (measured.eigenvalues[0] - tracked.top_eigenvalue).abs() / tracked.top_eigenvalue;
        assert!(relative < 1e-4, "{centre}: {measured:?} vs {tracked:?}");
        let trace = measured.trace.as_ref().unwrap().trace.value;
        assert!(
            (trace - tracked.trace.unwrap().value).abs() < 1e-3 * trace.abs().max(1.0),
            "{centre}: {trace} vs {tracked:?}"
        );
    }
    // The report draws the tracked curvature.
    let said = common::run(dir, &["report", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
}

/// A tracker that cannot be met by the data is refused before the run starts.
#[test]
fn a_tracker_asking_for_more_samples_than_the_run_has_is_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let yaml = TINY_BN4.replace(
        "swa: {start_epoch: 2}",
        "swa: {start_epoch: 2}\ncurvature: {samples: 5000, every_epochs: 1}",
    );
    common::write(dir, "t.yaml", &yaml);
    let said = common::run(dir, &["run", "t.yaml", "--headless", "--out", "r"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    let lines: Vec<&str> = said.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{said:?}");
    assert!(
        lines[0].contains("curvature.samples = 5000: expected at most 512"),
        "{}",
        lines[0]
    );
    assert!(!dir.join("r").exists(), "nothing written");
}

struct QuietProbe;

impl valleys::probe::runner::Observer for QuietProbe {
    fn started(&mut self, _: &str, _: &valleys::probe::ProbeSpec, _: &[f64], _: f64) {}
    fn point(&mut self, _: &str, _: usize, _: &valleys::probe::ProbePoint) {}
    fn cancelled(&mut self) -> bool {
        false
    }
}

/// `--direction hessian --eigenvector k`: the probe's direction is the k-th eigenvector by
/// Lanczos, its eigenvalue the exact Hessian's k-th largest on the probe's samples.
#[test]
fn a_probe_along_the_kth_eigenvector_has_the_exact_kth_eigenvalue() {
    let s = setup(MLP_BN);
    let ctx = context(&s);
    let samples = s.data.train_eval.len;
    let (h, _) = exact_hessian_on(
        &s,
        &s.data.train_eval,
        samples,
        1,
        Mode::PlainEval,
        ParamGroup::All,
    );
    let exact = diagonalise(&h);
    for k in 1..=3 {
        let spec = valleys::probe::ProbeSpec {
            direction: valleys::probe::DirectionKind::Hessian,
            centre: valleys::probe::CentreKind::Sgd,
            bn: valleys::probe::BnMode::Frozen,
            eigenvector: Some(k),
            hessian_batch: Some(samples),
            hessian_iterations: Some(200),
            points: Some(3),
            from: Some(-0.1),
            to: Some(0.1),
            ..Default::default()
        };
        let r = valleys::probe::runner::run_one(&ctx, &spec, None, &mut QuietProbe).unwrap();
        let value = r.direction.eigenvalue.unwrap();
        let truth = exact.values[k - 1];
        assert!(
            (value - truth).abs() <= 1e-4 * truth.abs().max(1.0),
            "λ{k}: {value} against the exact {truth}"
        );
    }
    let spec = valleys::probe::ProbeSpec {
        eigenvector: Some(11),
        ..Default::default()
    };
    let e = spec.validate().unwrap_err().0;
    assert!(e.contains("probe.eigenvector = 11: expected 1..=10"), "{e}");
}

struct QuietPlane;

impl valleys::probe::plane::PlaneObserver for QuietPlane {
    fn started(&mut self, _: &valleys::probe::plane::PlaneHeader) {}
    fn point(&mut self, _: usize, _: usize, _: usize, _: &valleys::probe::plane::PlanePoint) {}
    fn cancelled(&mut self) -> bool {
        false
    }
}

/// `--plane hessian`: the plane spans the k₁-th and k₂-th eigenvectors. Checked against the
/// exact Hessian on the plane's own training samples: the stored eigenvalues, and the
/// plane's training losses along its axes, which must be the losses at w ± x·v_k for the
/// exact eigenvectors v_k (up to each one's sign), measured here by moving the weights by hand.
#[test]
fn a_hessian_plane_spans_the_exact_eigenvectors() {
    use valleys::probe::plane::{PlaneKind, PlaneSpec};
    let s = setup(MLP_BN);
    let ctx = context(&s);
    let samples = s.data.train_eval.len;
    let (h, _) = exact_hessian_on(
        &s,
        &s.data.train_eval,
        samples,
        1,
        Mode::PlainEval,
        ParamGroup::All,
    );
    let exact = diagonalise(&h);
    let (x, y) = s.data.eval_batch(&s.data.train_eval, 0, samples as i64);
    let loss_at = |t: f64, k: usize| {
        let v = exact.vectors.select(1, (k - 1) as i64).to_kind(Kind::Float);
        tch::no_grad(|| {
            s.scratch
                .flat()
                .shallow_clone()
                .copy_(&(s.sgd.flat() + v * t));
            let logits = s.scratch.forward(&x, Mode::PlainEval);
            let (l, _) = s
                .scratch
                .objective()
                .loss_and_correct(&logits, &y, tch::Reduction::Mean);
            l.double_value(&[])
        })
    };
    let step = 0.5;
    for (k1, k2) in [(1, 2), (3, 1)] {
        let spec = PlaneSpec {
            centre: valleys::probe::CentreKind::Sgd,
            bn: valleys::probe::BnMode::Frozen,
            points: (3, 3),
            x: (-step, step),
            y: (-step, step),
            eigenvectors: Some((k1, k2)),
            hessian_batch: Some(samples),
            ..PlaneSpec::for_kind(PlaneKind::Hessian)
        };
        let r = valleys::probe::runner::plane::run(&ctx, &spec, None, &mut QuietPlane).unwrap();
        let (l1, l2) = r.eigenvalues.unwrap();
        for (value, k) in [(l1, k1), (l2, k2)] {
            let truth = exact.values[k - 1];
            assert!(
                (value - truth).abs() <= 1e-3 * exact.values[0],
                "λ{k}: {value} against the exact {truth}"
            );
        }
        assert!((r.d1_norm - 1.0).abs() < 1e-5 && (r.d2_norm - 1.0).abs() < 1e-5);
        assert!(r.cosine.abs() < 1e-3, "cos(d₁, d₂) = {}", r.cosine);
        let centre = r.at(1, 1).measured.train_loss;
        for (k, (minus, plus)) in [
            (k1, (r.at(0, 1), r.at(2, 1))),
            (k2, (r.at(1, 0), r.at(1, 2))),
        ] {
            let (minus, plus) = (minus.measured.train_loss, plus.measured.train_loss);
            let (a, b) = (loss_at(-step, k), loss_at(step, k));
            // The eigenvector's sign is arbitrary: the plane's ends are (a, b) or (b, a).
            let apart =
                ((minus - a).abs() + (plus - b).abs()).min((minus - b).abs() + (plus - a).abs());
            let rise = (a + b) / 2.0 - centre;
            assert!(
                apart <= 1e-3 * rise,
                "eigenvector {k}: the plane's ends {minus:.6}, {plus:.6} against the exact eigenvector's {a:.6}, {b:.6} (rise {rise:.4})"
            );
        }
    }
    // A Hessian plane refuses what it has no use for, and eigenvectors it cannot have.
    for (spec, expected) in [
        (
            PlaneSpec {
                eigenvectors: Some((2, 2)),
                ..PlaneSpec::for_kind(PlaneKind::Hessian)
            },
            "eigenvectors 2,2: expected two different eigenvectors",
        ),
        (
            PlaneSpec {
                eigenvectors: Some((1, 2)),
                ..PlaneSpec::for_kind(PlaneKind::Random)
            },
            "eigenvectors and hessian_batch are for plane hessian",
        ),
    ] {
        let e = spec.validate().unwrap_err().0;
        assert!(e.contains(expected), "{e}");
    }
}

/// A request that cannot be met as asked is said: fewer Lanczos steps than eigenvalues is
/// refused, and `--centre both` before the average holds a snapshot names what it measures.
#[test]
fn a_request_that_cannot_be_met_as_asked_is_said() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::train(
        dir,
        "name: t\ndata: {dataset: fashion-mnist, train_subset: 256, test_subset: 128}\nmodel: {arch: mlp, hidden: 8}\ntrain: {epochs: 1, batch_size: 64, lr: 0.1}\nswa: {enabled: false}\neval: {train_subset: 128}\n",
        "r",
    );
    let said = common::run(
        dir,
        &["curvature", "r", "--top-k", "5", "--lanczos-steps", "2"],
    );
    assert_eq!(said.code, Some(2), "{said:?}");
    assert_eq!(
        said.stderr,
        "valleys: error: curvature.lanczos_steps = 2: expected at least top_k = 5 (Lanczos finds at most one eigenvalue a step)\n"
    );
    let said = common::run(
        dir,
        &[
            "curvature",
            "r",
            "--samples",
            "64",
            "--sets",
            "1",
            "--top-k",
            "1",
            "--trace-vectors",
            "2",
            "--density-runs",
            "0",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stderr.contains(
            "valleys: centre both: the SWA average holds no snapshot yet at epoch 1; measuring SGD only"
        ),
        "{}",
        said.stderr
    );
}
