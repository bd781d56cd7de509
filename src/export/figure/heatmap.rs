//! A plane's losses as a publication figure: filled contours in the colour bar's bands, the
//! iterates marked, the colour bar beside.

use super::{FigureChart, FigureError, register_fonts};
use plotters::prelude::*;

/// A heatmap of values on a grid (a plane's losses): one filled cell per grid point in the
/// viridis colour map, a colour bar, and labelled markers (the iterates).
pub struct Heatmap<'a> {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub xs: &'a [f64],
    pub ys: &'a [f64],
    /// Row by row (y outer, x inner), `xs.len() * ys.len()` values; NaN cells stay white.
    pub values: &'a [f64],
    /// What the colours mean, e.g. "test loss".
    pub value_label: String,
    pub markers: Vec<(f64, f64, String)>,
    /// The training path on the plane, in order: (x, y, held by the plane).
    pub path: Vec<(f64, f64, bool)>,
}

/// Sub-cells per grid step along each axis of a filled contour figure: enough for the band
/// boundaries to follow the interpolated surface smoothly.
const CONTOUR_SUBDIVISION: usize = 8;

/// The plane as a filled contour figure in SVG, `width` x `height` units: the values
/// interpolated bilinearly between grid points and coloured by the contour band they fall in
/// (the colour bar's [`CONTOUR_BANDS`](crate::plot::heatmap::CONTOUR_BANDS) levels), the
/// markers on top.
pub fn heatmap_svg(map: &Heatmap, width: u32, height: u32) -> Result<String, FigureError> {
    use crate::plot::heatmap::{Grid, Levels, Scale, band_colour};
    register_fonts();
    let levels = Levels::of(map.values, Scale::Linear)
        .ok_or_else(|| FigureError("no finite values to draw".into()))?;
    let (nx, ny) = (map.xs.len(), map.ys.len());
    if nx < 2 || ny < 2 {
        return Err(FigureError("a heatmap needs at least 2x2 points".into()));
    }
    let grid = Grid {
        values: map.values,
        nx,
        ny,
    };
    let rgb = |k: usize| {
        let (r, g, b) = band_colour(k);
        RGBColor(r, g, b)
    };
    let (x0, x1) = (map.xs[0], map.xs[nx - 1]);
    let (y0, y1) = (map.ys[0], map.ys[ny - 1]);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(FigureError::of)?;
        let (plot, bar) = root.split_horizontally(width.saturating_sub(110));
        let mut chart = ChartBuilder::on(&plot)
            .caption(&map.title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(FigureError::of)?;
        // No "-0.0" ticks.
        let tick = |v: &f64| format!("{:.1}", if v.abs() < 1e-9 { 0.0 } else { *v });
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&map.x_label)
            .y_desc(&map.y_label)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(FigureError::of)?;
        // Rows of sub-cells; a run of one band along a row is one rectangle.
        let (cols, rows) = (
            (nx - 1) * CONTOUR_SUBDIVISION,
            (ny - 1) * CONTOUR_SUBDIVISION,
        );
        let runs = band_runs(&grid, &levels, cols, rows);
        let at = |c: usize, r: usize| {
            (
                x0 + (x1 - x0) * c as f64 / cols as f64,
                y0 + (y1 - y0) * r as f64 / rows as f64,
            )
        };
        chart
            .draw_series(
                runs.into_iter().map(|(c0, c1, r, k)| {
                    Rectangle::new([at(c0, r), at(c1, r + 1)], rgb(k).filled())
                }),
            )
            .map_err(FigureError::of)?;
        draw_path(&mut chart, &map.path, (x0, x1), (y0, y1))?;
        draw_markers(&mut chart, &map.markers)?;
        draw_colour_bar(&bar, &levels, &map.value_label)?;
        root.present().map_err(FigureError::of)?;
    }
    Ok(out)
}

/// Runs of one colour band along each row of `cols` × `rows` sub-cells of `grid`, as
/// (first column, column after the last, row, band): one rectangle each keeps the SVG small.
fn band_runs(
    grid: &crate::plot::heatmap::Grid,
    levels: &crate::plot::heatmap::Levels,
    cols: usize,
    rows: usize,
) -> Vec<(usize, usize, usize, usize)> {
    use crate::plot::heatmap::band;
    let mut runs = Vec::new();
    for r in 0..rows {
        let fy = (r as f64 + 0.5) / rows as f64;
        let mut start = 0;
        let mut current: Option<usize> = None;
        for c in 0..=cols {
            let here = (c < cols)
                .then(|| grid.bilinear((c as f64 + 0.5) / cols as f64, fy))
                .filter(|v| v.is_finite())
                .map(|v| band(levels.fraction(v)));
            if here != current || c == cols {
                if let Some(k) = current {
                    runs.push((start, c, r, k));
                }
                (start, current) = (c, here);
            }
        }
    }
    runs
}

