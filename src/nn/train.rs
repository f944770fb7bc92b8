//! Training as scikit-learn's `MLPClassifier(solver="adam")` does it: minibatches of shuffled
//! rows, the loss of `_backprop` (mean cross-entropy plus `alpha / 2 * sum(W^2) / batch`), Adam
//! with bias correction as `AdamOptimizer`, and the stopping rule of
//! `_update_no_improvement_count` on the training loss.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView2, Axis, Zip, s};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Mlp;
use super::linalg::gemm;
use super::sparse;
use crate::data::Dataset;

/// The most epochs a training runs unless told otherwise (scikit-learn's `max_iter`): the one
/// place of that default.
pub const DEFAULT_MAX_EPOCHS: usize = 200;

/// Hyper-parameters, with scikit-learn's defaults for `MLPClassifier(hidden_layer_sizes=(512,
/// 256))`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainParams {
    /// Units of each hidden layer, first to last.
    pub hidden: Vec<usize>,
    /// The most epochs (passes over the training rows); `max_iter` in scikit-learn.
    pub max_epochs: usize,
    /// Rows per minibatch (the last one of an epoch may be smaller).
    pub batch_size: usize,
    /// Adam's step size; `learning_rate_init` in scikit-learn.
    pub learning_rate: f32,
    /// Adam's decay of the first moment.
    pub beta1: f32,
    /// Adam's decay of the second moment.
    pub beta2: f32,
    /// Adam's guard against division by zero.
    pub epsilon: f32,
    /// L2 penalty on the weights (not the biases).
    pub alpha: f32,
    /// The least improvement of the training loss that counts as one.
    pub tol: f32,
    /// Stop after more than this many epochs in a row without an improvement of `tol`.
    pub n_iter_no_change: usize,
    /// Shuffle the rows every epoch.
    pub shuffle: bool,
    /// Seed of the initial weights and of the shuffles.
    pub seed: u64,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            hidden: vec![512, 256],
            max_epochs: DEFAULT_MAX_EPOCHS,
            batch_size: 200,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            alpha: 1e-4,
            tol: 1e-4,
            n_iter_no_change: 10,
            shuffle: true,
            seed: 0,
        }
    }
}

/// What one epoch did, handed to the caller's callback after each epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochMetrics {
    /// Epochs completed so far, counting from 1.
    pub epoch: usize,
    /// scikit-learn's `loss_`: the minibatch losses (penalty included) weighted by batch size.
    pub train_loss: f64,
    /// Share of training rows classified right by the minibatch forward passes of this epoch
    /// (each row seen once, before its batch's update; no extra pass over the data).
    pub train_accuracy: f64,
    /// Mean cross-entropy on the test rows after the epoch (no penalty term); None without test
    /// data.
    pub test_loss: Option<f64>,
    /// Share of test rows classified right after the epoch; None without test data.
    pub test_accuracy: Option<f64>,
    /// Seconds spent on this epoch's minibatches (the test evaluation is not counted).
    pub seconds: f64,
    /// Training rows per second of `seconds`.
    pub samples_per_sec: f64,
}

/// Why `Trainer::run` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The training loss stopped improving (scikit-learn's rule).
    Converged,
    /// `max_epochs` epochs are done.
    MaxEpochs,
    /// The cancel flag was raised; `run` again resumes at the next minibatch.
    Cancelled,
    /// The training loss of epoch `epoch` is not finite (NaN or infinite): the weights are
    /// useless, and `run` refuses to go on.
    Diverged {
        /// The epoch (counting from 1) whose loss was not finite.
        epoch: usize,
    },
}

/// Adam's moments for every parameter, and its step count (`t` in Kingma and Ba 2015).
#[derive(Debug, Clone)]
struct Adam {
    m_coefs: Vec<Array2<f32>>,
    v_coefs: Vec<Array2<f32>>,
    m_intercepts: Vec<Array1<f32>>,
    v_intercepts: Vec<Array1<f32>>,
    t: i32,
}

