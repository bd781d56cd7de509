//! `valleys report RUN_DIR`: publication figures (SVG and PNG) of a run's training curves,
//! probes, random-shift checks, batches and ablations, and a report.md that embeds them with
//! the run's settings. Every number in a caption is read from the run's files.

use super::figure::{self, Figure, Line, palette};
use super::raster;
use crate::ablation::{self, AblationKind, AblationResult};
use crate::config::Experiment;
use crate::probe::summary::{BatchSummary, C_BIN_EDGES};
use crate::probe::{DirectionKind, ProbeResult, format_c, store};
use crate::protocol::{Iterate, MetricRow, Split};
use crate::rundir::{RunDir, RunDirError, write_atomic};
use std::fmt::Write;
use std::path::{Path, PathBuf};

const WIDTH: u32 = 820;
const HEIGHT: u32 = 500;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
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

/// Writes `name`.svg and `name`.png into `dir`.
fn save(
    dir: &Path,
    name: &str,
    svg: Result<String, String>,
    report: &mut Report,
) -> Result<(), ReportError> {
    let svg = svg.map_err(|problem| ReportError::Figure {
        name: name.to_owned(),
        problem,
    })?;
    let png = raster::png(&svg, 1.0).map_err(|source| ReportError::Raster {
        name: name.to_owned(),
        source,
    })?;
    let (svg_path, png_path) = (
        dir.join(format!("{name}.svg")),
        dir.join(format!("{name}.png")),
    );
    write_atomic(&svg_path, svg.as_bytes())?;
    write_atomic(&png_path, &png)?;
    report.figures.push((svg_path, png_path));
    Ok(())
}

fn series(rows: &[MetricRow], it: Iterate, split: Split, acc: bool) -> Vec<(f64, f64)> {
    rows.iter()
        .filter(|r| r.iterate == it && r.split == split)
        .map(|r| (f64::from(r.epoch), if acc { 100.0 * r.acc } else { r.loss }))
        .collect()
}

fn last(rows: &[MetricRow], it: Iterate, split: Split) -> Option<&MetricRow> {
    rows.iter()
        .rev()
        .find(|r| r.iterate == it && r.split == split)
}

/// The training figure: SGD and SWA, train and test, loss or accuracy.
pub fn training_figure(rows: &[MetricRow], exp: &Experiment, acc: bool, log_y: bool) -> Figure {
    let mut lines = Vec::new();
    for (it, split, name, color, dashed) in [
        (
            Iterate::Sgd,
            Split::Train,
            "SGD train",
            palette::VERMILLION,
            false,
        ),
        (
            Iterate::Sgd,
            Split::Test,
            "SGD test",
            palette::VERMILLION,
            true,
        ),
        (
            Iterate::Swa,
            Split::Train,
            "SWA train",
            palette::BLUE,
            false,
        ),
        (Iterate::Swa, Split::Test, "SWA test", palette::BLUE, true),
        (
            Iterate::SwaStale,
            Split::Test,
            "SWA stale-BN test",
            palette::PURPLE,
            true,
        ),
    ] {
        let points = series(rows, it, split, acc);
        if !points.is_empty() {
            lines.push(Line {
                name: name.into(),
                points,
                color,
                dashed,
            });
        }
    }
    let markers = exp
        .swa
        .enabled
        .then_some(exp.swa.start_epoch)
        .flatten()
        .map(|e| (f64::from(e), "SWA starts".to_owned()))
        .into_iter()
        .collect();
    Figure {
        title: format!("{}: SGD vs SWA", exp.name),
        x_label: "epoch".into(),
        y_label: if acc {
            "accuracy (%)".into()
        } else {
            "cross-entropy loss".into()
        },
        log_y: log_y && !acc,
        lines,
        markers,
        notes: Vec::new(),
    }
}

/// The figure of one probe: train and test loss along t, the centre(s) marked, the flat side
/// named.
pub fn probe_figure(r: &ProbeResult, log_y: bool) -> Figure {
    let train: Vec<(f64, f64)> = r.points.iter().map(|p| (p.t, p.train_loss)).collect();
    let test: Vec<(f64, f64)> = r.points.iter().map(|p| (p.t, p.test_loss)).collect();
    let markers = if r.spec.direction == DirectionKind::Interp {
        vec![(0.0, "SWA".to_owned()), (1.0, "SGD".to_owned())]
    } else {
        vec![(0.0, format!("centre ({})", r.centre.iterate))]
    };
    let mut notes = Vec::new();
    if let Some(s) = &r.train_score {
        let y = r
            .points
            .iter()
            .map(|p| p.train_loss)
            .fold(f64::INFINITY, f64::min);
        match s.flat_side {
            crate::probe::score::Side::Plus => {
                notes.push((0.55 * s.half_range, y, "flat side →".into()))
            }
            crate::probe::score::Side::Minus => {
                notes.push((-0.95 * s.half_range, y, "← flat side".into()))
            }
            crate::probe::score::Side::Neither => {}
        }
    }
    Figure {
        title: format!("probe {}: {}", r.id, r.spec.summary()),
        x_label: "t (w = w_c + t·d)".into(),
        y_label: "loss".into(),
        log_y,
        lines: vec![
            Line {
                name: "train".into(),
                points: train,
                color: palette::BLUE,
                dashed: false,
            },
            Line {
                name: "test".into(),
                points: test,
                color: palette::VERMILLION,
                dashed: true,
            },
        ],
        markers,
        notes,
    }
}

