import GraftTensor

// Layers whose data are laid out other than Graft's `[N, H, W, C]`: Keras's 1-D layers (`[N, L, C]`) and
// `channels_first` layers (`[N, C, …]`). Each runs a channels-last 2-D layer on a view of its input, so the 1-D and
// channels-first layers share the 2-D kernels (oneDNN, im2col), their backward passes and their gradient checks.

/// A Keras 1-D layer (`Conv1D`, `MaxPooling1D`, `Cropping1D`, …) run as its 2-D counterpart on `[N, 1, L, C]`: the
/// sequence is a one-pixel-high image, the kernels `[1, k, …]`. Kernels keep Keras's 1-D shape (`[k, in, out]`,
/// the same numbers in the same order).
public final class Sequence1D: Layer {
    /// The 2-D layer that does the work, built for `[1, L, C]`.
    public let inner: any Layer
    public let kerasClassName: String
    public var name: String { inner.name }

    /// `kerasClassName`: the 1-D class it stands for (`Conv1D`).
    public init(_ inner: any Layer, kerasClassName: String) {
        self.inner = inner
        self.kerasClassName = kerasClassName
    }

    public var variables: [(key: String, variable: Variable)] { inner.variables }

    public func variableKey(forCheckpointName name: String) -> String? { inner.variableKey(forCheckpointName: name) }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        try requireRank(inputShapes[0], 2)
        let out = try inner.build(inputShapes: [[1] + inputShapes[0]], rng: &rng)
        // A 2-D kernel [1, k, in, out] is stored as Keras's [k, in, out]: same values, same order.
        for (_, v) in inner.variables where v.shape.count == 4 && v.shape[0] == 1 {
            v.value = v.value.reshaped(Array(v.shape.dropFirst()))
        }
        return out.count == 3 ? Array(out.dropFirst()) : out
    }

    /// `[N, L, C]` → `[N, 1, L, C]` (a placeholder the training tape passes for an unread value stays as it is).
    static func image(_ x: Tensor) -> Tensor { x.rank == 3 ? x.reshaped([x.shape[0], 1] + x.shape.dropFirst()) : x }
    /// `[N, 1, L, C]` → `[N, L, C]`; other ranks (a global pooling's `[N, C]`) unchanged.
    static func sequence(_ y: Tensor) -> Tensor { y.rank == 4 ? y.reshaped([y.shape[0]] + y.shape.dropFirst(2)) : y }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try checkInput(inputs[0])
        return Self.sequence(try inner.forward([Self.image(inputs[0])], training: training))
    }

    func checkInput(_ x: Tensor) throws {
        guard x.rank == 3 else { throw LayerError(name, "expects a [batch, steps, channels] input, got \(Shape.describe(x.shape))") }
    }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        try checkInput(inputs[0])
        let (y, cache) = try inner.forwardTrain([Self.image(inputs[0])], context: &context)
        return (Self.sequence(y), cache)
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        try inner.backward([Self.image(inputs[0])], output: Self.image(output), cache: cache, gradOutput: Self.image(gradOutput),
                           needsInputGradients: needsInputGradients, preActivation: preActivation)
            .map { $0.map(Self.sequence) }
    }

    public var finalActivation: ActivationKind { inner.finalActivation }
    public var backwardReadsInputs: Bool { inner.backwardReadsInputs }
    public var backwardReadsOutput: Bool { inner.backwardReadsOutput }
}

/// A Keras layer with `data_format: channels_first` (channels at axis 1: `[N, C, H, W]`, `[N, C, L]`), run as the
/// channels-last `inner` on its input with the channel axis moved last, and the channel axis of the result moved
/// back (when the result keeps the input's rank: `Flatten` and global pooling do not, as in Keras). Weights are
/// unchanged: Keras stores kernels in one layout whatever the data format.
public final class ChannelsFirst: Layer {
    public let inner: any Layer
    public var name: String { inner.name }
    public var kerasClassName: String { inner.kerasClassName }
    private var keepsRank = true

    public init(_ inner: any Layer) { self.inner = inner }

    public var variables: [(key: String, variable: Variable)] { inner.variables }

    public func variableKey(forCheckpointName name: String) -> String? { inner.variableKey(forCheckpointName: name) }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        guard s.count >= 2 else {
            throw LayerError(name, "channels_first needs channels and at least one spatial axis, got \(Shape.describe([-1] + s))")
        }
        let out = try inner.build(inputShapes: [Array(s.dropFirst()) + [s[0]]], rng: &rng)
        keepsRank = out.count == s.count
        if keepsRank, inner.finalActivation.isAlongLastAxis {
            // Keras applies it over the last axis of the channels-first output (a spatial axis), not the channels.
            throw LayerError(name, "a \(inner.finalActivation) activation on a channels_first output is not supported")
        }
        return keepsRank ? [out[out.count - 1]] + out.dropLast() : out
    }

    func channelsLast(_ x: Tensor) -> Tensor { x.movingAxis(1, to: x.rank - 1) }
    func channelsFirst(_ y: Tensor) -> Tensor { keepsRank ? y.movingAxis(y.rank - 1, to: 1) : y }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        try checkInput(inputs[0])
        return channelsFirst(try inner.forward([channelsLast(inputs[0])], training: training))
    }

    func checkInput(_ x: Tensor) throws {
        guard x.rank >= 3 else { throw LayerError(name, "channels_first expects [batch, channels, …], got \(Shape.describe(x.shape))") }
    }

    /// The inner layer's cache and the values its backward pass reads, in its own layout.
    struct Cache { let inner: Any?; let input: Tensor?; let output: Tensor? }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        try checkInput(inputs[0])
        let x = channelsLast(inputs[0])
        let (y, cache) = try inner.forwardTrain([x], context: &context)
        return (channelsFirst(y), Cache(inner: cache, input: inner.backwardReadsInputs ? x : nil,
                                        output: inner.backwardReadsOutput ? y : nil))
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        guard let c = cache as? Cache else { throw LayerError(name, "backward needs a training-mode forward first") }
        let dy = keepsRank ? gradOutput.movingAxis(1, to: gradOutput.rank - 1) : gradOutput
        let grads = try inner.backward([c.input ?? Tensor(shape: [0])], output: c.output ?? Tensor(shape: [0]), cache: c.inner,
                                       gradOutput: dy, needsInputGradients: needsInputGradients, preActivation: preActivation)
        return grads.map { $0.map { $0.movingAxis($0.rank - 1, to: 1) } }
    }

    public var finalActivation: ActivationKind { inner.finalActivation }
    public var backwardReadsInputs: Bool { false }
    public var backwardReadsOutput: Bool { false }
}

extension Model {
    /// True when the model reads its image input channels-first (`[C, H, W]`): every layer that reads the input is a
    /// `channels_first` layer (looking inside a nested model that takes the input). Graft's image pipeline then hands
    /// it `[N, C, H, W]` batches.
    public var readsChannelsFirstImages: Bool {
        guard inputNodes.count == 1, let input = inputNodes.first, inputShapes.first?.count == 3 else { return false }
        let readers = nodes.filter { $0.inputs.contains(input) }.map(\.layer)
        return !readers.isEmpty && readers.allSatisfy { layer in
            if let nested = layer as? Model { return nested.readsChannelsFirstImages }
            return layer is ChannelsFirst
        }
    }
}
