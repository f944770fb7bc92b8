//! Small images with a caption, for lists of images (the error browser, the neighbours panel):
//! an image is box-averaged down to [`THUMB_W`] x 2·[`THUMB_H`] pixels (a 28 x 28 digit: 2 x 2
//! pixels each) and drawn in half blocks, two pixels a cell; without colour one shade character a
//! cell, from the mean of its two pixels; in ASCII with colour one pixel a cell as background.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::Widget;

use crate::tui::theme::Theme;

/// Thumbnail width in cells.
pub const THUMB_W: u16 = 14;
/// Thumbnail height in cells (the image; the caption is one more line).
pub const THUMB_H: u16 = 7;

/// The image box-averaged (or, when smaller, repeated) to `w` x `h` pixels, row-major.
pub fn downsample(pixels: &[f32], rows: usize, cols: usize, w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; w * h];
    if rows == 0 || cols == 0 || pixels.len() < rows * cols {
        return out;
    }
    for ty in 0..h {
        let r0 = ty * rows / h;
        let r1 = ((ty + 1) * rows / h).max(r0 + 1).min(rows);
        for tx in 0..w {
            let c0 = tx * cols / w;
            let c1 = ((tx + 1) * cols / w).max(c0 + 1).min(cols);
            let mut sum = 0.0;
            for r in r0..r1 {
                sum += pixels[r * cols + c0..r * cols + c1].iter().sum::<f32>();
            }
            out[ty * w + tx] = sum / ((r1 - r0) * (c1 - c0)) as f32;
        }
    }
    out
}

/// One image and its caption line.
pub struct Thumbnail<'a> {
    /// Pixels in [0, 1], row-major.
    pub pixels: &'a [f32],
    /// Image rows.
    pub rows: usize,
    /// Image columns.
    pub cols: usize,
    /// The line under the image.
    pub caption: &'a str,
    /// The caption's style.
    pub caption_style: Style,
    /// Drawn as the selected one (reversed caption, marked corners).
    pub selected: bool,
    /// Theme.
    pub theme: &'a Theme,
}

impl Widget for &Thumbnail<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let w = usize::from(area.width.min(THUMB_W));
        let h_cells = usize::from(area.height.saturating_sub(1).min(THUMB_H));
        let theme = self.theme;
        let half = theme.glyphs.upper_half.filter(|_| theme.has_color());
        // Half blocks carry two pixels a cell; anything else one a cell (shades: the mean of two).
        let ph = if half.is_some() || !theme.has_color() {
            2 * h_cells
        } else {
            h_cells
        };
        let px = downsample(self.pixels, self.rows, self.cols, w, ph);
        for cy in 0..h_cells {
            for cx in 0..w {
                let (x, y) = (
                    area.x + u16::try_from(cx).unwrap_or(0),
                    area.y + u16::try_from(cy).unwrap_or(0),
                );
                let Some(cell) = buf.cell_mut((x, y)) else {
                    continue;
                };
                if let Some(half) = half {
                    let (u, l) = (px[2 * cy * w + cx], px[(2 * cy + 1) * w + cx]);
                    cell.set_char(half);
                    cell.set_style(Style::default().fg(theme.gray(u)).bg(theme.gray(l)));
                } else if theme.has_color() {
                    cell.set_char(' ');
                    cell.set_style(Style::default().bg(theme.gray(px[cy * w + cx])));
                } else {
                    let v = f32::midpoint(px[2 * cy * w + cx], px[(2 * cy + 1) * w + cx]);
                    // v in [0, 1]: the index stays in 0..=4.
                    let i = (v.clamp(0.0, 1.0) * 4.0).round() as usize;
                    cell.set_char(theme.glyphs.shades[i.min(4)]);
                    cell.set_style(Style::default());
                }
            }
        }
        let cap_y = area.y + u16::try_from(h_cells).unwrap_or(0);
        if cap_y < area.bottom() {
            let style = if self.selected {
                self.caption_style
                    .add_modifier(Modifier::REVERSED | Modifier::BOLD)
            } else {
                self.caption_style
            };
            buf.set_stringn(area.x, cap_y, self.caption, usize::from(area.width), style);
        }
        if self.selected && !theme.has_color() && h_cells > 0 {
            // Without colour the reversed caption alone may be missed: a marker in the corner.
            buf.set_string(area.x, area.y, ">", Style::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::snapshot::buffer_lines;
    use crate::tui::theme::ColorDepth;

    #[test]
    fn two_by_two_means() {
        let px = [0.0, 1.0, 0.5, 0.5, 1.0, 1.0, 0.0, 0.0];
        // 2 x 4 image to 1 x 2: the mean of each 2 x 2 block.
        assert_eq!(downsample(&px, 2, 4, 2, 1), [0.75, 0.25]);
        // Smaller than the target: repeated.
        assert_eq!(downsample(&[1.0, 0.0], 1, 2, 4, 1), [1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn shades_without_colour() {
        let theme = Theme::new(ColorDepth::None, false);
        // Left half ink, right half blank, 4 x 4.
        let px: Vec<f32> = (0..16).map(|i| if i % 4 < 2 { 1.0 } else { 0.0 }).collect();
        let t = Thumbnail {
            pixels: &px,
            rows: 4,
            cols: 4,
            caption: "4>9",
            caption_style: Style::default(),
            selected: false,
            theme: &theme,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 4, 3));
        (&t).render(buf.area, &mut buf);
        assert_eq!(buffer_lines(&buf), ["██  ", "██  ", "4>9 "]);
    }
}
