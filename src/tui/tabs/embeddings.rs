//! Embeddings: its state (one panel per layer, the linked selection, the colouring, the
//! perplexity of the next run), its keys, and its render: one braille t-SNE scatter per layer
//! side by side, a trust gauge under each, the selected image with its label, prediction and
//! probabilities.

use std::collections::BTreeMap;
use std::sync::Arc;

use crossterm::event::KeyCode;
use ndarray::{Array2, Axis};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use strum::{EnumIter, IntoEnumIterator};

use crate::compute::{Command, EmbedSnapshot, Event, ModelReport, Slots};
use crate::data::{Part, Split};
use crate::tui::app::{Action, Effect, Session, TAB_DIGITS};
use crate::tui::keys::{Binding, Show, bind};
use crate::tui::tabs::film::{self, Film, FilmAction};
use crate::tui::tabs::training::line_gauge;
use crate::tui::theme::Theme;
use crate::tui::widgets::{Heatmap, ProbabilityBars, Scale, Scatter};

use super::neighbours::{NeighboursView, panel_width};
use super::points::{self, MapPoints, Overlay};
use crate::tui::query::{Query, SYNTAX};

/// What colours the scatter points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, EnumIter)]
pub enum ColorBy {
    /// The true label.
    #[default]
    Label,
    /// The model's prediction.
    Prediction,
    /// Correct (green) or wrong (orange).
    Correctness,
    /// The probability of the predicted class, on a sequential scale (issue 13).
    Confidence,
}

impl ColorBy {
    /// The next mode in the cycle.
    pub fn next(self) -> ColorBy {
        ColorBy::iter()
            .cycle()
            .skip_while(|&c| c != self)
            .nth(1)
            .unwrap_or_default()
    }

    /// A short name.
    pub fn label(self) -> &'static str {
        match self {
            ColorBy::Label => "label",
            ColorBy::Prediction => "prediction",
            ColorBy::Correctness => "correct/wrong",
            ColorBy::Confidence => "confidence",
        }
    }
}

/// A direction for the selection cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Towards smaller x.
    Left,
    /// Towards larger x.
    Right,
    /// Towards larger y (up on screen).
    Up,
    /// Towards smaller y.
    Down,
}

/// What the Embeddings tab's keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingsAction {
    /// Move the selected point.
    Move(Direction),
    /// Select the next misclassified image.
    NextMisclassified,
    /// Select the previous misclassified image.
    PrevMisclassified,
    /// Explain the selected image in the Saliency tab.
    OpenSelected,
    /// Cycle what colours the scatter.
    CycleColorBy,
    /// Raise the perplexity (takes effect with re-run).
    PerplexityUp,
    /// Lower the perplexity.
    PerplexityDown,
    /// Re-run t-SNE on every layer.
    Rerun,
    /// Add or remove the input pixels as a panel (re-runs t-SNE).
    ToggleInputLayer,
    /// Focus the next scatter panel (the cursor moves in its picture).
    NextPanel,
    /// Switch the scatter between braille dots and class digits in class colours.
    ToggleGlyphs,
    /// A key of the film (issue 12: `tabs/film.rs`).
    Film(FilmAction),
    /// Type a filter (issue 13): `/`.
    Filter,
    /// A key while the filter is typed (the app sends every key here then).
    FilterKey(KeyCode),
    /// Show or hide the neighbours panel (issue 13): `v`.
    ToggleNeighbours,
    /// Esc: close the neighbours panel, else clear the filter (the app sends Esc here only
    /// when one of them is there to close).
    Close,
}

const fn act(a: EmbeddingsAction) -> Action {
    Action::Embeddings(a)
}

