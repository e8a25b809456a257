import GraftTensor

/// Hyperparameters of a 2-D convolution (Keras `Conv2D`).
public struct Conv2DConfig: Codable, Sendable, Equatable {
    public var filters: Int
    public var kernelSize: [Int]
    public var strides: [Int] = [1, 1]
    public var padding: Padding = .valid
    public var dilation: [Int] = [1, 1]
    public var groups: Int = 1
    public var useBias: Bool = true
    public var activation: ActivationKind = .linear

    public init(filters: Int, kernelSize: [Int], strides: [Int] = [1, 1], padding: Padding = .valid,
                dilation: [Int] = [1, 1], groups: Int = 1, useBias: Bool = true, activation: ActivationKind = .linear) {
        self.filters = filters
        self.kernelSize = kernelSize
        self.strides = strides
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.useBias = useBias
        self.activation = activation
    }
}

/// Geometry shared by the convolution layers: output spatial size from an input of `[H, W, C]` (-1 unknown).
func convOutputSpatial(_ layer: String, input: [Int], kernel: [Int], strides: [Int], dilation: [Int],
                       padding: Padding) throws -> (Int, Int) {
    // Sizes a hostile config can declare (found by tools/fuzz: a stride of 0 divided by zero, a kernel of 10^18
    // overflowed): two of each, from 1 to 65,536.
    for (what, values) in [("kernel size", kernel), ("strides", strides), ("dilation rate", dilation)] {
        guard values.count == 2, values.allSatisfy({ $0 >= 1 && $0 <= 65_536 }) else {
            throw LayerError(layer, "\(what) \(values) must be two whole numbers from 1 to 65536")
        }
    }
    func axis(_ i: Int) throws -> Int {
        guard input[i] >= 0 else { return -1 }
        let g = AxisGeometry(input: input[i], kernel: kernel[i], stride: strides[i], dilation: dilation[i], padding: padding)
        guard g.output > 0 else {
            throw LayerError(layer, "input \(Shape.describe([-1] + input)) is smaller than the \(kernel[0])×\(kernel[1]) window")
        }
        return g.output
    }
    return (try axis(0), try axis(1))
}

func checkRuntimeInput(_ layer: String, _ x: Tensor, channels: Int) throws {
    guard x.rank == 4, x.shape[3] == channels else {
        throw LayerError(layer, "expects NHWC input with \(channels) channels, got \(Shape.describe(x.shape))")
    }
}

/// Keras `Conv2D`: kernel `[kH, kW, in/groups, filters]` (HWIO), bias `[filters]`.
public final class Conv2D: Layer {
    public let name: String
    public let config: Conv2DConfig
    public var kerasClassName: String { "Conv2D" }
    public private(set) var kernel = Variable(Tensor(shape: [0]))
    public private(set) var bias: Variable?
    private var inChannels = 0

    public init(name: String, config: Conv2DConfig) {
        self.name = name
        self.config = config
    }

    public var variables: [(key: String, variable: Variable)] {
        [("kernel", kernel)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 3)
        let c = s[2]
        guard config.groups >= 1 else { throw LayerError(name, "groups must be at least 1, got \(config.groups)") }
        guard c > 0, c % config.groups == 0, config.filters % config.groups == 0 else {
            throw LayerError(name, "\(c) input channels and \(config.filters) filters must both divide into \(config.groups) groups")
        }
        inChannels = c
        try requireAllocatable([[config.kernelSize[0], config.kernelSize[1], c / config.groups, config.filters]] + (config.useBias ? [[config.filters]] : []))
        kernel = Variable(Initializer.glorotUniform([config.kernelSize[0], config.kernelSize[1], c / config.groups, config.filters], rng: &rng))
        bias = config.useBias ? Variable(Tensor(shape: [config.filters])) : nil
        let (h, w) = try convOutputSpatial(name, input: s, kernel: config.kernelSize, strides: config.strides,
                                           dilation: config.dilation, padding: config.padding)
        return [h, w, config.filters]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try linearForward(inputs[0], activation: config.activation, prepared: PreparedWeights.Use(prepared, version: kernel.version))
    }

    /// The convolution plus bias, then `activation` (linear: the pre-activation).
    func linearForward(_ x: Tensor, activation: ActivationKind = .linear, kernel k: Tensor? = nil, bias b: Tensor? = nil,
                       prepared use: PreparedWeights.Use? = nil) throws -> Tensor {
        try checkRuntimeInput(name, x, channels: inChannels)
        let g = geometry(x)
        guard g.h.output > 0, g.w.output > 0 else { throw LayerError(name, "input \(Shape.describe(x.shape)) is smaller than the kernel") }
        return x.convolved(g, kernel: k ?? kernel.value, bias: k == nil ? bias?.value : b, activation: activation, prepared: use)
    }

