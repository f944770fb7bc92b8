//! `layerscope explain`: one test image's attribution, a contrast of two classes ("why 4 and not
//! 9", `--versus`) or a class-level map (the mean attribution over test images of one class,
//! `--class-mean`), written as `row,col,value,stderr`, with the Shapley bookkeeping on stderr.

use std::fmt;
use std::time::Instant;

use anyhow::bail;
use ndarray::{Array1, Axis};

use super::output::Plan;
use super::{inputs, load_data, model_for, plural, printable, progress_bar};
use crate::cli::ExplainArgs;
use crate::data::Split;
use crate::explain::{self, ExplainError, ExplainParams, Method, Units};

/// Model evaluations above which the notebook estimator earns a warning (about a minute here).
const NOTEBOOK_WARN_EVALUATIONS: u128 = 50_000_000;

/// Test images of a class-level map when `--images` is not given (issue 14's figure: enough for
/// a mean standard error well below 10% of the map's largest value at the default budget).
pub const CLASS_MEAN_IMAGES: usize = 100;

/// `layerscope explain`.
pub fn explain(args: &ExplainArgs) -> anyhow::Result<()> {
    let data = &args.data;
    let method = Method::from(args.method);
    let plan = Plan::new(
        &[("--out", args.out.as_path())],
        &inputs(data, args.model.model.as_deref()),
    )?;
    let split = load_data(data)?;
    if args.class_mean.is_none() && args.index >= split.test.n_rows() {
        bail!(
            "--index {}: expected 0 to {} (rows of the test split)",
            args.index,
            split.test.n_rows() - 1
        );
    }
    let n_classes = split.train.n_classes();
    for (flag, class) in [
        ("--class", args.class),
        ("--class-mean", args.class_mean),
        ("--versus", args.versus),
    ] {
        if let Some(c) = class
            && c >= n_classes
        {
            bail!(
                "{flag} {c}: expected 0 to {} (the data's classes)",
                n_classes - 1
            );
        }
    }
    let (class_flag, class) = match args.class_mean {
        Some(c) => ("--class-mean", Some(c)),
        None => ("--class", args.class),
    };
    if let (Some(c), Some(v)) = (class, args.versus)
        && c == v
    {
        bail!(
            "--versus {v}: the same class as {class_flag} {c}: expected another class to compare \
             with"
        );
    }
    let mut params = match args.class_mean {
        Some(c) => ExplainParams::for_class_mean(method, c),
        None => ExplainParams {
            class: args.class,
            ..ExplainParams::for_method(method)
        },
    };
    params.versus = args.versus;
    params.units = if args.logits {
        Units::Logit
    } else {
        Units::Probability
    };
    if let Some(s) = args.samples {
        params.samples = s;
    }
    params.seed = data.seed;
    match args.class_mean {
        Some(c) => class_mean(args, &split, &params, c, &plan),
        None => one_image(args, &split, &params, &plan),
    }
}

/// Warn before the notebook estimator evaluates the network more than
/// `NOTEBOOK_WARN_EVALUATIONS` times over `images` images.
fn warn_notebook(params: &ExplainParams, n_features: usize, images: usize) {
    if params.method != Method::Notebook {
        return;
    }
    // Two evaluations per feature, sample and background row drawn.
    let evaluations = 2 * params.samples as u128 * n_features as u128 * images as u128;
    if evaluations > NOTEBOOK_WARN_EVALUATIONS {
        let per = if images > 1 {
            format!(" x {images} images")
        } else {
            String::new()
        };
        note!(
            "warning: the notebook estimator will evaluate the network {evaluations} times \
             (2 x {} samples x {n_features} features{per}); this may take a long time: \
             --method permutation gives the same values for less",
            params.samples,
        );
    }
}

/// A class's name, printable.
fn class_name(split: &Split, class: usize) -> String {
    split
        .test
        .class_names
        .get(class)
        .map_or("?".to_owned(), |n| printable(n))
}

/// "class 4" or "class 4 versus 9".
fn target_words(split: &Split, class: usize, versus: Option<usize>) -> String {
    match versus {
        Some(v) => format!(
            "class {} versus {}",
            class_name(split, class),
            class_name(split, v)
        ),
        None => format!("class {}", class_name(split, class)),
    }
}

