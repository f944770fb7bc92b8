//! The t-SNE gradient with the Student-t kernel in 2-D (one degree of freedom):
//!
//! dC/dy_i = 4 * sum_j (p_ij - q_ij) (1 + |y_i - y_j|^2)^-1 (y_i - y_j)
//!         = 4 * (sum_j p_ij w_ij (y_i - y_j) - sum_j w_ij^2 (y_i - y_j) / Z),
//! with w_ij = 1 / (1 + |y_i - y_j|^2) and Z = sum_{k != l} w_kl (van der Maaten 2014, eq. 5;
//! the factor 4 is scikit-learn's `c = 2 (dof + 1) / dof` in `_kl_divergence(_bh)`).
//!
//! This file holds the attractive term over a sparse P, the exact O(n^2) repulsion as a tight,
//! branch-free loop over structure-of-arrays coordinates that the compiler vectorises (AVX-512
//! or AVX2 when the CPU has them, chosen at run time), and the KL divergence.

use rayon::prelude::*;

use super::affinity::SparseP;

/// Coordinate given to padding lanes: far enough that their kernel value vanishes in f32.
pub const PAD_COORD: f32 = 1e18;
/// Lane count the padded coordinate arrays are a multiple of.
pub const PAD_TO: usize = 16;
/// Points per parallel task (fixed, so results do not depend on the thread count).
pub const ROWS_PER_TASK: usize = 32;

/// Per-point partial sums: attractive force (x, y), unnormalised repulsive force (x, y), and
/// the point's share of Z.
pub type Forces = [f32; 5];

/// Horizontal sum in a fixed (pairwise) order.
#[inline(always)]
fn hsum<const L: usize>(v: [f32; L]) -> f32 {
    let mut v = v;
    let mut width = L;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            v[l] += v[l + width];
        }
    }
    v[0]
}

/// Repulsion on point (xi, yi) from every point in the padded arrays, itself included
/// (which adds exactly 1 to Z and nothing to the force).
#[inline(always)]
fn repulsion_row<const L: usize>(xi: f32, yi: f32, xs: &[f32], ys: &[f32]) -> [f32; 3] {
    let mut fx = [0f32; L];
    let mut fy = [0f32; L];
    let mut z = [0f32; L];
    for (cx, cy) in xs.chunks_exact(L).zip(ys.chunks_exact(L)) {
        for l in 0..L {
            let dx = xi - cx[l];
            let dy = yi - cy[l];
            let q = 1.0 / (1.0 + dx * dx + dy * dy);
            z[l] += q;
            let q2 = q * q;
            fx[l] += q2 * dx;
            fy[l] += q2 * dy;
        }
    }
    [hsum(fx), hsum(fy), hsum(z) - 1.0]
}

/// Dense-P row (scikit-learn's exact method): attraction and repulsion in one pass.
#[inline(always)]
fn dense_row<const L: usize>(xi: f32, yi: f32, xs: &[f32], ys: &[f32], p: &[f32]) -> Forces {
    let mut ax = [0f32; L];
    let mut ay = [0f32; L];
    let mut fx = [0f32; L];
    let mut fy = [0f32; L];
    let mut z = [0f32; L];
    for ((cx, cy), cp) in xs
        .chunks_exact(L)
        .zip(ys.chunks_exact(L))
        .zip(p.chunks_exact(L))
    {
        for l in 0..L {
            let dx = xi - cx[l];
            let dy = yi - cy[l];
            let q = 1.0 / (1.0 + dx * dx + dy * dy);
            z[l] += q;
            let pq = cp[l] * q;
            ax[l] += pq * dx;
            ay[l] += pq * dy;
            let q2 = q * q;
            fx[l] += q2 * dx;
            fy[l] += q2 * dy;
        }
    }
    [hsum(ax), hsum(ay), hsum(fx), hsum(fy), hsum(z) - 1.0]
}

/// Repulsion for the points `first..first + out.len()`.
#[inline(always)]
fn repulsion_block<const L: usize>(first: usize, xs: &[f32], ys: &[f32], out: &mut [Forces]) {
    for (r, o) in out.iter_mut().enumerate() {
        let i = first + r;
        let [rx, ry, z] = repulsion_row::<L>(xs[i], ys[i], xs, ys);
        o[2] = rx;
        o[3] = ry;
        o[4] = z;
    }
}

