//! Snapshots of each tab from the fixed, hand-built state, at 80x24 and 160x48, as text, in
//! ASCII mode and as colour grids; the fixture itself is a possible state; and every size down to
//! 1x1 renders, the empty state saying it is loading.

use layerscope::tui::fixture::demo_app;
use layerscope::tui::render::render;
use layerscope::tui::snapshot::render_snapshot_with;
use layerscope::tui::theme::{ColorDepth, Theme};
use layerscope::tui::{Tab, render_snapshot};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

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
                let text = render_snapshot(&app, tab, w, h, false);
                assert_eq!(text.lines().count(), usize::from(h), "{tab} {w}x{h}");
                assert!(text.lines().all(|l| l.chars().count() == usize::from(w)));
                let big_enough = w >= 60 && h >= 16;
                if big_enough && w >= 70 {
                    // Before any event the app says it is loading, on every tab.
                    assert!(text.contains("loading data"), "{tab} {w}x{h}:\n{text}");
                } else if !big_enough && w >= 40 && h >= 3 {
                    assert!(text.contains("enlarge"), "{tab} {w}x{h}:\n{text}");
                }
            }
        }
    }
}

/// The fixture shows a possible screen: the confusion matrix agrees with the last epoch's test
/// accuracy, and the saliency map is exactly 0 where the image and every background row are 0
/// (no coalition can change the model's input there).
#[test]
fn the_fixture_is_a_possible_state() {
    let app = demo_app();
    let model = app.session.model.as_ref().unwrap();
    let split = app.session.split.as_ref().unwrap();
    let confusion = &model.confusion;
    assert_eq!(
        confusion.sum(),
        split.test.n_rows(),
        "one count per test row"
    );
    let accuracy = confusion.diag().sum() as f64 / confusion.sum() as f64;
    let last = app.training.history.last().unwrap();
    let test_accuracy = last.test_accuracy.unwrap();
    assert!(
        (test_accuracy - accuracy).abs() < 1e-12,
        "{test_accuracy} vs {accuracy}"
    );
    let text = render_snapshot(&app, Tab::Training, 80, 24, false);
    assert!(
        text.contains(&format!("test {:.1}%", accuracy * 100.0)),
        "{text}"
    );
    let values = &app.saliency.estimate.as_ref().unwrap().values;
    let image = split.test.features.row(0);
    let mut blank = 0;
    for (i, &v) in values.iter().enumerate() {
        if image[i] == 0.0 && split.train.features.column(i).iter().all(|&b| b == 0.0) {
            assert_eq!(v, 0.0, "pixel {i}");
            blank += 1;
        }
    }
    assert!(blank > 10, "the border is blank in MNIST ({blank} pixels)");
}

/// A colour cell as one character: gray levels as 0-9, the diverging scale's blue and orange
/// sides as b/B and o/O (light/strong), anything else as '*', the terminal default as ' '.
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

