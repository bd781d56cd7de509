//! `valleys open RUN_DIR`: the dashboard on a run's latest checkpoint with nothing to train,
//! for probes and ablations of a finished (or stopped) run from the keyboard. Nothing the run
//! wrote is changed; probes and ablations add their files as they do during training.

use super::{Display, signal_flag};
use anyhow::Context;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use valleys::config::Experiment;
use valleys::error::BadInputExt;
use valleys::model::Model;
use valleys::rundir::RunDir;
use valleys::runtime::{self, DeviceRequest};
use valleys::train::resume;
use valleys::worker::{Start, Worker, WorkerData, WorkerSpec};

/// Flags of `valleys open`.
#[derive(clap::Args)]
pub struct OpenArgs {
    /// The run directory, e.g. runs/quick-20261127-101500; several: a table of the runs with
    /// their curves in one chart (`c`), Enter opens one.
    #[arg(required = true, num_args = 1..)]
    run_dirs: Vec<PathBuf>,
    /// auto, cpu, cuda or cuda:N (default: the experiment's `device`).
    #[arg(long)]
    device: Option<String>,
    #[command(flatten)]
    display: Display,
}

pub fn run(args: &OpenArgs) -> anyhow::Result<ExitCode> {
    if args.run_dirs.len() > 1 {
        for dir in &args.run_dirs {
            RunDir::open(dir).bad_input()?;
        }
        if !std::io::stdout().is_terminal() {
            valleys::bad_input!("open needs a terminal: stdout is not one");
        }
        let runs = valleys::sweep::RunSet::Dirs(args.run_dirs.clone());
        let stop = signal_flag()?;
        let options = args.display.options();
        valleys::ui::sweep::watch(&runs, options, &stop, &|path| {
            open_one(path, args)
                .map(|_| ())
                .map_err(std::io::Error::other)
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    open_one(&args.run_dirs[0], args)
}

/// The dashboard on one run's latest checkpoint.
fn open_one(path: &std::path::Path, args: &OpenArgs) -> anyhow::Result<ExitCode> {
    let run_dir = RunDir::open(path).bad_input()?;
    if !std::io::stdout().is_terminal() {
        valleys::bad_input!(
            "open needs a terminal: stdout is not one (`valleys probe {}` and `valleys ablate {}` work without)",
            run_dir.root().display(),
            run_dir.root().display()
        );
    }
    // A run that trains holds the lock; so does another dashboard on this one.
    let lock = run_dir.lock().bad_input()?;
    let experiment = Experiment::load(&run_dir.config_path(), &[]).bad_input()?;
    let request =
        DeviceRequest::parse(args.device.as_deref().unwrap_or(&experiment.device)).bad_input()?;
    let device = runtime::choose_device(request).bad_input()?;
    let data = valleys::data::read(&experiment.data, experiment.seed).bad_input()?;
    let input_shape = data.input_shape(experiment.data.pad_to).bad_input()?;
    let layout = Model::layout(&experiment.model, &input_shape, data.classes).bad_input()?;
    resume::check_latest(&run_dir, &experiment, &experiment, &layout).bad_input()?;
    let stop = signal_flag()?;
    let root = run_dir.root().to_owned();
    let monitor = valleys::machine::Monitor::for_this_process(&device.name);
    let worker = Worker::spawn(WorkerSpec {
        experiment,
        device,
        data: WorkerData::Raw(data),
        run_dir,
        start: Start::Open,
        stop: stop.clone(),
        argv: std::env::args().collect(),
    })
    .context("starting the worker")?;
    let (sampler, samples) = valleys::ui::machine_feed(monitor)?;
    let code = super::run::run_with_dashboard(worker, stop, args.display, &root, samples);
    drop(sampler);
    drop(lock);
    code
}
