//! Gradient descent as scikit-learn's `_gradient_descent` and `_tsne` (`sklearn/manifold/
//! _t_sne.py`): two calls, one per phase (exaggerated P with momentum 0.5 for
//! `exaggeration_iter` iterations, then P with momentum 0.8), each starting with zero updates
//! and unit gains; delta-bar-delta gains (+0.2 / x0.8, floor 0.01, no ceiling); the error is
//! evaluated every 50 iterations and at the last one, and a phase stops after
//! `n_iter_without_progress` iterations without a lower error or when the gain-scaled gradient
//! norm falls to `min_grad_norm`. Everything is f32, as in scikit-learn's Barnes-Hut path.

use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::affinity::{Affinities, SparseP};
use super::gradient::{self, Forces, PAD_COORD, PAD_TO, ROWS_PER_TASK};
use super::quadtree::BarnesHut;
use super::{Embedding, TsneError, TsneParams, TsneProgress};
use crate::Cancelled;

/// `_t_sne.py`: `_N_ITER_CHECK`.
const N_ITER_CHECK: usize = 50;
/// `_gradient_descent`: `min_gain`.
const MIN_GAIN: f32 = 0.01;

/// How the repulsive half of the gradient is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repulsion {
    /// All pairs.
    Exact,
    /// Barnes-Hut quadtree.
    BarnesHut,
}

/// scikit-learn's `init='random'`: 1e-4 x standard normal, as f32.
pub fn random_init(n: usize, seed: u64) -> Array2<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, 2), || {
        let v: f64 = StandardNormal.sample(&mut rng);
        (1e-4 * v) as f32
    })
}

/// Reusable buffers of the gradient evaluation.
pub struct GradientState<'a> {
    affinities: &'a Affinities,
    repulsion: Repulsion,
    /// P as the optimiser sees it now (exaggerated during the first phase).
    values: Vec<f32>,
    /// Dense P padded to the coordinate stride (exact method).
    dense_padded: Vec<f32>,
    xs: Vec<f32>,
    ys: Vec<f32>,
    forces: Vec<Forces>,
    tree: Option<BarnesHut>,
}

impl<'a> GradientState<'a> {
    /// Buffers for `n` points.
    pub fn new(affinities: &'a Affinities, repulsion: Repulsion, theta: f64, n: usize) -> Self {
        let padded = n.div_ceil(PAD_TO) * PAD_TO;
        let (values, dense_padded) = match affinities {
            Affinities::Sparse(p) => (p.values.clone(), Vec::new()),
            Affinities::Dense(p) => {
                let mut d = vec![0f32; n * padded];
                for (i, row) in p.rows().into_iter().enumerate() {
                    for (o, &v) in d[i * padded..i * padded + n].iter_mut().zip(row) {
                        *o = v;
                    }
                }
                (Vec::new(), d)
            }
        };
        let tree = (repulsion == Repulsion::BarnesHut && matches!(affinities, Affinities::Sparse(_)))
            .then(|| BarnesHut::new(n, theta));
        Self {
            affinities,
            repulsion,
            values,
            dense_padded,
            xs: vec![PAD_COORD; padded],
            ys: vec![PAD_COORD; padded],
            forces: vec![[0.0; 5]; n],
            tree,
        }
    }

    /// Multiplies the working P by `factor` relative to the calibrated P (as `P *= 12`).
    pub fn set_exaggeration(&mut self, factor: f64) {
        match self.affinities {
            Affinities::Sparse(p) => {
                for (v, &base) in self.values.iter_mut().zip(&p.values) {
                    *v = (f64::from(base) * factor) as f32;
                }
            }
            Affinities::Dense(p) => {
                let n = p.nrows();
                let stride = self.xs.len();
                for (i, row) in p.rows().into_iter().enumerate() {
                    let out = &mut self.dense_padded[i * stride..i * stride + n];
                    for (o, &v) in out.iter_mut().zip(row) {
                        *o = (f64::from(v) * factor) as f32;
                    }
                }
            }
        }
    }

    /// Writes the gradient at `y` (n x 2 row-major) into `grad`; returns the KL divergence of
    /// the working P when `compute_error`.
    pub fn gradient(&mut self, y: &[f32], grad: &mut [f32], compute_error: bool) -> Option<f64> {
        for (i, p) in y.chunks_exact(2).enumerate() {
            self.xs[i] = p[0];
            self.ys[i] = p[1];
        }
        match self.affinities {
            Affinities::Dense(_) => {
                gradient::exact_dense(&self.xs, &self.ys, &self.dense_padded, &mut self.forces);
            }
            Affinities::Sparse(p) => {
                match (self.repulsion, self.tree.as_mut()) {
                    (Repulsion::BarnesHut, Some(tree)) => {
                        tree.build(y);
                        tree.repulsion(&mut self.forces);
                    }
                    _ => gradient::exact_repulsion(&self.xs, &self.ys, &mut self.forces),
                }
                attract_all(p, &self.values, y, &mut self.forces);
            }
        }
        // Z in f64, summed in point order: independent of the thread count.
        let z: f64 = self.forces.iter().map(|f| f64::from(f[4])).sum();
        let inv_z = (1.0 / z) as f32;
        for (g, f) in grad.chunks_exact_mut(2).zip(&self.forces) {
            g[0] = 4.0 * (f[0] - f[2] * inv_z);
            g[1] = 4.0 * (f[1] - f[3] * inv_z);
        }
        compute_error.then(|| match self.affinities {
            Affinities::Sparse(p) => gradient::kl_sparse(p, &self.values, y, z),
            Affinities::Dense(_) => gradient::kl_dense(&self.dense_padded, self.xs.len(), y, z),
        })
    }
}

