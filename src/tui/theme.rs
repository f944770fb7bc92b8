//! The one theme: every colour and glyph choice, built once from the terminal's colour depth and
//! character set. Call sites ask for meaning (`theme.class(3)`, `theme.diverging(v)`,
//! `theme.glyphs.border`), never for a colour or a literal box-drawing character.

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::{Marker, border};
use ratatui::widgets::Block;

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    /// 24-bit colour.
    TrueColor,
    /// The xterm 256-colour palette.
    Ansi256,
    /// The 16 named colours.
    Ansi16,
    /// No colour at all (`NO_COLOR`, `--ascii`).
    None,
}

impl ColorDepth {
    /// The depth the environment asks for: `NO_COLOR` first, then `COLORTERM` and `TERM`.
    pub fn detect() -> ColorDepth {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        ColorDepth::from_env(&var("NO_COLOR"), &var("COLORTERM"), &var("TERM"))
    }

    /// The depth for these values of `NO_COLOR`, `COLORTERM` and `TERM`.
    pub fn from_env(no_color: &str, colorterm: &str, term: &str) -> ColorDepth {
        if !no_color.is_empty() || term == "dumb" {
            ColorDepth::None
        } else if colorterm.contains("truecolor") || colorterm.contains("24bit") {
            ColorDepth::TrueColor
        } else if term.contains("256") {
            ColorDepth::Ansi256
        } else {
            ColorDepth::Ansi16
        }
    }
}

/// Class colours, chosen by measurement (see [`crate::tui::cvd`]): the 10 colours whose closest
/// pair is farthest apart (CIE76 in CIELAB) under normal vision, protanopia, deuteranopia and
/// tritanopia at once (Machado et al. 2009, severity 1.0, in linear RGB).
///
/// The search: candidates were the colours of Okabe-Ito, Paul Tol's bright, muted, light and
/// vibrant, Tableau 10, ColorBrewer Set1, Set2, Set3, Dark2 and Paired, plus the sRGB grid in
/// steps of 0x33, kept when L* >= 45 (visible on a dark terminal background); 237 colours. A
/// greedy max-min pick from each start colour, then single swaps while the worst pair improved.
/// No named palette comes close: the best, Tol muted, has a worst pair of 15.6 (and a colour
/// too dark for a black background); Tableau 10 0.9, Paired 4.2, Set3 4.0.
///
/// Worst pair (CIE76), this palette / the previous (Okabe-Ito + two of Tol's):
/// normal 27.2 / 18.6, protanopia 26.2 / 10.9, deuteranopia 26.4 / 4.3 (classes 6 and 9),
/// tritanopia 26.2 / 5.9 (`cargo test --lib palette_figures -- --nocapture` prints them).
pub const CLASS_RGB: [(u8, u8, u8); 10] = [
    (0xCC, 0x33, 0x00), // red
    (0xFF, 0x7F, 0x00), // orange
    (0x9C, 0x75, 0x5F), // brown
    (0xCC, 0xCC, 0x99), // khaki
    (0x00, 0xFF, 0x66), // green
    (0x76, 0xB7, 0xB2), // teal
    (0xCC, 0xFF, 0xFF), // pale cyan
    (0x66, 0x66, 0xCC), // blue
    (0x99, 0x33, 0xFF), // violet
    (0xFF, 0x99, 0xFF), // pink
];

/// Class colours in the xterm 256-colour palette: not the nearest entries of [`CLASS_RGB`]
/// (their worst pair falls to 13.1, under protanopia), but from each class's 12 nearest entries
/// (CIELAB) the ones whose worst pair over the four visions is largest (coordinate ascent):
/// normal 27.7, protanopia 26.8, deuteranopia 23.8, tritanopia 24.5.
pub const CLASS_256: [u8; 10] = [160, 208, 137, 187, 47, 109, 195, 98, 129, 219];

/// Class colours in 16 colours: ten different named colours, none the background's black. Many
/// terminals draw a bright colour as its dark one in bold or barely lighter, so pairs sharing a
/// hue (0/1 red, 2/3 yellow, 8/9 magenta: ten classes in seven hues plus white) can still look
/// alike; in 16 colours the scatter therefore starts in glyph mode (each cell its class digit in
/// the class colour, [`Theme::class_glyphs_by_default`]).
pub const CLASS_16: [Color; 10] = [
    Color::Red,
    Color::LightRed,
    Color::Yellow,
    Color::LightYellow,
    Color::LightGreen,
    Color::Cyan,
    Color::White,
    Color::Blue,
    Color::Magenta,
    Color::LightMagenta,
];

