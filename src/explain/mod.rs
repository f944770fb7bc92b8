//! Attributions for one input: which features moved the model's output for one class.
//!
//! Shapley values of v(S) = E_b f(x_S, b_rest), with b drawn from the background (the training
//! set), by two estimators: the notebook's sampler (`Method::Notebook`, kept exactly for
//! comparison) and Castro et al. (2009) permutation sampling made fast for an MLP
//! (`Method::Permutation`). Gradient methods for comparison: gradient x input and integrated
//! gradients (Sundararajan et al. 2017). Every method reports its running estimate through a
//! progress callback and stops when its cancel flag is raised. The same seed gives the same map
//! whatever the number of threads: work is split by sample index, each sample has its own random
//! stream, and sums are taken in index order.

mod gradient;
mod net;
mod shapley;
mod stats;

use std::sync::atomic::AtomicBool;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

pub use net::Real;
pub use shapley::{CoalitionDraw, CoalitionSampler};

use crate::Cancelled;
use crate::nn::Mlp;
use net::Net;
use shapley::{Problem, to_f32};

/// How attributions are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// The notebook's sampling estimator: per feature and iteration, a random coalition and
    /// background row, two evaluations per marginal contribution.
    Notebook,
    /// Random permutations walked from a background row to the input (Castro et al. 2009).
    #[default]
    Permutation,
    /// Gradient times (input - baseline).
    GradientTimesInput,
    /// Integrated gradients from a baseline to the input (Sundararajan et al. 2017).
    IntegratedGradients,
}

/// Which output is explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Units {
    /// The class's softmax probability (as the notebook).
    #[default]
    Probability,
    /// The class's logit (pre-softmax score).
    Logit,
}

/// The reference input of the gradient methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Baseline {
    /// All features 0 (a black image).
    #[default]
    Black,
    /// The mean background row.
    BackgroundMean,
}

/// What to explain and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainParams {
    /// The estimator or gradient method.
    pub method: Method,
    /// Class to explain; `None` explains the predicted class.
    pub class: Option<usize>,
    /// Probability (as the notebook) or logit.
    pub units: Units,
    /// Notebook: iterations per feature; permutation: permutations; integrated gradients: steps.
    pub samples: usize,
    /// Permutation: walk each permutation forwards and reversed (pairs count as two samples; an
    /// odd count is rounded up).
    pub antithetic: bool,
    /// Reference input of the gradient methods.
    pub baseline: Baseline,
    /// Seed of every random choice.
    pub seed: u64,
    /// Report progress every this many samples (0: only at the end).
    pub progress_every: usize,
}

impl Default for ExplainParams {
    fn default() -> Self {
        ExplainParams {
            method: Method::Permutation,
            class: None,
            units: Units::Probability,
            samples: 200,
            antithetic: false,
            baseline: Baseline::Black,
            seed: 0,
            progress_every: 10,
        }
    }
}

impl ExplainParams {
    // SHIM(cli): the explain branch's contract function.
    /// The defaults, with `method` and its default number of samples.
    pub fn for_method(method: Method) -> ExplainParams {
        ExplainParams {
            method,
            samples: Self::default_samples(method),
            ..ExplainParams::default()
        }
    }

    /// The default number of samples of a method: 200 iterations or permutations, 50 steps.
    pub fn default_samples(method: Method) -> usize {
        match method {
            Method::Notebook | Method::Permutation => 200,
            Method::GradientTimesInput => 1,
            Method::IntegratedGradients => 50,
        }
    }
}

/// A running estimate, passed to the progress callback.
#[derive(Debug, Clone, Copy)]
pub struct ExplainProgress<'a> {
    /// The current attribution per feature.
    pub values: ArrayView1<'a, f32>,
    /// Standard error per feature (sampling methods).
    pub stderr: Option<ArrayView1<'a, f32>>,
    /// Samples used so far.
    pub samples_done: usize,
    /// Samples the run will use.
    pub samples_total: usize,
}

/// The attribution of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    /// One value per feature, in the explained output's units.
    pub values: Array1<f32>,
    /// Standard error per feature (sampling methods).
    pub stderr: Option<Array1<f32>>,
    /// The explained class.
    pub class: usize,
    /// Samples used.
    pub samples: usize,
    /// Rows evaluated through the network (forward passes; a gradient counts one), including the
    /// pass over the background unless it was prepared beforehand.
    pub model_evaluations: u64,
    /// f(x).
    pub output: f64,
    /// Shapley methods: mean f over the background; gradient methods: f(baseline).
    pub reference: f64,
    /// sum(values) - (output - reference): 0 for an exact attribution.
    pub completeness_gap: f64,
    /// Permutation: the largest |incremental - full| first-layer pre-activation at the end of a
    /// walk (float32 drift of the incremental update); 0 for the other methods.
    pub max_drift: f64,
}

