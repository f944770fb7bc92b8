//! Exact k nearest neighbours by squared Euclidean distance.
//!
//! High-dimensional inputs go through the GEMM identity |a - b|^2 = |a|^2 + |b|^2 - 2 a.b on
//! centred data, one block of rows at a time; the identity only shortlists `k + SHORTLIST_EXTRA`
//! candidates per row, whose distances are then recomputed directly in f64. That keeps the
//! ranking exact where f32 cancellation would blur it (near-duplicate points, such as the
//! almost one-hot softmax outputs). Low-dimensional inputs are compared directly.

use std::cmp::Ordering;

use ndarray::{Array2, ArrayView2, Axis, s};
use rayon::prelude::*;

/// Extra candidates kept from the GEMM pass before the exact re-ranking.
const SHORTLIST_EXTRA: usize = 8;
/// Rows per GEMM block. A block multiplies its rows with every row from its own start on, so
/// smaller blocks follow the triangle of distinct pairs more closely: at 1,500 points, 128 rows
/// compute 1.22M inner products where 512 computed 1.50M (of 1.13M pairs), and the block
/// (128 x n) stays nearer the core's cache for the scans that read it. Each list keeps the
/// `k + extra` best of all its candidates whatever the order they come in, so the block size
/// changes no result (tested against the 512-row search).
const BLOCK_ROWS: usize = 128;
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

/// A (distance, index) pair as one integer that sorts as the shortlist rule does: ascending
/// distance (the f32 bits mapped to an order-preserving unsigned key, -0 taken as +0, as `<`
/// does), ties to the lower index. NaN never gets here (it never passes a threshold).
#[inline]
fn key(d: f32, j: u32) -> u64 {
    let bits = (d + 0.0).to_bits();
    let ordered = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    };
    u64::from(ordered) << 32 | u64::from(j)
}

/// The (distance, index) pair of a [`key`].
#[inline]
fn unkey(key: u64) -> (f32, u32) {
    let ordered = (key >> 32) as u32;
    let bits = if ordered >> 31 == 1 {
        ordered & !(1 << 31)
    } else {
        !ordered
    };
    (f32::from_bits(bits), key as u32)
}

/// Slots of a candidate list that keeps `keep`: room to collect offers between two selections.
fn buffer_len(keep: usize) -> usize {
    keep + keep.max(16)
}

/// One point's candidate list: the `keep` smallest (distance, index) pairs among those offered,
/// offered in increasing index. An offer below the threshold is appended; a full buffer is cut
/// back to its best `keep` by selection (`select_nth_unstable` on [`key`]s), and the threshold
/// drops to the worst one kept. Amortised O(1) per offer, where a sorted list shifted up to
/// `keep` entries per accepted offer. The threshold is strict: a later offer at the threshold's
/// distance has a higher index than the pair that set it, so it could not displace it (ties
/// keep the lower index), and NaN never passes.
struct Candidates<'a> {
    buf: &'a mut [u64],
    len: &'a mut u32,
    thr: &'a mut f32,
    keep: usize,
}

impl<'a> Candidates<'a> {
    /// Appends (d, j); the caller checked `d < *self.thr`.
    #[inline]
    fn offer(&mut self, d: f32, j: u32) {
        let len = *self.len as usize;
        self.buf[len] = key(d, j);
        if len + 1 == self.buf.len() {
            self.buf.select_nth_unstable(self.keep - 1);
            *self.thr = unkey(self.buf[self.keep - 1]).0;
            *self.len = self.keep as u32;
        } else {
            *self.len = (len + 1) as u32;
        }
    }

    /// The kept pairs as [`key`]s, ascending by the shortlist rule.
    fn finish(self) -> &'a mut [u64] {
        let Self { buf, len, keep, .. } = self;
        let mut len = *len as usize;
        if len > keep {
            buf[..len].select_nth_unstable(keep - 1);
            len = keep;
        }
        let kept = &mut buf[..len];
        kept.sort_unstable();
        kept
    }
}

/// Exact `k` nearest neighbours of every row of `data` (self excluded). `k` must be below n.
pub fn knn(data: ArrayView2<f32>, k: usize) -> Knn {
    search(data, k, knn_direct, knn_gemm)
}

/// The direct search: (rows, k, indices out, squared distances out).
type DirectSearch = fn(&ArrayView2<f32>, usize, &mut [u32], &mut [f32]);
/// The GEMM search: (centred rows, rows as given, k, extra shortlisted, indices, distances).
type GemmSearch = fn(&Array2<f32>, &ArrayView2<f32>, usize, usize, &mut [u32], &mut [f32]);

/// [`knn`] with its two paths given (the tests also pass the search it replaced).
fn search(data: ArrayView2<f32>, k: usize, direct: DirectSearch, gemm: GemmSearch) -> Knn {
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
        direct(&original.view(), k, &mut indices, &mut d2);
    } else {
        gemm(
            &centre(data),
            &original.view(),
            k,
            SHORTLIST_EXTRA,
            &mut indices,
            &mut d2,
        );
    }
    Knn { k, indices, d2 }
}

/// Dimensions of the subspace the approximate search shortlists in.
pub const PROJECTED_DIM: usize = 64;
/// Subspace iterations of the projection (each one multiplication by the covariance).
const SUBSPACE_STEPS: usize = 4;

/// A numbering of the points in which neighbours are close: breadth-first over the kNN graph
/// (Cuthill-McKee without the degree sort), each point's neighbours visited nearest first.
/// `order[new] = old`.
pub fn locality_order(knn: &Knn) -> Vec<u32> {
    let k = knn.k;
    let n = knn.indices.len() / k.max(1);
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for start in 0..n {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut head = order.len();
        order.push(start as u32);
        while head < order.len() {
            let i = order[head] as usize;
            head += 1;
            for &j in &knn.indices[i * k..(i + 1) * k] {
                if !seen[j as usize] {
                    seen[j as usize] = true;
                    order.push(j);
                }
            }
        }
    }
    order
}

/// The same neighbours with the points renumbered: new point `r` is old point `order[r]`.
pub fn relabel(knn: &Knn, order: &[u32]) -> Knn {
    let k = knn.k;
    let mut new_of = vec![0u32; order.len()];
    for (r, &old) in order.iter().enumerate() {
        new_of[old as usize] = r as u32;
    }
    let mut indices = Vec::with_capacity(knn.indices.len());
    let mut d2 = Vec::with_capacity(knn.d2.len());
    for &old in order {
        let row = old as usize * k..(old as usize + 1) * k;
        indices.extend(knn.indices[row.clone()].iter().map(|&j| new_of[j as usize]));
        d2.extend_from_slice(&knn.d2[row]);
    }
    Knn { k, indices, d2 }
}

/// Points per cell of the approximate search (on average).
const CELL_SIZE: usize = 200;
/// Cells searched per cell: its own and the nearest others by centroid.
const PROBES: usize = 16;
/// Lloyd iterations of the cell centroids.
const KMEANS_STEPS: usize = 6;
/// Points the centroids are fitted on (a seeded sample beyond this).
const KMEANS_SAMPLE: usize = 20_000;

