//! Training: its state (the epochs so far, where training is), its keys (pause, stop early,
//! restart), and its render: a progress gauge, loss and accuracy curves, the test confusion
//! matrix with per-class accuracy, and the latest numbers.

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, LineGauge, Paragraph, Widget};

use crate::compute::{Command, EpochMetrics, ModelReport, StopReason};
use crate::tui::app::{Action, Effect, Question, Session, TAB_DIGITS, Tab};
use crate::tui::keys::{Binding, Show, bind};
use crate::tui::tabs::embeddings::Direction;
use crate::tui::tabs::errors::{ErrorBrowser, ErrorGrid, ErrorListView, ErrorsAction, cell_line};
use crate::tui::theme::{Theme, asciify_area};
use crate::tui::widgets::separation::{
    SeparationChart, SeparationSeries, chart_areas, separation_hint,
};

/// What the Training tab's keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingAction {
    /// Pause or resume training.
    TogglePause,
    /// Stop training now and keep the model so far.
    Stop,
    /// Ask whether to train again with the next seed.
    Restart,
    /// Train again with the next seed (the answer to `Restart`'s question).
    RestartNow,
    /// Loss on a log scale, or a linear one.
    ToggleLogLoss,
    /// The class separation chart in place of the accuracy chart (issue 12; both show when
    /// the terminal is tall enough).
    ToggleSeparation,
    /// The error browser (issue 13): routed by the app to [`ErrorBrowser::update`].
    Errors(ErrorsAction),
}

/// The Training tab's keys.
pub const KEYS: &[Binding] = &[
    bind(
        &[KeyCode::Char(' '), KeyCode::Char('p')],
        Action::Training(TrainingAction::TogglePause),
        "space",
        "pause/resume",
    ),
    bind(
        &[KeyCode::Char('s')],
        Action::Training(TrainingAction::Stop),
        "s",
        "stop early",
    ),
    bind(
        &[KeyCode::Char('r')],
        Action::Training(TrainingAction::Restart),
        "r",
        "restart",
    )
    .long("r", "restart (asks)"),
    bind(
        &[KeyCode::Char('g')],
        Action::Training(TrainingAction::ToggleLogLoss),
        "g",
        "log loss",
    ),
    // Issue 13: the error browser.
    bind(
        &[KeyCode::Left],
        Action::Training(TrainingAction::Errors(ErrorsAction::Move(Direction::Left))),
        "arrows",
        "cell",
    )
    .long("arrows", "confusion cell"),
    bind(
        &[KeyCode::Right],
        Action::Training(TrainingAction::Errors(ErrorsAction::Move(Direction::Right))),
        "right",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Up],
        Action::Training(TrainingAction::Errors(ErrorsAction::Move(Direction::Up))),
        "up",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Down],
        Action::Training(TrainingAction::Errors(ErrorsAction::Move(Direction::Down))),
        "down",
        "",
    )
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Enter],
        Action::Training(TrainingAction::Errors(ErrorsAction::Enter)),
        "enter",
        "images",
    )
    .long("enter", "its images, why"),
    bind(
        &[KeyCode::Char('e')],
        Action::Training(TrainingAction::Errors(ErrorsAction::Show)),
        "e",
        "in map",
    )
    // The open list's bottom line shows it.
    .shown(Show::Hidden),
    bind(
        &[KeyCode::Char('1')],
        Action::GoTo(Tab::Training),
        "tab/1-3",
        "tabs",
    )
    .shown(Show::Bar),
    TAB_DIGITS[1],
    TAB_DIGITS[2],
    bind(
        &[KeyCode::Char('l')],
        Action::Training(TrainingAction::ToggleSeparation),
        "l",
        "separation",
    )
    .long("l", "class separation by layer")
    .shown(Show::Help),
];

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
    /// Training failed (or diverged).
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
    /// Training loss, log10.
    pub train_loss_log: Vec<(f64, f64)>,
    /// Test loss, log10.
    pub test_loss_log: Vec<(f64, f64)>,
}

