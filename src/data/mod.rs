//! Data sets: the formats users bring (PMLB TSV/CSV, Kaggle-style CSV, MNIST IDX, each plain or
//! gzip'd), the 10,000 on-board MNIST digits, sampling and the train/test split.
//!
//! Front-ends ask for data through [`LoadOptions::load`], which returns a [`Split`] and nothing
//! else: the data set is split in place, so a load never holds it twice.

mod error;
mod gzip;
mod idx;
mod onboard;
mod split;
mod text;

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};

pub use error::{DataError, Location};
pub use onboard::{ONBOARD, ONBOARD_NAME, load_onboard, load_onboard_unit_scale};

/// The most classes a data set may have: labels are stored as one byte.
pub const MAX_CLASSES: usize = 255;

/// The smallest side of a square image: fewer pixels than 8 x 8 are not shown as an image
/// (iris's 4 features make a 2 x 2 square, but they are not pixels).
pub const MIN_IMAGE_SIDE: usize = 8;

/// A labelled data set: one row per example, features as read (not yet scaled).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Rows x features.
    pub features: Array2<f32>,
    /// Class id of each row, an index into `class_names`.
    pub labels: Vec<u8>,
    /// Name of each class, in class-id order (integers in numeric order, text sorted). Names are
    /// data: show them through [`display_name`].
    pub class_names: Vec<String>,
    /// Name of each feature column (data too: show them through [`display_name`]).
    pub feature_names: Vec<String>,
    /// Image height x width when the features are pixels (see [`Dataset::image_shape_reason`]).
    pub image_shape: Option<(usize, usize)>,
    /// Where the data came from, for messages.
    pub source: String,
    /// Each row's 0-based row in its source file, as pandas numbers the data rows after the
    /// header (blank lines skipped); for IDX files and the on-board digits, the image index.
    /// Sampling, [`Dataset::select`] and the split carry it along, so a table written from any
    /// part joins back to the user's file.
    pub rows: Vec<usize>,
}

/// The two parts of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The rows the model learns from; the first of them are the embedded sample.
    Train,
    /// The held-out rows.
    Test,
}

impl Part {
    /// The part's name in messages: `train` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Test => "test",
        }
    }
}

/// Training and test parts of a data set.
///
/// **Embedded point i is training row i**: the t-SNE views embed the first `n` rows of `train`
/// (shuffled at the split, so they are a random sample), in order. [`Split::embedded`] is the one
/// place of that rule; a point picked in an embedding is `(Part::Train, i)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The rows the model learns from.
    pub train: Dataset,
    /// The held-out rows.
    pub test: Dataset,
}

impl Split {
    /// The training rows that `n` embedded points stand for: `0..n`, at most every training row.
    pub fn embedded(&self, n: usize) -> Range<usize> {
        0..n.min(self.train.n_rows())
    }

    /// One part of the split.
    pub fn part(&self, part: Part) -> &Dataset {
        match part {
            Part::Train => &self.train,
            Part::Test => &self.test,
        }
    }

    /// Rows in both parts (the loaded rows, after sampling).
    pub fn n_rows(&self) -> usize {
        self.train.n_rows() + self.test.n_rows()
    }

    /// Features per row.
    pub fn n_features(&self) -> usize {
        self.train.n_features()
    }

    /// Number of classes (of the whole data set, whether or not each part holds every class).
    pub fn n_classes(&self) -> usize {
        self.train.n_classes()
    }

    /// Class names, in class-id order.
    pub fn class_names(&self) -> &[String] {
        &self.train.class_names
    }

    /// Rows per class over both parts, in class-id order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = self.train.class_counts();
        for (c, n) in counts.iter_mut().zip(self.test.class_counts()) {
            *c += n;
        }
        counts
    }

    /// Image height x width, when the features are pixels.
    pub fn image_shape(&self) -> Option<(usize, usize)> {
        self.train.image_shape
    }

    /// Where the data came from.
    pub fn source(&self) -> &str {
        &self.train.source
    }

    /// Whether a model can be trained on the training part: a classifier learns from at least
    /// two classes (a split of few rows can leave one). Call it before training, not before
    /// exploring a saved model.
    pub fn check_trainable(&self) -> Result<(), String> {
        let present = self.train.class_counts().iter().filter(|&&n| n > 0).count();
        if present < 2 {
            return Err(format!(
                "the training part ({} of {}) holds one class only: a classifier needs at least \
                 two; use more rows or a smaller test fraction",
                count(self.train.n_rows(), "row"),
                self.source()
            ));
        }
        Ok(())
    }
}