    private let folded = FoldedWeights()
    private let prepared = PreparedWeights()
}

extension Conv2D: InferenceFusable {
    var ownActivation: ActivationKind { config.activation }
    var outputChannels: Int { config.filters }

    func fusedInference(_ inputs: [Tensor], batchNorm: BatchNormalization?, activation: ActivationKind) throws -> Tensor {
        let x = inputs[0]
        guard let batchNorm else {
            return try linearForward(x, activation: activation, prepared: PreparedWeights.Use(prepared, version: kernel.version))
        }
        let (k, b, version) = folded.get(kernel: kernel, bias: bias, batchNorm: batchNorm)
        return try linearForward(x, activation: activation, kernel: k, bias: b, prepared: PreparedWeights.Use(prepared, version: version))
    }
}

/// Hyperparameters of a depthwise convolution (Keras `DepthwiseConv2D`).
public struct DepthwiseConv2DConfig: Codable, Sendable, Equatable {
    public var kernelSize: [Int]
    public var strides: [Int] = [1, 1]
    public var padding: Padding = .valid
    public var depthMultiplier: Int = 1
    public var dilation: [Int] = [1, 1]
    public var useBias: Bool = true
    public var activation: ActivationKind = .linear

    public init(kernelSize: [Int], strides: [Int] = [1, 1], padding: Padding = .valid, depthMultiplier: Int = 1,
                dilation: [Int] = [1, 1], useBias: Bool = true, activation: ActivationKind = .linear) {
        self.kernelSize = kernelSize
        self.strides = strides
        self.padding = padding
        self.depthMultiplier = depthMultiplier
        self.dilation = dilation
        self.useBias = useBias
        self.activation = activation
    }
}

/// The depthwise convolution of `x` with `kernel` `[kH, kW, C, M]`.
func depthwise(_ x: Tensor, kernel: Tensor, bias: Tensor?, kernelSize: [Int], strides: [Int], dilation: [Int],
               padding: Padding, multiplier: Int, activation: ActivationKind = .linear,
               prepared: PreparedWeights.Use? = nil) -> Tensor {
    x.depthwiseConvolved(.depthwise(input: x.shape, multiplier: multiplier, kernel: kernelSize, strides: strides, dilation: dilation,
                                    padding: padding), kernel: kernel, bias: bias, activation: activation, prepared: prepared)
}

/// Keras `DepthwiseConv2D`: `depthwise_kernel` `[kH, kW, C, multiplier]` (Keras 3 calls it `kernel`), bias `[C·multiplier]`.
public final class DepthwiseConv2D: Layer {
    public let name: String
    public let config: DepthwiseConv2DConfig
    public var kerasClassName: String { "DepthwiseConv2D" }
    public private(set) var kernel = Variable(Tensor(shape: [0]))
    public private(set) var bias: Variable?
    private var channels = 0

    public init(name: String, config: DepthwiseConv2DConfig) {
        self.name = name
        self.config = config
    }

    public var variables: [(key: String, variable: Variable)] {
        [("depthwise_kernel", kernel)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func variableKey(forCheckpointName name: String) -> String? {
        name == "kernel" || name == "depthwise_kernel" ? "depthwise_kernel" : (name == "bias" ? "bias" : nil)
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 3)
        channels = s[2]
        try requireAllocatable([[config.kernelSize[0], config.kernelSize[1], channels, config.depthMultiplier]]
                               + (config.useBias ? [[channels, config.depthMultiplier]] : []))
        kernel = Variable(Initializer.glorotUniform([config.kernelSize[0], config.kernelSize[1], channels, config.depthMultiplier], rng: &rng))
        bias = config.useBias ? Variable(Tensor(shape: [channels * config.depthMultiplier])) : nil
        let (h, w) = try convOutputSpatial(name, input: s, kernel: config.kernelSize, strides: config.strides,
                                           dilation: config.dilation, padding: config.padding)
        return [h, w, channels * config.depthMultiplier]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try checkRuntimeInput(name, inputs[0], channels: channels)
        return depthwise(inputs[0], kernel: kernel.value, bias: bias?.value, kernelSize: config.kernelSize,
                         strides: config.strides, dilation: config.dilation, padding: config.padding,
                         multiplier: config.depthMultiplier, activation: config.activation,
                         prepared: PreparedWeights.Use(prepared, version: kernel.version))
    }

    fileprivate let folded = FoldedWeights()
    fileprivate let prepared = PreparedWeights()
}

extension DepthwiseConv2D: InferenceFusable {
    var ownActivation: ActivationKind { config.activation }
    var outputChannels: Int { channels * config.depthMultiplier }

