//! App state, the [`Action`]s keys map to, and the one [`App::update`] that changes state. No I/O
//! here: updates return the [`Command`]s for the worker, and worker [`Event`]s come in through
//! [`App::on_event`], so everything is testable without a terminal.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ndarray::{Array2, ArrayView1, Axis};

use crate::compute::{
    Command, EmbedSnapshot, EpochMetrics, Event, ExplainRequest, JobKind, Method, ModelReport,
    SaliencySnapshot, Slots, StopReason,
};
use crate::data::{Part, Split};

/// A test metric the engine may not have (no test split): `None` then. Takes the engine's
/// `Option<f64>` as it is, and reads a non-finite value as missing.
pub fn metric(v: impl Into<Option<f64>>) -> Option<f64> {
    v.into().filter(|v| v.is_finite())
}

/// The attribution methods in the order `m` cycles through them, the engine's default first.
pub const METHODS: [Method; 4] = [
    Method::Permutation,
    Method::GradientTimesInput,
    Method::IntegratedGradients,
    Method::Notebook,
];

/// The method after `m` in [`METHODS`].
pub fn next_method(m: Method) -> Method {
    let i = METHODS.iter().position(|&x| x == m).unwrap_or(0);
    METHODS[(i + 1) % METHODS.len()]
}

/// A short name of a method, for titles.
pub fn method_label(m: Method) -> &'static str {
    match m {
        Method::Notebook => "notebook Shapley",
        Method::Permutation => "permutation Shapley",
        Method::GradientTimesInput => "gradient x input",
        Method::IntegratedGradients => "integrated gradients",
    }
}

/// The three tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    /// Loss and accuracy curves, progress, confusion matrix.
    #[default]
    Training,
    /// A t-SNE scatter per layer.
    Embeddings,
    /// An image beside its saliency map.
    Saliency,
}

impl Tab {
    /// Every tab, in order.
    pub const ALL: [Tab; 3] = [Tab::Training, Tab::Embeddings, Tab::Saliency];

    /// The tab to the right (wrapping).
    pub fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % 3]
    }

    /// The tab to the left (wrapping).
    pub fn prev(self) -> Tab {
        Tab::ALL[(self.index() + 2) % 3]
    }

    /// Position in [`Tab::ALL`].
    pub fn index(self) -> usize {
        match self {
            Tab::Training => 0,
            Tab::Embeddings => 1,
            Tab::Saliency => 2,
        }
    }

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Training => "Training",
            Tab::Embeddings => "Embeddings",
            Tab::Saliency => "Saliency",
        }
    }

    /// Parse `training`, `embeddings` or `saliency` (or a prefix, or 1/2/3).
    pub fn parse(s: &str) -> Option<Tab> {
        let s = s.to_ascii_lowercase();
        Tab::ALL.into_iter().enumerate().find_map(|(i, t)| {
            let title = t.title().to_ascii_lowercase();
            (!s.is_empty() && (title.starts_with(&s) || s == (i + 1).to_string())).then_some(t)
        })
    }
}

/// What colours the scatter points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorBy {
    /// The true label.
    #[default]
    Label,
    /// The model's prediction.
    Prediction,
    /// Correct (green) or wrong (orange).
    Correctness,
}

impl ColorBy {
    /// The next mode in the cycle.
    pub fn next(self) -> ColorBy {
        match self {
            ColorBy::Label => ColorBy::Prediction,
            ColorBy::Prediction => ColorBy::Correctness,
            ColorBy::Correctness => ColorBy::Label,
        }
    }

