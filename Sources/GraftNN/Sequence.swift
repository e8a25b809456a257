import GraftTensor

// Sequence layers beside the recurrent ones: wrappers (`Bidirectional`, `TimeDistributed`), `Embedding`,
// `Masking`, and the graph's plumbing for what Keras passes between layers besides tensors: the several outputs of
// one call (`OutputPart`) and masks (`SequenceMask`).

/// A node Graft adds to a graph for something Keras keeps implicit (an output index, a mask): never written to a
/// Keras config, and without parameters.
public protocol GraphPlumbing: Layer {}

/// Output `index` of a layer with several outputs (a recurrent layer with `return_state`), whose one tensor packs
/// them per sample (`Recurrent.pack`) in the order of `shapes`.
public final class OutputPart: GraphPlumbing {
    public let name: String
    public let index: Int
    public let shapes: [[Int]]
    public var kerasClassName: String { "OutputPart" }
    public var variables: [(key: String, variable: Variable)] { [] }

    /// Named after the layer and the node of its call (`gru[1]@7`), unique in the graph; the node of the layer it
    /// takes apart is its one input.
    public init(of layer: String, node: Int, index: Int, shapes: [[Int]]) {
        name = "\(layer)[\(index)]@\(node)"
        self.index = index
        self.shapes = shapes
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        guard index >= 0, index < shapes.count else { throw LayerError(name, "has no output \(index)") }
        return shapes[index]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        Recurrent.unpack(inputs[0], shapes: shapes)[index]
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        var parts = Recurrent.unpack(Tensor(shape: inputs[0].shape), shapes: shapes)
        parts[index] = gradOutput.reshaped(parts[index].shape)
        return [Recurrent.pack(parts)]
    }

    public var backwardReadsOutput: Bool { false }
}

/// A mask of 0s and 1s (1 keeps a step), as Keras computes and propagates them: Embedding's `mask_zero` (ids ≠ 0)
/// and Keras 3's mask ops (`not_equal` with a constant, `any`/`all` over the last axis, `logical_or`/`logical_and`
/// of several masks), `Masking`'s (any feature ≠ the mask value).
public final class SequenceMask: GraphPlumbing {
    /// What the mask is computed from.
    public enum Kind: Equatable, Sendable {
        case notEqual(Float)
        case anyNotEqual(Float)
        case anyAlongLastAxis, allAlongLastAxis
        case any, all
    }

    public let name: String
    public let kind: Kind
    public var kerasClassName: String { "Mask" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// Layers whose output carries their first input's mask (Keras's `supports_masking` without a mask of their own).
    public static func passesMask(_ l: any Layer) -> Bool {
        l is Dense || l is ActivationLayer || l is PReLU || l is InferenceIdentity || l is BatchNormalization
            || l is LayerNormalization || l is GroupNormalization || l is UnitNormalization || l is Rescaling
            || l is Normalization || l is TimeDistributed || l is DotAttention || l is MultiHeadAttention
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        guard let s = inputShapes.first, !s.isEmpty else { throw LayerError(name, "a mask needs a [batch, steps, …] input") }
        switch kind {
        case .notEqual: return s
        case .anyNotEqual, .anyAlongLastAxis, .allAlongLastAxis: return Array(s.dropLast())
        case .any, .all:
            guard inputShapes.allSatisfy({ $0 == s }) else { throw LayerError(name, "masks of different shapes cannot be combined") }
            return s
        }
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        func alongLast(_ keep: (UnsafeBufferPointer<Float>, Int, Int) -> Bool) -> Tensor {
            let f = x.shape.last ?? 1, rows = f == 0 ? 0 : x.count / f
            return x.withUnsafeBufferPointer { p in
                Tensor(shape: Array(x.shape.dropLast()), values: (0..<rows).map { keep(p, $0 * f, f) ? 1 : 0 })
            }
        }
        switch kind {
        case .notEqual(let v):
            return Tensor(shape: x.shape, values: x.scalars.map { $0 != v ? 1 : 0 })
        case .anyNotEqual(let v):
            return alongLast { p, start, f in (start..<(start + f)).contains { p[$0] != v } }
        case .anyAlongLastAxis:
            return alongLast { p, start, f in (start..<(start + f)).contains { p[$0] != 0 } }
        case .allAlongLastAxis:
            return alongLast { p, start, f in (start..<(start + f)).allSatisfy { p[$0] != 0 } }
        case .any, .all:
            var out = x.scalars.map { $0 != 0 ? Float(1) : 0 }
            for m in inputs.dropFirst() {
                guard m.shape == x.shape else { throw LayerError(name, "masks \(Shape.describe(x.shape)) and \(Shape.describe(m.shape)) differ") }
                m.withUnsafeBufferPointer { p in
                    for i in out.indices { out[i] = kind == .any ? (out[i] != 0 || p[i] != 0 ? 1 : 0) : (out[i] != 0 && p[i] != 0 ? 1 : 0) }
                }
            }
            return Tensor(shape: x.shape, values: out)
        }
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        inputs.map { _ in nil }
    }
}

/// Keras `Masking`: the steps whose features all equal `maskValue` are zeroed (and masked for later layers).
public final class Masking: Layer {
    public let name: String
    public let maskValue: Float
    public var kerasClassName: String { "Masking" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, maskValue: Float) {
        self.name = name
        self.maskValue = maskValue
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        guard inputShapes[0].count >= 2 else { throw LayerError(name, "expects [batch, steps, features], got \(Shape.describe([-1] + inputShapes[0]))") }
        return inputShapes[0]
    }

