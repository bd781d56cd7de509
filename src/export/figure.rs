//! Publication figures: line plots with axes, ticks, a legend, optional log scale and
//! vertical markers, in the Okabe-Ito colour-blind-safe palette, drawn with plotters to SVG.

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::sync::Once;

mod heatmap;
mod surface;

pub use heatmap::{Heatmap, heatmap_svg};
pub use surface::surface_svg;

/// Why a figure could not be drawn (plotters' own error, or data it cannot draw).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FigureError(pub String);

impl FigureError {
    fn of(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// Okabe & Ito's palette, safe for the common colour-vision deficiencies.
pub mod palette {
    use plotters::style::RGBColor;
    pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
    pub const SKY_BLUE: RGBColor = RGBColor(86, 180, 233);
    pub const GREEN: RGBColor = RGBColor(0, 158, 115);
    pub const BLUE: RGBColor = RGBColor(0, 114, 178);
    pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
    pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
    pub const GREY: RGBColor = RGBColor(110, 110, 110);
}

/// One line of a figure.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub dashed: bool,
}

/// A line plot.
#[derive(Debug, Clone)]
pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Plot y on a log scale (decades labelled with their values).
    pub log_y: bool,
    pub lines: Vec<Line>,
    /// Dashed vertical lines with a label at the top, e.g. where SWA starts.
    pub markers: Vec<(f64, String)>,
    /// Text placed at data coordinates, e.g. "flat side →".
    pub notes: Vec<(f64, f64, String)>,
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // plotters measures text with these fonts; the SVG names them for renderers.
        let _ = register_font("sans-serif", FontStyle::Normal, super::raster::SANS);
        let _ = register_font("sans-serif", FontStyle::Bold, super::raster::SANS);
    });
}

/// The figure as SVG, `width` x `height` units.
pub fn svg(figure: &Figure, width: u32, height: u32) -> Result<String, FigureError> {
    svg_with_bands(figure, &[], width, height)
}

/// A shaded band between two curves over the same x, e.g. mean ± one standard deviation.
#[derive(Debug, Clone)]
pub struct Band {
    /// (x, low, high), ascending in x.
    pub points: Vec<(f64, f64, f64)>,
    pub color: RGBColor,
}

/// Like [`svg`], with shaded bands under the lines.
pub fn svg_with_bands(
    figure: &Figure,
    bands: &[Band],
    width: u32,
    height: u32,
) -> Result<String, FigureError> {
    register_fonts();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(FigureError::of)?;
        let (x0, x1, y0, y1) = extent(figure, bands);
        let mut chart = ChartBuilder::on(&root)
            .caption(&figure.title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(FigureError::of)?;
        draw_mesh(&mut chart, figure)?;
        for (x, label) in &figure.markers {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(*x, y0), (*x, y1)],
                    6,
                    4,
                    palette::GREY.stroke_width(1),
                ))
                .map_err(FigureError::of)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (*x, y1),
                    ("sans-serif", 13).into_font().color(&palette::GREY),
                )))
                .map_err(FigureError::of)?;
        }
        draw_bands(&mut chart, figure, bands)?;
        draw_lines(&mut chart, figure)?;
        for (x, y, text) in &figure.notes {
            chart
                .draw_series(std::iter::once(Text::new(
                    text.clone(),
                    (*x, figure.y_transform(*y)),
                    ("sans-serif", 14).into_font().color(&BLACK),
                )))
                .map_err(FigureError::of)?;
        }
        if !figure.lines.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(FigureError::of)?;
        }
        root.present().map_err(FigureError::of)?;
    }
    Ok(out)
}

/// A chart of a [`Figure`] being drawn.
type FigureChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

impl Figure {
    /// A value as the y axis places it: its log10 on a log axis.
    fn y_transform(&self, y: f64) -> f64 {
        if self.log_y { y.max(1e-12).log10() } else { y }
    }
}

/// The axes' ranges of a figure: every finite point of its lines and bands, its markers' x,
/// and 6% of room above and below.
fn extent(figure: &Figure, bands: &[Band]) -> (f64, f64, f64, f64) {
    let band_points = bands
        .iter()
        .flat_map(|b| b.points.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]));
    let all: Vec<(f64, f64)> = figure
        .lines
        .iter()
        .flat_map(|l| l.points.iter().copied())
        .chain(band_points)
        .map(|(x, y)| (x, figure.y_transform(y)))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (mut x0, mut x1, mut y0, mut y1) = all.iter().fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    for (x, _) in &figure.markers {
        (x0, x1) = (x0.min(*x), x1.max(*x));
    }
    let pad = ((y1 - y0) * 0.06).max(1e-9);
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    (x0, x1, y0 - pad, y1 + pad)
}

