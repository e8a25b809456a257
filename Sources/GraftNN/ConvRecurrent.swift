import GraftTensor

/// Keras `ConvLSTM2D` on `[N, T, H, W, C]` clips: an LSTM whose input and recurrent products are convolutions
/// (Shi et al. 2015). The input convolution (`kernel [kh, kw, C, 4·filters]`, Keras's strides, padding and
/// dilation, with the bias) runs on all frames at once; each step adds the recurrent convolution of h
/// (`recurrent_kernel [kh, kw, filters, 4·filters]`, stride 1, `same`), then every pixel's gates are an LSTM's
/// (i, f, c, o). Both convolutions are Graft's `Conv2D` (their oneDNN paths and backward passes); backpropagation
/// through time runs the recurrent one's backward per step. Dropout settings are read and not applied.
public final class ConvLSTM2D: Layer {
    public let name: String
    public var settings: Recurrent.Settings
    public let inputConv: Conv2D
    public let recurrentConv: Conv2D
    public var kerasClassName: String { "ConvLSTM2D" }
    private var outSpatial = [0, 0]

    public init(name: String, filters: Int, kernelSize: [Int], strides: [Int] = [1, 1], padding: Padding = .valid,
                dilation: [Int] = [1, 1], settings: Recurrent.Settings) {
        self.name = name
        var s = settings
        s.units = filters
        self.settings = s
        inputConv = Conv2D(name: "\(name)/input", config: Conv2DConfig(filters: 4 * filters, kernelSize: kernelSize, strides: strides,
                                                                      padding: padding, dilation: dilation, useBias: settings.useBias))
        recurrentConv = Conv2D(name: "\(name)/recurrent", config: Conv2DConfig(filters: 4 * filters, kernelSize: kernelSize,
                                                                              padding: .same, useBias: false))
    }

    public var filters: Int { settings.units }

    public var variables: [(key: String, variable: Variable)] {
        [("kernel", inputConv.kernel), ("recurrent_kernel", recurrentConv.kernel)] + (inputConv.bias.map { [("bias", $0)] } ?? [])
    }

