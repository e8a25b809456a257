import Foundation
import Testing
import GraftTensor
@testable import GraftNN

/// Finite-difference checks for Conv2DTranspose, Resizing, CenterCrop, Permute, RepeatVector and Keras 3's further
/// activations.
struct DecoderGradientTests {
    typealias G = GradientCheckTests

    struct TransposeCase: Sendable, CustomTestStringConvertible {
        let kernel: [Int], strides: [Int], padding: Padding, dilation: [Int], outputPadding: [Int]?
        var testDescription: String { "k\(kernel) s\(strides) \(padding) d\(dilation) op\(outputPadding.map { "\($0)" } ?? "-")" }
    }

    static let transposeCases: [TransposeCase] = [
        TransposeCase(kernel: [3, 3], strides: [2, 2], padding: .same, dilation: [1, 1], outputPadding: nil),
        TransposeCase(kernel: [3, 2], strides: [2, 1], padding: .valid, dilation: [1, 1], outputPadding: [1, 0]),
        TransposeCase(kernel: [2, 2], strides: [3, 3], padding: .valid, dilation: [1, 1], outputPadding: nil),   // kernel below stride
        TransposeCase(kernel: [3, 3], strides: [1, 1], padding: .same, dilation: [2, 2], outputPadding: nil),
    ]

    @Test(arguments: transposeCases)
    func conv2DTranspose(_ c: TransposeCase) throws {
        let layer = Conv2DTranspose(name: "deconv", config: Conv2DConfig(filters: 3, kernelSize: c.kernel, strides: c.strides,
                                                                         padding: c.padding, dilation: c.dilation, activation: .tanh),
                                    outputPadding: c.outputPadding)
        let (m, x) = try G.single(layer, input: [3, 4, 2])
        try G.check(m, [x])
    }

    /// The transposed convolution is the adjoint of the convolution with the same kernel: ⟨D x, y⟩ = ⟨x, Dᵀ y⟩.
    @Test func transposeIsTheAdjointOfConvolution() throws {
        let config = Conv2DConfig(filters: 3, kernelSize: [3, 3], strides: [2, 2], padding: .same, useBias: false)
        let deconv = Conv2DTranspose(name: "t", config: config)
        let md = try GraphBuilder.sequential(name: "t", inputShape: [3, 4, 2], layers: [deconv], seed: 2)
        let conv = Conv2D(name: "c", config: Conv2DConfig(filters: 2, kernelSize: [3, 3], strides: [2, 2], padding: .same, useBias: false))
        let mc = try GraphBuilder.sequential(name: "c", inputShape: [6, 8, 3], layers: [conv], seed: 2)
        conv.kernel.value = deconv.kernel.value   // [3, 3, 3, 2]: HWIO for the convolution from 3 to 2 channels
        let y = Tensor(shape: [1, 3, 4, 2], values: G.values(24, seed: 4))
        let x = Tensor(shape: [1, 6, 8, 3], values: G.values(144, seed: 5))
        let dty = try md.predict([y])[0], dx = try mc.predict([x])[0]
        let lhs = zip(dx.scalars, y.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(x.scalars, dty.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(lhs - rhs) < 1e-4 * max(1, abs(lhs)))
    }

    @Test func resizingCroppingAndPermuting() throws {
        let layers: [(any Layer, [Int])] = [
            (Resizing(name: "up", height: 7, width: 5), [7, 5, 2]),
            (Resizing(name: "down", height: 2, width: 3), [2, 3, 2]),
            (Resizing(name: "nearest", height: 6, width: 2, bilinear: false), [6, 2, 2]),
            (CenterCrop(name: "crop", height: 2, width: 3), [2, 3, 2]),
            (Permute(name: "perm", dims: [3, 1, 2]), [2, 3, 4]),
        ]
        for (layer, shape) in layers {
            let (m, x) = try G.single(layer, input: [3, 4, 2])
            #expect(m.nodes.last?.outputShape == shape, "\(layer.name)")
            try G.check(m, [x])
        }
        let (mr, xr) = try G.single(RepeatVector(name: "repeat", count: 3), input: [4])
        #expect(try mr.predict([xr])[0].shape == [2, 3, 4])
        try G.check(mr, [xr])
        // Resizing to the same size is the identity; CenterCrop takes the middle.
        let x = Tensor(shape: [1, 3, 4, 1], values: (0..<12).map(Float.init))
        let same = try GraphBuilder.sequential(name: "same", inputShape: [3, 4, 1], layers: [Resizing(name: "r", height: 3, width: 4)])
        #expect(try same.predict([x])[0] == x)
        let mid = try GraphBuilder.sequential(name: "mid", inputShape: [3, 4, 1], layers: [CenterCrop(name: "c", height: 1, width: 2)])
        #expect(try mid.predict([x])[0].scalars == [5, 6])
        #expect(throws: LayerError.self) {
            try GraphBuilder.sequential(name: "big", inputShape: [3, 4, 1], layers: [CenterCrop(name: "c", height: 5, width: 2)])
        }
    }

