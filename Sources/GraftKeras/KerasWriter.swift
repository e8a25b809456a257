import Foundation
import GraftFiles
import GraftHDF5
import ZIPFoundation
import GraftNN
import GraftTensor

/// Writes checkpoints Keras loads. Every write is atomic: a temporary file in the same folder, renamed into place.
public enum KerasWriter {
    /// The `keras_version` written: the config and weight layout follow Keras 2 (tf-keras), which Keras 3's
    /// legacy loader also reads. The Graft version is recorded beside it in `graft_version`.
    public static let kerasVersionWritten = "2.15.0"

    /// Keras legacy full-model `.h5` (`model.save("x.h5")`): `model_config`, `keras_version`, `backend` and
    /// `model_weights`. With `weightsOnly`, a Keras 2 `save_weights` file: `layer_names` at the root.
    /// `task` is stored as the `graft_task` root attribute; `extra` may add groups to the root (training state)
    /// inside the same atomic write.
    public static func writeLegacyH5(_ model: Model, to path: String, weightsOnly: Bool = false, graftVersion: String,
                                     task: ModelTask? = nil, extra: ((HDF5Group) throws -> Void)? = nil) throws {
        let config = weightsOnly ? nil : try KerasConfigEncoder.json(model)
        if let config { try KerasConfigEncoder.requireInferredMasks(model, config: config) }
        try HDF5File.writeAtomically(path) { file in
            let root = try file.root()
            let weights: HDF5Group
            if let config {
                try root.setAttribute("model_config", string: config)
                try root.setAttribute("keras_version", strings: [kerasVersionWritten], scalar: true)
                try root.setAttribute("backend", strings: ["tensorflow"], scalar: true)
                weights = try root.createGroup("model_weights")
            } else {
                weights = root
            }
            try weights.setAttribute("keras_version", strings: [kerasVersionWritten], scalar: true)
            try weights.setAttribute("backend", strings: ["tensorflow"], scalar: true)
            try root.setAttribute("graft_version", strings: [graftVersion], scalar: true)
            try task?.write(to: root)
            try writeLegacyWeights(model, into: weights)
            try extra?(root)
        }
    }

    /// A layer's weights as the Keras layer its config names holds them: a 1×1-tiled convolution written as
    /// `Conv2D` has its kernel `[1, kH·kW·C, F]` as `[kH, kW, C, F]` and its bias `[1, 1, F]` as `[F]`.
    static func weights(_ l: any Layer) -> [(key: String, variable: Variable, value: Tensor)] {
        l.variables.map { key, v in
            guard let t = l as? TiledConv2D, t.kerasEquivalent == "Conv2D" else { return (key, v, v.value) }
            let c = t.config
            let shape = key == "kernel" ? c.kernelSize + [v.value.count / (c.kernelSize[0] * c.kernelSize[1] * c.filters), c.filters] : [c.filters]
            return (key, v, v.value.reshaped(shape))
        }
    }

    /// The `model_weights` layout: `layer_names` (every layer, Keras order), then per layer a group with
    /// `weight_names` (`layer/kernel:0`, …) and the datasets at those paths.
    static func writeLegacyWeights(_ model: Model, into group: HDF5Group) throws {
        let layers = kerasLayerOrder(model)
        try group.setStringListAttribute("layer_names", strings: layers.map(\.name))
        for layer in layers {
            let g = try group.createGroup(layer.name)
            var entries: [(name: String, tensor: Tensor)] = []
            if let nested = (layer as? Model) ?? ((layer as? TimeDistributed)?.inner as? Model) {
                // Keras orders a nested model's weights as all trainable ones, then all non-trainable ones.
                let all = kerasLayerOrder(nested).flatMap { l in weights(l).map { (l, $0.key, $0.variable, $0.value) } }
                let ordered = all.filter { $0.2.isTrainable } + all.filter { !$0.2.isTrainable }
                entries = ordered.map { ("\($0.0.name)/\($0.1):0", $0.3) }
                if nested.layers.contains(where: { $0 is Model }) {
                    throw KerasError("model \(model.name): models nested more than one level deep cannot be written yet")
                }
            } else {
                entries = weights(layer).map { ("\(layer.name)/\($0.key):0", $0.value) }
            }
            try g.setStringListAttribute("weight_names", strings: entries.map(\.name))
            for (name, t) in entries {
                if name.hasSuffix("/count:0") && (layer is Normalization || (layer as? Model)?.layer(named: String(name.split(separator: "/").first ?? "")) is Normalization) {
                    try g.createDataset(name, values: t.scalars.map { Int64($0) }, shape: t.shape)
                } else {
                    try g.createDataset(name, values: t.scalars, shape: t.shape)
                }
            }
        }
    }

