import Foundation
import Synchronization

/// The settings a program using Graft chooses in code, in one value: how many threads Graft's kernels (and bulk
/// HDF5 reads) use, how many bytes of freed tensor buffers it keeps for reuse, the compute paths (`ComputeOptions`:
/// oneDNN, fusion, SIMD) and how HDF5 files are opened (`HDF5OpenPolicy`: the integrity check in a child). No library
/// code reads the environment: the `graft` command line builds this value once from its `GRAFT_*` variables
/// (`init(environment:)`) and applies it, and so can any program.
///
/// Process-wide, for all work that starts afterwards:
///
/// ```swift
/// var runtime = RuntimeOptions.current
/// runtime.threads = 4
/// runtime.compute.oneDNN = false
/// RuntimeOptions.apply(runtime)
/// ```
///
/// or for one piece of work only, on any thread (task-local, like `ComputeOptions.with`):
///
/// ```swift
/// let y = try RuntimeOptions.with(RuntimeOptions(threads: 1)) { try model.predict([x]) }
/// ```
public struct RuntimeOptions: Sendable, Equatable {
    /// Worker threads for Graft's own parallel loops; nil: the machine's active cores.
    public var threads: Int?
    /// The most bytes of freed tensor buffers kept for reuse; nil: a quarter of physical memory, at most 8 GiB; 0
    /// keeps none. The pool is one per process, so only the process's setting (`apply`) counts, not one chosen by
    /// `with`.
    public var bufferPoolBytes: Int?
    /// The compute paths work takes unless it chooses others (`ComputeOptions.with`).
    public var compute = ComputeOptions()
    /// How `HDF5File.open` guards against damaged files when not given a policy: checked in a child by default.
    public var hdf5 = HDF5OpenPolicy.standard

    public init(threads: Int? = nil, bufferPoolBytes: Int? = nil, compute: ComputeOptions = ComputeOptions(),
                hdf5: HDF5OpenPolicy = .standard) {
        (self.threads, self.bufferPoolBytes, self.compute, self.hdf5) = (threads, bufferPoolBytes, compute, hdf5)
    }

    /// The settings `GRAFT_NUM_THREADS`, `GRAFT_BUFFER_POOL_MB` and `GRAFT_DNNL`, `GRAFT_DNNL_POINTWISE`,
    /// `GRAFT_DNNL_DEPTHWISE`, `GRAFT_FUSE`, `GRAFT_SIMD` (`0` turns a path off) give, from the variables passed in.
    /// `GRAFT_HDF5_CHECK_TIMEOUT` (seconds, at most a day) and `GRAFT_HDF5_CHECK_FORK=0` set the HDF5 open
    /// policy's limit and forking; which helper to spawn is the program's to choose (`hdf5.helper`).
    /// Values out of range (not a whole number, zero threads, more than 4096 threads or 1 TiB, a time limit that is
    /// not a positive finite number) are ignored.
    public init(environment: [String: String]) {
        func on(_ name: String) -> Bool { environment[name] != "0" }
        threads = environment["GRAFT_NUM_THREADS"].flatMap { Int($0) }.flatMap { (1...4096).contains($0) ? $0 : nil }
        bufferPoolBytes = environment["GRAFT_BUFFER_POOL_MB"].flatMap { Int($0) }.flatMap { (0...(1 << 20)).contains($0) ? $0 << 20 : nil }
        compute = ComputeOptions(oneDNN: on("GRAFT_DNNL"), oneDNNPointwise: on("GRAFT_DNNL_POINTWISE"),
                                 oneDNNDepthwise: on("GRAFT_DNNL_DEPTHWISE"), fusion: on("GRAFT_FUSE"), simd: on("GRAFT_SIMD"))
        if let t = environment["GRAFT_HDF5_CHECK_TIMEOUT"].flatMap(Double.init), t.isFinite, t > 0 { hdf5.timeout = min(t, 86_400) }
        hdf5.fork = on("GRAFT_HDF5_CHECK_FORK")
    }

    private static let state = Mutex(RuntimeOptions())

    /// Settings chosen around a piece of work (`with`), task-local.
    @TaskLocal static var chosen: RuntimeOptions?

    /// The settings in force for the current task or thread: those chosen around this work (`with`), else the
    /// process's (the defaults until `apply`). Safe to read from any thread.
    public static var current: RuntimeOptions { chosen ?? process }

    /// The process's settings, whatever a caller chose around its own work.
    public static var process: RuntimeOptions { state.withLock { $0 } }

    /// Makes `options` the process's settings, for work that starts after this returns. Safe from any thread.
    public static func apply(_ options: RuntimeOptions) {
        state.withLock { $0 = options }
    }

    /// Runs `body` (and the work it hands to `Parallel.forEach`) with `options` instead of the process's settings;
    /// other work running at the same time keeps its own.
    @discardableResult
    public static func with<R>(_ options: RuntimeOptions, _ body: () throws -> R) rethrows -> R {
        try $chosen.withValue(options, operation: body)
    }

    /// `with` for asynchronous work: the settings hold for the child tasks it starts too.
    @discardableResult
    public static func with<R>(_ options: RuntimeOptions, _ body: () async throws -> R) async rethrows -> R {
        try await $chosen.withValue(options, operation: body)
    }

    /// The worker count `threads` gives on this machine.
    public var workers: Int { threads ?? Self.processors }

    /// The processors this process may run on, read once: Foundation reads the cgroup files again on every
    /// `activeProcessorCount`, which cost a quarter of an LSTM training step that asks once per time step.
    static let processors = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// The buffer-pool limit `bufferPoolBytes` gives on this machine.
    public var bufferPoolLimit: Int {
        bufferPoolBytes ?? Int(min(UInt64(8) << 30, ProcessInfo.processInfo.physicalMemory / 4))
    }
}
