//! t-SNE engine: behaviour through the public API.

use std::sync::atomic::AtomicBool;

use layerscope::Cancelled;
use layerscope::tsne::{
    ForcedRepulsion, Init, Method, Simd, TsneError, TsneParams, force_simd, knn_accuracy,
    neighbour_preservation, trust, tsne,
};
use ndarray::{Array2, array};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// Held by the tests that compare runs bit for bit and by the one that forces the SIMD level
/// (a process-wide switch), so the switch never flips under a comparison.
static SIMD_SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn simd_lock() -> std::sync::MutexGuard<'static, ()> {
    SIMD_SWITCH.lock().unwrap_or_else(|e| e.into_inner())
}

/// `per` points around each of `centres` well-separated centres in `dim` dimensions.
fn blobs(centres: usize, per: usize, dim: usize, seed: u64) -> (Array2<f32>, Vec<u8>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n = centres * per;
    let labels: Vec<u8> = (0..n).map(|i| (i % centres) as u8).collect();
    let x = Array2::from_shape_fn((n, dim), |(i, j)| {
        let noise: f32 = StandardNormal.sample(&mut rng);
        let centre = if j == labels[i] as usize { 30.0 } else { 0.0 };
        centre + noise
    });
    (x, labels)
}

#[test]
fn separated_clusters_stay_separated() {
    let (x, labels) = blobs(4, 100, 20, 1);
    for method in [Method::Auto, Method::BarnesHut, Method::Exact, Method::Fft] {
        let params = TsneParams {
            method,
            seed: 3,
            ..TsneParams::default()
        };
        let e = tsne(x.view(), &params, None, None).expect("runs");
        assert_eq!(e.coords.dim(), (400, 2));
        assert!(e.coords.iter().all(|v| v.is_finite()));
        let acc = knn_accuracy(e.coords.view(), &labels, 10);
        assert!(acc > 0.99, "{method:?}: 10-NN accuracy {acc}");
        // Every cluster's points are closer to their own centroid than to any other centroid.
        let mut centroids = [[0f32; 2]; 4];
        for (row, &l) in e.coords.rows().into_iter().zip(&labels) {
            centroids[l as usize][0] += row[0] / 100.0;
            centroids[l as usize][1] += row[1] / 100.0;
        }
        for (row, &l) in e.coords.rows().into_iter().zip(&labels) {
            let d = |c: [f32; 2]| (row[0] - c[0]).powi(2) + (row[1] - c[1]).powi(2);
            let own = d(centroids[l as usize]);
            for (c, &centroid) in centroids.iter().enumerate() {
                if c != l as usize {
                    assert!(
                        own < d(centroid),
                        "{method:?}: a point sits nearer cluster {c}"
                    );
                }
            }
        }
    }
}

/// The squared Euclidean distances of row i to every row, in f64.
fn d2_row(x: &Array2<f32>, i: usize) -> Vec<f64> {
    x.rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .zip(x.row(i))
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                .sum()
        })
        .collect()
}

