//! The confusion matrix as a grid of counts: rows are true classes, columns predictions; the
//! diagonal in the "good" colour, mistakes in the "bad" one, with the per-class accuracy the
//! engine computed (`nn::per_class_accuracy`) at the end.

use ndarray::Array2;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

use crate::tui::theme::Theme;

/// A confusion matrix (true x predicted).
pub struct ConfusionGrid<'a> {
    /// Counts.
    pub matrix: &'a Array2<usize>,
    /// Accuracy of each true class (NaN for a class with no rows).
    pub accuracy: &'a [f64],
    /// Theme.
    pub theme: &'a Theme,
}

impl ConfusionGrid<'_> {
    /// Cell width for this area: 3 to 5 characters.
    fn cell_width(&self, width: u16) -> usize {
        let n = self.matrix.ncols().max(1);
        ((usize::from(width).saturating_sub(9)) / n).clamp(3, 5)
    }
}

/// A count in `width - 1` characters where it can be: "12k" for 12,345 when the digits do
/// not fit; a count under 1,000 is never shortened (it would read "0k").
pub(crate) fn compact(count: usize, width: usize) -> String {
    let s = count.to_string();
    if s.len() < width || count < 1000 {
        s
    } else {
        format!("{}k", count / 1000)
    }
}

impl Widget for &ConfusionGrid<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let n = self.matrix.nrows();
        let cw = self.cell_width(area.width);
        let mut header = String::from("t\\p");
        for c in 0..n {
            header.push_str(&format!("{:>cw$}", Theme::class_glyph(c)));
        }
        header.push_str("   acc");
        buf.set_stringn(
            area.x,
            area.y,
            &header,
            usize::from(area.width),
            self.theme.dim(),
        );
        for r in 0..n {
            let Ok(dy) = u16::try_from(r + 1) else { break };
            if dy >= area.height {
                break;
            }
            let y = area.y + dy;
            buf.set_stringn(
                area.x,
                y,
                format!("{:>3}", Theme::class_glyph(r)),
                usize::from(area.width),
                self.theme.dim(),
            );
            let mut x = area.x + 3;
            for c in 0..n {
                let count = self.matrix[[r, c]];
                let (text, style) = if count == 0 {
                    (
                        format!("{:>cw$}", self.theme.glyphs.empty_cell),
                        self.theme.dim(),
                    )
                } else if r == c {
                    (format!("{:>cw$}", compact(count, cw)), self.theme.good())
                } else {
                    (format!("{:>cw$}", compact(count, cw)), self.theme.bad())
                };
                if x >= area.right() {
                    break;
                }
                let room = usize::from(area.right() - x);
                buf.set_stringn(x, y, &text, room, style);
                x += u16::try_from(cw).unwrap_or(3);
            }
            if x < area.right()
                && let Some(acc) = self.accuracy.get(r).filter(|a| a.is_finite())
            {
                let room = usize::from(area.right() - x);
                buf.set_stringn(
                    x,
                    y,
                    format!(" {:>5.1}", acc * 100.0),
                    room,
                    self.theme.text(),
                );
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
    fn counts_and_accuracy() {
        let theme = Theme::new(ColorDepth::None, true);
        let m = array![[8usize, 2], [0, 10]];
        let accuracy = crate::nn::per_class_accuracy(&m);
        let g = ConfusionGrid {
            matrix: &m,
            accuracy: &accuracy,
            theme: &theme,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 18, 3));
        (&g).render(buf.area, &mut buf);
        assert_eq!(
            buffer_lines(&buf),
            [
                "t\\p   0   1   acc ",
                "  0   8   2  80.0 ",
                "  1   .  10 100.0 "
            ]
        );
    }

    #[test]
    fn compact_shortens_thousands_and_never_writes_0k() {
        assert_eq!(compact(42, 4), "42");
        assert_eq!(compact(999, 3), "999");
        assert_eq!(compact(1_234, 4), "1k");
        assert_eq!(compact(12_345, 4), "12k");
        assert_eq!(compact(1_234, 5), "1234");
    }
}
