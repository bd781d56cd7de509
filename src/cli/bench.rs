//! `valleys bench ...` (hidden; run by `make bench`): measurements of the product's own code
//! paths, each printed as one JSON object for bench/run.py to compare with PyTorch.

mod curvature;
mod setup;

use clap::{Args, Subcommand};
use setup::*;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use valleys::config::Experiment;
use valleys::data::dataset::Dataset;
use valleys::model::eval;
use valleys::model::{Mode, Model};
use valleys::probe::plane::{self, PlaneHeader, PlaneObserver, PlanePoint, PlaneSpec};
use valleys::probe::runner::{self, Observer, ProbeContext};
use valleys::probe::{BnMode, DirectionKind, ProbePoint, ProbeSpec};
use valleys::protocol::{Event, Outcome};
use valleys::rundir::RunDir;
use valleys::runtime::{self, DeviceChoice, DeviceRequest};
use valleys::train::swa::SwaAverage;
use valleys::ui::app::App;
use valleys::ui::theme::Theme;
use valleys::worker::{Worker, WorkerData, WorkerSpec};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: What,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", global = true)]
    device: String,
    /// CPU threads for libtorch (0: its default).
    #[arg(long, default_value_t = 0, global = true)]
    threads: i32,
}

#[derive(Subcommand)]
enum What {
    /// Training samples/s of the real engine (quick, or preresnetN such as preresnet20 and
    /// preresnet164 on CIFAR-shaped data).
    Train {
        #[arg(long, default_value = "quick")]
        model: String,
        /// Measured steps (after one warm-up epoch).
        #[arg(long, default_value_t = 100)]
        steps: u32,
    },
    /// SWA averaging and BN recomputation per epoch, against the epoch's training time.
    Swa,
    /// Seconds per probe point for each BN mode against one forward pass, and a 41-point
    /// interpolation with the default subsets.
    Probe,
    /// One evaluation pass over the test set: the fast eval pass (BN folded into convolutions,
    /// oneDNN's fused convolutions on the CPU) against the same pass layer by layer (PyTorch
    /// eager's way), and a plane point's BN pass; medians of `passes` alternated passes each.
    Eval {
        #[arg(long, default_value = "quick")]
        model: String,
        #[arg(long, default_value_t = 128)]
        batch: i64,
        #[arg(long, default_value_t = 3)]
        passes: usize,
    },
    /// Seconds per point of a plane through SWA and SGD of the quick model with the quick run's
    /// subsets, against one forward pass over the same samples, and the 21x21 plane it implies.
    Plane {
        /// Grid points, NxM.
        #[arg(long, default_value = "5x5")]
        points: String,
    },
    /// Training throughput with the dashboard drawing (TestBackend, 10 fps) against headless.
    Ui {
        /// Frames a second (the dashboard's default --fps).
        #[arg(long, default_value_t = 10)]
        fps: u32,
    },
    /// Hessian-vector products of the quick model after a short training run: seconds each
    /// against one forward and backward pass over the same samples, in both BN modes; the top
    /// eigenvalue and the trace in eval mode (PyHessian's), for bench/reference.py to measure
    /// the same weights and samples; resident memory over 100 Lanczos steps. The weights and
    /// the samples' indices are written to `out`.
    Curvature {
        /// Where the weights (weights.safetensors) and the samples (samples.json) go.
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 256)]
        samples: usize,
        /// Training epochs of the quick model before measuring.
        #[arg(long, default_value_t = 3)]
        epochs: u32,
        /// Time the products again on the weights an earlier call left in `out` (no training,
        /// no eigenvalues): the repeats `make bench` alternates with PyHessian's.
        #[arg(long)]
        time_only: bool,
    },
    /// Resident memory over a long run (the quick model, batch 16).
    Memory {
        #[arg(long, default_value_t = 20_000)]
        steps: u32,
    },
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    let device = runtime::choose_device(DeviceRequest::parse(&args.device)?)?;
    let tmp_dir = tempfile::tempdir()?;
    let common = serde_json::json!({
        "threads": tch::get_num_threads(),
        "device": device.name,
        "valleys": env!("CARGO_PKG_VERSION"),
    });
    let (device, tmp) = (&device, tmp_dir.path());
    let result = match &args.what {
        What::Train { model, steps } => bench_train(device, tmp, model, *steps)?,
        What::Swa => bench_swa(device, tmp)?,
        What::Probe => bench_probe(device)?,
        What::Ui { fps } => bench_ui(device, tmp, fps)?,
        What::Eval {
            model,
            batch,
            passes,
        } => bench_eval(device, tmp, model, batch, passes)?,
        What::Plane { points } => bench_plane(device, points)?,
        What::Memory { steps } => bench_memory(device, tmp, steps)?,
        What::Curvature {
            out,
            samples,
            epochs,
            time_only,
        } => curvature::bench_curvature(device, out, *samples, *epochs, *time_only)?,
    };
    let mut out = common;
    if let (Some(o), serde_json::Value::Object(r)) = (out.as_object_mut(), result) {
        o.extend(r);
    }
    println!("{out}");
    Ok(())
}

