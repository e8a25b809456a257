#!/usr/bin/env python3
"""Checks `graft extract` output with NumPy, h5py and pandas: writes features of one model in all four formats
and verifies they hold the same rows, labels and ids.

  .venv/bin/python tools/check_features.py MODEL LAYER DATA [--graft PATH]
Prints one line per format and `N passed, N failed`.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("layer")
    ap.add_argument("data")
    ap.add_argument("--graft", default=os.path.join(ROOT, ".build", "release", "graft"))
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="graft-features-")
    for ext in ("npy", "npz", "h5", "csv"):
        subprocess.run([args.graft, "extract", args.model, "--layer", args.layer, "--data", args.data,
                        "--output", os.path.join(out, f"features.{ext}"), "--quiet"], check=True)
    ref = np.load(os.path.join(out, "features.npy"))
    labels = np.load(os.path.join(out, "labels.npy"))
    ids = open(os.path.join(out, "ids.txt")).read().split("\n")[:-1]
    z = np.load(os.path.join(out, "features.npz"))
    h = h5py.File(os.path.join(out, "features.h5"))
    c = pd.read_csv(os.path.join(out, "features.csv"), dtype={"id": str})
    checks = {
        "npy": ref.dtype == np.float32 and ref.shape[0] == len(labels) == len(ids),
        "npz": np.array_equal(z["features"], ref) and np.array_equal(z["labels"], labels) and list(z["ids"]) == ids,
        "h5": np.array_equal(h["features"][:], ref) and np.array_equal(h["labels"][:], labels)
              and [s.decode() for s in h["ids"][:]] == ids,
        "csv": np.allclose(c.iloc[:, 2:].values, ref, rtol=1e-6, atol=1e-7) and np.array_equal(c["label"].values, labels)
               and list(c["id"]) == ids,
    }
    for k, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'}  {k}: {ref.shape[0]} rows x {ref.shape[1]} features")
    passed = sum(checks.values())
    print(f"{passed} passed, {len(checks) - passed} failed")
    sys.exit(0 if passed == len(checks) else 1)


if __name__ == "__main__":
    main()
