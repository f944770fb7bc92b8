//! layerscope: see what each layer of a neural network sees.
//!
//! The engines (`data`, `nn`, `tsne`, `explain`) are pure library code with no terminal in them;
//! `compute` runs them on a background thread, and `tui` and `headless` are thin layers on top.

pub mod cli;
pub mod compute;
pub mod data;
pub mod explain;
pub mod headless;
pub mod neighbours;
pub mod nn;
pub mod tsne;
pub mod tui;

/// A run stopped early because its cancel flag was raised (training, t-SNE, an explanation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;