/// Training throughput of `model` over `steps` steps (the first epoch left out as warm-up).
fn bench_train(
    device: &DeviceChoice,
    tmp: &Path,
    model: &str,
    steps: u32,
) -> anyhow::Result<serde_json::Value> {
    let per_epoch = 20;
    let epochs = 1 + steps.div_ceil(per_epoch);
    let exp = experiment_for(model, tmp, per_epoch, epochs, 128)?;
    let rates = train_in_worker(exp, device, tmp, None, |_| {})?;
    Ok(
        serde_json::json!({ "samples_per_s": mean(&rates), "epochs_measured": rates.len(), "steps": (epochs - 1) * per_epoch }),
    )
}

/// What SWA costs against an epoch: adding a snapshot and recomputing its BN statistics.
fn bench_swa(device: &DeviceChoice, tmp: &Path) -> anyhow::Result<serde_json::Value> {
    let exp = quick(&[])?;
    let data = Dataset::load(&exp.data, Some(2000), exp.seed, device.device)?;
    let model = Model::build(&exp.model, &data.input_shape, data.classes, device.device)?;
    let mut avg = SwaAverage::new(Model::build(
        &exp.model,
        &data.input_shape,
        data.classes,
        device.device,
    )?);
    let t = Instant::now();
    for _ in 0..100 {
        avg.add(&model);
    }
    let add_seconds = t.elapsed().as_secs_f64() / 100.0;
    let t = Instant::now();
    eval::recompute_bn(&avg.model, &data, 128, None, 1, 0);
    let bn_seconds = t.elapsed().as_secs_f64();
    let per_epoch = 20;
    let train = experiment_for("quick", tmp, per_epoch, 4, 128)?;
    let rate = mean(&train_in_worker(train, device, tmp, None, |_| {})?);
    let epoch_seconds = data.train.len as f64 / rate;
    Ok(serde_json::json!({
        "average_seconds": add_seconds,
        "bn_recompute_seconds": bn_seconds,
        "epoch_seconds": epoch_seconds,
        "average_fraction_of_epoch": add_seconds / epoch_seconds,
        "bn_recompute_fraction_of_epoch": bn_seconds / epoch_seconds,
    }))
}

