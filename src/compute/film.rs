//! The film (issue 12): every layer's t-SNE map of the embedded images at epoch 0 and after each
//! epoch, each frame warm-started from the previous frame of its layer (Rauber et al., "Visualizing
//! the Hidden Activity of Artificial Neural Networks", TVCG 2017; dynamic t-SNE, EuroVis 2016),
//! and the class separation of every layer per epoch.
//!
//! What is kept per epoch is the network's weights ([`Reel`]), not the activations: the
//! activations of a frame are computed when the frame is made and dropped with it, and the
//! weights let a perplexity change remake the film. The same functions serve the worker, the
//! headless `embed --frames` and the benchmark.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub use crate::neighbours::label_share;
use ndarray::{Array2, ArrayView2, Axis};

use super::protocol::{Frame, Separation};
use crate::nn::Mlp;
use crate::tsne::{TsneError, TsneParams, warm};

/// Iterations of a warm frame, chosen with `cargo bench --bench film` (on-board digits, 1,500
/// images, perplexity 30, the default network; 2-core AVX2 machine, load 6-10). Forwards
/// (from the untrained network, as while training runs), KL over a cold 1,000-iteration run
/// on the same activations, layer 2 / 3 / output: 50 iterations 1.23 / 1.97 / 19; 150: 1.15 /
/// 1.39 / 9.1; 200 with 100 exaggerated: 1.12 / 1.22 / 1.7 (alignment halved). Backwards
/// (from the trained network's map, as once training has ended, [`Reel`]): 50 iterations
/// 1.01 / 1.08 / 2.1; 150: 1.00 / 1.05 / 1.50, moving 16x / 11x / 8x less than cold runs
/// between consecutive epochs; 200 with 50 at exaggeration 4: KL 1.008 on layer 2 but
/// alignment 2.5x. The first epochs stay above a cold run's KL (layer 3 +0.15 at epoch 1,
/// output +0.6): the untrained network's map really is another map, and a frame that jumped
/// to it would lose the film's point, where each point went.
pub const FRAME_ITERATIONS: usize = 150;

/// A warm frame whose input barely changed ([`warm::neighbour_change`] below
/// [`QUIET_CHANGE`]) runs this many iterations instead of [`FRAME_ITERATIONS`], at the cold
/// run's learning rate. Measured on the backward chain (`cargo bench --bench film --
/// --no-profile --no-worker --backward --adaptive --tiers 25,150,250 --tol 3e-3`, 1,500
/// digits, perplexity 30, 2-core AVX2 machine): layer 2's quiet frames (epochs 5-30) end
/// +0.002 to +0.010 KL over a cold run at 25 iterations against +0.000 to +0.008 at 50, and
/// move less (alignment 46x against 30x); layer 2's chain ran 1,128 iterations instead of
/// 1,952, layer 3's 1,633 instead of 2,258.
pub const QUIET_ITERATIONS: usize = 25;

/// The share of new nearest neighbours (of 10, between consecutive epochs) under which a
/// layer counts as barely changed. Measured on the backward chain (`cargo bench --bench film
/// -- --backward --iters 50,150`, 1,500 digits, perplexity 30): changes of 0.00-0.04 (layer 2
/// from epoch 5, layer 3 from epoch 20) left 50 iterations within 1% of a cold run's KL;
/// layer 3 at epoch 5 (0.09) was 8% above it at 50 iterations and 5% at 150.
pub const QUIET_CHANGE: f64 = 0.05;

/// The share of new nearest neighbours from which a layer counts as remade: its frame runs
/// [`MOVED_ITERATIONS`]. Only the output layer's first epochs get there (0.5-0.7 new until
/// about epoch 10, on the backward chain; layer 3's most is 0.2).
pub const MOVED_CHANGE: f64 = 0.3;

/// Iterations of a warm frame whose layer was remade ([`MOVED_CHANGE`]). Measured with
/// `cargo bench --bench film -- --backward --adaptive --moved 400` (1,500 digits, perplexity
/// 30, output layer, KL over a cold run's / trust warm against cold): epoch 5 +0.088 / 0.701
/// against 0.717 at 150 iterations, +0.027 / 0.708 at 400; epoch 2 +0.398 / 0.700 against
/// 0.745, +0.238 / 0.716; epoch 1 +0.608 / 0.672 against 0.750, +0.383 / 0.698; epoch 10
/// +0.004 and -0.005. An iteration costs about 0.5 ms of CPU here, so the ten frames or so
/// that get it add about 1.3 CPU s to a film of 111.
pub const MOVED_ITERATIONS: usize = 400;

/// The share of new nearest neighbours from which a frame is not a warm start at all but a
/// cold run turned onto its neighbour frame ([`warm::RESTART`], [`align_to`]): where almost
/// every neighbour is new, "where each point went" means little, and a warm chain kept the
/// previous map's shape. Only the output layer's epoch 0 (the untrained network, 0.96 new on
/// the backward chain) gets there; layer 3's epoch 0 is 0.60. Measured with `cargo bench
/// --bench film -- --no-profile --no-worker --backward --adaptive --sample 0,1,2` (1,500
/// digits, perplexity 30, output layer, epoch 0): a warm chain of 400 iterations had KL 3.72
/// against a cold run's 1.63, trust 0.17 against 0.42; the restart has KL 1.628 against
/// 1.629, trust 0.418 against 0.417 (it moves as much as a cold film between epochs 1 and 0,
/// alignment 0.9x, and costs one cold run, about 0.3 s of CPU, instead of 400 iterations).
pub const RESTART_CHANGE: f64 = 0.9;

/// Iterations between a warm frame's convergence checks ([`frame_convergence`]): each check
/// computes the KL (a pass over P with a logarithm per entry, about a tenth of an iteration).
pub const CONVERGE_EVERY: usize = 25;

/// A warm frame that is not quiet runs at least this many iterations.
pub const CONVERGE_AFTER: usize = 50;

