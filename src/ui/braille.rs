//! Curves on the braille dot grid (a cell is 2 × 4 dots), free of terminals.
//!
//! Every series is drawn into one grid so that series sharing a cell add their dots to it
//! rather than replacing the cell: ratatui's chart draws each dataset as a layer that
//! overwrites the cells it touches, which cut holes into a curve wherever another one crossed
//! it. Segments are drawn dot by dot (Bresenham on the dot grid), so a steep segment lights
//! every dot between its ends, and dashes are measured in dots along the line, so they keep
//! their rhythm at any slope.

/// How a trace is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stroke {
    /// A continuous line through the points.
    Solid,
    /// A line of `on` dots, then `off` dots of gap, measured along it.
    Dashed { on: f64, off: f64 },
    /// Each point a single dot.
    Dots,
}

/// Which trace colours a cell its dots share: the one with the higher rank, then the one with
/// more dots there, then the later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// Guides behind the data (marker lines): they colour a cell only when alone in it.
    Backdrop,
    Data,
}

/// The dot of a braille character at (column, row) of its cell, as its bit.
pub fn dot_bit(col: usize, row: usize) -> u8 {
    match (col, row) {
        (c, 3) => 0x40 << c,
        (c, r) => 1 << (c * 3 + r),
    }
}

#[derive(Debug, Clone, Default)]
struct Cell {
    bits: u8,
    /// (trace, rank, dots it lit here)
    ink: Vec<(usize, Rank, u16)>,
}

/// A grid of `cols` × `rows` cells showing the data rectangle `x` × `y`.
#[derive(Debug, Clone)]
pub struct DotGrid {
    cols: usize,
    rows: usize,
    x: [f64; 2],
    y: [f64; 2],
    cells: Vec<Cell>,
}

impl DotGrid {
    pub fn new(cols: u16, rows: u16, x: [f64; 2], y: [f64; 2]) -> Self {
        let (cols, rows) = (usize::from(cols), usize::from(rows));
        Self {
            cols,
            rows,
            x,
            y,
            cells: vec![Cell::default(); cols * rows],
        }
    }

    fn dots_wide(&self) -> usize {
        self.cols * 2
    }

    fn dots_high(&self) -> usize {
        self.rows * 4
    }

    /// The dot at data point (x, y), in fractional dots from the top left (may lie outside).
    fn to_dots(&self, x: f64, y: f64) -> (f64, f64) {
        let span_x = (self.x[1] - self.x[0]).max(f64::MIN_POSITIVE);
        let span_y = (self.y[1] - self.y[0]).max(f64::MIN_POSITIVE);
        (
            (x - self.x[0]) / span_x * (self.dots_wide() - 1) as f64,
            (self.y[1] - y) / span_y * (self.dots_high() - 1) as f64,
        )
    }

    fn light(&mut self, trace: usize, rank: Rank, dx: i64, dy: i64) {
        if dx < 0 || dy < 0 || dx as usize >= self.dots_wide() || dy as usize >= self.dots_high() {
            return;
        }
        let (dx, dy) = (dx as usize, dy as usize);
        let cell = &mut self.cells[(dy / 4) * self.cols + dx / 2];
        cell.bits |= dot_bit(dx % 2, dy % 4);
        match cell.ink.iter_mut().find(|(t, ..)| *t == trace) {
            Some((_, _, n)) => *n = n.saturating_add(1),
            None => cell.ink.push((trace, rank, 1)),
        }
    }