/// One test image (`--index`).
fn one_image(
    args: &ExplainArgs,
    split: &Split,
    params: &ExplainParams,
    plan: &Plan,
) -> anyhow::Result<()> {
    warn_notebook(params, split.train.n_features(), 1);
    let model = model_for(&args.model, split, args.data.seed)?;
    let x = split.test.features.row(args.index);
    let bar = progress_bar(params.samples as u64, "explain");
    let mut tenths_shown = 0;
    let started = Instant::now();
    let mut on_progress = |p: &explain::ExplainProgress<'_>| match &bar {
        Some(b) => {
            b.set_length(p.samples_total as u64);
            b.set_position(p.samples_done as u64);
        }
        None => {
            let tenths = (p.samples_done * 10)
                .checked_div(p.samples_total)
                .unwrap_or(10);
            if tenths > tenths_shown && p.samples_done < p.samples_total {
                tenths_shown = tenths;
                note!(
                    "explain: {}/{} samples, {:.1} s",
                    p.samples_done,
                    p.samples_total,
                    started.elapsed().as_secs_f64()
                );
            }
        }
    };
    let result = explain::explain(
        &model,
        x,
        split.train.features.view(),
        params,
        Some(&mut on_progress),
        None,
    );
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let a = match result {
        Ok(a) => a,
        // Only the predicted class can meet --versus here (the flags were compared above).
        Err(ExplainError::ContrastWithItself { class }) => bail!(
            "--versus {class}: test row {} is predicted as {}, the class explained without \
             --class: expected another class to compare with, or --class",
            args.index,
            class_name(split, class)
        ),
        Err(e) => return Err(e.into()),
    };
    note!(
        "test row {}: label {}, explained {}; {} samples, {} model evaluations, {:.2} s",
        args.index,
        class_name(split, usize::from(split.test.labels[args.index])),
        target_words(split, a.class, a.versus),
        a.samples,
        a.model_evaluations,
        started.elapsed().as_secs_f64()
    );
    note!(
        "{}",
        Bookkeeping {
            mean: false,
            method: params.method,
            units: a.units,
            contrast: a.versus.is_some(),
            output: a.output,
            reference: a.reference,
            sum: a.sum,
            gap: a.completeness_gap,
            sum_stderr: a.sum_stderr,
        }
    );
    let width = split.test.image_shape.map_or(a.values.len(), |(_, w)| w);
    write_map(plan, &a.values, a.stderr.as_ref(), width)
}

/// The mean map over the first `--images` test images of `class` (`--class-mean`).
fn class_mean(
    args: &ExplainArgs,
    split: &Split,
    params: &ExplainParams,
    class: usize,
    plan: &Plan,
) -> anyhow::Result<()> {
    let wanted = args.images.unwrap_or(CLASS_MEAN_IMAGES);
    let of_class: Vec<usize> = split
        .test
        .labels
        .iter()
        .enumerate()
        .filter(|&(_, &l)| usize::from(l) == class)
        .map(|(i, _)| i)
        .collect();
    let name = class_name(split, class);
    if of_class.is_empty() {
        bail!(
            "--class-mean {class}: the test split has no images of class {name}: expected a \
             class present in it (more rows with --sample, or a larger --test-fraction)"
        );
    }
    let rows = &of_class[..of_class.len().min(wanted)];
    if rows.len() < wanted {
        note!(
            "--class-mean {class}: the test split has only {} of class {name}: explaining those \
             ({wanted} asked)",
            plural(rows.len(), "image")
        );
    }
    let images = split.test.features.select(Axis(0), rows);
    warn_notebook(params, split.train.n_features(), rows.len());
    let model = model_for(&args.model, split, args.data.seed)?;
    let bar = progress_bar(rows.len() as u64, "class mean");
    let started = Instant::now();
    let mut on_progress = |p: &explain::ClassMeanProgress<'_>| {
        let relative = p.relative_stderr() * 100.0;
        match &bar {
            Some(b) => {
                b.set_position(p.images_done as u64);
                b.set_message(format!("mean SE {relative:.1}% of the largest value"));
            }
            None => note!(
                "class mean: {}/{} images, mean SE {relative:.1}% of the largest value, {:.1} s",
                p.images_done,
                p.images_total,
                started.elapsed().as_secs_f64()
            ),
        }
    };
    let m = explain::explain_class_mean(
        &model,
        images.view(),
        split.train.features.view(),
        None,
        params,
        Some(&mut on_progress),
        None,
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let share = m.sampling_share.map_or(String::new(), |s| {
        format!(
            ", {:.0}% of its variance from per-image sampling",
            s * 100.0
        )
    });
    note!(
        "class mean of {} over {} of the test split: {} samples per image, {} model \
         evaluations, mean SE {:.1}% of the largest value{share}, {:.2} s",
        target_words(split, m.class, m.versus),
        plural(m.images, "image"),
        m.samples_per_image,
        m.model_evaluations,
        m.relative_stderr() * 100.0,
        started.elapsed().as_secs_f64()
    );
    note!(
        "{}",
        Bookkeeping {
            mean: true,
            method: m.method,
            units: m.units,
            contrast: m.versus.is_some(),
            output: m.output,
            reference: m.reference,
            sum: m.sum,
            gap: m.completeness_gap,
            sum_stderr: m.sum_stderr,
        }
    );
    let width = split.test.image_shape.map_or(m.values.len(), |(_, w)| w);
    write_map(plan, &m.values, Some(&m.stderr), width)
}

