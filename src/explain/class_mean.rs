//! Class-level maps: the mean attribution over many images of one class (or for a contrast pair),
//! with the standard error of that mean, sharpening as images finish (the class-level and
//! contrastive views asked for in shap#673 and captum#1103).
//!
//! Each image is explained as `explain_prepared` would with seed `seed + j` for image j, so the
//! map is exactly the mean of single explanations, and the standard error of the mean comes from
//! the spread across images: it holds both the images' own differences and each estimate's
//! sampling noise, which is why a cheap per-image budget serves (`ExplainParams::for_class_mean`).

use std::sync::atomic::AtomicBool;

use ndarray::{Array1, ArrayView1, ArrayView2};

use super::{
    Attribution, ExplainError, ExplainParams, Method, PreparedBackground, Units, check_background,
    check_model, explain_prepared,
};
use crate::nn::Mlp;

/// Permutations per image of a class-level map by default. Measured (`cargo bench --bench
/// explain`, 100 test images of one class, MLP(512, 256)): at 20 per image about half of the
/// mean's variance is per-image sampling noise and the mean standard error is 2-3% of the map's
/// largest value from 20 images on; 200 per image costs 10x for 0.017 instead of 0.022.
pub const CLASS_MEAN_PERMUTATIONS: usize = 20;

/// The running class-level map, passed to the progress callback after each finished image.
#[derive(Debug, Clone, Copy)]
pub struct ClassMeanProgress<'a> {
    /// Mean attribution per feature over the images done.
    pub values: ArrayView1<'a, f32>,
    /// Standard error of that mean per feature.
    pub stderr: ArrayView1<'a, f32>,
    /// Images explained so far.
    pub images_done: usize,
    /// Images the run will explain.
    pub images_total: usize,
    /// The explanation of the image just finished.
    pub latest: &'a Attribution,
}

impl ClassMeanProgress<'_> {
    /// Mean standard error over features relative to the map's largest |value|
    /// (`relative_stderr`).
    pub fn relative_stderr(&self) -> f64 {
        relative_stderr(self.values, self.stderr)
    }
}

/// A class-level map: the mean attribution over images, with its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassMean {
    /// Mean attribution per feature over the images.
    pub values: Array1<f32>,
    /// Standard error of the mean per feature, from the spread across images (for one image:
    /// that image's own standard error, 0 for the gradient methods).
    pub stderr: Array1<f32>,
    /// The explained class.
    pub class: usize,
    /// The contrast class, when f_class - f_versus was explained.
    pub versus: Option<usize>,
    /// Units of the values and of every figure below.
    pub units: Units,
    /// The method used for every image.
    pub method: Method,
    /// Images explained.
    pub images: usize,
    /// Samples per image (as `Attribution::samples`).
    pub samples_per_image: usize,
    /// Rows evaluated through the network, the background pass included when made here.
    pub model_evaluations: u64,
    /// Mean f(x) over the images.
    pub output: f64,
    /// The base value (as `Attribution::reference`; for the gradient methods with a black or
    /// background-mean baseline it is the same for every image).
    pub reference: f64,
    /// sum(values).
    pub sum: f64,
    /// sum(values) - (output - reference): the mean of the images' gaps (up to float32
    /// rounding of their values).
    pub completeness_gap: f64,
    /// Standard error of `sum` given these images (the images' sampling errors, independent):
    /// `None` for the gradient methods.
    pub sum_stderr: Option<f64>,
    /// Share of the mean's variance (summed over features) that comes from the per-image
    /// sampling noise rather than from the images' differences; `None` for the gradient methods
    /// or one image. Near 0: more samples per image would not sharpen the map.
    pub sampling_share: Option<f64>,
}

impl ClassMean {
    /// Mean standard error over features relative to the map's largest |value|
    /// (`relative_stderr`).
    pub fn relative_stderr(&self) -> f64 {
        relative_stderr(self.values.view(), self.stderr.view())
    }
}

/// The mean standard error over features divided by the largest |value| of the map: the figure
/// of "is this map usable yet" (below 0.1, the noise is a small fraction of the colour scale).
/// Infinite for an all-zero map.
pub fn relative_stderr(values: ArrayView1<f32>, stderr: ArrayView1<f32>) -> f64 {
    let largest = values
        .iter()
        .map(|v| f64::from(v.abs()))
        .fold(0.0, f64::max);
    let mean_se = stderr.iter().map(|&s| f64::from(s)).sum::<f64>() / stderr.len().max(1) as f64;
    if largest > 0.0 {
        mean_se / largest
    } else {
        f64::INFINITY
    }
}

impl ExplainParams {
    /// The defaults of a class-level map of `class` by `method`: as `for_method`, with
    /// `CLASS_MEAN_PERMUTATIONS` per image for the permutation estimator and 20 iterations per
    /// feature for the notebook estimator (the spread across images dominates; see
    /// `ClassMean::sampling_share`), and progress reported per image.
    pub fn for_class_mean(method: Method, class: usize) -> ExplainParams {
        let samples = match method {
            Method::Permutation | Method::Notebook => CLASS_MEAN_PERMUTATIONS,
            Method::GradientTimesInput | Method::IntegratedGradients => {
                ExplainParams::default_samples(method)
            }
        };
        ExplainParams {
            class: Some(class),
            samples,
            progress_every: 0,
            ..ExplainParams::for_method(method)
        }
    }
}

