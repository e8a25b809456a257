import Foundation
import Testing
import GraftTestSupport

/// A model Graft trained knows its task: class names, preprocessing, fit, input size and the checkpoint it came
/// from travel with every file it writes, and `evaluate`, `extract` and `export` use them.
@Suite(.serialized)
struct ModelTaskTests {
    /// LeNet-5 (Fashion-MNIST 0–4) fine-tuned on Sandal, Shirt, Sneaker: a few seconds.
    static let trained: Result<String, Error> = Result {
        let run = try TestSupport.makeTemporaryDirectory("graft-task").appendingPathComponent("run").path
        let r = try TestSupport.runGraft(["fine-tune", TestSupport.fixture("../../pretrained/lenet5-fashion-0to4.h5"), "--data", "fashion-mnist:train",
                                          "--class-subset", "5,6,7", "--limit-per-class", "60", "--epochs", "2", "--preprocess", "1/255",
                                          "--fit", "pad", "--seed", "1", "--out", run, "--quiet"])
        guard r.status == 0 else { throw CLIFailure(text: r.stderr) }
        return "\(run)/final.h5"
    }
    struct CLIFailure: Error { let text: String }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// A test set holding only two of the three classes is scored by name (it was scored by folder position:
    /// accuracy 0.0833 and a NaN precision in the issue); the same images in the full test set score the same.
    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"))
    func subsetOfTheClassesIsScoredByName() throws {
        let model = try Self.trained.get()
        let two = try TestSupport.runGraft(["evaluate", model, "--data", "fashion-mnist:test", "--class-subset", "7,5", "--json"])
        #expect(two.status == 0, "\(two.stderr)")
        let all = try TestSupport.runGraft(["evaluate", model, "--data", "fashion-mnist:test", "--class-subset", "5,6,7", "--json"])
        let a = try Self.json(two.stdout), b = try Self.json(all.stdout)
        #expect((a["classes"] as? [String]) == ["Sandal", "Shirt", "Sneaker"])
        #expect((a["images_per_class"] as? [Int]) == [1000, 0, 1000])
        // Rows of the confusion matrix are per true class: Sandal's and Sneaker's rows are the same images in both runs.
        let ca = try #require(a["confusion"] as? [[Int]]), cb = try #require(b["confusion"] as? [[Int]])
        #expect(ca[0] == cb[0] && ca[2] == cb[2] && ca[1] == [0, 0, 0], "\(ca) vs \(cb)")
        let accuracy = try #require(a["accuracy"] as? Double)
        #expect(abs(accuracy - Double(cb[0][0] + cb[2][2]) / 2000) < 1e-9)
        #expect(a["top5_accuracy"] == nil)   // 3 classes: no top-5
        let text = try TestSupport.runGraft(["evaluate", model, "--data", "fashion-mnist:test", "--class-subset", "7,5"])
        #expect(!text.stdout.contains("nan") && text.stdout.contains("no images of this class"), "\(text.stdout)")
    }

    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"))
    func aClassTheModelDoesNotKnowIsNamed() throws {
        let r = try TestSupport.runGraft(["evaluate", try Self.trained.get(), "--data", "fashion-mnist:test", "--class-subset", "5,8"])
        #expect(r.status == 1 && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("Bag") && r.stderr.contains("Sandal, Shirt, Sneaker"), "\(r.stderr)")
    }

    /// The checkpoint's fit and preprocessing are the defaults; an explicit option wins and says so in one line.
    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"))
    func theCheckpointsSettingsAreTheDefaults() throws {
        let model = try Self.trained.get()
        let plain = try TestSupport.runGraft(["evaluate", model, "--data", "fashion-mnist:test", "--class-subset", "5,6,7", "--json"])
        let o = try Self.json(plain.stdout)
        #expect(o["fit"] as? String == "pad" && o["preprocessing"] as? String == "1/255", "\(o)")
        #expect(!plain.stderr.contains("note:"))
        let overridden = try TestSupport.runGraft(["evaluate", model, "--data", "fashion-mnist:test", "--class-subset", "5,6,7", "--fit", "resize", "--json"])
        #expect(overridden.status == 0)
        #expect(overridden.stderr.hasPrefix("note: --fit resize given; \(model) was trained with pad\n"), "\(overridden.stderr)")
        #expect(overridden.stderr.components(separatedBy: "note:").count == 2, "\(overridden.stderr)")
        #expect(overridden.stderr.contains("fashion-mnist:test: 3000 images of 28×28, gray; for the 32×32×1 input: resized (fit resize)"))
        #expect(plain.stderr.contains("for the 32×32×1 input: 3000 padded with zeros to 32×32 (fit pad)"), "\(plain.stderr)")
        #expect(try Self.json(overridden.stdout)["fit"] as? String == "resize")
    }

    /// Export keeps the task in every format, and a model exported that way is scored by name too.
    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"), arguments: ["h5", "keras"])
    func exportKeepsTheTask(_ format: String) throws {
        let model = try Self.trained.get()
        let out = try TestSupport.makeTemporaryDirectory("graft-task-export").appendingPathComponent("m.\(format)").path
        #expect(try TestSupport.runGraft(["export", model, "--output", out]).status == 0)
        let r = try TestSupport.runGraft(["evaluate", out, "--data", "fashion-mnist:test", "--class-subset", "7", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect((try Self.json(r.stdout)["images_per_class"] as? [Int]) == [0, 0, 1000])
    }

    /// `zoo` says its weights are random.
    @Test func zooSaysItsWeightsAreRandom() throws {
        let out = try TestSupport.makeTemporaryDirectory("graft-zoo").appendingPathComponent("l.h5").path
        let r = try TestSupport.runGraft(["zoo", "lenet5", "--output", out])
        #expect(r.status == 0 && r.stdout.contains("random weights"), "\(r.stdout)")
    }
}
