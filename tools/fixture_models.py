"""Small Keras models covering every layer Graft supports, written for both Keras 3 and tf-keras.

Used by tools/make_fixtures.py (parity fixtures). Each builder takes the Keras module (`keras` or `tf_keras`)
and returns a model; the caller randomises weights and BatchNorm statistics.
"""


def _is_k3(K):
    return K.__version__.startswith("3")


def leaky(K, slope, name):
    return K.layers.LeakyReLU(negative_slope=slope, name=name) if _is_k3(K) else K.layers.LeakyReLU(alpha=slope, name=name)


def convnet_sequential(K):
    """Sequential: strides, same/valid padding, dilation, BN, pooling (same-padded average), depthwise, separable."""
    L = K.layers
    return K.Sequential([
        K.Input(shape=(13, 11, 3)),
        L.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="conv_s2"),
        L.BatchNormalization(name="bn1"),
        L.MaxPooling2D(3, strides=1, padding="same", name="maxpool_same"),
        L.Conv2D(8, 3, dilation_rate=2, padding="valid", use_bias=False, name="conv_dil"),
        L.AveragePooling2D(2, strides=1, padding="same", name="avgpool_same"),
        L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, activation="relu6", name="dw"),
        L.SeparableConv2D(10, 2, padding="same", depth_multiplier=2, activation="tanh", name="sep"),
        L.BatchNormalization(center=False, name="bn_nocenter"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dropout(0.5, name="drop"),
        L.Dense(7, activation="softmax", name="predictions"),
    ], name="convnet_sequential")


def mini_xception(K):
    """Functional, Keras 2-era style: SeparableConv2D + BN + residual Add, grouped conv, concat, padding/cropping."""
    L = K.layers
    x_in = K.Input(shape=(16, 16, 3), name="image")
    x = L.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x_in)
    x = L.ZeroPadding2D(((1, 2), (0, 1)), name="pad")(x)
    x = L.Conv2D(8, 3, strides=2, use_bias=False, name="stem_conv")(x)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.Activation("relu", name="stem_relu")(x)
    residual = L.Conv2D(16, 1, strides=2, padding="same", use_bias=False, name="res_conv")(x)
    residual = L.BatchNormalization(name="res_bn")(residual)
    y = L.SeparableConv2D(16, 3, padding="same", use_bias=False, name="sep1")(x)
    y = L.BatchNormalization(name="sep1_bn")(y)
    y = L.Activation("relu", name="sep1_act")(y)
    y = L.SeparableConv2D(16, 3, padding="same", use_bias=False, name="sep2")(y)
    y = L.BatchNormalization(name="sep2_bn")(y)
    y = L.MaxPooling2D(3, strides=2, padding="same", name="pool")(y)
    x = L.Add(name="add")([y, residual])
    a = L.Conv2D(8, (3, 2), padding="same", groups=2, name="branch_a")(x)  # grouped, even kernel: asymmetric padding
    b = L.Conv2D(8, 1, name="branch_b")(x)
    x = L.Concatenate(name="concat")([a, b])
    x = L.Cropping2D(((1, 0), (0, 1)), name="crop")(x)
    x = L.GlobalMaxPooling2D(name="gmp")(x)
    out = L.Dense(4, activation="softmax", name="predictions")(x)
    return K.Model(x_in, out, name="mini_xception")


