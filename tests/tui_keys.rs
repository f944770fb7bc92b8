//! Key handling on state, without a terminal: keys map to actions per tab, actions change state
//! and ask the worker for the right commands.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use layerscope::compute::{Command, Method, Part};
use layerscope::tui::app::{Action, ColorBy, Direction, TrainStatus, nearest_in_direction};
use layerscope::tui::fixture::demo_app;
use layerscope::tui::{App, Tab};
use ndarray::array;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Press a key: map it and apply it; the commands it sends.
fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    match app.action_for(key(code)) {
        Some(a) => app.update(a),
        None => Vec::new(),
    }
}

#[test]
fn tabs_cycle_and_jump() {
    let mut app = demo_app();
    assert_eq!(app.tab, Tab::Training);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Embeddings);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Saliency);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Training);
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.tab, Tab::Saliency);
    press(&mut app, KeyCode::F(1));
    assert_eq!(app.tab, Tab::Training);
    press(&mut app, KeyCode::Char('2'));
    assert_eq!(app.tab, Tab::Embeddings);
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(app.tab, Tab::Saliency);
    // Issue 11 (12): digits switch tabs in every tab, Saliency too.
    let cmds = press(&mut app, KeyCode::Char('1'));
    assert_eq!(app.tab, Tab::Training);
    assert!(cmds.is_empty());
}

/// Issue 11 (12): in Saliency the class is picked with [ and ], wrapping over the classes.
#[test]
fn brackets_pick_the_class_in_saliency() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('3'));
    let explained = app.saliency.explained_class.unwrap();
    let cmds = press(&mut app, KeyCode::Char(']'));
    let want = (explained + 1) % 10;
    assert!(
        matches!(cmds[..], [Command::Explain(r)] if r.class == Some(want)),
        "{cmds:?}"
    );
    press(&mut app, KeyCode::Char('['));
    let cmds = press(&mut app, KeyCode::Char('['));
    let want = (explained + 9) % 10;
    assert!(
        matches!(cmds[..], [Command::Explain(r)] if r.class == Some(want)),
        "{cmds:?}"
    );
    let bar = layerscope::tui::render_snapshot(&app, Tab::Saliency, 120, 40, false);
    assert!(bar.contains("[ ] class"), "{bar}");
}

/// Issue 11 (13): in Saliency, t switches between test and training images, and n/N step
/// over the images the model gets wrong.
#[test]
fn saliency_switches_parts_and_steps_over_mistakes() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(app.saliency.part, Part::Test);
    let cmds = press(&mut app, KeyCode::Char('n'));
    // The fixture gets every 9th row wrong, starting at 4.
    assert_eq!(app.saliency.index, 4);
    assert!(matches!(cmds[..], [Command::Explain(r)] if r.part == Part::Test && r.index == 4));
    press(&mut app, KeyCode::Char('n'));
    assert_eq!(app.saliency.index, 13);
    press(&mut app, KeyCode::Char('N'));
    assert_eq!(app.saliency.index, 4);
    let cmds = press(&mut app, KeyCode::Char('t'));
    assert_eq!(app.saliency.part, Part::Train);
    assert!(matches!(cmds[..], [Command::Explain(r)] if r.part == Part::Train));
    press(&mut app, KeyCode::Char('t'));
    assert_eq!(app.saliency.part, Part::Test);
}

#[test]
fn quit_keys() {
    let mut app = demo_app();
    assert_eq!(press(&mut app, KeyCode::Char('q')), vec![Command::Quit]);
    assert!(app.should_quit);
    // Issue 11 (12): Esc never quits, on any tab.
    for tab in Tab::ALL {
        let mut app = demo_app();
        app.tab = tab;
        assert!(press(&mut app, KeyCode::Esc).is_empty());
        assert!(!app.should_quit, "{tab}");
    }
    let app = demo_app();
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.action_for(ctrl_c), Some(Action::Quit));
}

#[test]
fn help_toggles_and_esc_closes_it_first() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('?'));
    assert!(app.show_help);
    // Keys of the tab do nothing under the help.
    assert_eq!(app.action_for(key(KeyCode::Char('s'))), None);
    press(&mut app, KeyCode::Esc);
    assert!(!app.show_help && !app.should_quit);
}

