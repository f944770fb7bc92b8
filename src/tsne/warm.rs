//! Warm-started t-SNE for a sequence of related inputs (the film, issue 12: every layer's map
//! at every epoch, each frame starting from its neighbour frame's layout).
//!
//! [`tsne_warm`] runs the same pipeline as [`super::tsne_from`] (exact k nearest neighbours,
//! perplexity calibration, Barnes-Hut descent) but finds the high-dimensional neighbours once
//! for everything a frame needs: the affinities, the trust figure (the first [`TRUST_K`] of
//! the 3 * perplexity + 1 neighbours are the trust's own: the exact search ranks by distance,
//! ties to the lower index) and the neighbour lists that tell how much the layer changed since
//! the frame before ([`neighbour_change`]). A frame then costs one high-dimensional search
//! instead of two.

use std::sync::atomic::AtomicBool;

use ndarray::ArrayView2;

use super::metrics::{TRUST_K, overlap};
pub use super::optimise::Convergence;
use super::{Embedding, Method, TsneError, TsneParams, affinity, neighbours, optimise, validate};
use crate::Cancelled;

/// One warm (or cold) run and what the film keeps of it.
#[derive(Debug, Clone)]
pub struct WarmRun {
    /// The layout, KL and iterations run.
    pub embedding: Embedding,
    /// The trust figure of the layout ([`super::trust`]), `None` at 10 points or fewer.
    pub trust: Option<f64>,
    /// Each point's [`TRUST_K`] nearest neighbours in the input, n x k row-major (k is
    /// `TRUST_K` or n - 1 when smaller): the next frame's [`neighbour_change`] compares with it.
    pub neighbours: Vec<u32>,
    /// [`neighbour_change`] from the neighbours given to [`tsne_warm_adaptive`].
    pub change: Option<f64>,
    /// Each point's Gaussian precision (beta) found by the perplexity calibration of a
    /// [`tsne_warm_chain`] warm run (the next frame's search starts from it); empty when the
    /// engine's own calibration ran (a cold run), which does not report them.
    pub betas: Vec<f64>,
}

/// What a frame of a chain hands to the next frame of its layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chain<'a> {
    /// The frame's input neighbours ([`WarmRun::neighbours`]).
    pub neighbours: Option<&'a [u32]>,
    /// The frame's precisions ([`WarmRun::betas`]).
    pub betas: Option<&'a [f64]>,
}

/// What `iterations` of [`tsne_warm_adaptive`] / [`tsne_warm_chain`] returns for a frame whose
/// input changed too much for a warm start to mean anything: the run is then a cold one (the
/// random start of `params.seed`, early exaggeration and the iteration counts of
/// [`TsneParams::default`]) on the same affinities, and the caller may turn the result onto
/// `init` (as `compute::film::frame_run` does). A warm run of no iterations would be `init`.
pub const RESTART: usize = 0;

/// t-SNE of `data` from `init` (`None`: the random start of `params.seed`), exact neighbours
/// and Barnes-Hut repulsion whatever `params.method` says (the film's frames are a few thousand
/// points at most), with the trust of the result computed from the same neighbour search.
///
/// # Errors
/// As [`super::tsne_from`].
pub fn tsne_warm(
    data: ArrayView2<f32>,
    init: Option<ArrayView2<f32>>,
    params: &TsneParams,
    cancel: Option<&AtomicBool>,
) -> Result<WarmRun, TsneError> {
    tsne_warm_adaptive(data, init, params, None, &|_| params.n_iter, cancel)
}

