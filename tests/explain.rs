//! The explain engine against exact Shapley values and the axioms they satisfy, on tiny
//! ReLU/softmax MLPs where every coalition and every permutation can be enumerated.

use std::sync::atomic::{AtomicBool, Ordering};

use layerscope::explain::{
    Baseline, CoalitionSampler, ExplainError, ExplainParams, ExplainProgress, Method,
    PreparedBackground, Units, explain, explain_class_mean, explain_prepared, first_layer_path,
    permutation_contributions,
};
use layerscope::nn::{Activation, Mlp};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------- an independent f64 reference: forward pass and exact Shapley values ----------

/// Logits of one input, in f64, written out layer by layer (not the engine's code).
fn logits64(model: &Mlp, z: &[f64]) -> Vec<f64> {
    let mut a = z.to_vec();
    for (l, (w, b)) in model.coefs.iter().zip(&model.intercepts).enumerate() {
        let mut next: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
        for (i, &ai) in a.iter().enumerate() {
            for (j, nj) in next.iter_mut().enumerate() {
                *nj += ai * f64::from(w[[i, j]]);
            }
        }
        if l + 1 < model.coefs.len() {
            next.iter_mut().for_each(|v| {
                *v = match model.activation {
                    Activation::Identity => *v,
                    Activation::Logistic => 1.0 / (1.0 + (-*v).exp()),
                    Activation::Tanh => v.tanh(),
                    Activation::Relu => v.max(0.0),
                }
            });
        }
        a = next;
    }
    a
}

fn f64_output(model: &Mlp, z: &[f64], class: usize, units: Units) -> f64 {
    let logits = logits64(model, z);
    match units {
        Units::Logit => logits[class],
        Units::Probability => {
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = logits.iter().map(|v| (v - max).exp()).sum();
            (logits[class] - max).exp() / sum
        }
    }
}

/// `f64_output` of every row.
fn outputs64(model: &Mlp, rows: ArrayView2<f32>, class: usize, units: Units) -> Vec<f64> {
    rows.rows()
        .into_iter()
        .map(|r| {
            let z: Vec<f64> = r.iter().map(|&v| f64::from(v)).collect();
            f64_output(model, &z, class, units)
        })
        .collect()
}

/// v(S) = mean over background rows b of f(x on S, b elsewhere); S as a bit mask.
fn value(
    model: &Mlp,
    x: ArrayView1<f32>,
    bg: ArrayView2<f32>,
    mask: usize,
    class: usize,
    units: Units,
) -> f64 {
    let n = x.len();
    let mut total = 0.0;
    for b in bg.rows() {
        let z: Vec<f64> = (0..n)
            .map(|i| f64::from(if mask >> i & 1 == 1 { x[i] } else { b[i] }))
            .collect();
        total += f64_output(model, &z, class, units);
    }
    total / bg.nrows() as f64
}

/// Exact Shapley values by enumerating all 2^n coalitions (Shapley 1953):
/// phi_i = sum over S not containing i of |S|! (n-|S|-1)! / n! (v(S + i) - v(S)).
fn exact_shapley(
    model: &Mlp,
    x: ArrayView1<f32>,
    bg: ArrayView2<f32>,
    class: usize,
    units: Units,
) -> Vec<f64> {
    let n = x.len();
    let v: Vec<f64> = (0..1usize << n)
        .map(|m| value(model, x, bg, m, class, units))
        .collect();
    let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
    let mut phi = vec![0.0; n];
    for (i, p) in phi.iter_mut().enumerate() {
        for m in 0..1usize << n {
            if m >> i & 1 == 1 {
                continue;
            }
            let s = m.count_ones() as usize;
            let weight = fact(s) * fact(n - s - 1) / fact(n);
            *p += weight * (v[m | 1 << i] - v[m]);
        }
    }
    phi
}

/// Every permutation of 0..n (Heap's algorithm).
fn all_permutations(n: usize) -> Vec<Vec<usize>> {
    fn heap(k: usize, a: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if k == 1 {
            out.push(a.clone());
            return;
        }
        heap(k - 1, a, out);
        for i in 0..k - 1 {
            if k.is_multiple_of(2) {
                a.swap(i, k - 1);
            } else {
                a.swap(0, k - 1);
            }
            heap(k - 1, a, out);
        }
    }
    let mut out = Vec::new();
    heap(n, &mut (0..n).collect(), &mut out);
    out
}

// ---------- fixtures ----------

