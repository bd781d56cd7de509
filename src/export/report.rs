//! `valleys report RUN_DIR`: publication figures (SVG and PNG) of a run's training curves,
//! probes, random-shift checks, batches, ablations and curvature, and a report.md that embeds them with
//! the run's settings. Every number in a caption is read from the run's files. One file per
//! section: training, probes (with batches), ablations.

use super::raster;
use crate::config::Experiment;
use crate::rundir::{RunDir, RunDirError, write_atomic};
use std::fmt::Write;
use std::path::{Path, PathBuf};

mod ablations;
mod connections;
mod curvature;
mod planes;
mod probes;
pub mod sweep;
mod sweep_pairs;

/// Spearman's ρ of the pairs' training barrier with their sign consistency, in words.
pub fn sweep_pairs_correlation(rows: &[crate::sweep::pairs::PairRow]) -> String {
    sweep_pairs::correlation(rows, |r| r.train_barrier.map(|b| b.value))
}
mod training;

pub use probes::probe_figure;
pub use training::{metrics_csv, training_figure};

const WIDTH: u32 = 820;
const HEIGHT: u32 = 500;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Sweep(#[from] crate::sweep::SweepError),
    #[error(
        "{0}: the directory exists and holds files; choose a new directory, or add --force to write over them"
    )]
    OutExists(PathBuf),
    #[error("{name}: cannot draw the figure: {problem}")]
    Figure { name: String, problem: String },
    #[error("{name}: {source}")]
    Raster {
        name: String,
        source: raster::RasterError,
    },
}

/// What a report contains.
#[derive(Debug)]
pub struct Report {
    pub dir: PathBuf,
    pub markdown: PathBuf,
    /// Every figure, as (SVG, PNG).
    pub figures: Vec<(PathBuf, PathBuf)>,
    /// Stored results that could not be read (left out of the report), each with why.
    pub unreadable: Vec<String>,
}

/// The report being written: its markdown, its numbered figures and what it holds.
struct Doc {
    md: String,
    figures: usize,
    report: Report,
}

impl Doc {
    /// A report in `out` (or `default`): an `--out` that already holds files is written into
    /// only with `force` (the default directory is the report's own, rewritten each time).
    fn create(out: Option<&Path>, default: &Path, force: bool) -> Result<Self, ReportError> {
        let dir = out.unwrap_or(default).to_owned();
        let holds_files = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
        if (out.is_some() && holds_files && !force) || (dir.exists() && !dir.is_dir()) {
            return Err(ReportError::OutExists(dir));
        }
        std::fs::create_dir_all(&dir).map_err(|source| RunDirError::Io {
            path: dir.clone(),
            action: "cannot create the directory",
            source,
        })?;
        Ok(Self {
            md: String::new(),
            figures: 0,
            report: Report {
                markdown: dir.join("report.md"),
                dir,
                figures: Vec::new(),
                unreadable: Vec::new(),
            },
        })
    }

    /// Writes `name`.svg and `name`.png into the report's directory.
    fn save(
        &mut self,
        name: &str,
        svg: Result<String, super::figure::FigureError>,
    ) -> Result<(), ReportError> {
        let svg = svg.map_err(|problem| ReportError::Figure {
            name: name.to_owned(),
            problem: problem.to_string(),
        })?;
        let png = raster::png(&svg, 1.0).map_err(|source| ReportError::Raster {
            name: name.to_owned(),
            source,
        })?;
        let dir = &self.report.dir;
        let (svg_path, png_path) = (
            dir.join(format!("{name}.svg")),
            dir.join(format!("{name}.png")),
        );
        write_atomic(&svg_path, svg.as_bytes())?;
        write_atomic(&png_path, &png)?;
        self.report.figures.push((svg_path, png_path));
        Ok(())
    }

    /// Embeds figure `file` with its number and caption.
    fn caption(&mut self, file: &str, alt: &str, text: String) {
        self.figures += 1;
        let n = self.figures;
        let _ = writeln!(
            self.md,
            "![{alt}]({file}.svg)\n\n*Figure {n}. {text}* ([PNG]({file}.png))\n"
        );
    }
}

/// A stored time stamp (`2026-12-02T17:32:05.62+00:00[Etc/UTC]`) as people write it, in UTC
/// to the minute: `2026-12-02 17:32 UTC`. Anything else is shown as it is.
pub fn human_time(stamp: &str) -> String {
    stamp.parse::<jiff::Zoned>().map_or_else(
        |_| stamp.to_owned(),
        |t| {
            t.with_time_zone(jiff::tz::TimeZone::UTC)
                .strftime("%Y-%m-%d %H:%M UTC")
                .to_string()
        },
    )
}

/// Writes the report into `out` (default RUN_DIR/report, which is rewritten each time). A
/// directory given by the user that already holds files is written into only with `force`.
pub fn write(
    run: &RunDir,
    out: Option<&Path>,
    log_y: bool,
    force: bool,
) -> Result<Report, ReportError> {
    let mut doc = Doc::create(out, &run.root().join("report"), force)?;
    let exp = Experiment::load(&run.config_path(), &[])?;
    let info = run.run_info();
    let rows = run.read_metrics()?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("unknown").to_owned();
    let _ = writeln!(doc.md, "# valleys report: {}\n", exp.name);
    let _ = writeln!(
        doc.md,
        "Run `{}` · experiment `{}` · model {} · seed {} · device {} ({}) · valleys {} · started {} · outcome: {}\n",
        run.root().display(),
        exp.name,
        text(&info["model"]),
        exp.seed,
        text(&info["device"]["name"]),
        text(&info["device"]["reason"]),
        text(&info["version"]),
        human_time(&text(&info["started"])),
        info["outcome"]["outcome"].as_str().unwrap_or("running")
    );
    let _ = writeln!(doc.md, "Data: {}\n", text(&info["data"]));
    let peaks: crate::machine::Peaks =
        serde_json::from_value(info["machine"].clone()).unwrap_or_default();
    if let Some(summary) = peaks.summary() {
        let _ = writeln!(doc.md, "Machine: {summary}\n");
    }
    training::section(&mut doc, &rows, &exp, log_y)?;
    probes::section(&mut doc, run, log_y)?;
    probes::batches_section(&mut doc, run)?;
    planes::section(&mut doc, run)?;
    connections::section(&mut doc, run)?;
    ablations::section(&mut doc, run, log_y)?;
    curvature::section(&mut doc, run)?;
    // A file of probes/ that cannot be read is neither a probe nor a batch: named once.
    let mut named = std::collections::HashSet::new();
    doc.report
        .unreadable
        .retain(|problem| named.insert(problem.clone()));
    if !doc.report.unreadable.is_empty() {
        let _ = writeln!(doc.md, "## Stored results left out\n");
        for problem in &doc.report.unreadable {
            let _ = writeln!(doc.md, "- `{problem}`");
        }
        let _ = writeln!(doc.md);
    }
    let _ = writeln!(doc.md, "## Settings\n\n```yaml\n{}```", exp.to_yaml());
    write_atomic(&doc.report.markdown, doc.md.as_bytes())?;
    Ok(doc.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_stamps_read_as_people_write_them() {
        assert_eq!(
            human_time("2026-12-02T17:32:05.625996117+00:00[Etc/UTC]"),
            "2026-12-02 17:32 UTC"
        );
        assert_eq!(
            human_time("2026-12-02T18:32:59+01:00[Europe/Paris]"),
            "2026-12-02 17:32 UTC"
        );
        assert_eq!(human_time("unknown"), "unknown");
    }
}
