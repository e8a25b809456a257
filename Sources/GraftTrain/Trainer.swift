import Foundation
import GraftData
import GraftNN
import GraftTensor

/// One epoch's numbers, as written to `metrics.csv` and `metrics.jsonl`.
public struct EpochRecord: Sendable, Codable, Equatable {
    public var stage: String
    public var epoch: Int
    public var loss: Double
    public var accuracy: Double
    public var valLoss: Double?
    public var valAccuracy: Double?
    public var learningRate: Double
    public var seconds: Double
    public var imagesPerSecond: Double

    /// The monitored value by Keras name (`val_loss`, `val_accuracy`, `loss`, `accuracy`).
    public func value(_ monitor: String) -> Double? {
        switch monitor {
        case "val_loss": return valLoss
        case "val_accuracy": return valAccuracy
        case "loss": return loss
        case "accuracy": return accuracy
        default: return nil
        }
    }
}

/// Options of one `fit`.
public struct FitOptions: Sendable {
    public var epochs: Int
    public var batchSize: Int
    public var loss: Loss
    public var schedule: LearningRateSchedule = .constant
    /// Clip gradients to this global norm.
    public var clipNorm: Float?
    public var seed: UInt64 = 0
    public var shuffle = true
    public var showProgress = true
    public var updateFrozenBatchNormStatistics = false
    /// Label written into the records (`warmup`, `finetune`).
    public var stage = "train"
    /// What a batch whose loss or gradients are NaN or infinite does: stop the run (default) or be skipped.
    public var nanPolicy: NaNPolicy = .stop
    /// Epochs already done (resuming): training starts at `initialEpoch + 1`.
    public var initialEpoch = 0
    /// Resuming inside an epoch: its first batches are skipped and its running totals restored.
    public var partial: PartialEpoch?

    public init(epochs: Int, batchSize: Int, loss: Loss = Loss()) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.loss = loss
    }
}

/// What training does with a batch whose loss or gradients are not finite. Either way the optimizer step of that
/// batch is never applied, so the weights stay as they were after the last good batch.
public enum NaNPolicy: String, Sendable, Codable, CaseIterable {
    case stop, skip
}

/// Where an interrupted epoch stopped: enough to finish it exactly as if nothing had happened.
public struct PartialEpoch: Codable, Sendable, Equatable {
    public var epoch: Int
    /// Batches of `epoch` already done.
    public var batches: Int
    public var lossSum: Double
    public var seen: Int
    public var metrics: ClassificationMetrics
}

/// Why `fit` returned.
public enum FitOutcome: Equatable, Sendable {
    case completed
    case stoppedEarly(epoch: Int)
    case interrupted(signal: Int32, epoch: Int)
}

/// A callback's answer after an epoch.
public enum CallbackDecision { case proceed, stop }

/// Hooks run after every epoch (early stopping, best checkpoint, reduce-on-plateau).
public protocol TrainingCallback: AnyObject {
    func epochEnded(_ record: EpochRecord, trainer: Trainer) throws -> CallbackDecision
}

/// Result of `evaluate`.
public struct Evaluation: Sendable {
    public let loss: Double
    public let metrics: ClassificationMetrics
    public var accuracy: Double { metrics.accuracy }
}

/// The training loop: a short visible `for` over epochs and batches, with events for callbacks.
public final class Trainer {
    public let model: Model
    public var optimizer: any Optimizer
    public var preprocessor: Preprocessor
    /// Training-time augmentation (never used by `evaluate`).
    public var augmenter: Augmenter?
    /// Multiplies the scheduled rate (ReduceLROnPlateau lowers it).
    public var learningRateScale: Float = 1
    /// The base learning rate the schedule starts from.
    public var baseLearningRate: Float
    /// Called after every epoch with the record (the run directory writes it out).
    public var onEpoch: ((EpochRecord) throws -> Void)?
    /// Asked after every batch whether a signal asks training to stop (tests give their own).
    public var interruptCheck: () -> Int32? = { Interrupt.pending }
    /// Called when an interrupt stops training, with where the epoch stopped, to save a resumable checkpoint.
    public var onInterrupt: ((PartialEpoch) throws -> Void)?
    public private(set) var history: [EpochRecord] = []
    /// Backward statistics of the last step (tests count skipped nodes with it).
    public let lastBackward = BackwardStats()
    /// The last `trainStep` found a non-finite loss or gradient and left the weights unchanged.
    public private(set) var lastStepSkipped = false
    /// Batches skipped under `NaNPolicy.skip` over the trainer's life.
    public private(set) var skippedBatches = 0
    /// Where the last good state was saved (`run/last.h5, epoch 3`), for the message when a loss becomes NaN.
    public var lastGoodCheckpoint: String?
    var globalStep = 0

