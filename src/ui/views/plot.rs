//! What the dashboard's and the probe view's charts share: axes fitted to the data (ticks,
//! labels, bounds), the traces drawn on them and the dim vertical marker lines.

use crate::protocol::{Iterate, Split};
use crate::ui::braille::{DotGrid, Rank, Stroke};
use crate::ui::chart;
use crate::ui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType};

/// One thing drawn on a chart: a curve, its point marks, a marker line.
pub struct Trace<'a> {
    pub points: &'a [(f64, f64)],
    pub style: Style,
    pub stroke: Stroke,
    pub rank: Rank,
    /// Its character in ASCII, where there is no braille.
    pub ascii: Marker,
}

impl<'a> Trace<'a> {
    /// The series (`iterate`, `split`) through `points`, solid or dashed as the theme says.
    pub fn series(
        theme: &Theme,
        (iterate, split): (Iterate, Split),
        points: &'a [(f64, f64)],
    ) -> Self {
        Self {
            points,
            style: theme.series(iterate, split),
            stroke: theme
                .dash(iterate, split)
                .map_or(Stroke::Solid, |(on, off)| Stroke::Dashed { on, off }),
            rank: Rank::Data,
            ascii: theme.marker(iterate, split),
        }
    }

    /// The band of a series' raw values (a zigzag between each stretch's low and high), grey
    /// and behind every curve, as TensorBoard draws the raw values behind a smoothed line.
    pub fn band(theme: &Theme, points: &'a [(f64, f64)]) -> Self {
        Self {
            points,
            style: theme.dim(),
            stroke: Stroke::Solid,
            rank: Rank::Backdrop,
            ascii: Marker::Custom(':'),
        }
    }

    /// A probe's train or test curve: the SWA series' strokes in the probe's own hues.
    pub fn probe(theme: &Theme, split: Split, points: &'a [(f64, f64)]) -> Self {
        Self {
            style: theme.probe_series(split),
            ..Self::series(theme, (Iterate::Swa, split), points)
        }
    }

    /// Single dots in the style of the series (`iterate`, `split`).
    pub fn dots(
        theme: &Theme,
        (iterate, split): (Iterate, Split),
        points: &'a [(f64, f64)],
    ) -> Self {
        Self {
            stroke: Stroke::Dots,
            ..Self::series(theme, (iterate, split), points)
        }
    }

    /// A dim vertical marker line (from [`Axes::vertical`]), behind the data.
    pub fn marker_line(points: &'a [(f64, f64)], theme: &Theme) -> Self {
        Self {
            points,
            style: theme.marker_line(),
            stroke: Stroke::Solid,
            rank: Rank::Backdrop,
            ascii: Marker::Custom(':'),
        }
    }

    /// ratatui's dataset for the ASCII chart.
    fn dataset(&self) -> Dataset<'a> {
        Dataset::default()
            .marker(self.ascii)
            .graph_type(if self.stroke == Stroke::Dots {
                GraphType::Scatter
            } else {
                GraphType::Line
            })
            .style(self.style)
            .data(self.points)
    }
}

/// Axis bounds and labels for a chart area.
pub struct Axes {
    pub x: [f64; 2],
    pub y: [f64; 2],
    x_ticks: Vec<f64>,
    x_labels: Vec<String>,
    y_ticks: Vec<f64>,
    y_labels: Vec<String>,
}

/// How many ticks fit along an axis of `cells` cells, one per `per` cells.
fn ticks_for(cells: u16, per: u16) -> usize {
    usize::from((cells / per).clamp(2, 8))
}

