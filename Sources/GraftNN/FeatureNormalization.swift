import Foundation
import GraftTensor

/// Normalisation of each sample's features, not over the batch: Keras's `LayerNormalization` (also its deprecated
/// `rms_scaling`), `RMSNormalization`, `GroupNormalization` and `UnitNormalization`. Each normalises "sets" of
/// values (a sample's last axes; a sample's channels of one group at every position) by one rule:
/// `x̂ = (x − a·μ) · r`, `r = min((S / n + ε)^(−½), cap)`, `S = Σ (x − b·μ)²`, and the layers differ in `a`, `b`,
/// `n`, `ε` and `cap`. The backward pass follows from the same rule:
/// `dx = r·(g − a·mean(g)) − [r below cap] · r³/n · (x − b·μ) · Σ g·(x − a·μ)`, `g` the gradient of `x̂`.
struct SetNormalizer: Sendable {
    /// Subtract the mean from the output (`a`), and from the values whose squares make `S` (`b`).
    var centerOutput: Bool
    var centerSpread: Bool
    /// Divide `S` by the set size (mean of squares) or not (the sum: unit norm).
    var meanOfSquares: Bool
    var epsilon: Float
    /// The largest `r` (UnitNormalization's `1 / 1e-12`); infinity for the others.
    var cap: Float = .infinity

    /// `x̂` for every set of `x` (`[sets · size]`, one set after another), and each set's `r`.
    func forward(_ x: UnsafePointer<Float>, sets: Int, size: Int, into out: UnsafeMutablePointer<Float>) -> [Float] {
        var inverse = [Float](repeating: 0, count: sets)
        inverse.withUnsafeMutableBufferPointer { inv in
            let r = inv.baseAddress!
            Parallel.forEach(sets, grain: max(1, 16_384 / max(size, 1))) { range in
                for s in range {
                    let p = x + s * size, o = out + s * size
                    let (mean, scale) = statistics(p, size)
                    let shift = centerOutput ? mean : 0
                    for j in 0..<size { o[j] = (p[j] - shift) * scale }
                    r[s] = scale
                }
            }
        }
        return inverse
    }

    /// The mean and `r` of one set, accumulated in Double.
    func statistics(_ p: UnsafePointer<Float>, _ size: Int) -> (Float, Float) {
        var sum = 0.0
        for j in 0..<size { sum += Double(p[j]) }
        let mean = sum / Double(max(size, 1))
        let centre = centerSpread ? mean : 0
        var spread = 0.0
        for j in 0..<size { let d = Double(p[j]) - centre; spread += d * d }
        let s = (meanOfSquares ? spread / Double(max(size, 1)) : spread) + Double(epsilon)
        let r = s > 0 ? min(1 / s.squareRoot(), Double(cap)) : Double(cap)
        return (Float(mean), Float(r))
    }

    /// The gradient of `x` from `g`, the gradient of `x̂`, for every set.
    func backward(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, sets: Int, size: Int,
                  into dx: UnsafeMutablePointer<Float>) {
        let n = Double(meanOfSquares ? size : 1)
        Parallel.forEach(sets, grain: max(1, 16_384 / max(size, 1))) { range in for s in range {
            let p = x + s * size, gp = g + s * size, d = dx + s * size
            let (meanF, rF) = statistics(p, size)
            let mean = Double(meanF), r = Double(rF)
            let a = centerOutput ? mean : 0, b = centerSpread ? mean : 0
            var sumG = 0.0, dot = 0.0
            for j in 0..<size {
                sumG += Double(gp[j])
                dot += Double(gp[j]) * (Double(p[j]) - a)
            }
            let meanG = centerOutput ? sumG / Double(max(size, 1)) : 0
            let capped = rF >= cap
            let k = capped ? 0 : r * r * r / n * dot
            for j in 0..<size {
                d[j] = Float(r * (Double(gp[j]) - meanG) - k * (Double(p[j]) - b))
            }
        } }
    }
}

/// Keras `LayerNormalization` over a sample's last `axes` axes (Keras's `axis`, which must name trailing axes), and
/// Keras 3's `RMSNormalization` (`rms`: no centring, `scale` weights). `gamma`/`beta` have the shape of those axes.
public final class LayerNormalization: Layer {
    /// What is divided by: the centred spread (Keras's LayerNormalization), the spread without centring the output
    /// (its deprecated `rms_scaling`), or the root mean square (RMSNormalization).
    public enum Mode: String, Sendable {
        /// `(x − μ) / sqrt(var + ε)`.
        case standard
        /// Keras's deprecated `rms_scaling`: `x / sqrt(var + ε)`, no beta.
        case rmsScaling
        /// `RMSNormalization`: `x / sqrt(mean(x²) + ε)`.
        case rms
    }

    public let name: String
    /// Keras's `axis` as configured (negative or positive, batch axis 0).
    public let axis: [Int]
    public let epsilon: Float
    public let center: Bool
    public let scale: Bool
    public let mode: Mode
    public var kerasClassName: String { mode == .rms ? "RMSNormalization" : "LayerNormalization" }
    public private(set) var gamma: Variable?
    public private(set) var beta: Variable?
    private var size = 0

