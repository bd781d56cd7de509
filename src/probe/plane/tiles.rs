//! A plane measured as tiles: bands of rows, each its own job (a Slurm array task or a local
//! process), each resumable, merged into the same planes/<id>.json and .csv that the plane
//! measured in one go writes.
//!
//! The directions are drawn once, before any tile, and kept in the plane's own
//! planes/<id>.directions.f32; every tile reads them, so no tile draws (or finds, for a
//! `hessian` plane) its own. A tile measures its rows in the order the whole plane would
//! (coarse to fine, several points of a row at once as the whole plane groups them), so each
//! point is computed exactly as it would be in one go. It keeps what it measured in its
//! progress file between groups of points; a tile stopped (a signal, a requeue, a kill)
//! continues after the last group it kept.
//!
//! planes/<id>.tiles/ holds plan.json (the plane as it will be stored, less its points),
//! tile-NNN.json (each tile's progress), logs/NNN.out and, for Slurm, job.sbatch. It is kept
//! after the merge, for `--status`.

use super::{PlaneResult, coarse_to_fine};
use crate::rundir::RunDirError;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where a plane's tiles keep their plan and progress.
#[derive(Debug, Clone)]
pub struct TilesDir {
    pub root: PathBuf,
}

/// What every tile reads: the plane as it will be stored, less its points, and where to
/// measure it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TilePlan {
    /// The plane as it will be stored (id, spec, axes, directions' norms, path…), its
    /// `points` empty and its cost the preparation's.
    pub plane: PlaneResult,
    pub tiles: usize,
    /// The checkpoint the tiles load.
    pub checkpoint: PathBuf,
    /// `--device` as given (auto, cpu, cuda, cuda:N).
    pub device: String,
    /// The expected seconds of one point, measured before the first.
    pub seconds_per_point: f64,
    /// "local" or "slurm".
    pub executor: String,
    /// The Slurm job of the tiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The local executor's process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Who that process is, so that `--cancel` signals it and nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<crate::process::ProcessIdentity>,
}

/// One measured point of a tile and where it sits in the grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TilePoint {
    pub column: usize,
    pub row: usize,
    #[serde(flatten)]
    pub point: super::PlanePoint,
}

/// What a tile has measured, in the order it measured it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TileProgress {
    pub tile: usize,
    pub points: Vec<TilePoint>,
    /// Seconds spent measuring, over every attempt.
    pub seconds: f64,
    /// Times the tile was started (more than one: it was stopped and continued).
    pub attempts: u32,
}

/// Where a tile stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileState {
    pub tile: usize,
    pub done: usize,
    pub total: usize,
}

impl TileState {
    pub fn finished(&self) -> bool {
        self.done == self.total
    }
}

/// The rows of tile `k` of `tiles` over `ny` rows: contiguous bands whose sizes differ by
/// one row at most.
pub fn rows(ny: usize, tiles: usize, k: usize) -> Range<usize> {
    (k * ny / tiles)..((k + 1) * ny / tiles)
}

/// The points of tile `k` in the order it measures them: the whole plane's order (coarse to
/// fine) restricted to its rows.
pub fn order(nx: usize, ny: usize, tiles: usize, k: usize) -> Vec<(usize, usize)> {
    let band = rows(ny, tiles, k);
    coarse_to_fine(nx, ny)
        .into_iter()
        .filter(|&(_, j)| band.contains(&j))
        .collect()
}

/// Checks a tile count for a plane of `ny` rows: each tile needs a row.
pub fn check_tiles(tiles: usize, ny: usize) -> Result<(), crate::error::Invalid> {
    if !(1..=ny).contains(&tiles) {
        return Err(crate::error::Invalid(format!(
            "--tiles {tiles}: expected 1..={ny} tiles (a tile is a band of rows, and this plane has {ny} rows)"
        )));
    }
    Ok(())
}

/// How many points at the head of a tile's progress follow its order: what a continued tile
/// skips. Progress that does not follow it (a plan changed under it) is measured again.
pub fn resume_at(order: &[(usize, usize)], progress: &TileProgress) -> usize {
    let follows = progress.points.len() <= order.len()
        && progress
            .points
            .iter()
            .zip(order)
            .all(|(p, &(i, j))| (p.column, p.row) == (i, j));
    if follows { progress.points.len() } else { 0 }
}

/// Every tile's state, from the progress files present.
pub fn states(plan: &TilePlan, progress: &[Option<TileProgress>]) -> Vec<TileState> {
    let (nx, ny) = (plan.plane.xs.len(), plan.plane.ys.len());
    (0..plan.tiles)
        .map(|k| {
            let order = order(nx, ny, plan.tiles, k);
            let done = progress
                .get(k)
                .and_then(Option::as_ref)
                .map_or(0, |p| resume_at(&order, p));
            TileState {
                tile: k,
                done,
                total: order.len(),
            }
        })
        .collect()
}

