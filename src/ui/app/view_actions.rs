//! What the view intents do: charts, views, the value and plane cursors, the log, and which
//! probe or plane is shown. They change only the dashboard's state, never the worker's.

use super::*;

impl App {
    /// The charts, views, cursors, the log and the selected probe or plane.
    pub(super) fn view_action(&mut self, action: Action) {
        match action {
            Action::ToggleLogScale if self.view == View::Planes => {
                self.planes.log = !self.planes.log
            }
            Action::ToggleLogScale if self.view == View::Curvature => {
                self.curvature.linear = !self.curvature.linear
            }
            Action::ToggleLogScale => self.chart.log_y = !self.chart.log_y,
            Action::ToggleSmoothing => {
                let steps = crate::ui::chart::SMOOTHING_STEPS;
                let i = steps
                    .iter()
                    .position(|&w| w == self.chart.smooth)
                    .unwrap_or(0);
                self.chart.smooth = steps[(i + 1) % steps.len()];
            }
            Action::ToggleOutliers => self.chart.clip_outliers = !self.chart.clip_outliers,
            Action::TogglePerStep => self.chart.per_step = !self.chart.per_step,
            Action::CursorLeft if self.view == View::Planes => self.move_plane_cursor(-1, 0),
            Action::CursorRight if self.view == View::Planes => self.move_plane_cursor(1, 0),
            Action::CursorUp => self.move_plane_cursor(0, 1),
            Action::CursorDown => self.move_plane_cursor(0, -1),
            Action::CursorLeft => self.move_cursor(-1),
            Action::CursorRight => self.move_cursor(1),
            Action::CyclePlaneShow => {
                self.planes.show = match self.planes.show {
                    PlaneValue::Test => PlaneValue::Train,
                    PlaneValue::Train => PlaneValue::Gap,
                    PlaneValue::Gap => PlaneValue::Test,
                }
            }
            Action::HideCursor => self.chart.cursor = None,
            Action::CycleSplits => {
                self.chart.splits = match self.chart.splits {
                    SplitFilter::Both => SplitFilter::TrainOnly,
                    SplitFilter::TrainOnly => SplitFilter::TestOnly,
                    SplitFilter::TestOnly => SplitFilter::Both,
                }
            }
            Action::ToggleQuantity => {
                self.chart.quantity = match self.chart.quantity {
                    Quantity::Loss => Quantity::Accuracy,
                    Quantity::Accuracy => Quantity::LearningRate,
                    // λ_max joins the cycle once the run tracks it.
                    Quantity::LearningRate if !self.curvature.track.is_empty() => {
                        Quantity::Curvature
                    }
                    Quantity::LearningRate | Quantity::Curvature => Quantity::Loss,
                }
            }
            Action::ToggleXAxis => {
                self.chart.x = self.chart.x.next();
            }
            Action::ZoomIn => {
                let shown = self
                    .chart
                    .window
                    .unwrap_or_else(|| self.last_epoch().max(2));
                self.chart.window = Some((shown / 2).max(2));
            }
            Action::ZoomOut => {
                self.chart.window = match self.chart.window {
                    Some(w) if w * 2 < self.last_epoch() => Some(w * 2),
                    _ => None,
                }
            }
            Action::ScrollUp => {
                self.log_scroll = (self.log_scroll + 1).min(self.log.len().saturating_sub(1));
            }
            Action::ScrollDown => self.log_scroll = self.log_scroll.saturating_sub(1),
            Action::NextView => {
                let i = View::ALL.iter().position(|v| *v == self.view).unwrap_or(0);
                self.view = View::ALL[(i + 1) % View::ALL.len()];
            }
            Action::ShowView(i) => {
                if let Some(v) = View::ALL.get(i) {
                    self.view = *v;
                }
            }
            Action::SelectUp | Action::SelectDown if self.view == View::Planes => {
                let last = self.planes.results.len().saturating_sub(1);
                self.planes.selected = if action == Action::SelectUp {
                    self.planes.selected.saturating_sub(1)
                } else {
                    (self.planes.selected + 1).min(last)
                };
            }
            Action::SelectUp | Action::SelectDown if self.view == View::Curvature => {
                let last = self.curvature.results.len().saturating_sub(1);
                self.curvature.selected = if action == Action::SelectUp {
                    self.curvature.selected.saturating_sub(1)
                } else {
                    (self.curvature.selected + 1).min(last)
                };
            }
            Action::SelectUp => self.probes.selected = self.probes.selected.saturating_sub(1),
            Action::SelectDown => {
                let last = self.probes.entries().saturating_sub(1);
                self.probes.selected = (self.probes.selected + 1).min(last);
            }
            _ => {}
        }
    }

    /// Moves the value cursor to the previous (`-1`) or next (`+1`) x that has a measurement
    /// on the chart; the first press puts it on the newest.
    fn move_cursor(&mut self, by: i32) {
        let mut xs: Vec<f64> = crate::ui::curves::curves(self)
            .iter()
            .flat_map(|s| s.measured.iter().map(|p| p.0))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let Some(&last) = xs.last() else {
            return;
        };
        self.chart.cursor = Some(match self.chart.cursor {
            None => last,
            Some(at) => {
                let i = xs.partition_point(|&x| x < at - 1e-9);
                let i = if by < 0 {
                    i.saturating_sub(1)
                } else {
                    (i + 1).min(xs.len() - 1)
                };
                xs[i]
            }
        });
    }

    /// The grid of the plane shown (the running one, else the selected result): its columns
    /// and rows, and the grid position of its centre.
    pub fn plane_grid(&self) -> Option<(usize, usize, (usize, usize))> {
        let (xs, ys) = match (
            &self.planes.live,
            self.planes.results.get(self.planes.selected),
        ) {
            (Some(live), _) => (&live.header.xs, &live.header.ys),
            (None, Some(r)) => (&r.xs, &r.ys),
            (None, None) => return None,
        };
        let nearest_zero = |v: &[f64]| {
            (0..v.len())
                .min_by(|&a, &b| v[a].abs().total_cmp(&v[b].abs()))
                .unwrap_or(0)
        };
        Some((xs.len(), ys.len(), (nearest_zero(xs), nearest_zero(ys))))
    }

    /// Moves the plane cursor by `dx` columns and `dy` rows (up is larger y), within the grid;
    /// it starts on the centre.
    fn move_plane_cursor(&mut self, dx: isize, dy: isize) {
        let Some((nx, ny, centre)) = self.plane_grid() else {
            return;
        };
        let (i, j) = self.planes.cursor.unwrap_or(centre);
        let clamp =
            |v: usize, d: isize, n: usize| (v as isize + d).clamp(0, n as isize - 1) as usize;
        self.planes.cursor = Some((clamp(i.min(nx - 1), dx, nx), clamp(j.min(ny - 1), dy, ny)));
    }
}
