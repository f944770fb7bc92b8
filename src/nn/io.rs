//! Model files: `.npz` archives (NumPy's `savez` layout) holding `coefs_0`, `intercepts_0`,
//! `coefs_1`, ... with scikit-learn's attribute names, readable by `numpy.load`, and readable
//! here when scikit-learn wrote them (float64 or float32). The `.npy` and zip formats are
//! `ndarray-npy`'s; what is checked here is the model's own sense (names, shapes that chain,
//! finite values), each problem named with the file.
//!
//! Beside the arrays, layerscope writes a `meta.json` entry: the model's activations and, for a
//! trained model, the training options with scikit-learn's parameter names (`numpy.load` returns
//! it as bytes: `json.loads(np.load(path)["meta.json"])`). A file without it (an older
//! layerscope's, or a scikit-learn model saved by hand) is a ReLU network with a softmax output.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD, ArrayViewD, IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpyError, ReadNpzError};

use super::meta::{self, TrainingRecord};
use super::{Activation, Mlp};

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

/// Open the model file `path` and check that it classifies data of `n_features` columns into
/// `n_classes` classes: the one model-loading function of the front-ends. `.safetensors` and
/// `.onnx` files (by extension, any case) go to `nn::import`; anything else is read as an `.npz`
/// (`load_npz`). Every error names the file.
pub fn load_model(path: &Path, n_features: usize, n_classes: usize) -> anyhow::Result<Mlp> {
    // A folder of checkpoints (issue 12, branch film): its last one is the model.
    if path.is_dir() {
        return super::checkpoints::load_last_checkpoint(path, n_features, n_classes);
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mlp = match extension.as_deref() {
        Some("safetensors") => super::import::load_safetensors(path)?,
        Some("onnx") => super::import::load_onnx(path)?,
        _ => load_npz(path)?,
    };
    mlp.check_fits(n_features, n_classes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(mlp)
}

/// Write `mlp` to `out` as an `.npz` archive (NumPy's `savez` layout, uncompressed) of float32
/// arrays `coefs_0`, `intercepts_0`, `coefs_1`, ... and a `meta.json` entry with its
/// activations: what `numpy.load` and `load_npz` read.
///
/// Writes the whole archive to `out` or fails; the caller owns where the bytes go (a front-end
/// writes a file through its atomic-write helper, so a reader never sees half a file).
///
/// # Errors
/// When `out` fails.
pub fn write_model(mlp: &Mlp, out: &mut dyn Write) -> std::io::Result<()> {
    write_trained_model(mlp, None, out)
}

/// `write_model`, with how the model was trained (`training`) recorded in `meta.json` so that
/// the run can be repeated (`read_training` reads it back).
///
/// # Errors
/// When `out` fails.
pub fn write_trained_model(
    mlp: &Mlp,
    training: Option<&TrainingRecord>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut arrays = Vec::new();
    for (i, (c, b)) in mlp.coefs.iter().zip(&mlp.intercepts).enumerate() {
        arrays.push((format!("coefs_{i}"), c.view().into_dyn()));
        arrays.push((format!("intercepts_{i}"), b.view().into_dyn()));
    }
    let named: Vec<(&str, ArrayViewD<f32>)> =
        arrays.iter().map(|(n, a)| (n.as_str(), a.view())).collect();
    let npz = npz_bytes(&named)?;
    // The arrays' archive, with one more (stored) entry appended.
    let mut zip = zip::ZipWriter::new_append(Cursor::new(npz)).map_err(std::io::Error::other)?;
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(meta::ENTRY, options)
        .map_err(std::io::Error::other)?;
    zip.write_all(meta::to_json(mlp, training).as_bytes())?;
    let bytes = zip.finish().map_err(std::io::Error::other)?.into_inner();
    out.write_all(&bytes)?;
    out.flush()
}

/// Write float32 arrays `(name, values)` to `out` as an uncompressed `.npz` archive, through
/// `ndarray-npy` (the archive is built in memory, then written to `out` in one piece).
///
/// # Errors
/// When `out` fails.
pub fn write_npz(out: &mut dyn Write, arrays: &[(&str, ArrayViewD<f32>)]) -> std::io::Result<()> {
    let bytes = npz_bytes(arrays)?;
    out.write_all(&bytes)?;
    out.flush()
}

/// The `.npz` archive of these arrays, in memory.
fn npz_bytes(arrays: &[(&str, ArrayViewD<f32>)]) -> std::io::Result<Vec<u8>> {
    let mut npz = NpzWriter::new(Cursor::new(Vec::new()));
    for (name, values) in arrays {
        npz.add_array(*name, values)
            .map_err(std::io::Error::other)?;
    }
    Ok(npz.finish().map_err(std::io::Error::other)?.into_inner())
}

/// The raw `meta.json` entry of the archive at `path`, if it has one.
fn meta_entry(path: &Path) -> Result<Option<String>, ModelError> {
    let file = File::open(path).map_err(|e| ModelError::file(path, format!("cannot open: {e}")))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
        ModelError::file(
            path,
            format!("not a zip archive ({e}): expected an .npz file written by numpy.savez"),
        )
    })?;
    let mut entry = match zip.by_name(meta::ENTRY) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => {
            return Err(ModelError::file(
                path,
                format!("{}: cannot read it ({e})", meta::ENTRY),
            ));
        }
    };
    let mut text = String::new();
    entry.read_to_string(&mut text).map_err(|e| {
        ModelError::file(
            path,
            format!("{}: not UTF-8 text ({e}): expected JSON", meta::ENTRY),
        )
    })?;
    Ok(Some(text))
}

