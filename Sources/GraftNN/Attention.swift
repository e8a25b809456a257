import GraftTensor

/// Which inputs an attention layer takes besides the query and the value: set before `build` by whoever wires the
/// graph (a Keras config gives them per call). Inputs come in this order: query, value, key (when `key`), then the
/// masks that are set: the query's, the value's, the key's (`[N, T]`, 1 keeps a step).
public struct AttentionInputs: Equatable, Sendable {
    public var key = false
    public var queryMask = false
    public var valueMask = false
    public var keyMask = false
    /// Each query step attends only to value steps up to its own (`use_causal_mask`).
    public var causal = false
    /// The layer's one output packs the attention scores after the output (`return_attention_scores`).
    public var returnScores = false

    public init() {}

    var count: Int { 2 + (key ? 1 : 0) + (queryMask ? 1 : 0) + (valueMask ? 1 : 0) + (keyMask ? 1 : 0) }
}

/// The scaled dot-product attention of one (sample, head): `P = softmax(s · Q Kᵀ)` with masked positions excluded,
/// `O = P V`, forward and backward, on strided rows (heads interleaved in a row).
enum AttentionKernel {
    struct Operand {
        let base: UnsafePointer<Float>
        let stride: Int
    }

    /// Scores `s · Q Kᵀ` into `scores` (`[tq, tv]`).
    static func scores(q: Operand, k: Operand, tq: Int, tv: Int, d: Int, scale: Float, into scores: UnsafeMutablePointer<Float>) {
        sgemm(transposeB: true, m: tq, n: tv, k: d, alpha: scale, a: q.base, lda: q.stride, b: k.base, ldb: k.stride,
              c: scores, ldc: tv)
    }

    /// Masked positions replaced by −1e9 (Keras), then softmax per row in place.
    static func softmax(_ p: UnsafeMutablePointer<Float>, tq: Int, tv: Int, keep: (Int, Int) -> Bool) {
        for i in 0..<tq { for j in 0..<tv where !keep(i, j) { p[i * tv + j] = -1e9 } }
        softmaxLastAxis(p, rows: tq, n: tv)
    }

    /// `dS = P ⊙ (dP − Σ_j dP ⊙ P)` in place of `dp`, zero where masked.
    static func softmaxBackward(p: UnsafePointer<Float>, dp: UnsafeMutablePointer<Float>, tq: Int, tv: Int, keep: (Int, Int) -> Bool) {
        for i in 0..<tq {
            var dot: Float = 0
            for j in 0..<tv { dot += dp[i * tv + j] * p[i * tv + j] }
            for j in 0..<tv { dp[i * tv + j] = keep(i, j) ? p[i * tv + j] * (dp[i * tv + j] - dot) : 0 }
        }
    }
}

/// Keras `Attention` (dot-product, or `concat` scores) and `AdditiveAttention` (Bahdanau) on `[N, Tq, D]` queries and
/// `[N, Tv, D]` values (keys default to the values). Weights: Attention's `scale` and `concat_score_weight` (scalars,
/// with `use_scale` and `score_mode: concat`), AdditiveAttention's `scale` `[D]` (with `use_scale`). A masked query
/// step outputs zeros; masked value steps get no attention; the output carries the query's mask.
public final class DotAttention: Layer {
    /// How scores are computed: a dot product, Attention's `concat` (tanh sums), AdditiveAttention's.
    public enum Score: Equatable, Sendable { case dot, concat, additive }

    public let name: String
    public let score: Score
    public let useScale: Bool
    public let dropout: Float
    public var inputs = AttentionInputs()
    public var kerasClassName: String { score == .additive ? "AdditiveAttention" : "Attention" }
    public private(set) var scale: Variable?
    public private(set) var concatWeight: Variable?
    private var dim = 0

    public init(name: String, score: Score, useScale: Bool, dropout: Float = 0) {
        self.name = name
        self.score = score
        self.useScale = useScale
        self.dropout = dropout
    }

