import Foundation
import GraftNN
import GraftTensor

/// Writes a Graft `Model` as a Keras model config: Keras 2 style (what `.h5` files hold, read by tf-keras and by
/// Keras 3's legacy loader) or Keras 3 style (what `.keras` archives hold: `module`, `registered_name`, and
/// inbound nodes as `args` of Keras tensors). Layers Keras cannot express are refused with a message naming them.
public enum KerasConfigEncoder {
    /// Which Keras writes the config: Keras 2 (`inbound_nodes` as lists) or Keras 3 (`args` of Keras tensors).
    public enum Style: Sendable { case keras2, keras3 }

    /// The model config JSON object (`{"class_name": …, "config": …}`).
    public static func encode(_ model: Model, style: Style = .keras2, nested: Bool = false) throws -> [String: Any] {
        let k3 = style == .keras3
        // A nested Sequential is written as Functional in a Keras 2-style config: tf-keras numbers its calls from 1,
        // Keras 3 from 0, but both number a nested Functional's from 1.
        if writesAsSequential(model) && !(nested && !k3) {
            var layers: [[String: Any]] = []
            for node in model.nodes where !(node.layer is GraphPlumbing) {
                if let input = node.layer as? InputLayer {
                    layers.append(wrap(["class_name": "InputLayer", "config": inputConfig(input, style: style)], style))
                } else {
                    if let pair = try hardSigmoidPair(node.layer, style: style) {
                        layers += pair   // hard_sigmoid as Rescaling + ReLU: the same in every Keras
                    } else {
                        layers.append(try entry(node.layer, style: style))
                    }
                }
            }
            if k3 {
                let shape: [Any] = [NSNull()] + (model.inputShapes.first ?? []).map { $0 < 0 ? NSNull() as Any : $0 as Any }
                return ["module": "keras", "class_name": "Sequential", "registered_name": NSNull(),
                        "config": ["name": model.name, "trainable": true, "layers": layers],
                        "build_config": ["input_shape": shape]]
            }
            return ["class_name": "Sequential", "config": ["name": model.name, "layers": layers]]
        }
        var calls: [ObjectIdentifier: Int] = [:]
        var nodeRef: [Int: (String, Int)] = [:]
        var entries: [[String: Any]] = []
        var entryIndex: [ObjectIdentifier: Int] = [:]
        /// A node's inputs as Keras names them (layer, call, output index): its masks apart (a mask's own inputs are
        /// masks, not apart).
        func kerasInputs(_ node: Model.Node, masks: Bool = false) -> [(name: String, call: Int, index: Int, shape: [Int])] {
            node.inputs.filter { (model.nodes[$0].layer is SequenceMask && !(node.layer is SequenceMask)) == masks }.map { j in
                let (src, index) = source(of: j, in: model)
                let (name, k) = nodeRef[src] ?? ("?", 0)
                return (name, k, index, model.nodes[j].outputShape)
            }
        }
        var consumers = [[Int]](repeating: [], count: model.nodes.count)
        for (i, node) in model.nodes.enumerated() { for j in node.inputs { consumers[j].append(i) } }
        for (i, node) in model.nodes.enumerated() where !(node.layer is OutputPart) {
            if let m = node.layer as? SequenceMask {
                // Keras 3 writes masks as ops and passes them to the layers that take them; Keras 2 infers them.
                guard k3, consumers[i].contains(where: { takesOneMask(model.nodes[$0].layer) || model.nodes[$0].layer is SequenceMask }) else { continue }
                let ops = maskOps(m, inputs: kerasInputs(node).map { kerasTensor(name: $0.name, node: $0.call, index: $0.index, shape: $0.shape) },
                                  shape: node.outputShape, name: kerasName(m.name))
                nodeRef[i] = (kerasName(m.name), 0)
                entries += ops
                continue
            }
            let id = ObjectIdentifier(node.layer)
            let call = calls[id, default: 0]
            calls[id] = call + 1
            // A nested model's calls count from 1 (its own input-to-output call comes first; see
            // KerasModelBuilder.skipsFirstNode): in Keras 3 a Functional one's, in tf-keras every one's.
            let skipsFirst = (node.layer as? Model).map { !k3 || !writesAsSequential($0) } ?? false
            nodeRef[i] = (node.layer.name, call + (skipsFirst ? 1 : 0))
            let inbound: Any
            if k3 {
                // Keras 3: {"args": [tensor] or [[tensors…]] for layers taking a list, "kwargs": {}}.
                var tensors: [Any] = kerasInputs(node).map { kerasTensor(name: $0.name, node: $0.call, index: $0.index, shape: $0.shape) }
                var kwargs: [String: Any] = [:]
                if takesInitialStates(node.layer), tensors.count > 1 {
                    // A recurrent layer's initial states are a keyword argument in Keras 3.
                    kwargs["initial_state"] = Array(tensors.dropFirst())
                    tensors = [tensors[0]]
                }
                if takesOneMask(node.layer) {
                    // Said explicitly either way: Keras 3 would otherwise infer it by its own rules.
                    kwargs["mask"] = kerasInputs(node, masks: true).first.map {
                        kerasTensor(name: $0.name, node: $0.call, index: $0.index, shape: $0.shape) as Any
                    } ?? NSNull()
                }
                kwargs.merge(attentionArguments(node.layer)) { $1 }
                if node.layer is MultiHeadAttention, tensors.count > 2 {
                    kwargs["key"] = tensors[2]
                    tensors = Array(tensors.prefix(2))
                }
                let takesList = node.layer is Merge || node.layer is Concatenate || node.layer is DotAttention
                    || (tensors.count > 1 && !(node.layer is MultiHeadAttention))
                let args: [Any] = takesList ? [tensors] : tensors
                inbound = ["args": args, "kwargs": kwargs] as [String: Any]
            } else {
                var items = kerasInputs(node).map { [$0.name, $0.call, $0.index, [String: Any]()] as [Any] }
                if node.layer is MultiHeadAttention, items.count > 1 {
                    // tf-keras: the value and key are keyword arguments of the query's entry.
                    // In the call's order, value before key: tf-keras rebuilds the tensors of a call in the order its
                    // keyword arguments are listed, which decides its layer order and so its positional weight load.
                    var kwargs: [(String, Any)] = [("value", Array(items[1].prefix(3)))]
                    if items.count > 2 { kwargs.append(("key", Array(items[2].prefix(3)))) }
                    kwargs += attentionArguments(node.layer).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
                    items = [Array(items[0].prefix(3)) + [orderedObject(kwargs)]]
                } else if node.layer is DotAttention {
                    // tf-keras writes a call's keyword arguments on every entry and reads the last one's.
                    for k in items.indices { items[k][3] = attentionArguments(node.layer) }
                }
                inbound = items
            }
            if let k = entryIndex[id] {
                var nodes = entries[k]["inbound_nodes"] as? [Any] ?? []
                nodes.append(inbound)
                entries[k]["inbound_nodes"] = nodes
                continue
            }
            if let pair = try hardSigmoidPair(node.layer, style: style) {
                guard (calls[id] ?? 0) <= 1 else { throw KerasError("layer \(node.layer.name): a shared hard_sigmoid layer cannot be written", layer: node.layer.name) }
                // Rescaling "<name>_affine" takes the inputs; ReLU "<name>" keeps the name later layers refer to.
                var first = pair[0], second = pair[1]
                first["name"] = "\(node.layer.name)_affine"
                first["inbound_nodes"] = [inbound]
                second["name"] = node.layer.name
                let link: Any = k3
                    ? ["args": [kerasTensor(name: "\(node.layer.name)_affine", node: 0, shape: node.outputShape)], "kwargs": [String: Any]()] as [String: Any]
                    : [["\(node.layer.name)_affine", 0, 0, [String: Any]()]] as [Any]
                second["inbound_nodes"] = [link]
                entries.append(first)
                entryIndex[id] = entries.count
                entries.append(second)
                continue
            }
            var e: [String: Any]
            if let input = node.layer as? InputLayer {
                e = wrap(["class_name": "InputLayer", "config": inputConfig(input, style: style)], style)
            } else {
                e = try entry(node.layer, style: style)
            }
            e["name"] = node.layer.name
            e["inbound_nodes"] = node.inputs.isEmpty ? [] : [inbound]
            entryIndex[id] = entries.count
            entries.append(e)
        }
        // Keras 3 writes a single input or output as one reference, not a list of one.
        func refs(_ nodes: [Int]) -> Any {
            let list: [[Any]] = nodes.map { n in
                let (src, index) = source(of: n, in: model)
                return [model.nodes[src].layer.name, nodeRef[src]?.1 ?? 0, index]
            }
            // Keras 3's legacy loader also needs it for a model nested in another (tf-keras reads both forms).
            return (k3 || nested) && list.count == 1 ? list[0] : list
        }
        let config: [String: Any] = ["name": model.name, "layers": entries, "trainable": true,
                                     "input_layers": refs(model.inputNodes), "output_layers": refs(model.outputNodes)]
        if k3 {
            return ["module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional", "config": config]
        }
        return ["class_name": "Functional", "config": config]
    }

