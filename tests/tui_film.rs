//! The film (issue 12) in the terminal app, from the fixture's frames (no worker): the timeline
//! under the Embeddings panels, its keys (step, first/last, play/pause stopping at the end),
//! following training, the selection kept across frames, one scale per layer across the film,
//! and the class separation chart of the Training tab.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use layerscope::compute::{Event, Frame, Separation, Slots};
use layerscope::tui::fixture::{FILM_EPOCHS, demo_app, film_app, film_training_app};
use layerscope::tui::render::render;
use layerscope::tui::snapshot::{buffer_lines, render_buffer, render_snapshot_with};
use layerscope::tui::tabs::film::PLAY_STEP;
use layerscope::tui::theme::{ColorDepth, Theme};
use layerscope::tui::widgets::timeline::Stop;
use layerscope::tui::{App, Tab, render_snapshot};
use ndarray::{Array2, array};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

fn press(app: &mut App, code: KeyCode) {
    if let Some(a) = app.action_for(KeyEvent::new(code, KeyModifiers::NONE)) {
        app.update(a);
    }
}

/// The film app on the Embeddings tab at epoch `epoch` (Home, then `.` that many times).
fn at_epoch(epoch: usize) -> App {
    let mut app = film_app();
    app.tab = Tab::Embeddings;
    press(&mut app, KeyCode::Home);
    for _ in 0..epoch {
        press(&mut app, KeyCode::Char('.'));
    }
    app
}

fn shown(app: &App) -> Option<Stop> {
    app.embed.film.shown(app.embed.has_final())
}

/// Where the selection marker is drawn (x, y) in the panels of the Embeddings tab at 120x40, in
/// ASCII (`@`; the side panel, 32 columns, has the image, where `@` is a shade).
fn marker(app: &App) -> Vec<(u16, u16)> {
    let (w, h) = (120, 40);
    let theme = Theme::new(ColorDepth::None, true);
    let buf = render_buffer(app, Tab::Embeddings, w, h, &theme);
    let mut at = Vec::new();
    for y in 0..h {
        for x in 0..w - 32 {
            if buf[(x, y)].symbol() == "@" {
                at.push((x, y));
            }
        }
    }
    at
}

#[test]
fn embeddings_with_timeline_80x24() {
    insta::assert_snapshot!(render_snapshot(
        &at_epoch(5),
        Tab::Embeddings,
        80,
        24,
        false
    ));
}

#[test]
fn embeddings_with_timeline_120x40() {
    insta::assert_snapshot!(render_snapshot(
        &at_epoch(12),
        Tab::Embeddings,
        120,
        40,
        false
    ));
}

#[test]
fn embeddings_final_stop_ascii_80x24() {
    let theme = Theme::new(ColorDepth::None, true);
    let mut app = film_app();
    app.tab = Tab::Embeddings;
    insta::assert_snapshot!(render_snapshot_with(
        &app,
        Tab::Embeddings,
        80,
        24,
        false,
        &theme
    ));
}

