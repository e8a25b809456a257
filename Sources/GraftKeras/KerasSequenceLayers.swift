import Foundation
import GraftNN
import GraftTensor

/// Keras's sequence layers: recurrent layers (Keras 2's CuDNN ones included), their wrappers, embeddings and
/// masking.
enum KerasSequenceLayers {
    static let classes: Set<String> = [
        "SimpleRNN", "LSTM", "GRU", "CuDNNLSTM", "CuDNNGRU", "Bidirectional", "TimeDistributed", "Embedding", "Masking",
    ]

    static func make(className: String, config c: JSON, name: String, kerasMajor: Int) throws -> any Layer {
        switch className {
        case "SimpleRNN", "LSTM", "GRU", "CuDNNLSTM", "CuDNNGRU":
            return try recurrent(className: className, config: c, name: name, kerasMajor: kerasMajor)
        case "Bidirectional":
            return try bidirectional(c, name: name, kerasMajor: kerasMajor)
        case "TimeDistributed":
            let inner = try KerasModelBuilder.layer(from: c["layer"], kerasMajor: kerasMajor, operands: [])
            return TimeDistributed(name: name, inner: inner)
        case "Embedding":
            return Embedding(name: name, inputDim: try c["input_dim"].int(), outputDim: try c["output_dim"].int(),
                             maskZero: try c["mask_zero"].bool(default: false))
        case "Masking":
            return Masking(name: name, maskValue: try c["mask_value"].float(default: 0))
        default:
            throw KerasError("layer \(name): unsupported layer class \(className)", layer: name)
        }
    }

    static func recurrent(className: String, config c: JSON, name: String, kerasMajor: Int) throws -> Recurrent {
        var s = Recurrent.Settings(units: try c["units"].int())
        let cudnn = className.hasPrefix("CuDNN")
        if !cudnn {
            s.activation = c["activation"].isNull ? .tanh : try KerasLayerFactory.activation(c["activation"], kerasMajor: kerasMajor)
            if className != "SimpleRNN" {
                s.recurrentActivation = c["recurrent_activation"].isNull
                    ? .sigmoid : try KerasLayerFactory.activation(c["recurrent_activation"], kerasMajor: kerasMajor)
            }
            s.useBias = try c["use_bias"].bool(default: true)
            s.dropout = try c["dropout"].float(default: 0)
            s.recurrentDropout = try c["recurrent_dropout"].float(default: 0)
        }
        s.returnSequences = try c["return_sequences"].bool(default: false)
        s.returnState = try c["return_state"].bool(default: false)
        s.goBackwards = try c["go_backwards"].bool(default: false)
        s.zeroOutputForMask = try c["zero_output_for_mask"].bool(default: false)
        s.unroll = try c["unroll"].bool(default: false)
        s.unitForgetBias = try c["unit_forget_bias"].bool(default: true)
        if try c["time_major"].bool(default: false) {
            throw KerasError("layer \(name) (\(className)): time_major inputs are not supported", layer: name)
        }
        for (key, rate) in [("dropout", s.dropout), ("recurrent_dropout", s.recurrentDropout)] where !(rate >= 0 && rate < 1) {
            throw KerasError("config key \(c[key].path): \(key) \(rate) must be at least 0 and below 1", key: c[key].path)
        }
        let cell: Recurrent.Cell
        switch className {
        case "SimpleRNN": cell = .simple
        case "LSTM", "CuDNNLSTM": cell = .lstm
        case "CuDNNGRU": cell = .gru(resetAfter: true)
        default:
            // Keras before 2.3 had no reset_after (false); tf-keras 2 and Keras 3 write it (default true).
            cell = .gru(resetAfter: try c["reset_after"].bool(default: kerasMajor >= 3))
        }
        return Recurrent(name: name, cell: cell, settings: s)
    }

