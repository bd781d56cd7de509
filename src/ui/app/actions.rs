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
            Action::OpenSelected | Action::ToggleGroups | Action::ToggleGroupIterate => None,
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

    /// The charts, views, cursors, the log and the selected probe or plane.
    fn view_action(&mut self, action: Action) {
        match action {
            Action::ToggleLogScale if self.view == View::Planes => {
                self.planes.log = !self.planes.log
            }
            Action::ToggleLogScale if self.view == View::Curvature => {
                self.curvature.linear = !self.curvature.linear
            }
            Action::ToggleLogScale => self.chart.log_y = !self.chart.log_y,
            Action::ToggleSmoothing => {
                let steps = crate::ui::chart::SMOOTHING_STEPS;
                let i = steps
                    .iter()
                    .position(|&w| w == self.chart.smooth)
                    .unwrap_or(0);
                self.chart.smooth = steps[(i + 1) % steps.len()];
            }
            Action::ToggleOutliers => self.chart.clip_outliers = !self.chart.clip_outliers,
            Action::TogglePerStep => self.chart.per_step = !self.chart.per_step,
            Action::CursorLeft if self.view == View::Planes => self.move_plane_cursor(-1, 0),
            Action::CursorRight if self.view == View::Planes => self.move_plane_cursor(1, 0),
            Action::CursorUp => self.move_plane_cursor(0, 1),
            Action::CursorDown => self.move_plane_cursor(0, -1),
            Action::CursorLeft => self.move_cursor(-1),
            Action::CursorRight => self.move_cursor(1),
            Action::CyclePlaneShow => {
                self.planes.show = match self.planes.show {
                    PlaneValue::Test => PlaneValue::Train,
                    PlaneValue::Train => PlaneValue::Gap,
                    PlaneValue::Gap => PlaneValue::Test,
                }
            }
            Action::HideCursor => self.chart.cursor = None,
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
                    Quantity::Accuracy => Quantity::LearningRate,
                    // λ_max joins the cycle once the run tracks it.
                    Quantity::LearningRate if !self.curvature.track.is_empty() => {
                        Quantity::Curvature
                    }
                    Quantity::LearningRate | Quantity::Curvature => Quantity::Loss,
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
            Action::SelectUp | Action::SelectDown if self.view == View::Planes => {
                let last = self.planes.results.len().saturating_sub(1);
                self.planes.selected = if action == Action::SelectUp {
                    self.planes.selected.saturating_sub(1)
                } else {
                    (self.planes.selected + 1).min(last)
                };
            }
            Action::SelectUp | Action::SelectDown if self.view == View::Curvature => {
                let last = self.curvature.results.len().saturating_sub(1);
                self.curvature.selected = if action == Action::SelectUp {
                    self.curvature.selected.saturating_sub(1)
                } else {
                    (self.curvature.selected + 1).min(last)
                };
            }
            Action::SelectUp => self.probes.selected = self.probes.selected.saturating_sub(1),
            Action::SelectDown => {
                let last = self.probes.results.len().saturating_sub(1);
                self.probes.selected = (self.probes.selected + 1).min(last);
            }
            _ => {}
        }
    }

    /// Moves the value cursor to the previous (`-1`) or next (`+1`) x that has a measurement
    /// on the chart; the first press puts it on the newest.
    fn move_cursor(&mut self, by: i32) {
        let mut xs: Vec<f64> = crate::ui::curves::curves(self)
            .iter()
            .flat_map(|s| s.measured.iter().map(|p| p.0))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let Some(&last) = xs.last() else {
            return;
        };
        self.chart.cursor = Some(match self.chart.cursor {
            None => last,
            Some(at) => {
                let i = xs.partition_point(|&x| x < at - 1e-9);
                let i = if by < 0 {
                    i.saturating_sub(1)
                } else {
                    (i + 1).min(xs.len() - 1)
                };
                xs[i]
            }
        });
    }

    /// The grid of the plane shown (the running one, else the selected result): its columns
    /// and rows, and the grid position of its centre.
    pub fn plane_grid(&self) -> Option<(usize, usize, (usize, usize))> {
        let (xs, ys) = match (
            &self.planes.live,
            self.planes.results.get(self.planes.selected),
        ) {
            (Some(live), _) => (&live.header.xs, &live.header.ys),
            (None, Some(r)) => (&r.xs, &r.ys),
            (None, None) => return None,
        };
        let nearest_zero = |v: &[f64]| {
            (0..v.len())
                .min_by(|&a, &b| v[a].abs().total_cmp(&v[b].abs()))
                .unwrap_or(0)
        };
        Some((xs.len(), ys.len(), (nearest_zero(xs), nearest_zero(ys))))
    }

    /// Moves the plane cursor by `dx` columns and `dy` rows (up is larger y), within the grid;
    /// it starts on the centre.
    fn move_plane_cursor(&mut self, dx: isize, dy: isize) {
        let Some((nx, ny, centre)) = self.plane_grid() else {
            return;
        };
        let (i, j) = self.planes.cursor.unwrap_or(centre);
        let clamp =
            |v: usize, d: isize, n: usize| (v as isize + d).clamp(0, n as isize - 1) as usize;
        self.planes.cursor = Some((clamp(i.min(nx - 1), dx, nx), clamp(j.min(ny - 1), dy, ny)));
    }

    /// Records a job sent to the worker and says at once whether it runs or waits.
    fn ask(&mut self, kind: JobKind, label: String) {
        let probes_total = match kind {
            JobKind::Probe => Some(1),
            JobKind::Batch { directions } => Some(directions * self.centres()),
            JobKind::Ablation(AblationKind::Groups | AblationKind::BnModes) => Some(3),
            JobKind::Ablation(AblationKind::Summary) => None,
            JobKind::Plane | JobKind::Curvature => Some(1),
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
