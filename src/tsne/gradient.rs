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
use super::simd::Simd;

/// Coordinate given to padding lanes: far enough that their kernel value vanishes in f32.
pub const PAD_COORD: f32 = 1e18;
/// Lane count the padded coordinate arrays are a multiple of.
pub const PAD_TO: usize = TILE;
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

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dense_block_avx2(first: usize, xs: &[f32], ys: &[f32], p: &[f32], out: &mut [Forces]) {
    dense_block::<16>(first, xs, ys, p, out);
}

/// Exact gradient terms over a dense P (row stride = padded length) into `out`.
pub fn exact_dense(xs: &[f32], ys: &[f32], p: &[f32], out: &mut [Forces], simd: Simd) {
    out.par_chunks_mut(ROWS_PER_TASK)
        .enumerate()
        .for_each(|(c, block)| {
            let first = c * ROWS_PER_TASK;
            #[cfg(target_arch = "x86_64")]
            {
                if simd == Simd::Avx2 && simd.available() {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    unsafe { dense_block_avx2(first, xs, ys, p, block) };
                    return;
                }
            }
            dense_block::<16>(first, xs, ys, p, block);
        });
}

/// Points per tile side of the symmetric exact repulsion (a multiple of [`PAD_TO`]; fixed, so
/// the summation order never depends on the thread count).
pub const TILE: usize = 128;

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Partial sums of one tile: forces on its row points and on its column points.
#[derive(Debug, Clone)]
pub struct TileSums {
    row: Vec<[f32; 3]>,
    cfx: Vec<f32>,
    cfy: Vec<f32>,
    cz: Vec<f32>,
}

impl TileSums {
    fn new() -> Self {
        Self {
            row: vec![[0.0; 3]; TILE],
            cfx: vec![0.0; TILE],
            cfy: vec![0.0; TILE],
            cz: vec![0.0; TILE],
        }
    }
}

/// Every pair (i, j) with i in block `bi`, j in block `bj` (j > i on the diagonal) once: w_ij
/// and w_ij^2 (y_i - y_j) go to i's row sums and, negated, to j's column sums. Half the work of
/// the all-ordered-pairs loop.
#[inline(always)]
fn tile<const L: usize, const FMA: bool>(
    bi: usize,
    bj: usize,
    n: usize,
    xs: &[f32],
    ys: &[f32],
    out: &mut TileSums,
) {
    let c0 = bj * TILE;
    let cx = &xs[c0..c0 + TILE];
    let cy = &ys[c0..c0 + TILE];
    out.cfx.fill(0.0);
    out.cfy.fill(0.0);
    out.cz.fill(0.0);
    let rows = (bi * TILE)..((bi + 1) * TILE).min(n);
    for (r, i) in rows.enumerate() {
        let (xi, yi) = (xs[i], ys[i]);
        // On the diagonal, pairs with j > i only: a scalar head up to the next lane boundary,
        // then whole lanes.
        let (head, start) = if bi == bj {
            (
                r + 1..(r + 1).next_multiple_of(L).min(TILE),
                (r + 1).next_multiple_of(L),
            )
        } else {
            (0..0, 0)
        };
        let (mut sfx, mut sfy, mut sz) = (0f32, 0f32, 0f32);
        for c in head {
            let dx = xi - cx[c];
            let dy = yi - cy[c];
            let q = 1.0 / madd::<FMA>(dy, dy, madd::<FMA>(dx, dx, 1.0));
            let q2 = q * q;
            sz += q;
            sfx = madd::<FMA>(q2, dx, sfx);
            sfy = madd::<FMA>(q2, dy, sfy);
            out.cz[c] += q;
            out.cfx[c] = madd::<FMA>(-q2, dx, out.cfx[c]);
            out.cfy[c] = madd::<FMA>(-q2, dy, out.cfy[c]);
        }
        let mut fx = [0f32; L];
        let mut fy = [0f32; L];
        let mut z = [0f32; L];
        let start = start.min(TILE);
        for ((((ccx, ccy), ocx), ocy), ocz) in cx[start..]
            .chunks_exact(L)
            .zip(cy[start..].chunks_exact(L))
            .zip(out.cfx[start..].chunks_exact_mut(L))
            .zip(out.cfy[start..].chunks_exact_mut(L))
            .zip(out.cz[start..].chunks_exact_mut(L))
        {
            for l in 0..L {
                let dx = xi - ccx[l];
                let dy = yi - ccy[l];
                let q = 1.0 / madd::<FMA>(dy, dy, madd::<FMA>(dx, dx, 1.0));
                let q2 = q * q;
                z[l] += q;
                fx[l] = madd::<FMA>(q2, dx, fx[l]);
                fy[l] = madd::<FMA>(q2, dy, fy[l]);
                ocz[l] += q;
                ocx[l] = madd::<FMA>(-q2, dx, ocx[l]);
                ocy[l] = madd::<FMA>(-q2, dy, ocy[l]);
            }
        }
        out.row[r] = [hsum(fx) + sfx, hsum(fy) + sfy, hsum(z) + sz];
    }
}

