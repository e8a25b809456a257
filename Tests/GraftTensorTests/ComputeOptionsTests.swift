import Foundation
import GraftCore
@testable import GraftTensor
import Testing

struct ComputeOptionsTests {
    /// The options set around a call reach the threads `Parallel.forEach` runs it on, and only that call.
    @Test func optionsReachParallelWorkers() {
        let off = ComputeOptions(oneDNN: false, fusion: false, simd: false)
        final class Seen: @unchecked Sendable {
            let lock = NSLock()
            var options: [ComputeOptions] = []
        }
        let seen = Seen()
        ComputeOptions.with(off) {
            #expect(!DNNL.enabled)
            #expect(FastMath.simdLevel == 0)
            Parallel.forEach(1 << 20, grain: 1) { _ in
                seen.lock.lock()
                seen.options.append(ComputeOptions.current)
                seen.lock.unlock()
            }
        }
        #expect(seen.options.count == Parallel.workers)
        #expect(seen.options.allSatisfy { $0 == off })
        #expect(ComputeOptions.current == RuntimeOptions.current.compute)
        #expect(FastMath.simdLevel == (RuntimeOptions.current.compute.simd ? -1 : 0))
    }
}