    public init(name: String, axis: [Int] = [-1], epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true,
                mode: Mode = .standard) {
        self.name = name
        self.axis = axis
        self.epsilon = epsilon
        self.center = center && mode == .standard
        self.scale = scale
        self.mode = mode
    }

    public var variables: [(key: String, variable: Variable)] {
        (gamma.map { [(mode == .rms ? "scale" : "gamma", $0)] } ?? []) + (beta.map { [("beta", $0)] } ?? [])
    }

    public func variableKey(forCheckpointName name: String) -> String? {
        if name == "gamma" || name == "scale" { return gamma == nil ? nil : (mode == .rms ? "scale" : "gamma") }
        return name == "beta" && beta != nil ? "beta" : nil
    }

    var normalizer: SetNormalizer {
        SetNormalizer(centerOutput: mode == .standard, centerSpread: mode != .rms, meanOfSquares: true, epsilon: epsilon)
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0], rank = s.count + 1
        let resolved = Set(axis.map { $0 < 0 ? rank + $0 : $0 })
        let count = resolved.count
        guard count >= 1, resolved == Set((rank - count)..<rank), !resolved.contains(0) else {
            throw LayerError(name, "normalises axes \(axis) of a rank-\(rank) input; Graft normalises the last axes only (batch axis 0 excluded)")
        }
        let dims = Array(s.suffix(count))
        guard dims.allSatisfy({ $0 > 0 }) else { throw LayerError(name, "needs known sizes on axes \(axis), got \(Shape.describe([-1] + s))") }
        try requireAllocatable((scale ? [dims] : []) + (center ? [dims] : []))
        size = dims.reduce(1, *)
        gamma = scale ? Variable(Tensor(shape: dims, repeating: 1)) : nil
        beta = center ? Variable(Tensor(shape: dims, repeating: 0)) : nil
        return s
    }

    /// `x̂` and the output `x̂ · γ + β`.
    func normalized(_ x: Tensor) throws -> (xhat: Tensor, y: Tensor) {
        guard x.count % max(size, 1) == 0, x.count > 0 else { throw LayerError(name, "got \(Shape.describe(x.shape))") }
        var xhat = Tensor(uninitializedShape: x.shape)
        let sets = x.count / size
        xhat.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { p in _ = normalizer.forward(p.baseAddress!, sets: sets, size: size, into: o.baseAddress!) }
        }
        guard gamma != nil || beta != nil else { return (xhat, xhat) }
        let g = gamma?.value.scalars ?? [Float](repeating: 1, count: size), b = beta?.value.scalars ?? [Float](repeating: 0, count: size)
        return (xhat, xhat.reshaped([sets, size]).channelAffine(scale: g, shift: b).reshaped(x.shape))
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try normalized(inputs[0]).y }

    public var backwardReadsOutput: Bool { false }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0], sets = x.count / max(size, 1)
        let xhat = try normalized(x).xhat
        let gv = gamma?.value.scalars
        var dGamma = [Double](repeating: 0, count: size), dBeta = dGamma
        var g = gradOutput
        g.withUnsafeMutableBufferPointer { gp in
            gradOutput.withUnsafeBufferPointer { dy in
                xhat.withUnsafeBufferPointer { xh in
                    for s in 0..<sets {
                        for j in 0..<size {
                            let i = s * size + j
                            dGamma[j] += Double(dy[i]) * Double(xh[i])
                            dBeta[j] += Double(dy[i])
                            gp[i] = dy[i] * (gv?[j] ?? 1)
                        }
                    }
                }
            }
        }
        withTrainableGradient(gamma) { p in if let p { for j in 0..<size { p[j] += Float(dGamma[j]) } } }
        withTrainableGradient(beta) { p in if let p { for j in 0..<size { p[j] += Float(dBeta[j]) } } }
        guard needsInputGradients[0] else { return [nil] }
        var dx = Tensor(uninitializedShape: x.shape)
        dx.withUnsafeMutableBufferPointer { d in
            x.withUnsafeBufferPointer { xp in
                g.withUnsafeBufferPointer { gp in
                    normalizer.backward(xp.baseAddress!, gp.baseAddress!, sets: sets, size: size, into: d.baseAddress!)
                }
            }
        }
        return [dx]
    }
}

/// Keras `GroupNormalization` over the channel (last) axis: each sample's channels split into `groups`, each group
/// normalised over all its positions and channels; `gamma`/`beta` per channel.
public final class GroupNormalization: Layer {
    public let name: String
    public let groups: Int
    public let epsilon: Float
    public let center: Bool
    public let scale: Bool
    public var kerasClassName: String { "GroupNormalization" }
    public private(set) var gamma: Variable?
    public private(set) var beta: Variable?
    private var channels = 0

    public init(name: String, groups: Int = 32, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true) {
        self.name = name
        self.groups = groups
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
    }

    public var variables: [(key: String, variable: Variable)] {
        (gamma.map { [("gamma", $0)] } ?? []) + (beta.map { [("beta", $0)] } ?? [])
    }

