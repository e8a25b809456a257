import Foundation
import Testing
import GraftTestSupport

/// `graft run` on the shipped recipes (shortened with --set), and recipe errors that name file, line and key.
struct RunCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"))
    func quickstartRecipeRunsEndToEnd() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let recipe = Self.root.appendingPathComponent("Recipes/quickstart.yaml").path
        let checkpoint = Self.root.appendingPathComponent("pretrained/lenet5-fashion-0to4.h5").path
        let r = try TestSupport.runGraft(["run", recipe, "--quiet", "--set", "model.checkpoint=\(checkpoint)",
                                          "--set", "outputs.directory=\(dir.path)/run", "--set", "stages.0.epochs=1",
                                          "--set", "stages.1.epochs=1", "--set", "baseline.epochs=1",
                                          "--set", "outputs.features=[{layer: fc1, data: test, format: npz}]", "--set", "augment=[flip:h, rotate:5]"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("test accuracy (fine-tuned): 0."))
        #expect(r.stdout.contains("test accuracy (from scratch, same data): 0."))
        for f in ["recipe.resolved.yaml", "metrics.csv", "metrics.jsonl", "final.h5", "final.keras", "best.h5", "confusion.csv",
                  "confusion.svg", "loss.svg", "accuracy.svg", "summary.txt", "report.md", "features_fc1_test.npz", "baseline/final.h5", "comparison.svg"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir.path)/run/\(f)"), "\(f) missing")
        }
        let resolved = try String(contentsOfFile: "\(dir.path)/run/recipe.resolved.yaml", encoding: .utf8)
        #expect(resolved.contains("Graft 0.1.0-dev") && resolved.contains("limit_per_class: 100"))
        // The resolved recipe runs again as it is, into a folder that now holds a run: refused unless replaced.
        let refused = try TestSupport.runGraft(["run", "\(dir.path)/run/recipe.resolved.yaml", "--check"])
        #expect(refused.status == 1 && refused.stderr.contains("already holds a run"), "\(refused.stderr)")
        let again = try TestSupport.runGraft(["run", "\(dir.path)/run/recipe.resolved.yaml", "--check", "--overwrite"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(dir.path)/run/final.h5"))   // --check replaces nothing
        let svg = try String(contentsOfFile: "\(dir.path)/run/loss.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("polyline"))
    }

    /// A recipe without stages only extracts features, from the checkpoint as it is (cut at a layer).
    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"))
    func extractionOnlyRecipe() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let checkpoint = Self.root.appendingPathComponent("pretrained/lenet5-fashion-0to4.h5").path
        let recipe = dir.appendingPathComponent("extract.yaml").path
        try """
        model: {checkpoint: \(checkpoint), cut: fc1}
        data: {test: fashion-mnist:test, classes: [0, 1], fit: pad, preprocess: 1/255}
        outputs:
          directory: \(dir.path)/run
          features: [{data: test, format: npz}, {data: test, format: csv}]
        """.write(toFile: recipe, atomically: true, encoding: .utf8)
        let r = try TestSupport.runGraft(["run", recipe, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("features_fc1_test.npz") && !r.stdout.contains("accuracy"))
        let csv = try String(contentsOfFile: "\(dir.path)/run/features_fc1_test.csv", encoding: .utf8)
        let rows = csv.split(separator: "\n")
        #expect(rows.count == 2001)   // header + 1,000 test images of each of the two classes
        #expect(rows.first?.split(separator: ",").count == 2 + 84)
        #expect(FileManager.default.fileExists(atPath: "\(dir.path)/run/features_fc1_test.npz"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/run/final.h5"))
    }

    @Test(arguments: ["quickstart.yaml", "lenet5-fashion-0to4.yaml", "finetune-two-stage.yaml", "convnet-fashion.yaml",
                      "extract-features.yaml"])
    func shippedRecipesValidate(_ name: String) throws {
        // Into a new folder: the recipe's own may hold a run of the developer's (a folder holding a run is refused).
        let out = try TestSupport.makeTemporaryDirectory().appendingPathComponent("run").path
        var args = ["run", Self.root.appendingPathComponent("Recipes/\(name)").path, "--check", "--set", "outputs.directory=\(out)"]
        if name == "finetune-two-stage.yaml" {
            // Its checkpoint is the user's (the recipe says how to make one): --check loads it, so make it.
            let checkpoint = try TestSupport.makeTemporaryDirectory("graft-mnv2").appendingPathComponent("mobilenetv2-96.h5").path
            let z = try TestSupport.runGraft(["zoo", "mobilenetv2", "--input-shape", "96,96,3", "--classes", "10", "--output", checkpoint])
            #expect(z.status == 0, "\(z.stderr)")
            let missing = try TestSupport.runGraft(args)
            #expect(missing.status == 1 && missing.stderr.contains("checkpoints/mobilenetv2-96.h5"), "\(missing.stderr)")
            args += ["--set", "model.checkpoint=\(checkpoint)"]
        }
        let r = try TestSupport.runGraft(args)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("stages:"))
    }

    /// `--check` makes the checks a run makes before training, each one line naming the key.
    @Test(.enabled(if: TrainCommandTests.available, "dataset-fashion-mnist is not installed"))
    func checkFindsWhatTrainingWouldMeetLate() throws {
        let recipe = Self.root.appendingPathComponent("Recipes/quickstart.yaml").path
        let cases: [(String, [String])] = [
            ("stages.1.unfreeze=from:nope", ["stages.1.unfreeze", "nope", "no such layer"]),
            ("stages.0.freeze=until:nope", ["stages.0.freeze", "nope"]),
            ("data.train=/nonexistent-folder", ["/nonexistent-folder"]),
            ("data.test=/nonexistent-test", ["/nonexistent-test"]),
            ("model.checkpoint=/nonexistent.h5", ["/nonexistent.h5", "not found"]),
            ("model.head.classes=7", ["model.head.classes", "is 7", "5 classes"]),
            ("data.input_size=[56, 56]", ["data.input_size", "fixed 32×32"]),
            ("outputs.features=[{data: test, layer: nope, format: csv}]", ["outputs.features[0].layer", "nope"]),
        ]
        let out = try TestSupport.makeTemporaryDirectory("graft-check").appendingPathComponent("run").path
        for (set, words) in cases {
            let r = try TestSupport.runGraft(["run", recipe, "--check", "--set", set, "--set", "outputs.directory=\(out)"])
            #expect(r.status == 1 && r.stderr.split(separator: "\n").count == 1, "\(set): \(r.status) \(r.stderr)")
            for w in words { #expect(r.stderr.contains(w), "\(set): \(r.stderr) lacks \(w)") }
            // The same mistake in a real run fails as fast and leaves no run folder behind.
            let run = try TestSupport.runGraft(["run", recipe, "--quiet", "--set", set, "--set", "outputs.directory=\(out)"])
            #expect(run.status == 1 && run.stderr == r.stderr, "\(set): \(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "\(set) left \(out)")
        }
    }

    @Test func recipeErrorsNameFileLineAndKey() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let cases: [(String, [String])] = [
            ("model: {checkpoint: x.h5}\ndata: {train: fashion-mnist:train}\nstages:\n  - {epochs: 2, learnig_rate: 0.1}\noutputs: {directory: out}\n",
             [":4:", "stages[0].learnig_rate", "unknown key"]),
            ("model: {checkpoint: x.h5}\ndata: {train: fashion-mnist:train}\nstages:\n  - {epochs: two}\noutputs: {directory: out}\n",
             [":4:", "stages[0].epochs", "expected an integer"]),
            ("model: {checkpoint: x.h5}\ndata: {train: t, validation: v, validation_split: 0.2}\nstages: [{epochs: 1}]\noutputs: {directory: out}\n",
             ["data.validation_split", "not both"]),
            ("model: {checkpoint: x.h5}\ndata: {train: t}\nstages: []\noutputs: {directory: out}\n", ["stages", "at least one stage"]),
            ("model: {checkpoint: x.h5, head: {classes: 3}}\ndata: {test: t}\noutputs: {directory: out, features: [{data: test}]}\n",
             ["model.head", "without stages"]),
            ("model: {checkpoint: x.h5}\ndata: {test: t}\noutputs: {directory: out, features: [{data: train}]}\n",
             [":3:", "outputs.features[0].data", "needs data.train"]),
            ("model: {checkpoint: x.h5}\ndata: {train: t}\naugment: [flip:h, twirl:3]\nstages: [{epochs: 1}]\noutputs: {directory: out}\n",
             ["augment", "twirl"]),
            ("model: {checkpoint: x.h5}\ndata: {train: t}\nstages:\n  - {epochs: 1, nan: ignore}\noutputs: {directory: out}\n",
             [":4:", "stages[0].nan", "stop or skip"]),
            ("colour: blue\n", [":1:", "colour", "unknown key"]),
            ("model: [unclosed\n", ["not valid YAML"]),
        ]
        for (i, (text, mentions)) in cases.enumerated() {
            let path = dir.appendingPathComponent("r\(i).yaml").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try TestSupport.runGraft(["run", path, "--check"])
            #expect(r.status != 0, "case \(i) was accepted")
            #expect(r.stderr.split(separator: "\n").count == 1, "case \(i): \(r.stderr)")
            #expect(r.stderr.contains(path), "case \(i): \(r.stderr)")
            for m in mentions { #expect(r.stderr.contains(m), "case \(i) lacks \(m): \(r.stderr)") }
        }
        let set = try TestSupport.runGraft(["run", Self.root.appendingPathComponent("Recipes/quickstart.yaml").path, "--check", "--set", "stages.7.epochs=1"])
        #expect(set.status != 0 && set.stderr.contains("out of range"))
    }
}