    func fusedInference(_ inputs: [Tensor], batchNorm: BatchNormalization?, activation: ActivationKind) throws -> Tensor {
        let x = inputs[0]
        try checkRuntimeInput(name, x, channels: channels)
        let (k, b, version) = batchNorm.map { folded.get(kernel: kernel, bias: bias, batchNorm: $0) }
            ?? (kernel.value, bias?.value, kernel.version)
        return depthwise(x, kernel: k, bias: b, kernelSize: config.kernelSize, strides: config.strides,
                         dilation: config.dilation, padding: config.padding, multiplier: config.depthMultiplier,
                         activation: activation, prepared: PreparedWeights.Use(prepared, version: version))
    }
}

/// Keras `SeparableConv2D`: depthwise `[kH, kW, C, M]`, then pointwise `[1, 1, C·M, filters]`, then bias.
public final class SeparableConv2D: Layer {
    public let name: String
    public let config: Conv2DConfig
    public let depthMultiplier: Int
    public var kerasClassName: String { "SeparableConv2D" }
    public private(set) var depthwiseKernel = Variable(Tensor(shape: [0]))
    public private(set) var pointwiseKernel = Variable(Tensor(shape: [0]))
    public private(set) var bias: Variable?
    private var channels = 0

    public init(name: String, config: Conv2DConfig, depthMultiplier: Int = 1) {
        self.name = name
        self.config = config
        self.depthMultiplier = depthMultiplier
    }

    public var variables: [(key: String, variable: Variable)] {
        [("depthwise_kernel", depthwiseKernel), ("pointwise_kernel", pointwiseKernel)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 3)
        channels = s[2]
        try requireAllocatable([[config.kernelSize[0], config.kernelSize[1], channels, depthMultiplier], [channels, depthMultiplier, config.filters]]
                               + (config.useBias ? [[config.filters]] : []))
        depthwiseKernel = Variable(Initializer.glorotUniform([config.kernelSize[0], config.kernelSize[1], channels, depthMultiplier], rng: &rng))
        pointwiseKernel = Variable(Initializer.glorotUniform([1, 1, channels * depthMultiplier, config.filters], rng: &rng))
        bias = config.useBias ? Variable(Tensor(shape: [config.filters])) : nil
        let (h, w) = try convOutputSpatial(name, input: s, kernel: config.kernelSize, strides: config.strides,
                                           dilation: config.dilation, padding: config.padding)
        return [h, w, config.filters]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try checkRuntimeInput(name, inputs[0], channels: channels)
        return pointwise(depthwiseStep(inputs[0], prepared: true), activation: config.activation,
                         prepared: PreparedWeights.Use(preparedPointwise, version: pointwiseKernel.version))
    }

    /// The depthwise step; `prepared` keeps its kernel in oneDNN's layout between calls (inference only).
    func depthwiseStep(_ x: Tensor, prepared: Bool = false) -> Tensor {
        depthwise(x, kernel: depthwiseKernel.value, bias: nil, kernelSize: config.kernelSize, strides: config.strides,
                  dilation: config.dilation, padding: config.padding, multiplier: depthMultiplier,
                  prepared: prepared ? PreparedWeights.Use(preparedDepthwise, version: depthwiseKernel.version) : nil)
    }

    /// The 1×1 convolution (plus bias) applied after the depthwise step, then `activation`.
    func pointwise(_ mid: Tensor, activation: ActivationKind = .linear, kernel: Tensor? = nil, bias: Tensor? = nil,
                   prepared: PreparedWeights.Use? = nil) -> Tensor {
        let g = ConvGeometry(input: mid.shape, outChannels: config.filters, kernel: [1, 1], padding: .valid)
        return mid.convolved(g, kernel: kernel ?? pointwiseKernel.value, bias: kernel == nil ? self.bias?.value : bias,
                             activation: activation, prepared: prepared)
    }

    fileprivate let folded = FoldedWeights()
    fileprivate let preparedDepthwise = PreparedWeights()
    fileprivate let preparedPointwise = PreparedWeights()
}

extension SeparableConv2D: InferenceFusable {
    var ownActivation: ActivationKind { config.activation }
    var outputChannels: Int { config.filters }

