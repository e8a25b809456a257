import Foundation
import GraftCore

/// Binary element-wise operations (NumPy broadcasting).
public enum BinaryOp: String, Sendable, Codable {
    case add, subtract, multiply, divide, maximum, minimum

    @inline(__always) func apply(_ a: Float, _ b: Float) -> Float {
        switch self {
        case .add: return a + b
        case .subtract: return a - b
        case .multiply: return a * b
        case .divide: return a / b
        case .maximum: return Swift.max(a, b)
        case .minimum: return Swift.min(a, b)
        }
    }

    /// `o[i] = a[i] ∘ b[i]` for `i < n`, one loop per operation so each compiles to SIMD code (a switch per
    /// element had kept the residual additions of ResNet50 scalar).
    @inline(__always) func apply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .add: for i in 0..<n { o[i] = a[i] + b[i] }
        case .subtract: for i in 0..<n { o[i] = a[i] - b[i] }
        case .multiply: for i in 0..<n { o[i] = a[i] * b[i] }
        case .divide: for i in 0..<n { o[i] = a[i] / b[i] }
        case .maximum: for i in 0..<n { o[i] = Swift.max(a[i], b[i]) }
        case .minimum: for i in 0..<n { o[i] = Swift.min(a[i], b[i]) }
        }
    }
}

/// Shape errors from tensor operations (user data can cause them, so they are thrown, not trapped).
public struct ShapeError: GraftError {
    public let description: String
    public init(_ description: String) { self.description = description }
    public var context: ErrorContext { ErrorContext() }
}

extension Tensor {
    /// NumPy broadcasting of two shapes, or nil when they are incompatible.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let r = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            guard da == db || da == 1 || db == 1 else { return nil }
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// `op(self, other)` with broadcasting.
    /// `then`: an element-wise activation applied to the result while it is still in cache (inference fusion of
    /// a residual addition and the ReLU after it).
    public func elementwise(_ op: BinaryOp, _ other: Tensor, then activation: ActivationKind = .linear) throws -> Tensor {
        guard let outShape = Tensor.broadcastShape(shape, other.shape) else {
            throw ShapeError("cannot broadcast \(Shape.describe(shape)) with \(Shape.describe(other.shape))")
        }
        var out = Tensor(uninitializedShape: outShape)
        let o = out.basePointer, a = basePointer, b = other.basePointer
        if shape == other.shape {
            Parallel.forEach(count, grain: 32768) { r in
                if activation == .linear {
                    op.apply(a + r.lowerBound, b + r.lowerBound, o + r.lowerBound, r.count)
                    return
                }
                var lo = r.lowerBound
                while lo < r.upperBound {
                    let n = Swift.min(4096, r.upperBound - lo)
                    op.apply(a + lo, b + lo, o + lo, n)
                    activation.applySerial(o + lo, count: n)
                    lo += n
                }
            }
            return out
        }
        let r = outShape.count
        func strides(_ s: [Int]) -> [Int] {
            let padded = [Int](repeating: 1, count: r - s.count) + s
            var st = [Int](repeating: 0, count: r)
            var acc = 1
            for i in stride(from: r - 1, through: 0, by: -1) {
                st[i] = padded[i] == 1 ? 0 : acc
                acc *= padded[i]
            }
            return st
        }
        let sa = strides(shape), sb = strides(other.shape)
        let inner = outShape.last ?? 1
        let rows = out.count / Swift.max(inner, 1)
        let ia = sa.last ?? 0, ib = sb.last ?? 0
        Parallel.forEach(rows, grain: Swift.max(1, 16384 / Swift.max(inner, 1))) { range in
            for row in range {
                var rem = row, offA = 0, offB = 0
                for d in stride(from: r - 2, through: 0, by: -1) {
                    let idx = rem % outShape[d]
                    rem /= outShape[d]
                    offA += idx * sa[d]
                    offB += idx * sb[d]
                }
                let po = o + row * inner
                if ia == 1 && ib == 1 {
                    op.apply(a + offA, b + offB, po, inner)
                } else {
                    for j in 0..<inner { po[j] = op.apply(a[offA + j * ia], b[offB + j * ib]) }
                }
                activation.applySerial(po, count: inner)
            }
        }
        return out
    }

