//! SHIM(nnx): stand-ins for branch nnx's `nn::Activation` and `Mlp::from_layers` (the agreed
//! contract), so that the importers can say which activation and output a file's network has
//! before the forward pass knows about them. At the merge, delete this file, import
//! `crate::nn::Activation`, and let `Network::into_mlp` call `Mlp::from_layers`.

use ndarray::{Array1, Array2};

use crate::nn::Mlp;

/// SHIM(nnx): scikit-learn's four hidden-layer activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// f(x) = x.
    Identity,
    /// f(x) = 1 / (1 + e^-x).
    Logistic,
    /// f(x) = tanh(x).
    Tanh,
    /// f(x) = max(0, x).
    #[default]
    Relu,
}

impl Activation {
    /// scikit-learn's name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Logistic => "logistic",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
        }
    }

    /// The activation scikit-learn calls `name`.
    pub fn from_name(name: &str) -> Option<Activation> {
        match name {
            "identity" => Some(Activation::Identity),
            "logistic" => Some(Activation::Logistic),
            "tanh" => Some(Activation::Tanh),
            "relu" => Some(Activation::Relu),
            _ => None,
        }
    }

    /// The activation of one value.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Logistic => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.max(0.0),
        }
    }
}

/// SHIM(nnx): `Mlp::from_layers(coefs, intercepts, activation, softmax)`. Until nnx lands the
/// network computes ReLU and a softmax whatever `activation` and `softmax` say.
pub fn from_layers(
    coefs: Vec<Array2<f32>>,
    intercepts: Vec<Array1<f32>>,
    _activation: Activation,
    _softmax: bool,
) -> Mlp {
    Mlp { coefs, intercepts }
}