impl Axes {
    /// Axes covering `x` and `y` (y already log10 when `log_y`), with as many ticks as `area`
    /// has room for.
    pub fn fit(x: (f64, f64), y: (f64, f64), area: Rect, log_y: bool, integer_x: bool) -> Self {
        let x_hi = x.1.max(x.0 + if integer_x { 1.0 } else { 1e-9 });
        let x_count = ticks_for(area.width, 10);
        let x_ticks = if integer_x {
            chart::integer_ticks(x.0, x_hi, x_count)
        } else {
            chart::nice_ticks(x.0, x_hi, x_count)
        };
        let y_count = ticks_for(area.height, 3);
        let y_ticks = if log_y {
            chart::log_ticks(10f64.powf(y.0), 10f64.powf(y.1), y_count)
        } else {
            chart::nice_ticks(y.0, y.1, y_count)
        };
        let spacing = |t: &[f64]| t.get(1).map_or(1.0, |b| b - t[0]);
        let (xs, ys) = (spacing(&x_ticks), spacing(&y_ticks));
        Self {
            x: [x_ticks[0], x_ticks[x_ticks.len() - 1]],
            y: [y_ticks[0], y_ticks[y_ticks.len() - 1]],
            x_labels: x_ticks.iter().map(|t| chart::tick_label(*t, xs)).collect(),
            x_ticks: x_ticks.clone(),
            y_ticks: y_ticks.clone(),
            y_labels: y_ticks
                .iter()
                .map(|t| {
                    if log_y {
                        chart::log_tick_label(*t)
                    } else {
                        chart::tick_label(*t, ys)
                    }
                })
                .collect(),
        }
    }

    /// Axes for a time x axis: `x` in seconds on the run's clock, ticked at round times of
    /// the clock shifted by `shift` seconds (0 for the run's own clock, the local time of day
    /// at its start for the wall clock) and labelled by `label` (the shifted seconds and the
    /// step).
    pub fn fit_time(
        x: (f64, f64),
        y: (f64, f64),
        area: Rect,
        log_y: bool,
        shift: f64,
        label: impl Fn(f64, f64) -> String,
    ) -> Self {
        let x_count = ticks_for(area.width, 10);
        let (shifted, step) = chart::time_ticks(x.0 + shift, x.1 + shift, x_count);
        let mut axes = Self::fit(x, y, area, log_y, false);
        axes.x_ticks = shifted.iter().map(|t| t - shift).collect();
        axes.x_labels = shifted.iter().map(|&t| label(t, step)).collect();
        axes.x = [axes.x_ticks[0], axes.x_ticks[axes.x_ticks.len() - 1]];
        axes
    }

    /// Draws a chart of `traces` on these axes in `area`, legend off (legends go in the
    /// border). ratatui spreads axis labels evenly rather than at their values, so the labels
    /// are written here, each at its own tick (log ticks are not evenly spaced). The traces go
    /// into one braille grid (see [`crate::ui::braille`]); in ASCII ratatui draws them.
    pub fn render<'a>(
        &self,
        frame: &mut Frame,
        area: Rect,
        traces: &[Trace<'a>],
        block: Block<'a>,
        theme: &Theme,
    ) {
        let inner = block.inner(area);
        let datasets: Vec<Dataset> = if theme.ascii {
            traces.iter().map(Trace::dataset).collect()
        } else {
            Vec::new()
        };
        let chart = Chart::new(datasets)
            .block(block)
            .legend_position(None)
            .x_axis(
                Axis::default()
                    .bounds(self.x)
                    // Two empty labels keep ratatui's label row and axis line.
                    .labels(["", ""])
                    .labels_alignment(Alignment::Center)
                    .style(theme.dim()),
            )
            .y_axis(
                Axis::default()
                    .bounds(self.y)
                    // Blank labels of the real labels' width keep ratatui's label column.
                    .labels(vec![" ".repeat(self.y_label_width()); 2])
                    .style(theme.dim()),
            );
        frame.render_widget(chart, area);
        if inner.height < 3 || inner.width < 4 {
            return;
        }
        // ratatui's layout: y labels (at most a third of the width), the y axis, then the graph;
        // under it the x axis line and the x labels.
        let y_label_width = self.y_label_width() as u16;
        let label_room = y_label_width.min(inner.width / 3);
        let graph_left = inner.left() + label_room + 1;
        let graph_width = inner.right().saturating_sub(graph_left);
        if graph_width < 2 {
            return;
        }
        let row = inner.bottom() - 1;
        let buf = frame.buffer_mut();
        let graph_height = inner.height - 2;
        if !theme.ascii {
            let mut grid = DotGrid::new(graph_width, graph_height, self.x, self.y);
            for (i, trace) in traces.iter().enumerate() {
                grid.draw(i, trace.rank, trace.points, trace.stroke);
            }
            for (col, line, symbol, owner) in grid.cells() {
                buf[(graph_left + col, inner.top() + line)]
                    .set_char(symbol)
                    .set_style(traces[owner].style);
            }
        }
        let y_span = self.y[1] - self.y[0];
        let mut next_free_row = None;
        for (value, label) in self.y_ticks.iter().zip(&self.y_labels).rev() {
            let up = ((value - self.y[0]) / y_span * f64::from(graph_height - 1)).round() as u16;
            let y = inner.bottom() - 3 - up.min(graph_height - 1);
            // Labels too close to the one above give way.
            if next_free_row.is_some_and(|free| y < free) {
                continue;
            }
            let text: String = label.chars().take(usize::from(label_room)).collect();
            let x = inner.left() + label_room - text.chars().count() as u16;
            buf.set_string(x, y, text, theme.dim());
            next_free_row = Some(y + 1);
        }
        let span = self.x[1] - self.x[0];
        let mut next_free = graph_left;
        for (value, label) in self.x_ticks.iter().zip(&self.x_labels) {
            let width = label.chars().count() as u16;
            let col = graph_left
                + (((value - self.x[0]) / span) * f64::from(graph_width - 1)).round() as u16;
            let start = col
                .saturating_sub(width / 2)
                .max(graph_left.saturating_sub(1))
                .min(inner.right().saturating_sub(width));
            if start < next_free && next_free > graph_left {
                continue;
            }
            buf.set_string(start, row, label, theme.dim());
            next_free = start + width + 1;
        }
    }