/// Which data, how much of it, and how to split it: what every front-end asks `data` for.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// A data file; `None` is the on-board digits.
    pub path: Option<PathBuf>,
    /// Use this many rows drawn at random; `None` is every row.
    pub sample: Option<usize>,
    /// Share of the rows held out for testing, in (0, 1).
    pub test_fraction: f64,
    /// Seed of the sampling and the split.
    pub seed: u64,
}

impl Default for LoadOptions {
    /// The on-board digits, every row, half held out, seed 0.
    fn default() -> Self {
        LoadOptions {
            path: None,
            sample: None,
            test_fraction: 0.5,
            seed: 0,
        }
    }
}

impl LoadOptions {
    /// Options from their four values.
    pub fn new(
        path: Option<PathBuf>,
        sample: Option<usize>,
        test_fraction: f64,
        seed: u64,
    ) -> Self {
        LoadOptions {
            path,
            sample,
            test_fraction,
            seed,
        }
    }

    /// Check the options that need no data: the test fraction and a sample of at least one row.
    pub fn validate(&self) -> Result<(), String> {
        check_test_fraction(self.test_fraction)?;
        if self.sample == Some(0) {
            return Err("a sample of 0 rows: expected at least 1".to_owned());
        }
        Ok(())
    }

    /// Load the data set, sample it, scale it to [0, 1] and split it, as these options say. The
    /// options are checked before the file is read; the sample size against the rows read.
    pub fn load(&self) -> anyhow::Result<Split> {
        self.validate().map_err(anyhow::Error::msg)?;
        // The on-board digits come scaled from their decoder (the same values, one pass).
        let data = match self.path.as_ref() {
            Some(path) => load(path)?.into_unit_scale(),
            None => load_onboard_unit_scale()?,
        };
        if let Some(n) = self.sample {
            check_sample(n, &data).map_err(anyhow::Error::msg)?;
        }
        let split = data
            .into_split(self.sample, self.test_fraction, self.seed)
            .map_err(anyhow::Error::msg)?;
        Ok(split)
    }
}

fn check_test_fraction(test_fraction: f64) -> Result<(), String> {
    if test_fraction > 0.0 && test_fraction < 1.0 {
        Ok(())
    } else {
        Err(format!(
            "test fraction {test_fraction}: expected a number between 0 and 1 (both excluded)"
        ))
    }
}

