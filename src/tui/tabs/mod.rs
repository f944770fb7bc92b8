//! One module per tab, each a pure render of the [`App`](super::App) state.

pub mod embeddings;
pub mod saliency;
pub mod training;