/// Stops of the diverging scale, after Vega's `blueorange` (the notebook's, `domainMid = 0`).
const DIVERGING: [(f32, (u8, u8, u8)); 5] = [
    (-1.0, (0x13, 0x4B, 0x85)),
    (-0.5, (0x5E, 0x9A, 0xCB)),
    (0.0, (0xF2, 0xF2, 0xF2)),
    (0.5, (0xF5, 0x9B, 0x3C)),
    (1.0, (0x8A, 0x3A, 0x06)),
];

/// Shade characters from light to dark ink, for heatmaps without colour.
pub const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];
/// Characters for negative values in a diverging heatmap without colour, small to large.
pub const NEGATIVE_SHADES: [char; 5] = [' ', '.', ':', '-', '='];

/// Every character the app draws besides text: one set for Unicode terminals, one for ASCII.
/// Widgets take their glyphs from here (`theme.glyphs`), so `--ascii` and a non-UTF-8 locale emit
/// only ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glyphs {
    /// Unicode beyond ASCII may be drawn (braille, blocks, box drawing).
    pub unicode: bool,
    /// Borders of blocks (`Block::bordered().border_set(theme.glyphs.border)`).
    pub border: border::Set<'static>,
    /// The heavier border of the focused block.
    pub border_focus: border::Set<'static>,
    /// Between fields of a title or status line (`epoch 3/200 · 512 samples/s`).
    pub separator: &'static str,
    /// Shades from light to dark ink, for heatmaps without colour.
    pub shades: [char; 5],
    /// Shades of negative values in a diverging heatmap without colour, small to large.
    pub negative_shades: [char; 5],
    /// Horizontal bars: a full cell, and 0..8 eighths of a cell.
    pub bar_full: char,
    /// Partial cells of a horizontal bar, by eighths (index 0 is empty).
    pub bar_eighths: [char; 8],
    /// A gauge's filled and empty cells.
    pub gauge_on: char,
    /// A gauge's empty cells.
    pub gauge_off: char,
    /// A zero or empty table cell (the confusion matrix's zeros).
    pub empty_cell: char,
    /// A point or a list bullet.
    pub bullet: char,
    /// The selected point in a scatter.
    pub selected: char,
    /// The upper half block, two pixels per cell (foreground over background); None in ASCII,
    /// where heatmaps draw one pixel per cell.
    pub upper_half: Option<char>,
    /// Text cut short.
    pub ellipsis: &'static str,
}

/// Glyphs for terminals that show Unicode.
pub const UNICODE_GLYPHS: Glyphs = Glyphs {
    unicode: true,
    border: border::PLAIN,
    border_focus: border::THICK,
    separator: "·",
    shades: SHADES,
    negative_shades: NEGATIVE_SHADES,
    bar_full: '█',
    bar_eighths: [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'],
    gauge_on: '█',
    gauge_off: '─',
    empty_cell: '·',
    bullet: '●',
    selected: '◆',
    upper_half: Some('▀'),
    ellipsis: "…",
};

/// The ASCII border: `+--+` and `|`.
pub const ASCII_BORDER: border::Set<'static> = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

/// The ASCII border of the focused block: `#==#` and `#`.
pub const ASCII_FOCUS_BORDER: border::Set<'static> = border::Set {
    top_left: "#",
    top_right: "#",
    bottom_left: "#",
    bottom_right: "#",
    vertical_left: "#",
    vertical_right: "#",
    horizontal_top: "=",
    horizontal_bottom: "=",
};

/// Glyphs for `--ascii` and non-UTF-8 locales: printable ASCII only.
pub const ASCII_GLYPHS: Glyphs = Glyphs {
    unicode: false,
    border: ASCII_BORDER,
    border_focus: ASCII_FOCUS_BORDER,
    separator: "|",
    shades: [' ', '+', '*', '#', '@'],
    negative_shades: NEGATIVE_SHADES,
    bar_full: '#',
    // Half a cell or more rounds up to a full one.
    bar_eighths: [' ', ' ', ' ', ' ', '#', '#', '#', '#'],
    gauge_on: '#',
    gauge_off: '-',
    empty_cell: '.',
    bullet: '*',
    selected: '@',
    upper_half: None,
    ellipsis: "...",
};

/// Whether the locale's character set is UTF-8, from `LC_ALL`, `LC_CTYPE` and `LANG` (the first
/// one set and not empty decides, as POSIX's precedence has it). When none is set the answer is
/// yes: POSIX would say "C", but a shell without locale variables (a container, a bare SSH
/// session) almost always sits in a UTF-8 terminal emulator, and `--ascii` is one flag away;
/// a locale set to something else (`LANG=C`, `en_US.ISO-8859-1`) is taken at its word.
pub fn locale_is_utf8(lc_all: Option<&str>, lc_ctype: Option<&str>, lang: Option<&str>) -> bool {
    let Some(locale) = [lc_all, lc_ctype, lang]
        .into_iter()
        .flatten()
        .find(|v| !v.is_empty())
    else {
        return true;
    };
    let codeset = locale.to_ascii_lowercase();
    codeset.contains("utf-8") || codeset.contains("utf8")
}

