//! The points of the Embeddings tab's maps beyond the embedded training images (issue 13 items
//! 1, 3-5): the test images placed into each layer's final map, the `/` filter that dims what
//! does not match, colouring by confidence, and the neighbours of the selection. The maps'
//! points are numbered as one list: the embedded training images first (`0..n`), then the
//! placed test images (`n..n+m`, test rows `0..m`) — see [`MapPoints::point`].

use std::collections::BTreeMap;

use ndarray::{Array2, concatenate};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Span;

use super::embeddings::ColorBy;
use super::neighbours::{self, DEFAULT_K, NeighbourList};
use crate::data::Part;
use crate::tui::app::Session;
use crate::tui::query::{PointFacts, Query};
use crate::tui::theme::Theme;
use crate::tui::widgets::Scatter;
use crate::tui::widgets::scatter::Bounds;

/// Confidence bins of the colour-by-confidence scale (group = bin).
pub const CONF_BINS: u8 = 10;

/// State of the maps' extra points and views.
#[derive(Debug, Clone, Default)]
pub struct MapPoints {
    /// Placed test images of each layer's final map (m x 2: test rows `0..m`).
    pub placed: BTreeMap<usize, Array2<f32>>,
    /// Each layer's final map with its placed points after its own points (n + m rows).
    pub combined: BTreeMap<usize, Array2<f32>>,
    /// The selection is this placed test image (else the training image `selected`).
    pub selected_test: Option<usize>,
    /// The active filter.
    pub filter: Option<Query>,
    /// The filter being typed after `/`.
    pub editing: Option<String>,
    /// Whether each point (one list, see the module) matches the filter.
    pub matches: Vec<bool>,
    /// Each point's group under the current colouring (the dim group where it does not match).
    pub groups: Vec<u8>,
    /// The group drawn dim (points the filter leaves out).
    pub dim_group: u8,
    /// Facts of every point.
    pub facts: Vec<PointFacts>,
    /// The neighbours panel is open.
    pub show_neighbours: bool,
    /// Neighbours of the selection in the focused layer.
    pub neighbours: Option<NeighbourList>,
}

impl MapPoints {
    /// Placed test images (the most any layer has).
    pub fn n_placed(&self) -> usize {
        self.placed.values().map(Array2::nrows).max().unwrap_or(0)
    }

    /// A layer's final map is in, with its placed points (if any).
    pub fn map_done(&mut self, layer: usize, coords: &Array2<f32>, placed: Option<Array2<f32>>) {
        match placed {
            Some(p) if p.ncols() == 2 && coords.ncols() == 2 => {
                let both = concatenate![ndarray::Axis(0), coords.view(), p.view()];
                self.combined.insert(layer, both);
                self.placed.insert(layer, p);
            }
            _ => {
                self.combined.remove(&layer);
                self.placed.remove(&layer);
            }
        }
    }

    /// A new model: placed points and their facts go.
    pub fn clear(&mut self) {
        *self = MapPoints {
            show_neighbours: self.show_neighbours,
            filter: self.filter.take(),
            ..MapPoints::default()
        };
    }

    /// The map of a layer with the placed points, when `own` is the map they were placed
    /// into (not a layout kept from another perplexity, nor another epoch's frame): the
    /// comparison costs n x 2 floats, nothing beside drawing them.
    pub fn coords_for<'a>(&'a self, layer: usize, own: &'a Array2<f32>) -> &'a Array2<f32> {
        self.combined
            .get(&layer)
            .filter(|c| {
                c.nrows() == own.nrows() + self.placed.get(&layer).map_or(0, Array2::nrows)
                    && c.slice(ndarray::s![..own.nrows(), ..]) == own.view()
            })
            .unwrap_or(own)
    }

    /// Point `u` of the one list as (part, row).
    pub fn point(n_train: usize, u: usize) -> (Part, usize) {
        if u < n_train {
            (Part::Train, u)
        } else {
            (Part::Test, u - n_train)
        }
    }

    /// Recompute the facts, the filter's matches and the groups (after any change of the model,
    /// the maps, the colouring or the filter).
    pub fn sync(&mut self, session: &Session, labels: &[u8], predictions: &[u8], by: ColorBy) {
        let n_classes = session.n_classes();
        self.dim_group = u8::try_from(n_classes.max(usize::from(CONF_BINS))).unwrap_or(u8::MAX);
        let confidence = |part: Part, i: usize| {
            session
                .probabilities(part, i)
                .map_or(1.0, |p| p.iter().copied().fold(0.0, f32::max))
        };
        let m = if session.model.is_some() {
            self.n_placed().min(session.image_count(Part::Test))
        } else {
            0
        };
        let mut facts = Vec::with_capacity(labels.len() + m);
        for (i, &label) in labels.iter().enumerate() {
            facts.push(PointFacts {
                label,
                pred: predictions.get(i).copied().unwrap_or(label),
                confidence: confidence(Part::Train, i),
                part: Part::Train,
            });
        }
        for j in 0..m {
            let Some((_, label)) = session.image(Part::Test, j) else {
                break;
            };
            let pred = session
                .probabilities(Part::Test, j)
                .and_then(|p| p.to_slice().map(crate::nn::argmax))
                .and_then(|p| u8::try_from(p).ok())
                .unwrap_or(label);
            facts.push(PointFacts {
                label,
                pred,
                confidence: confidence(Part::Test, j),
                part: Part::Test,
            });
        }
        self.matches = facts
            .iter()
            .map(|f| self.filter.as_ref().is_none_or(|q| q.matches(f)))
            .collect();
        self.groups = facts
            .iter()
            .zip(&self.matches)
            .map(|(f, &ok)| {
                if !ok {
                    return self.dim_group;
                }
                match by {
                    ColorBy::Label => f.label,
                    ColorBy::Prediction => f.pred,
                    ColorBy::Correctness => u8::from(f.pred == f.label),
                    ColorBy::Confidence => confidence_bin(f.confidence),
                }
            })
            .collect();
        self.facts = facts;
    }

