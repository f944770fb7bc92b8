//! Exact k nearest neighbours by squared Euclidean distance.
//!
//! High-dimensional inputs go through the GEMM identity |a - b|^2 = |a|^2 + |b|^2 - 2 a.b on
//! centred data, one block of rows at a time; the identity only shortlists `k + SHORTLIST_EXTRA`
//! candidates per row, whose distances are then recomputed directly in f64. That keeps the
//! ranking exact where f32 cancellation would blur it (near-duplicate points, such as the
//! almost one-hot softmax outputs). Low-dimensional inputs are compared directly.

use ndarray::{Array2, ArrayView2, Axis, s};
use rayon::prelude::*;

/// Extra candidates kept from the GEMM pass before the exact re-ranking.
const SHORTLIST_EXTRA: usize = 8;
/// Rows per GEMM block (fixed, so results never depend on the thread count).
const BLOCK_ROWS: usize = 512;
/// At or below this many features, distances are computed directly (no GEMM).
const DIRECT_MAX_DIM: usize = 16;

/// Each point's `k` nearest other points, nearest first.
#[derive(Debug, Clone)]
pub struct Knn {
    /// Neighbours per point.
    pub k: usize,
    /// n x k neighbour indices, row-major.
    pub indices: Vec<u32>,
    /// n x k squared distances, row-major, ascending per row.
    pub d2: Vec<f32>,
}

/// A bounded, sorted list of the smallest (distance, index) pairs seen.
struct TopK<'a> {
    d: &'a mut [f32],
    i: &'a mut [u32],
    len: usize,
}

impl<'a> TopK<'a> {
    fn new(d: &'a mut [f32], i: &'a mut [u32]) -> Self {
        Self { d, i, len: 0 }
    }
    #[inline]
    fn worst(&self) -> f32 {
        if self.len < self.d.len() {
            f32::INFINITY
        } else {
            self.d[self.len - 1]
        }
    }
    #[inline]
    fn push(&mut self, d: f32, idx: u32) {
        let cap = self.d.len();
        if self.len == cap && (d.is_nan() || d >= self.d[cap - 1]) {
            return;
        }
        let mut pos = if self.len < cap { self.len } else { cap - 1 };
        // Insertion: ties keep the earlier index first.
        while pos > 0 && self.d[pos - 1] > d {
            self.d[pos] = self.d[pos - 1];
            self.i[pos] = self.i[pos - 1];
            pos -= 1;
        }
        self.d[pos] = d;
        self.i[pos] = idx;
        if self.len < cap {
            self.len += 1;
        }
    }
}

/// Exact `k` nearest neighbours of every row of `data` (self excluded). `k` must be below n.
pub fn knn(data: ArrayView2<f32>, k: usize) -> Knn {
    let n = data.nrows();
    assert!(k < n, "k = {k} must be below n = {n}");
    let mut indices = vec![0u32; n * k];
    let mut d2 = vec![0f32; n * k];
    if k == 0 {
        return Knn { k, indices, d2 };
    }
    // Distances come from the data as given: centring in f32 would round away the tiny
    // differences between near-duplicates (softmax outputs differ in the 1e-6s). Only the GEMM
    // shortlist works on centred rows, where it curbs cancellation in |a|^2 + |b|^2 - 2ab.
    let original = data.as_standard_layout();
    if data.ncols() <= DIRECT_MAX_DIM {
        knn_direct(&original.view(), k, &mut indices, &mut d2);
    } else {
        knn_gemm(&centre(data), &original.view(), k, &mut indices, &mut d2);
    }
    Knn { k, indices, d2 }
}

