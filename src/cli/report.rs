//! `valleys report RUN_DIR`: publication figures and report.md.

use std::path::PathBuf;
use std::process::ExitCode;
use valleys::error::{BadInput, BadInputExt};
use valleys::export::report::{self, ReportError};
use valleys::rundir::RunDir;

/// Flags of `valleys report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// The run directory, or a sweep directory (per-group means over seeds).
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
}

pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let written = if valleys::sweep::SweepDir::is_sweep(&args.run_dir) {
        let sweep = valleys::sweep::SweepDir::open(&args.run_dir).bad_input()?;
        report::sweep::write(&sweep, args.out.as_deref(), args.log, args.force)
    } else {
        let run = RunDir::open(&args.run_dir).bad_input()?;
        report::write(&run, args.out.as_deref(), args.log, args.force)
    };
    let report = written.map_err(|e| match e {
        ReportError::OutExists(_) | ReportError::Config(_) | ReportError::Sweep(_) => {
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
