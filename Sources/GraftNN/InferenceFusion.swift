import Foundation
import GraftCore
import GraftTensor

/// A convolution that, at inference, can absorb the BatchNormalization reading its output (folded into its
/// kernel and bias: `W·s`, `b·s + t` per output channel) and the element-wise activation after that (applied
/// by oneDNN as the output is written, or in place): one pass over the activations instead of three.
protocol InferenceFusable: Layer {
    /// The activation the layer applies itself; a BatchNormalization can be folded in only when it is linear.
    var ownActivation: ActivationKind { get }
    /// The output channel count, which a folded BatchNormalization must match.
    var outputChannels: Int { get }
    /// The layer's inference output followed by `batchNorm` (inference mode) and then `activation`.
    func fusedInference(_ inputs: [Tensor], batchNorm: BatchNormalization?, activation: ActivationKind) throws -> Tensor
}

/// A residual addition (or other merge) absorbs the activation after it, applied block by block as the sum is
/// written (one pass over the activations instead of two). It never absorbs a BatchNormalization.
extension Merge: InferenceFusable {
    var ownActivation: ActivationKind { .linear }
    var outputChannels: Int { -1 }

    func fusedInference(_ inputs: [Tensor], batchNorm: BatchNormalization?, activation: ActivationKind) throws -> Tensor {
        precondition(batchNorm == nil, "a merge does not fold a batch normalization")
        if inputs.count == 2, kind != .average, inputs[0].shape == inputs[1].shape {
            do {
                return try inputs[0].elementwise(binaryOp, inputs[1], then: activation)
            } catch let e as ShapeError {
                throw LayerError(name, e.description)
            }
        }
        var out = try forward(inputs, training: false)
        out.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, count: $0.count) }
        return out
    }
}

/// A kernel and bias with a BatchNormalization folded in, kept until any of the variables they came from changes.
final class FoldedWeights: @unchecked Sendable {
    private let lock = NSLock()
    private var key: [Int] = []
    private var value: (kernel: Tensor, bias: Tensor, version: Int)?

    /// `kernel` (output channels on its last axis) and `bias` with `batchNorm` folded in, cached on the versions of
    /// every variable involved; `version` is new whenever they were folded afresh (for `PreparedWeights`).
    func get(kernel: Variable, bias: Variable?, batchNorm: BatchNormalization) -> (kernel: Tensor, bias: Tensor, version: Int) {
        // Versions are unique across all variables, so equal keys mean the very same values.
        let key = [kernel.version, bias?.version ?? -1] + batchNorm.variables.map(\.variable.version)
        lock.lock()
        defer { lock.unlock() }
        if let value, key == self.key { return value }
        let (s, t) = batchNorm.inferenceAffine()
        let channels = s.count
        var k = kernel.value
        k.withUnsafeMutableBufferPointer { w in
            let rows = w.count / channels
            for r in 0..<rows {
                let row = w.baseAddress! + r * channels
                for c in 0..<channels { row[c] *= s[c] }
            }
        }
        let b0 = bias?.value.scalars ?? [Float](repeating: 0, count: channels)
        let folded = (kernel: k, bias: Tensor(shape: [channels], values: (0..<channels).map { b0[$0] * s[$0] + t[$0] }),
                      version: Variable.nextVersion())
        self.key = key
        value = folded
        return folded
    }
}

extension Model {
    /// For an inference run: convolution nodes that absorb the BatchNormalization and/or activation after them,
    /// as `convolution node → (last node of the chain, inner nodes, batch norm, activation)`. A node is absorbed only
    /// when it is the single consumer of the one before and nothing else (no target) needs the value in between.
    func inferenceFusions(needed: [Bool], targets: [Int])
        -> [Int: (last: Int, absorbed: [Int], batchNorm: BatchNormalization?, activation: ActivationKind)] {
        guard ComputeOptions.current.fusion else { return [:] }
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, node) in nodes.enumerated() where needed[i] {
            for j in node.inputs { consumers[j].append(i) }
        }
        let isTarget = Set(targets)
        /// The single consumer of `i` when only it reads `i`, through its first and only input.
        func soleConsumer(_ i: Int) -> Int? {
            guard !isTarget.contains(i), consumers[i].count == 1, let j = consumers[i].first,
                  nodes[j].inputs == [i] else { return nil }
            return j
        }
        var plan: [Int: (last: Int, absorbed: [Int], batchNorm: BatchNormalization?, activation: ActivationKind)] = [:]
        for (i, node) in nodes.enumerated() where needed[i] {
            guard let conv = node.layer as? InferenceFusable else { continue }
            var last = i, absorbed: [Int] = []
            var bn: BatchNormalization?
            if conv.ownActivation == .linear, conv.outputChannels > 0, let j = soleConsumer(i),
               let b = nodes[j].layer as? BatchNormalization,
               b.normalizesLastAxis, b.channelCount == conv.outputChannels {
                bn = b
                last = j
                absorbed.append(j)
            }
            var activation = ActivationKind.linear
            if conv.ownActivation == .linear, let k = soleConsumer(last), let a = nodes[k].layer as? ActivationLayer,
               !a.activation.isAlongLastAxis {
                activation = a.activation
                last = k
                absorbed.append(k)
            }
            if !absorbed.isEmpty { plan[i] = (last, absorbed, bn, activation) }
        }
        return plan
    }
}
