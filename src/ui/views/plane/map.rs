//! The plane's heatmap in the terminal: viridis half blocks (or ASCII shades) filled in from
//! the nearest measured point while the plane runs, contour dots, the iterates, the cursor,
//! and the colour bar's legend.

use super::*;

/// The heatmap panel: its title (and progress), the cells, the legend at its foot.
pub(super) fn render_map(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    s: &Shown,
    cursor: (usize, usize),
) {
    let mut title = format!(" plane {} · {} ", s.id, app.planes.show.label());
    if let Some((done, total)) = s.progress {
        title += &format!("· {done}/{total} points ");
    }
    let measured = values(app, s);
    // While it fills in, each point not measured yet takes its nearest measured one's value.
    let values = heatmap::fill_nearest(&measured, s.xs.len(), s.ys.len());
    let block = panel(app, title);
    let Some(levels) = Levels::of(&values, scale(app)) else {
        let waiting = Paragraph::new("waiting for the first points…").block(block);
        frame.render_widget(waiting, area);
        return;
    };
    let block = block.title_bottom(legend(app, &levels, area.width.saturating_sub(4)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width < 2 || inner.height < 1 {
        return;
    }
    let grid = Grid {
        values: &values,
        nx: s.xs.len(),
        ny: s.ys.len(),
    };
    // The path first, so that the iterates' own letters win a shared cell.
    let marks: Vec<Mark> = plane::path_marks(s.path, s.xs, s.ys)
        .into_iter()
        .chain(s.markers.iter().map(|m| (m.letter, m.x, m.y)))
        .map(|(letter, x, y)| Mark {
            letter,
            column: position(x, s.xs),
            row: position(y, s.ys),
        })
        .collect();
    let colour = app.theme.color && !app.theme.ascii;
    let per_cell = if colour { 2 } else { 1 };
    let (width, height) = (usize::from(inner.width), usize::from(inner.height));
    let cells = heatmap::cells(&grid, &levels, width, height, per_cell, &marks);
    let cursor_cell = heatmap::cell_of(
        &grid,
        cursor.0 as f64,
        cursor.1 as f64,
        width,
        height,
        per_cell,
    );
    paint_cells(frame.buffer_mut(), inner, &cells, cursor_cell, colour);
}

/// Paints heatmap cells into `buffer` at `inner`: half blocks of two grid rows in colour (or
/// shades of ASCII), contour dots, the iterates' letters, the cursor reversed.
fn paint_cells(
    buffer: &mut ratatui::buffer::Buffer,
    inner: Rect,
    cells: &[Vec<heatmap::Cell>],
    cursor_cell: (usize, usize),
    colour: bool,
) {
    for (line, row) in cells.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let Some(target) = buffer.cell_mut((inner.x + c as u16, inner.y + line as u16)) else {
                continue;
            };
            let is_cursor = (c, line) == cursor_cell;
            if colour {
                let bg = cell.bottom.map(Theme::heat).unwrap_or(Theme::HEAT_EMPTY);
                let ink = Theme::heat_ink(cell.fraction());
                match (cell.letter, is_cursor) {
                    // The cursor on an iterate keeps its letter, reversed.
                    (letter, true) => {
                        target.set_char(letter.unwrap_or('+'));
                        let style = Style::new().fg(ink).bg(bg).add_modifier(Modifier::BOLD);
                        target.set_style(if letter.is_some() {
                            style.add_modifier(Modifier::REVERSED)
                        } else {
                            style
                        });
                    }
                    (Some(letter), false) => {
                        target.set_char(letter);
                        target.set_style(Style::new().fg(ink).bg(bg).add_modifier(Modifier::BOLD));
                    }
                    (None, false) if cell.contour => {
                        target.set_symbol("·");
                        let bg = cell
                            .fraction()
                            .map(Theme::heat)
                            .unwrap_or(Theme::HEAT_EMPTY);
                        target.set_style(Style::new().fg(ink).bg(bg));
                    }
                    (None, false) => match cell.top {
                        Some(t) => {
                            target.set_symbol("▀");
                            target.set_style(Style::new().fg(Theme::heat(t)).bg(bg));
                        }
                        None => {
                            target.set_symbol(" ");
                        }
                    },
                }
            } else {
                let glyph = match (cell.letter, is_cursor, cell.top) {
                    (Some(letter), _, _) => letter,
                    (None, true, _) => '+',
                    (None, false, Some(t)) => heatmap::shade(t),
                    (None, false, None) => ' ',
                };
                target.set_char(glyph);
                let style = match (is_cursor, cell.letter.is_some()) {
                    (true, true) => Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
                    (false, false) => Style::new(),
                    _ => Style::new().add_modifier(Modifier::BOLD),
                };
                target.set_style(style);
            }
        }
    }
}

/// " 0.3007 ▁▂▃…█ 0.3615 linear ", a colour bar (or its ASCII shades) between the scale's ends.
fn legend(app: &App, levels: &Levels, width: u16) -> Line<'static> {
    let bar = usize::from(width.saturating_sub(30)).clamp(4, 24);
    let colour = app.theme.color && !app.theme.ascii;
    let mut spans = vec![Span::raw(format!(" {:.4} ", levels.low))];
    for k in 0..bar {
        let t = k as f64 / (bar - 1) as f64;
        spans.push(if colour {
            Span::styled("█", Style::new().fg(Theme::heat(t)))
        } else {
            Span::raw(heatmap::shade(t).to_string())
        });
    }
    let scale = match levels.scale {
        Scale::Linear => "linear",
        Scale::Log => "log",
    };
    spans.push(Span::raw(format!(" {:.4} {scale} ", levels.high)));
    Line::from(spans)
}