/// Approximate `k` nearest neighbours for large inputs, an inverted-file search (as FAISS's
/// IVF) in a principal subspace: the rows are projected on their leading `PROJECTED_DIM`
/// principal directions (subspace iteration, seeded); k-means splits the projected points into
/// cells of about `CELL_SIZE`; each cell's points compare themselves, in the subspace, with the
/// points of the `PROBES` cells nearest to it (itself included); the `2k + 8` nearest there are
/// re-ranked by their exact distance in the full space. Distances returned are exact; a true
/// neighbour is missed only when it lies outside the probed cells or the shortlist. Every step
/// is per point or in a fixed order, so the result does not depend on the thread count.
pub fn knn_approximate(data: ArrayView2<f32>, k: usize, seed: u64) -> Knn {
    let n = data.nrows();
    assert!(k < n, "k = {k} must be below n = {n}");
    let n_cells = n / CELL_SIZE;
    if data.ncols() <= PROJECTED_DIM || k == 0 || n_cells <= PROBES {
        return knn(data, k);
    }
    let original = data.as_standard_layout();
    let flat = original.as_slice().expect("contiguous");
    let dim = data.ncols();
    let centred = centre(data);
    let basis = leading_subspace(&centred, PROJECTED_DIM, seed);
    let projected = centred.dot(&basis);
    let m = projected.ncols();
    let proj = projected.as_slice().expect("contiguous");
    let (cell_of, centroids) = kmeans(proj, m, n_cells, seed);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); n_cells];
    for (i, &c) in cell_of.iter().enumerate() {
        members[c as usize].push(i as u32);
    }
    // Each cell's probes: the nearest centroids to its own (ties by index).
    let probes: Vec<Vec<usize>> = (0..n_cells)
        .into_par_iter()
        .map(|c| {
            let a = &centroids[c * m..(c + 1) * m];
            let mut by: Vec<(f32, usize)> = (0..n_cells)
                .map(|o| (sq_dist(a, &centroids[o * m..(o + 1) * m]), o))
                .collect();
            by.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            by.iter().take(PROBES).map(|&(_, o)| o).collect()
        })
        .collect();
    let short = (2 * k + SHORTLIST_EXTRA).min(n - 1);
    // One task per cell; each writes the rows of its own points.
    let per_cell: Vec<Vec<Row>> = (0..n_cells)
        .into_par_iter()
        .with_max_len(1)
        .map(|c| {
            let cands: Vec<u32> = probes[c]
                .iter()
                .flat_map(|&o| members[o].iter().copied())
                .collect();
            let mut scratch: Vec<(f32, u32)> = Vec::with_capacity(cands.len());
            let mut out = Vec::with_capacity(members[c].len());
            for &i in &members[c] {
                let a = &proj[i as usize * m..(i as usize + 1) * m];
                scratch.clear();
                scratch.extend(
                    cands
                        .iter()
                        .filter(|&&j| j != i)
                        .map(|&j| (sq_dist(a, &proj[j as usize * m..(j as usize + 1) * m]), j)),
                );
                let take = short.min(scratch.len());
                let by = |x: &(f32, u32), y: &(f32, u32)| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1));
                if take < scratch.len() {
                    scratch.select_nth_unstable_by(take - 1, by);
                }
                // Exact distances in the full space, nearest first.
                let ai = &flat[i as usize * dim..(i as usize + 1) * dim];
                let mut exact: Vec<(f32, u32)> = scratch[..take]
                    .iter()
                    .map(|&(_, j)| {
                        (
                            sq_dist(ai, &flat[j as usize * dim..(j as usize + 1) * dim]),
                            j,
                        )
                    })
                    .collect();
                exact.sort_by(by);
                exact.truncate(k);
                out.push((
                    i,
                    exact.iter().map(|e| e.1).collect(),
                    exact.iter().map(|e| e.0).collect(),
                ));
            }
            out
        })
        .collect();
    let mut indices = vec![0u32; n * k];
    let mut d2 = vec![f32::INFINITY; n * k];
    for (i, idx, dist) in per_cell.into_iter().flatten() {
        let i = i as usize;
        // A cell whose probes hold fewer than k other points (tiny data only) leaves the rest
        // of its rows to the exact fallback below.
        indices[i * k..i * k + idx.len()].copy_from_slice(&idx);
        d2[i * k..i * k + dist.len()].copy_from_slice(&dist);
    }
    if d2.iter().any(|d| d.is_infinite()) {
        return knn(data, k);
    }
    Knn { k, indices, d2 }
}

/// One point's neighbours: (point, indices, squared distances).
type Row = (u32, Vec<u32>, Vec<f32>);

/// Squared Euclidean distance in f32 with eight partial sums (vectorises).
#[inline]
fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += (x - y) * (x - y);
    }
    s
}

/// Lloyd's k-means on the rows of `x` (n x m, row-major) with `cells` centroids, started from
/// seeded distinct points and fitted on a seeded sample; returns every row's cell and the
/// centroids (cells x m). Sums run in point order: thread-count independent.
fn kmeans(x: &[f32], m: usize, cells: usize, seed: u64) -> (Vec<u32>, Vec<f32>) {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let n = x.len() / m;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6b6d_6561_6e73);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let mut centroids: Vec<f32> = order[..cells]
        .iter()
        .flat_map(|&i| x[i * m..(i + 1) * m].iter().copied())
        .collect();
    let sample = &order[..n.min(KMEANS_SAMPLE.max(cells))];
    let assign = |rows: &[usize], centroids: &[f32]| -> Vec<u32> {
        rows.par_iter()
            .with_min_len(256)
            .map(|&i| {
                let a = &x[i * m..(i + 1) * m];
                let mut best = (f32::INFINITY, 0u32);
                for c in 0..cells {
                    let d = sq_dist(a, &centroids[c * m..(c + 1) * m]);
                    if d < best.0 {
                        best = (d, c as u32);
                    }
                }
                best.1
            })
            .collect()
    };
    for _ in 0..KMEANS_STEPS {
        let cell = assign(sample, &centroids);
        let mut sums = vec![0f64; cells * m];
        let mut counts = vec![0usize; cells];
        for (&i, &c) in sample.iter().zip(&cell) {
            let c = c as usize;
            counts[c] += 1;
            for (s, &v) in sums[c * m..(c + 1) * m]
                .iter_mut()
                .zip(&x[i * m..(i + 1) * m])
            {
                *s += f64::from(v);
            }
        }
        for c in 0..cells {
            // An empty cell keeps its centroid.
            if counts[c] > 0 {
                for (o, s) in centroids[c * m..(c + 1) * m]
                    .iter_mut()
                    .zip(&sums[c * m..(c + 1) * m])
                {
                    *o = (s / counts[c] as f64) as f32;
                }
            }
        }
    }
    let all: Vec<usize> = (0..n).collect();
    (assign(&all, &centroids), centroids)
}

