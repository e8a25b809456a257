import Foundation
import Testing
import GraftTestSupport

/// `graft fine-tune` and `graft evaluate` end to end on Fashion-MNIST.
struct TrainCommandTests {
    static let available = FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")

    @Test(.enabled(if: available, "dataset-fashion-mnist is not installed"))
    func fineTuneThenEvaluate() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let base = dir.appendingPathComponent("lenet.h5").path
        #expect(try TestSupport.runGraft(["zoo", "lenet5", "--output", base, "--input-shape", "28,28,1"]).status == 0)
        let run = dir.appendingPathComponent("run").path
        let r = try TestSupport.runGraft(["fine-tune", base, "--data", "fashion-mnist:test", "--class-subset", "0,1,2",
                                          "--limit-per-class", "40", "--val-split", "0.25", "--epochs", "1", "--batch", "16",
                                          "--unfreeze", "from:conv3", "--fine-tune-epochs", "1", "--out", run, "--seed", "3", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.isEmpty)
        #expect(r.stdout.contains("run directory: \(run)"))
        #expect(r.stdout.contains("final model: \(run)/final.h5"))
        let csv = try String(contentsOfFile: "\(run)/metrics.csv", encoding: .utf8)
        #expect(csv.contains("\nwarmup,1,") && csv.contains("\nfinetune,2,"))
        let e = try TestSupport.runGraft(["evaluate", "\(run)/final.h5", "--data", "fashion-mnist:test", "--class-subset", "0,1,2", "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any]
        #expect((obj?["count"] as? Int) == 3000)
        #expect(((obj?["accuracy"] as? Double) ?? 0) > 0.34)   // 3 classes: chance is 1/3
        #expect((obj?["classes"] as? [String]) == ["T-shirt/top", "Trouser", "Pullover"])
    }

    @Test func badArgumentsGiveOneLineErrors() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let model = TestSupport.fixture("keras/tfkeras_lenet.h5")
        let cases: [([String], String)] = [
            (["fine-tune", model, "--data", "nowhere:train", "--out", dir.path], "nowhere:train"),
            (["fine-tune", model, "--data", "fashion-mnist:train", "--out", dir.path, "--batch", "0"], "--batch"),
            (["fine-tune", model, "--data", "fashion-mnist:train", "--out", dir.path, "--optimizer", "adagrad"], "adagrad"),
            (["fine-tune", model, "--data", "fashion-mnist:train", "--out", "/proc/graft-run"], "/proc/graft-run"),
            (["evaluate", model, "--data", "fashion-mnist:validation"], "fashion-mnist:validation"),
        ]
        for (args, mention) in cases {
            let r = try TestSupport.runGraft(args + ["--quiet"].filter { _ in args[0] == "fine-tune" })
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.contains(mention), "\(args): \(r.stderr)")
        }
    }
}

extension TrainCommandTests {
    /// Mistakes that surfaced only after minutes of training: one line naming the flag, before any epoch, and no
    /// run folder.
    @Test(.enabled(if: available, "dataset-fashion-mnist is not installed"))
    func mistakesAreCaughtBeforeTraining() throws {
        let out = try TestSupport.makeTemporaryDirectory().appendingPathComponent("run").path
        let base = ["fine-tune", TestSupport.fixture("../../pretrained/lenet5-fashion-0to4.h5"), "--data", "fashion-mnist:test",
                    "--class-subset", "5,6,7", "--epochs", "1", "--out", out]
        for (extra, words) in [(["--unfreeze", "from:conv9"], ["--unfreeze", "conv9", "no such layer"]),
                               (["--freeze", "until:nope"], ["--freeze", "nope"]),
                               (["--classes", "5"], ["--classes", "is 5", "3 classes"]),
                               (["--cut", "nope"], ["nope"])] {
            let r = try TestSupport.runGraft(base + extra)
            #expect(r.status == 1 && r.stderr.split(separator: "\n").count == 1, "\(extra): \(r.stderr)")
            for w in words { #expect(r.stderr.contains(w), "\(extra): \(r.stderr) lacks \(w)") }
            #expect(!r.stderr.contains("epoch"), "\(extra) trained: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "\(extra) left \(out)")
        }
    }

    /// A training folder holding a JPEG cut short: the run stops before its first batch naming the file (no run
    /// folder made); with `--skip-bad` the image is left out, counted and named, and the data summary says the rest.
    @Test func aDamagedImageIsFoundBeforeTraining() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let fm = FileManager.default
        let data = dir.appendingPathComponent("photos").path
        for (k, cls) in ["cat", "dog"].enumerated() {
            try fm.createDirectory(atPath: "\(data)/\(cls)", withIntermediateDirectories: true)
            for i in 0..<3 { try fm.copyItem(atPath: TestSupport.fixture("images/folder/\(cls)/\(cls)_\(i).png"), toPath: "\(data)/\(cls)/\(i).png") }
            if k == 1 { try fm.copyItem(atPath: TestSupport.fixture("images/cut_short.jpg"), toPath: "\(data)/\(cls)/cut.jpg") }
        }
        let model = dir.appendingPathComponent("m.h5").path
        #expect(try TestSupport.runGraft(["zoo", "lenet5", "--output", model, "--input-shape", "32,32,1", "--classes", "2"]).status == 0)
        let run = dir.appendingPathComponent("run").path
        let args = ["fine-tune", model, "--data", data, "--epochs", "1", "--batch", "4", "--out", run]
        let failed = try TestSupport.runGraft(args)
        #expect(failed.status == 1 && failed.stderr.split(separator: "\n").count == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("\(data)/dog/cut.jpg: damaged JPEG"), "\(failed.stderr)")
        #expect(!fm.fileExists(atPath: run))
        let skipped = try TestSupport.runGraft(args + ["--skip-bad"])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(skipped.stderr.contains("training: skipped 1 damaged image (--skip-bad; the first: \(data)/dog/cut.jpg: damaged JPEG"), "\(skipped.stderr)")
        #expect(skipped.stderr.contains("training: 6 images of 5×7, RGB; for the 32×32×1 input: RGB → gray by luma (6), resized, 6 of them stretched to the input's aspect ratio (fit resize)"), "\(skipped.stderr)")
    }

