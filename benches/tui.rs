//! Full-frame render time at 200x60 (goal: under 5 ms): every tab of the test fixture, through a
//! ratatui `Terminal` on a `TestBackend` (render + diff), alternating tabs so every frame changes.
//! `cargo bench --bench tui` prints the median and 95th percentile of 600 frames, five times over.
//! Then the worker's pause: how long a Pause takes to be confirmed mid-training, and how many
//! events a paused worker sends in the next 400 ms (should be none; a timing, so kept out of the
//! tests), five runs.
//! Key-to-screen latency, time to first frame and bytes written while idle need a real
//! pseudo-terminal: see `cargo bench --bench tui_latency`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use layerscope::cli::Cli;
use layerscope::compute::{Command, Event, StopReason, Worker};

use layerscope::tui::Tab;
use layerscope::tui::fixture::demo_app;
use layerscope::tui::render;
use layerscope::tui::theme::{ColorDepth, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn main() {
    render_frames();
    pause_and_idle();
}

/// Pause latency and quiet while paused, on 600 on-board digits with one hidden layer of 64.
fn pause_and_idle() {
    let cli = Cli::parse_from(["layerscope", "--sample", "600", "--hidden", "64"]);
    let mut latencies = Vec::new();
    let mut events_while_paused = Vec::new();
    for _ in 0..5 {
        let config =
            layerscope::tui::config(&cli.data, &cli.model, &cli.view).expect("on-board data");
        let (tx, rx) = mpsc::channel();
        let worker = Worker::spawn(config, move |e| {
            let _ = tx.send(e);
        });
        while !matches!(
            rx.recv_timeout(Duration::from_secs(60)),
            Ok(Event::Epoch(_))
        ) {}
        let start = Instant::now();
        worker.send(Command::Pause);
        while !matches!(
            rx.recv_timeout(Duration::from_secs(60)),
            Ok(Event::TrainingStopped(StopReason::Cancelled))
        ) {}
        latencies.push(start.elapsed());
        let window = Instant::now() + Duration::from_millis(400);
        let mut n = 0;
        while let Ok(_event) = rx.recv_timeout(window.saturating_duration_since(Instant::now())) {
            n += 1;
        }
        events_while_paused.push(n);
        worker.shutdown(Duration::from_secs(10));
    }
    latencies.sort();
    println!(
        "pause confirmed mid-training: median {:.2} ms (runs {:.2}..{:.2}); events in the 400 ms \
         after: {events_while_paused:?} (expected all 0)",
        latencies[2].as_secs_f64() * 1e3,
        latencies[0].as_secs_f64() * 1e3,
        latencies[4].as_secs_f64() * 1e3,
    );
}

/// Full frames of the fixture through a `TestBackend`.
fn render_frames() {
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
