//! `valleys run`: train an experiment (or resume a run) with the dashboard or headless.

use super::{Display, EXIT_DIVERGED, EXIT_STOPPED, signal_flag};
use anyhow::Context;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use valleys::ablation::AblationKind;
use valleys::config::{Arch, Experiment, Norm};
use valleys::error::BadInputExt;
use valleys::machine::{Monitor, Sampler};
use valleys::model::{Layout, Model};
use valleys::protocol::Outcome;
use valleys::rundir::{RunDir, RunLock};
use valleys::runtime::{self, DeviceRequest};
use valleys::train::resume;
use valleys::ui;
use valleys::worker::{Worker, WorkerData, WorkerSpec};

/// Flags of `valleys run`.
#[derive(clap::Args)]
pub struct RunArgs {
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
    let experiment = load_experiment(args)?;
    let stored = match &args.resume {
        Some(dir) => Some(Experiment::load(&RunDir::open(dir)?.config_path(), &[])?),
        None => None,
    };
    let request = DeviceRequest::parse(args.device.as_deref().unwrap_or(&experiment.device))?;
    let device = runtime::choose_device(request)?;
    // Read (and check) the data here, but leave every tensor operation to the worker thread.
    let data = valleys::data::read(&experiment.data, experiment.seed)?;
    let input_shape = data.input_shape(experiment.data.pad_to)?;
    let layout = Model::layout(&experiment.model, &input_shape, data.classes)?;
    check_torchscript(&experiment, &data)?;
    let (train_samples, test_samples) = data.sample_counts(&experiment.data);
    let m = &experiment.model;
    if m.arch == Arch::Mlp && m.norm == Norm::Batch && train_samples < 2 {
        valleys::bad_input!(
            "data.train_subset: {train_samples} training sample; batch norm on an mlp needs at least 2 (one sample has no batch variance)"
        );
    }
    if experiment.curvature.every_epochs.is_some() {
        // The tracker's sample set must fit the run's data before anything starts.
        let defaults = valleys::config::curvature::RunDefaults {
            seed: experiment.seed,
            eval_subset: experiment
                .eval
                .train_subset
                .map_or(train_samples, |n| n.min(train_samples)),
            train_samples,
            train_batch: experiment.train.batch_size as usize,
        };
        if let Err(e) = experiment.curvature.for_tracking().resolved(defaults) {
            valleys::bad_input!("{e}");
        }
    }
    if !device.device.is_cuda()
        && let Some((available, why)) = valleys::footprint::available_cpu_memory()
    {
        let footprint = valleys::footprint::Footprint::estimate(
            &experiment,
            &layout,
            (train_samples as u64, test_samples as u64),
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

/// Runs a TorchScript model (and its named no-BN twin) on a batch of the data: a module that
/// does not fit the data fails here, in one line, before anything is created.
pub fn check_torchscript(
    experiment: &Experiment,
    data: &valleys::data::RawDataset,
) -> anyhow::Result<()> {
    if experiment.model.arch != Arch::Torchscript {
        return Ok(());
    }
    let twin = experiment
        .ablation
        .as_ref()
        .and_then(|a| a.twin_model.as_deref());
    for path in experiment.model.path.as_deref().into_iter().chain(twin) {
        valleys::model::torchscript::check_with_data(path, experiment, data)?;
    }
    if experiment.ablation.is_some()
        && let Some(why) = valleys::ablation::without_bn(experiment)
    {
        anyhow::bail!("ablation: {why}; remove the ablation section or use a model with BN");
    }
    Ok(())
}

/// The experiment `valleys run` will train: the file, or the resumed run's stored one.
fn load_experiment(args: &RunArgs) -> anyhow::Result<Experiment> {
    Ok(match (&args.experiment, &args.resume) {
        (_, Some(dir)) => Experiment::load(&RunDir::open(dir)?.config_path(), &args.overrides)?,
        (Some(path), None) => Experiment::load(path, &args.overrides)?,
        (None, None) => unreachable!("clap requires one of them"),
    })
}

/// A data set the run needs and the cache lacks is fetched under the dashboard's first
/// screen, so that the terminal shows its progress where the dashboard will open. `false`
/// when the user stopped it.
fn fetch_under_dashboard(args: &RunArgs, signalled: &AtomicBool) -> anyhow::Result<bool> {
    let experiment = load_experiment(args).bad_input()?;
    let Some(set) = valleys::data::to_fetch(&experiment.data) else {
        return Ok(true);
    };
    let cache = valleys::data::fetch::Cache::from_env().bad_input()?;
    let state = ui::starting::Fetching {
        title: format!(
            "valleys {} · {}",
            env!("CARGO_PKG_VERSION"),
            experiment.name
        ),
        set: set.dataset.as_str().to_owned(),
        set_bytes: set.download_bytes(),
        cache: cache.dir(set).display().to_string(),
        ..Default::default()
    };
    let data = experiment.data.clone();
    let fetched =
        ui::starting::while_fetching(state, args.display.options().theme, signalled, move || {
            valleys::data::fetch_if_needed(&data)
        })?;
    match fetched {
        None => {
            eprintln!(
                "valleys: {}",
                valleys::data::fetch::stopped_words(&cache, set)
            );
            Ok(false)
        }
        Some(result) => {
            result.bad_input()?;
            Ok(true)
        }
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // From here on a signal stops the run with a checkpoint, or a fetch with what it has.
    let stop = signal_flag()?;
    valleys::data::fetch::stop_when(stop.clone());
    let signalled = || stop.load(std::sync::atomic::Ordering::SeqCst);
    if !args.headless && std::io::stdout().is_terminal() {
        match fetch_under_dashboard(&args, &stop) {
            Ok(true) => {}
            Ok(false) => return Ok(ExitCode::from(EXIT_STOPPED)),
            Err(e) if signalled() => {
                eprintln!("valleys: {e}");
                return Ok(ExitCode::from(EXIT_STOPPED));
            }
            Err(e) => return Err(e),
        }
    }
    // Everything that can be wrong with the input is checked before anything is written.
    let checked = match check_run(&args) {
        Err(e) if signalled() => {
            eprintln!("valleys: {e}");
            return Ok(ExitCode::from(EXIT_STOPPED));
        }
        checked => checked.bad_input()?,
    };
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
    let ablations = experiment
        .ablation
        .clone()
        .map(|config| (config, experiment.clone(), run_dir.clone(), device.clone()));
    let dir_for_farewell = run_dir.root().to_owned();
    let kept = run_dir.clone();
    let monitor = Monitor::for_this_process(&device.name);
    let worker = Worker::spawn(WorkerSpec {
        experiment,
        device,
        data: WorkerData::Raw(data),
        run_dir,
        start: valleys::worker::Start::resuming(args.resume.is_some()),
        stop: stop.clone(),
        argv: std::env::args().collect(),
    })
    .context("starting the training worker")?;
    if dashboard {
        let (sampler, samples) = ui::machine_feed(monitor)?;
        let code = run_with_dashboard(worker, stop, args.display, &dir_for_farewell, samples);
        keep_peaks(&kept, &sampler.stop());
        return code;
    }
    let sampler = Sampler::start(monitor, Duration::from_secs(2), |_| {})?;
    let outcome = valleys::headless::follow(worker);
    keep_peaks(&kept, &sampler.stop());
    if let (Outcome::Completed, Some((config, experiment, run_dir, device))) = (&outcome, ablations)
        && !super::ablate::analyse(
            &run_dir,
            &experiment,
            &config,
            AblationKind::ALL,
            "final",
            device,
            &stop,
        )?
    {
        return Ok(ExitCode::from(EXIT_STOPPED));
    }
    exit_code(outcome)
}

/// The run's peak memory into run.json; a run that cannot be written says so and goes on.
fn keep_peaks(run: &RunDir, peaks: &valleys::machine::Peaks) {
    if let Err(e) = valleys::machine::record_peaks(run, peaks) {
        eprintln!("valleys: could not keep the peak memory in run.json: {e}");
    }
}

pub(super) fn run_with_dashboard(
    worker: Worker,
    stop: Arc<AtomicBool>,
    display: Display,
    run_dir: &std::path::Path,
    machine: tokio::sync::mpsc::UnboundedReceiver<valleys::machine::MachineSample>,
) -> anyhow::Result<ExitCode> {
    let (commands, events, thread) = worker.split();
    // The dashboard drops the command sender when it closes, which ends the worker.
    let outcome = ui::run_dashboard(
        events,
        Some(commands),
        stop,
        display.options(),
        Some(machine),
    )?;
    thread.join();
    let outcome = outcome.unwrap_or(Outcome::Stopped);
    // The terminal is restored by now: say where the run is and what to run next.
    if !matches!(outcome, Outcome::Failed { .. }) {
        println!("{}", valleys::headless::farewell(run_dir, &outcome));
    }
    exit_code(outcome)
}

fn exit_code(outcome: Outcome) -> anyhow::Result<ExitCode> {
    match outcome {
        Outcome::Completed => Ok(ExitCode::SUCCESS),
        Outcome::Stopped => Ok(ExitCode::from(EXIT_STOPPED)),
        Outcome::Diverged { .. } => Ok(ExitCode::from(EXIT_DIVERGED)),
        Outcome::Failed { message } => anyhow::bail!("{message}"),
    }
}
