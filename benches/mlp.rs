//! Training speed of the notebook's MLP (784 -> 512 -> 256 -> 10, scikit-learn's defaults) on
//! the on-board digits, scaled to [0, 1], 50/50 split, seed 0: samples/s per epoch, achieved
//! GFLOP/s, and the machine's f32 GEMM peak measured with the same routine on all threads.
//!
//! `cargo bench --bench mlp [-- --runs N] [--max-epochs N] [--gemm gemm|matrixmultiply|both]
//! [--json PATH] [--dump-split PATH.npz] [--quiet] [--raw] [--dense] [--shapes]`
//!
//! `--shapes` first times each product of one training step (batch 200) on its own: where the
//! time of a step goes; for the sparse first layer also the two group builds and each product
//! over groups built beforehand (training builds them once per step, so the products alone are
//! what the step's kernels cost).
//!
//! `--dense` turns off the first layer's sparse kernels (all products through the GEMM). GFLOP/s
//! count the dense network's arithmetic (2.41 MFLOP per training sample) either way: with the
//! sparse kernels it is an effective rate, the work a dense GEMM would have had to do.
//!
//! `scripts/bench_mlp.py` runs this beside scikit-learn's `MLPClassifier` and prints the ratio.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use layerscope::data;
use layerscope::nn::{
    EpochMetrics, GemmBackend, SPARSE_LANES, TrainParams, Trainer, gemm, set_gemm_backend,
    set_sparse_first_layer, write_npz,
};
use ndarray::Array2;

struct Options {
    runs: usize,
    max_epochs: usize,
    backends: Vec<GemmBackend>,
    json: Option<PathBuf>,
    dump_split: Option<PathBuf>,
    quiet: bool,
    raw: bool,
    dense: bool,
    shapes: bool,
}

fn parse_options() -> Options {
    let mut o = Options {
        runs: 3,
        max_epochs: 200,
        backends: vec![GemmBackend::Gemm],
        json: None,
        dump_split: None,
        quiet: false,
        raw: false,
        dense: false,
        shapes: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--runs" => o.runs = value().parse().expect("--runs N"),
            "--max-epochs" => o.max_epochs = value().parse().expect("--max-epochs N"),
            "--gemm" => {
                o.backends = match value().as_str() {
                    "gemm" => vec![GemmBackend::Gemm],
                    "matrixmultiply" => vec![GemmBackend::MatrixMultiply],
                    "both" => vec![GemmBackend::Gemm, GemmBackend::MatrixMultiply],
                    other => panic!("--gemm {other}: expected gemm, matrixmultiply or both"),
                }
            }
            "--json" => o.json = Some(value().into()),
            "--dump-split" => o.dump_split = Some(value().into()),
            "--quiet" => o.quiet = true,
            "--raw" => o.raw = true,
            "--dense" => o.dense = true,
            "--shapes" => o.shapes = true,
            _ => {} // cargo bench passes --bench
        }
    }
    o
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

/// Best GFLOP/s of `repeats` square f32 products `size^3` through the engine's routine (the
/// fastest run is the nearest to what the hardware can do on a shared machine).
fn gemm_peak(size: usize, repeats: usize) -> f64 {
    let a = Array2::from_shape_fn((size, size), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.1);
    let b = Array2::from_shape_fn((size, size), |(i, j)| ((i * 5 + j) % 13) as f32 * 0.1);
    let mut c = Array2::<f32>::zeros((size, size));
    gemm(1.0, a.view(), b.view(), 0.0, c.view_mut()); // warm-up
    let rates: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            gemm(1.0, a.view(), b.view(), 0.0, c.view_mut());
            2.0 * (size as f64).powi(3) / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    std::hint::black_box(&c);
    rates.iter().copied().fold(0.0, f64::max)
}

/// Floating-point operations of one training sample: per layer the forward product, the
/// weight gradient and (above the first layer) the delta sent down, 2 * in * out each.
fn flops_per_sample(sizes: &[usize]) -> f64 {
    sizes
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let products = if i == 0 { 2.0 } else { 3.0 };
            products * 2.0 * (w[0] * w[1]) as f64
        })
        .sum()
}

