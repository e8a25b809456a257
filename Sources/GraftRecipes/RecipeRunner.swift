import Foundation
import GraftData
import GraftKeras
import GraftNN
import GraftTensor
import GraftTrain

/// What `graft run` produced.
public struct RecipeReport {
    /// Nil for an extraction-only recipe (no stages).
    public var fineTune: FineTuneReport?
    public var baselineAccuracy: Double?
    public var files: [String]
    public var runDirectory: String
    /// The signal that stopped the run (the fine-tuning or the baseline's): it resumes with `resume`.
    public var interruptedBy: Int32?
}

/// Runs a recipe: the fine-tuning stages, exports, feature files, plots and the optional from-scratch baseline.
public final class RecipeRunner {
    public let recipe: Recipe
    public let graftVersion: String

    public init(_ recipe: Recipe, graftVersion: String) {
        self.recipe = recipe
        self.graftVersion = graftVersion
    }

    /// The layers `outputs.features` names, with their keys.
    var featureLayers: [(key: String, name: String)] {
        recipe.features.enumerated().compactMap { i, f in f.layer.map { (key: "outputs.features[\(i)].layer", name: $0) } }
    }

    /// An extraction-only recipe's model, loaded (with its task) and cut, every features layer checked.
    func extractionModel() throws -> (model: Model, task: ModelTask?) {
        let c = recipe.config
        let loaded = try c.model.hasPrefix("zoo:") ? nil : KerasLoader.load(c.model, architecture: c.architecture)
        var model = try loaded?.model ?? KerasLoader.loadArchitecture(c.model)
        if let cut = c.cut {
            do { model = try model.cut(at: cut) } catch let e as LayerError { throw TrainError("model.cut", "\(cut): \(e.message)") }
        }
        for (key, name) in featureLayers {
            do { _ = try model.cut(at: name) } catch let e as LayerError { throw TrainError(key, "\(name): \(e.message)") }
        }
        return (model, loaded?.task)
    }

    /// The checks a run makes before its first batch (`FineTuneJob.prepare`: data, checkpoint, every layer name,
    /// class count, input size, disk), with the feature layers of `outputs.features`; trains and writes nothing.
    public func check() throws {
        if recipe.config.stages.isEmpty {
            _ = try extractionModel()
            return
        }
        var config = recipe.config
        config.showProgress = false
        _ = try FineTuneJob(config, graftVersion: graftVersion).prepare(layers: featureLayers)
    }

