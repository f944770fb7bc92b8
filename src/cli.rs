//! Command-line arguments, shared by the terminal app and the headless subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::data::{self, Dataset, Split};

/// See what each layer of a neural network sees: an MLP on MNIST, a t-SNE of every layer and
/// Shapley saliency maps, in the terminal.
#[derive(Debug, Parser)]
#[command(name = "layerscope", version, about, long_about = None)]
pub struct Cli {
    /// What to do; with none, the terminal app opens.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Data and split options.
    #[command(flatten)]
    pub data: DataArgs,
    /// Model options (training, or a saved model).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Terminal options.
    #[command(flatten)]
    pub view: ViewArgs,
}

/// Headless subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a summary of the data set: rows, features, classes, image shape, split sizes.
    Info,
    /// Train the network; one line per epoch on stderr; save the model as .npz.
    Train(TrainArgs),
    /// Embed layer activations with t-SNE; write `index,layer,x,y,label,prediction` as CSV.
    Embed(EmbedArgs),
    /// Explain one image's prediction (saliency); write `row,col,value,stderr` as CSV.
    Explain(ExplainArgs),
    /// Run the pipeline, then print one frame of a tab as text (or ANSI colours).
    Snapshot(SnapshotArgs),
}

/// How to get a model: train one (`--hidden`, `--epochs`) or open a saved one (`--model`).
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Hidden layer sizes, comma-separated
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "512,256",
        value_name = "N,N"
    )]
    pub hidden: Vec<usize>,
    /// At most this many training epochs [default: 200, scikit-learn's max_iter]
    #[arg(long, global = true, value_name = "N")]
    pub epochs: Option<usize>,
    /// A saved model (.npz with coefs_0, intercepts_0, ...) to explore instead of training
    #[arg(long, global = true, value_name = "PATH")]
    pub model: Option<PathBuf>,
}

/// Options of the terminal app.
#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// No braille or colour: digit glyphs for the scatter, shade characters for heatmaps
    #[arg(long, global = true)]
    pub ascii: bool,
    /// t-SNE perplexity (the notebook's 3)
    #[arg(long, global = true, default_value_t = 3.0, value_name = "P")]
    pub perplexity: f64,
    /// Training images embedded with t-SNE per layer
    #[arg(long = "n", global = true, default_value_t = 1500, value_name = "N")]
    pub embed_n: usize,
}

/// `layerscope train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Where to save the trained model (.npz)
    #[arg(long, value_name = "PATH")]
    pub save: PathBuf,
    /// Also write one row of metrics per epoch (CSV)
    #[arg(long, value_name = "PATH")]
    pub metrics: Option<PathBuf>,
}

/// `layerscope embed`.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// Layers to embed, in the notebook's numbering (1 = input pixels) [default: 2..=n_layers]
    #[arg(long, value_delimiter = ',', value_name = "K,K")]
    pub layers: Vec<usize>,
    /// Where to write the embedding (CSV)
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
}

/// `layerscope explain`.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// Row of the test split to explain
    #[arg(long, default_value_t = 0, value_name = "I")]
    pub index: usize,
    /// Class to explain [default: the predicted one]
    #[arg(long, value_name = "C")]
    pub class: Option<usize>,
    /// Method: notebook, permutation, gradient-x-input, integrated-gradients
    #[arg(long, default_value = "permutation", value_name = "M")]
    pub method: String,
    /// Samples (notebook: iterations per pixel; permutation: permutations; IG: steps)
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub samples: usize,
    /// Explain in logits instead of probabilities
    #[arg(long)]
    pub logits: bool,
    /// Where to write the saliency map (CSV)
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
}

/// `layerscope snapshot`.
#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    /// Which tab: training, embeddings or saliency
    #[arg(long, default_value = "training", value_name = "TAB")]
    pub tab: String,
    /// Frame width in cells
    #[arg(long, default_value_t = 120)]
    pub width: u16,
    /// Frame height in cells
    #[arg(long, default_value_t = 40)]
    pub height: u16,
    /// Keep colours as ANSI escape codes
    #[arg(long)]
    pub ansi: bool,
}

/// Which data, how much of it, and how to split it.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Data set: PMLB TSV/CSV (`target` column), Kaggle CSV (`label` column) or MNIST IDX images,
    /// plain or .gz [default: the 10,000 on-board MNIST digits]
    #[arg(long, global = true, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Use N rows drawn at random [default: all rows]
    #[arg(long, global = true, value_name = "N")]
    pub sample: Option<usize>,
    /// Share of the rows held out for testing
    #[arg(long, global = true, default_value_t = 0.5, value_name = "F")]
    pub test_fraction: f64,
    /// Seed for every random choice (sampling, split, initialisation, t-SNE, Shapley)
    #[arg(long, global = true, default_value_t = 0, value_name = "S")]
    pub seed: u64,
}

impl DataArgs {
    /// Load the data set, sample it, scale it to [0, 1] and split it, as these options say.
    pub fn load(&self) -> anyhow::Result<(Dataset, Split)> {
        let full = data::load_or_onboard(self.data.as_ref())?.into_unit_scale();
        let sampled = match self.sample {
            Some(n) => full.sample(n, self.seed).map_err(anyhow::Error::msg)?,
            None => full,
        };
        let split = sampled
            .split(self.test_fraction, self.seed)
            .map_err(anyhow::Error::msg)?;
        Ok((sampled, split))
    }
}
