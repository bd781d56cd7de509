//! `valleys connect A B`: the loss along the straight line between two solutions (iterates of
//! one run, of two runs such as two seeds of a sweep, or of two checkpoints), BN statistics
//! recomputed at each point, the barrier on it and the two solutions' sign consistency;
//! written to A's connections/.

use clap::Args;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use valleys::config::probe::samples;
use valleys::error::{BadInput, BadInputExt};
use valleys::model::Model;
use valleys::probe::BnMode;
use valleys::probe::connect::curve::CurveSettings;
use valleys::probe::connect::{ConnectResult, Endpoint};
use valleys::probe::offline::SavedRun;
use valleys::probe::runner::ProbeError;
use valleys::probe::runner::connect::{self, ConnectSpec};
use valleys::runtime::{self, DeviceRequest};

#[derive(Args)]
pub struct ConnectArgs {
    /// One end: RUN[:sgd|:swa][@CHECKPOINT], e.g. runs/a:swa@final (default sgd@latest).
    #[arg(value_parser = parse_endpoint)]
    pub a: Endpoint,
    /// The other end, the same way (another run, iterate or checkpoint).
    #[arg(value_parser = parse_endpoint)]
    pub b: Endpoint,
    /// Points from A (t = 0) to B (t = 1), both included.
    #[arg(long, default_value_t = 11)]
    pub points: usize,
    /// BN statistics at each point (default: recomputed from A's run's BN pass).
    #[arg(long, value_enum, default_value = "recompute")]
    pub bn: BnMode,
    /// Training samples the training loss is measured on, or `all` (default: A's run's own
    /// evaluation subset).
    #[arg(long = "train-subset", value_parser = samples::parse)]
    pub train_subset: Option<usize>,
    /// Test samples, or `all` (the default).
    #[arg(long = "test-subset", value_parser = samples::parse)]
    pub test_subset: Option<usize>,
    /// Training samples of each BN recomputation, or `all` (default: A's run's own pass).
    #[arg(long = "bn-subset", value_parser = samples::parse)]
    pub bn_subset: Option<usize>,
    /// Also train a quadratic Bézier curve from A to B (Garipov et al. 2018) for this many
    /// epochs over the training set, and measure it at the line's points (0: the line alone).
    #[arg(long = "curve-epochs", default_value_t = 0)]
    pub curve_epochs: u32,
    /// The curve's starting learning rate (default: A's run's train.lr), held for half the
    /// epochs, then down to 1% by 90%; momentum, weight decay and batch size are A's run's.
    #[arg(long = "curve-lr")]
    pub curve_lr: Option<f64>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

fn parse_endpoint(text: &str) -> Result<Endpoint, String> {
    Endpoint::parse(text).map_err(|e| e.0)
}

/// The iterate an end names, or one line saying why the run has none.
fn iterate<'a>(saved: &'a SavedRun, end: &Endpoint) -> anyhow::Result<&'a Model> {
    match end.iterate.as_str() {
        "swa" => saved.swa.as_ref().ok_or_else(|| {
            BadInput::msg(format!(
                "{}: the checkpoint's SWA average holds no snapshot yet; expected {}:sgd",
                end.label(),
                end.run.display()
            ))
            .into()
        }),
        _ => Ok(&saved.sgd),
    }
}

