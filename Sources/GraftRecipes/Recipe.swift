import Foundation
import GraftData
import GraftNN
import GraftTrain
import Yams

/// A reproducible run, as `Recipes/*.yaml` describe it. Every key is checked before any work starts.
///
/// ```yaml
/// seed: 1
/// model: {checkpoint: pretrained/x.h5, architecture: null, cut: fc1,
///         head: {classes: auto, pooling: avg, hidden: [], dropout: 0, activation: softmax}}
/// data: {train: fashion-mnist:train, validation: null, validation_split: 0.1, test: fashion-mnist:test,
///        classes: [5, 6, 7, 8, 9], limit_per_class: 100, input_size: [32, 32], fit: pad, preprocess: 1/255,
///        batch_size: 32, skip_bad: false}
/// augment: [flip:h, rotate:10]
/// stages:
///   - {name: warmup, freeze: all, unfreeze: null, epochs: 5, optimizer: adam, learning_rate: 0.001,
///      schedule: constant, batch_norm: inference, early_stopping: null, reduce_lr_patience: null, clip_norm: null}
/// outputs: {directory: runs/x, formats: [h5, keras], features: [{layer: fc1, data: test, format: npz, pooling: avg}]}
/// baseline: {from_scratch: true, epochs: 5, learning_rate: 0.001}
/// ```
public struct Recipe: Sendable {
    /// One `outputs.features` item: the layer, the data, the file format and the pooling.
    public struct FeatureOutput: Sendable {
        public var layer: String?
        /// `train`, `validation`, `test`, or a data source.
        public var data: String
        public var format: String
        public var pooling: String
    }

    /// The `baseline` comparison: the same architecture trained (from scratch by default) for comparison.
    public struct Baseline: Sendable {
        public var fromScratch: Bool
        public var epochs: Int
        public var learningRate: Double
        public var optimizer: OptimizerKind
    }

    public var file: String
    public var seed: UInt64
    public var config: FineTuneConfig
    public var headClassesAuto: Bool
    public var outputFormats: [String]
    public var features: [FeatureOutput]
    public var baseline: Baseline?

    static let topKeys: Set<String> = ["seed", "model", "data", "augment", "stages", "outputs", "baseline", "description"]

    /// Parses and validates a recipe file, after applying `--set key.path=value` overrides.
    public static func load(_ path: String, overrides: [String] = []) throws -> Recipe {
        let data: Data
        do { data = try DataFile.read(path, limit: RecipeText.maxBytes) } catch let e as DataError {
            throw RecipeError(file: path, line: nil, key: "", message: FileManager.default.fileExists(atPath: path) ? e.message : "recipe not found")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RecipeError(file: path, line: nil, key: "", message: "cannot read the recipe as UTF-8 text")
        }
        return try parse(text, file: path, overrides: overrides)
    }

