import ArgumentParser
import Foundation
import GraftData
import GraftKeras
import GraftNN
import GraftTensor
import GraftTrain

/// `graft fine-tune MODEL --data TRAIN --out RUN_DIR …`: graft a head, train it, optionally unfreeze and fine-tune.
struct FineTune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fine-tune",
        abstract: "Fine-tune a Keras checkpoint on new data: new head, frozen base, then optional unfreezing.",
        discussion: """
        Examples:
          graft fine-tune pretrained/lenet5-fashion-0to4.h5 --data fashion-mnist:train --class-subset 5,6,7,8,9 \\
              --limit-per-class 100 --val-split 0.2 --test fashion-mnist:test --epochs 10 --unfreeze all --out runs/lenet
          graft fine-tune resnet50.h5 --data photos/ --fit crop --augment flip:h,rotate:15 --cut conv5_block3_out \\
              --head-hidden 256 --head-dropout 0.3 --unfreeze from:conv5_block1_1_conv --out runs/photos
          graft fine-tune model.h5 --data photos/ --out runs/photos --resume      # after Ctrl-C
        """)

    @OptionGroup var options: ModelOptions

    @Option(help: "Training data: a class folder, a .csv of path,label, an .npz (x, y), X.npy,Y.npy, idx:IMAGES,LABELS, fashion-mnist:train.")
    var data: String

    @Option(help: "Validation data (same syntax as --data).")
    var val: String?

    @Option(name: .customLong("val-split"), help: "Hold out this stratified fraction of the training data for validation.")
    var valSplit: Double?

    @Option(help: "Test data, evaluated once at the end (confusion.csv).")
    var test: String?

    @Option(help: "Classes of the new head: a number, or auto (the data's class count).")
    var classes = "auto"

    @Option(name: .customLong("class-subset"), help: "Keep only these classes, renumbered 0…k−1 (e.g. 5,6,7,8,9).")
    var classSubset: String?

    @Option(name: .customLong("limit-per-class"), help: "At most this many training images per class (seeded choice).")
    var limitPerClass: Int?

    @Option(help: "Cut the model at this layer before grafting the head.")
    var cut: String?

    @Option(name: .customLong("head-pooling"), help: "avg, max, flatten or none.")
    var headPooling = "avg"

    @Option(name: .customLong("head-recurrent"), help: "A recurrent layer first in the head, for a base that ends in a sequence: lstm:UNITS, gru:UNITS or simple_rnn:UNITS.")
    var headRecurrent: String?

    @Option(help: "Run the (cut) model on each of this many frames of a clip (TimeDistributed) before the head; data are N×T×H×W×C arrays.")
    var frames: Int?

    @Option(name: .customLong("head-hidden"), help: "Hidden Dense sizes of the head, e.g. 256,128.")
    var headHidden: String?

    @Option(name: .customLong("head-dropout"), help: "Dropout rate in the head.")
    var headDropout: Float = 0

    @Option(help: "Freeze spec for the first stage: all, none, until:LAYER, from:LAYER or name patterns (default: all but the new head).",
            transform: FreezeSpec.init(parsing:))
    var freeze: FreezeSpec?

    @Option(help: "Epochs of the first stage.")
    var epochs = 5

    @Option(help: "Batch size.")
    var batch = 32

    @Option(help: "sgd, momentum, nesterov, adam, adamw or rmsprop (default: adam).", transform: OptionChecks.typed(OptimizerKind.init(parsing:)))
    var optimizer = OptimizerKind.adam

    @Option(help: "Learning rate of the first stage.")
    var lr: Float = 1e-3

    @Option(help: "Schedule: constant, step:EVERY:FACTOR, exponential:STEPS:RATE, cosine[:WARMUP_EPOCHS[:ALPHA]], onecycle[:PCT] (default: constant).",
            transform: OptionChecks.typed(ScheduleSpec.init(parsing:)))
    var schedule = ScheduleSpec.constant

    @Option(help: "Second stage: unfreeze these layers (spec as --freeze) and train again.", transform: FreezeSpec.init(parsing:))
    var unfreeze: FreezeSpec?

    @Option(name: .customLong("fine-tune-epochs"), help: "Epochs of the second stage.")
    var fineTuneEpochs = 3

    @Option(name: .customLong("fine-tune-lr"), help: "Learning rate of the second stage (default: first / 10).")
    var fineTuneLR: Float?

    @Option(name: .customLong("batch-norm"), help: "Unfrozen BatchNormalization: inference (moving statistics, the default) or train.",
            transform: OptionChecks.choice(BatchNormMode.self))
    var batchNorm = BatchNormMode.inference

    @Option(help: "Input preprocessing: 1/255, tf, caffe, torch, scale:S or none (default: the keras.applications mode of a known architecture, else 1/255).")
    var preprocess: String?

    @Option(help: "Fit images to the model input: resize, pad, nearest, crop (to aspect, then resize) or pad-aspect (default: the checkpoint's, else resize).",
            transform: OptionChecks.choice(ImageFit.self))
    var fit: ImageFit?

    @Option(help: "Training augmentation, e.g. flip:h,rotate:15,zoom:0.1,translate:0.1,crop:4,brightness:0.2,contrast:0.2,noise:0.05,cutout:0.25,mixup:0.2,cutmix:1.")
    var augment: String?

    @Option(name: .customLong("input-size"), help: "H,W for models that accept any size when the images differ in size.")
    var inputSize: String?

    @Flag(name: .customLong("skip-bad"), help: "Leave out unreadable image files (the count is reported) instead of failing.")
    var skipBad = false

    @Option(name: .customLong("label-smoothing"), help: "Label smoothing for the cross-entropy.")
    var labelSmoothing: Float = 0

    @Option(name: .customLong("early-stopping"), help: "Stop a stage after this many epochs without improvement.")
    var earlyStopping: Int?

    @Option(name: .customLong("clip-norm"), help: "Clip gradients to this global norm.")
    var clipNorm: Float?

    @Option(help: "A batch whose loss or gradients are NaN or infinite: stop (default; names the last good checkpoint) or skip it.",
            transform: OptionChecks.choice(NaNPolicy.self))
    var nan = NaNPolicy.stop

    @Option(name: .customLong("reduce-lr-patience"), help: "Divide the learning rate by 10 after this many epochs without improvement.")
    var reduceLRPatience: Int?

    @Flag(name: .customLong("update-frozen-bn-statistics"), help: "Frozen BatchNormalization layers keep updating their moving statistics.")
    var updateFrozenBNStatistics = false

    @Option(help: "Seed for initialisation, shuffling, splits and dropout.")
    var seed: UInt64 = 0

    @Option(help: "Run directory (metrics, checkpoints, reports).")
    var out: String

    @Flag(help: "Continue the run in --out from its newest checkpoint (interrupted.h5 or last.h5).")
    var resume = false

    @Flag(help: "Replace the run --out holds (its checkpoints, metrics, plots and reports; other files stay).")
    var overwrite = false

    @Flag(help: "No progress bar or log lines on stderr.")
    var quiet = false

    func validate() throws {
        guard FineTuneLimits.batchSize.contains(batch) else { throw ValidationError("--batch must be a whole number from 1 to \(FineTuneLimits.batchSize.upperBound), got \(batch)") }
        guard FineTuneLimits.epochs.contains(epochs) else { throw ValidationError("--epochs must be a whole number from 1 to \(FineTuneLimits.epochs.upperBound), got \(epochs)") }
        guard FineTuneLimits.epochs.contains(fineTuneEpochs) else { throw ValidationError("--fine-tune-epochs must be a whole number from 1 to \(FineTuneLimits.epochs.upperBound), got \(fineTuneEpochs)") }
        guard lr.isFinite, lr > 0, Double(lr) <= FineTuneLimits.learningRate.upperBound else { throw ValidationError("--lr must be a number above 0 and at most 10, got \(lr)") }
        guard headDropout.isFinite, headDropout >= 0, headDropout < 1 else { throw ValidationError("--head-dropout must be a number from 0 and below 1, got \(headDropout)") }
        if val != nil && valSplit != nil { throw ValidationError("give --val or --val-split, not both") }
        guard HeadConfig.Pooling(rawValue: headPooling) != nil else { throw ValidationError("--head-pooling must be avg, max, flatten or none") }
    }

    /// The option that sets a run setting (`FineTuneConfig.validate` names settings by their recipe keys).
    static func flag(forSetting key: String) -> String {
        let parts = key.split(separator: ".").map(String.init)
        if parts.count == 3, parts[0] == "stages" {
            let second = parts[1] == "1"
            switch parts[2] {
            case "epochs": return second ? "--fine-tune-epochs" : "--epochs"
            case "learning_rate": return second ? "--fine-tune-lr" : "--lr"
            default: return "--" + parts[2].replacingOccurrences(of: "_", with: "-")
            }
        }
        let flags = ["data.batch_size": "--batch", "data.validation_split": "--val-split", "data.limit_per_class": "--limit-per-class",
                     "label_smoothing": "--label-smoothing", "data.classes": "--class-subset", "data.input_size": "--input-size",
                     "model.head.classes": "--classes", "model.head.hidden": "--head-hidden", "model.head.dropout": "--head-dropout"]
        return flags[key] ?? key
    }

    func config() throws -> FineTuneConfig {
        var stages = [StageConfig(name: "warmup", freeze: freeze, epochs: epochs, optimizer: optimizer, learningRate: lr, schedule: schedule)]
        stages[0].earlyStoppingPatience = earlyStopping
        stages[0].clipNorm = clipNorm
        stages[0].nanPolicy = nan
        stages[0].reduceOnPlateauPatience = reduceLRPatience
        stages[0].updateFrozenBatchNormStatistics = updateFrozenBNStatistics
        if let unfreeze {
            var s = StageConfig(name: "finetune", unfreeze: unfreeze, epochs: fineTuneEpochs, optimizer: optimizer,
                                learningRate: fineTuneLR ?? lr / 10, schedule: schedule)
            s.batchNorm = batchNorm
            s.earlyStoppingPatience = earlyStopping
            s.clipNorm = clipNorm
            s.nanPolicy = nan
            s.reduceOnPlateauPatience = reduceLRPatience
            s.updateFrozenBatchNormStatistics = updateFrozenBNStatistics
            stages.append(s)
        }
        var c = FineTuneConfig(model: options.model, train: data, stages: stages, outputDirectory: out)
        c.architecture = options.architecture
        c.validation = val
        c.validationSplit = valSplit
        c.test = test
        c.cut = cut
        c.limitPerClass = limitPerClass
        if let classSubset {
            c.classSubset = try OptionChecks.classList(classSubset)
        }
        let hidden = try (headHidden ?? "").split(separator: ",").map { s -> Int in
            guard let v = Int(s), v > 0 else { throw ValidationError("--head-hidden must be positive integers, got \(headHidden ?? "")") }
            return v
        }
        var headClasses = 0
        if classes != "auto" {
            guard let n = Int(classes), n > 0 else { throw ValidationError("--classes must be a positive number or auto, got \(classes)") }
            headClasses = n
        }
        var recurrent: RecurrentHead?
        if let headRecurrent {
            do { recurrent = try RecurrentHead(parsing: headRecurrent) } catch let e as LayerError { throw ValidationError("--head-recurrent: \(e.message)") }
        }
        if let frames { guard frames >= 1 && frames <= 65_536 else { throw ValidationError("--frames must be from 1 to 65536, got \(frames)") } }
        c.frames = frames
        if cut != nil || headClasses > 0 || !hidden.isEmpty || headDropout > 0 || headPooling != "avg" || recurrent != nil || frames != nil {
            c.head = HeadConfig(classes: headClasses, pooling: HeadConfig.Pooling(rawValue: headPooling) ?? .avg,
                                hidden: hidden, dropout: headDropout)
            c.head?.recurrent = recurrent
        }
        c.preprocess = preprocess
        c.fit = fit
        if let augment {
            do { c.augment = try Augmenter(spec: augment).ops } catch let e as DataError { throw ValidationError("--augment: \(e.message)") }
        }
        if let inputSize {
            let dims = inputSize.split(separator: ",").compactMap { Int($0) }
            guard dims.count == 2, dims.allSatisfy({ $0 > 0 }) else { throw ValidationError("--input-size must be H,W, got \(inputSize)") }
            c.inputSize = dims
        }
        c.skipBad = skipBad
        c.resume = resume
        c.overwrite = overwrite
        c.batchSize = batch
        c.seed = seed
        c.labelSmoothing = labelSmoothing
        c.showProgress = !quiet
        return c
    }

    func run() throws {
        let c = try config()
        let job = FineTuneJob(c, graftVersion: graftVersion)
        let prepared: FineTuneJob.Prepared
        do {
            prepared = try job.prepare()   // validates the settings, then every check before training; errors name the flag
        } catch let e as TrainError where ["stages.", "data.", "model.", "label_smoothing"].contains(where: e.subject.hasPrefix) {
            throw ValidationError("\(Self.flag(forSetting: e.subject)): \(e.message)")
        }
        Interrupt.install()
        let report = try job.run(prepared)
        print("run directory: \(report.runDirectory)")
        if let last = report.history.last {
            print(String(format: "last epoch: loss %.4f accuracy %.4f", last.loss, last.accuracy)
                  + (last.valAccuracy.map { String(format: " val_accuracy %.4f", $0) } ?? ""))
        }
        if let acc = report.testAccuracy { print(String(format: "test accuracy: %.4f", acc)) }
        if case .interrupted(let sig, let epoch) = report.outcome {
            FileHandle.standardError.write(Data("interrupted during epoch \(epoch); resumable checkpoint: \(report.runDirectory)/interrupted.h5\n\(ResumeHint.line())\n".utf8))
            throw ExitCode(128 + sig)
        }
        print("final model: \(report.finalCheckpoint)")
        try ResumeHint.exitIfInterruptedAfterFinishing()
    }
}

