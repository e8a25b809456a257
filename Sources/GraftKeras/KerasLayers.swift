import GraftNN
import GraftTensor

/// Turns one Keras layer config (`{"class_name": …, "config": {…}}`) into a Graft layer.
enum KerasLayerFactory {
    /// The layer classes Graft can rebuild (Keras 2 and 3 spellings).
    static let supported: Set<String> = [
        "InputLayer", "Conv2D", "Convolution2D", "DepthwiseConv2D", "SeparableConv2D", "SeparableConvolution2D",
        "Dense", "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
        "MaxPooling2D", "MaxPool2D", "AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D", "GlobalAvgPool2D",
        "GlobalMaxPooling2D", "GlobalMaxPool2D", "ZeroPadding2D", "Cropping2D", "Flatten", "Reshape", "Dropout",
        "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ActivityRegularization", "Add", "Subtract",
        "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Rescaling", "Normalization", "UpSampling2D",
        "LocallyConnected2D", "TFOpLambda",
    ]

    /// Builds a layer. `operands` carries the constants of a math op; `kerasMajor` picks version-specific semantics.
    static func make(className: String, module: String?, config c: JSON, name: String, kerasMajor: Int,
                     operands: [TensorOp.Operand]) throws -> any Layer {
        if let module, module.hasPrefix("keras.src.ops") || module.hasPrefix("keras.ops") {
            return try makeOp(className: className, name: name, operands: operands)
        }
        switch className {
        case "InputLayer":
            let shape = try inputShape(c, name: name)
            return InputLayer(name: name, shape: shape)
        case "Conv2D", "Convolution2D":
            try channelsLast(c, name)
            return Conv2D(name: name, config: try convConfig(c, kerasMajor: kerasMajor))
        case "SeparableConv2D", "SeparableConvolution2D":
            try channelsLast(c, name)
            return SeparableConv2D(name: name, config: try convConfig(c, kerasMajor: kerasMajor),
                                   depthMultiplier: try c["depth_multiplier"].int(default: 1))
        case "DepthwiseConv2D":
            try channelsLast(c, name)
            return DepthwiseConv2D(name: name, config: DepthwiseConv2DConfig(
                kernelSize: try c["kernel_size"].ints(2), strides: try c["strides"].ints(2, default: [1, 1]),
                padding: try padding(c), depthMultiplier: try c["depth_multiplier"].int(default: 1),
                dilation: try c["dilation_rate"].ints(2, default: [1, 1]), useBias: try c["use_bias"].bool(default: true),
                activation: try activation(c["activation"], kerasMajor: kerasMajor)))
        case "LocallyConnected2D":
            try channelsLast(c, name)
            let impl = try c["implementation"].int(default: 1)
            guard impl == 1 else { throw KerasError("layer \(name) (LocallyConnected2D): implementation \(impl) is not supported (only 1)", layer: name) }
            return LocallyConnected2D(name: name, config: try convConfig(c, kerasMajor: kerasMajor))
        case "Dense":
            return Dense(name: name, units: try c["units"].int(), useBias: try c["use_bias"].bool(default: true),
                         activation: try activation(c["activation"], kerasMajor: kerasMajor))
        case "BatchNormalization":
            let axis = c["axis"].array?.first?.int ?? c["axis"].int ?? -1
            return BatchNormalization(name: name, epsilon: try c["epsilon"].float(default: 1e-3),
                                      momentum: try c["momentum"].float(default: 0.99),
                                      center: try c["center"].bool(default: true), scale: try c["scale"].bool(default: true),
                                      axis: axis)
        case "Activation":
            return ActivationLayer(name: name, activation: try activation(c["activation"], kerasMajor: kerasMajor))
        case "ReLU":
            let maxValue: Float? = c["max_value"].isNull ? nil : try c["max_value"].float()
            return ActivationLayer(name: name, kerasClassName: "ReLU", activation: .reluGeneral(
                maxValue: maxValue, negativeSlope: try c["negative_slope"].float(default: 0),
                threshold: try c["threshold"].float(default: 0)))
        case "LeakyReLU":
            let slope = c["negative_slope"].isNull ? try c["alpha"].float(default: 0.3) : try c["negative_slope"].float()
            return ActivationLayer(name: name, kerasClassName: "LeakyReLU", activation: .leakyReLU(alpha: slope))
        case "ELU":
            return ActivationLayer(name: name, kerasClassName: "ELU", activation: .elu(alpha: try c["alpha"].float(default: 1)))
        case "Softmax":
            let axis = c["axis"].array?.first?.int ?? c["axis"].int ?? -1
            guard axis == -1 else { throw KerasError("layer \(name) (Softmax): only axis -1 is supported, got \(axis)", layer: name) }
            return ActivationLayer(name: name, kerasClassName: "Softmax", activation: .softmax)
        case "PReLU":
            let shared = try c["shared_axes"].isNull ? [] : (c["shared_axes"].array ?? [c["shared_axes"]]).map { try $0.int() }
            return PReLU(name: name, sharedAxes: shared)
        case "MaxPooling2D", "MaxPool2D", "AveragePooling2D", "AvgPool2D":
            try channelsLast(c, name)
            let pool = try c["pool_size"].ints(2, default: [2, 2])
            return Pooling2D(name: name, kind: className.hasPrefix("Max") ? .max : .average, poolSize: pool,
                             strides: try c["strides"].ints(2, default: pool), padding: try padding(c))
        case "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPooling2D", "GlobalMaxPool2D":
            try channelsLast(c, name)
            return GlobalPooling2D(name: name, kind: className.contains("Max") ? .max : .average,
                                   keepDims: try c["keepdims"].bool(default: false))
        case "ZeroPadding2D", "Cropping2D":
            try channelsLast(c, name)
            let key = className == "ZeroPadding2D" ? "padding" : "cropping"
            return Padding2D(name: name, amounts: try pairs(c[key]), cropping: className == "Cropping2D")
        case "Flatten":
            try channelsLast(c, name)
            return Flatten(name: name)
        case "Reshape":
            return Reshape(name: name, targetShape: try (c["target_shape"].array ?? []).map { try $0.int() })
        case "Dropout", "SpatialDropout2D", "GaussianDropout":
            return InferenceIdentity(name: name, kerasClassName: className, rate: try c["rate"].float(default: 0))
        case "GaussianNoise":
            return InferenceIdentity(name: name, kerasClassName: className, rate: try c["stddev"].float(default: 0))
        case "ActivityRegularization":
            return InferenceIdentity(name: name, kerasClassName: className, rate: 0)
        case "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum":
            guard let kind = Merge.Kind(rawValue: className) else { throw KerasError("layer \(name): unsupported merge \(className)", layer: name) }
            return Merge(name: name, kind: kind)
        case "Concatenate":
            return Concatenate(name: name, axis: try c["axis"].int(default: -1))
        case "Rescaling":
            return Rescaling(name: name, scale: try floats(c["scale"], default: 1), offset: try floats(c["offset"], default: 0))
        case "Normalization":
            let axis = c["axis"].array?.first?.int ?? c["axis"].int ?? -1
            guard axis == -1 || axis == 3 else { throw KerasError("layer \(name) (Normalization): axis \(axis) is not supported", layer: name) }
            let mean: [Float]? = c["mean"].isNull ? nil : try floats(c["mean"], default: 0)
            let variance: [Float]? = c["variance"].isNull ? nil : try floats(c["variance"], default: 1)
            return Normalization(name: name, mean: mean, variance: variance, invert: try c["invert"].bool(default: false))
        case "UpSampling2D":
            try channelsLast(c, name)
            let interp = c["interpolation"].string ?? "nearest"
            guard interp == "nearest" || interp == "bilinear" else {
                throw KerasError("layer \(name) (UpSampling2D): interpolation \"\(interp)\" is not supported", layer: name)
            }
            return UpSampling2D(name: name, size: try c["size"].ints(2, default: [2, 2]), bilinear: interp == "bilinear")
        case "TFOpLambda":
            let function = try c["function"].string("a function name")
            return try makeOp(className: function, name: name, operands: operands)
        default:
            throw KerasError("layer \(name): unsupported layer class \(className)", layer: name)
        }
    }

