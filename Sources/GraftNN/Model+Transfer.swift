import GraftCore
import GraftTensor

/// Which layers a freeze or unfreeze applies to (layers in model order, nested models flattened).
public enum FreezeSpec: Sendable, Equatable, Codable, CustomStringConvertible {
    case all
    case none
    /// From the first layer up to and including the named one.
    case until(String)
    /// From the named layer (inclusive) to the end.
    case from(String)
    /// Layers whose names match any of these glob patterns (`block5_*`, `conv?_block1_*`).
    case patterns([String])

    /// Parses `all`, `none`, `until:NAME`, `from:NAME`, or comma-separated names/patterns (`pattern:` optional).
    public init(parsing text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "all" { self = .all } else if t == "none" { self = .none }
        else if t.hasPrefix("until:") { self = .until(String(t.dropFirst(6))) }
        else if t.hasPrefix("from:") { self = .from(String(t.dropFirst(5))) }
        else {
            let body = t.hasPrefix("pattern:") ? String(t.dropFirst(8)) : t
            self = .patterns(body.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
    }

    public var description: String {
        switch self {
        case .all: return "all"
        case .none: return "none"
        case .until(let n): return "until:\(n)"
        case .from(let n): return "from:\(n)"
        case .patterns(let p):
            // `pattern:` keeps a lone `all`, `none` or `until:x` pattern from reading back as that spec.
            let plain = p.joined(separator: ",")
            return p.count == 1 && FreezeSpec(parsing: plain) != self ? "pattern:" + plain : plain
        }
    }

    /// Encoded as its text (`until:block4_pool`), which parses back to the same spec.
    public init(from decoder: any Decoder) throws {
        self = FreezeSpec(parsing: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// How BatchNormalization layers behave when their parameters are unfrozen.
public enum BatchNormMode: String, Sendable, Codable, CaseIterable {
    /// Keep normalising with the moving statistics (Keras's advice for fine-tuning), training only gamma and beta.
    case inference
    /// Normalise with batch statistics and update the moving averages.
    case train
}

/// The recurrent layer of a head: `lstm`, `gru` or `simple_rnn` with `units`, parsed from `lstm:64`.
public struct RecurrentHead: Sendable, Codable, Equatable {
    /// The recurrent layer's kind.
    public enum Cell: String, Sendable, Codable { case lstm, gru, simpleRNN = "simple_rnn" }
    public var cell: Cell
    public var units: Int

    public init(cell: Cell, units: Int) {
        self.cell = cell
        self.units = units
    }

    /// `lstm:64`, `gru:32`, `simple_rnn:16` (units from 1 to 65536).
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":").map(String.init)
        guard parts.count == 2, let cell = Cell(rawValue: parts[0]), let units = Int(parts[1]), units >= 1, units <= 65_536 else {
            throw LayerError("head", "recurrent head \"\(text)\" must be lstm:UNITS, gru:UNITS or simple_rnn:UNITS (units from 1 to 65536)")
        }
        self.init(cell: cell, units: units)
    }

    public var description: String { "\(cell.rawValue):\(units)" }
}

/// The head `replaceHead` grafts on.
public struct HeadConfig: Sendable, Codable, Equatable {
    /// How a spatial output meets the head's Dense layers: global average or max pooling, flattening, or nothing.
    public enum Pooling: String, Sendable, Codable { case avg, max, flatten, none }
    public var classes: Int
    public var pooling: Pooling = .avg
    public var hidden: [Int] = []
    public var dropout: Float = 0
    /// `softmax` for single-label, `sigmoid` for multi-label.
    public var activation: ActivationKind = .softmax
    /// A recurrent layer first, for a base whose output is a sequence `[T, F]` (a CNN over frames, an embedding,
    /// a recurrent layer returning sequences): it reads the sequence and its last output feeds the Dense layers.
    public var recurrent: RecurrentHead?

    public init(classes: Int, pooling: Pooling = .avg, hidden: [Int] = [], dropout: Float = 0, activation: ActivationKind = .softmax) {
        self.classes = classes
        self.pooling = pooling
        self.hidden = hidden
        self.dropout = dropout
        self.activation = activation
    }
}

extension Model {
    /// Where the mask Keras attaches to node `i`'s output comes from: a mask node of the graph, or one to make from
    /// a node (an Embedding's ids, a Masking layer's input); nil when the output carries none.
    enum MaskSource { case node(Int), make(SequenceMask.Kind, Int) }

    func maskSource(of i: Int) -> MaskSource? {
        let node = nodes[i]
        switch node.layer {
        case let e as Embedding where e.maskZero: return .make(.notEqual(0), node.inputs[0])
        case let m as Masking: return .make(.anyNotEqual(m.maskValue), node.inputs[0])
        case let r as Recurrent where r.masked && r.settings.returnSequences: return node.inputs.last.map { .node($0) }
        case let r as Bidirectional where r.masked && r.forwardLayer.settings.returnSequences: return node.inputs.last.map { .node($0) }
        default:
            guard SequenceMask.passesMask(node.layer), let first = node.inputs.first else { return nil }
            return maskSource(of: first)
        }
    }

    /// This model applied to every frame of a clip: a model of input `[frames] + input` holding it in a
    /// `TimeDistributed` (its layers and weights shared), whose output is the sequence of its outputs.
    public func overFrames(_ frames: Int) throws -> Model {
        guard frames >= 1, frames <= 65_536 else { throw LayerError(name, "frames \(frames) must be from 1 to 65536") }
        guard inputNodes.count == 1, outputNodes.count == 1 else { throw LayerError(name, "only a model with one input and one output runs over frames") }
        var b = GraphBuilder(name: "\(name)_over_frames", kerasClassName: "Functional")
        let x = try b.input(InputLayer(name: "frames", shape: [frames] + (inputShapes.first ?? [])))
        let y = try b.add(TimeDistributed(name: "\(name)_per_frame", inner: self), inputs: [x])
        return try b.finish(outputs: [y])
    }

    /// Every layer in model order, nested models flattened (the order freeze specs count in), a model run over
    /// frames (`TimeDistributed`) too.
    public var flattenedLayers: [any Layer] {
        layers.flatMap { l -> [any Layer] in
            if let m = l as? Model { return m.flattenedLayers }
            if let t = l as? TimeDistributed, let m = t.inner as? Model { return m.flattenedLayers }
            return l is InputLayer ? [] : [l]
        }
    }

    /// The layers `spec` selects; throws when a named layer does not exist.
    public func layers(matching spec: FreezeSpec) throws -> [any Layer] {
        let all = flattenedLayers
        func index(_ n: String) throws -> Int {
            guard let i = all.firstIndex(where: { $0.name == n }) else {
                throw LayerError(n, "no such layer in model \(name) (see graft summary)")
            }
            return i
        }
        switch spec {
        case .all: return all
        case .none: return []
        case .until(let n): return Array(all[...(try index(n))])
        case .from(let n): return Array(all[(try index(n))...])
        case .patterns(let ps):
            let chosen = all.filter { l in ps.contains { NamePattern.matches($0, l.name) } }
            if chosen.isEmpty { throw LayerError(ps.joined(separator: ","), "matches no layer in model \(name)") }
            return chosen
        }
    }

    /// Freezes the selected layers: their parameters get no gradients and no updates, and BatchNormalization runs
    /// in inference mode (as Keras's `trainable = False`). Returns the number of layers frozen.
    @discardableResult
    public func freeze(_ spec: FreezeSpec) throws -> Int {
        let chosen = try layers(matching: spec)
        access.exclusive {
            for l in chosen {
                for (_, v) in l.variables { v.frozen = true }
                (l as? BatchNormalization)?.frozen = true
            }
        }
        return chosen.count
    }

    /// Unfreezes the selected layers. BatchNormalization layers stay in inference mode unless `batchNorm` is `.train`.
    @discardableResult
    public func unfreeze(_ spec: FreezeSpec, batchNorm: BatchNormMode = .inference) throws -> Int {
        let chosen = try layers(matching: spec)
        access.exclusive {
            for l in chosen {
                for (_, v) in l.variables { v.frozen = false }
                if let bn = l as? BatchNormalization { bn.frozen = batchNorm == .inference }
            }
        }
        return chosen.count
    }

    /// The node `cut(at:)` ends at: the layer's last call, or for a layer with several outputs (a recurrent layer
    /// returning its states, attention returning its scores) its first output, or output k when named `layer[k]`.
    func cutTarget(_ layerName: String) throws -> Int? {
        var name = layerName, part: Int?
        if nodeIndex(ofLayer: layerName) == nil, layerName.hasSuffix("]"), let open = layerName.lastIndex(of: "["),
           let k = Int(layerName[layerName.index(after: open)..<layerName.index(before: layerName.endIndex)]) {
            name = String(layerName[..<open])
            part = k
        }
        guard let node = nodeIndex(ofLayer: name) else { return nil }
        let parts = nodes.indices.filter { nodes[$0].inputs == [node] && nodes[$0].layer is OutputPart }
        guard !parts.isEmpty else {
            if part != nil { throw LayerError(name, "has one output; cut at \(name)") }
            return node
        }
        let k = part ?? 0
        guard let chosen = parts.first(where: { (nodes[$0].layer as? OutputPart)?.index == k }) else {
            throw LayerError(name, "has \(parts.count) outputs (\(name)[0] to \(name)[\(parts.count - 1)]); there is no output \(k)")
        }
        return chosen
    }

    /// The sub-model from the inputs up to the output of layer `layerName` (top level or inside a nested model),
    /// sharing this model's layers and weights. A layer with several outputs is cut at its first (its sequence);
    /// `layer[k]` names output k (a recurrent layer's states follow its sequence).
    public func cut(at layerName: String) throws -> Model {
        if let target = try cutTarget(layerName) {
            var keep = [Bool](repeating: false, count: nodes.count)
            var stack = [target]
            while let i = stack.popLast() {
                if keep[i] { continue }
                keep[i] = true
                stack.append(contentsOf: nodes[i].inputs)
            }
            guard inputNodes.allSatisfy({ keep[$0] }) else {
                throw LayerError(layerName, "does not depend on every model input, so the model cannot be cut there")
            }
            var remap: [Int: Int] = [:]
            var kept: [Node] = []
            for (i, n) in nodes.enumerated() where keep[i] {
                remap[i] = kept.count
                kept.append(Node(layer: n.layer, inputs: n.inputs.compactMap { remap[$0] }, outputShape: n.outputShape))
            }
            return Model(name: name, kerasClassName: kerasClassName == "Sequential" ? "Sequential" : "Functional", nodes: kept,
                         inputNodes: inputNodes.compactMap { remap[$0] }, outputNodes: [remap[target] ?? 0], access: access)
        }
        // Inside a nested model: cut the nested model, then replace it by the cut version in a copy of this graph.
        for n in nodes {
            guard let nested = n.layer as? Model, nested.layer(named: layerName) != nil, let feed = n.inputs.first else { continue }
            let inner = try nested.cut(at: layerName)
            let prefix = try cut(at: nodes[feed].layer.name)
            var b = GraphBuilder(extending: prefix)
            let out = try b.add(inner, inputs: prefix.outputNodes)
            return try b.finish(outputs: [out], inputs: prefix.inputNodes)
        }
        throw LayerError(layerName, "no such layer in model \(name) (see graft summary)")
    }

    /// This model (usually cut) with a new classification head: pooling (if the output is spatial), optional hidden
    /// Dense+ReLU layers with dropout, and a Dense of `classes` units, freshly initialised from `seed`.
    public func replacingHead(_ head: HeadConfig, seed: UInt64) throws -> Model {
        guard outputNodes.count == 1 else { throw LayerError(name, "a new head needs a single-output model") }
        guard head.classes > 0 else { throw LayerError("head", "classes must be positive, got \(head.classes)") }
        var b = GraphBuilder(extending: self, seed: seed)
        var x = outputNodes[0]
        var used = Set(flattenedLayers.map(\.name))
        func fresh(_ n: String) -> String {
            var candidate = n, k = 1
            while used.contains(candidate) { candidate = "\(n)_\(k)"; k += 1 }
            used.insert(candidate)
            return candidate
        }
        if let r = head.recurrent {
            guard nodes[x].outputShape.count == 2 else {
                throw LayerError("head", "a recurrent head reads a sequence [steps, features]; the base ends in \(Shape.describe([-1] + nodes[x].outputShape))")
            }
            let cell: Recurrent.Cell = r.cell == .lstm ? .lstm : r.cell == .gru ? .gru(resetAfter: true) : .simple
            let layer = Recurrent(name: fresh("head_\(r.cell.rawValue)"), cell: cell, settings: Recurrent.Settings(units: r.units))
            // The base's output mask (padding of an Embedding with mask_zero, Masking) reaches the new layer, as in Keras.
            var mask: Int?
            switch maskSource(of: x) {
            case .node(let m): mask = m
            case .make(let kind, let input): mask = try b.add(SequenceMask(name: fresh("head_mask"), kind: kind), inputs: [input])
            case nil: break
            }
            layer.masked = mask != nil
            x = try b.add(layer, inputs: [x] + (mask.map { [$0] } ?? []))
        }
        if nodes.indices.contains(x) && nodes[x].outputShape.count == 3 && head.recurrent == nil {
            switch head.pooling {
            case .avg: x = try b.add(GlobalPooling2D(name: fresh("head_pool"), kind: .average), inputs: [x])
            case .max: x = try b.add(GlobalPooling2D(name: fresh("head_pool"), kind: .max), inputs: [x])
            case .flatten: x = try b.add(Flatten(name: fresh("head_flatten")), inputs: [x])
            case .none: break
            }
        } else if head.recurrent == nil && nodes[x].outputShape.count > 1 {
            x = try b.add(Flatten(name: fresh("head_flatten")), inputs: [x])
        }
        for (i, units) in head.hidden.enumerated() {
            x = try b.add(Dense(name: fresh("head_dense_\(i + 1)"), units: units, activation: .relu), inputs: [x])
            if head.dropout > 0 {
                x = try b.add(InferenceIdentity(name: fresh("head_dropout_\(i + 1)"), kerasClassName: "Dropout", rate: head.dropout), inputs: [x])
            }
        }
        if head.dropout > 0 && head.hidden.isEmpty {
            x = try b.add(InferenceIdentity(name: fresh("head_dropout"), kerasClassName: "Dropout", rate: head.dropout), inputs: [x])
        }
        x = try b.add(Dense(name: fresh("predictions"), units: head.classes, activation: head.activation), inputs: [x])
        return try b.finish(outputs: [x], inputs: inputNodes)
    }
}

extension Model {
    /// When the trainable part of this model is a chain of layers after a fully frozen, deterministic base, the split:
    /// the base (cut at its last node) and the head as its own model sharing the head's layers. Nil otherwise
    /// (trainable layers inside the base, branches in the head, several inputs or outputs, dropout or noise in the base).
    public func frozenBaseSplit() throws -> (base: Model, head: Model)? {
        guard inputNodes.count == 1, outputNodes.count == 1 else { return nil }
        // Walk back from the output while nodes form a single chain.
        var chain: [Int] = []
        var n = outputNodes[0]
        while nodes[n].inputs.count == 1 {
            chain.append(n)
            n = nodes[n].inputs[0]
        }
        // The base ends at the last node before the first trainable layer of the chain (walking from the input).
        let ordered = Array(chain.reversed())
        guard let first = ordered.firstIndex(where: { nodes[$0].layer.hasTrainableParameters }) else { return nil }
        let baseEnd = nodes[ordered[first]].inputs[0]
        var needed = Set<Int>()
        var stack = [baseEnd]
        while let i = stack.popLast() {
            if !needed.insert(i).inserted { continue }
            stack.append(contentsOf: nodes[i].inputs)
        }
        for i in needed {
            let l = nodes[i].layer
            if l.hasTrainableParameters { return nil }
            if let d = l as? InferenceIdentity, d.rate > 0 { return nil }
            if let m = l as? Model, m.flattenedLayers.contains(where: { ($0 as? InferenceIdentity).map { $0.rate > 0 } ?? false }) { return nil }
        }
        for i in needed where (nodes[i].layer as? BatchNormalization).map({ !$0.frozen }) ?? false { return nil }
        // Only worth it when the base does work (has weights): otherwise it would cache the inputs themselves.
        guard needed.contains(where: { !nodes[$0].layer.variables.isEmpty }) else { return nil }
        let base = try cut(at: nodes[baseEnd].layer.name)
        guard base.outputNodes.count == 1, nodes.firstIndex(where: { $0.layer === nodes[baseEnd].layer }) == baseEnd else { return nil }
        var b = GraphBuilder(name: "\(name)_head", kerasClassName: "Functional")
        b.access = access   // the head shares this model's layers
        var x = try b.input(InputLayer(name: "\(name)_features", shape: nodes[baseEnd].outputShape))
        for i in ordered[first...] { x = try b.addBuilt(nodes[i].layer, inputs: [x], outputShape: nodes[i].outputShape) }
        return (base, try b.finish(outputs: [x]))
    }
}

extension GraphBuilder {
    /// A builder that continues an existing model's graph (its layers already built, their weights shared).
    public init(extending model: Model, seed: UInt64 = 0) {
        self.init(name: model.name, kerasClassName: model.kerasClassName == "Sequential" ? "Sequential" : "Functional", seed: seed)
        adopt(model)
    }
}
