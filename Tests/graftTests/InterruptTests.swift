import Foundation
import Testing
import GraftTestSupport

/// Signals sent to a real `graft fine-tune`: SIGINT/SIGTERM finish the batch, save `interrupted.h5` and exit
/// 130/143, and `--resume` finishes the run; kill -9 at any moment leaves every checkpoint under its final name
/// complete, and the run resumes from `last.h5`.
@Suite(.serialized)
struct InterruptTests {
    /// A run of a second or two per epoch (debug build): LeNet-5 on 1,000 Fashion-MNIST images.
    static func arguments(_ out: String) -> [String] {
        ["fine-tune", "zoo:lenet5?classes=2&input=28,28,1", "--data", "fashion-mnist:train", "--class-subset", "0,1", "--limit-per-class", "500",
         "--freeze", "none", "--epochs", "3", "--batch", "32", "--preprocess", "1/255", "--seed", "3", "--out", out]
    }

    /// Starts graft with stderr going to a file; returns the process and the file.
    static func start(_ args: [String]) throws -> (Process, URL) {
        let dir = try TestSupport.makeTemporaryDirectory("graft-signal")
        let log = dir.appendingPathComponent("stderr.txt")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let p = Process()
        p.executableURL = TestSupport.graftExecutable
        p.arguments = args
        p.standardError = try FileHandle(forWritingTo: log)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return (p, log)
    }

