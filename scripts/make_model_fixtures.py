#!/usr/bin/env python3
"""Write the model files under tests/fixtures/models/ with the real producers, and the numbers
tests/import.rs compares layerscope's reading of them with.

    pip install numpy scikit-learn safetensors onnx onnxruntime skl2onnx
    python3 scripts/make_model_fixtures.py

The on-board digits (data/mnist10k.tsv.gz, pixel / 255):

    sklearn_mlp.onnx          skl2onnx of a scikit-learn MLPClassifier(16) (ReLU, softmax) trained
                              on half the digits (train_test_split(test_size=0.5,
                              random_state=0), as the anchors split), its weights rounded to
                              float32 first so that scikit-learn, onnxruntime and layerscope run
                              the same network; Cast, MatMul + Add, Relu, Softmax, ArgMax, ZipMap
    sklearn_mlp.safetensors   the same network as a PyTorch nn.Sequential state_dict
                              (`0.weight` 16 x 784, `0.bias`, `2.weight` 10 x 16, `2.bias`),
                              written by safetensors.numpy.save_file
    sklearn_mlp.expected.npz  `predictions`: scikit-learn's predict of all 10,000 digits (uint8;
                              the test split is half of them); `layer_2`, `layer_3`: its hidden
                              activations and probabilities for digits 0..20 (float64)

Small 8 -> 5 -> 4 -> 3 networks of the other shapes the readers meet, each with NAME.expected.npz
holding `x` (4 x 8 inputs) and `layer_2` .. `layer_4` (the layer outputs, numpy in float64, the
last checked against onnxruntime's output for the .onnx files):

    torch_gemm_tanh.onnx          what torch.onnx.export writes for nn.Sequential(Flatten,
                                  Linear, Tanh, Linear, Tanh, Linear) (built with onnx.helper:
                                  PyTorch does not install here): input [N, 1, 2, 4], Flatten,
                                  Gemm transB=1 with raw_data weights named `1.weight`, no softmax
    torch_matmul_sigmoid.onnx     the dynamo exporter's form: Transpose of each weight, MatMul,
                                  Add, Sigmoid, a final Softmax(axis=-1); weights as float_data
    sklearn_binary_tanh.onnx      skl2onnx of a binary MLPClassifier(5, activation='tanh'): one
                                  logistic output, then [1 - p, p]; expected: 8 -> 5 -> 2 with
                                  `layer_3` = predict_proba
    named_f16.safetensors         modules `net.fc_in`, `net.fc_out`, `net.hidden` (names that do
                                  not sort in the network's order: the shapes decide), float16
    sequential_bf16.safetensors   `0`, `2`, `4` in bfloat16 (written by hand: numpy has no
                                  bfloat16), __metadata__ activation=tanh, softmax=false
    sequential_f64.safetensors    `layers.0`, `layers.2`, `layers.10` in float64 (natural order)

Malformed files, each refused with a clear message and exit code 2:

    truncated.safetensors  sequential_f64.safetensors cut to its first 300 bytes
    truncated.onnx         torch_gemm_tanh.onnx cut to its first 200 bytes
    int64.safetensors      a weight of dtype I64
    broken.safetensors     8 -> 5 then 6 -> 3: shapes that do not chain
    ambiguous.safetensors  8 -> 4, two 4 -> 4, 4 -> 3 under names that do not sort in order
    batchnorm.safetensors  a BatchNorm1d's running_mean beside Linear layers
    int8.onnx              a Gemm whose weight is INT8
    broken.onnx            Gemm 8 -> 5 then Gemm 6 -> 3
    conv.onnx              a Conv node: not an MLP
"""
import gzip
import json
import os
import struct

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file
from skl2onnx import to_onnx
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "models")
SIZES = [8, 5, 4, 3]


def out(name):
    return os.path.join(OUT, name)


def onboard():
    with gzip.open(os.path.join(ROOT, "data", "mnist10k.tsv.gz"), "rt") as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = np.loadtxt(f, delimiter="\t", dtype=np.float64)
    assert header[-1] == "target"
    return rows[:, :-1] / 255.0, rows[:, -1].astype(np.int64)


def forward(coefs, intercepts, x, activation, softmax):
    """Every layer's output (layer 2 onwards), in float64."""
    act = {
        "relu": lambda z: np.maximum(z, 0),
        "tanh": np.tanh,
        "logistic": lambda z: 1 / (1 + np.exp(-z)),
        "identity": lambda z: z,
    }[activation]
    outs = []
    h = x.astype(np.float64)
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        z = h @ w.astype(np.float64) + b.astype(np.float64)
        if i < len(coefs) - 1:
            h = act(z)
        elif softmax:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            h = e / e.sum(axis=1, keepdims=True)
        else:
            h = z
        outs.append(h)
    return outs


