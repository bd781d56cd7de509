//! Rendering: read-only functions from [`App`] to a frame. Every view keeps one shape: a header
//! line (the machine strip under it when sampled), the body and a key bar; overlays on top.

mod ablation;
pub(crate) mod connection;
mod curvature;
mod dashboard;
pub(crate) use dashboard::elide_middle;
mod forms;
mod machine;
mod pieces;
mod plane;
mod plot;
mod probe;

use super::app::{App, Overlay, RunState, View};
use super::keymap::Action;
use super::theme::asciify;
use pieces::Pieces;
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
    crate::format::clock(seconds)
}

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(frame, area);
    } else {
        let [header, machine_strip, body, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(u16::from(app.machine.is_some())),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        render_header(app, frame, header);
        machine::render(app, frame, machine_strip);
        match app.view {
            View::Dashboard => dashboard::render(app, frame, body),
            View::Probes => probe::render(app, frame, body),
            View::Ablations => ablation::render(app, frame, body),
            View::Planes => plane::render(app, frame, body),
            View::Curvature => curvature::render(app, frame, body),
        }
        render_key_bar(app, frame, keys);
        match app.overlay {
            Some(Overlay::Help) => render_help(app, frame, area),
            Some(Overlay::ConfirmQuit) => render_confirm_quit(app, frame, area),
            Some(Overlay::ProbeForm) => forms::render_form(app, frame, area),
            Some(Overlay::PlaneForm) => plane::render_form(app, frame, area),
            Some(Overlay::CurvatureForm) => curvature::render_form(app, frame, area),
            Some(Overlay::ConnectForm) => connection::render_form(app, frame, area),
            Some(Overlay::AblationMenu) => ablation::render_menu(app, frame, area),
            None => {}
        }
    }
    if app.theme.ascii {
        asciify(frame.buffer_mut());
    }
}

/// A bordered block with a title, in the theme's style.
/// The fields that fit in `width`, joined by " · ": later fields give way whole.
pub(super) fn fit_fields(fields: &[String], width: usize) -> String {
    let mut line = String::new();
    for field in fields {
        let next = if line.is_empty() {
            field.clone()
        } else {
            format!("{line} · {field}")
        };
        if next.chars().count() > width {
            break;
        }
        line = next;
    }
    line
}

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
/// evaluated epoch), and the completed epochs as "epoch 12/15": the same words whether the
/// run is driven or watched. The time left counts training only (probes and pauses are not
/// training); a watched run's counts down between evaluations.
pub fn progress(app: &App) -> Option<(f64, Option<f64>, String)> {
    let info = app.info.as_ref()?;
    let per_epoch = f64::from(info.batches_per_epoch.max(1));
    let total_steps = f64::from(info.epochs) * per_epoch;
    let running = app.state.is_live() || app.state == RunState::Watching;
    let (done, eta) = match &app.progress {
        Some(p) => {
            let done_steps =
                f64::from(p.epoch - 1) * f64::from(p.batches_per_epoch) + f64::from(p.batch);
            let done = (done_steps / total_steps).clamp(0.0, 1.0);
            let eta =
                (running && done > 0.0 && done < 1.0).then(|| p.training_s * (1.0 - done) / done);
            (done, eta)
        }
        None => {
            let epoch = app.last_epoch();
            let elapsed = app.latest.values().map(|r| r.elapsed_s).fold(0.0, f64::max);
            let done = (f64::from(epoch) / f64::from(info.epochs.max(1))).clamp(0.0, 1.0);
            let eta = (running && done > 0.0 && done < 1.0).then(|| {
                let since_row = (app.clock_s - app.last_row_at_s).max(0.0);
                (elapsed * (1.0 - done) / done - since_row).max(0.0)
            });
            (done, eta)
        }
    };
    let completed = (done * f64::from(info.epochs) + 1e-9).floor() as u32;
    Some((done, eta, format!("epoch {completed}/{}", info.epochs)))
}

