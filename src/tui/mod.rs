//! tui (under construction).
