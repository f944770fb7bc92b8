//! Training: a progress gauge, loss and accuracy curves, the test confusion matrix with
//! per-class accuracy, and the latest numbers.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, LegendPosition, Paragraph, Widget};

use crate::tui::app::{App, metric};
use crate::tui::theme::Theme;
use crate::tui::widgets::ConfusionGrid;

/// Render the Training tab into `area`.
pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let [gauge, rest] = area.layout(&Layout::vertical([
        Constraint::Length(3),
        Constraint::Fill(1),
    ]));
    render_gauge(app, theme, gauge, buf);
    let side_w = if area.width >= 120 { 62 } else { 51 };
    let [charts, side] = rest.layout(&Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(side_w),
    ]));
    let [loss, accuracy] = charts.layout(&Layout::vertical([
        Constraint::Fill(1),
        Constraint::Fill(1),
    ]));
    let s = &app.training.series;
    let max_epoch = app.training.history.last().map_or(1, |e| e.epoch).max(2);
    render_chart(
        " loss (cross-entropy) ",
        &[
            ("train", &s.train_loss, theme.series_train()),
            ("test", &s.test_loss, theme.series_test()),
        ],
        max_epoch,
        None,
        theme,
        loss,
        buf,
    );
    render_chart(
        " accuracy ",
        &[
            ("train", &s.train_accuracy, theme.series_train()),
            ("test", &s.test_accuracy, theme.series_test()),
        ],
        max_epoch,
        Some((0.0, 1.0)),
        theme,
        accuracy,
        buf,
    );
    let n = app.n_classes().max(1);
    let [grid, stats] = side.layout(&Layout::vertical([
        Constraint::Length(u16::try_from(n + 3).unwrap_or(13)),
        Constraint::Fill(1),
    ]));
    let block = Block::bordered().title(" confusion (test, true x predicted) ");
    let inner = block.inner(grid);
    block.render(grid, buf);
    match &app.model {
        Some(m) => (&ConfusionGrid {
            matrix: &m.confusion,
            theme,
        })
            .render(inner, buf),
        None => Paragraph::new("after training")
            .style(theme.dim())
            .render(inner, buf),
    }
    render_stats(app, theme, stats, buf);
}

fn render_gauge(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let t = &app.training;
    let block = Block::bordered().title(" progress ");
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    let epoch = t.history.last().map_or(0, |e| e.epoch);
    let rate = t.history.last().map_or(0.0, |e| e.samples_per_sec);
    let left = if t.status.is_active() {
        t.seconds_left()
            .map_or(String::new(), |s| format!(" · ~{} left", duration(s)))
    } else {
        String::new()
    };
    let label = format!(
        " epoch {epoch}/{} · {rate:.0} samples/s{left} · {} · seed {} ",
        t.max_epochs,
        t.status.label(),
        t.seed
    );
    #[expect(clippy::cast_precision_loss)]
    let ratio = if t.max_epochs == 0 {
        0.0
    } else {
        (epoch as f64 / t.max_epochs as f64).min(1.0)
    };
    let label_w = u16::try_from(label.chars().count()).unwrap_or(u16::MAX);
    let bar_w = inner.width.saturating_sub(label_w);
    // ratio in [0, 1]: the filled width is within bar_w.
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let filled = (ratio * f64::from(bar_w)).round() as u16;
    for i in 0..bar_w {
        let Some(cell) = buf.cell_mut((inner.x + i, inner.y)) else {
            continue;
        };
        if theme.has_color() {
            cell.set_char(if i < filled { '█' } else { '─' });
            cell.set_style(if i < filled {
                theme.good()
            } else {
                theme.dim()
            });
        } else {
            cell.set_char(if i < filled { '#' } else { '.' });
        }
    }
    buf.set_stringn(
        inner.x + bar_w,
        inner.y,
        &label,
        usize::from(inner.width.saturating_sub(bar_w)),
        theme.text(),
    );
}

/// A named curve and its style.
type Series<'a> = (&'a str, &'a Vec<(f64, f64)>, Style);

fn render_chart(
    title: &str,
    series: &[Series],
    max_epoch: usize,
    y_fixed: Option<(f64, f64)>,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let marker = if theme.braille {
        Marker::Braille
    } else {
        Marker::Dot
    };
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for (_, s, _) in series {
        for &(_, v) in s.iter() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let (lo, hi) = match y_fixed {
        Some(b) => b,
        None if lo <= hi => (0.0f64.min(lo), (hi * 1.05).max(lo + 1e-6)),
        None => (0.0, 1.0),
    };
    let datasets: Vec<Dataset> = series
        .iter()
        .map(|(name, data, style)| {
            Dataset::default()
                .name(*name)
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(*style)
                .data(data)
        })
        .collect();
    #[expect(clippy::cast_precision_loss)]
    let xmax = max_epoch as f64;
    // Loss falls towards the bottom right, accuracy rises to the top right: keep the legend
    // out of the curves' way.
    let legend = if y_fixed.is_some() {
        LegendPosition::BottomRight
    } else {
        LegendPosition::TopRight
    };
    let chart = Chart::new(datasets)
        .legend_position(Some(legend))
        .block(Block::bordered().title(title.to_string()))
        .x_axis(
            Axis::default()
                .style(theme.dim())
                .bounds([1.0, xmax])
                .labels(["1".to_string(), format!("epoch {max_epoch}")]),
        )
        .y_axis(
            Axis::default()
                .style(theme.dim())
                .bounds([lo, hi])
                .labels([format!("{lo:.2}"), format!("{hi:.2}")]),
        );
    chart.render(area, buf);
}

fn render_stats(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let t = &app.training;
    let mut lines = Vec::new();
    let sizes = t
        .layer_sizes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("-");
    lines.push(Line::from(vec![
        Span::styled("network ", theme.dim()),
        Span::raw(sizes),
    ]));
    if let Some(e) = t.history.last() {
        let test = |v: Option<f64>, pct: bool| {
            v.map_or("-".to_string(), |v| {
                if pct {
                    format!("{:.1}%", v * 100.0)
                } else {
                    format!("{v:.4}")
                }
            })
        };
        lines.push(Line::from(vec![
            Span::styled("loss    ", theme.dim()),
            Span::styled(format!("train {:.4}", e.train_loss), theme.series_train()),
            Span::raw("  "),
            Span::styled(
                format!("test {}", test(metric(e.test_loss), false)),
                theme.series_test(),
            ),
        ]));
        lines.push(Line::from(vec![
            Span::styled("acc     ", theme.dim()),
            Span::styled(
                format!("train {:.1}%", e.train_accuracy * 100.0),
                theme.series_train(),
            ),
            Span::raw("  "),
            Span::styled(
                format!("test {}", test(metric(e.test_accuracy), true)),
                theme.series_test(),
            ),
        ]));
        let total: f64 = t.history.iter().map(|e| e.seconds).sum();
        lines.push(Line::from(vec![
            Span::styled("time    ", theme.dim()),
            Span::raw(format!("{} ({:.2} s/epoch)", duration(total), e.seconds)),
        ]));
    } else {
        lines.push(Line::styled("waiting for the first epoch", theme.dim()));
    }
    Paragraph::new(lines)
        .block(Block::bordered().title(" latest "))
        .render(area, buf);
}

/// Seconds as "1h02m", "3m20s" or "12s".
pub fn duration(seconds: f64) -> String {
    // Non-negative and far below u64::MAX for any run.
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