    /// The layers (nested models searched) that take masks, each with which of its inputs' masks it takes
    /// (`query value key` for attention).
    static func maskUse(_ m: Model) -> [String: String] {
        var out: [String: String] = [:]
        for l in m.layers {
            if (l as? Recurrent)?.masked == true || (l as? Bidirectional)?.masked == true || l is MaskedAveragePooling1D {
                out[l.name] = "sequence"
            }
            let a = (l as? DotAttention)?.inputs ?? (l as? MultiHeadAttention)?.inputs
            if let a, a.queryMask || a.valueMask || a.keyMask {
                out[l.name] = [a.queryMask ? "query" : "", a.valueMask ? "value" : "", a.keyMask ? "key" : ""].joined(separator: " ")
            }
            if let nested = l as? Model { out.merge(maskUse(nested)) { $1 } }
        }
        return out
    }

    /// The first layer (by name) that would take other masks than the model's when `config` is read with the rules of
    /// the Keras that reads it.
    static func layerMaskedOtherwise(_ model: Model, config: String, kerasVersion: String) throws -> (name: String, masked: Bool)? {
        let use = maskUse(model)
        guard !use.isEmpty || model.nodes.contains(where: { $0.layer is SequenceMask }) else { return nil }
        let rebuilt = try Initializer.$skipRandom.withValue(true) { try KerasModelBuilder.build(json: config, kerasVersion: kerasVersion) }
        let other = maskUse(rebuilt)
        guard let first = Set(use.keys).union(other.keys).sorted().first(where: { use[$0] != other[$0] }) else { return nil }
        return (first, use[first] != nil)
    }

