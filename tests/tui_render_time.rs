//! Full-frame render time at 200x60 (goal: under 5 ms): every tab of the fixture, through a
//! ratatui `Terminal` on a `TestBackend` (render + diff), alternating tabs so every frame
//! changes. Median of many frames; the bound here is loose (shared CI machines, test profile),
//! the measured figure goes in the notes.

use std::time::{Duration, Instant};

use layerscope::tui::Tab;
use layerscope::tui::fixture::demo_app;
use layerscope::tui::render;
use layerscope::tui::theme::{ColorDepth, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

#[test]
fn full_frame_at_200x60() {
    let app = demo_app();
    let theme = Theme::new(ColorDepth::TrueColor, false);
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let mut times: Vec<Duration> = Vec::new();
    for i in 0..120 {
        let tab = Tab::ALL[i % 3];
        let start = Instant::now();
        term.draw(|f| {
            let area = f.area();
            render::render(&app, tab, &theme, area, f.buffer_mut());
        })
        .unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    let p95 = times[times.len() * 95 / 100];
    eprintln!("full frame 200x60: median {median:?}, p95 {p95:?}");
    assert!(median < Duration::from_millis(20), "median {median:?}");
}
