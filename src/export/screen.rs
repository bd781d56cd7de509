//! A rendered terminal screen as SVG: every cell in its place, in its colours. Braille dots,
//! block elements and box-drawing lines are drawn as shapes rather than glyphs, so that the
//! picture does not depend on the fonts of whoever opens it; other text is set in a monospace
//! font, each run stretched to exactly its cells.

use ratatui::buffer::{Buffer, Cell};
use ratatui::style::{Color, Modifier};
use std::fmt::Write;

/// Cell width and height in SVG user units (pixels at scale 1).
pub const CELL_W: f64 = 9.0;
pub const CELL_H: f64 = 18.0;
const FONT_SIZE: f64 = 15.0;
const DEFAULT_FG: &str = "#d4d4d4";
const DEFAULT_BG: &str = "#101418";

/// The 16 ANSI colours, as a dark terminal theme draws them.
fn named(color: Color) -> Option<&'static str> {
    Some(match color {
        Color::Black => "#000000",
        Color::Red => "#cd3131",
        Color::Green => "#0dbc79",
        Color::Yellow => "#e5e510",
        Color::Blue => "#2472c8",
        Color::Magenta => "#bc3fbc",
        Color::Cyan => "#11a8cd",
        Color::Gray => "#e5e5e5",
        Color::DarkGray => "#767676",
        Color::LightRed => "#f14c4c",
        Color::LightGreen => "#23d18b",
        Color::LightYellow => "#f5f543",
        Color::LightBlue => "#3b8eea",
        Color::LightMagenta => "#d670d6",
        Color::LightCyan => "#29b8db",
        Color::White => "#ffffff",
        _ => return None,
    })
}

fn hex(color: Color, default: &str) -> String {
    match color {
        Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
        Color::Indexed(i) if i < 16 => {
            const ORDER: [Color; 16] = [
                Color::Black,
                Color::Red,
                Color::Green,
                Color::Yellow,
                Color::Blue,
                Color::Magenta,
                Color::Cyan,
                Color::Gray,
                Color::DarkGray,
                Color::LightRed,
                Color::LightGreen,
                Color::LightYellow,
                Color::LightBlue,
                Color::LightMagenta,
                Color::LightCyan,
                Color::White,
            ];
            hex(ORDER[i as usize], default)
        }
        other => named(other).unwrap_or(default).to_owned(),
    }
}

