import Foundation
import Testing
import GraftData
import GraftHDF5
import GraftKeras
import GraftNN
import GraftTensor
import GraftTestSupport
@testable import GraftTrain

/// The whole transfer-learning move: Keras checkpoint in, new head, frozen base, partial unfreeze, Keras checkpoint out.
struct FineTuneJobTests {
    @Test(.enabled(if: FashionMNISTTests.available, "dataset-fashion-mnist is not installed"))
    func twoStageFineTuneSavesAModelThatReloadsIdentically() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let checkpoint = dir.appendingPathComponent("lenet.h5").path
        let original = try Zoo.build("lenet5", options: Zoo.Options(classes: 10, inputShape: [28, 28, 1], seed: 4))
        try KerasWriter.writeLegacyH5(original, to: checkpoint, graftVersion: "test")
        var config = FineTuneConfig(model: checkpoint, train: "fashion-mnist:train", stages: [
            StageConfig(name: "warmup", epochs: 1, learningRate: 1e-3),
            StageConfig(name: "finetune", unfreeze: .from("conv3"), epochs: 1, learningRate: 1e-4),
        ], outputDirectory: dir.appendingPathComponent("run").path)
        config.classSubset = [5, 6, 7, 8, 9]
        config.limitPerClass = 60
        config.validationSplit = 0.2
        config.test = "fashion-mnist:test"
        config.batchSize = 16
        config.seed = 2
        config.showProgress = false
        let job = FineTuneJob(config, graftVersion: "test")
        let report = try job.run()
        let model = report.model
        // New 5-class head replacing the old classifier only (fc1 kept).
        #expect(model.outputShapes == [[5]])
        #expect(model.flattenedLayers.map(\.name).contains("fc1"))
        // conv1/conv2 were frozen in both stages: bit-identical to the checkpoint; conv3 was unfrozen in stage 2.
        for path in ["conv1/kernel", "conv1/bias", "conv2/kernel"] {
            #expect(model.variable(path) == original.variable(path), "\(path) changed")
        }
        #expect(model.variable("conv3/kernel") != original.variable("conv3/kernel"))
        #expect(report.history.map(\.stage) == ["warmup", "finetune"])
        #expect(report.history.map(\.epoch) == [1, 2])
        #expect(report.history.allSatisfy { $0.valAccuracy != nil })
        #expect((report.testAccuracy ?? 0) > 0.3)   // 5 classes, 240 images, 2 short epochs: well above chance (0.2)
        // The saved model reloads with identical outputs.
        let reloaded = try KerasLoader.load(report.finalCheckpoint).model
        let x = Tensor(shape: [3, 28, 28, 1], values: (0..<(3 * 784)).map { Float($0 % 255) / 255 })
        #expect(try reloaded.predict([x])[0] == (try model.predict([x])[0]))
        let run = URL(fileURLWithPath: report.runDirectory)
        for name in ["final.h5", "best.h5", "metrics.csv", "metrics.jsonl", "summary.txt", "confusion.csv"] {
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent(name).path), "\(name) missing")
        }
        let csv = try String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 3)
        let confusion = try String(contentsOf: run.appendingPathComponent("confusion.csv"), encoding: .utf8)
        #expect(confusion.hasPrefix("true\\predicted,Sandal,Shirt,Sneaker,Bag,Ankle boot"))
        // Training state rides along in the checkpoint for resuming.
        let state = try HDF5File.open(run.appendingPathComponent("best.h5").path).root()
        #expect(state.kind(of: "graft_training/slots") == .group)
    }

    @Test func badConfigurationsFailBeforeTraining() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        var config = FineTuneConfig(model: "/nonexistent/model.h5", train: "fashion-mnist:train",
                                    stages: [StageConfig(name: "s", epochs: 1)], outputDirectory: dir.path)
        config.showProgress = false
        #expect(throws: (any Error).self) { try FineTuneJob(config, graftVersion: "t").run() }
        config.stages = []
        #expect(throws: TrainError.self) { try FineTuneJob(config, graftVersion: "t").run() }
        config.stages = [StageConfig(name: "s", epochs: 0)]
        #expect(throws: TrainError.self) { try FineTuneJob(config, graftVersion: "t").run() }
        config.stages = [StageConfig(name: "s", epochs: 1)]
        config.train = "mnist-of-the-future:train"
        config.model = TestSupport.fixture("keras/tfkeras_lenet.h5")
        do {
            _ = try FineTuneJob(config, graftVersion: "t").run()
            Issue.record("unknown data source accepted")
        } catch {
            #expect("\(error)".contains("mnist-of-the-future"))
        }
    }
}

