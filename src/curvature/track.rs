//! Curvature tracked while training (`curvature.every_epochs`): the top Hessian eigenvalue and
//! the trace of SGD and SWA at the end of every N-th epoch, one row per centre, as plain data;
//! `store` keeps them in RUN_DIR/curvature/track.jsonl.

use super::{CurvatureResult, Estimate};
use serde::{Deserialize, Serialize};

/// One centre's curvature at one epoch end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackRow {
    /// Completed epochs when measured (0: before training).
    pub epoch: u32,
    /// Completed optimiser steps when measured.
    pub step: u64,
    /// The learning rate of the epoch just trained (the edge of stability is 2/lr).
    pub lr: f64,
    /// "sgd" or "swa".
    pub centre: String,
    /// The largest eigenvalue of the training loss's Hessian.
    #[serde(with = "crate::nonfinite")]
    pub top_eigenvalue: f64,
    /// Its residual bound |Hv − θv|: the eigenvalue lies within it of the value.
    #[serde(with = "crate::nonfinite")]
    pub residual: f64,
    /// The trace with its 95% interval over the probe vectors, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Estimate>,
    /// The loss the Hessian is of, on the measured samples.
    #[serde(with = "crate::nonfinite")]
    pub loss: f64,
    /// The loss in words (samples, BN mode).
    pub measured_on: String,
    /// Seconds the measurement of both centres took.
    pub seconds: f64,
}

/// One row per centre of a tracking job's result.
pub fn rows(result: &CurvatureResult, lr: f64) -> Vec<TrackRow> {
    result
        .centres
        .iter()
        .filter_map(|c| {
            let set = c.sets.first()?;
            Some(TrackRow {
                epoch: result.epoch,
                step: result.step,
                lr,
                centre: c.centre.clone(),
                top_eigenvalue: *set.eigenvalues.first()?,
                residual: set.residuals.first().copied().unwrap_or(f64::NAN),
                trace: set.trace.as_ref().map(|t| t.trace),
                loss: set.loss,
                measured_on: result.loss.clone(),
                seconds: result.cost.seconds,
            })
        })
        .collect()
}

/// The rows of a track.jsonl text; `name` names the file in what could not be read.
pub fn parse(text: &str, name: &str) -> (Vec<TrackRow>, Vec<String>) {
    let mut rows = Vec::new();
    let mut unreadable = Vec::new();
    let complete = if text.ends_with('\n') {
        text
    } else {
        // The last line is being written by another process or was torn: not yet a row.
        &text[..text.rfind('\n').map_or(0, |i| i + 1)]
    };
    for (i, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<TrackRow>(line) {
            Ok(row) if row.centre == "sgd" || row.centre == "swa" => rows.push(row),
            Ok(row) => unreadable.push(format!(
                "{name}: line {}: centre {:?}; expected sgd or swa",
                i + 1,
                row.centre
            )),
            Err(e) => unreadable.push(format!("{name}: line {}: {e}", i + 1)),
        }
    }
    (rows, unreadable)
}

/// The edge of stability for plain gradient descent at learning rate `lr` (Cohen et al.
/// 2021): the top eigenvalue above which a step of size lr is unstable along its
/// eigenvector. With momentum β the edge is (2 + 2β)/lr; the chart draws the plain one and
/// says so.
pub fn stability_edge(lr: f64) -> Option<f64> {
    (lr.is_finite() && lr > 0.0).then(|| 2.0 / lr)
}

/// One line about the rows of one epoch end: λ_max and the trace per centre, and the edge.
pub fn one_line(rows: &[TrackRow]) -> String {
    let Some(first) = rows.first() else {
        return String::new();
    };
    let lambda: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}", r.centre, super::significant(r.top_eigenvalue, 4)))
        .collect();
    let trace: Vec<String> = rows
        .iter()
        .filter_map(|r| Some(format!("{} {}", r.centre, r.trace?.describe(3))))
        .collect();
    let mut line = format!(
        "epoch {} curvature: λ_max {}",
        first.epoch,
        lambda.join(", ")
    );
    if !trace.is_empty() {
        line += &format!(" · trace {}", trace.join(", "));
    }
    if let Some(edge) = stability_edge(first.lr) {
        line += &format!(" · 2/lr {}", super::significant(edge, 3));
    }
    line + &format!(" · {:.0} s", first.seconds)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn row(epoch: u32, centre: &str, lambda: f64) -> TrackRow {
        TrackRow {
            epoch,
            step: u64::from(epoch) * 10,
            lr: 0.05,
            centre: centre.into(),
            top_eigenvalue: lambda,
            residual: 0.01,
            trace: Some(Estimate {
                value: 100.0,
                interval: Some(crate::stats::Interval {
                    lo: 90.0,
                    hi: 110.0,
                }),
            }),
            loss: 0.3,
            measured_on: "training loss on 256 training samples".into(),
            seconds: 4.0,
        }
    }

    #[test]
    fn bad_lines_are_named_and_a_torn_last_line_waits() {
        let good = serde_json::to_string(&row(1, "sgd", 2.0)).unwrap();
        let text = format!("{good}\nnot json\n{{\"epoch\":1}}\n{good}\n{}", &good[..10]);
        let (rows, bad) = parse(&text, "track.jsonl");
        assert_eq!(rows.len(), 2);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].starts_with("track.jsonl: line 2: "), "{}", bad[0]);
        assert!(bad[1].contains("line 3"), "{}", bad[1]);
        let wrong = good.replace("\"sgd\"", "\"adam\"");
        let (_, bad) = parse(&format!("{wrong}\n"), "t");
        assert!(bad[0].contains("expected sgd or swa"), "{bad:?}");
    }

    #[test]
    fn one_line_names_each_centre_and_the_edge() {
        let line = one_line(&[row(5, "sgd", 9.6814), row(5, "swa", 7.44)]);
        assert_eq!(
            line,
            "epoch 5 curvature: λ_max sgd 9.681, swa 7.440 · trace sgd 100 [90.0, 110], swa 100 [90.0, 110] · 2/lr 40.0 · 4 s"
        );
    }

    #[test]
    fn the_edge_of_stability_is_two_over_the_learning_rate() {
        assert_eq!(stability_edge(0.05), Some(40.0));
        assert_eq!(stability_edge(0.0), None);
        assert_eq!(stability_edge(f64::NAN), None);
    }
}
