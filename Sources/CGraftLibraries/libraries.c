// oneDNN and OpenBLAS, loaded when Graft first uses them rather than when the process starts.
//
// Both start threads as they initialise and read their settings from the environment only then: libgomp (which
// oneDNN's OpenMP build brings) reads OMP_WAIT_POLICY and OMP_NUM_THREADS, OpenBLAS reads OPENBLAS_NUM_THREADS.
// Linked normally they initialise before main, so the graft command line had to set those variables and execute
// itself again. Loaded here, on first use, they see the settings the program made at start (the command line sets
// them in main), and a program that never convolves or multiplies matrices never starts their threads.
//
// Each function Graft calls is defined here with the library's own prototype (the headers below are included, so
// the compiler checks every signature) and forwards to the library's symbol, looked up once.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <oneapi/dnnl/dnnl.h>
#if __has_include("/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h")
#include "/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h"
#else
#include <cblas.h>
#endif

#include "graft_libraries.h"

static const char *const sonames[2] = {"libdnnl.so.2", "libopenblas.so.0"};
static void *handles[2];
static pthread_once_t once[2] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

static void load_onednn(void) { handles[0] = dlopen(sonames[0], RTLD_NOW | RTLD_LOCAL); }
static void load_openblas(void) { handles[1] = dlopen(sonames[1], RTLD_NOW | RTLD_LOCAL); }

static void *library(int which) {
    pthread_once(&once[which], which == 0 ? load_onednn : load_openblas);
    return handles[which];
}

int graft_library_available(int which) { return (which == 0 || which == 1) && library(which) != NULL; }

static void *symbol(int which, const char *name) {
    void *h = library(which);
    return h ? dlsym(h, name) : NULL;
}

// OpenBLAS is required (every Dense layer and convolution needs GEMM): without it graft cannot work at all.
static void *required(const char *name) {
    void *f = symbol(1, name);
    if (f == NULL) {
        fprintf(stderr, "Internal error: cannot load %s for %s (%s); install Debian's libopenblas0\n", sonames[1], name,
                handles[1] ? "symbol missing" : dlerror());
        exit(2);
    }
    return f;
}

// A forwarder to oneDNN: its pointer is looked up once (atomically: any thread may call first); without the
// library, `failure` (oneDNN's engine then cannot be created, and Graft takes its im2col path).
#define ONEDNN(ret, name, params, args, failure)                                    \
    ret name params {                                                               \
        typedef ret (*fn_t) params;                                                 \
        static fn_t fn;                                                             \
        fn_t f = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);                            \
        if (f == NULL) {                                                            \
            f = (fn_t)symbol(0, #name);                                             \
            if (f == NULL) return failure;                                          \
            __atomic_store_n(&fn, f, __ATOMIC_RELEASE);                             \
        }                                                                           \
        return f args;                                                              \
    }

ONEDNN(dnnl_status_t, dnnl_dilated_convolution_backward_data_desc_init, (dnnl_convolution_desc_t *conv_desc, dnnl_alg_kind_t alg_kind, const dnnl_memory_desc_t *diff_src_desc, const dnnl_memory_desc_t *weights_desc, const dnnl_memory_desc_t *diff_dst_desc, const dnnl_dims_t strides, const dnnl_dims_t dilates, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r),
       (conv_desc, alg_kind, diff_src_desc, weights_desc, diff_dst_desc, strides, dilates, padding_l, padding_r), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_dilated_convolution_backward_weights_desc_init, (dnnl_convolution_desc_t *conv_desc, dnnl_alg_kind_t alg_kind, const dnnl_memory_desc_t *src_desc, const dnnl_memory_desc_t *diff_weights_desc, const dnnl_memory_desc_t *diff_bias_desc, const dnnl_memory_desc_t *diff_dst_desc, const dnnl_dims_t strides, const dnnl_dims_t dilates, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r),
       (conv_desc, alg_kind, src_desc, diff_weights_desc, diff_bias_desc, diff_dst_desc, strides, dilates, padding_l, padding_r), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_dilated_convolution_forward_desc_init, (dnnl_convolution_desc_t *conv_desc, dnnl_prop_kind_t prop_kind, dnnl_alg_kind_t alg_kind, const dnnl_memory_desc_t *src_desc, const dnnl_memory_desc_t *weights_desc, const dnnl_memory_desc_t *bias_desc, const dnnl_memory_desc_t *dst_desc, const dnnl_dims_t strides, const dnnl_dims_t dilates, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r),
       (conv_desc, prop_kind, alg_kind, src_desc, weights_desc, bias_desc, dst_desc, strides, dilates, padding_l, padding_r), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_lstm_forward_desc_init, (dnnl_rnn_desc_t *rnn_desc, dnnl_prop_kind_t prop_kind, dnnl_rnn_direction_t direction, const dnnl_memory_desc_t *src_layer_desc, const dnnl_memory_desc_t *src_iter_desc, const dnnl_memory_desc_t *src_iter_c_desc, const dnnl_memory_desc_t *weights_layer_desc, const dnnl_memory_desc_t *weights_iter_desc, const dnnl_memory_desc_t *bias_desc, const dnnl_memory_desc_t *dst_layer_desc, const dnnl_memory_desc_t *dst_iter_desc, const dnnl_memory_desc_t *dst_iter_c_desc, unsigned flags),
       (rnn_desc, prop_kind, direction, src_layer_desc, src_iter_desc, src_iter_c_desc, weights_layer_desc, weights_iter_desc, bias_desc, dst_layer_desc, dst_iter_desc, dst_iter_c_desc, flags), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_engine_create, (dnnl_engine_t *engine, dnnl_engine_kind_t kind, size_t index),
       (engine, kind, index), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_memory_create, (dnnl_memory_t *memory, const dnnl_memory_desc_t *memory_desc, dnnl_engine_t engine, void *handle),
       (memory, memory_desc, engine, handle), dnnl_runtime_error)
