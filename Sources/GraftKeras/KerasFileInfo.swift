import Foundation
import GraftHDF5

/// The Keras checkpoint layouts Graft recognises.
public enum KerasFormat: String, Sendable {
    /// `model.save("x.h5")`: `model_config` and `model_weights` at the root.
    case legacyFullModel = "Keras legacy full-model .h5"
    /// `model.save_weights("x.h5")` (Keras 2) or the keras.applications "notop" files: `layer_names` at the root.
    case legacyWeights = "Keras weights-only .h5 (save_weights)"
    /// Keras 3 `model.save_weights("x.weights.h5")`: `layers/<key>/vars/<i>`.
    case keras3Weights = "Keras 3 .weights.h5"
}

/// What `graft inspect` says about a Keras file.
public struct KerasFileInfo: Sendable {
    public var format: KerasFormat
    public var kerasVersion: String?
    public var backend: String?
    /// `Sequential`, `Functional`, `Model`, … from `model_config`, when the file holds one.
    public var modelClass: String?
    public var modelName: String?
    /// Layers in the architecture (from `model_config`), or layer groups in the weights when there is no config.
    public var layerCount: Int
    /// Weight tensors stored.
    public var weightCount: Int
    /// Scalars in all weight tensors together.
    public var parameterCount: Int
    /// True when the file also stores optimizer state (`optimizer_weights` or `optimizer`).
    public var hasOptimizerState: Bool

    /// One paragraph: format, versions, model class, counts.
    public var paragraph: String {
        var parts = ["\(format.rawValue)"]
        if let kerasVersion { parts.append("written by Keras \(kerasVersion)") }
        if let backend { parts.append("backend \(backend)") }
        var s = parts.joined(separator: ", ") + "."
        if let modelClass {
            s += " Model: \(modelClass)" + (modelName.map { " \"\($0)\"" } ?? "") + " with \(layerCount) layers."
        } else {
            s += " No architecture stored (weights only): \(layerCount) layer groups."
        }
        s += " \(weightCount) weight tensors, \(parameterCount.formatted()) parameters."
        if hasOptimizerState { s += " Optimizer state included." }
        return s
    }

    /// Recognises a Keras HDF5 file, or returns nil when it is some other HDF5 file; with everything `inspect`
    /// prints: the model class and name from `model_config`, layer, tensor and parameter counts.
    public static func recognize(_ file: HDF5File) throws -> KerasFileInfo? {
        guard var info = try identify(file) else { return nil }
        let root = try file.root()
        switch info.format {
        case .legacyFullModel:
            let weightsRoot = root.contains("model_weights") ? try root.group("model_weights") : root
            info.layerCount = weightsRoot.hasListAttribute("layer_names") ? try weightsRoot.readStringListAttribute("layer_names").count : 0
            if root.hasAttribute("model_config"), let config = try? root.readStringAttribute("model_config") {
                let summary = ModelConfigSummary(json: config)
                info.modelClass = summary.className
                info.modelName = summary.name
                if let n = summary.layerCount { info.layerCount = n }
            }
            (info.weightCount, info.parameterCount) = try countWeights(weightsRoot)
        case .legacyWeights:
            info.layerCount = try root.readStringListAttribute("layer_names").count
            (info.weightCount, info.parameterCount) = try countWeights(root)
        case .keras3Weights:
            let layers = try root.group("layers")
            info.layerCount = try layers.children().filter { $0.kind == .group }.count
            (info.weightCount, info.parameterCount) = try countWeights(layers)
        }
        return info
    }

    /// The format, Keras version, backend and optimizer flag only (counts left at zero, no model class): what a
    /// load needs, without parsing `model_config` or walking every dataset (a fifth of loading ResNet50 took that).
    public static func identify(_ file: HDF5File) throws -> KerasFileInfo? {
        let root = try file.root()
        let version = try? root.readStringAttribute("keras_version")
        let backend = try? root.readStringAttribute("backend")
        if root.hasAttribute("model_config") || (root.contains("model_weights") && root.kind(of: "model_weights") == .group) {
            var info = KerasFileInfo(format: .legacyFullModel, kerasVersion: version, backend: backend,
                                     modelClass: nil, modelName: nil, layerCount: 0, weightCount: 0,
                                     parameterCount: 0, hasOptimizerState: root.contains("optimizer_weights"))
            if root.contains("model_weights") {
                let weightsRoot = try root.group("model_weights")
                if info.kerasVersion == nil { info.kerasVersion = try? weightsRoot.readStringAttribute("keras_version") }
                if info.backend == nil { info.backend = try? weightsRoot.readStringAttribute("backend") }
            }
            return info
        }
        if root.hasListAttribute("layer_names") {
            return KerasFileInfo(format: .legacyWeights, kerasVersion: version, backend: backend,
                                 modelClass: nil, modelName: nil, layerCount: 0, weightCount: 0,
                                 parameterCount: 0, hasOptimizerState: false)
        }
        if root.kind(of: "layers") == .group {
            return KerasFileInfo(format: .keras3Weights, kerasVersion: version, backend: backend,
                                 modelClass: nil, modelName: nil, layerCount: 0, weightCount: 0,
                                 parameterCount: 0, hasOptimizerState: root.contains("optimizer"))
        }
        return nil
    }

    /// Counts datasets and their elements below `group`, recursively.
    static func countWeights(_ group: HDF5Group) throws -> (tensors: Int, scalars: Int) {
        var visited = HDF5VisitedGroups()
        return try countWeights(group, visited: &visited)
    }

    /// `countWeights`, entering each group once.
    static func countWeights(_ group: HDF5Group, visited: inout HDF5VisitedGroups) throws -> (tensors: Int, scalars: Int) {
        guard visited.firstVisit(group) else { return (0, 0) }
        var tensors = 0, scalars = 0
        for child in try group.children() {
            switch child.kind {
            case .group:
                let (t, s) = try countWeights(try group.group(child.name), visited: &visited)
                tensors += t
                scalars += s
            case .dataset:
                tensors += 1
                scalars += try group.dataset(child.name).shape().reduce(1, *)
            default:
                break
            }
        }
        return (tensors, scalars)
    }
}

/// The few facts `inspect` reads from a `model_config` JSON without building the model.
struct ModelConfigSummary {
    var className: String?
    var name: String?
    var layerCount: Int?

    init(json: String) {
        guard let data = json.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return }
        className = object["class_name"] as? String
        if let config = object["config"] as? [String: Any] {
            name = config["name"] as? String
            if let layers = config["layers"] as? [[String: Any]] {
                // Like Keras's `len(model.layers)`: a Sequential's InputLayer is not one of its layers.
                let isSequential = className == "Sequential"
                layerCount = layers.filter { !(isSequential && ($0["class_name"] as? String) == "InputLayer") }.count
            }
        } else if let layers = object["config"] as? [Any] {
            // Keras 2.0-era Sequential: `config` is the list of layers itself.
            layerCount = layers.count
        }
    }
}
