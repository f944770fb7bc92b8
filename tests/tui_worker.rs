//! The background worker end to end on small data: the headless pipeline fills every tab;
//! pause holds training and resume continues it; stop early keeps the model and the pipeline goes
//! on; a second request supersedes the first at job level; a diverged run is refused; a failing
//! job is reported, not fatal. (How long an idle worker stays quiet is a timing: benches/tui.rs.)

use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use clap::Parser;
use layerscope::cli::Cli;
use layerscope::compute::{
    Command, Config, Event, ExplainRequest, JobKind, Method, Part, StopReason, Worker,
};
use layerscope::nn::Mlp;
use layerscope::tui::{Tab, build_app, render_snapshot};

fn config(args: &[&str]) -> Config {
    let cli = Cli::parse_from(std::iter::once("layerscope").chain(args.iter().copied()));
    layerscope::tui::config(&cli.data, &cli.model, &cli.view).unwrap()
}

fn spawn(config: Config) -> (Worker, Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(config, move |e| {
        let _ = tx.send(e);
    });
    (worker, rx)
}

/// Events until `stop` says so (which is returned); panics after 120 s without it.
fn until(rx: &Receiver<Event>, mut stop: impl FnMut(&Event) -> bool) -> (Vec<Event>, Event) {
    let mut seen = Vec::new();
    loop {
        let e = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("an event within 120 s");
        if stop(&e) {
            return (seen, e);
        }
        seen.push(e);
    }
}

fn explain(id: u64, method: Method) -> Command {
    Command::Explain(ExplainRequest {
        id,
        part: Part::Test,
        index: 1,
        class: None,
        method,
        ..ExplainRequest::first()
    })
}

