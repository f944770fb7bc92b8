//! A scatter plot in braille dots (2 x 4 per cell), each cell coloured by the most common group
//! among its points; without braille, each cell shows that group's glyph (a digit).

use ndarray::Array2;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::Widget;

use crate::tui::theme::Theme;

/// Dot bits of a braille cell, by (column, row) of the 2 x 4 grid (Unicode's numbering).
const BRAILLE_BITS: [[u8; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];

/// A scatter of n points.
pub struct Scatter<'a> {
    /// n x 2 coordinates (y up).
    pub coords: &'a Array2<f32>,
    /// Group of each point (colour and glyph), length n.
    pub groups: &'a [u8],
    /// Colour of a group.
    pub color: &'a dyn Fn(u8) -> Color,
    /// Glyph of a group, without braille.
    pub glyph: &'a dyn Fn(u8) -> char,
    /// Point drawn as the cursor.
    pub selected: Option<usize>,
    /// Theme.
    pub theme: &'a Theme,
}

impl Scatter<'_> {
    /// Cell (column, row) of every point in `area`, after fitting the bounds with a margin.
    fn project(&self, area: Rect, sub_x: usize, sub_y: usize) -> Vec<(usize, usize)> {
        let n = self.coords.nrows();
        if n == 0 || area.is_empty() {
            return Vec::new();
        }
        let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for p in self.coords.rows() {
            if p[0].is_finite() && p[1].is_finite() {
                x0 = x0.min(p[0]);
                x1 = x1.max(p[0]);
                y0 = y0.min(p[1]);
                y1 = y1.max(p[1]);
            }
        }
        let span_x = (x1 - x0).max(1e-6);
        let span_y = (y1 - y0).max(1e-6);
        let w = usize::from(area.width) * sub_x;
        let h = usize::from(area.height) * sub_y;
        #[expect(clippy::cast_precision_loss)]
        let (wf, hf) = ((w - 1) as f32, (h - 1) as f32);
        self.coords
            .rows()
            .into_iter()
            .map(|p| {
                let fx = ((p[0] - x0) / span_x).clamp(0.0, 1.0);
                let fy = ((y1 - p[1]) / span_y).clamp(0.0, 1.0);
                // In [0, w-1] and [0, h-1] by the clamp above.
                #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let px = (fx * wf).round() as usize;
                #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let py = (fy * hf).round() as usize;
                (px, py)
            })
            .collect()
    }
}

impl Widget for &Scatter<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let (sub_x, sub_y) = if self.theme.braille { (2, 4) } else { (1, 1) };
        let points = self.project(area, sub_x, sub_y);
        let (w, h) = (usize::from(area.width), usize::from(area.height));
        let n_groups = self
            .groups
            .iter()
            .copied()
            .max()
            .map_or(1, |g| usize::from(g) + 1);
        let mut bits = vec![0u8; w * h];
        let mut counts = vec![0u16; w * h * n_groups];
        for (i, &(px, py)) in points.iter().enumerate() {
            let (cx, cy) = (px / sub_x, py / sub_y);
            let cell = cy * w + cx;
            if self.theme.braille {
                bits[cell] |= BRAILLE_BITS[px % 2][py % 4];
            } else {
                bits[cell] = 1;
            }
            if let Some(&g) = self.groups.get(i) {
                let c = &mut counts[cell * n_groups + usize::from(g)];
                *c = c.saturating_add(1);
            }
        }
        for cy in 0..h {
            for cx in 0..w {
                let cell = cy * w + cx;
                if bits[cell] == 0 {
                    continue;
                }
                let group = (0..n_groups)
                    .max_by_key(|&g| (counts[cell * n_groups + g], std::cmp::Reverse(g)))
                    .and_then(|g| u8::try_from(g).ok())
                    .unwrap_or(0);
                let ch = if self.theme.braille {
                    char::from_u32(0x2800 + u32::from(bits[cell])).unwrap_or('.')
                } else {
                    (self.glyph)(group)
                };
                // Cells index the area: within u16 by construction.
                let (x, y) = (
                    area.x + u16::try_from(cx).unwrap_or(0),
                    area.y + u16::try_from(cy).unwrap_or(0),
                );
                if let Some(c) = buf.cell_mut((x, y)) {
                    c.set_char(ch);
                    c.set_style(Style::default().fg((self.color)(group)));
                }
            }
        }
        if let Some(&(px, py)) = self.selected.and_then(|s| points.get(s)) {
            let (x, y) = (
                area.x + u16::try_from(px / sub_x).unwrap_or(0),
                area.y + u16::try_from(py / sub_y).unwrap_or(0),
            );
            let glyph = if self.theme.braille { '◆' } else { '@' };
            if let Some(c) = buf.cell_mut((x, y)) {
                c.set_char(glyph);
                c.set_style(self.theme.highlight());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::snapshot::buffer_lines;
    use crate::tui::theme::ColorDepth;
    use ndarray::array;

    #[test]
    fn corners_land_in_corner_cells() {
        let coords = array![[0.0f32, 0.0], [1.0, 1.0], [1.0, 0.0]];
        let groups = [1u8, 2, 3];
        let theme = Theme::new(ColorDepth::None, true);
        let glyph = |g: u8| Theme::class_glyph(usize::from(g));
        let color = |_: u8| Color::Reset;
        let s = Scatter {
            coords: &coords,
            groups: &groups,
            color: &color,
            glyph: &glyph,
            selected: Some(2),
            theme: &theme,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 4, 2));
        (&s).render(buf.area, &mut buf);
        assert_eq!(buffer_lines(&buf), ["   2", "1  @"]);
    }

    #[test]
    fn braille_dots() {
        let coords = array![[0.0f32, 0.0], [1.0, 1.0]];
        let groups = [0u8, 0];
        let theme = Theme::new(ColorDepth::TrueColor, false);
        let glyph = |_: u8| '?';
        let color = |_: u8| Color::Reset;
        let s = Scatter {
            coords: &coords,
            groups: &groups,
            color: &color,
            glyph: &glyph,
            selected: None,
            theme: &theme,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 1, 1));
        (&s).render(buf.area, &mut buf);
        // (1, 1) is the top-right dot, (0, 0) the bottom-left one.
        assert_eq!(buf[(0, 0)].symbol(), "⡈");
    }
}