/// The Training tab's state.
#[derive(Debug, Clone, Default)]
pub struct TrainingTab {
    /// Seed of the current run.
    pub seed: u64,
    /// Epoch limit.
    pub max_epochs: usize,
    /// Layer sizes, input first.
    pub layer_sizes: Vec<usize>,
    /// The engine's metrics of every finished epoch.
    pub history: Vec<EpochMetrics>,
    /// Where training is.
    pub status: TrainStatus,
    /// Chart series (epoch, value), kept with the history so drawing converts nothing.
    pub series: TrainingSeries,
    /// The loss chart on a log scale.
    pub log_loss: bool,
    /// Test accuracy of a loaded model (from its confusion matrix), shown instead of epochs.
    pub loaded_accuracy: Option<f64>,
    /// Class separation by layer per epoch (issue 12: `Event::Separation`).
    pub separation: SeparationSeries,
    /// The separation chart replaces the accuracy chart where there is no room for both.
    pub show_separation: bool,
    /// The error browser over the confusion matrix (issue 13).
    pub errors: ErrorBrowser,
}

impl TrainingTab {
    /// Apply one of the tab's actions.
    pub fn update(&mut self, action: TrainingAction) -> Vec<Effect> {
        let not_running = || vec![Effect::Say("training is not running".into())];
        match action {
            TrainingAction::TogglePause => match self.status {
                TrainStatus::Running | TrainStatus::Waiting => {
                    self.status = TrainStatus::Paused;
                    vec![Effect::Send(Command::Pause)]
                }
                TrainStatus::Paused => {
                    self.status = TrainStatus::Running;
                    vec![Effect::Send(Command::Resume)]
                }
                _ => not_running(),
            },
            TrainingAction::Stop if self.status.is_active() => {
                self.status = TrainStatus::Stopping;
                vec![Effect::Send(Command::StopTraining)]
            }
            TrainingAction::Stop => not_running(),
            TrainingAction::Restart | TrainingAction::RestartNow
                if self.status == TrainStatus::Loaded =>
            {
                vec![Effect::Say(
                    "restarting is not possible with --model: the model was loaded, not trained"
                        .into(),
                )]
            }
            TrainingAction::Restart => vec![Effect::Ask(Question {
                text: format!(
                    "restart training with seed {}, dropping this model? y/n",
                    self.seed.wrapping_add(1)
                ),
                action: Action::Training(TrainingAction::RestartNow),
            })],
            TrainingAction::RestartNow => vec![Effect::Send(Command::RestartTraining {
                seed: self.seed.wrapping_add(1),
            })],
            TrainingAction::ToggleLogLoss => {
                self.log_loss = !self.log_loss;
                Vec::new()
            }
            TrainingAction::ToggleSeparation => self.toggle_separation(),
            // The app routes these to the browser with the session.
            TrainingAction::Errors(_) => Vec::new(),
        }
    }

    /// A training run starts: the old one is forgotten.
    pub fn started(&mut self, seed: u64, max_epochs: usize, layer_sizes: Vec<usize>) {
        *self = TrainingTab {
            seed,
            max_epochs,
            layer_sizes,
            status: TrainStatus::Running,
            log_loss: self.log_loss,
            show_separation: self.show_separation,
            ..TrainingTab::default()
        };
    }

    /// Record one epoch.
    pub fn push(&mut self, m: EpochMetrics) {
        if self.status == TrainStatus::Waiting {
            self.status = TrainStatus::Running;
        }
        let x = m.epoch as f64;
        self.series.train_loss.push((x, m.train_loss));
        if m.train_loss > 0.0 {
            self.series.train_loss_log.push((x, m.train_loss.log10()));
        }
        self.series.train_accuracy.push((x, m.train_accuracy));
        if let Some(v) = m.test_loss {
            self.series.test_loss.push((x, v));
            if v > 0.0 {
                self.series.test_loss_log.push((x, v.log10()));
            }
        }
        if let Some(v) = m.test_accuracy {
            self.series.test_accuracy.push((x, v));
        }
        self.history.push(m);
    }

