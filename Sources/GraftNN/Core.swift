import GraftTensor

/// Keras `InputLayer`: the entry of a model; `shape` excludes the batch axis (-1 for unknown sizes).
public final class InputLayer: Layer {
    public let name: String
    public let shape: [Int]
    public var kerasClassName: String { "InputLayer" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] { shape }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        let given = Array(x.shape.dropFirst())
        guard given.count == shape.count, zip(given, shape).allSatisfy({ $1 < 0 || $0 == $1 }) else {
            throw LayerError(name, "expects input \(Shape.describe([-1] + shape)), got \(Shape.describe(x.shape))")
        }
        return x
    }
}

/// Keras `Dense` on the last axis: kernel `[in, units]`, bias `[units]`.
public final class Dense: Layer {
    public let name: String
    public let units: Int
    public let useBias: Bool
    public let activation: ActivationKind
    public var kerasClassName: String { "Dense" }
    public private(set) var kernel = Variable(Tensor(shape: [0]))
    public private(set) var bias: Variable?
    private var inFeatures = 0

    public init(name: String, units: Int, useBias: Bool = true, activation: ActivationKind = .linear) {
        self.name = name
        self.units = units
        self.useBias = useBias
        self.activation = activation
    }

    public var variables: [(key: String, variable: Variable)] {
        [("kernel", kernel)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        guard let last = s.last, last > 0 else {
            throw LayerError(name, "needs a known last input dimension, got \(Shape.describe([-1] + s))")
        }
        inFeatures = last
        try requireAllocatable([[last, units]] + (useBias ? [[units]] : []))
        kernel = Variable(Initializer.glorotUniform([last, units], rng: &rng))
        bias = useBias ? Variable(Tensor(shape: [units])) : nil
        return Array(s.dropLast()) + [units]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try linearPart(checked(inputs[0])).activated(activation)
    }

    func checked(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 2, x.shape.last == inFeatures else {
            throw LayerError(name, "expects inputs with last dimension \(inFeatures), got \(Shape.describe(x.shape))")
        }
        return x
    }
}

/// Keras `Flatten`: `[N, d1, d2, …]` → `[N, d1·d2·…]` in row-major (channels-last) order.
public final class Flatten: Layer {
    public let name: String
    public var kerasClassName: String { "Flatten" }
    public var variables: [(key: String, variable: Variable)] { [] }
    public init(name: String) { self.name = name }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        return [s.contains { $0 < 0 } ? -1 : s.reduce(1, *)]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        return x.reshaped([x.shape[0], x.count / max(x.shape[0], 1)])
    }
}

/// Keras `Reshape` to `targetShape` (batch excluded; one entry may be -1).
public final class Reshape: Layer {
    public let name: String
    public let targetShape: [Int]
    public var kerasClassName: String { "Reshape" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, targetShape: [Int]) {
        self.name = name
        self.targetShape = targetShape
    }

    func resolve(_ count: Int) throws -> [Int] {
        let known = targetShape.filter { $0 >= 0 }.reduce(1, *)
        let unknown = targetShape.filter { $0 < 0 }.count
        if unknown == 0 {
            guard known == count else { throw LayerError(name, "cannot reshape \(count) values to \(Shape.describe(targetShape))") }
            return targetShape
        }
        guard unknown == 1, known > 0, count % known == 0 else {
            throw LayerError(name, "cannot reshape \(count) values to \(Shape.describe(targetShape))")
        }
        return targetShape.map { $0 < 0 ? count / known : $0 }
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        if s.contains(where: { $0 < 0 }) { return targetShape }
        return try resolve(s.reduce(1, *))
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        let n = x.shape[0]
        return x.reshaped([n] + (try resolve(x.count / max(n, 1))))
    }
}

/// Layers that are the identity at inference: Keras `Dropout`, `SpatialDropout2D`, `GaussianNoise`,
/// `GaussianDropout`, `ActivityRegularization`. Training-time behaviour arrives with the training engine.
public final class InferenceIdentity: Layer {
    public let name: String
    public let kerasClassName: String
    /// Dropout rate or noise standard deviation, as configured.
    public let rate: Float
    /// The layer's settings as the file gave them (JSON), for a layer that acts only while training and that Graft
    /// keeps as the identity (Keras's `RandomFlip`): written back unchanged.
    public let originalSettings: String?
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, kerasClassName: String, rate: Float, originalSettings: String? = nil) {
        self.name = name
        self.kerasClassName = kerasClassName
        self.rate = rate
        self.originalSettings = originalSettings
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        return inputShapes[0]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { inputs[0] }
}

// MARK: - training

/// Pointer to a variable's gradient when it is trainable, else nil (frozen parameters get no gradient).
func withTrainableGradient<R>(_ v: Variable?, _ body: (UnsafeMutablePointer<Float>?) throws -> R) rethrows -> R {
    guard let v, v.isTrainable else { return try body(nil) }
    return try v.withGradient { try body($0) }
}

/// `(output, cache)` for a layer whose last step is `activation` applied to `z`.
func activationOutput(_ z: Tensor, _ activation: ActivationKind, extra: Any? = nil) -> (output: Tensor, cache: Any?) {
    (z.activated(activation), ActivationCache(z: z, extra: extra))
}

/// The gradient of the pre-activation from the gradient of the output.
func preActivationGradient(_ activation: ActivationKind, cache: Any?, output: Tensor, gradOutput: Tensor,
                           preActivation: Bool) -> Tensor {
    if preActivation || activation == .linear { return gradOutput }
    let z = (cache as? ActivationCache)?.z ?? output
    return Tensor.activationGradient(activation, z: z, y: output, dy: gradOutput)
}

