//! Gradients of one class's output with respect to the input, by backpropagation: the raw
//! material of saliency maps and integrated gradients (Sundararajan et al. 2017).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};

use super::Mlp;
use super::linalg::gemm;

/// Which output of a class to differentiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The softmax probability of the class.
    Probability,
    /// The class's logit (its pre-softmax score).
    Logit,
}

impl Mlp {
    /// Gradient of class `class`'s output (probability or logit) with respect to the input row
    /// `x`. The hidden activation's derivative is taken from its output as scikit-learn's
    /// `inplace_*_derivative` do (at a ReLU's kink, pre-activation exactly 0, it is 0). For a
    /// model without a softmax, `Logit` is its raw score and `Probability` the softmax of its
    /// scores (as `predict_proba`).
    pub fn input_gradient(&self, x: ArrayView1<f32>, class: usize, output: Output) -> Array1<f32> {
        let rows = x.insert_axis(Axis(0));
        self.input_gradients(rows, class, output)
            .index_axis_move(Axis(0), 0)
    }

    /// `input_gradient` of every row of `x`, one output row per input row.
    ///
    /// # Panics
    /// When `class` is not an output of the network or `x` has the wrong width.
    pub fn input_gradients(&self, x: ArrayView2<f32>, class: usize, output: Output) -> Array2<f32> {
        assert!(
            class < self.n_outputs(),
            "class {class} is not one of the {} outputs",
            self.n_outputs()
        );
        assert_eq!(x.ncols(), self.n_inputs(), "input width");
        let last = self.coefs.len() - 1;
        // Forward, keeping every layer's output (after the hidden activation; softmax for the
        // last: its probabilities are needed for `Probability` only, and the logits' derivative
        // is the same whatever the output).
        let mut activations: Vec<Array2<f32>> = Vec::with_capacity(self.coefs.len());
        for i in 0..=last {
            let input = if i == 0 {
                x.view()
            } else {
                activations[i - 1].view()
            };
            let mut z = Array2::zeros((x.nrows(), self.coefs[i].ncols()));
            for mut row in z.rows_mut() {
                row.assign(&self.intercepts[i]);
            }
            gemm(1.0, input, self.coefs[i].view(), 1.0, z.view_mut());
            if i < last {
                self.activation
                    .apply_slice(z.as_slice_mut().expect("a fresh array is contiguous"));
            } else {
                super::softmax_rows(&mut z);
            }
            activations.push(z);
        }
        // d output / d logits.
        let mut delta = Array2::zeros(activations[last].raw_dim());
        match output {
            Output::Logit => delta.column_mut(class).fill(1.0),
            Output::Probability => {
                // d p_c / d z_j = p_c (1[j = c] - p_j).
                for (mut d, p) in delta.rows_mut().into_iter().zip(activations[last].rows()) {
                    let pc = p[class];
                    Zip::from(&mut d).and(&p).for_each(|d, &pj| *d = -pc * pj);
                    d[class] += pc;
                }
            }
        }
        // Back through each layer: delta @ W^T, then the activation's derivative below.
        for i in (0..=last).rev() {
            let mut below = Array2::zeros((x.nrows(), self.coefs[i].nrows()));
            gemm(1.0, delta.view(), self.coefs[i].t(), 0.0, below.view_mut());
            if i > 0 {
                self.activation.multiply_derivative(
                    below.as_slice_mut().expect("a fresh array is contiguous"),
                    activations[i - 1]
                        .as_slice()
                        .expect("a fresh array is contiguous"),
                );
            }
            delta = below;
        }
        delta
    }
}
