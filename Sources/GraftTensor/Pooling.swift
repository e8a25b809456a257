/// The reduction a pooling window applies.
public enum PoolKind: String, Sendable, Codable {
    case max, average, sum
}

/// Pooling kernels over NHWC buffers.
public enum PoolingKernels {
    /// 2-D pooling. `average` divides by the number of in-bounds elements (TensorFlow/Keras `same` padding
    /// does not count the padding); `max` ignores padding. Input `[N, H, W, C]`, output `[N, outH, outW, C]`.
    public static func pool2dForward(_ kind: PoolKind, batch: Int, channels C: Int, h: AxisGeometry, w: AxisGeometry,
                                     input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let inH = h.input, inW = w.input, outH = h.output, outW = w.output
        Parallel.forEach(batch * outH, grain: 4) { range in
            for r in range {
                let n = r / outH, oh = r % outH
                let h0 = max(oh * h.stride - h.padBefore, 0)
                let h1 = min(oh * h.stride - h.padBefore + (h.kernel - 1) * h.dilation + 1, inH)
                for ow in 0..<outW {
                    let out = output + ((n * outH + oh) * outW + ow) * C
                    let w0 = max(ow * w.stride - w.padBefore, 0)
                    let w1 = min(ow * w.stride - w.padBefore + (w.kernel - 1) * w.dilation + 1, inW)
                    out.update(repeating: kind == .max ? -Float.infinity : 0, count: C)
                    var n_ = 0
                    var ih = h0
                    while ih < h1 {
                        var iw = w0
                        while iw < w1 {
                            let x = input + ((n * inH + ih) * inW + iw) * C
                            if kind == .max {
                                for c in 0..<C { let v = x[c], o = out[c]; out[c] = v > o || v != v ? v : o }
                            } else {
                                for c in 0..<C { out[c] += x[c] }
                            }
                            n_ += 1
                            iw += w.dilation
                        }
                        ih += h.dilation
                    }
                    if kind == .average && n_ > 0 {
                        let inv = 1 / Float(n_)
                        for c in 0..<C { out[c] *= inv }
                    }
                }
            }
        }
    }

    /// Global pooling over height and width: input `[N, H·W, C]` (any spatial shape flattened), output `[N, C]`.
    public static func globalPoolForward(_ kind: PoolKind, batch: Int, spatial: Int, channels C: Int,
                                         input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        Parallel.forEach(batch, grain: 1) { range in
            for n in range {
                let out = output + n * C
                out.update(repeating: kind == .max ? -Float.infinity : 0, count: C)
                for s in 0..<spatial {
                    let x = input + (n * spatial + s) * C
                    if kind == .max {
                        for c in 0..<C { let v = x[c], o = out[c]; out[c] = v > o || v != v ? v : o }
                    } else {
                        for c in 0..<C { out[c] += x[c] }
                    }
                }
                if kind == .average && spatial > 0 {
                    let inv = 1 / Float(spatial)
                    for c in 0..<C { out[c] *= inv }
                }
            }
        }
    }
}
