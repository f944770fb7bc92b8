//! Nearest neighbours in a layer's own space: which training images the model finds most like a
//! given one (issue 13), and how well a layer's neighbourhoods agree with the labels.
//!
//! Exact and brute force: one query against the 1,500 embedded images is 1,500 distances, well
//! under a millisecond per layer, so no index is worth its build time.

use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;

/// One neighbour of a query point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// Row of the reference matrix.
    pub index: usize,
    /// Euclidean distance to the query (not squared).
    pub distance: f32,
}

/// The `k` rows of `reference` nearest to `query` (Euclidean), nearest first, ties by index;
/// `exclude` leaves one row out (the query itself when it is one of the rows). Fewer than `k`
/// when there are fewer rows.
///
/// # Panics
/// When `query` does not have the reference's number of columns.
pub fn nearest(
    reference: ArrayView2<f32>,
    query: ArrayView1<f32>,
    k: usize,
    exclude: Option<usize>,
) -> Vec<Neighbour> {
    assert_eq!(
        reference.ncols(),
        query.len(),
        "the query must have the reference's features"
    );
    let q = query.as_standard_layout();
    let q = q.as_slice().unwrap_or(&[]);
    let mut all: Vec<(f32, usize)> = reference
        .outer_iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != exclude)
        .map(|(i, row)| {
            let d = match row.as_slice() {
                Some(r) => squared_distance(q, r),
                None => row.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(),
            };
            (d, i)
        })
        .collect();
    let by_distance = |a: &(f32, usize), b: &(f32, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    let k = k.min(all.len());
    if k == 0 {
        return Vec::new();
    }
    if k < all.len() {
        all.select_nth_unstable_by(k - 1, by_distance);
        all.truncate(k);
    }
    all.sort_unstable_by(by_distance);
    all.into_iter()
        .map(|(d, index)| Neighbour {
            index,
            distance: d.sqrt(),
        })
        .collect()
}

/// Mean over the points of `data` of the share of each point's `k` nearest other points that
/// carry its label (the film's separation chart: 1 when every neighbourhood is one class).
/// 0 when there are fewer than 2 points or `k` is 0.
///
/// # Panics
/// When `labels` does not hold one label per row of `data`.
pub fn label_share(data: ArrayView2<f32>, labels: &[u8], k: usize) -> f64 {
    let n = data.nrows();
    assert_eq!(n, labels.len(), "one label per point");
    let k = k.min(n.saturating_sub(1));
    if k == 0 {
        return 0.0;
    }
    // The t-SNE engine's exact k nearest neighbours (a GEMM shortlist re-ranked exactly).
    let knn = crate::tsne::knn(data, k);
    same_label_share(&knn.indices, k, labels)
}

/// [`label_share`] from each point's `k` nearest neighbours already found (`neighbours`: one
/// row of `k` indices per label, row-major).
///
/// # Panics
/// When `neighbours` does not hold `k` per label, `k` is 0, or an index is not a point.
pub fn same_label_share(neighbours: &[u32], k: usize, labels: &[u8]) -> f64 {
    let n = labels.len();
    assert!(k > 0 && neighbours.len() == n * k, "k neighbours per point");
    let same: usize = neighbours
        .par_chunks_exact(k)
        .zip(labels)
        .map(|(row, &label)| row.iter().filter(|&&j| labels[j as usize] == label).count())
        .sum();
    same as f64 / (n * k) as f64
}

/// Squared Euclidean distance, eight lanes summed in a fixed order (vectorised by the compiler).
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 8;
    let mut acc = [0f32; L];
    let chunks = a.len().min(b.len()) / L;
    for c in 0..chunks {
        let (x, y) = (&a[c * L..c * L + L], &b[c * L..c * L + L]);
        for l in 0..L {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in a[chunks * L..].iter().zip(&b[chunks * L..]) {
        s += (x - y) * (x - y);
    }
    s
}
