//! Snapshots of each tab from the fixed, hand-built state, at 80x24 and 160x48, as text and in
//! ASCII mode; and every size down to 1x1 renders without panicking.

use layerscope::tui::fixture::demo_app;
use layerscope::tui::snapshot::render_snapshot_with;
use layerscope::tui::theme::{ColorDepth, Theme};
use layerscope::tui::{Tab, render_snapshot};

fn snapshot(tab: Tab, w: u16, h: u16) -> String {
    render_snapshot(&demo_app(), tab, w, h, false)
}

#[test]
fn training_80x24() {
    insta::assert_snapshot!(snapshot(Tab::Training, 80, 24));
}

#[test]
fn training_160x48() {
    insta::assert_snapshot!(snapshot(Tab::Training, 160, 48));
}

#[test]
fn embeddings_80x24() {
    insta::assert_snapshot!(snapshot(Tab::Embeddings, 80, 24));
}

#[test]
fn embeddings_160x48() {
    insta::assert_snapshot!(snapshot(Tab::Embeddings, 160, 48));
}

#[test]
fn saliency_80x24() {
    insta::assert_snapshot!(snapshot(Tab::Saliency, 80, 24));
}

#[test]
fn saliency_160x48() {
    insta::assert_snapshot!(snapshot(Tab::Saliency, 160, 48));
}

#[test]
fn ascii_embeddings_and_saliency_80x24() {
    let theme = Theme::new(ColorDepth::TrueColor, true);
    let app = demo_app();
    let text = format!(
        "{}{}",
        render_snapshot_with(&app, Tab::Embeddings, 80, 24, false, &theme),
        render_snapshot_with(&app, Tab::Saliency, 80, 24, false, &theme)
    );
    assert!(
        !text.chars().any(|c| ('\u{2800}'..='\u{28FF}').contains(&c)),
        "no braille"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn help_overlay_80x24() {
    let mut app = demo_app();
    app.show_help = true;
    insta::assert_snapshot!(render_snapshot(&app, Tab::Embeddings, 80, 24, false));
}

#[test]
fn ansi_has_colour_codes() {
    let text = render_snapshot(&demo_app(), Tab::Saliency, 80, 24, true);
    assert!(text.contains("\x1b[0;"));
    assert!(text.contains(";2;"), "24-bit colours");
}

#[test]
fn every_size_down_to_1x1_renders() {
    let app = demo_app();
    let ascii = Theme::new(ColorDepth::None, true);
    let colour = Theme::new(ColorDepth::Ansi256, false);
    for w in (1..=100u16)
        .step_by(3)
        .chain([1, 2, 59, 60, 61, 79, 80, 81])
    {
        for h in (1..=40u16).step_by(2).chain([1, 15, 16, 17, 23, 24]) {
            for tab in Tab::ALL {
                for theme in [&ascii, &colour] {
                    let text = render_snapshot_with(&app, tab, w, h, false, theme);
                    assert_eq!(text.lines().count(), usize::from(h));
                }
            }
        }
    }
    let small = render_snapshot(&app, Tab::Training, 40, 10, false);
    assert!(small.contains("enlarge"), "{small}");
}

#[test]
fn empty_state_renders_at_every_size() {
    let app = layerscope::tui::App::new(3.0);
    for w in (1..=200u16).step_by(7) {
        for h in (1..=60u16).step_by(5) {
            for tab in Tab::ALL {
                let _ = render_snapshot(&app, tab, w, h, true);
            }
        }
    }
}