/// What the running probe or ablation has done and has left, and how many jobs wait:
/// "probe interp 12/41 pts · ETA 0:12 · 1 queued".
pub fn job_status(app: &App) -> Option<String> {
    let job = app.jobs.running.as_ref()?;
    let live = app.probes.live.as_ref();
    let point_fraction = live.map_or(0.0, |l| l.done() as f64 / l.grid.len().max(1) as f64);
    let mut s = job.label.clone();
    let fraction = match (job.kind, job.probes_total) {
        (crate::ui::app::JobKind::Probe, _) => {
            if let Some(l) = live {
                s += &format!(" {}/{} pts", l.done(), l.grid.len());
            }
            Some(point_fraction)
        }
        (crate::ui::app::JobKind::Curvature, _) => {
            if let Some(live) = app.curvature.live.as_ref() {
                s += &format!(
                    " {}/{} products {} · ETA {}",
                    live.done,
                    live.planned,
                    clock((app.clock_s - live.started_s).max(0.0)),
                    clock(live.seconds_left(app.clock_s))
                );
            }
            None
        }
        (crate::ui::app::JobKind::Plane, _) => {
            let plane = app.planes.live.as_ref();
            let (done, total) = plane.map_or((0, 0), |p| (p.done(), p.header.total()));
            if total > 0 {
                s += &format!(" {done}/{total} pts");
            }
            // A plane's ETA comes from its points' own times, not from the set-up before them.
            if let Some(started) = job.started_s {
                s += &format!(" {}", clock((app.clock_s - started).max(0.0)));
            }
            match plane.and_then(|p| p.seconds_left(app.clock_s)) {
                Some(left) => s += &format!(" · ETA {}", clock(left)),
                None => s += " · ETA estimating",
            }
            None
        }
        (_, Some(total)) => {
            s += &format!(" {}/{total} probes", job.probes_done);
            Some((job.probes_done as f64 + point_fraction) / total.max(1) as f64)
        }
        (_, None) => {
            s += &format!(" {} probes done", job.probes_done);
            None
        }
    };
    if let (Some(f), Some(started)) = (fraction, job.started_s) {
        let elapsed = (app.clock_s - started).max(0.0);
        s += &format!(" {}", clock(elapsed));
        if f > 0.0 && f < 1.0 {
            s += &format!(" · ETA {}", clock(elapsed * (1.0 - f) / f));
        }
    }
    if job.cancelling {
        s += " · cancelling after this point";
    }
    if !app.jobs.queued.is_empty() {
        s += &format!(" · {} queued", app.jobs.queued.len());
    }
    Some(s)
}

