import Foundation
import Testing
import GraftData
import GraftHDF5
import GraftKeras
import GraftNN
import GraftTensor
import GraftTestSupport
@testable import GraftTrain

/// The loop's events: callbacks, interruption, and resuming from saved optimizer state.
@Suite(.serialized)
struct TrainingLoopTests {
    static func data(_ n: Int = 24, seed: UInt64 = 5) -> ImageDataset {
        var rng = SplitMix64(seed: seed)
        let labels = (0..<n).map { $0 % 3 }
        // Class-dependent brightness so there is something to learn.
        let px = labels.flatMap { l in (0..<36).map { _ in Float(l) * 60 + rng.uniform(0, 60) } }
        return ImageDataset(imageShape: [6, 6, 1], pixels: px, labels: labels, ids: (0..<n).map(String.init), classNames: ["a", "b", "c"])
    }

    static func model(seed: UInt64 = 1) throws -> Model {
        try GraphBuilder.sequential(name: "small", inputShape: [6, 6, 1], layers: [
            Conv2D(name: "conv", config: Conv2DConfig(filters: 3, kernelSize: [3, 3], activation: .relu)),
            GlobalPooling2D(name: "gap", kind: .average),
            Dense(name: "out", units: 3, activation: .softmax),
        ], seed: seed)
    }

    static let pre = Preprocessor(targetShape: [6, 6, 1], fit: .pad, mode: .scale(1.0 / 255))

