//! The messages between the training worker and whoever watches it (the headless printer, the
//! dashboard, the run-directory reader of `watch`). Plain owned data: no tensors cross here.

use crate::ablation::result::{AblationKind, AblationResult};
use crate::config::curvature::CurvatureSpec;
use crate::curvature::CurvatureResult;
use crate::curvature::track::TrackRow;
use crate::names::named_enum;
use crate::probe::plane::{PlaneHeader, PlanePoint, PlaneResult, PlaneSpec};
use crate::probe::summary::BatchSummary;
use crate::probe::{ProbePoint, ProbeResult, ProbeSpec};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The name of the worker thread, the other side of this protocol. Panic hooks stay quiet for
/// it because the worker reports its own failures as [`Outcome::Failed`] or `ProbeFailed`.
pub const WORKER_THREAD: &str = "valleys-worker";

/// A probe to run on the live weights: one direction, or `directions` random ones through
/// each centre.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRequest {
    pub spec: ProbeSpec,
    pub directions: Option<usize>,
}

/// Requests to the worker, answered between two batches.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Pause,
    Resume,
    /// Stop training after the current batch; a checkpoint of that point is written.
    Stop,
    /// Write a checkpoint now.
    Checkpoint,
    /// Run a probe (training waits); a probe asked for while one runs replaces any waiting one.
    Probe(Box<ProbeRequest>),
    /// Measure a plane through the live weights (queued like a probe; `CancelProbe` cancels it).
    Plane(Box<PlaneSpec>),
    /// Measure the Hessian's curvature at the live SGD and SWA weights (queued like a probe;
    /// `CancelProbe` cancels it).
    Curvature(Box<CurvatureSpec>),
    /// Connect two iterates of the live run by a line (and a Bézier curve, if asked), as
    /// `valleys connect` does (queued like a probe; `CancelProbe` cancels it).
    Connect(Box<ConnectRequest>),
    /// Cancel the running probe.
    CancelProbe,
    /// Run a batch-norm ablation on the live weights (and the twin's, when it has finished);
    /// `directions` per arm defaults to the experiment's `ablation.directions` (or 5).
    Ablate {
        kind: AblationKind,
        directions: Option<usize>,
    },
    /// Train the no-BN twin: now on a GPU, after this run on a CPU.
    StartTwin,
    /// Evaluate the SWA average with stale BN statistics too (the `swa_stale` series).
    TrackStaleBn(bool),
}

/// A connection on the live run: from iterate `a` to iterate `b`, or to the SGD iterate the
/// run kept at the end of epoch `b_epoch` (its trajectory).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRequest {
    pub a: Iterate,
    pub b: Iterate,
    pub b_epoch: Option<u32>,
    pub points: usize,
    pub bn: crate::probe::BnMode,
    /// Epochs of a Bézier curve (0: the line alone).
    pub curve_epochs: u32,
}

impl ConnectRequest {
    /// "sgd → swa", "swa → sgd@epoch 3", with the curve's epochs.
    pub fn describe(&self) -> String {
        let b = match self.b_epoch {
            Some(e) => format!("sgd@epoch {e}"),
            None => self.b.as_str().to_owned(),
        };
        let curve = if self.curve_epochs > 0 {
            format!(", Bézier curve {} epochs", self.curve_epochs)
        } else {
            String::new()
        };
        format!(
            "{} → {b}: {} points, BN {}{curve}",
            self.a.as_str(),
            self.points,
            self.bn.as_str()
        )
    }
}

named_enum! {
    /// Which weights a measurement is of.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Iterate {
        /// The plain SGD iterate.
        Sgd = "sgd",
        /// The stochastic weight average.
        Swa = "swa",
        /// The average evaluated with the SGD iterate's BN statistics, without recomputing them.
        /// (Runs written before 0.2 spelled it "swastale".)
        #[serde(alias = "swastale")]
        SwaStale = "swa_stale",
    }
}

named_enum! {
    /// Which data a measurement is on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Split {
        /// Training data, un-augmented, in eval mode (the fixed evaluation subset).
        Train = "train",
        /// Test data, in eval mode.
        Test = "test",
        /// The epoch's mean training-mode loss over the augmented batches as the weights moved.
        TrainRunning = "train_running",
    }
}