    /// The BatchNormalization folds into the pointwise kernel and bias.
    func fusedInference(_ inputs: [Tensor], batchNorm: BatchNormalization?, activation: ActivationKind) throws -> Tensor {
        let x = inputs[0]
        try checkRuntimeInput(name, x, channels: channels)
        let mid = depthwiseStep(x, prepared: true)
        guard let batchNorm else {
            return pointwise(mid, activation: activation, prepared: PreparedWeights.Use(preparedPointwise, version: pointwiseKernel.version))
        }
        let (k, b, version) = folded.get(kernel: pointwiseKernel, bias: bias, batchNorm: batchNorm)
        return pointwise(mid, activation: activation, kernel: k, bias: b, prepared: PreparedWeights.Use(preparedPointwise, version: version))
    }
}

/// Keras 2 `LocallyConnected2D` (unshared convolution, `implementation=1`, `valid` padding):
/// kernel `[outH·outW, kH·kW·C, filters]`, bias `[outH, outW, filters]`.
public final class LocallyConnected2D: Layer {
    public let name: String
    public let config: Conv2DConfig
    public var kerasClassName: String { "LocallyConnected2D" }
    public private(set) var kernel = Variable(Tensor(shape: [0]))
    public private(set) var bias: Variable?
    private var inputShape: [Int] = []
    private var outSpatial = (0, 0)

    public init(name: String, config: Conv2DConfig) {
        self.name = name
        self.config = config
    }

    public var variables: [(key: String, variable: Variable)] {
        [("kernel", kernel)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 3)
        guard s.allSatisfy({ $0 > 0 }) else { throw LayerError(name, "needs a fully known input shape, got \(Shape.describe([-1] + s))") }
        guard config.padding == .valid else { throw LayerError(name, "only padding \"valid\" is supported") }
        inputShape = s
        outSpatial = try convOutputSpatial(name, input: s, kernel: config.kernelSize, strides: config.strides,
                                           dilation: [1, 1], padding: .valid)
        let patch = config.kernelSize[0] * config.kernelSize[1] * s[2]
        try requireAllocatable([[outSpatial.0, outSpatial.1, patch, config.filters]] + (config.useBias ? [[outSpatial.0, outSpatial.1, config.filters]] : []))
        kernel = Variable(Initializer.glorotUniform([outSpatial.0 * outSpatial.1, patch, config.filters], rng: &rng))
        bias = config.useBias ? Variable(Tensor(shape: [outSpatial.0, outSpatial.1, config.filters])) : nil
        return [outSpatial.0, outSpatial.1, config.filters]
    }

    public var activation: ActivationKind { config.activation }

    /// The unshared convolution plus bias, before the activation.
    public func linearForward(_ x: Tensor) throws -> Tensor {
        guard Array(x.shape.dropFirst()) == inputShape else {
            throw LayerError(name, "expects input \(Shape.describe([-1] + inputShape)), got \(Shape.describe(x.shape))")
        }
        return x.locallyConnected(localGeometry(x), kernel: kernel.value, bias: bias?.value)
    }

    func localGeometry(_ x: Tensor) -> ConvGeometry {
        ConvGeometry(input: x.shape, outChannels: config.filters, kernel: config.kernelSize, strides: config.strides, padding: .valid)
    }
}

/// A layer that computes a linear map, then its activation: its forward passes (inference and training) and its
/// final activation follow from `linearForward` and `activation`.
public protocol LinearThenActivation: Layer {
    /// The activation applied to `linearForward`'s result.
    var activation: ActivationKind { get }
    /// The linear part (convolution plus bias) of the forward pass.
    func linearForward(_ x: Tensor) throws -> Tensor
}

extension LinearThenActivation {
    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try linearForward(inputs[0]).activated(activation)
    }

    public var finalActivation: ActivationKind { activation }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        let z = try linearForward(inputs[0])
        return activation == .linear ? (z, nil) : activationOutput(z, activation)
    }
}

// MARK: - training

/// Runs a tensor-level backward pass that adds into the gradients of `kernel` and `bias` where they are trainable.
func accumulatingGradients(kernel: Variable, bias: Variable?, _ run: (inout Tensor?, inout Tensor?) -> Tensor?) -> Tensor? {
    var gk = kernel.takeTrainableGradient(), gb = bias?.takeTrainableGradient()
    defer {
        kernel.restoreGradient(gk)
        bias?.restoreGradient(gb)
    }
    return run(&gk, &gb)
}

