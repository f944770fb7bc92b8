//! The film of the Embeddings tab (issue 12): every layer's map at epoch 0 and after every
//! epoch (`Event::Frame`), the stop shown (an epoch, or the final map computed after training),
//! following training, playing, and what the timeline and the panels draw from it. The UI only
//! stores the frames (n x 2 floats per layer and epoch: 1,500 points, 3 layers and 200 epochs
//! are 7 MB) and draws them; the worker makes them.

use std::collections::BTreeMap;
use std::time::Duration;

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use crate::compute::{EpochMetrics, Frame};
use crate::tui::app::{Action, Effect};
use crate::tui::keys::{Binding, Show, bind};
use crate::tui::tabs::embeddings::{EmbeddingsAction, EmbeddingsTab, Panel};
use crate::tui::theme::Theme;
use crate::tui::widgets::scatter::{Bounds, Scatter, bounds_of};
use crate::tui::widgets::timeline::{Stop, Timeline};

/// How long each stop shows while the film plays: about 3 stops a second, so a default run's
/// 38 stops take 11 s, slow enough to follow one cluster.
pub const PLAY_STEP: Duration = Duration::from_millis(300);

/// Earlier positions of the selected image drawn as its trail (the frames before the one shown).
pub const TRAIL: usize = 4;

/// Rows of the timeline under the panels.
pub const TIMELINE_ROWS: u16 = 3;

/// What the film's keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilmAction {
    /// One stop back (pauses).
    Back,
    /// One stop forward (pauses).
    Forward,
    /// The first frame, epoch 0 (pauses).
    First,
    /// The last stop, and follow what comes (pauses).
    Last,
    /// Play from the stop shown (from the first at the end), or pause.
    TogglePlay,
}

const fn act(a: FilmAction) -> Action {
    Action::Embeddings(EmbeddingsAction::Film(a))
}

/// The film's keys, in the Embeddings tab's table, shown in the help only: the timeline shows
/// its keys itself, and the key bar keeps its room for the tab's other keys.
pub const KEYS: [Binding; 5] = [
    bind(
        &[KeyCode::Char(',')],
        act(FilmAction::Back),
        ", .",
        "epoch back/forward",
    )
    .shown(Show::Help),
    bind(&[KeyCode::Char('.')], act(FilmAction::Forward), ".", "").shown(Show::Hidden),
    bind(
        &[KeyCode::Home, KeyCode::Char('<')],
        act(FilmAction::First),
        "home/end, < >",
        "first/last frame",
    )
    .shown(Show::Help),
    bind(
        &[KeyCode::End, KeyCode::Char('>')],
        act(FilmAction::Last),
        "end",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Char('p')],
        act(FilmAction::TogglePlay),
        "p",
        "play/pause film",
    )
    .shown(Show::Help),
];

/// The film: frames by epoch, the test accuracy by epoch, the stop shown.
#[derive(Debug, Clone, Default)]
pub struct Film {
    /// The frames of each epoch, one panel per layer, by layer.
    pub frames: BTreeMap<usize, Vec<Panel>>,
    /// Bounds of each frame by (layer, epoch).
    frame_bounds: BTreeMap<(usize, usize), Bounds>,
    /// One data rectangle per layer over all its frames: the points of a layer move on one
    /// scale through the film instead of jumping when a frame's extent changes.
    pub bounds: BTreeMap<usize, Bounds>,
    /// Test accuracy after each epoch, by epoch.
    pub test_accuracy: Vec<(usize, f64)>,
    /// Epochs trained so far.
    pub trained: usize,
    /// Layer sizes of the network being trained, input first.
    pub layer_sizes: Vec<usize>,
    /// The stop shown; `None` follows the newest (the last stop).
    pub at: Option<Stop>,
    /// The film plays (one stop per [`PLAY_STEP`]).
    pub playing: bool,
}

impl Film {
    /// A training run starts: the frames of the last one mean nothing for it.
    pub fn training_started(&mut self, layer_sizes: &[usize]) {
        *self = Film {
            layer_sizes: layer_sizes.to_vec(),
            ..Film::default()
        };
    }

    /// One epoch finished: its test accuracy for the sparkline.
    pub fn epoch(&mut self, m: &EpochMetrics) {
        self.trained = m.epoch;
        if let Some(a) = m.test_accuracy {
            match self.test_accuracy.binary_search_by_key(&m.epoch, |p| p.0) {
                Ok(i) => self.test_accuracy[i].1 = a,
                Err(i) => self.test_accuracy.insert(i, (m.epoch, a)),
            }
        }
    }