def small_network(seed):
    rng = np.random.default_rng(seed)
    coefs = [rng.normal(0, 0.8, (a, b)).astype(np.float32) for a, b in zip(SIZES, SIZES[1:])]
    intercepts = [rng.normal(0, 0.3, b).astype(np.float32) for b in SIZES[1:]]
    return coefs, intercepts


def small_inputs():
    return np.random.default_rng(99).random((4, SIZES[0])).astype(np.float32)


def save_expected(name, x, outs, **extra):
    arrays = {"x": x.astype(np.float64)}
    for k, o in enumerate(outs, start=2):
        arrays[f"layer_{k}"] = o
    arrays.update(extra)
    np.savez_compressed(out(name), **arrays)


def run_ort(path, x, input_name="input"):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {input_name: x})


def sklearn_fixtures():
    X, y = onboard()
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.5, random_state=0)
    m = MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X_train, y_train)
    # The same network in every file: float32 weights.
    m.coefs_ = [c.astype(np.float32).astype(np.float64) for c in m.coefs_]
    m.intercepts_ = [b.astype(np.float32).astype(np.float64) for b in m.intercepts_]
    predictions = m.predict(X).astype(np.uint8)
    onx = to_onnx(m, X[:1].astype(np.float32))
    onnx.save_model(onx, out("sklearn_mlp.onnx"))
    label, _ = run_ort(out("sklearn_mlp.onnx"), X.astype(np.float32), "X")
    agree = (label == predictions).mean()
    print(f"sklearn_mlp: onnxruntime agrees with scikit-learn on {agree:.4%} of 10,000 digits")
    save_file(
        {
            "0.weight": np.ascontiguousarray(m.coefs_[0].T.astype(np.float32)),
            "0.bias": m.intercepts_[0].astype(np.float32),
            "2.weight": np.ascontiguousarray(m.coefs_[1].T.astype(np.float32)),
            "2.bias": m.intercepts_[1].astype(np.float32),
        },
        out("sklearn_mlp.safetensors"),
    )
    first = X[:20]
    hidden = np.maximum(first @ m.coefs_[0] + m.intercepts_[0], 0)
    proba = m.predict_proba(first)
    assert np.allclose(forward(m.coefs_, m.intercepts_, first, "relu", True)[1], proba)
    np.savez_compressed(
        out("sklearn_mlp.expected.npz"), predictions=predictions, layer_2=hidden, layer_3=proba
    )
    print(f"sklearn_mlp: test accuracy of the split {m.score(*train_test_split(X, y, test_size=0.5, random_state=0)[1::2]):.4f}")


def initializer(name, array, raw=True):
    t = numpy_helper.from_array(array, name)
    if not raw:
        t = helper.make_tensor(name, TensorProto.FLOAT, array.shape, array.flatten().tolist())
    return t