    /// Keras 3 names the wrapped layers `forward_<name>` and `backward_<name>`, and writes both; tf-keras writes the
    /// forward one under its own name and derives the backward one (go_backwards flipped).
    static func bidirectional(_ c: JSON, name: String, kerasMajor: Int) throws -> Bidirectional {
        let modeText = c["merge_mode"].isNull ? "none" : try c["merge_mode"].string("a merge mode")
        guard let mode = Bidirectional.MergeMode(rawValue: modeText) else {
            throw KerasError("config key \(c["merge_mode"].path): merge_mode \"\(modeText)\" is not concat, sum, mul, ave or None", key: c["merge_mode"].path)
        }
        func rnn(_ entry: JSON, named: String, flip: Bool) throws -> Recurrent {
            let cls = try entry["class_name"].string("a layer class name")
            guard ["SimpleRNN", "LSTM", "GRU", "CuDNNLSTM", "CuDNNGRU"].contains(cls) else {
                throw KerasError("layer \(name) (Bidirectional): wraps \(cls); only SimpleRNN, LSTM and GRU are supported", layer: name)
            }
            let r = try recurrent(className: cls, config: entry["config"], name: named, kerasMajor: kerasMajor)
            if flip { r.settings.goBackwards.toggle() }
            return r
        }
        let inner = c["layer"]
        let base = inner["config"]["name"].string ?? "rnn"
        let stem = base.hasPrefix("forward_") ? String(base.dropFirst("forward_".count)) : base
        let forward = try rnn(inner, named: "forward_\(stem)", flip: false)
        let backward: Recurrent
        if !c["backward_layer"].isNull {
            let b = c["backward_layer"]["config"]["name"].string ?? "backward_\(stem)"
            backward = try rnn(c["backward_layer"], named: b.hasPrefix("backward_") ? b : "backward_\(b)", flip: false)
        } else {
            backward = try rnn(inner, named: "backward_\(stem)", flip: true)
        }
        return Bidirectional(name: name, forward: forward, backward: backward, mergeMode: mode)
    }
}

/// Adds Keras layer calls to a graph with what Keras passes between layers besides tensors: masks (made by
/// `Embedding(mask_zero=True)` and `Masking`, carried through the layers that carry them in Keras, consumed by
/// recurrent layers and masked pooling), initial states, and the several outputs of one call.
struct SequenceWiring {
    init(implicit: Bool) { self.implicit = implicit }

    /// The mask node of each node whose output carries a mask.
    var maskOf: [Int: Int] = [:]
    /// Masks follow Keras 2's rules from layer to layer; false for a Keras 3 functional config, which gives each
    /// call its mask.
    let implicit: Bool

    /// Layers whose output carries their first input's mask (Keras's `supports_masking` without a mask of their own).
    static func passesMask(_ l: any Layer) -> Bool {
        l is Dense || l is ActivationLayer || l is PReLU || l is InferenceIdentity || l is BatchNormalization
            || l is LayerNormalization || l is GroupNormalization || l is UnitNormalization || l is Rescaling
            || l is Normalization || l is TimeDistributed
    }

    /// Adds one call of `layer` on the outputs of `inputs`; returns the node of each of its outputs.
    mutating func add(_ original: any Layer, inputs: [Int], mask explicit: Int? = nil, to b: inout GraphBuilder) throws -> [Int] {
        var layer = original
        var args = inputs
        let masks = implicit ? inputs.map { maskOf[$0] } : [explicit]
        let first = masks.first ?? nil
        if let r = layer as? Recurrent {
            r.initialStateInputs = inputs.count > 1
            if let m = first { r.masked = true; args.append(m) }
        } else if let r = layer as? Bidirectional {
            r.initialStateInputs = inputs.count > 1
            if let m = first { r.masked = true; args.append(m) }
        } else if let m = first, let s = layer as? Sequence1D, let pool = s.inner as? GlobalPooling2D,
                  pool.kind == .average, !pool.keepDims {
            layer = MaskedAveragePooling1D(name: layer.name)
            args.append(m)
        }
        let node = try b.add(layer, inputs: args)
        var outMask: Int?
        switch layer {
        case let e as Embedding where e.maskZero:
            outMask = try b.add(SequenceMask(name: "\(layer.name)/mask@\(node)", kind: .notEqual(0)), inputs: [inputs[0]])
        case let m as Masking:
            outMask = try b.add(SequenceMask(name: "\(layer.name)/mask@\(node)", kind: .anyNotEqual(m.maskValue)), inputs: [inputs[0]])
        case let r as Recurrent:
            outMask = r.settings.returnSequences ? first : nil
        case let r as Bidirectional:
            outMask = r.forwardLayer.settings.returnSequences ? first : nil
        case is Merge, is Concatenate:
            if let c = layer as? Concatenate, c.axis != -1, c.axis != (b.outputShape(of: inputs[0]).count) { break }
            let distinct = Array(Set(masks.compactMap { $0 })).sorted()
            if distinct.count == 1 {
                outMask = distinct[0]
            } else if distinct.count > 1 {
                outMask = try b.add(SequenceMask(name: "\(layer.name)/mask@\(node)", kind: .all), inputs: distinct)
            }
        default:
            if Self.passesMask(layer) { outMask = first }
        }
        var outputs = [node]
        let shapes: [[Int]]
        let steps = b.outputShape(of: inputs[0]).first ?? -1
        switch layer {
        case let r as Recurrent where r.settings.returnState: shapes = r.outputShapes(steps: steps)
        case let r as Bidirectional: shapes = r.outputShapes(steps: steps)
        default: shapes = []
        }
        if shapes.count > 1 {
            outputs = try shapes.indices.map { k in
                try b.add(OutputPart(of: layer.name, node: node, index: k, shapes: shapes), inputs: [node])
            }
            // The sequence outputs (both of them for merge_mode None) carry the mask; states do not.
            let sequences = (layer as? Bidirectional)?.mergeMode == Bidirectional.MergeMode.none ? 2 : 1
            for k in 0..<sequences { maskOf[outputs[k]] = outMask }
        } else {
            maskOf[node] = outMask
        }
        return outputs
    }
}

