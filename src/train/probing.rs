//! Probes, planes and ablations on the live run: the worker runs them between two batches
//! while training waits, reporting every point as it comes and still answering commands
//! between points.
//!
//! One job runs at a time; jobs asked for meanwhile wait in order. Esc (`CancelProbe`) stops
//! the running one after its current point. Stop, pause, checkpoint and twin requests that
//! arrive meanwhile are handed back to the training loop. A job whose model fails ends alone,
//! as `ProbeFailed`; the run goes on.

mod connect;

use super::engine::{Engine, EventSink};
use crate::ablation::{self, AblationKind, Subject};
use crate::config::curvature::CurvatureSpec;
use crate::curvature::measure::{CurvatureObserver, Plan};
use crate::probe::offline::SavedRun;
use crate::probe::plane::{PlaneHeader, PlaneObserver, PlanePoint, PlaneSpec};
use crate::probe::runner::ProbeError;
use crate::probe::runner::{self, Observer};
use crate::probe::{ProbePoint, ProbeResult, ProbeSpec};
use crate::protocol::{Command, Event, ProbeRequest};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// Work that reads the live weights.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Probe(Box<ProbeRequest>),
    Plane(Box<PlaneSpec>),
    Ablate {
        kind: AblationKind,
        directions: Option<usize>,
    },
    Curvature(Box<CurvatureSpec>),
    Connect(Box<crate::protocol::ConnectRequest>),
}

/// Requests that arrived while probing, for the training loop to carry out.
#[derive(Debug, Default, PartialEq)]
pub struct Deferred {
    pub stop: bool,
    pub checkpoint: bool,
    /// The pause state last asked for, if any.
    pub pause: Option<bool>,
    pub start_twin: bool,
    pub stale_bn: Option<bool>,
}

struct LiveObserver<'a> {
    commands: &'a Receiver<Command>,
    events: &'a EventSink,
    stop: &'a AtomicBool,
    /// Jobs asked for meanwhile, in order.
    waiting: std::collections::VecDeque<Job>,
    cancel: bool,
    /// The id of the plane being measured, for its points' events.
    plane_id: String,
    deferred: Deferred,
    /// When curvature progress was last reported (products can come thousands a second).
    progress_sent: Option<Instant>,
    /// The label of the curvature measurement running.
    curvature_label: String,
}

impl Observer for LiveObserver<'_> {
    fn started(&mut self, id: &str, spec: &ProbeSpec, grid: &[f64], seconds_per_point: f64) {
        self.events.send(Event::ProbeStarted {
            id: id.to_owned(),
            summary: spec.summary(),
            grid: grid.to_vec(),
            seconds_per_point,
        });
    }

    fn point(&mut self, id: &str, index: usize, point: &ProbePoint) {
        self.events.send(Event::ProbePoint {
            id: id.to_owned(),
            index,
            point: *point,
        });
    }

    fn finished(&mut self, result: &ProbeResult) {
        self.events
            .send(Event::ProbeFinished(Box::new(result.clone())));
    }

    fn cancelled(&mut self) -> bool {
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => break,
                // Nobody is listening any more: finish quickly.
                Err(TryRecvError::Disconnected) => {
                    self.cancel = true;
                    break;
                }
            };
            match command {
                Command::CancelProbe => self.cancel = true,
                Command::Probe(request) => self.waiting.push_back(Job::Probe(request)),
                Command::Plane(spec) => self.waiting.push_back(Job::Plane(spec)),
                Command::Curvature(spec) => self.waiting.push_back(Job::Curvature(spec)),
                Command::Connect(request) => self.waiting.push_back(Job::Connect(request)),
                Command::Ablate { kind, directions } => {
                    self.waiting.push_back(Job::Ablate { kind, directions })
                }
                Command::Stop => {
                    self.deferred.stop = true;
                    self.cancel = true;
                }
                Command::Checkpoint => self.deferred.checkpoint = true,
                Command::Pause => self.deferred.pause = Some(true),
                Command::Resume => self.deferred.pause = Some(false),
                Command::StartTwin => self.deferred.start_twin = true,
                Command::TrackStaleBn(on) => self.deferred.stale_bn = Some(on),
            }
        }
        if self.stop.load(Ordering::Relaxed) {
            self.deferred.stop = true;
            self.cancel = true;
        }
        self.cancel
    }
}

