//! The notebook's multi-layer perceptron: input -> hidden layers (ReLU by default, or any of
//! scikit-learn's activations) -> softmax output (or raw scores, for an imported model without
//! one), in f32, laid out as scikit-learn's `MLPClassifier` (`coefs_[i]` is fan_in x fan_out).

mod activation;
mod adam;
mod backprop;
pub mod checkpoints;
mod grad;
/// Networks trained elsewhere: `.safetensors` and `.onnx` (issue 16, branch import).
pub mod import;
mod io;
mod linalg;
mod meta;
mod metrics;
mod sparse;
mod train;

pub use activation::Activation;
pub use backprop::loss_gradient;
pub use grad::Output;
pub use io::{
    ModelError, load_model, load_npz, read_training, write_model, write_npz, write_trained_model,
};
pub use linalg::{GemmBackend, gemm, gemm_backend, set_gemm_backend};
pub use meta::TrainingRecord;
pub use metrics::{accuracy, confusion_matrix, per_class_accuracy};
pub use sparse::{
    GroupBuilds as SparseGroupBuilds, LANES as SPARSE_LANES, forward as sparse_forward,
    forward_paired as sparse_forward_paired, forward_term_ratio as sparse_forward_term_ratio,
    set_sparse_first_layer, weight_gradient as sparse_weight_gradient,
};
pub use train::{
    BatchProgress, DEFAULT_MAX_EPOCHS, EpochMetrics, StopReason, TrainParams, Trainer,
};

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Rows per pass of `Mlp::layer_output`: the buffers of a 512-unit layer stay near 2 MB.
const LAYER_OUTPUT_ROWS: usize = 1024;

/// A trained or freshly initialised network.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// Weight matrices, `coefs[i]` of shape (units in layer i) x (units in layer i + 1).
    pub coefs: Vec<Array2<f32>>,
    /// Bias vectors, `intercepts[i]` of length (units in layer i + 1).
    pub intercepts: Vec<Array1<f32>>,
    /// The hidden layers' activation (scikit-learn's `activation`).
    pub activation: Activation,
    /// Whether the output layer applies a softmax (scikit-learn's `out_activation_ ==
    /// "softmax"`): true for trained and scikit-learn models; false for a model whose outputs
    /// are raw scores (logits), which the explain engine then explains in logits.
    pub softmax: bool,
}

impl Mlp {
    /// A network with the given layer sizes (input, hidden..., output), initialised as
    /// scikit-learn's `_init_coef` does for ReLU: weights and biases uniform in +-sqrt(6 / (fan_in
    /// + fan_out)) (Glorot and Bengio 2010).
    pub fn new(layer_sizes: &[usize], seed: u64) -> Mlp {
        Mlp::initialised(layer_sizes, Activation::Relu, seed)
    }

    /// A network with the given layer sizes and hidden activation, initialised as
    /// scikit-learn's `_init_coef`: uniform in +-sqrt(factor / (fan_in + fan_out)) with factor
    /// 2 for the logistic activation and 6 for the others; softmax output.
    pub fn initialised(layer_sizes: &[usize], activation: Activation, seed: u64) -> Mlp {
        assert!(
            layer_sizes.len() >= 2,
            "a network needs an input and an output layer"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut coefs = Vec::new();
        let mut intercepts = Vec::new();
        for pair in layer_sizes.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            // Layer widths are small integers: exact in f64.
            let factor = if activation == Activation::Logistic {
                2.0
            } else {
                6.0
            };
            let bound = (factor / (fan_in + fan_out) as f64).sqrt() as f32;
            coefs.push(Array2::from_shape_simple_fn((fan_in, fan_out), || {
                rng.random_range(-bound..bound)
            }));
            intercepts.push(Array1::from_shape_simple_fn(fan_out, || {
                rng.random_range(-bound..bound)
            }));
        }
        Mlp::from_layers(coefs, intercepts, activation, true)
    }

    /// A network of these weights (`coefs[i]` fan_in x fan_out) and biases, hidden activation,
    /// and output (softmax, or raw scores when `softmax` is false). The shapes are checked where
    /// a model comes in (`load_model`, the explain engine's `check_model`), not here.
    pub fn from_layers(
        coefs: Vec<Array2<f32>>,
        intercepts: Vec<Array1<f32>>,
        activation: Activation,
        softmax: bool,
    ) -> Mlp {
        Mlp {
            coefs,
            intercepts,
            activation,
            softmax,
        }
    }