/// An orthonormal basis (d x m) of the leading principal subspace of the centred rows, by
/// subspace iteration from a seeded Gaussian start (Halko, Martinsson and Tropp 2011, alg. 4.4).
fn leading_subspace(centred: &Array2<f32>, m: usize, seed: u64) -> Array2<f32> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let d = centred.ncols();
    let m = m.min(d);
    let cov = centred.t().dot(centred);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut q = Array2::<f32>::from_shape_simple_fn((d, m), || StandardNormal.sample(&mut rng));
    orthonormalise(&mut q);
    for _ in 0..SUBSPACE_STEPS {
        q = cov.dot(&q);
        orthonormalise(&mut q);
    }
    q
}

/// Modified Gram-Schmidt on the columns, in f64 (a column that vanishes is left at zero).
fn orthonormalise(q: &mut Array2<f32>) {
    let mut cols: Vec<Vec<f64>> = (0..q.ncols())
        .map(|c| q.column(c).iter().map(|&v| f64::from(v)).collect())
        .collect();
    for c in 0..cols.len() {
        let (done, rest) = cols.split_at_mut(c);
        let v = &mut rest[0];
        for u in done.iter() {
            let dot: f64 = u.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
            for (x, a) in v.iter_mut().zip(u) {
                *x -= dot * a;
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        for x in v.iter_mut() {
            *x *= scale;
        }
    }
    for (c, col) in cols.iter().enumerate() {
        for (o, &v) in q.column_mut(c).iter_mut().zip(col) {
            *o = v as f32;
        }
    }
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

/// Squared distance in f64 (each term is exact there; only the sum rounds), as f32. Eight
/// partial sums so that it vectorises and does not wait on one accumulator: the re-ranking of
/// the shortlists had been a tenth of a 1,500 x 512 run at perplexity 30.
#[inline]
fn exact_d2(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { exact_d2_avx2(a, b) };
        }
    }
    exact_d2_lanes(a, b)
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn exact_d2_avx2(a: &[f32], b: &[f32]) -> f32 {
    exact_d2_lanes(a, b)
}

#[inline(always)]
fn exact_d2_lanes(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 8;
    let mut acc = [0f64; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..L {
            let d = f64::from(x[l]) - f64::from(y[l]);
            acc[l] += d * d;
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        let d = f64::from(*x) - f64::from(*y);
        s += d * d;
    }
    s as f32
}

/// [`exact_d2`] from `a` to four rows at once (the same sums, bit for bit): four independent
/// accumulator chains, and `a` converted once, where one row at a time waited on its adds.
#[inline]
fn exact_d2_x4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && b.iter().all(|r| r.len() == a.len()) {
            // SAFETY: the CPU supports AVX2 (checked just above) and every row is as long as `a`.
            return unsafe { exact_d2_x4_avx2(a, b) };
        }
    }
    b.map(|r| exact_d2_lanes(a, r))
}

/// # Safety
/// The CPU must support AVX2, and every row of `b` must be as long as `a`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn exact_d2_x4_avx2(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    use std::arch::x86_64::{
        __m256d, _mm_loadu_ps, _mm256_add_pd, _mm256_cvtps_pd, _mm256_mul_pd, _mm256_setzero_pd,
        _mm256_storeu_pd, _mm256_sub_pd,
    };
    let len = a.len();
    let whole = len - len % 8;
    // lo[t] holds `exact_d2_lanes`' accumulators 0..4 for row t, hi[t] those of 4..8; a
    // multiply then an add (no FMA), as there.
    let mut lo: [__m256d; 4] = [_mm256_setzero_pd(); 4];
    let mut hi: [__m256d; 4] = [_mm256_setzero_pd(); 4];
    let mut o = 0;
    while o < whole {
        // SAFETY: o + 8 <= len, and every row has len elements.
        unsafe {
            let a_lo = _mm256_cvtps_pd(_mm_loadu_ps(a.as_ptr().add(o)));
            let a_hi = _mm256_cvtps_pd(_mm_loadu_ps(a.as_ptr().add(o + 4)));
            for t in 0..4 {
                let p = b[t].as_ptr().add(o);
                let d_lo = _mm256_sub_pd(a_lo, _mm256_cvtps_pd(_mm_loadu_ps(p)));
                let d_hi = _mm256_sub_pd(a_hi, _mm256_cvtps_pd(_mm_loadu_ps(p.add(4))));
                lo[t] = _mm256_add_pd(lo[t], _mm256_mul_pd(d_lo, d_lo));
                hi[t] = _mm256_add_pd(hi[t], _mm256_mul_pd(d_hi, d_hi));
            }
        }
        o += 8;
    }
    let mut out = [0f32; 4];
    for t in 0..4 {
        let mut acc = [0f64; 8];
        // SAFETY: each store writes four f64 into an eight-element array.
        unsafe {
            _mm256_storeu_pd(acc.as_mut_ptr(), lo[t]);
            _mm256_storeu_pd(acc.as_mut_ptr().add(4), hi[t]);
        }
        let mut s =
            ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (x, y) in a[whole..].iter().zip(&b[t][whole..]) {
            let d = f64::from(*x) - f64::from(*y);
            s += d * d;
        }
        out[t] = s as f32;
    }
    out
}

/// Low-dimensional inputs: each point against all others, `s = sum (a_p - b_p)^2` in f32 in
/// feature order (vectorised across points on a feature-major copy), every point's list offered
/// in increasing index.
fn knn_direct(x: &ArrayView2<f32>, k: usize, indices: &mut [u32], d2: &mut [f32]) {
    let n = x.nrows();
    let dim = x.ncols();
    let flat = x.as_slice().expect("contiguous");
    let columns: Vec<f32> = (0..dim)
        .flat_map(|p| (0..n).map(move |j| flat[j * dim + p]))
        .collect();
    let cap = buffer_len(k);
    let avx2 = avx2();
    d2.par_chunks_mut(k)
        .zip(indices.par_chunks_mut(k))
        .enumerate()
        .with_min_len(64)
        .for_each_init(
            || (vec![0f32; n], vec![0u64; cap]),
            |(s, buf), (i, (dd, ii))| {
                let a = &flat[i * dim..(i + 1) * dim];
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: the CPU supports AVX2, checked by `avx2()`.
                    unsafe { direct_row_avx2(a, &columns, i, k, s, buf, dd, ii) };
                    return;
                }
                let _ = avx2;
                direct_row::<false>(a, &columns, i, k, s, buf, dd, ii);
            },
        );
}

/// Whether the AVX2 builds of the search's loops can run (the same arithmetic as the portable
/// ones, lane by lane, so the same bytes: only wider).
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`direct_row`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn direct_row_avx2(
    a: &[f32],
    columns: &[f32],
    i: usize,
    k: usize,
    s: &mut [f32],
    buf: &mut [u64],
    dd: &mut [f32],
    ii: &mut [u32],
) {
    direct_row::<true>(a, columns, i, k, s, buf, dd, ii);
}

/// Lanes of the threshold scans: a chunk of candidates is looked at one by one only when one
/// of them is below its threshold (after the first few offers, rarely).
const SCAN: usize = 8;

