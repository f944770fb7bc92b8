//! t-SNE benchmark (`cargo bench --bench tsne`).
//!
//! Without arguments it makes its own inputs (Gaussian clusters shaped like the default
//! network's layers and like raw pixels) and prints, per case, the median of several runs:
//! seconds per run, ms per iteration, KL, 10-NN preservation and 10-NN accuracy; then the
//! exact-vs-Barnes-Hut crossover table behind `Method::Auto` (`--no-crossover` skips it).
//!
//! `cargo bench --bench tsne -- --input X.npy --out Y.npy [--runs 3] [--method auto|exact|bh|fft|pairs]
//! [--neighbours auto|exact|approximate] [--perplexity 3] [--seed 0] [--theta 0.5] [--warm N]`
//! (`--knn K [--knn-out F]`: the exact neighbour search alone)
//! embeds a float32 `.npy` matrix instead (what
//! `scripts/bench_tsne.py` drives) and prints one JSON line with the timings and the KL.
//!
//! Measured 2026-11-27 with `python3 scripts/bench_tsne.py --runs 3` on the 2-core machine
//! (load average 1-5 from other engineers' jobs during the run; median of 3 runs each):
//!
//! | input | tool | wall s | vs layerscope | KL | 10-NN preservation | 10-NN accuracy |
//! |---|---|---|---|---|---|---|
//! | layer 2, 1,500 x 512 | layerscope | 0.279 | 1x | 0.964 | 0.473 | 0.963 |
//! | | scikit-learn | 3.734 | 13.4x | 0.986 | 0.476 | 0.961 |
//! | | openTSNE | 2.898 | 10.4x | 1.031 | 0.472 | 0.958 |
//! | layer 3, 1,500 x 256 | layerscope | 0.286 | 1x | 0.902 | 0.503 | 0.985 |
//! | | scikit-learn | 4.159 | 14.6x | 0.922 | 0.501 | 0.987 |
//! | | openTSNE | 2.224 | 7.8x | 0.973 | 0.501 | 0.985 |
//! | output, 1,500 x 10 | layerscope | 0.272 | 1x | 0.506 | 0.548 | 1.000 |
//! | | scikit-learn | 3.082 | 11.3x | 0.526 | 0.545 | 0.999 |
//! | | openTSNE | 2.463 | 9.1x | 0.569 | 0.551 | 0.997 |
//! | pixels, 10,000 x 784 | layerscope | 2.229 | 1x | 1.915 | 0.385 | 0.939 |
//! | | scikit-learn | 40.68 | 18.3x | 1.922 | 0.385 | 0.941 |
//! | | openTSNE | 96.71 | 43.4x | 2.094 | 0.386 | 0.936 |
//!
//! Measured 2026-12-01 on the same kind of machine (AMD EPYC, Zen 3, 2 cores, AVX2 + FMA, no
//! AVX-512), heavily loaded by other jobs (load average 7-13), so CPU seconds are the steadier
//! figure; perplexity 30 is the default now:
//!
//! | input | perplexity | layerscope wall / CPU s | scikit-learn wall / CPU s (same run) |
//! |---|---|---|---|
//! | layer 2, 1,500 x 512 | 3 | 0.49 / 0.39 (median of 5) | 176.4 / 39.6 (bench_tsne.py, 1 run) |
//! | layer 2, 1,500 x 512 | 30 | 1.20 / 0.66 (1 run) | 138.4 / 38.7 (1 run): 115x wall, 59x CPU |
//! | layer 3, 1,500 x 256 | 3 / 30 | 1.01 / 0.52, 1.75 / 0.94 (median of 5) | |
//! | output, 1,500 x 10 | 3 / 30 | 0.66 / 0.33, 1.23 / 0.60 (median of 5) | |
//! | pixels, 10,000 x 784 | 30 | exact neighbours: 10.7 CPU s, 10-NN preservation 0.4378; approximate: 12.9 CPU s, 0.4337 | |
//! | 70,000 x 784 (the 10,000 x 7, noisy copies) | 30 | 83.3 CPU s (430 s wall at load 12); 145.5 CPU s before the locality numbering | |
//!
//! Measured 2026-12-01 afternoon, same machine (AVX2 + FMA, no AVX-512), `bench_tsne.py`:
//! 70,000 x 784 at perplexity 30 (`--cases pixels70k --perplexities 30 --runs 1 --skip
//! sklearn`, load 9-10): layerscope 249.6 s wall / 84.0 CPU s, KL 1.425; openTSNE (2 jobs) in
//! the same run 768.7 s wall / 529.9 CPU s, KL 1.638: 3.1x wall, 6.3x CPU. 10,000 pixels at
//! perplexity 30 (`--variants bh:exact,bh:approximate`, load 5.8): 10-NN preservation 0.438
//! with exact neighbours, 0.434 with approximate ones. Layers at 1,500 points (`--cases
//! layer2,layer3,layer4 --runs 3 --skip openTSNE`, load 3.4-5.8): perplexity 3 in 0.70 / 0.51
//! / 0.21 s wall (scikit-learn 57x / 51x / 96x), perplexity 30 in 0.85 / 0.56 / 0.43 s
//! (scikit-learn 35x / 41x / 17x), KL and 10-NN preservation equal to or better than
//! scikit-learn's in every case.
//!
//! Measured 2026-12-01 evening (same machine, AVX2 + FMA, no AVX-512, load 5.5-6 from three
//! other engineers' builds, so profiles rather than timings): a `perf record` of layer 2 at
//! perplexity 30 put the KL checks at ~14% (a division and a libm `ln` per P entry, 21 times a
//! run) and the f64 re-ranking of the k-NN shortlists at ~13% (one serial accumulator over 512
//! dimensions); the KL now takes 2.5% and the re-ranking 7.5%, with byte-identical layouts and
//! KL on layers 2, 3 and 4 at perplexity 3 and 30. At perplexity 3 (layer 3) the Barnes-Hut
//! traversal is 46% (`apply` 30%, interaction lists 16%), the attraction 10%, the tree build
//! and Morton sort 13% (the sort is a radix sort now). The FFT repulsion on 10,000 pixels
//! (perplexity 30, 1 run each): 40.7 CPU-s against Barnes-Hut's 11.4; rustfft's butterflies are
//! about a third of it and the grid passes (spreading, transposes, zeroing) most of the rest.
//!
//! An earlier run under heavy load (load average 7-10) gave layerscope 0.45-0.94 s at 1,500
//! points and 3.65 s at 10,000, against 33-68 s and 208 s for scikit-learn (OpenMP suffers most
//! from oversubscription); quality figures were identical.
//!
//! The exact neighbour search alone (`-- --input target/bench_tsne/layerN.npy --knn 90 --runs 9`,
//! the k of a frame at perplexity 30), 2026-12-01 night, same machine (AVX2 + FMA, no AVX-512),
//! load 3.3-3.8, old and new binaries alternating, two rounds, wall / CPU s: layer 2 (1,500 x
//! 512) 0.218-0.145 / 0.21-0.15 -> 0.136-0.084 / 0.12-0.08; layer 3 (x 256) 0.122 / 0.12 ->
//! 0.053-0.059 / 0.05-0.07; output (x 10) 0.060-0.070 / 0.06-0.07 -> 0.019-0.021 / 0.02. Same
//! hash of the indices and distances, and `cmp`-identical layouts at perplexity 30 (`--out`), on
//! all three. A `perf` profile of the old layer-2 search: the sorted-insertion shortlists 39%,
//! the f64 re-ranking 29% (128-bit shuffles), the GEMM 16%; of the new one: the GEMM 35%, the
//! re-ranking (four rows per pass) 20%, the threshold scans 19%, the selections 6%.
//!
//! Crossover (`cargo bench --bench tsne`, same day, s/run median of 3, synthetic 64-d input):
//! exact vs Barnes-Hut repulsion 0.070 / 0.029 s at n = 100, 0.107 / 0.087 at 300,
//! 0.241 / 0.131 at 1,000, 0.649 / 0.292 at 2,000, 2.888 / 0.689 at 4,000: Barnes-Hut wins
//! everywhere, so `Method::Auto` uses it at every size.

