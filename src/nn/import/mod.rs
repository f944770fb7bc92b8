//! Networks trained elsewhere: PyTorch `state_dict`s saved as `.safetensors` and ONNX graphs
//! (`torch.onnx.export`, skl2onnx's `MLPClassifier`), read into the same [`Mlp`] that layerscope
//! trains. Both readers check what the file says against what an MLP is (layers whose shapes
//! chain, one hidden activation, a softmax or nothing at the output, finite weights) and name the
//! tensors or graph nodes that do not fit.

mod onnx;
mod proto;
mod safetensors;

pub use crate::nn::Activation;
pub use onnx::read_onnx;
pub use safetensors::read_safetensors;

use std::path::Path;

use ndarray::{Array1, Array2};

use super::{Mlp, ModelError};

/// A network as a file describes it, before it becomes an [`Mlp`]: weights laid out as
/// scikit-learn's (`coefs[i]` is fan_in x fan_out), the hidden layers' activation and whether
/// the output applies a softmax.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Weight matrices, units in x units out.
    pub coefs: Vec<Array2<f32>>,
    /// Bias vectors, one value per unit out.
    pub intercepts: Vec<Array1<f32>>,
    /// The hidden layers' activation.
    pub activation: Activation,
    /// Whether the output layer applies a softmax (false: raw scores).
    pub softmax: bool,
}

impl Network {
    /// The network as layerscope computes it.
    pub fn into_mlp(self) -> Mlp {
        Mlp::from_layers(self.coefs, self.intercepts, self.activation, self.softmax)
    }

    /// Units per layer, input first.
    pub fn layer_sizes(&self) -> Vec<usize> {
        let mut sizes: Vec<usize> = self.coefs.first().map(Array2::nrows).into_iter().collect();
        sizes.extend(self.coefs.iter().map(Array2::ncols));
        sizes
    }
}

/// Load a PyTorch MLP saved as `.safetensors` (see [`read_safetensors`]).
pub fn load_safetensors(path: &Path) -> Result<Mlp, ModelError> {
    read_safetensors(path).map(Network::into_mlp)
}

/// Load an MLP saved as an ONNX graph (see [`read_onnx`]).
pub fn load_onnx(path: &Path) -> Result<Mlp, ModelError> {
    read_onnx(path).map(Network::into_mlp)
}

/// The model formats layerscope reads, told apart by the file name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// NumPy `.npz` with scikit-learn's names (layerscope's own).
    Npz,
    /// `.safetensors` (a PyTorch `state_dict`).
    Safetensors,
    /// `.onnx`.
    Onnx,
}

impl Format {
    /// The format of `path` by its extension (case-insensitive); `.npz` for anything else.
    pub fn of(path: &Path) -> Format {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("safetensors") => Format::Safetensors,
            Some("onnx") => Format::Onnx,
            _ => Format::Npz,
        }
    }
}

/// Load a model file of any format layerscope reads, by its extension.
pub fn load_file(path: &Path) -> Result<Mlp, ModelError> {
    match Format::of(path) {
        Format::Npz => super::load_npz(path),
        Format::Safetensors => load_safetensors(path),
        Format::Onnx => load_onnx(path),
    }
}

/// A problem with the file `path`.
fn fail(path: &Path, problem: impl Into<String>) -> ModelError {
    ModelError::File {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// A shape as `[16, 784]`.
fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// Check the network's sense: at least one layer, biases as wide as their layer, layers whose
/// shapes chain, finite values. `names` names each layer in messages.
fn check_network(path: &Path, net: &Network, names: &[String]) -> Result<(), ModelError> {
    if net.coefs.is_empty() {
        return Err(fail(
            path,
            "no layers found: expected at least one linear layer",
        ));
    }
    for (i, (w, b)) in net.coefs.iter().zip(&net.intercepts).enumerate() {
        let name = &names[i];
        if w.is_empty() {
            return Err(fail(
                path,
                format!(
                    "layer {name} has no units ({}): expected at least one unit in and out",
                    shape_text(w.shape())
                ),
            ));
        }
        if b.len() != w.ncols() {
            return Err(fail(
                path,
                format!(
                    "layer {name} has {} outputs but {} biases: expected one bias per output",
                    w.ncols(),
                    b.len()
                ),
            ));
        }
        if i > 0 && net.coefs[i - 1].ncols() != w.nrows() {
            return Err(fail(
                path,
                format!(
                    "shapes do not chain: layer {} gives {} outputs but layer {name} takes {} \
                     inputs: expected each layer to take the previous one's outputs",
                    names[i - 1],
                    net.coefs[i - 1].ncols(),
                    w.nrows()
                ),
            ));
        }
        if w.iter().chain(b.iter()).any(|v| !v.is_finite()) {
            return Err(fail(
                path,
                format!("layer {name} holds NaN or infinite values: expected finite weights"),
            ));
        }
    }
    Ok(())
}

/// IEEE half precision to f32.
fn f16_to_f32(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

/// bfloat16 (the top half of an f32) to f32.
fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("m.npz")), Format::Npz);
        assert_eq!(Format::of(Path::new("m.SafeTensors")), Format::Safetensors);
        assert_eq!(Format::of(Path::new("dir.onnx/m.onnx")), Format::Onnx);
        assert_eq!(Format::of(Path::new("model")), Format::Npz);
    }

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xbfc0), -1.5);
    }
}