#[inline(always)]
fn dense_block<const L: usize>(
    first: usize,
    xs: &[f32],
    ys: &[f32],
    p: &[f32],
    out: &mut [Forces],
) {
    let stride = xs.len();
    for (r, o) in out.iter_mut().enumerate() {
        let i = first + r;
        *o = dense_row::<L>(xs[i], ys[i], xs, ys, &p[i * stride..(i + 1) * stride]);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn repulsion_block_avx512(first: usize, xs: &[f32], ys: &[f32], out: &mut [Forces]) {
    repulsion_block::<16>(first, xs, ys, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn repulsion_block_avx2(first: usize, xs: &[f32], ys: &[f32], out: &mut [Forces]) {
    repulsion_block::<16>(first, xs, ys, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn dense_block_avx512(first: usize, xs: &[f32], ys: &[f32], p: &[f32], out: &mut [Forces]) {
    dense_block::<16>(first, xs, ys, p, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dense_block_avx2(first: usize, xs: &[f32], ys: &[f32], p: &[f32], out: &mut [Forces]) {
    dense_block::<16>(first, xs, ys, p, out);
}

/// Exact repulsion for every point into `out[i][2..5]`; `xs`/`ys` padded to [`PAD_TO`].
pub fn exact_repulsion(xs: &[f32], ys: &[f32], out: &mut [Forces]) {
    debug_assert_eq!(xs.len() % PAD_TO, 0);
    out.par_chunks_mut(ROWS_PER_TASK)
        .enumerate()
        .for_each(|(c, block)| {
            let first = c * ROWS_PER_TASK;
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F, checked just above.
                    unsafe { repulsion_block_avx512(first, xs, ys, block) };
                    return;
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    unsafe { repulsion_block_avx2(first, xs, ys, block) };
                    return;
                }
            }
            repulsion_block::<16>(first, xs, ys, block);
        });
}

/// Exact gradient terms over a dense P (row stride = padded length) into `out`.
pub fn exact_dense(xs: &[f32], ys: &[f32], p: &[f32], out: &mut [Forces]) {
    out.par_chunks_mut(ROWS_PER_TASK)
        .enumerate()
        .for_each(|(c, block)| {
            let first = c * ROWS_PER_TASK;
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F, checked just above.
                    unsafe { dense_block_avx512(first, xs, ys, p, block) };
                    return;
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    unsafe { dense_block_avx2(first, xs, ys, p, block) };
                    return;
                }
            }
            dense_block::<16>(first, xs, ys, p, block);
        });
}

/// Attractive term sum_j p_ij w_ij (y_i - y_j) of point `i` over its sparse row
/// (scikit-learn's `compute_gradient_positive`).
#[inline]
pub fn attraction(p: &SparseP, values: &[f32], y: &[f32], i: usize) -> [f32; 2] {
    let (xi, yi) = (y[2 * i], y[2 * i + 1]);
    let mut ax = 0f32;
    let mut ay = 0f32;
    let row = p.indptr[i]..p.indptr[i + 1];
    for (&j, &pij) in p.indices[row.clone()].iter().zip(&values[row]) {
        let j = j as usize;
        let dx = xi - y[2 * j];
        let dy = yi - y[2 * j + 1];
        let pq = pij / (1.0 + dx * dx + dy * dy);
        ax += pq * dx;
        ay += pq * dy;
    }
    [ax, ay]
}

/// KL(P || Q) over the stored entries of a sparse P, Q = w / Z (scikit-learn's Barnes-Hut
/// error: `p * log(max(p, FLT_MIN) / max(q, FLT_MIN))`).
pub fn kl_sparse(p: &SparseP, values: &[f32], y: &[f32], z: f64) -> f64 {
    let n = p.n();
    let per_task: Vec<f64> = (0..n.div_ceil(ROWS_PER_TASK))
        .into_par_iter()
        .map(|c| {
            let mut sum = 0f64;
            for i in c * ROWS_PER_TASK..((c + 1) * ROWS_PER_TASK).min(n) {
                let row = p.indptr[i]..p.indptr[i + 1];
                for (&j, &pij) in p.indices[row.clone()].iter().zip(&values[row]) {
                    let j = j as usize;
                    let dx = y[2 * i] - y[2 * j];
                    let dy = y[2 * i + 1] - y[2 * j + 1];
                    let q = f64::from(1.0 / (1.0 + dx * dx + dy * dy)) / z;
                    let pij = f64::from(pij);
                    let tiny = f64::from(f32::MIN_POSITIVE);
                    sum += pij * (pij.max(tiny) / q.max(tiny)).ln();
                }
            }
            sum
        })
        .collect();
    per_task.iter().sum()
}

/// KL(P || Q) over all pairs of a dense P (scikit-learn's exact error, Q floored at
/// `MACHINE_EPSILON`).
pub fn kl_dense(p: &[f32], stride: usize, y: &[f32], z: f64) -> f64 {
    let n = y.len() / 2;
    let eps = super::affinity::MACHINE_EPSILON;
    let per_task: Vec<f64> = (0..n.div_ceil(ROWS_PER_TASK))
        .into_par_iter()
        .map(|c| {
            let mut sum = 0f64;
            for i in c * ROWS_PER_TASK..((c + 1) * ROWS_PER_TASK).min(n) {
                for j in (0..n).filter(|&j| j != i) {
                    let dx = y[2 * i] - y[2 * j];
                    let dy = y[2 * i + 1] - y[2 * j + 1];
                    let q = f64::from(1.0 / (1.0 + dx * dx + dy * dy)) / z;
                    let pij = f64::from(p[i * stride + j]);
                    sum += pij * (pij.max(eps) / q.max(eps)).ln();
                }
            }
            sum
        })
        .collect();
    per_task.iter().sum()
}
