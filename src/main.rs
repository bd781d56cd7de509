//! The `valleys` command line. Every error ends here as one line on stderr and an exit code.

mod probe_cmd;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use valleys::config::{ConfigError, Experiment};
use valleys::headless::EpochPrinter;
use valleys::protocol::Outcome;
use valleys::rundir::RunDir;
use valleys::runtime::{self, DeviceRequest};
use valleys::ui::theme::Theme;
use valleys::ui::{self, UiOptions};
use valleys::worker::{self, Worker, WorkerSpec};

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
    Run {
        /// The experiment file (YAML), e.g. experiments/quick.yaml.
        experiment: PathBuf,
        /// Print progress lines instead of opening the dashboard.
        #[arg(long)]
        headless: bool,
        /// auto, cpu, cuda or cuda:N (overrides the experiment's `device`).
        #[arg(long)]
        device: Option<String>,
        /// Override a field of the experiment, e.g. --set train.epochs=3 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// The run directory to create (default runs/<name>-<date>-<time>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        display: Display,
    },
    /// Open the dashboard on a run directory written by another (headless) run, following it
    /// as it grows; quitting leaves the run untouched.
    Watch {
        /// The run directory, e.g. runs/quick-20261127-101500.
        run_dir: PathBuf,
        #[command(flatten)]
        display: Display,
    },
    /// Probe a saved checkpoint along a line: loss curves, asymmetry score, files in
    /// RUN_DIR/probes/.
    Probe(probe_cmd::ProbeArgs),
    /// Show the libtorch in use and the devices it can see.
    Info,
}

/// How the dashboard draws; for terminals over slow links or without Unicode or colour.
#[derive(clap::Args, Clone, Copy)]
struct Display {
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
    fn options(self) -> UiOptions {
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

/// Exit codes: 0 done, 1 failure, 2 bad input, 3 diverged, 130 stopped by a signal or key.
const EXIT_FAILURE: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_DIVERGED: u8 = 3;
const EXIT_STOPPED: u8 = 130;

fn main() -> ExitCode {
    // Before anything can ask libtorch about CUDA (see runtime).
    runtime::init_cuda_backend();
    install_panic_hook();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("valleys: error: {}", one_line(&e));
            let bad_input = e.chain().any(|c| {
                c.is::<ConfigError>()
                    || c.is::<runtime::DeviceError>()
                    || c.is::<valleys::rundir::RunDirError>()
            });
            ExitCode::from(if bad_input {
                EXIT_BAD_INPUT
            } else {
                EXIT_FAILURE
            })
        }
    }
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
        if std::thread::current().name() == Some(worker::THREAD_NAME) {
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
        let message = message.lines().next().unwrap_or_default().to_owned();
        eprintln!("valleys: internal error: {message}{location}");
    }));
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Info => {
            println!("{}", runtime::report());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            experiment,
            headless,
            device,
            overrides,
            out,
            display,
        } => run(experiment, headless, device, overrides, out, display),
        Command::Watch { run_dir, display } => watch(&run_dir, display),
        Command::Probe(args) => {
            let stop = signal_flag()?;
            if probe_cmd::run(&args, &stop)? {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(EXIT_STOPPED))
            }
        }
    }
}

fn watch(path: &std::path::Path, display: Display) -> anyhow::Result<ExitCode> {
    let dir = RunDir::open(path)?;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "watch needs a terminal: stdout is not one (read {} instead)",
            dir.metrics_path().display()
        );
    }
    let done = Arc::new(AtomicBool::new(false));
    let events = ui::watch::follow(dir, std::time::Duration::from_millis(500), done.clone());
    let stop = signal_flag()?;
    ui::run_dashboard(events, None, stop, display.options())?;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(ExitCode::SUCCESS)
}

/// A flag raised by SIGINT, SIGTERM and SIGHUP (a dropped SSH connection).
fn signal_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    Ok(stop)
}

fn run(
    path: PathBuf,
    headless: bool,
    device: Option<String>,
    overrides: Vec<String>,
    out: Option<PathBuf>,
    display: Display,
) -> anyhow::Result<ExitCode> {
    let experiment = Experiment::load(&path, &overrides)?;
    let request = DeviceRequest::parse(device.as_deref().unwrap_or(&experiment.device))?;
    let device = runtime::choose_device(request)?;
    let root = out.unwrap_or_else(|| RunDir::default_path(&experiment.name));
    let run_dir = RunDir::create(&root, &experiment)?;
    let dashboard = !headless && std::io::stdout().is_terminal();
    if !headless && !dashboard {
        eprintln!("valleys: stdout is not a terminal: running headless");
    }
    let stop = signal_flag()?;
    let worker = Worker::spawn(WorkerSpec {
        experiment,
        device,
        run_dir,
        stop: stop.clone(),
        argv: std::env::args().collect(),
    })
    .context("starting the training worker")?;
    if dashboard {
        run_with_dashboard(worker, stop, display)
    } else {
        run_headless(worker)
    }
}

fn run_with_dashboard(
    worker: Worker,
    stop: Arc<AtomicBool>,
    display: Display,
) -> anyhow::Result<ExitCode> {
    let Worker {
        commands, events, ..
    } = worker;
    let outcome = ui::run_dashboard(events, Some(commands), stop, display.options())?;
    exit_code(outcome.unwrap_or(Outcome::Stopped))
}

fn exit_code(outcome: Outcome) -> anyhow::Result<ExitCode> {
    match outcome {
        Outcome::Completed => Ok(ExitCode::SUCCESS),
        Outcome::Stopped => Ok(ExitCode::from(EXIT_STOPPED)),
        Outcome::Diverged { .. } => Ok(ExitCode::from(EXIT_DIVERGED)),
        Outcome::Failed { message } => anyhow::bail!("{message}"),
    }
}

fn run_headless(mut worker: Worker) -> anyhow::Result<ExitCode> {
    let mut printer = EpochPrinter::default();
    let mut stdout = std::io::stdout().lock();
    let outcome = loop {
        let Some(event) = worker.events.blocking_recv() else {
            break Outcome::Failed {
                message: "the training worker ended without a word".into(),
            };
        };
        // A closed stdout (e.g. `| head`) must not stop training.
        if let Ok(Some(outcome)) = printer.handle(event, &mut stdout) {
            break outcome;
        }
    };
    worker.finish();
    exit_code(outcome)
}
