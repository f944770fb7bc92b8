//! tsne (under construction).
