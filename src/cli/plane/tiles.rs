//! `valleys plane RUN --tiles N`: one plane as N tiles (bands of rows), each its own job on
//! this machine (`--executor local`, child processes) or a Slurm array task (`--executor
//! slurm`), each resumable, merged by the last to finish into the same planes/<id>.json and
//! .csv a plane measured in one go writes; and `--status`, `--cancel`, continuing a tiles
//! directory, and (hidden) the task that measures one tile.

use super::{PlaneArgs, print};
use crate::cli::sweep::Executor;
use anyhow::Context;
use clap::Args;
use std::io::IsTerminal;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use valleys::error::{BadInput, BadInputExt};
use valleys::probe::offline::SavedRun;
use valleys::probe::plane::tiles::{self, TilePlan, TilePoint, TileProgress, TilesDir};
use valleys::probe::plane::{PlaneHeader, PlaneObserver, PlanePoint, PlaneResult, PlaneSpec};
use valleys::probe::runner::ProbeError;
use valleys::probe::store;
use valleys::rundir::RunDir;
use valleys::runtime::{self, DeviceRequest};
use valleys::sweep::slurm::{self, SlurmConfig};

/// The flags of a tiled plane.
#[derive(Args)]
pub struct TileArgs {
    /// Measure the plane as N tiles (bands of rows), each its own job, merged into the same
    /// files as a plane measured in one go.
    #[arg(long)]
    pub tiles: Option<usize>,
    /// Where the tiles run: local (child processes here) or slurm (an sbatch job array).
    #[arg(long, value_enum)]
    pub executor: Option<Executor>,
    /// Tiles measured at once by the local executor (default: the number of GPUs, else 1).
    #[arg(long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub slurm: SlurmArgs,
    /// Print where each tile of a tiled plane (RUN_DIR/planes/<id>.tiles, or every one of a
    /// run directory) stands.
    #[arg(long, conflicts_with_all = ["cancel", "tile", "tiles"])]
    pub status: bool,
    /// Stop a tiled plane's jobs (scancel, or SIGTERM to the local executor); the tiles keep
    /// what they measured.
    #[arg(long, conflicts_with_all = ["tile", "tiles"])]
    pub cancel: bool,
    /// Measure tile INDEX of a tiles directory (what each job runs).
    #[arg(long, hide = true, value_name = "INDEX")]
    pub tile: Option<usize>,
}

/// sbatch options of a tiled plane on Slurm (as a sweep file's `slurm:` section).
#[derive(Args)]
pub struct SlurmArgs {
    /// Slurm partition of the tiles.
    #[arg(long)]
    pub partition: Option<String>,
    /// Generic resources per tile, e.g. gpu:1.
    #[arg(long)]
    pub gres: Option<String>,
    #[arg(long = "cpus-per-task")]
    pub cpus_per_task: Option<u32>,
    /// Memory per tile, e.g. 16G.
    #[arg(long)]
    pub mem: Option<String>,
    /// Time limit per tile, e.g. 4:00:00 (a tile stopped at its limit continues when
    /// requeued or continued).
    #[arg(long)]
    pub time: Option<String>,
    /// Tiles running at once.
    #[arg(long = "max-parallel")]
    pub max_parallel: Option<u32>,
    /// A further sbatch option, e.g. --sbatch=--qos=long (repeatable).
    #[arg(long = "sbatch", allow_hyphen_values = true)]
    pub extra: Vec<String>,
}

impl SlurmArgs {
    fn config(&self) -> SlurmConfig {
        SlurmConfig {
            partition: self.partition.clone(),
            gres: self.gres.clone(),
            cpus_per_task: self.cpus_per_task,
            mem: self.mem.clone(),
            time: self.time.clone(),
            max_parallel: self.max_parallel,
            extra: self.extra.clone(),
        }
    }

    fn given(&self) -> bool {
        self.config() != SlurmConfig::default()
    }
}

