//! Images as half-block heatmaps: two pixels per cell, the upper one in the foreground colour of
//! '▀' and the lower one in the background colour. Without colour, shade characters.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;

use crate::tui::theme::Theme;

/// How values map to colours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Grayscale from `min` (black) to `max` (white).
    Gray {
        /// Value shown black.
        min: f32,
        /// Value shown white.
        max: f32,
    },
    /// Blue (negative) to orange (positive), centred on 0, saturating at +-`max_abs`.
    Diverging {
        /// Largest magnitude.
        max_abs: f32,
    },
}

impl Scale {
    /// A value as a position on the scale: [0, 1] for gray, [-1, 1] for diverging.
    fn position(&self, v: f32) -> f32 {
        match *self {
            Scale::Gray { min, max } => ((v - min) / (max - min).max(1e-12)).clamp(0.0, 1.0),
            Scale::Diverging { max_abs } => (v / max_abs.max(1e-12)).clamp(-1.0, 1.0),
        }
    }

    fn color(&self, theme: &Theme, v: f32) -> ratatui::style::Color {
        match self {
            Scale::Gray { .. } => theme.gray(self.position(v)),
            Scale::Diverging { .. } => theme.diverging(self.position(v)),
        }
    }

    fn shade(&self, theme: &Theme, v: f32) -> char {
        let p = self.position(v);
        // |p| <= 1: the index stays in 0..=4.
        let i = (p.abs() * 4.0).round() as usize;
        if p < 0.0 {
            theme.glyphs.negative_shades[i.min(4)]
        } else {
            theme.glyphs.shades[i.min(4)]
        }
    }
}

/// A rows x cols image.
pub struct Heatmap<'a> {
    /// Pixels, row-major.
    pub pixels: &'a [f32],
    /// Image rows.
    pub rows: usize,
    /// Image columns.
    pub cols: usize,
    /// Colour scale.
    pub scale: Scale,
    /// Theme.
    pub theme: &'a Theme,
}

impl Heatmap<'_> {
    /// Cells (width, height) the image takes in `area`: the largest integer zoom that fits, or
    /// the smallest integer shrink.
    pub fn fit(rows: usize, cols: usize, area: Rect) -> (u16, u16) {
        let (w, h) = (usize::from(area.width), usize::from(area.height) * 2);
        if rows == 0 || cols == 0 || w == 0 || h == 0 {
            return (0, 0);
        }
        let (pw, ph) = if cols <= w && rows <= h {
            let k = (w / cols).min(h / rows).max(1);
            (cols * k, rows * k)
        } else {
            let d = cols.div_ceil(w).max(rows.div_ceil(h));
            (cols.div_ceil(d), rows.div_ceil(d))
        };
        (
            u16::try_from(pw).unwrap_or(u16::MAX),
            u16::try_from(ph.div_ceil(2)).unwrap_or(u16::MAX),
        )
    }
}

impl Widget for &Heatmap<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let (cw, ch) = Heatmap::fit(self.rows, self.cols, area);
        if cw == 0 || self.pixels.len() < self.rows * self.cols {
            return;
        }
        let (tw, th) = (usize::from(cw), usize::from(ch) * 2);
        let pixel = |py: usize, px: usize| -> Option<f32> {
            let r = py * self.rows / th.max(1);
            let c = px * self.cols / tw;
            (r < self.rows && py < th).then(|| self.pixels[r * self.cols + c])
        };
        for cy in 0..usize::from(ch) {
            for cx in 0..tw {
                let upper = pixel(2 * cy, cx).unwrap_or(0.0);
                let lower = pixel(2 * cy + 1, cx);
                let (x, y) = (
                    area.x + u16::try_from(cx).unwrap_or(0),
                    area.y + u16::try_from(cy).unwrap_or(0),
                );
                let Some(cell) = buf.cell_mut((x, y)) else {
                    continue;
                };
                if self.theme.has_color() {
                    let fg = self.scale.color(self.theme, upper);
                    if let Some(half) = self.theme.glyphs.upper_half {
                        let mut style = Style::default().fg(fg);
                        if let Some(l) = lower {
                            style = style.bg(self.scale.color(self.theme, l));
                        }
                        cell.set_char(half);
                        cell.set_style(style);
                    } else {
                        // No half block in ASCII: the cell shows its upper pixel.
                        cell.set_char(' ');
                        cell.set_style(Style::default().bg(fg));
                    }
                } else {
                    // Two pixels in one shade: the one further from the scale's zero.
                    let v = match lower {
                        Some(l) if l.abs() > upper.abs() => l,
                        _ => upper,
                    };
                    cell.set_char(self.scale.shade(self.theme, v));
                }
            }
        }
    }
}

