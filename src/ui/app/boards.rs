//! What the probe, plane and ablation views hold: the probes and planes measured and the one
//! filling in, and the jobs the worker runs for the dashboard, one after another.

use super::*;

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
    /// Connections measured on the live run, listed after the probes.
    pub connections: Vec<crate::probe::connect::ConnectResult>,
    /// The connection being measured: what it connects, and the dashboard's clock at its
    /// start.
    pub connecting: Option<(String, f64)>,
}

impl ProbeBoard {
    /// Probes and connections in the table (the selection runs over both, probes first).
    pub fn entries(&self) -> usize {
        self.results.len() + self.connections.len()
    }

    /// The selected connection, when the selection is past the probes.
    pub fn selected_connection(&self) -> Option<&crate::probe::connect::ConnectResult> {
        self.selected
            .checked_sub(self.results.len())
            .and_then(|i| self.connections.get(i))
    }
}

/// A plane whose points are still arriving.
#[derive(Debug, Clone, PartialEq)]
pub struct LivePlane {
    pub header: PlaneHeader,
    /// Row by row (y outer, x inner), None until measured.
    pub points: Vec<Option<PlanePoint>>,
    /// The dashboard's clock when the first point arrived: the set-up before it (a forward
    /// pass timed, directions drawn) is no point's cost.
    pub first_point_s: Option<f64>,
}

impl LivePlane {
    /// Points received so far.
    pub fn done(&self) -> usize {
        self.points.iter().filter(|p| p.is_some()).count()
    }

    /// Seconds left at `now`, from the time the points after the first took; None until two
    /// points have come (the first one's time includes the set-up).
    pub fn seconds_left(&self, now: f64) -> Option<f64> {
        let done = self.done();
        let first = self.first_point_s?;
        if done < 2 {
            return None;
        }
        let per_point = (now - first).max(0.0) / (done - 1) as f64;
        Some(per_point * self.header.total().saturating_sub(done) as f64)
    }
}

/// Everything the plane view shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneBoard {
    pub live: Option<LivePlane>,
    pub results: Vec<PlaneResult>,
    /// Index into `results` of the plane shown when none is running (the newest unless moved).
    pub selected: usize,
    /// The cursor's grid column and row (None: on the centre).
    pub cursor: Option<(usize, usize)>,
    pub show: PlaneValue,
    pub log: bool,
}

impl Default for PlaneBoard {
    fn default() -> Self {
        Self {
            live: None,
            results: Vec::new(),
            selected: 0,
            cursor: None,
            show: PlaneValue::Test,
            log: false,
        }
    }
}

/// A curvature measurement under way (a job, or the tracking at an epoch end).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCurvature {
    pub label: String,
    /// What it measures and its expected cost, in words.
    pub plan: String,
    pub expected_s: f64,
    /// Hessian-vector products done and planned, and what is being measured.
    pub done: usize,
    pub planned: usize,
    pub what: String,
    /// The dashboard's clock when it began.
    pub started_s: f64,
}

impl LiveCurvature {
    /// Seconds left at `now`: from the products' own pace once some are done, else from
    /// the plan.
    pub fn seconds_left(&self, now: f64) -> f64 {
        let elapsed = (now - self.started_s).max(0.0);
        if self.done > 0 && self.planned > 0 {
            let fraction = (self.done as f64 / self.planned as f64).min(1.0);
            elapsed * (1.0 - fraction) / fraction
        } else {
            (self.expected_s - elapsed).max(0.0)
        }
    }
}

/// Everything the curvature view (and the dashboard's λ_max chart) shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CurvatureBoard {
    pub live: Option<LiveCurvature>,
    pub results: Vec<CurvatureResult>,
    /// Index into `results` of the result shown (the newest unless moved).
    pub selected: usize,
    /// The curvature tracked at epoch ends, one row per centre and epoch.
    pub track: Vec<TrackRow>,
    /// The density's axis is linear (it is logarithmic by default: the bulk near zero and
    /// the outliers differ by orders of magnitude).
    pub linear: bool,
}

impl CurvatureBoard {
    /// Adds tracked rows, replacing any of the same centre and epoch (a resumed run measures
    /// its epoch ends again), in epoch order.
    pub fn add_track(&mut self, rows: Vec<TrackRow>) {
        for row in rows {
            self.track
                .retain(|r| !(r.epoch == row.epoch && r.centre == row.centre));
            self.track.push(row);
        }
        self.track.sort_by_key(|r| r.epoch);
    }
}

/// What a job asked for from the dashboard is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Probe,
    /// Random directions through each centre.
    Batch {
        directions: usize,
    },
    Ablation(AblationKind),
    Plane,
    Curvature,
    Connect,
}

/// A probe or ablation asked for from the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub kind: JobKind,
    /// "probe interp", "batch of 20 uniform", "ablation summary".
    pub label: String,
    /// The dashboard's clock when it started (None while it waits).
    pub started_s: Option<f64>,
    /// Probes of it finished so far.
    pub probes_done: usize,
    /// Probes it will take, when known.
    pub probes_total: Option<usize>,
    /// Esc was pressed: the worker stops it after the point it is measuring.
    pub cancelling: bool,
}

/// The jobs the worker runs one after another, as far as the dashboard asked for them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Jobs {
    pub running: Option<Job>,
    pub queued: VecDeque<Job>,
}
