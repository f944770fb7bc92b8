//! The terminal app: state and key handling ([`app`], no I/O), the theme, widgets and tabs (pure
//! renders of the state), the event loop ([`run`]) that ties them to a terminal and the background
//! worker, and the terminal's lifecycle ([`terminal`]: setup, restore, signals).

pub mod app;
pub mod fixture;
pub mod render;
pub mod run;
pub mod snapshot;
pub mod svg;
pub mod tabs;
pub mod terminal;
pub mod theme;
pub mod widgets;

pub use app::{Action, App, Tab};
pub use run::run;
pub use snapshot::{build_app, render_snapshot};
