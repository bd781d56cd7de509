//! The local executor of a tiled plane: its unfinished tiles as child processes here,
//! `--jobs` at once.

use super::*;

/// Runs the unfinished tiles as child processes, `jobs` at once; false when stopped by a
/// signal (the children keep what they measured).
pub(super) fn local(
    dir: &TilesDir,
    plan: &TilePlan,
    jobs: Option<usize>,
    stop: &AtomicBool,
) -> anyhow::Result<bool> {
    let gpus = if tch::Cuda::is_available() {
        tch::Cuda::device_count().max(0) as usize
    } else {
        0
    };
    let jobs = jobs.unwrap_or(gpus.max(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // A thread count set for valleys is the tiles' too: it is what makes a tile's numbers
    // those of the plane measured in one go.
    let threads =
        std::env::var("OMP_NUM_THREADS").unwrap_or_else(|_| (cores / jobs).max(1).to_string());
    let states = tiles::states(plan, &dir.read_all_progress(plan.tiles));
    let mut pending: std::collections::VecDeque<usize> = states
        .iter()
        .filter(|s| !s.finished())
        .map(|s| s.tile)
        .collect();
    println!(
        "{} of {} tiles to measure, {jobs} at once ({threads} CPU threads each)",
        pending.len(),
        plan.tiles
    );
    let exe = std::env::current_exe()?;
    let mut running: Vec<(usize, usize, Child)> = Vec::new();
    let mut stopping = false;
    loop {
        if stop.load(Ordering::Relaxed) && !stopping {
            stopping = true;
            println!("stopping: every running tile keeps what it measured");
            for (_, _, child) in &running {
                valleys::platform::terminate(child.id());
            }
        }
        while !stopping && running.len() < jobs {
            let Some(k) = pending.pop_front() else { break };
            let slot = (0..jobs)
                .find(|s| !running.iter().any(|r| r.1 == *s))
                .unwrap_or(0);
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.log_path(k))?;
            let mut command = std::process::Command::new(&exe);
            command
                .arg("plane")
                .arg(&dir.root)
                .arg("--tile")
                .arg(k.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .env("OMP_NUM_THREADS", &threads);
            if gpus > 0 {
                command.env("CUDA_VISIBLE_DEVICES", (slot % gpus).to_string());
            }
            valleys::platform::stop_with_parent(&mut command);
            let child = command
                .spawn()
                .with_context(|| format!("starting tile {k}"))?;
            println!("started tile {k}");
            running.push((k, slot, child));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut i = 0;
        while i < running.len() {
            let Some(status) = running[i].2.try_wait()? else {
                i += 1;
                continue;
            };
            let (k, _, _) = running.remove(i);
            match status.code() {
                Some(0) => println!("finished tile {k}"),
                code => println!(
                    "tile {k} ended ({}); its output is in {}",
                    code.map_or("killed".into(), |c| format!("exit {c}")),
                    dir.log_path(k).display()
                ),
            }
        }
    }
    Ok(!stopping)
}
