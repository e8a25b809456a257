import GraftTensor

/// What a training-mode forward pass keeps for the backward pass: every node's output and cache, and which
/// nodes need a backward at all.
public struct Tape {
    public let values: [Tensor?]
    let caches: [Any?]
    /// `requiresGradient[i]`: node i has trainable parameters, or feeds from one that needs an input gradient.
    public let requiresGradient: [Bool]
}

extension Model {
    /// Forward pass in training mode, keeping what `backward` needs. `inputsNeedGradients` marks model inputs whose
    /// gradient the caller wants (a nested model inside a trainable path).
    public func forwardTraining(_ inputs: [Tensor], context: inout TrainingContext,
                             inputsNeedGradients: [Bool]? = nil) throws -> (outputs: [Tensor], tape: Tape) {
        guard inputs.count == inputNodes.count else {
            throw LayerError(name, "expects \(inputNodes.count) input tensors, got \(inputs.count)")
        }
        var values = [Tensor?](repeating: nil, count: nodes.count)
        var caches = [Any?](repeating: nil, count: nodes.count)
        var requires = [Bool](repeating: false, count: nodes.count)
        for (k, i) in inputNodes.enumerated() {
            values[i] = try nodes[i].layer.forward([inputs[k]], training: true)
            requires[i] = inputsNeedGradients?[k] ?? false
        }
        // A frozen prefix costs only its forward pass: a node that needs no gradient keeps no cache, and an output
        // is dropped after its last consumer ran unless some consumer needs it for its own backward.
        var lastUse = [Int](repeating: -1, count: nodes.count)
        for (i, node) in nodes.enumerated() { for j in node.inputs { lastUse[j] = max(lastUse[j], i) } }
        var neededForBackward = [Bool](repeating: false, count: nodes.count)
        for o in outputNodes { neededForBackward[o] = true }
        // In a frozen prefix, a convolution with the frozen BatchNormalization and activation after it runs as one
        // fused inference step (nothing there needs a gradient or a cache).
        let fusions = context.updateFrozenBatchNormStatistics
            ? [:] : inferenceFusions(needed: [Bool](repeating: true, count: nodes.count), targets: outputNodes)
        var absorbed = [Bool](repeating: false, count: nodes.count)
        for (i, node) in nodes.enumerated() where values[i] == nil && !absorbed[i] {
            let args = try node.inputs.map { j -> Tensor in
                guard let v = values[j] else { throw LayerError(node.layer.name, "input from node \(j) was not computed") }
                return v
            }
            if let fusion = fusions[i], let conv = node.layer as? InferenceFusable, !node.layer.hasTrainableParameters,
               !node.inputs.contains(where: { requires[$0] }),
               fusion.batchNorm.map({ $0.frozen && !$0.hasTrainableParameters }) ?? true {
                values[fusion.last] = try conv.fusedInference(args, batchNorm: fusion.batchNorm, activation: fusion.activation)
                for j in fusion.absorbed { absorbed[j] = true }
                for j in node.inputs where lastUse[j] == i && !neededForBackward[j] && !requires[j] { values[j] = nil }
                continue
            }
            if node.layer is Model || node.layer is TimeDistributed { context.nestedInputsNeedGradients = node.inputs.map { requires[$0] } }
            let (y, cache) = try node.layer.forwardTrain(args, context: &context)
            values[i] = y
            requires[i] = node.layer.hasTrainableParameters || node.inputs.contains { requires[$0] }
            caches[i] = requires[i] || outputNodes.contains(i) ? cache : nil
            for j in node.inputs {
                if requires[i] && node.layer.backwardReadsInputs { neededForBackward[j] = true }
                if lastUse[j] == i && !neededForBackward[j] && !(requires[j] && nodes[j].layer.backwardReadsOutput) {
                    values[j] = nil
                }
            }
        }
        let outs = try outputNodes.map { o -> Tensor in
            guard let v = values[o] else { throw LayerError(name, "output node \(o) was not computed") }
            return v
        }
        return (outs, Tape(values: values, caches: caches, requiresGradient: requires))
    }

