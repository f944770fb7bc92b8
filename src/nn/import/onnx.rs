//! ONNX graphs of MLPs, as `torch.onnx.export` writes an `nn.Sequential` of `Linear` layers
//! (Flatten, `Gemm` with `transB = 1`, Relu, ...) and as skl2onnx writes a scikit-learn
//! `MLPClassifier` (Cast, `MatMul` + `Add`, an activation, Softmax, then ArgMax and ZipMap for
//! the labels). The graph is followed from its data input one node at a time: linear layers
//! (`Gemm`, or `MatMul` then `Add`), one activation between them (Relu, Tanh, Sigmoid), a
//! Softmax or nothing at the output. Flatten, Reshape and Cast before the first layer, and
//! Identity and Dropout anywhere, pass the values through. What reads the output afterwards
//! (skl2onnx's ArgMax, ZipMap, ...) is left alone. Any other operator on the way is named with
//! its node: layerscope explores MLPs.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use ndarray::{Array1, Array2};
use prost::Message;

use super::proto::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, data_type};
use super::{Activation, Network, bf16_to_f32, check_network, f16_to_f32, fail, shape_text};
use crate::nn::ModelError;

/// Operators that read the network's output to make labels (skl2onnx's classifier tail): left
/// alone once the last layer is found.
const AFTER_OUTPUT: &[&str] = &[
    "ArgMax",
    "ZipMap",
    "ArrayFeatureExtractor",
    "Reshape",
    "Cast",
    "Identity",
    "Sub",
    "Concat",
    "LabelEncoder",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "TopK",
    "ReduceMax",
    "Shape",
    "Gather",
];

/// A constant tensor (an initializer, a Constant node, or a constant folded here).
#[derive(Debug, Clone)]
struct Const {
    dims: Vec<usize>,
    values: Values,
}

#[derive(Debug, Clone)]
enum Values {
    Float(Vec<f32>),
    Int(Vec<i64>),
    /// A data type that cannot be a weight.
    Other(i32),
}

/// One linear layer as found, and the activation after it.
struct Layer {
    node: String,
    coef: Array2<f32>,
    intercept: Array1<f32>,
    /// The node that made the layer was a MatMul, and no Add has given it a bias yet.
    awaits_bias: bool,
    activation: Option<(Activation, String)>,
}

/// Read an ONNX model file as a [`Network`].
pub fn read_onnx(path: &Path) -> Result<Network, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| fail(path, format!("cannot open: {e}")))?;
    let model = ModelProto::decode(bytes.as_slice()).map_err(|e| {
        fail(
            path,
            format!(
                "not a readable ONNX model ({e}): expected an ONNX ModelProto as \
                 torch.onnx.export or skl2onnx write it"
            ),
        )
    })?;
    let graph = match model.graph {
        Some(g) if !g.node.is_empty() => g,
        _ => {
            return Err(fail(
                path,
                "has no graph nodes: expected an ONNX ModelProto as torch.onnx.export or skl2onnx \
                 write it",
            ));
        }
    };
    Walk::new(path, &graph)?.run()
}

/// `node "name" (Op)`, or the node's position when it has no name.
fn node_label(node: &NodeProto, index: usize) -> String {
    let op = node.op_type.as_deref().unwrap_or("?");
    match node.name.as_deref() {
        Some(name) if !name.is_empty() => format!("node `{}` ({op})", name.escape_debug()),
        _ => format!("node #{index} ({op})"),
    }
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

fn int_attribute(node: &NodeProto, name: &str, default: i64) -> i64 {
    attribute(node, name).and_then(|a| a.i).unwrap_or(default)
}

fn float_attribute(node: &NodeProto, name: &str, default: f32) -> f32 {
    attribute(node, name).and_then(|a| a.f).unwrap_or(default)
}

/// Little-endian values of `width` bytes each.
fn le_chunks<const N: usize, T>(raw: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|c| f(c.try_into().unwrap_or([0; N])))
        .collect()
}