/// The tile kernel with AVX2/FMA intrinsics (8 lanes; AVX-512 would need Rust 1.89, above the
/// crate's MSRV, and Zen 4 runs 512-bit operations as two 256-bit halves anyway): two rows per
/// pass over the columns, so each column load and column-sum update serves two pairs.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(bi: usize, bj: usize, n: usize, xs: &[f32], ys: &[f32], out: &mut TileSums) {
    use std::arch::x86_64::*;
    if bi == bj {
        // Diagonal tiles are 1 in n/TILE; the portable kernel handles their triangle.
        tile::<8, true>(bi, bj, n, xs, ys, out);
        return;
    }
    let c0 = bj * TILE;
    let cx = &xs[c0..c0 + TILE];
    let cy = &ys[c0..c0 + TILE];
    out.cfx.fill(0.0);
    out.cfy.fill(0.0);
    out.cz.fill(0.0);
    let r0 = bi * TILE;
    let rows = TILE.min(n - r0);
    // SAFETY (whole block): AVX2 and FMA are enabled on this function; every pointer below
    // addresses 8 floats at offset c with c + 8 <= TILE, the length of each slice used.
    unsafe {
        let one = _mm256_set1_ps(1.0);
        let two = _mm256_set1_ps(2.0);
        let kernel = |xi: __m256, yi: __m256, cxv: __m256, cyv: __m256| {
            let dx = _mm256_sub_ps(xi, cxv);
            let dy = _mm256_sub_ps(yi, cyv);
            let d = _mm256_fmadd_ps(dy, dy, _mm256_fmadd_ps(dx, dx, one));
            // 1/d as a 12-bit reciprocal estimate refined by one Newton step (~2^-22
            // relative): pipelined, unlike the division it replaces.
            let r = _mm256_rcp_ps(d);
            let q = _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, two));
            (dx, dy, q, _mm256_mul_ps(q, q))
        };
        let hsum = |v: __m256| {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
        };
        let mut r = 0;
        while r < rows {
            let pair = r + 1 < rows;
            let (i, k) = (r0 + r, r0 + if pair { r + 1 } else { r });
            let (xa, ya) = (_mm256_set1_ps(xs[i]), _mm256_set1_ps(ys[i]));
            let (xb, yb) = (_mm256_set1_ps(xs[k]), _mm256_set1_ps(ys[k]));
            let zero = _mm256_setzero_ps();
            let (mut fxa, mut fya, mut za) = (zero, zero, zero);
            let (mut fxb, mut fyb, mut zb) = (zero, zero, zero);
            for c in (0..TILE).step_by(8) {
                let cxv = _mm256_loadu_ps(cx.as_ptr().add(c));
                let cyv = _mm256_loadu_ps(cy.as_ptr().add(c));
                let (ox, oy, oz) = (
                    out.cfx.as_mut_ptr().add(c),
                    out.cfy.as_mut_ptr().add(c),
                    out.cz.as_mut_ptr().add(c),
                );
                let (dxa, dya, qa, q2a) = kernel(xa, ya, cxv, cyv);
                za = _mm256_add_ps(za, qa);
                fxa = _mm256_fmadd_ps(q2a, dxa, fxa);
                fya = _mm256_fmadd_ps(q2a, dya, fya);
                let mut sx = _mm256_fnmadd_ps(q2a, dxa, _mm256_loadu_ps(ox));
                let mut sy = _mm256_fnmadd_ps(q2a, dya, _mm256_loadu_ps(oy));
                let mut sz = _mm256_add_ps(_mm256_loadu_ps(oz), qa);
                if pair {
                    let (dxb, dyb, qb, q2b) = kernel(xb, yb, cxv, cyv);
                    zb = _mm256_add_ps(zb, qb);
                    fxb = _mm256_fmadd_ps(q2b, dxb, fxb);
                    fyb = _mm256_fmadd_ps(q2b, dyb, fyb);
                    sx = _mm256_fnmadd_ps(q2b, dxb, sx);
                    sy = _mm256_fnmadd_ps(q2b, dyb, sy);
                    sz = _mm256_add_ps(sz, qb);
                }
                _mm256_storeu_ps(ox, sx);
                _mm256_storeu_ps(oy, sy);
                _mm256_storeu_ps(oz, sz);
            }
            out.row[r] = [hsum(fxa), hsum(fya), hsum(za)];
            if pair {
                out.row[r + 1] = [hsum(fxb), hsum(fyb), hsum(zb)];
            }
            r += 2;
        }
    }
}

