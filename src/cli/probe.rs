//! `valleys probe RUN_DIR`: probes a saved checkpoint from the command line and prints the
//! curve, the scores and the cost; results go to RUN_DIR/probes/ like the dashboard's.

use super::progress::Console;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use valleys::config::MAX_DIRECTIONS;
use valleys::config::probe::samples;
use valleys::error::{BadInput, BadInputExt};
use valleys::probe::offline::SavedRun;
use valleys::probe::runner::{self, ProbeError};
use valleys::probe::summary::{BatchSummary, C_BIN_EDGES};
use valleys::probe::{
    BiasBn, BnMode, CentreKind, DirectionKind, Normalisation, ParamGroup, ProbeResult, ProbeSpec,
    describe_score, format_c,
};
use valleys::runtime::{self, DeviceRequest};
use valleys::stats;

/// The settings of a probe as flags, shared by `valleys probe` and `valleys ablate`; each one
/// given replaces the experiment's.
mod ratios;
pub use ratios::RatioList;
use ratios::{parse_ratio_list, sweep_ratios};
#[derive(Args, Clone)]
pub struct ProbeFlags {
    /// The point the line goes through.
    #[arg(long, value_enum)]
    pub centre: Option<CentreKind>,
    /// How the direction is drawn (interp: from SWA to SGD).
    #[arg(long, value_enum)]
    pub direction: Option<DirectionKind>,
    /// How a Gaussian direction is scaled.
    #[arg(long, value_enum)]
    pub norm: Option<Normalisation>,
    /// What layer/filter normalisation does with biases and BN.
    #[arg(long = "bias-bn", value_enum)]
    pub bias_bn: Option<BiasBn>,
    /// Parameters the direction moves.
    #[arg(long, value_enum)]
    pub params: Option<ParamGroup>,
    /// t from -RANGE to RANGE, or `auto`: per direction, where the training loss has gone
    /// --auto-fraction of the way from the centre's loss to chance.
    #[arg(long, conflicts_with_all = ["from", "to"], value_parser = parse_range, allow_hyphen_values = true)]
    pub range: Option<Range>,
    /// The fraction of the way to chance loss at which an auto range sets T (default 0.5;
    /// implies --range auto).
    #[arg(long = "auto-fraction", conflicts_with_all = ["from", "to"])]
    pub auto_fraction: Option<f64>,
    /// Start of the t grid.
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<f64>,
    /// End of the t grid.
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<f64>,
    /// Grid points.
    #[arg(long)]
    pub points: Option<usize>,
    /// Training samples the training loss is measured on, or `all` (default: the run's
    /// own evaluation subset, so that t = 0 matches the dashboard).
    #[arg(long = "train-subset", value_parser = samples::parse)]
    pub train_subset: Option<usize>,
    /// Test samples the test loss is measured on, or `all` (the default).
    #[arg(long = "test-subset", value_parser = samples::parse)]
    pub test_subset: Option<usize>,
    /// BN statistics at each point.
    #[arg(long, value_enum)]
    pub bn: Option<BnMode>,
    /// Training samples of each BN recomputation, or `all` (default: the run's own pass,
    /// swa.bn_subset).
    #[arg(long = "bn-subset", value_parser = samples::parse)]
    pub bn_subset: Option<usize>,
    /// Seed of a random direction (of the first, with --directions).
    #[arg(long)]
    pub seed: Option<u64>,
    /// c at or above which a direction counts as asymmetric.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// The smallest rise of the loss that counts when the losses' standard errors are
    /// smaller (default 0.001).
    #[arg(long = "min-rise")]
    pub min_rise: Option<f64>,
    /// Points measured at once, side by side in one forward pass (1: one by one).
    #[arg(long = "point-batch")]
    pub point_batch: Option<usize>,
    /// With --direction hessian: the eigenvector of the k-th largest eigenvalue (1: the top
    /// one), by Lanczos.
    #[arg(long)]
    pub eigenvector: Option<usize>,
    /// With --direction sign-match: the fraction of entries whose sign agrees with the
    /// centre's weights, 0 to 1.
    #[arg(long)]
    pub ratio: Option<f64>,
}

