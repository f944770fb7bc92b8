//! A scatter plot in braille dots (2 x 4 per cell), each cell coloured by the most common group
//! among its points, except that an emphasised group (e.g. the wrong predictions) wins every cell
//! it is in, drawn in a second pass; without braille, each cell shows that group's glyph (a
//! digit). The glyphs can also be asked for with colour (`glyphs`): each cell its group's digit
//! in the group's colour, the most legible view when colours are close. Both axes share one scale, centred: t-SNE means local distances, so a circle must stay
//! a circle (braille dots are about square; a plain cell is about twice as tall as wide).

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
    /// Point drawn as the cursor, in its own group's colour.
    pub selected: Option<usize>,
    /// A group that wins every cell it has a point in (a minority the user looks for).
    pub emphasis: Option<u8>,
    /// Draw each cell's group glyph (in its colour) even where braille dots could be drawn.
    pub glyphs: bool,
    /// Theme.
    pub theme: &'a Theme,
}

/// The data rectangle a scatter maps onto its area: `[x0, x1, y0, y1]`.
pub type Bounds = [f32; 4];

/// The bounds of the finite points of `coords`; `None` when there is none.
pub fn bounds_of(coords: &Array2<f32>) -> Option<Bounds> {
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for p in coords.rows() {
        if p[0].is_finite() && p[1].is_finite() {
            x0 = x0.min(p[0]);
            x1 = x1.max(p[0]);
            y0 = y0.min(p[1]);
            y1 = y1.max(p[1]);
        }
    }
    (x0 <= x1).then_some([x0, x1, y0, y1])
}

/// Data to dots: one scale for both axes, the bounds centred.
struct Projection {
    mid: (f32, f32),
    scale: f32,
    dot: (f32, f32),
    last: (f32, f32),
}

impl Projection {
    fn new(b: Bounds, area: Rect, sub_x: usize, sub_y: usize) -> Projection {
        let span_x = (b[1] - b[0]).max(1e-6);
        let span_y = (b[3] - b[2]).max(1e-6);
        let w = usize::from(area.width) * sub_x;
        let h = usize::from(area.height) * sub_y;
        let (wf, hf) = ((w - 1) as f32, (h - 1) as f32);
        // A dot's size in cell heights: a cell is about half as wide as it is tall.
        let (dot_w, dot_h) = (0.5 / sub_x as f32, 1.0 / sub_y as f32);
        // The largest scale (cell heights per data unit) at which both spans fit.
        let scale = (wf * dot_w / span_x).min(hf * dot_h / span_y);
        Projection {
            mid: ((b[0] + b[1]) / 2.0, (b[2] + b[3]) / 2.0),
            scale,
            dot: (dot_w, dot_h),
            last: (wf, hf),
        }
    }

    /// The dot (column, row) of a point, clamped to the area.
    fn dot(&self, x: f32, y: f32) -> (usize, usize) {
        let fx = ((x - self.mid.0) * self.scale / self.dot.0 + self.last.0 / 2.0)
            .clamp(0.0, self.last.0);
        let fy = ((self.mid.1 - y) * self.scale / self.dot.1 + self.last.1 / 2.0)
            .clamp(0.0, self.last.1);
        // In [0, w-1] and [0, h-1] by the clamp above.
        (fx.round() as usize, fy.round() as usize)
    }
}

impl Scatter<'_> {
    /// Dot (column, row) of every point in `area`: one scale for both axes, `bounds` (the
    /// points' own when `None`) centred, as `render_within` draws them.
    pub fn project(
        &self,
        area: Rect,
        sub_x: usize,
        sub_y: usize,
        bounds: Option<Bounds>,
    ) -> Vec<(usize, usize)> {
        self.projection(area, sub_x, sub_y, bounds)
            .map(|p| {
                self.coords
                    .rows()
                    .into_iter()
                    .map(|r| p.dot(r[0], r[1]))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The projection onto `area` of `bounds`, or of the points' own bounds.
    fn projection(
        &self,
        area: Rect,
        sub_x: usize,
        sub_y: usize,
        bounds: Option<Bounds>,
    ) -> Option<Projection> {
        if self.coords.nrows() == 0 || area.is_empty() {
            return None;
        }
        let b = bounds.or_else(|| bounds_of(self.coords))?;
        Some(Projection::new(b, area, sub_x, sub_y))
    }
}

impl Widget for &Scatter<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        self.render_within(area, buf, None, &[]);
    }
}