    /// The pre-activation of output `k` when its layer ends in an activation (the logits of a softmax head).
    public func outputPreActivation(_ tape: Tape, output k: Int = 0) -> Tensor? {
        (tape.caches[outputNodes[k]] as? ActivationCache)?.z
    }

    /// Backward pass: adds every trainable variable's gradient into its `grad` and returns the gradients of the
    /// model inputs (nil where not required). Nodes that need no gradient (a frozen prefix) are skipped entirely.
    /// With `preActivation[k]`, `outputGradients[k]` is the gradient of output k's pre-activation.
    @discardableResult
    public func backward(_ tape: Tape, outputGradients: [Tensor], preActivation: [Bool]? = nil,
                         stats: BackwardStats? = nil) throws -> [Tensor?] {
        var grads = [Tensor?](repeating: nil, count: nodes.count)
        var pre = [Bool](repeating: false, count: nodes.count)
        for (k, o) in outputNodes.enumerated() {
            grads[o] = try grads[o].map { try $0.elementwise(.add, outputGradients[k]) } ?? outputGradients[k]
            if preActivation?[k] == true { pre[o] = true }
        }
        for i in stride(from: nodes.count - 1, through: 0, by: -1) {
            guard tape.requiresGradient[i], let g = grads[i] else { continue }
            let node = nodes[i]
            if node.inputs.isEmpty { continue }
            // Values the layer's backward never reads may have been dropped in the forward pass: an empty stand-in.
            guard let y = tape.values[i] ?? (node.layer.backwardReadsOutput ? nil : Self.notKept) else { continue }
            let xs = try node.inputs.map { j -> Tensor in
                guard let v = tape.values[j] ?? (node.layer.backwardReadsInputs ? nil : Self.notKept) else {
                    throw LayerError(node.layer.name, "missing forward value")
                }
                return v
            }
            let need = node.inputs.map { tape.requiresGradient[$0] }
            stats?.nodesRun += 1
            stats?.layersRun.append(node.layer.name)
            let inputGrads = try node.layer.backward(xs, output: y, cache: tape.caches[i], gradOutput: g,
                                                      needsInputGradients: need, preActivation: pre[i])
            for (j, dx) in zip(node.inputs, inputGrads) where tape.requiresGradient[j] {
                guard let dx else { continue }
                if let existing = grads[j] {
                    grads[j] = try existing.elementwise(.add, dx)   // a tensor feeding several layers sums their gradients
                } else {
                    grads[j] = dx
                }
            }
            grads[i] = nil
        }
        return inputNodes.map { tape.requiresGradient[$0] ? grads[$0] : nil }
    }

    /// Stands in for a forward value that was not kept because the backward pass does not read it.
    static let notKept = Tensor(shape: [0])

    /// Clears every variable's gradient.
    public func zeroGradients() {
        for (_, v) in namedVariables { v.grad = nil }
    }

    // MARK: Layer conformance for nested models

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        let need = context.nestedInputsNeedGradients ?? inputs.map { _ in true }
        context.nestedInputsNeedGradients = nil
        let (outs, tape) = try forwardTraining(inputs, context: &context, inputsNeedGradients: need)
        return (outs[0], tape)
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        guard let tape = cache as? Tape else { throw LayerError(name, "backward needs a training-mode forward first") }
        return try backward(tape, outputGradients: [gradOutput], preActivation: [preActivation])
    }

    public var finalActivation: ActivationKind { outputNodes.count == 1 ? nodes[outputNodes[0]].layer.finalActivation : .linear }
}

/// Counts what a backward pass ran (tests check that a frozen prefix runs nothing).
public final class BackwardStats {
    public var nodesRun = 0
    public var layersRun: [String] = []
    public init() {}
}