extension InputLayer {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        [needsInputGradients.first == true ? gradOutput : nil]
    }
}

extension Dense {
    public var finalActivation: ActivationKind { activation }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        let z = linearPart(try checked(inputs[0]))
        return activation == .linear ? (z, nil) : activationOutput(z, activation)
    }

    /// `x · kernel + bias` over the last axis.
    func linearPart(_ x: Tensor) -> Tensor {
        let rows = x.count / inFeaturesForBackward
        var out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [units])
        out.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { xi in
                kernel.value.withUnsafeBufferPointer { k in
                    sgemm(m: rows, n: units, k: inFeaturesForBackward, a: xi.baseAddress!, lda: inFeaturesForBackward,
                          b: k.baseAddress!, ldb: units, c: o.baseAddress!, ldc: units)
                }
            }
            if let b = bias?.value {
                b.withUnsafeBufferPointer { ConvolutionKernels.addChannelBias(o.baseAddress!, rows: rows, channels: units, bias: $0.baseAddress!) }
            }
        }
        return out
    }

    var inFeaturesForBackward: Int { kernel.value.shape[0] }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        let dz = preActivationGradient(activation, cache: cache, output: output, gradOutput: gradOutput, preActivation: preActivation)
        let fin = inFeaturesForBackward, rows = x.count / fin
        dz.withUnsafeBufferPointer { g in
            x.withUnsafeBufferPointer { xi in
                withTrainableGradient(kernel) { gk in
                    if let gk {
                        sgemm(transposeA: true, m: fin, n: units, k: rows, a: xi.baseAddress!, lda: fin, b: g.baseAddress!, ldb: units,
                              beta: 1, c: gk, ldc: units)
                    }
                }
                withTrainableGradient(bias) { gb in
                    if let gb { for r in 0..<rows { for c in 0..<units { gb[c] += g[r * units + c] } } }
                }
            }
        }
        guard needsInputGradients[0] else { return [nil] }
        var dx = Tensor(uninitializedShape: x.shape)
        dx.withUnsafeMutableBufferPointer { d in
            dz.withUnsafeBufferPointer { g in
                kernel.value.withUnsafeBufferPointer { k in
                    sgemm(transposeB: true, m: rows, n: fin, k: units, a: g.baseAddress!, lda: units, b: k.baseAddress!, ldb: units,
                          c: d.baseAddress!, ldc: fin)
                }
            }
        }
        return [dx]
    }
}

extension Flatten {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        [gradOutput.reshaped(inputs[0].shape)]
    }
}

extension Reshape {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        [gradOutput.reshaped(inputs[0].shape)]
    }
}

extension InferenceIdentity {
    /// Training-mode behaviour: `Dropout` (inverted), `SpatialDropout1D/2D/3D` (whole channels), ConvNeXt's
    /// `StochasticDepth` (whole samples: the residual branch dropped), `AlphaDropout` (dropped units set to SELU's
    /// saturation, then rescaled), `GaussianDropout`
    /// (multiplicative N(1, p/(1−p))), `GaussianNoise` (additive N(0, stddev²)); the multiplier is cached.
    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        let x = inputs[0]
        guard rate > 0 else { return (x, nil) }
        switch kerasClassName {
        case "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "StochasticDepth":
            guard rate < 1 else { return (Tensor(shape: x.shape, repeating: 0), Tensor(shape: x.shape, repeating: 0)) }
            let keep = 1 - rate
            var maskShape = x.shape
            if kerasClassName.hasPrefix("SpatialDropout") && x.rank >= 3 {
                maskShape = [x.shape[0]] + [Int](repeating: 1, count: x.rank - 2) + [x.shape[x.rank - 1]]   // whole channels
            }
            if kerasClassName == "StochasticDepth" { maskShape = [x.shape[0]] + [Int](repeating: 1, count: x.rank - 1) }   // whole samples
            var values = [Float](repeating: 0, count: maskShape.reduce(1, *))
            for i in values.indices { values[i] = context.rng.uniform(0, 1) < keep ? 1 / keep : 0 }
            let mask = Tensor(shape: maskShape, values: values)
            return (try x.elementwise(.multiply, mask), mask)
        case "GaussianDropout":
            let sd = (rate / (1 - rate)).squareRoot()
            let mask = Tensor(shape: x.shape, values: (0..<x.count).map { _ in 1 + sd * context.rng.normal() })
            return (try x.elementwise(.multiply, mask), mask)
        case "AlphaDropout":
            // Keras: dropped units take SELU's saturation value α′, then a·x + b keeps mean and variance.
            guard rate < 1 else { return (x, nil) }
            let alphaP: Float = -1.7580993408473766
            let a = ((1 - rate) * (1 + rate * alphaP * alphaP)).squareRoot()
            let scale = 1 / a, shift = -scale * alphaP * rate
            var kept = [Float](repeating: 0, count: x.count), y = x
            y.withUnsafeMutableBufferPointer { o in
                for i in 0..<o.count {
                    let keep = context.rng.uniform(0, 1) >= rate
                    kept[i] = keep ? scale : 0
                    o[i] = scale * (keep ? o[i] : alphaP) + shift
                }
            }
            return (y, Tensor(shape: x.shape, values: kept))
        case "GaussianNoise":
            let noise = Tensor(shape: x.shape, values: (0..<x.count).map { _ in rate * context.rng.normal() })
            return (try x.elementwise(.add, noise), nil)
        default:
            return (x, nil)
        }
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        guard let mask = cache as? Tensor else { return [gradOutput] }
        return [try gradOutput.elementwise(.multiply, mask)]
    }
}