    static let activations: [ActivationKind] = [
        .celu(alpha: 1), .hardTanh, .hardShrink(threshold: 0.5), .softShrink(threshold: 0.5), .tanhShrink, .logSigmoid,
        .sparsePlus, .squareplus(b: 4), .logSoftmax, .sparsemax,
    ]

    @Test(arguments: activations)
    func furtherActivations(_ kind: ActivationKind) throws {
        let m = try GraphBuilder.sequential(name: "act_\(kind)", inputShape: [3, 4], layers: [ActivationLayer(name: "act", activation: kind)])
        // Values away from every kink of these functions (0, ±0.5, ±1).
        let x = G.values(24, seed: 9, lo: -2, hi: 2).map { v -> Float in
            var v = v
            for k: Float in [-1, -0.5, 0, 0.5, 1] where abs(v - k) < 0.08 { v = k + (v < k ? -0.08 : 0.08) }
            return v
        }
        try G.check(m, [Tensor(shape: [2, 3, 4], values: x)])
    }

    @Test func gatedLinearUnit() throws {
        let (m, x) = try G.single(GatedLinearUnit(name: "glu"), input: [3, 4])
        #expect(m.outputShapes == [[3, 2]])
        try G.check(m, [x])
    }

    /// Sparsemax as Keras 3.15 computes it: one kept value gives a one-hot row; with several, Keras's threshold (the
    /// sum of the running sums) gives rows that do not sum to 1: `keras.activations.sparsemax([0.5, 0.4])` is
    /// `[0.3, 0.2]`, not the projection's `[0.55, 0.45]`.
    @Test func sparsemaxIsKerass() {
        let y = Tensor(shape: [2, 4], values: [3, 1, 0.2, -1, 0.5, 0.4, -2, -3]).activated(.sparsemax).scalars
        #expect(y[0...3] == [1, 0, 0, 0])
        #expect(zip(y[4...7], [0.3, 0.2, 0, 0] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test func logSoftmaxIsTheLogOfSoftmax() {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, -1, 0, 50])
        let a = x.activated(.logSoftmax), b = x.activated(.softmax)
        for (u, v) in zip(a.scalars, b.scalars) { #expect(abs(u - Foundation.log(v)) < 1e-5 || v < 1e-30) }
        #expect(a.scalars[5] == 0 || abs(a.scalars[5]) < 1e-6)
    }
}

/// The tiled convolution: gradient-checked, and the two layers it generalises at its two ends.
struct TiledConvolutionTests {
    typealias G = GradientCheckTests

    @Test(arguments: [([2, 2], [1, 1], Padding.same), ([1, 3], [2, 1], .valid), ([3, 2], [1, 1], .valid)])
    func gradients(_ tiles: [Int], _ strides: [Int], _ padding: Padding) throws {
        let layer = TiledConv2D(name: "tiled", config: Conv2DConfig(filters: 3, kernelSize: [3, 2], strides: strides, padding: padding,
                                                                    activation: .tanh), tiles: tiles)
        let (m, x) = try G.single(layer, input: [6, 5, 2])
        #expect(layer.kernel.shape == [tiles[0] * tiles[1], 12, 3] && layer.bias?.shape == tiles + [3])
        for (_, v) in m.namedVariables where v.shape.count == 3 && v.shape.last == 3 && v.shape.count != 1 {
            v.value = Tensor(shape: v.shape, values: G.values(v.value.count, seed: 77, lo: -0.5, hi: 0.5))   // tiled biases too
        }
        try G.check(m, [x])
    }