/// [`tsne_warm`] whose iteration count depends on how much the input changed: `iterations`
/// gets the [`neighbour_change`] from `previous` (the neighbours of the frame it starts from,
/// [`WarmRun::neighbours`]; `params.n_iter` when not given) and returns the iterations to run.
///
/// # Errors
/// As [`super::tsne_from`].
pub fn tsne_warm_adaptive(
    data: ArrayView2<f32>,
    init: Option<ArrayView2<f32>>,
    params: &TsneParams,
    previous: Option<&[u32]>,
    iterations: &dyn Fn(f64) -> usize,
    cancel: Option<&AtomicBool>,
) -> Result<WarmRun, TsneError> {
    let chain = Chain {
        neighbours: previous,
        betas: None,
    };
    warm_run(
        data,
        init,
        params,
        chain,
        false,
        &|c| fixed(iterations, c),
        cancel,
    )
}

/// [`tsne_warm_adaptive`] for a frame of a chain: a warm run (`init` given) calibrates each
/// point's perplexity by Newton steps started from the previous frame's precision
/// (`chain.betas`, [`calibrate`]) instead of the engine's bisection from 1, and returns the
/// precisions found for the next frame. The input changes little from frame to frame, so
/// each point needs 2-4 steps instead of the bisection's 20-60; the affinities meet the same
/// tolerance on the perplexity. A cold run (`init` `None`) is [`tsne_warm_adaptive`]'s, the
/// engine's run bit for bit.
///
/// # Errors
/// As [`super::tsne_from`].
pub fn tsne_warm_chain(
    data: ArrayView2<f32>,
    init: Option<ArrayView2<f32>>,
    params: &TsneParams,
    chain: Chain<'_>,
    iterations: &dyn Fn(f64) -> usize,
    cancel: Option<&AtomicBool>,
) -> Result<WarmRun, TsneError> {
    tsne_warm_scheduled(data, init, params, chain, &|c| fixed(iterations, c), cancel)
}

/// How a warm frame of a chain runs, chosen from how much its input changed
/// ([`tsne_warm_scheduled`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// The most iterations it runs ([`RESTART`]: a cold run instead).
    pub iterations: usize,
    /// Its learning rate (`None`: the parameters').
    pub learning_rate: Option<f64>,
    /// Its stopping rule besides `iterations` (`None`: it runs all of them).
    pub convergence: Option<Convergence>,
}

/// [`tsne_warm_chain`] whose warm run follows `schedule` of the [`neighbour_change`]:
/// iterations, learning rate and stopping rule. Without a change to go by (no `init`, or no
/// neighbours from the chain) the run is `params`' as [`tsne_warm_chain`] makes it; a restart
/// is the engine's cold run whatever the schedule says besides its iterations.
///
/// # Errors
/// As [`super::tsne_from`].
pub fn tsne_warm_scheduled(
    data: ArrayView2<f32>,
    init: Option<ArrayView2<f32>>,
    params: &TsneParams,
    chain: Chain<'_>,
    schedule: &dyn Fn(f64) -> Schedule,
    cancel: Option<&AtomicBool>,
) -> Result<WarmRun, TsneError> {
    warm_run(data, init, params, chain, init.is_some(), schedule, cancel)
}

impl Schedule {
    /// `iterations` at the parameters' learning rate, with no other stopping rule.
    pub fn fixed(iterations: usize) -> Self {
        Schedule {
            iterations,
            learning_rate: None,
            convergence: None,
        }
    }
}

/// The schedule of an iteration rule alone.
fn fixed(iterations: &dyn Fn(f64) -> usize, change: f64) -> Schedule {
    Schedule::fixed(iterations(change))
}

