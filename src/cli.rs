//! Command-line arguments. The data options are shared by every subcommand (given after its
//! name); each subcommand
//! takes only the options that apply to it; the terminal app (no subcommand) takes the model and
//! view options. Values are checked here, at parse time, where a rule needs nothing but the value.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::data::LoadOptions;
use crate::explain;
use crate::tui::Tab;

/// See what each layer of a neural network sees: an MLP on MNIST, a t-SNE of every layer and
/// Shapley saliency maps, in the terminal.
#[derive(Debug, Parser)]
#[command(
    name = "layerscope",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; with none, the terminal app opens.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Data and split options of the terminal app.
    #[command(flatten)]
    pub data: DataArgs,
    /// Model options of the terminal app.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Options of the terminal app.
    #[command(flatten)]
    pub view: ViewArgs,
}

/// Headless subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a summary of the data set: rows, features, classes, image shape, split sizes; with
    /// --model, the model's layers and whether it fits the data.
    Info(InfoArgs),
    /// Train the network (or go on training a saved one); one line per epoch on stderr; save the
    /// model as .npz.
    Train(TrainArgs),
    /// Embed layer activations with t-SNE; write `index,layer,x,y,label,prediction,row,split` as
    /// CSV.
    Embed(EmbedArgs),
    /// Explain one image's prediction (saliency), a contrast of two classes (--versus) or a class's
    /// mean map (--class-mean); write `row,col,value,stderr` as CSV.
    Explain(ExplainArgs),
    /// Run the pipeline, then print one frame of a tab as text (or ANSI colours).
    Snapshot(SnapshotArgs),
    // Issue 13 (errors and neighbours).
    /// The k nearest training images (of the embedded sample) of one test image in each layer's
    /// own space; write `layer,rank,row,label,prediction,distance,in_map` as CSV.
    Neighbours(NeighboursArgs),
}

/// A hidden layer size: a whole number of at least 1 (spaces around it are fine).
fn layer_size(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|e| format!("{e}: expected a whole number of units"))?;
    if n == 0 {
        return Err("a layer needs at least 1 unit".to_owned());
    }
    Ok(n)
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|e| format!("{e}: expected a whole number of at least 1"))?;
    if n == 0 {
        return Err("expected at least 1".to_owned());
    }
    Ok(n)
}

/// A share strictly between 0 and 1.
fn fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s
        .trim()
        .parse()
        .map_err(|e| format!("{e}: expected a number between 0 and 1"))?;
    if !(f > 0.0 && f < 1.0) {
        return Err("expected a number between 0 and 1 (both sides need rows)".to_owned());
    }
    Ok(f)
}

/// A t-SNE perplexity: a finite number above 0 (the point count is checked once it is known).
fn perplexity(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .trim()
        .parse()
        .map_err(|e| format!("{e}: expected a number above 0"))?;
    if !(p.is_finite() && p > 0.0) {
        return Err("expected a finite number above 0 (scikit-learn's default is 30)".to_owned());
    }
    Ok(p)
}

// Issue 12 (the film, branch film).
/// Which epochs `embed --frames` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramesSpec {
    /// Every epoch of the run, 0 (untrained) included.
    All,
    /// These epochs, ascending, no repeats.
    Epochs(Vec<usize>),
}

/// `all`, or epochs separated by commas (`0,1,2,5,10`).
fn frames_spec(s: &str) -> Result<FramesSpec, String> {
    if s.trim() == "all" {
        return Ok(FramesSpec::All);
    }
    let mut epochs = Vec::new();
    for part in s.split(',') {
        let e: usize = part.trim().parse().map_err(|e| {
            format!(
                "`{}`: {e}: expected `all` or epochs such as 0,1,2,5,10",
                part.trim()
            )
        })?;
        epochs.push(e);
    }
    epochs.sort_unstable();
    epochs.dedup();
    Ok(FramesSpec::Epochs(epochs))
}

/// The largest `snapshot` frame side: a frame is rendered in memory, cell by cell.
pub const MAX_FRAME_SIDE: u16 = 1000;

/// How to get a model: train one (`--hidden`, `--epochs`) or open a saved one (`--model`).
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Hidden layer sizes, comma-separated, each at least 1
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "512,256",
        value_name = "N,N",
        value_parser = layer_size,
        allow_negative_numbers = true,
        conflicts_with = "model"
    )]
    pub hidden: Vec<usize>,
    /// At most this many training epochs, at least 1 [default: 200, scikit-learn's max_iter]
    #[arg(long, value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// A saved model (.npz with coefs_0, intercepts_0, ...; a PyTorch .safetensors; an .onnx)
    /// to explore instead of training; `train`
    /// goes on training it (its weights, a fresh optimiser) and never overwrites it
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// scikit-learn's training options (issue 16 item 4).
    #[command(flatten)]
    pub training: TrainingArgs,
}

