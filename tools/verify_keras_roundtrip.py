#!/usr/bin/env python3
"""Checks that Keras loads the checkpoints Graft writes, with outputs equal to Graft's.

  .venv/bin/python tools/verify_keras_roundtrip.py [--graft PATH] [--out DIR]

For every parity fixture model (Tests/Fixtures/parity) and every `graft zoo` architecture, Graft writes the
model (`graft export`, or `graft zoo`), then Keras 3 `load_model` and tf-keras `load_model` load the file,
and their `predict` is compared with `graft predict` on the same input: pass when
max|keras - graft| <= 1e-5 * max(1, max|graft|). Prints one line per case and `N passed, N failed`.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARITY = os.path.join(ROOT, "Tests", "Fixtures", "parity")
ZOO = [("lenet5", ["--input-shape", "28,28,1"]), ("alexnet", []), ("vgg16", ["--no-top"]), ("resnet50", []),
       ("mobilenetv2", ["--input-shape", "96,96,3", "--classes", "10"])]


def graft(args, graft_bin):
    p = subprocess.run([graft_bin] + args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip() or p.stdout.strip())
    return p.stdout


def graft_predict(graft_bin, model, x, tmp):
    xin, yout = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xin, x)
    graft(["predict", model, "--input", xin, "--output", yout], graft_bin)
    return np.load(yout)


def keras_loaders():
    import keras
    import tf_keras
    return [("keras3", lambda p: keras.models.load_model(p, compile=False)),
            ("tf-keras", lambda p: tf_keras.models.load_model(p, compile=False))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graft", default=os.path.join(ROOT, ".build", "release", "graft"))
    ap.add_argument("--out", help="keep the written files here")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="graft-roundtrip-")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    cases = []  # (label, file written by graft, input)
    index = os.path.join(PARITY, "index.json")
    if os.path.exists(index) and "export" in graft(["--help"], args.graft):
        for c in json.load(open(index))["cases"]:
            src = os.path.join(PARITY, c["files"]["h5"])
            x = np.load(os.path.join(PARITY, c["input"]))
            dst = os.path.join(out, f"{c['name']}.h5")
            graft(["export", src, "--output", dst], args.graft)
            cases.append((f"export {c['name']}", dst, x))
    for name, extra in ZOO:
        dst = os.path.join(out, f"zoo_{name}.h5")
        graft(["zoo", name, "--output", dst, "--seed", "3"] + extra, args.graft)
        shape = [int(v) for v in extra[extra.index("--input-shape") + 1].split(",")] if "--input-shape" in extra else None
        cases.append((f"zoo {name}", dst, shape))
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for label, path, x in cases:
            for flavour, load in keras_loaders():
                try:
                    model = load(path)
                    if not isinstance(x, np.ndarray):
                        shape = x or list(model.input_shape[1:])
                        x = rng.standard_normal([2] + shape).astype(np.float32)
                    ref = graft_predict(args.graft, path, x, tmp)
                    got = np.asarray(model(x, training=False))
                    err = float(np.max(np.abs(got.astype(np.float64) - ref)))
                    tol = 1e-5 * max(1.0, float(np.max(np.abs(ref))))
                    ok = got.shape == ref.shape and err <= tol
                    detail = f"max abs error {err:.3g} (tolerance {tol:.3g})"
                except Exception as e:  # a load failure is a failed case, reported on one line
                    ok, detail = False, f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                passed += ok
                failed += not ok
                print(f"{'ok  ' if ok else 'FAIL'}  {label} [{flavour} load_model]: {detail}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
