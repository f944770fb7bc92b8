//! The first layer's products when most inputs are zero. MNIST pixels are about 80% zeros, and
//! the first layer (784 x 512) holds two thirds of the network's arithmetic: skipping the zero
//! inputs in its forward product and in its weight gradient roughly halves the work of a
//! training step. The products are the same sums as the dense GEMM's, in a fixed order (inputs
//! in ascending order, rows in ascending order) whatever the thread count.

use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Use these kernels when at most this share of the inputs is non-zero; denser data goes
/// through the GEMM, which does more arithmetic per second.
pub const MAX_SPARSE_DENSITY: f64 = 0.4;

/// Output columns handled at once with AVX-512: `LANES` x 128 f32 accumulators stay in
/// registers (16 of its 32 zmm), and a block of a 784 x 512 weight matrix (400 KB) stays in a
/// core's L2 cache.
const BLOCK_AVX512: usize = 128;

/// Output columns handled at once with AVX2 (and without SIMD): `LANES` x 32 f32 accumulators
/// are 8 of its 16 ymm registers, with room for the source vectors and the broadcast values;
/// 8 independent accumulators also cover the FMA's latency (4 cycles, 2 units). Each 8-wide
/// load of a source row feeds `LANES` = 2 FMAs, which a core's L2 can keep up with for a
/// 100 KB block. A 64-column block would need 16 accumulators and spill them to the stack
/// (measured: no faster than the dense GEMM at 18% non-zero inputs).
const BLOCK_AVX2: usize = 32;

/// The column block of the widest kernel this CPU runs.
fn block_width() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            return BLOCK_AVX512;
        }
    }
    BLOCK_AVX2
}

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Allow (the default) or forbid the sparse kernels in this process (for benchmarks).
pub fn set_sparse_first_layer(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the first layer should skip the zeros of `x`: allowed, `x` in standard layout, and
/// at most `MAX_SPARSE_DENSITY` of it non-zero.
pub fn worth_it(x: ArrayView2<f32>) -> bool {
    ENABLED.load(Ordering::Relaxed) && x.is_standard_layout() && density(x) <= MAX_SPARSE_DENSITY
}

/// Share of non-zero values.
pub fn density(x: ArrayView2<f32>) -> f64 {
    // Over the slice when there is one: a count that vectorises (ndarray's element iterator
    // does not), run on every training and test split once per epoch.
    let nonzero = match x.as_slice_memory_order() {
        Some(values) => values
            .chunks(1 << 12)
            .map(|c| c.iter().map(|&v| u32::from(v != 0.0)).sum::<u32>() as usize)
            .sum(),
        None => x.iter().filter(|&&v| v != 0.0).count(),
    };
    // Counts are far below 2^52: exact in f64.

    nonzero as f64 / x.len().max(1) as f64
}

/// `z[r, :] = bias + sum over k with x[r, k] != 0 of x[r, k] * w[k, :]`.
///
/// # Panics
/// When the shapes disagree or an array is not in standard layout.
pub fn forward(x: ArrayView2<f32>, w: ArrayView2<f32>, bias: &[f32], z: ArrayViewMut2<f32>) {
    forward_rows(&rows_of(x), w, bias, z);
}

/// The rows of `x`, as slices.
///
/// # Panics
/// When `x` is not in standard layout.
pub(crate) fn rows_of<'a>(x: ArrayView2<'a, f32>) -> Vec<&'a [f32]> {
    let k = x.ncols();
    let xs = x.to_slice().expect("inputs in standard layout");
    if k == 0 {
        return vec![&[]; x.nrows()];
    }
    xs.chunks_exact(k).collect()
}

