//! A fetch's progress for people: one line redrawn in a terminal, a line every 10 seconds in
//! a log, or events sent to the dashboard while it starts.

use super::Event;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Where [`report`] sends events instead of standard error (the dashboard, while it starts).
pub type Sink = Box<dyn Fn(&Event) + Send + Sync>;

static SINK: std::sync::Mutex<Option<Sink>> = std::sync::Mutex::new(None);

/// Sends [`report`]'s events to `sink` (or back to standard error with `None`).
pub fn set_sink(sink: Option<Sink>) {
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = sink;
}

/// When the last progress line was written (a line redrawn in a terminal is still open then).
static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
/// True while the open line only says that a server is being asked (it is wiped, not kept).
static ASKING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Ends a progress line being redrawn in a terminal, so that what is printed next starts on a
/// line of its own (a line that only said a server was being asked is wiped instead).
pub fn finish_line() {
    use std::io::IsTerminal;
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let asking = ASKING.swap(false, std::sync::atomic::Ordering::SeqCst);
    if last.take().is_some() && io::stderr().is_terminal() {
        let _ = if asking {
            write!(io::stderr(), "\r\x1b[2K")
        } else {
            writeln!(io::stderr())
        };
    }
}

/// The progress of a fetch for people: to the installed [`Sink`], else to standard error (one
/// line redrawn in a terminal; a line every 10 seconds elsewhere, as in a batch job's log).
pub fn report(event: Event) {
    if let Some(sink) = SINK.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        sink(&event);
        return;
    }
    use std::io::IsTerminal;
    let tty = io::stderr().is_terminal();
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = io::stderr().lock();
    // A progress line being redrawn is ended before any other line.
    let mut say = |line: String| {
        if tty && last.is_some() {
            let _ = write!(err, "\r\x1b[2K");
        }
        *last = None;
        ASKING.store(false, std::sync::atomic::Ordering::SeqCst);
        let _ = writeln!(err, "valleys: {line}");
    };
    match event {
        Event::Waiting { set } => say(format!(
            "another valleys is fetching {}; waiting for it to finish",
            set.dataset.as_str()
        )),
        // In a terminal, a line wiped once the server answers (or does not): a server that
        // is slow to answer is seen waited for, and a refused connection leaves only its error.
        Event::Connecting { archive, url, .. } => {
            if tty {
                let width = crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w));
                let line = format!("valleys: asking {url} for {}…", archive.name);
                let _ = write!(
                    err,
                    "\r\x1b[2K{}",
                    crate::format::truncate(&line, width.saturating_sub(1).max(2))
                );
                let _ = err.flush();
                *last = Some(Instant::now());
                ASKING.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        Event::Download {
            archive,
            from,
            offset,
            total,
        } => {
            let size = crate::format::human_bytes(total.unwrap_or(archive.bytes));
            let resume = if offset > 0 {
                format!(", resuming at {}", crate::format::human_bytes(offset))
            } else {
                String::new()
            };
            say(format!(
                "downloading {} ({size}) from {from}{resume}",
                archive.name
            ))
        }
        Event::Progress {
            archive,
            done,
            total,
            rate,
        } => {
            let line = progress_line(archive.name, done, total, rate);
            let finished = total.is_some_and(|t| done >= t);
            if tty {
                // One row, or the redraw would leave a trail of wrapped lines.
                let width = crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w));
                let line = fit(&line, &progress_numbers(done, total, rate), width);
                let _ = write!(err, "\r\x1b[2K{line}");
                let _ = err.flush();
                *last = Some(Instant::now());
            } else if finished || last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                let _ = writeln!(err, "valleys: {line}");
                *last = Some(Instant::now());
            }
        }
        Event::Retry {
            archive,
            done,
            reason,
        } => say(if done > 0 {
            format!(
                "{}: {reason}; resuming at {}",
                archive.name,
                crate::format::human_bytes(done)
            )
        } else {
            format!("{}: {reason}; trying again", archive.name)
        }),
        Event::Verify { archive } => say(format!(
            "checking {} against its pinned SHA-256 and unpacking it",
            archive.name
        )),
        Event::Ready { set, dir } => say(format!(
            "{} is ready in {}",
            set.dataset.as_str(),
            dir.display()
        )),
    }
}

