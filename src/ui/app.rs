//! The dashboard's state and the only code that changes it: worker [`Event`]s come in through
//! [`App::handle_event`], user intents through [`App::update`], which returns the command to
//! send, if any. No terminal, no I/O: tested directly.

use super::form::ProbeForm;
use super::keymap::{self, Action, Binding};
use super::series::Series;
use super::theme::Theme;
use crate::ablation::{AblationKind, AblationResult};
use crate::probe::summary::BatchSummary;
use crate::probe::{ProbePoint, ProbeResult, ProbeSpec};
use crate::protocol::{Command, Event, Iterate, MetricRow, Outcome, Progress, RunInfo, Split};
use std::collections::{HashMap, VecDeque};

/// Where the run stands, as the header shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Starting,
    Running,
    Paused,
    /// A stop was requested; waiting for the worker's checkpoint.
    Stopping,
    Finished,
    Stopped,
    Diverged,
    Failed(String),
    /// `valleys watch`: following a run directory written by another process.
    Watching,
}

impl RunState {
    /// The label in the header.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Stopping => "STOPPING",
            Self::Finished => "FINISHED",
            Self::Stopped => "STOPPED",
            Self::Diverged => "DIVERGED",
            Self::Failed(_) => "ERROR",
            Self::Watching => "WATCHING",
        }
    }

    /// True while the worker is training (a quit must ask first).
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Starting | Self::Running | Self::Paused)
    }
}

/// Which splits the chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitFilter {
    Both,
    TrainOnly,
    TestOnly,
}

impl SplitFilter {
    pub fn shows(self, split: Split) -> bool {
        match self {
            Self::Both => true,
            Self::TrainOnly => split == Split::Train,
            Self::TestOnly => split == Split::Test,
        }
    }
}

/// What the chart plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    Loss,
    Accuracy,
}

/// The chart's x axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    Epoch,
    Step,
}

/// Chart settings the keys toggle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartSettings {
    pub log_y: bool,
    pub smooth: bool,
    pub splits: SplitFilter,
    pub quantity: Quantity,
    pub x: XAxis,
    /// Show only the last this-many epochs (None: all).
    pub window: Option<u32>,
}

/// An overlay drawn over the current view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    ConfirmQuit,
    ProbeForm,
    AblationMenu,
}

/// The views Tab cycles through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Dashboard,
    Probes,
    Ablations,
}

impl View {
    pub const ALL: [View; 3] = [View::Dashboard, View::Probes, View::Ablations];

    /// The keys of this view.
    pub fn bindings(self) -> &'static [Binding] {
        match self {
            View::Dashboard => keymap::DASHBOARD,
            View::Probes => keymap::PROBES,
            View::Ablations => keymap::ABLATIONS,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Dashboard => "dashboard",
            View::Probes => "probes",
            View::Ablations => "ablations",
        }
    }
}

/// A probe whose points are still arriving.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveProbe {
    pub id: String,
    pub summary: String,
    pub grid: Vec<f64>,
    pub points: Vec<Option<ProbePoint>>,
}

impl LiveProbe {
    /// Points received so far.
    pub fn done(&self) -> usize {
        self.points.iter().filter(|p| p.is_some()).count()
    }
}

/// Everything the probe view shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeBoard {
    pub live: Option<LiveProbe>,
    pub results: Vec<ProbeResult>,
    pub batches: Vec<BatchSummary>,
    /// Index into `results` of the probe shown (the newest unless moved).
    pub selected: usize,
    /// Show the random-shift curve instead of the loss curves.
    pub shift_curve: bool,
    /// Why the last probe or ablation ended without a result (until the next one starts).
    pub failure: Option<String>,
}

/// Finished probes kept for the view; older ones stay on disk.
const PROBES_KEPT: usize = 200;

/// One evaluation, as stored for the chart: x by epoch and by step, loss and accuracy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub epoch: f64,
    pub step: f64,
    pub loss: f64,
    pub acc: f64,
}

/// Capacity of each chart series; older points are decimated, never dropped wholesale.
const SERIES_CAPACITY: usize = 2048;
/// Log lines kept.
const LOG_CAPACITY: usize = 1000;

