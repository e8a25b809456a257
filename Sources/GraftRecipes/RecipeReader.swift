import Foundation
import GraftCore
import GraftData
import GraftTrain
import Yams

/// A recipe error: the file, the line, the key and what is wrong, on one line.
public struct RecipeError: GraftError {
    public let file: String
    public let line: Int?
    public let key: String
    public let message: String
    public var context: ErrorContext { ErrorContext(file: file, key: key.isEmpty ? nil : key) }

    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(key.isEmpty ? "" : "\(key): ")\(message)"
    }
}

/// Typed, strict access to a YAML node: every read names its key path and line when it fails, and mappings
/// reject keys they do not know.
struct Reader {
    let node: Node?
    let key: String
    let file: String

    var line: Int? { node?.mark?.line }
    var isMissing: Bool {
        guard let node else { return true }
        if case .scalar(let s) = node, s.style == .plain, ["", "~", "null", "Null", "NULL"].contains(s.string) { return true }
        return false
    }

    func fail(_ message: String) -> RecipeError { RecipeError(file: file, line: line, key: key, message: message) }

    func child(_ name: String) -> Reader {
        Reader(node: node?.mapping?[name], key: key.isEmpty ? name : "\(key).\(name)", file: file)
    }

    /// The mapping's keys must all be in `allowed`.
    func mapping(allowed: Set<String>) throws -> Reader {
        guard let m = node?.mapping else { throw fail("expected a mapping of keys, found \(describe)") }
        for (k, v) in m {
            guard let name = k.string else { throw fail("keys must be strings") }
            if !allowed.contains(name) {
                let at = v.mark?.line ?? k.mark?.line
                throw RecipeError(file: file, line: at, key: key.isEmpty ? name : "\(key).\(name)",
                                  message: "unknown key (allowed here: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
        return self
    }

    var items: [Reader] {
        get throws {
            if isMissing { return [] }
            guard let s = node?.sequence else { throw fail("expected a list, found \(describe)") }
            return s.enumerated().map { Reader(node: $1, key: "\(key)[\($0)]", file: file) }
        }
    }

    var describe: String {
        guard let node else { return "nothing" }
        switch node {
        case .scalar(let s): return "\"\(s.string)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    func string(default d: String? = nil) throws -> String {
        if isMissing, let d { return d }
        guard let s = node?.scalar?.string, !isMissing else { throw fail("expected text, found \(describe)") }
        return s
    }

    func optionalString() throws -> String? { isMissing ? nil : try string() }

    /// An integer in `lo...hi` (at most a billion unless told: no recipe count needs more, and sums of them must
    /// not overflow).
    func int(default d: Int? = nil, min lo: Int = Int.min, max hi: Int = 1_000_000_000) throws -> Int {
        if isMissing, let d { return d }
        guard let v = node?.int, node?.scalar != nil else { throw fail("expected an integer, found \(describe)") }
        guard v >= lo else { throw fail("must be at least \(lo), got \(v)") }
        guard v <= hi else { throw fail("must be at most \(hi), got \(v)") }
        return v
    }

    func optionalInt(min lo: Int = Int.min, max hi: Int = 1_000_000_000) throws -> Int? { isMissing ? nil : try int(min: lo, max: hi) }

    func double(default d: Double? = nil) throws -> Double {
        if isMissing, let d { return d }
        guard let v = node?.float ?? node?.int.map(Double.init), node?.scalar != nil else {
            throw fail("expected a number, found \(describe)")
        }
        guard v.isFinite else { throw fail("must be a finite number, got \(describe)") }
        return v
    }

    func optionalDouble() throws -> Double? { isMissing ? nil : try double() }

    func bool(default d: Bool) throws -> Bool {
        if isMissing { return d }
        guard let v = node?.bool else { throw fail("expected true or false, found \(describe)") }
        return v
    }

    func strings() throws -> [String] {
        if isMissing { return [] }
        if let s = node?.scalar?.string { return s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        return try items.map { try $0.string() }
    }

    func ints() throws -> [Int] { try items.map { try $0.int() } }
    /// Text decoded into a typed value by `parse` (a schedule, an optimizer, a freeze spec); its error is this key's.
    func parsed<T>(default d: T? = nil, _ parse: (String) throws -> T) throws -> T {
        if isMissing, let d { return d }
        let text = try string()
        do { return try parse(text) } catch {
            switch error {
            case let e as TrainError: throw fail(e.message)
            case let e as DataError: throw fail(e.message)
            default: throw fail("\(error)")
            }
        }
    }

    func optionalParsed<T>(_ parse: (String) throws -> T) throws -> T? { isMissing ? nil : try parsed(parse) }

    /// A list (or one comma-separated text) of typed values, each error naming its item (`augment[1]`).
    func parsedList<T>(_ parse: (String) throws -> T) throws -> [T] {
        if isMissing { return [] }
        if node?.scalar != nil { return try strings().map { item in try Reader(node: Node(item), key: key, file: file).parsed(parse) } }
        return try items.map { try $0.parsed(parse) }
    }
}
