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

/// Fill `rows` with the rows of `x` and say whether the first layer should skip their zeros
/// (`worth_it`), in one pass over `x`; when not, `rows` is left empty (and no copy of dense
/// data is made).
pub(crate) fn fill_if_worth_it(x: ArrayView2<f32>, rows: &mut SparseRows) -> bool {
    if !ENABLED.load(Ordering::Relaxed) || !x.is_standard_layout() {
        *rows = SparseRows::default();
        return false;
    }
    // Past this count the density is surely over the bound (a margin of one value for the
    // rounding of the product); the decision itself is `worth_it`'s comparison.
    let max_nonzero = (MAX_SPARSE_DENSITY * x.len() as f64) as usize + 1;
    let worth = rows.fill_within(x, max_nonzero) && rows.density() <= MAX_SPARSE_DENSITY;
    if !worth {
        *rows = SparseRows::default();
    }
    worth
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
    let rows = SparseRows::from_matrix(x);
    forward_batch(rows.all().as_batch(), w, bias, z);
}

/// `forward`, with the rows of each class (`labels`, one per row) paired by their shared
/// non-zero inputs as training pairs them: the same numbers, fewer multiply-adds on zeros.
///
/// # Panics
/// As `forward`, and when there is not one label per row.
pub fn forward_paired(
    x: ArrayView2<f32>,
    labels: &[u8],
    w: ArrayView2<f32>,
    bias: &[f32],
    z: ArrayViewMut2<f32>,
) {
    let rows = SparseRows::from_matrix(x);
    let all = rows.all();
    forward_batch(all.as_batch().with_labels(labels), w, bias, z);
}

/// The multiply-adds on zero inputs of the first layer's forward product for `x` with its
/// rows paired as training pairs them (by class, `labels`; natural order without), in batches
/// of `batch` rows: the terms of its groups (each `LANES` lanes wide) over the non-zero
/// inputs. 1.0 would be no waste.
pub fn forward_term_ratio(x: ArrayView2<f32>, labels: Option<&[u8]>, batch: usize) -> f64 {
    let rows = SparseRows::from_matrix(x);
    let positions: Vec<usize> = (0..rows.len()).collect();
    let mut groups = Groups::default();
    let mut terms = 0;
    for (i, chunk) in positions.chunks(batch.max(1)).enumerate() {
        let mut b = rows.batch(chunk);
        if let Some(l) = labels {
            b = b.with_labels(&l[i * batch..i * batch + chunk.len()]);
        }
        groups_of_rows(b, &mut groups);
        terms += groups.rows.len() * LANES;
    }
    terms as f64 / rows.values.len().max(1) as f64
}

/// A training step's two group builds on the rows of `x`, packed once as training packs them,
/// timed by the benchmark: the forward product's row groups (paired by class, `labels`) and
/// the weight gradient's column groups. Each build returns its count of terms.
#[derive(Debug, Clone)]
pub struct GroupBuilds {
    data: SparseRows,
    order: Vec<usize>,
    labels: Vec<u8>,
    groups: Groups,
    /// Whether the groups built last are `columns`'.
    columns: bool,
}

impl GroupBuilds {
    /// The rows of `x` (in standard layout) with their `labels`, one per row.
    ///
    /// # Panics
    /// When there is not one label per row, or `x` is not in standard layout.
    pub fn new(x: ArrayView2<f32>, labels: &[u8]) -> GroupBuilds {
        assert_eq!(labels.len(), x.nrows(), "one label per row");
        GroupBuilds {
            data: SparseRows::from_matrix(x),
            order: (0..x.nrows()).collect(),
            labels: labels.to_vec(),
            groups: Groups::default(),
            columns: false,
        }
    }

    /// Build the forward product's groups (rows paired by class); their terms.
    pub fn rows(&mut self) -> usize {
        let batch = self.data.batch(&self.order).with_labels(&self.labels);
        groups_of_rows(batch, &mut self.groups);
        self.columns = false;
        self.groups.rows.len()
    }