def activations_zoo(K):
    """Every activation, the activation layers, merges with broadcasting (squeeze-excite), upsampling, noise layers."""
    L = K.layers
    x_in = K.Input(shape=(6, 6, 4), name="inp")
    x = L.Conv2D(8, 3, padding="same", name="conv")(x_in)
    acts = ["relu", "relu6", "sigmoid", "tanh", "softplus", "softsign", "swish", "elu", "selu", "gelu",
            "hard_sigmoid", "linear", "exponential"]
    if _is_k3(K):
        acts += ["hard_swish", "silu", "leaky_relu", "mish"]
    branches = []
    for a in acts:
        branches.append(L.Activation(a, name=f"act_{a}")(x))
    branches.append(L.ReLU(max_value=4.0, negative_slope=0.1, threshold=0.2, name="relu_general")(x))
    branches.append(leaky(K, 0.15, "leaky")(x))
    branches.append(L.PReLU(shared_axes=[1, 2], name="prelu")(x))
    branches.append(L.ELU(alpha=0.7, name="elu_layer")(x))
    x = L.Average(name="avg")(branches)
    # Squeeze-and-excite: (N,1,1,C) gate multiplied over (N,H,W,C).
    s = L.GlobalAveragePooling2D(keepdims=True, name="se_pool")(x)
    s = L.Dense(8, activation="sigmoid", name="se_dense")(s)
    x = L.Multiply(name="se_mul")([x, s])
    s2 = L.GlobalAveragePooling2D(name="se2_pool")(x)
    s2 = L.Reshape((1, 1, 8), name="se2_reshape")(s2)
    x2 = L.Subtract(name="sub")([x, s2])
    x = L.Maximum(name="max")([x, x2])
    x = L.Minimum(name="min")([x, L.Activation("tanh", name="tanh2")(x2)])
    x = L.SpatialDropout2D(0.3, name="sdrop")(x)
    x = L.GaussianNoise(0.1, name="noise")(x)
    up_n = L.UpSampling2D(2, name="up_nearest")(x)
    up_b = L.UpSampling2D((2, 3), interpolation="bilinear", name="up_bilinear")(x)
    up_b = L.Cropping2D(((0, 0), (0, 6)), name="crop_b")(up_b)
    x = L.Concatenate(axis=-1, name="cat")([up_n, up_b])
    x = L.Conv2D(4, 3, strides=2, padding="same", name="conv2")(x)
    x = L.Flatten(name="flat")(x)
    x = L.Dense(6, name="logits")(x)
    out = L.Softmax(name="softmax")(x)
    return K.Model(x_in, out, name="activations_zoo")


def nested(K):
    """A Sequential holding a Functional base (as transfer-learning code builds them), with Normalization."""
    L = K.layers
    b_in = K.Input(shape=(10, 10, 3), name="base_input")
    y = L.Conv2D(6, 3, padding="same", name="block1_conv")(b_in)
    y = L.BatchNormalization(name="block1_bn")(y)
    y = L.Activation("relu", name="block1_relu")(y)
    y = L.MaxPooling2D(name="block1_pool")(y)
    y = L.DepthwiseConv2D(3, padding="same", name="block2_dw")(y)
    y = L.Conv2D(8, 1, name="block2_pw")(y)
    base = K.Model(b_in, y, name="base")
    norm = L.Normalization(axis=-1, name="norm")
    return K.Sequential([
        K.Input(shape=(10, 10, 3)),
        norm,
        base,
        L.GlobalAveragePooling2D(name="pool"),
        L.Dense(3, activation="softmax", name="head"),
    ], name="nested"), norm


def fully_convolutional(K):
    """Unknown spatial size (None, None, 3): shapes resolved at run time."""
    L = K.layers
    x_in = K.Input(shape=(None, None, 3), name="img")
    x = L.Normalization(mean=[0.1, -0.2, 0.3], variance=[1.0, 2.0, 0.5], name="fixed_norm")(x_in)
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = L.AveragePooling2D(3, strides=2, padding="same", name="p1")(x)
    x = L.Conv2D(5, 3, padding="same", activation="sigmoid", name="c2")(x)
    m = L.GlobalMaxPooling2D(keepdims=True, name="gmp_keep")(x)
    x = L.Subtract(name="centre")([x, m])
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return K.Model(x_in, x, name="fully_conv")


def locally_connected(K):
    """tf-keras only (removed in Keras 3): unshared convolution."""
    L = K.layers
    return K.Sequential([
        K.Input(shape=(7, 7, 2)),
        L.LocallyConnected2D(3, 3, strides=2, activation="relu", name="lc"),
        L.Flatten(name="flat"),
        L.Dense(2, name="out"),
    ], name="locally_connected")


