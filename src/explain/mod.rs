//! Attributions for one input: which features moved the model's output for one class, or for
//! the difference of two classes ("why 4 and not 9", `ExplainParams::versus`); and class-level
//! maps, the mean attribution over many images (`explain_class_mean`).
//!
//! Shapley values of v(S) = E_b f(x_S, b_rest), with b drawn from the background (the training
//! set), by two estimators: the notebook's sampler (`Method::Notebook`, kept exactly for
//! comparison) and Castro et al. (2009) permutation sampling made fast for an MLP
//! (`Method::Permutation`). Gradient methods for comparison: gradient x input and integrated
//! gradients (Sundararajan et al. 2017). Every method reports its running estimate through a
//! progress callback and stops when its cancel flag is raised. The same seed gives the same map
//! whatever the number of threads: work is split by sample index, each sample has its own random
//! stream, and sums are taken in index order.
//!
//! Every result carries its Shapley bookkeeping in the units computed: f(x), the base value
//! E[f(b)] (or f(baseline)), the sum of the attributions, the efficiency gap between them and
//! the standard error of the sum, so a front-end can show whether the numbers add up.

mod class_mean;
mod gradient;
mod net;
mod shapley;
mod stats;

use std::sync::atomic::AtomicBool;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

pub use class_mean::{
    CLASS_MEAN_PERMUTATIONS, ClassMean, ClassMeanProgress, explain_class_mean, relative_stderr,
};
pub use net::Real;
pub use shapley::{CoalitionDraw, CoalitionSampler};

use crate::Cancelled;
use crate::nn::Mlp;
use net::{Net, Target};
use shapley::{Problem, to_f32};

/// How attributions are computed.
///
/// The default, everywhere (TUI, headless commands, `ExplainParams::default()`), is
/// `Permutation`: at the same budget (200 permutations against the notebook's 200 iterations per
/// pixel) it is at least as accurate (relative L2 0.327 vs 0.338 against a 20,000-permutation
/// reference, `cargo bench --bench explain`) for a third of the time (0.34 vs 1.16 CPU seconds on
/// a 2-core AMD EPYC, AVX2), and every permutation sums exactly to f(x) - f(b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Units {
    /// The class's softmax probability (as the notebook).
    #[default]
    Probability,
    /// The class's logit (pre-softmax score).
    Logit,
}

/// The reference input of the gradient methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Baseline {
    /// All features 0 (a black image).
    #[default]
    Black,
    /// The mean background row.
    BackgroundMean,
}

/// What to explain and how (hashable: a front-end can key its cache of finished explanations on
/// it and the image).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExplainParams {
    /// The estimator or gradient method.
    pub method: Method,
    /// Class to explain; `None` explains the predicted class.
    pub class: Option<usize>,
    /// Contrast class: explain f_class(x) - f_versus(x), "why `class` and not `versus`";
    /// `None` explains f_class alone.
    pub versus: Option<usize>,
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
    /// `ExplainParams::for_method(Method::default())`.
    fn default() -> Self {
        ExplainParams::for_method(Method::default())
    }
}

impl ExplainParams {
    /// `method` with its default budget (`default_samples`) and the other defaults: the
    /// predicted class, probability units, no antithetic pairs, a black baseline, seed 0,
    /// progress every 10 samples.
    pub fn for_method(method: Method) -> ExplainParams {
        ExplainParams {
            method,
            class: None,
            versus: None,
            units: Units::Probability,
            samples: ExplainParams::default_samples(method),
            antithetic: false,
            baseline: Baseline::Black,
            seed: 0,
            progress_every: 10,
        }
    }