    /// 1 for each kept step, per row of the last axis.
    func keep(_ x: Tensor) -> [Float] {
        let f = x.shape.last ?? 1, rows = f == 0 ? 0 : x.count / f
        return x.withUnsafeBufferPointer { p in (0..<rows).map { r in (0..<f).contains { p[r * f + $0] != maskValue } ? 1 : 0 } }
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0], k = keep(x), f = x.shape.last ?? 1
        var y = x
        y.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= k[i / f] } }
        return y
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let k = keep(inputs[0]), f = inputs[0].shape.last ?? 1
        var d = gradOutput
        d.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= k[i / f] } }
        return [d]
    }
}

/// Keras `Embedding`: integer ids (stored as floats, exact below 2^24) → rows of `embeddings [inputDim, outputDim]`.
/// An id outside `0..<inputDim` or not a whole number is an error naming it. `maskZero`: id 0 is padding, masked.
public final class Embedding: Layer {
    public let name: String
    public let inputDim: Int
    public let outputDim: Int
    public let maskZero: Bool
    public var kerasClassName: String { "Embedding" }
    public private(set) var embeddings = Variable(Tensor(shape: [0]))

    public init(name: String, inputDim: Int, outputDim: Int, maskZero: Bool = false) {
        self.name = name
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.maskZero = maskZero
    }

    public var variables: [(key: String, variable: Variable)] { [("embeddings", embeddings)] }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        guard inputDim > 0, outputDim > 0, inputDim <= 1 << 24 else {
            throw LayerError(name, "input_dim \(inputDim) must be from 1 to 16777216 and output_dim \(outputDim) positive")
        }
        try requireAllocatable([[inputDim, outputDim]])
        var t = Tensor(uninitializedShape: [inputDim, outputDim])
        if !Initializer.skipRandom {
            t.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = rng.uniform(-0.05, 0.05) } }   // Keras's uniform
        }
        embeddings = Variable(t)
        return inputShapes[0] + [outputDim]
    }

    func ids(_ x: Tensor) throws -> [Int] {
        try x.scalars.map { v in
            guard v >= 0, v < Float(inputDim), v.rounded() == v else {
                throw LayerError(name, "token id \(v) is not a whole number from 0 to \(inputDim - 1)")
            }
            return Int(v)
        }
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0], idx = try ids(x), d = outputDim
        var out = Tensor(uninitializedShape: x.shape + [d])
        embeddings.value.withUnsafeBufferPointer { e in
            out.withUnsafeMutableBufferPointer { o in
                for (r, id) in idx.enumerated() { for j in 0..<d { o[r * d + j] = e[id * d + j] } }
            }
        }
        return out
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let idx = try ids(inputs[0]), d = outputDim
        withTrainableGradient(embeddings) { ge in
            guard let ge else { return }
            gradOutput.withUnsafeBufferPointer { g in
                for (r, id) in idx.enumerated() { for j in 0..<d { ge[id * d + j] += g[r * d + j] } }
            }
        }
        return [nil]
    }

    public var backwardReadsOutput: Bool { false }
}

/// Keras `TimeDistributed`: `inner` (any layer, or a whole model) applied to every step of `[N, T, …]`, as one
/// batch of `N·T` samples.
public final class TimeDistributed: Layer {
    public let name: String
    public let inner: any Layer
    public var kerasClassName: String { "TimeDistributed" }