def bare_ops(K):
    """Math on tensors without layers: Keras 3 records keras.src.ops.numpy ops, tf-keras TFOpLambda."""
    L = K.layers
    x_in = K.Input(shape=(5, 5, 3), name="x")
    x = L.Conv2D(4, 3, padding="same", name="conv")(x_in)
    h = L.ReLU(6.0, name="relu6")(x + 3.0)
    x = x * h
    x = x * (1.0 / 6.0)
    y = L.Conv2D(4, 1, name="conv_y")(x_in)
    x = x + y
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return K.Model(x_in, x, name="bare_ops")


def sequence_1d(K):
    """The 1-D family on a (24, 4) sequence: causal, dilated, strided and grouped Conv1D, separable and depthwise
    1-D convolutions, pooling, padding, cropping, upsampling, global pooling and a Dense over every step."""
    L = K.layers
    x_in = K.Input(shape=(24, 4), name="seq")
    x = L.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="relu", name="causal_dil")(x_in)
    x = L.Conv1D(6, 3, strides=2, padding="same", groups=2, name="grouped_s2")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.SeparableConv1D(8, 3, depth_multiplier=2, padding="same", activation="tanh", name="sep")(x)
    x = L.DepthwiseConv1D(3, depth_multiplier=2, name="dw")(x)
    x = L.MaxPooling1D(2, name="maxpool")(x)
    x = L.ZeroPadding1D((1, 2), name="pad")(x)
    x = L.AveragePooling1D(3, strides=1, padding="same", name="avgpool_same")(x)
    x = L.Cropping1D((1, 0), name="crop")(x)
    x = L.UpSampling1D(2, name="up")(x)
    x = L.Dense(5, activation="relu", name="per_step")(x)
    a = L.GlobalAveragePooling1D(name="gap")(x)
    b = L.GlobalMaxPooling1D(name="gmp")(x)
    c = L.Flatten(name="flat")(L.Conv1D(2, 4, strides=3, name="strided")(x))
    x = L.Concatenate(name="cat")([a, b, c])
    out = L.Dense(3, activation="softmax", name="predictions")(x)
    return K.Model(x_in, out, name="sequence_1d")


def channels_first(K):
    """channels_first throughout (an NCHW input), BatchNormalization on axis 1, and the channels-first Flatten."""
    L = K.layers
    cf = "channels_first"
    x_in = K.Input(shape=(3, 12, 10), name="nchw")
    x = L.Conv2D(6, 3, padding="same", data_format=cf, name="conv")(x_in)
    x = L.BatchNormalization(axis=1, name="bn")(x)
    x = L.Activation("relu", name="relu")(x)
    x = L.MaxPooling2D(2, data_format=cf, name="pool")(x)
    x = L.ZeroPadding2D(((1, 0), (0, 2)), data_format=cf, name="pad")(x)
    x = L.DepthwiseConv2D(3, data_format=cf, name="dw")(x)
    x = L.SeparableConv2D(8, 2, padding="same", data_format=cf, name="sep")(x)
    x = L.UpSampling2D(2, data_format=cf, name="up")(x)
    x = L.Cropping2D(((1, 1), (0, 1)), data_format=cf, name="crop")(x)
    x = L.AveragePooling2D(2, data_format=cf, name="avg")(x)
    g = L.GlobalMaxPooling2D(data_format=cf, name="gmp")(x)
    f = L.Flatten(data_format=cf, name="flat")(x)
    x = L.Concatenate(name="cat")([g, f])
    out = L.Dense(4, activation="softmax", name="predictions")(x)
    return K.Model(x_in, out, name="channels_first")


