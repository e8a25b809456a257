import Foundation
import Testing
import GraftData
import GraftHDF5
import GraftNN
import GraftTensor
import GraftTestSupport
@testable import GraftKeras

/// Graft writes Keras checkpoints; Graft reads them back identically. (Keras reading them is checked by
/// tools/verify_keras_roundtrip.py, which needs Python.)
struct WriterTests {
    @Test(arguments: ParityTests.cases)
    func legacyH5RoundTripIsExact(_ c: ParityTests.Case) throws {
        let source = try KerasLoader.load(ParityTests.path(c.files["h5"] ?? ""))
        let x = try NPY.read(ParityTests.path(c.input))
        let before = try source.model.predict([x])[0]
        let dir = try TestSupport.makeTemporaryDirectory()
        let full = dir.appendingPathComponent("full.h5").path
        let weights = dir.appendingPathComponent("weights.h5").path
        // Keras 3 does not mask a recurrent layer called with initial states, tf-keras does; Keras 3's attention scores
        // give a fully masked query no attention, tf-keras's spread it; hard_sigmoid means another function in each
        // (a ConvLSTM2D's recurrent activation cannot be rewritten as layers); Keras 3's MultiHeadAttention removes the
        // masks of the tensors it takes, tf-keras's keeps them: a Keras 2-style file cannot say which, so such a model
        // is refused (naming the layer) and nothing is written.
        if let layer = ["keras3_recurrent": "decoder", "keras3_attention": "mha_scores", "keras3_conv_lstm": "convlstm_dilated",
                        "keras3_transformer": "late"][c.name] {
            #expect { try KerasWriter.writeLegacyH5(source.model, to: full, graftVersion: "test") } throws: {
                "\($0)".contains("layer \(layer)") && "\($0)".contains(".keras")
            }
            #expect(!FileManager.default.fileExists(atPath: full))
            return
        }
        try KerasWriter.writeLegacyH5(source.model, to: full, graftVersion: "test")
        try KerasWriter.writeLegacyH5(source.model, to: weights, weightsOnly: true, graftVersion: "test")
        for (file, architecture) in [(full, nil), (weights, full)] {
            let again = try KerasLoader.load(file, architecture: architecture)
            #expect(again.report.isComplete)
            let original = Dictionary(uniqueKeysWithValues: source.model.namedVariables.map { ($0.path, $0.variable.value) })
            for (path, v) in again.model.namedVariables {
                #expect(original[path] == v.value, "\(path) differs after the round trip")
            }
            try Self.expectSameOutputs(try again.model.predict([x])[0], before, c.name)
        }
        let info = try #require(try KerasFileInfo.recognize(try HDF5File.open(full)))
        #expect(info.format == .legacyFullModel)
    }

    /// Every fixture model through the Keras 3 writers: `.weights.h5` (read back with the model's own architecture)
    /// and `.keras` archives, with bit-identical weights and outputs.
    @Test(arguments: ParityTests.cases)
    func keras3FormatsRoundTripExactly(_ c: ParityTests.Case) throws {
        let source = try KerasLoader.load(ParityTests.path(c.files["h5"] ?? ""))
        let x = try NPY.read(ParityTests.path(c.input))
        let before = try source.model.predict([x])[0]
        let dir = try TestSupport.makeTemporaryDirectory()
        let archive = dir.appendingPathComponent("m.keras").path
        let weights = dir.appendingPathComponent("m.weights.h5").path
        if c.name == "tfkeras_locally_connected" {
            // Keras 3 has no LocallyConnected2D: refused, nothing written.
            #expect(throws: KerasError.self) { try KerasWriter.writeKerasArchive(source.model, to: archive) }
            #expect(!FileManager.default.fileExists(atPath: archive))
            return
        }
        if let layer = ["tfkeras_attention": "mha_scores", "tfkeras_conv_lstm": "convlstm_seq", "tfkeras_transformer": "late"][c.name] {
            // The other way round: a .keras file would be read Keras 3's way.
            #expect { try KerasWriter.writeKerasArchive(source.model, to: archive) } throws: { "\($0)".contains("layer \(layer)") }
            #expect(!FileManager.default.fileExists(atPath: archive))
            return
        }
        try KerasWriter.writeKeras3Weights(source.model, to: weights)
        try KerasWriter.writeKerasArchive(source.model, to: archive)
        let loads: [(String, String?)] = [(archive, nil), (weights, archive)]
        let original = Dictionary(uniqueKeysWithValues: source.model.namedVariables.map { ($0.path, $0.variable.value) })
        for (file, architecture) in loads {
            let again = try KerasLoader.load(file, architecture: architecture)
            #expect(again.report.isComplete)
            for (path, v) in again.model.namedVariables {
                #expect(original[path] == v.value, "\(path) differs after the round trip through \(file)")
            }
            try Self.expectSameOutputs(try again.model.predict([x])[0], before, c.name)
        }
        let info = try #require(try KerasFileInfo.recognize(try HDF5File.open(weights)))
        #expect(info.format == .keras3Weights)
    }

    /// Identical outputs; the activation fixtures write hard_sigmoid as Rescaling + ReLU (the one form every Keras
    /// reads alike), which rounds differently from the fused formula by at most a few ulps.
    static func expectSameOutputs(_ a: Tensor, _ b: Tensor, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        if name.hasSuffix("activations_zoo") {
            #expect(a.shape == b.shape, sourceLocation: sourceLocation)
            #expect(zip(a.scalars, b.scalars).allSatisfy { abs($0 - $1) <= 1e-6 }, sourceLocation: sourceLocation)
        } else {
            #expect(a == b, sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: ParityTests.cases)
    func layerNamesFollowKerasOrder(_ c: ParityTests.Case) throws {
        // Keras's loader matches layer_names to model.layers by position: our order must equal Keras's own.
        let path = ParityTests.path(c.files["h5"] ?? "")
        let loaded = try KerasLoader.load(path)
        let written = try HDF5File.open(path).group("/model_weights").readStringListAttribute("layer_names")
        // Keras 3 does not count bare math ops (keras.src.ops) as layers.
        let ours = KerasWriter.kerasLayerOrder(loaded.model).filter { !($0 is TensorOp) || c.keras_version.hasPrefix("2.") }.map(\.name)
        if loaded.model.kerasClassName == "Sequential" {
            #expect(ours.filter { $0 != loaded.model.nodes[0].layer.name } == written)
        } else {
            #expect(ours == written)
        }
    }

    @Test func attentionKeywordArgumentsKeepKerasOrder() throws {
        // tf-keras rebuilds a call's tensors in the order its keyword arguments are listed, and that order decides its
        // layer order and so which weights its positional loader gives each layer: value before key, as tf-keras writes.
        let loaded = try KerasLoader.load(ParityTests.path("tfkeras_attention.h5"))
        let json = try KerasConfigEncoder.json(loaded.model)
        #expect(json.contains(#"["q2",0,0,{"value":["v2",0,0],"key":["k2",0,0],"use_causal_mask":true}]"#))
        #expect(!json.contains("\\u0001"))
        // Everywhere else the keys stay sorted.
        #expect(json.contains(#"{"class_name":"MultiHeadAttention","config":{"#))
    }

    @Test func zooParameterCountsMatchKeras() throws {
        let expected: [(String, Zoo.Options, Int)] = [
            ("lenet5", Zoo.Options(), 61_706),
            ("alexnet", Zoo.Options(), 62_378_344),
            ("vgg16", Zoo.Options(includeTop: false), 14_714_688),
            ("resnet50", Zoo.Options(), 25_636_712),
            ("mobilenetv2", Zoo.Options(), 3_538_984),
            ("convnet", Zoo.Options(), 102_378),   // Keras 3.15 load_model + count_params of `graft zoo convnet`
        ]
        for (name, options, total) in expected {
            let m = try Zoo.build(name, options: options)
            #expect(m.parameterCounts.total == total, "\(name)")
        }
        let resnet = try Zoo.build("resnet50")
        #expect(resnet.parameterCounts.nonTrainable == 53_120)
        #expect(resnet.outputShapes == [[1000]])
        let small = try Zoo.build("mobilenetv2", options: Zoo.Options(classes: 10, inputShape: [96, 96, 3]))
        #expect(small.outputShapes == [[10]])
        #expect(throws: ZooError.self) { try Zoo.build("inceptionv9") }
    }

    @Test func zooArchitectureTakesWeightsByName() throws {
        // A zoo model written by Graft, read back as weights into a zoo architecture given by spec.
        let dir = try TestSupport.makeTemporaryDirectory()
        let path = dir.appendingPathComponent("m.h5").path
        let m = try Zoo.build("mobilenetv2", options: Zoo.Options(classes: 3, inputShape: [32, 32, 3], seed: 9))
        try KerasWriter.writeLegacyH5(m, to: path, weightsOnly: true, graftVersion: "test")
        let loaded = try KerasLoader.load(path, architecture: "zoo:mobilenetv2?classes=3&input=32,32,3")
        let x = Tensor(shape: [2, 32, 32, 3], repeating: 0.25)
        #expect(try loaded.model.predict([x])[0] == (try m.predict([x])[0]))
        #expect { try KerasLoader.load(path, architecture: "zoo:mobilenetv2?classes=4&input=32,32,3") } throws: {
            ($0 as? WeightLoadError)?.report.mismatched == [.init(path: "predictions/kernel", checkpoint: [1280, 3], model: [1280, 4]),
                                                            .init(path: "predictions/bias", checkpoint: [3], model: [4])]
        }
        #expect(throws: KerasError.self) { try KerasLoader.loadArchitecture("zoo:mobilenetv2?colour=blue") }
    }

    /// A tiled convolution Keras can express is written as that layer: tiles 1×1 as Conv2D (kernel and bias in
    /// Conv2D's shapes), one tile per position of a valid convolution as LocallyConnected2D (.h5); the file reads back
    /// as that layer with the same outputs.
    @Test func tiledConvolutionsKerasCanExpressAreWrittenAsThoseLayers() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let x = Tensor(shape: [2, 28, 28, 1], values: (0..<1568).map { Float($0 % 29) / 29 })
        let one = try Zoo.build("tiled", options: Zoo.Options(classes: 3, seed: 5, tiles: 1))
        for file in ["one.h5", "one.keras"] {
            let path = dir.appendingPathComponent(file).path
            if file.hasSuffix(".keras") { try KerasWriter.writeKerasArchive(one, to: path) } else { try KerasWriter.writeLegacyH5(one, to: path, graftVersion: "t") }
            let again = try KerasLoader.load(path).model
            #expect(again.layer(named: "tiled1") is Conv2D)
            #expect(again.namedVariables.first { $0.path == "tiled1/kernel" }?.variable.shape == [5, 5, 1, 16])
            try Self.expectSameOutputs(try again.predict([x])[0], try one.predict([x])[0], file)
        }
        let lc = TiledConv2D(name: "lc", config: Conv2DConfig(filters: 2, kernelSize: [3, 3]), tiles: [4, 3])
        let m = try GraphBuilder.sequential(name: "m", inputShape: [6, 5, 1], layers: [lc, Flatten(name: "f")], seed: 2)
        #expect(lc.kerasEquivalent == "LocallyConnected2D")
        let path = dir.appendingPathComponent("lc.h5").path
        try KerasWriter.writeLegacyH5(m, to: path, graftVersion: "t")
        let again = try KerasLoader.load(path).model
        #expect(again.layer(named: "lc") is LocallyConnected2D)
        let y = Tensor(shape: [1, 6, 5, 1], values: (0..<30).map { Float($0) / 30 })
        #expect(try again.predict([y])[0] == (try m.predict([y])[0]))
    }

    @Test func unwritableLayersAreRefused() throws {
        let m = try GraphBuilder.sequential(name: "s", inputShape: [4, 4, 1],
                                            layers: [Pooling2D(name: "sum", kind: .sum, poolSize: [2, 2])])
        do {
            _ = try KerasConfigEncoder.json(m)
            Issue.record("sum pooling was written")
        } catch let e as KerasError {
            #expect(e.message.contains("sum"))
        }
    }
}
