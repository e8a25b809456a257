import CHDF5
import GraftCore

/// What went wrong in an HDF5 operation.
public enum HDF5ErrorKind: String, Sendable, Equatable {
    case fileNotFound = "file not found"
    case notHDF5 = "not an HDF5 file"
    case cannotOpen = "cannot open"
    case cannotCreate = "cannot create"
    case missingPath = "no such object"
    case typeMismatch = "type mismatch"
    case shapeMismatch = "shape mismatch"
    case tooLarge = "too large"
    case readFailed = "read failed"
    case writeFailed = "write failed"
    case invalidArgument = "invalid argument"
    /// The file asks Graft to read something outside it (an external link, external storage, a virtual dataset).
    case outsideFile = "refused: reads outside the file"
}

/// A typed HDF5 error naming the file and, where there is one, the object path inside it.
///
/// `description` is one line: `file.h5: /model_weights/conv1: no such object (…detail…)`.
public struct HDF5Error: GraftError, Equatable {
    public let kind: HDF5ErrorKind
    public let file: String
    public let path: String?
    public let detail: String

    public init(_ kind: HDF5ErrorKind, file: String, path: String? = nil, detail: String = "") {
        self.kind = kind
        self.file = file
        self.path = path
        self.detail = detail
    }

    /// The file and the object in it (as `tensor`).
    public var context: ErrorContext { ErrorContext(file: file, tensor: path) }

    public var description: String {
        var s = file
        if let path { s += ": \(path)" }
        s += ": \(kind.rawValue)"
        if !detail.isEmpty { s += " (\(detail))" }
        return s
    }
}

/// Internal helpers around libhdf5's error stack.
enum HDF5Runtime {
    /// Access property lists for every open and lookup: external links are refused and a path follows at most 16
    /// soft links (`graft_safe_access_plist`), so a file can neither send Graft to another file nor loop.
    static let linkAccess = graft_safe_access_plist(graft_H5P_LINK_ACCESS())
    static let groupAccess = graft_safe_access_plist(graft_H5P_GROUP_ACCESS())
    static let datasetAccess = graft_safe_access_plist(graft_H5P_DATASET_ACCESS())
    /// The file access property list of every file on disk: the sec2 driver (the bulk reads use its descriptor) and no
    /// HDF5 file locking. libhdf5 1.10 takes an flock on every open for its SWMR mode, which Graft never uses; the
    /// lock is held by every open description of the file, including the copy a child process holds between fork
    /// (or posix_spawn) and exec, so a file reopened while any thread of the process started a child failed with
    /// "unable to lock file, errno = 11" (seen in 1 of 10 fresh-clone runs of the suite).
    static let fileAccess: hid_t = {
        let fapl = H5Pcreate(graft_H5P_FILE_ACCESS())
        guard fapl >= 0 else { return graft_H5P_DEFAULT() }
        H5Pset_fapl_sec2(fapl)
        H5Pset_file_locking(fapl, false, true)
        return fapl
    }()

    /// Turns off HDF5's automatic error printing for the calling thread.
    /// In a thread-safe build the setting is per thread, so every entry point calls this.
    @inline(__always)
    static func quiet() {
        H5Eset_auto2(graft_H5E_DEFAULT(), nil, nil)
    }

    /// Collects the messages on the current thread's error stack (outermost first) and clears it.
    static func takeErrorStack() -> String {
        final class Box { var messages: [String] = [] }
        let box = Box()
        let unmanaged = Unmanaged.passRetained(box)
        defer { unmanaged.release() }
        H5Ewalk2(graft_H5E_DEFAULT(), H5E_WALK_DOWNWARD, { _, desc, data in
            guard let desc, let data else { return 0 }
            let box = Unmanaged<Box>.fromOpaque(data).takeUnretainedValue()
            if let d = desc.pointee.desc {
                let text = String(cString: d)
                if !text.isEmpty { box.messages.append(text) }
            }
            return 0
        }, unmanaged.toOpaque())
        H5Eclear2(graft_H5E_DEFAULT())
        let msgs = box.messages
        guard let first = msgs.first else { return "" }
        if msgs.count == 1 { return first }
        // The outermost says what failed, the innermost says why.
        return "\(first): \(msgs[msgs.count - 1])"
    }
}