/// Why an explanation could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    /// The cancel flag was raised.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    /// The input does not have one value per model input.
    #[error("the input has {got} features: expected {expected} (the model's inputs)")]
    InputShape { expected: usize, got: usize },
    /// The background's columns do not match the model's inputs.
    #[error("the background has {got} columns: expected {expected} (the model's inputs)")]
    BackgroundShape { expected: usize, got: usize },
    /// The method needs background rows and there are none.
    #[error("the background is empty: expected at least one row")]
    EmptyBackground,
    /// The class is not one of the model's outputs.
    #[error("class {class} is out of range: the model has {n_classes} classes")]
    ClassOutOfRange { class: usize, n_classes: usize },
    /// The prepared background does not fit this model and background.
    #[error("the prepared background was made for another model or background")]
    PreparedMismatch,
    /// A sampling method was asked for zero samples.
    #[error("0 samples: expected at least 1")]
    NoSamples,
}

/// What the Shapley estimators need from the background for one model, computed in one pass over
/// it: every row's first-layer pre-activation (where the walks start) and every class's mean
/// output (the reference). This pass is the fixed cost of an explanation; prepare it once and
/// explain many images against it with `explain_prepared`.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedBackground {
    first_layer: Array2<f32>,
    mean_probability: Vec<f64>,
    mean_logit: Vec<f64>,
}

impl PreparedBackground {
    /// Prepare `background` (rows x the model's inputs) for `model`.
    pub fn new(model: &Mlp, background: ArrayView2<f32>) -> Result<Self, ExplainError> {
        let n = model.n_inputs();
        if background.ncols() != n {
            return Err(ExplainError::BackgroundShape {
                expected: n,
                got: background.ncols(),
            });
        }
        let net = Net::<f32>::from_mlp(model);
        let first_layer = net.first_layer_sparse(background);
        let (mean_probability, mean_logit) = shapley::background_means(&net, first_layer.view());
        Ok(PreparedBackground {
            first_layer,
            mean_probability,
            mean_logit,
        })
    }

    /// Mean over the background of one class's probability or logit.
    pub fn mean_output(&self, class: usize, units: Units) -> f64 {
        match units {
            Units::Probability => self.mean_probability[class],
            Units::Logit => self.mean_logit[class],
        }
    }
}