/// `graft evaluate MODEL --data DATA [--json]`: loss, accuracy, top-5, per-class precision and recall.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model on labelled data.",
        discussion: """
        Examples:
          graft evaluate runs/lenet/final.h5 --data fashion-mnist:test --class-subset 5,6,7,8,9
          graft evaluate model.keras --data photos_test/ --fit crop --json
        """)

    @OptionGroup var options: ModelOptions

    @Option(help: "Data to evaluate on (same syntax as fine-tune --data).")
    var data: String

    @Flag(name: .customLong("skip-bad"), help: "Leave out unreadable image files instead of failing.")
    var skipBad = false

    @Option(name: .customLong("class-subset"), help: "Keep only these classes, renumbered 0…k−1.")
    var classSubset: String?

    @Option(help: "Batch size.")
    var batch = 64

    @Option(help: "Input preprocessing: 1/255, tf, caffe, torch, scale:S or none (default: by architecture).")
    var preprocess: String?

    @Option(help: "Fit images to the model input: resize, pad, nearest, crop or pad-aspect (default: the checkpoint's, else resize).",
            transform: OptionChecks.choice(ImageFit.self))
    var fit: ImageFit?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        try OptionChecks.batch(batch)
        let subset = try classSubset.map { try OptionChecks.classList($0) }
        let loadedModel = try options.load()
        let model = loadedModel.model
        let (loaded, skipped) = try DataSource.load(data, skipBad: skipBad)
        if skipped > 0 { FileHandle.standardError.write(Data("\(data): skipped \(skipped) unreadable files\n".utf8)) }
        var d = loaded
        if let subset { d = try d.selectingClasses(subset) }
        // A model that knows its classes is scored by class name: a test set may hold any of them.
        if let names = loadedModel.task?.classNames { d = try d.matchingClasses(names, model: options.model) }
        let preparation = try InputPreparation(model: model, task: loadedModel.task, preprocess: preprocess, fit: fit, inputSize: nil,
                                               data: d.imageShape, source: options.model)
        for line in preparation.overrides { FileHandle.standardError.write(Data("note: \(line)\n".utf8)) }
        let pre = preparation.preprocessor
        let (surveyed, lines) = try InputPreparation.survey(d, label: data, preprocessor: pre, skipBad: skipBad, showProgress: true)
        for line in lines { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        d = surveyed
        let ev = try Trainer(model: model, optimizer: SGD(), preprocessor: pre).evaluate(d, batchSize: batch)
        let counts = d.classCounts
        let topK = ev.metrics.classes > 5
        func shown(_ v: Double) -> Any { v.isNaN ? NSNull() as Any : v as Any }
        if json {
            var obj: [String: Any] = ["preprocessing": pre.mode.description, "fit": pre.fit.rawValue, "loss": ev.loss, "accuracy": ev.accuracy,
                                      "count": d.count, "classes": d.classNames, "images_per_class": counts,
                                      "precision": ev.metrics.precision.map(shown), "recall": ev.metrics.recall.map(shown),
                                      "confusion": ev.metrics.confusion]
            if topK { obj["top5_accuracy"] = ev.metrics.topKAccuracy }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "%d images: loss %.4f, accuracy %.4f", d.count, ev.loss, ev.accuracy)
                  + (topK ? String(format: ", top-5 accuracy %.4f", ev.metrics.topKAccuracy) : ""))
            func f(_ v: Double) -> String { v.isNaN ? "  n/a" : String(format: "%.3f", v) }
            for (i, name) in d.classNames.enumerated() where i < ev.metrics.classes {
                let line = "  \(name.padding(toLength: max(14, name.count), withPad: " ", startingAt: 0)) precision \(f(ev.metrics.precision[i])) recall \(f(ev.metrics.recall[i]))"
                print(line + (i < counts.count && counts[i] == 0 ? "  (no images of this class)" : ""))
            }
        }
    }
}

