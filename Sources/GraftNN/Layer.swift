import Foundation
import GraftCore
import GraftTensor

/// A named tensor owned by a layer: a trainable parameter, or a buffer (BatchNormalization's running
/// statistics), which is saved and loaded but never optimised.
public final class Variable {
    /// The current value.
    public var value: Tensor {
        didSet { version = Variable.nextVersion() }
    }
    /// Changes whenever `value` is set or mutated; unique across all variables (a cache keyed on versions never
    /// mistakes one variable's value for another's).
    public private(set) var version = Variable.nextVersion()

    private final class Counter: @unchecked Sendable {
        let lock = NSLock()
        var next = 0
    }
    private static let counter = Counter()
    static func nextVersion() -> Int {
        counter.lock.lock()
        defer { counter.lock.unlock() }
        counter.next += 1
        return counter.next
    }
    /// True for running statistics and other state that no optimizer updates.
    public let isBuffer: Bool
    /// Set by `freeze`; a frozen parameter gets no gradient and no update.
    public var frozen: Bool = false
    /// The gradient accumulated by the last backward pass (nil until one ran, or after `zeroGradient`).
    public var grad: Tensor?

    public init(_ value: Tensor, isBuffer: Bool = false) {
        self.value = value
        self.isBuffer = isBuffer
    }

    /// True when an optimizer may update it (Keras's "trainable weights").
    public var isTrainable: Bool { !isBuffer && !frozen }
    public var shape: [Int] { value.shape }

    /// Adds into the gradient through a pointer, allocating a zero gradient first if needed.
    public func withGradient<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        var g = takeGradient()
        defer { grad = g }
        return try g.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }

    /// The gradient to add into, moved out of the variable (zeros when it has none yet) so that writes do not copy
    /// it; nil when the variable is frozen. Give it back with `restoreGradient`.
    public func takeTrainableGradient() -> Tensor? {
        isTrainable ? takeGradient() : nil
    }

    /// The gradient (zeros when there is none yet), moved out so that its storage is uniquely referenced and a
    /// write does not copy it.
    private func takeGradient() -> Tensor {
        let g = grad ?? Tensor(shape: value.shape, repeating: 0)
        grad = nil
        return g
    }

    /// Puts back the gradient `takeTrainableGradient` gave (nothing for nil).
    public func restoreGradient(_ g: Tensor?) {
        if let g { grad = g }
    }

    /// Adds `g` (same shape) to the gradient.
    public func accumulate(_ g: Tensor) {
        precondition(g.shape == value.shape || g.count == value.count, "gradient \(g.shape) for variable \(value.shape)")
        withGradient { dst in g.withUnsafeBufferPointer { src in for i in 0..<src.count { dst[i] += src[i] } } }
    }
}

/// Errors raised while building or running a network: each names the layer.
public struct LayerError: GraftError {
    public let layer: String
    public let message: String

    public init(_ layer: String, _ message: String) {
        self.layer = layer
        self.message = message
    }

    public var description: String { "layer \(layer): \(message)" }
    public var context: ErrorContext { ErrorContext(layer: layer) }
}

/// A network layer. Shapes passed to `build` exclude the batch axis and use -1 for unknown sizes.
public protocol Layer: AnyObject {
    /// Unique name within its model (Keras's layer name).
    var name: String { get }
    /// The Keras class this layer corresponds to (`Conv2D`, `BatchNormalization`, …).
    var kerasClassName: String { get }
    /// Variables in Keras's weight order, keyed by Keras weight name (`kernel`, `bias`, `gamma`, …).
    var variables: [(key: String, variable: Variable)] { get }
    /// Validates input shapes, creates variables sized for them, and returns the output shape.
    func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int]
    /// Runs the layer on a batch. `training` selects dropout and batch statistics.
    func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor
    /// Maps a weight name found in a checkpoint to this layer's key (handles Keras 2/3 and Keras 1 spellings).
    func variableKey(forCheckpointName name: String) -> String?
    /// Training-mode forward: the output and whatever `backward` needs (batch statistics, masks, pre-activations).
    func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?)
    /// Gradients with respect to the inputs (nil where `needsInputGradients` is false), adding parameter gradients
    /// into the trainable variables' `grad`. With `preActivation`, `gradOutput` is already the gradient of the
    /// layer's pre-activation (a fused softmax–cross-entropy).
    func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                  needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?]
    /// The activation applied last (softmax heads let the loss fuse with it).
    var finalActivation: ActivationKind { get }
    /// False when `backward` never reads its inputs (a ReLU's gradient follows from its output): a training-mode
    /// forward pass then need not keep them.
    var backwardReadsInputs: Bool { get }
    /// False when `backward` never reads the layer's output (batch normalisation works from its input).
    var backwardReadsOutput: Bool { get }
}

/// State threaded through a training-mode forward pass.
public struct TrainingContext {
    /// Drives dropout masks and noise.
    public var rng: SplitMix64
    /// Frozen BatchNormalization layers keep updating their moving statistics (Keras does not; off by default).
    public var updateFrozenBatchNormStatistics: Bool
    /// Set by a model for the nested model it is about to run: which of its inputs need a gradient.
    var nestedInputsNeedGradients: [Bool]?

    public init(seed: UInt64, updateFrozenBatchNormStatistics: Bool = false) {
        rng = SplitMix64(seed: seed)
        self.updateFrozenBatchNormStatistics = updateFrozenBatchNormStatistics
    }
}

/// What a layer with a built-in activation keeps for its backward pass.
public struct ActivationCache {
    /// The pre-activation (logits for a softmax head).
    public let z: Tensor
    public let extra: Any?
}

