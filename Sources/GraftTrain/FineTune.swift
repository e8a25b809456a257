import Foundation
import GraftData
import GraftHDF5
import GraftKeras
import GraftNN
import GraftTensor

/// One training stage: which layers train, for how long, and how. Recipes (`stages:`) and `graft fine-tune`'s flags
/// decode into these same typed values, each parsed and range-checked once, as it is read.
public struct StageConfig: Codable, Sendable, Equatable {
    public var name: String
    /// Freeze spec applied before the stage (`all`, `none`, `until:LAYER`, `from:LAYER`, patterns).
    public var freeze: FreezeSpec?
    /// Unfreeze spec applied after `freeze`.
    public var unfreeze: FreezeSpec?
    public var epochs: Int
    public var optimizer: OptimizerKind = .adam
    public var learningRate: Float = 1e-3
    public var schedule: ScheduleSpec = .constant
    /// BatchNormalization layers this stage unfreezes: `inference` (default, Keras's advice) or `train`.
    public var batchNorm: BatchNormMode = .inference
    /// Stop after this many epochs without improvement of the monitored metric.
    public var earlyStoppingPatience: Int?
    /// Divide the learning rate by 10 after this many epochs without improvement.
    public var reduceOnPlateauPatience: Int?
    public var clipNorm: Float?
    /// A batch with a non-finite loss or gradient stops the run (`stop`) or is skipped (`skip`).
    public var nanPolicy: NaNPolicy = .stop
    /// Frozen BatchNormalization layers keep updating their moving statistics.
    public var updateFrozenBatchNormStatistics = false

    public init(name: String, freeze: FreezeSpec? = nil, unfreeze: FreezeSpec? = nil, epochs: Int, optimizer: OptimizerKind = .adam,
                learningRate: Float = 1e-3, schedule: ScheduleSpec = .constant) {
        self.name = name
        self.freeze = freeze
        self.unfreeze = unfreeze
        self.epochs = epochs
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.schedule = schedule
    }
}

/// Everything a fine-tuning run needs; `graft fine-tune` flags and recipes both produce one.
public struct FineTuneConfig: Codable, Sendable {
    public var model: String
    public var architecture: String?
    public var cut: String?
    /// Run the (cut) model on every frame of a clip of this many frames (`TimeDistributed`) before the head.
    public var frames: Int?
    /// The new head; nil keeps the model's own output (its class count must match the data).
    public var head: HeadConfig?
    public var train: String
    public var validation: String?
    public var validationSplit: Double?
    public var test: String?
    public var classSubset: [Int]?
    public var limitPerClass: Int?
    /// Preprocessing mode; nil picks the keras.applications mode for a known architecture, else `1/255`.
    public var preprocess: String?
    /// How images meet the input size; nil takes the checkpoint's (`ModelTask`), else `resize`.
    public var fit: ImageFit?
    /// Augmentation steps (`flip:h`, `rotate:15`, …), training only.
    public var augment: [AugmentOp] = []
    /// Input size `[H, W]` for models whose input size is not fixed and data whose size is not known.
    public var inputSize: [Int]?
    /// Skip unreadable images (reported) instead of failing.
    public var skipBad = false
    /// Train the architecture from fresh weights instead of the checkpoint's (a from-scratch baseline).
    public var fromScratch = false
    /// When only a head after a frozen base trains and nothing is augmented, compute the base once and train the
    /// head on the cached features (same result, far less work).
    public var cacheFeatures = true
    /// Continue the run in `outputDirectory` from its newest checkpoint (`interrupted.h5` or `last.h5`).
    public var resume = false
    /// Replace the run `outputDirectory` holds (its files only); without it (or `resume`) such a folder is refused.
    public var overwrite = false
    public var batchSize: Int = 32
    public var seed: UInt64 = 0
    public var labelSmoothing: Float = 0
    public var monitor: String = "val_accuracy"
    public var stages: [StageConfig]
    public var outputDirectory: String
    public var showProgress = true

    public init(model: String, train: String, stages: [StageConfig], outputDirectory: String) {
        self.model = model
        self.train = train
        self.stages = stages
        self.outputDirectory = outputDirectory
    }
}

