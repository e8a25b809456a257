import Foundation
import Testing
import GraftData
import GraftKeras
import GraftNN
import GraftTensor
import GraftTestSupport
@testable import GraftTrain

/// Transfer learning on sequences, end to end through `FineTuneJob`: a pretrained image CNN run over the frames of
/// clips with a new recurrent head; a frozen Embedding + LSTM base with a new head on token ids; images read as
/// sequences of rows.
struct SequenceTrainingTests {
    static let convnet = TestSupport.fixture("../../pretrained/convnet-fashion.h5")

    /// `[N, frames, 28, 28, 1]` clips of Fashion-MNIST test images, each clip `frames` images of one class, as
    /// `X.npy,Y.npy` in `dir`.
    static func clips(classes: [Int], perClass: Int, frames: Int, dir: URL) throws -> String {
        let (source, _) = try DataSource.load("fashion-mnist:test")
        var byClass: [Int: [Int]] = [:]
        for (i, label) in source.labels.enumerated() where classes.contains(label) { byClass[label, default: []].append(i) }
        var pixels: [Float] = [], labels: [Float] = []
        let pre = Preprocessor(targetShape: [28, 28, 1], mode: .none)
        for (k, c) in classes.enumerated() {
            let pool = try #require(byClass[c])
            for clip in 0..<perClass {
                let (x, _) = try pre.batch(source, Array(pool[(clip * frames)..<((clip + 1) * frames)]))
                pixels += x.scalars
                labels.append(Float(k))
            }
        }
        let n = classes.count * perClass
        let xPath = dir.appendingPathComponent("clips_x.npy").path, yPath = dir.appendingPathComponent("clips_y.npy").path
        try NPY.write(Tensor(shape: [n, frames, 28, 28, 1], values: pixels), to: xPath)
        try NPY.write(Tensor(shape: [n], values: labels), to: yPath)
        return "\(xPath),\(yPath)"
    }

    @Test(.enabled(if: FashionMNISTTests.available, "dataset-fashion-mnist is not installed"))
    func aPretrainedCNNOverFramesTakesARecurrentHead() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let data = try Self.clips(classes: [0, 1, 7], perClass: 40, frames: 3, dir: dir)
        var config = FineTuneConfig(model: Self.convnet, train: data, stages: [
            StageConfig(name: "head", freeze: .all, epochs: 6, learningRate: 1e-2),
        ], outputDirectory: dir.appendingPathComponent("run").path)
        config.cut = "avg_pool"
        config.frames = 3
        var head = HeadConfig(classes: 0)
        head.recurrent = RecurrentHead(cell: .lstm, units: 16)
        config.head = head
        config.preprocess = "1/255"
        config.validationSplit = 0.25
        config.batchSize = 16
        config.seed = 2
        config.showProgress = false
        let base = try KerasLoader.load(Self.convnet).model
        let before = try #require(base.namedVariables.first { $0.path == "stem_conv1/kernel" }?.variable.value)
        let report = try FineTuneJob(config, graftVersion: "test").run()
        // The CNN runs on each frame; the LSTM reads the 3 feature vectors; the frozen CNN is untouched.
        #expect(report.model.inputShapes == [[3, 28, 28, 1]] && report.model.outputShapes == [[3]])
        #expect(report.model.layer(named: "head_lstm") is Recurrent)
        let after = try #require(report.model.namedVariables.first { $0.path.hasSuffix("stem_conv1/kernel") }?.variable.value)
        #expect(after == before)
        let accuracy = try #require(report.history.last?.valAccuracy)
        #expect(accuracy > 0.8)   // three distinct classes, each clip of one: chance is 1/3
        // The checkpoint reloads with the same outputs, and per-frame features come out as [N, frames, 128].
        let reloaded = try KerasLoader.load(report.finalCheckpoint).model
        let (clips, _) = try DataSource.load(data)
        let pre = Preprocessor(targetShape: clips.imageShape ?? [], mode: .scale(1.0 / 255))
        let (x, _) = try pre.batch(clips, [0, 50, 100])
        #expect(try reloaded.predict([reloaded.fittingInput(x)])[0] == (try report.model.predict([report.model.fittingInput(x)])[0]))
        let perFrame = try reloaded.cut(at: try #require(reloaded.layers.first { $0 is TimeDistributed }?.name))
        var extractor = FeatureExtractor(model: perFrame, preprocessor: pre)
        extractor.pooling = .none
        extractor.showProgress = false
        let out = dir.appendingPathComponent("frames.npy").path
        let (rows, width) = try extractor.extract(clips, to: out)
        #expect(rows == 120 && width == 3 * 128)
    }