/// The lanes `l` of `v` below `t[l]`, as bits (AVX: one compare and a move mask, which the
/// compiler did not make of the portable loop).
#[inline(always)]
fn below<const AVX: bool>(v: &[f32; SCAN], t: &[f32; SCAN]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if AVX {
        // SAFETY: AVX is true only in the AVX2 builds of the callers (the CPU checked).
        return unsafe { below_avx(v, t) };
    }
    let mut m = 0u32;
    for l in 0..SCAN {
        m |= u32::from(v[l] < t[l]) << l;
    }
    m
}

/// [`below`] in one AVX compare (ordered, so a NaN lane is not below, as `<`).
///
/// # Safety
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn below_avx(v: &[f32; SCAN], t: &[f32; SCAN]) -> u32 {
    use std::arch::x86_64::{_CMP_LT_OQ, _mm256_cmp_ps, _mm256_loadu_ps, _mm256_movemask_ps};
    // SAFETY: both arrays hold eight f32.
    let m = unsafe {
        _mm256_cmp_ps::<_CMP_LT_OQ>(_mm256_loadu_ps(v.as_ptr()), _mm256_loadu_ps(t.as_ptr()))
    };
    _mm256_movemask_ps(m) as u32
}

/// The approximate distances |a|^2 + |b|^2 - 2 a.b of eight points (`nj`: their squared
/// norms, `g`: their inner products with a, whose squared norm is `ni`), as the scalar
/// expression computes each (AVX: in one register).
#[inline(always)]
fn approx8<const AVX: bool>(ni: f32, nj: &[f32], g: &[f32]) -> [f32; SCAN] {
    let (nj, g): (&[f32; SCAN], &[f32; SCAN]) = (
        nj[..SCAN].try_into().expect("eight norms"),
        g[..SCAN].try_into().expect("eight products"),
    );
    #[cfg(target_arch = "x86_64")]
    if AVX {
        // SAFETY: AVX is true only in the AVX2 builds of the callers (the CPU checked).
        return unsafe { approx8_avx(ni, nj, g) };
    }
    std::array::from_fn(|l| ni + nj[l] - 2.0 * g[l])
}

/// [`approx8`] in AVX lanes: an add, a multiply and a subtract, as the scalar expression.
///
/// # Safety
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn approx8_avx(ni: f32, nj: &[f32; SCAN], g: &[f32; SCAN]) -> [f32; SCAN] {
    use std::arch::x86_64::*;
    let mut out = [0f32; SCAN];
    // SAFETY: every array holds eight f32.
    unsafe {
        let sum = _mm256_add_ps(_mm256_set1_ps(ni), _mm256_loadu_ps(nj.as_ptr()));
        let twice = _mm256_mul_ps(_mm256_set1_ps(2.0), _mm256_loadu_ps(g.as_ptr()));
        _mm256_storeu_ps(out.as_mut_ptr(), _mm256_sub_ps(sum, twice));
    }
    out
}

/// One point `i` (`a`, its coordinates) of [`knn_direct`]: the distances to every point into
/// `s`, then its list of `k`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn direct_row<const AVX: bool>(
    a: &[f32],
    columns: &[f32],
    i: usize,
    k: usize,
    s: &mut [f32],
    buf: &mut [u64],
    dd: &mut [f32],
    ii: &mut [u32],
) {
    let n = s.len();
    s.fill(0.0);
    for (p, &ap) in a.iter().enumerate() {
        for (sj, &bp) in s.iter_mut().zip(&columns[p * n..(p + 1) * n]) {
            let d = ap - bp;
            *sj += d * d;
        }
    }
    let (mut len, mut thr) = (0u32, f32::INFINITY);
    let mut list = Candidates {
        buf,
        len: &mut len,
        thr: &mut thr,
        keep: k,
    };
    // As one test per point in increasing index: a chunk with no point below the threshold
    // would have offered nothing (the threshold only falls while offers are made).
    let chunks = s.chunks_exact(SCAN);
    let tail = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        let chunk: &[f32; SCAN] = chunk.try_into().expect("whole chunk");
        let mut bits = below::<AVX>(chunk, &[*list.thr; SCAN]);
        while bits != 0 {
            let l = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let j = c * SCAN + l;
            if chunk[l] < *list.thr && j != i {
                list.offer(chunk[l], j as u32);
            }
        }
    }
    let first = n - tail.len();
    for (t, &sj) in tail.iter().enumerate() {
        let j = first + t;
        if sj < *list.thr && j != i {
            list.offer(sj, j as u32);
        }
    }
    for (c, &kept) in list.finish().iter().enumerate() {
        (dd[c], ii[c]) = unkey(kept);
    }
}

/// Columns that are constant (all zero once centred) add nothing to any distance: drop them.
fn without_constant_columns(x: &Array2<f32>) -> Option<Array2<f32>> {
    let keep: Vec<usize> = (0..x.ncols())
        .filter(|&j| x.column(j).iter().any(|&v| v != 0.0))
        .collect();
    (keep.len() < x.ncols() && !keep.is_empty()).then(|| x.select(Axis(1), &keep))
}

/// Each row's squared norm, summed in f64.
fn squared_norms(x: &Array2<f32>) -> Vec<f32> {
    x.rows()
        .into_iter()
        .map(|r| r.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() as f32)
        .collect()
}

/// a.b for the rows `start..end` of `x` against every row from `start` on, into the top left of
/// `gram` (matrixmultiply threads this).
fn gram_block<'g>(
    x: &Array2<f32>,
    start: usize,
    end: usize,
    gram: &'g mut Array2<f32>,
) -> ArrayView2<'g, f32> {
    let block = s![..end - start, ..x.nrows() - start];
    ndarray::linalg::general_mat_mul(
        1.0,
        &x.slice(s![start..end, ..]),
        &x.slice(s![start.., ..]).t(),
        0.0,
        &mut gram.slice_mut(block),
    );
    gram.slice(block)
}

/// Points per panel of [`pack_panels`].
const PANEL: usize = 8;
/// The depth matrixmultiply's f32 kernels sum in one go (its `kc`): each inner product is the
/// sum, in order, of the fused multiply-add chains over these many features.
const GRAM_KC: usize = 256;
/// Panels (of [`PANEL`] points) per task of [`gram_block_fma`].
const PANELS_PER_TASK: usize = 32;

/// The rows of `x` packed for [`gram_block_fma`]: panel q holds points `8q..8q + 8`
/// feature-major (`panels[(q * d + p) * 8 + l]` is feature p of point 8q + l), zero past n.
fn pack_panels(x: &Array2<f32>) -> Vec<f32> {
    let (n, d) = x.dim();
    let mut panels = vec![0f32; n.div_ceil(PANEL) * d * PANEL];
    for (i, row) in x.rows().into_iter().enumerate() {
        let (q, l) = (i / PANEL, i % PANEL);
        for (p, &v) in row.iter().enumerate() {
            panels[(q * d + p) * PANEL + l] = v;
        }
    }
    panels
}

