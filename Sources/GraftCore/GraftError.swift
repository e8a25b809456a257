/// Every error Graft's modules throw conforms to this: one line for a person (`description`), whose fault it is
/// (`origin`) and, as values a program can use, the file, layer, tensor and key it concerns (`context`).
///
/// ```swift
/// do {
///     _ = try KerasLoader.load("model.h5")
/// } catch let error as GraftError where error.origin == .input {
///     print("cannot use \(error.context.file ?? "the file"): \(error)")
/// }
/// ```
///
/// The `graft` command line exits 1 for `.input` and 2 for `.internal`.
public protocol GraftError: Error, CustomStringConvertible, Sendable {
    /// Whose fault the error is: the input's (the default) or Graft's own.
    var origin: ErrorOrigin { get }
    /// What the error concerns, as far as the code that threw it knew.
    var context: ErrorContext { get }
}

extension GraftError {
    public var origin: ErrorOrigin { .input }
}

/// Whose fault an error is.
public enum ErrorOrigin: Sendable, Equatable {
    /// The file, data, recipe, option or call the caller gave is wrong or unsupported (an error they can act on).
    case input
    /// Graft broke one of its own rules (a bug to report).
    case `internal`
}

/// The things an error concerns, each nil when it concerns none or the thrower did not know: the file (or data
/// source), the layer, the tensor (a weight path such as `conv1/kernel` or an HDF5 object) and the key (a config or
/// recipe key, an option or a setting).
public struct ErrorContext: Sendable, Equatable, CustomStringConvertible {
    public var file: String?
    public var layer: String?
    public var tensor: String?
    public var key: String?

    public init(file: String? = nil, layer: String? = nil, tensor: String? = nil, key: String? = nil) {
        (self.file, self.layer, self.tensor, self.key) = (file, layer, tensor, key)
    }

    /// `other`'s values where it has them, else these (a wrapping error adds what it knows: its file).
    public func merging(_ other: ErrorContext) -> ErrorContext {
        ErrorContext(file: other.file ?? file, layer: other.layer ?? layer, tensor: other.tensor ?? tensor, key: other.key ?? key)
    }

    /// `file=… layer=… tensor=… key=…` for the fields that are set.
    public var description: String {
        [("file", file), ("layer", layer), ("tensor", tensor), ("key", key)]
            .compactMap { name, value in value.map { "\(name)=\($0)" } }.joined(separator: " ")
    }
}

/// Graft broke one of its own rules: the message says which; a bug to report.
public struct InternalError: GraftError {
    public let message: String
    public let context: ErrorContext
    public init(_ message: String, context: ErrorContext = ErrorContext()) {
        (self.message, self.context) = (message, context)
    }
    public var origin: ErrorOrigin { .internal }
    public var description: String { message }
}
