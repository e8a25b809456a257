import GraftCore
import GraftTensor

/// Built-in architectures with keras.applications layer names, so their weight files load into them.
public enum Zoo {
    /// The names `graft zoo` accepts.
    public static let names = ["lenet5", "convnet", "tiled", "alexnet", "vgg16", "resnet50", "mobilenetv2", "rowlstm"]

    /// Options shared by every architecture.
    public struct Options: Sendable, Equatable {
        /// Output classes; nil uses the architecture's own (10 for LeNet-5, 1000 for the ImageNet models).
        public var classes: Int?
        public var includeTop: Bool = true
        /// `[H, W, C]`; nil uses the architecture's default.
        public var inputShape: [Int]?
        public var seed: UInt64 = 0
        /// The tile size of `tiled`'s convolutions (t×t kernels in turn).
        public var tiles: Int = 2

        public init(classes: Int? = nil, includeTop: Bool = true, inputShape: [Int]? = nil, seed: UInt64 = 0, tiles: Int = 2) {
            self.classes = classes
            self.includeTop = includeTop
            self.inputShape = inputShape
            self.seed = seed
            self.tiles = tiles
        }
    }

    /// Builds `name` (one of `names`), freshly initialised (Glorot uniform, zero biases, BN identity).
    public static func build(_ name: String, options: Options = Options()) throws -> Model {
        switch name.lowercased() {
        case "lenet5", "lenet-5", "lenet": return try lenet5(options)
        case "convnet": return try convnet(options)
        case "rowlstm": return try rowLSTM(options)
        case "tiled": return try tiled(options)
        case "alexnet": return try alexnet(options)
        case "vgg16": return try vgg16(options)
        case "resnet50": return try resnet50(options)
        case "mobilenetv2", "mobilenet_v2": return try mobilenetV2(options)
        default:
            throw ZooError(name: name, suggestion: Suggestions.closest(to: name, among: names + ["mobilenet_v2", "lenet-5"]))
        }
    }

    static func conv(_ name: String, _ filters: Int, _ k: Int, strides: Int = 1, padding: Padding = .valid,
                     bias: Bool = true, activation: ActivationKind = .linear) -> Conv2D {
        Conv2D(name: name, config: Conv2DConfig(filters: filters, kernelSize: [k, k], strides: [strides, strides],
                                                padding: padding, useBias: bias, activation: activation))
    }

    /// Tiled convolutions (Le et al. 2010) for small images (default 28×28×1): 16@5×5 and 32@3×3 `TiledConv2D`
    /// layers with `tiles`×`tiles` kernels each, ReLU, max pooling after each, global average pooling, classes.
    static func tiled(_ o: Options) throws -> Model {
        let shape = o.inputShape ?? [28, 28, 1]
        func tiledConv(_ name: String, _ filters: Int, _ k: Int) -> TiledConv2D {
            TiledConv2D(name: name, config: Conv2DConfig(filters: filters, kernelSize: [k, k], padding: .same, activation: .relu),
                        tiles: [o.tiles, o.tiles])
        }
        var layers: [any Layer] = [
            tiledConv("tiled1", 16, 5), Pooling2D(name: "pool1", kind: .max, poolSize: [2, 2]),
            tiledConv("tiled2", 32, 3), Pooling2D(name: "pool2", kind: .max, poolSize: [2, 2]),
        ]
        if o.includeTop {
            layers += [GlobalPooling2D(name: "gap", kind: .average), Dense(name: "predictions", units: o.classes ?? 10, activation: .softmax)]
        }
        return try GraphBuilder.sequential(name: "tiled", inputShape: shape, layers: layers, seed: o.seed)
    }

    /// LeNet-5 (LeCun et al. 1998): 6@5×5 tanh, average pool, 16@5×5, average pool, 120@5×5, 84, classes.
    /// On 32×32 inputs every convolution is `valid`; smaller inputs (28×28 MNIST) pad the first one `same`.
    static func lenet5(_ o: Options) throws -> Model {
        let shape = o.inputShape ?? [32, 32, 1]
        var layers: [any Layer] = [
            conv("conv1", 6, 5, padding: shape[0] < 32 ? .same : .valid, activation: .tanh),
            Pooling2D(name: "pool1", kind: .average, poolSize: [2, 2]),
            conv("conv2", 16, 5, activation: .tanh),
            Pooling2D(name: "pool2", kind: .average, poolSize: [2, 2]),
            conv("conv3", 120, 5, activation: .tanh),
            Flatten(name: "flatten"),
        ]
        if o.includeTop {
            layers += [Dense(name: "fc1", units: 84, activation: .tanh),
                       Dense(name: "predictions", units: o.classes ?? 10, activation: .softmax)]
        }
        return try GraphBuilder.sequential(name: "lenet5", inputShape: shape, layers: layers, inputName: "input", seed: o.seed)
    }

