//! The `valleys` command line. Every error ends here as one line on stderr and an exit code.

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
    },
    /// Show the libtorch in use and the devices it can see.
    Info,
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
        } => run(experiment, headless, device, overrides, out),
    }
}

fn run(
    path: PathBuf,
    headless: bool,
    device: Option<String>,
    overrides: Vec<String>,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let experiment = Experiment::load(&path, &overrides)?;
    let request = DeviceRequest::parse(device.as_deref().unwrap_or(&experiment.device))?;
    let device = runtime::choose_device(request)?;
    let root = out.unwrap_or_else(|| RunDir::default_path(&experiment.name));
    let run_dir = RunDir::create(&root, &experiment)?;
    if !headless {
        let why = if std::io::stdout().is_terminal() {
            "the live dashboard is not built yet"
        } else {
            "stdout is not a terminal"
        };
        eprintln!("valleys: running headless ({why})");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let worker = Worker::spawn(WorkerSpec {
        experiment,
        device,
        run_dir,
        stop,
        argv: std::env::args().collect(),
    })
    .context("starting the training worker")?;
    run_headless(worker)
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
    worker.join();
    match outcome {
        Outcome::Completed => Ok(ExitCode::SUCCESS),
        Outcome::Stopped => Ok(ExitCode::from(EXIT_STOPPED)),
        Outcome::Diverged { .. } => Ok(ExitCode::from(EXIT_DIVERGED)),
        Outcome::Failed { message } => anyhow::bail!("{message}"),
    }
}
