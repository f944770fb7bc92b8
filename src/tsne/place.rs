//! New points placed into an existing t-SNE map without moving it: openTSNE's `transform`
//! (Poličar, Stražar and Zupan 2019, "Embedding to reference t-SNE space addresses batch
//! effects in single-cell classification"; openTSNE's `TSNEEmbedding.prepare_partial` and
//! `PartialTSNEEmbedding.optimize`).
//!
//! Each new point gets affinities to its `3 * perplexity` nearest reference points only (a
//! conditional distribution calibrated to the perplexity, each row summing to 1: openTSNE's
//! point-wise normalisation), starts at the affinity-weighted mean of those neighbours' positions
//! (openTSNE's `initialization="weighted"`; its default is the median of 25 neighbours), then
//! follows gradient descent on its own position only: attraction to its reference neighbours,
//! repulsion from every reference point normalised by its own sum of kernels (the new points do
//! not see each other). The reference layout is read, never written.
//!
//! The new points are independent of one another, so each runs its whole optimisation on its
//! own (in parallel, one point per task): the same seed gives the same positions whatever the
//! thread count. The repulsion is the exact sum over the reference points (1,500 in the app's
//! maps), in 8 lanes with AVX2 when the CPU has it.

use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::TsneError;
use super::affinity::binary_search_row;
use super::simd::Simd;
use crate::Cancelled;

/// Parameters of [`place`]; the defaults are openTSNE's `TSNEEmbedding.transform`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceParams {
    /// Perplexity of each new point's affinities to the reference points (openTSNE's transform
    /// default, 5: the map already holds the global structure, the new point only needs its
    /// neighbourhood). Its `3 * perplexity` nearest reference points carry the affinities; a
    /// perplexity above a third of the reference points is lowered to that (as openTSNE does).
    pub perplexity: f64,
    /// Seed of the jitter on the starting positions.
    pub seed: u64,
    /// Gradient-descent iterations (openTSNE: 250).
    pub n_iter: usize,
    /// Step size (openTSNE: 0.1; small, the points start near their place).
    pub learning_rate: f64,
    /// Factor on the attraction (openTSNE: 1.5).
    pub exaggeration: f64,
    /// Momentum (openTSNE: 0.8 throughout).
    pub momentum: f64,
    /// Gradients longer than this are shortened to it, per point (openTSNE: 0.25), so a point
    /// that starts on top of reference points is not shot away.
    pub max_grad_norm: f64,
}

impl Default for PlaceParams {
    fn default() -> Self {
        PlaceParams {
            perplexity: 5.0,
            seed: 0,
            n_iter: 250,
            learning_rate: 0.1,
            exaggeration: 1.5,
            momentum: 0.8,
            max_grad_norm: 0.25,
        }
    }
}

/// openTSNE's `gradient_descent`: the smallest gain.
const MIN_GAIN: f64 = 0.01;
/// The jitter on the starting positions, as a share of the layout's standard deviation: a new
/// point equal to a reference point does not start exactly on it.
const JITTER: f64 = 1e-4;
/// Candidates re-ranked exactly after the GEMM shortlist, beyond the k wanted.
const SHORTLIST_EXTRA: usize = 16;

/// Place `new` (m points, the reference's features) into `layout` (the n x 2 map of
/// `reference`), which is not changed. Returns m x 2 positions, in the order of `new`.
///
/// # Errors
/// Shapes that do not match, non-finite input, a perplexity not below the reference's size.
pub fn place(
    reference: ArrayView2<f32>,
    layout: ArrayView2<f32>,
    new: ArrayView2<f32>,
    params: &PlaceParams,
) -> Result<Array2<f32>, TsneError> {
    place_with(reference, layout, new, params, None)
}

