//! Saliency: its state (which image, which class and contrast class, which method and units, the
//! latest estimate of the latest request, the finished maps cached), its keys, and its render:
//! the image and its saliency map side by side at the largest integer zoom that fits, or the map
//! over the faded image (SHAP's convention), with their scale legends (0 and both ends), the class
//! probabilities, how far the estimate has come and its Shapley bookkeeping; or the class-level
//! map, the mean over test images of the class, sharpening as images finish (issue 14).

use std::collections::HashMap;

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use crate::compute::{
    Attribution, ClassMean, ClassMeanRequest, Command, Event, ExplainRequest, Method,
    SaliencySnapshot, Slots, Units,
};
use crate::data::Part;
use crate::tui::app::{Action, Effect, Session, TAB_DIGITS};
use crate::tui::keys::{Binding, Show, bind};
use crate::tui::tabs::training::duration;
use crate::tui::theme::{ColorDepth, Theme};
use crate::tui::widgets::heatmap::{Overlay, format_value};
use crate::tui::widgets::{Heatmap, Legend, ProbabilityBars, Scale};

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

/// What the Saliency tab's keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaliencyAction {
    /// Previous image.
    PrevImage,
    /// Next image.
    NextImage,
    /// Explain the next class (`[`/`]`: digits switch tabs everywhere).
    NextClass,
    /// Explain the previous class.
    PrevClass,
    /// Switch between test images and the embedded training images.
    TogglePart,
    /// The next misclassified image of this part.
    NextMisclassified,
    /// The previous misclassified image of this part.
    PrevMisclassified,
    /// Explain the predicted class.
    ExplainPredicted,
    /// Cycle the attribution method.
    CycleMethod,
    /// The map over the image, or beside it.
    ToggleOverlay,
    /// Probability or logit.
    ToggleUnits,
    /// The next class to contrast with ("why 4 and not 9"), most likely rival first, then none.
    CycleVersus,
    /// The class-level map (mean over test images of the class), or back to the image.
    ToggleClassMean,
    /// Lock the colour scale at the current map's, or unlock it.
    ToggleScaleLock,
}

const fn act(a: SaliencyAction) -> Action {
    Action::Saliency(a)
}

/// The Saliency tab's keys. Digits switch tabs here as everywhere; `[` and `]` pick the class.
pub const KEYS: &[Binding] = &[
    bind(
        &[KeyCode::Left, KeyCode::Char('h')],
        act(SaliencyAction::PrevImage),
        "left/right",
        "image",
    ),
    bind(
        &[KeyCode::Right, KeyCode::Char('l')],
        act(SaliencyAction::NextImage),
        "right",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Char(']')],
        act(SaliencyAction::NextClass),
        "[ ]",
        "class",
    )
    .long("[ ]", "previous/next class"),
    bind(
        &[KeyCode::Char('[')],
        act(SaliencyAction::PrevClass),
        "[",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Char('v')],
        act(SaliencyAction::CycleVersus),
        "v",
        "versus",
    )
    .long("v", "versus class"),
    bind(
        &[KeyCode::Char('o')],
        act(SaliencyAction::ToggleOverlay),
        "o",
        "overlay",
    ),
    bind(
        &[KeyCode::Char('u')],
        act(SaliencyAction::ToggleUnits),
        "u",
        "units",
    )
    .long("u", "probability/logit"),
    bind(
        &[KeyCode::Char('a')],
        act(SaliencyAction::ToggleClassMean),
        "a",
        "class mean",
    )
    .long("a", "class mean map"),
    bind(
        &[KeyCode::Char('L')],
        act(SaliencyAction::ToggleScaleLock),
        "L",
        "lock scale",
    ),
    bind(
        &[KeyCode::Char('m')],
        act(SaliencyAction::CycleMethod),
        "m",
        "method",
    ),
    bind(
        &[KeyCode::Char('n')],
        act(SaliencyAction::NextMisclassified),
        "n/N",
        "wrong",
    )
    .long("n/N", "next/prev. wrong"),
    bind(
        &[KeyCode::Char('N')],
        act(SaliencyAction::PrevMisclassified),
        "N",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Char('t')],
        act(SaliencyAction::TogglePart),
        "t",
        "test/train",
    ),
    bind(
        &[KeyCode::Char('p')],
        act(SaliencyAction::ExplainPredicted),
        "p",
        "predicted class",
    ),
    TAB_DIGITS[0],
    TAB_DIGITS[1],
    TAB_DIGITS[2],
];

/// Test images a class-level map averages over by default (issue 14: 100, as `explain
/// --class-mean`).
pub const CLASS_MEAN_IMAGES: usize = crate::headless::CLASS_MEAN_IMAGES;

/// What a finished map is cached under: everything that changes its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheKey {
    /// One image's explanation.
    Image {
        /// Its part of the split.
        part: Part,
        /// Its row.
        index: usize,
        /// The class explained (resolved: never "the prediction").
        class: usize,
        /// The contrast class.
        versus: Option<usize>,
        /// The method.
        method: Method,
        /// The units.
        units: Units,
    },
    /// A class-level map.
    ClassMean {
        /// The class explained and averaged over.
        class: usize,
        /// The contrast class.
        versus: Option<usize>,
        /// The method.
        method: Method,
        /// The units.
        units: Units,
        /// Images asked for.
        images: usize,
    },
}

