//! Input affinities P: per-point Gaussian bandwidths by binary search on perplexity, then the
//! symmetric joint distribution.
//!
//! Follows scikit-learn 1.9: `_binary_search_perplexity` in `sklearn/manifold/_utils.pyx` and
//! `_joint_probabilities` / `_joint_probabilities_nn` in `sklearn/manifold/_t_sne.py`.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::neighbours::Knn;

/// `_utils.pyx`: `EPSILON_DBL`, the floor of a row's normaliser.
const EPSILON_DBL: f64 = 1e-8;
/// `_utils.pyx`: `PERPLEXITY_TOLERANCE` (a C float there, hence the f32 round trip).
const PERPLEXITY_TOLERANCE: f64 = 1e-5_f32 as f64;
/// `_utils.pyx`: at most 100 bisection steps.
const N_STEPS: usize = 100;
/// `_t_sne.py`: `MACHINE_EPSILON = np.finfo(np.double).eps`.
pub const MACHINE_EPSILON: f64 = f64::EPSILON;

/// The joint probabilities in the form the optimiser uses.
#[derive(Debug, Clone)]
pub enum Affinities {
    /// Nearest-neighbour P (scikit-learn's Barnes-Hut path), symmetric CSR.
    Sparse(SparseP),
    /// All-pairs P (scikit-learn's exact path), n x n with a zero diagonal.
    Dense(Array2<f32>),
}

/// A symmetric sparse P in CSR form; rows sum to the point's share, all entries to 1.
#[derive(Debug, Clone)]
pub struct SparseP {
    /// Row starts into `indices`/`values`, n + 1 entries.
    pub indptr: Vec<usize>,
    /// Column of each stored entry, ascending within a row.
    pub indices: Vec<u32>,
    /// p_ij of each stored entry.
    pub values: Vec<f32>,
}

impl SparseP {
    /// Number of points.
    pub fn n(&self) -> usize {
        self.indptr.len() - 1
    }
}

/// Calibrates one point's conditional distribution over `d2` (squared distances to the
/// candidates), writing p_{j|i} into `p` and returning the precision beta found.
/// `skip` is the position of the point itself in `d2` (exact path), left at zero.
pub fn binary_search_row(d2: &[f32], perplexity: f64, skip: Option<usize>, p: &mut [f64]) -> f64 {
    let desired_entropy = perplexity.ln();
    // Distances are taken relative to the nearest candidate: the same p_j|i and entropy as
    // scikit-learn's in exact arithmetic, but exp() cannot underflow to an all-zero row when
    // every distance is large (scikit-learn then falls back on EPSILON_DBL and misses the
    // target perplexity).
    let d_min = d2
        .iter()
        .enumerate()
        .filter(|&(j, _)| Some(j) != skip)
        .map(|(_, &d)| f64::from(d))
        .fold(f64::INFINITY, f64::min);
    if let Some(s) = skip {
        p[s] = 0.0;
    }
    let mut beta_min = f64::NEG_INFINITY;
    let mut beta_max = f64::INFINITY;
    let mut beta = 1.0f64;
    for _ in 0..N_STEPS {
        let mut sum_p = 0.0;
        for (j, (pj, &d)) in p.iter_mut().zip(d2).enumerate() {
            if Some(j) != skip {
                *pj = (-(f64::from(d) - d_min) * beta).exp();
                sum_p += *pj;
            }
        }
        if sum_p == 0.0 {
            sum_p = EPSILON_DBL;
        }
        let mut sum_disti_p = 0.0;
        for (j, (pj, &d)) in p.iter_mut().zip(d2).enumerate() {
            if Some(j) != skip {
                *pj /= sum_p;
                sum_disti_p += (f64::from(d) - d_min) * *pj;
            }
        }
        let entropy = sum_p.ln() + beta * sum_disti_p;
        let entropy_diff = entropy - desired_entropy;
        if entropy_diff.abs() <= PERPLEXITY_TOLERANCE {
            break;
        }
        if entropy_diff > 0.0 {
            beta_min = beta;
            beta = if beta_max == f64::INFINITY {
                beta * 2.0
            } else {
                (beta + beta_max) / 2.0
            };
        } else {
            beta_max = beta;
            beta = if beta_min == f64::NEG_INFINITY {
                beta / 2.0
            } else {
                (beta + beta_min) / 2.0
            };
        }
    }
    beta
}

