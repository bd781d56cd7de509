//! The plane view: the running plane (or a stored one) as a heatmap filling in coarse to fine,
//! with contour lines at the legend's levels, the iterates marked and a cursor; the values at
//! the cursor and at the iterates; and the two 1-D slices through the cursor. Also the plane
//! form overlay.

mod map;

use super::plot::{self, Axes, Trace};
use super::{panel, render_hint};
use crate::plot::heatmap::{self, Grid, Levels, Mark, Scale};
use crate::probe::plane::{self, Marker, PlaneCost, PlanePoint, PlaneSpec};
use crate::protocol::Split;
use crate::ui::app::App;
use crate::ui::braille::Stroke;
use crate::ui::theme::Theme;
use map::render_map;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// The plane on screen: the running one, else the selected result.
struct Shown<'a> {
    id: &'a str,
    spec: &'a PlaneSpec,
    xs: &'a [f64],
    ys: &'a [f64],
    markers: &'a [Marker],
    /// Row by row, None where not measured yet.
    points: Vec<Option<&'a PlanePoint>>,
    /// Points done and in all, while it runs.
    progress: Option<(usize, usize)>,
    cost: Option<&'a PlaneCost>,
    /// A Hessian plane's eigenvalues along d₁ and d₂.
    eigenvalues: Option<(f64, f64)>,
    /// A pca plane's shares of the trajectory's variance.
    explained_variance: Option<(f64, f64)>,
    /// The run's stored path, projected.
    path: &'a [crate::trajectory::PathPoint],
}

impl Shown<'_> {
    fn at(&self, i: usize, j: usize) -> Option<&PlanePoint> {
        self.points[j * self.xs.len() + i]
    }
}

fn shown(app: &App) -> Option<Shown<'_>> {
    if let Some(live) = &app.planes.live {
        let h = &live.header;
        return Some(Shown {
            id: &h.id,
            spec: &h.spec,
            xs: &h.xs,
            ys: &h.ys,
            markers: &h.markers,
            points: live.points.iter().map(Option::as_ref).collect(),
            progress: Some((live.done(), h.total())),
            cost: None,
            eigenvalues: h.eigenvalues,
            explained_variance: h.explained_variance,
            path: &h.path,
        });
    }
    let r = app.planes.results.get(app.planes.selected)?;
    Some(Shown {
        id: &r.id,
        spec: &r.spec,
        xs: &r.xs,
        ys: &r.ys,
        markers: &r.markers,
        points: r.points.iter().map(Some).collect(),
        progress: None,
        cost: Some(&r.cost),
        eigenvalues: r.eigenvalues,
        explained_variance: r.explained_variance,
        path: &r.path,
    })
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(s) = shown(app) else {
        let planning = app
            .jobs
            .running
            .iter()
            .chain(&app.jobs.queued)
            .find(|job| job.kind == crate::ui::app::JobKind::Plane);
        let hint = if let Some(job) = planning {
            if app.jobs.running.as_ref() == Some(job) {
                "measuring the plane: timing one forward pass and drawing the directions before the first point (Esc cancels)"
            } else {
                "the plane is queued: it starts when the running job ends (Esc cancels the running one)"
            }
        } else if let Some(failure) = &app.probes.failure {
            failure.as_str()
        } else if app.controllable {
            "no plane yet: press P for the plane form (SWA, SGD and a random direction)"
        } else {
            "planes run on the live weights: `valleys plane RUN_DIR` measures one of a saved checkpoint"
        };
        render_hint(app, frame, area, " plane ", hint);
        return;
    };
    let cursor = app.planes.cursor.unwrap_or_else(|| {
        (
            plane::nearest_index(s.xs, 0.0),
            plane::nearest_index(s.ys, 0.0),
        )
    });
    let cursor = (cursor.0.min(s.xs.len() - 1), cursor.1.min(s.ys.len() - 1));
    let slices_height = if area.height >= 20 {
        area.height / 3
    } else {
        0
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Min(8), Constraint::Length(slices_height)]).areas(area);
    let info_width = if top.width >= 120 { 46 } else { 34 };
    let [map_area, info_area] =
        Layout::horizontal([Constraint::Min(20), Constraint::Length(info_width)]).areas(top);
    render_map(app, frame, map_area, &s, cursor);
    render_info(app, frame, info_area, &s, cursor);
    if slices_height > 0 {
        let [along_x, along_y] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(bottom);
        render_slice(app, frame, along_x, &s, cursor, Axis::X);
        render_slice(app, frame, along_y, &s, cursor, Axis::Y);
    }
}