/// What a fine-tuning run produced.
public struct FineTuneReport {
    /// The trained model, as saved in `finalCheckpoint`.
    public var model: Model
    public var history: [EpochRecord]
    public var testAccuracy: Double?
    public var testLoss: Double?
    public var finalCheckpoint: String
    public var bestCheckpoint: String?
    public var outcome: FitOutcome
    public var runDirectory: String
    /// How inputs were prepared (size, fit, preprocessing mode), for extraction with the same settings.
    public var preprocessor: Preprocessor
    /// Test-set metrics, when there was a test set.
    public var testMetrics: ClassificationMetrics?
    public var testClassNames: [String] = []
    /// What the trained model is for, as stored in its checkpoints.
    public var task: ModelTask?
    /// The plot files written into the run folder (`loss.svg`, `accuracy.png`, `confusion.svg`, …).
    public var plots: [String] = []
}

/// Runs a fine-tuning job: load, cut, graft a head, train stage by stage, save, evaluate.
public final class FineTuneJob {
    public let config: FineTuneConfig
    public let graftVersion: String
    /// Lines of the run log (also printed to stderr).
    public private(set) var log: [String] = []
    /// Asked after every batch whether to stop (default: SIGINT/SIGTERM; tests give their own).
    public var interruptCheck: () -> Int32? = { Interrupt.pending }
    /// What the source checkpoint says it was trained for (set by `prepareModel`).
    public private(set) var sourceTask: ModelTask?
    /// The previous epoch's training loss (`stalledLossWarning`).
    private var lastEpochLoss: Double?

    public init(_ config: FineTuneConfig, graftVersion: String) {
        self.config = config
        self.graftVersion = graftVersion
    }

    /// While `prepare` checks, lines are held back: a run that fails a check prints its one error line only.
    private var heldLines: [String]?

    func say(_ line: String) {
        log.append(line)
        if heldLines != nil { heldLines?.append(line); return }
        show(line)
    }

