#!/usr/bin/env python3
"""Checks that Keras loads the checkpoints Graft writes, with outputs equal to Graft's.

  .venv/bin/python tools/verify_keras_roundtrip.py [--graft PATH] [--out DIR]

For every parity fixture model (Tests/Fixtures/parity), every `graft zoo` architecture and a LeNet-5 that Graft
fine-tuned on Fashion-MNIST, Graft writes `.h5`, `.weights.h5` and `.keras` files; then Keras 3 `load_model`
(`.h5`, `.keras`), tf-keras `load_model` (`.h5`) and Keras 3 `load_weights` (`.weights.h5`, into the model from
Graft's `.keras`) load them, and their outputs are compared with `graft predict` on the same input: pass when
max|keras - graft| <= 1e-5 * max(1, max|graft|). A write that Graft refuses because Keras cannot express the
model in that format is reported as skipped, and so is a load that fails where Keras's own file of the same parity
model (written by Keras) fails too. Prints one line per case and `N passed, N failed, N skipped`.
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
       ("mobilenetv2", ["--input-shape", "96,96,3", "--classes", "10"]), ("convnet", []),
       ("tiled", ["--tiles", "1", "--input-shape", "28,28,1"])]   # tiles 1×1: written as Conv2D


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


def h5_config(path):
    """The model_config of an .h5 file, as JSON text written with spaces after separators."""
    import h5py
    with h5py.File(path, "r") as f:
        text = f.attrs.get("model_config", "")
    text = text.decode() if isinstance(text, bytes) else str(text)
    return json.dumps(json.loads(text)) if text else ""


def keras_loaders():
    """Keras 3 and tf-keras `load_model`, told the classes keras.applications defines (ConvNeXt's LayerScale and
    StochasticDepth, InceptionResNetV2's CustomScaleLayer), as a Keras user must for Keras's own .h5 files of
    those models."""
    import keras
    import tf_keras
    from keras.src.applications import convnext, inception_resnet_v2
    from tf_keras.src.applications import convnext as tf_convnext
    k3_objects = {"LayerScale": convnext.LayerScale, "StochasticDepth": convnext.StochasticDepth,
                  "CustomScaleLayer": inception_resnet_v2.CustomScaleLayer}
    tf_objects = {"LayerScale": tf_convnext.LayerScale, "StochasticDepth": tf_convnext.StochasticDepth}
    return [("keras3", lambda p: keras.models.load_model(p, compile=False, custom_objects=k3_objects)),
            ("tf-keras", lambda p: tf_keras.models.load_model(p, compile=False, custom_objects=tf_objects))]


# Keras 3 classes and arguments tf-keras lacks: a tf-keras load of a file holding them is skipped.
KERAS3_ONLY = ("hard_swish", "RMSNormalization", "rms_scaling", "CustomScaleLayer", "celu", "hard_tanh", "hard_shrink",
               "soft_shrink", "tanh_shrink", "log_sigmoid", "sparse_plus", "squareplus", "log_softmax", "sparsemax", "glu")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graft", default=os.path.join(ROOT, ".build", "release", "graft"))
    ap.add_argument("--out", help="keep the written files here")
    ap.add_argument("--only", help="comma-separated parts of case names: check only the cases whose name holds one")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="graft-roundtrip-")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    cases = []  # (label, source checkpoint, input or input shape)
    originals = {}  # label -> {".h5": Keras's own file, ".keras": …}: what Keras wrote for the same model
    for c in json.load(open(os.path.join(PARITY, "index.json")))["cases"]:
        cases.append((c["name"], os.path.join(PARITY, c["files"]["h5"]), np.load(os.path.join(PARITY, c["input"]))))
        originals[c["name"]] = {ext: os.path.join(PARITY, c["files"][fmt]) for ext, fmt in ((".h5", "h5"), (".keras", "keras"))
                                if fmt in c["files"]}
    for name, extra in ZOO:
        dst = os.path.join(out, f"zoo_{name}.h5")
        graft(["zoo", name, "--output", dst, "--seed", "3"] + extra, args.graft)
        shape = [int(v) for v in extra[extra.index("--input-shape") + 1].split(",")] if "--input-shape" in extra else None
        cases.append((f"zoo_{name}", dst, shape))
    # A LeNet-5 fine-tuned by Graft: new 5-class head on Fashion-MNIST classes 5-9, then fine-tuned.
    base = os.path.join(out, "lenet_base.h5")
    graft(["zoo", "lenet5", "--input-shape", "28,28,1", "--output", base, "--seed", "1"], args.graft)
    run = os.path.join(out, "lenet_run")
    graft(["fine-tune", base, "--data", "fashion-mnist:train", "--class-subset", "5,6,7,8,9", "--limit-per-class", "200",
           "--epochs", "1", "--unfreeze", "from:conv3", "--fine-tune-epochs", "1", "--out", run, "--quiet"], args.graft)
    cases.append(("graft_finetuned_lenet5", os.path.join(run, "final.h5"), [28, 28, 1]))
    if args.only:
        parts = args.only.split(",")
        cases = [c for c in cases if any(p in c[0] for p in parts)]
    k3, tfk = keras_loaders()
    passed = failed = skipped = 0

    def report(ok, label, detail):
        nonlocal passed, failed
        passed += ok
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {label}: {detail}")

    with tempfile.TemporaryDirectory() as tmp:
        for label, src, x in cases:
            if not isinstance(x, np.ndarray):
                x = rng.standard_normal([2] + x).astype(np.float32) if x else None
            written = {}
            for ext in (".h5", ".weights.h5", ".keras"):
                dst = os.path.join(out, label + ext)
                p = subprocess.run([args.graft, "export", src, "--output", dst], capture_output=True, text=True)
                if p.returncode != 0:
                    skipped += 1
                    print(f"skip  {label} [{ext}]: Graft refuses: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else '?'}")
                else:
                    written[ext] = dst
            loads = []
            if ".h5" in written:
                loads += [("keras3 load_model .h5", lambda: k3[1](written[".h5"]), (k3[1], ".h5")),
                          ("tf-keras load_model .h5", lambda: tfk[1](written[".h5"]), (tfk[1], ".h5"))]
            if ".keras" in written:
                loads.append(("keras3 load_model .keras", lambda: k3[1](written[".keras"]), (k3[1], ".keras")))
                if ".weights.h5" in written:
                    def from_weights():
                        m = k3[1](written[".keras"])
                        m.load_weights(written[".weights.h5"])
                        return m
                    loads.append(("keras3 load_weights .weights.h5", from_weights, (k3[1], ".keras")))
            ref = None
            for what, load, (loader, ext) in loads:
                try:
                    model = load()
                    if x is None:
                        x = rng.standard_normal([2] + list(model.input_shape[1:])).astype(np.float32)
                    if ref is None:
                        ref = graft_predict(args.graft, src, x, tmp)
                    got = np.asarray(model(x, training=False))
                    err = float(np.max(np.abs(got.astype(np.float64) - ref)))
                    tol = 1e-5 * max(1.0, float(np.max(np.abs(ref))))
                    if what == "keras3 load_model .h5" and err > tol and '"recurrent_activation": "hard_sigmoid"' in h5_config(written[".h5"]):
                        skipped += 1
                        print(f"skip  {label} [{what}]: Keras 3 reads hard_sigmoid in a Keras 2 file as its own function "
                              f"(relu6(x + 3) / 6, not 0.2·x + 0.5); a recurrent activation cannot be written as layers "
                              f"(tf-keras reads this file; max abs error {err:.3g})")
                        continue
                    report(got.shape == ref.shape and err <= tol, f"{label} [{what}]", f"max abs error {err:.3g} (tolerance {tol:.3g})")
                except Exception as e:  # a load failure is a failed case, reported on one line
                    message = str(e).splitlines()[0][:200] if str(e) else ""
                    if what.startswith("keras3") and "LocallyConnected2D" in message:
                        skipped += 1
                        print(f"skip  {label} [{what}]: Keras 3 has no LocallyConnected2D (tf-keras loads this file)")
                        continue
                    # The same model as that Keras wrote it (tf-keras never reads Keras 3's .h5 configs; Graft's .h5
                    # configs are tf-keras's style, so Keras 3's legacy loader is also tried on tf-keras's own file).
                    model_name = label.split("_", 1)[1] if "_" in label else label
                    writer = "keras3" if what.startswith("keras3") else "tfkeras"
                    owns = [originals.get(f"{writer}_{model_name}", {}).get(ext)]
                    if what == "keras3 load_model .h5":
                        owns.append(originals.get(f"tfkeras_{model_name}", {}).get(ext))
                    own_failure = None
                    for own in filter(None, owns):
                        try:
                            loader(own)
                        except Exception as own_error:
                            own_failure = (own, own_error)
                            break
                    if own_failure:
                        own, own_error = own_failure
                        skipped += 1
                        print(f"skip  {label} [{what}]: Keras cannot load its own {ext} of this model either ({os.path.basename(own)}: "
                              f"{type(own_error).__name__}: {str(own_error).splitlines()[0][:120] if str(own_error) else ''})")
                        continue
                    if what == "keras3 load_model .h5" and "disconnected nodes" in message:
                        skipped += 1
                        print(f"skip  {label} [{what}]: a nested model in a Functional one: Keras 3's legacy loader counts its "
                              f"calls from 0, tf-keras from 1, and Graft's .h5 follow tf-keras (Keras 3 reads the .keras)")
                        continue
                    if what == "tf-keras load_model .h5" and label.startswith("keras3_") and "Error when deserializing class 'Random" in message:
                        skipped += 1
                        print(f"skip  {label} [{what}]: an augmentation layer keeps the settings Keras 3 wrote, which tf-keras does not take")
                        continue
                    only = next((k for k in KERAS3_ONLY if k in message), None)
                    if what.startswith("tf-keras") and only:
                        skipped += 1
                        print(f"skip  {label} [{what}]: tf-keras has no {only} (Keras 3 loads this file)")
                        continue
                    report(False, f"{label} [{what}]", f"{type(e).__name__}: {message}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