/// A tiny ReLU/softmax MLP, an input and a small background, values in [0, 1]; feature 1 of the
/// input equals the background in some rows (so the skip is exercised with a non-zero value).
fn fixture(n: usize, seed: u64) -> (Mlp, Array1<f32>, Array2<f32>) {
    let model = Mlp::new(&[n, 8, 6, 3], seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
    let x: Array1<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    let mut bg = Array2::from_shape_fn((4, n), |_| rng.random::<f32>());
    bg[[0, 1]] = x[1];
    bg[[2, 1]] = x[1];
    (model, x, bg)
}

fn params(method: Method, samples: usize, units: Units, class: usize) -> ExplainParams {
    ExplainParams {
        method,
        samples,
        units,
        class: Some(class),
        progress_every: 0,
        ..ExplainParams::default()
    }
}

fn run(
    model: &Mlp,
    x: &Array1<f32>,
    bg: &Array2<f32>,
    p: &ExplainParams,
) -> layerscope::explain::Attribution {
    explain(model, x.view(), bg.view(), p, None, None).expect("explain")
}

// ---------- exactness ----------

#[test]
fn average_over_all_permutations_equals_exact_shapley() {
    let n = 7;
    let (model, x, bg) = fixture(n, 3);
    let perms = all_permutations(n);
    assert_eq!(perms.len(), 5040);
    for units in [Units::Probability, Units::Logit] {
        let exact = exact_shapley(&model, x.view(), bg.view(), 1, units);
        let mut mean = vec![0.0; n];
        for b in bg.rows() {
            for order in &perms {
                let c =
                    permutation_contributions(&model, x.view(), b, order, 1, None, units).unwrap();
                for (m, v) in mean.iter_mut().zip(c) {
                    *m += v;
                }
            }
        }
        let count = (perms.len() * bg.nrows()) as f64;
        for (i, (m, e)) in mean.iter().zip(&exact).enumerate() {
            assert!(
                (m / count - e).abs() < 1e-9,
                "{units:?} feature {i}: permutation average {} vs exact {e}",
                m / count
            );
        }
        assert!(exact.iter().any(|v| v.abs() > 1e-3), "a trivial fixture");
    }
}

#[test]
fn each_permutation_telescopes_to_f_x_minus_f_b() {
    let n = 9;
    let (model, x, bg) = fixture(n, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    for units in [Units::Probability, Units::Logit] {
        for b in bg.rows() {
            let b64: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
            let gap = f64_output(&model, &x64, 2, units) - f64_output(&model, &b64, 2, units);
            for _ in 0..20 {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut rng);
                let sum: f64 =
                    permutation_contributions(&model, x.view(), b, &order, 2, None, units)
                        .unwrap()
                        .iter()
                        .sum();
                assert!((sum - gap).abs() < 1e-9, "{sum} vs {gap}");
            }
        }
    }
}

/// Both estimators converge to the exact value: every feature within 4 standard errors (the
/// seed is fixed, so this is deterministic; a wrong estimator misses by far more).
#[test]
fn estimators_converge_to_exact_shapley() {
    let n = 8;
    let (model, x, bg) = fixture(n, 11);
    for units in [Units::Probability, Units::Logit] {
        let exact = exact_shapley(&model, x.view(), bg.view(), 0, units);
        for (method, antithetic) in [
            (Method::Permutation, false),
            (Method::Permutation, true),
            (Method::Notebook, false),
        ] {
            let p = ExplainParams {
                antithetic,
                ..params(method, 4000, units, 0)
            };
            let a = run(&model, &x, &bg, &p);
            let se = a
                .stderr
                .as_ref()
                .expect("sampling methods report a standard error");
            let scale = exact.iter().map(|v| v.abs()).fold(0.0, f64::max);
            for i in 0..n {
                let err = (f64::from(a.values[i]) - exact[i]).abs();
                assert!(
                    err <= 4.0 * f64::from(se[i]) + 1e-6 * scale,
                    "{method:?} antithetic={antithetic} {units:?} feature {i}: {} vs exact {} (se {})",
                    a.values[i],
                    exact[i],
                    se[i]
                );
                // The standard error is small next to the values: the check above has teeth.
                assert!(f64::from(se[i]) < 0.1 * scale, "se {} too large", se[i]);
            }
        }
    }
}

/// The exact distribution of one sample of an estimator for every feature, by enumeration with
/// the reference forward pass: `samples[i]` lists (weight, value) pairs, weights summing to 1.
struct SampleLaw {
    samples: Vec<Vec<(f64, f64)>>,
}

impl SampleLaw {
    /// Mean, variance and kurtosis (E[(v - mean)^4] / variance^2) of feature `i`'s sample.
    fn moments(&self, i: usize) -> (f64, f64, f64) {
        let s = &self.samples[i];
        let mean: f64 = s.iter().map(|(w, v)| w * v).sum();
        let var: f64 = s.iter().map(|(w, v)| w * (v - mean).powi(2)).sum();
        let m4: f64 = s.iter().map(|(w, v)| w * (v - mean).powi(4)).sum();
        (mean, var, if var > 0.0 { m4 / (var * var) } else { 0.0 })
    }

    /// One permutation walk (or, `antithetic`, the mean of a walk and its reverse) from a uniform
    /// background row along a uniform order: every (row, order) pair with equal weight.
    fn permutation(
        model: &Mlp,
        x: ArrayView1<f32>,
        bg: ArrayView2<f32>,
        class: usize,
        units: Units,
        antithetic: bool,
    ) -> SampleLaw {
        let n = x.len();
        let perms = all_permutations(n);
        let weight = 1.0 / (perms.len() * bg.nrows()) as f64;
        let walk = |b: ArrayView1<f32>, order: &[usize]| -> Vec<f64> {
            let mut z: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
            let mut before = f64_output(model, &z, class, units);
            let mut out = vec![0.0; n];
            for &i in order {
                z[i] = f64::from(x[i]);
                let after = f64_output(model, &z, class, units);
                out[i] = after - before;
                before = after;
            }
            out
        };
        let mut samples = vec![Vec::new(); n];
        for b in bg.rows() {
            for order in &perms {
                let mut c = walk(b, order);
                if antithetic {
                    let reversed: Vec<usize> = order.iter().rev().copied().collect();
                    let back = walk(b, &reversed);
                    c.iter_mut()
                        .zip(back)
                        .for_each(|(v, w)| *v = 0.5 * (*v + w));
                }
                for (i, v) in c.into_iter().enumerate() {
                    samples[i].push((weight, v));
                }
            }
        }
        SampleLaw { samples }
    }

    /// One draw of the notebook estimator for each feature: a uniform background row, and the
    /// replaced features R among the others with probability 1 / (n C(n-1, |R|)).
    fn notebook(
        model: &Mlp,
        x: ArrayView1<f32>,
        bg: ArrayView2<f32>,
        class: usize,
        units: Units,
    ) -> SampleLaw {
        let n = x.len();
        let binom = |k: usize| -> f64 {
            (0..k)
                .map(|j| (n - 1 - j) as f64 / (j + 1) as f64)
                .product()
        };
        let mut samples = vec![Vec::new(); n];
        for (i, s) in samples.iter_mut().enumerate() {
            for b in bg.rows() {
                for mask in 0..1usize << n {
                    if mask >> i & 1 == 1 {
                        continue;
                    }
                    let k = mask.count_ones() as usize;
                    let w = 1.0 / (bg.nrows() as f64 * n as f64 * binom(k));
                    let mut z: Vec<f64> = (0..n)
                        .map(|j| f64::from(if mask >> j & 1 == 1 { b[j] } else { x[j] }))
                        .collect();
                    let original = f64_output(model, &z, class, units);
                    z[i] = f64::from(b[i]);
                    s.push((w, original - f64_output(model, &z, class, units)));
                }
            }
        }
        SampleLaw { samples }
    }
}

/// The reported standard errors (plain and antithetic permutations, the notebook estimator)
/// against the exact one-sample distribution enumerated independently: se_i = sigma_i /
/// sqrt(samples), within 4 standard deviations of a sample standard deviation (which depend on
/// the kurtosis, also enumerated); the estimates within 4 predicted standard errors of the
/// exact Shapley values; and the standard error of the sum against the spread of f(b).
#[test]
fn standard_errors_match_the_enumerated_sampling_distribution() {
    let n = 6;
    let (model, x, bg) = fixture(n, 21);
    let class = 0;
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    for units in [Units::Probability, Units::Logit] {
        let exact = exact_shapley(&model, x.view(), bg.view(), class, units);
        let f_bg = outputs64(&model, bg.view(), class, units);
        let mean_bg = f_bg.iter().sum::<f64>() / f_bg.len() as f64;
        let var_bg = f_bg.iter().map(|v| (v - mean_bg).powi(2)).sum::<f64>() / f_bg.len() as f64;
        for (method, antithetic) in [
            (Method::Permutation, false),
            (Method::Permutation, true),
            (Method::Notebook, false),
        ] {
            let law = match method {
                Method::Notebook => SampleLaw::notebook(&model, x.view(), bg.view(), class, units),
                _ => SampleLaw::permutation(&model, x.view(), bg.view(), class, units, antithetic),
            };
            let samples = 3000;
            let p = ExplainParams {
                antithetic,
                ..params(method, samples, units, class)
            };
            let a = run(&model, &x, &bg, &p);
            let draws = if antithetic { samples / 2 } else { samples } as f64;
            let se = a.stderr.as_ref().unwrap();
            let label = format!("{method:?} antithetic={antithetic} {units:?}");
            let mut checked = 0;
            for i in 0..n {
                let (mean, var, kurtosis) = law.moments(i);
                assert!((mean - exact[i]).abs() < 1e-12, "{label} {i}: law mean");
                let predicted = (var / draws).sqrt();
                if var == 0.0 {
                    assert_eq!(se[i], 0.0, "{label} feature {i}");
                    continue;
                }
                // sd of a sample standard deviation: sigma sqrt((kurtosis - 1) / (4 draws)).
                let tolerance = 4.0 * ((kurtosis - 1.0) / (4.0 * draws)).sqrt() + 0.005;
                let ratio = f64::from(se[i]) / predicted;
                assert!(
                    (ratio - 1.0).abs() <= tolerance,
                    "{label} feature {i}: se {} vs predicted {predicted} (ratio {ratio}, tolerance {tolerance})",
                    se[i]
                );
                let err = (f64::from(a.values[i]) - exact[i]).abs();
                assert!(err <= 4.0 * predicted, "{label} feature {i}: error {err}");
                checked += 1;
            }
            assert!(checked >= n - 1, "{label}: {checked} features checked");
            // The sum: each walk (and each antithetic pair) totals f(x) - f(b).
            if method == Method::Permutation {
                let predicted = (var_bg / draws).sqrt();
                let ratio = a.sum_stderr.unwrap() / predicted;
                assert!((ratio - 1.0).abs() < 0.1, "{label}: sum se ratio {ratio}");
            }
            let f_x = f64_output(&model, &x64, class, units);
            assert!((a.completeness_gap - (a.sum - (f_x - mean_bg))).abs() < 1e-6);
        }
    }
}

// ---------- the notebook's sampler ----------

/// Coalition sizes are uniform on 0..=n-1, inclusive (with an exclusive bound, as a
/// `randint(0, n-2)` slip would give, the empty coalition is never drawn and the estimate is
/// biased), and given its size every subset of the other features is equally likely: jointly,
/// each subset S has the Shapley weight |S|! (n-|S|-1)! / n!. Chi-square over all subsets.
#[test]
fn notebook_coalitions_have_the_shapley_distribution() {
    let n = 5;
    let feature = 2;
    let draws = 60_000;
    let mut sampler = CoalitionSampler::new(n);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut by_size = vec![0usize; n];
    let mut by_subset = vec![0usize; 1 << n];
    for _ in 0..draws {
        let d = sampler.draw(&mut rng, feature);
        let replaced = d.replaced(n, feature);
        assert_eq!(replaced.len(), d.replaced_count);
        assert!(!replaced.contains(&feature));
        by_size[d.replaced_count] += 1;
        by_subset[replaced.iter().map(|j| 1 << j).sum::<usize>()] += 1;
    }
    // Size: uniform on 0..=4; both ends drawn.
    assert!(by_size[0] > 0 && by_size[n - 1] > 0, "{by_size:?}");
    let expected = draws as f64 / n as f64;
    let chi_size: f64 = by_size
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    assert!(
        chi_size < 18.47,
        "sizes {by_size:?}: chi-square {chi_size} (4 dof, p = 0.001)"
    );
    // Subsets of the other 4 features: 16 cells, P(S) = 1 / (n C(n-1, |S|)).
    let binom = |k: usize| [1.0, 4.0, 6.0, 4.0, 1.0][k];
    let mut chi = 0.0;
    for (mask, &c) in by_subset.iter().enumerate() {
        if mask >> feature & 1 == 1 {
            assert_eq!(c, 0);
            continue;
        }
        let e = draws as f64 / (n as f64 * binom(mask.count_ones() as usize));
        chi += (c as f64 - e).powi(2) / e;
    }
    assert!(chi < 37.7, "subsets: chi-square {chi} (15 dof, p = 0.001)");
}

/// The same draw whichever side the sampler lists (replaced or kept features): sizes near n/2.
#[test]
fn notebook_sampler_lists_the_smaller_side() {
    let n = 11;
    let mut sampler = CoalitionSampler::new(n);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for _ in 0..2000 {
        let d = sampler.draw(&mut rng, 4);
        assert!(d.listed.len() <= (n - 1) / 2);
        assert_eq!(d.lists_replaced, d.replaced_count <= (n - 1) / 2);
        assert_eq!(d.replaced(n, 4).len(), d.replaced_count);
    }
}

// ---------- efficiency, symmetry, null player, linearity ----------

#[test]
/// One background row: every permutation ends at f(x) - f(b), so the gap is rounding only and
/// the standard error of the sum is 0 (the efficiency test covers the full background).
fn one_background_row_leaves_a_rounding_gap() {
    let n = 8;
    let (model, x, bg) = fixture(n, 13);
    let class = 1;
    let one = bg.slice(ndarray::s![0..1, ..]).to_owned();
    let a = run(
        &model,
        &x,
        &one,
        &params(Method::Permutation, 7, Units::Probability, class),
    );
    assert!(
        a.completeness_gap.abs() < 1e-6,
        "gap {}",
        a.completeness_gap
    );
    assert!(a.sum_stderr.unwrap() < 1e-7, "{:?}", a.sum_stderr);
}

#[test]
fn symmetric_features_get_equal_values() {
    // Features 2 and 5 have the same W1 row, the same value in x and in every background row.
    let n = 7;
    let (mut model, mut x, mut bg) = fixture(n, 17);
    let row = model.coefs[0].row(2).to_owned();
    model.coefs[0].row_mut(5).assign(&row);
    x[5] = x[2];
    for mut b in bg.rows_mut() {
        b[5] = b[2];
    }
    let perms = all_permutations(n);
    let mut sum = [0.0; 2];
    for b in bg.rows() {
        for order in &perms {
            let c =
                permutation_contributions(&model, x.view(), b, order, 0, None, Units::Probability)
                    .unwrap();
            sum[0] += c[2];
            sum[1] += c[5];
        }
    }
    assert!(
        (sum[0] - sum[1]).abs() < 1e-12 * perms.len() as f64,
        "{sum:?}"
    );
    assert!(sum[0].abs() > 1e-6);
    for method in [Method::Permutation, Method::Notebook] {
        let a = run(
            &model,
            &x,
            &bg,
            &params(method, 3000, Units::Probability, 0),
        );
        let se = a.stderr.unwrap();
        let diff = (a.values[2] - a.values[5]).abs();
        let tol = 4.0 * (se[2].powi(2) + se[5].powi(2)).sqrt();
        assert!(
            diff <= tol,
            "{method:?}: {} vs {}",
            a.values[2],
            a.values[5]
        );
    }
}

#[test]
fn null_players_get_exactly_zero() {
    let n = 8;
    let (mut model, mut x, mut bg) = fixture(n, 19);
    // Feature 3 cannot reach the network; feature 6 equals every background row.
    model.coefs[0].row_mut(3).fill(0.0);
    x[6] = 0.25;
    bg.column_mut(6).fill(0.25);
    for method in [Method::Permutation, Method::Notebook] {
        for antithetic in [false, true] {
            let p = ExplainParams {
                antithetic,
                ..params(method, 300, Units::Probability, 2)
            };
            let a = run(&model, &x, &bg, &p);
            let se = a.stderr.unwrap();
            for i in [3, 6] {
                assert_eq!(a.values[i], 0.0, "{method:?} feature {i}");
                assert_eq!(se[i], 0.0);
            }
            assert!(a.values.iter().filter(|v| **v != 0.0).count() >= 5);
        }
    }
    let exact = exact_shapley(&model, x.view(), bg.view(), 2, Units::Probability);
    assert!(exact[3].abs() < 1e-15 && exact[6].abs() < 1e-15);
}

/// A linear model (one layer), explained in logits: phi_i = w_i (x_i - mean b_i).
#[test]
fn linear_model_has_the_closed_form() {
    let n = 10;
    let model = Mlp::new(&[n, 4], 23);
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    let x: Array1<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    let bg = Array2::from_shape_fn((5, n), |_| rng.random::<f32>());
    let class = 3;
    let w = model.coefs[0].column(class);
    // One background row: a single permutation is already exact.
    let one = bg.slice(ndarray::s![1..2, ..]).to_owned();
    let a = run(
        &model,
        &x,
        &one,
        &params(Method::Permutation, 1, Units::Logit, class),
    );
    for i in 0..n {
        let expect = f64::from(w[i]) * (f64::from(x[i]) - f64::from(one[[0, i]]));
        assert!(
            (f64::from(a.values[i]) - expect).abs() < 1e-5,
            "feature {i}"
        );
    }
    // The full background: converges to w_i (x_i - mean b_i).
    let mean_b = bg.mean_axis(ndarray::Axis(0)).unwrap();
    for method in [Method::Permutation, Method::Notebook] {
        let a = run(&model, &x, &bg, &params(method, 2000, Units::Logit, class));
        let se = a.stderr.unwrap();
        for i in 0..n {
            let expect = f64::from(w[i]) * f64::from(x[i] - mean_b[i]);
            let err = (f64::from(a.values[i]) - expect).abs();
            assert!(
                err <= 4.0 * f64::from(se[i]) + 1e-6,
                "{method:?} feature {i}"
            );
        }
    }
    // Integrated gradients and gradient x input are exact for a linear logit.
    for method in [Method::IntegratedGradients, Method::GradientTimesInput] {
        let p = ExplainParams {
            baseline: Baseline::BackgroundMean,
            ..params(method, 7, Units::Logit, class)
        };
        let a = run(&model, &x, &bg, &p);
        for i in 0..n {
            let expect = f64::from(w[i]) * f64::from(x[i] - mean_b[i]);
            assert!(
                (f64::from(a.values[i]) - expect).abs() < 1e-5,
                "{method:?} {i}"
            );
        }
        assert!(a.completeness_gap.abs() < 1e-5);
    }
}

// ---------- the incremental first layer ----------

#[test]
fn incremental_first_layer_equals_full_forward_at_every_step() {
    let n = 60;
    let model = Mlp::new(&[n, 40, 5], 29);
    let mut rng = ChaCha8Rng::seed_from_u64(30);
    // Digit-like: many exact zeros, so steps are skipped where x and b agree.
    let sparse = |rng: &mut ChaCha8Rng| -> Array1<f32> {
        (0..n)
            .map(|_| {
                if rng.random::<f32>() < 0.6 {
                    0.0
                } else {
                    rng.random()
                }
            })
            .collect()
    };
    let w1 = model.coefs[0].mapv(f64::from);
    let c1 = model.intercepts[0].mapv(f64::from);
    for _ in 0..5 {
        let (x, b) = (sparse(&mut rng), sparse(&mut rng));
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let (path64, steps) = first_layer_path::<f64>(&model, x.view(), b.view(), &order).unwrap();
        let (path32, steps32) =
            first_layer_path::<f32>(&model, x.view(), b.view(), &order).unwrap();
        assert_eq!(steps, steps32);
        let differing = (0..n).filter(|&i| x[i] != b[i]).count();
        assert_eq!(steps.len(), differing);
        assert_eq!(path64.nrows(), differing + 1);
        // Full forward pass at each step: z = b with the first j steps set to x.
        let mut z: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
        for j in 0..=steps.len() {
            if j > 0 {
                z[steps[j - 1]] = f64::from(x[steps[j - 1]]);
            }
            let full = Array1::from(z.clone()).dot(&w1) + &c1;
            for (k, &f) in full.iter().enumerate() {
                assert!((path64[[j, k]] - f).abs() < 1e-10, "f64 step {j} unit {k}");
                assert!(
                    (f64::from(path32[[j, k]]) - f).abs() < 1e-4,
                    "f32 step {j} unit {k}"
                );
            }
        }
        // Steps follow the permutation's order.
        let in_order: Vec<usize> = order.iter().copied().filter(|&i| x[i] != b[i]).collect();
        assert_eq!(steps, in_order);
    }
}

/// On the real digits (784 pixels), float32 drift at the end of a walk stays tiny.
#[test]
fn drift_is_small_on_digits() {
    let data = layerscope::data::load_onboard().unwrap().into_unit_scale();
    let bg = data.features.slice(ndarray::s![..200, ..]).to_owned();
    let x = data.features.row(500).to_owned();
    let model = Mlp::new(&[784, 64, 32, 10], 31);
    let a = run(
        &model,
        &x,
        &bg,
        &ExplainParams {
            class: None,
            ..params(Method::Permutation, 20, Units::Logit, 0)
        },
    );
    assert!(a.max_drift < 1e-4, "drift {}", a.max_drift);
    assert!(a.max_drift > 0.0 || a.values.iter().all(|v| *v == 0.0));
    // The walk ends at exactly f(x): only rounding and the background sample separate the sum.
    assert!(a.values.iter().any(|v| *v != 0.0));
}

// ---------- determinism, progress, cancellation, errors ----------

#[test]
fn same_seed_same_map_with_1_or_2_threads() {
    let n = 30;
    let model = Mlp::new(&[n, 16, 8, 4], 37);
    let mut rng = ChaCha8Rng::seed_from_u64(38);
    let x: Array1<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    let bg = Array2::from_shape_fn((50, n), |_| rng.random::<f32>());
    for (method, antithetic, versus) in [
        (Method::Permutation, false, None),
        (Method::Permutation, true, None),
        (Method::Notebook, false, None),
        (Method::IntegratedGradients, false, None),
        (Method::Permutation, false, Some(3)),
        (Method::Notebook, false, Some(3)),
    ] {
        let p = ExplainParams {
            antithetic,
            versus,
            progress_every: 7,
            ..params(method, 60, Units::Probability, 1)
        };
        let in_pool = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| run(&model, &x, &bg, &p))
        };
        let (one, two) = (in_pool(1), in_pool(2));
        assert_eq!(
            one, two,
            "{method:?} antithetic={antithetic} versus {versus:?}"
        );
        if method != Method::IntegratedGradients {
            let other = run(
                &model,
                &x,
                &bg,
                &ExplainParams {
                    seed: 1,
                    ..p.clone()
                },
            );
            assert_ne!(
                one.values, other.values,
                "{method:?}: the seed has no effect"
            );
        }
    }
}

