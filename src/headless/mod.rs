//! Headless subcommands for servers and batch jobs: the same engines, progress on stderr,
//! files out.

use std::fmt::Write as _;

use crate::cli::DataArgs;
use crate::data::Dataset;

/// `layerscope info`: a summary of the data set.
pub fn info(args: &DataArgs) -> anyhow::Result<()> {
    let (data, split) = args.load()?;
    print!(
        "{}",
        summary(&data, split.train.n_rows(), split.test.n_rows())
    );
    Ok(())
}

/// The text `info` prints.
pub fn summary(data: &Dataset, n_train: usize, n_test: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "data:      {}", data.source);
    let _ = writeln!(s, "rows:      {}", data.n_rows());
    let _ = writeln!(s, "features:  {}", data.n_features());
    let _ = match data.image_shape {
        Some((h, w)) => writeln!(s, "image:     {h} x {w}"),
        None => writeln!(
            s,
            "image:     none (the feature count is not a perfect square)"
        ),
    };
    let _ = writeln!(s, "classes:   {}", data.n_classes());
    for (name, count) in data.class_names.iter().zip(data.class_counts()) {
        let _ = writeln!(s, "  {name:>8}  {count}");
    }
    let _ = writeln!(s, "split:     {n_train} train, {n_test} test");
    s
}
