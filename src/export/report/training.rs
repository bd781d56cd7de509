//! The report's training section: loss and accuracy curves of SGD and SWA, and the metrics
//! as CSV.

use super::{Doc, HEIGHT, ReportError, WIDTH};
use crate::config::Experiment;
use crate::export::figure::{self, Figure, Line, palette};
use crate::protocol::{Iterate, MetricRow, Split};
use crate::rundir::write_atomic;
use std::fmt::Write;

pub(super) fn section(
    doc: &mut Doc,
    rows: &[MetricRow],
    exp: &Experiment,
    log_y: bool,
) -> Result<(), ReportError> {
    let _ = writeln!(doc.md, "## Training\n");
    if rows.is_empty() {
        let _ = writeln!(doc.md, "No evaluation has been recorded yet.\n");
    } else {
        doc.save(
            "training-loss",
            figure::svg(&training_figure(rows, exp, false, log_y), WIDTH, HEIGHT),
        )?;
        doc.save(
            "training-accuracy",
            figure::svg(&training_figure(rows, exp, true, false), WIDTH, HEIGHT),
        )?;
        let mut text = "Train (solid) and test (dashed) cross-entropy of the SGD iterate and of its stochastic weight average.".to_owned();
        if let (Some(s), Some(w)) = (
            last(rows, Iterate::Sgd, Split::Test),
            last(rows, Iterate::Swa, Split::Test),
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
        doc.caption("training-loss", "training loss", text);
        doc.caption(
            "training-accuracy",
            "training accuracy",
            "Train and test accuracy of SGD and SWA.".into(),
        );
        write_atomic(
            &doc.report.dir.join("training.csv"),
            metrics_csv(rows).as_bytes(),
        )?;
        let _ = writeln!(doc.md, "Data: [training.csv](training.csv).\n");
    }

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

/// The run's metrics as CSV.
pub fn metrics_csv(rows: &[MetricRow]) -> String {
    let mut out = String::from("epoch,step,iterate,split,loss,acc,lr,elapsed_s,samples,swa_n\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            r.epoch,
            r.step,
            r.iterate.as_str(),
            r.split.as_str(),
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