use std::io::{Read, Write};
use std::time::Instant;

use layerscope::tsne::{
    self, Embedding, ForcedRepulsion, Method, Neighbours, TsneParams, knn_accuracy,
    neighbour_preservation,
};
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// CPU seconds used by this process so far, all threads (Linux; `None` elsewhere). Under a
/// loaded machine this is steadier than wall time.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every mainstream Linux configuration.
    Some(ticks / 100.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `n` points in `dim` dimensions around 10 centres, ReLU'd like hidden activations when
/// `relu`; returns the data and the cluster labels.
fn clusters(n: usize, dim: usize, spread: f32, relu: bool, seed: u64) -> (Array2<f32>, Vec<u8>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let centres = Array2::from_shape_simple_fn((10, dim), || {
        let v: f32 = StandardNormal.sample(&mut rng);
        v
    });
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    let mut x = Array2::<f32>::zeros((n, dim));
    for (i, mut row) in x.rows_mut().into_iter().enumerate() {
        // Each point also drifts along a few private directions, so clusters have inner shape.
        for (j, v) in row.iter_mut().enumerate() {
            let noise: f32 = StandardNormal.sample(&mut rng);
            let val = centres[[labels[i] as usize, j]] + spread * noise;
            *v = if relu { val.max(0.0) } else { val };
        }
    }
    (x, labels)
}

struct Figures {
    seconds: f64,
    iters: usize,
    kl: f64,
}

fn time_runs(runs: usize, mut f: impl FnMut() -> Embedding) -> (Figures, Embedding) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let e = f();
        times.push(t.elapsed().as_secs_f64());
        last = Some(e);
    }
    let e = last.expect("at least one run");
    (
        Figures {
            seconds: median(times),
            iters: e.n_iter,
            kl: e.kl_divergence,
        },
        e,
    )
}

