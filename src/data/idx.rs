//! The original MNIST IDX files (LeCun's `train-images-idx3-ubyte` and `train-labels-idx1-ubyte`,
//! likewise `t10k-`), plain or gzip'd. Format: a magic number `0x0000 08 NN` (unsigned bytes, NN
//! dimensions), NN big-endian u32 sizes, then the data.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::{DataError, Dataset, io_error, open, read_all, text};

/// Whether a file's first bytes are an IDX magic number of unsigned bytes.
pub(super) fn looks_like_idx(head: &[u8]) -> bool {
    head.len() >= 4 && head[0] == 0 && head[1] == 0 && head[2] == 0x08 && (1..=4).contains(&head[3])
}

/// The labels file that goes with an images file: `...-images-idx3-ubyte[.gz]` pairs with
/// `...-labels-idx1-ubyte[.gz]` in the same folder (plain or gzip'd either way).
pub(super) fn labels_path_for(images: &Path) -> Result<PathBuf, DataError> {
    let name = images
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let base = name.strip_suffix(".gz").unwrap_or(name);
    let labels = base.replace("images", "labels").replace("idx3", "idx1");
    if labels == base {
        return Err(DataError::file(
            images,
            "an IDX file whose name has no `images`/`idx3` part: expected MNIST's naming \
             (train-images-idx3-ubyte[.gz]) so that its labels file can be found beside it",
        ));
    }
    let dir = images.parent().unwrap_or(Path::new(""));
    let candidates = [dir.join(&labels), dir.join(format!("{labels}.gz"))];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            DataError::file(
                images,
                format!(
                    "no labels file beside it: expected {} or {}",
                    candidates[0].display(),
                    candidates[1].display()
                ),
            )
        })
}

/// Read the header of an IDX stream: its dimension sizes, after checking the magic number.
fn read_header(
    reader: &mut dyn Read,
    path: &Path,
    want_dims: &[u8],
    what: &str,
) -> Result<Vec<usize>, DataError> {
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|e| io_error(path, &e))?;
    if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || !want_dims.contains(&magic[3]) {
        let expected: Vec<String> = want_dims
            .iter()
            .map(|d| format!("0x000008{d:02x}"))
            .collect();
        return Err(DataError::file(
            path,
            format!(
                "wrong magic number 0x{}: expected {} ({what}, unsigned bytes)",
                magic.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                expected.join(" or ")
            ),
        ));
    }
    let mut dims = Vec::with_capacity(usize::from(magic[3]));
    for _ in 0..magic[3] {
        let mut size = [0u8; 4];
        reader
            .read_exact(&mut size)
            .map_err(|e| io_error(path, &e))?;
        dims.push(u32::from_be_bytes(size) as usize);
    }
    Ok(dims)
}

/// Read IDX images and their labels.
pub(super) fn read_idx(
    mut images: Box<dyn BufRead>,
    path: &Path,
    labels_path: &Path,
) -> Result<Dataset, DataError> {
    let dims = read_header(&mut images, path, &[2, 3], "images")?;
    let (n, shape) = match dims[..] {
        [n, h, w] => (n, Some((h, w))),
        [n, f] => (n, super::square_image_shape(f)),
        _ => unreachable!("read_header checked the dimension count"),
    };
    let n_features: usize = dims[1..].iter().product();
    if n == 0 || n_features == 0 {
        return Err(DataError::file(
            path,
            "no images in the file: expected at least one",
        ));
    }

    let mut label_reader = open(labels_path)?;
    let label_dims = read_header(&mut label_reader, labels_path, &[1], "labels")?;
    if label_dims[0] != n {
        return Err(DataError::file(
            labels_path,
            format!(
                "{} labels, but {} holds {n} images: expected one label per image",
                label_dims[0],
                path.display()
            ),
        ));
    }
    let label_bytes = read_all(label_reader.take(n as u64), labels_path)?;
    if label_bytes.len() < n {
        return Err(DataError::record(
            labels_path,
            label_bytes.len() as u64 + 1,
            format!("the file ends early: expected {n} labels"),
        ));
    }

    let mut features = Vec::with_capacity(n * n_features);
    let mut row = vec![0u8; n_features];
    for record in 0..n {
        if let Err(e) = images.read_exact(&mut row) {
            let message = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                format!("the file ends early: expected {n} images of {n_features} bytes")
            } else {
                super::describe_io(&e)
            };
            return Err(DataError::record(path, record as u64 + 1, message));
        }
        features.extend(row.iter().map(|&b| f32::from(b)));
    }
    let raw: Vec<Box<str>> = label_bytes
        .iter()
        .map(|b| b.to_string().into_boxed_str())
        .collect();
    let (labels, class_names) = text::classes(&raw, labels_path)?;
    let features = Array2::from_shape_vec((n, n_features), features)
        .map_err(|e| DataError::file(path, format!("internal shape error: {e}")))?;
    Ok(Dataset {
        features,
        labels,
        class_names,
        feature_names: (0..n_features).map(|i| format!("pixel{i}")).collect(),
        image_shape: shape,
        source: path.display().to_string(),
    })
}
