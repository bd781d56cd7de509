//! Every colour and marker the screens use, in one place, with the fallbacks for
//! monochrome terminals (NO_COLOR) and terminals without Unicode (`--ascii`).
//!
//! Colours are the 16 ANSI ones only, so that a 16-colour terminal shows what a true-colour one
//! does. SGD is warm (yellow/red), SWA is cool (cyan/blue); train and test differ by marker, so
//! the chart still reads without colour.

use crate::protocol::{Iterate, Split};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;

/// How the terminal can draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
    pub ascii: bool,
}

impl Theme {
    /// Colour unless NO_COLOR is set (to anything non-empty) or `mono` is asked for.
    pub fn detect(ascii: bool, mono: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: !(mono || no_color),
            ascii,
        }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// A heatmap's colour at `t` in [0, 1]: the viridis map, in 24-bit colour (the one place
    /// the screens leave the 16 ANSI colours: a colour scale needs more than 16 steps).
    pub fn heat(t: f64) -> Color {
        let (r, g, b) = crate::plot::heatmap::viridis(t);
        Color::Rgb(r, g, b)
    }

    /// The background of a heatmap cell with no value yet.
    pub const HEAT_EMPTY: Color = Color::Reset;

    /// Text over a heatmap cell at `fraction` of the scale: dark on the bright end of the
    /// map, white on the dark end.
    pub fn heat_ink(fraction: Option<f64>) -> Color {
        if fraction.unwrap_or(0.0) > 0.6 {
            Color::Black
        } else {
            Color::White
        }
    }

    /// The style of a series.
    pub fn series(&self, iterate: Iterate, split: Split) -> Style {
        match (iterate, split) {
            (Iterate::Sgd, Split::Test) => self.fg(Color::LightRed),
            (Iterate::Sgd, _) => self.fg(Color::Yellow),
            (Iterate::Swa, Split::Test) => self.fg(Color::LightBlue),
            (Iterate::Swa, _) => self.fg(Color::Cyan),
            (Iterate::SwaStale, _) => self.fg(Color::Magenta),
        }
    }

    /// A probe's train and test curves: hues of their own, apart from each other and from the
    /// dashboard's iterates (a probe's curves belong to one point, SGD or SWA).
    pub fn probe_series(&self, split: Split) -> Style {
        match split {
            Split::Test => self.fg(Color::LightMagenta),
            _ => self.fg(Color::Green),
        }
    }

    /// The marker of a series: braille (exact to a quarter of a row) for every series; in
    /// ASCII, letters.
    pub fn marker(&self, iterate: Iterate, split: Split) -> Marker {
        let test = split == Split::Test;
        match (self.ascii, iterate, test) {
            (true, Iterate::SwaStale, _) => Marker::Custom('s'),
            (true, Iterate::Sgd, false) => Marker::Custom('.'),
            (true, Iterate::Sgd, true) => Marker::Custom('o'),
            (true, Iterate::Swa, false) => Marker::Custom('+'),
            (true, Iterate::Swa, true) => Marker::Custom('x'),
            (false, ..) => Marker::Braille,
        }
    }

    /// How a series' line is broken, as (dash, gap) in braille dots; None draws it solid.
    /// Test curves are dashed so that they are told from training curves without colour; in
    /// monochrome the two iterates get patterns of their own too.
    pub fn dash(&self, iterate: Iterate, split: Split) -> Option<(f64, f64)> {
        if self.ascii {
            return None;
        }
        let test = split == Split::Test;
        match (self.color, iterate, test) {
            (_, Iterate::SwaStale, _) => Some((1.0, 2.0)),
            (true, _, true) => Some((3.0, 2.0)),
            (true, _, false) => None,
            (false, Iterate::Sgd, false) => None,
            (false, Iterate::Sgd, true) => Some((3.0, 2.0)),
            (false, Iterate::Swa, false) => Some((1.0, 1.0)),
            (false, Iterate::Swa, true) => Some((6.0, 3.0)),
        }
    }

    /// A series' sample in legends: its letter in ASCII, else its dash pattern.
    pub fn legend_sample(&self, iterate: Iterate, split: Split) -> String {
        if let Marker::Custom(c) = self.marker(iterate, split) {
            return c.to_string();
        }
        match self.dash(iterate, split) {
            None => "──",
            Some((d, _)) if d >= 6.0 => "━ ",
            Some((d, _)) if d >= 3.0 => "╌╌",
            Some((_, g)) if g >= 2.0 => "··",
            Some(_) => "┈┈",
        }
        .to_owned()
    }

    pub fn title(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub fn key(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn good(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn marker_line(&self) -> Style {
        self.dim()
    }

    /// Filled and empty cells of a text progress bar.
    pub fn bar_chars(&self) -> (char, char) {
        if self.ascii {
            ('#', '.')
        } else {
            ('█', '░')
        }
    }
}

/// Replaces every non-ASCII symbol of a rendered buffer with an ASCII look-alike, for
/// terminals or fonts without box drawing, braille or block glyphs (`--ascii`).
pub fn asciify(buffer: &mut ratatui::buffer::Buffer) {
    for cell in buffer.content.iter_mut() {
        let symbol = cell.symbol();
        if symbol.is_ascii() {
            continue;
        }
        let replacement = match symbol.chars().next().unwrap_or(' ') {
            '─' | '━' | '┈' | '╌' | '┄' => "-",
            '│' | '┃' | '┊' | '╎' | '┆' => "|",
            '┌' | '┐' | '└' | '┘' | '├' | '┤' | '┬' | '┴' | '┼' | '╭' | '╮' | '╰' | '╯' => {
                "+"
            }
            '█' | '▓' | '▒' | '▀' | '▄' | '▌' | '▐' => "#",
            '░' => ".",
            '•' | '●' => "o",
            '·' => "-",
            '×' => "x",
            '°' => "o",
            'Δ' => "d",
            '…' => ".",
            '⠀' => " ",
            c if ('\u{2800}'..='\u{28ff}').contains(&c) => ".",
            _ => "?",
        };
        cell.set_symbol(replacement);
    }
}
