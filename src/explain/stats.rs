//! Running per-feature mean and standard error of sampled marginal contributions, in f64.

use ndarray::Array1;

/// Sums of per-feature samples; every sample covers every feature (absent entries count as 0).
#[derive(Debug, Clone)]
pub(crate) struct Running {
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    count: usize,
}

impl Running {
    pub fn new(n: usize) -> Running {
        Running {
            sum: vec![0.0; n],
            sum_sq: vec![0.0; n],
            count: 0,
        }
    }

    /// Add one sample given by its non-zero entries.
    pub fn add_sparse(&mut self, entries: &[(usize, f64)]) {
        for &(i, v) in entries {
            self.sum[i] += v;
            self.sum_sq[i] += v * v;
        }
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
        #[expect(clippy::cast_precision_loss)]
        let n = self.count.max(1) as f64;
        self.sum.iter().map(|s| s / n).collect()
    }

    /// Standard error of the mean per feature (sample variance with n - 1; 0 for one sample).
    pub fn stderr(&self) -> Array1<f64> {
        if self.count < 2 {
            return Array1::zeros(self.sum.len());
        }
        #[expect(clippy::cast_precision_loss)]
        let n = self.count as f64;
        self.sum
            .iter()
            .zip(&self.sum_sq)
            .map(|(s, q)| {
                let mean = s / n;
                let var = ((q / n - mean * mean) * n / (n - 1.0)).max(0.0);
                (var / n).sqrt()
            })
            .collect()
    }
}