    /// Build the weight gradient's groups; their terms.
    pub fn columns(&mut self) -> usize {
        groups_of_columns(self.data.batch(&self.order), &mut self.groups);
        self.columns = true;
        self.groups.rows.len()
    }

    /// The product over the groups built last: `z = bias + x @ w` after `rows`, or
    /// `z = x^T @ w` after `columns` (`w` then the deltas, one row per row of x).
    ///
    /// # Panics
    /// When the shapes disagree.
    pub fn product(&self, w: ArrayView2<f32>, bias: &[f32], mut z: ArrayViewMut2<f32>) {
        let n = w.ncols();
        let w = w.as_slice().expect("standard layout");
        let (lanes, init) = if self.columns {
            (self.data.width, Init::Zero)
        } else {
            (self.data.len(), Init::Bias(bias))
        };
        let z = z.as_slice_mut().expect("standard layout");
        by_column_blocks(&self.groups, lanes, w, n, 1.0, &init, z);
    }
}

/// The rows of a matrix with their zeros left out: per row, a bit mask of its non-zero columns
/// (bit `j % 64` of word `j / 64`; -0.0 counts as zero) and its non-zero values in column
/// order. Built in one pass over the matrix (in training, once per run over the whole training
/// split), the group builders read these instead of the rows: no test of every input on every
/// step, and a minibatch's rows are a fifth of the bytes to fetch (an epoch's shuffled rows come
/// from all over a 15 MB matrix).
#[derive(Debug, Clone, Default)]
pub(crate) struct SparseRows {
    /// Values per row (the matrix's width).
    width: usize,
    /// Mask words per row, `width.div_ceil(64)`.
    words: usize,
    /// `words` mask words per row, row after row.
    masks: Vec<u64>,
    /// Row `r`'s values are `values[starts[r]..starts[r + 1]]`.
    starts: Vec<usize>,
    /// The non-zero values, row after row, each row in column order.
    values: Vec<f32>,
}

/// One row of `SparseRows`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SparseRow<'a> {
    masks: &'a [u64],
    values: &'a [f32],
}

/// A minibatch: rows `rows[0]`, `rows[1]`, ... of `data`, in that order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batch<'a> {
    data: &'a SparseRows,
    rows: &'a [usize],
    /// The rows' labels, when known: the forward product then pairs rows of a class.
    labels: Option<&'a [u8]>,
}

impl SparseRows {
    /// The rows of `x` (in standard layout), in place of the previous ones (buffers reused).
    ///
    /// # Panics
    /// When `x` is not in standard layout.
    pub(crate) fn fill(&mut self, x: ArrayView2<f32>) {
        self.fill_within(x, usize::MAX);
    }

    /// `fill`, given up (false, the rows left empty) as soon as `x` has more than
    /// `max_nonzero` non-zero values: dense data costs no copy.
    ///
    /// # Panics
    /// When `x` is not in standard layout.
    fn fill_within(&mut self, x: ArrayView2<f32>, max_nonzero: usize) -> bool {
        let width = x.ncols();
        let xs = x.as_slice().expect("inputs in standard layout");
        self.width = width;
        self.words = width.div_ceil(64);
        self.masks.clear();
        self.starts.clear();
        self.values.clear();
        self.starts.push(0);
        if width == 0 {
            self.starts.resize(x.nrows() + 1, 0);
            return true;
        }
        for row in xs.chunks_exact(width) {
            push_row(row, &mut self.masks, &mut self.values);
            self.starts.push(self.values.len());
            if self.values.len() > max_nonzero {
                *self = SparseRows::default();
                return false;
            }
        }
        true
    }

    /// The rows of `x` (in standard layout).
    ///
    /// # Panics
    /// When `x` is not in standard layout.
    pub(crate) fn from_matrix(x: ArrayView2<f32>) -> SparseRows {
        let mut rows = SparseRows::default();
        rows.fill(x);
        rows
    }

