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
        kernel = Variable(Initializer.glorotUniform([last, units], rng: &rng))
        bias = useBias ? Variable(Tensor(shape: [units])) : nil
        return Array(s.dropLast()) + [units]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard x.rank >= 2, x.shape.last == inFeatures else {
            throw LayerError(name, "expects inputs with last dimension \(inFeatures), got \(Shape.describe(x.shape))")
        }
        let rows = x.count / inFeatures
        var out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [units])
        out.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { xi in
                kernel.value.withUnsafeBufferPointer { k in
                    sgemm(m: rows, n: units, k: inFeatures, a: xi.baseAddress!, lda: inFeatures, b: k.baseAddress!, ldb: units,
                          c: o.baseAddress!, ldc: units)
                }
            }
            if let b = bias?.value {
                b.withUnsafeBufferPointer { ConvolutionKernels.addChannelBias(o.baseAddress!, rows: rows, channels: units, bias: $0.baseAddress!) }
            }
        }
        return out.activated(activation)
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
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, kerasClassName: String, rate: Float) {
        self.name = name
        self.kerasClassName = kerasClassName
        self.rate = rate
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        return inputShapes[0]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { inputs[0] }
}
