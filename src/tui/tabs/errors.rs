//! The error browser of the Training tab (issue 13 item 2): the test confusion matrix with a
//! cursor (arrows), shaded by count; Enter lists the cell's test images as thumbnails, the most
//! confident first (the most confident mistakes are the telling ones: fastai's
//! `plot_top_losses`); in the list, Enter explains the image in the Saliency tab (why the
//! prediction and not the label), `e` shows it in the Embeddings tab, Esc closes.

use ndarray::Array2;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Widget};

use super::embeddings::Direction;
use super::neighbours::label_pred;
use crate::compute::ModelReport;
use crate::data::Part;
use crate::tui::app::{Effect, Session};
use crate::tui::theme::Theme;
use crate::tui::widgets::confusion::compact;
use crate::tui::widgets::thumbnail::{THUMB_H, THUMB_W, Thumbnail};

/// What the error browser's keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorsAction {
    /// Move the cell cursor, or in the open list the image cursor.
    Move(Direction),
    /// Open the cell's list; in the list, explain the image.
    Enter,
    /// Show the list's image in the Embeddings tab.
    Show,
    /// Close the list.
    Close,
}

/// The error browser's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBrowser {
    /// Selected cell: (true class, predicted class).
    pub cell: (usize, usize),
    /// The cell's list is open.
    pub open: bool,
    /// The open list: test rows, the most confident first.
    pub list: Vec<usize>,
    /// Selected entry of the list.
    pub cursor: usize,
}

/// The test rows of true class `label` predicted as `pred`, the most confident first (the
/// probability of the predicted class, ties by row): one row per count of the confusion cell.
pub fn cell_rows(report: &ModelReport, labels: &[u8], label: usize, pred: usize) -> Vec<usize> {
    let mut rows: Vec<(usize, f32)> = report
        .test_probs
        .rows()
        .into_iter()
        .enumerate()
        .filter(|&(i, _)| labels.get(i).is_some_and(|&l| usize::from(l) == label))
        .filter_map(|(i, p)| {
            let p = p.to_slice()?;
            (crate::nn::argmax(p) == pred).then(|| (i, p[pred]))
        })
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    rows.into_iter().map(|(i, _)| i).collect()
}

impl ErrorBrowser {
    /// Apply one of the browser's actions.
    pub fn update(&mut self, action: ErrorsAction, session: &Session) -> Vec<Effect> {
        let n = session.n_classes();
        let Some(report) = session.model.as_ref().filter(|_| n > 0) else {
            return vec![Effect::Say(
                "the confusion matrix comes after training".into(),
            )];
        };
        let (label, pred) = self.cell;
        match (action, self.open) {
            (ErrorsAction::Move(d), false) => {
                let (r, c) = &mut self.cell;
                match d {
                    Direction::Up => *r = r.saturating_sub(1),
                    Direction::Down => *r = (*r + 1).min(n - 1),
                    Direction::Left => *c = c.saturating_sub(1),
                    Direction::Right => *c = (*c + 1).min(n - 1),
                }
            }
            (ErrorsAction::Move(d), true) => {
                let last = self.list.len().saturating_sub(1);
                self.cursor = match d {
                    Direction::Up | Direction::Left => self.cursor.saturating_sub(1),
                    Direction::Down | Direction::Right => (self.cursor + 1).min(last),
                };
            }
            (ErrorsAction::Enter, false) => {
                let labels = session.split.as_ref().map_or(&[][..], |s| &s.test.labels);
                self.list = cell_rows(report, labels, label, pred);
                self.cursor = 0;
                if self.list.is_empty() {
                    return vec![Effect::Say(format!(
                        "no test image of {} is predicted {}",
                        session.class_name(label),
                        session.class_name(pred)
                    ))];
                }
                self.open = true;
            }
            (ErrorsAction::Enter, true) => {
                if let Some(&index) = self.list.get(self.cursor) {
                    // Why the prediction rather than the label (for a mistake).
                    return vec![Effect::Explain {
                        part: Part::Test,
                        index,
                        class: Some(pred),
                        versus: (pred != label).then_some(label),
                    }];
                }
            }
            (ErrorsAction::Show, true) => {
                if let Some(&index) = self.list.get(self.cursor) {
                    return vec![Effect::ShowInEmbeddings {
                        part: Part::Test,
                        index,
                    }];
                }
            }
            (ErrorsAction::Show, false) => {
                return vec![Effect::Say("enter opens the cell's images first".into())];
            }
            (ErrorsAction::Close, _) => self.open = false,
        }
        Vec::new()
    }