/// Decode an initializer's values (raw_data or the typed field of its data type).
fn decode_tensor(path: &Path, t: &TensorProto, what: &str) -> Result<Const, ModelError> {
    if t.data_location == Some(1) {
        return Err(fail(
            path,
            format!(
                "{what} is stored in an external file: expected the weights inside the model \
                 (save with onnx.save_model(..., save_as_external_data=False))"
            ),
        ));
    }
    let mut dims = Vec::new();
    for &d in &t.dims {
        dims.push(usize::try_from(d).map_err(|_| {
            fail(
                path,
                format!("{what} has a negative dimension {d}: expected sizes of 0 or more"),
            )
        })?);
    }
    let count: usize = dims.iter().product();
    let kind = t.data_type.unwrap_or(0);
    let raw = t.raw_data.as_deref();
    let values = match kind {
        data_type::FLOAT => Values::Float(match raw {
            Some(r) => le_chunks(r, f32::from_le_bytes),
            None => t.float_data.clone(),
        }),
        data_type::DOUBLE => Values::Float(match raw {
            Some(r) => le_chunks(r, |b| f64::from_le_bytes(b) as f32),
            None => t.double_data.iter().map(|&v| v as f32).collect(),
        }),
        data_type::FLOAT16 | data_type::BFLOAT16 => {
            let convert = if kind == data_type::FLOAT16 {
                f16_to_f32
            } else {
                bf16_to_f32
            };
            Values::Float(match raw {
                Some(r) => le_chunks(r, |b| convert(u16::from_le_bytes(b))),
                // The 16 bits in the low half of each int32 (the schema's rule).
                None => t.int32_data.iter().map(|&v| convert(v as u16)).collect(),
            })
        }
        data_type::INT64 => Values::Int(match raw {
            Some(r) => le_chunks(r, i64::from_le_bytes),
            None => t.int64_data.clone(),
        }),
        data_type::INT32 => Values::Int(match raw {
            Some(r) => le_chunks(r, |b| i64::from(i32::from_le_bytes(b))),
            None => t.int32_data.iter().map(|&v| i64::from(v)).collect(),
        }),
        other => Values::Other(other),
    };
    let len = match &values {
        Values::Float(v) => v.len(),
        Values::Int(v) => v.len(),
        Values::Other(_) => count,
    };
    if len != count {
        return Err(fail(
            path,
            format!(
                "{what} has shape {} ({count} values) but holds {len}: expected as many values \
                 as its shape (the file may be cut short)",
                shape_text(&dims)
            ),
        ));
    }
    Ok(Const { dims, values })
}

/// Following the graph from its data input.
struct Walk<'a> {
    path: &'a Path,
    graph: &'a GraphProto,
    consts: HashMap<String, Const>,
    /// Nodes that only make constants (Constant, a Transpose of a weight).
    constant_nodes: HashSet<usize>,
}