    /// The engine stopped training.
    pub fn stopped(&mut self, reason: StopReason) {
        self.status = match reason {
            StopReason::Converged => TrainStatus::Converged,
            StopReason::MaxEpochs => TrainStatus::MaxEpochs,
            StopReason::Cancelled => TrainStatus::Paused,
            StopReason::Diverged { .. } => TrainStatus::Failed,
        };
    }

    /// A model is ready: loaded, or what training (or stopping it early) left.
    pub fn model_ready(&mut self, report: &ModelReport) {
        if self.layer_sizes.is_empty() {
            self.layer_sizes.clone_from(&report.layer_sizes);
        }
        match self.status {
            TrainStatus::Waiting => {
                self.status = TrainStatus::Loaded;
                let total = report.confusion.sum();
                let accuracy = report.confusion.diag().sum() as f64 / total as f64;
                self.loaded_accuracy = (total > 0).then_some(accuracy);
            }
            TrainStatus::Running | TrainStatus::Paused | TrainStatus::Stopping => {
                self.status = TrainStatus::Stopped;
            }
            _ => {}
        }
    }

    /// A training job failed (a loaded model stays loaded: a refused restart fails nothing).
    pub fn failed(&mut self) {
        if self.status != TrainStatus::Loaded {
            self.status = TrainStatus::Failed;
        }
    }

    /// Seconds left at the current pace if every remaining epoch runs.
    pub fn seconds_left(&self) -> Option<f64> {
        let last = self.history.last()?;
        let recent = &self.history[self.history.len().saturating_sub(5)..];
        let per_epoch = recent.iter().map(|e| e.seconds).sum::<f64>() / recent.len() as f64;
        let left = self.max_epochs.saturating_sub(last.epoch) as f64;
        Some(per_epoch * left)
    }
}

/// The Training tab drawn from its state and the session.
pub struct TrainingView<'a> {
    /// The tab's state.
    pub tab: &'a TrainingTab,
    /// What the tabs share.
    pub session: &'a Session,
    /// Theme.
    pub theme: &'a Theme,
}

