//! Training as scikit-learn's `MLPClassifier(solver="adam")` does it: minibatches of shuffled
//! rows, the loss of `_backprop` (mean cross-entropy plus `alpha / 2 * sum(W^2) / batch`), Adam
//! with bias correction as `AdamOptimizer`, and the stopping rule of
//! `_update_no_improvement_count` on the training loss.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ndarray::s;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::adam::{Adam, AdamParams, sum_squared_weights};
use super::backprop::{Input, Workspace, backprop, evaluate, layer_buffers, use_sparse_input};
use super::sparse::{self, SparseRows};
use super::{Activation, Mlp};
use crate::data::Dataset;

/// Rows per pass of the test evaluation: large products (the weights are read and packed once
/// per pass), buffers of a few MB.
const EVALUATION_ROWS: usize = 1000;

/// The most epochs a training runs unless told otherwise (scikit-learn's `max_iter`): the one
/// place of that default.
pub const DEFAULT_MAX_EPOCHS: usize = 200;

/// Hyper-parameters, with scikit-learn's defaults for `MLPClassifier(hidden_layer_sizes=(512,
/// 256))`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainParams {
    /// Units of each hidden layer, first to last.
    pub hidden: Vec<usize>,
    /// The hidden layers' activation (scikit-learn's `activation`, default `relu`).
    pub activation: Activation,
    /// The most epochs (passes over the training rows); `max_iter` in scikit-learn.
    pub max_epochs: usize,
    /// Rows per minibatch (the last one of an epoch may be smaller).
    pub batch_size: usize,
    /// Adam's step size; `learning_rate_init` in scikit-learn.
    pub learning_rate: f32,
    /// Adam's decay of the first moment.
    pub beta1: f32,
    /// Adam's decay of the second moment.
    pub beta2: f32,
    /// Adam's guard against division by zero.
    pub epsilon: f32,
    /// L2 penalty on the weights (not the biases).
    pub alpha: f32,
    /// The least improvement of the training loss that counts as one (f64, as scikit-learn's
    /// Python float: the loss is compared in f64).
    pub tol: f64,
    /// Stop after more than this many epochs in a row without an improvement of `tol`.
    pub n_iter_no_change: usize,
    /// Shuffle the rows every epoch.
    pub shuffle: bool,
    /// Seed of the initial weights and of the shuffles.
    pub seed: u64,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            hidden: vec![512, 256],
            activation: Activation::Relu,
            max_epochs: DEFAULT_MAX_EPOCHS,
            batch_size: 200,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            alpha: 1e-4,
            tol: 1e-4,
            n_iter_no_change: 10,
            shuffle: true,
            seed: 0,
        }
    }
}

/// What one epoch did, handed to the caller's callback after each epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochMetrics {
    /// Epochs completed so far, counting from 1.
    pub epoch: usize,
    /// scikit-learn's `loss_`: the minibatch losses (penalty included) weighted by batch size.
    pub train_loss: f64,
    /// Share of training rows classified right by the minibatch forward passes of this epoch
    /// (each row seen once, before its batch's update; no extra pass over the data).
    pub train_accuracy: f64,
    /// Mean cross-entropy on the test rows after the epoch (no penalty term); None without test
    /// data.
    pub test_loss: Option<f64>,
    /// Share of test rows classified right after the epoch; None without test data.
    pub test_accuracy: Option<f64>,
    /// Seconds spent on this epoch's minibatches (the test evaluation is not counted).
    pub seconds: f64,
    /// Training rows per second of `seconds`.
    pub samples_per_sec: f64,
}

/// Why `Trainer::run` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The training loss stopped improving (scikit-learn's rule).
    Converged,
    /// `max_epochs` epochs are done.
    MaxEpochs,
    /// The cancel flag was raised; `run` again resumes at the next minibatch.
    Cancelled,
    /// The training loss of epoch `epoch` is not finite (NaN or infinite): the weights are
    /// useless, and `run` refuses to go on.
    Diverged {
        /// The epoch (counting from 1) whose loss was not finite.
        epoch: usize,
    },
}

/// Where an epoch in progress is, reported after each minibatch by
/// `Trainer::run_with_progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProgress {
    /// The epoch in progress, counting from 1.
    pub epoch: usize,
    /// Minibatches of this epoch done.
    pub batch: usize,
    /// Minibatches in an epoch.
    pub batches: usize,
}

