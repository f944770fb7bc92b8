//! Saliency: its state (which image, which class, which method, the latest estimate of the
//! latest request), its keys, and its render: the image and its saliency map side by side as
//! half-block heatmaps with their scale legends, the class probabilities as bars, and how far the
//! estimate has come.

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::compute::{Command, Event, ExplainRequest, Method, SaliencySnapshot, Slots};
use crate::data::Part;
use crate::tui::app::{Action, Effect, Session, TAB_DIGITS};
use crate::tui::keys::{Binding, Show, bind};
use crate::tui::tabs::training::duration;
use crate::tui::theme::Theme;
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
    bind(
        &[KeyCode::Char('m')],
        act(SaliencyAction::CycleMethod),
        "m",
        "method",
    ),
    TAB_DIGITS[0],
    TAB_DIGITS[1],
    TAB_DIGITS[2],
];

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
    /// Largest |value| of the estimate (the colour scale's end).
    pub max_abs: f32,
    /// Mean standard error of the estimate, when it has one.
    pub mean_stderr: Option<f32>,
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
        }
    }
}

impl SaliencyTab {
    /// Before any event: the pipeline ends by explaining the first test image (request 0).
    pub fn new() -> SaliencyTab {
        SaliencyTab {
            running: true,
            ..SaliencyTab::default()
        }
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
            }
            SaliencyAction::NextMisclassified | SaliencyAction::PrevMisclassified => {
                let forward = action == SaliencyAction::NextMisclassified;
                match next_misclassified(session, self.part, self.index, forward) {
                    Some(i) => {
                        self.index = i;
                        self.class = None;
                    }
                    None => return vec![Effect::Say("no misclassified image here".into())],
                }
            }
            SaliencyAction::ExplainPredicted => self.class = None,
            SaliencyAction::CycleMethod => self.method = next_method(self.method),
        }
        self.request().into_iter().map(Effect::Send).collect()
    }

    /// Explain another image (picked in the Embeddings tab), for its predicted class.
    pub fn open(&mut self, part: Part, index: usize) -> Vec<Command> {
        self.part = part;
        self.index = index;
        self.class = None;
        self.request()
    }

    /// A new explanation request for the current choice (supersedes the last).
    fn request(&mut self) -> Vec<Command> {
        self.request_id += 1;
        self.estimate = None;
        self.done = false;
        self.running = true;
        self.explained_class = self.class;
        vec![Command::Explain(ExplainRequest {
            id: self.request_id,
            part: self.part,
            index: self.index,
            class: self.class,
            method: self.method,
        })]
    }

    /// A new model: the old map goes.
    pub fn clear(&mut self) {
        self.estimate = None;
        self.done = false;
    }

    /// Show `snap` as the current estimate.
    pub fn set_estimate(&mut self, snap: SaliencySnapshot) {
        self.max_abs = snap.values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let mean = |s: &Vec<f32>| s.iter().sum::<f32>() / s.len().max(1) as f32;
        self.mean_stderr = snap.stderr.as_ref().map(mean);
        self.estimate = Some(snap);
    }

    /// Take in an explanation event (late ones of a superseded request are ignored).
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
            } if id == self.request_id => {
                self.set_estimate(SaliencySnapshot::from_attribution(
                    id,
                    &attribution,
                    seconds,
                ));
                self.done = true;
                self.running = false;
            }
            _ => {}
        }
    }
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
            let predicted = session
                .probabilities(part, i)
                .and_then(|p| p.to_slice().map(crate::nn::argmax));
            label.is_some() && predicted.is_some() && label != predicted
        })
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

impl Widget for &SaliencyView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (s, theme) = (self.tab, self.theme);
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
        let part_name = match s.part {
            Part::Test => "test",
            Part::Train => "training",
        };
        let image = self.session.image(s.part, s.index);
        let shape = self.session.image_shape();
        let title = match image {
            Some((_, label)) => format!(
                " {} ",
                theme.join(&[
                    &format!("{part_name} image {}", s.index),
                    &format!("label {}", self.session.class_name(usize::from(label)))
                ])
            ),
            None => format!(" {part_name} image {} ", s.index),
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
            Some(c) => format!(" saliency for class {} ", self.session.class_name(c)),
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
        let block = theme.block().title(" probabilities ");
        let inner = block.inner(probs_area);
        block.render(probs_area, buf);
        match self
            .session
            .probabilities(s.part, s.index)
            .and_then(|p| p.to_slice().map(<[f32]>::to_vec))
        {
            Some(p) => (&ProbabilityBars {
                probs: &p,
                marked: class,
                names: self.session.class_names(),
                theme,
            })
                .render(inner, buf),
            None => Paragraph::new("after training")
                .style(theme.dim())
                .render(inner, buf),
        }
        render_info(s, self.session, theme, info, buf);
    }
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
    let block = theme.block().title(title.to_string());
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

fn render_info(s: &SaliencyTab, session: &Session, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let class_text = match (s.class, s.explained_class) {
        (Some(c), _) => format!("class {}", session.class_name(c)),
        (None, Some(c)) => format!("class {} (predicted)", session.class_name(c)),
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
            let se = s.mean_stderr.map(|v| format!("mean s.e. {v:.2e}"));
            let state = if s.done { "done" } else { "refining" };
            let samples = format!("{}/{} samples", e.samples_done, e.samples_total);
            let time = duration(e.seconds);
            let mut fields = vec![samples.as_str(), time.as_str()];
            fields.extend(se.as_deref());
            fields.push(state);
            theme.join(&fields)
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
        .block(theme.block().title(" explanation "))
        .render(area, buf);
}
