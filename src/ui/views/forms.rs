//! The form overlays' frame: fields (the selected one marked, those that do not apply
//! dimmed), then why the values cannot run or what Enter does; and the probe form in it.

use super::{centred, panel};
use crate::ui::app::App;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};

/// The probe form, over the current view.
pub fn render_form(app: &App, frame: &mut Frame, area: Rect) {
    let form = &app.form;
    render_fields(
        app,
        frame,
        area,
        " new probe ",
        (&form.fields, form.selected, |i| form.applies(i)),
        form.error.as_deref(),
        "Enter runs it · training waits while it runs",
    );
}

/// A form overlay: its fields (the selected one marked, those that do not apply dimmed), then
/// why it cannot run or what Enter does.
pub(super) fn render_fields(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    title: &str,
    (fields, selected, applies): (&[crate::ui::form::Field], usize, impl Fn(usize) -> bool),
    error: Option<&str>,
    hint: &str,
) {
    let mut lines = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let is_selected = i == selected;
        let marker = if is_selected { "▶" } else { " " };
        let value = if is_selected && matches!(field.value, crate::ui::form::Value::Choice { .. }) {
            format!("◀ {} ▶", field.text())
        } else {
            field.text()
        };
        let style = if !applies(i) {
            app.theme.dim()
        } else if is_selected {
            app.theme.key()
        } else {
            Style::new()
        };
        lines.push(Line::styled(
            format!("{marker} {:<13} {value}", field.name),
            style,
        ));
    }
    lines.push(Line::raw(""));
    lines.push(match error {
        Some(e) => Line::styled(format!("✗ {e}"), app.theme.bad()),
        None => Line::styled(hint.to_owned(), app.theme.dim()),
    });
    // A long error wraps inside the form instead of being cut.
    let width = 60.min(area.width);
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: u16 = lines
        .iter()
        .map(|l| l.width().div_ceil(inner).max(1) as u16)
        .sum();
    let rect = centred(area, width, rows + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(panel(app, title.to_owned())),
        rect,
    );
}
