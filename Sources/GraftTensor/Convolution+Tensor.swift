/// Convolutions over tensors, forward and backward: what the convolution layers call. Each picks its kernel
/// (oneDNN or im2col + GEMM, Graft's depthwise loops) as `ComputeOptions.current` allows. Activations are NHWC and
/// kernels HWIO (`[kH, kW, in/groups, out]`; depthwise `[kH, kW, C, multiplier]`).
///
/// The backward functions add the kernel's and bias's gradients into the tensors given (`inout`, nil: not wanted)
/// and return the input's gradient when `needInput` is set.
extension ConvGeometry {
    /// The geometry of a convolution of `input` (`[N, H, W, C]`).
    public init(input: [Int], outChannels: Int, groups: Int = 1, kernel: [Int], strides: [Int] = [1, 1],
                dilation: [Int] = [1, 1], padding: Padding) {
        self.init(batch: input[0], inChannels: input[3], outChannels: outChannels, groups: groups,
                  h: AxisGeometry(input: input[1], kernel: kernel[0], stride: strides[0], dilation: dilation[0], padding: padding),
                  w: AxisGeometry(input: input[2], kernel: kernel[1], stride: strides[1], dilation: dilation[1], padding: padding))
    }

    /// A depthwise convolution of `input` with `multiplier` kernels per channel.
    public static func depthwise(input: [Int], multiplier: Int, kernel: [Int], strides: [Int], dilation: [Int],
                                 padding: Padding) -> ConvGeometry {
        ConvGeometry(input: input, outChannels: input[3] * multiplier, groups: input[3], kernel: kernel, strides: strides,
                     dilation: dilation, padding: padding)
    }
}

extension Tensor {
    /// The convolution (plus `bias`), then `activation`, applied as the output is written when it can be.
    /// `prepared` keeps the kernel in oneDNN's layout between calls (inference).
    public func convolved(_ g: ConvGeometry, kernel: Tensor, bias: Tensor?, activation: ActivationKind = .linear,
                          prepared: PreparedWeights.Use? = nil) -> Tensor {
        forwardPass(g, kernel, bias) { x, k, b, o in
            ConvolutionKernels.conv2dForward(g, input: x, kernel: k, bias: b, activation: activation, prepared: prepared, output: o)
        }
    }

    /// The depthwise convolution (`g` from `ConvGeometry.depthwise`), plus `bias`, then `activation`.
    public func depthwiseConvolved(_ g: ConvGeometry, kernel: Tensor, bias: Tensor?, activation: ActivationKind = .linear,
                                   prepared: PreparedWeights.Use? = nil) -> Tensor {
        forwardPass(g, kernel, bias) { x, k, b, o in
            ConvolutionKernels.depthwiseForward(g, multiplier: g.outChannels / g.inChannels, input: x, kernel: k, bias: b,
                                                activation: activation, prepared: prepared, output: o)
        }
    }

    /// A buffer-level forward pass run on tensors: a new output of `g`'s shape, written whole.
    private func forwardPass(_ g: ConvGeometry, _ kernel: Tensor, _ bias: Tensor?,
                             _ run: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        var out = Tensor(uninitializedShape: g.outputShape)
        out.withUnsafeMutableBufferPointer { o in
            withUnsafeBufferPointer { x in
                kernel.withUnsafeBufferPointer { k in
                    bias.withOptionalPointer { b in run(x.baseAddress!, k.baseAddress!, b, o.baseAddress!) }
                }
            }
        }
        return out
    }

    /// Every output position's receptive field, `[N · outH · outW, kH · kW · C]` (im2col).
    public func patches(_ g: ConvGeometry) -> Tensor {
        var cols = Tensor(uninitializedShape: [g.pixels, g.patch])
        cols.withUnsafeMutableBufferPointer { c in
            withUnsafeBufferPointer { x in
                ConvolutionKernels.im2col(g, input: x.baseAddress!, rows: 0..<g.pixels, channelOffset: 0, channels: g.inChannels,
                                          cols: c.baseAddress!)
            }
        }
        return cols
    }

    /// The unshared convolution (Keras's `LocallyConnected2D`): kernel `[outH·outW, kH·kW·C, filters]`, one per output
    /// position, bias `[outH, outW, filters]`. The tiled convolution with one tile per output position.
    public func locallyConnected(_ g: ConvGeometry, kernel: Tensor, bias: Tensor?) -> Tensor {
        tiledConvolution(g, tiles: [g.h.output, g.w.output], kernel: kernel, bias: bias)
    }