fn warm_run(
    data: ArrayView2<f32>,
    init: Option<ArrayView2<f32>>,
    params: &TsneParams,
    chain: Chain<'_>,
    newton: bool,
    schedule: &dyn Fn(f64) -> Schedule,
    cancel: Option<&AtomicBool>,
) -> Result<WarmRun, TsneError> {
    let previous = chain.neighbours;
    validate(data, params)?;
    let n = data.nrows();
    if let Some(init) = init
        && (init.dim() != (n, 2) || init.iter().any(|v| !v.is_finite()))
    {
        return Err(TsneError::InvalidParams(format!(
            "initial layout must be {n} x 2 and finite"
        )));
    }
    let cancelled = || cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed));
    // scikit-learn: n_neighbors = min(n - 1, int(3 * perplexity + 1)); at least the trust's.
    let k_p = (n - 1).min((3.0 * params.perplexity + 1.0) as usize);
    let k_trust = TRUST_K.min(n - 1);
    let knn = neighbours::knn(data, k_p.max(k_trust));
    if cancelled() {
        return Err(Cancelled.into());
    }
    let k = knn.k;
    let first = |m: usize| -> Vec<u32> {
        knn.indices
            .chunks_exact(k)
            .flat_map(|row| row[..m].iter().copied())
            .collect()
    };
    let calibrated = |knn: &neighbours::Knn| -> (affinity::SparseP, Vec<f64>) {
        if newton {
            let (cond, betas) = calibrate(knn, params.perplexity, chain.betas);
            (joint(knn, &cond), betas)
        } else {
            (affinity::sparse_p(knn, params.perplexity), Vec::new())
        }
    };
    let (affinities, betas) = if k_p == k {
        calibrated(&knn)
    } else {
        let d2 = knn
            .d2
            .chunks_exact(k)
            .flat_map(|row| row[..k_p].iter().copied())
            .collect();
        calibrated(&neighbours::Knn {
            k: k_p,
            indices: first(k_p),
            d2,
        })
    };
    let high = first(k_trust);
    drop(knn);
    if cancelled() {
        return Err(Cancelled.into());
    }
    let change = previous
        .filter(|p| p.len() == high.len())
        .map(|p| neighbour_change(p, &high, n));
    let schedule = change.map_or(Schedule::fixed(params.n_iter), schedule);
    let n_iter = schedule.iterations;
    let restart = init.is_some() && change.is_some() && n_iter == RESTART;
    let start = match init.filter(|_| !restart) {
        Some(layout) => layout.to_owned(),
        None => match params.init {
            super::Init::Random => optimise::random_init(n, params.seed),
            super::Init::Pca => super::pca::pca_init(data),
        },
    };
    let params = if restart {
        let cold = TsneParams::default();
        TsneParams {
            method: Method::BarnesHut,
            exaggeration_iter: cold.exaggeration_iter,
            n_iter: cold.n_iter,
            n_iter_without_progress: cold.n_iter_without_progress,
            ..params.clone()
        }
    } else {
        TsneParams {
            method: Method::BarnesHut,
            n_iter,
            // A short adaptive run is never stopped for "no progress" (checked every 50).
            n_iter_without_progress: if change.is_some() {
                params.n_iter_without_progress.max(n_iter)
            } else {
                params.n_iter_without_progress
            },
            learning_rate: schedule
                .learning_rate
                .filter(|_| init.is_some())
                .or(params.learning_rate),
            ..params.clone()
        }
    };
    let convergence = schedule.convergence.filter(|_| init.is_some() && !restart);
    let embedding = optimise::run_until(
        start,
        &affinity::Affinities::Sparse(affinities),
        optimise::Repulsion::BarnesHut,
        &params,
        None,
        None,
        cancel,
        convergence,
    )?;
    let trust = (n > TRUST_K).then(|| {
        let low = neighbours::knn(embedding.coords.view(), k_trust);
        overlap(&high, &low.indices, k_trust)
    });
    Ok(WarmRun {
        embedding,
        trust,
        neighbours: high,
        change,
        betas,
    })
}

/// The bisection's tolerance on a row's entropy (scikit-learn's `PERPLEXITY_TOLERANCE`, a C
/// float there).
const ENTROPY_TOLERANCE: f64 = 1e-5_f32 as f64;
/// At most this many steps per row (scikit-learn's bisection: 100).
const CALIBRATION_STEPS: usize = 100;