fn check_sample(n: usize, data: &Dataset) -> Result<(), String> {
    if n == 0 || n > data.n_rows() {
        return Err(format!(
            "a sample of {n} rows: expected 1 to {} (the rows of {})",
            data.n_rows(),
            data.source
        ));
    }
    Ok(())
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
            rows: indices.iter().map(|&i| self.rows[i]).collect(),
        }
    }

    /// `n` rows drawn at random without replacement (all rows, shuffled, when `n` is the row count).
    pub fn sample(&self, n: usize, seed: u64) -> Result<Dataset, String> {
        check_sample(n, self)?;
        Ok(self.select(&split::sample_order(self.n_rows(), n, seed)))
    }

    /// A random train/test split as scikit-learn's `train_test_split` sizes it: the test part has
    /// `ceil(test_fraction * n)` rows; both parts keep at least one row.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<Split, String> {
        self.clone().into_split(None, test_fraction, seed)
    }

    /// `self.sample(n, seed)?.split(test_fraction, seed)` (or the split alone when `sample` is
    /// `None`), the same rows in the same order, done in place: the rows are permuted inside the
    /// one feature matrix and the test part moved out of its end, so the data is never held twice.
    pub fn into_split(
        self,
        sample: Option<usize>,
        test_fraction: f64,
        seed: u64,
    ) -> Result<Split, String> {
        check_test_fraction(test_fraction)?;
        if let Some(n) = sample {
            check_sample(n, &self)?;
        }
        split::into_split(self, sample, test_fraction, seed)
    }

    /// The same data with every feature mapped to [0, 1] by the data set's overall minimum and
    /// maximum (pixel bytes 0..=255 become byte / 255). A constant data set maps to 0.
    pub fn into_unit_scale(mut self) -> Dataset {
        // Comparisons rather than f32::min/max (whose NaN rule keeps them scalar): the loaders
        // admit finite values only, and this form vectorises.
        // Over the slice, in blocks of 8 independent minima and maxima (ndarray's element
        // iterator over a matrix does not vectorise: a third of `layerscope info`'s CPU time).
        let fold = |values: &[f32]| {
            let (mut lo, mut hi) = ([f32::INFINITY; 8], [f32::NEG_INFINITY; 8]);
            let mut blocks = values.chunks_exact(8);
            for b in &mut blocks {
                for j in 0..8 {
                    let v = b[j];
                    lo[j] = if v < lo[j] { v } else { lo[j] };
                    hi[j] = if v > hi[j] { v } else { hi[j] };
                }
            }
            for (j, &v) in blocks.remainder().iter().enumerate() {
                lo[j] = if v < lo[j] { v } else { lo[j] };
                hi[j] = if v > hi[j] { v } else { hi[j] };
            }
            let lo = lo
                .iter()
                .fold(f32::INFINITY, |a, &v| if v < a { v } else { a });
            let hi = hi
                .iter()
                .fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a });
            (lo, hi)
        };
        let (lo, hi) = match self.features.as_slice_memory_order() {
            Some(values) => fold(values),
            None => fold(&self.features.iter().copied().collect::<Vec<f32>>()),
        };
        if lo.is_finite() && hi > lo {
            let span = hi - lo;
            match self.features.as_slice_memory_order_mut() {
                Some(values) => values.iter_mut().for_each(|v| *v = (*v - lo) / span),
                None => self.features.mapv_inplace(|v| (v - lo) / span),
            }
        } else {
            self.features.fill(0.0);
        }
        self
    }

    /// The same data shown as `height` x `width` images (an explicit shape, such as a
    /// `--image WxH` option gives); the two must multiply to the feature count.
    pub fn with_image_shape(mut self, height: usize, width: usize) -> Result<Dataset, String> {
        if height == 0 || width == 0 || height.checked_mul(width) != Some(self.n_features()) {
            return Err(format!(
                "an image of {height} x {width} pixels: expected the {} features of {} \
                 (height x width = {})",
                self.n_features(),
                self.source,
                self.n_features()
            ));
        }
        self.image_shape = Some((height, width));
        Ok(self)
    }

    /// Why the data set has, or has not, an image shape: one line for `info`.
    pub fn image_shape_reason(&self) -> String {
        let n = self.n_features();
        let square = square_side(n);
        match (self.image_shape, square) {
            (Some((h, w)), Some(side)) if h == side && w == side && side >= MIN_IMAGE_SIDE => {
                format!(
                    "{h} x {w}: the {n} features are a square of side {side} (at least \
                     {MIN_IMAGE_SIDE})"
                )
            }
            (Some((h, w)), _) => format!("{h} x {w}: the shape given with the data"),
            (None, Some(side)) => format!(
                "none: the {n} features make a {side} x {side} square, smaller than \
                 {MIN_IMAGE_SIDE} x {MIN_IMAGE_SIDE}, so they are not taken for pixels"
            ),
            (None, None) => format!("none: {n} features are not a square number of pixels"),
        }
    }
}

fn square_side(n_features: usize) -> Option<usize> {
    let side = n_features.isqrt();
    (n_features > 0 && side * side == n_features).then_some(side)
}

/// The image shape of `n_features` pixels by the rule for data that gives none: side x side when
/// it is a perfect square with a side of at least [`MIN_IMAGE_SIDE`].
pub fn square_image_shape(n_features: usize) -> Option<(usize, usize)> {
    square_side(n_features)
        .filter(|&side| side >= MIN_IMAGE_SIDE)
        .map(|side| (side, side))
}

/// A name taken from data (a class or a feature) made safe to print: control characters
/// (C0, DEL, C1) and the bidirectional overrides are escaped as `\u{..}`, so a label cannot move
/// the cursor, change colours or reorder the text around it. Borrowed when nothing needs escaping.
pub fn display_name(name: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !name.chars().any(unsafe_char) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
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
    if idx::looks_like_idx(head) || idx::named_like_idx(path) {
        return idx::read_idx(reader, path);
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
            gzip::Members::new(raw),
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
    if let Some(trailing) = e
        .get_ref()
        .and_then(|e| e.downcast_ref::<gzip::TrailingBytes>())
    {
        return trailing.to_string();
    }
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

/// "1 column", "2 columns": a count with its noun.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_shapes() {
        assert_eq!(square_image_shape(784), Some((28, 28)));
        assert_eq!(square_image_shape(64), Some((8, 8)));
        assert_eq!(square_image_shape(49), None, "7 x 7 is below the side of 8");
        assert_eq!(square_image_shape(4), None);
        assert_eq!(square_image_shape(10), None);
        assert_eq!(square_image_shape(0), None);
    }

    #[test]
    fn display_name_escapes_controls_only() {
        assert!(matches!(display_name("setosa"), Cow::Borrowed("setosa")));
        assert_eq!(display_name("café 7"), "café 7");
        assert_eq!(display_name("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(display_name("x\ty\u{7f}\u{9b}"), "x\\u{9}y\\u{7f}\\u{9b}");
        assert_eq!(display_name("\u{202e}cba"), "\\u{202e}cba");
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
