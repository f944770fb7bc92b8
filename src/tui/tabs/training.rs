//! Training: its state (the epochs so far, where training is), its keys (pause, stop early,
//! restart), and its render: a progress gauge, loss and accuracy curves, the test confusion
//! matrix with per-class accuracy, and the latest numbers.

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Chart, Dataset, GraphType, LegendPosition, LineGauge, Paragraph, Widget,
};

use crate::compute::{Command, EpochMetrics, ModelReport, StopReason};
use crate::tui::app::{Action, Effect, Session, TAB_DIGITS, Tab};
use crate::tui::keys::{Binding, Show, bind};
use crate::tui::theme::Theme;
use crate::tui::widgets::ConfusionGrid;

/// A test metric the engine may not have (no test split): `None` then. Takes the engine's
/// `Option<f64>` as it is, and reads a non-finite value as missing.
pub fn metric(v: impl Into<Option<f64>>) -> Option<f64> {
    v.into().filter(|v| v.is_finite())
}

/// What the Training tab's keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingAction {
    /// Pause or resume training.
    TogglePause,
    /// Stop training now and keep the model so far.
    Stop,
    /// Train again with the next seed.
    Restart,
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
        "restart (new seed)",
    ),
    bind(
        &[KeyCode::Char('1')],
        Action::GoTo(Tab::Training),
        "tab/1-3",
        "tabs",
    )
    .shown(Show::Bar),
    TAB_DIGITS[1],
    TAB_DIGITS[2],
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
            TrainingAction::Restart if self.status == TrainStatus::Loaded => vec![Effect::Say(
                "a saved model was given (--model): nothing to retrain".into(),
            )],
            TrainingAction::Restart => vec![Effect::Send(Command::RestartTraining {
                seed: self.seed.wrapping_add(1),
            })],
        }
    }

    /// A training run starts: the old one is forgotten.
    pub fn started(&mut self, seed: u64, max_epochs: usize, layer_sizes: Vec<usize>) {
        *self = TrainingTab {
            seed,
            max_epochs,
            layer_sizes,
            status: TrainStatus::Running,
            ..TrainingTab::default()
        };
    }

    /// Record one epoch.
    pub fn push(&mut self, m: EpochMetrics) {
        if self.status == TrainStatus::Waiting {
            self.status = TrainStatus::Running;
        }
        #[expect(clippy::cast_precision_loss)]
        let x = m.epoch as f64;
        self.series.train_loss.push((x, m.train_loss));
        self.series.train_accuracy.push((x, m.train_accuracy));
        if let Some(v) = metric(m.test_loss) {
            self.series.test_loss.push((x, v));
        }
        if let Some(v) = metric(m.test_accuracy) {
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
            TrainStatus::Waiting => self.status = TrainStatus::Loaded,
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
        #[expect(clippy::cast_precision_loss)]
        let per_epoch = recent.iter().map(|e| e.seconds).sum::<f64>() / recent.len() as f64;
        #[expect(clippy::cast_precision_loss)]
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
        let side_w = if area.width >= 120 { 62 } else { 51 };
        let [charts, side] = rest.layout(&Layout::horizontal([
            Constraint::Fill(1),
            Constraint::Length(side_w),
        ]));
        let [loss, accuracy] = charts.layout(&Layout::vertical([
            Constraint::Fill(1),
            Constraint::Fill(1),
        ]));
        let s = &self.tab.series;
        let max_epoch = self.tab.history.last().map_or(1, |e| e.epoch).max(2);
        render_chart(
            " loss (cross-entropy) ",
            &[
                ("train", &s.train_loss, theme.series_train()),
                ("test", &s.test_loss, theme.series_test()),
            ],
            max_epoch,
            None,
            theme,
            loss,
            buf,
        );
        render_chart(
            " accuracy ",
            &[
                ("train", &s.train_accuracy, theme.series_train()),
                ("test", &s.test_accuracy, theme.series_test()),
            ],
            max_epoch,
            Some((0.0, 1.0)),
            theme,
            accuracy,
            buf,
        );
        let n = self.session.n_classes().max(1);
        let [grid, stats] = side.layout(&Layout::vertical([
            Constraint::Length(u16::try_from(n + 3).unwrap_or(13)),
            Constraint::Fill(1),
        ]));
        let block = Block::bordered().title(" confusion (test, true x predicted) ");
        let inner = block.inner(grid);
        block.render(grid, buf);
        match &self.session.model {
            Some(m) => (&ConfusionGrid {
                matrix: &m.confusion,
                accuracy: &m.per_class_accuracy,
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
        let block = Block::bordered().title(" progress ");
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.is_empty() {
            return;
        }
        let epoch = t.history.last().map_or(0, |e| e.epoch);
        let rate = t.history.last().map_or(0.0, |e| e.samples_per_sec);
        let left = if t.status.is_active() {
            t.seconds_left()
                .map_or(String::new(), |s| format!(" · ~{} left", duration(s)))
        } else {
            String::new()
        };
        let label = format!(
            "epoch {epoch}/{} · {rate:.0} samples/s{left} · {} · seed {} ",
            t.max_epochs,
            t.status.label(),
            t.seed
        );
        #[expect(clippy::cast_precision_loss)]
        let ratio = if t.max_epochs == 0 {
            0.0
        } else {
            (epoch as f64 / t.max_epochs as f64).min(1.0)
        };
        line_gauge(ratio, label, theme).render(inner, buf);
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
        if let Some(e) = t.history.last() {
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
                    format!("test {}", test(metric(e.test_loss), false)),
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
                    format!("test {}", test(metric(e.test_accuracy), true)),
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
        Paragraph::new(lines)
            .block(Block::bordered().title(" latest "))
            .render(area, buf);
    }
}

/// A one-line gauge in the theme: a heavy line where colour shows it, `#` and `.` without.
pub fn line_gauge<'a>(ratio: f64, label: String, theme: &Theme) -> LineGauge<'a> {
    let gauge = LineGauge::default()
        .ratio(ratio.clamp(0.0, 1.0))
        .label(Span::styled(label, theme.text()));
    if theme.has_color() {
        gauge
            .filled_symbol("█")
            .unfilled_symbol("─")
            .filled_style(theme.good())
            .unfilled_style(theme.dim())
    } else {
        gauge.filled_symbol("#").unfilled_symbol(".")
    }
}

/// A named curve and its style.
type Series<'a> = (&'a str, &'a Vec<(f64, f64)>, Style);

fn render_chart(
    title: &str,
    series: &[Series],
    max_epoch: usize,
    y_fixed: Option<(f64, f64)>,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let marker = if theme.braille {
        Marker::Braille
    } else {
        Marker::Dot
    };
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for (_, s, _) in series {
        for &(_, v) in s.iter() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let (lo, hi) = match y_fixed {
        Some(b) => b,
        None if lo <= hi => (0.0f64.min(lo), (hi * 1.05).max(lo + 1e-6)),
        None => (0.0, 1.0),
    };
    let datasets: Vec<Dataset> = series
        .iter()
        .map(|(name, data, style)| {
            Dataset::default()
                .name(*name)
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(*style)
                .data(data)
        })
        .collect();
    #[expect(clippy::cast_precision_loss)]
    let xmax = max_epoch as f64;
    // Loss falls towards the bottom right, accuracy rises to the top right: keep the legend
    // out of the curves' way.
    let legend = if y_fixed.is_some() {
        LegendPosition::BottomRight
    } else {
        LegendPosition::TopRight
    };
    let chart = Chart::new(datasets)
        .legend_position(Some(legend))
        .block(Block::bordered().title(title.to_string()))
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
                .labels([format!("{lo:.2}"), format!("{hi:.2}")]),
        );
    chart.render(area, buf);
}

/// Seconds as "1h02m", "3m20s" or "12s".
pub fn duration(seconds: f64) -> String {
    // Non-negative and far below u64::MAX for any run.
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