/// Whether [`gram_block_fma`] makes matrixmultiply's bytes here: it follows matrixmultiply's
/// AVX2 + FMA kernel, the one matrixmultiply picks on such a CPU.
fn gram_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The rows of the Gram block written by one task (a raw pointer: the tasks write disjoint
/// column ranges of the same rows).
#[derive(Clone, Copy)]
struct GramOut {
    ptr: *mut f32,
    stride: usize,
}

// SAFETY: each task of `gram_block_fma` writes only its own columns of the block.
unsafe impl Send for GramOut {}
// SAFETY: as above.
unsafe impl Sync for GramOut {}

/// [`gram_block`] bit for bit on a CPU with AVX2 and FMA, without matrixmultiply's threads:
/// inside the film's rayon tasks, which already keep both cores busy, those threads spent
/// about a fifth of the frames' CPU waiting for each other (sched_yield). Each product is
/// matrixmultiply's sum: per [`GRAM_KC`] features a chain of fused multiply-adds from zero, in
/// feature order, the chains added in order. The tasks (rayon, by columns) write disjoint
/// columns; the sums do not depend on them.
fn gram_block_fma<'g>(
    x: &Array2<f32>,
    panels: &[f32],
    start: usize,
    end: usize,
    gram: &'g mut Array2<f32>,
) -> ArrayView2<'g, f32> {
    let (n, d) = x.dim();
    assert!(start.is_multiple_of(PANEL) && end <= n && gram.ncols() == n);
    assert!(gram.nrows() >= end - start && gram.is_standard_layout());
    assert_eq!(panels.len(), n.div_ceil(PANEL) * d * PANEL);
    let rows = x.slice(s![start..end, ..]);
    let rows = rows.as_standard_layout();
    let a = rows.as_slice().expect("contiguous");
    let out = GramOut {
        ptr: gram.as_mut_ptr(),
        stride: n,
    };
    let (q0, q1) = (start / PANEL, n.div_ceil(PANEL));
    let tasks: Vec<usize> = (q0..q1).step_by(PANELS_PER_TASK).collect();
    tasks.par_iter().with_max_len(1).for_each(|&qa| {
        let qb = (qa + PANELS_PER_TASK).min(q1);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 and FMA (the caller checked `gram_fma`); the task
        // writes columns 8 qa - start .. 8 qb - start (below n - start) of rows below
        // end - start, inside `gram`, and no other task writes them.
        unsafe {
            gram_task(a, d, panels, start, n, qa, qb, out);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (a, d, panels, qa, qb, out);
    });
    gram.slice(s![..end - start, ..n - start])
}

/// One task of [`gram_block_fma`]: panels `qa..qb` against every row of `a` (rows x d).
///
/// # Safety
/// The CPU must support AVX2 and FMA; `out` must hold (a.len() / d) rows of `n` columns that
/// no other thread writes in columns `8 qa - start..8 qb - start`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gram_task(
    a: &[f32],
    d: usize,
    panels: &[f32],
    start: usize,
    n: usize,
    qa: usize,
    qb: usize,
    out: GramOut,
) {
    let rows = a.len() / d.max(1);
    for p0 in (0..d).step_by(GRAM_KC) {
        let p1 = (p0 + GRAM_KC).min(d);
        let first = p0 == 0;
        let mut r = 0;
        while r < rows {
            let take = (rows - r).min(4);
            let mut q = qa;
            while q < qb {
                let two = q + 1 < qb;
                // SAFETY: as this function's contract; rows r..r + take exist.
                unsafe {
                    match (take, two) {
                        (4, true) => {
                            gram_tile::<4, 2>(a, d, panels, p0, p1, r, q, start, n, first, out)
                        }
                        (4, false) => {
                            gram_tile::<4, 1>(a, d, panels, p0, p1, r, q, start, n, first, out)
                        }
                        (3, true) => {
                            gram_tile::<3, 2>(a, d, panels, p0, p1, r, q, start, n, first, out)
                        }
                        (3, false) => {
                            gram_tile::<3, 1>(a, d, panels, p0, p1, r, q, start, n, first, out)
                        }
                        (2, true) => {
                            gram_tile::<2, 2>(a, d, panels, p0, p1, r, q, start, n, first, out)
                        }
                        (2, false) => {
                            gram_tile::<2, 1>(a, d, panels, p0, p1, r, q, start, n, first, out)
                        }
                        (_, true) => {
                            gram_tile::<1, 2>(a, d, panels, p0, p1, r, q, start, n, first, out)
                        }
                        (_, false) => {
                            gram_tile::<1, 1>(a, d, panels, p0, p1, r, q, start, n, first, out)
                        }
                    }
                }
                q += if two { 2 } else { 1 };
            }
            r += take;
        }
    }
}

/// R rows (from `r`) against Q panels (from `q`) over features `p0..p1`: each product's
/// fused multiply-add chain from zero, stored (`first`) or added to what the block holds.
///
/// # Safety
/// As [`gram_task`], for rows `r..r + R` and panels `q..q + Q`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn gram_tile<const R: usize, const Q: usize>(
    a: &[f32],
    d: usize,
    panels: &[f32],
    p0: usize,
    p1: usize,
    r: usize,
    q: usize,
    start: usize,
    n: usize,
    first: bool,
    out: GramOut,
) {
    use std::arch::x86_64::*;
    // SAFETY (whole block): rows r..r + R of `a` and panels q..q + Q hold features p0..p1 (the
    // loads stay inside them); the stores write columns below n - start of rows below R + r,
    // as the contract allows.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); Q]; R];
        let arow = a.as_ptr().add(r * d);
        let panel = panels.as_ptr().add(q * d * PANEL);
        for p in p0..p1 {
            let mut b = [_mm256_setzero_ps(); Q];
            for (t, bt) in b.iter_mut().enumerate() {
                *bt = _mm256_loadu_ps(panel.add((t * d + p) * PANEL));
            }
            for (s, acc_s) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(*arow.add(s * d + p));
                for t in 0..Q {
                    acc_s[t] = _mm256_fmadd_ps(av, b[t], acc_s[t]);
                }
            }
        }
        for (s, acc_s) in acc.iter().enumerate() {
            let row = out.ptr.add((r + s) * out.stride);
            for (t, &v) in acc_s.iter().enumerate() {
                let j = (q + t) * PANEL;
                let c = j - start;
                let valid = n.saturating_sub(j).min(PANEL);
                if valid == PANEL {
                    let dst = row.add(c);
                    let v = if first {
                        v
                    } else {
                        _mm256_add_ps(_mm256_loadu_ps(dst), v)
                    };
                    _mm256_storeu_ps(dst, v);
                } else {
                    let mut lanes = [0f32; PANEL];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                    for (l, &x) in lanes.iter().enumerate().take(valid) {
                        let dst = row.add(c + l);
                        *dst = if first { x } else { *dst + x };
                    }
                }
            }
        }
    }
}

