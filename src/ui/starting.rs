//! The dashboard's first screen while the data set a run needs is fetched into the cache: the
//! header names the run and the fetch, then the file, a bar, the rate and the time left, and
//! what the fetch said last. `q`, `Esc` or Ctrl-C stop the fetch; what arrived is kept, so the
//! next run resumes it.

use super::theme::Theme;
use crate::data::fetch::{self, Event};
use crate::format::human_bytes;
use crossterm::event::{self as term, Event as TermEvent, KeyCode, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use std::sync::mpsc;
use std::time::Duration;

/// What the screen shows, built from the fetch's events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetching {
    /// "valleys 0.1.0 · preresnet164-cifar10".
    pub title: String,
    /// "cifar10".
    pub set: String,
    /// Bytes the whole set downloads.
    pub set_bytes: u64,
    /// Where it goes.
    pub cache: String,
    pub file: String,
    pub from: String,
    pub done: u64,
    pub total: Option<u64>,
    /// Bytes per second of the current attempt.
    pub rate: f64,
    /// Whether the server asked has answered.
    pub answered: bool,
    /// What the fetch said besides progress, latest last.
    pub notes: Vec<String>,
}

impl Fetching {
    /// Takes in one event of the fetch.
    pub fn apply(&mut self, event: &Event) {
        match *event {
            Event::Waiting { set } => self.note(format!(
                "another valleys is fetching {}: waiting for it",
                set.dataset.as_str()
            )),
            Event::Connecting {
                archive,
                url,
                offset,
            } => {
                self.file = archive.name.to_owned();
                self.from = url.to_owned();
                self.done = offset;
                self.total = Some(archive.bytes);
                self.rate = 0.0;
                self.answered = false;
                if offset > 0 {
                    self.note(format!(
                        "{}: resuming at {}",
                        archive.name,
                        human_bytes(offset)
                    ));
                }
            }
            Event::Download {
                archive,
                from,
                offset,
                total,
            } => {
                self.file = archive.name.to_owned();
                self.from = from.to_owned();
                self.done = offset;
                self.total = total.or(Some(archive.bytes));
                self.answered = true;
            }
            Event::Progress {
                archive,
                done,
                total,
                rate,
            } => {
                if self.from.is_empty() {
                    self.from = "another valleys (waiting for it)".into();
                }
                self.answered = true;
                self.file = archive.name.to_owned();
                self.done = done;
                self.total = total.or(self.total);
                self.rate = rate;
            }
            Event::Retry {
                archive,
                done,
                reason,
            } => self.note(format!(
                "{}: {reason}; again from {}",
                archive.name,
                human_bytes(done)
            )),
            Event::Verify { archive } => self.note(format!(
                "{}: checking its pinned SHA-256 and unpacking",
                archive.name
            )),
            Event::Ready { set, .. } => self.note(format!("{} is ready", set.dataset.as_str())),
        }
    }

    fn note(&mut self, text: String) {
        self.notes.push(text);
        if self.notes.len() > 20 {
            self.notes.remove(0);
        }
    }
}

/// Draws the screen.
pub fn render(state: &Fetching, theme: Theme, frame: &mut Frame) {
    let area = frame.area();
    let [header, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let header_text = format!(
        "{} · fetching {} ({}, once)",
        state.title,
        state.set,
        human_bytes(state.set_bytes)
    );
    frame.render_widget(
        Paragraph::new(Line::styled(
            super::views::elide_middle(&header_text, usize::from(header.width)),
            theme.title(),
        )),
        header,
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" data ")
        .border_style(theme.dim());
    let inner = block.inner(body);
    frame.render_widget(block, body);
    let width = usize::from(inner.width);
    let mut lines = Vec::new();
    if state.file.is_empty() {
        lines.push(Line::raw("starting…"));
    } else {
        lines.push(Line::styled(
            if state.answered {
                format!("downloading {}", state.file)
            } else {
                format!("asking for {} (no answer yet)", state.file)
            },
            theme.title(),
        ));
        lines.push(Line::raw(super::views::elide_middle(
            &format!("from {}", state.from),
            width,
        )));
        let fraction = state
            .total
            .filter(|&t| t > 0)
            .map(|t| (state.done as f64 / t as f64).clamp(0.0, 1.0));
        if let Some(f) = fraction {
            let (full, empty) = theme.bar_chars();
            let cells = width.saturating_sub(2).min(60);
            let filled = (f * cells as f64).round() as usize;
            lines.push(Line::from(vec![
                Span::styled(full.to_string().repeat(filled), theme.good()),
                Span::styled(empty.to_string().repeat(cells - filled), theme.dim()),
            ]));
        }
        // The numbers wrap whole rather than lose the time left.
        lines.push(Line::raw(fetch::progress_line(
            &state.file,
            state.done,
            state.total,
            state.rate,
        )));
    }
    lines.push(Line::raw(""));
    let room = usize::from(inner.height).saturating_sub(lines.len() + 2);
    let skip = state.notes.len().saturating_sub(room);
    for note in &state.notes[skip..] {
        lines.push(Line::raw(note.clone()));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!(
            "into {}; q stops (what arrived is kept: the next run resumes it)",
            state.cache
        ),
        theme.dim(),
    ));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    if theme.ascii {
        super::theme::asciify(frame.buffer_mut());
    }
}

