import Foundation

extension ActivationKind {
    /// True when `backward` reads only the output `y` (never `z`): the derivative is a function of the output.
    public var derivativeFollowsFromOutput: Bool {
        switch self {
        case .linear, .relu, .relu6, .sigmoid, .tanh, .softmax, .logSoftmax, .exponential: return true
        default: return false
        }
    }

    /// `dz = f'(z) · dy` for element-wise activations, given the pre-activation `z` and the output `y = f(z)`.
    /// Softmax is not element-wise: use `softmaxBackwardLastAxis`.
    public func backward(z: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dz: UnsafeMutablePointer<Float>, count: Int) {
        // The common activations in tight loops the compiler vectorises; the rest below, one switch per element.
        switch self {
        case .linear:
            Parallel.forEach(count, grain: 32768) { r in for i in r { dz[i] = dy[i] } }
            return
        // Loads before the select (never a conditional load or a branch), so these loops vectorise.
        case .relu:     // from the output: y > 0 exactly where z > 0
            Parallel.forEach(count, grain: 32768) { r in
                for i in r { let g = dy[i], o = y[i]; dz[i] = o > 0 ? g : 0 }
            }
            return
        case .relu6:    // 0 < y < 6 exactly where 0 < z < 6
            Parallel.forEach(count, grain: 32768) { r in
                for i in r { let g = dy[i], o = y[i]; dz[i] = o > 0 && o < 6 ? g : 0 }
            }
            return
        case .tanh:
            Parallel.forEach(count, grain: 32768) { r in for i in r { dz[i] = (1 - y[i] * y[i]) * dy[i] } }
            return
        case .sigmoid:
            Parallel.forEach(count, grain: 32768) { r in for i in r { dz[i] = y[i] * (1 - y[i]) * dy[i] } }
            return
        default:
            break
        }
        Parallel.forEach(count, grain: 32768) { r in
            for i in r {
                let x = z[i], o = y[i], g = dy[i]
                let d: Float
                switch self {
                case .linear: d = 1
                case .relu: d = o > 0 ? 1 : 0
                case .relu6: d = o > 0 && o < 6 ? 1 : 0
                case .sigmoid: d = o * (1 - o)
                case .tanh: d = 1 - o * o
                case .softplus: d = ActivationKind.sigmoid(x)
                case .softsign: let a = 1 + Swift.abs(x); d = 1 / (a * a)
                case .exponential: d = o
                case .swish: let s = ActivationKind.sigmoid(x); d = s + x * s * (1 - s)
                case .elu(let a): d = x > 0 ? 1 : a * Foundation.exp(x)
                case .selu:
                    let alpha: Float = 1.6732632423543772, scale: Float = 1.0507009873554805
                    d = x > 0 ? scale : scale * alpha * Foundation.exp(x)
                case .gelu(let approx):
                    if approx {
                        let k: Float = 0.7978845608028654
                        let u = k * (x + 0.044715 * x * x * x)
                        let t = FastMath.tanh(u)
                        d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
                    } else {
                        let cdf = 0.5 * (1 + FastMath.erf(x * 0.70710678118654752))
                        let pdf = FastMath.exp(-0.5 * x * x) * 0.3989422804014327
                        d = cdf + x * pdf
                    }
                case .hardSigmoid(let keras2):
                    if keras2 { d = x > -2.5 && x < 2.5 ? 0.2 : 0 } else { d = x > -3 && x < 3 ? 1.0 / 6 : 0 }
                case .hardSwish: d = x <= -3 ? 0 : (x >= 3 ? 1 : (2 * x + 3) / 6)
                case .leakyReLU(let a): d = x > 0 ? 1 : a
                case .mish:
                    let sp = ActivationKind.softplus(x), t = Foundation.tanh(sp)
                    d = t + x * (1 - t * t) * ActivationKind.sigmoid(x)
                case .reluGeneral(let maxValue, let slope, let threshold):
                    if x > threshold {
                        d = x > 0 && (maxValue.map { x < $0 } ?? true) ? 1 : 0
                    } else {
                        d = slope
                    }
                case .celu(let a): d = x > 0 ? 1 : Foundation.exp(x / a)
                case .hardTanh: d = x > -1 && x < 1 ? 1 : 0
                case .hardShrink(let t), .softShrink(let t): d = Swift.abs(x) > t ? 1 : 0
                case .tanhShrink: let t = Foundation.tanh(x); d = t * t
                case .logSigmoid: d = 1 - ActivationKind.sigmoid(x)
                case .sparsePlus: d = x <= -1 ? 0 : (x >= 1 ? 1 : (x + 1) / 2)
                case .squareplus(let b): d = (1 + x / (x * x + b).squareRoot()) / 2
                case .softmax, .logSoftmax, .sparsemax:
                    d = .nan
                }
                dz[i] = d * g
            }
        }
    }
}