/// The Embeddings tab's keys.
pub const KEYS: &[Binding] = &[
    bind(
        &[KeyCode::Left, KeyCode::Char('h')],
        act(EmbeddingsAction::Move(Direction::Left)),
        "hjkl",
        "move",
    )
    .long("arrows = hjkl", "move"),
    bind(
        &[KeyCode::Down, KeyCode::Char('j')],
        act(EmbeddingsAction::Move(Direction::Down)),
        "j",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Up, KeyCode::Char('k')],
        act(EmbeddingsAction::Move(Direction::Up)),
        "k",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Right, KeyCode::Char('l')],
        act(EmbeddingsAction::Move(Direction::Right)),
        "l",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Char('n')],
        act(EmbeddingsAction::NextMisclassified),
        "n/N",
        "wrong",
    ),
    bind(
        &[KeyCode::Char('N')],
        act(EmbeddingsAction::PrevMisclassified),
        "N",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Enter],
        act(EmbeddingsAction::OpenSelected),
        "enter",
        "explain",
    ),
    bind(
        &[KeyCode::Char('c')],
        act(EmbeddingsAction::CycleColorBy),
        "c",
        "colour",
    ),
    bind(
        &[KeyCode::Char('+'), KeyCode::Char('=')],
        act(EmbeddingsAction::PerplexityUp),
        "+/-",
        "perplexity",
    ),
    bind(
        &[KeyCode::Char('-'), KeyCode::Char('_')],
        act(EmbeddingsAction::PerplexityDown),
        "-",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Char('r')],
        act(EmbeddingsAction::Rerun),
        "r",
        "re-run",
    ),
    bind(
        &[KeyCode::Char('i')],
        act(EmbeddingsAction::ToggleInputLayer),
        "i",
        "input layer",
    ),
    bind(
        &[KeyCode::Char('f')],
        act(EmbeddingsAction::NextPanel),
        "f",
        "focus panel",
    ),
    bind(
        &[KeyCode::Char('g')],
        act(EmbeddingsAction::ToggleGlyphs),
        "g",
        "dots/digits",
    ),
    film::KEYS[0],
    film::KEYS[1],
    film::KEYS[2],
    film::KEYS[3],
    film::KEYS[4],
    // Issue 13: neighbours and filter (last: the help gives the filter's syntax a line).
    bind(
        &[KeyCode::Char('v')],
        act(EmbeddingsAction::ToggleNeighbours),
        "v",
        "neighbours",
    )
    .long("v (esc hides)", "neighbours"),
    bind(
        &[KeyCode::Char('/')],
        act(EmbeddingsAction::Filter),
        "/",
        "filter",
    )
    .long(
        "/ (esc clears)",
        "filter: label=C pred=C wrong right conf<P conf>P test train",
    ),
    TAB_DIGITS[0],
    TAB_DIGITS[1],
    TAB_DIGITS[2],
];

/// One scatter panel: a layer's embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Layer, notebook numbering (1 = input).
    pub layer: usize,
    /// Its width in units.
    pub size: usize,
    /// Iterations done.
    pub iteration: usize,
    /// Iterations planned.
    pub n_iter: usize,
    /// KL divergence.
    pub kl_divergence: Option<f64>,
    /// n x 2 coordinates (empty until the first snapshot).
    pub coords: Array2<f32>,
    /// Neighbour preservation (k = 10), from `tsne::trust`.
    pub trust: Option<f64>,
    /// t-SNE finished.
    pub done: bool,
    /// The perplexity it was run with.
    pub perplexity: f64,
}

impl Panel {
    /// A panel waiting for t-SNE.
    fn waiting(layer: usize, size: usize, perplexity: f64) -> Panel {
        Panel {
            layer,
            size,
            iteration: 0,
            n_iter: 0,
            kl_divergence: None,
            coords: Array2::zeros((0, 2)),
            trust: None,
            done: false,
            perplexity,
        }
    }
}

/// The Embeddings tab's state.
#[derive(Debug, Clone, Default)]
pub struct EmbeddingsTab {
    /// One panel per embedded layer, by layer.
    pub panels: Vec<Panel>,
    /// Selected image (row of the embedded set: training row, `Split::embedded`).
    pub selected: usize,
    /// Panel whose picture the cursor moves in.
    pub focus: usize,
    /// What colours the points.
    pub color_by: ColorBy,
    /// Perplexity for the next run.
    pub perplexity: f64,
    /// Whether the input pixels get a panel.
    pub include_input: bool,
    /// Finished layouts of the current model by (layer, perplexity bits), kept when a re-run
    /// or `i` replaces the panels, so that only what is new is computed. t-SNE's seed is fixed
    /// for the session; a new model (a new training seed) drops them all.
    pub layouts: BTreeMap<(usize, u64), Panel>,
    /// The perplexity of the embeddings last asked of the worker: a panel started at another
    /// (a superseded run's event still in flight) is not shown.
    pub requested: Option<f64>,
    /// The user swapped the scatter's drawing away from the theme's default (braille dots, or
    /// digits in 16 colours where classes share hues): see [`EmbeddingsTab::draws_glyphs`].
    pub glyphs_swapped: bool,
    /// True label of each embedded image.
    pub labels: Vec<u8>,
    /// Prediction for each embedded image (empty until a model is ready).
    pub predictions: Vec<u8>,
    /// 1 where the prediction is right, 0 where wrong.
    pub correct: Vec<u8>,
    /// The film: each layer's map epoch by epoch (issue 12: `tabs/film.rs`).
    pub film: Film,
    /// Placed test images, the filter, the neighbours panel (issue 13).
    pub points: MapPoints,
}

