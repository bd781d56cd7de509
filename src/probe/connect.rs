//! Connectivity between two solutions: the loss along the straight line from A to B (iterates
//! of one run, of two runs, or of two checkpoints), BN statistics recomputed at each point,
//! the barrier on it and the two solutions' sign-consistency ratio. Plain data; the line is
//! measured by `probe::runner::connect`.

pub mod curve;

use super::{BnMode, ProbePoint};
use crate::stats::Interval;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `RUN[:sgd|:swa][@CHECKPOINT]`: an iterate of a saved run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub run: PathBuf,
    /// "sgd" or "swa".
    pub iterate: String,
    /// latest, final, epoch-NNNN or a path.
    pub checkpoint: String,
}

impl Endpoint {
    /// Parses `RUN[:sgd|:swa][@CHECKPOINT]` (the SGD iterate of the latest checkpoint unless
    /// said).
    pub fn parse(text: &str) -> Result<Self, crate::error::Invalid> {
        let (rest, checkpoint) = match text.rsplit_once('@') {
            Some((rest, checkpoint)) if !checkpoint.is_empty() => (rest, checkpoint),
            Some(_) => {
                return Err(format!(
                    "'{text}': expected RUN[:sgd|:swa][@CHECKPOINT], a checkpoint after @"
                )
                .into());
            }
            None => (text, "latest"),
        };
        let (run, iterate) = match rest.rsplit_once(':') {
            Some((run, iterate @ ("sgd" | "swa"))) => (run, iterate),
            Some((_, other)) if !other.contains('/') => {
                return Err(format!(
                    "'{text}': iterate '{other}'; expected sgd or swa (RUN:sgd, RUN:swa)"
                )
                .into());
            }
            _ => (rest, "sgd"),
        };
        if run.is_empty() {
            return Err(format!("'{text}': expected a run directory before the iterate").into());
        }
        Ok(Self {
            run: PathBuf::from(run),
            iterate: iterate.into(),
            checkpoint: checkpoint.into(),
        })
    }

    /// "runs/a:swa@final".
    pub fn label(&self) -> String {
        format!(
            "{}:{}@{}",
            self.run.display(),
            self.iterate,
            self.checkpoint
        )
    }
}

/// The barrier of a path: the highest loss on it minus the mean of its end points' losses,
/// with a 95% interval from the three losses' standard errors (taken as independent, which
/// overstates the noise: they are measured on the same samples).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Barrier {
    pub value: f64,
    /// Where on the path the highest loss is.
    pub at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
}

/// The barrier of `losses` at `ts` (with standard errors `ses`, where known); None for a path
/// of fewer than two points.
pub fn barrier(ts: &[f64], losses: &[f64], ses: &[Option<f64>]) -> Option<Barrier> {
    let n = losses.len();
    if n < 2 || ts.len() != n {
        return None;
    }
    let top = (0..n)
        .filter(|&i| losses[i].is_finite())
        .max_by(|&a, &b| losses[a].total_cmp(&losses[b]))?;
    let value = losses[top] - (losses[0] + losses[n - 1]) / 2.0;
    let se = |i: usize| ses.get(i).copied().flatten();
    let interval = match (se(top), se(0), se(n - 1)) {
        (Some(m), Some(a), Some(b)) => {
            let spread = 1.96 * (m * m + (a * a + b * b) / 4.0).sqrt();
            Some(Interval {
                lo: value - spread,
                hi: value + spread,
            })
        }
        _ => None,
    };
    Some(Barrier {
        value,
        at: ts[top],
        interval,
    })
}

/// A measured connection, as stored in connections/<id>.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectResult {
    pub id: String,
    pub a: Endpoint,
    pub b: Endpoint,
    /// Epochs and steps of the two ends.
    pub a_epoch: u32,
    pub b_epoch: u32,
    /// w(t) = (1 − t)·w_A + t·w_B at each point's t.
    pub points: Vec<ProbePoint>,
    pub bn: BnMode,
    pub train_barrier: Option<Barrier>,
    pub test_barrier: Option<Barrier>,
    /// The trained Bézier curve between the ends, measured at the line's t.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<curve::CurvePath>,
    /// The share of weights (non-zero in both) whose signs agree in A and B.
    pub sign_consistency: f64,
    /// |w_B − w_A| and |w_A|.
    pub distance: f64,
    pub a_norm: f64,
    pub train_samples: usize,
    pub test_samples: usize,
    pub seconds: f64,
}

