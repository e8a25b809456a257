import GraftTensor

/// Keras `BatchNormalization` over the last (channel) axis. Variables in Keras order:
/// `gamma` (if `scale`), `beta` (if `center`), `moving_mean`, `moving_variance` (buffers).
public final class BatchNormalization: Layer {
    public let name: String
    public let epsilon: Float
    public let momentum: Float
    public let center: Bool
    public let scale: Bool
    /// The normalised axis as Keras counts it (batch is 0, -1 the last); it must be the channel axis.
    public let axis: Int
    public var kerasClassName: String { "BatchNormalization" }
    public private(set) var gamma: Variable?
    public private(set) var beta: Variable?
    public private(set) var movingMean = Variable(Tensor(shape: [0]), isBuffer: true)
    public private(set) var movingVariance = Variable(Tensor(shape: [0]), isBuffer: true)
    private var channels = 0

    public init(name: String, epsilon: Float = 1e-3, momentum: Float = 0.99, center: Bool = true, scale: Bool = true,
                axis: Int = -1) {
        self.name = name
        self.axis = axis
        self.epsilon = epsilon
        self.momentum = momentum
        self.center = center
        self.scale = scale
    }

    public var variables: [(key: String, variable: Variable)] {
        var v: [(key: String, variable: Variable)] = []
        if let gamma { v.append(("gamma", gamma)) }
        if let beta { v.append(("beta", beta)) }
        v.append(("moving_mean", movingMean))
        v.append(("moving_variance", movingVariance))
        return v
    }

    public func variableKey(forCheckpointName name: String) -> String? {
        switch name {
        case "running_mean": return "moving_mean"
        case "running_std", "running_var", "running_variance": return "moving_variance"   // Keras 1 stored the variance as running_std
        default: return variables.contains { $0.key == name } ? name : nil
        }
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        guard let c = inputShapes[0].last, c > 0 else {
            throw LayerError(name, "needs a known channel count, got \(Shape.describe([-1] + inputShapes[0]))")
        }
        let rank = inputShapes[0].count + 1
        guard axis == -1 || axis == rank - 1 else {
            throw LayerError(name, "normalises axis \(axis) of a rank-\(rank) input; only the last (channel) axis is supported")
        }
        channels = c
        gamma = scale ? Variable(Tensor(shape: [c], repeating: 1)) : nil
        beta = center ? Variable(Tensor(shape: [c], repeating: 0)) : nil
        movingMean = Variable(Tensor(shape: [c], repeating: 0), isBuffer: true)
        movingVariance = Variable(Tensor(shape: [c], repeating: 1), isBuffer: true)
        return inputShapes[0]
    }

    /// Per-channel `scale` and `shift` such that inference output is `x · scale + shift`.
    public func inferenceAffine() -> (scale: [Float], shift: [Float]) {
        let mean = movingMean.value.scalars, variance = movingVariance.value.scalars
        let g = gamma?.value.scalars ?? [Float](repeating: 1, count: channels)
        let b = beta?.value.scalars ?? [Float](repeating: 0, count: channels)
        var s = [Float](repeating: 0, count: channels), t = s
        for c in 0..<channels {
            s[c] = g[c] / (variance[c] + epsilon).squareRoot()
            t[c] = b[c] - mean[c] * s[c]
        }
        return (s, t)
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard x.shape.last == channels else {
            throw LayerError(name, "expects \(channels) channels, got \(Shape.describe(x.shape))")
        }
        let (s, t) = inferenceAffine()
        return x.channelAffine(scale: s, shift: t)
    }
}

/// Keras `Rescaling`: `x · scale + offset` (scalars, or per-channel lists).
public final class Rescaling: Layer {
    public let name: String
    public let scale: [Float]
    public let offset: [Float]
    public var kerasClassName: String { "Rescaling" }
    public var variables: [(key: String, variable: Variable)] { [] }
    private var channels = 0

    public init(name: String, scale: [Float], offset: [Float]) {
        self.name = name
        self.scale = scale
        self.offset = offset
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let c = inputShapes[0].last ?? 1
        for (what, v) in [("scale", scale), ("offset", offset)] where v.count != 1 && v.count != c {
            throw LayerError(name, "\(what) has \(v.count) values for \(c) channels")
        }
        channels = c
        return inputShapes[0]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        let c = x.shape.last ?? 1
        return x.channelAffine(scale: scale.count == 1 ? [Float](repeating: scale[0], count: c) : scale,
                               shift: offset.count == 1 ? [Float](repeating: offset[0], count: c) : offset)
    }
}

/// Keras `Normalization` over the last axis: `(x − mean) / max(sqrt(variance), 1e-7)`, or its inverse with `invert`.
/// Mean and variance come from the config when given there, else from the weights `mean`, `variance`, `count`.
public final class Normalization: Layer {
    public let name: String
    public let invert: Bool
    public var kerasClassName: String { "Normalization" }
    /// Mean and variance given in the config (no weights then).
    public let fixedMean: [Float]?
    public let fixedVariance: [Float]?
    public private(set) var mean: Variable?
    public private(set) var variance: Variable?
    public private(set) var countVariable: Variable?

    public init(name: String, mean: [Float]? = nil, variance: [Float]? = nil, invert: Bool = false) {
        self.name = name
        self.fixedMean = mean
        self.fixedVariance = variance
        self.invert = invert
    }

    public var variables: [(key: String, variable: Variable)] {
        guard let mean, let variance, let countVariable else { return [] }
        return [("mean", mean), ("variance", variance), ("count", countVariable)]
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        guard let c = inputShapes[0].last, c > 0 else { throw LayerError(name, "needs a known channel count") }
        if fixedMean == nil {
            mean = Variable(Tensor(shape: [c]), isBuffer: true)
            variance = Variable(Tensor(shape: [c], repeating: 1), isBuffer: true)
            countVariable = Variable(Tensor(shape: []), isBuffer: true)
        } else {
            for v in [fixedMean, fixedVariance] where (v?.count ?? 1) != 1 && v?.count != c {
                throw LayerError(name, "mean/variance have \(v?.count ?? 0) values for \(c) channels")
            }
        }
        return inputShapes[0]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        let c = x.shape.last ?? 1
        func expand(_ v: [Float]) -> [Float] { v.count == 1 ? [Float](repeating: v[0], count: c) : v }
        let m = expand(fixedMean ?? mean?.value.scalars ?? [0])
        let v = expand(fixedVariance ?? variance?.value.scalars ?? [1])
        guard m.count == c else { throw LayerError(name, "expects \(m.count) channels, got \(Shape.describe(x.shape))") }
        let sd = v.map { max($0.squareRoot(), 1e-7) }
        if invert {
            return x.channelAffine(scale: sd, shift: m)
        }
        return x.channelAffine(scale: sd.map { 1 / $0 }, shift: zip(m, sd).map { -$0 / $1 })
    }
}
