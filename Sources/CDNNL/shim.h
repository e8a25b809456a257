// oneDNN (Debian's libdnnl-dev, 2.x C API) for Swift: the execution-argument indices are macros. Headers only: the
// library itself is loaded on first use (CGraftLibraries), not linked.
#ifndef GRAFT_CDNNL_SHIM_H
#define GRAFT_CDNNL_SHIM_H
#include <oneapi/dnnl/dnnl.h>

static inline int graft_DNNL_ARG_SRC(void) { return DNNL_ARG_SRC; }
static inline int graft_DNNL_ARG_DST(void) { return DNNL_ARG_DST; }
static inline int graft_DNNL_ARG_WEIGHTS(void) { return DNNL_ARG_WEIGHTS; }
static inline int graft_DNNL_ARG_BIAS(void) { return DNNL_ARG_BIAS; }
static inline int graft_DNNL_ARG_FROM(void) { return DNNL_ARG_FROM; }
static inline int graft_DNNL_ARG_TO(void) { return DNNL_ARG_TO; }
static inline int graft_DNNL_ARG_DIFF_SRC(void) { return DNNL_ARG_DIFF_SRC; }
static inline int graft_DNNL_ARG_DIFF_DST(void) { return DNNL_ARG_DIFF_DST; }
static inline int graft_DNNL_ARG_DIFF_WEIGHTS(void) { return DNNL_ARG_DIFF_WEIGHTS; }
static inline int graft_DNNL_ARG_SCRATCHPAD(void) { return DNNL_ARG_SCRATCHPAD; }
static inline int graft_DNNL_ARG_SRC_ITER(void) { return DNNL_ARG_SRC_ITER; }
static inline int graft_DNNL_ARG_SRC_ITER_C(void) { return DNNL_ARG_SRC_ITER_C; }
static inline int graft_DNNL_ARG_DST_ITER(void) { return DNNL_ARG_DST_ITER; }
static inline int graft_DNNL_ARG_DST_ITER_C(void) { return DNNL_ARG_DST_ITER_C; }
static inline int graft_DNNL_ARG_WEIGHTS_ITER(void) { return DNNL_ARG_WEIGHTS_ITER; }

/// An attribute asking for a user-managed scratchpad: the primitive's temporary memory is passed with each
/// execution (DNNL_ARG_SCRATCHPAD) instead of taken from the library. oneDNN 2.x's library-managed scratchpad is,
/// for some implementations (gemm:jit convolutions among them), a per-thread buffer of the thread that *created*
/// the primitive, looked up in the thread that *executes* it: a primitive built on one thread and run on another
/// reads a null or too small buffer and crashes. Every primitive Graft creates takes this attribute.
static inline dnnl_status_t graft_dnnl_user_scratchpad_attr(dnnl_primitive_attr_t *attr) {
    dnnl_status_t s;
    if ((s = dnnl_primitive_attr_create(attr)) != dnnl_success) return s;
    if ((s = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user)) != dnnl_success) {
        dnnl_primitive_attr_destroy(*attr);
        return s;
    }
    return dnnl_success;
}

/// A reorder between two layouts, with a user-managed scratchpad.
static inline dnnl_status_t graft_dnnl_reorder_pd(dnnl_primitive_desc_t *pd, const dnnl_memory_desc_t *from,
        const dnnl_memory_desc_t *to, dnnl_engine_t engine) {
    dnnl_primitive_attr_t attr;
    dnnl_status_t s;
    if ((s = graft_dnnl_user_scratchpad_attr(&attr)) != dnnl_success) return s;
    s = dnnl_reorder_primitive_desc_create(pd, from, engine, to, engine, attr);
    dnnl_primitive_attr_destroy(attr);
    return s;
}

/// The scratchpad an execution of `primitive` needs (user-managed mode): its descriptor into `md` and its size in
/// bytes (0 when it needs none).
static inline size_t graft_dnnl_scratchpad(const_dnnl_primitive_t primitive, dnnl_memory_desc_t *md) {
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(primitive, &pd) != dnnl_success) return 0;
    const dnnl_memory_desc_t *q = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (!q) return 0;
    *md = *q;
    return dnnl_memory_desc_get_size(q);
}