    /// Units per layer, input first, output last.
    pub fn layer_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![self.coefs[0].nrows()];
        sizes.extend(self.coefs.iter().map(Array2::ncols));
        sizes
    }

    /// Layers counted as scikit-learn's `n_layers_`: input and output included.
    pub fn n_layers(&self) -> usize {
        self.coefs.len() + 1
    }

    /// Input width.
    pub fn n_inputs(&self) -> usize {
        self.coefs[0].nrows()
    }

    /// Number of classes (output width).
    pub fn n_outputs(&self) -> usize {
        self.coefs.last().map_or(0, Array2::ncols)
    }

    /// The output of layer `k` in the notebook's numbering: k = 1 is the input itself, k = 2 the
    /// first hidden layer (after its activation), ..., k = `n_layers()` the model's output: the
    /// softmax probabilities, or the raw scores of a model without a softmax.
    ///
    /// Computed as training computes it (the GEMM, and the first layer skipping zero inputs
    /// when most are zero), in chunks of `LAYER_OUTPUT_ROWS` rows: the same values for any
    /// thread count.
    pub fn layer_output(&self, x: ArrayView2<f32>, k: usize) -> Array2<f32> {
        assert!(
            (1..=self.n_layers()).contains(&k),
            "layer {k} is not in 1..={}",
            self.n_layers()
        );
        assert_eq!(x.ncols(), self.n_inputs(), "input width");
        if k == 1 {
            return x.to_owned();
        }
        // On one of rayon's threads, as training's steps (see `Trainer::run`).
        rayon::scope(|_| self.layer_output_one(x, k, self.softmax))
    }

    /// [`Mlp::layer_output`] of every layer in `layers` (each in `2..=n_layers()`), from one
    /// forward pass to the deepest: the same values as one `layer_output` call per layer, without
    /// computing the shallower layers again for each (the film makes every layer's frame of an
    /// epoch at once).
    pub fn layer_outputs(&self, x: ArrayView2<f32>, layers: &[usize]) -> Vec<Array2<f32>> {
        assert!(
            layers.iter().all(|k| (2..=self.n_layers()).contains(k)),
            "layers {layers:?} are not in 2..={}",
            self.n_layers()
        );
        assert_eq!(x.ncols(), self.n_inputs(), "input width");
        rayon::scope(|_| self.layer_output_chunks(x, layers, self.softmax))
    }

    /// The outputs of `layers` (each in `2..=n_layers()`) from one forward pass to the deepest,
    /// the output layer's softmax applied when `softmax` (whatever the model's own output).
    fn layer_output_chunks(
        &self,
        x: ArrayView2<f32>,
        layers: &[usize],
        softmax: bool,
    ) -> Vec<Array2<f32>> {
        let Some(&deepest) = layers.iter().max() else {
            return Vec::new();
        };
        let x = x.as_standard_layout();
        let sparse_input = backprop::use_sparse_input(x.view());
        let chunk = LAYER_OUTPUT_ROWS.min(x.nrows().max(1));
        let mut buffers = backprop::layer_buffers(self, chunk);
        buffers.truncate(deepest - 1);
        let mut outs: Vec<Array2<f32>> = layers
            .iter()
            .map(|&k| Array2::zeros((x.nrows(), self.coefs[k - 2].ncols())))
            .collect();
        for (c, xc) in x.axis_chunks_iter(Axis(0), chunk).enumerate() {
            backprop::forward_layers(self, xc, &mut buffers, sparse_input, softmax);
            let rows = c * chunk..c * chunk + xc.nrows();
            for (out, &k) in outs.iter_mut().zip(layers) {
                out.slice_mut(ndarray::s![rows.clone(), ..])
                    .assign(&buffers[k - 2].slice(ndarray::s![..xc.nrows(), ..]));
            }
        }
        outs
    }

    /// [`Mlp::layer_output_chunks`] of one layer.
    fn layer_output_one(&self, x: ArrayView2<f32>, k: usize, softmax: bool) -> Array2<f32> {
        self.layer_output_chunks(x, &[k], softmax)
            .pop()
            .expect("one layer asked, one output")
    }

    /// Class probabilities, one row per input row: the softmax output, or for a model without
    /// one the softmax of its scores (what its argmax and the training loss read them as).
    pub fn predict_proba(&self, x: ArrayView2<f32>) -> Array2<f32> {
        assert_eq!(x.ncols(), self.n_inputs(), "input width");
        rayon::scope(|_| self.layer_output_one(x, self.n_layers(), true))
    }

    /// The most probable class of each row.
    pub fn predict(&self, x: ArrayView2<f32>) -> Vec<u8> {
        self.predict_proba(x)
            .axis_iter(Axis(0))
            .map(|row| argmax(row.as_slice().unwrap_or(&[])))
            .map(|c| u8::try_from(c).unwrap_or(u8::MAX))
            .collect()
    }
}

