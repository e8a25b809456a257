import Foundation
import Testing
import GraftTestSupport

/// Every number a user gives, on the command line or in a recipe, is range-checked before it is converted: NaN,
/// ±inf, 1e30, −1e20 and Int.max end in one line naming the option or key and exit 1, before any data is read
/// (these used to trap with signal 4 in `Int(Float)` and in epoch sums).
struct HostileNumberTests {
    static let values = ["nan", "inf", "-inf", "1e30", "-1e20", "9223372036854775807"]

    static func expectRefused(_ args: [String], naming: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try TestSupport.runGraft(args)
        let what = args.joined(separator: " ")
        #expect(r.status == 1, "\(what): exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(what): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(!r.stderr.contains("Internal error") && !r.stderr.contains("nonexistent-data"), "\(what): \(r.stderr)",
                sourceLocation: sourceLocation)
        #expect(naming.contains { r.stderr.contains($0) }, "\(what): \(r.stderr) names none of \(naming)", sourceLocation: sourceLocation)
    }

    @Test func fineTuneOptions() throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-numbers")
        let base = ["fine-tune", TestSupport.fixture("keras/keras3_lenet.h5"), "--data", "/nonexistent-data", "--unfreeze", "all",
                    "--out", dir.appendingPathComponent("run").path]
        let options: [(String, [String])] = [
            ("--epochs", ["epochs"]), ("--batch", ["batch"]), ("--fine-tune-epochs", ["fine-tune-epochs", "epochs"]),
            ("--lr", ["lr", "learning rate"]), ("--fine-tune-lr", ["fine-tune-lr", "learning rate"]),
            ("--val-split", ["val-split", "validation split"]), ("--limit-per-class", ["limit-per-class", "limit per class"]),
            ("--head-dropout", ["head-dropout", "dropout"]), ("--label-smoothing", ["label-smoothing", "label smoothing"]),
            ("--early-stopping", ["early-stopping", "early stopping"]), ("--clip-norm", ["clip-norm", "clip norm"]),
            ("--reduce-lr-patience", ["reduce-lr-patience", "patience"]), ("--classes", ["classes"]),
            ("--head-hidden", ["head-hidden", "hidden"]), ("--seed", ["seed"]),
        ]
        for (option, naming) in options {
            for v in Self.values where !(option == "--seed" && v == "9223372036854775807") {   // a valid seed
                try Self.expectRefused(base + [option, v], naming: naming)
            }
        }
        for v in Self.values {
            try Self.expectRefused(base + ["--input-size", "\(v),28"], naming: ["input-size", "input size"])
            for schedule in ["step:\(v):0.5", "step:2:\(v)", "exponential:\(v):0.5", "exponential:10:\(v)", "cosine:\(v)",
                             "cosine:1:\(v)", "onecycle:\(v)"] {
                try Self.expectRefused(base + ["--schedule", schedule], naming: ["schedule"])
            }
        }
    }

    /// The inference and data commands take fine-tune's limits for their numbers.
    @Test func inferenceAndDataOptions() throws {
        let model = TestSupport.fixture("keras/keras3_lenet.h5")
        let dir = try TestSupport.makeTemporaryDirectory("graft-numbers-inference")
        let out = dir.appendingPathComponent("y.npy").path
        for v in Self.values + ["0", "-3", "65537"] {   // a batch is 1 to 65,536 images, as in fine-tune
            try Self.expectRefused(["predict", model, "--input", "/nonexistent-data.npy", "--output", out, "--batch", v], naming: ["--batch"])
            try Self.expectRefused(["evaluate", model, "--data", "/nonexistent-data", "--batch", v], naming: ["--batch"])
            try Self.expectRefused(["extract", model, "--data", "/nonexistent-data", "--output", out, "--batch", v], naming: ["--batch"])
            try Self.expectRefused(["data-bench", "--data", "/nonexistent-data", "--batch", v], naming: ["--batch"])
        }
        for v in Self.values {
            try Self.expectRefused(["data-bench", "--data", "/nonexistent-data", "--epochs", v], naming: ["--epochs"])
            try Self.expectRefused(["extract", model, "--data", "/nonexistent-data", "--output", out, "--input-size", "\(v),28"],
                                   naming: ["--input-size"])
            try Self.expectRefused(["data-bench", "--data", "/nonexistent-data", "--size", "28,\(v),3"], naming: ["--size"])
            try Self.expectRefused(["evaluate", model, "--data", "/nonexistent-data", "--class-subset", "1,\(v)"], naming: ["--class-subset"])
        }
    }

    @Test func recipeKeysUnderCheck() throws {
        let recipe = TestSupport.fixture("../../Recipes/quickstart.yaml")
        let keys = ["seed", "stages.0.epochs", "stages.1.epochs", "stages.0.learning_rate", "stages.0.clip_norm",
                    "stages.0.early_stopping", "stages.0.reduce_lr_patience", "data.validation_split", "data.limit_per_class",
                    "data.batch_size", "model.head.dropout", "baseline.epochs", "baseline.learning_rate"]
        let yamlValues = [".nan", ".inf", "-.inf", "1e30", "-1e20", "9223372036854775807"]
        for key in keys {
            for v in yamlValues where !(key == "seed" && v == "9223372036854775807") {
                try Self.expectRefused(["run", recipe, "--check", "--set", "\(key)=\(v)"], naming: [key, String(key.split(separator: ".").last!)])
            }
        }
        for v in Self.values {
            try Self.expectRefused(["run", recipe, "--check", "--set", "stages.0.schedule=step:\(v):0.5"], naming: ["schedule"])
            try Self.expectRefused(["run", recipe, "--check", "--set", "data.input_size=[\(v), 28]"], naming: ["input_size"])
        }
        // Two stages of the largest allowed length: the baseline's default (their sum) does not overflow.
        let out = try TestSupport.makeTemporaryDirectory().appendingPathComponent("run").path
        let r = try TestSupport.runGraft(["run", recipe, "--check", "--set", "stages.0.epochs=100000", "--set", "stages.1.epochs=100000",
                                          "--set", "outputs.directory=\(out)"])
        #expect(r.status == 0, "\(r.stderr)")
    }
}