impl Widget for &TrainingView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let [gauge, rest] = area.layout(&Layout::vertical([
            Constraint::Length(3),
            Constraint::Fill(1),
        ]));
        self.render_gauge(gauge, buf);
        // The confusion matrix needs 41 columns for 10 classes; the charts keep 28 at least.
        let side_w = if area.width >= 120 {
            62
        } else {
            51.min(area.width.saturating_sub(28))
        };
        // Issue 13: an open error list takes what the matrix does not need.
        let side_w = if self.tab.errors.open {
            // Without colour the shade glyph takes a column per cell.
            let n = u16::try_from(self.session.n_classes()).unwrap_or(10);
            side_w.min(13 + if theme.has_color() { 3 } else { 4 } * n)
        } else {
            side_w
        };
        let [charts, side] = rest.layout(&Layout::horizontal([
            Constraint::Fill(1),
            Constraint::Length(side_w),
        ]));
        let (loss, accuracy, separation) = chart_areas(
            charts,
            !self.tab.separation.is_empty(),
            self.tab.show_separation,
        );
        let s = &self.tab.series;
        let max_epoch = self.tab.history.last().map_or(1, |e| e.epoch).max(2);
        if self.tab.status == TrainStatus::Loaded {
            Paragraph::new(vec![
                Line::raw("the model was loaded (--model):"),
                Line::raw("no training, so no curves"),
            ])
            .style(theme.dim())
            .block(theme.block().title(" training "))
            .render(charts, buf);
        } else {
            let (train_loss, test_loss, scale) = if self.tab.log_loss {
                (&s.train_loss_log, &s.test_loss_log, YScale::Log)
            } else {
                (&s.train_loss, &s.test_loss, YScale::Linear)
            };
            render_chart(
                if self.tab.log_loss {
                    "loss (log)"
                } else {
                    "loss"
                },
                &[
                    ("train", train_loss, theme.series_train()),
                    ("test", test_loss, theme.series_test()),
                ],
                max_epoch,
                scale,
                theme,
                loss,
                buf,
            );
            if let Some(accuracy) = accuracy {
                render_chart(
                    "accuracy",
                    &[
                        ("train", &s.train_accuracy, theme.series_train()),
                        ("test", &s.test_accuracy, theme.series_test()),
                    ],
                    max_epoch,
                    YScale::Accuracy,
                    theme,
                    accuracy,
                    buf,
                );
                if separation.is_none() && !self.tab.separation.is_empty() {
                    separation_hint(theme, accuracy, buf);
                }
            }
            if let Some(area) = separation {
                (&SeparationChart {
                    series: &self.tab.separation,
                    output_layer: self.tab.layer_sizes.len(),
                    theme,
                })
                    .render(area, buf);
            }
        }
        // Issue 13: the open cell's images over the charts.
        if self.tab.errors.open {
            (&ErrorListView {
                browser: &self.tab.errors,
                session: self.session,
                theme,
            })
                .render(charts, buf);
        }
        let n = self.session.n_classes().max(1);
        // The matrix whole (labels, n columns of 3, accuracy, borders) and 4 lines of numbers
        // under it, or the numbers alone: a matrix cut short would show wrong columns.
        let grid_w = 11 + 3 * n;
        let grid_h = n + 3;
        if usize::from(side.width) < grid_w || usize::from(side.height) < grid_h + 4 {
            self.render_stats(side, buf);
            return;
        }
        let [grid, stats] = side.layout(&Layout::vertical([
            Constraint::Length(u16::try_from(grid_h).unwrap_or(13)),
            Constraint::Fill(1),
        ]));
        let title = if side.width >= 40 {
            " confusion (test, true x predicted) "
        } else {
            " confusion (test) "
        };
        let block = theme.block().title(title);
        // Issue 13: the cursor's cell in words under the grid.
        let block = match &self.session.model {
            Some(_) => block.title_bottom(Line::styled(
                cell_line(&self.tab.errors, self.session, theme),
                theme.dim(),
            )),
            None => block,
        };
        let inner = block.inner(grid);
        block.render(grid, buf);
        match &self.session.model {
            Some(m) => (&ErrorGrid {
                matrix: &m.confusion,
                accuracy: &m.per_class_accuracy,
                cell: self.tab.errors.cell,
                theme,
            })
                .render(inner, buf),
            None => Paragraph::new("after training")
                .style(theme.dim())
                .render(inner, buf),
        }
        self.render_stats(stats, buf);
    }
}

