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
use valleys::config::Experiment;
use valleys::error::{BadInput, BadInputExt};
use valleys::headless::EpochPrinter;
use valleys::model::{Layout, Model};
use valleys::protocol::Outcome;
use valleys::rundir::{RunDir, RunLock};
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
        /// Write into --out even if it already holds files.
        #[arg(long)]
        force: bool,
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

/// Exit codes: 0 done, 1 failure (including an internal error), 2 bad input (a file, field,
/// flag or run directory the user can fix; see `valleys::error`), 3 diverged, 130 stopped by
/// a signal or key.
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
        Command::Report {
            run_dir,
            out,
            log,
            force,
        } => {
            use valleys::export::report::{self, ReportError};
            let run = RunDir::open(&run_dir).bad_input()?;
            let report = report::write(&run, out.as_deref(), log, force).map_err(|e| match e {
                ReportError::OutExists(_) | ReportError::Config(_) => {
                    anyhow::Error::from(BadInput::new(e))
                }
                e => e.into(),
            })?;
            for problem in &report.unreadable {
                eprintln!("valleys: warning: left out of the report: {problem}");
            }
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
    let dir = RunDir::open(path).bad_input()?;
    if !std::io::stdout().is_terminal() {
        valleys::bad_input!(
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

/// A flag raised by SIGINT, SIGTERM and SIGHUP (a dropped SSH connection). A signal that
/// our parent set to be ignored stays ignored: under `nohup` a hang-up must not stop the run,
/// nor Ctrl-C a job started in the background by a script.
fn signal_flag() -> anyhow::Result<Arc<AtomicBool>> {
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

/// What `valleys run` checked before writing anything.
struct CheckedRun {
    experiment: Experiment,
    /// The run directory's stored experiment, when resuming.
    stored: Option<Experiment>,
    device: runtime::DeviceChoice,
    data: valleys::data::RawDataset,
    layout: Layout,
}

/// Every check of `valleys run`'s input; nothing is written.
fn check_run(args: &RunArgs) -> anyhow::Result<CheckedRun> {
    let (experiment, stored) = match (&args.experiment, &args.resume) {
        (_, Some(dir)) => {
            let config = RunDir::open(dir)?.config_path();
            let stored = Experiment::load(&config, &[])?;
            (Experiment::load(&config, &args.overrides)?, Some(stored))
        }
        (Some(path), None) => (Experiment::load(path, &args.overrides)?, None),
        (None, None) => unreachable!("clap requires one of them"),
    };
    let request = DeviceRequest::parse(args.device.as_deref().unwrap_or(&experiment.device))?;
    let device = runtime::choose_device(request)?;
    // Read (and check) the data here, but leave every tensor operation to the worker thread.
    let data = valleys::data::read(&experiment.data, experiment.seed)?;
    let input_shape = data.input_shape(experiment.data.pad_to)?;
    let layout = Model::layout(&experiment.model, &input_shape, data.classes)?;
    if !device.device.is_cuda()
        && let Some((available, why)) = valleys::footprint::available_cpu_memory()
    {
        let footprint = valleys::footprint::Footprint::estimate(
            &experiment,
            &layout,
            data.sample_count(&experiment.data) as u64,
            input_shape.iter().product::<i64>() as u64,
            data.raw_bytes() as u64,
        );
        footprint
            .check(available, why, &experiment)
            .map_err(anyhow::Error::msg)?;
    }
    Ok(CheckedRun {
        experiment,
        stored,
        device,
        data,
        layout,
    })
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Everything that can be wrong with the input is checked before anything is written.
    let checked = check_run(&args).bad_input()?;
    let CheckedRun {
        experiment,
        stored,
        device,
        data,
        layout,
    } = checked;
    let (run_dir, _lock): (RunDir, RunLock) = match &args.resume {
        Some(dir) => {
            let run_dir = RunDir::open(dir).bad_input()?;
            let lock = run_dir.lock().bad_input()?;
            let stored = stored.as_ref().expect("read with the resume directory");
            match resume::prepare(&run_dir, stored, &experiment, &layout).bad_input()? {
                resume::Resumption::From(_) => {}
                resume::Resumption::Recovered(what) => {
                    for line in what {
                        eprintln!("valleys: {line}");
                    }
                    println!(
                        "{}: the run had finished its {} epochs; nothing to train",
                        run_dir.root().display(),
                        experiment.train.epochs
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            }
            (run_dir, lock)
        }
        None => {
            let root = args
                .out
                .clone()
                .unwrap_or_else(|| RunDir::default_path(&experiment.name));
            let run_dir = RunDir::create(&root, &experiment).bad_input()?;
            let lock = run_dir.lock()?;
            (run_dir, lock)
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
