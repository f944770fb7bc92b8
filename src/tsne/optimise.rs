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
use super::fft::FftRepulsion;
use super::gradient::{self, Forces, PAD_COORD, PAD_TO, ROWS_PER_TASK};
use super::quadtree::BarnesHut;
use super::simd::Simd;
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
    /// FFT-accelerated interpolation (FIt-SNE).
    Fft,
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
    /// Attraction per point (Barnes-Hut path).
    att: Vec<[f32; 2]>,
    tree: Option<BarnesHut>,
    exact: Option<gradient::ExactRepulsion>,
    fft: Option<FftRepulsion>,
    simd: Simd,
}

impl<'a> GradientState<'a> {
    /// Buffers for `n` points.
    pub fn new(
        affinities: &'a Affinities,
        repulsion: Repulsion,
        theta: f64,
        n: usize,
        simd: Simd,
    ) -> Self {
        let simd = if simd.available() { simd } else { Simd::Scalar };
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
        .then(|| BarnesHut::new(n, theta, simd));
        let exact = (repulsion == Repulsion::Exact && matches!(affinities, Affinities::Sparse(_)))
            .then(|| gradient::ExactRepulsion::new(n));
        let fft = (repulsion == Repulsion::Fft && matches!(affinities, Affinities::Sparse(_)))
            .then(|| FftRepulsion::new(n));
        Self {
            affinities,
            values,
            dense_padded,
            xs: vec![PAD_COORD; padded],
            ys: vec![PAD_COORD; padded],
            forces: vec![[0.0; 5]; n],
            att: vec![[0.0; 2]; n],
            tree,
            exact,
            fft,
            simd,
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
                gradient::exact_dense(
                    &self.xs,
                    &self.ys,
                    &self.dense_padded,
                    &mut self.forces,
                    self.simd,
                );
            }
            Affinities::Sparse(p) => {
                let values = &self.values;
                if let Some(tree) = self.tree.as_mut() {
                    // The attraction (parallel, fixed tasks) overlaps the tree's serial build.
                    let (xs, ys, simd) = (&self.xs, &self.ys, self.simd);
                    let att = &mut self.att;
                    let rows = attraction_rows_per_task(p.n());
                    rayon::join(
                        || tree.build(y),
                        || gradient::attraction_rows(p, values, y, xs, ys, att, simd, rows),
                    );
                    let att = &self.att;
                    tree.forces(&mut self.forces, |i| att[i]);
                } else if let Some(fft) = self.fft.as_mut() {
                    fft.compute(y, &mut self.forces);
                    attract_all(
                        p,
                        values,
                        y,
                        &self.xs,
                        &self.ys,
                        &mut self.forces,
                        self.simd,
                    );
                } else if let Some(exact) = self.exact.as_mut() {
                    exact.compute(&self.xs, &self.ys, &mut self.forces, self.simd);
                    attract_all(
                        p,
                        values,
                        y,
                        &self.xs,
                        &self.ys,
                        &mut self.forces,
                        self.simd,
                    );
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
            Affinities::Sparse(p) => gradient::kl_sparse(p, &self.values, y, z, self.simd),
            Affinities::Dense(_) => gradient::kl_dense(&self.dense_padded, self.xs.len(), y, z),
        })
    }
}

/// Rows per attraction task: a few tasks at the notebook's 1,500 points (each fork costs more
/// than a 32-row task's work there), fixed by n alone.
fn attraction_rows_per_task(n: usize) -> usize {
    n.div_ceil(8).clamp(ROWS_PER_TASK, 1024)
}

fn attract_all(
    p: &SparseP,
    values: &[f32],
    y: &[f32],
    xs: &[f32],
    ys: &[f32],
    forces: &mut [Forces],
    simd: Simd,
) {
    forces
        .par_chunks_mut(ROWS_PER_TASK)
        .enumerate()
        .for_each(|(c, block)| {
            for (r, f) in block.iter_mut().enumerate() {
                let i = c * ROWS_PER_TASK + r;
                let [ax, ay] = gradient::attraction(p, values, y, xs, ys, i, simd);
                f[0] = ax;
                f[1] = ay;
            }
        });
}