/// Workspace of the symmetric exact repulsion.
#[derive(Debug, Clone)]
pub struct ExactRepulsion {
    n: usize,
    /// (row block, column block) per task, row <= column.
    tiles: Vec<(usize, usize)>,
    sums: Vec<TileSums>,
}

impl ExactRepulsion {
    /// Workspace for `n` points (coordinates padded to a multiple of [`TILE`]).
    pub fn new(n: usize) -> Self {
        let blocks = n.div_ceil(TILE);
        let tiles: Vec<(usize, usize)> = (0..blocks)
            .flat_map(|bi| (bi..blocks).map(move |bj| (bi, bj)))
            .collect();
        let sums = vec![TileSums::new(); tiles.len()];
        Self { n, tiles, sums }
    }

    /// Exact repulsion for every point into `out[i][2..5]`; `xs`/`ys` padded to a multiple of
    /// [`TILE`] with [`PAD_COORD`].
    pub fn compute(&mut self, xs: &[f32], ys: &[f32], out: &mut [Forces], simd: Simd) {
        let n = self.n;
        debug_assert!(xs.len() >= n.div_ceil(TILE) * TILE);
        self.sums
            .par_iter_mut()
            .zip(self.tiles.par_iter())
            .with_max_len(1)
            .for_each(|(sums, &(bi, bj))| {
                #[cfg(target_arch = "x86_64")]
                {
                    if simd == Simd::Avx2 && simd.available() {
                        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                        unsafe { tile_avx2(bi, bj, n, xs, ys, sums) };
                        return;
                    }
                }
                tile::<8, false>(bi, bj, n, xs, ys, sums);
            });
        for f in out.iter_mut() {
            f[2] = 0.0;
            f[3] = 0.0;
            f[4] = 0.0;
        }
        // Fixed-order reduction over tiles.
        for (sums, &(bi, bj)) in self.sums.iter().zip(&self.tiles) {
            let r0 = bi * TILE;
            for (f, s) in out[r0..(r0 + TILE).min(n)].iter_mut().zip(&sums.row) {
                f[2] += s[0];
                f[3] += s[1];
                f[4] += s[2];
            }
            let c0 = bj * TILE;
            let cols = c0..(c0 + TILE).min(n);
            for (c, f) in cols.clone().zip(out[cols].iter_mut()) {
                let k = c - c0;
                f[2] += sums.cfx[k];
                f[3] += sums.cfy[k];
                f[4] += sums.cz[k];
            }
        }
    }
}

/// Attractive term sum_j p_ij w_ij (y_i - y_j) of point `i` over its sparse row
/// (scikit-learn's `compute_gradient_positive`); `xs`/`ys` are the coordinates as
/// structure-of-arrays and `xy` the same interleaved (n x 2 row-major).
#[inline]
pub fn attraction(
    p: &SparseP,
    values: &[f32],
    xy: &[f32],
    xs: &[f32],
    ys: &[f32],
    i: usize,
    simd: Simd,
) -> [f32; 2] {
    let row = p.indptr[i]..p.indptr[i + 1];
    let (idx, vals) = (&p.indices[row.clone()], &values[row]);
    #[cfg(target_arch = "x86_64")]
    {
        if simd == Simd::Avx2 {
            // SAFETY: `simd` is Avx2 only when the CPU supports AVX2 and FMA (the gradient
            // state checks it at construction); every index is below xs.len() = ys.len().
            return unsafe { attraction_avx2(idx, vals, xy, xs, ys, xs[i], ys[i]) };
        }
    }
    attraction_scalar(idx, vals, xs, ys, xs[i], ys[i])
}