fn attract_all(p: &SparseP, values: &[f32], y: &[f32], forces: &mut [Forces]) {
    forces
        .par_chunks_mut(ROWS_PER_TASK)
        .enumerate()
        .for_each(|(c, block)| {
            for (r, f) in block.iter_mut().enumerate() {
                let [ax, ay] = gradient::attraction(p, values, y, c * ROWS_PER_TASK + r);
                f[0] = ax;
                f[1] = ay;
            }
        });
}

/// Runs both phases from `init`.
pub fn run(
    init: Array2<f32>,
    affinities: &Affinities,
    repulsion: Repulsion,
    params: &TsneParams,
    mut progress: Option<&mut dyn FnMut(&TsneProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<Embedding, TsneError> {
    let n = init.nrows();
    let mut y = init;
    let mut state = GradientState::new(affinities, repulsion, params.theta, n);
    // `_fit`: learning_rate 'auto' = max(n / early_exaggeration / 4, 50).
    let learning_rate = params
        .learning_rate
        .unwrap_or_else(|| (n as f64 / params.early_exaggeration / 4.0).max(50.0))
        as f32;
    let mut grad = vec![0f32; 2 * n];
    let mut update = vec![0f32; 2 * n];
    let mut gains = vec![1f32; 2 * n];

    let n_iter = params.n_iter;
    let exploration = params.exaggeration_iter.min(n_iter);
    let phases = [
        (params.early_exaggeration, 0.5f32, exploration, exploration),
        (1.0, 0.8f32, n_iter, params.n_iter_without_progress),
    ];
    let mut it = 0usize; // next iteration to run
    let mut kl = f64::NAN;
    let mut last_error_exaggeration = 1.0;
    for (phase, &(exaggeration, momentum, max_iter, without_progress)) in
        phases.iter().enumerate()
    {
        if phase == 1 && it >= max_iter {
            break;
        }
        state.set_exaggeration(exaggeration);
        update.fill(0.0);
        gains.fill(1.0);
        let mut best_error = f64::MAX;
        let mut best_iter = it;
        while it < max_iter {
            let i = it;
            it += 1;
            let check = (i + 1) % N_ITER_CHECK == 0;
            let y_flat = y.as_slice().expect("contiguous");
            let error = state.gradient(y_flat, &mut grad, check || i == max_iter - 1);
            let y_flat = y.as_slice_mut().expect("contiguous");
            let mut grad_norm2 = 0f64;
            for (((g, u), gain), p) in grad
                .iter_mut()
                .zip(update.iter_mut())
                .zip(gains.iter_mut())
                .zip(y_flat.iter_mut())
            {
                *gain = if *u * *g < 0.0 {
                    *gain + 0.2
                } else {
                    *gain * 0.8
                }
                .max(MIN_GAIN);
                *g *= *gain;
                *u = momentum * *u - learning_rate * *g;
                *p += *u;
                grad_norm2 += f64::from(*g) * f64::from(*g);
            }
            if let Some(e) = error {
                kl = e;
                last_error_exaggeration = exaggeration;
            }
            // `_gradient_descent`'s convergence checks, every N_ITER_CHECK iterations.
            let mut stop = false;
            if check {
                let e = error.expect("computed on checks");
                if e < best_error {
                    best_error = e;
                    best_iter = i;
                } else if i - best_iter > without_progress {
                    stop = true;
                }
                stop |= grad_norm2.sqrt() <= params.min_grad_norm;
            }
            let last = stop || it == n_iter;
            if let Some(cb) = progress.as_deref_mut() {
                if last || (params.progress_every > 0 && it % params.progress_every == 0) {
                    cb(&TsneProgress {
                        iteration: it,
                        n_iter,
                        kl_divergence: error.map(|e| true_kl(e, exaggeration)),
                        embedding: y.view(),
                    });
                }
            }
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(Cancelled.into());
            }
            if stop {
                break;
            }
        }
    }
    Ok(Embedding {
        coords: y,
        kl_divergence: true_kl(kl, last_error_exaggeration),
        n_iter: it,
    })
}

/// KL of the un-exaggerated P from the error under P x e: with sum(P) = 1,
/// KL_e = e * KL + e * ln(e).
fn true_kl(error: f64, exaggeration: f64) -> f64 {
    if exaggeration == 1.0 {
        error
    } else {
        error / exaggeration - exaggeration.ln()
    }
}
