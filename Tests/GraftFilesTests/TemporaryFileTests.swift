import Foundation
import Testing
@testable import GraftFiles
import GraftTestSupport

/// Atomic writes through temporary files, and the removal of temporaries that dead processes left behind.
struct TemporaryFileTests {
    static func names(_ dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    /// The id of a process that ran and was reaped: no process has it now (reuse within a test is improbable).
    static func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    @Test func atomicWriteReplacesAndLeavesNothingBehind() throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-atomic")
        let target = dir.appendingPathComponent("a.bin").path
        try AtomicWrite.write(Data("first".utf8), to: target)
        try AtomicWrite.write(Data("second".utf8), to: target)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "second")
        #expect(try Self.names(dir) == ["a.bin"])
    }

    @Test func failedWritesNameTheTargetAndKeepTheOldFile() throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-atomic-fail")
        let target = dir.appendingPathComponent("a.bin").path
        try AtomicWrite.write(Data("kept".utf8), to: target)
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try AtomicWrite.replace(target) { temporary in
                try Data("half".utf8).write(to: URL(fileURLWithPath: temporary))
                throw Stop()
            }
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "kept")
        #expect(try Self.names(dir) == ["a.bin"])
        let missing = dir.appendingPathComponent("no-such-folder/b.bin").path
        do {
            try AtomicWrite.write(Data("x".utf8), to: missing)
            Issue.record("wrote into a missing folder")
        } catch {
            #expect(error.path == missing && error.reason.contains("No such file"), "\(error)")
        }
    }

    /// A temporary name says who wrote it: the next start removes those of a process that is gone on this machine
    /// and keeps those of a live one or of another machine.
    @Test func staleTemporariesOfDeadProcessesAreSwept() throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-stale")
        let dead = try Self.deadPID()
        let host = StaleTemporaries.host
        let stale = ".model.keras\(StaleTemporaries.marker)\(host)-\(dead)-1a2b"
        let live = ".model.keras\(StaleTemporaries.marker)\(host)-\(getppid())-3c4d"
        let elsewhere = ".model.keras\(StaleTemporaries.marker)0badc0de-\(dead)-5e6f"
        let unrelated = ".model.keras.tmp-\(dead)-7"
        for name in [stale, live, elsewhere, unrelated] {
            #expect(FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: Data("x".utf8)))
        }
        #expect(StaleTemporaries.sweep(dir.path) == [stale])
        #expect(try Self.names(dir) == [live, elsewhere, unrelated].sorted())
    }

    /// The first temporary file a process makes in a folder sweeps it.
    @Test func aNewTemporaryFileSweepsItsFolder() throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-stale-first")
        let stale = ".f.npy\(StaleTemporaries.marker)\(StaleTemporaries.host)-\(try Self.deadPID())-9"
        #expect(FileManager.default.createFile(atPath: dir.appendingPathComponent(stale).path, contents: Data("x".utf8)))
        try AtomicWrite.write(Data("y".utf8), to: dir.appendingPathComponent("f.npy").path)
        #expect(try Self.names(dir) == ["f.npy"])
    }

    /// Long final names still give a temporary name within NAME_MAX, in the same folder.
    @Test func longNamesFit() throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-long")
        let name = String(repeating: "é", count: 120) + ".keras"   // 246 bytes
        let t = TemporaryFile(beside: dir.appendingPathComponent(name).path)
        #expect((t.path as NSString).lastPathComponent.utf8.count <= 255)
        #expect((t.path as NSString).deletingLastPathComponent == dir.path)
        try AtomicWrite.write(Data("z".utf8), to: dir.appendingPathComponent(name).path)
        #expect(try Self.names(dir) == [name])
    }
}