/// Most tiles measured at once here.
const MAX_JOBS: usize = 256;

/// What `valleys plane` does with the tile flags: None when they ask for nothing (a plane
/// measured in one go), else whether the plane completed.
pub fn run(args: &PlaneArgs, stop: &AtomicBool) -> anyhow::Result<Option<bool>> {
    let t = &args.tiling;
    if t.status {
        status(&args.run_dir)?;
        return Ok(Some(true));
    }
    if t.cancel {
        cancel(&TilesDir::open(&args.run_dir).bad_input()?)?;
        return Ok(Some(true));
    }
    if let Some(k) = t.tile {
        return task(&TilesDir::open(&args.run_dir).bad_input()?, k, stop).map(Some);
    }
    if let Some(n) = t.jobs
        && !(1..=MAX_JOBS).contains(&n)
    {
        valleys::bad_input!("--jobs {n}: expected 1..={MAX_JOBS} tiles at once");
    }
    if TilesDir::is_tiles_dir(&args.run_dir) {
        return resume(args, &TilesDir::open(&args.run_dir).bad_input()?, stop).map(Some);
    }
    let Some(tiles) = t.tiles else {
        if t.executor.is_some() || t.jobs.is_some() || t.slurm.given() {
            valleys::bad_input!(
                "--executor, --jobs and the Slurm options are for a tiled plane: add --tiles N"
            );
        }
        return Ok(None);
    };
    start(args, tiles, stop).map(Some)
}

/// Draws the directions, writes the plan and launches the tiles.
fn start(args: &PlaneArgs, tiles: usize, stop: &AtomicBool) -> anyhow::Result<bool> {
    let spec = args.settings().spec().map_err(BadInput::msg)?;
    tiles::check_tiles(tiles, spec.points.1).map_err(BadInput::msg)?;
    let executor = args.tiling.executor.unwrap_or(Executor::Local);
    let config = args.tiling.slurm.config();
    config.validate().map_err(BadInput::msg)?;
    if executor == Executor::Local && args.tiling.slurm.given() {
        valleys::bad_input!("the Slurm options are for --executor slurm");
    }
    if executor == Executor::Slurm {
        // Before the directions and the plan are written for a job that cannot be submitted.
        slurm::check_client().map_err(BadInput::msg)?;
    }
    let device = DeviceRequest::parse(&args.device)
        .and_then(runtime::choose_device)
        .bad_input()?;
    let saved = SavedRun::load(&args.run_dir, &args.checkpoint, device.device).bad_input()?;
    super::check_saved(&spec, &saved)?;
    let dir = plan(&saved, &spec, tiles, executor, &config, &args.device)?;
    drop(saved);
    let launched = launch(&dir, executor, args.tiling.jobs, stop)?;
    finish(args, &dir, launched)
}