    public init(name: String, inner: any Layer) {
        self.name = name
        self.inner = inner
    }

    public var variables: [(key: String, variable: Variable)] { inner.variables }
    public func variableKey(forCheckpointName name: String) -> String? { inner.variableKey(forCheckpointName: name) }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        guard s.count >= 2 else { throw LayerError(name, "expects [batch, steps, …], got \(Shape.describe([-1] + s))") }
        return [s[0]] + (try inner.build(inputShapes: [Array(s.dropFirst())], rng: &rng))
    }

    static func merged(_ x: Tensor) -> Tensor {
        x.rank < 2 ? x : x.reshaped([x.shape[0] * x.shape[1]] + x.shape.dropFirst(2))
    }
    static func split(_ y: Tensor, n: Int, t: Int) -> Tensor {
        y.rank < 1 ? y : y.reshaped([n, t] + y.shape.dropFirst())
    }

    func check(_ x: Tensor) throws {
        guard x.rank >= 2 else {
            throw LayerError(name, "expects [batch, steps, …], got \(Shape.describe(x.shape))")
        }
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        try check(x)
        return Self.split(try inner.forward([Self.merged(x)], training: training), n: x.shape[0], t: x.shape[1])
    }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        let x = inputs[0]
        try check(x)
        if inner is Model {
            context.nestedInputsNeedGradients = context.nestedInputsNeedGradients ?? [true]
        } else {
            context.nestedInputsNeedGradients = nil
        }
        let (y, cache) = try inner.forwardTrain([Self.merged(x)], context: &context)
        return (Self.split(y, n: x.shape[0], t: x.shape[1]), cache)
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        let n = x.shape.count >= 2 ? x.shape[0] : gradOutput.shape[0]
        let t = x.shape.count >= 2 ? x.shape[1] : gradOutput.shape[1]
        return try inner.backward([Self.merged(x)], output: Self.merged(output), cache: cache, gradOutput: Self.merged(gradOutput),
                                  needsInputGradients: needsInputGradients, preActivation: preActivation)
            .map { $0.map { Self.split($0, n: n, t: t) } }
    }

    public var finalActivation: ActivationKind { inner.finalActivation }
    public var backwardReadsInputs: Bool { inner.backwardReadsInputs }
    public var backwardReadsOutput: Bool { inner.backwardReadsOutput }
}

/// Keras `GlobalAveragePooling1D` given a mask: the mean over the kept steps (zeros for a sequence with none, where
/// Keras divides 0 by 0).
public final class MaskedAveragePooling1D: Layer {
    public let name: String
    public var kerasClassName: String { "GlobalAveragePooling1D" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String) { self.name = name }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 2)
        try requireRank(inputShapes[0], 2)
        return [inputShapes[0][1]]
    }

    func counts(_ m: Tensor, n: Int, t: Int) -> [Float] {
        m.withUnsafeBufferPointer { p in (0..<n).map { b in (0..<t).reduce(0) { $0 + p[b * t + $1] } } }
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0], m = inputs[1]
        guard x.rank == 3, m.shape == [x.shape[0], x.shape[1]] else {
            throw LayerError(name, "expects [batch, steps, channels] and its [batch, steps] mask, got \(Shape.describe(x.shape)) and \(Shape.describe(m.shape))")
        }
        let n = x.shape[0], t = x.shape[1], c = x.shape[2], k = counts(m, n: n, t: t)
        var out = [Float](repeating: 0, count: n * c)
        x.withUnsafeBufferPointer { xp in
            m.withUnsafeBufferPointer { mp in
                for b in 0..<n where k[b] > 0 {
                    for s in 0..<t where mp[b * t + s] != 0 { for j in 0..<c { out[b * c + j] += xp[(b * t + s) * c + j] } }
                    for j in 0..<c { out[b * c + j] /= k[b] }
                }
            }
        }
        return Tensor(shape: [n, c], values: out)
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0], m = inputs[1]
        let n = x.shape[0], t = x.shape[1], c = x.shape[2], k = counts(m, n: n, t: t)
        var dx = Tensor(shape: x.shape)
        dx.withUnsafeMutableBufferPointer { d in
            gradOutput.withUnsafeBufferPointer { g in
                m.withUnsafeBufferPointer { mp in
                    for b in 0..<n where k[b] > 0 {
                        for s in 0..<t where mp[b * t + s] != 0 { for j in 0..<c { d[(b * t + s) * c + j] = g[b * c + j] / k[b] } }
                    }
                }
            }
        }
        return [dx, nil]
    }

    public var backwardReadsOutput: Bool { false }
}