/// One row of metrics.jsonl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    /// Completed epochs when measured (0: before training).
    pub epoch: u32,
    /// Completed optimiser steps when measured.
    pub step: u64,
    pub iterate: Iterate,
    pub split: Split,
    #[serde(with = "crate::nonfinite")]
    pub loss: f64,
    /// Accuracy as a fraction in [0, 1].
    #[serde(with = "crate::nonfinite")]
    pub acc: f64,
    /// Learning rate of the last epoch.
    pub lr: f64,
    /// Seconds of training and evaluation so far (resumed runs continue the count).
    pub elapsed_s: f64,
    /// Number of samples the measurement averages over.
    pub samples: usize,
    /// For SWA rows: how many snapshots the average holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa_n: Option<u64>,
}

/// Static facts about a run, sent once when the worker is ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub experiment: String,
    pub model: String,
    pub data: String,
    pub device: String,
    pub device_reason: String,
    pub run_dir: PathBuf,
    pub epochs: u32,
    pub batches_per_epoch: u32,
    pub swa_start_epoch: Option<u32>,
    pub program_version: String,
    /// The experiment's seed and `probe:` section: the probe form's defaults.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub probe: ProbeSpec,
    /// The probe settings and directions per arm of ablations (the experiment's `ablation:`
    /// section, or its `probe:` and 5), for the menu's cost estimates.
    #[serde(default)]
    pub ablation_probe: ProbeSpec,
    #[serde(default = "five")]
    pub ablation_directions: usize,
    /// The experiment's `curvature:` section: the curvature form's defaults.
    #[serde(default)]
    pub curvature: CurvatureSpec,
    /// The Unix time at which the run's clock (`elapsed_s`) read 0: the wall clock of a point
    /// is this plus its elapsed time. A resumed run sets it so that its latest part is right
    /// (the parts before shift by the time the run stood still).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_s: Option<f64>,
}

fn five() -> usize {
    5
}

/// Where training is, sent a few times per second at most.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The epoch in progress, counted from 1.
    pub epoch: u32,
    /// Batches done in this epoch.
    pub batch: u32,
    pub batches_per_epoch: u32,
    pub step: u64,
    pub lr: f64,
    pub samples_per_s: f64,
    /// Mean training-mode loss and accuracy over this epoch's batches so far.
    pub running_loss: f64,
    pub running_acc: f64,
    /// The same over the batches since the previous report: the per-step training curve.
    pub recent_loss: f64,
    pub recent_acc: f64,
    pub elapsed_s: f64,
    /// Of `elapsed_s`, the time spent training and evaluating (not probing, not paused): what
    /// the time left is estimated from.
    pub training_s: f64,
}

/// A test row of the SGD iterate after `epoch` epochs of `steps_per_epoch` steps, its loss
/// falling as 1/(epoch + 1): a fixture for tests of what reads metrics.
#[cfg(test)]
pub(crate) fn sgd_test_row(epoch: u32, steps_per_epoch: u64) -> MetricRow {
    MetricRow {
        epoch,
        step: u64::from(epoch) * steps_per_epoch,
        iterate: Iterate::Sgd,
        split: Split::Test,
        loss: 1.0 / f64::from(epoch + 1),
        acc: 0.5,
        lr: 0.1,
        elapsed_s: f64::from(epoch),
        samples: 100,
        swa_n: None,
    }
}

/// SGD test loss minus SWA test loss at the last evaluation among `rows` (in the order
/// written): what averaging bought. None until both have been evaluated.
pub fn swa_gain<'a>(rows: impl IntoIterator<Item = &'a MetricRow>) -> Option<f64> {
    let (mut sgd, mut swa) = (None, None);
    for r in rows.into_iter().filter(|r| r.split == Split::Test) {
        match r.iterate {
            Iterate::Sgd => sgd = Some(r.loss),
            Iterate::Swa => swa = Some(r.loss),
            _ => {}
        }
    }
    Some(sgd? - swa?)
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    /// Stopped on request (a key, Ctrl-C, SIGTERM, SIGHUP); resumable from the last checkpoint.
    Stopped,
    /// The loss became NaN or infinite; the last finite checkpoint is kept.
    Diverged {
        epoch: u32,
        step: u64,
    },
    Failed {
        message: String,
    },
}