/// Each point's conditional p_{j|i} over its `knn` neighbours at `perplexity` (n x k
/// row-major, f32 as the engine stores it) and the precision beta found, by safeguarded
/// Newton steps on the entropy H(beta) = ln Z + beta E[d] (dH/dbeta = -beta Var[d]) from
/// `start` (the previous frame's betas; else k / sum d, the inverse mean distance), falling
/// back on doubling or bisection whenever a step leaves the bracket. Stops at the engine's
/// tolerance, so the affinities are the engine's to within it. Distances are taken relative
/// to the nearest neighbour, as the engine does.
pub fn calibrate(
    knn: &neighbours::Knn,
    perplexity: f64,
    start: Option<&[f64]>,
) -> (Vec<f32>, Vec<f64>) {
    use rayon::prelude::*;
    let k = knn.k;
    let n = knn.d2.len() / k.max(1);
    let mut cond = vec![0f32; n * k];
    let mut betas = vec![0f64; n];
    if k == 0 {
        return (cond, betas);
    }
    let start = start.filter(|s| s.len() == n);
    let target = perplexity.ln();
    cond.par_chunks_mut(k)
        .zip(betas.par_iter_mut())
        .zip(knn.d2.par_chunks(k))
        .enumerate()
        .with_min_len(64)
        .for_each_init(
            || (vec![0f64; k], vec![0f64; k]),
            |(buf, w), (i, ((out, beta_out), d2))| {
                let d_min = d2
                    .iter()
                    .map(|&d| f64::from(d))
                    .fold(f64::INFINITY, f64::min);
                for (b, &d) in buf.iter_mut().zip(d2) {
                    *b = f64::from(d) - d_min;
                }
                let mean = buf.iter().sum::<f64>() / k as f64;
                let guess = start
                    .map(|s| s[i])
                    .filter(|b| b.is_finite() && *b > 0.0)
                    .unwrap_or(if mean > 0.0 { 1.0 / mean } else { 1.0 });
                let beta = newton_row(buf, target, guess, w, out);
                *beta_out = beta;
            },
        );
    (cond, betas)
}

/// One row of [`calibrate`]: `d` the distances relative to the nearest; writes p into `out`.
/// `w` is scratch of `d`'s length: the kernel values of the last step, which the row's p are
/// made of once that step meets the tolerance (not computed again).
fn newton_row(d: &[f64], target: f64, guess: f64, w: &mut [f64], out: &mut [f32]) -> f64 {
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    let mut beta = guess;
    for _ in 0..CALIBRATION_STEPS {
        let (mut sz, mut sd, mut sd2) = (0.0f64, 0.0f64, 0.0f64);
        for (wj, &dj) in w.iter_mut().zip(d) {
            *wj = (-dj * beta).exp();
            sz += *wj;
            sd += *wj * dj;
            sd2 += *wj * dj * dj;
        }
        let z = sz.max(1e-8);
        let (mean, mean2) = (sd / z, sd2 / z);
        let entropy = z.ln() + beta * mean;
        let diff = entropy - target;
        if diff.abs() <= ENTROPY_TOLERANCE {
            for (o, &wj) in out.iter_mut().zip(w.iter()) {
                *o = (wj / z) as f32;
            }
            return beta;
        }
        // The entropy falls as beta grows.
        if diff > 0.0 {
            lo = beta;
        } else {
            hi = beta;
        }
        let slope = beta * (mean2 - mean * mean);
        let step = beta + diff / slope;
        beta = if slope > 0.0 && step.is_finite() && step > lo && step < hi {
            step
        } else if hi.is_infinite() {
            beta * 2.0
        } else {
            (lo + hi) / 2.0
        };
    }
    // Out of steps (as the engine's bisection may be): the last beta, normalised.
    let z: f64 = d.iter().map(|&dj| (-dj * beta).exp()).sum();
    for (o, &dj) in out.iter_mut().zip(d) {
        *o = ((-dj * beta).exp() / z.max(1e-8)) as f32;
    }
    beta
}

