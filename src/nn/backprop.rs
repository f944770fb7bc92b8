//! scikit-learn's `_backprop` on one minibatch, in steps: the forward pass (the first layer
//! skipping zero inputs), the loss and the output deltas, then layer by layer downwards the
//! parameter gradients and the deltas of the layer below.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Zip, s};

use super::Mlp;
use super::adam::sum_squared_weights;
use super::linalg::gemm;
use super::sparse;

/// Buffers for one minibatch, allocated once per batch size.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    /// The most rows a batch may have.
    pub capacity: usize,
    /// The gathered input rows (dense inputs only: allocated at the first dense batch; the
    /// sparse first layer reads the rows where they lie).
    pub x: Array2<f32>,
    /// Output of each layer after its activation (the hidden activation, softmax for the last).
    activations: Vec<Array2<f32>>,
    /// Gradient of the loss with respect to each layer's pre-activation.
    deltas: Vec<Array2<f32>>,
    /// Gradient of the loss with respect to each weight matrix, except for the penalty term
    /// `deferred_penalty[i] * W` where that is `Some`.
    pub coef_grads: Vec<Array2<f32>>,
    /// The coefficient `alpha / rows` of the penalty gradient left out of `coef_grads[i]`, for
    /// the optimiser to add as it reads the weights (the sparse first layer's); `None` where
    /// `coef_grads[i]` is whole.
    pub deferred_penalty: Vec<Option<f32>>,
    /// Gradient of the loss with respect to each bias vector.
    pub intercept_grads: Vec<Array1<f32>>,
    /// The first layer's sparse gradient terms of the batch (when it skips zero inputs).
    column_groups: sparse::ColumnGroups,
}

impl Workspace {
    /// Buffers for batches of at most `capacity` rows through `mlp`.
    pub(crate) fn new(mlp: &Mlp, capacity: usize) -> Workspace {
        let sizes = mlp.layer_sizes();
        Workspace {
            capacity,
            x: Array2::zeros((0, sizes[0])),
            activations: layer_buffers(mlp, capacity),
            deltas: layer_buffers(mlp, capacity),
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
            deferred_penalty: vec![None; mlp.coefs.len()],
            column_groups: sparse::ColumnGroups::default(),
        }
    }
}

/// One `rows` x (units) buffer per layer above the input.
pub(crate) fn layer_buffers(mlp: &Mlp, rows: usize) -> Vec<Array2<f32>> {
    mlp.coefs
        .iter()
        .map(|c| Array2::zeros((rows, c.ncols())))
        .collect()
}

/// Whether the first layer should skip the zeros of `x` (see `sparse`).
pub(crate) fn use_sparse_input(x: ArrayView2<f32>) -> bool {
    sparse::worth_it(x)
}

/// A batch of input rows: a matrix, or rows of a matrix whose zeros are left out (the first
/// layer then skips them, and the rows need not be copied together).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    /// The rows as a matrix, through the dense products.
    Matrix(ArrayView2<'a, f32>),
    /// The rows, each as wide as the first layer's input, through the sparse kernels.
    Sparse(sparse::Batch<'a>),
}

impl Input<'_> {
    fn nrows(&self) -> usize {
        match self {
            Input::Matrix(x) => x.nrows(),
            Input::Sparse(rows) => rows.len(),
        }
    }
}

/// Forward pass of `x` through the first `outputs.len()` layers: `outputs[i]` (at least
/// `x.nrows()` rows) receives layer `i + 1`'s output after its activation (the model's hidden
/// activation; for the network's last layer a softmax when `softmax`, the raw scores
/// otherwise). With `sparse_input` the first layer skips the zeros of `x`, which must then be in
/// standard layout.
pub(crate) fn forward_layers(
    mlp: &Mlp,
    x: ArrayView2<f32>,
    outputs: &mut [Array2<f32>],
    sparse_input: bool,
    softmax: bool,
) {
    if sparse_input {
        let rows = sparse::SparseRows::from_matrix(x);
        forward_input(mlp, Input::Sparse(rows.all().as_batch()), outputs, softmax);
    } else {
        forward_input(mlp, Input::Matrix(x), outputs, softmax);
    }
}

/// `forward_layers` of an `Input`.
fn forward_input(mlp: &Mlp, x: Input, outputs: &mut [Array2<f32>], softmax: bool) {
    let rows = x.nrows();
    let last = mlp.coefs.len() - 1;
    for i in 0..outputs.len() {
        let (done, rest) = outputs.split_at_mut(i);
        let mut z = rest[0].slice_mut(s![..rows, ..]);
        let input = match (i, x) {
            (0, Input::Sparse(x)) => {
                let bias = mlp.intercepts[0].as_slice().expect("standard layout");
                sparse::forward_batch(x, mlp.coefs[0].view(), bias, z.view_mut());
                None
            }
            (0, Input::Matrix(x)) => Some(x.reborrow()),
            _ => Some(done[i - 1].slice(s![..rows, ..])),
        };
        if let Some(input) = input {
            // z = input @ W + b: fill with the bias, then accumulate the product (beta = 1).
            for mut row in z.rows_mut() {
                row.assign(&mlp.intercepts[i]);
            }
            gemm(1.0, input, mlp.coefs[i].view(), 1.0, z.view_mut());
        }
        if i == last {
            if softmax {
                for mut row in z.rows_mut() {
                    softmax_row(row.as_slice_mut().expect("rows of a standard layout"));
                }
            }
        } else {
            let z = z.as_slice_mut().expect("standard layout");
            mlp.activation.apply_slice(z);
        }
    }
}

