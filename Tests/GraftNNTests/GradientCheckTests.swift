import Foundation
import Testing
import GraftTensor
@testable import GraftNN

/// Central-difference gradient checks, accumulated in Double, for every layer's input and parameters.
///
/// Loss L = Σ y ⊙ R for a fixed random R, so dL/dy = R. With float32 forward passes, step ε = 5e-3 and
/// |L| ≲ 10², rounding contributes about 10² · 6e-8 / (2ε) ≈ 6e-4 to a numeric derivative, and truncation
/// O(ε²·f‴) about 1e-4: hence |analytic − numeric| ≤ 2e-3 + 2e-2·|numeric|. Inputs are kept away from kinks.
struct GradientCheckTests {
    static func values(_ n: Int, seed: UInt64, lo: Float = -1, hi: Float = 1, awayFromZero: Float = 0.05) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            var v = rng.uniform(lo, hi)
            if abs(v) < awayFromZero { v += v < 0 ? -awayFromZero : awayFromZero }
            return v
        }
    }

    /// Checks dL/dinput and dL/dparameter for `model` at `inputs`.
    /// `fixed`: inputs that take no gradient (masks, token ids), neither perturbed nor checked.
    static func check(_ model: Model, _ inputs: [Tensor], seed: UInt64 = 1, epsilon: Float = 5e-3,
                      samples: Int = 24, fixed: Set<Int> = [], sourceLocation: SourceLocation = #_sourceLocation) throws {
        func loss(_ xs: [Tensor], _ r: Tensor) throws -> Double {
            var ctx = TrainingContext(seed: seed)
            let y = try model.forwardTraining(xs, context: &ctx).outputs[0]
            var s = 0.0
            for (a, b) in zip(y.scalars, r.scalars) { s += Double(a) * Double(b) }
            return s
        }
        var ctx = TrainingContext(seed: seed)
        model.zeroGradients()
        let (outs, tape) = try model.forwardTraining(inputs, context: &ctx, inputsNeedGradients: inputs.indices.map { !fixed.contains($0) })
        let r = Tensor(shape: outs[0].shape, values: values(outs[0].count, seed: seed + 100, awayFromZero: 0))
        let inputGrads = try model.backward(tape, outputGradients: [r])
        var failures = 0
        func compare(_ analytic: Float, _ numeric: Double, _ what: String) {
            let ok = abs(Double(analytic) - numeric) <= 2e-3 + 2e-2 * abs(numeric)
            if !ok && failures < 5 {
                Issue.record("\(model.name) \(what): analytic \(analytic) vs numeric \(numeric)", sourceLocation: sourceLocation)
            }
            if !ok { failures += 1 }
        }
        var pick = SplitMix64(seed: seed + 7)
        func indices(_ n: Int) -> [Int] { n <= samples ? Array(0..<n) : (0..<samples).map { _ in Int(pick.next() % UInt64(n)) } }
        for (k, x) in inputs.enumerated() where !fixed.contains(k) {
            guard let g = inputGrads[k] else {
                Issue.record("\(model.name): no gradient for input \(k)", sourceLocation: sourceLocation)
                continue
            }
            for i in indices(x.count) {
                var plus = inputs, minus = inputs
                plus[k].withUnsafeMutableBufferPointer { $0[i] += epsilon }
                minus[k].withUnsafeMutableBufferPointer { $0[i] -= epsilon }
                let numeric = (try loss(plus, r) - loss(minus, r)) / (2 * Double(epsilon))
                compare(g.scalars[i], numeric, "input \(k)[\(i)]")
            }
        }
        for (path, v) in model.namedVariables where v.isTrainable {
            guard let g = v.grad else {
                Issue.record("\(model.name): no gradient for \(path)", sourceLocation: sourceLocation)
                continue
            }
            let original = v.value
            for i in indices(original.count) {
                var p = original, m = original
                p.withUnsafeMutableBufferPointer { $0[i] += epsilon }
                m.withUnsafeMutableBufferPointer { $0[i] -= epsilon }
                v.value = p
                let lp = try loss(inputs, r)
                v.value = m
                let lm = try loss(inputs, r)
                v.value = original
                compare(g.scalars[i], (lp - lm) / (2 * Double(epsilon)), "\(path)[\(i)]")
            }
        }
    }

    static func single(_ layer: any Layer, input shape: [Int], seed: UInt64 = 3) throws -> (Model, Tensor) {
        let m = try GraphBuilder.sequential(name: layer.name, inputShape: shape, layers: [layer], seed: seed)
        // Non-zero biases so they matter.
        for (_, v) in m.namedVariables where v.shape.count == 1 && !v.isBuffer {
            v.value = Tensor(shape: v.shape, values: values(v.value.count, seed: seed + 50, lo: -0.5, hi: 0.5))
        }
        let x = Tensor(shape: [2] + shape, values: values(2 * shape.reduce(1, *), seed: seed + 1))
        return (m, x)
    }

    struct ConvCase: Sendable, CustomTestStringConvertible {
        let config: Conv2DConfig
        let input: [Int]
        var testDescription: String {
            "k\(config.kernelSize) s\(config.strides) d\(config.dilation) g\(config.groups) \(config.padding) \(config.activation)"
        }
    }

    static let convCases: [ConvCase] = [
        ConvCase(config: Conv2DConfig(filters: 3, kernelSize: [3, 3], padding: .same, activation: .tanh), input: [5, 5, 2]),
        ConvCase(config: Conv2DConfig(filters: 4, kernelSize: [3, 2], strides: [2, 2], padding: .same), input: [6, 7, 3]),
        ConvCase(config: Conv2DConfig(filters: 2, kernelSize: [3, 3], padding: .valid, dilation: [2, 2]), input: [7, 6, 2]),
        ConvCase(config: Conv2DConfig(filters: 4, kernelSize: [3, 3], padding: .same, groups: 2, activation: .sigmoid), input: [4, 4, 4]),
        ConvCase(config: Conv2DConfig(filters: 5, kernelSize: [1, 1]), input: [3, 3, 4]),   // pointwise GEMM path
        ConvCase(config: Conv2DConfig(filters: 3, kernelSize: [1, 1], strides: [2, 2], useBias: false), input: [5, 5, 2]),
    ]

    @Test(arguments: convCases)
    func conv2d(_ c: ConvCase) throws {
        let (m, x) = try Self.single(Conv2D(name: "conv", config: c.config), input: c.input)
        try Self.check(m, [x])
    }

    @Test(arguments: [(1, 1, Padding.same), (2, 2, .same), (1, 2, .valid)])
    func depthwise(_ multiplier: Int, _ stride: Int, _ padding: Padding) throws {
        let (m, x) = try Self.single(DepthwiseConv2D(name: "dw", config: DepthwiseConv2DConfig(
            kernelSize: [3, 3], strides: [stride, stride], padding: padding, depthMultiplier: multiplier, activation: .tanh)), input: [5, 6, 3])
        try Self.check(m, [x])
    }

    @Test func separable() throws {
        let (m, x) = try Self.single(SeparableConv2D(name: "sep", config: Conv2DConfig(filters: 4, kernelSize: [3, 3], strides: [2, 1],
                                                                                       padding: .same, activation: .swish), depthMultiplier: 2),
                                     input: [5, 5, 3])
        try Self.check(m, [x])
    }

    @Test func locallyConnected() throws {
        let (m, x) = try Self.single(LocallyConnected2D(name: "lc", config: Conv2DConfig(filters: 2, kernelSize: [2, 2], strides: [1, 2],
                                                                                         activation: .tanh)), input: [4, 5, 2])
        try Self.check(m, [x])
    }

    @Test func dense() throws {
        let (m, x) = try Self.single(Dense(name: "fc", units: 4, activation: .tanh), input: [6])
        try Self.check(m, [x])
        let (m4, x4) = try Self.single(Dense(name: "fc4d", units: 3), input: [2, 2, 5])
        try Self.check(m4, [x4])
        let (ms, xs) = try Self.single(Dense(name: "softmax_head", units: 5, activation: .softmax), input: [4])
        try Self.check(ms, [xs])
    }

    @Test func batchNormTrainingAndFrozen() throws {
        let bn = BatchNormalization(name: "bn", epsilon: 1e-3, momentum: 0.9)
        let (m, x) = try Self.single(bn, input: [3, 3, 4])
        bn.gamma?.value = Tensor(shape: [4], values: [1.5, 0.5, 1, 2])
        try Self.check(m, [x])
        #expect(bn.movingMean.value.scalars != [0, 0, 0, 0])   // training updated the statistics
        let frozen = BatchNormalization(name: "bn_frozen")
        let (mf, xf) = try Self.single(frozen, input: [3, 3, 4])
        frozen.movingVariance.value = Tensor(shape: [4], values: [0.5, 2, 1, 3])
        frozen.frozen = true
        let before = frozen.movingMean.value
        try Self.check(mf, [xf])
        #expect(frozen.movingMean.value == before)   // inference mode: statistics untouched
    }

    static let activations: [ActivationKind] = [
        .linear, .relu, .relu6, .sigmoid, .tanh, .softmax, .softplus, .softsign, .exponential, .swish, .elu(alpha: 0.7), .selu,
        .gelu(approximate: false), .gelu(approximate: true), .hardSigmoid(keras2: true), .hardSigmoid(keras2: false), .hardSwish,
        .leakyReLU(alpha: 0.2), .mish, .reluGeneral(maxValue: 0.8, negativeSlope: 0.1, threshold: 0.3),
    ]

    @Test(arguments: activations)
    func activation(_ kind: ActivationKind) throws {
        let m = try GraphBuilder.sequential(name: "act_\(kind)", inputShape: [3, 4], layers: [ActivationLayer(name: "act", activation: kind)])
        // Values in ±[0.35, 2]: away from every kink (0, 0.3, 0.8, ±2.5, ±3, 6).
        var x = Self.values(24, seed: 9, lo: -2, hi: 2, awayFromZero: 0.35)
        x = x.map { abs($0 - 0.8) < 0.05 ? $0 + 0.1 : $0 }
        try Self.check(m, [Tensor(shape: [2, 3, 4], values: x)])
    }

    @Test func prelu() throws {
        let p = PReLU(name: "prelu", sharedAxes: [1, 2])
        let (m, x) = try Self.single(p, input: [3, 3, 2])
        p.alpha.value = Tensor(shape: [1, 1, 2], values: [0.25, -0.5])
        try Self.check(m, [x])
    }

    @Test(arguments: [PoolKind.max, .average, .sum])
    func pooling(_ kind: PoolKind) throws {
        // Distinct, well-separated values so the max is stable under ±ε.
        var rng = SplitMix64(seed: 4)
        var vals: [Float] = (0..<120).map { (i: Int) -> Float in Float(i) * 0.05 - 3 }
        vals.shuffle(using: &rng)
        for (k, s, p) in [(2, 2, Padding.valid), (3, 2, .same), (3, 1, .same)] {
            let m = try GraphBuilder.sequential(name: "pool_\(kind)_\(k)\(s)\(p)", inputShape: [5, 6, 2],
                                                layers: [Pooling2D(name: "p", kind: kind, poolSize: [k, k], strides: [s, s], padding: p)])
            try Self.check(m, [Tensor(shape: [2, 5, 6, 2], values: vals)], epsilon: 1e-2)
        }
        let g = try GraphBuilder.sequential(name: "gpool_\(kind)", inputShape: [5, 6, 2],
                                            layers: [GlobalPooling2D(name: "g", kind: kind == .sum ? .average : kind, keepDims: true)])
        try Self.check(g, [Tensor(shape: [2, 5, 6, 2], values: vals)], epsilon: 1e-2)
    }

    @Test func reshapingLayers() throws {
        var layers: [any Layer] = []
        layers.append(Padding2D(name: "pad", amounts: [[1, 2], [0, 1]], cropping: false))
        layers.append(Padding2D(name: "crop", amounts: [[1, 0], [1, 1]], cropping: true))
        layers.append(UpSampling2D(name: "up", size: [2, 3]))
        layers.append(UpSampling2D(name: "upb", size: [2, 2], bilinear: true))
        layers.append(Flatten(name: "flat"))
        layers.append(Reshape(name: "reshape", targetShape: [-1, 2]))
        layers.append(Rescaling(name: "rescale", scale: [0.5, 2], offset: [1, -1]))
        layers.append(Normalization(name: "norm", mean: [0.5, -1], variance: [4, 0.25]))
        for layer in layers {
            let (m, x) = try Self.single(layer, input: [3, 4, 2])
            try Self.check(m, [x])
        }
    }

    @Test func merges() throws {
        for kind in [Merge.Kind.add, .subtract, .multiply, .average, .maximum, .minimum] {
            var b = GraphBuilder(name: "merge_\(kind)")
            let a = try b.input(InputLayer(name: "a", shape: [2, 2, 3]))
            let c = try b.input(InputLayer(name: "c", shape: kind == .multiply ? [1, 1, 3] : [2, 2, 3]))
            let out = try b.add(Merge(name: "m", kind: kind), inputs: [a, c])
            let m = try b.finish(outputs: [out])
            let xa = Tensor(shape: [2, 2, 2, 3], values: Self.values(24, seed: 21))
            let xc = Tensor(shape: kind == .multiply ? [2, 1, 1, 3] : [2, 2, 2, 3], values: Self.values(kind == .multiply ? 6 : 24, seed: 22))
            try Self.check(m, [xa, xc])
        }
        var b = GraphBuilder(name: "concat_ops")
        let a = try b.input(InputLayer(name: "a", shape: [2, 2, 3]))
        let c = try b.input(InputLayer(name: "c", shape: [2, 2, 2]))
        let cat = try b.add(Concatenate(name: "cat"), inputs: [a, c])
        let plus = try b.add(TensorOp(name: "plus3", kerasClassName: "Add", op: .add, operands: [.input(0), .constant(3)]), inputs: [cat])
        let div = try b.add(TensorOp(name: "div", kerasClassName: "Divide", op: .divide, operands: [.input(0), .input(1)]), inputs: [cat, plus])
        let m = try b.finish(outputs: [div])
        try Self.check(m, [Tensor(shape: [2, 2, 2, 3], values: Self.values(24, seed: 31)), Tensor(shape: [2, 2, 2, 2], values: Self.values(16, seed: 32))])
    }

    @Test func dropoutFamilyWithFixedSeed() throws {
        for (cls, rate) in [("Dropout", Float(0.3)), ("SpatialDropout2D", 0.5), ("SpatialDropout1D", 0.4), ("GaussianDropout", 0.2),
                            ("GaussianNoise", 0.1), ("AlphaDropout", 0.2), ("StochasticDepth", 0.3), ("Identity", 0)] {
            let (m, x) = try Self.single(InferenceIdentity(name: cls.lowercased(), kerasClassName: cls, rate: rate), input: [3, 3, 2])
            try Self.check(m, [x])
        }
    }

    /// A residual block with a shared tensor feeding two branches, BN in training mode, and a nested model:
    /// the whole network's named gradients at once.
    @Test func residualBlockWithNestedModel() throws {
        let inner = try GraphBuilder.sequential(name: "inner", inputShape: [4, 4, 3], layers: [
            Conv2D(name: "inner_conv", config: Conv2DConfig(filters: 3, kernelSize: [3, 3], padding: .same)),
            BatchNormalization(name: "inner_bn"),
        ], seed: 5)
        var b = GraphBuilder(name: "residual", seed: 6)
        let x = try b.input(InputLayer(name: "x", shape: [4, 4, 3]))
        let y = try b.add(inner, inputs: [x])
        let r = try b.add(ActivationLayer(name: "relu", activation: .tanh), inputs: [y])
        let s = try b.add(Merge(name: "add", kind: .add), inputs: [r, x])
        let p = try b.add(GlobalPooling2D(name: "gap", kind: .average), inputs: [s])
        let o = try b.add(Dense(name: "head", units: 2, activation: .softmax), inputs: [p])
        let m = try b.finish(outputs: [o])
        try Self.check(m, [Tensor(shape: [3, 4, 4, 3], values: Self.values(144, seed: 41))])
    }

    /// A ResNet-style block: the tape keeps only what backward reads (no batch-norm output feeding a ReLU or a sum,
    /// no sum feeding a ReLU), and the gradients still check out.
    @Test func residualBlockKeepsOnlyWhatBackwardReads() throws {
        var b = GraphBuilder(name: "block", seed: 8)
        let x = try b.input(InputLayer(name: "x", shape: [5, 5, 3]))
        let c1 = try b.add(Conv2D(name: "c1", config: Conv2DConfig(filters: 4, kernelSize: [3, 3], padding: .same)), inputs: [x])
        let n1 = try b.add(BatchNormalization(name: "n1"), inputs: [c1])
        let r1 = try b.add(ActivationLayer(name: "r1", activation: .relu6), inputs: [n1])
        let c2 = try b.add(Conv2D(name: "c2", config: Conv2DConfig(filters: 3, kernelSize: [3, 3], padding: .same)), inputs: [r1])
        let n2 = try b.add(BatchNormalization(name: "n2"), inputs: [c2])
        let s = try b.add(Merge(name: "add", kind: .add), inputs: [n2, x])
        let r2 = try b.add(ActivationLayer(name: "r2", activation: .relu), inputs: [s])
        let p = try b.add(GlobalPooling2D(name: "gap", kind: .average), inputs: [r2])
        let o = try b.add(Dense(name: "head", units: 2), inputs: [p])
        let m = try b.finish(outputs: [o])
        let input = Tensor(shape: [2, 5, 5, 3], values: Self.values(150, seed: 43))
        try Self.check(m, [input])
        var ctx = TrainingContext(seed: 1)
        let tape = try m.forwardTraining([input], context: &ctx).tape
        #expect(tape.values[n1] == nil && tape.values[s] == nil && tape.values[n2] == nil)
        #expect(tape.values[c1] != nil && tape.values[r1] != nil && tape.values[c2] != nil && tape.values[r2] != nil)
    }
}