/// Backward of softmax along the last axis: `dz = y ⊙ (dy − Σ dy ⊙ y)` per row.
public func softmaxBackwardLastAxis(y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dz: UnsafeMutablePointer<Float>,
                                    rows: Int, n: Int) {
    Parallel.forEach(rows, grain: max(1, 4096 / max(n, 1))) { range in
        for r in range {
            let o = y + r * n, g = dy + r * n, out = dz + r * n
            var dot: Float = 0
            for i in 0..<n { dot += o[i] * g[i] }
            for i in 0..<n { out[i] = o[i] * (g[i] - dot) }
        }
    }
}

/// Backward of Keras's sparsemax along the last axis: `dz = [y > 0]·dy − (Σ_{y>0} dy) · dτ/dz`, where `dτ/dz` for
/// the value of sorted rank `r` is the share of kept ranks at or after `r` (`sparsemaxThreshold`).
public func sparsemaxBackwardLastAxis(z: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                      dz: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
    Parallel.forEach(rows, grain: max(1, 4096 / max(n, 1))) { range in
        var sorted = [Float](repeating: 0, count: n)
        for r in range {
            let x = z + r * n, o = y + r * n, g = dy + r * n, out = dz + r * n
            let weight = sparsemaxThreshold(x, n: n, sorted: &sorted).weight
            // The rank of each value in decreasing order (ties take consecutive ranks, as a sort would).
            let order = (0..<n).sorted { x[$0] > x[$1] || (x[$0] == x[$1] && $0 < $1) }
            var passed: Float = 0
            for i in 0..<n where o[i] > 0 { passed += g[i] }
            for (rank, i) in order.enumerated() { out[i] = (o[i] > 0 ? g[i] : 0) - passed * weight[rank] }
        }
    }
}

/// Backward of log-softmax along the last axis: `dz = dy − exp(y) · Σ dy` per row.
public func logSoftmaxBackwardLastAxis(y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dz: UnsafeMutablePointer<Float>,
                                       rows: Int, n: Int) {
    Parallel.forEach(rows, grain: max(1, 4096 / max(n, 1))) { range in
        for r in range {
            let o = y + r * n, g = dy + r * n, out = dz + r * n
            var sum: Float = 0
            for i in 0..<n { sum += g[i] }
            for i in 0..<n { out[i] = g[i] - Foundation.exp(o[i]) * sum }
        }
    }
}

extension Tensor {
    /// Gradient of `activated(kind)`: `z` is this layer's input to the activation, `y` its output.
    public static func activationGradient(_ kind: ActivationKind, z: Tensor, y: Tensor, dy: Tensor) -> Tensor {
        if kind == .linear { return dy }
        var dz = Tensor(uninitializedShape: dy.shape)
        let o = dz.basePointer
        if kind == .softmax {
            let n = dy.shape.last ?? 1
            softmaxBackwardLastAxis(y: y.basePointer, dy: dy.basePointer, dz: o, rows: dy.count / Swift.max(n, 1), n: n)
        } else if kind == .sparsemax {
            let n = dy.shape.last ?? 1
            sparsemaxBackwardLastAxis(z: z.basePointer, y: y.basePointer, dy: dy.basePointer, dz: o, rows: dy.count / Swift.max(n, 1), n: n)
        } else if kind == .logSoftmax {
            let n = dy.shape.last ?? 1
            logSoftmaxBackwardLastAxis(y: y.basePointer, dy: dy.basePointer, dz: o, rows: dy.count / Swift.max(n, 1), n: n)
        } else {
            kind.backward(z: z.basePointer, y: y.basePointer, dy: dy.basePointer, dz: o, count: dy.count)
        }
        return dz
    }

