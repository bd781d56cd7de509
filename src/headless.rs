//! The headless runner: prints a run's progress as plain lines, one per epoch, for logs,
//! pipes, batch schedulers and terminals without the dashboard.

use crate::format::clock;
use crate::protocol::{Event, Iterate, MetricRow, Outcome, Progress, RunInfo, Split};
use crate::worker::Worker;
use std::collections::BTreeMap;
use std::io::Write;

/// Prints a worker's events as lines on stdout until its run ends; returns how it ended.
pub fn follow(mut worker: Worker) -> Outcome {
    let mut printer = EpochPrinter::default();
    let mut stdout = std::io::stdout().lock();
    let outcome = loop {
        let Some(event) = worker.events.blocking_recv() else {
            break Outcome::Failed {
                message: "the training worker ended without a word".into(),
            };
        };
        // A closed stdout (e.g. `| head`) must not stop training.
        if let Ok(Some(outcome)) = printer.handle(event, &mut stdout) {
            break outcome;
        }
    };
    worker.finish();
    outcome
}

/// Collects the rows of one epoch and prints them as one line.
#[derive(Default)]
pub struct EpochPrinter {
    epochs: u32,
    rows: BTreeMap<(u32, Iterate, Split), MetricRow>,
    last_progress: Option<Progress>,
    finals: BTreeMap<Iterate, MetricRow>,
    /// The run directory, once the run has said it.
    run_dir: Option<std::path::PathBuf>,
}

/// The command that continues the run in `dir`, quoted for a POSIX shell when it must be.
pub fn resume_command(dir: &std::path::Path) -> String {
    let text = dir.display().to_string();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c));
    let quoted = if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    };
    format!("valleys run --resume {quoted}")
}

/// One line for the terminal once the dashboard has closed: the run directory, how the run
/// stands, and what to run next.
pub fn farewell(dir: &std::path::Path, outcome: &Outcome) -> String {
    let shown = dir.display();
    match outcome {
        Outcome::Completed => format!("{shown}: finished; report it with: valleys report {shown}"),
        Outcome::Stopped => format!("{shown}: stopped; continue with: {}", resume_command(dir)),
        Outcome::Diverged { epoch, .. } => format!(
            "{shown}: diverged in epoch {}; its last finite checkpoint can be probed: valleys probe {shown}",
            epoch + 1
        ),
        Outcome::Failed { message } => format!("{shown}: failed: {message}"),
    }
}

impl EpochPrinter {
    /// Handles one event, writing whatever it completes to `out`. Returns the outcome when the
    /// run has finished.
    pub fn handle(
        &mut self,
        event: Event,
        out: &mut impl Write,
    ) -> std::io::Result<Option<Outcome>> {
        match event {
            Event::Ready(info) => {
                self.run_dir = Some(info.run_dir.clone());
                self.header(&info, out)?
            }
            Event::Progress(p) => {
                if p.epoch > self.last_progress.as_ref().map_or(0, |q| q.epoch) {
                    self.flush(out)?;
                }
                self.last_progress = Some(p);
            }
            Event::Metric(row) => {
                if row.split == Split::Test {
                    self.finals.insert(row.iterate, row.clone());
                }
                self.rows.insert((row.epoch, row.iterate, row.split), row);
            }
            Event::CheckpointWritten { .. } => self.flush(out)?,
            Event::Log(message) => writeln!(out, "  {message}")?,
            // Earlier epochs were printed when they ran; a plane's path grows silently (the
            // plane's files hold it).
            Event::History(_) | Event::PlanePath { .. } => {}
            Event::Paused => writeln!(out, "  paused")?,
            Event::Resumed => writeln!(out, "  resumed")?,
            Event::Finished(outcome) => {
                self.flush(out)?;
                self.summary(&outcome, out)?;
                return Ok(Some(outcome));
            }
            Event::ProbeFinished(result) => writeln!(out, "  {}", crate::probe::one_line(&result))?,
            Event::ProbeFailed { message } => writeln!(out, "  {message}")?,
            Event::PlaneFinished(result) => {
                writeln!(out, "  {}", crate::probe::plane::one_line(&result))?
            }
            Event::AblationFinished { result, .. } => {
                for line in crate::ablation::table(&result) {
                    writeln!(out, "  {line}")?;
                }
            }
            Event::CurvatureStarted { label, plan, .. } => writeln!(out, "  {label}: {plan}")?,
            Event::CurvatureFinished(result) => {
                writeln!(out, "  {}", crate::curvature::one_line(&result))?
            }
            Event::ConnectStarted { label } => writeln!(out, "  connecting {label}")?,
            Event::ConnectFinished(result) => {
                for line in crate::probe::connect::one_line(&result).lines() {
                    writeln!(out, "  {line}")?;
                }
            }
            Event::CurvatureTracked(rows) => {
                writeln!(out, "  {}", crate::curvature::track::one_line(&rows))?
            }
            // Headless output is one line per epoch; a phase is part of it.
            Event::Phase(_)
            | Event::ProbeStarted { .. }
            | Event::ProbePoint { .. }
            | Event::PlaneStarted(_)
            | Event::PlanePoint { .. }
            | Event::ProbeBatchFinished(_)
            | Event::CurvatureProgress { .. }
            | Event::Twin(_) => {}
        }
        Ok(None)
    }

