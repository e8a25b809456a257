// exp, tanh and the logistic sigmoid written without calls or table lookups, so loops over arrays of them compile
// to SIMD code: the scalar functions below (GraftTensor's FastMath calls them, and Swift loops inline them), and
// array functions compiled twice, for the x86-64 baseline and for AVX2 + FMA, chosen at run time by what the CPU
// supports (Swift has no per-function target attributes, so the 8-wide path has to be C). Accuracy: a few units in
// the last place over the whole float range (tests sweep them against Double).
#ifndef GRAFT_SIMD_H
#define GRAFT_SIMD_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GRAFT_INLINE static inline __attribute__((always_inline))

GRAFT_INLINE float graft_bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
GRAFT_INLINE uint32_t graft_float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

// e^x for any float x: 0 below −103.97, +∞ above 88.72283 (ln of the largest float), NaN for NaN.
GRAFT_INLINE float graft_expf(float x) {
    // e^x = 2^n · e^r with n = round(x / ln 2) and |r| ≤ ln 2 / 2. ln 2 is split in a high part with few mantissa
    // bits (n · hi is exact) and a low part, so r keeps full precision.
    float c = x != x ? 0.0f : x;
    c = c < -103.97f ? -103.97f : c;
    c = c > 88.72283f ? 88.72283f : c;
    // n by the 1.5·2^23 trick: adding it rounds to an integer held in the low mantissa bits (no conversion
    // instruction with range checks, so loops stay vectorised).
    float shifted = c * 1.44269504088896341f + 12582912.0f;
    float n = shifted - 12582912.0f;
    int32_t ni = (int32_t)(graft_float_to_bits(shifted) - 0x4B400000u);
    float r = (c - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
    // Taylor series of e^r to degree 7 (|r| ≤ 0.347: the next term is below 2^-26 relative), Horner form.
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    // 2^n in two factors, so that n down to −150 (subnormal results) and up to 128 stay representable.
    int32_t half = ni >> 1;
    float a = graft_bits_to_float((uint32_t)(half + 127) << 23);
    float b = graft_bits_to_float((uint32_t)(ni - half + 127) << 23);
    float result = p * a * b;
    return x != x ? x : (x < -103.97f ? 0.0f : (x > 88.72283f ? INFINITY : result));
}

// tanh x: an odd Taylor polynomial to x^13 for |x| < 0.4 (the x^15 term is below 2e-9), (1 − e^(−2|x|)) /
// (1 + e^(−2|x|)) elsewhere; beyond 9.1, tanh rounds to ±1.
GRAFT_INLINE float graft_tanhf(float x) {
    float a = fabsf(x);
    float s = x * x;
    float q = 21844.0f / 6081075;
    q = q * s - 1382.0f / 155925;
    q = q * s + 62.0f / 2835;
    q = q * s - 17.0f / 315;
    q = q * s + 2.0f / 15;
    q = q * s - 1.0f / 3;
    float small = x + x * s * q;
    float t = graft_expf(-2.0f * (a < 9.1f ? a : 9.1f));
    float large = (1.0f - t) / (1.0f + t);
    float is_signed = graft_bits_to_float((graft_float_to_bits(large) & 0x7FFFFFFFu) | (graft_float_to_bits(x) & 0x80000000u));
    return x != x ? x : (a < 0.4f ? small : is_signed);
}

// 1 / (1 + e^(−x)) from e^(−|x|), so it neither overflows nor loses precision for negative x.
GRAFT_INLINE float graft_sigmoidf(float x) {
    float e = graft_expf(-fabsf(x));
    float positive = 1.0f / (1.0f + e);
    return x != x ? x : (x >= 0.0f ? positive : e * positive);
}

// erf x by Abramowitz and Stegun 7.1.26: 1 − (a1·t + … + a5·t⁵)·e^(−x²), t = 1 / (1 + p·|x|), odd; absolute
// error at most 1.5e-7 (5e-7 in float arithmetic).
GRAFT_INLINE float graft_erff(float x) {
    float a = fabsf(x);
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    float y = 1.0f - poly * graft_expf(-a * a);
    float is_signed = graft_bits_to_float((graft_float_to_bits(y) & 0x7FFFFFFFu) | (graft_float_to_bits(x) & 0x80000000u));
    return x != x ? x : is_signed;
}

// The exact (erf) GELU, x · (1 + erf(x / √2)) / 2: Keras's `gelu` with approximate=False.
GRAFT_INLINE float graft_geluf(float x) {
    return 0.5f * x * (1.0f + graft_erff(x * 0.70710678118654752f));
}

/// Which code path runs: 0 baseline, 1 AVX2 + FMA.
int graft_simd_level(void);

/// In place over x[0..<n]. `level`: -1 picks the best the CPU supports; 0 forces the baseline path; 1 asks for
/// AVX2 + FMA (the baseline when the CPU lacks them).
void graft_simd_exp(float *x, long n, int level);
void graft_simd_tanh(float *x, long n, int level);
void graft_simd_sigmoid(float *x, long n, int level);
void graft_simd_gelu(float *x, long n, int level);

#ifdef __cplusplus
}
#endif

#endif
