//! A deterministic, hand-built app state (no training, no t-SNE): the first 300 on-board digits,
//! 40 epochs of made-up but plausible curves, three clustered panels, a saliency estimate. For
//! snapshot tests, render benchmarks and screenshots.

use std::sync::Arc;

use ndarray::{Array2, Axis};

use super::app::{App, Panel, TrainStatus};
use crate::compute::{EpochMetrics, Event, ModelReport, SaliencySnapshot, Slots, StopReason};
use crate::compute::{Frame, Separation};
use crate::data::{self, Split};

/// Training rows in the fixture (all embedded).
pub const N_TRAIN: usize = 200;
/// Test rows in the fixture.
pub const N_TEST: usize = 100;

/// A small deterministic pseudo-random number in [0, 1) from an integer (splitmix64).
fn unit(i: u64) -> f32 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 24 bits, exactly representable in f32.

    (z >> 40) as f32 / (1u64 << 24) as f32
}

/// Made-up class probabilities: right except every 9th row, which goes to the next class; the
/// predicted class gets 0.5 to 0.98 (so that confidence has something to show).
fn probabilities(labels: &[u8], n_classes: usize) -> Array2<f32> {
    Array2::from_shape_fn((labels.len(), n_classes), |(i, c)| {
        let label = usize::from(labels[i]);
        let pred = if i % 9 == 4 {
            (label + 1) % n_classes
        } else {
            label
        };
        let top = 0.5 + 0.48 * unit(7919 * i as u64 + 3);
        if c == pred {
            top
        } else if c == label {
            (1.0 - top) * 0.6
        } else {
            (1.0 - top) * 0.4 / (n_classes - 2) as f32
        }
    })
}

/// Test rows placed into every map of the fixture (issue 13).
pub const N_PLACED: usize = 60;

/// The predicted class of the first `n` test rows.
fn test_probs_for_placing(app: &App, n: usize) -> Vec<usize> {
    (0..n)
        .filter_map(|j| app.session.probabilities(crate::data::Part::Test, j))
        .map(|p| crate::nn::argmax(p.as_slice().unwrap_or(&[])))
        .collect()
}

