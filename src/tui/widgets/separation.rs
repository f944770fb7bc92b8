//! Class separation by layer over training (issue 12): for each layer, the share of each
//! embedded image's 10 nearest neighbours in the layer's own space that have its label, one
//! line per layer, the input pixels as the baseline, y in [0, 1].

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Widget};

use crate::compute::Separation;
use crate::tui::theme::{Theme, asciify_area};

/// The separation figures as chart points, kept as they come so that drawing converts nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeparationSeries {
    /// (layer, (epoch, share) points by epoch), by layer.
    pub layers: Vec<(usize, Vec<(f64, f64)>)>,
    /// The last epoch with a figure.
    pub last_epoch: usize,
}

impl SeparationSeries {
    /// Take in one epoch's figures (an epoch seen again replaces its points: a recomputed film).
    pub fn push(&mut self, s: &Separation) {
        let x = s.epoch as f64;
        for &(layer, share) in &s.shares {
            let i = match self.layers.binary_search_by_key(&layer, |(l, _)| *l) {
                Ok(i) => i,
                Err(i) => {
                    self.layers.insert(i, (layer, Vec::new()));
                    i
                }
            };
            let points = &mut self.layers[i].1;
            match points.binary_search_by(|p| p.0.total_cmp(&x)) {
                Ok(j) => points[j].1 = share,
                Err(j) => points.insert(j, (x, share)),
            }
        }
        self.last_epoch = self.last_epoch.max(s.epoch);
    }

    /// No figure yet.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

/// Charts area height from which the separation chart gets a row of its own under the loss and
/// accuracy charts (three charts of 9 rows at least); below it, `l` swaps it for accuracy.
pub const THREE_CHARTS_HEIGHT: u16 = 27;

/// The Training tab's chart areas: (loss, accuracy, separation). The separation chart shows
/// once there is a figure: under the other two when `charts` is tall enough, else in place of
/// the accuracy chart when `swapped` (the `l` key).
pub fn chart_areas(
    charts: Rect,
    has_separation: bool,
    swapped: bool,
) -> (Rect, Option<Rect>, Option<Rect>) {
    if has_separation && charts.height >= THREE_CHARTS_HEIGHT {
        let [loss, accuracy, separation] =
            charts.layout(&Layout::vertical([Constraint::Fill(1); 3]));
        return (loss, Some(accuracy), Some(separation));
    }
    let [loss, second] = charts.layout(&Layout::vertical([Constraint::Fill(1); 2]));
    if has_separation && swapped {
        (loss, None, Some(second))
    } else {
        (loss, Some(second), None)
    }
}

/// " l separation " on the bottom border of the chart the separation chart can replace, right
/// aligned: the key is only in the help, so that the key bar stays as it was.
pub fn separation_hint(theme: &Theme, area: Rect, buf: &mut Buffer) {
    const HINT: &str = " l: separation ";
    let w = HINT.len() as u16;
    if area.height < 2 || area.width < w + 4 {
        return;
    }
    buf.set_string(area.right() - w - 1, area.bottom() - 1, HINT, theme.dim());
}

/// The chart of a [`SeparationSeries`].
pub struct SeparationChart<'a> {
    /// The figures.
    pub series: &'a SeparationSeries,
    /// The layer of the network's output (named "out"), 0 if unknown.
    pub output_layer: usize,
    /// Theme.
    pub theme: &'a Theme,
}

/// Class colours (by index) for the hidden and output layers, in order: blue, orange, green and
/// on; the pixels are the dim baseline.
const LAYER_COLOURS: [usize; 6] = [7, 1, 2, 4, 5, 6];

impl SeparationChart<'_> {
    /// The short name of a layer: "px" for the input pixels, "L3", "L4 out".
    pub fn layer_name(&self, layer: usize) -> String {
        if layer == 1 {
            "px".into()
        } else if layer == self.output_layer {
            format!("L{layer} out")
        } else {
            format!("L{layer}")
        }
    }

    fn style(&self, k: usize, layer: usize) -> Style {
        if layer == 1 {
            self.theme.dim()
        } else if self.theme.has_color() {
            Style::default().fg(self.theme.class(LAYER_COLOURS[k % LAYER_COLOURS.len()]))
        } else {
            Style::default()
        }
    }
}

impl Widget for &SeparationChart<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let mut legend = Vec::new();
        let mut k = 0;
        let datasets: Vec<Dataset> = self
            .series
            .layers
            .iter()
            .enumerate()
            .map(|(i, (layer, points))| {
                let style = self.style(k, *layer);
                if *layer != 1 {
                    k += 1;
                }
                let marker = theme.series_marker(i);
                let glyph = match marker {
                    Marker::Custom(c) => c,
                    _ => theme.glyphs.bullet,
                };
                legend.push((glyph, *layer, style));
                Dataset::default()
                    .marker(marker)
                    .graph_type(GraphType::Line)
                    .style(style)
                    .data(points)
            })
            .collect();
        // The first title that fits: the legend whole, never cut.
        let room = usize::from(area.width.saturating_sub(2));
        let title = [" class separation ", " separation ", " sep. "]
            .iter()
            .flat_map(|name| [(name, true), (name, false)])
            .map(|(name, long)| {
                let mut spans = vec![Span::styled(*name, theme.text())];
                for &(glyph, layer, style) in &legend {
                    let label = if long {
                        self.layer_name(layer)
                    } else if layer == 1 {
                        "px".into()
                    } else {
                        format!("L{layer}")
                    };
                    spans.push(Span::styled(format!("{glyph}{label} "), style));
                }
                Line::from(spans)
            })
            .find(|l| l.width() <= room)
            .unwrap_or_default();
        let last = self.series.last_epoch.max(1);
        let chart = Chart::new(datasets)
            .legend_position(None)
            .block(theme.block().title(title))
            .x_axis(
                Axis::default()
                    .style(theme.dim())
                    .bounds([0.0, last as f64])
                    .labels(["0".to_string(), format!("epoch {last}")]),
            )
            .y_axis(
                Axis::default()
                    .style(theme.dim())
                    .bounds([0.0, 1.0])
                    .labels(["0", "1"]),
            );
        chart.render(area, buf);
        if !theme.glyphs.unicode {
            // ratatui draws the axes in box-drawing lines of its own.
            asciify_area(buf, area);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_by_layer_and_epoch_a_repeated_epoch_replaces() {
        let mut s = SeparationSeries::default();
        s.push(&Separation {
            epoch: 1,
            shares: vec![(3, 0.8), (1, 0.85)],
        });
        s.push(&Separation {
            epoch: 0,
            shares: vec![(1, 0.85), (3, 0.4)],
        });
        s.push(&Separation {
            epoch: 1,
            shares: vec![(3, 0.9)],
        });
        assert_eq!(
            s.layers,
            vec![
                (1, vec![(0.0, 0.85), (1.0, 0.85)]),
                (3, vec![(0.0, 0.4), (1.0, 0.9)]),
            ]
        );
        assert_eq!(s.last_epoch, 1);
    }
}
