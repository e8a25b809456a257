"""One benchmark case in PyTorch or Keras/TF, run in its own process; prints one JSON line.

    python tools/bench_peer.py torch|keras CASE [--batch N] [--iterations K] [--warmup W] [--threads T] [--h5 PATH]

CASE: vgg16 | resnet50 | mobilenetv2 (inference, 224×224×3, random weights), lstm | lstm-train (100 steps of 64
features, LSTM(256), Dense(10), from the .h5 Keras writes), resnet50-frozen-base |
resnet50-full (one Adam step with a new 10-class head), lenet5-epoch (one epoch of Fashion-MNIST at 32×32,
batch 64, Adam 1e-3), resnet50-load (time to load ResNet50 weights from a file written beforehand).
The same shapes and steps as `graft bench` (see tools/bench).
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import sys
import time

import numpy as np

FASHION = "/usr/share/datasets/fashion-mnist"


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fashion_train():
    """Fashion-MNIST training images padded to 32×32, scaled to [0, 1], and labels (read from the IDX files)."""
    def read(name, offset):
        for ext in ("", ".gz"):
            p = os.path.join(FASHION, name + ext)
            if os.path.exists(p):
                opener = gzip.open if ext else open
                with opener(p, "rb") as f:
                    return np.frombuffer(f.read(), np.uint8, offset=offset)
        raise SystemExit(f"{FASHION}/{name}: not found (apt install dataset-fashion-mnist)")
    x = read("train-images-idx3-ubyte", 16).reshape(-1, 28, 28).astype(np.float32) / 255
    y = read("train-labels-idx1-ubyte", 8).astype(np.int64)
    return np.pad(x, ((0, 0), (2, 2), (2, 2)))[..., None], y


def timed(step, warmup, iterations):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def run_torch(a):
    import torch
    import torchvision
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {"framework": "pytorch", "version": torch.__version__}
    if a.case == "lenet5-epoch":
        x, y = fashion_train()
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        yt = torch.from_numpy(y)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, 5), torch.nn.Tanh(), torch.nn.AvgPool2d(2),
            torch.nn.Conv2d(6, 16, 5), torch.nn.Tanh(), torch.nn.AvgPool2d(2),
            torch.nn.Conv2d(16, 120, 5), torch.nn.Tanh(), torch.nn.Flatten(),
            torch.nn.Linear(120, 84), torch.nn.Tanh(), torch.nn.Linear(84, 10))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        t0 = time.perf_counter()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), a.batch):
            idx = perm[i:i + a.batch]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        out.update(epoch_seconds=time.perf_counter() - t0, images=len(xt))
        return out
    if a.case in ("lstm", "lstm-train"):
        # The LSTM rows: 100 steps of 64 features, LSTM(256) (its last output), Dense(10); Keras's gate order and
        # PyTorch's differ, but the work is the same.
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = torch.nn.LSTM(64, 256, batch_first=True)
                self.fc = torch.nn.Linear(256, 10)

            def forward(self, x):
                y, _ = self.lstm(x)
                return self.fc(y[:, -1])
        net = Net()
        x = torch.rand(a.batch, 100, 64)
        if a.case == "lstm-train":
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            labels = torch.arange(a.batch) % 10
            loss_fn = torch.nn.CrossEntropyLoss()

            def step():
                opt.zero_grad()
                loss_fn(net(x), labels).backward()
                opt.step()
        else:
            net.eval()

            def step():
                with torch.inference_mode():
                    net(x)
        med, best = timed(step, a.warmup, a.iterations)
        out.update(median_seconds=med, min_seconds=best, images_per_second=a.batch / med)
        return out
    if a.case == "resnet50-load":
        net = torchvision.models.resnet50()
        t0 = time.perf_counter()
        net.load_state_dict(torch.load(a.h5, map_location="cpu"))
        out.update(load_seconds=time.perf_counter() - t0)
        return out
    name = a.case.split("-")[0]
    if name == "vgg16":
        net = torchvision.models.vgg16().features
    elif name == "convnexttiny":
        net = torchvision.models.convnext_tiny()
    elif name == "resnet50":
        net = torchvision.models.resnet50()
    else:
        net = torchvision.models.mobilenet_v2()
    x = torch.rand(a.batch, 3, 224, 224)
    if a.case in ("resnet50-frozen-base", "resnet50-full"):
        net.fc = torch.nn.Linear(2048, 10)
        if a.case == "resnet50-frozen-base":
            for n, p in net.named_parameters():
                p.requires_grad = n.startswith("fc.")
        net.train()
        if a.case == "resnet50-frozen-base":
            for m in net.modules():   # frozen BatchNorm stays in inference mode, as in Keras and Graft
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)
        labels = torch.arange(a.batch) % 10
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad()
            loss_fn(net(x), labels).backward()
            opt.step()
    else:
        net.eval()

        def step():
            with torch.inference_mode():
                net(x)
    med, best = timed(step, a.warmup, a.iterations)
    out.update(median_seconds=med, min_seconds=best, images_per_second=a.batch / med)
    return out


def run_keras(a):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    keras.utils.set_random_seed(0)
    out = {"framework": "keras", "version": f"keras {keras.__version__}, tensorflow {tf.__version__}"}
    if a.case == "lenet5-epoch":
        x, y = fashion_train()
        net = keras.Sequential([
            keras.Input((32, 32, 1)),
            keras.layers.Conv2D(6, 5, activation="tanh"), keras.layers.AveragePooling2D(2),
            keras.layers.Conv2D(16, 5, activation="tanh"), keras.layers.AveragePooling2D(2),
            keras.layers.Conv2D(120, 5, activation="tanh"), keras.layers.Flatten(),
            keras.layers.Dense(84, activation="tanh"), keras.layers.Dense(10, activation="softmax")])
        net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        net.fit(x[:a.batch * 4], y[:a.batch * 4], batch_size=a.batch, epochs=1, verbose=0)   # compile the step
        t0 = time.perf_counter()
        net.fit(x, y, batch_size=a.batch, epochs=1, verbose=0, shuffle=True)
        out.update(epoch_seconds=time.perf_counter() - t0, images=len(x))
        return out
    if a.case in ("lstm", "lstm-train"):
        net = keras.models.load_model(a.h5, compile=False)
        x = np.random.default_rng(0).random((a.batch, 100, 64), dtype=np.float32)
        if a.case == "lstm-train":
            net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
            labels = np.arange(a.batch) % 10

            def step():
                net.train_on_batch(x, labels)
        else:
            xt = tf.constant(x)
            fn = tf.function(lambda t: net(t, training=False))

            def step():
                fn(xt).numpy()
        med, best = timed(step, a.warmup, a.iterations)
        out.update(median_seconds=med, min_seconds=best, images_per_second=a.batch / med)
        return out
    apps = keras.applications
    if a.case == "resnet50-load":
        net = apps.ResNet50(weights=None)
        t0 = time.perf_counter()
        net.load_weights(a.h5)
        out.update(load_seconds=time.perf_counter() - t0)
        return out
    name = a.case.split("-")[0]
    shape = (224, 224, 3)
    if name == "vgg16":
        net = apps.VGG16(weights=None, include_top=False, input_shape=shape)
    elif name == "convnexttiny":
        net = apps.ConvNeXtTiny(weights=None, input_shape=shape)
    elif name == "resnet50":
        net = apps.ResNet50(weights=None, input_shape=shape)
    else:
        net = apps.MobileNetV2(weights=None, input_shape=shape)
    x = np.random.default_rng(0).random((a.batch, 224, 224, 3), dtype=np.float32)
    if a.case in ("resnet50-frozen-base", "resnet50-full"):
        base = apps.ResNet50(weights=None, include_top=False, pooling="avg", input_shape=shape)
        base.trainable = a.case == "resnet50-full"
        net = keras.Sequential([base, keras.layers.Dense(10, activation="softmax")])
        net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        labels = np.arange(a.batch) % 10

        def step():
            net.train_on_batch(x, labels)
    else:
        xt = tf.constant(x)
        fn = tf.function(lambda t: net(t, training=False))

        def step():
            fn(xt).numpy()
    med, best = timed(step, a.warmup, a.iterations)
    out.update(median_seconds=med, min_seconds=best, images_per_second=a.batch / med)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("framework", choices=["torch", "keras"])
    p.add_argument("case")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--h5", default=None)
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    out = run_torch(a) if a.framework == "torch" else run_keras(a)
    out.update(case=a.case, batch=a.batch, peak_rss_mb=peak_mb())
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