def torch_gemm_tanh():
    coefs, intercepts = small_network(1)
    nodes = [helper.make_node("Flatten", ["input"], ["/0/Flatten_output_0"], name="/0/Flatten", axis=1)]
    inits = []
    value = "/0/Flatten_output_0"
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        module = 1 + 2 * i
        inits.append(initializer(f"{module}.weight", np.ascontiguousarray(w.T)))
        inits.append(initializer(f"{module}.bias", b))
        gemm_out = f"/{module}/Gemm_output_0" if i < 2 else "output"
        nodes.append(
            helper.make_node(
                "Gemm", [value, f"{module}.weight", f"{module}.bias"], [gemm_out],
                name=f"/{module}/Gemm", alpha=1.0, beta=1.0, transB=1,
            )
        )
        value = gemm_out
        if i < 2:
            nodes.append(helper.make_node("Tanh", [value], [f"/{module + 1}/Tanh_output_0"], name=f"/{module + 1}/Tanh"))
            value = f"/{module + 1}/Tanh_output_0"
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 2, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
        inits,
    )
    model = helper.make_model(graph, producer_name="pytorch", opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save_model(model, out("torch_gemm_tanh.onnx"))
    x = small_inputs()
    outs = forward(coefs, intercepts, x, "tanh", False)
    (ort_out,) = run_ort(out("torch_gemm_tanh.onnx"), x.reshape(4, 1, 2, 4))
    assert np.allclose(ort_out, outs[-1], atol=1e-6), "onnxruntime disagrees"
    save_expected("torch_gemm_tanh.expected.npz", x, outs)
    return model


def torch_matmul_sigmoid():
    coefs, intercepts = small_network(2)
    nodes, inits = [], []
    value = "input"
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        inits.append(initializer(f"fc{i + 1}.weight", np.ascontiguousarray(w.T), raw=False))
        inits.append(initializer(f"fc{i + 1}.bias", b, raw=False))
        nodes.append(helper.make_node("Transpose", [f"fc{i + 1}.weight"], [f"t{i}"], name=f"node_t_{i}", perm=[1, 0]))
        nodes.append(helper.make_node("MatMul", [value, f"t{i}"], [f"mm{i}"], name=f"node_matmul_{i}"))
        nodes.append(helper.make_node("Add", [f"mm{i}", f"fc{i + 1}.bias"], [f"add{i}"], name=f"node_add_{i}"))
        value = f"add{i}"
        if i < 2:
            nodes.append(helper.make_node("Sigmoid", [value], [f"sig{i}"], name=f"node_sigmoid_{i}"))
            value = f"sig{i}"
    nodes.append(helper.make_node("Softmax", [value], ["output"], name="node_softmax", axis=-1))
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
        inits,
    )
    model = helper.make_model(graph, producer_name="pytorch", opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save_model(model, out("torch_matmul_sigmoid.onnx"))
    x = small_inputs()
    outs = forward(coefs, intercepts, x, "logistic", True)
    (ort_out,) = run_ort(out("torch_matmul_sigmoid.onnx"), x)
    assert np.allclose(ort_out, outs[-1], atol=1e-6), "onnxruntime disagrees"
    save_expected("torch_matmul_sigmoid.expected.npz", x, outs)


def sklearn_binary_tanh():
    rng = np.random.default_rng(3)
    X = rng.random((80, 8))
    y = (X[:, 0] + X[:, 3] > 1).astype(np.int64)
    m = MLPClassifier(hidden_layer_sizes=(5,), activation="tanh", max_iter=300, random_state=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X, y)
    m.coefs_ = [c.astype(np.float32).astype(np.float64) for c in m.coefs_]
    m.intercepts_ = [b.astype(np.float32).astype(np.float64) for b in m.intercepts_]
    onx = to_onnx(m, X[:1].astype(np.float32))
    onnx.save_model(onx, out("sklearn_binary_tanh.onnx"))
    x = small_inputs()
    hidden = np.tanh(x.astype(np.float64) @ m.coefs_[0] + m.intercepts_[0])
    proba = m.predict_proba(x.astype(np.float64))
    _, ort_proba = run_ort(out("sklearn_binary_tanh.onnx"), x, "X")
    ort_proba = np.array([[d[0], d[1]] for d in ort_proba])
    assert np.allclose(ort_proba, proba, atol=1e-6), "onnxruntime disagrees"
    save_expected("sklearn_binary_tanh.expected.npz", x, [hidden, proba])


def bf16_bytes(a):
    """float32 -> bfloat16 bits, rounded to nearest even."""
    bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2")


def write_safetensors_by_hand(path, tensors, metadata=None):
    """tensors: name -> (dtype string, shape, little-endian bytes)."""
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def state_dict(names, coefs, intercepts, dtype):
    d = {}
    for name, w, b in zip(names, coefs, intercepts):
        d[f"{name}.weight"] = np.ascontiguousarray(w.T).astype(dtype)
        d[f"{name}.bias"] = b.astype(dtype)
    return d


def safetensors_fixtures():
    x = small_inputs()
    # float16: the shapes order the layers (the names sort as fc_in, fc_out, hidden).
    coefs, intercepts = small_network(4)
    c16 = [c.astype(np.float16).astype(np.float32) for c in coefs]
    b16 = [b.astype(np.float16).astype(np.float32) for b in intercepts]
    save_file(state_dict(["net.fc_in", "net.hidden", "net.fc_out"], coefs, intercepts, np.float16), out("named_f16.safetensors"))
    save_expected("named_f16.expected.npz", x, forward(c16, b16, x, "relu", True))

    # bfloat16 by hand, tanh and raw scores by metadata.
    coefs, intercepts = small_network(5)
    tensors = {}
    cb, bb = [], []
    for name, w, b in zip(["0", "2", "4"], coefs, intercepts):
        wt = np.ascontiguousarray(w.T)
        wbits, bbits = bf16_bytes(wt), bf16_bytes(b)
        tensors[f"{name}.weight"] = ("BF16", wt.shape, wbits.tobytes())
        tensors[f"{name}.bias"] = ("BF16", b.shape, bbits.tobytes())
        cb.append((wbits.astype(np.uint32) << 16).view(np.float32).T)
        bb.append((bbits.astype(np.uint32) << 16).view(np.float32))
    write_safetensors_by_hand(out("sequential_bf16.safetensors"), tensors, {"activation": "tanh", "softmax": "false"})
    save_expected("sequential_bf16.expected.npz", x, forward(cb, bb, x, "tanh", False))

    # float64, natural order of layers.2 and layers.10.
    coefs, intercepts = small_network(6)
    save_file(state_dict(["layers.0", "layers.2", "layers.10"], coefs, intercepts, np.float64), out("sequential_f64.safetensors"))
    save_expected("sequential_f64.expected.npz", x, forward(coefs, intercepts, x, "relu", True))

    # Malformed.
    with open(out("sequential_f64.safetensors"), "rb") as f:
        head = f.read(300)
    with open(out("truncated.safetensors"), "wb") as f:
        f.write(head)
    bad = state_dict(["0", "2", "4"], coefs, intercepts, np.float32)
    bad["2.weight"] = bad["2.weight"].astype(np.int64)
    save_file(bad, out("int64.safetensors"))
    rng = np.random.default_rng(7)
    save_file(
        {
            "0.weight": rng.random((5, 8)).astype(np.float32), "0.bias": rng.random(5).astype(np.float32),
            "2.weight": rng.random((3, 6)).astype(np.float32), "2.bias": rng.random(3).astype(np.float32),
        },
        out("broken.safetensors"),
    )
    save_file(
        {
            "first.weight": rng.random((4, 8)).astype(np.float32),
            "p.weight": rng.random((4, 4)).astype(np.float32),
            "q.weight": rng.random((4, 4)).astype(np.float32),
            "last.weight": rng.random((3, 4)).astype(np.float32),
        },
        out("ambiguous.safetensors"),
    )
    save_file(
        {
            "0.weight": rng.random((5, 8)).astype(np.float32), "0.bias": rng.random(5).astype(np.float32),
            "1.weight": rng.random(5).astype(np.float32), "1.bias": rng.random(5).astype(np.float32),
            "1.running_mean": rng.random(5).astype(np.float32), "1.running_var": rng.random(5).astype(np.float32),
            "3.weight": rng.random((3, 5)).astype(np.float32), "3.bias": rng.random(3).astype(np.float32),
        },
        out("batchnorm.safetensors"),
    )


def malformed_onnx(good):
    with open(out("torch_gemm_tanh.onnx"), "rb") as f:
        head = f.read(200)
    with open(out("truncated.onnx"), "wb") as f:
        f.write(head)

    def gemm_graph(weights, name):
        nodes, inits, value = [], [], "input"
        for i, w in enumerate(weights):
            inits.append(numpy_helper.from_array(w, f"w{i}"))
            nodes.append(helper.make_node("Gemm", [value, f"w{i}"], [f"y{i}"], name=f"/fc{i}/Gemm", transB=1))
            value = f"y{i}"
        graph = helper.make_graph(
            nodes, "main_graph",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8])],
            [helper.make_tensor_value_info(value, TensorProto.FLOAT, ["batch", 3])],
            inits,
        )
        onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), out(name))

    rng = np.random.default_rng(8)
    gemm_graph([rng.integers(-3, 3, (5, 8)).astype(np.int8), rng.random((3, 5)).astype(np.float32)], "int8.onnx")
    gemm_graph([rng.random((5, 8)).astype(np.float32), rng.random((3, 6)).astype(np.float32)], "broken.onnx")
    conv = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "k"], ["c"], name="/conv1/Conv", kernel_shape=[3, 3]),
            helper.make_node("Flatten", ["c"], ["f"], name="/flatten/Flatten"),
            helper.make_node("Gemm", ["f", "w"], ["output"], name="/fc/Gemm", transB=1),
        ],
        "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
        [
            numpy_helper.from_array(rng.random((2, 1, 3, 3)).astype(np.float32), "k"),
            numpy_helper.from_array(rng.random((3, 8)).astype(np.float32), "w"),
        ],
    )
    onnx.save_model(helper.make_model(conv, opset_imports=[helper.make_opsetid("", 17)]), out("conv.onnx"))


def main():
    os.makedirs(OUT, exist_ok=True)
    sklearn_fixtures()
    good = torch_gemm_tanh()
    torch_matmul_sigmoid()
    sklearn_binary_tanh()
    safetensors_fixtures()
    malformed_onnx(good)
    for name in sorted(os.listdir(OUT)):
        print(f"{os.path.getsize(out(name)):>8}  {name}")


if __name__ == "__main__":
    main()