/// An epoch that has started and not finished: where a cancelled run resumes.
#[derive(Debug, Clone, Default)]
struct EpochProgress {
    next_batch: usize,
    loss_sum: f64,
    correct: usize,
    seconds: f64,
}

/// Trains an `Mlp`, one epoch after another, and can be paused (cancelled) and resumed.
#[derive(Debug, Clone)]
pub struct Trainer {
    mlp: Mlp,
    params: TrainParams,
    adam: Adam,
    rng: ChaCha8Rng,
    /// The row order, reshuffled in place each epoch as scikit-learn does.
    order: Vec<usize>,
    epoch: usize,
    stopping: NoImprovement,
    history: Vec<EpochMetrics>,
    progress: Option<EpochProgress>,
    work: Option<Workspace>,
    /// The training rows are mostly zeros: the first layer skips them.
    sparse_input: bool,
    /// The training rows without their zeros, when `sparse_input` (built once per `run`).
    train_rows: SparseRows,
    /// The test rows are mostly zeros (decided once per `run`, not per epoch).
    sparse_test: bool,
    /// The test evaluation's buffers, one per layer, `EVALUATION_ROWS` rows each.
    evaluation: Vec<ndarray::Array2<f32>>,
    /// `sum_squared_weights(&mlp)`, kept up to date by the Adam pass (None: not known yet).
    sum_sq: Option<f64>,
    /// Evaluate the test rows after every epoch (else only when `test_last_epoch` asks).
    test_every_epoch: bool,
}

impl Trainer {
    /// A trainer for a fresh network of `n_inputs` -> `params.hidden` -> `n_classes` units with
    /// `params.activation`, initialised from `params.seed` as scikit-learn initialises it.
    pub fn new(n_inputs: usize, n_classes: usize, params: TrainParams) -> Trainer {
        let mut sizes = vec![n_inputs];
        sizes.extend(&params.hidden);
        sizes.push(n_classes);
        let mlp = Mlp::initialised(&sizes, params.activation, params.seed);
        Trainer::from_model(mlp, params)
    }

    /// A trainer that continues from `mlp` with fresh optimiser state; `params.hidden` and
    /// `params.activation` are set to the model's own. A model without a softmax is trained on
    /// the cross-entropy of the softmax of its scores, and keeps its raw-score output.
    pub fn from_model(mlp: Mlp, mut params: TrainParams) -> Trainer {
        let sizes = mlp.layer_sizes();
        params.hidden = sizes[1..sizes.len() - 1].to_vec();
        params.activation = mlp.activation;
        // The shuffles draw from their own stream, apart from the initialisation's.
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        rng.set_stream(1);
        Trainer {
            adam: Adam::new(&mlp),
            mlp,
            params,
            rng,
            order: Vec::new(),
            epoch: 0,
            stopping: NoImprovement::default(),
            history: Vec::new(),
            progress: None,
            work: None,
            sparse_input: false,
            train_rows: SparseRows::default(),
            sparse_test: false,
            evaluation: Vec::new(),
            sum_sq: None,
            test_every_epoch: true,
        }
    }

    /// The network as trained so far.
    pub fn model(&self) -> &Mlp {
        &self.mlp
    }