/// The Shapley bookkeeping of a finished map, in its units (from the engine's `Attribution`
/// or `ClassMean`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bookkeeping {
    /// f(x) (a class mean: the mean over its images).
    pub output: f64,
    /// The base value: E[f(b)] over the background, or f(baseline) for the gradient methods.
    pub reference: f64,
    /// Sum of the attributions.
    pub sum: f64,
    /// Standard error of the sum (sampling methods).
    pub sum_stderr: Option<f64>,
    /// sum - (f(x) - base).
    pub gap: f64,
    /// Units of every figure.
    pub units: Units,
    /// The method (which base value it has).
    pub method: Method,
    /// A class-level map.
    pub mean: bool,
}

impl Bookkeeping {
    /// The bookkeeping of one explanation by `method`.
    pub fn of(a: &Attribution, method: Method) -> Bookkeeping {
        Bookkeeping {
            output: a.output,
            reference: a.reference,
            sum: a.sum,
            sum_stderr: a.sum_stderr,
            gap: a.completeness_gap,
            units: a.units,
            method,
            mean: false,
        }
    }

    /// The bookkeeping of a class-level map.
    pub fn of_mean(m: &ClassMean) -> Bookkeeping {
        Bookkeeping {
            output: m.output,
            reference: m.reference,
            sum: m.sum,
            sum_stderr: m.sum_stderr,
            gap: m.completeness_gap,
            units: m.units,
            method: m.method,
            mean: true,
        }
    }

    /// The line: "f(x) 0.9731 · E[f(b)] 0.1020 · sum 0.8710 ± 0.0003 (SE) · gap -0.0001".
    pub fn line(&self, theme: &Theme) -> String {
        let f = if self.mean { "mean f(x)" } else { "f(x)" };
        let base = match self.method {
            Method::Notebook | Method::Permutation => "E[f(b)]",
            Method::GradientTimesInput | Method::IntegratedGradients => "f(baseline)",
        };
        let sum = match self.sum_stderr {
            Some(se) => format!("sum {} (SE {})", figure(self.sum), figure(se)),
            None => format!("sum {}", figure(self.sum)),
        };
        let gap = match self.sum_stderr.filter(|&se| se > 0.0) {
            Some(se) => format!("gap {} ({:.1} SE)", figure(self.gap), self.gap / se),
            None => format!("gap {}", figure(self.gap)),
        };
        theme.join(&[
            &format!("{f} {}", figure(self.output)),
            &format!("{base} {}", figure(self.reference)),
            &sum,
            &gap,
        ])
    }
}

/// A figure with 4 decimals, or scientific when 4 decimals would show 0.
fn figure(v: f64) -> String {
    if v != 0.0 && v.abs() < 5e-5 {
        format!("{v:.1e}")
    } else {
        format!("{v:.4}")
    }
}

/// A finished map in the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    /// Its values and progress, as shown.
    pub snapshot: SaliencySnapshot,
    /// Its bookkeeping.
    pub bookkeeping: Bookkeeping,
    /// The class explained.
    pub class: usize,
}

/// The colour scale locked by `L`, in the units it was locked in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleLock {
    /// Largest magnitude of the locked scale.
    pub max_abs: f32,
    /// Its units.
    pub units: Units,
}

/// The class-level map being shown.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassMeanView {
    /// The request.
    pub request: ClassMeanRequest,
    /// The mean image of the rows averaged over (drawn beside or under the map).
    pub image: Vec<f32>,
    /// Rows found (fewer than asked when the test split has fewer).
    pub rows: usize,
}

/// A request sent and not yet answered, so that its answer is cached even when superseded.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sent {
    Image(ExplainRequest),
    Mean(ClassMeanRequest),
}

/// The Saliency tab's state.
#[derive(Debug, Clone)]
pub struct SaliencyTab {
    /// Which part of the split the image is from.
    pub part: Part,
    /// Row in that part.
    pub index: usize,
    /// Class asked for (`None`: the prediction).
    pub class: Option<usize>,
    /// Class the worker is explaining.
    pub explained_class: Option<usize>,
    /// Method (the engine's default first).
    pub method: Method,
    /// Id of the latest request.
    pub request_id: u64,
    /// The latest estimate for that request.
    pub estimate: Option<SaliencySnapshot>,
    /// The estimate is final.
    pub done: bool,
    /// The request was sent and is waiting or running.
    pub running: bool,
    /// Largest |value| of the estimate (the colour scale's end unless locked).
    pub max_abs: f32,
    /// Mean standard error of the estimate, when it has one.
    pub mean_stderr: Option<f32>,
    /// Contrast class: the map explains f_class - f_versus.
    pub versus: Option<usize>,
    /// Probability or logit.
    pub units: Units,
    /// The map drawn over the image instead of beside it.
    pub overlay: bool,
    /// The colour scale locked by `L`.
    pub scale_lock: Option<ScaleLock>,
    /// The class-level map shown instead of one image's, when set.
    pub class_mean: Option<ClassMeanView>,
    /// Test images a class-level map averages over.
    pub class_mean_images: usize,
    /// The bookkeeping of the finished map shown.
    pub bookkeeping: Option<Bookkeeping>,
    /// Finished maps: coming back to one shows it at once, without asking the worker.
    pub cache: HashMap<CacheKey, Cached>,
    sent: HashMap<u64, Sent>,
}

