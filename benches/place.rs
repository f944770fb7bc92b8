//! Placement and neighbours benchmark for issue 13 (`cargo bench --bench place`).
//!
//! On the on-board digits (50/50 split, seed 0), with the notebook's network trained to
//! convergence (or `-- --model PATH`): for each layer (1 = pixels .. 4 = output), the t-SNE map
//! of the first 1,500 training images, then
//! - the time to place the first 500 test images into it (`tsne::place`, median of `--runs`);
//! - the 10-NN label agreement of the placed points with the reference points in 2-D (the share
//!   of each placed point's 10 nearest training points in the map that carry its label), beside
//!   the same figure in a joint t-SNE of all 2,000 points (the goal: within 0.02);
//! - the time to find one test image's 8 nearest training images in every layer
//!   (`neighbours::nearest` plus the forward pass of the image), median over 200 images.
//!
//! `-- --runs N` (default 5), `-- --perplexity P` (placement perplexity; default openTSNE's 5),
//! `-- --model PATH` (skip training).
//!
//! Measured 2026-12-01 on the 2-core AMD EPYC (Zen 3, AVX2 + FMA, no AVX-512), built with
//! `cargo bench --profile test --bench place` (opt-level 2) while other builds ran (load
//! average 18-19, so CPU seconds are the figure; wall times are inflated), median of 5 runs:
//!
//! | layer | place, CPU s (of which k-NN + start) | wall s | agreement placed | joint t-SNE | difference |
//! |---|---|---|---|---|---|
//! | 1, pixels (784) | 0.112 (0.058) | 0.42 | 0.8026 | 0.8060 | -0.0034 |
//! | 2 (512) | 0.109 (0.053) | 0.48 | 0.8942 | 0.9038 | -0.0096 |
//! | 3 (256) | 0.077 (0.024) | 0.27 | 0.9286 | 0.9390 | -0.0104 |
//! | 4, output (10) | 0.070 (0.015) | 0.23 | 0.9540 | 0.9520 | +0.0020 |
//!
//! At placement perplexity 30 (same run conditions) the agreement was 0.769 / 0.893 / 0.931 /
//! 0.954 (pixels 0.037 below the joint map) at 1.3-2.2x the CPU time: openTSNE's 5 stays the
//! default. Neighbours of one test digit in all 4 layers: the search 1.5 ms CPU, 3.5 ms CPU with
//! the digit's forward pass (median of 200 digits).

use std::time::Instant;

use layerscope::data::LoadOptions;
use layerscope::neighbours::nearest;
use layerscope::nn::{self, Mlp, Trainer};
use layerscope::tsne::{self, PlaceParams, TsneParams};
use ndarray::{Array2, ArrayView2, concatenate, s};

const N_REF: usize = 1500;
const N_NEW: usize = 500;
const K: usize = 10;

fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    format!(
        "{model}; avx2 {}, fma {}, avx512f {}; {} threads",
        has("avx2"),
        has("fma"),
        has("avx512f"),
        rayon::current_num_threads()
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// CPU seconds of this process, all threads (steadier than wall time on a loaded machine).
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &raw mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Wall and CPU seconds of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let out = f();
    (out, wall.elapsed().as_secs_f64(), cpu_seconds() - cpu)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Mean share of each `query` point's K nearest `reference` points (2-D) with its label.
fn agreement(
    reference: ArrayView2<f32>,
    ref_labels: &[u8],
    query: ArrayView2<f32>,
    labels: &[u8],
) -> f64 {
    let mut total = 0.0;
    for (i, q) in query.outer_iter().enumerate() {
        let nb = nearest(reference, q, K, None);
        total += nb
            .iter()
            .filter(|n| ref_labels[n.index] == labels[i])
            .count() as f64
            / K as f64;
    }
    total / query.nrows() as f64
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(5);
    let perplexity: f64 = arg("--perplexity")
        .and_then(|v| v.parse().ok())
        .unwrap_or(PlaceParams::default().perplexity);
    println!("# cargo bench --bench place: {}", cpu());
    println!("# load average at start: {}", load_average());
    let split = LoadOptions::default().load().expect("on-board digits");
    // The trained model is kept for the next run (delete it to train again).
    let cached = std::path::PathBuf::from("target/bench_place/model.npz");
    let model_path = arg("--model")
        .map(std::path::PathBuf::from)
        .or_else(|| cached.exists().then(|| cached.clone()));
    let model: Mlp = match model_path {
        Some(path) => {
            println!("# model: {}", path.display());
            nn::load_model(&path, split.train.n_features(), split.train.n_classes()).expect("model")
        }
        None => {
            let started = Instant::now();
            let mut trainer = Trainer::new(
                split.train.n_features(),
                split.train.n_classes(),
                nn::TrainParams::default(),
            );
            trainer.run(&split.train, Some(&split.test), &mut |_| {}, None);
            println!(
                "# trained 784-512-256-10 in {:.1} s, {} epochs, test accuracy {:.4}",
                started.elapsed().as_secs_f64(),
                trainer.epoch(),
                trainer
                    .history()
                    .last()
                    .and_then(|m| m.test_accuracy)
                    .unwrap_or(f64::NAN)
            );
            let _ = std::fs::create_dir_all("target/bench_place");
            if let Ok(mut file) = std::fs::File::create(&cached) {
                let _ = nn::write_model(trainer.model(), &mut file);
            }
            trainer.model().clone()
        }
    };
    let reference_x = split.train.features.slice(s![..N_REF, ..]);
    let new_x = split.test.features.slice(s![..N_NEW, ..]);
    let ref_labels = &split.train.labels[..N_REF];
    let new_labels = &split.test.labels[..N_NEW];
    let params = PlaceParams {
        perplexity,
        ..PlaceParams::default()
    };
    println!(
        "# {N_REF} reference, {N_NEW} placed points; map perplexity 30; placement perplexity \
         {perplexity}, {} iterations; {runs} runs",
        params.n_iter
    );
    println!(
        "layer | units | place wall s (median, min..max) | place CPU s (median) | of which k-NN + \
         init, CPU s | agreement placed | agreement joint t-SNE | difference | load"
    );
    let mut layer_outputs: Vec<Array2<f32>> = Vec::new();
    for layer in 1..=model.n_layers() {
        let high_ref = model.layer_output(reference_x, layer);
        let high_new = model.layer_output(new_x, layer);
        let tparams = TsneParams::default();
        let map = tsne::tsne(high_ref.view(), &tparams, None, None).expect("t-SNE");
        let mut times = Vec::new();
        let mut cpus = Vec::new();
        let mut setup = Vec::new();
        let mut placed = Array2::zeros((0, 2));
        let no_steps = PlaceParams {
            n_iter: 0,
            ..params.clone()
        };
        for _ in 0..runs {
            let (p, wall, cpu) = timed(|| {
                tsne::place(high_ref.view(), map.coords.view(), high_new.view(), &params)
                    .expect("place")
            });
            placed = p;
            times.push(wall);
            cpus.push(cpu);
            let (_, _, cpu0) = timed(|| {
                tsne::place(
                    high_ref.view(),
                    map.coords.view(),
                    high_new.view(),
                    &no_steps,
                )
                .expect("place")
            });
            setup.push(cpu0);
        }
        let placed_agreement = agreement(map.coords.view(), ref_labels, placed.view(), new_labels);
        let all = concatenate![ndarray::Axis(0), high_ref, high_new];
        let joint = tsne::tsne(all.view(), &tparams, None, None).expect("joint t-SNE");
        let joint_agreement = agreement(
            joint.coords.slice(s![..N_REF, ..]),
            ref_labels,
            joint.coords.slice(s![N_REF.., ..]),
            new_labels,
        );
        let lo = times.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = times.iter().copied().fold(0.0, f64::max);
        println!(
            "{layer} | {} | {:.4} ({lo:.4}..{hi:.4}) | {:.4} | {:.4} | {placed_agreement:.4} | \
             {joint_agreement:.4} | {:+.4} | {}",
            high_ref.ncols(),
            median(times),
            median(cpus),
            median(setup),
            placed_agreement - joint_agreement,
            load_average()
        );
        layer_outputs.push(high_ref);
    }

    // Neighbours of one test image in every layer: its forward pass and one exact search per
    // layer against the 1,500 embedded images' activations (what the app holds in
    // `ModelReport::embed_layers`).
    let mut times = Vec::new();
    let mut cpus = Vec::new();
    for i in 0..200 {
        let x = split.test.features.slice(s![i..=i, ..]);
        let (found, wall, cpu) = timed(|| {
            let mut found = 0;
            for (k, reference) in layer_outputs.iter().enumerate() {
                let q = model.layer_output(x, k + 1);
                found += nearest(reference.view(), q.row(0), 8, None).len();
            }
            found
        });
        assert_eq!(found, 8 * layer_outputs.len());
        times.push(wall * 1e3);
        cpus.push(cpu * 1e3);
    }
    // The search alone, the query's activations given (the app has the test images' outputs).
    let mut search = Vec::new();
    for i in 0..200 {
        let x = split.test.features.slice(s![i..=i, ..]);
        let queries: Vec<Array2<f32>> = (1..=layer_outputs.len())
            .map(|k| model.layer_output(x, k))
            .collect();
        let (_, wall, cpu) = timed(|| {
            for (reference, q) in layer_outputs.iter().zip(&queries) {
                std::hint::black_box(nearest(reference.view(), q.row(0), 8, None));
            }
        });
        search.push((wall * 1e3, cpu * 1e3));
    }
    println!(
        "search alone (activations given), all {} layers: median {:.3} ms wall, {:.3} ms CPU",
        layer_outputs.len(),
        median(search.iter().map(|s| s.0).collect()),
        median(search.iter().map(|s| s.1).collect())
    );
    let lo = times.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = times.iter().copied().fold(0.0, f64::max);
    println!(
        "forward pass + search, all {} layers (k = 8, {N_REF} points): median {:.3} ms \
         wall (min {lo:.3}, max {hi:.3}), {:.3} ms CPU, over 200 images; load {}",
        layer_outputs.len(),
        median(times),
        median(cpus),
        load_average()
    );
}