/// The plane of a finished set of tiles: the plan's plane with every tile's points, row by
/// row, and the cost of the preparation and every tile together. None while a tile has
/// points to measure.
pub fn merge(plan: &TilePlan, progress: &[Option<TileProgress>]) -> Option<PlaneResult> {
    let (nx, ny) = (plan.plane.xs.len(), plan.plane.ys.len());
    if !states(plan, progress).iter().all(TileState::finished) {
        return None;
    }
    let mut grid: Vec<Option<super::PlanePoint>> = vec![None; nx * ny];
    let mut seconds = plan.plane.cost.seconds;
    for p in progress.iter().flatten() {
        seconds += p.seconds;
        for t in &p.points {
            grid[t.row * nx + t.column] = Some(t.point);
        }
    }
    let mut plane = plan.plane.clone();
    plane.points = grid.into_iter().collect::<Option<Vec<_>>>()?;
    plane.cost.seconds = seconds;
    plane.cost.points = nx * ny;
    plane.cost.seconds_per_point = seconds / (nx * ny) as f64;
    Some(plane)
}

impl TilesDir {
    /// planes/<id>.tiles of a run.
    pub fn of(run: &crate::rundir::RunDir, id: &str) -> Self {
        Self {
            root: crate::probe::store::plane_dir(run).join(format!("{id}.tiles")),
        }
    }

    /// A tiles directory given on the command line; one line when it is not one.
    pub fn open(path: &Path) -> Result<Self, crate::error::Invalid> {
        let dir = Self {
            root: path.to_owned(),
        };
        if !dir.plan_path().is_file() {
            return Err(crate::error::Invalid(format!(
                "{}: not a tiled plane's directory (no plan.json); expected RUN_DIR/planes/<id>.tiles",
                path.display()
            )));
        }
        Ok(dir)
    }

    /// Every tiled plane of a run, in id order.
    pub fn all(run: &crate::rundir::RunDir) -> Vec<Self> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(crate::probe::store::plane_dir(run))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| Self::is_tiles_dir(p))
            .collect();
        found.sort();
        found.into_iter().map(|root| Self { root }).collect()
    }

    /// True when `path` holds a tiled plane's plan.
    pub fn is_tiles_dir(path: &Path) -> bool {
        path.join("plan.json").is_file()
    }

    /// The run directory the plane belongs to (two levels up).
    pub fn run_root(&self) -> PathBuf {
        let absolute = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        absolute
            .parent()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from("."), Path::to_owned)
    }

    pub fn plan_path(&self) -> PathBuf {
        self.root.join("plan.json")
    }

    pub fn progress_path(&self, tile: usize) -> PathBuf {
        self.root.join(format!("tile-{tile:03}.json"))
    }

    pub fn log_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn log_path(&self, tile: usize) -> PathBuf {
        self.log_dir().join(format!("{tile:03}.out"))
    }

    pub fn script_path(&self) -> PathBuf {
        self.root.join("job.sbatch")
    }

    /// Held while the tiles are merged, so that two tiles finishing together merge once.
    pub fn merge_lock_path(&self) -> PathBuf {
        self.root.join("merge.lock")
    }

    pub fn write_plan(&self, plan: &TilePlan) -> Result<(), RunDirError> {
        let logs = self.log_dir();
        std::fs::create_dir_all(&logs)
            .map_err(crate::rundir::io_err(&logs, "cannot create the directory"))?;
        let json = serde_json::to_vec_pretty(plan).expect("a plan serialises to JSON");
        crate::rundir::write_atomic(&self.plan_path(), &json)
    }

    /// The plan, or one line naming the file and what is wrong with it.
    pub fn read_plan(&self) -> Result<TilePlan, crate::error::Invalid> {
        let path = self.plan_path();
        let bad = |e: String| crate::error::Invalid(format!("{}: {e}", path.display()));
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let plan: TilePlan = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let ny = plan.plane.ys.len();
        check_tiles(plan.tiles, ny).map_err(|e| bad(e.0))?;
        if plan.plane.xs.len() != plan.plane.spec.points.0 || ny != plan.plane.spec.points.1 {
            return Err(bad("its axes do not match its grid's points".into()));
        }
        Ok(plan)
    }

    pub fn write_progress(&self, progress: &TileProgress) -> Result<(), RunDirError> {
        let json = serde_json::to_vec(progress).expect("progress serialises to JSON");
        crate::rundir::write_atomic(&self.progress_path(progress.tile), &json)
    }

    /// A tile's progress; None when it has none yet, or when its file cannot be read (the
    /// tile is then measured again, which changes nothing but the time).
    pub fn read_progress(&self, tile: usize) -> Option<TileProgress> {
        let text = std::fs::read_to_string(self.progress_path(tile)).ok()?;
        let progress: TileProgress = serde_json::from_str(&text).ok()?;
        (progress.tile == tile).then_some(progress)
    }

    /// Every tile's progress, by tile.
    pub fn read_all_progress(&self, tiles: usize) -> Vec<Option<TileProgress>> {
        (0..tiles).map(|k| self.read_progress(k)).collect()
    }
}

#[cfg(test)]
mod tests;