    /// The order Keras gives `model.layers` when it rebuilds this graph: layers grouped by depth from the outputs
    /// (deepest first), ties broken by first visit in a depth-first walk from the outputs. Keras's legacy loader
    /// matches `layer_names` to `model.layers` by position, so files must list layers in this order.
    /// Each node's inputs as Keras sees them: masks left out, output parts replaced by the node they take apart.
    static func keras2Inputs(_ model: Model) -> [[Int]] {
        model.nodes.map { node in
            node.inputs.filter { !(model.nodes[$0].layer is SequenceMask) }.map { KerasConfigEncoder.source(of: $0, in: model).node }
        }
    }

    public static func kerasLayerOrder(_ model: Model) -> [any Layer] {
        if model.kerasClassName == "Sequential" && KerasConfigEncoder.isChain(model) {
            return model.layers.filter { !($0 is GraphPlumbing) }
        }
        // Keras's graph: an output part stands for the layer it takes apart, masks are not tensors of their own.
        let inputsOf = keras2Inputs(model)
        var firstVisit: [ObjectIdentifier: Int] = [:]
        var finished = Set<Int>()
        var postorder: [Int] = []
        func visit(_ n: Int) {
            if finished.contains(n) { return }
            let id = ObjectIdentifier(model.nodes[n].layer)
            if firstVisit[id] == nil { firstVisit[id] = firstVisit.count }
            for p in inputsOf[n] { visit(p) }
            finished.insert(n)
            postorder.append(n)
        }
        for o in model.outputNodes { visit(KerasConfigEncoder.source(of: o, in: model).node) }
        var nodeDepth: [Int: Int] = [:]
        var layerDepth: [ObjectIdentifier: Int] = [:]
        var layerOf: [ObjectIdentifier: any Layer] = [:]
        for n in postorder.reversed() {
            let layer = model.nodes[n].layer
            let id = ObjectIdentifier(layer)
            let depth = max(nodeDepth[n, default: 0], layerDepth[id, default: 0])
            layerDepth[id] = depth
            layerOf[id] = layer
            nodeDepth[n] = depth
            for p in inputsOf[n] { nodeDepth[p] = max(depth + 1, nodeDepth[p, default: 0]) }
        }
        return layerDepth.keys.sorted { a, b in
            let (da, db) = (layerDepth[a] ?? 0, layerDepth[b] ?? 0)
            return da != db ? da > db : (firstVisit[a] ?? 0) < (firstVisit[b] ?? 0)
        }.compactMap { layerOf[$0] }
    }
}

// MARK: - Keras 3 formats

extension KerasWriter {
    /// The storage of one variable: Normalization's `count` is an integer in Keras.
    static func storage(_ layer: any Layer, _ key: String) -> HDF5StorageType {
        layer is Normalization && key == "count" ? .int64 : .float32
    }

    /// Keras 3 `.weights.h5` (`model.save_weights("x.weights.h5")`): `layers/<snake_case class>[_n]/vars/<i>` in each
    /// layer's own variable order, nested models nested, each `vars` group named after its layer.
    public static func writeKeras3Weights(_ model: Model, to path: String, task: ModelTask? = nil) throws {
        try HDF5File.writeAtomically(path) { file in
            let root = try file.root()
            try task?.write(to: root)
            try writeKeras3Container(model, into: root)
        }
    }

