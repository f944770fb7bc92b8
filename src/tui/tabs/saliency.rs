//! Saliency: the image and its saliency map side by side as half-block heatmaps with their
//! scale legends, the class probabilities as bars, and how far the estimate has come.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use crate::tui::app::{App, ImageSet, method_label};
use crate::tui::tabs::training::duration;
use crate::tui::theme::Theme;
use crate::tui::widgets::{Heatmap, Legend, ProbabilityBars, Scale};

/// Render the Saliency tab into `area`.
pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let s = &app.saliency;
    let [main, info] = area.layout(&Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(if area.height >= 30 { 5 } else { 4 }),
    ]));
    let probs_w = (area.width / 4).max(18);
    let [image_area, map_area, probs_area] = main.layout(&Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(probs_w),
    ]));
    let set_name = match s.set {
        ImageSet::Test => "test",
        ImageSet::Train => "training",
    };
    let image = app.image(s.set, s.index);
    let shape = app.split.as_ref().map_or((28, 28), |sp| {
        // Features that are not a square image show as one strip.
        sp.test.image_shape.unwrap_or((1, sp.test.n_features()))
    });
    let title = match image {
        Some((_, label)) => format!(" {set_name} image {} · label {label} ", s.index),
        None => format!(" {set_name} image {} ", s.index),
    };
    let pixels = image.as_ref().and_then(|(p, _)| p.to_slice());
    render_heatmap(
        &title,
        pixels,
        shape,
        Scale::Gray { min: 0.0, max: 1.0 },
        theme,
        image_area,
        buf,
    );
    let class = s.explained_class.or(s.class);
    let map_title = match class {
        Some(c) => format!(" saliency for class {c} "),
        None => " saliency ".to_string(),
    };
    let values = s.estimate.as_ref().map(|e| e.values.as_slice());
    render_heatmap(
        &map_title,
        values,
        shape,
        Scale::Diverging { max_abs: s.max_abs },
        theme,
        map_area,
        buf,
    );
    let block = Block::bordered().title(" probabilities ");
    let inner = block.inner(probs_area);
    block.render(probs_area, buf);
    match app
        .probabilities(s.set, s.index)
        .and_then(|p| p.to_slice().map(<[f32]>::to_vec))
    {
        Some(p) => (&ProbabilityBars {
            probs: &p,
            marked: class,
            theme,
        })
            .render(inner, buf),
        None => Paragraph::new("after training")
            .style(theme.dim())
            .render(inner, buf),
    }
    render_info(app, theme, info, buf);
}

fn render_heatmap(
    title: &str,
    pixels: Option<&[f32]>,
    shape: (usize, usize),
    scale: Scale,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let block = Block::bordered().title(title.to_string());
    let inner = block.inner(area);
    block.render(area, buf);
    let [map, legend] = inner.layout(&Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(1),
    ]));
    let Some(px) = pixels else {
        Paragraph::new("waiting for the worker")
            .style(theme.dim())
            .render(map, buf);
        return;
    };
    let (w, h) = Heatmap::fit(shape.0, shape.1, map);
    // Centre the image in its box.
    let x = map.x + (map.width - w) / 2;
    let heatmap = Heatmap {
        pixels: px,
        rows: shape.0,
        cols: shape.1,
        scale,
        theme,
    };
    (&heatmap).render(Rect::new(x, map.y, w, h), buf);
    // The legend right under the image.
    let legend_w = w.max(16).min(legend.width);
    let lx = legend.x + (legend.width - legend_w) / 2;
    let ly = (map.y + h).min(legend.y);
    (&Legend { scale, theme }).render(Rect::new(lx, ly, legend_w, 1), buf);
}

fn render_info(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let s = &app.saliency;
    let class_text = match (s.class, s.explained_class) {
        (Some(c), _) => format!("class {c}"),
        (None, Some(c)) => format!("class {c} (predicted)"),
        (None, None) => "the predicted class".to_string(),
    };
    let mut spans = vec![
        Span::styled("method ", theme.dim()),
        Span::styled(method_label(s.method), theme.accent()),
        Span::styled("  explaining ", theme.dim()),
        Span::raw(class_text),
    ];
    let progress = match &s.estimate {
        Some(e) => {
            let se = s
                .mean_stderr
                .map_or(String::new(), |v| format!(" · mean s.e. {v:.2e}"));
            let state = if s.done { "done" } else { "refining" };
            format!(
                "{}/{} samples · {}{se} · {state}",
                e.samples_done,
                e.samples_total,
                duration(e.seconds)
            )
        }
        None if s.running => "queued: the worker starts it after the model is ready".to_string(),
        None => "not started".to_string(),
    };
    let lines = vec![
        Line::from(std::mem::take(&mut spans)),
        Line::from(vec![
            Span::styled("estimate ", theme.dim()),
            Span::raw(progress),
        ]),
        Line::styled(
            "blue lowers the class's probability, orange raises it; 0 is light",
            theme.dim(),
        ),
    ];
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(" explanation "))
        .render(area, buf);
}