/// Explain `model`'s output for one class at input `x`, against `background` (the training set),
/// reporting the running estimate through `progress` and stopping when `cancel` is raised.
pub fn explain(
    model: &Mlp,
    x: ArrayView1<f32>,
    background: ArrayView2<f32>,
    params: &ExplainParams,
    progress: Option<&mut dyn FnMut(&ExplainProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<Attribution, ExplainError> {
    explain_prepared(model, x, background, None, params, progress, cancel)
}

/// `explain` with the background prepared beforehand (`PreparedBackground::new(model,
/// background)`, same model and background), so that explaining many images pays for the pass
/// over the background once. `None` prepares it here when the method needs it.
pub fn explain_prepared(
    model: &Mlp,
    x: ArrayView1<f32>,
    background: ArrayView2<f32>,
    prepared: Option<&PreparedBackground>,
    params: &ExplainParams,
    progress: Option<&mut dyn FnMut(&ExplainProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<Attribution, ExplainError> {
    let n = model.n_inputs();
    if x.len() != n {
        return Err(ExplainError::InputShape {
            expected: n,
            got: x.len(),
        });
    }
    if background.ncols() != n {
        return Err(ExplainError::BackgroundShape {
            expected: n,
            got: background.ncols(),
        });
    }
    let needs_background = !matches!(
        (params.method, params.baseline),
        (
            Method::GradientTimesInput | Method::IntegratedGradients,
            Baseline::Black
        )
    );
    if needs_background && background.nrows() == 0 {
        return Err(ExplainError::EmptyBackground);
    }
    if params.samples == 0 && params.method != Method::GradientTimesInput {
        return Err(ExplainError::NoSamples);
    }
    let net = Net::<f32>::from_mlp(model);
    let x_vec = x.to_vec();
    let x2 = x.view().insert_axis(ndarray::Axis(0));
    let class = match params.class {
        Some(c) if c >= net.n_outputs() => {
            return Err(ExplainError::ClassOutOfRange {
                class: c,
                n_classes: net.n_outputs(),
            });
        }
        Some(c) => c,
        None => {
            let logits = net.logits_from_first(net.first_layer_batch(x2).view_mut());
            crate::nn::argmax(logits.row(0).as_slice().unwrap_or(&[]))
        }
    };
    let output = net.outputs(x2, class, params.units)[0];
    match params.method {
        Method::Notebook | Method::Permutation => {
            let owned;
            let (prepared, background_evaluations) = match prepared {
                Some(p) => (p, 0),
                None => {
                    owned = PreparedBackground::new(model, background)?;
                    (&owned, background.nrows() as u64)
                }
            };
            if prepared.first_layer.dim() != (background.nrows(), net.width1())
                || prepared.mean_probability.len() != net.n_outputs()
            {
                return Err(ExplainError::PreparedMismatch);
            }
            let reference = prepared.mean_output(class, params.units);
            let problem = Problem {
                net: &net,
                x: &x_vec,
                background: background.reborrow(),
                h_background: prepared.first_layer.view(),
                class,
                units: params.units,
                seed: params.seed,
            };
            let run = if params.method == Method::Notebook {
                shapley::notebook(
                    &problem,
                    params.samples,
                    params.progress_every,
                    progress,
                    cancel,
                )?
            } else {
                shapley::permutation(
                    &problem,
                    params.samples,
                    params.antithetic,
                    params.progress_every,
                    progress,
                    cancel,
                )?
            };
            let values = run.stats.mean();
            let sum: f64 = values.sum();
            Ok(Attribution {
                values: values.mapv(to_f32),
                stderr: Some(run.stats.stderr().mapv(to_f32)),
                class,
                samples: run.samples,
                model_evaluations: run.evaluations + 1 + background_evaluations,
                output,
                reference,
                completeness_gap: sum - (output - reference),
                max_drift: run.max_drift,
            })
        }
        Method::GradientTimesInput | Method::IntegratedGradients => {
            let baseline = match params.baseline {
                Baseline::Black => Array1::zeros(n),
                Baseline::BackgroundMean => net::column_means(background),
            };
            let steps = if params.method == Method::GradientTimesInput {
                None
            } else {
                Some(params.samples)
            };
            let run = gradient::attribute(
                model,
                &net,
                x,
                baseline.view(),
                class,
                params.units,
                steps,
                params.progress_every,
                progress,
                cancel,
            )?;
            let sum: f64 = run.values.iter().map(|&v| f64::from(v)).sum();
            Ok(Attribution {
                values: run.values,
                stderr: None,
                class,
                samples: run.steps,
                model_evaluations: run.evaluations + 1,
                output,
                reference: run.reference,
                completeness_gap: sum - (output - run.reference),
                max_drift: 0.0,
            })
        }
    }
}

/// The model's explained output (class probability or logit) for each row, in f64.
pub fn class_outputs(model: &Mlp, rows: ArrayView2<f32>, class: usize, units: Units) -> Vec<f64> {
    Net::<f32>::from_mlp(model).outputs(rows, class, units)
}

/// The marginal contributions of one permutation walk from background row `b` to `x` along
/// `order`, computed entirely in f64 by the same code as `Method::Permutation`: one value per
/// feature (0 for features where `x` and `b` agree). For exactness checks.
pub fn permutation_contributions(
    model: &Mlp,
    x: ArrayView1<f32>,
    b: ArrayView1<f32>,
    order: &[usize],
    class: usize,
    units: Units,
) -> Vec<f64> {
    shapley::permutation_contributions(&Net::from_mlp(model), x, b, order, class, units)
}

/// The first-layer pre-activations along a permutation walk from `b` to `x`, as the permutation
/// estimator builds them incrementally (one W1 row added per step), in `T`: row 0 is `b`, then
/// one row per feature of `order` where `x` and `b` differ; also returns those features.
pub fn first_layer_path<T: Real>(
    model: &Mlp,
    x: ArrayView1<f32>,
    b: ArrayView1<f32>,
    order: &[usize],
) -> (Array2<T>, Vec<usize>) {
    let net = Net::<T>::from_mlp(model);
    let x: Vec<T> = x.iter().map(|&v| T::from_f32(v)).collect();
    let b: Vec<T> = b.iter().map(|&v| T::from_f32(v)).collect();
    let h_b = net.first_layer(&b);
    let width = net.width1();
    let mut rows = Vec::new();
    let mut steps = Vec::new();
    let r = shapley::walk_first_layer(&net, &x, &b, &h_b, order, &mut steps, &mut rows);
    let path = Array2::from_shape_vec((r, width), rows).expect("r rows of width values");
    (path, steps)
}
