//! t-SNE engine: behaviour through the public API.

use std::sync::atomic::AtomicBool;

use layerscope::Cancelled;
use layerscope::tsne::{
    ForcedRepulsion, Init, Method, TsneError, TsneParams, knn_accuracy, neighbour_preservation,
    tsne,
};
use ndarray::{Array2, array};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

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
    for method in [Method::Auto, Method::BarnesHut, Method::Exact] {
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
        assert!(
            e.kl_divergence > 0.0 && e.kl_divergence < 2.0,
            "KL {}",
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
    let (x, _) = blobs(5, 120, 40, 2);
    for method in [Method::Auto, Method::BarnesHut] {
        let params = TsneParams {
            method,
            seed: 11,
            n_iter: 400,
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
    let tiny = Array2::<f32>::zeros((3, 4));
    assert!(matches!(
        tsne(tiny.view(), &params, None, None),
        Err(TsneError::TooFewPoints { n: 3, .. })
    ));
    let mut x = Array2::<f32>::zeros((20, 3));
    x[[7, 2]] = f32::NAN;
    assert_eq!(
        tsne(x.view(), &params, None, None).unwrap_err(),
        TsneError::NonFinite { row: 7, col: 2 }
    );
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
