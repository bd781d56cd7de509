//! What worker events do to the dashboard's state.

use super::*;

impl App {
    /// Applies a worker event.
    pub fn handle_event(&mut self, event: Event) {
        match event {
            Event::ProbeStarted { .. }
            | Event::ProbePoint { .. }
            | Event::ProbeFinished(_)
            | Event::ProbeBatchFinished(_)
            | Event::ProbeFailed { .. }
            | Event::ConnectStarted { .. }
            | Event::ConnectFinished(_)
            | Event::AblationFinished { .. } => self.job_event(event),
            Event::PlaneStarted(_)
            | Event::PlanePoint { .. }
            | Event::PlaneFinished(_)
            | Event::PlanePath { .. } => self.plane_event(event),
            Event::CurvatureStarted { .. }
            | Event::CurvatureProgress { .. }
            | Event::CurvatureFinished(_)
            | Event::CurvatureTracked(_) => self.curvature_event(event),
            other => self.run_event(other),
        }
    }

    /// Events of the run itself: its start, progress, metrics, checkpoints, log, pauses, end,
    /// history and twin.
    fn run_event(&mut self, event: Event) {
        match event {
            Event::Ready(info) => {
                self.log(format!(
                    "{} on {} ({})",
                    info.model, info.device, info.device_reason
                ));
                self.form = ProbeForm::new(&info.probe, info.seed, info.device.starts_with("cuda"));
                self.plane_form = PlaneForm::new(&info.probe, info.seed);
                self.curvature_form = CurvatureForm::new(&info.curvature);
                self.info = Some(*info);
                if self.state == RunState::Starting {
                    self.state = RunState::Running;
                }
            }
            Event::Progress(p) => {
                self.elapsed_s = p.elapsed_s;
                let point = Point {
                    epoch: f64::from(p.epoch - 1)
                        + f64::from(p.batch) / f64::from(p.batches_per_epoch.max(1)),
                    step: p.step as f64,
                    time: p.elapsed_s,
                    loss: p.recent_loss,
                    acc: p.recent_acc,
                    lr: p.lr,
                };
                self.per_step.push(point);
                self.per_step_range.push(point, p.recent_loss);
                self.progress = Some(p);
            }
            Event::Metric(row) => self.add_metric(row),
            Event::CheckpointWritten { path, epoch, step } => {
                self.last_checkpoint = Some((epoch, step));
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                self.log(format!(
                    "checkpoint {} (epoch {epoch}, step {step})",
                    name.unwrap_or_default()
                ));
            }
            Event::Log(message) => self.log(message),
            Event::Phase(Some(what)) => self.phase = Some((what, self.clock_s)),
            Event::Phase(None) => {
                if let Some((what, began)) = self.phase.take() {
                    let seconds = self.clock_s - began;
                    // Only steps long enough to notice are worth a line.
                    if seconds >= 1.0 {
                        self.log(format!("{what}: {seconds:.0} s"));
                    }
                }
            }
            Event::Paused => {
                if self.state == RunState::Running {
                    self.state = RunState::Paused;
                }
                self.log("paused");
            }
            Event::Resumed => {
                if self.state == RunState::Paused {
                    self.state = RunState::Running;
                }
                self.log("resumed");
            }
            Event::Finished(outcome) => self.finish(outcome),
            Event::History(history) => {
                let h = *history;
                let (epochs, probes, ablations) = (
                    h.rows.iter().map(|r| r.epoch).max().unwrap_or(0),
                    h.probes.len(),
                    h.ablations.len(),
                );
                for row in h.rows {
                    self.add_metric(row);
                }
                self.probes.results.extend(h.probes);
                let excess = self.probes.results.len().saturating_sub(PROBES_KEPT);
                self.probes.results.drain(..excess);
                self.probes.connections.extend(h.connections);
                let excess = self.probes.connections.len().saturating_sub(PROBES_KEPT);
                self.probes.connections.drain(..excess);
                self.probes.selected = self.probes.results.len().saturating_sub(1);
                self.probes.batches.extend(h.batches);
                self.ablations.extend(h.ablations);
                self.planes.results.extend(h.planes);
                self.planes.selected = self.planes.results.len().saturating_sub(1);
                self.curvature.results.extend(h.curvature);
                self.curvature.selected = self.curvature.results.len().saturating_sub(1);
                self.curvature.add_track(h.curvature_track);
                self.log(format!(
                    "history: {epochs} epochs of metrics, {probes} probes, {ablations} ablations"
                ));
                for problem in h.unreadable {
                    self.log(format!("left out: {problem}"));
                }
            }
            Event::Twin(event) => {
                if let Event::Finished(outcome) = &*event {
                    self.log(format!("no-BN twin: {}", outcome_word(outcome)));
                }
                let theme = self.theme;
                let twin = self
                    .twin
                    .get_or_insert_with(|| Box::new(App::new(theme, true)));
                twin.handle_event(*event);
            }
            _ => {}
        }
    }

