//! The run table's two charts: each group of the non-seed axes as its mean ± one standard
//! deviation over seeds with every seed's own curve faintly beneath (`g`), and every run's
//! curve overlaid in a colour of its own with a legend per run (`c`), as TensorBoard and W&B
//! overlay runs.

use super::SweepBoard;
use crate::protocol::Iterate;
use crate::sweep::report::{self, RunSummary};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};

type Curve = Vec<(f64, f64)>;

/// Okabe & Ito's colour-blind-safe hues (less black), one per run in turn.
const RUN_COLOURS: [Color; 7] = [
    Color::Rgb(230, 159, 0),
    Color::Rgb(86, 180, 233),
    Color::Rgb(0, 158, 115),
    Color::Rgb(240, 228, 66),
    Color::Rgb(0, 114, 178),
    Color::Rgb(213, 94, 0),
    Color::Rgb(204, 121, 167),
];

/// In ASCII there is no colour nor braille: the first runs get marks of their own.
const ASCII_MARKERS: [Marker; 3] = [Marker::Dot, Marker::Block, Marker::Bar];

impl SweepBoard {
    fn who(&self) -> &'static str {
        match self.iterate {
            Iterate::Sgd => "SGD",
            _ => "SWA",
        }
    }

    /// The style and marker of the `k`-th curve.
    fn run_look(&self, k: usize) -> (Style, Marker) {
        let style = if self.theme.color {
            Style::new().fg(RUN_COLOURS[k % RUN_COLOURS.len()])
        } else {
            Style::new()
        };
        let marker = if self.theme.ascii {
            ASCII_MARKERS[k % ASCII_MARKERS.len()]
        } else {
            Marker::Braille
        };
        (style, marker)
    }

    /// A run's test loss of the chosen iterate, if it has one.
    fn curve_of<'r>(&self, run: &'r RunSummary) -> Option<&'r Curve> {
        run.curves
            .iter()
            .find(|(it, c)| *it == self.iterate && !c.is_empty())
            .map(|(_, c)| c)
    }

    /// Each run's test loss of the chosen iterate, by run, with its id.
    fn run_curves(&self) -> Vec<(String, Curve)> {
        self.runs
            .iter()
            .filter_map(|r| Some((r.variant.id.clone(), self.curve_of(r)?.clone())))
            .collect()
    }

    /// Mean ± std over seeds of the test loss per epoch, one colour per group, each seed's own
    /// curve faintly beneath.
    pub(super) fn render_groups(&self, frame: &mut Frame, area: Rect) {
        let groups = report::group(self.runs.clone());
        // Per group: its name, the mean curve, the curves one std below and above, its seeds.
        let curves: Vec<(String, Curve, Curve, Curve, Vec<Curve>)> = groups
            .iter()
            .map(|g| {
                let c = g.mean_curve(self.iterate);
                let mean = c.iter().map(|&(x, m, _)| (x, m)).collect();
                let lo = c.iter().map(|&(x, m, s)| (x, m - s)).collect();
                let hi = c.iter().map(|&(x, m, s)| (x, m + s)).collect();
                let seeds = g
                    .runs
                    .iter()
                    .filter_map(|r| self.curve_of(r).cloned())
                    .collect();
                (g.label(), mean, lo, hi, seeds)
            })
            .collect();
        let block = Block::default().borders(Borders::ALL).title(Line::styled(
            format!(
                " {} test loss per group: mean (line) ± 1 std (dots), seeds faint ",
                self.who()
            ),
            self.theme.title(),
        ));
        let all = curves
            .iter()
            .flat_map(|c| c.2.iter().chain(&c.3).chain(c.4.iter().flatten()));
        let Some(bounds) = bounds(all) else {
            frame.render_widget(Paragraph::new("no finished run yet").block(block), area);
            return;
        };
        let mut datasets = Vec::new();
        let mut legend = vec![Span::raw(" ")];
        for (k, (name, mean, lo, hi, seeds)) in curves.iter().enumerate() {
            let (style, marker) = self.run_look(k);
            // The seeds first, so that the mean and its band are drawn over them.
            for seed in seeds {
                datasets.push(
                    Dataset::default()
                        .marker(marker)
                        .graph_type(GraphType::Line)
                        .style(style.add_modifier(Modifier::DIM))
                        .data(seed),
                );
            }
            datasets.push(
                Dataset::default()
                    .marker(marker)
                    .graph_type(GraphType::Line)
                    .style(style.add_modifier(Modifier::BOLD))
                    .data(mean),
            );
            for band in [lo, hi] {
                datasets.push(
                    Dataset::default()
                        .marker(marker)
                        .graph_type(GraphType::Scatter)
                        .style(style)
                        .data(band),
                );
            }
            legend.push(Span::styled(format!("── {name}  "), style));
        }
        frame.render_widget(chart(datasets, block, legend, bounds, &self.theme), area);
    }

    /// Every run's test loss overlaid, a colour (in ASCII a mark) and a legend entry each.
    pub(super) fn render_runs(&self, frame: &mut Frame, area: Rect) {
        let curves = self.run_curves();
        let block = Block::default().borders(Borders::ALL).title(Line::styled(
            format!(" {} test loss of every run ", self.who()),
            self.theme.title(),
        ));
        let Some(bounds) = bounds(curves.iter().flat_map(|c| c.1.iter())) else {
            frame.render_widget(
                Paragraph::new("no run has a test loss yet").block(block),
                area,
            );
            return;
        };
        let mut datasets = Vec::new();
        let mut items = Vec::new();
        for (k, (id, curve)) in curves.iter().enumerate() {
            let (style, marker) = self.run_look(k);
            datasets.push(
                Dataset::default()
                    .marker(marker)
                    .graph_type(GraphType::Line)
                    .style(style)
                    .data(curve),
            );
            let sample = if self.theme.ascii {
                ["o", "#", "="][k % ASCII_MARKERS.len()].repeat(2)
            } else {
                "──".into()
            };
            let short: String = id.chars().take(12).collect();
            items.push((
                (format!("{sample} {id}"), format!("{sample} {short}")),
                style,
            ));
        }
        // Whole entries only: the runs that do not fit are named by the table.
        let texts: Vec<(String, String)> = items.iter().map(|(t, _)| t.clone()).collect();
        let width = usize::from(area.width.saturating_sub(4));
        let mut legend = vec![Span::raw(" ")];
        let fitted = crate::ui::chart::fit_legend(&texts, width);
        let left = texts.len() - fitted.len();
        for (i, text) in fitted {
            legend.push(Span::styled(format!("{text} "), items[i].1));
        }
        if left > 0 {
            legend.push(Span::styled(format!("+{left} more "), self.theme.dim()));
        }
        frame.render_widget(chart(datasets, block, legend, bounds, &self.theme), area);
    }
}

/// The box around `points`: (x0, x1, y0, y1); None without a point.
fn bounds<'a>(points: impl Iterator<Item = &'a (f64, f64)>) -> Option<(f64, f64, f64, f64)> {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points.filter(|p| p.0.is_finite() && p.1.is_finite()) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    (x0 <= x1).then_some((x0, x1, y0, y1))
}

/// A chart of `datasets` over `bounds` (epochs along x) with `legend` in its bottom border.
fn chart<'a>(
    datasets: Vec<Dataset<'a>>,
    block: Block<'a>,
    legend: Vec<Span<'a>>,
    (x0, x1, y0, y1): (f64, f64, f64, f64),
    theme: &crate::ui::theme::Theme,
) -> Chart<'a> {
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let x1 = x1.max(x0 + 1.0);
    Chart::new(datasets)
        .block(
            block
                .title_bottom(Line::from(legend))
                .title_bottom(Line::styled(" epoch ", theme.dim()).right_aligned()),
        )
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels([format!("{x0:.0}"), format!("{x1:.0}")])
                .style(theme.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([y0 - pad, y1 + pad])
                .labels([format!("{:.3}", y0 - pad), format!("{:.3}", y1 + pad)])
                .style(theme.dim()),
        )
}
