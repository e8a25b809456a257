import Testing
import GraftTensor
@testable import GraftNN

/// The model graph: building, running sub-graphs, sharing, summaries and counts.
struct ModelTests {
    func smallFunctional() throws -> Model {
        var b = GraphBuilder(name: "net", seed: 1)
        let x = try b.input(InputLayer(name: "in", shape: [4, 4, 2]))
        let c = try b.add(Conv2D(name: "conv", config: Conv2DConfig(filters: 3, kernelSize: [3, 3], padding: .same)), inputs: [x])
        let bn = try b.add(BatchNormalization(name: "bn"), inputs: [c])
        let r = try b.add(ActivationLayer(name: "relu", activation: .relu), inputs: [bn])
        let s = try b.add(Merge(name: "add", kind: .add), inputs: [r, c])
        let g = try b.add(GlobalPooling2D(name: "gap", kind: .average), inputs: [s])
        let d = try b.add(Dense(name: "fc", units: 2, activation: .softmax), inputs: [g])
        return try b.finish(outputs: [d])
    }

    @Test func shapesAndCountsLikeKeras() throws {
        let m = try smallFunctional()
        #expect(m.outputShapes == [[2]])
        #expect(m.nodes[m.nodeIndex(ofLayer: "add")!].outputShape == [4, 4, 3])
        // conv 2·3·9+3 = 57, bn 4·3 = 12 (6 of them moving statistics), fc 3·2+2 = 8.
        let counts = m.parameterCounts
        #expect(counts.total == 77)
        #expect(counts.trainable == 71)
        #expect(counts.nonTrainable == 6)
        #expect(m.namedVariables.map(\.path) == ["conv/kernel", "conv/bias", "bn/gamma", "bn/beta", "bn/moving_mean",
                                                 "bn/moving_variance", "fc/kernel", "fc/bias"])
    }

    @Test func summaryEndsWithTheThreeCountLines() throws {
        let lines = try smallFunctional().summary().split(separator: "\n").map(String.init)
        #expect(lines.first == "Model: \"net\"")
        #expect(Array(lines.suffix(3)) == ["Total params: 77", "Trainable params: 71", "Non-trainable params: 6"])
        #expect(lines.contains { $0.hasPrefix("add (Add)") && $0.hasSuffix("relu, conv") })
        #expect(grouped(25_636_712) == "25,636,712")
    }

    @Test func runComputesIntermediateNodesAndChecksInputs() throws {
        let m = try smallFunctional()
        let x = Tensor(shape: [5, 4, 4, 2], repeating: 0.5)
        let out = try m.predict([x])[0]
        #expect(out.shape == [5, 2])
        for row in 0..<5 { #expect(abs(out[row, 0] + out[row, 1] - 1) < 1e-6) }
        let gap = try m.run([x], targets: [m.nodeIndex(ofLayer: "gap")!])[0]
        #expect(gap.shape == [5, 3])
        #expect(throws: LayerError.self) { try m.predict([Tensor(shape: [1, 4, 4, 3])]) }
        #expect(throws: LayerError.self) { try m.predict([Tensor(shape: [1, 5, 4, 2])]) }
    }

    @Test func badGraphsAreRejectedWithTheLayerName() throws {
        var b = GraphBuilder(name: "bad")
        let x = try b.input(InputLayer(name: "in", shape: [8]))
        _ = try b.add(Dense(name: "fc", units: 2), inputs: [x])
        do {
            _ = try b.add(Dense(name: "fc", units: 3), inputs: [x])
            Issue.record("duplicate layer name accepted")
        } catch let e as LayerError {
            #expect(e.layer == "fc")
        }
        do {
            _ = try b.add(Merge(name: "add", kind: .add), inputs: [x, 7])
            Issue.record("dangling input accepted")
        } catch let e as LayerError {
            #expect(e.layer == "add")
        }
        var c = GraphBuilder(name: "shape")
        let y = try c.input(InputLayer(name: "in", shape: [4, 4, 3]))
        #expect(throws: LayerError.self) {
            try c.add(Conv2D(name: "big", config: Conv2DConfig(filters: 1, kernelSize: [5, 5])), inputs: [y])
        }
        #expect(throws: LayerError.self) {
            try c.add(Conv2D(name: "groups", config: Conv2DConfig(filters: 4, kernelSize: [1, 1], groups: 2)), inputs: [y])
        }
    }

    @Test func sharedLayersShareVariables() throws {
        var b = GraphBuilder(name: "shared")
        let x = try b.input(InputLayer(name: "in", shape: [3]))
        let fc = Dense(name: "fc", units: 3)
        let h1 = try b.add(fc, inputs: [x])
        let h2 = try b.add(fc, inputs: [h1])
        let m = try b.finish(outputs: [h2])
        #expect(m.layers.count == 2)
        #expect(m.parameterCounts.total == 12)
        fc.kernel.value = Tensor(shape: [3, 3], values: [2, 0, 0, 0, 2, 0, 0, 0, 2])
        let y = try m.predict([Tensor(shape: [1, 3], values: [1, 2, 3])])[0]
        #expect(y.scalars == [4, 8, 12])
    }

    @Test func nestedModelsAreLayers() throws {
        let base = try GraphBuilder.sequential(name: "base", inputShape: [2], layers: [Dense(name: "inner", units: 2)])
        let outer = try GraphBuilder.sequential(name: "outer", inputShape: [2], layers: [base, Dense(name: "head", units: 1)])
        #expect(outer.namedVariables.map(\.path) == ["base/inner/kernel", "base/inner/bias", "head/kernel", "head/bias"])
        #expect(outer.layer(named: "inner") != nil)
        #expect(try outer.predict([Tensor(shape: [4, 2])])[0].shape == [4, 1])
    }
}