#[test]
fn progress_reports_a_sharpening_estimate_and_cancel_stops() {
    let n = 12;
    let (model, x, bg) = fixture(n, 41);
    for method in [
        Method::Permutation,
        Method::Notebook,
        Method::IntegratedGradients,
    ] {
        let p = ExplainParams {
            progress_every: 10,
            ..params(method, 50, Units::Probability, 0)
        };
        let mut seen: Vec<(usize, usize, Vec<f32>, bool)> = Vec::new();
        let mut cb = |pr: &ExplainProgress<'_>| {
            seen.push((
                pr.samples_done,
                pr.samples_total,
                pr.values.to_vec(),
                pr.stderr.is_some(),
            ));
        };
        let a = explain(&model, x.view(), bg.view(), &p, Some(&mut cb), None).unwrap();
        let done: Vec<usize> = seen.iter().map(|s| s.0).collect();
        assert_eq!(done, vec![10, 20, 30, 40, 50], "{method:?}");
        assert!(seen.iter().all(|s| s.1 == 50));
        assert_eq!(seen.last().unwrap().2, a.values.to_vec());
        assert_eq!(seen[0].3, method != Method::IntegratedGradients);

        let cancel = AtomicBool::new(false);
        let mut calls = 0;
        let mut stop = |_: &ExplainProgress<'_>| {
            calls += 1;
            cancel.store(true, Ordering::Relaxed);
        };
        let r = explain(
            &model,
            x.view(),
            bg.view(),
            &p,
            Some(&mut stop),
            Some(&cancel),
        );
        assert!(matches!(r, Err(ExplainError::Cancelled(_))), "{method:?}");
        assert_eq!(calls, 1);
    }
}

