#!/usr/bin/env python3
"""Side-by-side t-SNE benchmark: layerscope (Rust) vs scikit-learn vs openTSNE.

Needs `pip install numpy scikit-learn openTSNE`. Run from the repository root:

    python3 scripts/bench_tsne.py                 # all cases at perplexity 3 and 30, median of 3
    python3 scripts/bench_tsne.py --runs 1 --cases layer2,pixels10k --perplexities 30
    python3 scripts/bench_tsne.py --skip openTSNE  # peers to leave out
    python3 scripts/bench_tsne.py --cases pixels70k --perplexities 30 --runs 1 --skip sklearn
    python3 scripts/bench_tsne.py --cases pixels10k --perplexities 30 --runs 1 --skip sklearn,openTSNE \
        --variants bh:exact,fft:approximate,auto   # layerscope's repulsions and neighbours side by side

It makes the real inputs from the on-board digits (data/mnist10k.tsv.gz): an sklearn
MLPClassifier((512, 256), random_state=0) trained on pixels/255 of a 50/50 split
(train_test_split(test_size=0.5, random_state=0)); the activations of layers 2 and 3 (ReLU) and
4 (softmax output) for the first 1,500 training images; 10,000 raw pixel rows (/255); and, for
timing only, 70,000 rows made of those 10,000 repeated 7 times with small noise on the inked
pixels (N(0, 0.02), clipped to [0, 1]; quality is judged on the 10,000 distinct digits). The
inputs are cached under $CARGO_TARGET_DIR/bench_tsne/ (target/bench_tsne/ without it;
delete it to rebuild). Each input is embedded, at
each perplexity asked for, by sklearn TSNE(perplexity=P, learning_rate='auto', init='random'),
openTSNE (perplexity P, 2 jobs, its defaults otherwise) and layerscope (`cargo bench --bench tsne -- --input ...`, defaults =
scikit-learn's semantics), each `--runs` times; the table shows median seconds, the speed-up of
layerscope, CPU seconds (all threads; OpenMP spin-waiting counts too), the KL each tool
reports for its own P, and 10-NN preservation and 10-NN accuracy computed here the same way for
all three. Wall times on a shared machine swing with its load: compare ratios within one run.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Cargo's target folder: CARGO_TARGET_DIR when set (relative to the checkout, as cargo reads it),
# else the checkout's target/.
TARGET = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target")
CACHE = os.path.join(TARGET, "bench_tsne")


def load_digits():
    path = os.path.join(ROOT, "data", "mnist10k.tsv.gz")
    with gzip.open(path, "rt") as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = np.loadtxt(f, delimiter="\t", dtype=np.float32)
    target = header.index("target")
    y = rows[:, target].astype(np.uint8)
    x = np.delete(rows, target, axis=1) / 255.0
    return x.astype(np.float32), y


def make_inputs():
    """Returns {name: (array float32, labels uint8)}, cached as .npy files."""
    names = ["layer2", "layer3", "layer4", "pixels10k"]
    files = {n: os.path.join(CACHE, n + ".npy") for n in names}
    labels = {n: os.path.join(CACHE, n + ".labels.npy") for n in names}
    if all(os.path.exists(files[n]) and os.path.exists(labels[n]) for n in names):
        return {n: (np.load(files[n]), np.load(labels[n])) for n in names}
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    os.makedirs(CACHE, exist_ok=True)
    x, y = load_digits()
    x_train, _x_test, y_train, _y_test = train_test_split(x, y, test_size=0.5, random_state=0)
    print("training MLPClassifier((512, 256)) on %d images..." % len(x_train), file=sys.stderr)
    mlp = MLPClassifier((512, 256), random_state=0).fit(x_train, y_train)
    sub, sub_y = x_train[:1500], y_train[:1500]
    h1 = np.maximum(sub @ mlp.coefs_[0] + mlp.intercepts_[0], 0)
    h2 = np.maximum(h1 @ mlp.coefs_[1] + mlp.intercepts_[1], 0)
    logits = h2 @ mlp.coefs_[2] + mlp.intercepts_[2]
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    out /= out.sum(axis=1, keepdims=True)
    inputs = {
        "layer2": (h1, sub_y),
        "layer3": (h2, sub_y),
        "layer4": (out, sub_y),
        "pixels10k": (x[:10000], y[:10000]),
    }
    for n, (a, lab) in inputs.items():
        np.save(files[n], np.ascontiguousarray(a, dtype=np.float32))
        np.save(labels[n], np.asarray(lab, dtype=np.uint8))
    return {n: (np.load(files[n]), np.load(labels[n])) for n in names}


def pixels70k(inputs):
    """70,000 x 784 for timing: the 10,000 digits 7 times, copies 2-7 with noise on inked pixels."""
    path = os.path.join(CACHE, "pixels70k.npy")
    x, y = inputs["pixels10k"]
    if not os.path.exists(path):
        rng = np.random.default_rng(0)
        parts = [x] + [np.clip(x + rng.normal(0, 0.02, x.shape).astype(np.float32) * (x > 0), 0, 1) for _ in range(6)]
        np.save(path, np.vstack(parts).astype(np.float32))
    return np.load(path), np.tile(y, 7)


def knn_indices(a, k):
    """Exact k nearest neighbours (self excluded) by squared Euclidean distance, in float64."""
    a = np.asarray(a, dtype=np.float64)
    a = a - a.mean(axis=0)
    norms = (a * a).sum(axis=1)
    out = np.empty((len(a), k), dtype=np.int64)
    for s in range(0, len(a), 1000):
        d = norms[s : s + 1000, None] + norms[None, :] - 2 * a[s : s + 1000] @ a.T
        d[np.arange(d.shape[0]), np.arange(s, s + d.shape[0])] = np.inf
        idx = np.argpartition(d, k, axis=1)[:, :k]
        order = np.take_along_axis(d, idx, axis=1).argsort(axis=1, kind="stable")
        out[s : s + 1000] = np.take_along_axis(idx, order, axis=1)
    return out


def preservation(high_knn, low, k=10):
    low_knn = knn_indices(low, k)
    return float(np.mean([len(set(h) & set(l)) / k for h, l in zip(high_knn, low_knn)]))


def knn_accuracy(low, labels, k=10):
    nb = knn_indices(low, k)
    votes = np.zeros((len(low), 256), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(len(low)), k), labels[nb].ravel()), 1)
    return float(np.mean(votes.argmax(axis=1) == labels))


def run_sklearn(x, seed, perplexity):
    from sklearn.manifold import TSNE

    t, c = time.perf_counter(), time.process_time()
    tsne = TSNE(n_components=2, perplexity=perplexity, learning_rate="auto", init="random", random_state=seed)
    emb = tsne.fit_transform(x)
    return time.perf_counter() - t, time.process_time() - c, emb, float(tsne.kl_divergence_)


def run_opentsne(x, seed, perplexity):
    from openTSNE import TSNE

    t, c = time.perf_counter(), time.process_time()
    emb = TSNE(perplexity=perplexity, n_jobs=2, random_state=seed).fit(x)
    return time.perf_counter() - t, time.process_time() - c, np.asarray(emb), float(emb.kl_divergence)


def cpu_model():
    """The CPU's model name and its widest SIMD features, for the table's header."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return "unknown CPU"
    name = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "unknown CPU")
    flags = next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), [])
    simd = [f for f in ("avx2", "fma", "avx512f") if f in flags]
    return "%s, %d logical CPUs, %s" % (name, os.cpu_count(), " ".join(simd) or "no AVX2")