/// The dashboard's state.
pub struct App {
    pub info: Option<RunInfo>,
    pub state: RunState,
    pub progress: Option<Progress>,
    pub series: HashMap<(Iterate, Split), Series<Point>>,
    pub latest: HashMap<(Iterate, Split), MetricRow>,
    pub log: VecDeque<String>,
    /// Lines scrolled back from the newest.
    pub log_scroll: usize,
    pub chart: ChartSettings,
    pub overlay: Option<Overlay>,
    pub view: View,
    pub theme: Theme,
    /// False in `watch` mode: there is no worker to command.
    pub controllable: bool,
    pub should_quit: bool,
    /// Set once the user asked to quit; the app quits when the worker has finished.
    quitting: bool,
    pub last_checkpoint: Option<(u32, u64)>,
    pub probes: ProbeBoard,
    pub form: ProbeForm,
    /// The no-BN twin run, followed like this one.
    pub twin: Option<Box<App>>,
    /// Finished ablations with the curves of their arms.
    pub ablations: Vec<(AblationResult, Vec<ProbeResult>)>,
    /// Whether the stale-BN SWA series was asked for.
    pub stale_bn: bool,
    /// The newest elapsed time seen, for log timestamps.
    elapsed_s: f64,
}

impl App {
    /// A dashboard for a run driven by a worker (`controllable`) or watched from its files.
    pub fn new(theme: Theme, controllable: bool) -> Self {
        Self {
            info: None,
            state: if controllable {
                RunState::Starting
            } else {
                RunState::Watching
            },
            progress: None,
            series: HashMap::new(),
            latest: HashMap::new(),
            log: VecDeque::new(),
            log_scroll: 0,
            chart: ChartSettings {
                log_y: false,
                smooth: false,
                splits: SplitFilter::Both,
                quantity: Quantity::Loss,
                x: XAxis::Epoch,
                window: None,
            },
            overlay: None,
            view: View::Dashboard,
            theme,
            controllable,
            should_quit: false,
            quitting: false,
            last_checkpoint: None,
            probes: ProbeBoard::default(),
            form: ProbeForm::new(&ProbeSpec::default(), 1),
            twin: None,
            ablations: Vec::new(),
            stale_bn: false,
            elapsed_s: 0.0,
        }
    }