/// The grid, the axes' labels and their tick labels (values, not logs, on a log axis).
fn draw_mesh(chart: &mut FigureChart, figure: &Figure) -> Result<(), FigureError> {
    let log = figure.log_y;
    let y_format = move |v: &f64| {
        if log {
            let value = 10f64.powf(*v);
            if value >= 0.01 {
                format!("{value:.3}")
            } else {
                format!("{value:.1e}")
            }
        } else {
            format!("{v:.3}")
        }
    };
    chart
        .configure_mesh()
        .x_desc(&figure.x_label)
        .y_desc(if log {
            format!("{} (log scale)", figure.y_label)
        } else {
            figure.y_label.clone()
        })
        .y_label_formatter(&y_format)
        .light_line_style(RGBColor(235, 235, 235))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(FigureError::of)
}

/// Each band as a light polygon between its low and high curves.
fn draw_bands(chart: &mut FigureChart, figure: &Figure, bands: &[Band]) -> Result<(), FigureError> {
    for band in bands {
        let upper = band
            .points
            .iter()
            .map(|&(x, _, hi)| (x, figure.y_transform(hi)));
        let lower = band
            .points
            .iter()
            .rev()
            .map(|&(x, lo, _)| (x, figure.y_transform(lo)));
        let outline: Vec<(f64, f64)> = upper
            .chain(lower)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        if outline.len() >= 3 {
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    band.color.mix(0.18).filled(),
                )))
                .map_err(FigureError::of)?;
        }
    }
    Ok(())
}

/// The lines, solid or dashed, each with its legend entry.
fn draw_lines(chart: &mut FigureChart, figure: &Figure) -> Result<(), FigureError> {
    for line in &figure.lines {
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .map(|&(x, y)| (x, figure.y_transform(y)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let style = line.color.stroke_width(2);
        let color = line.color;
        let dashed = line.dashed;
        let legend = move |(x, y): (i32, i32)| {
            let path = vec![(x, y), (x + 20, y)];
            if dashed {
                PathElement::new(path, color.stroke_width(2))
            } else {
                PathElement::new(path, color.stroke_width(3))
            }
        };
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(points, 7, 4, style))
                .map_err(FigureError::of)?
                .label(format!("{} (dashed)", line.name))
                .legend(legend);
        } else {
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(FigureError::of)?
                .label(line.name.clone())
                .legend(legend);
        }
    }
    Ok(())
}

/// One bar of a bar chart, with its 95% interval drawn as a whisker when known.
pub struct Bar {
    pub name: String,
    pub value: f64,
    pub color: RGBColor,
    pub interval: Option<crate::stats::Interval>,
}

/// A bar chart of fractions (labelled in percent), whiskers for intervals.
pub fn bars(
    title: &str,
    y_label: &str,
    bars: &[Bar],
    width: u32,
    height: u32,
) -> Result<String, FigureError> {
    register_fonts();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(FigureError::of)?;
        let n = bars.len().max(1);
        let top = bars
            .iter()
            .map(|b| b.interval.map_or(b.value, |i| i.hi.max(b.value)))
            .filter(|v| v.is_finite())
            .fold(1.0f64, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(60)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..n as f64, 0.0..top * 1.05)
            .map_err(FigureError::of)?;
        let names: Vec<String> = bars.iter().map(|b| b.name.clone()).collect();
        let label = move |x: &f64| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.26 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(2 * n + 1)
            .x_label_formatter(&label)
            .y_desc(y_label)
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(FigureError::of)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Rectangle::new(
                    [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, b.value)],
                    b.color.filled(),
                )
            }))
            .map_err(FigureError::of)?;
        // Whiskers: the interval's span and a cap at each end.
        let whiskers = bars.iter().enumerate().filter_map(|(i, b)| {
            let iv = b.interval?;
            let (x, lo, hi) = (i as f64 + 0.5, iv.lo.max(0.0), iv.hi.min(top * 1.05));
            Some([
                vec![(x, lo), (x, hi)],
                vec![(x - 0.08, lo), (x + 0.08, lo)],
                vec![(x - 0.08, hi), (x + 0.08, hi)],
            ])
        });
        chart
            .draw_series(
                whiskers
                    .flatten()
                    .map(|segment| PathElement::new(segment, BLACK.stroke_width(2))),
            )
            .map_err(FigureError::of)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Text::new(
                    format!("{:.0}%", 100.0 * b.value),
                    (i as f64 + 0.18, b.value),
                    ("sans-serif", 13).into_font(),
                )
            }))
            .map_err(FigureError::of)?;
        root.present().map_err(FigureError::of)?;
    }
    Ok(out)
}
