#!/usr/bin/env python3
"""Writes the attacker's HDF5 files the fuzzer starts from (Tests/Fixtures/hostile/): copies of the tiny Keras LeNet
fixture (keras/keras3_lenet.h5) altered so that loading them would read another file, walk for ever or allocate far
more than the file holds. Graft must refuse each with one line naming the dataset or group. The Swift tests craft
their own variants with libhdf5's C API; these are the seeds `tools/fuzz` mutates further.

  .venv/bin/python tools/make_hostile.py      (needs h5py and numpy: tools/venv installs them)

Each file is a few KB. Rerunning rewrites them byte for byte the same except for HDF5's own timestamps (none are
written: track_times is off).
"""
import json
import os
import shutil

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests", "Fixtures")
OUT = os.path.join(FIX, "hostile")
LENET = os.path.join(FIX, "keras", "keras3_lenet.h5")
KERNEL = "/model_weights/conv1/tiny_lenet/conv1/kernel"


def altered(name, change):
    path = os.path.join(OUT, name)
    shutil.copy(LENET, path)
    with h5py.File(path, "r+", track_order=False) as f:
        change(f)
    return path


def replace_kernel(f, **kwargs):
    shape, dtype = f[KERNEL].shape, f[KERNEL].dtype
    del f[KERNEL]
    f.create_dataset(KERNEL, shape=shape, dtype=dtype, track_times=False, **kwargs)


def main():
    os.makedirs(OUT, exist_ok=True)
    made = {}
    kernel_bytes = 5 * 5 * 1 * 4 * 4

    # The kernel's values stored in another file (predict once copied /etc/passwd into its output).
    made["external_storage_passwd.h5"] = "conv1 kernel stored in /etc/passwd (HDF5 external storage)"
    altered("external_storage_passwd.h5", lambda f: replace_kernel(f, external=[("/etc/passwd", 0, kernel_bytes)]))
    # A 1 GiB dataset whose storage is /dev/zero, beside the weights.
    made["external_storage_zero.h5"] = "a 1 GiB dataset stored in /dev/zero beside conv1's weights"
    altered("external_storage_zero.h5", lambda f: f["/model_weights/conv1/tiny_lenet/conv1"].create_dataset(
        "bias_extra", shape=(1 << 28,), dtype="<f4", external=[("/dev/zero", 0, 1 << 30)], track_times=False))

    # External links: a layer's group and a kernel in another file (the second one is the fixture itself, by a
    # relative name: tools/fuzz puts a copy of keras3_lenet.h5 beside every case).
    def external_links(f):
        del f["/model_weights/fc1"]
        f["/model_weights/fc1"] = h5py.ExternalLink("keras3_lenet.h5", "/model_weights/fc1")
        del f[KERNEL]
        f[KERNEL] = h5py.ExternalLink("/etc/passwd", "/kernel")
    made["external_links.h5"] = "the fc1 layer's group and conv1's kernel are external links (to keras3_lenet.h5 and /etc/passwd)"
    altered("external_links.h5", external_links)

    # A virtual dataset whose source is another file.
    def virtual(f):
        shape, dtype = f[KERNEL].shape, f[KERNEL].dtype
        del f[KERNEL]
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource("keras3_lenet.h5", KERNEL, shape=shape)
        f.create_virtual_dataset(KERNEL, layout)
    made["virtual_dataset.h5"] = "conv1 kernel is a virtual dataset mapped from keras3_lenet.h5"
    altered("virtual_dataset.h5", virtual)

    # Soft links that loop, and a hard link from a group to its own ancestor.
    def soft_loop(f):
        g = f["/model_weights/conv1"]
        g["a"] = h5py.SoftLink("/model_weights/conv1/b")
        g["b"] = h5py.SoftLink("/model_weights/conv1/a")
    made["soft_link_loop.h5"] = "soft links a -> b -> a inside conv1's group"
    altered("soft_link_loop.h5", soft_loop)

    def hard_cycle(f):
        f["/model_weights/conv1/tiny_lenet/loop"] = f["/model_weights"]
    made["hard_link_cycle.h5"] = "a hard link from conv1's weights group back to /model_weights"
    altered("hard_link_cycle.h5", hard_cycle)

    # Declared but never written: a chunked kernel with no chunks stored, and a 4 GiB chunked dataset beside it.
    def unstored(f):
        replace_kernel(f, chunks=(5, 5, 1, 4))
        f["/model_weights/conv1/tiny_lenet/conv1"].create_dataset("huge", shape=(1 << 30,), dtype="<f4", chunks=(1 << 20,),
                                                                  track_times=False)
    made["unstored_chunked.h5"] = "conv1 kernel chunked with no chunk written, and a 4 GiB chunked dataset never written"
    altered("unstored_chunked.h5", unstored)

    # A gzip-compressed dataset whose chunks inflate far past its file size (a 64 MiB kernel of zeros).
    def inflating(f):
        f["/model_weights/conv1/tiny_lenet/conv1"].create_dataset("zeros", data=np.zeros((1 << 24,), "<f4"), chunks=(1 << 20,),
                                                                  compression="gzip", compression_opts=9, track_times=False)
    made["gzip_inflating.h5"] = "a 64 MiB gzip-compressed dataset of zeros beside conv1's weights (about 70 KB stored)"
    altered("gzip_inflating.h5", inflating)

    # A weights layer named with terminal escapes and a newline.
    def escapes(f):
        names = [n.decode() if isinstance(n, bytes) else n for n in f["/model_weights"].attrs["layer_names"]]
        config = json.loads(f.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["config"].get("name") == "fc1":
                layer["config"]["name"] = "fc1\x1b[2J\nx"
                layer["name"] = "fc1\x1b[2J\nx"
        f.attrs["model_config"] = json.dumps(config)
        f["/model_weights"].attrs["layer_names"] = [("fc1\x1b[2J\nx" if n == "fc1" else n).encode() for n in names]
        f.move("/model_weights/fc1", "/model_weights/fc1\x1b[2J\nx")
    made["escape_names.h5"] = "the fc1 layer renamed fc1<ESC>[2J<newline>x in the config and the weights"
    altered("escape_names.h5", escapes)

    manifest = os.path.join(OUT, "MANIFEST.json")
    with open(manifest, "w") as m:
        json.dump({k: f"{v}; generated by tools/make_hostile.py from keras/keras3_lenet.h5; h5py {h5py.__version__}, "
                      f"hdf5 {h5py.version.hdf5_version}" for k, v in sorted(made.items())}, m, indent=1, sort_keys=True)
        m.write("\n")
    for name in sorted(made):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