    fn header(&mut self, info: &RunInfo, out: &mut impl Write) -> std::io::Result<()> {
        self.epochs = info.epochs;
        writeln!(
            out,
            "valleys {} · {} · {}",
            info.program_version, info.experiment, info.model
        )?;
        writeln!(out, "data:   {}", info.data)?;
        writeln!(out, "device: {} ({})", info.device, info.device_reason)?;
        writeln!(out, "run:    {}", info.run_dir.display())?;
        let swa = info
            .swa_start_epoch
            .map_or("off".into(), |e| format!("averaging from epoch {e}"));
        writeln!(
            out,
            "plan:   {} epochs × {} batches, SWA {swa}",
            info.epochs, info.batches_per_epoch
        )
    }

    fn flush(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        let epochs: Vec<u32> = self.rows.keys().map(|k| k.0).collect();
        let Some(&epoch) = epochs.iter().max() else {
            return Ok(());
        };
        let get = |it: Iterate, sp: Split| self.rows.get(&(epoch, it, sp));
        let width = self.epochs.to_string().len();
        let mut line = format!("epoch {epoch:>width$}/{}", self.epochs);
        if let Some(r) = get(Iterate::Sgd, Split::TrainRunning) {
            line += &format!(
                "  lr {:.4}  train {:.4} {:5.1}%",
                r.lr,
                r.loss,
                100.0 * r.acc
            );
        }
        for (it, name) in [
            (Iterate::Sgd, "sgd"),
            (Iterate::Swa, "swa"),
            (Iterate::SwaStale, "stale-BN swa"),
        ] {
            if let Some(r) = get(it, Split::Test) {
                line += &format!("  {name} test {:.4} {:5.1}%", r.loss, 100.0 * r.acc);
            }
        }
        if let Some(p) = &self.last_progress
            && epoch > 0
        {
            line += &format!("  {:>6.0} samples/s", p.samples_per_s);
        }
        if let Some(r) = self.rows.values().next_back() {
            line += &format!("  {}", clock(r.elapsed_s));
        }
        // Time left, from the training time so far (not probes or pauses) per epoch.
        if let Some(p) = &self.last_progress
            && epoch > 0
            && epoch < self.epochs
        {
            let left = p.training_s / f64::from(epoch) * f64::from(self.epochs - epoch);
            line += &format!("  ETA {}", clock(left));
        }
        writeln!(out, "{line}")?;
        self.rows.clear();
        Ok(())
    }

    fn summary(&self, outcome: &Outcome, out: &mut impl Write) -> std::io::Result<()> {
        match outcome {
            Outcome::Completed => {
                let sgd = self.finals.get(&Iterate::Sgd);
                let swa = self.finals.get(&Iterate::Swa);
                let mut line = String::from("finished");
                if let Some(s) = sgd {
                    let elapsed = self
                        .finals
                        .values()
                        .map(|r| r.elapsed_s)
                        .fold(0.0, f64::max);
                    line += &format!(
                        " in {}: SGD test loss {:.4} ({:.1}%)",
                        clock(elapsed),
                        s.loss,
                        100.0 * s.acc
                    );
                }
                if let (Some(s), Some(w)) = (sgd, swa) {
                    line += &format!(
                        ", SWA {:.4} ({:.1}%): SWA {} by {:.4}",
                        w.loss,
                        100.0 * w.acc,
                        if w.loss < s.loss { "ahead" } else { "behind" },
                        (s.loss - w.loss).abs()
                    );
                }
                writeln!(out, "{line}")
            }
            Outcome::Stopped => match &self.run_dir {
                Some(dir) => writeln!(out, "stopped; continue with: {}", resume_command(dir)),
                None => writeln!(out, "stopped; resume from the latest checkpoint"),
            },
            Outcome::Diverged { epoch, step } => writeln!(
                out,
                "diverged in epoch {} (step {step}): the loss is not finite",
                epoch + 1
            ),
            Outcome::Failed { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_farewell_names_the_run_and_the_command_that_continues_it() {
        let dir = std::path::Path::new("runs/quick-20261201-101500");
        assert_eq!(
            farewell(dir, &Outcome::Stopped),
            "runs/quick-20261201-101500: stopped; continue with: valleys run --resume runs/quick-20261201-101500"
        );
        assert!(farewell(dir, &Outcome::Completed).contains("finished"));
        let odd = std::path::Path::new("my runs/it's");
        assert_eq!(
            resume_command(odd),
            "valleys run --resume 'my runs/it'\\''s'"
        );
    }

    fn row(epoch: u32, iterate: Iterate, split: Split, loss: f64) -> Event {
        Event::Metric(MetricRow {
            epoch,
            step: u64::from(epoch) * 10,
            iterate,
            split,
            loss,
            acc: 0.5,
            lr: 0.05,
            elapsed_s: 65.0,
            samples: 100,
            swa_n: None,
        })
    }

    #[test]
    fn one_line_per_epoch_and_a_summary_naming_the_winner() {
        let mut p = EpochPrinter {
            epochs: 12,
            ..Default::default()
        };
        let mut out = Vec::new();
        for e in [
            row(1, Iterate::Sgd, Split::TrainRunning, 0.9),
            row(1, Iterate::Sgd, Split::Test, 0.5),
            row(1, Iterate::Swa, Split::Test, 0.4),
            Event::CheckpointWritten {
                path: "c".into(),
                epoch: 1,
                step: 10,
            },
        ] {
            assert!(p.handle(e, &mut out).unwrap().is_none());
        }
        let done = p
            .handle(Event::Finished(Outcome::Completed), &mut out)
            .unwrap();
        assert_eq!(done, Some(Outcome::Completed));
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "epoch  1/12  lr 0.0500  train 0.9000  50.0%  sgd test 0.5000  50.0%  swa test 0.4000  50.0%  1:05"
        );
        assert!(lines[1].contains("SWA ahead by 0.1000"), "{}", lines[1]);
    }
}
