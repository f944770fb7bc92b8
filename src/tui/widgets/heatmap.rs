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
    /// The diverging scale over a faded image ([`Overlay`]): its legend shows the colours over
    /// the image's background, where 0 is the image itself.
    Overlay {
        /// Largest magnitude.
        max_abs: f32,
    },
}

impl Scale {
    /// A value as a position on the scale: [0, 1] for gray, [-1, 1] for diverging.
    pub fn position(&self, v: f32) -> f32 {
        match *self {
            Scale::Gray { min, max } => ((v - min) / (max - min).max(1e-12)).clamp(0.0, 1.0),
            Scale::Diverging { max_abs } | Scale::Overlay { max_abs } => {
                (v / max_abs.max(1e-12)).clamp(-1.0, 1.0)
            }
        }
    }

    fn color(&self, theme: &Theme, v: f32) -> ratatui::style::Color {
        match self {
            Scale::Gray { .. } => theme.gray(self.position(v)),
            Scale::Diverging { .. } => theme.diverging(self.position(v)),
            Scale::Overlay { .. } => theme.overlay(0.0, self.position(v)),
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
        if self.pixels.len() < self.rows * self.cols {
            return;
        }
        let (scale, theme, px) = (self.scale, self.theme, self.pixels);
        draw_pixels(
            self.rows,
            self.cols,
            theme,
            area,
            buf,
            |i| scale.color(theme, px[i]),
            |upper, lower| {
                // Two pixels in one shade: the one further from the scale's zero.
                let v = match lower {
                    Some(l) if px[l].abs() > px[upper].abs() => px[l],
                    _ => px[upper],
                };
                scale.shade(theme, v)
            },
        );
    }
}

/// The glyph of the image's ink beneath an overlay without colour (a cell whose attribution
/// rounds to no shade): in neither shade set, so the sign stays readable.
fn ink_glyph(theme: &Theme) -> char {
    if theme.glyphs.unicode { '◦' } else { 'o' }
}

/// An attribution map over its image (SHAP's `image_plot`): the image in faded grey beneath,
/// the attribution in the diverging colours above, more opaque the larger its magnitude.
/// Without colour, the attribution's shade characters, and the image's ink where the
/// attribution rounds to nothing.
pub struct Overlay<'a> {
    /// The image, row-major, ink in [0, 1].
    pub image: &'a [f32],
    /// The attribution per pixel, row-major.
    pub values: &'a [f32],
    /// Image rows.
    pub rows: usize,
    /// Image columns.
    pub cols: usize,
    /// Largest magnitude (saturates the colours).
    pub max_abs: f32,
    /// Theme.
    pub theme: &'a Theme,
}

impl Widget for &Overlay<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let n = self.rows * self.cols;
        if self.image.len() < n || self.values.len() < n {
            return;
        }
        let theme = self.theme;
        let scale = Scale::Diverging {
            max_abs: self.max_abs,
        };
        let (image, values) = (self.image, self.values);
        draw_pixels(
            self.rows,
            self.cols,
            theme,
            area,
            buf,
            |i| theme.overlay(image[i], scale.position(values[i])),
            |upper, lower| {
                let (v, ink) = match lower {
                    Some(l) => (
                        if values[l].abs() > values[upper].abs() {
                            values[l]
                        } else {
                            values[upper]
                        },
                        image[l].max(image[upper]),
                    ),
                    None => (values[upper], image[upper]),
                };
                let shade = scale.shade(theme, v);
                if shade == ' ' && ink >= 0.5 {
                    ink_glyph(theme)
                } else {
                    shade
                }
            },
        );
    }
}

/// Draw a rows x cols image into `area` at the size [`Heatmap::fit`] gives: with colour, two
/// pixels per cell as half blocks (`colour` of a pixel index), or one pixel per cell as a
/// background colour without a half block (ASCII); without colour, one `shade` per cell from its
/// upper and lower pixel indices.
fn draw_pixels(
    rows: usize,
    cols: usize,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
    colour: impl Fn(usize) -> ratatui::style::Color,
    shade: impl Fn(usize, Option<usize>) -> char,
) {
    let area = area.intersection(buf.area);
    let (cw, ch) = Heatmap::fit(rows, cols, area);
    if cw == 0 {
        return;
    }
    let (tw, th) = (usize::from(cw), usize::from(ch) * 2);
    let pixel = |py: usize, px: usize| -> Option<usize> {
        let r = py * rows / th.max(1);
        let c = px * cols / tw;
        (r < rows && py < th).then_some(r * cols + c)
    };
    for cy in 0..usize::from(ch) {
        for cx in 0..tw {
            let Some(upper) = pixel(2 * cy, cx) else {
                continue;
            };
            let lower = pixel(2 * cy + 1, cx);
            let (x, y) = (
                area.x + u16::try_from(cx).unwrap_or(0),
                area.y + u16::try_from(cy).unwrap_or(0),
            );
            let Some(cell) = buf.cell_mut((x, y)) else {
                continue;
            };
            if theme.has_color() {
                let fg = colour(upper);
                if let Some(half) = theme.glyphs.upper_half {
                    let mut style = Style::default().fg(fg);
                    if let Some(l) = lower {
                        style = style.bg(colour(l));
                    }
                    cell.set_char(half);
                    cell.set_style(style);
                } else {
                    // No half block in ASCII: the cell shows its upper pixel.
                    cell.set_char(' ');
                    cell.set_style(Style::default().bg(fg));
                }
            } else {
                cell.set_char(shade(upper, lower));
            }
        }
    }
}