/// "valleys: LINE" in fewer than `width` columns: whole, else without the file's name, else cut.
fn fit(line: &str, numbers: &str, width: usize) -> String {
    let room = width.saturating_sub(1);
    for candidate in [format!("valleys: {line}"), format!("valleys: {numbers}")] {
        if candidate.chars().count() <= room {
            return candidate;
        }
    }
    crate::format::truncate(numbers, room.max(2))
}

/// "cifar-10-binary.tar.gz  45.2 MiB of 162.2 MiB (28%) · 12.3 MiB/s · 0:09 left".
pub fn progress_line(name: &str, done: u64, total: Option<u64>, rate: f64) -> String {
    format!("{name}  {}", progress_numbers(done, total, rate))
}

/// "45.2 MiB of 162.2 MiB (28%) · 12.3 MiB/s · 0:09 left".
pub fn progress_numbers(done: u64, total: Option<u64>, rate: f64) -> String {
    use crate::format::{clock, human_bytes};
    let mut line = human_bytes(done);
    if let Some(total) = total.filter(|&t| t > 0) {
        let pct = (done as f64 / total as f64 * 100.0).clamp(0.0, 100.0);
        line += &format!(" of {} ({pct:.0}%)", human_bytes(total));
    }
    if rate.is_finite() && rate > 0.0 {
        line += &format!(" · {}/s", human_bytes(rate as u64));
        if let Some(total) = total.filter(|&t| t > done) {
            line += &format!(" · {} left", clock((total - done) as f64 / rate));
        }
    }
    line
}

/// What a waiting process shows of another's download: the part file that grows.
#[derive(Default)]
pub(super) struct PartWatch {
    last: Option<(std::time::Instant, u64)>,
    rate: f64,
}

impl PartWatch {
    pub(super) fn report(
        &mut self,
        cache: &super::Cache,
        set: &crate::data::catalog::Set,
        progress: &dyn Fn(Event),
    ) {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|(at, _)| now.duration_since(at) < std::time::Duration::from_millis(500))
        {
            return;
        }
        let downloads = cache.downloads(set);
        // The part written last is the one growing (those before it are whole).
        let growing = set
            .archives
            .iter()
            .filter_map(|a| {
                let meta = std::fs::metadata(downloads.join(format!("{}.part", a.name))).ok()?;
                Some((meta.modified().ok()?, a, meta.len()))
            })
            .max_by_key(|(modified, ..)| *modified)
            .map(|(_, a, len)| (a, len));
        let Some((archive, done)) = growing else {
            return;
        };
        if let Some((at, before)) = self.last {
            let secs = now.duration_since(at).as_secs_f64().max(1e-3);
            self.rate = done.saturating_sub(before) as f64 / secs;
        }
        self.last = Some((now, done));
        progress(Event::Progress {
            archive,
            done,
            total: Some(archive.bytes),
            rate: self.rate,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redrawn_line_fits_its_row() {
        let mib = 1024 * 1024;
        let line = progress_line(
            "cifar-10-binary.tar.gz",
            40 * mib,
            Some(160 * mib),
            12.0 * mib as f64,
        );
        let numbers = progress_numbers(40 * mib, Some(160 * mib), 12.0 * mib as f64);
        assert_eq!(fit(&line, &numbers, 120), format!("valleys: {line}"));
        let at_80 = fit(&line, &numbers, 80);
        assert_eq!(
            at_80,
            "valleys: 40.0 MiB of 160.0 MiB (25%) · 12.0 MiB/s · 0:10 left"
        );
        assert!(fit(&line, &numbers, 30).chars().count() < 30);
    }

    #[test]
    fn the_progress_line_gives_the_rate_and_the_time_left() {
        let mib = 1024 * 1024;
        assert_eq!(
            progress_line("a.tar.gz", 40 * mib, Some(160 * mib), 12.0 * mib as f64),
            "a.tar.gz  40.0 MiB of 160.0 MiB (25%) · 12.0 MiB/s · 0:10 left"
        );
        assert_eq!(progress_line("x.gz", 512, None, 0.0), "x.gz  512 B");
        assert_eq!(
            progress_line("x.gz", 2048, Some(2048), 1024.0),
            "x.gz  2.0 KiB of 2.0 KiB (100%) · 1.0 KiB/s"
        );
    }
}
