//! What the user's intents (keys, mapped by the keymap) do to the dashboard's state, and the
//! commands they send to the worker.

use super::*;

impl App {
    /// Applies a user intent; returns the command for the worker, if one is due.
    pub fn update(&mut self, action: Action) -> Option<Command> {
        match action {
            Action::Help
            | Action::CloseOverlay
            | Action::Quit
            | Action::ConfirmQuit
            | Action::ForceQuit
            | Action::TogglePause
            | Action::Checkpoint => self.run_action(action),
            Action::OpenProbeForm
            | Action::OpenPlaneForm
            | Action::FormUp
            | Action::FormDown
            | Action::FormPrev
            | Action::FormNext
            | Action::FormInput(_)
            | Action::FormBackspace
            | Action::FirePlane
            | Action::OpenCurvatureForm
            | Action::FireCurvature
            | Action::OpenConnectForm
            | Action::FireConnect
            | Action::FireProbe => self.form_action(action),
            Action::CancelProbe
            | Action::ToggleShiftCurve
            | Action::OpenAblationMenu
            | Action::AblateGroups
            | Action::AblateBnModes
            | Action::AblateSummary
            | Action::StartTwin
            | Action::ToggleStaleBn => self.job_action(action),
            // The event loop owns the screen and does the export.
            Action::Export => None,
            // Keys of the sweep table, which has a loop of its own (ui::sweep).
            Action::OpenSelected
            | Action::ToggleGroups
            | Action::ToggleRunCurves
            | Action::ToggleGroupIterate => None,
            // Charts, views, cursors and selections: nothing for the worker.
            _ => {
                self.view_action(action);
                None
            }
        }
    }

