import Foundation
import GraftCore

/// Errors from reading Keras configs and weights and writing Keras files: the message names the file, layer or
/// tensor involved, and `context` holds them as values.
public struct KerasError: GraftError {
    public let message: String
    public let context: ErrorContext

    public init(_ message: String, file: String? = nil, layer: String? = nil, tensor: String? = nil, key: String? = nil) {
        self.init(message, context: ErrorContext(file: file, layer: layer, tensor: tensor, key: key))
    }

    public init(_ message: String, context: ErrorContext) {
        (self.message, self.context) = (message, context)
    }

    /// `error` as met while reading `file`: its message after the file's name (unless it names the file already),
    /// its context with the file added.
    public init(_ error: any Error, file: String) {
        let text = (error as? KerasError)?.message ?? "\(error)"
        let context = (error as? GraftError)?.context ?? ErrorContext()
        self.init(text.hasPrefix(file) ? text : "\(file): \(text)", context: context.merging(ErrorContext(file: file)))
    }

    public var description: String { message }
}

/// Read-only access to a decoded JSON value with typed getters that throw errors naming the key path.
struct JSON: @unchecked Sendable {
    let value: Any?
    let path: String

    init(_ value: Any?, path: String = "") {
        self.value = value
        self.path = path
    }

    subscript(_ key: String) -> JSON {
        JSON((value as? [String: Any])?[key], path: path.isEmpty ? key : "\(path).\(key)")
    }

    subscript(_ index: Int) -> JSON {
        let arr = value as? [Any]
        return JSON(arr.flatMap { index < $0.count ? $0[index] : nil }, path: "\(path)[\(index)]")
    }

    var isNull: Bool { value == nil || value is NSNull }
    var array: [JSON]? {
        (value as? [Any]).map { $0.enumerated().map { JSON($1, path: "\(path)[\($0)]") } }
    }
    var object: [String: Any]? { value as? [String: Any] }
    var string: String? { value as? String }
    var bool: Bool? { value as? Bool }
    var double: Double? {
        if let d = value as? Double { return d }
        if let i = value as? Int { return Double(i) }
        return nil
    }
    var int: Int? {
        if let i = value as? Int { return i }
        if let d = value as? Double, d == d.rounded() { return Int(exactly: d) }   // nil for 1e400, NaN or beyond Int
        return nil
    }

    func string(_ what: String = "a string") throws -> String {
        guard let s = string else { throw KerasError("config key \(path): expected \(what), found \(render)", key: path) }
        return s
    }

    func int(default d: Int? = nil) throws -> Int {
        if isNull, let d { return d }
        guard let i = int else { throw KerasError("config key \(path): expected an integer, found \(render)", key: path) }
        return i
    }

    func float(default d: Float? = nil) throws -> Float {
        if isNull, let d { return d }
        guard let v = double else { throw KerasError("config key \(path): expected a number, found \(render)", key: path) }
        return Float(v)
    }

    func bool(default d: Bool) throws -> Bool {
        if isNull { return d }
        guard let b = bool else { throw KerasError("config key \(path): expected true or false, found \(render)", key: path) }
        return b
    }

    /// An int or a list of `n` ints (Keras's `kernel_size: 3` or `[3, 3]`).
    func ints(_ n: Int, default d: [Int]? = nil) throws -> [Int] {
        if isNull, let d { return d }
        if let i = int { return [Int](repeating: i, count: n) }
        guard let a = array, a.count == n else { throw KerasError("config key \(path): expected \(n) integers, found \(render)", key: path) }
        return try a.map { try $0.int() }
    }

    var render: String {
        guard let value, !isNull else { return "nothing" }
        let s = String(describing: value)
        return s.count > 60 ? String(s.prefix(60)) + "…" : s
    }
}
