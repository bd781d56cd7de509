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
    /// The run directory, e.g. runs/quick-20261127-101500, or a sweep directory (a table of
    /// its runs; Enter opens one).
    run_dir: PathBuf,
    #[command(flatten)]
    display: Display,
}

pub fn run(args: &WatchArgs) -> anyhow::Result<ExitCode> {
    if valleys::sweep::SweepDir::is_sweep(&args.run_dir) {
        if !std::io::stdout().is_terminal() {
            valleys::bad_input!(
                "watch needs a terminal: stdout is not one (`valleys sweep --status {}` prints the table)",
                args.run_dir.display()
            );
        }
        let sweep = valleys::sweep::SweepDir::open(&args.run_dir).bad_input()?;
        let stop = signal_flag()?;
        let options = args.display.options();
        ui::sweep::watch(&sweep, options, &stop, &|run| follow_run(run, options))?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = RunDir::open(&args.run_dir).bad_input()?;
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
    ui::run_dashboard(events, None, stop, options)?;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}
