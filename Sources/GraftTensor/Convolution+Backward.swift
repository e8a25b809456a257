import Foundation

extension ConvolutionKernels {
    /// Adds the rows of `cols` (as im2col laid them out for output pixels `rows`, channels `[c0, c0 + cg)`) back into
    /// `gradInput` `[N, H, W, Cin]` — the adjoint of `im2col`.
    public static func col2imAdd(_ g: ConvGeometry, cols: UnsafePointer<Float>, rows: Range<Int>,
                                 channelOffset c0: Int, channels cg: Int, gradInput: UnsafeMutablePointer<Float>) {
        let inH = g.h.input, inW = g.w.input, C = g.inChannels
        let outH = g.h.output, outW = g.w.output
        let patch = g.h.kernel * g.w.kernel * cg
        for r in rows {
            let n = r / (outH * outW)
            let rem = r % (outH * outW)
            let oh = rem / outW, ow = rem % outW
            var src = cols + (r - rows.lowerBound) * patch
            for kh in 0..<g.h.kernel {
                let ih = oh * g.h.stride - g.h.padBefore + kh * g.h.dilation
                if ih < 0 || ih >= inH {
                    src += g.w.kernel * cg
                    continue
                }
                let rowBase = gradInput + ((n * inH + ih) * inW) * C + c0
                for kw in 0..<g.w.kernel {
                    let iw = ow * g.w.stride - g.w.padBefore + kw * g.w.dilation
                    if iw >= 0 && iw < inW {
                        let dst = rowBase + iw * C
                        for c in 0..<cg { dst[c] += src[c] }
                    }
                    src += cg
                }
            }
        }
    }

    /// Backward of `conv2dForward`. `gradOutput` `[N, outH, outW, Cout]`. Writes (overwrites) `gradInput` when given,
    /// and adds into `gradKernel` `[kH, kW, Cin/groups, Cout]` and `gradBias` `[Cout]` when given.
    public static func conv2dBackward(_ g: ConvGeometry, input: UnsafePointer<Float>, kernel: UnsafePointer<Float>,
                                      gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                                      gradKernel: UnsafeMutablePointer<Float>?, gradBias: UnsafeMutablePointer<Float>?) {
        let cout = g.outChannels
        if let gradBias {
            for r in 0..<g.pixels {
                let row = gradOutput + r * cout
                for c in 0..<cout { gradBias[c] += row[c] }
            }
        }
        if !g.isPointwise && DNNL.conv2dBackward(g, input: input, kernel: kernel, gradOutput: gradOutput, gradInput: gradInput,
                                                  gradKernel: gradKernel) {
            return
        }
        if g.isPointwise {
            // dX[P, Cin] = dY[P, Cout] · Wᵀ;  dW[Cin, Cout] += Xᵀ · dY.
            if let gradInput {
                sgemm(transposeB: true, m: g.pixels, n: g.inChannels, k: cout, a: gradOutput, lda: cout, b: kernel, ldb: cout,
                      c: gradInput, ldc: g.inChannels)
            }
            if let gradKernel {
                sgemm(transposeA: true, m: g.inChannels, n: cout, k: g.pixels, a: input, lda: g.inChannels, b: gradOutput, ldb: cout,
                      beta: 1, c: gradKernel, ldc: cout)
            }
            return
        }
        if let gradInput { gradInput.update(repeating: 0, count: g.batch * g.h.input * g.w.input * g.inChannels) }
        let cg = g.inChannels / g.groups, og = cout / g.groups
        let patch = g.patch
        let tile = tileRows(g)
        let cols = UnsafeMutablePointer<Float>.allocate(capacity: tile * patch)
        defer { cols.deallocate() }
        var start = 0
        while start < g.pixels {
            let rows = start..<min(start + tile, g.pixels)
            for grp in 0..<g.groups {
                if let gradKernel {
                    Parallel.forEach(rows.count, grain: 256) { sub in
                        im2col(g, input: input, rows: (rows.lowerBound + sub.lowerBound)..<(rows.lowerBound + sub.upperBound),
                               channelOffset: grp * cg, channels: cg, cols: cols + sub.lowerBound * patch)
                    }
                    // dW_g[K, og] += colsᵀ[K, P] · dY_g[P, og]
                    sgemm(transposeA: true, m: patch, n: og, k: rows.count, a: cols, lda: patch,
                          b: gradOutput + rows.lowerBound * cout + grp * og, ldb: cout,
                          beta: 1, c: gradKernel + grp * og, ldc: cout)
                }
                if let gradInput {
                    // dCols[P, K] = dY_g[P, og] · W_gᵀ[og, K], then scatter back.
                    sgemm(transposeB: true, m: rows.count, n: patch, k: og, a: gradOutput + rows.lowerBound * cout + grp * og, lda: cout,
                          b: kernel + grp * og, ldb: cout, c: cols, ldc: patch)
                    // Rows of one image scatter into that image only: split work by whole images to avoid races.
                    let perImage = g.h.output * g.w.output
                    let firstImage = rows.lowerBound / perImage, lastImage = (rows.upperBound - 1) / perImage
                    Parallel.forEach(lastImage - firstImage + 1, grain: 1) { images in
                        let lo = max(rows.lowerBound, (firstImage + images.lowerBound) * perImage)
                        let hi = min(rows.upperBound, (firstImage + images.upperBound) * perImage)
                        if lo < hi {
                            col2imAdd(g, cols: cols + (lo - rows.lowerBound) * patch, rows: lo..<hi,
                                      channelOffset: grp * cg, channels: cg, gradInput: gradInput)
                        }
                    }
                }
            }
            start = rows.upperBound
        }
    }

