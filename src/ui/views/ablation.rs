//! The ablation view: the run with BN beside its no-BN twin, what SWA buys in each, and the
//! latest ablation (small multiples of its arms' curves, or the summary table). Also the
//! ablation menu overlay.

use super::dashboard::render_chart;
use super::plot::{self, Axes};
use super::{centred, panel, render_hint};
use crate::ablation::{AblationKind, AblationResult};
use crate::probe::{ProbeResult, format_c};
use crate::ui::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let [runs, gain, detail] = Layout::vertical([
        Constraint::Percentage(45),
        Constraint::Length(3),
        Constraint::Min(6),
    ])
    .areas(area);
    let [left, right] =
        Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(runs);
    render_chart(app, frame, left, "with BN · ");
    match &app.twin {
        Some(twin) => render_chart(twin, frame, right, "without BN (twin) · "),
        None => {
            let hint = if app.controllable {
                "no twin yet: b then t trains the same run without BN"
            } else {
                "no twin: `valleys ablate RUN_DIR --twin` trains one"
            };
            render_hint(app, frame, right, " without BN (twin) ", hint);
        }
    }
    let show = |g: Option<f64>| g.map_or("–".to_owned(), |g| format!("{g:+.4}"));
    let twin_gain = app.twin.as_ref().and_then(|t| t.swa_gain());
    let text = format!(
        "SWA gain in test loss (SGD − SWA): with BN {} · without BN {}",
        show(app.swa_gain()),
        show(twin_gain)
    );
    frame.render_widget(
        Paragraph::new(text).block(panel(app, " what averaging buys ")),
        gain,
    );
    // An ablation under way: what it has done and has left, in place of the last result.
    let running = app
        .jobs
        .running
        .as_ref()
        .filter(|j| matches!(j.kind, crate::ui::app::JobKind::Ablation(_)));
    if running.is_some()
        && let Some(status) = super::job_status(app)
    {
        render_hint(app, frame, detail, " ablation under way ", &status);
        return;
    }
    match app.ablations.last() {
        Some((result, probes)) if result.kind != AblationKind::Summary && !probes.is_empty() => {
            render_multiples(app, frame, detail, result, probes)
        }
        Some((result, _)) => render_table(app, frame, detail, result),
        None => {
            let hint =
                "b opens the menu: g groups · m BN modes · s summary · t twin · x stale-BN SWA";
            render_hint(app, frame, detail, " ablation ", hint);
        }
    }
}

/// One small chart per arm, same axes, so they compare at a glance.
fn render_multiples(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    result: &AblationResult,
    probes: &[ProbeResult],
) {
    let curves: Vec<Vec<(f64, f64)>> = probes
        .iter()
        .map(|p| p.points.iter().map(|q| (q.t, q.train_loss)).collect())
        .collect();
    let Some((x, y)) = plot::extent(curves.iter().map(|c| &c[..])) else {
        return render_table(app, frame, area, result);
    };
    let n = result.arms.len().max(1) as u32;
    let cells = Layout::horizontal((0..n).map(|_| Constraint::Ratio(1, n))).split(area);
    for ((arm, curve), cell) in result.arms.iter().zip(&curves).zip(cells.iter()) {
        let c = probes
            .iter()
            .find(|p| arm.probes.contains(&p.id))
            .and_then(|p| p.train_score.as_ref())
            .map_or("–".to_owned(), |s| {
                format!("{} flat {}", format_c(s.c), s.flat_side.symbol())
            });
        let block = panel(app, format!(" {} · c {c} ", arm.name));
        let axes = Axes::fit(x, y, *cell, false, false);
        let marks: Vec<[(f64, f64); 2]> = axes.vertical(0.0).into_iter().collect();
        let traces = plot::marked_curve(&marks, curve, &app.theme);
        axes.render(frame, *cell, &traces, block, &app.theme);
    }
}

fn render_table(app: &App, frame: &mut Frame, area: Rect, result: &AblationResult) {
    let lines: Vec<Line> = crate::ablation::table(result)
        .into_iter()
        .map(Line::raw)
        .collect();
    let title = format!(
        " ablation {} · asymmetric when c ≥ {} ",
        result.id, result.threshold
    );
    frame.render_widget(Paragraph::new(lines).block(panel(app, title)), area);
}

/// The ablation menu, over the current view.
pub fn render_menu(app: &App, frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = crate::ui::keymap::ABLATION_MENU
        .iter()
        .flat_map(|b| {
            let mut out = vec![Line::raw(format!(" {:<4} {}", b.label, b.description))];
            if let Some(cost) = menu_cost(app, b.action) {
                out.push(Line::styled(format!("      {cost}"), app.theme.dim()));
            }
            out
        })
        .collect();
    lines.push(Line::raw(""));
    let stale = if app.stale_bn { "on" } else { "off" };
    lines.push(Line::styled(
        format!(" stale-BN SWA series: {stale} · probes go to probes/, results to ablations/"),
        app.theme.dim(),
    ));
    let rect = centred(area, 76, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(panel(app, " batch-norm ablations ")),
        rect,
    );
}

/// What an ablation will take: probes × points, and the time at the last probe's seconds
/// per point (once there has been one).
fn menu_cost(app: &App, action: crate::ui::keymap::Action) -> Option<String> {
    use crate::ui::keymap::Action;
    let info = app.info.as_ref()?;
    let spec = info
        .ablation_probe
        .resolved(info.seed, info.device.starts_with("cuda"));
    // An auto range first searches for T: about 17 points more per probe.
    let points = spec.points.unwrap_or(41) + if spec.auto_range.is_some() { 17 } else { 0 };
    let centres = if app
        .latest
        .keys()
        .any(|(it, _)| *it == crate::protocol::Iterate::Swa)
    {
        2
    } else {
        1
    };
    let twin = app
        .twin
        .as_ref()
        .is_some_and(|t| t.state == crate::ui::app::RunState::Finished);
    let probes = match action {
        Action::AblateGroups | Action::AblateBnModes => 3,
        Action::AblateSummary => {
            (3 + usize::from(twin)) * centres * info.ablation_directions.max(2)
        }
        _ => return None,
    };
    let per_point = app.probes.results.last().map(|r| r.cost.seconds_per_point);
    Some(ablation_cost(probes, points, per_point))
}

/// "3 probes × 41 points ≈ 0:25" (the time only when a speed is known).
pub fn ablation_cost(probes: usize, points: usize, seconds_per_point: Option<f64>) -> String {
    let mut s = format!("{probes} probes × {points} points");
    if let Some(sp) = seconds_per_point.filter(|s| s.is_finite() && *s > 0.0) {
        s += &format!(" ≈ {}", super::clock(sp * (probes * points) as f64));
    }
    s
}