fn render_header(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let state_style = match app.state {
        RunState::Running | RunState::Finished => theme.good(),
        RunState::Diverged | RunState::Failed(_) => theme.bad(),
        RunState::Paused | RunState::Stopping | RunState::Stopped => theme.warn(),
        _ => Style::new(),
    };
    let mut left = Pieces::new();
    left.push(" valleys", theme.title(), 0);
    let name = app
        .info
        .as_ref()
        .map_or("…".to_owned(), |i| i.experiment.clone());
    left.push(format!(" · {name}"), Style::new(), 3);
    if let Some(info) = &app.info {
        let model = info.model.split(" (").next().unwrap_or(&info.model);
        left.push(format!(" · {model}"), Style::new(), 7);
        left.push(format!(" · {}", info.device), Style::new(), 5);
    }
    // Training waits while a probe runs; say so.
    let busy = app.probes.live.is_some() || app.jobs.running.is_some();
    let label = if busy && app.state.is_live() {
        "PROBING"
    } else {
        app.state.label()
    };
    left.push(" · ", Style::new(), 0);
    left.push(
        label,
        state_style.add_modifier(ratatui::style::Modifier::BOLD),
        0,
    );
    // A run that is over is not done while its twin still trains.
    if let Some(twin) = app.twin.as_ref().filter(|t| t.state.is_live()) {
        let epoch = progress(twin).map_or(String::new(), |(_, _, e)| format!(" {e}"));
        left.push(format!(" · twin training{epoch}"), theme.warn(), 2);
    }
    if let Some(job) = job_status(app) {
        left.push(format!(" · {job}"), theme.key(), 1);
    } else if let Some(live) = &app.curvature.live {
        // The curvature tracked at an epoch end: training waits for it.
        left.push(
            format!(
                " · {} {}/{} products · ETA {}",
                live.label,
                live.done,
                live.planned,
                clock(live.seconds_left(app.clock_s))
            ),
            theme.key(),
            1,
        );
    }
    if let Some((what, began)) = &app.phase {
        let took = clock((app.clock_s - began).max(0.0));
        left.push(format!(" · {what} {took}"), theme.dim(), 2);
    }
    let mut right = Pieces::new();
    if let Some((done, eta, epoch)) = progress(app) {
        let (full, empty) = theme.bar_chars();
        let width = 12;
        let filled = (done * width as f64).round() as usize;
        let bar: String = std::iter::repeat_n(full, filled)
            .chain(std::iter::repeat_n(empty, width - filled))
            .collect();
        right.push(format!(" {epoch}"), Style::new(), 1);
        right.push(format!(" {bar}"), Style::new(), 6);
        right.push(format!(" {:>3.0}%", 100.0 * done), Style::new(), 4);
        if let Some(eta) = eta {
            right.push(format!(" ETA {}", clock(eta)), Style::new(), 2);
        }
        right.push(" ", Style::new(), 0);
    }
    // The right side gives way first, down to what leaves the left its essentials.
    let total = usize::from(area.width);
    let left_min = 12 + label.len();
    let right = right.fit(total.saturating_sub(left_min));
    let right_width = right.width() as u16;
    let [l, r] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(right_width)]).areas(area);
    frame.render_widget(Paragraph::new(left.fit(usize::from(l.width))), l);
    frame.render_widget(Paragraph::new(right).alignment(Alignment::Right), r);
}

fn render_key_bar(app: &App, frame: &mut Frame, area: Rect) {
    // Only keys that do something now; `? help` is kept whatever else gives way.
    let mut bar = Pieces::new();
    bar.push(" ", Style::new(), 0);
    let shown: Vec<_> = app
        .bindings()
        .iter()
        .filter(|b| app.offers(b.action) && b.bar.is_some())
        .collect();
    let n = shown.len();
    for (i, b) in shown.into_iter().enumerate() {
        let rank = if b.action == Action::Help {
            0
        } else {
            // Later keys give way first.
            (1 + i * 200 / n.max(1)).min(250) as u8
        };
        bar.push_group(
            vec![
                (b.label.to_owned(), app.theme.key()),
                (format!(" {}  ", b.bar.unwrap_or_default()), Style::new()),
            ],
            rank,
        );
    }
    frame.render_widget(Paragraph::new(bar.fit(usize::from(area.width))), area);
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
    for b in bindings.iter().filter(|b| app.offers(b.action)) {
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
    let title = format!(" keys · {} · Esc, ? or q closes ", app.view.title());
    // Too tall for the screen: two columns, each key with its description, cut at the
    // column's width rather than losing whole keys.
    if lines.len() as u16 + 2 > area.height {
        let half = lines.len().div_ceil(2);
        let right = lines.split_off(half);
        let rect = centred(area, area.width.min(130), half as u16 + 2);
        frame.render_widget(Clear, rect);
        let block = panel(app, title);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [a, b] =
            Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(inner);
        frame.render_widget(Paragraph::new(lines), a);
        frame.render_widget(Paragraph::new(right), b);
        return;
    }
    let height = lines.len() as u16 + 2;
    let rect = centred(area, 70, height);
    frame.render_widget(Clear, rect);
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
