//! Where each variant of a sweep stands, read from its run directory, and sets of runs shown
//! together (a sweep's, or run directories named one by one).

use super::*;

/// Runs shown together: a sweep's, or run directories named one by one.
pub enum RunSet {
    Sweep(SweepDir),
    Dirs(Vec<PathBuf>),
}

impl RunSet {
    pub fn name(&self) -> String {
        match self {
            Self::Sweep(dir) => format!("sweep {}", dir.name()),
            Self::Dirs(dirs) => format!("{} run directories", dirs.len()),
        }
    }

    /// Every run's summary, in order.
    pub fn summaries(&self) -> Vec<report::RunSummary> {
        match self {
            Self::Sweep(dir) => dir
                .variants()
                .unwrap_or_default()
                .iter()
                .map(|v| report::summarise(dir, v))
                .collect(),
            Self::Dirs(dirs) => dirs
                .iter()
                .enumerate()
                .map(|(index, path)| {
                    let id = path.file_name().map_or_else(
                        || path.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    );
                    let v = Variant {
                        index,
                        id,
                        overrides: Vec::new(),
                    };
                    report::summarise_run(path, v, run_state(path, AfterTraining::default()))
                })
                .collect(),
        }
    }

    /// The run directory of run `index`.
    pub fn path(&self, index: usize) -> Option<PathBuf> {
        match self {
            Self::Sweep(dir) => dir
                .variants()
                .ok()?
                .iter()
                .find(|v| v.index == index)
                .map(|v| dir.run_path(v)),
            Self::Dirs(dirs) => dirs.get(index).cloned(),
        }
    }
}

/// What a sweep measures of each variant after training: a batch of probes, a plane, the
/// curvature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfterTraining {
    pub probe: bool,
    pub plane: bool,
    pub curvature: bool,
}

impl AfterTraining {
    /// The probe batch is still to run on `run`.
    pub fn needs_probe(&self, run: &RunDir) -> bool {
        self.probe && crate::probe::store::read_batches(run).0.is_empty()
    }

    /// The plane is still to measure on `run`.
    pub fn needs_plane(&self, run: &RunDir) -> bool {
        self.plane && crate::probe::store::read_planes(run).0.is_empty()
    }

    /// The curvature job is still to run on `run`.
    pub fn needs_curvature(&self, run: &RunDir) -> bool {
        self.curvature && crate::curvature::store::read_all(run).0.is_empty()
    }

    /// Something is still to measure on `run`.
    pub fn needs_any(&self, run: &RunDir) -> bool {
        self.needs_probe(run) || self.needs_plane(run) || self.needs_curvature(run)
    }
}

/// Where the run at `path` stands; it is done once it has what `after` asks for.
pub fn run_state(path: &Path, after: AfterTraining) -> VariantState {
    let Ok(run) = RunDir::open(path) else {
        return VariantState::Pending;
    };
    if run.is_busy() {
        return VariantState::Running;
    }
    match run.outcome() {
        Some(crate::protocol::Outcome::Completed) => {
            if after.needs_any(&run) {
                VariantState::Trained
            } else {
                VariantState::Done
            }
        }
        Some(crate::protocol::Outcome::Diverged { .. }) => VariantState::Diverged,
        Some(crate::protocol::Outcome::Failed { .. }) => VariantState::Failed,
        Some(crate::protocol::Outcome::Stopped) | None => {
            if path.join("checkpoints/latest.safetensors").is_file() {
                VariantState::Stopped
            } else {
                VariantState::Pending
            }
        }
    }
}

/// Where a variant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantState {
    /// Not started (or stopped before its first checkpoint).
    Pending,
    /// Its run directory is locked by a process training it.
    Running,
    /// Stopped with a checkpoint: the next task resumes it.
    Stopped,
    /// Trained; its probes are still to run.
    Trained,
    Done,
    Diverged,
    Failed,
}

impl VariantState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Trained => "trained",
            Self::Done => "done",
            Self::Diverged => "diverged",
            Self::Failed => "failed",
        }
    }

    /// Nothing is left to do for the variant (done, or ended in a way a retry won't change).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Diverged)
    }
}
