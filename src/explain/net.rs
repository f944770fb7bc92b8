//! The MLP specialised for attributions: the first layer kept apart (so a walk can update its
//! pre-activation one input at a time), the rest evaluated as batched GEMMs, outputs reduced to the
//! one class being explained, and a batched input gradient. Generic over f32 (speed) and f64
//! (exactness checks).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, LinalgScalar};

use rayon::prelude::*;

use super::Units;
use crate::nn::{Activation, Mlp};

/// A float type the attribution code runs in: f32 for speed, f64 for exactness checks.
pub trait Real:
    LinalgScalar
    + PartialOrd
    + Send
    + Sync
    + std::fmt::Debug
    + std::iter::Sum
    + std::ops::AddAssign
    + ndarray::ScalarOperand
    + 'static
{
    /// The value of an f32 (exact for both types).
    fn from_f32(v: f32) -> Self;
    /// The value as f64 (exact for both types).
    fn to_f64(self) -> f64;
    /// A hidden activation applied to the value, in this type.
    fn activate(self, activation: Activation) -> Self;
    /// `c = a b`, overwriting `c`.
    fn matmul(a: ArrayView2<Self>, b: ArrayView2<Self>, mut c: ArrayViewMut2<Self>) {
        ndarray::linalg::general_mat_mul(Self::one(), &a, &b, Self::zero(), &mut c);
    }
    /// `out = prev + scale * row` (the next row of a walk, in one pass).
    fn axpy_into(out: &mut [Self], prev: &[Self], scale: Self, row: &[Self]) {
        for ((o, &p), &w) in out.iter_mut().zip(prev).zip(row) {
            *o = p + scale * w;
        }
    }
    /// `acc += scale * row`.
    fn axpy(acc: &mut [Self], scale: Self, row: &[Self]) {
        for (a, &w) in acc.iter_mut().zip(row) {
            *a += scale * w;
        }
    }
}

impl Real for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn activate(self, activation: Activation) -> Self {
        activation.apply(self)
    }
    fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>, c: ArrayViewMut2<f32>) {
        // The engine's one f32 GEMM (the gemm crate's AVX-512 kernels by default); it splits
        // work over blocks of `c`, never over the inner dimension, so results do not depend on
        // the thread count.
        crate::nn::gemm(1.0, a, b, 0.0, c);
    }
    fn axpy_into(out: &mut [f32], prev: &[f32], scale: f32, row: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { axpy_into_avx2(out, prev, scale, row) };
            return;
        }
        for ((o, &p), &w) in out.iter_mut().zip(prev).zip(row) {
            *o = p + scale * w;
        }
    }
    fn axpy(acc: &mut [f32], scale: f32, row: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { axpy_avx2(acc, scale, row) };
            return;
        }
        for (a, &w) in acc.iter_mut().zip(row) {
            *a += scale * w;
        }
    }
}

/// `out = prev + scale * row` in 256-bit vectors (same bits as the portable loop).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpy_into_avx2(out: &mut [f32], prev: &[f32], scale: f32, row: &[f32]) {
    for ((o, &p), &w) in out.iter_mut().zip(prev).zip(row) {
        *o = p + scale * w;
    }
}

/// `acc += scale * row` in 256-bit vectors: the walks' inner loop. A separate multiply and add
/// (no FMA contraction), so the result is the same bits as the portable loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpy_avx2(acc: &mut [f32], scale: f32, row: &[f32]) {
    for (a, &w) in acc.iter_mut().zip(row) {
        *a += scale * w;
    }
}

impl Real for f64 {
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn activate(self, activation: Activation) -> Self {
        activation.apply_f64(self)
    }
}

/// `acc += scale * row`, the one-input update of a first-layer pre-activation.
#[inline]
pub(crate) fn add_scaled<T: Real>(acc: &mut [T], scale: T, row: &[T]) {
    T::axpy(acc, scale, row);
}

/// The network's weights in `T`, with each layer's weight matrix contiguous (row-major).
#[derive(Debug, Clone)]
pub(crate) struct Net<T> {
    /// (fan_in x fan_out weights, fan_out biases) per layer.
    pub layers: Vec<(Array2<T>, Array1<T>)>,
    /// Inputs whose first-layer row is all zero: they cannot change the output.
    pub dead_input: Vec<bool>,
    /// The hidden layers' activation.
    pub activation: Activation,
}

impl<T: Real> Net<T> {
    pub fn from_mlp(model: &Mlp) -> Net<T> {
        let layers: Vec<(Array2<T>, Array1<T>)> = model
            .coefs
            .iter()
            .zip(&model.intercepts)
            .map(|(w, b)| {
                let w = w.mapv(T::from_f32);
                let w = if w.is_standard_layout() {
                    w
                } else {
                    w.as_standard_layout().into_owned()
                };
                (w, b.mapv(T::from_f32))
            })
            .collect();
        let dead_input = layers[0]
            .0
            .rows()
            .into_iter()
            .map(|r| r.iter().all(|&v| v == T::zero()))
            .collect();
        Net {
            layers,
            dead_input,
            activation: model.activation,
        }
    }

    pub fn width1(&self) -> usize {
        self.layers[0].0.ncols()
    }

    pub fn n_outputs(&self) -> usize {
        self.layers.last().map_or(0, |(w, _)| w.ncols())
    }

