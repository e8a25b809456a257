import CDNNL
import Foundation

/// Forward convolution through oneDNN (Debian's libdnnl), on Graft's own NHWC activations and HWIO kernels.
/// oneDNN picks its fastest kernel for the machine (JIT AVX2/AVX-512 direct or implicit-GEMM convolution);
/// kernels are reordered into its preferred layout on every call (weights change while training; the reorder
/// costs far less than the convolution). One primitive is built per geometry and kept. Anything oneDNN cannot
/// take (groups, a failed setup) falls back to im2col + GEMM; `GRAFT_DNNL=0` turns oneDNN off and
/// `GRAFT_DNNL_POINTWISE=0` keeps 1×1 convolutions on OpenBLAS. Backward passes stay on im2col + GEMM.
enum DNNL {
    static let enabled: Bool = ProcessInfo.processInfo.environment["GRAFT_DNNL"] != "0" && engine != nil

    nonisolated(unsafe) static let engine: dnnl_engine_t? = {
        var e: dnnl_engine_t?
        return dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success ? e : nil
    }()

    nonisolated(unsafe) static let stream: dnnl_stream_t? = {
        guard let engine else { return nil }
        var s: dnnl_stream_t?
        return dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue) == dnnl_success ? s : nil
    }()

    struct Key: Hashable {
        let n, h, w, c, o, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr: Int
        let bias: Bool
    }

    /// A built convolution: the primitive, its memory descriptors, and the weight reorder when oneDNN wants
    /// another layout than HWIO.
    final class Plan: @unchecked Sendable {
        var src = dnnl_memory_desc_t(), dst = dnnl_memory_desc_t(), userWeights = dnnl_memory_desc_t()
        var weights = dnnl_memory_desc_t(), bias = dnnl_memory_desc_t()
        var conv: dnnl_primitive_t?
        var reorder: dnnl_primitive_t?
        var weightBytes = 0
        deinit {
            if let conv { dnnl_primitive_destroy(conv) }
            if let reorder { dnnl_primitive_destroy(reorder) }
        }
    }

    final class Cache: @unchecked Sendable {
        let lock = NSLock()
        var plans: [Key: Plan?] = [:]
    }
    static let cache = Cache()
    static let execution = NSLock()
    static let pointwise = ProcessInfo.processInfo.environment["GRAFT_DNNL_POINTWISE"] != "0"

    static func plan(_ g: ConvGeometry, bias: Bool) -> Plan? {
        let key = Key(n: g.batch, h: g.h.input, w: g.w.input, c: g.inChannels, o: g.outChannels, kh: g.h.kernel, kw: g.w.kernel,
                      sh: g.h.stride, sw: g.w.stride, dh: g.h.dilation, dw: g.w.dilation, pt: g.h.padBefore, pb: g.h.padAfter,
                      pl: g.w.padBefore, pr: g.w.padAfter, bias: bias)
        cache.lock.lock()
        defer { cache.lock.unlock() }
        if let p = cache.plans[key] { return p }
        let p = build(g, bias: bias)
        cache.plans[key] = p
        return p
    }

    static func build(_ g: ConvGeometry, bias hasBias: Bool) -> Plan? {
        let sizes = [g.batch, g.h.input, g.w.input, g.inChannels, g.outChannels, g.h.kernel, g.w.kernel, g.h.output, g.w.output,
                     g.h.stride, g.w.stride, g.h.dilation, g.w.dilation, g.h.padBefore, g.h.padAfter, g.w.padBefore, g.w.padAfter]
        guard let engine, g.groups == 1, sizes.allSatisfy({ $0 >= 0 && $0 < Int(Int32.max) }) else { return nil }
        let p = Plan()
        var pd: dnnl_primitive_desc_t?
        let status = graft_dnnl_conv_pd(&pd, engine, Int32(g.batch), Int32(g.h.input), Int32(g.w.input), Int32(g.inChannels),
                                        Int32(g.outChannels), Int32(g.h.kernel), Int32(g.w.kernel), Int32(g.h.output), Int32(g.w.output),
                                        Int32(g.h.stride), Int32(g.w.stride), Int32(g.h.dilation), Int32(g.w.dilation),
                                        Int32(g.h.padBefore), Int32(g.h.padAfter), Int32(g.w.padBefore), Int32(g.w.padAfter),
                                        hasBias ? 1 : 0, &p.src, &p.dst, &p.userWeights, &p.bias)
        guard status == dnnl_success, let pd else { return nil }
        defer { dnnl_primitive_desc_destroy(pd) }
        guard let chosen = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0) else { return nil }
        p.weights = chosen.pointee
        // Graft's tensors are dense NHWC: refuse a primitive that wants other activation layouts.
        guard let s = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), dnnl_memory_desc_equal(s, &p.src) != 0,
              let d = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), dnnl_memory_desc_equal(d, &p.dst) != 0 else { return nil }
        guard dnnl_primitive_create(&p.conv, pd) == dnnl_success else { return nil }
        if dnnl_memory_desc_equal(&p.weights, &p.userWeights) == 0 {
            var rpd: dnnl_primitive_desc_t?
            guard dnnl_reorder_primitive_desc_create(&rpd, &p.userWeights, engine, &p.weights, engine, nil) == dnnl_success,
                  let rpd else { return nil }
            defer { dnnl_primitive_desc_destroy(rpd) }
            guard dnnl_primitive_create(&p.reorder, rpd) == dnnl_success else { return nil }
            p.weightBytes = dnnl_memory_desc_get_size(&p.weights)
        }
        return p
    }

    /// Runs the convolution; false when oneDNN cannot (the caller falls back).
    static func conv2dForward(_ g: ConvGeometry, input: UnsafePointer<Float>, kernel: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) -> Bool {
        guard enabled, let engine, let stream, let p = plan(g, bias: bias != nil), let conv = p.conv else { return false }
        // One stream, used by one caller at a time (oneDNN spreads each call over the cores itself).
        execution.lock()
        defer { execution.unlock() }
        var mems: [dnnl_memory_t?] = []
        defer { for m in mems { if let m { dnnl_memory_destroy(m) } } }
        func memory(_ md: inout dnnl_memory_desc_t, _ handle: UnsafeMutableRawPointer?) -> dnnl_memory_t? {
            var m: dnnl_memory_t?
            guard dnnl_memory_create(&m, &md, engine, handle) == dnnl_success else { return nil }
            mems.append(m)
            return m
        }
        guard let src = memory(&p.src, UnsafeMutableRawPointer(mutating: input)),
              let dst = memory(&p.dst, UnsafeMutableRawPointer(output)),
              let userW = memory(&p.userWeights, UnsafeMutableRawPointer(mutating: kernel)) else { return false }
        var weights = userW
        var reordered: UnsafeMutableRawPointer?
        defer { reordered?.deallocate() }
        if let reorder = p.reorder {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(p.weightBytes, 64), alignment: 64)
            reordered = buffer
            guard let w = memory(&p.weights, buffer) else { return false }
            var args = [dnnl_exec_arg_t(arg: graft_DNNL_ARG_FROM(), memory: userW), dnnl_exec_arg_t(arg: graft_DNNL_ARG_TO(), memory: w)]
            guard dnnl_primitive_execute(reorder, stream, 2, &args) == dnnl_success else { return false }
            weights = w
        }
        var args = [dnnl_exec_arg_t(arg: graft_DNNL_ARG_SRC(), memory: src),
                    dnnl_exec_arg_t(arg: graft_DNNL_ARG_WEIGHTS(), memory: weights),
                    dnnl_exec_arg_t(arg: graft_DNNL_ARG_DST(), memory: dst)]
        if let bias {
            guard let b = memory(&p.bias, UnsafeMutableRawPointer(mutating: bias)) else { return false }
            args.append(dnnl_exec_arg_t(arg: graft_DNNL_ARG_BIAS(), memory: b))
        }
        guard dnnl_primitive_execute(conv, stream, Int32(args.count), &args) == dnnl_success else { return false }
        return dnnl_stream_wait(stream) == dnnl_success
    }
}
