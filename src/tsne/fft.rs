//! The repulsion by FFT-accelerated interpolation (FIt-SNE: Linderman, Rachh, Hoskins,
//! Steinerberger and Kluger, "Fast interpolation-based t-SNE for improved visualization of
//! single-cell RNA-seq data", Nature Methods 2019), following openTSNE 1.0's
//! `estimate_negative_gradient_fft_2d` (`openTSNE/_tsne.pyx`).
//!
//! The embedding's bounding square is cut into equispaced boxes of side at most
//! [`MAX_BOX_WIDTH`] (at least [`MIN_BOXES`] per side), each holding [`NODES`] x [`NODES`]
//! interpolation nodes at the centres of its sub-cells. With K(d) = 1 / (1 + d^2)^2, the four
//! sums phi_t(y_i) = sum_j K(|y_i - y_j|) c_t(y_j) over the charges c = (1, x, y, x^2 + y^2) give
//! both the repulsion sum_j w_ij^2 (y_i - y_j) = y_i phi_1 - (phi_2, phi_3) and the point's
//! share of Z, sum_j w_ij = sum_j w_ij^2 (1 + |y_i - y_j|^2) = (1 + |y_i|^2) phi_1 -
//! 2 y_i . (phi_2, phi_3) + phi_4 (one kernel serves all four, as openTSNE does for one degree
//! of freedom). Each point spreads its charges onto the 3 x 3 nodes of its box with Lagrange
//! weights; the node-to-node sums are a 2-D Toeplitz product, done as a circular convolution of
//! twice the grid's size by FFT (`rustfft`); each point reads its potentials back with the same
//! weights. Cost per iteration: O(n) plus an FFT over a grid that grows with the embedding's
//! spread, not with n, which is why Barnes-Hut stays faster on small inputs.
//!
//! Numerics: f64 throughout (the Z formula cancels large terms); coordinates are centred on the
//! bounding box first (the sums are translation-invariant), which keeps the cancellation small.
//! Two real grids are packed into one complex grid (the kernel is real, so the convolution of
//! a + ib is conv(a) + i conv(b)): two complex grids carry the four charges.
//!
//! Determinism: every parallel loop writes its own rows or points; charges are spread per row of
//! boxes, each row's points in index order: the result does not depend on the thread count.

use std::sync::Arc;

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::gradient::Forces;

type C64 = Complex<f64>;

/// Interpolation nodes per box side (openTSNE's `n_interpolation_points`).
pub const NODES: usize = 3;
/// Fewest boxes per side (openTSNE's `min_num_intervals`).
pub const MIN_BOXES: usize = 10;
/// Largest box side in embedding units (openTSNE's `ints_in_interval`).
pub const MAX_BOX_WIDTH: f64 = 1.0;
/// Most boxes per side (openTSNE's cap): beyond a spread of 1,000 the boxes widen instead, so
/// the grids stay within a few hundred MB.
pub const MAX_BOXES: usize = 1000;
/// Grid rows per parallel task.
const ROWS_PER_TASK: usize = 8;

/// Node positions in a unit box: the centres of its `NODES` sub-cells.
const fn node(k: usize) -> f64 {
    (k as f64 + 0.5) / NODES as f64
}

/// Lagrange weights of the `NODES` nodes at position `t` in a unit box.
#[inline]
fn lagrange(t: f64) -> [f64; NODES] {
    let mut w = [1.0; NODES];
    for (k, wk) in w.iter_mut().enumerate() {
        for m in 0..NODES {
            if m != k {
                *wk *= (t - node(m)) / (node(k) - node(m));
            }
        }
    }
    w
}

/// The smallest number at least `n` whose prime factors are 2, 3 and 5 (fast FFT lengths).
fn smooth_at_least(n: usize) -> usize {
    let mut m = n.max(1);
    loop {
        let mut r = m;
        for p in [2, 3, 5] {
            while r.is_multiple_of(p) {
                r /= p;
            }
        }
        if r == 1 {
            return m;
        }
        m += 1;
    }
}