    /// Row `i` of the first layer's weights (what input `i` adds per unit change).
    #[inline]
    pub fn w1_row(&self, i: usize) -> &[T] {
        let w1 = &self.layers[0].0;
        let width = w1.ncols();
        let all = w1.as_slice().unwrap_or(&[]);
        &all[i * width..(i + 1) * width]
    }

    /// First-layer pre-activation `v W1 + c1`, summing only the non-zero inputs.
    pub fn first_layer(&self, v: &[T]) -> Vec<T> {
        let mut h = self.layers[0].1.to_vec();
        for (i, &vi) in v.iter().enumerate() {
            if vi != T::zero() {
                add_scaled(&mut h, vi, self.w1_row(i));
            }
        }
        h
    }

    /// First-layer pre-activations of many rows, each as a sum over its non-zero inputs (digits
    /// are mostly 0: this is several times cheaper than the dense GEMM), rows in parallel.
    pub fn first_layer_sparse(&self, rows: ArrayView2<T>) -> Array2<T> {
        let width = self.width1();
        let mut out = Array2::zeros((rows.nrows(), width));
        out.axis_chunks_iter_mut(Axis(0), 64)
            .into_par_iter()
            .zip(rows.axis_chunks_iter(Axis(0), 64).into_par_iter())
            .for_each(|(mut o, r)| {
                for (mut orow, rrow) in o.rows_mut().into_iter().zip(r.rows()) {
                    let h = orow.as_slice_mut().expect("fresh array is contiguous");
                    h.copy_from_slice(self.layers[0].1.as_slice().expect("contiguous bias"));
                    for (i, &v) in rrow.iter().enumerate() {
                        if v != T::zero() {
                            add_scaled(h, v, self.w1_row(i));
                        }
                    }
                }
            });
        out
    }

    /// First-layer pre-activations of many rows at once (a GEMM).
    pub fn first_layer_batch(&self, rows: ArrayView2<T>) -> Array2<T> {
        let (w1, c1) = &self.layers[0];
        let mut h = Array2::zeros((rows.nrows(), w1.ncols()));
        T::matmul(rows, w1.view(), h.view_mut());
        h += c1;
        h
    }

    /// Logits (the output layer's scores before any softmax) from first-layer pre-activations
    /// (one row each); `h1` is overwritten.
    pub fn logits_from_first(&self, mut h1: ArrayViewMut2<T>) -> Array2<T> {
        if self.layers.len() == 1 {
            return h1.to_owned();
        }
        let activation = self.activation;
        h1.mapv_inplace(|v| v.activate(activation));
        let mut a: Option<Array2<T>> = None;
        for (l, (w, b)) in self.layers.iter().enumerate().skip(1) {
            let input = a.as_ref().map_or(h1.view(), Array2::view);
            let mut z = Array2::zeros((input.nrows(), w.ncols()));
            T::matmul(input, w.view(), z.view_mut());
            z += b;
            if l + 1 < self.layers.len() {
                z.mapv_inplace(|v| v.activate(activation));
            }
            a = Some(z);
        }
        a.unwrap_or_else(|| h1.to_owned())
    }

    /// The explained output of each row, in f64, from first-layer pre-activations; `h1` is
    /// overwritten. Appends to `out`.
    pub fn outputs_from_first(&self, h1: ArrayViewMut2<T>, target: Target, out: &mut Vec<f64>) {
        let logits = self.logits_from_first(h1);
        out.extend(logits.rows().into_iter().map(|z| target.output(z)));
    }

    /// Explained output of full input rows.
    pub fn outputs(&self, rows: ArrayView2<T>, target: Target) -> Vec<f64> {
        let mut h1 = self.first_layer_batch(rows);
        let mut out = Vec::with_capacity(rows.nrows());
        self.outputs_from_first(h1.view_mut(), target, &mut out);
        out
    }
}

/// The explained output: one class's probability or logit, or its difference with another
/// class's (a contrast, "why `class` and not `versus`"). Every method is linear in the output, so
/// a contrast's attribution is the difference of the two classes' attributions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    pub class: usize,
    pub versus: Option<usize>,
    pub units: Units,
}

impl Target {
    /// The explained output of one row of logits, in f64.
    pub fn output<T: Real>(self, z: ArrayView1<T>) -> f64 {
        let f = class_output(z, self.class, self.units);
        match self.versus {
            Some(c) => f - class_output(z, c, self.units),
            None => f,
        }
    }
}

/// The class's probability (softmax in f64) or its logit.
pub(crate) fn class_output<T: Real>(z: ArrayView1<T>, class: usize, units: Units) -> f64 {
    match units {
        Units::Logit => z[class].to_f64(),
        Units::Probability => {
            let zc = z[class].to_f64();
            // p_c = 1 / sum_k exp(z_k - z_c): one pass, no overflow for the winning class.
            let max = z
                .iter()
                .map(|v| v.to_f64())
                .fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = z.iter().map(|v| (v.to_f64() - max).exp()).sum();
            (zc - max).exp() / sum
        }
    }
}

/// Column means of the background (the `BackgroundMean` baseline).
pub(crate) fn column_means(background: ArrayView2<f32>) -> Array1<f32> {
    background
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(background.ncols()))
}
