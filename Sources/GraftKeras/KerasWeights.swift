import Foundation
import GraftCore
import GraftHDF5
import GraftNN
import GraftTensor

/// What a weight load did, path by path (`layer/key`, nested `outer/inner/key`).
public struct WeightLoadReport: Sendable, Equatable, CustomStringConvertible {
    /// A tensor whose shape in the checkpoint differs from the model variable's.
    public struct Mismatch: Sendable, Equatable {
        public let path: String
        public let checkpoint: [Int]
        public let model: [Int]
        public init(path: String, checkpoint: [Int], model: [Int]) {
            (self.path, self.checkpoint, self.model) = (path, checkpoint, model)
        }
    }

    public var applied: [String] = []
    /// Model variables the checkpoint did not provide.
    public var missing: [String] = []
    /// Checkpoint tensors no model variable took.
    public var unused: [String] = []
    /// Tensors whose shapes differ, with both shapes.
    public var mismatched: [Mismatch] = []
    /// Applied tensors holding NaN or infinite values (a model that can only output NaN): loading still succeeds,
    /// and the caller warns, or refuses when asked to be strict.
    public var nonFinite: [String] = []

    /// One line for a person: which tensors are not finite, or nil when all are.
    public var nonFiniteWarning: String? {
        guard !nonFinite.isEmpty else { return nil }
        let names = nonFinite.prefix(5).joined(separator: ", ") + (nonFinite.count > 5 ? ", … (\(nonFinite.count) in all)" : "")
        return "\(nonFinite.count) weight tensor\(nonFinite.count == 1 ? "" : "s") hold\(nonFinite.count == 1 ? "s" : "") NaN or infinite values (\(names)); outputs may be NaN"
    }

    public init() {}

    public var isComplete: Bool { missing.isEmpty && unused.isEmpty && mismatched.isEmpty }

    public var description: String {
        var lines = ["\(applied.count) tensors loaded"]
        func list(_ items: [String]) -> String {
            items.prefix(8).joined(separator: ", ") + (items.count > 8 ? ", … (\(items.count) in all)" : "")
        }
        if !mismatched.isEmpty {
            lines.append("shape mismatches: " + list(mismatched.map {
                "\($0.path): checkpoint \(Shape.describe($0.checkpoint)) vs model \(Shape.describe($0.model))"
            }))
        }
        if !missing.isEmpty { lines.append("missing from checkpoint: " + list(missing)) }
        if !unused.isEmpty { lines.append("not in model: " + list(unused)) }
        return lines.joined(separator: "; ")
    }
}

/// Weights that do not fit a model: the whole report as a value (what was applied, missing, unused and
/// mismatched, with both shapes), the first tensor at fault in `context`.
public struct WeightLoadError: GraftError {
    public let file: String
    public let model: String
    public let report: WeightLoadReport

    public init(file: String, model: String, report: WeightLoadReport) {
        (self.file, self.model, self.report) = (file, model, report)
    }

    public var context: ErrorContext {
        ErrorContext(file: file, tensor: report.mismatched.first?.path ?? report.missing.first ?? report.unused.first)
    }

    public var description: String { "\(file): weights do not fit model \(model): \(report)" }
}

/// Weight reading (HDF5 → `[path: Tensor]` in Graft naming) and applying (generic, strict, by name).
public enum KerasWeights {
    /// Applies `tensors` to `model` by path. Throws when anything is missing, unused or mismatched,
    /// unless the path matches one of `allowMissing` (glob patterns, `predictions/*`).
    @discardableResult
    public static func apply(_ tensors: [String: Tensor], to model: Model, source: String,
                             allowMissing: [String] = []) throws -> WeightLoadReport {
        var report = WeightLoadReport()
        var used = Set<String>()
        for (path, variable) in model.namedVariables {
            guard let t = tensors[path] else {
                if !allowMissing.contains(where: { NamePattern.matches($0, path) }) { report.missing.append(path) }
                continue
            }
            used.insert(path)
            // A scalar stored as (1,) or () is the same value (Normalization's count).
            let sameCount = t.count == variable.value.count && (t.count == 1 || t.shape == variable.shape)
            guard t.shape == variable.shape || sameCount else {
                report.mismatched.append(.init(path: path, checkpoint: t.shape, model: variable.shape))
                continue
            }
            variable.value = t.reshaped(variable.shape)
            report.applied.append(path)
            let finite = t.withUnsafeBufferPointer { p -> Bool in
                var acc: Float = 0
                for x in p { acc += x * 0 }   // NaN or ±inf anywhere makes the sum NaN; the loop vectorises
                return !acc.isNaN
            }
            if !finite { report.nonFinite.append(path) }
        }
        report.unused = tensors.keys.filter { !used.contains($0) }.sorted()
        if !report.isComplete {
            throw WeightLoadError(file: source, model: model.name, report: report)
        }
        return report
    }