    /// Events of a plane measured on the live weights: its start, each point, its end.
    fn plane_event(&mut self, event: Event) {
        match event {
            Event::PlaneStarted(header) => {
                self.log(format!(
                    "plane {}: {}x{} points · ~{:.2} s a point ≈ {}, coarse to fine",
                    header.id,
                    header.xs.len(),
                    header.ys.len(),
                    header.seconds_per_point,
                    crate::format::clock(header.seconds_per_point * header.total() as f64)
                ));
                self.probes.failure = None;
                self.planes.cursor = None;
                self.planes.live = Some(LivePlane {
                    points: vec![None; header.total()],
                    header: *header,
                    first_point_s: None,
                });
            }
            Event::PlanePoint { id, i, j, point } => {
                if let Some(live) = self.planes.live.as_mut().filter(|l| l.header.id == id)
                    && i < live.header.xs.len()
                    && let Some(slot) = live.points.get_mut(j * live.header.xs.len() + i)
                {
                    *slot = Some(point);
                    live.first_point_s.get_or_insert(self.clock_s);
                }
            }
            Event::PlanePath { id, path } => {
                if let Some(plane) = self.planes.results.iter_mut().find(|p| p.id == id) {
                    plane.path = path;
                }
            }
            Event::PlaneFinished(result) => {
                // One written by `valleys plane` beside a watched run ends no job here.
                if self.planes.live.take().is_some() {
                    self.job_ended();
                }
                self.log(crate::probe::plane::one_line(&result));
                self.planes.results.push(*result);
                self.planes.selected = self.planes.results.len() - 1;
            }
            _ => {}
        }
    }

    /// Events of a curvature measurement: a job from the form, or the tracking at an epoch end
    /// (which is no job of the dashboard's).
    fn curvature_event(&mut self, event: Event) {
        match event {
            Event::CurvatureStarted {
                label,
                plan,
                products,
                expected_s,
            } => {
                self.log(format!("{label}: {plan}"));
                self.probes.failure = None;
                self.curvature.live = Some(LiveCurvature {
                    label,
                    plan,
                    expected_s,
                    done: 0,
                    planned: products,
                    what: String::new(),
                    started_s: self.clock_s,
                });
            }
            Event::CurvatureProgress {
                done,
                planned,
                what,
            } => {
                if let Some(live) = self.curvature.live.as_mut() {
                    (live.done, live.planned, live.what) = (done, planned, what);
                }
            }
            Event::CurvatureFinished(result) => {
                // One written by `valleys curvature` beside a watched run ends no job here.
                if self.curvature.live.take().is_some()
                    && self
                        .jobs
                        .running
                        .as_ref()
                        .is_some_and(|j| j.kind == JobKind::Curvature)
                {
                    self.job_ended();
                }
                self.log(crate::curvature::one_line(&result));
                self.curvature.results.push(*result);
                self.curvature.selected = self.curvature.results.len() - 1;
            }
            Event::CurvatureTracked(rows) => {
                self.curvature.live = None;
                if !rows.is_empty() {
                    self.log(crate::curvature::track::one_line(&rows));
                }
                self.curvature.add_track(rows);
            }
            _ => {}
        }
    }