impl Default for SaliencyTab {
    fn default() -> Self {
        let first = ExplainRequest::first();
        SaliencyTab {
            part: first.part,
            index: first.index,
            class: first.class,
            explained_class: None,
            method: first.method,
            request_id: first.id,
            estimate: None,
            done: false,
            running: false,
            max_abs: 0.0,
            mean_stderr: None,
            versus: first.versus,
            units: first.units,
            overlay: false,
            scale_lock: None,
            class_mean: None,
            class_mean_images: CLASS_MEAN_IMAGES,
            bookkeeping: None,
            cache: HashMap::new(),
            sent: HashMap::new(),
        }
    }
}

impl SaliencyTab {
    /// Before any event: the pipeline ends by explaining the first test image (request 0).
    pub fn new() -> SaliencyTab {
        let mut tab = SaliencyTab {
            running: true,
            ..SaliencyTab::default()
        };
        tab.sent
            .insert(tab.request_id, Sent::Image(ExplainRequest::first()));
        tab
    }

    /// Apply one of the tab's actions.
    pub fn update(&mut self, action: SaliencyAction, session: &Session) -> Vec<Effect> {
        match action {
            SaliencyAction::PrevImage | SaliencyAction::NextImage => {
                let n = session.image_count(self.part);
                if n == 0 {
                    return Vec::new();
                }
                self.index = if action == SaliencyAction::NextImage {
                    (self.index + 1) % n
                } else {
                    (self.index + n - 1) % n
                };
                self.class_mean = None;
            }
            SaliencyAction::NextClass | SaliencyAction::PrevClass => {
                let n = session.n_classes();
                if n == 0 {
                    return Vec::new();
                }
                let current = self.class.or(self.explained_class).unwrap_or(0) % n;
                self.class = Some(if action == SaliencyAction::NextClass {
                    (current + 1) % n
                } else {
                    (current + n - 1) % n
                });
            }
            SaliencyAction::TogglePart => {
                self.part = match self.part {
                    Part::Test => Part::Train,
                    Part::Train => Part::Test,
                };
                let n = session.image_count(self.part);
                self.index = self.index.min(n.saturating_sub(1));
                self.class = None;
                self.class_mean = None;
            }
            SaliencyAction::NextMisclassified | SaliencyAction::PrevMisclassified => {
                let forward = action == SaliencyAction::NextMisclassified;
                match next_misclassified(session, self.part, self.index, forward) {
                    Some(i) => {
                        self.index = i;
                        self.class = None;
                        self.class_mean = None;
                    }
                    None => return vec![Effect::Say("no misclassified image here".into())],
                }
            }
            SaliencyAction::ExplainPredicted => self.class = None,
            SaliencyAction::CycleMethod => self.method = next_method(self.method),
            SaliencyAction::ToggleOverlay => {
                self.overlay = !self.overlay;
                return Vec::new();
            }
            SaliencyAction::ToggleScaleLock => return self.toggle_scale_lock(),
            SaliencyAction::ToggleUnits => {
                self.units = match self.units {
                    Units::Probability => Units::Logit,
                    Units::Logit => Units::Probability,
                };
            }
            SaliencyAction::CycleVersus => self.versus = self.next_versus(session),
            SaliencyAction::ToggleClassMean => {
                if self.class_mean.is_some() {
                    self.class_mean = None;
                } else {
                    return self.request_class_mean(session);
                }
            }
        }
        self.refresh(session)
    }

