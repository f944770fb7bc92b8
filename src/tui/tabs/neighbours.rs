//! The neighbours panel of the Embeddings tab (`v`, issue 13 item 3): the selected image's k
//! nearest training images in the focused layer's own space, as thumbnails with label and
//! prediction, each marked when it is also among the image's k nearest in the 2-D map. Computed
//! when the selection or the focused layer changes (exact search over the embedded images'
//! activations in `ModelReport::embed_layers`), never while drawing.

use ndarray::{Array2, ArrayView1, ArrayView2, s};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::data::Part;
use crate::tui::app::Session;
use crate::tui::theme::Theme;
use crate::tui::widgets::thumbnail::{THUMB_H, THUMB_W, Thumbnail};

/// Neighbours shown by default (issue 13: 8).
pub const DEFAULT_K: usize = 8;

use crate::neighbours as engine;

/// One neighbour as shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeighbourItem {
    /// Its row among the embedded training images.
    pub index: usize,
    /// Distance in the layer's space.
    pub distance: f32,
    /// Also among the k nearest in the 2-D map.
    pub in_map: bool,
}

/// The neighbours of one image in one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighbourList {
    /// The image's part of the split.
    pub part: Part,
    /// Its row.
    pub index: usize,
    /// The layer (notebook numbering).
    pub layer: usize,
    /// Nearest first.
    pub items: Vec<NeighbourItem>,
    /// Whether the 2-D comparison was possible (the map has the image).
    pub has_map: bool,
}

/// The `k` nearest embedded training images of an image in layer `layer`, and which of them are
/// among its `k` nearest in the map `coords` (rows: the embedded images, then the placed test
/// images; `at` is the image's row there). `None` before a model.
pub fn compute(
    session: &Session,
    part: Part,
    index: usize,
    layer: usize,
    coords: Option<(&Array2<f32>, usize)>,
    k: usize,
) -> Option<NeighbourList> {
    let report = session.model.as_ref()?;
    let reference = report.embed_layers.get(layer.checked_sub(1)?)?;
    let n = reference.nrows();
    let (query, exclude) = match part {
        Part::Train => (
            reference.row(index.min(n.checked_sub(1)?)).to_owned(),
            Some(index),
        ),
        Part::Test => {
            let (pixels, _) = session.image(Part::Test, index)?;
            let x = pixels.insert_axis(ndarray::Axis(0));
            let out = report.model.layer_output(x, layer);
            (out.row(0).to_owned(), None)
        }
    };
    let near = engine::nearest(reference.view(), query.view(), k, exclude);
    let in_map: Vec<usize> = coords
        .filter(|(c, at)| c.nrows() >= n && *at < c.nrows())
        .map(|(c, at)| {
            let map: ArrayView2<f32> = c.slice(s![..n, ..]);
            let q: ArrayView1<f32> = c.row(at);
            engine::nearest(map, q, k, exclude)
                .into_iter()
                .map(|nb| nb.index)
                .collect()
        })
        .unwrap_or_default();
    Some(NeighbourList {
        part,
        index,
        layer,
        has_map: coords.is_some(),
        items: near
            .into_iter()
            .map(|nb| NeighbourItem {
                index: nb.index,
                distance: nb.distance,
                in_map: in_map.contains(&nb.index),
            })
            .collect(),
    })
}

/// Width of the panel: two thumbnails a row, or four on a wide terminal.
pub fn panel_width(area: Rect) -> u16 {
    let per_row = if area.width >= 150 { 4 } else { 2 };
    per_row * (THUMB_W + 1) + 1
}

/// The neighbours panel.
pub struct NeighboursView<'a> {
    /// What to show (`None`: no model yet).
    pub list: Option<&'a NeighbourList>,
    /// The predictions of the embedded images.
    pub predictions: &'a [u8],
    /// What the tabs share.
    pub session: &'a Session,
    /// Theme.
    pub theme: &'a Theme,
}

/// "4→9" (label, prediction) in the theme's glyphs; "4" alone when right.
pub fn label_pred(session: &Session, label: u8, pred: Option<u8>, theme: &Theme) -> String {
    let l = session.class_name(usize::from(label));
    match pred {
        Some(p) if p != label => {
            let arrow = if theme.glyphs.unicode { "→" } else { ">" };
            format!("{l}{arrow}{}", session.class_name(usize::from(p)))
        }
        _ => l,
    }
}

impl Widget for &NeighboursView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let Some(list) = self.list else {
            Paragraph::new("neighbours: after training")
                .style(theme.dim())
                .block(theme.block().title(" neighbours "))
                .render(area, buf);
            return;
        };
        let part = match list.part {
            Part::Train => "train",
            Part::Test => "test",
        };
        let title = format!(" {} nearest in L{} ", list.items.len(), list.layer);
        let mark = if theme.glyphs.unicode { '◇' } else { '+' };
        let bottom = if list.has_map {
            format!(" {mark} also near in 2-D ")
        } else {
            String::new()
        };
        let block = theme
            .block()
            .title(Line::styled(title, theme.text()))
            .title_bottom(Line::styled(bottom, theme.dim()));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.is_empty() {
            return;
        }
        let [head, grid] = inner.layout(&ratatui::layout::Layout::vertical([
            ratatui::layout::Constraint::Length(1),
            ratatui::layout::Constraint::Fill(1),
        ]));
        let own = self.session.image(list.part, list.index).map(|(_, label)| {
            let pred = self
                .session
                .probabilities(list.part, list.index)
                .and_then(|p| {
                    p.to_slice()
                        .and_then(|p| u8::try_from(crate::nn::argmax(p)).ok())
                });
            label_pred(self.session, label, pred, theme)
        });
        Line::from(vec![
            Span::styled(
                format!("{part} {}: {} ", list.index, own.unwrap_or_default()),
                theme.text(),
            ),
            Span::styled("· v closes", theme.dim()),
        ])
        .render(head, buf);
        let (rows, cols) = self.session.image_shape();
        let per_row = usize::from((grid.width + 1) / (THUMB_W + 1)).max(1);
        for (slot, item) in list.items.iter().enumerate() {
            let (r, c) = (slot / per_row, slot % per_row);
            let Ok(y) = u16::try_from(r * usize::from(THUMB_H + 1)) else {
                break;
            };
            let x = u16::try_from(c).unwrap_or(0) * (THUMB_W + 1);
            if y + THUMB_H + 1 > grid.height || x + THUMB_W > grid.width {
                break;
            }
            let Some((pixels, label)) = self.session.image(Part::Train, item.index) else {
                continue;
            };
            let Some(px) = pixels.to_slice() else {
                continue;
            };
            let pred = self.predictions.get(item.index).copied();
            let marker = if item.in_map { mark } else { ' ' };
            let caption = format!(
                "{marker}{} #{}",
                label_pred(self.session, label, pred, theme),
                item.index
            );
            let style = if pred.is_some_and(|p| p != label) {
                theme.bad()
            } else {
                Style::default().fg(theme.class(usize::from(label)))
            };
            let style = if theme.has_color() {
                style
            } else {
                Style::default()
            };
            (&Thumbnail {
                pixels: px,
                rows,
                cols,
                caption: &caption,
                caption_style: style,
                selected: false,
                theme,
            })
                .render(Rect::new(grid.x + x, grid.y + y, THUMB_W, THUMB_H + 1), buf);
        }
    }
}