#[test]
fn the_pipeline_fills_every_tab() {
    let config = config(&[
        "--sample", "400", "--epochs", "3", "--n", "120", "--hidden", "32,16",
    ]);
    let app = build_app(config, Duration::from_secs(240)).unwrap();
    assert_eq!(app.training.history.len(), 3);
    assert!(app.session.model.is_some());
    let layers: Vec<usize> = app.embed.panels.iter().map(|p| p.layer).collect();
    assert_eq!(layers, vec![2, 3, 4], "hidden layers and the output");
    for p in &app.embed.panels {
        assert!(p.done && p.coords.nrows() == 120, "layer {}", p.layer);
        // A random layout keeps about 10 of 119 neighbours (0.08); t-SNE keeps far more.
        let t = p.trust.unwrap();
        assert!(t > 0.2, "layer {}: trust {t}", p.layer);
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
    let (worker, rx) = spawn(config(&[
        "--sample", "600", "--epochs", "200", "--hidden", "64",
    ]));
    until(&rx, |e| matches!(e, Event::Epoch(_)));
    worker.send(Command::Pause);
    let (before, _) = until(&rx, |e| {
        matches!(e, Event::TrainingStopped(StopReason::Cancelled))
    });
    // Epochs, and the film's separation figures and frames made alongside them.
    assert!(
        before
            .iter()
            .all(|e| matches!(e, Event::Epoch(_) | Event::Separation(_) | Event::Frame(_))),
        "{before:?}"
    );
    worker.send(Command::Resume);
    let (_, epoch) = until(&rx, |e| matches!(e, Event::Epoch(_)));
    assert!(matches!(epoch, Event::Epoch(m) if m.epoch >= 2), "resumed");
    assert!(
        worker.shutdown(Duration::from_secs(10)),
        "quit stops the worker"
    );
}

/// Issue 18 (6, 7): requests made while training runs replace each other before they start; a
/// running explanation or embedding is cancelled and dropped by the next request; stop early
/// keeps the model and the pipeline goes on with it.
#[test]
fn the_latest_request_wins_and_stop_early_goes_on() {
    let (worker, rx) = spawn(config(&[
        "--sample", "600", "--epochs", "200", "--hidden", "32", "--n", "150",
    ]));
    until(&rx, |e| matches!(e, Event::Epoch(_)));
    worker.send(explain(1, Method::Permutation));
    worker.send(explain(2, Method::Notebook));
    worker.send(Command::Embed {
        perplexity: 5.0,
        include_input: false,
    });
    worker.send(Command::Embed {
        perplexity: 7.0,
        include_input: false,
    });
    worker.send(Command::StopTraining);
    // The model so far is adopted and reported, then the latest request starts.
    let (seen, started) = until(&rx, |e| matches!(e, Event::ExplainStarted { .. }));
    assert!(
        !seen.iter().any(|e| matches!(e, Event::TrainingStopped(_))),
        "stopped by the user, not by the engine"
    );
    assert!(seen.iter().any(|e| matches!(e, Event::ModelReady(_))));
    assert!(
        !seen.iter().any(|e| matches!(e, Event::JobFailed { .. })),
        "{seen:?}"
    );
    let Event::ExplainStarted { request, .. } = started else {
        unreachable!()
    };
    assert_eq!(request.id, 2, "request 1 (and the opening 0) never ran");
    // The notebook estimator takes seconds here: a new request cancels it and drops it.
    worker.send(explain(3, Method::GradientTimesInput));
    let (seen, done) = until(&rx, |e| matches!(e, Event::ExplainDone { .. }));
    assert!(matches!(done, Event::ExplainDone { id: 3, .. }), "{done:?}");
    let started: Vec<u64> = seen
        .iter()
        .filter_map(|e| match e {
            Event::ExplainStarted { request, .. } => Some(request.id),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec![3]);
    // Then the embeddings at the latest perplexity; a new one drops the running layer.
    let (_, first) = until(&rx, |e| matches!(e, Event::EmbedStarted { .. }));
    assert!(matches!(first, Event::EmbedStarted { layer: 2, perplexity, .. } if perplexity == 7.0));
    worker.send(Command::Embed {
        perplexity: 10.0,
        include_input: false,
    });
    let (seen, _) = until(&rx, |e| matches!(e, Event::Idle));
    let mut embeds = Vec::new();
    for e in &seen {
        match e {
            Event::EmbedStarted {
                layer, perplexity, ..
            } => embeds.push(format!("start {layer} {perplexity}")),
            Event::EmbedDone { layer, .. } => embeds.push(format!("done {layer}")),
            _ => {}
        }
    }
    assert_eq!(
        embeds,
        ["start 2 10", "done 2", "start 3 10", "done 3"],
        "layer 2 at perplexity 7 was dropped"
    );
    assert!(worker.shutdown(Duration::from_secs(10)));
}

#[test]
fn a_diverged_run_is_refused_by_the_engine_rule() {
    let mut config = config(&["--sample", "200", "--epochs", "5", "--hidden", "16"]);
    // Pixels far beyond f32's range after one layer: the loss cannot stay finite.
    let mut split = (*config.split).clone();
    split.train.features.mapv_inplace(|v| v * 1e38);
    config.split = std::sync::Arc::new(split);
    let (worker, rx) = spawn(config);
    let (seen, _) = until(&rx, |e| matches!(e, Event::Idle));
    let names: Vec<String> = seen
        .iter()
        .map(|e| format!("{e:?}").chars().take(60).collect())
        .collect();
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::TrainingStopped(StopReason::Diverged { .. }))),
        "{names:#?}"
    );
    let failure = seen.iter().find_map(|e| match e {
        Event::JobFailed {
            job: JobKind::Train,
            message,
        } => Some(message.clone()),
        _ => None,
    });
    assert!(failure.is_some_and(|m| m.contains("diverged")));
    assert!(
        !seen.iter().any(|e| matches!(e, Event::ModelReady(_))),
        "a diverged model is not shown"
    );
    assert!(worker.shutdown(Duration::from_secs(5)));
}