#[test]
fn pause_resume_stop_restart() {
    let mut app = demo_app();
    app.training.status = TrainStatus::Running;
    assert_eq!(press(&mut app, KeyCode::Char(' ')), vec![Command::Pause]);
    assert_eq!(app.training.status, TrainStatus::Paused);
    assert_eq!(press(&mut app, KeyCode::Char('p')), vec![Command::Resume]);
    assert_eq!(app.training.status, TrainStatus::Running);
    assert_eq!(
        press(&mut app, KeyCode::Char('s')),
        vec![Command::StopTraining]
    );
    assert_eq!(app.training.status, TrainStatus::Stopping);
    // Nothing to pause once stopped: a message, no command.
    app.training.status = TrainStatus::Converged;
    assert!(press(&mut app, KeyCode::Char(' ')).is_empty());
    assert!(app.message.is_some());
    // Issue 11 (12): r asks first; y restarts, anything else (n, Esc, another key) does not.
    for no in [KeyCode::Char('n'), KeyCode::Esc, KeyCode::Char('s')] {
        assert!(press(&mut app, KeyCode::Char('r')).is_empty());
        assert!(app.question.is_some());
        let text = layerscope::tui::render_snapshot(&app, Tab::Training, 80, 24, false);
        assert!(text.contains("y/n"), "{text}");
        assert!(press(&mut app, no).is_empty(), "{no:?}");
        assert!(app.question.is_none() && !app.should_quit);
    }
    assert!(press(&mut app, KeyCode::Char('r')).is_empty());
    assert_eq!(
        press(&mut app, KeyCode::Char('y')),
        vec![Command::RestartTraining { seed: 1 }]
    );
}

/// Issue 11 (11): a message goes after a few keys, or when the tab changes; its line is
/// reserved, so the panels keep their size when it comes.
#[test]
fn messages_expire_and_do_not_move_the_panels() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    let before = layerscope::tui::render_snapshot(&app, Tab::Embeddings, 80, 24, false);
    press(&mut app, KeyCode::Char('+'));
    assert!(app.message.is_some());
    let after = layerscope::tui::render_snapshot(&app, Tab::Embeddings, 80, 24, false);
    let lines = |t: &str| t.lines().take(20).map(str::to_string).collect::<Vec<_>>();
    // Only the legend (the pending perplexity) changes above the message line.
    let changed: Vec<usize> = (0..20)
        .filter(|&i| lines(&before)[i] != lines(&after)[i])
        .collect();
    assert!(changed.len() <= 1, "{changed:?}\n{before}\n{after}");
    for _ in 0..layerscope::tui::app::MESSAGE_KEYS {
        press(&mut app, KeyCode::Char('c'));
        assert!(app.message.is_some());
    }
    press(&mut app, KeyCode::Char('c'));
    assert!(app.message.is_none(), "gone after a few keys");
    press(&mut app, KeyCode::Char('+'));
    assert!(app.message.is_some());
    press(&mut app, KeyCode::Char('1'));
    assert!(app.message.is_none(), "gone with the tab");
}

/// Issue 11 (11): the legend says a perplexity change waits for r.
#[test]
fn the_legend_tells_a_pending_perplexity() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    let text = layerscope::tui::render_snapshot(&app, Tab::Embeddings, 120, 40, false);
    assert!(text.contains("perplexity 3 ·"), "{text}");
    press(&mut app, KeyCode::Char('+'));
    let text = layerscope::tui::render_snapshot(&app, Tab::Embeddings, 120, 40, false);
    assert!(text.contains("perplexity 3 (next 5: r re-runs)"), "{text}");
}

/// Issue 11 (11): at the edge of a cloud the cursor stays put rather than wandering sideways.
#[test]
fn arrows_stay_put_when_nothing_lies_that_way() {
    // Point 1 is far off to the side, barely to the right.
    let coords = array![[0.0f32, 0.0], [0.2, 5.0], [-1.0, 0.0]];
    assert_eq!(nearest_in_direction(&coords, 0, Direction::Right), None);
    assert_eq!(nearest_in_direction(&coords, 0, Direction::Left), Some(2));
    assert_eq!(nearest_in_direction(&coords, 0, Direction::Up), Some(1));
}