/// One point's place on the grid: the first node of its box and the 3 + 3 weights.
#[derive(Debug, Clone, Copy, Default)]
struct Stencil {
    /// Index of the box's first node in a grid of row length `2 * side`.
    base: usize,
    wx: [f64; NODES],
    wy: [f64; NODES],
}

/// A reusable FIt-SNE workspace (grids, FFT plans, per-point stencils).
pub struct FftRepulsion {
    /// Largest box side ([`MAX_BOX_WIDTH`]; smaller in tests of the interpolation's order).
    max_box_width: f64,
    planner: FftPlanner<f64>,
    /// Per point: its stencil and centred coordinates.
    stencils: Vec<Stencil>,
    centred: Vec<[f64; 2]>,
    /// Points by box row (counting sort), and each box row's start in it.
    by_row: Vec<u32>,
    row_start: Vec<usize>,
    /// Node grids, `side` rows of length `2 side`: charges (1, x) and (y, x^2 + y^2) packed as
    /// complex numbers, then the potentials.
    grid_a: Vec<C64>,
    grid_b: Vec<C64>,
    /// The transposed spectra, `2 side` x `2 side`.
    spec_a: Vec<C64>,
    spec_b: Vec<C64>,
    /// The kernel's spectrum (real: the circulant kernel is even in both axes) and its
    /// workspace.
    kernel: Vec<C64>,
    kernel_t: Vec<C64>,
    kernel_hat: Vec<f64>,
}

impl std::fmt::Debug for FftRepulsion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FftRepulsion")
            .field("n", &self.stencils.len())
            .finish_non_exhaustive()
    }
}

impl FftRepulsion {
    /// A workspace for `n` points.
    pub fn new(n: usize) -> Self {
        Self {
            max_box_width: MAX_BOX_WIDTH,
            planner: FftPlanner::new(),
            stencils: vec![Stencil::default(); n],
            centred: vec![[0.0; 2]; n],
            by_row: vec![0; n],
            row_start: Vec::new(),
            grid_a: Vec::new(),
            grid_b: Vec::new(),
            spec_a: Vec::new(),
            spec_b: Vec::new(),
            kernel: Vec::new(),
            kernel_t: Vec::new(),
            kernel_hat: Vec::new(),
        }
    }

    /// Boxes per side for an embedding whose bounding square has side `span`, boxes of side
    /// at most `max_box_width`.
    pub fn boxes_for(span: f64, max_box_width: f64) -> usize {
        let wanted = (span / max_box_width).ceil().min(MAX_BOXES as f64) as usize;
        smooth_at_least(MIN_BOXES.max(wanted)).min(MAX_BOXES)
    }

    /// Repulsion for every point of `y` (n x 2, row-major) into `out[i][2..5]`: the
    /// unnormalised force sum_j w_ij^2 (y_i - y_j) and the point's share of Z, sum_{j != i} w_ij.
    pub fn compute(&mut self, y: &[f32], out: &mut [Forces]) {
        let n = y.len() / 2;
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for p in y.chunks_exact(2) {
            let (px, py) = (f64::from(p[0]), f64::from(p[1]));
            x0 = x0.min(px);
            x1 = x1.max(px);
            y0 = y0.min(py);
            y1 = y1.max(py);
        }
        let (lo, hi) = (x0.min(y0), x1.max(y1));
        let span = (hi - lo).max(1e-12);
        let boxes = Self::boxes_for(span, self.max_box_width);
        let box_width = span / boxes as f64;
        let side = boxes * NODES;
        let len = 2 * side;
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);

