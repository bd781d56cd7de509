//! The training worker: a thread that owns libtorch, the data and the models of a run, takes
//! [`Command`]s and emits [`Event`]s. While a run trains (and while the dashboard is open on
//! it), no other thread touches a tensor; one-shot commands without a run (`valleys probe`,
//! `plane`, `ablate`, `bench`) do their tensor work on the main thread instead.

use crate::config::Experiment;
use crate::data::RawDataset;
use crate::data::dataset::Dataset;
use crate::protocol::{Command, Event, Outcome, RunInfo};
use crate::rundir::RunDir;
use crate::runtime::DeviceChoice;
use crate::train::engine::{Engine, EventSink, TwinJob, TwinLauncher};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;

/// The name of the worker thread (see [`crate::protocol::WORKER_THREAD`]).
pub const THREAD_NAME: &str = crate::protocol::WORKER_THREAD;

/// What the worker needs to start a run.
pub struct WorkerSpec {
    pub experiment: Experiment,
    pub device: DeviceChoice,
    /// The data set: read from disk (moved to the device by the worker), or already there.
    pub data: WorkerData,
    pub run_dir: RunDir,
    /// A new run, a resumed one, or a finished one opened for probing.
    pub start: Start,
    /// Raised by signal handlers; the engine stops at the next batch.
    pub stop: Arc<AtomicBool>,
    /// The command line, recorded in run.json.
    pub argv: Vec<String>,
}

/// How a worker begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Train from the first epoch.
    New,
    /// Continue from the run directory's latest checkpoint.
    Resume,
    /// Load the latest checkpoint and train nothing: the dashboard probes and ablates the
    /// weights (`valleys open` on a finished run).
    Open,
}

impl Start {
    /// `Resume` when `resume`, else `New`.
    pub fn resuming(resume: bool) -> Self {
        if resume { Self::Resume } else { Self::New }
    }
}

/// The data a worker trains on.
pub enum WorkerData {
    /// As read from disk. The worker moves it to the device itself, so that every libtorch
    /// operation of the run happens on its thread: a second thread with its own OpenMP team
    /// would make libgomp stop spinning between kernels (more threads than cores), which costs
    /// about a quarter of the training speed on a small CPU.
    Raw(RawDataset),
    /// Already on the device (a twin on a GPU shares its run's tensors).
    Device(Dataset),
}

/// A running worker: its command sender and event receiver. After training it keeps
/// answering probes until its command sender is dropped.
pub struct Worker {
    pub commands: Sender<Command>,
    pub events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    thread: WorkerThread,
}

/// The worker's thread, to wait for once its command sender is gone.
pub struct WorkerThread(Option<JoinHandle<()>>);

impl WorkerThread {
    /// Waits for the worker thread to end.
    pub fn join(mut self) {
        if let Some(t) = self.0.take() {
            let _ = t.join();
        }
    }
}

impl Worker {
    /// Starts the worker thread.
    pub fn spawn(spec: WorkerSpec) -> std::io::Result<Self> {
        let (event_tx, event_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut worker = Self::spawn_with_events(spec, EventSink::new(event_tx))?;
        worker.events = event_rx;
        Ok(worker)
    }

    /// Starts a worker whose events go to `sink` (the twin reports through its run's
    /// channel); the returned receiver is then unused.
    pub fn spawn_with_events(spec: WorkerSpec, sink: EventSink) -> std::io::Result<Self> {
        let (command_tx, command_rx) = std::sync::mpsc::channel();
        let (_, event_rx) = tokio::sync::mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || run_to_end(spec, &command_rx, &sink))?;
        Ok(Self {
            commands: command_tx,
            events: event_rx,
            thread: WorkerThread(Some(thread)),
        })
    }

    /// Drops the command sender (ending the worker's service of probes) and waits for it.
    pub fn finish(self) {
        drop(self.commands);
        self.thread.join();
    }

