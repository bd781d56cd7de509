//! The dashboard: SGD vs SWA curves, the "now" panel that says who is ahead, and the log.

use super::panel;
use super::plot::{self, Axes};
use crate::protocol::{Iterate, Split};
use crate::ui::app::{App, Point, Quantity, XAxis};
use crate::ui::chart;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Dataset, GraphType, Paragraph};

/// Width of the "now" panel beside the chart on wide screens.
const NOW_WIDTH: u16 = 46;
/// From this width on, the "now" panel sits beside the chart instead of under it.
const SIDE_BY_SIDE_FROM: u16 = 110;

/// The series in drawing order, with their legend names.
const SERIES: [(Iterate, Split, &str); 5] = [
    (Iterate::Sgd, Split::Train, "SGD train"),
    (Iterate::Sgd, Split::Test, "SGD test"),
    (Iterate::Swa, Split::Train, "SWA train"),
    (Iterate::Swa, Split::Test, "SWA test"),
    // Only present when swa.stale_bn asks for it.
    (Iterate::SwaStale, Split::Test, "SWA stale-BN test"),
];

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

/// One visible series of the chart, transformed as the settings say.
pub struct ChartSeries {
    pub iterate: Iterate,
    pub split: Split,
    pub name: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// The chart's data: one point list per visible series.
pub fn chart_series(app: &App) -> Vec<ChartSeries> {
    let c = &app.chart;
    let min_epoch = c
        .window
        .map(|w| f64::from(app.last_epoch().saturating_sub(w)));
    SERIES
        .iter()
        .filter(|(_, split, _)| c.splits.shows(*split))
        .filter_map(|&(iterate, split, name)| {
            let points: Vec<Point> = app.series.get(&(iterate, split))?.points();
            let points: Vec<&Point> = points
                .iter()
                .filter(|p| min_epoch.is_none_or(|m| p.epoch >= m))
                .collect();
            let xs = points.iter().map(|p| match c.x {
                XAxis::Epoch => p.epoch,
                XAxis::Step => p.step,
            });
            let ys: Vec<f64> = points
                .iter()
                .map(|p| match c.quantity {
                    Quantity::Loss => p.loss,
                    Quantity::Accuracy => 100.0 * p.acc,
                })
                .collect();
            let ys = if c.smooth {
                chart::smooth(&ys, 0.6)
            } else {
                ys
            };
            let log = c.log_y && c.quantity == Quantity::Loss;
            let data: Vec<(f64, f64)> = xs
                .zip(ys)
                .map(|(x, y)| (x, if log { chart::log10_saturating(y) } else { y }))
                .collect();
            Some(ChartSeries {
                iterate,
                split,
                name,
                points: data,
            })
        })
        .collect()
}

/// The SGD/SWA chart of `app`'s run; `label` goes before the title (e.g. "without BN · ").
pub fn render_chart(app: &App, frame: &mut Frame, area: Rect, label: &str) {
    let c = &app.chart;
    let log = c.log_y && c.quantity == Quantity::Loss;
    let mut title = match c.quantity {
        Quantity::Loss => format!(" {label}loss"),
        Quantity::Accuracy => format!(" {label}accuracy %"),
    };
    for (on, word) in [(log, "log"), (c.smooth, "smoothed")] {
        if on {
            title += &format!(" · {word}");
        }
    }
    if let Some(w) = c.window {
        title += &format!(" · last {w} epochs");
    }
    title.push(' ');
    let series = chart_series(app);
    let x_name = match c.x {
        XAxis::Epoch => " epoch ",
        XAxis::Step => " step ",
    };
    let block = panel(app, title)
        .title_bottom(legend(app, &series))
        .title_bottom(Line::styled(x_name, app.theme.dim()).right_aligned());
    let Some((y_lo, y_hi)) = chart::y_range(series.iter().map(|s| &s.points[..])) else {
        let waiting = Paragraph::new("waiting for the first evaluation…")
            .alignment(Alignment::Center)
            .block(block);
        frame.render_widget(waiting, area);
        return;
    };
    // The x axis spans the whole run, so that the chart does not rescale as it fills.
    let planned = app.info.as_ref().map_or(1.0, |i| match c.x {
        XAxis::Epoch => f64::from(i.epochs),
        XAxis::Step => f64::from(i.epochs) * f64::from(i.batches_per_epoch),
    });
    let x_data_hi = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let x_hi = if c.window.is_some() {
        x_data_hi
    } else {
        x_data_hi.max(planned)
    };
    let x_lo = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(x_hi, f64::min);
    let axes = Axes::fit((x_lo, x_hi), (y_lo, y_hi), area, log, true);
    let marker = swa_start_x(app).and_then(|x| axes.vertical(x));
    let mut datasets = Vec::new();
    if let Some(line) = &marker {
        datasets.push(plot::marker_line(line, &app.theme));
    }
    for s in &series {
        datasets.push(
            Dataset::default()
                .marker(app.theme.marker(s.iterate, s.split))
                .graph_type(GraphType::Line)
                .style(app.theme.series(s.iterate, s.split))
                .data(&s.points),
        );
    }
    axes.render(frame, area, datasets, block, &app.theme);
}

/// The legend, drawn in the chart's title line so that it never covers data.
fn legend(app: &App, series: &[ChartSeries]) -> Line<'static> {
    let mut spans = vec![Span::raw(" ")];
    for s in series {
        let marker = app.theme.marker_char(s.iterate, s.split);
        let style = app.theme.series(s.iterate, s.split);
        spans.push(Span::styled(format!("{marker} {}  ", s.name), style));
    }
    if swa_start_x(app).is_some() {
        spans.push(Span::styled("┊ SWA start ", app.theme.dim()));
    }
    Line::from(spans)
}

