//! `valleys curvature RUN_DIR`: the Hessian's top eigenvalues, trace, spectral density and the
//! sharpness measures at a checkpoint's SGD and SWA iterates, with intervals, beside the
//! asymmetry the run's probes found; results go to RUN_DIR/curvature/.

use super::progress::Progress;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use valleys::config::curvature::{CurvatureBn, CurvatureCentres, CurvatureSpec, SharpnessScale};
use valleys::config::probe::samples;
use valleys::curvature::measure::{self, CurvatureObserver, Plan};
use valleys::curvature::{CurvatureResult, compare, significant, store};
use valleys::error::{BadInput, BadInputExt};
use valleys::probe::ParamGroup;
use valleys::probe::offline::SavedRun;
use valleys::probe::runner::ProbeError;
use valleys::runtime::{self, DeviceRequest};

/// The settings of a curvature job as flags; each one given replaces the experiment's
/// `curvature:` section.
#[derive(Args, Default)]
pub struct CurvatureFlags {
    /// The iterates measured.
    #[arg(long, value_enum)]
    pub centre: Option<CurvatureCentres>,
    /// Parameters whose Hessian block is measured.
    #[arg(long, value_enum)]
    pub params: Option<ParamGroup>,
    /// Batch norm in the loss: batch statistics (as trained) or the checkpoint's (eval).
    #[arg(long, value_enum)]
    pub bn: Option<CurvatureBn>,
    /// Training samples per set, or `all` (default: the run's evaluation subset).
    #[arg(long, value_parser = samples::parse)]
    pub samples: Option<usize>,
    /// Disjoint sample sets: each number's interval over data (default 3).
    #[arg(long)]
    pub sets: Option<usize>,
    /// Top eigenvalues (and eigenvectors) by Lanczos, 1 to 10 (default 3).
    #[arg(long = "top-k")]
    pub top_k: Option<usize>,
    /// The most Lanczos steps (default 60).
    #[arg(long = "lanczos-steps")]
    pub lanczos_steps: Option<usize>,
    /// Converged when each top Ritz value's residual is within this fraction (default 0.001).
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// Rademacher vectors of the trace (0: no trace; default 20).
    #[arg(long = "trace-vectors")]
    pub trace_vectors: Option<usize>,
    /// SLQ runs per set for the spectral density (0: none; default 2).
    #[arg(long = "density-runs")]
    pub density_runs: Option<usize>,
    /// Lanczos steps of each SLQ run (default 30).
    #[arg(long = "density-steps")]
    pub density_steps: Option<usize>,
    /// Relative scale of the sharpness measures (default 0.01): noise of ρ times each weight,
    /// and the worst case within ±ρ times each weight.
    #[arg(long, allow_hyphen_values = true)]
    pub rho: Option<f64>,
    /// adaptive: each weight moves in proportion to itself; plain: by ρ times the RMS weight.
    #[arg(long, value_enum)]
    pub scale: Option<SharpnessScale>,
    /// Gaussian draws of the average-case sharpness (0: none; default 10).
    #[arg(long = "noise-draws")]
    pub noise_draws: Option<usize>,
    /// Gradient-ascent steps of the worst-case sharpness (0: none; default 5).
    #[arg(long = "ascent-steps")]
    pub ascent_steps: Option<usize>,
    /// Samples per forward pass (the BN batch with --bn batch; default train.batch_size).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Seed of the random vectors (default: the experiment's).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl CurvatureFlags {
    /// `base` (the experiment's section) with these flags applied.
    pub fn spec(&self, base: &CurvatureSpec) -> CurvatureSpec {
        let mut s = base.clone();
        if let Some(v) = self.centre {
            s.centre = v;
        }
        if let Some(v) = self.params {
            s.params = v;
        }
        if let Some(v) = self.bn {
            s.bn = v;
        }
        if let Some(v) = self.scale {
            s.scale = v;
        }
        for (target, value) in [
            (&mut s.samples, self.samples),
            (&mut s.sets, self.sets),
            (&mut s.top_k, self.top_k),
            (&mut s.lanczos_steps, self.lanczos_steps),
            (&mut s.trace_vectors, self.trace_vectors),
            (&mut s.density_runs, self.density_runs),
            (&mut s.density_steps, self.density_steps),
            (&mut s.noise_draws, self.noise_draws),
            (&mut s.ascent_steps, self.ascent_steps),
            (&mut s.batch, self.batch),
        ] {
            if value.is_some() {
                *target = value;
            }
        }
        for (target, value) in [(&mut s.tolerance, self.tolerance), (&mut s.rho, self.rho)] {
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

/// Flags of `valleys curvature`.
#[derive(Args)]
pub struct CurvatureArgs {
    /// The run directory, e.g. runs/quick-20261127-101500.
    pub run_dir: PathBuf,
    /// Checkpoint: latest, final, epoch-NNNN, or a path.
    #[arg(long, default_value = "latest")]
    pub checkpoint: String,
    #[command(flatten)]
    pub flags: CurvatureFlags,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// Says the plan and the progress on stderr; a signal cancels.
struct Console<'a> {
    stop: &'a AtomicBool,
    progress: Progress,
    tty: bool,
}

impl CurvatureObserver for Console<'_> {
    fn planned(&mut self, plan: &Plan) {
        eprintln!("curvature: {}", plan.describe());
        self.progress = Progress::counting("curvature", plan.products, "products");
    }

    fn progress(&mut self, done: usize, _planned: usize, _what: &str) {
        self.progress.reach(done, self.tty);
    }

    fn cancelled(&mut self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Runs the command; returns true if the job completed.
pub fn run(args: &CurvatureArgs, stop: &AtomicBool) -> anyhow::Result<bool> {
    args.flags
        .spec(&CurvatureSpec::default())
        .validate()
        .map_err(|e| BadInput::msg(e.0))?;
    let device = DeviceRequest::parse(&args.device)
        .and_then(runtime::choose_device)
        .bad_input()?;
    let saved = SavedRun::load(&args.run_dir, &args.checkpoint, device.device).bad_input()?;
    let spec = args.flags.spec(&saved.experiment.curvature);
    let ctx = saved.context();
    let defaults = measure::run_defaults(&saved.experiment, &saved.data);
    // What the saved run cannot give is said before anything is computed or written.
    measure::check(&ctx, &spec, defaults).map_err(|e| BadInput::msg(e.to_string()))?;
    super::probe::check_writable(&store::dir(&saved.run))?;
    eprintln!(
        "run {} at {} (epoch {}, step {}, {} SWA snapshots) on {}",
        saved.run.root().display(),
        saved.checkpoint.display(),
        saved.state.epoch,
        saved.state.step,
        saved.state.swa_n,
        device.name
    );
    if spec.centre == valleys::config::curvature::CurvatureCentres::Both && ctx.swa.is_none() {
        eprintln!(
            "valleys: centre both: the SWA average holds no snapshot yet at epoch {}; measuring SGD only",
            saved.state.epoch
        );
    }
    let mut console = Console {
        stop,
        progress: Progress::counting("curvature", 0, "products"),
        tty: std::io::stderr().is_terminal(),
    };
    match measure::run(&ctx, &spec, defaults, Some(&saved.run), &mut console) {
        Ok(result) => {
            let (batches, _) = valleys::probe::store::read_batches(&saved.run);
            let mut out = std::io::stdout().lock();
            print_result(&mut out, &result, batches.last())?;
            writeln!(
                out,
                "wrote {}/{}.json and .csv",
                store::dir(&saved.run).display(),
                result.id
            )?;
            Ok(true)
        }
        Err(ProbeError::Cancelled) => {
            eprintln!("curvature cancelled; nothing written");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// A job on a saved run's weights, stored in it, with the plan and progress on stderr: what a
/// sweep runs on each variant after training.
pub fn measure(
    saved: &SavedRun,
    spec: &CurvatureSpec,
    stop: &AtomicBool,
) -> Result<CurvatureResult, ProbeError> {
    let defaults = measure::run_defaults(&saved.experiment, &saved.data);
    let mut console = Console {
        stop,
        progress: Progress::counting("curvature", 0, "products"),
        tty: std::io::stderr().is_terminal(),
    };
    measure::run(
        &saved.context(),
        spec,
        defaults,
        Some(&saved.run),
        &mut console,
    )
}

/// The numbers of a job: per centre, the eigenvalues with their residuals and spread over the
/// sets, then the comparison table with the asymmetry of `batch`.
pub fn print_result(
    out: &mut impl Write,
    r: &CurvatureResult,
    batch: Option<&valleys::probe::summary::BatchSummary>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "curvature {}: {}; Hessian over {} parameters ({}); 95% intervals {}",
        r.id,
        r.loss,
        valleys::format::group_thousands(r.dimension),
        r.settings.params.as_str(),
        if r.settings.sets > 1 {
            "over the sample sets"
        } else {
            "over the random vectors (one sample set)"
        }
    )?;
    for c in &r.centres {
        let eigen: Vec<String> = c
            .eigenvalues
            .iter()
            .enumerate()
            .map(|(i, e)| format!("λ{} {}", i + 1, e.describe(4)))
            .collect();
        writeln!(
            out,
            "{}: loss {} · {}",
            c.centre,
            c.loss.describe(4),
            eigen.join(" · ")
        )?;
        let steps: Vec<String> = c.sets.iter().map(|s| s.lanczos_steps.to_string()).collect();
        let residual = c
            .sets
            .iter()
            .flat_map(|s| s.residuals.iter().copied())
            .fold(0.0, f64::max);
        let mut details = format!(
            "     Lanczos steps per set {}, largest residual bound {}",
            steps.join("/"),
            significant(residual, 2)
        );
        if let Some(spread) = c.top_relative_spread {
            details += &format!(", λ1 spread over sets {:.1}%", 100.0 * spread);
        }
        writeln!(out, "{details}")?;
        let mut numbers = Vec::new();
        if let Some(t) = c.trace {
            numbers.push(format!("trace {}", t.describe(4)));
        }
        if let Some(a) = c.average_sharpness {
            numbers.push(format!("average sharpness {}", a.describe(3)));
        }
        if let Some(w) = c.worst_sharpness {
            numbers.push(format!("worst-case sharpness {}", w.describe(3)));
        }
        if !numbers.is_empty() {
            writeln!(out, "     {}", numbers.join(" · "))?;
        }
    }
    writeln!(
        out,
        "sharpness ({}, ρ = {}): the loss increase under Gaussian noise of {} (average, over {} draws) and the largest within {} ({} steps of projected gradient ascent)",
        r.settings.scale.as_str(),
        r.settings.rho,
        match r.settings.scale {
            SharpnessScale::Adaptive => "ρ times each weight",
            SharpnessScale::Plain => "ρ times the RMS weight",
        },
        r.settings.noise_draws,
        match r.settings.scale {
            SharpnessScale::Adaptive => "±ρ times each weight",
            SharpnessScale::Plain => "±ρ times the RMS weight",
        },
        r.settings.ascent_steps
    )?;
    writeln!(out, "{}", compare::text(&compare::rows(r, batch)))?;
    match batch {
        Some(b) => writeln!(
            out,
            "asymmetry from probe batch {} ({} random directions per centre)",
            b.id, b.directions
        )?,
        None => writeln!(
            out,
            "no asymmetry yet: `valleys probe RUN_DIR --directions 10` adds it to this table"
        )?,
    }
    let c = &r.cost;
    writeln!(
        out,
        "cost: {} Hessian-vector products, {:.3} s each ({:.2}× one forward and backward pass, {:.3} s); {} in all",
        c.products,
        c.seconds_per_product,
        c.ratio,
        c.forward_backward_seconds,
        valleys::format::clock(c.seconds)
    )
}
