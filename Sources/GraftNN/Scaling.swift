import GraftTensor

/// ConvNeXt's `LayerScale` (keras.applications.convnext): `x · γ`, one learnt factor per channel (last axis).
public final class LayerScale: Layer {
    public let name: String
    /// The value `γ` starts from (Keras's `init_values`).
    public let initialValue: Float
    public var kerasClassName: String { "LayerScale" }
    public private(set) var gamma = Variable(Tensor(shape: [0]))
    private var channels = 0

    public init(name: String, initialValue: Float) {
        self.name = name
        self.initialValue = initialValue
    }

    public var variables: [(key: String, variable: Variable)] { [("gamma", gamma)] }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        guard let c = inputShapes[0].last, c > 0 else { throw LayerError(name, "needs a known channel count, got \(Shape.describe([-1] + inputShapes[0]))") }
        try requireAllocatable([[c]])
        channels = c
        gamma = Variable(Tensor(shape: [c], repeating: initialValue))
        return inputShapes[0]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        guard inputs[0].shape.last == channels else { throw LayerError(name, "expects \(channels) channels, got \(Shape.describe(inputs[0].shape))") }
        return inputs[0].channelAffine(scale: gamma.value.scalars, shift: [Float](repeating: 0, count: channels))
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        if gamma.isTrainable {
            let (_, dot) = BatchNormalization.sums(gradOutput, x, centeredOn: [Float](repeating: 0, count: channels),
                                                   rows: x.count / channels, channels: channels)
            gamma.accumulate(Tensor(shape: [channels], values: dot.map { Float($0) }))
        }
        guard needsInputGradients[0] else { return [nil] }
        return [gradOutput.channelAffine(scale: gamma.value.scalars, shift: [Float](repeating: 0, count: channels))]
    }

    public var backwardReadsOutput: Bool { false }
}

/// InceptionResNetV2's `CustomScaleLayer` (keras.applications.inception_resnet_v2): `a + b · scale` for inputs
/// `[a, b]`, the scaled residual sum.
public final class ScaledResidual: Layer {
    public let name: String
    public let scale: Float
    public var kerasClassName: String { "CustomScaleLayer" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, scale: Float) {
        self.name = name
        self.scale = scale
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 2)
        guard inputShapes[0] == inputShapes[1] else {
            throw LayerError(name, "adds inputs of shapes \(Shape.describe([-1] + inputShapes[0])) and \(Shape.describe([-1] + inputShapes[1]))")
        }
        return inputShapes[0]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        guard inputs[0].shape == inputs[1].shape else { throw LayerError(name, "inputs \(Shape.describe(inputs[0].shape)) and \(Shape.describe(inputs[1].shape)) differ") }
        var y = inputs[0]
        y.withUnsafeMutableBufferPointer { o in
            inputs[1].withUnsafeBufferPointer { b in for i in 0..<o.count { o[i] += b[i] * scale } }
        }
        return y
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        var scaled = gradOutput
        scaled.withUnsafeMutableBufferPointer { g in for i in 0..<g.count { g[i] *= scale } }
        return [needsInputGradients[0] ? gradOutput : nil, needsInputGradients[1] ? scaled : nil]
    }

    public var backwardReadsInputs: Bool { false }
    public var backwardReadsOutput: Bool { false }
}

/// Keras's `glu` activation as a layer (`Activation("glu")`): the last axis split in halves `a`, `b`, then
/// `a · sigmoid(b)`; the output has half the channels.
public final class GatedLinearUnit: Layer {
    public let name: String
    public var kerasClassName: String { "Activation" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String) { self.name = name }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        guard let c = inputShapes[0].last, c > 0, c % 2 == 0 else {
            throw LayerError(name, "glu splits the last axis in halves; it has \(inputShapes[0].last ?? 0)")
        }
        return Array(inputShapes[0].dropLast()) + [c / 2]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard let c = x.shape.last, c % 2 == 0 else { throw LayerError(name, "glu needs an even last axis, got \(Shape.describe(x.shape))") }
        let half = c / 2, rows = x.count / max(c, 1)
        var out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [half])
        out.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { p in
                for r in 0..<rows { for j in 0..<half { o[r * half + j] = p[r * c + j] * FastMath.sigmoid(p[r * c + half + j]) } }
            }
        }
        return out
    }

    public var backwardReadsOutput: Bool { false }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0], c = x.shape.last ?? 0, half = c / 2, rows = x.count / max(c, 1)
        var dx = Tensor(uninitializedShape: x.shape)
        dx.withUnsafeMutableBufferPointer { d in
            x.withUnsafeBufferPointer { p in
                gradOutput.withUnsafeBufferPointer { g in
                    for r in 0..<rows {
                        for j in 0..<half {
                            let a = p[r * c + j], s = FastMath.sigmoid(p[r * c + half + j]), dy = g[r * half + j]
                            d[r * c + j] = dy * s
                            d[r * c + half + j] = dy * a * s * (1 - s)
                        }
                    }
                }
            }
        }
        return [dx]
    }
}