    /// Number of rows.
    pub(crate) fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Share of non-zero values (as `density` of the matrix).
    pub(crate) fn density(&self) -> f64 {
        // Counts are far below 2^52: exact in f64.
        self.values.len() as f64 / (self.len() * self.width).max(1) as f64
    }

    /// Row `r`.
    fn row(&self, r: usize) -> SparseRow<'_> {
        SparseRow {
            masks: &self.masks[r * self.words..(r + 1) * self.words],
            values: &self.values[self.starts[r]..self.starts[r + 1]],
        }
    }

    /// Every row, in order, as a batch (with its row list).
    pub(crate) fn all(&self) -> AllRows<'_> {
        AllRows {
            data: self,
            rows: (0..self.len()).collect(),
        }
    }

    /// The batch of rows `rows` (each below `len()`).
    ///
    /// # Panics
    /// When a row is out of range.
    pub(crate) fn batch<'a>(&'a self, rows: &'a [usize]) -> Batch<'a> {
        assert!(rows.iter().all(|&r| r < self.len()), "rows of the matrix");
        Batch {
            data: self,
            rows,
            labels: None,
        }
    }
}

/// `SparseRows::all`: the rows and the list of their indices a batch borrows.
pub(crate) struct AllRows<'a> {
    data: &'a SparseRows,
    rows: Vec<usize>,
}

impl AllRows<'_> {
    /// The rows as a batch.
    pub(crate) fn as_batch(&self) -> Batch<'_> {
        self.data.batch(&self.rows)
    }
}

impl<'a> Batch<'a> {
    /// The batch with its rows' labels (one per row): `forward_batch` pairs the rows of a class
    /// that share the most non-zero inputs (same sums; fewer multiply-adds on zeros).
    ///
    /// # Panics
    /// When there is not one label per row.
    pub(crate) fn with_labels(self, labels: &'a [u8]) -> Batch<'a> {
        assert_eq!(labels.len(), self.rows.len(), "one label per row");
        Batch {
            labels: Some(labels),
            ..self
        }
    }

    /// Rows in the batch.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Values per row.
    pub(crate) fn width(&self) -> usize {
        self.data.width
    }

    /// The batch's `i`-th row.
    fn row(&self, i: usize) -> SparseRow<'a> {
        self.data.row(self.rows[i])
    }
}

/// Append `row`'s mask words to `masks` and its non-zero values to `values`, built for the
/// widest vector unit the CPU has.
fn push_row(row: &[f32], masks: &mut Vec<u64>, values: &mut Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("bmi1")
        {
            // SAFETY: the CPU has the features the function is built for (checked above).
            return unsafe { push_row_avx2(row, masks, values) };
        }
    }
    for (w, chunk) in row.chunks(64).enumerate() {
        let m = chunk.iter().enumerate().fold(0u64, |m, (j, &v)| {
            m | (u64::from(v.to_bits() << 1 != 0) << j)
        });
        push_word(row, w, m, masks, values);
    }
}

/// `push_row` with AVX2: a compare and a move-mask give eight bits of the mask at once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt,bmi1")]
unsafe fn push_row_avx2(row: &[f32], masks: &mut Vec<u64>, values: &mut Vec<f32>) {
    use std::arch::x86_64::_mm256_setzero_ps;
    use std::arch::x86_64::{_CMP_NEQ_UQ, _mm256_cmp_ps, _mm256_loadu_ps, _mm256_movemask_ps};
    let zero = _mm256_setzero_ps();
    for (w, chunk) in row.chunks(64).enumerate() {
        let mut m = 0u64;
        let mut eights = chunk.chunks_exact(8);
        for (b, eight) in (&mut eights).enumerate() {
            // SAFETY: `eight` holds 8 floats. Not-equal, unordered: -0.0 is zero, NaN is not
            // (as `to_bits() << 1 != 0`).
            let bits = unsafe {
                _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(
                    _mm256_loadu_ps(eight.as_ptr()),
                    zero,
                ))
            };
            m |= u64::from(bits as u8) << (8 * b);
        }
        let done = chunk.len() - eights.remainder().len();
        for (j, &v) in eights.remainder().iter().enumerate() {
            m |= u64::from(v.to_bits() << 1 != 0) << (done + j);
        }
        push_word(row, w, m, masks, values);
    }
}

