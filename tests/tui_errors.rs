//! Issue 13, the terminal side: the error browser over the confusion matrix, placed test images
//! in the maps, the `/` filter and its query language, colour by confidence, and the neighbours
//! panel; keys on state (no terminal) and snapshots of the fixture.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use layerscope::compute::{Command, Part};
use layerscope::tui::app::{ColorBy, Effect};
use layerscope::tui::fixture::{N_PLACED, demo_app};
use layerscope::tui::query::{Query, Term};
use layerscope::tui::snapshot::render_snapshot_with;
use layerscope::tui::tabs::errors::{ErrorsAction, cell_rows};
use layerscope::tui::theme::{ColorDepth, Theme};
use layerscope::tui::{App, Tab, render_snapshot};

fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    match app.action_for(KeyEvent::new(code, KeyModifiers::NONE)) {
        Some(a) => app.update(a),
        None => Vec::new(),
    }
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

/// The off-diagonal cell with the most test images (the fixture's has 3).
fn worst_mistake(app: &App) -> (usize, usize) {
    let m = &app.session.model.as_ref().unwrap().confusion;
    let mut best = (0, 1);
    for ((r, c), &k) in m.indexed_iter() {
        if r != c && k > m[best] {
            best = (r, c);
        }
    }
    best
}

/// An off-diagonal cell whose most confident image is among the placed test images.
fn placed_mistake(app: &App) -> (usize, usize) {
    let report = app.session.model.as_ref().unwrap();
    let labels = &app.session.split.as_ref().unwrap().test.labels;
    report
        .confusion
        .indexed_iter()
        .map(|(cell, _)| cell)
        .find(|&(l, p)| {
            l != p
                && cell_rows(report, labels, l, p)
                    .first()
                    .is_some_and(|&i| i < N_PLACED)
        })
        .expect("a placed mistake")
}

/// The Training tab with the cell (l, p) opened by the arrow keys and Enter.
fn open_cell(l: usize, p: usize) -> App {
    let mut app = demo_app();
    for _ in 0..l {
        press(&mut app, KeyCode::Down);
    }
    for _ in 0..p {
        press(&mut app, KeyCode::Right);
    }
    press(&mut app, KeyCode::Enter);
    app
}

#[test]
fn every_cells_list_matches_its_confusion_count() {
    let app = demo_app();
    let report = app.session.model.as_ref().unwrap();
    let labels = &app.session.split.as_ref().unwrap().test.labels;
    let mut total = 0;
    for ((l, p), &count) in report.confusion.indexed_iter() {
        let rows = cell_rows(report, labels, l, p);
        assert_eq!(rows.len(), count, "cell {l},{p}");
        total += rows.len();
        let probs: Vec<f32> = rows.iter().map(|&i| report.test_probs[[i, p]]).collect();
        assert!(
            probs.windows(2).all(|w| w[0] >= w[1]),
            "most confident first: {probs:?}"
        );
        for &i in &rows {
            assert_eq!(usize::from(labels[i]), l);
        }
    }
    assert_eq!(total, labels.len(), "every test image in one cell");
    // The keys open the same list.
    let (l, p) = worst_mistake(&app);
    let opened = open_cell(l, p);
    assert!(opened.training.errors.open);
    assert_eq!(opened.training.errors.list, cell_rows(report, labels, l, p));
}

#[test]
fn arrows_move_the_cell_and_stop_at_the_edges() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Up);
    press(&mut app, KeyCode::Left);
    assert_eq!(app.training.errors.cell, (0, 0));
    for _ in 0..15 {
        press(&mut app, KeyCode::Right);
    }
    press(&mut app, KeyCode::Down);
    assert_eq!(app.training.errors.cell, (1, 9));
    // An empty cell says so and opens nothing.
    press(&mut app, KeyCode::Enter);
    assert!(!app.training.errors.open);
    assert!(
        app.message
            .as_deref()
            .unwrap_or("")
            .contains("no test image"),
        "{:?}",
        app.message
    );
}

#[test]
fn enter_explains_the_mistake_why_the_prediction_and_not_the_label() {
    let (l, p) = worst_mistake(&demo_app());
    let mut app = open_cell(l, p);
    let list = app.training.errors.list.clone();
    assert!(list.len() >= 2, "{list:?}");
    press(&mut app, KeyCode::Down);
    assert_eq!(app.training.errors.cursor, 1);
    // The effect asks for class = prediction, versus = label.
    let mut browser = app.training.errors.clone();
    let effects = browser.update(ErrorsAction::Enter, &app.session);
    assert_eq!(
        effects,
        [Effect::Explain {
            part: Part::Test,
            index: list[1],
            class: Some(p),
            versus: Some(l),
        }]
    );
    let cmds = press(&mut app, KeyCode::Enter);
    assert_eq!(app.tab, Tab::Saliency);
    assert!(
        matches!(cmds[..], [Command::Explain(r)] if r.part == Part::Test && r.index == list[1]),
        "{cmds:?}"
    );
}