    public func outputShapes(steps: Int) -> [[Int]] {
        let map = outSpatial + [filters]
        return [settings.returnSequences ? [steps] + map : map] + (settings.returnState ? [map, map] : [])
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 4)
        guard filters > 0, filters <= 1 << 16 else { throw LayerError(name, "filters \(filters) must be from 1 to 65536") }
        let out = try inputConv.build(inputShapes: [Array(s.dropFirst())], rng: &rng)
        guard out[0] > 0, out[1] > 0 else {
            throw LayerError(name, "needs frames of known size, got \(Shape.describe([-1] + s))")
        }
        outSpatial = [out[0], out[1]]
        _ = try recurrentConv.build(inputShapes: [outSpatial + [filters]], rng: &rng)
        if settings.unitForgetBias, let b = inputConv.bias {
            var v = b.value
            v.withUnsafeMutableBufferPointer { for j in filters..<(2 * filters) { $0[j] = 1 } }
            b.value = v
        }
        return Recurrent.packedShape(outputShapes(steps: s[0]))
    }

    struct Cache {
        let x: Tensor, zx: Tensor, inputCache: Any?
        let hPrev: [Tensor], recurrentCaches: [Any?], zh: [Tensor]
        let pre: [Float], act: [Float], cPrev: [Float], cNew: [Float]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try run(inputs[0], keep: false, context: nil).output
    }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        let r = try run(inputs[0], keep: true, context: &context)
        return (r.output, r.cache)
    }

    func run(_ x0: Tensor, keep: Bool, context: UnsafeMutablePointer<TrainingContext>?) throws -> (output: Tensor, cache: Cache?) {
        guard x0.rank == 5, x0.shape[0] > 0, x0.shape[1] > 0 else {
            throw LayerError(name, "expects [batch, frames, H, W, C] clips with at least one sample and one frame, got \(Shape.describe(x0.shape))")
        }
        let n = x0.shape[0], steps = x0.shape[1], f = filters, g = 4 * f
        let x = x0.reshaped([n * steps] + x0.shape.dropFirst(2))
        var inputCache: Any?
        let zx: Tensor
        if let context {
            (zx, inputCache) = try inputConv.forwardTrain([x], context: &context.pointee)
        } else {
            zx = try inputConv.forward([x], training: false)
        }
        let pixels = outSpatial[0] * outSpatial[1], rows = n * pixels
        var h = [Float](repeating: 0, count: rows * f), c = h
        var pre = keep ? [Float](repeating: 0, count: n * steps * pixels * g) : [], act = pre
        var cPrevAll = keep ? [Float](repeating: 0, count: n * steps * pixels * f) : [], cNewAll = cPrevAll
        var hPrevs: [Tensor] = [], caches: [Any?] = [], zhs: [Tensor] = []
        let outSteps = settings.returnSequences ? steps : 1
        var out = [Float](repeating: 0, count: n * outSteps * pixels * f)
        var z = [Float](repeating: 0, count: rows * g)
        var cn = [Float](repeating: 0, count: rows * f), ac = cn
        let zxv = zx.scalars
        for s in 0..<steps {
            let t = settings.goBackwards ? steps - 1 - s : s
            let hT = Tensor(shape: [n] + outSpatial + [f], values: h)
            let zh: Tensor
            if let context {
                let (y, cache) = try recurrentConv.forwardTrain([hT], context: &context.pointee)
                zh = y
                caches.append(cache)
            } else {
                zh = try recurrentConv.forward([hT], training: false)
            }
            if keep { hPrevs.append(hT); zhs.append(zh) }
            zh.withUnsafeBufferPointer { zp in
                for b in 0..<n {
                    let src = ((b * steps + t) * pixels) * g, dst = b * pixels * g
                    for j in 0..<(pixels * g) { z[dst + j] = zxv[src + j] + zp[dst + j] }
                }
            }
            // Rows in time-major cache order: sample b, frame t, pixel p.
            func cacheRow(_ r: Int) -> Int { let b = r / pixels, p = r % pixels; return (b * steps + t) * pixels + p }
            if keep { for r in 0..<rows { let d = cacheRow(r); for j in 0..<g { pre[d * g + j] = z[r * g + j] } } }
            z.withUnsafeMutableBufferPointer { zp in
                let base = zp.baseAddress!
                for r in 0..<rows {
                    let row = base + r * g
                    settings.recurrentActivation.applySerial(row, count: 2 * f)
                    settings.activation.applySerial(row + 2 * f, count: f)
                    settings.recurrentActivation.applySerial(row + 3 * f, count: f)
                }
            }
            for r in 0..<rows { for j in 0..<f { cn[r * f + j] = z[r * g + f + j] * c[r * f + j] + z[r * g + j] * z[r * g + 2 * f + j] } }
            ac = cn
            ac.withUnsafeMutableBufferPointer { settings.activation.applySerial($0.baseAddress!, count: rows * f) }
            if keep {
                for r in 0..<rows {
                    let d = cacheRow(r)
                    for j in 0..<g { act[d * g + j] = z[r * g + j] }
                    for j in 0..<f { cPrevAll[d * f + j] = c[r * f + j]; cNewAll[d * f + j] = cn[r * f + j] }
                }
            }
            c = cn
            for r in 0..<rows { for j in 0..<f { h[r * f + j] = z[r * g + 3 * f + j] * ac[r * f + j] } }
            if settings.returnSequences {
                for b in 0..<n { for j in 0..<(pixels * f) { out[(b * steps + s) * pixels * f + j] = h[b * pixels * f + j] } }
            }
        }
        if !settings.returnSequences { out = h }
        let map = outSpatial + [f]
        let main = Tensor(shape: [n] + (settings.returnSequences ? [steps] : []) + map, values: out)
        let y = settings.returnState
            ? Recurrent.pack([main, Tensor(shape: [n] + map, values: h), Tensor(shape: [n] + map, values: c)]) : main
        let cache = keep ? Cache(x: x, zx: zx, inputCache: inputCache, hPrev: hPrevs, recurrentCaches: caches, zh: zhs,
                                 pre: pre, act: act, cPrev: cPrevAll, cNew: cNewAll) : nil
        return (y, cache)
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        guard let cache = cache as? Cache else { throw LayerError(name, "backward needs a training-mode forward first") }
        let n = inputs[0].shape[0], steps = inputs[0].shape[1], f = filters, g = 4 * f
        let pixels = outSpatial[0] * outSpatial[1], rows = n * pixels
        var dOut: [Float], dh: [Float], dc = [Float](repeating: 0, count: rows * f)
        if settings.returnState {
            let parts = Recurrent.unpack(gradOutput, shapes: outputShapes(steps: steps))
            (dOut, dh, dc) = (parts[0].scalars, parts[1].scalars, parts[2].scalars)
        } else {
            dOut = gradOutput.scalars
            dh = [Float](repeating: 0, count: rows * f)
        }
        if !settings.returnSequences { for i in 0..<(rows * f) { dh[i] += dOut[i] } }
        var dzx = [Float](repeating: 0, count: n * steps * pixels * g)
        var dz = [Float](repeating: 0, count: rows * g)
        var da = [Float](repeating: 0, count: g), tc = [Float](repeating: 0, count: f), dtc = tc, dcn = tc, cn = tc
        let act = settings.activation, ract = settings.recurrentActivation
        for s in stride(from: steps - 1, through: 0, by: -1) {
            let t = settings.goBackwards ? steps - 1 - s : s
            if settings.returnSequences {
                for b in 0..<n { for j in 0..<(pixels * f) { dh[b * pixels * f + j] += dOut[(b * steps + s) * pixels * f + j] } }
            }
            var dcPrev = [Float](repeating: 0, count: rows * f)
            for r in 0..<rows {
                let d = (r / pixels * steps + t) * pixels + r % pixels
                let (row, srow) = (d * g, d * f)
                for j in 0..<f { cn[j] = cache.cNew[srow + j]; tc[j] = cn[j] }
                tc.withUnsafeMutableBufferPointer { act.applySerial($0.baseAddress!, count: f) }
                cache.pre.withUnsafeBufferPointer { pre in
                    cache.act.withUnsafeBufferPointer { a in
                        let zp = pre.baseAddress! + row, y = a.baseAddress! + row
                        for j in 0..<f { dtc[j] = dh[r * f + j] * y[3 * f + j] }
                        act.backward(z: cn, y: tc, dy: dtc, dz: &dcn, count: f)
                        for j in 0..<f {
                            let dct = dc[r * f + j] + dcn[j]
                            da[j] = dct * y[2 * f + j]
                            da[f + j] = dct * cache.cPrev[srow + j]
                            da[2 * f + j] = dct * y[j]
                            da[3 * f + j] = dh[r * f + j] * tc[j]
                            dcPrev[r * f + j] = dct * y[f + j]
                        }
                        dz.withUnsafeMutableBufferPointer { o in
                            let out = o.baseAddress! + r * g
                            da.withUnsafeBufferPointer { dp in
                                ract.backward(z: zp, y: y, dy: dp.baseAddress!, dz: out, count: 2 * f)
                                act.backward(z: zp + 2 * f, y: y + 2 * f, dy: dp.baseAddress! + 2 * f, dz: out + 2 * f, count: f)
                                ract.backward(z: zp + 3 * f, y: y + 3 * f, dy: dp.baseAddress! + 3 * f, dz: out + 3 * f, count: f)
                            }
                        }
                    }
                }
                for j in 0..<g { dzx[row + j] = dz[r * g + j] }
            }
            let dzT = Tensor(shape: [n] + outSpatial + [g], values: dz)
            let grads = try recurrentConv.backward([cache.hPrev[s]], output: cache.zh[s], cache: cache.recurrentCaches[s], gradOutput: dzT,
                                                   needsInputGradients: [true], preActivation: false)
            dh = grads[0]?.scalars ?? [Float](repeating: 0, count: rows * f)
            dc = dcPrev
        }
        let dzxT = Tensor(shape: cache.zx.shape, values: dzx)
        let dx = try inputConv.backward([cache.x], output: cache.zx, cache: cache.inputCache, gradOutput: dzxT,
                                        needsInputGradients: [needsInputGradients.first ?? false], preActivation: false)
        return [dx[0].map { $0.reshaped(inputs[0].shape) }]
    }

    public var backwardReadsOutput: Bool { false }
}