/// Floating-point operations of one training sample that the sparse first layer actually
/// does on `x` (the training rows in their order, batches of `batch` rows, `labels` theirs):
/// its forward product runs over the inputs non-zero in either row of a pair (the rows of a
/// class paired as training pairs them: `nn::sparse_forward_term_ratio`), its weight gradient
/// over the rows where any of `SPARSE_LANES` adjacent inputs is non-zero (`nn::sparse`'s
/// groups); the other layers as `flops_per_sample`.
fn effective_flops_per_sample(
    sizes: &[usize],
    x: &Array2<f32>,
    labels: &[u8],
    batch: usize,
) -> f64 {
    let (rows, k) = x.dim();
    let mut gradient_terms = 0usize;
    let nz = |r: usize, c: usize| x[(r, c)] != 0.0;
    for lo in (0..rows).step_by(batch) {
        let hi = (lo + batch).min(rows);
        for c0 in (0..k).step_by(SPARSE_LANES) {
            gradient_terms += (lo..hi)
                .filter(|&r| (c0..(c0 + SPARSE_LANES).min(k)).any(|c| nz(r, c)))
                .count();
        }
    }
    let nonzero = x.iter().filter(|&&v| v != 0.0).count() as f64;
    let natural = layerscope::nn::sparse_forward_term_ratio(x.view(), None, batch);
    let paired = layerscope::nn::sparse_forward_term_ratio(x.view(), Some(labels), batch);
    eprintln!(
        "forward product's terms over the non-zero inputs: {natural:.3}x rows in order, \
         {paired:.3}x paired by class (used)"
    );
    // Each gradient term is SPARSE_LANES lanes; every term (units of the first hidden layer)
    // multiply-adds.
    let lanes = SPARSE_LANES as f64;
    let first =
        2.0 * sizes[1] as f64 * (paired * nonzero + lanes * gradient_terms as f64) / rows as f64;
    let dense_first = 2.0 * 2.0 * (sizes[0] * sizes[1]) as f64;
    flops_per_sample(sizes) - dense_first + first
}

/// CPU time of every thread of this process so far, in nanoseconds (Linux's per-thread
/// `schedstat`; 0 elsewhere).
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Milliseconds of `f` over 30 calls, after a warm-up call: the fastest wall-clock call, and
/// the mean CPU time of all threads per call. On a shared, loaded machine the CPU time is the
/// steadier measure of a kernel's work: it does not count waiting for a core.
fn time_ms(mut f: impl FnMut()) -> (f64, f64) {
    f();
    let cpu = cpu_ns();
    let fastest = (0..30)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min);
    (fastest, (cpu_ns() - cpu) as f64 / 30.0 / 1e6)
}