impl Adam {
    fn new(mlp: &Mlp) -> Adam {
        let zeros2 = |c: &Array2<f32>| Array2::zeros(c.raw_dim());
        let zeros1 = |c: &Array1<f32>| Array1::zeros(c.raw_dim());
        Adam {
            m_coefs: mlp.coefs.iter().map(zeros2).collect(),
            v_coefs: mlp.coefs.iter().map(zeros2).collect(),
            m_intercepts: mlp.intercepts.iter().map(zeros1).collect(),
            v_intercepts: mlp.intercepts.iter().map(zeros1).collect(),
            t: 0,
        }
    }
}

/// An epoch that has started and not finished: where a cancelled run resumes.
#[derive(Debug, Clone)]
struct EpochProgress {
    next_batch: usize,
    loss_sum: f64,
    correct: usize,
    seconds: f64,
}

/// Buffers for one minibatch, allocated once per batch size.
#[derive(Debug, Clone)]
pub struct Workspace {
    capacity: usize,
    /// The gathered input rows.
    x: Array2<f32>,
    /// Output of each layer after its activation (ReLU, or softmax for the last).
    activations: Vec<Array2<f32>>,
    /// Gradient of the loss with respect to each layer's pre-activation.
    deltas: Vec<Array2<f32>>,
    /// Gradient of the loss with respect to each weight matrix.
    pub coef_grads: Vec<Array2<f32>>,
    /// Gradient of the loss with respect to each bias vector.
    pub intercept_grads: Vec<Array1<f32>>,
}

impl Workspace {
    /// Buffers for batches of at most `capacity` rows through `mlp`.
    pub fn new(mlp: &Mlp, capacity: usize) -> Workspace {
        let sizes = mlp.layer_sizes();
        Workspace {
            capacity,
            x: Array2::zeros((capacity, sizes[0])),
            activations: sizes[1..]
                .iter()
                .map(|&u| Array2::zeros((capacity, u)))
                .collect(),
            deltas: sizes[1..]
                .iter()
                .map(|&u| Array2::zeros((capacity, u)))
                .collect(),
            coef_grads: mlp
                .coefs
                .iter()
                .map(|c| Array2::zeros(c.raw_dim()))
                .collect(),
            intercept_grads: mlp
                .intercepts
                .iter()
                .map(|c| Array1::zeros(c.raw_dim()))
                .collect(),
        }
    }
}

/// Whether the first layer should skip zero inputs (see `sparse`).
fn use_sparse_input(x: ArrayView2<f32>) -> bool {
    sparse::worth_it(x)
}

/// Forward pass of `x` (at most `work.capacity` rows) into `work.activations`; with
/// `sparse_input` the first layer skips the zeros of `x` (which must be in standard layout).
fn forward(mlp: &Mlp, x: ArrayView2<f32>, work: &mut Workspace, sparse_input: bool) {
    let rows = x.nrows();
    let last = mlp.coefs.len() - 1;
    for i in 0..=last {
        let (done, rest) = work.activations.split_at_mut(i);
        let input = if i == 0 {
            x.view()
        } else {
            done[i - 1].slice(s![..rows, ..])
        };
        let mut z = rest[0].slice_mut(s![..rows, ..]);
        if i == 0 && sparse_input {
            let bias = mlp.intercepts[0].as_slice().expect("standard layout");
            sparse::forward(input, mlp.coefs[0].view(), bias, z.view_mut());
        } else {
            // z = input @ W + b: fill with the bias, then accumulate the product (beta = 1).
            for mut row in z.rows_mut() {
                row.assign(&mlp.intercepts[i]);
            }
            gemm(1.0, input, mlp.coefs[i].view(), 1.0, z.view_mut());
        }
        if i == last {
            for mut row in z.rows_mut() {
                softmax_row(row.as_slice_mut().expect("rows of a standard layout"));
            }
        } else {
            z.mapv_inplace(|v| v.max(0.0));
        }
    }
}

