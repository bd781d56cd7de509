//! The training loop: SGD epochs, SWA snapshots, evaluations and checkpoints, answering
//! commands between batches and reporting everything as [`Event`]s and run-directory files.

use super::checkpoint::TrainingState;
use super::schedule::LrSchedule;
use super::sgd::Sgd;
use super::swa::SwaAverage;
use crate::config::Experiment;
use crate::data::dataset::Dataset;
use crate::data::rng::{self, Purpose};

use crate::model::{Mode, Model};
use crate::probe::runner::ProbeContext;
use crate::protocol::{Command, Event, Outcome, Progress};
use crate::rundir::{MetricsWriter, RunDir};
use crate::runtime::DeviceChoice;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use tch::{Kind, Reduction, Tensor};

mod checkpoints;
mod commands;
mod epoch;
mod evaluation;
mod events;
mod failure;
mod faults;
mod running;
mod tracking;
mod trajectory;
mod twin;

pub use events::EventSink;
use failure::Activity;
use faults::Faults;
use running::Running;
use twin::Twin;
pub use twin::{TwinJob, TwinLauncher};

/// Why the engine could not go on: the run directory or a checkpoint could not be written,
/// the model could not be built, or the twin's thread could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    RunDir(#[from] crate::rundir::RunDirError),
    #[error(transparent)]
    Checkpoint(#[from] super::checkpoint::CheckpointError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("cannot start the no-BN twin's thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error(transparent)]
    Trajectory(#[from] crate::trajectory::store::TrajectoryError),
}

/// Why training stopped early inside an epoch.
enum Interrupt {
    Stop,
    Diverged,
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
    /// Seconds of this process spent serving probes and ablations or paused: not training.
    waited_s: f64,
    /// Set once the weights are no longer finite; no checkpoint is written from then on.
    diverged: bool,
    faults: Faults,
    /// Said once the run starts (after the header), when it was resumed.
    resume_note: Option<String>,
    /// The evaluation before the first step is in metrics.jsonl (a run stopped before its
    /// first batch and resumed must not write it twice).
    initial_evaluated: bool,
    /// Whether a checkpoint has been written in this run directory (for what divergence keeps).
    checkpoint_written: bool,
    device: DeviceChoice,
    twin: Twin,
    /// Training has ended; only probes, ablations and checkpoints remain.
    training_done: bool,
    /// Where the run is, for the message of a failure.
    activity: Activity,
    /// A tracked curvature measurement failed: no more are tried in this run.
    curvature_tracking_failed: bool,
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
    ) -> Result<Self, EngineError> {
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
            twin: Twin::default(),
            training_done: false,
            activity: Activity::Evaluating { epoch: 0 },
            curvature_tracking_failed: false,
            scratch,
            opt,
            schedule: LrSchedule::from_experiment(&exp),
            running: Running::new(device, 0.0, 0.0, 0),
            state: TrainingState::default(),
            clock: Instant::now(),
            waited_s: 0.0,
            diverged: false,
            resume_note: None,
            initial_evaluated: false,
            checkpoint_written: false,
            faults: Faults::from_env(),
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
            bn_pass: crate::train::swa::bn_pass(&self.exp, self.state.step),
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
        // also spans the pixels, so a single image still has a variance. A TorchScript
        // module may have either (and PyTorch refuses a BatchNorm1d batch of one).
        let bn_over_samples = self.sgd.has_bn()
            && matches!(
                self.exp.model.arch,
                crate::config::Arch::Mlp | crate::config::Arch::Torchscript
            );
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

    /// Seconds of the run spent training and evaluating: the elapsed time without probes,
    /// ablations and pauses (of this process; a resumed run counts earlier ones as elapsed).
    fn training_seconds(&self) -> f64 {
        (self.elapsed() - self.waited_s).max(0.0)
    }

    /// Trains to the last epoch, or until stopped, diverged or failed. A model that fails
    /// (libtorch's errors are panics in tch) ends the run as [`Outcome::Failed`] with one line
    /// naming the model, the epoch and the batch; the worker goes on serving probes.
    pub fn run(&mut self, commands: &Receiver<Command>) -> Result<Outcome, EngineError> {
        match crate::error::catch_panic(|| self.train_to_end(commands)) {
            Ok(result) => result,
            Err(panic) => Ok(self.fail(&panic.0)),
        }
    }

    fn train_to_end(&mut self, commands: &Receiver<Command>) -> Result<Outcome, EngineError> {
        if let Some(note) = self.resume_note.take() {
            self.events.log(note);
        }
        if !self.initial_evaluated {
            self.initial_evaluated = true;
            self.activity = Activity::Evaluating { epoch: 0 };
            if !self.evaluate(0.0)? {
                return Ok(self.diverge());
            }
        }
        if self.state.step == 0 {
            self.keep_iterate(false)?;
        }
        // Before the first epoch, or the epoch end a resumed run stopped at.
        if self.state.batch == 0 {
            let lr = self.schedule.lr_at(self.state.epoch.saturating_sub(1));
            if !self.track_curvature(lr)? {
                self.save_checkpoint("latest")?;
                return self.stopped();
            }
        }
        while self.state.epoch < self.exp.train.epochs {
            let lr = self.schedule.lr_at(self.state.epoch);
            match self.train_epoch(lr, commands)? {
                Some(Interrupt::Stop) => {
                    self.save_checkpoint("latest")?;
                    return self.stopped();
                }
                Some(Interrupt::Diverged) => return Ok(self.diverge()),
                None => {}
            }
            self.activity = Activity::Evaluating {
                epoch: self.state.epoch + 1,
            };
            self.finish_epoch(lr)?;
            if self.diverged {
                return Ok(self.diverge());
            }
            if !self.track_curvature(lr)? {
                self.save_checkpoint("latest")?;
                return self.stopped();
            }
        }
        self.save_checkpoint("final")?;
        Ok(Outcome::Completed)
    }

    /// Training stopped on request after the latest checkpoint was written.
    fn stopped(&mut self) -> Result<Outcome, EngineError> {
        self.metrics.sync()?;
        self.events
            .log("stopped; the checkpoint holds the last completed batch");
        Ok(Outcome::Stopped)
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
    ) -> Result<Option<Interrupt>, EngineError> {
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
        let waited_before = self.waited_s;
        let mut epoch_samples = 0usize;
        // Sums at the last report, for the mean over the batches since (the per-step curve);
        // a resumed epoch starts from the checkpoint's.
        let (_, _, loss_at_start, correct_at_start) = self.running.read();
        let mut reported = (loss_at_start, correct_at_start, self.running.seen);

        for b in self.state.batch..batches {
            self.activity = Activity::Training {
                epoch,
                batch: b,
                batches,
            };
            self.faults.before_step(self.state.step, &self.stop);
            let asked = Instant::now();
            let interrupt = self.handle_commands(commands)?;
            self.waited_s += asked.elapsed().as_secs_f64();
            if let Some(interrupt) = interrupt {
                return Ok(Some(interrupt));
            }
            let start = b as i64 * bs;
            let len = bs.min(n as i64 - start);
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
                let (loss, acc, loss_sum, correct) = self.running.read();
                if !loss.is_finite() {
                    return Ok(Some(Interrupt::Diverged));
                }
                let window = (self.running.seen - reported.2).max(1) as f64;
                let (recent_loss, recent_acc) = (
                    (loss_sum - reported.0) / window,
                    (correct - reported.1) / window,
                );
                reported = (loss_sum, correct, self.running.seen);
                // Throughput of training alone: probes and pauses are not training.
                let dt = epoch_start.elapsed().as_secs_f64() - (self.waited_s - waited_before);
                self.events.send(Event::Progress(Progress {
                    epoch: epoch + 1,
                    batch: b + 1,
                    batches_per_epoch: batches,
                    step: self.state.step,
                    lr,
                    samples_per_s: epoch_samples as f64 / dt.max(1e-9),
                    running_loss: loss,
                    running_acc: acc,
                    recent_loss,
                    recent_acc,
                    elapsed_s: self.elapsed(),
                    training_s: self.training_seconds(),
                }));
                last_report = Instant::now();
            }
        }
        Ok(None)
    }
}

/// Optimiser steps per epoch over `n` samples. With BN over samples alone (`bn`), a last batch of a single sample is
/// left out (as PyTorch's `drop_last` would): its batch variance is 0 and the unbiased
/// running variance 0/0, which would poison the BN statistics with NaN.
pub fn batches_per_epoch(n: usize, batch_size: usize, bn: bool) -> u32 {
    let batches = n.div_ceil(batch_size);
    let drop_single = bn && batch_size > 1 && n % batch_size == 1;
    (batches - usize::from(drop_single)) as u32
}

#[cfg(test)]
mod tests;