fn suite(runs: usize) {
    let cases: [(&str, usize, usize, f32, bool); 4] = [
        ("clusters 512-d relu (layer 2)", 1500, 512, 0.6, true),
        ("clusters 256-d relu (layer 3)", 1500, 256, 0.6, true),
        ("clusters 10-d (output)", 1500, 10, 0.3, false),
        ("clusters 784-d (raw pixels)", 10_000, 784, 0.8, true),
    ];
    for perplexity in [3.0, 30.0] {
        println!(
            "layerscope t-SNE, perplexity {perplexity}, 1,000 iterations, median of {runs} runs"
        );
        println!(
            "{:<34} {:>7} {:>9} {:>8} {:>7} {:>7} {:>7}",
            "case", "n", "s/run", "ms/iter", "KL", "10-NN", "acc"
        );
        let params = TsneParams {
            perplexity,
            ..TsneParams::default()
        };
        for (name, n, dim, spread, relu) in cases {
            let (x, labels) = clusters(n, dim, spread, relu, 1);
            let (fig, e) = time_runs(runs, || {
                tsne::tsne(x.view(), &params, None, None).expect("run")
            });
            report(name, x.view(), &labels, &fig, &e);
        }
        println!();
    }
}

fn report(name: &str, x: ArrayView2<f32>, labels: &[u8], fig: &Figures, e: &Embedding) {
    println!(
        "{:<34} {:>7} {:>9.3} {:>8.3} {:>7.3} {:>7.3} {:>7.3}",
        name,
        x.nrows(),
        fig.seconds,
        1e3 * fig.seconds / fig.iters as f64,
        fig.kl,
        neighbour_preservation(x, e.coords.view(), 10),
        knn_accuracy(e.coords.view(), labels, 10),
    );
}

fn crossover(runs: usize) {
    println!();
    println!(
        "crossover: nearest-neighbour P, exact vs Barnes-Hut repulsion (s/run, median of {runs})"
    );
    println!(
        "{:>7} {:>9} {:>9} {:>9} {:>9}",
        "n", "exact", "BH", "KL exact", "KL BH"
    );
    let params = TsneParams {
        perplexity: 3.0,
        ..TsneParams::default()
    };
    for n in [100, 300, 1000, 2000, 4000] {
        let (x, _) = clusters(n, 64, 0.6, true, 2);
        let (fe, _) = time_runs(runs, || {
            tsne::tsne_forced(x.view(), &params, ForcedRepulsion::Exact).expect("run")
        });
        let (fb, _) = time_runs(runs, || {
            tsne::tsne_forced(x.view(), &params, ForcedRepulsion::BarnesHut).expect("run")
        });
        println!(
            "{:>7} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            n, fe.seconds, fb.seconds, fe.kl, fb.kl
        );
    }
}

fn read_npy(path: &str) -> Array2<f32> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .unwrap_or_else(|e| panic!("reading {path}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{path} is not a .npy file");
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).expect("ascii header");
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"),
        "{path}: need a C-order float32 matrix, got {header}"
    );
    let shape = &header[header.find("'shape': (").expect("shape") + 10..];
    let shape: Vec<usize> = shape[..shape.find(')').expect("shape end")]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("dimension"))
        .collect();
    assert_eq!(shape.len(), 2, "{path}: need a 2-D array");
    let data: Vec<f32> = bytes[start + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Array2::from_shape_vec((shape[0], shape[1]), data).expect("size matches shape")
}