/// GEMM shortlist, symmetric: block `b` of rows is multiplied only with rows from its own start
/// on, and each inner product a.b serves both a's and b's candidate lists (half the flops of
/// the full product). Every list receives its candidates in increasing index, whatever the
/// thread count; it keeps the `k + extra` best by the approximate distance (ties: the lower
/// index), which are then re-ranked by their exact distance (ties: the shortlist's order).
fn knn_gemm(
    x: &Array2<f32>,
    original: &ArrayView2<f32>,
    k: usize,
    extra: usize,
    indices: &mut [u32],
    d2: &mut [f32],
) {
    let reduced = without_constant_columns(x);
    let xr = reduced.as_ref().unwrap_or(x);
    let n = x.nrows();
    let dim = original.ncols();
    let flat = original.as_slice().expect("contiguous");
    let norms = squared_norms(xr);
    let short = (k + extra).min(n - 1);
    let cap = buffer_len(short);
    let mut buf = vec![u64::MAX; n * cap];
    let mut lens = vec![0u32; n];
    let mut thrs = vec![f32::INFINITY; n];
    let mut gram = Array2::<f32>::zeros((BLOCK_ROWS.min(n), n));
    const COLS_PER_TASK: usize = 64;
    let avx2 = avx2();
    let panels = gram_fma().then(|| pack_panels(xr));
    for start in (0..n).step_by(BLOCK_ROWS) {
        let end = (start + BLOCK_ROWS).min(n);
        let g = match &panels {
            Some(panels) => gram_block_fma(xr, panels, start, end, &mut gram),
            None => gram_block(xr, start, end, &mut gram),
        };
        // The block's own rows: candidates j >= start.
        buf[start * cap..end * cap]
            .par_chunks_mut(cap)
            .zip(lens[start..end].par_iter_mut())
            .zip(thrs[start..end].par_iter_mut())
            .enumerate()
            .with_min_len(8)
            .for_each(|(r, ((buf, len), thr))| {
                let i = start + r;
                let list = Candidates {
                    buf,
                    len,
                    thr,
                    keep: short,
                };
                let grow = g.row(r);
                let grow = grow
                    .as_slice()
                    .expect("rows of the Gram block are contiguous");
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: the CPU supports AVX2, checked by `avx2()`.
                    unsafe { own_row_avx2(grow, &norms, start, i, list) };
                    return;
                }
                own_row::<false>(grow, &norms, start, i, list);
            });
        // Later rows: the block's rows are candidates for them (same a.b, read transposed).
        buf[end * cap..]
            .par_chunks_mut(COLS_PER_TASK * cap)
            .zip(lens[end..].par_chunks_mut(COLS_PER_TASK))
            .zip(thrs[end..].par_chunks_mut(COLS_PER_TASK))
            .enumerate()
            .for_each(|(t, ((buf, lens), thrs))| {
                let c0 = end + t * COLS_PER_TASK;
                let lists = Lists {
                    buf,
                    lens,
                    thrs,
                    cap,
                    keep: short,
                };
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: the CPU supports AVX2, checked by `avx2()`.
                    unsafe { later_rows_avx2(g, &norms, start, c0, lists) };
                    return;
                }
                later_rows::<false>(g, &norms, start, c0, lists);
            });
    }
    // Exact re-ranking of each shortlist, in f64 on the rows as given; a stable sort keeps
    // exact ties in the shortlist's order.
    d2.par_chunks_mut(k)
        .zip(indices.par_chunks_mut(k))
        .zip(buf.par_chunks_mut(cap))
        .zip(lens.par_iter_mut())
        .zip(thrs.par_iter_mut())
        .enumerate()
        .with_min_len(16)
        .for_each_init(
            || Vec::with_capacity(short),
            |exact: &mut Vec<(f32, u32)>, (i, ((((dd, ii), buf), len), thr))| {
                let list = Candidates {
                    buf,
                    len,
                    thr,
                    keep: short,
                }
                .finish();
                let a = &flat[i * dim..(i + 1) * dim];
                let row = |j: u32| &flat[j as usize * dim..(j as usize + 1) * dim];
                exact.clear();
                let mut quads = list.chunks_exact(4);
                for q in &mut quads {
                    let j = [q[0] as u32, q[1] as u32, q[2] as u32, q[3] as u32];
                    let d = exact_d2_x4(a, j.map(row));
                    exact.extend(d.into_iter().zip(j));
                }
                for &kept in quads.remainder() {
                    let j = kept as u32;
                    exact.push((exact_d2(a, row(j)), j));
                }
                exact.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(Ordering::Equal));
                for (c, &(d, j)) in exact.iter().take(k).enumerate() {
                    dd[c] = d;
                    ii[c] = j;
                }
            },
        );
}

/// Row `i` of a Gram block (`grow`: a.b against every point from `start` on) offered to
/// `i`'s list: the approximate distance |a|^2 + |b|^2 - 2 a.b of each point from `start`, in
/// increasing index, where below the list's threshold.
#[inline(always)]
fn own_row<const AVX: bool>(
    grow: &[f32],
    norms: &[f32],
    start: usize,
    i: usize,
    mut list: Candidates<'_>,
) {
    let ni = norms[i];
    let nj = &norms[start..start + grow.len()];
    let whole = grow.len() - grow.len() % SCAN;
    for c in (0..whole).step_by(SCAN) {
        let approx = approx8::<AVX>(ni, &nj[c..], &grow[c..]);
        let mut bits = below::<AVX>(&approx, &[*list.thr; SCAN]);
        while bits != 0 {
            let l = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let j = start + c + l;
            if approx[l] < *list.thr && j != i {
                list.offer(approx[l], j as u32);
            }
        }
    }
    for c in whole..grow.len() {
        let approx = ni + nj[c] - 2.0 * grow[c];
        if approx < *list.thr && start + c != i {
            list.offer(approx, (start + c) as u32);
        }
    }
}

/// [`own_row`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn own_row_avx2(grow: &[f32], norms: &[f32], start: usize, i: usize, list: Candidates<'_>) {
    own_row::<true>(grow, norms, start, i, list);
}

/// The candidate lists of consecutive points: `lens.len()` lists of `cap` slots each.
struct Lists<'a> {
    buf: &'a mut [u64],
    lens: &'a mut [u32],
    thrs: &'a mut [f32],
    cap: usize,
    keep: usize,
}

impl Lists<'_> {
    /// Offers (d, j) to list `c`.
    #[inline]
    fn offer(&mut self, c: usize, d: f32, j: u32) {
        Candidates {
            buf: &mut self.buf[c * self.cap..(c + 1) * self.cap],
            len: &mut self.lens[c],
            thr: &mut self.thrs[c],
            keep: self.keep,
        }
        .offer(d, j);
    }
}