/// The colour scale of the values shown; a log scale only for losses (a gap can be negative).
fn scale(app: &App) -> Scale {
    if app.planes.log && app.planes.show != plane::PlaneValue::Gap {
        Scale::Log
    } else {
        Scale::Linear
    }
}

fn values(app: &App, s: &Shown) -> Vec<f64> {
    s.points
        .iter()
        .map(|p| p.map_or(f64::NAN, |p| app.planes.show.of(&p.measured)))
        .collect()
}

/// Where `v` falls on `axis`, in grid steps (fractional).
fn position(v: f64, axis: &[f64]) -> f64 {
    let (a, b) = (axis[0], axis[axis.len() - 1]);
    (v - a) / (b - a) * (axis.len() - 1) as f64
}

fn render_info(app: &App, frame: &mut Frame, area: Rect, s: &Shown, cursor: (usize, usize)) {
    let (i, j) = cursor;
    let (x, y) = (s.xs[i], s.ys[j]);
    let dim = app.theme.dim();
    let mut lines = vec![Line::styled(
        format!("cursor x {x:.3}, y {y:.3}"),
        app.theme.key(),
    )];
    let with_se = |v: f64, se: Option<f64>| match se {
        Some(se) => format!("{v:.4} ± {se:.4}"),
        None => format!("{v:.4}"),
    };
    match s.at(i, j) {
        Some(p) => {
            let m = &p.measured;
            lines.push(Line::raw(format!(
                "test  {} · {:.1}%",
                with_se(m.test_loss, m.test_loss_se),
                100.0 * m.test_acc
            )));
            lines.push(Line::raw(format!(
                "train {} · {:.1}%",
                with_se(m.train_loss, m.train_loss_se),
                100.0 * m.train_acc
            )));
            lines.push(Line::raw(format!(
                "gap   {:.4}",
                m.test_loss - m.train_loss
            )));
        }
        None => lines.push(Line::styled("not measured yet", dim)),
    }
    lines.push(Line::raw(""));
    for m in s.markers {
        let at = s.at(
            plane::nearest_index(s.xs, m.x),
            plane::nearest_index(s.ys, m.y),
        );
        let value = at.map_or("…".into(), |p| format!("{:.4}", p.measured.test_loss));
        lines.push(Line::raw(format!(
            "{} {} ({}, {}): test {value}",
            m.letter, m.label, m.x, m.y
        )));
    }
    if let Some(low) = plane::lowest(s.points.iter().flatten().copied()) {
        lines.push(Line::raw(format!(
            "lowest {:.4} at ({:.2}, {:.2})",
            low.measured.test_loss, low.x, low.y
        )));
    }
    lines.push(Line::raw(""));
    let spec = s.spec;
    let (d1, d2) = spec.direction_labels();
    lines.push(Line::styled(
        format!(
            "d₁ {d1} · d₂ {d2} · params {} · BN {}",
            spec.params.as_str(),
            spec.bn.as_str()
        ),
        dim,
    ));
    if let Some((a, b)) = s.eigenvalues {
        let (k1, k2) = spec.eigenvector_pair();
        lines.push(Line::styled(format!("λ{k1} {a:.4} · λ{k2} {b:.4}"), dim));
    }
    if let Some((a, b)) = s.explained_variance {
        lines.push(Line::styled(
            format!(
                "variance of the path: d₁ {:.1}% · d₂ {:.1}%",
                100.0 * a,
                100.0 * b
            ),
            dim,
        ));
    }
    if !s.path.is_empty() {
        let held = s
            .path
            .iter()
            .filter(|p| p.projection.residual <= crate::trajectory::HELD)
            .count();
        lines.push(Line::styled(
            format!(
                "path {} iterates, {held} held · 0 start + epoch o SWA x off",
                s.path.len()
            ),
            dim,
        ));
    }
    match (s.progress, s.cost) {
        (Some((done, total)), _) => lines.push(Line::styled(
            format!(
                "{done}/{total} points, coarse to fine (the rest drawn from the nearest measured) · Esc cancels"
            ),
            dim,
        )),
        (None, Some(cost)) => lines.push(Line::styled(
            format!(
                "{} points · {} · {:.2} s a point",
                cost.points,
                crate::format::clock(cost.seconds),
                cost.seconds_per_point
            ),
            dim,
        )),
        (None, None) => {}
    }
    if app.planes.results.len() > 1 && s.progress.is_none() {
        lines.push(Line::styled(
            format!(
                "plane {}/{} ([ ] for others)",
                app.planes.selected + 1,
                app.planes.results.len()
            ),
            dim,
        ));
    }
    let text = Paragraph::new(lines)
        .wrap(ratatui::widgets::Wrap { trim: true })
        .block(panel(app, " at the cursor "));
    frame.render_widget(text, area);
}