    /// Draws trace number `trace` through `points` (data units). Non-finite points break the
    /// line; segments are clipped to the grid's rectangle.
    pub fn draw(&mut self, trace: usize, rank: Rank, points: &[(f64, f64)], stroke: Stroke) {
        if self.cols == 0 || self.rows == 0 {
            return;
        }
        let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
        if stroke == Stroke::Dots || points.len() == 1 {
            for p in points.iter().filter(|p| finite(p)) {
                if self.inside(*p) {
                    let (dx, dy) = self.to_dots(p.0, p.1);
                    self.light(trace, rank, dx.round() as i64, dy.round() as i64);
                }
            }
            return;
        }
        let (on, period) = match stroke {
            Stroke::Dashed { on, off } => (on, on + off),
            _ => (f64::INFINITY, f64::INFINITY),
        };
        // Distance along the line in dots, carried from segment to segment so that dashes
        // run on through the measured points.
        let mut travelled = 0.0;
        for pair in points.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if !(finite(&a) && finite(&b)) {
                continue;
            }
            let (fa, fb) = (self.to_dots(a.0, a.1), self.to_dots(b.0, b.1));
            let length = (fb.0 - fa.0).hypot(fb.1 - fa.1);
            let Some((ca, cb)) = self.clip(a, b) else {
                travelled += length;
                continue;
            };
            let (sa, sb) = (self.to_dots(ca.0, ca.1), self.to_dots(cb.0, cb.1));
            // Dashes keep their phase where clipping moved the start.
            let skipped = (sa.0 - fa.0).hypot(sa.1 - fa.1);
            let mut along = travelled + skipped;
            let (mut x, mut y) = (sa.0.round() as i64, sa.1.round() as i64);
            let (x1, y1) = (sb.0.round() as i64, sb.1.round() as i64);
            let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
            let (step_x, step_y) = ((x1 - x).signum(), (y1 - y).signum());
            let mut error = dx + dy;
            loop {
                if period.is_infinite() || along.rem_euclid(period) < on {
                    self.light(trace, rank, x, y);
                }
                if x == x1 && y == y1 {
                    break;
                }
                let doubled = 2 * error;
                let (mut moved_x, mut moved_y) = (false, false);
                if doubled >= dy {
                    error += dy;
                    x += step_x;
                    moved_x = true;
                }
                if doubled <= dx {
                    error += dx;
                    y += step_y;
                    moved_y = true;
                }
                along += if moved_x && moved_y {
                    std::f64::consts::SQRT_2
                } else {
                    1.0
                };
            }
            travelled += length;
        }
    }

    fn inside(&self, (x, y): (f64, f64)) -> bool {
        (self.x[0]..=self.x[1]).contains(&x) && (self.y[0]..=self.y[1]).contains(&y)
    }

    /// The part of segment a–b inside the rectangle (Liang–Barsky), if any.
    fn clip(&self, a: (f64, f64), b: (f64, f64)) -> Option<((f64, f64), (f64, f64))> {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for (p, q) in [
            (-dx, a.0 - self.x[0]),
            (dx, self.x[1] - a.0),
            (-dy, a.1 - self.y[0]),
            (dy, self.y[1] - a.1),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
        (t0 <= t1).then_some((
            (a.0 + t0 * dx, a.1 + t0 * dy),
            (a.0 + t1 * dx, a.1 + t1 * dy),
        ))
    }

    /// Every cell with dots: (column, row, its braille character, the trace that colours it).
    pub fn cells(&self) -> impl Iterator<Item = (u16, u16, char, usize)> + '_ {
        self.cells.iter().enumerate().filter_map(|(i, cell)| {
            let owner = cell
                .ink
                .iter()
                .max_by_key(|(trace, rank, dots)| (*rank, *dots, *trace))?
                .0;
            let c = char::from_u32(0x2800 + u32::from(cell.bits))?;
            Some(((i % self.cols) as u16, (i / self.cols) as u16, c, owner))
        })
    }

    /// Whether the dot (dx, dy) is lit, counted from the top left; for tests and checks.
    pub fn lit(&self, dx: usize, dy: usize) -> bool {
        dx < self.dots_wide()
            && dy < self.dots_high()
            && self.cells[(dy / 4) * self.cols + dx / 2].bits & dot_bit(dx % 2, dy % 4) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grid as text, one character per dot: `#` lit, `.` dark.
    fn picture(grid: &DotGrid) -> Vec<String> {
        (0..grid.dots_high())
            .map(|dy| {
                (0..grid.dots_wide())
                    .map(|dx| if grid.lit(dx, dy) { '#' } else { '.' })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn dot_bits_follow_the_unicode_braille_numbering() {
        // Dots 1-2-3 down the left column, 4-5-6 down the right, 7 and 8 at the bottom.
        assert_eq!(dot_bit(0, 0), 0x01);
        assert_eq!(dot_bit(0, 2), 0x04);
        assert_eq!(dot_bit(1, 0), 0x08);
        assert_eq!(dot_bit(1, 2), 0x20);
        assert_eq!(dot_bit(0, 3), 0x40);
        assert_eq!(dot_bit(1, 3), 0x80);
        let full: u8 = (0..2)
            .flat_map(|c| (0..4).map(move |r| dot_bit(c, r)))
            .fold(0, |a, b| a | b);
        assert_eq!(full, 0xff);
    }

    #[test]
    fn a_steep_segment_lights_every_row_between_its_ends() {
        // 2 × 3 cells = 4 × 12 dots; from the bottom left corner to the top right corner.
        let mut grid = DotGrid::new(2, 3, [0.0, 3.0], [0.0, 11.0]);
        grid.draw(0, Rank::Data, &[(0.0, 0.0), (3.0, 11.0)], Stroke::Solid);
        let rows = picture(&grid);
        for (dy, row) in rows.iter().enumerate() {
            assert!(row.contains('#'), "row {dy} is empty:\n{}", rows.join("\n"));
        }
        // 8-connected: every lit dot but the last has a lit neighbour one row up.
        assert!(grid.lit(0, 11) && grid.lit(3, 0));
    }

    #[test]
    fn a_vertical_jump_between_two_measured_points_is_a_continuous_column() {
        let mut grid = DotGrid::new(4, 2, [0.0, 7.0], [0.0, 7.0]);
        grid.draw(0, Rank::Data, &[(3.0, 0.0), (4.0, 7.0)], Stroke::Solid);
        let lit_rows = (0..8)
            .filter(|&dy| (0..8).any(|dx| grid.lit(dx, dy)))
            .count();
        assert_eq!(lit_rows, 8);
        let lit = (0..8)
            .flat_map(|dy| (0..8).map(move |dx| (dx, dy)))
            .filter(|&(dx, dy)| grid.lit(dx, dy))
            .count();
        assert_eq!(lit, 8, "{:?}", picture(&grid));
    }

    #[test]
    fn a_crossing_curve_adds_its_dots_instead_of_erasing_the_other() {
        let mut grid = DotGrid::new(4, 2, [0.0, 7.0], [0.0, 7.0]);
        grid.draw(0, Rank::Data, &[(0.0, 3.0), (7.0, 3.0)], Stroke::Solid);
        grid.draw(1, Rank::Data, &[(3.0, 0.0), (3.0, 7.0)], Stroke::Solid);
        // The horizontal line keeps all 8 dots of its row, the vertical one all 8 of its column.
        let dy = 4; // y = 3 of 0..7 is 4 dots from the top
        assert!((0..8).all(|dx| grid.lit(dx, dy)), "{:?}", picture(&grid));
        assert!((0..8).all(|y| grid.lit(3, y)), "{:?}", picture(&grid));
    }

    #[test]
    fn a_cell_takes_the_colour_of_its_data_over_a_backdrop() {
        let mut grid = DotGrid::new(1, 1, [0.0, 1.0], [0.0, 3.0]);
        grid.draw(0, Rank::Backdrop, &[(0.0, 0.0), (0.0, 3.0)], Stroke::Solid);
        grid.draw(1, Rank::Data, &[(1.0, 0.0)], Stroke::Dots);
        let cells: Vec<_> = grid.cells().collect();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].3, 1, "one data dot beats four backdrop dots");
        assert_eq!(
            cells[0].2, '\u{28c7}',
            "the column and the dot bottom right"
        );
    }

    #[test]
    fn dashes_keep_their_rhythm_on_a_steep_line() {
        // A vertical line of 24 dots, dashes of 3 on and 2 off: 3 lit, 2 dark, ...
        let mut grid = DotGrid::new(1, 6, [0.0, 1.0], [0.0, 23.0]);
        grid.draw(
            0,
            Rank::Data,
            &[(0.0, 23.0), (0.0, 0.0)],
            Stroke::Dashed { on: 3.0, off: 2.0 },
        );
        let column: String = (0..24)
            .map(|dy| if grid.lit(0, dy) { '#' } else { '.' })
            .collect();
        assert_eq!(column, "###..###..###..###..###.");
    }

    #[test]
    fn segments_outside_the_rectangle_are_clipped_not_dropped() {
        // From far above the top to the bottom right: the visible part is drawn.
        let mut grid = DotGrid::new(2, 2, [0.0, 3.0], [0.0, 7.0]);
        grid.draw(0, Rank::Data, &[(0.0, 100.0), (3.0, 0.0)], Stroke::Solid);
        assert!(grid.lit(3, 7), "{:?}", picture(&grid));
        assert!((0..8).any(|dx| grid.lit(dx, 0)), "{:?}", picture(&grid));
        // Wholly outside: nothing.
        let mut grid = DotGrid::new(2, 2, [0.0, 3.0], [0.0, 7.0]);
        grid.draw(0, Rank::Data, &[(0.0, 50.0), (3.0, 60.0)], Stroke::Solid);
        assert_eq!(grid.cells().count(), 0);
    }

    #[test]
    fn non_finite_points_break_the_line() {
        let mut grid = DotGrid::new(4, 1, [0.0, 7.0], [0.0, 3.0]);
        let points = [
            (0.0, 1.0),
            (2.0, 1.0),
            (3.0, f64::NAN),
            (5.0, 1.0),
            (7.0, 1.0),
        ];
        grid.draw(0, Rank::Data, &points, Stroke::Solid);
        let row: String = (0..8)
            .map(|dx| if grid.lit(dx, 2) { '#' } else { '.' })
            .collect();
        assert_eq!(row, "###..###");
    }
}