#[test]
fn bad_inputs_are_errors() {
    let (model, x, bg) = fixture(6, 43);
    let p = params(Method::Permutation, 10, Units::Probability, 0);
    let short = Array1::<f32>::zeros(5);
    assert!(matches!(
        explain(&model, short.view(), bg.view(), &p, None, None),
        Err(ExplainError::InputShape {
            expected: 6,
            got: 5
        })
    ));
    let narrow = Array2::<f32>::zeros((3, 4));
    assert!(matches!(
        explain(&model, x.view(), narrow.view(), &p, None, None),
        Err(ExplainError::BackgroundShape {
            expected: 6,
            got: 4
        })
    ));
    let empty = Array2::<f32>::zeros((0, 6));
    assert!(matches!(
        explain(&model, x.view(), empty.view(), &p, None, None),
        Err(ExplainError::EmptyBackground)
    ));
    let p9 = ExplainParams {
        class: Some(3),
        ..p.clone()
    };
    assert!(matches!(
        explain(&model, x.view(), bg.view(), &p9, None, None),
        Err(ExplainError::ClassOutOfRange {
            class: 3,
            n_classes: 3
        })
    ));
    let p0 = ExplainParams { samples: 0, ..p };
    assert!(matches!(
        explain(&model, x.view(), bg.view(), &p0, None, None),
        Err(ExplainError::NoSamples)
    ));
}

#[test]
fn default_class_is_the_predicted_one() {
    let (model, x, bg) = fixture(6, 47);
    let probs = model.predict_proba(x.view().insert_axis(ndarray::Axis(0)));
    let predicted = layerscope::nn::argmax(probs.row(0).as_slice().unwrap());
    let p = ExplainParams {
        class: None,
        ..params(Method::GradientTimesInput, 1, Units::Probability, 0)
    };
    let a = run(&model, &x, &bg, &p);
    assert_eq!(a.class, predicted);
    assert!((a.output - f64::from(probs[[0, predicted]])).abs() < 1e-6);
}