/// Softmax of one row, shifted by its maximum for stability.
pub(crate) fn softmax_row(row: &mut [f32]) {
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

/// Summed cross-entropy and the count of rows whose most probable class is the label, over
/// the probability rows `probs` (one per label).
fn score(probs: ArrayView2<f32>, labels: &[u8]) -> (f64, usize) {
    let mut cross_entropy = 0.0;
    let mut correct = 0;
    for (p, &y) in probs.rows().into_iter().zip(labels) {
        let y = usize::from(y);
        assert!(y < p.len(), "label {y} is not a class of this model");
        cross_entropy += neg_log_prob(p[y]);
        if super::argmax(p.as_slice().expect("standard layout")) == y {
            correct += 1;
        }
    }
    (cross_entropy, correct)
}

/// scikit-learn's `_backprop` on one minibatch: fills `work.coef_grads` and
/// `work.intercept_grads` with the gradient of the returned loss (mean cross-entropy plus
/// `alpha / 2 * sum(W^2) / rows`), and returns that loss and the number of rows whose most
/// probable class was the label (from this same forward pass: scikit-learn's running loss).
///
/// `sum_sq` is `sum_squared_weights(mlp)`.
pub(crate) fn backprop(
    mlp: &Mlp,
    x: Input,
    labels: &[u8],
    alpha: f32,
    sum_sq: f64,
    work: &mut Workspace,
) -> (f64, usize) {
    let rows = x.nrows();
    assert_eq!(rows, labels.len(), "one label per row");
    assert!(
        rows <= work.capacity,
        "batch of {rows} rows exceeds the workspace"
    );
    // The first layer's gradient terms depend on x only: built while the forward pass runs.
    let sparse_input = matches!(x, Input::Sparse(_));
    if let Input::Sparse(xs) = x {
        let n1 = mlp.coefs[0].ncols();
        let (groups, activations) = (&mut work.column_groups, &mut work.activations);
        rayon::join(
            || groups.fill(xs, n1),
            || forward_input(mlp, x, activations, true),
        );
    } else {
        forward_input(mlp, x, &mut work.activations, true);
    }
    let (cross_entropy, correct) = output_delta(work, labels);
    // Row counts are far below 2^52: exact in f64.
    let n = rows as f64;
    let loss = cross_entropy / n + 0.5 * f64::from(alpha) * sum_sq / n;

    // The column groups move out of the workspace while the layers borrow it.
    let column_groups = std::mem::take(&mut work.column_groups);
    let step = BackwardStep {
        mlp,
        x,
        rows,
        alpha,
        column_groups: sparse_input.then_some(&column_groups),
    };
    for i in (0..mlp.coefs.len()).rev() {
        step.layer(i, work);
    }
    work.column_groups = column_groups;
    (loss, correct)
}

/// The loss's summed cross-entropy and correct count, and the output deltas
/// `delta[last] = probabilities - one-hot labels` (the softmax and cross-entropy together).
fn output_delta(work: &mut Workspace, labels: &[u8]) -> (f64, usize) {
    let rows = labels.len();
    let last = work.activations.len() - 1;
    let probs = work.activations[last].slice(s![..rows, ..]);
    let scored = score(probs, labels);
    let mut delta = work.deltas[last].slice_mut(s![..rows, ..]);
    delta.assign(&probs);
    for (mut d, &y) in delta.rows_mut().into_iter().zip(labels) {
        d[usize::from(y)] -= 1.0;
    }
    scored
}

/// What every layer's backward step reads.
struct BackwardStep<'a, 'x> {
    mlp: &'a Mlp,
    x: Input<'x>,
    rows: usize,
    alpha: f32,
    /// The first layer's sparse gradient terms, when it skips zero inputs.
    column_groups: Option<&'a sparse::ColumnGroups>,
}

impl BackwardStep<'_, '_> {
    /// Layer `i`'s parameter gradients and, above the first layer, the deltas of layer `i - 1`:
    /// independent of each other, so computed side by side.
    fn layer(&self, i: usize, work: &mut Workspace) {
        let rows = self.rows;
        let Workspace {
            activations,
            deltas,
            coef_grads,
            intercept_grads,
            deferred_penalty,
            ..
        } = work;
        let (lower, upper) = deltas.split_at_mut(i);
        let delta = upper[0].slice(s![..rows, ..]);
        // The sparse first layer reads its input through `column_groups` (an empty view here).
        let input = match (i, self.x) {
            (0, Input::Matrix(x)) => x.reborrow(),
            (0, Input::Sparse(_)) => ArrayView2::from_shape((0, 0), &[]).expect("empty"),
            _ => activations[i - 1].slice(s![..rows, ..]),
        };
        let mut gradients = || {
            deferred_penalty[i] = self.weight_gradient(i, input, delta, coef_grads[i].view_mut());
            column_means(delta, &mut intercept_grads[i]);
        };
        if i > 0 {
            let below = activations[i - 1].slice(s![..rows, ..]);
            let prev = lower[i - 1].slice_mut(s![..rows, ..]);
            rayon::join(gradients, || {
                self.delta_below(i, delta, below, prev);
            });
        } else {
            gradients();
        }
    }

    /// `coef_grads[i] = (input^T @ delta + alpha * W) / rows` (`_compute_loss_grad`); for the
    /// sparse first layer without the `alpha / rows * W` term, whose coefficient is returned
    /// (the optimiser adds it as it reads W: one pass over the largest matrix fewer).
    fn weight_gradient(
        &self,
        i: usize,
        input: ArrayView2<f32>,
        delta: ArrayView2<f32>,
        mut grad: ArrayViewMut2<f32>,
    ) -> Option<f32> {
        let inv_n = 1.0 / self.rows as f32;
        let w = self.mlp.coefs[i].view();
        if let (0, Some(groups)) = (i, self.column_groups) {
            sparse::weight_gradient_unpenalised(groups, delta, inv_n, grad);
            Some(self.alpha * inv_n)
        } else {
            Zip::from(&mut grad)
                .and(&w)
                .for_each(|g, &w| *g = self.alpha * inv_n * w);
            gemm(inv_n, input.t(), delta, 1.0, grad);
            None
        }
    }

    /// `delta[i - 1] = (delta[i] @ W[i]^T) * f'(activation[i - 1])`, f' taken from the
    /// activation's output as scikit-learn's `inplace_*_derivative` (the ReLU's at 0 is 0).
    fn delta_below(
        &self,
        i: usize,
        delta: ArrayView2<f32>,
        below: ArrayView2<f32>,
        mut prev: ArrayViewMut2<f32>,
    ) {
        gemm(1.0, delta, self.mlp.coefs[i].t(), 0.0, prev.view_mut());
        let prev = prev.as_slice_mut().expect("standard layout");
        let below = below.as_slice().expect("standard layout");
        self.mlp.activation.multiply_derivative(prev, below);
    }
}

/// `out = column means of d`: the rows added in order, then scaled (over slices: ndarray's
/// row-by-row `+=` took 1% of a training run).
fn column_means(d: ArrayView2<f32>, out: &mut Array1<f32>) {
    let inv_n = 1.0 / d.nrows().max(1) as f32;
    let out = out.as_slice_mut().expect("standard layout");
    out.fill(0.0);
    match d.as_slice() {
        Some(values) if !out.is_empty() => {
            for row in values.chunks_exact(out.len()) {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o += v;
                }
            }
        }
        _ => {
            for row in d.rows() {
                for (o, &v) in out.iter_mut().zip(&row) {
                    *o += v;
                }
            }
        }
    }
    for o in out.iter_mut() {
        *o *= inv_n;
    }
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
    let sum_sq = sum_squared_weights(mlp);
    let (loss, _) = if use_sparse_input(x) {
        let rows = sparse::SparseRows::from_matrix(x);
        let all = rows.all();
        backprop(
            mlp,
            Input::Sparse(all.as_batch()),
            labels,
            alpha,
            sum_sq,
            &mut work,
        )
    } else {
        backprop(mlp, Input::Matrix(x), labels, alpha, sum_sq, &mut work)
    };
    for ((grad, w), penalty) in work
        .coef_grads
        .iter_mut()
        .zip(&mlp.coefs)
        .zip(&work.deferred_penalty)
    {
        if let Some(a) = *penalty {
            // As the optimiser adds it (`a * w + g`: an addition, the same either way round).
            Zip::from(grad).and(w).for_each(|g, &w| *g += a * w);
        }
    }
    (loss, work.coef_grads, work.intercept_grads)
}

/// Mean cross-entropy (clipped as scikit-learn's `log_loss`) and accuracy of `mlp` on `x`,
/// `labels`: the training step's forward pass (the GEMM, the first layer skipping zero inputs
/// when `sparse_input`), in chunks of the rows of `buffers` (one per layer, from
/// `layer_buffers`).
pub(crate) fn evaluate(
    mlp: &Mlp,
    x: ArrayView2<f32>,
    labels: &[u8],
    buffers: &mut [Array2<f32>],
    sparse_input: bool,
) -> (f64, f64) {
    let mut cross_entropy = 0.0;
    let mut correct = 0usize;
    let last = mlp.coefs.len() - 1;
    let chunk = buffers[0].nrows().max(1);
    for (xc, yc) in x
        .axis_chunks_iter(ndarray::Axis(0), chunk)
        .zip(labels.chunks(chunk))
    {
        forward_layers(mlp, xc, buffers, sparse_input, true);
        let (ce, right) = score(buffers[last].slice(s![..xc.nrows(), ..]), yc);
        cross_entropy += ce;
        correct += right;
    }
    let n = labels.len().max(1) as f64;
    let accuracy = correct as f64 / n;
    (cross_entropy / n, accuracy)
}
