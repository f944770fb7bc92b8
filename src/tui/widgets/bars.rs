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
    /// Class names (the data's); empty for digits.
    pub names: &'a [String],
    /// Theme.
    pub theme: &'a Theme,
}

impl Widget for &ProbabilityBars<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        // Names up to 12 characters, all padded to the longest; digits without names.
        let name = |c: usize| {
            self.names.get(c).filter(|n| !n.is_empty()).map_or_else(
                || Theme::class_glyph(c).to_string(),
                |n| n.chars().take(12).collect(),
            )
        };
        let name_w = (0..self.probs.len())
            .map(|c| name(c).chars().count())
            .max()
            .unwrap_or(1);
        let head_w = name_w + 2;
        let bar_w = usize::from(area.width).saturating_sub(head_w + 6);
        for (c, &p) in self.probs.iter().enumerate() {
            let Ok(dy) = u16::try_from(c) else { break };
            if dy >= area.height {
                break;
            }
            let y = area.y + dy;
            let mark = if self.marked == Some(c) { '>' } else { ' ' };
            let head = format!("{mark}{:<name_w$} ", name(c));
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
            let head_x = area.x + u16::try_from(head_w).unwrap_or(3);
            buf.set_stringn(head_x, y, &bar, bar_w, bar_style);
            let x = head_x + u16::try_from(bar_w).unwrap_or(0);
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
            names: &[],
            theme: &theme,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 13, 3));
        (&b).render(buf.area, &mut buf);
        assert_eq!(
            buffer_lines(&buf),
            [" 0 ##   0.50 ", ">1 #### 1.00 ", " 2      0.00 "]
        );
        let names = [
            "setosa".to_string(),
            "versicolor".into(),
            "virginica".into(),
        ];
        let b = ProbabilityBars { names: &names, ..b };
        let mut buf = Buffer::empty(Rect::new(0, 0, 22, 3));
        (&b).render(buf.area, &mut buf);
        assert_eq!(
            buffer_lines(&buf),
            [
                " setosa     ##   0.50 ",
                ">versicolor #### 1.00 ",
                " virginica       0.00 "
            ]
        );
    }
}
