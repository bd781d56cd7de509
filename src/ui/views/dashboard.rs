//! The dashboard: SGD vs SWA curves, the "now" panel that says who is ahead, and the log.

use super::plot::{self, Axes, Trace};
use super::{fit_fields, panel};
use crate::protocol::{Iterate, Split};
use crate::ui::app::{App, Quantity, XAxis};
use crate::ui::chart;
use crate::ui::curves::{self, Curve};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Width of the "now" panel beside the chart on wide screens.
const NOW_WIDTH: u16 = 46;
/// From this width on, the "now" panel sits beside the chart instead of under it.
const SIDE_BY_SIDE_FROM: u16 = 110;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    if area.width >= SIDE_BY_SIDE_FROM {
        let log_height = if area.height >= 30 { 8 } else { 5 };
        let [top, log] =
            Layout::vertical([Constraint::Min(8), Constraint::Length(log_height)]).areas(area);
        let [chart, now] =
            Layout::horizontal([Constraint::Min(40), Constraint::Length(NOW_WIDTH)]).areas(top);
        render_chart(app, frame, chart, "");
        render_now(app, frame, now, false);
        render_log(app, frame, log);
    } else {
        // Narrow screens: the "now" panel goes under the chart and packs its status on one line.
        let log_height = if area.height >= 30 { 6 } else { 4 };
        let [chart, now, log] = Layout::vertical([
            Constraint::Min(6),
            Constraint::Length(6),
            Constraint::Length(log_height),
        ])
        .areas(area);
        render_chart(app, frame, chart, "");
        render_now(app, frame, now, true);
        render_log(app, frame, log);
    }
}

