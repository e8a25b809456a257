import Foundation
import Testing
import CGraftSIMD
@testable import GraftTensor

/// Every fast kernel against a plain-loop reference, on random data and many geometries.
struct KernelTests {
    static func random(_ n: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
        }
    }

    static func maxError(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    /// Every parallel split of `sgemm` (rows, reduction, columns) with every transpose and a non-zero beta.
    @Test(arguments: [(600, 20, 100), (25, 16, 6400), (10, 1000, 300), (5, 7, 9)])   // rows, reduction, columns, single
    func gemmSplitsMatchReference(_ m: Int, _ n: Int, _ k: Int) {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = Self.random(m * k, seed: 3), b = Self.random(k * n, seed: 4)
            // Reference on the logical (untransposed) matrices.
            let aLogical = ta ? (0..<(m * k)).map { i in a[(i % k) * m + i / k] } : a
            let bLogical = tb ? (0..<(k * n)).map { i in b[(i % n) * k + i / n] } : b
            let ref = referenceGEMM(m: m, n: n, k: k, a: aLogical, b: bLogical)
            var c = [Float](repeating: 1, count: m * n)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 2, a: ap.baseAddress!, lda: ta ? m : k,
                              b: bp.baseAddress!, ldb: tb ? k : n, beta: 0.5, c: cp.baseAddress!, ldc: n)
                    }
                }
            }
            let expected = ref.map { 2 * $0 + 0.5 }
            #expect(Self.maxError(c, expected) < 1e-3 * Float(k).squareRoot(), "m\(m) n\(n) k\(k) ta\(ta) tb\(tb)")
        }
    }

    @Test func gemmMatchesReference() {
        for (m, n, k) in [(1, 1, 1), (7, 5, 3), (64, 33, 17), (3, 128, 300)] {
            let a = Self.random(m * k, seed: 1), b = Self.random(k * n, seed: 2)
            var c = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        sgemm(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
                    }
                }
            }
            #expect(Self.maxError(c, referenceGEMM(m: m, n: n, k: k, a: a, b: b)) < 1e-4)
        }
    }

    struct ConvCase: CustomTestStringConvertible, Sendable {
        let n, h, w, cin, cout, kh, kw, sh, sw, dh, dw, groups: Int
        let padding: Padding
        var testDescription: String {
            "\(h)x\(w)x\(cin)->\(cout) k\(kh)x\(kw) s\(sh)x\(sw) d\(dh)x\(dw) g\(groups) \(padding)"
        }
    }

    static let convCases: [ConvCase] = [
        ConvCase(n: 2, h: 7, w: 6, cin: 3, cout: 4, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, groups: 1, padding: .same),
        ConvCase(n: 1, h: 8, w: 8, cin: 5, cout: 6, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, groups: 1, padding: .valid),  // pointwise GEMM
        ConvCase(n: 2, h: 9, w: 7, cin: 4, cout: 3, kh: 1, kw: 1, sh: 2, sw: 2, dh: 1, dw: 1, groups: 1, padding: .same),
        ConvCase(n: 1, h: 11, w: 10, cin: 2, cout: 5, kh: 5, kw: 5, sh: 2, sw: 3, dh: 1, dw: 1, groups: 1, padding: .same),
        ConvCase(n: 1, h: 10, w: 9, cin: 3, cout: 2, kh: 3, kw: 2, sh: 1, sw: 1, dh: 2, dw: 3, groups: 1, padding: .valid),
        ConvCase(n: 2, h: 6, w: 6, cin: 4, cout: 6, kh: 2, kw: 2, sh: 1, sw: 1, dh: 1, dw: 1, groups: 2, padding: .same),  // even kernel
        ConvCase(n: 1, h: 5, w: 5, cin: 6, cout: 6, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, groups: 3, padding: .same),
        ConvCase(n: 3, h: 12, w: 12, cin: 8, cout: 16, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, groups: 1, padding: .same),
    ]

    @Test(arguments: convCases)
    func convolutionMatchesReference(_ c: ConvCase) {
        let g = ConvGeometry(batch: c.n, inChannels: c.cin, outChannels: c.cout, groups: c.groups,
                             h: AxisGeometry(input: c.h, kernel: c.kh, stride: c.sh, dilation: c.dh, padding: c.padding),
                             w: AxisGeometry(input: c.w, kernel: c.kw, stride: c.sw, dilation: c.dw, padding: c.padding))
        let x = Self.random(c.n * c.h * c.w * c.cin, seed: 3)
        let k = Self.random(c.kh * c.kw * (c.cin / c.groups) * c.cout, seed: 4)
        let b = Self.random(c.cout, seed: 5)
        var out = [Float](repeating: .nan, count: g.pixels * c.cout)
        x.withUnsafeBufferPointer { xp in
            k.withUnsafeBufferPointer { kp in
                b.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { op in
                        ConvolutionKernels.conv2dForward(g, input: xp.baseAddress!, kernel: kp.baseAddress!, bias: bp.baseAddress!, output: op.baseAddress!)
                    }
                }
            }
        }
        let ref = ConvolutionKernels.referenceConv2d(g, input: x, kernel: k, bias: b)
        #expect(Self.maxError(out, ref) < 1e-4)
        // The im2col + OpenBLAS fallback, and activations fused into the convolution (oneDNN post-ops for the
        // ReLU family, an in-place pass for the rest).
        #expect(Self.maxError(Self.convolve(g, x, k, b, path: .fallback), ref) < 1e-4)
        let activations: [ActivationKind] = [.relu, .relu6, .reluGeneral(maxValue: 0.5, negativeSlope: 0, threshold: 0), .swish, .tanh]
        for activation in activations {
            var expected = ref
            expected.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, count: $0.count) }
            #expect(Self.maxError(Self.convolve(g, x, k, b, path: .fused(activation)), expected) < 1e-4, "\(activation)")
        }
    }

    enum ConvPath { case fallback, fused(ActivationKind) }

    static func convolve(_ g: ConvGeometry, _ x: [Float], _ k: [Float], _ b: [Float], path: ConvPath) -> [Float] {
        var out = [Float](repeating: .nan, count: g.pixels * g.outChannels)
        x.withUnsafeBufferPointer { xp in
            k.withUnsafeBufferPointer { kp in
                b.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { op in
                        switch path {
                        case .fallback:
                            ConvolutionKernels.conv2dForwardFallback(g, input: xp.baseAddress!, kernel: kp.baseAddress!,
                                                                     bias: bp.baseAddress!, output: op.baseAddress!)
                        case .fused(let activation):
                            ConvolutionKernels.conv2dForward(g, input: xp.baseAddress!, kernel: kp.baseAddress!, bias: bp.baseAddress!,
                                                             activation: activation, output: op.baseAddress!)
                        }
                    }
                }
            }
        }
        return out
    }

    /// The math tests' inputs: a dense sweep of −110…95, tiny values of both signs, zeros and subnormals.
    static let mathSweep: [Float] = stride(from: -110, through: 95, by: 0.001).map { Float($0) }
        + (1...2000).map { Float($0) * 1e-7 } + (1...2000).map { -Float($0) * 1e-7 } + [0, -0, 1e-30, -1e-30, 1e-42]

    /// Relative error of a float result against Double (absolute, in units of the smallest normal, below it; exact
    /// for zeros, infinities and NaN).
    static func relative(_ got: Float, _ want: Double) -> Double {
        if want.isNaN { return got.isNaN ? 0 : .infinity }
        if want == 0 || want.isInfinite { return Double(got) == want ? 0 : .infinity }
        if abs(want) < Double(Float.leastNormalMagnitude) { return abs(Double(got) - want) / Double(Float.leastNormalMagnitude) }
        return abs(Double(got) - want) / abs(want)
    }

    /// Relative error of FastMath against Double, over a dense sweep and the edges of the float range.
    @Test func fastMathIsAccurate() {
        let xs = Self.mathSweep
        var worst = (exp: 0.0, tanh: 0.0, sigmoid: 0.0)
        let relative = Self.relative
        for x in xs {
            let d = Double(x)
            let e = Foundation.exp(d)
            worst.exp = max(worst.exp, e > Double(Float.greatestFiniteMagnitude) ? (FastMath.exp(x).isInfinite ? 0 : 1) : relative(FastMath.exp(x), e))
            worst.tanh = max(worst.tanh, relative(FastMath.tanh(x), Foundation.tanh(d)))
            worst.sigmoid = max(worst.sigmoid, relative(FastMath.sigmoid(x), 1 / (1 + Foundation.exp(-d))))
        }
        // Float's epsilon is 1.19e-7: these are a few units in the last place.
        #expect(worst.exp < 5e-7, "exp \(worst.exp)")
        #expect(worst.tanh < 5e-7, "tanh \(worst.tanh)")
        #expect(worst.sigmoid < 5e-7, "sigmoid \(worst.sigmoid)")
        #expect(FastMath.exp(.nan).isNaN && FastMath.tanh(.nan).isNaN && FastMath.sigmoid(.nan).isNaN)
        #expect(FastMath.exp(-.infinity) == 0 && FastMath.exp(.infinity) == .infinity)
        #expect(FastMath.tanh(.infinity) == 1 && FastMath.tanh(-.infinity) == -1)
        #expect(FastMath.sigmoid(-.infinity) == 0 && FastMath.sigmoid(.infinity) == 1)
    }

    /// erf (absolute error: Abramowitz and Stegun 7.1.26 promises 1.5e-7, float arithmetic adds a few 1e-7) and the
    /// exact GELU built on it, which is
    /// within 2e-7 · max(1, |x|) of the Double formula, scalar and on both array paths.
    @Test(arguments: [Int32(0), Int32(1)]) func erfAndGELUAreAccurate(level: Int32) {
        let xs = Self.mathSweep.filter { abs($0) < 1e6 } + [.nan, .infinity, -.infinity]
        var g = xs
        g.withUnsafeMutableBufferPointer { graft_simd_gelu($0.baseAddress!, $0.count, level) }
        var worstErf = 0.0, worstGELU = 0.0
        for (i, x) in xs.enumerated() where !x.isNaN {
            let d = Double(x)
            worstErf = max(worstErf, abs(Double(FastMath.erf(x)) - Foundation.erf(d)))
            let want = 0.5 * d * (1 + Foundation.erf(d / 2.0.squareRoot()))
            if x.isInfinite {   // +∞ → +∞; −∞ → −∞ · 0, NaN, as in the formula
                #expect(x > 0 ? g[i] == .infinity : g[i].isNaN, "gelu(\(x)) = \(g[i])")
                continue
            }
            worstGELU = max(worstGELU, abs(Double(g[i]) - want) / max(1, abs(d)))
        }
        #expect(worstErf < 5e-7, "erf \(worstErf)")   // the approximation's 1.5e-7 and float rounding
        #expect(worstGELU < 2e-7, "gelu \(worstGELU) at level \(level)")
        #expect(FastMath.erf(.nan).isNaN && FastMath.erf(.infinity) == 1 && FastMath.erf(-.infinity) == -1)
    }

    /// The array versions (CGraftSIMD), on the baseline path and on the AVX2 + FMA path when the CPU has it, meet
    /// the same bounds as FastMath's scalar functions and handle NaN and infinities alike.
    @Test(arguments: [Int32(0), Int32(1)]) func simdArrayMathIsAccurate(level: Int32) {
        let xs = Self.mathSweep + [.nan, .infinity, -.infinity]
        let relative = Self.relative
        var e = xs, t = xs, s = xs
        e.withUnsafeMutableBufferPointer { graft_simd_exp($0.baseAddress!, $0.count, level) }
        t.withUnsafeMutableBufferPointer { graft_simd_tanh($0.baseAddress!, $0.count, level) }
        s.withUnsafeMutableBufferPointer { graft_simd_sigmoid($0.baseAddress!, $0.count, level) }
        var worst = (exp: 0.0, tanh: 0.0, sigmoid: 0.0)
        for (i, x) in xs.enumerated() {
            let d = Double(x)
            let ex = Foundation.exp(d)
            worst.exp = max(worst.exp, ex > Double(Float.greatestFiniteMagnitude) ? (e[i] == .infinity ? 0 : 1) : relative(e[i], ex))
            worst.tanh = max(worst.tanh, relative(t[i], Foundation.tanh(d)))
            worst.sigmoid = max(worst.sigmoid, x.isNaN ? relative(s[i], .nan) : relative(s[i], 1 / (1 + Foundation.exp(-d))))
        }
        #expect(worst.exp < 5e-7, "exp \(worst.exp) at level \(level)")
        #expect(worst.tanh < 5e-7, "tanh \(worst.tanh) at level \(level)")
        #expect(worst.sigmoid < 5e-7, "sigmoid \(worst.sigmoid) at level \(level)")
        // Lengths that are not multiples of the vector width leave nothing past the end touched.
        var short: [Float] = [0.5, -0.5, 2, -2, 7, 42]
        short.withUnsafeMutableBufferPointer { graft_simd_tanh($0.baseAddress!, 5, level) }
        #expect(short[5] == 42 && abs(short[4] - Float(Foundation.tanh(7.0))) < 1e-6)
    }

    @Test func postOpsAreExactOnlyForTheReLUFamily() {
        #expect(DNNL.PostOp.exact(.relu) == .relu)
        #expect(DNNL.PostOp.exact(.relu6) == .clip(upper: 6))
        #expect(DNNL.PostOp.exact(.reluGeneral(maxValue: 6, negativeSlope: 0, threshold: 0)) == .clip(upper: 6))
        #expect(DNNL.PostOp.exact(.reluGeneral(maxValue: nil, negativeSlope: 0, threshold: 0)) == .relu)
        #expect(DNNL.PostOp.exact(.reluGeneral(maxValue: 6, negativeSlope: 0.1, threshold: 0)) == nil)
        #expect(DNNL.PostOp.exact(.swish) == nil && DNNL.PostOp.exact(.linear) == nil)
    }

    @Test func samePaddingSplitsLikeTensorFlow() {
        // in 5, kernel 2, stride 2: output 3, total pad 1, all after (TF puts the extra on the bottom/right).
        let a = AxisGeometry(input: 5, kernel: 2, stride: 2, padding: .same)
        #expect(a.output == 3 && a.padBefore == 0 && a.padAfter == 1)
        let b = AxisGeometry(input: 7, kernel: 4, stride: 1, padding: .same)
        #expect(b.output == 7 && b.padBefore == 1 && b.padAfter == 2)
        let v = AxisGeometry(input: 7, kernel: 3, stride: 2, dilation: 2, padding: .valid)
        #expect(v.output == 2)
        #expect(AxisGeometry(input: 2, kernel: 3, stride: 1, padding: .valid).output == 0)
    }

    @Test(arguments: [1, 2, 3])
    func depthwiseMatchesGroupedReference(_ multiplier: Int) {
        let (n, h, w, c) = (2, 7, 6, 5)
        for (stride, padding, dilation) in [(1, Padding.same, 1), (2, .same, 1), (1, .valid, 2)] {
            let g = ConvGeometry(batch: n, inChannels: c, outChannels: c * multiplier, groups: c,
                                 h: AxisGeometry(input: h, kernel: 3, stride: stride, dilation: dilation, padding: padding),
                                 w: AxisGeometry(input: w, kernel: 3, stride: stride, dilation: dilation, padding: padding))
            let x = Self.random(n * h * w * c, seed: 7), k = Self.random(9 * c * multiplier, seed: 8)
            let b = Self.random(c * multiplier, seed: 9)
            let clip = ActivationKind.reluGeneral(maxValue: 0.5, negativeSlope: 0, threshold: 0)
            let out = Self.depthwise(g, multiplier, x, k, b, direct: false)
            // A depthwise kernel [kH, kW, C, M] is a grouped HWIO kernel [kH, kW, 1, C·M] with C groups.
            let ref = ConvolutionKernels.referenceConv2d(g, input: x, kernel: k, bias: b)
            #expect(Self.maxError(out, ref) < 1e-4)
            // Graft's own loops (the fallback when oneDNN is off or refuses), and a fused ReLU clipped at 0.5.
            let direct = Self.depthwise(g, multiplier, x, k, b, direct: true)
            let clipped = Self.depthwise(g, multiplier, x, k, b, direct: false, activation: clip)
            #expect(Self.maxError(direct, ref) < 1e-4)
            #expect(Self.maxError(clipped, ref.map { min(max($0, 0), 0.5) }) < 1e-4)
        }
    }

    static func depthwise(_ g: ConvGeometry, _ multiplier: Int, _ x: [Float], _ k: [Float], _ b: [Float], direct: Bool,
                          activation: ActivationKind = .linear) -> [Float] {
        var out = [Float](repeating: .nan, count: g.pixels * g.outChannels)
        x.withUnsafeBufferPointer { xp in
            k.withUnsafeBufferPointer { kp in
                b.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { op in
                        if direct {
                            ConvolutionKernels.depthwiseDirect(g, multiplier: multiplier, input: xp.baseAddress!, kernel: kp.baseAddress!,
                                                               bias: bp.baseAddress!, output: op.baseAddress!)
                        } else {
                            ConvolutionKernels.depthwiseForward(g, multiplier: multiplier, input: xp.baseAddress!, kernel: kp.baseAddress!,
                                                                bias: bp.baseAddress!, activation: activation, output: op.baseAddress!)
                        }
                    }
                }
            }
        }
        return out
    }

    static func referencePool(_ kind: PoolKind, _ x: [Float], n: Int, c: Int, h: AxisGeometry, w: AxisGeometry) -> [Float] {
        var out: [Float] = []
        for b in 0..<n {
            for oh in 0..<h.output {
                for ow in 0..<w.output {
                    for ch in 0..<c {
                        var vals: [Float] = []
                        for kh in 0..<h.kernel {
                            for kw in 0..<w.kernel {
                                let ih = oh * h.stride - h.padBefore + kh, iw = ow * w.stride - w.padBefore + kw
                                if ih >= 0 && ih < h.input && iw >= 0 && iw < w.input {
                                    vals.append(x[((b * h.input + ih) * w.input + iw) * c + ch])
                                }
                            }
                        }
                        switch kind {
                        case .max: out.append(vals.max() ?? 0)
                        case .average: out.append(vals.reduce(0, +) / Float(vals.count))
                        case .sum: out.append(vals.reduce(0, +))
                        }
                    }
                }
            }
        }
        return out
    }

    @Test(arguments: [PoolKind.max, .average, .sum])
    func poolingMatchesReference(_ kind: PoolKind) {
        for (k, s, p) in [(2, 2, Padding.valid), (3, 2, .same), (3, 1, .same), (2, 3, .valid)] {
            let h = AxisGeometry(input: 7, kernel: k, stride: s, padding: p), w = AxisGeometry(input: 6, kernel: k, stride: s, padding: p)
            let x = Self.random(2 * 7 * 6 * 3, seed: 11)
            var out = [Float](repeating: .nan, count: 2 * h.output * w.output * 3)
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { op in
                    PoolingKernels.pool2dForward(kind, batch: 2, channels: 3, h: h, w: w, input: xp.baseAddress!, output: op.baseAddress!)
                }
            }
            #expect(Self.maxError(out, Self.referencePool(kind, x, n: 2, c: 3, h: h, w: w)) < 1e-5, "k\(k) s\(s) \(p)")
        }
    }

    @Test func globalPooling() {
        let x = Tensor(shape: [2, 2, 2, 2], values: [1, -1, 2, -2, 3, -3, 4, -4, 5, 6, 7, 8, 9, 10, 11, 12])
        var avg = [Float](repeating: 0, count: 4), mx = avg
        x.withUnsafeBufferPointer { xp in
            avg.withUnsafeMutableBufferPointer { PoolingKernels.globalPoolForward(.average, batch: 2, spatial: 4, channels: 2, input: xp.baseAddress!, output: $0.baseAddress!) }
            mx.withUnsafeMutableBufferPointer { PoolingKernels.globalPoolForward(.max, batch: 2, spatial: 4, channels: 2, input: xp.baseAddress!, output: $0.baseAddress!) }
        }
        #expect(avg == [2.5, -2.5, 8, 9])
        #expect(mx == [4, -1, 11, 12])
    }

    @Test func broadcastingElementwise() throws {
        let x = Tensor(shape: [2, 2, 2, 3], values: (0..<24).map(Float.init))
        let gate = Tensor(shape: [2, 1, 1, 3], values: [1, 2, 3, 10, 20, 30])
        let y = try x.elementwise(.multiply, gate)
        #expect(y.shape == [2, 2, 2, 3])
        #expect(y[0, 1, 1, 2] == 11 * 3)
        #expect(y[1, 0, 1, 1] == 16 * 20)
        let z = try x.elementwise(.add, Tensor(shape: [3], values: [100, 200, 300]))
        #expect(z[1, 1, 0, 0] == 18 + 100)
        #expect(throws: ShapeError.self) { try x.elementwise(.add, Tensor(shape: [2], values: [1, 2])) }
        #expect(Tensor.broadcastShape([4, 1, 3], [5, 1]) == [4, 5, 3])
    }

    @Test func concatenatePadCropUpsample() throws {
        let a = Tensor(shape: [1, 2, 2, 1], values: [1, 2, 3, 4]), b = Tensor(shape: [1, 2, 2, 2], values: [5, 6, 7, 8, 9, 10, 11, 12])
        let c = try Tensor.concatenate([a, b], axis: -1)
        #expect(c.shape == [1, 2, 2, 3])
        #expect(c.scalars == [1, 5, 6, 2, 7, 8, 3, 9, 10, 4, 11, 12])
        #expect(throws: ShapeError.self) { try Tensor.concatenate([a, Tensor(shape: [1, 3, 2, 1])], axis: -1) }
        let p = try a.padded2D(top: 1, bottom: 0, left: 0, right: 2)
        #expect(p.shape == [1, 3, 4, 1])
        #expect(p.scalars == [0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0])
        let cropped = try p.padded2D(top: -1, bottom: 0, left: 0, right: -2)
        #expect(cropped == a)
        #expect(try a.upsampledNearest(2, 1).scalars == [1, 2, 1, 2, 3, 4, 3, 4])
        let bl = try Tensor(shape: [1, 1, 2, 1], values: [0, 4]).upsampledBilinear(1, 2)
        #expect(bl.scalars == [0, 1, 3, 4])
    }

    @Test func softmaxIsStableAndNormalised() {
        let t = Tensor(shape: [2, 3], values: [1000, 1001, 1002, -5, 0, 5]).activated(.softmax)
        let s = t.scalars
        #expect(abs(s[0] + s[1] + s[2] - 1) < 1e-6)
        #expect(s.allSatisfy { $0.isFinite })
        #expect(abs(s[2] - 0.66524096) < 1e-6)
    }

    @Test func activationsAtKnownPoints() {
        func f(_ k: ActivationKind, _ x: [Float]) -> [Float] { Tensor(x).activated(k).scalars }
        #expect(f(.relu, [-1, 0, 2]) == [0, 0, 2])
        #expect(f(.relu6, [-1, 3, 9]) == [0, 3, 6])
        #expect(f(.hardSigmoid(keras2: true), [-3, 0, 1]) == [0, 0.5, 0.7])
        #expect(f(.hardSigmoid(keras2: false), [-3, 0, 3]) == [0, 0.5, 1])
        #expect(f(.leakyReLU(alpha: 0.1), [-2, 3]) == [-0.2, 3])
        // ReLU(max_value=4, negative_slope=0.1, threshold=0.5): below threshold slope·(x − t), above clipped.
        #expect(f(.reluGeneral(maxValue: 4, negativeSlope: 0.1, threshold: 0.5), [-1.5, 0.5, 2, 10]) == [-0.2, 0, 2, 4])
        let g = f(.gelu(approximate: false), [1])[0]
        #expect(abs(g - 0.8413447) < 1e-6)
        #expect(abs(f(.swish, [1])[0] - 0.7310586) < 1e-6)
    }

    @Test func copyOnWrite() {
        let a = Tensor(shape: [2], values: [1, 2])
        var b = a
        b[0] = 5
        #expect(a.scalars == [1, 2])
        #expect(b.scalars == [5, 2])
        let r = a.reshaped([1, 2])
        #expect(r.shape == [1, 2] && r.scalars == [1, 2])
    }
}
