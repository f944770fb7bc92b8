//! explain (under construction).
