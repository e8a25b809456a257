import Foundation
import Testing
import GraftTensor
@testable import GraftNN

/// Backpropagation through time, checked by finite differences (`GradientCheckTests.check`): every recurrent cell
/// in both directions, with masks, initial states, returned states and dropout; Bidirectional in every merge mode;
/// TimeDistributed, Embedding, Masking and masked pooling.
struct RecurrentGradientTests {
    typealias G = GradientCheckTests

    struct Case: Sendable, CustomTestStringConvertible {
        let cell: Recurrent.Cell
        var sequences = false
        var backwards = false
        var masked = false
        var states = false
        var returnState = false
        var activation: ActivationKind = .tanh
        var recurrentActivation: ActivationKind = .sigmoid
        var dropout: Float = 0
        var testDescription: String {
            "\(cell) seq \(sequences) back \(backwards) mask \(masked) init \(states) state \(returnState) \(activation)/\(recurrentActivation) drop \(dropout)"
        }
    }

    static let cases: [Case] = {
        var out: [Case] = []
        for cell in [Recurrent.Cell.simple, .lstm, .gru(resetAfter: true), .gru(resetAfter: false)] {
            out.append(Case(cell: cell))
            out.append(Case(cell: cell, sequences: true, backwards: true))
            out.append(Case(cell: cell, sequences: true, masked: true, states: true, returnState: true))
            out.append(Case(cell: cell, backwards: true, masked: true, returnState: true, dropout: 0.3))
        }
        out.append(Case(cell: .simple, sequences: true, activation: .relu))
        out.append(Case(cell: .lstm, sequences: true, masked: true, recurrentActivation: .hardSigmoid(keras2: true)))
        out.append(Case(cell: .gru(resetAfter: true), masked: true, activation: .softsign))
        return out
    }()

    /// Steps kept: sample 0 all, sample 1 a gap and a padded end.
    static let mask = Tensor(shape: [2, 5], values: [1, 1, 1, 1, 1, 1, 0, 1, 0, 0])

    static func settings(_ c: Case, units: Int) -> Recurrent.Settings {
        var s = Recurrent.Settings(units: units)
        s.returnSequences = c.sequences
        s.goBackwards = c.backwards
        s.returnState = c.returnState
        s.activation = c.activation
        s.recurrentActivation = c.recurrentActivation
        s.dropout = c.dropout
        s.recurrentDropout = c.dropout
        return s
    }

    /// A model of one recurrent layer (or Bidirectional) on [5, 3] sequences with its states and mask as inputs.
    static func model(_ layer: any Layer, units: Int, stateInputs: Int, masked: Bool) throws -> (Model, [Tensor], Set<Int>) {
        var b = GraphBuilder(name: layer.name, seed: 5)
        var inputs = [try b.input(InputLayer(name: "x", shape: [5, 3]))]
        var values = [Tensor(shape: [2, 5, 3], values: G.values(30, seed: 11))]
        for k in 0..<stateInputs {
            inputs.append(try b.input(InputLayer(name: "state\(k)", shape: [units])))
            values.append(Tensor(shape: [2, units], values: G.values(2 * units, seed: 20 + UInt64(k))))
        }
        var fixed = Set<Int>()
        if masked {
            inputs.append(try b.input(InputLayer(name: "mask", shape: [5])))
            values.append(mask)
            fixed.insert(values.count - 1)
        }
        let y = try b.add(layer, inputs: inputs)
        let m = try b.finish(outputs: [y])
        for (_, v) in m.namedVariables where v.shape.count <= 2 && v.shape.first.map({ $0 <= 2 }) ?? true {
            v.value = Tensor(shape: v.shape, values: G.values(v.value.count, seed: 60, lo: -0.5, hi: 0.5))
        }
        return (m, values, fixed)
    }

    @Test(arguments: cases)
    func recurrentLayer(_ c: Case) throws {
        let layer = Recurrent(name: "rnn", cell: c.cell, settings: Self.settings(c, units: 4))
        layer.masked = c.masked
        layer.initialStateInputs = c.states
        let (m, xs, fixed) = try Self.model(layer, units: 4, stateInputs: c.states ? layer.stateCount : 0, masked: c.masked)
        let g = layer.cell == .lstm ? 4 : layer.cell == .simple ? 1 : 3
        #expect(layer.kernel.shape == [3, g * 4] && layer.recurrentKernel.shape == [4, g * 4])
        try G.check(m, xs, fixed: fixed)
    }