    /// The hyper-parameters in use (for a warm start, with the model's hidden layers and
    /// activation).
    pub fn params(&self) -> &TrainParams {
        &self.params
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Metrics of every completed epoch, in order.
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// Evaluate the test rows after every epoch (the default: the app's curves and a metrics
    /// file read them), or not (`false`: the epochs' test figures stay `None` until
    /// `test_last_epoch` asks for the last one). The evaluation is a forward pass over every
    /// test row, about a quarter of an epoch of 5,000 training rows; training itself is the
    /// same either way.
    pub fn set_test_every_epoch(&mut self, every: bool) {
        self.test_every_epoch = every;
    }

    /// The last completed epoch's metrics, its test loss and accuracy on `test` evaluated now
    /// if `run` skipped them (`set_test_every_epoch(false)`); the same figures `run` would have
    /// given. None before the first epoch, and while an epoch is part done (a cancelled run):
    /// the weights are then no longer the last epoch's.
    ///
    /// # Panics
    /// As `run`, when `test` does not fit the model.
    pub fn test_last_epoch(&mut self, test: &Dataset) -> Option<&EpochMetrics> {
        if self.progress.is_some() {
            return None;
        }
        let missing = self.history.last()?.test_accuracy.is_none();
        if missing {
            self.check_test(test);
            self.sparse_test = use_sparse_input(test.features.view());
            let (loss, accuracy) = self.evaluate_test(test);
            let last = self.history.last_mut()?;
            last.test_loss = Some(loss);
            last.test_accuracy = Some(accuracy);
        }
        self.history.last()
    }

    /// Raise or lower the epoch cap (for example to train further after `MaxEpochs`).
    pub fn set_max_epochs(&mut self, max_epochs: usize) {
        self.params.max_epochs = max_epochs;
    }

    /// Train until the loss converges, `max_epochs` epochs are done, the training loss is no
    /// longer finite (`Diverged`: every later call returns it too), or `cancel` is raised
    /// (checked before every minibatch). `on_epoch` receives each finished epoch's metrics,
    /// the diverged epoch's included.
    /// Calling `run` again after `Cancelled` resumes at the next minibatch, with the same result
    /// as a run that was never interrupted.
    ///
    /// A resumed run expects the same training rows as before (a different row count starts a
    /// fresh epoch order).
    ///
    /// # Panics
    /// When `train` (or `test`) has a different width than the model, or a label outside its
    /// classes: check a loaded model with `Mlp::check_fits` first.
    pub fn run(
        &mut self,
        train: &Dataset,
        test: Option<&Dataset>,
        on_epoch: &mut dyn FnMut(&EpochMetrics),
        cancel: Option<&AtomicBool>,
    ) -> StopReason {
        self.run_with_progress(train, test, on_epoch, &mut |_| {}, cancel)
    }

    /// `run`, also calling `on_batch` after every minibatch (before the next check of
    /// `cancel`, so a flag raised there stops the run exactly at that point).
    ///
    /// # Panics
    /// As `run`.
    pub fn run_with_progress(
        &mut self,
        train: &Dataset,
        test: Option<&Dataset>,
        on_epoch: &mut dyn FnMut(&EpochMetrics),
        on_batch: &mut dyn FnMut(BatchProgress),
        cancel: Option<&AtomicBool>,
    ) -> StopReason {
        self.prepare(train, test);
        let n = train.n_rows();
        let batch_size = self.params.batch_size.clamp(1, n);
        let batches = n.div_ceil(batch_size);
        loop {
            if self.progress.is_none() {
                if let Some(reason) = self.stop_reason() {
                    return reason;
                }
                if self.params.shuffle {
                    self.order.shuffle(&mut self.rng);
                }
                self.progress = Some(EpochProgress::default());
            }
            let started = Instant::now();
            let mut progress = self.progress.take().expect("an epoch in progress");
            while progress.next_batch < batches {
                if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    progress.seconds += started.elapsed().as_secs_f64();
                    self.progress = Some(progress);
                    return StopReason::Cancelled;
                }
                let lo = progress.next_batch * batch_size;
                let hi = (lo + batch_size).min(n);
                // On one of rayon's threads: the step's parallel parts (products, joins, Adam)
                // then run without handing work from the caller's thread to the pool and back,
                // once per part (on a loaded machine each hand-off waits for a free core).
                let (loss, correct) = rayon::scope(|_| self.step(train, lo, hi));
                let rows = (hi - lo) as f64;
                progress.loss_sum += loss * rows;
                progress.correct += correct;
                progress.next_batch += 1;
                on_batch(BatchProgress {
                    epoch: self.epoch + 1,
                    batch: progress.next_batch,
                    batches,
                });
            }
            progress.seconds += started.elapsed().as_secs_f64();
            let metrics = self.finish_epoch(&progress, n, test);
            on_epoch(&metrics);
            self.history.push(metrics);
        }
    }