/// The rows of Gram block `g` (points `start..`) offered, in increasing index, to the lists of
/// the later points `c0..c0 + lists.lens.len()` (the same a.b read transposed).
#[inline(always)]
fn later_rows<const AVX: bool>(
    g: ArrayView2<f32>,
    norms: &[f32],
    start: usize,
    c0: usize,
    mut lists: Lists<'_>,
) {
    let width = lists.lens.len();
    let nj = &norms[c0..c0 + width];
    let whole = width - width % SCAN;
    for r in 0..g.nrows() {
        let i = start + r;
        let ni = norms[i];
        let grow = g.row(r);
        let grow = &grow
            .as_slice()
            .expect("rows of the Gram block are contiguous")[c0 - start..c0 - start + width];
        for c in (0..whole).step_by(SCAN) {
            let approx = approx8::<AVX>(ni, &nj[c..], &grow[c..]);
            let thrs: &[f32; SCAN] = lists.thrs[c..c + SCAN].try_into().expect("whole chunk");
            // Each lane is another point's list: its threshold moves only with its own offers.
            let mut bits = below::<AVX>(&approx, thrs);
            while bits != 0 {
                let l = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                lists.offer(c + l, approx[l], i as u32);
            }
        }
        for c in whole..width {
            let approx = ni + nj[c] - 2.0 * grow[c];
            if approx < lists.thrs[c] {
                lists.offer(c, approx, i as u32);
            }
        }
    }
}

/// [`later_rows`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn later_rows_avx2(
    g: ArrayView2<f32>,
    norms: &[f32],
    start: usize,
    c0: usize,
    lists: Lists<'_>,
) {
    later_rows::<true>(g, norms, start, c0, lists);
}

/// The search as it was before the candidate lists (sorted insertion), kept to prove the
/// faster one returns the same bytes.
#[cfg(test)]
mod reference {
    use super::*;

    /// The block size the reference ran with (the search's is smaller).
    const REFERENCE_BLOCK_ROWS: usize = 512;

