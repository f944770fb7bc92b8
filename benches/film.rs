//! The film benchmark (`cargo bench --bench film`, issue 12).
//!
//! On the on-board digits (5,000 training images, 784-512-256-10, the first 1,500 embedded,
//! perplexity 30) it prints:
//! 1. per layer, a warm frame (from the previous epoch's frame, `compute::film::frame_params`)
//!    against a cold full run on the same activations: seconds (median over the epochs
//!    sampled), KL ratio, and the alignment ratio (median move between consecutive frames over
//!    the RMS radius, cold film / warm film);
//! 2. the separation figure's cost per epoch (every layer, pixels cached);
//! 3. the worker end to end, film on and off: training wall time (the slowdown), the film's
//!    completion after training ends, frames made, and the memory of the frames (and of the
//!    weights kept per epoch), extrapolated to a 200-epoch run.
//!
//! Options: `-- --iters 50,100,150,200` sweeps the warm iteration count (part 1 only);
//! `--epochs N` caps training (default: the engine's, about 37 epochs to converge here);
//! `--sample E,E,...` the epochs sampled in part 1 (default 1,2,5,10,20,30); `--lr X` another
//! learning rate for the warm frames (part 1); `--exag N` N of the warm iterations with early
//! exaggeration (`--ee F` its factor, default 12); `--backward` builds part 1's chains
//! backwards from the last epoch's cold map (as the worker does once training has ended);
//! `--no-profile` skips part 0; `--worker-only` skips part 1; `--no-worker` stops after part 1;
//! `--runs N` repeats part 3 (medians); `--adaptive` runs part 1's warm frames as the worker
//! does (`film::frame_schedule` of their neighbour change: the tier's iterations at most,
//! stopped once the KL settles, the warm learning rate where not quiet), with `--tol X` another
//! convergence tolerance (0: none), `--lr X` another learning rate for frames that are not
//! quiet (`--remade-lr X` for the remade tier's only) and `--tiers Q,F,M` other quiet / frame /
//! moved iterations; part 1 also prints each chain's iterations in all. `--together` times the whole backward film after the anchors
//! (part 5) and checks the separation taken from each epoch's frames against the epoch's own
//! searches. `FILM_TIMELINE=1` in the environment prints part 3's events with their times (on
//! stderr).
//!
//! `--film-cpu N` (part 6) times the backward film after the anchors N times, an epoch's
//! layers at once as the worker makes them, and prints each run's wall and CPU seconds, their
//! medians and a hash of every frame's coordinates (two builds that print the same hash made
//! the same frames, byte for byte). `--models DIR` reads the network of every epoch from the
//! checkpoints in DIR (`epoch_NNN.npz`) instead of training, and when DIR holds none trains
//! and writes them there: two builds then time the same networks without training each time.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use layerscope::compute::{Config, Event, Worker, film};
use layerscope::data::LoadOptions;
use layerscope::nn::{self, Mlp, StopReason, Trainer};
use layerscope::tsne::{self, TsneParams};
use ndarray::s;

fn cpu() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    #[cfg(target_arch = "x86_64")]
    let features = format!(
        "AVX2 {}, FMA {}, AVX-512F {}",
        std::arch::is_x86_feature_detected!("avx2"),
        std::arch::is_x86_feature_detected!("fma"),
        std::arch::is_x86_feature_detected!("avx512f")
    );
    #[cfg(not(target_arch = "x86_64"))]
    let features = "not x86-64".to_owned();
    let threads = rayon::current_num_threads();
    format!("{model}; {features}; {threads} rayon threads")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn list(name: &str, default: &[usize]) -> Vec<usize> {
    arg(name).map_or_else(
        || default.to_vec(),
        |s| s.split(',').filter_map(|p| p.trim().parse().ok()).collect(),
    )
}

/// The network at epoch 0 and after every epoch, and the wall time of each epoch.
fn train_run(split: &layerscope::data::Split, max_epochs: usize) -> (Vec<Mlp>, f64) {
    let params = nn::TrainParams {
        max_epochs,
        ..nn::TrainParams::default()
    };
    let mut trainer = Trainer::new(split.train.n_features(), split.train.n_classes(), params);
    let mut models = vec![trainer.model().clone()];
    let started = Instant::now();
    loop {
        trainer.set_max_epochs(max_epochs.min(trainer.epoch() + 1));
        let stop = trainer.run(&split.train, Some(&split.test), &mut |_| {}, None);
        trainer.set_max_epochs(max_epochs);
        models.push(trainer.model().clone());
        if stop != StopReason::MaxEpochs || trainer.epoch() >= max_epochs {
            break;
        }
    }
    (models, started.elapsed().as_secs_f64())
}