impl EmbeddingsTab {
    /// Before any event, with the perplexity the worker starts with.
    pub fn new(perplexity: f64) -> EmbeddingsTab {
        EmbeddingsTab {
            perplexity,
            ..EmbeddingsTab::default()
        }
    }

    /// Whether the scatter draws each cell's group as its glyph (digit) in the group's colour
    /// rather than braille dots: the theme's default, swapped by `g`.
    pub fn draws_glyphs(&self, theme: &Theme) -> bool {
        theme.class_glyphs_by_default() != self.glyphs_swapped
    }

    /// The group of every point under the current colouring.
    pub fn groups(&self) -> &[u8] {
        match self.color_by {
            ColorBy::Label => &self.labels,
            ColorBy::Prediction if !self.predictions.is_empty() => &self.predictions,
            ColorBy::Correctness if !self.correct.is_empty() => &self.correct,
            _ => &self.labels,
        }
    }

    /// Apply one of the tab's actions.
    pub fn update(&mut self, action: EmbeddingsAction, session: &Session) -> Vec<Effect> {
        match action {
            EmbeddingsAction::Move(d) => self.move_selection(d),
            EmbeddingsAction::NextMisclassified => return self.jump_misclassified(true, session),
            EmbeddingsAction::PrevMisclassified => return self.jump_misclassified(false, session),
            EmbeddingsAction::OpenSelected if session.embed_n > 0 => {
                let (part, index) = self.selection();
                return vec![Effect::Explain {
                    part,
                    index,
                    class: None,
                    versus: None,
                }];
            }
            EmbeddingsAction::OpenSelected => {}
            EmbeddingsAction::CycleColorBy => self.color_by = self.color_by.next(),
            EmbeddingsAction::PerplexityUp | EmbeddingsAction::PerplexityDown => {
                let up = action == EmbeddingsAction::PerplexityUp;
                self.perplexity = next_perplexity(self.perplexity, up);
                return vec![Effect::Say(format!(
                    "perplexity {} (r re-runs t-SNE)",
                    self.perplexity
                ))];
            }
            EmbeddingsAction::Rerun => return self.rerun(session),
            EmbeddingsAction::ToggleInputLayer => {
                self.include_input = !self.include_input;
                return self.rerun(session);
            }
            EmbeddingsAction::ToggleGlyphs => self.glyphs_swapped = !self.glyphs_swapped,
            EmbeddingsAction::Film(a) => return self.film_update(a),
            EmbeddingsAction::Filter => {
                let text = self.points.filter.as_ref().map(|q| q.text.clone());
                self.points.editing = Some(text.unwrap_or_default());
            }
            EmbeddingsAction::FilterKey(code) => return self.filter_key(code, session),
            EmbeddingsAction::ToggleNeighbours => {
                self.points.show_neighbours = !self.points.show_neighbours;
            }
            EmbeddingsAction::Close => {
                if self.points.show_neighbours {
                    self.points.show_neighbours = false;
                } else if self.points.filter.take().is_some() {
                    self.sync_points(session);
                    return vec![Effect::Say("filter off".into())];
                }
            }
            EmbeddingsAction::NextPanel => {
                if !self.panels.is_empty() {
                    self.focus = (self.focus + 1) % self.panels.len();
                }
            }
        }
        Vec::new()
    }

    /// The data is in: the labels of the embedded rows.
    pub fn data_ready(&mut self, split: &Split, embed_n: usize) {
        self.labels = split.train.labels[split.embedded(embed_n)].to_vec();
    }