    /// Explain another image, for `class` (`None`: its prediction) and against `versus`
    /// (from the Embeddings tab: the prediction alone; from the error browser: the prediction
    /// against the label).
    pub fn open(
        &mut self,
        part: Part,
        index: usize,
        class: Option<usize>,
        versus: Option<usize>,
        session: &Session,
    ) -> Vec<Command> {
        self.part = part;
        self.index = index;
        self.class = class;
        self.versus = versus;
        self.class_mean = None;
        self.request(session)
            .into_iter()
            .filter_map(|e| match e {
                Effect::Send(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    /// The map for the current choice, in the current mode.
    fn refresh(&mut self, session: &Session) -> Vec<Effect> {
        if self.class_mean.is_some() {
            self.request_class_mean(session)
        } else {
            self.request(session)
        }
    }

    /// The class the current choice explains, when known before the worker resolves it.
    fn resolved_class(&self, session: &Session) -> Option<usize> {
        self.class
            .or_else(|| predicted(session, self.part, self.index))
    }

    /// Show a finished map from the cache (a new id, so late events of the old request are
    /// ignored).
    fn show_cached(&mut self, hit: &Cached) {
        self.request_id += 1;
        self.set_estimate(hit.snapshot.clone());
        self.bookkeeping = Some(hit.bookkeeping);
        self.explained_class = Some(hit.class);
        self.done = true;
        self.running = false;
    }

    /// Forget the shown map before asking for a new one.
    fn start(&mut self) {
        self.request_id += 1;
        self.estimate = None;
        self.bookkeeping = None;
        self.done = false;
        self.running = true;
    }

    /// The current image's explanation: from the cache, or a new request (superseding the
    /// last).
    fn request(&mut self, session: &Session) -> Vec<Effect> {
        let class = self.resolved_class(session);
        if self.versus.is_some() && self.versus == class {
            self.versus = None;
        }
        if let Some(class) = class {
            let key = CacheKey::Image {
                part: self.part,
                index: self.index,
                class,
                versus: self.versus,
                method: self.method,
                units: self.units,
            };
            if let Some(hit) = self.cache.get(&key).cloned() {
                self.show_cached(&hit);
                return Vec::new();
            }
        }
        self.start();
        self.explained_class = class;
        let request = ExplainRequest {
            id: self.request_id,
            part: self.part,
            index: self.index,
            class: self.class,
            method: self.method,
            versus: self.versus,
            units: self.units,
        };
        self.sent.insert(request.id, Sent::Image(request));
        vec![Effect::Send(Command::Explain(request))]
    }

    /// The class-level map of the class explained: from the cache, or a new request.
    fn request_class_mean(&mut self, session: &Session) -> Vec<Effect> {
        let Some(class) = self.resolved_class(session).or(self.explained_class) else {
            return vec![Effect::Say("no class yet: the model is not ready".into())];
        };
        if self.versus == Some(class) {
            self.versus = None;
        }
        let request = ClassMeanRequest {
            id: self.request_id + 1,
            class,
            versus: self.versus,
            images: self.class_mean_images,
            method: self.method,
            units: self.units,
        };
        let Some(split) = session.split.as_ref() else {
            return vec![Effect::Say("no data yet".into())];
        };
        let rows = request.rows(&split.test.labels);
        if rows.is_empty() {
            return vec![Effect::Say(format!(
                "the test split has no images of class {}",
                session.class_name(class)
            ))];
        }
        // The mean image of the rows averaged over: what the map is drawn beside or over.
        let features = &split.test.features;
        let mut image = vec![0.0f32; features.ncols()];
        for &r in &rows {
            for (m, &v) in image.iter_mut().zip(features.row(r)) {
                *m += v;
            }
        }
        let k = rows.len() as f32;
        image.iter_mut().for_each(|m| *m /= k);
        self.class_mean = Some(ClassMeanView {
            request,
            image,
            rows: rows.len(),
        });
        let key = CacheKey::ClassMean {
            class,
            versus: self.versus,
            method: self.method,
            units: self.units,
            images: self.class_mean_images,
        };
        if let Some(hit) = self.cache.get(&key).cloned() {
            self.show_cached(&hit);
            return Vec::new();
        }
        self.start();
        self.explained_class = Some(class);
        self.sent.insert(request.id, Sent::Mean(request));
        vec![Effect::Send(Command::ExplainClassMean(request))]
    }

    /// `L`: lock the colour scale at the current map's largest value, or unlock it.
    fn toggle_scale_lock(&mut self) -> Vec<Effect> {
        if self.scale_lock.take().is_some() {
            return vec![Effect::Say("colour scale unlocked".into())];
        }
        if self.max_abs <= 0.0 {
            return vec![Effect::Say(
                "no map yet: nothing to lock the scale to".into(),
            )];
        }
        self.scale_lock = Some(ScaleLock {
            max_abs: self.max_abs,
            units: self.units,
        });
        vec![Effect::Say(format!(
            "colour scale locked at ±{} {}",
            format_value(self.max_abs),
            units_word(self.units)
        ))]
    }

    /// The colour scale's end: the locked one in its units, else the map's own.
    pub fn scale_max(&self) -> f32 {
        match self.scale_lock {
            Some(l) if l.units == self.units => l.max_abs,
            _ => self.max_abs,
        }
    }

    /// Whether the locked scale is in use.
    pub fn scale_locked(&self) -> bool {
        self.scale_lock.is_some_and(|l| l.units == self.units)
    }

    /// The versus class after the current one: the explained class's rivals, most likely first
    /// (a class mean: the classes its images are most often mistaken for), then none.
    fn next_versus(&self, session: &Session) -> Option<usize> {
        let n = session.n_classes();
        let explained = self.resolved_class(session).or(self.explained_class);
        let mut rivals: Vec<usize> = (0..n).filter(|&c| Some(c) != explained).collect();
        let score = |c: usize| -> f64 {
            match (&self.class_mean, explained, session.model.as_ref()) {
                (Some(_), Some(e), Some(m)) if e < m.confusion.nrows() => {
                    m.confusion[[e, c]] as f64
                }
                _ => session
                    .probabilities(self.part, self.index)
                    .and_then(|p| p.get(c).copied())
                    .map_or(0.0, f64::from),
            }
        };
        rivals.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
        match self.versus {
            None => rivals.first().copied(),
            Some(v) => {
                let at = rivals.iter().position(|&c| c == v)?;
                rivals.get(at + 1).copied()
            }
        }
    }

    /// A new model: the old maps go (the cached ones too).
    pub fn clear(&mut self) {
        self.estimate = None;
        self.done = false;
        self.bookkeeping = None;
        self.cache.clear();
        // The current request is asked again of the new model; older ones are not.
        let current = self.request_id;
        self.sent.retain(|&id, _| id == current);
    }

    /// Show `snap` as the current estimate.
    pub fn set_estimate(&mut self, snap: SaliencySnapshot) {
        self.max_abs = snap.values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let mean = |s: &Vec<f32>| s.iter().sum::<f32>() / s.len().max(1) as f32;
        self.mean_stderr = snap.stderr.as_ref().map(mean);
        self.estimate = Some(snap);
    }

    /// Take in an explanation event (late ones of a superseded request are cached, not shown).
    pub fn on_event(&mut self, event: Event, slots: &Slots) {
        match event {
            Event::ExplainStarted { request, class } if request.id == self.request_id => {
                self.explained_class = Some(class);
                self.running = true;
            }
            Event::ExplainProgress => {
                if let Some(snap) = slots.saliency.take()
                    && snap.id == self.request_id
                {
                    self.set_estimate(snap);
                }
            }
            Event::ExplainDone {
                id,
                attribution,
                seconds,
            } => {
                let snapshot = SaliencySnapshot::from_attribution(id, &attribution, seconds);
                let sent = self.sent.remove(&id);
                let method = match sent {
                    Some(Sent::Image(r)) => r.method,
                    _ => self.method,
                };
                let bookkeeping = Bookkeeping::of(&attribution, method);
                if let Some(Sent::Image(r)) = sent {
                    let key = CacheKey::Image {
                        part: r.part,
                        index: r.index,
                        class: attribution.class,
                        versus: attribution.versus,
                        method: r.method,
                        units: attribution.units,
                    };
                    self.cache.insert(
                        key,
                        Cached {
                            snapshot: snapshot.clone(),
                            bookkeeping,
                            class: attribution.class,
                        },
                    );
                }
                if id == self.request_id {
                    self.set_estimate(snapshot);
                    self.bookkeeping = Some(bookkeeping);
                    self.explained_class = Some(attribution.class);
                    self.done = true;
                    self.running = false;
                }
            }
            Event::ClassMeanProgress => {
                if let Some(snap) = slots.class_mean.take()
                    && snap.id == self.request_id
                {
                    self.set_estimate(SaliencySnapshot {
                        id: snap.id,
                        values: snap.values,
                        stderr: Some(snap.stderr),
                        samples_done: snap.images_done,
                        samples_total: snap.images_total,
                        seconds: snap.seconds,
                    });
                }
            }
            Event::ClassMeanDone { id, mean, seconds } => {
                let snapshot = SaliencySnapshot {
                    id,
                    values: mean.values.to_vec(),
                    stderr: Some(mean.stderr.to_vec()),
                    samples_done: mean.images,
                    samples_total: mean.images,
                    seconds,
                };
                let bookkeeping = Bookkeeping::of_mean(&mean);
                if let Some(Sent::Mean(r)) = self.sent.remove(&id) {
                    let key = CacheKey::ClassMean {
                        class: r.class,
                        versus: r.versus,
                        method: r.method,
                        units: r.units,
                        images: r.images,
                    };
                    self.cache.insert(
                        key,
                        Cached {
                            snapshot: snapshot.clone(),
                            bookkeeping,
                            class: r.class,
                        },
                    );
                }
                if id == self.request_id {
                    self.set_estimate(snapshot);
                    self.bookkeeping = Some(bookkeeping);
                    self.done = true;
                    self.running = false;
                }
            }
            _ => {}
        }
    }
}

/// The class the model predicts for an image, when there is a model.
fn predicted(session: &Session, part: Part, index: usize) -> Option<usize> {
    session
        .probabilities(part, index)
        .and_then(|p| p.to_slice().map(crate::nn::argmax))
}

/// The next (or previous) image of `part` after `from` that the model gets wrong, wrapping.
fn next_misclassified(session: &Session, part: Part, from: usize, forward: bool) -> Option<usize> {
    let n = session.image_count(part);
    (1..=n)
        .map(|step| {
            if forward {
                (from + step) % n
            } else {
                (from + n * step - step) % n
            }
        })
        .find(|&i| {
            let label = session.image(part, i).map(|(_, l)| usize::from(l));
            let predicted = predicted(session, part, i);
            label.is_some() && predicted.is_some() && label != predicted
        })
}

/// "probability" or "logit".
fn units_word(u: Units) -> &'static str {
    match u {
        Units::Probability => "probability",
        Units::Logit => "logit",
    }
}

/// Where the tab's parts go at this size: the zoom is the largest integer one at which the
/// image and its map fit (both at one size), the probability bars beside them only when they
/// cost no zoom, the rest for the explanation's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaliencyLayout {
    /// Heatmap size in cells (width, height).
    pub map: (u16, u16),
    /// Pixels per image pixel, horizontally (0: shrunk below 1x).
    pub zoom: u16,
    /// The probability bars have a panel beside the maps.
    pub probs_beside: bool,
    /// Height of the heatmap row of panels (borders and legend included).
    pub main_h: u16,
}

/// Panel borders and the legend line around a heatmap.
const PANEL_EXTRA_W: u16 = 2;
const PANEL_EXTRA_H: u16 = 3;
/// Fewest lines of the explanation panel (its borders included).
const INFO_MIN_H: u16 = 4;
/// Width of the probability panel beside the maps.
fn probs_width(width: u16) -> u16 {
    (width / 4).clamp(18, 40)
}

impl SaliencyLayout {
    /// The layout of a body `area` for an image of `shape` (rows, cols); `overlay` draws one
    /// heatmap instead of two.
    pub fn new(area: Rect, shape: (usize, usize), overlay: bool) -> SaliencyLayout {
        let panels = if overlay { 1 } else { 2 };
        let inner_h = area
            .height
            .saturating_sub(INFO_MIN_H + PANEL_EXTRA_H)
            .max(1);
        let fit = |width: u16| {
            let w = (width / panels).saturating_sub(PANEL_EXTRA_W);
            Heatmap::fit(shape.0, shape.1, Rect::new(0, 0, w, inner_h))
        };
        let beside = fit(area.width.saturating_sub(probs_width(area.width)));
        let alone = fit(area.width);
        let probs_beside = beside.0 >= alone.0;
        let map = if probs_beside { beside } else { alone };
        let zoom = u16::try_from(usize::from(map.0) / shape.1.max(1)).unwrap_or(0);
        SaliencyLayout {
            map,
            zoom,
            probs_beside,
            main_h: (map.1 + PANEL_EXTRA_H).min(area.height.saturating_sub(INFO_MIN_H)),
        }
    }
}

/// The Saliency tab drawn from its state and the session.
pub struct SaliencyView<'a> {
    /// The tab's state.
    pub tab: &'a SaliencyTab,
    /// What the tabs share.
    pub session: &'a Session,
    /// Theme.
    pub theme: &'a Theme,
}

impl SaliencyView<'_> {
    /// The class name, or its digit.
    fn name(&self, c: usize) -> String {
        self.session.class_name(c)
    }

