// Element-wise math over float arrays, compiled twice: for the x86-64 baseline (SSE2) and for AVX2 + FMA, chosen
// at run time by what the CPU supports. Swift has no per-function target attributes, so the 8-wide code path has
// to be C. The algorithms are those of GraftTensor's FastMath (same constants, same ranges).
#ifndef GRAFT_SIMD_H
#define GRAFT_SIMD_H

#ifdef __cplusplus
extern "C" {
#endif

/// Which code path runs: 0 baseline, 1 AVX2 + FMA.
int graft_simd_level(void);

/// In place over x[0..<n]. `level`: -1 picks the best the CPU supports; 0 forces the baseline path; 1 asks for
/// AVX2 + FMA (the baseline when the CPU lacks them).
void graft_simd_exp(float *x, long n, int level);
void graft_simd_tanh(float *x, long n, int level);
void graft_simd_sigmoid(float *x, long n, int level);

#ifdef __cplusplus
}
#endif

#endif
