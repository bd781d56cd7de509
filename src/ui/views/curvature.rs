//! The curvature view: the running measurement's progress, the selected result's numbers at
//! SGD and SWA (top eigenvalues, trace, sharpness, each with its interval) beside the spectral
//! density by SLQ with the top eigenvalues marked, and the curvature form overlay.

use super::plot::{Axes, Trace};
use super::{clock, panel, render_hint};
use crate::curvature::{CurvatureResult, Estimate, density, significant};
use crate::protocol::{Iterate, Split};
use crate::ui::app::{App, JobKind};
use crate::ui::chart;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let live_height = if app.curvature.live.is_some() { 4 } else { 0 };
    let [live_area, body] =
        Layout::vertical([Constraint::Length(live_height), Constraint::Min(0)]).areas(area);
    if live_height > 0 {
        render_live(app, frame, live_area);
    }
    let Some(result) = app.curvature.results.get(app.curvature.selected) else {
        let hint = if app.curvature.live.is_some() {
            "measuring: the numbers appear here when the job ends".to_owned()
        } else if let Some(failure) = &app.probes.failure {
            failure.clone()
        } else if app.controllable {
            "no curvature job yet: H measures the Hessian's top eigenvalues, trace, spectral density and sharpness at SGD and SWA (training waits)".to_owned()
        } else {
            "curvature jobs run on the live weights: `valleys curvature RUN_DIR` measures a saved checkpoint".to_owned()
        };
        render_hint(app, frame, body, " curvature ", &hint);
        return;
    };
    if body.width >= 110 {
        let width = (body.width / 2).clamp(62, 84);
        let [numbers, plot] =
            Layout::horizontal([Constraint::Length(width), Constraint::Min(40)]).areas(body);
        render_numbers(app, frame, numbers, result);
        render_density(app, frame, plot, result);
    } else {
        let [numbers, plot] =
            Layout::vertical([Constraint::Min(10), Constraint::Percentage(45)]).areas(body);
        render_numbers(app, frame, numbers, result);
        render_density(app, frame, plot, result);
    }
}

/// The running measurement: what, how far, how long left.
fn render_live(app: &App, frame: &mut Frame, area: Rect) {
    let Some(live) = &app.curvature.live else {
        return;
    };
    let elapsed = (app.clock_s - live.started_s).max(0.0);
    let status = format!(
        "{}/{} Hessian-vector products · {} · {} · ETA {}",
        live.done,
        live.planned,
        if live.what.is_empty() {
            "timing one product"
        } else {
            &live.what
        },
        clock(elapsed),
        clock(live.seconds_left(app.clock_s))
    );
    let block = panel(app, format!(" {} ", live.label));
    let text = vec![
        Line::raw(status),
        Line::styled(live.plan.clone(), app.theme.dim()),
    ];
    frame.render_widget(
        Paragraph::new(text)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(block),
        area,
    );
}

/// One row per number, one column per centre: the rows of the comparison the paper argues
/// about, intervals as measured.
pub fn number_rows(r: &CurvatureResult) -> Vec<(String, Vec<String>)> {
    let cell = |e: Option<&Estimate>| e.map_or("–".to_owned(), |e| e.describe(3));
    let mut rows: Vec<(String, Vec<String>)> = vec![(
        "test loss".into(),
        r.centres
            .iter()
            .map(|c| format!("{:.4}", c.test_loss))
            .collect(),
    )];
    rows.push((
        "train loss (H's)".into(),
        r.centres.iter().map(|c| cell(Some(&c.loss))).collect(),
    ));
    let k = r
        .centres
        .iter()
        .map(|c| c.eigenvalues.len())
        .max()
        .unwrap_or(0);
    for i in 0..k {
        rows.push((
            format!("λ{}", i + 1),
            r.centres
                .iter()
                .map(|c| cell(c.eigenvalues.get(i)))
                .collect(),
        ));
    }
    for (name, pick) in [
        (
            "trace",
            (|c| c.trace) as fn(&crate::curvature::CentreCurvature) -> Option<Estimate>,
        ),
        ("avg sharpness", |c| c.average_sharpness),
        ("worst sharpness", |c| c.worst_sharpness),
    ] {
        if r.centres.iter().any(|c| pick(c).is_some()) {
            rows.push((
                name.into(),
                r.centres.iter().map(|c| cell(pick(c).as_ref())).collect(),
            ));
        }
    }
    if r.centres.iter().any(|c| c.top_relative_spread.is_some()) {
        rows.push((
            "λ1 spread (sets)".into(),
            r.centres
                .iter()
                .map(|c| {
                    c.top_relative_spread
                        .map_or("–".into(), |s| format!("{:.1}%", 100.0 * s))
                })
                .collect(),
        ));
    }
    rows
}

