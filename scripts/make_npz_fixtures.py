#!/usr/bin/env python3
"""Write the model files under tests/fixtures/npz/ with numpy itself, and check that numpy reads
the one layerscope wrote.

Every fixture holds the same small network, 6 -> 5 -> 4 -> 3 units, laid out as scikit-learn's
MLPClassifier keeps it (coefs_i is fan_in x fan_out) and saved as a scikit-learn user would:

    model_f32.npz         numpy.savez, float32
    model_f64.npz         numpy.savez, float64 (scikit-learn's own dtype)
    model_compressed.npz  numpy.savez_compressed, float64
    model_fortran.npz     numpy.savez, float32, every coefs_i in Fortran (column-major) order
    model_zip64.npz       numpy.savez with zipfile's zip64 limits lowered to 0, so that the
                          central directory and its end record are zip64 too, as in an archive
                          over 4 GB (numpy already writes every local header as zip64)
    array_f32_3x2.npy     numpy.save of one float32 (3, 2) array: the header layerscope's .npy
                          entries are compared with

The values follow one formula, which tests/nn.rs computes on its own:

    coefs_i[r, c]    = ((7 * (r * fan_out + c)) % 23 - 11) / 8   (exact in float32)
    intercepts_i[c]  = 0.1 * (c + 1) * (i + 1)                   (float64; rounded in float32)

`layerscope_model_f32.npz` is the file layerscope's writer makes from model_f32.npz (the test
`npz_written_by_layerscope_is_pinned` in tests/nn.rs writes it when LAYERSCOPE_BLESS_FIXTURES=1
is set); this script then checks that numpy.load reads it back as the same float32 arrays, and
its `meta.json` entry (the activations) as JSON.

    python3 scripts/make_npz_fixtures.py           # write the numpy fixtures, check layerscope's
    python3 scripts/make_npz_fixtures.py --check   # only check layerscope's file
"""
import argparse
import contextlib
import json
import os
import sys
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "npz")
SIZES = [6, 5, 4, 3]


def model(dtype):
    arrays = {}
    for i, (fan_in, fan_out) in enumerate(zip(SIZES, SIZES[1:])):
        k = np.arange(fan_in * fan_out).reshape(fan_in, fan_out)
        arrays[f"coefs_{i}"] = (((7 * k) % 23 - 11) / 8.0).astype(dtype)
        arrays[f"intercepts_{i}"] = (0.1 * (np.arange(fan_out) + 1) * (i + 1)).astype(dtype)
    return arrays


@contextlib.contextmanager
def zip64_everywhere():
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT = zipfile.ZIP_FILECOUNT_LIMIT = 0
    try:
        yield
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved


def has_zip64_end_record(path):
    with open(path, "rb") as f:
        return b"PK\x06\x06" in f.read()


def write_fixtures():
    os.makedirs(OUT, exist_ok=True)
    path = lambda name: os.path.join(OUT, name)  # noqa: E731
    np.savez(path("model_f32.npz"), **model(np.float32))
    np.savez(path("model_f64.npz"), **model(np.float64))
    np.savez_compressed(path("model_compressed.npz"), **model(np.float64))
    fortran = {k: np.asfortranarray(v) for k, v in model(np.float32).items()}
    assert not fortran["coefs_0"].flags.c_contiguous
    np.savez(path("model_fortran.npz"), **fortran)
    with zip64_everywhere():
        np.savez(path("model_zip64.npz"), **model(np.float32))
    assert has_zip64_end_record(path("model_zip64.npz"))
    assert not has_zip64_end_record(path("model_f32.npz"))
    np.save(path("array_f32_3x2.npy"), model(np.float32)["coefs_0"][:3, :2].copy())
    for name in sorted(os.listdir(OUT)):
        print(f"{name:28} {os.path.getsize(path(name)):6} bytes")


def check_layerscope_file():
    path = os.path.join(OUT, "layerscope_model_f32.npz")
    if not os.path.exists(path):
        print(f"{path} is missing: run LAYERSCOPE_BLESS_FIXTURES=1 cargo test --test nn "
              "npz_written_by_layerscope_is_pinned, then this script again", file=sys.stderr)
        return 1
    expected = model(np.float32)
    with np.load(path, allow_pickle=False) as got:
        assert sorted(got.files) == sorted(list(expected) + ["meta.json"]), got.files
        for name, want in expected.items():
            have = got[name]
            assert have.dtype == np.float32 and have.shape == want.shape, (name, have.dtype, have.shape)
            assert np.array_equal(have, want), name
        # Not an .npy entry: numpy hands back its bytes.
        meta = json.loads(got["meta.json"])
        assert meta["activation"] == "relu" and meta["out_activation"] == "softmax", meta
    print(f"numpy {np.__version__} reads layerscope_model_f32.npz: {len(expected)} float32 arrays, "
          f"values equal to model_f32.npz, and meta.json as JSON: {meta}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only check layerscope's file with numpy")
    args = p.parse_args()
    if not args.check:
        write_fixtures()
    return check_layerscope_file()


if __name__ == "__main__":
    sys.exit(main())
