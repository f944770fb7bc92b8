//! Adam (Kingma and Ba 2015) as scikit-learn's `AdamOptimizer._get_updates` applies it, and the
//! sum of squared weights (the L2 penalty's), which the same pass over the weights yields.

use ndarray::{Array1, Array2};
use rayon::prelude::*;

use super::Mlp;

/// Elements per chunk of the parallel passes over the parameters (Adam, the sum of squares):
/// fixed, so that every sum is split the same way whatever the thread count.
const CHUNK: usize = 1 << 14;

/// Independent f64 accumulators of a sum of squares within a chunk (element `i` of the chunk
/// goes to `i % SQ_LANES`), so that the sum vectorises; they are added in order at the end.
const SQ_LANES: usize = 32;

/// Adam's hyper-parameters (scikit-learn's `learning_rate_init`, `beta_1`, `beta_2`,
/// `epsilon`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AdamParams {
    pub learning_rate: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
}

/// Adam's moments for every parameter, and its step count (`t` in Kingma and Ba 2015).
#[derive(Debug, Clone)]
pub(crate) struct Adam {
    m_coefs: Vec<Array2<f32>>,
    v_coefs: Vec<Array2<f32>>,
    m_intercepts: Vec<Array1<f32>>,
    v_intercepts: Vec<Array1<f32>>,
    t: i32,
}

impl Adam {
    /// Zero moments for the parameters of `mlp`.
    pub(crate) fn new(mlp: &Mlp) -> Adam {
        let zeros2 = |c: &Array2<f32>| Array2::zeros(c.raw_dim());
        let zeros1 = |c: &Array1<f32>| Array1::zeros(c.raw_dim());
        Adam {
            m_coefs: mlp.coefs.iter().map(zeros2).collect(),
            v_coefs: mlp.coefs.iter().map(zeros2).collect(),
            m_intercepts: mlp.intercepts.iter().map(zeros1).collect(),
            v_intercepts: mlp.intercepts.iter().map(zeros1).collect(),
            t: 0,
        }
    }

    /// One step on every weight and bias of `mlp` with these gradients:
    /// `m = beta1 m + (1 - beta1) g`, `v = beta2 v + (1 - beta2) g^2`,
    /// `p -= lr_t m / (sqrt(v) + epsilon)` with `lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)`.
    /// Where `penalties[i]` is `Some(a)`, the gradient of weight matrix `i` is
    /// `a * W + coef_grads[i]` (the L2 term added here, as the weights are read: the same
    /// number as a gradient that held it).
    /// Returns the sum of squares of the updated weights (biases excluded), as
    /// `sum_squared_weights` would compute it.
    pub(crate) fn step(
        &mut self,
        mlp: &mut Mlp,
        coef_grads: &[Array2<f32>],
        penalties: &[Option<f32>],
        intercept_grads: &[Array1<f32>],
        h: &AdamParams,
    ) -> f64 {
        self.t += 1;
        let (b1, b2) = (f64::from(h.beta1), f64::from(h.beta2));
        // AdamOptimizer: learning_rate_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t), in f64.
        let learning_rate = (f64::from(h.learning_rate) * (1.0 - b2.powi(self.t)).sqrt()
            / (1.0 - b1.powi(self.t))) as f32;
        let h = AdamParams {
            learning_rate,
            ..*h
        };
        let mut sum_sq = 0.0;
        for i in 0..mlp.coefs.len() {
            sum_sq += update(
                mlp.coefs[i].as_slice_mut().expect("standard layout"),
                coef_grads[i].as_slice().expect("standard layout"),
                self.m_coefs[i].as_slice_mut().expect("standard layout"),
                self.v_coefs[i].as_slice_mut().expect("standard layout"),
                &h,
                penalties.get(i).copied().flatten(),
            );
            let _ = update(
                mlp.intercepts[i].as_slice_mut().expect("standard layout"),
                intercept_grads[i].as_slice().expect("standard layout"),
                self.m_intercepts[i]
                    .as_slice_mut()
                    .expect("standard layout"),
                self.v_intercepts[i]
                    .as_slice_mut()
                    .expect("standard layout"),
                &h,
                None,
            );
        }
        sum_sq
    }
}

/// Sum of squared weights (biases excluded), in f64, summed over fixed chunks then in order:
/// the same value whatever the thread count, and the same as `Adam::step` returns.
pub(crate) fn sum_squared_weights(mlp: &Mlp) -> f64 {
    mlp.coefs
        .iter()
        .map(|c| {
            let flat = c.as_slice().expect("weights in standard layout");
            let partials: Vec<f64> = flat.par_chunks(CHUNK).map(sum_squares_chunk).collect();
            partials.iter().sum::<f64>()
        })
        .sum()
}