    /// What the map explains, for its title: "saliency for class 3", "why 4 and not 9".
    fn target_words(&self) -> String {
        let s = self.tab;
        let class = s.explained_class.or(s.class);
        match (class, s.versus) {
            (Some(c), Some(v)) => format!("why {} and not {}", self.name(c), self.name(v)),
            (Some(c), None) => format!("saliency for class {}", self.name(c)),
            (None, Some(v)) => format!("why the prediction and not {}", self.name(v)),
            (None, None) => "saliency".to_string(),
        }
    }

    /// The map's title, the longest of a few that fits `width` cells of border.
    fn map_title(&self, width: u16) -> String {
        let s = self.tab;
        let units = units_word(s.units);
        let class = s.explained_class.or(s.class);
        let short = match (class, s.versus) {
            (Some(c), Some(v)) => format!("{} not {}", self.name(c), self.name(v)),
            (Some(c), None) => format!("class {}", self.name(c)),
            _ => self.target_words(),
        };
        let (long_mean, short_mean) = match &s.class_mean {
            Some(m) => {
                let done = s.estimate.as_ref().map_or(0, |e| e.samples_done);
                (
                    format!(
                        ", mean of {done}/{} images of {}",
                        m.rows,
                        self.name(m.request.class)
                    ),
                    format!(", mean of {done}/{}", m.rows),
                )
            }
            None => (String::new(), String::new()),
        };
        let sep = self.theme.glyphs.separator;
        let candidates = [
            format!(" {}{long_mean} {sep} {units} ", self.target_words()),
            format!(" {short}{long_mean} {sep} {units} "),
            format!(" {short}{short_mean} {sep} {units} "),
            format!(" {short}{short_mean} "),
        ];
        let room = usize::from(width.saturating_sub(2));
        candidates
            .iter()
            .find(|t| t.chars().count() <= room)
            .unwrap_or(&candidates[3])
            .clone()
    }

