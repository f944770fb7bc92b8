//! One module per tab, each one room: its state, its key table, its update and its render
//! (ratatui's demo2: `tabs/recipe.rs` holds `RecipeTab` and its `Widget`).

pub mod embeddings;
pub mod errors;
pub mod film;
pub mod neighbours;
pub mod points;
pub mod saliency;
pub mod training;