/// The training path on a heatmap: a black line through its points inside the plane, each a
/// small white dot where the plane holds the iterate and a grey one where it does not; the
/// start labelled.
fn draw_path(
    chart: &mut FigureChart,
    path: &[(f64, f64, bool)],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<(), FigureError> {
    let inside = |&(x, y, _): &(f64, f64, bool)| x >= x0 && x <= x1 && y >= y0 && y <= y1;
    for pair in path.windows(2).filter(|w| inside(&w[0]) && inside(&w[1])) {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(pair[0].0, pair[0].1), (pair[1].0, pair[1].1)],
                BLACK.stroke_width(2),
            )))
            .map_err(FigureError::of)?;
    }
    for &(x, y, held) in path.iter().filter(|p| inside(p)) {
        let fill = if held { WHITE } else { RGBColor(150, 150, 150) };
        chart
            .draw_series(std::iter::once(Circle::new((x, y), 3, fill.filled())))
            .map_err(FigureError::of)?;
        chart
            .draw_series(std::iter::once(Circle::new(
                (x, y),
                3,
                BLACK.stroke_width(1),
            )))
            .map_err(FigureError::of)?;
    }
    if let Some(&(x, y, _)) = path.first().filter(|p| inside(p)) {
        chart
            .draw_series(std::iter::once(Text::new(
                " start".to_owned(),
                (x, y),
                ("sans-serif", 13).into_font().color(&BLACK),
            )))
            .map_err(FigureError::of)?;
    }
    Ok(())
}

/// The iterates on a heatmap: a white disc ringed in black, with its letter.
fn draw_markers(
    chart: &mut FigureChart,
    markers: &[(f64, f64, String)],
) -> Result<(), FigureError> {
    for (x, y, label) in markers {
        chart
            .draw_series(std::iter::once(Circle::new((*x, *y), 5, WHITE.filled())))
            .map_err(FigureError::of)?;
        chart
            .draw_series(std::iter::once(Circle::new(
                (*x, *y),
                5,
                BLACK.stroke_width(2),
            )))
            .map_err(FigureError::of)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (*x, *y),
                ("sans-serif", 15).into_font().color(&WHITE),
            )))
            .map_err(FigureError::of)?;
    }
    Ok(())
}

/// The colour bar beside a heatmap: its bands from low (bottom) to high (top), labelled.
fn draw_colour_bar(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    levels: &crate::plot::heatmap::Levels,
    label: &str,
) -> Result<(), FigureError> {
    use crate::plot::heatmap::{CONTOUR_BANDS, band_colour};
    let mut scale = ChartBuilder::on(area)
        .margin_top(48)
        .margin_bottom(58)
        .margin_right(14)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..1.0, levels.low..levels.high.max(levels.low + 1e-12))
        .map_err(FigureError::of)?;
    scale
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(label)
        .y_label_formatter(&|v: &f64| format!("{v:.3}"))
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 13))
        .draw()
        .map_err(FigureError::of)?;
    let span = levels.high - levels.low;
    scale
        .draw_series((0..CONTOUR_BANDS).map(|k| {
            let (a, b) = (
                k as f64 / CONTOUR_BANDS as f64,
                (k + 1) as f64 / CONTOUR_BANDS as f64,
            );
            let (r, g, bl) = band_colour(k);
            Rectangle::new(
                [(0.0, levels.low + a * span), (1.0, levels.low + b * span)],
                RGBColor(r, g, bl).filled(),
            )
        }))
        .map_err(FigureError::of)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::heatmap::{CONTOUR_BANDS, band_colour};

    #[test]
    fn a_plane_is_drawn_as_filled_contours_in_the_colour_bars_bands() {
        // A bowl, 0 in the middle and 2 at the corners: every band appears, no other colour.
        let axis = [-1.0, 0.0, 1.0];
        let values: Vec<f64> = axis
            .iter()
            .flat_map(|y| axis.iter().map(move |x| x * x + y * y))
            .collect();
        let map = Heatmap {
            title: "bowl".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            xs: &axis,
            ys: &axis,
            values: &values,
            value_label: "loss".into(),
            markers: vec![(0.0, 0.0, "A".into())],
            path: Vec::new(),
        };
        let svg = heatmap_svg(&map, 600, 400).unwrap();
        let fill = |k: usize| {
            let (r, g, b) = band_colour(k);
            format!("fill=\"#{r:02X}{g:02X}{b:02X}\"")
        };
        for k in 0..CONTOUR_BANDS {
            assert!(svg.contains(&fill(k)), "band {k} missing");
        }
        // A run of one band along a row is one rectangle, so the figure stays small.
        assert!(
            svg.matches("<rect").count() < 600,
            "{}",
            svg.matches("<rect").count()
        );
        assert!(
            heatmap_svg(
                &Heatmap {
                    xs: &axis[..1],
                    ..map
                },
                600,
                400
            )
            .is_err()
        );
    }
}