def channels_mixture(K):
    """The layout of a Keras 2.0-era face model: channels_last convolutions with channels_first pooling, which pools
    over width and channels; and a channels-first Conv1D over a (channels, steps) sequence."""
    L = K.layers
    x_in = K.Input(shape=(12, 10, 4), name="image")
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(x_in)
    x = L.MaxPooling2D(2, data_format="channels_first", name="pool_cf")(x)
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.GlobalAveragePooling2D(data_format="channels_first", name="gap_cf")(x)
    x = L.Reshape((3, 4), name="as_sequence")(x)
    x = L.Conv1D(5, 2, data_format="channels_first", name="conv1d_cf")(x)
    x = L.Flatten(name="flat")(x)
    out = L.Dense(3, activation="softmax", name="predictions")(x)
    return K.Model(x_in, out, name="channels_mixture")


def normalizations(K):
    """Per-sample normalisation: LayerNormalization (last axis, all axes), GroupNormalization, UnitNormalization,
    Keras 3's RMSNormalization and rms_scaling; SpatialDropout1D and a Dense over every position."""
    L = K.layers
    x_in = K.Input(shape=(6, 5, 8), name="x")
    x = L.Conv2D(8, 3, padding="same", name="conv")(x_in)
    a = L.LayerNormalization(epsilon=1e-6, name="ln_last")(x)
    b = L.LayerNormalization(axis=[1, 2, 3], center=False, name="ln_all")(x)
    c = L.GroupNormalization(groups=4, epsilon=1e-4, name="gn")(x)
    d = L.UnitNormalization(name="unit")(x)
    branches = [a, b, c, d]
    if _is_k3(K):
        branches.append(L.RMSNormalization(name="rms")(x))
        branches.append(L.LayerNormalization(rms_scaling=True, name="ln_rms_scaling")(x))
    x = L.Add(name="sum")(branches)
    x = L.Dense(6, activation="gelu", name="per_pixel")(x)
    x = L.Reshape((30, 6), name="seq")(x)
    x = L.SpatialDropout1D(0.2, name="sdrop1d")(x)
    x = L.LayerNormalization(name="ln_seq")(x)
    x = L.GlobalAveragePooling1D(name="gap")(x)
    out = L.Dense(3, activation="softmax", name="predictions")(x)
    return K.Model(x_in, out, name="normalizations")


def mini_convnext(K):
    """keras.applications' ConvNeXt builder at a small size: LayerNormalization, LayerScale, 7×7 depthwise
    convolutions, Dense over positions, preprocessing Normalization inside the model."""
    args = dict(depths=[1, 1, 2, 1], projection_dims=[8, 16, 24, 32], default_size=32, input_shape=(32, 32, 3),
                classes=5, weights=None)
    if _is_k3(K):
        from keras.src.applications.convnext import ConvNeXt
        return ConvNeXt(name="mini_convnext", **args)
    from tf_keras.src.applications.convnext import ConvNeXt
    return ConvNeXt(model_name="mini_convnext", **args)


def inception_resnet_block(K):
    """InceptionResNetV2's scaled residual blocks (Keras 3 serialises CustomScaleLayer; tf-keras a Lambda, refused)."""
    from keras.src.applications.inception_resnet_v2 import inception_resnet_block as block
    L = K.layers
    x_in = K.Input(shape=(9, 9, 16), name="x")
    x = L.Conv2D(32, 1, name="widen")(x_in)
    x = block(x, scale=0.17, block_type="block35", block_idx=1)
    x = block(x, scale=0.3, block_type="block35", block_idx=2, activation=None)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return K.Model(x_in, x, name="inception_resnet_block")