/// A warm frame stops once its KL fell by less than this share over the last
/// [`CONVERGE_EVERY`] iterations; its tier ([`frame_iterations`]) is the most it runs.
/// Measured on the backward chain (`cargo bench --bench film -- --no-profile --no-worker
/// --backward --adaptive --tol T`, 1,500 digits, perplexity 30, quiet frames of 50 iterations,
/// learning rate n / 4 where not quiet), iterations of the three chains (layer 2 / 3 / output)
/// and the median KL over a cold run's at epochs 1, 2, 5, 10, 20, 30: no stop 2,100 / 2,900 /
/// 8,400 and 1.009 / 1.055 / 1.149 (at the cold run's learning rate); 2e-3: 1,977 / 2,382 /
/// 6,371 and 1.009 / 1.047 / 1.018; 5e-3: 1,853 / 2,159 / 4,732 and 1.009 / 1.054 / 1.045
/// (output alignment 4.9x). With this module's schedule as it is: 1,226 / 1,781 / 6,620 and
/// 1.011 / 1.053 / 1.044, alignment 46x / 6.1x / 6.2x.
pub const CONVERGE_TOLERANCE: f64 = 2e-3;

/// The stopping rule of a warm frame: its tier ([`frame_iterations`]) is the most it runs.
pub fn frame_convergence() -> warm::Convergence {
    warm::Convergence {
        every: CONVERGE_EVERY,
        after: CONVERGE_AFTER,
        tolerance: CONVERGE_TOLERANCE,
    }
}

/// How much a warm frame's layer changed since its neighbour frame, by the share of new
/// nearest neighbours ([`warm::neighbour_change`]), and so how the frame runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Below [`QUIET_CHANGE`]: [`QUIET_ITERATIONS`] at the cold run's learning rate.
    Quiet,
    /// From [`QUIET_CHANGE`]: [`FRAME_ITERATIONS`].
    Changed,
    /// From [`MOVED_CHANGE`]: [`MOVED_ITERATIONS`].
    Remade,
    /// From [`RESTART_CHANGE`]: a cold run turned onto its neighbour frame ([`warm::RESTART`]).
    Restart,
}

impl Tier {
    /// The tier of a frame whose layer's nearest neighbours changed by `change`.
    pub fn of(change: f64) -> Tier {
        if change < QUIET_CHANGE {
            Tier::Quiet
        } else if change < MOVED_CHANGE {
            Tier::Changed
        } else if change < RESTART_CHANGE {
            Tier::Remade
        } else {
            Tier::Restart
        }
    }

    /// The tier of a frame of the preview made while training runs (oldest first, remade once
    /// training ends): never [`Tier::Remade`] nor [`Tier::Restart`]. Forwards from the
    /// untrained network every early output frame counts as remade, and the extra iterations
    /// were CPU taken from training, for frames that are replaced anyway: the worker's training
    /// slowdown (median of 5, `cargo bench --bench film -- --no-profile --worker-only --runs 5`)
    /// was +24.7% with the tier in the preview, +15.7% without.
    pub fn preview(self) -> Tier {
        match self {
            Tier::Remade | Tier::Restart => Tier::Changed,
            tier => tier,
        }
    }

    /// The most iterations a frame of the tier runs ([`warm::RESTART`]: a cold run).
    pub fn iterations(self) -> usize {
        match self {
            Tier::Quiet => QUIET_ITERATIONS,
            Tier::Changed => FRAME_ITERATIONS,
            Tier::Remade => MOVED_ITERATIONS,
            Tier::Restart => warm::RESTART,
        }
    }

    /// The learning rate of a warm frame of the tier of `n` points (`None`: the cold run's).
    /// A remade layer's frame takes max(n, 50) (Belkina et al. 2019: learning rate n /
    /// exaggeration, here none; the cold run's is n / 12 / 4, floored at 50, scikit-learn's
    /// 'auto' with its factor 4 in the gradient); a changed one n / 10, a quiet one the cold
    /// run's. Measured as [`CONVERGE_TOLERANCE`] (`--lr`, the same rate for every frame that is
    /// not quiet, tolerance 2e-3): median KL over a cold run's, layer 2 / 3 / output, 1.009 /
    /// 1.065 / 1.152 at 50, 1.005 / 1.052 / 1.070 at 150 (alignment 23x / 6.5x / 6.6x), 1.002 /
    /// 1.041 / 1.018 at 375; at 375 with quiet frames of 25 iterations layer 3's consecutive
    /// frames moved 2.6x as much (alignment 3.9x, under the goal's 5x): its changed tier moves
    /// the layout too far at that rate. The remade tier (only the output layer's first epochs)
    /// then, with `--remade-lr X` (the rest as they are): at n / 4 = 375 the output's chain ran
    /// 6,620 iterations, KL median 1.044 (epoch 1 +0.161 over a cold run, epoch 2 +0.072),
    /// alignment 6.2x; at 750 / 1,000 / 1,500 / 2,000 / 3,000: 6,397 / 6,174 / 6,223 / 6,222 /
    /// 5,875 iterations, KL 1.085 / 1.063 / 1.017 / 1.013 / 1.049 (the median is epoch 5's,
    /// which moves with where its convergence check stops), epoch 1 +0.115 / +0.126 / +0.113 /
    /// +0.104 / +0.118, alignment 6.2x / 7.0x / 6.4x / 5.7x / 5.4x.
    pub fn learning_rate(self, n: usize) -> Option<f64> {
        let n = n as f64;
        match self {
            Tier::Remade => Some(n.max(50.0)),
            Tier::Changed => Some((n / 10.0).max(50.0)),
            Tier::Quiet | Tier::Restart => None,
        }
    }
}

/// How a warm frame of `n` points runs when its layer's nearest neighbours changed by
/// `change`: at most its [`Tier`]'s iterations ([`Tier::preview`]'s unless `settled`),
/// stopped once its KL settles ([`frame_convergence`]), at the tier's learning rate. (A frame
/// with no neighbours to compare with runs [`frame_params`]' [`FRAME_ITERATIONS`].)
pub fn frame_schedule(change: f64, settled: bool, n: usize) -> warm::Schedule {
    let tier = if settled {
        Tier::of(change)
    } else {
        Tier::of(change).preview()
    };
    warm::Schedule {
        iterations: tier.iterations(),
        learning_rate: tier.learning_rate(n),
        convergence: Some(frame_convergence()),
    }
}