    /// Help, quitting, pausing and checkpoints.
    fn run_action(&mut self, action: Action) -> Option<Command> {
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
            _ => {}
        }
        None
    }

    /// The probe and plane forms: opening, editing and firing them.
    fn form_action(&mut self, action: Action) -> Option<Command> {
        match action {
            Action::OpenProbeForm if self.controllable => self.overlay = Some(Overlay::ProbeForm),
            Action::OpenProbeForm => {
                self.log("probes need the live run; use `valleys probe RUN_DIR` on a watched one");
            }
            Action::OpenPlaneForm if self.controllable => self.overlay = Some(Overlay::PlaneForm),
            Action::OpenPlaneForm => {
                self.log("planes need the live run; use `valleys plane RUN_DIR` on a watched one");
            }
            Action::OpenCurvatureForm if self.controllable => {
                self.overlay = Some(Overlay::CurvatureForm)
            }
            Action::OpenCurvatureForm => {
                self.log(
                    "curvature jobs need the live run; use `valleys curvature RUN_DIR` on a watched one",
                );
            }
            Action::OpenConnectForm if self.controllable => {
                self.overlay = Some(Overlay::ConnectForm)
            }
            Action::OpenConnectForm => {
                self.log(
                    "connections need the live run; use `valleys connect RUN:swa RUN:sgd` on a watched one",
                );
            }
            Action::FormUp | Action::FormDown | Action::FormPrev | Action::FormNext
                if self.overlay == Some(Overlay::ConnectForm) =>
            {
                match action {
                    Action::FormUp => self.connect_form.step(-1),
                    Action::FormDown => self.connect_form.step(1),
                    Action::FormPrev => self.connect_form.cycle(-1),
                    _ => self.connect_form.cycle(1),
                }
            }
            Action::FormInput(c) if self.overlay == Some(Overlay::ConnectForm) => {
                self.connect_form.input(c)
            }
            Action::FormBackspace if self.overlay == Some(Overlay::ConnectForm) => {
                self.connect_form.backspace()
            }
            Action::FormUp | Action::FormDown | Action::FormPrev | Action::FormNext
                if self.overlay == Some(Overlay::CurvatureForm) =>
            {
                match action {
                    Action::FormUp => self.curvature_form.step(-1),
                    Action::FormDown => self.curvature_form.step(1),
                    Action::FormPrev => self.curvature_form.cycle(-1),
                    _ => self.curvature_form.cycle(1),
                }
            }
            Action::FormInput(c) if self.overlay == Some(Overlay::CurvatureForm) => {
                self.curvature_form.input(c)
            }
            Action::FormBackspace if self.overlay == Some(Overlay::CurvatureForm) => {
                self.curvature_form.backspace()
            }
            Action::FormUp | Action::FormDown | Action::FormPrev | Action::FormNext
                if self.overlay == Some(Overlay::PlaneForm) =>
            {
                match action {
                    Action::FormUp => self.plane_form.step(-1),
                    Action::FormDown => self.plane_form.step(1),
                    Action::FormPrev => self.plane_form.cycle(-1),
                    _ => self.plane_form.cycle(1),
                }
            }
            Action::FormInput(c) if self.overlay == Some(Overlay::PlaneForm) => {
                self.plane_form.input(c)
            }
            Action::FormBackspace if self.overlay == Some(Overlay::PlaneForm) => {
                self.plane_form.backspace()
            }
            Action::FormUp => self.form.step(-1),
            Action::FormDown => self.form.step(1),
            Action::FormPrev => self.form.cycle(-1),
            Action::FormNext => self.form.cycle(1),
            Action::FormInput(c) => self.form.input(c),
            Action::FormBackspace => self.form.backspace(),
            Action::FirePlane => {
                if let Ok(spec) = self.plane_form.spec() {
                    self.overlay = None;
                    self.view = View::Planes;
                    let (nx, ny) = spec.points;
                    self.ask(
                        JobKind::Plane,
                        format!("plane {} {nx}x{ny}", spec.kind.as_str()),
                    );
                    return Some(Command::Plane(Box::new(spec)));
                }
            }
            Action::FireConnect => {
                if let Ok(request) = self.connect_form.request() {
                    self.overlay = None;
                    self.view = View::Probes;
                    self.ask(JobKind::Connect, format!("connect {}", request.describe()));
                    return Some(Command::Connect(Box::new(request)));
                }
            }
            Action::FireCurvature => {
                if let Ok(spec) = self.curvature_form.spec() {
                    self.overlay = None;
                    self.view = View::Curvature;
                    self.ask(
                        JobKind::Curvature,
                        format!("curvature at {}", spec.centre.as_str()),
                    );
                    return Some(Command::Curvature(Box::new(spec)));
                }
            }
            Action::FireProbe => {
                if let Ok(request) = self.form.request() {
                    self.overlay = None;
                    self.view = View::Probes;
                    let (kind, label) = match request.directions {
                        Some(n) => (
                            JobKind::Batch { directions: n },
                            format!("batch of {n} {}", request.spec.direction.as_str()),
                        ),
                        None => (
                            JobKind::Probe,
                            format!("probe {}", request.spec.direction.as_str()),
                        ),
                    };
                    self.ask(kind, label);
                    return Some(Command::Probe(Box::new(request)));
                }
            }
            _ => {}
        }
        None
    }

    /// Jobs on the live weights: cancelling them, ablations and the twin.
    fn job_action(&mut self, action: Action) -> Option<Command> {
        match action {
            Action::CancelProbe
                if self.jobs.running.is_some()
                    || self.probes.live.is_some()
                    || self.planes.live.is_some() =>
            {
                // The worker stops between points: say at once that Esc was heard.
                if let Some(job) = self.jobs.running.as_mut()
                    && !job.cancelling
                {
                    job.cancelling = true;
                    let label = job.label.clone();
                    self.log(format!(
                        "cancelling {label}: it stops after the point being measured"
                    ));
                }
                return Some(Command::CancelProbe);
            }
            Action::CancelProbe => {}
            Action::ToggleShiftCurve => self.probes.shift_curve = !self.probes.shift_curve,
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
                self.ask(
                    JobKind::Ablation(kind),
                    format!("ablation {}", kind.as_str()),
                );
                return Some(Command::Ablate {
                    kind,
                    directions: None,
                });
            }
            Action::StartTwin => {
                self.overlay = None;
                self.view = View::Ablations;
                self.log(if self.state.is_live() && !self.runs_on_gpu() {
                    "no-BN twin asked for: it trains when this run ends (one CPU job at a time)"
                } else {
                    "no-BN twin asked for: starting it"
                });
                return Some(Command::StartTwin);
            }
            Action::ToggleStaleBn => {
                self.overlay = None;
                self.stale_bn = !self.stale_bn;
                self.log(if self.stale_bn {
                    "stale-BN SWA series asked for: from the next evaluation on"
                } else {
                    "stale-BN SWA series off from the next evaluation on"
                });
                return Some(Command::TrackStaleBn(self.stale_bn));
            }
            _ => {}
        }
        None
    }

    /// Records a job sent to the worker and says at once whether it runs or waits.
    fn ask(&mut self, kind: JobKind, label: String) {
        let probes_total = match kind {
            JobKind::Probe => Some(1),
            JobKind::Batch { directions } => Some(directions * self.centres()),
            JobKind::Ablation(AblationKind::Groups | AblationKind::BnModes) => Some(3),
            JobKind::Ablation(AblationKind::Summary) => None,
            JobKind::Plane | JobKind::Curvature | JobKind::Connect => Some(1),
        };
        let mut job = Job {
            kind,
            label,
            started_s: None,
            probes_done: 0,
            probes_total,
            cancelling: false,
        };
        match &self.jobs.running {
            Some(running) => {
                let mut after = running.label.clone();
                if let Some(last) = self.jobs.queued.back() {
                    after = last.label.clone();
                }
                self.log(format!("queued: {}, after {after}", job.label));
                self.jobs.queued.push_back(job);
            }
            None => {
                job.started_s = Some(self.clock_s);
                self.log(format!("started: {}", job.label));
                self.jobs.running = Some(job);
            }
        }
    }

    /// Centres a batch of random directions goes through: SGD, and SWA once it averages.
    fn centres(&self) -> usize {
        if self.latest.keys().any(|(it, _)| *it == Iterate::Swa) {
            2
        } else {
            1
        }
    }

    fn runs_on_gpu(&self) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| i.device.starts_with("cuda"))
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