    /// `self * scale[c] + shift[c]` over the last axis (BatchNormalization at inference, Rescaling, Normalization).
    public func channelAffine(scale: [Float], shift: [Float]) -> Tensor {
        let C = shape.last ?? 1
        precondition(scale.count == C && shift.count == C, "affine over \(C) channels")
        var out = Tensor(uninitializedShape: shape)
        let o = out.basePointer, x = basePointer
        let rows = count / Swift.max(C, 1)
        scale.withUnsafeBufferPointer { sc in
            shift.withUnsafeBufferPointer { sh in
                let s = sc.baseAddress!, t = sh.baseAddress!
                Parallel.forEach(rows, grain: Swift.max(1, 16384 / Swift.max(C, 1))) { range in
                    for r in range {
                        let px = x + r * C, po = o + r * C
                        for c in 0..<C { po[c] = px[c] * s[c] + t[c] }
                    }
                }
            }
        }
        return out
    }

    /// The activation applied element-wise (softmax and log-softmax along the last axis).
    public func activated(_ kind: ActivationKind) -> Tensor {
        if kind == .linear { return self }
        var out = self
        out.makeUnique()
        let n = Swift.max(shape.last ?? 1, 1)
        kind.apply(out.basePointer, rows: count / n, n: n)
        return out
    }

    /// Concatenation of tensors of equal rank along `axis` (negative counts from the end).
    public static func concatenate(_ parts: [Tensor], axis: Int) throws -> Tensor {
        guard let first = parts.first else { throw ShapeError("nothing to concatenate") }
        let r = first.rank
        let ax = axis < 0 ? axis + r : axis
        guard ax >= 0 && ax < r else { throw ShapeError("axis \(axis) out of range for rank \(r)") }
        var outShape = first.shape
        outShape[ax] = 0
        for p in parts {
            guard p.rank == r, (0..<r).allSatisfy({ $0 == ax || p.shape[$0] == first.shape[$0] }) else {
                throw ShapeError("cannot concatenate \(parts.map { Shape.describe($0.shape) }.joined(separator: ", ")) on axis \(axis)")
            }
            outShape[ax] += p.shape[ax]
        }
        let outer = first.shape[..<ax].reduce(1, *)
        let innerOf = { (t: Tensor) in t.shape[ax...].reduce(1, *) }
        let outInner = outShape[ax...].reduce(1, *)
        var out = Tensor(uninitializedShape: outShape)
        let o = out.basePointer
        var offset = 0
        for p in parts {
            let inner = innerOf(p)
            let src = p.basePointer
            Parallel.forEach(outer, grain: Swift.max(1, 16384 / Swift.max(inner, 1))) { range in
                for i in range { (o + i * outInner + offset).update(from: src + i * inner, count: inner) }
            }
            offset += inner
        }
        return out
    }

    /// Zero-pads (positive) or crops (negative) the two spatial axes of an NHWC tensor.
    public func padded2D(top: Int, bottom: Int, left: Int, right: Int, value: Float = 0) throws -> Tensor {
        guard rank == 4 else { throw ShapeError("padding/cropping needs NHWC, got \(Shape.describe(shape))") }
        let (N, H, W, C) = (shape[0], shape[1], shape[2], shape[3])
        let oh = H + top + bottom, ow = W + left + right
        guard oh > 0, ow > 0 else { throw ShapeError("cropping \(Shape.describe(shape)) leaves nothing") }
        var out = Tensor(shape: [N, oh, ow, C], repeating: value)
        let o = out.basePointer, x = basePointer
        Parallel.forEach(N * oh, grain: 8) { range in
            for r in range {
                let n = r / oh, y = r % oh
                let iy = y - top
                guard iy >= 0 && iy < H else { continue }
                let x0 = Swift.max(0, left), x1 = Swift.min(ow, W + left)
                guard x0 < x1 else { continue }
                (o + ((n * oh + y) * ow + x0) * C).update(from: x + ((n * H + iy) * W + (x0 - left)) * C, count: (x1 - x0) * C)
            }
        }
        return out
    }

    /// Nearest-neighbour upsampling of an NHWC tensor by integer factors.
    public func upsampledNearest(_ fh: Int, _ fw: Int) throws -> Tensor {
        guard rank == 4 else { throw ShapeError("upsampling needs NHWC, got \(Shape.describe(shape))") }
        let (N, H, W, C) = (shape[0], shape[1], shape[2], shape[3])
        var out = Tensor(uninitializedShape: [N, H * fh, W * fw, C])
        let o = out.basePointer, x = basePointer
        Parallel.forEach(N * H * fh, grain: 8) { range in
            for r in range {
                let n = r / (H * fh), y = r % (H * fh)
                for xo in 0..<(W * fw) {
                    (o + ((n * H * fh + y) * W * fw + xo) * C).update(from: x + ((n * H + y / fh) * W + xo / fw) * C, count: C)
                }
            }
        }
        return out
    }

