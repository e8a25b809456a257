import Foundation
import GraftData
import GraftKeras
import GraftNN
import GraftTensor
import GraftTrain

/// What `graft run` produced.
public struct RecipeReport {
    public var fineTune: FineTuneReport
    public var baselineAccuracy: Double?
    public var files: [String]
    public var runDirectory: String
}

/// Runs a recipe: the fine-tuning stages, exports, feature files, plots and the optional from-scratch baseline.
public final class RecipeRunner {
    public let recipe: Recipe
    public let graftVersion: String

    public init(_ recipe: Recipe, graftVersion: String) {
        self.recipe = recipe
        self.graftVersion = graftVersion
    }

    public func run() throws -> RecipeReport {
        let run = try RunDirectory(recipe.config.outputDirectory)
        try run.write(recipe.resolvedYAML(graftVersion: graftVersion), to: "recipe.resolved.yaml")
        let job = FineTuneJob(recipe.config, graftVersion: graftVersion)
        let report = try job.run()
        if case .interrupted = report.outcome {
            return RecipeReport(fineTune: report, baselineAccuracy: nil, files: ["interrupted.h5"], runDirectory: run.url.path)
        }
        var files = ["recipe.resolved.yaml", "metrics.csv", "metrics.jsonl", "final.h5", "summary.txt"]
        for f in recipe.outputFormats where f != "h5" {
            let name = "final.\(f)"
            if f == "keras" { try KerasWriter.writeKerasArchive(report.model, to: run.path(name)) }
            else { try KerasWriter.writeKeras3Weights(report.model, to: run.path(name)) }
            files.append(name)
        }
        // Plots from the records the run wrote.
        let records = report.history
        try run.write(Plots.lines(title: "Loss", yLabel: "loss",
                                  series: [("train", records.map { $0.loss }), ("validation", records.map { $0.valLoss })]), to: "loss.svg")
        try run.write(Plots.lines(title: "Accuracy", yLabel: "accuracy",
                                  series: [("train", records.map { $0.accuracy }), ("validation", records.map { $0.valAccuracy })]), to: "accuracy.svg")
        files += ["loss.svg", "accuracy.svg"]
        if let m = report.testMetrics {
            try run.write(Plots.confusion(m.confusion, names: report.testClassNames, title: "Confusion matrix (test)"), to: "confusion.svg")
            files += ["confusion.csv", "confusion.svg"]
        }
        for (i, f) in recipe.features.enumerated() {
            let spec: String
            switch f.data {
            case "train": spec = recipe.config.train
            case "validation": spec = recipe.config.validation ?? recipe.config.train
            case "test":
                guard let t = recipe.config.test else { throw RecipeError(file: recipe.file, line: nil, key: "outputs.features[\(i)].data", message: "data.test is not set") }
                spec = t
            default: spec = f.data
            }
            var source = try DataSource.load(spec, skipBad: recipe.config.skipBad).source
            if let subset = recipe.config.classSubset { source = try source.selectingClasses(subset) }
            var model = report.model
            if let layer = f.layer { model = try model.cut(at: layer) }
            var extractor = FeatureExtractor(model: model, preprocessor: report.preprocessor)
            extractor.pooling = FeatureExtractor.Pooling(rawValue: f.pooling) ?? .avg
            extractor.batchSize = recipe.config.batchSize
            extractor.showProgress = recipe.config.showProgress
            let name = "features_\(f.layer ?? "output")_\(f.data.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: ":", with: "-")).\(f.format)"
            try extractor.extract(source, to: run.path(name))
            files.append(name)
        }
        var baselineAccuracy: Double?
        if let b = recipe.baseline, b.fromScratch {
            var c = recipe.config
            c.fromScratch = true
            c.outputDirectory = run.path("baseline")
            c.stages = [StageConfig(name: "scratch", freeze: "none", epochs: b.epochs, optimizer: b.optimizer, learningRate: Float(b.learningRate))]
            let base = try FineTuneJob(c, graftVersion: graftVersion).run()
            baselineAccuracy = base.testAccuracy
            files.append("baseline/")
        }
        var lines = ["# \(recipe.file)", ""]
        if let acc = report.testAccuracy { lines.append(String(format: "test accuracy, fine-tuned: %.4f", acc)) }
        if let base = baselineAccuracy {
            lines.append(String(format: "test accuracy, same network from scratch on the same data: %.4f", base))
            if let acc = report.testAccuracy { lines.append(String(format: "gain from the pretrained checkpoint: %+.4f", acc - base)) }
        }
        try run.write(lines.joined(separator: "\n") + "\n", to: "report.md")
        files.append("report.md")
        return RecipeReport(fineTune: report, baselineAccuracy: baselineAccuracy, files: files, runDirectory: run.url.path)
    }
}
