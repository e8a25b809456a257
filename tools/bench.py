"""Graft vs PyTorch vs Keras/TF on this machine; prints a table and writes BENCHMARKS.md. Run it through tools/bench.

Every case runs in its own process (so peak memory is per case) as the median of several timed runs after
warm-up, with 2 threads in every framework. Options: --quick (batch 1 and 8 only, fewer iterations),
--only SUBSTRING (cases whose name contains it), --frameworks graft,torch,keras, --output FILE.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench-out")


def cases(quick):
    batches = [1, 8] if quick else [1, 8, 32]
    out = []
    for name, zoo in (("vgg16", "zoo:vgg16?no-top"), ("resnet50", "zoo:resnet50"), ("mobilenetv2", "zoo:mobilenetv2")):
        for b in batches:
            iters = 3 if (b == 32 or name == "vgg16") else 5
            out.append(dict(name=f"{name} inference b{b}", peer=name, batch=b, iterations=iters, unit="img/s",
                            graft=[zoo, "--batch", str(b)]))
    # A keras.applications model Graft's zoo does not have, from the .h5 Keras wrote (ensure_weights).
    for b in [1, 8]:
        out.append(dict(name=f"convnext-tiny inference b{b}", peer="convnexttiny", batch=b, iterations=3 if quick else 5,
                        unit="img/s", graft=[os.path.join(OUT, "convnext_tiny.h5"), "--batch", str(b)]))
    # A recurrent network from the .h5 Keras writes (ensure_weights): inference and a full training step.
    lstm = os.path.join(OUT, "lstm.h5")
    for b in [1, 32]:
        out.append(dict(name=f"lstm(256) 100×64 inference b{b}", peer="lstm", batch=b, iterations=3 if quick else 5,
                        unit="seq/s", graft=[lstm, "--batch", str(b)], h5=lstm))
    out.append(dict(name="lstm(256) 100×64 step b32 full", peer="lstm-train", batch=32, iterations=3, unit="s",
                    graft=[lstm, "--batch", "32", "--train", "full"], h5=lstm))
    for mode in ("frozen-base", "full"):
        out.append(dict(name=f"resnet50 step b32 {mode}", peer=f"resnet50-{mode}", batch=32, iterations=3, unit="s",
                        graft=["zoo:resnet50?no-top", "--batch", "32", "--train", mode]))
    out.append(dict(name="lenet5 fashion-mnist epoch", peer="lenet5-epoch", batch=64, iterations=1, unit="s",
                    graft=["zoo:lenet5?input=32,32,1", "--epoch", "fashion-mnist:train", "--batch", "64"]))
    # A load happens once per process: the row is the median of 5 processes per framework.
    out.append(dict(name="resnet50 load .h5", peer="resnet50-load", batch=1, iterations=1, unit="load s", graft=None,
                    processes=5))
    return out


def run_json(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  failed: {' '.join(cmd[:4])} …: {tail}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def run_median(cmd, processes, unit, env=None):
    """Runs `cmd` in `processes` fresh processes; the result of the median one (by the row's value)."""
    results = [r for r in (run_json(cmd, env) for _ in range(processes)) if r is not None]
    if not results:
        return None
    results.sort(key=lambda r: value(r, unit) or 0)
    return results[len(results) // 2]


def ensure_weights(graft):
    """ResNet50 weight files for the load case: Keras .h5 (Graft and Keras read it) and a PyTorch state dict; and
    ConvNeXt-Tiny as Keras writes it, for Graft's inference row."""
    os.makedirs(OUT, exist_ok=True)
    h5 = os.path.join(OUT, "resnet50.h5")
    pt = os.path.join(OUT, "resnet50.pt")
    if not os.path.exists(h5):
        subprocess.run([sys.executable, "-c",
                        "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import keras, sys; "
                        "keras.applications.ResNet50(weights=None).save(sys.argv[1])", h5], check=True)
    convnext = os.path.join(OUT, "convnext_tiny.h5")
    if not os.path.exists(convnext):
        subprocess.run([sys.executable, "-c",
                        "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import keras, sys; "
                        "keras.applications.ConvNeXtTiny(weights=None).save(sys.argv[1])", convnext], check=True)
    lstm = os.path.join(OUT, "lstm.h5")
    if not os.path.exists(lstm):
        subprocess.run([sys.executable, "-c",
                        "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import keras, sys; "
                        "m = keras.Sequential([keras.Input((100, 64)), keras.layers.LSTM(256, name='lstm'), "
                        "keras.layers.Dense(10, activation='softmax', name='predictions')]); m.save(sys.argv[1])", lstm], check=True)
    if not os.path.exists(pt):
        subprocess.run([sys.executable, "-c",
                        "import torch, torchvision, sys; torch.save(torchvision.models.resnet50().state_dict(), sys.argv[1])",
                        pt], check=True)
    return h5, pt


def value(r, unit):
    if r is None:
        return None
    if unit in ("img/s", "seq/s"):
        return r.get("images_per_second")
    if unit == "load s":
        return r.get("load_seconds")
    return r.get("epoch_seconds", r.get("median_seconds"))


def fmt(v, unit):
    if v is None:
        return "—"
    rate = unit in ("img/s", "seq/s")
    return f"{v:.1f}" if rate and v >= 10 else f"{v:.2f}" if rate else f"{v:.2f} s"


def ratio(g, p, unit):
    """Graft's speed ÷ the peer's (above 1: Graft is faster)."""
    if g is None or p is None or g == 0 or p == 0:
        return "—"
    return f"{(g / p if unit in ('img/s', 'seq/s') else p / g):.2f}×"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--graft", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--frameworks", default="graft,torch,keras")
    ap.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"))
    a = ap.parse_args()
    frameworks = a.frameworks.split(",")
    h5, pt = ensure_weights(a.graft)
    env = dict(os.environ, GRAFT_NUM_THREADS="2")
    rows = []
    versions = {}
    for c in cases(a.quick):
        if a.only not in c["name"]:
            continue
        print(f"{c['name']}:", file=sys.stderr, flush=True)
        res = {}
        iters = ["--iterations", str(1 if a.quick else c["iterations"])]
        if "graft" in frameworks:
            cmd = [a.graft, "bench"] + (c["graft"] or [h5, "--batch", "1", "--warmup", "0"])
            res["graft"] = run_median(cmd + (iters if c["graft"] else ["--iterations", "1"]) + ["--json"],
                                      c.get("processes", 1), c["unit"], env)
        for fw in ("torch", "keras"):
            if fw in frameworks:
                cmd = [sys.executable, os.path.join(ROOT, "tools", "bench_peer.py"), fw, c["peer"], "--batch", str(c["batch"])]
                cmd += iters + (["--h5", h5 if fw == "keras" else pt] if c["peer"] == "resnet50-load" else [])
                cmd += ["--h5", c["h5"]] if c.get("h5") and fw == "keras" else []
                res[fw] = run_median(cmd, c.get("processes", 1), c["unit"])
                if res[fw]:
                    versions[fw] = res[fw].get("version")
        for fw, r in res.items():
            print(f"  {fw}: {fmt(value(r, c['unit']), c['unit'])}" + (f", peak {r['peak_rss_mb']:.0f} MB" if r else ""), file=sys.stderr)
        rows.append((c, res))
    header = ("| case | unit | Graft | PyTorch | Keras/TF | Graft vs PyTorch | Graft vs Keras | peak MB Graft / PyTorch / Keras |\n"
              "|---|---|---|---|---|---|---|---|")
    lines = [header]
    for c, res in rows:
        g, t, k = (value(res.get(fw), c["unit"]) for fw in ("graft", "torch", "keras"))
        mem = " / ".join(f"{res[fw]['peak_rss_mb']:.0f}" if res.get(fw) else "—" for fw in ("graft", "torch", "keras"))
        unit = {"img/s": "images/s", "seq/s": "sequences/s"}.get(c["unit"], "seconds")
        lines.append(f"| {c['name']} | {unit} | {fmt(g, c['unit'])} | {fmt(t, c['unit'])} | {fmt(k, c['unit'])} | "
                     f"{ratio(g, t, c['unit'])} | {ratio(g, k, c['unit'])} | {mem} |")
    table = "\n".join(lines)
    print(table)
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    graft_version = subprocess.run([a.graft, "--version"], capture_output=True, text=True).stdout.strip()
    doc = f"""# Benchmarks

Written by `tools/bench` on {datetime.date.today().isoformat()}. Machine: {cpu}, {os.cpu_count()} cores,
{platform.system()} {platform.release()}; every framework runs with 2 threads. Graft {graft_version};
PyTorch {versions.get('torch', '—')}; {versions.get('keras', 'Keras —')}.

Inference rows are images/s (median of several batches after a warm-up batch, random weights, 224×224×3);
step rows are seconds per Adam step on a batch of 32 with a new 10-class head (frozen base: only the head
trains, BatchNorm in inference mode; full: everything trains); the LeNet-5 row is one epoch of Fashion-MNIST
(60,000 images at 32×32, batch 64, Adam); the load row is the time to read ResNet50's weights into a built
model (Graft and Keras from the same Keras `.h5`, PyTorch from a `torch.save` state dict; Graft's time includes
its out-of-process HDF5 integrity check; median of 5 processes); the LSTM rows run the same network in every
framework (100 steps of 64 features, LSTM(256) returning its last output, Dense(10); Graft and Keras from the
`.h5` Keras writes), as sequences/s and seconds per Adam step on 32 sequences. Ratios are Graft's speed divided by the other's: above 1× Graft is
faster. Peak memory is each case's own process (ru_maxrss).

{table}

Rerun: `tools/bench` (all rows, about 20 minutes), `tools/bench --quick`, `tools/bench --only resnet50`.
"""
    if not a.only and a.frameworks == "graft,torch,keras":
        tmp = a.output + ".tmp"
        with open(tmp, "w") as f:
            f.write(doc)
        os.replace(tmp, a.output)
        print(f"wrote {a.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
