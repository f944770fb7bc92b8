"""The notebook's Shapley estimator as written (scikit-learn, one row at a time), timed on the same
model and test image as `cargo bench --bench explain`, next to layerscope's estimators in the same
run; prints the speed ratio.

16 pixels (300..315) x 200 iterations are timed and extrapolated to 784 (the estimator costs the
same per pixel). The model is target/bench_explain/model.npz (scripts/bench_explain_model.py
trains it when missing); the background is the training split, the image the first test row.

Usage (from the repository root): python3 scripts/bench_explain.py [--features 16] [--runs 3]
"""
import argparse
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import time

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelBinarizer

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="target/bench_explain/model.npz")
ap.add_argument("--features", type=int, default=16)
ap.add_argument("--runs", type=int, default=3)
args = ap.parse_args()

if not os.path.exists(args.model):
    os.makedirs(os.path.dirname(args.model), exist_ok=True)
    subprocess.run([sys.executable, "scripts/bench_explain_model.py", args.model], check=True)

z = np.load(args.model)
n_layers = sum(1 for k in z.files if k.startswith("coefs_"))
with gzip.open("data/mnist10k.tsv.gz", "rt") as f:
    table = np.loadtxt(f, delimiter="\t", skiprows=1, dtype=np.float64)
X = table[:, :-1] / 255.0
X_train = X[z["train_idx"]]
x = X[z["test_idx"][0]]

# The same weights in a fitted MLPClassifier, in float64 as the notebook's model.
nn = MLPClassifier(hidden_layer_sizes=tuple(z[f"coefs_{i}"].shape[1] for i in range(n_layers - 1)))
nn.coefs_ = [z[f"coefs_{i}"].astype(np.float64) for i in range(n_layers)]
nn.intercepts_ = [z[f"intercepts_{i}"].astype(np.float64) for i in range(n_layers)]
nn.n_layers_ = n_layers + 1
nn.n_outputs_ = nn.coefs_[-1].shape[1]
nn.out_activation_ = "softmax"
nn.classes_ = np.arange(nn.n_outputs_)
nn._label_binarizer = LabelBinarizer().fit(nn.classes_)
nn.n_features_in_ = X.shape[1]
label = int(np.argmax(nn.predict_proba([x])[0]))


def calculate_shapley_value(X, x, model, feature, label, iterations):
    """The notebook's estimator, as in seed_baseline.py."""
    value = 0; n_instances, n_features = X.shape
    other = list(range(feature)) + list(range(feature + 1, n_features))
    for _ in range(iterations):
        r = X[random.randint(0, n_instances - 1)]
        k = random.randint(0, n_features - 1)
        zo = np.copy(x)
        for f in random.sample(other, k): zo[f] = r[f]
        zd = np.copy(zo); zd[feature] = r[feature]
        value += model.predict_proba([zo])[0][label] - model.predict_proba([zd])[0][label]
    return value / iterations


def python_784_seconds():
    t = time.perf_counter()
    for f in range(300, 300 + args.features):
        calculate_shapley_value(X_train, x, nn, f, label, 200)
    return (time.perf_counter() - t) / args.features * 784


def rust():
    out = subprocess.run(
        ["cargo", "bench", "--bench", "explain", "--", "--quick", "--runs", "5", "--model", args.model],
        check=True, capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("BENCH_JSON "))
    return json.loads(line[len("BENCH_JSON "):])


random.seed(0)
py, rs = [], []
for _ in range(args.runs):  # interleaved, so both see the same machine load
    rs.append(rust())
    py.append(python_784_seconds())
py_s = statistics.median(py)
nb_s = statistics.median(r["notebook_s"] for r in rs)
pm_s = statistics.median(r["permutation_s"] for r in rs)
nb_cpu = statistics.median(r["notebook_cpu_s"] for r in rs)
pm_cpu = statistics.median(r["permutation_cpu_s"] for r in rs)
pp_s = statistics.median(r["permutation_prepared_s"] for r in rs)
pp_cpu = statistics.median(r["permutation_prepared_cpu_s"] for r in rs)
fx = float(nn.predict_proba([x])[0][label])
assert rs[-1]["class"] == label and abs(rs[-1]["output"] - fx) < 1e-4, (rs[-1], label, fx)
print(f"one MNIST test image, class {label} (f(x) = {fx:.4f} here and in Rust), background {len(X_train)} rows; "
      f"medians of {args.runs} interleaved runs; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
print("| estimator | seconds (784 pixels) | model evaluations | vs notebook in Python |")
print("|---|---|---|---|")
print(f"| notebook as written (Python, scikit-learn; {args.features} pixels timed, x 784/{args.features}) | {py_s:.1f} | 313600 | 1x |")
print(f"| notebook estimator, layerscope | {nb_s:.3f} (CPU {nb_cpu:.3f}) | {rs[-1]['notebook_evals']} | {py_s / nb_s:.0f}x |")
print(f"| permutation estimator, 200, layerscope | {pm_s:.3f} (CPU {pm_cpu:.3f}) | {rs[-1]['permutation_evals']} | {py_s / pm_s:.0f}x |")
print(f"| permutation estimator, 200, background prepared once | {pp_s:.3f} (CPU {pp_cpu:.3f}) | {rs[-1]['permutation_prepared_evals']} | {py_s / pp_s:.0f}x |")
print(json.dumps({"python_notebook_s": py, "rust": rs}))
