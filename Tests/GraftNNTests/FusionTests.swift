import Testing
import GraftTensor
@testable import GraftNN

/// Inference fusion (a BatchNormalization folded into the convolution before it, the activation after it applied
/// as the output is written) gives what running each layer on its own gives.
struct FusionTests {
    struct Net {
        let model: Model
        let layers: [any Layer]        // the chain, in order, for the layer-by-layer reference
        let nodes: [String: Int]
    }

    static func net() throws -> Net {
        var b = GraphBuilder(name: "fused", seed: 3)
        var layers: [any Layer] = []
        var nodes: [String: Int] = [:]
        var x = try b.input(InputLayer(name: "in", shape: [9, 8, 4]))
        func add(_ layer: any Layer) throws {
            x = try b.add(layer, inputs: [x])
            layers.append(layer)
            nodes[layer.name] = x
        }
        try add(Conv2D(name: "conv", config: Conv2DConfig(filters: 6, kernelSize: [3, 3], strides: [2, 1], padding: .same)))
        try add(BatchNormalization(name: "bn1"))
        try add(ActivationLayer(name: "relu6", kerasClassName: "ReLU", activation: .reluGeneral(maxValue: 0.8, negativeSlope: 0, threshold: 0)))
        try add(DepthwiseConv2D(name: "dw", config: DepthwiseConv2DConfig(kernelSize: [3, 3], padding: .same, depthMultiplier: 2, useBias: false)))
        try add(BatchNormalization(name: "bn2", epsilon: 1e-5))
        try add(ActivationLayer(name: "swish", activation: .swish))
        try add(SeparableConv2D(name: "sep", config: Conv2DConfig(filters: 5, kernelSize: [3, 3], padding: .same)))
        try add(BatchNormalization(name: "bn3", scale: false))
        try add(Conv2D(name: "conv_relu", config: Conv2DConfig(filters: 4, kernelSize: [1, 1], activation: .relu)))
        try add(Conv2D(name: "last", config: Conv2DConfig(filters: 3, kernelSize: [3, 3])))
        try add(BatchNormalization(name: "bn4"))
        let model = try b.finish(outputs: [x])
        // Batch statistics far from the identity, so a fold that ignored any of them would show.
        var rng = SplitMix64(seed: 11)
        for (path, v) in model.namedVariables where path.contains("bn") {
            let values = (0..<v.value.count).map { _ in
                path.hasSuffix("variance") ? rng.uniform(0.2, 2) : rng.uniform(-1, 1)
            }
            v.value = Tensor(shape: v.shape, values: values)
        }
        return Net(model: model, layers: layers, nodes: nodes)
    }