    public var variables: [(key: String, variable: Variable)] {
        (scale.map { [("scale", $0)] } ?? []) + (concatWeight.map { [("concat_score_weight", $0)] } ?? [])
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: inputs.count)
        let q = inputShapes[0], v = inputShapes[1], k = inputs.key ? inputShapes[2] : v
        guard q.count == 2, v.count == 2, k.count == 2, let d = q.last, d > 0, k.last == d, k[0] == v[0] || k[0] < 0 || v[0] < 0 else {
            throw LayerError(name, "expects queries [batch, Tq, dim] and values and keys [batch, Tv, dim] of the same dim, got \(inputShapes.prefix(3).map { Shape.describe([-1] + $0) })")
        }
        guard dropout >= 0 && dropout < 1 else { throw LayerError(name, "dropout \(dropout) must be at least 0 and below 1") }
        dim = d
        if useScale {
            scale = Variable(score == .additive ? Initializer.glorotUniform([d], rng: &rng) : Tensor(shape: [], values: [1]))
        } else {
            scale = nil
        }
        concatWeight = score == .concat ? Variable(Tensor(shape: [], values: [1])) : nil
        let out = [q[0], v[1]]
        return inputs.returnScores ? Recurrent.packedShape([out, [q[0], k[0]]]) : out
    }

    /// The inputs taken apart.
    struct Operands {
        let q: Tensor, v: Tensor, k: Tensor
        let qMask: [Float]?, vMask: [Float]?
        var n: Int { q.shape[0] }
        var tq: Int { q.shape[1] }
        var tv: Int { v.shape[1] }
    }

    func operands(_ xs: [Tensor]) throws -> Operands {
        guard xs.count == inputs.count else { throw LayerError(name, "expects \(inputs.count) inputs, got \(xs.count)") }
        let q = xs[0], v = xs[1], k = inputs.key ? xs[2] : xs[1]
        guard q.rank == 3, v.rank == 3, k.rank == 3, q.shape[0] == v.shape[0], k.shape[0] == v.shape[0], k.shape[1] == v.shape[1],
              q.shape[2] == dim, k.shape[2] == dim, q.count > 0, v.count > 0 else {
            throw LayerError(name, "inputs \(xs.prefix(3).map { Shape.describe($0.shape) }) do not fit queries, values and keys of dim \(dim)")
        }
        var next = inputs.key ? 3 : 2
        func mask(_ on: Bool, steps: Int) throws -> [Float]? {
            guard on else { return nil }
            let m = xs[next]
            next += 1
            guard m.shape == [q.shape[0], steps] else { throw LayerError(name, "a mask must be \(Shape.describe([q.shape[0], steps])), got \(Shape.describe(m.shape))") }
            return m.scalars
        }
        let qm = try mask(inputs.queryMask, steps: q.shape[1])
        let vm = try mask(inputs.valueMask, steps: v.shape[1])
        return Operands(q: q, v: v, k: k, qMask: qm, vMask: vm)
    }

    func keep(_ o: Operands, sample b: Int) -> (Int, Int) -> Bool {
        let causal = inputs.causal, vm = o.vMask, tv = o.tv
        return { i, j in (!causal || j <= i) && (vm.map { $0[b * tv + j] != 0 } ?? true) }
    }

    struct Cache { let probs: [Float]; let dropped: [Float]?; let raw: [Float] }

    public func forward(_ xs: [Tensor], training: Bool) throws -> Tensor {
        try run(xs, dropoutMask: nil).output
    }

    public func forwardTrain(_ xs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        var mask: [Float]?
        if dropout > 0 {
            let o = try operands(xs)
            let keep = 1 - dropout
            mask = (0..<(o.n * o.tq * o.tv)).map { _ in context.rng.uniform(0, 1) < keep ? 1 / keep : 0 }
        }
        let r = try run(xs, dropoutMask: mask)
        return (r.output, r.cache)
    }

    /// Raw scores `[N, Tq, Tv]` before masking (the product, or the tanh sums).
    func rawScores(_ o: Operands) -> [Float] {
        let (n, tq, tv, d) = (o.n, o.tq, o.tv, dim)
        var s = [Float](repeating: 0, count: n * tq * tv)
        let q = o.q.scalars, k = o.k.scalars
        switch score {
        case .dot:
            s.withUnsafeMutableBufferPointer { out in
                q.withUnsafeBufferPointer { qp in
                    k.withUnsafeBufferPointer { kp in
                        for b in 0..<n {
                            AttentionKernel.scores(q: .init(base: qp.baseAddress! + b * tq * d, stride: d),
                                                   k: .init(base: kp.baseAddress! + b * tv * d, stride: d),
                                                   tq: tq, tv: tv, d: d, scale: 1, into: out.baseAddress! + b * tq * tv)
                        }
                    }
                }
            }
        case .concat, .additive:
            let c: Float = score == .concat ? (scale?.value.scalars.first ?? 1) : 1
            let w: [Float] = score == .additive ? (scale?.value.scalars ?? [Float](repeating: 1, count: d)) : [Float](repeating: 1, count: d)
            for b in 0..<n {
                for i in 0..<tq {
                    for j in 0..<tv {
                        var acc: Float = 0
                        for e in 0..<d { acc += w[e] * FastMath.tanh(c * (q[(b * tq + i) * d + e] + k[(b * tv + j) * d + e])) }
                        s[(b * tq + i) * tv + j] = acc
                    }
                }
            }
        }
        return s
    }

    /// The factor applied to the raw scores: Attention's `scale` (dot) or `concat_score_weight` (concat).
    var scoreFactor: Float {
        switch score {
        case .dot: return scale?.value.scalars.first ?? 1
        case .concat: return concatWeight?.value.scalars.first ?? 1
        case .additive: return 1
        }
    }

    func run(_ xs: [Tensor], dropoutMask: [Float]?) throws -> (output: Tensor, cache: Cache) {
        let o = try operands(xs)
        let (n, tq, tv, dv) = (o.n, o.tq, o.tv, o.v.shape[2])
        let raw = rawScores(o)
        let factor = scoreFactor
        var p = raw.map { $0 * factor }
        p.withUnsafeMutableBufferPointer { pp in
            for b in 0..<n { AttentionKernel.softmax(pp.baseAddress! + b * tq * tv, tq: tq, tv: tv, keep: keep(o, sample: b)) }
        }
        let used = dropoutMask.map { m in zip(p, m).map { $0 * $1 } } ?? p
        var out = [Float](repeating: 0, count: n * tq * dv)
        used.withUnsafeBufferPointer { pp in
            o.v.withUnsafeBufferPointer { vp in
                out.withUnsafeMutableBufferPointer { op in
                    for b in 0..<n {
                        sgemm(m: tq, n: dv, k: tv, a: pp.baseAddress! + b * tq * tv, lda: tv, b: vp.baseAddress! + b * tv * dv, ldb: dv,
                              c: op.baseAddress! + b * tq * dv, ldc: dv)
                    }
                }
            }
        }
        if let qm = o.qMask {
            for b in 0..<n { for i in 0..<tq where qm[b * tq + i] == 0 { for j in 0..<dv { out[(b * tq + i) * dv + j] = 0 } } }
        }
        let y = Tensor(shape: [n, tq, dv], values: out)
        let cache = Cache(probs: p, dropped: dropoutMask, raw: raw)
        guard inputs.returnScores else { return (y, cache) }
        return (Recurrent.pack([y, Tensor(shape: [n, tq, tv], values: p)]), cache)
    }

    public func backward(_ xs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        guard let c = cache as? Cache else { throw LayerError(name, "backward needs a training-mode forward first") }
        let o = try operands(xs)
        let (n, tq, tv, dv, d) = (o.n, o.tq, o.tv, o.v.shape[2], dim)
        var dOut: [Float], dProbsDirect: [Float]?
        if inputs.returnScores {
            let parts = Recurrent.unpack(gradOutput, shapes: [[tq, dv], [tq, tv]])
            dOut = parts[0].scalars
            dProbsDirect = parts[1].scalars
        } else {
            dOut = gradOutput.scalars
        }
        if let qm = o.qMask {
            for b in 0..<n { for i in 0..<tq where qm[b * tq + i] == 0 { for j in 0..<dv { dOut[(b * tq + i) * dv + j] = 0 } } }
        }
        let used = c.dropped.map { m in zip(c.probs, m).map { $0 * $1 } } ?? c.probs
        var dv_ = [Float](repeating: 0, count: n * tv * dv)
        var dp = [Float](repeating: 0, count: n * tq * tv)
        let v = o.v.scalars
        for b in 0..<n {
            used.withUnsafeBufferPointer { pp in
                dOut.withUnsafeBufferPointer { g in
                    dv_.withUnsafeMutableBufferPointer { out in
                        sgemm(transposeA: true, m: tv, n: dv, k: tq, a: pp.baseAddress! + b * tq * tv, lda: tv,
                              b: g.baseAddress! + b * tq * dv, ldb: dv, c: out.baseAddress! + b * tv * dv, ldc: dv)
                    }
                }
            }
            dOut.withUnsafeBufferPointer { g in
                v.withUnsafeBufferPointer { vp in
                    dp.withUnsafeMutableBufferPointer { out in
                        sgemm(transposeB: true, m: tq, n: tv, k: dv, a: g.baseAddress! + b * tq * dv, lda: dv,
                              b: vp.baseAddress! + b * tv * dv, ldb: dv, c: out.baseAddress! + b * tq * tv, ldc: tv)
                    }
                }
            }
        }
        if let m = c.dropped { for i in dp.indices { dp[i] *= m[i] } }
        if let direct = dProbsDirect { for i in dp.indices { dp[i] += direct[i] } }
        // dS: the gradient of the scaled scores.
        dp.withUnsafeMutableBufferPointer { g in
            c.probs.withUnsafeBufferPointer { pp in
                for b in 0..<n {
                    AttentionKernel.softmaxBackward(p: pp.baseAddress! + b * tq * tv, dp: g.baseAddress! + b * tq * tv, tq: tq, tv: tv,
                                                    keep: keep(o, sample: b))
                }
            }
        }
        let factor = scoreFactor
        // The factor's gradient, then the raw scores'.
        let dFactor = zip(dp, c.raw).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        let dRaw = dp.map { $0 * factor }
        var dq = [Float](repeating: 0, count: n * tq * d), dk = [Float](repeating: 0, count: n * tv * d)
        let q = o.q.scalars, k = o.k.scalars
        switch score {
        case .dot:
            withTrainableGradient(scale) { gs in gs?[0] += dFactor }
            for b in 0..<n {
                dRaw.withUnsafeBufferPointer { g in
                    k.withUnsafeBufferPointer { kp in
                        dq.withUnsafeMutableBufferPointer { out in
                            sgemm(m: tq, n: d, k: tv, a: g.baseAddress! + b * tq * tv, lda: tv, b: kp.baseAddress! + b * tv * d, ldb: d,
                                  c: out.baseAddress! + b * tq * d, ldc: d)
                        }
                    }
                    q.withUnsafeBufferPointer { qp in
                        dk.withUnsafeMutableBufferPointer { out in
                            sgemm(transposeA: true, m: tv, n: d, k: tq, a: g.baseAddress! + b * tq * tv, lda: tv, b: qp.baseAddress! + b * tq * d,
                                  ldb: d, c: out.baseAddress! + b * tv * d, ldc: d)
                        }
                    }
                }
            }
        case .concat, .additive:
            if score == .concat { withTrainableGradient(concatWeight) { gw in gw?[0] += dFactor } }
            let cScale: Float = score == .concat ? (scale?.value.scalars.first ?? 1) : 1
            let w: [Float] = score == .additive ? (scale?.value.scalars ?? [Float](repeating: 1, count: d)) : [Float](repeating: 1, count: d)
            var dw = [Float](repeating: 0, count: d)
            var dc: Float = 0
            for b in 0..<n {
                for i in 0..<tq {
                    for j in 0..<tv {
                        let g = dRaw[(b * tq + i) * tv + j]
                        if g == 0 { continue }
                        for e in 0..<d {
                            let sum = q[(b * tq + i) * d + e] + k[(b * tv + j) * d + e]
                            let t = FastMath.tanh(cScale * sum)
                            dw[e] += g * t
                            let inner = g * w[e] * (1 - t * t)
                            dc += inner * sum
                            dq[(b * tq + i) * d + e] += inner * cScale
                            dk[(b * tv + j) * d + e] += inner * cScale
                        }
                    }
                }
            }
            if score == .additive {
                withTrainableGradient(scale) { gs in if let gs { for e in 0..<d { gs[e] += dw[e] } } }
            } else {
                withTrainableGradient(scale) { gs in gs?[0] += dc }
            }
        }
        var grads: [Tensor?] = [needsInputGradients[0] ? Tensor(shape: o.q.shape, values: dq) : nil]
        if inputs.key {
            grads.append(needsInputGradients[1] ? Tensor(shape: o.v.shape, values: dv_) : nil)
            grads.append(needsInputGradients[2] ? Tensor(shape: o.k.shape, values: dk) : nil)
        } else {
            grads.append(needsInputGradients[1] ? Tensor(shape: o.v.shape, values: zip(dv_, dk).map { $0 + $1 }) : nil)
        }
        while grads.count < xs.count { grads.append(nil) }
        return grads
    }

    public var backwardReadsOutput: Bool { false }
}

