import Foundation
import Testing
import GraftTestSupport

/// A run folder belongs to one run at a time: a second run into a folder another process is writing exits 1 at
/// once, naming the holder, and changes nothing there (two fine-tune runs into one --out both exited 0 before,
/// and one run's results were lost).
struct RunLockTests {
    @Test func secondRunIntoAFolderInUseIsRefused() throws {
        let out = try TestSupport.makeTemporaryDirectory("graft-lock").appendingPathComponent("run")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        // Another process's run holds the folder: this test process takes its lock as graft does.
        let fd = open(out.appendingPathComponent(".graft-run.lock").path, O_RDWR | O_CREAT, 0o644)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        let me = Array("\(getpid())\n".utf8)
        _ = pwrite(fd, me, me.count, 0)
        let recipe = TestSupport.fixture("../../Recipes/quickstart.yaml")
        for args in [["fine-tune", TestSupport.fixture("keras/keras3_lenet.h5"), "--data", TestSupport.fixture("images/folder"),
                      "--epochs", "1", "--out", out.path, "--quiet"],
                     ["run", recipe, "--set", "outputs.directory=\(out.path)", "--set", "stages.0.epochs=1"]] {
            let r = try TestSupport.runGraft(args, timeout: 120)
            #expect(r.status == 1, "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains("in use by another graft run (process \(getpid()))") && r.stderr.contains(out.path), "\(args[0]): \(r.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path) == [".graft-run.lock"])
        // Released: the same run now goes ahead.
        #expect(flock(fd, LOCK_UN) == 0)
        let r = try TestSupport.runGraft(["fine-tune", TestSupport.fixture("keras/keras3_lenet.h5"), "--data", TestSupport.fixture("images/folder"),
                                          "--epochs", "1", "--out", out.path, "--quiet"], timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
    }
}