/// Conditional P over each point's k nearest neighbours, n x k row-major, stored as f32 as
/// scikit-learn returns it.
pub fn conditional_p(knn: &Knn, perplexity: f64) -> Vec<f32> {
    let k = knn.k;
    let n = knn.d2.len() / k.max(1);
    let mut cond = vec![0f32; n * k];
    if k == 0 {
        return cond;
    }
    cond.par_chunks_mut(k)
        .zip(knn.d2.par_chunks(k))
        .with_min_len(64)
        .for_each_init(
            || vec![0f64; k],
            |buf, (out, d2)| {
                binary_search_row(d2, perplexity, None, buf);
                for (o, &p) in out.iter_mut().zip(buf.iter()) {
                    *o = p as f32;
                }
            },
        );
    cond
}

/// `_joint_probabilities_nn`: P = (P_cond + P_cond^T) / sum, sparse, no floor.
pub fn sparse_p(knn: &Knn, perplexity: f64) -> SparseP {
    let k = knn.k;
    let n = knn.d2.len() / k.max(1);
    let cond = conditional_p(knn, perplexity);
    // Both (i, j) and (j, i) for every stored p_{j|i}; duplicates are summed below.
    let mut triplets: Vec<(u32, u32, f32)> = Vec::with_capacity(2 * n * k);
    for i in 0..n {
        for c in 0..k {
            let j = knn.indices[i * k + c];
            let p = cond[i * k + c];
            triplets.push((i as u32, j, p));
            triplets.push((j, i as u32, p));
        }
    }
    triplets.par_sort_unstable_by_key(|&(r, c, _)| (r, c));
    let mut indptr = vec![0usize; n + 1];
    let mut indices = Vec::with_capacity(triplets.len());
    let mut values: Vec<f32> = Vec::with_capacity(triplets.len());
    let mut last: Option<(u32, u32)> = None;
    for &(r, c, p) in &triplets {
        if last == Some((r, c)) {
            // f32 addition as scipy's float32 P + P.T does; a pair appears at most twice.
            *values.last_mut().expect("entry") += p;
        } else {
            indices.push(c);
            values.push(p);
            indptr[r as usize + 1] += 1;
            last = Some((r, c));
        }
    }
    for i in 0..n {
        indptr[i + 1] += indptr[i];
    }
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    let sum = sum.max(MACHINE_EPSILON);
    for v in &mut values {
        *v = (f64::from(*v) / sum) as f32;
    }
    SparseP {
        indptr,
        indices,
        values,
    }
}

/// `_joint_probabilities`: calibration over all other points, symmetrised, normalised and
/// floored at `MACHINE_EPSILON` off the diagonal.
pub fn dense_p(data: ArrayView2<f32>, perplexity: f64) -> Array2<f32> {
    let n = data.nrows();
    let d2 = all_pairs_d2(data);
    let mut cond = Array2::<f64>::zeros((n, n));
    cond.as_slice_mut()
        .expect("contiguous")
        .par_chunks_mut(n)
        .zip(d2.as_slice().expect("contiguous").par_chunks(n))
        .enumerate()
        .for_each(|(i, (p, d))| {
            binary_search_row(d, perplexity, Some(i), p);
        });
    // scikit-learn keeps the calibrated rows as f32.
    cond.mapv_inplace(|v| f64::from(v as f32));
    let mut p = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..n {
            p[[i, j]] = cond[[i, j]] + cond[[j, i]];
        }
    }
    // sum_P runs over the full matrix, so the condensed P sums to 1/2 and the full one to 1.
    let sum = p.sum().max(MACHINE_EPSILON);
    let mut out = Array2::<f32>::zeros((n, n));
    for i in 0..n {
        for j in 0..n {
            if i != j {
                out[[i, j]] = (p[[i, j]] / sum).max(MACHINE_EPSILON) as f32;
            }
        }
    }
    out
}

