import Foundation
import GraftNN
import GraftTensor

/// Whether a monitored metric improves downwards (`loss`) or upwards (`accuracy`).
func lowerIsBetter(_ monitor: String) -> Bool { monitor.hasSuffix("loss") }

/// The monitored value, falling back to the training metric when there is no validation set.
func monitored(_ monitor: String, _ r: EpochRecord) -> Double? {
    r.value(monitor) ?? r.value(monitor.replacingOccurrences(of: "val_", with: ""))
}

/// Stops when `monitor` has not improved by `minDelta` for `patience` epochs; optionally restores the best weights.
public final class EarlyStopping: TrainingCallback {
    public let monitor: String, patience: Int, minDelta: Double, restoreBest: Bool
    var best: Double?
    var wait = 0
    var bestWeights: [String: Tensor]?

    public init(monitor: String = "val_loss", patience: Int = 3, minDelta: Double = 0, restoreBest: Bool = true) {
        self.monitor = monitor
        self.patience = patience
        self.minDelta = minDelta
        self.restoreBest = restoreBest
    }

    public func epochEnded(_ record: EpochRecord, trainer: Trainer) throws -> CallbackDecision {
        guard let v = monitored(monitor, record) else { return .proceed }
        let improved = best.map { lowerIsBetter(monitor) ? v < $0 - minDelta : v > $0 + minDelta } ?? true
        if improved {
            best = v
            wait = 0
            if restoreBest { bestWeights = Dictionary(uniqueKeysWithValues: trainer.model.namedVariables.map { ($0.path, $0.variable.value) }) }
            return .proceed
        }
        wait += 1
        guard wait >= patience else { return .proceed }
        if restoreBest, let weights = bestWeights {
            for (path, v) in trainer.model.namedVariables { if let t = weights[path] { v.value = t } }
        }
        return .stop
    }
}

/// Lowers the learning rate by `factor` when `monitor` has not improved by `minDelta` for `patience` epochs,
/// down to `minRate` (Keras's ReduceLROnPlateau).
public final class ReduceLROnPlateau: TrainingCallback {
    public let monitor: String, factor: Float, patience: Int, minRate: Float, minDelta: Double
    var best: Double?
    var wait = 0

    public init(monitor: String = "val_loss", factor: Float = 0.1, patience: Int = 2, minRate: Float = 1e-6, minDelta: Double = 1e-4) {
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.minRate = minRate
        self.minDelta = minDelta
    }

    public func epochEnded(_ record: EpochRecord, trainer: Trainer) throws -> CallbackDecision {
        guard let v = monitored(monitor, record) else { return .proceed }
        if best.map({ lowerIsBetter(monitor) ? v < $0 - minDelta : v > $0 + minDelta }) ?? true {
            best = v
            wait = 0
        } else {
            wait += 1
            let current = trainer.baseLearningRate * trainer.learningRateScale
            if wait >= patience && current > minRate {
                let next = max(minRate, current * factor)
                trainer.learningRateScale *= next / current
                wait = 0
                FileHandle.standardError.write(Data("ReduceLROnPlateau: learning rate \(current) → \(next)\n".utf8))
            }
        }
        return .proceed
    }
}

/// Saves a checkpoint whenever `monitor` reaches a new best (`best.h5` in the run directory).
public final class BestCheckpoint: TrainingCallback {
    public let monitor: String
    let save: (Trainer, EpochRecord) throws -> Void
    public private(set) var best: Double?
    public private(set) var bestEpoch: Int?

    /// `best` and `bestEpoch` carry the record over when a run resumes.
    public init(monitor: String = "val_accuracy", best: Double? = nil, bestEpoch: Int? = nil,
                save: @escaping (Trainer, EpochRecord) throws -> Void) {
        self.monitor = monitor
        self.best = best
        self.bestEpoch = bestEpoch
        self.save = save
    }

    public func epochEnded(_ record: EpochRecord, trainer: Trainer) throws -> CallbackDecision {
        guard let v = monitored(monitor, record) else { return .proceed }
        if best.map({ lowerIsBetter(monitor) ? v < $0 : v > $0 }) ?? true {
            best = v
            bestEpoch = record.epoch
            try save(trainer, record)
        }
        return .proceed
    }
}
