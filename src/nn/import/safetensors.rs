//! PyTorch `state_dict`s saved with `safetensors` (`save_file(model.state_dict(), path)`): the
//! weights and biases of `Linear` layers, by whatever module names the model used
//! (`nn.Sequential`'s `0.weight`, `2.weight`, ..., or `fc1.weight`, `layers.0.weight`, ...). The
//! file format (header, offsets, dtypes) is checked by the `safetensors` crate; what is checked
//! here is that the tensors make an MLP. A `state_dict` does not say the activation: ReLU and a
//! softmax unless the file's `__metadata__` says otherwise (`activation`: scikit-learn's or
//! PyTorch's name; `softmax`: `true` or `false`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ::safetensors::tensor::{Dtype, SafeTensors, TensorView};
use ndarray::{Array1, Array2};

use super::{Activation, Network, bf16_to_f32, check_network, f16_to_f32, fail, shape_text};
use crate::nn::ModelError;

/// At most this many orders are tried when the shapes alone leave the order open.
const MAX_ORDER_STEPS: usize = 1_000_000;

/// One `Linear` layer's tensors, by module name.
#[derive(Default)]
struct Module<'a> {
    weight: Option<(String, TensorView<'a>)>,
    bias: Option<(String, TensorView<'a>)>,
}

/// A layer ready to be ordered: its module name and its weights (in x out) and biases.
struct Layer {
    module: String,
    coef: Array2<f32>,
    intercept: Array1<f32>,
}

impl Layer {
    fn fan_in(&self) -> usize {
        self.coef.nrows()
    }
    fn fan_out(&self) -> usize {
        self.coef.ncols()
    }
    fn describe(&self) -> String {
        format!("{} ({} -> {})", self.module, self.fan_in(), self.fan_out())
    }
}

/// Read a `.safetensors` `state_dict` of `Linear` layers as a [`Network`]: each weight (stored
/// out x in, as PyTorch keeps it) transposed to in x out, F32/F64/F16/BF16 converted to f32,
/// the layers ordered by the chain of their shapes.
pub fn read_safetensors(path: &Path) -> Result<Network, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| fail(path, format!("cannot open: {e}")))?;
    let not_safetensors = |e: ::safetensors::SafeTensorError| {
        fail(
            path,
            format!(
                "not a readable safetensors file ({e}): expected an 8-byte header length, a JSON \
                 header and the tensors' bytes, as safetensors' save_file writes them"
            ),
        )
    };
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(not_safetensors)?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(not_safetensors)?;
    let (activation, softmax) = output_choice(path, metadata.metadata().as_ref())?;

    let mut modules: BTreeMap<String, Module> = BTreeMap::new();
    let mut others = Vec::new();
    let mut found: Vec<(String, Vec<usize>)> = Vec::new();
    for (name, view) in tensors.iter() {
        found.push((name.to_owned(), view.shape().to_vec()));
        if let Some(module) = name.strip_suffix(".weight") {
            modules.entry(module.to_owned()).or_default().weight = Some((name.to_owned(), view));
        } else if let Some(module) = name.strip_suffix(".bias") {
            modules.entry(module.to_owned()).or_default().bias = Some((name.to_owned(), view));
        } else {
            others.push(name.to_owned());
        }
    }
    found.sort_by(|a, b| natural_order(&a.0, &b.0));
    others.sort_by(|a, b| natural_order(a, b));
    let listing = || {
        if found.is_empty() {
            "none".to_owned()
        } else {
            found
                .iter()
                .map(|(n, s)| format!("{n} {}", shape_text(s)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    if let Some(other) = others.first() {
        return Err(fail(
            path,
            format!(
                "tensor `{other}` is not the weight or bias of a Linear layer (found: {}): \
                 layerscope explores MLPs, expected only `<module>.weight` and `<module>.bias`",
                listing()
            ),
        ));
    }
    if modules.is_empty() {
        return Err(fail(
            path,
            "holds no tensors: expected a state_dict of Linear layers (`0.weight`, `0.bias`, ...)",
        ));
    }
    let mut layers = Vec::new();
    for (module, parts) in modules {
        layers.push(layer(path, module, parts, &listing)?);
    }
    let order = order_layers(path, &layers, &listing)?;
    let mut slots: Vec<Option<Layer>> = layers.into_iter().map(Some).collect();
    let ordered: Vec<Layer> = order.iter().filter_map(|&i| slots[i].take()).collect();
    let names: Vec<String> = ordered.iter().map(|l| format!("`{}`", l.module)).collect();
    let net = Network {
        coefs: ordered.iter().map(|l| l.coef.clone()).collect(),
        intercepts: ordered.into_iter().map(|l| l.intercept).collect(),
        activation,
        softmax,
    };
    check_network(path, &net, &names)?;
    Ok(net)
}

/// The activation and output a file's `__metadata__` asks for; ReLU and softmax by default.
fn output_choice(
    path: &Path,
    metadata: Option<&HashMap<String, String>>,
) -> Result<(Activation, bool), ModelError> {
    let mut activation = Activation::Relu;
    let mut softmax = true;
    let Some(metadata) = metadata else {
        return Ok((activation, softmax));
    };
    if let Some(name) = metadata.get("activation") {
        activation = activation_named(name).ok_or_else(|| {
            fail(
                path,
                format!(
                    "__metadata__ activation `{}`: expected identity, logistic (sigmoid), tanh or relu",
                    name.escape_debug()
                ),
            )
        })?;
    }
    if let Some(value) = metadata.get("softmax") {
        softmax = match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                return Err(fail(
                    path,
                    format!(
                        "__metadata__ softmax `{}`: expected true or false",
                        value.escape_debug()
                    ),
                ));
            }
        };
    }
    Ok((activation, softmax))
}

/// An activation by scikit-learn's name or PyTorch's module name (`ReLU`, `Tanh`, `Sigmoid`).
fn activation_named(name: &str) -> Option<Activation> {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "sigmoid" => Some(Activation::Logistic),
        "linear" | "none" => Some(Activation::Identity),
        other => Activation::from_name(other),
    }
}

