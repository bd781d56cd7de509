//! `valleys ablate RUN_DIR` and the ablations `valleys run` does after training when the
//! experiment has an `ablation:` section: trains the no-BN twin if asked, then compares.

use crate::cli::probe::ProbeFlags;
use crate::cli::progress::Console;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use valleys::ablation::{self, AblationConfig, AblationKind, Subject};
use valleys::config::{Experiment, MAX_DIRECTIONS};
use valleys::error::BadInputExt;
use valleys::probe::offline::SavedRun;
use valleys::rundir::RunDir;
use valleys::runtime::{self, DeviceChoice, DeviceRequest};
use valleys::worker::{Worker, WorkerData, WorkerSpec};

/// Flags of `valleys ablate`.
#[derive(Args)]
pub struct AblateArgs {
    /// The run directory.
    pub run_dir: PathBuf,
    /// groups, bn-modes, summary or all.
    #[arg(long, default_value = "all")]
    pub kind: String,
    /// Random directions per arm and centre (summary).
    #[arg(long)]
    pub directions: Option<usize>,
    /// Train the no-BN twin first if the run has none (without it, a twin trained before
    /// is used if there is one).
    #[arg(long)]
    pub twin: bool,
    /// Checkpoint of the run (and of its twin) to probe.
    #[arg(long, default_value = "final")]
    pub checkpoint: String,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Probe settings of every arm (the arms set the parameters, BN mode and centre).
    #[command(flatten)]
    pub probe: ProbeFlags,
}

fn kinds(word: &str) -> anyhow::Result<Vec<AblationKind>> {
    if word == "all" {
        return Ok(AblationKind::ALL.to_vec());
    }
    match AblationKind::from_name(word) {
        Some(kind) => Ok(vec![kind]),
        None => valleys::bad_input!(
            "--kind {word}: expected {} or all",
            AblationKind::NAMES.join(", ")
        ),
    }
}

/// `valleys ablate`.
pub fn run(args: &AblateArgs, stop: &Arc<AtomicBool>) -> anyhow::Result<bool> {
    let kinds = kinds(&args.kind)?;
    if let Some(n) = args.directions
        && !(2..=MAX_DIRECTIONS).contains(&n)
    {
        valleys::bad_input!("--directions {n}: expected 2..={MAX_DIRECTIONS} directions per arm");
    }
    let device = DeviceRequest::parse(&args.device)
        .and_then(runtime::choose_device)
        .bad_input()?;
    let run = RunDir::open(&args.run_dir).bad_input()?;
    let _lock = run.lock().bad_input()?;
    let experiment = Experiment::load(&run.config_path(), &[]).bad_input()?;
    if let Some(why) = ablation::without_bn(&experiment) {
        valleys::bad_input!("{}: {why}", run.root().display());
    }
    let mut config = experiment
        .ablation
        .clone()
        .unwrap_or_else(|| AblationConfig {
            probe: experiment.probe.clone(),
            ..AblationConfig::default()
        });
    if let Some(n) = args.directions {
        config.directions = n;
    }
    args.probe.check().map_err(valleys::error::BadInput::msg)?;
    config.probe = args.probe.spec(&config.probe);
    config
        .probe
        .validate()
        .map_err(valleys::error::BadInput::msg)?;
    // The experiment's `ablation.twin` is for `valleys run`; here the twin is trained only
    // when asked for.
    config.twin = args.twin;
    crate::cli::probe::check_writable(&ablation::dir(&run))?;
    analyse(
        &run,
        &experiment,
        &config,
        &kinds,
        &args.checkpoint,
        device,
        stop,
    )
}

/// Trains the twin if the config asks and it is missing, then runs every ablation of `kinds`.
pub fn analyse(
    run: &RunDir,
    experiment: &Experiment,
    config: &AblationConfig,
    kinds: &[AblationKind],
    checkpoint: &str,
    device: DeviceChoice,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<bool> {
    let twin_root = ablation::twin_dir(run);
    let unavailable = ablation::twin::unavailable(experiment);
    if let (true, Some(why)) = (config.twin, &unavailable) {
        println!("\n{why}");
    }
    if config.twin
        && unavailable.is_none()
        && !twin_root.join("checkpoints/final.safetensors").is_file()
    {
        println!("\ntraining the no-BN twin in {}", twin_root.display());
        if !train_twin(run, experiment, device.clone(), stop.clone())? {
            return Ok(false);
        }
    }
    let main = SavedRun::load(run.root(), checkpoint, device.device).bad_input()?;
    let twin_run = RunDir::open(&twin_root).ok();
    let twin_ready = twin_run
        .as_ref()
        .is_some_and(|t| valleys::probe::offline::resolve_checkpoint(t, checkpoint).is_ok());
    let twin = if twin_ready {
        Some(SavedRun::load(&twin_root, checkpoint, device.device).bad_input()?)
    } else {
        if twin_run.is_some() {
            println!(
                "the no-BN twin in {} has no checkpoint '{checkpoint}' yet (--twin trains it on); comparing without it",
                twin_root.display()
            );
        }
        None
    };
    let main_subject = Subject {
        ctx: main.context(),
        run: &main.run,
    };
    let twin_subject = twin.as_ref().map(|t| Subject {
        ctx: t.context(),
        run: &t.run,
    });
    let mut console = Console::new(stop);
    for &kind in kinds {
        println!("\nablation: {}", kind.as_str());
        let result = match ablation::run(
            kind,
            &main_subject,
            twin_subject.as_ref(),
            &config.probe,
            config.directions,
            &mut console,
        ) {
            Ok(r) => r,
            Err(valleys::probe::runner::ProbeError::Cancelled) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        for line in ablation::table(&result) {
            println!("  {line}");
        }
        println!(
            "  wrote {}/{}.json and .csv",
            ablation::dir(run).display(),
            result.id
        );
    }
    Ok(true)
}

/// Trains the twin headless; false if it was stopped.
fn train_twin(
    run: &RunDir,
    experiment: &Experiment,
    device: DeviceChoice,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<bool> {
    let twin = ablation::twin::prepare(run, experiment)?;
    let twin_dir = twin.run_dir.root().to_owned();
    let data = WorkerData::Raw(valleys::data::read(
        &twin.experiment.data,
        twin.experiment.seed,
    )?);
    let _lock = twin.lock;
    let worker = Worker::spawn(WorkerSpec {
        experiment: twin.experiment,
        device,
        data,
        run_dir: twin.run_dir,
        start: valleys::worker::Start::resuming(twin.resume),
        stop,
        argv: std::env::args().collect(),
    })?;
    use valleys::protocol::Outcome;
    match valleys::headless::follow(worker) {
        Outcome::Completed => Ok(true),
        Outcome::Stopped => Ok(false),
        Outcome::Diverged { epoch, .. } => anyhow::bail!(
            "the no-BN twin in {} diverged in epoch {}; the ablation needs a trained twin (ablation.twin: false compares without it)",
            twin_dir.display(),
            epoch + 1
        ),
        Outcome::Failed { message } => {
            anyhow::bail!("the no-BN twin in {} failed: {message}", twin_dir.display())
        }
    }
}