/// Sum of squares of one chunk, in f64, in `SQ_LANES` partial sums added in order.
fn sum_squares_chunk(chunk: &[f32]) -> f64 {
    let mut acc = [0.0f64; SQ_LANES];
    let mut blocks = chunk.chunks_exact(SQ_LANES);
    for b in &mut blocks {
        for (a, &w) in acc.iter_mut().zip(b) {
            *a += f64::from(w) * f64::from(w);
        }
    }
    for (a, &w) in acc.iter_mut().zip(blocks.remainder()) {
        *a += f64::from(w) * f64::from(w);
    }
    acc.iter().sum()
}

/// One Adam step on `param`, element by element, in parallel over fixed chunks (`h` holds the
/// bias-corrected step size; the gradient is `penalty * param + grad` when `penalty` is
/// given). Returns the sum of squares of the updated `param`, summed as `sum_squared_weights`
/// does.
fn update(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamParams,
    penalty: Option<f32>,
) -> f64 {
    let partials: Vec<f64> = param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .map(|(((p, g), m), v)| update_chunk(p, g, m, v, h, penalty))
        .collect();
    partials.iter().sum()
}

/// Adam on one chunk, built for the widest vector unit the CPU has (the same arithmetic, no
/// fused operations, so every build gives the same numbers).
fn update_chunk(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamParams,
    penalty: Option<f32>,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the feature the function is built for (checked above).
            return unsafe { update_chunk_avx512(p, g, m, v, h, penalty) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe {
                match penalty {
                    Some(a) => update_chunk_avx2::<true>(p, g, m, v, h, a),
                    None => update_chunk_avx2::<false>(p, g, m, v, h, 0.0),
                }
            };
        }
    }
    update_chunk_generic(p, g, m, v, h, penalty)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn update_chunk_avx512(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamParams,
    penalty: Option<f32>,
) -> f64 {
    update_chunk_generic(p, g, m, v, h, penalty)
}

/// Adam on one chunk with AVX2, eight parameters per instruction: the generic loop's
/// operations in its order (multiplies and adds, never fused), so the same numbers; LLVM
/// vectorised that loop only four wide, the width of the f64 sum of squares. With `PENALTY`,
/// the gradient is `a * p + g`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_chunk_avx2<const PENALTY: bool>(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamParams,
    a: f32,
) -> f64 {
    use std::arch::x86_64::{
        __m256d, _mm256_add_pd, _mm256_add_ps, _mm256_castps256_ps128, _mm256_cvtps_pd,
        _mm256_div_ps, _mm256_extractf128_ps, _mm256_loadu_ps, _mm256_mul_pd, _mm256_mul_ps,
        _mm256_set1_ps, _mm256_setzero_pd, _mm256_sqrt_ps, _mm256_storeu_pd, _mm256_storeu_ps,
        _mm256_sub_ps,
    };
    let n = p.len();
    assert!(g.len() == n && m.len() == n && v.len() == n);
    let main = n - n % SQ_LANES;
    let b1 = _mm256_set1_ps(h.beta1);
    let c1 = _mm256_set1_ps(1.0 - h.beta1);
    let b2 = _mm256_set1_ps(h.beta2);
    let c2 = _mm256_set1_ps(1.0 - h.beta2);
    let lr = _mm256_set1_ps(h.learning_rate);
    let eps = _mm256_set1_ps(h.epsilon);
    let av = _mm256_set1_ps(a);
    // acc[2k] holds lanes 8k..8k+4 of a block of SQ_LANES, acc[2k + 1] lanes 8k+4..8k+8.
    let mut acc: [__m256d; SQ_LANES / 4] = [_mm256_setzero_pd(); SQ_LANES / 4];
    let (pp, gp, mp, vp) = (p.as_mut_ptr(), g.as_ptr(), m.as_mut_ptr(), v.as_mut_ptr());
    let mut i = 0;
    while i < main {
        for k in 0..SQ_LANES / 8 {
            let at = i + 8 * k;
            // SAFETY: at + 8 <= main <= n, the length of all four slices (asserted above).
            unsafe {
                let old = _mm256_loadu_ps(pp.add(at));
                let gv = if PENALTY {
                    _mm256_add_ps(_mm256_mul_ps(av, old), _mm256_loadu_ps(gp.add(at)))
                } else {
                    _mm256_loadu_ps(gp.add(at))
                };
                let mv = _mm256_add_ps(
                    _mm256_mul_ps(b1, _mm256_loadu_ps(mp.add(at))),
                    _mm256_mul_ps(c1, gv),
                );
                let vv = _mm256_add_ps(
                    _mm256_mul_ps(b2, _mm256_loadu_ps(vp.add(at))),
                    _mm256_mul_ps(_mm256_mul_ps(c2, gv), gv),
                );
                let step = _mm256_div_ps(
                    _mm256_mul_ps(lr, mv),
                    _mm256_add_ps(_mm256_sqrt_ps(vv), eps),
                );
                let pv = _mm256_sub_ps(old, step);
                _mm256_storeu_ps(mp.add(at), mv);
                _mm256_storeu_ps(vp.add(at), vv);
                _mm256_storeu_ps(pp.add(at), pv);
                let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(pv));
                let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(pv));
                acc[2 * k] = _mm256_add_pd(acc[2 * k], _mm256_mul_pd(lo, lo));
                acc[2 * k + 1] = _mm256_add_pd(acc[2 * k + 1], _mm256_mul_pd(hi, hi));
            }
        }
        i += SQ_LANES;
    }
    let mut lanes = [0.0f64; SQ_LANES];
    for (k, a) in acc.iter().enumerate() {
        // SAFETY: lanes has room for SQ_LANES / 4 blocks of 4 doubles.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr().add(4 * k), *a) };
    }
    // The tail, and the lanes summed in order, as the generic loop does.
    update_tail(p, g, m, v, h, PENALTY.then_some(a), main, &mut lanes)
}

