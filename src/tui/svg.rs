//! A rendered frame as an SVG document: a vector image of the terminal cells for a README, a
//! paper or a slide, that looks the same everywhere because what a font would draw unevenly is
//! drawn as shapes: braille dots as circles, block elements (half blocks, bar eighths, shades)
//! as rectangles, and light box-drawing lines as strokes. Only text is left to the font, and
//! each text run is stretched to its cells (`textLength`), so columns line up in any font.
//!
//! One element per run: cells next to each other on a row that share a style and a kind (text,
//! braille, blocks, lines) make one `<text>` or `<path>`; runs of the same background colour make
//! one `<rect>`. Blank cells on the default background draw nothing.

use std::fmt::Write as _;

use ratatui::buffer::{Buffer, Cell};
use ratatui::style::{Color, Modifier};

/// Sizes and default colours of the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct SvgStyle {
    /// Width of one cell, in SVG user units (pixels).
    pub cell_width: f32,
    /// Height of one cell.
    pub cell_height: f32,
    /// The font of text runs (a CSS font-family list).
    pub font_family: String,
    /// What `Color::Reset` means for text and shapes.
    pub foreground: (u8, u8, u8),
    /// What `Color::Reset` means for backgrounds; also the canvas.
    pub background: (u8, u8, u8),
}

impl Default for SvgStyle {
    /// 8 x 16 cells, a monospace font, light grey on near black (a common terminal look).
    fn default() -> SvgStyle {
        SvgStyle {
            cell_width: 8.0,
            cell_height: 16.0,
            font_family: "DejaVu Sans Mono, Menlo, Consolas, monospace".into(),
            foreground: (0xd0, 0xd0, 0xd0),
            background: (0x12, 0x12, 0x12),
        }
    }
}

/// How a cell's symbol is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Nothing in the foreground (a space).
    Blank,
    /// Letters and other symbols, by the font.
    Text,
    /// A braille pattern: circles.
    Braille,
    /// Block elements: rectangles; shades as rectangles of partial opacity (in percent).
    Block { opacity: u8 },
    /// Light box drawing: strokes.
    Line,
}

fn kind(symbol: &str) -> Kind {
    let mut chars = symbol.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return if symbol.trim().is_empty() {
            Kind::Blank
        } else {
            Kind::Text
        };
    };
    match c {
        ' ' | '\u{2800}' => Kind::Blank,
        '\u{2801}'..='\u{28ff}' => Kind::Braille,
        '░' => Kind::Block { opacity: 25 },
        '▒' => Kind::Block { opacity: 50 },
        '▓' => Kind::Block { opacity: 75 },
        '\u{2580}'..='\u{259f}' => Kind::Block { opacity: 100 },
        c if line_segments(c).is_some() => Kind::Line,
        _ => Kind::Text,
    }
}

/// Which arms of a light box-drawing character reach the cell's edges: left, right, up, down.
fn line_segments(c: char) -> Option<[bool; 4]> {
    Some(match c {
        '─' => [true, true, false, false],
        '│' => [false, false, true, true],
        '┌' | '╭' => [false, true, false, true],
        '┐' | '╮' => [true, false, false, true],
        '└' | '╰' => [false, true, true, false],
        '┘' | '╯' => [true, false, true, false],
        '├' => [false, true, true, true],
        '┤' => [true, false, true, true],
        '┬' => [true, true, false, true],
        '┴' => [true, true, true, false],
        '┼' => [true, true, true, true],
        '╴' => [true, false, false, false],
        '╶' => [false, true, false, false],
        '╵' => [false, false, true, false],
        '╷' => [false, false, false, true],
        _ => return None,
    })
}