/// One call of scikit-learn's `_gradient_descent`: P scaled by `exaggeration`, a fixed
/// `momentum`, run until iteration `max_iter` (counted over the whole run) or until a stopping
/// rule fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Factor on P (12 in the exploration phase, 1 after it).
    pub exaggeration: f64,
    /// Momentum of the updates (0.5, then 0.8).
    pub momentum: f32,
    /// The phase ends once this many iterations have run in total.
    pub max_iter: usize,
    /// Stop after this many iterations without a lower error.
    pub n_iter_without_progress: usize,
}

/// The state carried across phases: the embedding, the iteration count and the last error.
struct Descent<'a, 'p, 'c> {
    y: Array2<f32>,
    state: GradientState<'a>,
    learning_rate: f32,
    min_grad_norm: f64,
    progress_every: usize,
    n_iter: usize,
    progress: Option<&'p mut dyn FnMut(&TsneProgress<'_>)>,
    cancel: Option<&'c AtomicBool>,
    /// `order[r]` is the caller's point r of the optimiser's point r (None: the same).
    order: Option<&'c [u32]>,
    /// The embedding in the caller's order, for the progress callback.
    shown: Array2<f32>,
    /// Iterations run so far (the next iteration's index).
    it: usize,
    /// The last error computed, and the exaggeration it was computed under.
    error: Option<(f64, f64)>,
    /// Stop a phase once its error has settled ([`Convergence`]).
    convergence: Option<Convergence>,
}

/// A warm run's stopping rule: from iteration `after` on, the error is computed every `every`
/// iterations, and the run stops once it fell by less than `tolerance` of itself since the
/// previous such check. The error is a fixed-order sum (independent of the thread count), so
/// the stop is as reproducible as the layout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Convergence {
    /// Iterations between checks.
    pub every: usize,
    /// No stop before this many iterations (counted over the whole run).
    pub after: usize,
    /// Stop when (previous - current) < tolerance * current.
    pub tolerance: f64,
}

impl Descent<'_, '_, '_> {
    /// scikit-learn's `_gradient_descent`: updates and gains start afresh (zero and one).
    fn gradient_descent(&mut self, phase: &Phase) -> Result<(), TsneError> {
        let n = self.y.nrows();
        self.state.set_exaggeration(phase.exaggeration);
        let mut grad = vec![0f32; 2 * n];
        let mut update = vec![0f32; 2 * n];
        let mut gains = vec![1f32; 2 * n];
        let mut no_progress = NoProgress::new(self.it, phase.n_iter_without_progress);
        let mut settled: Option<f64> = None;
        while self.it < phase.max_iter {
            let i = self.it;
            self.it += 1;
            let check = (i + 1).is_multiple_of(N_ITER_CHECK);
            // The error of the layout this iteration starts from (as every check's).
            // Checks at `after - every` (the first error to compare with), `after`, ...
            let converge = self.convergence.filter(|c| {
                let first = c.after.saturating_sub(c.every);
                c.every > 0
                    && phase.exaggeration == 1.0
                    && i >= first
                    && (i - first).is_multiple_of(c.every)
            });
            let y_flat = self.y.as_slice_mut().expect("contiguous");
            let state = &mut self.state;
            let learning_rate = self.learning_rate;
            // One entry into the thread pool per iteration: the parallel loops inside start from
            // a pool thread, not from this one (each entry from outside wakes and waits).
            let (error, grad_norm2) = rayon::scope(|_| {
                let error = state.gradient(
                    y_flat,
                    &mut grad,
                    check || converge.is_some() || i == phase.max_iter - 1,
                );
                let grad_norm2 = step(
                    y_flat,
                    &mut grad,
                    &mut update,
                    &mut gains,
                    phase.momentum,
                    learning_rate,
                );
                (error, grad_norm2)
            });
            if let Some(e) = error {
                self.error = Some((e, phase.exaggeration));
            }
            let mut stop = false;
            if check {
                stop = no_progress.stalled(i, error.expect("computed on checks"))
                    || grad_norm2.sqrt() <= self.min_grad_norm;
            }
            if let (Some(c), Some(e)) = (converge, error) {
                if let Some(before) = settled
                    && before - e < c.tolerance * e
                {
                    stop = true;
                }
                settled = Some(e);
            }
            let last = stop || self.it == self.n_iter;
            if let Some(cb) = self.progress.as_deref_mut()
                && (last
                    || (self.progress_every > 0 && self.it.is_multiple_of(self.progress_every)))
            {
                let embedding = match self.order {
                    Some(order) => {
                        unpermute(&self.y, order, &mut self.shown);
                        self.shown.view()
                    }
                    None => self.y.view(),
                };
                cb(&TsneProgress {
                    iteration: self.it,
                    n_iter: self.n_iter,
                    kl_divergence: error.map(|e| true_kl(e, phase.exaggeration)),
                    embedding,
                });
            }
            if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(Cancelled.into());
            }
            if stop {
                break;
            }
        }
        Ok(())
    }
}

