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
    /// The run directory, e.g. runs/quick-20261127-101500.
    run_dir: PathBuf,
    #[command(flatten)]
    display: Display,
}

pub fn run(args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let dir = RunDir::open(&args.run_dir).bad_input()?;
    if !std::io::stdout().is_terminal() {
        valleys::bad_input!(
            "watch needs a terminal: stdout is not one (read {} instead)",
            dir.metrics_path().display()
        );
    }
    let done = Arc::new(AtomicBool::new(false));
    let events = valleys::follow::follow(dir, std::time::Duration::from_millis(500), done.clone());
    let stop = signal_flag()?;
    ui::run_dashboard(events, None, stop, args.display.options())?;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(ExitCode::SUCCESS)
}
