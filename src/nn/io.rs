//! Model files: `.npz` archives (NumPy's `savez` layout) holding `coefs_0`, `intercepts_0`,
//! `coefs_1`, ... with scikit-learn's attribute names, readable by `numpy.load`, and readable
//! here when scikit-learn wrote them (float64 or float32).

use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD, IxDyn};

use super::Mlp;

/// A model file that cannot be read or written, or a model that does not fit the data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Something about a particular file.
    #[error("{}: {problem}", path.display())]
    File {
        /// The model file.
        path: PathBuf,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// The model's input or output width differs from the data's.
    #[error(
        "the model takes {model_inputs} inputs and gives {model_classes} classes, but the data \
         has {data_features} features and {data_classes} classes: expected a model trained on \
         data of the same shape"
    )]
    Mismatch {
        /// The model's input width.
        model_inputs: usize,
        /// The model's output width.
        model_classes: usize,
        /// The data's feature count.
        data_features: usize,
        /// The data's class count.
        data_classes: usize,
    },
}

impl ModelError {
    fn file(path: &Path, problem: impl Into<String>) -> ModelError {
        ModelError::File {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

impl Mlp {
    /// Check that the model can classify data of `n_features` columns into `n_classes` classes.
    pub fn check_fits(&self, n_features: usize, n_classes: usize) -> Result<(), ModelError> {
        if self.n_inputs() == n_features && self.n_outputs() == n_classes {
            Ok(())
        } else {
            Err(ModelError::Mismatch {
                model_inputs: self.n_inputs(),
                model_classes: self.n_outputs(),
                data_features: n_features,
                data_classes: n_classes,
            })
        }
    }
}

/// Save `mlp` as `coefs_i` / `intercepts_i` float32 arrays in an `.npz` file. The file is written
/// beside its destination under a temporary name and renamed into place, so a reader never sees
/// half a file.
pub fn save_npz(mlp: &Mlp, path: &Path) -> Result<(), ModelError> {
    let mut arrays: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
    for (i, (c, b)) in mlp.coefs.iter().zip(&mlp.intercepts).enumerate() {
        let (c, b) = (
            c.as_slice().expect("weights in standard layout"),
            b.as_slice().expect("biases in standard layout"),
        );
        arrays.push((format!("coefs_{i}"), mlp.coefs[i].shape().to_vec(), c));
        arrays.push((format!("intercepts_{i}"), vec![b.len()], b));
    }
    let named: Vec<(&str, &[usize], &[f32])> = arrays
        .iter()
        .map(|(n, s, d)| (n.as_str(), s.as_slice(), *d))
        .collect();
    write_npz(path, &named)
}

/// Write float32 arrays `(name, shape, data in C order)` to an `.npz` file, atomically (a
/// temporary file in the same folder, then a rename).
pub fn write_npz(path: &Path, arrays: &[(&str, &[usize], &[f32])]) -> Result<(), ModelError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| ModelError::file(path, "expected a file name, not a folder"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_npz_to(&tmp, arrays).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| {
            ModelError::file(path, format!("cannot move the new file into place: {e}"))
        })
    });
    if result.is_err() {
        // Best effort: the temporary file may not exist.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_npz_to(tmp: &Path, arrays: &[(&str, &[usize], &[f32])]) -> Result<(), ModelError> {
    let io = |e: &dyn std::fmt::Display| ModelError::file(tmp, format!("cannot write: {e}"));
    let file = File::create(tmp).map_err(|e| io(&e))?;
    let mut inner = write_npz_into(BufWriter::new(file), arrays).map_err(|e| io(&e))?;
    inner.flush().map_err(|e| io(&e))?;
    inner
        .into_inner()
        .map_err(|e| io(&e.error().to_string()))?
        .sync_all()
        .map_err(|e| io(&e))?;
    Ok(())
}

// SHIM(cli): the npz writer over any seekable writer, so that the headless commands write a
// model through their one atomic-write helper (a temporary file, then a rename).
/// Save `mlp` as `save_npz` does, into `w`.
pub fn save_npz_into<W: Write + std::io::Seek>(mlp: &Mlp, w: W) -> std::io::Result<W> {
    let mut arrays: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
    for (i, (c, b)) in mlp.coefs.iter().zip(&mlp.intercepts).enumerate() {
        let (c, b) = (
            c.as_slice().expect("weights in standard layout"),
            b.as_slice().expect("biases in standard layout"),
        );
        arrays.push((format!("coefs_{i}"), mlp.coefs[i].shape().to_vec(), c));
        arrays.push((format!("intercepts_{i}"), vec![b.len()], b));
    }
    let named: Vec<(&str, &[usize], &[f32])> = arrays
        .iter()
        .map(|(n, s, d)| (n.as_str(), s.as_slice(), *d))
        .collect();
    write_npz_into(w, &named)
}

fn write_npz_into<W: Write + std::io::Seek>(
    w: W,
    arrays: &[(&str, &[usize], &[f32])],
) -> std::io::Result<W> {
    let mut zip = zip::ZipWriter::new(w);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(
            arrays
                .iter()
                .any(|(_, _, d)| d.len() * 4 > u32::MAX as usize / 2),
        );
    for (name, shape, data) in arrays {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape of {name}"
        );
        zip.start_file(format!("{name}.npy"), options)?;
        zip.write_all(&npy_header("<f4", shape))?;
        let mut bytes = Vec::with_capacity(data.len() * 4);
        for v in *data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        zip.write_all(&bytes)?;
    }
    Ok(zip.finish()?)
}