/// `forward` of the matrix whose rows are `x` (each as long as `w` has rows): the rows are read
/// where they lie, so a minibatch of a data set's rows needs no copy.
///
/// # Panics
/// When the shapes disagree or an array is not in standard layout.
pub(crate) fn forward_rows(
    x: &[&[f32]],
    w: ArrayView2<f32>,
    bias: &[f32],
    mut z: ArrayViewMut2<f32>,
) {
    let (rows, k) = (x.len(), w.nrows());
    let n = w.ncols();
    assert!(x.iter().all(|r| r.len() == k) && z.dim() == (rows, n) && bias.len() == n);
    // Lanes are rows of x; the terms of a group are the inputs non-zero in any of its rows.
    let w = w.as_slice().expect("weights in standard layout");
    let z = z.as_slice_mut().expect("outputs in standard layout");
    // The groups' buffers are this thread's, reused from call to call: allocated afresh, they
    // cost more than building them (the allocator returns the memory to the system and faults
    // it in again each step). Taken, not borrowed: a call nested in this one (a task stolen
    // while the blocks run) finds the slot empty and uses new buffers.
    let mut groups = ROW_GROUPS.take();
    groups_of_rows(x, &mut groups);
    by_column_blocks(&groups, rows, w, n, 1.0, &Init::Bias(bias), z);
    ROW_GROUPS.set(groups);
}

thread_local! {
    /// `forward`'s groups, kept for this thread's next call.
    static ROW_GROUPS: std::cell::Cell<Groups> = std::cell::Cell::new(Groups::default());
    /// `block_task`'s copy of a column block of the source, kept for this thread's next task.
    static PACKED: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `g = a * w + s * x^T @ d`, skipping the zeros of `x` (rows x k): the weight gradient of the
/// first layer, with `d` (rows x n) the deltas of its outputs.
///
/// # Panics
/// When the shapes disagree or an array is not in standard layout.
pub fn weight_gradient(
    x: ArrayView2<f32>,
    d: ArrayView2<f32>,
    s: f32,
    w: ArrayView2<f32>,
    a: f32,
    g: ArrayViewMut2<f32>,
) {
    let mut groups = ColumnGroups::default();
    groups.fill(x, d.ncols());
    weight_gradient_grouped(&groups, d, s, w, a, g);
}

/// The terms of the weight gradient for one `x` (rows x k) and deltas of `n` columns: lanes
/// are columns of x (inputs); the terms of a group are the rows where any of its inputs is
/// non-zero. Depends on `x` only, so it can be built while other work runs; its buffers are
/// reused by the next `fill`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColumnGroups {
    groups: Groups,
    rows: usize,
    k: usize,
    n: usize,
}

impl ColumnGroups {
    /// The groups of `x` for deltas of `n` columns, in place of the previous ones.
    ///
    /// # Panics
    /// When `x` is not in standard layout.
    pub(crate) fn fill(&mut self, x: ArrayView2<f32>, n: usize) {
        let k = x.ncols();
        self.fill_rows(&rows_of(x), k, n);
    }

    /// `fill` for the matrix whose rows are `x`, each `k` long, read where they lie.
    ///
    /// # Panics
    /// When a row is not `k` long.
    pub(crate) fn fill_rows(&mut self, x: &[&[f32]], k: usize, n: usize) {
        assert!(x.iter().all(|r| r.len() == k), "rows of {k} inputs");
        groups_of_columns(x, k, &mut self.groups);
        (self.rows, self.k, self.n) = (x.len(), k, n);
    }
}

/// `weight_gradient` with the groups of its `x` built beforehand.
///
/// # Panics
/// When the shapes disagree or an array is not in standard layout.
pub(crate) fn weight_gradient_grouped(
    groups: &ColumnGroups,
    d: ArrayView2<f32>,
    s: f32,
    w: ArrayView2<f32>,
    a: f32,
    mut g: ArrayViewMut2<f32>,
) {
    let ColumnGroups { rows, k, n, .. } = *groups;
    assert!(d.dim() == (rows, n) && w.dim() == (k, n) && g.dim() == (k, n));
    let d = d.as_slice().expect("deltas in standard layout");
    let w = w.as_slice().expect("weights in standard layout");
    let g = g.as_slice_mut().expect("gradient in standard layout");
    by_column_blocks(&groups.groups, k, d, n, s, &Init::Penalty(a, w), g);
}

