import CDNNL
import CGraftLibraries
import Foundation
import GraftCore

/// Forward convolution through oneDNN (Debian's libdnnl), on Graft's own NHWC activations and HWIO kernels.
/// oneDNN picks its fastest kernel for the machine (JIT AVX2/AVX-512 direct or implicit-GEMM convolution);
/// kernels are reordered into its preferred layout on every call (weights change while training; the reorder
/// costs far less than the convolution). One primitive is built per geometry and kept. Anything oneDNN cannot
/// take (a failed setup) falls back to im2col + GEMM; `ComputeOptions` turns oneDNN off, or keeps 1×1 convolutions
/// on OpenBLAS. Backward passes of ungrouped convolutions use oneDNN too.
enum DNNL {
    /// True when oneDNN is there and `ComputeOptions.current` lets convolutions use it.
    static var enabled: Bool { ComputeOptions.current.oneDNN && engine != nil }

    /// The CPU engine, once oneDNN is loaded (at this first use; nil without the library: the im2col path).
    nonisolated(unsafe) static let engine: dnnl_engine_t? = {
        guard graft_library_available(0) == 1 else { return nil }
        var e: dnnl_engine_t?
        return dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success ? e : nil
    }()

    nonisolated(unsafe) static let stream: dnnl_stream_t? = {
        guard let engine else { return nil }
        var s: dnnl_stream_t?
        return dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue) == dnnl_success ? s : nil
    }()

    struct Key: Hashable {
        let sizes: [Int]
        let bias: Bool
        let post: PostOp

        init(_ g: ConvGeometry, bias: Bool, post: PostOp = .none) {
            sizes = DNNL.sizes(g)
            self.bias = bias
            self.post = post
        }

        /// An LSTM primitive's reordered input (part 0) or recurrent (part 1) kernel.
        init(lstm sizes: [Int], part: Int) {
            self.sizes = [-1, part] + sizes
            bias = false
            post = .none
        }
    }

    /// An activation oneDNN applies to a forward convolution's output as it writes it.
    public enum PostOp: Hashable, Sendable {
        case none
        case relu
        /// min(max(x, 0), upper): ReLU6 and Keras `ReLU(max_value=…)`.
        case clip(upper: Float)

        /// The post-op computing `activation` exactly, or nil when there is none.
        public static func exact(_ activation: ActivationKind) -> PostOp? {
            switch activation {
            case .relu: return .relu
            case .relu6: return .clip(upper: 6)
            case .reluGeneral(let maxValue, let slope, let threshold) where slope == 0 && threshold == 0:
                return maxValue.map { .clip(upper: $0) } ?? .relu
            default: return nil
            }
        }

        var algorithm: (kind: Int32, alpha: Float, beta: Float) {
            switch self {
            case .none: return (0, 0, 0)
            case .relu: return (Int32(dnnl_eltwise_relu.rawValue), 0, 0)
            case .clip(let upper): return (Int32(dnnl_eltwise_clip.rawValue), 0, upper)
            }
        }
    }

    /// The geometry as the C shim takes it (batch, input H/W/C, output channels, kernel, output H/W, strides,
    /// dilations, paddings, groups).
    static func sizes(_ g: ConvGeometry) -> [Int] {
        [g.batch, g.h.input, g.w.input, g.inChannels, g.outChannels, g.h.kernel, g.w.kernel, g.h.output, g.w.output,
         g.h.stride, g.w.stride, g.h.dilation, g.w.dilation, g.h.padBefore, g.h.padAfter, g.w.padBefore, g.w.padAfter,
         g.groups]
    }

    /// Forward passes take grouped convolutions (depthwise included); backward ones only ungrouped.
    static func supported(_ g: ConvGeometry, grouped: Bool = false) -> Bool {
        (g.groups == 1 || (grouped && g.groups > 1)) && sizes(g).allSatisfy { $0 >= 0 && $0 < Int(Int32.max) }
    }

    /// A created primitive and the scratchpad each execution of it needs. Every primitive is created with a
    /// user-managed scratchpad (`graft_dnnl_user_scratchpad_attr`): oneDNN 2.x's library-managed one is, for its
    /// gemm-based convolutions, a buffer of the thread that created the primitive, looked up in the thread that runs
    /// it, so a primitive built on one thread and run on another crashed (issue 17). Primitives are then immutable
    /// and may run on any thread.
    final class Primitive: @unchecked Sendable {
        let handle: dnnl_primitive_t
        var scratchpad = dnnl_memory_desc_t()
        let scratchpadBytes: Int

        /// Creates the primitive of `pd`, or nil when oneDNN cannot.
        init?(_ pd: dnnl_primitive_desc_t) {
            var h: dnnl_primitive_t?
            guard dnnl_primitive_create(&h, pd) == dnnl_success, let h else { return nil }
            handle = h
            var md = dnnl_memory_desc_t()
            scratchpadBytes = graft_dnnl_scratchpad(h, &md)
            scratchpad = md
        }

        /// A reorder from one layout to another, or nil when oneDNN has none.
        convenience init?(reorderFrom from: inout dnnl_memory_desc_t, to: inout dnnl_memory_desc_t, engine: dnnl_engine_t) {
            var rpd: dnnl_primitive_desc_t?
            guard graft_dnnl_reorder_pd(&rpd, &from, &to, engine) == dnnl_success, let rpd else { return nil }
            defer { dnnl_primitive_desc_destroy(rpd) }
            self.init(rpd)
        }

        deinit { dnnl_primitive_destroy(handle) }
    }

    /// A built convolution: the primitive, its memory descriptors, and the weight reorder when oneDNN wants
    /// another layout than HWIO.
    final class Plan: @unchecked Sendable {
        var src = dnnl_memory_desc_t(), dst = dnnl_memory_desc_t(), userWeights = dnnl_memory_desc_t()
        var weights = dnnl_memory_desc_t(), bias = dnnl_memory_desc_t()
        var conv: Primitive?
        var reorder: Primitive?
        var weightBytes = 0
    }

    final class Cache: @unchecked Sendable {
        let lock = NSLock()
        var plans: [Key: Plan?] = [:]
    }
    static let cache = Cache()
    /// Serialises oneDNN executions: each call already spreads over every core (OpenMP), so two at once would only
    /// oversubscribe them. It also guards the shared scratchpad buffer and `PreparedWeights`. Plans are built
    /// outside it, under their caches' locks.
    static let execution = NSLock()
    /// 1×1 convolutions through oneDNN (`ComputeOptions.oneDNNPointwise`).
    static var pointwise: Bool { ComputeOptions.current.oneDNNPointwise }
    /// Depthwise convolutions as grouped oneDNN convolutions (`ComputeOptions.oneDNNDepthwise`), else Graft's loops.
    static var depthwise: Bool { ComputeOptions.current.oneDNNDepthwise }

    static func plan(_ g: ConvGeometry, bias: Bool, post: PostOp) -> Plan? {
        let key = Key(g, bias: bias, post: post)
        cache.lock.lock()
        defer { cache.lock.unlock() }
        if let p = cache.plans[key] { return p }
        let p = build(g, bias: bias, post: post)
        cache.plans[key] = p
        return p
    }

    static func build(_ g: ConvGeometry, bias hasBias: Bool, post: PostOp) -> Plan? {
        guard let engine, supported(g, grouped: true) else { return nil }
        let p = Plan()
        var pd: dnnl_primitive_desc_t?
        let op = post.algorithm
        let status = graft_dnnl_conv_pd(&pd, engine, Int32(g.batch), Int32(g.h.input), Int32(g.w.input), Int32(g.inChannels),
                                        Int32(g.outChannels), Int32(g.h.kernel), Int32(g.w.kernel), Int32(g.h.output), Int32(g.w.output),
                                        Int32(g.h.stride), Int32(g.w.stride), Int32(g.h.dilation), Int32(g.w.dilation),
                                        Int32(g.h.padBefore), Int32(g.h.padAfter), Int32(g.w.padBefore), Int32(g.w.padAfter),
                                        Int32(g.groups), hasBias ? 1 : 0, op.kind, op.alpha, op.beta,
                                        &p.src, &p.dst, &p.userWeights, &p.bias)
        guard status == dnnl_success, let pd else { return nil }
        defer { dnnl_primitive_desc_destroy(pd) }
        guard let chosen = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0) else { return nil }
        p.weights = chosen.pointee
        // Graft's tensors are dense NHWC: refuse a primitive that wants other activation layouts.
        guard let s = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), dnnl_memory_desc_equal(s, &p.src) != 0,
              let d = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), dnnl_memory_desc_equal(d, &p.dst) != 0 else { return nil }
        guard let conv = Primitive(pd) else { return nil }
        p.conv = conv
        if dnnl_memory_desc_equal(&p.weights, &p.userWeights) == 0 {
            guard let r = Primitive(reorderFrom: &p.userWeights, to: &p.weights, engine: engine) else { return nil }
            p.reorder = r
            p.weightBytes = dnnl_memory_desc_get_size(&p.weights)
        }
        return p
    }

    /// One execution's oneDNN objects: memories wrapping Graft's buffers and temporary buffers, released together.
    /// Used under `execution` only.
    final class Call {
        let engine: dnnl_engine_t, stream: dnnl_stream_t
        private var memories: [dnnl_memory_t] = []
        private var buffers: [UnsafeMutableRawPointer] = []

        init(engine: dnnl_engine_t, stream: dnnl_stream_t) {
            self.engine = engine
            self.stream = stream
        }

        deinit {
            for m in memories { dnnl_memory_destroy(m) }
            for b in buffers { b.deallocate() }
        }

        /// A memory object over `handle` (not owned) with layout `md`.
        func memory(_ md: inout dnnl_memory_desc_t, _ handle: UnsafeMutableRawPointer?) -> dnnl_memory_t? {
            var m: dnnl_memory_t?
            guard dnnl_memory_create(&m, &md, engine, handle) == dnnl_success, let m else { return nil }
            memories.append(m)
            return m
        }

        /// A 64-byte aligned buffer that lives until the call ends.
        func buffer(_ bytes: Int) -> UnsafeMutableRawPointer {
            let b = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
            buffers.append(b)
            return b
        }

        /// Runs `primitive` with `args` and the scratchpad it needs (the shared one, grown as needed).
        func run(_ primitive: Primitive, _ args: [(Int32, dnnl_memory_t)]) -> Bool {
            var a = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1) }
            if primitive.scratchpadBytes > 0 {
                guard let m = memory(&primitive.scratchpad, DNNL.scratchpad.pointer(primitive.scratchpadBytes)) else { return false }
                a.append(dnnl_exec_arg_t(arg: graft_DNNL_ARG_SCRATCHPAD(), memory: m))
            }
            return dnnl_primitive_execute(primitive.handle, stream, Int32(a.count), &a) == dnnl_success
        }

        /// Waits until everything run on the stream is done.
        func wait() -> Bool { dnnl_stream_wait(stream) == dnnl_success }
    }

    /// The scratchpad every execution uses (executions are serialised by `execution`), kept at the largest size
    /// asked for so far.
    final class Scratchpad: @unchecked Sendable {
        private var base: UnsafeMutableRawPointer?
        private var bytes = 0

        func pointer(_ needed: Int) -> UnsafeMutableRawPointer {
            if let base, needed <= bytes { return base }
            base?.deallocate()
            bytes = max(needed, bytes * 2)
            let b = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            base = b
            return b
        }
    }
    static let scratchpad = Scratchpad()

    /// Runs the convolution (grouped ones too) and the post-op; false when oneDNN cannot (the caller falls back).
    static func conv2dForward(_ g: ConvGeometry, input: UnsafePointer<Float>, kernel: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, post: PostOp = .none, prepared: PreparedWeights.Use? = nil,
                              output: UnsafeMutablePointer<Float>) -> Bool {
        guard enabled, let engine, let stream, let p = plan(g, bias: bias != nil, post: post), let conv = p.conv else { return false }
        execution.lock()
        defer { execution.unlock() }
        let call = Call(engine: engine, stream: stream)
        guard let src = call.memory(&p.src, UnsafeMutableRawPointer(mutating: input)),
              let dst = call.memory(&p.dst, UnsafeMutableRawPointer(output)),
              let userW = call.memory(&p.userWeights, UnsafeMutableRawPointer(mutating: kernel)) else { return false }
        var weights = userW
        if let reorder = p.reorder {
            let key = Key(g, bias: bias != nil, post: post)
            if let prepared, let buffer = prepared.cache.buffer(for: key, version: prepared.version) {
                // Weights unchanged since they were last put in this primitive's layout.
                guard let w = call.memory(&p.weights, buffer) else { return false }
                weights = w
            } else {
                // Reordered into a buffer of the prepared-weights cache (which keeps it) or of this call.
                let buffer = prepared == nil ? call.buffer(p.weightBytes)
                    : UnsafeMutableRawPointer.allocate(byteCount: max(p.weightBytes, 64), alignment: 64)
                guard let w = call.memory(&p.weights, buffer),
                      call.run(reorder, [(graft_DNNL_ARG_FROM(), userW), (graft_DNNL_ARG_TO(), w)]) else {
                    if prepared != nil { buffer.deallocate() }
                    return false
                }
                weights = w
                if let prepared { prepared.cache.store(buffer, for: key, version: prepared.version) }
            }
        }
        var args = [(graft_DNNL_ARG_SRC(), src), (graft_DNNL_ARG_WEIGHTS(), weights), (graft_DNNL_ARG_DST(), dst)]
        if let bias {
            guard let b = call.memory(&p.bias, UnsafeMutableRawPointer(mutating: bias)) else { return false }
            args.append((graft_DNNL_ARG_BIAS(), b))
        }
        return call.run(conv, args) && call.wait()
    }

    /// Backward primitives for one geometry: data (dX from dY and W) and weights (dW from X and dY), with the
    /// weight reorders between HWIO and the layouts they chose.
    final class BackwardPlan: @unchecked Sendable {
        var src = dnnl_memory_desc_t(), dst = dnnl_memory_desc_t(), userWeights = dnnl_memory_desc_t()
        var dataWeights = dnnl_memory_desc_t(), diffWeights = dnnl_memory_desc_t()
        var data: Primitive?, weights: Primitive?
        var toData: Primitive?, fromDiff: Primitive?
        var dataWeightBytes = 0, diffWeightBytes = 0
    }

    final class BackwardCache: @unchecked Sendable {
        let lock = NSLock()
        var plans: [Key: BackwardPlan?] = [:]
    }
    static let backwardCache = BackwardCache()

    static func backwardPlan(_ g: ConvGeometry) -> BackwardPlan? {
        let key = Key(g, bias: false)
        backwardCache.lock.lock()
        defer { backwardCache.lock.unlock() }
        if let p = backwardCache.plans[key] { return p }
        let p = buildBackward(g)
        backwardCache.plans[key] = p
        return p
    }

    static func buildBackward(_ g: ConvGeometry) -> BackwardPlan? {
        guard let engine, supported(g) else { return nil }
        let p = BackwardPlan()
        var dataPD: dnnl_primitive_desc_t?, weightsPD: dnnl_primitive_desc_t?
        let status = graft_dnnl_conv_bwd_pds(&dataPD, &weightsPD, engine, Int32(g.batch), Int32(g.h.input), Int32(g.w.input),
                                             Int32(g.inChannels), Int32(g.outChannels), Int32(g.h.kernel), Int32(g.w.kernel),
                                             Int32(g.h.output), Int32(g.w.output), Int32(g.h.stride), Int32(g.w.stride),
                                             Int32(g.h.dilation), Int32(g.w.dilation), Int32(g.h.padBefore), Int32(g.h.padAfter),
                                             Int32(g.w.padBefore), Int32(g.w.padAfter), &p.src, &p.dst, &p.userWeights)
        defer {
            if let dataPD { dnnl_primitive_desc_destroy(dataPD) }
            if let weightsPD { dnnl_primitive_desc_destroy(weightsPD) }
        }
        guard status == dnnl_success, let dataPD, let weightsPD else { return nil }
        // Activations and their gradients must stay dense NHWC.
        guard let ds = dnnl_primitive_desc_query_md(dataPD, dnnl_query_diff_src_md, 0), dnnl_memory_desc_equal(ds, &p.src) != 0,
              let dd = dnnl_primitive_desc_query_md(dataPD, dnnl_query_diff_dst_md, 0), dnnl_memory_desc_equal(dd, &p.dst) != 0,
              let ws = dnnl_primitive_desc_query_md(weightsPD, dnnl_query_src_md, 0), dnnl_memory_desc_equal(ws, &p.src) != 0,
              let wd = dnnl_primitive_desc_query_md(weightsPD, dnnl_query_diff_dst_md, 0), dnnl_memory_desc_equal(wd, &p.dst) != 0,
              let w1 = dnnl_primitive_desc_query_md(dataPD, dnnl_query_weights_md, 0),
              let w2 = dnnl_primitive_desc_query_md(weightsPD, dnnl_query_diff_weights_md, 0) else { return nil }
        p.dataWeights = w1.pointee
        p.diffWeights = w2.pointee
        guard let data = Primitive(dataPD), let weights = Primitive(weightsPD) else { return nil }
        p.data = data
        p.weights = weights
        if dnnl_memory_desc_equal(&p.dataWeights, &p.userWeights) == 0 {
            guard let r = Primitive(reorderFrom: &p.userWeights, to: &p.dataWeights, engine: engine) else { return nil }
            p.toData = r
            p.dataWeightBytes = dnnl_memory_desc_get_size(&p.dataWeights)
        }
        p.diffWeightBytes = dnnl_memory_desc_get_size(&p.diffWeights)
        if dnnl_memory_desc_equal(&p.diffWeights, &p.userWeights) == 0 {
            guard let r = Primitive(reorderFrom: &p.diffWeights, to: &p.userWeights, engine: engine) else { return nil }
            p.fromDiff = r
        }
        return p
    }

    /// dX (overwritten) and dW (added into) of a convolution without groups; false when oneDNN cannot.
    static func conv2dBackward(_ g: ConvGeometry, input: UnsafePointer<Float>, kernel: UnsafePointer<Float>,
                               gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                               gradKernel: UnsafeMutablePointer<Float>?) -> Bool {
        guard enabled, let engine, let stream, let p = backwardPlan(g), let data = p.data, let weightsPrim = p.weights else { return false }
        execution.lock()
        defer { execution.unlock() }
        let call = Call(engine: engine, stream: stream)
        let argSrc = graft_DNNL_ARG_SRC(), argW = graft_DNNL_ARG_WEIGHTS()
        let argDiffSrc = graft_DNNL_ARG_DIFF_SRC(), argDiffDst = graft_DNNL_ARG_DIFF_DST(), argDiffW = graft_DNNL_ARG_DIFF_WEIGHTS()
        guard let dy = call.memory(&p.dst, UnsafeMutableRawPointer(mutating: gradOutput)) else { return false }
        if let gradInput {
            guard let userW = call.memory(&p.userWeights, UnsafeMutableRawPointer(mutating: kernel)),
                  let dx = call.memory(&p.src, UnsafeMutableRawPointer(gradInput)) else { return false }
            var w = userW
            if let toData = p.toData {
                guard let reordered = call.memory(&p.dataWeights, call.buffer(p.dataWeightBytes)),
                      call.run(toData, [(graft_DNNL_ARG_FROM(), userW), (graft_DNNL_ARG_TO(), reordered)]) else { return false }
                w = reordered
            }
            guard call.run(data, [(argDiffDst, dy), (argW, w), (argDiffSrc, dx)]) else { return false }
        }
        if let gradKernel {
            let count = g.h.kernel * g.w.kernel * g.inChannels * g.outChannels
            let diffBuffer = call.buffer(p.diffWeightBytes)
            guard let x = call.memory(&p.src, UnsafeMutableRawPointer(mutating: input)),
                  let dw = call.memory(&p.diffWeights, diffBuffer),
                  call.run(weightsPrim, [(argSrc, x), (argDiffDst, dy), (argDiffW, dw)]) else { return false }
            var hwio = diffBuffer.assumingMemoryBound(to: Float.self)
            if let fromDiff = p.fromDiff {
                let out = call.buffer(count * 4)
                guard let o = call.memory(&p.userWeights, out),
                      call.run(fromDiff, [(graft_DNNL_ARG_FROM(), dw), (graft_DNNL_ARG_TO(), o)]) else { return false }
                hwio = out.assumingMemoryBound(to: Float.self)
            }
            guard call.wait() else { return false }
            for i in 0..<count { gradKernel[i] += hwio[i] }
        }
        return call.wait()
    }
}