/// The SGD/SWA chart of `app`'s run; `label` goes before the title (e.g. "without BN · ").
pub fn render_chart(app: &App, frame: &mut Frame, area: Rect, label: &str) {
    let c = &app.chart;
    let log = curves::log_axis(app);
    // The title's fields, most telling first; those that do not fit give way whole.
    let mut fields = vec![match c.quantity {
        Quantity::Loss => format!("{label}loss"),
        Quantity::Accuracy => format!("{label}accuracy %"),
        Quantity::LearningRate => format!("{label}learning rate"),
        Quantity::Curvature => format!("{label}top Hessian eigenvalue λ_max"),
    }];
    if log {
        fields.push("log".into());
    }
    if c.smooth > 0.0 {
        fields.push(format!("smoothed {}", c.smooth));
    }
    if let Some(w) = c.window {
        fields.push(format!("last {w} epochs"));
    }
    let curves = curves::curves(app);
    let x_name = format!(" {} ", x_axis_name(app));
    let bottom = match c.cursor {
        Some(x) => readout_line(app, &curves, x),
        // The legend shares the bottom border with the axis name at its right.
        None => legend(
            app,
            &curves,
            usize::from(area.width.saturating_sub(2)).saturating_sub(x_name.chars().count() + 1),
        ),
    };
    let range = curves::y_range(app, &curves);
    // With y fitted to the later half, x starts where the curves come into view.
    let x_start = range
        .filter(|(_, clipped)| *clipped)
        .and_then(|(fitted, _)| curves::fitted_x_start(&curves, fitted));
    if range.is_some_and(|(_, clipped)| clipped) {
        if let Some(x) = x_start {
            fields.push(format!("from {}", x_text(app, x)));
        }
        fields.push("y fitted to the later half (o: all)".into());
    }
    let title = format!(
        " {} ",
        fit_fields(&fields, usize::from(area.width.saturating_sub(4)))
    );
    let block = panel(app, title)
        .title_bottom(bottom)
        .title_bottom(Line::styled(x_name, app.theme.dim()).right_aligned());
    let Some(((y_lo, y_hi), _)) = range else {
        let waiting = Paragraph::new("waiting for the first evaluation…")
            .alignment(Alignment::Center)
            .block(block);
        frame.render_widget(waiting, area);
        return;
    };
    let xs = || curves.iter().flat_map(|s| s.measured.iter().map(|p| p.0));
    let x_data_hi = xs().fold(1.0, f64::max);
    // The x axis spans the whole run, so that the chart does not rescale as it fills (on a
    // clock, to where the time left says it ends).
    let planned = app.info.as_ref().map_or(1.0, |i| match c.x {
        XAxis::Epoch => f64::from(i.epochs),
        XAxis::Step => f64::from(i.epochs) * f64::from(i.batches_per_epoch),
        XAxis::Time | XAxis::Clock => {
            let eta = super::progress(app).and_then(|(_, eta, _)| eta);
            x_data_hi + eta.unwrap_or(0.0)
        }
    });
    let x_hi = if c.window.is_some() {
        x_data_hi
    } else {
        x_data_hi.max(planned)
    };
    let x_lo = x_start.unwrap_or_else(|| xs().fold(x_hi, f64::min));
    let axes = match (c.x, clock_shift(app)) {
        (XAxis::Clock, Some(shift)) => Axes::fit_time(
            (x_lo, x_hi),
            (y_lo, y_hi),
            area,
            log,
            shift,
            chart::clock_label,
        ),
        (XAxis::Time | XAxis::Clock, _) => {
            Axes::fit_time((x_lo, x_hi), (y_lo, y_hi), area, log, 0.0, |t, _| {
                chart::elapsed_label(t)
            })
        }
        _ => Axes::fit((x_lo, x_hi), (y_lo, y_hi), area, log, true),
    };
    let scale = axes.dots_per_unit(area);
    let swa_line = swa_start_x(app).and_then(|x| axes.vertical(x));
    let cursor_line = c.cursor.and_then(|x| axes.vertical(x));
    // Marks are computed in data units; they live as long as the traces.
    let point_marks: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|s| plot::point_marks(&app.theme, &s.measured, s.marked, scale))
        .collect();
    let bands: Vec<Vec<(f64, f64)>> = curves.iter().map(|s| curves::zigzag(&s.envelope)).collect();
    let mut traces = Vec::new();
    for line in [&swa_line, &cursor_line].into_iter().flatten() {
        traces.push(Trace::marker_line(line, &app.theme));
    }
    for band in bands.iter().filter(|b| !b.is_empty()) {
        traces.push(Trace::band(&app.theme, band));
    }
    for (s, marks) in curves.iter().zip(&point_marks) {
        traces.push(Trace::series(&app.theme, (s.iterate, s.split), &s.drawn));
        traces.push(Trace::dots(&app.theme, (s.iterate, s.split), marks));
    }
    axes.render(frame, area, &traces, block, &app.theme);
}

/// The legend, drawn in the chart's border so that it never covers data: each curve's
/// marker (a dash pattern for test curves) and name, whole items only, in `width` columns.
fn legend(app: &App, curves: &[Curve], width: usize) -> Line<'static> {
    let mut items: Vec<((String, String), Style)> = curves
        .iter()
        .map(|s| {
            let marker = legend_marker(app, s);
            let short_marker: String = marker.chars().take(1).collect();
            (
                (
                    format!("{marker} {}", s.name),
                    format!("{short_marker} {}", s.name),
                ),
                app.theme.series(s.iterate, s.split),
            )
        })
        .collect();
    if swa_start_x(app).is_some() {
        let text = "┊ SWA start".to_owned();
        items.push(((text.clone(), text), app.theme.dim()));
    }
    let texts: Vec<(String, String)> = items.iter().map(|(t, _)| t.clone()).collect();
    let fitted = chart::fit_legend(&texts, width);
    let gap = if fitted.iter().all(|(i, t)| *t == texts[*i].0) {
        "  "
    } else {
        " "
    };
    let mut spans = vec![Span::raw(" ")];
    for (i, text) in fitted {
        spans.push(Span::styled(format!("{text}{gap}"), items[i].1));
    }
    Line::from(spans)
}

fn legend_marker(app: &App, s: &Curve) -> String {
    app.theme.legend_sample(s.iterate, s.split)
}

