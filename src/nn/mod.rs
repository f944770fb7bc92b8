//! The notebook's multi-layer perceptron: input -> hidden layers with ReLU -> softmax output, in
//! f32, laid out as scikit-learn's `MLPClassifier` (`coefs_[i]` is fan_in x fan_out).

mod grad;
mod io;
mod linalg;
mod metrics;
mod sparse;
mod train;

pub use grad::Output;
pub use io::{ModelError, load_model, load_npz, write_model, write_npz};
pub use linalg::{GemmBackend, gemm, gemm_backend, set_gemm_backend};
pub use metrics::{accuracy, confusion_matrix, per_class_accuracy};
pub use sparse::{
    forward as sparse_forward, set_sparse_first_layer, weight_gradient as sparse_weight_gradient,
};
pub use train::{
    DEFAULT_MAX_EPOCHS, EpochMetrics, StopReason, TrainParams, Trainer, evaluate, loss_gradient,
};

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A trained or freshly initialised network.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// Weight matrices, `coefs[i]` of shape (units in layer i) x (units in layer i + 1).
    pub coefs: Vec<Array2<f32>>,
    /// Bias vectors, `intercepts[i]` of length (units in layer i + 1).
    pub intercepts: Vec<Array1<f32>>,
}

impl Mlp {
    /// A network with the given layer sizes (input, hidden..., output), initialised as
    /// scikit-learn's `_init_coef` does for ReLU: weights and biases uniform in +-sqrt(6 / (fan_in
    /// + fan_out)) (Glorot and Bengio 2010).
    pub fn new(layer_sizes: &[usize], seed: u64) -> Mlp {
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
            #[expect(clippy::cast_precision_loss)]
            let bound = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
            coefs.push(Array2::from_shape_simple_fn((fan_in, fan_out), || {
                rng.random_range(-bound..bound)
            }));
            intercepts.push(Array1::from_shape_simple_fn(fan_out, || {
                rng.random_range(-bound..bound)
            }));
        }
        Mlp { coefs, intercepts }
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
    /// first hidden layer (after ReLU), ..., k = `n_layers()` the softmax probabilities.
    pub fn layer_output(&self, x: ArrayView2<f32>, k: usize) -> Array2<f32> {
        assert!(
            (1..=self.n_layers()).contains(&k),
            "layer {k} is not in 1..={}",
            self.n_layers()
        );
        let mut a = x.to_owned();
        for i in 0..k - 1 {
            a = a.dot(&self.coefs[i]);
            a += &self.intercepts[i];
            if i + 1 == self.coefs.len() {
                softmax_rows(&mut a);
            } else {
                a.mapv_inplace(|v| v.max(0.0));
            }
        }
        a
    }

    /// Class probabilities, one row per input row.
    pub fn predict_proba(&self, x: ArrayView2<f32>) -> Array2<f32> {
        self.layer_output(x, self.n_layers())
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
        let p = m.predict_proba(x.view());
        assert_eq!(p, m.layer_output(x.view(), 4));
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-6);
        }
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
