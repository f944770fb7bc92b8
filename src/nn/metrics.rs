//! How well a classifier does, class by class.

use ndarray::Array2;

/// Counts of (true class, predicted class) pairs: rows are the true class, columns the
/// prediction.
///
/// # Panics
/// When the two slices differ in length or a class id is not below `n_classes`.
pub fn confusion_matrix(labels: &[u8], predictions: &[u8], n_classes: usize) -> Array2<usize> {
    assert_eq!(labels.len(), predictions.len(), "one prediction per label");
    let mut counts = Array2::zeros((n_classes, n_classes));
    for (&t, &p) in labels.iter().zip(predictions) {
        counts[(usize::from(t), usize::from(p))] += 1;
    }
    counts
}

/// Share of each true class predicted right (the diagonal over the row sums); NaN for a class
/// with no rows.
pub fn per_class_accuracy(confusion: &Array2<usize>) -> Vec<f64> {
    confusion
        .rows()
        .into_iter()
        .enumerate()
        .map(|(c, row)| {
            let total: usize = row.sum();
            // Counts are far below 2^52: exact in f64.
            let share = row[c] as f64 / total as f64;
            if total == 0 { f64::NAN } else { share }
        })
        .collect()
}

/// Share of rows where the prediction is the label.
pub fn accuracy(labels: &[u8], predictions: &[u8]) -> f64 {
    let right = labels
        .iter()
        .zip(predictions)
        .filter(|(t, p)| t == p)
        .count();

    right as f64 / labels.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_rows_are_true_classes() {
        let m = confusion_matrix(&[0, 0, 1, 2, 2, 2], &[0, 1, 1, 2, 0, 2], 3);
        assert_eq!(m, ndarray::arr2(&[[1, 1, 0], [0, 1, 0], [1, 0, 2]]));
        let acc = per_class_accuracy(&m);
        assert_eq!(acc[0], 0.5);
        assert_eq!(acc[1], 1.0);
        assert!((acc[2] - 2.0 / 3.0).abs() < 1e-12);
        assert!(per_class_accuracy(&confusion_matrix(&[0], &[0], 2))[1].is_nan());
        assert!((accuracy(&[0, 1, 2, 2], &[0, 1, 1, 2]) - 0.75).abs() < 1e-12);
    }
}