    /// The default budget of a method (the one place of this rule): the notebook estimator 200
    /// iterations per pixel, permutation 200 permutations, integrated gradients 50 steps,
    /// gradient x input 1 gradient.
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

/// The attribution of one input. (`Default` is an empty attribution, for fixtures that fill in
/// the fields they show.)
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attribution {
    /// One value per feature, in the explained output's units.
    pub values: Array1<f32>,
    /// Standard error per feature (sampling methods).
    pub stderr: Option<Array1<f32>>,
    /// The explained class.
    pub class: usize,
    /// The contrast class, when f_class - f_versus was explained.
    pub versus: Option<usize>,
    /// The units of the values and of every figure below (probability or logit; for a contrast,
    /// a difference of those).
    pub units: Units,
    /// Samples used.
    pub samples: usize,
    /// Rows evaluated through the network (forward passes; a gradient counts one), including the
    /// pass over the background unless it was prepared beforehand.
    pub model_evaluations: u64,
    /// f(x).
    pub output: f64,
    /// The base value: Shapley methods, E[f(b)] over the background; gradient methods,
    /// f(baseline).
    pub reference: f64,
    /// sum(values).
    pub sum: f64,
    /// sum(values) - (output - reference): 0 for an exact attribution (efficiency).
    pub completeness_gap: f64,
    /// Standard error of `sum` (sampling methods; `None` for the deterministic gradient
    /// methods): the scale the gap strays from 0 by chance. Permutations: the spread of each
    /// walk's total f(x) - f(b); the notebook estimator: its features are drawn independently,
    /// so the root sum of squared per-feature standard errors.
    pub sum_stderr: Option<f64>,
    /// Permutation: the largest |incremental - full| first-layer pre-activation at the end of a
    /// walk (float32 drift of the incremental update); 0 for the other methods.
    pub max_drift: f64,
}

impl Attribution {
    /// The efficiency gap in standard errors of the sum (`None` for the gradient methods, or
    /// when the standard error is 0): beyond about 3, the gap is more than sampling noise.
    pub fn gap_in_stderrs(&self) -> Option<f64> {
        self.sum_stderr
            .filter(|&se| se > 0.0)
            .map(|se| self.completeness_gap / se)
    }
}

/// Why an explanation could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    /// The cancel flag was raised.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    /// The model has no layers.
    #[error("the model has no layers")]
    NoLayers,
    /// The model has no inputs: there is nothing to attribute to.
    #[error("the model has no inputs: there are no features to attribute to")]
    NoFeatures,
    /// A layer has no units (layer 0 is the input, the last the output).
    #[error("layer {layer} of the model has no units")]
    EmptyLayer { layer: usize },
    /// A layer's weights or biases do not fit the layer below.
    #[error("layer {layer} of the model does not fit the layer below (weights or biases)")]
    LayerShape { layer: usize },
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
    /// A contrast of a class with itself (the explained output would be 0).
    #[error("class {class} contrasted with itself: choose another class to compare with")]
    ContrastWithItself { class: usize },
    /// A class-level map was asked for without a class.
    #[error("a class-level map needs a class")]
    NoClass,
    /// A class-level map was asked for over no images.
    #[error("no images: a class-level map needs at least one")]
    NoImages,
    /// A sampling method was asked for zero samples.
    #[error("0 samples: expected at least 1")]
    NoSamples,
}

/// Check that `model` can be explained: at least one layer, inputs, no layer without units, and
/// each layer's weights and biases fitting the layer below (what the engine indexes and divides
/// by). `Mlp`'s fields are public, so a hand-built model can break any of these.
fn check_model(model: &Mlp) -> Result<(), ExplainError> {
    let Some(first) = model.coefs.first() else {
        return Err(ExplainError::NoLayers);
    };
    if first.nrows() == 0 {
        return Err(ExplainError::NoFeatures);
    }
    if model.intercepts.len() != model.coefs.len() {
        return Err(ExplainError::LayerShape {
            layer: model.coefs.len().min(model.intercepts.len()) + 1,
        });
    }
    let mut fan_in = first.nrows();
    for (l, (w, b)) in model.coefs.iter().zip(&model.intercepts).enumerate() {
        if w.nrows() != fan_in || b.len() != w.ncols() {
            return Err(ExplainError::LayerShape { layer: l + 1 });
        }
        if w.ncols() == 0 {
            return Err(ExplainError::EmptyLayer { layer: l + 1 });
        }
        fan_in = w.ncols();
    }
    Ok(())
}

