//! Widgets drawn by reference from state: braille scatter, half-block heatmap with its legend,
//! probability bars and the confusion grid.

pub mod bars;
pub mod confusion;
pub mod heatmap;
pub mod scatter;
pub mod separation;
pub mod thumbnail;
pub mod timeline;

pub use bars::ProbabilityBars;
pub use confusion::ConfusionGrid;
pub use heatmap::{Heatmap, Legend, Scale};
pub use scatter::Scatter;
