//! What the UI and the worker say to each other: the worker's [`Config`], the [`Command`]s in,
//! the [`Event`]s out, and the owned snapshots that travel through the latest-wins slots. The
//! engines' own types travel as they are (`nn::EpochMetrics`, `nn::StopReason`,
//! `tsne::Embedding`, `explain::Method`, `explain::Attribution`).

use std::sync::Arc;

use ndarray::Array2;

use crate::data::{Part, Split};
use crate::explain::{Attribution, Method};
use crate::nn::{self, EpochMetrics, Mlp, StopReason};
use crate::tsne::{self, Embedding};

/// Everything the worker needs: the data and model, already loaded and checked by the
/// front-end, and plain settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data, loaded, scaled and split.
    pub split: Arc<Split>,
    /// A saved model to explore instead of training.
    pub model: Option<Mlp>,
    /// Hidden layer sizes for training.
    pub hidden: Vec<usize>,
    /// Epoch limit.
    pub max_epochs: usize,
    /// t-SNE perplexity.
    pub perplexity: f64,
    /// Training images embedded per layer (the first ones: see `Split::embedded`).
    pub embed_n: usize,
    /// Seed for training, t-SNE and Shapley.
    pub seed: u64,
}

impl Config {
    /// The engines' defaults for `split` (and `model`, when one was loaded).
    pub fn new(split: Split, model: Option<Mlp>) -> Config {
        Config {
            split: Arc::new(split),
            model,
            hidden: nn::TrainParams::default().hidden,
            max_epochs: nn::DEFAULT_MAX_EPOCHS,
            perplexity: tsne::TsneParams::default().perplexity,
            embed_n: 1500,
            seed: 0,
        }
    }
}

/// A request to explain one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExplainRequest {
    /// Identifies the request, so that late progress of a superseded one is ignored.
    pub id: u64,
    /// The split the image is from (training rows are the embedded images).
    pub part: Part,
    /// Row of that part.
    pub index: usize,
    /// Class to explain; `None` for the predicted class.
    pub class: Option<usize>,
    /// Attribution method.
    pub method: Method,
}

impl ExplainRequest {
    /// The pipeline's opening request: the first test image, predicted class, default method.
    pub fn first() -> ExplainRequest {
        ExplainRequest {
            id: 0,
            part: Part::Test,
            index: 0,
            class: None,
            method: Method::default(),
        }
    }
}

/// What the UI asks of the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Pause training (resumable).
    Pause,
    /// Resume paused training.
    Resume,
    /// Stop training now and keep the model so far (the pipeline goes on with it).
    StopTraining,
    /// Train again from scratch with another seed (and redo what follows).
    RestartTraining {
        /// The new seed.
        seed: u64,
    },
    /// Re-run t-SNE on every layer with this perplexity (supersedes the embeddings asked for).
    Embed {
        /// Perplexity.
        perplexity: f64,
        /// Also embed the input pixels (layer 1).
        include_input: bool,
    },
    /// Run t-SNE on these layers only, with this perplexity (supersedes the embeddings asked
    /// for): the front-end keeps the layouts it has (`i` adds the input pixels without
    /// re-running the layers already shown).
    EmbedLayers {
        /// Perplexity.
        perplexity: f64,
        /// Whether the input pixels (layer 1) are among the layers shown: what a restart embeds.
        include_input: bool,
        /// Layers to embed, notebook numbering.
        layers: Vec<usize>,
    },
    /// Explain one image (supersedes the explanation asked for before).
    Explain(ExplainRequest),
    /// Stop everything and end the thread.
    Quit,
}

/// Which kind of job an event or failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Checking the data and the model.
    Load,
    /// Training.
    Train,
    /// t-SNE of one layer.
    Embed,
    /// A saliency map.
    Explain,
}

/// What the model says about the embedded images and the test split, computed once per model.
#[derive(Debug, Clone)]
pub struct ModelReport {
    /// Units per layer, input first.
    pub layer_sizes: Vec<usize>,
    /// Class probabilities of the embedded training images (n x classes).
    pub embed_probs: Array2<f32>,
    /// Class probabilities of the test split (n_test x classes).
    pub test_probs: Array2<f32>,
    /// Confusion matrix of the test split (true x predicted).
    pub confusion: Array2<usize>,
    /// Accuracy of each true class on the test split (`nn::per_class_accuracy`; NaN: no rows).
    pub per_class_accuracy: Vec<f64>,
    // SHIM(errcore): the two fields below are errcore's contract; the lead keeps errcore's.
    /// The model itself, so the UI can compute a test image's activations (issue 13).
    pub model: Arc<Mlp>,
    /// Activations of the embedded training images, index k-1 = layer k (all layers).
    pub embed_layers: Vec<Array2<f32>>,
}

