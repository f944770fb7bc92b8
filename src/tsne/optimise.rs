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
    /// P as the optimiser sees it now (exaggerated during the first phase).
    values: Vec<f32>,
    /// Dense P padded to the coordinate stride (exact method).
    dense_padded: Vec<f32>,
    xs: Vec<f32>,
    ys: Vec<f32>,
    forces: Vec<Forces>,
    tree: Option<BarnesHut>,
    exact: Option<gradient::ExactRepulsion>,
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
        let tree = (repulsion == Repulsion::BarnesHut
            && matches!(affinities, Affinities::Sparse(_)))
        .then(|| BarnesHut::new(n, theta));
        let exact = (repulsion == Repulsion::Exact && matches!(affinities, Affinities::Sparse(_)))
            .then(|| gradient::ExactRepulsion::new(n));
        Self {
            affinities,
            values,
            dense_padded,
            xs: vec![PAD_COORD; padded],
            ys: vec![PAD_COORD; padded],
            forces: vec![[0.0; 5]; n],
            tree,
            exact,
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
                let values = &self.values;
                if let Some(tree) = self.tree.as_mut() {
                    tree.build(y);
                    tree.forces(&mut self.forces, |i| gradient::attraction(p, values, y, i));
                } else if let Some(exact) = self.exact.as_mut() {
                    exact.compute(&self.xs, &self.ys, &mut self.forces);
                    attract_all(p, values, y, &mut self.forces);
                }
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
    for (phase, &(exaggeration, momentum, max_iter, without_progress)) in phases.iter().enumerate()
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
            let check = (i + 1).is_multiple_of(N_ITER_CHECK);
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
            if let Some(cb) = progress.as_deref_mut()
                && (last || (params.progress_every > 0 && it.is_multiple_of(params.progress_every)))
            {
                cb(&TsneProgress {
                    iteration: it,
                    n_iter,
                    kl_divergence: error.map(|e| true_kl(e, exaggeration)),
                    embedding: y.view(),
                });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsne::{affinity, neighbours};

    /// Gradient of a spread-out embedding with the given repulsion.
    fn gradient_with(repulsion: Repulsion, theta: f64) -> (Vec<f32>, f64) {
        let n = 500;
        let x = Array2::from_shape_fn((n, 8), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f32 + (i % 5) as f32 * 7.0
        });
        let p = Affinities::Sparse(affinity::sparse_p(&neighbours::knn(x.view(), 10), 3.0));
        // An embedding with clumps and gaps, like one mid-run.
        let y: Vec<f32> = (0..n)
            .flat_map(|i| {
                let c = (i % 7) as f32;
                let r = ((i * 37) % 101) as f32 / 101.0;
                let a = (i as f32) * 2.399;
                [5.0 * c + 3.0 * r * a.cos(), -4.0 * c + 3.0 * r * a.sin()]
            })
            .collect();
        let mut state = GradientState::new(&p, repulsion, theta, n);
        let mut grad = vec![0f32; 2 * n];
        let kl = state.gradient(&y, &mut grad, true).expect("error computed");
        (grad, kl)
    }

    fn relative_error(a: &[f32], b: &[f32]) -> f64 {
        let diff: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
        let norm: f64 = b.iter().map(|&y| f64::from(y).powi(2)).sum();
        (diff / norm).sqrt()
    }

    #[test]
    fn exact_and_barnes_hut_gradients_agree() {
        let (exact, kl_exact) = gradient_with(Repulsion::Exact, 0.5);
        let (bh, kl_bh) = gradient_with(Repulsion::BarnesHut, 0.5);
        let err = relative_error(&bh, &exact);
        assert!(err < 0.02, "theta 0.5: relative gradient error {err}");
        assert!(
            (kl_bh - kl_exact).abs() < 0.01 * kl_exact,
            "{kl_bh} vs {kl_exact}"
        );
        // theta = 0 opens every cell: the same sums up to rounding.
        let (bh0, kl0) = gradient_with(Repulsion::BarnesHut, 0.0);
        let err0 = relative_error(&bh0, &exact);
        assert!(err0 < 1e-4, "theta 0: relative gradient error {err0}");
        assert!((kl0 - kl_exact).abs() < 1e-5 * kl_exact);
        // And a coarse tree is measurably worse, so the comparison can fail.
        let (coarse, _) = gradient_with(Repulsion::BarnesHut, 3.0);
        assert!(relative_error(&coarse, &exact) > err);
    }

    #[test]
    fn exact_gradient_matches_a_direct_sum() {
        let (grad, _) = gradient_with(Repulsion::Exact, 0.5);
        // Recompute point 3's gradient from the definition in f64.
        let n = 500;
        let x = Array2::from_shape_fn((n, 8), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f32 + (i % 5) as f32 * 7.0
        });
        let p = affinity::sparse_p(&neighbours::knn(x.view(), 10), 3.0);
        let y: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let c = (i % 7) as f32;
                let r = ((i * 37) % 101) as f32 / 101.0;
                let a = (i as f32) * 2.399;
                [
                    f64::from(5.0 * c + 3.0 * r * a.cos()),
                    f64::from(-4.0 * c + 3.0 * r * a.sin()),
                ]
            })
            .collect();
        let w = |i: usize, j: usize| {
            1.0 / (1.0 + (y[i][0] - y[j][0]).powi(2) + (y[i][1] - y[j][1]).powi(2))
        };
        let z: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| w(i, j))
            .sum();
        let i = 3;
        let mut g = [0f64; 2];
        for j in (0..n).filter(|&j| j != i) {
            let pij = (p.indptr[i]..p.indptr[i + 1])
                .find(|&e| p.indices[e] as usize == j)
                .map_or(0.0, |e| f64::from(p.values[e]));
            let wij = w(i, j);
            for d in 0..2 {
                g[d] += 4.0 * (pij - wij / z) * wij * (y[i][d] - y[j][d]);
            }
        }
        for d in 0..2 {
            let got = f64::from(grad[2 * i + d]);
            assert!(
                (got - g[d]).abs() < 1e-4 * g[d].abs().max(1e-6),
                "{got} vs {}",
                g[d]
            );
        }
    }
}