/// [`place`] with a cancel flag, checked by every point between iterations.
///
/// # Errors
/// As [`place`]; `TsneError::Cancelled` when the flag was raised.
pub fn place_with(
    reference: ArrayView2<f32>,
    layout: ArrayView2<f32>,
    new: ArrayView2<f32>,
    params: &PlaceParams,
    cancel: Option<&AtomicBool>,
) -> Result<Array2<f32>, TsneError> {
    validate(reference, layout, new, params)?;
    let n = reference.nrows();
    let m = new.nrows();
    if m == 0 {
        return Ok(Array2::zeros((0, 2)));
    }
    // openTSNE's `check_perplexity`: a perplexity above a third of the reference points is
    // lowered to that, so that 3 * perplexity neighbours exist.
    let perplexity = params.perplexity.min(n as f64 / 3.0);
    let k = ((3.0 * perplexity).floor() as usize).clamp(1, n);
    let (indices, d2) = nearest_reference(reference, new, k);

    let xs: Vec<f32> = layout.column(0).to_vec();
    let ys: Vec<f32> = layout.column(1).to_vec();
    let spread = layout_std(&xs, &ys);
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let jitter: Vec<[f64; 2]> = (0..m)
        .map(|_| {
            let a: f64 = StandardNormal.sample(&mut rng);
            let b: f64 = StandardNormal.sample(&mut rng);
            [a * JITTER * spread, b * JITTER * spread]
        })
        .collect();

    let simd = Simd::current();
    let cancelled = || cancel.is_some_and(|c| c.load(Ordering::Relaxed));
    let mut out = vec![[0f32; 2]; m];
    let results: Vec<bool> = out
        .par_iter_mut()
        .enumerate()
        .with_min_len(4)
        .map_init(
            || vec![0f64; k],
            |p, (i, slot)| {
                if cancelled() {
                    return false;
                }
                let nb = &indices[i * k..(i + 1) * k];
                binary_search_row(&d2[i * k..(i + 1) * k], perplexity, None, p);
                // openTSNE's "weighted" initialisation: the affinity-weighted mean position.
                let mut y = jitter[i];
                for (&j, &pj) in nb.iter().zip(p.iter()) {
                    y[0] += pj * f64::from(xs[j as usize]);
                    y[1] += pj * f64::from(ys[j as usize]);
                }
                let done = optimise_point(&mut y, nb, p, &xs, &ys, params, simd, &cancelled);
                *slot = [y[0] as f32, y[1] as f32];
                done
            },
        )
        .collect();
    if cancelled() || results.iter().any(|&done| !done) {
        return Err(Cancelled.into());
    }
    Ok(Array2::from_shape_fn((m, 2), |(i, c)| out[i][c]))
}

/// Gradient descent on one new point's position (openTSNE's `gradient_descent` with a
/// reference embedding, for one row). False when cancelled.
#[allow(clippy::too_many_arguments)]
fn optimise_point(
    y: &mut [f64; 2],
    neighbours: &[u32],
    p: &[f64],
    xs: &[f32],
    ys: &[f32],
    params: &PlaceParams,
    simd: Simd,
    cancelled: &dyn Fn() -> bool,
) -> bool {
    let mut update = [0f64; 2];
    let mut gains = [1f64; 2];
    for it in 0..params.n_iter {
        if it % 16 == 0 && cancelled() {
            return false;
        }
        // Repulsion, normalised by this point's own sum of kernels (openTSNE's
        // `pairwise_normalization=False` for partial embeddings).
        let [z, rx, ry] = repulsion(y[0] as f32, y[1] as f32, xs, ys, simd);
        let z = z + f64::EPSILON;
        let mut grad = [-rx / z, -ry / z];
        // Attraction to the reference neighbours (exaggerated P; q unnormalised).
        for (&j, &pj) in neighbours.iter().zip(p) {
            let dx = y[0] - f64::from(xs[j as usize]);
            let dy = y[1] - f64::from(ys[j as usize]);
            let q = 1.0 / (1.0 + dx * dx + dy * dy);
            let w = params.exaggeration * pj * q;
            grad[0] += w * dx;
            grad[1] += w * dy;
        }
        let norm = (grad[0] * grad[0] + grad[1] * grad[1]).sqrt();
        let coeff = params.max_grad_norm / (norm + 1e-6);
        if coeff < 1.0 {
            grad[0] *= coeff;
            grad[1] *= coeff;
        }
        for d in 0..2 {
            // numpy's sign: 0 for 0, so the first step counts as a flip (as in openTSNE).
            if sign(update[d]) == sign(grad[d]) {
                gains[d] = gains[d] * 0.8 + MIN_GAIN;
            } else {
                gains[d] += 0.2;
            }
            update[d] = params.momentum * update[d] - params.learning_rate * gains[d] * grad[d];
            y[d] += update[d];
        }
    }
    true
}