// ---------- gradient methods ----------

/// Gradients against central finite differences (in f64 via the reference forward pass), and
/// integrated gradients' completeness gap shrinking with the number of steps.
#[test]
fn gradient_methods_are_right() {
    let n = 8;
    let (model, x, bg) = fixture(n, 53);
    for units in [Units::Probability, Units::Logit] {
        let p = params(Method::GradientTimesInput, 1, units, 2);
        let a = run(&model, &x, &bg, &p);
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        for i in 0..n {
            let h = 1e-6;
            let (mut up, mut down) = (x64.clone(), x64.clone());
            up[i] += h;
            down[i] -= h;
            let g = (f64_output(&model, &up, 2, units) - f64_output(&model, &down, 2, units))
                / (2.0 * h);
            let expect = g * x64[i]; // black baseline
            assert!(
                (f64::from(a.values[i]) - expect).abs() < 1e-4,
                "{units:?} {i}: {} vs {expect}",
                a.values[i]
            );
        }
        assert!((a.reference - f64_output(&model, &vec![0.0; n], 2, units)).abs() < 1e-6);

        let gap = |steps: usize| {
            let p = ExplainParams {
                baseline: Baseline::BackgroundMean,
                ..params(Method::IntegratedGradients, steps, units, 2)
            };
            run(&model, &x, &bg, &p).completeness_gap.abs()
        };
        let (coarse, fine) = (gap(2), gap(400));
        assert!(fine < 2e-4, "{units:?}: gap {fine} with 400 steps");
        assert!(fine <= coarse, "{units:?}: {fine} vs {coarse}");
    }
}

#[test]
fn a_prepared_background_gives_the_same_map() {
    let (model, x, bg) = fixture(9, 59);
    let prepared = PreparedBackground::new(&model, bg.view()).unwrap();
    for method in [Method::Permutation, Method::Notebook] {
        let p = params(method, 40, Units::Logit, 1);
        let a = run(&model, &x, &bg, &p);
        let b =
            explain_prepared(&model, x.view(), bg.view(), Some(&prepared), &p, None, None).unwrap();
        assert_eq!(a.values, b.values, "{method:?}");
        assert_eq!(a.stderr, b.stderr);
        assert_eq!((a.output, a.reference), (b.output, b.reference));
        assert_eq!(a.completeness_gap, b.completeness_gap);
    }
    let mean: f64 = outputs64(&model, bg.view(), 2, Units::Probability)
        .iter()
        .sum::<f64>()
        / bg.nrows() as f64;
    assert!((prepared.mean_output(2, Units::Probability) - mean).abs() < 1e-6);
    let fewer = bg.slice(ndarray::s![..2, ..]).to_owned();
    let p = params(Method::Permutation, 10, Units::Logit, 1);
    assert!(matches!(
        explain_prepared(
            &model,
            x.view(),
            fewer.view(),
            Some(&prepared),
            &p,
            None,
            None
        ),
        Err(ExplainError::PreparedMismatch)
    ));
}

#[test]
fn antithetic_pairs_round_an_odd_count_up() {
    let (model, x, bg) = fixture(6, 61);
    let p = ExplainParams {
        antithetic: true,
        ..params(Method::Permutation, 7, Units::Probability, 0)
    };
    assert_eq!(run(&model, &x, &bg, &p).samples, 8);
    let p = params(Method::Notebook, 7, Units::Probability, 0);
    assert_eq!(run(&model, &x, &bg, &p).samples, 7);
}

#[test]
fn evaluations_count_the_background_pass_when_made() {
    let (model, x, bg) = fixture(6, 67);
    let prepared = PreparedBackground::new(&model, bg.view()).unwrap();
    let p = params(Method::Permutation, 10, Units::Probability, 0);
    let own = run(&model, &x, &bg, &p);
    let pre =
        explain_prepared(&model, x.view(), bg.view(), Some(&prepared), &p, None, None).unwrap();
    assert_eq!(
        own.model_evaluations,
        pre.model_evaluations + bg.nrows() as u64
    );
    // One walk per permutation: at most n + 1 rows each, plus f(x).
    assert!(pre.model_evaluations <= 10 * 7 + 1);
}

#[test]
fn progress_every_zero_reports_once_at_the_end() {
    let (model, x, bg) = fixture(6, 71);
    for method in [
        Method::Permutation,
        Method::Notebook,
        Method::IntegratedGradients,
    ] {
        let p = params(method, 30, Units::Probability, 0);
        let mut seen = Vec::new();
        let mut cb = |pr: &ExplainProgress<'_>| seen.push(pr.samples_done);
        explain(&model, x.view(), bg.view(), &p, Some(&mut cb), None).unwrap();
        assert_eq!(seen, vec![30], "{method:?}");
    }
}

/// Thread-count independence at digit sizes, where the GEMMs are large enough to be split over
/// threads (the tiny fixtures above run single-threaded GEMMs).
#[test]
fn same_seed_same_map_on_digits_with_1_or_2_threads() {
    let data = layerscope::data::load_onboard().unwrap().into_unit_scale();
    let bg = data.features.slice(ndarray::s![..300, ..]).to_owned();
    let x = data.features.row(777).to_owned();
    let model = Mlp::new(&[784, 256, 128, 10], 73);
    for (method, samples) in [(Method::Permutation, 12), (Method::Notebook, 4)] {
        let p = ExplainParams {
            class: None,
            progress_every: 5,
            ..params(method, samples, Units::Probability, 0)
        };
        let in_pool = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| run(&model, &x, &bg, &p))
        };
        assert_eq!(in_pool(1), in_pool(2), "{method:?}");
    }
}

// ---------- defaults and degenerate inputs ----------

/// The one table of default budgets, and the one default method (`Permutation`).
#[test]
fn each_method_has_its_default_budget() {
    assert_eq!(Method::default(), Method::Permutation);
    assert_eq!(ExplainParams::default().method, Method::Permutation);
    assert_eq!(
        ExplainParams::default(),
        ExplainParams::for_method(Method::Permutation)
    );
    for (method, samples) in [
        (Method::IntegratedGradients, 50),
        (Method::Permutation, 200),
        (Method::Notebook, 200),
        (Method::GradientTimesInput, 1),
    ] {
        let p = ExplainParams::for_method(method);
        assert_eq!((p.method, p.samples), (method, samples), "{method:?}");
        assert_eq!(ExplainParams::default_samples(method), samples);
        assert_eq!(p.class, None);
        assert_eq!(p.units, Units::Probability);
    }
}

