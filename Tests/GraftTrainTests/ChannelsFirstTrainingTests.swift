import Foundation
import Testing
import GraftData
import GraftKeras
import GraftNN
import GraftTensor
import GraftTestSupport
@testable import GraftTrain

/// A channels-first Keras checkpoint (input `[C, H, W]`) fine-tunes on images: the pipeline hands it `[N, C, H, W]`
/// batches, and the result goes back to Keras's formats.
struct ChannelsFirstTrainingTests {
    static let checkpoint = TestSupport.fixture("parity/tfkeras_channels_first.h5")

    @Test func imagesReachAChannelsFirstModelAsNCHW() throws {
        let model = try KerasLoader.load(Self.checkpoint).model
        #expect(model.inputShapes == [[3, 12, 10]] && model.readsChannelsFirstImages)
        let prep = try InputPreparation(model: model, task: nil, preprocess: "scale:0.00392156862745098", fit: .resize,
                                        inputSize: nil, data: nil, source: Self.checkpoint)
        #expect(prep.preprocessor.targetShape == [12, 10, 3] && prep.preprocessor.channelsFirst)
        let (source, _) = try DataSource.folder(TestSupport.fixture("images/folder"), skipBad: true)
        var nhwc = prep.preprocessor
        nhwc.channelsFirst = false
        let indices = Array(0..<min(3, source.count))
        let (x, _) = try prep.preprocessor.batch(source, indices)
        let (y, _) = try nhwc.batch(source, indices)
        #expect(x.shape == [indices.count, 3, 12, 10])
        #expect(x == y.movingAxis(3, to: 1))
        #expect(try model.predict([x])[0].shape == [indices.count, 4])
        // A channels-last model is not mistaken for one.
        let last = try KerasLoader.load(TestSupport.fixture("parity/tfkeras_channels_mixture.h5")).model
        #expect(!last.readsChannelsFirstImages)
    }

    @Test(.enabled(if: FashionMNISTTests.available, "dataset-fashion-mnist is not installed"))
    func aChannelsFirstCheckpointFineTunesAndReloads() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        var config = FineTuneConfig(model: Self.checkpoint, train: "fashion-mnist:train", stages: [
            StageConfig(name: "all", unfreeze: .all, epochs: 4, learningRate: 3e-3),
        ], outputDirectory: dir.appendingPathComponent("run").path)
        config.classSubset = [1, 7, 8]   // trouser, sneaker, bag
        config.limitPerClass = 80
        config.validationSplit = 0.25
        config.batchSize = 16
        config.seed = 3
        config.showProgress = false
        let report = try FineTuneJob(config, graftVersion: "test").run()
        #expect(report.model.outputShapes == [[3]])
        let last = try #require(report.history.last?.valAccuracy)
        #expect(last > 0.5)   // 3 classes: chance is 1/3
        let reloaded = try KerasLoader.load(report.finalCheckpoint).model
        #expect(reloaded.readsChannelsFirstImages)
        let x = Tensor(shape: [2, 3, 12, 10], values: (0..<720).map { Float($0 % 17) / 17 })
        #expect(try reloaded.predict([x])[0] == (try report.model.predict([x])[0]))
    }
}

/// A 1-D Keras checkpoint as a transfer-learning base: cut, new head, a frozen prefix by pattern, trained steps.
struct SequenceTransferTests {
    @Test func aConv1DBaseTakesANewHeadAndTrains() throws {
        let loaded = try KerasLoader.load(TestSupport.fixture("parity/keras3_sequence_1d.h5")).model
        let base = try loaded.cut(at: "gap")
        let model = try base.replacingHead(HeadConfig(classes: 2, pooling: .none), seed: 3)
        #expect(try model.freeze(.patterns(["causal*", "grouped*"])) == 2)
        let frozen: [(path: String, value: Tensor)] = ["causal_dil/kernel", "grouped_s2/kernel"].map { path in
            (path, model.namedVariables.first { $0.path == path }!.variable.value)
        }
        let sep: Tensor = try #require(model.variable("sep/depthwise_kernel"))
        let trainer = Trainer(model: model, optimizer: Adam(learningRate: 1e-2), preprocessor: Preprocessor(targetShape: [24, 4, 1], mode: .none))
        var rng = SplitMix64(seed: 1)
        // Class 1: a rising ramp on channel 0; class 0: noise only.
        var values = [Float](), labels = [Int]()
        for n in 0..<16 {
            labels.append(n % 2)
            for t in 0..<24 { for c in 0..<4 { values.append(rng.uniform(-0.3, 0.3) + (n % 2 == 1 && c == 0 ? Float(t) / 12 : 0)) } }
        }
        let x = Tensor(shape: [16, 24, 4], values: values)
        var context = TrainingContext(seed: 2)
        var losses: [Double] = []
        for _ in 0..<30 { losses.append(try trainer.trainStep(x, labels: labels, loss: Loss(), clipNorm: nil, context: &context).0) }
        #expect(losses.last! < losses.first! * 0.5, "\(losses.first!) → \(losses.last!)")
        for f in frozen { #expect(model.variable(f.path) == f.value, "\(f.path) changed") }
        #expect(model.variable("sep/depthwise_kernel") != sep)
    }
}