    pub fn knn(data: ArrayView2<f32>, k: usize) -> Knn {
        search(data, k, direct, gemm)
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

    pub fn direct(x: &ArrayView2<f32>, k: usize, indices: &mut [u32], d2: &mut [f32]) {
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

    /// GEMM shortlist, symmetric: block `b` of rows is multiplied only with rows from its own start
    /// on, and each inner product a.b serves both a's and b's candidate lists (half the flops of
    /// the full product). Every list receives its candidates in a fixed order, whatever the thread
    /// count.
    pub fn gemm(
        x: &Array2<f32>,
        original: &ArrayView2<f32>,
        k: usize,
        extra: usize,
        indices: &mut [u32],
        d2: &mut [f32],
    ) {
        let reduced = without_constant_columns(x);
        let xr = reduced.as_ref().unwrap_or(x);
        let n = x.nrows();
        let dim = original.ncols();
        let flat = original.as_slice().expect("contiguous");
        let norms = squared_norms(xr);
        let short = (k + extra).min(n - 1);
        let mut cand_d = vec![f32::INFINITY; n * short];
        let mut cand_i = vec![u32::MAX; n * short];
        let mut gram = Array2::<f32>::zeros((REFERENCE_BLOCK_ROWS.min(n), n));
        const COLS_PER_TASK: usize = 64;
        for start in (0..n).step_by(REFERENCE_BLOCK_ROWS) {
            let end = (start + REFERENCE_BLOCK_ROWS).min(n);
            let rows = end - start;
            let g = gram_block(xr, start, end, &mut gram);
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

    /// Rows whose centred values are small integers (each row comes with its mirror 8 - x, so
    /// every column's mean is 4): the f32 GEMM shortlist is then exact and every tie in the
    /// data is a true tie. Some rows (with their mirrors) are repeated: duplicate points.
    fn integer_rows(half: usize, dim: usize, seed: u64) -> Array2<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut rows: Vec<Vec<f32>> = Vec::new();
        while rows.len() < 2 * half {
            let r: Vec<f32> = if rows.len() >= 4 && rng.random::<f32>() < 0.1 {
                rows[rng.random_range(0..rows.len())].clone()
            } else {
                (0..dim).map(|_| rng.random_range(2..=6) as f32).collect()
            };
            rows.push(r.iter().map(|v| 8.0 - v).collect());
            rows.push(r);
        }
        Array2::from_shape_fn((2 * half, dim), |(i, j)| rows[i][j])
    }

    #[test]
    fn ties_and_duplicates_go_to_the_lower_index_as_in_a_brute_force_f64_search() {
        // Direct path (3 features) and GEMM path (40 features, 1,100 rows: three blocks).
        for (half, dim) in [(150, 3usize), (550, 40)] {
            let x = integer_rows(half, dim, 21 + dim as u64);
            let n = x.nrows();
            for k in [1, 10, 90] {
                let got = knn(x.view(), k);
                let want = brute(x.view(), k);
                let mut ties = 0;
                for (i, want_row) in want.iter().enumerate() {
                    let row = i * k..(i + 1) * k;
                    assert_eq!(
                        &got.indices[row.clone()],
                        &want_row[..],
                        "row {i} dim {dim} k {k}"
                    );
                    for (c, &j) in want_row.iter().enumerate() {
                        let d: f64 = x
                            .row(i)
                            .iter()
                            .zip(x.row(j as usize))
                            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                            .sum();
                        assert_eq!(got.d2[i * k + c], d as f32);
                    }
                    ties += got.d2[row].windows(2).filter(|w| w[0] == w[1]).count();
                }
                // The case is one of ties and duplicates, or the test proves nothing.
                assert!(k == 1 || ties > n, "dim {dim} k {k}: only {ties} ties");
                assert!(got.d2.contains(&0.0), "no duplicate points");
            }
        }
    }

    #[test]
    fn candidate_lists_return_the_sorted_insertion_search_bit_for_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        // Shapes of the film's layers (512, 256 features; 10 and 2 on the direct path), a GEMM
        // input over three blocks, near-duplicate softmax-like rows (differences in the 1e-6s,
        // where exact distances tie but the f32 shortlist does not), and repeated rows.
        let mut cases: Vec<(Array2<f32>, usize)> = Vec::new();
        for (n, dim, k) in [(700, 512, 90), (1100, 40, 30), (600, 10, 90), (500, 2, 10)] {
            let mut x = Array2::from_shape_fn((n, dim), |_| rng.random::<f32>().max(0.3) - 0.3);
            for i in (0..n).step_by(7) {
                let from = x.row((i * 31) % n).to_owned();
                x.row_mut(i).assign(&from);
            }
            cases.push((x, k));
        }
        let soft = Array2::from_shape_fn((800, 20), |(i, j)| {
            if j == i % 10 {
                1.0 - 1e-6 * rng.random::<f32>()
            } else {
                1e-6 * rng.random::<f32>()
            }
        });
        cases.push((soft, 60));
        for (x, k) in &cases {
            let got = knn(x.view(), *k);
            let want = reference::knn(x.view(), *k);
            assert_eq!(got.indices, want.indices, "{:?}", x.dim());
            let bits = |v: &[f32]| v.iter().map(|d| d.to_bits()).collect::<Vec<u32>>();
            assert_eq!(bits(&got.d2), bits(&want.d2), "{:?}", x.dim());
            for threads in [1, 2] {
                let again = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("pool")
                    .install(|| knn(x.view(), *k));
                assert_eq!(again.indices, got.indices, "{threads} threads");
                assert_eq!(bits(&again.d2), bits(&got.d2), "{threads} threads");
            }
        }
    }

    #[test]
    fn the_fma_gram_block_is_matrixmultiplys_bit_for_bit() {
        if !gram_fma() {
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        // Depths below, at and across matrixmultiply's 256 (one chain, several chains added),
        // point counts that leave partial panels and partial row groups.
        for (n, d) in [(301, 40), (517, 256), (300, 600), (130, 513)] {
            let x = Array2::from_shape_fn((n, d), |_| rng.random::<f32>() * 2.0 - 0.7);
            let panels = pack_panels(&x);
            for start in (0..n).step_by(BLOCK_ROWS) {
                let end = (start + BLOCK_ROWS).min(n);
                let mut ours = Array2::<f32>::zeros((BLOCK_ROWS.min(n), n));
                let mut theirs = ours.clone();
                let a = gram_block_fma(&x, &panels, start, end, &mut ours).to_owned();
                let b = gram_block(&x, start, end, &mut theirs).to_owned();
                // Equal as numbers (matrixmultiply may write +0 where the chain ended at -0,
                // which no distance can tell apart).
                assert_eq!(a, b, "n {n}, d {d}, block {start}");
                assert!(a.iter().any(|&v| v != 0.0));
            }
        }
    }

    #[test]
    fn keys_sort_as_distance_then_index_and_decode() {
        let pairs = [
            (-3.5f32, 9u32),
            (-1e-30, 0),
            (-0.0, 1),
            (0.0, 2),
            (1e-40, 0),
            (1.0, 3),
            (1.0, 4),
            (f32::MAX, 0),
        ];
        for w in pairs.windows(2) {
            assert!(key(w[0].0, w[0].1) < key(w[1].0, w[1].1), "{w:?}");
        }
        for &(d, j) in &pairs {
            let (back, i) = unkey(key(d, j));
            assert_eq!((back, i), (d, j));
            assert_eq!(back.to_bits(), (d + 0.0).to_bits());
        }
    }

    #[test]
    fn four_rows_at_once_are_exact_d2_bit_for_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        for len in [0usize, 1, 7, 8, 9, 15, 16, 100, 512, 784] {
            let a: Vec<f32> = (0..len).map(|_| rng.random::<f32>() * 3.0).collect();
            let b: Vec<Vec<f32>> = (0..4)
                .map(|_| (0..len).map(|_| rng.random::<f32>() * 3.0 - 1.0).collect())
                .collect();
            let got = exact_d2_x4(a.as_slice(), [&b[0], &b[1], &b[2], &b[3]]);
            for t in 0..4 {
                assert_eq!(
                    got[t].to_bits(),
                    exact_d2_lanes(&a, &b[t]).to_bits(),
                    "len {len} row {t}"
                );
            }
        }
    }

    #[test]
    fn exact_d2_is_the_f64_sum_on_every_length() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for len in [0usize, 1, 7, 8, 9, 100, 512, 784] {
            let a: Vec<f32> = (0..len).map(|_| rng.random::<f32>() * 3.0).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.random::<f32>() * 3.0 + 0.5).collect();
            let want: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
                .sum();
            let got = f64::from(exact_d2(&a, &b));
            assert!(
                (got - want).abs() <= 1e-7 * want,
                "len {len}: {got} vs {want}"
            );
            assert_eq!(exact_d2(&a, &b), exact_d2_lanes(&a, &b), "len {len}");
        }
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

    #[test]
    fn approximate_search_finds_most_true_neighbours() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // 8,000 points near a 20-d subspace of 100 dimensions, in 3 broad clusters, plus noise
        // in every dimension (the regime of pixels and activations): 40 cells, 16 searched
        // each, so neighbours across cell borders can be missed.
        let (n, dim, k) = (8000, 100, 30);
        let centres = Array2::from_shape_fn((3, 20), |_| rng.random::<f32>() * 2.0);
        let mix = Array2::from_shape_fn((20, dim), |_| rng.random::<f32>() - 0.5);
        let latent =
            Array2::from_shape_fn((n, 20), |(i, j)| centres[[i % 3, j]] + rng.random::<f32>());
        let noise = Array2::from_shape_fn((n, dim), |_| 0.05 * (rng.random::<f32>() - 0.5));
        let x = latent.dot(&mix) + noise;
        let got = knn_approximate(x.view(), k, 0);
        let d2 = |i: usize, j: usize| -> f64 {
            x.row(i)
                .iter()
                .zip(x.row(j))
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                .sum()
        };
        // Brute force for every 10th point.
        let (mut found, mut asked) = (0, 0);
        for i in (0..n).step_by(10) {
            let mut all: Vec<(f64, u32)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (d2(i, j), j as u32))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            let row = &got.indices[i * k..(i + 1) * k];
            found += all[..k].iter().filter(|(_, j)| row.contains(j)).count();
            asked += k;
            for (c, &j) in row.iter().enumerate() {
                let want = d2(i, j as usize);
                assert!((f64::from(got.d2[i * k + c]) - want).abs() <= 1e-4 * want.max(1e-3));
            }
            assert!(got.d2[i * k..(i + 1) * k].windows(2).all(|w| w[0] <= w[1]));
            assert!(!row.contains(&(i as u32)));
        }
        let recall = found as f64 / asked as f64;
        assert!(recall > 0.98, "recall {recall}");
        assert!(
            recall < 1.0,
            "nothing was approximated: the test would not see a miss"
        );
        // Same seed, same neighbours, on one thread or two.
        for threads in [1, 2] {
            let again = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool")
                .install(|| knn_approximate(x.view(), k, 0));
            assert_eq!(again.indices, got.indices, "{threads} threads");
            assert_eq!(again.d2, got.d2, "{threads} threads");
        }
    }

    #[test]
    fn locality_order_is_a_permutation_and_relabel_keeps_every_neighbour() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let x = Array2::from_shape_fn((500, 6), |_| rng.random::<f32>());
        let knn = knn(x.view(), 7);
        let order = locality_order(&knn);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..500).collect::<Vec<u32>>());
        // Breadth-first: the first point's neighbours come right after it.
        let mut first: Vec<u32> = knn.indices[..7].to_vec();
        first.sort_unstable();
        let mut next: Vec<u32> = order[1..8].to_vec();
        next.sort_unstable();
        assert_eq!(order[0], 0);
        assert_eq!(first, next);
        let relabelled = relabel(&knn, &order);
        for (r, &old) in order.iter().enumerate() {
            let old = old as usize;
            let mapped: Vec<u32> = relabelled.indices[r * 7..(r + 1) * 7]
                .iter()
                .map(|&j| order[j as usize])
                .collect();
            assert_eq!(mapped, knn.indices[old * 7..(old + 1) * 7]);
            assert_eq!(
                relabelled.d2[r * 7..(r + 1) * 7],
                knn.d2[old * 7..(old + 1) * 7]
            );
        }
    }
}