/// The fixture state, on the Training tab.
pub fn demo_app() -> App {
    let full = data::load_onboard()
        .expect("the on-board digits are built in")
        .into_unit_scale();
    let rows: Vec<usize> = (0..N_TRAIN + N_TEST).collect();
    let split = Split {
        train: full.select(&rows[..N_TRAIN]),
        test: full.select(&rows[N_TRAIN..]),
    };
    let n_classes = split.train.n_classes();
    let slots = Slots::default();
    let mut app = App::new(3.0);
    app.on_event(
        Event::DataReady {
            split: Arc::new(split.clone()),
            embed_n: N_TRAIN,
        },
        &slots,
    );
    app.on_event(
        Event::TrainingStarted {
            seed: 0,
            max_epochs: 200,
            layer_sizes: vec![784, 512, 256, n_classes],
        },
        &slots,
    );
    let model = crate::nn::Mlp::new(&[split.train.n_features(), 512, 256, n_classes], 0);
    let embed_probs = probabilities(&split.train.labels, n_classes);
    let test_probs = probabilities(&split.test.labels, n_classes);
    // One count per test row, so that the matrix and the last epoch's test accuracy agree.
    let mut confusion = Array2::<usize>::zeros((n_classes, n_classes));
    for (i, p) in test_probs.axis_iter(Axis(0)).enumerate() {
        let pred = crate::nn::argmax(p.as_slice().unwrap_or(&[]));
        confusion[[usize::from(split.test.labels[i]), pred]] += 1;
    }
    let final_test_accuracy = confusion.diag().sum() as f64 / confusion.sum() as f64;
    for e in 1..=40usize {
        let t = e as f64;
        app.on_event(
            Event::Epoch(EpochMetrics {
                epoch: e,
                train_loss: 2.3 * (-t / 6.0).exp() + 0.01,
                train_accuracy: 1.0 - 0.9 * (-t / 5.0).exp(),
                test_loss: Some(2.3 * (-t / 7.0).exp() + 0.25),
                // Rises to the accuracy the confusion matrix shows, exactly at the last epoch.
                test_accuracy: Some(
                    final_test_accuracy * (1.0 - 0.9 * (-t / 6.0).exp())
                        / (1.0 - 0.9 * (-40.0f64 / 6.0).exp()),
                ),
                seconds: 0.8,
                samples_per_sec: 6250.0,
            }),
            &slots,
        );
    }
    app.on_event(Event::TrainingStopped(StopReason::Converged), &slots);
    app.on_event(
        Event::ModelReady(Arc::new(ModelReport {
            layer_sizes: vec![784, 512, 256, n_classes],
            embed_probs,
            test_probs,
            per_class_accuracy: crate::nn::per_class_accuracy(&confusion),
            confusion,
            // A real (untrained) network, so that neighbours are computed as in the app.
            embed_layers: (1..=model.n_layers())
                .map(|k| model.layer_output(split.train.features.view(), k))
                .collect(),
            model: Arc::new(model),
        })),
        &slots,
    );
    app.embed.panels.clear();
    for (k, (layer, size)) in [(2usize, 512usize), (3, 256), (4, n_classes)]
        .into_iter()
        .enumerate()
    {
        // Classes on a circle; tighter clusters in deeper layers.
        let spread = 3.5 - k as f32;
        let labels = &split.train.labels;
        let coords = Array2::from_shape_fn((N_TRAIN, 2), |(i, d)| {
            let angle =
                f32::from(labels[i]) / n_classes as f32 * std::f32::consts::TAU + k as f32 * 0.3;
            let centre = if d == 0 { angle.cos() } else { angle.sin() } * 10.0;
            let seed = (i * 2 + d) as u64 + 1000 * k as u64;
            centre + (unit(seed) - 0.5) * spread * 2.0
        });
        app.embed.panels.push(Panel {
            layer,
            size,
            iteration: 1000,
            n_iter: 1000,
            kl_divergence: Some(1.9 - 0.4 * f64::from(u8::try_from(k).unwrap_or(0))),
            coords,
            trust: Some(0.42 + 0.12 * f64::from(u8::try_from(k).unwrap_or(0))),
            done: true,
            perplexity: 3.0,
        });
    }
    // Issue 13: the first test rows placed into each map, near the class they are predicted as
    // (a mistake lands among the digits it was taken for).
    let test_preds: Vec<usize> = test_probs_for_placing(&app, N_PLACED);
    let panels: Vec<(usize, Array2<f32>)> = app
        .embed
        .panels
        .iter()
        .map(|p| (p.layer, p.coords.clone()))
        .collect();
    for (k, (layer, coords)) in panels.into_iter().enumerate() {
        let placed = Array2::from_shape_fn((test_preds.len(), 2), |(j, d)| {
            let angle =
                test_preds[j] as f32 / n_classes as f32 * std::f32::consts::TAU + k as f32 * 0.3;
            let centre = if d == 0 { angle.cos() } else { angle.sin() } * 10.0;
            centre + (unit(50_000 + (j * 2 + d) as u64 + 1000 * k as u64) - 0.5) * 3.0
        });
        app.embed.points.map_done(layer, &coords, Some(placed));
    }
    app.embed.focus = 2;
    app.embed.selected = 4;
    app.embed.sync_points(&app.session);
    let image = split.test.features.row(0);
    // Where the image and every background (training) row are 0, a real Shapley map is exactly 0:
    // no coalition changes the model's input there.
    let background_blank: Vec<bool> = split
        .train
        .features
        .columns()
        .into_iter()
        .map(|c| c.iter().all(|&v| v == 0.0))
        .collect();
    let values: Vec<f32> = image
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v == 0.0 && background_blank[i] {
                return 0.0;
            }
            let (r, c) = (i / 28, i % 28);
            let wave = ((r as f32) / 5.0).sin() * ((c as f32) / 7.0).cos();
            0.02 * (v * wave - 0.2 * (1.0 - v) * wave.abs() * f32::from(u8::from(r % 3 == 0)))
        })
        .collect();
    let stderr = vec![0.0015; values.len()];
    app.saliency.set_estimate(SaliencySnapshot {
        id: 0,
        values,
        stderr: Some(stderr),
        samples_done: 200,
        samples_total: 200,
        seconds: 3.2,
    });
    app.saliency.done = true;
    app.saliency.running = false;
    app.saliency.explained_class = Some(usize::from(split.test.labels[0]));
    app.training.status = TrainStatus::Converged;
    app.idle = true;
    app
}

