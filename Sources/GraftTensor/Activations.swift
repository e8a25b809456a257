import Foundation
import CGraftSIMD

/// Element-wise activation functions, with Keras's definitions and parameters.
public enum ActivationKind: Sendable, Equatable, Codable {
    case linear, relu, relu6, sigmoid, tanh, softmax, softplus, softsign, exponential
    case swish            // x·sigmoid(x), a.k.a. silu
    case elu(alpha: Float)
    case selu
    case gelu(approximate: Bool)
    case hardSigmoid(keras2: Bool)   // Keras 2: clip(0.2x + 0.5, 0, 1); Keras 3: relu6(x + 3) / 6
    case hardSwish                   // x · relu6(x + 3) / 6
    case leakyReLU(alpha: Float)
    case mish
    /// Keras 3's further activations: `celu` (alpha 1), `hard_tanh`, `hard_shrink` and `soft_shrink` (threshold
    /// 0.5), `tanh_shrink`, `log_sigmoid`, `sparse_plus`, `squareplus` (b 4), and `log_softmax` (along the last axis).
    case celu(alpha: Float)
    case hardTanh
    case hardShrink(threshold: Float)
    case softShrink(threshold: Float)
    case tanhShrink, logSigmoid, sparsePlus
    case squareplus(b: Float)
    case logSoftmax
    /// Keras 3's `sparsemax` (Martins and Astudillo 2016) along the last axis: the Euclidean projection onto the
    /// probability simplex, `max(x − τ, 0)`.
    case sparsemax
    /// Keras `ReLU` layer: `max_value`, `negative_slope`, `threshold`.
    case reluGeneral(maxValue: Float?, negativeSlope: Float, threshold: Float)

    /// True for the activations taken along the last axis (softmax, log-softmax), not element by element.
    public var isAlongLastAxis: Bool { self == .softmax || self == .logSoftmax || self == .sparsemax }

    /// Applies the activation in place to `rows` rows of `n` values (the last axis).
    public func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        switch self {
        case .softmax: softmaxLastAxis(x, rows: rows, n: n)
        case .logSoftmax: logSoftmaxLastAxis(x, rows: rows, n: n)
        case .sparsemax: sparsemaxLastAxis(x, rows: rows, n: n)
        default: apply(x, count: rows * n)
        }
    }

    /// Applies the activation in place to `count` contiguous values. Softmax and log-softmax are not element-wise:
    /// use `apply(_:rows:n:)`.
    public func apply(_ x: UnsafeMutablePointer<Float>, count: Int) {
        if self == .linear { return }
        Parallel.forEach(count, grain: 32768) { r in applySerial(x + r.lowerBound, count: r.count) }
    }

    /// `apply` on the calling thread only (for callers that already split the work).
    public func applySerial(_ p: UnsafeMutablePointer<Float>, count n: Int) {
        switch self {
        case .linear: break
        case .relu: for i in 0..<n { p[i] = p[i] > 0 ? p[i] : (p[i].isNaN ? p[i] : 0) }
        case .relu6: for i in 0..<n { p[i] = Swift.min(Swift.max(p[i], 0), 6) }
        case .sigmoid: graft_simd_sigmoid(p, n, FastMath.simdLevel)
        case .tanh: graft_simd_tanh(p, n, FastMath.simdLevel)
        case .softplus: for i in 0..<n { p[i] = ActivationKind.softplus(p[i]) }
        case .softsign: for i in 0..<n { p[i] = p[i] / (1 + Swift.abs(p[i])) }
        case .exponential: graft_simd_exp(p, n, FastMath.simdLevel)
        case .swish: for i in 0..<n { p[i] = p[i] * ActivationKind.sigmoid(p[i]) }
        case .elu(let a): for i in 0..<n where p[i] < 0 { p[i] = a * Foundation.expm1(p[i]) }
        case .selu:
            let alpha: Float = 1.6732632423543772, scale: Float = 1.0507009873554805
            for i in 0..<n { p[i] = p[i] > 0 ? scale * p[i] : scale * alpha * Foundation.expm1(p[i]) }
        case .gelu(let approx):
            if approx {
                let k: Float = 0.7978845608028654   // sqrt(2/pi)
                for i in 0..<n { let v = p[i]; p[i] = 0.5 * v * (1 + FastMath.tanh(k * (v + 0.044715 * v * v * v))) }
            } else {
                graft_simd_gelu(p, n, FastMath.simdLevel)
            }
        case .hardSigmoid(let keras2):
            if keras2 { for i in 0..<n { p[i] = Swift.min(Swift.max(0.2 * p[i] + 0.5, 0), 1) } }
            else { for i in 0..<n { p[i] = Swift.min(Swift.max(p[i] + 3, 0), 6) / 6 } }
        case .hardSwish: for i in 0..<n { p[i] = p[i] * Swift.min(Swift.max(p[i] + 3, 0), 6) / 6 }
        case .leakyReLU(let a): for i in 0..<n where p[i] < 0 { p[i] *= a }
        case .mish: for i in 0..<n { p[i] = p[i] * Foundation.tanh(ActivationKind.softplus(p[i])) }
        case .reluGeneral(let maxValue, let slope, let threshold):
            // Keras: clip(x · [x > threshold], 0, max_value) − negative_slope · relu(threshold − x).
            for i in 0..<n {
                let v = p[i]
                var pos = v > threshold ? v : 0
                if let m = maxValue { pos = Swift.min(Swift.max(pos, 0), m) }
                p[i] = slope != 0 ? pos - slope * Swift.max(threshold - v, 0) : pos
            }
        case .celu(let a): for i in 0..<n where p[i] < 0 { p[i] = a * Foundation.expm1(p[i] / a) }
        case .hardTanh: for i in 0..<n { p[i] = Swift.min(Swift.max(p[i], -1), 1) }
        case .hardShrink(let t): for i in 0..<n where Swift.abs(p[i]) <= t { p[i] = 0 }
        case .softShrink(let t): for i in 0..<n { let v = p[i]; p[i] = v > t ? v - t : (v < -t ? v + t : 0) }
        case .tanhShrink: for i in 0..<n { p[i] = p[i] - Foundation.tanh(p[i]) }
        case .logSigmoid: for i in 0..<n { p[i] = -ActivationKind.softplus(-p[i]) }
        case .sparsePlus: for i in 0..<n { let v = p[i]; p[i] = v <= -1 ? 0 : (v >= 1 ? v : (v + 1) * (v + 1) / 4) }
        case .squareplus(let b): for i in 0..<n { let v = p[i]; p[i] = (v + (v * v + b).squareRoot()) / 2 }
        case .softmax, .logSoftmax, .sparsemax:
            preconditionFailure("\(self) is applied along an axis, not element-wise")
        }
    }

    @inline(__always) static func sigmoid(_ x: Float) -> Float {
        FastMath.sigmoid(x)
    }

    @inline(__always) static func softplus(_ x: Float) -> Float {
        x > 20 ? x : Foundation.log1p(Foundation.exp(x))
    }
}

