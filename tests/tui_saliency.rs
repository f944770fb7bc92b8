//! Issue 14 in the Saliency tab, on state without a terminal: the cache of finished maps (the
//! same values back, no worker command), the keys (overlay, units, versus, class mean, scale
//! lock), class-level map events, the zoom and the legend at every colour depth, and snapshots
//! of side-by-side and overlay at 80x24 and 120x40 in colour and without.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use layerscope::compute::{
    Attribution, ClassMean, ClassMeanSnapshot, Command, Event, Method, Part, Slots, Units,
};
use layerscope::tui::fixture::demo_app;
use layerscope::tui::render::render;
use layerscope::tui::snapshot::render_snapshot_with;
use layerscope::tui::tabs::saliency::SaliencyLayout;
use layerscope::tui::theme::{ColorDepth, Theme};
use layerscope::tui::{App, Tab};
use ndarray::Array1;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    match app.action_for(KeyEvent::new(code, KeyModifiers::NONE)) {
        Some(a) => app.update(a),
        None => Vec::new(),
    }
}

/// A finished explanation of `class` whose values are `values`, with consistent bookkeeping.
fn attribution(values: Vec<f32>, class: usize, versus: Option<usize>, units: Units) -> Attribution {
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    let reference = 0.1021;
    let n = values.len();
    Attribution {
        values: Array1::from(values),
        stderr: Some(Array1::from_elem(n, 0.0015)),
        class,
        versus,
        units,
        samples: 200,
        model_evaluations: 40_000,
        output: reference + sum - 0.0002,
        reference,
        sum,
        completeness_gap: 0.0002,
        sum_stderr: Some(0.0031),
        max_drift: 0.0,
    }
}

/// The demo app on the Saliency tab, its opening explanation (request 0) finished and cached.
fn app() -> App {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('3'));
    // The fixture's map, plus a share of the digit's ink so that it sums to f(x) - E[f(b)] =
    // 0.82 - 0.1021 (the stroke raises the class's probability).
    let mut values = app.saliency.estimate.as_ref().unwrap().values.clone();
    let split = app.session.split.clone().unwrap();
    let ink = split.test.features.row(0);
    let (sum, ink_sum) = (values.iter().sum::<f32>(), ink.sum());
    let k = (0.7177 - sum) / ink_sum;
    for (v, &x) in values.iter_mut().zip(ink) {
        *v += k * x;
    }
    let class = app.saliency.explained_class.unwrap();
    app.on_event(
        Event::ExplainDone {
            id: 0,
            attribution: attribution(values, class, None, Units::Probability),
            seconds: 3.2,
        },
        &Slots::default(),
    );
    app
}

fn finish(app: &mut App, values: Vec<f32>) {
    let s = &app.saliency;
    let Some(class) = s.explained_class else {
        panic!("no class resolved")
    };
    let (id, versus, units) = (s.request_id, s.versus, s.units);
    app.on_event(
        Event::ExplainDone {
            id,
            attribution: attribution(values, class, versus, units),
            seconds: 0.5,
        },
        &Slots::default(),
    );
}

fn values(app: &App) -> Vec<f32> {
    app.saliency.estimate.as_ref().unwrap().values.clone()
}

#[test]
fn a_cached_explanation_comes_back_without_the_worker() {
    let mut app = app();
    let first = values(&app);
    let book = app.saliency.bookkeeping.unwrap();
    let cmds = press(&mut app, KeyCode::Right);
    assert!(
        matches!(cmds[..], [Command::Explain(r)] if r.index == 1),
        "{cmds:?}"
    );
    let second: Vec<f32> = (0..784).map(|i| (i % 7) as f32 * 0.01 - 0.03).collect();
    finish(&mut app, second.clone());
    assert!(app.saliency.done);
    let cmds = press(&mut app, KeyCode::Left);
    assert!(cmds.is_empty(), "cached: no worker command ({cmds:?})");
    assert!(app.saliency.done && !app.saliency.running);
    assert_eq!(values(&app), first, "the same values come back");
    assert_eq!(app.saliency.bookkeeping, Some(book));
    let cmds = press(&mut app, KeyCode::Right);
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(values(&app), second);
    // Another method is another explanation: the worker is asked.
    let cmds = press(&mut app, KeyCode::Char('m'));
    assert!(matches!(cmds[..], [Command::Explain(r)] if r.method == Method::GradientTimesInput));
}