    /// Sums this gradient over the axes that broadcasting expanded, returning a tensor of `shape`.
    public func reduced(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let r = shape.count
        let padded = [Int](repeating: 1, count: r - target.count) + target
        var out = Tensor(shape: target, repeating: 0)
        let o = out.basePointer, x = basePointer
        var tStrides = [Int](repeating: 0, count: r)
        var acc = 1
        for i in stride(from: r - 1, through: 0, by: -1) {
            tStrides[i] = padded[i] == 1 ? 0 : acc
            acc *= padded[i]
        }
        var index = [Int](repeating: 0, count: r)
        for flat in 0..<count {
            var off = 0
            for d in 0..<r { off += index[d] * tStrides[d] }
            o[off] += x[flat]
            var d = r - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }

    /// Splits along `axis` into pieces of the given sizes (the backward of `concatenate`).
    public func split(axis: Int, sizes: [Int]) -> [Tensor] {
        let ax = axis < 0 ? axis + rank : axis
        let outer = shape[..<ax].reduce(1, *)
        let inner = shape[(ax + 1)...].reduce(1, *)
        let total = shape[ax]
        var offset = 0
        return sizes.map { size in
            var s = shape
            s[ax] = size
            var part = Tensor(uninitializedShape: s)
            let p = part.basePointer, x = basePointer
            for i in 0..<outer {
                (p + i * size * inner).update(from: x + (i * total + offset) * inner, count: size * inner)
            }
            offset += size
            return part
        }
    }

    /// Backward of `upsampledNearest`: sums each `fh × fw` block.
    public func upsampleNearestBackward(_ fh: Int, _ fw: Int) -> Tensor {
        let (N, OH, OW, C) = (shape[0], shape[1], shape[2], shape[3])
        let H = OH / fh, W = OW / fw
        var out = Tensor(shape: [N, H, W, C], repeating: 0)
        let o = out.basePointer, g = basePointer
        for n in 0..<N { for y in 0..<OH { for x in 0..<OW {
            let src = g + ((n * OH + y) * OW + x) * C, dst = o + ((n * H + y / fh) * W + x / fw) * C
            for c in 0..<C { dst[c] += src[c] }
        } } }
        return out
    }

    /// Backward of `upsampledBilinear` to an input of `H × W`.
    public func upsampleBilinearBackward(_ fh: Int, _ fw: Int) -> Tensor {
        resizeBilinearBackward(height: shape[1] / fh, width: shape[2] / fw)
    }

    /// The gradient of `resizedBilinear` for an input of `H`×`W`, from this output gradient.
    public func resizeBilinearBackward(height H: Int, width W: Int) -> Tensor {
        let (N, OH, OW, C) = (shape[0], shape[1], shape[2], shape[3])
        var out = Tensor(shape: [N, H, W, C], repeating: 0)
        let o = out.basePointer, g = basePointer
        for n in 0..<N { for y in 0..<OH {
            let (y0, y1, dy) = Tensor.bilinearSource(y, in: H, out: OH)
            for x in 0..<OW {
                let (x0, x1, dx) = Tensor.bilinearSource(x, in: W, out: OW)
                let src = g + ((n * OH + y) * OW + x) * C
                for c in 0..<C {
                    let v = src[c]
                    o[((n * H + y0) * W + x0) * C + c] += v * (1 - dy) * (1 - dx)
                    o[((n * H + y0) * W + x1) * C + c] += v * (1 - dy) * dx
                    o[((n * H + y1) * W + x0) * C + c] += v * dy * (1 - dx)
                    o[((n * H + y1) * W + x1) * C + c] += v * dy * dx
                }
            }
        } }
        return out
    }

    /// The gradient of `resizedNearest` for an input of `H`×`W`.
    public func resizeNearestBackward(height H: Int, width W: Int) -> Tensor {
        let (N, OH, OW, C) = (shape[0], shape[1], shape[2], shape[3])
        var out = Tensor(shape: [N, H, W, C], repeating: 0)
        let o = out.basePointer, g = basePointer
        for n in 0..<N { for y in 0..<OH {
            let sy = Tensor.nearestSource(y, in: H, out: OH)
            for x in 0..<OW {
                let sx = Tensor.nearestSource(x, in: W, out: OW)
                let src = g + ((n * OH + y) * OW + x) * C, dst = o + ((n * H + sy) * W + sx) * C
                for c in 0..<C { dst[c] += src[c] }
            }
        } }
        return out
    }
}
