import GraftCore
@testable import GraftTensor
import Testing

/// The tensor-level convolutions the layers call: the same results on every compute path as the plain reference,
/// and backward passes that add into the gradients given (never overwrite them) and leave unwanted ones alone.
struct ConvolutionTensorTests {
    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
    }

    @Test(arguments: [1, 2])
    func forwardMatchesTheReferenceOnEveryPath(groups: Int) {
        let x = Self.random([2, 7, 6, 4], seed: 1), k = Self.random([3, 2, 4 / groups, 6], seed: 2), b = Self.random([6], seed: 3)
        let g = ConvGeometry(input: x.shape, outChannels: 6, groups: groups, kernel: [3, 2], strides: [2, 1], dilation: [1, 2],
                             padding: .same)
        let reference = ConvolutionKernels.referenceConv2d(g, input: x.scalars, kernel: k.scalars, bias: b.scalars)
        for options in [ComputeOptions(), ComputeOptions(oneDNN: false)] {
            let y = ComputeOptions.with(options) { x.convolved(g, kernel: k, bias: b) }
            #expect(y.shape == g.outputShape)
            let err = zip(y.scalars, reference).map { abs($0 - $1) }.max() ?? .infinity
            #expect(err < 1e-5, "\(options): \(err)")
        }
    }

    @Test func backwardAddsIntoTheGradientsGiven() {
        let x = Self.random([2, 5, 5, 3], seed: 4), k = Self.random([3, 3, 3, 2], seed: 5)
        let g = ConvGeometry(input: x.shape, outChannels: 2, kernel: [3, 3], padding: .valid)
        let dz = Self.random(g.outputShape, seed: 6)
        var fresh: Tensor? = Tensor(shape: k.shape, repeating: 0), none: Tensor? = nil
        let dx = Tensor.convolutionBackward(g, input: x, kernel: k, gradOutput: dz, needInput: true,
                                            kernelGradient: &fresh, biasGradient: &none)
        #expect(dx?.shape == x.shape && none == nil)
        var twice: Tensor? = fresh, bias: Tensor? = Tensor(shape: [2], repeating: 1)
        let noInput = Tensor.convolutionBackward(g, input: x, kernel: k, gradOutput: dz, needInput: false,
                                                 kernelGradient: &twice, biasGradient: &bias)
        #expect(noInput == nil)
        #expect(zip(twice!.scalars, fresh!.scalars).allSatisfy { abs($0 - 2 * $1) <= 1e-5 * max(1, abs($1)) })
        // dL/dbias = Σ dz per channel, added to the 1 it held.
        for c in 0..<2 {
            let sum = stride(from: c, to: dz.count, by: 2).map { dz.scalars[$0] }.reduce(0, +)
            #expect(abs(bias!.scalars[c] - (1 + sum)) < 1e-4)
        }
        // Depthwise and unshared convolutions too.
        let gd = ConvGeometry.depthwise(input: x.shape, multiplier: 2, kernel: [3, 3], strides: [1, 1], dilation: [1, 1], padding: .same)
        let kd = Self.random([3, 3, 3, 2], seed: 7), dzd = Self.random(gd.outputShape, seed: 8)
        var gk: Tensor? = Tensor(shape: kd.shape, repeating: 0), gb: Tensor? = nil
        _ = Tensor.depthwiseBackward(gd, input: x, kernel: kd, gradOutput: dzd, needInput: false, kernelGradient: &gk, biasGradient: &gb)
        var again = gk
        _ = Tensor.depthwiseBackward(gd, input: x, kernel: kd, gradOutput: dzd, needInput: false, kernelGradient: &again, biasGradient: &gb)
        #expect(gb == nil && zip(again!.scalars, gk!.scalars).allSatisfy { abs($0 - 2 * $1) <= 1e-5 * max(1, abs($1)) })
        #expect(gk!.scalars.contains { $0 != 0 })
    }
}
