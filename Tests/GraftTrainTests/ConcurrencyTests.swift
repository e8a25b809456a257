import Foundation
import Testing
import GraftData
import GraftNN
import GraftTensor
@testable import GraftTrain

/// Graft used from several threads at once, as a server embedding it would: different models side by side
/// (standard, depthwise, grouped and pointwise convolutions through oneDNN), two threads predicting with one model,
/// two threads taking training steps on one model, and fresh models trained from scratch. For 20 seconds every
/// result must equal the serial run's, bit for bit.
struct ConcurrencyTests {
    static let seconds = 20.0

    static func conv(_ name: String, _ filters: Int, _ k: Int, strides: Int = 1, groups: Int = 1,
                     activation: ActivationKind = .linear) -> Conv2D {
        Conv2D(name: name, config: Conv2DConfig(filters: filters, kernelSize: [k, k], strides: [strides, strides], padding: .same,
                                                groups: groups, activation: activation))
    }

    /// Standard convolutions with a BatchNormalization that inference folds in, and a dilated one.
    static func standard() throws -> Model {
        try GraphBuilder.sequential(name: "standard", inputShape: [20, 20, 3], layers: [
            conv("c1", 16, 3),
            BatchNormalization(name: "bn1"),
            ActivationLayer(name: "relu1", activation: .relu),
            conv("c2", 24, 3, strides: 2, activation: .relu),
            GlobalPooling2D(name: "gap", kind: .average),
            Dense(name: "out", units: 5, activation: .softmax),
        ], seed: 11)
    }

    /// Depthwise then pointwise (1×1) convolutions, and a separable one.
    static func depthwise() throws -> Model {
        try GraphBuilder.sequential(name: "depthwise", inputShape: [18, 18, 8], layers: [
            DepthwiseConv2D(name: "dw", config: DepthwiseConv2DConfig(kernelSize: [3, 3], padding: .same, depthMultiplier: 2)),
            conv("pw", 12, 1, activation: .relu6),
            SeparableConv2D(name: "sep", config: Conv2DConfig(filters: 10, kernelSize: [3, 3], padding: .same, activation: .relu)),
            GlobalPooling2D(name: "gap", kind: .max),
            Dense(name: "out", units: 4),
        ], seed: 12)
    }

    /// Grouped convolutions.
    static func grouped() throws -> Model {
        try GraphBuilder.sequential(name: "grouped", inputShape: [16, 16, 8], layers: [
            conv("g1", 16, 3, groups: 4, activation: .relu),
            conv("g2", 16, 3, strides: 2, groups: 2, activation: .swish),
            Flatten(name: "flat"),
            Dense(name: "out", units: 3),
        ], seed: 13)
    }

    /// A model every layer of which trains: standard, depthwise, grouped and pointwise convolutions, batch norm.
    static func trainable(seed: UInt64 = 14) throws -> Model {
        try GraphBuilder.sequential(name: "trainable", inputShape: [12, 12, 4], layers: [
            conv("t1", 8, 3, activation: .relu),
            BatchNormalization(name: "tbn"),
            DepthwiseConv2D(name: "tdw", config: DepthwiseConv2DConfig(kernelSize: [3, 3], padding: .same, activation: .relu)),
            conv("tg", 8, 3, strides: 2, groups: 2, activation: .relu),
            conv("tp", 6, 1, activation: .tanh),
            GlobalPooling2D(name: "gap", kind: .average),
            Dense(name: "out", units: 3, activation: .softmax),
        ], seed: seed)
    }

