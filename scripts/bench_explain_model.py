"""Train the benchmark model for `cargo bench --bench explain` and `scripts/bench_explain.py`.

scikit-learn MLPClassifier(512, 256), ReLU, on the on-board digits scaled to [0, 1] (as layerscope
does), split as the notebook does (`train_test_split(test_size=0.5, random_state=0)`). Writes an
.npz with coefs_0.., intercepts_0.. (float32, fan_in x fan_out as sklearn) and the split's row
indices into data/mnist10k.tsv.gz, so Rust and Python explain the same model and image.

Usage: python3 scripts/bench_explain_model.py OUT.npz [max_iter]
"""
import gzip
import sys
import time

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

out = sys.argv[1]
max_iter = int(sys.argv[2]) if len(sys.argv) > 2 else 30
with gzip.open("data/mnist10k.tsv.gz", "rt") as f:
    table = np.loadtxt(f, delimiter="\t", skiprows=1, dtype=np.float64)
X, y = table[:, :-1] / 255.0, table[:, -1].astype(np.int64)
idx = np.arange(len(y))
train_idx, test_idx = train_test_split(idx, test_size=0.5, random_state=0)
t = time.perf_counter()
nn = MLPClassifier(hidden_layer_sizes=(512, 256), random_state=0, max_iter=max_iter)
nn.fit(X[train_idx], y[train_idx])
arrays = {f"coefs_{i}": c.astype(np.float32) for i, c in enumerate(nn.coefs_)}
arrays.update({f"intercepts_{i}": b.astype(np.float32) for i, b in enumerate(nn.intercepts_)})
arrays["train_idx"] = train_idx.astype(np.int64)
arrays["test_idx"] = test_idx.astype(np.int64)
np.savez(out, **arrays)
print(f"trained in {time.perf_counter() - t:.1f} s, {nn.n_iter_} epochs, "
      f"test accuracy {nn.score(X[test_idx], y[test_idx]):.4f}; wrote {out}", file=sys.stderr)
