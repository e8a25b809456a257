import Foundation
import GraftCore
import GraftData
@testable import GraftKeras
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing

/// Every compute path the switches of `ComputeOptions` select (oneDNN on and off, its pointwise and depthwise
/// parts, inference fusion, the SIMD build of exp/tanh/sigmoid): all 32 combinations give Keras's outputs, and the
/// same gradients in a training step with a frozen base (where fusion and oneDNN's backward passes apply).
struct ComputePathTests {
    static let cases = ParityTests.cases.filter { $0.files["h5"] != nil }

    @Test func everyCombinationIsDistinct() {
        #expect(Set(ComputeOptions.allCombinations.map(\.description)).count == 32)
        #expect(ComputeOptions.allCombinations.contains(ComputeOptions()))
    }

    /// A training step's output and every trainable variable's gradient, with the first half of the layers frozen.
    /// Training-mode batch normalisation updates its moving statistics: every variable is put back afterwards.
    static func trainingStep(_ model: Model, _ x: Tensor, _ weights: Tensor) throws -> (y: [Float], grads: [String: [Float]]) {
        let saved = model.namedVariables.map { ($0.variable, $0.variable.value) }
        defer { for (v, value) in saved { v.value = value } }
        var context = TrainingContext(seed: 3)
        model.zeroGradients()
        let (outs, tape) = try model.forwardTraining([x], context: &context)
        try model.backward(tape, outputGradients: [weights])
        var grads: [String: [Float]] = [:]
        for (path, v) in model.namedVariables where v.isTrainable { grads[path] = v.grad?.scalars ?? [] }
        return (outs[0].scalars, grads)
    }

    @Test(arguments: cases)
    func everyPathMatchesKeras(_ c: ParityTests.Case) throws {
        let x = try NPY.read(ParityTests.path(c.input))
        let ref = try NPY.read(ParityTests.path(c.output))
        let scale = max(1, ref.scalars.map(abs).max() ?? 0)
        let model = try KerasLoader.load(ParityTests.path(try #require(c.files["h5"])), architecture: nil).model
        let layers = model.flattenedLayers
        let trainableFrom = layers.lastIndex { $0.hasTrainableParameters } ?? 0
        _ = try model.freeze(.until(layers[min(layers.count / 2, max(trainableFrom - 1, 0))].name))
        var rng = SplitMix64(seed: 9)
        let outputGradient = Tensor(shape: ref.shape, values: (0..<ref.count).map { _ in rng.uniform(-1, 1) })
        let baseline = try ComputeOptions.with(ComputeOptions()) { try Self.trainingStep(model, x, outputGradient) }
        #expect(!baseline.grads.isEmpty, "\(c.name): nothing trainable after the frozen half")
        var distinct = Set<[UInt32]>()
        for options in ComputeOptions.allCombinations {
            try ComputeOptions.with(options) {
                let y = try model.predict([x])[0]
                distinct.insert(y.scalars.map(\.bitPattern))
                let err = zip(y.scalars, ref.scalars).map { abs($0 - $1) }.max() ?? .infinity
                #expect(y.shape == ref.shape && err <= 1e-4 * scale, "\(c.name) with \(options): max abs error \(err)")
                let step = try Self.trainingStep(model, x, outputGradient)
                let stepErr = zip(step.y, baseline.y).map { abs($0 - $1) }.max() ?? .infinity
                #expect(stepErr <= 1e-4 * scale, "\(c.name) with \(options): training output differs by \(stepErr)")
                for (path, g) in baseline.grads {
                    let got = step.grads[path] ?? []
                    let gScale = max(1, g.map(abs).max() ?? 0)
                    let gErr = got.count == g.count ? zip(got, g).map { abs($0 - $1) }.max() ?? 0 : .infinity
                    #expect(gErr <= 1e-4 * gScale, "\(c.name) with \(options): gradient of \(path) differs by \(gErr)")
                }
            }
        }
        // The switches do change the path taken: a model with convolutions of every kind rounds differently.
        if c.name.hasSuffix("mini_xception") { #expect(distinct.count > 1, "\(c.name): every combination gave the same bits") }
    }
}