/// The value cursor's readout in place of the legend: every curve's measured value at the
/// cursor and the SGD − SWA test gap.
fn readout_line(app: &App, curves: &[Curve], x: f64) -> Line<'static> {
    let (values, gap) = curves::readout(curves, x);
    let at = format!(" {}", x_text(app, x));
    let mut spans = vec![Span::styled(format!("{at}: "), app.theme.key())];
    let format = |v: f64| match app.chart.quantity {
        Quantity::Accuracy => format!("{v:.2}%"),
        Quantity::LearningRate => format!("{v:.5}"),
        Quantity::Loss => format!("{v:.4}"),
        Quantity::Curvature => crate::curvature::significant(v, 4),
    };
    for (s, (name, value)) in curves.iter().zip(values) {
        if let Some(v) = value {
            let style = app.theme.series(s.iterate, s.split);
            spans.push(Span::styled(format!("{name} {}  ", format(v)), style));
        }
    }
    if let Some(g) = gap {
        let text = match app.chart.quantity {
            Quantity::Accuracy => format!("{g:+.2}"),
            _ => format!("{g:+.4}"),
        };
        spans.push(Span::raw(format!("SGD−SWA {text} ")));
    }
    Line::from(spans)
}

/// Where SWA starts on the x axis: on a clock, when the epoch it starts at ended.
fn swa_start_x(app: &App) -> Option<f64> {
    let info = app.info.as_ref()?;
    let start = f64::from(info.swa_start_epoch?);
    match app.chart.x {
        XAxis::Epoch => Some(start),
        XAxis::Step => Some(start * f64::from(info.batches_per_epoch)),
        XAxis::Time | XAxis::Clock => app
            .series
            .get(&(Iterate::Sgd, Split::Test))?
            .points()
            .iter()
            .find(|p| p.epoch >= start)
            .map(|p| p.time)
            .filter(|t| t.is_finite()),
    }
}

/// The local time of day, in seconds past a midnight, at which the run's clock read 0: the
/// shift of the wall-clock axis; None when the run did not record when it started.
fn clock_shift(app: &App) -> Option<f64> {
    let start = app.info.as_ref()?.started_unix_s?;
    let at = jiff::Timestamp::from_millisecond((start * 1000.0) as i64).ok()?;
    let offset = app.time_zone.to_offset(at).seconds();
    Some(start + f64::from(offset))
}

/// The x axis's name: a wall clock of a run that did not record when it started is its own.
fn x_axis_name(app: &App) -> &'static str {
    match app.chart.x {
        XAxis::Clock if clock_shift(app).is_none() => "time (start not recorded)",
        x => x.name(),
    }
}

/// A place on the x axis in words: "epoch 12", "step 900", "time 1:02:05", "clock 14:05:30".
fn x_text(app: &App, x: f64) -> String {
    match (app.chart.x, clock_shift(app)) {
        (XAxis::Clock, Some(shift)) => format!("clock {}", chart::clock_label(shift + x, 1.0)),
        (XAxis::Time | XAxis::Clock, _) => format!("time {}", chart::elapsed_label(x)),
        (axis, _) => format!("{} {x}", axis.name()),
    }
}