/// Models the engine cannot explain are errors, for every method and for the background pass,
/// never a panic (the notebook estimator divided by a zero layer width).
#[test]
fn degenerate_models_are_errors_not_panics() {
    let wide = Mlp::new(&[4, 3, 2], 1);
    let mut zero_hidden = wide.clone();
    zero_hidden.coefs[0] = Array2::zeros((4, 0));
    zero_hidden.intercepts[0] = Array1::zeros(0);
    zero_hidden.coefs[1] = Array2::zeros((0, 2));
    let mut no_outputs = wide.clone();
    no_outputs.coefs[1] = Array2::zeros((3, 0));
    no_outputs.intercepts[1] = Array1::zeros(0);
    let mut mismatched = wide.clone();
    mismatched.intercepts[0] = Array1::zeros(2);
    let no_layers = Mlp::from_layers(vec![], vec![], Activation::Relu, true);
    let no_features = Mlp::from_layers(
        vec![Array2::zeros((0, 3)), Array2::zeros((3, 2))],
        vec![Array1::zeros(3), Array1::zeros(2)],
        Activation::Relu,
        true,
    );
    let x = Array1::<f32>::from(vec![0.1, 0.2, 0.3, 0.4]);
    let bg = Array2::<f32>::from_elem((3, 4), 0.5);
    let cases = [
        (
            &zero_hidden,
            x.view(),
            bg.view(),
            ExplainError::EmptyLayer { layer: 1 },
        ),
        (
            &no_outputs,
            x.view(),
            bg.view(),
            ExplainError::EmptyLayer { layer: 2 },
        ),
        (
            &mismatched,
            x.view(),
            bg.view(),
            ExplainError::LayerShape { layer: 1 },
        ),
        (&no_layers, x.view(), bg.view(), ExplainError::NoLayers),
    ];
    let none = Array1::<f32>::zeros(0);
    let bg0 = Array2::<f32>::zeros((3, 0));
    let cases = cases.into_iter().chain([(
        &no_features,
        none.view(),
        bg0.view(),
        ExplainError::NoFeatures,
    )]);
    for (model, x, bg, expected) in cases {
        for method in [
            Method::Notebook,
            Method::Permutation,
            Method::GradientTimesInput,
            Method::IntegratedGradients,
        ] {
            for class in [None, Some(0)] {
                let p = ExplainParams {
                    class,
                    ..ExplainParams::for_method(method)
                };
                assert_eq!(
                    explain(model, x, bg, &p, None, None),
                    Err(expected.clone()),
                    "{method:?}"
                );
            }
        }
        assert_eq!(PreparedBackground::new(model, bg), Err(expected.clone()));
        let order: Vec<usize> = (0..x.len()).collect();
        assert_eq!(
            permutation_contributions(model, x, x, &order, 0, None, Units::Logit),
            Err(expected.clone())
        );
        assert_eq!(
            first_layer_path::<f32>(model, x, x, &order).map(|_| ()),
            Err(expected)
        );
    }
    // The walk hooks check the order is a permutation of the inputs.
    let order = [0, 1, 1, 3];
    assert!(
        permutation_contributions(&wide, x.view(), x.view(), &order, 0, None, Units::Logit)
            .is_err()
    );
}

// ---------- bookkeeping, contrast, class-level maps ----------

/// Exact Shapley values of any output function of the logits (a class, or a contrast), by
/// enumerating every coalition with the reference forward pass.
fn exact_shapley_of(
    x: ArrayView1<f32>,
    bg: ArrayView2<f32>,
    f: &dyn Fn(&[f64]) -> f64,
) -> Vec<f64> {
    let n = x.len();
    let v: Vec<f64> = (0..1usize << n)
        .map(|mask| {
            bg.rows()
                .into_iter()
                .map(|b| {
                    let z: Vec<f64> = (0..n)
                        .map(|i| f64::from(if mask >> i & 1 == 1 { x[i] } else { b[i] }))
                        .collect();
                    f(&z)
                })
                .sum::<f64>()
                / bg.nrows() as f64
        })
        .collect();
    let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
    (0..n)
        .map(|i| {
            (0..1usize << n)
                .filter(|m| m >> i & 1 == 0)
                .map(|m| {
                    let s = m.count_ones() as usize;
                    fact(s) * fact(n - s - 1) / fact(n) * (v[m | 1 << i] - v[m])
                })
                .sum()
        })
        .collect()
}

const ALL_METHODS: [Method; 4] = [
    Method::Notebook,
    Method::Permutation,
    Method::GradientTimesInput,
    Method::IntegratedGradients,
];

/// "Why 0 and not 2": the contrast of the exact (enumerated) network's Shapley values equals the
/// difference of the two classes' exact values, the engine's walks averaged over every
/// permutation reproduce it, and every method's contrast equals the difference of its two class
/// explanations drawn with the same seed.
#[test]
fn contrast_equals_the_difference_of_the_two_class_explanations() {
    let n = 7;
    let (model, x, bg) = fixture(n, 83);
    let perms = all_permutations(n);
    for units in [Units::Probability, Units::Logit] {
        let f = |z: &[f64]| f64_output(&model, z, 0, units) - f64_output(&model, z, 2, units);
        let exact_contrast = exact_shapley_of(x.view(), bg.view(), &f);
        let (e0, e2) = (
            exact_shapley(&model, x.view(), bg.view(), 0, units),
            exact_shapley(&model, x.view(), bg.view(), 2, units),
        );
        let mut walks = vec![0.0; n];
        for b in bg.rows() {
            for order in &perms {
                let c = permutation_contributions(&model, x.view(), b, order, 0, Some(2), units)
                    .unwrap();
                walks.iter_mut().zip(c).for_each(|(w, v)| *w += v);
            }
        }
        let count = (perms.len() * bg.nrows()) as f64;
        for i in 0..n {
            assert!((exact_contrast[i] - (e0[i] - e2[i])).abs() < 1e-12, "{i}");
            assert!(
                (walks[i] / count - exact_contrast[i]).abs() < 1e-9,
                "{units:?} feature {i}: walks {} vs exact {}",
                walks[i] / count,
                exact_contrast[i]
            );
        }
        assert!(exact_contrast.iter().any(|v| v.abs() > 1e-3));
        for method in ALL_METHODS {
            let p = |class: usize, versus: Option<usize>| ExplainParams {
                versus,
                baseline: Baseline::BackgroundMean,
                ..params(method, 300, units, class)
            };
            let both = run(&model, &x, &bg, &p(0, Some(2)));
            let (a0, a2) = (
                run(&model, &x, &bg, &p(0, None)),
                run(&model, &x, &bg, &p(2, None)),
            );
            assert_eq!((both.class, both.versus), (0, Some(2)));
            let scale = a0.values.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
            for i in 0..n {
                let diff = a0.values[i] - a2.values[i];
                assert!(
                    (both.values[i] - diff).abs() <= 1e-5 * scale.max(1e-3),
                    "{method:?} {units:?} feature {i}: {} vs {diff}",
                    both.values[i]
                );
            }
            let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            assert!((both.output - f(&x64)).abs() < 1e-6, "{method:?} f(x)");
            assert!((both.reference - (a0.reference - a2.reference)).abs() < 1e-9);
            if let Some(se) = &both.stderr {
                // The sampled contrast is close to the exact one.
                for i in 0..n {
                    let err = (f64::from(both.values[i]) - exact_contrast[i]).abs();
                    assert!(err <= 4.0 * f64::from(se[i]) + 1e-6, "{method:?} {i}");
                }
            }
        }
    }
    let same = ExplainParams {
        versus: Some(1),
        ..params(Method::Permutation, 10, Units::Logit, 1)
    };
    assert_eq!(
        explain(&model, x.view(), bg.view(), &same, None, None),
        Err(ExplainError::ContrastWithItself { class: 1 })
    );
    let out = ExplainParams {
        versus: Some(3),
        ..same
    };
    assert_eq!(
        explain(&model, x.view(), bg.view(), &out, None, None),
        Err(ExplainError::ClassOutOfRange {
            class: 3,
            n_classes: 3
        })
    );
}