/// A one-line legend for a scale: low value, a ramp, high value.
pub struct Legend<'a> {
    /// The scale.
    pub scale: Scale,
    /// Theme.
    pub theme: &'a Theme,
}

impl Widget for &Legend<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let (lo, hi) = match self.scale {
            Scale::Gray { min, max } => (min, max),
            Scale::Diverging { max_abs } => (-max_abs, max_abs),
        };
        let left = format_value(lo);
        let right = format_value(hi);
        let text_w = left.chars().count() + right.chars().count() + 2;
        let ramp_w = usize::from(area.width).saturating_sub(text_w);
        if ramp_w < 3 {
            buf.set_stringn(
                area.x,
                area.y,
                format!("{left}..{right}"),
                usize::from(area.width),
                self.theme.dim(),
            );
            return;
        }
        buf.set_string(area.x, area.y, &left, self.theme.dim());
        let x0 = area.x + u16::try_from(left.chars().count() + 1).unwrap_or(0);
        for i in 0..ramp_w {
            let t = i as f32 / (ramp_w - 1) as f32;
            let v = lo + (hi - lo) * t;
            let Some(cell) = buf.cell_mut((x0 + u16::try_from(i).unwrap_or(0), area.y)) else {
                continue;
            };
            if self.theme.has_color() {
                cell.set_char(' ');
                cell.set_style(Style::default().bg(self.scale.color(self.theme, v)));
            } else {
                cell.set_char(self.scale.shade(self.theme, v));
            }
        }
        let xr = x0 + u16::try_from(ramp_w + 1).unwrap_or(0);
        buf.set_string(xr, area.y, &right, self.theme.dim());
    }
}

/// A short number for a legend: 3 significant digits, scientific when tiny or huge.
pub fn format_value(v: f32) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e4).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::ColorDepth;
    use ratatui::style::Color;

    #[test]
    fn fit_zooms_and_shrinks() {
        assert_eq!(Heatmap::fit(28, 28, Rect::new(0, 0, 30, 15)), (28, 14));
        assert_eq!(Heatmap::fit(28, 28, Rect::new(0, 0, 60, 30)), (56, 28));
        assert_eq!(Heatmap::fit(28, 28, Rect::new(0, 0, 20, 10)), (14, 7));
        assert_eq!(Heatmap::fit(28, 28, Rect::new(0, 0, 0, 10)), (0, 0));
    }

    #[test]
    fn half_blocks_carry_two_pixels() {
        let theme = Theme::new(ColorDepth::TrueColor, false);
        let h = Heatmap {
            pixels: &[0.0, 1.0, 1.0, 0.0],
            rows: 2,
            cols: 2,
            scale: Scale::Gray { min: 0.0, max: 1.0 },
            theme: &theme,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 2, 1));
        (&h).render(buf.area, &mut buf);
        assert_eq!(buf[(0, 0)].symbol(), "▀");
        assert_eq!(buf[(0, 0)].fg, Color::Rgb(0, 0, 0));
        assert_eq!(buf[(0, 0)].bg, Color::Rgb(255, 255, 255));
        assert_eq!(buf[(1, 0)].fg, Color::Rgb(255, 255, 255));
    }

    #[test]
    fn shades_without_colour_keep_the_sign() {
        let theme = Theme::new(ColorDepth::None, false);
        let h = Heatmap {
            pixels: &[-1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
            rows: 2,
            cols: 3,
            scale: Scale::Diverging { max_abs: 1.0 },
            theme: &theme,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 1));
        (&h).render(buf.area, &mut buf);
        assert_eq!(buf, Buffer::with_lines(["= █"]));
    }
}
