//! Adapters from the worker to the engines (`nn`, `tsne`, `explain`): the one place that knows
//! their signatures, so the worker and the UI speak only in [`super`]'s plain types.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::{EpochRecord, Method, StopReason};
use crate::data::Dataset;
use crate::nn::Mlp;

/// A training run that can be cancelled and resumed (pause/resume).
pub struct TrainSession {
    model: Mlp,
}

impl TrainSession {
    /// A fresh network with the given hidden layers, seeded.
    pub fn new(
        n_inputs: usize,
        n_classes: usize,
        hidden: &[usize],
        _max_epochs: usize,
        seed: u64,
    ) -> TrainSession {
        let mut sizes = vec![n_inputs];
        sizes.extend_from_slice(hidden);
        sizes.push(n_classes);
        TrainSession {
            model: Mlp::new(&sizes, seed),
        }
    }

    /// Train until convergence, the epoch limit or `cancel`; call again to resume.
    pub fn run(
        &mut self,
        _train: &Dataset,
        _test: Option<&Dataset>,
        _on_epoch: &mut dyn FnMut(&EpochRecord),
        _cancel: &AtomicBool,
    ) -> anyhow::Result<StopReason> {
        anyhow::bail!("training is not merged yet (branch nn)")
    }

    /// The model so far.
    pub fn model(&self) -> &Mlp {
        &self.model
    }
}

/// Open a saved model (.npz).
pub fn load_model(path: &Path) -> anyhow::Result<Mlp> {
    anyhow::bail!(
        "loading {} needs nn::load_npz (branch nn, not merged yet)",
        path.display()
    )
}

/// Confusion matrix (true class x predicted class).
pub fn confusion_matrix(labels: &[u8], preds: &[u8], n_classes: usize) -> Array2<usize> {
    let mut m = Array2::zeros((n_classes, n_classes));
    for (&t, &p) in labels.iter().zip(preds) {
        if usize::from(t) < n_classes && usize::from(p) < n_classes {
            m[[usize::from(t), usize::from(p)]] += 1;
        }
    }
    m
}

/// One t-SNE progress report: iteration, total, KL (when computed) and the embedding so far.
pub struct TsneStep<'a> {
    /// Iterations done.
    pub iteration: usize,
    /// Iterations planned.
    pub n_iter: usize,
    /// KL divergence, when this step computed it.
    pub kl_divergence: Option<f64>,
    /// The embedding so far, n x 2.
    pub embedding: ArrayView2<'a, f32>,
}

/// Iterations the t-SNE engine plans by default.
pub fn tsne_default_iterations() -> usize {
    1000
}

/// Embed `data` in 2-D with t-SNE.
pub fn tsne(
    _data: ArrayView2<f32>,
    _perplexity: f64,
    _seed: u64,
    _progress: &mut dyn FnMut(&TsneStep),
    _cancel: &AtomicBool,
) -> anyhow::Result<(Array2<f32>, Option<f64>)> {
    anyhow::bail!("t-SNE is not merged yet (branch tsne)")
}

/// Share of each point's 10 nearest neighbours in `high` kept among its 10 nearest in `low`.
pub fn trust(_high: ArrayView2<f32>, _low: ArrayView2<f32>) -> Option<f64> {
    None
}

/// One saliency progress report.
pub struct ExplainStep<'a> {
    /// Running estimate, one value per pixel.
    pub values: ArrayView1<'a, f32>,
    /// Standard error per pixel, when the method has one.
    pub stderr: Option<ArrayView1<'a, f32>>,
    /// Samples done.
    pub samples_done: usize,
    /// Samples planned.
    pub samples_total: usize,
}

/// The finished attribution: values and optional standard errors.
pub struct Attribution {
    /// One value per pixel.
    pub values: Array1<f32>,
    /// Standard errors, when the method has them.
    pub stderr: Option<Array1<f32>>,
    /// Samples used.
    pub samples: usize,
}

/// Explain `model`'s output for `class` at `x` against `background`.
#[expect(clippy::too_many_arguments)]
pub fn explain(
    _model: &Mlp,
    _x: ArrayView1<f32>,
    _background: ArrayView2<f32>,
    _method: Method,
    _class: usize,
    _seed: u64,
    _progress: &mut dyn FnMut(&ExplainStep),
    _cancel: &AtomicBool,
) -> anyhow::Result<Attribution> {
    anyhow::bail!("saliency is not merged yet (branch explain)")
}