/// `g = s * x^T @ d` with the groups of `x` built beforehand: `weight_gradient_grouped`
/// without the penalty term, which the caller adds where it reads the weights anyway (Adam's
/// pass), so that this pass does not read them. `a * w + g` is then the same number as
/// `weight_gradient_grouped` gives.
///
/// # Panics
/// When the shapes disagree or an array is not in standard layout.
pub(crate) fn weight_gradient_unpenalised(
    groups: &ColumnGroups,
    d: ArrayView2<f32>,
    s: f32,
    mut g: ArrayViewMut2<f32>,
) {
    let ColumnGroups { rows, k, n, .. } = *groups;
    assert!(d.dim() == (rows, n) && g.dim() == (k, n));
    let d = d.as_slice().expect("deltas in standard layout");
    let g = g.as_slice_mut().expect("gradient in standard layout");
    by_column_blocks(&groups.groups, k, d, n, s, &Init::Zero, g);
}

/// Outputs computed together: `LANES` of them share each load of a source row. Two, not four:
/// a group's terms are the union of its lanes' non-zero inputs, and on MNIST batches of 200
/// that union is 1.53x the non-zero count for two rows against 2.03x for four (the weight
/// gradient's column groups: 1.17x against 1.48x), so fewer multiply-adds are wasted on zeros
/// (measured, one thread, batch 200: forward 0.97 -> 0.85 ms, gradient 0.63 -> 0.50 ms, the
/// same sums in the same order).
pub const LANES: usize = 2;

/// Groups of `LANES` outputs, each with the terms any of its outputs needs, stored flat: group
/// `g`'s terms are `starts[g]..starts[g + 1]`; `rows[t]` is the row of the source matrix term
/// `t` multiplies, `values[t]` the term's value for each lane (0 where that lane has none).
#[derive(Debug, Clone, Default)]
pub(crate) struct Groups {
    rows: Vec<u32>,
    values: Vec<[f32; LANES]>,
    starts: Vec<usize>,
}

impl Groups {
    fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Group `g`'s source rows and values.
    fn group(&self, g: usize) -> (&[u32], &[[f32; LANES]]) {
        let (lo, hi) = (self.starts[g], self.starts[g + 1]);
        (&self.rows[lo..hi], &self.values[lo..hi])
    }
}

/// A source row index as stored in `Groups` (sources have far fewer than 2^32 rows).
fn row_index(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 2^32 rows")
}

/// Bit `j % 64` of word `j / 64` is set where `row[j]` is non-zero (the sign bit ignored: -0.0
/// counts as zero), written over `mask` (`row.len().div_ceil(64)` words).
fn nonzero_mask(row: &[f32], mask: &mut Vec<u64>) {
    mask.clear();
    mask.extend(row.chunks(64).map(|chunk| {
        chunk.iter().enumerate().fold(0u64, |m, (j, &v)| {
            m | (u64::from(v.to_bits() << 1 != 0) << j)
        })
    }));
}

/// The set bits of `word`, lowest first, as `base +` their position.
#[inline(always)]
fn set_bits(mut word: u64, base: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (word != 0).then(|| {
            let bit = word.trailing_zeros() as usize;
            word &= word - 1;
            base + bit
        })
    })
}

/// Groups of `LANES` consecutive rows of `xs` (rows of equal length), each with the ascending
/// list of columns `i` where any of its rows is non-zero (row `i` of the weights), written over
/// `groups`. The columns come from the rows' non-zero bit masks, so the work follows the terms,
/// not the width.
fn groups_of_rows(xs: &[&[f32]], groups: &mut Groups) {
    const { assert!(LANES == 2) };
    groups.rows.clear();
    groups.values.clear();
    groups.starts.clear();
    groups.starts.push(0);
    let (mut m0, mut m1) = (Vec::new(), Vec::new());
    for block in xs.chunks(LANES) {
        let r0 = block[0];
        let r1 = block.get(1).copied();
        nonzero_mask(r0, &mut m0);
        match r1 {
            Some(r1) => nonzero_mask(r1, &mut m1),
            None => {
                m1.clear();
                m1.resize(m0.len(), 0);
            }
        }
        for (w, (&a, &b)) in m0.iter().zip(&m1).enumerate() {
            for i in set_bits(a | b, 64 * w) {
                groups.rows.push(row_index(i));
                groups.values.push([r0[i], r1.map_or(0.0, |r| r[i])]);
            }
        }
        groups.starts.push(groups.rows.len());
    }
}

