import Foundation
import Testing
import GraftTestSupport

/// A full disk: runs that cannot finish are refused before training, and a write that fails leaves the existing
/// file as it was. Uses a small tmpfs (needs root and permission to mount; skipped otherwise).
@Suite(.serialized)
struct DiskFullTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Mounts a tmpfs of `kilobytes` on a fresh folder, runs `body`, unmounts.
    static func withSmallDisk(kilobytes: Int, _ body: (URL) throws -> Void) throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-disk")
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(kilobytes)k", "tmpfs", dir.path]) else { return }
        defer { _ = run("/bin/umount", [dir.path]) }
        try body(dir)
    }

    @discardableResult
    static func run(_ tool: String, _ args: [String]) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    static let canMount: Bool = {
        guard getuid() == 0, let dir = try? TestSupport.makeTemporaryDirectory("graft-mount-probe") else { return false }
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir.path]) else { return false }
        return run("/bin/umount", [dir.path])
    }()

    static func sha(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    @Test(.enabled(if: canMount && TrainCommandTests.available, "needs root, mount and dataset-fashion-mnist"))
    func runThatCannotFitIsRefusedBeforeTraining() throws {
        try Self.withSmallDisk(kilobytes: 1024) { disk in
            let checkpoint = Self.root.appendingPathComponent("pretrained/lenet5-fashion-0to4.h5").path
            let r = try TestSupport.runGraft(["fine-tune", checkpoint, "--data", "fashion-mnist:train", "--class-subset", "5,6",
                                              "--limit-per-class", "20", "--epochs", "1", "--out", disk.appendingPathComponent("run").path])
            #expect(r.status == 1, "\(r.stderr)")
            #expect(r.stderr.contains("free on its disk") && r.stderr.contains("checkpoints"))
            #expect(!r.stderr.contains("epoch 1"))
            #expect(r.stderr.split(separator: "\n").count == 1)
        }
    }

    @Test(.enabled(if: canMount, "needs root and permission to mount a tmpfs"))
    func failedWritesLeaveTheOldFileIntact() throws {
        try Self.withSmallDisk(kilobytes: 1024) { disk in
            let model = disk.appendingPathComponent("model.h5").path
            try FileManager.default.copyItem(atPath: Self.root.appendingPathComponent("pretrained/lenet5-fashion-0to4.h5").path, toPath: model)
            let before = try Self.sha(model)
            // Fill the disk but for about 100 KB, less than a new copy of the model needs.
            var st = statvfs()
            #expect(statvfs(disk.path, &st) == 0)
            let free = Int(st.f_bavail) * Int(st.f_frsize)
            try Data(count: max(0, free - 100 * 1024)).write(to: disk.appendingPathComponent("filler"))
            for (args, target) in [(["export", model, "--output", model], model),
                                   (["export", model, "--output", disk.appendingPathComponent("m.keras").path], ""),
                                   (["zoo", "lenet5", "--output", model], model)] {
                let r = try TestSupport.runGraft(args)
                #expect(r.status != 0, "\(args) succeeded on a full disk")
                #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
                if !target.isEmpty { #expect(try Self.sha(target) == before, "\(args) changed the file") }
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: disk.path).sorted()
            #expect(left == ["filler", "model.h5"], "temporary files left behind: \(left)")
        }
    }

    /// Features that do not fit: `extract` to each format on a disk of 256 KB (Fashion-MNIST test features of the
    /// LeNet-5 checkpoint need megabytes) exits 1 with one line naming the output, leaves no `.part-*` folder, and
    /// writes nothing in place. (`.npy`, `.npz` and `.csv` trapped in a non-throwing FileHandle.write.)
    @Test(.enabled(if: canMount && TrainCommandTests.available, "needs root, mount and dataset-fashion-mnist"),
          arguments: ["npy", "npz", "csv", "h5"])
    func extractOnAFullDiskFailsCleanly(_ format: String) throws {
        try Self.withSmallDisk(kilobytes: 256) { disk in
            let checkpoint = Self.root.appendingPathComponent("pretrained/lenet5-fashion-0to4.h5").path
            let out = disk.appendingPathComponent("features.\(format)").path
            let r = try TestSupport.runGraft(["extract", checkpoint, "--layer", "flatten", "--pooling", "none", "--data", "fashion-mnist:test", "--output", out, "--quiet"])
            #expect(r.status == 1, "\(format): exit \(r.status): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
            #expect(r.stderr.contains(disk.path), "\(r.stderr)")
            let left = try FileManager.default.contentsOfDirectory(atPath: disk.path)
            #expect(left.isEmpty, "\(format): left \(left)")
        }
    }

    /// A folder that cannot be written (a read-only file system, so that root is refused too): export to each
    /// format and extract exit 1 with one line naming the output, not Foundation's raw error.
    @Test(.enabled(if: canMount, "needs root and permission to mount a tmpfs"))
    func readOnlyOutputFolderIsOneLine() throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-ro")
        guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", dir.path]) else { return }
        defer { _ = Self.run("/bin/umount", [dir.path]) }
        let model = TestSupport.fixture("keras/keras3_lenet.h5")
        for args in [["export", model, "--output", dir.appendingPathComponent("m.keras").path],
                     ["export", model, "--output", dir.appendingPathComponent("m.h5").path],
                     ["export", model, "--output", dir.appendingPathComponent("m.weights.h5").path],
                     ["extract", model, "--data", TestSupport.fixture("images/folder"), "--output", dir.appendingPathComponent("f.npz").path, "--quiet"]] {
            let r = try TestSupport.runGraft(args, timeout: 120)
            #expect(r.status == 1, "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(dir.path) && !r.stderr.contains("NSCocoaErrorDomain"),
                    "\(args): \(r.stderr)")
        }
    }
}
