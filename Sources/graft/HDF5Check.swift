import ArgumentParser
import Foundation
import GraftHDF5

/// Hidden: `graft check-hdf5 FILE` reads every group, attribute and dataset of a file. The command line runs it in
/// a child process before opening a file, so a libhdf5 crash or hang on a damaged file cannot take `graft` down.
struct CheckHDF5: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-hdf5", abstract: "Read a whole HDF5 file (internal).",
                                                    shouldDisplay: false)

    @Argument var file: String

    @Option(help: "Write the file's decoded string attributes here (see StringAttributesFile).")
    var stringsTo: String?

    func run() throws {
        let strings = try HDF5File.open(file).readEverything()
        if let stringsTo {
            try StringAttributesFile.encode(strings).write(to: URL(fileURLWithPath: stringsTo))
        }
    }
}

/// Runs `graft check-hdf5` on each file once per process, with a time limit: 20 s plus 1 s per 5 MB (reading runs
/// at hundreds of MB/s), or `GRAFT_HDF5_CHECK_TIMEOUT` seconds.
final class ChildProcessHDF5Check: @unchecked Sendable {
    private var checked = Set<String>()
    private let lock = NSLock()

    func callAsFunction(_ path: String) throws {
        lock.lock()
        let seen = checked.contains(path)
        lock.unlock()
        if seen || !FileManager.default.fileExists(atPath: path) { return }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let timeout = Double(ProcessInfo.processInfo.environment["GRAFT_HDF5_CHECK_TIMEOUT"] ?? "") ?? (20 + Double(size) / 5e6)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let strings = FileManager.default.temporaryDirectory.appendingPathComponent("graft-strings-\(getpid())-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: strings) }
        p.arguments = ["check-hdf5", path, "--strings-to", strings.path]
        p.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        p.standardError = errors
        var environment = ProcessInfo.processInfo.environment
        environment["GRAFT_NUM_THREADS"] = "1"
        p.environment = environment
        let stamp = HDF5Guard.fileStamp(path)
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(2_000) }
        if p.isRunning {
            p.terminate()
            usleep(100_000)
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            throw HDF5Error(.readFailed, file: path, detail: "the HDF5 library did not finish reading it within \(Int(timeout)) s: the file is damaged")
        }
        p.waitUntilExit()
        if p.terminationReason == .uncaughtSignal {
            throw HDF5Error(.readFailed, file: path, detail: "the HDF5 library crashed reading it (signal \(p.terminationStatus)): the file is damaged")
        }
        if p.terminationStatus != 1 && p.terminationStatus != 0 {
            // Not graft's own error exit: the child died another way (a sanitizer's report, an abort handler).
            throw HDF5Error(.readFailed, file: path, detail: "the HDF5 library failed reading it (exit \(p.terminationStatus)): the file is damaged")
        }
        if p.terminationStatus != 0 {
            // The child could not read the whole file: report its one-line error and never hand the file to libhdf5
            // here (fuzzing found damaged files on which a clean error in one code path is a crash in another).
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let line = text.split(separator: "\n").first.map(String.init) ?? "\(path): unreadable HDF5 file"
            throw CheckedFileError(description: line.hasPrefix("Error: ") ? String(line.dropFirst(7)) : line)
        }
        // The parent takes string attributes from the child instead of decoding them (see HDF5Guard).
        if let data = try? Data(contentsOf: strings), let values = StringAttributesFile.decode(data) {
            HDF5Guard.setStringAttributes(values, for: path, stamp: stamp)
        }
        lock.lock()
        checked.insert(path)
        lock.unlock()
    }
}

/// The one-line error the child check reported for a file.
struct CheckedFileError: Error, CustomStringConvertible {
    let description: String
}

/// How the checking child hands its decoded string attributes to the parent: the attribute count, then for each
/// attribute its key, its value count and each value; counts are little-endian UInt32, strings a UInt32 byte length
/// and their UTF-8 bytes. Anything short of exactly that (a cut at any byte) is refused. (It was JSON
/// through Foundation's JSONSerialization, which took 15% of the check for ResNet50's 100 KB model config.)
enum StringAttributesFile {
    static func encode(_ values: [String: [String]]) -> Data {
        var out = Data()
        func put(_ n: Int) { withUnsafeBytes(of: UInt32(truncatingIfNeeded: n).littleEndian) { out.append(contentsOf: $0) } }
        func put(_ s: String) {
            let bytes = Array(s.utf8)
            put(bytes.count)
            out.append(contentsOf: bytes)
        }
        put(values.count)
        for (key, list) in values {
            put(key)
            put(list.count)
            for v in list { put(v) }
        }
        return out
    }

    /// The attributes, or nil when the bytes are not a whole, well-formed file.
    static func decode(_ data: Data) -> [String: [String]]? {
        let bytes = [UInt8](data)
        var at = 0
        func count() -> Int? {
            guard bytes.count - at >= 4 else { return nil }
            let n = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
            at += 4
            return n
        }
        func string() -> String? {
            guard let n = count(), bytes.count - at >= n else { return nil }
            defer { at += n }
            return String(validating: bytes[at..<(at + n)], as: UTF8.self)
        }
        guard let entries = count(), entries <= (bytes.count - at) / 8 else { return nil }
        var values: [String: [String]] = [:]
        for _ in 0..<entries {
            guard let key = string(), let n = count(), n <= (bytes.count - at) / 4 else { return nil }
            var list: [String] = []
            list.reserveCapacity(n)
            for _ in 0..<n {
                guard let v = string() else { return nil }
                list.append(v)
            }
            values[key] = list
        }
        return at == bytes.count ? values : nil
    }
}
