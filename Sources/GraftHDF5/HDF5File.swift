import CHDF5
import Foundation
import GraftCore
import GraftFiles

/// Limits that protect against hostile files declaring absurd sizes.
public enum HDF5Limits {
    /// The largest read or write, in bytes, that GraftHDF5 will attempt (8 GiB).
    public static let maxBytes = 8 << 30
}

/// What the integrity check (`HDF5OpenPolicy`) hands from the checking child to this process.
public enum HDF5Guard {

    /// Work a caller gives the check to do while the child reads (ahead-of-time work on the other core): it is
    /// called once, should return when `finished()` says the child is done, and must not use libhdf5.
    public typealias WhileChecking = (_ finished: () -> Bool) -> Void

    /// String attributes of checked files as the checking child decoded them (file path → `object path@name` →
    /// values). libhdf5 1.10 can over-read a damaged global heap while decoding variable-length strings, faulting
    /// in one process and not in another (found by tools/fuzz), so a checked file's string attributes are taken
    /// from here and never decoded by the parent.
    /// `stamp` is `fileStamp(file)` when the child read it: a file rewritten since is decoded afresh.
    public static func setStringAttributes(_ values: [String: [String]], for file: String, stamp: String) {
        strings.lock.lock()
        strings.byFile[file] = (stamp, values)
        strings.lock.unlock()
    }

    /// The checked string attributes of `file` when it is still the file the child read (compared once, as
    /// the file is opened: libhdf5 then holds that file open).
    static func stringAttributes(file: String) -> [String: [String]]? {
        strings.lock.lock()
        let entry = strings.byFile[file]
        strings.lock.unlock()
        guard let entry, entry.stamp == fileStamp(file) else { return nil }
        return entry.values
    }