    /// A model is ready: its predictions, and empty panels for the layers to come.
    pub fn model_ready(&mut self, report: &Arc<ModelReport>) {
        self.predictions = report
            .embed_probs
            .rows()
            .into_iter()
            .map(|r| u8::try_from(argmax(r.as_slice().unwrap_or(&[]))).unwrap_or(0))
            .collect();
        self.correct = self
            .predictions
            .iter()
            .zip(&self.labels)
            .map(|(p, l)| u8::from(p == l))
            .collect();
        // Layouts of another model mean nothing for this one.
        self.layouts.clear();
        self.points.clear();
        self.plan_panels(&report.layer_sizes);
    }

    /// Take in a t-SNE event.
    pub fn on_event(&mut self, event: Event, slots: &Slots) {
        match event {
            Event::EmbedStarted {
                layer,
                size,
                perplexity,
            } if self
                .requested
                .is_none_or(|p| p.to_bits() == perplexity.to_bits()) =>
            {
                self.upsert_panel(Panel::waiting(layer, size, perplexity));
            }
            Event::EmbedProgress => {
                if let Some(snap) = slots.embedding.take() {
                    self.apply_embedding(snap, None, false);
                }
            }
            Event::EmbedDone {
                layer,
                embedding,
                trust,
                placed,
            } => {
                let _ = slots.embedding.take();
                let snapshot = EmbedSnapshot {
                    layer,
                    iteration: embedding.n_iter,
                    n_iter: embedding.n_iter,
                    kl_divergence: Some(embedding.kl_divergence),
                    coords: embedding.coords,
                };
                self.apply_embedding(snapshot, trust, true);
                if let Some(panel) = self.panels.iter().find(|p| p.layer == layer && p.done) {
                    self.points.map_done(layer, &panel.coords, placed);
                }
            }
            _ => {}
        }
    }

    /// Empty panels for the layers the worker will embed, so they stand side by side from the
    /// start and fill in as t-SNE reaches them.
    fn plan_panels(&mut self, sizes: &[usize]) {
        let first = if self.include_input { 1 } else { 2 };
        for layer in first..=sizes.len() {
            if self.panels.iter().any(|p| p.layer == layer) {
                continue;
            }
            self.upsert_panel(Panel::waiting(layer, sizes[layer - 1], self.perplexity));
        }
        self.focus = self.panels.len().saturating_sub(1);
    }

    /// Panels for the layers wanted at the current perplexity: a layout already computed is
    /// shown again as it was; only the missing layers are asked of the worker (all of them:
    /// `Command::Embed`; some: `Command::EmbedLayers`).
    fn rerun(&mut self, session: &Session) -> Vec<Effect> {
        for panel in self.panels.drain(..) {
            if panel.done {
                self.layouts
                    .insert((panel.layer, panel.perplexity.to_bits()), panel);
            }
        }
        self.requested = Some(self.perplexity);
        let sizes = session.layer_sizes();
        let first = if self.include_input { 1 } else { 2 };
        let mut missing = Vec::new();
        for layer in first..=sizes.len() {
            match self.layouts.get(&(layer, self.perplexity.to_bits())) {
                Some(panel) => self.upsert_panel(panel.clone()),
                None => {
                    self.upsert_panel(Panel::waiting(layer, sizes[layer - 1], self.perplexity));
                    missing.push(layer);
                }
            }
        }
        self.focus = self.panels.len().saturating_sub(1);
        let command = if missing.len() == self.panels.len() {
            Command::Embed {
                perplexity: self.perplexity,
                include_input: self.include_input,
            }
        } else {
            Command::EmbedLayers {
                perplexity: self.perplexity,
                include_input: self.include_input,
                layers: missing,
            }
        };
        vec![Effect::Send(command)]
    }

    fn upsert_panel(&mut self, panel: Panel) {
        match self.panels.binary_search_by_key(&panel.layer, |p| p.layer) {
            Ok(i) => self.panels[i] = panel,
            Err(i) => self.panels.insert(i, panel),
        }
        if self.focus >= self.panels.len() {
            self.focus = self.panels.len().saturating_sub(1);
        }
    }

    fn apply_embedding(&mut self, snap: EmbedSnapshot, trust: Option<f64>, done: bool) {
        // A finished panel is final (a layout kept from before, or a superseded run's late
        // event): a new run first replaces it by a waiting one.
        let Some(panel) = self
            .panels
            .iter_mut()
            .find(|p| p.layer == snap.layer && !p.done)
        else {
            return;
        };
        panel.iteration = snap.iteration;
        panel.n_iter = snap.n_iter;
        if snap.kl_divergence.is_some() {
            panel.kl_divergence = snap.kl_divergence;
        }
        panel.coords = snap.coords;
        panel.done = done;
        if done {
            panel.trust = trust;
        }
    }