impl PlaneObserver for LiveObserver<'_> {
    fn started(&mut self, header: &PlaneHeader) {
        self.plane_id = header.id.clone();
        self.events
            .send(Event::PlaneStarted(Box::new(header.clone())));
    }

    fn point(&mut self, _done: usize, i: usize, j: usize, point: &PlanePoint) {
        self.events.send(Event::PlanePoint {
            id: self.plane_id.clone(),
            i,
            j,
            point: *point,
        });
    }

    fn cancelled(&mut self) -> bool {
        Observer::cancelled(self)
    }
}

/// Announces a curvature measurement's plan as an event.
fn curvature_started(events: &EventSink, label: &str, plan: &Plan) {
    events.send(Event::CurvatureStarted {
        label: label.to_owned(),
        plan: plan.describe(),
        products: plan.products,
        expected_s: plan.expected_seconds(),
    });
}

/// Reports a curvature measurement's progress a few times a second at most (products can come
/// thousands a second), and always its last product.
fn curvature_progress(
    events: &EventSink,
    sent: &mut Option<Instant>,
    (done, planned, what): (usize, usize, &str),
) {
    if sent.is_none_or(|t| t.elapsed() >= Duration::from_millis(250)) || done == planned {
        *sent = Some(Instant::now());
        events.send(Event::CurvatureProgress {
            done,
            planned,
            what: what.to_owned(),
        });
    }
}

impl CurvatureObserver for LiveObserver<'_> {
    fn planned(&mut self, plan: &Plan) {
        self.progress_sent = None;
        curvature_started(self.events, &self.curvature_label, plan);
    }

    fn progress(&mut self, done: usize, planned: usize, what: &str) {
        curvature_progress(self.events, &mut self.progress_sent, (done, planned, what));
    }

    fn cancelled(&mut self) -> bool {
        Observer::cancelled(self)
    }
}

/// The observer of the curvature tracked at an epoch end: it reports like a job and stops
/// when the run is told to stop (other commands wait for the next batch).
pub struct TrackingObserver<'a> {
    pub events: &'a EventSink,
    pub stop: &'a AtomicBool,
    pub label: String,
    progress_sent: Option<Instant>,
}

impl<'a> TrackingObserver<'a> {
    pub fn new(events: &'a EventSink, stop: &'a AtomicBool, label: String) -> Self {
        Self {
            events,
            stop,
            label,
            progress_sent: None,
        }
    }
}

impl CurvatureObserver for TrackingObserver<'_> {
    fn planned(&mut self, plan: &Plan) {
        curvature_started(self.events, &self.label, plan);
    }

    fn progress(&mut self, done: usize, planned: usize, what: &str) {
        curvature_progress(self.events, &mut self.progress_sent, (done, planned, what));
    }

    fn cancelled(&mut self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Runs `first` and then any job that was asked for meanwhile.
pub fn serve(
    engine: &Engine,
    first: Job,
    commands: &Receiver<Command>,
    stop: &AtomicBool,
) -> Deferred {
    let mut observer = LiveObserver {
        commands,
        events: engine.events(),
        stop,
        waiting: std::collections::VecDeque::from([first]),
        cancel: false,
        plane_id: String::new(),
        deferred: Deferred::default(),
        progress_sent: None,
        curvature_label: String::new(),
    };
    while let Some(job) = observer.waiting.pop_front() {
        observer.cancel = false;
        // A probe that panics (a libtorch error surfaces as a panic in tch) fails alone:
        // the run, its weights and the dashboard go on.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if std::env::var("VALLEYS_FAULT").is_ok_and(|f| f == "panic-in-probe") {
                panic!("injected fault: panic in a probe (VALLEYS_FAULT)");
            }
            match job {
                Job::Probe(request) => probe(engine, &request, &mut observer),
                Job::Plane(spec) => plane(engine, &spec, &mut observer),
                Job::Ablate { kind, directions } => ablate(engine, kind, directions, &mut observer),
                Job::Curvature(spec) => curvature(engine, &spec, &mut observer),
                Job::Connect(request) => connect::connect(engine, &request, &mut observer),
            }
        }));
        let event = match outcome {
            // A single probe was announced as it finished.
            Ok(Ok(None)) => None,
            Ok(Ok(Some(event))) => Some(event),
            Ok(Err(ProbeError::Cancelled)) => Some(Event::ProbeFailed {
                message: "probe cancelled".into(),
            }),
            Ok(Err(other)) => Some(Event::ProbeFailed {
                message: format!("probe failed: {other}"),
            }),
            Err(panic) => Some(Event::ProbeFailed {
                message: format!("probe failed: {}", crate::error::panic_message(&panic)),
            }),
        };
        if let Some(event) = event {
            observer.events.send(event);
        }
        if observer.deferred.stop {
            break;
        }
    }
    observer.deferred
}

