//! The terminal app: the app state and dispatch ([`app`], no I/O), one module per tab with its
//! state, key table, update and render ([`tabs`]), the key tables' plumbing ([`keys`]), the
//! theme and widgets, the event loop ([`run`]) that ties them to a terminal and the background
//! worker, and the terminal's lifecycle ([`terminal`]: setup, restore, signals).

pub mod app;
pub mod cvd;
#[cfg(feature = "test-support")]
pub mod fixture;
pub mod keys;
pub mod query;
pub mod render;
pub mod run;
pub mod snapshot;
pub mod svg;
pub mod tabs;
pub mod terminal;
pub mod theme;
pub mod widgets;

use crate::cli::{DataArgs, ModelArgs, ViewArgs};
use crate::compute::Config;
use crate::nn;

pub use app::{Action, App, Tab};
pub use run::run;
pub use snapshot::{build_app, render_snapshot};

/// The worker's configuration from the command line: the data loaded and split, the model (when
/// `--model` is given) opened and checked against it, the t-SNE settings checked. Called before
/// the terminal is taken over, so that any error is printed plainly.
///
/// # Errors
/// When the data or the model cannot be loaded, or the model does not fit the data.
pub fn config(data: &DataArgs, model: &ModelArgs, view: &ViewArgs) -> anyhow::Result<Config> {
    let session = crate::headless::preflight(data, model, view)?;
    Ok(Config {
        hidden: model.hidden.clone(),
        max_epochs: model.epochs.unwrap_or(nn::DEFAULT_MAX_EPOCHS),
        perplexity: view.perplexity,
        embed_n: view.embed_n,
        seed: data.seed,
        ..Config::new(session.split, session.model)
    })
}