/// scikit-learn's P for the Barnes-Hut path, computed here from scratch in f64: the
/// 3 * perplexity + 1 nearest neighbours by brute force, a Gaussian per point whose precision is
/// bisected until the entropy is ln(perplexity), then (P + P^T) / sum. Dense n x n.
fn independent_p(x: &Array2<f32>, perplexity: f64) -> Vec<Vec<f64>> {
    let n = x.nrows();
    let k = ((3.0 * perplexity + 1.0) as usize).min(n - 1);
    let mut cond = vec![vec![0f64; n]; n];
    for (i, row) in cond.iter_mut().enumerate() {
        let d = d2_row(x, i);
        let mut order: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        order.sort_by(|&a, &b| d[a].total_cmp(&d[b]));
        let nb = &order[..k];
        let (mut lo, mut hi) = (0f64, f64::INFINITY);
        let mut beta = 1.0;
        for _ in 0..200 {
            let w: Vec<f64> = nb
                .iter()
                .map(|&j| (-(d[j] - d[nb[0]]) * beta).exp())
                .collect();
            let s: f64 = w.iter().sum();
            let h: f64 = -w
                .iter()
                .map(|v| v / s)
                .filter(|&p| p > 0.0)
                .map(|p| p * p.ln())
                .sum::<f64>();
            for (&j, wj) in nb.iter().zip(&w) {
                row[j] = wj / s;
            }
            if h > perplexity.ln() {
                lo = beta;
                beta = if hi.is_finite() {
                    (beta + hi) / 2.0
                } else {
                    beta * 2.0
                };
            } else {
                hi = beta;
                beta = (beta + lo) / 2.0;
            }
        }
    }
    let mut p = vec![vec![0f64; n]; n];
    let mut total = 0.0;
    for i in 0..n {
        for j in 0..n {
            p[i][j] = cond[i][j] + cond[j][i];
            total += p[i][j];
        }
    }
    for row in &mut p {
        for v in row.iter_mut() {
            *v /= total;
        }
    }
    p
}

fn kl_of(p: &[Vec<f64>], y: ndarray::ArrayView2<f32>) -> f64 {
    let n = p.len();
    let w = |i: usize, j: usize| {
        1.0 / (1.0
            + (f64::from(y[[i, 0]]) - f64::from(y[[j, 0]])).powi(2)
            + (f64::from(y[[i, 1]]) - f64::from(y[[j, 1]])).powi(2))
    };
    let mut z = 0.0;
    for i in 0..n {
        for j in (0..n).filter(|&j| j != i) {
            z += w(i, j);
        }
    }
    let mut kl = 0.0;
    for (i, row) in p.iter().enumerate() {
        for (j, &pij) in row.iter().enumerate() {
            if j != i && pij > 0.0 {
                kl += pij * (pij * z / w(i, j)).ln();
            }
        }
    }
    kl
}

#[test]
fn reported_kl_is_what_an_independent_computation_gives() {
    // The whole pipeline (neighbours, calibration, symmetrisation, the optimiser's KL) against
    // P and KL computed from scratch here, at the embedding the last error was taken at.
    let (x, _) = blobs(4, 60, 12, 6);
    for perplexity in [5.0, 30.0] {
        let params = TsneParams {
            perplexity,
            method: Method::BarnesHut,
            theta: 0.0,
            n_iter: 400,
            progress_every: 1,
            seed: 2,
            ..TsneParams::default()
        };
        let mut before_last = None;
        let mut record = |p: &layerscope::tsne::TsneProgress<'_>| {
            if p.iteration == 399 {
                before_last = Some(p.embedding.to_owned());
            }
        };
        let e = tsne(x.view(), &params, Some(&mut record), None).expect("runs");
        let want = kl_of(
            &independent_p(&x, perplexity),
            before_last.expect("iteration 399").view(),
        );
        assert!(
            (e.kl_divergence - want).abs() < 1e-3 * want,
            "perplexity {perplexity}: reported KL {}, independent {want}",
            e.kl_divergence
        );
    }
}

fn run_in_pool(threads: usize, x: &Array2<f32>, params: &TsneParams) -> Array2<f32> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool")
        .install(|| tsne(x.view(), params, None, None).expect("runs").coords)
}

#[test]
fn same_seed_same_embedding_on_one_and_two_threads() {
    let _simd = simd_lock();
    let (x, _) = blobs(5, 120, 40, 2);
    for method in [Method::Auto, Method::BarnesHut, Method::Fft] {
        let params = TsneParams {
            method,
            seed: 11,
            n_iter: 400,
            perplexity: 3.0,
            ..TsneParams::default()
        };
        let one = run_in_pool(1, &x, &params);
        let two = run_in_pool(2, &x, &params);
        assert_eq!(one, two, "{method:?}");
        let other_seed = run_in_pool(2, &x, &TsneParams { seed: 12, ..params });
        assert_ne!(one, other_seed);
    }
    // The exact (tiled) repulsion too.
    let params = TsneParams {
        n_iter: 300,
        ..TsneParams::default()
    };
    let exact = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| {
                layerscope::tsne::tsne_forced(x.view(), &params, ForcedRepulsion::Exact)
                    .expect("runs")
                    .coords
            })
    };
    assert_eq!(exact(1), exact(2));
}