/// Colours and glyphs for one terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// The colour depth in use.
    pub depth: ColorDepth,
    /// Scatters draw braille dots, each cell in its class colour: needs Unicode and colour
    /// (without colour a dot cannot tell its class, so scatters draw digit glyphs instead).
    pub braille: bool,
    /// The characters to draw with.
    pub glyphs: &'static Glyphs,
}

impl Theme {
    /// The theme for this depth; `ascii` turns colour and braille off and draws ASCII only.
    pub fn new(depth: ColorDepth, ascii: bool) -> Theme {
        if ascii {
            Theme {
                depth: ColorDepth::None,
                braille: false,
                glyphs: &ASCII_GLYPHS,
            }
        } else {
            Theme {
                depth,
                braille: depth != ColorDepth::None,
                glyphs: &UNICODE_GLYPHS,
            }
        }
    }

    /// The theme this terminal asks for: colour depth from `NO_COLOR`, `COLORTERM` and `TERM`;
    /// `--ascii` (`ascii`) for ASCII without colour; a locale that is not UTF-8 for ASCII glyphs
    /// in whatever colour the terminal has.
    pub fn detect(ascii: bool) -> Theme {
        let var = |k: &str| std::env::var(k).ok();
        let utf8 = locale_is_utf8(
            var("LC_ALL").as_deref(),
            var("LC_CTYPE").as_deref(),
            var("LANG").as_deref(),
        );
        Theme::for_terminal(ColorDepth::detect(), ascii, utf8)
    }

    /// The theme for this colour depth, `--ascii` flag and locale character set.
    pub fn for_terminal(depth: ColorDepth, ascii: bool, utf8: bool) -> Theme {
        if ascii || utf8 {
            Theme::new(depth, ascii)
        } else {
            Theme {
                depth,
                braille: false,
                glyphs: &ASCII_GLYPHS,
            }
        }
    }

    /// The marker of chart series `i` (train 0, test 1, ...): braille lines told apart by colour
    /// when there is colour; without colour each series gets its own marker, so train and test
    /// curves stay distinct (NO_COLOR is about colour only: braille stays).
    pub fn series_marker(&self, i: usize) -> Marker {
        const UNICODE: [Marker; 4] = [
            Marker::Braille,
            Marker::Custom('•'),
            Marker::Custom('+'),
            Marker::Custom('x'),
        ];
        const ASCII: [Marker; 4] = [
            Marker::Custom('*'),
            Marker::Custom('o'),
            Marker::Custom('+'),
            Marker::Custom('x'),
        ];
        match (self.glyphs.unicode, self.has_color()) {
            (true, true) => Marker::Braille,
            (true, false) => UNICODE[i % UNICODE.len()],
            (false, _) => ASCII[i % ASCII.len()],
        }
    }

    /// True when colours are shown.
    pub fn has_color(&self) -> bool {
        self.depth != ColorDepth::None
    }

    /// A bordered block in this theme's border glyphs.
    pub fn block<'a>(&self) -> Block<'a> {
        Block::bordered().border_set(self.glyphs.border)
    }

    /// The block of the focused panel: a heavier border, so focus shows without colour too.
    pub fn focused_block<'a>(&self) -> Block<'a> {
        Block::bordered().border_set(self.glyphs.border_focus)
    }

    /// " a · b · c ": fields joined by the theme's separator.
    pub fn join(&self, fields: &[&str]) -> String {
        fields.join(&format!(" {} ", self.glyphs.separator))
    }

    /// A value in [0, 1] where higher is better (the trust of a map): bad below 0.3, fair below
    /// 0.6, good from there.
    pub fn quality(&self, v: f64) -> Style {
        if !self.has_color() {
            return Style::default();
        }
        let rgb = if v < 0.3 {
            (0xD5, 0x5E, 0x00)
        } else if v < 0.6 {
            (0xF0, 0xE4, 0x42)
        } else {
            (0x00, 0x9E, 0x73)
        };
        Style::default().fg(self.rgb(rgb))
    }

    fn rgb(&self, (r, g, b): (u8, u8, u8)) -> Color {
        match self.depth {
            ColorDepth::TrueColor => Color::Rgb(r, g, b),
            ColorDepth::Ansi256 => Color::Indexed(xterm_index(r, g, b)),
            ColorDepth::Ansi16 => nearest_16(r, g, b),
            ColorDepth::None => Color::Reset,
        }
    }

    /// The colour of class `c`.
    pub fn class(&self, c: usize) -> Color {
        match self.depth {
            ColorDepth::Ansi16 => CLASS_16[c % 10],
            ColorDepth::Ansi256 => Color::Indexed(CLASS_256[c % 10]),
            _ => self.rgb(CLASS_RGB[c % 10]),
        }
    }