        // Stencils, in parallel (per point).
        let last = (boxes - 1) as f64;
        self.stencils
            .par_iter_mut()
            .zip(self.centred.par_iter_mut())
            .zip(y.par_chunks_exact(2))
            .with_min_len(1024)
            .for_each(|((s, c), p)| {
                let fx = (f64::from(p[0]) - lo) / box_width;
                let fy = (f64::from(p[1]) - lo) / box_width;
                let bx = fx.floor().clamp(0.0, last);
                let by = fy.floor().clamp(0.0, last);
                *s = Stencil {
                    base: (by as usize * NODES) * len + bx as usize * NODES,
                    wx: lagrange(fx - bx),
                    wy: lagrange(fy - by),
                };
                *c = [f64::from(p[0]) - cx, f64::from(p[1]) - cy];
            });

        // Points by box row (stable counting sort), so each row of boxes can spread its own
        // points into its own grid rows.
        self.row_start.clear();
        self.row_start.resize(boxes + 1, 0);
        let row_of = |s: &Stencil| s.base / len / NODES;
        for s in &self.stencils {
            self.row_start[row_of(s) + 1] += 1;
        }
        for r in 0..boxes {
            self.row_start[r + 1] += self.row_start[r];
        }
        let mut fill = self.row_start.clone();
        for (i, s) in self.stencils.iter().enumerate() {
            let r = row_of(s);
            self.by_row[fill[r]] = i as u32;
            fill[r] += 1;
        }

        // Spread the charges.
        let zero = C64::new(0.0, 0.0);
        self.grid_a.clear();
        self.grid_a.resize(side * len, zero);
        self.grid_b.clear();
        self.grid_b.resize(side * len, zero);
        {
            let (stencils, centred, by_row, row_start) =
                (&self.stencils, &self.centred, &self.by_row, &self.row_start);
            self.grid_a
                .par_chunks_mut(NODES * len)
                .zip(self.grid_b.par_chunks_mut(NODES * len))
                .enumerate()
                .for_each(|(r, (ga, gb))| {
                    let offset = r * NODES * len;
                    for &i in &by_row[row_start[r]..row_start[r + 1]] {
                        let s = &stencils[i as usize];
                        let [u, v] = centred[i as usize];
                        let (qa, qb) = (C64::new(1.0, u), C64::new(v, u * u + v * v));
                        for (b, &wy) in s.wy.iter().enumerate() {
                            let row = s.base - offset + b * len;
                            for (a, &wx) in s.wx.iter().enumerate() {
                                let w = wx * wy;
                                ga[row + a] += qa * w;
                                gb[row + a] += qb * w;
                            }
                        }
                    }
                });
        }

        // The kernel's spectrum: the circulant embedding of K over node offsets -side..side.
        let h = box_width / NODES as f64;
        let forward = self.planner.plan_fft_forward(len);
        let inverse = self.planner.plan_fft_inverse(len);
        self.kernel.resize(len * len, zero);
        self.kernel_t.resize(len * len, zero);
        self.kernel
            .par_chunks_mut(len)
            .enumerate()
            .for_each(|(r, row)| {
                let dr = if r <= side { r } else { len - r } as f64 * h;
                for (c, k) in row.iter_mut().enumerate() {
                    let dc = if c <= side { c } else { len - c } as f64 * h;
                    let d = 1.0 + dr * dr + dc * dc;
                    *k = C64::new(1.0 / (d * d), 0.0);
                }
            });
        rows_fft(&forward, &mut self.kernel, len, len);
        transpose(&self.kernel, &mut self.kernel_t, len, len);
        rows_fft(&forward, &mut self.kernel_t, len, len);
        self.kernel_hat.clear();
        self.kernel_hat.extend(self.kernel_t.iter().map(|k| k.re));

