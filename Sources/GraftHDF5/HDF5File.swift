import CHDF5
import Foundation

/// Limits that protect against hostile files declaring absurd sizes.
public enum HDF5Limits {
    /// The largest read or write, in bytes, that GraftHDF5 will attempt (8 GiB).
    public static let maxBytes = 8 << 30
}

/// An optional check run on every file before libhdf5 opens it read-only. libhdf5 1.10 can crash or hang on some
/// damaged files (found by `tools/fuzz`); the `graft` command line installs a check that reads the whole file in a
/// child process first, so a crash or hang there becomes a one-line error here.
public enum HDF5Guard {
    nonisolated(unsafe) public static var check: ((String) throws -> Void)?
}

/// An open HDF5 file. Objects opened from it keep it alive; the file closes when the last one goes,
/// or explicitly with `close()`.
public final class HDF5File {
    /// The file's path on disk, as given.
    public let path: String
    /// True when opened or created writable.
    public let isWritable: Bool
    private(set) var id: hid_t
    private var closed = false

    private init(id: hid_t, path: String, writable: Bool) {
        self.id = id
        self.path = path
        self.isWritable = writable
    }

    deinit {
        if !closed { H5Fclose(id) }
    }

    /// Opens an existing file read-only, or read-write when `writable`.
    /// - Throws: `HDF5Error` `.fileNotFound`, `.notHDF5` or `.cannotOpen`, naming the file.
    public static func open(_ path: String, writable: Bool = false) throws -> HDF5File {
        HDF5Runtime.quiet()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw HDF5Error(.fileNotFound, file: path)
        }
        if isDir.boolValue { throw HDF5Error(.cannotOpen, file: path, detail: "is a directory") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw HDF5Error(.cannotOpen, file: path, detail: "permission denied")
        }
        if !writable, let check = HDF5Guard.check { try check(path) }
        let signature = H5Fis_hdf5(path)
        if signature == 0 {
            _ = HDF5Runtime.takeErrorStack()
            throw HDF5Error(.notHDF5, file: path, detail: "no HDF5 signature found")
        }
        let fid = H5Fopen(path, writable ? graft_H5F_ACC_RDWR() : graft_H5F_ACC_RDONLY(), graft_H5P_DEFAULT())
        guard fid >= 0 else {
            throw HDF5Error(.cannotOpen, file: path, detail: HDF5Runtime.takeErrorStack())
        }
        return HDF5File(id: fid, path: path, writable: writable)
    }

    /// Creates a new file. With `overwrite` an existing file is truncated; otherwise it is an error.
    public static func create(_ path: String, overwrite: Bool = false) throws -> HDF5File {
        HDF5Runtime.quiet()
        let flags = overwrite ? graft_H5F_ACC_TRUNC() : graft_H5F_ACC_EXCL()
        let fid = H5Fcreate(path, flags, graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
        guard fid >= 0 else {
            throw HDF5Error(.cannotCreate, file: path, detail: HDF5Runtime.takeErrorStack())
        }
        return HDF5File(id: fid, path: path, writable: true)
    }

    /// Writes a new file atomically: `body` fills a temporary file in the same folder, which is
    /// flushed, closed, synced and then renamed over `path`. If `body` throws, the temporary file is
    /// removed and any existing file at `path` is untouched.
    public static func writeAtomically(_ path: String, _ body: (HDF5File) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let tmp = "\(dir)/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            let file = try create(tmp, overwrite: true)
            try body(file)
            try file.close()
            try syncFile(tmp)
            guard rename(tmp, path) == 0 else {
                let reason = String(cString: strerror(errno))
                throw HDF5Error(.writeFailed, file: path, detail: "rename failed: \(reason)")
            }
        } catch {
            unlink(tmp)
            throw error
        }
    }

    private static func syncFile(_ path: String) throws {
        let fd = Foundation.open(path, O_RDONLY)
        guard fd >= 0 else { throw HDF5Error(.writeFailed, file: path, detail: "cannot reopen to sync") }
        defer { Foundation.close(fd) }
        guard fsync(fd) == 0 else {
            throw HDF5Error(.writeFailed, file: path, detail: "fsync failed: \(String(cString: strerror(errno)))")
        }
    }

    /// The root group `/`.
    public func root() throws -> HDF5Group {
        try HDF5Group.open(in: self, locationID: id, name: "/", parentPath: "")
    }

    /// Flushes and closes the file now. Fails if objects opened from it are still alive.
    public func close() throws {
        guard !closed else { return }
        HDF5Runtime.quiet()
        let openObjects = H5Fget_obj_count(id, UInt32(H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR) | UInt32(H5F_OBJ_LOCAL))
        if openObjects > 0 {
            throw HDF5Error(.invalidArgument, file: path, detail: "\(openObjects) objects still open at close")
        }
        if isWritable { H5Fflush(id, H5F_SCOPE_GLOBAL) }
        let status = H5Fclose(id)
        closed = true
        if status < 0 {
            throw HDF5Error(.writeFailed, file: path, detail: HDF5Runtime.takeErrorStack())
        }
    }

    /// Convenience: the object at an absolute path (`/model_weights/conv1`).
    public func group(_ absolutePath: String) throws -> HDF5Group {
        try root().group(absolutePath)
    }

    /// Convenience: the dataset at an absolute path.
    public func dataset(_ absolutePath: String) throws -> HDF5Dataset {
        try root().dataset(absolutePath)
    }

    func ensureOpen(_ objectPath: String) throws {
        if closed { throw HDF5Error(.invalidArgument, file: path, path: objectPath, detail: "file is closed") }
    }
}