    /// Token ids: `Embedding(mask_zero) → LSTM` pretrained on one task (which of tokens 3 and 4 occurs, or neither)
    /// is frozen and takes a new head for another (does either occur?); its embeddings stay as they were.
    @Test func aFrozenEmbeddingAndLSTMBaseTakesANewHead() throws {
        var b = GraphBuilder(name: "text", seed: 4)
        let ids = try b.input(InputLayer(name: "tokens", shape: [8]))
        let e = try b.add(Embedding(name: "embed", inputDim: 12, outputDim: 8, maskZero: true), inputs: [ids])
        let mask = try b.add(SequenceMask(name: "embed/mask", kind: .notEqual(0)), inputs: [ids])
        let lstm = Recurrent(name: "lstm", cell: .lstm, settings: Recurrent.Settings(units: 16))
        lstm.masked = true
        let h = try b.add(lstm, inputs: [e, mask])
        let y = try b.add(Dense(name: "task_a", units: 3, activation: .softmax), inputs: [h])
        let pretrained = try b.finish(outputs: [y])
        var rng = SplitMix64(seed: 9)
        /// Sequences of 3 to 8 tokens (then padding) holding token 3 (label 1), token 4 (label 2) or neither (0).
        func batch(_ n: Int) -> (Tensor, [Int]) {
            var values: [Float] = [], labels: [Int] = []
            for k in 0..<n {
                let length = 3 + Int(rng.next() % 6)
                var row = (0..<8).map { $0 < length ? Float(5 + rng.next() % 7) : 0 }
                if k % 3 > 0 { row[Int(rng.next() % UInt64(length))] = Float(2 + k % 3) }
                values += row
                labels.append(k % 3)
            }
            return (Tensor(shape: [n, 8], values: values), labels)
        }
        func accuracy(_ m: Model, _ x: Tensor, _ labels: [Int]) throws -> Double {
            let p = try m.predict([x])[0], k = p.shape[1]
            let right = (0..<labels.count).filter { r in (0..<k).max { p[r, $0] < p[r, $1] } == labels[r] }.count
            return Double(right) / Double(labels.count)
        }
        let pre = Preprocessor(targetShape: [8, 1, 1], mode: .none)
        let trainerA = Trainer(model: pretrained, optimizer: Adam(learningRate: 1e-2), preprocessor: pre)
        var context = TrainingContext(seed: 1)
        for _ in 0..<80 {
            let (x, labels) = batch(48)
            _ = try trainerA.trainStep(x, labels: labels, loss: Loss(), clipNorm: nil, context: &context)
        }
        let (testX, testA) = batch(300)
        #expect(try accuracy(pretrained, testX, testA) > 0.9)
        // Task B on the frozen base: a marker or none.
        let model = try pretrained.cut(at: "lstm").replacingHead(HeadConfig(classes: 2, pooling: .none), seed: 5)
        #expect(try model.freeze(.patterns(["embed", "lstm"])) == 2)
        let embeddings = try #require(model.layer(named: "embed")?.variable("embeddings")?.value)
        let trainer = Trainer(model: model, optimizer: Adam(learningRate: 2e-2), preprocessor: pre)
        for _ in 0..<60 {
            let (x, labels) = batch(48)
            _ = try trainer.trainStep(x, labels: labels.map { min($0, 1) }, loss: Loss(), clipNorm: nil, context: &context)
        }
        #expect(try accuracy(model, testX, testA.map { min($0, 1) }) > 0.9)
        #expect(model.layer(named: "embed")?.variable("embeddings")?.value == embeddings)
        // A recurrent head grafted on the Embedding itself takes its mask, as Keras would.
        var recurrentHead = HeadConfig(classes: 2)
        recurrentHead.recurrent = RecurrentHead(cell: .gru, units: 4)
        let onEmbedding = try pretrained.cut(at: "embed").replacingHead(recurrentHead, seed: 6)
        #expect((onEmbedding.layer(named: "head_gru") as? Recurrent)?.masked == true)
        // Written back and read again, the masks and weights come with it.
        let file = try TestSupport.makeTemporaryDirectory().appendingPathComponent("text.keras").path
        try KerasWriter.writeKerasArchive(model, to: file)
        let reloaded = try KerasLoader.load(file).model
        #expect(try reloaded.predict([testX])[0] == (try model.predict([testX])[0]))
    }