/// Issue 11 (14): with --model the Training tab shows the loaded model and says so; r tells
/// why it cannot restart, without asking.
#[test]
fn a_loaded_model_is_shown_not_waited_for() {
    use layerscope::compute::{Event, Slots};
    let demo = demo_app();
    let mut app = App::new(3.0);
    let slots = Slots::default();
    app.on_event(
        Event::DataReady {
            split: demo.session.split.clone().unwrap(),
            embed_n: 200,
        },
        &slots,
    );
    app.on_event(
        Event::ModelReady(demo.session.model.clone().unwrap()),
        &slots,
    );
    assert_eq!(app.training.status, TrainStatus::Loaded);
    let text = layerscope::tui::render_snapshot(&app, Tab::Training, 80, 24, false);
    assert!(text.contains("loaded (--model)"), "{text}");
    assert!(!text.contains("waiting for the first epoch"), "{text}");
    assert!(text.contains("784-512-256-10"), "{text}");
    let m = demo.session.model.as_ref().unwrap();
    let acc = m.confusion.diag().sum() as f64 / m.confusion.sum() as f64;
    assert!(
        text.contains(&format!("test accuracy {:.1}%", acc * 100.0)),
        "{text}"
    );
    assert!(text.contains("t\\p"), "the confusion matrix: {text}");
    assert!(press(&mut app, KeyCode::Char('r')).is_empty());
    assert!(app.question.is_none());
    assert!(
        app.message
            .as_deref()
            .is_some_and(|m| m.contains("not possible with --model"))
    );
}

/// Issue 11 (10): g puts the loss on a log scale.
#[test]
fn g_toggles_a_log_scale_loss() {
    let mut app = demo_app();
    let linear = layerscope::tui::render_snapshot(&app, Tab::Training, 120, 40, false);
    press(&mut app, KeyCode::Char('g'));
    assert!(app.training.log_loss);
    let log = layerscope::tui::render_snapshot(&app, Tab::Training, 120, 40, false);
    assert!(
        !linear.contains("loss (log)") && log.contains("loss (log)"),
        "{log}"
    );
    assert_eq!(
        app.training.series.train_loss_log.len(),
        app.training.series.train_loss.len()
    );
}

#[test]
fn selection_moves_towards_the_nearest_point() {
    let coords = array![
        [0.0f32, 0.0],
        [1.0, 0.1],
        [5.0, 0.0],
        [0.0, 2.0],
        [-1.0, -3.0]
    ];
    assert_eq!(nearest_in_direction(&coords, 0, Direction::Right), Some(1));
    assert_eq!(nearest_in_direction(&coords, 1, Direction::Right), Some(2));
    assert_eq!(nearest_in_direction(&coords, 0, Direction::Up), Some(3));
    assert_eq!(nearest_in_direction(&coords, 0, Direction::Down), Some(4));
    assert_eq!(nearest_in_direction(&coords, 4, Direction::Down), None);
    assert_eq!(nearest_in_direction(&coords, 2, Direction::Right), None);
}

#[test]
fn arrows_and_hjkl_move_the_linked_selection() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    // Issue 13: the cursor moves among the map's points and its placed test images.
    let start = app.embed.selected_point();
    press(&mut app, KeyCode::Char('l'));
    let moved = app.embed.selected_point();
    assert_ne!(moved, start);
    let panel = &app.embed.panels[app.embed.focus];
    let focus = app
        .embed
        .points
        .coords_for(panel.layer, &panel.coords)
        .clone();
    assert!(focus[[moved, 0]] > focus[[start, 0]]);
    press(&mut app, KeyCode::Left);
    assert!(focus[[app.embed.selected_point(), 0]] < focus[[moved, 0]]);
    press(&mut app, KeyCode::Char('f'));
    assert_eq!(app.embed.focus, 0);
}