/// One module's weight (out x in) and bias as a layer (in x out); a missing bias is zeros
/// (`Linear(bias=False)`).
fn layer(
    path: &Path,
    module: String,
    parts: Module<'_>,
    listing: &dyn Fn() -> String,
) -> Result<Layer, ModelError> {
    let Some((weight_name, weight)) = parts.weight else {
        let bias_name = parts.bias.map_or_else(String::new, |(n, _)| n);
        return Err(fail(
            path,
            format!(
                "tensor `{bias_name}` has no `{module}.weight` beside it (found: {}): expected \
                 each Linear layer's weight",
                listing()
            ),
        ));
    };
    let shape = weight.shape();
    if shape.len() != 2 {
        return Err(fail(
            path,
            format!(
                "tensor `{weight_name}` has shape {}: expected a Linear layer's 2-D weight (out x \
                 in); layerscope explores MLPs",
                shape_text(shape)
            ),
        ));
    }
    let (n_out, n_in) = (shape[0], shape[1]);
    let values = floats(path, &weight_name, &weight)?;
    let coef = Array2::from_shape_vec((n_out, n_in), values)
        .map_err(|e| fail(path, format!("tensor `{weight_name}`: {e}")))?
        .reversed_axes()
        .as_standard_layout()
        .into_owned();
    let intercept = match parts.bias {
        Some((bias_name, bias)) => {
            if bias.shape() != [n_out] {
                return Err(fail(
                    path,
                    format!(
                        "tensor `{bias_name}` has shape {} but `{weight_name}` has {n_out} \
                         outputs: expected shape [{n_out}]",
                        shape_text(bias.shape())
                    ),
                ));
            }
            Array1::from(floats(path, &bias_name, &bias)?)
        }
        None => Array1::zeros(n_out),
    };
    Ok(Layer {
        module,
        coef,
        intercept,
    })
}

/// A tensor's values as f32 (little-endian, as the format stores them).
fn floats(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Vec<f32>, ModelError> {
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| bf16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        other => {
            return Err(fail(
                path,
                format!(
                    "tensor `{name}` has dtype {other}: expected floats (F32, F64, F16 or BF16)"
                ),
            ));
        }
    };
    if values.iter().any(|v| !v.is_finite()) {
        return Err(fail(
            path,
            format!("tensor `{name}` holds NaN or infinite values: expected finite weights"),
        ));
    }
    Ok(values)
}