        // Convolve both charge grids: FFT over rows (only the `side` non-zero ones), transpose,
        // FFT over rows again, times the kernel, and back.
        let scale = 1.0 / (len * len) as f64;
        for (grid, spec) in [
            (&mut self.grid_a, &mut self.spec_a),
            (&mut self.grid_b, &mut self.spec_b),
        ] {
            rows_fft(&forward, grid, len, side);
            spec.resize(len * len, zero);
            transpose(grid, spec, side, len);
            rows_fft(&forward, spec, len, len);
            spec.par_chunks_mut(len)
                .zip(self.kernel_hat.par_chunks(len))
                .for_each(|(s, k)| {
                    for (v, &kv) in s.iter_mut().zip(k) {
                        *v *= kv * scale;
                    }
                });
            rows_fft(&inverse, spec, len, len);
            transpose_back(spec, grid, side, len);
            rows_fft(&inverse, grid, len, side);
        }

        // Read the potentials back.
        let (stencils, centred, ga, gb) =
            (&self.stencils, &self.centred, &self.grid_a, &self.grid_b);
        out.par_iter_mut()
            .enumerate()
            .with_min_len(1024)
            .for_each(|(i, f)| {
                let s = &stencils[i];
                let (mut pa, mut pb) = (zero, zero);
                for (b, &wy) in s.wy.iter().enumerate() {
                    let row = s.base + b * len;
                    for (a, &wx) in s.wx.iter().enumerate() {
                        let w = wx * wy;
                        pa += ga[row + a] * w;
                        pb += gb[row + a] * w;
                    }
                }
                let [u, v] = centred[i];
                let (phi1, phi2, phi3, phi4) = (pa.re, pa.im, pb.re, pb.im);
                f[2] = (u * phi1 - phi2) as f32;
                f[3] = (v * phi1 - phi3) as f32;
                // The point itself contributes K(0) = 1.
                let z = (1.0 + u * u + v * v) * phi1 - 2.0 * (u * phi2 + v * phi3) + phi4 - 1.0;
                f[4] = z as f32;
            });
        debug_assert_eq!(n, out.len());
    }
}

/// In-place FFT of the first `rows` rows (length `len`) of `grid`, in parallel.
fn rows_fft(plan: &Arc<dyn Fft<f64>>, grid: &mut [C64], len: usize, rows: usize) {
    let scratch_len = plan.get_inplace_scratch_len();
    grid[..rows * len]
        .par_chunks_mut(len * ROWS_PER_TASK)
        .for_each_init(
            || vec![C64::new(0.0, 0.0); scratch_len],
            |scratch, chunk| plan.process_with_scratch(chunk, scratch),
        );
}

/// `dst` (len x len) = the transpose of `src` (`rows` x len), rows `rows..len` of `src` taken
/// as zero.
fn transpose(src: &[C64], dst: &mut [C64], rows: usize, len: usize) {
    dst.par_chunks_mut(len * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(t, block)| {
            let c0 = t * ROWS_PER_TASK;
            for (k, out) in block.chunks_mut(len).enumerate() {
                let c = c0 + k;
                for (r, o) in out[..rows].iter_mut().enumerate() {
                    *o = src[r * len + c];
                }
                out[rows..].fill(C64::new(0.0, 0.0));
            }
        });
}

