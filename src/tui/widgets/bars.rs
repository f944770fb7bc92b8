//! Class probabilities as horizontal bars, one class a line.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;

use crate::tui::theme::Theme;

/// One bar per class.
pub struct ProbabilityBars<'a> {
    /// Probabilities, one per class.
    pub probs: &'a [f32],
    /// A class to mark (the one explained).
    pub marked: Option<usize>,
    /// Theme.
    pub theme: &'a Theme,
}

impl Widget for &ProbabilityBars<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let bar_w = usize::from(area.width).saturating_sub(9);
        for (c, &p) in self.probs.iter().enumerate() {
            let Ok(dy) = u16::try_from(c) else { break };
            if dy >= area.height {
                break;
            }
            let y = area.y + dy;
            let mark = if self.marked == Some(c) { '>' } else { ' ' };
            let head = format!("{mark}{} ", Theme::class_glyph(c));
            let style = if self.marked == Some(c) {
                self.theme.accent()
            } else {
                self.theme.text()
            };
            buf.set_stringn(area.x, y, &head, usize::from(area.width), style);
            if bar_w == 0 {
                continue;
            }
            // p in [0, 1]: eighths of the bar width, non-negative.
            #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let eighths = (f64::from(p.clamp(0.0, 1.0)) * (bar_w * 8) as f64).round() as usize;
            let g = self.theme.glyphs;
            let mut bar: String = std::iter::repeat_n(g.bar_full, eighths / 8).collect();
            let part = g.bar_eighths[eighths % 8];
            if part != ' ' {
                bar.push(part);
            }
            let len = bar.chars().count();
            bar.extend(std::iter::repeat_n(' ', bar_w.saturating_sub(len)));
            let bar_style = Style::default().fg(self.theme.class(c));
            buf.set_stringn(area.x + 3, y, &bar, bar_w, bar_style);
            let x = area.x + 3 + u16::try_from(bar_w).unwrap_or(0);
            buf.set_stringn(x, y, format!(" {p:.2}"), 6, style);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::snapshot::buffer_lines;
    use crate::tui::theme::ColorDepth;

    #[test]
    fn bars_scale_with_probability() {
        let theme = Theme::new(ColorDepth::None, true);
        let b = ProbabilityBars {
            probs: &[0.5, 1.0, 0.0],
            marked: Some(1),
            theme: &theme,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 13, 3));
        (&b).render(buf.area, &mut buf);
        assert_eq!(
            buffer_lines(&buf),
            [" 0 ##   0.50 ", ">1 #### 1.00 ", " 2      0.00 "]
        );
    }
}
