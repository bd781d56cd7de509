//! `valleys sweep`: many runs of one experiment, on this machine (`--executor local`, child
//! processes) or on a Slurm cluster (`--executor slurm`, one `sbatch` job array); their
//! status, their cancellation, and (hidden) the task that trains one variant.

use super::{EXIT_STOPPED, signal_flag};
use anyhow::Context;
use clap::{Args, Parser, ValueEnum};
use std::path::PathBuf;
use std::process::{Child, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use valleys::config::Experiment;
use valleys::error::{BadInput, BadInputExt};
use valleys::model::Model;
use valleys::probe::offline::SavedRun;
use valleys::probe::runner;
use valleys::rundir::RunDir;
use valleys::runtime::{self, DeviceRequest};
use valleys::sweep::report::{self, RunSummary};
use valleys::sweep::{SweepDir, SweepFile, Variant, VariantState, slurm};

mod local;
mod pairs;

use local::{local, task};

/// Where the variants run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Executor {
    /// Child processes on this machine, --jobs at once.
    Local,
    /// One sbatch job array on a Slurm cluster.
    Slurm,
}

impl Executor {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Slurm => "slurm",
        }
    }
}

/// Flags of `valleys sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// A sweep file (YAML) to start, or a sweep directory to continue (finished variants
    /// are skipped, stopped ones resume).
    pub target: PathBuf,
    /// local (child processes here) or slurm (an sbatch job array); a directory keeps the
    /// one it was started with.
    #[arg(long, value_enum)]
    pub executor: Option<Executor>,
    /// Variants trained at once by the local executor (default: the number of GPUs, else 1).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Check every variant and print the plan (and the Slurm script); create nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// The sweep directory to create (default sweeps/<name>-<date>-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print where each variant of SWEEP_DIR stands.
    #[arg(long, conflicts_with_all = ["cancel", "task", "executor", "dry_run", "out", "jobs"])]
    pub status: bool,
    /// Stop SWEEP_DIR's jobs (scancel, or SIGTERM to the local executor): runs checkpoint.
    #[arg(long, conflicts_with_all = ["task", "executor", "dry_run", "out", "jobs"])]
    pub cancel: bool,
    /// Train variant INDEX of SWEEP_DIR (what each job runs).
    #[arg(long, hide = true, value_name = "INDEX")]
    pub task: Option<usize>,
}

/// Most variants trained at once here.
const MAX_JOBS: usize = 256;

pub fn run(args: &SweepArgs) -> anyhow::Result<ExitCode> {
    if args.status {
        return status(&SweepDir::open(&args.target).bad_input()?);
    }
    if args.cancel {
        return cancel(&SweepDir::open(&args.target).bad_input()?);
    }
    if let Some(index) = args.task {
        return task(&SweepDir::open(&args.target).bad_input()?, index);
    }
    if let Some(n) = args.jobs
        && !(1..=MAX_JOBS).contains(&n)
    {
        valleys::bad_input!("--jobs {n}: expected 1..={MAX_JOBS} variants at once");
    }
    if args.target.is_dir() {
        let dir = SweepDir::open(&args.target).bad_input()?;
        let executor = match (args.executor, dir.jobs()) {
            (Some(e), _) => e,
            (None, Some(jobs)) if jobs.executor == "slurm" => Executor::Slurm,
            _ => Executor::Local,
        };
        println!("continuing sweep {}", dir.root.display());
        return launch(&dir, executor, args.jobs);
    }
    let text = std::fs::read_to_string(&args.target)
        .with_context(|| format!("{}: cannot read the sweep file", args.target.display()))
        .bad_input()?;
    let file = SweepFile::load(&args.target).bad_input()?;
    let executor = args.executor.unwrap_or(Executor::Local);
    let variants = file.variants();
    let check = checker();
    if args.dry_run {
        return dry_run(args, &file, executor, &check);
    }
    if executor == Executor::Slurm {
        // Before a data set is fetched or a file written for an array that cannot be submitted.
        slurm::check_client().map_err(BadInput::msg)?;
    }
    // Every variant is checked first (without downloading anything); then the data sets they
    // need are fetched once, here (a login node has the internet a compute node may lack).
    for v in &variants {
        let exp = file.experiment_of(v).bad_input()?;
        check(v, &exp).map_err(|m| BadInput::msg(format!("variant {}: {m}", v.id)))?;
    }
    fetch_data(&file, &variants)?;
    let root = args
        .out
        .clone()
        .unwrap_or_else(|| SweepDir::default_path(&file.name));
    let root = std::path::absolute(&root).unwrap_or(root);
    if executor == Executor::Slurm && root.display().to_string().contains(char::is_whitespace) {
        valleys::bad_input!(
            "{}: a Slurm sweep directory may not contain spaces (#SBATCH lines cannot quote them); choose another --out",
            root.display()
        );
    }
    let dir = SweepDir::create(&root, &file, &text, &check).bad_input()?;
    let created = format!(
        "sweep {}: {} variants of {} in {}",
        file.name,
        variants.len(),
        file.experiment.display(),
        dir.root.display()
    );
    // A Slurm sweep exists once sbatch took it (a refused one leaves nothing).
    if executor == Executor::Local {
        println!("{created}");
    }
    if executor == Executor::Slurm {
        std::fs::write(
            dir.root.join("job.sbatch"),
            slurm::script(
                &file.slurm,
                &file.name,
                &dir.root,
                &std::env::current_exe()?,
                variants.len(),
            ),
        )?;
    }
    if executor == Executor::Slurm {
        let launched = launch(&dir, executor, args.jobs);
        // A submission Slurm refused leaves nothing behind.
        if launched.is_err() && dir.jobs().is_none() {
            let _ = std::fs::remove_dir_all(&dir.root);
        } else {
            println!("{created}");
        }
        return launched;
    }
    launch(&dir, executor, args.jobs)
}