fn softmax_row(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// scikit-learn's `log_loss` clips probabilities to [eps, 1 - eps] of the data's float type.
fn neg_log_prob(p: f32) -> f64 {
    -f64::from(p.clamp(f32::EPSILON, 1.0 - f32::EPSILON)).ln()
}

/// Elements per chunk of the parallel passes over the parameters (Adam, the sum of squares):
/// fixed, so that every sum is split the same way whatever the thread count.
const CHUNK: usize = 1 << 14;

/// Independent f64 accumulators of a sum of squares within a chunk (element `i` of the chunk
/// goes to `i % SQ_LANES`), so that the sum vectorises; they are added in order at the end.
const SQ_LANES: usize = 32;

/// Sum of squares of one chunk, in f64, in `SQ_LANES` partial sums added in order.
fn sum_squares_chunk(chunk: &[f32]) -> f64 {
    let mut acc = [0.0f64; SQ_LANES];
    let mut blocks = chunk.chunks_exact(SQ_LANES);
    for b in &mut blocks {
        for (a, &w) in acc.iter_mut().zip(b) {
            *a += f64::from(w) * f64::from(w);
        }
    }
    for (a, &w) in acc.iter_mut().zip(blocks.remainder()) {
        *a += f64::from(w) * f64::from(w);
    }
    acc.iter().sum()
}

/// Sum of squared weights, in f64, summed over fixed chunks then in order: the same value
/// whatever the thread count, and the same as the one `adam_update` returns.
fn sum_squared_weights(mlp: &Mlp) -> f64 {
    mlp.coefs
        .iter()
        .map(|c| {
            let flat = c.as_slice().expect("weights in standard layout");
            let partials: Vec<f64> = flat.par_chunks(CHUNK).map(sum_squares_chunk).collect();
            partials.iter().sum::<f64>()
        })
        .sum()
}

/// scikit-learn's `_backprop` on one minibatch: fills `work.coef_grads` and
/// `work.intercept_grads` with the gradient of the returned loss (mean cross-entropy plus
/// `alpha / 2 * sum(W^2) / rows`), and returns that loss and the number of rows whose most
/// probable class was the label.
///
/// `sum_sq` is `sum_squared_weights(mlp)`.
fn backprop(
    mlp: &Mlp,
    x: ArrayView2<f32>,
    labels: &[u8],
    alpha: f32,
    sum_sq: f64,
    work: &mut Workspace,
    sparse_input: bool,
) -> (f64, usize) {
    let rows = x.nrows();
    assert_eq!(rows, labels.len(), "one label per row");
    assert!(
        rows <= work.capacity,
        "batch of {rows} rows exceeds the workspace"
    );
    // The first layer's gradient terms depend on x only: built while the forward pass runs.
    let column_groups = if sparse_input {
        let n1 = mlp.coefs[0].ncols();
        let (groups, ()) = rayon::join(
            || sparse::ColumnGroups::new(x, n1),
            || forward(mlp, x, work, sparse_input),
        );
        Some(groups)
    } else {
        forward(mlp, x, work, sparse_input);
        None
    };
    let last = mlp.coefs.len() - 1;

    // Loss, accuracy and delta[last] = probabilities - one-hot labels.
    let mut cross_entropy = 0.0;
    let mut correct = 0;
    {
        let probs = work.activations[last].slice(s![..rows, ..]);
        let mut delta = work.deltas[last].slice_mut(s![..rows, ..]);
        for ((p, mut d), &y) in probs.rows().into_iter().zip(delta.rows_mut()).zip(labels) {
            let y = usize::from(y);
            assert!(y < p.len(), "label {y} is not a class of this model");
            cross_entropy += neg_log_prob(p[y]);
            if super::argmax(p.as_slice().expect("standard layout")) == y {
                correct += 1;
            }
            d.assign(&p);
            d[y] -= 1.0;
        }
    }
    // Row counts are far below 2^52: exact in f64.
    #[expect(clippy::cast_precision_loss)]
    let n = rows as f64;
    let loss = cross_entropy / n + 0.5 * f64::from(alpha) * sum_sq / n;

    #[expect(clippy::cast_precision_loss)]
    let inv_n = 1.0 / rows as f32;
    let Workspace {
        activations,
        deltas,
        coef_grads,
        intercept_grads,
        ..
    } = work;
    for i in (0..=last).rev() {
        let (lower, upper) = deltas.split_at_mut(i);
        let delta = upper[0].slice(s![..rows, ..]);
        let input = if i == 0 {
            x.view()
        } else {
            activations[i - 1].slice(s![..rows, ..])
        };
        let grad = &mut coef_grads[i];
        let ig = &mut intercept_grads[i];
        // The parameter gradients of layer i and the deltas of layer i - 1 are independent:
        // computed side by side.
        let mut gradients = || {
            // coef_grads[i] = (input^T @ delta + alpha * W) / rows (`_compute_loss_grad`).
            if let (0, Some(groups)) = (i, &column_groups) {
                sparse::weight_gradient_grouped(
                    groups,
                    delta,
                    inv_n,
                    mlp.coefs[0].view(),
                    alpha * inv_n,
                    grad.view_mut(),
                );
            } else {
                Zip::from(&mut *grad)
                    .and(&mlp.coefs[i])
                    .for_each(|g, &w| *g = alpha * inv_n * w);
                gemm(inv_n, input.t(), delta, 1.0, grad.view_mut());
            }
            // intercept_grads[i] = column means of delta.
            ig.fill(0.0);
            for row in delta.rows() {
                *ig += &row;
            }
            *ig *= inv_n;
        };
        if i > 0 {
            let prev = &mut lower[i - 1];
            let below = activations[i - 1].slice(s![..rows, ..]);
            rayon::join(gradients, || {
                // delta[i-1] = (delta[i] @ W[i]^T) * relu'(activation[i-1]).
                let mut prev = prev.slice_mut(s![..rows, ..]);
                gemm(1.0, delta, mlp.coefs[i].t(), 0.0, prev.view_mut());
                let prev = prev.as_slice_mut().expect("standard layout");
                let below = below.as_slice().expect("standard layout");
                // Branch-free (a store for every element), so that it vectorises.
                for (d, &a) in prev.iter_mut().zip(below) {
                    *d = if a <= 0.0 { 0.0 } else { *d };
                }
            });
        } else {
            gradients();
        }
    }
    (loss, correct)
}

/// The loss of scikit-learn's `_backprop` on `x`, `labels` as one batch, and its gradient with
/// respect to every weight and bias (`(loss, coef_grads, intercept_grads)`).
pub fn loss_gradient(
    mlp: &Mlp,
    x: ArrayView2<f32>,
    labels: &[u8],
    alpha: f32,
) -> (f64, Vec<Array2<f32>>, Vec<Array1<f32>>) {
    let mut work = Workspace::new(mlp, x.nrows());
    let sparse_input = use_sparse_input(x);
    let sum_sq = sum_squared_weights(mlp);
    let (loss, _) = backprop(mlp, x, labels, alpha, sum_sq, &mut work, sparse_input);
    (loss, work.coef_grads, work.intercept_grads)
}

/// One Adam step (scikit-learn's `AdamOptimizer._get_updates`) on `param`, element by element.
/// Returns the sum of squares of the updated `param`, summed as `sum_squared_weights` does.
fn adam_update(param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], h: &AdamStep) -> f64 {
    let partials: Vec<f64> = param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .map(|(((p, g), m), v)| adam_chunk(p, g, m, v, h))
        .collect();
    partials.iter().sum()
}