impl crate::stored::Stored for ConnectResult {
    fn check(&self) -> Result<(), crate::stored::StoredError> {
        if self.points.len() < 2 {
            return Err(crate::stored::StoredError(format!(
                "{} points; expected at least 2",
                self.points.len()
            )));
        }
        crate::stored::fraction("sign_consistency", self.sign_consistency)?;
        let ts: Vec<f64> = self.points.iter().map(|p| p.t).collect();
        crate::stored::increasing("points' t", &ts)?;
        if let Some(curve) = &self.curve {
            let curve_ts: Vec<f64> = curve.points.iter().map(|p| p.t).collect();
            if curve_ts != ts {
                return Err(crate::stored::StoredError(format!(
                    "the curve has {} points at other t than the line's {}",
                    curve_ts.len(),
                    ts.len()
                )));
            }
        }
        Ok(())
    }
}

fn describe(name: &str, b: &Option<Barrier>) -> String {
    match b {
        Some(b) => {
            let interval = b
                .interval
                .map_or(String::new(), |i| format!(" [{:.4}, {:.4}]", i.lo, i.hi));
            format!("{name} barrier {:.4}{interval} at t = {:.2}", b.value, b.at)
        }
        None => format!("{name} barrier –"),
    }
}

/// One line about a connection (and a second about its curve, when it has one).
pub fn one_line(r: &ConnectResult) -> String {
    let mut line = format!(
        "connection {}: {} → {}: line {}; {}; sign consistency {:.1}%, |w_B − w_A| {:.3}",
        r.id,
        r.a.label(),
        r.b.label(),
        describe("train", &r.train_barrier),
        describe("test", &r.test_barrier),
        100.0 * r.sign_consistency,
        r.distance
    );
    if let Some(c) = &r.curve {
        line += &format!(
            "\n  Bézier curve ({} epochs, lr {}): {}; {}; bend {:.2}·|w_B − w_A|",
            c.settings.epochs,
            c.settings.lr,
            describe("train", &c.train_barrier),
            describe("test", &c.test_barrier),
            c.bend
        );
    }
    line
}

/// The CSV of the path's points (the curve's beside the line's, at the same t).
pub fn csv(r: &ConnectResult) -> String {
    const COLUMNS: &str = "train_loss,train_acc,test_loss,test_acc,train_loss_se,test_loss_se";
    let mut out = format!("t,{COLUMNS}");
    if r.curve.is_some() {
        out += &format!(",curve_{}", COLUMNS.replace(',', ",curve_"));
    }
    out.push('\n');
    let se = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let cells = |p: &ProbePoint| {
        format!(
            "{},{},{},{},{},{}",
            p.train_loss,
            p.train_acc,
            p.test_loss,
            p.test_acc,
            se(p.train_loss_se),
            se(p.test_loss_se)
        )
    };
    for (i, p) in r.points.iter().enumerate() {
        out += &format!("{},{}", p.t, cells(p));
        if let Some(q) = r.curve.as_ref().and_then(|c| c.points.get(i)) {
            out += &format!(",{}", cells(q));
        }
        out.push('\n');
    }
    out
}

