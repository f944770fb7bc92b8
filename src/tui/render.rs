//! The whole screen as a pure function of the state: tab bar, the tab's body, a message line,
//! the key bar, and the help overlay; below the minimum size, a request to enlarge.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use super::app::{App, Tab};
use super::tabs;
use super::theme::Theme;

/// Smallest terminal the tabs are laid out for.
pub const MIN_WIDTH: u16 = 60;
/// Smallest terminal height the tabs are laid out for.
pub const MIN_HEIGHT: u16 = 16;

/// Draw the app into a frame.
pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let area = frame.area();
    render(app, app.tab, theme, area, frame.buffer_mut());
}

/// Render the app, showing `tab`, into `buf`.
pub fn render(app: &App, tab: Tab, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let area = area.intersection(buf.area);
    if area.is_empty() {
        return;
    }
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "enlarge the terminal: {}x{}, need {MIN_WIDTH}x{MIN_HEIGHT} (q quits)",
            area.width, area.height
        );
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .style(theme.bad())
            .render(area, buf);
        return;
    }
    let message_h = u16::from(app.message.is_some());
    let [tabs_area, body, message_area, keys] = area.layout(&Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(message_h),
        Constraint::Length(1),
    ]));
    render_tab_bar(app, tab, theme, tabs_area, buf);
    match tab {
        Tab::Training => tabs::training::render(app, theme, body, buf),
        Tab::Embeddings => tabs::embeddings::render(app, theme, body, buf),
        Tab::Saliency => tabs::saliency::render(app, theme, body, buf),
    }
    if let Some(m) = &app.message {
        let style = if m.contains("failed") {
            theme.bad()
        } else {
            theme.text()
        };
        buf.set_stringn(
            message_area.x,
            message_area.y,
            m,
            usize::from(message_area.width),
            style,
        );
    }
    render_key_bar(tab, theme, keys, buf);
    if app.show_help {
        render_help(theme, body, buf);
    }
}

fn render_tab_bar(app: &App, tab: Tab, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let mut spans = vec![Span::styled("layerscope ", theme.accent())];
    for t in Tab::ALL {
        let label = format!(" {} {} ", t.index() + 1, t.title());
        let style = if t == tab {
            theme.highlight()
        } else {
            theme.dim()
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    let line = Line::from(spans);
    let used = u16::try_from(line.width()).unwrap_or(u16::MAX);
    line.render(area, buf);
    let status = status_text(app);
    let w = u16::try_from(status.chars().count()).unwrap_or(u16::MAX);
    if used + w < area.width {
        buf.set_string(area.right() - w, area.y, &status, theme.dim());
    }
}

/// A short summary of what the worker is doing, for the tab bar.
fn status_text(app: &App) -> String {
    let t = &app.training;
    let epoch = t.history.last().map_or(0, |e| e.epoch);
    if app.split.is_none() && !app.idle {
        return "loading data ".into();
    }
    if t.status.is_active() {
        return format!("{} {epoch}/{} ", t.status.label(), t.max_epochs);
    }
    if let Some(p) = app.embed.panels.iter().find(|p| !p.done && p.n_iter > 0) {
        return format!("t-SNE layer {} {}/{} ", p.layer, p.iteration, p.n_iter);
    }
    if app.saliency.running {
        return "explaining ".into();
    }
    if app.idle { "idle " } else { "" }.into()
}

/// The keys of a tab, as (key, what) pairs (the global ones are in [`GLOBAL_KEYS`]).
pub fn tab_keys(tab: Tab) -> &'static [(&'static str, &'static str)] {
    match tab {
        Tab::Training => &[
            ("space", "pause/resume"),
            ("s", "stop early"),
            ("r", "restart (new seed)"),
            ("tab/1-3", "tabs"),
        ],
        Tab::Embeddings => &[
            ("hjkl", "move"),
            ("n/N", "wrong"),
            ("enter", "explain"),
            ("c", "colour"),
            ("+/-", "perplexity"),
            ("r", "re-run"),
            ("i", "input layer"),
            ("f", "focus panel"),
        ],
        Tab::Saliency => &[
            ("left/right", "image"),
            ("0-9", "class"),
            ("p", "predicted class"),
            ("m", "method"),
            ("tab", "tabs"),
        ],
    }
}

/// Keys shown on every tab, at the right of the key bar.
pub const GLOBAL_KEYS: [(&str, &str); 2] = [("?", "help"), ("q", "quit")];

fn key_spans<'a>(keys: &[(&'a str, &'a str)], theme: &Theme) -> Vec<Span<'a>> {
    let mut spans = Vec::new();
    for (key, what) in keys {
        spans.push(Span::styled(*key, theme.key()));
        spans.push(Span::styled(format!(" {what}  "), theme.dim()));
    }
    spans
}

/// The tab's keys from the left, as many as fit; help and quit always, at the right.
fn render_key_bar(tab: Tab, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let global = Line::from(key_spans(&GLOBAL_KEYS, theme));
    let global_w = u16::try_from(global.width()).unwrap_or(u16::MAX);
    let room = usize::from(area.width.saturating_sub(global_w));
    let mut spans = Vec::new();
    let mut used = 0;
    for pair in key_spans(tab_keys(tab), theme).chunks(2) {
        let w: usize = pair.iter().map(Span::width).sum();
        if used + w > room {
            break;
        }
        used += w;
        spans.extend_from_slice(pair);
    }
    Line::from(spans).render(area, buf);
    if global_w <= area.width {
        global.render(
            Rect {
                x: area.right() - global_w,
                width: global_w,
                ..area
            },
            buf,
        );
    }
}

fn render_help(theme: &Theme, area: Rect, buf: &mut Buffer) {
    let everywhere: &[(&str, &str)] = &[
        ("tab/shift-tab", "next/previous tab"),
        ("arrows = hjkl", "n/N: misclassified"),
        ("1 2 3, F1-F3", "go to a tab *"),
        ("?", "help (esc closes)"),
        ("q, esc, ctrl-c", "quit"),
    ];
    let w = 78.min(area.width);
    let two_columns = w >= 70;
    let mut lines = Vec::new();
    let mut section = |title: &str, keys: &[(&str, &str)]| {
        lines.push(Line::styled(title.to_string(), theme.accent()));
        let keys: Vec<_> = keys
            .iter()
            .filter(|(k, _)| !matches!(*k, "tab" | "tab/1-3"))
            .collect();
        let per_line = if two_columns { 2 } else { 1 };
        for chunk in keys.chunks(per_line) {
            let mut spans = Vec::new();
            for (k, what) in chunk {
                spans.push(Span::styled(format!("  {k:<15}"), theme.key()));
                spans.push(Span::raw(format!("{what:<20}")));
            }
            lines.push(Line::from(spans));
        }
    };
    section("Everywhere", everywhere);
    for tab in Tab::ALL {
        section(tab.title(), tab_keys(tab));
    }
    lines.push(Line::styled(
        "* in Saliency, digits pick the class to explain",
        theme.dim(),
    ));
    let h = u16::try_from(lines.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let popup = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .block(Block::bordered().title(" keys "))
        .render(popup, buf);
}
