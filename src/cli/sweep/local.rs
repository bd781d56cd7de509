//! The local executor (the variants as child processes on this machine, `--jobs` at once)
//! and the hidden task that trains, probes and ablates one variant, under either executor.

use super::*;

/// GPUs this process sees.
fn gpus() -> usize {
    if tch::Cuda::is_available() {
        tch::Cuda::device_count().max(0) as usize
    } else {
        0
    }
}

/// Runs the variants that are not done as child processes, `jobs` at once; on a signal the
/// children are told to stop (they checkpoint) and the sweep can be continued later.
pub(super) fn local(dir: &SweepDir, jobs: Option<usize>) -> anyhow::Result<ExitCode> {
    let stop = signal_flag()?;
    let gpus = gpus();
    let jobs = jobs.unwrap_or(gpus.max(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / jobs).max(1);
    let mut record = dir.jobs_for("local").bad_input()?;
    record.pid = Some(std::process::id());
    record.process = valleys::process::ProcessIdentity::this_process();
    dir.write_jobs(&record)?;
    let variants = dir.variants().bad_input()?;
    let mut pending = pending_variants(dir, &variants);
    println!(
        "{} variants to train, {jobs} at once ({}; {threads} CPU threads each)",
        pending.len(),
        if gpus > 0 {
            format!("{gpus} GPUs")
        } else {
            "CPU".into()
        }
    );
    let task = Task {
        dir,
        exe: std::env::current_exe()?,
        threads,
        gpus,
    };
    // Slots: which GPU each running child has.
    let mut running: Vec<Running> = Vec::new();
    let mut failed = 0;
    let mut stopping = false;
    loop {
        if stop.load(Ordering::Relaxed) && !stopping {
            stopping = true;
            println!("stopping: every running variant writes a checkpoint");
            for r in &running {
                valleys::platform::terminate(r.child.id());
            }
        }
        while !stopping && running.len() < jobs {
            let Some(v) = pending.pop_front() else { break };
            let slot = (0..jobs)
                .find(|s| !running.iter().any(|r| r.slot == *s))
                .unwrap_or(0);
            running.push(task.start(v, slot)?);
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        failed += reap(dir, &mut running, stopping)?;
    }
    if stopping {
        println!(
            "stopped; continue with: valleys sweep {}",
            dir.root.display()
        );
        return Ok(ExitCode::from(EXIT_STOPPED));
    }
    print_status(dir)?;
    if failed > 0 {
        return Ok(ExitCode::from(crate::cli::EXIT_FAILURE));
    }
    Ok(ExitCode::from(super::pairs::connect_pairs(dir, &stop)?))
}

/// The variants still to train, in order; those done are counted, those another process
/// trains are named and left to it.
fn pending_variants<'a>(
    dir: &SweepDir,
    variants: &'a [Variant],
) -> std::collections::VecDeque<&'a Variant> {
    let mut pending = std::collections::VecDeque::new();
    let mut skipped = 0;
    for v in variants {
        match dir.state(v) {
            s if s.is_final() => skipped += 1,
            VariantState::Running => println!(
                "skipping {}: another process trains it (its run directory is locked)",
                v.id
            ),
            _ => pending.push_back(v),
        }
    }
    if skipped > 0 {
        println!("{skipped} variants already done");
    }
    pending
}

/// How the executor starts a variant's task.
struct Task<'a> {
    dir: &'a SweepDir,
    exe: std::path::PathBuf,
    threads: usize,
    gpus: usize,
}

/// A variant's task running as a child process.
struct Running<'a> {
    slot: usize,
    variant: &'a Variant,
    child: Child,
    started: Instant,
}

impl Task<'_> {
    /// Starts `v`'s task in `slot` (its GPU, if there are GPUs), its output into its log.
    fn start<'v>(&self, v: &'v Variant, slot: usize) -> anyhow::Result<Running<'v>> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.log_path(v))?;
        let mut command = std::process::Command::new(&self.exe);
        command
            .arg("sweep")
            .arg(&self.dir.root)
            .arg("--task")
            .arg(v.index.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env("OMP_NUM_THREADS", self.threads.to_string());
        if self.gpus > 0 {
            command.env("CUDA_VISIBLE_DEVICES", (slot % self.gpus).to_string());
        }
        // A task outlives no executor: when this process dies, however it dies, its tasks get
        // SIGTERM and stop with a checkpoint, and the sweep can be continued.
        valleys::platform::stop_with_parent(&mut command);
        let child = command
            .spawn()
            .with_context(|| format!("starting variant {}", v.id))?;
        println!("started {}", v.id);
        Ok(Running {
            slot,
            variant: v,
            child,
            started: Instant::now(),
        })
    }
}

