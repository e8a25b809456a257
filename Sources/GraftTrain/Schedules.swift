import Foundation

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
    /// `onecycle[:PCT]`, given the run's length. Every number is range-checked before it is converted (NaN, ±inf,
    /// 1e30 and negative counts are errors naming the value, never a trap).
    public init(parsing text: String, epochs: Int, stepsPerEpoch: Int) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func number(_ i: Int, _ d: Double, _ what: String, in range: ClosedRange<Double>, above low: Bool = false) throws -> Double {
            guard i < parts.count else { return d }
            guard let v = Double(parts[i]), v.isFinite, range.contains(v), !(low && v == range.lowerBound) else {
                let bounds = low ? "above \(Self.format(range.lowerBound)) and at most \(Self.format(range.upperBound))"
                    : "from \(Self.format(range.lowerBound)) to \(Self.format(range.upperBound))"
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
        guard epochs >= 0, stepsPerEpoch >= 0 else { throw TrainError("schedule", "the run has a negative length") }
        let (total, overflow) = epochs.multipliedReportingOverflow(by: stepsPerEpoch)
        guard !overflow else { throw TrainError("schedule", "\(epochs) epochs of \(stepsPerEpoch) steps is too long a run") }
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
                         factor: Float(try number(2, 0.1, "the factor", in: 0...1e6, above: true)))
        case "exponential":
            try arguments(2)
            self = .exponential(decaySteps: try whole(1, max(stepsPerEpoch, 1), "the decay steps", max: 1 << 40),
                                rate: Float(try number(2, 0.9, "the decay rate", in: 0...1e6, above: true)))
        case "cosine":
            try arguments(2)
            let warmup = try number(1, 0, "the warm-up epoch count", in: 0...Double(max(epochs, 0)))
            let warmupSteps = warmup * Double(stepsPerEpoch)   // at most `total`, up to rounding
            self = .cosine(warmupSteps: warmupSteps < Double(total) ? Int(warmupSteps.rounded(.down)) : total, totalSteps: total,
                           alpha: Float(try number(2, 0, "alpha", in: 0...1)))
        case "onecycle", "one-cycle":
            try arguments(1)
            self = .oneCycle(totalSteps: total, pctStart: Float(try number(1, 0.3, "the warm-up fraction", in: 0...1, above: true)),
                             div: 25, finalDiv: 1e4)
        default: throw TrainError("schedule", "unknown schedule \"\(text)\" (constant, step, exponential, cosine, onecycle)")
        }
    }

    /// A bound as a person writes it (`1`, `0.5`, `1000000`).
    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }
}