/// Iterations of a warm frame whose layer's nearest neighbours changed by `change`
/// ([`Tier::of`]); [`warm::RESTART`] (a cold run) from [`RESTART_CHANGE`].
pub fn frame_iterations(change: f64) -> usize {
    Tier::of(change).iterations()
}

/// [`frame_iterations`] for a frame of the preview made while training runs ([`Tier::preview`]).
pub fn preview_iterations(change: f64) -> usize {
    Tier::of(change).preview().iterations()
}

/// Neighbours counted by the separation figure.
pub const SEPARATION_K: usize = 10;

/// The t-SNE parameters of a frame: the first frame of a layer is a full cold run (the
/// engine's defaults); a later one starts from the previous layout, with no early exaggeration
/// (the layout is already spread out) and [`FRAME_ITERATIONS`] iterations.
pub fn frame_params(perplexity: f64, seed: u64, warm: bool) -> TsneParams {
    let cold = TsneParams {
        perplexity,
        seed,
        progress_every: 0,
        ..TsneParams::default()
    };
    if warm {
        TsneParams {
            exaggeration_iter: 0,
            n_iter: FRAME_ITERATIONS,
            // Checked every 50 iterations: never stop a short warm run for "no progress".
            n_iter_without_progress: FRAME_ITERATIONS,
            ..cold
        }
    } else {
        cold
    }
}

/// One frame of `layer` at `epoch` from its activations `high`: cold when `previous` is
/// `None`, else warm-started from `previous` (the layer's frame before it in the chain).
///
/// # Errors
/// The engine's (too few points for the perplexity, non-finite activations, cancelled).
pub fn make_frame(
    high: ArrayView2<f32>,
    previous: Option<ArrayView2<f32>>,
    layer: usize,
    epoch: usize,
    perplexity: f64,
    seed: u64,
    cancel: Option<&AtomicBool>,
) -> Result<Frame, TsneError> {
    frame_run(
        high, previous, None, true, layer, epoch, perplexity, seed, cancel,
    )
    .map(|(frame, _)| frame)
}

/// What a frame hands to the next frame of its layer ([`warm::Chain`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Carry {
    /// The frame's nearest neighbours in its input ([`warm::WarmRun::neighbours`]).
    pub neighbours: Vec<u32>,
    /// The frame's precisions ([`warm::WarmRun::betas`]; empty after a cold frame).
    pub betas: Vec<f64>,
}

/// [`make_frame`], with what the frame before it in the chain handed on (`carry`) and what
/// this one hands on: the neighbour search behind the affinities also gives the trust figure,
/// so a frame searches the high-dimensional space once; a warm frame calibrates each point's
/// perplexity from the previous frame's precision ([`warm::tsne_warm_chain`]) and runs
/// [`frame_iterations`] of how much the neighbours changed ([`preview_iterations`] unless
/// `settled`: a frame of the preview made while training runs).
///
/// # Errors
/// As [`make_frame`].
#[expect(
    clippy::too_many_arguments,
    reason = "make_frame's, plus the carry and the chain's kind"
)]
pub fn frame_run(
    high: ArrayView2<f32>,
    previous: Option<ArrayView2<f32>>,
    carry: Option<&Carry>,
    settled: bool,
    layer: usize,
    epoch: usize,
    perplexity: f64,
    seed: u64,
    cancel: Option<&AtomicBool>,
) -> Result<(Frame, Carry), TsneError> {
    let params = frame_params(perplexity, seed, previous.is_some());
    let carry = carry.filter(|_| previous.is_some());
    let chain = warm::Chain {
        neighbours: carry.map(|c| c.neighbours.as_slice()),
        betas: carry.map(|c| c.betas.as_slice()),
    };
    let n = high.nrows();
    let run = warm::tsne_warm_scheduled(
        high,
        previous,
        &params,
        chain,
        &|change| frame_schedule(change, settled, n),
        cancel,
    )?;
    let coords = match previous {
        // The turn and shift the run drifted by mean nothing: undo them.
        Some(init) => align_to(init, run.embedding.coords.view()),
        None => run.embedding.coords,
    };
    // The trust of the aligned layout is the run's: a turn and a shift keep every distance.
    Ok((
        Frame {
            layer,
            epoch,
            coords,
            kl_divergence: Some(run.embedding.kl_divergence),
            trust: run.trust,
        },
        Carry {
            neighbours: run.neighbours,
            betas: run.betas,
        },
    ))
}

/// What a cold frame of the rows `high` made outside a chain (an anchor, [`Reel::adopt`])
/// hands on: each row's [`TRUST_K`](crate::tsne::TRUST_K) nearest neighbours, the same as a
/// frame's own search gives ([`warm::WarmRun::neighbours`]), and no precisions (the next frame
/// calibrates from scratch, as after any cold frame).
pub fn anchor_carry(high: ArrayView2<f32>) -> Carry {
    let k = crate::tsne::TRUST_K.min(high.nrows().saturating_sub(1));
    Carry {
        neighbours: if k == 0 {
            Vec::new()
        } else {
            crate::tsne::knn(high, k).indices
        },
        betas: Vec::new(),
    }
}

/// A network's weights in half precision (IEEE binary16, `half::f16`): what the film keeps
/// of every epoch but the newest, at half the memory of f32. Measured with `cargo bench
/// --bench film -- --f16` (1,500 digits, perplexity 30): see [`KEPT_EPOCHS_MAX`].
#[derive(Debug, Clone, PartialEq)]
pub struct HalfMlp {
    coefs: Vec<((usize, usize), Vec<half::f16>)>,
    intercepts: Vec<Vec<half::f16>>,
    activation: crate::nn::Activation,
    softmax: bool,
}