/// Each product of a training step at batch 200 through 784 -> 512 -> 256 -> 10, timed alone.
fn time_step_products(features: &Array2<f32>, labels: &[u8]) {
    use ndarray::s;
    let x = features.slice(s![..200, ..]).to_owned();
    let labels = &labels[..200];
    let fill = |r: usize, c: usize| {
        Array2::from_shape_fn((r, c), |(i, j)| ((i * 7 + j * 3) % 13) as f32 * 0.01 - 0.06)
    };
    let (w1, w2, w3) = (fill(784, 512), fill(512, 256), fill(256, 10));
    let (a1, a2, d1, d2, d3) = (
        fill(200, 512),
        fill(200, 256),
        fill(200, 512),
        fill(200, 256),
        fill(200, 10),
    );
    let bias = vec![0.0f32; 512];
    let out = |name: &str, m: usize, n: usize, k: usize, (ms, cpu): (f64, f64)| {
        let gflops = 2.0 * (m * n * k) as f64 / ms / 1e6;
        let per_cpu = 2.0 * (m * n * k) as f64 / cpu / 1e6;
        eprintln!(
            "  {name:40} {ms:7.3} ms {gflops:6.1} GFLOP/s | {cpu:7.3} CPU-ms {per_cpu:6.1} GFLOP/CPU-s"
        );
    };
    eprintln!(
        "one training step, products timed alone (fastest of 30 wall-clock | mean CPU time of all threads), dense-equivalent GFLOP:"
    );
    let mut c = Array2::<f32>::zeros((200, 512));
    out(
        "forward 1: x(200x784) @ W1 GEMM",
        200,
        512,
        784,
        time_ms(|| gemm(1.0, x.view(), w1.view(), 1.0, c.view_mut())),
    );
    out(
        "forward 1: x(200x784) @ W1 sparse x",
        200,
        512,
        784,
        time_ms(|| layerscope::nn::sparse_forward(x.view(), w1.view(), &bias, c.view_mut())),
    );
    out(
        "forward 1: sparse x, rows paired by class",
        200,
        512,
        784,
        time_ms(|| {
            layerscope::nn::sparse_forward_paired(x.view(), labels, w1.view(), &bias, c.view_mut())
        }),
    );
    let mut c = Array2::<f32>::zeros((200, 256));
    out(
        "forward 2: a1(200x512) @ W2",
        200,
        256,
        512,
        time_ms(|| gemm(1.0, a1.view(), w2.view(), 1.0, c.view_mut())),
    );
    let mut c = Array2::<f32>::zeros((200, 10));
    out(
        "forward 3: a2(200x256) @ W3",
        200,
        10,
        256,
        time_ms(|| gemm(1.0, a2.view(), w3.view(), 1.0, c.view_mut())),
    );
    let mut g = Array2::<f32>::zeros((256, 10));
    out(
        "grad 3: a2^T @ d3",
        256,
        10,
        200,
        time_ms(|| gemm(0.005, a2.t(), d3.view(), 1.0, g.view_mut())),
    );
    let mut c = Array2::<f32>::zeros((200, 256));
    out(
        "delta 2: d3 @ W3^T",
        200,
        256,
        10,
        time_ms(|| gemm(1.0, d3.view(), w3.t(), 0.0, c.view_mut())),
    );
    let mut g = Array2::<f32>::zeros((512, 256));
    out(
        "grad 2: a1^T @ d2",
        512,
        256,
        200,
        time_ms(|| gemm(0.005, a1.t(), d2.view(), 1.0, g.view_mut())),
    );
    let mut c = Array2::<f32>::zeros((200, 512));
    out(
        "delta 1: d2 @ W2^T",
        200,
        512,
        256,
        time_ms(|| gemm(1.0, d2.view(), w2.t(), 0.0, c.view_mut())),
    );
    let mut g = Array2::<f32>::zeros((784, 512));
    out(
        "grad 1: x^T @ d1 GEMM",
        784,
        512,
        200,
        time_ms(|| gemm(0.005, x.t(), d1.view(), 1.0, g.view_mut())),
    );
    out(
        "grad 1: x^T @ d1 sparse x",
        784,
        512,
        200,
        time_ms(|| {
            layerscope::nn::sparse_weight_gradient(
                x.view(),
                d1.view(),
                0.005,
                w1.view(),
                0.0,
                g.view_mut(),
            )
        }),
    );
    let mut builds = layerscope::nn::SparseGroupBuilds::new(x.view(), labels);
    let (ms, cpu) = time_ms(|| {
        builds.rows();
    });
    eprintln!(
        "  build: row groups, paired ({:6} terms)     {ms:7.3} ms | {cpu:7.3} CPU-ms",
        builds.rows()
    );
    let (ms, cpu) = time_ms(|| {
        builds.columns();
    });
    eprintln!(
        "  build: column groups    ({:6} terms)     {ms:7.3} ms | {cpu:7.3} CPU-ms",
        builds.columns()
    );
    builds.rows();
    let mut c = Array2::<f32>::zeros((200, 512));
    out(
        "forward 1: the paired groups' product alone",
        200,
        512,
        784,
        time_ms(|| builds.product(w1.view(), &bias, c.view_mut())),
    );
    builds.columns();
    let mut g = Array2::<f32>::zeros((784, 512));
    out(
        "grad 1: the column groups' product alone",
        784,
        512,
        200,
        time_ms(|| builds.product(d1.view(), &bias, g.view_mut())),
    );
    let nz = x.iter().filter(|&&v| v != 0.0).count();
    eprintln!(
        "  non-zero inputs in this batch: {:.1}%",
        100.0 * nz as f64 / x.len() as f64
    );
}

struct RunResult {
    epochs: usize,
    train_seconds: f64,
    median_samples_per_sec: f64,
    test_accuracy: f64,
    final_loss: f64,
    history: Vec<EpochMetrics>,
}