#[test]
fn e_shows_the_image_in_the_embeddings_or_says_it_is_not_placed() {
    let (l, p) = placed_mistake(&demo_app());
    let mut app = open_cell(l, p);
    let index = app.training.errors.list[0];
    assert!(index < N_PLACED, "the fixture places the first {N_PLACED}");
    press(&mut app, KeyCode::Char('e'));
    assert_eq!(app.tab, Tab::Embeddings);
    assert_eq!(app.embed.selection(), (Part::Test, index));
    // A test image past the placed ones.
    let mut app = open_cell(l, p);
    app.training.errors.list = vec![N_PLACED + 5];
    let before = app.embed.selection();
    press(&mut app, KeyCode::Char('e'));
    assert_eq!(app.tab, Tab::Embeddings);
    assert_eq!(app.embed.selection(), before);
    let m = app.message.clone().unwrap_or_default();
    assert!(m.contains("not in the maps"), "{m}");
}

#[test]
fn esc_closes_the_help_first_then_the_list_and_never_quits() {
    let (l, p) = worst_mistake(&demo_app());
    let mut app = open_cell(l, p);
    press(&mut app, KeyCode::Char('?'));
    press(&mut app, KeyCode::Esc);
    assert!(!app.show_help);
    assert!(app.training.errors.open, "the help went first");
    press(&mut app, KeyCode::Esc);
    assert!(!app.training.errors.open);
    press(&mut app, KeyCode::Esc);
    assert!(!app.should_quit);
}

#[test]
fn placed_test_images_are_points_n_walks_into_them() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    let n_train = app.embed.labels.len();
    let pts = &app.embed.points;
    assert_eq!(pts.n_placed(), N_PLACED);
    assert_eq!(pts.facts.len(), n_train + N_PLACED);
    let wrong_tests = pts
        .facts
        .iter()
        .filter(|f| f.part == Part::Test && f.pred != f.label)
        .count();
    assert!(wrong_tests > 0);
    let mut seen_test = false;
    for _ in 0..pts.facts.len() {
        press(&mut app, KeyCode::Char('n'));
        let u = app.embed.selected_point();
        let f = app.embed.points.facts[u];
        assert_ne!(f.pred, f.label, "n stops on mistakes only");
        seen_test |= app.embed.selection().0 == Part::Test;
    }
    assert!(seen_test, "n reaches the placed test images");
    // N goes back.
    let here = app.embed.selected_point();
    press(&mut app, KeyCode::Char('n'));
    press(&mut app, KeyCode::Char('N'));
    assert_eq!(app.embed.selected_point(), here);
}

#[test]
fn c_cycles_to_confidence_with_a_legend() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    for _ in 0..3 {
        press(&mut app, KeyCode::Char('c'));
    }
    assert_eq!(app.embed.color_by, ColorBy::Confidence);
    let text = render_snapshot(&app, Tab::Embeddings, 120, 40, false);
    assert!(text.contains("confidence <0.5"), "{text}");
    // The groups are confidence bins, not all one.
    let groups = &app.embed.points.groups;
    let distinct: std::collections::BTreeSet<u8> = groups.iter().copied().collect();
    assert!(distinct.len() >= 5, "{distinct:?}");
    press(&mut app, KeyCode::Char('c'));
    assert_eq!(app.embed.color_by, ColorBy::Label);
}

#[test]
fn query_parser_good_queries() {
    let names: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    let q = Query::parse(" label=4  pred=9 wrong conf<0.6 test ", &names, 10).unwrap();
    assert_eq!(
        q.terms,
        [
            Term::Label(4),
            Term::Pred(9),
            Term::Wrong,
            Term::ConfBelow(0.6),
            Term::Part(Part::Test)
        ]
    );
    assert_eq!(q.text, "label=4  pred=9 wrong conf<0.6 test");
    let iris: Vec<String> = ["setosa", "versicolor", "virginica"]
        .map(String::from)
        .to_vec();
    let q = Query::parse("label=Virginica right conf>0.9 train", &iris, 3).unwrap();
    assert_eq!(
        q.terms,
        [
            Term::Label(2),
            Term::Right,
            Term::ConfAbove(0.9),
            Term::Part(Part::Train)
        ]
    );
    assert!(Query::parse("", &names, 10).unwrap().terms.is_empty());
}