ONEDNN(int, dnnl_memory_desc_equal, (const dnnl_memory_desc_t *lhs, const dnnl_memory_desc_t *rhs),
       (lhs, rhs), 0)
ONEDNN(size_t, dnnl_memory_desc_get_size, (const dnnl_memory_desc_t *memory_desc),
       (memory_desc), 0)
ONEDNN(dnnl_status_t, dnnl_memory_desc_init_by_tag, (dnnl_memory_desc_t *memory_desc, int ndims, const dnnl_dims_t dims, dnnl_data_type_t data_type, dnnl_format_tag_t tag),
       (memory_desc, ndims, dims, data_type, tag), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_memory_destroy, (dnnl_memory_t memory),
       (memory), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_post_ops_append_eltwise, (dnnl_post_ops_t post_ops, float scale, dnnl_alg_kind_t alg_kind, float alpha, float beta),
       (post_ops, scale, alg_kind, alpha, beta), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_post_ops_create, (dnnl_post_ops_t *post_ops),
       (post_ops), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_post_ops_destroy, (dnnl_post_ops_t post_ops),
       (post_ops), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_primitive_attr_create, (dnnl_primitive_attr_t *attr),
       (attr), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_primitive_attr_destroy, (dnnl_primitive_attr_t attr),
       (attr), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_primitive_attr_set_post_ops, (dnnl_primitive_attr_t attr, const_dnnl_post_ops_t post_ops),
       (attr, post_ops), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_primitive_attr_set_scratchpad_mode, (dnnl_primitive_attr_t attr, dnnl_scratchpad_mode_t mode),
       (attr, mode), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_primitive_create, (dnnl_primitive_t *primitive, const_dnnl_primitive_desc_t primitive_desc),
       (primitive, primitive_desc), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_primitive_desc_create, (dnnl_primitive_desc_t *primitive_desc, const_dnnl_op_desc_t op_desc, const_dnnl_primitive_attr_t attr, dnnl_engine_t engine, const_dnnl_primitive_desc_t hint_forward_primitive_desc),
       (primitive_desc, op_desc, attr, engine, hint_forward_primitive_desc), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_primitive_desc_destroy, (dnnl_primitive_desc_t primitive_desc),
       (primitive_desc), dnnl_runtime_error)
ONEDNN(const dnnl_memory_desc_t *, dnnl_primitive_desc_query_md, (const_dnnl_primitive_desc_t primitive_desc, dnnl_query_t what, int index),
       (primitive_desc, what, index), NULL)
ONEDNN(dnnl_status_t, dnnl_primitive_destroy, (dnnl_primitive_t primitive),
       (primitive), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_primitive_execute, (const_dnnl_primitive_t primitive, dnnl_stream_t stream, int nargs, const dnnl_exec_arg_t *args),
       (primitive, stream, nargs, args), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_primitive_get_primitive_desc, (const_dnnl_primitive_t primitive, const_dnnl_primitive_desc_t *primitive_desc),
       (primitive, primitive_desc), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_reorder_primitive_desc_create, (dnnl_primitive_desc_t *reorder_primitive_desc, const dnnl_memory_desc_t *src_desc, dnnl_engine_t src_engine, const dnnl_memory_desc_t *dst_desc, dnnl_engine_t dst_engine, const_dnnl_primitive_attr_t attr),
       (reorder_primitive_desc, src_desc, src_engine, dst_desc, dst_engine, attr), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_stream_create, (dnnl_stream_t *stream, dnnl_engine_t engine, unsigned flags),
       (stream, engine, flags), dnnl_runtime_error)
ONEDNN(dnnl_status_t, dnnl_stream_wait, (dnnl_stream_t stream),
       (stream), dnnl_runtime_error)

void openblas_set_num_threads(int num_threads) {
    typedef void (*fn_t)(int);
    static fn_t fn;
    fn_t f = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);
    if (f == NULL) {
        f = (fn_t)required("openblas_set_num_threads");
        __atomic_store_n(&fn, f, __ATOMIC_RELEASE);
    }
    f(num_threads);
}

void cblas_sgemm(OPENBLAS_CONST enum CBLAS_ORDER Order, OPENBLAS_CONST enum CBLAS_TRANSPOSE TransA,
                 OPENBLAS_CONST enum CBLAS_TRANSPOSE TransB, OPENBLAS_CONST blasint M, OPENBLAS_CONST blasint N,
                 OPENBLAS_CONST blasint K, OPENBLAS_CONST float alpha, OPENBLAS_CONST float *A, OPENBLAS_CONST blasint lda,
                 OPENBLAS_CONST float *B, OPENBLAS_CONST blasint ldb, OPENBLAS_CONST float beta, float *C,
                 OPENBLAS_CONST blasint ldc) {
    typedef void (*fn_t)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint, blasint, blasint, float,
                         const float *, blasint, const float *, blasint, float, float *, blasint);
    static fn_t fn;
    fn_t f = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);
    if (f == NULL) {
        f = (fn_t)required("cblas_sgemm");
        __atomic_store_n(&fn, f, __ATOMIC_RELEASE);
    }
    f(Order, TransA, TransB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