    public init(model: Model, optimizer: any Optimizer, preprocessor: Preprocessor) {
        self.model = model
        self.optimizer = optimizer
        self.preprocessor = preprocessor
        baseLearningRate = optimizer.learningRate
    }

    public var classes: Int { model.outputShapes.first?.last ?? 1 }

    /// Batches of cached `[n, 1, 1, F]` features feed a model whose input is `[F]`: same values, the model's shape.
    func fitToInput(_ x: Tensor) -> Tensor {
        guard let want = model.inputShapes.first, Array(x.shape.dropFirst()) != want,
              want.allSatisfy({ $0 > 0 }), want.reduce(1, *) * x.shape[0] == x.count else { return x }
        return x.reshaped([x.shape[0]] + want)
    }

    /// One optimisation step on a prepared batch; returns the loss and the output scores.
    /// `softTargets` replaces the one-hot targets (mixup, cutmix).
    /// Holds the model's `access` exclusively: no prediction or other step on these weights runs meanwhile.
    public func trainStep(_ x: Tensor, labels: [Int], softTargets: Tensor? = nil, loss: Loss, clipNorm: Float?,
                          context: inout TrainingContext) throws -> (Double, Tensor) {
        try model.access.exclusive { try unguardedTrainStep(x, labels: labels, softTargets: softTargets, loss: loss,
                                                            clipNorm: clipNorm, context: &context) }
    }

    func unguardedTrainStep(_ x: Tensor, labels: [Int], softTargets: Tensor?, loss: Loss, clipNorm: Float?,
                            context: inout TrainingContext) throws -> (Double, Tensor) {
        model.zeroGradients()
        let (outs, tape) = try model.forwardTraining([model.fittingInput(x)], context: &context)
        let y = outs[0]
        let targets = softTargets ?? loss.targets(labels, classes: y.shape.last ?? 1)
        let result = loss.compute(output: y, logits: model.outputPreActivation(tape), finalActivation: model.finalActivation,
                                  targets: targets, sampleWeights: loss.sampleWeights(labels))
        lastBackward.nodesRun = 0
        lastBackward.layersRun = []
        try model.backward(tape, outputGradients: [result.gradient], preActivation: [result.isPreActivation], stats: lastBackward)
        let params = model.namedVariables
        // A non-finite loss or gradient never reaches the weights.
        lastStepSkipped = !result.value.isFinite || !Self.gradientsAreFinite(params)
        if lastStepSkipped {
            model.zeroGradients()
            return (result.value, y)
        }
        if let clipNorm { clipGradients(params, maxNorm: clipNorm) }
        optimizer.step(params)
        return (result.value, y)
    }

    static func gradientsAreFinite(_ params: [(path: String, variable: Variable)]) -> Bool {
        for (_, v) in params {
            guard let g = v.grad else { continue }
            let finite = g.withUnsafeBufferPointer { p -> Bool in
                var acc: Float = 0
                for x in p { acc += x * 0 }   // NaN or ±inf anywhere makes the sum NaN
                return !acc.isNaN
            }
            if !finite { return false }
        }
        return true
    }

