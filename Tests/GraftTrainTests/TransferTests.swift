import Foundation
import Testing
import GraftData
import GraftKeras
import GraftNN
import GraftTensor
import GraftTestSupport
@testable import GraftTrain

/// Freezing, cutting and head swapping, and what training does (and does not do) to frozen layers.
struct TransferTests {
    static func random(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in rng.uniform(-1, 1) }
    }

    /// A small conv base with BatchNorm, as a Keras-like functional model.
    static func base() throws -> Model {
        var b = GraphBuilder(name: "base", seed: 3)
        var x = try b.input(InputLayer(name: "input", shape: [8, 8, 1]))
        x = try b.add(Conv2D(name: "block1_conv", config: Conv2DConfig(filters: 4, kernelSize: [3, 3], padding: .same)), inputs: [x])
        x = try b.add(BatchNormalization(name: "block1_bn"), inputs: [x])
        x = try b.add(ActivationLayer(name: "block1_relu", activation: .relu), inputs: [x])
        x = try b.add(Pooling2D(name: "block1_pool", kind: .max, poolSize: [2, 2]), inputs: [x])
        x = try b.add(Conv2D(name: "block2_conv", config: Conv2DConfig(filters: 6, kernelSize: [3, 3], padding: .same, activation: .relu)), inputs: [x])
        x = try b.add(GlobalPooling2D(name: "gap", kind: .average), inputs: [x])
        x = try b.add(Dense(name: "predictions", units: 10, activation: .softmax), inputs: [x])
        return try b.finish(outputs: [x])
    }

    @Test func cutAndNewHead() throws {
        let m = try Self.base()
        let cut = try m.cut(at: "block1_pool")
        #expect(cut.outputShapes == [[4, 4, 4]])
        #expect(cut.layers.map(\.name) == ["input", "block1_conv", "block1_bn", "block1_relu", "block1_pool"])
        let grafted = try cut.replacingHead(HeadConfig(classes: 3, pooling: .max, hidden: [5], dropout: 0.25), seed: 1)
        #expect(grafted.outputShapes == [[3]])
        #expect(grafted.flattenedLayers.suffix(4).map(\.kerasClassName) == ["GlobalMaxPooling2D", "Dense", "Dropout", "Dense"])
        #expect(grafted.flattenedLayers.last?.name == "predictions")
        // The cut shares weights with the original.
        #expect(cut.layer(named: "block1_conv") === m.layer(named: "block1_conv"))
        #expect(throws: LayerError.self) { try m.cut(at: "nope") }
    }

    @Test func freezeSpecsAndKerasCounts() throws {
        let m = try Self.base()
        let total = m.parameterCounts.total
        #expect(try m.freeze(.until("block1_pool")) == 4)
        // block1_conv (40) and block1_bn gamma/beta (8) frozen; the 8 moving statistics were never trainable.
        #expect(m.parameterCounts.trainable == total - 40 - 16)
        #expect((m.layer(named: "block1_bn") as? BatchNormalization)?.frozen == true)
        try m.unfreeze(.all)
        #expect(m.parameterCounts.nonTrainable == 8)
        #expect((m.layer(named: "block1_bn") as? BatchNormalization)?.frozen == true)   // inference mode kept by default
        try m.unfreeze(.patterns(["block1_*"]), batchNorm: .train)
        #expect((m.layer(named: "block1_bn") as? BatchNormalization)?.frozen == false)
        try m.freeze(.from("block2_conv"))
        #expect(m.layer(named: "predictions")?.hasTrainableParameters == false)
        #expect(throws: LayerError.self) { try m.freeze(.until("missing_layer")) }
        #expect(throws: LayerError.self) { try m.freeze(.patterns(["zzz*"])) }
        #expect(FreezeSpec(parsing: "until:block3_pool") == .until("block3_pool"))
        #expect(FreezeSpec(parsing: "block1_*,block2_conv") == .patterns(["block1_*", "block2_conv"]))
        let lines = m.summary().split(separator: "\n").suffix(3)
        #expect(lines.first?.hasPrefix("Total params: ") == true)
    }

    @Test func frozenLayersStayBitIdenticalAndGetNoBackward() throws {
        let m = try Self.base()
        try m.freeze(.until("block1_pool"))
        let frozenBefore = m.namedVariables.filter { $0.path.hasPrefix("block1_") }.map { ($0.path, $0.variable.value) }
        let headBefore = m.variable("predictions/kernel")
        let pre = Preprocessor(targetShape: [8, 8, 1], fit: .pad, mode: .none)
        let trainer = Trainer(model: m, optimizer: Adam(learningRate: 0.01), preprocessor: pre)
        let data = ImageDataset(imageShape: [8, 8, 1], pixels: Self.random(16 * 64, seed: 5), labels: (0..<16).map { $0 % 10 },
                                ids: (0..<16).map(String.init), classNames: (0..<10).map(String.init))
        var options = FitOptions(epochs: 2, batchSize: 4)
        options.showProgress = false
        try trainer.fit(train: data, validation: nil, options: options)
        for (path, value) in frozenBefore {
            #expect(m.namedVariables.first { $0.path == path }?.variable.value == value, "\(path) changed")
        }
        #expect(m.variable("predictions/kernel") != headBefore)
        // Only the nodes after the frozen prefix ran a backward.
        #expect(trainer.lastBackward.layersRun == ["predictions", "gap", "block2_conv"])
        #expect(trainer.lastBackward.nodesRun == 3)
    }
}

extension Model {
    func variable(_ path: String) -> Tensor? { namedVariables.first { $0.path == path }?.variable.value }
}
