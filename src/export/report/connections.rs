//! The report's connections: each stored line between two solutions as a figure of its
//! training and test loss from A (t = 0) to B (t = 1), with its barriers and the two's sign
//! consistency in a table.

use super::{Doc, HEIGHT, ReportError, WIDTH};
use crate::export::figure::{self, Figure, Line, palette};
use crate::probe::ProbePoint;
use crate::probe::connect::{Barrier, ConnectResult};
use crate::rundir::RunDir;
use std::fmt::Write;

fn barrier(b: &Option<Barrier>) -> String {
    match b {
        Some(Barrier {
            value,
            at,
            interval: Some(i),
        }) => format!("{value:.4} [{:.4}, {:.4}] at t = {at:.2}", i.lo, i.hi),
        Some(b) => format!("{:.4} at t = {:.2}", b.value, b.at),
        None => "–".into(),
    }
}

fn figure_of(r: &ConnectResult) -> Figure {
    type Of = fn(&ProbePoint) -> f64;
    let line = |name: &str, points: &[ProbePoint], f: Of, color, dashed| Line {
        name: name.into(),
        points: points.iter().map(|p| (p.t, f(p))).collect(),
        color,
        dashed,
    };
    let mut lines = vec![
        line(
            "line, train",
            &r.points,
            |p| p.train_loss,
            palette::BLUE,
            false,
        ),
        line(
            "line, test",
            &r.points,
            |p| p.test_loss,
            palette::BLUE,
            true,
        ),
    ];
    if let Some(c) = &r.curve {
        lines.push(line(
            "curve, train",
            &c.points,
            |p| p.train_loss,
            palette::ORANGE,
            false,
        ));
        lines.push(line(
            "curve, test",
            &c.points,
            |p| p.test_loss,
            palette::ORANGE,
            true,
        ));
    }
    Figure {
        title: format!("connection {}: {} → {}", r.id, r.a.label(), r.b.label()),
        x_label: "t (w = (1 − t)·w_A + t·w_B)".into(),
        y_label: "loss".into(),
        log_y: false,
        lines,
        markers: vec![(0.0, "A".into()), (1.0, "B".into())],
        notes: Vec::new(),
    }
}

pub(super) fn section(doc: &mut Doc, run: &RunDir) -> Result<(), ReportError> {
    let (connections, unreadable) = crate::probe::store::read_connections(run);
    doc.report.unreadable.extend(unreadable);
    if connections.is_empty() {
        return Ok(());
    }
    let _ = writeln!(
        doc.md,
        "## Connections\n\n| connection | A → B | train barrier [95% CI] | test barrier [95% CI] | sign consistency | \\|w_B − w_A\\| |\n|---|---|---|---|---|---|"
    );
    for r in &connections {
        let _ = writeln!(
            doc.md,
            "| {} | `{}` → `{}` | {} | {} | {:.1}% | {:.3} |",
            r.id,
            r.a.label(),
            r.b.label(),
            barrier(&r.train_barrier),
            barrier(&r.test_barrier),
            100.0 * r.sign_consistency,
            r.distance
        );
        if let Some(c) = &r.curve {
            let _ = writeln!(
                doc.md,
                "| {} (Bézier curve, {} epochs) | | {} | {} | | bend {:.2}·\\|w_B − w_A\\| |",
                r.id,
                c.settings.epochs,
                barrier(&c.train_barrier),
                barrier(&c.test_barrier),
                c.bend
            );
        }
    }
    let _ = writeln!(
        doc.md,
        "\nThe barrier is the highest loss on the straight line minus the mean of its ends' losses (BN {} at each point); its interval takes the three losses' standard errors as independent.\n",
        connections[0].bn.as_str()
    );
    for r in &connections {
        let name = format!("connection-{}", r.id);
        doc.save(&name, figure::svg(&figure_of(r), WIDTH, HEIGHT))?;
        doc.caption(
            &name,
            &r.id,
            format!(
                "Connection {}: training (solid) and test (dashed) loss on the straight line from {} (t = 0, epoch {}) to {} (t = 1, epoch {}), {} points; sign consistency {:.1}%.",
                r.id,
                r.a.label(),
                r.a_epoch,
                r.b.label(),
                r.b_epoch,
                r.points.len(),
                100.0 * r.sign_consistency
            ) + &r.curve.as_ref().map_or(String::new(), |c| format!(
                " In orange, the quadratic Bézier curve (1 − t)²·w_A + 2t(1 − t)·C + t²·w_B whose bend C was trained for {} epochs (lr {}, t drawn per batch), BN {} at each point.",
                c.settings.epochs, c.settings.lr, r.bn.as_str()
            )),
        );
    }
    Ok(())
}