    /// Take in a frame (a frame seen again replaces the old one: a recomputed film).
    pub fn frame(&mut self, f: Frame, perplexity: f64) {
        let size = self
            .layer_sizes
            .get(f.layer.wrapping_sub(1))
            .copied()
            .unwrap_or(0);
        let key = (f.layer, f.epoch);
        match bounds_of(&f.coords) {
            Some(b) => self.frame_bounds.insert(key, b),
            None => self.frame_bounds.remove(&key),
        };
        let layer = f.layer;
        let panel = Panel {
            layer,
            size,
            iteration: 0,
            n_iter: 0,
            kl_divergence: f.kl_divergence,
            coords: f.coords,
            trust: f.trust,
            done: true,
            perplexity,
        };
        let panels = self.frames.entry(f.epoch).or_default();
        match panels.binary_search_by_key(&layer, |p| p.layer) {
            Ok(i) => panels[i] = panel,
            Err(i) => panels.insert(i, panel),
        }
        let union = self
            .frame_bounds
            .range((layer, 0)..=(layer, usize::MAX))
            .map(|(_, b)| *b)
            .reduce(|a, b| {
                [
                    a[0].min(b[0]),
                    a[1].max(b[1]),
                    a[2].min(b[2]),
                    a[3].max(b[3]),
                ]
            });
        match union {
            Some(u) => self.bounds.insert(layer, u),
            None => self.bounds.remove(&layer),
        };
    }

    /// Every stop in order: the epochs with a frame, then the final map when there is one.
    pub fn stops(&self, has_final: bool) -> Vec<Stop> {
        let mut stops: Vec<Stop> = self.frames.keys().map(|&e| Stop::Epoch(e)).collect();
        if has_final && !stops.is_empty() {
            stops.push(Stop::Final);
        }
        stops
    }

    /// The stop shown: the one chosen, or the newest when following. `None` without frames.
    pub fn shown(&self, has_final: bool) -> Option<Stop> {
        if self.frames.is_empty() {
            return None;
        }
        self.at.or_else(|| {
            Some(if has_final {
                Stop::Final
            } else {
                Stop::Epoch(self.last_frame())
            })
        })
    }

    /// The epoch of the newest frame.
    fn last_frame(&self) -> usize {
        self.frames.keys().next_back().copied().unwrap_or(0)
    }

    /// Apply a film key; what the user is told.
    pub fn update(&mut self, action: FilmAction, has_final: bool) -> Vec<Effect> {
        let stops = self.stops(has_final);
        let Some(last) = stops.len().checked_sub(1) else {
            self.playing = false;
            return vec![Effect::Say(
                "no film yet: its frames come as training runs".into(),
            )];
        };
        let current = self
            .at
            .and_then(|s| stops.iter().position(|&x| x == s))
            .unwrap_or(last);
        let target = match action {
            FilmAction::Back => current.saturating_sub(1),
            FilmAction::Forward => (current + 1).min(last),
            FilmAction::First => 0,
            FilmAction::Last => last,
            FilmAction::TogglePlay if self.playing => current,
            // At the end, play from the start.
            FilmAction::TogglePlay if current == last => 0,
            FilmAction::TogglePlay => current,
        };
        self.playing = action == FilmAction::TogglePlay && !self.playing && last > 0;
        // The last stop follows what comes next.
        self.at = (target != last).then(|| stops[target]);
        Vec::new()
    }

    /// The app's clock while playing: the next stop; the film stops at the last one (and
    /// follows from there). Whether anything changed.
    pub fn tick(&mut self, has_final: bool) -> bool {
        if !self.playing {
            return false;
        }
        let stops = self.stops(has_final);
        let last = stops.len().saturating_sub(1);
        let current = self
            .at
            .and_then(|s| stops.iter().position(|&x| x == s))
            .unwrap_or(last);
        let next = (current + 1).min(last);
        self.at = (next != last).then(|| stops[next]);
        if next == last {
            self.playing = false;
        }
        true
    }

    /// Earlier positions of image `selected` in `layer`, from the frames before `epoch`,
    /// newest first (at most [`TRAIL`]).
    pub fn trail(&self, layer: usize, epoch: usize, selected: usize) -> Vec<[f32; 2]> {
        self.frames
            .range(..epoch)
            .rev()
            .take(TRAIL)
            .filter_map(|(_, panels)| {
                let p = panels.iter().find(|p| p.layer == layer)?;
                (selected < p.coords.nrows())
                    .then(|| [p.coords[[selected, 0]], p.coords[[selected, 1]]])
            })
            .collect()
    }

    /// The test accuracy after `epoch`, if measured.
    fn accuracy_at(&self, epoch: usize) -> Option<f64> {
        self.test_accuracy
            .binary_search_by_key(&epoch, |p| p.0)
            .ok()
            .map(|i| self.test_accuracy[i].1)
    }

