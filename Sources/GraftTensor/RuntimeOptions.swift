import Foundation
import Synchronization

/// The process-wide settings a program using Graft chooses in code: how many threads Graft's kernels use, how many
/// bytes of freed tensor buffers it keeps for reuse, and the default compute paths (`ComputeOptions`; a call can
/// still choose its own with `ComputeOptions.with`). No library code reads the environment: the `graft` command line
/// builds these once from its `GRAFT_*` variables (`init(environment:)`) and applies them, and so can any program.
///
/// ```swift
/// var runtime = RuntimeOptions.current
/// runtime.threads = 4
/// runtime.compute.oneDNN = false
/// RuntimeOptions.apply(runtime)
/// ```
public struct RuntimeOptions: Sendable, Equatable {
    /// Worker threads for Graft's own parallel loops; nil: the machine's active cores.
    public var threads: Int?
    /// The most bytes of freed tensor buffers kept for reuse; nil: a quarter of physical memory, at most 8 GiB; 0
    /// keeps none.
    public var bufferPoolBytes: Int?
    /// The compute paths work takes unless it chooses others (`ComputeOptions.with`).
    public var compute = ComputeOptions()

    public init(threads: Int? = nil, bufferPoolBytes: Int? = nil, compute: ComputeOptions = ComputeOptions()) {
        (self.threads, self.bufferPoolBytes, self.compute) = (threads, bufferPoolBytes, compute)
    }

    /// The settings `GRAFT_NUM_THREADS`, `GRAFT_BUFFER_POOL_MB` and `GRAFT_DNNL`, `GRAFT_DNNL_POINTWISE`,
    /// `GRAFT_DNNL_DEPTHWISE`, `GRAFT_FUSE`, `GRAFT_SIMD` (`0` turns a path off) give, from the variables passed in.
    /// Values out of range (not a whole number, zero threads, more than 4096 threads or 1 TiB) are ignored.
    public init(environment: [String: String]) {
        func on(_ name: String) -> Bool { environment[name] != "0" }
        threads = environment["GRAFT_NUM_THREADS"].flatMap { Int($0) }.flatMap { (1...4096).contains($0) ? $0 : nil }
        bufferPoolBytes = environment["GRAFT_BUFFER_POOL_MB"].flatMap { Int($0) }.flatMap { (0...(1 << 20)).contains($0) ? $0 << 20 : nil }
        compute = ComputeOptions(oneDNN: on("GRAFT_DNNL"), oneDNNPointwise: on("GRAFT_DNNL_POINTWISE"),
                                 oneDNNDepthwise: on("GRAFT_DNNL_DEPTHWISE"), fusion: on("GRAFT_FUSE"), simd: on("GRAFT_SIMD"))
    }

    private static let state = Mutex(RuntimeOptions())

    /// The settings in force (the defaults until `apply`); safe to read from any thread.
    public static var current: RuntimeOptions { state.withLock { $0 } }

    /// Makes `options` the process's settings, for work that starts after this returns. Safe from any thread.
    public static func apply(_ options: RuntimeOptions) {
        state.withLock { $0 = options }
    }

    /// The worker count `threads` gives on this machine.
    public var workers: Int { threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// The buffer-pool limit `bufferPoolBytes` gives on this machine.
    public var bufferPoolLimit: Int {
        bufferPoolBytes ?? Int(min(UInt64(8) << 30, ProcessInfo.processInfo.physicalMemory / 4))
    }
}
