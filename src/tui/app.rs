//! App state, the [`Action`]s keys map to, and the one [`App::update`] that changes state. The
//! app only dispatches: each tab (`tabs/`) holds its own state, key table, update and render;
//! the app owns what they share (the [`Session`]: data split, model, embedded rows), the tab bar,
//! the help and the message line. No I/O here: updates return the [`Command`]s for the worker,
//! and worker [`Event`]s come in through [`App::on_event`], so everything is testable without a
//! terminal.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ndarray::ArrayView1;
use strum::{EnumIter, IntoEnumIterator};

use super::keys::{self, Binding, Show, bind};
use super::tabs::embeddings::{EmbeddingsAction, EmbeddingsTab};
use super::tabs::saliency::{SaliencyAction, SaliencyTab};
use super::tabs::training::{TrainingAction, TrainingTab};
use crate::compute::{Command, Event, JobKind, ModelReport, Slots};
use crate::data::{Part, Split};

pub use super::tabs::embeddings::{ColorBy, Direction, Panel, nearest_in_direction};
pub use super::tabs::saliency::{METHODS, method_label, next_method};
pub use super::tabs::training::{TrainStatus, TrainingSeries};

/// The three tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, EnumIter, strum::Display)]
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

    /// Position in [`Tab::ALL`].
    pub fn index(self) -> usize {
        Tab::iter().position(|t| t == self).unwrap_or(0)
    }

    /// The tab to the right (wrapping).
    pub fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % Tab::ALL.len()]
    }

    /// The tab to the left (wrapping).
    pub fn prev(self) -> Tab {
        Tab::ALL[(self.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
    }

    /// The tab's title.
    pub fn title(self) -> String {
        self.to_string()
    }

    /// The tab's own key table.
    pub fn keys(self) -> &'static [Binding] {
        match self {
            Tab::Training => super::tabs::training::KEYS,
            Tab::Embeddings => super::tabs::embeddings::KEYS,
            Tab::Saliency => super::tabs::saliency::KEYS,
        }
    }
}

/// Everything a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Quit the app and stop the worker.
    Quit,
    /// Close the help overlay, or dismiss the message (Esc; it never quits).
    CloseHelp,
    /// Answer yes to the pending question.
    Confirm,
    /// Answer no to the pending question.
    Cancel,
    /// Show or hide every key.
    ToggleHelp,
    /// Next tab.
    NextTab,
    /// Previous tab.
    PrevTab,
    /// A given tab.
    GoTo(Tab),
    /// An action of the Training tab.
    Training(TrainingAction),
    /// An action of the Embeddings tab.
    Embeddings(EmbeddingsAction),
    /// An action of the Saliency tab.
    Saliency(SaliencyAction),
    /// Save the current view as an SVG file (issue 16 item 5; the event loop writes it).
    SaveSvg,
}

/// The keys of every tab (looked up before the tab's own).
pub const GLOBAL_KEYS: &[Binding] = &[
    bind(
        &[KeyCode::Tab],
        Action::NextTab,
        "tab/shift-tab",
        "next/previous tab",
    )
    .shown(Show::Help),
    bind(
        &[KeyCode::BackTab],
        Action::PrevTab,
        "shift-tab",
        "previous tab",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::F(1)],
        Action::GoTo(Tab::Training),
        "1 2 3, F1-F3",
        "go to a tab *",
    )
    .shown(Show::Help),
    bind(&[KeyCode::F(2)], Action::GoTo(Tab::Embeddings), "F2", "").shown(Show::Hidden),
    bind(&[KeyCode::F(3)], Action::GoTo(Tab::Saliency), "F3", "").shown(Show::Hidden),
    bind(&[KeyCode::Char('?')], Action::ToggleHelp, "?", "help"),
    bind(&[KeyCode::Esc], Action::CloseHelp, "esc", "close help").shown(Show::Help),
    bind(&[KeyCode::Char('q')], Action::Quit, "q", "quit").long("q, ctrl-c", "quit"),
    // Issue 16 item 5 (branch import).
    bind(
        &[KeyCode::Char('S')],
        Action::SaveSvg,
        "S",
        "save view as SVG",
    )
    .shown(Show::Help),
];

/// Keys a message lives for: it goes with the key after the last of these (or a tab change).
pub const MESSAGE_KEYS: u8 = 3;

