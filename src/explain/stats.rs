//! Running per-feature mean and standard error of sampled marginal contributions, in f64.

use ndarray::Array1;

/// Sums of per-feature samples; every sample covers every feature (absent entries count as 0).
#[derive(Debug, Clone)]
pub(crate) struct Running {
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    count: usize,
    /// Sum and sum of squares of each sample's total over features (`add_sparse` samples only).
    total: f64,
    total_sq: f64,
}

impl Running {
    pub fn new(n: usize) -> Running {
        Running {
            sum: vec![0.0; n],
            sum_sq: vec![0.0; n],
            count: 0,
            total: 0.0,
            total_sq: 0.0,
        }
    }

    /// Add one sample given by its non-zero entries.
    pub fn add_sparse(&mut self, entries: &[(usize, f64)]) {
        let mut total = 0.0;
        for &(i, v) in entries {
            self.sum[i] += v;
            self.sum_sq[i] += v * v;
            total += v;
        }
        self.total += total;
        self.total_sq += total * total;
        self.count += 1;
    }

    /// Add per-feature sums of samples for features `first..`; call `add_count` once per block.
    pub fn add_sums(&mut self, first: usize, sum: &[f64], sum_sq: &[f64]) {
        for (k, (&s, &q)) in sum.iter().zip(sum_sq).enumerate() {
            self.sum[first + k] += s;
            self.sum_sq[first + k] += q;
        }
    }

    /// Record that every feature received `count` more samples (through `add_sums`).
    pub fn add_count(&mut self, count: usize) {
        self.count += count;
    }

    pub fn samples(&self) -> usize {
        self.count
    }

    /// Sample mean per feature.
    pub fn mean(&self) -> Array1<f64> {
        let n = self.count.max(1) as f64;
        self.sum.iter().map(|s| s / n).collect()
    }

    /// Standard error of the mean per feature (sample variance with n - 1; 0 for one sample).
    pub fn stderr(&self) -> Array1<f64> {
        self.sum
            .iter()
            .zip(&self.sum_sq)
            .map(|(&s, &q)| stderr_of_mean(s, q, self.count))
            .collect()
    }

    /// Standard error of the sum over features of the means, from each sample's total: for
    /// samples that cover every feature jointly (a permutation walk), whose totals are correlated
    /// across features.
    pub fn total_stderr(&self) -> f64 {
        stderr_of_mean(self.total, self.total_sq, self.count)
    }
}

/// Standard error of a mean from the sum and sum of squares of `count` samples (sample variance
/// with count - 1; 0 for fewer than two samples).
fn stderr_of_mean(sum: f64, sum_sq: f64, count: usize) -> f64 {
    if count < 2 {
        return 0.0;
    }
    let n = count as f64;
    let mean = sum / n;
    let var = ((sum_sq / n - mean * mean) * n / (n - 1.0)).max(0.0);
    (var / n).sqrt()
}

impl Running {
    /// Standard error of the sum over features of the means when features are sampled
    /// independently (the notebook estimator): the root sum of squared standard errors.
    pub fn independent_total_stderr(&self) -> f64 {
        self.stderr().iter().map(|s| s * s).sum::<f64>().sqrt()
    }
}
