import Foundation
import GraftNN
import GraftTensor

/// Training losses, as Keras defines them (mean over the batch; class weights as per-sample weights).
public struct Loss: Sendable, Codable, Equatable {
    /// Which loss: Keras's name for it is the raw value.
    public enum Kind: String, Sendable, Codable {
        /// Softmax cross-entropy over classes (single label per sample).
        case categoricalCrossentropy = "categorical_crossentropy"
        /// Sigmoid cross-entropy per class, averaged over classes (multi-label).
        case binaryCrossentropy = "binary_crossentropy"
    }

    public var kind: Kind
    public var labelSmoothing: Float
    /// Weight per class, applied to each sample by its label (nil: all 1).
    public var classWeights: [Float]?

    public init(_ kind: Kind = .categoricalCrossentropy, labelSmoothing: Float = 0, classWeights: [Float]? = nil) {
        self.kind = kind
        self.labelSmoothing = labelSmoothing
        self.classWeights = classWeights
    }

    /// The value and gradient of the loss for a batch.
    public struct Result {
        public let value: Double
        /// dL/d(output), or dL/d(pre-activation) when `isPreActivation`.
        public let gradient: Tensor
        public let isPreActivation: Bool
    }

    /// Computes the loss of `output` (`[N, K]`) against `targets` (`[N, K]`, one-hot or multi-hot, already smoothed
    /// if wanted). When the model's last activation is softmax (or sigmoid for binary) and its pre-activation `logits`
    /// is available, the loss is computed from the logits (stable) and the gradient returned for them.
    public func compute(output y: Tensor, logits: Tensor?, finalActivation: ActivationKind, targets t: Tensor,
                        sampleWeights w: [Float]) -> Result {
        let N = y.shape[0], K = y.count / max(N, 1)
        let ys = y.scalars, ts = t.scalars
        var g = [Float](repeating: 0, count: y.count)
        var total = 0.0
        let wsum = Double(N)
        switch kind {
        case .categoricalCrossentropy:
            let fused = finalActivation == .softmax && logits != nil
            let z = (fused ? logits?.scalars : nil) ?? ys
            if fused || finalActivation == .linear {
                // log_softmax from logits: z − max − log Σ exp(z − max).
                for i in 0..<N {
                    let row = z[(i * K)..<((i + 1) * K)]
                    let m = row.max() ?? 0
                    var s = 0.0
                    for v in row { s += exp(Double(v - m)) }
                    let lse = Double(m) + log(s)
                    var li = 0.0
                    for k in 0..<K {
                        let p = exp(Double(z[i * K + k]) - lse)
                        li -= Double(ts[i * K + k]) * (Double(z[i * K + k]) - lse)
                        g[i * K + k] = Float((p - Double(ts[i * K + k])) * Double(w[i]) / wsum)
                    }
                    total += li * Double(w[i])
                }
                return Result(value: total / wsum, gradient: Tensor(shape: y.shape, values: g), isPreActivation: fused)
            }
            // Probabilities from some other activation: clip like Keras.
            for i in 0..<N {
                for k in 0..<K {
                    let p = min(max(Double(ys[i * K + k]), 1e-7), 1 - 1e-7)
                    total -= Double(w[i]) * Double(ts[i * K + k]) * log(p)
                    g[i * K + k] = Float(-Double(w[i]) * Double(ts[i * K + k]) / p / wsum)
                }
            }
            return Result(value: total / wsum, gradient: Tensor(shape: y.shape, values: g), isPreActivation: false)
        case .binaryCrossentropy:
            let fused = finalActivation == .sigmoid && logits != nil
            if fused || finalActivation == .linear {
                let z = (fused ? logits?.scalars : nil) ?? ys
                for i in 0..<N {
                    for k in 0..<K {
                        let x = Double(z[i * K + k]), tt = Double(ts[i * K + k])
                        total += Double(w[i]) * (max(x, 0) - x * tt + log1p(exp(-abs(x)))) / Double(K)
                        let s = 1 / (1 + exp(-x))
                        g[i * K + k] = Float((s - tt) * Double(w[i]) / (wsum * Double(K)))
                    }
                }
                return Result(value: total / wsum, gradient: Tensor(shape: y.shape, values: g), isPreActivation: fused)
            }
            for i in 0..<N {
                for k in 0..<K {
                    let p = min(max(Double(ys[i * K + k]), 1e-7), 1 - 1e-7), tt = Double(ts[i * K + k])
                    total -= Double(w[i]) * (tt * log(p) + (1 - tt) * log(1 - p)) / Double(K)
                    g[i * K + k] = Float(Double(w[i]) * (p - tt) / (p * (1 - p)) / (wsum * Double(K)))
                }
            }
            return Result(value: total / wsum, gradient: Tensor(shape: y.shape, values: g), isPreActivation: false)
        }
    }

    /// One-hot (or smoothed) targets `[N, K]` for integer labels.
    public func targets(_ labels: [Int], classes K: Int) -> Tensor {
        var t = [Float](repeating: 0, count: labels.count * K)
        let ls = labelSmoothing
        let off: Float = kind == .categoricalCrossentropy ? ls / Float(K) : ls / 2
        for (i, l) in labels.enumerated() {
            for k in 0..<K { t[i * K + k] = (k == l ? 1 : 0) * (1 - ls) + off }
        }
        return Tensor(shape: [labels.count, K], values: t)
    }

    /// Per-sample weights from `classWeights` (all 1 without them).
    public func sampleWeights(_ labels: [Int]) -> [Float] {
        guard let cw = classWeights else { return [Float](repeating: 1, count: labels.count) }
        return labels.map { $0 < cw.count ? cw[$0] : 1 }
    }
}