/// Flags of `valleys probe`; anything left out comes from the experiment's `probe:` section.
#[derive(Args)]
pub struct ProbeArgs {
    /// The run directory, e.g. runs/quick-20261127-101500.
    pub run_dir: PathBuf,
    /// Checkpoint: latest, final, epoch-NNNN, or a path.
    #[arg(long, default_value = "latest")]
    pub checkpoint: String,
    #[command(flatten)]
    pub probe: ProbeFlags,
    /// Probe N random directions through the SGD and the SWA centre and summarise them.
    #[arg(long)]
    pub directions: Option<usize>,
    /// With --direction sign-match and --directions N: a batch at each ratio of agreeing
    /// signs FROM:TO:STEP (e.g. 0:1:0.1), and a table of the asymmetry and the loss's rise at
    /// each end against the ratio (Li et al. 2024).
    #[arg(long, value_parser = parse_ratio_list)]
    pub ratios: Option<RatioList>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// `--range`: a half-width or `auto`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    HalfWidth(f64),
    Auto,
}

fn parse_range(text: &str) -> Result<Range, String> {
    match text {
        "auto" => Ok(Range::Auto),
        t => t
            .parse()
            .map(Range::HalfWidth)
            .map_err(|_| format!("'{text}': expected a half-width such as 5, or auto")),
    }
}

impl ProbeFlags {
    /// What the flags say about each other, before anything is loaded.
    pub fn check(&self) -> Result<(), String> {
        if let (Some(Range::HalfWidth(r)), Some(f)) = (self.range, self.auto_fraction) {
            return Err(format!(
                "--range {r} with --auto-fraction {f}: a fixed range has no fraction; use --range auto"
            ));
        }
        self.spec(&ProbeSpec::default()).validate().map_err(|e| e.0)
    }

    /// `base` (the experiment's settings) with these flags applied.
    pub fn spec(&self, base: &ProbeSpec) -> ProbeSpec {
        // The experiment's grid belongs to its direction (see ProbeSpec::with_direction).
        let mut s = match self.direction {
            Some(d) => base.with_direction(d),
            None => base.clone(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { s.$field = v; } )* };
        }
        set!(centre, norm, bias_bn, params, bn);
        if self.range.is_some() || self.from.is_some() || self.to.is_some() {
            s.auto_range = None;
        }
        match (self.range, self.auto_fraction) {
            (Some(Range::HalfWidth(r)), _) => (s.from, s.to) = (Some(-r), Some(r)),
            (Some(Range::Auto), fraction) | (None, fraction @ Some(_)) => {
                (s.from, s.to) = (None, None);
                s.auto_range = Some(fraction.unwrap_or(0.5));
            }
            (None, None) => {}
        }
        for (target, value) in [
            (&mut s.from, self.from),
            (&mut s.to, self.to),
            (&mut s.threshold, self.threshold),
            (&mut s.min_rise, self.min_rise),
            (&mut s.ratio, self.ratio),
        ] {
            if value.is_some() {
                *target = value;
            }
        }
        for (target, value) in [
            (&mut s.points, self.points),
            (&mut s.train_subset, self.train_subset),
            (&mut s.test_subset, self.test_subset),
            (&mut s.bn_subset, self.bn_subset),
            (&mut s.point_batch, self.point_batch),
            (&mut s.eigenvector, self.eigenvector),
        ] {
            if value.is_some() {
                *target = value;
            }
        }
        if self.seed.is_some() {
            s.seed = self.seed;
        }
        s
    }
}

