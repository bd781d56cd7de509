//! The report's ablation section: each ablation's arm table and figure.

use super::{Doc, HEIGHT, ReportError, WIDTH};
use crate::ablation::{self, AblationKind, AblationResult};
use crate::export::figure::{self, Figure, Line, palette};
use crate::probe::format_c;
use crate::rundir::RunDir;
use std::fmt::Write;

pub(super) fn section(doc: &mut Doc, run: &RunDir, log_y: bool) -> Result<(), ReportError> {
    let (ablations, unreadable) = ablation::read_all(run);
    doc.report.unreadable.extend(unreadable);
    if !ablations.is_empty() {
        let _ = writeln!(doc.md, "## Batch-norm ablations\n");
        for a in &ablations {
            let name = format!("ablation-{}", a.id);
            doc.save(&name, ablation_figure(run, a, log_y))?;
            let _ = writeln!(
                doc.md,
                "**{}** ({}):\n\n```\n{}\n```\n",
                a.id,
                a.kind.as_str(),
                ablation::table(a).join("\n")
            );
            doc.caption(&name, &name, ablation_caption(a));
        }
    }

    Ok(())
}

fn ablation_caption(a: &AblationResult) -> String {
    match a.kind {
        AblationKind::Summary => {
            let arms: Vec<String> = a
                .arms
                .iter()
                .map(|arm| {
                    format!(
                        "{} through {}: {}",
                        arm.name,
                        arm.centre,
                        arm.stats.describe()
                    )
                })
                .collect();
            let mut caption = format!(
                "Fraction of asymmetric directions (c ≥ {}, the rises above their noise floors) per arm, with Wilson 95% intervals (whiskers); every class counted: {}.",
                a.threshold,
                arms.join(", ")
            );
            for comparison in &a.comparisons {
                caption += &format!(" {}.", comparison.describe());
            }
            caption
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

fn ablation_figure(
    run: &RunDir,
    a: &AblationResult,
    log_y: bool,
) -> Result<String, figure::FigureError> {
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
            let bars: Vec<figure::Bar> = a
                .arms
                .iter()
                .enumerate()
                .map(|(i, arm)| figure::Bar {
                    name: format!("{} {}", arm.name, arm.centre),
                    value: arm.stats.fraction_asymmetric,
                    color: colors[i / 2 % colors.len()],
                    interval: arm.stats.fraction_interval,
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
