//! compute (under construction).