#[test]
fn n_jumps_to_misclassified_images() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    app.embed.selected = 0;
    press(&mut app, KeyCode::Char('n'));
    let i = app.embed.selected;
    assert_ne!(app.embed_label(i), app.embed_prediction(i));
    // The fixture gets every 9th row wrong, starting at 4.
    assert_eq!(i, 4);
    press(&mut app, KeyCode::Char('n'));
    assert_eq!(app.embed.selected, 13);
    press(&mut app, KeyCode::Char('N'));
    assert_eq!(app.embed.selected, 4);
}

#[test]
fn enter_explains_the_selected_image() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    app.embed.selected = 13;
    let cmds = press(&mut app, KeyCode::Enter);
    assert_eq!(app.tab, Tab::Saliency);
    assert_eq!(app.saliency.part, Part::Train);
    let [Command::Explain(r)] = cmds[..] else {
        panic!("{cmds:?}")
    };
    assert!(r.part == Part::Train && r.index == 13 && r.class.is_none());
    assert_eq!(r.id, app.saliency.request_id);
    assert!(app.saliency.estimate.is_none(), "the old map is cleared");
}

#[test]
fn colour_by_and_perplexity() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    assert_eq!(app.embed.groups(), &app.embed.labels[..]);
    press(&mut app, KeyCode::Char('c'));
    assert_eq!(app.embed.color_by, ColorBy::Prediction);
    assert_eq!(app.embed.groups(), &app.embed.predictions[..]);
    press(&mut app, KeyCode::Char('c'));
    assert_eq!(app.embed.color_by, ColorBy::Correctness);
    assert_eq!(app.embed.groups()[4], 0);
    assert_eq!(app.embed.groups()[0], 1);
    press(&mut app, KeyCode::Char('+'));
    assert!((app.embed.perplexity - 5.0).abs() < 1e-9);
    press(&mut app, KeyCode::Char('-'));
    press(&mut app, KeyCode::Char('-'));
    assert!((app.embed.perplexity - 2.0).abs() < 1e-9);
    let cmds = press(&mut app, KeyCode::Char('r'));
    assert_eq!(
        cmds,
        vec![Command::Embed {
            perplexity: 2.0,
            include_input: false
        }]
    );
    // The old pictures go; empty panels wait for the new run.
    let layers: Vec<usize> = app.embed.panels.iter().map(|p| p.layer).collect();
    assert_eq!(layers, vec![2, 3, 4]);
    assert!(
        app.embed
            .panels
            .iter()
            .all(|p| p.coords.nrows() == 0 && !p.done)
    );
    let cmds = press(&mut app, KeyCode::Char('i'));
    assert!(matches!(
        cmds[..],
        [Command::Embed {
            include_input: true,
            ..
        }]
    ));
    assert_eq!(app.embed.panels[0].layer, 1, "the input pixels get a panel");
    assert_eq!(app.embed.panels[0].size, 784);
}

#[test]
fn saliency_keys_supersede_the_request() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('3'));
    let ids: Vec<u64> = [
        KeyCode::Right,
        KeyCode::Right,
        KeyCode::Left,
        KeyCode::Char('m'),
    ]
    .into_iter()
    .flat_map(|k| press(&mut app, k))
    .map(|c| match c {
        Command::Explain(r) => r.id,
        other => panic!("{other:?}"),
    })
    .collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    assert_eq!(app.saliency.index, 1);
    assert_eq!(app.saliency.method, Method::GradientTimesInput);
    press(&mut app, KeyCode::Left);
    press(&mut app, KeyCode::Left);
    assert_eq!(app.saliency.index, 99, "wraps around the test set");
    let cmds = press(&mut app, KeyCode::Char('p'));
    assert!(matches!(cmds[..], [Command::Explain(r)] if r.class.is_none()));
}

#[test]
fn stale_saliency_progress_is_ignored() {
    use layerscope::compute::{Event, SaliencySnapshot, Slots};
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Right);
    let slots = Slots::default();
    let snap = |id| SaliencySnapshot {
        id,
        values: vec![1.0; 784],
        stderr: None,
        samples_done: 1,
        samples_total: 10,
        seconds: 0.1,
    };
    slots.saliency.put(snap(0));
    app.on_event(Event::ExplainProgress, &slots);
    assert!(app.saliency.estimate.is_none());
    slots.saliency.put(snap(1));
    app.on_event(Event::ExplainProgress, &slots);
    assert_eq!(app.saliency.estimate.as_ref().map(|e| e.id), Some(1));
    assert!((app.saliency.max_abs - 1.0).abs() < 1e-6);
}