/// Keras `Bidirectional`: one recurrent layer over the sequence and one over it reversed, their outputs merged
/// (`concat`, `sum`, `mul`, `ave`, or both kept: `none`). With `return_sequences` the backward layer's outputs are
/// put back in time order first. Inputs as `Recurrent`'s, the initial states of the forward layer then of the
/// backward one; several outputs are packed per sample like `Recurrent`'s.
public final class Bidirectional: Layer {
    /// How the two directions' outputs meet (`none`: both are outputs).
    public enum MergeMode: String, Sendable { case concat, sum, mul, ave, none }

    public let name: String
    public let forwardLayer: Recurrent
    public let backwardLayer: Recurrent
    public let mergeMode: MergeMode
    public var kerasClassName: String { "Bidirectional" }
    /// Set before `build`, like `Recurrent`'s.
    public var initialStateInputs = false {
        didSet { forwardLayer.initialStateInputs = initialStateInputs; backwardLayer.initialStateInputs = initialStateInputs }
    }
    public var masked = false {
        didSet {
            forwardLayer.masked = masked
            backwardLayer.masked = masked
            // Keras zeroes the outputs of masked steps in both directions when it returns sequences.
            forwardLayer.settings.zeroOutputForMask = masked && forwardLayer.settings.returnSequences
            backwardLayer.settings.zeroOutputForMask = masked && backwardLayer.settings.returnSequences
        }
    }

    public init(name: String, forward: Recurrent, backward: Recurrent, mergeMode: MergeMode) {
        self.name = name
        forwardLayer = forward
        backwardLayer = backward
        self.mergeMode = mergeMode
    }

    public var variables: [(key: String, variable: Variable)] {
        forwardLayer.variables.map { ("\(forwardLayer.name)/\($0.key)", $0.variable) }
            + backwardLayer.variables.map { ("\(backwardLayer.name)/\($0.key)", $0.variable) }
    }

    var returnSequences: Bool { forwardLayer.settings.returnSequences }
    var returnState: Bool { forwardLayer.settings.returnState }
    var units: Int { forwardLayer.units }
    var states: Int { forwardLayer.stateCount }
    public var inputCount: Int { 1 + (initialStateInputs ? 2 * states : 0) + (masked ? 1 : 0) }