    /// Whether the scatter should start drawing class digits in class colours rather than
    /// braille dots: in 16 colours some classes share a hue (see [`CLASS_16`]).
    pub fn class_glyphs_by_default(&self) -> bool {
        self.depth == ColorDepth::Ansi16
    }

    /// The glyph for class `c` when there is no colour: its digit (or a letter past 9).
    pub fn class_glyph(c: usize) -> char {
        char::from_digit(u32::try_from(c % 36).unwrap_or(0), 36).unwrap_or('?')
    }

    /// Grayscale for an intensity in [0, 1] (0 = background black, 1 = white ink).
    pub fn gray(&self, v: f32) -> Color {
        let v = v.clamp(0.0, 1.0);
        match self.depth {
            ColorDepth::TrueColor => {
                let g = to_byte(v);
                Color::Rgb(g, g, g)
            }
            // The 24-step gray ramp 232..=255 (plus black at 16).
            ColorDepth::Ansi256 => {
                if v < 0.02 {
                    Color::Indexed(16)
                } else {
                    Color::Indexed(232 + to_step(v, 23))
                }
            }
            ColorDepth::Ansi16 => match to_step(v, 3) {
                0 => Color::Black,
                1 => Color::DarkGray,
                2 => Color::Gray,
                _ => Color::White,
            },
            ColorDepth::None => Color::Reset,
        }
    }

    /// Diverging blue (negative) to orange (positive), `v` in [-1, 1], light at 0.
    pub fn diverging(&self, v: f32) -> Color {
        let v = v.clamp(-1.0, 1.0);
        if self.depth == ColorDepth::Ansi16 {
            return match v {
                v if v < -0.5 => Color::Blue,
                v if v < -0.1 => Color::LightBlue,
                v if v <= 0.1 => Color::White,
                v if v <= 0.5 => Color::LightYellow,
                _ => Color::Yellow,
            };
        }
        let mut i = 0;
        while i + 2 < DIVERGING.len() && v > DIVERGING[i + 1].0 {
            i += 1;
        }
        let (a, ca) = DIVERGING[i];
        let (b, cb) = DIVERGING[i + 1];
        let t = ((v - a) / (b - a)).clamp(0.0, 1.0);
        let mix =
            |x: u8, y: u8| to_byte((f32::from(x) + (f32::from(y) - f32::from(x)) * t) / 255.0);
        self.rgb((mix(ca.0, cb.0), mix(ca.1, cb.1), mix(ca.2, cb.2)))
    }

    /// Plain text.
    pub fn text(&self) -> Style {
        Style::default()
    }