/// Takes the tasks that have ended out of `running`, saying how each ended; a failed one's
/// reason (the last line of its log) goes to stderr too, so that it is not only in the log.
/// Returns how many failed (a task stopped by the executor's own stop is no failure).
fn reap(dir: &SweepDir, running: &mut Vec<Running>, stopping: bool) -> anyhow::Result<usize> {
    let mut failed = 0;
    let mut i = 0;
    while i < running.len() {
        let Some(status) = running[i].child.try_wait()? else {
            i += 1;
            continue;
        };
        let r = running.remove(i);
        let v = r.variant;
        let took = valleys::format::clock(r.started.elapsed().as_secs_f64());
        let code = status.code();
        if code == Some(0) {
            println!("finished {} in {took}", v.id);
            continue;
        }
        failed += usize::from(!stopping);
        let word = match code {
            Some(c) if c == i32::from(EXIT_STOPPED) => "stopped".to_owned(),
            Some(c) => format!("exit {c}"),
            None => "killed".to_owned(),
        };
        println!(
            "{} ended ({word}) after {took}; its output is in {}",
            v.id,
            dir.log_path(v).display()
        );
        if !stopping && code != Some(i32::from(EXIT_STOPPED)) {
            let reason = std::fs::read_to_string(dir.log_path(v))
                .ok()
                .and_then(|log| {
                    log.lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "it said nothing".into());
            eprintln!("valleys: variant {} failed: {}", v.id, reason.trim());
        }
    }
    Ok(failed)
}

/// Trains variant `index` (resuming it when its run has a checkpoint), then probes it as the
/// sweep asks. A task of a variant that is done does nothing.
pub(super) fn task(dir: &SweepDir, index: usize) -> anyhow::Result<ExitCode> {
    let variants = dir.variants().bad_input()?;
    let Some(v) = variants.iter().find(|v| v.index == index) else {
        valleys::bad_input!(
            "--task {index}: the sweep has variants 0..{}",
            variants.len().saturating_sub(1)
        );
    };
    let run_path = dir.run_path(v);
    let state = dir.state(v);
    println!(
        "variant {} ({}): {}",
        v.id,
        jiff::Zoned::now().strftime("%Y-%m-%d %H:%M:%S"),
        state.as_str()
    );
    if state.is_final() {
        return Ok(ExitCode::SUCCESS);
    }
    if state != VariantState::Trained {
        let argv: Vec<String> = if run_path.join("checkpoints/latest.safetensors").is_file() {
            vec![
                "valleys".into(),
                "run".into(),
                "--resume".into(),
                run_path.display().to_string(),
                "--headless".into(),
            ]
        } else {
            // A run stopped before its first checkpoint holds nothing to continue.
            if run_path.exists() {
                std::fs::remove_dir_all(&run_path)
                    .with_context(|| format!("removing {}", run_path.display()))?;
            }
            vec![
                "valleys".into(),
                "run".into(),
                dir.experiment_path(v).display().to_string(),
                "--out".into(),
                run_path.display().to_string(),
                "--headless".into(),
            ]
        };
        let cli = crate::cli::Cli::try_parse_from(&argv).context("the task's run command")?;
        let code = crate::cli::dispatch(cli)?;
        let run = RunDir::open(&run_path).bad_input()?;
        if run.outcome() != Some(valleys::protocol::Outcome::Completed) {
            return Ok(code);
        }
    }
    let (probe, plane, curvature) = (dir.probe(), dir.plane(), dir.curvature());
    let after = valleys::sweep::AfterTraining {
        probe: probe.is_some(),
        plane: plane.is_some(),
        curvature: curvature.is_some(),
    };
    let run = RunDir::open(&run_path).bad_input()?;
    if !after.needs_any(&run) {
        return Ok(ExitCode::SUCCESS);
    }
    let _lock = run.lock().bad_input()?;
    let experiment = Experiment::load(&run.config_path(), &[]).bad_input()?;
    let device = DeviceRequest::parse(&experiment.device)
        .and_then(runtime::choose_device)
        .bad_input()?;
    let saved = SavedRun::load(&run_path, "final", device.device).bad_input()?;
    let stop = signal_flag()?;
    // Each is measured once: a task that was stopped after the probes measures the rest.
    if let Some(probe) = probe.filter(|_| after.needs_probe(&saved.run)) {
        let mut console = crate::cli::progress::Console::new(&stop);
        let summary = match runner::run_batch(
            &saved.context(),
            &probe.spec,
            probe.directions,
            Some(&saved.run),
            &mut console,
        ) {
            Ok(s) => s,
            Err(runner::ProbeError::Cancelled) => return Ok(ExitCode::from(EXIT_STOPPED)),
            Err(e) => return Err(e.into()),
        };
        crate::cli::probe::print_batch(&mut std::io::stdout().lock(), &summary)?;
    }
    if let Some(spec) = curvature.filter(|_| after.needs_curvature(&saved.run)) {
        match crate::cli::curvature::measure(&saved, &spec, &stop) {
            Ok(result) => println!("{}", valleys::curvature::one_line(&result)),
            Err(runner::ProbeError::Cancelled) => return Ok(ExitCode::from(EXIT_STOPPED)),
            Err(e) => return Err(e.into()),
        }
    }
    // The plane last: a tiled one may leave the variant to its tiles' own jobs.
    if let Some(spec) = plane.filter(|_| after.needs_plane(&saved.run)) {
        if let Some(tiles) = dir.plane_tiles() {
            let executor = match dir.jobs() {
                Some(j) if j.executor == "slurm" => Executor::Slurm,
                _ => Executor::Local,
            };
            use crate::cli::plane::tiles::{Launched, in_sweep};
            match in_sweep(&saved, &spec, tiles, executor, &dir.slurm(), &stop)? {
                Launched::Merged(result) => {
                    println!("{}", valleys::probe::plane::one_line(&result));
                }
                // The variant is done once its tiles merge the plane; what follows it waits.
                Launched::Submitted => return Ok(ExitCode::SUCCESS),
                Launched::Stopped => return Ok(ExitCode::from(EXIT_STOPPED)),
            }
        } else {
            match crate::cli::plane::measure(&saved, &spec, &stop) {
                Ok(result) => println!("{}", valleys::probe::plane::one_line(&result)),
                Err(runner::ProbeError::Cancelled) => return Ok(ExitCode::from(EXIT_STOPPED)),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