/// Keras `MultiHeadAttention` over one attention axis (`[N, T, D]` inputs): per head `softmax(Q Kᵀ / √key_dim) V`,
/// projections as Keras's EinsumDense kernels (`query/kernel [Dq, heads, key_dim]`, `…/bias [heads, key_dim]`,
/// `attention_output/kernel [heads, value_dim, Dout]`). Masks of the query, value and key (and `causal`) combine with
/// a logical and; a fully masked row attends uniformly, as in Keras.
public final class MultiHeadAttention: Layer {
    public let name: String
    public let heads: Int
    public let keyDim: Int
    public let valueDim: Int
    public let useBias: Bool
    /// The last dimension of the output (nil: the query's).
    public let outputDim: Int?
    public let dropout: Float
    public var inputs = AttentionInputs()
    public var kerasClassName: String { "MultiHeadAttention" }
    /// Keras 3 computes the attention explicitly when it returns the scores or has dropout, and then multiplies the
    /// probabilities by the mask: a fully masked query attends to nothing (zeros) instead of uniformly.
    public var keras3Softmax = false
    var zeroesMaskedProbabilities: Bool { keras3Softmax && (inputs.returnScores || dropout > 0) }

    /// query, key, value, attention_output (kernel, bias each).
    public private(set) var weights: [(kernel: Variable, bias: Variable?)] = []
    private var dims: (q: Int, k: Int, v: Int, out: Int) = (0, 0, 0, 0)
    /// The query, value and key shapes it was built for (batch excluded).
    public private(set) var builtShapes: (query: [Int], value: [Int], key: [Int]) = ([], [], [])

