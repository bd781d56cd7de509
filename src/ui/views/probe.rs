//! The probe view: the loss along the current or selected line with the centre (and, for
//! interpolation, SWA and SGD) marked and the flat and sharp sides named; its scores; the table
//! of this run's probes and connections; and the c histograms of batches.

use super::plot::{self, Axes, Trace};
use super::{fit_fields, panel, render_hint};
use crate::format::truncate;
use crate::probe::score::{Score, Side};
use crate::probe::summary::{BatchSummary, C_BIN_EDGES};
use crate::probe::{DirectionKind, ProbePoint, ProbeResult, format_c, score_fields};
use crate::protocol::{Iterate, Split};
use crate::ui::app::{App, Quantity};
use crate::ui::braille::Stroke;
use crate::ui::chart;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// What the chart shows: the running probe if there is one, else the selected result.
struct Shown<'a> {
    title: String,
    points: Vec<ProbePoint>,
    interp: bool,
    result: Option<&'a ProbeResult>,
    progress: Option<(usize, usize)>,
}

fn shown(app: &App) -> Option<Shown<'_>> {
    if let Some(live) = &app.probes.live {
        return Some(Shown {
            title: format!(" probe {} · {} ", live.id, live.summary),
            points: live.points.iter().flatten().copied().collect(),
            interp: live.summary.starts_with("interp"),
            result: None,
            progress: Some((live.done(), live.grid.len())),
        });
    }
    let r = app.probes.results.get(app.probes.selected)?;
    Some(Shown {
        title: format!(" probe {} · {} ", r.id, r.spec.summary()),
        points: r.points.clone(),
        interp: r.spec.direction == DirectionKind::Interp,
        result: Some(r),
        progress: None,
    })
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let table_height = (app.probes.entries() as u16 + 3).clamp(4, 8);
    let [chart_area, score_area, bottom] = Layout::vertical([
        Constraint::Min(8),
        Constraint::Length(6),
        Constraint::Length(table_height),
    ])
    .areas(area);
    let shown = shown(app);
    render_chart(app, frame, chart_area, shown.as_ref());
    render_scores(
        app,
        frame,
        score_area,
        shown.as_ref().and_then(|s| s.result),
    );
    match app.probes.batches.last() {
        Some(batch) if bottom.width >= 100 => {
            let [table, hist] =
                Layout::horizontal([Constraint::Min(50), Constraint::Length(48)]).areas(bottom);
            render_table(app, frame, table);
            render_batch(app, frame, hist, batch);
        }
        _ => render_table(app, frame, bottom),
    }
}

fn render_chart(app: &App, frame: &mut Frame, area: Rect, shown: Option<&Shown>) {
    if app.probes.live.is_none() {
        if let Some(hint) = super::connection::connecting_hint(app) {
            render_hint(app, frame, area, " connection ", &hint);
            return;
        }
        if let Some(c) = app.probes.selected_connection() {
            return super::connection::render_chart(app, frame, area, c);
        }
    }
    if app.probes.shift_curve
        && let Some(result) = shown.and_then(|s| s.result)
    {
        return render_shift(app, frame, area, result);
    }
    let Some(s) = shown else {
        let hint = if let Some(failure) = &app.probes.failure {
            failure.as_str()
        } else if app.controllable {
            "no probe yet: press p for the probe form"
        } else {
            "probes run on the live weights: `valleys probe RUN_DIR` probes a saved checkpoint"
        };
        render_hint(app, frame, area, " probe ", hint);
        return;
    };
    let acc = app.chart.quantity == Quantity::Accuracy;
    let log = app.chart.log_y && !acc;
    let value = |y: f64| {
        if acc {
            100.0 * y
        } else if log {
            chart::log10_saturating(y)
        } else {
            y
        }
    };
    let mut points = s.points.clone();
    points.sort_by(|a, b| a.t.total_cmp(&b.t));
    let train: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.t, value(if acc { p.train_acc } else { p.train_loss })))
        .collect();
    let test: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.t, value(if acc { p.test_acc } else { p.test_loss })))
        .collect();
    let mut title = s.title.clone();
    if let Some((done, total)) = s.progress {
        title += &format!("· {done}/{total} points ");
    }
    let mut block = panel(app, title).title_bottom(legend(app, s.interp));
    if let Some(score) = s.result.and_then(|r| r.train_score.as_ref()) {
        block = block.title_bottom(side_labels(app, score));
    }
    let Some((x, y)) = plot::extent([&train[..], &test[..]].into_iter()) else {
        frame.render_widget(
            Paragraph::new("waiting for the first point…").block(block),
            area,
        );
        return;
    };
    let axes = Axes::fit(x, y, area, log, false);
    let marks: Vec<[(f64, f64); 2]> = if s.interp { vec![0.0, 1.0] } else { vec![0.0] }
        .into_iter()
        .filter_map(|t| axes.vertical(t))
        .collect();
    let scale = axes.dots_per_unit(area);
    let curves = [(&train, Split::Train), (&test, Split::Test)];
    // Dense grids are their own marks; a coarse one shows where it was measured.
    let point_marks: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|(data, _)| plot::point_marks(&app.theme, data, true, scale))
        .collect();
    let mut traces: Vec<Trace> = marks
        .iter()
        .map(|m| Trace::marker_line(m, &app.theme))
        .collect();
    for ((data, split), dots) in curves.iter().zip(&point_marks) {
        traces.push(Trace::probe(&app.theme, *split, data));
        traces.push(Trace {
            stroke: Stroke::Dots,
            ..Trace::probe(&app.theme, *split, dots)
        });
    }
    axes.render(frame, area, &traces, block, &app.theme);
}