    static func input(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in rng.uniform(-1, 1) })
    }

    static let labels = [0, 1, 2, 1, 0, 2]
    static let batch = input([6, 12, 12, 4], seed: 7)

    static func trainer(_ model: Model) -> Trainer {
        Trainer(model: model, optimizer: SGD(learningRate: 0.05), preprocessor: Preprocessor(targetShape: [12, 12, 4], mode: .scale(1)))
    }

    /// One training step on the fixed batch (the same step whichever thread takes it).
    static func step(_ trainer: Trainer) throws {
        var context = TrainingContext(seed: 1)
        _ = try trainer.trainStep(batch, labels: labels, loss: Loss(), clipNorm: nil, context: &context)
    }

    static func weights(_ model: Model) -> [[Float]] { model.namedVariables.map(\.variable.value.scalars) }

    final class Log: @unchecked Sendable {
        let lock = NSLock()
        var failures: [String] = []
        var counts: [String: Int] = [:]
        func fail(_ s: String) { lock.lock(); failures.append(s); lock.unlock() }
        func count(_ s: String) { lock.lock(); counts[s, default: 0] += 1; lock.unlock() }
    }

    @Test func threadsShareModelsAndGiveTheSerialResults() throws {
        let inferenceModels = [try Self.standard(), try Self.depthwise(), try Self.grouped()]
        let inputs = [Self.input([4, 20, 20, 3], seed: 1), Self.input([3, 18, 18, 8], seed: 2), Self.input([5, 16, 16, 8], seed: 3)]
        let expected = try zip(inferenceModels, inputs).map { try $0.0.predict([$0.1])[0].scalars }
        // Three steps from the initial weights, serially.
        let fresh = try Self.trainable(seed: 21)
        let freshTrainer = Self.trainer(fresh)
        for _ in 0..<3 { try Self.step(freshTrainer) }
        let expectedFresh = Self.weights(fresh)

        let shared = try Self.trainable(seed: 22)   // trained by two threads at once
        let sharedStart = Self.weights(shared)
        let log = Log()
        let deadline = Date().addingTimeInterval(Self.seconds)
        final class Box<T>: @unchecked Sendable { let value: T; init(_ v: T) { value = v } }
        let box = Box((inferenceModels, inputs, expected, expectedFresh, shared))
        var workers: [@Sendable () throws -> Void] = []
        // Two threads predict with the standard model, one each with the others.
        for (name, m) in [("standard-a", 0), ("standard-b", 0), ("depthwise", 1), ("grouped", 2)] {
            workers.append {
                let (models, xs, want, _, _) = box.value
                while Date() < deadline {
                    let y = try models[m].predict([xs[m]])[0].scalars
                    if y != want[m] { log.fail("\(name): prediction differs from the serial run") }
                    log.count(name)
                }
            }
        }
        // Two threads take training steps on one model.
        for name in ["shared-train-a", "shared-train-b"] {
            workers.append {
                let trainer = Self.trainer(box.value.4)
                while Date() < deadline {
                    try Self.step(trainer)
                    log.count("shared-train")
                    log.count(name)
                }
            }
        }
        // One thread trains fresh models from scratch.
        workers.append {
            while Date() < deadline {
                let m = try Self.trainable(seed: 21)
                let t = Self.trainer(m)
                for _ in 0..<3 { try Self.step(t) }
                if Self.weights(m) != box.value.3 { log.fail("fresh-train: weights differ from the serial run") }
                log.count("fresh-train")
            }
        }
        let group = DispatchGroup()
        for work in workers {
            group.enter()
            Thread {
                do { try work() } catch { log.fail("\(error)") }
                group.leave()
            }.start()
        }
        group.wait()
        #expect(log.failures.isEmpty, "\(log.failures.prefix(5))")
        for name in ["standard-a", "standard-b", "depthwise", "grouped", "shared-train-a", "shared-train-b", "fresh-train"] {
            #expect((log.counts[name] ?? 0) > 0, "\(name) never ran")
        }
        // The shared model took as many identical steps as both threads counted: a serial run of that many.
        let steps = log.counts["shared-train"] ?? 0
        let serial = try Self.trainable(seed: 22)
        #expect(Self.weights(serial) == sharedStart)
        let serialTrainer = Self.trainer(serial)
        for _ in 0..<steps { try Self.step(serialTrainer) }
        #expect(Self.weights(serial) == Self.weights(shared), "after \(steps) steps shared by two threads")
        print("concurrency: \(log.counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
    }
}
