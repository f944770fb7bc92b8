//! Which kernels run: the portable ones or the AVX2/FMA ones, chosen at run time.
//!
//! The host's widest path is the default; [`force_simd`] overrides it so tests and benchmarks
//! can run every path on the same inputs and compare them.

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level of the t-SNE kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    /// Portable Rust, vectorised by the compiler for the baseline target only (SSE2 on
    /// x86-64): what a CPU without AVX2/FMA runs.
    Scalar,
    /// AVX2 and FMA intrinsics (8 f32 lanes).
    Avx2,
}

/// 0: detect; otherwise 1 + the forced level's index.
static FORCED: AtomicU8 = AtomicU8::new(0);

impl Simd {
    /// Every level, narrowest first.
    pub const ALL: [Simd; 2] = [Simd::Scalar, Simd::Avx2];

    /// Whether this CPU can run the level.
    pub fn available(self) -> bool {
        match self {
            Simd::Scalar => true,
            Simd::Avx2 => {
                #[cfg(target_arch = "x86_64")]
                {
                    std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    false
                }
            }
        }
    }

    /// The widest level this CPU runs.
    pub fn detect() -> Simd {
        if Simd::Avx2.available() {
            Simd::Avx2
        } else {
            Simd::Scalar
        }
    }

    /// The level new runs use: the forced one if any (and available), else [`Simd::detect`].
    pub fn current() -> Simd {
        match FORCED.load(Ordering::Relaxed) {
            1 => Simd::Scalar,
            2 if Simd::Avx2.available() => Simd::Avx2,
            _ => Simd::detect(),
        }
    }
}

/// Forces the kernels of runs started from now on to `level` (`None`: back to detection).
/// Process-wide: meant for tests and benchmarks that compare the paths. A level the CPU does
/// not support is ignored (detection applies).
pub fn force_simd(level: Option<Simd>) {
    let code = match level {
        None => 0,
        Some(Simd::Scalar) => 1,
        Some(Simd::Avx2) => 2,
    };
    FORCED.store(code, Ordering::Relaxed);
}