/// The first `rows` rows of the transpose of `src` (len x len) into `dst` (`rows` x len).
fn transpose_back(src: &[C64], dst: &mut [C64], rows: usize, len: usize) {
    dst[..rows * len]
        .par_chunks_mut(len * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(t, block)| {
            let r0 = t * ROWS_PER_TASK;
            for (k, out) in block.chunks_mut(len).enumerate() {
                let r = r0 + k;
                for (c, o) in out.iter_mut().enumerate() {
                    *o = src[c * len + r];
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lagrange_weights_reproduce_quadratics() {
        for t in [0.0, 0.1, 0.5, 0.77, 1.0] {
            let w = lagrange(t);
            let at = |f: &dyn Fn(f64) -> f64| (0..NODES).map(|k| w[k] * f(node(k))).sum::<f64>();
            assert!((at(&|_| 1.0) - 1.0).abs() < 1e-12);
            assert!((at(&|x| x) - t).abs() < 1e-12);
            assert!((at(&|x| 3.0 * x * x - x) - (3.0 * t * t - t)).abs() < 1e-12);
        }
    }

    #[test]
    fn grid_sizes_are_smooth() {
        assert_eq!(smooth_at_least(1), 1);
        assert_eq!(smooth_at_least(7), 8);
        assert_eq!(smooth_at_least(31), 32);
        assert_eq!(smooth_at_least(121), 125);
        assert_eq!(FftRepulsion::boxes_for(0.5, MAX_BOX_WIDTH), MIN_BOXES);
        assert_eq!(FftRepulsion::boxes_for(97.2, MAX_BOX_WIDTH), 100);
        assert_eq!(FftRepulsion::boxes_for(97.2, 0.25), 400);
        assert_eq!(FftRepulsion::boxes_for(1e9, MAX_BOX_WIDTH), MAX_BOXES);
    }

    /// The repulsion by its definition, in f64.
    fn direct(y: &[f32]) -> Vec<[f64; 3]> {
        let n = y.len() / 2;
        (0..n)
            .map(|i| {
                let mut f = [0f64; 3];
                for j in (0..n).filter(|&j| j != i) {
                    let dx = f64::from(y[2 * i]) - f64::from(y[2 * j]);
                    let dy = f64::from(y[2 * i + 1]) - f64::from(y[2 * j + 1]);
                    let w = 1.0 / (1.0 + dx * dx + dy * dy);
                    f[0] += w * w * dx;
                    f[1] += w * w * dy;
                    f[2] += w;
                }
                f
            })
            .collect()
    }

    fn errors(y: &[f32], max_box_width: f64) -> (f64, f64) {
        let n = y.len() / 2;
        let mut out = vec![[0f32; 5]; n];
        let mut fft = FftRepulsion::new(n);
        fft.max_box_width = max_box_width;
        fft.compute(y, &mut out);
        let want = direct(y);
        let (mut df, mut nf, mut dz, mut nz) = (0f64, 0f64, 0f64, 0f64);
        for (o, w) in out.iter().zip(&want) {
            df += (f64::from(o[2]) - w[0]).powi(2) + (f64::from(o[3]) - w[1]).powi(2);
            nf += w[0] * w[0] + w[1] * w[1];
            dz += (f64::from(o[4]) - w[2]).powi(2);
            nz += w[2] * w[2];
        }
        ((df / nf).sqrt(), (dz / nz).sqrt())
    }

    #[test]
    fn repulsion_matches_the_direct_sum() {
        // Clumps and gaps, spread over ~40 units (40 boxes a side) and over ~4 (the minimum 10
        // boxes), off-centre.
        for scale in [1.0f32, 0.1] {
            let y: Vec<f32> = (0..700)
                .flat_map(|i| {
                    let c = (i % 7) as f32;
                    let r = ((i * 37) % 101) as f32 / 101.0;
                    let a = (i as f32) * 2.399;
                    [
                        scale * (5.0 * c + 3.0 * r * a.cos()) + 100.0,
                        scale * (-4.0 * c + 3.0 * r * a.sin()) - 7.0,
                    ]
                })
                .collect();
            // openTSNE's grid (3 nodes per box of side 1): about 2% on the forces, the accuracy
            // of Barnes-Hut at theta 0.5.
            let (ef, ez) = errors(&y, MAX_BOX_WIDTH);
            assert!(ef < 0.04, "scale {scale}: force error {ef}");
            assert!(ez < 0.01, "scale {scale}: Z error {ez}");
            // Quadratic interpolation: boxes a quarter as wide cut the error by far more than 4
            // (a wrong stencil, node or kernel offset would not converge).
            let (ff, fz) = errors(&y, MAX_BOX_WIDTH / 4.0);
            assert!(
                ff < ef / 8.0,
                "scale {scale}: force error {ff} with finer boxes"
            );
            assert!(
                fz < ez / 8.0 + 1e-9,
                "scale {scale}: Z error {fz} with finer boxes"
            );
        }
    }
}
