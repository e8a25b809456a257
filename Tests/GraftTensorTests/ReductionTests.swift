import Testing
@testable import GraftTensor

/// Batch-norm reductions, the fused per-channel combine and the buffer pool.
struct ReductionTests {
    /// Row counts around the 128-row block and the worker split, odd channel counts.
    @Test(arguments: [(1, 3), (127, 5), (129, 16), (1000, 7), (6272, 33)])
    func meanVarianceAndDotMatchDoubleReference(_ rows: Int, _ C: Int) {
        let x = KernelTests.random(rows * C, seed: 11).map { $0 * 3 + 0.5 }
        let y = KernelTests.random(rows * C, seed: 12)
        var mean = [Double](repeating: 0, count: C), variance = mean, sum = mean, dot = mean, centered = mean
        let center = (0..<C).map { Float($0) * 0.25 - 0.5 }
        for r in 0..<rows { for c in 0..<C { mean[c] += Double(x[r * C + c]) } }
        mean = mean.map { $0 / Double(rows) }
        for r in 0..<rows { for c in 0..<C {
            let d = Double(x[r * C + c]) - mean[c]
            variance[c] += d * d
            sum[c] += Double(y[r * C + c])
            dot[c] += Double(y[r * C + c]) * Double(x[r * C + c])
            centered[c] += Double(y[r * C + c]) * (Double(x[r * C + c]) - Double(center[c]))
        } }
        variance = variance.map { $0 / Double(rows) }
        let (m, v) = x.withUnsafeBufferPointer { ChannelReductions.meanAndVariance($0.baseAddress!, rows: rows, channels: C) }
        let (s, d) = y.withUnsafeBufferPointer { yp in
            x.withUnsafeBufferPointer { xp in ChannelReductions.sumAndDot(yp.baseAddress!, xp.baseAddress!, rows: rows, channels: C) }
        }
        let (s2, dc) = y.withUnsafeBufferPointer { yp in
            x.withUnsafeBufferPointer { xp in
                ChannelReductions.sumAndDot(yp.baseAddress!, xp.baseAddress!, centeredOn: center, rows: rows, channels: C)
            }
        }
        for c in 0..<C {
            #expect(abs(m[c] - mean[c]) <= 1e-5 * max(1, abs(mean[c])))
            #expect(abs(v[c] - variance[c]) <= 1e-5 * max(1, variance[c]))
            #expect(abs(s[c] - sum[c]) <= 1e-4 * max(1, Double(rows).squareRoot()))
            #expect(abs(d[c] - dot[c]) <= 1e-4 * max(1, Double(rows).squareRoot()))
            #expect(s2[c] == s[c])
            #expect(abs(dc[c] - centered[c]) <= 1e-4 * max(1, Double(rows).squareRoot()))
        }
    }

    @Test func channelCombineMatchesFormula() {
        let shape = [3, 5, 7, 6]
        let n = shape.reduce(1, *)
        let a = Tensor(shape: shape, values: KernelTests.random(n, seed: 1))
        let b = Tensor(shape: shape, values: KernelTests.random(n, seed: 2))
        let sa: [Float] = [1, -2, 0.5, 3, 0, 1.5], sb: [Float] = [0.25, 1, -1, 2, 4, 0], t: [Float] = [0, 1, 2, -3, 0.5, 9]
        let out = Tensor.channelCombine(a, scaleA: sa, b, scaleB: sb, shift: t).scalars
        let m: [Float] = [0.5, -1, 0, 2, 0.125, -3]
        let centered = Tensor.channelCombine(a, scaleA: sa, b, centeredOn: m, scaleB: sb, shift: t).scalars
        let av = a.scalars, bv = b.scalars
        for i in 0..<n {
            let c = i % 6
            #expect(abs(out[i] - (av[i] * sa[c] + bv[i] * sb[c] + t[c])) <= 1e-6)
            #expect(abs(centered[i] - (av[i] * sa[c] + (bv[i] - m[c]) * sb[c] + t[c])) <= 1e-5)
        }
    }

    @Test func bufferPoolClassesAndReuse() {
        var last = 0
        for bytes in stride(from: 1, through: 50_000_000, by: 99_991) {
            let size = BufferPool.sizeClass(bytes)
            #expect(size >= bytes)
            if bytes > BufferPool.minimumBytes { #expect(Double(size) <= Double(bytes) * 1.25 + 1) }
            #expect(size >= last)   // monotone
            last = size
        }
        // A released buffer of a class comes back for the next request of that class (unless the pool is off).
        guard BufferPool.limit >= 4 << 20 else { return }
        let p = BufferPool.allocate(byteCount: 3 << 20)
        BufferPool.release(p, byteCount: 3 << 20)
        let q = BufferPool.allocate(byteCount: (3 << 20) - 100)
        #expect(q == p)
        BufferPool.release(q, byteCount: (3 << 20) - 100)
        // Tensors use the pool and still start from the values they are given.
        let t = Tensor(shape: [512, 512], repeating: 2)
        #expect(t.scalars.allSatisfy { $0 == 2 })
    }
}