    fn y_label_width(&self) -> usize {
        self.y_labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
    }

    /// Data units per braille dot along x and y when drawn in `area` (a cell is 2 × 4 dots),
    /// as dots per unit, for dashes and point marks.
    pub fn dots_per_unit(&self, area: Rect) -> (f64, f64) {
        let inner_w = f64::from(
            area.width
                .saturating_sub(2 + self.y_label_width() as u16 + 1)
                .max(1),
        );
        let inner_h = f64::from(area.height.saturating_sub(2 + 2).max(1));
        (
            2.0 * inner_w / (self.x[1] - self.x[0]).max(1e-12),
            4.0 * inner_h / (self.y[1] - self.y[0]).max(1e-12),
        )
    }

    /// The end points of a vertical line at `x`, if it is on the chart.
    pub fn vertical(&self, x: f64) -> Option<[(f64, f64); 2]> {
        (self.x[0]..=self.x[1])
            .contains(&x)
            .then_some([(x, self.y[0]), (x, self.y[1])])
    }
}

/// Dim vertical marker lines and one curve drawn as the SWA training series: a probe's
/// small chart (an ablation arm, a random-shift check).
pub fn marked_curve<'a>(
    marks: &'a [[(f64, f64); 2]],
    curve: &'a [(f64, f64)],
    theme: &Theme,
) -> Vec<Trace<'a>> {
    let mut traces: Vec<Trace> = marks.iter().map(|m| Trace::marker_line(m, theme)).collect();
    traces.push(Trace::series(theme, (Iterate::Swa, Split::Train), curve));
    traces
}

/// The crosses marking a curve's measured points: empty when not asked for, in ASCII, or
/// when the points are too dense to need them.
pub fn point_marks(
    theme: &Theme,
    measured: &[(f64, f64)],
    mark: bool,
    scale: (f64, f64),
) -> Vec<(f64, f64)> {
    if mark && !theme.ascii {
        chart::point_marks(measured, scale, 6.0)
    } else {
        Vec::new()
    }
}

/// The x and y extent of several point lists (y over finite values only).
pub fn extent<'a>(
    series: impl Iterator<Item = &'a [(f64, f64)]> + Clone,
) -> Option<((f64, f64), (f64, f64))> {
    let y = chart::y_range(series.clone())?;
    let xs = series.flat_map(|s| s.iter().map(|p| p.0));
    let x = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    Some((x, y))
}