impl TrainingView<'_> {
    fn render_gauge(&self, area: Rect, buf: &mut Buffer) {
        let (t, theme) = (self.tab, self.theme);
        let block = theme.block().title(" progress ");
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.is_empty() {
            return;
        }
        if t.status == TrainStatus::Loaded {
            let accuracy = t.loaded_accuracy.map_or(String::new(), |a| {
                format!("test accuracy {:.1}%", a * 100.0)
            });
            let label = theme.join(&["model loaded (--model), not trained", &accuracy]);
            line_gauge(1.0, label, theme, theme.good()).render(inner, buf);
            return;
        }
        let epoch = t.history.last().map_or(0, |e| e.epoch);
        let rate = t.history.last().map_or(0.0, |e| e.samples_per_sec);
        let epochs = format!("epoch {epoch}/{}", t.max_epochs);
        let rate = format!("{rate:.0} samples/s");
        // The engine stops early once the loss stops improving: the time left is at most this.
        let left = if t.status.is_active() {
            t.seconds_left()
                .map(|s| format!("up to ~{} left", duration(s)))
        } else {
            None
        };
        let seed = format!("seed {}", t.seed);
        // Fields go whole, least needed first, so that no number is cut.
        let mut fields: Vec<&str> = vec![&epochs, t.status.label()];
        let optional = [Some(rate.as_str()), left.as_deref(), Some(seed.as_str())];
        for f in optional.into_iter().flatten() {
            let mut more = fields.clone();
            more.push(f);
            // Leave the bar 8 cells at least.
            if theme.join(&more).chars().count() + 9 <= usize::from(inner.width) {
                fields = more;
            }
        }
        let label = format!("{} ", theme.join(&fields));
        // A finished run fills the bar: converging early is finishing.
        let ratio = if matches!(t.status, TrainStatus::Converged | TrainStatus::MaxEpochs) {
            1.0
        } else if t.max_epochs == 0 {
            0.0
        } else {
            (epoch as f64 / t.max_epochs as f64).min(1.0)
        };
        line_gauge(ratio, label, theme, theme.good()).render(inner, buf);
    }

    fn render_stats(&self, area: Rect, buf: &mut Buffer) {
        let (t, theme) = (self.tab, self.theme);
        let mut lines = Vec::new();
        let sizes = t
            .layer_sizes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("-");
        lines.push(Line::from(vec![
            Span::styled("network ", theme.dim()),
            Span::raw(sizes),
        ]));
        if t.status == TrainStatus::Loaded {
            lines.push(Line::from(vec![
                Span::styled("model   ", theme.dim()),
                Span::raw("loaded from --model"),
            ]));
            if let Some(a) = t.loaded_accuracy {
                lines.push(Line::from(vec![
                    Span::styled("acc     ", theme.dim()),
                    Span::styled(format!("test {:.1}%", a * 100.0), theme.series_test()),
                ]));
            }
        } else if let Some(e) = t.history.last() {
            let test = |v: Option<f64>, pct: bool| {
                v.map_or("-".to_string(), |v| {
                    if pct {
                        format!("{:.1}%", v * 100.0)
                    } else {
                        format!("{v:.4}")
                    }
                })
            };
            lines.push(Line::from(vec![
                Span::styled("loss    ", theme.dim()),
                Span::styled(format!("train {:.4}", e.train_loss), theme.series_train()),
                Span::raw("  "),
                Span::styled(
                    format!("test {}", test(e.test_loss, false)),
                    theme.series_test(),
                ),
            ]));
            lines.push(Line::from(vec![
                Span::styled("acc     ", theme.dim()),
                Span::styled(
                    format!("train {:.1}%", e.train_accuracy * 100.0),
                    theme.series_train(),
                ),
                Span::raw("  "),
                Span::styled(
                    format!("test {}", test(e.test_accuracy, true)),
                    theme.series_test(),
                ),
            ]));
            let total: f64 = t.history.iter().map(|e| e.seconds).sum();
            lines.push(Line::from(vec![
                Span::styled("time    ", theme.dim()),
                Span::raw(format!("{} ({:.2} s/epoch)", duration(total), e.seconds)),
            ]));
        } else {
            lines.push(Line::styled("waiting for the first epoch", theme.dim()));
        }
        // Narrow: drop whole lines and fields rather than cut a number.
        let inner_w = usize::from(area.width.saturating_sub(2));
        let lines: Vec<Line> = lines
            .into_iter()
            .filter_map(|l| {
                if l.width() <= inner_w {
                    return Some(l);
                }
                // "label  train X  test Y": keep the label and the first field.
                let spans: Vec<Span> = l.spans.into_iter().take(2).collect();
                let short = Line::from(spans);
                (short.width() <= inner_w).then_some(short)
            })
            .collect();
        Paragraph::new(lines)
            .block(theme.block().title(" latest "))
            .render(area, buf);
    }
}