fn write_npy(path: &str, a: ArrayView2<f32>) {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        a.nrows(),
        a.ncols()
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::new();
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in a.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(&out))
        .unwrap_or_else(|e| panic!("writing {path}: {e}"));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs: usize = value("--runs").map_or(3, |v| v.parse().expect("--runs N"));
    if let Some(input) = value("--input") {
        let x = read_npy(&input);
        // `--knn K`: time the exact neighbour search alone (`tsne::exact_knn`), print its median
        // wall and CPU seconds and an FNV-1a hash of the indices and distances; `--knn-out F`
        // writes them raw (indices as u32 then distances as f32, little-endian) for `cmp`.
        if let Some(k) = value("--knn") {
            let k: usize = k.parse().expect("--knn K");
            let (mut times, mut cpu, mut last) = (Vec::new(), Vec::new(), None);
            for _ in 0..runs {
                let (t, c) = (Instant::now(), cpu_seconds());
                let got = tsne::exact_knn(x.view(), k);
                times.push(t.elapsed().as_secs_f64());
                if let (Some(c0), Some(c1)) = (c, cpu_seconds()) {
                    cpu.push(c1 - c0);
                }
                last = Some(got);
            }
            let (indices, d2) = last.expect("runs >= 1");
            let mut bytes: Vec<u8> = indices.iter().flat_map(|v| v.to_le_bytes()).collect();
            bytes.extend(d2.iter().flat_map(|v| v.to_le_bytes()));
            let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            if let Some(out) = value("--knn-out") {
                std::fs::write(&out, &bytes).unwrap_or_else(|e| panic!("writing {out}: {e}"));
            }
            println!(
                "{{\"n\": {}, \"dim\": {}, \"k\": {k}, \"median\": {:.4}, \"cpu_median\": {:.4}, \"hash\": \"{hash:016x}\"}}",
                x.nrows(),
                x.ncols(),
                median(times),
                if cpu.is_empty() {
                    f64::NAN
                } else {
                    median(cpu)
                },
            );
            return;
        }
        // `pairs`: nearest-neighbour P with the exact all-pairs repulsion (`tsne_forced`).
        let forced = match value("--method").as_deref() {
            Some("pairs") => Some(ForcedRepulsion::Exact),
            _ => None,
        };
        let method = match value("--method").as_deref() {
            None | Some("auto") | Some("pairs") => Method::Auto,
            Some("exact") => Method::Exact,
            Some("bh") => Method::BarnesHut,
            Some("fft") => Method::Fft,
            Some(other) => panic!("unknown method {other}"),
        };
        let neighbours = match value("--neighbours").as_deref() {
            None | Some("auto") => Neighbours::Auto,
            Some("exact") => Neighbours::Exact,
            Some("approximate") => Neighbours::Approximate,
            Some(other) => panic!("unknown neighbours {other}"),
        };
        let params = TsneParams {
            perplexity: value("--perplexity").map_or(3.0, |v| v.parse().expect("perplexity")),
            seed: value("--seed").map_or(0, |v| v.parse().expect("seed")),
            theta: value("--theta").map_or(0.5, |v| v.parse().expect("theta")),
            method,
            neighbours,
            ..TsneParams::default()
        };
        // `--warm N`: time the film's warm start instead (`tsne_from` for N iterations without
        // exaggeration, from the layout of a full run made once and not timed).
        let warm: Option<usize> = value("--warm").map(|v| v.parse().expect("--warm N"));
        let start = warm.map(|_| {
            tsne::tsne(x.view(), &params, None, None)
                .expect("t-SNE run")
                .coords
        });
        let warm_params = TsneParams {
            n_iter: warm.unwrap_or(0),
            exaggeration_iter: 0,
            ..params.clone()
        };
        let mut times = Vec::new();
        let mut cpu = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let t = Instant::now();
            let c = cpu_seconds();
            let e = match (forced, &start) {
                (_, Some(init)) => tsne::tsne_from(x.view(), init.view(), &warm_params, None, None),
                (Some(f), None) => tsne::tsne_forced(x.view(), &params, f),
                (None, None) => tsne::tsne(x.view(), &params, None, None),
            }
            .expect("t-SNE run");
            times.push(t.elapsed().as_secs_f64());
            if let (Some(c0), Some(c1)) = (c, cpu_seconds()) {
                cpu.push(c1 - c0);
            }
            last = Some(e);
        }
        let cpu_median = if cpu.is_empty() {
            f64::NAN
        } else {
            median(cpu)
        };
        let e = last.expect("runs >= 1");
        if let Some(out) = value("--out") {
            write_npy(&out, e.coords.view());
        }
        let list: Vec<String> = times.iter().map(|t| format!("{t:.4}")).collect();
        println!(
            "{{\"n\": {}, \"dim\": {}, \"seconds\": [{}], \"median\": {:.4}, \"cpu_median\": {:.3}, \"kl\": {:.5}, \"n_iter\": {}}}",
            x.nrows(),
            x.ncols(),
            list.join(", "),
            median(times),
            cpu_median,
            e.kl_divergence,
            e.n_iter
        );
        return;
    }
    suite(runs);
    if !args.iter().any(|a| a == "--no-crossover") {
        crossover(runs);
    }
}
