import Foundation
import Testing
import GraftTestSupport

/// The `graft` binary end to end: output on good files, one-line errors and non-zero exits on bad ones.
struct InspectCommandTests {
    @Test func inspectPrintsTreeAndRecognition() throws {
        let path = TestSupport.fixture("keras/tfkeras_lenet.h5")
        let result = try TestSupport.runGraft(["inspect", path])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "/")
        #expect(lines.contains("  model_weights/"))
        #expect(lines.contains { $0.hasSuffix("kernel:0  float32 (5, 5, 1, 4)") })
        #expect(lines.contains { $0.contains("@layer_names = [\"conv1\"") })
        let last = try #require(lines.last)
        #expect(last.hasPrefix("Keras legacy full-model .h5, written by Keras 2."))
        #expect(last.contains("Model: Sequential \"tiny_lenet\" with 7 layers"))
    }

    @Test func inspectRecognitionOnly() throws {
        let result = try TestSupport.runGraft(["inspect", "--no-tree", TestSupport.fixture("keras/keras3_lenet.weights.h5")])
        #expect(result.status == 0)
        #expect(result.stdout.split(separator: "\n").count == 1)
        #expect(result.stdout.hasPrefix("Keras 3 .weights.h5"))
    }

    @Test(arguments: ["/nonexistent/model.h5", "TRUNCATED", "TEXT"])
    func badFilesExitNonZeroWithOneLine(_ which: String) throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        var path = which
        if which == "TRUNCATED" {
            path = dir.appendingPathComponent("cut.h5").path
            let data = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture("keras/keras3_lenet.h5")))
            FileManager.default.createFile(atPath: path, contents: data.prefix(data.count / 2))
        } else if which == "TEXT" {
            path = dir.appendingPathComponent("notes.h5").path
            try "hello".write(toFile: path, atomically: true, encoding: .utf8)
        }
        let result = try TestSupport.runGraft(["inspect", path])
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        let errLines = result.stderr.split(separator: "\n")
        #expect(errLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(path))
    }
}

extension InspectCommandTests {
    /// The ways graft runs its HDF5 check: a fork of itself (the default while it has one thread), the
    /// `graft-hdf5-check` helper, and `graft check-hdf5` when the helper is missing.
    static let checkModes: [[String: String]] = [
        [:], ["GRAFT_HDF5_CHECK_FORK": "0"], ["GRAFT_HDF5_CHECK_FORK": "0", "GRAFT_HDF5_CHECK_HELPER": "0"],
    ]

    /// Files on which libhdf5 itself crashes or loops (found by tools/fuzz): a one-line error and exit 1, no crash,
    /// whichever way the check runs.
    /// `damaged_overreads_libhdf5.h5` passed the check by luck (the read outside the buffer landed in the child's
    /// heap padding) and then crashed `inspect`; the check child now runs on a heap that ends at its last allocation.
    @Test(arguments: ["damaged_crashes_libhdf5.h5", "damaged_hangs_libhdf5.h5", "damaged_overreads_libhdf5.h5"])
    func libraryCrashesAndHangsBecomeErrors(_ name: String) throws {
        let path = TestSupport.fixture("hdf5/\(name)")
        for mode in Self.checkModes {
            for command in [["inspect", path], ["summary", path]] {
                let r = try TestSupport.runGraft(command, environment: mode.merging(["GRAFT_HDF5_CHECK_TIMEOUT": "5"]) { a, _ in a })
                if name == "damaged_overreads_libhdf5.h5" && TestSupport.underThreadSanitizer {
                    // The check finds this file by glibc's heap ending at its last allocation; TSan's allocator
                    // lays memory out otherwise, the stray read lands in mapped memory in both processes, and all
                    // that holds is that nothing crashes.
                    #expect(r.status == 0 || (r.status == 1 && r.stderr.split(separator: "\n").count == 1), "\(mode) \(command): \(r.stderr)")
                    continue
                }
                #expect(r.status == 1, "\(mode) \(command): \(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(path) && r.stderr.contains("damaged"),
                        "\(mode) \(command): \(r.stderr)")
            }
        }
    }

    /// A sound checkpoint loads the same whichever way the check runs (the strings handed over included), and
    /// a clean error from the check (a truncated file) is the child's one line.
    @Test func everyCheckModeLoadsAndReportsTheSame() throws {
        let model = TestSupport.fixture("keras/keras3_lenet.h5")
        let dir = try TestSupport.makeTemporaryDirectory()
        let cut = dir.appendingPathComponent("cut.h5").path
        let data = try Data(contentsOf: URL(fileURLWithPath: model))
        #expect(FileManager.default.createFile(atPath: cut, contents: data.prefix(data.count * 3 / 4)))
        var summaries: [String] = [], errors: [String] = []
        for mode in Self.checkModes {
            let ok = try TestSupport.runGraft(["summary", model], environment: mode)
            #expect(ok.status == 0, "\(mode): \(ok.stderr)")
            summaries.append(ok.stdout)
            let bad = try TestSupport.runGraft(["summary", cut], environment: mode)
            #expect(bad.status == 1 && bad.stderr.split(separator: "\n").count == 1 && bad.stderr.contains(cut), "\(mode): \(bad.stderr)")
            errors.append(bad.stderr)
        }
        #expect(summaries[0].contains("Total params") || summaries[0].contains("params"), "\(summaries[0])")
        #expect(Set(summaries).count == 1)
        #expect(Set(errors).count == 1, "\(errors)")
    }
}