    /// Events of a job on the live weights: probes, batches, planes and ablations.
    fn job_event(&mut self, event: Event) {
        match event {
            Event::ProbeStarted {
                id,
                summary,
                grid,
                seconds_per_point,
            } => {
                self.log(format!(
                    "probe {id}: {summary} · ~{seconds_per_point:.2} s a point ≈ {}",
                    crate::format::clock(seconds_per_point * grid.len() as f64)
                ));
                self.probes.failure = None;
                self.probes.live = Some(LiveProbe {
                    points: vec![None; grid.len()],
                    id,
                    summary,
                    grid,
                });
            }
            Event::ProbePoint { id, index, point } => {
                if let Some(live) = self.probes.live.as_mut().filter(|l| l.id == id)
                    && let Some(slot) = live.points.get_mut(index)
                {
                    *slot = Some(point);
                }
            }
            Event::ProbeFinished(result) => {
                self.probes.live = None;
                if let Some(job) = self.jobs.running.as_mut() {
                    job.probes_done += 1;
                    if job.kind == JobKind::Probe {
                        self.job_ended();
                    }
                }
                self.log(crate::probe::one_line(&result));
                self.probes.results.push(*result);
                if self.probes.results.len() > PROBES_KEPT {
                    self.probes.results.remove(0);
                }
                self.probes.selected = self.probes.results.len() - 1;
            }
            Event::ProbeBatchFinished(summary) => {
                self.probes.live = None;
                self.job_ended();
                for c in &summary.centres {
                    self.log(format!(
                        "batch {}: {} centre, {} (c >= {})",
                        summary.id,
                        c.centre,
                        c.stats.describe(),
                        summary.threshold
                    ));
                }
                for comparison in &summary.comparisons {
                    self.log(format!("batch {}: {}", summary.id, comparison.describe()));
                }
                self.probes.batches.push(*summary);
            }
            Event::ConnectStarted { label } => {
                self.probes.failure = None;
                self.log(format!("connecting {label}"));
                self.probes.connecting = Some((label, self.clock_s));
            }
            Event::ConnectFinished(result) => {
                if self.probes.connecting.take().is_some()
                    && self
                        .jobs
                        .running
                        .as_ref()
                        .is_some_and(|j| j.kind == JobKind::Connect)
                {
                    self.job_ended();
                }
                self.log(crate::probe::connect::one_line(&result));
                self.probes.connections.push(*result);
                if self.probes.connections.len() > PROBES_KEPT {
                    self.probes.connections.remove(0);
                }
                self.probes.selected = self.probes.entries() - 1;
            }
            Event::ProbeFailed { message } => {
                self.probes.connecting = None;
                self.probes.live = None;
                self.planes.live = None;
                self.curvature.live = None;
                self.job_ended();
                self.probes.failure = Some(message.clone());
                self.log(format!("error: {message}"));
            }
            Event::AblationFinished { result, probes } => {
                self.probes.live = None;
                self.job_ended();
                for line in crate::ablation::table(&result) {
                    self.log(format!("ablation {}: {line}", result.id));
                }
                self.ablations.push((*result, probes));
            }
            _ => {}
        }
    }

    /// The running job is over: the next one waiting starts.
    fn job_ended(&mut self) {
        self.jobs.running = self.jobs.queued.pop_front().map(|mut job| {
            job.started_s = Some(self.clock_s);
            job
        });
    }

    fn finish(&mut self, outcome: Outcome) {
        // A tracking measurement cut short by the stop ends with the run; a job goes on.
        if !self
            .jobs
            .running
            .as_ref()
            .is_some_and(|j| j.kind == JobKind::Curvature)
        {
            self.curvature.live = None;
        }
        self.state = match outcome {
            Outcome::Completed => RunState::Finished,
            Outcome::Stopped => RunState::Stopped,
            Outcome::Diverged { .. } => RunState::Diverged,
            Outcome::Failed { message } => {
                self.log(format!("error: {message}"));
                RunState::Failed(message)
            }
        };
        self.log(match &self.state {
            RunState::Finished => "finished".to_owned(),
            RunState::Stopped => "stopped; resume from the latest checkpoint".to_owned(),
            RunState::Diverged => {
                "diverged: the loss is not finite; the last finite checkpoint is kept".to_owned()
            }
            _ => "the run ended with an error".to_owned(),
        });
        if self.quitting {
            self.should_quit = true;
        }
    }

    fn add_metric(&mut self, row: MetricRow) {
        self.elapsed_s = self.elapsed_s.max(row.elapsed_s);
        self.last_row_at_s = self.clock_s;
        if row.split == Split::Test {
            let name = match row.iterate {
                Iterate::Sgd => "sgd",
                Iterate::Swa => "swa",
                Iterate::SwaStale => "swa with stale BN",
            };
            self.log(format!(
                "epoch {}: {name} test loss {:.4}, acc {:.1}%",
                row.epoch,
                row.loss,
                100.0 * row.acc
            ));
        }
        let key = (row.iterate, row.split);
        self.series
            .entry(key)
            .or_insert_with(|| Series::new(SERIES_CAPACITY))
            .push(Point {
                epoch: f64::from(row.epoch),
                step: row.step as f64,
                time: row.elapsed_s,
                loss: row.loss,
                acc: row.acc,
                lr: row.lr,
            });
        self.latest.insert(key, row);
    }
}

/// How a run ended, in a word.
fn outcome_word(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Completed => "finished".into(),
        Outcome::Stopped => "stopped".into(),
        Outcome::Diverged { .. } => "diverged".into(),
        Outcome::Failed { message } => format!("failed: {message}"),
    }
}