fn sign(v: f64) -> i8 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}

/// Sum over the reference points of q = 1 / (1 + |y - y_j|^2), q^2 (y - y_j) in x and in y.
fn repulsion(px: f32, py: f32, xs: &[f32], ys: &[f32], simd: Simd) -> [f64; 3] {
    #[cfg(target_arch = "x86_64")]
    if simd == Simd::Avx2 {
        // SAFETY: `Simd::Avx2` is only current when the CPU has AVX2 and FMA.
        return unsafe { repulsion_avx2(px, py, xs, ys) };
    }
    let _ = simd;
    repulsion_lanes(px, py, xs, ys)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn repulsion_avx2(px: f32, py: f32, xs: &[f32], ys: &[f32]) -> [f64; 3] {
    repulsion_lanes(px, py, xs, ys)
}

/// Eight independent accumulators, summed in a fixed order: the compiler vectorises the lanes
/// (AVX2 under `repulsion_avx2`), and every path rounds the same way (no FMA contraction).
#[inline(always)]
fn repulsion_lanes(px: f32, py: f32, xs: &[f32], ys: &[f32]) -> [f64; 3] {
    const L: usize = 8;
    let mut z = [0f32; L];
    let mut fx = [0f32; L];
    let mut fy = [0f32; L];
    let chunks = xs.len() / L;
    for c in 0..chunks {
        let bx = &xs[c * L..c * L + L];
        let by = &ys[c * L..c * L + L];
        for l in 0..L {
            let dx = px - bx[l];
            let dy = py - by[l];
            let q = 1.0 / (1.0 + dx * dx + dy * dy);
            let q2 = q * q;
            z[l] += q;
            fx[l] += q2 * dx;
            fy[l] += q2 * dy;
        }
    }
    let mut sums = [0f64; 3];
    for l in 0..L {
        sums[0] += f64::from(z[l]);
        sums[1] += f64::from(fx[l]);
        sums[2] += f64::from(fy[l]);
    }
    for j in chunks * L..xs.len() {
        let dx = px - xs[j];
        let dy = py - ys[j];
        let q = 1.0 / (1.0 + dx * dx + dy * dy);
        sums[0] += f64::from(q);
        sums[1] += f64::from(q * q * dx);
        sums[2] += f64::from(q * q * dy);
    }
    sums
}

fn layout_std(xs: &[f32], ys: &[f32]) -> f64 {
    let n = xs.len().max(1) as f64;
    let mean = |v: &[f32]| v.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
    let var = |v: &[f32], m: f64| v.iter().map(|&a| (f64::from(a) - m).powi(2)).sum::<f64>() / n;
    let (mx, my) = (mean(xs), mean(ys));
    ((var(xs, mx) + var(ys, my)) / 2.0)
        .sqrt()
        .max(f64::MIN_POSITIVE)
}

/// The `k` nearest reference points of each new point (m x k, nearest first, ties by index)
/// and their squared distances: a GEMM shortlist (|a|^2 + |b|^2 - 2ab), re-ranked with exact
/// differences so near-duplicates keep their order.
fn nearest_reference(
    reference: ArrayView2<f32>,
    new: ArrayView2<f32>,
    k: usize,
) -> (Vec<u32>, Vec<f32>) {
    let n = reference.nrows();
    let m = new.nrows();
    let short = (k + SHORTLIST_EXTRA).min(n);
    let ref_norms: Vec<f32> = reference.rows().into_iter().map(|r| r.dot(&r)).collect();
    let cross = new.dot(&reference.t());
    let reference = reference.as_standard_layout();
    let new = new.as_standard_layout();
    let mut indices = vec![0u32; m * k];
    let mut d2 = vec![0f32; m * k];
    indices
        .par_chunks_mut(k)
        .zip(d2.par_chunks_mut(k))
        .zip(cross.axis_iter(Axis(0)).into_par_iter())
        .enumerate()
        .for_each(|(i, ((idx_out, d_out), row))| {
            let q = new.row(i);
            let qn = q.dot(&q);
            let mut cand: Vec<(f32, u32)> = row
                .iter()
                .zip(&ref_norms)
                .enumerate()
                .map(|(j, (&c, &rn))| ((qn + rn - 2.0 * c).max(0.0), j as u32))
                .collect();
            if short < n {
                cand.select_nth_unstable_by(short - 1, |a, b| {
                    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
                });
                cand.truncate(short);
            }
            let qs = q.as_slice().unwrap_or(&[]);
            let mut exact: Vec<(f32, u32)> = cand
                .iter()
                .map(|&(_, j)| {
                    let r = reference.row(j as usize);
                    let d = match (qs, r.as_slice()) {
                        (a, Some(b)) if a.len() == b.len() => sq_dist(a, b),
                        _ => q.iter().zip(r.iter()).map(|(a, b)| (a - b) * (a - b)).sum(),
                    };
                    (d, j)
                })
                .collect();
            exact.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for (c, &(d, j)) in exact.iter().take(k).enumerate() {
                idx_out[c] = j;
                d_out[c] = d;
            }
        });
    (indices, d2)
}

fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 8;
    let mut acc = [0f32; L];
    let chunks = a.len() / L;
    for c in 0..chunks {
        for l in 0..L {
            let d = a[c * L + l] - b[c * L + l];
            acc[l] += d * d;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for j in chunks * L..a.len() {
        let d = a[j] - b[j];
        s += d * d;
    }
    s
}

fn validate(
    reference: ArrayView2<f32>,
    layout: ArrayView2<f32>,
    new: ArrayView2<f32>,
    params: &PlaceParams,
) -> Result<(), TsneError> {
    let bad = |what: String| Err(TsneError::InvalidParams(what));
    let n = reference.nrows();
    if layout.dim() != (n, 2) {
        return bad(format!(
            "the layout is {} x {}, expected {n} x 2 (one position per reference point)",
            layout.nrows(),
            layout.ncols()
        ));
    }
    if new.ncols() != reference.ncols() {
        return bad(format!(
            "new points have {} features, the reference points {}",
            new.ncols(),
            reference.ncols()
        ));
    }
    if !params.perplexity.is_finite() || params.perplexity <= 0.0 {
        return bad(format!(
            "perplexity must be a positive finite number, got {}",
            params.perplexity
        ));
    }
    if n < 2 {
        return Err(TsneError::TooFewPoints {
            n,
            perplexity: params.perplexity,
        });
    }
    for a in [reference.view(), new.view(), layout.view()] {
        if let Some(((row, col), _)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(TsneError::NonFinite { row, col });
        }
    }
    for (name, v) in [
        ("learning_rate", params.learning_rate),
        ("exaggeration", params.exaggeration),
        ("max_grad_norm", params.max_grad_norm),
    ] {
        if !v.is_finite() || v <= 0.0 {
            return bad(format!("{name} must be positive, got {v}"));
        }
    }
    if !(0.0..1.0).contains(&params.momentum) {
        return bad(format!(
            "momentum must be in [0, 1), got {}",
            params.momentum
        ));
    }
    Ok(())
}