    /// The next (or previous) point after `from` that is wrong, or matches the filter when
    /// there is one; `None` when there is none.
    pub fn walk(&self, from: usize, forward: bool) -> Option<usize> {
        let n = self.facts.len();
        (1..=n)
            .map(|step| {
                if forward {
                    (from + step) % n
                } else {
                    (from + n - step % n) % n
                }
            })
            .find(|&u| {
                if self.filter.is_some() {
                    self.matches[u]
                } else {
                    self.facts[u].pred != self.facts[u].label
                }
            })
    }

    /// Recompute the neighbours of the selection `u` in the map of `layer` (panel open only).
    pub fn refresh_neighbours(
        &mut self,
        session: &Session,
        n_train: usize,
        u: usize,
        layer: Option<(usize, &Array2<f32>)>,
    ) {
        if !self.show_neighbours {
            self.neighbours = None;
            return;
        }
        let (part, index) = MapPoints::point(n_train, u);
        self.neighbours = layer.and_then(|(layer, own)| {
            let coords = self.coords_for(layer, own);
            let map = (coords.nrows() > u).then_some((coords, u));
            neighbours::compute(session, part, index, layer, map, DEFAULT_K)
        });
    }
}

/// Lowest confidence of the scale: below it, the first bin. A trained model is above 0.9 on
/// most images; the scale spends its steps where the doubt is.
pub const CONF_FLOOR: f32 = 0.5;

/// The bin of a confidence in [0, 1]: [`CONF_BINS`] equal steps from [`CONF_FLOOR`] to 1.
pub fn confidence_bin(c: f32) -> u8 {
    let t = ((c - CONF_FLOOR) / (1.0 - CONF_FLOOR)).clamp(0.0, 1.0);
    // t in [0, 1]: the bin stays in 0..CONF_BINS.
    ((t * f32::from(CONF_BINS)) as u8).min(CONF_BINS - 1)
}

/// The colour of a confidence bin: a sequential scale, near white (unsure) to dark orange
/// (sure): the positive half of the diverging scale.
pub fn confidence_color(theme: &Theme, bin: u8) -> Color {
    theme.diverging(0.05 + 0.95 * f32::from(bin) / f32::from(CONF_BINS - 1))
}

/// The glyph of a confidence bin without colour: shades, more ink for more confidence.
pub fn confidence_glyph(theme: &Theme, bin: u8) -> char {
    let i = 1 + usize::from(bin) * 4 / usize::from(CONF_BINS);
    theme.glyphs.shades[i.min(4)]
}

/// The colour legend of the confidence scale: "confidence 0.0 ░▒▓█ 1.0" in the scale's colours.
pub fn confidence_legend(theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = vec![Span::styled(format!("<{CONF_FLOOR}"), theme.dim())];
    for b in 0..CONF_BINS {
        let glyph = if theme.has_color() {
            theme.glyphs.bar_full
        } else {
            confidence_glyph(theme, b)
        };
        spans.push(Span::styled(
            glyph.to_string(),
            Style::default().fg(confidence_color(theme, b)),
        ));
    }
    spans.push(Span::styled("1 ", theme.dim()));
    spans
}

/// The glyph of a placed test image the model gets wrong (drawn over the map).
pub fn wrong_test_glyph(theme: &Theme) -> char {
    if theme.glyphs.unicode { '×' } else { 'X' }
}

/// Over a scatter already drawn: the filter's matches in their own colour (and glyph, without
/// braille) where a dim point took the cell, and a marker on every placed test image the model
/// gets wrong.
pub struct Overlay<'a> {
    /// The scatter that was drawn (its coordinates and groups: the one list of points).
    pub scatter: &'a Scatter<'a>,
    /// The points' state.
    pub points: &'a MapPoints,
    /// Selected point (its cell is left as the scatter drew it).
    pub selected: usize,
    /// The data rectangle the scatter was drawn with (`None`: the points' own).
    pub bounds: Option<Bounds>,
}

impl Overlay<'_> {
    /// Draw into `area` (the scatter's area).
    pub fn render(&self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let s = self.scatter;
        let dots = s.theme.braille && !s.glyphs;
        let (sub_x, sub_y) = if dots { (2, 4) } else { (1, 1) };
        let projected = s.project(area, sub_x, sub_y, self.bounds);
        let cell = |u: usize| {
            projected.get(u).map(|&(px, py)| {
                (
                    area.x + u16::try_from(px / sub_x).unwrap_or(0),
                    area.y + u16::try_from(py / sub_y).unwrap_or(0),
                )
            })
        };
        let filtering = self.points.filter.is_some();
        let mark = wrong_test_glyph(s.theme);
        let selected = cell(self.selected);
        for (u, f) in self.points.facts.iter().enumerate() {
            let Some(&g) = s.groups.get(u) else { break };
            let Some(pos) = cell(u) else { break };
            if Some(pos) == selected {
                continue;
            }
            let wrong_test = f.part == Part::Test && f.pred != f.label;
            let Some(c) = buf.cell_mut(pos) else { continue };
            if wrong_test && (!filtering || self.points.matches[u]) {
                c.set_char(mark);
                c.set_style(Style::default().fg((s.color)(g)));
            } else if filtering && self.points.matches[u] {
                if !dots {
                    c.set_char((s.glyph)(g));
                }
                c.set_style(Style::default().fg((s.color)(g)));
            }
        }
    }
}
