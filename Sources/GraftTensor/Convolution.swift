import Foundation

/// Keras padding modes for convolution and pooling.
public enum Padding: String, Sendable, Codable, Equatable {
    /// No padding; windows that do not fit are dropped.
    case valid
    /// Output size `ceil(in / stride)`; the total padding is split with the smaller half first (top/left),
    /// as TensorFlow and Keras do.
    case same
    /// Keras's `causal` (1-D convolutions): all padding before, `(kernel − 1) · dilation`, so that output `t`
    /// sees inputs up to `t` only; output size `ceil(in / stride)`.
    case causal
}

/// Output size and padding along one spatial axis.
public struct AxisGeometry: Sendable, Equatable {
    public let input: Int, kernel: Int, stride: Int, dilation: Int
    public let output: Int, padBefore: Int, padAfter: Int

    /// Computes Keras's geometry; `output` is 0 or less when a `valid` window does not fit.
    public init(input: Int, kernel: Int, stride: Int, dilation: Int = 1, padding: Padding) {
        self.input = input
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
        let effective = (kernel - 1) * dilation + 1
        switch padding {
        case .valid:
            output = input >= effective ? (input - effective) / stride + 1 : 0
            padBefore = 0
            padAfter = 0
        case .same:
            output = (input + stride - 1) / stride
            let total = max((output - 1) * stride + effective - input, 0)
            padBefore = total / 2
            padAfter = total - total / 2
        case .causal:
            output = input >= 1 ? (input - 1) / stride + 1 : 0
            padBefore = effective - 1
            padAfter = 0
        }
    }

    /// Explicit padding (used by backends and by ZeroPadding-folded convolutions).
    public init(input: Int, kernel: Int, stride: Int, dilation: Int = 1, padBefore: Int, padAfter: Int) {
        self.input = input
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
        self.padBefore = padBefore
        self.padAfter = padAfter
        let effective = (kernel - 1) * dilation + 1
        let padded = input + padBefore + padAfter
        output = padded >= effective ? (padded - effective) / stride + 1 : 0
    }
}

/// Everything a 2-D convolution kernel needs to know about its shapes (NHWC input, HWIO kernel).
public struct ConvGeometry: Sendable, Equatable {
    public let batch: Int, inChannels: Int, outChannels: Int, groups: Int
    public let h: AxisGeometry, w: AxisGeometry

    public init(batch: Int, inChannels: Int, outChannels: Int, groups: Int = 1, h: AxisGeometry, w: AxisGeometry) {
        self.batch = batch
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.groups = groups
        self.h = h
        self.w = w
    }

    public var outputShape: [Int] { [batch, h.output, w.output, outChannels] }
    /// Rows of the im2col matrix: one per output pixel.
    public var pixels: Int { batch * h.output * w.output }
    /// Columns of one group's im2col matrix: kernel height × width × input channels per group.
    public var patch: Int { h.kernel * w.kernel * (inChannels / groups) }
    /// True when the convolution is a plain matrix product over pixels (1×1, stride 1, no padding, one group).
    public var isPointwise: Bool {
        h.kernel == 1 && w.kernel == 1 && h.stride == 1 && w.stride == 1 && h.padBefore == 0 && w.padBefore == 0
            && h.padAfter == 0 && w.padAfter == 0 && groups == 1
    }
    /// Multiply-adds of the forward pass.
    public var flops: Double { 2.0 * Double(pixels) * Double(patch) * Double(outChannels) }
}

/// Convolution kernels: pure functions over buffers (NHWC activations, HWIO kernels).
public enum ConvolutionKernels {
    /// Copies the receptive fields of output pixels `rows` (flat index over batch·outH·outW) for input channels
    /// `[c0, c0 + cg)` into `cols`, one row of `kH·kW·cg` values per pixel in (kh, kw, c) order; padding reads 0.
    public static func im2col(_ g: ConvGeometry, input: UnsafePointer<Float>, rows: Range<Int>,
                              channelOffset c0: Int, channels cg: Int, cols: UnsafeMutablePointer<Float>) {
        let inH = g.h.input, inW = g.w.input, C = g.inChannels
        let outH = g.h.output, outW = g.w.output
        let patch = g.h.kernel * g.w.kernel * cg
        for r in rows {
            let n = r / (outH * outW)
            let rem = r % (outH * outW)
            let oh = rem / outW, ow = rem % outW
            var dst = cols + (r - rows.lowerBound) * patch
            for kh in 0..<g.h.kernel {
                let ih = oh * g.h.stride - g.h.padBefore + kh * g.h.dilation
                if ih < 0 || ih >= inH {
                    dst.update(repeating: 0, count: g.w.kernel * cg)
                    dst += g.w.kernel * cg
                    continue
                }
                let rowBase = input + ((n * inH + ih) * inW) * C + c0
                for kw in 0..<g.w.kernel {
                    let iw = ow * g.w.stride - g.w.padBefore + kw * g.w.dilation
                    if iw < 0 || iw >= inW {
                        for c in 0..<cg { dst[c] = 0 }
                    } else if cg < 16 {
                        let src = rowBase + iw * C
                        for c in 0..<cg { dst[c] = src[c] }   // a call to memmove costs more than a few floats
                    } else {
                        dst.update(from: rowBase + iw * C, count: cg)
                    }
                    dst += cg
                }
            }
        }
    }

