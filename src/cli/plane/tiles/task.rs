//! The task that measures one tile of a plane (each job's), continuing where it stopped, and
//! the merge of finished tiles into the plane's files.

use super::*;

/// Merges the tiles into planes/<id>.json and .csv when every one is measured, once (under
/// a lock, as tiles may finish together); the plane, when merged.
pub(super) fn merge(dir: &TilesDir) -> anyhow::Result<Option<PlaneResult>> {
    let plan = dir.read_plan().bad_input()?;
    let lock_path = dir.merge_lock_path();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("{}: cannot open", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("{}: cannot lock", lock_path.display()))?;
    let Some(plane) = tiles::merge(&plan, &dir.read_all_progress(plan.tiles)) else {
        return Ok(None);
    };
    let run = RunDir::open(&dir.run_root()).bad_input()?;
    let stored = store::plane_dir(&run).join(format!("{}.json", plane.id));
    if !stored.is_file() {
        store::write_plane(&run, &plane)?;
    }
    Ok(Some(plane))
}

/// Says what a tile has done and keeps it in its progress file between groups of points.
struct TileObserver<'a> {
    dir: &'a TilesDir,
    progress: TileProgress,
    stop: &'a AtomicBool,
    since: Instant,
    saved: Option<Instant>,
    report: crate::cli::progress::Progress,
    tty: bool,
}

impl TileObserver<'_> {
    fn save(&mut self) -> anyhow::Result<()> {
        self.progress.seconds += self.since.elapsed().as_secs_f64();
        self.since = Instant::now();
        self.dir.write_progress(&self.progress)?;
        self.saved = Some(Instant::now());
        Ok(())
    }
}

impl PlaneObserver for TileObserver<'_> {
    fn started(&mut self, _header: &PlaneHeader) {}

    fn point(&mut self, _done: usize, i: usize, j: usize, point: &PlanePoint) {
        self.progress.points.push(TilePoint {
            column: i,
            row: j,
            point: *point,
        });
        self.report.point_done(self.tty);
    }

    /// Between groups of points: the moment a tile keeps what it has, so that a tile
    /// continued later measures the same groups as the plane in one go.
    fn cancelled(&mut self) -> bool {
        let due = self
            .saved
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        let stop = self.stop.load(Ordering::Relaxed);
        if (due || stop)
            && !self.progress.points.is_empty()
            && let Err(e) = self.save()
        {
            eprintln!("valleys: tile {}: {e:#}", self.progress.tile);
        }
        stop
    }
}

/// Measures tile `k`, continuing where it stopped; the last tile to finish merges the plane.
pub(super) fn task(dir: &TilesDir, k: usize, stop: &AtomicBool) -> anyhow::Result<bool> {
    let plan = dir.read_plan().bad_input()?;
    if k >= plan.tiles {
        valleys::bad_input!("--tile {k}: the plane has tiles 0..{}", plan.tiles - 1);
    }
    let (nx, ny) = (plan.plane.xs.len(), plan.plane.ys.len());
    let order = tiles::order(nx, ny, plan.tiles, k);
    let mut progress = dir.read_progress(k).unwrap_or(TileProgress {
        tile: k,
        ..TileProgress::default()
    });
    let at = tiles::resume_at(&order, &progress);
    progress.points.truncate(at);
    let rows = tiles::rows(ny, plan.tiles, k);
    let when = jiff::Zoned::now().strftime("%Y-%m-%d %H:%M:%S");
    if at == order.len() {
        println!(
            "tile {k} of plane {} ({when}): already measured",
            plan.plane.id
        );
    } else {
        progress.attempts += 1;
        println!(
            "tile {k} of plane {} ({when}): rows {}..={}, {} of {} points to measure, ~{}{}",
            plan.plane.id,
            rows.start,
            rows.end - 1,
            order.len() - at,
            order.len(),
            valleys::format::clock(plan.seconds_per_point * (order.len() - at) as f64),
            if at > 0 {
                format!(
                    ", continuing after {at} points (attempt {})",
                    progress.attempts
                )
            } else {
                String::new()
            }
        );
        if !measure_tile(dir, &plan, progress, &order[at..], stop)? {
            println!("tile {k} stopped; it continues where it stopped when requeued or continued");
            return Ok(false);
        }
        println!("tile {k} finished");
    }
    if let Some(plane) = merge(dir)? {
        println!(
            "every tile is measured: plane {} is in {}/{}.json and .csv",
            plane.id,
            dir.root.parent().unwrap_or(Path::new(".")).display(),
            plane.id
        );
    }
    Ok(true)
}

/// Measures the points `rest` of a tile on the plan's checkpoint; false when stopped.
fn measure_tile(
    dir: &TilesDir,
    plan: &TilePlan,
    progress: TileProgress,
    rest: &[(usize, usize)],
    stop: &AtomicBool,
) -> anyhow::Result<bool> {
    let device = DeviceRequest::parse(&plan.device)
        .and_then(runtime::choose_device)
        .bad_input()?;
    let checkpoint = plan.checkpoint.display().to_string();
    let saved = SavedRun::load(&dir.run_root(), &checkpoint, device.device).bad_input()?;
    let [_, d1, d2] = valleys::probe::runner::plane::path::read_directions(
        &saved.run,
        &plan.plane.id,
        &saved.sgd,
    )
    .map_err(BadInput::msg)?
    .ok_or_else(|| {
        BadInput::msg(format!(
            "plane {}: its directions (planes/{}.directions.f32) are gone; start the plane again",
            plan.plane.id, plan.plane.id
        ))
    })?;
    let k = progress.tile;
    let mut observer = TileObserver {
        dir,
        progress,
        stop,
        since: Instant::now(),
        saved: None,
        report: crate::cli::progress::Progress::start(&format!("tile {k}"), rest.len()),
        tty: std::io::stderr().is_terminal(),
    };
    let measured = valleys::probe::runner::plane::measure_points(
        &saved.context(),
        &plan.plane,
        (&d1, &d2),
        rest,
        &mut observer,
    );
    match measured {
        Ok(()) => {
            observer.save()?;
            Ok(true)
        }
        Err(ProbeError::Cancelled) => {
            observer.save()?;
            Ok(false)
        }
        Err(e) => Err(probe_error(e)),
    }
}