/// The symmetric joint P of conditional probabilities `cond` over `knn` (scikit-learn's
/// `_joint_probabilities_nn`, as [`affinity::sparse_p`] makes it: (P + P^T) / sum, CSR with
/// ascending columns, f32 sums), built row by row instead of by sorting every entry:
/// identical output for the same `cond`.
pub fn joint(knn: &neighbours::Knn, cond: &[f32]) -> affinity::SparseP {
    let k = knn.k;
    let n = cond.len() / k.max(1);
    // The transposed entries by row: row j holds (i, p_{j|i}) for every i with j among its
    // neighbours, i ascending.
    let mut rev_ptr = vec![0usize; n + 1];
    for &j in &knn.indices {
        rev_ptr[j as usize + 1] += 1;
    }
    for j in 0..n {
        rev_ptr[j + 1] += rev_ptr[j];
    }
    let mut fill = rev_ptr.clone();
    let mut rev: Vec<(u32, f32)> = vec![(0, 0.0); knn.indices.len()];
    for (i, (row, p)) in knn
        .indices
        .chunks_exact(k)
        .zip(cond.chunks_exact(k))
        .enumerate()
    {
        for (&j, &v) in row.iter().zip(p) {
            rev[fill[j as usize]] = (i as u32, v);
            fill[j as usize] += 1;
        }
    }
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0usize);
    let mut indices = Vec::with_capacity(2 * n * k);
    let mut values: Vec<f32> = Vec::with_capacity(2 * n * k);
    let mut forward: Vec<(u32, f32)> = Vec::with_capacity(k);
    for (i, (row, p)) in knn
        .indices
        .chunks_exact(k)
        .zip(cond.chunks_exact(k))
        .enumerate()
    {
        forward.clear();
        forward.extend(row.iter().copied().zip(p.iter().copied()));
        forward.sort_unstable_by_key(|e| e.0);
        let back = &rev[rev_ptr[i]..rev_ptr[i + 1]];
        let (mut a, mut b) = (0, 0);
        while a < forward.len() || b < back.len() {
            let fa = forward.get(a).map_or(u32::MAX, |e| e.0);
            let bb = back.get(b).map_or(u32::MAX, |e| e.0);
            if fa == bb {
                indices.push(fa);
                values.push(forward[a].1 + back[b].1);
                a += 1;
                b += 1;
            } else if fa < bb {
                indices.push(fa);
                values.push(forward[a].1);
                a += 1;
            } else {
                indices.push(bb);
                values.push(back[b].1);
                b += 1;
            }
        }
        indptr.push(indices.len());
    }
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    let sum = sum.max(affinity::MACHINE_EPSILON);
    for v in &mut values {
        *v = (f64::from(*v) / sum) as f32;
    }
    affinity::SparseP {
        indptr,
        indices,
        values,
    }
}