/// The directions drawn (once, for every tile) and kept with the plan, the cost said; the
/// Slurm script written when the tiles go to Slurm.
fn plan(
    saved: &SavedRun,
    spec: &PlaneSpec,
    tiles: usize,
    executor: Executor,
    config: &SlurmConfig,
    device: &str,
) -> anyhow::Result<TilesDir> {
    let root = std::path::absolute(saved.run.root())?;
    if executor == Executor::Slurm && root.display().to_string().contains(char::is_whitespace) {
        valleys::bad_input!(
            "{}: a Slurm tiled plane's run directory may not contain spaces (#SBATCH lines cannot quote them); move the run",
            root.display()
        );
    }
    let ctx = saved.context();
    let prepared = valleys::error::catch_panic(|| {
        valleys::probe::runner::plane::prepare(&ctx, spec, Some(&saved.run))
    })
    .map_err(ProbeError::Model)
    .and_then(|p| p)
    .map_err(probe_error)?;
    let id = prepared.plane.id.clone();
    valleys::probe::runner::plane::path::write_directions(
        &saved.run,
        &id,
        prepared.centre.flat(),
        &prepared.d1.vector,
        &prepared.d2.vector,
    )?;
    let dir = TilesDir::of(&saved.run, &id);
    let plan = TilePlan {
        plane: prepared.plane.clone(),
        tiles,
        checkpoint: std::path::absolute(&saved.checkpoint)?,
        device: device.to_owned(),
        seconds_per_point: prepared.seconds_per_point,
        executor: executor.as_str().into(),
        job_id: None,
        pid: None,
        process: None,
    };
    if executor == Executor::Slurm {
        let exe = std::env::current_exe()?;
        let text = script(config, &dir, &plan, &exe)?;
        dir.write_plan(&plan)?;
        std::fs::write(dir.script_path(), text)?;
    } else {
        dir.write_plan(&plan)?;
    }
    let (nx, ny) = spec.points;
    let biggest = (0..tiles)
        .map(|k| tiles::order(nx, ny, tiles, k).len())
        .max()
        .unwrap_or(0);
    eprintln!(
        "plane {id}: {} points in {tiles} tiles of {}–{} rows, ~{:.2} s a point ≈ {} in all, {} for the largest tile; directions and plan in {}",
        nx * ny,
        ny / tiles,
        ny.div_ceil(tiles),
        prepared.seconds_per_point,
        valleys::format::clock(prepared.seconds_per_point * (nx * ny) as f64),
        valleys::format::clock(prepared.seconds_per_point * biggest as f64),
        dir.root.display()
    );
    Ok(dir)
}

/// A sweep's tiled plane of a trained variant: the tiles of the same plane started before
/// (by a task that was stopped, or whose tiles Slurm still runs) continued, else a new plan;
/// launched with the sweep's executor and its `slurm:` section.
pub(crate) fn in_sweep(
    saved: &SavedRun,
    spec: &PlaneSpec,
    tiles: usize,
    executor: Executor,
    config: &SlurmConfig,
    stop: &AtomicBool,
) -> anyhow::Result<Launched> {
    let device = saved.experiment.device.clone();
    let started = TilesDir::all(&saved.run).into_iter().find(|d| {
        d.read_plan()
            .is_ok_and(|p| &p.plane.spec == spec && p.tiles == tiles)
    });
    let dir = match started {
        Some(dir) => {
            println!("continuing the plane's tiles in {}", dir.root.display());
            dir
        }
        None => plan(saved, spec, tiles, executor, config, &device)?,
    };
    launch(&dir, executor, Some(1), stop)
}

fn probe_error(e: ProbeError) -> anyhow::Error {
    match e {
        ProbeError::Invalid(message) => BadInput::msg(message).into(),
        other => other.into(),
    }
}

/// The sbatch script of a tiled plane: one array task per tile.
fn script(
    config: &SlurmConfig,
    dir: &TilesDir,
    plan: &TilePlan,
    exe: &Path,
) -> anyhow::Result<String> {
    let root = std::path::absolute(&dir.root)?;
    Ok(slurm::array_script(
        config,
        &slurm::ArrayJob {
            name: format!("valleys-plane-{}", plan.plane.id),
            about: vec![
                format!(
                    "valleys plane {}: {} tiles, one array task each.",
                    plan.plane.id, plan.tiles
                ),
                "Resubmit with `sbatch job.sbatch` (finished tiles are skipped, stopped ones continue).".into(),
            ],
            tasks: plan.tiles,
            log_dir: &root.join("logs"),
            valleys: exe,
            args: vec!["plane".into(), root.display().to_string(), "--tile".into()],
        },
    ))
}