def decoder_layers(K):
    """U-Net-style decoding and in-model preprocessing: Conv2DTranspose (valid, same, output_padding, dilation),
    Resizing (bilinear and nearest, up and down), CenterCrop, Permute, RepeatVector, and Keras 3's activations."""
    L = K.layers
    x_in = K.Input(shape=(11, 9, 3), name="x")
    x = L.Resizing(16, 12, name="resize_up")(x_in)
    x = L.CenterCrop(14, 10, name="center_crop")(x)
    x = L.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="down")(x)
    a = L.Conv2DTranspose(4, 3, strides=2, padding="same", name="up_same")(x)
    b = L.Conv2DTranspose(4, 3, strides=2, padding="valid", output_padding=1, activation="tanh", name="up_valid_op")(x)
    b = L.Cropping2D(((1, 1), (1, 1)), name="crop_b")(b)
    c = L.Conv2DTranspose(4, 2, strides=2, padding="valid", use_bias=False, name="up_k2")(x)
    d = L.Conv2DTranspose(4, 3, dilation_rate=2, padding="same", name="up_dilated")(x)
    d = L.Resizing(14, 10, interpolation="nearest", name="resize_nearest")(d)
    x = L.Concatenate(name="cat")([a, b, c, d])
    x = L.Resizing(7, 5, name="resize_down")(x)
    x = L.Permute((2, 1, 3), name="permute")(x)
    if _is_k3(K):
        acts = ["celu", "hard_tanh", "hard_shrink", "soft_shrink", "tanh_shrink", "log_sigmoid", "sparse_plus",
                "squareplus", "sparsemax"]
        x = L.Average(name="acts")([L.Activation(a, name=f"act_{a}")(x) for a in acts])
    x = L.Conv2D(5, 1, activation="softmax", name="per_pixel_softmax")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.RepeatVector(3, name="repeat")(x)
    x = L.Permute((2, 1), name="swap")(x)
    x = L.Flatten(name="flat")(x)
    if _is_k3(K):
        # glu halves the last axis; Keras's own shape inference does not know it, so it can only come last.
        x = L.Dense(8, activation="log_softmax", name="predictions")(x)
        out = L.Activation("glu", name="glu")(x)
    else:
        out = L.Dense(4, activation="softmax", name="predictions")(x)
    return K.Model(x_in, out, name="decoder_layers")


def augmented_classifier(K):
    """The Keras transfer-learning tutorial's shape: image augmentation layers inside the model (a nested Sequential,
    active only while training), then the classifier; AlphaDropout, and ThresholdedReLU (tf-keras) or Identity."""
    L = K.layers
    augment = K.Sequential([L.RandomFlip("horizontal"), L.RandomRotation(0.1), L.RandomZoom(0.1),
                            L.RandomContrast(0.2)], name="data_augmentation")
    x_in = K.Input(shape=(12, 12, 3), name="image")
    x = augment(x_in)
    x = L.Rescaling(1.0 / 127.5, offset=-1, name="rescale")(x)
    x = L.Conv2D(6, 3, activation="selu", name="conv")(x)
    x = L.AlphaDropout(0.1, name="alpha_drop")(x)
    x = L.ThresholdedReLU(theta=0.1, name="thresholded")(x) if not _is_k3(K) else L.Identity(name="identity")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(3, activation="softmax", name="predictions")(x)
    return K.Model(x_in, out, name="augmented_classifier")


def volumes(K):
    """3-D: Conv3D (strided, same and valid, dilated), max and average pooling 3D (same-padded average), global
    pooling 3D; a channels_first Conv3D and pooling; Dense on the pooled features."""
    L = K.layers
    x_in = K.Input(shape=(6, 7, 5, 2), name="clip")
    x = L.Conv3D(4, 3, padding="same", activation="relu", name="conv3d_same")(x_in)
    x = L.Conv3D(5, (2, 3, 2), strides=(1, 2, 1), name="conv3d_strided")(x)
    x = L.MaxPooling3D((2, 1, 2), name="maxpool3d")(x)
    y = L.Conv3D(3, 2, dilation_rate=(1, 1, 1), padding="same", use_bias=False, name="conv3d_nobias")(x)
    y = L.AveragePooling3D(2, strides=1, padding="same", name="avgpool3d_same")(y)
    a = L.GlobalAveragePooling3D(name="gap3d")(y)
    b = L.GlobalMaxPooling3D(keepdims=True, name="gmp3d_keep")(y)
    b = L.Reshape((3,), name="flat_keep")(b)
    c = L.Permute((4, 1, 2, 3), name="to_channels_first")(x)
    c = L.Conv3D(2, 2, data_format="channels_first", name="conv3d_cf")(c)
    c = L.GlobalAveragePooling3D(data_format="channels_first", name="gap3d_cf")(c)
    x = L.Concatenate(name="cat")([a, b, c])
    out = L.Dense(3, activation="softmax", name="predictions")(x)
    return K.Model(x_in, out, name="volumes")