#[test]
fn restart_is_refused_with_a_saved_model() {
    let mut config = config(&["--sample", "200", "--n", "60"]);
    config.model = Some(Mlp::new(&[784, 16, 10], 0));
    let (worker, rx) = spawn(config);
    until(&rx, |e| matches!(e, Event::ModelReady(_)));
    worker.send(Command::RestartTraining { seed: 1 });
    let (seen, failed) = until(&rx, |e| matches!(e, Event::JobFailed { .. }));
    assert!(
        matches!(&failed, Event::JobFailed { job: JobKind::Train, message } if message.contains("--model")),
        "{failed:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::TrainingStarted { .. }))
    );
    assert!(worker.shutdown(Duration::from_secs(10)));
}

#[test]
fn a_model_that_does_not_fit_is_reported_and_the_worker_lives_on() {
    let mut config = config(&["--sample", "300"]);
    config.model = Some(Mlp::new(&[3, 4, 10], 0));
    let (worker, rx) = spawn(config.clone());
    let (_, failure) = until(&rx, |e| matches!(e, Event::JobFailed { .. }));
    let Event::JobFailed { job, message } = failure else {
        unreachable!()
    };
    assert_eq!(job, JobKind::Load);
    assert!(message.contains("does not fit"), "{message}");
    assert!(worker.shutdown(Duration::from_secs(5)));
    assert!(build_app(config, Duration::from_secs(30)).is_err());
}

#[test]
fn the_front_end_refuses_a_missing_model_before_the_worker_starts() {
    let cli = Cli::parse_from([
        "layerscope",
        "--sample",
        "300",
        "--model",
        "/nonexistent/m.npz",
    ]);
    let e = layerscope::tui::config(&cli.data, &cli.model, &cli.view).unwrap_err();
    assert!(format!("{e:#}").contains("m.npz"), "{e:#}");
}

/// Integrated gradients run the engine's number of steps (50, as the README says), whichever
/// front-end asks.
#[test]
fn integrated_gradients_use_the_engines_steps() {
    let mut config = config(&["--sample", "200", "--n", "60"]);
    config.model = Some(Mlp::new(&[784, 16, 10], 0));
    let (worker, rx) = spawn(config);
    until(&rx, |e| matches!(e, Event::ModelReady(_)));
    worker.send(explain(5, Method::IntegratedGradients));
    let (_, done) = until(&rx, |e| matches!(e, Event::ExplainDone { id: 5, .. }));
    let Event::ExplainDone { attribution, .. } = done else {
        unreachable!()
    };
    let engine = layerscope::explain::ExplainParams::for_method(Method::IntegratedGradients);
    assert_eq!(attribution.samples, engine.samples);
    assert_eq!(attribution.samples, 50);
    assert!(worker.shutdown(Duration::from_secs(10)));
}

/// Issue 11 (11): `Command::EmbedLayers` embeds only the layers it names (the front-end keeps
/// the others), at its perplexity, and layers the model does not have are ignored.
#[test]
fn embed_layers_runs_only_the_layers_asked_for() {
    let (worker, rx) = spawn(config(&[
        "--sample", "300", "--epochs", "2", "--n", "60", "--hidden", "16",
    ]));
    // The opening run: layers 2 and 3 (the hidden layer and the output).
    until(&rx, |e| matches!(e, Event::Idle));
    worker.send(Command::EmbedLayers {
        perplexity: 5.0,
        include_input: true,
        layers: vec![1, 9],
    });
    let (seen, _) = until(&rx, |e| matches!(e, Event::Idle));
    let started: Vec<(usize, f64)> = seen
        .iter()
        .filter_map(|e| match e {
            Event::EmbedStarted {
                layer, perplexity, ..
            } => Some((*layer, *perplexity)),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec![(1, 5.0)], "{seen:?}");
    assert!(worker.shutdown(Duration::from_secs(10)));
}