/// Rows shorter than this take the scalar attraction kernel: the AVX2 kernel's lanes (then
/// gathers) and its scalar tail cost more than they save on the ~14 entries of a row at
/// perplexity 3 (profiled: the attraction fell from 19% to 8% of a 1,500-point run); the ~120
/// entries of a row at perplexity 30 favour the lanes.
const GATHER_FROM: usize = 16;

/// The attraction of every point into `out` (x, y): rows in point order (the CSR is read as a
/// stream), in fixed tasks of `rows_per_task` rows, so results do not depend on the thread
/// count.
#[allow(clippy::too_many_arguments)]
pub fn attraction_rows(
    p: &SparseP,
    values: &[f32],
    xy: &[f32],
    xs: &[f32],
    ys: &[f32],
    out: &mut [[f32; 2]],
    simd: Simd,
    rows_per_task: usize,
) {
    out.par_chunks_mut(rows_per_task)
        .enumerate()
        .with_max_len(1)
        .for_each(|(c, block)| {
            let first = c * rows_per_task;
            #[cfg(target_arch = "x86_64")]
            {
                if simd == Simd::Avx2 {
                    // SAFETY: `simd` is Avx2 only when the CPU supports AVX2 and FMA (the
                    // gradient state checks it at construction); indices are below n.
                    unsafe { attraction_block_avx2(p, values, xy, xs, ys, first, block) };
                    return;
                }
            }
            for (r, o) in block.iter_mut().enumerate() {
                *o = attraction(p, values, xy, xs, ys, first + r, simd);
            }
        });
}

#[inline(always)]
fn attraction_row_scalar<const FMA: bool>(
    idx: &[u32],
    vals: &[f32],
    xs: &[f32],
    ys: &[f32],
    xi: f32,
    yi: f32,
) -> [f32; 2] {
    let (mut ax, mut ay) = (0f32, 0f32);
    for (&j, &pij) in idx.iter().zip(vals) {
        let j = j as usize;
        let dx = xi - xs[j];
        let dy = yi - ys[j];
        let pq = pij / madd::<FMA>(dy, dy, madd::<FMA>(dx, dx, 1.0));
        ax = madd::<FMA>(pq, dx, ax);
        ay = madd::<FMA>(pq, dy, ay);
    }
    [ax, ay]
}

/// # Safety
/// The CPU must support AVX2 and FMA; every index of `p` must be below `xs.len()`, `ys.len()`
/// and `xy.len() / 2`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attraction_block_avx2(
    p: &SparseP,
    values: &[f32],
    xy: &[f32],
    xs: &[f32],
    ys: &[f32],
    first: usize,
    block: &mut [[f32; 2]],
) {
    for (r, o) in block.iter_mut().enumerate() {
        let i = first + r;
        let row = p.indptr[i]..p.indptr[i + 1];
        let (idx, vals) = (&p.indices[row.clone()], &values[row]);
        *o = if idx.len() >= GATHER_FROM {
            // SAFETY: as this function's contract.
            unsafe { attraction_avx2(idx, vals, xy, xs, ys, xs[i], ys[i]) }
        } else {
            attraction_row_scalar::<true>(idx, vals, xs, ys, xs[i], ys[i])
        };
    }
}

#[inline(always)]
fn attraction_scalar(
    idx: &[u32],
    vals: &[f32],
    xs: &[f32],
    ys: &[f32],
    xi: f32,
    yi: f32,
) -> [f32; 2] {
    let mut ax = 0f32;
    let mut ay = 0f32;
    for (&j, &pij) in idx.iter().zip(vals) {
        let j = j as usize;
        let dx = xi - xs[j];
        let dy = yi - ys[j];
        let pq = pij / (1.0 + dx * dx + dy * dy);
        ax += pq * dx;
        ay += pq * dy;
    }
    [ax, ay]
}