fn probe(
    engine: &Engine,
    request: &ProbeRequest,
    observer: &mut LiveObserver,
) -> Result<Option<Event>, ProbeError> {
    let ctx = engine.probe_context();
    let run = Some(engine.run_dir());
    match request.directions.filter(|&n| n > 1) {
        Some(n) => runner::run_batch(&ctx, &request.spec, n, run, observer)
            .map(|s| Some(Event::ProbeBatchFinished(Box::new(s)))),
        None => runner::run_one(&ctx, &request.spec, run, observer).map(|_| None),
    }
}

fn plane(
    engine: &Engine,
    spec: &PlaneSpec,
    observer: &mut LiveObserver,
) -> Result<Option<Event>, ProbeError> {
    let ctx = engine.probe_context();
    let result = crate::probe::runner::plane::run(&ctx, spec, Some(engine.run_dir()), observer)?;
    Ok(Some(Event::PlaneFinished(Box::new(result))))
}

fn curvature(
    engine: &Engine,
    spec: &CurvatureSpec,
    observer: &mut LiveObserver,
) -> Result<Option<Event>, ProbeError> {
    let ctx = engine.probe_context();
    let run = engine.run_dir();
    // The id is reserved when the result is stored.
    observer.curvature_label = format!("curvature at epoch {} (live)", ctx.epoch);
    let result = crate::curvature::measure::run(
        &ctx,
        spec,
        engine.curvature_defaults(),
        Some(run),
        observer,
    )?;
    Ok(Some(Event::CurvatureFinished(Box::new(result))))
}

fn ablate(
    engine: &Engine,
    kind: AblationKind,
    directions: Option<usize>,
    observer: &mut LiveObserver,
) -> Result<Option<Event>, ProbeError> {
    let directions = directions.unwrap_or_else(|| engine.ablation_directions());
    let main = Subject {
        ctx: engine.probe_context(),
        run: engine.run_dir(),
    };
    // The twin's weights, once it has finished training.
    let twin_root = ablation::twin_dir(engine.run_dir());
    let twin = if twin_root.join("checkpoints/final.safetensors").is_file() {
        Some(
            SavedRun::load(&twin_root, "final", engine.device().device)
                .map_err(|e| ProbeError::Invalid(format!("cannot load the no-BN twin: {e:#}")))?,
        )
    } else {
        if kind == AblationKind::Summary {
            observer.events.log("no finished no-BN twin yet (b then t trains one): the summary has no BN-vs-none arm");
        }
        None
    };
    let twin_subject = twin.as_ref().map(|t| Subject {
        ctx: t.context(),
        run: &t.run,
    });
    let result = ablation::run(
        kind,
        &main,
        twin_subject.as_ref(),
        &engine.ablation_probe(),
        directions,
        observer,
    )?;
    // The arms' curves, for small multiples (a summary's many probes stay on disk).
    let probes = match kind {
        AblationKind::Summary => Vec::new(),
        _ => result
            .arms
            .iter()
            .flat_map(|arm| ablation::arm_probes(engine.run_dir().root(), arm))
            .collect(),
    };
    Ok(Some(Event::AblationFinished {
        result: Box::new(result),
        probes,
    }))
}