    /// A short name.
    pub fn label(self) -> &'static str {
        match self {
            ColorBy::Label => "label",
            ColorBy::Prediction => "prediction",
            ColorBy::Correctness => "correct/wrong",
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

/// Which split an explained image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageSet {
    /// The test split (left/right browse it).
    #[default]
    Test,
    /// The embedded training images (arrived from the Embeddings tab).
    Train,
}

/// Everything a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Quit the app and stop the worker.
    Quit,
    /// Close the help overlay (Esc with help open).
    CloseHelp,
    /// Show or hide every key.
    ToggleHelp,
    /// Next tab.
    NextTab,
    /// Previous tab.
    PrevTab,
    /// A given tab.
    GoTo(Tab),
    /// Pause or resume training.
    TogglePause,
    /// Stop training now and keep the model so far.
    StopTraining,
    /// Train again with the next seed.
    RestartTraining,
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
    /// Previous image.
    PrevImage,
    /// Next image.
    NextImage,
    /// Explain this class.
    ExplainClass(usize),
    /// Explain the predicted class.
    ExplainPredicted,
    /// Cycle the attribution method.
    CycleMethod,
}

/// Where training is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrainStatus {
    /// Loading data.
    #[default]
    Waiting,
    /// Epochs are running.
    Running,
    /// Paused by the user.
    Paused,
    /// Stopping (asked, not yet confirmed).
    Stopping,
    /// The loss converged.
    Converged,
    /// The epoch limit was reached.
    MaxEpochs,
    /// Stopped early by the user.
    Stopped,
    /// A saved model was loaded.
    Loaded,
    /// Training failed.
    Failed,
}

impl TrainStatus {
    /// Human words.
    pub fn label(self) -> &'static str {
        match self {
            TrainStatus::Waiting => "waiting",
            TrainStatus::Running => "training",
            TrainStatus::Paused => "paused",
            TrainStatus::Stopping => "stopping",
            TrainStatus::Converged => "converged",
            TrainStatus::MaxEpochs => "epoch limit",
            TrainStatus::Stopped => "stopped early",
            TrainStatus::Loaded => "loaded model",
            TrainStatus::Failed => "failed",
        }
    }

    /// True while epochs may still come.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TrainStatus::Waiting | TrainStatus::Running | TrainStatus::Paused
        )
    }
}

/// The Training tab's state.
#[derive(Debug, Clone, Default)]
pub struct TrainingState {
    /// Seed of the current run.
    pub seed: u64,
    /// Epoch limit.
    pub max_epochs: usize,
    /// Layer sizes, input first.
    pub layer_sizes: Vec<usize>,
    /// One record per finished epoch.
    pub history: Vec<EpochMetrics>,
    /// Where training is.
    pub status: TrainStatus,
    /// Chart series (epoch, value), kept with the history so drawing converts nothing.
    pub series: TrainingSeries,
}

/// The curves of the Training tab as (epoch, value) points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainingSeries {
    /// Training loss.
    pub train_loss: Vec<(f64, f64)>,
    /// Test loss.
    pub test_loss: Vec<(f64, f64)>,
    /// Training accuracy.
    pub train_accuracy: Vec<(f64, f64)>,
    /// Test accuracy.
    pub test_accuracy: Vec<(f64, f64)>,
}

impl TrainingState {
    /// Record one epoch.
    pub fn push(&mut self, r: EpochMetrics) {
        #[expect(clippy::cast_precision_loss)]
        let x = r.epoch as f64;
        self.series.train_loss.push((x, r.train_loss));
        self.series.train_accuracy.push((x, r.train_accuracy));
        if let Some(v) = metric(r.test_loss) {
            self.series.test_loss.push((x, v));
        }
        if let Some(v) = metric(r.test_accuracy) {
            self.series.test_accuracy.push((x, v));
        }
        self.history.push(r);
    }

    /// Seconds left at the current pace if every remaining epoch runs.
    pub fn seconds_left(&self) -> Option<f64> {
        let last = self.history.last()?;
        let recent = &self.history[self.history.len().saturating_sub(5)..];
        #[expect(clippy::cast_precision_loss)]
        let per_epoch = recent.iter().map(|e| e.seconds).sum::<f64>() / recent.len() as f64;
        #[expect(clippy::cast_precision_loss)]
        let left = self.max_epochs.saturating_sub(last.epoch) as f64;
        Some(per_epoch * left)
    }
}

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
    /// Neighbour preservation (k = 10).
    pub trust: Option<f64>,
    /// t-SNE finished.
    pub done: bool,
    /// The perplexity it was run with.
    pub perplexity: f64,
}

