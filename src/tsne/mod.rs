//! t-SNE with scikit-learn's semantics (van der Maaten & Hinton 2008; van der Maaten 2014), fast.
//!
//! The pipeline follows scikit-learn 1.9's `sklearn/manifold/_t_sne.py`:
//! k nearest neighbours, exact or (from 20,000 points) approximate ([`neighbours`]) ->
//! per-point perplexity calibration and a
//! symmetric, normalised P ([`affinity`]) -> gradient descent with early exaggeration, momentum
//! and delta-bar-delta gains ([`optimise`]), the gradient being the exact O(n^2) sum
//! ([`gradient`]), the Barnes-Hut approximation over a quadtree ([`quadtree`]) or
//! FFT-accelerated interpolation ([`fft`]).
//!
//! Determinism: every parallel loop writes per-point (or per-tile) results into its own slot
//! over a fixed partition, and all cross-point sums run sequentially in a fixed order, so the
//! same seed gives the same embedding whatever the number of rayon threads. (The SIMD kernels
//! are chosen at run time, so a CPU without AVX2/FMA rounds differently.)
//!
//! Where this departs from scikit-learn, on purpose:
//! - the perplexity search measures distances from each point's nearest candidate (same result
//!   in exact arithmetic; scikit-learn's exp() underflows when all distances are large);
//! - Barnes-Hut opens cells for a group of up to 128 points at once, with scikit-learn's
//!   criterion applied to the nearest point of the group (never coarser than per point), and
//!   leaves hold up to 8 points summed exactly; theta = 0 gives the exact gradient;
//! - the 1/(1 + d^2) of the SIMD kernels is a reciprocal estimate plus one Newton step.
//!
//! FFT-accelerated interpolation (FIt-SNE, Linderman et al. 2019, as openTSNE's
//! `estimate_negative_gradient_fft_2d`: [`fft`]) is `Method::Fft`, not chosen by `Auto`:
//! measured on the digits at perplexity 30 (AVX2, 2 cores, loaded), it took 2.4x Barnes-Hut's
//! CPU time at 10,000 points and 1.75x at 70,000 (168.6 against 96.0 CPU-s), with a higher KL.

mod affinity;
mod fft;
mod gradient;
mod metrics;
mod neighbours;
mod optimise;
mod pca;
mod place;
mod quadtree;
mod simd;
// Issue 12 (branch film2): warm-started frames sharing one neighbour search.
pub mod warm;

use std::sync::atomic::AtomicBool;

use ndarray::{Array2, ArrayView2};

use crate::Cancelled;

pub use metrics::{TRUST_K, knn_accuracy, neighbour_preservation, trust};
// Issue 13 (branch errcore): placing new points into a map; the exact k-NN for `crate::neighbours`.
pub(crate) use neighbours::knn;
pub use place::{PlaceParams, place, place_with};
pub use simd::{Simd, force_simd};

/// The default perplexity (scikit-learn's, openTSNE's and TensorBoard's).
pub const DEFAULT_PERPLEXITY: f64 = 30.0;

/// Parameters of a t-SNE run; the defaults are scikit-learn's `TSNE(perplexity=30,
/// learning_rate='auto', init='random')` (perplexity 30 is also openTSNE's and TensorBoard's
/// default; the notebook's 3 is one field away).
#[derive(Debug, Clone, PartialEq)]
pub struct TsneParams {
    /// Target perplexity of each point's conditional distribution (scikit-learn: `perplexity`).
    pub perplexity: f64,
    /// Total number of iterations, exaggeration phase included (scikit-learn: `max_iter`).
    pub n_iter: usize,
    /// Factor on P during the first `exaggeration_iter` iterations.
    pub early_exaggeration: f64,
    /// Length of the early-exaggeration phase (scikit-learn's `_EXPLORATION_MAX_ITER`, 250).
    pub exaggeration_iter: usize,
    /// Learning rate; `None` is scikit-learn's 'auto': max(n / early_exaggeration / 4, 50).
    pub learning_rate: Option<f64>,
    /// Initial embedding.
    pub init: Init,
    /// Affinities and gradient algorithm.
    pub method: Method,
    /// How the nearest neighbours of the affinities are found (not used by `Method::Exact`).
    pub neighbours: Neighbours,
    /// Barnes-Hut opening angle (scikit-learn: `angle`).
    pub theta: f64,
    /// Stop when the norm of the (gain-scaled) gradient falls to this.
    pub min_grad_norm: f64,
    /// Stop after this many iterations without a lower KL (checked every 50 iterations).
    pub n_iter_without_progress: usize,
    /// Seed of the random initialisation.
    pub seed: u64,
    /// Call the progress callback every this many iterations (0 = only at the end).
    pub progress_every: usize,
}