/// Runs `work` (a fetch) on a thread while this screen shows its progress; `None` when the
/// user stopped it (the fetch then fails with "stopped", and that result is dropped).
pub fn while_fetching<T: Send + 'static>(
    mut state: Fetching,
    theme: Theme,
    signalled: &std::sync::atomic::AtomicBool,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Option<T>> {
    let (tx, rx) = mpsc::channel::<Fetching>();
    let (done_tx, done_rx) = mpsc::channel::<T>();
    let shared = std::sync::Arc::new(std::sync::Mutex::new(state.clone()));
    let sink_state = shared.clone();
    fetch::set_sink(Some(Box::new(move |e: &Event| {
        let mut s = sink_state.lock().unwrap_or_else(|p| p.into_inner());
        s.apply(e);
        let _ = tx.send(s.clone());
    })));
    let worker = std::thread::spawn(move || {
        let _ = done_tx.send(work());
    });
    let mut terminal = super::enter_terminal()?;
    let guard = super::TerminalGuard;
    // Keys are read on a thread of their own: a terminal that went away (a dropped SSH
    // connection) can keep a read waiting for ever, and this loop must still see the signal.
    let (keys_tx, keys) = mpsc::channel::<bool>();
    std::thread::spawn(move || {
        loop {
            let stop = match term::poll(Duration::from_millis(100)) {
                Ok(true) => match term::read() {
                    Ok(TermEvent::Key(key)) => {
                        let ctrl_c = key.code == KeyCode::Char('c')
                            && key.modifiers.contains(KeyModifiers::CONTROL);
                        matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c
                    }
                    Ok(_) => false,
                    Err(_) => return,
                },
                Ok(false) => false,
                Err(_) => return,
            };
            if stop && keys_tx.send(true).is_err() {
                return;
            }
        }
    });
    let mut stopped: Option<std::time::Instant> = None;
    let result = loop {
        while let Ok(s) = rx.try_recv() {
            state = s;
        }
        // A terminal that can no longer be drawn on has gone, and its user with it.
        let gone = terminal.draw(|frame| render(&state, theme, frame)).is_err();
        if let Ok(value) = done_rx.try_recv() {
            break Some(value);
        }
        // A transfer stuck in a read is not waited for: what arrived is on disk already.
        if stopped.is_some_and(|at| worker.is_finished() || at.elapsed() >= Duration::from_secs(1))
        {
            break None;
        }
        let key = keys.recv_timeout(Duration::from_millis(100)).is_ok();
        let stop = key || gone || signalled.load(std::sync::atomic::Ordering::SeqCst);
        if stop && stopped.is_none() {
            fetch::request_stop();
            stopped = Some(std::time::Instant::now());
            state.note("stopping…".into());
        }
    };
    fetch::set_sink(None);
    drop(guard);
    if stopped.is_none() {
        let _ = worker.join();
    }
    Ok(if stopped.is_some() { None } else { result })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatasetName;
    use crate::data::catalog;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(state: &Fetching, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| render(state, Theme::detect(false, true), f))
            .unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_owned())
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_screen_shows_the_file_the_rate_and_the_time_left_at_80x24() {
        let set = catalog::set(DatasetName::Cifar10).unwrap();
        let archive = &set.archives[0];
        let mut state = Fetching {
            title: "valleys 0.1.0 · preresnet164-cifar10".into(),
            set: "cifar10".into(),
            set_bytes: set.download_bytes(),
            cache: "~/.cache/valleys/data/cifar10".into(),
            ..Fetching::default()
        };
        let mib = 1024 * 1024;
        for e in [
            Event::Connecting {
                archive,
                url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                offset: 20 * mib,
            },
            Event::Download {
                archive,
                from: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                offset: 20 * mib,
                total: Some(archive.bytes),
            },
            Event::Progress {
                archive,
                done: 40 * mib,
                total: Some(archive.bytes),
                rate: 8.0 * mib as f64,
            },
        ] {
            state.apply(&e);
        }
        let text = screen(&state, 80, 24);
        insta::assert_snapshot!(text);
        assert!(
            text.contains("40.0 MiB of 162.2 MiB (25%) · 8.0 MiB/s · 0:15 left"),
            "{text}"
        );
        assert!(
            text.contains("cifar-10-binary.tar.gz: resuming at 20.0 MiB"),
            "{text}"
        );
    }
}