    /// A Keras 2-style config leaves masks to the reader's rules (tf-keras's), which may mask other layers than the
    /// model does (Keras 3 drops the mask of a recurrent layer given initial states, and its MultiHeadAttention
    /// removes the masks of the tensors it takes; tf-keras keeps them): such a model is refused, naming a layer, rather
    /// than written to compute something else.
    static func requireInferredMasks(_ model: Model, config: String) throws {
        for l in model.layers {
            if let a = l as? MultiHeadAttention, a.keras3Softmax, a.inputs.returnScores || a.dropout > 0,
               a.inputs.queryMask || a.inputs.valueMask || a.inputs.keyMask || a.inputs.causal {
                throw KerasError("layer \(l.name): Keras 3 gives a fully masked query no attention where tf-keras spreads it evenly; an .h5 file would be read the tf-keras way; write .keras or .weights.h5 instead", layer: l.name)
            }
        }
        if let (first, masked) = try layerMaskedOtherwise(model, config: config, kerasVersion: KerasWriter.kerasVersionWritten) {
            throw KerasError("layer \(first): Keras 2's mask rules would \(masked ? "not mask it" : "mask it") in an .h5 file; write .keras or .weights.h5 instead", layer: first)
        }
    }

    /// The attention a `.keras` file would give differently from the model's is refused, naming the layer: tf-keras
    /// spreads a fully masked query's attention evenly where Keras 3 gives it none, and keeps the masks Keras 3's
    /// MultiHeadAttention removes from the tensors it takes (a `.keras` file is read the Keras 3 way).
    static func requireKeras3Semantics(_ model: Model, config: String) throws {
        try requireKeras3Softmax(model)
        if let (first, masked) = try layerMaskedOtherwise(model, config: config, kerasVersion: KerasWriter.keras3VersionWritten) {
            throw KerasError("layer \(first): Keras 3's mask rules would \(masked ? "not mask it" : "mask it") in a .keras file (its MultiHeadAttention removes the masks of the tensors it takes); write .h5 instead", layer: first)
        }
    }

    /// Refuses a tf-keras attention whose scores or dropout see a fully masked query (Keras 3 reads it otherwise).
    static func requireKeras3Softmax(_ model: Model) throws {
        for l in model.layers {
            if let a = l as? MultiHeadAttention, !a.keras3Softmax, a.inputs.returnScores || a.dropout > 0,
               a.inputs.queryMask || a.inputs.valueMask || a.inputs.keyMask || a.inputs.causal {
                throw KerasError("layer \(l.name): tf-keras spreads a fully masked query's attention evenly where Keras 3 gives it none; a .keras file would be read the Keras 3 way; write .h5 instead", layer: l.name)
            }
            if let nested = l as? Model { try requireKeras3Softmax(nested) }
        }
    }

    /// A name Keras 3 accepts for an op Graft names (`embed/mask@3` → `embed_mask_3`).
    static func kerasName(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
    }

    /// A mask as the Keras 3 ops that compute it (`not_equal`, `any`, `all`, `logical_or`, `logical_and`), the last one
    /// named `name`.
    static func maskOps(_ m: SequenceMask, inputs: [[String: Any]], shape: [Int], name: String) -> [[String: Any]] {
        func op(_ cls: String, _ opName: String, args: [Any], config: [String: Any] = [:]) -> [String: Any] {
            var c = config
            c["name"] = opName
            return ["module": "keras.src.ops.numpy", "class_name": cls, "registered_name": cls, "name": opName, "config": c,
                    "inbound_nodes": [["args": args, "kwargs": [String: Any]()] as [String: Any]]]
        }
        let last: [String: Any] = ["axis": -1, "keepdims": false]
        switch m.kind {
        case .notEqual(let v):
            return [op("NotEqual", name, args: [inputs[0], Double(v)])]
        case .anyAlongLastAxis:
            return [op("Any", name, args: [inputs[0]], config: last)]
        case .allAlongLastAxis:
            return [op("All", name, args: [inputs[0]], config: last)]
        case .anyNotEqual(let v):
            let inner = "\(name)_not_equal"
            var elementShape = shape
            elementShape.append(-1)
            return [op("NotEqual", inner, args: [inputs[0], Double(v)]),
                    op("Any", name, args: [kerasTensor(name: inner, node: 0, shape: elementShape)], config: last)]
        case .any, .all:
            let cls = m.kind == .any ? "LogicalOr" : "LogicalAnd"
            guard inputs.count > 1 else { return [op(cls, name, args: [inputs[0], inputs[0]])] }
            var ops: [[String: Any]] = []
            var acc = inputs[0]
            for (k, next) in inputs.dropFirst().enumerated() {
                let opName = k == inputs.count - 2 ? name : "\(name)_\(k + 1)"
                ops.append(op(cls, opName, args: [acc, next]))
                acc = kerasTensor(name: opName, node: 0, shape: shape)
            }
            return ops
        }
    }

    /// The node and output index Keras would name for node `n`: an `OutputPart` stands for output `index` of the
    /// layer it takes apart.
    static func source(of n: Int, in model: Model) -> (node: Int, index: Int) {
        guard let part = model.nodes[n].layer as? OutputPart, let from = model.nodes[n].inputs.first else { return (n, 0) }
        return (from, part.index)
    }

    /// A Keras 3 `__keras_tensor__` reference to the output of `name`'s call `node`.
    static func kerasTensor(name: String, node: Int, index: Int = 0, shape: [Int]) -> [String: Any] {
        var dims: [Any] = [NSNull()]
        for d in shape { dims.append(d < 0 ? NSNull() as Any : d as Any) }
        let history: [Any] = [name, node, index]
        let config: [String: Any] = ["shape": dims, "dtype": "float32", "keras_history": history]
        return ["class_name": "__keras_tensor__", "config": config]
    }