    /// Bilinear upsampling (Keras `UpSampling2D(interpolation="bilinear")`, half-pixel centres, no antialias).
    public func upsampledBilinear(_ fh: Int, _ fw: Int) throws -> Tensor {
        guard rank == 4 else { throw ShapeError("upsampling needs NHWC, got \(Shape.describe(shape))") }
        return try resizedBilinear(height: shape[1] * fh, width: shape[2] * fw)
    }

    /// Where output index `i` of `outSize` reads from an axis of `inSize` (TensorFlow's half-pixel centres):
    /// the two neighbours and the weight of the second.
    @inline(__always)
    static func bilinearSource(_ i: Int, in inSize: Int, out outSize: Int) -> (Int, Int, Float) {
        let s = Swift.max((Float(i) + 0.5) * (Float(inSize) / Float(outSize)) - 0.5, 0)
        let i0 = Swift.min(Int(s), inSize - 1)
        return (i0, Swift.min(i0 + 1, inSize - 1), s - Float(i0))
    }

    /// Bilinear resizing of NHWC images to `height`×`width` as `tf.image.resize` does it (half-pixel centres, no
    /// antialiasing): Keras's `Resizing` and bilinear `UpSampling2D`.
    public func resizedBilinear(height OH: Int, width OW: Int) throws -> Tensor {
        guard rank == 4 else { throw ShapeError("resizing needs NHWC, got \(Shape.describe(shape))") }
        let (N, H, W, C) = (shape[0], shape[1], shape[2], shape[3])
        guard OH > 0, OW > 0, H > 0, W > 0 else { throw ShapeError("cannot resize \(Shape.describe(shape)) to \(OH)×\(OW)") }
        var out = Tensor(uninitializedShape: [N, OH, OW, C])
        let o = out.basePointer, x = basePointer
        Parallel.forEach(N * OH, grain: 8) { range in
            for r in range {
                let n = r / OH, y = r % OH
                let (y0, y1, dy) = Tensor.bilinearSource(y, in: H, out: OH)
                for xo in 0..<OW {
                    let (x0, x1, dx) = Tensor.bilinearSource(xo, in: W, out: OW)
                    let p00 = x + ((n * H + y0) * W + x0) * C, p01 = x + ((n * H + y0) * W + x1) * C
                    let p10 = x + ((n * H + y1) * W + x0) * C, p11 = x + ((n * H + y1) * W + x1) * C
                    let po = o + ((n * OH + y) * OW + xo) * C
                    for c in 0..<C {
                        let top = p00[c] + (p01[c] - p00[c]) * dx
                        let bot = p10[c] + (p11[c] - p10[c]) * dx
                        po[c] = top + (bot - top) * dy
                    }
                }
            }
        }
        return out
    }

    /// Nearest-neighbour resizing as `tf.image.resize(method="nearest")` does it: output `i` reads input
    /// `floor((i + 0.5) · in / out)`.
    public func resizedNearest(height OH: Int, width OW: Int) throws -> Tensor {
        guard rank == 4 else { throw ShapeError("resizing needs NHWC, got \(Shape.describe(shape))") }
        let (N, H, W, C) = (shape[0], shape[1], shape[2], shape[3])
        guard OH > 0, OW > 0, H > 0, W > 0 else { throw ShapeError("cannot resize \(Shape.describe(shape)) to \(OH)×\(OW)") }
        var out = Tensor(uninitializedShape: [N, OH, OW, C])
        let o = out.basePointer, x = basePointer
        for n in 0..<N { for y in 0..<OH {
            let sy = Tensor.nearestSource(y, in: H, out: OH)
            for xo in 0..<OW {
                let sx = Tensor.nearestSource(xo, in: W, out: OW)
                (o + ((n * OH + y) * OW + xo) * C).update(from: x + ((n * H + sy) * W + sx) * C, count: C)
            }
        } }
        return out
    }

    @inline(__always)
    static func nearestSource(_ i: Int, in inSize: Int, out outSize: Int) -> Int {
        Swift.min(Int((Float(i) + 0.5) * (Float(inSize) / Float(outSize))), inSize - 1)
    }
}
