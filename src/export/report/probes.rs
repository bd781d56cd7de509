//! The report's probe sections: every probe's curves and random-shift check, and the c
//! histograms of batches of random directions.

use super::{Doc, HEIGHT, ReportError, WIDTH};
use crate::export::figure::{self, Figure, Line, palette};
use crate::probe::summary::C_BIN_EDGES;
use crate::probe::{DirectionKind, ProbeResult, format_c, store};
use crate::rundir::RunDir;
use std::fmt::Write;

pub(super) fn section(doc: &mut Doc, run: &RunDir, log_y: bool) -> Result<(), ReportError> {
    let (probes, unreadable) = store::read_all(run);
    doc.report.unreadable.extend(unreadable);
    if !probes.is_empty() {
        let _ = writeln!(doc.md, "## Probes\n");
        let _ = writeln!(
            doc.md,
            "| probe | direction | centre (epoch) | params | BN | c | flat side | asymmetric (flat: no rise above noise; ?: undecided) | bias |"
        );
        let _ = writeln!(doc.md, "|---|---|---|---|---|---|---|---|---|");
        for r in &probes {
            let s = r.train_score.as_ref();
            let _ = writeln!(
                doc.md,
                "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} |",
                r.id,
                r.spec.direction.as_str(),
                r.centre.iterate,
                r.centre.epoch,
                r.spec.params.as_str(),
                r.spec.bn.as_str(),
                s.map_or("–".into(), |s| format_c(s.c)),
                s.map_or("–", |s| s.flat_side.symbol()),
                s.map_or("–", |s| s.verdict()),
                s.map_or("–".into(), |s| format!("{:+.2}", s.bias)),
            );
        }
        let _ = writeln!(doc.md);
        for r in &probes {
            let name = format!("probe-{}", r.id);
            doc.save(&name, figure::svg(&probe_figure(r, log_y), WIDTH, HEIGHT))?;
            doc.caption(&name,
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
                doc.save(&name, figure::svg(&fig, WIDTH, HEIGHT))?;
                doc.caption(&name,
                    &name,
                    format!(
                        "How well the test curve of probe {} matches the training curve shifted by δ, up to a constant: best at δ = {:+.3}, where ξ falls to {:.3} of its unshifted value{}.",
                        r.id, shift.best_delta, shift.best_ratio,
                        if shift.at_edge() { " (at the edge of the shifts tried: the best shift may lie further out)" } else { "" }
                    ),
                );
            }
        }
    }

    Ok(())
}

pub(super) fn batches_section(doc: &mut Doc, run: &RunDir) -> Result<(), ReportError> {
    let (batches, unreadable) = store::read_batches(run);
    doc.report.unreadable.extend(unreadable);
    if !batches.is_empty() {
        let _ = writeln!(doc.md, "## Batches of random directions\n");
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
                    bars.push(figure::Bar {
                        name: format!("{} {label}", c.centre),
                        value: *count as f64 / total,
                        color,
                        interval: None,
                    });
                }
            }
            doc.save(
                &name,
                figure::bars(
                    &format!("c over {} random directions", b.directions),
                    "fraction of directions",
                    &bars,
                    1100,
                    HEIGHT,
                ),
            )?;
            let mut fractions: Vec<String> = b
                .centres
                .iter()
                .map(|c| format!("{}: {}", c.centre, c.stats.describe()))
                .collect();
            fractions.extend(b.comparisons.iter().map(|c| c.describe()));
            doc.caption(
                &name,
                &name,
                format!(
                    "Histogram of c over {} {} directions per centre (asymmetric when c ≥ {} and the rises stand above the noise floor; 95% intervals in brackets): {}.",
                    b.directions,
                    b.spec.direction.as_str(),
                    b.threshold,
                    fractions.join("; ")
                ),
            );
        }
    }

    Ok(())
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
            "c = {} ({} at c ≥ {}), flat side {}, training-loss minimum at t = {:+.2}; rises {:.3} at −T and {:.3} at +T (T = {}) against a noise floor of {}",
            format_c(s.c),
            match s.verdict() {
                "yes" => "asymmetric",
                "flat" => "flat: neither rise above the noise floor",
                "?" => "undecided: one side within noise",
                _ => "not asymmetric",
            },
            s.threshold,
            s.flat_side.symbol(),
            s.bias,
            s.rise_minus,
            s.rise_plus,
            s.half_range,
            s.describe_noise_floors()
        ),
        None => "not scored".into(),
    }
}
