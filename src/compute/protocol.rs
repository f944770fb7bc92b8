//! What the UI and the worker say to each other: the worker's [`Config`], the [`Command`]s in,
//! the [`Event`]s out, and the owned snapshots that travel through the latest-wins slots. The
//! engines' own types travel as they are (`nn::EpochMetrics`, `nn::StopReason`,
//! `tsne::Embedding`, `explain::Method`, `explain::Attribution`).

use std::sync::Arc;

use ndarray::Array2;

use crate::data::{Part, Split};
use crate::explain::{Attribution, ClassMean, Method, Units};
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
    /// The other training options (learning rate, penalty, batch size, activation; issue 16
    /// item 4); `hidden`, `max_epochs` and `seed` above take precedence over its own.
    pub train: nn::TrainParams,
    /// Issue 13: the first `place_n` test rows are placed into each layer's final map
    /// (`tsne::place`); 0 places none.
    pub place_n: usize,
    /// Make the film (issue 12): each layer's map at epoch 0 and after every epoch, aligned
    /// from frame to frame, and the class separation of every layer per epoch.
    pub film: bool,
    /// The weights of a saved run by epoch (`--model DIR`): the film is made from them.
    pub film_models: Vec<(usize, Arc<Mlp>)>,
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
            train: nn::TrainParams::default(),
            place_n: DEFAULT_PLACE_N,
            film: true,
            film_models: Vec::new(),
        }
    }
}

/// Test rows placed into each map by default (issue 13).
pub const DEFAULT_PLACE_N: usize = 500;

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
    /// Contrast class: explain f_class - f_versus ("why class and not versus"); `None`: f_class.
    pub versus: Option<usize>,
    /// Probability or logit.
    pub units: Units,
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
            versus: None,
            units: Units::default(),
        }
    }
}

/// A request for a class-level map: the mean attribution over the first `images` test images
/// of `class` (issue 14), superseded like an explanation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassMeanRequest {
    /// Identifies the request, so that late progress of a superseded one is ignored.
    pub id: u64,
    /// The class explained, and the label of the images averaged over.
    pub class: usize,
    /// Contrast class (f_class - f_versus), or `None`.
    pub versus: Option<usize>,
    /// How many test images of the class (fewer when the test split has fewer).
    pub images: usize,
    /// Attribution method (the engine's class-mean budget: `ExplainParams::for_class_mean`).
    pub method: Method,
    /// Probability or logit.
    pub units: Units,
}

impl ClassMeanRequest {
    /// The test rows the map averages over: the first `images` rows labelled `class` (the one
    /// rule of the worker and of the front-end's mean image).
    pub fn rows(&self, labels: &[u8]) -> Vec<usize> {
        labels
            .iter()
            .enumerate()
            .filter(|&(_, &l)| usize::from(l) == self.class)
            .map(|(i, _)| i)
            .take(self.images)
            .collect()
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
    /// A class-level map (supersedes the explanation or class-level map asked for before).
    ExplainClassMean(ClassMeanRequest),
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
    /// The model these figures are of (issue 13: the UI computes neighbours with it).
    pub model: Arc<Mlp>,
    /// Activations of the embedded training images per layer: index k - 1 is layer k, from the
    /// input pixels to the output (each embedded images x the layer's units).
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

/// One frame of the film (issue 12): a layer's t-SNE map of the embedded images after an epoch,
/// started from the previous frame of that layer so that points move only as much as the
/// network changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Layer, notebook numbering (1 = input pixels).
    pub layer: usize,
    /// Epochs trained when the activations were taken (0 = the untrained network).
    pub epoch: usize,
    /// n x 2 coordinates, embedded image i at row i.
    pub coords: Array2<f32>,
    /// KL divergence of the layout.
    pub kl_divergence: Option<f64>,
    /// Neighbour preservation at k = 10 (`tsne::trust`).
    pub trust: Option<f64>,
}

/// How class-separated every layer is after an epoch: for each layer, the mean share of each
/// embedded image's 10 nearest neighbours in the layer's own space that have its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Separation {
    /// Epochs trained (0 = the untrained network).
    pub epoch: usize,
    /// (layer, share) for every layer, notebook numbering; layer 1 (pixels) is the baseline.
    pub shares: Vec<(usize, f64)>,
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

/// An owned copy of `explain::ClassMeanProgress`, tagged with its request, for the slot.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassMeanSnapshot {
    /// The request this answers.
    pub id: u64,
    /// Mean attribution per pixel over the images done.
    pub values: Vec<f32>,
    /// Standard error of that mean per pixel.
    pub stderr: Vec<f32>,
    /// Images done.
    pub images_done: usize,
    /// Images planned.
    pub images_total: usize,
    /// Time since the map started.
    pub seconds: f64,
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
        /// Test rows `0..place_n` placed into this map (`tsne::place`), place_n x 2, in order;
        /// `None` when none were asked for.
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
    /// A frame of the film is made (`Config::film`).
    Frame(Frame),
    /// The class separation of every layer after an epoch (`Config::film`).
    Separation(Separation),
    /// A new running class-level map is in [`super::Slots::class_mean`].
    ClassMeanProgress,
    /// A class-level map finished.
    ClassMeanDone {
        /// The request it answers.
        id: u64,
        /// The engine's result (boxed: it would double the size of every event).
        mean: Box<ClassMean>,
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
