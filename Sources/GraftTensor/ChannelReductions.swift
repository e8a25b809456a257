/// Per-channel sums over every row of an NHWC buffer (all axes but the last), for batch normalisation.
/// Rows are summed in blocks of 128 in Float (vectorised over channels), blocks into Double totals, and the
/// work is split over the workers, each with its own totals.
public enum ChannelReductions {
    static let block = 128

    /// Sums `width` per-row accumulators: `accumulate(rows, acc)` adds the given rows into `acc[0..<width]`.
    @inline(__always)
    static func blockedSums(rows: Int, width: Int, _ accumulate: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) -> [Double] {
        let blocks = (rows + block - 1) / block
        let workers = min(Parallel.workers, max(1, blocks))
        var totals = [Double](repeating: 0, count: workers * width)
        totals.withUnsafeMutableBufferPointer { tp in
            guard let t = tp.baseAddress else { return }
            Parallel.forEach(workers, grain: 1) { workerRange in
                let acc = UnsafeMutablePointer<Float>.allocate(capacity: max(width, 1))
                defer { acc.deallocate() }
                for w in workerRange {
                    let total = t + w * width
                    for b in (blocks * w / workers)..<(blocks * (w + 1) / workers) {
                        acc.update(repeating: 0, count: width)
                        accumulate((b * block)..<min(rows, (b + 1) * block), acc)
                        for i in 0..<width { total[i] += Double(acc[i]) }
                    }
                }
            }
        }
        var result = [Double](repeating: 0, count: width)
        for w in 0..<workers { for i in 0..<width { result[i] += totals[w * width + i] } }
        return result
    }

    /// Per-channel sums (a bias's gradient from its output's).
    public static func sums(_ x: UnsafePointer<Float>, rows: Int, channels C: Int) -> [Double] {
        blockedSums(rows: rows, width: C) { range, acc in
            for r in range {
                let p = x + r * C
                for c in 0..<C { acc[c] += p[c] }
            }
        }
    }

    /// Per-channel mean and biased variance (two passes: the mean, then squared deviations from it).
    public static func meanAndVariance(_ x: UnsafePointer<Float>, rows: Int, channels C: Int) -> (mean: [Double], variance: [Double]) {
        let n = Double(max(rows, 1))
        let mean = sums(x, rows: rows, channels: C).map { $0 / n }
        let meanF = mean.map { Float($0) }
        let squares = meanF.withUnsafeBufferPointer { mp -> [Double] in
            guard let m = mp.baseAddress else { return [] }
            return blockedSums(rows: rows, width: C) { range, acc in
                for r in range {
                    let p = x + r * C
                    for c in 0..<C { let d = p[c] - m[c]; acc[c] += d * d }
                }
            }
        }
        return (mean, squares.map { $0 / n })
    }

    /// Per-channel `Σ a` and `Σ a·(b − center)` (batch-norm backward: `Σ dy` and `Σ dy·(x − mean)`, from which
    /// `Σ dy·x̂` follows without keeping x̂). No center: `Σ a·b`.
    public static func sumAndDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, centeredOn center: [Float]? = nil,
                                 rows: Int, channels C: Int) -> (sum: [Double], dot: [Double]) {
        let m = center ?? [Float](repeating: 0, count: C)
        let both = m.withUnsafeBufferPointer { mp -> [Double] in
            guard let mean = mp.baseAddress else { return [Double](repeating: 0, count: 2 * C) }
            return blockedSums(rows: rows, width: 2 * C) { range, acc in
                let dot = acc + C
                for r in range {
                    let pa = a + r * C, pb = b + r * C
                    for c in 0..<C { acc[c] += pa[c]; dot[c] += pa[c] * (pb[c] - mean[c]) }
                }
            }
        }
        return (Array(both[0..<C]), Array(both[C..<(2 * C)]))
    }
}

extension Tensor {
    /// `a · scaleA + (b − center) · scaleB + shift` per channel (last axis); `a` and `b` have the same shape.
    /// No center: `a · scaleA + b · scaleB + shift`.
    public static func channelCombine(_ a: Tensor, scaleA: [Float], _ b: Tensor, centeredOn center: [Float]? = nil,
                                      scaleB: [Float], shift: [Float]) -> Tensor {
        precondition(a.shape == b.shape, "channelCombine of \(a.shape) and \(b.shape)")
        let C = a.shape.last ?? 1
        let m = center ?? [Float](repeating: 0, count: C)
        precondition(scaleA.count == C && scaleB.count == C && shift.count == C && m.count == C, "combine over \(C) channels")
        var out = Tensor(uninitializedShape: a.shape)
        let o = out.basePointer, pa = a.basePointer, pb = b.basePointer
        let rows = a.count / Swift.max(C, 1)
        scaleA.withUnsafeBufferPointer { sa in
            scaleB.withUnsafeBufferPointer { sb in
                shift.withUnsafeBufferPointer { sh in
                    m.withUnsafeBufferPointer { mp in
                        guard let s1 = sa.baseAddress, let s2 = sb.baseAddress, let t = sh.baseAddress, let mean = mp.baseAddress else { return }
                        Parallel.forEach(rows, grain: Swift.max(1, 16384 / Swift.max(C, 1))) { range in
                            for r in range {
                                let x = pa + r * C, y = pb + r * C, z = o + r * C
                                for c in 0..<C { z[c] = x[c] * s1[c] + (y[c] - mean[c]) * s2[c] + t[c] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

extension Tensor {
    /// The sum over every axis but the last, per channel of the last axis.
    public func channelSums() -> [Float] {
        let C = Swift.max(shape.last ?? 1, 1)
        return withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return [Float](repeating: 0, count: C) }
            return ChannelReductions.sums(base, rows: count / C, channels: C).map { Float($0) }
        }
    }
}