fn main() {
    let o = parse_options();
    let threads = rayon::current_num_threads();
    set_sparse_first_layer(!o.dense);
    let load = Instant::now();
    let full = data::load_onboard().expect("the on-board digits");
    // --raw: the notebook's raw 0-255 pixels, to show what skipping the scaling costs.
    let full = if o.raw { full } else { full.into_unit_scale() };
    let split = full.split(0.5, 0).expect("a 50/50 split");
    eprintln!(
        "on-board digits: {} train / {} test rows, {} features, loaded in {:.1} s; {threads} threads",
        split.train.n_rows(),
        split.test.n_rows(),
        full.n_features(),
        load.elapsed().as_secs_f64()
    );
    if let Some(path) = &o.dump_split {
        let labels = |d: &data::Dataset| {
            ndarray::Array1::from_iter(d.labels.iter().map(|&l| f32::from(l))).into_dyn()
        };
        let (ytr, yte) = (labels(&split.train), labels(&split.test));
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(path).expect("create the split file"));
        write_npz(
            &mut file,
            &[
                ("X_train", split.train.features.view().into_dyn()),
                ("y_train", ytr.view()),
                ("X_test", split.test.features.view().into_dyn()),
                ("y_test", yte.view()),
            ],
        )
        .expect("write the split");
        eprintln!("split written to {}", path.display());
    }

    if o.shapes {
        time_step_products(&split.train.features, &split.train.labels);
    }
    let params = TrainParams {
        max_epochs: o.max_epochs,
        ..TrainParams::default()
    };
    let mut sizes = vec![full.n_features()];
    sizes.extend(&params.hidden);
    sizes.push(full.n_classes());
    let flops = flops_per_sample(&sizes);
    let effective = if o.dense {
        flops
    } else {
        effective_flops_per_sample(
            &sizes,
            &split.train.features,
            &split.train.labels,
            params.batch_size,
        )
    };
    eprintln!(
        "{:.2} MFLOP per training sample dense, {:.2} MFLOP done by the sparse first layer",
        flops / 1e6,
        effective / 1e6
    );
    let mut json = String::from("{\"results\": [");
    for (bi, &backend) in o.backends.iter().enumerate() {
        set_gemm_backend(backend);
        let peak = gemm_peak(2048, 7);
        eprintln!(
            "{backend:?}: f32 GEMM peak (2048^3, best of 7, {threads} threads) {peak:.1} GFLOP/s"
        );
        let mut results = Vec::new();
        for run in 0..o.runs {
            let mut trainer = Trainer::new(full.n_features(), full.n_classes(), params.clone());
            let quiet = o.quiet || run > 0;
            let mut on_epoch = |m: &EpochMetrics| {
                if !quiet {
                    eprintln!(
                        "  epoch {:3}  loss {:.5}  train acc {:.4}  test acc {:.4}  {:.3} s  {:7.0} samples/s  {:5.1} GFLOP/s",
                        m.epoch,
                        m.train_loss,
                        m.train_accuracy,
                        m.test_accuracy.unwrap_or(f64::NAN),
                        m.seconds,
                        m.samples_per_sec,
                        m.samples_per_sec * flops / 1e9
                    );
                }
            };
            let reason = trainer.run(&split.train, Some(&split.test), &mut on_epoch, None);
            let h = trainer.history().to_vec();
            let mut rates: Vec<f64> = h.iter().map(|m| m.samples_per_sec).collect();
            let last = h.last().expect("at least one epoch");
            let r = RunResult {
                epochs: h.len(),
                train_seconds: h.iter().map(|m| m.seconds).sum(),
                median_samples_per_sec: median(&mut rates),
                test_accuracy: last.test_accuracy.unwrap_or(f64::NAN),
                final_loss: last.train_loss,
                history: h.clone(),
            };
            eprintln!(
                "{backend:?} run {}: {reason:?} after {} epochs, {:.2} s training ({:.4} s/epoch), median {:.0} samples/s = {:.1} GFLOP/s, test accuracy {:.4}, loss {:.5}",
                run + 1,
                r.epochs,
                r.train_seconds,
                r.train_seconds / r.epochs as f64,
                r.median_samples_per_sec,
                r.median_samples_per_sec * flops / 1e9,
                r.test_accuracy,
                r.final_loss
            );
            results.push(r);
        }
        let med = |f: &dyn Fn(&RunResult) -> f64| {
            let mut v: Vec<f64> = results.iter().map(f).collect();
            median(&mut v)
        };
        let sps = med(&|r| r.median_samples_per_sec);
        let s_per_epoch = med(&|r| r.train_seconds / r.epochs as f64);
        let epochs = med(&|r| r.epochs as f64);
        let acc = med(&|r| r.test_accuracy);
        println!(
            "layerscope [{backend:?}{}, {threads} threads]: {s_per_epoch:.4} s/epoch, {sps:.0} samples/s, {:.1} GFLOP/s of a {peak:.1} GFLOP/s GEMM peak ({:.0}%), {epochs} epochs, test accuracy {acc:.4} (medians of {} runs)",
            if o.dense {
                ", dense"
            } else {
                ", sparse first layer"
            },
            sps * flops / 1e9,
            100.0 * sps * flops / 1e9 / peak,
            o.runs
        );
        if bi > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"backend\": \"{backend:?}\", \"threads\": {threads}, \"gemm_peak_gflops\": {peak:.3}, \"flops_per_sample\": {flops}, \"effective_flops_per_sample\": {effective}, \"runs\": ["
        );
        for (i, r) in results.iter().enumerate() {
            let per_epoch: Vec<String> = r
                .history
                .iter()
                .map(|m| format!("{:.1}", m.samples_per_sec))
                .collect();
            let _ = write!(
                json,
                "{}{{\"epochs\": {}, \"train_seconds\": {:.4}, \"median_samples_per_sec\": {:.1}, \"test_accuracy\": {:.6}, \"final_loss\": {:.6}, \"samples_per_sec\": [{}]}}",
                if i > 0 { "," } else { "" },
                r.epochs,
                r.train_seconds,
                r.median_samples_per_sec,
                r.test_accuracy,
                r.final_loss,
                per_epoch.join(", ")
            );
        }
        json.push_str("]}");
    }
    json.push_str("]}\n");
    if let Some(path) = &o.json {
        std::fs::write(path, json).expect("write the JSON results");
    }
}
