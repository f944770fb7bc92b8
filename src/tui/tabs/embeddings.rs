//! Embeddings: one braille t-SNE scatter per layer side by side, a trust gauge under each, the
//! selected image linked across panels, and its digit, label, prediction and probabilities.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use crate::tui::app::{App, ColorBy, ImageSet, Panel};
use crate::tui::theme::Theme;
use crate::tui::widgets::{Heatmap, ProbabilityBars, Scale, Scatter};

/// Render the Embeddings tab into `area`.
pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    // Room for the digit at full size (28 cells) when the terminal is large.
    let side_w = if area.width >= 110 && area.height >= 28 {
        32
    } else {
        24
    };
    let [main, side] = area.layout(&Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(side_w),
    ]));
    let [panels_area, legend] = main.layout(&Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(1),
    ]));
    let panels = &app.embed.panels;
    if panels.is_empty() {
        let text = if app.model.is_some() {
            "t-SNE starting..."
        } else {
            "t-SNE of each layer starts when training ends"
        };
        Paragraph::new(text)
            .style(theme.dim())
            .block(Block::bordered().title(" layers "))
            .render(panels_area, buf);
    } else {
        let n = u32::try_from(panels.len()).unwrap_or(1);
        let areas =
            Layout::horizontal(vec![Constraint::Ratio(1, n); panels.len()]).split(panels_area);
        for (i, (panel, &a)) in panels.iter().zip(areas.iter()).enumerate() {
            render_panel(app, panel, i == app.embed.focus, theme, a, buf);
        }
    }
    render_legend(app, theme, legend, buf);
    render_selection(app, theme, side, buf);
}

/// The colour of a point group under the current colouring.
fn group_color(theme: &Theme, by: ColorBy, g: u8) -> Color {
    match by {
        ColorBy::Correctness => {
            if g == 1 {
                theme.good().fg.unwrap_or(Color::Reset)
            } else {
                theme.bad().fg.unwrap_or(Color::Reset)
            }
        }
        _ => theme.class(usize::from(g)),
    }
}

fn group_glyph(by: ColorBy, g: u8) -> char {
    match by {
        ColorBy::Correctness => {
            if g == 1 {
                '.'
            } else {
                'x'
            }
        }
        _ => Theme::class_glyph(usize::from(g)),
    }
}

fn render_panel(
    app: &App,
    panel: &Panel,
    focused: bool,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let name = if panel.layer == 1 {
        "input".to_string()
    } else if Some(&panel.size) == app.training.layer_sizes.last() && panel.layer > 1 {
        format!("L{} out", panel.layer)
    } else {
        format!("L{}", panel.layer)
    };
    let kl = panel
        .kl_divergence
        .map_or(String::new(), |k| format!(" KL {k:.2}"));
    let title_style = if focused {
        theme.accent()
    } else {
        theme.text()
    };
    let block = Block::bordered()
        .title(Line::styled(
            format!(" {name} · {} ", panel.size),
            title_style,
        ))
        .title_bottom(Line::styled(
            if panel.done {
                format!("{kl} done ")
            } else if panel.n_iter == 0 {
                String::new()
            } else {
                format!(" it {}/{}{kl} ", panel.iteration, panel.n_iter)
            },
            theme.dim(),
        ));
    let inner = block.inner(area);
    block.render(area, buf);
    let [plot, trust] = inner.layout(&Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(1),
    ]));
    if panel.coords.nrows() == 0 {
        Paragraph::new("t-SNE queued")
            .style(theme.dim())
            .render(plot, buf);
        return;
    }
    let by = app.embed.color_by;
    let color = |g: u8| group_color(theme, by, g);
    let glyph = |g: u8| group_glyph(by, g);
    let scatter = Scatter {
        coords: &panel.coords,
        groups: app.embed.groups(),
        color: &color,
        glyph: &glyph,
        selected: Some(app.embed.selected),
        theme,
    };
    (&scatter).render(plot, buf);
    render_trust(panel.trust, theme, trust, buf);
}

