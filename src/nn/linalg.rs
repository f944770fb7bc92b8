//! The one matrix product the engine uses, so that the GEMM routine is chosen in one place.
//!
//! Two routines are wired in: the `gemm` crate (rayon-parallel, AVX-512/AVX2 kernels picked at
//! run time) and ndarray's `matrixmultiply` (AVX2 kernels, its own threads). `gemm` is the
//! default; the benchmark can switch to compare them.

use std::sync::atomic::{AtomicU8, Ordering};

use ndarray::{ArrayView2, ArrayViewMut2};

/// A matrix-product routine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmBackend {
    /// The `gemm` crate, parallel over rayon's threads.
    Gemm,
    /// ndarray's `general_mat_mul` (the `matrixmultiply` crate with its threading feature).
    MatrixMultiply,
}

/// The fewest multiply-adds (`m * n * k`) a product splits over threads for.
const PARALLEL_PRODUCT: usize = 1 << 20;

static BACKEND: AtomicU8 = AtomicU8::new(0);

/// Choose the routine for every later product in this process (for benchmarks).
pub fn set_gemm_backend(backend: GemmBackend) {
    BACKEND.store(
        match backend {
            GemmBackend::Gemm => 0,
            GemmBackend::MatrixMultiply => 1,
        },
        Ordering::Relaxed,
    );
}

/// The routine in use.
pub fn gemm_backend() -> GemmBackend {
    match BACKEND.load(Ordering::Relaxed) {
        0 => GemmBackend::Gemm,
        _ => GemmBackend::MatrixMultiply,
    }
}

/// `c = alpha * a @ b + beta * c` in f32. Views may be transposed (any strides).
///
/// Each element of `c` is summed over `k` in an order that does not depend on how many threads
/// run: both routines split the work over blocks of rows and columns of `c`, never over `k`
/// (`tests/nn.rs` checks that training gives the same weights on 1, 2 and 3 threads).
pub fn gemm(
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    mut c: ArrayViewMut2<f32>,
) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert!(
        k == k2 && c.dim() == (m, n),
        "gemm shapes: ({m}, {k}) @ ({k2}, {n}) into {:?}",
        c.dim()
    );
    match gemm_backend() {
        GemmBackend::MatrixMultiply => {
            ndarray::linalg::general_mat_mul(alpha, &a, &b, beta, &mut c);
        }
        GemmBackend::Gemm => {
            if m == 0 || n == 0 {
                return;
            }
            let threads = rayon::current_num_threads();
            // Products under about a million multiply-adds (a training step's output-layer
            // products: 200 x 10 x 256) take tens of microseconds on one core; split over
            // threads, they wait for a second core (on a loaded machine, for a time slice)
            // for less work than the hand-off costs.
            let parallelism = if threads > 1 && m * n * k >= PARALLEL_PRODUCT {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            };
            let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
            let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
            let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
            // SAFETY: the pointers and strides come from live ndarray views of the stated
            // shapes (checked above), `c` is borrowed mutably and cannot alias `a` or `b`.
            // The gemm crate computes dst := alpha * dst + beta * lhs @ rhs.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    c_cs,
                    c_rs,
                    beta != 0.0,
                    a.as_ptr(),
                    a_cs,
                    a_rs,
                    b.as_ptr(),
                    b_cs,
                    b_rs,
                    beta,
                    alpha,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        }
    }
}