/// Continues a tiles directory: merges it when every tile is measured, else launches the
/// tiles that are not (with the executor it was started with unless told another).
fn resume(args: &PlaneArgs, dir: &TilesDir, stop: &AtomicBool) -> anyhow::Result<bool> {
    let plan = dir.read_plan().bad_input()?;
    let executor = match (args.tiling.executor, plan.executor.as_str()) {
        (Some(e), _) => e,
        (None, "slurm") => Executor::Slurm,
        _ => Executor::Local,
    };
    println!(
        "continuing plane {} in {}",
        plan.plane.id,
        dir.root.display()
    );
    let launched = launch(dir, executor, args.tiling.jobs, stop)?;
    finish(args, dir, launched)
}

/// How launching a plane's tiles ended.
pub(crate) enum Launched {
    /// Every tile is measured and the plane stored.
    Merged(Box<PlaneResult>),
    /// The tiles are Slurm's to run; the last to finish merges them.
    Submitted,
    /// A signal stopped the local executor; the tiles keep what they measured.
    Stopped,
}

/// Launches the tiles still to measure: merged at once when none is, else one Slurm array
/// (unless Slurm still runs the last one) or `jobs` child processes here.
fn launch(
    dir: &TilesDir,
    executor: Executor,
    jobs: Option<usize>,
    stop: &AtomicBool,
) -> anyhow::Result<Launched> {
    if let Some(plane) = merge(dir)? {
        return Ok(Launched::Merged(Box::new(plane)));
    }
    let mut plan = dir.read_plan().bad_input()?;
    match executor {
        Executor::Slurm => {
            if !dir.script_path().is_file() {
                valleys::bad_input!(
                    "{}: no job.sbatch (the plane was started with the local executor; continue it with --executor local)",
                    dir.root.display()
                );
            }
            // Two arrays would measure the same tiles twice over.
            if let Some(id) = &plan.job_id
                && !slurm::queue(id).is_empty()
            {
                println!(
                    "Slurm job {id} still runs or queues the tiles; `valleys plane --status {}` follows them",
                    dir.root.display()
                );
                return Ok(Launched::Submitted);
            }
            let id = slurm::submit(&dir.script_path()).map_err(BadInput::msg)?;
            plan.executor = "slurm".into();
            plan.job_id = Some(id.clone());
            dir.write_plan(&plan)?;
            println!(
                "submitted Slurm job {id}: {} tiles; `valleys plane --status {}` follows them, and the last tile to finish merges them into planes/{}.json",
                plan.tiles,
                dir.root.display(),
                plan.plane.id
            );
            Ok(Launched::Submitted)
        }
        Executor::Local => {
            plan.executor = "local".into();
            plan.pid = Some(std::process::id());
            plan.process = valleys::process::ProcessIdentity::this_process();
            dir.write_plan(&plan)?;
            if !local(dir, &plan, jobs, stop)? {
                println!(
                    "stopped; continue with: valleys plane {}",
                    dir.root.display()
                );
                return Ok(Launched::Stopped);
            }
            match merge(dir)? {
                Some(plane) => Ok(Launched::Merged(Box::new(plane))),
                None => anyhow::bail!(
                    "plane {}: a tile failed; its log is in {} (continue with: valleys plane {})",
                    plan.plane.id,
                    dir.log_dir().display(),
                    dir.root.display()
                ),
            }
        }
    }
}

/// Prints a merged plane as a plane measured in one go is printed; whether the plane is
/// complete or on its way.
fn finish(args: &PlaneArgs, dir: &TilesDir, launched: Launched) -> anyhow::Result<bool> {
    let plane = match launched {
        Launched::Merged(plane) => plane,
        Launched::Submitted => return Ok(true),
        Launched::Stopped => return Ok(false),
    };
    let colour = !args.ascii && std::io::stdout().is_terminal();
    print(&mut std::io::stdout().lock(), &plane, args, colour)?;
    println!(
        "wrote {}/{}.json and .csv",
        dir.root.parent().unwrap_or(Path::new(".")).display(),
        plane.id
    );
    Ok(true)
}

mod local;
mod status;
mod task;

use local::local;
use status::{cancel, status};
use task::{merge, task};
