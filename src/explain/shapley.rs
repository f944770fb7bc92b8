//! Shapley value estimators for v(S) = E_b f(x_S, b_rest), the background b drawn from the
//! training set: the notebook's sampler and Castro et al. (2009) permutations.

use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array1, ArrayView2, ArrayViewMut2};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::net::{Net, Real, Target, add_scaled, class_output};
use super::stats::Running;
use super::{ExplainProgress, Units};
use crate::Cancelled;

/// Salts that keep the two estimators' random streams apart for the same seed.
const PERMUTATION_SALT: u64 = 0x7065_726d_7574_6521;
const NOTEBOOK_SALT: u64 = 0x6e6f_7465_626f_6f6b;

/// Draws per notebook task: enough rows for an efficient GEMM, few enough to spread over threads.
const NOTEBOOK_DRAWS_PER_TASK: usize = 1024;

/// The random stream of one unit of work: independent of which thread runs it.
fn unit_rng(base: &ChaCha8Rng, unit: u64) -> ChaCha8Rng {
    let mut rng = base.clone();
    rng.set_stream(unit);
    rng
}

/// What an estimator returns besides its running statistics.
pub(crate) struct ShapleyRun {
    pub stats: Running,
    /// Samples used: iterations, or permutations (an antithetic pair counts two).
    pub samples: usize,
    pub evaluations: u64,
    pub max_drift: f64,
}

/// Shared inputs of a sampling run.
pub(crate) struct Problem<'a> {
    pub net: &'a Net<f32>,
    pub x: &'a [f32],
    pub background: ArrayView2<'a, f32>,
    /// First-layer pre-activations of every background row (`background W1 + c1`).
    pub h_background: ArrayView2<'a, f32>,
    pub target: Target,
    pub seed: u64,
}

/// Feature `i`'s first-layer row is zero, or `x` and `b` agree on it: its marginal is exactly 0.
fn is_null<T: Real>(net: &Net<T>, x: &[T], b: &[T], i: usize) -> bool {
    x[i] == b[i] || net.dead_input[i]
}

/// The first-layer pre-activations along one permutation walk from `b` to `x` (Castro et al.
/// 2009): row 0 is `b`, row j has the first j changing features of `order` set to `x`'s values.
/// Features where nothing changes are skipped; their indices are not pushed to `steps`. Each row
/// is the previous one plus one W1 row times the change (incremental first layer). The rows are
/// written to `rows` (cleared first, row-major); returns their number.
pub(crate) fn walk_first_layer<T: Real>(
    net: &Net<T>,
    x: &[T],
    b: &[T],
    h_b: &[T],
    order: &[usize],
    steps: &mut Vec<usize>,
    rows: &mut Vec<T>,
) -> usize {
    let width = net.width1();
    steps.clear();
    rows.clear();
    rows.extend_from_slice(h_b);
    for &i in order {
        if is_null(net, x, b, i) {
            continue;
        }
        let at = rows.len();
        rows.resize(at + width, T::zero());
        let (done, next) = rows.split_at_mut(at);
        T::axpy_into(next, &done[at - width..], x[i] - b[i], net.w1_row(i));
        steps.push(i);
    }
    steps.len() + 1
}

/// Per-thread buffers of the permutation walk.
pub(crate) struct WalkScratch<T> {
    order: Vec<usize>,
    steps: Vec<usize>,
    rows: Vec<T>,
    outputs: Vec<f64>,
}

impl<T: Real> WalkScratch<T> {
    pub fn new(n: usize, width: usize) -> WalkScratch<T> {
        WalkScratch {
            order: Vec::with_capacity(n),
            steps: Vec::with_capacity(n),
            rows: Vec::with_capacity((n + 1) * width),
            outputs: Vec::with_capacity(n + 1),
        }
    }
}

/// The marginal contributions of one walk.
pub(crate) struct Walk {
    /// (feature, f(with it) - f(without it)) for each feature that changed.
    pub contributions: Vec<(usize, f64)>,
    /// Model evaluations (rows through the network).
    pub evaluations: usize,
    /// Largest |incremental - full| first-layer pre-activation at the walk's end.
    pub drift: f64,
}

