//! Full-frame render time at 200x60 (goal: under 5 ms): every tab of the test fixture, through a
//! ratatui `Terminal` on a `TestBackend` (render + diff), alternating tabs so every frame changes.
//! `cargo bench --bench tui` prints the median and 95th percentile of 600 frames, five times over.
//! Key-to-screen latency, time to first frame and bytes written while idle need a real
//! pseudo-terminal: see `cargo bench --bench tui_latency`.

use std::time::{Duration, Instant};

use layerscope::tui::Tab;
use layerscope::tui::fixture::demo_app;
use layerscope::tui::render;
use layerscope::tui::theme::{ColorDepth, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn main() {
    let app = demo_app();
    for (name, theme) in [
        ("truecolor", Theme::new(ColorDepth::TrueColor, false)),
        ("no colour", Theme::new(ColorDepth::None, false)),
    ] {
        let mut medians = Vec::new();
        let mut p95s = Vec::new();
        for _ in 0..5 {
            let mut term = Terminal::new(TestBackend::new(200, 60)).expect("test backend");
            let mut times: Vec<Duration> = Vec::with_capacity(600);
            for i in 0..600 {
                let tab = Tab::ALL[i % 3];
                let start = Instant::now();
                term.draw(|f| {
                    let area = f.area();
                    render::render(&app, tab, &theme, area, f.buffer_mut());
                })
                .expect("draw");
                times.push(start.elapsed());
            }
            times.sort();
            medians.push(times[times.len() / 2]);
            p95s.push(times[times.len() * 95 / 100]);
        }
        medians.sort();
        p95s.sort();
        println!(
            "full frame 200x60 ({name}): median {:.3} ms (runs {:.3}..{:.3}), p95 {:.3} ms",
            medians[2].as_secs_f64() * 1e3,
            medians[0].as_secs_f64() * 1e3,
            medians[4].as_secs_f64() * 1e3,
            p95s[2].as_secs_f64() * 1e3
        );
    }
}
