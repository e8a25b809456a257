import ArgumentParser
import Foundation
import GraftHDF5

/// Hidden: `graft check-hdf5 FILE` reads every group, attribute and dataset of a file. The command line runs it in
/// a child process before opening a file, so a libhdf5 crash or hang on a damaged file cannot take `graft` down.
struct CheckHDF5: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-hdf5", abstract: "Read a whole HDF5 file (internal).",
                                                    shouldDisplay: false)

    @Argument var file: String

    @Option(help: "Write the file's decoded string attributes here as JSON.")
    var stringsTo: String?

    func run() throws {
        let strings = try HDF5File.open(file).readEverything()
        if let stringsTo {
            let data = try JSONSerialization.data(withJSONObject: strings)
            try data.write(to: URL(fileURLWithPath: stringsTo))
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
        if let data = try? Data(contentsOf: strings),
           let values = (try? JSONSerialization.jsonObject(with: data)) as? [String: [String]] {
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
