//! `valleys watch RUN_DIR`: the dashboard on a run written by another process.

use super::{Display, signal_flag};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use valleys::error::BadInputExt;
use valleys::rundir::RunDir;
use valleys::ui;

/// Flags of `valleys watch`.
#[derive(clap::Args)]
pub struct WatchArgs {
    /// The run directory, e.g. runs/quick-20261127-101500; a sweep directory, or several run
    /// directories: a table of the runs (Enter opens one).
    #[arg(required = true, num_args = 1..)]
    run_dirs: Vec<PathBuf>,
    #[command(flatten)]
    display: Display,
}

pub fn run(args: &WatchArgs) -> anyhow::Result<ExitCode> {
    use valleys::sweep::{RunSet, SweepDir};
    let first = &args.run_dirs[0];
    let table = if args.run_dirs.len() > 1 {
        for dir in &args.run_dirs {
            RunDir::open(dir).bad_input()?;
        }
        Some(RunSet::Dirs(args.run_dirs.clone()))
    } else if SweepDir::is_sweep(first) {
        Some(RunSet::Sweep(SweepDir::open(first).bad_input()?))
    } else {
        None
    };
    if let Some(runs) = table {
        if !std::io::stdout().is_terminal() {
            valleys::bad_input!(
                "watch needs a terminal: stdout is not one (`valleys sweep --status DIR` prints a sweep's table)"
            );
        }
        let stop = signal_flag()?;
        let options = args.display.options();
        ui::sweep::watch(&runs, options, &stop, &|run| follow_run(run, options))?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = RunDir::open(first).bad_input()?;
    if !std::io::stdout().is_terminal() {
        valleys::bad_input!(
            "watch needs a terminal: stdout is not one (read {} instead)",
            dir.metrics_path().display()
        );
    }
    follow_run(dir.root(), args.display.options())?;
    Ok(ExitCode::SUCCESS)
}

/// The dashboard on the run directory at `path`, until `q`.
fn follow_run(path: &std::path::Path, options: ui::UiOptions) -> std::io::Result<()> {
    let dir = RunDir::open(path).map_err(std::io::Error::other)?;
    let done = Arc::new(AtomicBool::new(false));
    let events = valleys::follow::follow(dir, std::time::Duration::from_millis(500), done.clone());
    let stop = signal_flag().map_err(std::io::Error::other)?;
    let monitor =
        valleys::machine::for_watched_run(&RunDir::open(path).map_err(std::io::Error::other)?);
    let (sampler, samples) = ui::machine_feed(monitor)?;
    ui::run_dashboard(events, None, stop, options, Some(samples))?;
    drop(sampler);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}