#[test]
fn a_failed_job_becomes_a_message() {
    use layerscope::compute::{Event, JobKind, Slots};
    let mut app = demo_app();
    app.on_event(
        Event::JobFailed {
            job: JobKind::Embed,
            message: "boom".into(),
        },
        &Slots::default(),
    );
    assert_eq!(app.message.as_deref(), Some("t-SNE failed: boom"));
    let text = layerscope::tui::render_snapshot(&app, Tab::Embeddings, 80, 24, false);
    assert!(text.contains("t-SNE failed: boom"));
}

#[test]
fn a_restart_clears_the_old_run() {
    use layerscope::compute::{Event, Slots};
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('r'));
    let cmds = press(&mut app, KeyCode::Char('y'));
    assert_eq!(cmds, vec![Command::RestartTraining { seed: 1 }]);
    assert!(!app.idle, "busy again");
    app.on_event(
        Event::TrainingStarted {
            seed: 1,
            max_epochs: 200,
            layer_sizes: vec![784, 512, 256, 10],
        },
        &Slots::default(),
    );
    assert_eq!(app.training.seed, 1);
    assert!(app.training.history.is_empty() && app.training.series.train_loss.is_empty());
    assert_eq!(app.training.status, TrainStatus::Running);
    assert!(app.session.model.is_none() && app.embed.panels.is_empty());
    assert!(app.saliency.estimate.is_none());
    let text = layerscope::tui::render_snapshot(&app, Tab::Training, 80, 24, false);
    assert!(text.contains("epoch 0/200"), "{text}");
}

/// One table per tab drives the keys, the key bar and the help: every key of every row does the
/// row's action on its tab (no row is shadowed by another), and every key the bar shows is one.
#[test]
fn every_row_of_the_key_tables_does_what_it_says() {
    use layerscope::tui::app::GLOBAL_KEYS;
    for tab in Tab::ALL {
        let mut app = demo_app();
        app.tab = tab;
        for row in GLOBAL_KEYS.iter().chain(tab.keys()) {
            for &code in row.keys {
                let got = app.action_for(key(code));
                assert_eq!(got, Some(row.action), "{tab}: {code:?} ({})", row.key);
            }
        }
    }
}

/// The default method is the engine's, and the first request asks for it.
#[test]
fn the_default_method_is_the_engines() {
    let mut app = demo_app();
    assert_eq!(app.saliency.method, layerscope::explain::Method::default());
    assert_eq!(app.saliency.method, Method::Permutation);
    press(&mut app, KeyCode::Char('3'));
    let cmds = press(&mut app, KeyCode::Right);
    assert!(matches!(cmds[..], [Command::Explain(r)] if r.method == Method::Permutation));
}

/// Stop early keeps the model: when the worker reports it, the status says so and the model is
/// there for the other tabs; with a saved model, restart is refused without asking the worker.
#[test]
fn stop_early_keeps_the_model_and_restart_is_refused_with_a_saved_model() {
    use layerscope::compute::{Event, Slots};
    let mut app = demo_app();
    let report = app.session.model.clone().unwrap();
    app.training.status = TrainStatus::Running;
    app.session.model = None;
    assert_eq!(
        press(&mut app, KeyCode::Char('s')),
        vec![Command::StopTraining]
    );
    app.on_event(Event::ModelReady(report), &Slots::default());
    assert_eq!(app.training.status, TrainStatus::Stopped);
    assert!(app.session.model.is_some());
    app.training.status = TrainStatus::Loaded;
    assert!(press(&mut app, KeyCode::Char('r')).is_empty());
    assert!(
        app.message
            .as_deref()
            .is_some_and(|m| m.contains("--model"))
    );
    app.on_event(
        Event::JobFailed {
            job: layerscope::compute::JobKind::Train,
            message: "a saved model was given (--model): nothing to retrain".into(),
        },
        &Slots::default(),
    );
    assert_eq!(app.training.status, TrainStatus::Loaded, "still loaded");
}

