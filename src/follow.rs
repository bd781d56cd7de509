//! A run directory followed as it grows: the event source behind `valleys watch RUN_DIR`
//! (a run written by another process: a headless run under nohup, tmux or a batch
//! scheduler). A follower reads run.json and tails metrics.jsonl, turning what it finds into
//! the same [`Event`]s a worker sends; following can stop and start again without touching
//! the run.

use crate::protocol::{Event, History, MetricRow, Outcome, RunInfo};
use crate::rundir::RunDir;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Reads the rows appended to metrics.jsonl since the last poll. A line is only consumed once
/// it is complete, so a row being written is never read half-way.
#[derive(Debug)]
pub struct MetricsFollower {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl MetricsFollower {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The complete rows appended since the previous call. If the file shrank (a resumed run
    /// rewrote it), reading starts again from the top; `true` then says so.
    pub fn poll(&mut self) -> std::io::Result<(Vec<MetricRow>, bool)> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        let restarted = len < self.offset;
        if restarted {
            self.offset = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut fresh = Vec::new();
        file.read_to_end(&mut fresh)?;
        self.offset += fresh.len() as u64;
        self.partial.extend_from_slice(&fresh);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok((Vec::new(), restarted));
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        let rows = String::from_utf8_lossy(&complete)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        Ok((rows, restarted))
    }
}

/// What run.json says about the run, if it has been written yet.
pub fn read_run_json(dir: &RunDir) -> Option<(RunInfo, Option<Outcome>)> {
    let value = dir.run_info();
    let info: RunInfo = serde_json::from_value(value.get("info")?.clone()).ok()?;
    let outcome = value
        .get("outcome")
        .and_then(|o| serde_json::from_value(o.clone()).ok());
    Some((info, outcome))
}

/// Starts a thread that follows `dir` every `period` and sends what it finds, until `done` is
/// raised or the receiver is dropped.
pub fn follow(
    dir: RunDir,
    period: Duration,
    done: Arc<AtomicBool>,
) -> tokio::sync::mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut follower = MetricsFollower::new(dir.metrics_path());
        let mut announced = false;
        let mut finished = false;
        let mut probes_seen = std::collections::HashSet::new();
        // The length of each plane's path as last sent: the path grows while the run trains.
        let mut plane_paths = std::collections::HashMap::<String, usize>::new();
        let mut track_seen = 0;
        while !done.load(Ordering::Relaxed) && !tx.is_closed() {
            let status = read_run_json(&dir);
            if !announced && let Some((info, _)) = &status {
                announced = tx.send(Event::Ready(Box::new(info.clone()))).is_ok();
            }
            match follower.poll() {
                Ok((rows, restarted)) => {
                    if restarted {
                        let _ = tx.send(Event::Log(
                            "metrics.jsonl was rewritten; reading it again".into(),
                        ));
                    }
                    for row in rows {
                        let _ = tx.send(Event::Metric(row));
                    }
                }
                Err(e) => {
                    let _ = tx.send(Event::Log(format!("cannot read metrics.jsonl: {e}")));
                }
            }
            // Probes written by `valleys probe` (or an earlier dashboard) show in the probe view.
            let (stored, unreadable) = crate::probe::store::read_all(&dir);
            for result in stored {
                if probes_seen.insert(result.id.clone()) {
                    let _ = tx.send(Event::ProbeFinished(Box::new(result)));
                }
            }
            let say_unreadable =
                |unreadable: Vec<String>, seen: &mut std::collections::HashSet<String>| {
                    for problem in unreadable {
                        if seen.insert(problem.clone()) {
                            let _ = tx.send(Event::Log(format!("left out: {problem}")));
                        }
                    }
                };
            say_unreadable(unreadable, &mut probes_seen);
            // So do batches and ablations, with the arms' curves.
            let (batches, unreadable) = crate::probe::store::read_batches(&dir);
            say_unreadable(unreadable, &mut probes_seen);
            for batch in batches {
                if probes_seen.insert(format!("batch {}", batch.id)) {
                    let _ = tx.send(Event::ProbeBatchFinished(Box::new(batch)));
                }
            }
            let (ablations, unreadable) = crate::ablation::read_all(&dir);
            say_unreadable(unreadable, &mut probes_seen);
            let new: Vec<_> = ablations
                .into_iter()
                .filter(|a| probes_seen.insert(format!("ablation {}", a.id)))
                .collect();
            for (result, probes) in with_curves(&dir, new) {
                let _ = tx.send(Event::AblationFinished {
                    result: Box::new(result),
                    probes,
                });
            }
            // And planes from `valleys plane`.
            let (planes, unreadable) = crate::probe::store::read_planes(&dir);
            say_unreadable(unreadable, &mut probes_seen);
            for plane in planes {
                let known = plane_paths.insert(plane.id.clone(), plane.path.len());
                if probes_seen.insert(format!("plane {}", plane.id)) {
                    let _ = tx.send(Event::PlaneFinished(Box::new(plane)));
                } else if known != Some(plane.path.len()) {
                    let _ = tx.send(Event::PlanePath {
                        id: plane.id,
                        path: plane.path,
                    });
                }
            }
            // Curvature jobs, and the curvature tracked at epoch ends.
            let (curvature, unreadable) = crate::curvature::store::read_all(&dir);
            say_unreadable(unreadable, &mut probes_seen);
            for result in curvature {
                if probes_seen.insert(format!("curvature {}", result.id)) {
                    let _ = tx.send(Event::CurvatureFinished(Box::new(result)));
                }
            }
            // Connections from `valleys connect`.
            let (connections, unreadable) = crate::probe::store::read_connections(&dir);
            say_unreadable(unreadable, &mut probes_seen);
            for result in connections {
                if probes_seen.insert(format!("connection {}", result.id)) {
                    let _ = tx.send(Event::ConnectFinished(Box::new(result)));
                }
            }
            let (tracked, unreadable) = crate::curvature::store::read_track(&dir);
            say_unreadable(unreadable, &mut probes_seen);
            // A resumed run rewrites the file shorter; the dashboard replaces rows it has.
            track_seen = track_seen.min(tracked.len());
            if tracked.len() > track_seen {
                let _ = tx.send(Event::CurvatureTracked(tracked[track_seen..].to_vec()));
                track_seen = tracked.len();
            }
            if !finished && let Some((_, Some(outcome))) = status {
                finished = true;
                let _ = tx.send(Event::Finished(outcome));
            }
            std::thread::sleep(period);
        }
    });
    rx
}