    /// The tensors of one load, filled together by `read()` (`HDF5File.readFloats`: the bytes of plain datasets
    /// come in on all cores). Until then their contents are unspecified; nothing may look at them.
    final class PendingTensors {
        private var requests: [(dataset: HDF5Dataset, buffer: UnsafeMutableBufferPointer<Float>)] = []
        /// Keeps each tensor's storage alive until it is filled.
        private var tensors: [Tensor] = []
        private let arena: TensorArena?

        /// Tensors come from `arena` while it has room.
        init(arena: TensorArena? = nil) {
            self.arena = arena
        }

        /// A tensor of the dataset's shape, to be filled by `read()`.
        func tensor(_ ds: HDF5Dataset) throws -> Tensor {
            let shape = try ds.shape()
            _ = try HDF5Shape.elementCount(shape, elementSize: MemoryLayout<Float>.stride, file: ds.file.path, path: ds.path)
            let offset = arena == nil ? 0 : ds.contiguousExtent()?.offset ?? 0
            var t = arena.flatMap { Tensor(uninitializedShape: shape, in: $0, alignedLike: offset) } ?? Tensor(uninitializedShape: shape)
            requests.append((ds, t.withUnsafeMutableBufferPointer { $0 }))
            tensors.append(t)
            return t
        }

        func read() throws {
            var files: [ObjectIdentifier: HDF5File] = [:]
            var byFile: [ObjectIdentifier: [(dataset: HDF5Dataset, buffer: UnsafeMutableBufferPointer<Float>)]] = [:]
            var order: [ObjectIdentifier] = []
            for r in requests {
                let key = ObjectIdentifier(r.dataset.file)
                if files[key] == nil { files[key] = r.dataset.file; order.append(key) }
                byFile[key, default: []].append(r)
            }
            for key in order { try files[key]?.readFloats(byFile[key] ?? []) }
            requests = []
            tensors = []
        }
    }

    static func stripSuffix(_ name: String) -> String {
        if let colon = name.lastIndex(of: ":"), name[name.index(after: colon)...].allSatisfy(\.isNumber) {
            return String(name[..<colon])
        }
        return name
    }

    // MARK: legacy .h5 (model_weights group, or the root of a save_weights file)

    /// Reads a Keras legacy weights group: `layer_names`, then per layer `weight_names` and their datasets.
    /// Names are mapped to each model layer's keys; a layer whose names do not match takes its tensors in
    /// order, as Keras's own loader does.
    public static func readLegacy(_ group: HDF5Group, model: Model, source: String, arena: TensorArena? = nil) throws -> [String: Tensor] {
        mapLegacy(try collectLegacy(group, source: source, arena: arena), to: model)
    }

    /// A legacy weights group read without a model: per layer in `layer_names` order, its weights as stored.
    public struct LegacyWeights {
        public var layers: [(name: String, tensors: [(name: String, tensor: Tensor)])] = []
        /// The Keras backend that wrote them (the group's `backend` attribute): `theano` kernels are convolutions, not
        /// correlations, and are flipped on loading as Keras 2 did.
        public var backend: String?
    }