/// The attraction eight neighbours at a time, the kernel as in the repulsion (reciprocal
/// estimate plus one Newton step). The neighbours' (x, y) pairs are read by plain 64-bit
/// loads: two 4-lane AVX2 gathers made the same lanes (the same sums, bit for bit) at about
/// 1.6x the time on AMD's Zen 3, whose gathers are slow (measured on 1,500 points at
/// perplexity 30).
///
/// # Safety
/// The CPU must support AVX2 and FMA, and every index must be below `xs.len()`, `ys.len()`
/// and `xy.len() / 2`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attraction_avx2(
    idx: &[u32],
    vals: &[f32],
    xy: &[f32],
    xs: &[f32],
    ys: &[f32],
    xi: f32,
    yi: f32,
) -> [f32; 2] {
    use std::arch::x86_64::*;
    let len = idx.len().min(vals.len());
    let whole = len - len % 8;
    // SAFETY (whole block): AVX2/FMA are enabled here; loads read 8 entries at c with
    // c + 8 <= whole <= len; each pair load reads 8 bytes of xy at an index the caller
    // guarantees in bounds.
    let [mut ax, mut ay] = unsafe {
        let one = _mm256_set1_ps(1.0);
        let two = _mm256_set1_ps(2.0);
        let (xv, yv) = (_mm256_set1_ps(xi), _mm256_set1_ps(yi));
        let (mut sx, mut sy) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let pairs = xy.as_ptr().cast::<f64>();
        let pair = |c: usize| pairs.add(*idx.get_unchecked(c) as usize);
        let mut c = 0;
        while c < whole {
            // a = x0 y0 x1 y1 | x2 y2 x3 y3 as the gather made it, b likewise for 4..8.
            let a01 = _mm_loadh_pd(_mm_load_sd(pair(c)), pair(c + 1));
            let a23 = _mm_loadh_pd(_mm_load_sd(pair(c + 2)), pair(c + 3));
            let b01 = _mm_loadh_pd(_mm_load_sd(pair(c + 4)), pair(c + 5));
            let b23 = _mm_loadh_pd(_mm_load_sd(pair(c + 6)), pair(c + 7));
            let a = _mm256_castpd_ps(_mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(a01), a23));
            let b = _mm256_castpd_ps(_mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(b01), b23));
            let xj = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
            let yj = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
            let pv = _mm256_permutevar8x32_ps(
                _mm256_loadu_ps(vals.as_ptr().add(c)),
                _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7),
            );
            let dx = _mm256_sub_ps(xv, xj);
            let dy = _mm256_sub_ps(yv, yj);
            let d = _mm256_fmadd_ps(dy, dy, _mm256_fmadd_ps(dx, dx, one));
            let r = _mm256_rcp_ps(d);
            let q = _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, two));
            let pq = _mm256_mul_ps(pv, q);
            sx = _mm256_fmadd_ps(pq, dx, sx);
            sy = _mm256_fmadd_ps(pq, dy, sy);
            c += 8;
        }
        let hsum = |v: __m256| {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
        };
        [hsum(sx), hsum(sy)]
    };
    let [tx, ty] = attraction_scalar(&idx[whole..len], &vals[whole..len], xs, ys, xi, yi);
    ax += tx;
    ay += ty;
    [ax, ay]
}

/// KL(P || Q) over the stored entries of a sparse P, Q = w / Z (scikit-learn's Barnes-Hut
/// error: `p * log(max(p, FLT_MIN) / max(q, FLT_MIN))`).
///
/// With q = w / Z and w = 1 / (1 + d^2), each term is p ln(max(p, FLT_MIN) (1 + d^2)) +
/// p ln Z: one logarithm per entry instead of a division and a libm `ln` in f64 (which made
/// the error checks about a tenth of a run at perplexity 30), and the ln Z part summed once.
/// The q floor never binds for a finite layout (q >= 1 / ((1 + d^2) n^2) is far above
/// FLT_MIN). The logarithm is [`ln_f32`] in lanes, the row sums in f64, rows in fixed tasks
/// summed in order: independent of the thread count.
pub fn kl_sparse(p: &SparseP, values: &[f32], y: &[f32], z: f64, simd: Simd) -> f64 {
    let n = p.n();
    let per_task: Vec<f64> = (0..n.div_ceil(ROWS_PER_TASK))
        .into_par_iter()
        .map(|c| {
            let rows = c * ROWS_PER_TASK..((c + 1) * ROWS_PER_TASK).min(n);
            #[cfg(target_arch = "x86_64")]
            {
                if simd == Simd::Avx2 && simd.available() {
                    // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                    return unsafe { kl_rows_avx2(p, values, y, rows) };
                }
            }
            kl_rows(p, values, y, rows)
        })
        .collect();
    let mass: f64 = values.iter().map(|&v| f64::from(v)).sum();
    per_task.iter().sum::<f64>() + mass * z.ln()
}

