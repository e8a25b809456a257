import Foundation
import GraftNN

/// The ranges every number of a fine-tuning run must fall in, checked before anything is converted or allocated:
/// the CLI, recipes and library callers all go through `FineTuneConfig.validate()`, so NaN, ±inf, 1e30, negative
/// or `Int.max` values are one-line errors naming the setting, never a trap or an overflow.
public enum FineTuneLimits {
    public static let epochs = 1...100_000
    public static let batchSize = 1...65_536
    public static let patience = 1...100_000
    public static let perClass = 1...1_000_000_000
    public static let classes = 1...100_000
    public static let hiddenUnits = 1...1_000_000
    public static let inputSide = 1...16_384
    public static let learningRate = 0.0...10.0   // exclusive of 0
}

extension FineTuneConfig {
    /// Throws a `TrainError` naming the first setting out of range by its recipe key (`stages.0.epochs`,
    /// `data.batch_size`; the CLI's `--epochs` and `--unfreeze` stages are stages 0 and 1).
    public func validate() throws {
        func whole(_ v: Int, _ range: ClosedRange<Int>, _ what: String) throws {
            guard range.contains(v) else { throw TrainError(what, "must be a whole number from \(range.lowerBound) to \(range.upperBound), got \(v)") }
        }
        func positive(_ v: Float, max: Float, _ what: String) throws {
            guard v.isFinite, v > 0, v <= max else { throw TrainError(what, "must be a number above 0 and at most \(LearningRateSchedule.format(Double(max))), got \(v)") }
        }
        func fraction(_ v: Double, _ what: String, openAtZero: Bool) throws {
            guard v.isFinite, openAtZero ? v > 0 : v >= 0, v < 1 else {
                throw TrainError(what, "must be a number \(openAtZero ? "above" : "from") 0 and below 1, got \(v)")
            }
        }
        guard !stages.isEmpty else { throw TrainError("stages", "a fine-tuning run needs at least one stage") }
        for (i, s) in stages.enumerated() {
            let key = "stages.\(i)"   // the recipe's key; the CLI's first stage is 0, its fine-tune stage 1
            try whole(s.epochs, FineTuneLimits.epochs, "\(key).epochs")
            try positive(s.learningRate, max: Float(FineTuneLimits.learningRate.upperBound), "\(key).learning_rate")
            if let c = s.clipNorm { try positive(c, max: 1e6, "\(key).clip_norm") }
            if let p = s.earlyStoppingPatience { try whole(p, FineTuneLimits.patience, "\(key).early_stopping") }
            if let p = s.reduceOnPlateauPatience { try whole(p, FineTuneLimits.patience, "\(key).reduce_lr_patience") }
            do { _ = try s.schedule.schedule(epochs: s.epochs, stepsPerEpoch: 1) } catch let e as TrainError {
                throw TrainError("\(key).schedule", e.message)
            }
        }
        try whole(batchSize, FineTuneLimits.batchSize, "data.batch_size")
        if let f = validationSplit { try fraction(f, "data.validation_split", openAtZero: true) }
        if let n = limitPerClass { try whole(n, FineTuneLimits.perClass, "data.limit_per_class") }
        try fraction(Double(labelSmoothing), "label_smoothing", openAtZero: false)
        if let subset = classSubset {
            for c in subset { try whole(c, 0...(FineTuneLimits.classes.upperBound - 1), "data.classes") }
        }
        if let size = inputSize {
            guard size.count == 2 else { throw TrainError("data.input_size", "must be [height, width], got \(size)") }
            for side in size { try whole(side, FineTuneLimits.inputSide, "data.input_size") }
        }
        if let head {
            if head.classes != 0 { try whole(head.classes, FineTuneLimits.classes, "model.head.classes") }
            for h in head.hidden { try whole(h, FineTuneLimits.hiddenUnits, "model.head.hidden") }
            try fraction(Double(head.dropout), "model.head.dropout", openAtZero: false)
        }
    }
}
