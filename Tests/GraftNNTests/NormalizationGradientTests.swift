import Foundation
import Testing
import GraftTensor
@testable import GraftNN

/// Finite-difference checks for the per-sample normalisations and the keras.applications layers (LayerScale,
/// CustomScaleLayer, StochasticDepth), and their forward passes against direct formulas.
struct NormalizationGradientTests {
    typealias G = GradientCheckTests

    static func randomize(_ m: Model, seed: UInt64) {
        for (path, v) in m.namedVariables where !v.isBuffer {
            v.value = Tensor(shape: v.shape, values: G.values(v.value.count, seed: seed &+ UInt64(path.count), lo: 0.5, hi: 1.5))
        }
    }

    @Test(arguments: [LayerNormalization.Mode.standard, .rmsScaling, .rms])
    func layerNormalizationModes(_ mode: LayerNormalization.Mode) throws {
        for axes in [[-1], [1, 2, 3], [2, 3]] {
            let ln = LayerNormalization(name: "ln", axis: axes, epsilon: 1e-3, mode: mode)
            let (m, x) = try G.single(ln, input: [3, 2, 4])
            Self.randomize(m, seed: 5)
            try G.check(m, [x])
        }
    }

    @Test func layerNormalizationMatchesItsFormula() throws {
        let ln = LayerNormalization(name: "ln", epsilon: 1e-3)
        let m = try GraphBuilder.sequential(name: "ln", inputShape: [2, 3], layers: [ln])
        ln.gamma?.value = Tensor(shape: [3], values: [1, 2, 0.5])
        ln.beta?.value = Tensor(shape: [3], values: [0, 1, -1])
        let x = Tensor(shape: [1, 2, 3], values: [1, 2, 6, -1, 0, 1])
        let y = try m.predict([x])[0].scalars
        // Row [1, 2, 6]: mean 3, variance 14/3.
        let r = 1 / (14.0 / 3 + 1e-3).squareRoot()
        let expected = [(1 - 3) * r * 1, (2 - 3) * r * 2 + 1, (6 - 3) * r * 0.5 - 1].map { Float($0) }
        for (a, b) in zip(y.prefix(3), expected) { #expect(abs(a - b) < 1e-6) }
        #expect(ln.parameterCount == 6)
        // A non-trailing axis is refused with the layer's name.
        #expect(throws: LayerError.self) {
            try GraphBuilder.sequential(name: "bad", inputShape: [2, 3], layers: [LayerNormalization(name: "mid", axis: [1])])
        }
    }

    @Test func groupNormalization() throws {
        let gn = GroupNormalization(name: "gn", groups: 2, epsilon: 1e-3)
        let (m, x) = try G.single(gn, input: [3, 2, 4])
        Self.randomize(m, seed: 6)
        try G.check(m, [x])
        // With groups = channels it is instance normalisation: every channel of every sample has mean 0.
        let inst = GroupNormalization(name: "inst", groups: 4, center: false, scale: false)
        let mi = try GraphBuilder.sequential(name: "inst", inputShape: [3, 2, 4], layers: [inst])
        let y = try mi.predict([x])[0]
        for n in 0..<2 {
            for c in 0..<4 {
                var sum: Float = 0
                for i in 0..<6 { sum += y.scalars[n * 24 + i * 4 + c] }
                #expect(abs(sum) < 1e-5)
            }
        }
        #expect(throws: LayerError.self) {
            try GraphBuilder.sequential(name: "bad", inputShape: [2, 2, 6], layers: [GroupNormalization(name: "g4", groups: 4)])
        }
    }

    @Test func unitNormalization() throws {
        let (m, x) = try G.single(UnitNormalization(name: "unit"), input: [3, 4])
        try G.check(m, [x])
        let y = try m.predict([x])[0]
        for row in 0..<6 {
            let v = y.scalars[(row * 4)..<(row * 4 + 4)]
            #expect(abs(v.map { $0 * $0 }.reduce(0, +) - 1) < 1e-5)
        }
        #expect(try m.predict([Tensor(shape: [1, 3, 4], repeating: 0)])[0].scalars.allSatisfy { $0 == 0 })
    }

    @Test func layerScaleAndScaledResidual() throws {
        let fresh = LayerScale(name: "fresh", initialValue: 0.5)
        _ = try GraphBuilder.sequential(name: "fresh", inputShape: [2, 4], layers: [fresh])
        #expect(fresh.gamma.value.scalars == [0.5, 0.5, 0.5, 0.5])
        let (m, x) = try G.single(LayerScale(name: "ls", initialValue: 0.5), input: [2, 3, 4])
        try G.check(m, [x])
        var b = GraphBuilder(name: "scaled_residual")
        let a = try b.input(InputLayer(name: "a", shape: [2, 3]))
        let r = try b.input(InputLayer(name: "r", shape: [2, 3]))
        let out = try b.add(ScaledResidual(name: "s", scale: 0.17), inputs: [a, r])
        let ms = try b.finish(outputs: [out])
        let xa = Tensor(shape: [2, 2, 3], values: G.values(12, seed: 1)), xr = Tensor(shape: [2, 2, 3], values: G.values(12, seed: 2))
        let y = try ms.predict([xa, xr])[0]
        for i in 0..<12 { #expect(abs(y.scalars[i] - (xa.scalars[i] + 0.17 * xr.scalars[i])) < 1e-7) }
        try G.check(ms, [xa, xr])
    }

    /// StochasticDepth keeps or drops whole samples in training (scaled by 1/keep), and is the identity otherwise.
    @Test func stochasticDepthDropsWholeSamples() throws {
        let layer = InferenceIdentity(name: "sd", kerasClassName: "StochasticDepth", rate: 0.5)
        let m = try GraphBuilder.sequential(name: "sd", inputShape: [2, 3], layers: [layer])
        let x = Tensor(shape: [16, 2, 3], repeating: 1)
        #expect(try m.predict([x])[0] == x)
        var ctx = TrainingContext(seed: 9)
        let y = try m.forwardTraining([x], context: &ctx).outputs[0]
        var kept = 0
        for n in 0..<16 {
            let sample = Set(y.scalars[(n * 6)..<(n * 6 + 6)])
            #expect(sample == [0] || sample == [2])
            if sample == [2] { kept += 1 }
        }
        #expect(kept > 0 && kept < 16)
        try G.check(m, [Tensor(shape: [4, 2, 3], values: G.values(24, seed: 3))])
    }
}

/// Keras's AlphaDropout keeps the mean and variance of SELU-normalised inputs while dropping units.
struct AlphaDropoutTests {
    @Test func keepsMeanAndVariance() throws {
        let layer = InferenceIdentity(name: "ad", kerasClassName: "AlphaDropout", rate: 0.3)
        let m = try GraphBuilder.sequential(name: "ad", inputShape: [1000], layers: [layer])
        var rng = SplitMix64(seed: 5)
        let x = Tensor(shape: [20, 1000], values: (0..<20_000).map { _ in rng.normal() })
        #expect(try m.predict([x])[0] == x)
        var ctx = TrainingContext(seed: 3)
        let y = try m.forwardTraining([x], context: &ctx).outputs[0].scalars
        let mean = y.reduce(0, +) / Float(y.count)
        let variance = y.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(y.count)
        #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05)
        #expect(y.filter { $0 != 0 }.count > 19_000)
    }
}