    static func input(_ seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: [2, 9, 8, 4], values: (0..<(2 * 9 * 8 * 4)).map { _ in rng.uniform(-2, 2) })
    }

    /// Each layer's own forward pass, one after another.
    static func layerByLayer(_ net: Net, _ x: Tensor, upTo last: String? = nil) throws -> Tensor {
        var y = x
        for layer in net.layers {
            y = try layer.forward([y], training: false)
            if layer.name == last { break }
        }
        return y
    }

    static func maxRelativeError(_ a: Tensor, _ b: Tensor) -> Float {
        #expect(a.shape == b.shape)
        let scale = max(b.scalars.map(abs).max() ?? 1, 1e-6)
        return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max()! / scale
    }

    @Test func theChainsFused() throws {
        let net = try Self.net()
        let m = net.model
        let plan = m.inferenceFusions(needed: [Bool](repeating: true, count: m.nodes.count), targets: m.outputNodes)
        let n = net.nodes
        #expect(plan[n["conv"]!]?.last == n["relu6"]! && plan[n["conv"]!]?.batchNorm?.name == "bn1")
        #expect(plan[n["dw"]!]?.last == n["swish"]! && plan[n["dw"]!]?.activation == .swish)
        #expect(plan[n["sep"]!]?.last == n["bn3"]! && plan[n["sep"]!]?.activation == .linear)
        #expect(plan[n["conv_relu"]!] == nil)     // its own activation: nothing after it can fold in
        #expect(plan[n["last"]!]?.last == n["bn4"]!)
        #expect(plan.count == 4)
    }

    @Test func fusedInferenceEqualsLayerByLayer() throws {
        let net = try Self.net()
        let x = Self.input(5)
        let fused = try net.model.predict([x])[0]
        #expect(Self.maxRelativeError(fused, try Self.layerByLayer(net, x)) < 1e-5)
    }

    @Test func aRequestedIntermediateValueIsNotFusedAway() throws {
        let net = try Self.net()
        let x = Self.input(6)
        // bn2 is asked for: the depthwise chain stops there (the swish after it runs on its own).
        let outs = try net.model.run([x], targets: [net.nodes["bn2"]!, net.model.outputNodes[0]])
        #expect(Self.maxRelativeError(outs[0], try Self.layerByLayer(net, x, upTo: "bn2")) < 1e-5)
        #expect(Self.maxRelativeError(outs[1], try Self.layerByLayer(net, x)) < 1e-5)
        let plan = net.model.inferenceFusions(needed: [Bool](repeating: true, count: net.model.nodes.count),
                                              targets: [net.nodes["bn2"]!])
        #expect(plan[net.nodes["dw"]!]?.last == net.nodes["bn2"]!)
    }

    /// A residual addition absorbs the ReLU after it (block by block, over more values than one block and one
    /// thread's share); a three-way sum and a subtraction followed by a batch norm are left as they are.
    @Test func aResidualAdditionAbsorbsTheActivationAfterIt() throws {
        var b = GraphBuilder(name: "residual", seed: 4)
        let x = try b.input(InputLayer(name: "in", shape: [40, 40, 16]))
        let convA = Conv2D(name: "a", config: Conv2DConfig(filters: 16, kernelSize: [3, 3], padding: .same))
        let convB = Conv2D(name: "b", config: Conv2DConfig(filters: 16, kernelSize: [1, 1]))
        let a = try b.add(convA, inputs: [x])
        let c = try b.add(convB, inputs: [x])
        let sum = try b.add(Merge(name: "sum", kind: .add), inputs: [a, c])
        let relu = try b.add(ActivationLayer(name: "relu", activation: .relu6), inputs: [sum])
        let three = try b.add(Merge(name: "three", kind: .add), inputs: [relu, a, c])
        let threeTanh = try b.add(ActivationLayer(name: "tanh", activation: .tanh), inputs: [three])
        let diff = try b.add(Merge(name: "diff", kind: .subtract), inputs: [threeTanh, a])
        let bn = try b.add(BatchNormalization(name: "bn"), inputs: [diff])
        let model = try b.finish(outputs: [bn])
        let plan = model.inferenceFusions(needed: [Bool](repeating: true, count: model.nodes.count), targets: model.outputNodes)
        #expect(plan[sum]?.last == relu && plan[sum]?.batchNorm == nil && plan[sum]?.activation == .relu6)
        #expect(plan[three]?.last == threeTanh)
        #expect(plan[diff] == nil)       // a batch norm never folds into a merge
        var rng = SplitMix64(seed: 8)
        let input = Tensor(shape: [3, 40, 40, 16], values: (0..<(3 * 40 * 40 * 16)).map { _ in rng.uniform(-10, 10) })
        let fused = try model.predict([input])[0]
        // The reference: every layer on its own.
        let ya = try convA.forward([input], training: false), yb = try convB.forward([input], training: false)
        let r = try ActivationLayer(name: "r", activation: .relu6).forward([try ya.elementwise(.add, yb)], training: false)
        let t = try ActivationLayer(name: "t", activation: .tanh)
            .forward([try (try r.elementwise(.add, ya)).elementwise(.add, yb)], training: false)
        let want = try model.layers.first { $0.name == "bn" }!.forward([try t.elementwise(.subtract, ya)], training: false)
        #expect(Self.maxRelativeError(fused, want) < 1e-6)
        #expect(r.scalars.contains(6) && r.scalars.contains(0))    // both clip bounds were reached
    }

    @Test func foldedWeightsFollowChangedVariables() throws {
        let net = try Self.net()
        let x = Self.input(7)
        _ = try net.model.predict([x])     // fills the folded-weight caches
        let bn = try #require(net.model.layer(named: "bn1") as? BatchNormalization)
        bn.movingMean.value = Tensor(shape: bn.movingMean.shape, values: bn.movingMean.value.scalars.map { $0 + 0.3 })
        let conv = try #require(net.model.layer(named: "conv") as? Conv2D)
        conv.kernel.value.withUnsafeMutableBufferPointer { $0[0] += 1 }     // an in-place change counts too
        let after = try net.model.predict([x])[0]
        #expect(Self.maxRelativeError(after, try Self.layerByLayer(net, x)) < 1e-5)
    }

    /// Training with a frozen base: the frozen chains run fused, keep nothing, and the trainable tail gets the
    /// same output and gradients as when every layer runs on its own.
    @Test func aFrozenPrefixRunsFusedWhileTraining() throws {
        let net = try Self.net()
        try net.model.freeze(.until("conv_relu"))
        let x = Self.input(8)
        var context = TrainingContext(seed: 1)
        let (outs, tape) = try net.model.forwardTraining([x], context: &context)
        // Absorbed nodes keep no value; the trainable tail (last, bn4) still has everything backward needs.
        for name in ["conv", "bn1", "dw", "bn2", "sep"] { #expect(tape.values[net.nodes[name]!] == nil, "\(name)") }
        #expect(tape.requiresGradient[net.nodes["last"]!] && !tape.requiresGradient[net.nodes["swish"]!])
        let stats = BackwardStats()
        try net.model.backward(tape, outputGradients: [Tensor(shape: outs[0].shape, repeating: 1)], stats: stats)
        #expect(stats.layersRun == ["bn4", "last"])
        // The same step layer by layer: the tail's kernel gradient agrees.
        let fused = try #require((net.model.layer(named: "last") as? Conv2D)?.kernel.grad)
        net.model.zeroGradients()
        let features = try Self.layerByLayer(net, x, upTo: "conv_relu")
        let last = try #require(net.model.layer(named: "last") as? Conv2D), bn4 = try #require(net.model.layer(named: "bn4"))
        var c2 = TrainingContext(seed: 1)
        let (z, zc) = try last.forwardTrain([features], context: &c2)
        let (y, yc) = try bn4.forwardTrain([z], context: &c2)     // batch statistics: bn4 trains
        #expect(Self.maxRelativeError(outs[0], y) < 1e-5)
        let dz = try bn4.backward([z], output: y, cache: yc, gradOutput: Tensor(shape: y.shape, repeating: 1),
                                  needsInputGradients: [true], preActivation: false)[0]!
        _ = try last.backward([features], output: z, cache: zc, gradOutput: dz, needsInputGradients: [false], preActivation: false)
        let alone = try #require(last.kernel.grad)
        #expect(Self.maxRelativeError(fused, alone) < 1e-4)
    }

    /// Kernels kept in oneDNN's layout between inference calls are refreshed when the weights change, whether
    /// assigned or modified in place.
    @Test func preparedKernelsFollowChangedWeights() throws {
        var b = GraphBuilder(name: "plain", seed: 4)
        let x = try b.input(InputLayer(name: "in", shape: [12, 12, 16]))
        let c = try b.add(Conv2D(name: "conv", config: Conv2DConfig(filters: 32, kernelSize: [3, 3], padding: .same, useBias: false)), inputs: [x])
        let d = try b.add(DepthwiseConv2D(name: "dw", config: DepthwiseConv2DConfig(kernelSize: [3, 3], padding: .same, useBias: false)), inputs: [c])
        let m = try b.finish(outputs: [d])
        var rng = SplitMix64(seed: 9)
        let input = Tensor(shape: [2, 12, 12, 16], values: (0..<(2 * 12 * 12 * 16)).map { _ in rng.uniform(-1, 1) })
        let y1 = try m.predict([input])[0].scalars
        let conv = try #require(m.layer(named: "conv") as? Conv2D)
        conv.kernel.value = Tensor(shape: conv.kernel.shape, values: conv.kernel.value.scalars.map { $0 * 2 })
        let y2 = try m.predict([input])[0].scalars
        let dw = try #require(m.layer(named: "dw") as? DepthwiseConv2D)
        dw.kernel.value.withUnsafeMutableBufferPointer { k in for i in k.indices { k[i] *= -3 } }
        let y3 = try m.predict([input])[0].scalars
        let scale = y1.map(abs).max() ?? 1
        #expect(zip(y2, y1).map { abs($0 - 2 * $1) }.max()! < 1e-5 * scale)
        #expect(zip(y3, y1).map { abs($0 + 6 * $1) }.max()! < 1e-5 * scale)
    }
}