#[derive(Clone, Copy, PartialEq)]
enum Axis {
    X,
    Y,
}

/// The loss along the grid row (`Axis::X`) or column (`Axis::Y`) through the cursor, train
/// and test, with the cursor's position marked.
fn render_slice(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    s: &Shown,
    cursor: (usize, usize),
    axis: Axis,
) {
    let (i, j) = cursor;
    let points: Vec<(f64, &PlanePoint)> = match axis {
        Axis::X => (0..s.xs.len())
            .filter_map(|k| s.at(k, j).map(|p| (s.xs[k], p)))
            .collect(),
        Axis::Y => (0..s.ys.len())
            .filter_map(|k| s.at(i, k).map(|p| (s.ys[k], p)))
            .collect(),
    };
    let title = match axis {
        Axis::X => format!(" along x at y {:.2} ", s.ys[j]),
        Axis::Y => format!(" along y at x {:.2} ", s.xs[i]),
    };
    let block = panel(app, title);
    let train: Vec<(f64, f64)> = points
        .iter()
        .map(|(t, p)| (*t, p.measured.train_loss))
        .collect();
    let test: Vec<(f64, f64)> = points
        .iter()
        .map(|(t, p)| (*t, p.measured.test_loss))
        .collect();
    let Some((xr, yr)) = plot::extent([&train[..], &test[..]].into_iter()) else {
        frame.render_widget(Paragraph::new("no points yet").block(block), area);
        return;
    };
    let axes = Axes::fit(xr, yr, area, false, false);
    let at = match axis {
        Axis::X => s.xs[i],
        Axis::Y => s.ys[j],
    };
    let marks: Vec<[(f64, f64); 2]> = axes.vertical(at).into_iter().collect();
    let mut traces: Vec<Trace> = marks
        .iter()
        .map(|m| Trace::marker_line(m, &app.theme))
        .collect();
    for (data, split) in [(&train, Split::Train), (&test, Split::Test)] {
        traces.push(Trace::probe(&app.theme, split, data));
        traces.push(Trace {
            stroke: Stroke::Dots,
            ..Trace::probe(&app.theme, split, data)
        });
    }
    axes.render(frame, area, &traces, block, &app.theme);
}

/// The plane form overlay.
pub fn render_form(app: &App, frame: &mut Frame, area: Rect) {
    let form = &app.plane_form;
    let cost = form.spec().ok().map(|spec| {
        let (nx, ny) = spec.points;
        // The last plane of this run with the same BN pass is the best guess of a point's
        // time; the worker times one forward pass before the first point either way.
        let per_point = app
            .planes
            .results
            .iter()
            .rev()
            .find(|r| r.spec.bn == spec.bn && r.spec.bn_subset == spec.bn_subset)
            .map(|r| r.cost.seconds_per_point);
        plane_cost(nx * ny, per_point)
    });
    let hint = match cost {
        Some(cost) => format!("{cost} · Enter measures it, coarse to fine · training waits"),
        None => "Enter measures it, coarse to fine · training waits meanwhile".to_owned(),
    };
    super::forms::render_fields(
        app,
        frame,
        area,
        " new plane ",
        (&form.fields, form.selected, |i| form.applies(i)),
        form.error.as_deref(),
        &hint,
    );
}

/// "441 points ≈ 5:23 at 0.73 s a point (as the last plane)", or, before any plane of the
/// run, "441 points, timed before the first".
pub fn plane_cost(points: usize, seconds_per_point: Option<f64>) -> String {
    match seconds_per_point.filter(|s| s.is_finite() && *s > 0.0) {
        Some(sp) => format!(
            "{points} points ≈ {} at {sp:.2} s a point (as the last plane)",
            super::clock(sp * points as f64)
        ),
        None => format!("{points} points, their cost timed before the first"),
    }
}