    /// Trains for `options.epochs` epochs, validating after each when `validation` is given.
    @discardableResult
    public func fit(train: any ImageSource, validation: (any ImageSource)?, options: FitOptions,
                    callbacks: [any TrainingCallback] = []) throws -> FitOutcome {
        guard train.count > 0 else { throw TrainError("data", "the training set is empty") }
        guard options.batchSize > 0 else { throw TrainError("batch", "batch size must be positive") }
        if let bad = train.labels.first(where: { $0 < 0 || $0 >= classes }) {
            throw TrainError("data", "label \(bad) does not fit the model's \(classes) outputs")
        }
        var context = TrainingContext(seed: options.seed &+ 0x5EED, updateFrozenBatchNormStatistics: options.updateFrozenBatchNormStatistics)
        let stepsPerEpoch = (train.count * (augmenter?.copies ?? 1) + options.batchSize - 1) / options.batchSize
        globalStep = options.initialEpoch * stepsPerEpoch
        for epoch in (options.initialEpoch + 1)...max(options.initialEpoch + 1, options.epochs) where epoch <= options.epochs {
            let started = Date()
            // Noisy-copy augmentation draws every image `copies` times per epoch.
            let copies = augmenter?.copies ?? 1
            let batches = epochBatches(count: train.count * copies, batchSize: options.batchSize, shuffle: options.shuffle,
                                       seed: options.seed &+ UInt64(epoch) &* 7919).map { $0.map { $0 % train.count } }
            let bar = ProgressBar(label: "\(options.stage) epoch \(epoch)/\(options.epochs)", total: batches.count, enabled: options.showProgress)
            var lossSum = 0.0, seen = 0
            var metrics = ClassificationMetrics(classes: classes)
            var skip = 0
            if let p = options.partial, p.epoch == epoch {
                (skip, lossSum, seen, metrics) = (p.batches, p.lossSum, p.seen, p.metrics)
                globalStep += skip
            }
            // The loader's randomness is keyed by (seed, epoch, batch index), so skipping batches keeps the rest.
            let loader = BatchLoader(source: train, batches: batches, preprocessor: preprocessor, augmenter: augmenter,
                                     seed: options.seed &+ 0xA06 &+ UInt64(epoch) &* 0x85EB_CA6B, skip: skip)
            var b = skip
            var skippedThisEpoch = 0
            while var batch = try loader.next() {
                batch.x = fitToInput(batch.x)
                // Every batch's randomness derives from (seed, epoch, batch) alone, so a resumed run repeats it exactly.
                context.rng = SplitMix64(seed: options.seed &+ 0x5EED &+ UInt64(epoch) &* 0x9E37_79B9 &+ UInt64(b) &* 0x85EB_CA77)
                optimizer.learningRate = options.schedule.rate(base: baseLearningRate, step: globalStep, stepsPerEpoch: stepsPerEpoch) * learningRateScale
                let (l, y) = try trainStep(batch.x, labels: batch.labels, softTargets: batch.targets, loss: options.loss,
                                           clipNorm: options.clipNorm, context: &context)
                if lastStepSkipped {
                    let what = l.isFinite ? "a gradient became NaN or infinite" : "the loss became \(l)"
                    guard options.nanPolicy == .skip else {
                        loader.cancel()
                        let last = lastGoodCheckpoint.map { "last good checkpoint: \($0)" } ?? "no checkpoint was written yet"
                        throw TrainError("epoch \(epoch), batch \(b + 1)", "\(what); lower the learning rate, clip gradients or pass --nan skip (\(last))")
                    }
                    skippedBatches += 1
                    skippedThisEpoch += 1
                    globalStep += 1
                    b += 1
                    if skippedThisEpoch == batches.count - skip {
                        loader.cancel()
                        throw TrainError("epoch \(epoch)", "every batch had a non-finite loss or gradient and was skipped; lower the learning rate")
                    }
                    continue
                }
                lossSum += l * Double(batch.labels.count)
                seen += batch.labels.count
                metrics.add(scores: y.scalars, labels: batch.labels)
                globalStep += 1
                b += 1
                bar.update(b, images: seen, metrics: [("loss", lossSum / Double(seen)), ("acc", metrics.accuracy)])
                if let sig = interruptCheck() {
                    loader.cancel()
                    try onInterrupt?(PartialEpoch(epoch: epoch, batches: b, lossSum: lossSum, seen: seen, metrics: metrics))
                    return .interrupted(signal: sig, epoch: epoch)
                }
            }
            let seconds = Date().timeIntervalSince(started)
            var record = EpochRecord(stage: options.stage, epoch: epoch, loss: lossSum / Double(max(seen, 1)), accuracy: metrics.accuracy,
                                     valLoss: nil, valAccuracy: nil, learningRate: Double(optimizer.learningRate),
                                     seconds: seconds, imagesPerSecond: Double(seen) / max(seconds, 1e-9))
            if let validation {
                let ev = try evaluate(validation, batchSize: options.batchSize, loss: options.loss)
                record.valLoss = ev.loss
                record.valAccuracy = ev.accuracy
            }
            history.append(record)
            try onEpoch?(record)
            var stop = false
            for cb in callbacks where try cb.epochEnded(record, trainer: self) == .stop { stop = true }
            if stop { return .stoppedEarly(epoch: epoch) }
        }
        return .completed
    }

    /// Loss and classification metrics over a dataset (inference mode).
    public func evaluate(_ data: any ImageSource, batchSize: Int, loss: Loss = Loss()) throws -> Evaluation {
        var metrics = ClassificationMetrics(classes: classes)
        var total = 0.0
        let loader = BatchLoader(source: data, batches: epochBatches(count: data.count, batchSize: batchSize, shuffle: false, seed: 0),
                                 preprocessor: preprocessor, augmenter: nil, seed: 0)
        while let batch = try loader.next() {
            let (x, labels) = (fitToInput(batch.x), batch.labels)
            let y = try model.predict([model.fittingInput(x)])[0]
            if let bad = labels.first(where: { $0 < 0 || $0 >= classes }) {
                throw TrainError("data", "label \(bad) does not fit the model's \(classes) outputs")
            }
            let r = loss.compute(output: y, logits: nil, finalActivation: model.finalActivation,
                                 targets: loss.targets(labels, classes: classes), sampleWeights: loss.sampleWeights(labels))
            total += r.value * Double(labels.count)
            metrics.add(scores: y.scalars, labels: labels)
        }
        return Evaluation(loss: total / Double(max(data.count, 1)), metrics: metrics)
    }
}