/// Bits 0, 2, 4, ... of a mask word: the first column of each pair.
const EVEN_BITS: u64 = 0x5555_5555_5555_5555;

/// Groups of `LANES` consecutive columns of `xs` (rows of `k` values), each with the ascending
/// list of rows where any of its columns is non-zero (row `r` of the deltas), written over
/// `groups`: one pass over the rows' non-zero masks counts each group's terms, a second writes
/// them. (A word's 64 columns are 32 whole pairs, so a pair never straddles two words.)
fn groups_of_columns(xs: &[&[f32]], k: usize, groups: &mut Groups) {
    const { assert!(LANES == 2) };
    let n_groups = k.div_ceil(LANES);
    let words = k.div_ceil(64);
    // Bit 2p of row r's words: column pair p has a non-zero value in row r.
    let mut pairs = Vec::with_capacity(xs.len() * words);
    let mut mask = Vec::new();
    for row in xs {
        nonzero_mask(row, &mut mask);
        pairs.extend(mask.iter().map(|&m| (m | (m >> 1)) & EVEN_BITS));
    }
    let starts = &mut groups.starts;
    starts.clear();
    starts.resize(n_groups + 1, 0);
    for row in pairs.chunks_exact(words.max(1)) {
        for (w, &m) in row.iter().enumerate() {
            for bit in set_bits(m, 64 * w) {
                starts[bit / 2 + 1] += 1;
            }
        }
    }
    for g in 0..n_groups {
        starts[g + 1] += starts[g];
    }
    let total = starts[n_groups];
    groups.rows.clear();
    groups.rows.resize(total, 0);
    groups.values.clear();
    groups.values.resize(total, [0.0; LANES]);
    let mut next: Vec<usize> = starts[..n_groups].to_vec();
    for (r, (row, masks)) in xs.iter().zip(pairs.chunks_exact(words.max(1))).enumerate() {
        for (w, &m) in masks.iter().enumerate() {
            for bit in set_bits(m, 64 * w) {
                let at = &mut next[bit / 2];
                groups.rows[*at] = row_index(r);
                groups.values[*at] = [row[bit], row.get(bit + 1).copied().unwrap_or(0.0)];
                *at += 1;
            }
        }
    }
}

/// What an output starts from before the sum is added.
enum Init<'a> {
    /// `bias[column]`.
    Bias(&'a [f32]),
    /// `a * w[row, column]`.
    Penalty(f32, &'a [f32]),
    /// Nothing: the output is the scaled sum alone.
    Zero,
}

/// `out[lane, c] = init(lane, c) + scale * sum over terms t of the lane's group of
/// value[t][lane] * src[rows[t], c]`, for the `n_lanes` lanes and columns `c < n` (`src` has
/// `n` columns). The columns are cut into blocks, one task each, so that the block of `src` a
/// task reads stays in cache; every output element is summed in its group's order, whatever
/// the thread count. Each task writes its block of columns of `out` directly.
fn by_column_blocks(
    groups: &Groups,
    n_lanes: usize,
    src: &[f32],
    n: usize,
    scale: f32,
    init: &Init,
    out: &mut [f32],
) {
    assert_eq!(out.len(), n_lanes * n);
    assert!(groups.len() * LANES >= n_lanes);
    match init {
        Init::Bias(bias) => assert_eq!(bias.len(), n),
        Init::Penalty(_, w) => assert_eq!(w.len(), n_lanes * n),
        Init::Zero => {}
    }
    assert_eq!(src.len() % n, 0, "whole rows of src");
    let src_rows = src.len() / n;
    assert_eq!(groups.rows.len(), groups.values.len());
    assert_eq!(
        groups.starts.last().copied().unwrap_or(0),
        groups.rows.len()
    );
    assert!(groups.rows.iter().all(|&r| (r as usize) < src_rows));
    let out = SharedOut(out.as_mut_ptr());
    let block = block_width();
    (0..n.div_ceil(block)).into_par_iter().for_each(|b| {
        let c = b * block;
        let width = block.min(n - c);
        let job = Job {
            groups,
            n_lanes,
            src,
            n,
            scale,
            init,
            out: &out,
        };
        block_task(&job, c, width);
    });
}

/// The output matrix, shared by the column-block tasks: each writes only its own columns.
struct SharedOut(*mut f32);

// SAFETY: the tasks write disjoint elements (their own column block of every row).
unsafe impl Sync for SharedOut {}

/// What every column-block task reads.
struct Job<'a> {
    groups: &'a Groups,
    n_lanes: usize,
    src: &'a [f32],
    n: usize,
    scale: f32,
    init: &'a Init<'a>,
    out: &'a SharedOut,
}