/// [`kl_rows`] in AVX2 lanes, bit for bit: the same operations lane by lane (no fused
/// multiply-add where `kl_rows` has none), the neighbours' (x, y) pairs read by plain 64-bit
/// loads as in [`attraction_avx2`] (the portable loop's bounds-checked scalar reads were most
/// of its time).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kl_rows_avx2(
    p: &SparseP,
    values: &[f32],
    y: &[f32],
    rows: std::ops::Range<usize>,
) -> f64 {
    use std::arch::x86_64::*;
    const L: usize = 8;
    let n = y.len() / 2;
    let mut sum = 0f64;
    for i in rows {
        let row = p.indptr[i]..p.indptr[i + 1];
        let (idx, vals) = (&p.indices[row.clone()], &values[row]);
        let (xi, yi) = (y[2 * i], y[2 * i + 1]);
        assert!(
            idx.iter().fold(0, |m, &j| m.max(j)) < n as u32 && vals.len() == idx.len(),
            "P's columns index the layout"
        );
        let whole = idx.len() - idx.len() % L;
        // SAFETY: AVX2/FMA are enabled here; value loads read 8 entries at c + 8 <= whole;
        // pair loads read 8 bytes of y at indices below n (asserted just above).
        let acc = unsafe {
            let pairs = y.as_ptr().cast::<f64>();
            let pair = |c: usize| pairs.add(*idx.get_unchecked(c) as usize);
            let (xv, yv) = (_mm256_set1_ps(xi), _mm256_set1_ps(yi));
            let one = _mm256_set1_ps(1.0);
            let floor = _mm256_set1_ps(f32::MIN_POSITIVE);
            let mut acc = _mm256_setzero_ps();
            let mut c = 0;
            while c < whole {
                let a01 = _mm_loadh_pd(_mm_load_sd(pair(c)), pair(c + 1));
                let a23 = _mm_loadh_pd(_mm_load_sd(pair(c + 2)), pair(c + 3));
                let b01 = _mm_loadh_pd(_mm_load_sd(pair(c + 4)), pair(c + 5));
                let b23 = _mm_loadh_pd(_mm_load_sd(pair(c + 6)), pair(c + 7));
                let a =
                    _mm256_castpd_ps(_mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(a01), b01));
                let b =
                    _mm256_castpd_ps(_mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(a23), b23));
                // a = x0 y0 x1 y1 | x4 y4 x5 y5, b = x2 y2 x3 y3 | x6 y6 x7 y7: the shuffles
                // give lanes 0..8 in order.
                let xj = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
                let yj = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
                let cv = _mm256_loadu_ps(vals.as_ptr().add(c));
                let dx = _mm256_sub_ps(xv, xj);
                let dy = _mm256_sub_ps(yv, yj);
                let d = _mm256_add_ps(
                    _mm256_add_ps(one, _mm256_mul_ps(dx, dx)),
                    _mm256_mul_ps(dy, dy),
                );
                let arg = _mm256_mul_ps(_mm256_max_ps(cv, floor), d);
                acc = _mm256_add_ps(acc, _mm256_mul_ps(cv, ln_f32_avx2(arg)));
                c += 8;
            }
            let mut lanes = [0f32; L];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
            lanes
        };
        sum += f64::from(hsum(acc)) + f64::from(kl_tail(&idx[whole..], &vals[whole..], y, xi, yi));
    }
    sum
}

/// [`ln_f32`] in eight lanes, the same operations (so the same bits).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn ln_f32_avx2(x: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let bits = _mm256_castps_si256(x);
    let e = _mm256_sub_epi32(
        _mm256_and_si256(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(0xff)),
        _mm256_set1_epi32(127),
    );
    let m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
        _mm256_set1_epi32(0x3f80_0000),
    ));
    let big = _mm256_cmp_ps::<_CMP_GT_OQ>(m, _mm256_set1_ps(std::f32::consts::SQRT_2));
    let m = _mm256_blendv_ps(m, _mm256_mul_ps(_mm256_set1_ps(0.5), m), big);
    // `big` is all ones (-1) where true.
    let e = _mm256_sub_epi32(e, _mm256_castps_si256(big));
    let one = _mm256_set1_ps(1.0);
    let s = _mm256_div_ps(_mm256_sub_ps(m, one), _mm256_add_ps(m, one));
    let s2 = _mm256_mul_ps(s, s);
    let term = |c: f32, inner: __m256| _mm256_add_ps(_mm256_set1_ps(c), _mm256_mul_ps(s2, inner));
    let series = term(
        1.0,
        term(
            1.0 / 3.0,
            term(1.0 / 5.0, term(1.0 / 7.0, _mm256_set1_ps(1.0 / 9.0))),
        ),
    );
    _mm256_fmadd_ps(
        _mm256_cvtepi32_ps(e),
        _mm256_set1_ps(std::f32::consts::LN_2),
        _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(2.0), s), series),
    )
}

