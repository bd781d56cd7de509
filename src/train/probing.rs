//! Probes on the live run: the worker runs them between two batches while training waits,
//! reporting every point as it comes and still answering commands between points.
//!
//! One probe runs at a time and at most one waits: a probe asked for while another runs
//! replaces any waiting one. Stop, pause and checkpoint requests that arrive meanwhile are
//! handed back to the training loop.

use super::engine::{Engine, EventSink};
use crate::probe::runner::{self, Observer};
use crate::probe::{ProbeError, ProbePoint, ProbeSpec};
use crate::protocol::{Command, Event, ProbeRequest};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;

/// Requests that arrived while probing, for the training loop to carry out.
#[derive(Debug, Default, PartialEq)]
pub struct Deferred {
    pub stop: bool,
    pub checkpoint: bool,
    /// The pause state last asked for, if any.
    pub pause: Option<bool>,
}

struct LiveObserver<'a> {
    commands: &'a Receiver<Command>,
    events: &'a EventSink,
    stop: &'a AtomicBool,
    waiting: Option<ProbeRequest>,
    cancel: bool,
    deferred: Deferred,
}

impl Observer for LiveObserver<'_> {
    fn started(&mut self, id: &str, spec: &ProbeSpec, grid: &[f64]) {
        self.events.send(Event::ProbeStarted {
            id: id.to_owned(),
            summary: spec.summary(),
            grid: grid.to_vec(),
        });
    }

    fn point(&mut self, id: &str, index: usize, point: &ProbePoint) {
        self.events.send(Event::ProbePoint {
            id: id.to_owned(),
            index,
            point: *point,
        });
    }

    fn cancelled(&mut self) -> bool {
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                // Nobody is listening any more: finish quickly.
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.cancel = true;
                    break;
                }
            };
            match command {
                Command::CancelProbe => self.cancel = true,
                Command::Probe(request) => self.waiting = Some(*request),
                Command::Stop => {
                    self.deferred.stop = true;
                    self.cancel = true;
                }
                Command::Checkpoint => self.deferred.checkpoint = true,
                Command::Pause => self.deferred.pause = Some(true),
                Command::Resume => self.deferred.pause = Some(false),
            }
        }
        if self.stop.load(Ordering::Relaxed) {
            self.deferred.stop = true;
            self.cancel = true;
        }
        self.cancel
    }
}

/// Runs `first` and then any probe that was asked for meanwhile.
pub fn serve(
    engine: &Engine,
    first: ProbeRequest,
    commands: &Receiver<Command>,
    stop: &AtomicBool,
) -> Deferred {
    let mut observer = LiveObserver {
        commands,
        events: engine.events(),
        stop,
        waiting: Some(first),
        cancel: false,
        deferred: Deferred::default(),
    };
    while let Some(request) = observer.waiting.take() {
        observer.cancel = false;
        let ctx = engine.probe_context();
        let run = Some(engine.run_dir());
        let outcome = match request.directions.filter(|&n| n > 1) {
            Some(n) => runner::run_batch(&ctx, &request.spec, n, run, &mut observer)
                .map(|summary| Event::ProbeBatchFinished(Box::new(summary))),
            None => runner::run_one(&ctx, &request.spec, run, &mut observer)
                .map(|result| Event::ProbeFinished(Box::new(result))),
        };
        let event = outcome.unwrap_or_else(|e| Event::ProbeFailed {
            message: match e {
                ProbeError::Cancelled => "probe cancelled".into(),
                other => format!("probe failed: {other}"),
            },
        });
        observer.events.send(event);
        if observer.deferred.stop {
            break;
        }
    }
    observer.deferred
}
