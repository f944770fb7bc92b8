//! Key tables: one per tab and one for every tab, each row `(keys, action, label)`. The same
//! rows map a key to its [`Action`], write the key bar and the `?` help, so the three cannot
//! drift (the component template's `KeyBindings`).

use crossterm::event::KeyCode;
use ratatui::text::{Line, Span};

use super::app::Action;
use super::theme::Theme;

/// Where a row is shown besides being a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// In the key bar and the help.
    Both,
    /// Only in the help (the bar has no room for it).
    Help,
    /// Only in the key bar (the help says it elsewhere).
    Bar,
    /// Nowhere: a further key of a row shown above (e.g. the digits after "0-9").
    Hidden,
}

/// One row of a key table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The keys that do it.
    pub keys: &'static [KeyCode],
    /// What they do.
    pub action: Action,
    /// The keys as the user reads them.
    pub key: &'static str,
    /// What they do, in a few words.
    pub what: &'static str,
    /// Where it is shown.
    pub show: Show,
    /// Keys and words for the help, when longer than the bar's.
    pub long: Option<(&'static str, &'static str)>,
}

/// A row shown in the bar and the help.
pub const fn bind(
    keys: &'static [KeyCode],
    action: Action,
    key: &'static str,
    what: &'static str,
) -> Binding {
    Binding {
        keys,
        action,
        key,
        what,
        show: Show::Both,
        long: None,
    }
}

impl Binding {
    /// The same row, shown only where `show` says.
    pub const fn shown(self, show: Show) -> Binding {
        Binding { show, ..self }
    }

    /// The same row, with longer keys and words in the help.
    pub const fn long(self, key: &'static str, what: &'static str) -> Binding {
        Binding {
            long: Some((key, what)),
            ..self
        }
    }
}

/// The action of `code` in `table`, if any.
pub fn lookup(table: &[Binding], code: KeyCode) -> Option<Action> {
    table
        .iter()
        .find(|b| b.keys.contains(&code))
        .map(|b| b.action)
}

/// "key what  " spans of the rows shown in the key bar.
pub fn bar_spans<'a>(table: &'a [Binding], theme: &Theme) -> Vec<[Span<'a>; 2]> {
    table
        .iter()
        .filter(|b| matches!(b.show, Show::Both | Show::Bar))
        .map(|b| {
            [
                Span::styled(b.key, theme.key()),
                Span::styled(format!(" {}  ", b.what), theme.dim()),
            ]
        })
        .collect()
}

/// The help lines of a table under its title, one or two rows a line.
pub fn help_lines(
    title: &str,
    table: &[Binding],
    two_columns: bool,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(title.to_string(), theme.accent())];
    let rows: Vec<&Binding> = table
        .iter()
        .filter(|b| matches!(b.show, Show::Both | Show::Help))
        .collect();
    // Two to a line; an entry whose text is wider than its column gets a line of its own.
    let mut pending: Option<&Binding> = None;
    for b in rows {
        let long = b.long.unwrap_or((b.key, b.what)).1.chars().count() > 20;
        if !two_columns || long {
            if let Some(left) = pending.take() {
                lines.push(help_line(&[left], theme));
            }
            lines.push(help_line(&[b], theme));
        } else if let Some(left) = pending.take() {
            lines.push(help_line(&[left, b], theme));
        } else {
            pending = Some(b);
        }
    }
    if let Some(left) = pending {
        lines.push(help_line(&[left], theme));
    }
    lines
}

/// One line of the help: each binding's key and what it does, in 15 + 20 columns.
fn help_line(bindings: &[&Binding], theme: &Theme) -> Line<'static> {
    let mut spans = Vec::new();
    for b in bindings {
        let (key, what) = b.long.unwrap_or((b.key, b.what));
        spans.push(Span::styled(format!("  {key:<15}"), theme.key()));
        spans.push(Span::raw(format!("{what:<20}")));
    }
    Line::from(spans)
}