    /// The parts, for a caller that hands the channels to the dashboard.
    pub fn split(
        self,
    ) -> (
        Sender<Command>,
        tokio::sync::mpsc::UnboundedReceiver<Event>,
        WorkerThread,
    ) {
        (self.commands, self.events, self.thread)
    }
}

/// Runs a worker's whole life on this thread: set-up, training, the outcome recorded and
/// reported, then probes until `commands` disconnects. Errors and panics become
/// [`Outcome::Failed`].
pub fn run_to_end(spec: WorkerSpec, commands: &Receiver<Command>, sink: &EventSink) {
    let run_dir = spec.run_dir.clone();
    // An opened run was over before: its outcome stays as it was recorded.
    let record = spec.start != Start::Open;
    let finished = std::cell::Cell::new(false);
    let finish = |outcome: Outcome| {
        if record && let Err(e) = run_dir.record_outcome(&outcome) {
            sink.log(format!("could not record the outcome in run.json: {e}"));
        }
        finished.set(true);
        sink.send(Event::Finished(outcome));
    };
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| run(spec, commands, sink, &finish)));
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(panic) => Some(format!(
            "the training worker panicked: {}",
            crate::error::panic_message(&panic)
        )),
    };
    match failure {
        Some(message) if !finished.get() => finish(Outcome::Failed { message }),
        // The run itself ended; only the service of probes afterwards failed.
        Some(message) => sink.log(format!("error after the run: {message}")),
        None => {}
    }
}

/// Why a worker could not run: its data could not go to the device, or the engine or the
/// run directory failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Engine(#[from] crate::train::engine::EngineError),
    #[error(transparent)]
    RunDir(#[from] crate::rundir::RunDirError),
}

/// Trains no-BN twins as workers of their own.
struct Twins;

impl TwinLauncher for Twins {
    fn spawn(&self, job: TwinJob) -> std::io::Result<Box<dyn std::any::Any>> {
        let (spec, sink) = twin_spec(job);
        Ok(Box::new(Worker::spawn_with_events(spec, sink)?))
    }

    fn run_here(&self, job: TwinJob) {
        let (spec, sink) = twin_spec(job);
        // No sender: the twin takes no commands and ends as soon as it has trained.
        let (_, no_commands) = std::sync::mpsc::channel();
        run_to_end(spec, &no_commands, &sink);
    }
}

fn twin_spec(job: TwinJob) -> (WorkerSpec, EventSink) {
    let spec = WorkerSpec {
        experiment: job.experiment,
        device: job.device,
        data: WorkerData::Device(job.data),
        run_dir: job.run_dir,
        start: Start::resuming(job.resume),
        stop: job.stop,
        argv: vec!["(twin of this run)".into()],
    };
    (spec, job.events)
}

