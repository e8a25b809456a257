import Foundation
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
        "LocallyConnected2D", "TFOpLambda", "LayerNormalization", "RMSNormalization", "GroupNormalization",
        "UnitNormalization", "SpatialDropout1D", "SpatialDropout3D", "Conv2DTranspose", "Convolution2DTranspose",
        "Deconvolution2D", "Resizing", "CenterCrop", "Permute", "RepeatVector",
        "Identity", "AlphaDropout", "ThresholdedReLU",
        "Conv3D", "Convolution3D", "MaxPooling3D", "MaxPool3D", "AveragePooling3D", "AvgPool3D", "GlobalAveragePooling3D",
        "GlobalAvgPool3D", "GlobalMaxPooling3D", "GlobalMaxPool3D",
        // Graft's own: a tiled convolution, in the checkpoints Graft writes.
        "TiledConv2D",
        // Classes keras.applications defines and serialises (ConvNeXt, InceptionResNetV2).
        "LayerScale", "StochasticDepth", "CustomScaleLayer",
    ]

    /// Keras's image augmentation layers that act only while training and pass images through unchanged otherwise:
    /// Graft keeps them as such (it augments in its input pipeline: `--augment`).
    static let trainingAugmentation: Set<String> = [
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
        "RandomHue", "RandomSaturation", "RandomGrayscale", "RandomSharpness", "RandomShear", "RandomPerspective",
        "RandomColorJitter", "RandomColorDegeneration", "RandomPosterization", "RandomInvert", "RandomErasing",
        "RandomGaussianBlur", "RandomElasticTransform", "AugMix", "CutMix", "MixUp", "RandAugment",
    ]

    /// The module each keras.applications class comes from: a class of that name from another package is not
    /// assumed to compute the same thing.
    static let applicationModules: [String: String] = [
        "LayerScale": "convnext", "StochasticDepth": "convnext", "CustomScaleLayer": "inception_resnet_v2",
    ]
    /// Every layer class name `make` builds (aliases included), beside nested models and Keras 3's ops.
    static var accepted: Set<String> {
        supported.union(oneDimensional.keys).union(trainingAugmentation).union(KerasSequenceLayers.classes)
    }

    /// The 1-D classes, each run as the 2-D class it maps to on a one-pixel-high image (`Sequence1D`).
    static let oneDimensional: [String: String] = [
        "Conv1D": "Conv2D", "Convolution1D": "Conv2D", "SeparableConv1D": "SeparableConv2D",
        "SeparableConvolution1D": "SeparableConv2D", "DepthwiseConv1D": "DepthwiseConv2D",
        "MaxPooling1D": "MaxPooling2D", "MaxPool1D": "MaxPooling2D", "AveragePooling1D": "AveragePooling2D",
        "AvgPool1D": "AveragePooling2D", "GlobalAveragePooling1D": "GlobalAveragePooling2D",
        "GlobalAvgPool1D": "GlobalAveragePooling2D", "GlobalMaxPooling1D": "GlobalMaxPooling2D",
        "GlobalMaxPool1D": "GlobalMaxPooling2D", "ZeroPadding1D": "ZeroPadding2D", "Cropping1D": "Cropping2D",
        "UpSampling1D": "UpSampling2D",
    ]

    /// The classes whose `data_format` changes what they compute (a `channels_first` one is run channels-last on a
    /// permuted input: `ChannelsFirst`).
    static let dataFormatClasses: Set<String> = [
        "Conv2D", "Convolution2D", "SeparableConv2D", "SeparableConvolution2D", "DepthwiseConv2D", "MaxPooling2D",
        "MaxPool2D", "AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPooling2D",
        "GlobalMaxPool2D", "ZeroPadding2D", "Cropping2D", "Flatten", "UpSampling2D", "LocallyConnected2D",
        "Conv2DTranspose", "Convolution2DTranspose", "Deconvolution2D", "Resizing", "CenterCrop",
        "Conv3D", "Convolution3D", "MaxPooling3D", "MaxPool3D", "AveragePooling3D", "AvgPool3D", "GlobalAveragePooling3D",
        "GlobalAvgPool3D", "GlobalMaxPooling3D", "GlobalMaxPool3D",
    ]

    /// Builds a layer. `operands` carries the constants of a math op; `kerasMajor` picks version-specific semantics.
    static func make(className: String, module: String?, config c: JSON, name: String, kerasMajor: Int,
                     operands: [TensorOp.Operand]) throws -> any Layer {
        if let module, module.hasPrefix("keras.src.ops") || module.hasPrefix("keras.ops") {
            if className == "Any" || className == "All" {
                let axis = c["axis"].array?.first ?? c["axis"]
                guard axis.int == -1, try !c["keepdims"].bool(default: false) else {
                    throw KerasError("layer \(name): \(className.lowercased()) is supported over the last axis (a mask), got axis \(axis.render)", layer: name)
                }
            }
            return try makeOp(className: className, name: name, operands: operands)
        }
        if className == "Lambda" {
            throw KerasError("layer \(name) (Lambda): a Lambda layer holds Python code, and Graft never runs code from a file; rebuild the model with built-in layers in its place", layer: name)
        }
        if KerasSequenceLayers.classes.contains(className) {
            return try KerasSequenceLayers.make(className: className, config: c, name: name, kerasMajor: kerasMajor)
        }
        let rank = oneDimensional[className] == nil ? 2 : 1
        let planar = oneDimensional[className] ?? className
        let known = applicationModules[planar].map { from in module.map { $0.hasSuffix(".\(from)") } ?? true } ?? true
        if trainingAugmentation.contains(planar) {
            let settings = (c.object.flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) })
                .map { String(decoding: $0, as: UTF8.self) }
            return InferenceIdentity(name: name, kerasClassName: planar, rate: 0, originalSettings: settings)
        }
        guard supported.contains(planar), known else {
            let qualified = module.map { "\($0).\(className)" } ?? className
            throw KerasError("layer \(name): unsupported layer class \(qualified)", layer: name)
        }
        var layer = try makePlanar(className: planar, config: c, name: name, rank: rank, kerasMajor: kerasMajor, operands: operands)
        if rank == 1 {
            layer = Sequence1D(layer, kerasClassName: layer.kerasClassName.replacingOccurrences(of: "2D", with: "1D"))
        }
        if dataFormatClasses.contains(planar), let format = c["data_format"].string {
            switch format {
            case "channels_last": break
            case "channels_first":
                guard planar != "LocallyConnected2D" else {
                    throw KerasError("layer \(name) (LocallyConnected2D): data_format channels_first is not supported (its kernel orders patches differently)", layer: name)
                }
                layer = ChannelsFirst(layer)
            default:
                throw KerasError("config key \(c["data_format"].path): data_format \"\(format)\" is not channels_last or channels_first", key: c["data_format"].path)
            }
        }
        return layer
    }

    /// A 2-D (channels-last) layer; `rank` 1 reads a 1-D layer's config as the 2-D layer that computes it.
    static func makePlanar(className: String, config c: JSON, name: String, rank: Int, kerasMajor: Int,
                           operands: [TensorOp.Operand]) throws -> any Layer {
        func spatial(_ key: String, default d: Int? = nil) throws -> [Int] { try spatialSizes(c[key], rank: rank, default: d) }
        switch className {
        case "InputLayer":
            let shape = try inputShape(c, name: name)
            return InputLayer(name: name, shape: shape)
        case "Conv2D", "Convolution2D":
            return Conv2D(name: name, config: try convConfig(c, rank: rank, kerasMajor: kerasMajor))
        case "SeparableConv2D", "SeparableConvolution2D":
            return SeparableConv2D(name: name, config: try convConfig(c, rank: rank, kerasMajor: kerasMajor),
                                   depthMultiplier: try c["depth_multiplier"].int(default: 1))
        case "DepthwiseConv2D":
            return DepthwiseConv2D(name: name, config: DepthwiseConv2DConfig(
                kernelSize: try spatial("kernel_size"), strides: try spatial("strides", default: 1),
                padding: try padding(c, causal: rank == 1), depthMultiplier: try c["depth_multiplier"].int(default: 1),
                dilation: try spatial("dilation_rate", default: 1), useBias: try c["use_bias"].bool(default: true),
                activation: try activation(c["activation"], kerasMajor: kerasMajor)))
        case "LocallyConnected2D":
            let impl = try c["implementation"].int(default: 1)
            guard impl == 1 else { throw KerasError("layer \(name) (LocallyConnected2D): implementation \(impl) is not supported (only 1)", layer: name) }
            return LocallyConnected2D(name: name, config: try convConfig(c, rank: rank, kerasMajor: kerasMajor))
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
            if c["activation"].string == "glu" || c["activation"]["config"].string == "glu" { return GatedLinearUnit(name: name) }
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
            let pool = try spatial("pool_size", default: 2)
            let strides = c["strides"].isNull ? pool : try spatial("strides")
            return Pooling2D(name: name, kind: className.hasPrefix("Max") ? .max : .average, poolSize: pool,
                             strides: strides, padding: try padding(c))
        case "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPooling2D", "GlobalMaxPool2D":
            return GlobalPooling2D(name: name, kind: className.contains("Max") ? .max : .average,
                                   keepDims: try c["keepdims"].bool(default: false))
        case "ZeroPadding2D", "Cropping2D":
            let key = className == "ZeroPadding2D" ? "padding" : "cropping"
            let amounts = rank == 1 ? [[0, 0], try c[key].ints(2)] : try pairs(c[key])
            return Padding2D(name: name, amounts: amounts, cropping: className == "Cropping2D")
        case "Flatten":
            return Flatten(name: name)
        case "Reshape":
            return Reshape(name: name, targetShape: try (c["target_shape"].array ?? []).map { try $0.int() })
        case "Conv3D", "Convolution3D":
            guard try c["groups"].int(default: 1) == 1 else { throw KerasError("layer \(name) (Conv3D): groups are not supported", layer: name) }
            return Conv3D(name: name, filters: try c["filters"].int(), kernelSize: try c["kernel_size"].ints(3),
                          strides: try c["strides"].ints(3, default: [1, 1, 1]), padding: try padding(c),
                          dilation: try c["dilation_rate"].ints(3, default: [1, 1, 1]), useBias: try c["use_bias"].bool(default: true),
                          activation: try activation(c["activation"], kerasMajor: kerasMajor))
        case "MaxPooling3D", "MaxPool3D", "AveragePooling3D", "AvgPool3D":
            let pool = try c["pool_size"].ints(3, default: [2, 2, 2])
            let strides = c["strides"].isNull ? pool : try c["strides"].ints(3)
            return Pooling3D(name: name, kind: className.hasPrefix("Max") ? .max : .average, poolSize: pool, strides: strides,
                             padding: try padding(c))
        case "GlobalAveragePooling3D", "GlobalAvgPool3D", "GlobalMaxPooling3D", "GlobalMaxPool3D":
            return GlobalPooling3D(name: name, kind: className.contains("Max") ? .max : .average, keepDims: try c["keepdims"].bool(default: false))
        case "TiledConv2D":
            return TiledConv2D(name: name, config: try convConfig(c, kerasMajor: kerasMajor), tiles: try c["tiles"].ints(2))
        case "Conv2DTranspose", "Convolution2DTranspose", "Deconvolution2D":
            let op: [Int]? = c["output_padding"].isNull ? nil : try c["output_padding"].ints(2)
            return Conv2DTranspose(name: name, config: try convConfig(c, kerasMajor: kerasMajor), outputPadding: op)
        case "Resizing":
            let interp = c["interpolation"].string ?? "bilinear"
            guard interp == "bilinear" || interp == "nearest" else {
                throw KerasError("layer \(name) (Resizing): interpolation \"\(interp)\" is not supported (bilinear or nearest)", layer: name)
            }
            for key in ["crop_to_aspect_ratio", "pad_to_aspect_ratio"] where try c[key].bool(default: false) {
                throw KerasError("layer \(name) (Resizing): \(key) is not supported", layer: name)
            }
            if try c["antialias"].bool(default: false) {
                throw KerasError("layer \(name) (Resizing): antialias is not supported", layer: name)
            }
            return Resizing(name: name, height: try c["height"].int(), width: try c["width"].int(), bilinear: interp == "bilinear")
        case "CenterCrop":
            return CenterCrop(name: name, height: try c["height"].int(), width: try c["width"].int())
        case "Permute":
            return Permute(name: name, dims: try (c["dims"].array ?? []).map { try $0.int() })
        case "RepeatVector":
            return RepeatVector(name: name, count: try c["n"].int())
        case "LayerNormalization", "RMSNormalization":
            let axes = try (c["axis"].array ?? [c["axis"]]).map { $0.isNull ? -1 : try $0.int() }
            let rms = className == "RMSNormalization"
            let mode: LayerNormalization.Mode = rms ? .rms : try c["rms_scaling"].bool(default: false) ? .rmsScaling : .standard
            return LayerNormalization(name: name, axis: axes, epsilon: try c["epsilon"].float(default: rms ? 1e-6 : 1e-3),
                                      center: try c["center"].bool(default: !rms), scale: try c["scale"].bool(default: true), mode: mode)
        case "GroupNormalization":
            let axis = try c["axis"].int(default: -1)
            guard axis == -1 else { throw KerasError("layer \(name) (GroupNormalization): axis \(axis) is not supported (the last axis, -1)", layer: name) }
            return GroupNormalization(name: name, groups: try c["groups"].int(default: 32), epsilon: try c["epsilon"].float(default: 1e-3),
                                      center: try c["center"].bool(default: true), scale: try c["scale"].bool(default: true))
        case "UnitNormalization":
            let axes = try (c["axis"].array ?? [c["axis"]]).map { $0.isNull ? -1 : try $0.int() }
            guard axes == [-1] else { throw KerasError("layer \(name) (UnitNormalization): axis \(axes) is not supported (the last axis, -1)", layer: name) }
            return UnitNormalization(name: name)
        case "LayerScale":
            return LayerScale(name: name, initialValue: try c["init_values"].float(default: 1e-6))
        case "CustomScaleLayer":
            return ScaledResidual(name: name, scale: try c["scale"].float())
        case "StochasticDepth":
            return InferenceIdentity(name: name, kerasClassName: className, rate: try c["drop_path_rate"].float(default: 0))
        case "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout":
            return InferenceIdentity(name: name, kerasClassName: className, rate: try c["rate"].float(default: 0))
        case "GaussianNoise":
            return InferenceIdentity(name: name, kerasClassName: className, rate: try c["stddev"].float(default: 0))
        case "ActivityRegularization", "Identity":
            return InferenceIdentity(name: name, kerasClassName: className, rate: 0)
        case "AlphaDropout":
            return InferenceIdentity(name: name, kerasClassName: className, rate: try c["rate"].float(default: 0))
        case "ThresholdedReLU":
            return ActivationLayer(name: name, kerasClassName: "ReLU", activation: .reluGeneral(
                maxValue: nil, negativeSlope: 0, threshold: try c["theta"].float(default: 1)))
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
            let interp = rank == 1 ? "nearest" : c["interpolation"].string ?? "nearest"
            guard interp == "nearest" || interp == "bilinear" else {
                throw KerasError("layer \(name) (UpSampling2D): interpolation \"\(interp)\" is not supported", layer: name)
            }
            return UpSampling2D(name: name, size: try spatial("size", default: 2), bilinear: interp == "bilinear")
        case "TFOpLambda":
            let function = try c["function"].string("a function name")
            return try makeOp(className: function, name: name, operands: operands)
        default:
            throw KerasError("layer \(name): unsupported layer class \(className)", layer: name)
        }
    }

    static func makeOp(className: String, name: String, operands: [TensorOp.Operand]) throws -> any Layer {
        let op: BinaryOp
        // The ops Keras 3 computes masks with.
        switch className {
        case "NotEqual", "not_equal":
            let constants = operands.compactMap { if case .constant(let v) = $0 { return v } else { return nil } }
            guard operands.count == 2, constants.count == 1 else {
                throw KerasError("layer \(name): not_equal is supported against a constant (a mask), got \(operands.count) operands", layer: name)
            }
            return SequenceMask(name: name, kind: .notEqual(constants[0]))
        case "Any", "All":
            return SequenceMask(name: name, kind: className == "Any" ? .anyAlongLastAxis : .allAlongLastAxis)
        case "LogicalOr", "LogicalAnd":
            return SequenceMask(name: name, kind: className == "LogicalOr" ? .any : .all)
        default: break
        }
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

    /// A window's sizes per spatial axis (`3` or `[3, 3]`); `rank` 1 reads a 1-D layer's `[k]` as `[1, k]`.
    static func spatialSizes(_ j: JSON, rank: Int, default d: Int?) throws -> [Int] {
        let v = try j.ints(rank, default: d.map { [Int](repeating: $0, count: rank) })
        return rank == 1 ? [1] + v : v
    }

    /// `valid`, `same`, or for a 1-D convolution (`causal`) also `causal`.
    static func padding(_ c: JSON, causal: Bool = false) throws -> Padding {
        let p = c["padding"].string ?? "valid"
        guard let v = Padding(rawValue: p.lowercased()), v != .causal || causal else {
            throw KerasError("config key \(c["padding"].path): padding \"\(p)\" is not supported (valid or same\(causal ? ", or causal" : ""))", key: c["padding"].path)
        }
        return v
    }

    /// A convolution's settings; `rank` 1 reads a 1-D convolution's as the `[1, k]` 2-D one.
    static func convConfig(_ c: JSON, rank: Int = 2, kerasMajor: Int) throws -> Conv2DConfig {
        func spatial(_ key: String, default d: Int? = nil) throws -> [Int] { try spatialSizes(c[key], rank: rank, default: d) }
        return Conv2DConfig(filters: try c["filters"].int(), kernelSize: try spatial("kernel_size"),
                     strides: try spatial("strides", default: 1), padding: try padding(c, causal: rank == 1),
                     dilation: try spatial("dilation_rate", default: 1), groups: try c["groups"].int(default: 1),
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
        case "celu": return .celu(alpha: 1)
        case "hard_tanh": return .hardTanh
        case "hard_shrink": return .hardShrink(threshold: 0.5)
        case "soft_shrink": return .softShrink(threshold: 0.5)
        case "tanh_shrink": return .tanhShrink
        case "log_sigmoid": return .logSigmoid
        case "sparse_plus": return .sparsePlus
        case "squareplus": return .squareplus(b: 4)
        case "log_softmax": return .logSoftmax
        case "sparsemax": return .sparsemax
        case "glu":
            throw KerasError("config key \(j.path): activation \"glu\" halves the last axis; Graft takes it as an Activation layer only", key: j.path)
        case "threshold":
            throw KerasError("config key \(j.path): activation \"threshold\" needs arguments a config cannot give; use a ReLU layer's threshold", key: j.path)
        default: throw KerasError("config key \(j.path): unsupported activation \"\(n)\"", key: j.path)
        }
    }
}