fn caption_score(r: &ProbeResult) -> String {
    match &r.train_score {
        Some(s) => format!(
            "c = {} ({}asymmetric at c ≥ {}), flat side {}, training-loss minimum at t = {:+.2}; rises {:.3} at −T and {:.3} at +T (T = {})",
            format_c(s.c),
            if s.asymmetric { "" } else { "not " },
            s.threshold,
            s.flat_side.symbol(),
            s.bias,
            s.rise_minus,
            s.rise_plus,
            s.half_range
        ),
        None => "not scored".into(),
    }
}

/// Writes the report of `run` into `out` (default RUN_DIR/report).
/// Writes the report into `out` (default RUN_DIR/report, which is rewritten each time). A
/// directory given by the user that already holds files is written into only with `force`.
pub fn write(
    run: &RunDir,
    out: Option<&Path>,
    log_y: bool,
    force: bool,
) -> Result<Report, ReportError> {
    let dir = out.map_or_else(|| run.root().join("report"), Path::to_owned);
    let holds_files = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
    if out.is_some() && holds_files && !force {
        return Err(ReportError::OutExists(dir));
    }
    if dir.exists() && !dir.is_dir() {
        return Err(ReportError::OutExists(dir));
    }
    std::fs::create_dir_all(&dir).map_err(|source| RunDirError::Io {
        path: dir.clone(),
        action: "cannot create the directory",
        source,
    })?;
    let exp = Experiment::load(&run.config_path(), &[])?;
    let info: serde_json::Value = std::fs::read_to_string(run.run_info_path())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let rows = run.read_metrics()?;
    let mut report = Report {
        markdown: dir.join("report.md"),
        dir: dir.clone(),
        figures: Vec::new(),
        unreadable: Vec::new(),
    };
    let mut md = String::new();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("unknown").to_owned();
    let _ = writeln!(md, "# valleys report: {}\n", exp.name);
    let _ = writeln!(
        md,
        "Run `{}` · experiment `{}` · model {} · seed {} · device {} ({}) · valleys {} · started {} · outcome: {}\n",
        run.root().display(),
        exp.name,
        text(&info["model"]),
        exp.seed,
        text(&info["device"]["name"]),
        text(&info["device"]["reason"]),
        text(&info["version"]),
        text(&info["started"]),
        info["outcome"]["outcome"].as_str().unwrap_or("running")
    );
    let _ = writeln!(md, "Data: {}\n", text(&info["data"]));

    // Training.
    let mut figure_no = 0;
    let mut caption = |md: &mut String, file: &str, alt: &str, text: String| {
        figure_no += 1;
        let _ = writeln!(
            md,
            "![{alt}]({file}.svg)\n\n*Figure {figure_no}. {text}* ([PNG]({file}.png))\n"
        );
    };
    let _ = writeln!(md, "## Training\n");
    if rows.is_empty() {
        let _ = writeln!(md, "No evaluation has been recorded yet.\n");
    } else {
        save(
            &dir,
            "training-loss",
            figure::svg(&training_figure(&rows, &exp, false, log_y), WIDTH, HEIGHT),
            &mut report,
        )?;
        save(
            &dir,
            "training-accuracy",
            figure::svg(&training_figure(&rows, &exp, true, false), WIDTH, HEIGHT),
            &mut report,
        )?;
        let mut text = "Train (solid) and test (dashed) cross-entropy of the SGD iterate and of its stochastic weight average.".to_owned();
        if let (Some(s), Some(w)) = (
            last(&rows, Iterate::Sgd, Split::Test),
            last(&rows, Iterate::Swa, Split::Test),
        ) {
            let _ = write!(
                text,
                " After epoch {}, SGD test loss {:.4} ({:.1}%), SWA {:.4} ({:.1}%, {} snapshots): SWA {} by {:.4}.",
                s.epoch,
                s.loss,
                100.0 * s.acc,
                w.loss,
                100.0 * w.acc,
                w.swa_n.unwrap_or(0),
                if w.loss < s.loss { "ahead" } else { "behind" },
                (s.loss - w.loss).abs()
            );
        }
        caption(&mut md, "training-loss", "training loss", text);
        caption(
            &mut md,
            "training-accuracy",
            "training accuracy",
            "Train and test accuracy of SGD and SWA.".into(),
        );
        write_atomic(&dir.join("training.csv"), metrics_csv(&rows).as_bytes())?;
        let _ = writeln!(md, "Data: [training.csv](training.csv).\n");
    }

    // Probes.
    let (probes, unreadable) = store::read_all(run);
    report.unreadable.extend(unreadable);
    if !probes.is_empty() {
        let _ = writeln!(md, "## Probes\n");
        let _ = writeln!(
            md,
            "| probe | direction | centre (epoch) | params | BN | c | flat side | asymmetric | bias |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
        for r in &probes {
            let s = r.train_score.as_ref();
            let _ = writeln!(
                md,
                "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} |",
                r.id,
                r.spec.direction.as_str(),
                r.centre.iterate,
                r.centre.epoch,
                r.spec.params.as_str(),
                r.spec.bn.as_str(),
                s.map_or("–".into(), |s| format_c(s.c)),
                s.map_or("–", |s| s.flat_side.symbol()),
                s.map_or("–", |s| if s.asymmetric { "yes" } else { "no" }),
                s.map_or("–".into(), |s| format!("{:+.2}", s.bias)),
            );
        }
        let _ = writeln!(md);
        for r in &probes {
            let name = format!("probe-{}", r.id);
            save(
                &dir,
                &name,
                figure::svg(&probe_figure(r, log_y), WIDTH, HEIGHT),
                &mut report,
            )?;
            caption(
                &mut md,
                &name,
                &r.id,
                format!(
                    "Probe {}: train (solid) and test (dashed) loss along w = w_c + t·d through the {} at epoch {}. {}. |d| = {:.4}, sign agreement with the weights {:.0}%; {:.3} s per point, {:.2}× one forward pass.",
                    r.id,
                    r.centre.iterate,
                    r.centre.epoch,
                    caption_score(r),
                    r.direction.norm,
                    100.0 * r.direction.sign_consistency,
                    r.cost.seconds_per_point,
                    r.cost.ratio_to_forward
                ),
            );
            if let Some(shift) = &r.shift {
                let name = format!("shift-{}", r.id);
                let fig = Figure {
                    title: format!("random-shift check, probe {}", r.id),
                    x_label: "shift δ of the test curve".into(),
                    y_label: "ξ_δ / ξ_0".into(),
                    log_y: false,
                    lines: vec![Line {
                        name: "ξ_δ / ξ_0".into(),
                        points: shift
                            .deltas
                            .iter()
                            .copied()
                            .zip(shift.ratio.iter().copied())
                            .collect(),
                        color: palette::GREEN,
                        dashed: false,
                    }],
                    markers: vec![(shift.best_delta, format!("best δ {:+.2}", shift.best_delta))],
                    notes: Vec::new(),
                };
                save(&dir, &name, figure::svg(&fig, WIDTH, HEIGHT), &mut report)?;
                caption(
                    &mut md,
                    &name,
                    &name,
                    format!(
                        "How well the test curve of probe {} matches the training curve shifted by δ, up to a constant: best at δ = {:+.3}, where ξ falls to {:.3} of its unshifted value.",
                        r.id, shift.best_delta, shift.best_ratio
                    ),
                );
            }
        }
    }

    // Batches.
    let (batches, unreadable) = read_batches(run);
    report.unreadable.extend(unreadable);
    if !batches.is_empty() {
        let _ = writeln!(md, "## Batches of random directions\n");
        for b in &batches {
            let name = format!("batch-{}", b.id);
            let mut bars = Vec::new();
            let mut labels = Vec::new();
            let mut lower = 1.0;
            for edge in C_BIN_EDGES {
                labels.push(format!("[{lower},{edge})"));
                lower = edge;
            }
            labels.push(format!("≥{lower}"));
            for (c, color) in b.centres.iter().zip([palette::VERMILLION, palette::BLUE]) {
                let total = c.probes.len().max(1) as f64;
                for (count, label) in c.histogram.iter().zip(&labels) {
                    bars.push((
                        format!("{} {label}", c.centre),
                        *count as f64 / total,
                        color,
                    ));
                }
            }
            save(
                &dir,
                &name,
                figure::bars(
                    &format!("c over {} random directions", b.directions),
                    "fraction of directions",
                    &bars,
                    1100,
                    HEIGHT,
                ),
                &mut report,
            )?;
            let fractions: Vec<String> = b
                .centres
                .iter()
                .map(|c| {
                    format!(
                        "{}: {}/{} asymmetric ({:.0}%)",
                        c.centre,
                        c.asymmetric,
                        c.probes.len(),
                        100.0 * c.fraction_asymmetric
                    )
                })
                .collect();
            caption(
                &mut md,
                &name,
                &name,
                format!(
                    "Histogram of c over {} {} directions per centre (asymmetric when c ≥ {}): {}.",
                    b.directions,
                    b.spec.direction.as_str(),
                    b.threshold,
                    fractions.join("; ")
                ),
            );
        }
    }

    // Ablations.
    let (ablations, unreadable) = ablation::read_all(run);
    report.unreadable.extend(unreadable);
    if !ablations.is_empty() {
        let _ = writeln!(md, "## Batch-norm ablations\n");
        for a in &ablations {
            let name = format!("ablation-{}", a.id);
            save(&dir, &name, ablation_figure(run, a, log_y), &mut report)?;
            let _ = writeln!(
                md,
                "**{}** ({}):\n\n```\n{}\n```\n",
                a.id,
                a.kind.as_str(),
                ablation::table(a).join("\n")
            );
            caption(&mut md, &name, &name, ablation_caption(a));
        }
    }

    if !report.unreadable.is_empty() {
        let _ = writeln!(md, "## Stored results left out\n");
        for problem in &report.unreadable {
            let _ = writeln!(md, "- `{problem}`");
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "## Settings\n\n```yaml\n{}```", exp.to_yaml());
    write_atomic(&report.markdown, md.as_bytes())?;
    Ok(report)
}

fn ablation_caption(a: &AblationResult) -> String {
    match a.kind {
        AblationKind::Summary => {
            let arms: Vec<String> = a
                .arms
                .iter()
                .map(|arm| {
                    format!(
                        "{} through {}: {:.0}%",
                        arm.name,
                        arm.centre,
                        100.0 * arm.fraction_asymmetric
                    )
                })
                .collect();
            format!(
                "Fraction of asymmetric directions (c ≥ {}) per arm: {}.",
                a.threshold,
                arms.join(", ")
            )
        }
        _ => {
            let arms: Vec<String> = a
                .arms
                .iter()
                .map(|arm| {
                    format!(
                        "{} c = {}",
                        arm.name,
                        arm.mean_c.map_or("∞".into(), format_c)
                    )
                })
                .collect();
            format!(
                "Training loss along one direction, per arm: {}.",
                arms.join(", ")
            )
        }
    }
}

fn ablation_figure(run: &RunDir, a: &AblationResult, log_y: bool) -> Result<String, String> {
    let colors = [
        palette::VERMILLION,
        palette::BLUE,
        palette::GREEN,
        palette::ORANGE,
        palette::PURPLE,
        palette::SKY_BLUE,
        palette::GREY,
        palette::BLUE,
    ];
    match a.kind {
        AblationKind::Summary => {
            let bars: Vec<(String, f64, _)> = a
                .arms
                .iter()
                .enumerate()
                .map(|(i, arm)| {
                    (
                        format!("{} {}", arm.name, arm.centre),
                        arm.fraction_asymmetric,
                        colors[i / 2 % colors.len()],
                    )
                })
                .collect();
            figure::bars(
                &format!("asymmetric directions (c ≥ {})", a.threshold),
                "fraction of directions",
                &bars,
                1100,
                HEIGHT,
            )
        }
        _ => {
            let lines = a
                .arms
                .iter()
                .zip(colors)
                .filter_map(|(arm, color)| {
                    let probe = ablation::arm_probes(run.root(), arm).into_iter().next()?;
                    Some(Line {
                        name: arm.name.clone(),
                        points: probe.points.iter().map(|p| (p.t, p.train_loss)).collect(),
                        color,
                        dashed: false,
                    })
                })
                .collect();
            figure::svg(
                &Figure {
                    title: format!("ablation {}: training loss along one direction", a.id),
                    x_label: "t".into(),
                    y_label: "training loss".into(),
                    log_y,
                    lines,
                    markers: vec![(0.0, "centre".into())],
                    notes: Vec::new(),
                },
                WIDTH,
                HEIGHT,
            )
        }
    }
}

fn read_batches(run: &RunDir) -> (Vec<BatchSummary>, Vec<String>) {
    crate::rundir::read_json_files::<BatchSummary>(&store::dir(run), |v| {
        v.get("batch").and_then(|b| b.as_bool()) == Some(true)
    })
}

/// The run's metrics as CSV.
pub fn metrics_csv(rows: &[MetricRow]) -> String {
    let mut out = String::from("epoch,step,iterate,split,loss,acc,lr,elapsed_s,samples,swa_n\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            r.epoch,
            r.step,
            crate::protocol::word(&r.iterate),
            crate::protocol::word(&r.split),
            r.loss,
            r.acc,
            r.lr,
            r.elapsed_s,
            r.samples,
            r.swa_n.map_or(String::new(), |n| n.to_string())
        );
    }
    out
}