/// Rectangles of a block element, as fractions of the cell: (x, y, width, height).
fn block_rects(c: char) -> Vec<(f32, f32, f32, f32)> {
    let eighth = |n: u32| f32::from(u8::try_from(n).unwrap_or(8)) / 8.0;
    let quadrants = |q: [bool; 4]| {
        // top-left, top-right, bottom-left, bottom-right
        let at = [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5)];
        q.iter()
            .zip(at)
            .filter(|(on, _)| **on)
            .map(|(_, (x, y))| (x, y, 0.5, 0.5))
            .collect::<Vec<_>>()
    };
    let code = u32::from(c);
    match c {
        '▀' => vec![(0.0, 0.0, 1.0, 0.5)],
        '▔' => vec![(0.0, 0.0, 1.0, 0.125)],
        '▐' => vec![(0.5, 0.0, 0.5, 1.0)],
        '▕' => vec![(0.875, 0.0, 0.125, 1.0)],
        // Lower eighths ▁..█ (U+2581..U+2588).
        '\u{2581}'..='\u{2588}' => {
            let h = eighth(code - 0x2580);
            vec![(0.0, 1.0 - h, 1.0, h)]
        }
        // Left eighths ▉..▏ (U+2589..U+258F): 7/8 down to 1/8.
        '\u{2589}'..='\u{258f}' => vec![(0.0, 0.0, eighth(0x2590 - code), 1.0)],
        '▖' => quadrants([false, false, true, false]),
        '▗' => quadrants([false, false, false, true]),
        '▘' => quadrants([true, false, false, false]),
        '▝' => quadrants([false, true, false, false]),
        '▙' => quadrants([true, false, true, true]),
        '▚' => quadrants([true, false, false, true]),
        '▛' => quadrants([true, true, true, false]),
        '▜' => quadrants([true, true, false, true]),
        '▞' => quadrants([false, true, true, false]),
        '▟' => quadrants([false, true, true, true]),
        // Shades and anything else in the block: the whole cell.
        _ => vec![(0.0, 0.0, 1.0, 1.0)],
    }
}

/// A cell's colours and text attributes after `REVERSED` is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Look {
    fg: (u8, u8, u8),
    bg: (u8, u8, u8),
    bold: bool,
    italic: bool,
    underlined: bool,
    dim: bool,
}

fn look(cell: &Cell, style: &SvgStyle) -> Look {
    let mut fg = rgb(cell.fg, style.foreground);
    let mut bg = rgb(cell.bg, style.background);
    if cell.modifier.contains(Modifier::REVERSED) {
        std::mem::swap(&mut fg, &mut bg);
    }
    Look {
        fg,
        bg,
        bold: cell.modifier.contains(Modifier::BOLD),
        italic: cell.modifier.contains(Modifier::ITALIC),
        underlined: cell.modifier.contains(Modifier::UNDERLINED),
        dim: cell.modifier.contains(Modifier::DIM),
    }
}

/// The RGB of a terminal colour (xterm's values for the 16 named ones and the 256 palette).
pub fn rgb(color: Color, reset: (u8, u8, u8)) -> (u8, u8, u8) {
    const NAMED: [(u8, u8, u8); 16] = [
        (0, 0, 0),
        (205, 0, 0),
        (0, 205, 0),
        (205, 205, 0),
        (0, 0, 238),
        (205, 0, 205),
        (0, 205, 205),
        (229, 229, 229),
        (127, 127, 127),
        (255, 0, 0),
        (0, 255, 0),
        (255, 255, 0),
        (92, 92, 255),
        (255, 0, 255),
        (0, 255, 255),
        (255, 255, 255),
    ];
    let indexed = |i: u8| -> (u8, u8, u8) {
        match i {
            0..=15 => NAMED[usize::from(i)],
            16..=231 => {
                const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
                let i = i - 16;
                (
                    LEVELS[usize::from(i / 36)],
                    LEVELS[usize::from(i / 6 % 6)],
                    LEVELS[usize::from(i % 6)],
                )
            }
            _ => {
                let g = 8 + 10 * (i - 232);
                (g, g, g)
            }
        }
    };
    match color {
        Color::Reset => reset,
        Color::Black => indexed(0),
        Color::Red => indexed(1),
        Color::Green => indexed(2),
        Color::Yellow => indexed(3),
        Color::Blue => indexed(4),
        Color::Magenta => indexed(5),
        Color::Cyan => indexed(6),
        Color::Gray => indexed(7),
        Color::DarkGray => indexed(8),
        Color::LightRed => indexed(9),
        Color::LightGreen => indexed(10),
        Color::LightYellow => indexed(11),
        Color::LightBlue => indexed(12),
        Color::LightMagenta => indexed(13),
        Color::LightCyan => indexed(14),
        Color::White => indexed(15),
        Color::Indexed(i) => indexed(i),
        Color::Rgb(r, g, b) => (r, g, b),
    }
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Text for an XML attribute or element: the five special characters escaped, and characters
/// XML 1.0 forbids (controls) replaced.
fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if c < ' ' || ('\u{7f}'..='\u{9f}').contains(&c) => out.push('?'),
            '\u{fffe}' | '\u{ffff}' => out.push('?'),
            c => out.push(c),
        }
    }
}