    /// A new model: the list goes (its rows were another model's mistakes).
    pub fn model_changed(&mut self) {
        self.open = false;
        self.list.clear();
        self.cursor = 0;
    }
}

/// The confusion matrix with the browser's cursor: rows true classes, columns predictions;
/// every non-zero cell shaded by its count (log scale; without colour a shade glyph), the
/// diagonal in the "good" colour and mistakes in the "bad" one, per-class accuracy at the end.
pub struct ErrorGrid<'a> {
    /// Counts.
    pub matrix: &'a Array2<usize>,
    /// Accuracy of each true class (NaN: no rows).
    pub accuracy: &'a [f64],
    /// The cursor (true, predicted).
    pub cell: (usize, usize),
    /// Theme.
    pub theme: &'a Theme,
}

impl Widget for &ErrorGrid<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let theme = self.theme;
        let n = self.matrix.nrows();
        let cw = (usize::from(area.width).saturating_sub(9) / n.max(1)).clamp(3, 5);
        let max = self.matrix.iter().copied().max().unwrap_or(0).max(1);
        let mut header = String::from("t\\p");
        for c in 0..n {
            let mark = if c == self.cell.1 { '▾' } else { ' ' };
            let mark = if theme.glyphs.unicode { mark } else { ' ' };
            header.push_str(&format!("{:>w$}{mark}", Theme::class_glyph(c), w = cw - 1));
        }
        header.push_str("   acc");
        buf.set_stringn(
            area.x,
            area.y,
            &header,
            usize::from(area.width),
            theme.dim(),
        );
        for r in 0..n {
            let Ok(dy) = u16::try_from(r + 1) else { break };
            if dy >= area.height {
                break;
            }
            let y = area.y + dy;
            let row_mark = if r == self.cell.0 { '>' } else { ' ' };
            buf.set_stringn(
                area.x,
                y,
                format!("{row_mark}{:>2}", Theme::class_glyph(r)),
                usize::from(area.width),
                theme.dim(),
            );
            let mut x = area.x + 3;
            for c in 0..n {
                if x >= area.right() {
                    break;
                }
                let count = self.matrix[[r, c]];
                // ln(1 + count) / ln(1 + max): a 3 beside a 480 still shows.
                let share = ((1 + count) as f64).ln() / ((1 + max) as f64).ln();
                let mut style = if count == 0 {
                    theme.dim()
                } else if r == c {
                    theme.good()
                } else {
                    theme.bad()
                };
                let text = if count == 0 {
                    format!("{:>cw$}", theme.glyphs.empty_cell)
                } else if theme.has_color() {
                    // Dark enough under the good and bad colours' text.
                    style = style.bg(theme.gray(0.05 + 0.22 * share as f32));
                    format!("{:>cw$}", compact(count, cw))
                } else if cw < 4 || count.to_string().len() > cw - 2 {
                    // No room for the shade beside the whole count: the count wins.
                    format!("{:>cw$}", compact(count, cw))
                } else {
                    // share in [0, 1]: the index stays in 1..=4.
                    let shade = theme.glyphs.shades[1 + (share * 3.0).round() as usize];
                    format!("{:>w$}{shade}", compact(count, cw - 1), w = cw - 1)
                };
                if (r, c) == self.cell {
                    style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
                }
                let room = usize::from(area.right() - x);
                buf.set_stringn(x, y, &text, room, style);
                x += u16::try_from(cw).unwrap_or(3);
            }
            if x < area.right()
                && let Some(acc) = self.accuracy.get(r).filter(|a| a.is_finite())
            {
                let room = usize::from(area.right() - x);
                buf.set_stringn(x, y, format!(" {:>5.1}", acc * 100.0), room, theme.text());
            }
        }
    }
}