/// Append mask word `w` of `row`, `m`, and the values its bits select.
#[inline(always)]
fn push_word(row: &[f32], w: usize, m: u64, masks: &mut Vec<u64>, values: &mut Vec<f32>) {
    masks.push(m);
    let start = values.len();
    values.resize(start + m.count_ones() as usize, 0.0);
    for (slot, j) in values[start..].iter_mut().zip(set_bits(m, 64 * w)) {
        *slot = row[j];
    }
}

/// `forward` of the batch `x` (each row as long as `w` has rows).
///
/// # Panics
/// When the shapes disagree or an array is not in standard layout.
pub(crate) fn forward_batch(x: Batch, w: ArrayView2<f32>, bias: &[f32], mut z: ArrayViewMut2<f32>) {
    let (rows, k) = (x.len(), w.nrows());
    let n = w.ncols();
    assert!(x.width() == k && z.dim() == (rows, n) && bias.len() == n);
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
    let rows = SparseRows::from_matrix(x);
    let mut groups = ColumnGroups::default();
    groups.fill(rows.all().as_batch(), d.ncols());
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
    /// The groups of the batch `x` for deltas of `n` columns, in place of the previous ones.
    pub(crate) fn fill(&mut self, x: Batch, n: usize) {
        groups_of_columns(x, &mut self.groups);
        (self.rows, self.k, self.n) = (x.len(), x.width(), n);
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
    /// Lane `l` (lane `l % LANES` of group `l / LANES`) is output row `out[l]`; empty: row `l`.
    out: Vec<u32>,
}

impl Groups {
    /// The output row of lane `l`.
    #[inline(always)]
    fn out_row(&self, l: usize) -> usize {
        if self.out.is_empty() {
            l
        } else {
            self.out[l] as usize
        }
    }

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

/// `values[at]` where `has`, else 0.0, without a branch (whether a lane has a term is as good
/// as random: a branch on it mispredicts). Past the end of `values` (only where `!has`) 0.0.
#[inline(always)]
fn value_if(values: &[f32], at: usize, has: bool) -> f32 {
    let bits = values.get(at).map_or(0, |v| v.to_bits());
    f32::from_bits(bits & 0u32.wrapping_sub(u32::from(has)))
}

/// Groups of `LANES` consecutive rows of the batch `x`, each with the ascending list of
/// columns `i` where any of its rows is non-zero (row `i` of the weights), written over
/// `groups`. The columns come from the rows' non-zero masks and the values from their packed
/// lists, so the work follows the terms, not the width.
fn groups_of_rows(x: Batch, groups: &mut Groups) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("bmi1")
        {
            // SAFETY: the CPU has the features the function is built for (checked above).
            return unsafe { groups_of_rows_bmi(x, groups) };
        }
    }
    groups_of_rows_generic(x, groups);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt,bmi1")]
unsafe fn groups_of_rows_bmi(x: Batch, groups: &mut Groups) {
    groups_of_rows_generic(x, groups);
}

#[inline(always)]
fn groups_of_rows_generic(x: Batch, groups: &mut Groups) {
    const { assert!(LANES == 2) };
    groups.rows.clear();
    groups.values.clear();
    groups.starts.clear();
    groups.starts.push(0);
    groups.out.clear();
    if let Some(labels) = x.labels {
        pair_rows(x, labels, &mut groups.out);
    }
    let lane_row = |l: usize| groups.out.get(l).map_or(l, |&r| r as usize);
    for first in (0..x.len()).step_by(LANES) {
        let r0 = x.row(lane_row(first));
        let r1 = (first + 1 < x.len()).then(|| x.row(lane_row(first + 1)));
        let (v0s, v1s) = (r0.values, r1.map_or(&[][..], |r| r.values));
        let (mut p0, mut p1) = (0, 0);
        for (w, &a) in r0.masks.iter().enumerate() {
            let b = r1.map_or(0, |r| r.masks[w]);
            for i in set_bits(a | b, 64 * w) {
                let (h0, h1) = (a >> (i % 64) & 1 != 0, b >> (i % 64) & 1 != 0);
                groups.rows.push(row_index(i));
                groups
                    .values
                    .push([value_if(v0s, p0, h0), value_if(v1s, p1, h1)]);
                p0 += usize::from(h0);
                p1 += usize::from(h1);
            }
        }
        groups.starts.push(groups.rows.len());
    }
}

/// The batch's rows (positions `0..x.len()`) in the order they are to share groups, written
/// over `order`: the rows of each class (by `labels`), each row in turn (the largest first)
/// paired with the row left of its class with which it shares the most non-zero inputs (the
/// smallest union: the group's terms); the rows left single, one per odd class, last, paired in
/// class order. Within a batch of 200 MNIST rows (20 a class) this cuts the forward product's
/// terms by a tenth (1.52x the non-zero inputs -> 1.37x; 1.42x by class alone), for the price
/// of 13-word mask comparisons between the rows of a class. Ties go to the earlier row, so the
/// order depends on the data only.
fn pair_rows(x: Batch, labels: &[u8], order: &mut Vec<u32>) {
    let n = x.len();
    order.clear();
    let mut by_class: Vec<u32> = (0..row_index(n)).collect();
    by_class.sort_by_key(|&i| labels[i as usize]);
    let size = |i: u32| -> u32 { x.row(i as usize).masks.iter().map(|m| m.count_ones()).sum() };
    let union = |i: u32, j: u32| -> u32 {
        let (a, b) = (x.row(i as usize).masks, x.row(j as usize).masks);
        a.iter().zip(b).map(|(a, b)| (a | b).count_ones()).sum()
    };
    let mut singles = Vec::new();
    let mut class: Vec<(u32, u32)> = Vec::new();
    for same in by_class.chunk_by(|&a, &b| labels[a as usize] == labels[b as usize]) {
        // (row, taken) in order of size, largest first, then by position.
        class.clear();
        class.extend(same.iter().map(|&i| (i, 0)));
        class.sort_by_cached_key(|&(i, _)| (std::cmp::Reverse(size(i)), i));
        for a in 0..class.len() {
            if class[a].1 != 0 {
                continue;
            }
            class[a].1 = 1;
            let row = class[a].0;
            let best = (a + 1..class.len())
                .filter(|&b| class[b].1 == 0)
                .min_by_key(|&b| (union(row, class[b].0), class[b].0));
            match best {
                Some(b) => {
                    class[b].1 = 1;
                    order.extend([row, class[b].0]);
                }
                None => singles.push(row),
            }
        }
    }
    order.extend(singles);
}

/// Bits 0, 2, 4, ... of a mask word: the first column of each pair.
const EVEN_BITS: u64 = 0x5555_5555_5555_5555;

/// Column pair `p` of a mask word (bit `2p` of the result) has a non-zero value.
#[inline(always)]
fn pair_bits(m: u64) -> u64 {
    (m | (m >> 1)) & EVEN_BITS
}

/// Groups of `LANES` consecutive columns of the batch `x`, each with the ascending list of
/// its rows where any of the group's columns is non-zero (row `r` of the deltas), written over
/// `groups`: one pass over the rows' non-zero masks counts each group's terms, a second writes
/// them. (A word's 64 columns are 32 whole pairs, so a pair never straddles two words.)
fn groups_of_columns(x: Batch, groups: &mut Groups) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("bmi1")
        {
            // SAFETY: the CPU has the features the function is built for (checked above).
            return unsafe { groups_of_columns_bmi(x, groups) };
        }
    }
    groups_of_columns_generic(x, groups);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt,bmi1")]