/// The order of the layers: the one chain of shapes (each layer's outputs the next one's
/// inputs) that uses every layer. When several chains fit, the modules' names in natural order
/// (`fc2` before `fc10`) decide, if they are one of them; otherwise the order is ambiguous.
fn order_layers(
    path: &Path,
    layers: &[Layer],
    listing: &dyn Fn() -> String,
) -> Result<Vec<usize>, ModelError> {
    let mut by_name: Vec<usize> = (0..layers.len()).collect();
    by_name.sort_by(|&a, &b| natural_order(&layers[a].module, &layers[b].module));
    let chains = |order: &[usize]| {
        order
            .windows(2)
            .all(|w| layers[w[0]].fan_out() == layers[w[1]].fan_in())
    };
    let describe = |order: &[usize]| {
        order
            .iter()
            .map(|&i| layers[i].describe())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if chains(&by_name) {
        return Ok(by_name);
    }
    let mut search = ChainSearch {
        layers,
        found: Vec::new(),
        steps: 0,
    };
    let mut used = vec![false; layers.len()];
    let mut path_so_far = Vec::new();
    search.extend(&mut used, &mut path_so_far);
    match search.found.len() {
        1 => Ok(search.found.remove(0)),
        0 if search.steps >= MAX_ORDER_STEPS => Err(fail(
            path,
            format!(
                "too many layers of equal shapes to order by shape alone ({}): expected module \
                 names whose natural order chains",
                describe(&by_name)
            ),
        )),
        0 => Err(fail(
            path,
            format!(
                "the layers' shapes do not chain into one network: {} (tensors: {}): expected \
                 each layer to take the previous one's outputs",
                broken_link(layers, &by_name),
                listing()
            ),
        )),
        _ => Err(fail(
            path,
            format!(
                "the layers' order is ambiguous: their shapes chain as {} and as {}, and the \
                 module names' order ({}) is neither: expected names that sort in the network's \
                 order (`fc1`, `fc2`, ...)",
                describe(&search.found[0]),
                describe(&search.found[1]),
                describe(&by_name)
            ),
        )),
    }
}

/// Where the names' order breaks, in words.
fn broken_link(layers: &[Layer], order: &[usize]) -> String {
    let all = order
        .iter()
        .map(|&i| layers[i].describe())
        .collect::<Vec<_>>()
        .join(", ");
    for w in order.windows(2) {
        let (a, b) = (&layers[w[0]], &layers[w[1]]);
        if a.fan_out() != b.fan_in() {
            let takers: Vec<&str> = layers
                .iter()
                .filter(|l| l.fan_in() == a.fan_out() && l.module != a.module)
                .map(|l| l.module.as_str())
                .collect();
            let after = if takers.is_empty() {
                format!("no layer takes {} inputs", a.fan_out())
            } else {
                format!("{} takes {} inputs", takers.join(", "), a.fan_out())
            };
            return format!(
                "{all}: `{}` gives {} outputs, `{}` takes {}; {after}",
                a.module,
                a.fan_out(),
                b.module,
                b.fan_in()
            );
        }
    }
    all
}

/// Depth-first search for orders of all the layers whose shapes chain; stops at two.
struct ChainSearch<'a> {
    layers: &'a [Layer],
    found: Vec<Vec<usize>>,
    steps: usize,
}

impl ChainSearch<'_> {
    fn extend(&mut self, used: &mut [bool], order: &mut Vec<usize>) {
        if self.found.len() >= 2 || self.steps >= MAX_ORDER_STEPS {
            return;
        }
        self.steps += 1;
        if order.len() == self.layers.len() {
            self.found.push(order.clone());
            return;
        }
        for i in 0..self.layers.len() {
            let fits = order
                .last()
                .is_none_or(|&j| self.layers[j].fan_out() == self.layers[i].fan_in());
            if !used[i] && fits {
                used[i] = true;
                order.push(i);
                self.extend(used, order);
                order.pop();
                used[i] = false;
            }
        }
    }
}

/// Names compared with their numbers as numbers: `layers.2` before `layers.10`.
fn natural_order(a: &str, b: &str) -> Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, sa), (db, sb)) in ca.iter().zip(&cb) {
        let ord = if *da && *db {
            let (ta, tb) = (sa.trim_start_matches('0'), sb.trim_start_matches('0'));
            ta.len().cmp(&tb.len()).then(ta.cmp(tb))
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    ca.len().cmp(&cb.len()).then(a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_with_numbers_as_numbers() {
        let mut names = vec![
            "layers.10",
            "layers.2",
            "fc2",
            "fc10",
            "fc1",
            "0",
            "12",
            "2",
        ];
        names.sort_by(|a, b| natural_order(a, b));
        assert_eq!(
            names,
            [
                "0",
                "2",
                "12",
                "fc1",
                "fc2",
                "fc10",
                "layers.2",
                "layers.10"
            ]
        );
    }

    #[test]
    fn activation_names_of_both_libraries() {
        assert_eq!(activation_named("ReLU"), Some(Activation::Relu));
        assert_eq!(activation_named("Sigmoid"), Some(Activation::Logistic));
        assert_eq!(activation_named("logistic"), Some(Activation::Logistic));
        assert_eq!(activation_named("Tanh"), Some(Activation::Tanh));
        assert_eq!(activation_named("identity"), Some(Activation::Identity));
        assert_eq!(activation_named("gelu"), None);
    }
}