/// The cursor's cell in words, for the grid's bottom line: "true 4 · pred 9: 3 (enter)".
pub fn cell_line(browser: &ErrorBrowser, session: &Session, theme: &Theme) -> String {
    let (l, p) = browser.cell;
    let count = session
        .model
        .as_ref()
        .and_then(|m| m.confusion.get([l, p]).copied())
        .unwrap_or(0);
    let what = theme.join(&[
        &format!("true {}", session.class_name(l)),
        &format!("pred {}", session.class_name(p)),
    ]);
    format!(" {what}: {count} (enter lists) ")
}

/// The open list of a cell: thumbnails with label, prediction and probability, the most
/// confident first, drawn over the charts.
pub struct ErrorListView<'a> {
    /// The browser.
    pub browser: &'a ErrorBrowser,
    /// What the tabs share.
    pub session: &'a Session,
    /// Theme.
    pub theme: &'a Theme,
}

impl Widget for &ErrorListView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (b, theme, session) = (self.browser, self.theme, self.session);
        Clear.render(area, buf);
        let (l, p) = b.cell;
        let title = format!(
            " {}: {} ",
            label_pred(
                session,
                u8::try_from(l).unwrap_or(0),
                u8::try_from(p).ok(),
                theme
            ),
            match b.list.len() {
                1 => "1 image".to_string(),
                k => format!("{k} images, most confident first"),
            }
        );
        let row = b.list.get(b.cursor).copied().unwrap_or(0);
        let keys = if l == p {
            "enter explain · e map · esc"
        } else {
            "enter why · e map · esc"
        };
        let bottom = format!(" #{row} · {keys} ");
        let block = theme
            .block()
            .title(Line::styled(title, theme.accent()))
            .title_bottom(Line::styled(bottom, theme.dim()));
        let inner = block.inner(area);
        block.render(area, buf);
        let per_row = usize::from((inner.width + 1) / (THUMB_W + 1)).max(1);
        let rows = usize::from(inner.height / (THUMB_H + 1)).max(1);
        let page = per_row * rows;
        let first = (b.cursor / page) * page;
        let (ir, ic) = session.image_shape();
        if inner.height < THUMB_H + 1 || inner.width < THUMB_W {
            Paragraph::new("too small for the images")
                .style(theme.dim())
                .render(inner, buf);
            return;
        }
        let [grid] = inner.layout(&Layout::vertical([Constraint::Fill(1)]));
        for (slot, &index) in b.list.iter().enumerate().skip(first).take(page) {
            let k = slot - first;
            let (r, c) = (k / per_row, k % per_row);
            let x = grid.x + u16::try_from(c).unwrap_or(0) * (THUMB_W + 1);
            let y = grid.y + u16::try_from(r).unwrap_or(0) * (THUMB_H + 1);
            let Some((pixels, label)) = session.image(Part::Test, index) else {
                continue;
            };
            let Some(px) = pixels.to_slice() else {
                continue;
            };
            let prob = session
                .probabilities(Part::Test, index)
                .and_then(|pr| pr.get(p).copied())
                .unwrap_or(0.0);
            let caption = format!(
                "{} {prob:.2}",
                label_pred(session, label, u8::try_from(p).ok(), theme)
            );
            let style = if !theme.has_color() {
                Style::default()
            } else if usize::from(label) == p {
                theme.good()
            } else {
                theme.bad()
            };
            (&Thumbnail {
                pixels: px,
                rows: ir,
                cols: ic,
                caption: &caption,
                caption_style: style,
                selected: slot == b.cursor,
                theme,
            })
                .render(Rect::new(x, y, THUMB_W, THUMB_H + 1), buf);
        }
        if b.list.len() > page {
            let more = format!(
                " {}-{} of {} ",
                first + 1,
                (first + page).min(b.list.len()),
                b.list.len()
            );
            let w = u16::try_from(more.len()).unwrap_or(0);
            if w + 2 < area.width {
                buf.set_string(area.right() - w - 1, area.y, more, theme.dim());
            }
        }
    }
}