/// All squared Euclidean distances, in f64 on centred data, rounded to f32 like scikit-learn's.
fn all_pairs_d2(data: ArrayView2<f32>) -> Array2<f32> {
    let n = data.nrows();
    let x = data.mapv(f64::from);
    let mean = x.mean_axis(ndarray::Axis(0)).expect("rows");
    let x = &x - &mean;
    let norms: Vec<f64> = x.rows().into_iter().map(|r| r.dot(&r)).collect();
    let gram = x.dot(&x.t());
    Array2::from_shape_fn((n, n), |(i, j)| {
        if i == j {
            0.0
        } else {
            (norms[i] + norms[j] - 2.0 * gram[[i, j]]).max(0.0) as f32
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    fn entropy(p: impl Iterator<Item = f64>) -> f64 {
        -p.filter(|&v| v > 0.0).map(|v| v * v.ln()).sum::<f64>()
    }

    #[test]
    fn calibration_hits_the_target_entropy_for_every_point() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        // Mixed scales: a tight cluster, a loose one, and activations-sized values.
        let x = ndarray::Array2::from_shape_fn((400, 30), |(i, _)| {
            let v: f32 = StandardNormal.sample(&mut rng);
            v * [0.01f32, 1.0, 40.0][i % 3]
        });
        for perplexity in [3.0, 10.0, 30.0] {
            let k = (3.0 * perplexity + 1.0) as usize;
            let knn = super::super::neighbours::knn(x.view(), k);
            let cond = conditional_p(&knn, perplexity);
            for (i, row) in cond.chunks(k).enumerate() {
                let total: f64 = row.iter().map(|&v| f64::from(v)).sum();
                assert!((total - 1.0).abs() < 1e-5, "row {i} sums to {total}");
                let h = entropy(row.iter().map(|&v| f64::from(v)));
                // 1e-5 in the search, plus the f32 rounding of the stored row.
                assert!(
                    (h - perplexity.ln()).abs() < 1e-4,
                    "perplexity {perplexity}, point {i}: entropy {h}, want {}",
                    perplexity.ln()
                );
            }
        }
        // The exact path calibrates over all other points, itself excluded.
        let small = x.slice(ndarray::s![..60, ..]);
        let p = dense_p(small, 5.0);
        assert!((p.sum() - 1.0).abs() < 1e-4);
        let d2 = all_pairs_d2(small);
        let mut buf = vec![0f64; 60];
        for i in 0..60 {
            binary_search_row(d2.row(i).as_slice().unwrap(), 5.0, Some(i), &mut buf);
            assert_eq!(buf[i], 0.0);
            assert!((entropy(buf.iter().copied()) - 5f64.ln()).abs() < 1e-4);
        }
    }

    #[test]
    fn sparse_p_is_symmetric_and_sums_to_one() {
        let x = ndarray::Array2::from_shape_fn((50, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f32);
        let knn = super::super::neighbours::knn(x.view(), 10);
        let p = sparse_p(&knn, 3.0);
        let total: f64 = p.values.iter().map(|&v| f64::from(v)).sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        let get = |i: usize, j: usize| {
            (p.indptr[i]..p.indptr[i + 1])
                .find(|&e| p.indices[e] as usize == j)
                .map(|e| p.values[e])
        };
        for i in 0..50 {
            for e in p.indptr[i]..p.indptr[i + 1] {
                let j = p.indices[e] as usize;
                assert_eq!(get(j, i), Some(p.values[e]));
            }
        }
    }
}