fn render_numbers(app: &App, frame: &mut Frame, area: Rect, r: &CurvatureResult) {
    let n = app.curvature.results.len();
    let title = format!(
        " curvature {} · epoch {} · {}/{n} ",
        r.id,
        r.epoch,
        app.curvature.selected + 1
    );
    let block = panel(app, title);
    let inner_width = usize::from(block.inner(area).width);
    let label_width = 17;
    let column = (inner_width.saturating_sub(label_width) / r.centres.len().max(1)).max(8);
    let mut lines = vec![Line::styled(
        format!(
            "{:label_width$}{}",
            "",
            r.centres
                .iter()
                .map(|c| format!("{:column$}", c.centre.to_uppercase()))
                .collect::<String>()
        ),
        app.theme.key(),
    )];
    for (name, cells) in number_rows(r) {
        let cells: String = cells
            .iter()
            .map(|c| format!("{:column$}", fit(c, column.saturating_sub(1))))
            .collect();
        lines.push(Line::raw(format!("{name:label_width$}{cells}")));
    }
    let intervals = if r.settings.sets > 1 {
        format!(
            "95% intervals over {} disjoint sample sets",
            r.settings.sets
        )
    } else {
        "95% intervals over the random vectors (one sample set)".to_owned()
    };
    lines.push(Line::raw(""));
    lines.push(Line::styled(intervals, app.theme.dim()));
    lines.push(Line::styled(r.loss.clone(), app.theme.dim()));
    lines.push(Line::styled(
        format!(
            "Hessian of {} parameters ({}) · {} products × {:.3} s = {:.1}× a forward+backward · {}",
            crate::format::group_thousands(r.dimension),
            r.settings.params.as_str(),
            r.cost.products,
            r.cost.seconds_per_product,
            r.cost.ratio,
            clock(r.cost.seconds)
        ),
        app.theme.dim(),
    ));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(block),
        area,
    );
}

/// `text` cut to `width` characters with an ellipsis.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Each centre's smoothed SLQ density over one span, log density by default, with each
/// centre's λ_max as a dim vertical line.
fn render_density(app: &App, frame: &mut Frame, area: Rect, r: &CurvatureResult) {
    let all: Vec<_> = r.centres.iter().flat_map(|c| c.quadratures()).collect();
    let log = !app.curvature.linear;
    let title = format!(
        " spectral density (SLQ){} · │ λ_max ",
        if log { " · log" } else { "" }
    );
    let block = panel(app, title);
    let Some(span) = density::span(&all) else {
        let empty = Paragraph::new("no density in this job (density_runs: 0)")
            .alignment(Alignment::Center)
            .block(block);
        frame.render_widget(empty, area);
        return;
    };
    let points = usize::from(area.width.max(20)) * 2;
    let curves: Vec<(Iterate, Vec<(f64, f64)>)> = r
        .centres
        .iter()
        .filter(|c| !c.quadratures().is_empty())
        .map(|c| {
            let iterate = if c.centre == "swa" {
                Iterate::Swa
            } else {
                Iterate::Sgd
            };
            let curve = density::curve(&c.quadratures(), span, points)
                .into_iter()
                .map(|(x, y)| {
                    let y = y.max(1e-8);
                    (x, if log { chart::log10_saturating(y) } else { y })
                })
                .collect();
            (iterate, curve)
        })
        .collect();
    let ys = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1));
    let (y_lo, y_hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    // The density spans many decades in its far tails; six below the peak is plenty.
    let y_lo = if log { y_lo.max(y_hi - 6.0) } else { 0.0 };
    let axes = Axes::fit((span.0, span.1), (y_lo, y_hi), area, log, false);
    let markers: Vec<[(f64, f64); 2]> = r
        .centres
        .iter()
        .filter_map(|c| axes.vertical(c.eigenvalues.first()?.value))
        .collect();
    let mut traces: Vec<Trace> = markers
        .iter()
        .map(|m| Trace::marker_line(m, &app.theme))
        .collect();
    for (iterate, curve) in &curves {
        traces.push(Trace::series(&app.theme, (*iterate, Split::Train), curve));
    }
    let legend = r
        .centres
        .iter()
        .map(|c| {
            let top = c.eigenvalues.first().map_or(String::new(), |e| {
                format!(" λ_max {}", significant(e.value, 3))
            });
            format!("{}{top}", c.centre.to_uppercase())
        })
        .collect::<Vec<_>>()
        .join("  ");
    let block = block.title_bottom(Line::raw(format!(" {legend} ")));
    axes.render(frame, area, &traces, block, &app.theme);
}

/// The form, with the job's size and its expected cost from the last job's pace.
pub fn render_form(app: &App, frame: &mut Frame, area: Rect) {
    let form = &app.curvature_form;
    let hint = match form.spec() {
        Ok(spec) => {
            let sets = spec.sets.unwrap_or(3);
            let per_set = spec.lanczos_steps.unwrap_or(60)
                + spec.trace_vectors.unwrap_or(20)
                + spec.density_runs.unwrap_or(2) * spec.density_steps.unwrap_or(30);
            let centres = match spec.centre {
                crate::config::curvature::CurvatureCentres::Both
                    if app.latest.keys().any(|(it, _)| *it == Iterate::Swa) =>
                {
                    2
                }
                _ => 1,
            };
            let products = sets * centres * per_set;
            let pace = app
                .curvature
                .results
                .last()
                .map(|r| r.cost.seconds_per_product)
                .filter(|s| s.is_finite() && *s > 0.0);
            let cost = match pace {
                Some(s) => format!(
                    "≤ {products} Hessian-vector products ≈ {} at {s:.2} s each (as the last job)",
                    clock(s * products as f64)
                ),
                None => format!("≤ {products} Hessian-vector products, timed before the first"),
            };
            format!("{cost} · Enter measures · training waits")
        }
        Err(_) => "Enter measures · training waits meanwhile".to_owned(),
    };
    let running = app
        .jobs
        .running
        .as_ref()
        .is_some_and(|j| j.kind == JobKind::Curvature);
    let hint = if running {
        format!("{hint} · one is running: this one queues")
    } else {
        hint
    };
    super::forms::render_fields(
        app,
        frame,
        area,
        " curvature: Hessian at SGD and SWA ",
        (&form.fields, form.selected, |i| form.applies(i)),
        form.error.as_deref(),
        &hint,
    );
}