    /// Reads every layer's weights of a legacy weights group (the model is needed only to name them, so a loader
    /// can build it meanwhile), into tensors from `arena` while it has room.
    public static func collectLegacy(_ group: HDF5Group, source: String, arena: TensorArena? = nil) throws -> LegacyWeights {
        var out = LegacyWeights()
        out.backend = try? group.readStringAttribute("backend")
        let pending = PendingTensors(arena: arena)
        for layerName in try group.readStringListAttribute("layer_names") {
            guard group.kind(of: layerName) == .group else {
                throw KerasError("\(source): layer_names lists \(layerName) but there is no group \(group.path)/\(layerName)", file: source)
            }
            let g = try group.group(layerName)
            let weightNames = g.hasListAttribute("weight_names") ? try g.readStringListAttribute("weight_names") : []
            if weightNames.isEmpty { continue }
            var tensors: [(name: String, tensor: Tensor)] = []
            for w in weightNames {
                guard g.kind(of: w) == .dataset else {
                    throw KerasError("\(source): weight \(w) of layer \(layerName) is listed but not stored", file: source)
                }
                tensors.append((w, try pending.tensor(try g.dataset(w))))
            }
            out.layers.append((layerName, tensors))
        }
        try pending.read()
        return out
    }

    /// Names collected legacy weights after `model`'s layers (`layer/key`); a layer the model lacks keeps the
    /// stored names.
    public static func mapLegacy(_ weights: LegacyWeights, to model: Model) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        var layersByName: [String: any Layer] = [:]
        for l in model.layers where layersByName[l.name] == nil { layersByName[l.name] = l }
        for (layerName, tensors) in weights.layers {
            guard let layer = layersByName[layerName] else {
                for t in tensors { out["\(layerName)/\(stripSuffix(t.name.split(separator: "/").last.map(String.init) ?? t.name))"] = t.tensor }
                continue
            }
            for (path, t) in mapNames(tensors, to: layer, prefix: layerName, theano: weights.backend == "theano") { out[path] = t }
        }
        return out
    }

    /// Maps checkpoint weight names of one layer (or nested model) to Graft paths.
    static func mapNames(_ tensors: [(name: String, tensor: Tensor)], to layer: any Layer, prefix: String,
                         theano: Bool = false) -> [(String, Tensor)] {
        if let t = layer as? TimeDistributed, t.inner is Model {
            return mapNames(tensors, to: t.inner, prefix: prefix, theano: theano)
        }
        if layer is Recurrent || layer is Bidirectional {
            return KerasRecurrentWeights.fromCuDNN(mapPlain(tensors, to: layer, prefix: prefix, theano: theano), layer: layer, prefix: prefix)
        }
        return mapPlain(tensors, to: layer, prefix: prefix, theano: theano)
    }

    static func mapPlain(_ tensors: [(name: String, tensor: Tensor)], to layer: any Layer, prefix: String,
                         theano: Bool) -> [(String, Tensor)] {
        if let nested = layer as? Model {
            // Nested model: `…/inner_layer/kernel:0`; group by inner layer, map each group.
            var byLayer: [String: [(name: String, tensor: Tensor)]] = [:]
            var order: [String] = []
            for t in tensors {
                let comps = t.name.split(separator: "/").map(String.init)
                let inner = comps.count >= 2 ? comps[comps.count - 2] : comps[0]
                if byLayer[inner] == nil { order.append(inner) }
                byLayer[inner, default: []].append((comps.last ?? t.name, t.tensor))
            }
            var out: [(String, Tensor)] = []
            for inner in order {
                let group = byLayer[inner] ?? []
                if let l = nested.layer(named: inner) {
                    out += mapNames(group, to: l, prefix: "\(prefix)/\(pathInside(nested, to: inner) ?? inner)", theano: theano)
                } else {
                    out += group.map { ("\(prefix)/\(inner)/\(stripSuffix($0.name))", $0.tensor) }
                }
            }
            return out
        }
        let keys = tensors.map { t -> String? in
            let last = t.name.split(separator: "/").last.map(String.init) ?? t.name
            return layer.variableKey(forCheckpointName: stripSuffix(last))
        }
        let vars = layer.variables
        if keys.contains(where: { $0 == nil }) || Set(keys.compactMap { $0 }).count != keys.count {
            // Names unknown (old files, custom scopes): take them in order, like Keras's positional loader.
            if vars.count == tensors.count {
                return zip(vars, tensors).map { ("\(prefix)/\($0.key)", legacyKernel($1.tensor, key: $0.key, layer: layer, theano: theano)) }
            }
        }
        return zip(keys, tensors).map { key, t in
            ("\(prefix)/\(key ?? stripSuffix(t.name.split(separator: "/").last.map(String.init) ?? t.name))",
             legacyKernel(t.tensor, key: key, layer: layer, theano: theano))
        }
    }

    /// The convolutions whose kernels Keras 2 converted from older files (`preprocess_weights_for_loading`).
    static let legacyConvolutions: Set<String> = ["Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose"]

    /// A convolution kernel as Keras 2 read it from an older file: flipped along its spatial axes when Theano wrote it
    /// (Theano convolves, Keras on TensorFlow and Graft correlate), then, when it is stored as Theano's
    /// `[out, in, kH, kW]`, transposed to `[kH, kW, in, out]`.
    static func legacyKernel(_ t: Tensor, key: String?, layer: any Layer, theano: Bool) -> Tensor {
        guard key == "kernel", legacyConvolutions.contains(layer.kerasClassName), t.rank >= 3 else { return t }
        var k = theano ? t.flipped(axes: Array(0..<(t.rank - 2))) : t
        if let expected = layer.variable("kernel")?.shape, k.rank == 4, k.shape != expected,
           [k.shape[2], k.shape[3], k.shape[1], k.shape[0]] == expected {
            k = k.permuted([2, 3, 1, 0])
        }
        return k
    }

    /// The path of a layer inside nested models (`inner` or `sub/inner`).
    static func pathInside(_ model: Model, to name: String) -> String? {
        for l in model.layers {
            if l.name == name { return name }
            if let m = l as? Model, let p = pathInside(m, to: name) { return "\(m.name)/\(p)" }
        }
        return nil
    }

    // MARK: Keras 3 .weights.h5

    /// Reads a Keras 3 weights file: `layers/<key>/vars/<i>`, where `<key>` is the snake-case class name with a
    /// counter per container; the `vars` group's `name` attribute (Keras ≥ 3.6) gives the real layer name.
    public static func readKeras3(_ root: HDF5Group, model: Model, source: String, arena: TensorArena? = nil) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        let pending = PendingTensors(arena: arena)
        try readKeras3Container(root, model: model, prefix: "", source: source, pending: pending, into: &out)
        try pending.read()
        return out
    }

    /// The layers Keras 3 saves for a model, in order (a Sequential's InputLayer and bare ops are not layers).
    static func keras3SaveableLayers(_ model: Model) -> [any Layer] {
        KerasWriter.kerasLayerOrder(model).filter { l in
            if l is TensorOp || l is GraphPlumbing { return false }
            if model.kerasClassName == "Sequential" && l is InputLayer { return false }
            return true
        }
    }

    static func readKeras3Container(_ container: HDF5Group, model: Model, prefix: String, source: String,
                                    pending: PendingTensors, into out: inout [String: Tensor]) throws {
        guard container.kind(of: "layers") == .group else { return }
        let layersGroup = try container.group("layers")
        var byKey: [String: any Layer] = [:]
        var used: [String: Int] = [:]
        for l in keras3SaveableLayers(model) {
            var key = snakeCase(keras3ClassName(l))
            if let n = used[key] {
                used[key] = n + 1
                key = "\(key)_\(n + 1)"
            } else {
                used[key] = 0
            }
            byKey[key] = l
        }
        for child in try layersGroup.children() where child.kind == .group {
            let g = try layersGroup.group(child.name)
            var layerName: String?
            if g.kind(of: "vars") == .group, let n = try? g.group("vars").readStringAttribute("name") { layerName = n }
            let layer = layerName.flatMap { n in model.layers.first { $0.name == n } } ?? byKey[child.name]
            let displayName = layer?.name ?? layerName ?? child.name
            if let nested = layer as? Model {
                try readKeras3Container(g, model: nested, prefix: "\(prefix)\(nested.name)/", source: source, pending: pending, into: &out)
                continue
            }
            guard let layer else {
                try readKeras3Vars(g, keys: [], prefix: "\(prefix)\(displayName)/", pending: pending, into: &out)
                continue
            }
            try readKeras3Layer(g, layer: layer, prefix: "\(prefix)\(displayName)/", source: source, pending: pending, into: &out)
        }
    }

    /// Where Keras 3 keeps a layer's variables below the layer's group, with their keys in order: the group itself
    /// (`vars`), or sub-layers' groups (`cell/vars` of a recurrent layer, `forward_layer/cell/vars` and
    /// `backward_layer/cell/vars` of a Bidirectional, `layer/…` of a TimeDistributed).
    static func keras3VariableGroups(_ layer: any Layer) -> [(path: [String], keys: [String])] {
        switch layer {
        case is Recurrent, is ConvLSTM2D:
            return [(["cell"], layer.variables.map(\.key))]
        case let b as Bidirectional:
            return [(["forward_layer", "cell"], b.forwardLayer.variables.map { "\(b.forwardLayer.name)/\($0.key)" }),
                    (["backward_layer", "cell"], b.backwardLayer.variables.map { "\(b.backwardLayer.name)/\($0.key)" })]
        case let t as TimeDistributed:
            return keras3VariableGroups(t.inner).map { (["layer"] + $0.path, $0.keys) }
        case let a as MultiHeadAttention:
            return zip(["query_dense", "key_dense", "value_dense", "output_dense"], MultiHeadAttention.parts).map { group, part in
                ([group], a.variables.map(\.key).filter { $0.hasPrefix("\(part)/") })
            }
        default:
            return [([], layer.variables.map(\.key))]
        }
    }

    static func readKeras3Layer(_ g: HDF5Group, layer: any Layer, prefix: String, source: String, pending: PendingTensors,
                                into out: inout [String: Tensor]) throws {
        if let t = layer as? TimeDistributed, let nested = t.inner as? Model {
            guard g.kind(of: "layer") == .group else { return }
            try readKeras3Container(try g.group("layer"), model: nested, prefix: prefix, source: source, pending: pending, into: &out)
            return
        }
        for (path, keys) in keras3VariableGroups(layer) {
            var group = g
            for component in path {
                guard group.kind(of: component) == .group else { return }
                group = try group.group(component)
            }
            try readKeras3Vars(group, keys: keys, prefix: prefix, pending: pending, into: &out)
        }
    }

    /// The datasets `vars/0`, `vars/1`, … of one group, named by `keys` in order (`var<i>` past them).
    static func readKeras3Vars(_ g: HDF5Group, keys: [String], prefix: String, pending: PendingTensors,
                               into out: inout [String: Tensor]) throws {
        guard g.kind(of: "vars") == .group else { return }
        let vars = try g.group("vars")
        let datasets = try vars.children().filter { $0.kind == .dataset }.compactMap { c in Int(c.name).map { ($0, c.name) } }
            .sorted { $0.0 < $1.0 }
        for (i, dsName) in datasets {
            let key = i < keys.count ? keys[i] : "var\(i)"
            out["\(prefix)\(key)"] = try pending.tensor(try vars.dataset(dsName))
        }
    }

    /// The class name Keras 3 gives a Graft layer (for its counter keys).
    static func keras3ClassName(_ l: any Layer) -> String {
        if let m = l as? Model { return m.kerasClassName == "Sequential" ? "Sequential" : "Functional" }
        return l.kerasClassName
    }

    /// Keras's `to_snake_case`: `Conv2D` → `conv2d`, `BatchNormalization` → `batch_normalization`, `ReLU` → `re_lu`.
    public static func snakeCase(_ name: String) -> String {
        let chars = Array(name.filter { $0.isLetter || $0.isNumber || $0 == "_" })
        // Pass 1: "(.)([A-Z][a-z]+)" → "\1_\2".
        var pass1: [Character] = []
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if i > 0, c.isUppercase, i + 1 < chars.count, chars[i + 1].isLowercase {
                pass1.append("_")
            }
            pass1.append(c)
            i += 1
        }
        // Pass 2: "([a-z])([A-Z])" → "\1_\2".
        var pass2: [Character] = []
        for (k, c) in pass1.enumerated() {
            if k > 0, c.isUppercase, pass1[k - 1].isLowercase { pass2.append("_") }
            pass2.append(c)
        }
        return String(pass2).lowercased()
    }
}