/// `--dry-run`: every variant checked as a sweep would check it before creating anything,
/// listed, and for Slurm the job script it would submit; nothing is created.
fn dry_run(
    args: &SweepArgs,
    file: &SweepFile,
    executor: Executor,
    check: &dyn Fn(&Variant, &valleys::config::Experiment) -> Result<(), String>,
) -> anyhow::Result<ExitCode> {
    let variants = file.variants();
    for v in &variants {
        let exp = file.experiment_of(v).bad_input()?;
        check(v, &exp).map_err(|m| BadInput::msg(format!("variant {}: {m}", v.id)))?;
        println!("{}", v.id);
    }
    println!(
        "{} variants of {} checked; nothing created (drop --dry-run to start them, --executor {})",
        variants.len(),
        file.experiment.display(),
        executor.as_str()
    );
    if executor == Executor::Slurm {
        let root = args
            .out
            .clone()
            .unwrap_or_else(|| SweepDir::default_path(&file.name));
        print!(
            "{}",
            slurm::script(
                &file.slurm,
                &file.name,
                &std::path::absolute(&root).unwrap_or(root),
                &std::env::current_exe()?,
                variants.len()
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The named data sets the variants read that are not in the cache yet, fetched once each.
fn fetch_data(file: &SweepFile, variants: &[Variant]) -> anyhow::Result<()> {
    for v in variants {
        let exp = file.experiment_of(v).bad_input()?;
        valleys::data::fetch_if_needed(&exp.data).bad_input()?;
    }
    Ok(())
}

/// Checks what can be checked of a variant before anything runs: its data can be read and
/// its model laid out (data read once per distinct data section). A named set that is not in
/// the cache is not downloaded for a check: its catalog entry gives the shape of its images.
fn checker() -> impl Fn(&Variant, &Experiment) -> Result<(), String> {
    let shapes = std::cell::RefCell::new(std::collections::HashMap::new());
    move |_v: &Variant, exp: &Experiment| {
        let key = serde_yaml::to_string(&exp.data).unwrap_or_default();
        let mut shapes = shapes.borrow_mut();
        if !shapes.contains_key(&key) {
            let (shape, classes) = match valleys::data::fetch_plan(&exp.data) {
                Some((words, image, classes)) => {
                    println!("data: {words}");
                    (
                        valleys::data::padded_shape(&image, exp.data.pad_to)
                            .map_err(|e| e.to_string())?,
                        classes,
                    )
                }
                None => {
                    let data =
                        valleys::data::read(&exp.data, exp.seed).map_err(|e| e.to_string())?;
                    let shape = data
                        .input_shape(exp.data.pad_to)
                        .map_err(|e| e.to_string())?;
                    (shape, data.classes)
                }
            };
            shapes.insert(key.clone(), (shape, classes));
        }
        let (shape, classes) = &shapes[&key];
        Model::layout(&exp.model, shape, *classes).map_err(|e| e.to_string())?;
        DeviceRequest::parse(&exp.device).map_err(|e| e.to_string())?;
        if exp.model.arch == valleys::config::Arch::Torchscript {
            // The module runs as the variant will train it, before any task starts.
            let data = valleys::data::read(&exp.data, exp.seed).map_err(|e| e.to_string())?;
            super::run::check_torchscript(exp, &data).map_err(|e| format!("{e:#}"))?;
        }
        Ok(())
    }
}

fn launch(dir: &SweepDir, executor: Executor, jobs: Option<usize>) -> anyhow::Result<ExitCode> {
    match executor {
        Executor::Slurm => {
            // Once the array has trained every variant, continuing the sweep measures the
            // pairs its `connect:` section asks for, here.
            let variants = dir.variants().bad_input()?;
            if dir.connect().is_some() && variants.iter().all(|v| dir.state(v).is_final()) {
                let stop = signal_flag()?;
                return Ok(ExitCode::from(pairs::connect_pairs(dir, &stop)?));
            }
            let script = dir.root.join("job.sbatch");
            if !script.is_file() {
                valleys::bad_input!(
                    "{}: no job.sbatch (the sweep was started with the local executor; continue it with --executor local)",
                    dir.root.display()
                );
            }
            let id = slurm::submit(&script).map_err(BadInput::msg)?;
            let mut record = dir.jobs_for("slurm").bad_input()?;
            record.job_id = Some(id.clone());
            dir.write_jobs(&record)?;
            println!(
                "submitted Slurm job {id}: {} array tasks; `valleys sweep --status {}` follows them",
                record.variants.len(),
                dir.root.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Executor::Local => local(dir, jobs),
    }
}

fn status(dir: &SweepDir) -> anyhow::Result<ExitCode> {
    print_status(dir)?;
    Ok(ExitCode::SUCCESS)
}

/// Every variant's state, progress and numbers, one line each.
fn print_status(dir: &SweepDir) -> anyhow::Result<()> {
    let variants = dir.variants().bad_input()?;
    let jobs = dir.jobs();
    let queued: Vec<(usize, String)> = jobs
        .as_ref()
        .and_then(|j| j.job_id.as_deref())
        .map(slurm::queue)
        .unwrap_or_default();
    let summaries: Vec<RunSummary> = variants.iter().map(|v| report::summarise(dir, v)).collect();
    let count = |s: VariantState| summaries.iter().filter(|r| r.state == s).count();
    let how = match &jobs {
        Some(j) if j.executor == "slurm" => format!(
            "Slurm job {}",
            j.job_id.as_deref().unwrap_or("(not submitted)")
        ),
        Some(j) => format!("local executor (pid {})", j.pid.unwrap_or(0)),
        None => "not launched".into(),
    };
    let mut line = format!(
        "sweep {} · {} variants · {how} · {} done, {} running, {} stopped, {} pending",
        dir.name(),
        variants.len(),
        count(VariantState::Done),
        count(VariantState::Running),
        count(VariantState::Stopped),
        count(VariantState::Pending)
    );
    for (state, word) in [
        (VariantState::Trained, "trained, probes to run"),
        (VariantState::Diverged, "diverged"),
        (VariantState::Failed, "failed"),
    ] {
        if count(state) > 0 {
            line += &format!(", {} {word}", count(state));
        }
    }
    println!("{line}");
    let width = variants
        .iter()
        .map(|v| v.id.len())
        .max()
        .unwrap_or(7)
        .max(7);
    println!(
        "{:<width$}  {:<9} {:>7}  {:>9} {:>9} {:>9}  asymmetric (swa)",
        "variant", "state", "epoch", "SGD test", "SWA test", "SWA gain"
    );
    for r in &summaries {
        let mut state = r.state.as_str().to_owned();
        if let Some((_, s)) = queued.iter().find(|(t, _)| *t == r.variant.index)
            && matches!(r.state, VariantState::Pending | VariantState::Stopped)
        {
            state = s.to_lowercase();
        }
        let loss = |row: &Option<valleys::protocol::MetricRow>| {
            row.as_ref()
                .map_or("–".into(), |r| format!("{:.4}", r.loss))
        };
        let epoch = match r.epochs {
            Some(e) => format!("{}/{e}", r.epoch),
            None => "–".into(),
        };
        let asym = r
            .asymmetric
            .iter()
            .find(|(c, _, _)| c == "swa")
            .map_or("–".into(), |(_, k, n)| format!("{k}/{n}"));
        println!(
            "{:<width$}  {:<9} {:>7}  {:>9} {:>9} {:>9}  {asym}",
            r.variant.id,
            state,
            epoch,
            loss(&r.sgd),
            loss(&r.swa),
            r.swa_gain.map_or("–".into(), |g| format!("{g:+.4}"))
        );
    }
    if let Some(settings) = dir.connect() {
        let (rows, missing) = valleys::sweep::pairs::read(dir, &settings);
        println!(
            "pairs ({}, {}): {} of {} connected; train barrier against sign consistency: {}",
            settings.pairs.as_str(),
            settings.iterate,
            rows.len(),
            rows.len() + missing.len(),
            valleys::export::report::sweep_pairs_correlation(&rows)
        );
    }
    Ok(())
}

fn cancel(dir: &SweepDir) -> anyhow::Result<ExitCode> {
    let Some(jobs) = dir.jobs() else {
        valleys::bad_input!(
            "{}: nothing was launched (no jobs.json)",
            dir.root.display()
        );
    };
    match (jobs.executor.as_str(), &jobs.job_id, jobs.pid) {
        ("slurm", Some(id), _) => {
            slurm::cancel(id).map_err(BadInput::msg)?;
            println!("cancelled Slurm job {id}; stopped runs resume when the sweep is continued");
        }
        (_, _, Some(pid)) => println!(
            "{}",
            valleys::process::cancel_executor(
                pid,
                jobs.process.as_ref(),
                &dir.root.join("jobs.json"),
                "its runs write checkpoints"
            )
            .map_err(BadInput::msg)?
        ),
        _ => valleys::bad_input!("{}: jobs.json names no job to cancel", dir.root.display()),
    }
    Ok(ExitCode::SUCCESS)
}