#[test]
fn a_late_answer_of_a_superseded_request_is_cached_not_shown() {
    let mut app = app();
    press(&mut app, KeyCode::Right);
    let id1 = app.saliency.request_id;
    let class1 = app.saliency.explained_class.unwrap();
    press(&mut app, KeyCode::Right);
    let late = vec![0.5f32; 784];
    app.on_event(
        Event::ExplainDone {
            id: id1,
            attribution: attribution(late.clone(), class1, None, Units::Probability),
            seconds: 1.0,
        },
        &Slots::default(),
    );
    assert!(app.saliency.estimate.is_none(), "not the image shown");
    let cmds = press(&mut app, KeyCode::Left);
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(values(&app), late);
}

#[test]
fn units_toggle_asks_once_then_switches_from_the_cache() {
    let mut app = app();
    let probability = values(&app);
    let cmds = press(&mut app, KeyCode::Char('u'));
    assert!(
        matches!(cmds[..], [Command::Explain(r)] if r.units == Units::Logit && r.index == 0),
        "{cmds:?}"
    );
    let logit: Vec<f32> = probability.iter().map(|v| v * 40.0).collect();
    finish(&mut app, logit.clone());
    let text = render_snapshot_with(&app, Tab::Saliency, 120, 40, false, &no_colour());
    assert!(text.contains("[logit]"), "{text}");
    for _ in 0..3 {
        let cmds = press(&mut app, KeyCode::Char('u'));
        assert!(cmds.is_empty(), "{cmds:?}");
        let want = match app.saliency.units {
            Units::Probability => &probability,
            Units::Logit => &logit,
        };
        assert_eq!(&values(&app), want);
    }
}

#[test]
fn overlay_and_scale_lock_change_the_view_only() {
    let mut app = app();
    let before = render_snapshot_with(&app, Tab::Saliency, 120, 40, false, &no_colour());
    assert!(press(&mut app, KeyCode::Char('o')).is_empty());
    assert!(app.saliency.overlay);
    let overlay = render_snapshot_with(&app, Tab::Saliency, 120, 40, false, &no_colour());
    assert_ne!(before, overlay);
    assert!(press(&mut app, KeyCode::Char('o')).is_empty());
    assert_eq!(
        render_snapshot_with(&app, Tab::Saliency, 120, 40, false, &no_colour()),
        before
    );
    // Lock at this map's scale, then look at a map 10x larger: the legend keeps the lock.
    let locked_at = app.saliency.max_abs;
    assert!(press(&mut app, KeyCode::Char('L')).is_empty());
    press(&mut app, KeyCode::Right);
    finish(&mut app, vec![10.0 * locked_at; 784]);
    assert!((app.saliency.scale_max() - locked_at).abs() < 1e-9);
    let text = render_snapshot_with(&app, Tab::Saliency, 120, 40, false, &no_colour());
    assert!(text.contains("scale locked"), "{text}");
    press(&mut app, KeyCode::Char('L'));
    assert!((app.saliency.scale_max() - 10.0 * locked_at).abs() < 1e-6);
}

#[test]
fn versus_cycles_through_the_rivals_by_probability() {
    let mut app = app();
    let class = app.saliency.explained_class.unwrap();
    let probs = app.session.probabilities(Part::Test, 0).unwrap().to_vec();
    let mut rivals: Vec<usize> = (0..probs.len()).filter(|&c| c != class).collect();
    rivals.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let cmds = press(&mut app, KeyCode::Char('v'));
    assert!(
        matches!(cmds[..], [Command::Explain(r)] if r.versus == Some(rivals[0])),
        "{cmds:?}"
    );
    finish(&mut app, vec![0.01; 784]);
    let text = render_snapshot_with(&app, Tab::Saliency, 120, 40, false, &no_colour());
    assert!(
        text.contains(&format!("why {class} and not {}", rivals[0])),
        "{text}"
    );
    for &r in &rivals[1..] {
        let cmds = press(&mut app, KeyCode::Char('v'));
        assert!(matches!(cmds[..], [Command::Explain(q)] if q.versus == Some(r)));
    }
    // After the last rival, no contrast: the cached plain map, at once.
    let cmds = press(&mut app, KeyCode::Char('v'));
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(app.saliency.versus, None);
}