/// Softmax of each row, in place, shifted by the row maximum for stability.
pub fn softmax_rows(a: &mut Array2<f32>) {
    for mut row in a.rows_mut() {
        let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_numbering() {
        let m = Mlp::new(&[6, 5, 4, 3], 1);
        assert_eq!(m.layer_sizes(), vec![6, 5, 4, 3]);
        assert_eq!(m.n_layers(), 4);
        let x = Array2::from_shape_fn((2, 6), |(i, j)| (i + j) as f32 / 10.0);
        assert_eq!(m.layer_output(x.view(), 1), x);
        assert_eq!(m.layer_output(x.view(), 2).dim(), (2, 5));
        assert_eq!(m.layer_output(x.view(), 4).dim(), (2, 3));
    }

    /// A 3 -> 2 -> 3 network small enough to run by hand. Row [1, 2, 3]: hidden
    /// pre-activations [1 + 1 - 3 + 0.1, -1 + 4 + 0 - 0.5] = [-0.9, 2.5], after ReLU [0, 2.5];
    /// logits [2.5 * 0.2, 2.5 * -0.4 + 1, 2.5 + 0.5] = [0.5, 0, 3]. Row [0, 0, 2]: hidden
    /// [-1.9, -0.5] -> [0, 0], logits = the output biases [0, 1, 0.5]. A zero row: hidden
    /// [0.1, 0], logits [0.1, 1, -0.1 + 0.5].
    fn hand_network() -> Mlp {
        Mlp {
            coefs: vec![
                ndarray::arr2(&[[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]]),
                ndarray::arr2(&[[1.0, 0.0, -1.0], [0.2, -0.4, 1.0]]),
            ],
            intercepts: vec![ndarray::arr1(&[0.1, -0.5]), ndarray::arr1(&[0.0, 1.0, 0.5])],
            activation: Activation::Relu,
            softmax: true,
        }
    }

    /// `predict_proba` against a softmax of the hand-computed logits (in f64, written here),
    /// through the dense path (two rows, half non-zero) and the sparse first layer (four rows,
    /// a third non-zero).
    #[test]
    fn probabilities_match_hand_computed_logits() {
        let m = hand_network();
        let rows = ndarray::arr2(&[[1.0f32, 2.0, 3.0], [0.0, 0.0, 2.0], [0.0; 3], [0.0; 3]]);
        let hidden = [[0.0, 2.5], [0.0, 0.0], [0.1, 0.0], [0.1, 0.0]];
        let logits = [
            [0.5, 0.0, 3.0],
            [0.0, 1.0, 0.5],
            [0.1, 1.0, 0.4],
            [0.1, 1.0, 0.4],
        ];
        let softmax = |z: &[f64; 3]| {
            let e = z.map(f64::exp);
            let s: f64 = e.iter().sum();
            e.map(|v| v / s)
        };
        for n in [2, 4] {
            let x = rows.slice(ndarray::s![..n, ..]);
            assert_eq!(sparse::worth_it(x), n == 4, "the path under test");
            let h = m.layer_output(x, 2);
            let p = m.predict_proba(x);
            for r in 0..n {
                for j in 0..2 {
                    assert!(
                        (f64::from(h[(r, j)]) - hidden[r][j]).abs() < 1e-6,
                        "{n} rows"
                    );
                }
                let want = softmax(&logits[r]);
                for j in 0..3 {
                    let got = f64::from(p[(r, j)]);
                    assert!(
                        (got - want[j]).abs() < 1e-6,
                        "row {r} class {j}: {got} vs {}",
                        want[j]
                    );
                }
            }
            assert_eq!(m.predict(x), vec![2, 1, 1, 1][..n].to_vec());
        }
        // e^0.5, e^0 and e^3 over their sum, to 7 places by hand.
        let p = m.predict_proba(rows.view());
        assert!((p[(0, 0)] - 0.072_521_4).abs() < 1e-6);
        assert!((p[(0, 2)] - 0.883_492_1).abs() < 1e-6);
    }

    #[test]
    fn glorot_bounds_and_seed() {
        let m = Mlp::new(&[784, 512], 0);
        let bound = (6.0_f32 / (784.0 + 512.0)).sqrt();
        assert!(m.coefs[0].iter().all(|v| v.abs() <= bound));
        assert!(m.coefs[0].iter().any(|v| v.abs() > 0.9 * bound));
        assert_eq!(m, Mlp::new(&[784, 512], 0));
        assert_ne!(m, Mlp::new(&[784, 512], 1));
    }
}