    static func makeOp(className: String, name: String, operands: [TensorOp.Operand]) throws -> any Layer {
        let op: BinaryOp
        switch className {
        case "Add", "add", "__operators__.add", "math.add": op = .add
        case "Subtract", "subtract", "__operators__.sub", "math.subtract": op = .subtract
        case "Multiply", "multiply", "__operators__.mul", "math.multiply": op = .multiply
        case "Divide", "TrueDivide", "divide", "true_divide", "__operators__.truediv", "math.truediv", "math.divide": op = .divide
        case "Maximum", "maximum", "math.maximum": op = .maximum
        case "Minimum", "minimum", "math.minimum": op = .minimum
        default:
            throw KerasError("layer \(name): unsupported operation \(className)", layer: name)
        }
        return TensorOp(name: name, kerasClassName: className, op: op, operands: operands)
    }

    static func inputShape(_ c: JSON, name: String) throws -> [Int] {
        let shape = c["batch_shape"].isNull ? c["batch_input_shape"] : c["batch_shape"]
        guard let dims = shape.array, dims.count >= 2 else {
            throw KerasError("layer \(name) (InputLayer): no batch_shape or batch_input_shape in its config", layer: name)
        }
        return try dims.dropFirst().map { $0.isNull ? -1 : try $0.int() }
    }