/// Walk from `b` to `x` along `order` and return each changing feature's marginal contribution.
/// The last row is reset to the full forward pass of `x` (after measuring the drift), so the
/// contributions telescope to exactly f(x) - f(b) up to float rounding of the differences.
#[expect(clippy::too_many_arguments)]
pub(crate) fn walk<T: Real>(
    net: &Net<T>,
    x: &[T],
    h_x: &[T],
    b: &[T],
    h_b: &[T],
    order: &[usize],
    target: Target,
    scratch: &mut WalkScratch<T>,
) -> Walk {
    let width = net.width1();
    let rows = walk_first_layer(net, x, b, h_b, order, &mut scratch.steps, &mut scratch.rows);
    let last = &mut scratch.rows[(rows - 1) * width..rows * width];
    let drift = last
        .iter()
        .zip(h_x)
        .map(|(a, e)| (a.to_f64() - e.to_f64()).abs())
        .fold(0.0, f64::max);
    last.copy_from_slice(h_x);
    let view = ArrayViewMut2::from_shape((rows, width), &mut scratch.rows[..rows * width])
        .expect("walk buffer holds rows x width values");
    scratch.outputs.clear();
    net.outputs_from_first(view, target, &mut scratch.outputs);
    let contributions = scratch
        .steps
        .iter()
        .zip(scratch.outputs.windows(2))
        .map(|(&i, f)| (i, f[1] - f[0]))
        .collect();
    Walk {
        contributions,
        evaluations: rows,
        drift,
    }
}

/// One permutation sample (or an antithetic pair, averaged): draw a background row and an order.
fn permutation_unit(
    p: &Problem<'_>,
    h_x: &[f32],
    base: &ChaCha8Rng,
    unit: u64,
    antithetic: bool,
    scratch: &mut WalkScratch<f32>,
) -> Walk {
    let n = p.x.len();
    let mut rng = unit_rng(base, unit);
    let row = rng.random_range(0..p.background.nrows());
    let b_row = p.background.row(row);
    let b_owned;
    let b: &[f32] = if let Some(s) = b_row.as_slice() {
        s
    } else {
        b_owned = b_row.to_vec();
        &b_owned
    };
    let mut order = std::mem::take(&mut scratch.order);
    order.clear();
    order.extend(0..n);
    order.shuffle(&mut rng);
    let h_b = p.h_background.row(row);
    let h_b = h_b.as_slice().expect("h_background is in standard layout");
    let mut result = walk(p.net, p.x, h_x, b, h_b, &order, p.target, scratch);
    if antithetic {
        // The reversed order with the same background row (Mitchell et al. 2022): the pair's
        // mean is one sample.
        order.reverse();
        let back = walk(p.net, p.x, h_x, b, h_b, &order, p.target, scratch);
        result.contributions.sort_unstable_by_key(|&(i, _)| i);
        let mut back_sorted = back.contributions;
        back_sorted.sort_unstable_by_key(|&(i, _)| i);
        for ((i, v), (j, w)) in result.contributions.iter_mut().zip(&back_sorted) {
            debug_assert_eq!(*i, *j);
            *v = 0.5 * (*v + w);
        }
        result.evaluations += back.evaluations;
        result.drift = result.drift.max(back.drift);
    }
    scratch.order = order;
    result
}