/// What `run` has stored: its metrics, probes, batches, ablations (with their arms'
/// curves) and planes, for a dashboard that opens on a resumed run. Unreadable files are left out here;
/// `valleys report` names them.
pub fn history(run: &RunDir) -> History {
    let (probes, mut unreadable) = crate::probe::store::read_all(run);
    let (batches, more) = crate::probe::store::read_batches(run);
    unreadable.extend(more);
    let (ablations, more) = crate::ablation::read_all(run);
    unreadable.extend(more);
    let (planes, more) = crate::probe::store::read_planes(run);
    unreadable.extend(more);
    let (curvature, more) = crate::curvature::store::read_all(run);
    unreadable.extend(more);
    let (curvature_track, more) = crate::curvature::store::read_track(run);
    unreadable.extend(more);
    let (connections, more) = crate::probe::store::read_connections(run);
    unreadable.extend(more);
    let mut named = std::collections::HashSet::new();
    unreadable.retain(|problem| named.insert(problem.clone()));
    History {
        rows: run.read_metrics().unwrap_or_default(),
        probes,
        batches,
        ablations: with_curves(run, ablations),
        planes,
        curvature,
        curvature_track,
        connections,
        unreadable,
    }
}

/// Each ablation with the curves of its arms' probes (none for a summary, whose many probes
/// stay on disk).
fn with_curves(
    run: &RunDir,
    ablations: Vec<crate::ablation::AblationResult>,
) -> Vec<(
    crate::ablation::AblationResult,
    Vec<crate::probe::ProbeResult>,
)> {
    // The probes of each run the arms refer to (this one, its twin), read once.
    let mut stored: std::collections::HashMap<String, Vec<crate::probe::ProbeResult>> =
        std::collections::HashMap::new();
    ablations
        .into_iter()
        .map(|a| {
            let mut curves = Vec::new();
            if a.kind != crate::ablation::AblationKind::Summary {
                for arm in &a.arms {
                    let probes = stored.entry(arm.run.clone()).or_insert_with(|| {
                        RunDir::open(&run.root().join(&arm.run))
                            .map(|r| crate::probe::store::read_all(&r).0)
                            .unwrap_or_default()
                    });
                    curves.extend(
                        arm.probes
                            .iter()
                            .filter_map(|id| probes.iter().find(|p| &p.id == id).cloned()),
                    );
                }
            }
            (a, curves)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;

    fn row(epoch: u32) -> MetricRow {
        crate::protocol::sgd_test_row(epoch, 10)
    }

    fn line(epoch: u32) -> String {
        format!("{}\n", serde_json::to_string(&row(epoch)).unwrap())
    }

    fn append(path: &std::path::Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn the_follower_reads_only_complete_new_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("metrics.jsonl");
        let mut follower = MetricsFollower::new(path.clone());
        assert_eq!(follower.poll().unwrap(), (vec![], false), "no file yet");
        append(&path, &line(0));
        let second = line(1);
        let (head, tail) = second.split_at(20);
        append(&path, head);
        assert_eq!(
            follower.poll().unwrap().0,
            vec![row(0)],
            "the half-written row waits"
        );
        append(&path, tail);
        append(&path, &line(2));
        assert_eq!(follower.poll().unwrap().0, vec![row(1), row(2)]);
        assert_eq!(follower.poll().unwrap().0, vec![]);
        // A rewritten (shorter) file is read again from the top.
        std::fs::write(&path, line(5)).unwrap();
        assert_eq!(follower.poll().unwrap(), (vec![row(5)], true));
    }

    #[test]
    fn watching_a_growing_run_directory_yields_the_workers_events() {
        let tmp = tempfile::tempdir().unwrap();
        let yaml = "name: w\ndata: {dataset: fashion-mnist}\nmodel: {arch: mlp}\ntrain: {epochs: 3, batch_size: 8, lr: 0.1}\n";
        let exp = crate::config::Experiment::from_yaml(yaml, "w.yaml", &[]).unwrap();
        let dir = RunDir::create(&tmp.path().join("run"), &exp).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let mut events = follow(dir.clone(), Duration::from_millis(10), done.clone());

        let info = RunInfo {
            experiment: "w".into(),
            model: "mlp-256".into(),
            data: "embedded".into(),
            device: "cpu".into(),
            device_reason: "test".into(),
            run_dir: dir.root().to_owned(),
            epochs: 3,
            batches_per_epoch: 10,
            swa_start_epoch: None,
            program_version: "0".into(),
            seed: 1,
            probe: Default::default(),
            ablation_probe: Default::default(),
            ablation_directions: 5,
            curvature: Default::default(),
            started_unix_s: None,
        };
        dir.write_run_info(&serde_json::json!({ "info": info }))
            .unwrap();
        let recv = |events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                if let Ok(e) = events.try_recv() {
                    return e;
                }
                assert!(std::time::Instant::now() < deadline, "no event within 5 s");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        assert_eq!(recv(&mut events), Event::Ready(Box::new(info.clone())));
        for epoch in 0..3 {
            append(&dir.metrics_path(), &line(epoch));
            assert_eq!(recv(&mut events), Event::Metric(row(epoch)));
        }
        dir.write_run_info(
            &serde_json::json!({ "info": info, "outcome": { "outcome": "completed" } }),
        )
        .unwrap();
        assert_eq!(recv(&mut events), Event::Finished(Outcome::Completed));
        done.store(true, Ordering::Relaxed);
    }
}