    /// Rows of im2col processed per GEMM call, keeping the column buffer near 8 MB.
    static func tileRows(_ g: ConvGeometry) -> Int {
        max(64, min(g.pixels, (2 << 20) / max(g.patch, 1)))
    }

    /// Forward convolution: `output[p, o] = Σ input-patch(p) · kernel[:, o] (+ bias[o])`.
    /// - Parameters: input `[N, H, W, Cin]`, kernel `[kH, kW, Cin/groups, Cout]`, bias `[Cout]` or nil,
    ///   output `[N, outH, outW, Cout]` (fully overwritten).
    /// `prepared`: where to keep the kernel in oneDNN's layout between calls (inference with unchanged weights).
    public static func conv2dForward(_ g: ConvGeometry, input: UnsafePointer<Float>, kernel: UnsafePointer<Float>,
                                     bias: UnsafePointer<Float>?, activation: ActivationKind = .linear,
                                     prepared: PreparedWeights.Use? = nil, output: UnsafeMutablePointer<Float>) {
        if (!g.isPointwise || DNNL.pointwise), let post = DNNL.PostOp.exact(activation) ?? (activation == .linear ? DNNL.PostOp.none : nil),
           DNNL.conv2dForward(g, input: input, kernel: kernel, bias: bias, post: post, prepared: prepared, output: output) { return }
        if (!g.isPointwise || DNNL.pointwise) && activation != .linear
            && DNNL.conv2dForward(g, input: input, kernel: kernel, bias: bias, prepared: prepared, output: output) {
            activation.apply(output, rows: g.pixels, n: g.outChannels)
            return
        }
        conv2dForwardFallback(g, input: input, kernel: kernel, bias: bias, output: output)
        activation.apply(output, rows: g.pixels, n: g.outChannels)
    }

    /// im2col + OpenBLAS (a plain GEMM for 1×1 convolutions).
    static func conv2dForwardFallback(_ g: ConvGeometry, input: UnsafePointer<Float>, kernel: UnsafePointer<Float>,
                                      bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        let cout = g.outChannels
        if g.isPointwise {
            sgemm(m: g.pixels, n: cout, k: g.inChannels, a: input, lda: g.inChannels, b: kernel, ldb: cout,
                  c: output, ldc: cout)
        } else {
            let cg = g.inChannels / g.groups, og = cout / g.groups
            let patch = g.patch
            let tile = tileRows(g)
            let cols = UnsafeMutablePointer<Float>.allocate(capacity: tile * patch)
            defer { cols.deallocate() }
            var start = 0
            while start < g.pixels {
                let rows = start..<min(start + tile, g.pixels)
                for grp in 0..<g.groups {
                    Parallel.forEach(rows.count, grain: 256) { sub in
                        im2col(g, input: input, rows: (rows.lowerBound + sub.lowerBound)..<(rows.lowerBound + sub.upperBound),
                               channelOffset: grp * cg, channels: cg, cols: cols + sub.lowerBound * patch)
                    }
                    sgemm(m: rows.count, n: og, k: patch, a: cols, lda: patch, b: kernel + grp * og, ldb: cout,
                          c: output + rows.lowerBound * cout + grp * og, ldc: cout)
                }
                start = rows.upperBound
            }
        }
        if let bias { addChannelBias(output, rows: g.pixels, channels: cout, bias: bias) }
    }

    /// `x[r, c] += bias[c]` for a row-major `[rows, channels]` buffer.
    public static func addChannelBias(_ x: UnsafeMutablePointer<Float>, rows: Int, channels: Int, bias: UnsafePointer<Float>) {
        Parallel.forEach(rows, grain: max(1, 16384 / max(channels, 1))) { range in
            for r in range {
                let row = x + r * channels
                for c in 0..<channels { row[c] += bias[c] }
            }
        }
    }

