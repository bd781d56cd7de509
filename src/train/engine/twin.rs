//! The no-BN twin as the engine sees it: when to start it and what to train. How it runs
//! (a worker beside this run, or this thread once training is done) is the launcher's.

use super::EngineError;
use super::{Engine, EventSink};
use crate::config::Experiment;
use crate::data::dataset::Dataset;
use crate::rundir::RunDir;
use crate::runtime::DeviceChoice;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

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

/// The engine's twin, from launcher to finish.
#[derive(Default)]
pub(super) struct Twin {
    /// How to train it (given by the worker, which owns threads).
    pub launcher: Option<Box<dyn TwinLauncher>>,
    /// Training beside this run, kept alive until the run ends.
    pub running: Option<Box<dyn std::any::Any>>,
    /// Asked for while this run trains on a CPU: start it afterwards.
    pub queued: bool,
    /// Trained on this thread (CPU) and done.
    pub done: bool,
}

impl Engine {
    /// Lets the engine train a no-BN twin when asked.
    pub fn set_twin_launcher(&mut self, launcher: Box<dyn TwinLauncher>) {
        self.twin.launcher = Some(launcher);
    }

    /// Trains the no-BN twin in RUN_DIR/twin-nobn, reporting through this run's events. On a
    /// GPU it starts now, in a worker of its own beside this run. On a CPU, which one run
    /// already fills, it waits for this run to end and then trains on this thread (a second
    /// thread of libtorch work would slow both); commands wait until it is done, the stop flag
    /// still stops it.
    pub(super) fn start_twin(&mut self) -> Result<(), EngineError> {
        if self.twin.running.is_some() || self.twin.done {
            self.events
                .log("the no-BN twin has been trained already (or is training)");
            return Ok(());
        }
        if !self.sgd.has_bn() {
            self.events
                .log("this run has no BN: it is its own no-BN twin");
            return Ok(());
        }
        let gpu = self.device.device.is_cuda();
        if !self.training_done && !gpu {
            self.twin.queued = true;
            self.events
                .log("the no-BN twin will start when this run ends (one CPU run at a time)");
            return Ok(());
        }
        if let Some(why) = crate::ablation::twin::unavailable(&self.exp) {
            self.events.log(why);
            self.twin.done = true;
            return Ok(());
        }
        self.twin.queued = false;
        let Some(launcher) = self.twin.launcher.as_ref() else {
            self.events
                .log("this run cannot train a twin (no worker to run it)");
            return Ok(());
        };
        let twin = crate::ablation::twin::prepare(&self.run, &self.exp)?;
        self.events.log(format!(
            "training the no-BN twin in {}",
            twin.run_dir.root().display()
        ));
        let job = TwinJob {
            experiment: twin.experiment,
            device: self.device.clone(),
            data: self.data.shallow_clone(),
            run_dir: twin.run_dir,
            resume: twin.resume,
            stop: self.stop.clone(),
            events: self.events.for_twin(),
        };
        if gpu {
            // The twin's directory stays locked while it trains beside this run.
            let handle = launcher.spawn(job)?;
            self.twin.running = Some(Box::new((handle, twin.lock)));
        } else {
            launcher.run_here(job);
            self.twin.done = true;
        }
        Ok(())
    }
}
