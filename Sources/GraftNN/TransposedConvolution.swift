import GraftTensor

/// Keras `Conv2DTranspose`: kernel `[kH, kW, filters, in]`, bias `[filters]`. Its forward pass is the backward
/// (input-gradient) pass of the convolution that maps its output back to its input, as TensorFlow computes it, so
/// it runs on the same kernels (oneDNN or im2col) as `Conv2D`'s backward pass.
public final class Conv2DTranspose: Layer {
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
    func linearForward(_ x: Tensor) throws -> Tensor {
        var y = Tensor.convolutionBackwardData(try geometry(x), kernel: kernel.value, gradOutput: x)
        if let b = bias?.value.scalars { y = y.channelAffine(scale: [Float](repeating: 1, count: b.count), shift: b) }
        return y
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try linearForward(inputs[0]).activated(config.activation)
    }

    public var finalActivation: ActivationKind { config.activation }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        let z = try linearForward(inputs[0])
        return config.activation == .linear ? (z, nil) : activationOutput(z, config.activation)
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0], g = try geometry(x)
        let dz = preActivationGradient(config.activation, cache: cache, output: output, gradOutput: gradOutput, preActivation: preActivation)
        if let bias, bias.isTrainable {
            let f = config.filters
            let (sum, _) = BatchNormalization.sums(dz, dz, centeredOn: [Float](repeating: 0, count: f), rows: dz.count / f, channels: f)
            bias.accumulate(Tensor(shape: [f], values: sum.map { Float($0) }))
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