/// The Embeddings tab's state.
#[derive(Debug, Clone, Default)]
pub struct EmbedState {
    /// One panel per embedded layer, by layer.
    pub panels: Vec<Panel>,
    /// Selected image (row of the embedded set).
    pub selected: usize,
    /// Panel whose picture the cursor moves in.
    pub focus: usize,
    /// What colours the points.
    pub color_by: ColorBy,
    /// Perplexity for the next run.
    pub perplexity: f64,
    /// Whether the input pixels get a panel.
    pub include_input: bool,
    /// True label of each embedded image.
    pub labels: Vec<u8>,
    /// Prediction for each embedded image (empty until a model is ready).
    pub predictions: Vec<u8>,
    /// 1 where the prediction is right, 0 where wrong.
    pub correct: Vec<u8>,
}

impl EmbedState {
    /// The group of every point under the current colouring.
    pub fn groups(&self) -> &[u8] {
        match self.color_by {
            ColorBy::Label => &self.labels,
            ColorBy::Prediction if !self.predictions.is_empty() => &self.predictions,
            ColorBy::Correctness if !self.correct.is_empty() => &self.correct,
            _ => &self.labels,
        }
    }
}

/// The Saliency tab's state.
#[derive(Debug, Clone, Default)]
pub struct SaliencyState {
    /// Which split the image is from.
    pub set: ImageSet,
    /// Row in that split.
    pub index: usize,
    /// Class asked for (`None`: the prediction).
    pub class: Option<usize>,
    /// Class the worker is explaining.
    pub explained_class: Option<usize>,
    /// Method.
    pub method: Method,
    /// Id of the latest request.
    pub request_id: u64,
    /// The latest estimate for that request.
    pub estimate: Option<SaliencySnapshot>,
    /// The estimate is final.
    pub done: bool,
    /// The request was sent and is waiting or running.
    pub running: bool,
    /// Largest |value| of the estimate (the colour scale's end).
    pub max_abs: f32,
    /// Mean standard error of the estimate, when it has one.
    pub mean_stderr: Option<f32>,
}

impl SaliencyState {
    /// Show `snap` as the current estimate.
    pub fn set_estimate(&mut self, snap: SaliencySnapshot) {
        self.max_abs = snap.values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        #[expect(clippy::cast_precision_loss)]
        let mean = |s: &Vec<f32>| s.iter().sum::<f32>() / s.len().max(1) as f32;
        self.mean_stderr = snap.stderr.as_ref().map(mean);
        self.estimate = Some(snap);
    }
}

/// The whole app state.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// Current tab.
    pub tab: Tab,
    /// Help overlay shown.
    pub show_help: bool,
    /// The loop should end.
    pub should_quit: bool,
    /// The data, once loaded (shared with the worker, read-only).
    pub split: Option<Arc<Split>>,
    /// How many training images are embedded.
    pub embed_n: usize,
    /// What the current model predicts.
    pub model: Option<Arc<ModelReport>>,
    /// Training tab.
    pub training: TrainingState,
    /// Embeddings tab.
    pub embed: EmbedState,
    /// Saliency tab.
    pub saliency: SaliencyState,
    /// Latest message for the user (an error, a hint).
    pub message: Option<String>,
    /// The worker has nothing left to do.
    pub idle: bool,
}

impl App {
    /// A fresh state, before any worker event, with the notebook's perplexity.
    pub fn new(perplexity: f64) -> App {
        App {
            embed: EmbedState {
                perplexity,
                ..EmbedState::default()
            },
            // The pipeline ends by explaining the first test image (request 0).
            saliency: SaliencyState {
                running: true,
                ..SaliencyState::default()
            },
            ..App::default()
        }
    }