    /// Check the data against the model, and size the row order and the buffers for it.
    fn prepare(&mut self, train: &Dataset, test: Option<&Dataset>) {
        let n = train.n_rows();
        assert_eq!(
            train.n_features(),
            self.mlp.n_inputs(),
            "training data width does not match the model's input"
        );
        if let Some(t) = test {
            self.check_test(t);
        }
        assert!(n > 0, "no training rows");
        check_labels("training", train, self.mlp.n_outputs());
        let batch_size = self.params.batch_size.clamp(1, n);
        if self.order.len() != n {
            self.order = (0..n).collect();
            self.progress = None;
        }
        if self.work.as_ref().is_none_or(|w| w.capacity != batch_size) {
            self.work = Some(Workspace::new(&self.mlp, batch_size));
        }
        // One pass over the rows: their non-zero masks and values, and whether to use them (a
        // density of at most `MAX_SPARSE_DENSITY`; else nothing is kept).
        self.sparse_input = sparse::fill_if_worth_it(train.features.view(), &mut self.train_rows);
        if let Some(t) = test.filter(|_| self.test_every_epoch) {
            self.sparse_test = use_sparse_input(t.features.view());
        }
    }

    /// Check the test rows against the model (width and labels).
    fn check_test(&self, test: &Dataset) {
        assert_eq!(
            test.n_features(),
            self.mlp.n_inputs(),
            "test data width does not match the model's input"
        );
        check_labels("test", test, self.mlp.n_outputs());
    }

    /// Mean cross-entropy and accuracy of the current weights on `test`, through the training
    /// step's forward pass (the first layer skipping zero inputs when `sparse_test`).
    fn evaluate_test(&mut self, test: &Dataset) -> (f64, f64) {
        let rows = EVALUATION_ROWS.min(test.n_rows()).max(1);
        if self.evaluation.first().is_none_or(|b| b.nrows() != rows) {
            self.evaluation = layer_buffers(&self.mlp, rows);
        }
        let (mlp, buffers, sparse) = (&self.mlp, &mut self.evaluation, self.sparse_test);
        rayon::scope(|_| evaluate(mlp, test.features.view(), &test.labels, buffers, sparse))
    }

    /// Why no further epoch may start, if any: in this order, a diverged loss, convergence,
    /// the epoch cap.
    fn stop_reason(&self) -> Option<StopReason> {
        if let Some(last) = self.history.last()
            && !last.train_loss.is_finite()
        {
            return Some(StopReason::Diverged { epoch: last.epoch });
        }
        if self.stopping.count > self.params.n_iter_no_change {
            return Some(StopReason::Converged);
        }
        (self.epoch >= self.params.max_epochs).then_some(StopReason::MaxEpochs)
    }

    /// One minibatch: gather rows `order[lo..hi]`, backpropagate, take an Adam step.
    fn step(&mut self, train: &Dataset, lo: usize, hi: usize) -> (f64, usize) {
        let work = self.work.as_mut().expect("workspace allocated in run");
        let rows = hi - lo;
        let idx = &self.order[lo..hi];
        let features = train
            .features
            .as_slice()
            .expect("features in standard layout");
        let width = train.n_features();
        let labels: Vec<u8> = idx.iter().map(|&r| train.labels[r]).collect();
        let sum_sq = match self.sum_sq {
            Some(v) => v,
            None => sum_squared_weights(&self.mlp),
        };
        let result = if self.sparse_input {
            // The sparse kernels read the batch's rows from the packed copy made once per run:
            // no copy of the batch (a serial 600 KB gather), no test of its zeros.
            let x = Input::Sparse(self.train_rows.batch(idx).with_labels(&labels));
            let (mlp, alpha) = (&self.mlp, self.params.alpha);
            backprop(mlp, x, &labels, alpha, sum_sq, work)
        } else {
            if work.x.nrows() < work.capacity {
                work.x = ndarray::Array2::zeros((work.capacity, width));
            }
            let xs = work.x.as_slice_mut().expect("workspace in standard layout");
            for (dst, &r) in xs.chunks_exact_mut(width).zip(idx) {
                dst.copy_from_slice(&features[r * width..(r + 1) * width]);
            }
            let x = std::mem::take(&mut work.x);
            let input = Input::Matrix(x.slice(s![..rows, ..]));
            let result = backprop(&self.mlp, input, &labels, self.params.alpha, sum_sq, work);
            work.x = x;
            result
        };

        let p = &self.params;
        let h = AdamParams {
            learning_rate: p.learning_rate,
            beta1: p.beta1,
            beta2: p.beta2,
            epsilon: p.epsilon,
        };
        let sum_sq = self.adam.step(
            &mut self.mlp,
            &work.coef_grads,
            &work.deferred_penalty,
            &work.intercept_grads,
            &h,
        );
        self.sum_sq = Some(sum_sq);
        result
    }

