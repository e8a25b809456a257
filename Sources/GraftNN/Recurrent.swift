import GraftTensor

/// Keras's recurrent layers `SimpleRNN`, `LSTM` and `GRU` (with `reset_after` true or false) on `[N, T, F]`
/// sequences, forward and backward through time.
///
/// The input projections of all time steps are one GEMM (`[N·T, F] · kernel`); each step then costs one
/// `[N, units] · recurrent_kernel` GEMM and the gate arithmetic. Weights are Keras's: `kernel [F, g·units]`,
/// `recurrent_kernel [units, g·units]` and `bias [g·units]` (GRU with `reset_after`: `[2, 3·units]`, input and
/// recurrent biases), gates in Keras's order (LSTM i, f, c, o; GRU z, r, h).
///
/// Inputs: the sequence, then the initial states when `initialStateInputs` is set (LSTM: h and c), then the
/// `[N, T]` mask when `masked` is set (1 keeps a step; a masked step carries the states over and, with
/// `zeroOutputForMask`, outputs zeros, else the carried output, as Keras does). With `returnState` the layer's one
/// output packs the output and the final states per sample (`packedSizes`); `OutputPart` nodes take them apart.
public final class Recurrent: Layer {
    /// The cell run at every step.
    public enum Cell: Equatable, Sendable {
        case simple, lstm
        case gru(resetAfter: Bool)
    }

    /// The settings a Keras config gives.
    public struct Settings: Equatable, Sendable {
        public var units: Int
        public var activation: ActivationKind = .tanh
        public var recurrentActivation: ActivationKind = .sigmoid
        public var useBias = true
        public var returnSequences = false
        public var returnState = false
        public var goBackwards = false
        public var zeroOutputForMask = false
        /// Dropout of the inputs and of the recurrent state while training (one mask per sequence, as Keras).
        public var dropout: Float = 0
        public var recurrentDropout: Float = 0
        /// Kept to write back: Graft's loop does not depend on it.
        public var unroll = false
        public var unitForgetBias = true

        public init(units: Int) { self.units = units }
    }

    public let name: String
    public let cell: Cell
    public var settings: Settings
    /// Set before `build` by whoever wires the graph: the layer takes its initial states as inputs.
    public var initialStateInputs = false
    /// Set before `build`: the last input is a `[N, T]` mask.
    public var masked = false

    public private(set) var kernel = Variable(Tensor(shape: [0]))
    public private(set) var recurrentKernel = Variable(Tensor(shape: [0]))
    public private(set) var bias: Variable?
    private var features = 0

    public init(name: String, cell: Cell, settings: Settings) {
        self.name = name
        self.cell = cell
        self.settings = settings
    }

    public var kerasClassName: String {
        switch cell {
        case .simple: return "SimpleRNN"
        case .lstm: return "LSTM"
        case .gru: return "GRU"
        }
    }

    public var units: Int { settings.units }
    /// Gates per unit: 1, 4 or 3.
    var gates: Int {
        switch cell {
        case .simple: return 1
        case .lstm: return 4
        case .gru: return 3
        }
    }
    /// States carried from step to step: h (and c for an LSTM).
    public var stateCount: Int { cell == .lstm ? 2 : 1 }
    var resetAfter: Bool { cell == .gru(resetAfter: true) }