/// The random-shift check: ξ_δ/ξ_0 against the shift δ, with the best shift marked.
fn render_shift(app: &App, frame: &mut Frame, area: Rect, result: &ProbeResult) {
    let title = format!(" random shift · probe {} · ξ_δ/ξ_0 against δ ", result.id);
    let block = panel(app, title);
    let Some(shift) = &result.shift else {
        frame.render_widget(
            Paragraph::new("no random-shift check for this probe").block(block),
            area,
        );
        return;
    };
    let curve: Vec<(f64, f64)> = shift
        .deltas
        .iter()
        .copied()
        .zip(shift.ratio.iter().copied())
        .collect();
    let Some((x, y)) = plot::extent([&curve[..]].into_iter()) else {
        frame.render_widget(Paragraph::new("no data").block(block), area);
        return;
    };
    let block = block.title_bottom(
        Line::styled(
            format!(
                " best δ {:+.3}: ξ ratio {:.3} · δ ",
                shift.best_delta, shift.best_ratio
            ),
            app.theme.dim(),
        )
        .right_aligned(),
    );
    let axes = Axes::fit(x, (y.0.min(0.0), y.1.max(1.0)), area, false, false);
    let best = axes.vertical(shift.best_delta);
    let best: Vec<[(f64, f64); 2]> = best.into_iter().collect();
    let traces = plot::marked_curve(&best, &curve, &app.theme);
    axes.render(frame, area, &traces, block, &app.theme);
}

fn legend(app: &App, interp: bool) -> Line<'static> {
    let t = &app.theme;
    let mut spans = vec![Span::raw(" ")];
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let style = t.probe_series(split);
        spans.push(Span::styled(
            format!("{} {name}  ", t.legend_sample(Iterate::Swa, split)),
            style,
        ));
    }
    let marks = if interp {
        "┊ t=0 SWA  ┊ t=1 SGD "
    } else {
        "┊ t=0 centre "
    };
    spans.push(Span::styled(marks, t.dim()));
    Line::from(spans)
}

/// "◀ sharp" and "flat ▶" (or the other way round) in the bottom border.
fn side_labels(app: &App, score: &Score) -> Line<'static> {
    let text = match score.flat_side {
        Side::Plus => " ◀ sharp side · flat side ▶ ",
        Side::Minus => " ◀ flat side · sharp side ▶ ",
        Side::Neither if score.class == crate::probe::score::Class::Flat => {
            " flat: both rises within noise "
        }
        Side::Neither => " symmetric ",
    };
    Line::styled(text, app.theme.dim()).right_aligned()
}