# Sequence models. A builder's `input_<name>` function, when there is one, makes its input batch (token ids, or
# sequences with masked steps); the ids are saved as float32 for Graft.

def _padded(rng, shape, keep):
    """Standard-normal sequences whose steps from `keep[i]` on are all zeros (masked by Masking(0.0))."""
    x = rng.standard_normal(shape).astype("float32")
    for i, k in enumerate(keep):
        x[i, k:] = 0
    return x


def recurrent(K):
    """SimpleRNN, LSTM and GRU (reset_after true and false) behind Masking: return_sequences, go_backwards,
    return_state feeding another layer's initial_state (an encoder–decoder), a relu SimpleRNN, no-bias GRU."""
    L = K.layers
    x_in = K.Input(shape=(6, 4), name="frames")
    x = L.Masking(0.0, name="mask")(x_in)
    a = L.LSTM(5, return_sequences=True, name="lstm_seq")(x)
    a = L.GRU(4, return_sequences=True, go_backwards=True, name="gru_back")(a)
    a = L.SimpleRNN(3, activation="relu", name="rnn_last")(a)
    enc, h, c = L.LSTM(4, return_state=True, name="encoder")(x)
    dec = L.LSTM(4, name="decoder")(x, initial_state=[h, c])
    g, gs = L.GRU(3, reset_after=False, use_bias=False, return_state=True, name="gru_v1")(x)
    plain = L.GRU(3, return_sequences=True, name="gru_unmasked")(x_in)
    plain = L.Flatten(name="flat")(plain)
    x = L.Concatenate(name="cat")([a, enc, dec, g, gs, plain])
    out = L.Dense(3, activation="softmax", name="predictions")(x)
    return K.Model(x_in, out, name="recurrent")


def input_recurrent(rng, shape):
    return _padded(rng, [3] + shape, keep=[6, 4, 1])


def bidirectional(K):
    """Bidirectional over LSTM, GRU and SimpleRNN in every merge mode (concat, sum, mul, ave, None), with
    return_sequences and return_state, on masked sequences."""
    L = K.layers
    x_in = K.Input(shape=(5, 3), name="seq")
    x = L.Masking(0.0, name="mask")(x_in)
    s = L.Bidirectional(L.LSTM(4, return_sequences=True), name="bi_concat")(x)
    s = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum", name="bi_sum")(s)
    f, b = L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode=None, name="bi_none")(s)
    s = L.Add(name="both")([f, b])
    m = L.Bidirectional(L.GRU(2), merge_mode="mul", name="bi_mul")(s)
    v = L.Bidirectional(L.LSTM(2), merge_mode="ave", name="bi_ave")(x)
    o, fh, fc, bh, bc = L.Bidirectional(L.LSTM(2, return_state=True), name="bi_state")(x)
    x = L.Concatenate(name="cat")([m, v, o, fh, fc, bh, bc])
    out = L.Dense(2, name="logits")(x)
    return K.Model(x_in, out, name="bidirectional")


def input_bidirectional(rng, shape):
    return _padded(rng, [3] + shape, keep=[5, 3, 2])