/// Everything about the flags that can be checked before the run is loaded.
fn check_flags(args: &ProbeArgs) -> Result<(), String> {
    if args.ratios.is_some() {
        if args.probe.direction != Some(valleys::probe::DirectionKind::SignMatch) {
            return Err("--ratios sweeps the ratio of a sign-match direction; expected --direction sign-match".into());
        }
        if args.probe.ratio.is_some() {
            return Err("--ratio and --ratios: give one (--ratios sweeps it)".into());
        }
        if args.directions.is_none_or(|n| n < 2) {
            return Err(
                "--ratios runs a batch at each ratio; expected --directions N with N >= 2".into(),
            );
        }
    }
    match &args.ratios {
        // The sweep's first ratio stands in for --ratio.
        Some(ratios) => ProbeFlags {
            ratio: ratios.0.first().copied(),
            ..args.probe.clone()
        }
        .check()?,
        None => args.probe.check()?,
    }
    if let Some(n) = args.directions
        && !(1..=MAX_DIRECTIONS).contains(&n)
    {
        return Err(format!(
            "--directions {n}: expected 1..={MAX_DIRECTIONS} (1 probes a single direction)"
        ));
    }
    Ok(())
}

/// Fails early, before any computing, if results cannot be stored in `dir`.
pub fn check_writable(dir: &std::path::Path) -> anyhow::Result<()> {
    let probe = std::fs::create_dir_all(dir).and_then(|()| tempfile::tempfile_in(dir));
    if let Err(e) = probe {
        valleys::bad_input!(
            "{}: cannot store results there ({e}); make the run directory writable or copy it",
            dir.display()
        );
    }
    Ok(())
}