    /// The action a key means on the current tab, if any.
    pub fn action_for(&self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => return Some(Action::Quit),
            KeyCode::Char('q') => return Some(Action::Quit),
            KeyCode::Esc if self.show_help => return Some(Action::CloseHelp),
            KeyCode::Esc => return Some(Action::Quit),
            KeyCode::Char('?') => return Some(Action::ToggleHelp),
            KeyCode::Tab => return Some(Action::NextTab),
            KeyCode::BackTab => return Some(Action::PrevTab),
            KeyCode::F(n @ 1..=3) => return Some(Action::GoTo(Tab::ALL[usize::from(n) - 1])),
            _ => {}
        }
        if self.show_help {
            return None;
        }
        match self.tab {
            Tab::Training => match key.code {
                KeyCode::Char(c @ '1'..='3') => Some(Action::GoTo(tab_digit(c))),
                KeyCode::Char(' ' | 'p') => Some(Action::TogglePause),
                KeyCode::Char('s') => Some(Action::StopTraining),
                KeyCode::Char('r') => Some(Action::RestartTraining),
                _ => None,
            },
            Tab::Embeddings => match key.code {
                KeyCode::Char(c @ '1'..='3') => Some(Action::GoTo(tab_digit(c))),
                KeyCode::Left | KeyCode::Char('h') => Some(Action::Move(Direction::Left)),
                KeyCode::Right | KeyCode::Char('l') => Some(Action::Move(Direction::Right)),
                KeyCode::Up | KeyCode::Char('k') => Some(Action::Move(Direction::Up)),
                KeyCode::Down | KeyCode::Char('j') => Some(Action::Move(Direction::Down)),
                KeyCode::Char('n') => Some(Action::NextMisclassified),
                KeyCode::Char('N') => Some(Action::PrevMisclassified),
                KeyCode::Enter => Some(Action::OpenSelected),
                KeyCode::Char('c') => Some(Action::CycleColorBy),
                KeyCode::Char('+' | '=') => Some(Action::PerplexityUp),
                KeyCode::Char('-' | '_') => Some(Action::PerplexityDown),
                KeyCode::Char('r') => Some(Action::Rerun),
                KeyCode::Char('i') => Some(Action::ToggleInputLayer),
                KeyCode::Char('f') => Some(Action::NextPanel),
                _ => None,
            },
            // Digits pick the class here; Tab, Shift-Tab and F1-F3 still switch tabs.
            Tab::Saliency => match key.code {
                KeyCode::Left | KeyCode::Char('h') => Some(Action::PrevImage),
                KeyCode::Right | KeyCode::Char('l') => Some(Action::NextImage),
                KeyCode::Char(c @ '0'..='9') => Some(Action::ExplainClass(
                    c.to_digit(10).map_or(0, |d| d as usize),
                )),
                KeyCode::Char('p') => Some(Action::ExplainPredicted),
                KeyCode::Char('m') => Some(Action::CycleMethod),
                _ => None,
            },
        }
    }

    /// Apply an action; returns what the worker must be told.
    pub fn update(&mut self, action: Action) -> Vec<Command> {
        let commands = self.apply(action);
        if !commands.is_empty() && !self.should_quit {
            // The worker has work again until it says it is idle.
            self.idle = false;
        }
        commands
    }

    fn apply(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Quit => {
                self.should_quit = true;
                return vec![Command::Quit];
            }
            Action::CloseHelp => self.show_help = false,
            Action::ToggleHelp => self.show_help = !self.show_help,
            Action::NextTab => self.tab = self.tab.next(),
            Action::PrevTab => self.tab = self.tab.prev(),
            Action::GoTo(tab) => self.tab = tab,
            Action::TogglePause => match self.training.status {
                TrainStatus::Running | TrainStatus::Waiting => {
                    self.training.status = TrainStatus::Paused;
                    return vec![Command::Pause];
                }
                TrainStatus::Paused => {
                    self.training.status = TrainStatus::Running;
                    return vec![Command::Resume];
                }
                _ => self.message = Some("training is not running".into()),
            },
            Action::StopTraining => {
                if self.training.status.is_active() {
                    self.training.status = TrainStatus::Stopping;
                    return vec![Command::StopTraining];
                }
                self.message = Some("training is not running".into());
            }
            Action::RestartTraining => {
                return vec![Command::RestartTraining {
                    seed: self.training.seed.wrapping_add(1),
                }];
            }
            Action::Move(d) => self.move_selection(d),
            Action::NextMisclassified => self.jump_misclassified(true),
            Action::PrevMisclassified => self.jump_misclassified(false),
            Action::OpenSelected => {
                if self.embed_n == 0 {
                    return Vec::new();
                }
                self.tab = Tab::Saliency;
                self.saliency.set = ImageSet::Train;
                self.saliency.index = self.embed.selected;
                self.saliency.class = None;
                return self.request_explanation();
            }
            Action::CycleColorBy => self.embed.color_by = self.embed.color_by.next(),
            Action::PerplexityUp => {
                self.embed.perplexity = next_perplexity(self.embed.perplexity, true);
                self.message = Some(format!(
                    "perplexity {} (r re-runs t-SNE)",
                    self.embed.perplexity
                ));
            }
            Action::PerplexityDown => {
                self.embed.perplexity = next_perplexity(self.embed.perplexity, false);
                self.message = Some(format!(
                    "perplexity {} (r re-runs t-SNE)",
                    self.embed.perplexity
                ));
            }
            Action::Rerun => return self.rerun_embedding(),
            Action::ToggleInputLayer => {
                self.embed.include_input = !self.embed.include_input;
                return self.rerun_embedding();
            }
            Action::NextPanel => {
                if !self.embed.panels.is_empty() {
                    self.embed.focus = (self.embed.focus + 1) % self.embed.panels.len();
                }
            }
            Action::PrevImage | Action::NextImage => {
                let n = self.image_count(self.saliency.set);
                if n == 0 {
                    return Vec::new();
                }
                self.saliency.index = if action == Action::NextImage {
                    (self.saliency.index + 1) % n
                } else {
                    (self.saliency.index + n - 1) % n
                };
                return self.request_explanation();
            }
            Action::ExplainClass(c) => {
                let n_classes = self.n_classes();
                if n_classes > 0 && c >= n_classes {
                    self.message = Some(format!("there is no class {c}"));
                    return Vec::new();
                }
                self.saliency.class = Some(c);
                return self.request_explanation();
            }
            Action::ExplainPredicted => {
                self.saliency.class = None;
                return self.request_explanation();
            }
            Action::CycleMethod => {
                self.saliency.method = next_method(self.saliency.method);
                return self.request_explanation();
            }
        }
        Vec::new()
    }

    /// Empty panels for the layers the worker will embed, so they stand side by side from the
    /// start and fill in as t-SNE reaches them.
    fn plan_panels(&mut self) {
        let Some(sizes) = self.model.as_ref().map(|m| m.layer_sizes.clone()) else {
            return;
        };
        let first = if self.embed.include_input { 1 } else { 2 };
        for layer in first..=sizes.len() {
            if self.embed.panels.iter().any(|p| p.layer == layer) {
                continue;
            }
            self.upsert_panel(Panel {
                layer,
                size: sizes[layer - 1],
                iteration: 0,
                n_iter: 0,
                kl_divergence: None,
                coords: Array2::zeros((0, 2)),
                trust: None,
                done: false,
                perplexity: self.embed.perplexity,
            });
        }
        self.embed.focus = self.embed.panels.len().saturating_sub(1);
    }

    fn rerun_embedding(&mut self) -> Vec<Command> {
        self.embed.panels.clear();
        self.plan_panels();
        vec![Command::Embed {
            perplexity: self.embed.perplexity,
            include_input: self.embed.include_input,
        }]
    }

    /// A new explanation request for the Saliency tab's current choice (supersedes the last).
    fn request_explanation(&mut self) -> Vec<Command> {
        let s = &mut self.saliency;
        s.request_id += 1;
        s.estimate = None;
        s.done = false;
        s.running = true;
        s.explained_class = s.class;
        vec![Command::Explain(ExplainRequest {
            id: s.request_id,
            part: match s.set {
                ImageSet::Test => Part::Test,
                ImageSet::Train => Part::Train,
            },
            index: s.index,
            class: s.class,
            method: s.method,
        })]
    }

    /// Number of classes in the data.
    pub fn n_classes(&self) -> usize {
        self.split.as_ref().map_or(0, |s| s.train.n_classes())
    }

    /// Images in a set (the embedded training images for [`ImageSet::Train`]).
    pub fn image_count(&self, set: ImageSet) -> usize {
        match set {
            ImageSet::Test => self.split.as_ref().map_or(0, |s| s.test.n_rows()),
            ImageSet::Train => self.embed_n,
        }
    }

    /// The pixels of an image, label and probabilities (when the model is ready).
    pub fn image(&self, set: ImageSet, index: usize) -> Option<(ArrayView1<'_, f32>, u8)> {
        let split = self.split.as_ref()?;
        let data = match set {
            ImageSet::Test => &split.test,
            ImageSet::Train => &split.train,
        };
        (index < data.n_rows()).then(|| (data.features.row(index), data.labels[index]))
    }

    /// Class probabilities the model gives an image.
    pub fn probabilities(&self, set: ImageSet, index: usize) -> Option<ArrayView1<'_, f32>> {
        let m = self.model.as_ref()?;
        let p = match set {
            ImageSet::Test => &m.test_probs,
            ImageSet::Train => &m.embed_probs,
        };
        (index < p.nrows()).then(|| p.row(index))
    }

    /// Label of embedded image `i`.
    pub fn embed_label(&self, i: usize) -> Option<u8> {
        self.split.as_ref()?.train.labels.get(i).copied()
    }

    /// Prediction for embedded image `i`.
    pub fn embed_prediction(&self, i: usize) -> Option<u8> {
        self.embed.predictions.get(i).copied()
    }

    fn move_selection(&mut self, d: Direction) {
        let Some(panel) = self
            .embed
            .panels
            .get(self.embed.focus)
            .filter(|p| p.coords.nrows() > self.embed.selected)
        else {
            return;
        };
        if let Some(i) = nearest_in_direction(&panel.coords, self.embed.selected, d) {
            self.embed.selected = i;
        }
    }

    fn jump_misclassified(&mut self, forward: bool) {
        let n = self.embed_n;
        if n == 0 || self.model.is_none() {
            return;
        }
        for step in 1..=n {
            let i = if forward {
                (self.embed.selected + step) % n
            } else {
                (self.embed.selected + n * step - step) % n
            };
            if self.embed_label(i) != self.embed_prediction(i) {
                self.embed.selected = i;
                return;
            }
        }
        self.message = Some("no misclassified image".into());
    }

    /// Take in a worker event (reading the latest-wins slots when nudged).
    pub fn on_event(&mut self, event: Event, slots: &Slots) {
        match event {
            Event::DataReady { split, embed_n } => {
                self.embed.labels =
                    split.train.labels[..embed_n.min(split.train.n_rows())].to_vec();
                self.split = Some(split);
                self.embed_n = embed_n;
            }
            Event::TrainingStarted {
                seed,
                max_epochs,
                layer_sizes,
            } => {
                self.training = TrainingState {
                    seed,
                    max_epochs,
                    layer_sizes,
                    history: Vec::new(),
                    status: TrainStatus::Running,
                    series: TrainingSeries::default(),
                };
                self.model = None;
                self.embed.panels.clear();
                self.saliency.estimate = None;
                self.saliency.done = false;
            }
            Event::Epoch(record) => {
                if self.training.status == TrainStatus::Waiting {
                    self.training.status = TrainStatus::Running;
                }
                self.training.push(record);
            }
            Event::TrainingStopped(reason) => {
                self.training.status = match reason {
                    StopReason::Converged => TrainStatus::Converged,
                    StopReason::MaxEpochs => TrainStatus::MaxEpochs,
                    StopReason::Cancelled => TrainStatus::Paused,
                    StopReason::Diverged { .. } => TrainStatus::Failed,
                };
            }
            Event::ModelReady(report) => {
                if self.training.layer_sizes.is_empty() {
                    self.training.layer_sizes.clone_from(&report.layer_sizes);
                }
                match self.training.status {
                    TrainStatus::Waiting => self.training.status = TrainStatus::Loaded,
                    TrainStatus::Running | TrainStatus::Paused | TrainStatus::Stopping => {
                        self.training.status = TrainStatus::Stopped;
                    }
                    _ => {}
                }
                self.embed.predictions = report
                    .embed_probs
                    .rows()
                    .into_iter()
                    .map(|r| u8::try_from(argmax(r)).unwrap_or(0))
                    .collect();
                self.embed.correct = self
                    .embed
                    .predictions
                    .iter()
                    .zip(&self.embed.labels)
                    .map(|(p, l)| u8::from(p == l))
                    .collect();
                self.model = Some(report);
                self.plan_panels();
            }
            Event::EmbedStarted {
                layer,
                size,
                perplexity,
            } => {
                let panel = Panel {
                    layer,
                    size,
                    iteration: 0,
                    n_iter: 0,
                    kl_divergence: None,
                    coords: Array2::zeros((0, 2)),
                    trust: None,
                    done: false,
                    perplexity,
                };
                self.upsert_panel(panel);
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
            }
            Event::ExplainStarted { request, class } => {
                if request.id == self.saliency.request_id {
                    self.saliency.explained_class = Some(class);
                    self.saliency.running = true;
                }
            }
            Event::ExplainProgress => {
                if let Some(snap) = slots.saliency.take()
                    && snap.id == self.saliency.request_id
                {
                    self.saliency.set_estimate(snap);
                }
            }
            Event::ExplainDone {
                id,
                attribution,
                seconds,
            } => {
                if id == self.saliency.request_id {
                    let snap = SaliencySnapshot::from_attribution(id, &attribution, seconds);
                    self.saliency.set_estimate(snap);
                    self.saliency.done = true;
                    self.saliency.running = false;
                }
            }
            Event::JobFailed { job, message } => {
                let what = match job {
                    JobKind::Load => "loading",
                    JobKind::Train => {
                        self.training.status = TrainStatus::Failed;
                        "training"
                    }
                    JobKind::Embed => "t-SNE",
                    JobKind::Explain => {
                        self.saliency.running = false;
                        "saliency"
                    }
                };
                self.message = Some(format!("{what} failed: {message}"));
            }
            Event::Idle => self.idle = true,
        }
    }

    fn upsert_panel(&mut self, panel: Panel) {
        match self
            .embed
            .panels
            .binary_search_by_key(&panel.layer, |p| p.layer)
        {
            Ok(i) => self.embed.panels[i] = panel,
            Err(i) => self.embed.panels.insert(i, panel),
        }
        if self.embed.focus >= self.embed.panels.len() {
            self.embed.focus = self.embed.panels.len().saturating_sub(1);
        }
    }

    fn apply_embedding(&mut self, snap: EmbedSnapshot, trust: Option<f64>, done: bool) {
        let Some(panel) = self.embed.panels.iter_mut().find(|p| p.layer == snap.layer) else {
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
}

fn tab_digit(c: char) -> Tab {
    Tab::ALL[c.to_digit(10).map_or(0, |d| d as usize).clamp(1, 3) - 1]
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

/// Index of the largest value.
pub fn argmax(row: ArrayView1<f32>) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

/// The point nearest to `from` in direction `d`: within a 45-degree cone if any, else the
/// nearest with any progress that way.
pub fn nearest_in_direction(coords: &Array2<f32>, from: usize, d: Direction) -> Option<usize> {
    let origin = coords.row(from);
    let (ox, oy) = (origin[0], origin[1]);
    let mut in_cone: Option<(usize, f32)> = None;
    let mut any: Option<(usize, f32)> = None;
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
        if any.is_none_or(|(_, b)| score < b) {
            any = Some((i, score));
        }
    }
    in_cone.or(any).map(|(i, _)| i)
}