/// The colours of a frame, two lines per row (the upper half-block's colour is the cell's
/// foreground, the lower's its background), so that heatmaps drawn as walls of half-blocks are
/// pinned by what they show.
fn colour_grid(app: &layerscope::tui::App, tab: Tab, w: u16, h: u16) -> String {
    let theme = Theme::new(ColorDepth::TrueColor, false);
    let area = Rect::new(0, 0, w, h);
    let mut buf = Buffer::empty(area);
    render(app, tab, &theme, area, &mut buf);
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

#[test]
fn saliency_colours_80x24() {
    let grid = colour_grid(&demo_app(), Tab::Saliency, 80, 24);
    // Both signs of the map and the gray image are there, not one colour.
    for c in ['b', 'o', '0', '9'] {
        assert!(grid.contains(c), "{c}");
    }
    insta::assert_snapshot!(grid);
}

#[test]
fn embeddings_colours_80x24() {
    insta::assert_snapshot!(colour_grid(&demo_app(), Tab::Embeddings, 80, 24));
}

/// Issue 11 (7): under `--ascii` (and a non-UTF-8 locale with colour) every widget draws ASCII
/// by itself, from `theme.glyphs`: no cell needs the character-by-character fallback.
#[test]
fn ascii_themes_draw_only_ascii_themselves() {
    let mut app = demo_app();
    let themes = [
        Theme::new(ColorDepth::None, true),
        Theme::for_terminal(ColorDepth::Ansi256, false, false),
    ];
    for help in [false, true] {
        app.show_help = help;
        for theme in &themes {
            for (w, h) in [(60, 16), (80, 24), (120, 40), (160, 48)] {
                for tab in Tab::ALL {
                    let text = render_snapshot_with(&app, tab, w, h, false, theme);
                    let bad: String = text.chars().filter(|c| !c.is_ascii()).collect();
                    assert!(bad.is_empty(), "{tab} {w}x{h} help {help}: {bad}\n{text}");
                }
            }
        }
    }
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

/// Issue 11 (8, 10): each chart names its series in its title at 80x24 and 120x40, and without
/// colour train and test keep distinct markers (braille stays: NO_COLOR is about colour).
#[test]
fn chart_legends_and_markers_without_colour() {
    let app = demo_app();
    for (w, h) in [(80, 24), (120, 40)] {
        let text = snapshot(Tab::Training, w, h);
        for title in [" loss ", " accuracy "] {
            let line = lines_with(&text, title);
            assert!(
                line.iter()
                    .any(|l| l.contains("train") && l.contains("test")),
                "{title} at {w}x{h}:\n{text}"
            );
        }
    }
    let no_color = Theme::new(ColorDepth::None, false);
    let text = render_snapshot_with(&app, Tab::Training, 120, 40, false, &no_color);
    assert!(
        text.chars().any(|c| ('\u{2801}'..='\u{28FF}').contains(&c)),
        "braille: {text}"
    );
    assert!(text.contains('•'), "the test series' own marker: {text}");
    let ascii = Theme::new(ColorDepth::None, true);
    let text = render_snapshot_with(&app, Tab::Training, 120, 40, false, &ascii);
    assert!(
        text.contains("* train") && text.contains("o test"),
        "{text}"
    );
}

/// Issue 11 (10): the accuracy axis is ranged to the values (the loss axis alone starts at 0),
/// and a converged run fills the progress bar.
#[test]
fn accuracy_axis_is_ranged_and_a_converged_bar_is_full() {
    let text = snapshot(Tab::Training, 120, 40);
    assert_eq!(text.matches("0.00").count(), 1, "{text}");
    let bar = text.lines().nth(2).unwrap();
    assert!(bar.contains("converged") && !bar.contains('─'), "{bar}");
}

/// Issue 11 (11): the focused panel has a heavier border (not only a title colour), and each
/// trust bar is coloured by its value.
#[test]
fn focus_border_and_trust_colours() {
    let app = demo_app();
    let text = snapshot(Tab::Embeddings, 120, 40);
    assert_eq!(text.matches('┏').count(), 1, "{text}");
    let ascii = Theme::new(ColorDepth::None, true);
    let text = render_snapshot_with(&app, Tab::Embeddings, 120, 40, false, &ascii);
    assert!(text.contains("==#"), "{text}");
    let theme = Theme::new(ColorDepth::TrueColor, false);
    let area = Rect::new(0, 0, 120, 40);
    let mut buf = Buffer::empty(area);
    render(&app, Tab::Embeddings, &theme, area, &mut buf);
    let mut colours = Vec::new();
    for y in 0..40 {
        let row: String = (0..120).map(|x| buf[(x, y)].symbol().to_string()).collect();
        if !row.contains("trust") {
            continue;
        }
        for x in 0..120 {
            let cell = &buf[(x, y)];
            if cell.symbol() == "█" && !colours.contains(&cell.fg) {
                colours.push(cell.fg);
            }
        }
    }
    // The fixture's trusts are 0.42, 0.54 (fair) and 0.66 (good).
    assert_eq!(colours.len(), 2, "{colours:?}");
    assert_ne!(theme.quality(0.2), theme.quality(0.5));
    assert_ne!(theme.quality(0.5), theme.quality(0.7));
}

/// Issue 11 (16): at 60x16 numbers are whole: a field is dropped rather than a number cut.
#[test]
fn numbers_are_never_cut_at_60x16() {
    let app = demo_app();
    let embeddings = snapshot(Tab::Embeddings, 60, 16);
    for trust in ["0.42", "0.54", "0.66"] {
        assert!(embeddings.contains(trust), "{trust}:\n{embeddings}");
    }
    // Panel titles and footers: whole fields or none.
    for line in embeddings.lines().filter(|l| l.contains("L4 out")) {
        let after = line.split("L4 out").nth(1).unwrap();
        let field: String = after.chars().take_while(|c| !"━┓─┐".contains(*c)).collect();
        assert!(
            field == " " || field == " · 10 ",
            "{field:?}:\n{embeddings}"
        );
    }
    assert!(
        embeddings.contains("KL 1.90 ") && !embeddings.contains(" d┘"),
        "{embeddings}"
    );
    let training = snapshot(Tab::Training, 60, 16);
    assert!(training.contains("epoch 40/200"), "{training}");
    let last = app.training.history.last().unwrap();
    let acc = format!("{:.1}%", last.train_accuracy * 100.0);
    assert!(training.contains(&acc), "{acc}:\n{training}");
    let saliency = snapshot(Tab::Saliency, 60, 16);
    assert!(saliency.contains("200/200 samples"), "{saliency}");
}

/// Issue 11 (6): the data's class names, not their indices, in the legend, the selection, the
/// titles and the probabilities.
#[test]
fn class_names_are_shown() {
    let mut app = demo_app();
    let mut split = (*app.session.split.clone().unwrap()).clone();
    let names: Vec<String> = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ]
    .map(String::from)
    .to_vec();
    split.train.class_names.clone_from(&names);
    split.test.class_names = names;
    app.session.split = Some(std::sync::Arc::new(split));
    let saliency = render_snapshot(&app, Tab::Saliency, 120, 40, false);
    for want in [
        "label three",
        "saliency for class three",
        ">three",
        " seven ",
    ] {
        assert!(saliency.contains(want), "{want}:\n{saliency}");
    }
    let embeddings = render_snapshot(&app, Tab::Embeddings, 160, 48, false);
    for want in ["label seven", "pred eight wrong", "nine"] {
        assert!(embeddings.contains(want), "{want}:\n{embeddings}");
    }
}

/// Issue 11 (15): in 16 colours, where ten classes share seven hues, the scatter draws each
/// cell's class digit in its class colour from the start; `g` turns braille dots back on.
#[test]
fn sixteen_colours_draw_class_digits_in_class_colours() {
    let mut app = demo_app();
    let theme = Theme::new(ColorDepth::Ansi16, false);
    let area = Rect::new(0, 0, 120, 40);
    let draw = |app: &layerscope::tui::App| {
        let mut buf = Buffer::empty(area);
        render(app, Tab::Embeddings, &theme, area, &mut buf);
        buf
    };
    let is_braille = |s: &str| s.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c));
    let buf = draw(&app);
    assert!(!buf.content.iter().any(|c| is_braille(c.symbol())));
    // Some scatter cell shows each class's digit in that class's colour.
    for class in 0..10 {
        let digit = char::from_digit(class, 10).unwrap().to_string();
        let colour = theme.class(class as usize);
        assert!(
            buf.content
                .iter()
                .any(|c| c.symbol() == digit && c.fg == colour),
            "class {class}"
        );
    }
    app.embed.glyphs_swapped = true;
    assert!(draw(&app).content.iter().any(|c| is_braille(c.symbol())));
}
