//! The dashboard's state and the only code that changes it: worker [`Event`]s come in through
//! [`App::handle_event`], user intents through [`App::update`], which returns the command to
//! send, if any. No terminal, no I/O: tested directly.

use super::curvature_form::CurvatureForm;
use super::form::{Editing, ProbeForm};
use super::keymap::{self, Action, Binding};
use super::plane_form::PlaneForm;
use super::series::Series;
use super::theme::Theme;
use crate::ablation::{AblationKind, AblationResult};
use crate::curvature::CurvatureResult;
use crate::curvature::track::TrackRow;
use crate::probe::plane::{PlaneHeader, PlanePoint, PlaneResult, PlaneValue};
use crate::probe::summary::BatchSummary;
use crate::probe::{ProbePoint, ProbeResult, ProbeSpec};
use crate::protocol::{Command, Event, Iterate, MetricRow, Outcome, Progress, RunInfo, Split};
use std::collections::{HashMap, VecDeque};

mod actions;
mod boards;
mod events;
mod view_actions;

pub use boards::{
    CurvatureBoard, Job, JobKind, Jobs, LiveCurvature, LivePlane, LiveProbe, PlaneBoard, ProbeBoard,
};

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
    /// The learning rate the schedule set (per step while training here).
    LearningRate,
    /// The top Hessian eigenvalue tracked at epoch ends (`curvature.every_epochs`), with the
    /// edge of stability 2/lr.
    Curvature,
}

/// The chart's x axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    Epoch,
    Step,
    /// The run's own clock since it started (h:mm:ss; it stops while the run is stopped), as
    /// TensorBoard's "relative".
    Time,
    /// The wall clock: the time of day each point was measured, as TensorBoard's "wall".
    Clock,
}

impl XAxis {
    /// Where a point sits along this axis (seconds for the two clocks: the wall clock's
    /// offset is the chart's business).
    pub fn of(self, p: &Point) -> f64 {
        match self {
            Self::Epoch => p.epoch,
            Self::Step => p.step,
            Self::Time | Self::Clock => p.time,
        }
    }

    /// The axis `x` switches to.
    pub fn next(self) -> Self {
        match self {
            Self::Epoch => Self::Step,
            Self::Step => Self::Time,
            Self::Time => Self::Clock,
            Self::Clock => Self::Epoch,
        }
    }

    /// Its name under the chart.
    pub fn name(self) -> &'static str {
        match self {
            Self::Epoch => "epoch",
            Self::Step => "step",
            Self::Time => "time",
            Self::Clock => "clock",
        }
    }

    /// True for the two clocks.
    pub fn is_time(self) -> bool {
        matches!(self, Self::Time | Self::Clock)
    }
}

/// Chart settings the keys toggle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartSettings {
    pub log_y: bool,
    /// Smoothing strength, one of `chart::SMOOTHING_STEPS` (0: raw).
    pub smooth: f64,
    pub splits: SplitFilter,
    pub quantity: Quantity,
    pub x: XAxis,
    /// Show only the last this-many epochs (None: all).
    pub window: Option<u32>,
    /// Scale the y axis to the 5th–95th percentiles (and the latest values), not to outliers
    /// such as the first evaluation.
    pub clip_outliers: bool,
    /// Also draw the training loss over the batches between two reports (per step).
    pub per_step: bool,
    /// The x the value cursor stands on, if shown.
    pub cursor: Option<f64>,
}

/// An overlay drawn over the current view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    ConfirmQuit,
    ProbeForm,
    PlaneForm,
    CurvatureForm,
    ConnectForm,
    AblationMenu,
}

/// The views Tab cycles through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Dashboard,
    Probes,
    Ablations,
    Planes,
    Curvature,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Dashboard,
        View::Probes,
        View::Ablations,
        View::Planes,
        View::Curvature,
    ];

    /// The keys of this view.
    pub fn bindings(self) -> &'static [Binding] {
        match self {
            View::Dashboard => keymap::DASHBOARD,
            View::Probes => keymap::PROBES,
            View::Ablations => keymap::ABLATIONS,
            View::Planes => keymap::PLANES,
            View::Curvature => keymap::CURVATURES,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Dashboard => "dashboard",
            View::Probes => "probes",
            View::Ablations => "ablations",
            View::Planes => "planes",
            View::Curvature => "curvature",
        }
    }
}

/// Finished probes kept for the view; older ones stay on disk.
const PROBES_KEPT: usize = 200;