/// Adam on `p[main..]` (shorter than `SQ_LANES`), each new value's square added to its lane of
/// `lanes`; the lanes' sum in order. The tail of both chunk loops, so that they agree bit for bit.
#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "the chunk loops' own state, handed over as it is"
)]
fn update_tail(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamParams,
    penalty: Option<f32>,
    main: usize,
    lanes: &mut [f64; SQ_LANES],
) -> f64 {
    for (j, (((p, &g), m), v)) in p[main..]
        .iter_mut()
        .zip(&g[main..])
        .zip(&mut m[main..])
        .zip(&mut v[main..])
        .enumerate()
    {
        adam_one(p, with_penalty(g, *p, penalty), m, v, h);
        lanes[j] += f64::from(*p) * f64::from(*p);
    }
    lanes.iter().sum()
}

/// The gradient of a parameter of value `p` whose gradient without the L2 term is `g`:
/// `a * p + g` (the order a gradient that held the term was computed in).
#[inline(always)]
fn with_penalty(g: f32, p: f32, penalty: Option<f32>) -> f32 {
    match penalty {
        Some(a) => a * p + g,
        None => g,
    }
}

/// Adam on one parameter (scikit-learn's `_get_updates`, bias correction in `h.learning_rate`).
#[inline(always)]
fn adam_one(p: &mut f32, g: f32, m: &mut f32, v: &mut f32, h: &AdamParams) {
    *m = h.beta1 * *m + (1.0 - h.beta1) * g;
    *v = h.beta2 * *v + (1.0 - h.beta2) * g * g;
    *p -= h.learning_rate * *m / (v.sqrt() + h.epsilon);
}