impl HalfMlp {
    /// `model`'s weights rounded to half precision.
    pub fn new(model: &Mlp) -> HalfMlp {
        let half = |v: &mut dyn Iterator<Item = &f32>| -> Vec<half::f16> {
            v.map(|&x| half::f16::from_f32(x)).collect()
        };
        HalfMlp {
            coefs: model
                .coefs
                .iter()
                .map(|c| (c.dim(), half(&mut c.iter())))
                .collect(),
            intercepts: model
                .intercepts
                .iter()
                .map(|b| half(&mut b.iter()))
                .collect(),
            activation: model.activation,
            softmax: model.softmax,
        }
    }

    /// The network, back in f32.
    pub fn model(&self) -> Mlp {
        let full = |v: &[half::f16]| -> Vec<f32> { v.iter().map(|x| x.to_f32()).collect() };
        Mlp {
            coefs: self
                .coefs
                .iter()
                .map(|(shape, c)| {
                    Array2::from_shape_vec(*shape, full(c)).expect("the shape it was taken from")
                })
                .collect(),
            intercepts: self
                .intercepts
                .iter()
                .map(|b| ndarray::Array1::from(full(b)))
                .collect(),
            activation: self.activation,
            softmax: self.softmax,
        }
    }

    /// Bytes of the weights held.
    pub fn bytes(&self) -> usize {
        let n: usize = self.coefs.iter().map(|(_, c)| c.len()).sum::<usize>()
            + self.intercepts.iter().map(Vec::len).sum::<usize>();
        n * std::mem::size_of::<half::f16>()
    }
}

/// The film's source: the network's weights at epoch 0 and after every epoch (shared, never
/// copied), and the last frame made of each layer (the next one's warm start).
///
/// The chain of warm starts runs two ways. While training runs, frames follow it oldest
/// first, each from the frame before it, so the newest epoch can be watched. Once training
/// has ended ([`Reel::settle`]) the film is remade newest first: the last epoch's map is a
/// cold run (the trained network's map, as good as t-SNE makes it) and each earlier frame
/// starts from the one after it. Measured with `cargo bench --bench film` (1,500 digits,
/// perplexity 30, 150 iterations, epochs 1-30): KL over a cold run's on the same activations,
/// layer 2 / 3 / output, 1.15 / 1.39 / 9.1 forwards against 1.00 / 1.05 / 1.50 backwards, and
/// consecutive frames moved 5.1x / 2.7x / 2.6x less than independent cold runs forwards
/// against 16x / 11x / 8x backwards: the untrained network's map is a poor ancestor (points
/// seldom cross clusters without exaggeration), the trained one's a good one.
#[derive(Debug, Clone, Default)]
pub struct Reel {
    /// Weights by epoch, in half precision ([`HalfMlp`]).
    pub models: BTreeMap<usize, Arc<HalfMlp>>,
    /// The newest epoch's weights as they were (the trained network: its final maps are
    /// the backward chain's anchor, [`Reel::adopt`]).
    newest: Option<(usize, Arc<Mlp>)>,
    /// Frames made at the current perplexity in the current chain: (layer, epoch).
    pub made: std::collections::BTreeSet<(usize, usize)>,
    /// Epochs whose separation was reported.
    pub separated: std::collections::BTreeSet<usize>,
    /// The newest frame made of each layer, by layer: its epoch and layout.
    pub last: BTreeMap<usize, (usize, Array2<f32>)>,
    /// Training has ended: the chain runs newest first from the last epoch.
    pub backward: bool,
    /// What the newest frame of each layer hands to the next ([`Carry`]), by layer.
    pub carry: BTreeMap<usize, Carry>,
    /// The weights kept are those of every `stride`-th epoch ([`Reel::keep`]); 0 is 1.
    stride: usize,
}

/// The most epochs whose weights the reel keeps (each 1.07 MB in half precision for the
/// default 784-512-256-10 network, [`HalfMlp`]): a run of more epochs keeps every 2nd, then
/// every 4th, ... epoch, plus the newest and any epoch with a frame already shown, and its
/// film has one frame per epoch kept. 40 keeps the whole film of a default run (epoch 0 and
/// about 37 epochs) and bounds a 200-epoch run's weights at about 44 MB (f16, plus the newest
/// in f32) instead of 431 MB (every epoch, f32).
pub const KEPT_EPOCHS_MAX: usize = 40;

impl Reel {
    /// Forget everything (a restart).
    pub fn clear(&mut self) {
        *self = Reel::default();
    }

    /// Keep the weights of `epoch` for the film (in half precision; the newest also as they
    /// are), thinning the epochs kept to at most [`KEPT_EPOCHS_MAX`] (the newest and those
    /// with a frame made are never dropped).
    pub fn keep(&mut self, epoch: usize, model: &Mlp) {
        self.models.insert(epoch, Arc::new(HalfMlp::new(model)));
        if self.newest.as_ref().is_none_or(|(e, _)| *e <= epoch) {
            self.newest = Some((epoch, Arc::new(model.clone())));
        }
        let newest = epoch.max(self.models.keys().next_back().copied().unwrap_or(0));
        self.stride = self.stride.max(1);
        loop {
            let (stride, made) = (self.stride, &self.made);
            self.models.retain(|&e, _| {
                e % stride == 0 || e == newest || made.iter().any(|&(l, m)| m == e && l > 1)
            });
            if self.models.len() <= KEPT_EPOCHS_MAX || stride > newest {
                break;
            }
            self.stride *= 2;
        }
    }

    /// The weights of `epoch`: the newest as kept, the others from half precision.
    pub fn model(&self, epoch: usize) -> Option<Arc<Mlp>> {
        match &self.newest {
            Some((e, m)) if *e == epoch => Some(Arc::clone(m)),
            _ => self.models.get(&epoch).map(|h| Arc::new(h.model())),
        }
    }

    /// The newest epoch kept and its weights as they were.
    pub fn newest(&self) -> Option<(usize, &Mlp)> {
        self.newest.as_ref().map(|(e, m)| (*e, m.as_ref()))
    }

    /// Bytes of the weights kept (half precision, and the newest in f32).
    pub fn weight_bytes(&self) -> usize {
        let newest = self.newest.as_ref().map_or(0, |(_, m)| {
            4 * (m.coefs.iter().map(Array2::len).sum::<usize>()
                + m.intercepts.iter().map(ndarray::Array1::len).sum::<usize>())
        });
        self.models.values().map(|h| h.bytes()).sum::<usize>() + newest
    }

