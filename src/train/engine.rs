//! The training loop: SGD epochs, SWA snapshots, evaluations and checkpoints, answering
//! commands between batches and reporting everything as [`Event`]s and run-directory files.

use super::checkpoint::{self, TrainingState};
use super::resume;
use super::schedule::LrSchedule;
use super::sgd::Sgd;
use super::swa::SwaAverage;
use crate::config::Experiment;
use crate::data::dataset::Dataset;
use crate::data::rng::{self, Purpose};
use crate::model::eval::{self, Evaluation};
use crate::model::{Mode, Model};
use crate::probe::runner::ProbeContext;
use crate::protocol::{Command, Event, Iterate, MetricRow, Outcome, Progress, Split};
use crate::rundir::{MetricsWriter, RunDir};
use crate::runtime::DeviceChoice;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Reduction, Tensor};

mod commands;

/// Where events go. Sending never blocks; a listener that went away is not an error.
#[derive(Clone)]
pub struct EventSink {
    sender: tokio::sync::mpsc::UnboundedSender<Event>,
    /// Wrap every event as the twin's.
    twin: bool,
}

impl EventSink {
    pub fn new(sender: tokio::sync::mpsc::UnboundedSender<Event>) -> Self {
        Self {
            sender,
            twin: false,
        }
    }

    /// A sink into the same channel whose events are marked as the no-BN twin's.
    pub fn for_twin(&self) -> Self {
        Self {
            sender: self.sender.clone(),
            twin: true,
        }
    }

    pub fn send(&self, event: Event) {
        let event = if self.twin {
            Event::Twin(Box::new(event))
        } else {
            event
        };
        let _ = self.sender.send(event);
    }

    pub fn log(&self, message: impl Into<String>) {
        self.send(Event::Log(message.into()));
    }
}

/// A no-BN twin to train: what the engine knows of it.
pub struct TwinJob {
    pub experiment: Experiment,
    pub device: DeviceChoice,
    /// The run's own data, already on the device.
    pub data: Dataset,
    pub run_dir: RunDir,
    /// Continue from the twin's latest checkpoint.
    pub resume: bool,
    pub stop: Arc<AtomicBool>,
    /// The run's event channel, marking events as the twin's.
    pub events: EventSink,
}

/// Runs a no-BN twin for the engine: the engine decides when and what, the launcher (the
/// worker module, which owns threads) how.
pub trait TwinLauncher {
    /// Trains the twin on a thread of its own beside this run; the handle keeps it alive.
    fn spawn(&self, job: TwinJob) -> std::io::Result<Box<dyn std::any::Any>>;
    /// Trains the twin on this thread and returns when it is done.
    fn run_here(&self, job: TwinJob);
}

/// Why training stopped early inside an epoch.
enum Interrupt {
    Stop,
    Diverged,
}

/// Training-mode loss and accuracy accumulated over an epoch, on the device.
struct Running {
    loss_sum: Tensor,
    correct: Tensor,
    seen: u64,
}

impl Running {
    fn new(device: Device, loss_sum: f64, correct: f64, seen: u64) -> Self {
        Self {
            loss_sum: Tensor::from(loss_sum)
                .to_kind(Kind::Double)
                .to_device(device),
            correct: Tensor::from(correct)
                .to_kind(Kind::Double)
                .to_device(device),
            seen,
        }
    }

    /// (mean loss, accuracy, loss sum, correct); synchronises with the device.
    fn read(&self) -> (f64, f64, f64, f64) {
        let loss_sum = self.loss_sum.double_value(&[]);
        let correct = self.correct.double_value(&[]);
        let n = self.seen.max(1) as f64;
        (loss_sum / n, correct / n, loss_sum, correct)
    }
}

