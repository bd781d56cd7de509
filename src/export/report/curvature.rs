//! The report's curvature section: per stored job, the comparison table (test loss, λ_max,
//! trace, sharpness, beside the probes' asymmetry) and the spectral density of each centre on
//! a log scale with its top eigenvalues marked.

use super::{Doc, HEIGHT, ReportError, WIDTH};
use crate::curvature::track::{self, TrackRow};
use crate::curvature::{CurvatureResult, compare, density, significant, store};
use crate::export::figure::{self, Figure, Line, palette};
use crate::rundir::RunDir;
use std::fmt::Write;

pub(super) fn section(doc: &mut Doc, run: &RunDir) -> Result<(), ReportError> {
    let (results, unreadable) = store::read_all(run);
    doc.report.unreadable.extend(unreadable);
    let (tracked, unreadable) = store::read_track(run);
    doc.report.unreadable.extend(unreadable);
    if results.is_empty() && tracked.is_empty() {
        return Ok(());
    }
    let (batches, _) = crate::probe::store::read_batches(run);
    let _ = writeln!(doc.md, "## Curvature\n");
    if !tracked.is_empty() {
        tracked_section(doc, &tracked)?;
    }
    for r in &results {
        let _ = writeln!(
            doc.md,
            "**{}**: {}; Hessian over {} parameters ({}); 95% intervals {}.\n",
            r.id,
            r.loss,
            crate::format::group_thousands(r.dimension),
            r.settings.params.as_str(),
            if r.settings.sets > 1 {
                "over the disjoint sample sets"
            } else {
                "over the random vectors"
            }
        );
        let _ = writeln!(
            doc.md,
            "{}",
            compare::markdown(&compare::rows(r, batches.last()))
        );
        if let Some(b) = batches.last() {
            let _ = writeln!(
                doc.md,
                "Asymmetry from probe batch {} ({} random directions per centre). Sharpness: {}, ρ = {}.\n",
                b.id,
                b.directions,
                r.settings.scale.as_str(),
                r.settings.rho
            );
        }
        if r.centres.iter().any(|c| !c.quadratures().is_empty()) {
            let name = format!("curvature-{}", r.id);
            doc.save(&name, density_figure(r))?;
            doc.caption(&name, &name, caption(r));
        }
    }
    Ok(())
}

/// The curvature tracked while training: λ_max of SGD and SWA per epoch end with the edge of
/// stability 2/lr, and a table of the rows.
fn tracked_section(doc: &mut Doc, rows: &[TrackRow]) -> Result<(), ReportError> {
    let _ = writeln!(
        doc.md,
        "### During training\n\nTop eigenvalue and trace of the Hessian at the end of every tracked epoch ({}; 95% intervals of the trace over its probe vectors).\n",
        rows[0].measured_on
    );
    let _ = writeln!(
        doc.md,
        "| epoch | lr | 2/lr | centre | λ_max | trace [95% CI] |\n|---:|---:|---:|---|---:|---|"
    );
    for r in rows {
        let _ = writeln!(
            doc.md,
            "| {} | {} | {} | {} | {} | {} |",
            r.epoch,
            significant(r.lr, 3),
            track::stability_edge(r.lr).map_or("–".into(), |e| significant(e, 3)),
            r.centre,
            significant(r.top_eigenvalue, 4),
            r.trace.map_or("–".into(), |t| t.describe(3))
        );
    }
    let _ = writeln!(doc.md);
    let series = |centre: &str| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| r.centre == centre)
            .map(|r| (f64::from(r.epoch), r.top_eigenvalue))
            .collect()
    };
    let mut edge: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.centre == "sgd")
        .filter_map(|r| Some((f64::from(r.epoch), track::stability_edge(r.lr)?)))
        .collect();
    edge.dedup_by(|a, b| a.0 == b.0);
    let mut lines = Vec::new();
    for (name, points, color, dashed) in [
        ("SGD λ_max", series("sgd"), palette::VERMILLION, false),
        ("SWA λ_max", series("swa"), palette::BLUE, false),
        ("2/lr (edge of stability)", edge, palette::GREY, true),
    ] {
        if !points.is_empty() {
            lines.push(Line {
                name: name.into(),
                points,
                color,
                dashed,
            });
        }
    }
    let name = "curvature-during-training";
    doc.save(
        name,
        figure::svg(
            &Figure {
                title: "top Hessian eigenvalue during training".into(),
                x_label: "epoch".into(),
                y_label: "eigenvalue (log)".into(),
                log_y: true,
                lines,
                markers: Vec::new(),
                notes: Vec::new(),
            },
            WIDTH,
            HEIGHT,
        ),
    )?;
    doc.caption(
        name,
        name,
        "λ_max of the training loss's Hessian at SGD and SWA per tracked epoch end (Lanczos), with 2/lr, where a plain gradient step stops being stable along the top eigenvector (Cohen et al. 2021; with momentum β the edge is (2 + 2β)/lr).".into(),
    );
    Ok(())
}

fn caption(r: &CurvatureResult) -> String {
    let centres: Vec<String> = r
        .centres
        .iter()
        .map(|c| {
            let tops: Vec<String> = c
                .eigenvalues
                .iter()
                .map(|e| significant(e.value, 3))
                .collect();
            format!(
                "{} ({} SLQ runs; top eigenvalues {})",
                c.centre,
                c.quadratures().len(),
                tops.join(", ")
            )
        })
        .collect();
    format!(
        "Spectral density of the Hessian by stochastic Lanczos quadrature ({} steps per run), smoothed with a Gaussian of 1% of the span, on a log scale; dotted lines mark the Lanczos top eigenvalues: {}.",
        r.settings.density_steps,
        centres.join("; ")
    )
}

/// Each centre's smoothed density over one shared span, on a log scale.
pub fn density_figure(r: &CurvatureResult) -> Result<String, figure::FigureError> {
    let all: Vec<_> = r.centres.iter().flat_map(|c| c.quadratures()).collect();
    let Some(span) = density::span(&all) else {
        return Err(figure::FigureError("no density to draw".into()));
    };
    let colors = [palette::VERMILLION, palette::BLUE];
    let lines = r
        .centres
        .iter()
        .zip(colors)
        .filter(|(c, _)| !c.quadratures().is_empty())
        .map(|(c, color)| Line {
            name: c.centre.clone(),
            points: density::curve(&c.quadratures(), span, 400)
                .into_iter()
                .map(|(x, y)| (x, y.max(1e-8)))
                .collect(),
            color,
            dashed: false,
        })
        .collect();
    let markers = r
        .centres
        .iter()
        .filter_map(|c| {
            c.eigenvalues
                .first()
                .map(|e| (e.value, format!("{} λ_max", c.centre)))
        })
        .collect();
    figure::svg(
        &Figure {
            title: format!("curvature {}: Hessian spectral density", r.id),
            x_label: "eigenvalue".into(),
            y_label: "density (log)".into(),
            log_y: true,
            lines,
            markers,
            notes: Vec::new(),
        },
        WIDTH,
        HEIGHT,
    )
}
