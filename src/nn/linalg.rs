//! The one matrix product the engine uses, so that the GEMM routine can be swapped in one place.

use ndarray::{ArrayView2, ArrayViewMut2};

/// `c = alpha * a @ b + beta * c` in f32. Views may be transposed (any strides).
///
/// Each element of `c` is summed over `k` in an order that does not depend on how many threads
/// run: the routine splits the work over rows and columns of `c`, never over `k`.
pub fn gemm(alpha: f32, a: ArrayView2<f32>, b: ArrayView2<f32>, beta: f32, c: ArrayViewMut2<f32>) {
    let mut c = c;
    ndarray::linalg::general_mat_mul(alpha, &a, &b, beta, &mut c);
}