struct WorkerRun {
    training: f64,
    after: f64,
    maps: f64,
    frames: usize,
    frame_bytes: usize,
    epochs: usize,
}

fn worker_run(split: &Arc<layerscope::data::Split>, film: bool, max_epochs: usize) -> WorkerRun {
    let config = Config {
        film,
        max_epochs,
        ..Config::new((**split).clone(), None)
    };
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(config, move |e| {
        let _ = tx.send(e);
    });
    let started = Instant::now();
    let (mut stopped, mut last, mut frames, mut frame_bytes, mut epochs) = (None, 0.0, 0, 0, 0);
    let mut maps = 0.0f64;
    while let Ok(event) = rx.recv_timeout(Duration::from_secs(600)) {
        let t = started.elapsed().as_secs_f64();
        if std::env::var_os("FILM_TIMELINE").is_some() {
            let what = match &event {
                Event::Frame(f) => format!("frame l{} e{}", f.layer, f.epoch),
                Event::Separation(s) => format!("separation e{}", s.epoch),
                Event::EmbedDone { .. } => "map".into(),
                Event::ExplainDone { .. } => "explain".into(),
                Event::TrainingStopped(_) => "stopped".into(),
                Event::Epoch(m) => format!("epoch {}", m.epoch),
                _ => String::new(),
            };
            if !what.is_empty() {
                eprintln!("{t:8.3} {what}");
            }
        }
        match event {
            Event::Idle => break,
            Event::TrainingStopped(_) => stopped = Some(t),
            Event::Epoch(m) => epochs = m.epoch,
            Event::Frame(f) => {
                frames += 1;
                frame_bytes += f.coords.len() * 4;
                last = t;
            }
            Event::EmbedDone { .. } => {
                maps = maps.max(t);
                last = last.max(t);
            }
            Event::ExplainDone { .. } | Event::Separation(_) => {
                last = last.max(t);
            }
            _ => {}
        }
    }
    worker.shutdown(Duration::from_secs(10));
    let training = stopped.unwrap_or(f64::NAN);
    WorkerRun {
        training,
        after: last - training,
        maps: maps - training,
        frames,
        frame_bytes,
        epochs,
    }
}

/// CPU seconds used by this process so far (user + system).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// Wall and CPU seconds of `f`, median of `runs`.
fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, f64) {
    let (mut wall, mut cpu) = (vec![], vec![]);
    for _ in 0..runs {
        let (t, c) = (Instant::now(), cpu_seconds());
        std::hint::black_box(f());
        wall.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
    }
    (median(wall), median(cpu))
}

