//! The film's timeline (issue 12), three rows under the Embeddings panels: the test accuracy per
//! epoch as a sparkline, a tick for every epoch with a frame (the one shown marked, then `final`
//! for the map computed after training), and a status line with the film's keys.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;

use crate::tui::theme::Theme;

/// A stop of the film: the frame of an epoch, or the final map computed after training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    /// The frames after this many epochs (0 = the untrained network).
    Epoch(usize),
    /// The final map of each layer (`EmbedDone`), the timeline's last stop.
    Final,
}

/// Sparkline levels from low to high, Unicode.
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Sparkline levels from low to high, ASCII.
const ASCII_LEVELS: [char; 8] = ['_', '_', '.', '-', '-', '=', '=', '#'];
/// Width of the row names ("acc", "frames").
const NAME_W: u16 = 7;
/// " final": the last stop, right of the epochs.
const FINAL: &str = " final";

/// The timeline of a film.
pub struct Timeline<'a> {
    /// Epochs with a frame, ascending.
    pub epochs: &'a [usize],
    /// Test accuracy by epoch, ascending epochs.
    pub accuracy: &'a [(usize, f64)],
    /// The last epoch on the axis (frames may lag training).
    pub last_epoch: usize,
    /// The final map exists (the last stop).
    pub has_final: bool,
    /// The stop shown.
    pub shown: Option<Stop>,
    /// The status line (what is shown, following, playing).
    pub status: &'a str,
    /// Key hints, right of the status when they fit.
    pub hints: &'a str,
    /// Theme.
    pub theme: &'a Theme,
}

impl Timeline<'_> {
    /// Columns for the epochs in an area `width` wide.
    fn columns(width: u16) -> usize {
        usize::from(width.saturating_sub(NAME_W + FINAL.len() as u16))
    }

    /// The column of epoch `e` among `cols`: one column per epoch while they fit, else spread.
    pub fn column(e: usize, last_epoch: usize, cols: usize) -> usize {
        if cols == 0 {
            return 0;
        }
        if last_epoch < cols {
            e
        } else {
            (e * (cols - 1) / last_epoch.max(1)).min(cols - 1)
        }
    }
}

impl Widget for &Timeline<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let theme = self.theme;
        let cols = Timeline::columns(area.width);
        let x0 = area.x + NAME_W;
        let shown_col = match self.shown {
            Some(Stop::Epoch(e)) => Some(Timeline::column(e, self.last_epoch, cols)),
            _ => None,
        };
        let rows = [area.y, area.y + 1, area.y + 2];
        let (spark_y, ticks_y, status_y) = if area.height >= 3 {
            (Some(rows[0]), Some(rows[1]), rows[2])
        } else if area.height == 2 {
            (None, Some(rows[0]), rows[1])
        } else {
            (None, None, rows[0])
        };
        if cols > 0 {
            if let Some(y) = spark_y {
                buf.set_string(area.x, y, "acc", theme.dim());
                self.render_sparkline(x0, y, cols, shown_col, buf);
            }
            if let Some(y) = ticks_y {
                buf.set_string(area.x, y, "frames", theme.dim());
                self.render_ticks(x0, y, cols, shown_col, buf);
            }
        }
        let width = usize::from(area.width);
        let status_w = self.status.chars().count();
        buf.set_stringn(area.x, status_y, self.status, width, theme.text());
        let hints_w = self.hints.chars().count();
        if status_w + 2 + hints_w <= width {
            let x = area.right() - u16::try_from(hints_w).unwrap_or(0);
            buf.set_string(x, status_y, self.hints, theme.dim());
        }
    }
}

