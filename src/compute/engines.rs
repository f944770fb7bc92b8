//! Adapters from the worker to the engines (`nn`, `tsne`, `explain`): the one place that knows
//! their signatures, so the worker and the UI speak only in [`super`]'s plain types.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::{EpochRecord, Method, StopReason};
use crate::data::Dataset;
use crate::nn::{self, Mlp};
use crate::{explain, tsne};

/// A training run that can be cancelled and resumed (pause/resume).
pub struct TrainSession {
    trainer: nn::Trainer,
}

impl TrainSession {
    /// A fresh network with the given hidden layers, seeded.
    pub fn new(
        n_inputs: usize,
        n_classes: usize,
        hidden: &[usize],
        max_epochs: usize,
        seed: u64,
    ) -> TrainSession {
        let params = nn::TrainParams {
            hidden: hidden.to_vec(),
            max_epochs,
            seed,
            ..nn::TrainParams::default()
        };
        TrainSession {
            trainer: nn::Trainer::new(n_inputs, n_classes, params),
        }
    }

    /// Train until convergence, the epoch limit or `cancel`; call again to resume.
    pub fn run(
        &mut self,
        train: &Dataset,
        test: Option<&Dataset>,
        on_epoch: &mut dyn FnMut(&EpochRecord),
        cancel: &AtomicBool,
    ) -> anyhow::Result<StopReason> {
        let mut forward = |m: &nn::EpochMetrics| {
            on_epoch(&EpochRecord {
                epoch: m.epoch,
                train_loss: m.train_loss,
                train_accuracy: m.train_accuracy,
                test_loss: m.test_loss,
                test_accuracy: m.test_accuracy,
                seconds: m.seconds,
                samples_per_sec: m.samples_per_sec,
            });
        };
        let reason = self.trainer.run(train, test, &mut forward, Some(cancel));
        if let Some(last) = self.trainer.history().last()
            && !last.train_loss.is_finite()
        {
            anyhow::bail!("the training loss diverged (epoch {})", last.epoch);
        }
        Ok(match reason {
            nn::StopReason::Converged => StopReason::Converged,
            nn::StopReason::MaxEpochs => StopReason::MaxEpochs,
            nn::StopReason::Cancelled => StopReason::Cancelled,
            nn::StopReason::Diverged { epoch } => {
                anyhow::bail!("the training loss diverged (epoch {epoch})")
            }
        })
    }

    /// The model so far.
    pub fn model(&self) -> &Mlp {
        self.trainer.model()
    }
}

/// Open a saved model (.npz) and check it fits the data.
pub fn load_model(path: &Path, n_features: usize, n_classes: usize) -> anyhow::Result<Mlp> {
    let model = nn::load_npz(path)?;
    model.check_fits(n_features, n_classes)?;
    Ok(model)
}

/// Confusion matrix (true class x predicted class).
pub fn confusion_matrix(labels: &[u8], preds: &[u8], n_classes: usize) -> Array2<usize> {
    nn::confusion_matrix(labels, preds, n_classes)
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

/// Embed `data` in 2-D with t-SNE (the engine's defaults, the notebook's settings).
pub fn tsne(
    data: ArrayView2<f32>,
    perplexity: f64,
    seed: u64,
    progress: &mut dyn FnMut(&TsneStep),
    cancel: &AtomicBool,
) -> anyhow::Result<(Array2<f32>, Option<f64>, usize)> {
    let params = tsne::TsneParams {
        perplexity,
        seed,
        progress_every: 10,
        ..tsne::TsneParams::default()
    };
    let mut forward = |p: &tsne::TsneProgress<'_>| {
        progress(&TsneStep {
            iteration: p.iteration,
            n_iter: p.n_iter,
            kl_divergence: p.kl_divergence,
            embedding: p.embedding,
        });
    };
    let e = tsne::tsne(data, &params, Some(&mut forward), Some(cancel))?;
    Ok((e.coords, Some(e.kl_divergence), e.n_iter))
}

/// Share of each point's 10 nearest neighbours in `high` kept among its 10 nearest in `low`.
pub fn trust(high: ArrayView2<f32>, low: ArrayView2<f32>) -> Option<f64> {
    (high.nrows() > 10).then(|| tsne::neighbour_preservation(high, low, 10))
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

/// Explain `model`'s output for `class` at `x` against `background` (with its pass made once,
/// when given), with the method's default number of samples.
#[expect(clippy::too_many_arguments)]
pub fn explain(
    model: &Mlp,
    x: ArrayView1<f32>,
    background: ArrayView2<f32>,
    method: Method,
    class: usize,
    prepared: Option<&explain::PreparedBackground>,
    seed: u64,
    progress: &mut dyn FnMut(&ExplainStep),
    cancel: &AtomicBool,
) -> anyhow::Result<Attribution> {
    let method = match method {
        Method::Notebook => explain::Method::Notebook,
        Method::Permutation => explain::Method::Permutation,
        Method::GradientTimesInput => explain::Method::GradientTimesInput,
        Method::IntegratedGradients => explain::Method::IntegratedGradients,
    };
    let params = explain::ExplainParams {
        method,
        class: Some(class),
        samples: explain::ExplainParams::default_samples(method),
        seed,
        progress_every: 5,
        ..explain::ExplainParams::default()
    };
    let mut forward = |p: &explain::ExplainProgress<'_>| {
        progress(&ExplainStep {
            values: p.values,
            stderr: p.stderr,
            samples_done: p.samples_done,
            samples_total: p.samples_total,
        });
    };
    let a = explain::explain_prepared(
        model,
        x,
        background,
        prepared,
        &params,
        Some(&mut forward),
        Some(cancel),
    )?;
    Ok(Attribution {
        values: a.values,
        stderr: a.stderr,
        samples: a.samples,
    })
}