#[test]
fn pca_init_runs_and_separates() {
    let (x, labels) = blobs(3, 60, 10, 4);
    let params = TsneParams {
        init: Init::Pca,
        ..TsneParams::default()
    };
    let e = tsne(x.view(), &params, None, None).expect("runs");
    assert!(knn_accuracy(e.coords.view(), &labels, 5) > 0.99);
}

#[test]
fn progress_is_reported_and_cancel_stops() {
    let (x, _) = blobs(3, 50, 5, 5);
    let params = TsneParams {
        n_iter: 300,
        progress_every: 25,
        ..TsneParams::default()
    };
    let mut seen = Vec::new();
    let mut on_progress = |p: &layerscope::tsne::TsneProgress<'_>| {
        assert_eq!(p.embedding.dim(), (150, 2));
        assert_eq!(p.n_iter, 300);
        seen.push((p.iteration, p.kl_divergence.is_some()));
    };
    let e = tsne(x.view(), &params, Some(&mut on_progress), None).expect("runs");
    assert_eq!(e.n_iter, 300);
    let iterations: Vec<usize> = seen.iter().map(|s| s.0).collect();
    assert_eq!(iterations, (1..=12).map(|i| i * 25).collect::<Vec<_>>());
    // KL accompanies the 50-iteration checks.
    assert!(seen.iter().all(|&(it, kl)| kl == (it % 50 == 0)));

    let cancel = AtomicBool::new(false);
    let mut calls = 0;
    let mut cancel_after_first = |_: &layerscope::tsne::TsneProgress<'_>| {
        calls += 1;
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let r = tsne(
        x.view(),
        &params,
        Some(&mut cancel_after_first),
        Some(&cancel),
    );
    assert_eq!(r.unwrap_err(), TsneError::Cancelled(Cancelled));
    assert_eq!(calls, 1);
}

#[test]
fn bad_input_is_an_error() {
    let params = TsneParams::default();
    assert_eq!(params.perplexity, 30.0);
    let tiny = Array2::<f32>::zeros((3, 4));
    assert!(matches!(
        tsne(tiny.view(), &params, None, None),
        Err(TsneError::TooFewPoints { n: 3, .. })
    ));
    // scikit-learn's rule: perplexity must be less than the number of points.
    let (x, _) = blobs(2, 15, 3, 8);
    let err = tsne(x.view(), &params, None, None).unwrap_err();
    assert_eq!(
        err,
        TsneError::TooFewPoints {
            n: 30,
            perplexity: 30.0
        }
    );
    assert!(
        err.to_string()
            .contains("perplexity must be less than the number of points"),
        "{err}"
    );
    let just_below = TsneParams {
        perplexity: 29.5,
        n_iter: 50,
        ..TsneParams::default()
    };
    assert!(tsne(x.view(), &just_below, None, None).is_ok());
    // A perplexity that is no number is refused as such, not as "needs more points".
    for perplexity in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -3.0] {
        let bad = TsneParams {
            perplexity,
            ..TsneParams::default()
        };
        let err = tsne(x.view(), &bad, None, None).unwrap_err();
        assert!(
            matches!(&err, TsneError::InvalidParams(m) if m.contains("perplexity")),
            "{perplexity}: {err:?}"
        );
    }
    let mut x = Array2::<f32>::zeros((20, 3));
    x[[7, 2]] = f32::NAN;
    let notebook = TsneParams {
        perplexity: 3.0,
        ..TsneParams::default()
    };
    assert_eq!(
        tsne(x.view(), &notebook, None, None).unwrap_err(),
        TsneError::NonFinite { row: 7, col: 2 }
    );
}