/// `out[order[r]] = y[r]`.
fn unpermute(y: &Array2<f32>, order: &[u32], out: &mut Array2<f32>) {
    for (row, &o) in y.rows().into_iter().zip(order) {
        out.row_mut(o as usize).assign(&row);
    }
}

/// `_gradient_descent`'s progress rule: the best error so far and where it was reached.
#[derive(Debug, Clone, Copy)]
struct NoProgress {
    best_error: f64,
    best_iter: usize,
    patience: usize,
}

impl NoProgress {
    fn new(start: usize, patience: usize) -> Self {
        Self {
            best_error: f64::MAX,
            best_iter: start,
            patience,
        }
    }

    /// Records the error of iteration `i`; true when more than `patience` iterations have
    /// passed since the last improvement (scikit-learn: `elif i - best_iter >
    /// n_iter_without_progress: break`).
    fn stalled(&mut self, i: usize, error: f64) -> bool {
        if error < self.best_error {
            self.best_error = error;
            self.best_iter = i;
            false
        } else {
            i - self.best_iter > self.patience
        }
    }
}

/// One update with delta-bar-delta gains (`_gradient_descent`): returns the squared norm of the
/// gain-scaled gradient. Branch-free over fixed lanes so that it vectorises; the norm is summed
/// per lane and the lanes in a fixed order (it only decides the `min_grad_norm` stop).
fn step(
    y: &mut [f32],
    grad: &mut [f32],
    update: &mut [f32],
    gains: &mut [f32],
    momentum: f32,
    learning_rate: f32,
) -> f64 {
    const L: usize = 8;
    let mut lanes = [0f64; L];
    let one = |g: &mut f32, u: &mut f32, gain: &mut f32, p: &mut f32, acc: &mut f64| {
        let inc = *u * *g < 0.0;
        *gain = if inc { *gain + 0.2 } else { *gain * 0.8 }.max(MIN_GAIN);
        *g *= *gain;
        *u = momentum * *u - learning_rate * *g;
        *p += *u;
        *acc += f64::from(*g) * f64::from(*g);
    };
    let whole = y.len() - y.len() % L;
    for (((g, u), gain), p) in grad[..whole]
        .chunks_exact_mut(L)
        .zip(update[..whole].chunks_exact_mut(L))
        .zip(gains[..whole].chunks_exact_mut(L))
        .zip(y[..whole].chunks_exact_mut(L))
    {
        for l in 0..L {
            one(&mut g[l], &mut u[l], &mut gain[l], &mut p[l], &mut lanes[l]);
        }
    }
    for k in whole..y.len() {
        one(
            &mut grad[k],
            &mut update[k],
            &mut gains[k],
            &mut y[k],
            &mut lanes[k - whole],
        );
    }
    lanes.iter().sum()
}

/// scikit-learn's `learning_rate='auto'`: max(n / early_exaggeration / 4, 50).
pub fn auto_learning_rate(n: usize, early_exaggeration: f64) -> f64 {
    (n as f64 / early_exaggeration / 4.0).max(50.0)
}