/// The background must have one column per model input.
fn check_background(model: &Mlp, background: ArrayView2<f32>) -> Result<(), ExplainError> {
    let n = model.n_inputs();
    if background.ncols() == n {
        Ok(())
    } else {
        Err(ExplainError::BackgroundShape {
            expected: n,
            got: background.ncols(),
        })
    }
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
        check_model(model)?;
        check_background(model, background)?;
        let net = Net::<f32>::from_mlp(model);
        let first_layer = net.first_layer_sparse(background);
        let (mean_probability, mean_logit) = shapley::background_means(&net, first_layer.view());
        Ok(PreparedBackground {
            first_layer,
            mean_probability,
            mean_logit,
        })
    }

    /// Mean over the background of one class's probability or logit (0 past the last class).
    pub fn mean_output(&self, class: usize, units: Units) -> f64 {
        let means = match units {
            Units::Probability => &self.mean_probability,
            Units::Logit => &self.mean_logit,
        };
        means.get(class).copied().unwrap_or(0.0)
    }

    /// Mean over the background of the explained output (a contrast's is the difference of the
    /// two classes' means).
    fn mean_target(&self, target: Target) -> f64 {
        let f = self.mean_output(target.class, target.units);
        target
            .versus
            .map_or(f, |v| f - self.mean_output(v, target.units))
    }

    /// Whether this was prepared for a model like `net` and a background of `rows` rows.
    fn fits(&self, net: &Net<f32>, rows: usize) -> bool {
        self.first_layer.dim() == (rows, net.width1())
            && self.mean_probability.len() == net.n_outputs()
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
    // (ndarray views are invariant in their lifetime: reborrow to a common one.)
    let request = Request::new(model, x.reborrow(), background.reborrow(), params)?;
    match params.method {
        Method::Notebook | Method::Permutation => {
            shapley_attribution(&request, prepared, progress, cancel)
        }
        Method::GradientTimesInput | Method::IntegratedGradients => {
            gradient_attribution(&request, progress, cancel)
        }
    }
}

/// One checked explanation request: the model in the engine's form, the input, the class and
/// f(x).
struct Request<'a> {
    model: &'a Mlp,
    net: Net<f32>,
    x: ArrayView1<'a, f32>,
    background: ArrayView2<'a, f32>,
    params: &'a ExplainParams,
    target: Target,
    /// f(x) for the explained target, in the explained units.
    output: f64,
}

impl<'a> Request<'a> {
    /// Check the model, the shapes and the budget; resolve the class; compute f(x).
    fn new(
        model: &'a Mlp,
        x: ArrayView1<'a, f32>,
        background: ArrayView2<'a, f32>,
        params: &'a ExplainParams,
    ) -> Result<Self, ExplainError> {
        check_model(model)?;
        let n = model.n_inputs();
        if x.len() != n {
            return Err(ExplainError::InputShape {
                expected: n,
                got: x.len(),
            });
        }
        check_background(model, background)?;
        if params.needs_background() && background.nrows() == 0 {
            return Err(ExplainError::EmptyBackground);
        }
        if params.samples == 0 && params.method != Method::GradientTimesInput {
            return Err(ExplainError::NoSamples);
        }
        let net = Net::<f32>::from_mlp(model);
        let x2 = x.insert_axis(Axis(0));
        let class = match params.class {
            Some(c) => check_class(&net, c)?,
            None => {
                let logits = net.logits_from_first(net.first_layer_batch(x2).view_mut());
                crate::nn::argmax(logits.row(0).as_slice().unwrap_or(&[]))
            }
        };
        let versus = match params.versus {
            Some(v) if v == class => return Err(ExplainError::ContrastWithItself { class }),
            Some(v) => Some(check_class(&net, v)?),
            None => None,
        };
        let target = Target {
            class,
            versus,
            units: explained_units(model, params.units),
        };
        let output = net.outputs(x2, target)[0];
        Ok(Request {
            model,
            net,
            x,
            background,
            params,
            target,
            output,
        })
    }
}