/// A layer's kernel already reordered into the layouts its oneDNN primitives chose, reused while the kernel keeps
/// the same version (inference, and frozen layers while training): the reorder was 10–20% of convolution time at
/// inference. At most a few layouts (batch sizes) per layer are kept. Used only under `DNNL.execution`.
public final class PreparedWeights: @unchecked Sendable {
    /// The cache and the version of the weights passed with it (any number that changes when they change).
    public struct Use {
        let cache: PreparedWeights
        let version: Int
        public init(_ cache: PreparedWeights, version: Int) {
            self.cache = cache
            self.version = version
        }
    }

    private var entries: [DNNL.Key: (version: Int, buffer: UnsafeMutableRawPointer)] = [:]
    static let maxEntries = 3

    public init() {}

    deinit { for e in entries.values { e.buffer.deallocate() } }

    func buffer(for key: DNNL.Key, version: Int) -> UnsafeMutableRawPointer? {
        guard let e = entries[key], e.version == version else { return nil }
        return e.buffer
    }

    func store(_ buffer: UnsafeMutableRawPointer, for key: DNNL.Key, version: Int) {
        if let old = entries.removeValue(forKey: key) { old.buffer.deallocate() }
        while entries.count >= Self.maxEntries, let victim = entries.keys.first {
            entries.removeValue(forKey: victim)?.buffer.deallocate()
        }
        entries[key] = (version, buffer)
    }
}