/// Keras 2's conversion of CuDNNLSTM and CuDNNGRU weights to LSTM and GRU (`_convert_rnn_weights`), recognised as
/// Keras does by the bias's shape: per gate, input kernels change from Fortran to C order and recurrent kernels are
/// transposed; an LSTM's two biases are summed, a GRU's become its `[2, 3·units]` input and recurrent biases.
enum KerasRecurrentWeights {
    static func fromCuDNN(_ mapped: [(String, Tensor)], layer: any Layer, prefix: String) -> [(String, Tensor)] {
        if let b = layer as? Bidirectional {
            return fromCuDNN(fromCuDNN(mapped, layer: b.forwardLayer, prefix: "\(prefix)/\(b.forwardLayer.name)"),
                             layer: b.backwardLayer, prefix: "\(prefix)/\(b.backwardLayer.name)")
        }
        guard let r = layer as? Recurrent else { return mapped }
        let u = r.units
        let g: Int
        switch r.cell {
        case .lstm: g = 4
        case .gru(resetAfter: true): g = 3
        default: return mapped
        }
        var byPath = Dictionary(mapped.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        guard let kernel = byPath["\(prefix)/kernel"], let recurrent = byPath["\(prefix)/recurrent_kernel"],
              let bias = byPath["\(prefix)/bias"], bias.rank == 1, bias.count == 2 * g * u,
              kernel.rank == 2, kernel.shape[1] == g * u, recurrent.shape == [u, g * u] else { return mapped }
        let f = kernel.shape[0]
        let k = kernel.scalars, rk = recurrent.scalars, b = bias.scalars
        var newKernel = [Float](repeating: 0, count: f * g * u)
        var newRecurrent = [Float](repeating: 0, count: u * g * u)
        for gate in 0..<g {
            // The gate's [f, u] block as a C-order array, read back in Fortran order.
            var block = [Float](repeating: 0, count: f * u)
            for i in 0..<f { for j in 0..<u { block[i * u + j] = k[i * g * u + gate * u + j] } }
            for i in 0..<f { for j in 0..<u { newKernel[i * g * u + gate * u + j] = block[j * f + i] } }
            for i in 0..<u { for j in 0..<u { newRecurrent[i * g * u + gate * u + j] = rk[j * g * u + gate * u + i] } }
        }
        byPath["\(prefix)/kernel"] = Tensor(shape: kernel.shape, values: newKernel)
        byPath["\(prefix)/recurrent_kernel"] = Tensor(shape: recurrent.shape, values: newRecurrent)
        if g == 4 {
            byPath["\(prefix)/bias"] = Tensor(shape: [g * u], values: (0..<(g * u)).map { b[$0] + b[g * u + $0] })
        } else {
            byPath["\(prefix)/bias"] = Tensor(shape: [2, g * u], values: b)
        }
        return mapped.map { ($0.0, byPath[$0.0] ?? $0.1) }
    }
}