unsafe fn groups_of_columns_bmi(x: Batch, groups: &mut Groups) {
    groups_of_columns_generic(x, groups);
}

#[inline(always)]
fn groups_of_columns_generic(x: Batch, groups: &mut Groups) {
    const { assert!(LANES == 2) };
    let n_groups = x.width().div_ceil(LANES);
    groups.out.clear();
    let starts = &mut groups.starts;
    starts.clear();
    starts.resize(n_groups + 1, 0);
    for r in 0..x.len() {
        for (w, &m) in x.row(r).masks.iter().enumerate() {
            for bit in set_bits(pair_bits(m), 64 * w) {
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
    for r in 0..x.len() {
        let row = x.row(r);
        // Values of the row before this word.
        let mut before = 0;
        for (w, &m) in row.masks.iter().enumerate() {
            for bit in set_bits(pair_bits(m), 64 * w) {
                let j = bit % 64;
                // The pair's values: the first column's is at its rank in the row (when its
                // bit is set), the second's just after.
                let at = before + (m & ((1u64 << j) - 1)).count_ones() as usize;
                let (h0, h1) = (m >> j & 1 != 0, m >> (j + 1) & 1 != 0);
                let slot = &mut next[bit / 2];
                groups.rows[*slot] = row_index(r);
                groups.values[*slot] = [
                    value_if(row.values, at, h0),
                    value_if(row.values, at + usize::from(h0), h1),
                ];
                *slot += 1;
            }
            before += m.count_ones() as usize;
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
    if !groups.out.is_empty() {
        // A permutation of the output rows: every task writes each row of its block once.
        assert_eq!(groups.out.len(), n_lanes);
        let mut seen = vec![false; n_lanes];
        for &r in &groups.out {
            assert!(
                !std::mem::replace(&mut seen[r as usize], true),
                "row {r} twice"
            );
        }
    }
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

/// How many terms ahead `block_task` prefetches its source rows.
const PREFETCH_TERMS: usize = 8;

/// A core's L1 data cache, at its smallest on the x86 CPUs this runs on (32 KB on Zen 2-4 and
/// on Intel's cores before Ice Lake, 48 KB after).
const L1_BYTES: usize = 32 << 10;

/// Ask for the cache lines of the `BLOCK` values from `row` (a hint: no effect on results).
#[inline(always)]
fn prefetch<const BLOCK: usize>(row: *const f32) {
    #[cfg(target_arch = "x86_64")]
    for line in (0..BLOCK).step_by(16) {
        // SAFETY: a prefetch, of any address, reads nothing the program sees.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                row.wrapping_add(line).cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
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
    // Past an L1 data cache's worth of packed rows a group's scattered rows come from L2: ask
    // for each a few terms ahead. Smaller blocks (the weight gradient's: a batch's deltas) stay
    // in L1, where the prefetches would only take load slots.
    let fetch_ahead = src_rows * BLOCK * std::mem::size_of::<f32>() > L1_BYTES;
    let base = packed.as_ptr();
    for gi in 0..groups.len() {
        let (rows, values) = groups.group(gi);
        // LANES x BLOCK accumulators stay in registers, and each load of a source row serves
        // every lane. (Accumulated in `a`, copied out after the loop: with the array written
        // out by index below, LLVM would otherwise store every accumulator to the stack on
        // every term.)
        let mut a = [[0.0f32; BLOCK]; LANES];
        let term = |a: &mut [[f32; BLOCK]; LANES], t: usize| {
            // SAFETY: `t < rows.len() == values.len()`, and every row index is below
            // `src_rows` (checked in `by_column_blocks`): `packed` holds `src_rows * BLOCK`
            // values. Unchecked: the bounds checks were a third of the loop's instructions.
            let (row, v) = unsafe { (*rows.get_unchecked(t) as usize, values.get_unchecked(t)) };
            let s = unsafe { &*base.add(row * BLOCK).cast::<[f32; BLOCK]>() };
            for (a, &v) in a.iter_mut().zip(v) {
                for j in 0..BLOCK {
                    a[j] = madd::<FMA>(v, s[j], a[j]);
                }
            }
        };
        let n_terms = rows.len();
        let mut t = 0;
        if fetch_ahead {
            while t + PREFETCH_TERMS < n_terms {
                // SAFETY: as in `term`.
                let ahead = unsafe { *rows.get_unchecked(t + PREFETCH_TERMS) } as usize;
                prefetch::<BLOCK>(base.wrapping_add(ahead * BLOCK));
                term(&mut a, t);
                t += 1;
            }
        }
        while t < n_terms {
            term(&mut a, t);
            t += 1;
        }
        let acc = a;
        let first = gi * LANES;
        for (l, acc) in acc.iter().enumerate().take(n_lanes.saturating_sub(first)) {
            let row = groups.out_row(first + l) * n + c;
            // SAFETY: `row + width <= n_lanes * n == out.len()` (output rows are below
            // `n_lanes`, each lane's a different one: checked in `by_column_blocks`), and only
            // this task writes columns `c..c + width`.
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

    /// The groups hold exactly the terms of their definition, in ascending order, for a batch
    /// of rows taken out of order (as a shuffled epoch takes them): for row pairs, every column
    /// where either row is non-zero (-0.0 counting as zero); for column pairs, every row where
    /// either column is. Odd counts leave a half group, and 70 columns a partial mask word.
    #[test]
    fn groups_hold_every_non_zero_term_in_order() {
        let mut x = sparse_rows(37, 70, 3);
        x[(0, 5)] = -0.0;
        x[(2, 69)] = 0.5;
        x[(11, 63)] = 0.25;
        x[(11, 64)] = 0.75;
        let k = x.ncols();
        let data = SparseRows::from_matrix(x.view());
        assert_eq!(data.len(), 37);
        let order: Vec<usize> = (0..25).map(|i| (i * 11 + 2) % 37).collect();
        let batch = data.batch(&order);
        let rows = order.len();
        let nz = |i: usize, c: usize| i < rows && c < k && x[(order[i], c)] != 0.0;
        let value = |i: usize, c: usize| {
            if i < rows && c < k {
                x[(order[i], c)]
            } else {
                0.0
            }
        };
        let mut g = Groups::default();
        groups_of_rows(batch, &mut g);
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
        groups_of_columns(batch, &mut g);
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
        let nonzero = x.iter().filter(|&&v| v != 0.0).count();
        assert_eq!(data.density(), nonzero as f64 / x.len() as f64);

        // With labels: the lanes are a permutation of the rows, a group's rows share a label
        // (but for the odd rows out, one per class with an odd count, paired last), and each
        // group holds the union of its rows' terms.
        let labels: Vec<u8> = (0..rows).map(|i| (i * 7 % 5) as u8).collect();
        groups_of_rows(batch.with_labels(&labels), &mut g);
        let mut lanes = g.out.clone();
        lanes.sort_unstable();
        assert_eq!(lanes, (0..rows as u32).collect::<Vec<_>>());
        let odd = (0..5u8)
            .filter(|&c| labels.iter().filter(|&&l| l == c).count() % 2 == 1)
            .count();
        let mixed = (0..g.len())
            .filter(|&gi| {
                let lane = |l: usize| g.out.get(l).map(|&r| r as usize);
                match (lane(2 * gi), lane(2 * gi + 1)) {
                    (Some(a), Some(b)) => labels[a] != labels[b],
                    _ => false,
                }
            })
            .count();
        assert!(mixed <= odd / 2, "{mixed} groups of two classes");
        for gi in 0..g.len() {
            let (r0, r1) = (g.out_row(2 * gi), 2 * gi + 1);
            let r1 = if r1 < rows { g.out_row(r1) } else { rows };
            let want: Vec<u32> = (0..k as u32)
                .filter(|&c| nz(r0, c as usize) || nz(r1, c as usize))
                .collect();
            let (terms, values) = g.group(gi);
            assert_eq!(terms, &want[..], "labelled row group {gi}");
            for (&c, v) in terms.iter().zip(values) {
                assert_eq!(*v, [value(r0, c as usize), value(r1, c as usize)]);
            }
        }
    }

    /// Pairing the rows of a class by their shared inputs: rows 0 and 2 are alike, as are 1
    /// and 3 (all four of one class), so they are paired so, whatever their order; the forward
    /// product with labels gives the same numbers as without.
    #[test]
    fn rows_pair_with_their_likest_and_sums_do_not_change() {
        let mut x = Array2::<f32>::zeros((5, 20));
        for c in 0..8 {
            x[(0, c)] = 1.0 + c as f32;
            x[(2, c)] = 2.0;
            x[(1, 10 + c)] = 0.5;
            x[(3, 10 + c)] = 0.25 * c as f32 + 0.25;
        }
        x[(4, 19)] = 3.0;
        let data = SparseRows::from_matrix(x.view());
        let order = [0, 1, 2, 3, 4];
        let labels = [6, 6, 6, 6, 1];
        let mut out = Vec::new();
        pair_rows(data.batch(&order).with_labels(&labels), &labels, &mut out);
        assert_eq!(out, vec![0, 2, 1, 3, 4]);
        let w = Array2::from_shape_fn((20, 40), |(i, j)| ((i * 5 + j * 3) % 13) as f32 - 6.0);
        let bias: Vec<f32> = (0..40).map(|j| j as f32 * 0.5).collect();
        let (mut plain, mut paired) = (Array2::zeros((5, 40)), Array2::zeros((5, 40)));
        forward_batch(data.batch(&order), w.view(), &bias, plain.view_mut());
        let batch = data.batch(&order).with_labels(&labels);
        forward_batch(batch, w.view(), &bias, paired.view_mut());
        assert_eq!(plain, paired);
        assert_eq!(plain.row(4)[0], 3.0 * w[(19, 0)] + bias[0]);
    }

    /// The benchmark's builds time what training runs: their products are the dense ones,
    /// and a column build after a paired row build is not read through the pairing.
    #[test]
    fn the_benchmarks_group_builds_give_the_dense_products() {
        let x = sparse_rows(21, 70, 5);
        let labels: Vec<u8> = (0..21).map(|i| (i % 3) as u8).collect();
        let w = Array2::from_shape_fn((70, 40), |(i, j)| ((i * 5 + j * 3) % 13) as f32 - 6.0);
        let bias: Vec<f32> = (0..40).map(|j| j as f32 * 0.5).collect();
        let mut builds = GroupBuilds::new(x.view(), &labels);
        let terms = builds.rows();
        assert!(terms >= x.iter().filter(|&&v| v != 0.0).count() / LANES);
        let mut z = Array2::zeros((21, 40));
        builds.product(w.view(), &bias, z.view_mut());
        let dense = x.dot(&w) + &ndarray::Array1::from(bias.clone());
        assert!((&z - &dense).iter().all(|e| e.abs() < 1e-3));

        let d = Array2::from_shape_fn((21, 40), |(i, j)| ((i * 3 + j) % 11) as f32 / 11.0 - 0.5);
        builds.columns();
        let mut g = Array2::zeros((70, 40));
        builds.product(d.view(), &bias, g.view_mut());
        let dense = x.t().dot(&d);
        assert!((&g - &dense).iter().all(|e| e.abs() < 1e-4));
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
