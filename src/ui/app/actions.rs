//! What the user's intents (keys, mapped by the keymap) do to the dashboard's state, and the
//! commands they send to the worker.

use super::*;

impl App {
    /// Applies a user intent; returns the command for the worker, if one is due.
    pub fn update(&mut self, action: Action) -> Option<Command> {
        match action {
            Action::Help => self.overlay = Some(Overlay::Help),
            Action::CloseOverlay => self.overlay = None,
            Action::Quit if self.controllable && self.state.is_live() => {
                self.overlay = Some(Overlay::ConfirmQuit);
            }
            Action::Quit => self.should_quit = true,
            Action::ConfirmQuit | Action::ForceQuit => {
                self.overlay = None;
                if self.controllable && self.state.is_live() {
                    self.quitting = true;
                    self.state = RunState::Stopping;
                    self.log("stopping: writing a checkpoint");
                    return Some(Command::Stop);
                }
                self.should_quit = true;
            }
            Action::TogglePause => return self.toggle_pause(),
            Action::Checkpoint if self.controllable && self.state.is_live() => {
                self.log("checkpoint requested");
                return Some(Command::Checkpoint);
            }
            Action::Checkpoint => self.log("no training is running here to checkpoint"),
            Action::ToggleLogScale => self.chart.log_y = !self.chart.log_y,
            Action::ToggleSmoothing => self.chart.smooth = !self.chart.smooth,
            Action::CycleSplits => {
                self.chart.splits = match self.chart.splits {
                    SplitFilter::Both => SplitFilter::TrainOnly,
                    SplitFilter::TrainOnly => SplitFilter::TestOnly,
                    SplitFilter::TestOnly => SplitFilter::Both,
                }
            }
            Action::ToggleQuantity => {
                self.chart.quantity = match self.chart.quantity {
                    Quantity::Loss => Quantity::Accuracy,
                    Quantity::Accuracy => Quantity::Loss,
                }
            }
            Action::ToggleXAxis => {
                self.chart.x = match self.chart.x {
                    XAxis::Epoch => XAxis::Step,
                    XAxis::Step => XAxis::Epoch,
                }
            }
            Action::ZoomIn => {
                let shown = self
                    .chart
                    .window
                    .unwrap_or_else(|| self.last_epoch().max(2));
                self.chart.window = Some((shown / 2).max(2));
            }
            Action::ZoomOut => {
                self.chart.window = match self.chart.window {
                    Some(w) if w * 2 < self.last_epoch() => Some(w * 2),
                    _ => None,
                }
            }
            Action::ScrollUp => {
                self.log_scroll = (self.log_scroll + 1).min(self.log.len().saturating_sub(1));
            }
            Action::ScrollDown => self.log_scroll = self.log_scroll.saturating_sub(1),
            Action::NextView => {
                let i = View::ALL.iter().position(|v| *v == self.view).unwrap_or(0);
                self.view = View::ALL[(i + 1) % View::ALL.len()];
            }
            Action::ShowView(i) => {
                if let Some(v) = View::ALL.get(i) {
                    self.view = *v;
                }
            }
            Action::OpenProbeForm if self.controllable => self.overlay = Some(Overlay::ProbeForm),
            Action::OpenProbeForm => {
                self.log("probes need the live run; use `valleys probe RUN_DIR` on a watched one");
            }
            Action::FormUp => self.form.step(-1),
            Action::FormDown => self.form.step(1),
            Action::FormPrev => self.form.cycle(-1),
            Action::FormNext => self.form.cycle(1),
            Action::FormInput(c) => self.form.input(c),
            Action::FormBackspace => self.form.backspace(),
            Action::FireProbe => {
                if let Ok(request) = self.form.request() {
                    self.overlay = None;
                    self.view = View::Probes;
                    return Some(Command::Probe(Box::new(request)));
                }
            }
            Action::CancelProbe if self.probes.live.is_some() => return Some(Command::CancelProbe),
            Action::CancelProbe => {}
            Action::ToggleShiftCurve => self.probes.shift_curve = !self.probes.shift_curve,
            // The event loop owns the screen and does the export.
            Action::Export => {}
            Action::OpenAblationMenu if self.controllable => {
                self.overlay = Some(Overlay::AblationMenu)
            }
            Action::OpenAblationMenu => {
                self.log(
                    "ablations need the live run; use `valleys ablate RUN_DIR` on a watched one",
                );
            }
            Action::AblateGroups | Action::AblateBnModes | Action::AblateSummary => {
                self.overlay = None;
                self.view = View::Ablations;
                let kind = match action {
                    Action::AblateGroups => AblationKind::Groups,
                    Action::AblateBnModes => AblationKind::BnModes,
                    _ => AblationKind::Summary,
                };
                return Some(Command::Ablate {
                    kind,
                    directions: None,
                });
            }
            Action::StartTwin => {
                self.overlay = None;
                self.view = View::Ablations;
                return Some(Command::StartTwin);
            }
            Action::ToggleStaleBn => {
                self.overlay = None;
                self.stale_bn = !self.stale_bn;
                return Some(Command::TrackStaleBn(self.stale_bn));
            }
            Action::SelectUp => self.probes.selected = self.probes.selected.saturating_sub(1),
            Action::SelectDown => {
                let last = self.probes.results.len().saturating_sub(1);
                self.probes.selected = (self.probes.selected + 1).min(last);
            }
        }
        None
    }

    fn toggle_pause(&mut self) -> Option<Command> {
        if !self.controllable {
            self.log("watching: this run is not controlled from here");
            return None;
        }
        match self.state {
            RunState::Running | RunState::Starting => Some(Command::Pause),
            RunState::Paused => Some(Command::Resume),
            _ => None,
        }
    }

    /// Asks to quit because the process was told to stop (SIGTERM, SIGHUP): the worker stops
    /// by itself; quit once it has.
    pub fn quit_when_finished(&mut self) {
        if self.state.is_live() {
            self.quitting = true;
            self.state = RunState::Stopping;
        } else {
            self.should_quit = true;
        }
    }
}