/// A one-line legend for a scale: the low end, a ramp, the high end; a diverging scale also
/// marks its 0 in the middle of the ramp. Without colour the ramp is drawn in the same shade
/// characters as the map, so it reads at every colour depth.
pub struct Legend<'a> {
    /// The scale.
    pub scale: Scale,
    /// Theme.
    pub theme: &'a Theme,
}

impl Legend<'_> {
    fn ramp_cell(&self, buf: &mut Buffer, x: u16, y: u16, v: f32) {
        let Some(cell) = buf.cell_mut((x, y)) else {
            return;
        };
        if self.theme.has_color() {
            cell.set_char(' ');
            cell.set_style(Style::default().bg(self.scale.color(self.theme, v)));
        } else {
            cell.set_char(self.scale.shade(self.theme, v));
        }
    }

    fn ramp(&self, buf: &mut Buffer, x0: u16, y: u16, w: usize, lo: f32, hi: f32) {
        let diverging = !matches!(self.scale, Scale::Gray { .. });
        for i in 0..w {
            // Gray: from end to end. Diverging: each half from cell centres, so that it stays
            // off the 0 drawn between them.
            let t = if diverging {
                (i as f32 + 0.5) / w as f32
            } else {
                i as f32 / (w.max(2) - 1) as f32
            };
            let x = x0 + u16::try_from(i).unwrap_or(0);
            self.ramp_cell(buf, x, y, lo + (hi - lo) * t);
        }
    }
}

impl Widget for &Legend<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let (lo, hi) = match self.scale {
            Scale::Gray { min, max } => (min, max),
            Scale::Diverging { max_abs } | Scale::Overlay { max_abs } => (-max_abs, max_abs),
        };
        let diverging = !matches!(self.scale, Scale::Gray { .. });
        let left = format_value(lo);
        let right = format_value(hi);
        let (lw, rw) = (left.chars().count(), right.chars().count());
        // Diverging: "lo ramp 0 ramp hi"; gray: "lo ramp hi".
        let text_w = lw + rw + 2 + if diverging { 3 } else { 0 };
        let ramp_w = usize::from(area.width).saturating_sub(text_w);
        let min_ramp = if diverging { 2 } else { 3 };
        let dim = self.theme.dim();
        if ramp_w < min_ramp {
            let text = if diverging {
                format!("{left} 0 {right}")
            } else {
                format!("{left}..{right}")
            };
            buf.set_stringn(area.x, area.y, text, usize::from(area.width), dim);
            return;
        }
        let at = |n: usize| area.x + u16::try_from(n).unwrap_or(0);
        buf.set_string(area.x, area.y, &left, dim);
        let x0 = at(lw + 1);
        let right_x = if diverging {
            let half = ramp_w / 2;
            self.ramp(buf, x0, area.y, half, lo, 0.0);
            let zero_x = x0 + u16::try_from(half).unwrap_or(0);
            buf.set_string(zero_x, area.y, " 0 ", dim);
            self.ramp(buf, zero_x + 3, area.y, ramp_w - half, 0.0, hi);
            at(lw + 1 + ramp_w + 3 + 1)
        } else {
            self.ramp(buf, x0, area.y, ramp_w, lo, hi);
            at(lw + 1 + ramp_w + 1)
        };
        buf.set_string(right_x, area.y, &right, dim);
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

#[cfg(test)]
mod legend_tests {
    use super::*;
    use crate::tui::snapshot::buffer_lines;
    use crate::tui::theme::ColorDepth;

    /// Issue 14 (7): 0 and both ends at every colour depth; without colour the ramp is drawn in
    /// the map's own shade characters.
    #[test]
    fn legend_marks_zero_and_both_ends_at_every_depth() {
        for depth in [
            ColorDepth::TrueColor,
            ColorDepth::Ansi256,
            ColorDepth::Ansi16,
            ColorDepth::None,
        ] {
            let theme = Theme::new(depth, false);
            for scale in [
                Scale::Diverging { max_abs: 0.5 },
                Scale::Overlay { max_abs: 0.5 },
            ] {
                let mut buf = Buffer::empty(Rect::new(0, 0, 26, 1));
                (&Legend {
                    scale,
                    theme: &theme,
                })
                    .render(buf.area, &mut buf);
                let line = &buffer_lines(&buf)[0];
                assert!(line.starts_with("-0.500 "), "{depth:?}: {line}");
                assert!(line.ends_with(" 0.500"), "{depth:?}: {line}");
                let middle: String = line.chars().skip(12).take(3).collect();
                assert_eq!(middle, " 0 ", "{depth:?}: {line}");
            }
        }
        let theme = Theme::new(ColorDepth::None, true);
        let mut buf = Buffer::empty(Rect::new(0, 0, 26, 1));
        (&Legend {
            scale: Scale::Diverging { max_abs: 0.5 },
            theme: &theme,
        })
            .render(buf.area, &mut buf);
        assert_eq!(buffer_lines(&buf), ["-0.500 =-:.  0  +*#@ 0.500"]);
        // Too narrow for a ramp: the numbers, 0 included, still.
        let mut buf = Buffer::empty(Rect::new(0, 0, 15, 1));
        (&Legend {
            scale: Scale::Diverging { max_abs: 0.5 },
            theme: &theme,
        })
            .render(buf.area, &mut buf);
        assert_eq!(buffer_lines(&buf), ["-0.500 0 0.500 "]);
    }
}
