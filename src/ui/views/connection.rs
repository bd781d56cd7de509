//! Connections in the probe view: the loss on the straight line from A to B (in the probe's
//! hues) and on the trained Bézier curve (in the SGD series' hues), their barriers and the
//! two ends' sign consistency; the connect form overlay; a connection's row in the table.

use super::panel;
use super::plot::{Axes, Trace};
use crate::probe::ProbePoint;
use crate::probe::connect::{Barrier, ConnectResult};
use crate::protocol::{Iterate, Split};
use crate::ui::app::{App, JobKind, Quantity};
use crate::ui::chart;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// (t, value) of `points` as the chart shows them: loss, log loss or accuracy in percent.
fn values(app: &App, points: &[ProbePoint], split: Split) -> Vec<(f64, f64)> {
    let acc = app.chart.quantity == Quantity::Accuracy;
    let log = app.chart.log_y && !acc;
    points
        .iter()
        .map(|p| {
            let (loss, accuracy) = match split {
                Split::Train => (p.train_loss, p.train_acc),
                _ => (p.test_loss, p.test_acc),
            };
            let y = if acc {
                100.0 * accuracy
            } else if log {
                chart::log10_saturating(loss)
            } else {
                loss
            };
            (p.t, y)
        })
        .collect()
}

fn legend(app: &App, curve: bool) -> Line<'static> {
    let t = &app.theme;
    let mut spans = vec![Span::raw(" line ")];
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        spans.push(Span::styled(
            format!("{} {name}  ", t.legend_sample(Iterate::Swa, split)),
            t.probe_series(split),
        ));
    }
    if curve {
        spans.push(Span::raw("curve "));
        for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
            spans.push(Span::styled(
                format!("{} {name}  ", t.legend_sample(Iterate::Sgd, split)),
                t.series(Iterate::Sgd, split),
            ));
        }
    }
    spans.push(Span::styled("┊ t=0 A  ┊ t=1 B ", t.dim()));
    Line::from(spans)
}

/// The connection's chart: the line and, when trained, the curve, with the ends marked.
pub(super) fn render_chart(app: &App, frame: &mut Frame, area: Rect, c: &ConnectResult) {
    let title = format!(" connection {} · {} → {} ", c.id, c.a.label(), c.b.label());
    let block = panel(app, title).title_bottom(legend(app, c.curve.is_some()));
    let line = [
        values(app, &c.points, Split::Train),
        values(app, &c.points, Split::Test),
    ];
    let curve: Vec<Vec<(f64, f64)>> = c.curve.as_ref().map_or(Vec::new(), |k| {
        vec![
            values(app, &k.points, Split::Train),
            values(app, &k.points, Split::Test),
        ]
    });
    let all: Vec<&[(f64, f64)]> = line.iter().chain(&curve).map(Vec::as_slice).collect();
    let Some((x, y)) = super::plot::extent(all.into_iter()) else {
        frame.render_widget(Paragraph::new("no points").block(block), area);
        return;
    };
    let acc = app.chart.quantity == Quantity::Accuracy;
    let axes = Axes::fit(x, y, area, app.chart.log_y && !acc, false);
    let marks: Vec<[(f64, f64); 2]> = [0.0, 1.0]
        .into_iter()
        .filter_map(|t| axes.vertical(t))
        .collect();
    let mut traces: Vec<Trace> = marks
        .iter()
        .map(|m| Trace::marker_line(m, &app.theme))
        .collect();
    for (data, split) in line.iter().zip([Split::Train, Split::Test]) {
        traces.push(Trace::probe(&app.theme, split, data));
    }
    for (data, split) in curve.iter().zip([Split::Train, Split::Test]) {
        traces.push(Trace::series(&app.theme, (Iterate::Sgd, split), data));
    }
    axes.render(frame, area, &traces, block, &app.theme);
}

/// "0.700 [0.676, 0.724] at t 0.50" (where on the path only when `at`).
fn barrier(b: &Option<Barrier>, at: bool) -> String {
    match b {
        Some(b) => {
            let interval = b
                .interval
                .map_or(String::new(), |i| format!(" [{:.3}, {:.3}]", i.lo, i.hi));
            let place = if at {
                format!(" at t {:.2}", b.at)
            } else {
                String::new()
            };
            format!("{:.3}{interval}{place}", b.value)
        }
        None => "–".into(),
    }
}

/// The score panel's lines for a connection.
pub(super) fn score_lines(app: &App, c: &ConnectResult) -> Vec<Line<'static>> {
    let mut lines = vec![Line::raw(format!(
        "line: train barrier {} · test {}",
        barrier(&c.train_barrier, true),
        barrier(&c.test_barrier, false)
    ))];
    if let Some(k) = &c.curve {
        lines.push(Line::styled(
            format!(
                "curve ({} ep.): train barrier {} · test {}",
                k.settings.epochs,
                barrier(&k.train_barrier, true),
                barrier(&k.test_barrier, false)
            ),
            app.theme.good(),
        ));
    }
    lines.push(Line::raw(format!(
        "sign consistency {:.1}% · |w_B − w_A| {:.3} · |w_A| {:.2}",
        100.0 * c.sign_consistency,
        c.distance,
        c.a_norm
    )));
    lines.push(Line::styled(
        format!(
            "BN {} · {} train / {} test samples · {:.1} s{}",
            c.bn.as_str(),
            c.train_samples,
            c.test_samples,
            c.seconds,
            c.curve
                .as_ref()
                .map_or(String::new(), |k| format!(" (curve {:.1} s)", k.seconds))
        ),
        app.theme.dim(),
    ));
    lines
}

/// A connection's row in the probe table (the table's columns: id, kind, centre, params, bn,
/// c, flat, asym).
pub(super) fn table_row(c: &ConnectResult) -> String {
    let barrier = c
        .train_barrier
        .map_or("–".into(), |b| format!("{:.3}", b.value));
    format!(
        "{:<20} {:<8} {:<8} {:<6} {:<9} {:>6} {:>4} {:>4}",
        crate::format::truncate(&c.id, 20),
        "connect",
        format!("{}→{}", c.a.iterate, c.b.iterate),
        "all",
        c.bn.as_str(),
        barrier,
        "",
        if c.curve.is_some() { "+crv" } else { "" },
    )
}

/// The hint while a connection is measured.
pub fn connecting_hint(app: &App) -> Option<String> {
    let (label, started) = app.probes.connecting.as_ref()?;
    Some(format!(
        "connecting {label} · {} so far · Esc cancels",
        crate::format::clock(app.clock_s - started)
    ))
}

/// The form, with what Enter does.
pub fn render_form(app: &App, frame: &mut Frame, area: Rect) {
    let form = &app.connect_form;
    let running = app
        .jobs
        .running
        .as_ref()
        .is_some_and(|j| j.kind == JobKind::Connect);
    let mut hint = "Enter measures the line (BN per point as chosen) · training waits".to_owned();
    if running {
        hint += " · one is running: this one queues";
    }
    super::forms::render_fields(
        app,
        frame,
        area,
        " connect two iterates ",
        (&form.fields, form.selected, |i| form.applies(i)),
        form.error.as_deref(),
        &hint,
    );
}
