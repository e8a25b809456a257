import Foundation
import GraftCore
import Synchronization

/// The one-line error the check child reported for a file it could not read whole (a clean error, not a crash).
public struct HDF5CheckError: GraftError {
    public let file: String
    public let description: String
    public init(file: String, description: String) { (self.file, self.description) = (file, description) }
    public var context: ErrorContext { ErrorContext(file: file) }
}

/// Runs the integrity check on each file once per process (again when the file changes), in a child, with the
/// policy's time limit.
final class HDF5ChildCheck: Sendable {
    private let checked = Mutex(Set<String>())
    static let shared = HDF5ChildCheck()

    func hasChecked(_ key: String) -> Bool { checked.withLock { $0.contains(key) } }

    /// `whileWaiting` runs once the child has started, on this thread, until the child is done (see
    /// `HDF5Guard.WhileChecking`).
    func check(_ path: String, policy: HDF5OpenPolicy, whileWaiting: HDF5Guard.WhileChecking? = nil) throws {
        let stamp = HDF5Guard.fileStamp(path)
        let key = path + "\u{0}" + stamp
        if hasChecked(key) || !FileManager.default.fileExists(atPath: path) { return }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let timeout = policy.timeout ?? (20 + Double(size) / 5e6)
        let strings = FileManager.default.temporaryDirectory.appendingPathComponent("graft-strings-\(getpid())-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: strings) }
        var outcome = policy.fork ? try Self.forked(path, strings: strings.path, timeout: timeout, whileWaiting: whileWaiting) : nil
        if outcome == nil {
            guard let helper = policy.helper ?? HDF5OpenPolicy.helperBesideExecutable, !helper.isEmpty else {
                throw HDF5Error(.cannotOpen, file: path, detail: "cannot check the file before libhdf5 reads it: this process runs several threads and has no graft-hdf5-check helper beside its executable (build that product and set HDF5OpenPolicy.helper, or open with HDF5OpenPolicy.unchecked to trust the file)")
            }
            outcome = try Self.spawned(helper, path, strings: strings.path, timeout: timeout, whileWaiting: whileWaiting)
        }
        switch outcome ?? .timedOut {
        case .timedOut:
            throw HDF5Error(.readFailed, file: path, detail: "the HDF5 library did not finish reading it within \(Int(timeout)) s: the file is damaged")
        case .signaled(let signal):
            throw HDF5Error(.readFailed, file: path, detail: "the HDF5 library crashed reading it (signal \(signal)): the file is damaged")
        case .exited(0, _):
            break
        case .exited(1, let text):
            // The child could not read the whole file: report its one-line error and never hand the file to libhdf5
            // here (fuzzing found damaged files on which a clean error in one code path is a crash in another).
            throw HDF5IntegrityCheck.decodeChildError(text, file: path)
        case .exited(let status, _):
            // Not the check's own error exit: the child died another way (a sanitizer's report, an abort handler).
            throw HDF5Error(.readFailed, file: path, detail: "the HDF5 library failed reading it (exit \(status)): the file is damaged")
        }
        // The parent takes string attributes from the child instead of decoding them (see HDF5Guard).
        if let data = try? Data(contentsOf: strings), let values = StringAttributesFile.decode(data) {
            HDF5Guard.setStringAttributes(values, for: path, stamp: stamp)
        }
        _ = checked.withLock { $0.insert(key) }
    }

    /// How the checking child ended: its exit status and what it wrote to stderr, a signal, or the time limit.
    enum Outcome {
        case exited(Int32, String)
        case signaled(Int32)
        case timedOut
    }

    /// The check in a forked copy of this process, which needs no start-up (no executable to load and link: about
    /// 20 ms of the 25 ms a fresh `graft-hdf5-check` takes before it reads anything). Only while this process has a
    /// single thread, since a fork copies just the calling thread and locks held by others would stay locked in the
    /// child; nil otherwise (and when the fork itself fails), and the caller spawns the helper instead. The child
    /// leaves with `_exit`: no exit handlers, so nothing of the parent's (open HDF5 files, stdio buffers) is
    /// flushed twice; its output goes nowhere but its one-line error, through a pipe. `HDF5OpenPolicy.fork`
    /// false turns this off.
    static func forked(_ path: String, strings: String, timeout: Double, whileWaiting: HDF5Guard.WhileChecking?) throws -> Outcome? {
        guard threadCount() == 1 else { return nil }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        let pid = fork()
        if pid == 0 {
            close(fds[0])
            // Nothing of the child's reaches the terminal, and a crash ends it at once: the Swift runtime's
            // backtrace on a fault would print to our stderr and take a second.
            let null = open("/dev/null", O_RDWR)
            if null >= 0 { dup2(null, 1); dup2(null, 2) }
            // SIGINT, SIGTERM and SIGHUP too: the parent's handlers would remove the parent's temporary files.
            for sig in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGINT, SIGTERM, SIGHUP] { signal(sig, SIG_DFL) }
            _exit(HDF5IntegrityCheck.runAsChild(file: path, stringsTo: strings, errorsTo: fds[1]))
        }
        close(fds[1])
        defer { close(fds[0]) }
        guard pid > 0 else { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        var reaped = false
        whileWaiting? {
            if !reaped && waitpid(pid, &status, WNOHANG) == pid { reaped = true }
            return reaped || Date() >= deadline
        }
        while !reaped {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return .timedOut }
            if Date() >= deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return .timedOut
            }
            usleep(500)
        }
        if status & 0x7f != 0 { return .signaled(status & 0x7f) }
        let code = (status >> 8) & 0xff
        var text = [UInt8]()
        if code != 0 {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
                if n > 0 { text += buffer[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
            }
        }
        return .exited(code, String(decoding: text, as: UTF8.self))
    }

    /// Threads in this process (`/proc/self/stat`, field 20), or 0 when unknown.
    static func threadCount() -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // Fields after the command name (which may hold spaces): state is field 3, num_threads field 20.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 17 ? Int(fields[17]) ?? 0 : 0
    }

    /// The check in a new process: `command` (the helper and its leading arguments) with the file and
    /// `--strings-to PATH` after them.
    static func spawned(_ command: [String], _ path: String, strings: String, timeout: Double, whileWaiting: HDF5Guard.WhileChecking?) throws -> Outcome {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: command[0])
        p.arguments = Array(command.dropFirst()) + [path, "--strings-to", strings]
        p.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        p.standardError = errors
        var environment = ProcessInfo.processInfo.environment   // passed on as it is, but for one thread
        environment["GRAFT_NUM_THREADS"] = "1"
        p.environment = environment
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        whileWaiting? { !p.isRunning || Date() >= deadline }
        while p.isRunning && Date() < deadline { usleep(2_000) }
        if p.isRunning {
            p.terminate()
            usleep(100_000)
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            return .timedOut
        }
        p.waitUntilExit()
        if p.terminationReason == .uncaughtSignal { return .signaled(p.terminationStatus) }
        let text = p.terminationStatus == 0 ? "" : String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return .exited(p.terminationStatus, text)
    }
}
