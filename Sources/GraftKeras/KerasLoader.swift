import Foundation
import GraftFiles
import GraftHDF5
import GraftNN
import GraftTensor
import ZIPFoundation

/// A model loaded from a checkpoint, with what the load did.
public struct LoadedModel {
    public let model: Model
    public let source: String
    public let format: String
    public let kerasVersion: String?
    public let report: WeightLoadReport
    /// What the model was trained for, when Graft wrote the file (`ModelTask`).
    public var task: ModelTask?
}

/// Loads any supported Keras checkpoint: legacy full-model `.h5`; weights-only `.h5` and Keras 3
/// `.weights.h5` (with an architecture from a full-model file, a `.keras` archive or a config `.json`);
/// `.keras` archives.
public enum KerasLoader {
    public static func load(_ path: String, architecture: String? = nil, allowMissing: [String] = []) throws -> LoadedModel {
        // Every parameter must come from the file (a missing one is an error) unless some may be missing: then the
        // model's random initialisation is wasted work.
        // The parameters can be no larger than the weights file can hold: the model is built, its parameters
        // allocated, before a weight is read.
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        return try Initializer.$budget.withValue(.weights(inFileOf: size)) {
            try Initializer.$skipRandom.withValue(allowMissing.isEmpty) {
                try loadAll(path, size: size, architecture: architecture, allowMissing: allowMissing)
            }
        }
    }

    private static func loadAll(_ path: String, size: Int, architecture: String?, allowMissing: [String]) throws -> LoadedModel {
        guard FileManager.default.fileExists(atPath: path) else { throw KerasError("\(path): file not found", file: path) }
        if let problem = HDF5File.regularFileProblem(path) { throw KerasError("\(path): \(problem)", file: path) }
        if path.hasSuffix(".keras") || isZip(path) {
            return try loadArchive(path, allowMissing: allowMissing)
        }
        // The weights go into one arena of the file's size, whose pages are mapped while the check child reads
        // the file (this process only waits then): filling them is then a plain copy (ResNet50: 28 -> 8 ms).
        // At most a quarter of memory: a file may hold much besides weights (optimizer state), and pages are mapped
        // for as long as the check runs.
        let arena = TensorArena(bytes: min(size, Int(clamping: ProcessInfo.processInfo.physicalMemory / 4)))
        defer { arena?.trim() }
        let file = try HDF5File.open(path, whileChecking: arena.map { arena in { finished in arena.populate(until: finished) } })
        guard let info = try KerasFileInfo.identify(file) else {
            throw KerasError("\(path): not a Keras checkpoint (no model_config, layer_names or layers/ group)", file: path)
        }
        let root = try file.root()
        switch info.format {
        case .legacyFullModel:
            let model: Model
            let weights: KerasWeights.LegacyWeights
            if let architecture {
                model = try loadArchitecture(architecture)
                weights = try KerasWeights.collectLegacy(try root.group("model_weights"), source: path, arena: arena)
            } else {
                guard root.hasAttribute("model_config") else {
                    throw KerasError("\(path): the file has model_weights but no model_config; pass an architecture", file: path)
                }
                let config = try root.readStringAttribute("model_config")
                let kerasVersion = info.kerasVersion
                // The model is built on a second thread while this one reads the weights (libhdf5 stays on this
                // one; building is plain Swift): ResNet50's 12 ms build hides behind the walk of its file.
                let build = OnAnotherThread { try buildModel(config, kerasVersion: kerasVersion, source: path) }
                let collected = Result { try KerasWeights.collectLegacy(try root.group("model_weights"), source: path, arena: arena) }
                model = try build.value()   // a bad config is reported before bad weights, as before
                weights = try collected.get()
            }
            let tensors = KerasWeights.mapLegacy(weights, to: model)
            let report = try KerasWeights.apply(tensors, to: model, source: path, allowMissing: allowMissing)
            return LoadedModel(model: model, source: path, format: info.format.rawValue, kerasVersion: info.kerasVersion, report: report,
                               task: try ModelTask.read(root, source: path))
        case .legacyWeights, .keras3Weights:
            guard let architecture else {
                throw KerasError("\(path): \(info.format.rawValue) holds weights only; give an architecture (a full-model .h5, a .keras archive or a model config .json)", file: path)
            }
            let model = try loadArchitecture(architecture)
            let tensors = info.format == .legacyWeights
                ? try KerasWeights.readLegacy(root, model: model, source: path, arena: arena)
                : try KerasWeights.readKeras3(root, model: model, source: path, arena: arena)
            let report = try KerasWeights.apply(tensors, to: model, source: path, allowMissing: allowMissing)
            return LoadedModel(model: model, source: path, format: info.format.rawValue, kerasVersion: info.kerasVersion, report: report,
                               task: try ModelTask.read(root, source: path))
        }
    }

