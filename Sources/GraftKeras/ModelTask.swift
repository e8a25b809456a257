import Foundation
import GraftHDF5

/// What a model Graft trained is for: the classes in output order, how images were prepared, and what it was
/// fine-tuned from. Graft stores it with every checkpoint it writes, where Keras ignores it: the `graft_task` root
/// attribute (JSON) of `.h5` and `.weights.h5` files, the `graft_task` key of a `.keras` archive's `metadata.json`.
/// `evaluate`, `predict`, `extract` and a continued fine-tune take their defaults from it.
public struct ModelTask: Codable, Sendable, Equatable {
    /// Class names, index i for output i.
    public var classNames: [String]?
    /// The preprocessing mode as typed (`1/255`, `tf`, `caffe`, `torch`, `scale:S`, `none`).
    public var preprocessing: String?
    /// How images were fitted to the input (`resize`, `pad`, …).
    public var fit: String?
    /// The `[height, width]` images were fitted to.
    public var inputSize: [Int]?
    /// Channels of the input (1 gray, 3 RGB).
    public var channels: Int?
    /// The checkpoint this model was fine-tuned from: its file name and SHA-256.
    public var source: String?
    public var sourceSHA256: String?

    public init(classNames: [String]? = nil, preprocessing: String? = nil, fit: String? = nil, inputSize: [Int]? = nil,
                channels: Int? = nil, source: String? = nil, sourceSHA256: String? = nil) {
        self.classNames = classNames
        self.preprocessing = preprocessing
        self.fit = fit
        self.inputSize = inputSize
        self.channels = channels
        self.source = source
        self.sourceSHA256 = sourceSHA256
    }

    enum CodingKeys: String, CodingKey {
        case classNames = "class_names", preprocessing, fit, inputSize = "input_size", channels, source
        case sourceSHA256 = "source_sha256"
    }

    /// The attribute (in HDF5 files) and metadata key (in `.keras` archives) that hold it.
    public static let key = "graft_task"

    /// Compact JSON with sorted keys.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Decodes and range-checks a stored task; errors name `source` and the field.
    public static func decode(_ json: String, source: String) throws -> ModelTask {
        guard json.utf8.count <= 8 << 20 else { throw KerasError("\(source): \(key) is \(json.utf8.count) bytes (at most 8 MiB)", file: source) }
        let task: ModelTask
        do {
            task = try JSONDecoder().decode(ModelTask.self, from: Data(json.utf8))
        } catch {
            throw KerasError("\(source): \(key) is not a valid task description (\(reason(error)))", file: source)
        }
        func fail(_ field: String, _ why: String) -> KerasError { KerasError("\(source): \(key).\(field) \(why)", file: source) }
        func printable(_ s: String) -> Bool {
            s.utf8.count <= 1024 && !s.unicodeScalars.contains { $0.properties.generalCategory == .control }
        }
        if let names = task.classNames {
            guard !names.isEmpty, names.count <= 100_000 else { throw fail("class_names", "holds \(names.count) names (1 to 100,000)") }
            for n in names where n.isEmpty || !printable(n) { throw fail("class_names", "holds an empty or unprintable name") }
            guard Set(names).count == names.count else { throw fail("class_names", "names a class twice") }
        }
        for (field, value) in [("preprocessing", task.preprocessing), ("fit", task.fit), ("source", task.source), ("source_sha256", task.sourceSHA256)] {
            if let value, !printable(value) { throw fail(field, "is not printable text of at most 1024 bytes") }
        }
        if let size = task.inputSize {
            guard size.count == 2, size.allSatisfy({ (1...16_384).contains($0) }) else { throw fail("input_size", "must be [height, width], each 1 to 16384") }
        }
        if let c = task.channels, !(1...4).contains(c) { throw fail("channels", "must be 1 to 4, got \(c)") }
        return task
    }

    /// Which field of the JSON did not decode, in a few words.
    static func reason(_ error: Error) -> String {
        guard let e = error as? DecodingError else { return "not JSON" }
        switch e {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            if !path.isEmpty { return "\(path) has the wrong type" }
            // Foundation's own words (a number too large for its field, not an object), one printable line.
            let words = String(c.debugDescription.prefix(120).map { $0.isLetter || $0.isNumber || " .,:'-+".contains($0) ? $0 : " " })
            return words.isEmpty ? "not a JSON object" : words
        @unknown default:
            return "not valid"
        }
    }

    /// The task stored in an HDF5 checkpoint's root, if any.
    public static func read(_ root: HDF5Group, source: String) throws -> ModelTask? {
        guard root.hasAttribute(key) else { return nil }
        return try decode(try root.readStringAttribute(key), source: source)
    }

    /// Stores the task as the root attribute of an HDF5 file being written.
    func write(to root: HDF5Group) throws {
        try root.setAttribute(Self.key, string: json())
    }
}