/// A forward-inference convolution on NHWC f32 activations with weights in the layout oneDNN prefers
/// (format `any`); fills the src/dst/user-weights (HWIO)/bias descriptors. Returns the status.
static inline dnnl_status_t graft_dnnl_conv_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t engine,
        int n, int h, int w, int c, int o, int kh, int kw, int oh, int ow, int sh, int sw, int dh, int dw,
        int pt, int pb, int pl, int pr, int groups, int has_bias, int post_alg, float post_alpha, float post_beta,
        dnnl_memory_desc_t *src, dnnl_memory_desc_t *dst, dnnl_memory_desc_t *user_weights, dnnl_memory_desc_t *bias) {
    dnnl_dims_t sd = {n, c, h, w}, dd = {n, o, oh, ow}, bd = {o};
    dnnl_memory_desc_t any_weights;
    dnnl_status_t s;
    if ((s = dnnl_memory_desc_init_by_tag(src, 4, sd, dnnl_f32, dnnl_nhwc)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(dst, 4, dd, dnnl_f32, dnnl_nhwc)) != dnnl_success) return s;
    if (groups > 1) {
        /* Graft's grouped kernel [kh, kw, c/g, o] with output channel = group·(o/g) + j is oneDNN's hwigo. */
        dnnl_dims_t wd = {groups, o / groups, c / groups, kh, kw};
        if ((s = dnnl_memory_desc_init_by_tag(user_weights, 5, wd, dnnl_f32, dnnl_hwigo)) != dnnl_success) return s;
        if ((s = dnnl_memory_desc_init_by_tag(&any_weights, 5, wd, dnnl_f32, dnnl_format_tag_any)) != dnnl_success) return s;
    } else {
        dnnl_dims_t wd = {o, c, kh, kw};
        if ((s = dnnl_memory_desc_init_by_tag(user_weights, 4, wd, dnnl_f32, dnnl_hwio)) != dnnl_success) return s;
        if ((s = dnnl_memory_desc_init_by_tag(&any_weights, 4, wd, dnnl_f32, dnnl_format_tag_any)) != dnnl_success) return s;
    }
    if ((s = dnnl_memory_desc_init_by_tag(bias, 1, bd, dnnl_f32, dnnl_x)) != dnnl_success) return s;
    dnnl_dims_t strides = {sh, sw}, dilates = {dh - 1, dw - 1}, pad_l = {pt, pl}, pad_r = {pb, pr};
    dnnl_convolution_desc_t desc;
    if ((s = dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct, src, &any_weights,
            has_bias ? bias : NULL, dst, strides, dilates, pad_l, pad_r)) != dnnl_success) return s;
    dnnl_primitive_attr_t attr;
    if ((s = graft_dnnl_user_scratchpad_attr(&attr)) != dnnl_success) return s;
    if (post_alg != 0) {
        /* An element-wise activation applied to the output as it is written (relu, clip). */
        dnnl_post_ops_t ops;
        if ((s = dnnl_post_ops_create(&ops)) != dnnl_success) { dnnl_primitive_attr_destroy(attr); return s; }
        s = dnnl_post_ops_append_eltwise(ops, 1.0f, (dnnl_alg_kind_t)post_alg, post_alpha, post_beta);
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, ops);
        dnnl_post_ops_destroy(ops);
        if (s != dnnl_success) { dnnl_primitive_attr_destroy(attr); return s; }
    }
    s = dnnl_primitive_desc_create(pd, &desc, attr, engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    return s;
}