    /// Loads a checkpoint's weights into a model that already exists, by name, as Keras's `model.load_weights`:
    /// any format `load` reads (a full-model or weights-only `.h5`, a Keras 3 `.weights.h5`, a `.keras` archive),
    /// with the same checks (a regular file, the HDF5 integrity check, sizes counted as they inflate). Every
    /// parameter must come from the file unless its path matches `allowMissing`.
    @discardableResult
    public static func loadWeights(from path: String, into model: Model, allowMissing: [String] = []) throws -> WeightLoadReport {
        guard FileManager.default.fileExists(atPath: path) else { throw KerasError("\(path): file not found", file: path) }
        if let problem = HDF5File.regularFileProblem(path) { throw KerasError("\(path): \(problem)", file: path) }
        if path.hasSuffix(".keras") || isZip(path) {
            let staged = TemporaryFile(in: FileManager.default.temporaryDirectory.path, for: "model.weights.h5")
            defer { staged.discard() }
            let (bytes, overflow) = model.parameterCounts.total.multipliedReportingOverflow(by: 8)
            let (_, _, weights, _) = try readArchive(path, extractWeightsTo: staged, weightsLimit: { _, _ in overflow ? Int.max : bytes + (64 << 20) })
            guard let weights else { throw KerasError("\(path): archive has no weights", file: path) }
            let tensors = try KerasWeights.readKeras3(try HDF5File.open(weights).root(), model: model, source: "\(path)!model.weights.h5")
            return try KerasWeights.apply(tensors, to: model, source: path, allowMissing: allowMissing)
        }
        let file = try HDF5File.open(path)
        guard let info = try KerasFileInfo.identify(file) else {
            throw KerasError("\(path): not a Keras checkpoint (no model_config, layer_names or layers/ group)", file: path)
        }
        let root = try file.root()
        let tensors: [String: Tensor]
        switch info.format {
        case .legacyFullModel: tensors = try KerasWeights.readLegacy(try root.group("model_weights"), model: model, source: path)
        case .legacyWeights: tensors = try KerasWeights.readLegacy(root, model: model, source: path)
        case .keras3Weights: tensors = try KerasWeights.readKeras3(root, model: model, source: path)
        }
        return try KerasWeights.apply(tensors, to: model, source: path, allowMissing: allowMissing)
    }

    /// An architecture without weights (freshly initialised) from a full-model `.h5`, a `.keras` archive, a `.json`
    /// config, or a built-in one: `zoo:NAME` with optional `?classes=N&no-top&input=H,W,C` (and `tiles=N` for
    /// `tiled`).
    public static func loadArchitecture(_ path: String) throws -> Model {
        // Within a load, the weights file's budget; alone, half the machine's memory.
        guard Initializer.budget != nil else {
            return try Initializer.$budget.withValue(.machine()) { try loadArchitecture(path) }
        }
        if path.hasPrefix("zoo:") { return try zooArchitecture(String(path.dropFirst(4))) }
        guard FileManager.default.fileExists(atPath: path) else { throw KerasError("\(path): architecture file not found", file: path) }
        if let problem = HDF5File.regularFileProblem(path) { throw KerasError("\(path): \(problem)", file: path) }
        do {
            if path.hasSuffix(".json") {
                let json = try String(contentsOfFile: path, encoding: .utf8)
                return try KerasModelBuilder.build(json: json, kerasVersion: nil)
            }
            if path.hasSuffix(".keras") || isZip(path) {
                let (config, version, _, _) = try readArchive(path, extractWeightsTo: nil)
                return try KerasModelBuilder.build(json: config, kerasVersion: version)
            }
            let root = try HDF5File.open(path).root()
            guard root.hasAttribute("model_config") else {
                throw KerasError("\(path): no model_config attribute, so it holds no architecture", file: path)
            }
            let version = try? root.readStringAttribute("keras_version")
            return try KerasModelBuilder.build(json: try root.readStringAttribute("model_config"), kerasVersion: version)
        } catch let e as KerasError {
            throw KerasError(e, file: path)
        } catch let e as LayerError {
            throw KerasError(e, file: path)
        }
    }

