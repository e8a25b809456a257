import CHDF5

/// The kind of a named child inside a group.
public enum HDF5ObjectKind: String, Sendable, Equatable {
    case group, dataset, namedType = "datatype", other
}

/// A child link of a group, with what it points to.
public struct HDF5Child: Sendable, Equatable {
    public let name: String
    public let kind: HDF5ObjectKind

    public init(name: String, kind: HDF5ObjectKind) {
        self.name = name
        self.kind = kind
    }
}

/// An open group or dataset: a handle closed when the object goes away.
public class HDF5Object {
    let id: hid_t
    /// The file this object lives in (kept open while the object is alive).
    public let file: HDF5File
    /// The absolute path of the object inside the file (`/model_weights/conv1`).
    public let path: String

    init(id: hid_t, file: HDF5File, path: String) {
        self.id = id
        self.file = file
        self.path = path
    }

    deinit { H5Oclose(id) }

    /// The last component of `path` (`conv1`); `/` for the root.
    public var name: String {
        if path == "/" { return "/" }
        return String(path.split(separator: "/").last ?? "")
    }

    func error(_ kind: HDF5ErrorKind, _ sub: String? = nil, _ detail: String = "") -> HDF5Error {
        HDF5Error(kind, file: file.path, path: sub.map { HDF5Path.join(path, $0) } ?? path, detail: detail)
    }

    func failure(_ kind: HDF5ErrorKind, _ sub: String? = nil) -> HDF5Error {
        error(kind, sub, HDF5Runtime.takeErrorStack())
    }
}

/// Path helpers for HDF5 object paths.
enum HDF5Path {
    static func join(_ base: String, _ name: String) -> String {
        if name.hasPrefix("/") { return name }
        if base.isEmpty || base == "/" { return "/" + name }
        return base + "/" + name
    }

    static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }
}