    @Test func interruptStopsAfterTheBatchAndSavesACheckpoint() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let m = try Self.model()
        let trainer = Trainer(model: m, optimizer: Adam(), preprocessor: Self.pre)
        var saved: PartialEpoch?
        trainer.onInterrupt = { [unowned trainer] partial in   // the trainer keeps this closure: no cycle
            saved = partial
            try TrainingCheckpoint.save(m, optimizer: trainer.optimizer, epoch: partial.epoch - 1, stage: "train",
                                        to: dir.appendingPathComponent("interrupted.h5").path, graftVersion: "t")
        }
        var options = FitOptions(epochs: 3, batchSize: 4)
        options.showProgress = false
        trainer.interruptCheck = Interrupt.simulated(SIGINT, afterChecks: 0)
        let outcome = try trainer.fit(train: Self.data(), validation: nil, options: options)
        #expect(outcome == .interrupted(signal: SIGINT, epoch: 1))
        #expect(saved?.epoch == 1 && saved?.batches == 1 && saved?.seen == 4)
        #expect(trainer.optimizer.iterations == 1)   // exactly one batch finished
        let reloaded = try KerasLoader.load(dir.appendingPathComponent("interrupted.h5").path).model
        #expect(reloaded.namedVariables.map(\.variable.value) == m.namedVariables.map(\.variable.value))
    }

    @Test func resumingFromACheckpointMatchesAnUninterruptedRun() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let path = dir.appendingPathComponent("epoch2.h5").path
        var options = FitOptions(epochs: 4, batchSize: 5)
        options.showProgress = false
        options.seed = 9
        // Uninterrupted: 4 epochs.
        let a = try Self.model()
        let ta = Trainer(model: a, optimizer: Adam(learningRate: 0.01), preprocessor: Self.pre)
        try ta.fit(train: Self.data(), validation: nil, options: options)
        // Interrupted after 2 epochs, saved, reloaded into a fresh process-like state, resumed for epochs 3–4.
        let b = try Self.model()
        let tb = Trainer(model: b, optimizer: Adam(learningRate: 0.01), preprocessor: Self.pre)
        var first = options
        first.epochs = 2
        try tb.fit(train: Self.data(), validation: nil, options: first)
        try TrainingCheckpoint.save(b, optimizer: tb.optimizer, epoch: 2, stage: "train", to: path, graftVersion: "t")
        let c = try KerasLoader.load(path).model
        let optimizer = Adam(learningRate: 0.01)
        let (epoch, _) = try TrainingCheckpoint.restore(path, into: optimizer)
        #expect(epoch == 2)
        let tc = Trainer(model: c, optimizer: optimizer, preprocessor: Self.pre)
        var rest = options
        rest.initialEpoch = epoch
        try tc.fit(train: Self.data(), validation: nil, options: rest)
        #expect(tc.history.map(\.epoch) == [3, 4])
        #expect(c.namedVariables.map(\.variable.value) == a.namedVariables.map(\.variable.value))
    }

    @Test func earlyStoppingAndPlateauCallbacks() throws {
        let m = try Self.model()
        let trainer = Trainer(model: m, optimizer: SGD(learningRate: 1e-9), preprocessor: Self.pre)   // nothing improves
        var options = FitOptions(epochs: 10, batchSize: 8)
        options.showProgress = false
        let plateau = ReduceLROnPlateau(monitor: "loss", factor: 0.5, patience: 1, minRate: 1e-12)
        let outcome = try trainer.fit(train: Self.data(), validation: Self.data(9, seed: 7), options: options,
                                      callbacks: [plateau, EarlyStopping(monitor: "val_loss", patience: 2, minDelta: 1e-4)])
        #expect(outcome == .stoppedEarly(epoch: 3))
        #expect(trainer.history.count == 3)
        #expect(trainer.learningRateScale < 1)
        #expect(trainer.history.allSatisfy { $0.valLoss != nil && $0.valAccuracy != nil })
    }

    @Test func nanLossStopsWithTheBatchNamed() throws {
        let m = try Self.model()
        let trainer = Trainer(model: m, optimizer: SGD(learningRate: 1e30), preprocessor: Self.pre)
        var options = FitOptions(epochs: 3, batchSize: 4)
        options.showProgress = false
        do {
            try trainer.fit(train: Self.data(), validation: nil, options: options)
            Issue.record("an exploding run finished")
        } catch let e as TrainError {
            #expect(e.subject.hasPrefix("epoch 1, batch"))
        }
    }

    /// One image with a NaN pixel: its batches have a NaN loss. `stop` names the batch and leaves the weights as
    /// they were; `skip` skips exactly those batches and trains on the rest.
    @Test func nonFiniteBatchesStopOrAreSkipped() throws {
        var pixels = Self.data().pixels
        pixels[7 * 36 + 3] = .nan   // image 7
        let bad = ImageDataset(imageShape: [6, 6, 1], pixels: pixels, labels: Self.data().labels, ids: Self.data().ids,
                               classNames: ["a", "b", "c"])
        let m = try Self.model()
        let before = m.namedVariables.map { $0.variable.value }
        let stopper = Trainer(model: m, optimizer: Adam(), preprocessor: Self.pre)
        stopper.lastGoodCheckpoint = "run/last.h5 (epoch 0)"
        var options = FitOptions(epochs: 2, batchSize: 4)
        options.showProgress = false
        options.shuffle = false
        do {
            try stopper.fit(train: bad, validation: nil, options: options)
            Issue.record("a NaN batch did not stop the run")
        } catch let e as TrainError {
            #expect(e.subject == "epoch 1, batch 2")   // image 7 is in the second batch of 4 without shuffling
            #expect(e.message.contains("run/last.h5 (epoch 0)") && e.message.contains("--nan skip"))
        }
        // The first batch trained; the NaN batch changed nothing and no weight is NaN.
        #expect(m.namedVariables.allSatisfy { $0.variable.value.scalars.allSatisfy(\.isFinite) })
        #expect(zip(before, m.namedVariables.map { $0.variable.value }).contains { $0 != $1 })

        let m2 = try Self.model()
        let skipper = Trainer(model: m2, optimizer: Adam(), preprocessor: Self.pre)
        options.nanPolicy = .skip
        options.shuffle = true
        try skipper.fit(train: bad, validation: nil, options: options)
        #expect(skipper.skippedBatches == 2)   // one batch per epoch holds image 7
        #expect(skipper.history.count == 2)
        #expect(m2.namedVariables.allSatisfy { $0.variable.value.scalars.allSatisfy(\.isFinite) })

        // Every batch non-finite: skipping cannot train, so the run stops.
        let allBad = ImageDataset(imageShape: [6, 6, 1], pixels: [Float](repeating: .infinity, count: pixels.count),
                                  labels: Self.data().labels, ids: Self.data().ids, classNames: ["a", "b", "c"])
        #expect(throws: TrainError.self) { try Trainer(model: try Self.model(), optimizer: Adam(), preprocessor: Self.pre)
            .fit(train: allBad, validation: nil, options: options) }
    }
}