    fn image_title(&self, label: Option<u8>) -> String {
        let s = self.tab;
        if let Some(m) = &s.class_mean {
            return format!(
                " mean of {} test images of {} ",
                m.rows,
                self.name(m.request.class)
            );
        }
        let part_name = match s.part {
            Part::Test => "test",
            Part::Train => "training",
        };
        match label {
            Some(l) => format!(
                " {} ",
                self.theme.join(&[
                    &format!("{part_name} image {}", s.index),
                    &format!("label {}", self.name(usize::from(l)))
                ])
            ),
            None => format!(" {part_name} image {} ", s.index),
        }
    }

    /// What the colours mean at this colour depth, in the units shown.
    fn colour_words(&self) -> String {
        let s = self.tab;
        let output = match (s.explained_class.or(s.class), s.versus) {
            (Some(c), Some(v)) => format!(
                "the {} difference {} - {}",
                units_word(s.units),
                self.name(c),
                self.name(v)
            ),
            (Some(c), None) => format!("the {} of {}", units_word(s.units), self.name(c)),
            _ => format!("the class's {}", units_word(s.units)),
        };
        let (neg, pos) = match self.theme.depth {
            ColorDepth::None => {
                let g = self.theme.glyphs;
                let neg: String = g.negative_shades[1..].iter().collect();
                let pos: String = g.shades[1..].iter().collect();
                (format!("'{neg}'"), format!("'{pos}'"))
            }
            ColorDepth::Ansi16 => ("blue".to_string(), "yellow".to_string()),
            _ => ("blue".to_string(), "orange".to_string()),
        };
        let zero = if self.theme.has_color() {
            if s.overlay {
                "0 shows the image"
            } else {
                "0 is light"
            }
        } else {
            "0 is blank"
        };
        format!("{neg} lowers {output}, {pos} raises it; {zero}")
    }
}