    /// An LSTM at inference runs through oneDNN's LSTM primitive; it computes what Graft's own loop computes (the
    /// training forward, which keeps what backward needs), with and without initial states, sequences and states.
    @Test(arguments: [(false, false, false), (true, false, false), (false, true, true), (true, true, true)])
    func oneDNNInferenceEqualsGraftsLoop(_ sequences: Bool, _ states: Bool, _ returnState: Bool) throws {
        var s = Recurrent.Settings(units: 6)
        s.returnSequences = sequences
        s.returnState = returnState
        let layer = Recurrent(name: "lstm", cell: .lstm, settings: s)
        layer.initialStateInputs = states
        let (m, xs, _) = try Self.model(layer, units: 6, stateInputs: states ? 2 : 0, masked: false)
        // Large enough weights that the gates saturate somewhere; the input bias nonzero.
        layer.kernel.value = Tensor(shape: layer.kernel.shape, values: G.values(layer.kernel.value.count, seed: 41).map { $0 * 3 })
        layer.bias!.value = Tensor(shape: layer.bias!.shape, values: G.values(layer.bias!.value.count, seed: 42))
        let fast = try layer.forward(xs, training: false)
        let own = try layer.run(xs, keep: true, dropout: nil).output
        #expect(layer.oneDNNInference(xs[0], states: Array(xs.dropFirst())) != nil, "oneDNN took the LSTM")
        #expect(fast.shape == own.shape)
        let err = zip(fast.scalars, own.scalars).map { abs($0 - $1) }.max() ?? 1
        #expect(err < 1e-5, "max difference \(err)")
        _ = m
    }

    /// A masked step carries the state over: the outputs of a sequence with a masked gap equal those of the same
    /// sequence with the gap removed (Keras's semantics), and zeroed outputs stay zero.
    @Test func maskedStepsCarryTheState() throws {
        var s = Recurrent.Settings(units: 3)
        s.returnSequences = true
        let layer = Recurrent(name: "lstm", cell: .lstm, settings: s)
        layer.masked = true
        let (m, _, _) = try Self.model(layer, units: 3, stateInputs: 0, masked: true)
        let x = Tensor(shape: [1, 5, 3], values: G.values(15, seed: 3))
        let y = try m.predict([x, Tensor(shape: [1, 5], values: [1, 0, 1, 1, 0])])[0]
        let plain = Recurrent(name: "lstm", cell: .lstm, settings: s)
        let (p, _, _) = try Self.model(plain, units: 3, stateInputs: 0, masked: false)
        for (a, b) in zip(plain.variables, layer.variables) { a.variable.value = b.variable.value }
        let kept = Tensor(shape: [1, 3, 3], values: Array(x.scalars[0..<3] + x.scalars[6..<12]))
        let z = try p.predict([Tensor(shape: [1, 5, 3], values: kept.scalars + [Float](repeating: 0, count: 6))])[0]
        // Steps 0, 2, 3 of the masked run are steps 0, 1, 2 of the compact one; step 1 repeats step 0, step 4 step 3.
        for j in 0..<3 {
            #expect(abs(y[0, 0, j] - z[0, 0, j]) < 1e-6 && abs(y[0, 1, j] - z[0, 0, j]) < 1e-6)
            #expect(abs(y[0, 2, j] - z[0, 1, j]) < 1e-6 && abs(y[0, 3, j] - z[0, 2, j]) < 1e-6)
            #expect(abs(y[0, 4, j] - z[0, 2, j]) < 1e-6)
        }
    }

    @Test(arguments: [Bidirectional.MergeMode.concat, .sum, .mul, .ave, .none])
    func bidirectional(_ mode: Bidirectional.MergeMode) throws {
        for (cell, sequences, masked, returnState) in [(Recurrent.Cell.lstm, true, true, false), (.gru(resetAfter: true), false, false, true),
                                                       (.simple, true, false, true)] {
            var s = Recurrent.Settings(units: 3)
            s.returnSequences = sequences
            s.returnState = returnState
            var back = s
            back.goBackwards = true
            let layer = Bidirectional(name: "bi", forward: Recurrent(name: "forward_rnn", cell: cell, settings: s),
                                      backward: Recurrent(name: "backward_rnn", cell: cell, settings: back), mergeMode: mode)
            layer.masked = masked
            let (m, xs, fixed) = try Self.model(layer, units: 3, stateInputs: 0, masked: masked)
            #expect(layer.variables.map(\.key).first == "forward_rnn/kernel")
            try G.check(m, xs, fixed: fixed)
        }
    }