/// Seconds a probe point costs, by BN mode, against one forward pass; stacked points; an interpolation with subsets and with the whole sets.
fn bench_probe(device: &DeviceChoice) -> anyhow::Result<serde_json::Value> {
    let quick = QuickWeights::load(device)?;
    let ctx = quick.context(device);
    // Subsets of a quick look: 2000 training samples, BN on 1000.
    let subsets = ProbeSpec {
        train_subset: Some(2000),
        bn_subset: Some(1000),
        ..ProbeSpec::default()
    };
    let mut modes = serde_json::Map::new();
    for bn in [BnMode::Recompute, BnMode::Frozen, BnMode::Batch] {
        let spec = ProbeSpec {
            bn,
            points: Some(11),
            point_batch: Some(1),
            ..subsets.clone()
        };
        let r = runner::run_one(&ctx, &spec, None, &mut Quiet)?;
        modes.insert(
            bn.as_str().into(),
            serde_json::json!({
                "seconds_per_point": r.cost.seconds_per_point,
                "forward_seconds": r.cost.forward_seconds,
                "ratio_to_forward": r.cost.ratio_to_forward,
            }),
        );
    }
    let interp = ProbeSpec {
        direction: DirectionKind::Interp,
        points: Some(41),
        point_batch: Some(1),
        ..subsets.clone()
    };
    let r = runner::run_one(&ctx, &interp, None, &mut Quiet)?;
    // The authors' work per point: BN over the whole training set, then the whole
    // training and test sets evaluated.
    let full = ProbeSpec {
        train_subset: Some(usize::MAX),
        bn_subset: Some(usize::MAX),
        ..interp
    };
    let f = runner::run_one(&ctx, &full, None, &mut Quiet)?;
    // Points side by side in one forward pass against one by one (BN recomputed).
    let mut stacked = serde_json::Map::new();
    for k in [1usize, 4, 16] {
        let spec = ProbeSpec {
            points: Some(16),
            point_batch: Some(k),
            ..subsets.clone()
        };
        let r = runner::run_one(&ctx, &spec, None, &mut Quiet)?;
        stacked.insert(k.to_string(), r.cost.seconds_per_point.into());
    }
    Ok(serde_json::json!({
        "point_batch_seconds_per_point": stacked,
        "modes": modes,
        "interp_41_seconds": r.cost.seconds,
        "interp_41_seconds_per_point": r.cost.seconds_per_point,
        "interp_41_full_sets_seconds": f.cost.seconds,
    }))
}

/// Training with the dashboard drawing at `fps` against headless, alternated three times.
fn bench_ui(device: &DeviceChoice, tmp: &Path, fps: &u32) -> anyhow::Result<serde_json::Value> {
    // Alternate the two, three times each, and compare medians: a 2-core machine is noisy.
    let per_epoch = 40;
    let (mut headless, mut drawn, mut frames) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let exp = experiment_for("quick", tmp, per_epoch, 5, 128)?;
        headless.push(mean(&train_in_worker(exp, device, tmp, None, |_| {})?));
        let exp = experiment_for("quick", tmp, per_epoch, 5, 128)?;
        drawn.push(mean(&train_in_worker(
            exp,
            device,
            tmp,
            Some((&mut frames, *fps)),
            |_| {},
        )?));
    }
    let (headless, drawn) = (median(&headless), median(&drawn));
    let frame = median(&frames);
    Ok(serde_json::json!({
        "headless_samples_per_s": headless,
        "dashboard_samples_per_s": drawn,
        "overhead": 1.0 - drawn / headless,
        "frame_ms_median": 1e3 * frame,
        "frames": frames.len(),
        // The drawing thread's share of the machine.
        "fps": fps,
        "frame_cpu_fraction": frame * f64::from(*fps) / tch::get_num_threads().max(1) as f64,
    }))
}

/// The fast evaluation pass against the layer-by-layer one, medians of `passes`.
fn bench_eval(
    device: &DeviceChoice,
    tmp: &Path,
    model: &str,
    batch: &i64,
    passes: &usize,
) -> anyhow::Result<serde_json::Value> {
    // 16 batches of training samples: as many as the test set holds, for the BN pass.
    let exp = experiment_for(model, tmp, 16, 1, 128)?;
    let data = Dataset::load(&exp.data, None, exp.seed, device.device)?;
    let net = Model::build(&exp.model, &data.input_shape, data.classes, device.device)?;
    // Running statistics of real inputs, as a probe point has them.
    eval::recompute_bn(&net, &data, 128, Some(1024), 1, 0);
    let pass = |mode| {
        let t = Instant::now();
        let e = eval::evaluate_in_mode(&net, &data, &data.test, *batch, mode);
        (t.elapsed().as_secs_f64(), e)
    };
    // A plane point's BN pass over as many training samples as the test set holds.
    let bn_samples = data.test.len.min(data.train.len);
    let bn_pass = || {
        let t = Instant::now();
        eval::recompute_bn(&net, &data, *batch, Some(bn_samples), 1, 0);
        t.elapsed().as_secs_f64()
    };
    let (_, fast_eval) = pass(Mode::Eval);
    let (_, plain_eval) = pass(Mode::PlainEval);
    bn_pass();
    let (mut fast, mut plain, mut bn) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..*passes {
        fast.push(pass(Mode::Eval).0);
        plain.push(pass(Mode::PlainEval).0);
        bn.push(bn_pass());
    }
    let samples = data.test.len as f64;
    Ok(serde_json::json!({
        "model": model,
        "batch": batch,
        "samples": data.test.len,
        "seconds": median(&fast),
        "samples_per_s": samples / median(&fast),
        "all_seconds": fast,
        "plain_seconds": median(&plain),
        "plain_samples_per_s": samples / median(&plain),
        "all_plain_seconds": plain,
        "bn_pass_seconds": median(&bn),
        "bn_pass_samples": bn_samples,
        "bn_pass_samples_per_s": bn_samples as f64 / median(&bn),
        "all_bn_pass_seconds": bn,
        "loss": fast_eval.loss,
        "loss_difference_to_plain": (fast_eval.loss - plain_eval.loss).abs(),
    }))
}

