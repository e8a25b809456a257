#!/usr/bin/env python3
"""Writes README.md's table of Keras layer classes: which ones Graft reads, and which Keras 3, tf-keras and
frugally-deep have.

  .venv/bin/python tools/layer_table.py          (rewrites the table between the keras-layers markers)

Graft's column comes from Sources/GraftKeras/KerasLayers.swift (the class names KerasLayerFactory accepts); the
suite (KerasLayerTableTests) fails when the table and the factory disagree, so the table stays honest. Keras's
columns come from the installed keras and tf_keras; frugally-deep's from its README at the commit named below.
"""
import inspect
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
FACTORY = os.path.join(ROOT, "Sources", "GraftKeras", "KerasLayers.swift")
SEQUENCE = os.path.join(ROOT, "Sources", "GraftKeras", "KerasSequenceLayers.swift")
BEGIN, END = "<!-- keras-layers:begin -->", "<!-- keras-layers:end -->"

# frugally-deep's "Supported layer types" (README of Dobiasd/frugally-deep at 7cbc07cb, 2026-05-03).
FDEEP_COMMIT = "7cbc07cb"
FDEEP = """Add Concatenate Subtract Multiply Average Maximum Minimum Dot AveragePooling1D/2D/3D
GlobalAveragePooling1D/2D/3D AdaptiveAveragePooling1D/2D/3D AdaptiveMaxPooling1D/2D/3D TimeDistributed Conv1D/2D/3D
SeparableConv2D DepthwiseConv1D DepthwiseConv2D Conv1DTranspose Conv2DTranspose Conv3DTranspose Cropping1D/2D/3D
ZeroPadding1D/2D/3D CenterCrop BatchNormalization Dense EinsumDense Flatten Normalization Dropout AlphaDropout
GaussianDropout GaussianNoise SpatialDropout1D SpatialDropout2D SpatialDropout3D ActivityRegularization
LayerNormalization RMSNormalization GroupNormalization UnitNormalization RandomBrightness RandomContrast RandomCrop
RandomFlip RandomHue RandomGrayscale RandomRotation RandomTranslation RandomZoom RandomShear RandomSaturation
RandomPerspective AutoContrast AugMix CutMix MixUp RandAugment Solarization Equalization MaxPooling1D/2D/3D
GlobalMaxPooling1D/2D/3D UpSampling1D/2D/3D Resizing Rescaling Reshape Permute RepeatVector Embedding
CategoryEncoding Discretization IntegerLookup Masking Attention AdditiveAttention MultiHeadAttention
GroupedQueryAttention LSTM GRU SimpleRNN Bidirectional RNN LSTMCell GRUCell SimpleRNNCell StackedRNNCells
ConvLSTM1D ConvLSTM2D ConvLSTM3D InputLayer ReLU LeakyReLU ELU PReLU Softmax Activation"""

# Names Keras accepts for a class but never writes (a config holds the canonical name).
ALIAS = re.compile(r"^(AvgPool|MaxPool|GlobalAvgPool|GlobalMaxPool)\dD$|^(Convolution|SeparableConvolution)\dD(Transpose)?$|^Deconvolution2D$")
# Classes of keras.layers that are not layers a model config holds.
NOT_LAYERS = {"InputSpec", "Layer", "Wrapper", "AbstractRNNCell", "FlaxLayer", "JaxLayer", "TorchModuleWrapper", "TFSMLayer"}
# Classes keras.applications defines and serialises, tf-keras's recorded ops, and Graft's tiled convolution.
EXTRA = {"LayerScale": (True, True), "StochasticDepth": (True, True), "CustomScaleLayer": (True, False),
         "TFOpLambda": (False, True), "TiledConv2D": (False, False),   # Graft's own
         "CuDNNLSTM": (False, False), "CuDNNGRU": (False, False)}      # Keras 2.0–2.3's GPU layers


def fdeep():
    names = set()
    for token in FDEEP.split():
        m = re.match(r"^(.*?)(\d)D((?:/\dD)*)$", token)
        if m:
            names.add(f"{m.group(1)}{m.group(2)}D")
            for d in re.findall(r"(\d)D", m.group(3)):
                names.add(f"{m.group(1)}{d}D")
        else:
            names.add(token)
    return names


def graft():
    """The class names in the factory's sets (supported, oneDimensional keys, trainingAugmentation)."""
    text = open(FACTORY).read()
    names = set()
    for var in ("supported", "oneDimensional", "trainingAugmentation"):
        block = re.search(rf"static let {var}: [^=]+= \[(.*?)\n    \]", text, re.S).group(1)
        if var == "oneDimensional":
            names |= set(re.findall(r'"(\w+)":', block))
        else:
            names |= set(re.findall(r'"(\w+)"', block))
    sequence = open(SEQUENCE).read()
    block = re.search(r"static let classes: Set<String> = \[(.*?)\n    \]", sequence, re.S).group(1)
    return names | set(re.findall(r'"(\w+)"', block))


def keras_layers(module):
    return {n for n in dir(module.layers) if n[0].isupper() and inspect.isclass(getattr(module.layers, n))}


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tf_keras
    k3, k2, fd, gr = keras_layers(keras), keras_layers(tf_keras), fdeep(), graft()
    rows = sorted(n for n in (k3 | k2 | set(EXTRA)) if not ALIAS.match(n) and n not in NOT_LAYERS)
    yes = lambda b: "✓" if b else ""
    lines = [BEGIN, "",
             f"Keras layer classes (every class in Keras {keras.__version__}'s and tf-keras {tf_keras.__version__}'s "
             f"`keras.layers`, and those keras.applications serialises): which Graft reads, and which "
             f"[frugally-deep](https://github.com/Dobiasd/frugally-deep) (C++, inference only; its README at "
             f"{FDEEP_COMMIT}) reads. Graft also reads the aliases Keras accepts (`MaxPool2D`, `Convolution2D`, …) "
             f"and Keras 3's recorded math ops (`keras.src.ops`). Written by `tools/layer_table.py`; "
             f"`KerasLayerTableTests` checks the Graft column against the loader.", "",
             "| Keras class | Graft | Keras 3 | tf-keras | frugally-deep |", "|---|:-:|:-:|:-:|:-:|"]
    for n in rows:
        in3, in2 = EXTRA.get(n, (n in k3, n in k2))
        lines.append(f"| `{n}` | {yes(n in gr)} | {yes(in3)} | {yes(in2)} | {yes(n in fd)} |")
    counts = (sum(n in gr for n in rows), sum(n in fd for n in rows), len(rows))
    lines += ["", f"Graft reads {counts[0]} of these {counts[2]} classes; frugally-deep {counts[1]}.", "", END]
    text = open(README).read()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    open(README, "w").write(text[:start] + "\n".join(lines) + text[end:])
    print(f"README.md: {len(rows)} classes, Graft {counts[0]}, frugally-deep {counts[1]}")


if __name__ == "__main__":
    main()