/// An `.npy` version 1.0 header: magic, version, length, then the dictionary padded with spaces
/// to a multiple of 64 bytes and ended by a newline (NumPy's `format.write_array_header_1_0`).
pub fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    let len = u16::try_from(dict.len()).expect("a short header");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Load a model saved by `save_npz`, or by NumPy's `savez` from a scikit-learn model
/// (`coefs_0=m.coefs_[0], intercepts_0=m.intercepts_[0], ...`), float32 or float64.
pub fn load_npz(path: &Path) -> Result<Mlp, ModelError> {
    let file = File::open(path).map_err(|e| ModelError::file(path, format!("cannot open: {e}")))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
        ModelError::file(
            path,
            format!("not a zip archive ({e}): expected an .npz file written by numpy.savez"),
        )
    })?;
    let mut coefs = Vec::new();
    let mut intercepts = Vec::new();
    for i in 0.. {
        let Some(w) = read_array(&mut zip, path, &format!("coefs_{i}"))? else {
            break;
        };
        let b = read_array(&mut zip, path, &format!("intercepts_{i}"))?.ok_or_else(|| {
            ModelError::file(
                path,
                format!("has coefs_{i} but no intercepts_{i}: expected one bias array per layer"),
            )
        })?;
        let w = w.into_dimensionality::<ndarray::Ix2>().map_err(|_| {
            ModelError::file(
                path,
                format!("coefs_{i} is not 2-D: expected (units in, units out)"),
            )
        })?;
        let b = b.into_dimensionality::<ndarray::Ix1>().map_err(|_| {
            ModelError::file(
                path,
                format!("intercepts_{i} is not 1-D: expected one bias per unit"),
            )
        })?;
        if b.len() != w.ncols() {
            return Err(ModelError::file(
                path,
                format!(
                    "intercepts_{i} has {} values but coefs_{i} has {} columns: expected equal",
                    b.len(),
                    w.ncols()
                ),
            ));
        }
        if let Some(prev) = coefs.last().map(Array2::<f32>::ncols)
            && prev != w.nrows()
        {
            return Err(ModelError::file(
                path,
                format!(
                    "shapes do not chain: coefs_{} has {prev} columns but coefs_{i} has {} rows",
                    i - 1,
                    w.nrows()
                ),
            ));
        }
        if w.is_empty() {
            return Err(ModelError::file(
                path,
                format!(
                    "coefs_{i} has shape {:?}: expected at least one unit in and out",
                    w.shape()
                ),
            ));
        }
        coefs.push(w);
        intercepts.push(b);
    }
    if coefs.is_empty() {
        let names: Vec<&str> = zip.file_names().collect();
        return Err(ModelError::file(
            path,
            format!(
                "no array coefs_0 (found: {}): expected coefs_0, intercepts_0, coefs_1, ... as \
                 scikit-learn names them",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    Ok(Mlp { coefs, intercepts })
}

/// Read array `name` (stored as `name.npy`) as f32, or None when the archive has no such entry.
fn read_array<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    path: &Path,
    name: &str,
) -> Result<Option<ArrayD<f32>>, ModelError> {
    let entry = format!("{name}.npy");
    let mut file = match zip.by_name(&entry) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => {
            return Err(ModelError::file(path, format!("cannot read {entry}: {e}")));
        }
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| ModelError::file(path, format!("cannot read {entry}: {e}")))?;
    parse_npy(&bytes)
        .map(Some)
        .map_err(|problem| ModelError::file(path, format!("{entry}: {problem}")))
}

/// Parse an `.npy` file holding little-endian float32 (`<f4`) or float64 (`<f8`) values.
fn parse_npy(bytes: &[u8]) -> Result<ArrayD<f32>, String> {
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        return Err("not an .npy array: expected the \\x93NUMPY magic".to_owned());
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("npy version {v}: expected 1, 2 or 3")),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or("the header is cut short")?;
    let header = std::str::from_utf8(header).map_err(|_| "the header is not text".to_owned())?;
    let descr = dict_value(header, "descr").ok_or("no 'descr' in the header")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(header, "fortran_order").ok_or("no 'fortran_order' in the header")?;
    let shape_text = dict_value(header, "shape").ok_or("no 'shape' in the header")?;
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("shape {shape_text}: expected a tuple of sizes"))?;
    let count: usize = shape.iter().product();
    let data = &bytes[start + header_len..];
    let values: Vec<f32> = match descr {
        "<f4" | "f4" => {
            check_len(data.len(), count, 4)?;
            data.chunks_exact(4)
                .take(count)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }
        "<f8" | "f8" => {
            check_len(data.len(), count, 8)?;
            #[expect(clippy::cast_possible_truncation)]
            data.chunks_exact(8)
                .take(count)
                .map(|b| {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect()
        }
        other => {
            return Err(format!(
                "dtype {other}: expected little-endian float32 (<f4) or float64 (<f8)"
            ));
        }
    };
    let array = if fortran.trim() == "True" {
        let reversed: Vec<usize> = shape.iter().rev().copied().collect();
        ArrayD::from_shape_vec(IxDyn(&reversed), values)
            .map_err(|e| e.to_string())?
            .reversed_axes()
            .as_standard_layout()
            .into_owned()
    } else {
        ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| e.to_string())?
    };
    if array.iter().any(|v| !v.is_finite()) {
        return Err("holds NaN or infinite values: expected finite weights".to_owned());
    }
    Ok(array)
}