    public func run() throws -> RecipeReport {
        if recipe.config.stages.isEmpty {
            // Features only: nothing to resume; a folder holding a run is refused unless it is to be replaced.
            let c = recipe.config
            let held = RunDirectory.heldRun(at: c.outputDirectory)
            if !held.isEmpty && !c.overwrite && !c.resume {
                throw TrainError(file: c.outputDirectory, "already holds a run (\(held.prefix(3).joined(separator: ", "))); replace it with --overwrite")
            }
            let run = try RunDirectory(c.outputDirectory, replacing: !held.isEmpty)
            try run.write(recipe.resolvedYAML(graftVersion: graftVersion), to: "recipe.resolved.yaml")
            return try extractOnly(run)
        }
        // Every check before the run folder is made: a recipe that cannot run leaves nothing behind.
        let job = FineTuneJob(recipe.config, graftVersion: graftVersion)
        var prepared = try job.prepare(layers: featureLayers)
        let run = try RunDirectory(recipe.config.outputDirectory, replacing: prepared.replacesRun)
        prepared.replacesRun = false   // done, before recipe.resolved.yaml is written
        try run.write(recipe.resolvedYAML(graftVersion: graftVersion), to: "recipe.resolved.yaml")
        let report = try job.run(prepared)
        if case .interrupted(let sig, _) = report.outcome {
            return RecipeReport(fineTune: report, baselineAccuracy: nil, files: ["interrupted.h5"], runDirectory: run.url.path, interruptedBy: sig)
        }
        var files = ["recipe.resolved.yaml", "metrics.csv", "metrics.jsonl", "final.h5", "summary.txt"]
        for f in recipe.outputFormats where f != "h5" {
            let name = "final.\(f)"
            if f == "keras" { try KerasWriter.writeKerasArchive(report.model, to: run.path(name), task: report.task) }
            else { try KerasWriter.writeKeras3Weights(report.model, to: run.path(name), task: report.task) }
            files.append(name)
        }
        files += report.plots
        if report.testMetrics != nil { files.append("confusion.csv") }
        files += try writeFeatures(model: report.model, preprocessor: report.preprocessor, run: run)
        var baselineAccuracy: Double?
        if let b = recipe.baseline, b.fromScratch {
            var c = recipe.config
            c.fromScratch = true
            c.outputDirectory = run.path("baseline")
            c.stages = [StageConfig(name: "scratch", freeze: FreezeSpec.none, epochs: b.epochs, optimizer: b.optimizer, learningRate: Float(b.learningRate))]
            // The baseline belongs to this run: resumed when it saved a checkpoint, else (interrupted before its first
            // one, or a run being replaced) started afresh over whatever it left.
            c.resume = recipe.config.resume && ["interrupted.h5", "last.h5"].contains { FileManager.default.fileExists(atPath: run.path("baseline/\($0)")) }
            c.overwrite = !c.resume
            let base = try FineTuneJob(c, graftVersion: graftVersion).run()
            if case .interrupted(let sig, _) = base.outcome {
                return RecipeReport(fineTune: report, baselineAccuracy: nil, files: ["baseline/interrupted.h5"], runDirectory: run.url.path,
                                    interruptedBy: sig)
            }
            baselineAccuracy = base.testAccuracy
            files.append("baseline/")
            // Validation accuracy epoch by epoch: the pretrained network (all its stages) against the baseline.
            let records = report.history
            files += try run.writePlot(Plots.lines(title: "Validation accuracy: pretrained checkpoint vs from scratch", yLabel: "accuracy",
                                                   series: [("fine-tuned from the checkpoint", records.map { $0.valAccuracy ?? $0.accuracy }),
                                                            ("from scratch", base.history.map { $0.valAccuracy ?? $0.accuracy })],
                                                   stages: Plots.stageStarts(records)), named: "comparison")
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

    /// Writes every `outputs.features` file from `model` and returns their names.
    /// `outputName` names files of features without a layer (the model's output).
    func writeFeatures(model: Model, preprocessor: Preprocessor, run: RunDirectory, outputName: String = "output") throws -> [String] {
        var files: [String] = []
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
            let surveyed = try InputPreparation.survey(source, label: spec, preprocessor: preprocessor, skipBad: recipe.config.skipBad,
                                                       showProgress: recipe.config.showProgress)
            if recipe.config.showProgress { for line in surveyed.lines { FileHandle.standardError.write(Data((line + "\n").utf8)) } }
            source = surveyed.source
            var model = model
            if let layer = f.layer { model = try model.cut(at: layer) }
            var extractor = FeatureExtractor(model: model, preprocessor: preprocessor)
            extractor.pooling = FeatureExtractor.Pooling(rawValue: f.pooling) ?? .avg
            extractor.batchSize = recipe.config.batchSize
            extractor.showProgress = recipe.config.showProgress
            let name = "features_\(f.layer ?? outputName)_\(f.data.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: ":", with: "-")).\(f.format)"
            try extractor.extract(source, to: run.path(name))
            files.append(name)
        }
        return files
    }

    /// A recipe without stages: the checkpoint as it is, features written, nothing trained.
    func extractOnly(_ run: RunDirectory) throws -> RecipeReport {
        let c = recipe.config
        let (model, task) = try extractionModel()
        guard model.inputShapes.count == 1 else {
            throw RecipeError(file: recipe.file, line: nil, key: "model.checkpoint", message: "\(c.model): needs a model with one input")
        }
        let first = recipe.features[0].data
        let spec = first == "test" ? (c.test ?? c.train) : first == "train" || first == "validation" ? c.train : first
        let sample = try DataSource.load(spec, skipBad: c.skipBad).source
        let preparation = try InputPreparation(model: model, task: task, preprocess: c.preprocess, fit: c.fit, inputSize: c.inputSize,
                                               data: sample.imageShape, source: c.model)
        let pre = preparation.preprocessor
        if c.showProgress {
            for line in preparation.overrides { FileHandle.standardError.write(Data("note: \(line)\n".utf8)) }
            FileHandle.standardError.write(Data("model \(model.name): \(model.parameterCounts.total) parameters, input \(Shape.describe([-1] + pre.targetShape)), preprocessing \(pre.mode); extracting features only\n".utf8))
        }
        var files = ["recipe.resolved.yaml"]
        let written = try writeFeatures(model: model, preprocessor: pre, run: run, outputName: c.cut ?? "output")
        files += written
        let lines = ["# \(recipe.file)", "", "features of \(c.model)\(c.cut.map { " at \($0)" } ?? "") (no training):"] + written.map { "- \($0)" }
        try run.write(lines.joined(separator: "\n") + "\n", to: "report.md")
        files.append("report.md")
        return RecipeReport(fineTune: nil, baselineAccuracy: nil, files: files, runDirectory: run.url.path)
    }
}