def rust_binary():
    """Builds the bench binary once and returns its path."""
    out = subprocess.run(
        ["cargo", "bench", "--bench", "tsne", "--no-run", "--message-format=json"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "tsne" and msg.get("executable"):
            return msg["executable"]
    raise RuntimeError("could not find the tsne bench executable")


def run_layerscope(binary, name, runs, seed, perplexity, variant="auto"):
    """`variant` is METHOD[:NEIGHBOURS] of the bench binary (auto, exact, bh, fft; auto, exact,
    approximate)."""
    method, _, neighbours = variant.partition(":")
    src = os.path.join(CACHE, name + ".npy")
    dst = os.path.join(CACHE, name + ".layerscope.npy")
    res = subprocess.run(
        [binary, "--input", src, "--out", dst, "--runs", str(runs), "--seed", str(seed), "--perplexity", str(perplexity),
         "--method", method or "auto", "--neighbours", neighbours or "auto"],
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads(res.stdout.strip().splitlines()[-1])
    return report["seconds"], report.get("cpu_median", float("nan")), np.load(dst), report["kl"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--runs-large", type=int, default=None, help="runs for the 10,000-point case (default: --runs)")
    ap.add_argument("--cases", default="layer2,layer3,layer4,pixels10k", help="also: pixels70k")
    ap.add_argument("--perplexities", default="3,30")
    ap.add_argument("--skip", default="", help="comma list of peers to skip: sklearn,openTSNE")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default="auto", help="layerscope runs, comma list of METHOD[:NEIGHBOURS], "
                    "METHOD in auto,bh,fft,exact and NEIGHBOURS in auto,exact,approximate (the first is the reference of the ratios)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    inputs = make_inputs()
    binary = rust_binary()
    if "pixels70k" in args.cases:
        inputs["pixels70k"] = pixels70k(inputs)
    print("CPU: %s; load average at the start: %s" % (cpu_model(), " ".join("%.2f" % v for v in os.getloadavg())))
    rows = []
    for perplexity in [float(p) for p in args.perplexities.split(",")]:
        for name in args.cases.split(","):
            x, labels = inputs[name]
            runs = args.runs_large if (len(x) > 5000 and args.runs_large) else args.runs
            # Preservation of 70,000 points costs minutes in numpy; it is judged on 10,000.
            high_knn = knn_indices(x, 10) if len(x) <= 10000 else None
            results = {}
            variants = args.variants.split(",")
            for variant in variants:
                times, cpu, emb, kl = run_layerscope(binary, name, runs, args.seed, perplexity, variant)
                tool = "layerscope" if variant == "auto" else "layerscope " + variant
                results[tool] = (float(np.median(times)), cpu, kl, emb)
            reference = results["layerscope" if variants[0] == "auto" else "layerscope " + variants[0]][0]
            for peer, fn in (("sklearn", run_sklearn), ("openTSNE", run_opentsne)):
                if peer in skip:
                    continue
                ts, cs = [], []
                for r in range(runs):
                    t, c, emb, kl = fn(x, args.seed + r, perplexity)
                    ts.append(t)
                    cs.append(c)
                results[peer] = (float(np.median(ts)), float(np.median(cs)), kl, emb)
            for tool, (sec, cpu, kl, emb) in results.items():
                pres = preservation(high_knn, emb) if high_knn is not None else float("nan")
                acc = knn_accuracy(emb, labels) if high_knn is not None else float("nan")
                rows.append((name, perplexity, x.shape, tool, runs, sec, cpu, reference, kl, pres, acc))
                r = rows[-1]
                print("%-10s p%-4g %-11s %-24s %8.3f s (cpu %7.2f s)  x%6.1f  KL %.3f  10-NN %.3f  acc %.3f" % (r[0], r[1], "%dx%d" % r[2], r[3], r[5], r[6], r[5] / r[7], r[8], r[9], r[10]), file=sys.stderr, flush=True)
    print()
    print("load average at the end: %s" % " ".join("%.2f" % v for v in os.getloadavg()))
    print("| input | perplexity | n x d | tool | runs | wall s (median) | CPU s (median) | wall / layerscope | KL | 10-NN preservation | 10-NN accuracy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, perplexity, shape, tool, runs, sec, cpu, ls, kl, pres, acc in rows:
        print("| %s | %g | %d x %d | %s | %d | %.3f | %.2f | %.1fx | %.3f | %.3f | %.3f |" % (name, perplexity, shape[0], shape[1], tool, runs, sec, cpu, sec / ls, kl, pres, acc))


if __name__ == "__main__":
    main()