impl Widget for &SaliencyView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (s, theme) = (self.tab, self.theme);
        let shape = self.session.image_shape();
        let layout = SaliencyLayout::new(area, shape, s.overlay);
        let [main, info] = area.layout(&Layout::vertical([
            Constraint::Length(layout.main_h),
            Constraint::Fill(1),
        ]));
        let probs_w = if layout.probs_beside {
            probs_width(area.width)
        } else {
            0
        };
        let [maps_area, probs_area] = main.layout(&Layout::horizontal([
            Constraint::Fill(1),
            Constraint::Length(probs_w),
        ]));
        let image = self.session.image(s.part, s.index);
        let label = image.as_ref().map(|(_, l)| *l);
        let owned_image: Option<Vec<f32>> = match &s.class_mean {
            Some(m) => Some(m.image.clone()),
            None => image.as_ref().map(|(p, _)| p.to_vec()),
        };
        let pixels = owned_image.as_deref();
        let values = s.estimate.as_ref().map(|e| e.values.as_slice());
        let scale = Scale::Diverging {
            max_abs: s.scale_max(),
        };
        let locked = s.scale_locked().then_some(" L: scale locked ");
        if s.overlay {
            let panel = MapPanel {
                title: &self.map_title(maps_area.width),
                bottom: locked,
                size: layout.map,
                scale: Scale::Overlay {
                    max_abs: s.scale_max(),
                },
                theme,
            };
            match (pixels, values) {
                (Some(px), Some(v)) => panel.render(
                    maps_area,
                    buf,
                    &Overlay {
                        image: px,
                        values: v,
                        rows: shape.0,
                        cols: shape.1,
                        max_abs: s.scale_max(),
                        theme,
                    },
                ),
                (Some(px), None) => panel.render(
                    maps_area,
                    buf,
                    &Heatmap {
                        pixels: px,
                        rows: shape.0,
                        cols: shape.1,
                        scale: Scale::Gray { min: 0.0, max: 1.0 },
                        theme,
                    },
                ),
                _ => panel.waiting(maps_area, buf),
            }
        } else {
            let [image_area, map_area] = maps_area.layout(&Layout::horizontal([
                Constraint::Fill(1),
                Constraint::Fill(1),
            ]));
            let gray = Scale::Gray { min: 0.0, max: 1.0 };
            let image_panel = MapPanel {
                title: &self.image_title(label),
                bottom: None,
                size: layout.map,
                scale: gray,
                theme,
            };
            match pixels {
                Some(px) => image_panel.render(
                    image_area,
                    buf,
                    &Heatmap {
                        pixels: px,
                        rows: shape.0,
                        cols: shape.1,
                        scale: gray,
                        theme,
                    },
                ),
                None => image_panel.waiting(image_area, buf),
            }
            let map_panel = MapPanel {
                title: &self.map_title(map_area.width),
                bottom: locked,
                size: layout.map,
                scale,
                theme,
            };
            match values {
                Some(v) => map_panel.render(
                    map_area,
                    buf,
                    &Heatmap {
                        pixels: v,
                        rows: shape.0,
                        cols: shape.1,
                        scale,
                        theme,
                    },
                ),
                None => map_panel.waiting(map_area, buf),
            }
        }
        let class = s.explained_class.or(s.class);
        let probs = self
            .session
            .probabilities(s.part, s.index)
            .and_then(|p| p.to_slice().map(<[f32]>::to_vec));
        if layout.probs_beside {
            let block = theme.block().title(" probabilities ");
            let inner = block.inner(probs_area);
            block.render(probs_area, buf);
            match &probs {
                Some(p) => (&ProbabilityBars {
                    probs: p,
                    marked: class,
                    names: self.session.class_names(),
                    theme,
                })
                    .render(inner, buf),
                None => Paragraph::new("after training")
                    .style(theme.dim())
                    .render(inner, buf),
            }
        }
        let probs_line = (!layout.probs_beside && s.class_mean.is_none())
            .then(|| probs.as_deref().map(|p| self.probability_line(p, class)))
            .flatten();
        self.render_info(probs_line, info, buf);
    }
}

/// A bordered panel holding one heatmap of a given size, centred, with its legend under it.
struct MapPanel<'a> {
    title: &'a str,
    bottom: Option<&'a str>,
    size: (u16, u16),
    scale: Scale,
    theme: &'a Theme,
}