    /// Output shapes: the merged output (or both), then each direction's states.
    public func outputShapes(steps: Int) -> [[Int]] {
        let f = forwardLayer.outputShapes(steps: steps)[0], b = backwardLayer.outputShapes(steps: steps)[0]
        let merged = mergeMode == .concat ? Array(f.dropLast()) + [f[f.count - 1] + b[b.count - 1]] : f
        let outs = mergeMode == .none ? [f, b] : [merged]
        return outs + (returnState ? [[Int]](repeating: [units], count: 2 * states) : [])
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: inputCount)
        guard forwardLayer.settings.returnSequences == backwardLayer.settings.returnSequences,
              forwardLayer.settings.returnState == backwardLayer.settings.returnState,
              forwardLayer.units == backwardLayer.units || mergeMode == .concat || mergeMode == .none,
              forwardLayer.stateCount == backwardLayer.stateCount else {
            throw LayerError(name, "the forward and backward layers must agree on return_sequences, return_state and their states")
        }
        let (fi, bi) = split(inputShapes)
        _ = try forwardLayer.build(inputShapes: fi, rng: &rng)
        _ = try backwardLayer.build(inputShapes: bi, rng: &rng)
        return Recurrent.packedShape(outputShapes(steps: inputShapes[0][0]))
    }

    /// The inputs of each direction.
    func split<T>(_ inputs: [T]) -> ([T], [T]) {
        var f = [inputs[0]], b = [inputs[0]]
        if initialStateInputs {
            f += inputs[1...states]
            b += inputs[(1 + states)...(2 * states)]
        }
        if masked, let m = inputs.last { f.append(m); b.append(m) }
        return (f, b)
    }

    /// Each direction's main output and states.
    func parts(_ layer: Recurrent, _ y: Tensor, steps: Int) -> (main: Tensor, states: [Tensor]) {
        guard layer.settings.returnState else { return (y, []) }
        let p = Recurrent.unpack(y, shapes: layer.outputShapes(steps: steps))
        return (p[0], Array(p.dropFirst()))
    }

    struct Cache { let forward: Any?; let backward: Any?; let yf: Tensor; let yb: Tensor }

    func combine(_ yf: Tensor, _ ybRaw: Tensor, states: [Tensor]) throws -> Tensor {
        let yb = returnSequences ? ybRaw.flipped(axes: [1]) : ybRaw
        let outs: [Tensor]
        switch mergeMode {
        case .concat: outs = [try Tensor.concatenate([yf, yb], axis: yf.rank - 1)]
        case .sum: outs = [try yf.elementwise(.add, yb)]
        case .mul: outs = [try yf.elementwise(.multiply, yb)]
        case .ave: outs = [try yf.elementwise(.add, yb).elementwise(.multiply, Tensor(shape: [1], values: [0.5]))]
        case .none: outs = [yf, yb]
        }
        let all = outs + states
        return all.count == 1 ? all[0] : Recurrent.pack(all)
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let (fi, bi) = split(inputs)
        let steps = inputs[0].rank >= 2 ? inputs[0].shape[1] : 0
        let f = parts(forwardLayer, try forwardLayer.forward(fi, training: training), steps: steps)
        let b = parts(backwardLayer, try backwardLayer.forward(bi, training: training), steps: steps)
        return try combine(f.main, b.main, states: f.states + b.states)
    }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        let (fi, bi) = split(inputs)
        let steps = inputs[0].rank >= 2 ? inputs[0].shape[1] : 0
        let (yf, cf) = try forwardLayer.forwardTrain(fi, context: &context)
        let (yb, cb) = try backwardLayer.forwardTrain(bi, context: &context)
        let f = parts(forwardLayer, yf, steps: steps), b = parts(backwardLayer, yb, steps: steps)
        return (try combine(f.main, b.main, states: f.states + b.states),
                Cache(forward: cf, backward: cb, yf: f.main, yb: b.main))
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        guard let c = cache as? Cache else { throw LayerError(name, "backward needs a training-mode forward first") }
        let steps = inputs[0].shape[1]
        let shapes = outputShapes(steps: steps)
        var grads: [Tensor]
        if shapes.count == 1 {
            grads = [gradOutput]
        } else {
            grads = Recurrent.unpack(gradOutput, shapes: shapes)
        }
        let ybTime = returnSequences ? c.yb.flipped(axes: [1]) : c.yb
        var df: Tensor, db: Tensor
        switch mergeMode {
        case .concat:
            let halves = grads[0].split(axis: grads[0].rank - 1, sizes: [c.yf.shape.last ?? 0, c.yb.shape.last ?? 0])
            (df, db) = (halves[0], halves[1])
        case .sum: (df, db) = (grads[0], grads[0])
        case .ave:
            let half = try grads[0].elementwise(.multiply, Tensor(shape: [1], values: [0.5]))
            (df, db) = (half, half)
        case .mul: (df, db) = (try grads[0].elementwise(.multiply, ybTime), try grads[0].elementwise(.multiply, c.yf))
        case .none: (df, db) = (grads[0], grads[1])
        }
        if returnSequences { db = db.flipped(axes: [1]) }
        let stateGrads = Array(grads.dropFirst(mergeMode == .none ? 2 : 1))
        func gradient(_ layer: Recurrent, _ main: Tensor, _ states: ArraySlice<Tensor>) -> Tensor {
            layer.settings.returnState ? Recurrent.pack([main] + states) : main
        }
        let (fi, bi) = split(inputs)
        let (nf, nb) = split(needsInputGradients)
        let gf = try forwardLayer.backward(fi, output: Tensor(shape: [0]), cache: c.forward,
                                           gradOutput: gradient(forwardLayer, df, stateGrads.prefix(states)),
                                           needsInputGradients: nf, preActivation: false)
        let gb = try backwardLayer.backward(bi, output: Tensor(shape: [0]), cache: c.backward,
                                            gradOutput: gradient(backwardLayer, db, stateGrads.dropFirst(states)),
                                            needsInputGradients: nb, preActivation: false)
        var out: [Tensor?] = [try gf[0].map { a in try gb[0].map { try a.elementwise(.add, $0) } ?? a } ?? gb[0]]
        if initialStateInputs { out += gf[1...states] + gb[1...states] }
        if masked { out.append(nil) }
        return out
    }

    public var backwardReadsOutput: Bool { false }
}