/// Efficiency per method in both units, with the bookkeeping checked against an independent f64
/// forward pass: f(x), the base value E[f(b)] (or f(baseline)), the sum and the gap; the gap of
/// a sampling method within 4 of its reported standard errors of the sum, which is itself the
/// spread of f(b) over the background (permutations) predicted independently.
#[test]
fn efficiency_per_method_in_both_units() {
    let n = 8;
    let (model, x, bg) = fixture(n, 13);
    let class = 1;
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    for units in [Units::Probability, Units::Logit] {
        let f_x = f64_output(&model, &x64, class, units);
        let f_bg = outputs64(&model, bg.view(), class, units);
        let mean_bg = f_bg.iter().sum::<f64>() / f_bg.len() as f64;
        let sd_bg =
            (f_bg.iter().map(|v| (v - mean_bg).powi(2)).sum::<f64>() / f_bg.len() as f64).sqrt();
        for method in ALL_METHODS {
            for baseline in [Baseline::Black, Baseline::BackgroundMean] {
                let samples = match method {
                    Method::IntegratedGradients => 400,
                    _ => 2000,
                };
                let p = ExplainParams {
                    baseline,
                    ..params(method, samples, units, class)
                };
                let a = run(&model, &x, &bg, &p);
                let label = format!("{method:?} {units:?} {baseline:?}");
                assert_eq!(a.units, units);
                assert!(
                    (a.output - f_x).abs() < 1e-6 * f_x.abs().max(1.0),
                    "{label}"
                );
                let sum: f64 = a.values.iter().map(|&v| f64::from(v)).sum();
                assert!(
                    (a.sum - sum).abs() < 1e-5,
                    "{label}: sum {} vs {sum}",
                    a.sum
                );
                let base = match (method, baseline) {
                    (Method::Notebook | Method::Permutation, _) => mean_bg,
                    (_, Baseline::Black) => f64_output(&model, &vec![0.0; n], class, units),
                    (_, Baseline::BackgroundMean) => {
                        let m = bg.mean_axis(ndarray::Axis(0)).unwrap();
                        f64_output(&model, &m.mapv(f64::from).to_vec(), class, units)
                    }
                };
                assert!((a.reference - base).abs() < 1e-6, "{label}: base value");
                assert!(
                    (a.completeness_gap - (a.sum - (f_x - base))).abs() < 1e-6,
                    "{label}: gap"
                );
                match method {
                    Method::Permutation => {
                        // Each walk sums to f(x) - f(b): the sum's standard error is the
                        // background's spread of f over sqrt(walks).
                        let predicted = sd_bg / (samples as f64).sqrt();
                        let se = a.sum_stderr.unwrap();
                        assert!(
                            (se / predicted - 1.0).abs() < 0.1,
                            "{label}: se of the sum {se} vs predicted {predicted}"
                        );
                        assert!(a.completeness_gap.abs() <= 4.0 * se, "{label}");
                        let k = a.gap_in_stderrs().unwrap();
                        assert!((k - a.completeness_gap / se).abs() < 1e-12, "{label}");
                    }
                    Method::Notebook => {
                        let se = a.sum_stderr.unwrap();
                        let root_sum_sq = a
                            .stderr
                            .as_ref()
                            .unwrap()
                            .iter()
                            .map(|&s| f64::from(s).powi(2))
                            .sum::<f64>()
                            .sqrt();
                        assert!((se - root_sum_sq).abs() < 1e-6 * se, "{label}");
                        assert!(a.completeness_gap.abs() <= 4.0 * se, "{label}");
                    }
                    Method::IntegratedGradients => {
                        assert_eq!(a.sum_stderr, None);
                        // Completeness (Sundararajan et al. 2017, proposition 1), up to the
                        // midpoint rule's error at 400 steps.
                        assert!(a.completeness_gap.abs() < 2e-4, "{label}");
                    }
                    Method::GradientTimesInput => {
                        assert_eq!((a.sum_stderr, a.gap_in_stderrs()), (None, None));
                    }
                }
            }
        }
    }
    // Gradient x input is efficient for a linear logit (and only there).
    let linear = Mlp::new(&[n, 3], 5);
    let a = run(
        &linear,
        &x,
        &bg,
        &params(Method::GradientTimesInput, 1, Units::Logit, 2),
    );
    assert!(a.completeness_gap.abs() < 1e-5, "{}", a.completeness_gap);
}

/// Digits of one class: the first `k` rows of the on-board data with label `label`.
fn digits_of(label: u8, k: usize) -> (Array2<f32>, Array2<f32>) {
    let data = layerscope::data::load_onboard().unwrap().into_unit_scale();
    let rows: Vec<usize> = (0..data.labels.len())
        .filter(|&i| data.labels[i] == label)
        .take(k)
        .collect();
    let images = data.features.select(ndarray::Axis(0), &rows);
    let bg = data.features.slice(ndarray::s![..200, ..]).to_owned();
    (images, bg)
}

/// The class-level map is the mean of the single explanations (image j with seed + j), its
/// standard error the spread across images over sqrt(N), reported after every image, and it
/// stops when cancelled from the progress callback.
#[test]
fn class_mean_equals_the_mean_of_single_explanations() {
    let n = 9;
    let model = Mlp::new(&[n, 8, 6, 3], 89);
    let mut rng = ChaCha8Rng::seed_from_u64(90);
    let images = Array2::from_shape_fn((5, n), |_| rng.random::<f32>());
    let bg = Array2::from_shape_fn((6, n), |_| rng.random::<f32>());
    for method in ALL_METHODS {
        for versus in [None, Some(0)] {
            let p = ExplainParams {
                versus,
                seed: 7,
                ..ExplainParams::for_class_mean(method, 2)
            };
            let mut seen: Vec<(usize, usize, Vec<f32>, Vec<f32>)> = Vec::new();
            let mut cb = |pr: &layerscope::explain::ClassMeanProgress<'_>| {
                seen.push((
                    pr.images_done,
                    pr.images_total,
                    pr.values.to_vec(),
                    pr.latest.values.to_vec(),
                ));
            };
            let m = explain_class_mean(
                &model,
                images.view(),
                bg.view(),
                None,
                &p,
                Some(&mut cb),
                None,
            )
            .unwrap();
            let singles: Vec<_> = images
                .rows()
                .into_iter()
                .enumerate()
                .map(|(j, x)| {
                    let pj = ExplainParams {
                        seed: 7 + j as u64,
                        ..p.clone()
                    };
                    explain(&model, x, bg.view(), &pj, None, None).unwrap()
                })
                .collect();
            let k = singles.len() as f64;
            let label = format!("{method:?} versus {versus:?}");
            assert_eq!((m.images, m.class, m.versus), (5, 2, versus), "{label}");
            for i in 0..n {
                let vals: Vec<f64> = singles.iter().map(|a| f64::from(a.values[i])).collect();
                let mean = vals.iter().sum::<f64>() / k;
                let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
                assert!(
                    (f64::from(m.values[i]) - mean).abs() < 1e-6 * mean.abs().max(1e-3),
                    "{label} feature {i}: {} vs {mean}",
                    m.values[i]
                );
                assert!(
                    (f64::from(m.stderr[i]) - sd / k.sqrt()).abs() < 1e-5 * sd.max(1e-6),
                    "{label} feature {i}: se {} vs {}",
                    m.stderr[i],
                    sd / k.sqrt()
                );
            }
            let mean_output = singles.iter().map(|a| a.output).sum::<f64>() / k;
            assert!((m.output - mean_output).abs() < 1e-9, "{label}");
            assert!((m.reference - singles[0].reference).abs() < 1e-12);
            assert!((m.completeness_gap - (m.sum - (m.output - m.reference))).abs() < 1e-9);
            match &singles[0].stderr {
                Some(_) => {
                    let own: f64 = singles
                        .iter()
                        .map(|a| {
                            a.stderr
                                .as_ref()
                                .unwrap()
                                .iter()
                                .map(|&s| f64::from(s).powi(2))
                                .sum::<f64>()
                        })
                        .sum::<f64>()
                        / (k * k);
                    let total: f64 = m.stderr.iter().map(|&s| f64::from(s).powi(2)).sum();
                    let share = m.sampling_share.unwrap();
                    assert!(
                        (share - own / total).abs() < 1e-4 * share.max(1e-3),
                        "{label}"
                    );
                    let sum_se = singles
                        .iter()
                        .map(|a| a.sum_stderr.unwrap().powi(2))
                        .sum::<f64>()
                        .sqrt()
                        / k;
                    assert!((m.sum_stderr.unwrap() - sum_se).abs() < 1e-9, "{label}");
                }
                None => assert_eq!((m.sampling_share, m.sum_stderr), (None, None)),
            }
            // One report per image, the running mean ending at the map.
            let done: Vec<usize> = seen.iter().map(|s| s.0).collect();
            assert_eq!(done, vec![1, 2, 3, 4, 5], "{label}");
            assert!(seen.iter().all(|s| s.1 == 5));
            assert_eq!(seen[0].2, singles[0].values.to_vec(), "{label}");
            assert_eq!(seen[4].3, singles[4].values.to_vec(), "{label}");
            assert_eq!(seen.last().unwrap().2, m.values.to_vec());
        }
    }
    // Cancel from the progress callback after the second image.
    let cancel = AtomicBool::new(false);
    let mut calls = 0;
    let mut stop = |pr: &layerscope::explain::ClassMeanProgress<'_>| {
        calls += 1;
        if pr.images_done == 2 {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let p = ExplainParams::for_class_mean(Method::Permutation, 1);
    let r = explain_class_mean(
        &model,
        images.view(),
        bg.view(),
        None,
        &p,
        Some(&mut stop),
        Some(&cancel),
    );
    assert!(matches!(r, Err(ExplainError::Cancelled(_))));
    assert_eq!(calls, 2);
    // A class is required, and at least one image.
    let no_class = ExplainParams {
        class: None,
        ..p.clone()
    };
    assert_eq!(
        explain_class_mean(
            &model,
            images.view(),
            bg.view(),
            None,
            &no_class,
            None,
            None
        ),
        Err(ExplainError::NoClass)
    );
    let none = Array2::<f32>::zeros((0, n));
    assert_eq!(
        explain_class_mean(&model, none.view(), bg.view(), None, &p, None, None),
        Err(ExplainError::NoImages)
    );
}