    fn move_selection(&mut self, d: Direction) {
        // Among the map's own points and its placed test images (issue 13).
        let from = self.selected_point();
        let Some(panel) = self.shown_panels().get(self.focus) else {
            return;
        };
        let coords = self.points.coords_for(panel.layer, &panel.coords);
        if coords.nrows() <= from {
            return;
        }
        if let Some(u) = nearest_in_direction(coords, from, d) {
            self.select_point(u);
        }
    }

    /// n/N: the next wrong image (training or placed test), or the next match of the filter.
    fn jump_misclassified(&mut self, forward: bool, session: &Session) -> Vec<Effect> {
        if session.embed_n == 0 || session.model.is_none() {
            return Vec::new();
        }
        match self.points.walk(self.selected_point(), forward) {
            Some(u) => {
                self.select_point(u);
                Vec::new()
            }
            None if self.points.filter.is_some() => {
                vec![Effect::Say("no point matches the filter".into())]
            }
            None => vec![Effect::Say("no misclassified image".into())],
        }
    }

    /// The selected image: an embedded training image or a placed test image (issue 13).
    pub fn selection(&self) -> (Part, usize) {
        match self.points.selected_test {
            Some(j) => (Part::Test, j),
            None => (Part::Train, self.selected),
        }
    }

    /// The selection as a point of the maps (training images first, then placed test images).
    pub fn selected_point(&self) -> usize {
        self.points
            .selected_test
            .map_or(self.selected, |j| self.labels.len() + j)
    }

    /// Select point `u` of the maps.
    fn select_point(&mut self, u: usize) {
        match MapPoints::point(self.labels.len(), u) {
            (Part::Train, i) => {
                self.selected = i;
                self.points.selected_test = None;
            }
            (Part::Test, j) => self.points.selected_test = Some(j),
        }
    }

    /// Select an image from elsewhere (the error browser's `e`); a message when it is not in
    /// the maps.
    pub fn show(&mut self, part: Part, index: usize, session: &Session) -> Option<String> {
        let n = self.labels.len();
        match part {
            Part::Train if index < n => self.select_point(index),
            Part::Test if index < self.points.n_placed() => self.select_point(n + index),
            Part::Train => return Some(format!("training image {index} is not embedded")),
            Part::Test if self.points.n_placed() == 0 => {
                return Some(format!(
                    "test image {index} is not in the maps: no test images are placed"
                ));
            }
            Part::Test => {
                return Some(format!(
                    "test image {index} is not in the maps: only test images 0-{} are placed",
                    self.points.n_placed() - 1
                ));
            }
        }
        self.sync_points(session);
        None
    }

    /// Recompute the points' groups, the filter's matches and the neighbours panel (after any
    /// action or event: cheap, and never while drawing).
    pub fn sync_points(&mut self, session: &Session) {
        self.points
            .sync(session, &self.labels, &self.predictions, self.color_by);
        let u = self.selected_point();
        let layer = self.panels.get(self.focus).map(|p| (p.layer, &p.coords));
        self.points
            .refresh_neighbours(session, self.labels.len(), u, layer);
    }

    /// A key while the filter is typed: Enter applies it (a bad query says which term and
    /// stays open), Esc cancels, Backspace deletes.
    fn filter_key(&mut self, code: KeyCode, session: &Session) -> Vec<Effect> {
        let Some(text) = self.points.editing.as_mut() else {
            return Vec::new();
        };
        match code {
            KeyCode::Char(c) => text.push(c),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Esc => self.points.editing = None,
            KeyCode::Enter => {
                let text = text.clone();
                if text.trim().is_empty() {
                    self.points.editing = None;
                    self.points.filter = None;
                    return vec![Effect::Say("filter off".into())];
                }
                match Query::parse(&text, session.class_names(), session.n_classes()) {
                    Ok(q) => {
                        self.points.editing = None;
                        self.points.filter = Some(q);
                        self.sync_points(session);
                        let k = self.points.matches.iter().filter(|&&m| m).count();
                        return vec![Effect::Say(format!(
                            "{k} of {} points match (n/N walk them, / then enter on nothing clears)",
                            self.points.matches.len()
                        ))];
                    }
                    Err(e) => return vec![Effect::Say(e.to_string())],
                }
            }
            _ => {}
        }
        Vec::new()
    }
}