    static let normalizer = SetNormalizer(centerOutput: true, centerSpread: true, meanOfSquares: true, epsilon: 0)

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        guard let c = s.last, c > 0, s.count >= 1 else { throw LayerError(name, "needs a known channel count, got \(Shape.describe([-1] + s))") }
        guard groups >= 1, c % groups == 0 else { throw LayerError(name, "\(c) channels do not divide into \(groups) groups") }
        try requireAllocatable((scale ? [[c]] : []) + (center ? [[c]] : []))
        channels = c
        gamma = scale ? Variable(Tensor(shape: [c], repeating: 1)) : nil
        beta = center ? Variable(Tensor(shape: [c], repeating: 0)) : nil
        return s
    }

    /// `[N, …, C]` as `[N, G, positions, C/G]` (each group's values contiguous), and back.
    func grouped(_ x: Tensor) -> Tensor {
        let n = x.shape[0], positions = x.count / max(n * channels, 1)
        return x.reshaped([n, positions, groups, channels / groups]).permuted([0, 2, 1, 3])
    }
    func ungrouped(_ t: Tensor, like x: Tensor) -> Tensor { t.permuted([0, 2, 1, 3]).reshaped(x.shape) }

    var setSize: (Tensor) -> Int { { x in x.count / max(x.shape[0] * self.groups, 1) } }

    func normalized(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 2, x.shape.last == channels else { throw LayerError(name, "expects \(channels) channels, got \(Shape.describe(x.shape))") }
        let gx = grouped(x)
        var xhat = Tensor(uninitializedShape: gx.shape)
        let size = setSize(x)
        var normalizer = Self.normalizer
        normalizer.epsilon = epsilon
        xhat.withUnsafeMutableBufferPointer { o in
            gx.withUnsafeBufferPointer { p in _ = normalizer.forward(p.baseAddress!, sets: x.count / max(size, 1), size: size, into: o.baseAddress!) }
        }
        return ungrouped(xhat, like: x)
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let xhat = try normalized(inputs[0])
        return xhat.channelAffine(scale: gamma?.value.scalars ?? [Float](repeating: 1, count: channels),
                                  shift: beta?.value.scalars ?? [Float](repeating: 0, count: channels))
    }

    public var backwardReadsOutput: Bool { false }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        let xhat = try normalized(x)
        let rows = x.count / channels
        let (sumDy, sumDyXhat) = BatchNormalization.sums(gradOutput, xhat, centeredOn: [Float](repeating: 0, count: channels),
                                                         rows: rows, channels: channels)
        withTrainableGradient(gamma) { p in if let p { for c in 0..<channels { p[c] += Float(sumDyXhat[c]) } } }
        withTrainableGradient(beta) { p in if let p { for c in 0..<channels { p[c] += Float(sumDy[c]) } } }
        guard needsInputGradients[0] else { return [nil] }
        let g = grouped(gradOutput.channelAffine(scale: gamma?.value.scalars ?? [Float](repeating: 1, count: channels),
                                                 shift: [Float](repeating: 0, count: channels)))
        let gx = grouped(x)
        let size = setSize(x)
        var normalizer = Self.normalizer
        normalizer.epsilon = epsilon
        var dx = Tensor(uninitializedShape: gx.shape)
        dx.withUnsafeMutableBufferPointer { d in
            gx.withUnsafeBufferPointer { xp in
                g.withUnsafeBufferPointer { gp in
                    normalizer.backward(xp.baseAddress!, gp.baseAddress!, sets: x.count / max(size, 1), size: size, into: d.baseAddress!)
                }
            }
        }
        return [ungrouped(dx, like: x)]
    }
}

/// Keras `UnitNormalization` over the last axis: `x · min(1 / ‖x‖₂, 1e12)`.
public final class UnitNormalization: Layer {
    public let name: String
    public var kerasClassName: String { "UnitNormalization" }
    public var variables: [(key: String, variable: Variable)] { [] }
    private var size = 0

    public init(name: String) { self.name = name }

    static let normalizer = SetNormalizer(centerOutput: false, centerSpread: false, meanOfSquares: false, epsilon: 0, cap: 1e12)

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        guard let c = inputShapes[0].last, c > 0 else { throw LayerError(name, "needs a known last axis, got \(Shape.describe([-1] + inputShapes[0]))") }
        size = c
        return inputShapes[0]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard x.shape.last == size else { throw LayerError(name, "expects a last axis of \(size), got \(Shape.describe(x.shape))") }
        var y = Tensor(uninitializedShape: x.shape)
        y.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { p in _ = Self.normalizer.forward(p.baseAddress!, sets: x.count / size, size: size, into: o.baseAddress!) }
        }
        return y
    }

    public var backwardReadsOutput: Bool { false }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        var dx = Tensor(uninitializedShape: x.shape)
        dx.withUnsafeMutableBufferPointer { d in
            x.withUnsafeBufferPointer { xp in
                gradOutput.withUnsafeBufferPointer { gp in
                    Self.normalizer.backward(xp.baseAddress!, gp.baseAddress!, sets: x.count / size, size: size, into: d.baseAddress!)
                }
            }
        }
        return [dx]
    }
}