#[test]
fn the_error_browser_opens_prediction_versus_label() {
    let mut app = app();
    let cmds = app
        .saliency
        .open(Part::Test, 4, Some(8), Some(3), &app.session.clone());
    assert!(
        matches!(cmds[..], [Command::Explain(r)] if r.index == 4 && r.class == Some(8) && r.versus == Some(3)),
        "{cmds:?}"
    );
}

#[test]
fn class_mean_events_sharpen_the_view() {
    let mut app = app();
    let class = app.saliency.explained_class.unwrap();
    let cmds = press(&mut app, KeyCode::Char('a'));
    let [Command::ExplainClassMean(r)] = cmds[..] else {
        panic!("{cmds:?}")
    };
    assert_eq!((r.class, r.images, r.versus), (class, 100, None));
    assert_eq!(r.id, app.saliency.request_id);
    assert!(app.saliency.estimate.is_none());
    let rows = app.saliency.class_mean.as_ref().unwrap().rows;
    assert!(
        rows > 1,
        "the demo's test split has {rows} images of {class}"
    );
    let slots = Slots::default();
    let snap = |id, done: usize, scale: f32| ClassMeanSnapshot {
        id,
        values: vec![scale; 784],
        stderr: vec![scale / 10.0; 784],
        images_done: done,
        images_total: rows,
        seconds: 0.3,
    };
    slots.class_mean.put(snap(r.id - 1, 1, 9.0));
    app.on_event(Event::ClassMeanProgress, &slots);
    assert!(app.saliency.estimate.is_none(), "a stale request's map");
    slots.class_mean.put(snap(r.id, 1, 0.02));
    app.on_event(Event::ClassMeanProgress, &slots);
    assert_eq!(app.saliency.estimate.as_ref().unwrap().samples_done, 1);
    slots.class_mean.put(snap(r.id, 2, 0.03));
    app.on_event(Event::ClassMeanProgress, &slots);
    let text = render_snapshot_with(&app, Tab::Saliency, 120, 40, false, &no_colour());
    assert!(text.contains(&format!("2/{rows} images")), "{text}");
    assert!(text.contains("mean SE 10.0% of max"), "{text}");
    assert!(text.contains("refining"), "{text}");
    let mean = ClassMean {
        values: Array1::from_elem(784, 0.025),
        stderr: Array1::from_elem(784, 0.001),
        class,
        versus: None,
        units: Units::Probability,
        method: Method::Permutation,
        images: rows,
        samples_per_image: 20,
        model_evaluations: 1000,
        output: 0.9,
        reference: 0.1,
        sum: 19.6,
        completeness_gap: 18.8,
        sum_stderr: Some(0.01),
        sampling_share: Some(0.5),
    };
    app.on_event(
        Event::ClassMeanDone {
            id: r.id,
            mean: Box::new(mean),
            seconds: 1.5,
        },
        &slots,
    );
    assert!(app.saliency.done);
    let text = render_snapshot_with(&app, Tab::Saliency, 120, 40, false, &no_colour());
    assert!(text.contains("mean f(x) 0.9000"), "{text}");
    assert!(
        text.contains(&format!("mean of {rows} test images of {class}")),
        "{text}"
    );
    // Back to the image (cached) and to the class mean (cached): no worker command.
    assert!(press(&mut app, KeyCode::Char('a')).is_empty());
    assert!(app.saliency.class_mean.is_none());
    assert!(press(&mut app, KeyCode::Char('a')).is_empty());
    assert_eq!(values(&app), vec![0.025; 784]);
}

fn no_colour() -> Theme {
    Theme::new(ColorDepth::None, false)
}

fn themes() -> [Theme; 5] {
    [
        Theme::new(ColorDepth::TrueColor, false),
        Theme::new(ColorDepth::Ansi256, false),
        Theme::new(ColorDepth::Ansi16, false),
        Theme::new(ColorDepth::None, false),
        Theme::new(ColorDepth::None, true),
    ]
}

