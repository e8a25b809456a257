import Foundation
import Testing
import GraftNN
import GraftTensor
@testable import GraftTrain

/// Loss values against closed forms, and loss gradients against central differences (in Double).
struct LossTests {
    func softmax(_ z: [Float]) -> [Float] {
        let m = z.max() ?? 0
        let e = z.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    @Test func crossEntropyFromLogitsIsStableAndFused() {
        let z = Tensor(shape: [2, 3], values: [1000, 0, -1000, 1, 2, 3])
        let y = Tensor(shape: [2, 3], values: softmax([1000, 0, -1000]) + softmax([1, 2, 3]))
        let loss = Loss()
        let r = loss.compute(output: y, logits: z, finalActivation: .softmax, targets: loss.targets([1, 2], classes: 3),
                             sampleWeights: [1, 1])
        #expect(r.isPreActivation)
        #expect(r.value.isFinite)
        // Row 0: −log softmax(z)[1] = 1000; row 1: −log softmax([1,2,3])[2] = log(e^-2 + e^-1 + 1).
        let expected = (1000.0 + log(exp(-2.0) + exp(-1.0) + 1)) / 2
        #expect(abs(r.value - expected) < 1e-3)
        // Gradient w.r.t. logits: (p − t) / N.
        #expect(abs(r.gradient[0, 0] - 0.5) < 1e-6 && abs(r.gradient[0, 1] + 0.5) < 1e-6)
    }

    /// Numeric check of dL/d(input) for every loss path, through the activation where it is fused.
    @Test(arguments: [("cce-softmax", Loss.Kind.categoricalCrossentropy, ActivationKind.softmax),
                      ("cce-logits", .categoricalCrossentropy, .linear),
                      ("cce-probs", .categoricalCrossentropy, .sigmoid),
                      ("bce-sigmoid", .binaryCrossentropy, .sigmoid),
                      ("bce-logits", .binaryCrossentropy, .linear),
                      ("bce-probs", .binaryCrossentropy, .softmax)])
    func gradientMatchesCentralDifferences(_ label: String, _ kind: Loss.Kind, _ act: ActivationKind) {
        let loss = Loss(kind, labelSmoothing: 0.1, classWeights: [1, 2, 0.5, 1])
        let labels = [2, 0, 3]
        let targets = loss.targets(labels, classes: 4)
        let w = loss.sampleWeights(labels)
        var zv: [Float] = [0.3, -1.2, 0.8, 0.1, 1.5, 0.2, -0.4, 0.9, -0.7, 0.6, 0.25, -0.35]
        func value(_ z: [Float]) -> (Double, Loss.Result) {
            let zt = Tensor(shape: [3, 4], values: z)
            let y = zt.activated(act)
            let r = loss.compute(output: y, logits: act == .linear ? nil : zt, finalActivation: act, targets: targets, sampleWeights: w)
            return (r.value, r)
        }
        let (_, r) = value(zv)
        // The analytic gradient w.r.t. z: either directly (fused) or through the activation's backward.
        let zt = Tensor(shape: [3, 4], values: zv)
        let dz = r.isPreActivation || act == .linear ? r.gradient
            : Tensor.activationGradient(act, z: zt, y: zt.activated(act), dy: r.gradient)
        let eps: Float = 1e-3
        for i in 0..<zv.count {
            let orig = zv[i]
            zv[i] = orig + eps
            let lp = value(zv).0
            zv[i] = orig - eps
            let lm = value(zv).0
            zv[i] = orig
            let numeric = (lp - lm) / (2 * Double(eps))
            #expect(abs(Double(dz.scalars[i]) - numeric) <= 1e-3 + 1e-2 * abs(numeric), "\(label) [\(i)]: \(dz.scalars[i]) vs \(numeric)")
        }
    }

    @Test func labelSmoothingAndWeights() {
        let cce = Loss(labelSmoothing: 0.2)
        #expect(zip(cce.targets([1], classes: 4).scalars, [0.05, 0.85, 0.05, 0.05]).allSatisfy { abs($0 - $1) < 1e-6 })
        let bce = Loss(.binaryCrossentropy, labelSmoothing: 0.2)
        #expect(zip(bce.targets([0], classes: 2).scalars, [0.9, 0.1]).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(Loss(classWeights: [1, 3]).sampleWeights([1, 0, 1]) == [3, 1, 3])
    }

    @Test func metrics() {
        var m = ClassificationMetrics(classes: 3, topK: 2)
        m.add(scores: [0.7, 0.2, 0.1, 0.1, 0.3, 0.6, 0.2, 0.5, 0.3, 0.6, 0.3, 0.1], labels: [0, 1, 1, 2])
        #expect(m.confusion == [[1, 0, 0], [0, 1, 1], [1, 0, 0]])
        #expect(m.accuracy == 0.5)
        #expect(m.topKAccuracy == 0.75)   // sample 3 (label 2) has score 0.1, the lowest: outside the top 2
        #expect(m.precision[0] == 0.5 && m.recall[1] == 0.5)
        #expect(m.precision[2].isNaN == false && m.precision[2] == 0)
    }
}