#[test]
fn following_training_80x24() {
    let app = film_training_app();
    let text = render_snapshot(&app, Tab::Embeddings, 80, 24, false);
    assert!(
        text.contains("following training: epoch 12, frame 9"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn training_separation_chart_80x24_with_l() {
    let mut app = film_app();
    let before = render_snapshot(&app, Tab::Training, 80, 24, false);
    assert!(!before.contains("separation ●"), "{before}");
    assert!(before.contains("l: separation"), "the key's hint: {before}");
    press(&mut app, KeyCode::Char('l'));
    let text = render_snapshot(&app, Tab::Training, 80, 24, false);
    assert!(text.contains("sep. ●px ●L2 ●L3 ●L4 out"), "{text}");
    assert!(
        !text.contains(" accuracy "),
        "it takes the accuracy chart's place"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn training_three_charts_120x40() {
    let text = render_snapshot(&film_app(), Tab::Training, 120, 40, false);
    assert!(text.contains("class separation"), "{text}");
    assert!(text.contains(" accuracy "), "{text}");
    insta::assert_snapshot!(text);
}

/// Without separation figures (a loaded model, or before the first) the Training tab is as it
/// was, and `l` says why nothing shows.
#[test]
fn no_separation_no_chart() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('l'));
    let text = render_snapshot(&app, Tab::Training, 120, 40, false);
    assert!(!text.contains("┌ class separation"), "{text}");
    assert!(
        app.message
            .as_deref()
            .unwrap_or("")
            .contains("no figure yet")
    );
}

#[test]
fn step_first_last_and_end_follows() {
    let mut app = film_app();
    app.tab = Tab::Embeddings;
    // Following: the last stop, the final maps.
    assert_eq!(shown(&app), Some(Stop::Final));
    press(&mut app, KeyCode::Char(','));
    assert_eq!(shown(&app), Some(Stop::Epoch(FILM_EPOCHS)));
    press(&mut app, KeyCode::Char(','));
    assert_eq!(shown(&app), Some(Stop::Epoch(FILM_EPOCHS - 1)));
    press(&mut app, KeyCode::Home);
    assert_eq!(shown(&app), Some(Stop::Epoch(0)));
    press(&mut app, KeyCode::Char(','));
    assert_eq!(
        shown(&app),
        Some(Stop::Epoch(0)),
        "no stop before the first"
    );
    press(&mut app, KeyCode::Char('.'));
    assert_eq!(shown(&app), Some(Stop::Epoch(1)));
    press(&mut app, KeyCode::End);
    assert_eq!(shown(&app), Some(Stop::Final));
    assert_eq!(app.embed.film.at, None, "the last stop follows");
    press(&mut app, KeyCode::Char('<'));
    assert_eq!(shown(&app), Some(Stop::Epoch(0)));
    press(&mut app, KeyCode::Char('>'));
    assert_eq!(shown(&app), Some(Stop::Final));
    press(&mut app, KeyCode::Char('.'));
    assert_eq!(shown(&app), Some(Stop::Final), "no stop after the last");
}

#[test]
fn every_panel_shows_the_same_epoch() {
    let app = at_epoch(7);
    let panels = app.embed.shown_panels();
    assert_eq!(panels.len(), 3);
    for p in panels {
        assert_eq!(
            p.coords,
            app.embed.film.frames[&7]
                .iter()
                .find(|f| f.layer == p.layer)
                .unwrap()
                .coords
        );
    }
    let text = render_snapshot(&app, Tab::Embeddings, 120, 40, false);
    assert!(text.contains("epoch 7 of 40"), "{text}");
}

#[test]
fn play_advances_on_the_clock_and_stops_at_the_end() {
    let mut app = film_app();
    app.tab = Tab::Embeddings;
    assert_eq!(app.tick_interval(), None, "no clock while not playing");
    // At the end, play starts from the first frame.
    press(&mut app, KeyCode::Char('p'));
    assert!(app.embed.film.playing);
    assert_eq!(shown(&app), Some(Stop::Epoch(0)));
    assert_eq!(app.tick_interval(), Some(PLAY_STEP));
    // The clock ticks only on the Embeddings tab.
    app.tab = Tab::Training;
    assert_eq!(app.tick_interval(), None);
    app.tab = Tab::Embeddings;
    assert!(app.tick());
    assert_eq!(shown(&app), Some(Stop::Epoch(1)));
    // p pauses where it is.
    press(&mut app, KeyCode::Char('p'));
    assert!(!app.embed.film.playing);
    assert!(!app.tick());
    assert_eq!(shown(&app), Some(Stop::Epoch(1)));
    press(&mut app, KeyCode::Char('p'));
    let mut ticks = 0;
    while app.tick_interval().is_some() {
        assert!(app.tick());
        ticks += 1;
        assert!(ticks <= FILM_EPOCHS + 1, "the film stops at its end");
    }
    // Epochs 2..=40, then the final maps.
    assert_eq!(ticks, FILM_EPOCHS);
    assert_eq!(shown(&app), Some(Stop::Final));
    assert!(!app.embed.film.playing);
}

#[test]
fn stepping_pauses() {
    let mut app = at_epoch(3);
    press(&mut app, KeyCode::Char('p'));
    assert!(app.embed.film.playing);
    press(&mut app, KeyCode::Char('.'));
    assert!(!app.embed.film.playing);
    assert_eq!(shown(&app), Some(Stop::Epoch(4)));
}

#[test]
fn the_selection_stays_selected_across_frames() {
    let mut app = at_epoch(0);
    app.embed.selected = 17;
    let early = marker(&app);
    for _ in 0..FILM_EPOCHS {
        press(&mut app, KeyCode::Char('.'));
    }
    assert_eq!(app.embed.selected, 17);
    let late = marker(&app);
    assert_eq!(early.len(), 3, "one marker per panel: {early:?}");
    assert_eq!(late.len(), 3, "{late:?}");
    assert_ne!(early, late, "the point moved from the cloud to its cluster");
    // Moving the cursor works in the frame shown: from image 17, in its epoch-40 place.
    press(&mut app, KeyCode::Right);
    assert_ne!(app.embed.selected, 17);
    let moved = app.embed.selected;
    let frame = &app.embed.shown_panels()[app.embed.focus].coords;
    assert!(frame[[moved, 0]] > frame[[17, 0]]);
}

#[test]
fn a_trail_of_earlier_positions() {
    let app = at_epoch(6);
    let theme = Theme::new(ColorDepth::TrueColor, false);
    let text = render_snapshot_with(&app, Tab::Embeddings, 120, 40, false, &theme);
    assert!(text.contains('∘'), "{text}");
    // None on the first frame (nothing before it) nor on the final maps (a separate run).
    let first = render_snapshot_with(&at_epoch(0), Tab::Embeddings, 120, 40, false, &theme);
    assert!(!first.contains('∘'));
    let final_maps = render_snapshot_with(&film_app(), Tab::Embeddings, 120, 40, false, &theme);
    assert!(!final_maps.contains('∘'));
}

/// Two frames of one layer: the second has one point thrown far out. On one scale per layer
/// the other points stay where they were on screen; a scale per frame would shrink them.
#[test]
fn one_scale_per_layer_across_the_film() {
    let mut app = film_training_app();
    let slots = Slots::default();
    app.embed.film.frames.clear();
    let n = app.embed.labels.len();
    let coords0 = Array2::from_shape_fn((n, 2), |(i, d)| ((i * 7 + d * 3) % 11) as f32);
    let mut coords1 = coords0.clone();
    coords1[[0, 0]] = 40.0;
    for (epoch, coords) in [(0, coords0), (1, coords1)] {
        let frame = Frame {
            layer: 2,
            epoch,
            coords,
            kl_divergence: None,
            trust: None,
        };
        app.on_event(Event::Frame(frame), &slots);
    }
    app.embed.selected = 5;
    app.embed.focus = 0;
    press(&mut app, KeyCode::Home);
    let first = marker(&app);
    press(&mut app, KeyCode::Char('.'));
    let second = marker(&app);
    assert_eq!(first.len(), 1);
    assert_eq!(
        first, second,
        "image 5 did not move, so its marker does not"
    );
}

#[test]
fn following_mode_moves_with_new_frames_a_chosen_stop_stays() {
    let mut app = film_training_app();
    let slots = Slots::default();
    assert_eq!(shown(&app), Some(Stop::Epoch(9)));
    let next = |app: &App, epoch| {
        let p = &app.embed.film.frames[&9][0];
        Frame {
            layer: p.layer,
            epoch,
            coords: p.coords.clone(),
            kl_divergence: p.kl_divergence,
            trust: p.trust,
        }
    };
    let f = next(&app, 10);
    app.on_event(Event::Frame(f), &slots);
    assert_eq!(shown(&app), Some(Stop::Epoch(10)), "following");
    press(&mut app, KeyCode::Char(','));
    assert_eq!(shown(&app), Some(Stop::Epoch(9)));
    let f = next(&app, 11);
    app.on_event(Event::Frame(f), &slots);
    assert_eq!(shown(&app), Some(Stop::Epoch(9)), "a chosen stop stays");
    let text = render_snapshot(&app, Tab::Embeddings, 80, 24, false);
    assert!(text.contains("epoch 9 of 12"), "{text}");
    press(&mut app, KeyCode::End);
    assert_eq!(shown(&app), Some(Stop::Epoch(11)));
    // Training ends: the final maps become the last stop, and the view follows to them.
    let report = film_app().session.model.clone().unwrap();
    app.on_event(Event::ModelReady(Arc::clone(&report)), &slots);
    assert_eq!(shown(&app), Some(Stop::Final));
}

#[test]
fn a_new_training_run_drops_the_film() {
    let mut app = film_app();
    let slots = Slots::default();
    app.on_event(
        Event::TrainingStarted {
            seed: 1,
            max_epochs: 200,
            layer_sizes: vec![784, 512, 256, 10],
        },
        &slots,
    );
    assert!(app.embed.film.frames.is_empty());
    assert!(app.training.separation.is_empty());
    assert_eq!(shown(&app), None);
    let text = render_snapshot(&app, Tab::Embeddings, 80, 24, false);
    assert!(
        !text.contains("frames"),
        "no timeline without frames: {text}"
    );
    app.on_event(
        Event::Separation(Separation {
            epoch: 0,
            shares: vec![(1, 0.9)],
        }),
        &slots,
    );
    assert!(!app.training.separation.is_empty());
}

#[test]
fn film_keys_in_the_help_and_without_frames_a_message() {
    let mut app = demo_app();
    app.tab = Tab::Embeddings;
    press(&mut app, KeyCode::Char('.'));
    assert!(
        app.message.as_deref().unwrap_or("").contains("no film yet"),
        "{:?}",
        app.message
    );
    app.show_help = true;
    let text = render_snapshot(&app, Tab::Embeddings, 80, 40, false);
    assert!(text.contains("play/pause film"), "{text}");
    assert!(text.contains("first/last frame"), "{text}");
    assert!(text.contains("epoch back/forward"), "{text}");
    assert!(text.contains("class separation by layer"), "{text}");
}

#[test]
fn the_film_renders_at_every_size() {
    let apps = [at_epoch(3), film_training_app(), film_app()];
    let ascii = Theme::new(ColorDepth::None, true);
    let colour = Theme::new(ColorDepth::Ansi256, false);
    for app in &apps {
        for w in (1..=130u16).step_by(7).chain([59, 60, 61, 80]) {
            for h in (1..=45u16).step_by(4).chain([16, 17, 24, 40]) {
                for tab in [Tab::Embeddings, Tab::Training] {
                    for theme in [&ascii, &colour] {
                        let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
                        render(app, tab, theme, buf.area, &mut buf);
                        assert_eq!(buffer_lines(&buf).len(), usize::from(h));
                    }
                }
            }
        }
    }
}

/// The fixture's frames agree with what a worker would send: one per layer and epoch, every
/// embedded image in each.
#[test]
fn the_film_fixture_is_a_possible_state() {
    let app = film_app();
    assert_eq!(app.embed.film.frames.len(), FILM_EPOCHS + 1);
    for panels in app.embed.film.frames.values() {
        let layers: Vec<usize> = panels.iter().map(|p| p.layer).collect();
        assert_eq!(layers, [2, 3, 4]);
        assert!(
            panels
                .iter()
                .all(|p| p.coords.nrows() == app.embed.labels.len())
        );
    }
    let _ = array![[0.0f32]];
}