extension Layer {
    public func variableKey(forCheckpointName name: String) -> String? {
        variables.contains { $0.key == name } ? name : nil
    }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        (try forward(inputs, training: true), nil)
    }

    public var finalActivation: ActivationKind { .linear }
    public var backwardReadsInputs: Bool { true }
    public var backwardReadsOutput: Bool { true }

    /// True when at least one of its parameters can be trained.
    public var hasTrainableParameters: Bool { variables.contains { $0.variable.isTrainable } }

    /// The variable with `key`, if any.
    public func variable(_ key: String) -> Variable? {
        variables.first { $0.key == key }?.variable
    }

    /// Scalars in all variables.
    public var parameterCount: Int { variables.reduce(0) { $0 + $1.variable.value.count } }

    /// Refuses parameter shapes a hostile config could declare (a Conv2D with 10^12 filters) before anything is
    /// allocated: every dimension positive, each tensor at most `Initializer.maxElements` elements, and all of them
    /// within the build's `ParameterBudget` when it has one.
    func requireAllocatable(_ shapes: [[Int]]) throws {
        var total = 0
        for shape in shapes {
            var count = 1
            for d in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard d > 0, !overflow, product <= Initializer.maxElements else {
                    throw LayerError(name, "parameter shape (\(shape.map(String.init).joined(separator: ", "))) is \(d > 0 ? "too large" : "invalid") (at most \(Initializer.maxElements) elements per tensor)")
                }
                count = product
            }
            total += count
        }
        try Initializer.budget?.charge(total * MemoryLayout<Float>.stride, layer: name)
    }

    func requireInputs(_ shapes: [[Int]], count: Int) throws {
        guard shapes.count == count else {
            throw LayerError(name, "expects \(count) input\(count == 1 ? "" : "s"), got \(shapes.count)")
        }
    }

    func requireRank(_ shape: [Int], _ rank: Int, _ what: String = "input") throws {
        guard shape.count == rank else {
            throw LayerError(name, "expects a rank-\(rank + 1) \(what) (batch included), got \(Shape.describe([-1] + shape))")
        }
    }
}

/// The bytes a model's parameters may take while it is built from a file: a config of a few KB can declare
/// several tensors of 8 GiB each, and a model is built (its parameters allocated) before any weight is read. Each
/// layer charges its parameters before allocating them; the first that goes over ends the build with an error.
public final class ParameterBudget: @unchecked Sendable {
    public let bytes: Int
    /// Why the limit is what it is, for the error ("half of this machine's memory").
    public let reason: String
    private let lock = NSLock()
    private var used = 0   // guarded by lock

    public init(bytes: Int, reason: String) {
        self.bytes = bytes
        self.reason = reason
    }

    /// Half the machine's physical memory: a model built without a weights file to bound it.
    public static func machine() -> ParameterBudget {
        ParameterBudget(bytes: Int(clamping: ProcessInfo.processInfo.physicalMemory / 2), reason: "half of this machine's memory")
    }

    /// For a model whose weights are read from a file of `fileBytes` bytes: no more than that file can hold once
    /// inflated (1,100 times its size, past what deflate reaches, and at least 1 GiB for parameters a load may leave
    /// to their initialisers), and no more than half the machine's memory.
    public static func weights(inFileOf fileBytes: Int) -> ParameterBudget {
        let machine = machine()
        let (inflated, overflow) = max(fileBytes, 0).multipliedReportingOverflow(by: 1100)
        let file = max(overflow ? Int.max : inflated, 1 << 30)
        return file < machine.bytes
            ? ParameterBudget(bytes: file, reason: "its weights file has \(fileBytes) bytes")
            : machine
    }

    func charge(_ n: Int, layer: String) throws {
        try lock.withLock {
            let (sum, overflow) = used.addingReportingOverflow(n)
            guard !overflow, sum <= bytes else {
                func gib(_ b: Int) -> String { String(format: "%.1f GiB", Double(b) / Double(1 << 30)) }
                throw LayerError(layer, "the model's parameters would need \(overflow ? "more than 8 EiB" : gib(sum)) with this layer, more than the \(gib(bytes)) allowed (\(reason))")
            }
            used = sum
        }
    }
}

/// Keras's default initialisers.
public enum Initializer {
    /// The largest parameter tensor a layer may declare (2^31 floats, 8 GiB).
    public static let maxElements = 1 << 31

    /// True while building a model whose every parameter is about to be overwritten (a checkpoint load that
    /// fails unless all weights are found): kernels are left uninitialised instead of drawing random numbers, so
    /// their memory is never even touched (a fresh mapping costs no page faults until written).
    @TaskLocal public static var skipRandom = false

    /// What the model being built may allocate for its parameters, in all (nil: only the per-tensor limit).
    @TaskLocal public static var budget: ParameterBudget?

    /// Glorot (Xavier) uniform: U(±sqrt(6 / (fanIn + fanOut))), with Keras's fans for kernels
    /// (receptive field × in, receptive field × out).
    public static func glorotUniform(_ shape: [Int], rng: inout SplitMix64) -> Tensor {
        let receptive = shape.count > 2 ? shape[..<(shape.count - 2)].reduce(1, *) : 1
        let fanIn = shape.count >= 2 ? shape[shape.count - 2] * receptive : shape.first ?? 1
        let fanOut = shape.count >= 2 ? shape[shape.count - 1] * receptive : shape.first ?? 1
        let limit = (6 / Float(max(fanIn + fanOut, 1))).squareRoot()
        if skipRandom { return Tensor(uninitializedShape: shape) }
        var t = Tensor(uninitializedShape: shape)
        t.withUnsafeMutableBufferPointer { values in
            for i in values.indices { values[i] = rng.uniform(-limit, limit) }
        }
        return t
    }
}
