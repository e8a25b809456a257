import Foundation
import Testing
import GraftTensor
@testable import GraftNN

/// Finite-difference checks for the 1-D layers (`Sequence1D`), the channels-first layers (`ChannelsFirst`) and
/// BatchNormalization over a non-last axis, with the same loss and tolerance as `GradientCheckTests.check`.
struct LayoutGradientTests {
    typealias G = GradientCheckTests

    static func conv1D(_ name: String, filters: Int, kernel: Int, strides: Int = 1, padding: Padding = .valid,
                       dilation: Int = 1, groups: Int = 1, activation: ActivationKind = .linear) -> Sequence1D {
        Sequence1D(Conv2D(name: name, config: Conv2DConfig(filters: filters, kernelSize: [1, kernel], strides: [1, strides],
                                                           padding: padding, dilation: [1, dilation], groups: groups,
                                                           activation: activation)), kerasClassName: "Conv1D")
    }

    @Test(arguments: [(Padding.causal, 1, 2, 1), (.causal, 2, 1, 1), (.same, 2, 1, 2), (.valid, 1, 3, 2)])
    func conv1D(_ padding: Padding, _ strides: Int, _ dilation: Int, _ groups: Int) throws {
        let layer = Self.conv1D("conv1d", filters: 4, kernel: 3, strides: strides, padding: padding, dilation: dilation,
                                groups: groups, activation: .tanh)
        let (m, x) = try G.single(layer, input: [9, 4])
        #expect(layer.variable("kernel")?.shape == [3, 4 / groups, 4])   // Keras's [k, in/groups, out]
        try G.check(m, [x])
    }

    @Test func causalPaddingSeesOnlyThePast() throws {
        let layer = Self.conv1D("causal", filters: 1, kernel: 3, padding: .causal, dilation: 2)
        let m = try GraphBuilder.sequential(name: "causal", inputShape: [8, 1], layers: [layer])
        layer.variable("kernel")?.value = Tensor(shape: [3, 1, 1], repeating: 1)
        var x = Tensor(shape: [1, 8, 1], repeating: 0)
        x[0, 5, 0] = 1
        let y = try m.predict([x])[0]
        // Output t sums inputs t, t−2, t−4: an impulse at 5 reaches outputs 5 and 7, never 4 or earlier.
        #expect(y.shape == [1, 8, 1])
        #expect(y.scalars == [0, 0, 0, 0, 0, 1, 0, 1])
    }

    @Test func separableAndDepthwise1D() throws {
        let sep = Sequence1D(SeparableConv2D(name: "sep1d", config: Conv2DConfig(filters: 3, kernelSize: [1, 3], strides: [1, 2],
                                                                                 padding: .same, activation: .swish),
                                             depthMultiplier: 2), kerasClassName: "SeparableConv1D")
        let (ms, xs) = try G.single(sep, input: [7, 3])
        #expect(sep.variables.map(\.variable.shape) == [[3, 3, 2], [1, 6, 3], [3]])
        try G.check(ms, [xs])
        let dw = Sequence1D(DepthwiseConv2D(name: "dw1d", config: DepthwiseConv2DConfig(kernelSize: [1, 3], padding: .causal,
                                                                                        depthMultiplier: 2, activation: .tanh)),
                            kerasClassName: "DepthwiseConv1D")
        let (md, xd) = try G.single(dw, input: [6, 3])
        try G.check(md, [xd])
    }

    @Test func pooling1DAndShapes() throws {
        var rng = SplitMix64(seed: 4)
        var vals: [Float] = (0..<60).map { Float($0) * 0.07 - 2 }
        vals.shuffle(using: &rng)
        let x = Tensor(shape: [2, 10, 3], values: vals)
        let layers: [(any Layer, [Int])] = [
            (Sequence1D(Pooling2D(name: "max1d", kind: .max, poolSize: [1, 3], strides: [1, 2], padding: .same), kerasClassName: "MaxPooling1D"), [5, 3]),
            (Sequence1D(Pooling2D(name: "avg1d", kind: .average, poolSize: [1, 2]), kerasClassName: "AveragePooling1D"), [5, 3]),
            (Sequence1D(GlobalPooling2D(name: "gmax1d", kind: .max), kerasClassName: "GlobalMaxPooling1D"), [3]),
            (Sequence1D(GlobalPooling2D(name: "gavg1d", kind: .average, keepDims: true), kerasClassName: "GlobalAveragePooling1D"), [1, 3]),
            (Sequence1D(Padding2D(name: "pad1d", amounts: [[0, 0], [1, 2]], cropping: false), kerasClassName: "ZeroPadding1D"), [13, 3]),
            (Sequence1D(Padding2D(name: "crop1d", amounts: [[0, 0], [2, 1]], cropping: true), kerasClassName: "Cropping1D"), [7, 3]),
            (Sequence1D(UpSampling2D(name: "up1d", size: [1, 2]), kerasClassName: "UpSampling1D"), [20, 3]),
        ]
        for (layer, shape) in layers {
            let m = try GraphBuilder.sequential(name: layer.name, inputShape: [10, 3], layers: [layer])
            #expect(m.nodes.last?.outputShape == shape, "\(layer.name)")
            #expect(try m.predict([x])[0].shape == [2] + shape, "\(layer.name)")
            try G.check(m, [x], epsilon: 1e-2)
        }
    }

