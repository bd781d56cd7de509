//! The `valleys` command line: one file per subcommand, each parsing its flags, calling the
//! library and printing; every error ends here as one line on stderr and an exit code.

mod ablate;
mod bench;
mod connect;
mod curvature;
mod data;
mod info;
mod open;
pub(crate) mod plane;
mod probe;
mod progress;
mod report;
mod run;
mod sweep;
mod watch;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use valleys::runtime;
use valleys::ui::UiOptions;
use valleys::ui::theme::Theme;
use valleys::worker;

/// Watch where training ends up in its loss landscape: SGD vs SWA, live.
#[derive(Parser)]
#[command(name = "valleys", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an experiment (SGD, then SWA) and write a run directory.
    Run(run::RunArgs),
    /// Open the dashboard on a run directory written by another (headless) run, following it
    /// as it grows; quitting leaves the run untouched.
    Watch(watch::WatchArgs),
    /// Open the dashboard on a finished (or stopped) run's latest checkpoint, training
    /// nothing, to probe and ablate its weights from the keyboard.
    Open(open::OpenArgs),
    /// Probe a saved checkpoint along a line: loss curves, asymmetry score, files in
    /// RUN_DIR/probes/.
    Probe(probe::ProbeArgs),
    /// The loss over a plane through a saved checkpoint (SWA, SGD and a random direction, or
    /// two random directions) as a heatmap; files in RUN_DIR/planes/.
    Plane(plane::PlaneArgs),
    /// The loss along the straight line between two solutions (RUN[:sgd|:swa][@CHECKPOINT]
    /// each: iterates, checkpoints or runs), BN recomputed at each point, with the barrier and
    /// the two's sign consistency; files in A's connections/.
    Connect(connect::ConnectArgs),
    /// The Hessian at a saved checkpoint's SGD and SWA iterates: top eigenvalues (Lanczos),
    /// trace, spectral density and sharpness, with intervals, beside the probes' asymmetry;
    /// files in RUN_DIR/curvature/.
    Curvature(curvature::CurvatureArgs),
    /// Batch-norm ablations of a finished run: BN-only vs non-BN vs all directions, BN
    /// statistics recomputed vs frozen vs per batch, and N directions per arm, against the
    /// run's no-BN twin (trained first with --twin).
    Ablate(ablate::AblateArgs),
    /// Write publication figures (SVG and PNG) of a run and a report.md that embeds them.
    Report(report::ReportArgs),
    /// Train many variants of an experiment (seeds, models, BN on or off) on this machine or
    /// as a Slurm job array; --status and --cancel follow and stop them.
    Sweep(sweep::SweepArgs),
    /// The data sets fetched on first use (CIFAR-10/100, MNIST, Fashion-MNIST): fill the
    /// cache ahead of a run, or list what it holds and whether it verifies.
    Data(data::DataArgs),
    /// Show the libtorch in use and the devices it can see.
    Info,
    /// Measurements for `make bench` (JSON on stdout).
    #[command(hide = true)]
    Bench(bench::BenchArgs),
}

/// How the dashboard draws; for terminals over slow links or without Unicode or colour.
#[derive(clap::Args, Clone, Copy)]
pub(crate) struct Display {
    /// Draw with ASCII only (no braille, box drawing or block characters).
    #[arg(long)]
    ascii: bool,
    /// No colours (NO_COLOR in the environment does the same).
    #[arg(long)]
    mono: bool,
    /// Redraws per second at most while data arrive.
    #[arg(long, default_value_t = 10.0, value_parser = parse_fps)]
    fps: f64,
}

impl Display {
    pub(crate) fn options(self) -> UiOptions {
        UiOptions {
            theme: Theme::detect(self.ascii, self.mono),
            fps: self.fps,
        }
    }
}

fn parse_fps(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.5..=60.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}': expected a rate between 0.5 and 60 frames per second"
        )),
    }
}

/// Exit codes: 0 done, 1 failure (including an internal error), 2 bad input (a file, field,
/// flag or run directory the user can fix; see `valleys::error`), 3 diverged, 130 stopped by
/// a signal or key.
pub(crate) const EXIT_FAILURE: u8 = 1;
pub(crate) const EXIT_BAD_INPUT: u8 = 2;
pub(crate) const EXIT_DIVERGED: u8 = 3;
pub(crate) const EXIT_STOPPED: u8 = 130;

/// Runs the command line; the process's exit code.
pub fn main() -> ExitCode {
    runtime::tune_allocator();
    // Before anything can ask libtorch about CUDA (see runtime).
    runtime::init_cuda_backend();
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return flag_error(e),
    };
    // The panic hook has said what went wrong, in one line.
    let Ok(result) = std::panic::catch_unwind(|| dispatch(cli)) else {
        return ExitCode::from(EXIT_FAILURE);
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("valleys: error: {}", one_line(&e));
            ExitCode::from(if valleys::error::is_bad_input(&e) {
                EXIT_BAD_INPUT
            } else {
                EXIT_FAILURE
            })
        }
    }
}

/// A flag that does not parse: clap's first line (what and why), exit 2. Help and version
/// requests print as clap prints them.
fn flag_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "the following required arguments were not provided:" names them on the next line.
    let rest: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut line = match (first.ends_with(':'), rest.first()) {
        (true, Some(next)) => format!("{first} {next}"),
        _ => first.to_owned(),
    };
    // What a value may be, when clap says so on a line of its own.
    if let Some(values) = rest.iter().find(|l| l.starts_with("[possible values:")) {
        line = format!("{line} {values}");
    }
    eprintln!("valleys: error: {line} (valleys --help lists the flags)");
    ExitCode::from(EXIT_BAD_INPUT)
}

fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let first = text.lines().next().unwrap_or_default().to_owned();
        if !parts.last().is_some_and(|p| p.contains(&first)) {
            parts.push(first);
        }
    }
    parts.join(": ")
}

/// Panics on the worker thread are reported by the worker itself; anywhere else a panic is a
/// bug, reported in one line without a backtrace.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if std::thread::current().name() == Some(worker::THREAD_NAME)
            || valleys::error::panic_is_caught()
        {
            return;
        }
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let message = valleys::error::one_line_of_panic(&message);
        eprintln!("valleys: internal error: {message}{location}");
    }));
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Bench(args) => {
            bench::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run::run(args),
        Command::Watch(args) => watch::run(&args),
        Command::Open(args) => open::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Info => info::run(),
        Command::Data(args) => data::run(args),
        Command::Ablate(args) => {
            let stop = signal_flag()?;
            if ablate::run(&args, &stop)? {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(EXIT_STOPPED))
            }
        }
        Command::Plane(args) => {
            let stop = signal_flag()?;
            if plane::run(&args, &stop)? {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(EXIT_STOPPED))
            }
        }
        Command::Connect(args) => {
            let stop = signal_flag()?;
            if connect::run(&args, &stop)? {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(EXIT_STOPPED))
            }
        }
        Command::Curvature(args) => {
            let stop = signal_flag()?;
            if curvature::run(&args, &stop)? {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(EXIT_STOPPED))
            }
        }
        Command::Probe(args) => {
            let stop = signal_flag()?;
            if probe::run(&args, &stop)? {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(EXIT_STOPPED))
            }
        }
    }
}

/// A flag raised by SIGINT, SIGTERM and SIGHUP (a dropped SSH connection). A signal that
/// our parent set to be ignored stays ignored: under `nohup` a hang-up must not stop the run,
/// nor Ctrl-C a job started in the background by a script.
pub(crate) fn signal_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        if runtime::signal_is_ignored(signal) {
            continue;
        }
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    Ok(stop)
}