/// Worker output.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Ready(Box<RunInfo>),
    Progress(Progress),
    Metric(MetricRow),
    CheckpointWritten {
        path: PathBuf,
        epoch: u32,
        step: u64,
    },
    Log(String),
    /// A long step of training began (what it is) or ended (None): the header shows it with
    /// its time so far.
    Phase(Option<String>),
    Paused,
    Resumed,
    Finished(Outcome),
    /// A probe began; `grid` holds its t values.
    ProbeStarted {
        id: String,
        summary: String,
        grid: Vec<f64>,
        /// The expected time of one point, from one forward pass over its samples.
        seconds_per_point: f64,
    },
    /// One point of the running probe (points arrive coarse to fine).
    ProbePoint {
        id: String,
        index: usize,
        point: ProbePoint,
    },
    ProbeFinished(Box<ProbeResult>),
    ProbeBatchFinished(Box<BatchSummary>),
    /// A plane began: its grid, iterates and expected cost.
    PlaneStarted(Box<PlaneHeader>),
    /// One point of the running plane, at column `i` and row `j` (points arrive coarse to
    /// fine).
    PlanePoint {
        id: String,
        i: usize,
        j: usize,
        point: PlanePoint,
    },
    PlaneFinished(Box<PlaneResult>),
    /// A plane measured earlier gained an iterate of the training path: its whole path now.
    PlanePath {
        id: String,
        path: Vec<crate::trajectory::PathPoint>,
    },
    /// The probe (or plane) could not run or was cancelled.
    ProbeFailed {
        message: String,
    },
    /// An ablation finished; `probes` holds the curves of its arms (groups and BN modes).
    AblationFinished {
        result: Box<AblationResult>,
        probes: Vec<ProbeResult>,
    },
    /// A curvature job (or the tracking measurement at an epoch end) began: what it measures
    /// and what it will cost, said before the work starts.
    CurvatureStarted {
        /// "curvature 003-both" or "curvature at epoch 5".
        label: String,
        plan: String,
        /// Hessian-vector products at most, and the expected seconds of the whole job.
        products: usize,
        expected_s: f64,
    },
    /// Where the running curvature measurement is (a few times a second at most).
    CurvatureProgress {
        done: usize,
        planned: usize,
        what: String,
    },
    CurvatureFinished(Box<CurvatureResult>),
    /// A connection started on the live run (what it connects, from [`ConnectRequest::describe`]).
    ConnectStarted {
        label: String,
    },
    /// A connection measured and stored.
    ConnectFinished(Box<crate::probe::connect::ConnectResult>),
    /// The curvature tracked at an epoch end (`curvature.every_epochs`), one row per centre.
    CurvatureTracked(Vec<TrackRow>),
    /// An event of the no-BN twin run.
    Twin(Box<Event>),
    /// What a resumed run had already measured: its metrics up to the checkpoint it resumes
    /// from and its stored results, so that the dashboard starts where the run stands.
    History(Box<History>),
}

/// A run's history as stored in its directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub rows: Vec<MetricRow>,
    pub probes: Vec<ProbeResult>,
    pub batches: Vec<BatchSummary>,
    /// Each ablation with the curves of its arms.
    pub ablations: Vec<(AblationResult, Vec<ProbeResult>)>,
    pub planes: Vec<PlaneResult>,
    pub curvature: Vec<CurvatureResult>,
    /// The curvature tracked while training, in the order measured.
    pub curvature_track: Vec<TrackRow>,
    /// Connections between iterates (`valleys connect`, or the connect form).
    pub connections: Vec<crate::probe::connect::ConnectResult>,
    /// Stored results that could not be read (left out), each naming its file and why.
    pub unreadable: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::Iterate;

    #[test]
    fn the_stale_bn_series_is_swa_stale_and_old_runs_still_read() {
        assert_eq!(
            serde_json::to_string(&Iterate::SwaStale).unwrap(),
            "\"swa_stale\""
        );
        for word in ["\"swa_stale\"", "\"swastale\""] {
            assert_eq!(
                serde_json::from_str::<Iterate>(word).unwrap(),
                Iterate::SwaStale
            );
        }
    }
}