/// Write a map as `row,col,value,stderr` (`stderr` empty when there is none) and put it in place.
fn write_map(
    plan: &Plan,
    values: &Array1<f32>,
    stderr: Option<&Array1<f32>>,
    width: usize,
) -> anyhow::Result<()> {
    let staged = plan.stage(0, |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(["row", "col", "value", "stderr"])?;
        for (i, v) in values.iter().enumerate() {
            let se = stderr.map(|s| s[i].to_string()).unwrap_or_default();
            csv.write_record([
                (i / width).to_string(),
                (i % width).to_string(),
                v.to_string(),
                se,
            ])?;
        }
        csv.flush()
    })?;
    Plan::commit(vec![staged])
}

/// The Shapley bookkeeping of a map, in its units: f(x), the base value, the sum of the
/// attributions with its standard error, and the efficiency gap sum - (f(x) - base), also in
/// standard errors of the sum (beyond about 3, more than sampling noise).
struct Bookkeeping {
    /// A class-level map: f(x) is the mean over its images.
    mean: bool,
    method: Method,
    units: Units,
    contrast: bool,
    output: f64,
    reference: f64,
    sum: f64,
    gap: f64,
    sum_stderr: Option<f64>,
}

/// A figure with 4 decimals, or in scientific notation when 4 decimals would show 0.
fn figure(v: f64) -> String {
    if v != 0.0 && v.abs() < 5e-5 {
        format!("{v:.1e}")
    } else {
        format!("{v:.4}")
    }
}

impl fmt::Display for Bookkeeping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let output = if self.mean { "mean f(x)" } else { "f(x)" };
        // The gradient methods start from one baseline input, not from the background.
        let base = match self.method {
            Method::Notebook | Method::Permutation => "E[f(b)]",
            Method::GradientTimesInput | Method::IntegratedGradients => "f(baseline)",
        };
        write!(
            f,
            "{output} = {}  {base} = {}  sum = {}",
            figure(self.output),
            figure(self.reference),
            figure(self.sum)
        )?;
        // A class mean's SE of the sum is its images' sampling error, not their spread.
        match (self.sum_stderr, self.mean) {
            (Some(se), false) => write!(f, " (SE {})", figure(se))?,
            (Some(se), true) => write!(f, " (sampling SE {})", figure(se))?,
            (None, false) => write!(f, " (deterministic)")?,
            (None, true) => write!(f, " (no sampling error)")?,
        }
        write!(f, "  completeness gap = {}", figure(self.gap))?;
        if let Some(se) = self.sum_stderr.filter(|&se| se > 0.0) {
            write!(f, " ({:.1} SE)", self.gap / se)?;
        }
        let units = match self.units {
            Units::Probability => "probability",
            Units::Logit => "logit",
        };
        let difference = if self.contrast { " difference" } else { "" };
        write!(f, "  [{units}{difference}]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookkeeping_line_in_words() {
        let b = Bookkeeping {
            mean: false,
            method: Method::Permutation,
            units: Units::Probability,
            contrast: false,
            output: 0.97312,
            reference: 0.10204,
            sum: 0.8710,
            gap: -0.00012,
            sum_stderr: Some(0.0004),
        };
        assert_eq!(
            b.to_string(),
            "f(x) = 0.9731  E[f(b)] = 0.1020  sum = 0.8710 (SE 0.0004)  completeness gap = \
             -0.0001 (-0.3 SE)  [probability]"
        );
        let g = Bookkeeping {
            mean: true,
            method: Method::IntegratedGradients,
            units: Units::Logit,
            contrast: true,
            gap: 2e-7,
            sum_stderr: None,
            ..b
        };
        assert_eq!(
            g.to_string(),
            "mean f(x) = 0.9731  f(baseline) = 0.1020  sum = 0.8710 (no sampling error)  \
             completeness gap = 2.0e-7  [logit difference]"
        );
    }
}