/// Part 0: the parts of a warm frame of every layer at epoch 10 (from epoch 9's cold map).
fn profile(models: &[Mlp], x: ndarray::ArrayView2<f32>, perplexity: f64) {
    let epoch = 10.min(models.len() - 1).max(1);
    println!(
        "\n0. a warm frame's parts, epoch {epoch} from epoch {}'s map, 1,500 points (wall / CPU s, median of 5; load {})",
        epoch - 1,
        load_average()
    );
    println!(
        "{:>5} | {:>13} {:>13} {:>13} {:>13} {:>13} {:>13} | {:>13}",
        "layer",
        "activations",
        "tsne_from 1it",
        "tsne_from",
        "trust",
        "align_to",
        "warm::",
        "cold run"
    );
    let f = |(w, c): (f64, f64)| format!("{w:.3}/{c:.3}");
    for layer in 2..=models[0].n_layers() {
        let before = models[epoch - 1].layer_output(x, layer);
        let cold = film::frame_params(perplexity, 0, false);
        let warm = film::frame_params(perplexity, 0, true);
        let prev = tsne::tsne(before.view(), &cold, None, None)
            .expect("cold")
            .coords;
        let high = models[epoch].layer_output(x, layer);
        let act = timed(5, || models[epoch].layer_output(x, layer));
        let one = TsneParams {
            n_iter: 1,
            ..warm.clone()
        };
        let fixed = timed(5, || {
            tsne::tsne_from(high.view(), prev.view(), &one, None, None)
        });
        let full = timed(5, || {
            tsne::tsne_from(high.view(), prev.view(), &warm, None, None)
        });
        let out = tsne::tsne_from(high.view(), prev.view(), &warm, None, None).expect("warm");
        let trust = timed(5, || tsne::trust(high.view(), out.coords.view()));
        let align = timed(5, || film::align_to(prev.view(), out.coords.view()));
        let shared = timed(5, || {
            tsne::warm::tsne_warm(high.view(), Some(prev.view()), &warm, None)
        });
        // The worker's frame: Newton calibration from the previous frame's precisions.
        let before_run = tsne::warm::tsne_warm_chain(
            before.view(),
            Some(prev.view()),
            &warm,
            tsne::warm::Chain::default(),
            &|_| 1,
            None,
        )
        .expect("warm");
        let chain = tsne::warm::Chain {
            neighbours: None,
            betas: Some(&before_run.betas),
        };
        let one_it = TsneParams {
            n_iter: 1,
            ..warm.clone()
        };
        let chain_one = timed(5, || {
            tsne::warm::tsne_warm_chain(
                high.view(),
                Some(prev.view()),
                &one_it,
                chain,
                &|_| 1,
                None,
            )
        });
        let chain_full = timed(5, || {
            tsne::warm::tsne_warm_chain(
                high.view(),
                Some(prev.view()),
                &warm,
                chain,
                &|_| warm.n_iter,
                None,
            )
        });
        let parts: Vec<[(&str, f64); 5]> = (0..5)
            .map(|_| {
                tsne::warm::part_seconds(
                    high.view(),
                    prev.view(),
                    perplexity,
                    Some(&before_run.betas),
                )
            })
            .collect();
        println!(
            "{layer:>5} | parts (wall s, median of 5): {}",
            (0..5)
                .map(|i| format!(
                    "{} {:.4}",
                    parts[0][i].0,
                    median(parts.iter().map(|p| p[i].1).collect())
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let pool1 = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        let chain_1t = timed(3, || {
            pool1.install(|| {
                tsne::warm::tsne_warm_chain(
                    high.view(),
                    Some(prev.view()),
                    &warm,
                    chain,
                    &|_| warm.n_iter,
                    None,
                )
            })
        });
        println!(
            "{layer:>5} | chain (Newton calibration from the last betas): 1 it {}, {} its {}, on 1 thread {}",
            f(chain_one),
            warm.n_iter,
            f(chain_full),
            f(chain_1t)
        );
        let cold_run = timed(3, || tsne::tsne(high.view(), &cold, None, None));
        println!(
            "{layer:>5} | {:>13} {:>13} {:>13} {:>13} {:>13} {:>13} | {:>13}",
            f(act),
            f(fixed),
            f(full),
            f(trust),
            f(align),
            f(shared),
            f(cold_run)
        );
    }
    println!(
        "       (tsne_from 1it: neighbours + affinities + 1 iteration; warm::: tsne::warm::tsne_warm, \
         the whole frame with the trust from the same neighbour search)"
    );
}

/// `--f16`: what keeping the weights in half precision (`film::HalfMlp`) changes, per layer at
/// a few epochs: the activations' relative error, the share of each image's 10 nearest
/// neighbours that differ, and a cold map (same seed) of each: KL and trust.
fn half_precision(models: &[Mlp], x: ndarray::ArrayView2<f32>, perplexity: f64) {
    println!(
        "\n4. weights in f16 (film::HalfMlp) against f32, 1,500 points, cold maps with one seed (load {})",
        load_average()
    );
    println!(
        "{:>5} {:>5} | {:>9} {:>9} | {:>8} {:>8} | {:>7} {:>7} | {:>8}",
        "layer", "epoch", "act err", "kNN new", "KL f32", "KL f16", "tr f32", "tr f16", "move"
    );
    let last = models.len() - 1;
    for epoch in [0, 1, 5, last.min(20), last] {
        let half = film::HalfMlp::new(&models[epoch]).model();
        for layer in 2..=models[0].n_layers() {
            let a = models[epoch].layer_output(x, layer);
            let b = half.layer_output(x, layer);
            let num: f64 = a
                .iter()
                .zip(&b)
                .map(|(p, q)| f64::from(p - q).powi(2))
                .sum();
            let den: f64 = a.iter().map(|p| f64::from(*p).powi(2)).sum();
            let na = tsne::warm::tsne_warm(
                a.view(),
                None,
                &film::frame_params(perplexity, 0, false),
                None,
            )
            .expect("cold");
            let nb = tsne::warm::tsne_warm(
                b.view(),
                None,
                &film::frame_params(perplexity, 0, false),
                None,
            )
            .expect("cold");
            let change = tsne::warm::neighbour_change(&na.neighbours, &nb.neighbours, a.nrows());
            let moved = film::median_move(
                na.embedding.coords.view(),
                film::align_to(na.embedding.coords.view(), nb.embedding.coords.view()).view(),
            );
            println!(
                "{layer:>5} {epoch:>5} | {:>9.2e} {:>9.4} | {:>8.4} {:>8.4} | {:>7.4} {:>7.4} | {:>8.4}",
                (num / den.max(1e-30)).sqrt(),
                change,
                na.embedding.kl_divergence,
                nb.embedding.kl_divergence,
                na.trust.unwrap_or(f64::NAN),
                nb.trust.unwrap_or(f64::NAN),
                moved
            );
        }
    }
    println!(
        "       (act err: RMS relative error of the activations; kNN new: share of the 10 nearest \
         neighbours that differ; move: median move of a point between the two maps / RMS radius)"
    );
}

/// `--together`: the frames of one epoch made at once (`Reel::make_epoch`, one task per layer)
/// against one by one (`Reel::make`), along a backward chain of `epochs` epochs.
fn together(models: &[Mlp], x: ndarray::ArrayView2<f32>, labels: &[u8], perplexity: f64) {
    let last = models.len() - 1;
    let layers: Vec<usize> = (2..=models[0].n_layers()).collect();
    let n_layers = models[0].n_layers();
    let pixels = film::label_share(x, labels, film::SEPARATION_K);
    let mut separations = Vec::new();
    let mut chain = |at_once: bool| -> (f64, f64, Vec<layerscope::compute::Frame>, film::Reel) {
        let mut reel = film::Reel::default();
        for (e, m) in models.iter().enumerate() {
            reel.keep(e, m);
        }
        reel.settle();
        for &layer in &layers {
            let high = models[last].layer_output(x, layer);
            let f = film::make_frame(high.view(), None, layer, last, perplexity, 0, None)
                .expect("anchor");
            reel.adopt(&f, high.view());
        }
        let set: std::collections::BTreeSet<usize> = layers.iter().copied().collect();
        let (t, c) = (Instant::now(), cpu_seconds());
        let mut frames = Vec::new();
        while let Some((epoch, todo)) = reel.next_epoch(&set) {
            if at_once {
                for f in reel
                    .make_epoch(x, &todo, epoch, perplexity, 0, None)
                    .expect("kept")
                {
                    frames.push(f.expect("frame"));
                }
                separations.extend(reel.separation_of_frames(epoch, n_layers, labels, pixels));
            } else {
                for layer in todo {
                    frames.push(
                        reel.make(x, layer, epoch, perplexity, 0, None)
                            .expect("kept")
                            .expect("frame"),
                    );
                }
            }
        }
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
        (wall, cpu, frames, reel)
    };
    let (w1, c1, f1, _) = chain(false);
    let (w3, c3, f3, reel) = chain(true);
    assert_eq!(f1.len(), f3.len());
    let same = f1.iter().zip(&f3).all(|(a, b)| a.coords == b.coords);
    // The separation the worker takes from an epoch's frames once training has ended, against
    // the epoch's own searches (outside the timings).
    let own = separations
        .iter()
        .filter(|s| {
            let model = reel.model(s.epoch).expect("kept");
            let own = film::separation(&model, x, labels, s.epoch, Some(pixels));
            **s == own
        })
        .count();
    println!(
        "   separation from the frames' searches equal to the epoch's own: {own} of {} epochs",
        separations.len()
    );
    println!(
        "\n5. the whole backward film after the anchors ({} frames, load {}): one by one {w1:.2} s wall / {c1:.2} CPU s; an epoch's layers at once {w3:.2} s / {c3:.2} CPU s; identical frames: {same}",
        f1.len(),
        load_average()
    );
}

/// `--models DIR`: the networks of every epoch from DIR's checkpoints; when it holds none,
/// [`train_run`]'s, written there first (train seconds 0 when read).
fn cached_models(
    dir: &std::path::Path,
    split: &layerscope::data::Split,
    max_epochs: usize,
) -> (Vec<Mlp>, f64) {
    let (features, classes) = (split.train.n_features(), split.train.n_classes());
    if let Ok(saved) = nn::checkpoints::load_checkpoints(dir, features, classes) {
        assert!(
            saved.iter().enumerate().all(|(i, (e, _))| i == *e),
            "{}: checkpoints of every epoch from 0 expected",
            dir.display()
        );
        println!(
            "networks read from {} ({} epochs)",
            dir.display(),
            saved.len() - 1
        );
        return (saved.into_iter().map(|(_, m)| m).collect(), 0.0);
    }
    let (models, seconds) = train_run(split, max_epochs);
    std::fs::create_dir_all(dir).expect("--models folder");
    for (epoch, model) in models.iter().enumerate() {
        let path = dir.join(nn::checkpoints::checkpoint_name(epoch));
        let mut file = std::fs::File::create(&path).expect("checkpoint file");
        nn::write_model(model, &mut file).expect("checkpoint written");
    }
    (models, seconds)
}

/// Part 6 (`--film-cpu N`): the backward film after the anchors (`Reel::make_epoch`, an
/// epoch's layers at once, as the worker makes it) `runs` times: wall and CPU seconds of each
/// run, medians, and an FNV-1a hash of every frame's coordinates in the order made.
fn film_cpu(models: &[Mlp], x: ndarray::ArrayView2<f32>, perplexity: f64, runs: usize) {
    let last = models.len() - 1;
    let layers: Vec<usize> = (2..=models[0].n_layers()).collect();
    let set: std::collections::BTreeSet<usize> = layers.iter().copied().collect();
    let anchors: Vec<_> = layers
        .iter()
        .map(|&layer| {
            let high = models[last].layer_output(x, layer);
            let frame = film::make_frame(high.view(), None, layer, last, perplexity, 0, None)
                .expect("anchor");
            (frame, high)
        })
        .collect();
    let (mut walls, mut cpus, mut hashes) = (vec![], vec![], vec![]);
    println!(
        "\n6. the backward film after the anchors, an epoch's layers at once, {runs} runs (load {})",
        load_average()
    );
    for run in 0..runs {
        let mut reel = film::Reel::default();
        for (e, m) in models.iter().enumerate() {
            reel.keep(e, m);
        }
        reel.settle();
        for (f, high) in &anchors {
            reel.adopt(f, high.view());
        }
        let (t, c) = (Instant::now(), cpu_seconds());
        let mut hash = 0xcbf2_9ce4_8422_2325_u64;
        let mut frames = 0;
        while let Some((epoch, todo)) = reel.next_epoch(&set) {
            for f in reel
                .make_epoch(x, &todo, epoch, perplexity, 0, None)
                .expect("kept")
            {
                let f = f.expect("frame");
                frames += 1;
                for v in &f.coords {
                    for b in v.to_le_bytes() {
                        hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
                    }
                }
            }
        }
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
        println!(
            "   run {run}: {frames} frames, {wall:.2} s wall / {cpu:.2} CPU s (load {}), frames hash {hash:016x}",
            load_average()
        );
        walls.push(wall);
        cpus.push(cpu);
        hashes.push(hash);
    }
    let same = hashes.windows(2).all(|w| w[0] == w[1]);
    println!(
        "   median {:.2} s wall / {:.2} CPU s; every run the same frames: {same}",
        median(walls),
        median(cpus)
    );
}

fn main() {
    println!("film benchmark: {}", cpu());
    println!("load average at start: {}", load_average());
    let split = LoadOptions {
        path: None,
        sample: None,
        test_fraction: 0.5,
        seed: 0,
    }
    .load()
    .expect("on-board digits");
    let max_epochs = arg("--epochs")
        .and_then(|s| s.parse().ok())
        .unwrap_or(nn::DEFAULT_MAX_EPOCHS);
    let n = 1500.min(split.train.n_rows());
    let x = split.train.features.slice(s![..n, ..]).to_owned();
    let perplexity = tsne::DEFAULT_PERPLEXITY;

    // 1. Warm frames against cold runs.
    let (models, train_seconds) = match arg("--models") {
        Some(dir) => cached_models(std::path::Path::new(&dir), &split, max_epochs),
        None => train_run(&split, max_epochs),
    };
    let last_epoch = models.len() - 1;
    println!("\ntrained {last_epoch} epochs in {train_seconds:.2} s (film off, plain loop)");

    // 0. Where a warm frame's time goes (CPU seconds of this process, median of 5).
    if !std::env::args().any(|a| a == "--no-profile") {
        profile(&models, x.view(), perplexity);
    }
    if std::env::args().any(|a| a == "--f16") {
        half_precision(&models, x.view(), perplexity);
    }
    if std::env::args().any(|a| a == "--together") {
        together(&models, x.view(), &split.train.labels[..n], perplexity);
    }
    if let Some(runs) = arg("--film-cpu").and_then(|r| r.parse().ok()) {
        film_cpu(&models, x.view(), perplexity, runs);
    }
    if std::env::args().any(|a| a == "--profile-only") {
        return;
    }
    let backward = std::env::args().any(|a| a == "--backward");
    // Forwards, epoch 0 is the chain's cold start; backwards it is a warm frame like any other
    // (the untrained network's map, chained from epoch 1's), so it can be sampled.
    let first = usize::from(!backward);
    let sample: Vec<usize> = list("--sample", &[1, 2, 5, 10, 20, 30])
        .into_iter()
        .filter(|&e| e >= first && e <= last_epoch)
        .collect();
    let iters = list("--iters", &[film::FRAME_ITERATIONS]);
    println!(
        "\n1. warm frame vs cold run, 1,500 points, perplexity {perplexity}, epochs {sample:?} (median over them)"
    );
    println!(
        "{:>5} {:>6} | {:>8} {:>8} {:>6} | {:>8} {:>8} {:>9} | {:>8}",
        "layer", "iters", "warm s", "cold s", "speed", "KL w/c", "KL max", "move w", "align x"
    );
    println!(
        "       (move: median move between consecutive frames / RMS radius, warm frames aligned by \
         film::align_to; align x: cold runs' move / warm; last column: cold runs aligned too)"
    );
    if backward {
        println!(
            "       backward chain: cold at epoch {last_epoch}, each earlier frame from the one after it"
        );
    }
    let part1 = !std::env::args().any(|a| a == "--worker-only");
    for &iterations in iters.iter().filter(|_| part1) {
        for layer in 2..=models[0].n_layers() {
            let cold_params = film::frame_params(perplexity, 0, false);
            let base = film::frame_params(perplexity, 0, true);
            let warm_params = TsneParams {
                n_iter: iterations,
                n_iter_without_progress: iterations,
                learning_rate: arg("--lr")
                    .and_then(|v| v.parse().ok())
                    .or(base.learning_rate),
                exaggeration_iter: arg("--exag")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(base.exaggeration_iter),
                early_exaggeration: arg("--ee")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(base.early_exaggeration),
                ..base
            };
            // The film of this layer: a cold frame at its anchor (epoch 0, or the last epoch
            // backwards), then warm frames, each from the one before it in the chain.
            let (anchor, order): (usize, Vec<usize>) = if backward {
                (
                    last_epoch,
                    (*sample.first().unwrap_or(&1)..last_epoch).rev().collect(),
                )
            } else {
                (0, (1..=*sample.last().unwrap_or(&1)).collect())
            };
            let high0 = models[anchor].layer_output(x.view(), layer);
            let anchor_run =
                tsne::warm::tsne_warm(high0.view(), None, &cold_params, None).expect("cold");
            let mut prev = anchor_run.embedding.coords;
            let (mut warm_s, mut cold_s, mut kl_ratio, mut warm_move, mut cold_move) =
                (vec![], vec![], vec![], vec![], vec![]);
            let (mut aligned_cold_move, mut by_epoch) = (vec![], vec![]);
            let mut prev_nb = Some(anchor_run.neighbours);
            let mut prev_betas: Option<Vec<f64>> = None;
            let (mut chain_iters, mut chain_s) = (0usize, 0.0f64);
            for epoch in order {
                let pred = if backward { epoch + 1 } else { epoch - 1 };
                let high = models[epoch].layer_output(x.view(), layer);
                let t = Instant::now();
                // `--rescale`: start from the previous layout shrunk to scikit-learn's initial
                // scale (std 1e-4), as Kobak & Linderman (2021) initialise from a given layout.
                let init = if std::env::args().any(|a| a == "--rescale") {
                    let sd = (prev.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>()
                        / prev.len() as f64)
                        .sqrt();
                    prev.mapv(|v| (f64::from(v) * 1e-4 / sd) as f32)
                } else {
                    prev.clone()
                };
                // `--adaptive`: the worker's iteration count by how much the neighbours changed
                // (`film::frame_iterations`); else `--iters`.
                let adaptive = std::env::args().any(|a| a == "--adaptive");
                // `--moved N`: N iterations where at least 30% of the neighbours are new.
                let moved: Option<usize> = arg("--moved").and_then(|v| v.parse().ok());
                // `--tiers Q,F,M`: the quiet, frame and moved tiers' iterations instead.
                let tiers = list("--tiers", &[]);
                let rule = |change: f64| match moved {
                    Some(m) if change >= 0.3 => m,
                    _ if tiers.len() == 3 && film::frame_iterations(change) != 0 => {
                        if change < film::QUIET_CHANGE {
                            tiers[0]
                        } else if change < film::MOVED_CHANGE {
                            tiers[1]
                        } else {
                            tiers[2]
                        }
                    }
                    _ => film::frame_iterations(change),
                };
                // `--tol X`: the convergence stop's tolerance (0: none); `--lr` the learning
                // rate of frames that are not quiet; default the film's (`film::frame_schedule`).
                let tol = arg("--tol").and_then(|v| v.parse::<f64>().ok());
                let lr = arg("--lr").and_then(|v| v.parse::<f64>().ok());
                let n_points = high.nrows();
                let schedule = |change: f64| {
                    let mut s = film::frame_schedule(change, true, n_points);
                    s.iterations = rule(change);
                    if let Some(t) = tol {
                        s.convergence = (t > 0.0).then(|| tsne::warm::Convergence {
                            tolerance: t,
                            ..film::frame_convergence()
                        });
                    }
                    if s.learning_rate.is_some() && lr.is_some() {
                        s.learning_rate = lr;
                    }
                    // `--remade-lr X`: the rate of the remade tier's frames only.
                    if film::Tier::of(change) == film::Tier::Remade
                        && let Some(r) = arg("--remade-lr").and_then(|v| v.parse::<f64>().ok())
                    {
                        s.learning_rate = Some(r);
                    }
                    s
                };
                // The worker's run (`film::frame_run`): the perplexity calibrated from the
                // previous frame's precisions; `--bisect`: the engine's calibration.
                let chain = tsne::warm::Chain {
                    neighbours: prev_nb.as_deref().filter(|_| adaptive),
                    betas: prev_betas.as_deref(),
                };
                let run = if std::env::args().any(|a| a == "--bisect") {
                    tsne::warm::tsne_warm_adaptive(
                        high.view(),
                        Some(init.view()),
                        &warm_params,
                        chain.neighbours,
                        &rule,
                        None,
                    )
                } else if adaptive {
                    tsne::warm::tsne_warm_scheduled(
                        high.view(),
                        Some(init.view()),
                        // `--lr` is the schedule's, for frames that are not quiet.
                        &TsneParams {
                            learning_rate: None,
                            ..warm_params.clone()
                        },
                        chain,
                        &schedule,
                        None,
                    )
                } else {
                    tsne::warm::tsne_warm_chain(
                        high.view(),
                        Some(init.view()),
                        &warm_params,
                        chain,
                        &rule,
                        None,
                    )
                }
                .expect("warm");
                chain_iters += run.embedding.n_iter;
                chain_s += t.elapsed().as_secs_f64();
                let change = prev_nb.as_ref().map_or(f64::NAN, |p| {
                    tsne::warm::neighbour_change(p, &run.neighbours, high.nrows())
                });
                prev_nb = Some(run.neighbours);
                prev_betas = Some(run.betas).filter(|b| !b.is_empty());
                let warm_trust = run.trust.unwrap_or(f64::NAN);
                let warm = run.embedding;
                let w = t.elapsed().as_secs_f64();
                if sample.contains(&epoch) {
                    let t = Instant::now();
                    let cold = tsne::tsne(high.view(), &cold_params, None, None).expect("cold");
                    cold_s.push(t.elapsed().as_secs_f64());
                    warm_s.push(w);
                    kl_ratio.push(warm.kl_divergence / cold.kl_divergence);
                    let cold_trust =
                        tsne::trust(high.view(), cold.coords.view()).unwrap_or(f64::NAN);
                    let aligned = film::align_to(prev.view(), warm.coords.view());
                    let moved = film::median_move(prev.view(), aligned.view());
                    warm_move.push(moved);
                    // Cold films: the chain predecessor's cold run against this one's.
                    let pred_high = models[pred].layer_output(x.view(), layer);
                    let pred_cold = tsne::tsne(pred_high.view(), &cold_params, None, None)
                        .expect("cold")
                        .coords;
                    let cm = film::median_move(pred_cold.view(), cold.coords.view());
                    cold_move.push(cm);
                    let aligned = film::align_to(pred_cold.view(), cold.coords.view());
                    aligned_cold_move.push(film::median_move(pred_cold.view(), aligned.view()));
                    by_epoch.push(format!(
                        "e{epoch}: KL {:.3}/{:.3} ({:+.3}) trust {warm_trust:.3}/{cold_trust:.3} align {:.1}x, kNN new {change:.2}, {} it",
                        warm.kl_divergence,
                        cold.kl_divergence,
                        warm.kl_divergence - cold.kl_divergence,
                        cm / moved,
                        warm.n_iter
                    ));
                }
                prev = film::align_to(prev.view(), warm.coords.view());
            }
            let max_kl = kl_ratio.iter().copied().fold(0.0, f64::max);
            println!(
                "{layer:>5} {iterations:>6} | {:>8.3} {:>8.3} {:>5.1}x | {:>8.3} {:>8.3} {:>9.4} | {:>7.1}x",
                median(warm_s.clone()),
                median(cold_s.clone()),
                median(cold_s) / median(warm_s),
                median(kl_ratio),
                max_kl,
                median(warm_move.clone()),
                median(cold_move.clone()) / median(warm_move.clone()),
            );
            println!(
                "{:>51} cold runs aligned: move {:.4}, {:.1}x the warm frames'",
                "",
                median(aligned_cold_move.clone()),
                median(aligned_cold_move) / median(warm_move)
            );
            println!("        by epoch: {}", by_epoch.join("; "));
            println!(
                "        whole chain: {chain_iters} iterations, {chain_s:.2} s of warm frames (wall)"
            );
        }
    }

    if std::env::args().any(|a| a == "--no-worker") {
        return;
    }

    // 2. The separation figure.
    let labels = &split.train.labels[..n];
    let mut sep = Vec::new();
    let pixels = film::label_share(x.view(), labels, film::SEPARATION_K);
    for _ in 0..5 {
        let t = Instant::now();
        let s = film::separation(
            &models[last_epoch],
            x.view(),
            labels,
            last_epoch,
            Some(pixels),
        );
        sep.push(t.elapsed().as_secs_f64());
        std::hint::black_box(s);
    }
    let last = film::separation(
        &models[last_epoch],
        x.view(),
        labels,
        last_epoch,
        Some(pixels),
    );
    println!(
        "\n2. separation of every layer at epoch {last_epoch}: {:.1} ms (median of 5; pixels cached); shares {:?}",
        median(sep) * 1e3,
        last.shares
            .iter()
            .map(|(l, v)| format!("l{l} {v:.3}"))
            .collect::<Vec<_>>()
    );

    // 3. The worker end to end, film off then on, same process.
    println!(
        "\n3. the worker, default run (train, explain, final maps, film), load average {}",
        load_average()
    );
    let split = Arc::new(split);
    let runs: usize = arg("--runs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let (mut offs, mut ons) = (vec![], vec![]);
    for _ in 0..runs {
        offs.push(worker_run(&split, false, max_epochs));
        ons.push(worker_run(&split, true, max_epochs));
    }
    let med = |v: &[WorkerRun], f: fn(&WorkerRun) -> f64| median(v.iter().map(f).collect());
    let slowdowns: Vec<f64> = offs
        .iter()
        .zip(&ons)
        .map(|(off, on)| on.training / off.training - 1.0)
        .collect();
    println!(
        "{runs} run(s) each way, film off then on; per run: slowdown {:?}, film complete after training {:?} s",
        slowdowns
            .iter()
            .map(|v| format!("{:+.0}%", v * 100.0))
            .collect::<Vec<_>>(),
        ons.iter()
            .map(|r| format!("{:.1}", r.after))
            .collect::<Vec<_>>()
    );
    println!(
        "final maps after training ends (median): film off {:.2} s, film on {:.2} s",
        med(&offs, |r| r.maps),
        med(&ons, |r| r.maps)
    );
    let off = WorkerRun {
        training: med(&offs, |r| r.training),
        after: med(&offs, |r| r.after),
        ..offs.swap_remove(0)
    };
    let on = WorkerRun {
        training: med(&ons, |r| r.training),
        after: med(&ons, |r| r.after),
        ..ons.swap_remove(0)
    };
    let weights: usize = models[0].coefs.iter().map(|c| c.len()).sum::<usize>()
        + models[0].intercepts.iter().map(|b| b.len()).sum::<usize>();
    let per_frame = on.frame_bytes as f64 / on.frames.max(1) as f64;
    let layers = models[0].n_layers() - 1;
    println!(
        "training wall time: film off {:.2} s, film on {:.2} s ({} epochs): slowdown {:+.1}%",
        off.training,
        on.training,
        on.epochs,
        (on.training / off.training - 1.0) * 100.0
    );
    println!(
        "after training ends: film off, last event {:.2} s; film on, film complete {:.2} s ({} frames)",
        off.after, on.after, on.frames
    );
    // The reel of a 200-epoch run: what it keeps, measured (f16, the newest in f32).
    let mut reel = film::Reel::default();
    for e in 0..=200 {
        reel.keep(e, &models[e.min(last_epoch)]);
    }
    let kept = reel.models.len();
    println!(
        "memory: frames {:.1} MB for this run, {:.1} MB for 200 epochs ({} layers); weights kept per epoch {:.2} MB in f16 (f32: {:.1} MB); a 200-epoch run keeps {kept} epochs (film::KEPT_EPOCHS_MAX {}): {:.1} MB of weights, {:.1} MB with its {kept} epochs' frames (every epoch kept in f32: {:.0} MB)",
        on.frame_bytes as f64 / 1e6,
        per_frame * (201 * layers) as f64 / 1e6,
        layers,
        weights as f64 * 2.0 / 1e6,
        weights as f64 * 4.0 / 1e6,
        film::KEPT_EPOCHS_MAX,
        reel.weight_bytes() as f64 / 1e6,
        (reel.weight_bytes() as f64 + per_frame * (kept * layers) as f64) / 1e6,
        weights as f64 * 4.0 * 201.0 / 1e6
    );
    println!("load average at end: {}", load_average());
}