/// Everything a training run owns. Lives on the worker thread.
pub struct Engine {
    exp: Experiment,
    data: Dataset,
    sgd: Model,
    swa: Option<SwaAverage>,
    /// A third copy of the model that probes move along their lines.
    scratch: Model,
    opt: Sgd,
    schedule: LrSchedule,
    state: TrainingState,
    running: Running,
    events: EventSink,
    run: RunDir,
    metrics: MetricsWriter,
    stop: Arc<AtomicBool>,
    clock: Instant,
    /// Set once the weights are no longer finite; no checkpoint is written from then on.
    diverged: bool,
    /// Fault injection for tests: `VALLEYS_FAULT=panic-at-step:N` panics before step N,
    /// `stop-at-step:N` raises the stop flag before step N (as a signal would).
    fault_panic_step: Option<u64>,
    fault_stop_step: Option<u64>,
    /// Said once the run starts (after the header), when it was resumed.
    resume_note: Option<String>,
    /// The evaluation before the first step is in metrics.jsonl (a run stopped before its
    /// first batch and resumed must not write it twice).
    initial_evaluated: bool,
    /// Whether a checkpoint has been written in this run directory (for what divergence keeps).
    checkpoint_written: bool,
    device: DeviceChoice,
    /// How to train the no-BN twin (given by the worker, which owns threads).
    twin_launcher: Option<Box<dyn TwinLauncher>>,
    /// The no-BN twin training beside this run, kept alive until the run ends.
    twin: Option<Box<dyn std::any::Any>>,
    /// The twin was asked for while this run trains on a CPU: start it afterwards.
    twin_queued: bool,
    /// Training has ended; only probes, ablations and checkpoints remain.
    training_done: bool,
    /// The twin trained on this thread (CPU) and is done.
    twin_done: bool,
}

const PROGRESS_EVERY: Duration = Duration::from_millis(250);

impl Engine {
    /// Sets up a fresh run: models initialised from the experiment's seed.
    pub fn new(
        exp: Experiment,
        data: Dataset,
        choice: DeviceChoice,
        run: RunDir,
        events: EventSink,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        let device = choice.device;
        // libtorch's generator is global: another run starting in this process at the same
        // moment (a twin, a test) must not interleave its draws with this initialisation.
        static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _init = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tch::manual_seed(exp.seed as i64);
        let sgd = Model::build(&exp.model, &data.input_shape, data.classes, device)?;
        let swa = if exp.swa.enabled {
            let model = Model::build(&exp.model, &data.input_shape, data.classes, device)?;
            model.copy_from(&sgd);
            Some(SwaAverage::new(model))
        } else {
            None
        };
        let scratch = Model::build(&exp.model, &data.input_shape, data.classes, device)?;
        let metrics = run.metrics_writer()?;
        let t = &exp.train;
        let mut opt = Sgd::new(t.momentum, t.weight_decay, t.nesterov);
        if t.freeze_bn_affine {
            opt.freeze(crate::probe::direction::group_mask(
                &sgd,
                crate::probe::ParamGroup::NonBn,
            ));
        }
        Ok(Self {
            device: choice,
            twin_launcher: None,
            twin: None,
            twin_queued: false,
            training_done: false,
            twin_done: false,
            scratch,
            opt,
            schedule: LrSchedule::from_experiment(&exp),
            running: Running::new(device, 0.0, 0.0, 0),
            state: TrainingState::default(),
            clock: Instant::now(),
            diverged: false,
            resume_note: None,
            initial_evaluated: false,
            checkpoint_written: false,
            fault_panic_step: fault("panic-at-step:"),
            fault_stop_step: fault("stop-at-step:"),
            exp,
            data,
            sgd,
            swa,
            events,
            run,
            metrics,
            stop,
        })
    }

    /// Lets the engine train a no-BN twin when asked.
    pub fn set_twin_launcher(&mut self, launcher: Box<dyn TwinLauncher>) {
        self.twin_launcher = Some(launcher);
    }

    /// The data set on the device.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The SGD iterate.
    pub fn sgd(&self) -> &Model {
        &self.sgd
    }

    /// The SWA average, if averaging is on.
    pub fn swa(&self) -> Option<&SwaAverage> {
        self.swa.as_ref()
    }