/// Runs the command; returns true if the probe completed.
pub fn run(args: &ProbeArgs, stop: &AtomicBool) -> anyhow::Result<bool> {
    check_flags(args).map_err(BadInput::msg)?;
    let device = DeviceRequest::parse(&args.device)
        .and_then(runtime::choose_device)
        .bad_input()?;
    let saved = SavedRun::load(&args.run_dir, &args.checkpoint, device.device).bad_input()?;
    // What the saved run cannot give is said before anything else is.
    let mut spec = args.probe.spec(&saved.experiment.probe);
    if let Some(ratios) = &args.ratios {
        spec.ratio = ratios.0.first().copied();
    }
    spec.validate().map_err(BadInput::msg)?;
    runner::check_group(&saved.sgd, spec.params).map_err(|e| BadInput::msg(e.to_string()))?;
    check_writable(&valleys::probe::store::dir(&saved.run))?;
    eprintln!(
        "run {} at {} (epoch {}, step {}, {} SWA snapshots) on {}",
        saved.run.root().display(),
        saved.checkpoint.display(),
        saved.state.epoch,
        saved.state.step,
        saved.state.swa_n,
        device.name
    );
    let ctx = saved.context();
    let mut console = Console::new(stop);
    let mut out = std::io::stdout().lock();
    let outcome = match (args.directions.filter(|&n| n > 1), &args.ratios) {
        (Some(n), Some(ratios)) => sweep_ratios(
            &ctx,
            &spec,
            n,
            &ratios.0,
            &saved.run,
            &mut console,
            &mut out,
        ),
        (Some(n), None) => runner::run_batch(&ctx, &spec, n, Some(&saved.run), &mut console)
            .map(|summary| print_batch(&mut out, &summary)),
        (None, _) => runner::run_one(&ctx, &spec, Some(&saved.run), &mut console)
            .map(|result| print_result(&mut out, &result, &saved.run)),
    };
    match outcome {
        Ok(printed) => {
            printed?;
            Ok(true)
        }
        Err(ProbeError::Cancelled) => {
            eprintln!("probe cancelled; nothing written");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

fn print_result(
    out: &mut impl Write,
    r: &ProbeResult,
    run: &valleys::rundir::RunDir,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>8}  {:>10} {:>9}  {:>10} {:>9}",
        "t", "train loss", "train acc", "test loss", "test acc"
    )?;
    for p in &r.points {
        writeln!(
            out,
            "{:>8.3}  {:>10.4} {:>8.1}%  {:>10.4} {:>8.1}%",
            p.t,
            p.train_loss,
            100.0 * p.train_acc,
            p.test_loss,
            100.0 * p.test_acc
        )?;
    }
    for (name, score) in [("train", &r.train_score), ("test", &r.test_score)] {
        match score {
            Some(s) => writeln!(out, "{}", describe_score(name, s))?,
            None => writeln!(
                out,
                "{name}: not scored (the grid must reach both sides of 0)"
            )?,
        }
    }
    let d = &r.direction;
    write!(
        out,
        "direction: |d| {:.4}, |w| {:.3}, sign agreement {:.1}%",
        d.norm,
        d.centre_norm,
        100.0 * d.sign_consistency
    )?;
    if let Some(l) = d.eigenvalue {
        let which = match r.spec.eigenvector.unwrap_or(1) {
            1 => "top Hessian eigenvalue".to_owned(),
            k => format!("Hessian eigenvalue λ{k}"),
        };
        write!(
            out,
            ", {which} {l:.5} ({} Lanczos steps)",
            d.hessian_iterations.unwrap_or(0)
        )?;
    }
    writeln!(out)?;
    if let Some(shift) = &r.shift {
        writeln!(out, "random shift: {}", shift.describe())?;
    }
    if let Some(a) = &r.auto_range {
        writeln!(out, "{}", valleys::probe::describe_auto_range(a))?;
    }
    if let Some(n) = &r.samples {
        writeln!(out, "{}", valleys::probe::describe_samples(n))?;
    }
    let c = &r.cost;
    writeln!(
        out,
        "cost: {:.3} s per point, {:.2}× one forward pass over the same samples ({:.3} s); {:.1} s in all",
        c.seconds_per_point, c.ratio_to_forward, c.forward_seconds, c.seconds
    )?;
    let dir = valleys::probe::store::dir(run);
    writeln!(out, "wrote {}/{}.json and .csv", dir.display(), r.id)
}

pub(super) fn print_batch(out: &mut impl Write, b: &BatchSummary) -> std::io::Result<()> {
    writeln!(
        out,
        "batch {}: {} random directions per centre, asymmetric when c >= {}",
        b.id, b.directions, b.threshold
    )?;
    // Every class, so that the counts add up to the directions.
    let mut header = format!(
        "{:<7} {:>9} {:>14} {:>5} {:>5} {:>6} {:>18} {:>9}  c histogram:",
        "centre", "asym", "% [95% CI]", "sym", "flat", "undec", "median c [95% CI]", "flat +/-"
    );
    let mut lower = 1.0;
    for edge in C_BIN_EDGES {
        header += &format!(" [{lower},{edge})");
        lower = edge;
    }
    header += &format!(" ≥{lower}");
    writeln!(out, "{header}")?;
    for c in &b.centres {
        let s = &c.stats;
        let hist: Vec<String> = c.histogram.iter().map(|n| n.to_string()).collect();
        let median = match (s.median_c, &s.median_c_interval) {
            (Some(m), Some(i)) => format!("{} {}", format_c(m), stats::format_interval(i, 2)),
            (Some(m), None) => format_c(m),
            (None, _) => "–".into(),
        };
        writeln!(
            out,
            "{:<7} {:>5}/{:<3} {:>14} {:>5} {:>5} {:>6} {:>18} {:>5}/{:<3}  {}",
            c.centre,
            s.asymmetric,
            c.probes.len(),
            stats::format_percent(s.fraction_asymmetric, s.fraction_interval.as_ref()),
            s.symmetric,
            s.flat,
            s.undecided,
            median,
            s.flat_plus,
            s.flat_minus,
            hist.join(" ")
        )?;
    }
    for comparison in &b.comparisons {
        writeln!(out, "{}", comparison.describe())?;
    }
    Ok(())
}