/// Runs the two phases of `_tsne` from `init`: exploration (P x early_exaggeration, momentum
/// 0.5, `exaggeration_iter` iterations, stopped early only by its own checks) then the rest
/// (P, momentum 0.8, up to `n_iter` in total).
pub fn run(
    init: Array2<f32>,
    affinities: &Affinities,
    repulsion: Repulsion,
    params: &TsneParams,
    order: Option<&[u32]>,
    progress: Option<&mut dyn FnMut(&TsneProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<Embedding, TsneError> {
    run_until(
        init, affinities, repulsion, params, order, progress, cancel, None,
    )
}

/// [`run`], stopping the un-exaggerated phase by `convergence` as well.
#[expect(clippy::too_many_arguments, reason = "run's, plus the stopping rule")]
pub fn run_until(
    init: Array2<f32>,
    affinities: &Affinities,
    repulsion: Repulsion,
    params: &TsneParams,
    order: Option<&[u32]>,
    progress: Option<&mut dyn FnMut(&TsneProgress<'_>)>,
    cancel: Option<&AtomicBool>,
    convergence: Option<Convergence>,
) -> Result<Embedding, TsneError> {
    let n = init.nrows();
    let learning_rate = params
        .learning_rate
        .unwrap_or_else(|| auto_learning_rate(n, params.early_exaggeration));
    let mut descent = Descent {
        y: init,
        state: GradientState::new(affinities, repulsion, params.theta, n, Simd::current()),
        learning_rate: learning_rate as f32,
        min_grad_norm: params.min_grad_norm,
        progress_every: params.progress_every,
        n_iter: params.n_iter,
        progress,
        cancel,
        order,
        shown: Array2::zeros(if order.is_some() { (n, 2) } else { (0, 2) }),
        it: 0,
        error: None,
        convergence,
    };
    let exploration = params.exaggeration_iter.min(params.n_iter);
    descent.gradient_descent(&Phase {
        exaggeration: params.early_exaggeration,
        momentum: 0.5,
        max_iter: exploration,
        // `_tsne`: the exploration phase checks progress over its own length.
        n_iter_without_progress: exploration,
    })?;
    if descent.it < params.n_iter {
        descent.gradient_descent(&Phase {
            exaggeration: 1.0,
            momentum: 0.8,
            max_iter: params.n_iter,
            n_iter_without_progress: params.n_iter_without_progress,
        })?;
    }
    let (error, exaggeration) = descent.error.unwrap_or((f64::NAN, 1.0));
    let coords = match order {
        Some(order) => {
            let mut out = Array2::zeros((n, 2));
            unpermute(&descent.y, order, &mut out);
            out
        }
        None => descent.y,
    };
    Ok(Embedding {
        coords,
        kl_divergence: true_kl(error, exaggeration),
        n_iter: descent.it,
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
        let mut state = GradientState::new(&p, repulsion, theta, n, Simd::detect());
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
    fn exact_and_fft_gradients_agree() {
        let (exact, kl_exact) = gradient_with(Repulsion::Exact, 0.5);
        let (fft, kl_fft) = gradient_with(Repulsion::Fft, 0.5);
        let err = relative_error(&fft, &exact);
        // About Barnes-Hut's accuracy at theta 0.5 (under 0.02 above); a wrong sign, factor or
        // Z would be off by far more.
        assert!(err < 0.04, "relative gradient error {err}");
        assert!(
            (kl_fft - kl_exact).abs() < 0.01 * kl_exact,
            "{kl_fft} vs {kl_exact}"
        );
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

    /// A spread-out sample of 8-d points and its nearest-neighbour P (perplexity 3).
    fn sample_p(n: usize) -> SparseP {
        let x = Array2::from_shape_fn((n, 8), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f32 + (i % 5) as f32 * 7.0
        });
        affinity::sparse_p(&neighbours::knn(x.view(), 10), 3.0)
    }

    /// P as a dense f64 matrix.
    fn dense_of(p: &SparseP) -> Vec<Vec<f64>> {
        let n = p.n();
        let mut d = vec![vec![0f64; n]; n];
        for (i, row) in d.iter_mut().enumerate() {
            for e in p.indptr[i]..p.indptr[i + 1] {
                row[p.indices[e] as usize] = f64::from(p.values[e]);
            }
        }
        d
    }

    /// The t-SNE gradient of KL(scale * P || Q) at `y` by its definition, in f64 (van der
    /// Maaten 2014, eq. 5 with scikit-learn's factor 4).
    fn direct_gradient(p: &[Vec<f64>], scale: f64, y: &[f32]) -> Vec<f64> {
        let n = p.len();
        let yy: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        let w = |i: usize, j: usize| {
            1.0 / (1.0 + (yy[2 * i] - yy[2 * j]).powi(2) + (yy[2 * i + 1] - yy[2 * j + 1]).powi(2))
        };
        let mut z = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    z += w(i, j);
                }
            }
        }
        let mut g = vec![0f64; 2 * n];
        for i in 0..n {
            for j in (0..n).filter(|&j| j != i) {
                let wij = w(i, j);
                let c = 4.0 * (scale * p[i][j] - wij / z) * wij;
                g[2 * i] += c * (yy[2 * i] - yy[2 * j]);
                g[2 * i + 1] += c * (yy[2 * i + 1] - yy[2 * j + 1]);
            }
        }
        g
    }

    /// KL(P || Q) at `y` by its definition, in f64, over the non-zero p_ij.
    fn direct_kl(p: &[Vec<f64>], y: &[f32]) -> f64 {
        let n = p.len();
        let yy: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        let w = |i: usize, j: usize| {
            1.0 / (1.0 + (yy[2 * i] - yy[2 * j]).powi(2) + (yy[2 * i + 1] - yy[2 * j + 1]).powi(2))
        };
        let z: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| w(i, j))
            .sum();
        let mut kl = 0.0;
        for (i, row) in p.iter().enumerate() {
            for (j, &pij) in row.iter().enumerate() {
                if j != i && pij > 0.0 {
                    kl += pij * (pij / (w(i, j) / z)).ln();
                }
            }
        }
        kl
    }

    fn max_abs(v: &[f64]) -> f64 {
        v.iter().fold(0.0, |m, x| m.max(x.abs()))
    }

    /// Every embedding of a run: `out[t]` after iteration t, `out[0]` the start.
    fn trajectory(
        p: &Affinities,
        repulsion: Repulsion,
        params: &TsneParams,
        init: Array2<f32>,
    ) -> (Vec<Vec<f32>>, Embedding) {
        let mut ys = vec![init.as_slice().unwrap().to_vec()];
        let mut record = |pr: &TsneProgress<'_>| {
            assert_eq!(pr.iteration, ys.len());
            ys.push(pr.embedding.as_slice().unwrap().to_vec());
        };
        let params = TsneParams {
            progress_every: 1,
            ..params.clone()
        };
        let e = run(init, p, repulsion, &params, None, Some(&mut record), None).expect("runs");
        (ys, e)
    }

    /// The update of iteration t predicted from the observed previous update, with gains that
    /// are known there (`gain_prev`: 1 after a reset, as at a phase's start).
    fn check_update(
        ys: &[Vec<f32>],
        t: usize,
        grad: &[f64],
        momentum: f64,
        learning_rate: f64,
        gain_prev: f64,
        fresh: bool,
    ) {
        let obs: Vec<f64> = ys[t]
            .iter()
            .zip(&ys[t - 1])
            .map(|(&a, &b)| f64::from(a) - f64::from(b))
            .collect();
        let pred: Vec<f64> = (0..grad.len())
            .map(|c| {
                let prev = if fresh {
                    0.0
                } else {
                    f64::from(ys[t - 1][c]) - f64::from(ys[t - 2][c])
                };
                // `_gradient_descent`: inc = update * grad < 0.
                let gain = if prev * grad[c] < 0.0 {
                    gain_prev + 0.2
                } else {
                    gain_prev * 0.8
                };
                momentum * prev - learning_rate * gain * grad[c]
            })
            .collect();
        let diff: Vec<f64> = obs.iter().zip(&pred).map(|(a, b)| a - b).collect();
        let scale = max_abs(&pred);
        assert!(scale > 0.0);
        assert!(
            max_abs(&diff) <= 1e-3 * scale,
            "iteration {t}: update off by {} (scale {scale})",
            max_abs(&diff)
        );
    }

    #[test]
    fn schedule_follows_scikit_learn_step_by_step() {
        let sp = sample_p(600);
        let dense = dense_of(&sp);
        let p = Affinities::Sparse(sp);
        // 'auto' = max(600 / 2 / 4, 50) = 75: above the floor.
        let params = TsneParams {
            n_iter: 252,
            early_exaggeration: 2.0,
            min_grad_norm: 0.0,
            ..TsneParams::default()
        };
        let lr = 75.0;
        assert_eq!(auto_learning_rate(600, 2.0), lr);
        let (ys, e) = trajectory(&p, Repulsion::Exact, &params, random_init(600, 1));
        assert_eq!(e.n_iter, 252);
        // Iteration 1: zero update, gains 1 -> 0.8 (update * grad is 0, not negative).
        check_update(
            &ys,
            1,
            &direct_gradient(&dense, 2.0, &ys[0]),
            0.5,
            lr,
            1.0,
            true,
        );
        // Iteration 2: momentum 0.5, gains 0.8 -> 1.0 or 0.64 by the sign rule.
        check_update(
            &ys,
            2,
            &direct_gradient(&dense, 2.0, &ys[1]),
            0.5,
            lr,
            0.8,
            false,
        );
        // Iteration 251: the 250 exaggerated iterations are over; P un-exaggerated, update and
        // gains reset.
        check_update(
            &ys,
            251,
            &direct_gradient(&dense, 1.0, &ys[250]),
            0.8,
            lr,
            1.0,
            true,
        );
        // Iteration 252: momentum 0.8.
        check_update(
            &ys,
            252,
            &direct_gradient(&dense, 1.0, &ys[251]),
            0.8,
            lr,
            0.8,
            false,
        );

        // The floor of 'auto': max(600 / 12 / 4, 50) = 50.
        let params = TsneParams {
            n_iter: 1,
            ..TsneParams::default()
        };
        assert_eq!(auto_learning_rate(600, 12.0), 50.0);
        let (ys, _) = trajectory(&p, Repulsion::Exact, &params, random_init(600, 2));
        check_update(
            &ys,
            1,
            &direct_gradient(&dense, 12.0, &ys[0]),
            0.5,
            50.0,
            1.0,
            true,
        );
    }

    #[test]
    fn a_wrong_schedule_would_be_caught() {
        // Negative control of the check above: the same run against a 1% different learning
        // rate, and against the exaggerated P after the switch, must fail.
        let sp = sample_p(300);
        let dense = dense_of(&sp);
        let p = Affinities::Sparse(sp);
        let params = TsneParams {
            n_iter: 252,
            ..TsneParams::default()
        };
        let (ys, _) = trajectory(&p, Repulsion::Exact, &params, random_init(300, 3));
        let g1 = direct_gradient(&dense, 12.0, &ys[0]);
        assert!(
            std::panic::catch_unwind(|| check_update(&ys, 1, &g1, 0.5, 50.5, 1.0, true)).is_err()
        );
        let g251 = direct_gradient(&dense, 12.0, &ys[250]);
        assert!(
            std::panic::catch_unwind(|| check_update(&ys, 251, &g251, 0.8, 50.0, 1.0, true))
                .is_err()
        );
    }

    #[test]
    fn no_progress_rule_counts_from_the_last_improvement() {
        // Errors at the checks i = 49, 99, ...: equal is no improvement, and the rule is
        // strict (`i - best_iter > n_iter_without_progress`).
        let errors = [5.0, 4.0, 4.5, 4.0, 3.9, 4.0, 4.0, 4.0, 3.0];
        let mut rule = NoProgress::new(0, 100);
        let stalled: Vec<bool> = errors
            .iter()
            .enumerate()
            .map(|(c, &e)| rule.stalled(50 * c + 49, e))
            .collect();
        // Best at 99 until 249 (3.9); 399 - 249 = 150 > 100 stops; 349 - 249 = 100 does not.
        assert_eq!(
            stalled,
            [false, false, false, false, false, false, false, true, false]
        );
        assert_eq!(rule.best_iter, 449);
    }

    #[test]
    fn min_grad_norm_and_patience_stop_each_phase() {
        let p = Affinities::Sparse(sample_p(200));
        // A gradient norm floor above any gradient: each phase stops at its first check.
        let params = TsneParams {
            min_grad_norm: 1e9,
            ..TsneParams::default()
        };
        let e = run(
            random_init(200, 0),
            &p,
            Repulsion::BarnesHut,
            &params,
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(e.n_iter, 100);
        // No floor: the full 1,000.
        let params = TsneParams {
            min_grad_norm: 0.0,
            ..TsneParams::default()
        };
        let e = run(
            random_init(200, 0),
            &p,
            Repulsion::BarnesHut,
            &params,
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(e.n_iter, 1000);
    }

    #[test]
    fn reported_kl_is_the_direct_sum() {
        let sp = sample_p(300);
        let dense = dense_of(&sp);
        let p = Affinities::Sparse(sp);
        // Ends after the exaggeration (P) and during it (12 P, reported for P).
        for (n_iter, repulsion) in [
            (300, Repulsion::BarnesHut),
            (300, Repulsion::Exact),
            (100, Repulsion::Exact),
        ] {
            let params = TsneParams {
                n_iter,
                ..TsneParams::default()
            };
            let (ys, e) = trajectory(&p, repulsion, &params, random_init(300, 4));
            // The error of the last iteration is that of the embedding it started from.
            let want = direct_kl(&dense, &ys[n_iter - 1]);
            let tol = if repulsion == Repulsion::BarnesHut {
                1e-2
            } else {
                1e-4
            };
            assert!(
                (e.kl_divergence - want).abs() <= tol * want,
                "{repulsion:?} after {n_iter}: reported {}, direct sum {want}",
                e.kl_divergence
            );
        }
        // The dense (exact-method) P: every pair, floored at machine epsilon.
        let x = Array2::from_shape_fn((150, 5), |(i, j)| ((i * 13 + j * 7) % 19) as f32);
        let dp = affinity::dense_p(x.view(), 5.0);
        let dense: Vec<Vec<f64>> = dp
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|&v| f64::from(v)).collect())
            .collect();
        let p = Affinities::Dense(dp);
        let params = TsneParams {
            n_iter: 300,
            ..TsneParams::default()
        };
        let (ys, e) = trajectory(&p, Repulsion::Exact, &params, random_init(150, 5));
        let want = direct_kl(&dense, &ys[299]);
        assert!(
            (e.kl_divergence - want).abs() <= 1e-4 * want,
            "dense: reported {}, direct sum {want}",
            e.kl_divergence
        );
    }

    #[test]
    fn every_kernel_path_matches_the_direct_sum() {
        // 300 points: not a multiple of the tile or lane width, so padding is exercised.
        let n = 300;
        let sp = sample_p(n);
        let sparse_dense = dense_of(&sp);
        let x = Array2::from_shape_fn((n, 5), |(i, j)| ((i * 13 + j * 7) % 19) as f32);
        let dp = affinity::dense_p(x.view(), 5.0);
        let dense_dense: Vec<Vec<f64>> = dp
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|&v| f64::from(v)).collect())
            .collect();
        let sparse = Affinities::Sparse(sp);
        let dense = Affinities::Dense(dp);
        let y: Vec<f32> = (0..n)
            .flat_map(|i| {
                let c = (i % 7) as f32;
                let a = (i as f32) * 2.399;
                [5.0 * c + 2.0 * a.cos(), -4.0 * c + 2.0 * a.sin()]
            })
            .collect();
        let cases = [
            ("dense P, exact", &dense, &dense_dense, Repulsion::Exact),
            (
                "sparse P, exact tiles",
                &sparse,
                &sparse_dense,
                Repulsion::Exact,
            ),
            (
                "sparse P, Barnes-Hut theta 0",
                &sparse,
                &sparse_dense,
                Repulsion::BarnesHut,
            ),
        ];
        let levels: Vec<Simd> = Simd::ALL.into_iter().filter(|s| s.available()).collect();
        for (name, p, pd, repulsion) in cases {
            let want = direct_gradient(pd, 1.0, &y);
            let mut by_level = Vec::new();
            for &simd in &levels {
                let mut state = GradientState::new(p, repulsion, 0.0, n, simd);
                let mut grad = vec![0f32; 2 * n];
                state.gradient(&y, &mut grad, false);
                let diff: Vec<f64> = grad
                    .iter()
                    .zip(&want)
                    .map(|(&g, w)| f64::from(g) - w)
                    .collect();
                assert!(
                    max_abs(&diff) <= 1e-4 * max_abs(&want),
                    "{name}, {simd:?}: off by {} of {}",
                    max_abs(&diff),
                    max_abs(&want)
                );
                by_level.push(grad);
            }
            // The paths agree with each other more closely than with the f64 sum.
            for g in &by_level[1..] {
                let d: Vec<f64> = g
                    .iter()
                    .zip(&by_level[0])
                    .map(|(a, b)| f64::from(a - b))
                    .collect();
                assert!(max_abs(&d) <= 1e-5 * max_abs(&want), "{name}: paths differ");
            }
        }
    }
}
