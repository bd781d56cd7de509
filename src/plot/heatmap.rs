//! A plane's losses as text: a heatmap of half-block cells (two grid rows per line, 24-bit
//! colour from a perceptual colour map) or, without colour, a shaded one of ASCII characters;
//! the iterates marked; a legend of the colour scale. Pure: values in, lines of text out.

/// How the text is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shading {
    /// 24-bit ANSI colour, two grid rows per line (upper half block).
    Colour,
    /// One grid row per line, darker characters for higher losses.
    Ascii,
}

/// The loss scale of the colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
}

/// Viridis at 9 evenly spaced stops (matplotlib's values), interpolated linearly between.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// ASCII shades from low to high.
const SHADES: &[u8] = b" .:-=+*#%@";

/// The colour of `t` in [0, 1] (clamped): dark violet for low, yellow for high.
pub fn viridis(t: f64) -> (u8, u8, u8) {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (VIRIDIS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Maps values to [0, 1] over their finite range, on `scale` (log needs positive values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    pub low: f64,
    pub high: f64,
    pub scale: Scale,
}

impl Levels {
    /// The range of the finite values (positive ones for a log scale); None if there is none.
    pub fn of(values: &[f64], scale: Scale) -> Option<Self> {
        let usable = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0));
        let (low, high) = usable.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        (low <= high).then_some(Self { low, high, scale })
    }

    /// Where `v` falls between low (0) and high (1).
    pub fn fraction(&self, v: f64) -> f64 {
        let f = |x: f64| match self.scale {
            Scale::Linear => x,
            Scale::Log => x.max(f64::MIN_POSITIVE).ln(),
        };
        let span = f(self.high) - f(self.low);
        if span > 0.0 {
            ((f(v) - f(self.low)) / span).clamp(0.0, 1.0)
        } else {
            0.5
        }
    }

    /// The value at fraction `t` of the scale.
    pub fn value_at(&self, t: f64) -> f64 {
        match self.scale {
            Scale::Linear => self.low + (self.high - self.low) * t,
            Scale::Log => (self.low.ln() + (self.high.ln() - self.low.ln()) * t).exp(),
        }
    }
}

/// A grid of values, row by row from the lowest y (row 0) to the highest; NaN where a point
/// is not measured (yet).
pub struct Grid<'a> {
    pub values: &'a [f64],
    pub nx: usize,
    pub ny: usize,
}

impl Grid<'_> {
    /// The value nearest to fractions (fx, fy) of the way across the grid, or NaN.
    fn nearest(&self, fx: f64, fy: f64) -> f64 {
        let pick = |f: f64, n: usize| ((f * (n - 1) as f64).round() as usize).min(n - 1);
        self.values[pick(fy, self.ny) * self.nx + pick(fx, self.nx)]
    }

    /// The value at fractions (fx, fy) interpolated bilinearly between the four grid points
    /// around it, so that colours and contour lines run smoothly between grid points; the
    /// nearest value where one of the four is not measured.
    pub fn bilinear(&self, fx: f64, fy: f64) -> f64 {
        let split = |f: f64, n: usize| {
            let pos = f.clamp(0.0, 1.0) * (n - 1) as f64;
            let low = (pos.floor() as usize).min(n.saturating_sub(2));
            (low, (low + 1).min(n - 1), pos - low as f64)
        };
        let (i0, i1, tx) = split(fx, self.nx);
        let (j0, j1, ty) = split(fy, self.ny);
        let at = |i: usize, j: usize| self.values[j * self.nx + i];
        let corners = [at(i0, j0), at(i1, j0), at(i0, j1), at(i1, j1)];
        if corners.iter().any(|v| v.is_nan()) {
            return self.nearest(fx, fy);
        }
        let bottom = corners[0] + (corners[1] - corners[0]) * tx;
        let top = corners[2] + (corners[3] - corners[2]) * tx;
        bottom + (top - bottom) * ty
    }
}

