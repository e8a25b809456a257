#include "graft_simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define GRAFT_X86 1
#endif

#define INLINE static inline __attribute__((always_inline))

INLINE void loop_exp(float *restrict x, long n) { for (long i = 0; i < n; i++) x[i] = graft_expf(x[i]); }
INLINE void loop_tanh(float *restrict x, long n) { for (long i = 0; i < n; i++) x[i] = graft_tanhf(x[i]); }
INLINE void loop_sigmoid(float *restrict x, long n) { for (long i = 0; i < n; i++) x[i] = graft_sigmoidf(x[i]); }
INLINE void loop_gelu(float *restrict x, long n) { for (long i = 0; i < n; i++) x[i] = graft_geluf(x[i]); }

static void base_exp(float *restrict x, long n) { loop_exp(x, n); }
static void base_tanh(float *restrict x, long n) { loop_tanh(x, n); }
static void base_sigmoid(float *restrict x, long n) { loop_sigmoid(x, n); }
static void base_gelu(float *restrict x, long n) { loop_gelu(x, n); }

#ifdef GRAFT_X86
#define AVX2 __attribute__((target("avx2,fma")))
AVX2 static void avx2_exp(float *restrict x, long n) { loop_exp(x, n); }
AVX2 static void avx2_tanh(float *restrict x, long n) { loop_tanh(x, n); }
AVX2 static void avx2_sigmoid(float *restrict x, long n) { loop_sigmoid(x, n); }
AVX2 static void avx2_gelu(float *restrict x, long n) { loop_gelu(x, n); }

static int detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!(fma && osxsave && avx)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));   // the OS saves the YMM registers
    (void)hi;
    if ((lo & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;
}
#endif

static int cached_level = -1;

int graft_simd_level(void) {
    int level = __atomic_load_n(&cached_level, __ATOMIC_RELAXED);
    if (level < 0) {
#ifdef GRAFT_X86
        level = detect();
#else
        level = 0;
#endif
        __atomic_store_n(&cached_level, level, __ATOMIC_RELAXED);
    }
    return level;
}

#ifdef GRAFT_X86
#define DISPATCH(name)                                                      \
    void graft_simd_##name(float *x, long n, int level) {                 \
        int best = graft_simd_level();                                      \
        if ((level < 0 || level >= 1) && best >= 1) avx2_##name(x, n);      \
        else base_##name(x, n);                                             \
    }
#else
#define DISPATCH(name)                                                      \
    void graft_simd_##name(float *x, long n, int level) { (void)level; base_##name(x, n); }
#endif

DISPATCH(exp)
DISPATCH(tanh)
DISPATCH(sigmoid)
DISPATCH(gelu)
