// Softmax of attention rows with a vectorised exp (see include/cullme_softmax.h and exp_simd.h).
//
// Why: at 2,048 tokens SmolLM2 needs ~1.1 billion exp() per sequence; glibc's scalar expf made the
// softmax the largest cost of long inputs. Every path evaluates the same FMA sequence lane by lane, so
// the paths agree bit for bit.
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#include "cullme_softmax.h"
#include <math.h>
#include <string.h>
#include <immintrin.h>
#include "exp_simd.h"

#define LANES 16

// ---- generic C ------------------------------------------------------------------------------
float cullme_exp_nonpositive(float x) {
    if (!(x >= EXP_MIN)) return 0.0f;
    float n = rintf(x * LOG2E);
    float r = fmaf(-n, LN2_HI, x);
    r = fmaf(-n, LN2_LO, r);
    float p = P0;
    p = fmaf(p, r, P1); p = fmaf(p, r, P2); p = fmaf(p, r, P3); p = fmaf(p, r, P4); p = fmaf(p, r, P5);
    float r2 = r * r;
    float y = fmaf(p, r2, r) + 1.0f;
    union { uint32_t u; float f; } scale = { .u = (uint32_t)((int32_t)n + 127) << 23 };
    return y * scale.f;
}

static float max_generic(const float *v, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

// Writes e^(v[i] - m) into v and adds it to lane (i mod 16) of sums.
static void exp_sum_generic(float *v, int64_t n, float m, float *sums) {
    for (int64_t i = 0; i < n; i++) {
        float e = cullme_exp_nonpositive(v[i] - m);
        v[i] = e;
        sums[i % LANES] += e;
    }
}

static void scale_generic(float *v, int64_t n, float s) {
    for (int64_t i = 0; i < n; i++) v[i] *= s;
}

// ---- AVX2 + FMA: 16 lanes as two 8-wide halves ------------------------------------------------

static A2 float max_avx2(const float *v, int64_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(v + i));
    float lanes[8];
    _mm256_storeu_ps(lanes, m);
    float r = max_generic(lanes, 8);
    for (; i < n; i++) r = v[i] > r ? v[i] : r;
    return r;
}

static A2 void exp_sum_avx2(float *v, int64_t n, float m, float *sums) {
    __m256 s0 = _mm256_loadu_ps(sums), s1 = _mm256_loadu_ps(sums + 8), mv = _mm256_set1_ps(m);
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(v + i), mv));
        __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(v + i + 8), mv));
        _mm256_storeu_ps(v + i, e0); _mm256_storeu_ps(v + i + 8, e1);
        s0 = _mm256_add_ps(s0, e0); s1 = _mm256_add_ps(s1, e1);
    }
    _mm256_storeu_ps(sums, s0); _mm256_storeu_ps(sums + 8, s1);
    // The tail keeps its lane (i is a multiple of 16 here).
    exp_sum_generic(v + i, n - i, m, sums);
}

static A2 void scale_avx2(float *v, int64_t n, float s) {
    __m256 sv = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(v + i, _mm256_mul_ps(_mm256_loadu_ps(v + i), sv));
    scale_generic(v + i, n - i, s);
}

// ---- AVX-512 -------------------------------------------------------------------------------------

static A5 float max_avx512(const float *v, int64_t n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(v + i));
    float r = _mm512_reduce_max_ps(m);
    for (; i < n; i++) r = v[i] > r ? v[i] : r;
    return r;
}

static A5 void exp_sum_avx512(float *v, int64_t n, float m, float *sums) {
    __m512 s = _mm512_loadu_ps(sums), mv = _mm512_set1_ps(m);
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(v + i), mv));
        _mm512_storeu_ps(v + i, e);
        s = _mm512_add_ps(s, e);
    }
    _mm512_storeu_ps(sums, s);
    exp_sum_generic(v + i, n - i, m, sums);
}

static A5 void scale_avx512(float *v, int64_t n, float s) {
    __m512 sv = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(v + i, _mm512_mul_ps(_mm512_loadu_ps(v + i), sv));
    scale_generic(v + i, n - i, s);
}

// ---- dispatch ---------------------------------------------------------------------------------
// v[0..n) = e^(v - max), the max returned, the sum in *sum (16 lane sums reduced in one fixed tree, the same
// on every path).
static float exp_shifted(float *v, int64_t n, float *sum) {
    float sums[LANES] = {0};
    const int path = simd_path(), avx512 = path == SIMD_AVX512, avx2 = path == SIMD_AVX2;
    float m = avx512 ? max_avx512(v, n) : avx2 ? max_avx2(v, n) : max_generic(v, n);
    if (avx512) exp_sum_avx512(v, n, m, sums);
    else if (avx2) exp_sum_avx2(v, n, m, sums);
    else exp_sum_generic(v, n, m, sums);
    for (int w = LANES / 2; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) sums[i] += sums[i + w];
    *sum = sums[0];
    return m;
}

static void scale(float *v, int64_t n, float s) {
    const int path = simd_path();
    if (path == SIMD_AVX512) scale_avx512(v, n, s);
    else if (path == SIMD_AVX2) scale_avx2(v, n, s);
    else scale_generic(v, n, s);
}

void cullme_softmax_range(float *row, int64_t count, int64_t begin, int64_t end) {
    if (begin < 0 || end > count || begin >= end) return;
    float sum;
    exp_shifted(row + begin, end - begin, &sum);
    scale(row + begin, end - begin, 1.0f / sum);
    memset(row, 0, (size_t)begin * sizeof(float));
    memset(row + end, 0, (size_t)(count - end) * sizeof(float));
}

float cullme_log_softmax_scaled(const float *row, int64_t n, float g, float *out) {
    if (n <= 0) return -INFINITY;
    if (out != row) memcpy(out, row, (size_t)n * sizeof(float));
    float sum;
    const float m = exp_shifted(out, n, &sum);
    scale(out, n, -g / sum);
    return m + logf(sum);
}