    /// Forget the frames, keep the weights (a new perplexity remakes the film).
    pub fn restart_frames(&mut self) {
        self.made.clear();
        self.last.clear();
        self.carry.clear();
    }

    /// Training has ended: remake the film newest first, anchored at the last epoch's cold
    /// map (the frames made while training are made again, in the new chain; the pixels'
    /// one frame does not depend on it and is kept). Does nothing the second time.
    pub fn settle(&mut self) {
        if !self.backward {
            self.backward = true;
            self.made.retain(|&(layer, _)| layer == 1);
            self.last.clear();
            self.carry.clear();
        }
    }

    /// The epochs in the order of the chain.
    fn chain(&self) -> Box<dyn Iterator<Item = usize> + '_> {
        if self.backward {
            Box::new(self.models.keys().rev().copied())
        } else {
            Box::new(self.models.keys().copied())
        }
    }

    /// The next frame to make among `layers`: in the chain's order (oldest epoch first while
    /// training runs, newest first once it has ended), then the shallowest layer, so that every
    /// frame starts from its predecessor (the warm start needs the frame before it) and all
    /// panels reach an epoch together. Layer 1 (pixels) does not change: its one frame is
    /// epoch 0's.
    pub fn next(&self, layers: &std::collections::BTreeSet<usize>) -> Option<(usize, usize)> {
        self.next_epoch(layers)
            .and_then(|(epoch, todo)| todo.first().map(|&layer| (layer, epoch)))
    }

    /// The next epoch of the chain with frames to make among `layers`, and those layers
    /// (shallowest first): the frames of one epoch, one per layer, can be made at once, each
    /// from its own layer's predecessor.
    pub fn next_epoch(
        &self,
        layers: &std::collections::BTreeSet<usize>,
    ) -> Option<(usize, Vec<usize>)> {
        self.chain().find_map(|epoch| {
            let todo: Vec<usize> = layers
                .iter()
                .copied()
                .filter(|&l| (l > 1 || epoch == 0) && !self.made.contains(&(l, epoch)))
                .collect();
            (!todo.is_empty()).then_some((epoch, todo))
        })
    }

    /// Frames still to make among `layers`.
    pub fn pending(&self, layers: &std::collections::BTreeSet<usize>) -> usize {
        self.models
            .keys()
            .map(|&e| {
                layers
                    .iter()
                    .filter(|&&l| (l > 1 || e == 0) && !self.made.contains(&(l, e)))
                    .count()
            })
            .sum()
    }

    /// Take `frame` as made (the final map of the last epoch's weights, which is the
    /// backward chain's cold anchor), a layout of the rows `high` (its activations): the next
    /// frame of the layer compares its neighbours with theirs ([`anchor_carry`]), so that it
    /// runs the iterations its change calls for ([`frame_schedule`]), as every later frame
    /// does. (Without them it ran [`FRAME_ITERATIONS`] however little the layer had changed.)
    pub fn adopt(&mut self, frame: &Frame, high: ArrayView2<f32>) {
        self.carry.insert(frame.layer, anchor_carry(high));
        self.made.insert((frame.layer, frame.epoch));
        self.last
            .insert(frame.layer, (frame.epoch, frame.coords.clone()));
    }

    /// Whether the frames of `epoch` still to make, among `layers`, are every layer from 2 to
    /// `n_layers` and are made at once once training has ended ([`Reel::next_epoch`]): then
    /// their input neighbours give the epoch's separation ([`Reel::separation_of_frames`]) and
    /// no search of its own is needed.
    pub fn separation_comes_with_frames(
        &self,
        epoch: usize,
        layers: &std::collections::BTreeSet<usize>,
        n_layers: usize,
    ) -> bool {
        self.backward
            && self.models.contains_key(&epoch)
            && (2..=n_layers).all(|l| layers.contains(&l) && !self.made.contains(&(l, epoch)))
    }

    /// The separation of `epoch` from the input neighbours of its frames of every layer from 2
    /// to `n_layers` ([`Carry::neighbours`], the newest frame of each layer): each point's
    /// [`SEPARATION_K`] nearest, the same rows, ranked the same way, as [`separation`]'s own
    /// search finds (the frame's exact search ranks by distance, ties to the lower index, and
    /// its first ten are those of a search for ten: `tests/film.rs` checks the two figures are
    /// equal on the on-board digits); `pixels` is layer 1's. `None` when a layer's newest frame
    /// is not of `epoch`.
    pub fn separation_of_frames(
        &self,
        epoch: usize,
        n_layers: usize,
        labels: &[u8],
        pixels: f64,
    ) -> Option<Separation> {
        let mut shares = vec![(1, pixels)];
        for layer in 2..=n_layers {
            let (made, _) = self.last.get(&layer)?;
            let carry = self.carry.get(&layer)?;
            if *made != epoch {
                return None;
            }
            shares.push((layer, neighbours_label_share(&carry.neighbours, labels)?));
        }
        Some(Separation { epoch, shares })
    }

    /// Make frame (`layer`, `epoch`) of the images `x` (the embedded rows) and remember it.
    ///
    /// # Errors
    /// As [`make_frame`]; `None` when the epoch's weights are not kept.
    pub fn make(
        &mut self,
        x: ArrayView2<f32>,
        layer: usize,
        epoch: usize,
        perplexity: f64,
        seed: u64,
        cancel: Option<&AtomicBool>,
    ) -> Option<Result<Frame, TsneError>> {
        self.make_epoch(x, &[layer], epoch, perplexity, seed, cancel)
            .map(|mut frames| frames.remove(0))
    }

    /// Make the frames of `layers` at `epoch` at once (each layer's chain is its own: one
    /// rayon task per layer, so two cores serve two small frames better than one frame's
    /// inner loops do), and remember them. The frames are those [`Reel::make`] makes one by
    /// one, whatever the thread count.
    ///
    /// # Errors
    /// As [`make_frame`], per layer in `layers`' order; `None` when the epoch's weights are
    /// not kept.
    pub fn make_epoch(
        &mut self,
        x: ArrayView2<f32>,
        layers: &[usize],
        epoch: usize,
        perplexity: f64,
        seed: u64,
        cancel: Option<&AtomicBool>,
    ) -> Option<Vec<Result<Frame, TsneError>>> {
        use rayon::prelude::*;
        let model = self.model(epoch)?;
        // The activations of every layer from one forward pass (the same values as one
        // `layer_output` per layer); each lives as long as its frame's run.
        let deep: Vec<usize> = layers.iter().copied().filter(|&l| l > 1).collect();
        let mut outputs = model.layer_outputs(x, &deep).into_iter();
        let highs: Vec<Array2<f32>> = layers
            .iter()
            .map(|&l| {
                if l > 1 {
                    outputs.next().expect("one output per deep layer")
                } else {
                    x.to_owned()
                }
            })
            .collect();
        let runs: Vec<_> = layers
            .par_iter()
            .zip(highs)
            .map(|(&layer, high)| {
                let previous = self.last.get(&layer).map(|(_, coords)| coords.view());
                frame_run(
                    high.view(),
                    previous,
                    self.carry.get(&layer),
                    self.backward,
                    layer,
                    epoch,
                    perplexity,
                    seed,
                    cancel,
                )
            })
            .collect();
        Some(
            runs.into_iter()
                .map(|run| {
                    run.map(|(f, carry)| {
                        self.made.insert((f.layer, epoch));
                        self.last.insert(f.layer, (epoch, f.coords.clone()));
                        self.carry.insert(f.layer, carry);
                        f
                    })
                })
                .collect(),
        )
    }
}

