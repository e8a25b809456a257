import Foundation
import GraftNN

/// A learning-rate schedule: the rate for a global step (0-based) given the base rate.
public enum LearningRateSchedule: Sendable, Equatable, Codable {
    case constant
    /// Multiply by `factor` every `everyEpochs` epochs.
    case step(everyEpochs: Int, factor: Float)
    /// `lr · rate^(step / decaySteps)` (Keras ExponentialDecay).
    case exponential(decaySteps: Int, rate: Float)
    /// Linear warm-up over `warmupSteps`, then cosine decay to `lr · alpha` at `totalSteps`.
    case cosine(warmupSteps: Int, totalSteps: Int, alpha: Float)
    /// One-cycle: from `lr/div` up to `lr` over `pctStart` of the steps, then cosine down to `lr/(div·finalDiv)`.
    case oneCycle(totalSteps: Int, pctStart: Float, div: Float, finalDiv: Float)

    public func rate(base lr: Float, step: Int, stepsPerEpoch: Int) -> Float {
        switch self {
        case .constant:
            return lr
        case .step(let every, let factor):
            let epoch = step / max(stepsPerEpoch, 1)
            return lr * pow(factor, Float(epoch / max(every, 1)))
        case .exponential(let decaySteps, let rate):
            return lr * pow(rate, Float(step) / Float(max(decaySteps, 1)))
        case .cosine(let warmup, let total, let alpha):
            if step < warmup { return lr * Float(step + 1) / Float(warmup) }
            let progress = min(1, Float(step - warmup) / Float(max(total - warmup, 1)))
            let cosine = 0.5 * (1 + cos(Float.pi * progress))
            return lr * ((1 - alpha) * cosine + alpha)
        case .oneCycle(let total, let pct, let div, let finalDiv):
            let up = max(1, Int((Double(total) * Double(pct)).rounded(.down)))   // pct in (0, 1]: at most total
            let start = lr / div, end = lr / (div * finalDiv)
            if step < up {
                let p = Float(step) / Float(up)
                return start + (lr - start) * (1 - cos(Float.pi * p)) / 2
            }
            let p = min(1, Float(step - up) / Float(max(total - up, 1)))
            return end + (lr - end) * (1 + cos(Float.pi * p)) / 2
        }
    }

    /// Parses `constant`, `step:EVERY:FACTOR`, `exponential:STEPS:RATE`, `cosine[:WARMUP_EPOCHS[:ALPHA]]`,
    /// `onecycle[:PCT]`, given the run's length (`ScheduleSpec`, then `schedule(epochs:stepsPerEpoch:)`).
    public init(parsing text: String, epochs: Int, stepsPerEpoch: Int) throws {
        self = try ScheduleSpec(parsing: text).schedule(epochs: epochs, stepsPerEpoch: stepsPerEpoch)
    }

    /// A bound as a person writes it (`1`, `0.5`, `1000000`).
    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }
}

/// A schedule as a stage states it, before the run's length is known: what recipes' `schedule:` and `--schedule`
/// decode into, every number range-checked as it is parsed (NaN, ±inf, 1e30 and negative counts are errors naming
/// the value, never a trap). Encodes as its text (`step:3:0.2`), which parses back to the same value.
public enum ScheduleSpec: Sendable, Equatable, Codable, CustomStringConvertible {
    case constant
    /// Multiply by `factor` every `everyEpochs` epochs.
    case step(everyEpochs: Int, factor: Double)
    /// `lr · rate^(step / decaySteps)`; nil steps decay by `rate` once per epoch.
    case exponential(decaySteps: Int?, rate: Double)
    /// Linear warm-up over `warmupEpochs` (at most the stage's epochs), then cosine decay to `lr · alpha`.
    case cosine(warmupEpochs: Double, alpha: Double)
    /// One-cycle with the rise over `pctStart` of the steps.
    case oneCycle(pctStart: Double)