    /// `resnet50`, `mobilenetv2?classes=10&input=96,96,3`, `vgg16?no-top`.
    static func zooArchitecture(_ spec: String) throws -> Model {
        let parts = spec.split(separator: "?", maxSplits: 1).map(String.init)
        var options = Zoo.Options()
        for item in (parts.count > 1 ? parts[1] : "").split(separator: "&") {
            let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
            switch (kv[0], kv.count > 1 ? kv[1] : nil) {
            case ("no-top", nil): options.includeTop = false
            case ("classes", let v?):
                guard let n = Int(v), n > 0 else { throw KerasError("architecture zoo:\(spec): classes must be a positive integer") }
                options.classes = n
            case ("input", let v?):
                let dims = v.split(separator: ",").compactMap { Int($0) }
                guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else { throw KerasError("architecture zoo:\(spec): input must be H,W,C") }
                options.inputShape = dims
            case ("tiles", let v?):
                guard let n = Int(v), (1...64).contains(n) else { throw KerasError("architecture zoo:\(spec): tiles must be a whole number from 1 to 64") }
                options.tiles = n
            default:
                throw KerasError("architecture zoo:\(spec): unknown option \(item) (classes=N, no-top, input=H,W,C, tiles=N)")
            }
        }
        do {
            return try Zoo.build(parts[0], options: options)
        } catch let e as LayerError {
            throw KerasError("architecture zoo:\(spec): \(e.message)", context: e.context)
        }
    }

    /// The model a Keras config describes; errors name `source`.
    static func buildModel(_ config: String, kerasVersion: String?, source: String) throws -> Model {
        do {
            return try KerasModelBuilder.build(json: config, kerasVersion: kerasVersion)
        } catch let e as KerasError {
            throw KerasError(e, file: source)
        } catch let e as LayerError {
            throw KerasError(e, file: source)
        }
    }

    static func isZip(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        let magic = (try? h.read(upToCount: 4)) ?? Data()
        return magic == Data([0x50, 0x4B, 0x03, 0x04])
    }

    /// Reads a `.keras` archive: `config.json`, `metadata.json` (Keras version) and, if asked, extracts
    /// `model.weights.h5`. Sizes are counted as the bytes inflate, not taken from the zip's headers: the config and
    /// metadata may be at most 64 MiB, the weights at most `weightsLimit` bytes. An archive holding two entries of one
    /// name is refused (Keras reads the last, a plain reader the first: the two would see different models).
    static func readArchive(_ path: String, extractWeightsTo destination: TemporaryFile?,
                            weightsLimit: (_ config: String, _ version: String?) throws -> Int = { _, _ in 16 << 30 }) throws
        -> (config: String, version: String?, weights: String?, task: ModelTask?) {
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw KerasError("\(path): not a readable .keras (zip) archive", file: path)
        }
        var names = Set<String>()
        for entry in archive where !names.insert(entry.path).inserted {
            throw KerasError("\(path): holds two entries named \(entry.path) (Keras would read the last one); refusing an ambiguous archive", file: path)
        }
        /// Inflates `entry` into `sink`, stopping with an error once more than `limit` bytes came out.
        func inflate(_ entry: Entry, limit: Int, _ sink: (Data) throws -> Void) throws {
            var total = 0
            do {
                _ = try archive.extract(entry, skipCRC32: false) { chunk in
                    total += chunk.count
                    guard total <= limit else { throw ArchiveLimit.exceeded }
                    try sink(chunk)
                }
            } catch ArchiveLimit.exceeded {
                throw KerasError("\(path): \(entry.path) inflates to more than \(limit >> 20) MiB (its header declares \(entry.uncompressedSize) bytes)", file: path)
            } catch let e as KerasError {
                throw e
            } catch {
                throw KerasError("\(path): cannot extract \(entry.path) (\(error))", file: path)
            }
        }
        func text(_ name: String) throws -> String? {
            guard let entry = archive[name] else { return nil }
            var data = Data()
            try inflate(entry, limit: 64 << 20) { data.append($0) }
            return String(decoding: data, as: UTF8.self)
        }
        guard let config = try text("config.json") else { throw KerasError("\(path): archive has no config.json", file: path) }
        var version: String?
        var task: ModelTask?
        if let meta = try text("metadata.json"), let d = meta.data(using: .utf8),
           let obj = try? JSONSerialization.jsonObject(with: d) as? [String: Any] {
            version = obj["keras_version"] as? String
            if let t = obj[ModelTask.key] {
                let json = (try? JSONSerialization.data(withJSONObject: t)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
                task = try ModelTask.decode(json, source: "\(path)!metadata.json")
            }
        }
        var weights: String?
        if let destination {
            guard let entry = archive["model.weights.h5"] else { throw KerasError("\(path): archive has no model.weights.h5", file: path) }
            let limit = try weightsLimit(config, version)
            let folder = (destination.path as NSString).deletingLastPathComponent
            guard FileManager.default.createFile(atPath: destination.path, contents: nil), let out = FileHandle(forWritingAtPath: destination.path) else {
                throw KerasError("\(path): cannot stage model.weights.h5 in \(folder) (\(String(cString: strerror(errno))))", file: path)
            }
            defer { try? out.close() }
            try inflate(entry, limit: limit) { chunk in
                do { try out.write(contentsOf: chunk) } catch {
                    throw KerasError("\(path): cannot stage model.weights.h5 in \(folder) (\(error.localizedDescription))", file: path)
                }
            }
            weights = destination.path
        }
        return (config, version, weights, task)
    }

