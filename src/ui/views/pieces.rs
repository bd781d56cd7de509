//! A line of pieces that give way whole when the terminal is narrow: the header's, the key
//! bar's and the machine strip's.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// Pieces of a line that give way whole, least important first, when the line is too narrow:
/// a number is dropped with its field, never cut.
pub(crate) struct Pieces {
    /// (styled texts, rank): a piece goes whole; a higher rank goes first; rank 0 stays.
    items: Vec<(Vec<(String, Style)>, u8)>,
}

impl Pieces {
    pub(crate) fn new() -> Self {
        Self { items: Vec::new() }
    }

    pub(crate) fn push(&mut self, text: impl Into<String>, style: Style, rank: u8) {
        self.items.push((vec![(text.into(), style)], rank));
    }

    /// A piece of several styled texts (a key and its word) that stay or go together.
    pub(crate) fn push_group(&mut self, texts: Vec<(String, Style)>, rank: u8) {
        self.items.push((texts, rank));
    }

    fn width(&self) -> usize {
        self.items
            .iter()
            .flat_map(|i| &i.0)
            .map(|(t, _)| t.chars().count())
            .sum()
    }

    /// The pieces that fit in `width`, in their order.
    pub(crate) fn fit(mut self, width: usize) -> Line<'static> {
        while self.width() > width {
            let Some(worst) = self
                .items
                .iter()
                .enumerate()
                .filter(|(_, item)| item.1 > 0)
                .max_by_key(|(i, item)| (item.1, *i))
                .map(|(i, _)| i)
            else {
                break;
            };
            self.items.remove(worst);
        }
        Line::from(
            self.items
                .into_iter()
                .flat_map(|(texts, _)| texts)
                .map(|(t, s)| Span::styled(t, s))
                .collect::<Vec<_>>(),
        )
    }
}