extension DNNL {
    /// A built LSTM inference primitive for one (steps, batch, features, units), with its descriptors and the reorders
    /// of Keras's kernels into the layouts it chose.
    final class LSTMPlan: @unchecked Sendable {
        var src = dnnl_memory_desc_t(), state = dnnl_memory_desc_t(), dst = dnnl_memory_desc_t()
        var userLayer = dnnl_memory_desc_t(), userIter = dnnl_memory_desc_t(), bias = dnnl_memory_desc_t()
        var layer = dnnl_memory_desc_t(), iter = dnnl_memory_desc_t()
        var lstm: Primitive?
        var reorderLayer: Primitive?, reorderIter: Primitive?
    }

    final class LSTMCache: @unchecked Sendable {
        let lock = NSLock()
        var plans: [[Int]: LSTMPlan?] = [:]
    }
    static let lstmCache = LSTMCache()

    static func lstmPlan(_ sizes: [Int]) -> LSTMPlan? {
        lstmCache.lock.lock()
        defer { lstmCache.lock.unlock() }
        if let p = lstmCache.plans[sizes] { return p }
        let p = buildLSTM(sizes)
        lstmCache.plans[sizes] = p
        return p
    }

    static func buildLSTM(_ sizes: [Int]) -> LSTMPlan? {
        guard let engine, sizes.allSatisfy({ $0 > 0 && $0 <= Int(Int32.max) }) else { return nil }
        let p = LSTMPlan()
        var pd: dnnl_primitive_desc_t?
        guard graft_dnnl_lstm_pd(&pd, engine, Int32(sizes[0]), Int32(sizes[1]), Int32(sizes[2]), Int32(sizes[3]),
                                 &p.src, &p.state, &p.userLayer, &p.userIter, &p.bias, &p.dst, &p.layer, &p.iter) == dnnl_success,
              let pd else { return nil }
        defer { dnnl_primitive_desc_destroy(pd) }
        guard let lstm = Primitive(pd),
              let rl = Primitive(reorderFrom: &p.userLayer, to: &p.layer, engine: engine),
              let ri = Primitive(reorderFrom: &p.userIter, to: &p.iter, engine: engine) else { return nil }
        p.lstm = lstm
        p.reorderLayer = rl
        p.reorderIter = ri
        return p
    }
}