/// A forward-inference LSTM (one layer, left to right) on Keras's layouts: sequences [N, T, C] (ntc), states [N, U]
/// (ldnc), kernels [C, 4U] and [U, 4U] with gates i, f, c, o (ldigo, oneDNN's gate order), bias [4U] (ldgo). The
/// primitive chooses its own weight layouts (format `any`), returned in chosen_layer and chosen_iter.
static inline dnnl_status_t graft_dnnl_lstm_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t engine, int t, int n, int c, int u,
        dnnl_memory_desc_t *src_layer, dnnl_memory_desc_t *state, dnnl_memory_desc_t *user_layer,
        dnnl_memory_desc_t *user_iter, dnnl_memory_desc_t *bias, dnnl_memory_desc_t *dst_layer,
        dnnl_memory_desc_t *chosen_layer, dnnl_memory_desc_t *chosen_iter) {
    dnnl_dims_t sd = {t, n, c}, dd = {t, n, u}, st = {1, 1, n, u}, wl = {1, 1, c, 4, u}, wi = {1, 1, u, 4, u}, bd = {1, 1, 4, u};
    dnnl_memory_desc_t any_layer, any_iter;
    dnnl_status_t s;
    if ((s = dnnl_memory_desc_init_by_tag(src_layer, 3, sd, dnnl_f32, dnnl_ntc)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(dst_layer, 3, dd, dnnl_f32, dnnl_ntc)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(state, 4, st, dnnl_f32, dnnl_ldnc)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(user_layer, 5, wl, dnnl_f32, dnnl_ldigo)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(user_iter, 5, wi, dnnl_f32, dnnl_ldigo)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&any_layer, 5, wl, dnnl_f32, dnnl_format_tag_any)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&any_iter, 5, wi, dnnl_f32, dnnl_format_tag_any)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(bias, 4, bd, dnnl_f32, dnnl_ldgo)) != dnnl_success) return s;
    dnnl_rnn_desc_t desc;
    if ((s = dnnl_lstm_forward_desc_init(&desc, dnnl_forward_inference, dnnl_unidirectional_left2right, src_layer, state, state,
            &any_layer, &any_iter, bias, dst_layer, state, state, 0)) != dnnl_success) return s;
    dnnl_primitive_attr_t attr;
    if ((s = graft_dnnl_user_scratchpad_attr(&attr)) != dnnl_success) return s;
    s = dnnl_primitive_desc_create(pd, &desc, attr, engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return s;
    const dnnl_memory_desc_t *l = dnnl_primitive_desc_query_md(*pd, dnnl_query_exec_arg_md, DNNL_ARG_WEIGHTS_LAYER);
    const dnnl_memory_desc_t *i = dnnl_primitive_desc_query_md(*pd, dnnl_query_exec_arg_md, DNNL_ARG_WEIGHTS_ITER);
    if (!l || !i) { dnnl_primitive_desc_destroy(*pd); return dnnl_unimplemented; }
    *chosen_layer = *l;
    *chosen_iter = *i;
    return dnnl_success;
}

/// Backward-data and backward-weights convolutions (no bias: Graft sums the bias gradient itself) for the same
/// geometry, with a forward-training primitive as their hint. Descriptors as for graft_dnnl_conv_pd.
static inline dnnl_status_t graft_dnnl_conv_bwd_pds(dnnl_primitive_desc_t *data_pd, dnnl_primitive_desc_t *weights_pd,
        dnnl_engine_t engine, int n, int h, int w, int c, int o, int kh, int kw, int oh, int ow, int sh, int sw, int dh, int dw,
        int pt, int pb, int pl, int pr,
        dnnl_memory_desc_t *src, dnnl_memory_desc_t *dst, dnnl_memory_desc_t *user_weights) {
    dnnl_dims_t sd = {n, c, h, w}, dd = {n, o, oh, ow}, wd = {o, c, kh, kw};
    dnnl_memory_desc_t any_weights;
    dnnl_status_t s;
    *data_pd = NULL;
    *weights_pd = NULL;
    if ((s = dnnl_memory_desc_init_by_tag(src, 4, sd, dnnl_f32, dnnl_nhwc)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(dst, 4, dd, dnnl_f32, dnnl_nhwc)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(user_weights, 4, wd, dnnl_f32, dnnl_hwio)) != dnnl_success) return s;
    if ((s = dnnl_memory_desc_init_by_tag(&any_weights, 4, wd, dnnl_f32, dnnl_format_tag_any)) != dnnl_success) return s;
    dnnl_dims_t strides = {sh, sw}, dilates = {dh - 1, dw - 1}, pad_l = {pt, pl}, pad_r = {pb, pr};
    dnnl_convolution_desc_t fwd, bwd_data, bwd_weights;
    if ((s = dnnl_dilated_convolution_forward_desc_init(&fwd, dnnl_forward_training, dnnl_convolution_direct, src, &any_weights,
            NULL, dst, strides, dilates, pad_l, pad_r)) != dnnl_success) return s;
    dnnl_primitive_desc_t hint;
    if ((s = dnnl_primitive_desc_create(&hint, &fwd, NULL, engine, NULL)) != dnnl_success) return s;
    s = dnnl_dilated_convolution_backward_data_desc_init(&bwd_data, dnnl_convolution_direct, src, &any_weights, dst,
            strides, dilates, pad_l, pad_r);
    dnnl_primitive_attr_t attr = NULL;
    if (s == dnnl_success) s = graft_dnnl_user_scratchpad_attr(&attr);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(data_pd, &bwd_data, attr, engine, hint);
    if (s == dnnl_success) s = dnnl_dilated_convolution_backward_weights_desc_init(&bwd_weights, dnnl_convolution_direct, src,
            &any_weights, NULL, dst, strides, dilates, pad_l, pad_r);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(weights_pd, &bwd_weights, attr, engine, hint);
    if (attr) dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(hint);
    return s;
}
#endif