/// A number for an attribute: at most two decimals, no trailing zeros.
fn num(v: f32) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The SVG document of a frame: `buf` drawn cell by cell at `style`'s sizes and colours.
pub fn buffer_to_svg(buf: &Buffer, style: &SvgStyle) -> String {
    let area = buf.area;
    let (cw, ch) = (style.cell_width, style.cell_height);
    let width = f32::from(area.width) * cw;
    let height = f32::from(area.height) * ch;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{ff}" font-size="{fs}">"#,
        w = num(width),
        h = num(height),
        ff = {
            let mut f = String::new();
            escape(&style.font_family, &mut f);
            f
        },
        fs = num(ch * 0.8),
    );
    let _ = writeln!(
        out,
        r#"<rect width="{}" height="{}" fill="{}"/>"#,
        num(width),
        num(height),
        hex(style.background)
    );
    let cells: Vec<Vec<&Cell>> = (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| &buf[(area.x + x, area.y + y)])
                .collect()
        })
        .collect();

    // Backgrounds first, so every foreground shape lies on top.
    for (row, line) in cells.iter().enumerate() {
        for (start, len, bg) in runs(line, |c| {
            let bg = look(c, style).bg;
            (bg != style.background).then_some(bg)
        }) {
            let _ = writeln!(
                out,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>"#,
                num(start as f32 * cw),
                num(row as f32 * ch),
                num(len as f32 * cw),
                num(ch),
                hex(bg)
            );
        }
    }

    for (row, line) in cells.iter().enumerate() {
        let top = row as f32 * ch;
        for (start, len, (k, lk)) in runs(line, |c| {
            let k = kind(c.symbol());
            (k != Kind::Blank).then(|| (k, look(c, style)))
        }) {
            let run = &line[start..start + len];
            let left = start as f32 * cw;
            let fill = hex(lk.fg);
            let dim = if lk.dim { r#" opacity="0.6""# } else { "" };
            match k {
                Kind::Blank => {}
                Kind::Text => {
                    let mut text = String::new();
                    for c in run {
                        escape(c.symbol(), &mut text);
                    }
                    let _ = writeln!(
                        out,
                        r#"<text x="{}" y="{}" textLength="{}" lengthAdjust="spacingAndGlyphs" fill="{fill}"{}{}{}{dim} xml:space="preserve">{text}</text>"#,
                        num(left),
                        num(top + ch * 0.8),
                        num(len as f32 * cw),
                        if lk.bold {
                            r#" font-weight="bold""#
                        } else {
                            ""
                        },
                        if lk.italic {
                            r#" font-style="italic""#
                        } else {
                            ""
                        },
                        if lk.underlined {
                            r#" text-decoration="underline""#
                        } else {
                            ""
                        },
                    );
                }
                Kind::Braille => {
                    // Dots 1-8 of Unicode's numbering: bit i at (column, row) of the 2 x 4 grid.
                    const DOTS: [(u8, u8); 8] = [
                        (0, 0),
                        (0, 1),
                        (0, 2),
                        (1, 0),
                        (1, 1),
                        (1, 2),
                        (0, 3),
                        (1, 3),
                    ];
                    let r = (cw / 4.0).min(ch / 8.0) * 0.8;
                    let mut d = String::new();
                    for (i, c) in run.iter().enumerate() {
                        let bits = c.symbol().chars().next().map_or(0, |g| u32::from(g) & 0xff);
                        for (bit, (col, dot_row)) in DOTS.iter().enumerate() {
                            if bits & (1 << bit) != 0 {
                                let cx = left + (i as f32 + (f32::from(*col) + 0.5) / 2.0) * cw;
                                let cy = top + (f32::from(*dot_row) + 0.5) / 4.0 * ch;
                                let _ = write!(
                                    d,
                                    "M{} {}a{r2} {r2} 0 1 0 {dd} 0a{r2} {r2} 0 1 0 -{dd} 0z",
                                    num(cx - r),
                                    num(cy),
                                    r2 = num(r),
                                    dd = num(2.0 * r),
                                );
                            }
                        }
                    }
                    let _ = writeln!(out, r#"<path d="{d}" fill="{fill}"{dim}/>"#);
                }
                Kind::Block { opacity } => {
                    let mut d = String::new();
                    for (i, c) in run.iter().enumerate() {
                        let g = c.symbol().chars().next().unwrap_or(' ');
                        for (x, y, w, h) in block_rects(g) {
                            let _ = write!(
                                d,
                                "M{} {}h{}v{}h-{}z",
                                num(left + (i as f32 + x) * cw),
                                num(top + y * ch),
                                num(w * cw),
                                num(h * ch),
                                num(w * cw),
                            );
                        }
                    }
                    let alpha = if opacity < 100 {
                        format!(r#" fill-opacity="{}""#, num(f32::from(opacity) / 100.0))
                    } else {
                        String::new()
                    };
                    let _ = writeln!(out, r#"<path d="{d}" fill="{fill}"{alpha}{dim}/>"#);
                }
                Kind::Line => {
                    let mut d = String::new();
                    for (i, c) in run.iter().enumerate() {
                        let g = c.symbol().chars().next().unwrap_or(' ');
                        let [l, r, u, dn] = line_segments(g).unwrap_or_default();
                        let cx = left + (i as f32 + 0.5) * cw;
                        let cy = top + 0.5 * ch;
                        let x0 = left + i as f32 * cw;
                        if l || r {
                            let from = if l { x0 } else { cx };
                            let to = if r { x0 + cw } else { cx };
                            let _ = write!(d, "M{} {}H{}", num(from), num(cy), num(to));
                        }
                        if u || dn {
                            let from = if u { top } else { cy };
                            let to = if dn { top + ch } else { cy };
                            let _ = write!(d, "M{} {}V{}", num(cx), num(from), num(to));
                        }
                    }
                    let _ = writeln!(
                        out,
                        r#"<path d="{d}" fill="none" stroke="{fill}" stroke-width="1"{dim}/>"#
                    );
                }
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

/// Runs of consecutive cells whose `key` is the same `Some`: (start, length, key).
fn runs<K: PartialEq>(line: &[&Cell], key: impl Fn(&Cell) -> Option<K>) -> Vec<(usize, usize, K)> {
    let mut out: Vec<(usize, usize, K)> = Vec::new();
    for (i, cell) in line.iter().enumerate() {
        // The cell hidden behind a wide character continues its run.
        if cell.symbol().is_empty()
            && let Some(last) = out.last_mut()
            && last.0 + last.1 == i
        {
            last.1 += 1;
            continue;
        }
        let Some(k) = key(cell) else { continue };
        match out.last_mut() {
            Some(last) if last.0 + last.1 == i && last.2 == k => last.1 += 1,
            _ => out.push((i, 1, k)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ratatui::layout::Rect;
    use ratatui::style::Style;

    use super::*;

    /// A small XML well-formedness checker: one root element, tags nested and closed, attributes
    /// quoted and unique, `&` only in the five named entities or a character reference, no `<` in
    /// text or attributes. Returns how many elements of each name there are.
    fn check_xml(doc: &str) -> Result<BTreeMap<String, usize>, String> {
        fn check_text(t: &str) -> Result<(), String> {
            if t.contains('<') {
                return Err(format!("'<' in {t:?}"));
            }
            let mut rest = t;
            while let Some(i) = rest.find('&') {
                rest = &rest[i + 1..];
                let end = rest
                    .find(';')
                    .ok_or_else(|| format!("unterminated & in {t:?}"))?;
                let name = &rest[..end];
                let ok = ["amp", "lt", "gt", "quot", "apos"].contains(&name)
                    || (name.starts_with('#')
                        && name.len() > 1
                        && name[1..].chars().all(|c| c.is_ascii_hexdigit() || c == 'x'));
                if !ok {
                    return Err(format!("bad entity &{name}; in {t:?}"));
                }
            }
            if t.chars().any(|c| c < ' ' && !"\t\n\r".contains(c)) {
                return Err(format!("control character in {t:?}"));
            }
            Ok(())
        }
        let is_name = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
        };
        let mut counts = BTreeMap::new();
        let mut stack: Vec<String> = Vec::new();
        let mut roots = 0;
        let mut rest = doc;
        loop {
            let Some(open) = rest.find('<') else {
                check_text(rest)?;
                if !stack.is_empty() || roots != 1 {
                    return Err(format!("unclosed {stack:?} or {roots} roots"));
                }
                if !rest.trim().is_empty() {
                    return Err("text after the root".into());
                }
                return Ok(counts);
            };
            let text = &rest[..open];
            check_text(text)?;
            if stack.is_empty() && !text.trim().is_empty() {
                return Err(format!("text outside the root: {text:?}"));
            }
            rest = &rest[open + 1..];
            // The tag ends at the first '>' outside quotes.
            let mut quoted = false;
            let close = rest
                .char_indices()
                .find(|&(_, c)| {
                    if c == '"' {
                        quoted = !quoted;
                    }
                    c == '>' && !quoted
                })
                .map(|(i, _)| i)
                .ok_or("unterminated tag")?;
            let tag = &rest[..close];
            rest = &rest[close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => continue,
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            }
            let (tag, empty) = match tag.strip_suffix('/') {
                Some(t) => (t, true),
                None => (tag, false),
            };
            let (name, mut attrs) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
            if !is_name(name) {
                return Err(format!("bad element name {name:?}"));
            }
            let mut seen = Vec::new();
            loop {
                attrs = attrs.trim_start();
                if attrs.is_empty() {
                    break;
                }
                let (key, after) = attrs
                    .split_once('=')
                    .ok_or(format!("attribute in {tag:?}"))?;
                let key = key.trim();
                if !is_name(key) || seen.contains(&key) {
                    return Err(format!("bad or repeated attribute {key:?}"));
                }
                seen.push(key);
                let after = after
                    .trim_start()
                    .strip_prefix('"')
                    .ok_or("unquoted value")?;
                let end = after.find('"').ok_or("unterminated value")?;
                check_text(&after[..end])?;
                attrs = &after[end + 1..];
            }
            if stack.is_empty() {
                roots += 1;
            }
            *counts.entry(name.to_string()).or_insert(0) += 1;
            if !empty {
                stack.push(name.to_string());
            }
        }
    }

    #[test]
    fn the_checker_rejects_broken_documents() {
        assert!(check_xml("<svg><rect/></svg>").is_ok());
        for bad in [
            "<svg><rect></svg>",
            "<svg>a & b</svg>",
            "<svg><text x=1/></svg>",
            "<svg><text x=\"1\" x=\"2\"/></svg>",
            "<svg/><svg/>",
            "<svg>\u{1}</svg>",
            "<svg><a></b></svg>",
        ] {
            assert!(check_xml(bad).is_err(), "{bad}");
        }
    }

    fn frame() -> Buffer {
        let mut buf = Buffer::empty(Rect::new(0, 0, 12, 3));
        let red = Style::default().fg(Color::Rgb(255, 0, 0));
        let green = Style::default().fg(Color::Green);
        // Row 0: "ab" and "cd" (red, split by blanks), "ef" (green, touching "cd").
        buf.set_string(0, 0, "ab", red);
        buf.set_string(4, 0, "cd", red);
        buf.set_string(6, 0, "ef", green);
        // Row 1: a braille run, then a half-block run on a blue background.
        buf.set_string(0, 1, "⡈⣿⠁", red);
        buf.set_string(3, 1, "▀▀", red.bg(Color::Blue));
        // Row 2: box drawing, and text that needs escaping.
        buf.set_string(0, 2, "┌──┐", green);
        buf.set_string(5, 2, "<&\"'>", green);
        buf
    }

    #[test]
    fn one_element_per_run_in_well_formed_xml() {
        let svg = buffer_to_svg(&frame(), &SvgStyle::default());
        let counts = check_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        // Text runs: "ab", "cd", "ef", "<&\"'>".
        assert_eq!(counts.get("text"), Some(&4), "{svg}");
        // Shapes: the braille run, the half-block run, the box-drawing run.
        assert_eq!(counts.get("path"), Some(&3), "{svg}");
        // The canvas and the one blue background run.
        assert_eq!(counts.get("rect"), Some(&2), "{svg}");
        assert_eq!(counts.get("svg"), Some(&1));
        assert!(svg.contains(">&lt;&amp;&quot;&apos;&gt;</text>"), "{svg}");
        assert!(svg.contains(r##"fill="#ff0000""##));
        assert!(
            svg.contains(r##"fill="#0000ee""##),
            "blue background: {svg}"
        );
    }

    #[test]
    fn braille_dots_are_circles_and_blocks_are_rectangles() {
        let svg = buffer_to_svg(&frame(), &SvgStyle::default());
        let braille = svg
            .lines()
            .find(|l| l.starts_with("<path") && l.contains("a1"))
            .expect("braille path");
        // ⡈ has 2 dots, ⣿ 8, ⠁ 1: one closed circle (two arcs) per dot.
        assert_eq!(braille.matches('M').count(), 11, "{braille}");
        assert_eq!(braille.matches("a1.6 ").count(), 22, "{braille}");
        let block = svg
            .lines()
            .find(|l| l.starts_with("<path") && l.contains("v8h-8z"))
            .expect("block path");
        // Two upper halves: 8 x 8 rectangles at x = 24 and 32 on row 1 (y = 16).
        assert!(block.contains("M24 16h8v8h-8z"), "{block}");
        assert!(block.contains("M32 16h8v8h-8z"), "{block}");
        // No font glyph for braille or blocks.
        assert!(!svg.contains('⣿') && !svg.contains('▀'));
    }

    #[test]
    fn reversed_cells_swap_colours_and_blank_cells_draw_nothing() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 4, 1));
        let svg = buffer_to_svg(&buf, &SvgStyle::default());
        assert_eq!(
            check_xml(&svg).unwrap().get("rect"),
            Some(&1),
            "canvas only"
        );
        buf.set_string(
            0,
            0,
            "x",
            Style::default()
                .fg(Color::Rgb(1, 2, 3))
                .bg(Color::Rgb(4, 5, 6))
                .add_modifier(Modifier::REVERSED),
        );
        let svg = buffer_to_svg(&buf, &SvgStyle::default());
        assert!(svg.contains(r##"<rect x="0" y="0" width="8" height="16" fill="#010203"/>"##));
        assert!(svg.contains(r##"fill="#040506""##), "{svg}");
    }

    #[test]
    fn every_tab_of_the_demo_is_well_formed_with_no_font_braille_or_blocks() {
        use crate::tui::app::Tab;
        use crate::tui::fixture::demo_app;
        use crate::tui::render;
        use crate::tui::theme::{ColorDepth, Theme};

        let app = demo_app();
        let theme = Theme::new(ColorDepth::TrueColor, false);
        for tab in Tab::ALL {
            let area = Rect::new(0, 0, 120, 40);
            let mut buf = Buffer::empty(area);
            render::render(&app, tab, &theme, area, &mut buf);
            let svg = buffer_to_svg(&buf, &SvgStyle::default());
            let counts = check_xml(&svg).unwrap_or_else(|e| panic!("{tab:?}: {e}"));
            assert!(counts.get("text").is_some_and(|&n| n > 10), "{tab:?}");
            assert!(counts.get("path").is_some_and(|&n| n > 0), "{tab:?}");
            let drawn_by_font: Vec<char> = svg
                .chars()
                .filter(|c| matches!(c, '\u{2500}'..='\u{257f}' | '\u{2580}'..='\u{259f}' | '\u{2800}'..='\u{28ff}'))
                .filter(|c| line_segments(*c).is_some() || !('\u{2500}'..='\u{257f}').contains(c))
                .collect();
            assert!(drawn_by_font.is_empty(), "{tab:?}: {drawn_by_font:?}");
        }
    }
}
