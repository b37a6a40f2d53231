// The SwiGLU activation and its backward (include/cullme_activation.h), on the softmax's exp (exp_simd.h).
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#include "cullme_activation.h"
#include "cullme_softmax.h"
#include <math.h>
#include <immintrin.h>
#include "exp_simd.h"

// ---- generic C: the contract, element by element -------------------------------------------------
static inline float sigmoid_c(float x) {
    const float e = cullme_exp_nonpositive(0.0f - fabsf(x)), d = 1.0f + e;
    return x >= 0.0f ? 1.0f / d : e / d;
}

static void swiglu_forward_c(float *o, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) o[i] = (g[i] * sigmoid_c(g[i])) * u[i];
}

static void swiglu_backward_c(float *dg, float *du, const float *da, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float s = sigmoid_c(g[i]);
        dg[i] = (da[i] * u[i]) * (s * (1.0f + g[i] * (1.0f - s)));
        du[i] = da[i] * (g[i] * s);
    }
}

// ---- AVX2 + FMA ------------------------------------------------------------------------------------
static inline __attribute__((always_inline)) A2 __m256 sigmoid8(__m256 x) {
    const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), ax)), d = _mm256_add_ps(_mm256_set1_ps(1.0f), e);
    const __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
    return _mm256_div_ps(_mm256_blendv_ps(e, _mm256_set1_ps(1.0f), pos), d);
}

static A2 void swiglu_forward_avx2(float *o, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(x, sigmoid8(x)), _mm256_loadu_ps(u + i)));
    }
    swiglu_forward_c(o + i, g + i, u + i, n - i);
}

static A2 void swiglu_backward_avx2(float *dg, float *du, const float *da, const float *g, const float *u, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i), s = sigmoid8(x), a = _mm256_loadu_ps(da + i);
        const __m256 deriv = _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(x, _mm256_sub_ps(one, s))));
        _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(a, _mm256_loadu_ps(u + i)), deriv));
        _mm256_storeu_ps(du + i, _mm256_mul_ps(a, _mm256_mul_ps(x, s)));
    }
    swiglu_backward_c(dg + i, du + i, da + i, g + i, u + i, n - i);
}

// ---- AVX-512 ---------------------------------------------------------------------------------------
static inline __attribute__((always_inline)) A5 __m512 sigmoid16(__m512 x) {
    const __m512 ax = _mm512_abs_ps(x);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), ax)), d = _mm512_add_ps(_mm512_set1_ps(1.0f), e);
    const __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_div_ps(_mm512_mask_blend_ps(pos, e, _mm512_set1_ps(1.0f)), d);
}

static A5 void swiglu_forward_avx512(float *o, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(g + i);
        _mm512_storeu_ps(o + i, _mm512_mul_ps(_mm512_mul_ps(x, sigmoid16(x)), _mm512_loadu_ps(u + i)));
    }
    swiglu_forward_c(o + i, g + i, u + i, n - i);
}

static A5 void swiglu_backward_avx512(float *dg, float *du, const float *da, const float *g, const float *u, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(g + i), s = sigmoid16(x), a = _mm512_loadu_ps(da + i);
        const __m512 deriv = _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(x, _mm512_sub_ps(one, s))));
        _mm512_storeu_ps(dg + i, _mm512_mul_ps(_mm512_mul_ps(a, _mm512_loadu_ps(u + i)), deriv));
        _mm512_storeu_ps(du + i, _mm512_mul_ps(a, _mm512_mul_ps(x, s)));
    }
    swiglu_backward_c(dg + i, du + i, da + i, g + i, u + i, n - i);
}

// ---- dispatch --------------------------------------------------------------------------------------
void cullme_swiglu_forward(float *out, const float *gu, int64_t T, int64_t n) {
    const int path = simd_path();
    for (int64_t t = 0; t < T; t++) {
        const float *g = gu + t * 2 * n, *u = g + n;
        float *o = out + t * n;
        if (path == SIMD_AVX512) swiglu_forward_avx512(o, g, u, n);
        else if (path == SIMD_AVX2) swiglu_forward_avx2(o, g, u, n);
        else swiglu_forward_c(o, g, u, n);
    }
}

void cullme_swiglu_backward(float *dGU, const float *dAct, const float *gu, int64_t T, int64_t n) {
    const int path = simd_path();
    for (int64_t t = 0; t < T; t++) {
        const float *g = gu + t * 2 * n, *u = g + n, *da = dAct + t * n;
        float *dg = dGU + t * 2 * n, *du = dg + n;
        if (path == SIMD_AVX512) swiglu_backward_avx512(dg, du, da, g, u, n);
        else if (path == SIMD_AVX2) swiglu_backward_avx2(dg, du, da, g, u, n);
        else swiglu_backward_c(dg, du, da, g, u, n);
    }
}
