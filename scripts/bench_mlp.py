#!/usr/bin/env python3
"""layerscope's MLP training against scikit-learn's MLPClassifier, side by side in one run.

Both train the notebook's network (784 -> 512 -> 256 -> 10, Adam, batch 200, alpha 1e-4,
tol 1e-4, n_iter_no_change 10, at most 200 epochs) on the same rows: the on-board digits scaled
to [0, 1], layerscope's 50/50 split with seed 0 (written by the Rust benchmark, so both see the
same split). Runs alternate (scikit-learn float64, scikit-learn float32, layerscope) so that
drift in a shared machine's speed hits all of them alike; the table shows medians.

    python3 scripts/bench_mlp.py [--runs 3] [--max-epochs 200] [--threads N] [--whole-epochs 15]

After the per-epoch table, the whole `train` process against scikit-learn's fit of the same
epochs (`--whole-epochs N`, 0 to skip): `layerscope train --epochs N` (release build: data
loading, start-up, the per-epoch test evaluation and saving included) beside `MLPClassifier(
max_iter=N).fit` in float32 (fit alone: no interpreter start-up or data loading counted), wall
and CPU seconds of each, runs alternating, medians.

`--threads N` limits both sides to N threads (OPENBLAS_NUM_THREADS and RAYON_NUM_THREADS);
by default both use every core.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, when set, make numpy's OpenBLAS pick slower kernels on
this machine: the script drops both from its own environment (and only there) before numpy
loads, so scikit-learn runs at its best.
"""
import os
import sys

_SLOW = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _threads_arg():
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return None


