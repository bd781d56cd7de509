//! What a probe, a plane or an ablation on the command line says on stderr while it runs: its
//! cost up front, then how far it is with the time left; and the stop flag that cancels it.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use valleys::probe::ProbePoint;
use valleys::probe::ProbeSpec;
use valleys::probe::runner::Observer;

/// Prints what a probe will cost and how far it is, and cancels on a signal. On a terminal
/// one line is redrawn; into a file or a pipe (a Slurm log, `| tee`) a line is added every
/// 10% of the points and at least every 30 seconds.
pub struct Console<'a> {
    stop: &'a AtomicBool,
    progress: Progress,
    tty: bool,
}

/// Points done of a probe (or a plane), and when to say so again.
pub struct Progress {
    id: String,
    total: usize,
    done: usize,
    started: Instant,
    last_line: Instant,
    /// Tenths of the points said so far.
    last_tenth: usize,
    /// What is counted ("points", "products").
    unit: &'static str,
}

/// A progress line is added at least this often when the output is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(30);

impl Progress {
    /// A grid of `total` points called `id`, started now.
    pub fn start(id: &str, total: usize) -> Self {
        Self {
            id: id.to_owned(),
            total,
            ..Self::new()
        }
    }

    /// `total` of something other than points (Hessian-vector products) called `id`.
    pub fn counting(id: &str, total: usize, unit: &'static str) -> Self {
        Self {
            unit,
            ..Self::start(id, total)
        }
    }

    /// Sets the count reached (for work that reports its own count).
    pub fn reach(&mut self, done: usize, tty: bool) {
        while self.done < done.min(self.total) {
            self.point_done(tty);
        }
    }

    fn new() -> Self {
        let now = Instant::now();
        Self {
            id: String::new(),
            total: 0,
            done: 0,
            started: now,
            last_line: now,
            last_tenth: 0,
            unit: "points",
        }
    }

    /// "  003-interp-swa: 12/21 points · 0:31 elapsed · ETA 0:23".
    fn line(&self) -> String {
        format!(
            "  {}: {}/{} {} · {}",
            self.id,
            self.done,
            self.total,
            self.unit,
            valleys::format::elapsed_and_left(
                self.started.elapsed().as_secs_f64(),
                self.done,
                self.total
            )
        )
    }

    /// Counts a point and says so on stderr: one redrawn line on a terminal (`tty`), else a
    /// line when one is due.
    pub fn point_done(&mut self, tty: bool) {
        self.done += 1;
        if tty {
            eprint!("\r{}\x1b[K", self.line());
            if self.done == self.total {
                eprintln!();
            }
        } else if self.plain_line_due() {
            eprintln!("{}", self.line());
        }
    }

    /// Whether a plain (non-terminal) output gets a line now: at each new tenth of the
    /// points, at the last one, and when `PLAIN_EVERY` has passed since the last line.
    fn plain_line_due(&mut self) -> bool {
        let tenth = self.done * 10 / self.total.max(1);
        let due = tenth > self.last_tenth
            || self.done == self.total
            || self.last_line.elapsed() >= PLAIN_EVERY;
        if due {
            self.last_tenth = tenth;
            self.last_line = Instant::now();
        }
        due
    }
}

impl<'a> Console<'a> {
    pub fn new(stop: &'a AtomicBool) -> Self {
        Self {
            stop,
            progress: Progress::new(),
            tty: std::io::stderr().is_terminal(),
        }
    }
}

impl Observer for Console<'_> {
    fn started(&mut self, id: &str, spec: &ProbeSpec, grid: &[f64], seconds_per_point: f64) {
        self.progress = Progress::start(id, grid.len());
        eprintln!(
            "probe {id}: {} · ~{:.2} s a point ≈ {}",
            spec.summary(),
            seconds_per_point,
            valleys::format::clock(seconds_per_point * grid.len() as f64)
        );
    }

    fn note(&mut self, id: &str, text: &str) {
        eprintln!("{id}: {text}");
    }

    fn point(&mut self, _id: &str, _index: usize, _point: &ProbePoint) {
        self.progress.point_done(self.tty);
    }

    fn cancelled(&mut self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
