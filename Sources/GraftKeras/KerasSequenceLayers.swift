import Foundation
import GraftNN
import GraftTensor

/// Keras's sequence layers: recurrent layers (Keras 2's CuDNN ones included), their wrappers, embeddings and
/// masking.
enum KerasSequenceLayers {
    static let classes: Set<String> = [
        "SimpleRNN", "LSTM", "GRU", "CuDNNLSTM", "CuDNNGRU", "Bidirectional", "TimeDistributed", "Embedding", "Masking",
        "Attention", "AdditiveAttention", "MultiHeadAttention", "ConvLSTM2D",
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
        case "ConvLSTM2D":
            let format = c["data_format"].string ?? "channels_last"
            guard format == "channels_last" else {
                throw KerasError("layer \(name) (ConvLSTM2D): data_format \(format) is not supported (channels_last)", layer: name)
            }
            let filters = try c["filters"].int()
            let r = try recurrent(className: "LSTM", config: c, name: name, kerasMajor: kerasMajor, units: filters)
            return ConvLSTM2D(name: name, filters: filters, kernelSize: try c["kernel_size"].ints(2),
                              strides: try c["strides"].ints(2, default: [1, 1]), padding: try KerasLayerFactory.padding(c),
                              dilation: try c["dilation_rate"].ints(2, default: [1, 1]), settings: r.settings)
        case "Attention", "AdditiveAttention":
            let mode = c["score_mode"].string ?? "dot"
            guard className == "AdditiveAttention" || mode == "dot" || mode == "concat" else {
                throw KerasError("config key \(c["score_mode"].path): score_mode \"\(mode)\" is not dot or concat", key: c["score_mode"].path)
            }
            let score: DotAttention.Score = className == "AdditiveAttention" ? .additive : mode == "concat" ? .concat : .dot
            let layer = DotAttention(name: name, score: score, useScale: try c["use_scale"].bool(default: className == "AdditiveAttention"),
                                     dropout: try c["dropout"].float(default: 0))
            layer.inputs.causal = try c["causal"].bool(default: false)   // tf-keras before use_causal_mask
            return layer
        case "MultiHeadAttention":
            for key in ["use_gate"] where try c[key].bool(default: false) {
                throw KerasError("layer \(name) (MultiHeadAttention): \(key) is not supported", layer: name)
            }
            guard c["sliding_window"].isNull else { throw KerasError("layer \(name) (MultiHeadAttention): sliding_window is not supported", layer: name) }
            if !c["attention_axes"].isNull {
                let axes = try (c["attention_axes"].array ?? [c["attention_axes"]]).map { try $0.int() }
                guard axes == [1] || axes == [-2] else {
                    throw KerasError("layer \(name) (MultiHeadAttention): attention_axes \(axes) are not supported (the steps axis, 1)", layer: name)
                }
            }
            var outputDim: Int?
            if !c["output_shape"].isNull {
                let dims = try (c["output_shape"].array ?? [c["output_shape"]]).map { try $0.int() }
                guard dims.count == 1 else { throw KerasError("layer \(name) (MultiHeadAttention): output_shape \(dims) is not supported (one size)", layer: name) }
                outputDim = dims[0]
            }
            let keyDim = try c["key_dim"].int()
            let layer = MultiHeadAttention(name: name, heads: try c["num_heads"].int(), keyDim: keyDim,
                                      valueDim: c["value_dim"].isNull ? keyDim : try c["value_dim"].int(),
                                      useBias: try c["use_bias"].bool(default: true), outputDim: outputDim,
                                      dropout: try c["dropout"].float(default: 0))
            layer.keras3Softmax = kerasMajor >= 3
            return layer
        default:
            throw KerasError("layer \(name): unsupported layer class \(className)", layer: name)
        }
    }

    /// Applies a call's keyword arguments that change what an attention layer computes (`use_causal_mask`,
    /// `return_attention_scores`); refuses an explicit `attention_mask`.
    static func configure(_ layer: any Layer, call kwargs: JSON) throws {
        guard layer is DotAttention || layer is MultiHeadAttention else { return }
        if !kwargs["attention_mask"].isNull {
            throw KerasError("layer \(layer.name): an explicit attention_mask is not supported (masks from Masking or Embedding are)", layer: layer.name)
        }
        let causal = try kwargs["use_causal_mask"].bool(default: false)
        let scores = try kwargs["return_attention_scores"].bool(default: false)
        if let a = layer as? DotAttention {
            a.inputs.causal = a.inputs.causal || causal
            a.inputs.returnScores = scores
        } else if let a = layer as? MultiHeadAttention {
            a.inputs.causal = causal
            a.inputs.returnScores = scores
        }
    }

    /// `units` nil reads the config's (a ConvLSTM2D gives its filters).
    static func recurrent(className: String, config c: JSON, name: String, kerasMajor: Int, units: Int? = nil) throws -> Recurrent {
        var s = Recurrent.Settings(units: try units ?? c["units"].int())
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
/// recurrent layers, attention and masked pooling), initial states, and the several outputs of one call.
///
/// Keras 3 keeps a tensor's mask on the tensor, and its MultiHeadAttention removes the masks of its query, value and
/// key tensors while it runs: a layer Keras runs later on the same tensor sees none (nor do layers after it), though
/// it did when the model was built. So two masks are tracked per tensor: the one layers see when Keras runs the model
/// (`maskOf`) and the one it had when the model was built (`builtMaskOf`, which the mask arguments Keras 3 wrote into
/// the config were computed from).
struct SequenceWiring {
    /// How masks travel. tf-keras (`keras2`): a recurrent layer takes its sequence's mask even with initial states;
    /// merges keep a step that every masked input keeps. Keras 3 (`keras3`): a layer called with several tensors (a
    /// recurrent layer with initial states) gets no mask; a merge of masked inputs keeps a step that any input keeps,
    /// and drops the mask when an input has none; a call may also give its mask explicitly (`mask=`).
    enum Rules { case keras2, keras3 }

    /// Where a call's mask comes from.
    enum MaskSource {
        /// The rules above, from the masks its inputs carry when Keras runs it.
        case rules
        /// Given explicitly by the call (nil: explicitly none).
        case given(Int?)
        /// Given explicitly, computed by ops Graft does not read: the mask the rules gave when the model was built.
        case asBuilt
    }

    let rules: Rules
    /// The mask node of each node whose output carries a mask when Keras runs the model.
    var maskOf: [Int: Int] = [:]
    /// The same when the model was built (differs only after a Keras 3 MultiHeadAttention removed masks).
    var builtMaskOf: [Int: Int] = [:]

    init(rules: Rules) { self.rules = rules }

    /// The mask a layer that takes one gets by the rules, from its inputs' masks.
    func ruleMask(_ masks: [Int?]) -> Int? { rules == .keras3 && masks.count > 1 ? nil : (masks.first ?? nil) }

    /// Adds one call of `layer` on the outputs of `inputs`. `cleared` lists the positions of inputs whose masks a
    /// Keras 3 MultiHeadAttention run earlier removed. Returns the node of each of the layer's outputs.
    mutating func add(_ original: any Layer, inputs: [Int], mask source: MaskSource = .rules, cleared: Set<Int> = [],
                      to b: inout GraphBuilder) throws -> [Int] {
        var layer = original
        var args = inputs
        let built = inputs.map { builtMaskOf[$0] }
        let masks = inputs.enumerated().map { cleared.contains($0.offset) ? nil : maskOf[$0.element] }
        // The mask a layer that takes one gets, when Keras runs it and when the model was built.
        let taken: Int?, builtTaken: Int?
        switch source {
        case .rules: (taken, builtTaken) = (ruleMask(masks), ruleMask(built))
        case .given(let m): (taken, builtTaken) = (m, m)
        case .asBuilt: (taken, builtTaken) = (ruleMask(built), ruleMask(built))
        }
        switch layer {
        case let r as Recurrent:
            r.initialStateInputs = inputs.count > 1
            if let m = taken { r.masked = true; args.append(m) }
        case let r as Bidirectional:
            r.initialStateInputs = inputs.count > 1
            if let m = taken { r.masked = true; args.append(m) }
        case is ConvLSTM2D:
            if taken != nil {
                throw KerasError("layer \(layer.name): a ConvLSTM2D given a mask (from Masking or Embedding) is not supported; remove the mask before it", layer: layer.name)
            }
        case let a as DotAttention:
            a.inputs.key = inputs.count > 2
            if let m = masks[0] { a.inputs.queryMask = true; args.append(m) }
            if inputs.count > 1, let m = masks[1] { a.inputs.valueMask = true; args.append(m) }
        case let a as MultiHeadAttention:
            a.inputs.key = inputs.count > 2
            if let m = masks[0] { a.inputs.queryMask = true; args.append(m) }
            if inputs.count > 1, let m = masks[1] { a.inputs.valueMask = true; args.append(m) }
            // Keras ignores the key's mask when the key is the value.
            if inputs.count > 2, inputs[2] != inputs[1], let m = masks[2] { a.inputs.keyMask = true; args.append(m) }
        case let s as Sequence1D:
            if let m = taken, let pool = s.inner as? GlobalPooling2D, pool.kind == .average, !pool.keepDims {
                layer = MaskedAveragePooling1D(name: layer.name)
                args.append(m)
            }
        default:
            break
        }
        let node = try b.add(layer, inputs: args)
        let outMask = try outputMask(layer, node: node, inputs: inputs, masks: masks, taken: taken, tag: "mask", to: &b)
        let builtOutMask = built == masks && builtTaken == taken ? outMask
            : try outputMask(layer, node: node, inputs: inputs, masks: built, taken: builtTaken, tag: "built-mask", to: &b)
        var outputs = [node]
        let shapes: [[Int]]
        let q = b.outputShape(of: inputs[0])
        let steps = q.first ?? -1
        switch layer {
        case let r as Recurrent where r.settings.returnState: shapes = r.outputShapes(steps: steps)
        case let r as ConvLSTM2D where r.settings.returnState: shapes = r.outputShapes(steps: steps)
        case let r as Bidirectional: shapes = r.outputShapes(steps: steps)
        case let a as DotAttention where a.inputs.returnScores:
            shapes = [[steps, b.outputShape(of: inputs[1]).last ?? -1], [steps, b.outputShape(of: inputs[1]).first ?? -1]]
        case let a as MultiHeadAttention where a.inputs.returnScores:
            shapes = [[steps, a.outputDim ?? (q.last ?? -1)], [a.heads, steps, b.outputShape(of: inputs[1]).first ?? -1]]
        default: shapes = []
        }
        if shapes.count > 1 {
            outputs = try shapes.indices.map { k in
                try b.add(OutputPart(of: layer.name, node: node, index: k, shapes: shapes), inputs: [node])
            }
            // The sequence outputs (both of them for merge_mode None) carry the mask; states and scores do not.
            let sequences = (layer as? Bidirectional)?.mergeMode == Bidirectional.MergeMode.none ? 2 : 1
            for k in 0..<sequences { maskOf[outputs[k]] = outMask; builtMaskOf[outputs[k]] = builtOutMask }
        } else {
            maskOf[node] = outMask
            builtMaskOf[node] = builtOutMask
        }
        return outputs
    }

    /// The mask a call's output carries, given its inputs' masks and the mask it took (adds the mask nodes it needs,
    /// named with `tag`).
    func outputMask(_ layer: any Layer, node: Int, inputs: [Int], masks: [Int?], taken: Int?, tag: String,
                    to b: inout GraphBuilder) throws -> Int? {
        switch layer {
        case let e as Embedding where e.maskZero:
            return try b.add(SequenceMask(name: "\(layer.name)/\(tag)@\(node)", kind: .notEqual(0)), inputs: [inputs[0]])
        case let m as Masking:
            return try b.add(SequenceMask(name: "\(layer.name)/\(tag)@\(node)", kind: .anyNotEqual(m.maskValue)), inputs: [inputs[0]])
        case let r as Recurrent:
            return r.settings.returnSequences ? taken : nil
        case let r as Bidirectional:
            return r.forwardLayer.settings.returnSequences ? taken : nil
        case is Merge, is Concatenate:
            if let c = layer as? Concatenate, c.axis != -1, c.axis != (b.outputShape(of: inputs[0]).count) { return nil }
            let present = masks.compactMap { $0 }
            if rules == .keras3 && present.count < masks.count { return nil }   // Keras 3: an unmasked input unmasks the result
            let distinct = Array(Set(present)).sorted()
            if distinct.count == 1 { return distinct[0] }
            if distinct.count > 1 {
                return try b.add(SequenceMask(name: "\(layer.name)/\(tag)@\(node)", kind: rules == .keras3 ? .any : .all), inputs: distinct)
            }
            return nil
        default:
            return SequenceMask.passesMask(layer) ? masks.first ?? nil : nil
        }
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
