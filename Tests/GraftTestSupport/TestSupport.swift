import Foundation

/// Helpers shared by Graft's test targets: fixture paths, scratch folders, running the `graft` binary.
public enum TestSupport {
    /// The repository's `Tests/Fixtures` folder.
    public static let fixturesDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// True when this build runs under ThreadSanitizer, whose allocator replaces glibc's malloc (in the test
    /// process and in the `graft` it starts, which `swift test --sanitize=thread` builds the same way).
    public static let underThreadSanitizer: Bool = {
        guard let me = dlopen(nil, RTLD_NOW) else { return false }   // the program and its libraries
        return dlsym(me, "__tsan_init") != nil
    }()

    /// Absolute path of a fixture, e.g. `fixture("keras/tfkeras_lenet.h5")`.
    public static func fixture(_ relative: String) -> String {
        fixturesDirectory.appendingPathComponent(relative).path
    }

    /// A new empty scratch folder under the system temporary directory.
    public static func makeTemporaryDirectory(_ label: String = "graft-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The `graft` executable built beside the test bundle.
    public static var graftExecutable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("graft")
    }

    /// Result of running a process.
    public struct ProcessResult: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        /// True when the process ran past its time limit and was killed.
        public var timedOut = false
    }

    /// Runs the `graft` binary with `arguments` and returns its exit status and output. A run still going after
    /// `timeout` seconds is killed (`timedOut`), so a hang fails its test instead of the whole suite. `environment`
    /// adds to this process's variables and `unsetting` removes some.
    public static func runGraft(_ arguments: [String], environment: [String: String] = [:], unsetting: [String] = [],
                                timeout: Double = 600) throws -> ProcessResult {
        let process = Process()
        process.executableURL = graftExecutable
        process.arguments = arguments
        if !environment.isEmpty || !unsetting.isEmpty {
            var variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            for name in unsetting { variables[name] = nil }
            process.environment = variables
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        final class Flag: @unchecked Sendable { var value = false }
        let killed = Flag()
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem {
            killed.value = true
            kill(pid, SIGKILL)
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        return ProcessResult(status: process.terminationStatus,
                             stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self), timedOut: killed.value)
    }
}