    @Test func channelsFirstConvolutionMatchesChannelsLast() throws {
        let config = Conv2DConfig(filters: 3, kernelSize: [3, 2], strides: [2, 1], padding: .same, activation: .tanh)
        let first = ChannelsFirst(Conv2D(name: "conv_cf", config: config))
        let mf = try GraphBuilder.sequential(name: "cf", inputShape: [2, 5, 4], layers: [first], seed: 9)
        let last = Conv2D(name: "conv_cl", config: config)
        let ml = try GraphBuilder.sequential(name: "cl", inputShape: [5, 4, 2], layers: [last], seed: 9)
        last.kernel.value = first.variables[0].variable.value
        let x = Tensor(shape: [2, 2, 5, 4], values: G.values(80, seed: 5))
        let yf = try mf.predict([x])[0]
        let yl = try ml.predict([x.movingAxis(1, to: 3)])[0]
        #expect(yf.shape == [2, 3, 3, 4])
        #expect(yf == yl.movingAxis(3, to: 1))
        try G.check(mf, [x])
    }

    @Test func channelsFirstLayersTrain() throws {
        var layers: [any Layer] = [
            ChannelsFirst(DepthwiseConv2D(name: "dw_cf", config: DepthwiseConv2DConfig(kernelSize: [2, 2], depthMultiplier: 2))),
            ChannelsFirst(Pooling2D(name: "pool_cf", kind: .average, poolSize: [2, 2], strides: [1, 1], padding: .same)),
            ChannelsFirst(Padding2D(name: "pad_cf", amounts: [[1, 0], [0, 1]], cropping: false)),
            ChannelsFirst(UpSampling2D(name: "up_cf", size: [1, 2])),
        ]
        layers.append(ChannelsFirst(Flatten(name: "flat_cf")))
        layers.append(Dense(name: "head", units: 3, activation: .softmax))
        let m = try GraphBuilder.sequential(name: "cf_stack", inputShape: [2, 4, 3], layers: layers, seed: 11)
        #expect(m.nodes.map(\.outputShape).dropFirst() == [[4, 3, 2], [4, 3, 2], [4, 4, 3], [4, 4, 6], [96], [3]])
        try G.check(m, [Tensor(shape: [2, 2, 4, 3], values: G.values(48, seed: 12))])
    }

    /// Keras's channels-first Flatten moves the channels last before flattening.
    @Test func channelsFirstFlattenOrder() throws {
        let m = try GraphBuilder.sequential(name: "flat", inputShape: [2, 1, 3], layers: [ChannelsFirst(Flatten(name: "f"))])
        let x = Tensor(shape: [1, 2, 1, 3], values: [1, 2, 3, 10, 20, 30])
        #expect(try m.predict([x])[0].scalars == [1, 10, 2, 20, 3, 30])
    }

    @Test(arguments: [1, 2, -3])
    func batchNormOverAnotherAxis(_ axis: Int) throws {
        let bn = BatchNormalization(name: "bn_axis\(axis)", momentum: 0.9, axis: axis)
        let (m, x) = try G.single(bn, input: [3, 4, 2])
        let channels = [3, 4, 3][[1, 2, -3].firstIndex(of: axis)!]
        #expect(bn.channelCount == channels && !bn.normalizesLastAxis)
        bn.gamma?.value = Tensor(shape: [channels], values: G.values(channels, seed: 2, lo: 0.5, hi: 1.5))
        try G.check(m, [x])
        bn.frozen = true
        bn.movingVariance.value = Tensor(shape: [channels], values: G.values(channels, seed: 3, lo: 0.5, hi: 2))
        try G.check(m, [x])
        // Inference: each slice along the axis is scaled by its own statistics.
        let y = try m.predict([x])[0]
        let (s, t) = bn.inferenceAffine()
        let a = (axis + 4) % 4
        let moved = x.movingAxis(a, to: 3)
        let expected = moved.channelAffine(scale: s, shift: t).movingAxis(3, to: a)
        #expect(y == expected)
    }

    @Test func permutationsRoundTrip() {
        let x = Tensor(shape: [2, 3, 4, 5], values: (0..<120).map(Float.init))
        let p = x.permuted([2, 0, 3, 1])
        #expect(p.shape == [4, 2, 5, 3])
        #expect(p[3, 1, 4, 2] == x[1, 2, 3, 4])
        #expect(p.permuted([1, 3, 0, 2]) == x)
        #expect(x.movingAxis(1, to: 3).movingAxis(3, to: 1) == x)
    }
}