/// `values` (an `nx` × `ny` grid, row by row) with each NaN replaced by the value of the
/// nearest finite point (in grid steps; ties to the first): a plane that is filling in, coarse
/// to fine, drawn whole from the points it has. All NaN if none is finite.
pub fn fill_nearest(values: &[f64], nx: usize, ny: usize) -> Vec<f64> {
    let known: Vec<(usize, usize, f64)> = (0..ny)
        .flat_map(|j| (0..nx).map(move |i| (i, j)))
        .filter_map(|(i, j)| {
            let v = values[j * nx + i];
            (!v.is_nan()).then_some((i, j, v))
        })
        .collect();
    (0..ny)
        .flat_map(|j| (0..nx).map(move |i| (i, j)))
        .map(|(i, j)| {
            let v = values[j * nx + i];
            if !v.is_nan() {
                return v;
            }
            let distance =
                |&(a, b, _): &(usize, usize, f64)| a.abs_diff(i).pow(2) + b.abs_diff(j).pow(2);
            known
                .iter()
                .min_by_key(|k| distance(k))
                .map_or(f64::NAN, |k| k.2)
        })
        .collect()
}

/// A point to mark: its label's first letter is drawn at grid position (column, row),
/// fractional.
pub struct Mark {
    pub letter: char,
    pub column: f64,
    pub row: f64,
}

/// Contour bands of the colour scale: a contour line runs where the band changes.
pub const CONTOUR_BANDS: usize = 8;

/// One text cell of a heatmap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// Where the value of its upper and lower half falls on the colour scale (0 low, 1 high);
    /// None where nothing is measured. One grid row per cell in ASCII: both halves the same.
    pub top: Option<f64>,
    pub bottom: Option<f64>,
    /// A mark's letter drawn on it.
    pub letter: Option<char>,
    /// The value crosses a contour level between this cell and the next to its right or
    /// below it.
    pub contour: bool,
}

impl Cell {
    /// The mean of its measured halves.
    pub fn fraction(&self) -> Option<f64> {
        match (self.top, self.bottom) {
            (Some(a), Some(b)) => Some((a + b) / 2.0),
            (a, b) => a.or(b),
        }
    }
}

/// The contour band a fraction of the scale falls in.
pub fn band(fraction: f64) -> usize {
    ((fraction * CONTOUR_BANDS as f64).floor() as usize).min(CONTOUR_BANDS - 1)
}

/// The colour of contour band `k`: the colour map at the band's middle.
pub fn band_colour(k: usize) -> (u8, u8, u8) {
    viridis((k as f64 + 0.5) / CONTOUR_BANDS as f64)
}

/// The heatmap as `height` lines of `width` cells, the highest y on top: each cell holds one
/// grid row (`rows_per_cell` 1) or two (2, half blocks), sampled from the nearest grid point.
pub fn cells(
    grid: &Grid,
    levels: &Levels,
    width: usize,
    height: usize,
    rows_per_cell: usize,
    marks: &[Mark],
) -> Vec<Vec<Cell>> {
    let (width, height) = (width.max(1), height.max(1));
    let rows = height * rows_per_cell;
    let frac = |k: usize, n: usize| {
        if n > 1 {
            k as f64 / (n - 1) as f64
        } else {
            0.5
        }
    };
    let mut out: Vec<Vec<Cell>> = (0..height)
        .map(|line| {
            (0..width)
                .map(|c| {
                    let fx = frac(c, width);
                    // Text lines run top down; grid rows bottom up.
                    let at = |r: usize| {
                        let v = grid.bilinear(fx, 1.0 - frac(r, rows));
                        (!v.is_nan()).then(|| levels.fraction(v))
                    };
                    let top = at(line * rows_per_cell);
                    let bottom = at(line * rows_per_cell + rows_per_cell - 1);
                    Cell {
                        top,
                        bottom,
                        letter: None,
                        contour: false,
                    }
                })
                .collect()
        })
        .collect();
    for line in 0..height {
        for c in 0..width {
            let Some(here) = out[line][c].fraction() else {
                continue;
            };
            let differs = |other: Option<f64>| other.is_some_and(|o| band(o) != band(here));
            let right = out[line].get(c + 1).and_then(Cell::fraction);
            let below = out.get(line + 1).and_then(|l| l[c].fraction());
            out[line][c].contour = differs(right) || differs(below);
        }
    }
    for m in marks {
        let (c, line) = cell_of(grid, m.column, m.row, width, height, rows_per_cell);
        out[line][c].letter = Some(m.letter);
    }
    out
}

