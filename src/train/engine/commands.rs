//! What the engine does when told: commands between batches and after training, and the
//! no-BN twin an ablation trains against.

use super::{Engine, Interrupt};
use crate::probe::ProbeSpec;
use crate::protocol::{Command, Event};
use crate::train::probing;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

impl Engine {
    /// After training: answers probes, ablations and checkpoint requests until told to stop
    /// or until nobody can send commands any more.
    pub fn serve(&mut self, commands: &Receiver<Command>) -> anyhow::Result<()> {
        self.training_done = true;
        if self.twin_queued {
            self.start_twin()?;
        }
        let mut paused = false;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            match commands.recv_timeout(Duration::from_millis(100)) {
                Ok(command) => {
                    if self.obey(command, commands, &mut paused)?.is_some() {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Carries out one command; `Some` asks training to stop.
    fn obey(
        &mut self,
        command: Command,
        commands: &Receiver<Command>,
        paused: &mut bool,
    ) -> anyhow::Result<Option<Interrupt>> {
        let job = match command {
            Command::Stop => return Ok(Some(Interrupt::Stop)),
            Command::Pause | Command::Resume => {
                let pause = command == Command::Pause;
                if pause != *paused && !self.training_done {
                    *paused = pause;
                    self.events
                        .send(if pause { Event::Paused } else { Event::Resumed });
                }
                return Ok(None);
            }
            Command::CancelProbe => return Ok(None),
            Command::Checkpoint => {
                self.save_checkpoint("latest")?;
                return Ok(None);
            }
            Command::TrackStaleBn(on) => {
                self.exp.swa.stale_bn = on;
                let state = if on { "on" } else { "off" };
                self.events.log(format!(
                    "SWA with stale BN statistics (swa_stale): {state} from the next evaluation"
                ));
                return Ok(None);
            }
            Command::StartTwin => {
                self.start_twin()?;
                return Ok(None);
            }
            Command::Probe(request) => probing::Job::Probe(*request),
            Command::Ablate { kind, directions } => probing::Job::Ablate { kind, directions },
        };
        let deferred = probing::serve(self, job, commands, &self.stop);
        if deferred.checkpoint {
            self.save_checkpoint("latest")?;
        }
        if let Some(on) = deferred.stale_bn {
            self.exp.swa.stale_bn = on;
        }
        if deferred.start_twin {
            self.start_twin()?;
        }
        if let Some(pause) = deferred.pause
            && pause != *paused
            && !self.training_done
        {
            *paused = pause;
            self.events
                .send(if pause { Event::Paused } else { Event::Resumed });
        }
        Ok(deferred.stop.then_some(Interrupt::Stop))
    }

    /// Trains the no-BN twin in RUN_DIR/twin-nobn, reporting through this run's events. On a
    /// GPU it starts now, in a worker of its own beside this run. On a CPU, which one run
    /// already fills, it waits for this run to end and then trains on this thread (a second
    /// thread of libtorch work would slow both); commands wait until it is done, the stop flag
    /// still stops it.
    fn start_twin(&mut self) -> anyhow::Result<()> {
        if self.twin.is_some() || self.twin_done {
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
            self.twin_queued = true;
            self.events
                .log("the no-BN twin will start when this run ends (one CPU run at a time)");
            return Ok(());
        }
        self.twin_queued = false;
        let Some(launcher) = self.twin_launcher.as_ref() else {
            self.events
                .log("this run cannot train a twin (no worker to run it)");
            return Ok(());
        };
        let (experiment, run_dir, resume) = crate::ablation::twin::prepare(&self.run, &self.exp)?;
        self.events.log(format!(
            "training the no-BN twin in {}",
            run_dir.root().display()
        ));
        let job = super::TwinJob {
            experiment,
            device: self.device.clone(),
            data: self.data.shallow_clone(),
            run_dir,
            resume,
            stop: self.stop.clone(),
            events: self.events.for_twin(),
        };
        if gpu {
            self.twin = Some(launcher.spawn(job)?);
        } else {
            launcher.run_here(job);
            self.twin_done = true;
        }
        Ok(())
    }

    /// The settings ablation probes start from: the experiment's `ablation.probe`, else its
    /// `probe` section.
    pub fn ablation_probe(&self) -> ProbeSpec {
        self.exp
            .ablation
            .as_ref()
            .map_or_else(|| self.exp.probe.clone(), |a| a.probe.clone())
    }

    /// Random directions per arm of an ablation summary.
    pub fn ablation_directions(&self) -> usize {
        self.exp.ablation.as_ref().map_or(5, |a| a.directions)
    }

    /// Answers pending commands; blocks while paused.
    pub(super) fn handle_commands(
        &mut self,
        commands: &Receiver<Command>,
    ) -> anyhow::Result<Option<Interrupt>> {
        let mut paused = false;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(Some(Interrupt::Stop));
            }
            let command = if paused {
                match commands.recv_timeout(Duration::from_millis(100)) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => continue,
                    // Nobody can resume us any more: stop cleanly.
                    Err(RecvTimeoutError::Disconnected) => return Ok(Some(Interrupt::Stop)),
                }
            } else {
                commands.try_recv().ok()
            };
            let Some(command) = command else {
                return Ok(None);
            };
            if let Some(interrupt) = self.obey(command, commands, &mut paused)? {
                return Ok(Some(interrupt));
            }
        }
    }
}