/// Runs a Keras LSTM (tanh and sigmoid, no mask, left to right) at inference through oneDNN's LSTM primitive:
/// `x` is `[N, T, C]`, `kernel` `[C, 4U]`, `recurrent` `[U, 4U]`, `bias` `[4U]` (gates i, f, c, o, as Keras and oneDNN
/// order them), `h0`/`c0` `[N, U]`. Writes every step's output `[N, T, U]` and the final states. The kernels put in
/// oneDNN's layouts are kept in `prepared` (the input kernel's and the recurrent kernel's) while their versions hold.
/// False when oneDNN is off or cannot (the caller computes it itself).
public func oneDNNLSTMInference(steps: Int, batch: Int, features: Int, units: Int, x: UnsafePointer<Float>,
                                kernel: UnsafePointer<Float>, recurrent: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                h0: UnsafePointer<Float>, c0: UnsafePointer<Float>, sequence: UnsafeMutablePointer<Float>,
                                h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>,
                                prepared: (kernel: PreparedWeights.Use, recurrent: PreparedWeights.Use)? = nil) -> Bool {
    guard DNNL.enabled, let engine = DNNL.engine, let stream = DNNL.stream,
          let p = DNNL.lstmPlan([steps, batch, features, units]), let lstm = p.lstm,
          let rl = p.reorderLayer, let ri = p.reorderIter else { return false }
    DNNL.execution.lock()
    defer { DNNL.execution.unlock() }
    let call = DNNL.Call(engine: engine, stream: stream)
    func raw(_ x: UnsafePointer<Float>) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(mutating: x) }
    guard let src = call.memory(&p.src, raw(x)), let dst = call.memory(&p.dst, UnsafeMutableRawPointer(sequence)),
          let hIn = call.memory(&p.state, raw(h0)), let cIn = call.memory(&p.state, raw(c0)),
          let hOut = call.memory(&p.state, UnsafeMutableRawPointer(h)), let cOut = call.memory(&p.state, UnsafeMutableRawPointer(c)),
          let b = call.memory(&p.bias, raw(bias)),
          let userLayer = call.memory(&p.userLayer, raw(kernel)), let userIter = call.memory(&p.userIter, raw(recurrent)) else { return false }
    let sizes = [steps, batch, features, units]
    // A kernel in the primitive's layout: kept from an earlier call while its version holds, else reordered now.
    func reordered(_ user: dnnl_memory_t, _ md: inout dnnl_memory_desc_t, _ reorder: DNNL.Primitive, part: Int,
                   _ use: PreparedWeights.Use?) -> dnnl_memory_t? {
        let key = DNNL.Key(lstm: sizes, part: part)
        if let use, let buffer = use.cache.buffer(for: key, version: use.version) { return call.memory(&md, buffer) }
        let bytes = dnnl_memory_desc_get_size(&md)
        let buffer = use == nil ? call.buffer(bytes) : UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
        guard let m = call.memory(&md, buffer), call.run(reorder, [(graft_DNNL_ARG_FROM(), user), (graft_DNNL_ARG_TO(), m)]) else {
            if use != nil { buffer.deallocate() }
            return nil
        }
        if let use { use.cache.store(buffer, for: key, version: use.version) }
        return m
    }
    guard let layer = reordered(userLayer, &p.layer, rl, part: 0, prepared?.kernel),
          let iter = reordered(userIter, &p.iter, ri, part: 1, prepared?.recurrent) else { return false }
    return call.run(lstm, [(graft_DNNL_ARG_SRC(), src), (graft_DNNL_ARG_SRC_ITER(), hIn), (graft_DNNL_ARG_SRC_ITER_C(), cIn),
                           (graft_DNNL_ARG_WEIGHTS(), layer), (graft_DNNL_ARG_WEIGHTS_ITER(), iter), (graft_DNNL_ARG_BIAS(), b),
                           (graft_DNNL_ARG_DST(), dst), (graft_DNNL_ARG_DST_ITER(), hOut), (graft_DNNL_ARG_DST_ITER_C(), cOut)]) && call.wait()
}