    /// Where training stands.
    pub fn state(&self) -> &TrainingState {
        &self.state
    }

    /// The run directory.
    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }

    /// Where events go.
    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// What a probe of the live weights reads.
    pub fn probe_context(&self) -> ProbeContext<'_> {
        let swa = self.swa.as_ref().filter(|s| s.n > 0);
        ProbeContext {
            data: &self.data,
            sgd: &self.sgd,
            swa: swa.map(|s| &s.model),
            scratch: &self.scratch,
            seed: self.exp.seed,
            eval_batch: self.eval_batch(),
            epoch: self.state.epoch,
            step: self.state.step,
            swa_n: swa.map_or(0, |s| s.n),
            source: "live".into(),
        }
    }

    /// The device the run trains on.
    pub fn device(&self) -> &DeviceChoice {
        &self.device
    }

    /// Optimiser steps per epoch (the last batch may be smaller).
    pub fn batches_per_epoch(&self) -> u32 {
        // Only an MLP's BN normalises each feature over the batch alone; a convolution's
        // also spans the pixels, so a single image still has a variance.
        let bn_over_samples = self.sgd.has_bn() && self.exp.model.arch == crate::config::Arch::Mlp;
        batches_per_epoch(
            self.data.train.len,
            self.exp.train.batch_size as usize,
            bn_over_samples,
        )
    }

    fn eval_batch(&self) -> i64 {
        self.exp.eval.batch_for(self.sgd.flat().device().is_cuda())
    }

    fn elapsed(&self) -> f64 {
        self.state.elapsed_s + self.clock.elapsed().as_secs_f64()
    }

    /// Restores the run from checkpoints/latest.safetensors: weights, momentum, the SWA
    /// average and its count, the position in the schedule and the epoch's running loss. The
    /// metrics written after that checkpoint are dropped; the run writes them again.
    pub fn resume(&mut self) -> anyhow::Result<TrainingState> {
        let path = resume::latest(&self.run);
        let swa_model = self.swa.as_ref().map(|s| &s.model);
        let loaded = checkpoint::load(&path, &self.sgd, swa_model)?;
        let state = loaded.state;
        self.opt.set_momentum_buffer(loaded.momentum);
        if let Some(swa) = self.swa.as_mut() {
            swa.restore(state.swa_n, state.swa_bn_fresh);
        }
        let device = self.sgd.flat().device();
        self.running = Running::new(
            device,
            state.running_loss_sum,
            state.running_correct,
            state.running_seen,
        );
        self.state = state.clone();
        let dropped = resume::truncate_metrics(&self.run, state.step)?;
        self.checkpoint_written = true;
        self.initial_evaluated = state.step > 0
            || self
                .run
                .read_metrics()?
                .iter()
                .any(|r| r.step == 0 && r.split == Split::Test && r.iterate == Iterate::Sgd);
        // The file was replaced: append to the new one.
        self.metrics = self.run.metrics_writer()?;
        self.clock = Instant::now();
        self.resume_note = Some(format!(
            "resumed at epoch {} batch {} (step {}); {dropped} metric rows after it dropped",
            state.epoch, state.batch, state.step
        ));
        Ok(state)
    }

    /// Trains to the last epoch, or until stopped or diverged.
    pub fn run(&mut self, commands: &Receiver<Command>) -> anyhow::Result<Outcome> {
        if let Some(note) = self.resume_note.take() {
            self.events.log(note);
        }
        if !self.initial_evaluated {
            self.initial_evaluated = true;
            if !self.evaluate(0.0)? {
                return Ok(self.diverge());
            }
        }
        while self.state.epoch < self.exp.train.epochs {
            let lr = self.schedule.lr_at(self.state.epoch);
            match self.train_epoch(lr, commands)? {
                Some(Interrupt::Stop) => {
                    self.save_checkpoint("latest")?;
                    self.metrics.sync()?;
                    self.events
                        .log("stopped; the checkpoint holds the last completed batch");
                    return Ok(Outcome::Stopped);
                }
                Some(Interrupt::Diverged) => return Ok(self.diverge()),
                None => {}
            }
            self.finish_epoch(lr)?;
            if self.diverged {
                return Ok(self.diverge());
            }
        }
        self.save_checkpoint("final")?;
        Ok(Outcome::Completed)
    }

    fn diverge(&mut self) -> Outcome {
        self.diverged = true;
        let _ = self.metrics.sync();
        let kept = if self.checkpoint_written {
            "the last finite checkpoint is kept"
        } else {
            "no checkpoint had been written yet"
        };
        self.events.log(format!(
            "diverged at epoch {} step {}: the loss is not finite; {kept}",
            self.state.epoch + 1,
            self.state.step
        ));
        Outcome::Diverged {
            epoch: self.state.epoch,
            step: self.state.step,
        }
    }

    fn train_epoch(
        &mut self,
        lr: f64,
        commands: &Receiver<Command>,
    ) -> anyhow::Result<Option<Interrupt>> {
        let epoch = self.state.epoch;
        let seed = self.exp.seed;
        let n = self.data.train.len;
        let bs = self.exp.train.batch_size as i64;
        let batches = self.batches_per_epoch();
        let device = self.sgd.flat().device();
        let order = rng::permutation(n, &mut rng::stream(seed, Purpose::Shuffle, &[epoch as u64]));
        let order = Tensor::from_slice(&order).to_device(device);
        let objective = self.sgd.objective();
        let swa_every_steps = self.exp.swa.every_steps.filter(|_| self.swa.is_some());
        let swa_active = epoch + 1 >= self.exp.swa.start_epoch.unwrap_or(u32::MAX);
        let mut last_report = Instant::now();
        let epoch_start = Instant::now();
        let mut epoch_samples = 0usize;

        for b in self.state.batch..batches {
            if self.fault_stop_step == Some(self.state.step) {
                self.fault_stop_step = None;
                self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if let Some(interrupt) = self.handle_commands(commands)? {
                return Ok(Some(interrupt));
            }
            let start = b as i64 * bs;
            let len = bs.min(n as i64 - start);
            if self.fault_panic_step == Some(self.state.step) {
                panic!(
                    "injected fault: panic at step {} (VALLEYS_FAULT)",
                    self.state.step
                );
            }
            // Dropout draws from libtorch's generator: seeding it per batch makes any position
            // of the run reproducible, which exact resuming needs.
            tch::manual_seed(rng::torch_seed(seed, epoch, b));
            let mut aug = rng::stream(seed, Purpose::Augment, &[epoch as u64, b as u64]);
            let (x, y) = self
                .data
                .train_batch(&order.narrow(0, start, len), Some(&mut aug));
            let logits = self.sgd.forward(&x, Mode::Train);
            let (loss, correct) = objective.loss_and_correct(&logits, &y, Reduction::Mean);
            let grad = self.sgd.flat_grad(&loss);
            self.opt.step(self.sgd.flat(), &grad, lr);
            tch::no_grad(|| {
                self.running.loss_sum += loss.detach().to_kind(Kind::Double) * len as f64;
                self.running.correct += correct.to_kind(Kind::Double);
            });
            self.running.seen += len as u64;
            self.state.step += 1;
            self.state.batch = b + 1;
            epoch_samples += len as usize;

            if let (Some(k), Some(swa)) = (swa_every_steps, self.swa.as_mut())
                && swa_active
                && self.state.step.is_multiple_of(u64::from(k))
            {
                swa.add(&self.sgd);
            }
            if last_report.elapsed() >= PROGRESS_EVERY || b + 1 == batches {
                let (loss, acc, _, _) = self.running.read();
                if !loss.is_finite() {
                    return Ok(Some(Interrupt::Diverged));
                }
                let dt = epoch_start.elapsed().as_secs_f64();
                self.events.send(Event::Progress(Progress {
                    epoch: epoch + 1,
                    batch: b + 1,
                    batches_per_epoch: batches,
                    step: self.state.step,
                    lr,
                    samples_per_s: epoch_samples as f64 / dt.max(1e-9),
                    running_loss: loss,
                    running_acc: acc,
                    elapsed_s: self.elapsed(),
                }));
                last_report = Instant::now();
            }
        }
        Ok(None)
    }

    fn finish_epoch(&mut self, lr: f64) -> anyhow::Result<()> {
        let (loss, acc, _, _) = self.running.read();
        self.state.epoch += 1;
        self.state.batch = 0;
        let seen = self.running.seen as usize;
        self.running = Running::new(self.sgd.flat().device(), 0.0, 0.0, 0);
        if !loss.is_finite() {
            self.diverged = true;
            return Ok(());
        }
        self.record(Iterate::Sgd, Split::TrainRunning, lr, loss, acc, seen, None)?;

        let epoch = self.state.epoch;
        let s = &self.exp.swa;
        if let Some(swa) = self.swa.as_mut()
            && let Some(every) = s.every_epochs
            && epoch >= s.start_epoch.unwrap_or(u32::MAX)
            && (epoch - s.start_epoch.unwrap_or(0)).is_multiple_of(every)
        {
            swa.add(&self.sgd);
            let plural = if swa.n == 1 { "" } else { "s" };
            let n = swa.n;
            self.events.log(format!(
                "epoch {epoch}: SWA average of {n} snapshot{plural}"
            ));
        }
        let last = epoch == self.exp.train.epochs;
        if (epoch.is_multiple_of(self.exp.eval.every_epochs) || last) && !self.evaluate(lr)? {
            self.diverged = true;
            return Ok(());
        }
        if epoch.is_multiple_of(self.exp.checkpoint.every_epochs) || last {
            self.save_checkpoint("latest")?;
        }
        let keep = self.exp.checkpoint.keep_every_epochs;
        if keep > 0 && epoch.is_multiple_of(keep) {
            self.save_checkpoint(&format!("epoch-{epoch:04}"))?;
        }
        self.metrics.sync()?;
        Ok(())
    }

    /// Evaluates the SGD iterate and, if it holds snapshots, the SWA average (after
    /// recomputing its BN statistics). False when a loss is not finite: the run diverged
    /// (e.g. its BN statistics did), however finite its training loss.
    fn evaluate(&mut self, lr: f64) -> anyhow::Result<bool> {
        let batch = self.eval_batch();
        let mut finite = true;
        for (split, e) in evaluate_splits(&self.sgd, &self.data, batch) {
            finite &= e.loss.is_finite();
            self.record_eval(Iterate::Sgd, split, lr, e, None)?;
        }
        let Some(swa) = self.swa.as_mut().filter(|s| s.n > 0) else {
            return Ok(finite);
        };
        if !swa.bn_is_fresh() {
            let bn_batch = self.exp.train.batch_size as i64;
            let (subset, seed) = (self.exp.swa.bn_subset, self.exp.seed);
            eval::recompute_bn(
                &swa.model,
                &self.data,
                bn_batch,
                subset,
                seed,
                self.state.step,
            );
            swa.mark_bn_fresh();
        }
        let n = swa.n;
        let fresh = evaluate_splits(&swa.model, &self.data, batch);
        let stale = (self.exp.swa.stale_bn && self.sgd.has_bn()).then(|| {
            // The averaged weights with the statistics they would have without recomputation:
            // the live iterate's (what AveragedModel does without use_buffers).
            self.scratch.copy_from(&self.sgd);
            tch::no_grad(|| {
                self.scratch.flat().shallow_clone().copy_(swa.model.flat());
            });
            evaluate_splits(&self.scratch, &self.data, batch)
        });
        for (split, e) in fresh {
            finite &= e.loss.is_finite();
            self.record_eval(Iterate::Swa, split, lr, e, Some(n))?;
        }
        // The stale-BN variant is an ablation: its losses may be anything.
        for (split, e) in stale.into_iter().flatten() {
            self.record_eval(Iterate::SwaStale, split, lr, e, Some(n))?;
        }
        Ok(finite)
    }

    fn record_eval(
        &mut self,
        iterate: Iterate,
        split: Split,
        lr: f64,
        e: Evaluation,
        swa_n: Option<u64>,
    ) -> anyhow::Result<()> {
        self.record(iterate, split, lr, e.loss, e.acc, e.samples, swa_n)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        iterate: Iterate,
        split: Split,
        lr: f64,
        loss: f64,
        acc: f64,
        samples: usize,
        swa_n: Option<u64>,
    ) -> anyhow::Result<()> {
        let row = MetricRow {
            epoch: self.state.epoch,
            step: self.state.step,
            iterate,
            split,
            loss,
            acc,
            lr,
            elapsed_s: self.elapsed(),
            samples,
            swa_n,
        };
        self.metrics.append(&row)?;
        self.events.send(Event::Metric(row));
        Ok(())
    }

    /// Writes checkpoints/<name>.safetensors, unless the weights are no longer finite.
    pub fn save_checkpoint(&mut self, name: &str) -> anyhow::Result<()> {
        if self.diverged || !self.sgd.is_finite() {
            self.events
                .log("checkpoint skipped: the weights are not finite");
            return Ok(());
        }
        let (_, _, loss_sum, correct) = self.running.read();
        let state = TrainingState {
            swa_n: self.swa.as_ref().map_or(0, |s| s.n),
            swa_bn_fresh: self.swa.as_ref().is_some_and(|s| s.bn_is_fresh()),
            elapsed_s: self.elapsed(),
            running_loss_sum: loss_sum,
            running_correct: correct,
            running_seen: self.running.seen,
            ..self.state.clone()
        };
        let path: PathBuf = self
            .run
            .checkpoints_dir()
            .join(format!("{name}.safetensors"));
        let swa = self.swa.as_ref().filter(|s| s.n > 0).map(|s| &s.model);
        checkpoint::save(&path, &self.sgd, swa, self.opt.momentum_buffer(), &state)?;
        self.checkpoint_written = true;
        self.events.send(Event::CheckpointWritten {
            path,
            epoch: state.epoch,
            step: state.step,
        });
        Ok(())
    }
}