    @Test func oneTileIsAConvolutionAndOnePerPositionIsLocallyConnected() throws {
        let config = Conv2DConfig(filters: 4, kernelSize: [3, 3], strides: [1, 2], padding: .valid)
        let x = Tensor(shape: [2, 6, 7, 3], values: G.values(252, seed: 8))
        // tiles 1×1 = Conv2D with the same kernel (HWIO flattened) and bias.
        let tiled = TiledConv2D(name: "t", config: config, tiles: [1, 1])
        let mt = try GraphBuilder.sequential(name: "t", inputShape: [6, 7, 3], layers: [tiled], seed: 1)
        let conv = Conv2D(name: "c", config: config)
        let mc = try GraphBuilder.sequential(name: "c", inputShape: [6, 7, 3], layers: [conv], seed: 1)
        conv.kernel.value = tiled.kernel.value.reshaped([3, 3, 3, 4])
        let b = Tensor(shape: [4], values: [0.1, -0.2, 0.3, 0.05])
        conv.bias?.value = b
        tiled.bias?.value = b.reshaped([1, 1, 4])
        let yt = try mt.predict([x])[0], yc = try mc.predict([x])[0]
        #expect(yt.shape == yc.shape && zip(yt.scalars, yc.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        // tiles = the 4×3 output = LocallyConnected2D with the same kernel and bias.
        let full = TiledConv2D(name: "f", config: config, tiles: [4, 3])
        let mf = try GraphBuilder.sequential(name: "f", inputShape: [6, 7, 3], layers: [full], seed: 2)
        let lc = LocallyConnected2D(name: "l", config: config)
        let ml = try GraphBuilder.sequential(name: "l", inputShape: [6, 7, 3], layers: [lc], seed: 2)
        lc.kernel.value = full.kernel.value
        full.bias?.value = Tensor(shape: [4, 3, 4], values: G.values(48, seed: 3))
        lc.bias?.value = full.bias!.value
        #expect(try mf.predict([x])[0] == (try ml.predict([x])[0]))
        // Tiles 2×2 over a 4×3 output: positions two rows or two columns apart share a kernel.
        let two = TiledConv2D(name: "two", config: Conv2DConfig(filters: 1, kernelSize: [1, 1], useBias: false), tiles: [2, 2])
        let m2 = try GraphBuilder.sequential(name: "two", inputShape: [4, 3, 1], layers: [two])
        two.kernel.value = Tensor(shape: [4, 1, 1], values: [1, 10, 100, 1000])
        let ones = try m2.predict([Tensor(shape: [1, 4, 3, 1], repeating: 1)])[0]
        #expect(ones.scalars == [1, 10, 1, 100, 1000, 100, 1, 10, 1, 100, 1000, 100])
        #expect(throws: LayerError.self) {
            try GraphBuilder.sequential(name: "big", inputShape: [4, 3, 1], layers: [TiledConv2D(name: "b", config: config, tiles: [5, 1])])
        }
    }
}

/// Finite-difference checks for the 3-D layers.
struct VolumeGradientTests {
    typealias G = GradientCheckTests

    @Test(arguments: [([3, 3, 3], [1, 1, 1], Padding.same, [1, 1, 1]), ([2, 3, 2], [2, 1, 2], .valid, [1, 1, 1]),
                      ([2, 2, 2], [1, 1, 1], .same, [2, 1, 2])])
    func conv3D(_ kernel: [Int], _ strides: [Int], _ padding: Padding, _ dilation: [Int]) throws {
        let layer = Conv3D(name: "conv3d", filters: 3, kernelSize: kernel, strides: strides, padding: padding, dilation: dilation,
                           activation: .tanh)
        let (m, x) = try G.single(layer, input: [4, 5, 4, 2])
        #expect(layer.kernel.shape == kernel + [2, 3])
        try G.check(m, [x])
    }

    @Test(arguments: [PoolKind.max, .average])
    func pooling3D(_ kind: PoolKind) throws {
        var rng = SplitMix64(seed: 6)
        var vals: [Float] = (0..<240).map { Float($0) * 0.03 - 3.5 }   // distinct: the max is stable under ±ε
        vals.shuffle(using: &rng)
        for (pool, strides, padding) in [([2, 2, 2], [2, 2, 2], Padding.valid), ([3, 2, 2], [1, 2, 1], .same)] {
            let m = try GraphBuilder.sequential(name: "pool3d", inputShape: [4, 5, 3, 2],
                                                layers: [Pooling3D(name: "p", kind: kind, poolSize: pool, strides: strides, padding: padding)])
            try G.check(m, [Tensor(shape: [2, 4, 5, 3, 2], values: vals)], epsilon: 1e-2)
        }
        let g = try GraphBuilder.sequential(name: "gpool3d", inputShape: [4, 5, 3, 2],
                                            layers: [GlobalPooling3D(name: "g", kind: kind, keepDims: true)])
        #expect(g.outputShapes == [[1, 1, 1, 2]])
        try G.check(g, [Tensor(shape: [2, 4, 5, 3, 2], values: vals)], epsilon: 1e-2)
    }

    /// A 3-D convolution over a clip of one frame is the 2-D convolution of that frame.
    @Test func aOneFrameClipIsAnImage() throws {
        let conv3 = Conv3D(name: "c3", filters: 2, kernelSize: [1, 3, 3], padding: .same)
        let m3 = try GraphBuilder.sequential(name: "c3", inputShape: [1, 5, 4, 3], layers: [conv3], seed: 1)
        let conv2 = Conv2D(name: "c2", config: Conv2DConfig(filters: 2, kernelSize: [3, 3], padding: .same))
        let m2 = try GraphBuilder.sequential(name: "c2", inputShape: [5, 4, 3], layers: [conv2], seed: 1)
        conv2.kernel.value = conv3.kernel.value.reshaped([3, 3, 3, 2])
        let x = Tensor(shape: [2, 1, 5, 4, 3], values: G.values(120, seed: 2))
        let y3 = try m3.predict([x])[0], y2 = try m2.predict([x.reshaped([2, 5, 4, 3])])[0]
        #expect(y3.reshaped(y2.shape) == y2)
    }
}
