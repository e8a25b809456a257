import Foundation
import Testing
@testable import GraftTensor

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

    /// The command line's GRAFT_* variables become settings through `RuntimeOptions(environment:)`; the library
    /// itself reads none. Out-of-range values are ignored, not trapped on.
    @Test func settingsFromTheCommandLinesVariables() {
        let r = RuntimeOptions(environment: ["GRAFT_NUM_THREADS": "3", "GRAFT_BUFFER_POOL_MB": "16", "GRAFT_DNNL": "0", "GRAFT_SIMD": "0"])
        #expect(r.threads == 3 && r.workers == 3 && r.bufferPoolBytes == 16 << 20 && r.bufferPoolLimit == 16 << 20)
        #expect(r.compute == ComputeOptions(oneDNN: false, simd: false))
        let hostile = RuntimeOptions(environment: ["GRAFT_NUM_THREADS": "9223372036854775807", "GRAFT_BUFFER_POOL_MB": "-1",
                                                   "GRAFT_DNNL": "nan"])
        #expect(hostile.threads == nil && hostile.bufferPoolBytes == nil && hostile.compute.oneDNN)
        #expect(RuntimeOptions(environment: [:]) == RuntimeOptions())
    }
}
