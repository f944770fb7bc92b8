//! headless (under construction).
