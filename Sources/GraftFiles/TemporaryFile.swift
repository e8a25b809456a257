import CGraftFiles
import Foundation
import GraftCore

/// Why a file could not be written: the path and the system's reason, in one line.
public struct FileWriteError: GraftError {
    public let path: String
    public let reason: String

    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
    public var context: ErrorContext { ErrorContext(file: path) }

    /// `errno`'s text.
    public static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
}

/// A temporary file beside the file it will become: every file Graft writes is written under such a name first,
/// synced and renamed into place (`commit`), so the final name only ever holds a complete file.
///
/// Its name, `.<final name>.graft-tmp-<host>-<pid>-<random>`, says which process wrote it: a process that dies
/// without cleaning up (kill -9, power loss) leaves it behind, and the next `TemporaryFile` in that folder removes
/// it once that process is gone (`StaleTemporaries`). While it exists its path is registered for SIGINT, SIGTERM
/// and SIGHUP, which remove it (`Temporaries.removeOnSignals`); `discard`, a failed `commit` and deinit remove it
/// otherwise.
public final class TemporaryFile: @unchecked Sendable {
    /// Where to write.
    public let path: String
    private let slot: Int32
    private let lock = NSLock()
    private var done = false   // guarded by lock

    /// A temporary name beside `destination` (same folder, so the rename is atomic); the file is not created.
    public convenience init(beside destination: String) {
        let url = URL(fileURLWithPath: destination)
        self.init(in: url.deletingLastPathComponent().path, for: url.lastPathComponent)
    }

    /// A temporary name in `directory` for a file called `name` (a staging copy in `$TMPDIR`, say).
    public init(in directory: String, for name: String) {
        StaleTemporaries.sweepOnce(directory)
        // The final name, cut to leave room for the marker within NAME_MAX (255 bytes).
        var stem = ""
        for c in name where stem.utf8.count + String(c).utf8.count <= 180 { stem.append(c) }
        let token = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        path = (directory as NSString).appendingPathComponent(".\(stem)\(StaleTemporaries.marker)\(StaleTemporaries.host)-\(getpid())-\(token)")
        slot = graft_temporaries_register(path)   // before the file exists: a signal from now on removes it
    }

    deinit { discard() }

    /// Syncs the file and renames it over `destination`; the temporary is gone either way.
    public func commit(to destination: String) throws(FileWriteError) {
        lock.lock()
        defer { lock.unlock() }
        guard !done else { throw FileWriteError(destination, "the temporary file was already used") }
        done = true
        defer { graft_temporaries_unregister(slot) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = FileWriteError.errnoText()
            unlink(path)
            throw FileWriteError(destination, "cannot reopen its temporary file (\(reason))")
        }
        let synced = fsync(fd) == 0 ? nil : FileWriteError.errnoText()
        close(fd)
        if let synced {
            unlink(path)
            throw FileWriteError(destination, "cannot sync it to disk (\(synced))")
        }
        guard rename(path, destination) == 0 else {
            let reason = FileWriteError.errnoText()
            unlink(path)
            throw FileWriteError(destination, "cannot move it into place (\(reason))")
        }
        // The rename itself reaches the disk with the folder.
        let dir = open((destination as NSString).deletingLastPathComponent.isEmpty ? "." : (destination as NSString).deletingLastPathComponent,
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
    }

    /// Removes the file, if it was created, and forgets it. Safe to call more than once.
    public func discard() {
        lock.lock()
        defer { lock.unlock() }
        guard !done else { return }
        done = true
        unlink(path)
        graft_temporaries_unregister(slot)
    }
}

/// Whole files written atomically: a `TemporaryFile` beside the target, synced, renamed over it. On any failure
/// (a full disk too) the temporary is removed and an existing file at the target is untouched.
public enum AtomicWrite {
    /// Writes `bytes` to `path`.
    public static func write(_ bytes: some ContiguousBytes, to path: String) throws(FileWriteError) {
        let temporary = TemporaryFile(beside: path)
        let failure: String? = bytes.withUnsafeBytes { raw -> String? in
            let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return "cannot create a temporary file beside it (\(FileWriteError.errnoText()))" }
            defer { close(fd) }
            var offset = 0
            while offset < raw.count, let base = raw.baseAddress {
                let n = Foundation.write(fd, base + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return "cannot write (\(FileWriteError.errnoText()))"
                }
                offset += n
            }
            return nil
        }
        if let failure {
            temporary.discard()
            throw FileWriteError(path, failure)
        }
        try temporary.commit(to: path)
    }

    /// Lets `body` create and fill the file at the temporary path it is given, then moves it over `path`.
    /// Whatever `body` throws is rethrown after the temporary is removed.
    public static func replace(_ path: String, _ body: (_ temporaryPath: String) throws -> Void) throws {
        let temporary = TemporaryFile(beside: path)
        do {
            try body(temporary.path)
        } catch {
            temporary.discard()
            throw error
        }
        try temporary.commit(to: path)
    }
}

/// Temporary files of processes that are gone: removed from a folder the first time this process writes there.
public enum StaleTemporaries {
    static let marker = ".graft-tmp-"

    /// This machine, as 8 hex digits of its host name: in a folder shared between machines, a file is only judged
    /// by the machine whose processes it names.
    static let host: String = {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        var hash: UInt32 = 2_166_136_261   // FNV-1a
        for b in name.prefix(while: { $0 != 0 }) { hash = (hash ^ UInt32(UInt8(bitPattern: b))) &* 16_777_619 }
        return String(format: "%08x", hash)
    }()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var swept: Set<String> = []   // guarded by lock

    /// Sweeps `directory` unless this process did already.
    static func sweepOnce(_ directory: String) {
        let key = (directory as NSString).standardizingPath
        guard lock.withLock({ swept.insert(key).inserted }) else { return }
        sweep(directory)
    }

    /// Removes every `.…graft-tmp-<host>-<pid>-…` file in `directory` written on this machine by a process that no
    /// longer runs; returns their names.
    @discardableResult
    public static func sweep(_ directory: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(".") {
            guard let range = name.range(of: marker, options: .backwards) else { continue }
            let fields = name[range.upperBound...].split(separator: "-")
            guard fields.count == 3, fields[0] == host, let pid = Int32(fields[1]), pid > 0, pid != getpid() else { continue }
            guard kill(pid, 0) == -1 && errno == ESRCH else { continue }
            let path = (directory as NSString).appendingPathComponent(name)
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            if unlink(path) == 0 { removed.append(name) }
        }
        return removed
    }
}

/// The process-wide side of temporary files.
public enum Temporaries {
    /// Installs handlers for SIGINT, SIGTERM and SIGHUP that remove every temporary file being written and then
    /// end the process as the signal would have (a signal already ignored, as under nohup, stays ignored). A
    /// command-line tool calls this once at start; a handler installed later for the same signal replaces it and
    /// should call `removeAllNow` before it ends the process.
    public static func removeOnSignals() {
        graft_temporaries_remove_on_signals()
    }

    /// Unlinks every registered temporary file now. Async-signal-safe: for a signal handler about to `_exit`.
    public static func removeAllNow() {
        graft_temporaries_remove_all()
    }
}