/// Castro et al. (2009) permutation sampling with skipped null features, an incremental first
/// layer and one GEMM per permutation for the rest. `permutations` walks (antithetic: in
/// reversed pairs), reported every `progress_every` walks.
pub(crate) fn permutation(
    p: &Problem<'_>,
    permutations: usize,
    antithetic: bool,
    progress_every: usize,
    mut progress: Option<&mut dyn FnMut(&ExplainProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<ShapleyRun, Cancelled> {
    let n = p.x.len();
    let width = p.net.width1();
    let h_x = p.net.first_layer(p.x);
    let base = ChaCha8Rng::seed_from_u64(p.seed ^ PERMUTATION_SALT);
    let per_unit = if antithetic { 2 } else { 1 };
    let units = permutations.div_ceil(per_unit);
    // Progress every `progress_every` permutations; 0: one block, reported at the end.
    let block = if progress_every == 0 {
        units.max(1)
    } else {
        progress_every.div_ceil(per_unit)
    };
    let mut stats = Running::new(n);
    let mut evaluations = 0u64;
    let mut max_drift = 0.0f64;
    let mut start = 0;
    while start < units {
        let end = (start + block).min(units);
        let walks: Vec<Option<Walk>> = (start..end)
            .into_par_iter()
            .map_init(
                || WalkScratch::new(n, width),
                |scratch, u| {
                    if cancelled(cancel) {
                        return None;
                    }
                    Some(permutation_unit(
                        p, &h_x, &base, u as u64, antithetic, scratch,
                    ))
                },
            )
            .collect();
        for w in walks {
            let w = w.ok_or(Cancelled)?;
            stats.add_sparse(&w.contributions);
            evaluations += w.evaluations as u64;
            max_drift = max_drift.max(w.drift);
        }
        start = end;
        report(&mut progress, &stats, per_unit, permutations);
    }
    Ok(ShapleyRun {
        samples: stats.samples() * per_unit,
        stats,
        evaluations,
        max_drift,
    })
}

fn cancelled(cancel: Option<&AtomicBool>) -> bool {
    cancel.is_some_and(|c| c.load(Ordering::Relaxed))
}

fn report(
    progress: &mut Option<&mut dyn FnMut(&ExplainProgress<'_>)>,
    stats: &Running,
    per_sample: usize,
    total: usize,
) {
    if let Some(cb) = progress.as_mut() {
        let values: Array1<f32> = stats.mean().mapv(to_f32);
        let stderr: Array1<f32> = stats.stderr().mapv(to_f32);
        cb(&ExplainProgress {
            values: values.view(),
            stderr: Some(stderr.view()),
            samples_done: (stats.samples() * per_sample).min(total),
            samples_total: total,
        });
    }
}

pub(crate) fn to_f32(v: f64) -> f32 {
    v as f32
}

/// Draws the notebook's coalitions: for feature `i`, a number k uniform on 0..=n-1 (inclusive, as
/// `random.randint(0, n_features - 1)`) and a uniform k-subset of the other n-1 features (as
/// `random.sample(other, k)`); those are the features replaced by the background row. When k is
/// more than half, the kept n-1-k features are drawn instead (the complement of a uniform
/// (n-1-k)-subset is a uniform k-subset), so a draw costs at most (n-1)/2 random numbers.
#[derive(Debug, Clone)]
pub struct CoalitionSampler {
    pool: Vec<usize>,
    position: Vec<usize>,
    swaps: Vec<(usize, usize)>,
}

/// One coalition draw for a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoalitionDraw<'a> {
    /// How many other features are replaced by the background (k).
    pub replaced_count: usize,
    /// The features listed: the replaced ones, or the kept ones when `lists_replaced` is false.
    pub listed: &'a [usize],
    /// Whether `listed` holds the replaced features (else the kept ones).
    pub lists_replaced: bool,
}

impl CoalitionDraw<'_> {
    /// The replaced features, sorted, for `feature` among `n`.
    pub fn replaced(&self, n: usize, feature: usize) -> Vec<usize> {
        let mut out: Vec<usize> = if self.lists_replaced {
            self.listed.to_vec()
        } else {
            (0..n)
                .filter(|j| *j != feature && !self.listed.contains(j))
                .collect()
        };
        out.sort_unstable();
        out
    }
}

impl CoalitionSampler {
    /// A sampler over `n` features.
    pub fn new(n: usize) -> CoalitionSampler {
        CoalitionSampler {
            pool: (0..n).collect(),
            position: (0..n).collect(),
            swaps: Vec::new(),
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.pool.swap(a, b);
        self.position[self.pool[a]] = a;
        self.position[self.pool[b]] = b;
    }

    /// One coalition for `feature`. The result depends only on the RNG's state: the pool is
    /// restored to 0..n before each draw.
    pub fn draw<R: Rng>(&mut self, rng: &mut R, feature: usize) -> CoalitionDraw<'_> {
        while let Some((a, b)) = self.swaps.pop() {
            self.swap(a, b);
        }
        let n = self.pool.len();
        let others = n - 1;
        let k = rng.random_range(0..n);
        let lists_replaced = k <= others / 2;
        let listed = if lists_replaced { k } else { others - k };
        // Move `feature` to the end; the others are pool[..n-1].
        let at = self.position[feature];
        self.swaps.push((at, others));
        self.swap(at, others);
        // Partial Fisher-Yates: pool[..listed] becomes a uniform subset of pool[..n-1].
        for j in 0..listed {
            let pick = rng.random_range(j..others);
            self.swaps.push((j, pick));
            self.swap(j, pick);
        }
        CoalitionDraw {
            replaced_count: k,
            listed: &self.pool[..listed],
            lists_replaced,
        }
    }
}

/// The notebook's estimator: for every feature and iteration a fresh background row, a coalition
/// from `CoalitionSampler`, and f(z_original) - f(z_different), where z_different also takes the
/// feature itself from the background. Draws where the feature agrees with the background are
/// exactly 0 and cost nothing; the rest go through the network in batches, the first layer built
/// from x's by adding one W1 row per replaced feature that differs.
pub(crate) fn notebook(
    p: &Problem<'_>,
    iterations: usize,
    progress_every: usize,
    mut progress: Option<&mut dyn FnMut(&ExplainProgress<'_>)>,
    cancel: Option<&AtomicBool>,
) -> Result<ShapleyRun, Cancelled> {
    let n = p.x.len();
    let h_x = p.net.first_layer(p.x);
    let base = ChaCha8Rng::seed_from_u64(p.seed ^ NOTEBOOK_SALT);
    // Progress every `progress_every` iterations; 0: one block, reported at the end.
    let block = if progress_every == 0 {
        iterations.max(1)
    } else {
        progress_every.min(iterations.max(1))
    };
    let group = (NOTEBOOK_DRAWS_PER_TASK / block).clamp(1, n);
    let mut stats = Running::new(n);
    let mut evaluations = 0u64;
    let mut t0 = 0;
    while t0 < iterations {
        let t1 = (t0 + block).min(iterations);
        let tasks: Vec<usize> = (0..n).step_by(group).collect();
        let results: Vec<Option<NotebookTask>> = tasks
            .par_iter()
            .map(|&f0| {
                if cancelled(cancel) {
                    return None;
                }
                let features = f0..(f0 + group).min(n);
                Some(notebook_task(p, &h_x, &base, iterations, features, t0..t1))
            })
            .collect();
        for (f0, r) in tasks.iter().zip(results) {
            let r = r.ok_or(Cancelled)?;
            stats.add_sums(*f0, &r.sum, &r.sum_sq);
            evaluations += r.evaluations as u64;
        }
        stats.add_count(t1 - t0);
        t0 = t1;
        report(&mut progress, &stats, 1, iterations);
    }
    Ok(ShapleyRun {
        samples: iterations,
        stats,
        evaluations,
        max_drift: 0.0,
    })
}

struct NotebookTask {
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    evaluations: usize,
}

fn notebook_task(
    p: &Problem<'_>,
    h_x: &[f32],
    base: &ChaCha8Rng,
    iterations: usize,
    features: std::ops::Range<usize>,
    its: std::ops::Range<usize>,
) -> NotebookTask {
    let n = p.x.len();
    let width = p.net.width1();
    let mut sampler = CoalitionSampler::new(n);
    let mut rows: Vec<f32> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for i in features.clone() {
        for t in its.clone() {
            let mut rng = unit_rng(base, (i * iterations + t) as u64);
            let r = rng.random_range(0..p.background.nrows());
            let b_row = p.background.row(r);
            if p.x[i] == b_row[i] || p.net.dead_input[i] {
                continue;
            }
            let b_owned;
            let b: &[f32] = if let Some(s) = b_row.as_slice() {
                s
            } else {
                b_owned = b_row.to_vec();
                &b_owned
            };
            let at = rows.len();
            let draw = sampler.draw(&mut rng, i);
            // Build one of z_original / z_different from the nearer end (x or the background
            // row, whichever differs in fewer listed features), then the other by one W1 row.
            let (base, sign) = if draw.lists_replaced {
                (h_x, 1.0) // z_original = x with the listed features from b
            } else {
                (
                    p.h_background
                        .row(r)
                        .to_slice()
                        .expect("h_background is in standard layout"),
                    -1.0,
                ) // z_different
            };
            rows.extend_from_slice(base);
            // (A feature with a zero W1 row adds exactly nothing: no need to test for it.)
            for &j in draw.listed {
                let delta = b[j] - p.x[j];
                if delta != 0.0 {
                    add_scaled(&mut rows[at..], sign * delta, p.net.w1_row(j));
                }
            }
            rows.extend_from_within(at..at + width);
            let own = b[i] - p.x[i];
            if draw.lists_replaced {
                add_scaled(&mut rows[at + width..], own, p.net.w1_row(i));
            } else {
                // rows[at..] holds z_different; z_original puts x's value of `feature` back.
                add_scaled(&mut rows[at..at + width], -own, p.net.w1_row(i));
            }
            owner.push(i - features.start);
        }
    }
    let m = rows.len() / width;
    let mut outputs = Vec::with_capacity(m);
    if m > 0 {
        let view = ArrayViewMut2::from_shape((m, width), &mut rows[..])
            .expect("notebook rows hold m x width values");
        p.net.outputs_from_first(view, p.target, &mut outputs);
    }
    let mut sum = vec![0.0; features.len()];
    let mut sum_sq = vec![0.0; features.len()];
    for (k, &o) in owner.iter().enumerate() {
        let marginal = outputs[2 * k] - outputs[2 * k + 1];
        sum[o] += marginal;
        sum_sq[o] += marginal * marginal;
    }
    NotebookTask {
        sum,
        sum_sq,
        evaluations: m,
    }
}

/// Mean probability and mean logit of every class over the background rows (v of the empty
/// coalition), from the rows' first-layer pre-activations; summed in a fixed chunk order.
pub(crate) fn background_means(
    net: &Net<f32>,
    h_background: ArrayView2<f32>,
) -> (Vec<f64>, Vec<f64>) {
    const CHUNK: usize = 256;
    let rows = h_background.nrows();
    let k = net.n_outputs();
    let starts: Vec<usize> = (0..rows).step_by(CHUNK).collect();
    let sums: Vec<(Vec<f64>, Vec<f64>)> = starts
        .par_iter()
        .map(|&s| {
            let mut chunk = h_background
                .slice(ndarray::s![s..(s + CHUNK).min(rows), ..])
                .to_owned();
            let logits = net.logits_from_first(chunk.view_mut());
            let (mut prob, mut logit) = (vec![0.0; k], vec![0.0; k]);
            for z in logits.rows() {
                for c in 0..k {
                    prob[c] += class_output(z, c, Units::Probability);
                    logit[c] += f64::from(z[c]);
                }
            }
            (prob, logit)
        })
        .collect();
    let (mut prob, mut logit) = (vec![0.0; k], vec![0.0; k]);
    for (p, l) in sums {
        for c in 0..k {
            prob[c] += p[c];
            logit[c] += l[c];
        }
    }
    let n = rows.max(1) as f64;
    prob.iter_mut()
        .chain(logit.iter_mut())
        .for_each(|v| *v /= n);
    (prob, logit)
}