fn run(
    spec: WorkerSpec,
    commands: &Receiver<Command>,
    sink: &EventSink,
    finish: &dyn Fn(Outcome),
) -> Result<(), WorkerError> {
    let exp = spec.experiment;
    let run_dir = spec.run_dir.clone();
    let data = match spec.data {
        WorkerData::Raw(raw) => Dataset::from_raw(
            raw,
            &exp.data,
            exp.eval.train_subset,
            exp.seed,
            spec.device.device,
        )?,
        WorkerData::Device(data) => data,
    };
    let mut engine = Engine::new(
        exp.clone(),
        data,
        spec.device.clone(),
        spec.run_dir,
        sink.clone(),
        spec.stop,
    )?;
    engine.set_twin_launcher(Box::new(Twins));
    let resumed_from = match spec.start {
        Start::New => None,
        Start::Resume => Some(engine.resume()?),
        Start::Open => Some(engine.load_latest()?),
    };
    let info = RunInfo {
        experiment: exp.name.clone(),
        model: engine.sgd().description().to_owned(),
        data: engine.data().source.clone(),
        device: spec.device.name.clone(),
        device_reason: spec.device.reason.clone(),
        run_dir: run_dir.root().to_owned(),
        epochs: exp.train.epochs,
        batches_per_epoch: engine.batches_per_epoch(),
        swa_start_epoch: exp.swa.enabled.then_some(exp.swa.start_epoch).flatten(),
        program_version: env!("CARGO_PKG_VERSION").into(),
        seed: exp.seed,
        probe: exp.probe.clone(),
        ablation_probe: engine.ablation_probe(),
        ablation_directions: engine.ablation_directions(),
        curvature: exp.curvature.clone(),
        started_unix_s: match spec.start {
            // An opened run keeps the clock it trained on.
            Start::Open => {
                crate::follow::read_run_json(&run_dir).and_then(|(info, _)| info.started_unix_s)
            }
            _ => Some(
                jiff::Timestamp::now().as_millisecond() as f64 / 1000.0 - engine.state().elapsed_s,
            ),
        },
    };
    if spec.start == Start::Open {
        // Nothing trains: run.json stays as the run left it.
        sink.send(Event::Ready(Box::new(info)));
        sink.send(Event::History(Box::new(crate::follow::history(&run_dir))));
        send_twin_history(&run_dir, sink);
        let outcome = crate::follow::read_run_json(&run_dir)
            .and_then(|(_, outcome)| outcome)
            .unwrap_or(Outcome::Stopped);
        finish(outcome);
        engine.serve(commands)?;
        return Ok(());
    }
    // A resumed run keeps its first start time, lists every resumption and keeps the peak
    // memory of its earlier parts (the run's own command adds this part's at its end).
    let previous = run_dir.run_info();
    let now = jiff::Zoned::now().to_string();
    let mut resumed = previous["resumed"].as_array().cloned().unwrap_or_default();
    if let Some(state) = &resumed_from {
        resumed.push(serde_json::json!({ "at": now, "epoch": state.epoch, "batch": state.batch, "step": state.step }));
    }
    let mut info_json = serde_json::json!({
        "program": "valleys",
        "version": env!("CARGO_PKG_VERSION"),
        "started": previous.get("started").cloned().unwrap_or(serde_json::Value::String(now)),
        "resumed": resumed,
        "argv": spec.argv,
        "experiment": exp.name,
        "seed": exp.seed,
        "device": spec.device,
        "model": info.model,
        "parameters": engine.sgd().num_params(),
        "parameter_names": engine.sgd().params(),
        "data": info.data,
        "libtorch": crate::runtime::libtorch_dir(),
        "threads": tch::get_num_threads(),
        "info": info,
    });
    if let Some(machine) = previous.get("machine") {
        info_json["machine"] = machine.clone();
    }
    run_dir.write_run_info(&info_json)?;
    sink.send(Event::Ready(Box::new(info)));
    if resumed_from.is_some() {
        // The dashboard opens where the run stands: its metrics up to the checkpoint (the
        // rest were dropped and are measured again), its probes, ablations and twin.
        sink.send(Event::History(Box::new(crate::follow::history(&run_dir))));
        send_twin_history(&run_dir, sink);
    }
    let outcome = engine.run(commands)?;
    let failed = matches!(outcome, Outcome::Failed { .. });
    finish(outcome);
    if !failed {
        engine.serve(commands)?;
    }
    Ok(())
}

/// The no-BN twin's stored curves (and how it ended, if it did), for the ablation view.
fn send_twin_history(run_dir: &RunDir, sink: &EventSink) {
    let twin = crate::ablation::twin_dir(run_dir);
    if let Ok(twin) = RunDir::open(&twin) {
        let history = crate::follow::history(&twin);
        if !history.rows.is_empty() {
            sink.send(Event::Twin(Box::new(Event::History(Box::new(history)))));
            // A twin that is over says so, or the dashboard would show it as still training.
            if let Some(outcome) = twin.outcome() {
                sink.send(Event::Twin(Box::new(Event::Finished(outcome))));
            }
        }
    }
}
