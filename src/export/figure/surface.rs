//! A plane's losses as a 3-D surface, the figure style of Li et al. (2018) that landscape
//! papers reuse: the grid's cells as shaded quadrilaterals seen from above one corner, coloured
//! by their height on the viridis map, with the iterates and the training path on the surface.

use super::{FigureError, Heatmap, register_fonts};
use crate::plot::heatmap::{Grid, Levels, Scale, viridis};
use plotters::prelude::*;

/// How the surface is seen: turned (radians about the vertical) and tilted towards the viewer.
const YAW: f64 = 0.65;
const PITCH: f64 = 0.4;

/// The plane as a 3-D surface in SVG, `width` x `height` units, from the same data as its
/// contour figure. Cells with a value that is not finite are left open; the path and the
/// iterates sit on the surface (interpolated between grid points) and are drawn over it.
pub fn surface_svg(map: &Heatmap, width: u32, height: u32) -> Result<String, FigureError> {
    register_fonts();
    let (nx, ny) = (map.xs.len(), map.ys.len());
    if nx < 2 || ny < 2 || map.values.len() != nx * ny {
        return Err(FigureError("a surface needs at least 2x2 points".into()));
    }
    let levels = Levels::of(map.values, Scale::Linear)
        .ok_or_else(|| FigureError("no finite values to draw".into()))?;
    let (x0, x1) = (map.xs[0], map.xs[nx - 1]);
    let (y0, y1) = (map.ys[0], map.ys[ny - 1]);
    // A flat plane still needs a height to draw.
    let (z0, z1) = if levels.high > levels.low {
        (levels.low, levels.high)
    } else {
        (levels.low - 0.5, levels.low + 0.5)
    };
    let grid = Grid {
        values: map.values,
        nx,
        ny,
    };
    let on_surface = |x: f64, y: f64| {
        let (fx, fy) = ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0));
        ((0.0..=1.0).contains(&fx) && (0.0..=1.0).contains(&fy))
            .then(|| grid.bilinear(fx, fy))
            .filter(|v| v.is_finite())
    };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(FigureError::of)?;
        let (plot, footer) = root.split_vertically(height.saturating_sub(28));
        let mut chart = ChartBuilder::on(&plot)
            .caption(&map.title, ("sans-serif", 20))
            .margin(10)
            .build_cartesian_3d(x0..x1, z0..z1, y0..y1)
            .map_err(FigureError::of)?;
        chart.with_projection(|mut p| {
            p.yaw = YAW;
            p.pitch = PITCH;
            p.scale = 0.9;
            p.into_matrix()
        });
        let tick = |v: &f64| format!("{:.1}", if v.abs() < 1e-9 { 0.0 } else { *v });
        let height_tick = |v: &f64| format!("{v:.3}");
        chart
            .configure_axes()
            .light_grid_style(BLACK.mix(0.08))
            .max_light_lines(3)
            .label_style(("sans-serif", 12))
            .x_formatter(&tick)
            .z_formatter(&tick)
            .y_formatter(&height_tick)
            .draw()
            .map_err(FigureError::of)?;
        // Far cells first, so that near ones cover them (plotters draws in order).
        let mut cells: Vec<(usize, usize)> = (0..ny - 1)
            .flat_map(|j| (0..nx - 1).map(move |i| (i, j)))
            .collect();
        let coord = chart.as_coord_spec();
        let middle = (z0 + z1) / 2.0;
        let depth = |&(i, j): &(usize, usize)| {
            let x = (map.xs[i] + map.xs[i + 1]) / 2.0;
            let y = (map.ys[j] + map.ys[j + 1]) / 2.0;
            coord.projected_depth(&x, &middle, &y)
        };
        cells.sort_by_key(|c| std::cmp::Reverse(depth(c)));
        let quads = cells.into_iter().filter_map(|(i, j)| {
            let corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
            let values: Vec<f64> = corners
                .iter()
                .map(|&(a, b)| map.values[b * nx + a])
                .collect();
            if !values.iter().all(|v| v.is_finite()) {
                return None;
            }
            let mean = values.iter().sum::<f64>() / 4.0;
            let (r, g, b) = viridis(levels.fraction(mean));
            let points: Vec<(f64, f64, f64)> = corners
                .iter()
                .zip(&values)
                .map(|(&(a, b), &v)| (map.xs[a], v, map.ys[b]))
                .collect();
            let mut outline = points.clone();
            outline.push(points[0]);
            Some([
                Polygon::new(points, RGBColor(r, g, b).filled()).into_dyn(),
                PathElement::new(outline, BLACK.mix(0.25).stroke_width(1)).into_dyn(),
            ])
        });
        chart
            .draw_series(quads.flatten())
            .map_err(FigureError::of)?;
        // The path on the surface, then the iterates with their labels.
        let path: Vec<(f64, f64, f64)> = map
            .path
            .iter()
            .filter_map(|&(x, y, _)| on_surface(x, y).map(|v| (x, v, y)))
            .collect();
        if path.len() >= 2 {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    path.clone(),
                    WHITE.stroke_width(4),
                )))
                .map_err(FigureError::of)?;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    path,
                    BLACK.stroke_width(2),
                )))
                .map_err(FigureError::of)?;
        }
        for (x, y, label) in &map.markers {
            let Some(v) = on_surface(*x, *y) else {
                continue;
            };
            chart
                .draw_series([
                    Circle::new((*x, v, *y), 5, WHITE.filled()),
                    Circle::new((*x, v, *y), 5, BLACK.stroke_width(2)),
                ])
                .map_err(FigureError::of)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (*x, v, *y),
                    ("sans-serif", 15).into_font().color(&BLACK),
                )))
                .map_err(FigureError::of)?;
        }
        footer
            .draw(&Text::new(
                format!(
                    "height and colour: {} · {} · {}",
                    map.value_label, map.x_label, map.y_label
                ),
                (14, 6),
                ("sans-serif", 13).into_font().color(&BLACK),
            ))
            .map_err(FigureError::of)?;
        root.present().map_err(FigureError::of)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_of(plane: &crate::probe::plane::PlaneResult, values: &[f64]) -> String {
        let map = Heatmap {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            xs: &plane.xs,
            ys: &plane.ys,
            values,
            value_label: "test loss".into(),
            markers: vec![(0.0, 0.0, " SWA".into()), (1.0, 0.0, " SGD".into())],
            path: vec![(-0.4, -0.5, true), (0.0, 0.0, true), (9.0, 9.0, false)],
        };
        surface_svg(&map, 800, 500).unwrap()
    }

    #[test]
    fn every_cell_is_a_quadrilateral_and_an_unmeasured_corner_leaves_its_cells_open() {
        let plane = crate::probe::plane::valley_fixture("001-swa-sgd-swa", 7, 5);
        let mut values: Vec<f64> = plane.points.iter().map(|p| p.measured.test_loss).collect();
        let quads = |svg: &str| svg.matches("<polygon").count();
        let svg = map_of(&plane, &values);
        // The three panes behind the axes are polygons too.
        assert_eq!(quads(&svg), 6 * 4 + 3);
        assert!(svg.contains("SWA") && svg.contains("SGD"));
        assert!(svg.contains("height and colour: test loss"));
        // An interior point touches four cells.
        values[2 * 7 + 3] = f64::INFINITY;
        assert_eq!(quads(&map_of(&plane, &values)), 6 * 4 - 4 + 3);
        let one_row = Heatmap {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            xs: &plane.xs,
            ys: &plane.ys[..1],
            values: &values[..7],
            value_label: "v".into(),
            markers: Vec::new(),
            path: Vec::new(),
        };
        assert!(surface_svg(&one_row, 800, 500).is_err());
    }
}
