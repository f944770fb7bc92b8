//! Warm-started t-SNE for a sequence of related inputs (the film, issue 12: every layer's map
//! at every epoch, each frame starting from its neighbour frame's layout).
//!
//! [`tsne_warm`] runs the same pipeline as [`super::tsne_from`] (exact k nearest neighbours,
//! perplexity calibration, Barnes-Hut descent) but finds the high-dimensional neighbours once
//! for everything a frame needs: the affinities, the trust figure (the first [`TRUST_K`] of
//! the 3 * perplexity + 1 neighbours are the trust's own: the exact search ranks by distance,
//! ties to the lower index) and the neighbour lists that tell how much the layer changed since
//! the frame before ([`neighbour_change`]). A frame then costs one high-dimensional search
//! instead of two.

use std::sync::atomic::AtomicBool;

use ndarray::ArrayView2;

use super::metrics::{TRUST_K, overlap};
use super::{Embedding, Method, TsneError, TsneParams, affinity, neighbours, optimise, validate};
use crate::Cancelled;

/// One warm (or cold) run and what the film keeps of it.
#[derive(Debug, Clone)]
pub struct WarmRun {
    /// The layout, KL and iterations run.
    pub embedding: Embedding,
    /// The trust figure of the layout ([`super::trust`]), `None` at 10 points or fewer.
    pub trust: Option<f64>,
    /// Each point's [`TRUST_K`] nearest neighbours in the input, n x k row-major (k is
    /// `TRUST_K` or n - 1 when smaller): the next frame's [`neighbour_change`] compares with it.
    pub neighbours: Vec<u32>,
    /// [`neighbour_change`] from the neighbours given to [`tsne_warm_adaptive`].
    pub change: Option<f64>,
}

/// t-SNE of `data` from `init` (`None`: the random start of `params.seed`), exact neighbours
/// and Barnes-Hut repulsion whatever `params.method` says (the film's frames are a few thousand
/// points at most), with the trust of the result computed from the same neighbour search.
///
/// # Errors
/// As [`super::tsne_from`].
pub fn tsne_warm(
    data: ArrayView2<f32>,
    init: Option<ArrayView2<f32>>,
    params: &TsneParams,
    cancel: Option<&AtomicBool>,
) -> Result<WarmRun, TsneError> {
    tsne_warm_adaptive(data, init, params, None, &|_| params.n_iter, cancel)
}

/// [`tsne_warm`] whose iteration count depends on how much the input changed: `iterations`
/// gets the [`neighbour_change`] from `previous` (the neighbours of the frame it starts from,
/// [`WarmRun::neighbours`]; `params.n_iter` when not given) and returns the iterations to run.
///
/// # Errors
/// As [`super::tsne_from`].
pub fn tsne_warm_adaptive(
    data: ArrayView2<f32>,
    init: Option<ArrayView2<f32>>,
    params: &TsneParams,
    previous: Option<&[u32]>,
    iterations: &dyn Fn(f64) -> usize,
    cancel: Option<&AtomicBool>,
) -> Result<WarmRun, TsneError> {
    validate(data, params)?;
    let n = data.nrows();
    if let Some(init) = init
        && (init.dim() != (n, 2) || init.iter().any(|v| !v.is_finite()))
    {
        return Err(TsneError::InvalidParams(format!(
            "initial layout must be {n} x 2 and finite"
        )));
    }
    let cancelled = || cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed));
    // scikit-learn: n_neighbors = min(n - 1, int(3 * perplexity + 1)); at least the trust's.
    let k_p = (n - 1).min((3.0 * params.perplexity + 1.0) as usize);
    let k_trust = TRUST_K.min(n - 1);
    let knn = neighbours::knn(data, k_p.max(k_trust));
    if cancelled() {
        return Err(Cancelled.into());
    }
    let k = knn.k;
    let first = |m: usize| -> Vec<u32> {
        knn.indices
            .chunks_exact(k)
            .flat_map(|row| row[..m].iter().copied())
            .collect()
    };
    let affinities = if k_p == k {
        affinity::sparse_p(&knn, params.perplexity)
    } else {
        let d2 = knn
            .d2
            .chunks_exact(k)
            .flat_map(|row| row[..k_p].iter().copied())
            .collect();
        affinity::sparse_p(
            &neighbours::Knn {
                k: k_p,
                indices: first(k_p),
                d2,
            },
            params.perplexity,
        )
    };
    let high = first(k_trust);
    drop(knn);
    if cancelled() {
        return Err(Cancelled.into());
    }
    let start = match init {
        Some(layout) => layout.to_owned(),
        None => match params.init {
            super::Init::Random => optimise::random_init(n, params.seed),
            super::Init::Pca => super::pca::pca_init(data),
        },
    };
    let change = previous
        .filter(|p| p.len() == high.len())
        .map(|p| neighbour_change(p, &high, n));
    let n_iter = change.map_or(params.n_iter, iterations);
    let params = TsneParams {
        method: Method::BarnesHut,
        n_iter,
        // A short adaptive run is never stopped for "no progress" (checked every 50).
        n_iter_without_progress: if change.is_some() {
            params.n_iter_without_progress.max(n_iter)
        } else {
            params.n_iter_without_progress
        },
        ..params.clone()
    };
    let embedding = optimise::run(
        start,
        &affinity::Affinities::Sparse(affinities),
        optimise::Repulsion::BarnesHut,
        &params,
        None,
        None,
        cancel,
    )?;
    let trust = (n > TRUST_K).then(|| {
        let low = neighbours::knn(embedding.coords.view(), k_trust);
        overlap(&high, &low.indices, k_trust)
    });
    Ok(WarmRun {
        embedding,
        trust,
        neighbours: high,
        change,
    })
}