/// Log-softmax along the last axis of a row-major `[rows, n]` buffer, in place: `x − max − log Σ exp(x − max)`.
public func logSoftmaxLastAxis(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
    Parallel.forEach(rows, grain: max(1, 4096 / max(n, 1))) { range in
        for r in range {
            let p = x + r * n
            var m = -Float.infinity
            for i in 0..<n { m = Swift.max(m, p[i]) }
            var sum = 0.0
            for i in 0..<n { sum += Double(Foundation.exp(p[i] - m)) }
            let shift = m + Float(Foundation.log(sum))
            for i in 0..<n { p[i] -= shift }
        }
    }
}

/// Sparsemax along the last axis of a row-major `[rows, n]` buffer, in place, as Keras 3 computes it: with `z` sorted
/// in decreasing order and `C` its running sums, the kept ranks `S = {i : z₍ᵢ₎ − (Cᵢ − 1)/i > 0}` and
/// `τ = (Σ_{i∈S} Cᵢ − 1) / |S|`, the result is `max(x − τ, 0)`. (Keras sums the running sums where the published
/// projection takes the last one, so rows keeping more than one value do not sum to 1; Graft computes what Keras
/// does, which is what a checkpoint was trained with.)
public func sparsemaxLastAxis(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
    Parallel.forEach(rows, grain: max(1, 4096 / max(n, 1))) { range in
        var sorted = [Float](repeating: 0, count: n)
        for r in range {
            let p = x + r * n
            let tau = sparsemaxThreshold(p, n: n, sorted: &sorted).tau
            for i in 0..<n { p[i] = Swift.max(p[i] - tau, 0) }
        }
    }
}

/// Keras's sparsemax threshold `τ` of one row, and `weight[rank]`: dτ/dz₍rank₎ = #{kept ranks ≥ rank} / |S|.
func sparsemaxThreshold(_ p: UnsafePointer<Float>, n: Int, sorted: inout [Float]) -> (tau: Float, weight: [Float]) {
    for i in 0..<n { sorted[i] = p[i] }
    sorted.sort(by: >)
    var running: Float = 0, sum: Float = 0, kept = 0
    var isKept = [Bool](repeating: false, count: n)
    for i in 0..<n {
        running += sorted[i]
        if sorted[i] - (running - 1) / Float(i + 1) > 0 {
            isKept[i] = true
            kept += 1
            sum += running
        }
    }
    let k = Float(Swift.max(kept, 1))
    var weight = [Float](repeating: 0, count: n), later = 0
    for i in stride(from: n - 1, through: 0, by: -1) {
        if isKept[i] { later += 1 }
        weight[i] = Float(later) / k
    }
    return ((sum - 1) / k, weight)
}

/// Softmax along the last axis of a row-major `[rows, n]` buffer, in place (max-subtracted for stability).
public func softmaxLastAxis(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
    Parallel.forEach(rows, grain: max(1, 4096 / max(n, 1))) { range in
        for r in range {
            let p = x + r * n
            var m = -Float.infinity
            for i in 0..<n { m = Swift.max(m, p[i]) }
            var s: Float = 0
            for i in 0..<n { p[i] = FastMath.exp(p[i] - m) }
            for i in 0..<n { s += p[i] }
            let inv = 1 / s
            for i in 0..<n { p[i] *= inv }
        }
    }
}
