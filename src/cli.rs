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
}

/// Headless subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a summary of the data set: rows, features, classes, image shape, split sizes.
    Info,
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