impl<'a> Walk<'a> {
    fn new(path: &'a Path, graph: &'a GraphProto) -> Result<Walk<'a>, ModelError> {
        let mut consts = HashMap::new();
        for t in &graph.initializer {
            let name = t.name.clone().unwrap_or_default();
            let what = format!("initializer `{}`", name.escape_debug());
            consts.insert(name, decode_tensor(path, t, &what)?);
        }
        let mut walk = Walk {
            path,
            graph,
            consts,
            constant_nodes: HashSet::new(),
        };
        walk.fold_constants()?;
        Ok(walk)
    }

    /// Constant nodes and transposes of constants (the newer exporters transpose a weight in
    /// the graph) become constants.
    fn fold_constants(&mut self) -> Result<(), ModelError> {
        for (i, node) in self.graph.node.iter().enumerate() {
            let op = node.op_type.as_deref().unwrap_or("");
            let Some(out) = node.output.first() else {
                continue;
            };
            let folded = match op {
                "Constant" => match attribute(node, "value").and_then(|a| a.t.as_ref()) {
                    Some(t) => {
                        let what = node_label(node, i);
                        Some(decode_tensor(self.path, t, &what)?)
                    }
                    None => attribute(node, "value_floats")
                        .map(|a| Const {
                            dims: vec![a.floats.len()],
                            values: Values::Float(a.floats.clone()),
                        })
                        .or_else(|| {
                            attribute(node, "value_float")
                                .and_then(|a| a.f)
                                .map(|f| Const {
                                    dims: Vec::new(),
                                    values: Values::Float(vec![f]),
                                })
                        }),
                },
                "Transpose" | "Identity" => {
                    match node.input.first().and_then(|n| self.consts.get(n)) {
                        Some(c) if op == "Identity" => Some(c.clone()),
                        Some(c) if c.dims.len() == 2 => {
                            let perm = attribute(node, "perm").map(|a| a.ints.clone());
                            if perm.is_none_or(|p| p == [1, 0]) {
                                Some(transpose(c))
                            } else {
                                None
                            }
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some(c) = folded {
                self.consts.insert(out.clone(), c);
                self.constant_nodes.insert(i);
            }
        }
        Ok(())
    }

    fn fail(&self, problem: impl Into<String>) -> ModelError {
        fail(self.path, problem)
    }

    /// A constant input of a node, as floats.
    fn weights(&self, node: &NodeProto, index: usize, at: usize) -> Result<&Const, ModelError> {
        let label = node_label(node, index);
        let name = node.input.get(at).map_or("", String::as_str);
        let c = self.consts.get(name).ok_or_else(|| {
            self.fail(format!(
                "{label}: input `{}` is computed, not a stored weight: expected a linear layer's \
                 weights as initializers (layerscope explores MLPs)",
                name.escape_debug()
            ))
        })?;
        match c.values {
            Values::Float(_) => Ok(c),
            Values::Int(_) => Err(self.fail(format!(
                "{label}: weight `{}` holds integers: expected floats (FLOAT, DOUBLE, FLOAT16 or \
                 BFLOAT16)",
                name.escape_debug()
            ))),
            Values::Other(t) => Err(self.fail(format!(
                "{label}: weight `{}` has data type {}: expected floats (FLOAT, DOUBLE, FLOAT16 \
                 or BFLOAT16)",
                name.escape_debug(),
                data_type::name(t)
            ))),
        }
    }

    /// The graph's data input: its first input that is not a stored constant.
    fn data_input(&self) -> Result<String, ModelError> {
        self.graph
            .input
            .iter()
            .filter_map(|v| v.name.clone())
            .find(|n| !self.consts.contains_key(n))
            .ok_or_else(|| self.fail("has no data input: expected a graph input for the images"))
    }

    fn run(self) -> Result<Network, ModelError> {
        let mut current = self.data_input()?;
        let mut on_chain: HashSet<String> = HashSet::from([current.clone()]);
        let mut visited: HashSet<usize> = self.constant_nodes.clone();
        let mut layers: Vec<Layer> = Vec::new();
        let mut softmax: Option<String> = None;
        // The last node on the chain was a linear layer's (an Add may follow it).
        let mut after_linear = false;
        loop {
            let consumers: Vec<usize> = self
                .graph
                .node
                .iter()
                .enumerate()
                .filter(|(i, n)| !visited.contains(i) && n.input.contains(&current))
                .map(|(i, _)| i)
                .collect();
            let op_of = |i: usize| self.graph.node[i].op_type.as_deref().unwrap_or("");
            if consumers.is_empty() {
                break;
            }
            let only_readers = consumers.iter().all(|&i| AFTER_OUTPUT.contains(&op_of(i)));
            let chain_op = |i: usize| {
                matches!(
                    op_of(i),
                    "Gemm"
                        | "MatMul"
                        | "Add"
                        | "Relu"
                        | "Tanh"
                        | "Sigmoid"
                        | "Softmax"
                        | "LogSoftmax"
                        | "Dropout"
                )
            };
            if !layers.is_empty() && only_readers && !consumers.iter().any(|&i| chain_op(i)) {
                // Past the output, unless a pass-through before the first layer.
                break;
            }
            if consumers.len() > 1 {
                let labels: Vec<String> = consumers
                    .iter()
                    .map(|&i| node_label(&self.graph.node[i], i))
                    .collect();
                return Err(self.fail(format!(
                    "value `{}` feeds {} nodes ({}): layerscope explores MLPs, one chain of \
                     layers",
                    current.escape_debug(),
                    consumers.len(),
                    labels.join(", ")
                )));
            }
            let index = consumers[0];
            let node = &self.graph.node[index];
            let label = node_label(node, index);
            let op = op_of(index);
            if let Some(s) = &softmax
                && !AFTER_OUTPUT.contains(&op)
            {
                return Err(self.fail(format!(
                    "{label} comes after the output's {s}: expected the softmax at the very end"
                )));
            }
            let output = node
                .output
                .first()
                .cloned()
                .ok_or_else(|| self.fail(format!("{label} has no output")))?;
            let mut linear = false;
            match op {
                "Gemm" => {
                    layers.push(self.gemm(node, index, &current)?);
                    linear = true;
                }
                "MatMul" => {
                    layers.push(self.matmul(node, index, &current)?);
                    linear = true;
                }
                "Add" => self.add(node, index, &current, after_linear, &mut layers)?,
                "Relu" | "Tanh" | "Sigmoid" => {
                    let activation = match op {
                        "Relu" => Activation::Relu,
                        "Tanh" => Activation::Tanh,
                        _ => Activation::Logistic,
                    };
                    let Some(last) = layers.last_mut() else {
                        return Err(self.fail(format!(
                            "{label} comes before any linear layer: expected Gemm or MatMul first"
                        )));
                    };
                    if let Some((_, before)) = &last.activation {
                        return Err(self.fail(format!(
                            "{label} follows {before} with no layer between: expected one \
                             activation per layer"
                        )));
                    }
                    last.activation = Some((activation, label.clone()));
                }
                "Softmax" | "LogSoftmax" => {
                    if layers.is_empty() {
                        return Err(self.fail(format!(
                            "{label} comes before any linear layer: expected it at the output"
                        )));
                    }
                    let axis = int_attribute(node, "axis", -1);
                    if axis != -1 && axis != 1 {
                        return Err(self.fail(format!(
                            "{label} has axis {axis}: expected the softmax over the classes \
                             (axis 1 or -1)"
                        )));
                    }
                    softmax = Some(label.clone());
                }
                "Identity" | "Dropout" => {}
                "Flatten" | "Reshape" | "Cast" if layers.is_empty() => {
                    if op == "Cast" {
                        let to = int_attribute(node, "to", i64::from(data_type::FLOAT));
                        let to = i32::try_from(to).unwrap_or(0);
                        if ![data_type::FLOAT, data_type::DOUBLE, data_type::FLOAT16].contains(&to)
                        {
                            return Err(self.fail(format!(
                                "{label} casts the input to {}: expected floats",
                                data_type::name(to)
                            )));
                        }
                    }
                }
                _ => {
                    return Err(self.fail(format!(
                        "{label} is not part of an MLP: layerscope explores MLPs (Gemm or MatMul \
                         + Add layers, Relu, Tanh or Sigmoid between them, Softmax or nothing at \
                         the output; Flatten, Reshape or Cast at the input)"
                    )));
                }
            }
            after_linear = linear;
            visited.insert(index);
            on_chain.insert(output.clone());
            current = output;
        }
        // Nothing else may read a value inside the network (a skip connection, a second head).
        for (i, node) in self.graph.node.iter().enumerate() {
            if visited.contains(&i) {
                continue;
            }
            if let Some(inner) = node
                .input
                .iter()
                .find(|v| on_chain.contains(*v) && **v != current)
            {
                return Err(self.fail(format!(
                    "{} reads `{}`, a value inside the network: layerscope explores MLPs, one \
                     chain of layers",
                    node_label(node, i),
                    inner.escape_debug()
                )));
            }
        }
        self.finish(layers, softmax.is_some())
    }

    /// `Y = alpha * A * B' + beta * C`, `B'` = B transposed when `transB` is set.
    fn gemm(&self, node: &NodeProto, index: usize, current: &str) -> Result<Layer, ModelError> {
        let label = node_label(node, index);
        if node.input.first().map(String::as_str) != Some(current) {
            return Err(self.fail(format!(
                "{label}: the layer's input is its second operand: expected Gemm(x, W, b)"
            )));
        }
        if int_attribute(node, "transA", 0) != 0 {
            return Err(self.fail(format!(
                "{label} has transA = 1: expected the batch as rows (transA = 0)"
            )));
        }
        let b = self.weights(node, index, 1)?;
        let mut coef = matrix(self.path, &label, b)?;
        if int_attribute(node, "transB", 0) != 0 {
            coef = coef.reversed_axes().as_standard_layout().into_owned();
        }
        let alpha = float_attribute(node, "alpha", 1.0);
        if alpha != 1.0 {
            coef.mapv_inplace(|v| v * alpha);
        }
        let n_out = coef.ncols();
        let intercept = if node.input.get(2).is_some_and(|n| !n.is_empty()) {
            let c = self.weights(node, index, 2)?;
            let beta = float_attribute(node, "beta", 1.0);
            bias(self.path, &label, c, n_out)?.mapv(|v| v * beta)
        } else {
            Array1::zeros(n_out)
        };
        Ok(Layer {
            node: label,
            coef,
            intercept,
            awaits_bias: false,
            activation: None,
        })
    }

    /// `Y = A * B` (the bias comes with the Add after it).
    fn matmul(&self, node: &NodeProto, index: usize, current: &str) -> Result<Layer, ModelError> {
        let label = node_label(node, index);
        if node.input.first().map(String::as_str) != Some(current) {
            return Err(self.fail(format!(
                "{label}: the layer's input is its second operand: expected MatMul(x, W)"
            )));
        }
        let b = self.weights(node, index, 1)?;
        let coef = matrix(self.path, &label, b)?;
        let n_out = coef.ncols();
        Ok(Layer {
            node: label,
            coef,
            intercept: Array1::zeros(n_out),
            awaits_bias: true,
            activation: None,
        })
    }

    /// `Y = X + b` right after a MatMul: the layer's bias.
    fn add(
        &self,
        node: &NodeProto,
        index: usize,
        current: &str,
        after_linear: bool,
        layers: &mut [Layer],
    ) -> Result<(), ModelError> {
        let label = node_label(node, index);
        let last = layers.last_mut().filter(|l| after_linear && l.awaits_bias);
        let Some(last) = last else {
            return Err(self.fail(format!(
                "{label} does not follow a MatMul: expected Add only as a linear layer's bias \
                 (layerscope explores MLPs)"
            )));
        };
        let other = match node.input.iter().position(|n| n == current) {
            Some(0) => 1,
            Some(_) => 0,
            None => unreachable!("the node reads the current value"),
        };
        let c = self.weights(node, index, other)?;
        last.intercept = bias(self.path, &label, c, last.coef.ncols())?;
        last.awaits_bias = false;
        Ok(())
    }

    /// The layers as a network: one hidden activation, and at the output a softmax, nothing,
    /// or a binary classifier's sigmoid.
    fn finish(&self, mut layers: Vec<Layer>, mut softmax: bool) -> Result<Network, ModelError> {
        let Some(last) = layers.last_mut() else {
            return Err(self.fail(
                "has no linear layer on the way from the input: expected Gemm or MatMul + Add \
                 layers (layerscope explores MLPs)",
            ));
        };
        if let Some((activation, label)) = last.activation.take() {
            if activation == Activation::Logistic && last.coef.ncols() == 1 && !softmax {
                // A binary classifier (skl2onnx: Sigmoid, then [1 - p, p]): a softmax over the
                // scores [0, z] gives exactly [1 - sigmoid(z), sigmoid(z)].
                let n_in = last.coef.nrows();
                let mut coef = Array2::zeros((n_in, 2));
                coef.column_mut(1).assign(&last.coef.column(0));
                last.coef = coef;
                last.intercept = ndarray::arr1(&[0.0, last.intercept[0]]);
                softmax = true;
            } else {
                return Err(self.fail(format!(
                    "{label} comes after the output layer: expected Softmax or nothing there"
                )));
            }
        }
        let mut hidden: Option<(Activation, String)> = None;
        let n = layers.len();
        for layer in &layers[..n - 1] {
            let (activation, label) = layer.activation.clone().unwrap_or((
                Activation::Identity,
                format!("{} (no activation)", layer.node),
            ));
            match &hidden {
                Some((a, first)) if *a != activation => {
                    return Err(self.fail(format!(
                        "the hidden layers' activations differ ({first}, {label}): expected one \
                         activation for every hidden layer, as scikit-learn's MLPs have"
                    )));
                }
                Some(_) => {}
                None => hidden = Some((activation, label)),
            }
        }
        let names: Vec<String> = layers.iter().map(|l| l.node.clone()).collect();
        let net = Network {
            coefs: layers.iter().map(|l| l.coef.clone()).collect(),
            intercepts: layers.into_iter().map(|l| l.intercept).collect(),
            activation: hidden.map_or(Activation::Relu, |(a, _)| a),
            softmax,
        };
        check_network(self.path, &net, &names)?;
        Ok(net)
    }
}

fn transpose(c: &Const) -> Const {
    let (rows, cols) = (c.dims[0], c.dims[1]);
    let values = match &c.values {
        Values::Float(v) => Values::Float(
            (0..cols)
                .flat_map(|j| (0..rows).map(move |i| (i, j)))
                .map(|(i, j)| v[i * cols + j])
                .collect(),
        ),
        other => other.clone(),
    };
    Const {
        dims: vec![cols, rows],
        values,
    }
}

/// A constant as a 2-D weight matrix.
fn matrix(path: &Path, label: &str, c: &Const) -> Result<Array2<f32>, ModelError> {
    let Values::Float(v) = &c.values else {
        unreachable!("checked by `weights`")
    };
    if c.dims.len() != 2 {
        return Err(fail(
            path,
            format!(
                "{label}: the weight has shape {}: expected a 2-D matrix (layerscope explores MLPs)",
                shape_text(&c.dims)
            ),
        ));
    }
    Array2::from_shape_vec((c.dims[0], c.dims[1]), v.clone())
        .map_err(|e| fail(path, format!("{label}: {e}")))
}

/// A constant as a bias of `n_out` values (shape [n], [1, n], or one value broadcast).
fn bias(path: &Path, label: &str, c: &Const, n_out: usize) -> Result<Array1<f32>, ModelError> {
    let Values::Float(v) = &c.values else {
        unreachable!("checked by `weights`")
    };
    let squeezed: Vec<usize> = c.dims.iter().copied().filter(|&d| d != 1).collect();
    if v.len() == 1 {
        return Ok(Array1::from_elem(n_out, v[0]));
    }
    if squeezed != [n_out] {
        return Err(fail(
            path,
            format!(
                "{label}: the bias has shape {} but the layer has {n_out} outputs: expected \
                 [{n_out}]",
                shape_text(&c.dims)
            ),
        ));
    }
    Ok(Array1::from(v.clone()))
}
