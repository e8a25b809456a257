#!/usr/bin/env python3
"""Runs `graft predict` on Keras-produced fixtures and reports the max error against Keras's outputs.

  .venv/bin/python tools/check_parity.py [DIR] [--graft PATH]

DIR is Tests/Fixtures/parity (every case and every file format in its index.json) or a folder written by
`tools/make_fixtures.py --full DIR` (NAME.h5, NAME.keras, NAME.weights.h5 as they exist, with NAME_input.npy /
NAME_output.npy; tf-keras's files are named tfk_NAME). A case passes when
max|graft - keras| <= 1e-4 * max(1, max|keras|). Prints one line per case and `N passed, N failed`.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_case(graft, model, x_path, y_path, architecture=None, layer=None):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "y.npy")
        cmd = [graft, "predict", model, "--input", x_path, "--output", out, "--batch", "8"]
        if architecture:
            cmd += ["--architecture", architecture]
        if layer:
            cmd += ["--layer", layer]
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.time() - t0
        if p.returncode != 0:
            return None, p.stderr.strip() or p.stdout.strip(), dt
        got = np.load(out)
    ref = np.load(y_path)
    if got.shape != ref.shape:
        return None, f"shape {got.shape} vs keras {ref.shape}", dt
    err = float(np.max(np.abs(got.astype(np.float64) - ref)))
    return err, None, dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", default=os.path.join(ROOT, "Tests", "Fixtures", "parity"))
    ap.add_argument("--graft", default=os.path.join(ROOT, ".build", "release", "graft"))
    args = ap.parse_args()
    cases = []
    index = os.path.join(args.dir, "index.json")
    if os.path.exists(index):
        for c in json.load(open(index))["cases"]:
            files = c["files"]
            for fmt, f in files.items():
                if fmt.endswith(".json"):
                    arch, model = f, files.get("weights-only.h5")
                elif fmt in ("weights.h5",):
                    arch, model = files.get("keras"), f
                elif fmt == "weights-only.h5":
                    arch, model = files["h5"], f
                else:
                    arch, model = None, f
                cases.append((f"{c['name']} [{fmt}]", os.path.join(args.dir, model),
                              os.path.join(args.dir, arch) if arch else None,
                              os.path.join(args.dir, c["input"]), os.path.join(args.dir, c["output"])))
    else:
        for f in sorted(os.listdir(args.dir)):
            if f.endswith("_input.npy"):
                name = f[: -len("_input.npy")]
                # Every format written for the model: .h5, .keras, and .weights.h5 with the .keras as architecture.
                loads = [(fmt, os.path.join(args.dir, f"{name}{ext}"), arch) for fmt, ext, arch in (
                    ("h5", ".h5", None), ("keras", ".keras", None),
                    ("weights.h5", ".weights.h5", os.path.join(args.dir, f"{name}.keras")))
                    if os.path.exists(os.path.join(args.dir, f"{name}{ext}"))]
                for fmt, model, arch in loads:
                    cases.append((f"{name} [{fmt}]", model, arch, os.path.join(args.dir, f),
                                  os.path.join(args.dir, f"{name}_output.npy")))
                    for g in sorted(os.listdir(args.dir)):
                        if g.startswith(f"{name}_output@"):
                            layer = g[len(f"{name}_output@"):-len(".npy")]
                            cases.append((f"{name} [{fmt}] @{layer}", model, arch, os.path.join(args.dir, f),
                                          os.path.join(args.dir, g), layer))
    passed = failed = 0
    for label, model, arch, x, y, *layer in cases:
        err, problem, dt = run_case(args.graft, model, x, y, arch, layer[0] if layer else None)
        scale = max(1.0, float(np.max(np.abs(np.load(y)))))
        if problem is None and err <= 1e-4 * scale:
            passed += 1
            print(f"ok    {label}: max abs error {err:.3g} (tolerance {1e-4 * scale:.3g}), {dt:.1f} s")
        else:
            failed += 1
            print(f"FAIL  {label}: " + (problem if problem else f"max abs error {err:.3g} > {1e-4 * scale:.3g}"))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