extension FineTuneJobTests {
    /// Training a head on cached base features gives the same model as running the frozen base every step.
    @Test(.enabled(if: FashionMNISTTests.available, "dataset-fashion-mnist is not installed"))
    func cachedFeaturesTrainTheSameHead() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let checkpoint = dir.appendingPathComponent("lenet.h5").path
        try KerasWriter.writeLegacyH5(try Zoo.build("lenet5", options: Zoo.Options(classes: 10, inputShape: [28, 28, 1], seed: 4)),
                                      to: checkpoint, graftVersion: "test")
        func run(cache: Bool) throws -> (Model, [String]) {
            var c = FineTuneConfig(model: checkpoint, train: "fashion-mnist:test", stages: [StageConfig(name: "warmup", epochs: 2, learningRate: 3e-3)],
                                   outputDirectory: dir.appendingPathComponent(cache ? "cached" : "plain").path)
            c.head = HeadConfig(classes: 0, hidden: [16], dropout: 0.2)
            c.classSubset = [0, 1, 2]
            c.limitPerClass = 50
            c.validationSplit = 0.2
            c.batchSize = 8
            c.seed = 5
            c.cacheFeatures = cache
            c.showProgress = false
            let job = FineTuneJob(c, graftVersion: "test")
            return (try job.run().model, job.log)
        }
        let (cached, log) = try run(cache: true)
        let (plain, plainLog) = try run(cache: false)
        #expect(log.contains { $0.contains("cached features") })
        #expect(!plainLog.contains { $0.contains("cached features") })
        let a = Dictionary(uniqueKeysWithValues: cached.namedVariables.map { ($0.path, $0.variable.value.scalars) })
        for (path, v) in plain.namedVariables {
            let other = try #require(a[path])
            let err = zip(other, v.value.scalars).map { abs($0 - $1) }.max() ?? 0
            #expect(err < 1e-5, "\(path): \(err)")
        }
    }
}

/// Interrupt in the middle of an epoch of the second stage, resume, and end exactly where an uninterrupted run ends.
@Suite(.serialized)
struct ResumeTests {
    /// Interrupted mid-epoch in stage 2 and resumed equals uninterrupted, weights, losses and every epoch's learning
    /// rate, with each schedule (a resumed cosine run had 0.75 times the rate: the restored, already scheduled
    /// rate was scheduled again).
    @Test(.enabled(if: FashionMNISTTests.available, "dataset-fashion-mnist is not installed"),
          arguments: ["constant", "cosine", "cosine:1:0.1", "step:1:0.5", "exponential:3:0.9", "onecycle"])
    func interruptedThenResumedEqualsUninterrupted(_ text: String) throws {
        let schedule = try ScheduleSpec(parsing: text)
        let dir = try TestSupport.makeTemporaryDirectory()
        let checkpoint = dir.appendingPathComponent("lenet.h5").path
        try KerasWriter.writeLegacyH5(try Zoo.build("lenet5", options: Zoo.Options(classes: 10, inputShape: [28, 28, 1], seed: 4)),
                                      to: checkpoint, graftVersion: "test")
        func config(_ out: String) -> FineTuneConfig {
            var c = FineTuneConfig(model: checkpoint, train: "fashion-mnist:test", stages: [
                StageConfig(name: "warmup", epochs: 2, learningRate: 3e-3, schedule: schedule),
                StageConfig(name: "finetune", unfreeze: .all, epochs: 2, learningRate: 1e-3, schedule: schedule),
            ], outputDirectory: dir.appendingPathComponent(out).path)
            c.head = HeadConfig(classes: 0, hidden: [12], dropout: 0.25)
            c.classSubset = [0, 1, 2]
            c.limitPerClass = 40
            c.validationSplit = 0.25
            c.batchSize = 10
            c.seed = 8
            c.showProgress = false
            return c
        }
        let whole = try FineTuneJob(config("whole"), graftVersion: "t").run()
        // 90 training images = 9 batches an epoch: stop in epoch 3 (stage 2's first), after its 4th batch.
        let job = FineTuneJob(config("cut"), graftVersion: "t")
        job.interruptCheck = Interrupt.simulated(SIGINT, afterChecks: 9 + 9 + 3)
        let cut = try job.run()
        #expect(cut.outcome == .interrupted(signal: SIGINT, epoch: 1))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("cut/interrupted.h5").path))
        var again = config("cut")
        again.resume = true
        let resumed = try FineTuneJob(again, graftVersion: "t").run()
        #expect(resumed.outcome == .completed)
        let a = Dictionary(uniqueKeysWithValues: whole.model.namedVariables.map { ($0.path, $0.variable.value) })
        for (path, v) in resumed.model.namedVariables { #expect(a[path] == v.value, "\(path) differs") }
        #expect(resumed.history.map(\.epoch) == [1, 2, 3, 4])
        #expect(resumed.history.map(\.loss) == whole.history.map(\.loss))
        #expect(resumed.history.map(\.learningRate) == whole.history.map(\.learningRate), "\(schedule)")
        #expect(resumed.testAccuracy == whole.testAccuracy)
    }
}

extension FineTuneJobTests {
    /// `freeze: all` freezes the base; the grafted head still trains (Keras's `base.trainable = False`).
    @Test(.enabled(if: FashionMNISTTests.available, "dataset-fashion-mnist is not installed"))
    func freezeAllKeepsTheNewHeadTrainable() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let checkpoint = dir.appendingPathComponent("lenet.h5").path
        let original = try Zoo.build("lenet5", options: Zoo.Options(classes: 10, inputShape: [28, 28, 1], seed: 4))
        try KerasWriter.writeLegacyH5(original, to: checkpoint, graftVersion: "test")
        var c = FineTuneConfig(model: checkpoint, train: "fashion-mnist:test",
                               stages: [StageConfig(name: "warmup", freeze: .all, epochs: 1, learningRate: 3e-3)],
                               outputDirectory: dir.appendingPathComponent("run").path)
        c.classSubset = [0, 1]
        c.limitPerClass = 20
        c.batchSize = 8
        c.showProgress = false
        let job = FineTuneJob(c, graftVersion: "t")
        let report = try job.run()
        #expect(job.log.contains { $0.contains("trainable params 170,") })   // the new 84→2 head: 84·2 + 2
        #expect(job.log.contains("images per class: T-shirt/top 20, Trouser 20 (training)"), "\(job.log)")
        #expect(job.log.contains("training: 40 images of 28×28, gray; for the 28×28×1 input: used as they are (fit resize)"), "\(job.log)")
        #expect(report.model.variable("fc1/kernel") == original.variable("fc1/kernel"))
        let head = try #require(report.model.flattenedLayers.last)
        #expect(head.hasTrainableParameters)
    }

