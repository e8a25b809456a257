import Foundation
import Testing
@testable import GraftTensor

/// oneDNN primitives are built on one thread and run on others (a Swift Testing worker, a user's server thread).
struct DNNLThreadTests {
    /// Runs `body` on a new thread, which ends afterwards, and waits for it.
    static func onNewThread(_ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        Thread { body(); done.signal() }.start()
        done.wait()
    }

    /// The regression test for the crash in issue 17: a primitive created on a thread that has since ended, run on
    /// a new one. This geometry's backward-weights convolution is oneDNN's gemm:jit, whose library-managed
    /// scratchpad was the creating thread's (a null dereference in a libgomp worker). Results must equal the
    /// im2col reference on every thread.
    @Test func primitivesRunOnThreadsOtherThanTheirCreator() throws {
        let g = ConvGeometry(batch: 2, inChannels: 2, outChannels: 3,
                             h: AxisGeometry(input: 17, kernel: 3, stride: 2, dilation: 3, padding: .same),
                             w: AxisGeometry(input: 17, kernel: 3, stride: 2, dilation: 3, padding: .same))
        let x = KernelTests.random(2 * 17 * 17 * 2, seed: 1), k = KernelTests.random(9 * 2 * 3, seed: 2)
        let dy = KernelTests.random(g.pixels * 3, seed: 3)
        @Sendable func gradients() -> (dx: [Float], dk: [Float], y: [Float], ran: Bool) {
            var dk = [Float](repeating: 0, count: k.count), dx = [Float](repeating: 0, count: x.count)
            var y = [Float](repeating: 0, count: g.pixels * 3)
            var ran = true
            x.withUnsafeBufferPointer { xp in
                k.withUnsafeBufferPointer { kp in
                    dy.withUnsafeBufferPointer { gp in
                        dk.withUnsafeMutableBufferPointer { dkp in
                            dx.withUnsafeMutableBufferPointer { dxp in
                                y.withUnsafeMutableBufferPointer { yp in
                                    ran = DNNL.conv2dBackward(g, input: xp.baseAddress!, kernel: kp.baseAddress!, gradOutput: gp.baseAddress!,
                                                                  gradInput: dxp.baseAddress!, gradKernel: dkp.baseAddress!)
                                            && DNNL.conv2dForward(g, input: xp.baseAddress!, kernel: kp.baseAddress!, bias: nil, output: yp.baseAddress!)
                                }
                            }
                        }
                    }
                }
            }
            return (dx, dk, y, ran)
        }
        try #require(DNNL.enabled, "oneDNN is not available")
        let reference = Self.referenceBackward(g, x: x, k: k, dy: dy)
        Self.onNewThread {
            _ = DNNL.plan(g, bias: false, post: .none)
            _ = DNNL.backwardPlan(g)
        }
        for _ in 0..<3 {
            let box = ResultBox()
            Self.onNewThread { box.value = gradients() }
            let got = try #require(box.value)
            let ran = got.ran
            #expect(ran, "oneDNN refused a primitive it had built")
            #expect(KernelTests.maxError(got.dk, reference.dk) < 1e-4)
            #expect(KernelTests.maxError(got.dx, reference.dx) < 1e-4)
            #expect(KernelTests.maxError(got.y, reference.y) < 1e-4)
        }
    }

    /// Plain-loop dX, dW (Double sums) and the forward output of an ungrouped convolution.
    static func referenceBackward(_ g: ConvGeometry, x: [Float], k: [Float], dy: [Float]) -> (dx: [Float], dk: [Float], y: [Float]) {
        var dx = [Double](repeating: 0, count: x.count), dk = [Double](repeating: 0, count: k.count)
        let C = g.inChannels, O = g.outChannels
        for n in 0..<g.batch {
            for oh in 0..<g.h.output {
                for ow in 0..<g.w.output {
                    for kh in 0..<g.h.kernel {
                        let ih = oh * g.h.stride - g.h.padBefore + kh * g.h.dilation
                        guard ih >= 0 && ih < g.h.input else { continue }
                        for kw in 0..<g.w.kernel {
                            let iw = ow * g.w.stride - g.w.padBefore + kw * g.w.dilation
                            guard iw >= 0 && iw < g.w.input else { continue }
                            for c in 0..<C {
                                let xi = ((n * g.h.input + ih) * g.w.input + iw) * C + c
                                for o in 0..<O {
                                    let ki = ((kh * g.w.kernel + kw) * C + c) * O + o
                                    let d = Double(dy[((n * g.h.output + oh) * g.w.output + ow) * O + o])
                                    dk[ki] += Double(x[xi]) * d
                                    dx[xi] += Double(k[ki]) * d
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx.map { Float($0) }, dk.map { Float($0) }, ConvolutionKernels.referenceConv2d(g, input: x, kernel: k, bias: nil))
    }

    final class ResultBox: @unchecked Sendable {
        var value: (dx: [Float], dk: [Float], y: [Float], ran: Bool)?
    }
}
