//! The `valleys` command line. Every error ends here as one line on stderr and an exit code.

mod ablate_cmd;
mod bench_cmd;
mod probe_cmd;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use valleys::ablation::AblationKind;
use valleys::config::{ConfigError, Experiment};
use valleys::data::DataError;
use valleys::headless::EpochPrinter;
use valleys::model::{Model, ModelError};
use valleys::protocol::Outcome;
use valleys::rundir::RunDir;
use valleys::runtime::{self, DeviceRequest};
use valleys::train::resume;
use valleys::ui::theme::Theme;
use valleys::ui::{self, UiOptions};
use valleys::worker::{self, Worker, WorkerData, WorkerSpec};

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
    Run(RunArgs),
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
    /// Batch-norm ablations of a finished run: BN-only vs non-BN vs all directions, BN
    /// statistics recomputed vs frozen vs per batch, and N directions per arm, against the
    /// run's no-BN twin (trained first with --twin).
    Ablate(ablate_cmd::AblateArgs),
    /// Write publication figures (SVG and PNG) of a run and a report.md that embeds them.
    Report {
        /// The run directory.
        run_dir: PathBuf,
        /// Where to write (default RUN_DIR/report).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Loss axes on a log scale.
        #[arg(long)]
        log: bool,
    },
    /// Show the libtorch in use and the devices it can see.
    Info,
    /// Measurements for `make bench` (JSON on stdout).
    #[command(hide = true)]
    Bench(bench_cmd::BenchArgs),
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
    runtime::tune_allocator();
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
                    || c.is::<DataError>()
                    || c.is::<ModelError>()
                    || c.is::<valleys::train::checkpoint::CheckpointError>()
                    || c.is::<resume::ResumeError>()
                    || c.is::<valleys::export::report::ReportError>()
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
        Command::Bench(args) => {
            bench_cmd::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Info => {
            println!("{}", runtime::report());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run(args),
        Command::Watch { run_dir, display } => watch(&run_dir, display),
        Command::Report { run_dir, out, log } => {
            let run = RunDir::open(&run_dir)?;
            let report = valleys::export::report::write(&run, out.as_deref(), log)?;
            println!(
                "wrote {} with {} figures (SVG and PNG) in {}",
                report.markdown.display(),
                report.figures.len(),
                report.dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ablate(args) => {
            let stop = signal_flag()?;
            if ablate_cmd::run(&args, &stop)? {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(EXIT_STOPPED))
            }
        }
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

/// Flags of `valleys run`.
#[derive(clap::Args)]
struct RunArgs {
    /// The experiment file (YAML), e.g. experiments/quick.yaml.
    #[arg(required_unless_present = "resume", conflicts_with = "resume")]
    experiment: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its latest checkpoint (its config.yaml is the
    /// experiment; --set may change it, e.g. train.epochs).
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
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
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Everything that can be wrong with the input is checked before anything is written.
    let experiment = match (&args.experiment, &args.resume) {
        (_, Some(dir)) => Experiment::load(&RunDir::open(dir)?.config_path(), &args.overrides)?,
        (Some(path), None) => Experiment::load(path, &args.overrides)?,
        (None, None) => unreachable!("clap requires one of them"),
    };
    let request = DeviceRequest::parse(args.device.as_deref().unwrap_or(&experiment.device))?;
    let device = runtime::choose_device(request)?;
    // Read (and check) the data here, but leave every tensor operation to the worker thread.
    let data = valleys::data::read(&experiment.data, experiment.seed)?;
    let input_shape = data.input_shape(experiment.data.pad_to)?;
    Model::check_input(&experiment.model, &input_shape, data.classes)?;
    let run_dir = match &args.resume {
        Some(dir) => {
            let run_dir = RunDir::open(dir)?;
            resume::prepare(&run_dir, &experiment)?;
            run_dir
        }
        None => {
            let root = args
                .out
                .clone()
                .unwrap_or_else(|| RunDir::default_path(&experiment.name));
            RunDir::create(&root, &experiment)?
        }
    };
    let dashboard = !args.headless && std::io::stdout().is_terminal();
    if !args.headless && !dashboard {
        eprintln!("valleys: stdout is not a terminal: running headless");
    }
    let stop = signal_flag()?;
    let ablations = experiment
        .ablation
        .clone()
        .map(|config| (config, experiment.clone(), run_dir.clone(), device.clone()));
    let worker = Worker::spawn(WorkerSpec {
        experiment,
        device,
        data: WorkerData::Raw(data),
        run_dir,
        resume: args.resume.is_some(),
        stop: stop.clone(),
        argv: std::env::args().collect(),
    })
    .context("starting the training worker")?;
    if dashboard {
        return run_with_dashboard(worker, stop, args.display);
    }
    let outcome = print_headless(worker)?;
    if let (Outcome::Completed, Some((config, experiment, run_dir, device))) = (&outcome, ablations)
    {
        let kinds = [
            AblationKind::Groups,
            AblationKind::BnModes,
            AblationKind::Summary,
        ];
        if !ablate_cmd::analyse(
            &run_dir,
            &experiment,
            &config,
            &kinds,
            "final",
            device,
            &stop,
        )? {
            return Ok(ExitCode::from(EXIT_STOPPED));
        }
    }
    exit_code(outcome)
}

fn run_with_dashboard(
    worker: Worker,
    stop: Arc<AtomicBool>,
    display: Display,
) -> anyhow::Result<ExitCode> {
    let (commands, events, thread) = worker.split();
    // The dashboard drops the command sender when it closes, which ends the worker.
    let outcome = ui::run_dashboard(events, Some(commands), stop, display.options())?;
    thread.join();
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

/// Prints a worker's events as lines until its run ends; returns how it ended.
fn print_headless(mut worker: Worker) -> anyhow::Result<Outcome> {
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
    Ok(outcome)
}
