//! scikit-learn's `init='pca'` (`_t_sne.py`, `_fit`): the data projected on its first two
//! principal components, signs fixed as `svd_flip(u_based_decision=False)` does (largest
//! loading positive), then scaled so the first coordinate has standard deviation 1e-4.

use ndarray::{Array1, Array2, ArrayView2, Axis};

/// Power iterations on the covariance (deflated once per component).
const POWER_STEPS: usize = 500;

/// The PCA initial embedding, n x 2.
pub fn pca_init(data: ArrayView2<f32>) -> Array2<f32> {
    let n = data.nrows();
    let mean = data.mapv(f64::from).mean_axis(Axis(0)).expect("rows");
    let centred = Array2::from_shape_fn(data.raw_dim(), |(i, j)| {
        (f64::from(data[[i, j]]) - mean[j]) as f32
    });
    let cov = centred.t().dot(&centred).mapv(f64::from);
    let d = cov.nrows();
    let mut components: Vec<Array1<f64>> = Vec::new();
    for c in 0..2usize {
        // Deterministic start vector, not orthogonal to anything in particular.
        let mut v = Array1::from_shape_fn(d, |j| 1.0 + ((j * 7 + c * 3) % 11) as f64 / 11.0);
        for _ in 0..POWER_STEPS {
            let mut w = cov.dot(&v);
            for u in &components {
                let proj = w.dot(u);
                w.scaled_add(-proj, u);
            }
            let norm = w.dot(&w).sqrt();
            if norm.is_nan() || norm <= 0.0 {
                break;
            }
            v = w / norm;
        }
        let largest = v
            .iter()
            .copied()
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if largest < 0.0 {
            v.mapv_inplace(|x| -x);
        }
        components.push(v);
    }
    let mut out = Array2::<f64>::zeros((n, 2));
    for (c, u) in components.iter().enumerate() {
        let u32v = u.mapv(|x| x as f32);
        let proj = centred.dot(&u32v);
        out.column_mut(c).assign(&proj.mapv(f64::from));
    }
    let col0 = out.column(0);
    let m = col0.mean().unwrap_or(0.0);
    let std = (col0.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64).sqrt();
    let scale = if std > 0.0 { 1e-4 / std } else { 1.0 };
    out.mapv(|x| (x * scale) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_init_follows_the_main_axes_at_scale_1e_4() {
        // Points spread mostly along (1, 1, 0), less along (1, -1, 0), barely along z.
        let x = Array2::from_shape_fn((200, 3), |(i, j)| {
            let a = (i as f32 * 0.37).sin() * 10.0;
            let b = (i as f32 * 0.91).cos() * 2.0;
            let c = (i as f32 * 1.7).sin() * 0.1;
            [a + b, a - b, c][j]
        });
        let y = pca_init(x.view());
        let col = |c: usize| y.column(c).to_owned();
        let std = |v: &Array1<f32>| {
            let m = v.mean().unwrap();
            (v.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / v.len() as f32).sqrt()
        };
        assert!((std(&col(0)) - 1e-4).abs() < 1e-7, "{}", std(&col(0)));
        // Second axis has a fifth of the spread of the first.
        let ratio = std(&col(1)) / std(&col(0));
        assert!((ratio - 0.2).abs() < 0.03, "{ratio}");
        // First coordinate follows a = (x0 + x1) / 2 up to scale, with a positive loading.
        let a: Array1<f32> = x.rows().into_iter().map(|r| (r[0] + r[1]) / 2.0).collect();
        let (mean_a, std_a) = (a.mean().unwrap(), std(&a));
        for (i, &ai) in a.iter().enumerate() {
            let got = y[[i, 0]] / 1e-4 * std_a;
            assert!(
                (got - (ai - mean_a)).abs() < 0.5,
                "row {i}: {got} vs {}",
                ai - mean_a
            );
        }
    }
}