    /// An Activation layer applying hard_sigmoid, written as `Rescaling(s, 0.5)` then `ReLU(max_value=1)`:
    /// Keras 2 defines hard_sigmoid as clip(0.2·x + 0.5, 0, 1), Keras 3 as relu6(x + 3)/6 = clip(x/6 + 0.5, 0, 1), and
    /// Keras 3 reads the name in either kind of file with its own meaning. Written by name only where that is exact
    /// (Keras 3's meaning in a Keras 3 file). Returns nil when no expansion is needed.
    static func hardSigmoidPair(_ l: any Layer, style: Style) throws -> [[String: Any]]? {
        guard let a = l as? ActivationLayer, case .hardSigmoid(let keras2) = a.activation else { return nil }
        if style == .keras3 && !keras2 { return nil }
        let affine: [String: Any] = ["name": "\(a.name)_affine", "trainable": true, "dtype": "float32",
                                     "scale": keras2 ? 0.2 : 1.0 / 6, "offset": 0.5]
        let clip: [String: Any] = ["name": a.name, "trainable": true, "dtype": "float32",
                                   "max_value": 1.0, "negative_slope": 0.0, "threshold": 0.0]
        return [wrap(["class_name": "Rescaling", "config": affine], style), wrap(["class_name": "ReLU", "config": clip], style)]
    }

    /// A class keras.applications defines (ConvNeXt's `LayerScale`): Keras 3 finds it by its module; a Keras 2-style
    /// config names the class alone, as Keras 3 writes it in a legacy `.h5`.
    static func applicationEntry(_ cls: String, module: String, config: [String: Any], style: Style) -> [String: Any] {
        guard style == .keras3 else { return ["class_name": cls, "config": config] }
        return ["module": "keras.src.applications.\(module)", "class_name": cls, "registered_name": cls, "config": config]
    }

    /// Adds Keras 3's `module` and `registered_name` to a built-in layer's entry.
    static func wrap(_ e: [String: Any], _ style: Style) -> [String: Any] {
        guard style == .keras3 else { return e }
        var w = e
        w["module"] = "keras.layers"
        w["registered_name"] = NSNull()
        return w
    }

