//! The original MNIST IDX files (LeCun's `train-images-idx3-ubyte` and `train-labels-idx1-ubyte`,
//! likewise `t10k-`), plain or gzip'd. Format: a magic number `0x0000 08 NN` (unsigned bytes, NN
//! dimensions), NN big-endian u32 sizes, then the data.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::{DataError, Dataset, io_error, open, read_all, text};

/// IDX's data-type codes (the magic number's third byte) and their names.
const IDX_TYPES: [(u8, &str); 6] = [
    (0x08, "unsigned bytes"),
    (0x09, "signed bytes"),
    (0x0b, "16-bit integers"),
    (0x0c, "32-bit integers"),
    (0x0d, "32-bit floats"),
    (0x0e, "64-bit floats"),
];

/// Whether a file's first bytes are an IDX magic number (of any data type): two zero bytes,
/// then a type code. No text table starts with a zero byte.
pub(super) fn looks_like_idx(head: &[u8]) -> bool {
    head.len() >= 3
        && head[0] == 0
        && head[1] == 0
        && IDX_TYPES.iter().any(|&(code, _)| code == head[2])
}

/// Whether a file is named as MNIST names its IDX files (`train-images-idx3-ubyte[.gz]`), so
/// that a wrong magic number is reported as such rather than read as text.
pub(super) fn named_like_idx(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let base = name.strip_suffix(".gz").unwrap_or(&name);
    base.contains("idx") && base.ends_with("ubyte")
}

/// The labels file that goes with an images file: `...-images-idx3-ubyte[.gz]` pairs with
/// `...-labels-idx1-ubyte[.gz]` in the same folder (plain or gzip'd either way).
fn labels_path_for(images: &Path) -> Result<PathBuf, DataError> {
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
        let holds = match IDX_TYPES
            .iter()
            .find(|&&(code, _)| magic[..2] == [0, 0] && code == magic[2])
        {
            Some((_, name)) if magic[2] != 0x08 => format!(" (it holds {name})"),
            _ => String::new(),
        };
        return Err(DataError::file(
            path,
            format!(
                "an IDX file with the wrong magic number 0x{}{holds}: expected {} ({what}, \
                 unsigned bytes)",
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

/// Read IDX images, then their labels from the file beside them.
pub(super) fn read_idx(mut images: Box<dyn BufRead>, path: &Path) -> Result<Dataset, DataError> {
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
    let total = n.checked_mul(n_features).ok_or_else(|| {
        DataError::file(
            path,
            format!("{n} images of {n_features} pixels: more than this machine can address"),
        )
    })?;

    let labels_path = &labels_path_for(path)?;
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

    // The header's sizes are not trusted with memory: reserve address space only (pages cost
    // memory when written), and fail plainly when even that is refused.
    let mut features: Vec<f32> = Vec::new();
    features.try_reserve_exact(total).map_err(|_| {
        DataError::file(
            path,
            format!("{n} images of {n_features} pixels do not fit in memory"),
        )
    })?;
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
    let (labels, class_names) = byte_classes(&label_bytes, labels_path)?;
    let features = Array2::from_shape_vec((n, n_features), features)
        .map_err(|e| DataError::file(path, format!("internal shape error: {e}")))?;
    Ok(Dataset {
        features,
        labels,
        class_names,
        feature_names: (0..n_features).map(|i| format!("pixel{i}")).collect(),
        image_shape: shape,
        source: path.display().to_string(),
        rows: (0..n).collect(),
    })
}

/// Class ids for label bytes: the distinct values in numeric order, named by their numbers.
pub(super) fn byte_classes(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, Vec<String>), DataError> {
    let mut present = [false; 256];
    for &b in bytes {
        present[usize::from(b)] = true;
    }
    let distinct: Vec<u8> = (0..=u8::MAX).filter(|&b| present[usize::from(b)]).collect();
    text::check_class_count(
        distinct.len(),
        distinct.first().map(u8::to_string).as_deref(),
        path,
    )?;
    let mut id = [0u8; 256];
    for (i, &b) in distinct.iter().enumerate() {
        // At most MAX_CLASSES (255) distinct values, checked above: every id fits a byte.
        id[usize::from(b)] = u8::try_from(i).unwrap_or(u8::MAX);
    }
    let labels = bytes.iter().map(|&b| id[usize::from(b)]).collect();
    Ok((labels, distinct.iter().map(u8::to_string).collect()))
}