/// A question in the message line, waiting for y or n (a destructive key asks first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The words, ending in "y/n".
    pub text: String,
    /// What `y` does.
    pub action: Action,
}

/// The digit keys that switch tabs (on the tabs where digits mean nothing else).
pub const TAB_DIGITS: [Binding; 3] = [
    bind(
        &[KeyCode::Char('1')],
        Action::GoTo(Tab::Training),
        "1-3",
        "tabs",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Char('2')],
        Action::GoTo(Tab::Embeddings),
        "2",
        "",
    )
    .shown(Show::Hidden),
    bind(&[KeyCode::Char('3')], Action::GoTo(Tab::Saliency), "3", "").shown(Show::Hidden),
];

/// What the tabs share: the data, the model's report, and which rows are embedded.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The data, once loaded (shared with the worker, read-only).
    pub split: Option<Arc<Split>>,
    /// How many training images are embedded (the first ones: `Split::embedded`).
    pub embed_n: usize,
    /// What the current model predicts.
    pub model: Option<Arc<ModelReport>>,
}

impl Session {
    /// Number of classes in the data.
    pub fn n_classes(&self) -> usize {
        self.split.as_ref().map_or(0, |s| s.train.n_classes())
    }

    /// The data's name of class `c` (iris: "setosa"), or its digit when it has none.
    pub fn class_name(&self, c: usize) -> String {
        self.class_names()
            .get(c)
            .filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| super::theme::Theme::class_glyph(c).to_string())
    }

    /// The data's class names (empty before the data).
    pub fn class_names(&self) -> &[String] {
        self.split.as_ref().map_or(&[], |s| &s.train.class_names)
    }

    /// Images in a part (the embedded training images for [`Part::Train`]).
    pub fn image_count(&self, part: Part) -> usize {
        match part {
            Part::Test => self.split.as_ref().map_or(0, |s| s.test.n_rows()),
            Part::Train => self.embed_n,
        }
    }

    /// The pixels and label of an image.
    pub fn image(&self, part: Part, index: usize) -> Option<(ArrayView1<'_, f32>, u8)> {
        let split = self.split.as_ref()?;
        let data = match part {
            Part::Test => &split.test,
            Part::Train => &split.train,
        };
        (index < data.n_rows()).then(|| (data.features.row(index), data.labels[index]))
    }

    /// Image height x width, or one strip when the features are not a square image.
    pub fn image_shape(&self) -> (usize, usize) {
        self.split.as_ref().map_or((28, 28), |s| {
            s.train.image_shape.unwrap_or((1, s.train.n_features()))
        })
    }

    /// Class probabilities the model gives an image.
    pub fn probabilities(&self, part: Part, index: usize) -> Option<ArrayView1<'_, f32>> {
        let m = self.model.as_ref()?;
        let p = match part {
            Part::Test => &m.test_probs,
            Part::Train => &m.embed_probs,
        };
        (index < p.nrows()).then(|| p.row(index))
    }

    /// Layer sizes of the model, input first (empty before a model).
    pub fn layer_sizes(&self) -> &[usize] {
        self.model.as_ref().map_or(&[], |m| &m.layer_sizes)
    }
}

/// What a tab's update asks of the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Tell the worker.
    Send(Command),
    /// Show a message.
    Say(String),
    /// Ask first: `action` happens only if the user answers y.
    Ask(Question),
    /// Explain this image in the Saliency tab (from the Embeddings tab; from the error browser
    /// with the prediction versus the label).
    Explain {
        /// Its part of the split.
        part: Part,
        /// Its row.
        index: usize,
        /// The class to explain (`None`: the prediction).
        class: Option<usize>,
        /// The contrast class: explain f_class - f_versus ("why class and not versus").
        versus: Option<usize>,
    },
    /// Select this image in the Embeddings tab and go there (issue 13: from the error browser).
    ShowInEmbeddings {
        /// Its part of the split.
        part: Part,
        /// Its row.
        index: usize,
    },
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
    /// What the tabs share.
    pub session: Session,
    /// Training tab.
    pub training: TrainingTab,
    /// Embeddings tab.
    pub embed: EmbeddingsTab,
    /// Saliency tab.
    pub saliency: SaliencyTab,
    /// Latest message for the user (an error, a hint); it expires (`MESSAGE_KEYS`).
    pub message: Option<String>,
    /// Keys pressed since the message appeared.
    pub message_age: u8,
    /// A question waiting for y/n (shown in the message line; every other key answers no).
    pub question: Option<Question>,
    /// The worker has nothing left to do.
    pub idle: bool,
    /// `S` was pressed: the event loop saves the view as SVG (it has the frame's size and does
    /// the I/O) and clears this.
    pub save_svg: bool,
}