    /// An LSTM that reads an image row by row (a 28×28 Fashion-MNIST image as 28 steps of 28 pixels): `lstm` (64
    /// units, the last output), `predictions`. Input `[H, W·C]` from an `[H, W, C]` input shape (default 28×28).
    static func rowLSTM(_ o: Options) throws -> Model {
        let s = o.inputShape ?? [28, 28]
        guard s.count == 2 || s.count == 3, s.allSatisfy({ $0 > 0 }) else {
            throw LayerError("rowlstm", "input shape must be [rows, columns] or [rows, columns, channels], got \(s)")
        }
        let shape = [s[0], s.dropFirst().reduce(1, *)]
        var layers: [any Layer] = [Recurrent(name: "lstm", cell: .lstm, settings: Recurrent.Settings(units: 64))]
        if o.includeTop { layers.append(Dense(name: "predictions", units: o.classes ?? 10, activation: .softmax)) }
        return try GraphBuilder.sequential(name: "rowlstm", inputShape: shape, layers: layers, inputName: "rows", seed: o.seed)
    }

    /// AlexNet, the classic single-tower form (no grouped convolutions, no LRN), on 227×227×3.
    static func alexnet(_ o: Options) throws -> Model {
        let shape = o.inputShape ?? [227, 227, 3]
        var layers: [any Layer] = [
            conv("conv1", 96, 11, strides: 4, activation: .relu),
            Pooling2D(name: "pool1", kind: .max, poolSize: [3, 3], strides: [2, 2]),
            conv("conv2", 256, 5, padding: .same, activation: .relu),
            Pooling2D(name: "pool2", kind: .max, poolSize: [3, 3], strides: [2, 2]),
            conv("conv3", 384, 3, padding: .same, activation: .relu),
            conv("conv4", 384, 3, padding: .same, activation: .relu),
            conv("conv5", 256, 3, padding: .same, activation: .relu),
            Pooling2D(name: "pool5", kind: .max, poolSize: [3, 3], strides: [2, 2]),
        ]
        if o.includeTop {
            layers += [Flatten(name: "flatten"),
                       Dense(name: "fc6", units: 4096, activation: .relu),
                       InferenceIdentity(name: "drop6", kerasClassName: "Dropout", rate: 0.5),
                       Dense(name: "fc7", units: 4096, activation: .relu),
                       InferenceIdentity(name: "drop7", kerasClassName: "Dropout", rate: 0.5),
                       Dense(name: "predictions", units: o.classes ?? 1000, activation: .softmax)]
        }
        return try GraphBuilder.sequential(name: "alexnet", inputShape: shape, layers: layers, inputName: "input", seed: o.seed)
    }