/// The separation figure of every layer 1..=n of `model` on the images `x` with `labels`
/// ([`label_share`] at k = [`SEPARATION_K`]); `pixels`, when known, is layer 1's (it never
/// changes, so the caller computes it once).
pub fn separation(
    model: &Mlp,
    x: ArrayView2<f32>,
    labels: &[u8],
    epoch: usize,
    pixels: Option<f64>,
) -> Separation {
    let mut shares = Vec::with_capacity(model.n_layers());
    for layer in 1..=model.n_layers() {
        let share = match (layer, pixels) {
            (1, Some(p)) => p,
            (1, None) => label_share(x, labels, SEPARATION_K),
            _ => label_share(model.layer_output(x, layer).view(), labels, SEPARATION_K),
        };
        shares.push((layer, share));
    }
    Separation { epoch, shares }
}

/// [`label_share`] at k = [`SEPARATION_K`] from each point's nearest neighbours already found
/// (`neighbours`: n x k row-major, k = `SEPARATION_K` or n - 1 when smaller, nearest first):
/// `None` when they are not that many per point.
pub fn neighbours_label_share(neighbours: &[u32], labels: &[u8]) -> Option<f64> {
    let n = labels.len();
    let k = SEPARATION_K.min(n.saturating_sub(1));
    if k == 0 {
        return neighbours.is_empty().then_some(0.0);
    }
    (neighbours.len() == n * k).then(|| crate::neighbours::same_label_share(neighbours, k, labels))
}

/// `layout` turned, possibly mirrored, and shifted to lie as close as it can to `previous`
/// (orthogonal Procrustes in 2-D, least squares over all points): t-SNE's cost does not change
/// under a rotation, a reflection or a shift, so this costs nothing in quality and removes the
/// motion between frames that means nothing.
pub fn align_to(previous: ArrayView2<f32>, layout: ArrayView2<f32>) -> Array2<f32> {
    assert_eq!(
        previous.dim(),
        layout.dim(),
        "two layouts of the same points"
    );
    let mean = |a: ArrayView2<f32>| -> [f64; 2] {
        let n = a.nrows().max(1) as f64;
        let (x, y) = a.rows().into_iter().fold((0.0, 0.0), |(x, y), p| {
            (x + f64::from(p[0]), y + f64::from(p[1]))
        });
        [x / n, y / n]
    };
    let (mp, ml) = (mean(previous), mean(layout));
    // M = Y^T X over the centred layouts (Y: layout, X: previous).
    let mut m = [[0.0f64; 2]; 2];
    for (y, x) in layout.rows().into_iter().zip(previous.rows()) {
        let y = [f64::from(y[0]) - ml[0], f64::from(y[1]) - ml[1]];
        let x = [f64::from(x[0]) - mp[0], f64::from(x[1]) - mp[1]];
        for i in 0..2 {
            for j in 0..2 {
                m[i][j] += y[i] * x[j];
            }
        }
    }
    // Rows map as y R. A rotation [[c, -s], [s, c]] scores c (m00 + m11) + s (m10 - m01); a
    // reflection [[c, s], [s, -c]] scores c (m00 - m11) + s (m01 + m10): take the better.
    let (rc, rs) = (m[0][0] + m[1][1], m[1][0] - m[0][1]);
    let (fc, fs) = (m[0][0] - m[1][1], m[0][1] + m[1][0]);
    let r = if rc.hypot(rs) >= fc.hypot(fs) {
        let t = rs.atan2(rc);
        [[t.cos(), -t.sin()], [t.sin(), t.cos()]]
    } else {
        let t = fs.atan2(fc);
        [[t.cos(), t.sin()], [t.sin(), -t.cos()]]
    };
    let mut out = Array2::zeros(layout.dim());
    for (mut o, y) in out.rows_mut().into_iter().zip(layout.rows()) {
        let y = [f64::from(y[0]) - ml[0], f64::from(y[1]) - ml[1]];
        for j in 0..2 {
            o[j] = (y[0] * r[0][j] + y[1] * r[1][j] + mp[j]) as f32;
        }
    }
    out
}