    /// A run folder holds one run: a second run into it is refused before any work, `--overwrite` replaces the run's
    /// files (and leaves the user's), `--resume` with `--overwrite` is refused.
    @Test func aFolderHoldingARunIsNotOverwrittenSilently() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let model = dir.appendingPathComponent("m.h5").path
        #expect(try TestSupport.runGraft(["zoo", "lenet5", "--output", model, "--input-shape", "32,32,3", "--classes", "2"]).status == 0)
        let run = dir.appendingPathComponent("run").path
        let args = ["fine-tune", model, "--data", TestSupport.fixture("images/folder"), "--freeze", "none", "--epochs", "1", "--batch", "3", "--out", run, "--quiet"]
        #expect(try TestSupport.runGraft(args).status == 0)
        try "mine".write(toFile: "\(run)/notes.txt", atomically: true, encoding: .utf8)
        try "old".write(toFile: "\(run)/comparison.svg", atomically: true, encoding: .utf8)
        let before = try FileManager.default.attributesOfItem(atPath: "\(run)/final.h5")[.modificationDate] as? Date
        let refused = try TestSupport.runGraft(args)
        #expect(refused.status == 1 && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("\(run): already holds a run (final.h5, last.h5") && refused.stderr.contains("--resume or replace it with --overwrite"), "\(refused.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: "\(run)/final.h5")[.modificationDate] as? Date == before)
        let both = try TestSupport.runGraft(args + ["--overwrite", "--resume"])
        #expect(both.status == 1 && both.stderr.contains("exclude each other"), "\(both.stderr)")
        let replaced = try TestSupport.runGraft(args + ["--overwrite"])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(try String(contentsOfFile: "\(run)/notes.txt", encoding: .utf8) == "mine")
        #expect(!FileManager.default.fileExists(atPath: "\(run)/comparison.svg"))   // the old run's plot went with it
        let csv = try String(contentsOfFile: "\(run)/metrics.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 2)   // header + the new run's one epoch, not the old one's too
    }

    /// A class folder of PNGs with augmentation, resized to the model's input.
    @Test func fineTuneFromAnImageFolderWithAugmentation() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let base = dir.appendingPathComponent("m.h5").path
        #expect(try TestSupport.runGraft(["zoo", "lenet5", "--output", base, "--input-shape", "32,32,3", "--classes", "2"]).status == 0)
        let run = dir.appendingPathComponent("run").path
        let r = try TestSupport.runGraft(["fine-tune", base, "--data", TestSupport.fixture("images/folder"), "--fit", "resize",
                                          "--augment", "flip:h,rotate:10,noise:0.02:2,mixup:0.2", "--freeze", "none",
                                          "--epochs", "2", "--batch", "4", "--out", run, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let csv = try String(contentsOfFile: "\(run)/metrics.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 3)
        // Plots as from `graft run`: SVG, and PNG beside it (librsvg, from tools/setup).
        for f in ["loss.svg", "loss.png", "accuracy.svg", "accuracy.png"] {
            #expect(FileManager.default.fileExists(atPath: "\(run)/\(f)"), "\(f) missing")
        }
        let bad = try TestSupport.runGraft(["fine-tune", base, "--data", TestSupport.fixture("images/folder"), "--augment", "sparkle:1",
                                            "--out", run, "--quiet"])
        #expect(bad.status != 0 && bad.stderr.contains("sparkle"))
    }
}
