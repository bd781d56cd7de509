//! What the engine does when told: commands between batches and after training, and the
//! no-BN twin an ablation trains against.

use super::EngineError;
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
    pub fn serve(&mut self, commands: &Receiver<Command>) -> Result<(), EngineError> {
        self.training_done = true;
        if self.twin.queued {
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
    ) -> Result<Option<Interrupt>, EngineError> {
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
            Command::Probe(request) => probing::Job::Probe(request),
            Command::Plane(spec) => probing::Job::Plane(spec),
            Command::Ablate { kind, directions } => probing::Job::Ablate { kind, directions },
            Command::Curvature(spec) => probing::Job::Curvature(spec),
            Command::Connect(request) => probing::Job::Connect(request),
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
    ) -> Result<Option<Interrupt>, EngineError> {
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
