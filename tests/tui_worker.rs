//! The background worker end to end on small data: the headless pipeline fills every tab;
//! pause holds training and resume continues it; a failing job is reported, not fatal.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use layerscope::cli::Cli;
use layerscope::compute::{Command, Config, Event, JobKind, StopReason, Worker};
use layerscope::tui::{Tab, build_app, render_snapshot};

fn cli(args: &[&str]) -> Cli {
    Cli::parse_from(std::iter::once("layerscope").chain(args.iter().copied()))
}

#[test]
fn the_pipeline_fills_every_tab() {
    let cli = cli(&[
        "--sample", "400", "--epochs", "3", "--n", "120", "--hidden", "32,16",
    ]);
    let app = build_app(&cli, Duration::from_secs(240)).unwrap();
    assert_eq!(app.training.history.len(), 3);
    assert!(app.model.is_some());
    let layers: Vec<usize> = app.embed.panels.iter().map(|p| p.layer).collect();
    assert_eq!(layers, vec![2, 3, 4], "hidden layers and the output");
    for p in &app.embed.panels {
        assert!(p.done && p.coords.nrows() == 120, "layer {}", p.layer);
        let t = p.trust.unwrap();
        assert!((0.0..=1.0).contains(&t));
    }
    let s = app.saliency.estimate.as_ref().unwrap();
    assert!(app.saliency.done);
    assert_eq!(s.values.len(), 784);
    assert!(s.values.iter().any(|v| *v != 0.0));
    for tab in Tab::ALL {
        let text = render_snapshot(&app, tab, 120, 40, false);
        assert!(!text.contains("failed"), "{text}");
    }
}

#[test]
fn pause_holds_training_and_resume_continues() {
    let cli = cli(&["--sample", "600", "--epochs", "200", "--hidden", "64"]);
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(Config::from_cli(&cli), move |e| {
        let _ = tx.send(e);
    });
    let next_epoch = |timeout: Duration| loop {
        match rx.recv_timeout(timeout) {
            Ok(Event::Epoch(r)) => return Some(r.epoch),
            Ok(_) => {}
            Err(_) => return None,
        }
    };
    assert!(next_epoch(Duration::from_secs(60)).is_some());
    worker.send(Command::Pause);
    // Drain until the pause is confirmed.
    let start = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            Event::TrainingStopped(StopReason::Cancelled) => break,
            Event::Epoch(_) | Event::DataReady { .. } | Event::TrainingStarted { .. } => {}
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(next_epoch(Duration::from_millis(400)), None, "paused");
    worker.send(Command::Resume);
    assert!(next_epoch(Duration::from_secs(30)).is_some(), "resumed");
    assert!(
        worker.shutdown(Duration::from_secs(10)),
        "quit stops the worker"
    );
}

#[test]
fn a_failed_job_is_reported_and_the_worker_lives_on() {
    let cli = cli(&["--sample", "300", "--model", "/nonexistent/model.npz"]);
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(Config::from_cli(&cli), move |e| {
        let _ = tx.send(e);
    });
    let failure = loop {
        if let Event::JobFailed { job, message } = rx.recv_timeout(Duration::from_secs(30)).unwrap()
        {
            break (job, message);
        }
    };
    assert_eq!(failure.0, JobKind::Load);
    assert!(failure.1.contains("model.npz"), "{}", failure.1);
    assert!(worker.shutdown(Duration::from_secs(5)));
    assert!(build_app(&cli, Duration::from_secs(30)).is_err());
}
