import CBLAS
import Foundation
import GraftCore

/// Splits work over the machine's cores. One runtime: GEMM runs in OpenBLAS's own threads, everything
/// else here; the two never run at the same time, so the cores are not oversubscribed.
public enum Parallel {
    /// Worker count: `RuntimeOptions.current.threads`, else the number of active cores.
    public static var workers: Int { RuntimeOptions.current.workers }

    /// Calls `body` on disjoint sub-ranges covering `0..<count`, in parallel when the work is large enough.
    /// `grain` is the smallest range worth a thread of its own.
    @inlinable
    public static func forEach(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(workers, max(1, count / max(grain, 1)))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        // The workers run with the caller's settings (task-local values do not cross to Dispatch's threads).
        let options = RuntimeOptions.current
        withoutActuallyEscaping(body) { escapable in
            // The ranges are disjoint, so callers' captured buffers are written without overlap.
            nonisolated(unsafe) let work = escapable
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = count * c / chunks, hi = count * (c + 1) / chunks
                guard lo < hi else { return }
                if RuntimeOptions.current == options { work(lo..<hi) } else {
                    RuntimeOptions.with(options) { work(lo..<hi) }
                }
            }
        }
    }

    /// OpenBLAS runs single-threaded: Graft's workers split GEMMs themselves (see `sgemm`).
    public static let configureBLAS: Void = {
        openblas_set_num_threads(1)
    }()
}