/// The median distance a point moves from layout `a` to layout `b`, over `b`'s RMS radius
/// (about its centre): the film's alignment figure (consecutive frames should move far less
/// than two independent runs differ).
pub fn median_move(a: ArrayView2<f32>, b: ArrayView2<f32>) -> f64 {
    assert_eq!(a.dim(), b.dim(), "two layouts of the same points");
    let n = b.nrows().max(1) as f64;
    let centre = b
        .mean_axis(Axis(0))
        .unwrap_or_else(|| ndarray::arr1(&[0.0, 0.0]));
    let rms = (b
        .rows()
        .into_iter()
        .map(|p| f64::from(p[0] - centre[0]).powi(2) + f64::from(p[1] - centre[1]).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let mut d: Vec<f64> = a
        .rows()
        .into_iter()
        .zip(b.rows())
        .map(|(p, q)| f64::from(p[0] - q[0]).hypot(f64::from(p[1] - q[1])))
        .collect();
    if d.is_empty() || rms == 0.0 {
        return 0.0;
    }
    d.sort_by(f64::total_cmp);
    d[d.len() / 2] / rms
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn label_share_of_a_known_case() {
        // Two tight pairs far apart, labelled so that one pair agrees and the other does not:
        // with k = 1 each point's nearest is its partner.
        let x = array![[0.0f32, 0.0], [0.1, 0.0], [10.0, 0.0], [10.1, 0.0]];
        assert_eq!(label_share(x.view(), &[0, 0, 1, 2], 1), 0.5);
        // k = 2: the partner and the nearest of the far pair; points 0 and 1 have one same-
        // label neighbour of 2, points 2 and 3 none.
        assert_eq!(label_share(x.view(), &[0, 0, 1, 2], 2), 0.25);
        assert_eq!(label_share(x.view(), &[0, 0, 0, 0], 3), 1.0);
        assert_eq!(label_share(x.slice(ndarray::s![..1, ..]), &[0], 10), 0.0);
    }

    #[test]
    fn label_share_matches_brute_force_on_a_wide_input() {
        // 300 points in 40-D (the GEMM path): compare with a direct f64 ranking.
        let n = 300;
        let x = Array2::from_shape_fn((n, 40), |(i, j)| {
            (((i * 7919 + j * 104_729) % 1000) as f32 / 1000.0) + (i % 3) as f32
        });
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let k = 10;
        let mut same = 0;
        for i in 0..n {
            let mut d: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let d: f64 = x
                        .row(i)
                        .iter()
                        .zip(x.row(j))
                        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                        .sum();
                    (d, j)
                })
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            same += d[..k].iter().filter(|p| labels[p.1] == labels[i]).count();
        }
        let expected = same as f64 / (n * k) as f64;
        assert!((label_share(x.view(), &labels, k) - expected).abs() < 1e-12);
    }

    #[test]
    fn the_reel_makes_frames_oldest_first_and_pixels_once() {
        let mut reel = Reel::default();
        let model = Mlp::new(&[4, 3, 2], 0);
        for e in 0..3 {
            reel.keep(e, &model);
        }
        let layers: std::collections::BTreeSet<usize> = [1, 2, 3].into_iter().collect();
        let mut order = Vec::new();
        while let Some(next) = reel.next(&layers) {
            order.push(next);
            reel.made.insert(next);
        }
        assert_eq!(
            order,
            vec![(1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (2, 2), (3, 2)]
        );
        assert_eq!(reel.pending(&layers), 0);
        reel.restart_frames();
        assert_eq!(reel.pending(&layers), 7);
        assert_eq!(reel.models.len(), 3, "a new perplexity keeps the weights");
    }

    #[test]
    fn a_long_run_keeps_a_spaced_subset_of_its_epochs() {
        let mut reel = Reel::default();
        let model = Mlp::new(&[4, 3, 2], 0);
        // Epoch 3's frame was shown while training ran: it stays.
        reel.made.insert((2, 3));
        for e in 0..=200 {
            reel.keep(e, &model);
            assert!(reel.models.len() <= KEPT_EPOCHS_MAX + 1, "epoch {e}");
            assert!(reel.models.contains_key(&e), "the newest is kept");
        }
        let kept: Vec<usize> = reel.models.keys().copied().collect();
        assert_eq!(kept[..3], [0, 3, 8], "{kept:?}");
        assert!(
            kept.iter().all(|&e| e % 8 == 0 || e == 3 || e == 200),
            "{kept:?}"
        );
        assert_eq!(kept.len(), 27, "{kept:?}");
        // A default run keeps every epoch.
        let mut reel = Reel::default();
        for e in 0..=37 {
            reel.keep(e, &model);
        }
        assert_eq!(reel.models.len(), 38);
    }

    #[test]
    fn once_training_ends_the_reel_remakes_the_film_newest_first() {
        let mut reel = Reel::default();
        let model = Mlp::new(&[4, 3, 2], 0);
        for e in 0..3 {
            reel.keep(e, &model);
        }
        let layers: std::collections::BTreeSet<usize> = [1, 2, 3].into_iter().collect();
        // Training made epoch 0 and layer 2 of epoch 1.
        for f in [(1, 0), (2, 0), (3, 0), (2, 1)] {
            reel.made.insert(f);
        }
        reel.last.insert(2, (1, Array2::zeros((4, 2))));
        reel.settle();
        assert!(reel.last.is_empty(), "the last epoch starts cold");
        let mut order = Vec::new();
        while let Some(next) = reel.next(&layers) {
            order.push(next);
            reel.made.insert(next);
        }
        assert_eq!(
            order,
            vec![(2, 2), (3, 2), (2, 1), (3, 1), (2, 0), (3, 0)],
            "newest first, the pixels' frame kept"
        );
        reel.settle();
        assert_eq!(reel.pending(&layers), 0, "settling twice remakes nothing");
        reel.restart_frames();
        assert_eq!(
            reel.next(&layers),
            Some((2, 2)),
            "a new perplexity: newest first"
        );
    }

    #[test]
    fn the_reel_keeps_half_precision_weights_and_the_newest_as_they_are() {
        let mut reel = Reel::default();
        let (a, b) = (Mlp::new(&[30, 20, 10], 1), Mlp::new(&[30, 20, 10], 2));
        reel.keep(0, &a);
        reel.keep(1, &b);
        let half = reel.model(0).expect("kept");
        assert_ne!(*half, a, "rounded");
        for (h, w) in half.coefs.iter().zip(&a.coefs) {
            assert_eq!(h.dim(), w.dim());
            for (x, y) in h.iter().zip(w) {
                assert!((x - y).abs() <= y.abs() * 1e-3 + 1e-7, "{x} vs {y}");
            }
        }
        assert_eq!(*reel.model(1).expect("kept"), b, "the newest as it is");
        assert_eq!(reel.newest().map(|(e, m)| (e, m == &b)), Some((1, true)));
        let n = 30 * 20 + 20 + 20 * 10 + 10;
        assert_eq!(reel.models[&0].bytes(), 2 * n);
        assert_eq!(reel.weight_bytes(), 2 * 2 * n + 4 * n);
        assert_eq!(reel.model(5), None);
    }

    #[test]
    fn an_epochs_frames_at_once_are_the_frames_one_by_one() {
        let x = Array2::from_shape_fn((80, 12), |(i, j)| {
            (((i * 7919 + j * 104_729) % 1000) as f32 / 1000.0) + (i % 4) as f32
        });
        let layers: std::collections::BTreeSet<usize> = [2, 3].into_iter().collect();
        let film = |at_once: bool| {
            let mut reel = Reel::default();
            for e in 0..3 {
                reel.keep(e, &Mlp::new(&[12, 8, 6, 3], e as u64));
            }
            let mut frames = Vec::new();
            while let Some((epoch, todo)) = reel.next_epoch(&layers) {
                if at_once {
                    let made = reel.make_epoch(x.view(), &todo, epoch, 5.0, 0, None);
                    frames.extend(made.expect("kept").into_iter().map(|f| f.expect("frame")));
                } else {
                    for layer in todo {
                        let made = reel.make(x.view(), layer, epoch, 5.0, 0, None);
                        frames.push(made.expect("kept").expect("frame"));
                    }
                }
            }
            frames
        };
        let (one, all) = (film(false), film(true));
        assert_eq!(one.len(), 6);
        for (a, b) in one.iter().zip(&all) {
            assert_eq!((a.layer, a.epoch, &a.coords), (b.layer, b.epoch, &b.coords));
        }
    }

    #[test]
    fn an_adopted_anchor_hands_on_the_neighbours_its_own_run_found() {
        let x = Array2::from_shape_fn((80, 12), |(i, j)| {
            (((i * 7919 + j * 104_729) % 1000) as f32 / 1000.0) + (i % 4) as f32
        });
        let mut reel = Reel::default();
        for e in 0..2 {
            reel.keep(e, &Mlp::new(&[12, 8, 6, 3], e as u64));
        }
        reel.settle();
        let high = reel.model(1).expect("kept").layer_output(x.view(), 2);
        let (frame, own) =
            frame_run(high.view(), None, None, true, 2, 1, 5.0, 0, None).expect("cold frame");
        reel.adopt(&frame, high.view());
        assert_eq!(reel.carry[&2], own, "what the frame's own run hands on");
        assert_eq!(own.neighbours.len(), 80 * crate::tsne::TRUST_K);
        assert!(own.betas.is_empty());
        assert_eq!(reel.last[&2], (1, frame.coords));
    }

    #[test]
    fn a_frame_runs_more_iterations_the_more_its_layer_changed() {
        assert_eq!(Tier::of(0.29), Tier::Changed);
        assert_eq!(Tier::Changed.learning_rate(1500), Some(150.0));
        assert_eq!(Tier::Remade.learning_rate(1500), Some(1500.0));
        assert_eq!(Tier::Remade.learning_rate(30), Some(50.0));
        assert_eq!(Tier::Quiet.learning_rate(1500), None);
        assert_eq!(frame_schedule(0.5, false, 1500).learning_rate, Some(150.0));
        assert_eq!(frame_iterations(0.0), QUIET_ITERATIONS);
        assert_eq!(frame_iterations(QUIET_CHANGE), FRAME_ITERATIONS);
        assert_eq!(frame_iterations(0.29), FRAME_ITERATIONS);
        assert_eq!(frame_iterations(MOVED_CHANGE), MOVED_ITERATIONS);
        assert_eq!(frame_iterations(0.89), MOVED_ITERATIONS);
        assert_eq!(frame_iterations(RESTART_CHANGE), warm::RESTART);
        assert_eq!(frame_iterations(1.0), warm::RESTART);
        assert_eq!(preview_iterations(0.5), FRAME_ITERATIONS);
        // The preview made while training never takes the remade tier.
        assert_eq!(preview_iterations(0.0), QUIET_ITERATIONS);
        assert_eq!(preview_iterations(QUIET_CHANGE), FRAME_ITERATIONS);
        assert_eq!(preview_iterations(1.0), FRAME_ITERATIONS);
    }

    #[test]
    fn align_to_undoes_a_turn_a_mirror_and_a_shift() {
        let a = array![
            [1.0f32, 0.0],
            [-1.0, 0.5],
            [0.3, 2.0],
            [0.0, -1.0],
            [2.0, 1.0]
        ];
        let (c, s) = (0.6f32, 0.8f32);
        let turned = a
            .mapv(|v| v)
            .rows()
            .into_iter()
            .map(|p| [p[0] * c - p[1] * s + 3.0, p[0] * s + p[1] * c - 1.0])
            .collect::<Vec<_>>();
        let turned = Array2::from_shape_fn((5, 2), |(i, j)| turned[i][j]);
        let mirrored = Array2::from_shape_fn((5, 2), |(i, j)| {
            if j == 0 {
                -turned[[i, 0]]
            } else {
                turned[[i, 1]]
            }
        });
        for moved in [turned, mirrored] {
            let back = align_to(a.view(), moved.view());
            for (x, y) in back.iter().zip(a.iter()) {
                assert!((x - y).abs() < 1e-5, "{back} vs {a}");
            }
        }
    }

    #[test]
    fn median_move_of_a_shift() {
        let a = array![[1.0f32, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]];
        let b = a.mapv(|v| v + 0.5);
        assert!((median_move(a.view(), b.view()) - (0.5f64.hypot(0.5))).abs() < 1e-6);
        assert_eq!(median_move(a.view(), a.view()), 0.0);
    }
}