impl App {
    /// A fresh state, before any worker event, with the t-SNE perplexity the worker starts with.
    pub fn new(perplexity: f64) -> App {
        App {
            embed: EmbeddingsTab::new(perplexity),
            saliency: SaliencyTab::new(),
            ..App::default()
        }
    }

    /// The action a key means on the current tab, if any: the global table first, then the
    /// tab's own.
    pub fn action_for(&self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return Some(Action::Quit);
        }
        if self.question.is_some() {
            return Some(match key.code {
                KeyCode::Char('y' | 'Y') => Action::Confirm,
                _ => Action::Cancel,
            });
        }
        // Issue 13: the filter being typed takes every key; Esc closes what the tab has open.
        if let Some(action) = self.tab_first(key.code) {
            return Some(action);
        }
        if let Some(action) = keys::lookup(GLOBAL_KEYS, key.code) {
            return Some(action);
        }
        if self.show_help {
            return None;
        }
        keys::lookup(self.tab.keys(), key.code)
    }

    /// Apply an action; returns what the worker must be told.
    pub fn update(&mut self, action: Action) -> Vec<Command> {
        self.age_message();
        let effects = match action {
            Action::Quit => {
                self.should_quit = true;
                return vec![Command::Quit];
            }
            Action::CloseHelp => {
                if !self.show_help {
                    self.message = None;
                }
                self.show_help = false;
                Vec::new()
            }
            Action::Confirm => match self.question.take() {
                Some(q) => return self.update(q.action),
                None => Vec::new(),
            },
            Action::Cancel => {
                self.question = None;
                vec![Effect::Say("cancelled".into())]
            }
            Action::ToggleHelp => {
                self.show_help = !self.show_help;
                Vec::new()
            }
            Action::NextTab => self.go_to(self.tab.next()),
            Action::PrevTab => self.go_to(self.tab.prev()),
            Action::GoTo(tab) => self.go_to(tab),
            Action::Training(TrainingAction::Errors(a)) => {
                self.training.errors.update(a, &self.session)
            }
            Action::Training(a) => self.training.update(a),
            Action::Embeddings(a) => {
                let effects = self.embed.update(a, &self.session);
                self.embed.sync_points(&self.session);
                effects
            }
            Action::Saliency(a) => self.saliency.update(a, &self.session),
            Action::SaveSvg => {
                self.save_svg = true;
                Vec::new()
            }
        };
        let commands = self.apply(effects);
        if !commands.is_empty() {
            // The worker has work again until it says it is idle.
            self.idle = false;
        }
        commands
    }

    /// Keys a tab takes before the global table (issue 13): the `/` filter being typed takes
    /// every key; Esc closes the error list (Training), the neighbours panel or else the filter
    /// (Embeddings), the help first.
    fn tab_first(&self, code: KeyCode) -> Option<Action> {
        use super::tabs::embeddings::EmbeddingsAction as E;
        use super::tabs::errors::ErrorsAction;
        match self.tab {
            Tab::Embeddings if self.embed.points.editing.is_some() => {
                Some(Action::Embeddings(E::FilterKey(code)))
            }
            Tab::Embeddings
                if code == KeyCode::Esc
                    && !self.show_help
                    && (self.embed.points.show_neighbours
                        || self.embed.points.filter.is_some()) =>
            {
                Some(Action::Embeddings(E::Close))
            }
            Tab::Training
                if code == KeyCode::Esc && self.training.errors.open && !self.show_help =>
            {
                Some(Action::Training(TrainingAction::Errors(
                    ErrorsAction::Close,
                )))
            }
            _ => None,
        }
    }

    fn go_to(&mut self, tab: Tab) -> Vec<Effect> {
        if tab != self.tab {
            // A message is about the tab it came from.
            self.message = None;
        }
        self.tab = tab;
        Vec::new()
    }

    /// Show a message (it lives for `MESSAGE_KEYS` keys).
    pub fn say(&mut self, message: String) {
        self.message = Some(message);
        self.message_age = 0;
    }

    /// One more key: an old message goes.
    fn age_message(&mut self) {
        self.message_age = self.message_age.saturating_add(1);
        if self.message_age > MESSAGE_KEYS {
            self.message = None;
        }
    }

    /// Carry out the tabs' effects; the commands for the worker.
    fn apply(&mut self, effects: Vec<Effect>) -> Vec<Command> {
        let mut commands = Vec::new();
        for effect in effects {
            match effect {
                Effect::Send(c) => commands.push(c),
                Effect::Say(m) => self.say(m),
                Effect::Ask(q) => self.question = Some(q),
                Effect::Explain {
                    part,
                    index,
                    class,
                    versus,
                } => {
                    self.tab = Tab::Saliency;
                    commands.extend(
                        self.saliency
                            .open(part, index, class, versus, &self.session),
                    );
                }
                Effect::ShowInEmbeddings { part, index } => {
                    self.tab = Tab::Embeddings;
                    if let Some(m) = self.embed.show(part, index, &self.session) {
                        self.say(m);
                    }
                }
            }
        }
        commands
    }

    /// Take in a worker event (reading the latest-wins slots when nudged).
    pub fn on_event(&mut self, event: Event, slots: &Slots) {
        match event {
            Event::DataReady { split, embed_n } => {
                self.embed.data_ready(&split, embed_n);
                self.session.split = Some(split);
                self.session.embed_n = embed_n;
            }
            Event::TrainingStarted {
                seed,
                max_epochs,
                layer_sizes,
            } => {
                self.embed.film.training_started(&layer_sizes);
                self.training.started(seed, max_epochs, layer_sizes);
                self.session.model = None;
                self.embed.panels.clear();
                self.saliency.clear();
            }
            Event::Epoch(metrics) => {
                self.embed.film.epoch(&metrics);
                self.training.push(metrics);
            }
            Event::TrainingStopped(reason) => self.training.stopped(reason),
            Event::ModelReady(report) => {
                self.training.model_ready(&report);
                self.training.errors.model_changed();
                self.embed.model_ready(&report);
                self.session.model = Some(report);
                self.embed.sync_points(&self.session);
            }
            Event::JobFailed { job, message } => self.job_failed(job, &message),
            Event::Idle => self.idle = true,
            Event::EmbedStarted { .. } | Event::EmbedProgress | Event::EmbedDone { .. } => {
                self.embed.on_event(event, slots);
                self.embed.sync_points(&self.session);
            }
            Event::ExplainStarted { .. } | Event::ExplainProgress | Event::ExplainDone { .. } => {
                self.saliency.on_event(event, slots);
            }
            // The film (issue 12): frames for the Embeddings tab, separation for Training.
            Event::Frame(frame) => self.embed.film.frame(frame, self.embed.perplexity),
            Event::Separation(s) => self.training.separation.push(&s),
            Event::ClassMeanProgress | Event::ClassMeanDone { .. } => {
                self.saliency.on_event(event, slots);
            }
        }
    }

    /// How often the app's clock must tick, if at all: while the film plays in the Embeddings
    /// tab (`tabs::film::PLAY_STEP`).
    pub fn tick_interval(&self) -> Option<std::time::Duration> {
        (self.tab == Tab::Embeddings && self.embed.film.playing)
            .then_some(super::tabs::film::PLAY_STEP)
    }

    /// One tick of the app's clock: the film's next stop. Whether the screen changed.
    pub fn tick(&mut self) -> bool {
        self.embed.film_tick()
    }

    fn job_failed(&mut self, job: JobKind, message: &str) {
        let what = match job {
            JobKind::Load => "loading",
            JobKind::Train => {
                self.training.failed();
                "training"
            }
            JobKind::Embed => "t-SNE",
            JobKind::Explain => {
                self.saliency.running = false;
                "saliency"
            }
        };
        self.say(format!("{what} failed: {message}"));
    }

    /// Number of classes in the data.
    pub fn n_classes(&self) -> usize {
        self.session.n_classes()
    }

    /// Label of embedded image `i`.
    pub fn embed_label(&self, i: usize) -> Option<u8> {
        self.embed.labels.get(i).copied()
    }

    /// Prediction for embedded image `i`.
    pub fn embed_prediction(&self, i: usize) -> Option<u8> {
        self.embed.predictions.get(i).copied()
    }
}