/// The units a model is explained in: those asked for, except that a model without a softmax
/// (raw scores out, `Mlp::softmax` false) is always explained in logits, its own outputs. (A
/// softmax added by the explainer would explain a function the model does not compute.) The
/// attribution's `units` says which were used.
pub fn explained_units(model: &Mlp, asked: Units) -> Units {
    if model.softmax { asked } else { Units::Logit }
}

fn check_class<T: Real>(net: &Net<T>, class: usize) -> Result<usize, ExplainError> {
    if class < net.n_outputs() {
        Ok(class)
    } else {
        Err(ExplainError::ClassOutOfRange {
            class,
            n_classes: net.n_outputs(),
        })
    }
}

impl ExplainParams {
    /// Whether the method reads the background (Shapley values, or a background-mean baseline).
    fn needs_background(&self) -> bool {
        !matches!(
            (self.method, self.baseline),
            (
                Method::GradientTimesInput | Method::IntegratedGradients,
                Baseline::Black
            )
        )
    }
}

/// The Shapley estimators: prepare the background unless given, run the sampler, and report the
/// mean marginal contributions with their standard errors.
fn shapley_attribution(
    r: &Request<'_>,
    prepared: Option<&PreparedBackground>,
    progress: Option<&mut dyn FnMut(&ExplainProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<Attribution, ExplainError> {
    let owned;
    let (prepared, background_evaluations) = match prepared {
        Some(p) => (p, 0),
        None => {
            owned = PreparedBackground::new(r.model, r.background)?;
            (&owned, r.background.nrows() as u64)
        }
    };
    if !prepared.fits(&r.net, r.background.nrows()) {
        return Err(ExplainError::PreparedMismatch);
    }
    let x = r.x.to_vec();
    let problem = Problem {
        net: &r.net,
        x: &x,
        background: r.background.reborrow(),
        h_background: prepared.first_layer.view(),
        target: r.target,
        seed: r.params.seed,
    };
    let p = r.params;
    let run = match p.method {
        Method::Notebook => {
            shapley::notebook(&problem, p.samples, p.progress_every, progress, cancel)?
        }
        _ => shapley::permutation(
            &problem,
            p.samples,
            p.antithetic,
            p.progress_every,
            progress,
            cancel,
        )?,
    };
    let values = run.stats.mean();
    let sum_stderr = match p.method {
        Method::Notebook => run.stats.independent_total_stderr(),
        _ => run.stats.total_stderr(),
    };
    let sum: f64 = values.sum();
    let reference = prepared.mean_target(r.target);
    Ok(Attribution {
        values: values.mapv(to_f32),
        stderr: Some(run.stats.stderr().mapv(to_f32)),
        class: r.target.class,
        versus: r.target.versus,
        units: r.target.units,
        samples: run.samples,
        model_evaluations: run.evaluations + 1 + background_evaluations,
        output: r.output,
        reference,
        sum,
        completeness_gap: sum - (r.output - reference),
        sum_stderr: Some(sum_stderr),
        max_drift: run.max_drift,
    })
}

/// Gradient x input and integrated gradients, from a black or background-mean baseline.
fn gradient_attribution(
    r: &Request<'_>,
    progress: Option<&mut dyn FnMut(&ExplainProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<Attribution, ExplainError> {
    let p = r.params;
    let baseline = match p.baseline {
        Baseline::Black => Array1::zeros(r.x.len()),
        Baseline::BackgroundMean => net::column_means(r.background),
    };
    let steps = (p.method == Method::IntegratedGradients).then_some(p.samples);
    let run = gradient::attribute(
        r.model,
        &r.net,
        r.x,
        baseline.view(),
        r.target,
        steps,
        p.progress_every,
        progress,
        cancel,
    )?;
    let sum: f64 = run.values.iter().map(|&v| f64::from(v)).sum();
    Ok(Attribution {
        values: run.values,
        stderr: None,
        class: r.target.class,
        versus: r.target.versus,
        units: r.target.units,
        samples: run.steps,
        model_evaluations: run.evaluations + 1,
        output: r.output,
        reference: run.reference,
        sum,
        completeness_gap: sum - (r.output - run.reference),
        sum_stderr: None,
        max_drift: 0.0,
    })
}

/// The marginal contributions of one permutation walk from background row `b` to `x` along
/// `order`, computed entirely in f64 by the same walk as `Method::Permutation`: one value per
/// feature (0 for features where `x` and `b` agree), for f_class or, with `versus`, for
/// f_class - f_versus. For exactness checks.
pub fn permutation_contributions(
    model: &Mlp,
    x: ArrayView1<f32>,
    b: ArrayView1<f32>,
    order: &[usize],
    class: usize,
    versus: Option<usize>,
    units: Units,
) -> Result<Vec<f64>, ExplainError> {
    let net = checked_walk_net::<f64>(model, x, b, order)?;
    check_class(&net, class)?;
    if let Some(v) = versus {
        check_class(&net, v)?;
    }
    let target = Target {
        class,
        versus,
        units,
    };
    let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let b: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
    let (h_x, h_b) = (net.first_layer(&x), net.first_layer(&b));
    let mut scratch = shapley::WalkScratch::new(x.len(), net.width1());
    let walk = shapley::walk(&net, &x, &h_x, &b, &h_b, order, target, &mut scratch);
    let mut out = vec![0.0; x.len()];
    for (i, v) in walk.contributions {
        out[i] = v;
    }
    Ok(out)
}

/// The first-layer pre-activations along a permutation walk from `b` to `x`, as the permutation
/// estimator builds them incrementally (one W1 row added per step), in `T`: row 0 is `b`, then
/// one row per feature of `order` where `x` and `b` differ; also returns those features.
pub fn first_layer_path<T: Real>(
    model: &Mlp,
    x: ArrayView1<f32>,
    b: ArrayView1<f32>,
    order: &[usize],
) -> Result<(Array2<T>, Vec<usize>), ExplainError> {
    let net = checked_walk_net::<T>(model, x, b, order)?;
    let x: Vec<T> = x.iter().map(|&v| T::from_f32(v)).collect();
    let b: Vec<T> = b.iter().map(|&v| T::from_f32(v)).collect();
    let h_b = net.first_layer(&b);
    let width = net.width1();
    let mut rows = Vec::new();
    let mut steps = Vec::new();
    let r = shapley::walk_first_layer(&net, &x, &b, &h_b, order, &mut steps, &mut rows);
    let path = Array2::from_shape_vec((r, width), rows).expect("r rows of width values");
    Ok((path, steps))
}

/// The checks of the walk hooks: a model that can be explained, `x` and `b` of its width, and
/// `order` a permutation of its inputs.
fn checked_walk_net<T: Real>(
    model: &Mlp,
    x: ArrayView1<f32>,
    b: ArrayView1<f32>,
    order: &[usize],
) -> Result<Net<T>, ExplainError> {
    check_model(model)?;
    let n = model.n_inputs();
    for got in [x.len(), b.len(), order.len()] {
        if got != n {
            return Err(ExplainError::InputShape { expected: n, got });
        }
    }
    let mut seen = vec![false; n];
    for &i in order {
        if i >= n || std::mem::replace(&mut seen[i], true) {
            return Err(ExplainError::InputShape {
                expected: n,
                got: order.len(),
            });
        }
    }
    Ok(Net::from_mlp(model))
}