impl Default for TsneParams {
    fn default() -> Self {
        Self {
            perplexity: DEFAULT_PERPLEXITY,
            n_iter: 1000,
            early_exaggeration: 12.0,
            exaggeration_iter: 250,
            learning_rate: None,
            init: Init::Random,
            method: Method::Auto,
            neighbours: Neighbours::Auto,
            theta: 0.5,
            min_grad_norm: 1e-7,
            n_iter_without_progress: 300,
            seed: 0,
            progress_every: 10,
        }
    }
}

/// How the embedding starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Init {
    /// 1e-4 x standard normal (scikit-learn's `init='random'`).
    #[default]
    Random,
    /// The first two principal components, scaled so the first has standard deviation 1e-4
    /// (scikit-learn's `init='pca'`).
    Pca,
}

/// Which affinities and which gradient algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// The fastest method with scikit-learn's default semantics (`method='barnes_hut'`):
    /// affinities over the 3*perplexity+1 nearest neighbours, repulsion by Barnes-Hut (which
    /// beat this crate's FFT interpolation at 10,000 and 70,000 points).
    /// Measured crossover (`cargo bench --bench tsne`): the grouped Barnes-Hut here beat the
    /// exact O(n^2) repulsion (tiled, SIMD) at every size tried, 30 to 4,000 points; the exact
    /// repulsion remains for benchmarks and tests.
    #[default]
    Auto,
    /// scikit-learn's `method='exact'`: affinities over all pairs, exact gradient. O(n^2) memory.
    Exact,
    /// scikit-learn's `method='barnes_hut'`: nearest-neighbour affinities, quadtree with `theta`.
    BarnesHut,
    /// Nearest-neighbour affinities as `BarnesHut`, repulsion by FFT-accelerated interpolation
    /// (FIt-SNE, Linderman et al. 2019; openTSNE's default above 10,000 points): 3 x 3
    /// Lagrange nodes per box of side at most 1, the kernel convolved by FFT.
    Fft,
}

/// How the nearest neighbours behind the affinities are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Neighbours {
    /// Exact up to [`APPROXIMATE_NEIGHBOURS_FROM`] points, approximate from there on.
    #[default]
    Auto,
    /// Exact k nearest neighbours (scikit-learn's).
    Exact,
    /// Shortlisted in a 64-d principal subspace, re-ranked exactly (openTSNE also uses
    /// approximate neighbours: Annoy or NN-descent).
    Approximate,
}

/// The size from which `Neighbours::Auto` searches approximately.
pub const APPROXIMATE_NEIGHBOURS_FROM: usize = 20_000;

/// A snapshot handed to the progress callback.
#[derive(Debug, Clone, Copy)]
pub struct TsneProgress<'a> {
    /// Iterations done so far.
    pub iteration: usize,
    /// Iterations planned.
    pub n_iter: usize,
    /// KL(P || Q) of the current embedding (un-exaggerated P), when it was computed this
    /// iteration (every 50 iterations and at the end).
    pub kl_divergence: Option<f64>,
    /// The current embedding, n x 2.
    pub embedding: ArrayView2<'a, f32>,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Embedding {
    /// n x 2 coordinates.
    pub coords: Array2<f32>,
    /// KL(P || Q) at the end.
    pub kl_divergence: f64,
    /// Iterations run (scikit-learn's `n_iter_` + 1).
    pub n_iter: usize,
}

