//! Frames as text, for `layerscope snapshot` and the snapshot tests: render into a buffer, then
//! write its cells out, with ANSI SGR colour codes when asked.

use std::fmt::Write as _;
use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use super::app::{App, Tab};
use super::render;
use super::theme::{ColorDepth, Theme};
use crate::compute::{self, Config};

/// One frame of `tab` at `width` x `height` as text lines (trailing spaces kept), with ANSI
/// colours (24-bit) when `ansi` is set.
pub fn render_snapshot(state: &App, tab: Tab, width: u16, height: u16, ansi: bool) -> String {
    let theme = Theme::new(ColorDepth::TrueColor, false);
    render_snapshot_with(state, tab, width, height, ansi, &theme)
}

/// As [`render_snapshot`], with a given theme (e.g. ASCII, or 256 colours).
pub fn render_snapshot_with(
    state: &App,
    tab: Tab,
    width: u16,
    height: u16,
    ansi: bool,
    theme: &Theme,
) -> String {
    buffer_to_text(&render_buffer(state, tab, width, height, theme), ansi)
}

/// One frame of `tab` at `width` x `height` as cells, drawn with `theme` (ASCII themes are
/// made all ASCII, as on screen).
pub fn render_buffer(state: &App, tab: Tab, width: u16, height: u16, theme: &Theme) -> Buffer {
    let area = Rect::new(0, 0, width, height);
    let mut buf = Buffer::empty(area);
    render::render(state, tab, theme, area, &mut buf);
    if !theme.glyphs.unicode {
        super::theme::asciify(&mut buf);
    }
    buf
}

/// The cells of a buffer as lines of text, optionally with SGR codes.
pub fn buffer_to_text(buf: &Buffer, ansi: bool) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut current = Style::default();
        let mut skip = 0usize;
        for x in area.left()..area.right() {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let cell = &buf[(x, y)];
            if ansi {
                let mut style = Style::default().add_modifier(cell.modifier);
                if cell.fg != Color::Reset {
                    style = style.fg(cell.fg);
                }
                if cell.bg != Color::Reset {
                    style = style.bg(cell.bg);
                }
                if style != current {
                    out.push_str(&sgr(style));
                    current = style;
                }
            }
            let sym = cell.symbol();
            out.push_str(sym);
            // A wide glyph covers the next cell(s).
            let w = unicode_width(sym);
            skip = w.saturating_sub(1);
        }
        if ansi && current != Style::default() {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
    }
    out
}

/// The symbols of a buffer, one string per row (for widget tests).
pub fn buffer_lines(buf: &Buffer) -> Vec<String> {
    buffer_to_text(buf, false)
        .lines()
        .map(str::to_string)
        .collect()
}

fn unicode_width(s: &str) -> usize {
    // Every glyph the app draws is one cell wide.
    usize::from(!s.is_empty())
}

fn sgr(style: Style) -> String {
    let mut codes = vec!["0".to_string()];
    let m = style.add_modifier;
    if m.contains(Modifier::BOLD) {
        codes.push("1".into());
    }
    if m.contains(Modifier::DIM) {
        codes.push("2".into());
    }
    if m.contains(Modifier::ITALIC) {
        codes.push("3".into());
    }
    if m.contains(Modifier::UNDERLINED) {
        codes.push("4".into());
    }
    if m.contains(Modifier::REVERSED) {
        codes.push("7".into());
    }
    if let Some(c) = style.fg.and_then(|c| color_code(c, false)) {
        codes.push(c);
    }
    if let Some(c) = style.bg.and_then(|c| color_code(c, true)) {
        codes.push(c);
    }
    let mut s = String::from("\x1b[");
    let _ = write!(s, "{}m", codes.join(";"));
    s
}

fn color_code(c: Color, bg: bool) -> Option<String> {
    let base = if bg { 40 } else { 30 };
    let named = |i: u8, bright: bool| {
        let b = if bright { base + 60 } else { base };
        Some((b + i32::from(i)).to_string())
    };
    match c {
        Color::Reset => None,
        Color::Black => named(0, false),
        Color::Red => named(1, false),
        Color::Green => named(2, false),
        Color::Yellow => named(3, false),
        Color::Blue => named(4, false),
        Color::Magenta => named(5, false),
        Color::Cyan => named(6, false),
        Color::Gray => named(7, false),
        Color::DarkGray => named(0, true),
        Color::LightRed => named(1, true),
        Color::LightGreen => named(2, true),
        Color::LightYellow => named(3, true),
        Color::LightBlue => named(4, true),
        Color::LightMagenta => named(5, true),
        Color::LightCyan => named(6, true),
        Color::White => named(7, true),
        Color::Indexed(i) => Some(format!("{};5;{i}", base + 8)),
        Color::Rgb(r, g, b) => Some(format!("{};2;{r};{g};{b}", base + 8)),
    }
}

/// Build the app state headlessly: run the whole pipeline (train or load, explain the first test
/// image, embed every layer) with the worker and feed every event to a fresh [`App`].
/// A job that fails (a model that does not fit, diverging loss, ...) is an error here.
///
/// # Errors
/// The first job's failure, or the pipeline not finishing within `timeout`.
pub fn build_app(config: Config, timeout: Duration) -> anyhow::Result<App> {
    let mut app = App::new(config.perplexity);
    let mut failure = None;
    compute::run_pipeline(config, timeout, |event, slots| {
        if let compute::Event::JobFailed { message, .. } = &event {
            failure.get_or_insert_with(|| message.clone());
        }
        app.on_event(event, slots);
    })?;
    if let Some(message) = failure {
        anyhow::bail!("{message}");
    }
    app.idle = true;
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_ansi() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 1));
        buf.set_string(0, 0, "ab", Style::default().fg(Color::Red));
        assert_eq!(buffer_to_text(&buf, false), "ab \n");
        assert_eq!(buffer_to_text(&buf, true), "\x1b[0;31mab\x1b[0m \n");
    }
}