/// Where SWA starts on the x axis.
fn swa_start_x(app: &App) -> Option<f64> {
    let info = app.info.as_ref()?;
    let start = f64::from(info.swa_start_epoch?);
    Some(match app.chart.x {
        XAxis::Epoch => start,
        XAxis::Step => start * f64::from(info.batches_per_epoch),
    })
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
    let status: Vec<Line> = status_lines(app).into_iter().map(Line::raw).collect();
    let block = panel(app, " now ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if beside {
        // Under the chart the panel is wide and short: the status goes beside the table.
        let [table, side] =
            Layout::horizontal([Constraint::Length(39), Constraint::Min(0)]).areas(inner);
        frame.render_widget(Paragraph::new(lines), table);
        frame.render_widget(Paragraph::new(status), side);
    } else {
        lines.push(Line::raw(""));
        lines.extend(status);
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

/// Learning rate, throughput, the running loss, the average and the last checkpoint, briefly.
fn status_lines(app: &App) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = &app.progress {
        out.push(format!("lr {:.4} · {:.0} samples/s", p.lr, p.samples_per_s));
        out.push(format!(
            "running {:.4} ({:.1}%)",
            p.running_loss,
            100.0 * p.running_acc
        ));
    } else if let Some(r) = app.latest.get(&(Iterate::Sgd, Split::Test)) {
        out.push(format!("lr {:.4} · step {}", r.lr, r.step));
    }
    let swa_n = app
        .latest
        .get(&(Iterate::Swa, Split::Test))
        .and_then(|r| r.swa_n);
    out.push(
        match (swa_n, app.info.as_ref().and_then(|i| i.swa_start_epoch)) {
            (Some(n), _) => format!("SWA of {n}, BN recomputed"),
            (None, Some(start)) => format!("SWA from epoch {start}"),
            (None, None) => "SWA off".to_owned(),
        },
    );
    if let Some((epoch, step)) = app.last_checkpoint {
        out.push(format!("checkpoint: epoch {epoch}, step {step}"));
    }
    out
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
            Line::styled(l.clone(), style)
        })
        .collect();
    let title = if app.log_scroll > 0 {
        format!(" log · {} lines back ", app.log_scroll)
    } else {
        " log ".to_owned()
    };
    frame.render_widget(Paragraph::new(lines).block(panel(app, title)), area);
}