    public var variables: [(key: String, variable: Variable)] {
        [("kernel", kernel), ("recurrent_kernel", recurrentKernel)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// How many inputs the layer takes.
    public var inputCount: Int { 1 + (initialStateInputs ? stateCount : 0) + (masked ? 1 : 0) }

    /// The shapes of the layer's outputs (the sequence or last output, then the states), batch excluded.
    public func outputShapes(steps: Int) -> [[Int]] {
        let main = settings.returnSequences ? [steps, units] : [units]
        return [main] + (settings.returnState ? [[Int]](repeating: [units], count: stateCount) : [])
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: inputCount)
        let s = inputShapes[0]
        try requireRank(s, 2)
        guard let f = s.last, f > 0 else {
            throw LayerError(name, "needs a known feature dimension, got \(Shape.describe([-1] + s))")
        }
        guard units > 0, units <= 1 << 20 else { throw LayerError(name, "units \(units) must be from 1 to 1048576") }
        for (k, rate) in [("dropout", settings.dropout), ("recurrent_dropout", settings.recurrentDropout)] where !(rate >= 0 && rate < 1) {
            throw LayerError(name, "\(k) \(rate) must be at least 0 and below 1")
        }
        if initialStateInputs {
            for shape in inputShapes[1...stateCount] where shape != [units] {
                throw LayerError(name, "an initial state must be \(Shape.describe([-1, units])), got \(Shape.describe([-1] + shape))")
            }
        }
        if masked, inputShapes[inputCount - 1].count != 1 {
            throw LayerError(name, "a mask must be [batch, steps], got \(Shape.describe([-1] + inputShapes[inputCount - 1]))")
        }
        features = f
        let g = gates * units
        let biasShape = resetAfter ? [2, g] : [g]
        try requireAllocatable([[f, g], [units, g]] + (settings.useBias ? [biasShape] : []))
        kernel = Variable(Initializer.glorotUniform([f, g], rng: &rng))
        recurrentKernel = Variable(Initializer.orthogonalColumns([units, g], blocks: gates, rng: &rng))
        if settings.useBias {
            var b = Tensor(shape: biasShape)
            if cell == .lstm && settings.unitForgetBias {
                b.withUnsafeMutableBufferPointer { for j in units..<(2 * units) { $0[j] = 1 } }
            }
            bias = Variable(b)
        } else {
            bias = nil
        }
        return Self.packedShape(outputShapes(steps: s[0]))
    }

    /// The one shape of several outputs packed per sample (unknown when one of them is).
    static func packedShape(_ shapes: [[Int]]) -> [Int] {
        if shapes.count == 1 { return shapes[0] }
        return [shapes.contains { $0.contains { $0 < 0 } } ? -1 : shapes.map { $0.reduce(1, *) }.reduce(0, +)]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try run(inputs, keep: false, dropout: nil).output
    }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        let x = inputs[0]
        var masks: DropoutMasks?
        if settings.dropout > 0 || settings.recurrentDropout > 0, x.rank == 3 {
            let n = x.shape[0]
            masks = DropoutMasks(input: Self.dropoutMask(rate: settings.dropout, count: n * features, rng: &context.rng),
                                 recurrent: Self.dropoutMask(rate: settings.recurrentDropout, count: n * units, rng: &context.rng))
        }
        let r = try run(inputs, keep: true, dropout: masks)
        return (r.output, r.cache)
    }

    /// One mask per sequence (the same at every step), scaled by 1/(1 − rate); nil when the rate is 0.
    static func dropoutMask(rate: Float, count: Int, rng: inout SplitMix64) -> [Float]? {
        guard rate > 0 else { return nil }
        let keep = 1 - rate
        return (0..<count).map { _ in rng.uniform(0, 1) < keep ? 1 / keep : 0 }
    }

    struct DropoutMasks {
        let input: [Float]?
        let recurrent: [Float]?
    }

    /// What the backward pass reads, every array `[N, T, …]` indexed by time (not by processing order).
    final class Cache {
        let n: Int, steps: Int
        /// The input after dropout (the GEMMs' left side).
        let x: Tensor
        /// Pre-activations and activations of the gates, `[N, T, g·units]`.
        var pre: [Float], act: [Float]
        /// The state h before each step (unmasked rows), and the recurrent GEMM's left side (h after recurrent dropout).
        var hPrev: [Float], hIn: [Float]?
        /// LSTM: the cell state before and after each step; GRU (reset_after): the recurrent projection of the
        /// candidate; GRU (not reset_after): r ⊙ h̃.
        var cPrev: [Float] = [], cNew: [Float] = [], extra: [Float] = []
        let mask: [Float]?
        let dropout: DropoutMasks?

        init(n: Int, steps: Int, x: Tensor, g: Int, units: Int, mask: [Float]?, dropout: DropoutMasks?) {
            self.n = n
            self.steps = steps
            self.x = x
            pre = [Float](repeating: 0, count: n * steps * g)
            act = pre
            hPrev = [Float](repeating: 0, count: n * steps * units)
            hIn = dropout?.recurrent == nil ? nil : hPrev
            self.mask = mask
            self.dropout = dropout
        }
    }

    func checkedInputs(_ inputs: [Tensor]) throws -> (x: Tensor, states: [Tensor], mask: [Float]?) {
        guard inputs.count == inputCount else { throw LayerError(name, "expects \(inputCount) inputs, got \(inputs.count)") }
        let x = inputs[0]
        guard x.rank == 3, x.shape[2] == features, x.shape[1] > 0, x.shape[0] > 0 else {
            throw LayerError(name, "expects a [batch, steps, \(features)] sequence with at least one sample and one step, got \(Shape.describe(x.shape))")
        }
        let n = x.shape[0], t = x.shape[1]
        let states = initialStateInputs ? Array(inputs[1...stateCount]) : []
        for s in states where s.shape != [n, units] {
            throw LayerError(name, "an initial state must be \(Shape.describe([n, units])), got \(Shape.describe(s.shape))")
        }
        var mask: [Float]?
        if masked {
            let m = inputs[inputCount - 1]
            guard m.shape == [n, t] else { throw LayerError(name, "a mask must be \(Shape.describe([n, t])), got \(Shape.describe(m.shape))") }
            mask = m.scalars
        }
        return (x, states, mask)
    }

