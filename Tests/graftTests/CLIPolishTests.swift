import Foundation
import GraftCore
import GraftTestSupport
import Testing
@testable import graft

/// JSON output for scripts, documented exit codes, examples in help, and a real SIGINT.
struct CLIPolishTests {
    /// A tiled-convolution network is Graft's own: its checkpoint reloads in Graft, and `export` to a Keras format
    /// refuses it in one line (exit 1, nothing written) instead of writing a file Keras cannot load.
    @Test func aTiledNetworkIsNotExportedToKeras() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let h5 = dir.appendingPathComponent("tiled.h5").path
        #expect(try TestSupport.runGraft(["zoo", "tiled", "--output", h5]).status == 0)
        let summary = try TestSupport.runGraft(["summary", h5])
        #expect(summary.status == 0 && summary.stdout.contains("tiled1 (TiledConv2D)"))
        for out in ["t.keras", "t.weights.h5", "t.h5"] {
            let target = dir.appendingPathComponent(out).path
            let r = try TestSupport.runGraft(["export", h5, "--output", target])
            #expect(r.status == 1 && r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("TiledConv2D"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: target))
        }
    }

    /// An input array with no samples is a one-line error naming it, not an error about concatenation.
    @Test func predictRefusesAnEmptyInput() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let empty = dir.appendingPathComponent("empty.npy").path
        // NPY 1.0: magic, version, header length, then the header dict padded to a multiple of 64 bytes.
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 6, 5, 8), }"
        header += String(repeating: " ", count: 63 - (10 + header.utf8.count) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count % 256), UInt8(header.utf8.count / 256)]
        bytes += Array(header.utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: empty))
        let r = try TestSupport.runGraft(["predict", TestSupport.fixture("parity/keras3_normalizations.h5"), "--input", empty,
                                          "--output", dir.appendingPathComponent("y.npy").path])
        #expect(r.status == 1 && r.stderr == "Error: \(empty): holds no samples (shape (0, 6, 5, 8))\n", "\(r.stderr)")
    }

    @Test func jsonOutputs() throws {
        let path = TestSupport.fixture("keras/tfkeras_lenet.h5")
        let s = try TestSupport.runGraft(["summary", path, "--json"])
        let summary = try JSONSerialization.jsonObject(with: Data(s.stdout.utf8)) as? [String: Any]
        #expect(summary?["total_params"] as? Int == 1653)
        #expect((summary?["layers"] as? [[String: Any]])?.count == 8)
        let i = try TestSupport.runGraft(["inspect", "--json", path])
        let inspect = try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as? [String: Any]
        #expect((inspect?["keras"] as? [String: Any])?["parameters"] as? Int == 1653)
        #expect((inspect?["objects"] as? [[String: Any]])?.contains { ($0["path"] as? String) == "/model_weights/conv1/conv1/kernel:0" } == true)
    }

    /// A mistyped command or architecture gets the nearest real one, in one line.
    @Test func mistypedNamesGetTheNearestOne() throws {
        for (args, want) in [(["finetune", "m.h5"], "unknown command 'finetune'; did you mean fine-tune?"),
                             (["evalute"], "unknown command 'evalute'; did you mean evaluate?"),
                             (["zoo", "mobilenet", "--output", "/tmp/never.h5"], "unknown architecture \"mobilenet\"; did you mean mobilenetv2?"),
                             (["zoo", "resnet", "--output", "/tmp/never.h5"], "did you mean resnet50?")] {
            let r = try TestSupport.runGraft(args)
            #expect(r.status == 1 && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(want), "\(args): \(r.stderr)")
        }
        let far = try TestSupport.runGraft(["xyzzy"])
        #expect(far.status == 1 && !far.stderr.contains("did you mean") && far.stderr.contains("commands: inspect, summary"), "\(far.stderr)")
    }

    @Test func exitCodesAndHelp() throws {
        #expect(try TestSupport.runGraft(["--version"]).status == 0)
        #expect(try TestSupport.runGraft(["inspect", "/nonexistent.h5"]).status == 1)
        #expect(try TestSupport.runGraft(["predict"]).status == 1)               // missing arguments
        #expect(try TestSupport.runGraft(["no-such-command"]).status == 1)
        for sub in ["inspect", "summary", "predict", "zoo", "fine-tune", "evaluate", "extract", "export", "run"] {
            let h = try TestSupport.runGraft([sub, "--help"])
            #expect(h.status == 0 && h.stdout.contains("Example"), "\(sub) --help has no examples")
        }
        #expect(try TestSupport.runGraft(["--help"]).stdout.contains("Exit codes"))
    }

    /// Exit 1 or 2 comes from the error's origin (`GraftError`), whatever its type.
    @Test func exitCodesFollowTheErrorsOrigin() {
        struct Unsupported: GraftError {
            var description: String { "unsupported" }
            var context: ErrorContext { ErrorContext(layer: "l") }
        }
        #expect(isUserError(Unsupported()))
        #expect(isUserError(CLIError("bad option", key: "--batch")))
        #expect(!isUserError(InternalError("invariant broken")))
        #expect(!isUserError(POSIXError(.EIO)))   // not Graft's to judge: reported as internal (exit 2)
        #expect(isUserError(CocoaError(.fileReadNoSuchFile)))
    }

    /// Ctrl-C during training: the batch finishes, a resumable checkpoint is written, exit 130; --resume completes.
    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"))
    func sigintWritesACheckpointAndResumes() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let base = dir.appendingPathComponent("lenet.h5").path
        #expect(try TestSupport.runGraft(["zoo", "lenet5", "--output", base, "--input-shape", "28,28,1"]).status == 0)
        let run = dir.appendingPathComponent("run").path
        let args = ["fine-tune", base, "--data", "fashion-mnist:train", "--limit-per-class", "300", "--freeze", "none",
                    "--epochs", "4", "--batch", "32", "--out", run, "--quiet"]
        let p = Process()
        p.executableURL = TestSupport.graftExecutable
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        try p.run()
        // Interrupt once training is under way (the first epoch's metrics line means at least one epoch ran).
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: "\(run)/metrics.csv") && p.isRunning && Date() < deadline { usleep(50_000) }
        p.interrupt()
        p.waitUntilExit()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 130, "\(message)")
        #expect(message.contains("interrupted.h5"))
        #expect(FileManager.default.fileExists(atPath: "\(run)/interrupted.h5"))
        let resumed = try TestSupport.runGraft(args + ["--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let csv = try String(contentsOfFile: "\(run)/metrics.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 5)   // header + 4 epochs, none repeated
    }

    /// oneDNN's OpenMP runtime starts once, at the first convolution, with graft's settings and without graft
    /// executing itself again: threads that sleep when idle (spin count 0), as many as GRAFT_NUM_THREADS says; a
    /// wait policy the user set is kept.
    @Test func openMPStartsOnceWithGraftsSettings() throws {
        func display(_ environment: [String: String]) throws -> String {
            let r = try TestSupport.runGraft(["bench", "zoo:lenet5?input=32,32,1", "--batch", "2", "--iterations", "1", "--warmup", "0"],
                                             environment: environment.merging(["OMP_DISPLAY_ENV": "VERBOSE"]) { $1 },
                                             unsetting: ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"] + (environment["OMP_WAIT_POLICY"] == nil ? ["OMP_WAIT_POLICY"] : []))
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout + r.stderr
        }
        let out = try display(["GRAFT_NUM_THREADS": "1"])
        #expect(out.components(separatedBy: "OPENMP DISPLAY ENVIRONMENT BEGIN").count == 2, "\(out)")   // one start, no re-exec
        #expect(out.contains("GOMP_SPINCOUNT = '0'") && out.contains("OMP_NUM_THREADS = '1'"), "\(out)")
        let active = try display(["OMP_WAIT_POLICY": "ACTIVE"])
        #expect(active.contains("OMP_WAIT_POLICY = 'ACTIVE'") && !active.contains("GOMP_SPINCOUNT = '0'"), "\(active)")
    }

    /// The command line's GRAFT_* variables reach the library as its settings (`RuntimeOptions`): the thread count
    /// bench reports is the one given, and a hostile value is ignored, not trapped on.
    @Test func threadSettingsComeFromTheCommandLine() throws {
        func threads(_ value: String) throws -> Int? {
            let r = try TestSupport.runGraft(["bench", "sgemm:64", "--iterations", "1", "--warmup", "0", "--json"],
                                             environment: ["GRAFT_NUM_THREADS": value])
            #expect(r.status == 0, "\(r.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            return json?["threads"] as? Int
        }
        #expect(try threads("1") == 1)
        #expect(try threads("3") == 3)
        #expect(try threads("9223372036854775807") == ProcessInfo.processInfo.activeProcessorCount)
    }
}
