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
mod tests {
    use super::*;
    use crate::probe::ProbePoint;
    use crate::probe::plane::PlanePoint;

    #[test]
    fn bands_cover_every_row_once_and_differ_by_a_row_at_most() {
        for ny in 2..40 {
            for tiles in 1..=ny {
                let bands: Vec<Range<usize>> = (0..tiles).map(|k| rows(ny, tiles, k)).collect();
                let sizes: Vec<usize> = bands.iter().map(|b| b.len()).collect();
                assert!(
                    sizes.iter().all(|&s| s >= 1),
                    "{ny} rows, {tiles} tiles: {sizes:?}"
                );
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
                let all: Vec<usize> = bands.into_iter().flatten().collect();
                assert_eq!(all, (0..ny).collect::<Vec<_>>());
            }
        }
        assert!(check_tiles(0, 9).is_err());
        assert!(check_tiles(10, 9).unwrap_err().0.contains("1..=9"));
        assert!(check_tiles(9, 9).is_ok());
    }

    #[test]
    fn the_tiles_orders_are_the_planes_order_split_by_rows() {
        let (nx, ny) = (9, 11);
        let whole = coarse_to_fine(nx, ny);
        for tiles in [1, 2, 4, 11] {
            let mut rebuilt: Vec<(usize, usize)> =
                (0..tiles).flat_map(|k| order(nx, ny, tiles, k)).collect();
            assert_eq!(rebuilt.len(), nx * ny);
            // Each tile keeps the whole plane's relative order.
            for k in 0..tiles {
                let mine = order(nx, ny, tiles, k);
                let theirs: Vec<_> = whole
                    .iter()
                    .copied()
                    .filter(|p| rows(ny, tiles, k).contains(&p.1))
                    .collect();
                assert_eq!(mine, theirs);
            }
            rebuilt.sort();
            let mut all = whole.clone();
            all.sort();
            assert_eq!(rebuilt, all);
        }
    }

    fn point(x: f64, y: f64, loss: f64) -> PlanePoint {
        PlanePoint {
            x,
            y,
            measured: ProbePoint {
                t: x,
                train_loss: loss,
                train_acc: 0.5,
                test_loss: loss + 1.0,
                test_acc: 0.25,
                train_loss_se: None,
                test_loss_se: None,
            },
        }
    }

    fn plan(tiles: usize) -> TilePlan {
        let mut skeleton = crate::probe::plane::valley_fixture("001-swa-sgd-swa", 3, 4);
        skeleton.points.clear();
        skeleton.cost.seconds = 2.0;
        TilePlan {
            plane: skeleton,
            tiles,
            checkpoint: "c".into(),
            device: "cpu".into(),
            seconds_per_point: 1.0,
            executor: "local".into(),
            job_id: None,
            pid: None,
            process: None,
        }
    }

    fn measured(plan: &TilePlan, k: usize, upto: usize, seconds: f64) -> TileProgress {
        let (xs, ys) = (&plan.plane.xs, &plan.plane.ys);
        TileProgress {
            tile: k,
            points: order(xs.len(), ys.len(), plan.tiles, k)
                .into_iter()
                .take(upto)
                .map(|(i, j)| TilePoint {
                    column: i,
                    row: j,
                    point: point(xs[i], ys[j], (i * 10 + j) as f64),
                })
                .collect(),
            seconds,
            attempts: 1,
        }
    }

    #[test]
    fn finished_tiles_merge_row_by_row_with_every_tiles_cost() {
        let plan = plan(3);
        let mut progress: Vec<Option<TileProgress>> = (0..3)
            .map(|k| Some(measured(&plan, k, usize::MAX, 1.5)))
            .collect();
        progress[1] = Some(measured(&plan, 1, 2, 1.0));
        assert!(merge(&plan, &progress).is_none(), "tile 1 is not finished");
        let states = states(&plan, &progress);
        assert_eq!(states[1].done, 2);
        assert_eq!(states[1].total, 3, "tile 1 holds row 1 alone: 3 points");
        progress[1] = Some(measured(&plan, 1, usize::MAX, 1.5));
        let plane = merge(&plan, &progress).expect("every tile finished");
        assert_eq!(plane.points.len(), 12);
        for (k, p) in plane.points.iter().enumerate() {
            let (i, j) = (k % 3, k / 3);
            assert_eq!((p.x, p.y), (plan.plane.xs[i], plan.plane.ys[j]));
            assert_eq!(p.measured.train_loss, (i * 10 + j) as f64);
        }
        assert_eq!(plane.cost.seconds, 2.0 + 3.0 * 1.5);
        assert_eq!(plane.cost.points, 12);
        assert_eq!(plane.cost.seconds_per_point, 6.5 / 12.0);
        use crate::stored::Stored;
        plane.check().unwrap();
    }

    #[test]
    fn progress_that_does_not_follow_the_order_is_measured_again() {
        let plan = plan(2);
        let mut progress = measured(&plan, 0, 3, 1.0);
        let order = order(3, 4, 2, 0);
        assert_eq!(resume_at(&order, &progress), 3);
        progress.points.swap(0, 1);
        assert_eq!(resume_at(&order, &progress), 0);
        let other = measured(&plan, 1, 2, 1.0);
        assert_eq!(resume_at(&order, &other), 0, "another tile's points");
    }

    #[test]
    fn progress_files_round_trip_and_a_torn_one_is_none() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = TilesDir {
            root: tmp.path().join("001-swa-sgd-swa.tiles"),
        };
        let plan = plan(2);
        dir.write_plan(&plan).unwrap();
        assert_eq!(dir.read_plan().unwrap(), plan);
        assert!(TilesDir::open(&dir.root).is_ok());
        assert!(
            TilesDir::open(tmp.path())
                .unwrap_err()
                .0
                .contains("plan.json")
        );
        let progress = measured(&plan, 1, 2, 1.0);
        dir.write_progress(&progress).unwrap();
        assert_eq!(dir.read_progress(1), Some(progress));
        assert_eq!(dir.read_progress(0), None);
        std::fs::write(dir.progress_path(0), "{\"tile\": 0, \"poi").unwrap();
        assert_eq!(dir.read_progress(0), None);
        std::fs::write(dir.plan_path(), "{}").unwrap();
        let e = dir.read_plan().unwrap_err().0;
        assert!(e.contains("plan.json") && !e.contains('\n'), "{e}");
    }
}