/// `graft extract MODEL --layer NAME --data DATA --output FILE`: features for another model.
struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model up to a layer over a dataset and write one feature row per image (.npy, .npz, .h5 or .csv).",
        discussion: """
        Examples:
          graft extract model.h5 --layer fc1 --data fashion-mnist:test --output features.npz
          graft extract resnet50.h5 --layer avg_pool --data photos/ --output features.csv --batch 16
        """)

    @OptionGroup var options: ModelOptions

    @Option(help: "Layer whose output is the feature (default: the model's output).")
    var layer: String?

    @Option(help: "Data (same syntax as fine-tune --data); rows keep its order and ids.")
    var data: String

    @Option(help: "Output: .npy (+ labels.npy, ids.txt beside it), .npz, .h5 or .csv.")
    var output: String

    @Option(help: "Pool spatial features: avg, max or none (flatten).")
    var pooling = "avg"

    @Option(help: "Images per batch.")
    var batch = 32

    @Option(help: "Input preprocessing (default: the checkpoint's, else by architecture).")
    var preprocess: String?

    @Option(help: "Fit images to the model input: resize, pad, nearest, crop or pad-aspect (default: the checkpoint's, else resize).",
            transform: OptionChecks.choice(ImageFit.self))
    var fit: ImageFit?

    @Option(name: .customLong("input-size"), help: "H,W for models that accept any size when the images differ in size.")
    var inputSize: String?

    @Flag(name: .customLong("skip-bad"), help: "Leave out unreadable image files instead of failing.")
    var skipBad = false

    @Flag(help: "No progress bar.")
    var quiet = false

    func run() throws {
        try OptionChecks.batch(batch)
        let sizes = try inputSize.map { try OptionChecks.size($0, "--input-size") }
        guard let pool = FeatureExtractor.Pooling(rawValue: pooling) else { throw ValidationError("--pooling must be avg, max or none") }
        _ = try FeatureFormat(path: output)
        let loaded = try options.load()
        var model = loaded.model
        if let layer { model = try model.cut(at: layer) }
        let (found, skipped) = try DataSource.load(data, skipBad: skipBad)
        if skipped > 0 { FileHandle.standardError.write(Data("\(data): skipped \(skipped) unreadable files\n".utf8)) }
        let preparation = try InputPreparation(model: model, task: loaded.task, preprocess: preprocess, fit: fit, inputSize: sizes,
                                               data: found.imageShape, source: options.model)
        for line in preparation.overrides { FileHandle.standardError.write(Data("note: \(line)\n".utf8)) }
        let (source, lines) = try InputPreparation.survey(found, label: data, preprocessor: preparation.preprocessor, skipBad: skipBad,
                                                          showProgress: !quiet)
        if !quiet { for line in lines { FileHandle.standardError.write(Data((line + "\n").utf8)) } }
        let mode = preparation.preprocessor.mode
        var extractor = FeatureExtractor(model: model, preprocessor: preparation.preprocessor)
        extractor.pooling = pool
        extractor.batchSize = batch
        extractor.showProgress = !quiet
        let (rows, width) = try extractor.extract(source, to: output)
        print("\(output): \(rows) rows × \(width) features (layer \(layer ?? "output"), pooling \(pooling), preprocessing \(mode))")
    }
}