def embedding_text(K):
    """Token ids: Embedding with mask_zero feeding a Bidirectional LSTM, a GRU and a masked GlobalAveragePooling1D;
    a second Embedding without a mask, TimeDistributed Dense."""
    L = K.layers
    ids = K.Input(shape=(7,), dtype="int32", name="tokens")
    e = L.Embedding(20, 6, mask_zero=True, name="embed")(ids)
    s = L.Bidirectional(L.LSTM(4, return_sequences=True), name="bi")(e)
    s = L.TimeDistributed(L.Dense(5, activation="tanh"), name="per_step")(s)
    a = L.GRU(3, name="gru")(s)
    p = L.GlobalAveragePooling1D(name="mean")(s)
    u = L.Embedding(20, 2, name="embed_plain")(ids)
    u = L.SimpleRNN(2, name="rnn_plain")(u)
    x = L.Concatenate(name="cat")([a, p, u])
    out = L.Dense(4, activation="softmax", name="predictions")(x)
    return K.Model(ids, out, name="embedding_text")


def input_embedding_text(rng, shape):
    ids = rng.integers(1, 20, size=[4] + shape)
    for i, k in enumerate([7, 5, 2, 6]):
        ids[i, k:] = 0
    ids[3, 1] = 0   # a masked step inside the sequence
    return ids


def embedding_sequential(K):
    """The text classifier of the Keras guides: Sequential Embedding(mask_zero) → LSTM → Dense."""
    L = K.layers
    return K.Sequential([
        K.Input(shape=(6,), dtype="int32"),
        L.Embedding(15, 4, mask_zero=True, name="embed"),
        L.LSTM(5, name="lstm"),
        L.Dropout(0.3, name="drop"),
        L.Dense(3, activation="softmax", name="predictions"),
    ], name="embedding_sequential")


def input_embedding_sequential(rng, shape):
    ids = rng.integers(1, 15, size=[3] + shape)
    ids[1, 3:] = 0
    ids[2, 1:] = 0
    return ids


def video_classifier(K):
    """A CNN applied to every frame (TimeDistributed over a nested Sequential with BatchNormalization), then an LSTM:
    the standard transfer of an image model to clips."""
    L = K.layers
    cnn = K.Sequential([
        K.Input(shape=(8, 8, 2)),
        L.Conv2D(4, 3, padding="same", name="frame_conv"),
        L.BatchNormalization(name="frame_bn"),
        L.Activation("relu", name="frame_relu"),
        L.MaxPooling2D(2, name="frame_pool"),
        L.GlobalAveragePooling2D(name="frame_gap"),
    ], name="frame_cnn")
    x_in = K.Input(shape=(4, 8, 8, 2), name="clip")
    x = L.TimeDistributed(cnn, name="per_frame")(x_in)
    x = L.LSTM(3, name="lstm")(x)
    out = L.Dense(2, activation="softmax", name="predictions")(x)
    return K.Model(x_in, out, name="video_classifier")


def attention(K):
    """Attention (dot with a scale, concat with a key), AdditiveAttention, causal attention, and MultiHeadAttention
    (self-attention, value_dim and output_shape, causal, no bias, returned scores) on a masked sequence; the masks
    reach a masked GlobalAveragePooling1D through a Concatenate.

    Each MultiHeadAttention reads tensors no other attention layer reads: Keras 3's MultiHeadAttention removes the
    masks of its input tensors while it runs, so a layer reading the same tensor after it sees no mask when the
    model runs (though it did when the model was built)."""
    L = K.layers
    x_in = K.Input(shape=(6, 4), name="tokens")
    x = L.Masking(0.0, name="mask")(x_in)
    q = L.Dense(4, name="q")(x)
    v = L.Dense(4, name="v")(x)
    k = L.Dense(4, name="k")(x)
    a = L.Attention(use_scale=True, name="dot")([q, v])
    b = L.Attention(score_mode="concat", use_scale=True, name="concat")([q, v, k])
    c = L.AdditiveAttention(name="additive")([q, v])
    d = L.Attention(name="causal")([q, v], use_causal_mask=True)
    m = L.MultiHeadAttention(2, 3, name="self_mha")(L.Masking(0.0, name="mask_self")(x_in), L.Masking(0.0, name="mask_value")(x_in))
    x2 = L.Masking(0.0, name="mask2")(x_in)
    m2 = L.MultiHeadAttention(2, 3, value_dim=2, output_shape=5, name="mha_causal")(
        L.Dense(4, name="q2")(x2), L.Dense(4, name="v2")(x2), L.Dense(3, name="k2")(x2), use_causal_mask=True)
    x3 = L.Masking(0.0, name="mask3")(x_in)
    m3, scores = L.MultiHeadAttention(1, 2, use_bias=False, name="mha_scores")(
        L.Dense(4, name="q3")(x3), L.Dense(3, name="v3")(x3), return_attention_scores=True)
    y = L.Concatenate(name="cat")([a, b, c, d, m, m2, m3])
    y = L.GlobalAveragePooling1D(name="mean")(y)
    s = L.Flatten(name="flat_scores")(scores)
    out = L.Dense(3, name="logits")(L.Concatenate(name="features")([y, s]))
    return K.Model(x_in, out, name="attention")


