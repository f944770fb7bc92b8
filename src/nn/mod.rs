//! nn (under construction).