    /// The bindings active now (an overlay's, or the view's).
    pub fn bindings(&self) -> &'static [Binding] {
        match self.overlay {
            Some(Overlay::Help) => keymap::HELP,
            Some(Overlay::ConfirmQuit) => keymap::CONFIRM_QUIT,
            Some(Overlay::ProbeForm) => keymap::PROBE_FORM,
            Some(Overlay::AblationMenu) => keymap::ABLATION_MENU,
            None => self.view.bindings(),
        }
    }

    /// Adds a line to the log pane, stamped with the run's elapsed time.
    pub fn log(&mut self, message: impl AsRef<str>) {
        let stamp = crate::headless::clock(self.elapsed_s);
        for line in message.as_ref().lines() {
            self.log.push_back(format!("{stamp} {line}"));
        }
        while self.log.len() > LOG_CAPACITY {
            self.log.pop_front();
        }
    }

    /// Applies a worker event.
    pub fn handle_event(&mut self, event: Event) {
        match event {
            Event::Ready(info) => {
                self.log(format!(
                    "{} on {} ({})",
                    info.model, info.device, info.device_reason
                ));
                self.form = ProbeForm::new(&info.probe, info.seed);
                self.info = Some(*info);
                if self.state == RunState::Starting {
                    self.state = RunState::Running;
                }
            }
            Event::Progress(p) => {
                self.elapsed_s = p.elapsed_s;
                self.progress = Some(p);
            }
            Event::Metric(row) => self.add_metric(row),
            Event::CheckpointWritten { path, epoch, step } => {
                self.last_checkpoint = Some((epoch, step));
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                self.log(format!(
                    "checkpoint {} (epoch {epoch}, step {step})",
                    name.unwrap_or_default()
                ));
            }
            Event::Log(message) => self.log(message),
            Event::Paused => {
                if self.state == RunState::Running {
                    self.state = RunState::Paused;
                }
                self.log("paused");
            }
            Event::Resumed => {
                if self.state == RunState::Paused {
                    self.state = RunState::Running;
                }
                self.log("resumed");
            }
            Event::Finished(outcome) => self.finish(outcome),
            Event::ProbeStarted { id, summary, grid } => {
                self.log(format!("probe {id}: {summary}"));
                self.probes.failure = None;
                self.probes.live = Some(LiveProbe {
                    points: vec![None; grid.len()],
                    id,
                    summary,
                    grid,
                });
            }
            Event::ProbePoint { id, index, point } => {
                if let Some(live) = self.probes.live.as_mut().filter(|l| l.id == id)
                    && let Some(slot) = live.points.get_mut(index)
                {
                    *slot = Some(point);
                }
            }
            Event::ProbeFinished(result) => {
                self.probes.live = None;
                self.log(crate::probe::one_line(&result));
                self.probes.results.push(*result);
                if self.probes.results.len() > PROBES_KEPT {
                    self.probes.results.remove(0);
                }
                self.probes.selected = self.probes.results.len() - 1;
            }
            Event::ProbeBatchFinished(summary) => {
                for c in &summary.centres {
                    self.log(format!(
                        "batch {}: {} centre, {}/{} asymmetric (c >= {})",
                        summary.id,
                        c.centre,
                        c.asymmetric,
                        c.probes.len(),
                        summary.threshold
                    ));
                }
                self.probes.batches.push(*summary);
            }
            Event::ProbeFailed { message } => {
                self.probes.live = None;
                self.probes.failure = Some(message.clone());
                self.log(format!("error: {message}"));
            }
            Event::AblationFinished { result, probes } => {
                for line in crate::ablation::table(&result) {
                    self.log(format!("ablation {}: {line}", result.id));
                }
                self.ablations.push((*result, probes));
            }
            Event::Twin(event) => {
                if let Event::Finished(outcome) = &*event {
                    self.log(format!("no-BN twin: {}", outcome_word(outcome)));
                }
                let theme = self.theme;
                let twin = self
                    .twin
                    .get_or_insert_with(|| Box::new(App::new(theme, true)));
                twin.handle_event(*event);
            }
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        self.state = match outcome {
            Outcome::Completed => RunState::Finished,
            Outcome::Stopped => RunState::Stopped,
            Outcome::Diverged { .. } => RunState::Diverged,
            Outcome::Failed { message } => {
                self.log(format!("error: {message}"));
                RunState::Failed(message)
            }
        };
        self.log(match &self.state {
            RunState::Finished => "finished".to_owned(),
            RunState::Stopped => "stopped; resume from the latest checkpoint".to_owned(),
            RunState::Diverged => {
                "diverged: the loss is not finite; the last finite checkpoint is kept".to_owned()
            }
            _ => "the run ended with an error".to_owned(),
        });
        if self.quitting {
            self.should_quit = true;
        }
    }

    fn add_metric(&mut self, row: MetricRow) {
        self.elapsed_s = self.elapsed_s.max(row.elapsed_s);
        if row.split == Split::Test {
            let name = match row.iterate {
                Iterate::Sgd => "sgd",
                Iterate::Swa => "swa",
                Iterate::SwaStale => "swa with stale BN",
            };
            self.log(format!(
                "epoch {}: {name} test loss {:.4}, acc {:.1}%",
                row.epoch,
                row.loss,
                100.0 * row.acc
            ));
        }
        let key = (row.iterate, row.split);
        self.series
            .entry(key)
            .or_insert_with(|| Series::new(SERIES_CAPACITY))
            .push(Point {
                epoch: f64::from(row.epoch),
                step: row.step as f64,
                loss: row.loss,
                acc: row.acc,
            });
        self.latest.insert(key, row);
    }

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

    /// SGD test loss minus SWA test loss at the latest evaluation: what averaging buys.
    pub fn swa_gain(&self) -> Option<f64> {
        crate::protocol::swa_gain(self.latest.values())
    }

    /// The last completed epoch seen.
    pub fn last_epoch(&self) -> u32 {
        self.latest.values().map(|r| r.epoch).max().unwrap_or(0)
    }
}

/// How a run ended, in a word.
fn outcome_word(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Completed => "finished".into(),
        Outcome::Stopped => "stopped".into(),
        Outcome::Diverged { .. } => "diverged".into(),
        Outcome::Failed { message } => format!("failed: {message}"),
    }
}

#[cfg(test)]
pub(crate) mod tests;