/// CPU-free wall seconds of a warm frame's fixed parts on `data` (for `benches/film.rs`): the
/// exact neighbour search, the engine's calibration and joint P, the Newton calibration from
/// `betas` and [`joint`], and the trust's search of a 2-D layout `low`.
#[doc(hidden)]
pub fn part_seconds(
    data: ArrayView2<f32>,
    low: ArrayView2<f32>,
    perplexity: f64,
    betas: Option<&[f64]>,
) -> [(&'static str, f64); 5] {
    let time = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let k = (data.nrows() - 1).min((3.0 * perplexity + 1.0) as usize);
    let mut knn = None;
    let search = time(&mut || knn = Some(neighbours::knn(data, k)));
    let knn = knn.expect("searched");
    let engine = time(&mut || drop(affinity::sparse_p(&knn, perplexity)));
    let mut cond = Vec::new();
    let newton = time(&mut || cond = calibrate(&knn, perplexity, betas).0);
    let sym = time(&mut || drop(joint(&knn, &cond)));
    let trust = time(&mut || drop(neighbours::knn(low, TRUST_K)));
    [
        ("knn", search),
        ("engine calibration + P", engine),
        ("Newton calibration", newton),
        ("joint P", sym),
        ("trust's 2-D search", trust),
    ]
}

/// How much a layer changed between two frames: the share of each point's nearest
/// neighbours (two [`WarmRun::neighbours`] lists of the same points) that are new, 0 (the
/// same neighbourhoods) to 1 (all new).
pub fn neighbour_change(before: &[u32], after: &[u32], n: usize) -> f64 {
    assert_eq!(
        before.len(),
        after.len(),
        "two neighbour lists of the same points"
    );
    if n == 0 || before.is_empty() {
        return 0.0;
    }
    1.0 - overlap(before, after, before.len() / n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn blobs(n: usize, d: usize, shift: f32) -> Array2<f32> {
        Array2::from_shape_fn((n, d), |(i, j)| {
            let c = (i % 4) as f32;
            (((i * 7919 + j * 104_729) % 1000) as f32 / 1000.0) + c * 3.0 + shift * (j as f32)
        })
    }

    #[test]
    fn the_trust_from_the_shared_search_is_the_engines() {
        let x = blobs(400, 24, 0.0);
        let params = TsneParams {
            perplexity: 10.0,
            n_iter: 300,
            ..TsneParams::default()
        };
        let run = tsne_warm(x.view(), None, &params, None).expect("run");
        assert_eq!(
            run.trust,
            super::super::trust(x.view(), run.embedding.coords.view())
        );
        assert_eq!(run.neighbours, neighbours::knn(x.view(), TRUST_K).indices);
    }

    #[test]
    fn a_cold_run_is_the_engines_run() {
        let x = blobs(300, 20, 0.0);
        let params = TsneParams {
            perplexity: 12.0,
            n_iter: 300,
            ..TsneParams::default()
        };
        let ours = tsne_warm(x.view(), None, &params, None).expect("run");
        let engine = super::super::tsne(x.view(), &params, None, None).expect("run");
        assert_eq!(ours.embedding.coords, engine.coords);
        let from = tsne_warm(x.view(), Some(engine.coords.view()), &params, None).expect("run");
        let engine_from =
            super::super::tsne_from(x.view(), engine.coords.view(), &params, None, None)
                .expect("run");
        assert_eq!(from.embedding.coords, engine_from.coords);
    }

    #[test]
    fn the_iterations_follow_the_neighbour_change() {
        let x = blobs(300, 20, 0.0);
        let params = TsneParams {
            perplexity: 12.0,
            n_iter: 300,
            ..TsneParams::default()
        };
        let first = tsne_warm(x.view(), None, &params, None).expect("run");
        assert_eq!(first.change, None);
        let warm = TsneParams {
            exaggeration_iter: 0,
            n_iter: 150,
            ..params
        };
        let rule = |change: f64| if change < 0.1 { 20 } else { 120 };
        let init = first.embedding.coords.view();
        let same = tsne_warm_adaptive(
            x.view(),
            Some(init),
            &warm,
            Some(&first.neighbours),
            &rule,
            None,
        )
        .expect("run");
        assert_eq!((same.change, same.embedding.n_iter), (Some(0.0), 20));
        // The same points shuffled: most points' neighbours are new ones.
        let moved = Array2::from_shape_fn((300, 20), |(i, j)| x[[(i * 7) % 300, j]]);
        let other = tsne_warm_adaptive(
            moved.view(),
            Some(init),
            &warm,
            Some(&first.neighbours),
            &rule,
            None,
        )
        .expect("run");
        assert!(other.change.is_some_and(|c| c >= 0.1), "{:?}", other.change);
        assert_eq!(other.embedding.n_iter, 120);
        let plain = tsne_warm(moved.view(), Some(init), &warm, None).expect("run");
        assert_eq!(plain.embedding.n_iter, 150);
    }

    #[test]
    fn a_restart_is_the_engines_cold_run_whatever_the_start() {
        let x = blobs(300, 20, 0.0);
        let cold = TsneParams {
            perplexity: 12.0,
            ..TsneParams::default()
        };
        let first = tsne_warm(x.view(), None, &cold, None).expect("run");
        let warm = TsneParams {
            exaggeration_iter: 0,
            n_iter: 150,
            ..cold.clone()
        };
        let moved = Array2::from_shape_fn((300, 20), |(i, j)| x[[(i * 7) % 300, j]]);
        let restart = |change: f64| if change < 0.1 { 20 } else { RESTART };
        let run = |init: ArrayView2<f32>| {
            tsne_warm_adaptive(
                moved.view(),
                Some(init),
                &warm,
                Some(&first.neighbours),
                &restart,
                None,
            )
            .expect("run")
        };
        let a = run(first.embedding.coords.view());
        let b = run(first.embedding.coords.mapv(|v| -2.0 * v + 5.0).view());
        assert!(a.change.is_some_and(|c| c >= 0.1), "{:?}", a.change);
        assert_eq!(a.embedding.coords, b.embedding.coords);
        let engine = super::super::tsne(moved.view(), &cold, None, None).expect("run");
        assert_eq!(a.embedding.coords, engine.coords);
        assert_eq!(a.embedding.n_iter, engine.n_iter);
        // Below the rule's threshold the same call is a warm run from `init`.
        let same = tsne_warm_adaptive(
            x.view(),
            Some(first.embedding.coords.view()),
            &warm,
            Some(&first.neighbours),
            &restart,
            None,
        )
        .expect("run");
        assert_eq!(same.embedding.n_iter, 20);
    }

    #[test]
    fn a_scheduled_frame_stops_once_its_kl_settles() {
        let x = blobs(300, 20, 0.0);
        let params = TsneParams {
            perplexity: 12.0,
            ..TsneParams::default()
        };
        let first = tsne_warm(x.view(), None, &params, None).expect("run");
        let warm = TsneParams {
            exaggeration_iter: 0,
            n_iter: 150,
            ..params
        };
        let run = |schedule: Schedule| {
            tsne_warm_scheduled(
                x.view(),
                Some(first.embedding.coords.view()),
                &warm,
                Chain {
                    neighbours: Some(&first.neighbours),
                    betas: None,
                },
                &|change| {
                    assert_eq!(change, 0.0, "the same input");
                    schedule
                },
                None,
            )
            .expect("run")
        };
        let rule = Convergence {
            every: 25,
            after: 50,
            tolerance: 2e-3,
        };
        let full = Schedule::fixed(400);
        // From its own converged layout the KL barely moves: the first check that may stop
        // does (the error of the layout after 50 iterations, then that iteration's step).
        let stopped = run(Schedule {
            convergence: Some(rule),
            ..full
        });
        assert_eq!(stopped.embedding.n_iter, 51);
        assert_eq!(run(full).embedding.n_iter, 400);
        // A tolerance no decrease can meet never stops it before its iterations.
        let never = run(Schedule {
            convergence: Some(Convergence {
                tolerance: -1.0,
                ..rule
            }),
            ..full
        });
        assert_eq!(never.embedding.coords, run(full).embedding.coords);
        // The schedule's learning rate is the run's.
        let faster = run(Schedule {
            learning_rate: Some(400.0),
            ..full
        });
        assert_ne!(faster.embedding.coords, run(full).embedding.coords);
        let same = run(Schedule {
            learning_rate: Some(crate::tsne::optimise::auto_learning_rate(300, 12.0)),
            ..full
        });
        assert_eq!(same.embedding.coords, run(full).embedding.coords);
    }

    #[test]
    fn the_joint_p_is_the_engines_for_the_same_conditional_p() {
        let x = blobs(300, 20, 0.0);
        let knn = neighbours::knn(x.view(), 31);
        let cond = affinity::conditional_p(&knn, 10.0);
        let ours = joint(&knn, &cond);
        let engine = affinity::sparse_p(&knn, 10.0);
        assert_eq!(ours.indptr, engine.indptr);
        assert_eq!(ours.indices, engine.indices);
        assert_eq!(ours.values, engine.values);
    }

    /// The perplexity of row `p` (natural log entropy).
    fn perplexity_of(p: &[f32]) -> f64 {
        let sum: f64 = p.iter().map(|&v| f64::from(v)).sum();
        let h: f64 = p
            .iter()
            .map(|&v| f64::from(v) / sum)
            .filter(|&v| v > 0.0)
            .map(|v| -v * v.ln())
            .sum();
        h.exp()
    }

    #[test]
    fn newton_calibration_meets_the_perplexity_from_any_start() {
        let x = blobs(300, 20, 0.0);
        let knn = neighbours::knn(x.view(), 31);
        let engine = affinity::conditional_p(&knn, 10.0);
        let (cold, betas) = calibrate(&knn, 10.0, None);
        // A start far off (x1000) and the betas found: the same tolerance is met.
        let far: Vec<f64> = betas.iter().map(|b| b * 1000.0).collect();
        let (from_far, _) = calibrate(&knn, 10.0, Some(&far));
        let (warm, again) = calibrate(&knn, 10.0, Some(&betas));
        for p in [&cold, &from_far, &warm] {
            for (row, e) in p.chunks_exact(31).zip(engine.chunks_exact(31)) {
                assert!((perplexity_of(row) - 10.0).abs() < 1e-3, "{row:?}");
                for (a, b) in row.iter().zip(e) {
                    assert!((a - b).abs() < 1e-4, "{a} vs the engine's {b}");
                }
            }
        }
        for (a, b) in again.iter().zip(&betas) {
            assert!((a / b - 1.0).abs() < 1e-3);
        }
        // A chain run: its precisions are handed on; a cold run is the engine's.
        let params = TsneParams {
            perplexity: 10.0,
            n_iter: 100,
            ..TsneParams::default()
        };
        let first = tsne_warm_chain(x.view(), None, &params, Chain::default(), &|_| 100, None)
            .expect("run");
        assert!(first.betas.is_empty());
        let engine_run = super::super::tsne(x.view(), &params, None, None).expect("run");
        assert_eq!(first.embedding.coords, engine_run.coords);
        let init = first.embedding.coords.view();
        let next = tsne_warm_chain(
            x.view(),
            Some(init),
            &params,
            Chain {
                neighbours: Some(&first.neighbours),
                betas: None,
            },
            &|_| 50,
            None,
        )
        .expect("run");
        assert_eq!(next.betas.len(), 300);
        assert_eq!(next.embedding.n_iter, 50);
        assert!(next.embedding.kl_divergence.is_finite());
    }

    #[test]
    fn neighbour_change_counts_new_neighbours() {
        assert_eq!(
            neighbour_change(&[1, 2, 0, 2, 0, 1], &[1, 2, 0, 2, 0, 1], 3),
            0.0
        );
        assert_eq!(
            neighbour_change(&[1, 2, 0, 2, 0, 1], &[2, 1, 2, 0, 1, 0], 3),
            0.0
        );
        assert!(
            (neighbour_change(&[1, 2, 0, 2, 0, 1], &[1, 0, 0, 2, 0, 1], 3) - 1.0 / 6.0).abs()
                < 1e-12
        );
        let a = blobs(200, 16, 0.0);
        let b = blobs(200, 16, 0.5);
        let na = neighbours::knn(a.view(), 10).indices;
        let nb = neighbours::knn(b.view(), 10).indices;
        assert_eq!(neighbour_change(&na, &na, 200), 0.0);
        assert!(neighbour_change(&na, &nb, 200) > 0.0);
    }
}