    /// Depthwise convolution, direct: input `[N, H, W, C]`, kernel `[kH, kW, C, M]`, output `[N, outH, outW, C·M]`
    /// with output channel `c·M + m`. `g.outChannels` must be `C·M`.
    /// Runs through oneDNN as a convolution with one group per input channel when it can (`DNNL.depthwise`).
    public static func depthwiseForward(_ g: ConvGeometry, multiplier M: Int, input: UnsafePointer<Float>,
                                        kernel: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                        activation: ActivationKind = .linear, prepared: PreparedWeights.Use? = nil,
                                        output: UnsafeMutablePointer<Float>) {
        if DNNL.depthwise {
            // Graft's [kH, kW, C, M] kernel with output channel c·M + m is oneDNN's grouped layout (hwigo, g = C).
            let post = DNNL.PostOp.exact(activation) ?? .none
            if DNNL.conv2dForward(g, input: input, kernel: kernel, bias: bias, post: post, prepared: prepared, output: output) {
                if post == .none { activation.apply(output, rows: g.pixels, n: g.outChannels) }
                return
            }
        }
        depthwiseDirect(g, multiplier: M, input: input, kernel: kernel, bias: bias, output: output)
        activation.apply(output, rows: g.pixels, n: g.outChannels)
    }

    /// Graft's own depthwise loops (the fallback, and what tests compare oneDNN with).
    public static func depthwiseDirect(_ g: ConvGeometry, multiplier M: Int, input: UnsafePointer<Float>,
                                       kernel: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                       output: UnsafeMutablePointer<Float>) {
        let C = g.inChannels, inH = g.h.input, inW = g.w.input
        let outH = g.h.output, outW = g.w.output, CM = C * M
        Parallel.forEach(g.batch * outH, grain: 4) { range in
            for r in range {
                let n = r / outH, oh = r % outH
                for ow in 0..<outW {
                    let out = output + ((n * outH + oh) * outW + ow) * CM
                    if let bias { out.update(from: bias, count: CM) } else { out.update(repeating: 0, count: CM) }
                    for kh in 0..<g.h.kernel {
                        let ih = oh * g.h.stride - g.h.padBefore + kh * g.h.dilation
                        if ih < 0 || ih >= inH { continue }
                        for kw in 0..<g.w.kernel {
                            let iw = ow * g.w.stride - g.w.padBefore + kw * g.w.dilation
                            if iw < 0 || iw >= inW { continue }
                            let x = input + ((n * inH + ih) * inW + iw) * C
                            let k = kernel + (kh * g.w.kernel + kw) * CM
                            if M == 1 {
                                for c in 0..<C { out[c] += x[c] * k[c] }
                            } else {
                                for c in 0..<C {
                                    let xv = x[c]
                                    for m in 0..<M { out[c * M + m] += xv * k[c * M + m] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reference convolution in plain loops with Double accumulation, for tests of every fast path.
    public static func referenceConv2d(_ g: ConvGeometry, input: [Float], kernel: [Float], bias: [Float]?) -> [Float] {
        let cg = g.inChannels / g.groups, og = g.outChannels / g.groups
        var out = [Float](repeating: 0, count: g.pixels * g.outChannels)
        for n in 0..<g.batch {
            for oh in 0..<g.h.output {
                for ow in 0..<g.w.output {
                    for o in 0..<g.outChannels {
                        let grp = o / og
                        var s = Double(bias?[o] ?? 0)
                        for kh in 0..<g.h.kernel {
                            let ih = oh * g.h.stride - g.h.padBefore + kh * g.h.dilation
                            guard ih >= 0 && ih < g.h.input else { continue }
                            for kw in 0..<g.w.kernel {
                                let iw = ow * g.w.stride - g.w.padBefore + kw * g.w.dilation
                                guard iw >= 0 && iw < g.w.input else { continue }
                                for c in 0..<cg {
                                    let x = input[((n * g.h.input + ih) * g.w.input + iw) * g.inChannels + grp * cg + c]
                                    let k = kernel[((kh * g.w.kernel + kw) * cg + c) * g.outChannels + o]
                                    s += Double(x) * Double(k)
                                }
                            }
                        }
                        out[((n * g.h.output + oh) * g.w.output + ow) * g.outChannels + o] = Float(s)
                    }
                }
            }
        }
        return out
    }
}