_THREADS = _threads_arg()
if any(k in os.environ for k in _SLOW) or (
    _THREADS and os.environ.get("OPENBLAS_NUM_THREADS") != _THREADS
):
    env = {k: v for k, v in os.environ.items() if k not in _SLOW}
    if _THREADS:
        env["OPENBLAS_NUM_THREADS"] = env["RAYON_NUM_THREADS"] = _THREADS
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def layerscope(args, extra):
    cmd = ["cargo", "bench", "--quiet", "--bench", "mlp", "--", "--max-epochs", str(args.max_epochs)] + extra
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--threads", type=int, default=None, help="threads for both sides (default: all cores)")
    p.add_argument("--whole-epochs", type=int, default=15,
                   help="epochs of the whole-process comparison (0: skip it)")
    args = p.parse_args()

    subprocess.run(["cargo", "bench", "--bench", "mlp", "--no-run"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="bench_mlp_")
    split_path = os.path.join(tmp, "split.npz")
    layerscope(args, ["--runs", "0", "--dump-split", split_path])
    s = np.load(split_path)
    Xtr, Xte = s["X_train"], s["X_test"]
    ytr, yte = s["y_train"].astype(np.int64), s["y_test"].astype(np.int64)
    n = len(ytr)
    print(f"split: {n} train / {len(yte)} test rows, {Xtr.shape[1]} features; "
          f"numpy {np.__version__}, threads: {args.threads or 'all cores'}", flush=True)

    rows = {"scikit-learn float64": [], "scikit-learn float32": [], "layerscope": []}
    peaks = []
    for r in range(args.runs):
        for name, dtype in (("scikit-learn float64", np.float64), ("scikit-learn float32", np.float32)):
            X, Xt = Xtr.astype(dtype), Xte.astype(dtype)
            m = MLPClassifier(hidden_layer_sizes=(512, 256), random_state=0, max_iter=args.max_epochs)
            t = time.perf_counter()
            m.fit(X, ytr)
            sec = time.perf_counter() - t
            rows[name].append(dict(seconds=sec, epochs=m.n_iter_, acc=float(m.score(Xt, yte)), loss=float(m.loss_)))
            print(f"run {r + 1} {name}: {m.n_iter_} epochs, {sec / m.n_iter_:.4f} s/epoch, "
                  f"test accuracy {rows[name][-1]['acc']:.4f}", flush=True)
        out = os.path.join(tmp, f"layerscope_{r}.json")
        layerscope(args, ["--runs", "1", "--quiet", "--json", out])
        res = json.load(open(out))["results"][0]
        run = res["runs"][0]
        peaks.append(res["gemm_peak_gflops"])
        flops = res["flops_per_sample"]
        effective = res.get("effective_flops_per_sample", flops)
        rows["layerscope"].append(dict(seconds=run["train_seconds"], epochs=run["epochs"],
                                       acc=run["test_accuracy"], loss=run["final_loss"]))
        print(f"run {r + 1} layerscope: {run['epochs']} epochs, {run['train_seconds'] / run['epochs']:.4f} s/epoch, "
              f"test accuracy {run['test_accuracy']:.4f}, GEMM peak {res['gemm_peak_gflops']:.1f} GFLOP/s", flush=True)

    def med(name, f):
        return statistics.median(f(x) for x in rows[name])

    print()
    print(f"medians of {args.runs} runs; GEMM peak (f32, 2048^3, best of 7 per run, best run, "
          f"{args.threads or 'all'} threads, layerscope's routine): "
          f"{max(peaks):.1f} GFLOP/s; {flops / 1e6:.2f} MFLOP per training sample dense, "
          f"{effective / 1e6:.2f} MFLOP done by layerscope's sparse first layer")
    print(f"{'':22} {'s/epoch':>8} {'samples/s':>10} {'epochs':>7} {'test acc':>9} {'GFLOP/s':>8}")
    summary = {}
    for name in rows:
        spe = med(name, lambda x: x["seconds"] / x["epochs"])
        sps = med(name, lambda x: n * x["epochs"] / x["seconds"])
        summary[name] = (sps, med(name, lambda x: x["acc"]))
        print(f"{name:22} {spe:8.4f} {sps:10.0f} {med(name, lambda x: x['epochs']):7.0f} "
              f"{summary[name][1]:9.4f} {sps * flops / 1e9:8.1f}  ({100 * sps * flops / 1e9 / max(peaks):.0f}% of peak)"
              + (f"; effective {sps * effective / 1e9:.1f} GFLOP/s ({100 * sps * effective / 1e9 / max(peaks):.0f}%)"
                 if name == "layerscope" else ""))
    # A shared host's interference shows as a spread between runs of the same program: numpy's
    # threads slow down 3-5x beside another process, which inflates the ratio. Say so.
    for name in rows:
        per_epoch = [x["seconds"] / x["epochs"] for x in rows[name]]
        if len(per_epoch) > 1 and max(per_epoch) > 2 * min(per_epoch):
            print(f"WARNING: {name}'s runs differ by more than 2x ({min(per_epoch):.4f} to "
                  f"{max(per_epoch):.4f} s/epoch): the host was busy; the ratios below are "
                  f"unreliable (run again on a quiet machine, or with more --runs)")
    ls_sps, ls_acc = summary["layerscope"]
    for name in ("scikit-learn float64", "scikit-learn float32"):
        sps, acc = summary[name]
        verdict = "met" if ls_sps >= 3 * sps and ls_acc >= acc - 0.005 else "NOT met"
        print(f"layerscope / {name}: {ls_sps / sps:.2f}x samples/s, accuracy {ls_acc - acc:+.4f} "
              f"(goal >= 3x and >= -0.005: {verdict})")
    if args.whole_epochs > 0:
        whole_process(args, Xtr, ytr, tmp)


def whole_process(args, Xtr, ytr, tmp):
    """`layerscope train --epochs N` as a process against scikit-learn's float32 fit of N epochs."""
    import resource
    import warnings

    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "layerscope"], cwd=ROOT, check=True)
    exe = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "layerscope")
    n = args.whole_epochs
    rows = {"layerscope train": [], "scikit-learn float32 fit": []}
    X = Xtr.astype(np.float32)
    for r in range(args.runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run([exe, "train", "--epochs", str(n), "--save", os.path.join(tmp, "whole.npz")],
                              cwd=ROOT, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        # The epochs' own seconds, from the per-epoch lines on stderr ("... 0.07 s  71000 samples/s").
        epoch_s = sum(float(line.split(" s  ")[0].split()[-1])
                      for line in proc.stderr.splitlines() if line.startswith("epoch "))
        rows["layerscope train"].append(dict(wall=wall, cpu=cpu, epochs=epoch_s))
        m = MLPClassifier(hidden_layer_sizes=(512, 256), random_state=0, max_iter=n)
        c, t = time.process_time(), time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached
            m.fit(X, ytr)
        rows["scikit-learn float32 fit"].append(dict(wall=time.perf_counter() - t, cpu=time.process_time() - c))
        print(f"whole run {r + 1}: layerscope train {wall:.2f} s ({cpu:.2f} CPU-s; epochs {epoch_s:.2f} s), "
              f"scikit-learn fit {rows['scikit-learn float32 fit'][-1]['wall']:.2f} s "
              f"({rows['scikit-learn float32 fit'][-1]['cpu']:.2f} CPU-s)", flush=True)
    med = lambda name, k: statistics.median(x[k] for x in rows[name])  # noqa: E731
    lw, lc = med("layerscope train", "wall"), med("layerscope train", "cpu")
    sw, sc = med("scikit-learn float32 fit", "wall"), med("scikit-learn float32 fit", "cpu")
    share = med("layerscope train", "epochs") / lw
    print()
    print(f"whole process, {n} epochs, medians of {args.runs} runs (load average {os.getloadavg()[0]:.1f}):")
    print(f"  layerscope train --epochs {n}:  {lw:.2f} s wall, {lc:.2f} CPU-s (the epochs' own seconds: {100 * share:.0f}%)")
    print(f"  scikit-learn float32 fit:     {sw:.2f} s wall, {sc:.2f} CPU-s")
    verdict = "met" if sw >= 2 * lw else "NOT met"
    print(f"  ratio: {sw / lw:.2f}x wall, {sc / lc:.2f}x CPU (goal >= 2x wall: {verdict})")


if __name__ == "__main__":
    main()