    /// Backward of `depthwiseForward`: overwrites `gradInput` when given; adds into `gradKernel` `[kH, kW, C, M]`
    /// and `gradBias` `[C·M]` when given.
    public static func depthwiseBackward(_ g: ConvGeometry, multiplier M: Int, input: UnsafePointer<Float>,
                                         kernel: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
                                         gradInput: UnsafeMutablePointer<Float>?, gradKernel: UnsafeMutablePointer<Float>?,
                                         gradBias: UnsafeMutablePointer<Float>?) {
        let C = g.inChannels, inH = g.h.input, inW = g.w.input
        let outH = g.h.output, outW = g.w.output, CM = C * M
        let kSize = g.h.kernel * g.w.kernel * CM
        if let gradBias {
            for r in 0..<g.pixels { for c in 0..<CM { gradBias[c] += gradOutput[r * CM + c] } }
        }
        if let gradInput {
            gradInput.update(repeating: 0, count: g.batch * inH * inW * C)
            Parallel.forEach(g.batch, grain: 1) { images in
                for n in images {
                    for oh in 0..<outH {
                        for ow in 0..<outW {
                            let dy = gradOutput + ((n * outH + oh) * outW + ow) * CM
                            for kh in 0..<g.h.kernel {
                                let ih = oh * g.h.stride - g.h.padBefore + kh * g.h.dilation
                                if ih < 0 || ih >= inH { continue }
                                for kw in 0..<g.w.kernel {
                                    let iw = ow * g.w.stride - g.w.padBefore + kw * g.w.dilation
                                    if iw < 0 || iw >= inW { continue }
                                    let dx = gradInput + ((n * inH + ih) * inW + iw) * C
                                    let k = kernel + (kh * g.w.kernel + kw) * CM
                                    if M == 1 {
                                        for c in 0..<C { dx[c] += dy[c] * k[c] }
                                    } else {
                                        for c in 0..<C {
                                            var s: Float = 0
                                            for m in 0..<M { s += dy[c * M + m] * k[c * M + m] }
                                            dx[c] += s
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if let gradKernel {
            // Each worker sums into its own buffer; buffers are added at the end.
            let workers = min(Parallel.workers, max(1, g.batch))
            let partial = UnsafeMutablePointer<Float>.allocate(capacity: workers * kSize)
            partial.initialize(repeating: 0, count: workers * kSize)
            defer { partial.deallocate() }
            Parallel.forEach(workers, grain: 1) { workerRange in
              for wIdx in workerRange {
                let acc = partial + wIdx * kSize
                let lo = g.batch * wIdx / workers, hi = g.batch * (wIdx + 1) / workers
                for n in lo..<hi {
                    for oh in 0..<outH {
                        for ow in 0..<outW {
                            let dy = gradOutput + ((n * outH + oh) * outW + ow) * CM
                            for kh in 0..<g.h.kernel {
                                let ih = oh * g.h.stride - g.h.padBefore + kh * g.h.dilation
                                if ih < 0 || ih >= inH { continue }
                                for kw in 0..<g.w.kernel {
                                    let iw = ow * g.w.stride - g.w.padBefore + kw * g.w.dilation
                                    if iw < 0 || iw >= inW { continue }
                                    let x = input + ((n * inH + ih) * inW + iw) * C
                                    let dk = acc + (kh * g.w.kernel + kw) * CM
                                    if M == 1 {
                                        for c in 0..<C { dk[c] += x[c] * dy[c] }
                                    } else {
                                        for c in 0..<C {
                                            let xv = x[c]
                                            for m in 0..<M { dk[c * M + m] += xv * dy[c * M + m] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
              }
            }
            for wIdx in 0..<workers {
                let acc = partial + wIdx * kSize
                for i in 0..<kSize { gradKernel[i] += acc[i] }
            }
        }
    }
}
