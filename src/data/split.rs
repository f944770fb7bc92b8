//! Sampling and the train/test split, in place: the rows are permuted inside the one feature
//! matrix (by following the permutation's cycles, one row held aside), the rows not sampled are
//! cut off, and the test part is moved out of the end in chunks while the matrix shrinks, so the
//! peak memory stays about one copy of the data instead of two.

use ndarray::Array2;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{Dataset, Split};

/// Bytes of the test part moved per step while the matrix shrinks behind it.
const MOVE_CHUNK_BYTES: usize = 8 << 20;

/// The split's shuffle is seeded apart from the sample's, so the two orders differ.
const SPLIT_SEED_MIX: u64 = 0x5eed_5911;

/// Every row index in a random order by `seed`; its first `n` are a sample of `n` rows.
fn shuffled(n_rows: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n_rows).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    order
}

/// The rows of a sample of `n`, in sample order.
pub(super) fn sample_order(n_rows: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut order = shuffled(n_rows, seed);
    order.truncate(n);
    order
}

/// Test rows of `n` as scikit-learn's `train_test_split` counts them: `ceil(test_fraction * n)`,
/// leaving at least one row on each side.
fn test_rows(test_fraction: f64, n: usize) -> Result<usize, String> {
    // Float-to-int: a share of a row count, rounded up, always in 0..=n.
    let n_test = ((test_fraction * n as f64).ceil() as usize).min(n);
    if n_test == 0 || n_test == n {
        return Err(format!(
            "a test fraction of {test_fraction} leaves no rows on one side of {n} rows"
        ));
    }
    Ok(n_test)
}

/// Sample (when asked) and split, in place. The options were checked by the caller.
pub(super) fn into_split(
    data: Dataset,
    sample: Option<usize>,
    test_fraction: f64,
    seed: u64,
) -> Result<Split, String> {
    let n_all = data.n_rows();
    let (order, m) = match sample {
        Some(n) => (shuffled(n_all, seed), n),
        None => ((0..n_all).collect(), n_all),
    };
    let n_test = test_rows(test_fraction, m)?;
    let n_train = m - n_test;
    let mut inner: Vec<usize> = (0..m).collect();
    inner.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ SPLIT_SEED_MIX));

    // Destination row p takes source row perm[p]: training rows, test rows, then the rows left
    // out of the sample (so that perm is a permutation of every row).
    let mut perm = Vec::with_capacity(n_all);
    perm.extend(inner[n_test..].iter().map(|&j| order[j]));
    perm.extend(inner[..n_test].iter().map(|&j| order[j]));
    perm.extend_from_slice(&order[m..]);

    let Dataset {
        features,
        labels,
        class_names,
        feature_names,
        image_shape,
        source,
        rows: source_rows,
    } = data;
    let d = features.ncols();
    let mut values = into_row_major(features);
    permute_rows(&mut values, d, &perm);
    values.truncate(m * d);
    values.shrink_to_fit();
    let test_values = move_tail(&mut values, d, n_train);

    let part = |features: Vec<f32>, rows: &[usize], class_names: Vec<String>| Dataset {
        features: Array2::from_shape_vec((rows.len(), d), features)
            .unwrap_or_else(|_| Array2::zeros((rows.len(), d))),
        labels: rows.iter().map(|&i| labels[i]).collect(),
        class_names,
        feature_names: feature_names.clone(),
        image_shape,
        source: source.clone(),
        rows: rows.iter().map(|&i| source_rows[i]).collect(),
    };
    let train = part(values, &perm[..n_train], class_names.clone());
    let test = part(test_values, &perm[n_train..m], class_names);
    Ok(Split { train, test })
}

/// The matrix's values in row-major order, without a copy when it is already laid out so.
fn into_row_major(features: Array2<f32>) -> Vec<f32> {
    let (n, d) = features.dim();
    if !features.is_standard_layout() {
        return features.iter().copied().collect();
    }
    let (mut values, offset) = features.into_raw_vec_and_offset();
    let offset = offset.unwrap_or(0);
    if offset != 0 || values.len() != n * d {
        values.drain(..offset);
        values.truncate(n * d);
    }
    values
}

/// Reorder the rows of a row-major matrix so that row p becomes the old row `perm[p]`, with one
/// row of extra memory: each cycle of the permutation is followed from its start, which is held.
fn permute_rows(values: &mut [f32], d: usize, perm: &[usize]) {
    let mut placed = vec![false; perm.len()];
    let mut held = vec![0.0_f32; d];
    for start in 0..perm.len() {
        if placed[start] {
            continue;
        }
        if perm[start] == start {
            placed[start] = true;
            continue;
        }
        held.copy_from_slice(&values[start * d..(start + 1) * d]);
        let mut p = start;
        loop {
            placed[p] = true;
            let q = perm[p];
            if q == start {
                values[p * d..(p + 1) * d].copy_from_slice(&held);
                break;
            }
            values.copy_within(q * d..(q + 1) * d, p * d);
            p = q;
        }
    }
}

/// Move the rows from `keep` on out of `values` into a vector of their own, a chunk at a time
/// from the end, shrinking `values` behind each chunk (a large allocation shrinks in place, and
/// the new vector's zeroed pages cost memory only once written).
fn move_tail(values: &mut Vec<f32>, d: usize, keep: usize) -> Vec<f32> {
    let start_of_tail = keep * d;
    let mut tail = vec![0.0_f32; values.len() - start_of_tail];
    let chunk = (MOVE_CHUNK_BYTES / std::mem::size_of::<f32>() / d.max(1)).max(1) * d.max(1);
    let mut end = values.len();
    while end > start_of_tail {
        let start = end.saturating_sub(chunk).max(start_of_tail);
        tail[start - start_of_tail..end - start_of_tail].copy_from_slice(&values[start..end]);
        values.truncate(start);
        values.shrink_to_fit();
        end = start;
    }
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_rows_follows_every_cycle() {
        let d = 3;
        let perm = [4, 0, 2, 5, 1, 3]; // cycles (0 4 1), (2), (3 5)
        let mut values: Vec<f32> = (0..6 * d).map(|v| v as f32).collect();
        let original = values.clone();
        permute_rows(&mut values, d, &perm);
        for (p, &q) in perm.iter().enumerate() {
            assert_eq!(values[p * d..(p + 1) * d], original[q * d..(q + 1) * d]);
        }
    }

    #[test]
    fn move_tail_keeps_order() {
        let mut values: Vec<f32> = (0..10_000).map(|v| v as f32).collect();
        let tail = move_tail(&mut values, 4, 1_000);
        assert_eq!(values.len(), 4_000);
        assert_eq!(tail.len(), 6_000);
        assert_eq!(tail[0], 4_000.0);
        assert_eq!(tail[5_999], 9_999.0);
        assert!(
            values
                .iter()
                .chain(&tail)
                .enumerate()
                .all(|(i, &v)| v == i as f32)
        );
    }
}