extension Conv2D {
    public var finalActivation: ActivationKind { config.activation }

    func geometry(_ x: Tensor) -> ConvGeometry {
        ConvGeometry(input: x.shape, outChannels: config.filters, groups: config.groups, kernel: config.kernelSize,
                     strides: config.strides, dilation: config.dilation, padding: config.padding)
    }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        let z = try linearForward(inputs[0])
        return config.activation == .linear ? (z, nil) : activationOutput(z, config.activation)
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let dz = preActivationGradient(config.activation, cache: cache, output: output, gradOutput: gradOutput, preActivation: preActivation)
        return [accumulatingGradients(kernel: kernel, bias: bias) {
            Tensor.convolutionBackward(geometry(inputs[0]), input: inputs[0], kernel: kernel.value, gradOutput: dz,
                                       needInput: needsInputGradients[0], kernelGradient: &$0, biasGradient: &$1)
        }]
    }
}

extension DepthwiseConv2D {
    public var finalActivation: ActivationKind { config.activation }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        try checkRuntimeInput(name, inputs[0], channels: channels)
        let z = depthwise(inputs[0], kernel: kernel.value, bias: bias?.value, kernelSize: config.kernelSize,
                          strides: config.strides, dilation: config.dilation, padding: config.padding, multiplier: config.depthMultiplier)
        return config.activation == .linear ? (z, nil) : activationOutput(z, config.activation)
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        let dz = preActivationGradient(config.activation, cache: cache, output: output, gradOutput: gradOutput, preActivation: preActivation)
        let g = ConvGeometry.depthwise(input: x.shape, multiplier: config.depthMultiplier, kernel: config.kernelSize,
                                       strides: config.strides, dilation: config.dilation, padding: config.padding)
        return [accumulatingGradients(kernel: kernel, bias: bias) {
            Tensor.depthwiseBackward(g, input: x, kernel: kernel.value, gradOutput: dz, needInput: needsInputGradients[0],
                                     kernelGradient: &$0, biasGradient: &$1)
        }]
    }
}

extension SeparableConv2D {
    public var finalActivation: ActivationKind { config.activation }

    struct Cache { let mid: Tensor; let z: Tensor? }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        try checkRuntimeInput(name, inputs[0], channels: channels)
        let mid = depthwise(inputs[0], kernel: depthwiseKernel.value, bias: nil, kernelSize: config.kernelSize,
                            strides: config.strides, dilation: config.dilation, padding: config.padding, multiplier: depthMultiplier)
        let z = pointwise(mid)
        return (z.activated(config.activation), Cache(mid: mid, z: config.activation == .linear ? nil : z))
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        guard let c = cache as? Cache else { throw LayerError(name, "backward needs a training-mode forward first") }
        let dz = preActivationGradient(config.activation, cache: c.z.map { ActivationCache(z: $0, extra: nil) }, output: output,
                                       gradOutput: gradOutput, preActivation: preActivation)
        let gp = ConvGeometry(input: c.mid.shape, outChannels: config.filters, kernel: [1, 1], padding: .valid)
        let needMid = needsInputGradients[0] || depthwiseKernel.isTrainable
        let dmid = accumulatingGradients(kernel: pointwiseKernel, bias: bias) {
            Tensor.convolutionBackward(gp, input: c.mid, kernel: pointwiseKernel.value, gradOutput: dz, needInput: needMid,
                                       kernelGradient: &$0, biasGradient: &$1)
        }
        guard let dmid else { return [nil] }
        let gd = ConvGeometry.depthwise(input: x.shape, multiplier: depthMultiplier, kernel: config.kernelSize,
                                        strides: config.strides, dilation: config.dilation, padding: config.padding)
        return [accumulatingGradients(kernel: depthwiseKernel, bias: nil) {
            Tensor.depthwiseBackward(gd, input: x, kernel: depthwiseKernel.value, gradOutput: dmid, needInput: needsInputGradients[0],
                                     kernelGradient: &$0, biasGradient: &$1)
        }]
    }
}

extension LocallyConnected2D: LinearThenActivation {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        let dz = preActivationGradient(config.activation, cache: cache, output: output, gradOutput: gradOutput, preActivation: preActivation)
        return [accumulatingGradients(kernel: kernel, bias: bias) {
            Tensor.locallyConnectedBackward(localGeometry(x), input: x, kernel: kernel.value, gradOutput: dz,
                                            needInput: needsInputGradients[0], kernelGradient: &$0, biasGradient: &$1)
        }]
    }
}