    /// Runs the sequence; `keep` fills a cache for `backward`. Each step works on all samples at once: one
    /// `[N, units] · recurrent_kernel` GEMM, then the gate arithmetic on contiguous rows.
    func run(_ inputs: [Tensor], keep: Bool, dropout: DropoutMasks?) throws -> (output: Tensor, cache: Cache?) {
        let (x0, states, mask) = try checkedInputs(inputs)
        let n = x0.shape[0], steps = x0.shape[1], u = units, g = gates * u
        if !keep, dropout == nil, mask == nil, let fast = oneDNNInference(x0, states: states) { return (fast, nil) }
        var x = x0
        if let dm = dropout?.input {
            x.withUnsafeMutableBufferPointer { p in
                for b in 0..<n { for t in 0..<steps { for j in 0..<features { p[(b * steps + t) * features + j] *= dm[b * features + j] } } }
            }
        }
        // Input projections of every step at once, input bias included.
        var xw = [Float](repeating: 0, count: n * steps * g)
        x.withUnsafeBufferPointer { xp in
            kernel.value.withUnsafeBufferPointer { k in
                xw.withUnsafeMutableBufferPointer { o in
                    sgemm(m: n * steps, n: g, k: features, a: xp.baseAddress!, lda: features, b: k.baseAddress!, ldb: g,
                          c: o.baseAddress!, ldc: g)
                }
            }
        }
        let biasValues = bias?.value.scalars
        if let b = biasValues {
            xw.withUnsafeMutableBufferPointer { p in
                for r in 0..<(n * steps) { for j in 0..<g { p[r * g + j] += b[j] } }
            }
        }
        let recurrentBias: [Float] = resetAfter ? biasValues.map { Array($0[g..<(2 * g)]) } ?? [] : []
        var h = states.first?.scalars ?? [Float](repeating: 0, count: n * u)
        var c = cell == .lstm ? (states.count > 1 ? states[1].scalars : [Float](repeating: 0, count: n * u)) : []
        let cache = keep ? Cache(n: n, steps: steps, x: x, g: g, units: u, mask: mask, dropout: dropout) : nil
        if let cache, cell == .lstm {
            cache.cPrev = [Float](repeating: 0, count: n * steps * u)
            cache.cNew = cache.cPrev
        }
        if let cache, case .gru = cell { cache.extra = [Float](repeating: 0, count: n * steps * u) }
        let outSteps = settings.returnSequences ? steps : 1
        var out = [Float](repeating: 0, count: n * outSteps * u)
        var z = [Float](repeating: 0, count: n * g)       // the step's gate pre-activations, then activations
        var hr = [Float](repeating: 0, count: n * g)      // the recurrent projection
        var hIn = [Float](repeating: 0, count: n * u)
        var rh = [Float](repeating: 0, count: n * u)
        var ah = [Float](repeating: 0, count: n * u)
        var cn = [Float](repeating: 0, count: n * u), ac = cn
        var keepRow = [Bool](repeating: true, count: n)
        let rdm = dropout?.recurrent
        let act = settings.activation, ract = settings.recurrentActivation
        let zeroMasked = settings.zeroOutputForMask, sequences = settings.returnSequences
        let rk = recurrentKernel.value
        let direct = cell == .gru(resetAfter: false) ? 2 * u : g
        // A cache's per-step arrays, written where `keep`.
        func store(_ dst: inout [Float], _ src: UnsafePointer<Float>, width: Int, t: Int) {
            dst.withUnsafeMutableBufferPointer { d in
                for b in 0..<n { (d.baseAddress! + (b * steps + t) * width).update(from: src + b * width, count: width) }
            }
        }
        for s in 0..<steps {
            let t = settings.goBackwards ? steps - 1 - s : s
            for b in 0..<n { keepRow[b] = mask.map { $0[b * steps + t] != 0 } ?? true }
            if let rdm { for i in 0..<(n * u) { hIn[i] = h[i] * rdm[i] } } else { hIn = h }
            if let cache {
                h.withUnsafeBufferPointer { store(&cache.hPrev, $0.baseAddress!, width: u, t: t) }
                if cache.hIn != nil { hIn.withUnsafeBufferPointer { store(&cache.hIn!, $0.baseAddress!, width: u, t: t) } }
                if cell == .lstm { c.withUnsafeBufferPointer { store(&cache.cPrev, $0.baseAddress!, width: u, t: t) } }
            }
            if case .gru = cell {} else {
                // z = x·W (+ bias) + h̃·U: the step's input projections, then the GEMM adds into them.
                xw.withUnsafeBufferPointer { xwp in
                    z.withUnsafeMutableBufferPointer { zp in
                        for b in 0..<n { (zp.baseAddress! + b * g).update(from: xwp.baseAddress! + (b * steps + t) * g, count: g) }
                        rk.withUnsafeBufferPointer { k in
                            hIn.withUnsafeBufferPointer { hp in
                                sgemm(m: n, n: g, k: u, a: hp.baseAddress!, lda: u, b: k.baseAddress!, ldb: g, beta: 1, c: zp.baseAddress!, ldc: g)
                            }
                        }
                    }
                }
            }
            // A GRU's recurrent projection apart (its candidate needs it): all gates, or without reset_after z and r first.
            if case .gru = cell {
                rk.withUnsafeBufferPointer { k in
                    hIn.withUnsafeBufferPointer { hp in
                        hr.withUnsafeMutableBufferPointer { o in
                            sgemm(m: n, n: direct, k: u, a: hp.baseAddress!, lda: u, b: k.baseAddress!, ldb: g, c: o.baseAddress!, ldc: g)
                        }
                    }
                }
            }
            if case .gru = cell { xw.withUnsafeBufferPointer { xwp in
                z.withUnsafeMutableBufferPointer { zp in
                    hr.withUnsafeMutableBufferPointer { hp in
                        let zb = zp.baseAddress!, hb = hp.baseAddress!
                        if !recurrentBias.isEmpty { for b in 0..<n { for j in 0..<g { hb[b * g + j] += recurrentBias[j] } } }
                        for b in 0..<n {
                            let xrow = xwp.baseAddress! + (b * steps + t) * g
                            for j in 0..<direct { zb[b * g + j] = xrow[j] + hb[b * g + j] }
                        }
                    }
                }
            } }
            switch cell {
            case .simple, .lstm:
                if let cache { z.withUnsafeBufferPointer { store(&cache.pre, $0.baseAddress!, width: g, t: t) } }
                z.withUnsafeMutableBufferPointer { zp in
                    let zb = zp.baseAddress!
                    for b in 0..<n {
                        let row = zb + b * g
                        if cell == .simple {
                            act.applySerial(row, count: u)
                        } else {
                            ract.applySerial(row, count: 2 * u)
                            act.applySerial(row + 2 * u, count: u)
                            ract.applySerial(row + 3 * u, count: u)
                        }
                    }
                }
                if let cache { z.withUnsafeBufferPointer { store(&cache.act, $0.baseAddress!, width: g, t: t) } }
                if cell == .lstm {
                    z.withUnsafeBufferPointer { zp in
                        c.withUnsafeBufferPointer { cp in
                            cn.withUnsafeMutableBufferPointer { np in
                                let zb = zp.baseAddress!, cb = cp.baseAddress!, nb = np.baseAddress!
                                for b in 0..<n {
                                    let row = zb + b * g, cr = cb + b * u, nr = nb + b * u
                                    for j in 0..<u { nr[j] = row[u + j] * cr[j] + row[j] * row[2 * u + j] }
                                }
                            }
                        }
                    }
                    if let cache { cn.withUnsafeBufferPointer { store(&cache.cNew, $0.baseAddress!, width: u, t: t) } }
                    ac.withUnsafeMutableBufferPointer { ap in
                        cn.withUnsafeBufferPointer { ap.baseAddress!.update(from: $0.baseAddress!, count: n * u) }
                        act.applySerial(ap.baseAddress!, count: n * u)
                    }
                    z.withUnsafeBufferPointer { zp in
                        ac.withUnsafeBufferPointer { ap in
                            cn.withUnsafeBufferPointer { np in
                                c.withUnsafeMutableBufferPointer { cp in
                                    h.withUnsafeMutableBufferPointer { hp in
                                        for b in 0..<n where keepRow[b] {
                                            let o = zp.baseAddress! + b * g + 3 * u
                                            for j in 0..<u {
                                                cp[b * u + j] = np[b * u + j]
                                                hp[b * u + j] = o[j] * ap[b * u + j]
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } else {
                    for b in 0..<n where keepRow[b] { for j in 0..<u { h[b * u + j] = z[b * g + j] } }
                }
            case .gru(let after):
                z.withUnsafeMutableBufferPointer { zp in
                    for b in 0..<n { ract.applySerial(zp.baseAddress! + b * g, count: 2 * u) }
                }
                if after {
                    for b in 0..<n {
                        let xrow = (b * steps + t) * g
                        for j in 0..<u {
                            ah[b * u + j] = xw[xrow + 2 * u + j] + z[b * g + u + j] * hr[b * g + 2 * u + j]
                        }
                    }
                    if let cache {
                        var part = [Float](repeating: 0, count: n * u)
                        for b in 0..<n { for j in 0..<u { part[b * u + j] = hr[b * g + 2 * u + j] } }
                        part.withUnsafeBufferPointer { store(&cache.extra, $0.baseAddress!, width: u, t: t) }
                    }
                } else {
                    // a_h = x_h + (r ⊙ h̃) · U_h, for every row at once.
                    for b in 0..<n { for j in 0..<u { rh[b * u + j] = z[b * g + u + j] * hIn[b * u + j] } }
                    rk.withUnsafeBufferPointer { k in
                        rh.withUnsafeBufferPointer { a in
                            ah.withUnsafeMutableBufferPointer { o in
                                sgemm(m: n, n: u, k: u, a: a.baseAddress!, lda: u, b: k.baseAddress! + 2 * u, ldb: g, c: o.baseAddress!, ldc: u)
                            }
                        }
                    }
                    for b in 0..<n { for j in 0..<u { ah[b * u + j] += xw[(b * steps + t) * g + 2 * u + j] } }
                    if let cache { rh.withUnsafeBufferPointer { store(&cache.extra, $0.baseAddress!, width: u, t: t) } }
                }
                // z's and r's pre-activations (x + h·U), then the candidate's; the activations after.
                if let cache {
                    var pre = [Float](repeating: 0, count: n * g)
                    for b in 0..<n {
                        let xrow = (b * steps + t) * g
                        for j in 0..<(2 * u) { pre[b * g + j] = xw[xrow + j] + hr[b * g + j] }
                        for j in 0..<u { pre[b * g + 2 * u + j] = ah[b * u + j] }
                    }
                    pre.withUnsafeBufferPointer { store(&cache.pre, $0.baseAddress!, width: g, t: t) }
                }
                ah.withUnsafeMutableBufferPointer { act.applySerial($0.baseAddress!, count: n * u) }
                for b in 0..<n { for j in 0..<u { z[b * g + 2 * u + j] = ah[b * u + j] } }
                if let cache { z.withUnsafeBufferPointer { store(&cache.act, $0.baseAddress!, width: g, t: t) } }
                for b in 0..<n where keepRow[b] {
                    for j in 0..<u {
                        let zt = z[b * g + j]
                        h[b * u + j] = zt * h[b * u + j] + (1 - zt) * ah[b * u + j]
                    }
                }
            }
            if sequences {
                for b in 0..<n {
                    let o = (b * steps + s) * u
                    if keepRow[b] || !zeroMasked {
                        for j in 0..<u { out[o + j] = h[b * u + j] }
                    } else {
                        for j in 0..<u { out[o + j] = 0 }
                    }
                }
            }
        }
        if !sequences { out = h }
        let main = Tensor(shape: sequences ? [n, steps, u] : [n, u], values: out)
        guard settings.returnState else { return (main, cache) }
        return (Self.pack([main, Tensor(shape: [n, u], values: h)] + (cell == .lstm ? [Tensor(shape: [n, u], values: c)] : [])), cache)
    }

    /// The kernels in oneDNN's layouts (`oneDNNInference`), input then recurrent.
    private let preparedKernels = [PreparedWeights(), PreparedWeights()]

    /// An LSTM with Keras's default activations, unmasked, run forwards at inference, through oneDNN's LSTM primitive
    /// (its gate order and weight layout are Keras's); nil when it does not apply or oneDNN cannot.
    func oneDNNInference(_ x: Tensor, states: [Tensor]) -> Tensor? {
        guard cell == .lstm, !settings.goBackwards, settings.activation == .tanh, settings.recurrentActivation == .sigmoid,
              x.count > 0 else { return nil }
        let n = x.shape[0], steps = x.shape[1], u = units
        let zeros = [Float](repeating: 0, count: n * u)
        let h0 = states.first?.scalars ?? zeros, c0 = states.count > 1 ? states[1].scalars : zeros
        let b = bias?.value.scalars ?? [Float](repeating: 0, count: 4 * u)
        var sequence = [Float](repeating: 0, count: n * steps * u)
        var h = zeros, c = zeros
        let done = x.withUnsafeBufferPointer { xp in
            kernel.value.withUnsafeBufferPointer { k in
                recurrentKernel.value.withUnsafeBufferPointer { rk in
                    sequence.withUnsafeMutableBufferPointer { sp in
                        h.withUnsafeMutableBufferPointer { hp in
                            c.withUnsafeMutableBufferPointer { cp in
                                oneDNNLSTMInference(steps: steps, batch: n, features: features, units: u, x: xp.baseAddress!,
                                                    kernel: k.baseAddress!, recurrent: rk.baseAddress!, bias: b, h0: h0, c0: c0,
                                                    sequence: sp.baseAddress!, h: hp.baseAddress!, c: cp.baseAddress!,
                                                    prepared: (PreparedWeights.Use(preparedKernels[0], version: kernel.version),
                                                               PreparedWeights.Use(preparedKernels[1], version: recurrentKernel.version)))
                            }
                        }
                    }
                }
            }
        }
        guard done else { return nil }
        let main = settings.returnSequences ? Tensor(shape: [n, steps, u], values: sequence) : Tensor(shape: [n, u], values: h)
        guard settings.returnState else { return main }
        return Self.pack([main, Tensor(shape: [n, u], values: h), Tensor(shape: [n, u], values: c)])
    }

    /// Several `[N, …]` tensors as one `[N, Σ sizes]` (each sample's parts one after another).
    static func pack(_ parts: [Tensor]) -> Tensor {
        let n = parts[0].shape[0]
        let sizes = parts.map { n == 0 ? 0 : $0.count / n }
        let total = sizes.reduce(0, +)
        var values = [Float](repeating: 0, count: n * total)
        var offset = 0
        for (p, size) in zip(parts, sizes) {
            p.withUnsafeBufferPointer { src in
                for b in 0..<n { for j in 0..<size { values[b * total + offset + j] = src[b * size + j] } }
            }
            offset += size
        }
        return Tensor(shape: [n, total], values: values)
    }

    /// The parts of a packed `[N, P]` tensor, each reshaped to `[N] + shapes[k]`. One size may be unknown (-1, the
    /// number of steps, the same in every part that has it): it follows from P.
    static func unpack(_ packed: Tensor, shapes: [[Int]]) -> [Tensor] {
        let n = packed.shape[0], total = n == 0 ? 0 : packed.count / n
        let known = shapes.filter { !$0.contains(-1) }.map { $0.reduce(1, *) }.reduce(0, +)
        let perStep = shapes.filter { $0.contains(-1) }.map { $0.filter { $0 >= 0 }.reduce(1, *) }.reduce(0, +)
        let steps = perStep > 0 ? max(0, total - known) / perStep : 0
        let resolved = shapes.map { $0.map { $0 < 0 ? steps : $0 } }
        var out: [Tensor] = []
        var offset = 0
        packed.withUnsafeBufferPointer { src in
            for shape in resolved {
                let size = shape.reduce(1, *)
                var values = [Float](repeating: 0, count: n * size)
                for b in 0..<n { for j in 0..<size where offset + j < total { values[b * size + j] = src[b * total + offset + j] } }
                out.append(Tensor(shape: [n] + shape, values: values))
                offset += size
            }
        }
        return out
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        guard let cache = cache as? Cache else { throw LayerError(name, "backward needs a training-mode forward first") }
        let n = cache.n, steps = cache.steps, u = units, g = gates * u
        var dOut: [Float], dh: [Float], dc = [Float](repeating: 0, count: n * u)
        if settings.returnState {
            let parts = Self.unpack(gradOutput, shapes: outputShapes(steps: steps))
            dOut = parts[0].scalars
            dh = parts[1].scalars
            if cell == .lstm { dc = parts[2].scalars }
        } else {
            dOut = gradOutput.scalars
            dh = [Float](repeating: 0, count: n * u)
        }
        if !settings.returnSequences { for i in 0..<(n * u) { dh[i] += dOut[i] } }
        var dzx = [Float](repeating: 0, count: n * steps * g)   // gradient of the input projections
        var dzr = [Float](repeating: 0, count: n * steps * g)   // gradient of the recurrent projections
        var da = [Float](repeating: 0, count: g)
        var dhPrev = [Float](repeating: 0, count: n * u)
        var dRH = [Float](repeating: 0, count: n * u)
        let rk = recurrentKernel.value
        let rdm = cache.dropout?.recurrent
        let act = settings.activation, ract = settings.recurrentActivation
        // An LSTM's cell state, its activation and their gradients for one row.
        var cn = [Float](repeating: 0, count: u), tc = cn, dcn = cn, dtc = cn
        for s in stride(from: steps - 1, through: 0, by: -1) {
            let t = settings.goBackwards ? steps - 1 - s : s
            if settings.returnSequences {
                for b in 0..<n {
                    let keepStep = cache.mask.map { $0[b * steps + t] != 0 } ?? true
                    if keepStep || !settings.zeroOutputForMask { for j in 0..<u { dh[b * u + j] += dOut[(b * steps + s) * u + j] } }
                }
            }
            var direct = [Float](repeating: 0, count: n * u)   // dh_prev not through the recurrent kernel (GRU: z ⊙ dh)
            var dcPrev = [Float](repeating: 0, count: n * u)
            for b in 0..<n {
                let row = (b * steps + t) * g, srow = (b * steps + t) * u
                let keepStep = cache.mask.map { $0[b * steps + t] != 0 } ?? true
                guard keepStep else {
                    for j in 0..<u { direct[b * u + j] = dh[b * u + j]; dcPrev[b * u + j] = dc[b * u + j] }
                    continue
                }
                cache.pre.withUnsafeBufferPointer { pre in
                    cache.act.withUnsafeBufferPointer { a in
                        da.withUnsafeMutableBufferPointer { d in
                            dzx.withUnsafeMutableBufferPointer { dz in
                                let z = pre.baseAddress! + row, y = a.baseAddress! + row, out = dz.baseAddress! + row
                                switch cell {
                                case .simple:
                                    for j in 0..<u { d[j] = dh[b * u + j] }
                                    act.backward(z: z, y: y, dy: d.baseAddress!, dz: out, count: u)
                                case .lstm:
                                    for j in 0..<u { cn[j] = cache.cNew[srow + j]; tc[j] = cn[j] }
                                    tc.withUnsafeMutableBufferPointer { act.applySerial($0.baseAddress!, count: u) }
                                    for j in 0..<u { dtc[j] = dh[b * u + j] * y[3 * u + j] }
                                    act.backward(z: cn, y: tc, dy: dtc, dz: &dcn, count: u)
                                    for j in 0..<u {
                                        let dct = dc[b * u + j] + dcn[j]
                                        d[j] = dct * y[2 * u + j]                        // i
                                        d[u + j] = dct * cache.cPrev[srow + j]           // f
                                        d[2 * u + j] = dct * y[j]                        // candidate
                                        d[3 * u + j] = dh[b * u + j] * tc[j]             // o
                                        dcPrev[b * u + j] = dct * y[u + j]
                                    }
                                    ract.backward(z: z, y: y, dy: d.baseAddress!, dz: out, count: 2 * u)
                                    act.backward(z: z + 2 * u, y: y + 2 * u, dy: d.baseAddress! + 2 * u, dz: out + 2 * u, count: u)
                                    ract.backward(z: z + 3 * u, y: y + 3 * u, dy: d.baseAddress! + 3 * u, dz: out + 3 * u, count: u)
                                case .gru:
                                    for j in 0..<u {
                                        let zt = y[j], dhj = dh[b * u + j]
                                        out[j] = dhj * (cache.hPrev[srow + j] - y[2 * u + j])   // z's output gradient, for now
                                        d[2 * u + j] = dhj * (1 - zt)                          // candidate
                                        direct[b * u + j] = dhj * zt
                                    }
                                    act.backward(z: z + 2 * u, y: y + 2 * u, dy: d.baseAddress! + 2 * u, dz: out + 2 * u, count: u)
                                }
                            }
                        }
                    }
                }
            }
            if case .gru(let after) = cell {
                // r's gradient: through the recurrent projection of the candidate (reset_after) or through r ⊙ h̃.
                if !after {
                    dzx.withUnsafeBufferPointer { dz in
                        rk.withUnsafeBufferPointer { k in
                            dRH.withUnsafeMutableBufferPointer { o in
                                sgemm(transposeB: true, m: n, n: u, k: u, a: dz.baseAddress! + t * g + 2 * u, lda: steps * g,
                                      b: k.baseAddress! + 2 * u, ldb: g, c: o.baseAddress!, ldc: u)
                            }
                        }
                    }
                }
                for b in 0..<n {
                    let row = (b * steps + t) * g, srow = (b * steps + t) * u
                    guard cache.mask.map({ $0[b * steps + t] != 0 }) ?? true else { continue }
                    for j in 0..<u {
                        let dah = dzx[row + 2 * u + j]
                        if after {
                            da[u + j] = dah * cache.extra[srow + j]
                            dzr[row + 2 * u + j] = dah * cache.act[row + u + j]
                        } else {
                            let hIn = cache.hIn?[srow + j] ?? cache.hPrev[srow + j]
                            da[u + j] = dRH[b * u + j] * hIn
                            dRH[b * u + j] *= cache.act[row + u + j]                 // now d h̃ through r ⊙ h̃
                            dzr[row + 2 * u + j] = dah
                        }
                        da[j] = dzx[row + j]   // z's output gradient, stored in place of its pre-activation's
                    }
                    cache.pre.withUnsafeBufferPointer { pre in
                        cache.act.withUnsafeBufferPointer { a in
                            da.withUnsafeBufferPointer { d in
                                dzx.withUnsafeMutableBufferPointer { dz in
                                    ract.backward(z: pre.baseAddress! + row, y: a.baseAddress! + row, dy: d.baseAddress!,
                                                  dz: dz.baseAddress! + row, count: 2 * u)
                                }
                            }
                        }
                    }
                    for j in 0..<(2 * u) { dzr[row + j] = dzx[row + j] }
                }
            } else {
                for b in 0..<n {
                    let row = (b * steps + t) * g
                    for j in 0..<g { dzr[row + j] = dzx[row + j] }
                }
            }
            // dh_prev = dz_r · Uᵀ (the z and r columns only for a GRU without reset_after), then the recurrent dropout.
            let through = cell == .gru(resetAfter: false) ? 2 * u : g
            dzr.withUnsafeBufferPointer { dz in
                rk.withUnsafeBufferPointer { k in
                    dhPrev.withUnsafeMutableBufferPointer { o in
                        sgemm(transposeB: true, m: n, n: u, k: through, a: dz.baseAddress! + t * g, lda: steps * g,
                              b: k.baseAddress!, ldb: g, c: o.baseAddress!, ldc: u)
                    }
                }
            }
            for b in 0..<n {
                let keepStep = cache.mask.map { $0[b * steps + t] != 0 } ?? true
                for j in 0..<u {
                    let i = b * u + j
                    if !keepStep {
                        dh[i] = direct[i]
                        continue
                    }
                    var v = dhPrev[i] + (cell == .gru(resetAfter: false) ? dRH[i] : 0)
                    if let rdm { v *= rdm[i] }
                    dh[i] = v + direct[i]
                }
            }
            if cell == .lstm { dc = dcPrev }
        }
        // Parameter gradients: one GEMM each over all steps.
        let rows = n * steps
        withTrainableGradient(kernel) { gk in
            guard let gk else { return }
            cache.x.withUnsafeBufferPointer { xp in
                dzx.withUnsafeBufferPointer { dz in
                    sgemm(transposeA: true, m: features, n: g, k: rows, a: xp.baseAddress!, lda: features, b: dz.baseAddress!, ldb: g,
                          beta: 1, c: gk, ldc: g)
                }
            }
        }
        withTrainableGradient(recurrentKernel) { gu in
            guard let gu else { return }
            let hIn = cache.hIn ?? cache.hPrev
            let direct = cell == .gru(resetAfter: false) ? 2 * u : g
            hIn.withUnsafeBufferPointer { hp in
                dzr.withUnsafeBufferPointer { dz in
                    sgemm(transposeA: true, m: u, n: direct, k: rows, a: hp.baseAddress!, lda: u, b: dz.baseAddress!, ldb: g,
                          beta: 1, c: gu, ldc: g)
                    if cell == .gru(resetAfter: false) {
                        cache.extra.withUnsafeBufferPointer { rh in
                            sgemm(transposeA: true, m: u, n: u, k: rows, a: rh.baseAddress!, lda: u, b: dz.baseAddress! + 2 * u, ldb: g,
                                  beta: 1, c: gu + 2 * u, ldc: g)
                        }
                    }
                }
            }
        }
        withTrainableGradient(bias) { gb in
            guard let gb else { return }
            for r in 0..<rows {
                for j in 0..<g { gb[j] += dzx[r * g + j] }
                if resetAfter { for j in 0..<g { gb[g + j] += dzr[r * g + j] } }
            }
        }
        var grads: [Tensor?] = []
        if needsInputGradients.first == true {
            var dx = Tensor(uninitializedShape: [n, steps, features])
            dx.withUnsafeMutableBufferPointer { o in
                dzx.withUnsafeBufferPointer { dz in
                    kernel.value.withUnsafeBufferPointer { k in
                        sgemm(transposeB: true, m: rows, n: features, k: g, a: dz.baseAddress!, lda: g, b: k.baseAddress!, ldb: g,
                              c: o.baseAddress!, ldc: features)
                    }
                }
                if let dm = cache.dropout?.input {
                    for b in 0..<n { for t in 0..<steps { for j in 0..<features { o[(b * steps + t) * features + j] *= dm[b * features + j] } } }
                }
            }
            grads.append(dx)
        } else {
            grads.append(nil)
        }
        if initialStateInputs {
            grads.append(needsInputGradients[1] ? Tensor(shape: [n, u], values: dh) : nil)
            if cell == .lstm { grads.append(needsInputGradients[2] ? Tensor(shape: [n, u], values: dc) : nil) }
        }
        if masked { grads.append(nil) }
        return grads
    }
}

extension Initializer {
    /// Keras's `Orthogonal` recurrent initialiser, per gate block: each `[rows, rows]` block of the `[rows, blocks·rows]`
    /// kernel has orthonormal columns (Gram–Schmidt on Gaussian draws).
    public static func orthogonalColumns(_ shape: [Int], blocks: Int, rng: inout SplitMix64) -> Tensor {
        if skipRandom { return Tensor(uninitializedShape: shape) }
        let rows = shape[0], cols = shape[1]
        var values = [Float](repeating: 0, count: rows * cols)
        for c in 0..<cols {
            var v = (0..<rows).map { _ in Double(rng.normal()) }
            let blockStart = (c / max(rows, 1)) * rows
            for prev in blockStart..<c {
                var dot = 0.0
                for r in 0..<rows { dot += v[r] * Double(values[r * cols + prev]) }
                for r in 0..<rows { v[r] -= dot * Double(values[r * cols + prev]) }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for r in 0..<rows { values[r * cols + c] = Float(norm > 1e-12 ? v[r] / norm : 0) }
        }
        return Tensor(shape: shape, values: values)
    }
}
