import Foundation
import Testing
import GraftTestSupport

/// A bounded version of `tools/fuzz`: damaged checkpoints, arrays and images must end in a result or a one-line
/// error (exit 0 or 1), never a crash, an internal error or a hang.
struct FuzzTests {
    struct LCG {
        var state: UInt64
        mutating func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(max(n, 1)))
        }
    }

    static func mutate(_ data: Data, _ rng: inout LCG) -> Data {
        var b = [UInt8](data)
        switch rng.next(4) {
        case 0: b.removeLast(b.count - 1 - rng.next(b.count - 1))                              // truncate
        case 1: for _ in 0..<(1 + rng.next(16)) { let i = rng.next(b.count); b[i] ^= UInt8(1 << rng.next(8)) }
        case 2: for _ in 0..<(1 + rng.next(4)) { let i = rng.next(min(b.count, 2048)); b[i] ^= UInt8(1 << rng.next(8)) }
        default:
            let start = rng.next(b.count), size = 1 + rng.next(4096)
            for i in start..<min(b.count, start + size) { b[i] = 0 }
        }
        return Data(b)
    }

    @Test func damagedInputsNeverCrash() throws {
        let fixtures: [(String, (String, String) -> [String])] = [
            ("keras/tfkeras_lenet.h5", { f, _ in ["summary", f] }),
            ("keras/keras3_lenet.weights.h5", { f, _ in ["inspect", f] }),
            ("parity/keras3_nested.keras", { f, _ in ["summary", f] }),
            ("parity/tfkeras_mini_xception_input.npy", { f, out in
                ["predict", TestSupport.fixture("parity/tfkeras_mini_xception.h5"), "--input", f, "--output", out] }),
        ]
        var rng = LCG(state: 2026)
        let dir = try TestSupport.makeTemporaryDirectory()
        var failures: [String] = []
        for n in 0..<120 {
            let (rel, command) = fixtures[n % fixtures.count]
            let source = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture(rel)))
            let path = dir.appendingPathComponent("case\(n)-\((rel as NSString).lastPathComponent)").path
            try Self.mutate(source, &rng).write(to: URL(fileURLWithPath: path))
            let r = try TestSupport.runGraft(command(path, dir.appendingPathComponent("y\(n).npy").path),
                                             environment: ["GRAFT_HDF5_CHECK_TIMEOUT": "20"])
            let oneLine = r.stderr.split(whereSeparator: \.isNewline).count == 1
            if !(r.status == 0 || (r.status == 1 && oneLine)) { failures.append("case \(n) (\(rel)): exit \(r.status): \(r.stderr.prefix(200))") }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "; "))")
    }

    /// The structured mutations of `tools/fuzz` (NPY headers, `.keras` configs with missing, extra, mistyped, huge
    /// or cyclic fields, recipes with wrong types) plus byte-level ones, 150 cases, when python3 is installed.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "python3 is not installed"))
    func structuredMutationsNeverCrash() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [root.appendingPathComponent("tools/fuzz").path, "--cases", "150", "--seed", "5", "--jobs", "2",
                       "--graft", TestSupport.graftExecutable.path, "--timeout", "120",
                       // Sanitizer builds reserve huge address spaces: set GRAFT_FUZZ_MEMORY_MB=0 for those runs.
                       "--memory-mb", ProcessInfo.processInfo.environment["GRAFT_FUZZ_MEMORY_MB"] ?? "6144"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(text.suffix(2000))")
        #expect(text.contains("150 passed, 0 failed"))
        #expect(text.contains("config-") && text.contains("npy-") && text.contains("recipe-"))
    }
}
