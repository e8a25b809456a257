#include "graft_simd.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define GRAFT_X86 1
#endif

#define INLINE static inline __attribute__((always_inline))

INLINE float bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
INLINE uint32_t float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

// e^x: see FastMath.exp. 2^n · e^r with n = round(x / ln 2), |r| ≤ ln 2 / 2, degree-7 Taylor polynomial.
INLINE float g_exp(float x) {
    float c = x != x ? 0.0f : x;
    c = c < -103.97f ? -103.97f : c;
    c = c > 88.72283f ? 88.72283f : c;
    float shifted = c * 1.44269504088896341f + 12582912.0f;
    float n = shifted - 12582912.0f;
    int32_t ni = (int32_t)(float_to_bits(shifted) - 0x4B400000u);
    float r = (c - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t half = ni >> 1;
    float a = bits_to_float((uint32_t)(half + 127) << 23);
    float b = bits_to_float((uint32_t)(ni - half + 127) << 23);
    float result = p * a * b;
    return x != x ? x : (x < -103.97f ? 0.0f : (x > 88.72283f ? INFINITY : result));
}

// tanh x: see FastMath.tanh. Odd Taylor polynomial for |x| < 0.4, (1 − e^(−2|x|)) / (1 + e^(−2|x|)) elsewhere.
INLINE float g_tanh(float x) {
    float a = fabsf(x);
    float s = x * x;
    float q = 21844.0f / 6081075;
    q = q * s - 1382.0f / 155925;
    q = q * s + 62.0f / 2835;
    q = q * s - 17.0f / 315;
    q = q * s + 2.0f / 15;
    q = q * s - 1.0f / 3;
    float small = x + x * s * q;
    float t = g_exp(-2.0f * (a < 9.1f ? a : 9.1f));
    float large = (1.0f - t) / (1.0f + t);
    float is_signed = bits_to_float((float_to_bits(large) & 0x7FFFFFFFu) | (float_to_bits(x) & 0x80000000u));
    return x != x ? x : (a < 0.4f ? small : is_signed);
}

// 1 / (1 + e^(−x)) from e^(−|x|): see FastMath.sigmoid.
INLINE float g_sigmoid(float x) {
    float e = g_exp(-fabsf(x));
    float positive = 1.0f / (1.0f + e);
    return x != x ? x : (x >= 0.0f ? positive : e * positive);
}

INLINE void loop_exp(float *restrict x, long n) { for (long i = 0; i < n; i++) x[i] = g_exp(x[i]); }
INLINE void loop_tanh(float *restrict x, long n) { for (long i = 0; i < n; i++) x[i] = g_tanh(x[i]); }
INLINE void loop_sigmoid(float *restrict x, long n) { for (long i = 0; i < n; i++) x[i] = g_sigmoid(x[i]); }

static void base_exp(float *restrict x, long n) { loop_exp(x, n); }
static void base_tanh(float *restrict x, long n) { loop_tanh(x, n); }
static void base_sigmoid(float *restrict x, long n) { loop_sigmoid(x, n); }

#ifdef GRAFT_X86
#define AVX2 __attribute__((target("avx2,fma")))
AVX2 static void avx2_exp(float *restrict x, long n) { loop_exp(x, n); }
AVX2 static void avx2_tanh(float *restrict x, long n) { loop_tanh(x, n); }
AVX2 static void avx2_sigmoid(float *restrict x, long n) { loop_sigmoid(x, n); }

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
