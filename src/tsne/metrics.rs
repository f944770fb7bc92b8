//! Quality figures of an embedding: how many neighbours survive, and how well labels can be
//! read off the 2-D neighbourhoods.

use ndarray::ArrayView2;

use super::neighbours::knn;

/// Neighbours compared by [`trust`].
pub const TRUST_K: usize = 10;

/// The trust figure shown beside every embedding: the share of each point's 10 nearest
/// neighbours in `high` kept among its 10 nearest in `low` ([`neighbour_preservation`] with
/// k = 10). `None` for 10 points or fewer, where every other point is a neighbour and the
/// figure says nothing.
pub fn trust(high: ArrayView2<f32>, low: ArrayView2<f32>) -> Option<f64> {
    (high.nrows() > TRUST_K).then(|| neighbour_preservation(high, low, TRUST_K))
}

/// Share of each point's `k` nearest neighbours in `high` that stay among its `k` nearest in
/// `low`, averaged over points (the TUI's trust gauge). 0 when there are fewer than 2 points.
pub fn neighbour_preservation(high: ArrayView2<f32>, low: ArrayView2<f32>, k: usize) -> f64 {
    let n = high.nrows();
    assert_eq!(n, low.nrows(), "high and low must hold the same points");
    let k = k.min(n.saturating_sub(1));
    if k == 0 {
        return 0.0;
    }
    overlap(&knn(high, k).indices, &knn(low, k).indices, k)
}

/// The share of each point's `k` neighbours in `a` that are among its `k` in `b` (both n x k
/// row-major neighbour lists), averaged over points; 0 for empty lists.
pub(crate) fn overlap(a: &[u32], b: &[u32], k: usize) -> f64 {
    if k == 0 || a.is_empty() {
        return 0.0;
    }
    let kept: usize = a
        .chunks_exact(k)
        .zip(b.chunks_exact(k))
        .map(|(x, y)| x.iter().filter(|j| y.contains(j)).count())
        .sum();
    kept as f64 / a.len() as f64
}

/// Leave-one-out `k`-nearest-neighbour label accuracy in the embedding `low` (majority vote,
/// ties to the smallest label as scikit-learn's `KNeighborsClassifier`).
pub fn knn_accuracy(low: ArrayView2<f32>, labels: &[u8], k: usize) -> f64 {
    let n = low.nrows();
    assert_eq!(n, labels.len(), "one label per point");
    let k = k.min(n.saturating_sub(1));
    if k == 0 {
        return 0.0;
    }
    let nb = knn(low, k);
    let mut correct = 0usize;
    for i in 0..n {
        let mut votes = [0u32; 256];
        for &j in &nb.indices[i * k..(i + 1) * k] {
            votes[labels[j as usize] as usize] += 1;
        }
        let mut best = 0usize;
        for (c, &v) in votes.iter().enumerate() {
            if v > votes[best] {
                best = c;
            }
        }
        correct += usize::from(best == labels[i] as usize);
    }
    correct as f64 / n as f64
}