    /// `constant`, `step[:EVERY[:FACTOR]]`, `exponential[:STEPS|epoch[:RATE]]`, `cosine[:WARMUP_EPOCHS[:ALPHA]]`,
    /// `onecycle[:PCT]`; an unknown name is an error listing the names and the nearest.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func number(_ i: Int, _ d: Double, _ what: String, in range: ClosedRange<Double>, above low: Bool = false) throws -> Double {
            guard i < parts.count else { return d }
            guard let v = Double(parts[i]), v.isFinite, range.contains(v), !(low && v == range.lowerBound) else {
                let bounds = low ? "above \(LearningRateSchedule.format(range.lowerBound)) and at most \(LearningRateSchedule.format(range.upperBound))"
                    : "from \(LearningRateSchedule.format(range.lowerBound)) to \(LearningRateSchedule.format(range.upperBound))"
                throw TrainError("schedule", "\(what) \"\(parts[i])\" in \(text) must be a number \(bounds)")
            }
            return v
        }
        func whole(_ i: Int, _ d: Int, _ what: String, max: Int) throws -> Int {
            let v = try number(i, Double(d), what, in: 1...Double(max))
            guard let n = Int(exactly: v) else {
                throw TrainError("schedule", "\(what) \"\(parts[i])\" in \(text) must be a whole number from 1 to \(max)")
            }
            return n
        }
        func arguments(_ n: Int) throws {
            guard parts.count <= n + 1 else {
                throw TrainError("schedule", "\(text) has \(parts.count - 1) values; \(parts[0]) takes at most \(n)")
            }
        }
        switch parts.first ?? "constant" {
        case "constant":
            try arguments(0)
            self = .constant
        case "step":
            try arguments(2)
            self = .step(everyEpochs: try whole(1, 10, "the epoch interval", max: 1_000_000),
                         factor: try number(2, 0.1, "the factor", in: 0...1e6, above: true))
        case "exponential":
            try arguments(2)
            let perEpoch = parts.count < 2 || parts[1] == "epoch"
            self = .exponential(decaySteps: perEpoch ? nil : try whole(1, 1, "the decay steps", max: 1 << 40),
                                rate: try number(2, 0.9, "the decay rate", in: 0...1e6, above: true))
        case "cosine":
            try arguments(2)
            self = .cosine(warmupEpochs: try number(1, 0, "the warm-up epoch count", in: 0...Double(FineTuneLimits.epochs.upperBound)),
                           alpha: try number(2, 0, "alpha", in: 0...1))
        case "onecycle", "one-cycle":
            try arguments(1)
            self = .oneCycle(pctStart: try number(1, 0.3, "the warm-up fraction", in: 0...1, above: true))
        default:
            let names = ["constant", "step", "exponential", "cosine", "onecycle"]
            let hint = Suggestions.didYouMean(parts[0], among: names)
            throw TrainError("schedule", "unknown schedule \"\(text)\" (\(names.joined(separator: ", ")))\(hint)")
        }
    }

    public var description: String {
        func n(_ v: Double) -> String { LearningRateSchedule.format(v) }
        switch self {
        case .constant: return "constant"
        case .step(let every, let factor): return "step:\(every):\(n(factor))"
        case .exponential(let steps, let rate): return "exponential:\(steps.map(String.init) ?? "epoch"):\(n(rate))"
        case .cosine(let warmup, let alpha): return "cosine:\(n(warmup)):\(n(alpha))"
        case .oneCycle(let pct): return "onecycle:\(n(pct))"
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try ScheduleSpec(parsing: text) } catch let e as TrainError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// The schedule for a stage of `epochs` epochs of `stepsPerEpoch` steps; a warm-up longer than the stage or a
    /// run too long to count in steps is an error.
    public func schedule(epochs: Int, stepsPerEpoch: Int) throws -> LearningRateSchedule {
        guard epochs >= 0, stepsPerEpoch >= 0 else { throw TrainError("schedule", "the run has a negative length") }
        let (total, overflow) = epochs.multipliedReportingOverflow(by: stepsPerEpoch)
        guard !overflow else { throw TrainError("schedule", "\(epochs) epochs of \(stepsPerEpoch) steps is too long a run") }
        switch self {
        case .constant:
            return .constant
        case .step(let every, let factor):
            return .step(everyEpochs: every, factor: Float(factor))
        case .exponential(let steps, let rate):
            return .exponential(decaySteps: steps ?? max(stepsPerEpoch, 1), rate: Float(rate))
        case .cosine(let warmup, let alpha):
            guard warmup <= Double(epochs) else {
                throw TrainError("schedule", "the warm-up epoch count \"\(LearningRateSchedule.format(warmup))\" in \(self) must be a number from 0 to \(epochs), the stage's epochs")
            }
            let warmupSteps = warmup * Double(stepsPerEpoch)   // at most `total`, up to rounding
            return .cosine(warmupSteps: warmupSteps < Double(total) ? Int(warmupSteps.rounded(.down)) : total, totalSteps: total,
                           alpha: Float(alpha))
        case .oneCycle(let pct):
            return .oneCycle(totalSteps: total, pctStart: Float(pct), div: 25, finalDiv: 1e4)
        }
    }
}