def input_attention(rng, shape):
    return _padded(rng, [3] + shape, keep=[6, 4, 2])


def transformer(K):
    """Two Transformer encoder blocks over padded token ids (Embedding with mask_zero, MultiHeadAttention, residual
    Add, LayerNormalization, a feed-forward Dense), pooled with the padding mask; an Attention layer on the embedded
    tokens that runs before the first block's attention and one that runs after it.

    Keras 3's MultiHeadAttention removes the masks of its input tensors while it runs: when Keras 3 runs this model,
    the second block, its residual sums and the later Attention see no padding mask, though they had one when the
    model was built (the pooling's mask, written into the config, keeps it); tf-keras keeps every mask."""
    L = K.layers
    ids = K.Input(shape=(6,), dtype="int32", name="tokens")
    x = L.Embedding(12, 8, mask_zero=True, name="embed")(ids)
    pre = L.Attention(name="pre")([x, x])
    a = L.MultiHeadAttention(2, 4, name="mha1")(x, pre)
    y = L.LayerNormalization(name="norm1")(L.Add(name="res1")([x, a]))
    f = L.Dense(8, activation="relu", name="ffn1")(y)
    y = L.LayerNormalization(name="norm2")(L.Add(name="res2")([y, f]))
    a2 = L.MultiHeadAttention(2, 4, name="mha2")(y, y)
    z = L.Add(name="res3")([y, a2])
    late = L.Attention(name="late")([x, x])
    p = L.GlobalAveragePooling1D(name="pool")(z)
    q = L.GlobalAveragePooling1D(name="pool_late")(late)
    out = L.Dense(3, name="logits")(L.Concatenate(name="features")([p, q]))
    return K.Model(ids, out, name="transformer")


def input_transformer(rng, shape):
    ids = rng.integers(1, 12, size=[4] + shape)
    for i, k in enumerate([6, 4, 2, 5]):
        ids[i, k:] = 0
    return ids


def conv_lstm(K):
    """ConvLSTM2D on short clips: same padding returning sequences, then valid padding with a 2×3 kernel run
    backwards returning its states, a dilated one; flattened into a Dense."""
    L = K.layers
    x_in = K.Input(shape=(4, 7, 6, 2), name="clip")
    x = L.ConvLSTM2D(3, 3, padding="same", return_sequences=True, name="convlstm_seq")(x_in)
    y, h, c = L.ConvLSTM2D(2, (2, 3), go_backwards=True, return_state=True, name="convlstm_state")(x)
    z = L.ConvLSTM2D(2, 2, dilation_rate=2, use_bias=False, recurrent_activation="hard_sigmoid", name="convlstm_dilated")(x)
    x = L.Concatenate(name="cat")([L.Flatten(name="fy")(y), L.Flatten(name="fc")(c), L.Flatten(name="fz")(z)])
    out = L.Dense(3, activation="softmax", name="predictions")(x)
    return K.Model(x_in, out, name="conv_lstm")