#[test]
fn trust_is_ten_neighbour_preservation_above_ten_points() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(10);
    for n in [2, 10] {
        let x = Array2::from_shape_fn((n, 3), |_| rng.random::<f32>());
        let y = Array2::from_shape_fn((n, 2), |_| rng.random::<f32>());
        assert_eq!(trust(x.view(), y.view()), None, "{n} points");
    }
    // 11 points on a line, shown on a line: all 10 neighbours of each are the other 10.
    let line = Array2::from_shape_fn((11, 1), |(i, _)| i as f32);
    let shown = Array2::from_shape_fn((11, 2), |(i, j)| if j == 0 { i as f32 } else { 0.0 });
    assert_eq!(trust(line.view(), shown.view()), Some(1.0));
    // 40 points: the 10 nearest on a line against a layout that reverses halves.
    let line = Array2::from_shape_fn((40, 1), |(i, _)| i as f32);
    let folded = Array2::from_shape_fn(
        (40, 2),
        |(i, j)| {
            if j == 0 { ((i * 17) % 40) as f32 } else { 0.0 }
        },
    );
    let got = trust(line.view(), folded.view()).expect("40 points");
    assert_eq!(got, neighbour_preservation(line.view(), folded.view(), 10));
    assert!(got < 0.5, "{got}");
}

#[test]
fn every_simd_path_gives_the_same_embedding_quality() {
    let _simd = simd_lock();
    let (x, labels) = blobs(4, 100, 20, 1);
    let params = TsneParams {
        seed: 3,
        ..TsneParams::default()
    };
    let mut kls = Vec::new();
    for level in Simd::ALL.into_iter().filter(|s| s.available()) {
        force_simd(Some(level));
        let run = tsne(x.view(), &params, None, None);
        force_simd(None);
        let e = run.expect("runs");
        assert!(
            knn_accuracy(e.coords.view(), &labels, 10) > 0.99,
            "{level:?}"
        );
        kls.push((level, e.kl_divergence));
    }
    // The paths round differently, so trajectories part; their end points are equally good.
    for &(level, kl) in &kls[1..] {
        assert!(
            (kl - kls[0].1).abs() < 0.02 * kls[0].1,
            "{level:?}: KL {kl} vs {:?}: {}",
            kls[0].0,
            kls[0].1
        );
    }
}

#[test]
fn warm_start_keeps_the_layout_and_its_quality() {
    let (x, labels) = blobs(5, 80, 20, 12);
    let cold = tsne(x.view(), &TsneParams::default(), None, None).expect("cold run");
    // The input moves a little, as a layer's activations do between epochs.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
    let moved = x.mapv(|v| {
        let noise: f32 = StandardNormal.sample(&mut rng);
        v + 0.1 * noise
    });
    let warm_params = TsneParams {
        exaggeration_iter: 0,
        n_iter: 200,
        ..TsneParams::default()
    };
    let warm =
        layerscope::tsne::tsne_from(moved.view(), cold.coords.view(), &warm_params, None, None)
            .expect("warm run");
    assert_eq!(warm.n_iter, 200);
    let fresh = tsne(moved.view(), &TsneParams::default(), None, None).expect("fresh run");
    // As good as a full cold run on the moved input (KL within 5%) ...
    assert!(
        warm.kl_divergence < 1.05 * fresh.kl_divergence,
        "warm {} vs cold {}",
        warm.kl_divergence,
        fresh.kl_divergence
    );
    assert!(knn_accuracy(warm.coords.view(), &labels, 10) > 0.99);
    // ... and the points stay where they were: the median move is a small share of the
    // layout's radius, far below that between two independent runs.
    let rms = |a: &Array2<f32>| {
        (a.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / a.nrows() as f64).sqrt()
    };
    let median_move = |a: &Array2<f32>, b: &Array2<f32>| {
        let mut d: Vec<f64> = a
            .rows()
            .into_iter()
            .zip(b.rows())
            .map(|(p, q)| f64::from((p[0] - q[0]).hypot(p[1] - q[1])))
            .collect();
        d.sort_by(f64::total_cmp);
        d[d.len() / 2] / rms(b)
    };
    let warm_move = median_move(&warm.coords, &cold.coords);
    let cold_move = median_move(&fresh.coords, &cold.coords);
    assert!(
        warm_move * 5.0 < cold_move,
        "warm start moved {warm_move}, an independent run {cold_move}"
    );
    // A layout of the wrong shape is refused.
    let bad = Array2::<f32>::zeros((3, 2));
    assert!(matches!(
        layerscope::tsne::tsne_from(moved.view(), bad.view(), &warm_params, None, None),
        Err(TsneError::InvalidParams(_))
    ));
}

