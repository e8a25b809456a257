import GraftTensor

/// Keras `BatchNormalization` over one axis (the last, or any other, such as 1 for `channels_first`). Variables in Keras order:
/// `gamma` (if `scale`), `beta` (if `center`), `moving_mean`, `moving_variance` (buffers).
public final class BatchNormalization: Layer {
    public let name: String
    public let epsilon: Float
    public let momentum: Float
    public let center: Bool
    public let scale: Bool
    /// The normalised axis as Keras counts it (batch is 0, -1 the last).
    public let axis: Int
    public var kerasClassName: String { "BatchNormalization" }
    public private(set) var gamma: Variable?
    public private(set) var beta: Variable?
    public private(set) var movingMean = Variable(Tensor(shape: [0]), isBuffer: true)
    public private(set) var movingVariance = Variable(Tensor(shape: [0]), isBuffer: true)
    /// Keras's `trainable = False`: the layer runs in inference mode, also while training (set by `freeze`).
    public var frozen = false
    private var channels = 0
    /// The normalised axis (batch included) when it is not the last: inputs are permuted to put it last.
    private var channelAxis: Int?

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
        let rank = inputShapes[0].count + 1
        let resolved = axis < 0 ? rank + axis : axis
        guard resolved >= 1, resolved < rank else {
            throw LayerError(name, "normalises axis \(axis), which a rank-\(rank) input does not have (the batch axis 0 cannot be normalised)")
        }
        channelAxis = resolved == rank - 1 ? nil : resolved
        let c = inputShapes[0][resolved - 1]
        guard c > 0 else {
            throw LayerError(name, "needs a known channel count, got \(Shape.describe([-1] + inputShapes[0]))")
        }
        try requireAllocatable([[c], [c]] + (scale ? [[c]] : []) + (center ? [[c]] : []))
        channels = c
        gamma = scale ? Variable(Tensor(shape: [c], repeating: 1)) : nil
        beta = center ? Variable(Tensor(shape: [c], repeating: 0)) : nil
        movingMean = Variable(Tensor(shape: [c], repeating: 0), isBuffer: true)
        movingVariance = Variable(Tensor(shape: [c], repeating: 1), isBuffer: true)
        return inputShapes[0]
    }

    /// True when the normalised axis is the last one (what a convolution's folded weights assume).
    public var normalizesLastAxis: Bool { channelAxis == nil }

    /// `x` with the normalised axis moved last, and back (identity for the usual last axis).
    func toLastAxis(_ x: Tensor) -> Tensor { channelAxis.map { x.movingAxis($0, to: x.rank - 1) } ?? x }
    func fromLastAxis(_ y: Tensor) -> Tensor { channelAxis.map { y.movingAxis(y.rank - 1, to: $0) } ?? y }

    /// The number of channels normalised (0 before `build`).
    public var channelCount: Int { channels }

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
        guard inputs[0].rank > (channelAxis ?? 0) else { throw LayerError(name, "got \(Shape.describe(inputs[0].shape))") }
        let x = toLastAxis(inputs[0])
        guard x.shape.last == channels else {
            throw LayerError(name, "expects \(channels) channels, got \(Shape.describe(x.shape))")
        }
        let (s, t) = inferenceAffine()
        return fromLastAxis(x.channelAffine(scale: s, shift: t))
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
        try requireAllocatable([[c], [c]])
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

// MARK: - training

extension BatchNormalization {
    struct TrainCache { let mean: [Float]; let invStd: [Float] }

