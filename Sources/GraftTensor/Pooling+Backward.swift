extension PoolingKernels {
    /// Backward of `pool2dForward`: overwrites `gradInput` `[N, H, W, C]`. Max pooling routes each output's gradient
    /// to the first maximum in its window (as TensorFlow does); average divides it over the in-bounds elements.
    public static func pool2dBackward(_ kind: PoolKind, batch: Int, channels C: Int, h: AxisGeometry, w: AxisGeometry,
                                      input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
                                      gradInput: UnsafeMutablePointer<Float>) {
        let inH = h.input, inW = w.input, outH = h.output, outW = w.output
        gradInput.update(repeating: 0, count: batch * inH * inW * C)
        Parallel.forEach(batch, grain: 1) { images in
            // The first argmax of each window and channel, found with branch-free selects over the channels.
            let best = UnsafeMutablePointer<Int>.allocate(capacity: max(C, 1))
            let bestValue = UnsafeMutablePointer<Float>.allocate(capacity: max(C, 1))
            defer { best.deallocate(); bestValue.deallocate() }
            for n in images {
                let image = input + n * inH * inW * C
                let gradImage = gradInput + n * inH * inW * C
                for oh in 0..<outH {
                    let h0 = max(oh * h.stride - h.padBefore, 0)
                    let h1 = min(oh * h.stride - h.padBefore + (h.kernel - 1) * h.dilation + 1, inH)
                    for ow in 0..<outW {
                        let w0 = max(ow * w.stride - w.padBefore, 0)
                        let w1 = min(ow * w.stride - w.padBefore + (w.kernel - 1) * w.dilation + 1, inW)
                        let dy = gradOutput + ((n * outH + oh) * outW + ow) * C
                        if kind == .max {
                            guard h0 < h1 && w0 < w1 else { continue }
                            let first = (h0 * inW + w0) * C
                            for c in 0..<C { bestValue[c] = image[first + c]; best[c] = first + c }
                            var ih = h0
                            while ih < h1 {
                                var iw = w0
                                while iw < w1 {
                                    let off = (ih * inW + iw) * C
                                    let x = image + off
                                    for c in 0..<C {
                                        let v = x[c], better = v > bestValue[c]
                                        bestValue[c] = better ? v : bestValue[c]
                                        best[c] = better ? off + c : best[c]
                                    }
                                    iw += w.dilation
                                }
                                ih += h.dilation
                            }
                            for c in 0..<C { gradImage[best[c]] += dy[c] }
                        } else {
                            let count = ((h1 - h0 + h.dilation - 1) / h.dilation) * ((w1 - w0 + w.dilation - 1) / w.dilation)
                            let scale: Float = kind == .average ? 1 / Float(max(count, 1)) : 1
                            var ih = h0
                            while ih < h1 {
                                var iw = w0
                                while iw < w1 {
                                    let dx = gradInput + ((n * inH + ih) * inW + iw) * C
                                    for c in 0..<C { dx[c] += dy[c] * scale }
                                    iw += w.dilation
                                }
                                ih += h.dilation
                            }
                        }
                    }
                }
            }
        }
    }

    /// Backward of `globalPoolForward`: overwrites `gradInput` `[N, spatial, C]`.
    public static func globalPoolBackward(_ kind: PoolKind, batch: Int, spatial: Int, channels C: Int,
                                          input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
                                          gradInput: UnsafeMutablePointer<Float>) {
        gradInput.update(repeating: 0, count: batch * spatial * C)
        Parallel.forEach(batch, grain: 1) { images in
            for n in images {
                let dy = gradOutput + n * C
                if kind == .max {
                    for c in 0..<C {
                        var bi = 0
                        var bv = -Float.infinity
                        for s in 0..<spatial where input[(n * spatial + s) * C + c] > bv {
                            bv = input[(n * spatial + s) * C + c]
                            bi = s
                        }
                        gradInput[(n * spatial + bi) * C + c] = dy[c]
                    }
                } else {
                    let scale: Float = kind == .average ? 1 / Float(max(spatial, 1)) : 1
                    for s in 0..<spatial {
                        let dx = gradInput + (n * spatial + s) * C
                        for c in 0..<C { dx[c] = dy[c] * scale }
                    }
                }
            }
        }
    }
}