/// Rows minus the column means (in f64), as a contiguous f32 array.
fn centre(data: ArrayView2<f32>) -> Array2<f32> {
    let n = data.nrows() as f64;
    let mut mean = vec![0f64; data.ncols()];
    for row in data.rows() {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    let mut out = Array2::<f32>::zeros(data.raw_dim());
    for (mut o, row) in out.rows_mut().into_iter().zip(data.rows()) {
        for ((o, &v), m) in o.iter_mut().zip(row).zip(&mean) {
            *o = (f64::from(v) - m / n) as f32;
        }
    }
    out
}

#[inline]
fn exact_d2(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0f64;
    for (x, y) in a.iter().zip(b) {
        let d = f64::from(*x) - f64::from(*y);
        s += d * d;
    }
    s as f32
}

fn knn_direct(x: &ArrayView2<f32>, k: usize, indices: &mut [u32], d2: &mut [f32]) {
    let n = x.nrows();
    let dim = x.ncols();
    let flat = x.as_slice().expect("contiguous");
    d2.par_chunks_mut(k)
        .zip(indices.par_chunks_mut(k))
        .enumerate()
        .with_min_len(64)
        .for_each(|(i, (dd, ii))| {
            let a = &flat[i * dim..(i + 1) * dim];
            let mut top = TopK::new(dd, ii);
            for j in 0..n {
                if j != i {
                    let b = &flat[j * dim..(j + 1) * dim];
                    let mut s = 0f32;
                    for (p, q) in a.iter().zip(b) {
                        let d = p - q;
                        s += d * d;
                    }
                    if s < top.worst() {
                        top.push(s, j as u32);
                    }
                }
            }
        });
}

/// Offers (d, idx) to a full, ascending candidate list (unfilled slots hold +inf).
#[inline]
fn offer(dist: &mut [f32], idx: &mut [u32], d: f32, j: u32) {
    let cap = dist.len();
    if d.is_nan() || d >= dist[cap - 1] {
        return;
    }
    let mut pos = cap - 1;
    while pos > 0 && dist[pos - 1] > d {
        dist[pos] = dist[pos - 1];
        idx[pos] = idx[pos - 1];
        pos -= 1;
    }
    dist[pos] = d;
    idx[pos] = j;
}

/// Columns that are constant (all zero once centred) add nothing to any distance: drop them.
fn without_constant_columns(x: &Array2<f32>) -> Option<Array2<f32>> {
    let keep: Vec<usize> = (0..x.ncols())
        .filter(|&j| x.column(j).iter().any(|&v| v != 0.0))
        .collect();
    (keep.len() < x.ncols() && !keep.is_empty()).then(|| x.select(Axis(1), &keep))
}

/// GEMM shortlist, symmetric: block `b` of rows is multiplied only with rows from its own start
/// on, and each inner product a.b serves both a's and b's candidate lists (half the flops of
/// the full product). Every list receives its candidates in a fixed order, whatever the thread
/// count.
fn knn_gemm(
    x: &Array2<f32>,
    original: &ArrayView2<f32>,
    k: usize,
    indices: &mut [u32],
    d2: &mut [f32],
) {
    let reduced = without_constant_columns(x);
    let xr = reduced.as_ref().unwrap_or(x);
    let n = x.nrows();
    let dim = x.ncols();
    let flat = original.as_slice().expect("contiguous");
    let norms: Vec<f32> = xr
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() as f32)
        .collect();
    let short = (k + SHORTLIST_EXTRA).min(n - 1);
    let mut cand_d = vec![f32::INFINITY; n * short];
    let mut cand_i = vec![u32::MAX; n * short];
    let mut gram = Array2::<f32>::zeros((BLOCK_ROWS.min(n), n));
    const COLS_PER_TASK: usize = 64;
    for start in (0..n).step_by(BLOCK_ROWS) {
        let end = (start + BLOCK_ROWS).min(n);
        let rows = end - start;
        let cols = n - start;
        let mut g = gram.slice_mut(s![..rows, ..cols]);
        // a.b for the block against every row from `start` on (matrixmultiply threads this).
        ndarray::linalg::general_mat_mul(
            1.0,
            &xr.slice(s![start..end, ..]),
            &xr.slice(s![start.., ..]).t(),
            0.0,
            &mut g,
        );
        let g = g.view();
        // The block's own rows: candidates j >= start.
        cand_d[start * short..end * short]
            .par_chunks_mut(short)
            .zip(cand_i[start * short..end * short].par_chunks_mut(short))
            .enumerate()
            .with_min_len(8)
            .for_each(|(r, (cd, ci))| {
                let i = start + r;
                let ni = norms[i];
                let grow = g.row(r);
                for (jj, (&gij, &nj)) in grow.iter().zip(&norms[start..]).enumerate() {
                    let approx = ni + nj - 2.0 * gij;
                    if approx < cd[short - 1] && start + jj != i {
                        offer(cd, ci, approx, (start + jj) as u32);
                    }
                }
            });
        // Later rows: the block's rows are candidates for them (same a.b, read transposed).
        cand_d[end * short..]
            .par_chunks_mut(COLS_PER_TASK * short)
            .zip(cand_i[end * short..].par_chunks_mut(COLS_PER_TASK * short))
            .enumerate()
            .for_each(|(t, (cd, ci))| {
                let c0 = end + t * COLS_PER_TASK;
                let width = cd.len() / short;
                for r in 0..rows {
                    let i = start + r;
                    let ni = norms[i];
                    let grow = g.row(r);
                    for c in 0..width {
                        let j = c0 + c;
                        let approx = ni + norms[j] - 2.0 * grow[j - start];
                        let slot = c * short..(c + 1) * short;
                        if approx < cd[slot.end - 1] {
                            offer(&mut cd[slot.clone()], &mut ci[slot], approx, i as u32);
                        }
                    }
                }
            });
    }
    // Exact re-ranking of each shortlist, in f64 on the rows as given.
    d2.par_chunks_mut(k)
        .zip(indices.par_chunks_mut(k))
        .zip(cand_i.par_chunks(short))
        .enumerate()
        .with_min_len(16)
        .for_each_init(
            || (vec![0f32; k], vec![0u32; k]),
            |(fd, fi), (i, ((dd, ii), cands))| {
                let a = &flat[i * dim..(i + 1) * dim];
                let mut exact = TopK::new(fd, fi);
                for &j in cands {
                    let j = j as usize;
                    exact.push(exact_d2(a, &flat[j * dim..(j + 1) * dim]), j as u32);
                }
                dd.copy_from_slice(fd);
                ii.copy_from_slice(fi);
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn brute(x: ArrayView2<f32>, k: usize) -> Vec<Vec<u32>> {
        let n = x.nrows();
        (0..n)
            .map(|i| {
                let mut v: Vec<(f64, u32)> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| {
                        let d: f64 = x
                            .row(i)
                            .iter()
                            .zip(x.row(j))
                            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                            .sum();
                        (d, j as u32)
                    })
                    .collect();
                v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                v.into_iter().take(k).map(|(_, j)| j).collect()
            })
            .collect()
    }

    #[test]
    fn gemm_and_direct_paths_match_brute_force() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // 1,100 rows: three GEMM blocks, so the transposed (later-rows) updates are exercised;
        // a constant column, dropped by the GEMM path, must not change anything.
        for (n, dim) in [(300, 3usize), (1100, 40)] {
            let mut x = Array2::from_shape_fn((n, dim), |_| rng.random::<f32>() * 10.0 + 100.0);
            x.column_mut(1).fill(7.0);
            let got = knn(x.view(), 10);
            let want = brute(x.view(), 10);
            assert_eq!(want.len(), n);
            for (i, want_row) in want.iter().enumerate() {
                assert_eq!(
                    &got.indices[i * 10..(i + 1) * 10],
                    &want_row[..],
                    "row {i} dim {dim}"
                );
                assert!(
                    got.d2[i * 10..(i + 1) * 10]
                        .windows(2)
                        .all(|w| w[0] <= w[1])
                );
            }
        }
    }
}