/// The step of a `VALLEYS_FAULT=<kind>N` fault injection, if one of that kind is set.
fn fault(kind: &str) -> Option<u64> {
    std::env::var("VALLEYS_FAULT")
        .ok()
        .and_then(|f| f.strip_prefix(kind)?.parse().ok())
}

/// Optimiser steps per epoch over `n` samples. With BN over samples alone (`bn`), a last batch of a single sample is
/// left out (as PyTorch's `drop_last` would): its batch variance is 0 and the unbiased
/// running variance 0/0, which would poison the BN statistics with NaN.
pub fn batches_per_epoch(n: usize, batch_size: usize, bn: bool) -> u32 {
    let batches = n.div_ceil(batch_size);
    let drop_single = bn && batch_size > 1 && n % batch_size == 1;
    (batches - usize::from(drop_single)) as u32
}

/// Train (the fixed evaluation subset) and test evaluations of `model`.
fn evaluate_splits(model: &Model, data: &Dataset, batch: i64) -> [(Split, Evaluation); 2] {
    [
        (
            Split::Train,
            eval::evaluate(model, data, &data.train_eval, batch),
        ),
        (Split::Test, eval::evaluate(model, data, &data.test, batch)),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_last_batch_of_one_sample_is_dropped_only_under_batch_norm_over_samples() {
        assert_eq!(super::batches_per_epoch(257, 64, true), 4);
        assert_eq!(super::batches_per_epoch(257, 64, false), 5);
        assert_eq!(super::batches_per_epoch(258, 64, true), 5);
        assert_eq!(super::batches_per_epoch(256, 64, true), 4);
        assert_eq!(super::batches_per_epoch(5, 1, false), 5);
    }
}
