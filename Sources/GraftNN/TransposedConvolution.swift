import GraftTensor

/// Keras `Conv2DTranspose`: kernel `[kH, kW, filters, in]`, bias `[filters]`. Its forward pass is the backward
/// (input-gradient) pass of the convolution that maps its output back to its input, as TensorFlow computes it, so
/// it runs on the same kernels (oneDNN or im2col) as `Conv2D`'s backward pass.
public final class Conv2DTranspose: LinearThenActivation {
    public let name: String
    public let config: Conv2DConfig
    /// Keras's `output_padding` (nil: none given), each below the stride.
    public let outputPadding: [Int]?
    public var kerasClassName: String { "Conv2DTranspose" }
    public private(set) var kernel = Variable(Tensor(shape: [0]))
    public private(set) var bias: Variable?
    private var inChannels = 0

    public init(name: String, config: Conv2DConfig, outputPadding: [Int]? = nil) {
        self.name = name
        self.config = config
        self.outputPadding = outputPadding
    }

    public var variables: [(key: String, variable: Variable)] {
        [("kernel", kernel)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// Keras's `deconv_output_length` for one axis.
    static func outputLength(_ input: Int, kernel: Int, stride: Int, dilation: Int, padding: Padding, outputPadding: Int?) -> Int {
        let k = (kernel - 1) * dilation + 1
        guard let op = outputPadding else {
            return padding == .same ? input * stride : input * stride + max(k - stride, 0)
        }
        let pad = padding == .same ? k / 2 : 0
        return (input - 1) * stride + k - 2 * pad + op
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 3)
        guard config.groups == 1 else { throw LayerError(name, "groups \(config.groups) are not supported (1 only)") }
        guard config.padding != .causal else { throw LayerError(name, "padding \"causal\" is not supported (valid or same)") }
        _ = try convOutputSpatial(name, input: [1, 1, 1], kernel: config.kernelSize, strides: config.strides, dilation: config.dilation, padding: .same)
        if let op = outputPadding {
            guard op.count == 2, zip(op, config.strides).allSatisfy({ $0 >= 0 && $0 < $1 }) else {
                throw LayerError(name, "output_padding \(op) must be two numbers each below its stride \(config.strides)")
            }
        }
        guard let c = s.last, c > 0 else { throw LayerError(name, "needs a known channel count, got \(Shape.describe([-1] + s))") }
        inChannels = c
        let kernelShape = [config.kernelSize[0], config.kernelSize[1], config.filters, c]
        try requireAllocatable([kernelShape] + (config.useBias ? [[config.filters]] : []))
        kernel = Variable(Initializer.glorotUniform(kernelShape, rng: &rng))
        bias = config.useBias ? Variable(Tensor(shape: [config.filters])) : nil
        let out = (0..<2).map { i -> Int in
            s[i] < 0 ? -1 : Self.outputLength(s[i], kernel: config.kernelSize[i], stride: config.strides[i], dilation: config.dilation[i],
                                              padding: config.padding, outputPadding: outputPadding?[i])
        }
        guard out.allSatisfy({ $0 != 0 && $0 >= -1 }) else { throw LayerError(name, "input \(Shape.describe([-1] + s)) gives an empty output") }
        return [out[0], out[1], config.filters]
    }

    /// The convolution from this layer's output space (`[N, outH, outW, filters]`) to its input space.
    func geometry(_ x: Tensor) throws -> ConvGeometry {
        guard x.rank == 4, x.shape[3] == inChannels else {
            throw LayerError(name, "expects NHWC input with \(inChannels) channels, got \(Shape.describe(x.shape))")
        }
        let out = (0..<2).map { i in
            Self.outputLength(x.shape[i + 1], kernel: config.kernelSize[i], stride: config.strides[i], dilation: config.dilation[i],
                              padding: config.padding, outputPadding: outputPadding?[i])
        }
        let g = ConvGeometry(input: [x.shape[0], out[0], out[1], config.filters], outChannels: inChannels, kernel: config.kernelSize,
                             strides: config.strides, dilation: config.dilation, padding: config.padding)
        guard g.h.output == x.shape[1], g.w.output == x.shape[2] else {
            throw LayerError(name, "input \(Shape.describe(x.shape)) does not invert to a \(out[0])×\(out[1]) output")
        }
        return g
    }

    /// The transposed convolution plus bias, before the activation.
    public func linearForward(_ x: Tensor) throws -> Tensor {
        var y = Tensor.convolutionBackwardData(try geometry(x), kernel: kernel.value, gradOutput: x)
        if let b = bias?.value.scalars { y = y.channelAffine(scale: [Float](repeating: 1, count: b.count), shift: b) }
        return y
    }

    public var activation: ActivationKind { config.activation }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0], g = try geometry(x)
        let dz = preActivationGradient(config.activation, cache: cache, output: output, gradOutput: gradOutput, preActivation: preActivation)
        if let bias, bias.isTrainable {
            bias.accumulate(Tensor(shape: [config.filters], values: dz.channelSums()))
        }
        // y = Dᵀx for the convolution D of `g`: the kernel's gradient is D's with input dz and output gradient x.
        var gk = kernel.takeTrainableGradient(), none: Tensor? = nil
        if gk != nil {
            _ = Tensor.convolutionBackward(g, input: dz, kernel: kernel.value, gradOutput: x, needInput: false,
                                           kernelGradient: &gk, biasGradient: &none)
        }
        kernel.restoreGradient(gk)
        return [needsInputGradients[0] ? dz.convolved(g, kernel: kernel.value, bias: nil) : nil]
    }
}