    /// Secondary text (axes, hints).
    pub fn dim(&self) -> Style {
        if self.has_color() {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    /// Titles and the active tab.
    pub fn accent(&self) -> Style {
        let s = Style::default().add_modifier(Modifier::BOLD);
        if self.has_color() {
            s.fg(self.rgb((0x56, 0xB4, 0xE9)))
        } else {
            s
        }
    }

    /// Keys in the key bar.
    pub fn key(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// Good news (correct, converged).
    pub fn good(&self) -> Style {
        if self.has_color() {
            Style::default().fg(self.rgb((0x00, 0x9E, 0x73)))
        } else {
            Style::default()
        }
    }

    /// Errors and wrong predictions.
    pub fn bad(&self) -> Style {
        if self.has_color() {
            Style::default()
                .fg(self.rgb((0xD5, 0x5E, 0x00)))
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    /// The selected point and the selected row.
    pub fn highlight(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }

    /// Train-split series in charts.
    pub fn series_train(&self) -> Style {
        Style::default().fg(self.class(1))
    }

    /// Test-split series in charts: blue beside the train series' orange (classes 0 and 1,
    /// red and orange, are the palette's closest pair under deuteranopia and tritanopia).
    pub fn series_test(&self) -> Style {
        Style::default().fg(self.class(7))
    }
}

/// Saliency overlays (issue 14, branch `saliency`).
impl Theme {
    /// An attribution over an image, SHAP's `image_plot` convention: the image's ink `ink` in
    /// [0, 1] as a faded grey beneath, the attribution `v` in [-1, 1] above in the diverging
    /// colours, more opaque the larger |v| (0 shows the faded image alone).
    pub fn overlay(&self, ink: f32, v: f32) -> Color {
        let (ink, v) = (ink.clamp(0.0, 1.0), v.clamp(-1.0, 1.0));
        match self.depth {
            ColorDepth::None => Color::Reset,
            // Few colours: a clear attribution wins, else the faded digit.
            ColorDepth::Ansi16 if v.abs() >= 0.15 => self.diverging(v),
            ColorDepth::Ansi16 if ink >= 0.5 => Color::DarkGray,
            ColorDepth::Ansi16 => Color::Black,
            _ => {
                let g = 0.1 + 0.35 * ink;
                let alpha = v.abs().powf(0.7);
                // Tinted rather than whitened: the colour of the scale's outer half.
                let (r, gg, b) = diverging_rgb(v.signum() * (0.5 + 0.5 * v.abs()));
                let mix = |c: u8| to_byte(g + (f32::from(c) / 255.0 - g) * alpha);
                self.rgb((mix(r), mix(gg), mix(b)))
            }
        }
    }
}

/// The diverging scale's colour at `v` in [-1, 1], in 24-bit.
fn diverging_rgb(v: f32) -> (u8, u8, u8) {
    let v = v.clamp(-1.0, 1.0);
    let mut i = 0;
    while i + 2 < DIVERGING.len() && v > DIVERGING[i + 1].0 {
        i += 1;
    }
    let (a, ca) = DIVERGING[i];
    let (b, cb) = DIVERGING[i + 1];
    let t = ((v - a) / (b - a)).clamp(0.0, 1.0);
    let mix = |x: u8, y: u8| to_byte((f32::from(x) + (f32::from(y) - f32::from(x)) * t) / 255.0);
    (mix(ca.0, cb.0), mix(ca.1, cb.1), mix(ca.2, cb.2))
}

/// The ASCII stand-in for a character the ASCII glyph set has no place for: box drawing by its
/// direction, blocks and shades by ink, braille by its number of dots, a few symbols by look;
/// anything else `?`. ASCII is returned as is.
pub fn ascii_fallback(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    match c {
        // Box drawing (U+2500..U+257F): lines by direction, everything else a junction.
        '─' | '━' | '┄' | '┅' | '┈' | '┉' | '╌' | '╍' | '═' | '╴' | '╶' | '╸' | '╺' | '╼' | '╾' => {
            '-'
        }
        '│' | '┃' | '┆' | '┇' | '┊' | '┋' | '╎' | '╏' | '║' | '╵' | '╷' | '╹' | '╻' | '╽' | '╿' => {
            '|'
        }
        '╱' => '/',
        '╲' => '\\',
        '╳' => 'X',
        '\u{2500}'..='\u{257f}' => '+',
        // Block elements (U+2580..U+259F).
        '░' => '.',
        '▒' => ':',
        '▁' | '▂' | '▃' => '_',
        '▔' => '-',
        '▏' | '▎' | '▍' | '▕' => '|',
        '\u{2580}'..='\u{259f}' => '#',
        // Braille (U+2800..U+28FF): the low byte holds one bit per dot.
        '\u{2800}'..='\u{28ff}' => match (u32::from(c) & 0xff).count_ones() {
            0 => ' ',
            1 | 2 => '.',
            3..=5 => ':',
            _ => '#',
        },
        '·' | '∙' | '…' => '.',
        '•' | '●' | '■' | '★' => '*',
        '◦' | '○' | '°' => 'o',
        '◆' | '◇' | '◈' => '@',
        '×' => 'x',
        '÷' => '/',
        '±' => '+',
        '−' | '–' | '—' => '-',
        '‘' | '’' | '′' => '\'',
        '“' | '”' | '″' => '"',
        '←' | '◀' | '≤' => '<',
        '→' | '▶' | '≥' => '>',
        '↑' | '▲' => '^',
        '↓' | '▼' => 'v',
        '≈' | '∼' => '~',
        'µ' | 'μ' => 'u',
        _ => '?',
    }
}

/// Replace every non-ASCII cell of a rendered frame by its [`ascii_fallback`]: the guarantee
/// behind `--ascii` for what widgets draw themselves (ratatui's chart axes and legends, text
/// such as class names). Widgets should still pick their glyphs from [`Theme::glyphs`], which
/// chooses better than a character-by-character fallback.
pub fn asciify(buf: &mut Buffer) {
    for cell in &mut buf.content {
        let symbol = cell.symbol();
        if !symbol.is_ascii() {
            let c = symbol.chars().next().map_or(' ', ascii_fallback);
            cell.set_char(c);
        }
    }
}

/// [`asciify`] within `area` only: for widgets that draw glyphs of their own (ratatui's chart
/// axes).
pub fn asciify_area(buf: &mut Buffer, area: ratatui::layout::Rect) {
    let area = area.intersection(buf.area);
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            if let Some(cell) = buf.cell_mut((x, y))
                && !cell.symbol().is_ascii()
            {
                let c = cell.symbol().chars().next().map_or(' ', ascii_fallback);
                cell.set_char(c);
            }
        }
    }
}

fn to_byte(v: f32) -> u8 {
    // Clamped to [0, 255] first: the cast cannot truncate.

    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn to_step(v: f32, steps: u8) -> u8 {
    // Clamped to [0, steps] first.

    (v.clamp(0.0, 1.0) * f32::from(steps)).round() as u8
}

/// The nearest entry of the xterm 6x6x6 cube or gray ramp.
fn xterm_index(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let cube = |v: u8| {
        let mut best = 0u8;
        for (i, &l) in LEVELS.iter().enumerate() {
            if v.abs_diff(l) < v.abs_diff(LEVELS[usize::from(best)]) {
                best = u8::try_from(i).unwrap_or(0);
            }
        }
        best
    };
    let (ci, cj, ck) = (cube(r), cube(g), cube(b));
    let cube_rgb = (
        LEVELS[usize::from(ci)],
        LEVELS[usize::from(cj)],
        LEVELS[usize::from(ck)],
    );
    let avg = (u16::from(r) + u16::from(g) + u16::from(b)) / 3;
    let gray_step = u8::try_from(((avg.saturating_sub(3)) / 10).min(23)).unwrap_or(23);
    let gray = 8 + 10 * gray_step;
    let dist = |(a, b2, c): (u8, u8, u8)| {
        let d = |x: u8, y: u8| u32::from(x.abs_diff(y)).pow(2);
        d(a, r) + d(b2, g) + d(c, b)
    };
    if dist((gray, gray, gray)) < dist(cube_rgb) {
        232 + gray_step
    } else {
        16 + 36 * ci + 6 * cj + ck
    }
}

/// The nearest of the 16 named colours, by hue and brightness.
fn nearest_16(r: u8, g: u8, b: u8) -> Color {
    const NAMED: [(Color, (u8, u8, u8)); 16] = [
        (Color::Black, (0, 0, 0)),
        (Color::Red, (205, 0, 0)),
        (Color::Green, (0, 205, 0)),
        (Color::Yellow, (205, 205, 0)),
        (Color::Blue, (0, 0, 238)),
        (Color::Magenta, (205, 0, 205)),
        (Color::Cyan, (0, 205, 205)),
        (Color::Gray, (229, 229, 229)),
        (Color::DarkGray, (127, 127, 127)),
        (Color::LightRed, (255, 0, 0)),
        (Color::LightGreen, (0, 255, 0)),
        (Color::LightYellow, (255, 255, 0)),
        (Color::LightBlue, (92, 92, 255)),
        (Color::LightMagenta, (255, 0, 255)),
        (Color::LightCyan, (0, 255, 255)),
        (Color::White, (255, 255, 255)),
    ];
    let d = |x: u8, y: u8| u32::from(x.abs_diff(y)).pow(2);
    NAMED
        .iter()
        .min_by_key(|(_, (a, bb, c))| d(*a, r) + d(*bb, g) + d(*c, b))
        .map_or(Color::Reset, |(c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_from_env() {
        assert_eq!(
            ColorDepth::from_env("1", "truecolor", "xterm-256color"),
            ColorDepth::None
        );
        assert_eq!(
            ColorDepth::from_env("", "truecolor", "xterm"),
            ColorDepth::TrueColor
        );
        assert_eq!(
            ColorDepth::from_env("", "", "xterm-256color"),
            ColorDepth::Ansi256
        );
        assert_eq!(ColorDepth::from_env("", "", "xterm"), ColorDepth::Ansi16);
    }

    #[test]
    fn diverging_is_centred_and_ordered() {
        let t = Theme::new(ColorDepth::TrueColor, false);
        assert_eq!(t.diverging(0.0), Color::Rgb(0xF2, 0xF2, 0xF2));
        assert_eq!(t.diverging(-1.0), Color::Rgb(0x13, 0x4B, 0x85));
        assert_eq!(t.diverging(1.0), Color::Rgb(0x8A, 0x3A, 0x06));
        let Color::Rgb(_, _, b) = t.diverging(-0.3) else {
            panic!()
        };
        let Color::Rgb(r, _, _) = t.diverging(0.3) else {
            panic!()
        };
        assert!(b > r / 2, "negative is blueish");
    }

    /// The palette before the measured one (Okabe-Ito plus two of Tol's).
    const OLD_CLASS_RGB: [(u8, u8, u8); 10] = [
        (0xE6, 0x9F, 0x00),
        (0x56, 0xB4, 0xE9),
        (0x00, 0x9E, 0x73),
        (0xF0, 0xE4, 0x42),
        (0x00, 0x72, 0xB2),
        (0xD5, 0x5E, 0x00),
        (0xCC, 0x79, 0xA7),
        (0xBB, 0xBB, 0xBB),
        (0xAA, 0x33, 0x77),
        (0x44, 0xAA, 0x99),
    ];

    /// The worst pair distance any shipped palette must keep under every vision: well above
    /// the ~2.3 of a just noticeable difference and the ~10 under which small dots blur.
    const MIN_WORST_PAIR: f64 = 20.0;

    /// RGB of an xterm 256-colour index (cube and gray ramp).
    fn xterm_rgb(i: u8) -> (u8, u8, u8) {
        const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
        if i >= 232 {
            let g = 8 + 10 * (i - 232);
            (g, g, g)
        } else {
            let k = i - 16;
            (
                LEVELS[usize::from(k / 36)],
                LEVELS[usize::from(k / 6 % 6)],
                LEVELS[usize::from(k % 6)],
            )
        }
    }

    #[test]
    fn class_palette_stays_apart_under_colour_vision_deficiencies() {
        use crate::tui::cvd::{Vision, worst_pair};
        let indexed = CLASS_256.map(xterm_rgb);
        for v in Vision::ALL {
            let (d, i, j) = worst_pair(&CLASS_RGB, v);
            assert!(
                d > MIN_WORST_PAIR,
                "24-bit {v:?}: classes {i} and {j} {d:.1} apart"
            );
            let (d, i, j) = worst_pair(&indexed, v);
            assert!(
                d > MIN_WORST_PAIR,
                "256 {v:?}: classes {i} and {j} {d:.1} apart"
            );
        }
        // The old palette fails: classes 6 and 9 about 4 apart under deuteranopia.
        let (d, i, j) = worst_pair(&OLD_CLASS_RGB, Vision::Deuteranopia);
        assert_eq!((i, j), (6, 9));
        assert!(d < 5.0, "{d}");
        // Every shipped depth has ten different colours.
        for depth in [
            ColorDepth::TrueColor,
            ColorDepth::Ansi256,
            ColorDepth::Ansi16,
        ] {
            let t = Theme::new(depth, false);
            let colours: Vec<Color> = (0..10).map(|c| t.class(c)).collect();
            for (a, ca) in colours.iter().enumerate() {
                assert_ne!(*ca, Color::Black, "{depth:?} class {a} is the background");
                for (b, cb) in colours.iter().enumerate().skip(a + 1) {
                    assert_ne!(ca, cb, "{depth:?}: classes {a} and {b} share a colour");
                }
            }
        }
        assert!(Theme::new(ColorDepth::Ansi16, false).class_glyphs_by_default());
        assert!(!Theme::new(ColorDepth::TrueColor, false).class_glyphs_by_default());
    }

    /// The figures quoted on [`CLASS_RGB`]: `cargo test --lib palette_figures -- --nocapture`.
    #[test]
    fn palette_figures() {
        use crate::tui::cvd::{Vision, worst_pair};
        let indexed = CLASS_256.map(xterm_rgb);
        let nearest = CLASS_RGB.map(|(r, g, b)| xterm_rgb(xterm_index(r, g, b)));
        let old_indexed = OLD_CLASS_RGB.map(|(r, g, b)| xterm_rgb(xterm_index(r, g, b)));
        for v in Vision::ALL {
            let f = |p: &[(u8, u8, u8)]| {
                let (d, i, j) = worst_pair(p, v);
                format!("{d:.1} ({i}/{j})")
            };
            println!(
                "{v:?}: new {} old {} | 256: new {} nearest {} old {}",
                f(&CLASS_RGB),
                f(&OLD_CLASS_RGB),
                f(&indexed),
                f(&nearest),
                f(&old_indexed)
            );
        }
        assert!(crate::tui::cvd::worst_over_visions(&CLASS_RGB) > MIN_WORST_PAIR);
    }

    #[test]
    fn xterm_cube_and_gray() {
        assert_eq!(xterm_index(0, 0, 0), 16);
        assert_eq!(xterm_index(255, 255, 255), 231);
        assert_eq!(xterm_index(128, 128, 128), 244);
        assert_eq!(xterm_index(255, 0, 0), 196);
    }

    #[test]
    fn ascii_has_no_colour() {
        let t = Theme::new(ColorDepth::TrueColor, true);
        assert!(!t.has_color() && !t.braille);
        assert_eq!(t.class(3), Color::Reset);
    }

    fn glyph_text(g: &Glyphs) -> String {
        let (b, f) = (g.border, g.border_focus);
        let mut text: String = [
            f.top_left,
            f.vertical_left,
            f.horizontal_top,
            b.top_left,
            b.top_right,
            b.bottom_left,
            b.bottom_right,
            b.vertical_left,
            b.vertical_right,
            b.horizontal_top,
            b.horizontal_bottom,
            g.separator,
            g.ellipsis,
        ]
        .concat();
        text.extend(g.shades);
        text.extend(g.negative_shades);
        text.extend(g.bar_eighths);
        text.extend([g.bar_full, g.gauge_on, g.gauge_off, g.empty_cell]);
        text.extend([g.bullet, g.selected]);
        text.extend(g.upper_half);
        text
    }

    #[test]
    fn ascii_glyphs_are_ascii_and_unicode_ones_are_not() {
        let ascii = glyph_text(&ASCII_GLYPHS);
        assert!(ascii.is_ascii(), "{ascii}");
        assert!(!glyph_text(&UNICODE_GLYPHS).is_ascii());
        assert!(!ASCII_GLYPHS.unicode && ASCII_GLYPHS.upper_half.is_none());
        assert_eq!(
            Theme::new(ColorDepth::TrueColor, true).glyphs,
            &ASCII_GLYPHS
        );
        // Positive and negative shades must not share a character, or the sign is lost.
        for c in ASCII_GLYPHS.shades.iter().skip(1) {
            assert!(!ASCII_GLYPHS.negative_shades.contains(c), "{c}");
        }
    }

    #[test]
    fn locale_decides_the_character_set() {
        assert!(locale_is_utf8(None, None, Some("en_US.UTF-8")));
        assert!(locale_is_utf8(None, None, Some("C.utf8")));
        assert!(!locale_is_utf8(None, None, Some("C")));
        assert!(!locale_is_utf8(None, None, Some("POSIX")));
        assert!(!locale_is_utf8(None, None, Some("en_US.ISO-8859-1")));
        // LC_ALL beats LC_CTYPE beats LANG; empty values are skipped.
        assert!(!locale_is_utf8(
            Some("C"),
            Some("en_US.UTF-8"),
            Some("en_US.UTF-8")
        ));
        assert!(locale_is_utf8(Some(""), Some("de_DE.UTF-8"), Some("C")));
        assert!(!locale_is_utf8(None, Some("C"), Some("en_US.UTF-8")));
        // Nothing set: assume UTF-8 (see the doc comment).
        assert!(locale_is_utf8(None, None, None));
    }

    #[test]
    fn a_non_utf8_locale_keeps_colour_but_draws_ascii() {
        let t = Theme::for_terminal(ColorDepth::Ansi256, false, false);
        assert!(t.has_color() && !t.braille);
        assert_eq!(t.glyphs, &ASCII_GLYPHS);
        let u = Theme::for_terminal(ColorDepth::Ansi256, false, true);
        assert_eq!(u, Theme::new(ColorDepth::Ansi256, false));
        assert_eq!(u.glyphs, &UNICODE_GLYPHS);
        // --ascii wins over a UTF-8 locale, and drops colour as its help says.
        let a = Theme::for_terminal(ColorDepth::Ansi256, true, true);
        assert!(!a.has_color() && a.glyphs == &ASCII_GLYPHS);
    }

    #[test]
    fn without_colour_series_keep_distinct_markers_and_braille() {
        let no_color = Theme::new(ColorDepth::None, false);
        assert_eq!(no_color.glyphs, &UNICODE_GLYPHS, "NO_COLOR keeps Unicode");
        assert_eq!(no_color.series_marker(0), Marker::Braille);
        assert_ne!(no_color.series_marker(0), no_color.series_marker(1));
        let ascii = Theme::new(ColorDepth::None, true);
        assert_ne!(ascii.series_marker(0), ascii.series_marker(1));
        for i in 0..4 {
            let Marker::Custom(c) = ascii.series_marker(i) else {
                panic!("ASCII series {i} uses a Unicode marker")
            };
            assert!(c.is_ascii());
        }
        // With colour, colour tells the series apart.
        let colour = Theme::new(ColorDepth::TrueColor, false);
        assert_eq!(colour.series_marker(1), Marker::Braille);
    }

    #[test]
    fn ascii_fallback_covers_what_the_app_draws() {
        assert_eq!(ascii_fallback('─'), '-');
        assert_eq!(ascii_fallback('│'), '|');
        assert_eq!(ascii_fallback('┌'), '+');
        assert_eq!(ascii_fallback('█'), '#');
        assert_eq!(ascii_fallback('░'), '.');
        assert_eq!(ascii_fallback('⠀'), ' ');
        assert_eq!(ascii_fallback('⡈'), '.');
        assert_eq!(ascii_fallback('⣿'), '#');
        assert_eq!(ascii_fallback('é'), '?');
        assert_eq!(ascii_fallback('q'), 'q');
        for c in ('\u{2500}'..='\u{259f}').chain('\u{2800}'..='\u{28ff}') {
            assert!(ascii_fallback(c).is_ascii(), "{c}");
        }
        let mut buf = Buffer::with_lines(["┌─ L2 · 256 ─┐", "│⣿ café ◆ • │"]);
        asciify(&mut buf);
        assert_eq!(buf, Buffer::with_lines(["+- L2 . 256 -+", "|# caf? @ * |"]));
    }
}
