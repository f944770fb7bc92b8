#!/usr/bin/env python3
"""The whole default pipeline, layerscope against the notebook's own code, side by side in one run.

The pipeline is what the notebook does end to end: train MLPClassifier(512, 256) to convergence
on 5,000 of the on-board digits, t-SNE of 1,500 training images at layers 2, 3 and 4, and one
Shapley saliency map (784 pixels, 200 samples each) of one image's predicted probability.

- notebook: the notebook's code as written (scikit-learn float64 MLP, `TSNE(perplexity=3,
  learning_rate='auto', init='random')` per layer, its Monte Carlo Shapley loop calling
  `predict_proba` one row at a time). The Shapley loop costs the same per pixel, so it is timed on
  `--features` pixels and extrapolated to 784, as scripts/bench_explain.py does.
- layerscope: the release binary, three processes as a user would chain them: `train --save`,
  `embed --model --layers 2,3,4`, `explain --model` (permutation Shapley, 200 permutations). Each
  process loads the data itself; start-up is counted.

Runs alternate (notebook, layerscope at perplexity 3, layerscope at perplexity 30; layerscope's
configurations in an order rotated by the run) so that drift in a shared machine's speed hits all
alike; the table shows medians and the ratio of medians.
`--compare OLD` also runs another build of layerscope (an older binary) at perplexity 30 in the
same rotation: a before/after in one run.

    python3 scripts/bench_pipeline.py [--runs 3] [--features 16] [--compare PATH] [--binary PATH]
"""
import argparse
import gzip
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where `cargo build --release` puts the binary (CARGO_TARGET_DIR when set).
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "layerscope")


def cpu():
    model, flags = platform.processor() or "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("?", "", "x86_64"):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f") if f in flags]
    return f"{model}, {os.cpu_count()} cores, {' '.join(simd) or 'no AVX2'}"


def load():
    with gzip.open(os.path.join(ROOT, "data", "mnist10k.tsv.gz"), "rt") as f:
        table = np.loadtxt(f, delimiter="\t", skiprows=1, dtype=np.float64)
    return table[:, :-1] / 255.0, table[:, -1].astype(int)


def notebook(X, y, features):
    """The notebook's pipeline as written; returns (seconds, parts)."""
    from sklearn.manifold import TSNE
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    parts = {}
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
    t = time.perf_counter()
    nn = MLPClassifier(hidden_layer_sizes=(512, 256), random_state=0)
    nn.fit(X_train, y_train)
    parts["fit"] = time.perf_counter() - t

    def layer_output(X, layer):
        out = X
        for i in range(layer - 1):
            z = out @ nn.coefs_[i] + nn.intercepts_[i]
            if i < nn.n_layers_ - 2:
                out = np.maximum(z, 0)
            else:
                e = np.exp(z - z.max(axis=1, keepdims=True))
                out = e / e.sum(axis=1, keepdims=True)
        return out

    t = time.perf_counter()
    for layer in (2, 3, 4):
        a = layer_output(X_train[:1500], layer)
        TSNE(n_components=2, learning_rate="auto", init="random", perplexity=3, random_state=0).fit_transform(a)
    parts["tsne"] = time.perf_counter() - t

    x, label = X_test[0], nn.predict(X_test[:1])[0]
    label = list(nn.classes_).index(label)
    n_instances, n_features = X_train.shape
    rng = random.Random(0)
    t = time.perf_counter()
    for feature in range(300, 300 + features):
        other = list(range(feature)) + list(range(feature + 1, n_features))
        value = 0.0
        for _ in range(200):
            r = X_train[rng.randint(0, n_instances - 1)]
            k = rng.randint(0, n_features - 1)
            zo = np.copy(x)
            for f in rng.sample(other, k):
                zo[f] = r[f]
            zd = np.copy(zo)
            zd[feature] = r[feature]
            value += nn.predict_proba([zo])[0][label] - nn.predict_proba([zd])[0][label]
    parts["shapley (extrapolated)"] = (time.perf_counter() - t) / features * 784
    return sum(parts.values()), parts


def layerscope(tmp, perplexity, binary=BIN):
    """The same pipeline with the release binary; returns (seconds, parts)."""
    model = os.path.join(tmp, "model.npz")
    steps = [
        ("train", [binary, "train", "--save", model]),
        ("embed", [binary, "embed", "--model", model, "--layers", "2,3,4", "--perplexity", str(perplexity),
                   "--out", os.path.join(tmp, "embed.csv")]),
        ("explain", [binary, "explain", "--model", model, "--index", "0", "--out", os.path.join(tmp, "explain.csv")]),
    ]
    for path in (model, os.path.join(tmp, "embed.csv"), os.path.join(tmp, "explain.csv")):
        if os.path.exists(path):
            os.remove(path)
    parts = {}
    for name, cmd in steps:
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        parts[name] = time.perf_counter() - t
    return sum(parts.values()), parts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--features", type=int, default=16, help="pixels the notebook's Shapley loop is timed on")
    ap.add_argument("--compare", help="another layerscope binary, run at perplexity 30 in the same rotation")
    ap.add_argument("--binary", help="the layerscope binary to time (default: build the release one)")
    args = ap.parse_args()
    global BIN
    if args.binary:
        BIN = args.binary
    else:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    X, y = load()
    print(f"CPU: {cpu()}; load average before: {os.getloadavg()[0]:.2f}")
    times = {"notebook": [], "layerscope perplexity 3": [], "layerscope perplexity 30": []}
    if args.compare:
        times["compared binary perplexity 30"] = []
    parts = {k: [] for k in times}
    with tempfile.TemporaryDirectory() as tmp:
        names = list(times)
        for run in range(args.runs):
            # The notebook first, then layerscope's configurations in an order rotated by the
            # run: a slot that runs slower (seen: the last, with --compare) must not always
            # fall to the same build.
            shift = run % (len(names) - 1)
            for name in names[:1] + names[1 + shift:] + names[1:1 + shift]:
                if name == "notebook":
                    s, p = notebook(X, y, args.features)
                elif name.startswith("compared"):
                    s, p = layerscope(tmp, 30, args.compare)
                else:
                    s, p = layerscope(tmp, 3 if "perplexity 3" in name else 30, BIN)
                times[name].append(s)
                parts[name].append(p)
                detail = ", ".join(f"{k} {v:.2f} s" for k, v in p.items())
                print(f"run {run + 1} {name}: {s:.2f} s ({detail})", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    base = statistics.median(times["notebook"])
    print(f"\n| pipeline (medians of {args.runs}) | seconds | parts | ratio to the notebook |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        keys = parts[name][0].keys()
        detail = ", ".join(f"{k} {statistics.median(p[k] for p in parts[name]):.2f}" for k in keys)
        print(f"| {name} | {med:.2f} | {detail} | {base / med:.1f}x |")


if __name__ == "__main__":
    sys.exit(main())