    public init(name: String, heads: Int, keyDim: Int, valueDim: Int? = nil, useBias: Bool = true, outputDim: Int? = nil,
                dropout: Float = 0) {
        self.name = name
        self.heads = heads
        self.keyDim = keyDim
        self.valueDim = valueDim ?? keyDim
        self.useBias = useBias
        self.outputDim = outputDim
        self.dropout = dropout
    }

    /// The projections, in Keras's weight order.
    public static let parts = ["query", "key", "value", "attention_output"]

    public var variables: [(key: String, variable: Variable)] {
        zip(Self.parts, weights).flatMap { part, w in [("\(part)/kernel", w.kernel)] + (w.bias.map { [("\(part)/bias", $0)] } ?? []) }
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: inputs.count)
        let q = inputShapes[0], v = inputShapes[1], k = inputs.key ? inputShapes[2] : v
        guard q.count == 2, v.count == 2, k.count == 2, let dq = q.last, let dvIn = v.last, let dk = k.last, dq > 0, dvIn > 0, dk > 0 else {
            throw LayerError(name, "expects [batch, steps, features] queries, values and keys, got \(inputShapes.prefix(3).map { Shape.describe([-1] + $0) })")
        }
        guard heads > 0, keyDim > 0, valueDim > 0, heads <= 4096, keyDim <= 1 << 16, valueDim <= 1 << 16, (outputDim ?? 1) > 0 else {
            throw LayerError(name, "num_heads \(heads), key_dim \(keyDim) and value_dim \(valueDim) must be positive (at most 4096 heads, 65536 per head)")
        }
        guard dropout >= 0 && dropout < 1 else { throw LayerError(name, "dropout \(dropout) must be at least 0 and below 1") }
        let out = outputDim ?? dq
        dims = (dq, dk, dvIn, out)
        builtShapes = (q, v, k)
        let shapes: [([Int], [Int])] = [([dq, heads, keyDim], [heads, keyDim]), ([dk, heads, keyDim], [heads, keyDim]),
                                        ([dvIn, heads, valueDim], [heads, valueDim]), ([heads, valueDim, out], [out])]
        try requireAllocatable(shapes.flatMap { useBias ? [$0.0, $0.1] : [$0.0] })
        weights = shapes.map { kernel, bias in
            (Variable(Initializer.glorotUniform(kernel.count == 3 && kernel[0] == heads ? [heads * valueDim, out] : [kernel[0], kernel[1] * kernel[2]], rng: &rng).reshaped(kernel)),
             useBias ? Variable(Tensor(shape: bias)) : nil)
        }
        let y = [q[0], out]
        return inputs.returnScores ? Recurrent.packedShape([y, [heads, q[0], v[0]]]) : y
    }

    /// `x [rows, in] · kernel [in, outCols] + bias`.
    static func project(_ x: UnsafePointer<Float>, rows: Int, inDim: Int, _ w: (kernel: Variable, bias: Variable?), outCols: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outCols)
        w.kernel.value.withUnsafeBufferPointer { k in
            y.withUnsafeMutableBufferPointer { o in
                sgemm(m: rows, n: outCols, k: inDim, a: x, lda: inDim, b: k.baseAddress!, ldb: outCols, c: o.baseAddress!, ldc: outCols)
            }
        }
        if let b = w.bias?.value.scalars { for r in 0..<rows { for j in 0..<outCols { y[r * outCols + j] += b[j] } } }
        return y
    }

    struct Cache {
        let q: [Float], k: [Float], v: [Float]   // projections, [N, T, heads·dim]; q already scaled
        let probs: [Float]                        // [N, heads, Tq, Tv]
        let dropped: [Float]?
        let context: [Float]                      // [N, Tq, heads·valueDim]
    }

    func masks(_ xs: [Tensor], n: Int, tq: Int, tv: Int) throws -> (q: [Float]?, v: [Float]?, k: [Float]?) {
        var next = inputs.key ? 3 : 2
        func take(_ on: Bool, _ steps: Int) throws -> [Float]? {
            guard on else { return nil }
            let m = xs[next]
            next += 1
            guard m.shape == [n, steps] else { throw LayerError(name, "a mask must be \(Shape.describe([n, steps])), got \(Shape.describe(m.shape))") }
            return m.scalars
        }
        return (try take(inputs.queryMask, tq), try take(inputs.valueMask, tv), try take(inputs.keyMask, tv))
    }

    func keep(_ m: (q: [Float]?, v: [Float]?, k: [Float]?), sample b: Int, tq: Int, tv: Int) -> (Int, Int) -> Bool {
        let causal = inputs.causal
        return { i, j in
            (!causal || j <= i) && (m.q.map { $0[b * tq + i] != 0 } ?? true) && (m.v.map { $0[b * tv + j] != 0 } ?? true)
                && (m.k.map { $0[b * tv + j] != 0 } ?? true)
        }
    }

    func checked(_ xs: [Tensor]) throws -> (q: Tensor, v: Tensor, k: Tensor) {
        guard xs.count == inputs.count else { throw LayerError(name, "expects \(inputs.count) inputs, got \(xs.count)") }
        let q = xs[0], v = xs[1], k = inputs.key ? xs[2] : xs[1]
        guard q.rank == 3, v.rank == 3, k.rank == 3, q.shape[2] == dims.q, v.shape[2] == dims.v, k.shape[2] == dims.k,
              q.shape[0] == v.shape[0], k.shape[0] == v.shape[0], k.shape[1] == v.shape[1], q.count > 0, v.count > 0 else {
            throw LayerError(name, "inputs \(xs.prefix(3).map { Shape.describe($0.shape) }) do not fit queries of \(dims.q), values of \(dims.v) and keys of \(dims.k) features")
        }
        return (q, v, k)
    }

    public func forward(_ xs: [Tensor], training: Bool) throws -> Tensor {
        try run(xs, dropoutMask: nil).output
    }

    public func forwardTrain(_ xs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        var mask: [Float]?
        if dropout > 0 {
            let (q, v, _) = try checked(xs)
            let keep = 1 - dropout
            mask = (0..<(q.shape[0] * heads * q.shape[1] * v.shape[1])).map { _ in context.rng.uniform(0, 1) < keep ? 1 / keep : 0 }
        }
        let r = try run(xs, dropoutMask: mask)
        return (r.output, r.cache)
    }

    func run(_ xs: [Tensor], dropoutMask: [Float]?) throws -> (output: Tensor, cache: Cache) {
        let (qIn, vIn, kIn) = try checked(xs)
        let n = qIn.shape[0], tq = qIn.shape[1], tv = vIn.shape[1], h = heads, kd = keyDim, vd = valueDim
        let m = try masks(xs, n: n, tq: tq, tv: tv)
        var q = qIn.withUnsafeBufferPointer { Self.project($0.baseAddress!, rows: n * tq, inDim: dims.q, weights[0], outCols: h * kd) }
        let k = kIn.withUnsafeBufferPointer { Self.project($0.baseAddress!, rows: n * tv, inDim: dims.k, weights[1], outCols: h * kd) }
        let v = vIn.withUnsafeBufferPointer { Self.project($0.baseAddress!, rows: n * tv, inDim: dims.v, weights[2], outCols: h * vd) }
        let s = 1 / Float(kd).squareRoot()
        for i in q.indices { q[i] *= s }
        var probs = [Float](repeating: 0, count: n * h * tq * tv)
        var context = [Float](repeating: 0, count: n * tq * h * vd)
        q.withUnsafeBufferPointer { qp in
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    probs.withUnsafeMutableBufferPointer { pp in
                        context.withUnsafeMutableBufferPointer { cp in
                            for b in 0..<n {
                                let keepFn = keep(m, sample: b, tq: tq, tv: tv)
                                for head in 0..<h {
                                    let p = pp.baseAddress! + ((b * h + head) * tq * tv)
                                    AttentionKernel.scores(q: .init(base: qp.baseAddress! + b * tq * h * kd + head * kd, stride: h * kd),
                                                           k: .init(base: kp.baseAddress! + b * tv * h * kd + head * kd, stride: h * kd),
                                                           tq: tq, tv: tv, d: kd, scale: 1, into: p)
                                    AttentionKernel.softmax(p, tq: tq, tv: tv, keep: keepFn)
                                    if zeroesMaskedProbabilities {
                                        for i in 0..<tq { for j in 0..<tv where !keepFn(i, j) { p[i * tv + j] = 0 } }
                                    }
                                    var used = p
                                    var dropped: [Float] = []
                                    if let dm = dropoutMask {
                                        dropped = (0..<(tq * tv)).map { p[$0] * dm[(b * h + head) * tq * tv + $0] }
                                    }
                                    dropped.withUnsafeMutableBufferPointer { dbuf in
                                        if dropoutMask != nil { used = dbuf.baseAddress! }
                                        sgemm(m: tq, n: vd, k: tv, a: used, lda: tv, b: vp.baseAddress! + b * tv * h * vd + head * vd, ldb: h * vd,
                                              c: cp.baseAddress! + b * tq * h * vd + head * vd, ldc: h * vd)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let y = context.withUnsafeBufferPointer { Self.project($0.baseAddress!, rows: n * tq, inDim: h * vd, weights[3], outCols: dims.out) }
        let out = Tensor(shape: [n, tq, dims.out], values: y)
        let cache = Cache(q: q, k: k, v: v, probs: probs, dropped: dropoutMask, context: context)
        guard inputs.returnScores else { return (out, cache) }
        return (Recurrent.pack([out, Tensor(shape: [n, h, tq, tv], values: probs)]), cache)
    }

    /// Gradients of a projection `y = x W + b` given `dy`: adds into W's and b's gradients, returns dx.
    static func projectBackward(_ x: UnsafePointer<Float>, rows: Int, inDim: Int, _ w: (kernel: Variable, bias: Variable?), outCols: Int,
                                dy: [Float], needInput: Bool) -> [Float]? {
        dy.withUnsafeBufferPointer { g in
            withTrainableGradient(w.kernel) { gk in
                if let gk {
                    sgemm(transposeA: true, m: inDim, n: outCols, k: rows, a: x, lda: inDim, b: g.baseAddress!, ldb: outCols, beta: 1, c: gk, ldc: outCols)
                }
            }
            withTrainableGradient(w.bias) { gb in
                if let gb { for r in 0..<rows { for j in 0..<outCols { gb[j] += g[r * outCols + j] } } }
            }
        }
        guard needInput else { return nil }
        var dx = [Float](repeating: 0, count: rows * inDim)
        dy.withUnsafeBufferPointer { g in
            w.kernel.value.withUnsafeBufferPointer { k in
                dx.withUnsafeMutableBufferPointer { o in
                    sgemm(transposeB: true, m: rows, n: inDim, k: outCols, a: g.baseAddress!, lda: outCols, b: k.baseAddress!, ldb: outCols,
                          c: o.baseAddress!, ldc: inDim)
                }
            }
        }
        return dx
    }

    public func backward(_ xs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        guard let c = cache as? Cache else { throw LayerError(name, "backward needs a training-mode forward first") }
        let (qIn, vIn, kIn) = try checked(xs)
        let n = qIn.shape[0], tq = qIn.shape[1], tv = vIn.shape[1], h = heads, kd = keyDim, vd = valueDim
        let m = try masks(xs, n: n, tq: tq, tv: tv)
        var dY: [Float], dProbsDirect: [Float]?
        if inputs.returnScores {
            let parts = Recurrent.unpack(gradOutput, shapes: [[tq, dims.out], [h, tq, tv]])
            dY = parts[0].scalars
            dProbsDirect = parts[1].scalars
        } else {
            dY = gradOutput.scalars
        }
        let dContext = c.context.withUnsafeBufferPointer {
            Self.projectBackward($0.baseAddress!, rows: n * tq, inDim: h * vd, weights[3], outCols: dims.out, dy: dY, needInput: true)
        } ?? []
        var dq = [Float](repeating: 0, count: c.q.count), dk = [Float](repeating: 0, count: c.k.count), dv = [Float](repeating: 0, count: c.v.count)
        var dp = [Float](repeating: 0, count: tq * tv)
        let s = 1 / Float(kd).squareRoot()
        for b in 0..<n {
            let keepFn = keep(m, sample: b, tq: tq, tv: tv)
            for head in 0..<h {
                let pOff = (b * h + head) * tq * tv
                let used: [Float] = c.dropped.map { dm in (0..<(tq * tv)).map { c.probs[pOff + $0] * dm[pOff + $0] } } ?? Array(c.probs[pOff..<(pOff + tq * tv)])
                let cOff = b * tq * h * vd + head * vd, vOff = b * tv * h * vd + head * vd
                let qOff = b * tq * h * kd + head * kd, kOff = b * tv * h * kd + head * kd
                // dV += Pᵀ dC; dP = dC Vᵀ.
                used.withUnsafeBufferPointer { pp in
                    dContext.withUnsafeBufferPointer { g in
                        dv.withUnsafeMutableBufferPointer { o in
                            sgemm(transposeA: true, m: tv, n: vd, k: tq, a: pp.baseAddress!, lda: tv, b: g.baseAddress! + cOff, ldb: h * vd,
                                  beta: 1, c: o.baseAddress! + vOff, ldc: h * vd)
                        }
                    }
                }
                dContext.withUnsafeBufferPointer { g in
                    c.v.withUnsafeBufferPointer { vp in
                        dp.withUnsafeMutableBufferPointer { o in
                            sgemm(transposeB: true, m: tq, n: tv, k: vd, a: g.baseAddress! + cOff, lda: h * vd, b: vp.baseAddress! + vOff, ldb: h * vd,
                                  c: o.baseAddress!, ldc: tv)
                        }
                    }
                }
                if let dm = c.dropped { for i in 0..<(tq * tv) { dp[i] *= dm[pOff + i] } }
                if let direct = dProbsDirect { for i in 0..<(tq * tv) { dp[i] += direct[pOff + i] } }
                dp.withUnsafeMutableBufferPointer { g in
                    c.probs.withUnsafeBufferPointer { pp in
                        AttentionKernel.softmaxBackward(p: pp.baseAddress! + pOff, dp: g.baseAddress!, tq: tq, tv: tv, keep: keepFn)
                    }
                }
                // dQ (scaled) = dS K; dK = dSᵀ Q (scaled).
                dp.withUnsafeBufferPointer { g in
                    c.k.withUnsafeBufferPointer { kp in
                        dq.withUnsafeMutableBufferPointer { o in
                            sgemm(m: tq, n: kd, k: tv, a: g.baseAddress!, lda: tv, b: kp.baseAddress! + kOff, ldb: h * kd,
                                  c: o.baseAddress! + qOff, ldc: h * kd)
                        }
                    }
                    c.q.withUnsafeBufferPointer { qp in
                        dk.withUnsafeMutableBufferPointer { o in
                            sgemm(transposeA: true, m: tv, n: kd, k: tq, a: g.baseAddress!, lda: tv, b: qp.baseAddress! + qOff, ldb: h * kd,
                                  beta: 1, c: o.baseAddress! + kOff, ldc: h * kd)
                        }
                    }
                }
            }
        }
        for i in dq.indices { dq[i] *= s }
        let needKey = inputs.key ? needsInputGradients[2] : needsInputGradients[1]
        let dxq = qIn.withUnsafeBufferPointer { Self.projectBackward($0.baseAddress!, rows: n * tq, inDim: dims.q, weights[0], outCols: h * kd, dy: dq, needInput: needsInputGradients[0]) }
        let dxk = kIn.withUnsafeBufferPointer { Self.projectBackward($0.baseAddress!, rows: n * tv, inDim: dims.k, weights[1], outCols: h * kd, dy: dk, needInput: needKey) }
        let dxv = vIn.withUnsafeBufferPointer { Self.projectBackward($0.baseAddress!, rows: n * tv, inDim: dims.v, weights[2], outCols: h * vd, dy: dv, needInput: needsInputGradients[1]) }
        var grads: [Tensor?] = [dxq.map { Tensor(shape: qIn.shape, values: $0) }]
        if inputs.key {
            grads.append(dxv.map { Tensor(shape: vIn.shape, values: $0) })
            grads.append(dxk.map { Tensor(shape: kIn.shape, values: $0) })
        } else {
            let sum: [Float]? = dxv.map { a in dxk.map { b in zip(a, b).map { $0 + $1 } } ?? a } ?? dxk
            grads.append(sum.map { Tensor(shape: vIn.shape, values: $0) })
        }
        while grads.count < xs.count { grads.append(nil) }
        return grads
    }

    public var backwardReadsOutput: Bool { false }
}