/// Epochs of the fixture's film (frames 0..=FILM_EPOCHS, as many as the demo trains).
pub const FILM_EPOCHS: usize = 40;

/// The film's share of the way from a shapeless cloud (epoch 0) to the final map.
fn film_progress(epoch: usize) -> f32 {
    1.0 - (-(epoch as f32) / 8.0).exp()
}

/// A frame of `layer` after `epoch`: each point on its way from a random place in a disk
/// (the untrained network) to its place in `target`.
fn film_frame(
    layer: usize,
    epoch: usize,
    target: &Array2<f32>,
    final_kl: f64,
    final_trust: f64,
) -> Frame {
    let s = film_progress(epoch);
    let coords = Array2::from_shape_fn(target.raw_dim(), |(i, d)| {
        let seed = 7_000_000 + (i as u64) * 2 + 100_000 * layer as u64;
        let r = 6.0 * unit(seed).sqrt();
        let a = unit(seed + 1) * std::f32::consts::TAU;
        let cloud = if d == 0 { r * a.cos() } else { r * a.sin() };
        (1.0 - s) * cloud + s * target[[i, d]]
    });
    let s = f64::from(s);
    Frame {
        layer,
        epoch,
        coords,
        kl_divergence: Some(final_kl + 1.2 * (1.0 - s)),
        trust: Some(final_trust * (0.5 + 0.5 * s)),
    }
}

/// The class separation after `epoch`: the pixels flat, deeper layers rising from below them.
fn film_separation(epoch: usize) -> Separation {
    let s = f64::from(film_progress(epoch));
    Separation {
        epoch,
        shares: vec![
            (1, 0.86),
            (2, 0.86 + 0.08 * s),
            (3, 0.78 + 0.17 * s),
            (4, 0.32 + 0.65 * s),
        ],
    }
}

/// The fixture with a film (issue 12): [`demo_app`] plus a frame of each layer at epoch 0 and
/// after each of its 40 epochs, moving from a shapeless cloud to the final maps, and the class
/// separation of every layer per epoch; the film shows its last stop, the final maps.
pub fn film_app() -> App {
    let mut app = demo_app();
    let slots = Slots::default();
    let finals: Vec<(usize, Array2<f32>, f64, f64)> = app
        .embed
        .panels
        .iter()
        .map(|p| {
            (
                p.layer,
                p.coords.clone(),
                p.kl_divergence.unwrap_or(1.0),
                p.trust.unwrap_or(0.5),
            )
        })
        .collect();
    for epoch in 0..=FILM_EPOCHS {
        for (layer, target, kl, trust) in &finals {
            let frame = film_frame(*layer, epoch, target, *kl, *trust);
            app.on_event(Event::Frame(frame), &slots);
        }
        app.on_event(Event::Separation(film_separation(epoch)), &slots);
    }
    app
}

/// Training under way with the film following it: 12 epochs trained, frames up to epoch 9
/// (frames lag training), no model yet, on the Embeddings tab.
pub fn film_training_app() -> App {
    let final_app = film_app();
    let slots = Slots::default();
    let split = final_app
        .session
        .split
        .clone()
        .expect("the fixture has data");
    let n_classes = split.train.n_classes();
    let mut app = App::new(3.0);
    app.on_event(
        Event::DataReady {
            split,
            embed_n: N_TRAIN,
        },
        &slots,
    );
    app.on_event(
        Event::TrainingStarted {
            seed: 0,
            max_epochs: 200,
            layer_sizes: vec![784, 512, 256, n_classes],
        },
        &slots,
    );
    for m in final_app.training.history.iter().take(12) {
        app.on_event(Event::Epoch(m.clone()), &slots);
    }
    for (&epoch, panels) in final_app.embed.film.frames.range(..=9) {
        for p in panels {
            let frame = Frame {
                layer: p.layer,
                epoch,
                coords: p.coords.clone(),
                kl_divergence: p.kl_divergence,
                trust: p.trust,
            };
            app.on_event(Event::Frame(frame), &slots);
        }
    }
    for epoch in 0..=12 {
        app.on_event(Event::Separation(film_separation(epoch)), &slots);
    }
    app.embed.selected = 4;
    app.tab = super::app::Tab::Embeddings;
    app
}