/// Index of the largest value (the engine's rule).
fn argmax(values: &[f32]) -> usize {
    crate::nn::argmax(values)
}

/// The next perplexity on a 1-2-3-5-10-20-30-50 ladder.
fn next_perplexity(p: f64, up: bool) -> f64 {
    const LADDER: [f64; 10] = [1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0];
    if up {
        LADDER.iter().copied().find(|&l| l > p + 1e-9).unwrap_or(p)
    } else {
        LADDER
            .iter()
            .rev()
            .copied()
            .find(|&l| l < p - 1e-9)
            .unwrap_or(p)
    }
}

/// The point nearest to `from` in direction `d`: within a 45-degree cone if any, else within
/// a 63-degree one (at most two steps across per step along); `None` when nothing lies that
/// way, so that the cursor stays put at the edge of a cloud instead of wandering sideways.
pub fn nearest_in_direction(coords: &Array2<f32>, from: usize, d: Direction) -> Option<usize> {
    let origin = coords.row(from);
    let (ox, oy) = (origin[0], origin[1]);
    let mut in_cone: Option<(usize, f32)> = None;
    let mut wide: Option<(usize, f32)> = None;
    for (i, p) in coords.axis_iter(Axis(0)).enumerate() {
        if i == from {
            continue;
        }
        let (dx, dy) = (p[0] - ox, p[1] - oy);
        let (along, across) = match d {
            Direction::Right => (dx, dy),
            Direction::Left => (-dx, dy),
            Direction::Up => (dy, dx),
            Direction::Down => (-dy, dx),
        };
        if along <= 0.0 {
            continue;
        }
        let dist = along * along + across * across;
        if across.abs() <= along && in_cone.is_none_or(|(_, b)| dist < b) {
            in_cone = Some((i, dist));
        }
        let score = along + 2.0 * across.abs();
        if across.abs() <= 2.0 * along && wide.is_none_or(|(_, b)| score < b) {
            wide = Some((i, score));
        }
    }
    in_cone.or(wide).map(|(i, _)| i)
}

/// The Embeddings tab drawn from its state and the session.
pub struct EmbeddingsView<'a> {
    /// The tab's state.
    pub tab: &'a EmbeddingsTab,
    /// What the tabs share.
    pub session: &'a Session,
    /// Theme.
    pub theme: &'a Theme,
}

impl Widget for &EmbeddingsView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        // Room for the digit at full size (28 cells) when the terminal is large.
        let side_w = if area.width >= 110 && area.height >= 28 {
            32
        } else {
            24
        };
        // Issue 13: the neighbours panel takes two thumbnails a row.
        let side_w = if self.tab.points.show_neighbours {
            panel_width(area)
        } else {
            side_w
        };
        let [main, side] = area.layout(&Layout::horizontal([
            Constraint::Fill(1),
            Constraint::Length(side_w),
        ]));
        let [panels_area, timeline, legend] = main.layout(&Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(self.tab.timeline_rows()),
            Constraint::Length(1),
        ]));
        self.tab.render_timeline(theme, timeline, buf);
        let panels = self.tab.shown_panels();
        if panels.is_empty() {
            let text = if self.session.model.is_some() {
                "t-SNE starting..."
            } else {
                "t-SNE of each layer starts when training ends"
            };
            Paragraph::new(text)
                .style(theme.dim())
                .block(theme.block().title(" layers "))
                .render(panels_area, buf);
        } else {
            let n = u32::try_from(panels.len()).unwrap_or(1);
            let areas =
                Layout::horizontal(vec![Constraint::Ratio(1, n); panels.len()]).split(panels_area);
            for (i, (panel, &a)) in panels.iter().zip(areas.iter()).enumerate() {
                self.render_panel(panel, i == self.tab.focus, a, buf);
            }
        }
        if let Some(text) = &self.tab.points.editing {
            render_prompt(text, theme, legend, buf);
        } else {
            self.render_legend(legend, buf);
        }
        if self.tab.points.show_neighbours {
            (&NeighboursView {
                list: self.tab.points.neighbours.as_ref(),
                predictions: &self.tab.predictions,
                session: self.session,
                theme,
            })
                .render(side, buf);
        } else {
            self.render_selection(side, buf);
        }
    }
}