    /// The tiled convolution (Le et al., "Tiled convolutional neural networks", 2010): `tiles` `[tH, tW]` kernels
    /// `[tH·tW, kH·kW·C, filters]` used in turn over the output positions, output `(i, j)` taking kernel
    /// `(i mod tH)·tW + j mod tW`; bias `[tH, tW, filters]` likewise. Tiles `[1, 1]` are a convolution; one tile per
    /// output position is the unshared (locally connected) convolution.
    public func tiledConvolution(_ g: ConvGeometry, tiles: [Int], kernel: Tensor, bias: Tensor?) -> Tensor {
        let (N, F, L, P) = (g.batch, g.outChannels, g.h.output * g.w.output, g.patch)
        let tile = TileMap(g, tiles)
        let cols = patches(g)
        var out = Tensor(uninitializedShape: g.outputShape)
        out.withUnsafeMutableBufferPointer { o in
            cols.withUnsafeBufferPointer { c in
                kernel.withUnsafeBufferPointer { k in
                    // Per position l: out[n, l, :] = cols[n, l, :] · kernel[tile(l)], a GEMM over the batch with strided rows.
                    for l in 0..<L {
                        sgemm(m: N, n: F, k: P, a: c.baseAddress! + l * P, lda: L * P, b: k.baseAddress! + tile[l] * P * F, ldb: F,
                              c: o.baseAddress! + l * F, ldc: L * F)
                    }
                }
            }
            bias?.withUnsafeBufferPointer { b in
                for n in 0..<N { for l in 0..<L { for f in 0..<F { o[(n * L + l) * F + f] += b[tile[l] * F + f] } } }
            }
        }
        return out
    }

    /// Which of the tiled convolution's kernels each output position (row-major over `outH × outW`) takes.
    struct TileMap {
        let index: [Int]
        init(_ g: ConvGeometry, _ tiles: [Int]) {
            let (th, tw) = (Swift.max(tiles[0], 1), Swift.max(tiles[1], 1))
            index = (0..<(g.h.output * g.w.output)).map { l in (l / g.w.output % th) * tw + l % g.w.output % tw }
        }
        subscript(_ l: Int) -> Int { index[l] }
    }

    /// The convolution's backward pass for `input`.
    public static func convolutionBackward(_ g: ConvGeometry, input: Tensor, kernel: Tensor, gradOutput: Tensor, needInput: Bool,
                                           kernelGradient: inout Tensor?, biasGradient: inout Tensor?) -> Tensor? {
        backwardPass(input, kernel, gradOutput, needInput, &kernelGradient, &biasGradient) { x, k, dz, d, gk, gb in
            ConvolutionKernels.conv2dBackward(g, input: x, kernel: k, gradOutput: dz, gradInput: d, gradKernel: gk, gradBias: gb)
        }
    }

    /// The gradient of a convolution's input alone, from `gradOutput` (`g.outputShape`): `[N, H, W, inChannels]` of
    /// `g`'s input. It is also the forward pass of the transposed convolution (Keras's `Conv2DTranspose`) that maps
    /// `g`'s output space back to its input space with the same kernel.
    public static func convolutionBackwardData(_ g: ConvGeometry, kernel: Tensor, gradOutput: Tensor) -> Tensor {
        var dx = Tensor(uninitializedShape: [g.batch, g.h.input, g.w.input, g.inChannels])
        dx.withUnsafeMutableBufferPointer { d in
            kernel.withUnsafeBufferPointer { k in
                gradOutput.withUnsafeBufferPointer { dz in
                    // The input is read only for the kernel's gradient, which is not asked for.
                    ConvolutionKernels.conv2dBackward(g, input: dz.baseAddress!, kernel: k.baseAddress!, gradOutput: dz.baseAddress!,
                                                      gradInput: d.baseAddress!, gradKernel: nil, gradBias: nil)
                }
            }
        }
        return dx
    }

    /// The depthwise convolution's backward pass for `input`.
    public static func depthwiseBackward(_ g: ConvGeometry, input: Tensor, kernel: Tensor, gradOutput: Tensor, needInput: Bool,
                                         kernelGradient: inout Tensor?, biasGradient: inout Tensor?) -> Tensor? {
        backwardPass(input, kernel, gradOutput, needInput, &kernelGradient, &biasGradient) { x, k, dz, d, gk, gb in
            ConvolutionKernels.depthwiseBackward(g, multiplier: g.outChannels / g.inChannels, input: x, kernel: k, gradOutput: dz,
                                                 gradInput: d, gradKernel: gk, gradBias: gb)
        }
    }