/// The KL sum's entries of one row past its last whole chunk of eight (`idx`, `vals`), point
/// (`xi`, `yi`), one by one: the same in the portable and the AVX2 sums.
#[inline(always)]
fn kl_tail(idx: &[u32], vals: &[f32], y: &[f32], xi: f32, yi: f32) -> f32 {
    let mut tail = 0f32;
    for (&j, &pij) in idx.iter().zip(vals) {
        let j = j as usize;
        let dx = xi - y[2 * j];
        let dy = yi - y[2 * j + 1];
        tail += pij * ln_f32(pij.max(f32::MIN_POSITIVE) * (1.0 + dx * dx + dy * dy));
    }
    tail
}

/// sum over the entries of `rows` of p ln(max(p, FLT_MIN) (1 + d^2)), eight lanes per row.
#[inline(always)]
fn kl_rows(p: &SparseP, values: &[f32], y: &[f32], rows: std::ops::Range<usize>) -> f64 {
    const L: usize = 8;
    let mut sum = 0f64;
    for i in rows {
        let row = p.indptr[i]..p.indptr[i + 1];
        let (idx, vals) = (&p.indices[row.clone()], &values[row]);
        let (xi, yi) = (y[2 * i], y[2 * i + 1]);
        let mut acc = [0f32; L];
        let whole = idx.len() - idx.len() % L;
        for (ci, cv) in idx[..whole]
            .chunks_exact(L)
            .zip(vals[..whole].chunks_exact(L))
        {
            let mut arg = [0f32; L];
            for l in 0..L {
                let j = ci[l] as usize;
                let dx = xi - y[2 * j];
                let dy = yi - y[2 * j + 1];
                arg[l] = cv[l].max(f32::MIN_POSITIVE) * (1.0 + dx * dx + dy * dy);
            }
            for l in 0..L {
                acc[l] += cv[l] * ln_f32(arg[l]);
            }
        }
        sum += f64::from(hsum(acc)) + f64::from(kl_tail(&idx[whole..], &vals[whole..], y, xi, yi));
    }
    sum
}