    /// Waits (up to 120 s) until the log contains `text`.
    static func waitFor(_ text: String, in log: URL, process: Process) -> Bool {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if let s = try? String(contentsOf: log, encoding: .utf8), s.contains(text) { return true }
            if !process.isRunning { return false }
            usleep(20_000)
        }
        return false
    }

    static func complete(_ checkpoint: String) throws -> Bool {
        try TestSupport.runGraft(["check-hdf5", checkpoint]).status == 0
    }

    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"), arguments: [(SIGINT, Int32(130)), (SIGTERM, Int32(143))])
    func signalSavesAndResumes(_ signal: Int32, _ code: Int32) throws {
        let out = try TestSupport.makeTemporaryDirectory("graft-run").appendingPathComponent("run").path
        let (p, log) = try Self.start(Self.arguments(out))
        #expect(Self.waitFor("warmup epoch 2/", in: log, process: p), "training did not reach epoch 2")
        kill(p.processIdentifier, signal)
        p.waitUntilExit()
        let stderr = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == code, "\(stderr.suffix(400))")
        let shown = Self.arguments(out).map { $0.contains("?") ? "'\($0)'" : $0 }   // the zoo name, quoted for the shell
        #expect(stderr.contains("continue with: graft " + shown.joined(separator: " ") + " --resume\n"), "\(stderr.suffix(400))")
        #expect(try Self.complete("\(out)/interrupted.h5"))
        #expect(!FileManager.default.fileExists(atPath: "\(out)/final.h5"))
        let resumed = try TestSupport.runGraft(Self.arguments(out) + ["--resume", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try Self.complete("\(out)/final.h5"))
        let csv = try String(contentsOfFile: "\(out)/metrics.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 4)   // header + epochs 1, 2, 3, each once
    }

    /// The issue's case: a `--schedule cosine` run interrupted and resumed trained at 0.75× the uninterrupted rate
    /// every epoch. Stopped in its first stage and resumed, it now matches the uninterrupted run epoch by epoch,
    /// through the stage boundary: stage, loss, accuracy, validation figures and learning rate.
    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"))
    func aCosineRunResumedEqualsTheUninterruptedOne() throws {
        let base = try TestSupport.makeTemporaryDirectory("graft-cosine")
        func arguments(_ out: String) -> [String] {
            Self.arguments(base.appendingPathComponent(out).path)
                + ["--schedule", "cosine:1:0.1", "--val-split", "0.2", "--unfreeze", "all", "--fine-tune-epochs", "2", "--quiet"]
        }
        func rows(_ out: String) throws -> [String] {
            // Every column but the timings (seconds, images per second).
            try String(contentsOfFile: base.appendingPathComponent("\(out)/metrics.csv").path, encoding: .utf8)
                .split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).prefix(7).joined(separator: ",") }
        }
        let whole = try TestSupport.runGraft(arguments("whole"))
        #expect(whole.status == 0, "\(whole.stderr)")
        let (p, log) = try Self.start(arguments("cut").filter { $0 != "--quiet" })
        #expect(Self.waitFor("warmup epoch 2/", in: log, process: p), "training did not reach epoch 2")
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        #expect(p.terminationStatus == 130)
        let resumed = try TestSupport.runGraft(arguments("cut") + ["--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let expected = try rows("whole")
        #expect(expected.count == 6)   // header + 3 warm-up epochs + 2 fine-tune epochs
        #expect(try rows("cut") == expected)
    }

    /// A recipe stopped during its from-scratch baseline exits 130 with the command that resumes it; resumed, it
    /// finishes the baseline from its checkpoint, and a baseline stopped before it saved anything starts afresh.
    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"))
    func aRecipeStoppedInItsBaselineFinishesOnResume() throws {
        let root = RunCommandTests.root
        let out = try TestSupport.makeTemporaryDirectory("graft-run").appendingPathComponent("run").path
        let args = ["run", root.appendingPathComponent("Recipes/quickstart.yaml").path,
                    "--set", "model.checkpoint=\(root.appendingPathComponent("pretrained/lenet5-fashion-0to4.h5").path)",
                    "--set", "outputs.directory=\(out)", "--set", "stages.0.epochs=1", "--set", "stages.1.epochs=1", "--set", "baseline.epochs=3"]
        let (p, log) = try Self.start(args)
        #expect(Self.waitFor("scratch epoch 2/", in: log, process: p), "the baseline did not reach its second epoch")
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let stderr = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 130, "\(stderr.suffix(400))")
        #expect(stderr.contains("interrupted; continue with: graft " + args.joined(separator: " ") + " --resume\n"), "\(stderr.suffix(300))")
        #expect(!stderr.contains("test accuracy (from scratch"))
        #expect(try Self.complete("\(out)/baseline/interrupted.h5"))
        let resumed = try TestSupport.runGraft(args + ["--resume", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("test accuracy (from scratch, same data): 0."), "\(resumed.stdout)")
        let baseline = try String(contentsOfFile: "\(out)/baseline/metrics.csv", encoding: .utf8)
        #expect(baseline.split(separator: "\n").count == 4)   // header + baseline epochs 1, 2, 3, each once
        // Stopped before the baseline saved anything (here: its folder gone): resuming trains it from the start.
        try FileManager.default.removeItem(atPath: "\(out)/baseline")
        let again = try TestSupport.runGraft(args + ["--resume", "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("test accuracy (from scratch, same data): 0."), "\(again.stdout)")
        #expect(FileManager.default.fileExists(atPath: "\(out)/baseline/final.h5"))
    }

    /// kill -9 at several moments after the first epoch (some land inside a checkpoint write): the checkpoints
    /// under final names are complete, no stale temporary file outlives the next start, and --resume finishes.
    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"))
    func killNineNeverLeavesAPartialCheckpoint() throws {
        for delay in [0.0, 0.15, 0.7] {
            let out = try TestSupport.makeTemporaryDirectory("graft-run").appendingPathComponent("run").path
            let (p, log) = try Self.start(Self.arguments(out))
            #expect(Self.waitFor("warmup epoch 1:", in: log, process: p))
            usleep(useconds_t(delay * 1_000_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            #expect(p.terminationReason == .uncaughtSignal)
            for name in ["last.h5", "best.h5", "final.h5"] where FileManager.default.fileExists(atPath: "\(out)/\(name)") {
                #expect(try Self.complete("\(out)/\(name)"), "\(name) is damaged after kill -9 at +\(delay) s")
            }
            #expect(FileManager.default.fileExists(atPath: "\(out)/last.h5"))
            let resumed = try TestSupport.runGraft(Self.arguments(out) + ["--resume", "--quiet"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let left = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.contains("tmp-") }
            #expect(left.isEmpty, "stale temporary files: \(left)")
        }
    }

    /// Signals outside training, while `extract` streams features into its temporary file: SIGINT, SIGTERM and
    /// SIGHUP remove it and the process ends by the signal; after kill -9 it stays, and the next graft writing into
    /// that folder removes it (its process is gone).
    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"), arguments: [SIGINT, SIGTERM, SIGHUP, SIGKILL])
    func signalsDuringExtractLeaveNoTemporaryFile(_ sig: Int32) throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-extract-signal")
        let checkpoint = TestSupport.fixture("../../pretrained/lenet5-fashion-0to4.h5")
        let args = ["extract", checkpoint, "--layer", "flatten", "--pooling", "none", "--data", "fashion-mnist:test",
                    "--output", dir.appendingPathComponent("f.csv").path, "--quiet"]
        func temporaries() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.contains("graft-tmp-") }
        }
        let (p, log) = try Self.start(args)
        let deadline = Date().addingTimeInterval(60)
        while temporaries().isEmpty && p.isRunning && Date() < deadline { usleep(1_000) }
        try #require(!temporaries().isEmpty, "no temporary file seen: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        kill(p.processIdentifier, sig)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == sig, "\(p.terminationReason) \(p.terminationStatus)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("f.csv").path))
        if sig == SIGKILL {
            #expect(temporaries().count == 1)
            let again = try TestSupport.runGraft(args, timeout: 300)
            #expect(again.status == 0, "\(again.stderr)")
        }
        #expect(temporaries().isEmpty, "left: \(temporaries())")
    }
}