#[test]
fn neighbour_preservation_known_cases() {
    // Two pairs on a line; each point's nearest neighbour is its pair-mate.
    let high = array![[0.0f32, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 0.0]];
    // Same geometry scaled and moved: everything preserved.
    let moved = high.mapv(|v| 3.0 * v + 5.0);
    assert_eq!(neighbour_preservation(high.view(), moved.view(), 1), 1.0);
    // Pairs crossed over: nothing preserved.
    let crossed = array![[0.0f32, 0.0], [10.0, 0.0], [1.0, 0.0], [11.0, 0.0]];
    assert_eq!(neighbour_preservation(high.view(), crossed.view(), 1), 0.0);
    // One pair kept, the other split between far points: half preserved.
    let half = array![[0.0f32, 0.0], [1.0, 0.0], [10.0, 0.0], [30.0, 0.0]];
    assert_eq!(neighbour_preservation(high.view(), half.view(), 1), 0.75);
    // A random 2-D layout of 1-D data keeps few of the 5 nearest.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let line = Array2::from_shape_fn((200, 1), |(i, _)| i as f32);
    let scrambled = Array2::from_shape_fn((200, 2), |_| rng.random::<f32>());
    let p = neighbour_preservation(line.view(), scrambled.view(), 5);
    assert!(p < 0.1, "{p}");
}

#[test]
fn knn_accuracy_known_cases() {
    let low = array![
        [0.0f32, 0.0],
        [0.1, 0.0],
        [0.2, 0.0],
        [5.0, 0.0],
        [5.1, 0.0],
        [5.2, 0.0]
    ];
    assert_eq!(knn_accuracy(low.view(), &[1, 1, 1, 2, 2, 2], 2), 1.0);
    // Right cluster: the lone 1 is outvoted; the 2s tie 1-1 with it and ties go to the smaller
    // label, so only the left cluster is read right.
    assert_eq!(knn_accuracy(low.view(), &[1, 1, 1, 2, 2, 1], 2), 0.5);
}

#[test]
fn fft_and_barnes_hut_embeddings_are_equally_good() {
    // The interpolated repulsion (FIt-SNE) is a different approximation of the same gradient:
    // the two runs part ways but end at the same KL and keep the same neighbours.
    let (x, labels) = blobs(6, 150, 30, 4);
    let run = |method| {
        let params = TsneParams {
            method,
            seed: 5,
            ..TsneParams::default()
        };
        tsne(x.view(), &params, None, None).expect("runs")
    };
    let bh = run(Method::BarnesHut);
    let fft = run(Method::Fft);
    assert_ne!(bh.coords, fft.coords);
    assert!(
        (fft.kl_divergence - bh.kl_divergence).abs() < 0.03 * bh.kl_divergence,
        "KL: FFT {} vs Barnes-Hut {}",
        fft.kl_divergence,
        bh.kl_divergence
    );
    let pres =
        |e: &layerscope::tsne::Embedding| neighbour_preservation(x.view(), e.coords.view(), 10);
    assert!(
        (pres(&fft) - pres(&bh)).abs() < 0.03,
        "10-NN preservation: FFT {} vs Barnes-Hut {}",
        pres(&fft),
        pres(&bh)
    );
    assert!(knn_accuracy(fft.coords.view(), &labels, 10) > 0.99);
}