    /// The config as a JSON string: keys sorted, except in objects made by `orderedObject`.
    public static func json(_ model: Model, style: Style = .keras2) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: try encode(model, style: style), options: [.sortedKeys])
        return removingOrderPrefixes(String(decoding: data, as: UTF8.self))
    }

    /// The prefix that makes `orderedObject`'s keys sort in their given order; serialized as `\u0001`.
    static let orderMark = "\u{1}"

    /// A JSON object whose keys keep the given order in `json` (each key is prefixed with a control character and a
    /// two-digit position, which sorted serialization puts in order and `removingOrderPrefixes` removes).
    static func orderedObject(_ pairs: [(String, Any)]) -> [String: Any] {
        precondition(pairs.count < 100)
        var out: [String: Any] = [:]
        for (k, (key, value)) in pairs.enumerated() {
            out[orderMark + String(format: "%02d", k) + key] = value
        }
        return out
    }

    /// `json`'s text without the order prefixes (no other string starts with one: names holding control characters are
    /// refused when a model is built, and every other string the encoder writes is its own).
    static func removingOrderPrefixes(_ text: String) -> String {
        text.replacing(/"\\u0001\d\d/, with: "\"")
    }

    /// A Sequential model that is a chain is written as one; anything else as Functional.
    static func writesAsSequential(_ m: Model) -> Bool { m.kerasClassName == "Sequential" && isChain(m) }

    /// True for a chain of layers as Keras sees it (masks do not count as inputs).
    static func isChain(_ m: Model) -> Bool {
        let inputsOf = KerasWriter.keras2Inputs(m)
        let real = m.nodes.indices.filter { !(m.nodes[$0].layer is GraphPlumbing) }
        guard m.inputNodes == [0], real.first == 0, let last = real.last, m.outputNodes == [last] else { return false }
        return real.enumerated().allSatisfy { k, i in k == 0 ? inputsOf[i].isEmpty : inputsOf[i] == [real[k - 1]] }
    }

    /// Layers that take one mask (`mask=`).
    static func takesOneMask(_ l: any Layer) -> Bool { l is Recurrent || l is Bidirectional || l is MaskedAveragePooling1D }

    /// An attention call's keyword arguments.
    static func attentionArguments(_ l: any Layer) -> [String: Any] {
        let inputs = (l as? DotAttention)?.inputs ?? (l as? MultiHeadAttention)?.inputs
        guard let inputs else { return [:] }
        var out: [String: Any] = [:]
        if inputs.causal { out["use_causal_mask"] = true }
        if inputs.returnScores { out["return_attention_scores"] = true }
        return out
    }

    /// A recurrent layer (or Bidirectional) whose extra inputs are initial states.
    static func takesInitialStates(_ l: any Layer) -> Bool {
        (l as? Recurrent)?.initialStateInputs ?? (l as? Bidirectional)?.initialStateInputs ?? false
    }

    static func inputConfig(_ l: InputLayer, style: Style) -> [String: Any] {
        let shape: [Any] = [NSNull()] + l.shape.map { $0 < 0 ? NSNull() as Any : $0 as Any }
        if style == .keras3 { return ["batch_shape": shape, "dtype": "float32", "sparse": false, "name": l.name] }
        return ["batch_input_shape": shape, "dtype": "float32", "sparse": false, "ragged": false, "name": l.name]
    }

    static func base(_ l: any Layer) -> [String: Any] {
        let trainable = l.variables.isEmpty || l.variables.contains { $0.variable.isTrainable }
        return ["name": l.name, "trainable": trainable, "dtype": "float32"]
    }

    static func activationName(_ a: ActivationKind, layer: String, style: Style) throws -> String {
        switch a {
        case .linear: return "linear"
        case .relu: return "relu"
        case .relu6: return "relu6"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .softmax: return "softmax"
        case .softplus: return "softplus"
        case .softsign: return "softsign"
        case .exponential: return "exponential"
        case .swish: return "swish"
        case .elu(let alpha) where alpha == 1: return "elu"
        case .selu: return "selu"
        case .gelu(approximate: false): return "gelu"
        case .hardSigmoid(keras2: true) where style == .keras2: return "hard_sigmoid"
        case .hardSigmoid(keras2: false) where style == .keras3: return "hard_sigmoid"
        case .hardSigmoid(keras2: true):
            throw KerasError("layer \(layer): Keras 2's hard_sigmoid (0.2·x + 0.5) reads as relu6(x + 3) / 6 in a Keras 3 file; write .h5 instead", layer: layer)
        case .hardSigmoid(keras2: false):
            throw KerasError("layer \(layer): Keras 3's hard_sigmoid (relu6(x + 3) / 6) reads as 0.2·x + 0.5 from a Keras 2-style .h5; write .keras or .weights.h5 instead", layer: layer)
        case .hardSwish: return "hard_swish"
        case .mish: return "mish"
        case .celu(let a) where a == 1: return "celu"
        case .hardTanh: return "hard_tanh"
        case .hardShrink(let t) where t == 0.5: return "hard_shrink"
        case .softShrink(let t) where t == 0.5: return "soft_shrink"
        case .tanhShrink: return "tanh_shrink"
        case .logSigmoid: return "log_sigmoid"
        case .sparsePlus: return "sparse_plus"
        case .squareplus(let b) where b == 4: return "squareplus"
        case .logSoftmax: return "log_softmax"
        case .sparsemax: return "sparsemax"
        default:
            throw KerasError("layer \(layer): activation \(a) has no Keras name; it cannot be written", layer: layer)
        }
    }

    static func entry(_ l: any Layer, style: Style) throws -> [String: Any] {
        if let m = l as? Model {
            var e = try encode(m, style: style, nested: true)
            e["name"] = m.name
            return e
        }
        func activationName(_ a: ActivationKind, layer: String) throws -> String {
            try KerasConfigEncoder.activationName(a, layer: layer, style: style)
        }
        var c = base(l)
        let cls: String
        switch l {
        case let x as ChannelsFirst:
            var e = try entry(x.inner, style: style)
            var config = e["config"] as? [String: Any] ?? [:]
            config["data_format"] = "channels_first"
            e["config"] = config
            return e
        case let x as Sequence1D:
            return try oneDimensionalEntry(x, style: style)
        case let x as Conv2D:
            cls = "Conv2D"
            c.merge(convFields(x.config, layer: x.name)) { $1 }
            c["filters"] = x.config.filters
            c["groups"] = x.config.groups
            c["activation"] = try activationName(x.config.activation, layer: x.name)
        case let x as SeparableConv2D:
            cls = "SeparableConv2D"
            c.merge(convFields(x.config, layer: x.name)) { $1 }
            c["filters"] = x.config.filters
            c["depth_multiplier"] = x.depthMultiplier
            c["activation"] = try activationName(x.config.activation, layer: x.name)
        case let x as DepthwiseConv2D:
            cls = "DepthwiseConv2D"
            c["kernel_size"] = x.config.kernelSize
            c["strides"] = x.config.strides
            c["padding"] = x.config.padding.rawValue
            c["data_format"] = "channels_last"
            c["dilation_rate"] = x.config.dilation
            c["depth_multiplier"] = x.config.depthMultiplier
            c["use_bias"] = x.config.useBias
            c["activation"] = try activationName(x.config.activation, layer: x.name)
        case let x as LocallyConnected2D:
            if style == .keras3 { throw KerasError("layer \(x.name): Keras 3 has no LocallyConnected2D; write .h5 (tf-keras) instead", layer: x.name) }
            cls = "LocallyConnected2D"
            c.merge(convFields(x.config, layer: x.name)) { $1 }
            c["filters"] = x.config.filters
            c["implementation"] = 1
            c["activation"] = try activationName(x.config.activation, layer: x.name)
            c["dilation_rate"] = nil
        case let x as Dense:
            cls = "Dense"
            c["units"] = x.units
            c["use_bias"] = x.useBias
            c["activation"] = try activationName(x.activation, layer: x.name)
        case let x as BatchNormalization:
            cls = "BatchNormalization"
            c["axis"] = x.axis
            c["momentum"] = Double(x.momentum)
            c["epsilon"] = Double(x.epsilon)
            c["center"] = x.center
            c["scale"] = x.scale
        case let x as ActivationLayer:
            switch (x.kerasClassName, x.activation) {
            case ("ReLU", .reluGeneral(let maxValue, let slope, let threshold)):
                cls = "ReLU"
                c["max_value"] = maxValue.map { Double($0) as Any } ?? NSNull()
                c["negative_slope"] = Double(slope)
                c["threshold"] = Double(threshold)
            case (_, .leakyReLU(let alpha)):
                cls = "LeakyReLU"
                c[style == .keras3 ? "negative_slope" : "alpha"] = Double(alpha)
            case ("ELU", .elu(let alpha)):
                cls = "ELU"
                c["alpha"] = Double(alpha)
            case ("Softmax", .softmax):
                cls = "Softmax"
                c["axis"] = -1
            default:
                cls = "Activation"
                c["activation"] = try activationName(x.activation, layer: x.name)
            }
        case let x as PReLU:
            cls = "PReLU"
            c["shared_axes"] = x.sharedAxes.isEmpty ? NSNull() as Any : x.sharedAxes as Any
        case let x as Pooling2D:
            guard x.kind != .sum else { throw KerasError("layer \(x.name): Keras has no sum pooling layer; it cannot be written", layer: x.name) }
            cls = x.kind == .max ? "MaxPooling2D" : "AveragePooling2D"
            c["pool_size"] = x.poolSize
            c["strides"] = x.strides
            c["padding"] = x.padding.rawValue
            c["data_format"] = "channels_last"
        case let x as GlobalPooling2D:
            guard x.kind != .sum else { throw KerasError("layer \(x.name): Keras has no global sum pooling layer", layer: x.name) }
            cls = x.kind == .max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D"
            c["data_format"] = "channels_last"
            c["keepdims"] = x.keepDims
        case let x as Padding2D:
            cls = x.isCropping ? "Cropping2D" : "ZeroPadding2D"
            c[x.isCropping ? "cropping" : "padding"] = x.amounts
            c["data_format"] = "channels_last"
        case let x as UpSampling2D:
            cls = "UpSampling2D"
            c["size"] = x.size
            c["data_format"] = "channels_last"
            c["interpolation"] = x.bilinear ? "bilinear" : "nearest"
        case is Flatten:
            cls = "Flatten"
            c["data_format"] = "channels_last"
        case let x as Reshape:
            cls = "Reshape"
            c["target_shape"] = x.targetShape
        case let x as InferenceIdentity where x.kerasClassName == "StochasticDepth":
            c["drop_path_rate"] = Double(x.rate)
            return applicationEntry("StochasticDepth", module: "convnext", config: c, style: style)
        case let x as InferenceIdentity:
            cls = x.kerasClassName
            if cls.hasPrefix("SpatialDropout") { c["trainable"] = nil }   // Keras 3's constructor takes no `trainable`
            if KerasLayerFactory.trainingAugmentation.contains(cls) {
                // Written back with the settings it was read with (Graft runs it as the identity).
                guard let text = x.originalSettings,
                      var settings = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
                    throw KerasError("layer \(x.name): \(cls) has no settings to write", layer: x.name)
                }
                settings["name"] = x.name
                // The settings of the Keras that wrote them, made readable by the other where that is a matter of
                // spelling: a plain dtype, no tf-keras `rng_type` (Keras 3 reads .h5 too), no Keras 3 `data_format`
                // in a Keras 2-style config.
                settings["dtype"] = "float32"
                settings["rng_type"] = nil
                if style == .keras2 { settings["data_format"] = nil }
                return wrap(["class_name": cls, "config": settings], style)
            }
            switch cls {
            case "GaussianNoise": c["stddev"] = Double(x.rate)
            case "Identity": c = ["name": x.name, "trainable": true, "dtype": "float32"]
            case "ActivityRegularization": c["l1"] = 0.0; c["l2"] = 0.0
            default: c["rate"] = Double(x.rate)
            }
        case let x as Merge:
            cls = x.kind.rawValue
        case let x as Concatenate:
            cls = "Concatenate"
            c["axis"] = x.axis
        case let x as Rescaling:
            cls = "Rescaling"
            c["scale"] = x.scale.count == 1 ? Double(x.scale[0]) as Any : x.scale.map(Double.init) as Any
            c["offset"] = x.offset.count == 1 ? Double(x.offset[0]) as Any : x.offset.map(Double.init) as Any
        case let x as Normalization:
            cls = "Normalization"
            c["axis"] = [-1]
            c["invert"] = x.invert
            c["mean"] = x.fixedMean.map { $0.map(Double.init) as Any } ?? NSNull()
            c["variance"] = x.fixedVariance.map { $0.map(Double.init) as Any } ?? NSNull()
        case let x as Conv3D:
            cls = "Conv3D"
            c["filters"] = x.filters
            c["kernel_size"] = x.kernelSize
            c["strides"] = x.strides
            c["padding"] = x.padding.rawValue
            c["data_format"] = "channels_last"
            c["dilation_rate"] = x.dilation
            c["use_bias"] = x.useBias
            c["activation"] = try activationName(x.activation, layer: x.name)
        case let x as Pooling3D:
            guard x.kind != .sum else { throw KerasError("layer \(x.name): Keras has no sum pooling layer; it cannot be written", layer: x.name) }
            cls = x.kerasClassName
            c["pool_size"] = x.poolSize
            c["strides"] = x.strides
            c["padding"] = x.padding.rawValue
            c["data_format"] = "channels_last"
        case let x as GlobalPooling3D:
            guard x.kind != .sum else { throw KerasError("layer \(x.name): Keras has no global sum pooling layer", layer: x.name) }
            cls = x.kerasClassName
            c["data_format"] = "channels_last"
            c["keepdims"] = x.keepDims
        case let x as TiledConv2D where x.kerasEquivalent == "Conv2D"
                || (x.kerasEquivalent == "LocallyConnected2D" && style == .keras2):
            // The Keras layer it equals, with the same weights (KerasWriter.weights gives them Keras's shapes).
            cls = x.kerasEquivalent ?? "Conv2D"
            c.merge(convFields(x.config, layer: x.name)) { $1 }
            c["filters"] = x.config.filters
            c["activation"] = try activationName(x.config.activation, layer: x.name)
            if cls == "Conv2D" { c["groups"] = 1 } else { c["implementation"] = 1; c["dilation_rate"] = nil }
        case let x as TiledConv2D:
            // Graft's own class: Graft reads it back; Keras has none (`graft export` says so before writing).
            c.merge(convFields(x.config, layer: x.name)) { $1 }
            c["filters"] = x.config.filters
            c["tiles"] = x.tiles
            c["activation"] = try activationName(x.config.activation, layer: x.name)
            guard style == .keras3 else { return ["class_name": "TiledConv2D", "config": c] }
            return ["module": "graft", "class_name": "TiledConv2D", "registered_name": "graft>TiledConv2D", "config": c]
        case let x as Conv2DTranspose:
            cls = "Conv2DTranspose"
            c.merge(convFields(x.config, layer: x.name)) { $1 }
            c["filters"] = x.config.filters
            c["output_padding"] = x.outputPadding.map { $0 as Any } ?? NSNull()
            c["activation"] = try activationName(x.config.activation, layer: x.name)
        case let x as Resizing:
            cls = "Resizing"
            c["height"] = x.height
            c["width"] = x.width
            c["interpolation"] = x.bilinear ? "bilinear" : "nearest"
            c["crop_to_aspect_ratio"] = false
        case let x as CenterCrop:
            cls = "CenterCrop"
            c["height"] = x.height
            c["width"] = x.width
        case let x as Permute:
            cls = "Permute"
            c["dims"] = x.dims
        case let x as RepeatVector:
            cls = "RepeatVector"
            c["n"] = x.count
        case let x as LayerNormalization:
            cls = x.kerasClassName
            c["axis"] = x.axis
            c["epsilon"] = Double(x.epsilon)
            if x.mode != .rms {   // RMSNormalization always scales, and takes no `scale` or `center`
                c["scale"] = x.scale
                c["center"] = x.center
            }
            if x.mode == .rmsScaling { c["rms_scaling"] = true }
        case let x as GroupNormalization:
            cls = "GroupNormalization"
            c["groups"] = x.groups
            c["axis"] = -1
            c["epsilon"] = Double(x.epsilon)
            c["center"] = x.center
            c["scale"] = x.scale
        case is UnitNormalization:
            cls = "UnitNormalization"
            c["axis"] = [-1]
        case is GatedLinearUnit:
            cls = "Activation"
            c["activation"] = "glu"
        case let x as LayerScale:
            c["init_values"] = Double(x.initialValue)
            c["projection_dim"] = x.gamma.shape.first ?? 0
            return applicationEntry("LayerScale", module: "convnext", config: c, style: style)
        case let x as ScaledResidual:
            c["scale"] = Double(x.scale)
            return applicationEntry("CustomScaleLayer", module: "inception_resnet_v2", config: c, style: style)
        case let x as TensorOp:
            return wrap(try opEntry(x, base: c), style)
        case let x as Recurrent:
            return wrap(["class_name": x.kerasClassName, "config": try recurrentConfig(x, style: style)], style)
        case let x as ConvLSTM2D:
            let r = Recurrent(name: x.name, cell: .lstm, settings: x.settings)
            var config = try recurrentConfig(r, style: style)
            config.merge(convFields(x.inputConv.config, layer: x.name)) { $1 }
            config["filters"] = x.filters
            config["units"] = nil
            config["trainable"] = base(x)["trainable"]
            return wrap(["class_name": "ConvLSTM2D", "config": config], style)
        case let x as Bidirectional:
            cls = "Bidirectional"
            c["merge_mode"] = x.mergeMode == .none ? NSNull() as Any : x.mergeMode.rawValue as Any
            c["layer"] = wrap(["class_name": x.forwardLayer.kerasClassName, "config": try recurrentConfig(x.forwardLayer, style: style)], style)
            c["backward_layer"] = wrap(["class_name": x.backwardLayer.kerasClassName, "config": try recurrentConfig(x.backwardLayer, style: style)], style)
        case let x as TimeDistributed:
            cls = "TimeDistributed"
            // A wrapped model is not a node of this graph: no call numbering to keep, so a Sequential stays one.
            if let m = x.inner as? Model, style == .keras2 {
                var e = try encode(m, style: style)
                e["name"] = m.name
                c["layer"] = e
            } else {
                c["layer"] = try entry(x.inner, style: style)
            }
        case let x as Embedding:
            cls = "Embedding"
            c["input_dim"] = x.inputDim
            c["output_dim"] = x.outputDim
            c["mask_zero"] = x.maskZero
        case let x as Masking:
            cls = "Masking"
            c["mask_value"] = Double(x.maskValue)
        case let x as DotAttention:
            cls = x.kerasClassName
            c["use_scale"] = x.useScale
            c["dropout"] = Double(x.dropout)
            if x.score != .additive { c["score_mode"] = x.score == .concat ? "concat" : "dot" }
        case let x as MultiHeadAttention:
            cls = "MultiHeadAttention"
            c["num_heads"] = x.heads
            c["key_dim"] = x.keyDim
            c["value_dim"] = x.valueDim
            c["use_bias"] = x.useBias
            c["dropout"] = Double(x.dropout)
            c["output_shape"] = x.outputDim.map { [$0] as Any } ?? NSNull()
            c["attention_axes"] = [1]
            if style == .keras2 {
                // tf-keras builds its weights from these when it reads the config.
                func shape(_ s: [Int]) -> [Any] { [NSNull()] + s.map { $0 < 0 ? NSNull() as Any : $0 as Any } }
                let (q, v, k) = x.builtShapes
                c["query_shape"] = shape(q)
                c["value_shape"] = shape(v)
                c["key_shape"] = shape(k)
            }
        case is MaskedAveragePooling1D:
            cls = "GlobalAveragePooling1D"
            c["data_format"] = "channels_last"
            c["keepdims"] = false
        default:
            throw KerasError("layer \(l.name): \(l.kerasClassName) cannot be written as a Keras layer", layer: l.name)
        }
        return wrap(["class_name": cls, "config": c], style)
    }

    /// A recurrent layer's config (as the layer of a Bidirectional too).
    static func recurrentConfig(_ x: Recurrent, style: Style) throws -> [String: Any] {
        var c = base(x)
        let s = x.settings
        c["units"] = s.units
        c["activation"] = try activationName(s.activation, layer: x.name, style: style)
        if x.cell != .simple { c["recurrent_activation"] = try activationName(s.recurrentActivation, layer: x.name, style: style) }
        c["use_bias"] = s.useBias
        c["return_sequences"] = s.returnSequences
        c["return_state"] = s.returnState
        c["go_backwards"] = s.goBackwards
        c["stateful"] = false
        c["unroll"] = s.unroll
        c["dropout"] = Double(s.dropout)
        c["recurrent_dropout"] = Double(s.recurrentDropout)
        if s.zeroOutputForMask { c["zero_output_for_mask"] = true }
        switch x.cell {
        case .lstm: c["unit_forget_bias"] = s.unitForgetBias
        case .gru(let after): c["reset_after"] = after
        case .simple: break
        }
        return c
    }

    /// A 1-D layer: its 2-D layer's entry with the `[1, k]` sizes written as `[k]` and the padding of the one
    /// spatial axis.
    static func oneDimensionalEntry(_ x: Sequence1D, style: Style) throws -> [String: Any] {
        var e = try entry(x.inner, style: style)
        var config = e["config"] as? [String: Any] ?? [:]
        for key in ["kernel_size", "strides", "dilation_rate", "pool_size"] {
            if let v = config[key] as? [Int], v.count == 2 { config[key] = [v[1]] }
        }
        for key in ["padding", "cropping"] {
            if let v = config[key] as? [[Int]], v.count == 2 { config[key] = v[1] }
        }
        if x.inner is UpSampling2D {
            config["size"] = (config["size"] as? [Int])?.last
            config["interpolation"] = nil
        }
        if x.inner is UpSampling2D || x.inner is Padding2D {
            config["data_format"] = nil   // Keras's 1-D padding, cropping and upsampling take none
        }
        e["class_name"] = x.kerasClassName
        e["config"] = config
        return e
    }

    static func convFields(_ cfg: Conv2DConfig, layer: String) -> [String: Any] {
        ["kernel_size": cfg.kernelSize, "strides": cfg.strides, "padding": cfg.padding.rawValue,
         "data_format": "channels_last", "dilation_rate": cfg.dilation, "use_bias": cfg.useBias]
    }

    /// Bare math ops become layers Keras has: tensor–tensor ops become merge layers, tensor–constant ops
    /// become `Rescaling` (x·s + o). Anything else is refused.
    static func opEntry(_ x: TensorOp, base: [String: Any]) throws -> [String: Any] {
        var c = base
        c["trainable"] = true
        switch (x.operands.first, x.operands.last) {
        case (.input, .input):
            let names: [BinaryOp: String] = [.add: "Add", .subtract: "Subtract", .multiply: "Multiply",
                                             .maximum: "Maximum", .minimum: "Minimum"]
            guard let cls = names[x.op] else { throw KerasError("layer \(x.name): \(x.op) of two tensors has no Keras layer", layer: x.name) }
            return ["class_name": cls, "config": c]
        case (.input, .constant(let k)):
            switch x.op {
            case .add: c["scale"] = 1.0; c["offset"] = Double(k)
            case .subtract: c["scale"] = 1.0; c["offset"] = -Double(k)
            case .multiply: c["scale"] = Double(k); c["offset"] = 0.0
            case .divide: c["scale"] = 1.0 / Double(k); c["offset"] = 0.0
            default: throw KerasError("layer \(x.name): \(x.op) with a constant has no Keras layer", layer: x.name)
            }
            return ["class_name": "Rescaling", "config": c]
        case (.constant(let k), .input):
            switch x.op {
            case .add: c["scale"] = 1.0; c["offset"] = Double(k)
            case .multiply: c["scale"] = Double(k); c["offset"] = 0.0
            case .subtract: c["scale"] = -1.0; c["offset"] = Double(k)
            default: throw KerasError("layer \(x.name): \(x.op) of a constant by a tensor has no Keras layer", layer: x.name)
            }
            return ["class_name": "Rescaling", "config": c]
        default:
            throw KerasError("layer \(x.name): an operation on two constants cannot be written", layer: x.name)
        }
    }
}
