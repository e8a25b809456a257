import Foundation
import GraftNN
import GraftTensor

/// Rebuilds a Graft `Model` from a Keras model config (Keras 2 or Keras 3; Sequential, Functional, nested).
public enum KerasModelBuilder {
    /// Parses `json` (the `model_config` attribute, or a `.keras` archive's `config.json`).
    /// `kerasVersion` selects version-specific semantics; nil guesses from the config's shape.
    public static func build(json: String, kerasVersion: String?) throws -> Model {
        guard let data = json.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) else {
            throw KerasError("model config is not valid JSON")
        }
        let major = kerasMajorVersion(kerasVersion, json: json)
        return try build(JSON(object), kerasMajor: major)
    }

    static func kerasMajorVersion(_ version: String?, json: String) -> Int {
        if let v = version, let first = v.split(separator: ".").first, let n = Int(first) { return n }
        return json.contains("\"module\": \"keras.layers\"") || json.contains("\"module\":\"keras.layers\"") ? 3 : 2
    }

    /// Builds `{"class_name": "Sequential" | "Functional" | "Model", "config": …}`.
    static func build(_ j: JSON, kerasMajor: Int) throws -> Model {
        let className = try j["class_name"].string("a model class name")
        switch className {
        case "Sequential":
            return try sequential(j, kerasMajor: kerasMajor)
        case "Functional", "Model":
            return try functional(j, kerasMajor: kerasMajor)
        default:
            throw KerasError("model config: class_name \(className) is not a model (Sequential, Functional or Model)")
        }
    }

    static func isModelClass(_ name: String?) -> Bool {
        name == "Sequential" || name == "Functional" || name == "Model"
    }

    static func layer(from entry: JSON, kerasMajor: Int, operands: [TensorOp.Operand]) throws -> any Layer {
        let className = try entry["class_name"].string("a layer class name")
        if isModelClass(className) { return try build(entry, kerasMajor: kerasMajor) }
        let config = entry["config"]
        let name = config["name"].string ?? entry["name"].string ?? className.lowercased()
        return try KerasLayerFactory.make(className: className, module: entry["module"].string, config: config,
                                          name: name, kerasMajor: kerasMajor, operands: operands)
    }

    // MARK: Sequential

    static func sequential(_ j: JSON, kerasMajor: Int) throws -> Model {
        let config = j["config"]
        let entries = config.array ?? config["layers"].array ?? []
        let name = config["name"].string ?? "sequential"
        guard !entries.isEmpty else { throw KerasError("Sequential model \(name) has no layers") }
        var layerEntries = entries
        var inputShape: [Int]?
        var inputName: String?
        if entries[0]["class_name"].string == "InputLayer" {
            let c = entries[0]["config"]
            inputName = c["name"].string
            inputShape = try KerasLayerFactory.inputShape(c, name: inputName ?? "input")
            layerEntries.removeFirst()
        } else if let first = entries.first {
            let c = first["config"]
            let shapeJSON = [c["batch_input_shape"], c["batch_shape"], config["build_input_shape"], j["build_config"]["input_shape"]]
                .first { !$0.isNull }
            if let dims = shapeJSON?.array, dims.count >= 2 {
                inputShape = try dims.dropFirst().map { $0.isNull ? -1 : try $0.int() }
            }
            if let firstName = c["name"].string { inputName = "\(firstName)_input" }
        }
        guard let shape = inputShape else {
            throw KerasError("Sequential model \(name): no input shape in its config (batch_input_shape, InputLayer or build_config)")
        }
        let layers = try layerEntries.map { try layer(from: $0, kerasMajor: kerasMajor, operands: []) }
        var builder = GraphBuilder(name: name, kerasClassName: "Sequential")
        var x = try builder.input(InputLayer(name: inputName ?? "\(name)_input", shape: shape))
        var wiring = SequenceWiring(rules: kerasMajor >= 3 ? .keras3 : .keras2)
        for l in layers {
            let outputs = try wiring.add(l, inputs: [x], to: &builder)
            guard outputs.count == 1 else { throw KerasError("layer \(l.name): a layer with several outputs cannot be part of a Sequential model", layer: l.name) }
            x = outputs[0]
        }
        return try builder.finish(outputs: [x])
    }

    // MARK: Functional

    struct TensorRef: Hashable { let layer: String; let node: Int; let tensor: Int }

    struct PendingCall {
        let layerName: String
        let nodeIndex: Int
        let refs: [TensorRef]
        /// The mask Keras 3 passes explicitly, and whether the call says (none is a mask too).
        var mask: TensorRef? = nil
        var maskGiven = false
        /// The explicit mask is computed by ops Graft does not read.
        var maskUnread = false
        var kwargs = JSON(nil, path: "")
    }

    /// `[name, node, tensor]` or `[name, node, tensor, kwargs]`.
    static func ref(_ j: JSON) throws -> TensorRef {
        guard let a = j.array, a.count >= 3, let l = a[0].string else {
            throw KerasError("config key \(j.path): expected [layer, node, tensor], found \(j.render)", key: j.path)
        }
        return TensorRef(layer: l, node: try a[1].int(), tensor: try a[2].int())
    }

    /// The inbound nodes of one layer entry: the tensors each call consumes and the math-op operands.
    /// One call of a layer in a config: the tensors it takes (for a recurrent layer its initial states after the
    /// sequence; for attention the value and key after the query), the constants of a math op, the mask Keras 3
    /// passes explicitly (`maskGiven` with a nil `mask`: explicitly none), and the call's keyword arguments.
    struct Call {
        var refs: [TensorRef] = []
        var operands: [TensorOp.Operand] = []
        var mask: TensorRef?
        var maskGiven = false
        var kwargs = JSON(nil, path: "")
    }

    static func calls(_ entry: JSON, name: String) throws -> [Call] {
        guard let nodes = entry["inbound_nodes"].array else { return [] }
        return try nodes.map { node in
            if node.object != nil {
                // Keras 3: {"args": [...], "kwargs": {...}} with __keras_tensor__ objects anywhere in args.
                var refs: [TensorRef] = []
                var operands: [TensorOp.Operand] = []
                func walk(_ x: JSON) throws {
                    if x["class_name"].string == "__keras_tensor__" {
                        operands.append(.input(refs.count))
                        refs.append(try ref(x["config"]["keras_history"]))
                    } else if let arr = x.array {
                        for e in arr { try walk(e) }
                    } else if let v = x.double {
                        operands.append(.constant(Float(v)))
                    }
                }
                for a in node["args"].array ?? [] { try walk(a) }
                // A recurrent layer's initial states follow its sequence, as tf-keras lists them; an attention
                // layer's key follows its value.
                if let states = node["kwargs"]["initial_state"].array { for s in states { try walk(s) } }
                if node["kwargs"]["key"]["class_name"].string == "__keras_tensor__" { try walk(node["kwargs"]["key"]) }
                if node["kwargs"]["value"]["class_name"].string == "__keras_tensor__" { try walk(node["kwargs"]["value"]) }
                // Keras 3 passes masks explicitly (computed by ops in the graph).
                let m = node["kwargs"]["mask"]
                var call = Call(refs: refs, operands: operands, kwargs: node["kwargs"])
                call.maskGiven = node["kwargs"].object?.keys.contains("mask") ?? false
                call.mask = m["class_name"].string == "__keras_tensor__" ? try ref(m["config"]["keras_history"]) : nil
                return call
            }
            // Keras 2: [[name, node, tensor, kwargs], ...]; TFOpLambda writes its one input bare, [name, node, tensor,
            // kwargs], and keeps its second operand in kwargs["y"].
            guard var items = node.array else { throw KerasError("layer \(name): inbound node \(node.path) is malformed", layer: name) }
            if items.first?.string != nil { items = [node] }
            var refs = try items.map { try ref($0) }
            var operands: [TensorOp.Operand] = refs.indices.map { .input($0) }
            var call = Call()
            if let first = items.first, let kwargs = first.array.flatMap({ $0.count > 3 ? $0[3] : nil }), kwargs.object != nil {
                call.kwargs = kwargs
                let y = kwargs["y"]
                if let v = y.double {
                    operands.append(.constant(Float(v)))
                } else if y.array != nil {
                    operands.append(.input(refs.count))
                    refs.append(try ref(y))
                }
                // tf-keras's MultiHeadAttention keeps its value and key in the call's keyword arguments.
                for key in ["value", "key"] where kwargs[key].array?.first?.string != nil { refs.append(try ref(kwargs[key])) }
            }
            call.refs = refs
            call.operands = operands
            return call
        }
    }

    /// True when the config numbers the calls of this nested model from 1: a model built on its own input has a
    /// call of its own (input to output) that a config leaves out but counts. Keras 3 does so for a Functional
    /// model (not a Sequential one); tf-keras for any model built on an input (`_should_skip_first_node`), as
    /// Keras 2.2 did for every nested model.
    static func skipsFirstNode(_ entry: JSON) -> Bool {
        let keras3 = entry["inbound_nodes"].array?.first?.object != nil
        if entry["class_name"].string != "Sequential" { return true }
        if keras3 { return false }
        let layers = entry["config"]["layers"].array ?? entry["config"].array ?? []
        guard let head = layers.first else { return false }
        return head["class_name"].string == "InputLayer" || !head["config"]["batch_input_shape"].isNull
    }

    static func functional(_ j: JSON, kerasMajor: Int) throws -> Model {
        let config = j["config"]
        let name = config["name"].string ?? "model"
        guard let entries = config["layers"].array, !entries.isEmpty else {
            throw KerasError("model \(name): config has no layers")
        }
        var builder = GraphBuilder(name: name, kerasClassName: "Functional")
        var nodeOf: [TensorRef: Int] = [:]
        var pending: [(call: PendingCall, layer: any Layer)] = []
        var names = Set<String>()
        var firstNode: [String: Int] = [:]
        // Layers some call or output refers to by node 0.
        var referencesNodeZero = Set<String>()
        for entry in entries {
            let layerName = entry["name"].string ?? entry["config"]["name"].string ?? ""
            for c in (try? calls(entry, name: layerName)) ?? [Call]() {
                for r in c.refs where r.node == 0 { referencesNodeZero.insert(r.layer) }
            }
        }
        for r in (try? refList(config["output_layers"])) ?? [] where r.node == 0 { referencesNodeZero.insert(r.layer) }
        let skipped = unreadMaskOps(entries, outputs: (try? refList(config["output_layers"])) ?? [])
        for entry in entries {
            let layerName = entry["name"].string ?? entry["config"]["name"].string ?? ""
            guard !layerName.isEmpty else { throw KerasError("model \(name): a layer entry has no name (\(entry.path))") }
            names.insert(layerName)
            if skipped.contains(layerName) { continue }
            let layerCalls = try calls(entry, name: layerName)
            if entry["class_name"].string == "InputLayer" {
                let l = try layer(from: entry, kerasMajor: kerasMajor, operands: [])
                guard let input = l as? InputLayer else { continue }
                nodeOf[TensorRef(layer: layerName, node: 0, tensor: 0)] = try builder.input(input)
                continue
            }
            guard !layerCalls.isEmpty else { continue }   // a layer never called in this model
            var e = entry
            if isBareOp(entry) {
                // Keras 3's legacy .h5 writer drops the `module` of bare ops; their calls give them away.
                var dict = entry.object ?? [:]
                dict["module"] = "keras.src.ops.numpy"
                e = JSON(dict, path: entry.path)
            }
            let l = try layer(from: e, kerasMajor: kerasMajor, operands: layerCalls[0].operands)
            // A writer that numbered from 0 anyway is read as it wrote.
            let first = l is Model && skipsFirstNode(entry) && !referencesNodeZero.contains(layerName) ? 1 : 0
            firstNode[layerName] = first
            for (k, c) in layerCalls.enumerated() {
                // A mask computed by ops Graft does not read is left to the mask rules, which computed it in Keras.
                let unread = c.mask.map { skipped.contains($0.layer) } ?? false
                pending.append((PendingCall(layerName: layerName, nodeIndex: first + k, refs: c.refs, mask: unread ? nil : c.mask,
                                            maskGiven: c.maskGiven, maskUnread: unread, kwargs: c.kwargs), l))
            }
        }
        // Place the calls in dependency order (configs are not always topologically sorted), always the ready call
        // that comes first in the config: a sorted config keeps its order, and the work is O(n log n) in the number
        // of calls (repeated passes over the pending list took 73 s for 24,000 layers listed in reverse).
        func key(_ r: TensorRef) -> TensorRef { TensorRef(layer: r.layer, node: r.node, tensor: 0) }
        var waiting = [Int](repeating: 0, count: pending.count)
        var dependents: [TensorRef: [Int]] = [:]
        var ready = MinHeap()
        for (i, p) in pending.enumerated() {
            let unresolved = Set((p.call.refs + (p.call.mask.map { [$0] } ?? [])).map(key)).filter { nodeOf[$0] == nil }
            waiting[i] = unresolved.count
            for r in unresolved { dependents[r, default: []].append(i) }
            if unresolved.isEmpty { ready.push(i) }
        }
        var placed = 0
        // Keras 3 and tf-keras propagate masks by different rules; Keras 3 also writes some as ops and arguments.
        let keras3 = entries.contains { $0["inbound_nodes"].array?.first?.object != nil }
        var wiring = SequenceWiring(rules: keras3 ? .keras3 : .keras2)
        let clearing = keras3 ? try maskClearing(entries, config: config, pending: pending.map(\.call),
                                                  isAttention: pending.map { $0.layer is MultiHeadAttention }, firstNode: firstNode) : [:]
        while let i = ready.pop() {
            let p = pending[i]
            let inputs = try p.call.refs.map { r -> Int in
                guard let n = nodeOf[r] else {
                    throw KerasError("layer \(p.call.layerName): input \(r.layer)[\(r.node)][\(r.tensor)]: layer \(r.layer) has no output \(r.tensor)", layer: p.call.layerName)
                }
                return n
            }
            let produced = TensorRef(layer: p.call.layerName, node: p.call.nodeIndex, tensor: 0)
            let mask = try p.call.mask.map { r -> Int in
                guard let n = nodeOf[r] else { throw KerasError("layer \(p.call.layerName): its mask \(r.layer) is not computed in the model", layer: p.call.layerName) }
                return n
            }
            try KerasSequenceLayers.configure(p.layer, call: p.call.kwargs)
            let source: SequenceWiring.MaskSource = !p.call.maskGiven ? .rules : p.call.maskUnread ? .asBuilt : .given(mask)
            for (k, n) in try wiring.add(p.layer, inputs: inputs, mask: source, cleared: clearing[i] ?? [], to: &builder).enumerated() {
                nodeOf[TensorRef(layer: p.call.layerName, node: p.call.nodeIndex, tensor: k)] = n
            }
            placed += 1
            for j in dependents.removeValue(forKey: produced) ?? [] {
                waiting[j] -= 1
                if waiting[j] == 0 { ready.push(j) }
            }
        }
        if placed < pending.count, let first = waiting.indices.first(where: { waiting[$0] > 0 }) {
            let p = pending[first]
            if let missing = p.call.refs.first(where: { !names.contains($0.layer) }) {
                throw KerasError("layer \(p.call.layerName): inbound layer \(missing.layer) does not exist in model \(name)", layer: p.call.layerName)
            }
            throw KerasError("layer \(p.call.layerName): its inputs can never be computed (a cycle or a missing node) in model \(name)", layer: p.call.layerName)
        }
        let outputs = try refList(config["output_layers"]).map { r -> Int in
            guard let idx = nodeOf[r] else {
                throw KerasError("model \(name): output \(r.layer) is not a layer of the model")
            }
            return idx
        }
        let inputs = try refList(config["input_layers"]).map { r -> Int in
            guard let idx = nodeOf[TensorRef(layer: r.layer, node: r.node, tensor: 0)] else {
                throw KerasError("model \(name): input \(r.layer) is not an InputLayer of the model")
            }
            return idx
        }
        return try builder.finish(outputs: outputs, inputs: inputs)
    }

    /// For each pending call (by index), the positions of its inputs whose masks a Keras 3 MultiHeadAttention has
    /// removed by the time Keras runs it: tensors an attention call takes that runs earlier (`KerasRunOrder`).
    static func maskClearing(_ entries: [JSON], config: JSON, pending: [PendingCall], isAttention: [Bool],
                             firstNode: [String: Int]) throws -> [Int: Set<Int>] {
        guard isAttention.contains(true) else { return [:] }
        var runCalls: [KerasRunOrder.Call: [TensorRef]] = [:]
        for entry in entries {
            let layerName = entry["name"].string ?? entry["config"]["name"].string ?? ""
            for (k, node) in (entry["inbound_nodes"].array ?? []).enumerated() where node.object != nil {
                runCalls[KerasRunOrder.Call(layer: layerName, node: (firstNode[layerName] ?? 0) + k)] = KerasRunOrder.inputs(of: node)
            }
        }
        let position = KerasRunOrder.positions(calls: runCalls, outputs: try refList(config["output_layers"]))
        func runs(_ p: PendingCall) -> Int? { position[KerasRunOrder.Call(layer: p.layerName, node: p.nodeIndex)] }
        // When each tensor loses its mask: the first attention call on it that Keras runs.
        var clearedAt: [TensorRef: Int] = [:]
        for (p, attention) in zip(pending, isAttention) where attention {
            guard let at = runs(p) else { continue }
            for r in p.refs { clearedAt[r] = min(clearedAt[r] ?? at, at) }
        }
        var out: [Int: Set<Int>] = [:]
        for (i, p) in pending.enumerated() {
            guard let at = runs(p) else { continue }
            let cleared = Set(p.refs.indices.filter { (clearedAt[p.refs[$0]] ?? Int.max) < at })
            if !cleared.isEmpty { out[i] = cleared }
        }
        return out
    }

    /// The ops Graft reads as masks (`SequenceMask`).
    static let maskOps: Set<String> = ["NotEqual", "Any", "All", "LogicalOr", "LogicalAnd"]

    /// The layers of a Keras 3 config that only compute masks (every use is a `mask=` argument or another such
    /// layer) with some op Graft does not read (Keras 3 writes a Concatenate's mask as convert_to_tensor,
    /// expand_dims, zeros_like, logical_or, a Concatenate of masks and any): left out, their masks inferred by the
    /// rules that made them.
    static func unreadMaskOps(_ entries: [JSON], outputs: [TensorRef]) -> Set<String> {
        var uses: [String: [(by: String, mask: Bool)]] = [:]
        var inputsOf: [String: Set<String>] = [:]
        var className: [String: String] = [:]
        for entry in entries {
            let layerName = entry["name"].string ?? entry["config"]["name"].string ?? ""
            className[layerName] = entry["class_name"].string ?? ""
            for c in (try? calls(entry, name: layerName)) ?? [Call]() {
                for r in c.refs { uses[r.layer, default: []].append((layerName, false)); inputsOf[layerName, default: []].insert(r.layer) }
                if let m = c.mask { uses[m.layer, default: []].append((layerName, true)) }
            }
        }
        let outputLayers = Set(outputs.map(\.layer))
        var maskOnly = Set<String>()
        var changed = true
        while changed {
            changed = false
            for (layer, list) in uses where !maskOnly.contains(layer) && !outputLayers.contains(layer) && className[layer] != "InputLayer" {
                if list.allSatisfy({ $0.mask || maskOnly.contains($0.by) }) {
                    maskOnly.insert(layer)
                    changed = true
                }
            }
        }
        // A chain Graft reads entirely is kept; one with any other op is left out as a whole.
        var unread = Set<String>()
        func readable(_ layer: String, _ seen: inout Set<String>) -> Bool {
            guard maskOnly.contains(layer) else { return true }
            if !seen.insert(layer).inserted { return true }
            return maskOps.contains(className[layer] ?? "") && (inputsOf[layer] ?? []).allSatisfy { readable($0, &seen) }
        }
        for layer in maskOnly {
            var seen = Set<String>()
            if !readable(layer, &seen) { unread.insert(layer) }
        }
        // The inputs of a chain left out that serve only it go too.
        changed = true
        while changed {
            changed = false
            for layer in maskOnly where !unread.contains(layer) {
                if let list = uses[layer], list.allSatisfy({ $0.mask || unread.contains($0.by) }), list.contains(where: { unread.contains($0.by) }) {
                    unread.insert(layer)
                    changed = true
                }
            }
        }
        return unread
    }

    /// True for a Keras 3 math op written without its module: a merge-named class called with separate
    /// arguments (`add(x, 3.0)`, `multiply(x, y)`) instead of one list of tensors (`Add()([x, y])`).
    static func isBareOp(_ entry: JSON) -> Bool {
        // The mask ops have no layer of their name.
        if entry["module"].isNull, ["NotEqual", "Any", "All", "LogicalOr", "LogicalAnd"].contains(entry["class_name"].string ?? "") {
            return true
        }
        guard entry["module"].isNull,
              ["Add", "Subtract", "Multiply", "Maximum", "Minimum", "Divide", "TrueDivide"].contains(entry["class_name"].string ?? ""),
              let first = entry["inbound_nodes"].array?.first, first.object != nil,
              let args = first["args"].array else { return false }
        return args.count != 1 || args[0].array == nil
    }

    /// `[["a", 0, 0], ["b", 0, 0]]` or a single `["a", 0, 0]`.
    static func refList(_ j: JSON) throws -> [TensorRef] {
        guard let a = j.array, !a.isEmpty else { throw KerasError("config key \(j.path): expected layer references, found \(j.render)", key: j.path) }
        if a[0].string != nil { return [try ref(j)] }
        return try a.map { try ref($0) }
    }
}

/// A binary min-heap of indices (the ready calls of `functional`, smallest config position first).
struct MinHeap {
    private var items: [Int] = []

    mutating func push(_ x: Int) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[parent] > items[i] else { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> Int? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l] < items[m] { m = l }
                if r < items.count && items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