    public static func parse(_ text: String, file: String, overrides: [String] = []) throws -> Recipe {
        var root: Node
        try RecipeText.check(text, file: file)
        do {
            guard let n = try Yams.compose(yaml: text) else { throw RecipeError(file: file, line: nil, key: "", message: "the recipe is empty") }
            root = n
        } catch let e as RecipeError {
            throw e
        } catch {
            throw RecipeError(file: file, line: nil, key: "", message: "not valid YAML (\(String(describing: error).split(separator: "\n").first ?? ""))")
        }
        for o in overrides { root = try apply(o, to: root, file: file) }
        do {
            return try read(root, file: file)
        } catch let e as RecipeError {
            // A value that came from `--set` has no line in the file: the error names the override instead.
            let key = e.key.replacingOccurrences(of: "[", with: ".").replacingOccurrences(of: "]", with: "")
            let overridden = overrides.compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) }
            guard overridden.contains(where: { key == $0 || key.hasPrefix($0 + ".") }) else { throw e }
            throw RecipeError(file: file, line: nil, key: "--set \(e.key)", message: e.message)
        }
    }

    private static func read(_ root: Node, file: String) throws -> Recipe {
        let r = try Reader(node: root, key: "", file: file).mapping(allowed: topKeys)

        let seed = try r.child("seed").int(default: 0, min: 0, max: Int.max)
        let m = try r.child("model").mapping(allowed: ["checkpoint", "architecture", "cut", "frames", "head"])
        var headConfig: HeadConfig?
        var auto = false
        if !m.child("head").isMissing {
            let h = try m.child("head").mapping(allowed: ["classes", "pooling", "hidden", "dropout", "activation", "recurrent"])
            var classes = 0
            if (try? h.child("classes").string()) == "auto" || h.child("classes").isMissing { auto = true } else {
                classes = try h.child("classes").int(min: 1)
            }
            let poolingText = try h.child("pooling").string(default: "avg")
            guard let pooling = HeadConfig.Pooling(rawValue: poolingText) else {
                throw h.child("pooling").fail("must be avg, max, flatten or none")
            }
            let act = try h.child("activation").string(default: "softmax")
            guard act == "softmax" || act == "sigmoid" else { throw h.child("activation").fail("must be softmax or sigmoid") }
            let dropout = try h.child("dropout").double(default: 0)
            guard dropout >= 0 && dropout < 1 else { throw h.child("dropout").fail("must be in [0, 1)") }
            headConfig = HeadConfig(classes: classes, pooling: pooling, hidden: try h.child("hidden").ints(), dropout: Float(dropout),
                                    activation: act == "softmax" ? .softmax : .sigmoid)
            if let text = try h.child("recurrent").optionalString() {
                do { headConfig?.recurrent = try RecurrentHead(parsing: text) } catch let e as LayerError { throw h.child("recurrent").fail(e.message) }
            }
        }

        let d = try r.child("data").mapping(allowed: ["train", "validation", "validation_split", "test", "classes", "limit_per_class",
                                                      "input_size", "fit", "preprocess", "batch_size", "skip_bad"])
        // Without stages the recipe only extracts features (outputs.features) from the checkpoint as it is.
        let stagesReader = try r.child("stages").items
        let extractionOnly = stagesReader.isEmpty
        var stages: [StageConfig] = []
        let stageKeys: Set<String> = ["name", "freeze", "unfreeze", "epochs", "optimizer", "learning_rate", "schedule", "batch_norm",
                                      "early_stopping", "reduce_lr_patience", "clip_norm", "update_frozen_bn_statistics", "nan"]
        for (i, s) in stagesReader.enumerated() {
            _ = try s.mapping(allowed: stageKeys)
            let epochs = try s.child("epochs").int(min: 1, max: FineTuneLimits.epochs.upperBound)
            var st = StageConfig(name: try s.child("name").string(default: "stage\(i + 1)"),
                                 freeze: try s.child("freeze").optionalParsed(FreezeSpec.init(parsing:)),
                                 unfreeze: try s.child("unfreeze").optionalParsed(FreezeSpec.init(parsing:)), epochs: epochs,
                                 optimizer: try s.child("optimizer").parsed(default: .adam, OptimizerKind.init(parsing:)),
                                 learningRate: Float(try s.child("learning_rate").double(default: 1e-3)),
                                 schedule: try s.child("schedule").parsed(default: .constant) { text in
                                     let spec = try ScheduleSpec(parsing: text)
                                     _ = try spec.schedule(epochs: epochs, stepsPerEpoch: 1)   // a warm-up longer than the stage
                                     return spec
                                 })
            guard st.learningRate > 0 else { throw s.child("learning_rate").fail("must be positive") }
            st.batchNorm = try s.child("batch_norm").parsed(default: .inference) { try Suggestions.choice($0, of: BatchNormMode.self) }
            st.earlyStoppingPatience = try s.child("early_stopping").optionalInt(min: 1)
            st.reduceOnPlateauPatience = try s.child("reduce_lr_patience").optionalInt(min: 1)
            st.clipNorm = try s.child("clip_norm").optionalDouble().map(Float.init)
            if let c = st.clipNorm, !(c > 0) { throw s.child("clip_norm").fail("must be positive") }
            st.nanPolicy = try s.child("nan").parsed(default: .stop) { try Suggestions.choice($0, of: NaNPolicy.self) }
            st.updateFrozenBatchNormStatistics = try s.child("update_frozen_bn_statistics").bool(default: false)
            stages.append(st)
        }
        let o = try r.child("outputs").mapping(allowed: ["directory", "formats", "features"])
        let train = extractionOnly ? try d.child("train").optionalString() ?? "" : try d.child("train").string()
        var config = FineTuneConfig(model: try m.child("checkpoint").string(), train: train, stages: stages,
                                    outputDirectory: try o.child("directory").string())
        config.architecture = try m.child("architecture").optionalString()
        config.cut = try m.child("cut").optionalString()
        if !m.child("frames").isMissing { config.frames = try m.child("frames").int(min: 1, max: 65_536) }
        config.head = headConfig
        config.validation = try d.child("validation").optionalString()
        config.validationSplit = try d.child("validation_split").optionalDouble()
        if config.validation != nil && config.validationSplit != nil {
            throw d.child("validation_split").fail("give validation or validation_split, not both")
        }
        if let f = config.validationSplit, !(f > 0 && f < 1) { throw d.child("validation_split").fail("must be between 0 and 1") }
        config.test = try d.child("test").optionalString()
        let classes = try d.child("classes").ints()
        config.classSubset = classes.isEmpty ? nil : classes
        config.limitPerClass = try d.child("limit_per_class").optionalInt(min: 1)
        let size = try d.child("input_size").ints()
        if !size.isEmpty {
            guard size.count == 2, size.allSatisfy({ $0 > 0 }) else { throw d.child("input_size").fail("must be [height, width]") }
            config.inputSize = size
        }
        config.fit = try d.child("fit").optionalParsed { try Suggestions.choice($0, of: ImageFit.self) }
        config.preprocess = try d.child("preprocess").optionalString()
        if let p = config.preprocess {
            do { _ = try PreprocessMode(parsing: p) } catch { throw d.child("preprocess").fail("\(error)") }
        }
        config.batchSize = try d.child("batch_size").int(default: 32, min: 1)
        config.skipBad = try d.child("skip_bad").bool(default: false)
        config.seed = UInt64(seed)
        config.augment = try r.child("augment").parsedList(AugmentOp.init(parsing:))

        let formats = try o.child("formats").strings()
        for f in formats where !["h5", "keras", "weights.h5"].contains(f) {
            throw o.child("formats").fail("unknown format \(f) (h5, keras, weights.h5)")
        }
        var features: [FeatureOutput] = []
        let featureReaders = try o.child("features").items
        for f in featureReaders {
            _ = try f.mapping(allowed: ["layer", "data", "format", "pooling"])
            let format = try f.child("format").string(default: "npz")
            guard FeatureFormat(rawValue: format) != nil else { throw f.child("format").fail("must be npy, npz, h5 or csv") }
            let pooling = try f.child("pooling").string(default: "avg")
            guard FeatureExtractor.Pooling(rawValue: pooling) != nil else { throw f.child("pooling").fail("must be avg, max or none") }
            features.append(FeatureOutput(layer: try f.child("layer").optionalString(), data: try f.child("data").string(default: "test"),
                                          format: format, pooling: pooling))
        }
        var baseline: Baseline?
        if !r.child("baseline").isMissing {
            let b = try r.child("baseline").mapping(allowed: ["from_scratch", "epochs", "learning_rate", "optimizer"])
            baseline = Baseline(fromScratch: try b.child("from_scratch").bool(default: true),
                                epochs: try b.child("epochs").int(default: min(stages.reduce(0) { $0 + $1.epochs }, FineTuneLimits.epochs.upperBound),
                                                                  min: 1, max: FineTuneLimits.epochs.upperBound),
                                learningRate: try b.child("learning_rate").double(default: 1e-3),
                                optimizer: try b.child("optimizer").parsed(default: .adam, OptimizerKind.init(parsing:)))
        }
        if config.test == nil && baseline != nil { throw r.child("baseline").fail("a baseline comparison needs data.test") }
        if let b = baseline, !(b.learningRate > 0 && b.learningRate <= FineTuneLimits.learningRate.upperBound) {
            throw r.child("baseline").child("learning_rate").fail("must be a number above 0 and at most 10, got \(b.learningRate)")
        }
        if extractionOnly {
            guard !features.isEmpty else {
                throw r.child("stages").fail("at least one stage is needed (or outputs.features alone, to only extract features)")
            }
            if baseline != nil { throw r.child("baseline").fail("a recipe without stages trains nothing to compare") }
            if headConfig != nil { throw m.child("head").fail("a recipe without stages cannot train a new head") }
            for (i, f) in features.enumerated() where (f.data == "train" || f.data == "validation") && train.isEmpty {
                throw featureReaders[i].child("data").fail("\(f.data) needs data.train")
            }
        }
        if !extractionOnly {
            do { try config.validate() } catch let e as TrainError {
                throw RecipeError(file: file, line: nil, key: e.subject, message: e.message)
            }
        }
        return Recipe(file: file, seed: UInt64(seed), config: config, headClassesAuto: auto, outputFormats: formats,
                      features: features, baseline: baseline)
    }

    /// Applies `a.b.0.c=value` to the YAML tree (the value parsed as YAML, so numbers stay numbers).
    static func apply(_ override: String, to root: Node, file: String) throws -> Node {
        guard let eq = override.firstIndex(of: "=") else {
            throw RecipeError(file: file, line: nil, key: override, message: "--set needs key=value")
        }
        let path = override[..<eq].split(separator: ".").map(String.init)
        let valueText = String(override[override.index(after: eq)...])
        try RecipeText.check(valueText, file: file, key: path.joined(separator: "."))
        let value = (try? Yams.compose(yaml: valueText)) ?? nil ?? Node(valueText)
        func set(_ node: Node, _ keys: ArraySlice<String>) throws -> Node {
            guard let k = keys.first else { return value }
            if var seq = node.sequence, let i = Int(k) {
                guard i >= 0 && i < seq.count else {
                    throw RecipeError(file: file, line: nil, key: path.joined(separator: "."), message: "--set: index \(i) is out of range")
                }
                seq[i] = try set(seq[i], keys.dropFirst())
                return .sequence(seq)
            }
            var map = node.mapping ?? Node.Mapping([])
            let existing = map[k] ?? Node.mapping(Node.Mapping([]))
            map[k] = try set(existing, keys.dropFirst())
            return .mapping(map)
        }
        return try set(root, path[...])
    }

    /// The recipe with every default filled in, as YAML (written into the run directory).
    public func resolvedYAML(graftVersion: String) -> String {
        let c = config
        func opt(_ v: Any?) -> Any { v ?? NSNull() }
        var model: [String: Any] = ["checkpoint": c.model, "architecture": opt(c.architecture), "cut": opt(c.cut), "frames": opt(c.frames)]
        if let h = c.head {
            model["head"] = ["classes": headClassesAuto ? "auto" : "\(h.classes)", "pooling": h.pooling.rawValue, "hidden": h.hidden,
                             "dropout": TypedNumber(h.dropout), "activation": h.activation == .softmax ? "softmax" : "sigmoid",
                             "recurrent": opt(h.recurrent?.description)] as [String: Any]
        }
        let data: [String: Any] = ["train": c.train, "validation": opt(c.validation), "validation_split": opt(c.validationSplit.map { TypedNumber($0) }),
                                   "test": opt(c.test), "classes": c.classSubset ?? [], "limit_per_class": opt(c.limitPerClass),
                                   "input_size": c.inputSize ?? [], "fit": opt(c.fit?.rawValue), "preprocess": opt(c.preprocess),
                                   "batch_size": c.batchSize, "skip_bad": c.skipBad]
        let stages: [[String: Any]] = c.stages.map { s in
            ["name": s.name, "freeze": opt(s.freeze?.description), "unfreeze": opt(s.unfreeze?.description), "epochs": s.epochs,
             "optimizer": s.optimizer.rawValue, "learning_rate": TypedNumber(s.learningRate), "schedule": s.schedule.description, "batch_norm": s.batchNorm.rawValue,
             "early_stopping": opt(s.earlyStoppingPatience), "reduce_lr_patience": opt(s.reduceOnPlateauPatience),
             "clip_norm": opt(s.clipNorm.map { TypedNumber($0) }), "update_frozen_bn_statistics": s.updateFrozenBatchNormStatistics,
             "nan": s.nanPolicy.rawValue]
        }
        var object: [String: Any] = [
            "seed": Int(seed), "model": model, "data": data, "augment": c.augment.map(\.description), "stages": stages,
            "outputs": ["directory": c.outputDirectory, "formats": outputFormats,
                        "features": features.map { ["layer": opt($0.layer), "data": $0.data, "format": $0.format, "pooling": $0.pooling] }],
        ]
        if let b = baseline {
            object["baseline"] = ["from_scratch": b.fromScratch, "epochs": b.epochs, "learning_rate": TypedNumber(b.learningRate), "optimizer": b.optimizer.rawValue]
        }
        let body = (try? Yams.dump(object: object, sortKeys: true)) ?? ""
        return "# Resolved from \(file) by Graft \(graftVersion): every default filled in; `graft run` this file to repeat the run.\n" + body
    }
}

/// A number in the resolved YAML as a user types it: the shortest decimal that reads back as the same value
/// (`0.2`, `0.0001`), not the Float widened to a Double (`2.00000002980232e-1`) or Yams's exponent form (`1e-3`).
struct TypedNumber: NodeRepresentable {
    let text: String
    init(_ v: Float) { text = Self.plain("\(v)") }
    init(_ v: Double) { text = Self.plain("\(v)") }
    /// Swift's shortest form, with small exponents written out (`1e-05` → `0.00001`).
    static func plain(_ s: String) -> String {
        guard let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }), let exp = Int(s[s.index(after: e)...]), exp < 0, exp >= -8 else { return s }
        let mantissa = s[..<e].replacingOccurrences(of: ".", with: "")
        let negative = mantissa.hasPrefix("-")
        let digits = negative ? String(mantissa.dropFirst()) : mantissa
        return (negative ? "-" : "") + "0." + String(repeating: "0", count: -exp - 1) + digits
    }
    func represented() throws -> Node { Node(text, Tag(.float)) }
}
