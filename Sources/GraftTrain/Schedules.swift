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
            let up = max(1, Int(Float(total) * pct))
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
    /// `onecycle[:PCT]`, given the run's length.
    public init(parsing text: String, epochs: Int, stepsPerEpoch: Int) throws {
        let parts = text.split(separator: ":").map(String.init)
        func number(_ i: Int, _ d: Float) throws -> Float {
            guard i < parts.count else { return d }
            guard let v = Float(parts[i]) else { throw TrainError("schedule", "\(parts[i]) is not a number in \(text)") }
            return v
        }
        let total = epochs * stepsPerEpoch
        switch parts.first ?? "constant" {
        case "constant": self = .constant
        case "step": self = .step(everyEpochs: Int(try number(1, 10)), factor: try number(2, 0.1))
        case "exponential": self = .exponential(decaySteps: Int(try number(1, Float(stepsPerEpoch))), rate: try number(2, 0.9))
        case "cosine": self = .cosine(warmupSteps: Int(try number(1, 0) * Float(stepsPerEpoch)), totalSteps: total, alpha: try number(2, 0))
        case "onecycle", "one-cycle": self = .oneCycle(totalSteps: total, pctStart: try number(1, 0.3), div: 25, finalDiv: 1e4)
        default: throw TrainError("schedule", "unknown schedule \"\(text)\" (constant, step, exponential, cosine, onecycle)")
        }
    }
}