/// A one-line gauge in the theme's glyphs, its filled part in `filled` (colour only where
/// there is colour).
pub fn line_gauge<'a>(ratio: f64, label: String, theme: &Theme, filled: Style) -> LineGauge<'a> {
    let g = theme.glyphs;
    let gauge = LineGauge::default()
        .ratio(ratio.clamp(0.0, 1.0))
        .label(Span::styled(label, theme.text()))
        .filled_symbol(symbol(g.gauge_on))
        .unfilled_symbol(symbol(g.gauge_off));
    if theme.has_color() {
        gauge.filled_style(filled).unfilled_style(theme.dim())
    } else {
        gauge
    }
}

/// A glyph as the `&'static str` ratatui's symbols take.
fn symbol(c: char) -> &'static str {
    match c {
        '█' => "█",
        '─' => "─",
        '#' => "#",
        '-' => "-",
        '.' => ".",
        _ => " ",
    }
}

/// How a chart's y axis is ranged and labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum YScale {
    /// From 0 (or below) to just above the largest value.
    Linear,
    /// log10 values, labelled with the values themselves.
    Log,
    /// Fractions: up to 1, from a floor just below the smallest value, at least 0.05 tall.
    Accuracy,
}

/// A named curve and its style.
type Series<'a> = (&'a str, &'a Vec<(f64, f64)>, Style);

/// The y range of a chart's values.
fn y_range(series: &[Series], scale: YScale) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for (_, s, _) in series {
        for &(_, v) in s.iter() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    match scale {
        YScale::Linear => (0.0f64.min(lo), (hi * 1.05).max(lo + 1e-6)),
        YScale::Log => {
            let pad = ((hi - lo) * 0.05).max(0.05);
            (lo - pad, hi + pad)
        }
        YScale::Accuracy => {
            // Round the floor down to 5 points, keep 5 points of room at least.
            let floor = ((lo - 0.01) * 20.0).floor() / 20.0;
            let top = (((hi + 0.01) * 20.0).ceil() / 20.0).min(1.0);
            let floor = floor.clamp(0.0, (top - 0.05).max(0.0));
            (floor, top)
        }
    }
}

fn render_chart(
    title: &str,
    series: &[Series],
    max_epoch: usize,
    scale: YScale,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let (lo, hi) = y_range(series, scale);
    // The legend lives in the title, so it shows at every size.
    let mut title_spans = vec![Span::styled(format!(" {title} "), theme.text())];
    let datasets: Vec<Dataset> = series
        .iter()
        .enumerate()
        .map(|(i, (name, data, style))| {
            let marker = theme.series_marker(i);
            let glyph = match marker {
                Marker::Custom(c) => c,
                _ => theme.glyphs.bullet,
            };
            title_spans.push(Span::styled(format!("{glyph} {name} "), *style));
            Dataset::default()
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(*style)
                .data(data)
        })
        .collect();
    let xmax = max_epoch as f64;
    let label = |v: f64| match scale {
        YScale::Log => format_loss(10f64.powf(v)),
        _ => format!("{v:.2}"),
    };
    let chart = Chart::new(datasets)
        .legend_position(None)
        .block(theme.block().title(Line::from(title_spans)))
        .x_axis(
            Axis::default()
                .style(theme.dim())
                .bounds([1.0, xmax])
                .labels(["1".to_string(), format!("epoch {max_epoch}")]),
        )
        .y_axis(
            Axis::default()
                .style(theme.dim())
                .bounds([lo, hi])
                .labels([label(lo), label(hi)]),
        );
    chart.render(area, buf);
    if !theme.glyphs.unicode {
        // ratatui draws the axes in box-drawing lines of its own.
        asciify_area(buf, area);
    }
}

/// A loss for an axis label: 3 significant digits at most.
fn format_loss(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Seconds as "1h02m", "3m20s" or "12s".
pub fn duration(seconds: f64) -> String {
    // Non-negative and far below u64::MAX for any run.
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