    /// A sequence model's input: the data's samples as they are (no resizing), read raw unless told otherwise, and
    /// no augmentation.
    /// A layer with several outputs is cut at its first (the sequence or last output), `layer[k]` at output k; the
    /// cut model writes and reads back; a missing output and `[k]` on a one-output layer are one line each.
    @Test func cutAtALayerWithSeveralOutputs() throws {
        let model = try KerasLoader.load(TestSupport.fixture("parity/tfkeras_recurrent.h5")).model
        let x = try NPY.read(TestSupport.fixture("parity/tfkeras_recurrent_input.npy"))
        let whole = try model.cut(at: "encoder")
        let h = try model.cut(at: "encoder[1]"), c = try model.cut(at: "encoder[2]")
        #expect(whole.outputShapes == [[4]] && h.outputShapes == [[4]] && c.outputShapes == [[4]])
        let (y, hy, cy) = (try whole.predict([x])[0], try h.predict([x])[0], try c.predict([x])[0])
        // Without return_sequences the output is the last hidden state; the cell state is another tensor.
        #expect(y.scalars == hy.scalars)
        #expect(cy.scalars != hy.scalars)
        let file = try TestSupport.makeTemporaryDirectory().appendingPathComponent("cell.h5").path
        try KerasWriter.writeLegacyH5(c, to: file, graftVersion: "test")
        #expect(try KerasLoader.load(file).model.predict([x])[0].scalars == cy.scalars)
        #expect { try model.cut(at: "encoder[3]") } throws: { "\($0)".contains("encoder") && "\($0)".contains("no output 3") }
        #expect { try model.cut(at: "lstm_seq[1]") } throws: { "\($0)".contains("lstm_seq") && "\($0)".contains("one output") }
    }

    @Test func sequenceInputsAreNotImages() throws {
        let model = try Zoo.build("rowlstm", options: Zoo.Options(classes: 3))
        #expect(model.inputShapes == [[28, 28]])
        let prep = try InputPreparation(model: model, task: nil, preprocess: nil, fit: nil, inputSize: nil, data: [28, 28, 1], source: "m")
        #expect(prep.preprocessor.targetShape == [28, 28, 1] && prep.preprocessor.mode == .none)
        #expect { try InputPreparation(model: model, task: nil, preprocess: nil, fit: nil, inputSize: nil, data: [32, 32, 1], source: "m") } throws: {
            "\($0)".contains("not resized")
        }
        let x = Tensor(shape: [2, 28, 28, 1], repeating: 0.5)
        #expect(model.fittingInput(x).shape == [2, 28, 28])
        #expect(try model.predict([model.fittingInput(x)])[0].shape == [2, 3])
        // Token ids and clips travel as images of the same size.
        #expect(DataSource.heldShape([7]) == [7, 1, 1] && DataSource.heldShape([4, 8, 8, 2]) == [32, 8, 2])
        let tokens = try DataSource.arrays(x: Tensor(shape: [3, 5], values: (0..<15).map { Float($0 % 4) }), y: Tensor([0, 1, 0]), name: "t")
        #expect(tokens.imageShape == [5, 1, 1])
    }
}