/// The cell (column, line) that grid position (column, row), fractional, falls in.
pub fn cell_of(
    grid: &Grid,
    column: f64,
    row: f64,
    width: usize,
    height: usize,
    rows_per_cell: usize,
) -> (usize, usize) {
    let rows = height * rows_per_cell;
    let cx = (column / (grid.nx - 1).max(1) as f64 * (width - 1) as f64).round();
    let cy = (row / (grid.ny - 1).max(1) as f64 * (rows - 1) as f64).round();
    let cx = (cx.max(0.0) as usize).min(width - 1);
    let line_from_bottom = (cy.max(0.0) as usize / rows_per_cell).min(height - 1);
    (cx, height - 1 - line_from_bottom)
}

/// The heatmap as `height` lines of `width` cells (plus a legend line), the highest y on top.
pub fn render(
    grid: &Grid,
    width: usize,
    height: usize,
    scale: Scale,
    shading: Shading,
    marks: &[Mark],
) -> Vec<String> {
    let (width, height) = (width.max(2), height.max(1));
    let Some(levels) = Levels::of(grid.values, scale) else {
        return vec!["(no finite values to draw)".into()];
    };
    let per_cell = if shading == Shading::Colour { 2 } else { 1 };
    let mut lines: Vec<String> = cells(grid, &levels, width, height, per_cell, marks)
        .iter()
        .map(|line| {
            let mut text = String::new();
            for cell in line {
                match shading {
                    Shading::Colour => {
                        if let Some(t) = cell.bottom {
                            let (r, g, b) = viridis(t);
                            text += &format!("\x1b[48;2;{r};{g};{b}m");
                        }
                        match (cell.letter, cell.top) {
                            (Some(letter), _) => {
                                text += &format!("\x1b[1;38;2;255;255;255m{letter}")
                            }
                            (None, Some(t)) => {
                                let (r, g, b) = viridis(t);
                                text += &format!("\x1b[38;2;{r};{g};{b}m▀");
                            }
                            (None, None) => text.push(' '),
                        }
                        text += "\x1b[0m";
                    }
                    Shading::Ascii => text.push(match (cell.letter, cell.top) {
                        (Some(letter), _) => letter,
                        (None, None) => ' ',
                        (None, Some(t)) => shade(t),
                    }),
                }
            }
            text
        })
        .collect();
    lines.push(legend(&levels, width, shading));
    lines
}

/// The ASCII shade of a fraction of the scale.
pub fn shade(fraction: f64) -> char {
    SHADES[(fraction.clamp(0.0, 1.0) * (SHADES.len() - 1) as f64).round() as usize] as char
}

/// "low ████ high" with the scale's values at both ends and the middle.
fn legend(levels: &Levels, width: usize, shading: Shading) -> String {
    let bar = width.saturating_sub(24).clamp(4, 40);
    let mut text = format!("{:.4} ", levels.low);
    for k in 0..bar {
        let t = k as f64 / (bar - 1) as f64;
        match shading {
            Shading::Colour => {
                let (r, g, b) = viridis(t);
                text += &format!("\x1b[38;2;{r};{g};{b}m█\x1b[0m");
            }
            Shading::Ascii => {
                text.push(SHADES[(t * (SHADES.len() - 1) as f64).round() as usize] as char)
            }
        }
    }
    let scale = match levels.scale {
        Scale::Linear => "linear",
        Scale::Log => "log",
    };
    text + &format!(
        " {:.4}  (middle {:.4}, {scale})",
        levels.high,
        levels.value_at(0.5)
    )
}

#[cfg(test)]
mod tests;