/// Issue 11 (15): `g` in the Embeddings tab swaps braille dots for class digits in class colours
/// (and back); in 16 colours, where classes share hues, digits are the default. The key is in the
/// tab's key table, so the key bar and help name it.
#[test]
fn g_draws_class_digits_in_class_colours() {
    use layerscope::tui::theme::{ColorDepth, Theme};
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    let truecolor = Theme::new(ColorDepth::TrueColor, false);
    let ansi16 = Theme::new(ColorDepth::Ansi16, false);
    assert!(!app.embed.draws_glyphs(&truecolor));
    assert!(app.embed.draws_glyphs(&ansi16));
    let dots = layerscope::tui::render_snapshot(&app, Tab::Embeddings, 120, 40, false);
    let has_braille = |t: &str| t.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c));
    assert!(has_braille(&dots), "{dots}");
    let wide = layerscope::tui::render_snapshot(&app, Tab::Embeddings, 160, 48, false);
    assert!(
        wide.contains("g dots/digits"),
        "the key bar names it: {wide}"
    );
    assert!(press(&mut app, KeyCode::Char('g')).is_empty());
    assert!(app.embed.draws_glyphs(&truecolor));
    assert!(!app.embed.draws_glyphs(&ansi16));
    let digits = layerscope::tui::render_snapshot(&app, Tab::Embeddings, 120, 40, false);
    assert!(!has_braille(&digits), "{digits}");
    press(&mut app, KeyCode::Char('g'));
    assert!(!app.embed.draws_glyphs(&truecolor));
}

/// Issue 11 (11): `i` adds the input pixels without re-running the layers already shown: their
/// layouts stay as they are and only layer 1 is asked of the worker; layouts are kept by
/// (layer, perplexity), so going back to a perplexity already run asks for nothing.
#[test]
fn i_embeds_only_the_input_layer_and_keeps_the_layouts() {
    use layerscope::compute::{EmbedSnapshot, Event, Slots};
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    let before: Vec<_> = app.embed.panels.clone();
    assert!((app.embed.perplexity - 3.0).abs() < 1e-9);
    let cmds = press(&mut app, KeyCode::Char('i'));
    assert_eq!(
        cmds,
        vec![Command::EmbedLayers {
            perplexity: 3.0,
            include_input: true,
            layers: vec![1],
        }]
    );
    let layers: Vec<usize> = app.embed.panels.iter().map(|p| p.layer).collect();
    assert_eq!(layers, vec![1, 2, 3, 4]);
    assert!(!app.embed.panels[0].done);
    assert_eq!(
        app.embed.panels[1..],
        before[..],
        "the layouts being studied stay"
    );
    // Removing the input again asks for nothing new.
    let cmds = press(&mut app, KeyCode::Char('i'));
    assert_eq!(
        cmds,
        vec![Command::EmbedLayers {
            perplexity: 3.0,
            include_input: false,
            layers: vec![],
        }]
    );
    assert_eq!(app.embed.panels, before);
    // A new perplexity runs every layer; back at 3 the kept layouts return at once.
    press(&mut app, KeyCode::Char('+'));
    let cmds = press(&mut app, KeyCode::Char('r'));
    assert_eq!(
        cmds,
        vec![Command::Embed {
            perplexity: 5.0,
            include_input: false
        }]
    );
    press(&mut app, KeyCode::Char('-'));
    let cmds = press(&mut app, KeyCode::Char('r'));
    assert!(
        matches!(&cmds[..], [Command::EmbedLayers { layers, .. }] if layers.is_empty()),
        "{cmds:?}"
    );
    assert_eq!(app.embed.panels, before);
    // Late events of the superseded run at 5 do not replace them.
    let slots = Slots::default();
    app.on_event(
        Event::EmbedStarted {
            layer: 2,
            size: 512,
            perplexity: 5.0,
        },
        &slots,
    );
    slots.embedding.put(EmbedSnapshot {
        layer: 3,
        iteration: 10,
        n_iter: 1000,
        kl_divergence: None,
        coords: ndarray::Array2::zeros((before[1].coords.nrows(), 2)),
    });
    app.on_event(Event::EmbedProgress, &slots);
    assert_eq!(app.embed.panels, before);
}