impl Scatter<'_> {
    /// Render with the data rectangle `bounds` (the points' own bounds when `None`: the film
    /// keeps one per layer, so that points do not jump when the scale would change), and a
    /// `trail` of earlier positions of the selected point, oldest last, drawn under it.
    pub fn render_within(
        &self,
        area: Rect,
        buf: &mut Buffer,
        bounds: Option<Bounds>,
        trail: &[[f32; 2]],
    ) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let dots = self.theme.braille && !self.glyphs;
        let (sub_x, sub_y) = if dots { (2, 4) } else { (1, 1) };
        let Some(projection) = self.projection(area, sub_x, sub_y, bounds) else {
            return;
        };
        let points: Vec<(usize, usize)> = self
            .coords
            .rows()
            .into_iter()
            .map(|r| projection.dot(r[0], r[1]))
            .collect();
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
            if dots {
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
                // Second pass: the emphasised group wins any cell it is in.
                let emphasised = self
                    .emphasis
                    .filter(|&g| counts.get(cell * n_groups + usize::from(g)) > Some(&0));
                let group = emphasised.unwrap_or_else(|| {
                    (0..n_groups)
                        .max_by_key(|&g| (counts[cell * n_groups + g], std::cmp::Reverse(g)))
                        .and_then(|g| u8::try_from(g).ok())
                        .unwrap_or(0)
                });
                let ch = if dots {
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
        // The trail: the cells the selected point was in, in its colour, under the marker.
        if let Some(&g) = self.selected.and_then(|s| self.groups.get(s)) {
            let glyph = if self.theme.glyphs.unicode {
                '∘'
            } else {
                'o'
            };
            for p in trail {
                let (px, py) = projection.dot(p[0], p[1]);
                let (x, y) = (
                    area.x + u16::try_from(px / sub_x).unwrap_or(0),
                    area.y + u16::try_from(py / sub_y).unwrap_or(0),
                );
                if let Some(c) = buf.cell_mut((x, y)) {
                    c.set_char(glyph);
                    c.set_style(Style::default().fg((self.color)(g)));
                }
            }
        }
        if let Some(&(px, py)) = self.selected.and_then(|s| points.get(s)) {
            let (x, y) = (
                area.x + u16::try_from(px / sub_x).unwrap_or(0),
                area.y + u16::try_from(py / sub_y).unwrap_or(0),
            );
            let glyph = self.theme.glyphs.selected;
            // The point's own colour, not its cell's majority.
            let own = self
                .selected
                .and_then(|s| self.groups.get(s))
                .map_or(Color::Reset, |&g| (self.color)(g));
            if let Some(c) = buf.cell_mut((x, y)) {
                c.set_char(glyph);
                c.set_style(self.theme.highlight().fg(own));
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
            emphasis: None,
            glyphs: false,
            theme: &theme,
        };
        // One scale for both axes: the unit square is 1 row tall, so 2 columns wide (a cell is
        // half as wide as tall), centred in the 4 columns.
        let mut buf = Buffer::empty(Rect::new(0, 0, 4, 2));
        (&s).render(buf.area, &mut buf);
        assert_eq!(buffer_lines(&buf), ["   2", " 1 @"]);
    }

    /// Issue 11 (3): a square stays square (braille dots are about square) and is centred.
    #[test]
    fn one_scale_for_both_axes_centred() {
        let coords = array![[0.0f32, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
        let groups = [0u8; 4];
        let theme = Theme::new(ColorDepth::TrueColor, false);
        let color = |_: u8| Color::Reset;
        let glyph = |_: u8| '?';
        let s = Scatter {
            coords: &coords,
            groups: &groups,
            color: &color,
            glyph: &glyph,
            selected: None,
            emphasis: None,
            glyphs: false,
            theme: &theme,
        };
        // 20 x 5 cells: 40 x 20 dots.
        let dots = s.project(Rect::new(0, 0, 20, 5), 2, 4, None);
        let xs: Vec<usize> = dots.iter().map(|d| d.0).collect();
        let ys: Vec<usize> = dots.iter().map(|d| d.1).collect();
        let (x0, x1) = (*xs.iter().min().unwrap(), *xs.iter().max().unwrap());
        let (y0, y1) = (*ys.iter().min().unwrap(), *ys.iter().max().unwrap());
        assert_eq!((y0, y1), (0, 19), "the height is the limit");
        assert_eq!(x1 - x0, y1 - y0, "as wide as tall, in dots");
        assert_eq!(x0, 39 - x1, "centred: {x0}..{x1} of 0..39");
    }

    fn two_groups_in_one_cell(
        groups: &[u8],
        selected: Option<usize>,
        emphasis: Option<u8>,
    ) -> Buffer {
        // Four points close together: one braille cell.
        let coords = array![
            [0.0f32, 0.0],
            [0.01, 0.0],
            [0.0, 0.01],
            [0.01, 0.01],
            [9.0, 9.0]
        ];
        let theme = Theme::new(ColorDepth::TrueColor, false);
        let color = |g: u8| Color::Rgb(100 + g, 0, 0);
        let glyph = |_: u8| '?';
        let s = Scatter {
            coords: &coords,
            groups,
            color: &color,
            glyph: &glyph,
            selected,
            emphasis,
            glyphs: false,
            theme: &theme,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 8, 4));
        (&s).render(buf.area, &mut buf);
        buf
    }

    /// The cell holding points 0-3 (bottom left of the centred square).
    fn cluster_cell(buf: &Buffer) -> &ratatui::buffer::Cell {
        (0..4u16)
            .flat_map(|y| (0..8u16).map(move |x| (x, y)))
            .map(|p| &buf[p])
            .filter(|c| c.symbol() != " ")
            .find(|c| c.fg != Color::Rgb(105, 0, 0) && c.fg != Color::Reset)
            .expect("the cluster's cell")
    }

    /// Issue 11 (1): the selection marker is drawn in the selected point's own colour, not in
    /// its cell's majority colour.
    #[test]
    fn the_marker_takes_the_selected_points_colour() {
        let buf = two_groups_in_one_cell(&[1, 1, 1, 2, 5], Some(3), None);
        let marker = (0..4u16)
            .flat_map(|y| (0..8u16).map(move |x| (x, y)))
            .map(|p| &buf[p])
            .find(|c| c.symbol() == "◆")
            .expect("a marker");
        assert_eq!(marker.fg, Color::Rgb(102, 0, 0));
    }

    /// Issue 11 (2): an emphasised minority wins its cell.
    #[test]
    fn an_emphasised_minority_wins_its_cell() {
        let plain = two_groups_in_one_cell(&[1, 1, 1, 0, 5], None, None);
        assert_eq!(
            cluster_cell(&plain).fg,
            Color::Rgb(101, 0, 0),
            "the majority"
        );
        let emphasised = two_groups_in_one_cell(&[1, 1, 1, 0, 5], None, Some(0));
        assert_eq!(cluster_cell(&emphasised).fg, Color::Rgb(100, 0, 0));
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
            emphasis: None,
            glyphs: false,
            theme: &theme,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 1, 1));
        (&s).render(buf.area, &mut buf);
        // The unit square, 2 dots wide, is 2 dots tall (one scale) and centred in the 4 rows:
        // (1, 1) is dot (1, 1), (0, 0) is dot (0, 2).
        assert_eq!(buf[(0, 0)].symbol(), "⠔");
    }

    /// Issue 11 (15): with colour and braille available, `glyphs` draws each cell's majority
    /// class as its digit in the class colour.
    #[test]
    fn glyphs_in_class_colours() {
        let coords = array![[0.0f32, 0.0], [0.01, 0.0], [0.02, 0.0], [1.0, 1.0]];
        let groups = [6u8, 9, 9, 3];
        let theme = Theme::new(ColorDepth::TrueColor, false);
        let glyph = |g: u8| Theme::class_glyph(usize::from(g));
        let color = |g: u8| theme.class(usize::from(g));
        let scatter = |glyphs| {
            let s = Scatter {
                coords: &coords,
                groups: &groups,
                color: &color,
                glyph: &glyph,
                selected: None,
                emphasis: None,
                glyphs,
                theme: &theme,
            };
            let mut buf = Buffer::empty(Rect::new(0, 0, 4, 2));
            (&s).render(buf.area, &mut buf);
            buf
        };
        let mut expected = Buffer::with_lines(["   3", " 9  "]);
        expected.set_style(Rect::new(3, 0, 1, 1), Style::default().fg(theme.class(3)));
        expected.set_style(Rect::new(1, 1, 1, 1), Style::default().fg(theme.class(9)));
        assert_eq!(scatter(true), expected);
        // Without the flag the same theme draws braille dots.
        let dots = scatter(false);
        assert!(
            dots.content.iter().all(|c| c.symbol() == " "
                || ('\u{2800}'..='\u{28ff}').contains(&c.symbol().chars().next().unwrap())),
            "{dots:?}"
        );
    }
}