/// "trust ▰▰▰▱▱ 0.62": the share of 10 nearest neighbours kept in 2-D.
fn render_trust(trust: Option<f64>, theme: &Theme, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let Some(t) = trust else {
        buf.set_stringn(
            area.x,
            area.y,
            "trust: when done",
            usize::from(area.width),
            theme.dim(),
        );
        return;
    };
    let head = "trust ";
    let tail = format!(" {t:.2}");
    let bar_w = usize::from(area.width).saturating_sub(head.len() + tail.len());
    // t in [0, 1].
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let filled = (t.clamp(0.0, 1.0) * bar_w as f64).round() as usize;
    let (on, off) = if theme.has_color() {
        ('█', '─')
    } else {
        ('#', '.')
    };
    let bar: String = std::iter::repeat_n(on, filled)
        .chain(std::iter::repeat_n(off, bar_w - filled))
        .collect();
    let line = Line::from(vec![
        Span::styled(head, theme.dim()),
        Span::styled(bar, theme.good()),
        Span::raw(tail),
    ]);
    line.render(area, buf);
}

fn render_legend(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let by = app.embed.color_by;
    let mut spans = vec![Span::styled(
        format!("perplexity {} · {} ", app.embed.perplexity, by.label()),
        theme.dim(),
    )];
    match by {
        ColorBy::Correctness => {
            spans.push(Span::styled(
                format!("{}right ", group_glyph(by, 1)),
                Style::default().fg(group_color(theme, by, 1)),
            ));
            spans.push(Span::styled(
                format!("{}wrong ", group_glyph(by, 0)),
                Style::default().fg(group_color(theme, by, 0)),
            ));
        }
        _ => {
            for c in 0..app.n_classes() {
                let g = u8::try_from(c).unwrap_or(0);
                let glyph = if theme.braille {
                    '●'
                } else {
                    group_glyph(by, g)
                };
                spans.push(Span::styled(
                    format!("{glyph}{} ", Theme::class_glyph(c)),
                    Style::default().fg(group_color(theme, by, g)),
                ));
            }
        }
    }
    if app.embed.include_input {
        spans.push(Span::styled(" +input", theme.dim()));
    }
    Line::from(spans).render(area, buf);
}

fn render_selection(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let i = app.embed.selected;
    let block = Block::bordered().title(format!(" image {i} "));
    let inner = block.inner(area);
    block.render(area, buf);
    let Some((pixels, label)) = app.image(ImageSet::Train, i) else {
        Paragraph::new("loading")
            .style(theme.dim())
            .render(inner, buf);
        return;
    };
    let shape = app
        .split
        .as_ref()
        .and_then(|s| s.train.image_shape)
        .unwrap_or((1, pixels.len()));
    let n_classes = app.n_classes();
    let text_h = 1 + u16::try_from(n_classes).unwrap_or(10);
    let image_room = Rect {
        height: inner.height.saturating_sub(text_h).min(inner.height),
        ..inner
    };
    let (_, ih) = Heatmap::fit(shape.0, shape.1, image_room);
    let [image, info, bars] = inner.layout(&Layout::vertical([
        Constraint::Length(ih),
        Constraint::Length(1),
        Constraint::Fill(1),
    ]));
    let pixel_slice = pixels.to_slice();
    if let Some(px) = pixel_slice {
        let heatmap = Heatmap {
            pixels: px,
            rows: shape.0,
            cols: shape.1,
            scale: Scale::Gray { min: 0.0, max: 1.0 },
            theme,
        };
        (&heatmap).render(image, buf);
    }
    let pred = app.embed_prediction(i);
    let mut spans = vec![
        Span::styled("label ", theme.dim()),
        Span::styled(
            label.to_string(),
            Style::default().fg(theme.class(usize::from(label))),
        ),
    ];
    if let Some(p) = pred {
        spans.push(Span::styled("  pred ", theme.dim()));
        let style = if p == label {
            theme.good()
        } else {
            theme.bad()
        };
        let mark = if p == label { "" } else { " wrong" };
        spans.push(Span::styled(format!("{p}{mark}"), style));
    }
    Line::from(spans).render(info, buf);
    if let Some(probs) = app.probabilities(ImageSet::Train, i)
        && let Some(p) = probs.to_slice()
    {
        (&ProbabilityBars {
            probs: p,
            marked: pred.map(usize::from),
            theme,
        })
            .render(bars, buf);
    }
}