    /// Close an epoch: the loss, the stopping counters, the test evaluation.
    fn finish_epoch(
        &mut self,
        progress: &EpochProgress,
        n: usize,
        test: Option<&Dataset>,
    ) -> EpochMetrics {
        let n_f = n as f64;
        let train_loss = progress.loss_sum / n_f;
        self.epoch += 1;
        self.stopping.update(train_loss, self.params.tol);
        let (test_loss, test_accuracy) = match test {
            Some(t) if self.test_every_epoch => {
                let (loss, accuracy) = self.evaluate_test(t);
                (Some(loss), Some(accuracy))
            }
            _ => (None, None),
        };
        let train_accuracy = progress.correct as f64 / n_f;
        EpochMetrics {
            epoch: self.epoch,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            seconds: progress.seconds,
            samples_per_sec: n_f / progress.seconds.max(f64::MIN_POSITIVE),
        }
    }
}

/// Panic when a label of `data` is not one of the model's `classes`.
fn check_labels(name: &str, data: &Dataset, classes: usize) {
    if let Some(bad) = data.labels.iter().find(|&&l| usize::from(l) >= classes) {
        panic!("{name} label {bad} is not one of the model's {classes} classes");
    }
}

/// scikit-learn's `_update_no_improvement_count` without early stopping: the best training
/// loss so far and the epochs in a row that did not beat it by `tol`.
#[derive(Debug, Clone, PartialEq)]
struct NoImprovement {
    best_loss: f64,
    count: usize,
}

impl Default for NoImprovement {
    fn default() -> Self {
        NoImprovement {
            best_loss: f64::INFINITY,
            count: 0,
        }
    }
}

impl NoImprovement {
    /// Count an epoch whose loss is `loss`: no improvement unless it is at most
    /// `best_loss - tol`; the best loss follows any decrease, however small.
    fn update(&mut self, loss: f64, tol: f64) {
        if loss > self.best_loss - tol {
            self.count += 1;
        } else {
            self.count = 0;
        }
        if loss < self.best_loss {
            self.best_loss = loss;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted loss sequence against scikit-learn 1.9.1's own method, run once in Python:
    ///
    /// ```python
    /// m = MLPClassifier(tol=1e-4)
    /// m.best_loss_, m._no_improvement_count, m.loss_curve_ = np.inf, 0, []
    /// for loss in losses:
    ///     m.loss_curve_.append(loss)
    ///     m._update_no_improvement_count(False, None, None, None)
    ///     print((loss, m._no_improvement_count, m.best_loss_))
    /// ```
    ///
    /// It covers a first epoch (from infinity), improvements smaller than tol (the count grows
    /// while the best loss still follows), a worse epoch, a loss exactly `best - tol` (counts
    /// as an improvement: the counter resets), one 1e-12 short of it (does not: this is where
    /// a float32 tol of 1e-4 would disagree), and the best loss drifting down in small steps.
    #[test]
    fn no_improvement_count_matches_scikit_learn() {
        let expected: [(f64, usize, f64); 11] = [
            (1.0, 0, 1.0),
            (0.99995, 1, 0.99995),
            (0.9999, 2, 0.9999),
            (1.2, 3, 0.9999),
            (0.9998, 0, 0.9998),
            (0.999700000001, 1, 0.999700000001),
            (0.5, 0, 0.5),
            (0.5, 1, 0.5),
            (0.6, 2, 0.5),
            (0.49991, 3, 0.49991),
            (0.4999, 4, 0.4999),
        ];
        let mut rule = NoImprovement::default();
        for (epoch, &(loss, count, best)) in expected.iter().enumerate() {
            rule.update(loss, 1e-4);
            assert_eq!(
                (rule.count, rule.best_loss),
                (count, best),
                "epoch {} (loss {loss})",
                epoch + 1
            );
        }
    }
}