/// The filter being typed, with its syntax (issue 13).
fn render_prompt(text: &str, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let cursor = if theme.glyphs.unicode { "▏" } else { "_" };
    Line::from(vec![
        Span::styled(format!("/{text}"), theme.key()),
        Span::styled(cursor, theme.key()),
        Span::styled(format!("  {SYNTAX} · enter · esc"), theme.dim()),
    ])
    .render(area, buf);
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
        ColorBy::Confidence => points::confidence_color(theme, g),
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

impl EmbeddingsView<'_> {
    fn render_panel(&self, panel: &Panel, focused: bool, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let name = if panel.layer == 1 {
            "input".to_string()
        } else if panel.layer > 1 && panel.layer == self.session.layer_sizes().len() {
            format!("L{} out", panel.layer)
        } else {
            format!("L{}", panel.layer)
        };
        let kl = panel
            .kl_divergence
            .map_or(String::new(), |k| format!(" KL {k:.2}"));
        let (block, title_style) = if focused {
            (theme.focused_block(), theme.key())
        } else {
            (theme.block(), theme.text())
        };
        // The first of these that fits between the corners: a field goes whole, never a cut
        // number.
        let room = usize::from(area.width.saturating_sub(2));
        let fit = |options: Vec<String>| {
            options
                .into_iter()
                .find(|t| t.chars().count() <= room)
                .unwrap_or_default()
        };
        let title = fit(vec![
            format!(" {} ", theme.join(&[&name, &panel.size.to_string()])),
            format!(" {name} "),
        ]);
        // A frame of the film: the timeline says which epoch.
        let bottom = if self.tab.shown_epoch().is_some() {
            fit(vec![format!("{kl} ")])
        } else if panel.done {
            fit(vec![format!("{kl} done "), format!("{kl} ")])
        } else if panel.n_iter == 0 {
            String::new()
        } else {
            fit(vec![
                format!(" it {}/{}{kl} ", panel.iteration, panel.n_iter),
                format!(" it {}/{} ", panel.iteration, panel.n_iter),
            ])
        };
        let block = block
            .title(Line::styled(title, title_style))
            .title_bottom(Line::styled(bottom, theme.dim()));
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
        let by = self.tab.color_by;
        // Issue 13: the map's placed test images after its own points, the filter's misses
        // in the dim group.
        let pts = &self.tab.points;
        let coords = pts.coords_for(panel.layer, &panel.coords);
        let groups = pts
            .groups
            .get(..coords.nrows())
            .unwrap_or(self.tab.groups());
        let dim = pts.filter.as_ref().map(|_| pts.dim_group);
        let color = |g: u8| match dim {
            Some(d) if g == d => theme.dim().fg.unwrap_or(Color::Reset),
            _ => group_color(theme, by, g),
        };
        let glyph = |g: u8| match dim {
            Some(d) if g == d => theme.glyphs.empty_cell,
            _ if by == ColorBy::Confidence => points::confidence_glyph(theme, g),
            _ => group_glyph(by, g),
        };
        let scatter = Scatter {
            coords,
            groups,
            color: &color,
            glyph: &glyph,
            selected: Some(self.tab.selected_point()),
            // The wrong predictions are what the correct/wrong colouring is for.
            emphasis: (by == ColorBy::Correctness).then_some(0),
            glyphs: self.tab.draws_glyphs(theme),
            theme,
        };
        self.tab.render_scatter(&scatter, panel.layer, plot, buf);
        Overlay {
            scatter: &scatter,
            points: pts,
            selected: self.tab.selected_point(),
            bounds: self.tab.scatter_bounds(panel.layer),
        }
        .render(plot, buf);
        render_trust(panel.trust, theme, trust, buf);
    }

    fn render_legend(&self, area: Rect, buf: &mut Buffer) {
        // Too wide for the room left of the side panel (80x24): shorter words, then fewer.
        let line = (0..2)
            .map(|level| self.legend(level))
            .find(|l| l.width() <= usize::from(area.width))
            .unwrap_or_else(|| self.legend(2));
        line.render(area, buf);
    }

    /// The legend line at a level of brevity: 0 full, 1 short words ("perp", "wrong"), 2 also
    /// without what colours the points (the colours say it).
    fn legend(&self, level: u8) -> Line<'static> {
        let theme = self.theme;
        let short = level > 0;
        let word = if short { "perp" } else { "perplexity" };
        let by = self.tab.color_by;
        // The maps show the perplexity they were run with; a change waits for r.
        let shown = self
            .tab
            .panels
            .first()
            .map_or(self.tab.perplexity, |p| p.perplexity);
        let perplexity = if (shown - self.tab.perplexity).abs() > 1e-9 {
            format!("{word} {shown} (next {}: r re-runs)", self.tab.perplexity)
        } else {
            format!("{word} {shown}")
        };
        let head = if level > 1 {
            perplexity
        } else {
            theme.join(&[&perplexity, by.label()])
        };
        let mut spans = vec![Span::styled(format!("{head} "), theme.dim())];
        match by {
            ColorBy::Confidence => spans.extend(points::confidence_legend(theme)),
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
                for c in 0..self.session.n_classes() {
                    let g = u8::try_from(c).unwrap_or(0);
                    let glyph = if theme.braille && !self.tab.draws_glyphs(theme) {
                        theme.glyphs.bullet
                    } else {
                        group_glyph(by, g)
                    };
                    spans.push(Span::styled(
                        format!("{glyph}{} ", self.session.class_name(c)),
                        Style::default().fg(group_color(theme, by, g)),
                    ));
                }
            }
        }
        if self.tab.include_input {
            spans.push(Span::styled(" +input", theme.dim()));
        }
        // Issue 13: the placed test images' marker and the filter.
        if self.tab.points.n_placed() > 0 {
            spans.push(Span::styled(
                format!(
                    " {}{}",
                    points::wrong_test_glyph(theme),
                    if short { "wrong" } else { "test wrong" }
                ),
                theme.text(),
            ));
        }
        if let Some(q) = &self.tab.points.filter {
            let k = self.tab.points.matches.iter().filter(|&&m| m).count();
            spans.push(Span::styled(format!(" /{}: {k}", q.text), theme.key()));
        }
        Line::from(spans)
    }

    fn render_selection(&self, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let (part, i) = self.tab.selection();
        let title = match part {
            Part::Train => format!(" image {i} "),
            Part::Test => format!(" test image {i} "),
        };
        let block = theme.block().title(title);
        let inner = block.inner(area);
        block.render(area, buf);
        let Some((pixels, label)) = self.session.image(part, i) else {
            Paragraph::new("loading")
                .style(theme.dim())
                .render(inner, buf);
            return;
        };
        let shape = self.session.image_shape();
        let n_classes = self.session.n_classes();
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
        if let Some(px) = pixels.to_slice() {
            let heatmap = Heatmap {
                pixels: px,
                rows: shape.0,
                cols: shape.1,
                scale: Scale::Gray { min: 0.0, max: 1.0 },
                theme,
            };
            (&heatmap).render(image, buf);
        }
        let pred = match part {
            Part::Train => self.tab.predictions.get(i).copied(),
            Part::Test => self
                .tab
                .points
                .facts
                .get(self.tab.selected_point())
                .map(|f| f.pred),
        };
        let mut spans = vec![
            Span::styled("label ", theme.dim()),
            Span::styled(
                self.session.class_name(usize::from(label)),
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
            let name = self.session.class_name(usize::from(p));
            spans.push(Span::styled(format!("{name}{mark}"), style));
        }
        Line::from(spans).render(info, buf);
        if let Some(probs) = self.session.probabilities(part, i)
            && let Some(p) = probs.to_slice()
        {
            (&ProbabilityBars {
                probs: p,
                marked: pred.map(usize::from),
                names: self.session.class_names(),
                theme,
            })
                .render(bars, buf);
        }
    }
}

/// "trust ━━━━──── 0.62": the share of 10 nearest neighbours kept in 2-D.
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
    let value = format!("{t:.2}");
    let value_w = u16::try_from(value.len()).unwrap_or(u16::MAX);
    // Too narrow for a bar: the number alone, whole, or nothing (never a cut number).
    if area.width < value_w + 7 {
        if area.width >= value_w {
            buf.set_string(area.x, area.y, &value, theme.quality(t));
        }
        return;
    }
    let [bar, tail] = area.layout(&Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(value_w + 1),
    ]));
    // Coloured by value: red below 0.3, yellow below 0.6, green above (see the help).
    line_gauge(t, "trust".to_string(), theme, theme.quality(t)).render(bar, buf);
    buf.set_string(tail.x + 1, tail.y, &value, theme.text());
}
