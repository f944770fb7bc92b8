//! The whole screen as a pure function of the state: tab bar, the tab's body, a message line,
//! the key bar, and the help overlay; below the minimum size, a request to enlarge.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Tabs, Widget, Wrap};

use super::app::{App, GLOBAL_KEYS, Tab};
use super::keys;
use super::tabs::embeddings::EmbeddingsView;
use super::tabs::saliency::SaliencyView;
use super::tabs::training::TrainingView;
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
    // The message line is always there, so a message never shrinks (and re-rasterises) a panel.
    let [tabs_area, body, message_area, keys] = area.layout(&Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ]));
    render_tab_bar(app, tab, theme, tabs_area, buf);
    let session = &app.session;
    match tab {
        Tab::Training => (&TrainingView {
            tab: &app.training,
            session,
            theme,
        })
            .render(body, buf),
        Tab::Embeddings => (&EmbeddingsView {
            tab: &app.embed,
            session,
            theme,
        })
            .render(body, buf),
        Tab::Saliency => (&SaliencyView {
            tab: &app.saliency,
            session,
            theme,
        })
            .render(body, buf),
    }
    if let Some(q) = &app.question {
        buf.set_stringn(
            message_area.x,
            message_area.y,
            &q.text,
            usize::from(message_area.width),
            theme.highlight(),
        );
    } else if let Some(m) = &app.message {
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
        render_help(tab, theme, body, buf);
    }
}

fn render_tab_bar(app: &App, tab: Tab, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let [name, tabs_area] = area.layout(&Layout::horizontal([
        Constraint::Length(11),
        Constraint::Fill(1),
    ]));
    Span::styled("layerscope", theme.accent()).render(name, buf);
    let titles = Tab::ALL.map(|t| format!("{} {}", t.index() + 1, t.title()));
    let tabs = Tabs::new(titles)
        .select(tab.index())
        .style(theme.dim())
        .highlight_style(theme.highlight())
        .divider(" ");
    tabs.render(tabs_area, buf);
    let used = 11
        + Tab::ALL
            .iter()
            .map(|t| u16::try_from(t.title().len() + 5).unwrap_or(u16::MAX))
            .sum::<u16>();
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
    if app.session.split.is_none() && !app.idle {
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

/// The tab's keys from the left, as many as fit; help and quit always, at the right.
fn render_key_bar(tab: Tab, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let global = Line::from(keys::bar_spans(GLOBAL_KEYS, theme).concat());
    let global_w = u16::try_from(global.width()).unwrap_or(u16::MAX);
    let room = usize::from(area.width.saturating_sub(global_w));
    let mut spans = Vec::new();
    let mut used = 0;
    for pair in keys::bar_spans(tab.keys(), theme) {
        let w: usize = pair.iter().map(Span::width).sum();
        if used + w > room {
            break;
        }
        used += w;
        spans.extend(pair);
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

/// Every key, from the same tables as the key bar and the key handling: the keys of everywhere
/// and of the tab shown first, then the other tabs' as long as they fit (at 80x24 they do not:
/// a line says where they are).
fn render_help(shown: Tab, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let w = 78.min(area.width);
    let two_columns = w >= 70;
    let mut lines = keys::help_lines("Everywhere", GLOBAL_KEYS, two_columns, theme);
    lines.extend(keys::help_lines(
        &shown.title(),
        shown.keys(),
        two_columns,
        theme,
    ));
    let mut notes = vec![
        Line::styled(
            "* everywhere; in Saliency [ and ] pick the class to explain",
            theme.dim(),
        ),
        Line::styled(
            "trust: share of 10 nearest neighbours (in the layer) kept in the map",
            theme.dim(),
        ),
    ];
    let room = usize::from(area.height.saturating_sub(2));
    let mut left_out = Vec::new();
    for tab in Tab::ALL.into_iter().filter(|&t| t != shown) {
        let more = keys::help_lines(&tab.title(), tab.keys(), two_columns, theme);
        if lines.len() + more.len() + notes.len() < room {
            lines.extend(more);
        } else {
            left_out.push(tab.title());
        }
    }
    if !left_out.is_empty() {
        notes.insert(
            0,
            Line::styled(
                format!("{}: press ? there for their keys", left_out.join(", ")),
                theme.dim(),
            ),
        );
    }
    lines.extend(notes);
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
        .block(theme.block().title(" keys "))
        .render(popup, buf);
}