fn render_scores(app: &App, frame: &mut Frame, area: Rect, result: Option<&ProbeResult>) {
    let width = usize::from(area.width.saturating_sub(2));
    let mut lines = Vec::new();
    if let Some(failure) = &app.probes.failure {
        lines.push(Line::styled(failure.clone(), app.theme.bad()));
    }
    let connection = app
        .probes
        .selected_connection()
        .filter(|_| app.probes.live.is_none() && app.probes.connecting.is_none());
    if let Some(c) = connection {
        lines.extend(super::connection::score_lines(app, c));
    } else if let Some(r) = result {
        for (name, score) in [("train", &r.train_score), ("test", &r.test_score)] {
            lines.push(match score {
                Some(s) => Line::styled(
                    fit_fields(&score_fields(name, s), width),
                    if s.asymmetric {
                        app.theme.good()
                    } else {
                        Style::new()
                    },
                ),
                None => Line::raw(format!(
                    "{name}: not scored (the grid must reach both sides of 0)"
                )),
            });
        }
        let d = &r.direction;
        let mut facts = format!(
            "|d| {:.3} · |w| {:.2} · sign agreement {:.0}%",
            d.norm,
            d.centre_norm,
            100.0 * d.sign_consistency
        );
        if let Some(l) = d.eigenvalue {
            facts += &format!(" · λmax {l:.4}");
        }
        if let Some(shift) = &r.shift {
            facts += &format!(
                " · shift δ {:+.2}{} (ξ ratio {:.2})",
                shift.best_delta,
                if shift.at_edge() { " (edge)" } else { "" },
                shift.best_ratio
            );
        }
        lines.push(Line::raw(facts));
        let c = &r.cost;
        lines.push(Line::styled(
            format!(
                "{:.2} s/point = {:.1}× one forward pass ({:.2} s) · epoch {} · {}",
                c.seconds_per_point,
                c.ratio_to_forward,
                c.forward_seconds,
                r.centre.epoch,
                r.centre.source
            ),
            app.theme.dim(),
        ));
    } else if app.probes.live.is_some() {
        lines.push(Line::raw(
            "scores appear when every point is in · Esc cancels",
        ));
    }
    frame.render_widget(Paragraph::new(lines).block(panel(app, " score ")), area);
}

fn render_table(app: &App, frame: &mut Frame, area: Rect) {
    let header = format!(
        "{:<20} {:<8} {:<8} {:<6} {:<9} {:>6} {:>4} {:>4}",
        "id", "kind", "centre", "params", "bn", "c", "flat", "asym"
    );
    let mut lines = vec![Line::styled(header, app.theme.dim())];
    let rows = usize::from(area.height.saturating_sub(3));
    let n = app.probes.entries();
    let start = app
        .probes
        .selected
        .saturating_sub(rows.saturating_sub(1))
        .min(n.saturating_sub(rows));
    for (i, r) in app.probes.results.iter().enumerate().skip(start).take(rows) {
        let s = r.train_score.as_ref();
        let line = format!(
            "{:<20} {:<8} {:<8} {:<6} {:<9} {:>6} {:>4} {:>4}",
            truncate(&r.id, 20),
            r.spec.direction.as_str(),
            r.centre.iterate,
            r.spec.params.as_str(),
            r.spec.bn.as_str(),
            s.map_or("–".into(), |s| format_c(s.c)),
            s.map_or("–", |s| s.flat_side.symbol()),
            s.map_or("–", |s| s.verdict()),
        );
        let style = if i == app.probes.selected {
            app.theme.key()
        } else {
            Style::new()
        };
        lines.push(Line::styled(line, style));
    }
    for (k, c) in app.probes.connections.iter().enumerate() {
        let i = app.probes.results.len() + k;
        if i < start || i >= start + rows {
            continue;
        }
        let style = if i == app.probes.selected {
            app.theme.key()
        } else {
            Style::new()
        };
        lines.push(Line::styled(super::connection::table_row(c), style));
    }
    let title = if app.probes.connections.is_empty() {
        format!(" probes ({n}) ")
    } else {
        format!(
            " probes ({}) · connections ({}) ",
            app.probes.results.len(),
            app.probes.connections.len()
        )
    };
    frame.render_widget(Paragraph::new(lines).block(panel(app, title)), area);
}

fn render_batch(app: &App, frame: &mut Frame, area: Rect, batch: &BatchSummary) {
    let mut labels: Vec<String> = Vec::new();
    let mut lower = 1.0;
    for edge in C_BIN_EDGES {
        labels.push(format!("[{lower}, {edge})"));
        lower = edge;
    }
    labels.push(format!("≥ {lower}"));
    let mut lines = vec![];
    let (full, _) = app.theme.bar_chars();
    for c in &batch.centres {
        lines.push(Line::styled(
            format!("{}: {}", c.centre, c.stats.describe()),
            app.theme.title(),
        ));
        let most = c.histogram.iter().copied().max().unwrap_or(1).max(1);
        let row: Vec<String> = c
            .histogram
            .iter()
            .zip(&labels)
            .map(|(count, label)| {
                let bar: String = std::iter::repeat_n(full, count * 6 / most).collect();
                format!("{label:>9} {bar:<6} {count}")
            })
            .collect();
        lines.extend(row.chunks(2).map(|pair| Line::raw(pair.join("  "))));
    }
    for comparison in &batch.comparisons {
        lines.push(Line::raw(comparison.describe()));
    }
    let title = format!(
        " batch {} · threshold c ≥ {} · [95% intervals] ",
        batch.id, batch.threshold
    );
    frame.render_widget(Paragraph::new(lines).block(panel(app, title)), area);
}