/// How much a layer changed between two frames: the share of each point's nearest
/// neighbours (two [`WarmRun::neighbours`] lists of the same points) that are new, 0 (the
/// same neighbourhoods) to 1 (all new).
pub fn neighbour_change(before: &[u32], after: &[u32], n: usize) -> f64 {
    assert_eq!(
        before.len(),
        after.len(),
        "two neighbour lists of the same points"
    );
    if n == 0 || before.is_empty() {
        return 0.0;
    }
    1.0 - overlap(before, after, before.len() / n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn blobs(n: usize, d: usize, shift: f32) -> Array2<f32> {
        Array2::from_shape_fn((n, d), |(i, j)| {
            let c = (i % 4) as f32;
            (((i * 7919 + j * 104_729) % 1000) as f32 / 1000.0) + c * 3.0 + shift * (j as f32)
        })
    }

    #[test]
    fn the_trust_from_the_shared_search_is_the_engines() {
        let x = blobs(400, 24, 0.0);
        let params = TsneParams {
            perplexity: 10.0,
            n_iter: 300,
            ..TsneParams::default()
        };
        let run = tsne_warm(x.view(), None, &params, None).expect("run");
        assert_eq!(
            run.trust,
            super::super::trust(x.view(), run.embedding.coords.view())
        );
        assert_eq!(run.neighbours, neighbours::knn(x.view(), TRUST_K).indices);
    }

    #[test]
    fn a_cold_run_is_the_engines_run() {
        let x = blobs(300, 20, 0.0);
        let params = TsneParams {
            perplexity: 12.0,
            n_iter: 300,
            ..TsneParams::default()
        };
        let ours = tsne_warm(x.view(), None, &params, None).expect("run");
        let engine = super::super::tsne(x.view(), &params, None, None).expect("run");
        assert_eq!(ours.embedding.coords, engine.coords);
        let from = tsne_warm(x.view(), Some(engine.coords.view()), &params, None).expect("run");
        let engine_from =
            super::super::tsne_from(x.view(), engine.coords.view(), &params, None, None)
                .expect("run");
        assert_eq!(from.embedding.coords, engine_from.coords);
    }

    #[test]
    fn the_iterations_follow_the_neighbour_change() {
        let x = blobs(300, 20, 0.0);
        let params = TsneParams {
            perplexity: 12.0,
            n_iter: 300,
            ..TsneParams::default()
        };
        let first = tsne_warm(x.view(), None, &params, None).expect("run");
        assert_eq!(first.change, None);
        let warm = TsneParams {
            exaggeration_iter: 0,
            n_iter: 150,
            ..params
        };
        let rule = |change: f64| if change < 0.1 { 20 } else { 120 };
        let init = first.embedding.coords.view();
        let same = tsne_warm_adaptive(
            x.view(),
            Some(init),
            &warm,
            Some(&first.neighbours),
            &rule,
            None,
        )
        .expect("run");
        assert_eq!((same.change, same.embedding.n_iter), (Some(0.0), 20));
        // The same points shuffled: most points' neighbours are new ones.
        let moved = Array2::from_shape_fn((300, 20), |(i, j)| x[[(i * 7) % 300, j]]);
        let other = tsne_warm_adaptive(
            moved.view(),
            Some(init),
            &warm,
            Some(&first.neighbours),
            &rule,
            None,
        )
        .expect("run");
        assert!(other.change.is_some_and(|c| c >= 0.1), "{:?}", other.change);
        assert_eq!(other.embedding.n_iter, 120);
        let plain = tsne_warm(moved.view(), Some(init), &warm, None).expect("run");
        assert_eq!(plain.embedding.n_iter, 150);
    }

    #[test]
    fn neighbour_change_counts_new_neighbours() {
        assert_eq!(
            neighbour_change(&[1, 2, 0, 2, 0, 1], &[1, 2, 0, 2, 0, 1], 3),
            0.0
        );
        assert_eq!(
            neighbour_change(&[1, 2, 0, 2, 0, 1], &[2, 1, 2, 0, 1, 0], 3),
            0.0
        );
        assert!(
            (neighbour_change(&[1, 2, 0, 2, 0, 1], &[1, 0, 0, 2, 0, 1], 3) - 1.0 / 6.0).abs()
                < 1e-12
        );
        let a = blobs(200, 16, 0.0);
        let b = blobs(200, 16, 0.5);
        let na = neighbours::knn(a.view(), 10).indices;
        let nb = neighbours::knn(b.view(), 10).indices;
        assert_eq!(neighbour_change(&na, &na, 200), 0.0);
        assert!(neighbour_change(&na, &nb, 200) > 0.0);
    }
}