    private enum ArchiveLimit: Error { case exceeded }

    static func loadArchive(_ path: String, allowMissing: [String]) throws -> LoadedModel {
        // The weights are staged in $TMPDIR for libhdf5 to open; the staging copy goes when this returns, on a
        // signal, or (after kill -9) with the next load's sweep of stale temporaries there.
        let staged = TemporaryFile(in: FileManager.default.temporaryDirectory.path, for: "model.weights.h5")
        defer { staged.discard() }
        // The model is built from the config first: its parameter count bounds the weights file (twice the
        // parameters' bytes and 64 MiB of HDF5 structure), whatever the zip declares.
        var built: Model?
        func build(_ config: String, _ version: String?) throws -> Model {
            try buildModel(config, kerasVersion: version, source: path)
        }
        let (config, version, weights, task) = try readArchive(path, extractWeightsTo: staged, weightsLimit: { config, version in
            let model = try build(config, version)
            built = model
            let (bytes, overflow) = model.parameterCounts.total.multipliedReportingOverflow(by: 8)
            return overflow ? Int.max : bytes + (64 << 20)
        })
        let model = try built ?? build(config, version)
        guard let weights else { throw KerasError("\(path): archive has no weights", file: path) }
        let root = try HDF5File.open(weights).root()
        let tensors = try KerasWeights.readKeras3(root, model: model, source: "\(path)!model.weights.h5")
        let report = try KerasWeights.apply(tensors, to: model, source: path, allowMissing: allowMissing)
        return LoadedModel(model: model, source: path, format: ".keras archive", kerasVersion: version, report: report, task: task)
    }
}

/// Runs `work` on a new thread at once, with the caller's `Initializer.skipRandom` and `budget` (task-local values do not
/// follow a plain thread); `value()` waits for its result.
final class OnAnotherThread<T>: @unchecked Sendable {
    /// Written once by the thread before it signals `done`; read only after waiting for it.
    private var result: Result<T, Error> = .failure(CancellationError())
    private let done = DispatchSemaphore(value: 0)

    init(_ work: @escaping () throws -> T) {
        let skipRandom = Initializer.skipRandom, budget = Initializer.budget
        nonisolated(unsafe) let work = work   // runs on that thread only
        let thread = Thread { [self] in
            result = Result {
                try Initializer.$budget.withValue(budget) { try Initializer.$skipRandom.withValue(skipRandom) { try work() } }
            }
            done.signal()
        }
        thread.stackSize = 8 << 20   // as the main thread's: deep configs recurse
        thread.start()
    }

    func value() throws -> T {
        done.wait()
        done.signal()
        return try result.get()
    }
}