/// How the model in `path` (an `.npz`) was trained, as `write_trained_model` recorded it: `None`
/// for a file without a training record (written by `write_model`, an older layerscope, or
/// numpy by hand).
///
/// # Errors
/// When the file cannot be read, or its `meta.json` is malformed (the problem named).
pub fn read_training(path: &Path) -> Result<Option<TrainingRecord>, ModelError> {
    // Only layerscope's own .npz files carry a record (safetensors and ONNX files do not).
    if super::import::Format::of(path) != super::import::Format::Npz || path.is_dir() {
        return Ok(None);
    }
    match meta_entry(path)? {
        None => Ok(None),
        Some(text) => meta::parse(&text)
            .map(|m| m.training)
            .map_err(|e| ModelError::file(path, format!("{}: {e}", meta::ENTRY))),
    }
}

/// Load a model saved by `write_model`, or by NumPy's `savez` / `savez_compressed` from a
/// scikit-learn model (`coefs_0=m.coefs_[0], intercepts_0=m.intercepts_[0], ...`), float32 or
/// float64, C or Fortran order (read by `ndarray-npy`). Checks that the layers chain and the
/// values are finite.
pub fn load_npz(path: &Path) -> Result<Mlp, ModelError> {
    let file = File::open(path).map_err(|e| ModelError::file(path, format!("cannot open: {e}")))?;
    let mut npz = NpzReader::new(BufReader::new(file)).map_err(|e| {
        let e = match e {
            ReadNpzError::Zip(z) => z.to_string(),
            other => other.to_string(),
        };
        ModelError::file(
            path,
            format!("not a zip archive ({e}): expected an .npz file written by numpy.savez"),
        )
    })?;
    let names = npz
        .names()
        .map_err(|e| ModelError::file(path, format!("cannot list the arrays: {e}")))?;
    let mut coefs = Vec::new();
    let mut intercepts = Vec::new();
    for i in 0.. {
        let coef_name = format!("coefs_{i}");
        if !names.contains(&coef_name) {
            break;
        }
        let w = read_array(&mut npz, path, &coef_name)?;
        let bias_name = format!("intercepts_{i}");
        if !names.contains(&bias_name) {
            return Err(ModelError::file(
                path,
                format!("has coefs_{i} but no intercepts_{i}: expected one bias array per layer"),
            ));
        }
        let b = read_array(&mut npz, path, &bias_name)?;
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
    let (activation, softmax) = match meta_entry(path)? {
        None => (Activation::Relu, true),
        Some(text) => {
            let m = meta::parse(&text)
                .map_err(|e| ModelError::file(path, format!("{}: {e}", meta::ENTRY)))?;
            (m.activation, m.softmax)
        }
    };
    Ok(Mlp::from_layers(coefs, intercepts, activation, softmax))
}

/// Read array `name` of the archive as f32 in standard layout: float32 as stored, float64
/// rounded to the nearest float32 (scikit-learn's models are float64).
fn read_array<R: Read + Seek>(
    npz: &mut NpzReader<R>,
    path: &Path,
    name: &str,
) -> Result<ArrayD<f32>, ModelError> {
    let fail = |problem: String| ModelError::file(path, format!("{name}.npy: {problem}"));
    let array = match npz.by_name::<OwnedRepr<f32>, IxDyn>(name) {
        Ok(a) => a,
        Err(ReadNpzError::Npy(ReadNpyError::WrongDescriptor(_))) => {
            match npz.by_name::<OwnedRepr<f64>, IxDyn>(name) {
                Ok(a) => a.mapv(|v| v as f32),
                Err(e) => return Err(fail(npy_problem(e))),
            }
        }
        Err(e) => return Err(fail(npy_problem(e))),
    };
    if array.iter().any(|v| !v.is_finite()) {
        return Err(fail(
            "holds NaN or infinite values: expected finite weights".to_owned(),
        ));
    }
    Ok(array.as_standard_layout().into_owned())
}

/// What is wrong with an array entry, in the words of the model file's format.
fn npy_problem(e: ReadNpzError) -> String {
    match e {
        ReadNpzError::Npy(ReadNpyError::WrongDescriptor(descr)) => format!(
            "dtype {}: expected little-endian float32 (<f4) or float64 (<f8)",
            descr.to_string().trim_matches('\'')
        ),
        ReadNpzError::Npy(ReadNpyError::MissingData) => {
            "the data is cut short: expected as many values as its shape holds".to_owned()
        }
        ReadNpzError::Npy(ReadNpyError::ExtraBytes(n)) => {
            format!("{n} bytes beyond the values its shape holds: expected none")
        }
        ReadNpzError::Npy(ReadNpyError::ParseHeader(h)) => {
            format!("not an .npy array ({h}): expected NumPy's .npy header")
        }
        other => other.to_string(),
    }
}