/// Foreground and background of a cell, after REVERSED.
fn colours(cell: &Cell) -> (String, String) {
    let fg = hex(cell.fg, DEFAULT_FG);
    let bg = hex(cell.bg, DEFAULT_BG);
    if cell.modifier.contains(Modifier::REVERSED) {
        (bg, fg)
    } else {
        (fg, bg)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Which edges a light box-drawing character connects: (left, right, up, down).
fn box_edges(c: char) -> Option<(bool, bool, bool, bool)> {
    Some(match c {
        '─' => (true, true, false, false),
        '│' => (false, false, true, true),
        '┌' | '╭' => (false, true, false, true),
        '┐' | '╮' => (true, false, false, true),
        '└' | '╰' => (false, true, true, false),
        '┘' | '╯' => (true, false, true, false),
        '├' => (false, true, true, true),
        '┤' => (true, false, true, true),
        '┬' => (true, true, false, true),
        '┴' => (true, true, true, false),
        '┼' => (true, true, true, true),
        _ => return None,
    })
}

/// Shapes for one cell's symbol, if it is drawn rather than typeset.
fn shape(out: &mut String, c: char, x: f64, y: f64, fg: &str) -> bool {
    let (cx, cy) = (x + CELL_W / 2.0, y + CELL_H / 2.0);
    if let Some((l, r, u, d)) = box_edges(c) {
        for (on, x2, y2) in [
            (l, x, cy),
            (r, x + CELL_W, cy),
            (u, cx, y),
            (d, cx, y + CELL_H),
        ] {
            if on {
                let _ = write!(
                    out,
                    r#"<line x1="{cx}" y1="{cy}" x2="{x2}" y2="{y2}" stroke="{fg}" stroke-width="1"/>"#
                );
            }
        }
        return true;
    }
    if c == '┊' || c == '╎' {
        let _ = write!(
            out,
            r#"<line x1="{cx}" y1="{y}" x2="{cx}" y2="{}" stroke="{fg}" stroke-width="1" stroke-dasharray="2 2"/>"#,
            y + CELL_H
        );
        return true;
    }
    if ('\u{2801}'..='\u{28ff}').contains(&c) {
        let bits = c as u32 - 0x2800;
        // Dot n of a braille cell: column 0 holds dots 1, 2, 3, 7; column 1 holds 4, 5, 6, 8.
        const DOTS: [(f64, f64); 8] = [
            (0., 0.),
            (0., 1.),
            (0., 2.),
            (1., 0.),
            (1., 1.),
            (1., 2.),
            (0., 3.),
            (1., 3.),
        ];
        for (i, (dx, dy)) in DOTS.iter().enumerate() {
            if bits & (1 << i) != 0 {
                let px = x + (0.3 + 0.4 * dx) * CELL_W;
                let py = y + (0.125 + 0.25 * dy) * CELL_H;
                let _ = write!(
                    out,
                    r#"<circle cx="{px:.2}" cy="{py:.2}" r="1.3" fill="{fg}"/>"#
                );
            }
        }
        return true;
    }
    let rect = |out: &mut String, rx: f64, ry: f64, w: f64, h: f64, opacity: f64| {
        let _ = write!(
            out,
            r#"<rect x="{rx}" y="{ry}" width="{w}" height="{h}" fill="{fg}" fill-opacity="{opacity}"/>"#
        );
    };
    match c {
        '█' => rect(out, x, y, CELL_W, CELL_H, 1.0),
        '▀' => rect(out, x, y, CELL_W, CELL_H / 2.0, 1.0),
        '▄' => rect(out, x, cy, CELL_W, CELL_H / 2.0, 1.0),
        '▌' => rect(out, x, y, CELL_W / 2.0, CELL_H, 1.0),
        '▐' => rect(out, cx, y, CELL_W / 2.0, CELL_H, 1.0),
        '░' => rect(out, x, y, CELL_W, CELL_H, 0.25),
        '▒' => rect(out, x, y, CELL_W, CELL_H, 0.5),
        '▓' => rect(out, x, y, CELL_W, CELL_H, 0.75),
        _ => return false,
    }
    true
}

/// The SVG of a whole screen. The same buffer always gives the same bytes.
pub fn to_svg(buffer: &Buffer) -> String {
    let area = buffer.area;
    let (w, h) = (
        f64::from(area.width) * CELL_W,
        f64::from(area.height) * CELL_H,
    );
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans Mono, monospace" font-size="{FONT_SIZE}">"#
    );
    let _ = write!(
        out,
        r#"<rect width="{w}" height="{h}" fill="{DEFAULT_BG}"/>"#
    );
    for row in 0..area.height {
        let y = f64::from(row) * CELL_H;
        // Backgrounds first, as runs of equal colour.
        let mut col = 0;
        while col < area.width {
            let (_, bg) = colours(&buffer[(area.x + col, area.y + row)]);
            let start = col;
            while col < area.width && colours(&buffer[(area.x + col, area.y + row)]).1 == bg {
                col += 1;
            }
            if bg != DEFAULT_BG {
                let _ = write!(
                    out,
                    r#"<rect x="{}" y="{y}" width="{}" height="{CELL_H}" fill="{bg}"/>"#,
                    f64::from(start) * CELL_W,
                    f64::from(col - start) * CELL_W
                );
            }
        }
        // Then shapes and text runs of equal style.
        let mut col = 0;
        while col < area.width {
            let cell = &buffer[(area.x + col, area.y + row)];
            let (fg, _) = colours(cell);
            let x = f64::from(col) * CELL_W;
            let symbol = cell.symbol();
            let first = symbol.chars().next().unwrap_or(' ');
            if shape(&mut out, first, x, y, &fg) || symbol.trim().is_empty() {
                col += 1;
                continue;
            }
            let style = (fg.clone(), cell.modifier);
            let start = col;
            let mut text = String::new();
            while col < area.width {
                let c = &buffer[(area.x + col, area.y + row)];
                let ch = c.symbol().chars().next().unwrap_or(' ');
                if (colours(c).0, c.modifier) != style
                    || box_edges(ch).is_some()
                    || ('\u{2801}'..='\u{28ff}').contains(&ch)
                {
                    break;
                }
                text.push_str(if c.symbol().is_empty() {
                    " "
                } else {
                    c.symbol()
                });
                col += 1;
            }
            let trimmed = text.trim_end();
            let cells = trimmed.chars().count();
            if cells == 0 {
                continue;
            }
            let mut attrs = String::new();
            if cell.modifier.contains(Modifier::BOLD) {
                attrs += r#" font-weight="bold""#;
            }
            if cell.modifier.contains(Modifier::DIM) {
                attrs += r#" fill-opacity="0.6""#;
            }
            if cell.modifier.contains(Modifier::UNDERLINED) {
                attrs += r#" text-decoration="underline""#;
            }
            let _ = write!(
                out,
                r#"<text x="{}" y="{:.1}" fill="{fg}" textLength="{}" lengthAdjust="spacingAndGlyphs" xml:space="preserve"{attrs}>{}</text>"#,
                f64::from(start) * CELL_W,
                y + CELL_H * 0.75,
                cells as f64 * CELL_W,
                escape(trimmed)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    #[test]
    fn cells_become_text_runs_lines_dots_and_rects() {
        let mut b = Buffer::empty(Rect::new(0, 0, 6, 2));
        b.set_string(0, 0, "ab<c", Style::new().fg(Color::Red));
        b.set_string(0, 1, "─⠉█", Style::new().bg(Color::Blue));
        let svg = to_svg(&b);
        assert!(svg.contains(r##"fill="#cd3131" textLength="36" lengthAdjust="spacingAndGlyphs" xml:space="preserve">ab&lt;c</text>"##), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2, "⠉ has dots 1 and 4");
        assert_eq!(svg.matches("<line").count(), 2, "─ joins both sides");
        assert!(
            svg.contains(r##"fill="#2472c8""##),
            "the blue background run"
        );
        assert!(svg.contains(r#"width="54" height="36""#));
        assert_eq!(to_svg(&b), svg, "deterministic");
    }
}