/// An owned copy of `tsne::TsneProgress`, tagged with its layer, for the slot.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedSnapshot {
    /// Layer, notebook numbering (1 = input pixels).
    pub layer: usize,
    /// Iterations done.
    pub iteration: usize,
    /// Iterations planned.
    pub n_iter: usize,
    /// KL divergence, when this step computed it.
    pub kl_divergence: Option<f64>,
    /// n x 2 coordinates.
    pub coords: Array2<f32>,
}

/// An owned copy of `explain::ExplainProgress`, tagged with its request, for the slot.
#[derive(Debug, Clone, PartialEq)]
pub struct SaliencySnapshot {
    /// The request this answers.
    pub id: u64,
    /// One value per pixel.
    pub values: Vec<f32>,
    /// Standard error per pixel, when the method gives one.
    pub stderr: Option<Vec<f32>>,
    /// Samples done.
    pub samples_done: usize,
    /// Samples planned.
    pub samples_total: usize,
    /// Time since the explanation started.
    pub seconds: f64,
}

impl SaliencySnapshot {
    /// The final estimate of request `id`, from the engine's attribution.
    pub fn from_attribution(id: u64, a: &Attribution, seconds: f64) -> SaliencySnapshot {
        SaliencySnapshot {
            id,
            values: a.values.to_vec(),
            stderr: a.stderr.as_ref().map(|s| s.to_vec()),
            samples_done: a.samples,
            samples_total: a.samples,
            seconds,
        }
    }
}

/// What the worker tells the UI.
#[derive(Debug, Clone)]
pub enum Event {
    /// The data is ready; the first `embed_n` training rows are the embedded images.
    DataReady {
        /// The split, shared read-only with the UI.
        split: Arc<Split>,
        /// How many training images are embedded.
        embed_n: usize,
    },
    /// A training run starts (also after a restart).
    TrainingStarted {
        /// Its seed.
        seed: u64,
        /// Epoch limit.
        max_epochs: usize,
        /// Layer sizes, input first.
        layer_sizes: Vec<usize>,
    },
    /// One epoch finished.
    Epoch(EpochMetrics),
    /// Training stopped (converged, hit the limit, paused, or diverged).
    TrainingStopped(StopReason),
    /// A model is ready (trained, stopped early or loaded).
    ModelReady(Arc<ModelReport>),
    /// t-SNE of a layer starts.
    EmbedStarted {
        /// Layer, notebook numbering.
        layer: usize,
        /// Its width.
        size: usize,
        /// Perplexity.
        perplexity: f64,
    },
    /// A new mid-run embedding is in [`super::Slots::embedding`].
    EmbedProgress,
    /// t-SNE of a layer finished.
    EmbedDone {
        /// Layer, notebook numbering.
        layer: usize,
        /// The engine's result.
        embedding: Embedding,
        /// Neighbour preservation at k = 10 (`tsne::trust`).
        trust: Option<f64>,
        // SHIM(errcore): errcore's contract field; the lead keeps errcore's.
        /// The first `place_n` test rows placed into this layer's map (place_n x 2, in order).
        placed: Option<Array2<f32>>,
    },
    /// An explanation starts.
    ExplainStarted {
        /// The request, with the class resolved.
        request: ExplainRequest,
        /// The class explained.
        class: usize,
    },
    /// A new running estimate is in [`super::Slots::saliency`].
    ExplainProgress,
    /// An explanation finished.
    ExplainDone {
        /// The request it answers.
        id: u64,
        /// The engine's result.
        attribution: Attribution,
        /// Time it took.
        seconds: f64,
    },
    /// A job failed or panicked; the worker keeps running.
    JobFailed {
        /// Which job.
        job: JobKind,
        /// What went wrong.
        message: String,
    },
    /// Nothing left to do.
    Idle,
}