#[test]
fn query_parser_bad_queries_name_the_term() {
    let names: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    let cases = [
        (
            "label=4 lable=3",
            "`lable=3` (column 9)",
            "unknown field `lable`",
        ),
        (
            "pred=12",
            "`pred=12`",
            "class 12 does not exist: expected 0 to 9",
        ),
        ("conf<1.5", "`conf<1.5`", "not a probability"),
        ("conf<", "`conf<`", "not a probability"),
        ("label=", "`label=`", "a class is missing"),
        ("wrongg", "`wrongg`", "expected one of: label=C"),
        ("size>3", "`size>3`", "unknown field `size`"),
        ("label=seven", "`label=seven`", "not a class id or name"),
    ];
    for (text, token, reason) in cases {
        let e = Query::parse(text, &names, 10).unwrap_err().to_string();
        assert!(e.contains(token) && e.contains(reason), "{text}: {e}");
    }
}

#[test]
fn the_filter_dims_what_does_not_match_and_n_walks_the_matches() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    let theme = Theme::new(ColorDepth::None, false);
    let before = render_snapshot_with(&app, Tab::Embeddings, 120, 40, false, &theme);
    press(&mut app, KeyCode::Char('/'));
    // Every key goes to the query while it is typed: q does not quit.
    type_text(&mut app, "label=3 q");
    assert!(!app.should_quit);
    assert_eq!(app.embed.points.editing.as_deref(), Some("label=3 q"));
    press(&mut app, KeyCode::Enter);
    let m = app.message.clone().unwrap_or_default();
    assert!(m.contains("`q`"), "the bad term is named: {m}");
    assert!(app.embed.points.editing.is_some(), "stays open to be fixed");
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Enter);
    assert!(app.embed.points.editing.is_none());
    let pts = &app.embed.points;
    let want = pts.facts.iter().filter(|f| f.label == 3).count();
    assert_eq!(pts.matches.iter().filter(|&&m| m).count(), want);
    assert!(want > 0);
    for _ in 0..5 {
        press(&mut app, KeyCode::Char('n'));
        let u = app.embed.selected_point();
        assert_eq!(app.embed.points.facts[u].label, 3);
    }
    // Dimmed, not hidden: the maps' occupied cells are the same ones (without colour the
    // dimmed points are dots).
    let after = render_snapshot_with(&app, Tab::Embeddings, 120, 40, false, &theme);
    let occupied = |s: &str| -> Vec<(usize, usize)> {
        s.lines()
            .enumerate()
            .skip(2)
            .take(32)
            .flat_map(|(y, l)| {
                l.chars()
                    .take(85)
                    .enumerate()
                    .filter(|&(_, c)| c != ' ' && c != '│' && c != '┃')
                    .map(move |(x, _)| (x, y))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (b, a) = (occupied(&before), occupied(&after));
    assert_eq!(b.len(), a.len(), "no point hidden");
    assert!(after.contains('·'), "dimmed points drawn as dots");
    assert!(after.contains("/label=3:"), "the legend shows the filter");
    // Esc while typing cancels; the filter stays.
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "x");
    press(&mut app, KeyCode::Esc);
    assert!(app.embed.points.editing.is_none());
    assert_eq!(app.embed.points.filter.as_ref().unwrap().text, "label=3");
    // An empty query clears it.
    press(&mut app, KeyCode::Char('/'));
    for _ in 0..10 {
        press(&mut app, KeyCode::Backspace);
    }
    press(&mut app, KeyCode::Enter);
    assert!(app.embed.points.filter.is_none());
}

#[test]
fn esc_closes_the_neighbours_panel_then_clears_the_filter() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "label=3");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('v'));
    assert!(app.embed.points.neighbours.is_some());
    // The panel goes first; the filter stays.
    press(&mut app, KeyCode::Esc);
    assert!(!app.embed.points.show_neighbours);
    assert!(app.embed.points.neighbours.is_none());
    assert_eq!(app.embed.points.filter.as_ref().unwrap().text, "label=3");
    // Then the filter: every point matches again.
    press(&mut app, KeyCode::Esc);
    assert!(app.embed.points.filter.is_none());
    assert!(!app.embed.points.matches.is_empty());
    assert!(app.embed.points.matches.iter().all(|&m| m));
    assert_eq!(app.message.as_deref(), Some("filter off"));
    // With help open, Esc closes the help and leaves the panel alone.
    press(&mut app, KeyCode::Char('v'));
    press(&mut app, KeyCode::Char('?'));
    press(&mut app, KeyCode::Esc);
    assert!(!app.show_help);
    assert!(app.embed.points.show_neighbours);
    assert!(!app.should_quit);
}

