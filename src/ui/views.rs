//! Rendering: read-only functions from [`App`] to a frame. The frame keeps one shape in every
//! view: a header line, the view's body, and a key bar; overlays go on top.

mod ablation;
mod dashboard;
mod plot;
mod probe;

use super::app::{App, Overlay, RunState, View};
use super::keymap::Action;
use super::theme::asciify;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

/// The smallest terminal the dashboard draws in; below it a message says so.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// "1:02:03" or "2:03".
pub fn clock(seconds: f64) -> String {
    crate::headless::clock(seconds)
}

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(frame, area);
    } else {
        let [header, body, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        render_header(app, frame, header);
        match app.view {
            View::Dashboard => dashboard::render(app, frame, body),
            View::Probes => probe::render(app, frame, body),
            View::Ablations => ablation::render(app, frame, body),
        }
        render_key_bar(app, frame, keys);
        match app.overlay {
            Some(Overlay::Help) => render_help(app, frame, area),
            Some(Overlay::ConfirmQuit) => render_confirm_quit(app, frame, area),
            Some(Overlay::ProbeForm) => probe::render_form(app, frame, area),
            Some(Overlay::AblationMenu) => ablation::render_menu(app, frame, area),
            None => {}
        }
    }
    if app.theme.ascii {
        asciify(frame.buffer_mut());
    }
}

/// A bordered block with a title, in the theme's style.
pub(super) fn panel<'a>(app: &App, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Plain)
        .title(title.into().style(app.theme.title()))
}

/// A titled panel holding one centred line: what to do where there is nothing to show yet.
pub(super) fn render_hint(app: &App, frame: &mut Frame, area: Rect, title: &str, hint: &str) {
    let text = Paragraph::new(hint.to_owned())
        .alignment(Alignment::Center)
        .block(panel(app, title.to_owned()));
    frame.render_widget(text, area);
}

fn render_too_small(frame: &mut Frame, area: Rect) {
    let text = format!(
        "terminal too small: {}x{}\nvalleys needs at least {MIN_WIDTH}x{MIN_HEIGHT}",
        area.width, area.height
    );
    let height = 2.min(area.height);
    let y = area.y + area.height.saturating_sub(height) / 2;
    let message = Paragraph::new(text)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true });
    frame.render_widget(message, Rect::new(area.x, y, area.width, height));
}

/// Fraction done and seconds left, from the latest progress (or, when watching, the latest
/// evaluated epoch).
fn progress(app: &App) -> Option<(f64, Option<f64>, String)> {
    let info = app.info.as_ref()?;
    let total_steps = f64::from(info.epochs) * f64::from(info.batches_per_epoch.max(1));
    let (done, elapsed, epoch_label) = match &app.progress {
        Some(p) => {
            let done_steps =
                f64::from(p.epoch - 1) * f64::from(p.batches_per_epoch) + f64::from(p.batch);
            (done_steps / total_steps, p.elapsed_s, p.epoch)
        }
        None => {
            let epoch = app.last_epoch();
            let elapsed = app.latest.values().map(|r| r.elapsed_s).fold(0.0, f64::max);
            (
                f64::from(epoch) / f64::from(info.epochs.max(1)),
                elapsed,
                epoch,
            )
        }
    };
    let done = done.clamp(0.0, 1.0);
    let running = app.state.is_live() || app.state == RunState::Watching;
    let eta = (running && done > 0.0 && done < 1.0).then(|| elapsed * (1.0 - done) / done);
    Some((done, eta, format!("epoch {epoch_label}/{}", info.epochs)))
}

fn render_header(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let state_style = match app.state {
        RunState::Running | RunState::Finished => theme.good(),
        RunState::Diverged | RunState::Failed(_) => theme.bad(),
        RunState::Paused | RunState::Stopping | RunState::Stopped => theme.warn(),
        _ => Style::new(),
    };
    let mut right = String::new();
    if let Some((done, eta, epoch)) = progress(app) {
        let (full, empty) = theme.bar_chars();
        let width = 12;
        let filled = (done * width as f64).round() as usize;
        let bar: String = std::iter::repeat_n(full, filled)
            .chain(std::iter::repeat_n(empty, width - filled))
            .collect();
        right = format!("{epoch} {bar} {:>3.0}%", 100.0 * done);
        if let Some(eta) = eta {
            right += &format!(" ETA {}", clock(eta));
        }
        right.push(' ');
    }
    let name = app
        .info
        .as_ref()
        .map_or("…".to_owned(), |i| i.experiment.clone());
    let mut left = vec![
        Span::styled(" valleys", theme.title()),
        Span::raw(format!(" · {name}")),
    ];
    if let Some(info) = &app.info {
        let room = area.width as usize;
        let used = 12
            + name.len()
            + right.chars().count()
            + app.state.label().len()
            + info.device.len()
            + 6;
        let model = info.model.split(" (").next().unwrap_or(&info.model);
        if used + model.len() + 3 < room {
            left.push(Span::raw(format!(" · {model}")));
        }
        left.push(Span::raw(format!(" · {}", info.device)));
    }
    left.push(Span::raw(" · "));
    // Training waits while a probe runs; say so.
    let label = if app.probes.live.is_some() && app.state.is_live() {
        "PROBING"
    } else {
        app.state.label()
    };
    left.push(Span::styled(
        label,
        state_style.add_modifier(ratatui::style::Modifier::BOLD),
    ));
    let right_width = right.chars().count() as u16;
    let [l, r] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(right_width)]).areas(area);
    frame.render_widget(Paragraph::new(Line::from(left)), l);
    frame.render_widget(Paragraph::new(right).alignment(Alignment::Right), r);
}

fn render_key_bar(app: &App, frame: &mut Frame, area: Rect) {
    let mut spans = vec![Span::raw(" ")];
    // A watched run cannot be commanded: its run keys would do nothing.
    let shown = app
        .bindings()
        .iter()
        .filter(|b| app.controllable || b.group != "run" || b.action == Action::Quit);
    for b in shown {
        if let Some(word) = b.bar {
            spans.push(Span::styled(b.label, app.theme.key()));
            spans.push(Span::raw(format!(" {word}  ")));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A rectangle of at most `width` x `height`, centred in `area`.
pub(super) fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn render_help(app: &App, frame: &mut Frame, area: Rect) {
    let bindings = app.view.bindings();
    let mut lines: Vec<Line> = Vec::new();
    let mut group = "";
    for b in bindings {
        if b.group != group {
            if !lines.is_empty() {
                lines.push(Line::raw(""));
            }
            lines.push(Line::styled(b.group.to_owned(), app.theme.title()));
            group = b.group;
        }
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<8}", b.label), app.theme.key()),
            Span::raw(b.description),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Esc, ? or q closes this help",
        app.theme.dim(),
    ));
    let height = lines.len() as u16 + 2;
    let rect = centred(area, 64, height);
    frame.render_widget(Clear, rect);
    let title = format!(" keys · {} ", app.view.title());
    frame.render_widget(Paragraph::new(lines).block(panel(app, title)), rect);
}

fn render_confirm_quit(app: &App, frame: &mut Frame, area: Rect) {
    let rect = centred(area, 56, 5);
    let lines = vec![
        Line::raw("Stop training and quit?"),
        Line::raw("A checkpoint will be saved. (y/n)"),
    ];
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .block(panel(app, " quit ")),
        rect,
    );
}

#[cfg(test)]
mod tests;