/// Issue 14 (1): the largest integer zoom that fits, the same in both modes: 2x at 120x40, 1x at
/// 80x24 (the body is the screen less the tab bar, message line and key bar).
#[test]
fn zoom_is_the_largest_that_fits() {
    for overlay in [false, true] {
        let l = SaliencyLayout::new(Rect::new(0, 0, 120, 37), (28, 28), overlay);
        assert_eq!((l.zoom, l.map), (2, (56, 28)), "120x40 overlay {overlay}");
        let l = SaliencyLayout::new(Rect::new(0, 0, 80, 21), (28, 28), overlay);
        assert_eq!((l.zoom, l.map), (1, (28, 14)), "80x24 overlay {overlay}");
    }
    // Scikit-learn's 8 x 8 digits grow until they fill the space.
    let l = SaliencyLayout::new(Rect::new(0, 0, 120, 37), (8, 8), false);
    assert_eq!(l.zoom, 7);
}

/// The map is drawn at that size in every theme: a map of one value fills 56 cells of a row of
/// the map's panel at 120x40.
#[test]
fn the_map_is_drawn_at_2x_at_every_colour_depth() {
    let mut app = app();
    let mut snap = app.saliency.estimate.clone().unwrap();
    snap.values = vec![0.01; 784];
    app.saliency.set_estimate(snap);
    for theme in themes() {
        let area = Rect::new(0, 0, 120, 40);
        let mut buf = Buffer::empty(area);
        render(&app, Tab::Saliency, &theme, area, &mut buf);
        let drawn = (60..120)
            .filter(|&x| {
                let c = &buf[(x, 15)];
                c.bg != Color::Reset || matches!(c.symbol(), "█" | "@")
            })
            .count();
        assert_eq!(
            drawn, 56,
            "{:?} ascii {}",
            theme.depth, !theme.glyphs.unicode
        );
    }
}

/// Issue 14 (7): the legend shows 0 and both ends at every colour depth, at 80x24 and 120x40.
#[test]
fn the_legend_shows_zero_and_both_ends_everywhere() {
    let app = app();
    let end = layerscope::tui::widgets::heatmap::format_value(app.saliency.max_abs);
    for theme in themes() {
        for (w, h) in [(80, 24), (120, 40)] {
            let text = render_snapshot_with(&app, Tab::Saliency, w, h, false, &theme);
            let legend = text
                .lines()
                .find(|l| l.contains(&format!("-{end}")))
                .unwrap_or_else(|| panic!("{:?} {w}x{h}: no legend\n{text}", theme.depth));
            let after = legend.split(&format!("-{end}")).nth(1).unwrap();
            assert!(after.contains(" 0 ") && after.contains(&end), "{legend}");
            // The words say the colours this depth shows.
            let words = match theme.depth {
                ColorDepth::None => "lowers",
                ColorDepth::Ansi16 => "yellow raises",
                _ => "orange raises",
            };
            assert!(text.contains(words) || w < 100, "{:?}: {text}", theme.depth);
        }
    }
}

/// A colour cell as one character (as tests/tui_snapshots.rs): gray levels 0-9, the diverging
/// blue and orange sides b/B and o/O, anything else '*', the terminal default ' '.
fn colour_char(c: Color) -> char {
    match c {
        Color::Rgb(r, g, b) => {
            let (lo, hi) = (r.min(g).min(b), r.max(g).max(b));
            if hi - lo < 16 {
                char::from_digit(u32::from(hi) * 9 / 255, 10).unwrap_or('9')
            } else if b > r {
                if hi - lo > 96 { 'B' } else { 'b' }
            } else if r > b {
                if hi - lo > 96 { 'O' } else { 'o' }
            } else {
                '*'
            }
        }
        Color::Reset => ' ',
        _ => '*',
    }
}

/// The colours of a frame, two lines per row (foreground: upper half-block; background: lower).
fn colour_grid(app: &App, w: u16, h: u16) -> String {
    let theme = Theme::new(ColorDepth::TrueColor, false);
    let area = Rect::new(0, 0, w, h);
    let mut buf = Buffer::empty(area);
    render(app, Tab::Saliency, &theme, area, &mut buf);
    let mut out = String::new();
    for y in 0..h {
        for pick in [
            |c: &ratatui::buffer::Cell| c.fg,
            |c: &ratatui::buffer::Cell| c.bg,
        ] {
            out.extend((0..w).map(|x| colour_char(pick(&buf[(x, y)]))));
            out.push('\n');
        }
    }
    out
}

fn overlaid(on: bool) -> App {
    let mut app = app();
    app.saliency.overlay = on;
    app
}