fn check_len(have: usize, count: usize, width: usize) -> Result<(), String> {
    if have < count * width {
        Err(format!(
            "holds {have} bytes of data: expected {} for its shape",
            count * width
        ))
    } else {
        Ok(())
    }
}

/// The text after `'key':` in an npy header dictionary, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?;
    let rest = rest.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_64() {
        let h = npy_header("<f4", &[784, 512]);
        assert_eq!(h.len() % 64, 0);
        assert_eq!(*h.last().unwrap(), b'\n');
        let h1 = npy_header("<f4", &[7]);
        assert!(String::from_utf8_lossy(&h1).contains("'shape': (7,)"));
    }

    #[test]
    fn parses_f8_and_fortran_order() {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let dict = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
        let mut d = dict.to_owned();
        let pad = (10 + d.len() + 1).next_multiple_of(64) - (10 + d.len() + 1);
        d.push_str(&" ".repeat(pad));
        d.push('\n');
        bytes.extend_from_slice(&u16::try_from(d.len()).unwrap().to_le_bytes());
        bytes.extend_from_slice(d.as_bytes());
        // Column-major [[1, 2, 3], [4, 5, 6]].
        for v in [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let a = parse_npy(&bytes).unwrap();
        assert_eq!(
            a.into_dimensionality::<ndarray::Ix2>().unwrap(),
            ndarray::arr2(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]])
        );
    }

    #[test]
    fn rejects_other_dtypes() {
        let mut bytes = npy_header("<i8", &[1]);
        bytes.extend_from_slice(&1i64.to_le_bytes());
        let e = parse_npy(&bytes).unwrap_err();
        assert!(e.contains("<i8") && e.contains("<f4"), "{e}");
    }
}