/// Runs the command; returns true if the connection completed.
pub fn run(args: &ConnectArgs, stop: &AtomicBool) -> anyhow::Result<bool> {
    if !(2..=1001).contains(&args.points) {
        valleys::bad_input!("--points {}: expected 2..=1001", args.points);
    }
    for (name, n) in [
        ("--train-subset", args.train_subset),
        ("--test-subset", args.test_subset),
        ("--bn-subset", args.bn_subset),
    ] {
        if n == Some(0) {
            valleys::bad_input!("{name} 0: expected at least 1 sample, or all");
        }
    }
    if args.curve_lr.is_some() && args.curve_epochs == 0 {
        valleys::bad_input!("--curve-lr without --curve-epochs: expected --curve-epochs N too");
    }
    let device = DeviceRequest::parse(&args.device)
        .and_then(runtime::choose_device)
        .bad_input()?;
    let a = SavedRun::load(&args.a.run, &args.a.checkpoint, device.device).bad_input()?;
    let b = SavedRun::load(&args.b.run, &args.b.checkpoint, device.device).bad_input()?;
    if a.checkpoint.canonicalize().ok() == b.checkpoint.canonicalize().ok()
        && args.a.iterate == args.b.iterate
    {
        valleys::bad_input!(
            "{} and {} are the same weights; expected two different iterates, checkpoints or runs",
            args.a.label(),
            args.b.label()
        );
    }
    let shapes = |s: &SavedRun| -> Vec<(String, Vec<i64>)> {
        s.sgd
            .params()
            .iter()
            .map(|p| (p.name.clone(), p.shape.clone()))
            .collect()
    };
    if shapes(&a) != shapes(&b) {
        valleys::bad_input!(
            "{} ({}) and {} ({}) are different models; a line between them needs the same parameters",
            args.a.label(),
            a.sgd.description(),
            args.b.label(),
            b.sgd.description()
        );
    }
    if a.experiment.data != b.experiment.data {
        valleys::bad_input!(
            "{} and {} were trained on different data; a connection measures both on one data set",
            args.a.label(),
            args.b.label()
        );
    }
    let (wa, wb) = (iterate(&a, &args.a)?, iterate(&b, &args.b)?);
    let curve = (args.curve_epochs > 0)
        .then(|| {
            let train = &a.experiment.train;
            let settings = CurveSettings {
                epochs: args.curve_epochs,
                lr: args.curve_lr.unwrap_or(train.lr),
                momentum: train.momentum,
                weight_decay: train.weight_decay,
                batch_size: train.batch_size,
            };
            settings.validate().map(|()| settings)
        })
        .transpose()
        .map_err(|e| BadInput::msg(format!("--curve-epochs/--curve-lr: {}", e.0)))?;
    valleys::rundir::check_writable(&valleys::probe::store::connection_dir(&a.run)).bad_input()?;
    eprintln!(
        "connect {} (epoch {}) → {} (epoch {}) on {}: {} points, BN {}",
        args.a.label(),
        a.state.epoch,
        args.b.label(),
        b.state.epoch,
        device.name,
        args.points,
        args.bn.as_str()
    );
    if let Some(c) = &curve {
        eprintln!(
            "and a Bézier curve trained for {} epochs (lr {}, momentum {}, weight decay {}, batch {})",
            c.epochs, c.lr, c.momentum, c.weight_decay, c.batch_size
        );
    }
    let spec = ConnectSpec {
        a: args.a.clone(),
        b: args.b.clone(),
        points: args.points,
        bn: args.bn,
        train_subset: args.train_subset,
        test_subset: args.test_subset,
        bn_subset: args.bn_subset,
        curve,
    };
    let cancelled = || stop.load(Ordering::Relaxed);
    match connect::run(
        &a.context(),
        &spec,
        (wa, wb.flat()),
        (a.state.epoch, b.state.epoch),
        Some(&a.run),
        &cancelled,
    ) {
        Ok(result) => {
            print(&mut std::io::stdout().lock(), &result)?;
            println!(
                "wrote {}/{}.json and .csv",
                valleys::probe::store::connection_dir(&a.run).display(),
                result.id
            );
            Ok(true)
        }
        Err(ProbeError::Cancelled) => {
            eprintln!("connection cancelled; nothing written");
            Ok(false)
        }
        Err(ProbeError::Invalid(message)) => Err(BadInput::msg(message).into()),
        Err(e) => Err(e.into()),
    }
}

fn print(out: &mut impl Write, r: &ConnectResult) -> std::io::Result<()> {
    write!(
        out,
        "{:>6}  {:>10} {:>9}  {:>10} {:>9}",
        "t", "train loss", "train acc", "test loss", "test acc"
    )?;
    if r.curve.is_some() {
        write!(out, "  {:>11} {:>10}", "curve train", "curve test")?;
    }
    writeln!(out)?;
    for (i, p) in r.points.iter().enumerate() {
        write!(
            out,
            "{:>6.3}  {:>10.4} {:>8.1}%  {:>10.4} {:>8.1}%",
            p.t,
            p.train_loss,
            100.0 * p.train_acc,
            p.test_loss,
            100.0 * p.test_acc
        )?;
        if let Some(q) = r.curve.as_ref().and_then(|c| c.points.get(i)) {
            write!(out, "  {:>11.4} {:>10.4}", q.train_loss, q.test_loss)?;
        }
        writeln!(out)?;
    }
    writeln!(out, "{}", valleys::probe::connect::one_line(r))?;
    writeln!(
        out,
        "samples {} train / {} test, BN {}; {:.1} s",
        r.train_samples,
        r.test_samples,
        r.bn.as_str(),
        r.seconds
    )
}