/// Why a run did not produce an embedding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TsneError {
    /// The cancel flag was raised.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    /// Perplexity must be below the number of points (scikit-learn: "perplexity must be less
    /// than n_samples"), and there must be at least 2 points.
    #[error(
        "perplexity must be less than the number of points: perplexity {perplexity}, {n} points \
         (lower the perplexity or embed more points)"
    )]
    TooFewPoints {
        /// Points given.
        n: usize,
        /// Perplexity asked for.
        perplexity: f64,
    },
    /// The input holds NaN or infinity.
    #[error("input contains a non-finite value at row {row}, column {col}")]
    NonFinite {
        /// Row of the first offending value.
        row: usize,
        /// Column of the first offending value.
        col: usize,
    },
    /// A parameter is out of range.
    #[error("invalid t-SNE parameter: {0}")]
    InvalidParams(String),
}

/// Each row's `k` nearest other rows of `data` by exact squared Euclidean distance, nearest
/// first (ties: the lower index first), as (n x k indices, n x k squared distances), row-major:
/// the search every t-SNE run at up to a few thousand points starts with (for benchmarks and
/// tools). `k` must be below the number of rows.
pub fn exact_knn(data: ArrayView2<f32>, k: usize) -> (Vec<u32>, Vec<f32>) {
    let knn = neighbours::knn(data, k);
    (knn.indices, knn.d2)
}