// Issue 16 item 4: scikit-learn's MLPClassifier training options, with its names and defaults.
/// The optimiser and activation of a network trained here, as scikit-learn's `MLPClassifier`
/// names them. Unset: a warm start (`train --model`) takes the values saved in the model file,
/// anything else scikit-learn's defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct TrainingArgs {
    /// Adam's step size, scikit-learn's learning_rate_init: a number above 0 [default: 0.001]
    #[arg(long, value_name = "LR", value_parser = learning_rate, allow_negative_numbers = true)]
    pub learning_rate: Option<f32>,
    /// L2 penalty on the weights, scikit-learn's alpha: a number of at least 0 [default:
    /// 0.0001]
    #[arg(long, value_name = "A", value_parser = penalty, allow_negative_numbers = true)]
    pub alpha: Option<f32>,
    /// Rows per minibatch, scikit-learn's batch_size (min(200, training rows) when unset)
    /// [default: 200]
    #[arg(long, value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    pub batch_size: Option<usize>,
    /// Hidden layers' activation, scikit-learn's activation: identity, logistic, tanh or relu
    /// [default: relu]; a saved model (--model) keeps its own
    #[arg(long, value_name = "NAME", value_parser = activation, conflicts_with = "model")]
    pub activation: Option<crate::nn::Activation>,
}

/// A step size: a finite number above 0.
fn learning_rate(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|e| format!("{e}: expected a number above 0 (scikit-learn's default is 0.001)"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(
            "expected a finite number above 0 (scikit-learn's default is 0.001)".to_owned(),
        );
    }
    Ok(v)
}

/// An L2 penalty: a finite number of at least 0.
fn penalty(s: &str) -> Result<f32, String> {
    let v: f32 = s.trim().parse().map_err(|e| {
        format!("{e}: expected a number of at least 0 (scikit-learn's default is 0.0001)")
    })?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(
            "expected a finite number of at least 0 (scikit-learn's default is 0.0001)".to_owned(),
        );
    }
    Ok(v)
}

/// An activation by scikit-learn's name.
fn activation(s: &str) -> Result<crate::nn::Activation, String> {
    crate::nn::Activation::from_name(s.trim()).ok_or_else(|| {
        "expected identity, logistic, tanh or relu (scikit-learn's names; default relu)".to_owned()
    })
}

/// The t-SNE options.
#[derive(Debug, Clone, Args)]
pub struct TsneArgs {
    /// t-SNE perplexity (scikit-learn's default is 30; the notebook used 3)
    #[arg(long, default_value_t = crate::tsne::TsneParams::default().perplexity, value_name = "P", value_parser = perplexity, allow_negative_numbers = true)]
    pub perplexity: f64,
    /// Training images embedded with t-SNE per layer
    #[arg(long = "n", default_value_t = 1500, value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    pub embed_n: usize,
}

/// Options of the terminal app (and of `snapshot`, which draws one of its frames).
#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// No braille or colour: digit glyphs for the scatter, shade characters for heatmaps
    #[arg(long)]
    pub ascii: bool,
    /// t-SNE perplexity (scikit-learn's default is 30; the notebook used 3)
    #[arg(long, default_value_t = crate::tsne::TsneParams::default().perplexity, value_name = "P", value_parser = perplexity, allow_negative_numbers = true)]
    pub perplexity: f64,
    /// Training images embedded with t-SNE per layer
    #[arg(long = "n", default_value_t = 1500, value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    pub embed_n: usize,
}

/// `layerscope info`.
#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Data and split options.
    #[command(flatten)]
    pub data: DataArgs,
    /// Also describe this saved model (.npz, .safetensors or .onnx) and say whether it fits the
    /// data
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
}

/// `layerscope train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Data and split options.
    #[command(flatten)]
    pub data: DataArgs,
    /// The model: a new one, or a saved one to go on training.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where to save the trained model (.npz; `-` for stdout)
    #[arg(long, value_name = "PATH")]
    pub save: PathBuf,
    /// Also write one row of metrics per epoch (CSV; no timings, so the same seed gives the same
    /// file); the test split is then evaluated after every epoch (without it, after the last)
    #[arg(long, value_name = "PATH")]
    pub metrics: Option<PathBuf>,
    // Issue 12 (the film, branch film).
    /// Also save the network after every epoch as DIR/epoch_NNN.npz (epoch_000: untrained); the
    /// folder is created when missing; `--model DIR` opens it
    #[arg(long, value_name = "DIR")]
    pub checkpoints: Option<PathBuf>,
}