/// ln(x) for positive, finite, normal `x`, branch-free so that it vectorises: x = m 2^e with m
/// in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its
/// series to s^9 (truncation below 1e-9; the f32 arithmetic rounds at about 1e-7).
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    const LN_2: f32 = std::f32::consts::LN_2;
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let e = e + i32::from(big);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0))));
    (e as f32).mul_add(LN_2, 2.0 * s * series)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsne::{affinity, neighbours};
    use ndarray::Array2;

    /// The attraction by its definition, in f64.
    fn direct(p: &SparseP, y: &[f32], i: usize) -> [f64; 2] {
        let mut a = [0f64; 2];
        for e in p.indptr[i]..p.indptr[i + 1] {
            let j = p.indices[e] as usize;
            let dx = f64::from(y[2 * i]) - f64::from(y[2 * j]);
            let dy = f64::from(y[2 * i + 1]) - f64::from(y[2 * j + 1]);
            let pq = f64::from(p.values[e]) / (1.0 + dx * dx + dy * dy);
            a[0] += pq * dx;
            a[1] += pq * dy;
        }
        a
    }

    #[test]
    fn ln_f32_matches_ln_over_the_normal_range() {
        let mut worst = 0f64;
        let mut x = f32::MIN_POSITIVE;
        while x < 1e30 {
            for m in [1.0f32, 1.1, 1.41, 1.4143, 1.7, 1.999] {
                let v = x * m;
                let want = f64::from(v).ln();
                let got = f64::from(ln_f32(v));
                worst = worst.max((got - want).abs() / want.abs().max(1.0));
            }
            x *= 3.7;
        }
        assert!(worst < 3e-7, "worst error {worst}");
        assert_eq!(ln_f32(1.0), 0.0);
        // A coarse approximation (the series cut at s^3) would fail the bound above.
        assert!((f64::from(ln_f32(1.4)) - 1.4f64.ln()).abs() < 1e-7);
    }

    /// `n` points in 6 dimensions with repeated patterns, and a 2-D layout of them on a
    /// wobbly ellipse (the inputs of the direct-sum tests below).
    fn test_points(n: usize) -> (Array2<f32>, Vec<f32>) {
        let x = Array2::from_shape_fn((n, 6), |(i, j)| {
            ((i * 29 + j * 11) % 31) as f32 + (i % 7) as f32 * 5.0
        });
        let y = (0..n)
            .flat_map(|i| {
                let a = i as f32 * 0.37;
                [
                    3.0 * a.cos() + (i % 5) as f32,
                    2.0 * a.sin() - (i % 3) as f32,
                ]
            })
            .collect();
        (x, y)
    }

    #[test]
    fn kl_matches_the_direct_sum_on_every_level_and_thread_count() {
        let n = 301;
        let (x, y) = test_points(n);
        // Rows of 10-20 entries (k = 10): whole lanes and tails.
        let p = affinity::sparse_p(&neighbours::knn(x.view(), 10), 3.0);
        let mut z = 0f64;
        for i in 0..n {
            for j in (0..n).filter(|&j| j != i) {
                let dx = f64::from(y[2 * i]) - f64::from(y[2 * j]);
                let dy = f64::from(y[2 * i + 1]) - f64::from(y[2 * j + 1]);
                z += 1.0 / (1.0 + dx * dx + dy * dy);
            }
        }
        let mut want = 0f64;
        for i in 0..n {
            for e in p.indptr[i]..p.indptr[i + 1] {
                let j = p.indices[e] as usize;
                let dx = f64::from(y[2 * i]) - f64::from(y[2 * j]);
                let dy = f64::from(y[2 * i + 1]) - f64::from(y[2 * j + 1]);
                let q = 1.0 / (1.0 + dx * dx + dy * dy) / z;
                // scikit-learn's floor: a zero p_ij adds nothing.
                let pij = f64::from(p.values[e]).max(f64::from(f32::MIN_POSITIVE));
                want += f64::from(p.values[e]) * (pij / q).ln();
            }
        }
        assert!(want > 0.1, "a KL worth comparing: {want}");
        for simd in Simd::ALL.into_iter().filter(|s| s.available()) {
            let run = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("pool")
                    .install(|| kl_sparse(&p, &p.values, &y, z, simd))
            };
            let got = run(2);
            assert!(
                (got - want).abs() <= 1e-6 * want,
                "{simd:?}: {got} vs {want}"
            );
            assert_eq!(run(1).to_bits(), got.to_bits(), "{simd:?}: thread count");
            // Every level sums the same terms in the same order: the same bits.
            let portable = kl_sparse(&p, &p.values, &y, z, Simd::Scalar);
            assert_eq!(got.to_bits(), portable.to_bits(), "{simd:?} vs portable");
        }
    }

    #[test]
    fn attraction_rows_match_the_direct_sum_on_short_and_long_rows() {
        // 301 points (not a multiple of any lane or task width); k = 3 gives rows below
        // `GATHER_FROM` (scalar kernel), k = 40 rows above it (gather kernel).
        let n = 301;
        let (x, y) = test_points(n);
        let mut xs = vec![PAD_COORD; n.next_multiple_of(PAD_TO)];
        let mut ys = xs.clone();
        for i in 0..n {
            xs[i] = y[2 * i];
            ys[i] = y[2 * i + 1];
        }
        for (k, long) in [(3, false), (40, true)] {
            let p = affinity::sparse_p(&neighbours::knn(x.view(), k), k as f64 / 3.0);
            let lens: Vec<usize> = (0..n).map(|i| p.indptr[i + 1] - p.indptr[i]).collect();
            assert_eq!(lens.iter().all(|&l| l >= GATHER_FROM), long, "k = {k}");
            let want: Vec<[f64; 2]> = (0..n).map(|i| direct(&p, &y, i)).collect();
            let scale = want.iter().flatten().fold(0f64, |m, v| m.max(v.abs()));
            for simd in Simd::ALL.into_iter().filter(|s| s.available()) {
                let run = |threads: usize| {
                    let mut out = vec![[0f32; 2]; n];
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .expect("pool")
                        .install(|| {
                            attraction_rows(&p, &p.values, &y, &xs, &ys, &mut out, simd, 64)
                        });
                    out
                };
                let got = run(2);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    for d in 0..2 {
                        assert!(
                            (f64::from(g[d]) - w[d]).abs() <= 1e-5 * scale,
                            "k {k}, {simd:?}, point {i}: {} vs {}",
                            g[d],
                            w[d]
                        );
                    }
                }
                assert_eq!(
                    run(1),
                    got,
                    "k {k}, {simd:?}: thread count changed the bytes"
                );
            }
        }
    }
}