/// A measured connection as the worker reports it, its numbers chosen by hand: a line from
/// SWA to SGD over five points that rises to 1.0 in the middle, and a curve that stays near
/// the ends' 0.3.
#[cfg(test)]
pub(crate) fn fixture(id: &str) -> ConnectResult {
    use crate::config::probe::BnMode;
    let point = |t: f64, loss: f64| ProbePoint {
        t,
        train_loss: loss,
        train_acc: 0.9 - loss / 4.0,
        test_loss: loss + 0.05,
        test_acc: 0.88 - loss / 4.0,
        train_loss_se: Some(0.01),
        test_loss_se: Some(0.02),
    };
    let ts = [0.0, 0.25, 0.5, 0.75, 1.0];
    let line: Vec<ProbePoint> = ts
        .iter()
        .zip([0.3, 0.6, 1.0, 0.6, 0.3])
        .map(|(&t, l)| point(t, l))
        .collect();
    let curve: Vec<ProbePoint> = ts
        .iter()
        .zip([0.3, 0.33, 0.35, 0.33, 0.3])
        .map(|(&t, l)| point(t, l))
        .collect();
    let barriers = |points: &[ProbePoint]| {
        let ts: Vec<f64> = points.iter().map(|p| p.t).collect();
        let losses: Vec<f64> = points.iter().map(|p| p.train_loss).collect();
        let test: Vec<f64> = points.iter().map(|p| p.test_loss).collect();
        let ses = vec![Some(0.01); points.len()];
        (barrier(&ts, &losses, &ses), barrier(&ts, &test, &ses))
    };
    let (train_barrier, test_barrier) = barriers(&line);
    let (curve_train, curve_test) = barriers(&curve);
    let end = |iterate: &str| Endpoint {
        run: PathBuf::from("runs/quick"),
        iterate: iterate.into(),
        checkpoint: "live".into(),
    };
    ConnectResult {
        id: id.into(),
        a: end("swa"),
        b: end("sgd"),
        a_epoch: 15,
        b_epoch: 15,
        points: line,
        bn: BnMode::Recompute,
        train_barrier,
        test_barrier,
        curve: Some(curve::CurvePath {
            settings: curve::CurveSettings {
                epochs: 2,
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 5e-4,
                batch_size: 128,
            },
            points: curve,
            train_barrier: curve_train,
            test_barrier: curve_test,
            last_epoch_loss: 0.34,
            bend: 0.12,
            steps: 158,
            seconds: 80.0,
        }),
        sign_consistency: 0.71,
        distance: 4.2,
        a_norm: 31.0,
        train_samples: 2000,
        test_samples: 2000,
        seconds: 12.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_run_iterate_and_checkpoint() {
        let e = Endpoint::parse("runs/a:swa@final").unwrap();
        assert_eq!(
            (e.run, e.iterate.as_str(), e.checkpoint.as_str()),
            (PathBuf::from("runs/a"), "swa", "final")
        );
        let e = Endpoint::parse("runs/b").unwrap();
        assert_eq!(
            (e.iterate.as_str(), e.checkpoint.as_str()),
            ("sgd", "latest")
        );
        let e = Endpoint::parse("r@epoch-0003").unwrap();
        assert_eq!((e.run, e.iterate.as_str()), (PathBuf::from("r"), "sgd"));
        for bad in ["r:ema", "r@", ":swa"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    /// By hand: losses 1, 3, 2 at t = 0, 0.5, 1: the top is 3 at 0.5, the ends' mean 1.5, so
    /// the barrier is 1.5, ± 1.96·√(0.1² + (0.2² + 0.2²)/4) = ± 1.96·√0.03.
    #[test]
    fn the_barrier_is_the_top_minus_the_ends_mean() {
        let b = barrier(
            &[0.0, 0.5, 1.0],
            &[1.0, 3.0, 2.0],
            &[Some(0.2), Some(0.1), Some(0.2)],
        )
        .unwrap();
        assert!((b.value - 1.5).abs() < 1e-12 && b.at == 0.5);
        let i = b.interval.unwrap();
        assert!((i.hi - 1.5 - 1.96 * 0.03f64.sqrt()).abs() < 1e-12);
        // A monotone path's top is an end: the barrier is half the ends' difference.
        let b = barrier(&[0.0, 1.0], &[1.0, 2.0], &[None, None]).unwrap();
        assert_eq!((b.value, b.at, b.interval), (0.5, 1.0, None));
        assert!(barrier(&[0.0], &[1.0], &[None]).is_none());
    }
}
