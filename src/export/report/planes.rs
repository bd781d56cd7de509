//! The report's planes: each stored plane as a filled contour figure of its test loss with
//! the iterates marked, and the two 1-D slices through the centre beside it.

use super::{Doc, HEIGHT, ReportError, WIDTH};
use crate::export::figure::{self, Figure, Heatmap, Line, palette};
use crate::probe::plane::{PlaneKind, PlaneResult};
use crate::rundir::RunDir;
use std::fmt::Write;

pub(super) fn section(doc: &mut Doc, run: &RunDir) -> Result<(), ReportError> {
    let (planes, unreadable) = crate::probe::store::read_planes(run);
    doc.report.unreadable.extend(unreadable);
    if planes.is_empty() {
        return Ok(());
    }
    let _ = writeln!(doc.md, "## Planes\n");
    for r in &planes {
        let values: Vec<f64> = r.points.iter().map(|p| p.measured.test_loss).collect();
        let (d1, d2) = r.spec.direction_labels();
        let (x_label, y_label) = match r.spec.kind {
            PlaneKind::SwaSgd => (format!("x (along d₁ = {d1})"), "y (along d₂ ⟂ d₁)".into()),
            PlaneKind::Random => ("x (along d₁)".into(), "y (along d₂ ⟂ d₁)".into()),
            PlaneKind::Hessian | PlaneKind::Pca => (
                format!("x (along d₁ = {d1})"),
                format!("y (along d₂ = {d2})"),
            ),
        };
        let map = Heatmap {
            title: format!("plane {}: test loss", r.id),
            x_label,
            y_label,
            xs: &r.xs,
            ys: &r.ys,
            values: &values,
            value_label: "test loss".into(),
            markers: r
                .markers
                .iter()
                .map(|m| (m.x, m.y, format!(" {}", m.label)))
                .collect(),
            path: r
                .path
                .iter()
                .map(|p| {
                    let q = p.projection;
                    (q.x, q.y, q.residual <= crate::trajectory::HELD)
                })
                .collect(),
        };
        let name = format!("plane-{}", r.id);
        doc.save(&name, figure::heatmap_svg(&map, WIDTH, HEIGHT))?;
        let surface = format!("plane-surface-{}", r.id);
        doc.save(&surface, figure::surface_svg(&map, WIDTH, HEIGHT))?;
        let vtk = doc.report.dir.join(format!("{name}.vts"));
        crate::rundir::write_atomic(&vtk, crate::export::vtk::structured_grid(r).as_bytes())?;
        doc.caption(
            &name,
            &r.id,
            format!(
                "Plane {}: test loss over w = w_c + x·d₁ + y·d₂ through the {} at epoch {} ({}x{} points, d₁ {d1}, d₂ {d2}, params {}, BN {}). |d₁| = {:.4}, |d₂| = {:.4}, cos = {:.1e}{}; {:.3} s per point.",
                r.id,
                r.centre,
                r.epoch,
                r.xs.len(),
                r.ys.len(),
                r.spec.params.as_str(),
                r.spec.bn.as_str(),
                r.d1_norm,
                r.d2_norm,
                r.cosine,
                [
                    r.eigenvalues.map_or(String::new(), |(a, b)| {
                        let (k1, k2) = r.spec.eigenvector_pair();
                        format!("; Hessian eigenvalues λ{k1} = {a:.4}, λ{k2} = {b:.4}")
                    }),
                    r.explained_variance.map_or(String::new(), |(a, b)| format!(
                        "; the trajectory's variance along d₁ {:.1}%, along d₂ {:.1}%",
                        100.0 * a,
                        100.0 * b
                    )),
                    path_caption(r),
                ]
                .concat(),
                r.cost.seconds_per_point
            ),
        );
        let _ = writeln!(
            doc.md,
            "For ParaView or VTK: [{name}.vts]({name}.vts), the surface (x, y, test loss) with the losses, their log₁₀, the accuracies and the gap as point fields.\n"
        );
        doc.caption(
            &surface,
            &surface,
            format!(
                "Plane {} as a surface, as Li et al. (2018) draw loss landscapes: the same test losses as height and colour, the iterates and the path on it.",
                r.id
            ),
        );
        if let Some(fig) = slices(r) {
            let name = format!("plane-slices-{}", r.id);
            doc.save(&name, figure::svg(&fig, WIDTH, HEIGHT))?;
            doc.caption(
                &name,
                &name,
                format!(
                    "The slices of plane {} through the centre: along d₁ (y = 0) and along d₂ (x = 0), train (solid) and test (dashed) loss; they are the 1-D probes along those lines.",
                    r.id
                ),
            );
        }
    }
    Ok(())
}

/// The row y = 0 and the column x = 0, when the grid holds them.
fn slices(r: &PlaneResult) -> Option<Figure> {
    let row = r.ys.iter().position(|&y| y == 0.0)?;
    let column = r.xs.iter().position(|&x| x == 0.0)?;
    let along_x: Vec<_> = (0..r.xs.len()).map(|i| r.at(i, row)).collect();
    let along_y: Vec<_> = (0..r.ys.len()).map(|j| r.at(column, j)).collect();
    let line = |name: &str, points: Vec<(f64, f64)>, color, dashed| Line {
        name: name.into(),
        points,
        color,
        dashed,
    };
    Some(Figure {
        title: format!("plane {}: slices through the centre", r.id),
        x_label: "x (along d₁) or y (along d₂)".into(),
        y_label: "loss".into(),
        log_y: false,
        lines: vec![
            line(
                "train along d₁",
                along_x
                    .iter()
                    .map(|p| (p.x, p.measured.train_loss))
                    .collect(),
                palette::BLUE,
                false,
            ),
            line(
                "test along d₁",
                along_x
                    .iter()
                    .map(|p| (p.x, p.measured.test_loss))
                    .collect(),
                palette::BLUE,
                true,
            ),
            line(
                "train along d₂",
                along_y
                    .iter()
                    .map(|p| (p.y, p.measured.train_loss))
                    .collect(),
                palette::ORANGE,
                false,
            ),
            line(
                "test along d₂",
                along_y
                    .iter()
                    .map(|p| (p.y, p.measured.test_loss))
                    .collect(),
                palette::ORANGE,
                true,
            ),
        ],
        markers: r
            .markers
            .iter()
            .filter(|m| m.y == 0.0)
            .map(|m| (m.x, m.label.clone()))
            .collect(),
        notes: Vec::new(),
    })
}

/// What the caption says of the path drawn on a plane: how many iterates and how many the
/// plane holds.
fn path_caption(r: &PlaneResult) -> String {
    if r.path.is_empty() {
        return String::new();
    }
    let held = r
        .path
        .iter()
        .filter(|p| p.projection.residual <= crate::trajectory::HELD)
        .count();
    format!(
        "; the black line is the SGD path from initialisation ({} iterates projected onto the plane, {held} of them held by it; grey dots are iterates more than {:.0}% of whose offset from the centre lies off the plane)",
        r.path.len(),
        100.0 * crate::trajectory::HELD
    )
}