/// Embed `data` (n points x d features) in 2-D with t-SNE.
///
/// `progress` is called every `params.progress_every` iterations and at the end; `cancel` is
/// checked between iterations.
pub fn tsne(
    data: ArrayView2<f32>,
    params: &TsneParams,
    progress: Option<&mut dyn FnMut(&TsneProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<Embedding, TsneError> {
    run_with(data, params, None, progress, cancel)
}

/// [`tsne`] from a given layout instead of a random one: the warm start of an embedding that
/// follows a changing input (issue "watch each layer learn": each frame starts from the
/// previous frame's layout). Set `params.exaggeration_iter` to 0 to skip early exaggeration
/// (the layout is already spread out) and `params.n_iter` to the few iterations wanted;
/// `params.init` and `params.seed`'s initialisation are not used. `init` must be n x 2 and
/// finite.
pub fn tsne_from(
    data: ArrayView2<f32>,
    init: ArrayView2<f32>,
    params: &TsneParams,
    progress: Option<&mut dyn FnMut(&TsneProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<Embedding, TsneError> {
    if init.dim() != (data.nrows(), 2) {
        return Err(TsneError::InvalidParams(format!(
            "initial layout is {} x {}, expected {} x 2",
            init.nrows(),
            init.ncols(),
            data.nrows()
        )));
    }
    if init.iter().any(|v| !v.is_finite()) {
        return Err(TsneError::InvalidParams(
            "initial layout holds a non-finite value".to_owned(),
        ));
    }
    run_inner(data, params, None, Some(init), progress, cancel)
}

/// Which repulsion a benchmark forces on the nearest-neighbour affinities.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForcedRepulsion {
    /// All pairs.
    Exact,
    /// Barnes-Hut.
    BarnesHut,
    /// FFT-accelerated interpolation.
    Fft,
}

/// [`tsne`] with the repulsion forced, for measuring the crossover (benchmarks only).
#[doc(hidden)]
pub fn tsne_forced(
    data: ArrayView2<f32>,
    params: &TsneParams,
    repulsion: ForcedRepulsion,
) -> Result<Embedding, TsneError> {
    let params = TsneParams {
        method: Method::BarnesHut,
        ..params.clone()
    };
    run_with(data, &params, Some(repulsion), None, None)
}

fn run_with(
    data: ArrayView2<f32>,
    params: &TsneParams,
    forced: Option<ForcedRepulsion>,
    progress: Option<&mut dyn FnMut(&TsneProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<Embedding, TsneError> {
    run_inner(data, params, forced, None, progress, cancel)
}

fn run_inner(
    data: ArrayView2<f32>,
    params: &TsneParams,
    forced: Option<ForcedRepulsion>,
    given: Option<ArrayView2<f32>>,
    progress: Option<&mut dyn FnMut(&TsneProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<Embedding, TsneError> {
    validate(data, params)?;
    let n = data.nrows();
    let cancelled = || cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed));

    // Large runs renumber the points so that neighbours in P sit near each other in memory.
    let mut order: Option<Vec<u32>> = None;
    let affinities = match params.method {
        Method::Exact => affinity::Affinities::Dense(affinity::dense_p(data, params.perplexity)),
        Method::Auto | Method::BarnesHut | Method::Fft => {
            // scikit-learn: n_neighbors = min(n - 1, int(3 * perplexity + 1)).
            let k = (n - 1).min((3.0 * params.perplexity + 1.0) as usize);
            let approximate = match params.neighbours {
                Neighbours::Auto => n >= APPROXIMATE_NEIGHBOURS_FROM,
                Neighbours::Exact => false,
                Neighbours::Approximate => true,
            };
            let mut knn = if approximate {
                neighbours::knn_approximate(data, k, params.seed)
            } else {
                neighbours::knn(data, k)
            };
            if n >= REORDER_FROM {
                let o = neighbours::locality_order(&knn);
                knn = neighbours::relabel(&knn, &o);
                order = Some(o);
            }
            if cancelled() {
                return Err(Cancelled.into());
            }
            affinity::Affinities::Sparse(affinity::sparse_p(&knn, params.perplexity))
        }
    };
    if cancelled() {
        return Err(Cancelled.into());
    }
    let repulsion = match (forced, params.method) {
        (Some(ForcedRepulsion::Exact), _) => optimise::Repulsion::Exact,
        (Some(ForcedRepulsion::BarnesHut), _) => optimise::Repulsion::BarnesHut,
        (Some(ForcedRepulsion::Fft), _) => optimise::Repulsion::Fft,
        (None, Method::Exact) => optimise::Repulsion::Exact,
        (None, Method::BarnesHut) => optimise::Repulsion::BarnesHut,
        (None, Method::Fft) => optimise::Repulsion::Fft,
        (None, Method::Auto) => optimise::Repulsion::BarnesHut,
    };
    let init = match (given, params.init) {
        (Some(layout), _) => layout.to_owned(),
        (None, Init::Random) => optimise::random_init(n, params.seed),
        (None, Init::Pca) => pca::pca_init(data),
    };
    let init = match &order {
        Some(o) => init.select(
            ndarray::Axis(0),
            &o.iter().map(|&i| i as usize).collect::<Vec<_>>(),
        ),
        None => init,
    };
    optimise::run(
        init,
        &affinities,
        repulsion,
        params,
        order.as_deref(),
        progress,
        cancel,
    )
}

/// From this many points the optimiser works on the points in [`neighbours::locality_order`]:
/// the attraction's gathers then mostly hit the cache (measured at 70,000 points, where the
/// coordinates outgrow a core's L2).
const REORDER_FROM: usize = APPROXIMATE_NEIGHBOURS_FROM;

fn validate(data: ArrayView2<f32>, params: &TsneParams) -> Result<(), TsneError> {
    let n = data.nrows();
    let bad = |what: String| Err(TsneError::InvalidParams(what));
    if !params.perplexity.is_finite() || params.perplexity <= 0.0 {
        return bad(format!(
            "perplexity must be a positive finite number, got {}",
            params.perplexity
        ));
    }
    if n < 2 || params.perplexity >= n as f64 {
        return Err(TsneError::TooFewPoints {
            n,
            perplexity: params.perplexity,
        });
    }
    if let Some(((row, col), _)) = data.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(TsneError::NonFinite { row, col });
    }
    if data.ncols() == 0 {
        return bad("data has no columns".to_owned());
    }
    if params.early_exaggeration.is_nan() || params.early_exaggeration < 1.0 {
        return bad("early_exaggeration must be at least 1".to_owned());
    }
    if params
        .learning_rate
        .is_some_and(|lr| lr.is_nan() || lr <= 0.0)
    {
        return bad("learning_rate must be positive".to_owned());
    }
    if params.theta.is_nan() || params.theta < 0.0 {
        return bad("theta must be non-negative".to_owned());
    }
    Ok(())
}