/// `layerscope embed`.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// Data and split options.
    #[command(flatten)]
    pub data: DataArgs,
    /// The model (train one or open a saved one).
    #[command(flatten)]
    pub model: ModelArgs,
    /// The t-SNE options.
    #[command(flatten)]
    pub tsne: TsneArgs,
    /// Layers to embed, in the notebook's numbering (1 = input pixels) [default: 2..=n_layers]
    #[arg(long, value_delimiter = ',', value_name = "K,K", value_parser = at_least_one, allow_negative_numbers = true)]
    pub layers: Vec<usize>,
    /// Where to write the embedding (CSV; `-` for stdout)
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    // Issue 13: test images placed into each map.
    /// Also place the first N test images into each layer's map without moving it (openTSNE's
    /// transform); they are written with split = test [default: 0, none]
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub place: usize,
    // Issue 12 (the film, branch film).
    /// Train the whole run (or open a folder of checkpoints, --model DIR) and write every
    /// layer's map after these epochs (0 = untrained; `all`), with an `epoch` column first: the
    /// film the app shows after training, each frame started from the next epoch's, back from
    /// the trained network's map
    #[arg(long, value_name = "all|E,E", value_parser = frames_spec)]
    pub frames: Option<FramesSpec>,
    // Issue 16 item 6 (branch import): TensorBoard projector export.
    /// Also write the embedded images for TensorBoard's projector in folder DIR (made if
    /// missing): tensors-layerK.tsv per layer, metadata.tsv, sprite.png, projector_config.pbtxt
    #[arg(long, value_name = "DIR")]
    pub projector: Option<PathBuf>,
}

// Issue 13 (errors and neighbours): `layerscope neighbours`.
/// `layerscope neighbours`.
#[derive(Debug, Clone, Args)]
pub struct NeighboursArgs {
    /// Data and split options.
    #[command(flatten)]
    pub data: DataArgs,
    /// The model (train one or open a saved one).
    #[command(flatten)]
    pub model: ModelArgs,
    /// The t-SNE options: --n is the embedded sample the neighbours come from; with --maps,
    /// --perplexity makes the maps
    #[command(flatten)]
    pub tsne: TsneArgs,
    /// Row of the test split whose neighbours are wanted
    #[arg(long, value_name = "I")]
    pub index: usize,
    /// Only this layer (1 = input pixels) [default: every layer, 1 to the output]
    #[arg(long, value_name = "K")]
    pub layer: Option<usize>,
    /// Neighbours per layer
    #[arg(long, default_value_t = 8, value_name = "K")]
    pub k: usize,
    /// Also make each layer's t-SNE map (as `embed` does, same seed), place the test image in it
    /// and fill `in_map`: whether each neighbour is also among its k nearest in the map (about
    /// 0.5 s a layer; without it `in_map` is empty)
    #[arg(long)]
    pub maps: bool,
    /// Where to write the neighbours (CSV; `-` for stdout)
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
}

/// An explanation method, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// The notebook's sampling estimator (two model evaluations per pixel and sample)
    #[value(alias = "sampling")]
    Notebook,
    /// Permutation sampling (Castro et al. 2009)
    #[value(alias = "shapley")]
    Permutation,
    /// Gradient times input
    #[value(name = "gradient-x-input", alias = "gradient", alias = "gxi")]
    GradientXInput,
    /// Integrated gradients (Sundararajan et al. 2017)
    #[value(alias = "ig")]
    IntegratedGradients,
}

impl From<MethodArg> for explain::Method {
    fn from(m: MethodArg) -> explain::Method {
        match m {
            MethodArg::Notebook => explain::Method::Notebook,
            MethodArg::Permutation => explain::Method::Permutation,
            MethodArg::GradientXInput => explain::Method::GradientTimesInput,
            MethodArg::IntegratedGradients => explain::Method::IntegratedGradients,
        }
    }
}

impl From<explain::Method> for MethodArg {
    fn from(m: explain::Method) -> MethodArg {
        match m {
            explain::Method::Notebook => MethodArg::Notebook,
            explain::Method::Permutation => MethodArg::Permutation,
            explain::Method::GradientTimesInput => MethodArg::GradientXInput,
            explain::Method::IntegratedGradients => MethodArg::IntegratedGradients,
        }
    }
}