impl Timeline<'_> {
    fn render_sparkline(
        &self,
        x0: u16,
        y: u16,
        cols: usize,
        shown: Option<usize>,
        buf: &mut Buffer,
    ) {
        let theme = self.theme;
        let (lo, hi) = self
            .accuracy
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &(_, a)| {
                (lo.min(a), hi.max(a))
            });
        // The best accuracy of each column (several epochs share one on a long run).
        let mut best = vec![None::<f64>; cols];
        for &(e, a) in self.accuracy {
            if e > self.last_epoch {
                continue;
            }
            let c = Timeline::column(e, self.last_epoch, cols);
            best[c] = Some(best[c].map_or(a, |b: f64| b.max(a)));
        }
        let levels = if theme.glyphs.unicode {
            LEVELS
        } else {
            ASCII_LEVELS
        };
        for (c, a) in best.iter().enumerate() {
            let ch = match a {
                // The range of the run, so that the rise shows (the axis is in the status line).
                Some(a) if hi - lo > 1e-9 => {
                    let t = ((a - lo) / (hi - lo)).clamp(0.0, 1.0);
                    // In [0, 7] by the clamp.
                    levels[(t * 7.0).round() as usize]
                }
                Some(_) => levels[7],
                None => ' ',
            };
            let style = if Some(c) == shown {
                theme.highlight().patch(theme.series_test())
            } else {
                theme.series_test()
            };
            let x = x0 + u16::try_from(c).unwrap_or(0);
            if let Some(cell) = buf.cell_mut((x, y)) {
                cell.set_char(ch);
                cell.set_style(style);
            }
        }
    }

    fn render_ticks(&self, x0: u16, y: u16, cols: usize, shown: Option<usize>, buf: &mut Buffer) {
        let theme = self.theme;
        let (tick, mark) = if theme.glyphs.unicode {
            ('·', '▲')
        } else {
            ('.', '^')
        };
        for &e in self.epochs {
            let c = Timeline::column(e, self.last_epoch, cols);
            let x = x0 + u16::try_from(c).unwrap_or(0);
            if let Some(cell) = buf.cell_mut((x, y)) {
                cell.set_char(tick);
                cell.set_style(theme.text());
            }
        }
        if let Some(c) = shown {
            let x = x0 + u16::try_from(c).unwrap_or(0);
            if let Some(cell) = buf.cell_mut((x, y)) {
                cell.set_char(mark);
                cell.set_style(theme.accent());
            }
        }
        if self.has_final {
            // Right after the last epoch's column.
            let last = Timeline::column(self.last_epoch, self.last_epoch, cols);
            let x = x0 + u16::try_from(last + 1).unwrap_or(0);
            let style: Style = if self.shown == Some(Stop::Final) {
                if let Some(cell) = buf.cell_mut((x, y)) {
                    cell.set_char(mark);
                    cell.set_style(theme.accent());
                }
                theme.highlight()
            } else {
                theme.text()
            };
            buf.set_string(x + 1, y, &FINAL[1..], style);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::snapshot::buffer_lines;
    use crate::tui::theme::ColorDepth;

    fn timeline(theme: &Theme, shown: Option<Stop>, has_final: bool) -> Vec<String> {
        let epochs = [0, 1, 2, 3, 4];
        let accuracy = [(1, 0.5), (2, 0.75), (3, 0.9), (4, 0.9)];
        let t = Timeline {
            epochs: &epochs,
            accuracy: &accuracy,
            last_epoch: 6,
            has_final,
            shown,
            status: "epoch 2",
            hints: "p play",
            theme,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 30, 3));
        (&t).render(buf.area, &mut buf);
        buffer_lines(&buf)
    }

    #[test]
    fn one_column_per_epoch_the_shown_one_marked_and_final_last() {
        let theme = Theme::new(ColorDepth::None, false);
        let lines = timeline(&theme, Some(Stop::Epoch(2)), true);
        // Epoch 0 has no accuracy (the untrained network is not tested); 0.5..0.9 spans the rows.
        assert_eq!(lines[0], "acc     ▁▅██                  ");
        assert_eq!(lines[1], "frames ··▲··   final          ");
        assert_eq!(lines[2], "epoch 2                 p play");
    }

    #[test]
    fn ascii_and_no_final() {
        let theme = Theme::new(ColorDepth::None, true);
        let lines = timeline(&theme, Some(Stop::Final), false);
        assert_eq!(lines[0], "acc     _-##                  ");
        assert_eq!(lines[1], "frames .....                  ");
    }

    #[test]
    fn a_long_run_is_spread_over_the_columns() {
        assert_eq!(Timeline::column(0, 199, 40), 0);
        assert_eq!(Timeline::column(199, 199, 40), 39);
        assert_eq!(Timeline::column(100, 199, 40), 19);
        assert_eq!(Timeline::column(7, 9, 40), 7);
    }
}