fn render_now(app: &App, frame: &mut Frame, area: Rect, beside: bool) {
    let theme = &app.theme;
    let get = |it: Iterate, sp: Split| app.latest.get(&(it, sp));
    let mut lines = vec![Line::from(vec![
        Span::raw(format!("{:<11}", "")),
        Span::styled(
            format!("{:>8}", "SGD"),
            theme.series(Iterate::Sgd, Split::Test),
        ),
        Span::styled(
            format!("{:>9}", "SWA"),
            theme.series(Iterate::Swa, Split::Test),
        ),
        Span::raw(format!("{:>9}", "Δ")),
    ])];
    let rows: [(&str, Split, bool); 3] = [
        ("test loss", Split::Test, false),
        ("test acc", Split::Test, true),
        ("train loss", Split::Train, false),
    ];
    for (label, split, acc) in rows {
        let value = |it: Iterate| get(it, split).map(|r| if acc { 100.0 * r.acc } else { r.loss });
        let show = |v: Option<f64>| match (v, acc) {
            (Some(v), true) => format!("{v:.1}%"),
            (Some(v), false) => format!("{v:.4}"),
            (None, _) => "–".to_owned(),
        };
        let (sgd, swa) = (value(Iterate::Sgd), value(Iterate::Swa));
        let mut spans = vec![
            Span::raw(format!("{label:<11}")),
            Span::raw(format!("{:>8}", show(sgd))),
            Span::raw(format!("{:>9}", show(swa))),
        ];
        if let (Some(a), Some(b)) = (sgd, swa)
            && split == Split::Test
        {
            let delta = b - a;
            let swa_better = if acc { delta > 0.0 } else { delta < 0.0 };
            let text = if acc {
                format!("{delta:+.1}")
            } else {
                format!("{delta:+.4}")
            };
            let style = if swa_better {
                theme.good()
            } else {
                theme.warn()
            };
            spans.push(Span::styled(format!("{text:>9}"), style));
        }
        lines.push(Line::from(spans));
    }
    let block = panel(app, " now ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let status = |width: u16| -> Vec<Line> {
        status_lines(app)
            .iter()
            .map(|fields| Line::raw(fit_fields(fields, usize::from(width))))
            .collect()
    };
    if beside {
        // Under the chart the panel is wide and short: the status goes beside the table.
        let [table, side] =
            Layout::horizontal([Constraint::Length(39), Constraint::Min(0)]).areas(inner);
        frame.render_widget(Paragraph::new(lines), table);
        frame.render_widget(Paragraph::new(status(side.width)), side);
    } else {
        lines.push(Line::raw(""));
        lines.extend(status(inner.width));
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

/// Learning rate, throughput, the running loss, the average and the last checkpoint, briefly:
/// each line's fields, which give way whole (never cut) where the panel is narrow.
fn status_lines(app: &App) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if let Some(p) = &app.progress {
        out.push(vec![
            format!("lr {:.4}", p.lr),
            format!("{:.0} samples/s", p.samples_per_s),
        ]);
        out.push(vec![format!(
            "running {:.4} ({:.1}%)",
            p.running_loss,
            100.0 * p.running_acc
        )]);
    } else if let Some(r) = app.latest.get(&(Iterate::Sgd, Split::Test)) {
        out.push(vec![format!("lr {:.4}", r.lr), format!("step {}", r.step)]);
    }
    let swa_n = app
        .latest
        .get(&(Iterate::Swa, Split::Test))
        .and_then(|r| r.swa_n);
    out.push(
        match (swa_n, app.info.as_ref().and_then(|i| i.swa_start_epoch)) {
            (Some(n), _) => vec![format!("SWA of {n}"), "BN recomputed".to_owned()],
            (None, Some(start)) => vec![format!("SWA from epoch {start}")],
            (None, None) => vec!["SWA off".to_owned()],
        },
    );
    if let Some((epoch, step)) = app.last_checkpoint {
        out.push(vec![
            format!("checkpoint: epoch {epoch}"),
            format!("step {step}"),
        ]);
    }
    out
}

/// `text` in at most `width` characters: whole, or its start and end around an ellipsis
/// (a long path keeps its file name).
pub fn elide_middle(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        return text.to_owned();
    }
    if width < 5 {
        return text.chars().take(width).collect();
    }
    let head = (width - 1) / 2;
    let tail = width - 1 - head;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

fn render_log(app: &App, frame: &mut Frame, area: Rect) {
    let visible = usize::from(area.height.saturating_sub(2));
    let end = app.log.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(visible);
    let lines: Vec<Line> = app
        .log
        .range(start..end)
        .map(|l| {
            let style = if l.contains("error") || l.contains("diverged") {
                app.theme.bad()
            } else {
                Style::new()
            };
            Line::styled(
                elide_middle(l, usize::from(area.width.saturating_sub(2))),
                style,
            )
        })
        .collect();
    let title = if app.log_scroll > 0 {
        format!(" log · {} lines back ", app.log_scroll)
    } else {
        " log ".to_owned()
    };
    frame.render_widget(Paragraph::new(lines).block(panel(app, title)), area);
}
