//! A plane's stored path as the terminal shows it: the letters on the heatmap and one line
//! about how much of the path the plane holds.

use super::PlaneResult;

/// The letters a plane's stored path is drawn with, at plane coordinates, inside the grid
/// only: `0` the initial weights, `o` an iterate that went into the SWA average, `+` another;
/// `x` any iterate the plane does not hold (its projection residual above
/// [`crate::trajectory::HELD`]). Markers drawn after them win their cells.
pub fn path_marks(
    path: &[crate::trajectory::PathPoint],
    xs: &[f64],
    ys: &[f64],
) -> Vec<(char, f64, f64)> {
    let inside = |v: f64, axis: &[f64]| v >= axis[0] && v <= axis[axis.len() - 1];
    path.iter()
        .filter(|p| inside(p.projection.x, xs) && inside(p.projection.y, ys))
        .map(|p| {
            let letter = if p.projection.residual > crate::trajectory::HELD {
                'x'
            } else if p.at.epoch == 0 {
                '0'
            } else if p.at.swa_snapshot {
                'o'
            } else {
                '+'
            };
            (letter, p.projection.x, p.projection.y)
        })
        .collect()
}

/// One line about a plane's path: how many iterates, how many the plane holds and shows, and
/// the letters; None without a path.
pub fn path_line(r: &PlaneResult) -> Option<String> {
    if r.path.is_empty() {
        return None;
    }
    let held = r
        .path
        .iter()
        .filter(|p| p.projection.residual <= crate::trajectory::HELD)
        .count();
    let shown = path_marks(&r.path, &r.xs, &r.ys).len();
    let last = r.path.last().map_or(0, |p| p.at.epoch);
    let residual = |i: usize| r.path[i].projection.residual;
    Some(format!(
        "path: {} iterates (epochs 0..{last}), {held} held by the plane (residual ≤ {}), {shown} inside the grid; residual at the start {:.2}, at the end {:.2} · 0 start, + epoch end, o SWA snapshot, x off the plane",
        r.path.len(),
        crate::trajectory::HELD,
        residual(0),
        residual(r.path.len() - 1)
    ))
}