    /// Size, modification time and inode of a file, to notice it was replaced.
    public static func fileStamp(_ path: String) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "" }
        return "\(st.st_size)-\(st.st_mtim.tv_sec)-\(st.st_mtim.tv_nsec)-\(st.st_ino)"
    }

    private final class Strings: @unchecked Sendable {
        let lock = NSLock()
        var byFile: [String: (stamp: String, values: [String: [String]])] = [:]
    }
    private static let strings = Strings()
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
    /// String attributes as the checking child decoded them (`HDF5Guard`), when this file was checked.
    let checkedStrings: [String: [String]]?

    private init(id: hid_t, path: String, writable: Bool, checkedStrings: [String: [String]]? = nil) {
        self.id = id
        self.path = path
        self.isWritable = writable
        self.checkedStrings = checkedStrings
    }

    deinit {
        if !closed { H5Fclose(id) }
    }

    /// The file's size in bytes as libhdf5 sees it (an in-memory image included), or nil when unknown.
    var sizeInBytes: Int? {
        var size: hsize_t = 0
        guard !closed, H5Fget_filesize(id, &size) >= 0, size <= hsize_t(Int.max) else { return nil }
        return Int(size)
    }

    /// Opens an existing file read-only, or read-write when `writable`.
    /// - Throws: `HDF5Error` `.fileNotFound`, `.notHDF5` or `.cannotOpen`, naming the file.
    /// A file opened read-only is first checked as `policy` says (by default read whole in a child process, so
    /// a damaged file is an error here, never a crash); `whileChecking` runs while the child reads.
    public static func open(_ path: String, writable: Bool = false, whileChecking: HDF5Guard.WhileChecking? = nil,
                            policy: HDF5OpenPolicy = RuntimeOptions.current.hdf5) throws -> HDF5File {
        HDF5Runtime.quiet()
        guard FileManager.default.fileExists(atPath: path) else { throw HDF5Error(.fileNotFound, file: path) }
        if let problem = regularFileProblem(path) { throw HDF5Error(.cannotOpen, file: path, detail: problem) }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw HDF5Error(.cannotOpen, file: path, detail: "permission denied")
        }
        if !writable && policy.checkInChild { try HDF5ChildCheck.shared.check(path, policy: policy, whileWaiting: whileChecking) }
        let checkedStrings = writable ? nil : HDF5Guard.stringAttributes(file: path)
        let signature = H5Fis_hdf5(path)
        if signature == 0 {
            _ = HDF5Runtime.takeErrorStack()
            throw HDF5Error(.notHDF5, file: path, detail: "no HDF5 signature found")
        }
        let fid = H5Fopen(path, writable ? graft_H5F_ACC_RDWR() : graft_H5F_ACC_RDONLY(), HDF5Runtime.fileAccess)
        guard fid >= 0 else {
            throw HDF5Error(.cannotOpen, file: path, detail: HDF5Runtime.takeErrorStack())
        }
        return HDF5File(id: fid, path: path, writable: writable, checkedStrings: checkedStrings)
    }

    /// Nil when `path` is a regular file (links followed), else what it is instead: a FIFO would block the reading
    /// child and this process for ever, a device never ends, a directory is no file.
    public static func regularFileProblem(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return String(cString: strerror(errno)) }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "is a directory"
        case S_IFIFO: return "is a FIFO (named pipe), not a regular file"
        case S_IFCHR, S_IFBLK: return "is a device, not a regular file"
        default: return "is not a regular file"
        }
    }

    /// Creates a new file. With `overwrite` an existing file is truncated; otherwise it is an error.
    public static func create(_ path: String, overwrite: Bool = false) throws -> HDF5File {
        HDF5Runtime.quiet()
        let flags = overwrite ? graft_H5F_ACC_TRUNC() : graft_H5F_ACC_EXCL()
        let fid = H5Fcreate(path, flags, graft_H5P_DEFAULT(), HDF5Runtime.fileAccess)
        guard fid >= 0 else {
            throw HDF5Error(.cannotCreate, file: path, detail: HDF5Runtime.takeErrorStack())
        }
        return HDF5File(id: fid, path: path, writable: true)
    }

    /// Creates a file that lives in memory only (HDF5's core driver without a backing store); `image()` returns
    /// its bytes. libhdf5 never touches the disk for it, so a full disk cannot leave the library half-written.
    public static func createInMemory(name: String) throws -> HDF5File {
        HDF5Runtime.quiet()
        let fapl = H5Pcreate(graft_H5P_FILE_ACCESS())
        guard fapl >= 0 else { throw HDF5Error(.cannotCreate, file: name, detail: HDF5Runtime.takeErrorStack()) }
        defer { H5Pclose(fapl) }
        guard H5Pset_fapl_core(fapl, 1 << 20, false) >= 0 else {
            throw HDF5Error(.cannotCreate, file: name, detail: HDF5Runtime.takeErrorStack())
        }
        let fid = H5Fcreate(name, graft_H5F_ACC_TRUNC(), graft_H5P_DEFAULT(), fapl)
        guard fid >= 0 else { throw HDF5Error(.cannotCreate, file: name, detail: HDF5Runtime.takeErrorStack()) }
        return HDF5File(id: fid, path: name, writable: true)
    }

    /// The bytes of the whole file as it would be on disk (flushed first).
    public func image() throws -> [UInt8] {
        try ensureOpen("/")
        HDF5Runtime.quiet()
        H5Fflush(id, H5F_SCOPE_GLOBAL)
        let size = H5Fget_file_image(id, nil, 0)
        guard size > 0 else { throw HDF5Error(.writeFailed, file: path, detail: "cannot size the file image: \(HDF5Runtime.takeErrorStack())") }
        var bytes = [UInt8](repeating: 0, count: size)
        let got = bytes.withUnsafeMutableBytes { H5Fget_file_image(id, $0.baseAddress, size) }
        guard got == size else { throw HDF5Error(.writeFailed, file: path, detail: "cannot copy the file image: \(HDF5Runtime.takeErrorStack())") }
        return bytes
    }

    /// Writes a new file atomically: `body` fills the file in memory; its bytes go to a temporary file in the
    /// same folder, which is synced and then renamed over `path`. If anything fails (also a full disk), the
    /// temporary file is removed and any existing file at `path` is untouched.
    public static func writeAtomically(_ path: String, _ body: (HDF5File) throws -> Void) throws {
        try writeFileAtomically(try inMemoryImage(name: path, body), to: URL(fileURLWithPath: path))
    }

    /// The bytes of a new file that `body` fills in memory (`name` is what errors call it).
    public static func inMemoryImage(name: String, _ body: (HDF5File) throws -> Void) throws -> [UInt8] {
        let file = try createInMemory(name: name)
        try body(file)
        let bytes = try file.image()
        try file.close()
        return bytes
    }

    /// `bytes` to a temporary file beside `url`, fsync, rename over `url` (`AtomicWrite`); the temporary file goes
    /// on any failure.
    static func writeFileAtomically(_ bytes: [UInt8], to url: URL) throws {
        do {
            try AtomicWrite.write(bytes, to: url.path)
        } catch {
            throw HDF5Error(.writeFailed, file: url.path, detail: error.reason)
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