    /// Training mode (layer not frozen): normalises with the batch mean and (biased) variance over every axis but the
    /// last, and updates `moving = momentum · moving + (1 − momentum) · batch`. A frozen layer runs in inference mode.
    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        guard inputs[0].rank > (channelAxis ?? 0) else { throw LayerError(name, "got \(Shape.describe(inputs[0].shape))") }
        let (y, cache) = try lastAxisForwardTrain(toLastAxis(inputs[0]), context: &context)
        return (fromLastAxis(y), cache)
    }

    func lastAxisForwardTrain(_ x: Tensor, context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        guard x.shape.last == channels else {
            throw LayerError(name, "expects \(channels) channels, got \(Shape.describe(x.shape))")
        }
        let C = channels, rows = x.count / max(C, 1)
        if frozen && !context.updateFrozenBatchNormStatistics {
            // Inference mode, statistics untouched: the batch's own statistics are not needed.
            let (s, t) = inferenceAffine()
            return (x.channelAffine(scale: s, shift: t), nil)
        }
        let (mean, variance) = x.withUnsafeBufferPointer { p -> ([Double], [Double]) in
            guard let base = p.baseAddress else { return ([Double](repeating: 0, count: C), [Double](repeating: 0, count: C)) }
            return ChannelReductions.meanAndVariance(base, rows: rows, channels: C)
        }
        if !frozen || context.updateFrozenBatchNormStatistics {
            let m = momentum
            let mm = movingMean.value.scalars, mv = movingVariance.value.scalars
            movingMean.value = Tensor(shape: [C], values: (0..<C).map { m * mm[$0] + (1 - m) * Float(mean[$0]) })
            movingVariance.value = Tensor(shape: [C], values: (0..<C).map { m * mv[$0] + (1 - m) * Float(variance[$0]) })
        }
        if frozen {
            let (s, t) = inferenceAffine()
            return (x.channelAffine(scale: s, shift: t), nil)
        }
        let invStd = variance.map { Float(1 / ($0 + Double(epsilon)).squareRoot()) }
        let g = gamma?.value.scalars ?? [Float](repeating: 1, count: C)
        let b = beta?.value.scalars ?? [Float](repeating: 0, count: C)
        // y = γ·x̂ + β, computed from x in one pass: x·(γ·invStd) + (β − mean·γ·invStd). x̂ is not kept: backward
        // works from x (the input, which the tape holds anyway), the mean and invStd.
        let scale = (0..<C).map { g[$0] * invStd[$0] }
        let y = x.channelAffine(scale: scale, shift: (0..<C).map { b[$0] - Float(mean[$0]) * scale[$0] })
        return (y, TrainCache(mean: mean.map { Float($0) }, invStd: invStd))
    }

    public var backwardReadsOutput: Bool { false }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        try lastAxisBackward(toLastAxis(inputs[0]), cache: cache, gradOutput: toLastAxis(gradOutput),
                             needsInputGradient: needsInputGradients[0]).map { $0.map(fromLastAxis) }
    }

    func lastAxisBackward(_ x: Tensor, cache: Any?, gradOutput: Tensor, needsInputGradient: Bool) throws -> [Tensor?] {
        let inputs = [x], needsInputGradients = [needsInputGradient]
        let C = channels, rows = gradOutput.count / max(C, 1)
        let g = gamma?.value.scalars ?? [Float](repeating: 1, count: C)
        guard let c = cache as? TrainCache else {
            // Inference mode (frozen): y = x · scale + shift.
            let (s, _) = inferenceAffine()
            if let gamma, gamma.isTrainable || beta?.isTrainable == true {
                // Parameters trainable while the statistics are fixed: d/dgamma = dy · x̂ with x̂ from moving statistics.
                let mean = movingMean.value.scalars, variance = movingVariance.value.scalars
                let inv = variance.map { 1 / ($0 + epsilon).squareRoot() }
                let (sumDy, sumDyCentered) = Self.sums(gradOutput, inputs[0], centeredOn: mean, rows: rows, channels: C)
                accumulateAffineGradients(sumDy: sumDy, sumDyXhat: (0..<C).map { sumDyCentered[$0] * Double(inv[$0]) },
                                          gamma: gamma, beta: beta)
            }
            return [needsInputGradients[0] ? gradOutput.channelAffine(scale: s, shift: [Float](repeating: 0, count: C)) : nil]
        }
        // x̂ = (x − mean)·invStd, so Σ dy·x̂ = invStd · Σ dy·(x − mean).
        let (sumDy, sumDyCentered) = Self.sums(gradOutput, inputs[0], centeredOn: c.mean, rows: rows, channels: C)
        let sumDyX = (0..<C).map { sumDyCentered[$0] * Double(c.invStd[$0]) }
        accumulateAffineGradients(sumDy: sumDy, sumDyXhat: sumDyX, gamma: gamma, beta: beta)
        guard needsInputGradients[0] else { return [nil] }
        // dx = invStd · γ / M · (M·dy − Σdy − x̂·Σ(dy·x̂)) = dy·(invStd·γ) + (x − mean)·(−k·invStd·Σdy·x̂) − k·Σdy,
        // k = invStd·γ/M.
        let M = Double(rows)
        let k = (0..<C).map { Double(c.invStd[$0]) * Double(g[$0]) / M }
        let dx = Tensor.channelCombine(gradOutput, scaleA: (0..<C).map { c.invStd[$0] * g[$0] },
                                       inputs[0], centeredOn: c.mean,
                                       scaleB: (0..<C).map { Float(-k[$0] * sumDyX[$0] * Double(c.invStd[$0])) },
                                       shift: (0..<C).map { Float(-k[$0] * sumDy[$0]) })
        return [dx]
    }

    static func sums(_ dy: Tensor, _ x: Tensor, centeredOn center: [Float], rows: Int, channels C: Int) -> (sum: [Double], dot: [Double]) {
        dy.withUnsafeBufferPointer { d in
            x.withUnsafeBufferPointer { xb in
                guard let dp = d.baseAddress, let xp = xb.baseAddress else {
                    return ([Double](repeating: 0, count: C), [Double](repeating: 0, count: C))
                }
                return ChannelReductions.sumAndDot(dp, xp, centeredOn: center, rows: rows, channels: C)
            }
        }
    }

    /// `dγ += Σ dy·x̂`, `dβ += Σ dy` for the parameters that are trainable.
    func accumulateAffineGradients(sumDy: [Double], sumDyXhat: [Double], gamma: Variable?, beta: Variable?) {
        withTrainableGradient(gamma) { gg in
            guard let gg else { return }
            for c in 0..<channels { gg[c] += Float(sumDyXhat[c]) }
        }
        withTrainableGradient(beta) { gb in
            guard let gb else { return }
            for c in 0..<channels { gb[c] += Float(sumDy[c]) }
        }
    }
}

extension Rescaling {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let c = gradOutput.shape.last ?? 1
        return [gradOutput.channelAffine(scale: scale.count == 1 ? [Float](repeating: scale[0], count: c) : scale,
                                         shift: [Float](repeating: 0, count: c))]
    }
}

extension Normalization {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let c = gradOutput.shape.last ?? 1
        let v = fixedVariance ?? variance?.value.scalars ?? [1]
        let sd = (v.count == 1 ? [Float](repeating: v[0], count: c) : v).map { max($0.squareRoot(), 1e-7) }
        return [gradOutput.channelAffine(scale: invert ? sd : sd.map { 1 / $0 }, shift: [Float](repeating: 0, count: c))]
    }
}