    static func writeKeras3Container(_ model: Model, into group: HDF5Group) throws {
        let layersGroup = try group.createGroup("layers")
        var used: [String: Int] = [:]
        for l in KerasWeights.keras3SaveableLayers(model) {
            var key = KerasWeights.snakeCase(KerasWeights.keras3ClassName(l))
            if let n = used[key] {
                used[key] = n + 1
                key = "\(key)_\(n + 1)"
            } else {
                used[key] = 0
            }
            let g = try layersGroup.createGroup(key)
            if let nested = l as? Model {
                try writeKeras3Container(nested, into: g)
                continue
            }
            try writeKeras3Layer(l, into: g)
        }
        let own = try group.createGroup("vars")
        try own.setAttribute("name", string: model.name)
    }

    /// One layer's `vars` group, and its sub-layers' groups where Keras 3 keeps their variables
    /// (`KerasWeights.keras3VariableGroups`), each level with a `vars` group as Keras writes it.
    static func writeKeras3Layer(_ l: any Layer, into g: HDF5Group) throws {
        let own = try g.createGroup("vars")
        try own.setAttribute("name", string: l.name)
        if let t = l as? TimeDistributed, let nested = t.inner as? Model {
            try writeKeras3Container(nested, into: try g.createGroup("layer"))
            return
        }
        let values = Dictionary(weights(l).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        for (path, keys) in KerasWeights.keras3VariableGroups(l) {
            var group = g, vars = own
            for component in path {
                group = group.kind(of: component) == .group ? try group.group(component) : try group.createGroup(component)
                vars = group.kind(of: "vars") == .group ? try group.group("vars") : try group.createGroup("vars")
            }
            for (i, key) in keys.enumerated() {
                guard let t = values[key] else { continue }
                if storage(l, key) == .int64 {
                    try vars.createDataset("\(i)", values: t.scalars.map { Int64($0) }, shape: t.count == 1 ? [] : t.shape)
                } else {
                    try vars.createDataset("\(i)", values: t.scalars, shape: t.shape)
                }
            }
        }
    }

    /// A `.keras` archive: `metadata.json`, `config.json` (the model config) and `model.weights.h5`, zipped from
    /// memory into one temporary file beside `path` that is then renamed into place (`AtomicWrite`).
    public static func writeKerasArchive(_ model: Model, to path: String, task: ModelTask? = nil) throws {
        let config = try KerasConfigEncoder.json(model, style: .keras3)
        try KerasConfigEncoder.requireKeras3Semantics(model, config: config)
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd@HH:mm:ss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        let metadata = "{\"keras_version\": \"\(keras3VersionWritten)\", \"date_saved\": \"\(formatter.string(from: Date()))\""
            + (task.map { ", \"\(ModelTask.key)\": \($0.json())" } ?? "") + "}"
        let weights: Data
        do {
            weights = Data(try HDF5File.inMemoryImage(name: "\(path)!model.weights.h5") { try writeKeras3Container(model, into: try $0.root()) })
        } catch let e as HDF5Error {
            throw KerasError("\(path): cannot write the .keras archive (\(e.detail.isEmpty ? "\(e)" : e.detail))", file: path)
        }
        let entries = [("metadata.json", Data(metadata.utf8)), ("config.json", Data(config.utf8)), ("model.weights.h5", weights)]
        do {
            try AtomicWrite.replace(path) { temporary in
                let archive: Archive
                do { archive = try Archive(url: URL(fileURLWithPath: temporary), accessMode: .create) } catch {
                    throw FileWriteError(path, "cannot write into \(URL(fileURLWithPath: path).deletingLastPathComponent().path) (\(FileWriteError.errnoText()))")
                }
                for (name, data) in entries {
                    do {
                        try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .none) { position, size in
                            data.subdata(in: Int(position)..<(Int(position) + size))
                        }
                    } catch {
                        throw FileWriteError(path, "cannot write the .keras archive (\(FileWriteError.errnoText()))")
                    }
                }
            }
        } catch let e as FileWriteError {
            throw KerasError("\(e.path): \(e.reason)", file: e.path)
        }
    }

    /// The `keras_version` a `.keras` archive declares (its config follows Keras 3's reader).
    public static let keras3VersionWritten = "3.6.0"
}
