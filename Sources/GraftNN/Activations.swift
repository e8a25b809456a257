import GraftTensor

/// An element-wise activation as a layer: Keras `Activation`, `ReLU`, `LeakyReLU`, `ELU`, `Softmax`.
public final class ActivationLayer: Layer {
    public let name: String
    public let kerasClassName: String
    public let activation: ActivationKind
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, kerasClassName: String = "Activation", activation: ActivationKind) {
        self.name = name
        self.kerasClassName = kerasClassName
        self.activation = activation
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        return inputShapes[0]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        inputs[0].activated(activation)
    }
}

/// Keras `PReLU`: `max(x, 0) + alpha · min(x, 0)` with a learned `alpha` shaped like the input,
/// sizes 1 on `sharedAxes` (1-based, batch excluded, as Keras counts them).
public final class PReLU: Layer {
    public let name: String
    public let sharedAxes: [Int]
    public var kerasClassName: String { "PReLU" }
    public private(set) var alpha = Variable(Tensor(shape: [0]))

    public init(name: String, sharedAxes: [Int] = []) {
        self.name = name
        self.sharedAxes = sharedAxes
    }

    public var variables: [(key: String, variable: Variable)] { [("alpha", alpha)] }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        var s = inputShapes[0]
        for a in sharedAxes where a >= 1 && a <= s.count { s[a - 1] = 1 }
        guard s.allSatisfy({ $0 > 0 }) else {
            throw LayerError(name, "needs a known input shape on unshared axes, got \(Shape.describe([-1] + inputShapes[0]))")
        }
        try requireAllocatable([s])
        alpha = Variable(Tensor(shape: s))
        return inputShapes[0]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        let pos = try x.elementwise(.maximum, Tensor(shape: [1], repeating: 0))
        let neg = try x.elementwise(.minimum, Tensor(shape: [1], repeating: 0))
        let a = alpha.value.reshaped([1] + alpha.value.shape)
        return try pos.elementwise(.add, try neg.elementwise(.multiply, a))
    }
}

// MARK: - training

extension ActivationLayer {
    public var finalActivation: ActivationKind { activation }
    public var backwardReadsInputs: Bool { !activation.derivativeFollowsFromOutput }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        if preActivation { return [gradOutput] }
        return [Tensor.activationGradient(activation, z: inputs[0], y: output, dy: gradOutput)]
    }
}

extension PReLU {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        let a = alpha.value.reshaped([1] + alpha.value.shape)
        let negative = try x.elementwise(.minimum, Tensor(shape: [1], repeating: 0))
        if alpha.isTrainable {
            alpha.accumulate(try gradOutput.elementwise(.multiply, negative).reduced(toShape: a.shape).reshaped(alpha.value.shape))
        }
        guard needsInputGradients[0] else { return [nil] }
        // d/dx = 1 where x > 0, alpha elsewhere.
        var slope = Tensor(uninitializedShape: x.shape)
        let broadcastAlpha = try Tensor(shape: x.shape, repeating: 0).elementwise(.add, a)
        slope.withUnsafeMutableBufferPointer { s in
            x.withUnsafeBufferPointer { xv in
                broadcastAlpha.withUnsafeBufferPointer { av in
                    for i in 0..<xv.count { s[i] = xv[i] > 0 ? 1 : av[i] }
                }
            }
        }
        return [try gradOutput.elementwise(.multiply, slope)]
    }
}