/// Adam on one chunk, built for the widest vector unit the CPU has (the same arithmetic, no
/// fused operations, so every build gives the same numbers).
fn adam_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: &AdamStep) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the feature the function is built for (checked above).
            return unsafe { adam_chunk_avx512(p, g, m, v, h) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { adam_chunk_avx2(p, g, m, v, h) };
        }
    }
    adam_chunk_generic(p, g, m, v, h)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn adam_chunk_avx512(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamStep,
) -> f64 {
    adam_chunk_generic(p, g, m, v, h)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adam_chunk_avx2(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamStep,
) -> f64 {
    adam_chunk_generic(p, g, m, v, h)
}

#[inline(always)]
fn adam_chunk_generic(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: &AdamStep) -> f64 {
    #[inline(always)]
    fn one(p: &mut f32, g: f32, m: &mut f32, v: &mut f32, h: &AdamStep) {
        *m = h.beta1 * *m + (1.0 - h.beta1) * g;
        *v = h.beta2 * *v + (1.0 - h.beta2) * g * g;
        *p -= h.learning_rate * *m / (v.sqrt() + h.epsilon);
    }
    let n = p.len();
    assert!(g.len() == n && m.len() == n && v.len() == n);
    // The sum of squares of the new values, accumulated as `sum_squares_chunk` does.
    let mut acc = [0.0f64; SQ_LANES];
    let main = n - n % SQ_LANES;
    for (((p, g), m), v) in p[..main]
        .chunks_exact_mut(SQ_LANES)
        .zip(g.chunks_exact(SQ_LANES))
        .zip(m.chunks_exact_mut(SQ_LANES))
        .zip(v.chunks_exact_mut(SQ_LANES))
    {
        for j in 0..SQ_LANES {
            one(&mut p[j], g[j], &mut m[j], &mut v[j], h);
            acc[j] += f64::from(p[j]) * f64::from(p[j]);
        }
    }
    for (j, (((p, &g), m), v)) in p[main..]
        .iter_mut()
        .zip(&g[main..])
        .zip(&mut m[main..])
        .zip(&mut v[main..])
        .enumerate()
    {
        one(p, g, m, v, h);
        acc[j] += f64::from(*p) * f64::from(*p);
    }
    acc.iter().sum()
}

struct AdamStep {
    learning_rate: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
}

/// Trains an `Mlp`, one epoch after another, and can be paused (cancelled) and resumed.
#[derive(Debug, Clone)]
pub struct Trainer {
    mlp: Mlp,
    params: TrainParams,
    adam: Adam,
    rng: ChaCha8Rng,
    /// The row order, reshuffled in place each epoch as scikit-learn does.
    order: Vec<usize>,
    epoch: usize,
    best_loss: f64,
    no_improvement_count: usize,
    history: Vec<EpochMetrics>,
    progress: Option<EpochProgress>,
    work: Option<Workspace>,
    /// The training rows are mostly zeros: the first layer skips them.
    sparse_input: bool,
    /// `sum_squared_weights(&mlp)`, kept up to date by the Adam pass (None: not known yet).
    sum_sq: Option<f64>,
}

impl Trainer {
    /// A trainer for a fresh network of `n_inputs` -> `params.hidden` -> `n_classes` units,
    /// initialised from `params.seed`.
    pub fn new(n_inputs: usize, n_classes: usize, params: TrainParams) -> Trainer {
        let mut sizes = vec![n_inputs];
        sizes.extend(&params.hidden);
        sizes.push(n_classes);
        let mlp = Mlp::new(&sizes, params.seed);
        Trainer::from_model(mlp, params)
    }

    /// A trainer that continues from `mlp` with fresh optimiser state; `params.hidden` is set
    /// to the model's hidden layers.
    pub fn from_model(mlp: Mlp, mut params: TrainParams) -> Trainer {
        let sizes = mlp.layer_sizes();
        params.hidden = sizes[1..sizes.len() - 1].to_vec();
        // The shuffles draw from their own stream, apart from the initialisation's.
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        rng.set_stream(1);
        Trainer {
            adam: Adam::new(&mlp),
            mlp,
            params,
            rng,
            order: Vec::new(),
            epoch: 0,
            best_loss: f64::INFINITY,
            no_improvement_count: 0,
            history: Vec::new(),
            progress: None,
            work: None,
            sparse_input: false,
            sum_sq: None,
        }
    }

    /// The network as trained so far.
    pub fn model(&self) -> &Mlp {
        &self.mlp
    }

    /// The network, giving up the trainer.
    pub fn into_model(self) -> Mlp {
        self.mlp
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Metrics of every completed epoch, in order.
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// The hyper-parameters in use.
    pub fn params(&self) -> &TrainParams {
        &self.params
    }

    /// Raise or lower the epoch cap (for example to train further after `MaxEpochs`).
    pub fn set_max_epochs(&mut self, max_epochs: usize) {
        self.params.max_epochs = max_epochs;
    }

    /// Train until the loss converges, `max_epochs` epochs are done, the training loss is no
    /// longer finite (`Diverged`: every later call returns it too), or `cancel` is raised
    /// (checked before every minibatch). `on_epoch` receives each finished epoch's metrics,
    /// the diverged epoch's included.
    /// Calling `run` again after `Cancelled` resumes at the next minibatch, with the same result
    /// as a run that was never interrupted.
    ///
    /// A resumed run expects the same training rows as before (a different row count starts a
    /// fresh epoch order).
    ///
    /// # Panics
    /// When `train` (or `test`) has a different width than the model, or a label outside its
    /// classes: check a loaded model with `Mlp::check_fits` first.
    pub fn run(
        &mut self,
        train: &Dataset,
        test: Option<&Dataset>,
        on_epoch: &mut dyn FnMut(&EpochMetrics),
        cancel: Option<&AtomicBool>,
    ) -> StopReason {
        let n = train.n_rows();
        assert_eq!(
            train.n_features(),
            self.mlp.n_inputs(),
            "training data width does not match the model's input"
        );
        if let Some(t) = test {
            assert_eq!(
                t.n_features(),
                self.mlp.n_inputs(),
                "test data width does not match the model's input"
            );
        }
        assert!(n > 0, "no training rows");
        let classes = self.mlp.n_outputs();
        for (name, data) in [("training", Some(train)), ("test", test)] {
            if let Some(bad) =
                data.and_then(|d| d.labels.iter().find(|&&l| usize::from(l) >= classes))
            {
                panic!("{name} label {bad} is not one of the model's {classes} classes");
            }
        }
        let batch_size = self.params.batch_size.clamp(1, n);
        if self.order.len() != n {
            self.order = (0..n).collect();
            self.progress = None;
        }
        if self.work.as_ref().is_none_or(|w| w.capacity != batch_size) {
            self.work = Some(Workspace::new(&self.mlp, batch_size));
        }
        let n_batches = n.div_ceil(batch_size);
        self.sparse_input = use_sparse_input(train.features.view());
        loop {
            if self.progress.is_none() {
                if let Some(last) = self.history.last()
                    && !last.train_loss.is_finite()
                {
                    return StopReason::Diverged { epoch: last.epoch };
                }
                if self.no_improvement_count > self.params.n_iter_no_change {
                    return StopReason::Converged;
                }
                if self.epoch >= self.params.max_epochs {
                    return StopReason::MaxEpochs;
                }
                if self.params.shuffle {
                    self.order.shuffle(&mut self.rng);
                }
                self.progress = Some(EpochProgress {
                    next_batch: 0,
                    loss_sum: 0.0,
                    correct: 0,
                    seconds: 0.0,
                });
            }
            let started = Instant::now();
            let mut progress = self.progress.take().expect("an epoch in progress");
            while progress.next_batch < n_batches {
                if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    progress.seconds += started.elapsed().as_secs_f64();
                    self.progress = Some(progress);
                    return StopReason::Cancelled;
                }
                let lo = progress.next_batch * batch_size;
                let hi = (lo + batch_size).min(n);
                let (loss, correct) = self.step(train, lo, hi);
                #[expect(clippy::cast_precision_loss)]
                let rows = (hi - lo) as f64;
                progress.loss_sum += loss * rows;
                progress.correct += correct;
                progress.next_batch += 1;
            }
            progress.seconds += started.elapsed().as_secs_f64();
            let metrics = self.finish_epoch(&progress, n, test);
            on_epoch(&metrics);
            self.history.push(metrics);
        }
    }

    /// One minibatch: gather rows `order[lo..hi]`, backpropagate, take an Adam step.
    fn step(&mut self, train: &Dataset, lo: usize, hi: usize) -> (f64, usize) {
        let work = self.work.as_mut().expect("workspace allocated in run");
        let rows = hi - lo;
        let idx = &self.order[lo..hi];
        let features = train
            .features
            .as_slice()
            .expect("features in standard layout");
        let width = train.n_features();
        let xs = work.x.as_slice_mut().expect("workspace in standard layout");
        for (dst, &r) in xs.chunks_exact_mut(width).zip(idx) {
            dst.copy_from_slice(&features[r * width..(r + 1) * width]);
        }
        let labels: Vec<u8> = idx.iter().map(|&r| train.labels[r]).collect();
        let x = std::mem::take(&mut work.x);
        let sum_sq = match self.sum_sq {
            Some(v) => v,
            None => sum_squared_weights(&self.mlp),
        };
        let result = backprop(
            &self.mlp,
            x.slice(s![..rows, ..]),
            &labels,
            self.params.alpha,
            sum_sq,
            work,
            self.sparse_input,
        );
        work.x = x;

        let adam = &mut self.adam;
        adam.t += 1;
        let p = &self.params;
        let (b1, b2) = (f64::from(p.beta1), f64::from(p.beta2));
        // AdamOptimizer: learning_rate_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t).
        #[expect(clippy::cast_possible_truncation)]
        let learning_rate = (f64::from(p.learning_rate) * (1.0 - b2.powi(adam.t)).sqrt()
            / (1.0 - b1.powi(adam.t))) as f32;
        let h = AdamStep {
            learning_rate,
            beta1: p.beta1,
            beta2: p.beta2,
            epsilon: p.epsilon,
        };
        let mut sum_sq = 0.0;
        for i in 0..self.mlp.coefs.len() {
            sum_sq += adam_update(
                self.mlp.coefs[i].as_slice_mut().expect("standard layout"),
                work.coef_grads[i].as_slice().expect("standard layout"),
                adam.m_coefs[i].as_slice_mut().expect("standard layout"),
                adam.v_coefs[i].as_slice_mut().expect("standard layout"),
                &h,
            );
            let _ = adam_update(
                self.mlp.intercepts[i]
                    .as_slice_mut()
                    .expect("standard layout"),
                work.intercept_grads[i].as_slice().expect("standard layout"),
                adam.m_intercepts[i]
                    .as_slice_mut()
                    .expect("standard layout"),
                adam.v_intercepts[i]
                    .as_slice_mut()
                    .expect("standard layout"),
                &h,
            );
        }
        self.sum_sq = Some(sum_sq);
        result
    }

    /// Close an epoch: the loss, the stopping counters, the test evaluation.
    fn finish_epoch(
        &mut self,
        progress: &EpochProgress,
        n: usize,
        test: Option<&Dataset>,
    ) -> EpochMetrics {
        #[expect(clippy::cast_precision_loss)]
        let n_f = n as f64;
        let train_loss = progress.loss_sum / n_f;
        self.epoch += 1;
        // `_update_no_improvement_count` with early_stopping=False.
        if train_loss > self.best_loss - f64::from(self.params.tol) {
            self.no_improvement_count += 1;
        } else {
            self.no_improvement_count = 0;
        }
        if train_loss < self.best_loss {
            self.best_loss = train_loss;
        }
        let (test_loss, test_accuracy) = match test {
            Some(t) => {
                let work = self.work.as_mut().expect("workspace allocated in run");
                let (loss, accuracy) = evaluate_with(&self.mlp, t.features.view(), &t.labels, work);
                (Some(loss), Some(accuracy))
            }
            None => (None, None),
        };
        #[expect(clippy::cast_precision_loss)]
        let train_accuracy = progress.correct as f64 / n_f;
        EpochMetrics {
            epoch: self.epoch,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            seconds: progress.seconds,
            samples_per_sec: n_f / progress.seconds.max(f64::MIN_POSITIVE),
        }
    }
}

/// Mean cross-entropy (clipped as scikit-learn's `log_loss`) and accuracy of `mlp` on `x`,
/// `labels`, through the workspace's buffers in chunks of its capacity.
fn evaluate_with(mlp: &Mlp, x: ArrayView2<f32>, labels: &[u8], work: &mut Workspace) -> (f64, f64) {
    let last = mlp.coefs.len() - 1;
    let mut cross_entropy = 0.0;
    let mut correct = 0usize;
    let sparse_input = use_sparse_input(x);
    for (xc, yc) in x
        .axis_chunks_iter(Axis(0), work.capacity)
        .zip(labels.chunks(work.capacity))
    {
        forward(mlp, xc, work, sparse_input);
        let probs = work.activations[last].slice(s![..xc.nrows(), ..]);
        for (p, &y) in probs.rows().into_iter().zip(yc) {
            let y = usize::from(y);
            cross_entropy += neg_log_prob(p[y]);
            if super::argmax(p.as_slice().expect("standard layout")) == y {
                correct += 1;
            }
        }
    }
    #[expect(clippy::cast_precision_loss)]
    let n = labels.len().max(1) as f64;
    #[expect(clippy::cast_precision_loss)]
    let accuracy = correct as f64 / n;
    (cross_entropy / n, accuracy)
}

/// Mean cross-entropy and accuracy of `mlp` on a labelled set of rows.
pub fn evaluate(mlp: &Mlp, x: ArrayView2<f32>, labels: &[u8]) -> (f64, f64) {
    let mut work = Workspace::new(mlp, x.nrows().clamp(1, 1000));
    evaluate_with(mlp, x, labels, &mut work)
}