/// A tiled convolution (Le et al., 2010), which Keras does not have: `tiles` `[tH, tW]` kernels learnt and used in
/// turn over the output positions (output `(i, j)` takes kernel `(i mod tH, j mod tW)`), so units `tH` rows or `tW`
/// columns apart share weights. Tiles `[1, 1]` are `Conv2D`; one tile per output position is `LocallyConnected2D`.
/// Kernel `[tH·tW, kH·kW·C, filters]`, bias `[tH, tW, filters]` (the shapes of Keras's LocallyConnected2D).
public final class TiledConv2D: LinearThenActivation {
    public let name: String
    public let config: Conv2DConfig
    public let tiles: [Int]
    public var kerasClassName: String { "TiledConv2D" }
    public private(set) var kernel = Variable(Tensor(shape: [0]))
    public private(set) var bias: Variable?
    private var inChannels = 0
    /// The output's height and width as built (-1 where the input size is not fixed).
    public private(set) var outputSize: [Int] = []

    public init(name: String, config: Conv2DConfig, tiles: [Int]) {
        self.name = name
        self.config = config
        self.tiles = tiles
    }

    public var variables: [(key: String, variable: Variable)] {
        [("kernel", kernel)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 3)
        guard tiles.count == 2, tiles.allSatisfy({ (1...65_536).contains($0) }) else {
            throw LayerError(name, "tiles \(tiles) must be two whole numbers from 1 to 65536")
        }
        guard config.groups == 1, config.padding != .causal else { throw LayerError(name, "groups and causal padding are not supported") }
        guard let c = s.last, c > 0 else { throw LayerError(name, "needs a known channel count, got \(Shape.describe([-1] + s))") }
        let (h, w) = try convOutputSpatial(name, input: s, kernel: config.kernelSize, strides: config.strides,
                                           dilation: config.dilation, padding: config.padding)
        if (h > 0 && tiles[0] > h) || (w > 0 && tiles[1] > w) {
            throw LayerError(name, "tiles \(tiles) exceed the \(h)×\(w) output (one tile per position is the most)")
        }
        inChannels = c
        outputSize = [h, w]
        let patch = config.kernelSize[0] * config.kernelSize[1] * c
        try requireAllocatable([[tiles[0] * tiles[1], patch, config.filters]] + (config.useBias ? [tiles + [config.filters]] : []))
        kernel = Variable(Initializer.glorotUniform([tiles[0] * tiles[1], patch, config.filters], rng: &rng))
        bias = config.useBias ? Variable(Tensor(shape: tiles + [config.filters])) : nil
        return [h, w, config.filters]
    }

    func geometry(_ x: Tensor) throws -> ConvGeometry {
        guard x.rank == 4, x.shape[3] == inChannels else {
            throw LayerError(name, "expects NHWC input with \(inChannels) channels, got \(Shape.describe(x.shape))")
        }
        let g = ConvGeometry(input: x.shape, outChannels: config.filters, kernel: config.kernelSize, strides: config.strides,
                             dilation: config.dilation, padding: config.padding)
        guard g.h.output > 0, g.w.output > 0 else { throw LayerError(name, "input \(Shape.describe(x.shape)) is smaller than the kernel") }
        return g
    }

    /// The Keras layer it equals, if any: tiles 1×1 compute `Conv2D`, one tile per (fixed) output position
    /// `LocallyConnected2D`; others have none.
    public var kerasEquivalent: String? {
        if tiles == [1, 1] { return "Conv2D" }
        if tiles == outputSize, config.padding == .valid, config.dilation == [1, 1] { return "LocallyConnected2D" }
        return nil
    }

    /// The tiled convolution plus bias, before the activation.
    public func linearForward(_ x: Tensor) throws -> Tensor {
        x.tiledConvolution(try geometry(x), tiles: tiles, kernel: kernel.value, bias: bias?.value)
    }

    public var activation: ActivationKind { config.activation }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0], g = try geometry(x)
        let dz = preActivationGradient(config.activation, cache: cache, output: output, gradOutput: gradOutput, preActivation: preActivation)
        return [accumulatingGradients(kernel: kernel, bias: bias) {
            Tensor.tiledConvolutionBackward(g, tiles: tiles, input: x, kernel: kernel.value, gradOutput: dz,
                                            needInput: needsInputGradients[0], kernelGradient: &$0, biasGradient: &$1)
        }]
    }
}