    /// The timeline's status line: what is shown ("following training: epoch 12, frame 9").
    pub fn status(&self, has_final: bool, theme: &Theme) -> String {
        let acc = |e: usize| {
            self.accuracy_at(e)
                .map(|a| format!("test {:.1}%", a * 100.0))
        };
        let play = if self.playing {
            if theme.glyphs.unicode { "▶ " } else { "> " }
        } else {
            ""
        };
        match self.shown(has_final) {
            None => String::new(),
            Some(Stop::Final) => {
                let last = self.test_accuracy.last().map(|&(e, _)| e);
                let mut fields = vec!["final map (t-SNE after training)".to_string()];
                fields.extend(last.and_then(acc));
                format!(
                    "{play}{}",
                    theme.join(&fields.iter().map(String::as_str).collect::<Vec<_>>())
                )
            }
            Some(Stop::Epoch(e)) if self.at.is_none() && !has_final => {
                format!("following training: epoch {}, frame {e}", self.trained)
            }
            Some(Stop::Epoch(e)) => {
                let last = self.trained.max(self.last_frame());
                let mut fields = vec![format!("epoch {e} of {last}")];
                fields.extend(acc(e));
                if e == 0 {
                    fields.push("untrained".into());
                }
                format!(
                    "{play}{}",
                    theme.join(&fields.iter().map(String::as_str).collect::<Vec<_>>())
                )
            }
        }
    }
}

impl EmbeddingsTab {
    /// Whether the final maps (computed after training) are there: the timeline's last stop.
    pub fn has_final(&self) -> bool {
        !self.panels.is_empty()
    }

    /// The panels shown: the frames of the epoch shown, or the final maps.
    pub fn shown_panels(&self) -> &[Panel] {
        match self.film.shown(self.has_final()) {
            Some(Stop::Epoch(e)) => self.film.frames.get(&e).map_or(&[], Vec::as_slice),
            _ => &self.panels,
        }
    }

    /// The epoch shown, when the panels show a frame of the film.
    pub fn shown_epoch(&self) -> Option<usize> {
        match self.film.shown(self.has_final()) {
            Some(Stop::Epoch(e)) => Some(e),
            _ => None,
        }
    }

    /// Apply a film key.
    pub fn film_update(&mut self, action: FilmAction) -> Vec<Effect> {
        let has_final = self.has_final();
        self.film.update(action, has_final)
    }

    /// The app's clock: the next stop while playing; whether anything changed.
    pub fn film_tick(&mut self) -> bool {
        let has_final = self.has_final();
        self.film.tick(has_final)
    }

    /// Draw a panel's scatter: a frame on its layer's scale across the film with the selected
    /// image's trail; the final map on its own scale (a separate run, not aligned with the
    /// frames).
    pub fn render_scatter(&self, scatter: &Scatter, layer: usize, area: Rect, buf: &mut Buffer) {
        match self.shown_epoch() {
            Some(e) => {
                let trail = self.film.trail(layer, e, self.selected);
                scatter.render_within(area, buf, self.scatter_bounds(layer), &trail);
            }
            None => scatter.render_within(area, buf, None, &[]),
        }
    }

    /// The data rectangle `layer`'s scatter is drawn with: the film's for a frame, the points'
    /// own (`None`) for a final map.
    pub fn scatter_bounds(&self, layer: usize) -> Option<Bounds> {
        self.shown_epoch()
            .and_then(|_| self.film.bounds.get(&layer).copied())
    }

    /// The timeline under the panels (nothing without frames).
    pub fn render_timeline(&self, theme: &Theme, area: Rect, buf: &mut Buffer) {
        if self.film.frames.is_empty() {
            return;
        }
        let has_final = self.has_final();
        let epochs: Vec<usize> = self.film.frames.keys().copied().collect();
        let status = self.film.status(has_final, theme);
        let hints = if self.film.playing {
            ", . epoch  p pause"
        } else {
            ", . epoch  p play"
        };
        let timeline = Timeline {
            epochs: &epochs,
            accuracy: &self.film.test_accuracy,
            last_epoch: self.film.trained.max(self.film.last_frame()),
            has_final,
            shown: self.film.shown(has_final),
            status: &status,
            hints,
            theme,
        };
        ratatui::widgets::Widget::render(&timeline, area, buf);
    }

    /// Rows the timeline takes (none without frames).
    pub fn timeline_rows(&self) -> u16 {
        if self.film.frames.is_empty() {
            0
        } else {
            TIMELINE_ROWS
        }
    }
}

impl crate::tui::tabs::training::TrainingTab {
    /// `l` in the Training tab: the class separation chart in place of the accuracy chart (both
    /// show when the terminal is tall enough: see `widgets::separation::chart_areas`).
    pub fn toggle_separation(&mut self) -> Vec<Effect> {
        self.show_separation = !self.show_separation;
        if self.separation.is_empty() {
            return vec![Effect::Say(
                "class separation: no figure yet (one per epoch, with the film)".into(),
            )];
        }
        Vec::new()
    }
}