/// A plane of the quick weights: seconds a point and the 21x21 plane they imply.
fn bench_plane(device: &DeviceChoice, points: &str) -> anyhow::Result<serde_json::Value> {
    let quick = QuickWeights::load(device)?;
    let ctx = quick.context(device);
    let spec = PlaneSpec {
        points: plane::parse_points(points).map_err(anyhow::Error::msg)?,
        ..PlaneSpec::default()
    };
    let r = valleys::probe::runner::plane::run(&ctx, &spec, None, &mut Quiet)?;
    Ok(serde_json::json!({
        "points": r.cost.points,
        "seconds": r.cost.seconds,
        "seconds_per_point": r.cost.seconds_per_point,
        "forward_seconds": r.cost.forward_seconds,
        "ratio_to_forward": r.cost.seconds_per_point / r.cost.forward_seconds.max(1e-9),
        "samples": {"train": r.train_samples, "test": r.test_samples, "bn_pass": r.bn_samples},
        "plane_21x21_seconds": 441.0 * r.cost.seconds_per_point,
    }))
}

/// Resident memory over a run of `steps` steps: it must stay flat.
fn bench_memory(
    device: &DeviceChoice,
    tmp: &Path,
    steps: &u32,
) -> anyhow::Result<serde_json::Value> {
    let per_epoch = 625;
    let epochs = steps.div_ceil(per_epoch);
    let mut exp = experiment_for("quick", tmp, per_epoch, epochs, 16)?;
    exp.eval.every_epochs = 1;
    exp.checkpoint.every_epochs = 1;
    exp.swa.enabled = true;
    exp.swa.start_epoch = Some(2);
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let started = Instant::now();
    let mut last = Instant::now();
    train_in_worker(exp, device, tmp, None, |_| {
        if last.elapsed() >= Duration::from_secs(1) {
            samples.push((started.elapsed().as_secs_f64(), rss_bytes()));
            last = Instant::now();
        }
    })?;
    // Medians over a tenth of the run each: checkpoints and evaluations make brief peaks.
    let mb: Vec<f64> = samples.iter().map(|s| s.1 as f64 / 1e6).collect();
    let window = |from: f64| {
        let n = mb.len() as f64;
        median(&mb[(n * from) as usize..(n * (from + 0.1)).ceil() as usize])
    };
    let (middle, end) = (window(0.4), window(0.9));
    Ok(serde_json::json!({
        "steps": epochs * per_epoch,
        "seconds": started.elapsed().as_secs_f64(),
        "rss_mb_10_to_20pct": window(0.1),
        "rss_mb_40_to_50pct": middle,
        "rss_mb_90_to_100pct": end,
        "rss_mb_peak": mb.iter().copied().fold(0.0, f64::max),
        "rss_growth_second_half_mb": end - middle,
        "samples": samples.iter().map(|(t, b)| [*t, *b as f64 / 1e6]).collect::<Vec<_>>(),
    }))
}