/// The k nearest by brute force over every embedded image.
fn brute_force(
    reference: &ndarray::Array2<f32>,
    q: ndarray::ArrayView1<f32>,
    skip: Option<usize>,
) -> Vec<usize> {
    let mut d: Vec<(f32, usize)> = reference
        .rows()
        .into_iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != skip)
        .map(|(i, r)| {
            (
                r.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(),
                i,
            )
        })
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.into_iter().take(8).map(|(_, i)| i).collect()
}

#[test]
fn v_shows_the_nearest_in_the_focused_layer_and_follows_it() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Char('v'));
    let report = app.session.model.clone().unwrap();
    let list = app.embed.points.neighbours.clone().expect("neighbours");
    let (part, index) = app.embed.selection();
    assert_eq!((list.part, list.index), (part, index));
    let layer = app.embed.panels[app.embed.focus].layer;
    assert_eq!(list.layer, layer);
    let reference = &report.embed_layers[layer - 1];
    let got: Vec<usize> = list.items.iter().map(|i| i.index).collect();
    assert_eq!(
        got,
        brute_force(reference, reference.row(index), Some(index))
    );
    // Switching the focused layer recomputes them there.
    press(&mut app, KeyCode::Char('f'));
    let other = app.embed.points.neighbours.clone().unwrap();
    assert_ne!(other.layer, layer);
    // A placed test image: its activations come from the model.
    let (l, p) = placed_mistake(&app);
    let mut app = open_cell(l, p);
    press(&mut app, KeyCode::Char('e'));
    press(&mut app, KeyCode::Char('v'));
    let list = app.embed.points.neighbours.clone().unwrap();
    assert_eq!(list.part, Part::Test);
    let pixels = app.session.image(Part::Test, list.index).unwrap().0;
    let q = report
        .model
        .layer_output(pixels.insert_axis(ndarray::Axis(0)), list.layer);
    let reference = &report.embed_layers[list.layer - 1];
    let got: Vec<usize> = list.items.iter().map(|i| i.index).collect();
    assert_eq!(got, brute_force(reference, q.row(0), None));
    assert!(list.has_map);
    // v again closes it.
    press(&mut app, KeyCode::Char('v'));
    assert!(app.embed.points.neighbours.is_none());
}

fn error_browser() -> App {
    let (l, p) = worst_mistake(&demo_app());
    let mut app = open_cell(l, p);
    press(&mut app, KeyCode::Down);
    app
}

fn neighbours_panel() -> App {
    let (l, p) = placed_mistake(&demo_app());
    let mut app = open_cell(l, p);
    press(&mut app, KeyCode::Char('e'));
    press(&mut app, KeyCode::Char('v'));
    app
}

#[test]
fn error_browser_80x24() {
    insta::assert_snapshot!(render_snapshot(
        &error_browser(),
        Tab::Training,
        80,
        24,
        false
    ));
}

#[test]
fn error_browser_120x40() {
    // A diagonal cell: many images, most confident first.
    let mut app = open_cell(3, 3);
    press(&mut app, KeyCode::Right);
    insta::assert_snapshot!(render_snapshot(&app, Tab::Training, 120, 40, false));
}

#[test]
fn error_browser_ascii_80x24() {
    let theme = Theme::new(ColorDepth::None, true);
    let text = render_snapshot_with(&error_browser(), Tab::Training, 80, 24, false, &theme);
    assert!(text.is_ascii());
    insta::assert_snapshot!(text);
}

#[test]
fn neighbours_80x24() {
    let text = render_snapshot(&neighbours_panel(), Tab::Embeddings, 80, 24, false);
    // At least 4 thumbnails beside the maps: 4 captions with a training row.
    assert!(text.matches(" #").count() >= 4, "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn neighbours_120x40() {
    let text = render_snapshot(&neighbours_panel(), Tab::Embeddings, 120, 40, false);
    assert!(text.matches(" #").count() >= 8, "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn neighbours_without_colour_80x24() {
    let theme = Theme::new(ColorDepth::None, false);
    let text = render_snapshot_with(&neighbours_panel(), Tab::Embeddings, 80, 24, false, &theme);
    assert!(text.matches(" #").count() >= 4, "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn placed_points_belong_to_the_map_they_were_placed_into() {
    let app = demo_app();
    let panel = &app.embed.panels[0];
    let pts = &app.embed.points;
    let n = panel.coords.nrows();
    assert_eq!(
        pts.coords_for(panel.layer, &panel.coords).nrows(),
        n + N_PLACED
    );
    // Another layout of the same layer (a kept one, another epoch's frame): its own points only.
    let mut other = panel.coords.clone();
    other[[0, 0]] += 1.0;
    assert_eq!(pts.coords_for(panel.layer, &other).nrows(), n);
}