    /// `OutputPart` takes a packed output apart, and gradients flow back through each part.
    @Test func outputPartsOfReturnedStates() throws {
        var s = Recurrent.Settings(units: 3)
        s.returnSequences = true
        s.returnState = true
        let layer = Recurrent(name: "lstm", cell: .lstm, settings: s)
        var b = GraphBuilder(name: "parts", seed: 2)
        let x = try b.input(InputLayer(name: "x", shape: [4, 2]))
        let y = try b.add(layer, inputs: [x])
        let shapes = layer.outputShapes(steps: 4)
        #expect(shapes == [[4, 3], [3], [3]])
        let parts = try (0..<3).map { try b.add(OutputPart(of: "lstm", node: y, index: $0, shapes: shapes), inputs: [y]) }
        let last = try b.add(Sequence1D(GlobalPooling2D(name: "mean", kind: .average), kerasClassName: "GlobalAveragePooling1D"), inputs: [parts[0]])
        let sum = try b.add(Merge(name: "sum", kind: .add), inputs: [last, parts[1], parts[2]])
        let m = try b.finish(outputs: [sum])
        let input = Tensor(shape: [2, 4, 2], values: G.values(16, seed: 8))
        let out = try m.run([input], targets: parts)
        // The last step of the sequence is the returned h.
        for j in 0..<3 { #expect(out[0][1, 3, j] == out[1][1, j]) }
        try G.check(m, [input])
    }

    @Test func timeDistributedDenseAndModel() throws {
        let dense = TimeDistributed(name: "td", inner: Dense(name: "d", units: 3, activation: .tanh))
        let (md, xd) = try G.single(dense, input: [4, 5])
        try G.check(md, [xd])
        let cnn = try GraphBuilder.sequential(name: "frame", inputShape: [4, 4, 2], layers: [
            Conv2D(name: "conv", config: Conv2DConfig(filters: 3, kernelSize: [3, 3], padding: .same, activation: .tanh)),
            GlobalPooling2D(name: "gap", kind: .average),
        ])
        let frames = TimeDistributed(name: "per_frame", inner: cnn)
        let (mf, xf) = try G.single(frames, input: [3, 4, 4, 2])
        #expect(mf.namedVariables.map(\.path) == ["per_frame/conv/kernel", "per_frame/conv/bias"])
        try G.check(mf, [xf])
    }

    @Test func embeddingMaskingAndMaskedPooling() throws {
        // Embedding: gradients of the rows used, none for the ids.
        var b = GraphBuilder(name: "embed", seed: 1)
        let ids = try b.input(InputLayer(name: "ids", shape: [5]))
        let e = try b.add(Embedding(name: "e", inputDim: 7, outputDim: 3, maskZero: true), inputs: [ids])
        let mask = try b.add(SequenceMask(name: "e/mask", kind: .notEqual(0)), inputs: [ids])
        let pool = try b.add(MaskedAveragePooling1D(name: "mean"), inputs: [e, mask])
        let m = try b.finish(outputs: [pool])
        let tokens = Tensor(shape: [2, 5], values: [3, 1, 6, 0, 0, 2, 2, 0, 5, 0])
        try G.check(m, [tokens], fixed: [0])
        let y = try m.predict([tokens])[0]
        let table = try #require(m.layer(named: "e")?.variable("embeddings")?.value)
        for j in 0..<3 { #expect(abs(y[0, j] - (table[3, j] + table[1, j] + table[6, j]) / 3) < 1e-6) }
        #expect { try m.predict([Tensor(shape: [1, 5], values: [1, 2, 7, 0, 0])]) } throws: { "\($0)".contains("token id 7") }
        #expect { try m.predict([Tensor(shape: [1, 5], values: [1, 2.5, 0, 0, 0])]) } throws: { "\($0)".contains("2.5") }
        // Masking zeroes the masked steps, and its gradient passes the kept ones only.
        let masking = Masking(name: "masking", maskValue: 0.5)
        let (mm, _) = try G.single(masking, input: [3, 2])
        let x = Tensor(shape: [2, 3, 2], values: [0.5, 0.5, 0.1, 0.5, 0.2, 0.3, 0.5, 0.5, 0.5, 0.5, 0.4, 0.5])
        #expect(try mm.predict([x])[0].scalars == [0, 0, 0.1, 0.5, 0.2, 0.3, 0, 0, 0, 0, 0.4, 0.5])
        try G.check(mm, [Tensor(shape: [2, 3, 2], values: G.values(12, seed: 4))])
    }
}

/// Attention backward, by finite differences: Keras's Attention (dot, scaled, concat), AdditiveAttention and
/// MultiHeadAttention, with masks, causal masks, a separate key and returned scores.
struct AttentionGradientTests {
    typealias G = GradientCheckTests

    /// A model of one attention layer on a [4, 3] query and a [5, 3] value (and key), with their masks as inputs.
    static func model(_ layer: any Layer, inputs: AttentionInputs) throws -> (Model, [Tensor], Set<Int>) {
        var b = GraphBuilder(name: layer.name, seed: 5)
        var nodes = [try b.input(InputLayer(name: "q", shape: [4, 3])), try b.input(InputLayer(name: "v", shape: [5, 3]))]
        var values = [Tensor(shape: [2, 4, 3], values: G.values(24, seed: 1)), Tensor(shape: [2, 5, 3], values: G.values(30, seed: 2))]
        if inputs.key {
            nodes.append(try b.input(InputLayer(name: "k", shape: [5, 3])))
            values.append(Tensor(shape: [2, 5, 3], values: G.values(30, seed: 3)))
        }
        var fixed = Set<Int>()
        for (on, steps, mask) in [(inputs.queryMask, 4, [Float]([1, 1, 1, 1, 1, 0, 1, 0])),
                                  (inputs.valueMask, 5, [1, 1, 1, 1, 1, 1, 1, 0, 0, 1])] where on {
            nodes.append(try b.input(InputLayer(name: "mask\(steps)", shape: [steps])))
            values.append(Tensor(shape: [2, steps], values: mask))
            fixed.insert(values.count - 1)
        }
        let y = try b.add(layer, inputs: nodes)
        return (try b.finish(outputs: [y]), values, fixed)
    }

    @Test func dotConcatAndAdditive() throws {
        for (score, scaled) in [(DotAttention.Score.dot, true), (.dot, false), (.concat, true), (.additive, true), (.additive, false)] {
            for (masks, key, causal) in [(false, false, false), (true, true, false), (true, false, true)] {
                let layer = DotAttention(name: "attention", score: score, useScale: scaled)
                layer.inputs.key = key
                layer.inputs.queryMask = masks
                layer.inputs.valueMask = masks
                layer.inputs.causal = causal
                let (m, xs, fixed) = try Self.model(layer, inputs: layer.inputs)
                if let s = layer.scale { s.value = Tensor(shape: s.shape, values: G.values(s.value.count, seed: 9, lo: 0.5, hi: 1.5)) }
                try G.check(m, xs, fixed: fixed)
            }
        }
    }

    @Test func multiHead() throws {
        for (masks, key, causal, scores, bias) in [(false, false, false, false, true), (true, true, false, false, true),
                                                   (true, false, true, true, false)] {
            let layer = MultiHeadAttention(name: "mha", heads: 2, keyDim: 3, valueDim: 2, useBias: bias, outputDim: 4)
            layer.inputs.key = key
            layer.inputs.queryMask = masks
            layer.inputs.valueMask = masks
            layer.inputs.causal = causal
            layer.inputs.returnScores = scores
            let (m, xs, fixed) = try Self.model(layer, inputs: layer.inputs)
            #expect(layer.variables.map(\.key).first == "query/kernel" && layer.variables[0].variable.shape == [3, 2, 3])
            for (_, v) in m.namedVariables where v.shape.count <= 2 {
                v.value = Tensor(shape: v.shape, values: G.values(v.value.count, seed: 31, lo: -0.5, hi: 0.5))
            }
            try G.check(m, xs, fixed: fixed)
        }
    }
}

/// ConvLSTM2D backward through time (its two convolutions' backward passes per step), by finite differences.
struct ConvLSTMGradientTests {
    typealias G = GradientCheckTests

    @Test(arguments: [(Padding.same, false, false, false), (.valid, true, true, false), (.valid, false, false, true)])
    func convLSTM(_ padding: Padding, _ sequences: Bool, _ backwards: Bool, _ returnState: Bool) throws {
        var s = Recurrent.Settings(units: 2)
        s.returnSequences = sequences
        s.goBackwards = backwards
        s.returnState = returnState
        let layer = ConvLSTM2D(name: "convlstm", filters: 2, kernelSize: [2, 3], padding: padding, settings: s)
        let (m, x) = try G.single(layer, input: [3, 4, 5, 2])
        #expect(layer.variables.map(\.variable.shape) == [[2, 3, 2, 8], [2, 3, 2, 8], [8]])
        try G.check(m, [x], epsilon: 1e-2)
    }
}