    private func show(_ line: String) {
        if config.showProgress { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    /// Loads a data source and keeps the configured classes; the per-class limit applies to training data only
    /// (validation split off it included), never to the test set.
    func loadData(_ spec: String, limit: Bool) throws -> any ImageSource {
        let loaded = try DataSource.load(spec, skipBad: config.skipBad)
        if loaded.skipped > 0 { say("\(spec): skipped \(loaded.skipped) unreadable files") }
        var d = loaded.source
        if let subset = config.classSubset { d = try d.selectingClasses(subset) }
        if limit, let n = config.limitPerClass { d = d.limitingPerClass(n, seed: config.seed) }
        return d
    }

    /// Builds the model to train: loaded, cut, with its new head; returns it and the new head's layer names
    /// (empty when the model's own output is kept). Without an explicit cut, a replaced head drops the old
    /// classifier: the last layer with weights and everything after it.
    public func prepareModel(classes: Int, dataClassNames: [String]? = nil) throws -> (Model, [String]) {
        // `zoo:NAME?…` names a built-in architecture: training starts from fresh weights.
        var model: Model
        if config.fromScratch || config.model.hasPrefix("zoo:") {
            model = try KerasLoader.loadArchitecture(config.architecture ?? config.model)
            if !config.fromScratch { say("\(config.model): a built-in architecture with random weights: training starts from scratch") }
        } else {
            let loaded = try KerasLoader.load(config.model, architecture: config.architecture)
            if let warning = loaded.report.nonFiniteWarning { say("warning: \(config.model): \(warning)") }
            model = loaded.model
            sourceTask = loaded.task
        }
        if let cut = config.cut { model = try model.cut(at: cut) }
        /// The model with the configured head (its class count the data's when `auto`) and the head's layer names.
        func grafted(_ model: Model) throws -> (Model, [String]) {
            var head = config.head ?? HeadConfig(classes: classes)
            if head.classes <= 0 { head.classes = classes }
            let before = Set(model.flattenedLayers.map(\.name))
            let grafted = try model.replacingHead(head, seed: config.seed &+ 17)
            return (grafted, grafted.flattenedLayers.map(\.name).filter { !before.contains($0) })
        }
        if let frames = config.frames {
            guard config.cut != nil || config.head != nil else {
                throw TrainError("frames", "a model run over frames needs a cut layer or a head (its own classifier would classify each frame)")
            }
            model = try model.overFrames(frames)
            say("\(config.model): runs on each of \(frames) frames (TimeDistributed); the head reads the sequence of its outputs \(Shape.describe([-1] + (model.outputShapes.first ?? [])))")
            return try grafted(model)
        }
        let outputClasses = model.outputShapes.first?.last ?? 0
        // A model whose task names its classes keeps its head for data of those classes (matched by name).
        let known = config.head == nil && config.cut == nil ? sourceTask?.classNames.flatMap { $0.count == outputClasses ? $0 : nil } : nil
        if let known, let names = dataClassNames, Set(names).isSubset(of: known) { return (model, []) }
        guard config.head != nil || config.cut != nil || outputClasses != classes else { return (model, []) }
        if config.cut == nil {
            // The old classifier goes: the last layer with weights, when it is what makes the model's class vector
            // (a Dense, or the 1×1 convolution of MobileNet's top), and every layer after it. A model that ends in
            // features (a base saved without its top, pooled or not) keeps every layer: the head goes after its end.
            let output = model.outputNodes[0]
            var node = output
            while model.nodes[node].layer.variables.isEmpty, let previous = model.nodes[node].inputs.first { node = previous }
            let outputShape = model.nodes[output].outputShape, last = model.nodes[node]
            let classifier = outputShape.count == 1 && (last.layer is Dense || last.layer is Conv2D && last.outputShape.prefix(2) == [1, 1])
                && last.outputShape.reduce(1, *) == outputShape[0]
            if classifier, let feed = model.nodes[node].inputs.first {
                let before = model.flattenedLayers.map(\.name)
                model = try model.cut(at: model.nodes[feed].layer.name)
                let kept = Set(model.flattenedLayers.map(\.name))
                say("\(config.model): the new head replaces its classifier: removed \(before.filter { !kept.contains($0) }.joined(separator: ", ")) (give a cut layer to choose another place)")
            } else {
                say("\(config.model): the new head goes after \(model.nodes[output].layer.name), where the model ends (\(Shape.describe([-1] + outputShape)))")
            }
        }
        return try grafted(model)
    }

    /// Everything a run decides before its first batch.
    public struct Prepared {
        public let model: Model
        /// The grafted head's layer names (empty when the model's own output is kept).
        public let headNames: [String]
        public let train: any ImageSource
        public let validation: (any ImageSource)?
        public let test: (any ImageSource)?
        public let preprocessor: Preprocessor
        public let task: ModelTask
        let augmenter: Augmenter?
        let resumePoint: (path: String, state: ResumeState)?
        /// The output folder holds a run that this one replaces (`overwrite`): its files go when the run starts.
        public var replacesRun: Bool
    }

    /// Every check that can be made without training, in the order a run needs them: settings, the checkpoint to
    /// resume, the data (folders, files, classes), the model, its cut and head, every layer name a stage or
    /// `layers` (keys and names, as `outputs.features[0].layer`) refers to, the head's class count against the
    /// data, the input size against a model with a fixed input. Loads the data's labels and the model, trains
    /// nothing and writes nothing (the run folder is not created). Errors name the recipe key.
    public func prepare(layers: [(key: String, name: String)] = []) throws -> Prepared {
        heldLines = []
        let prepared: Prepared
        do {
            prepared = try checkEverything(layers: layers)
        } catch {
            heldLines = nil
            throw error
        }
        let lines = heldLines ?? []
        heldLines = nil
        lines.forEach(show)
        return prepared
    }

    private func checkEverything(layers: [(key: String, name: String)]) throws -> Prepared {
        try config.validate()
        if config.resume && config.overwrite { throw TrainError(file: config.outputDirectory, "resume and overwrite exclude each other: give one") }
        let held = RunDirectory.heldRun(at: config.outputDirectory)
        if !held.isEmpty && !config.resume && !config.overwrite {
            throw TrainError(file: config.outputDirectory, "already holds a run (\(held.prefix(3).joined(separator: ", "))\(held.count > 3 ? ", …" : "")); continue it with --resume or replace it with --overwrite")
        }
        var resumePoint: (path: String, state: ResumeState)?
        if config.resume {
            let candidates = ["interrupted.h5", "last.h5"].map { URL(fileURLWithPath: config.outputDirectory).appendingPathComponent($0).path }
            for path in candidates where FileManager.default.fileExists(atPath: path) {
                guard let state = try TrainingCheckpoint.resumeState(path) else { continue }
                let key = (state.globalEpoch, state.partial?.batches ?? 0)
                if let current = resumePoint, (current.state.globalEpoch, current.state.partial?.batches ?? 0) >= key { continue }
                resumePoint = (path, state)
            }
            guard resumePoint != nil else {
                throw TrainError(file: config.outputDirectory, "nothing to resume: no interrupted.h5 or last.h5 with training state")
            }
        }
        var train = try loadData(config.train, limit: true)
        var validation: (any ImageSource)?
        if let v = config.validation {
            validation = try loadData(v, limit: false)
        } else if let f = config.validationSplit {
            (train, validation) = try train.stratifiedSplit(fraction: f, seed: config.seed)
        }
        var test = try config.test.map { try loadData($0, limit: false) }
        let classes = train.classNames.count
        if let wanted = config.head?.classes, wanted > 0, wanted != classes {
            throw TrainError("model.head.classes", "is \(wanted) but the training data has \(classes) classes (\(train.classNames.prefix(10).joined(separator: ", "))\(classes > 10 ? ", …" : ""))")
        }
        let (model, headNames) = try prepareModel(classes: classes, dataClassNames: train.classNames)
        let newHead = !headNames.isEmpty
        var classNames = train.classNames
        if !newHead, let known = sourceTask?.classNames, known.count == model.outputShapes.first?.last {
            // The model's own head: its classes, by name, in its output order.
            train = try train.matchingClasses(known, model: config.model)
            validation = try validation.map { try $0.matchingClasses(known, model: config.model) }
            test = try test.map { try $0.matchingClasses(known, model: config.model) }
            classNames = known
        }
        for (k, stage) in config.stages.enumerated() {
            for (what, spec) in [("freeze", stage.freeze), ("unfreeze", stage.unfreeze)] {
                guard let spec else { continue }
                do { _ = try model.layers(matching: spec) } catch let e as LayerError {
                    throw TrainError("stages.\(k).\(what)", "\(spec): \(e.message)")
                }
            }
        }
        for (key, name) in layers {
            do { _ = try model.cut(at: name) } catch let e as LayerError { throw TrainError(key, "\(name): \(e.message)") }
        }
        if let size = config.inputSize, let input = model.inputShapes.first, input.count == 3 {
            let hw = model.readsChannelsFirstImages ? Array(input.suffix(2)) : Array(input.prefix(2))
            if hw[0] > 0, hw[1] > 0, size != hw {
                throw TrainError("data.input_size", "is \(size) but \(config.model) takes a fixed \(hw[0])×\(hw[1]) input")
            }
        }
        let preparation = try InputPreparation(model: model, task: sourceTask, preprocess: config.preprocess, fit: config.fit,
                                               inputSize: config.inputSize, data: train.imageShape, source: config.model)
        for line in preparation.overrides { say(line) }
        let augmenting = model.flattenedLayers.filter { ($0 as? InferenceIdentity)?.originalSettings != nil }.map(\.name)
        if !augmenting.isEmpty {
            say("note: \(augmenting.joined(separator: ", ")) augment\(augmenting.count == 1 ? "s" : "") images in Keras while training; Graft passes images through them unchanged (augment with --augment or the recipe's augment key)")
        }
        let pre = preparation.preprocessor
        func survey(_ data: any ImageSource, _ label: String) throws -> any ImageSource {
            let (kept, lines) = try InputPreparation.survey(data, label: label, preprocessor: pre, skipBad: config.skipBad,
                                                            showProgress: config.showProgress)
            lines.forEach(say)
            return kept
        }
        say("model \(model.name): \(grouped(model.parameterCounts.total)) parameters\(newHead ? ", new \(classNames.count)-class head" : ""); input \(Shape.describe([-1] + pre.targetShape)), fit \(pre.fit.rawValue), preprocessing \(pre.mode)")
        train = try survey(train, "training")
        validation = try validation.map { try survey($0, "validation") }
        test = try test.map { try survey($0, "test") }
        say("images per class: " + Self.perClass([("training", train), ("validation", validation), ("test", test)]))
        let task = try ModelTask(classNames: classNames, preprocessor: pre, preprocess: "\(pre.mode)",
                                 source: config.fromScratch || config.model.hasPrefix("zoo:") ? nil : config.model)
        if !config.augment.isEmpty, let input = model.inputShapes.first, input.count != 3 {
            throw TrainError("augment", "augmentation transforms images; \(config.model) reads \(Shape.describe([-1] + input)) sequences")
        }
        let augmenter = config.augment.isEmpty ? nil : Augmenter(ops: config.augment)
        // last.h5 and best.h5 hold the weights and up to two optimizer slots each, final.h5 the weights, and each
        // atomic write needs a second copy while it is written: refuse to start a run the disk cannot finish.
        try RunDirectory.requireFreeSpace(model.parameterCounts.total * 4 * 9 + (4 << 20), at: config.outputDirectory,
                                          for: "its checkpoints (last.h5, best.h5, final.h5)")
        return Prepared(model: model, headNames: headNames, train: train, validation: validation, test: test, preprocessor: pre,
                        task: task, augmenter: augmenter, resumePoint: resumePoint, replacesRun: config.overwrite && !held.isEmpty)
    }

    /// Where a run stands between its stages: the outcome so far, the best-checkpoint keeper (one for the whole
    /// run), the epochs done before the current stage, the last good checkpoint to name if a batch goes bad.
    final class StageProgress {
        var outcome = FitOutcome.completed
        var best: BestCheckpoint?
        var epochOffset = 0
        var lastCheckpointNote: String?
    }

    /// Trains: `prepare` (every check, the data summary; skipped when the caller passes what it returned), then
    /// each stage in turn, then `finish` (the final model, the test figures, plots and summary).
    public func run(_ prepared: Prepared? = nil) throws -> FineTuneReport {
        let prepared = try prepared ?? prepare()
        let run = try RunDirectory(config.outputDirectory, keepRecordsThrough: prepared.resumePoint?.state.globalEpoch,
                                   replacing: prepared.replacesRun)
        if let r = prepared.resumePoint {
            try KerasLoader.loadWeights(from: r.path, into: prepared.model)
            say("resuming from \(r.path): stage \(config.stages[min(r.state.stageIndex, config.stages.count - 1)].name), \(r.state.globalEpoch) epochs done\(r.state.partial.map { " and \($0.batches) batches of the next" } ?? "")")
        }
        let progress = StageProgress()
        let loss = Loss(.categoricalCrossentropy, labelSmoothing: config.labelSmoothing)
        for k in config.stages.indices {
            try setTrainable(forStage: k, prepared)
            if let r = prepared.resumePoint?.state, k < r.stageIndex { continue }   // done before the interruption; its freezing still applies
            try train(stage: k, prepared, run: run, loss: loss, progress: progress)
            if case .interrupted = progress.outcome { break }
        }
        return try finish(prepared, run: run, loss: loss, progress: progress)
    }

    /// Freezes and unfreezes for stage `k`. Freeze specs speak of the base (Keras's `base.trainable = False`): a
    /// grafted head always trains, and with no spec at all the first stage trains the head only.
    func setTrainable(forStage k: Int, _ prepared: Prepared) throws {
        let (model, stage, headNames) = (prepared.model, config.stages[k], prepared.headNames)
        if let f = stage.freeze {
            try model.freeze(f)
            if !headNames.isEmpty { try model.unfreeze(.patterns(headNames)) }
        } else if k == 0 && !headNames.isEmpty && stage.unfreeze == nil {
            try model.freeze(.all)
            try model.unfreeze(.patterns(headNames))
        }
        if let u = stage.unfreeze { try model.unfreeze(u, batchNorm: stage.batchNorm) }
    }

    /// Trains stage `k` (from where an interrupted run stopped, when it stopped in this stage), saving `last.h5`
    /// after every epoch, `best.h5` when the monitored metric improves and `interrupted.h5` on a signal.
    func train(stage k: Int, _ prepared: Prepared, run: RunDirectory, loss: Loss, progress: StageProgress) throws {
        let stage = config.stages[k]
        let (model, train, validation, pre, task) = (prepared.model, prepared.train, prepared.validation, prepared.preprocessor, prepared.task)
        let resumePoint = prepared.resumePoint.flatMap { $0.state.stageIndex == k ? $0 : nil }
        if let r = resumePoint?.state { progress.epochOffset = r.globalEpoch - r.stageEpoch }
        let classes = task.classNames?.count ?? train.classNames.count
        let counts = model.parameterCounts
        say("stage \(stage.name): \(stage.epochs) epoch\(stage.epochs == 1 ? "" : "s"), \(stage.optimizer) lr \(String(format: "%g", Double(stage.learningRate))); trainable params \(grouped(counts.trainable)), non-trainable \(grouped(counts.nonTrainable))")
        let optimizer = stage.optimizer.make(learningRate: stage.learningRate)
        if let r = resumePoint { _ = try TrainingCheckpoint.restore(r.path, into: optimizer) }
        var stageTrain = train, stageValidation = validation
        var trainer = Trainer(model: model, optimizer: optimizer, preprocessor: pre)
        if config.cacheFeatures, prepared.augmenter == nil, let (base, head) = try model.frozenBaseSplit() {
            // Frozen base, no augmentation: its outputs never change, so compute them once.
            let started = Date()
            stageTrain = try cachedFeatures(base, train, pre)
            stageValidation = try validation.map { try cachedFeatures(base, $0, pre) }
            trainer = Trainer(model: head, optimizer: optimizer,
                              preprocessor: Preprocessor(targetShape: stageTrain.imageShape ?? [], fit: .pad, mode: .none))
            say(String(format: "stage %@: the base is frozen and nothing is augmented: training the head on cached features (%d × %d, computed in %.1f s)",
                       stage.name, stageTrain.count, base.outputShapes[0].reduce(1, *), Date().timeIntervalSince(started)))
        }
        trainer.augmenter = prepared.augmenter
        // The schedule starts from the stage's rate: a resumed optimizer holds the rate scheduled at the
        // interruption, which scheduled again would be decayed twice.
        trainer.baseLearningRate = stage.learningRate
        trainer.interruptCheck = interruptCheck
        let offset = progress.epochOffset
        trainer.onEpoch = { [weak self, weak trainer, graftVersion] (r: EpochRecord) in
            let local = r.epoch
            var r = r
            r.epoch += offset
            try run.append(r)
            // The state after every epoch, for --resume.
            try TrainingCheckpoint.save(model, optimizer: optimizer, epoch: r.epoch, stage: stage.name, to: run.path("last.h5"),
                                        graftVersion: graftVersion, task: task,
                                        resume: ResumeState(stageIndex: k, stageEpoch: local, globalEpoch: r.epoch,
                                                            bestValue: progress.best?.best, bestEpoch: progress.best?.bestEpoch))
            trainer?.lastGoodCheckpoint = "\(run.path("last.h5")) (epoch \(r.epoch))"
            self?.say(String(format: "%@ epoch %d: loss %.4f acc %.4f%@ (%.1f s, %.0f img/s)", r.stage, r.epoch, r.loss, r.accuracy,
                             r.valAccuracy.map { String(format: " val_loss %.4f val_acc %.4f", r.valLoss ?? 0, $0) } ?? "", r.seconds, r.imagesPerSecond))
            if let warning = self?.stalledLossWarning(r.loss, classes: classes) { self?.say(warning) }
        }
        trainer.onInterrupt = { [graftVersion] partial in
            try TrainingCheckpoint.save(model, optimizer: optimizer, epoch: offset + partial.epoch - 1, stage: stage.name,
                                        to: run.path("interrupted.h5"), graftVersion: graftVersion, task: task,
                                        resume: ResumeState(stageIndex: k, stageEpoch: partial.epoch - 1, globalEpoch: offset + partial.epoch - 1,
                                                            partial: partial, bestValue: progress.best?.best, bestEpoch: progress.best?.bestEpoch))
        }
        var callbacks: [any TrainingCallback] = []
        if progress.best == nil {
            let state = prepared.resumePoint?.state
            progress.best = BestCheckpoint(monitor: validation == nil ? "accuracy" : config.monitor,
                                           best: state?.bestValue, bestEpoch: state?.bestEpoch) { [graftVersion] t, r in
                try TrainingCheckpoint.save(model, optimizer: t.optimizer, epoch: r.epoch + offset, stage: stage.name,
                                            to: run.path("best.h5"), graftVersion: graftVersion, task: task)
            }
        }
        if let best = progress.best { callbacks.append(best) }
        if let p = stage.earlyStoppingPatience { callbacks.append(EarlyStopping(monitor: validation == nil ? "loss" : "val_loss", patience: p)) }
        if let p = stage.reduceOnPlateauPatience {
            callbacks.append(ReduceLROnPlateau(monitor: validation == nil ? "loss" : "val_loss", factor: 0.1, patience: p))
        }
        var options = FitOptions(epochs: stage.epochs, batchSize: config.batchSize, loss: loss)
        let steps = (train.count + config.batchSize - 1) / config.batchSize
        options.schedule = try stage.schedule.schedule(epochs: stage.epochs, stepsPerEpoch: steps)
        options.clipNorm = stage.clipNorm
        options.nanPolicy = stage.nanPolicy
        options.updateFrozenBatchNormStatistics = stage.updateFrozenBatchNormStatistics
        options.seed = config.seed &+ UInt64(k) &* 1_000_003
        options.stage = stage.name
        options.showProgress = config.showProgress
        if let r = resumePoint?.state {
            options.initialEpoch = r.stageEpoch
            options.partial = r.partial
        }
        if let previous = progress.lastCheckpointNote { trainer.lastGoodCheckpoint = previous }
        progress.outcome = try trainer.fit(train: stageTrain, validation: stageValidation, options: options, callbacks: callbacks)
        progress.lastCheckpointNote = trainer.lastGoodCheckpoint
        if trainer.skippedBatches > 0 {
            say("stage \(stage.name): skipped \(trainer.skippedBatches) batches whose loss or gradients were not finite (--nan skip)")
        }
        progress.epochOffset = offset + (trainer.history.last?.epoch ?? options.initialEpoch)
    }

    /// After the last stage: `final.h5`, the test set's figures and `confusion.csv`, the plots and `summary.txt`. An
    /// interrupted run gets no final model or test figures: `interrupted.h5` holds where it stopped.
    func finish(_ prepared: Prepared, run: RunDirectory, loss: Loss, progress: StageProgress) throws -> FineTuneReport {
        let (model, test, pre, task) = (prepared.model, prepared.test, prepared.preprocessor, prepared.task)
        if case .interrupted = progress.outcome {
            let plots = try writePlots(run, test: nil)
            try run.write(model.summary() + "\n\n" + log.joined(separator: "\n") + "\ninterrupted; continue with --resume\n", to: "summary.txt")
            return FineTuneReport(model: model, history: run.records, testAccuracy: nil, testLoss: nil, finalCheckpoint: run.path("interrupted.h5"),
                                  bestCheckpoint: nil, outcome: progress.outcome, runDirectory: run.url.path, preprocessor: pre, task: task, plots: plots)
        }
        let finalPath = run.path("final.h5")
        try TrainingCheckpoint.save(model, optimizer: nil, epoch: progress.epochOffset, stage: config.stages.last?.name ?? "train",
                                    to: finalPath, graftVersion: graftVersion, task: task)
        var report = FineTuneReport(model: model, history: run.records, testAccuracy: nil, testLoss: nil, finalCheckpoint: finalPath,
                                    bestCheckpoint: progress.best?.bestEpoch != nil ? run.path("best.h5") : nil, outcome: progress.outcome,
                                    runDirectory: run.url.path, preprocessor: pre, task: task)
        if let test {
            let evaluator = Trainer(model: model, optimizer: SGD(), preprocessor: pre)
            let ev = try evaluator.evaluate(test, batchSize: config.batchSize, loss: loss)
            report.testAccuracy = ev.accuracy
            report.testLoss = ev.loss
            report.testMetrics = ev.metrics
            report.testClassNames = test.classNames
            try run.write(confusionCSV(ev.metrics, names: test.classNames), to: "confusion.csv")
            say(String(format: "test: loss %.4f accuracy %.4f on %d images", ev.loss, ev.accuracy, test.count))
        }
        report.plots = try writePlots(run, test: report.testMetrics.map { ($0, test?.classNames ?? []) })
        try run.write(model.summary() + "\n\n" + log.joined(separator: "\n") + "\n", to: "summary.txt")
        return report
    }

    /// Loss and accuracy over the run's epochs (a marker where each stage starts) and the test confusion matrix.
    func writePlots(_ run: RunDirectory, test: (ClassificationMetrics, [String])?) throws -> [String] {
        let records = run.records, stages = Plots.stageStarts(records)
        var files = try run.writePlot(Plots.lines(title: "Loss", yLabel: "loss",
                                                  series: [("train", records.map { $0.loss }), ("validation", records.map { $0.valLoss })],
                                                  stages: stages), named: "loss", note: say)
        files += try run.writePlot(Plots.lines(title: "Accuracy", yLabel: "accuracy",
                                               series: [("train", records.map { $0.accuracy }), ("validation", records.map { $0.valAccuracy })],
                                               stages: stages), named: "accuracy", note: say)
        if let (m, names) = test {
            files += try run.writePlot(Plots.confusion(m.confusion, names: names, title: "Confusion matrix (test)"), named: "confusion", note: say)
        }
        return files
    }

    /// A warning when an epoch's training loss is where it was an epoch before (to 1e-4 of it), or still chance's
    /// ln(classes): a model that learns nothing (random frozen weights, a rate of zero, wrong preprocessing).
    func stalledLossWarning(_ loss: Double, classes: Int) -> String? {
        defer { lastEpochLoss = loss }
        let chance = Foundation.log(Double(max(classes, 2)))
        if let previous = lastEpochLoss, abs(loss - previous) <= 1e-4 * max(1, abs(previous)) {
            return String(format: "warning: the loss has not moved since the last epoch (%.4f%@): check the learning rate, the preprocessing and which layers train",
                          loss, abs(loss - chance) <= 1e-3 * chance ? String(format: ", chance for %d classes is %.4f", classes, chance) : "")
        }
        return nil
    }

    /// `Sandal 80/20/1000, Shirt 80/20/1000 (training/validation/test)`: each class's images in each split given.
    static func perClass(_ splits: [(String, (any ImageSource)?)]) -> String {
        let present = splits.compactMap { name, source in source.map { (name, $0) } }
        guard let names = present.first?.1.classNames else { return "" }
        let counts = present.map { $0.1.classCounts }
        let shown = names.prefix(20).enumerated().map { i, name in
            name + " " + counts.map { i < $0.count ? String($0[i]) : "0" }.joined(separator: "/")
        }
        return shown.joined(separator: ", ") + (names.count > 20 ? ", … (\(names.count) classes)" : "")
            + " (" + present.map(\.0).joined(separator: "/") + ")"
    }

    func unused(_ model: Model) -> [String] {
        model.flattenedLayers.map(\.name).filter { $0.hasPrefix("head_") || $0.hasPrefix("predictions") }
    }
}

extension FineTuneJob {
    /// The base's outputs for every sample, in order, as an in-memory dataset (`[H, W, C]` or `[1, 1, F]` rows).
    func cachedFeatures(_ base: Model, _ data: any ImageSource, _ pre: Preprocessor) throws -> ImageDataset {
        let shape = base.outputShapes[0]
        let size = shape.reduce(1, *)
        var pixels = [Float]()
        pixels.reserveCapacity(data.count * size)
        let loader = BatchLoader(source: data, batches: epochBatches(count: data.count, batchSize: config.batchSize, shuffle: false, seed: 0),
                                 preprocessor: pre, augmenter: nil, seed: 0)
        while let batch = try loader.next() { pixels += try base.predict([base.fittingInput(batch.x)])[0].scalars }
        let imageShape = shape.count == 3 ? shape : [1, 1, size]
        return ImageDataset(imageShape: imageShape, pixels: pixels, labels: data.labels, ids: data.ids, classNames: data.classNames)
    }
}

/// `true\predicted` table with class names, as written to `confusion.csv`.
public func confusionCSV(_ m: ClassificationMetrics, names: [String]) -> String {
    func q(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"\(s.replacingOccurrences(of: "\"", with: "\"\""))\"" : s }
    var out = "true\\predicted," + names.map(q).joined(separator: ",") + "\n"
    for (i, row) in m.confusion.enumerated() {
        out += q(i < names.count ? names[i] : "\(i)") + "," + row.map(String.init).joined(separator: ",") + "\n"
    }
    return out
}