/// Running per-feature mean over images (Welford, in f64, in image order).
struct MapMean {
    count: usize,
    mean: Vec<f64>,
    m2: Vec<f64>,
    /// Sum over images of each feature's squared own standard error.
    own_var: Vec<f64>,
    has_stderr: bool,
    last_stderr: Option<Array1<f32>>,
    output: f64,
    sum_var: f64,
}

impl MapMean {
    fn new(n: usize) -> MapMean {
        MapMean {
            count: 0,
            mean: vec![0.0; n],
            m2: vec![0.0; n],
            own_var: vec![0.0; n],
            has_stderr: true,
            last_stderr: None,
            output: 0.0,
            sum_var: 0.0,
        }
    }

    fn add(&mut self, a: &Attribution) {
        self.count += 1;
        let k = self.count as f64;
        for (i, &v) in a.values.iter().enumerate() {
            let v = f64::from(v);
            let delta = v - self.mean[i];
            self.mean[i] += delta / k;
            self.m2[i] += delta * (v - self.mean[i]);
        }
        match &a.stderr {
            Some(se) => {
                for (o, &s) in self.own_var.iter_mut().zip(se) {
                    *o += f64::from(s).powi(2);
                }
            }
            None => self.has_stderr = false,
        }
        self.last_stderr.clone_from(&a.stderr);
        self.output += a.output;
        self.sum_var += a.sum_stderr.unwrap_or(0.0).powi(2);
    }

    fn values(&self) -> Array1<f32> {
        self.mean.iter().map(|&v| to_f32(v)).collect()
    }

    /// Standard error of the mean per feature across images.
    fn stderr(&self) -> Array1<f32> {
        if self.count < 2 {
            let n = self.mean.len();
            return self.last_stderr.clone().unwrap_or_else(|| Array1::zeros(n));
        }
        let k = self.count as f64;
        self.m2
            .iter()
            .map(|&m2| to_f32((m2 / (k - 1.0) / k).sqrt()))
            .collect()
    }

    fn sampling_share(&self) -> Option<f64> {
        if !self.has_stderr || self.count < 2 {
            return None;
        }
        let k = self.count as f64;
        let total: f64 = self.m2.iter().sum::<f64>() / (k - 1.0) / k;
        let own: f64 = self.own_var.iter().sum::<f64>() / (k * k);
        Some(if total > 0.0 { own / total } else { 0.0 })
    }
}

fn to_f32(v: f64) -> f32 {
    v as f32
}

/// The class-level map of `params.class` (required; with `params.versus`, of the contrast) over
/// the rows of `images`: each image explained by `params.method` with `params.samples` and seed
/// `params.seed + j` for row j, against `background` (prepared once here unless given). Reports
/// the running map after each image; stops with `ExplainError::Cancelled` when `cancel` is
/// raised. Thread-count independent, as every explanation is.
pub fn explain_class_mean(
    model: &Mlp,
    images: ArrayView2<f32>,
    background: ArrayView2<f32>,
    prepared: Option<&PreparedBackground>,
    params: &ExplainParams,
    mut progress: Option<&mut dyn FnMut(&ClassMeanProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<ClassMean, ExplainError> {
    let Some(class) = params.class else {
        return Err(ExplainError::NoClass);
    };
    if images.nrows() == 0 {
        return Err(ExplainError::NoImages);
    }
    check_model(model)?;
    check_background(model, background)?;
    let shapley = matches!(params.method, Method::Notebook | Method::Permutation);
    let owned;
    let (prepared, background_evaluations) = match prepared {
        Some(p) => (Some(p), 0),
        None if shapley && background.nrows() > 0 => {
            owned = PreparedBackground::new(model, background)?;
            (Some(&owned), background.nrows() as u64)
        }
        None => (None, 0),
    };
    let mut acc = MapMean::new(model.n_inputs());
    let mut model_evaluations = background_evaluations;
    let mut first: Option<Attribution> = None;
    let total = images.nrows();
    for (j, x) in images.rows().into_iter().enumerate() {
        let p = ExplainParams {
            class: Some(class),
            seed: params.seed.wrapping_add(j as u64),
            progress_every: 0,
            ..params.clone()
        };
        let a = explain_prepared(model, x, background, prepared, &p, None, cancel)?;
        acc.add(&a);
        model_evaluations += a.model_evaluations;
        if let Some(cb) = progress.as_mut() {
            let (values, stderr) = (acc.values(), acc.stderr());
            cb(&ClassMeanProgress {
                values: values.view(),
                stderr: stderr.view(),
                images_done: j + 1,
                images_total: total,
                latest: &a,
            });
        }
        if first.is_none() {
            first = Some(a);
        }
    }
    let first = first.expect("at least one image");
    let k = acc.count as f64;
    let values = acc.values();
    let sum: f64 = acc.mean.iter().sum();
    let output = acc.output / k;
    Ok(ClassMean {
        stderr: acc.stderr(),
        class,
        versus: first.versus,
        units: first.units,
        method: params.method,
        images: acc.count,
        samples_per_image: first.samples,
        model_evaluations,
        output,
        reference: first.reference,
        sum,
        completeness_gap: sum - (output - first.reference),
        sum_stderr: first.sum_stderr.map(|_| acc.sum_var.sqrt() / k),
        sampling_share: acc.sampling_share(),
        values,
    })
}