#[test]
fn side_by_side_80x24_no_colour() {
    let text = render_snapshot_with(&overlaid(false), Tab::Saliency, 80, 24, false, &no_colour());
    insta::assert_snapshot!(text);
}

#[test]
fn side_by_side_120x40_no_colour() {
    let text = render_snapshot_with(
        &overlaid(false),
        Tab::Saliency,
        120,
        40,
        false,
        &no_colour(),
    );
    insta::assert_snapshot!(text);
}

#[test]
fn overlay_80x24_no_colour() {
    let text = render_snapshot_with(&overlaid(true), Tab::Saliency, 80, 24, false, &no_colour());
    insta::assert_snapshot!(text);
}

#[test]
fn overlay_120x40_no_colour() {
    let text = render_snapshot_with(&overlaid(true), Tab::Saliency, 120, 40, false, &no_colour());
    insta::assert_snapshot!(text);
}

#[test]
fn side_by_side_80x24_colour() {
    insta::assert_snapshot!(colour_grid(&overlaid(false), 80, 24));
}

#[test]
fn side_by_side_120x40_colour() {
    insta::assert_snapshot!(colour_grid(&overlaid(false), 120, 40));
}

#[test]
fn overlay_80x24_colour() {
    let grid = colour_grid(&overlaid(true), 80, 24);
    // Both signs over a faded (gray) digit.
    for c in ['b', 'o', 'B', 'O', '1'] {
        assert!(grid.contains(c), "{c}\n{grid}");
    }
    insta::assert_snapshot!(grid);
}

#[test]
fn overlay_120x40_colour() {
    insta::assert_snapshot!(colour_grid(&overlaid(true), 120, 40));
}

/// The worker end to end on small data: a class-level map request runs `explain_class_mean` on
/// the first test images of the class, reports the running map after each image, and its result
/// lands in the tab (and its cache) through the app.
#[test]
fn the_worker_computes_a_class_mean() {
    use clap::Parser;
    use layerscope::compute::{ClassMeanRequest, Worker};
    use std::sync::mpsc;
    use std::time::Duration;

    let cli = layerscope::cli::Cli::parse_from([
        "layerscope",
        "--sample",
        "300",
        "--epochs",
        "2",
        "--hidden",
        "16",
        "--n",
        "60",
    ]);
    let config = layerscope::tui::config(&cli.data, &cli.model, &cli.view).unwrap();
    let labels = config.split.test.labels.clone();
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(config, move |e| {
        let _ = tx.send(e);
    });
    let mut app = App::new(30.0);
    let next = |app: &mut App| {
        let e = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("an event within 120 s");
        let idle = matches!(e, Event::Idle);
        app.on_event(e, &worker.slots);
        idle
    };
    while !next(&mut app) {}
    app.tab = Tab::Saliency;
    let class = usize::from(labels[0]);
    app.saliency.class = Some(class);
    app.saliency.class_mean_images = 4;
    let cmds = press(&mut app, KeyCode::Char('a'));
    let [Command::ExplainClassMean(r)] = cmds[..] else {
        panic!("{cmds:?}")
    };
    let want = ClassMeanRequest {
        id: r.id,
        class,
        versus: None,
        images: 4,
        method: Method::Permutation,
        units: Units::Probability,
    };
    assert_eq!(r, want);
    let rows = r.rows(&labels);
    assert!(!rows.is_empty() && rows.len() <= 4);
    worker.send(Command::ExplainClassMean(r));
    while !next(&mut app) {}
    let s = &app.saliency;
    assert!(s.done, "the class mean finished");
    let e = s.estimate.clone().unwrap();
    assert_eq!((e.samples_done, e.samples_total), (rows.len(), rows.len()));
    assert!(e.values.iter().any(|&v| v != 0.0));
    let b = s.bookkeeping.unwrap();
    assert!(b.mean && b.sum_stderr.is_some(), "{b:?}");
    // Back to the image, then to the class mean again: from the cache, nothing asked.
    press(&mut app, KeyCode::Char('a'));
    assert!(app.saliency.class_mean.is_none());
    assert!(press(&mut app, KeyCode::Char('a')).is_empty());
    assert_eq!(app.saliency.estimate.as_ref().unwrap().values, e.values);
    assert!(worker.shutdown(Duration::from_secs(10)));
}