    static func channelsLast(_ c: JSON, _ name: String) throws {
        if let f = c["data_format"].string, f != "channels_last" {
            throw KerasError("layer \(name): data_format \(f) is not supported (channels_last only)", layer: name)
        }
    }

    static func padding(_ c: JSON) throws -> Padding {
        let p = c["padding"].string ?? "valid"
        guard let v = Padding(rawValue: p.lowercased()) else {
            throw KerasError("config key \(c["padding"].path): padding \"\(p)\" is not supported (valid or same)", key: c["padding"].path)
        }
        return v
    }

    static func convConfig(_ c: JSON, kerasMajor: Int) throws -> Conv2DConfig {
        Conv2DConfig(filters: try c["filters"].int(), kernelSize: try c["kernel_size"].ints(2),
                     strides: try c["strides"].ints(2, default: [1, 1]), padding: try padding(c),
                     dilation: try c["dilation_rate"].ints(2, default: [1, 1]), groups: try c["groups"].int(default: 1),
                     useBias: try c["use_bias"].bool(default: true),
                     activation: try activation(c["activation"], kerasMajor: kerasMajor))
    }

    /// `1`, `[1, 2]` or `[[1, 2], [3, 4]]` → `[[top, bottom], [left, right]]`.
    static func pairs(_ j: JSON) throws -> [[Int]] {
        if let i = j.int { return [[i, i], [i, i]] }
        guard let a = j.array, a.count == 2 else { throw KerasError("config key \(j.path): expected padding amounts, found \(j.render)", key: j.path) }
        if let x = a[0].int, let y = a[1].int { return [[x, x], [y, y]] }
        return try a.map { try $0.ints(2) }
    }

    static func floats(_ j: JSON, default d: Float) throws -> [Float] {
        if j.isNull { return [d] }
        if let v = j.double { return [Float(v)] }
        guard let a = j.array else { throw KerasError("config key \(j.path): expected a number or list, found \(j.render)", key: j.path) }
        // Keras may store per-channel values with leading broadcast dims ([[[[…]]]]): flatten them.
        var out: [Float] = []
        func collect(_ x: JSON) throws {
            if let arr = x.array { for e in arr { try collect(e) } } else { out.append(try x.float()) }
        }
        for e in a { try collect(e) }
        return out
    }

    /// A Keras activation given by name (or a serialised dict holding the name).
    static func activation(_ j: JSON, kerasMajor: Int) throws -> ActivationKind {
        if j.isNull { return .linear }
        var name = j.string
        if name == nil, j.object != nil {
            name = j["config"].string ?? j["config"]["name"].string ?? j["class_name"].string
        }
        guard let n = name else { throw KerasError("config key \(j.path): expected an activation name, found \(j.render)", key: j.path) }
        switch n {
        case "linear", "Linear": return .linear
        case "relu": return .relu
        case "relu6": return .relu6
        case "sigmoid": return .sigmoid
        case "tanh": return .tanh
        case "softmax": return .softmax
        case "softplus": return .softplus
        case "softsign": return .softsign
        case "exponential": return .exponential
        case "swish", "silu": return .swish
        case "elu": return .elu(alpha: 1)
        case "selu": return .selu
        case "gelu": return .gelu(approximate: false)
        case "hard_sigmoid": return .hardSigmoid(keras2: kerasMajor < 3)
        case "hard_swish", "hard_silu": return .hardSwish
        case "leaky_relu": return .leakyReLU(alpha: 0.2)
        case "mish": return .mish
        default: throw KerasError("config key \(j.path): unsupported activation \"\(n)\"", key: j.path)
        }
    }
}