/// `layerscope explain`.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// Data and split options.
    #[command(flatten)]
    pub data: DataArgs,
    /// The model (train one or open a saved one).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Row of the test split to explain
    #[arg(
        long,
        default_value_t = 0,
        value_name = "I",
        conflicts_with = "class_mean"
    )]
    pub index: usize,
    /// Class to explain [default: the predicted one]
    #[arg(long, value_name = "C", conflicts_with = "class_mean")]
    pub class: Option<usize>,
    /// Explain the difference f_C - f_C2 instead: "why C and not C2" (with --class-mean, the
    /// mean difference over the images of class C)
    #[arg(long, value_name = "C2")]
    pub versus: Option<usize>,
    /// Write the class-level map of class C instead of one image's: the mean attribution over
    /// test images of class C, `stderr` the standard error of that mean
    #[arg(long, value_name = "C")]
    pub class_mean: Option<usize>,
    /// With --class-mean: the first N test images of class C (fewer if the test split has
    /// fewer) [default: 100]
    #[arg(long, value_name = "N", requires = "class_mean", value_parser = at_least_one, allow_negative_numbers = true)]
    pub images: Option<usize>,
    /// Method
    #[arg(long, value_enum, default_value_t = MethodArg::from(explain::Method::default()), value_name = "M")]
    pub method: MethodArg,
    /// Samples (notebook: iterations per pixel; permutation: permutations; integrated gradients:
    /// steps), per image with --class-mean [default: the method's own: 200, 200, 1, 50; 20
    /// per image for notebook and permutation with --class-mean]
    #[arg(long, value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    pub samples: Option<usize>,
    /// Explain in logits instead of probabilities
    #[arg(long)]
    pub logits: bool,
    /// Where to write the saliency map (CSV; `-` for stdout)
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
}

/// A tab of the terminal app, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TabArg {
    /// Loss and accuracy curves, confusion matrix
    #[value(alias = "1")]
    Training,
    /// A t-SNE scatter per layer
    #[value(alias = "2")]
    Embeddings,
    /// An image beside its saliency map
    #[value(alias = "3")]
    Saliency,
}

impl From<TabArg> for Tab {
    fn from(t: TabArg) -> Tab {
        match t {
            TabArg::Training => Tab::Training,
            TabArg::Embeddings => Tab::Embeddings,
            TabArg::Saliency => Tab::Saliency,
        }
    }
}

/// `layerscope snapshot`.
#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    /// Data and split options.
    #[command(flatten)]
    pub data: DataArgs,
    /// The model (train one or open a saved one).
    #[command(flatten)]
    pub model: ModelArgs,
    /// What the terminal app would show.
    #[command(flatten)]
    pub view: ViewArgs,
    /// Which tab
    #[arg(long, value_enum, default_value_t = TabArg::Training, value_name = "TAB")]
    pub tab: TabArg,
    /// Frame width in cells (1 to 1000)
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_FRAME_SIDE)), allow_negative_numbers = true)]
    pub width: u16,
    /// Frame height in cells (1 to 1000)
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_FRAME_SIDE)), allow_negative_numbers = true)]
    pub height: u16,
    /// Keep colours as ANSI escape codes
    #[arg(long)]
    pub ansi: bool,
    /// Also make the film (every layer's map after every epoch) and show its timeline; waits
    /// for every frame, which takes minutes after training
    #[arg(long)]
    pub film: bool,
    /// Also write the frame as an SVG picture (24-bit colour; braille dots and blocks drawn as
    /// shapes, so it looks the same in every viewer)
    #[arg(long, value_name = "PATH")]
    pub svg: Option<PathBuf>,
}

/// Which data, how much of it, and how to split it.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Data set: PMLB TSV/CSV (`target` column), Kaggle CSV (`label` column) or MNIST IDX images,
    /// plain or .gz [default: the 10,000 on-board MNIST digits]
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Use N rows drawn at random [default: all rows]
    #[arg(long, value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    pub sample: Option<usize>,
    /// Share of the rows held out for testing, between 0 and 1
    #[arg(long, default_value_t = 0.5, value_name = "F", value_parser = fraction, allow_negative_numbers = true)]
    pub test_fraction: f64,
    /// Seed for every random choice (sampling, split, initialisation, t-SNE, Shapley)
    #[arg(
        long,
        global = true,
        default_value_t = 0,
        value_name = "S",
        allow_negative_numbers = true
    )]
    pub seed: u64,
}

impl DataArgs {
    /// The data loader's options.
    pub fn options(&self) -> LoadOptions {
        LoadOptions {
            path: self.data.clone(),
            sample: self.sample,
            test_fraction: self.test_fraction,
            seed: self.seed,
        }
    }
}