    /// Where the new head goes without a cut: after the end of a base saved without its top, pooled or not (Graft
    /// dropped Conv_1_bn and out_relu of a no-top MobileNetV2: 2,256,707 parameters against Keras's 2,261,827),
    /// and in place of a classifier, which the log names.
    @Test(arguments: [(false, "no-top", "out_relu"), (true, "pooled no-top", "global_average_pooling2d")])
    func headGoesWhereTheModelEnds(_ pooled: Bool, _ what: String, _ end: String) throws {
        let dir = try TestSupport.makeTemporaryDirectory("graft-head-place")
        var base = try Zoo.build("mobilenetv2", options: Zoo.Options(includeTop: false, inputShape: [32, 32, 3], seed: 1))
        if pooled {
            var b = GraphBuilder(name: "pooled_base")
            let x = try b.input(InputLayer(name: "input", shape: [32, 32, 3]))
            let f = try b.add(base, inputs: [x])
            let pooledOutput = try b.add(GlobalPooling2D(name: end, kind: .average), inputs: [f])
            base = try b.finish(outputs: [pooledOutput])
        }
        let checkpoint = dir.appendingPathComponent("base.h5").path
        try KerasWriter.writeLegacyH5(base, to: checkpoint, graftVersion: "test")
        var config = FineTuneConfig(model: checkpoint, train: TestSupport.fixture("images/folder"),
                                    stages: [StageConfig(name: "warmup", epochs: 1)], outputDirectory: dir.appendingPathComponent("run").path)
        config.showProgress = false
        let job = FineTuneJob(config, graftVersion: "test")
        let prepared = try job.prepare()
        // Keras: the base's 2,257,984 parameters and a Dense(1280 → 2) head.
        #expect(prepared.model.parameterCounts.total == base.parameterCounts.total + 1280 * 2 + 2, "\(what)")
        #expect(prepared.model.flattenedLayers.map(\.name).contains("Conv_1_bn"))
        #expect(job.log.contains { $0.contains("the new head goes after \(end)") }, "\(job.log)")
        #expect(!FileManager.default.fileExists(atPath: config.outputDirectory))   // prepare writes nothing

        let classifier = dir.appendingPathComponent("lenet.h5").path
        try KerasWriter.writeLegacyH5(try Zoo.build("lenet5", options: Zoo.Options(classes: 10, inputShape: [32, 32, 3], seed: 1)),
                                      to: classifier, graftVersion: "test")
        config.model = classifier
        let replaced = FineTuneJob(config, graftVersion: "test")
        _ = try replaced.prepare()
        #expect(replaced.log.contains { $0.contains("replaces its classifier: removed predictions") }, "\(replaced.log)")
    }

    /// A loss that does not move gets a warning, naming chance when it sits there (a zoo model's random frozen base
    /// kept 1.0986 every epoch with no word).
    @Test func aStalledLossIsReported() throws {
        let job = FineTuneJob(FineTuneConfig(model: "m.h5", train: "t", stages: [], outputDirectory: "o"), graftVersion: "t")
        #expect(job.stalledLossWarning(1.0986, classes: 3) == nil)   // the first epoch has nothing to compare with
        let w = try #require(job.stalledLossWarning(1.09862, classes: 3))
        #expect(w.contains("has not moved") && w.contains("chance for 3 classes is 1.0986"), "\(w)")
        #expect(job.stalledLossWarning(0.9, classes: 3) == nil)
        let stalledElsewhere = try #require(job.stalledLossWarning(0.90001, classes: 3))
        #expect(!stalledElsewhere.contains("chance"))
    }
}