/// A class-level map on digits: the same with 1 or 2 threads, changed by the seed, and a
/// prepared background gives the same map.
#[test]
fn class_mean_on_digits_is_thread_count_independent() {
    let (images, bg) = digits_of(4, 6);
    let model = Mlp::new(&[784, 64, 32, 10], 97);
    let p = ExplainParams::for_class_mean(Method::Permutation, 4);
    let in_pool = |threads: usize, p: &ExplainParams| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                explain_class_mean(&model, images.view(), bg.view(), None, p, None, None).unwrap()
            })
    };
    let one = in_pool(1, &p);
    assert_eq!(one, in_pool(2, &p));
    let prepared = PreparedBackground::new(&model, bg.view()).unwrap();
    let pre = explain_class_mean(
        &model,
        images.view(),
        bg.view(),
        Some(&prepared),
        &p,
        None,
        None,
    )
    .unwrap();
    assert_eq!(pre.values, one.values);
    assert_eq!(
        one.model_evaluations,
        pre.model_evaluations + bg.nrows() as u64
    );
    let other = in_pool(2, &ExplainParams { seed: 1, ..p });
    assert_ne!(one.values, other.values);
}

/// On real digits, a pixel where the image and every background row agree (the empty border)
/// gets exactly 0 from every method, with a standard error of exactly 0, in a single map and in
/// a class-level map; the other pixels do not all vanish.
#[test]
fn a_real_map_is_exactly_zero_where_image_and_background_agree() {
    let (images, bg) = digits_of(7, 4);
    let model = Mlp::new(&[784, 64, 32, 10], 101);
    let agree = |x: ArrayView1<f32>| -> Vec<usize> {
        (0..784)
            .filter(|&i| bg.column(i).iter().all(|&b| b == x[i]))
            .collect()
    };
    let x = images.row(0).to_owned();
    let quiet = agree(x.view());
    assert!(quiet.len() > 30, "{} agreeing pixels", quiet.len());
    for method in ALL_METHODS {
        for baseline in [Baseline::Black, Baseline::BackgroundMean] {
            let p = ExplainParams {
                baseline,
                ..params(method, 20, Units::Logit, 7)
            };
            let a = run(&model, &x, &bg, &p);
            for &i in &quiet {
                assert_eq!(a.values[i], 0.0, "{method:?} {baseline:?} pixel {i}");
                if let Some(se) = &a.stderr {
                    assert_eq!(se[i], 0.0, "{method:?} pixel {i}");
                }
            }
            let loud = a.values.iter().filter(|v| **v != 0.0).count();
            assert!(loud > 50, "{method:?} {baseline:?}: {loud} non-zero pixels");
        }
    }
    let m = explain_class_mean(
        &model,
        images.view(),
        bg.view(),
        None,
        &ExplainParams::for_class_mean(Method::Permutation, 7),
        None,
        None,
    )
    .unwrap();
    let everywhere: Vec<usize> = quiet
        .iter()
        .copied()
        .filter(|&i| images.column(i).iter().all(|&v| v == x[i]))
        .collect();
    assert!(everywhere.len() > 30);
    for &i in &everywhere {
        assert_eq!((m.values[i], m.stderr[i]), (0.0, 0.0), "pixel {i}");
    }
}

// ---------- activations other than ReLU, and models without a softmax ----------

/// With tanh, logistic and identity hidden layers, the permutation walks still average to the
/// exact Shapley values, and gradient x input matches finite differences of the f64 reference.
#[test]
fn every_activation_is_explained_exactly() {
    let n = 6;
    for activation in [Activation::Identity, Activation::Logistic, Activation::Tanh] {
        let (relu_model, x, bg) = fixture(n, 21);
        let model = Mlp::from_layers(
            relu_model.coefs.clone(),
            relu_model.intercepts.clone(),
            activation,
            true,
        );
        let perms = all_permutations(n);
        for units in [Units::Probability, Units::Logit] {
            let exact = exact_shapley(&model, x.view(), bg.view(), 0, units);
            let mut mean = vec![0.0; n];
            for b in bg.rows() {
                for order in &perms {
                    let c = permutation_contributions(&model, x.view(), b, order, 0, None, units)
                        .unwrap();
                    for (m, v) in mean.iter_mut().zip(c) {
                        *m += v;
                    }
                }
            }
            let count = (perms.len() * bg.nrows()) as f64;
            for (i, (m, e)) in mean.iter().zip(&exact).enumerate() {
                assert!(
                    (m / count - e).abs() < 1e-9,
                    "{activation} {units:?} feature {i}: {} vs exact {e}",
                    m / count
                );
            }
            assert!(
                exact.iter().any(|v| v.abs() > 1e-4),
                "{activation}: trivial"
            );

            let a = run(
                &model,
                &x,
                &bg,
                &params(Method::GradientTimesInput, 1, units, 0),
            );
            let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            for i in 0..n {
                let h = 1e-6;
                let (mut up, mut down) = (x64.clone(), x64.clone());
                up[i] += h;
                down[i] -= h;
                let g = (f64_output(&model, &up, 0, units) - f64_output(&model, &down, 0, units))
                    / (2.0 * h);
                assert!(
                    (f64::from(a.values[i]) - g * x64[i]).abs() < 1e-4,
                    "{activation} {units:?} {i}: {} vs {}",
                    a.values[i],
                    g * x64[i]
                );
            }
        }
    }
}

/// A model without a softmax is explained in logits (its own outputs) whatever units are asked
/// for: the attribution says so, and its values are the logit explanation of the same weights.
#[test]
fn a_model_without_softmax_is_explained_in_logits() {
    let n = 6;
    let (model, x, bg) = fixture(n, 33);
    let mut raw = model.clone();
    raw.softmax = false;
    for method in [Method::Permutation, Method::IntegratedGradients] {
        let asked = params(method, 20, Units::Probability, 1);
        let a = run(&raw, &x, &bg, &asked);
        assert_eq!(a.units, Units::Logit, "{method:?}");
        let logit = run(&model, &x, &bg, &params(method, 20, Units::Logit, 1));
        assert_eq!(a.values, logit.values, "{method:?}");
        assert!(
            (a.output - f64_output(&model, &x.mapv(f64::from).to_vec(), 1, Units::Logit)).abs()
                < 1e-5
        );
        let prob = run(&model, &x, &bg, &asked);
        assert_eq!(prob.units, Units::Probability);
        assert_ne!(prob.values, a.values);
    }
}