impl MapPanel<'_> {
    fn block(&self) -> Block<'static> {
        let mut block = self.theme.block().title(self.title.to_string());
        if let Some(b) = self.bottom {
            block = block.title_bottom(b.to_string());
        }
        block
    }

    fn waiting(&self, area: Rect, buf: &mut Buffer) {
        let block = self.block();
        let inner = block.inner(area);
        block.render(area, buf);
        Paragraph::new("waiting for the worker")
            .style(self.theme.dim())
            .render(inner, buf);
    }

    fn render(&self, area: Rect, buf: &mut Buffer, map: &impl WidgetRef) {
        let block = self.block();
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.is_empty() {
            return;
        }
        let (w, h) = (self.size.0.min(inner.width), self.size.1.min(inner.height));
        let x = inner.x + (inner.width - w) / 2;
        map.render_ref(Rect::new(x, inner.y, w, h), buf);
        // The legend right under the map, at least wide enough for its three numbers.
        let ly = inner.y + h;
        if ly >= inner.bottom() {
            return;
        }
        let legend_w = w.max(24).min(inner.width);
        let lx = inner.x + (inner.width - legend_w) / 2;
        (&Legend {
            scale: self.scale,
            theme: self.theme,
        })
            .render(Rect::new(lx, ly, legend_w, 1), buf);
    }
}

/// A widget drawn by reference (the heatmap and the overlay).
trait WidgetRef {
    fn render_ref(&self, area: Rect, buf: &mut Buffer);
}

impl WidgetRef for Heatmap<'_> {
    fn render_ref(&self, area: Rect, buf: &mut Buffer) {
        self.render(area, buf);
    }
}

impl WidgetRef for Overlay<'_> {
    fn render_ref(&self, area: Rect, buf: &mut Buffer) {
        self.render(area, buf);
    }
}

impl SaliencyView<'_> {
    /// The probabilities in one line, most likely first, the explained class marked.
    fn probability_line(&self, p: &[f32], marked: Option<usize>) -> Line<'static> {
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        let mut spans = vec![Span::styled("probabilities ", self.theme.dim())];
        for c in order {
            let mark = if marked == Some(c) { ">" } else { "" };
            let style = if marked == Some(c) {
                self.theme.accent()
            } else {
                self.theme.text()
            };
            spans.push(Span::styled(
                format!("{mark}{} {:.2}", self.name(c), p[c]),
                style,
            ));
            spans.push(Span::raw("  "));
        }
        Line::from(spans)
    }

    fn render_info(&self, probs_line: Option<Line<'static>>, area: Rect, buf: &mut Buffer) {
        let (s, theme) = (self.tab, self.theme);
        let mean = s.class_mean.is_some();
        let class_text = match (s.class, s.explained_class, s.versus) {
            (_, _, Some(_)) => self.target_words().replace("saliency for ", ""),
            _ if mean => self.target_words().replace("saliency for ", ""),
            (Some(c), _, None) => format!("class {}", self.name(c)),
            (None, Some(c), None) => format!("class {} (predicted)", self.name(c)),
            (None, None, None) => "the predicted class".to_string(),
        };
        let progress = match &s.estimate {
            Some(e) => {
                let what = if mean { "images" } else { "samples" };
                let count = format!("{}/{} {what}", e.samples_done, e.samples_total);
                let time = duration(e.seconds);
                let se = match (mean, s.mean_stderr) {
                    (true, Some(v)) if s.max_abs > 0.0 => Some(format!(
                        "mean SE {:.1}% of max",
                        f64::from(v / s.max_abs) * 100.0
                    )),
                    (_, Some(v)) => Some(format!("mean s.e. {v:.2e}")),
                    _ => None,
                };
                let state = if s.done { "done" } else { "refining" };
                let mut fields = vec![count.as_str(), time.as_str()];
                fields.extend(se.as_deref());
                fields.push(state);
                theme.join(&fields)
            }
            None if s.running => {
                "queued: the worker starts it after the model is ready".to_string()
            }
            None => "not started".to_string(),
        };
        let units = units_word(s.units);
        let mut lines = vec![
            Line::from(vec![
                Span::styled("method ", theme.dim()),
                Span::styled(method_label(s.method), theme.accent()),
                Span::styled(format!(" {} ", theme.glyphs.separator), theme.dim()),
                Span::raw(progress),
                Span::styled(format!(" {} ", theme.glyphs.separator), theme.dim()),
                Span::raw(class_text),
                Span::styled(format!(" [{units}]"), theme.dim()),
            ]),
            match &s.bookkeeping {
                Some(b) => Line::from(vec![
                    Span::raw(b.line(theme)),
                    Span::styled(format!("  [{units}]"), theme.dim()),
                ]),
                None => Line::styled(
                    "bookkeeping (f(x), base value, sum, gap) when the map is done",
                    theme.dim(),
                ),
            },
        ];
        lines.extend(probs_line);
        lines.push(Line::styled(self.colour_words(), theme.dim()));
        Paragraph::new(lines)
            .block(theme.block().title(" explanation "))
            .render(area, buf);
    }
}
