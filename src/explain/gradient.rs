//! Gradient methods: gradient x (input - baseline), and integrated gradients (Sundararajan et al.
//! 2017, eq. 3 with the midpoint rule) along the straight line from the baseline to the input.
//! The gradients are the model's own backpropagation (`Mlp::input_gradients`).

use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::ExplainProgress;
use super::Units;
use super::net::{Net, Target};
use super::shapley::to_f32;
use crate::Cancelled;
use crate::nn::{Mlp, Output};

pub(crate) struct GradientRun {
    pub values: Array1<f32>,
    pub steps: usize,
    pub evaluations: u64,
    pub reference: f64,
}

/// Van der Corput radical inverse in base 2: orders the integration points so that every prefix
/// is spread over [0, 1] and the running estimate is meaningful while it sharpens.
fn van_der_corput(mut k: usize) -> f64 {
    let (mut v, mut scale) = (0.0, 0.5);
    while k > 0 {
        if k & 1 == 1 {
            v += scale;
        }
        k >>= 1;
        scale *= 0.5;
    }
    v
}

/// The gradient of the explained output at each row: one class's, or the difference of two
/// classes' for a contrast.
fn target_gradients(model: &Mlp, rows: ArrayView2<f32>, target: Target) -> Array2<f32> {
    let output = match target.units {
        Units::Probability => Output::Probability,
        Units::Logit => Output::Logit,
    };
    let mut grads = model.input_gradients(rows, target.class, output);
    if let Some(versus) = target.versus {
        grads -= &model.input_gradients(rows, versus, output);
    }
    grads
}

/// Attribute `x` against `baseline`: gradient x input when `steps` is `None`, integrated
/// gradients with `steps` midpoints otherwise.
#[expect(clippy::too_many_arguments)]
pub(crate) fn attribute(
    model: &Mlp,
    net: &Net<f32>,
    x: ArrayView1<f32>,
    baseline: ArrayView1<f32>,
    target: Target,
    steps: Option<usize>,
    progress_every: usize,
    mut progress: Option<&mut dyn FnMut(&ExplainProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<GradientRun, Cancelled> {
    let n = x.len();
    let diff: Array1<f64> = x
        .iter()
        .zip(baseline)
        .map(|(&a, &b)| f64::from(a) - f64::from(b))
        .collect();
    let reference = net.outputs(baseline.insert_axis(ndarray::Axis(0)), target)[0];
    // Integration points: alpha = (k + 1/2) / m, visited in van der Corput order.
    let alphas: Vec<f64> = match steps {
        None => vec![1.0],
        Some(m) => {
            let mut ks: Vec<usize> = (0..m).collect();
            ks.sort_by(|&a, &b| van_der_corput(a).total_cmp(&van_der_corput(b)));
            ks.into_iter()
                .map(|k| (k as f64 + 0.5) / m as f64)
                .collect()
        }
    };
    let total = alphas.len();
    let block = if progress_every == 0 {
        total
    } else {
        progress_every.min(total)
    };
    let mut grad_sum = Array1::<f64>::zeros(n);
    let mut done = 0;
    let mut values = Array1::<f32>::zeros(n);
    for chunk in alphas.chunks(block) {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Cancelled);
        }
        let rows = Array2::from_shape_fn((chunk.len(), n), |(r, i)| {
            to_f32(f64::from(baseline[i]) + chunk[r] * diff[i])
        });
        let grads = target_gradients(model, rows.view(), target);
        for g in grads.rows() {
            grad_sum.zip_mut_with(&g, |s, &v| *s += f64::from(v));
        }
        done += chunk.len();
        let scale = 1.0 / done as f64;
        values = grad_sum
            .iter()
            .zip(&diff)
            .map(|(g, d)| to_f32(g * scale * d))
            .collect();
        if let Some(cb) = progress.as_mut() {
            cb(&ExplainProgress {
                values: values.view(),
                stderr: None,
                samples_done: done,
                samples_total: total,
            });
        }
    }
    Ok(GradientRun {
        values,
        steps: total,
        evaluations: total as u64 + 1,
        reference,
    })
}