    /// VGG16 with keras.applications names (`block1_conv1` … `block5_pool`, `fc1`, `fc2`, `predictions`).
    static func vgg16(_ o: Options) throws -> Model {
        let shape = o.inputShape ?? [224, 224, 3]
        var b = GraphBuilder(name: "vgg16", seed: o.seed)
        var x = try b.input(InputLayer(name: "input_1", shape: shape))
        for (block, (filters, convs)) in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)].enumerated() {
            for i in 1...convs {
                x = try b.add(conv("block\(block + 1)_conv\(i)", filters, 3, padding: .same, activation: .relu), inputs: [x])
            }
            x = try b.add(Pooling2D(name: "block\(block + 1)_pool", kind: .max, poolSize: [2, 2]), inputs: [x])
        }
        if o.includeTop {
            x = try b.add(Flatten(name: "flatten"), inputs: [x])
            x = try b.add(Dense(name: "fc1", units: 4096, activation: .relu), inputs: [x])
            x = try b.add(Dense(name: "fc2", units: 4096, activation: .relu), inputs: [x])
            x = try b.add(Dense(name: "predictions", units: o.classes ?? 1000, activation: .softmax), inputs: [x])
        }
        return try b.finish(outputs: [x])
    }

    /// ResNet50 (v1) with keras.applications names (`conv1_conv`, `conv2_block1_1_conv`, …, `avg_pool`, `predictions`).
    static func resnet50(_ o: Options) throws -> Model {
        let shape = o.inputShape ?? [224, 224, 3]
        var b = GraphBuilder(name: "resnet50", seed: o.seed)
        func bn(_ name: String) -> BatchNormalization { BatchNormalization(name: name, epsilon: 1.001e-5) }
        var x = try b.input(InputLayer(name: "input_1", shape: shape))
        x = try b.add(Padding2D(name: "conv1_pad", amounts: [[3, 3], [3, 3]], cropping: false), inputs: [x])
        x = try b.add(conv("conv1_conv", 64, 7, strides: 2), inputs: [x])
        x = try b.add(bn("conv1_bn"), inputs: [x])
        x = try b.add(ActivationLayer(name: "conv1_relu", activation: .relu), inputs: [x])
        x = try b.add(Padding2D(name: "pool1_pad", amounts: [[1, 1], [1, 1]], cropping: false), inputs: [x])
        x = try b.add(Pooling2D(name: "pool1_pool", kind: .max, poolSize: [3, 3], strides: [2, 2]), inputs: [x])
        func block(_ x: Int, _ filters: Int, stride: Int, shortcut: Bool, name: String) throws -> Int {
            var s = x
            if shortcut {
                s = try b.add(conv("\(name)_0_conv", 4 * filters, 1, strides: stride), inputs: [x])
                s = try b.add(bn("\(name)_0_bn"), inputs: [s])
            }
            var y = try b.add(conv("\(name)_1_conv", filters, 1, strides: stride), inputs: [x])
            y = try b.add(bn("\(name)_1_bn"), inputs: [y])
            y = try b.add(ActivationLayer(name: "\(name)_1_relu", activation: .relu), inputs: [y])
            y = try b.add(conv("\(name)_2_conv", filters, 3, padding: .same), inputs: [y])
            y = try b.add(bn("\(name)_2_bn"), inputs: [y])
            y = try b.add(ActivationLayer(name: "\(name)_2_relu", activation: .relu), inputs: [y])
            y = try b.add(conv("\(name)_3_conv", 4 * filters, 1), inputs: [y])
            y = try b.add(bn("\(name)_3_bn"), inputs: [y])
            y = try b.add(Merge(name: "\(name)_add", kind: .add), inputs: [s, y])
            return try b.add(ActivationLayer(name: "\(name)_out", activation: .relu), inputs: [y])
        }
        for (stage, (filters, blocks, stride)) in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)].enumerated() {
            for i in 1...blocks {
                x = try block(x, filters, stride: i == 1 ? stride : 1, shortcut: i == 1, name: "conv\(stage + 2)_block\(i)")
            }
        }
        if o.includeTop {
            x = try b.add(GlobalPooling2D(name: "avg_pool", kind: .average), inputs: [x])
            x = try b.add(Dense(name: "predictions", units: o.classes ?? 1000, activation: .softmax), inputs: [x])
        }
        return try b.finish(outputs: [x])
    }

    /// MobileNetV2 (alpha 1.0) with keras.applications names (`Conv1`, `block_1_expand`, …, `Conv_1`, `predictions`).
    static func mobilenetV2(_ o: Options) throws -> Model {
        let shape = o.inputShape ?? [224, 224, 3]
        var b = GraphBuilder(name: "mobilenetv2_1.00_\(shape[0])", seed: o.seed)
        func bn(_ name: String) -> BatchNormalization { BatchNormalization(name: name, epsilon: 1e-3, momentum: 0.999) }
        func relu6(_ name: String) -> ActivationLayer {
            ActivationLayer(name: name, kerasClassName: "ReLU", activation: .reluGeneral(maxValue: 6, negativeSlope: 0, threshold: 0))
        }
        var x = try b.input(InputLayer(name: "input_1", shape: shape))
        var size = shape[0] < 0 ? -1 : (shape[0] + 1) / 2
        x = try b.add(conv("Conv1", 32, 3, strides: 2, padding: .same, bias: false), inputs: [x])
        x = try b.add(bn("bn_Conv1"), inputs: [x])
        x = try b.add(relu6("Conv1_relu"), inputs: [x])
        var channels = 32
        let blocks: [(Int, Int, Int)] = [(16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6),
                                         (64, 1, 6), (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6),
                                         (160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6)]
        for (id, (filters, stride, expansion)) in blocks.enumerated() {
            let input = x
            let prefix = id == 0 ? "expanded_conv_" : "block_\(id)_"
            var y = x
            if id > 0 {
                y = try b.add(conv("\(prefix)expand", expansion * channels, 1, padding: .same, bias: false), inputs: [y])
                y = try b.add(bn("\(prefix)expand_BN"), inputs: [y])
                y = try b.add(relu6("\(prefix)expand_relu"), inputs: [y])
            }
            if stride == 2 {
                // keras.applications' correct_pad: pad (0, 1) on even sizes, (1, 1) on odd ones.
                let before = size > 0 && size % 2 == 1 ? 1 : 0
                y = try b.add(Padding2D(name: "\(prefix)pad", amounts: [[before, 1], [before, 1]], cropping: false), inputs: [y])
                size = size < 0 ? -1 : (size + before + 1 - 3) / 2 + 1
            }
            y = try b.add(DepthwiseConv2D(name: "\(prefix)depthwise", config: DepthwiseConv2DConfig(
                kernelSize: [3, 3], strides: [stride, stride], padding: stride == 1 ? .same : .valid, useBias: false)), inputs: [y])
            y = try b.add(bn("\(prefix)depthwise_BN"), inputs: [y])
            y = try b.add(relu6("\(prefix)depthwise_relu"), inputs: [y])
            y = try b.add(conv("\(prefix)project", filters, 1, padding: .same, bias: false), inputs: [y])
            y = try b.add(bn("\(prefix)project_BN"), inputs: [y])
            if channels == filters && stride == 1 {
                y = try b.add(Merge(name: "\(prefix)add", kind: .add), inputs: [input, y])
            }
            channels = filters
            x = y
        }
        x = try b.add(conv("Conv_1", 1280, 1, bias: false), inputs: [x])
        x = try b.add(bn("Conv_1_bn"), inputs: [x])
        x = try b.add(relu6("out_relu"), inputs: [x])
        if o.includeTop {
            x = try b.add(GlobalPooling2D(name: "global_average_pooling2d", kind: .average), inputs: [x])
            x = try b.add(Dense(name: "predictions", units: o.classes ?? 1000, activation: .softmax), inputs: [x])
        }
        return try b.finish(outputs: [x])
    }

    /// A small modern CNN for 28×28 grey images (Graft's `convnet-fashion.h5`): a Conv-BN-ReLU stem that halves the
    /// size, then Xception-style blocks of separable Conv-BN-ReLU with residual additions (a strided 1×1
    /// projection where the size or width changes), global average pooling, dropout and a softmax classifier.
    /// About 100k parameters and 13M multiply-adds per 28×28 image.
    static func convnet(_ o: Options) throws -> Model {
        let shape = o.inputShape ?? [28, 28, 1]
        var b = GraphBuilder(name: "convnet", seed: o.seed)
        func bn(_ name: String) -> BatchNormalization { BatchNormalization(name: name) }
        func relu(_ name: String) -> ActivationLayer { ActivationLayer(name: name, kerasClassName: "ReLU", activation: .relu) }
        func separable(_ name: String, _ filters: Int) -> SeparableConv2D {
            SeparableConv2D(name: name, config: Conv2DConfig(filters: filters, kernelSize: [3, 3], padding: .same, useBias: false))
        }
        var x = try b.input(InputLayer(name: "input", shape: shape))
        x = try b.add(conv("stem_conv1", 32, 3, padding: .same, bias: false), inputs: [x])
        x = try b.add(bn("stem_bn1"), inputs: [x])
        x = try b.add(relu("stem_relu1"), inputs: [x])
        x = try b.add(conv("stem_conv2", 64, 3, strides: 2, padding: .same, bias: false), inputs: [x])
        x = try b.add(bn("stem_bn2"), inputs: [x])
        x = try b.add(relu("stem_relu2"), inputs: [x])
        // (filters, downsample): 14×14×64 → 14×14×64 → 7×7×128 → 7×7×128.
        for (i, (filters, down)) in [(64, false), (128, true), (128, false)].enumerated() {
            let name = "block\(i + 1)"
            var shortcut = x
            if down {
                shortcut = try b.add(conv("\(name)_shortcut", filters, 1, strides: 2, padding: .same, bias: false), inputs: [x])
                shortcut = try b.add(bn("\(name)_shortcut_bn"), inputs: [shortcut])
            }
            var y = try b.add(separable("\(name)_sepconv1", filters), inputs: [x])
            y = try b.add(bn("\(name)_bn1"), inputs: [y])
            y = try b.add(relu("\(name)_relu1"), inputs: [y])
            y = try b.add(separable("\(name)_sepconv2", filters), inputs: [y])
            y = try b.add(bn("\(name)_bn2"), inputs: [y])
            if down {
                y = try b.add(Pooling2D(name: "\(name)_pool", kind: .max, poolSize: [3, 3], strides: [2, 2], padding: .same), inputs: [y])
            }
            y = try b.add(Merge(name: "\(name)_add", kind: .add), inputs: [shortcut, y])
            x = try b.add(relu("\(name)_out"), inputs: [y])
        }
        if o.includeTop {
            x = try b.add(GlobalPooling2D(name: "avg_pool", kind: .average), inputs: [x])
            x = try b.add(InferenceIdentity(name: "dropout", kerasClassName: "Dropout", rate: 0.3), inputs: [x])
            x = try b.add(Dense(name: "predictions", units: o.classes ?? 10, activation: .softmax), inputs: [x])
        }
        return try b.finish(outputs: [x])
    }
}

/// A built-in architecture that does not exist: `unknown architecture "mobilenet"; did you mean mobilenetv2? (…)`.
public struct ZooError: GraftError {
    public let name: String
    public let suggestion: String?
    public var context: ErrorContext { ErrorContext() }
    public var description: String {
        "unknown architecture \"\(name)\"" + (suggestion.map { "; did you mean \($0)?" } ?? "") + " (built in: \(Zoo.names.joined(separator: ", ")))"
    }
}
