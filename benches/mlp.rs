//! Training speed of the notebook's MLP (784 -> 512 -> 256 -> 10, scikit-learn's defaults) on
//! the on-board digits, scaled to [0, 1], 50/50 split, seed 0: samples/s per epoch, achieved
//! GFLOP/s, and the machine's f32 GEMM peak measured with the same routine on all threads.
//!
//! `cargo bench --bench mlp [-- --runs N] [--max-epochs N] [--gemm gemm|matrixmultiply|both]
//! [--json PATH] [--dump-split PATH.npz] [--quiet]`
//!
//! `scripts/bench_mlp.py` runs this beside scikit-learn's `MLPClassifier` and prints the ratio.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use layerscope::data;
use layerscope::nn::{
    EpochMetrics, GemmBackend, TrainParams, Trainer, gemm, set_gemm_backend, write_npz,
};
use ndarray::Array2;

struct Options {
    runs: usize,
    max_epochs: usize,
    backends: Vec<GemmBackend>,
    json: Option<PathBuf>,
    dump_split: Option<PathBuf>,
    quiet: bool,
}

fn parse_options() -> Options {
    let mut o = Options {
        runs: 3,
        max_epochs: 200,
        backends: vec![GemmBackend::Gemm],
        json: None,
        dump_split: None,
        quiet: false,
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

/// Median GFLOP/s of a square f32 product `size^3` through the engine's routine.
fn gemm_peak(size: usize, repeats: usize) -> f64 {
    let a = Array2::from_shape_fn((size, size), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.1);
    let b = Array2::from_shape_fn((size, size), |(i, j)| ((i * 5 + j) % 13) as f32 * 0.1);
    let mut c = Array2::<f32>::zeros((size, size));
    gemm(1.0, a.view(), b.view(), 0.0, c.view_mut()); // warm-up
    let mut rates: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            gemm(1.0, a.view(), b.view(), 0.0, c.view_mut());
            2.0 * (size as f64).powi(3) / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    std::hint::black_box(&c);
    median(&mut rates)
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
    let load = Instant::now();
    let full = data::load_onboard()
        .expect("the on-board digits")
        .into_unit_scale();
    let split = full.split(0.5, 0).expect("a 50/50 split");
    eprintln!(
        "on-board digits: {} train / {} test rows, {} features, loaded in {:.1} s; {threads} threads",
        split.train.n_rows(),
        split.test.n_rows(),
        full.n_features(),
        load.elapsed().as_secs_f64()
    );
    if let Some(path) = &o.dump_split {
        let labels = |d: &data::Dataset| d.labels.iter().map(|&l| f32::from(l)).collect::<Vec<_>>();
        let (ytr, yte) = (labels(&split.train), labels(&split.test));
        let shape = |d: &data::Dataset| [d.n_rows(), d.n_features()];
        let (str_, ste) = (shape(&split.train), shape(&split.test));
        write_npz(
            path,
            &[
                ("X_train", &str_, split.train.features.as_slice().unwrap()),
                ("y_train", &[ytr.len()], &ytr),
                ("X_test", &ste, split.test.features.as_slice().unwrap()),
                ("y_test", &[yte.len()], &yte),
            ],
        )
        .expect("write the split");
        eprintln!("split written to {}", path.display());
    }

    let params = TrainParams {
        max_epochs: o.max_epochs,
        ..TrainParams::default()
    };
    let mut sizes = vec![full.n_features()];
    sizes.extend(&params.hidden);
    sizes.push(full.n_classes());
    let flops = flops_per_sample(&sizes);
    let mut json = String::from("{\"results\": [");
    for (bi, &backend) in o.backends.iter().enumerate() {
        set_gemm_backend(backend);
        let peak = gemm_peak(2048, 5);
        eprintln!("{backend:?}: f32 GEMM peak (2048^3, {threads} threads) {peak:.1} GFLOP/s");
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
                        m.test_accuracy,
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
                test_accuracy: last.test_accuracy,
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
            "layerscope [{backend:?}, {threads} threads]: {s_per_epoch:.4} s/epoch, {sps:.0} samples/s, {:.1} GFLOP/s of a {peak:.1} GFLOP/s GEMM peak ({:.0}%), {epochs} epochs, test accuracy {acc:.4} (medians of {} runs)",
            sps * flops / 1e9,
            100.0 * sps * flops / 1e9 / peak,
            o.runs
        );
        if bi > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"backend\": \"{backend:?}\", \"threads\": {threads}, \"gemm_peak_gflops\": {peak:.3}, \"flops_per_sample\": {flops}, \"runs\": ["
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