#[inline(always)]
fn update_chunk_generic(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamParams,
    penalty: Option<f32>,
) -> f64 {
    let n = p.len();
    assert!(g.len() == n && m.len() == n && v.len() == n);
    // The sum of squares of the new values, accumulated as `sum_squares_chunk` does.
    let mut acc = [0.0f64; SQ_LANES];
    let main = n - n % SQ_LANES;
    for (((p, g), m), v) in p[..main]
        .chunks_exact_mut(SQ_LANES)
        .zip(g.chunks_exact(SQ_LANES))
        .zip(m.chunks_exact_mut(SQ_LANES))
        .zip(v.chunks_exact_mut(SQ_LANES))
    {
        for j in 0..SQ_LANES {
            let g = with_penalty(g[j], p[j], penalty);
            adam_one(&mut p[j], g, &mut m[j], &mut v[j], h);
            acc[j] += f64::from(p[j]) * f64::from(p[j]);
        }
    }
    update_tail(p, g, m, v, h, penalty, main, &mut acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2};

    /// The AVX2 build of a chunk's step gives the generic loop's numbers bit for bit (the
    /// parameters, both moments and the sum of squares), on a length with a tail, with and
    /// without the L2 term added to the gradient; and the term added there is the same as
    /// added to the gradient beforehand.
    #[test]
    fn avx2_chunk_equals_generic() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let n = 3 * SQ_LANES + 13;
            let wave = |i: usize, f: f32| ((i as f32 * f).sin() * 0.7).powi(3);
            let start: Vec<[f32; 4]> = (0..n)
                .map(|i| {
                    [
                        wave(i, 0.37),
                        wave(i, 1.3),
                        wave(i, 0.71) * 0.1,
                        wave(i, 0.23).abs(),
                    ]
                })
                .collect();
            let h = AdamParams {
                learning_rate: 0.0031,
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            };
            let run = |avx2: bool, penalty: Option<f32>, folded: bool| {
                let mut p: Vec<f32> = start.iter().map(|s| s[0]).collect();
                let mut g: Vec<f32> = start.iter().map(|s| s[1]).collect();
                let mut m: Vec<f32> = start.iter().map(|s| s[2]).collect();
                let mut v: Vec<f32> = start.iter().map(|s| s[3]).collect();
                let mut sums = Vec::new();
                let raw = g.clone();
                for _ in 0..3 {
                    let mut penalty = penalty;
                    if folded && let Some(a) = penalty.take() {
                        for ((g, &r), &p) in g.iter_mut().zip(&raw).zip(&p) {
                            *g = a * p + r;
                        }
                    }
                    sums.push(match (avx2, penalty) {
                        // SAFETY: the CPU has AVX2 (checked above).
                        (true, Some(a)) => unsafe {
                            update_chunk_avx2::<true>(&mut p, &g, &mut m, &mut v, &h, a)
                        },
                        // SAFETY: as above.
                        (true, None) => unsafe {
                            update_chunk_avx2::<false>(&mut p, &g, &mut m, &mut v, &h, 0.0)
                        },
                        (false, _) => update_chunk_generic(&mut p, &g, &mut m, &mut v, &h, penalty),
                    });
                }
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                let sums: Vec<u64> = sums.iter().map(|s| s.to_bits()).collect();
                (bits(&p), bits(&m), bits(&v), sums)
            };
            assert_eq!(run(true, None, false), run(false, None, false));
            let penalised = run(false, Some(0.0007), false);
            assert_eq!(run(true, Some(0.0007), false), penalised);
            assert_eq!(run(false, Some(0.0007), true), penalised);
            assert_ne!(penalised, run(false, None, false), "the term counts");
        }
    }

    /// Two steps against scikit-learn 1.9.1's own `AdamOptimizer` on float32 arrays, printed
    /// once in Python:
    ///
    /// ```python
    /// from sklearn.neural_network._stochastic_optimizers import AdamOptimizer
    /// p = [np.array([[0.5, -0.25], [1.0, 0.0]], np.float32), np.array([0.1, -0.2], np.float32)]
    /// opt = AdamOptimizer(p, learning_rate_init=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    /// opt.update_params(p, g1); print(p); opt.update_params(p, g2); print(p)
    /// ```
    ///
    /// The first step moves every parameter with a non-zero gradient by exactly the step size
    /// against its gradient's sign (m / sqrt(v) = sign(g) after bias correction); a zero
    /// gradient leaves its parameter alone. The second is where the moments' history shows.
    #[test]
    fn two_steps_match_scikit_learn() {
        let mut mlp = Mlp {
            coefs: vec![arr2(&[[0.5f32, -0.25], [1.0, 0.0]])],
            intercepts: vec![arr1(&[0.1f32, -0.2])],
            activation: crate::nn::Activation::Relu,
            softmax: true,
        };
        let h = AdamParams {
            learning_rate: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        };
        let mut adam = Adam::new(&mlp);
        let g1 = (arr2(&[[0.2f32, -0.4], [0.0, 3.0]]), arr1(&[-0.05f32, 0.5]));
        let sum_sq = adam.step(&mut mlp, &[g1.0], &[None], &[g1.1], &h);
        let close = |a: f32, b: f32| (a - b).abs() <= 2.0 * f32::EPSILON * b.abs().max(1e-3);
        let after_one = [0.49f32, -0.240_000_01, 1.0, -0.01];
        for (a, b) in mlp.coefs[0].iter().zip(after_one) {
            assert!(close(*a, b), "step 1: {a} vs scikit-learn {b}");
        }
        for (a, b) in mlp.intercepts[0].iter().zip([0.109_999_94f32, -0.21]) {
            assert!(close(*a, b), "step 1 bias: {a} vs scikit-learn {b}");
        }
        let direct: f64 = after_one.iter().map(|&w| f64::from(w).powi(2)).sum();
        assert!((sum_sq - direct).abs() < 1e-6, "{sum_sq} vs {direct}");

        let g2 = (
            arr2(&[[-0.1f32, -0.4], [0.25, -2.0]]),
            arr1(&[0.05f32, 0.0]),
        );
        adam.step(&mut mlp, &[g2.0], &[None], &[g2.1], &h);
        let after_two = [0.487_336_64f32, -0.230_000_02, 0.992_558_66, -0.011_445_205];
        for (a, b) in mlp.coefs[0].iter().zip(after_two) {
            assert!(close(*a, b), "step 2: {a} vs scikit-learn {b}");
        }
        for (a, b) in mlp.intercepts[0]
            .iter()
            .zip([0.109_473_62f32, -0.216_700_57])
        {
            assert!(close(*a, b), "step 2 bias: {a} vs scikit-learn {b}");
        }
    }
}
