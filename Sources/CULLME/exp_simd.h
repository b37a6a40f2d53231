// The vectorised e^x of the softmax and the activations (Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2, e^r by a
// degree-6 polynomial, times 2^n), for x <= 0; below EXP_MIN it gives 0. Private to CULLME. The plain C
// cullme_exp_nonpositive (softmax.c) and the AVX2 / AVX-512 lanes evaluate the same FMA sequence, so a
// kernel built on them gives the same bits on every path. Include after <immintrin.h>, with FP contraction off.
#ifndef CULLME_EXP_SIMD_H
#define CULLME_EXP_SIMD_H

#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f          // ln 2 split in two so n * LN2_HI is exact
#define LN2_LO -2.12194440e-4f
#define EXP_MIN -87.3365478515625f   // below: e^x < FLT_MIN, flushed to 0
#define P0 1.9875691500e-4f
#define P1 1.3981999507e-3f
#define P2 8.3334519073e-3f
#define P3 4.1665795894e-2f
#define P4 1.6666665459e-1f
#define P5 5.0000001201e-1f
#include "cullme_gemm.h"

// The path cullme_gemm runs (cullme_gemm_path / cullme_gemm_force_path switch these kernels too).
enum { SIMD_GENERIC, SIMD_AVX2, SIMD_AVX512 };
static inline int simd_path(void) {
    const char *p = cullme_gemm_path();   // "avx512...", "avx2...", "generic"
    return p[0] != 'a' ? SIMD_GENERIC : p[3] == '5' ? SIMD_AVX512 : SIMD_AVX2;
}

#define A2 __attribute__((target("avx2,fma")))
#define A5 __attribute__((target("avx512f")))

static inline __attribute__((always_inline)) A2 __m256 exp8(__m256 x) {
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_MIN), _CMP_GE_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(EXP_MIN));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P1)); p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P3)); p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P5));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(e)), keep);
}

static inline __attribute__((always_inline)) A5 __m512 exp16(__m512 x) {
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_MIN), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(EXP_MIN));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P1)); p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P3)); p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P5));
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(keep, y, _mm512_castsi512_ps(e));
}

#endif // CULLME_EXP_SIMD_H
