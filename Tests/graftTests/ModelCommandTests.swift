import Foundation
import Testing
import GraftData
import GraftTensor
import GraftTestSupport

/// `graft summary`, `graft predict` and `graft zoo` end to end.
struct ModelCommandTests {
    static func parity(_ name: String) -> String { TestSupport.fixture("parity/\(name)") }

    @Test func summaryEndsWithKerasCounts() throws {
        let r = try TestSupport.runGraft(["summary", Self.parity("tfkeras_mini_xception.h5")])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        // Counts as Keras reported them when it wrote the fixture (Tests/Fixtures/parity/index.json).
        #expect(Array(lines.suffix(3)) == ["Total params: 1,764", "Trainable params: 1,652", "Non-trainable params: 112"])
        #expect(lines.contains { $0.hasPrefix("add (Add)") })
    }

    @Test func predictMatchesKerasAndWritesNPY() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let out = dir.appendingPathComponent("y.npy").path
        let r = try TestSupport.runGraft(["predict", Self.parity("keras3_nested.keras"), "--input", Self.parity("keras3_nested_input.npy"),
                                          "--output", out, "--batch", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let y = try NPY.read(out), ref = try NPY.read(Self.parity("keras3_nested_output.npy"))
        #expect(y.shape == ref.shape)
        #expect(zip(y.scalars, ref.scalars).allSatisfy { abs($0 - $1) <= 1e-4 })
        let feats = dir.appendingPathComponent("f.npy").path
        let r2 = try TestSupport.runGraft(["predict", Self.parity("tfkeras_mini_xception.h5"), "--input",
                                           Self.parity("tfkeras_mini_xception_input.npy"), "--output", feats, "--layer", "concat"])
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(try NPY.read(feats).shape == [3, 5, 4, 16])   // 16×16 → pad → 19×17 → stride-2 conv 9×8 → stride-2 pool 5×4
    }

    @Test func predictRejectsBadInputsWithOneLine() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let out = dir.appendingPathComponent("y.npy").path
        let wrongShape = TestSupport.fixture("npy/f4.npy")   // (2, 3, 4): not NHWC for this model
        let cases: [[String]] = [
            ["predict", Self.parity("keras3_nested.h5"), "--input", wrongShape, "--output", out],
            ["predict", Self.parity("keras3_nested.h5"), "--input", TestSupport.fixture("npy/complex.npy"), "--output", out],
            ["predict", Self.parity("keras3_nested.h5"), "--input", Self.parity("keras3_nested_input.npy"), "--output", out, "--layer", "nope"],
            ["predict", Self.parity("keras3_nested.weights.h5"), "--input", Self.parity("keras3_nested_input.npy"), "--output", out],
            ["predict", Self.parity("keras3_nested.h5"), "--input", Self.parity("keras3_nested_input.npy"), "--output", out, "--batch", "0"],
        ]
        for args in cases {
            let r = try TestSupport.runGraft(args)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.split(separator: "\n").count >= 1)
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        let r = try TestSupport.runGraft(cases[0])
        #expect(r.stderr.contains(wrongShape) && r.stderr.contains("(2, 3, 4)") && r.stderr.contains("(None, 10, 10, 3)"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test func zooWritesAKerasCheckpoint() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let path = dir.appendingPathComponent("lenet.h5").path
        let r = try TestSupport.runGraft(["zoo", "lenet5", "--output", path, "--input-shape", "28,28,1"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try TestSupport.runGraft(["summary", path])
        #expect(s.stdout.contains("Total params: 61,706"))
        let i = try TestSupport.runGraft(["inspect", "--no-tree", path])
        #expect(i.stdout.hasPrefix("Keras legacy full-model .h5, written by Keras 2.15.0"))
        let bad = try TestSupport.runGraft(["zoo", "nonet", "--output", path])
        #expect(bad.status != 0 && bad.stderr.contains("nonet"))
    }
}

/// `graft bench`: the Graft side of tools/bench.
struct BenchCommandTests {
    func json(_ args: [String]) throws -> [String: Any] {
        let r = try TestSupport.runGraft(["bench"] + args + ["--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let data = Data(r.stdout.split(separator: "\n").last.map(String.init)?.utf8 ?? "".utf8)
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    @Test func inferenceAndTrainingStepsReportTimes() throws {
        let inference = try json(["zoo:lenet5?input=32,32,1", "--batch", "4", "--iterations", "2", "--warmup", "0"])
        #expect(inference["mode"] as? String == "inference")
        #expect(inference["parameters"] as? Int == 61_706)
        #expect((inference["images_per_second"] as? Double ?? 0) > 0)
        #expect((inference["peak_rss_mb"] as? Double ?? 0) > 1)
        // A frozen base leaves only the new head trainable: 84·3 + 3 = 255 parameters after cutting at fc1's output.
        let frozen = try json(["zoo:lenet5?input=32,32,1", "--batch", "4", "--iterations", "1", "--train", "frozen-base", "--classes", "3"])
        #expect(frozen["mode"] as? String == "frozen-base")
        #expect(frozen["trainable_parameters"] as? Int == 255)
        let full = try json(["zoo:convnet", "--batch", "4", "--iterations", "1", "--train", "full"])
        #expect(full["mode"] as? String == "full")
        #expect((full["median_seconds"] as? Double ?? 0) > 0)
    }

    @Test func badArgumentsAreOneLineErrors() throws {
        for args in [["zoo:lenet5", "--batch", "0"], ["zoo:nope"], ["missing.h5"], ["zoo:lenet5", "--train", "half"]] {
            let r = try TestSupport.runGraft(["bench"] + args)
            #expect(r.status != 0, "\(args)")
            #expect(!r.stderr.isEmpty)
        }
    }
}