/// One evaluation, as stored for the chart: x by epoch and by step, loss, accuracy and the
/// learning rate then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub epoch: f64,
    pub step: f64,
    /// Seconds on the run's clock (NaN where a point has no time, such as curvature's).
    pub time: f64,
    pub loss: f64,
    pub acc: f64,
    pub lr: f64,
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
    /// The training loss between progress reports, per step (this process's training only).
    pub per_step: Series<Point>,
    /// The range of the per-step training loss over every stretch of `per_step`, however
    /// thinned: the band drawn behind its (smoothed) line.
    pub per_step_range: super::series::Envelope<Point>,
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
    pub planes: PlaneBoard,
    pub plane_form: PlaneForm,
    pub curvature: CurvatureBoard,
    pub curvature_form: CurvatureForm,
    pub connect_form: super::connect_form::ConnectForm,
    /// The no-BN twin run, followed like this one.
    pub twin: Option<Box<App>>,
    /// Finished ablations with the curves of their arms.
    pub ablations: Vec<(AblationResult, Vec<ProbeResult>)>,
    /// Whether the stale-BN SWA series was asked for.
    pub stale_bn: bool,
    /// The newest elapsed time seen, for log timestamps.
    elapsed_s: f64,
    /// Probes and ablations running and waiting.
    pub jobs: Jobs,
    /// A long step of training under way and the clock when it began.
    pub phase: Option<(String, f64)>,
    /// Seconds since the dashboard opened (set by the event loop; tests set it by hand).
    pub clock_s: f64,
    /// `clock_s` when the newest metric row arrived: a watched run's time left counts down
    /// from it.
    pub last_row_at_s: f64,
    /// The newest sample of the machine (GPU, or the process's CPU and memory), drawn as a
    /// strip under the header; None where nothing samples it (tests, screenshots of files).
    pub machine: Option<crate::machine::MachineSample>,
    /// The time zone of the wall-clock axis (the system's; tests fix it).
    pub time_zone: jiff::tz::TimeZone,
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
            per_step: Series::new(SERIES_CAPACITY),
            per_step_range: super::series::Envelope::new(SERIES_CAPACITY / 2),
            latest: HashMap::new(),
            log: VecDeque::new(),
            log_scroll: 0,
            chart: ChartSettings {
                log_y: false,
                smooth: 0.0,
                splits: SplitFilter::Both,
                quantity: Quantity::Loss,
                x: XAxis::Epoch,
                window: None,
                clip_outliers: true,
                per_step: false,
                cursor: None,
            },
            overlay: None,
            view: View::Dashboard,
            theme,
            controllable,
            should_quit: false,
            quitting: false,
            last_checkpoint: None,
            probes: ProbeBoard::default(),
            form: ProbeForm::new(&ProbeSpec::default(), 1, false),
            planes: PlaneBoard::default(),
            plane_form: PlaneForm::new(&ProbeSpec::default(), 1),
            curvature: CurvatureBoard::default(),
            curvature_form: CurvatureForm::new(&Default::default()),
            connect_form: Default::default(),
            twin: None,
            ablations: Vec::new(),
            stale_bn: false,
            elapsed_s: 0.0,
            jobs: Jobs::default(),
            phase: None,
            clock_s: 0.0,
            machine: None,
            time_zone: jiff::tz::TimeZone::system(),
            last_row_at_s: 0.0,
        }
    }

    /// Advances the dashboard's clock; true when a time shown on screen (a job's or a watched
    /// run's time left) may have changed.
    pub fn tick(&mut self, now_s: f64) -> bool {
        let whole_second = now_s.floor() > self.clock_s.floor();
        self.clock_s = now_s;
        whole_second
            && (self.jobs.running.is_some()
                || self.curvature.live.is_some()
                || self.phase.is_some()
                || self.state == RunState::Watching)
    }

    /// Whether `action` does anything now: what the key bar and the help offer.
    pub fn offers(&self, action: Action) -> bool {
        let busy = self.jobs.running.is_some() || self.probes.live.is_some();
        match action {
            Action::TogglePause => {
                self.controllable && matches!(self.state, RunState::Running | RunState::Paused)
            }
            Action::Checkpoint => self.controllable && self.state.is_live(),
            Action::CancelProbe => self.controllable && busy,
            Action::OpenProbeForm
            | Action::OpenPlaneForm
            | Action::OpenCurvatureForm
            | Action::OpenConnectForm
            | Action::OpenAblationMenu
            | Action::AblateGroups
            | Action::AblateBnModes
            | Action::AblateSummary
            | Action::StartTwin
            | Action::ToggleStaleBn => self.controllable,
            Action::SelectUp | Action::SelectDown if self.view == View::Planes => {
                self.planes.results.len() > 1
            }
            Action::SelectUp | Action::SelectDown if self.view == View::Curvature => {
                self.curvature.results.len() > 1
            }
            Action::SelectUp | Action::SelectDown => self.probes.entries() > 1,
            _ => true,
        }
    }

    /// The bindings active now (an overlay's, or the view's).
    pub fn bindings(&self) -> &'static [Binding] {
        match self.overlay {
            Some(Overlay::Help) => keymap::HELP,
            Some(Overlay::ConfirmQuit) => keymap::CONFIRM_QUIT,
            Some(Overlay::ProbeForm) => keymap::PROBE_FORM,
            Some(Overlay::PlaneForm) => keymap::PLANE_FORM,
            Some(Overlay::CurvatureForm) => keymap::CURVATURE_FORM,
            Some(Overlay::ConnectForm) => keymap::CONNECT_FORM,
            Some(Overlay::AblationMenu) => keymap::ABLATION_MENU,
            None => self.view.bindings(),
        }
    }

    /// Adds a line to the log pane, stamped with the run's elapsed time.
    pub fn log(&mut self, message: impl AsRef<str>) {
        let stamp = crate::format::clock(self.elapsed_s);
        for line in message.as_ref().lines() {
            self.log.push_back(format!("{stamp} {line}"));
        }
        while self.log.len() > LOG_CAPACITY {
            self.log.pop_front();
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

#[cfg(test)]
pub(crate) mod tests;
