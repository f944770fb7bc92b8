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
/// The `S` key's SVG files (issue 16 item 5, branch import).
pub mod save_svg;
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
    // Issue 12 (branch film): `--model DIR` is a saved run, whose film is made from its
    // checkpoints; a single model file has no film.
    let (width, classes) = (
        session.split.train.n_features(),
        session.split.train.n_classes(),
    );
    let film_models = crate::headless::frames::film_models(model.model.as_deref(), width, classes)?;
    Ok(Config {
        film: model.model.is_none() || !film_models.is_empty(),
        film_models,
        hidden: model.hidden.clone(),
        max_epochs: model.epochs.unwrap_or(nn::DEFAULT_MAX_EPOCHS),
        perplexity: view.perplexity,
        embed_n: view.embed_n,
        seed: data.seed,
        train: crate::headless::train_params(model, data.seed),
        ..Config::new(session.split, session.model)
    })
}