    /// A buffer-level backward pass run on tensors: the input's gradient (when wanted) is written whole, the
    /// kernel's and bias's are added into.
    private static func backwardPass(
        _ input: Tensor, _ kernel: Tensor, _ gradOutput: Tensor, _ needInput: Bool, _ kernelGradient: inout Tensor?,
        _ biasGradient: inout Tensor?,
        _ run: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>?,
                UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?) -> Void
    ) -> Tensor? {
        var dx: Tensor? = needInput ? Tensor(uninitializedShape: input.shape) : nil
        input.withUnsafeBufferPointer { x in
            kernel.withUnsafeBufferPointer { k in
                gradOutput.withUnsafeBufferPointer { dz in
                    withMutablePointers(&dx, &kernelGradient, &biasGradient) { d, gk, gb in
                        run(x.baseAddress!, k.baseAddress!, dz.baseAddress!, d, gk, gb)
                    }
                }
            }
        }
        return dx
    }

    /// The unshared convolution's backward pass for `input`.
    public static func locallyConnectedBackward(_ g: ConvGeometry, input: Tensor, kernel: Tensor, gradOutput: Tensor, needInput: Bool,
                                                kernelGradient: inout Tensor?, biasGradient: inout Tensor?) -> Tensor? {
        tiledConvolutionBackward(g, tiles: [g.h.output, g.w.output], input: input, kernel: kernel, gradOutput: gradOutput,
                                 needInput: needInput, kernelGradient: &kernelGradient, biasGradient: &biasGradient)
    }

    /// The tiled convolution's backward pass for `input`: each kernel's gradient sums over the positions that use it.
    public static func tiledConvolutionBackward(_ g: ConvGeometry, tiles: [Int], input: Tensor, kernel: Tensor, gradOutput: Tensor,
                                                needInput: Bool, kernelGradient: inout Tensor?, biasGradient: inout Tensor?) -> Tensor? {
        let (N, F, L, P) = (g.batch, g.outChannels, g.h.output * g.w.output, g.patch)
        let tile = TileMap(g, tiles)
        var none: Tensor? = nil
        gradOutput.withUnsafeBufferPointer { dz in
            withMutablePointers(&none, &kernelGradient, &biasGradient) { _, gk, gb in
                if let gk {
                    let cols = input.patches(g)
                    cols.withUnsafeBufferPointer { c in
                        for l in 0..<L {
                            sgemm(transposeA: true, m: P, n: F, k: N, a: c.baseAddress! + l * P, lda: L * P, b: dz.baseAddress! + l * F,
                                  ldb: L * F, beta: 1, c: gk + tile[l] * P * F, ldc: F)
                        }
                    }
                }
                if let gb {
                    for n in 0..<N { for l in 0..<L { for f in 0..<F { gb[tile[l] * F + f] += dz[(n * L + l) * F + f] } } }
                }
            }
        }
        guard needInput else { return nil }
        var dcols = Tensor(uninitializedShape: [N * L, P])
        dcols.withUnsafeMutableBufferPointer { dc in
            gradOutput.withUnsafeBufferPointer { dz in
                kernel.withUnsafeBufferPointer { k in
                    for l in 0..<L {
                        sgemm(transposeB: true, m: N, n: P, k: F, a: dz.baseAddress! + l * F, lda: L * F, b: k.baseAddress! + tile[l] * P * F,
                              ldb: F, c: dc.baseAddress! + l * P, ldc: L * P)
                    }
                }
            }
        }
        var dx = Tensor(shape: input.shape, repeating: 0)
        dx.withUnsafeMutableBufferPointer { d in
            dcols.withUnsafeBufferPointer { dc in
                ConvolutionKernels.col2imAdd(g, cols: dc.baseAddress!, rows: 0..<(N * L), channelOffset: 0, channels: g.inChannels,
                                             gradInput: d.baseAddress!)
            }
        }
        return dx
    }
}

extension Optional where Wrapped == Tensor {
    /// The tensor's storage, or nil for no tensor.
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let t = self else { return body(nil) }
        return t.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// Writable storage of three optional tensors (nil for those that are nil), each moved out while written so that
/// no write copies it.
private func withMutablePointers<R>(_ a: inout Tensor?, _ b: inout Tensor?, _ c: inout Tensor?,
                                    _ body: (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?) -> R) -> R {
    func one<S>(_ t: inout Tensor?, _ inner: (UnsafeMutablePointer<Float>?) -> S) -> S {
        guard var v = t else { return inner(nil) }
        t = nil
        defer { t = v }
        return v.withUnsafeMutableBufferPointer { inner($0.baseAddress!) }
    }
    return one(&a) { pa in one(&b) { pb in one(&c) { pc in body(pa, pb, pc) } } }
}