/// The sums of one column block for every group, written to `out`. Dispatches to a build for
/// the widest vector unit the CPU has.
fn block_task(job: &Job, c: usize, width: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features the function is built for (checked above).
            return unsafe { block_task_avx512(job, c, width) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { block_task_avx2(job, c, width) };
        }
    }
    block_task_generic::<false, BLOCK_AVX2>(job, c, width);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn block_task_avx512(job: &Job, c: usize, width: usize) {
    block_task_generic::<true, BLOCK_AVX512>(job, c, width);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_task_avx2(job: &Job, c: usize, width: usize) {
    block_task_generic::<true, BLOCK_AVX2>(job, c, width);
}

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

#[inline(always)]
fn block_task_generic<const FMA: bool, const BLOCK: usize>(job: &Job, c: usize, width: usize) {
    let Job {
        groups,
        n_lanes,
        src,
        n,
        scale,
        init,
        out,
    } = *job;
    // This block of columns of src, copied contiguous (row r at r * BLOCK) and zero-padded
    // past `width`. Read in place, rows of a 512-column src are 2 KB apart: a power-of-two
    // stride that maps a block's rows onto a few cache sets, so they keep evicting each other
    // from L1 and L2 (measured: the sparse products no faster than the dense GEMM).
    let src_rows = src.len() / n;
    let mut packed = PACKED.take();
    packed.clear();
    packed.resize(src_rows * BLOCK, 0.0);
    if width == BLOCK {
        // A copy of a length known at compile time: a few vector moves per row, where a
        // `copy_from_slice` of the run-time width called `memcpy` once per row (7% of a
        // training run in `perf`).
        for (dst, row) in packed
            .chunks_exact_mut(BLOCK)
            .zip(src.chunks_exact(n).map(|row| &row[c..c + BLOCK]))
        {
            let dst: &mut [f32; BLOCK] = dst.try_into().expect("a full block");
            let row: &[f32; BLOCK] = row.try_into().expect("a full block");
            *dst = *row;
        }
    } else {
        for (r, dst) in packed.chunks_exact_mut(BLOCK).enumerate() {
            dst[..width].copy_from_slice(&src[r * n + c..r * n + c + width]);
        }
    }
    for gi in 0..groups.len() {
        let (rows, values) = groups.group(gi);
        // LANES x BLOCK accumulators stay in registers, and each load of a source row serves
        // every lane. (Accumulated in `a`, copied out after the loop: with the array written
        // out by index below, LLVM would otherwise store every accumulator to the stack on
        // every term.)
        let mut a = [[0.0f32; BLOCK]; LANES];
        for (&row, v) in rows.iter().zip(values) {
            let at = row as usize * BLOCK;
            let s: &[f32; BLOCK] = packed[at..at + BLOCK].try_into().expect("a full block");
            for (a, &v) in a.iter_mut().zip(v) {
                for j in 0..BLOCK {
                    a[j] = madd::<FMA>(v, s[j], a[j]);
                }
            }
        }
        let acc = a;
        let first = gi * LANES;
        for (l, acc) in acc.iter().enumerate().take(n_lanes.saturating_sub(first)) {
            let row = (first + l) * n + c;
            // SAFETY: `row + width <= n_lanes * n == out.len()` (checked in `by_column_blocks`),
            // and only this task writes columns `c..c + width`.
            let o = unsafe { std::slice::from_raw_parts_mut(out.0.add(row), width) };
            match init {
                Init::Bias(bias) => {
                    for ((o, &p), &b) in o.iter_mut().zip(&acc[..width]).zip(&bias[c..c + width]) {
                        *o = b + p;
                    }
                }
                Init::Penalty(a, w) => {
                    for ((o, &p), &w) in o.iter_mut().zip(&acc[..width]).zip(&w[row..row + width]) {
                        *o = a * w + scale * p;
                    }
                }
                Init::Zero => {
                    for (o, &p) in o.iter_mut().zip(&acc[..width]) {
                        *o = scale * p;
                    }
                }
            }
        }
    }
    PACKED.set(packed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn sparse_rows(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            let h = (i as u32).wrapping_mul(2_654_435_761) ^ (j as u32).wrapping_mul(40503) ^ seed;
            if h % 5 < 4 {
                0.0
            } else {
                (h % 97) as f32 / 97.0
            }
        })
    }

    /// The mask-built groups hold exactly the terms of their definition, in ascending order:
    /// for row pairs, every column where either row is non-zero (-0.0 counting as zero); for
    /// column pairs, every row where either column is. Odd counts leave a half group, and 70
    /// columns a partial mask word.
    #[test]
    fn groups_hold_every_non_zero_term_in_order() {
        let mut x = sparse_rows(37, 70, 3);
        x[(0, 5)] = -0.0;
        x[(2, 69)] = 0.5;
        let (rows, k) = x.dim();
        let xs = rows_of(x.view());
        let nz = |r: usize, c: usize| r < rows && c < k && x[(r, c)] != 0.0;
        let value = |r: usize, c: usize| if r < rows && c < k { x[(r, c)] } else { 0.0 };
        let mut g = Groups::default();
        groups_of_rows(&xs, &mut g);
        assert_eq!(g.len(), rows.div_ceil(2));
        for gi in 0..g.len() {
            let r = 2 * gi;
            let want: Vec<u32> = (0..k as u32)
                .filter(|&c| nz(r, c as usize) || nz(r + 1, c as usize))
                .collect();
            let (terms, values) = g.group(gi);
            assert_eq!(terms, &want[..], "row group {gi}");
            for (&c, v) in terms.iter().zip(values) {
                assert_eq!(*v, [value(r, c as usize), value(r + 1, c as usize)]);
            }
        }
        groups_of_columns(&xs, k, &mut g);
        assert_eq!(g.len(), k.div_ceil(2));
        for gi in 0..g.len() {
            let c = 2 * gi;
            let want: Vec<u32> = (0..rows as u32)
                .filter(|&r| nz(r as usize, c) || nz(r as usize, c + 1))
                .collect();
            let (terms, values) = g.group(gi);
            assert_eq!(terms, &want[..], "column group {gi}");
            for (&r, v) in terms.iter().zip(values) {
                assert_eq!(*v, [value(r as usize, c), value(r as usize, c + 1)]);
            }
        }
    }

    #[test]
    fn forward_and_gradient_match_dense_products() {
        let x = sparse_rows(37, 70, 1);
        assert!(density(x.view()) < MAX_SPARSE_DENSITY);
        let w = Array2::from_shape_fn((70, 130), |(i, j)| {
            ((i * 13 + j * 7) % 17) as f32 / 17.0 - 0.5
        });
        let bias: Vec<f32> = (0..130).map(|j| j as f32 * 0.01).collect();
        let mut z = Array2::zeros((37, 130));
        forward(x.view(), w.view(), &bias, z.view_mut());
        let dense = x.dot(&w) + &ndarray::Array1::from(bias.clone());
        assert!((&z - &dense).iter().all(|e| e.abs() < 1e-4));

        let d = Array2::from_shape_fn((37, 130), |(i, j)| ((i * 3 + j) % 11) as f32 / 11.0 - 0.5);
        let mut g = Array2::zeros((70, 130));
        weight_gradient(x.view(), d.view(), 0.25, w.view(), 0.1, g.view_mut());
        let dense = &w * 0.1 + &(x.t().dot(&d) * 0.25);
        assert!((&g - &dense).iter().all(|e| e.abs() < 1e-4));
    }
}
