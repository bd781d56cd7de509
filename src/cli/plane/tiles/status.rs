//! `valleys plane --status` and `--cancel` of tiled planes.

use super::*;

/// Where each tile of the tiled planes at `target` (a tiles directory, or a run directory:
/// all of its tiled planes) stands.
pub(super) fn status(target: &Path) -> anyhow::Result<()> {
    let dirs: Vec<TilesDir> = if TilesDir::is_tiles_dir(target) {
        vec![TilesDir::open(target).bad_input()?]
    } else {
        let run = RunDir::open(target).bad_input()?;
        let found = TilesDir::all(&run);
        if found.is_empty() {
            println!("{}: no tiled planes", target.display());
        }
        found
    };
    for dir in dirs {
        print_status(&dir)?;
    }
    Ok(())
}

fn print_status(dir: &TilesDir) -> anyhow::Result<()> {
    let plan = dir.read_plan().bad_input()?;
    let progress = dir.read_all_progress(plan.tiles);
    let states = tiles::states(&plan, &progress);
    let queued = plan.job_id.as_deref().map(slurm::queue).unwrap_or_default();
    let run = RunDir::open(&dir.run_root()).bad_input()?;
    let merged = store::plane_dir(&run)
        .join(format!("{}.json", plan.plane.id))
        .is_file();
    let how = match (&plan.job_id, plan.pid) {
        (Some(id), _) if plan.executor == "slurm" => format!("Slurm job {id}"),
        (_, Some(pid)) => format!("local executor (pid {pid})"),
        _ => "not launched".into(),
    };
    let done: usize = states.iter().map(|s| s.done).sum();
    let total: usize = states.iter().map(|s| s.total).sum();
    println!(
        "plane {} · {} tiles · {how} · {} finished · {done} of {total} points{}",
        plan.plane.id,
        plan.tiles,
        states.iter().filter(|s| s.finished()).count(),
        if merged { " · merged" } else { "" }
    );
    println!("tile  rows      points   state      attempts  seconds");
    for s in &states {
        let rows = tiles::rows(plan.plane.ys.len(), plan.tiles, s.tile);
        let p = progress[s.tile].as_ref();
        let state = match queued.iter().find(|(t, _)| *t == s.tile) {
            Some((_, slurm_state)) if !s.finished() => slurm_state.to_lowercase(),
            _ if s.finished() => "finished".into(),
            _ if s.done > 0 => "stopped".into(),
            _ => "pending".into(),
        };
        println!(
            "{:>4}  {:<8}  {:>6}  {:<10} {:>8}  {:>7.1}",
            s.tile,
            format!("{}..={}", rows.start, rows.end - 1),
            format!("{}/{}", s.done, s.total),
            state,
            p.map_or(0, |p| p.attempts),
            p.map_or(0.0, |p| p.seconds)
        );
    }
    Ok(())
}

/// Stops a tiled plane's jobs; the tiles keep what they measured.
pub(super) fn cancel(dir: &TilesDir) -> anyhow::Result<()> {
    let plan = dir.read_plan().bad_input()?;
    match (plan.executor.as_str(), &plan.job_id, plan.pid) {
        ("slurm", Some(id), _) => {
            slurm::cancel(id).map_err(BadInput::msg)?;
            println!("cancelled Slurm job {id}; the tiles continue when the plane is continued");
        }
        (_, _, Some(pid)) => println!(
            "{}",
            valleys::process::cancel_executor(
                pid,
                plan.process.as_ref(),
                &dir.root.join("plan.json"),
                "its tiles keep what they measured"
            )
            .map_err(BadInput::msg)?
        ),
        _ => valleys::bad_input!("{}: the plan names no job to cancel", dir.root.display()),
    }
    Ok(())
}
