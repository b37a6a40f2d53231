// The integer GEMM of the int8 inference mode (contract in cullme_gemm_i8.h).
//
// Inner step, per row m, group g and 16-column panel: the int32 dots of 16 columns, 4 k at a time: the 4
// bytes qx[m, k .. k+3] (s8) broadcast against 16 columns x 4 k of W's u (u8) in one VPDPBUSD (AVX512-VNNI,
// two panels per tile so one broadcast feeds both; AVX-VNNI and AVX2's VPMADDUBSW + VPMADDWD do a panel in
// two 8-column halves). Then the float epilogue of the header, identical on every path.
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#include "cullme.h"
#include "cullme_gemm_i8.h"
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PANEL CULLME_GEMM_PANEL
#define MR 4  // rows per tile: each W load feeds 4 rows

// ---- Panels ------------------------------------------------------------------------------------------
static int64_t panels_of(int64_t n) { return (n + PANEL - 1) / PANEL; }

cullme_i8panels *cullme_i8panels_new(const cullme_qpanels *w) {
    if (!w || w->rows <= 0 || w->cols <= 0 || w->cols % w->group != 0 || w->group % 4 != 0) return NULL;
    const int64_t P = panels_of(w->rows), K = w->cols, G = w->group, NG = K / G;
    int min_q = 0, max_q = 0;
    for (int64_t i = 0; i < P * PANEL * K; i++) {
        if (w->q[i] < min_q) min_q = w->q[i];
        if (w->q[i] > max_q) max_q = w->q[i];
    }
    cullme_i8panels *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->rows = w->rows;
    v->cols = K;
    v->group = (int32_t)G;
    v->shift = -min_q;
    v->max_u = max_q - min_q;
    v->u4 = cullme_alloc((size_t)(P * PANEL * K));
    v->scale = cullme_alloc((size_t)(P * PANEL * NG) * sizeof(float));
    v->offset = cullme_alloc((size_t)(P * PANEL * NG) * sizeof(float));
    if (!v->u4 || !v->scale || !v->offset) { cullme_i8panels_free(v); return NULL; }
    for (int64_t i = 0; i < P * PANEL * NG; i++) {
        v->scale[i] = w->scale[i];
        // offset' = offset - c * scale (c = 0 leaves it, -0 included, unchanged).
        v->offset[i] = v->shift ? w->offset[i] - (float)v->shift * w->scale[i] : w->offset[i];
    }
    for (int64_t p = 0; p < P; p++) {
        const int8_t *src = w->q + p * PANEL * K;  // [k][16]
        uint8_t *dst = v->u4 + p * PANEL * K;      // [k / 4][16][4]
        for (int64_t k = 0; k < K; k++)
            for (int j = 0; j < PANEL; j++) dst[(k / 4) * PANEL * 4 + j * 4 + k % 4] = (uint8_t)(src[k * PANEL + j] + v->shift);
    }
    return v;
}

void cullme_i8panels_free(cullme_i8panels *w) {
    if (!w) return;
    free(w->u4);
    free(w->scale);
    free(w->offset);
    free(w);
}

size_t cullme_i8panels_bytes(const cullme_i8panels *w) {
    const size_t P = (size_t)panels_of(w->rows), NG = (size_t)(w->cols / w->group);
    return P * PANEL * (size_t)w->cols + 2 * P * PANEL * NG * sizeof(float);
}

// ---- Activations ----------------------------------------------------------------------------------------
// One group: amax, d = amax / 127, qx = round-to-nearest-even(x * (1 / d)) clamped to +-127 (lrintf and
// VCVTPS2DQ round alike under the default MXCSR), Σ qx. The AVX-512 and AVX2 versions do the same IEEE
// operations, so every version gives the same bytes (groups are multiples of 8 floats: 16 or 32).
// A group holding NaN or infinity (scale NaN: the NaN reaches the output) or only zeros (scale 0): qx = 0.
static void flat_group(int32_t G, int bad, int8_t *qr, float *sx, float *xsum) {
    memset(qr, 0, (size_t)G);
    *sx = bad ? NAN : 0.0f;
    *xsum = 0.0f;
}

static void quantize_group_c(const float *xr, int32_t G, int8_t *qr, float *sx, float *xsum) {
    float amax = 0.0f;
    int finite = 1;
    for (int i = 0; i < G; i++) {
        if (!isfinite(xr[i])) finite = 0;
        else if (fabsf(xr[i]) > amax) amax = fabsf(xr[i]);
    }
    if (!finite || amax == 0.0f) { flat_group(G, !finite, qr, sx, xsum); return; }
    int32_t sum = 0;
    const float d = amax / 127.0f, id = 1.0f / d;
    for (int i = 0; i < G; i++) {
        int q = (int)lrintf(xr[i] * id);
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        qr[i] = (int8_t)q;
        sum += q;
    }
    *sx = d;
    *xsum = (float)sum;
}

__attribute__((target("avx512f,avx512bw"))) static void quantize_group_avx512(const float *xr, int32_t G, int8_t *qr,
                                                                              float *sx, float *xsum) {
    const __m512 inf = _mm512_set1_ps(INFINITY);
    __m512 vmax = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int i = 0; i < G; i += 16) {
        const __m512 a = _mm512_abs_ps(_mm512_loadu_ps(xr + i));
        bad |= _mm512_cmp_ps_mask(a, inf, _CMP_NLT_UQ);  // inf or NaN
        vmax = _mm512_max_ps(vmax, a);
    }
    const float amax = _mm512_reduce_max_ps(vmax);
    if (bad || amax == 0.0f) { flat_group(G, bad != 0, qr, sx, xsum); return; }
    const float d = amax / 127.0f, id = 1.0f / d;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    __m512i vsum = _mm512_setzero_si512();
    for (int i = 0; i < G; i += 16) {
        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xr + i), vid));
        q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
        vsum = _mm512_add_epi32(vsum, q);
        _mm_storeu_si128((__m128i *)(qr + i), _mm512_cvtepi32_epi8(q));
    }
    *sx = d;
    *xsum = (float)_mm512_reduce_add_epi32(vsum);
}

__attribute__((target("avx2,fma"))) static void quantize_group_avx2(const float *xr, int32_t G, int8_t *qr, float *sx,
                                                                  float *xsum) {
    const __m256 inf = _mm256_set1_ps(INFINITY), abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vmax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    for (int i = 0; i < G; i += 8) {
        const __m256 a = _mm256_and_ps(_mm256_loadu_ps(xr + i), abs_mask);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));  // inf or NaN
        vmax = _mm256_max_ps(vmax, a);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    if (_mm256_movemask_ps(bad) || amax == 0.0f) { flat_group(G, _mm256_movemask_ps(bad) != 0, qr, sx, xsum); return; }
    const float d = amax / 127.0f, id = 1.0f / d;
    const __m256 vid = _mm256_set1_ps(id);
    const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
    __m256i vsum = _mm256_setzero_si256();
    for (int i = 0; i < G; i += 8) {
        __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xr + i), vid));
        q = _mm256_min_epi32(_mm256_max_epi32(q, lo), hi);
        vsum = _mm256_add_epi32(vsum, q);
        const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(qr + i), _mm_packs_epi16(q16, q16));
    }
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(vsum), _mm256_extracti128_si256(vsum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    *sx = d;
    *xsum = (float)_mm_cvtsi128_si32(s4);
}

static int current_path(void);
enum { PATH_GENERIC, PATH_AVX2, PATH_AVX_VNNI, PATH_AVX512_VNNI };

void cullme_i8_quantize_rows(const float *x, int64_t M, int64_t K, int32_t group, int8_t *xq, float *sx,
                             float *xsum) {
    const int64_t NG = K / group;
    const int path = current_path();
    void (*const quantize)(const float *, int32_t, int8_t *, float *, float *) =
        path == PATH_AVX512_VNNI ? quantize_group_avx512 : path == PATH_GENERIC ? quantize_group_c : quantize_group_avx2;
    for (int64_t m = 0; m < M; m++)
        for (int64_t g = 0; g < NG; g++)
            quantize(x + m * K + g * group, group, xq + m * K + g * group, sx + m * NG + g, xsum + m * NG + g);
}

// ---- Outliers ---------------------------------------------------------------------------------------------
// A row's sum of squares in 8 lanes (lane l sums k = l mod 8, product then sum, in increasing k) and one
// fixed tree over the lanes, then the tail: the same bits from the C and the AVX2 version.
static float lanes_total(const float s[8]) { return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7])); }

static float sum_squares_c(const float *x, int64_t K) {
    float s[8] = {0};
    int64_t k = 0;
    for (; k + 8 <= K; k += 8)
        for (int l = 0; l < 8; l++) s[l] = s[l] + x[k + l] * x[k + l];
    float t = lanes_total(s);
    for (; k < K; k++) t = t + x[k] * x[k];
    return t;
}

__attribute__((target("avx2"))) static float sum_squares_avx2(const float *x, int64_t K) {
    __m256 v = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        const __m256 a = _mm256_loadu_ps(x + k);
        v = _mm256_add_ps(v, _mm256_mul_ps(a, a));
    }
    float s[8];
    _mm256_storeu_ps(s, v);
    float t = lanes_total(s);
    for (; k < K; k++) t = t + x[k] * x[k];
    return t;
}

// Entries k0 .. k0 + n of a row: outliers to (k_idx, val), the rest to ir (outliers zeroed); returns the count.
static int64_t split_run_c(const float *xr, int64_t k0, int64_t n, float limit, float *ir, int32_t *k_idx, float *val) {
    int64_t found = 0;
    for (int64_t k = k0; k < k0 + n; k++) {
        const int out = fabsf(xr[k]) > limit;
        if (out) { k_idx[found] = (int32_t)k; val[found++] = xr[k]; }
        ir[k] = out ? 0.0f : xr[k];
    }
    return found;
}

// The same over a whole row, copying 8 entries at a time while none is an outlier (AVX2 compare).
__attribute__((target("avx2"))) static int64_t split_row_avx2(const float *xr, int64_t K, float limit, float *ir,
                                                             int32_t *k_idx, float *val) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), lim = _mm256_set1_ps(limit);
    int64_t n = 0, k = 0;
    for (; k + 8 <= K; k += 8) {
        const __m256 a = _mm256_loadu_ps(xr + k);
        if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(a, abs_mask), lim, _CMP_GT_OQ)))
            n += split_run_c(xr, k, 8, limit, ir, k_idx + n, val + n);
        else
            _mm256_storeu_ps(ir + k, a);
    }
    return n + split_run_c(xr, k, K - k, limit, ir, k_idx + n, val + n);
}

int64_t cullme_i8_split_outliers(const float *x, int64_t M, int64_t K, float *inliers, int64_t *start,
                                 int32_t *k_idx, float *val) {
    const int vector = current_path() != PATH_GENERIC;  // every SIMD path has AVX2
    int64_t n = 0;
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * K;
        const float ss = vector ? sum_squares_avx2(xr, K) : sum_squares_c(xr, K);
        float limit = CULLME_I8_OUTLIER_RMS * sqrtf(ss / (float)K);
        // A row holding NaN or infinity has a NaN or infinite limit: nothing moves (the quantiser makes it NaN).
        if (!isfinite(limit)) limit = INFINITY;
        start[m] = n;
        n += vector ? split_row_avx2(xr, K, limit, inliers + m * K, k_idx + n, val + n)
                    : split_run_c(xr, 0, K, limit, inliers + m * K, k_idx + n, val + n);
    }
    start[M] = n;
    return n;
}

// One row's outliers times columns [n0, n1) of panel p (n1 - n0 <= 16), plain C.
static void outliers_c(const int32_t *k_idx, const float *val, int64_t count, const cullme_i8panels *w,
                       int64_t p, int64_t n0, int64_t n1, float *out) {
    const int64_t K = w->cols, G = w->group, NG = K / G;
    for (int64_t n = n0; n < n1; n++) {
        const int j = (int)(n % PANEL);
        float acc = 0.0f;
        for (int64_t i = 0; i < count; i++) {
            const int64_t k = k_idx[i], at = p * PANEL * NG + (k / G) * PANEL + j;
            const float u = (float)w->u4[p * PANEL * K + (k / 4) * PANEL * 4 + j * 4 + k % 4];
            acc = fmaf(val[i], fmaf(w->scale[at], u, w->offset[at]), acc);
        }
        out[n] += acc;
    }
}

// The same for the 8 columns from n0 (a multiple of 8): u's byte k % 4 of each column's 4-byte word, shifted out.
__attribute__((target("avx2,fma"))) static void outliers_avx2_8(const int32_t *k_idx, const float *val, int64_t count,
                                                                const cullme_i8panels *w, int64_t n0, float *out) {
    const int64_t K = w->cols, G = w->group, NG = K / G, p = n0 / PANEL, h = (n0 % PANEL) / 8;
    const __m256i byte = _mm256_set1_epi32(0xff);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < count; i++) {
        const int64_t k = k_idx[i], at = p * PANEL * NG + (k / G) * PANEL + 8 * h;
        const __m256i words = _mm256_loadu_si256((const __m256i *)(w->u4 + p * PANEL * K + (k / 4) * PANEL * 4 + 32 * h));
        const __m256 u = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srl_epi32(words, _mm_cvtsi32_si128(8 * (int)(k % 4))), byte));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(val[i]), _mm256_fmadd_ps(_mm256_loadu_ps(w->scale + at), u, _mm256_loadu_ps(w->offset + at)), acc);
    }
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_loadu_ps(out), acc));
}

// The AVX2 correction of 64 columns from n0 for the rows of one block, by input column k: W's 64 values at k
// are made once (8 vectors) and added to every row with an outlier at k. The triples (k, row, value) come sorted
// by k, then row, so each row still adds its outliers in increasing k: the same chains as outliers_c.
__attribute__((target("avx2,fma"))) static void outliers_by_k_avx2(const int32_t *ks, int64_t n_ks, const int64_t *first,
                                                                   const int32_t *rows, const float *vals,
                                                                   const cullme_i8panels *w, int64_t n0, float *acc) {
    const int64_t K = w->cols, G = w->group, NG = K / G;
    const __m256i byte = _mm256_set1_epi32(0xff);
    for (int64_t i = 0; i < n_ks; i++) {
        const int64_t k = ks[i];
        const __m128i shift = _mm_cvtsi32_si128(8 * (int)(k % 4));
        __m256 wv[8];
        for (int b = 0; b < 8; b++) {
            const int64_t n = n0 + 8 * b, p = n / PANEL, h = (n % PANEL) / 8, at = p * PANEL * NG + (k / G) * PANEL + 8 * h;
            const __m256i words = _mm256_loadu_si256((const __m256i *)(w->u4 + p * PANEL * K + (k / 4) * PANEL * 4 + 32 * h));
            const __m256 u = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srl_epi32(words, shift), byte));
            wv[b] = _mm256_fmadd_ps(_mm256_loadu_ps(w->scale + at), u, _mm256_loadu_ps(w->offset + at));
        }
        for (int64_t j = first[k]; j < first[k + 1]; j++) {
            float *a = acc + (int64_t)rows[j] * 64;
            const __m256 v = _mm256_set1_ps(vals[j]);
            for (int b = 0; b < 8; b++) _mm256_storeu_ps(a + 8 * b, _mm256_fmadd_ps(v, wv[b], _mm256_loadu_ps(a + 8 * b)));
        }
    }
}

enum { OUTLIER_ROWS = 128 };  // rows per block of the by-k correction (its accumulators: 32 KB)

void cullme_gemm_i8_outliers(const int64_t *start, const int32_t *k_idx, const float *val, int64_t M,
                             const cullme_i8panels *w, int64_t n_begin, int64_t n_end, float *out, int64_t ldo) {
    const int vector = current_path() != PATH_GENERIC;  // every SIMD path has AVX2
    const int64_t K = w->cols, wide_end = vector ? n_begin + (n_end - n_begin) / 64 * 64 : n_begin;
    if (wide_end > n_begin) {
        // Per block of rows: its outliers sorted by k (counting sort), then 64 columns at a time.
        const int64_t most = cullme_i8_outliers_max(OUTLIER_ROWS, K);
        int64_t *first = malloc(sizeof(int64_t) * (size_t)(K + 2));
        int32_t *ks = malloc(sizeof(int32_t) * (size_t)K), *rows = malloc(sizeof(int32_t) * (size_t)most);
        float *vals = malloc(sizeof(float) * (size_t)most), *acc = malloc(sizeof(float) * OUTLIER_ROWS * 64);
        if (!first || !ks || !rows || !vals || !acc) abort();  // a few hundred KB
        for (int64_t m0 = 0; m0 < M; m0 += OUTLIER_ROWS) {
            const int64_t m1 = m0 + OUTLIER_ROWS < M ? m0 + OUTLIER_ROWS : M;
            if (start[m1] == start[m0]) continue;
            memset(first, 0, sizeof(int64_t) * (size_t)(K + 2));
            for (int64_t i = start[m0]; i < start[m1]; i++) first[k_idx[i] + 2]++;
            int64_t n_ks = 0;
            for (int64_t k = 0; k < K; k++) {
                if (first[k + 2]) ks[n_ks++] = (int32_t)k;
                first[k + 2] += first[k + 1];
            }
            // first[k + 1] is now where k's triples start; filling advances it to where they end (= first[k + 2]'s start).
            for (int64_t m = m0; m < m1; m++)
                for (int64_t i = start[m]; i < start[m + 1]; i++) {
                    const int64_t at = first[k_idx[i] + 1]++;
                    rows[at] = (int32_t)(m - m0);
                    vals[at] = val[i];
                }
            for (int64_t n0 = n_begin; n0 < wide_end; n0 += 64) {
                memset(acc, 0, sizeof(float) * (size_t)(m1 - m0) * 64);
                outliers_by_k_avx2(ks, n_ks, first, rows, vals, w, n0, acc);
                for (int64_t m = m0; m < m1; m++)
                    if (start[m + 1] > start[m])
                        for (int j = 0; j < 64; j++) out[m * ldo + n0 + j] += acc[(m - m0) * 64 + j];
            }
        }
        free(first); free(ks); free(rows); free(vals); free(acc);
    }
    for (int64_t m = 0; m < M; m++) {  // the columns left: all of them on the plain C path
        const int64_t count = start[m + 1] - start[m];
        if (count == 0) continue;
        const int32_t *ki = k_idx + start[m];
        const float *vi = val + start[m];
        float *row = out + m * ldo;
        int64_t n0 = wide_end;
        for (; vector && n0 + 8 <= n_end; n0 += 8) outliers_avx2_8(ki, vi, count, w, n0, row + n0);
        for (; n0 < n_end; n0 += PANEL - n0 % PANEL) {  // the plain C path, and a ragged last panel
            const int64_t n1 = n0 + PANEL - n0 % PANEL < n_end ? n0 + PANEL - n0 % PANEL : n_end;
            outliers_c(ki, vi, count, w, n0 / PANEL, n0, n1, row);
        }
    }
}

// ---- Kernels: one tile of `mr` rows x `np` panels ---------------------------------------------------------
typedef struct {
    const int8_t *xq;    // row 0 of the tile
    const float *sx;     // [mr][NG]
    const float *xsum;   // [mr][NG]
    int64_t K, NG, G;
    const uint8_t *u4;   // the tile's first panel; the next one 16 * K bytes on
    const float *scale, *offset;  // the first panel's; the next one 16 * NG floats on
    const float *bias;   // the tile's first column's, or NULL
    float *dst;          // row r, column j of the tile at dst[r * ldd + j] (bias added)
    int64_t ldd;
    int64_t steps16;     // AVX2: steps of 4 k whose pair sums add up in 16 bits without overflow (avx2_steps16)
    int32_t shift;       // W's c (u = q + c): the AVX2 signed variant multiplies q and adds c * Σ qx back
} tile_args;

static inline int32_t load4(const int8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

static void tile_i8_generic(const tile_args *a, int mr, int np) {
    for (int r = 0; r < mr; r++)
        for (int pp = 0; pp < np; pp++) {
            const uint8_t *u4 = a->u4 + pp * PANEL * a->K;
            const float *sc = a->scale + pp * PANEL * a->NG, *of = a->offset + pp * PANEL * a->NG;
            float acc[PANEL] = {0};
            for (int64_t g = 0; g < a->NG; g++) {
                int32_t d[PANEL] = {0};
                for (int64_t k = g * a->G; k < (g + 1) * a->G; k++) {
                    const int32_t xv = a->xq[r * a->K + k];
                    const uint8_t *wu = u4 + (k / 4) * PANEL * 4 + k % 4;
                    for (int j = 0; j < PANEL; j++) d[j] += xv * wu[j * 4];
                }
                const float s = a->xsum[r * a->NG + g], sxv = a->sx[r * a->NG + g];
                for (int j = 0; j < PANEL; j++) {
                    float t = (float)d[j] * sc[g * PANEL + j];
                    t = fmaf(of[g * PANEL + j], s, t);
                    acc[j] = fmaf(t, sxv, acc[j]);
                }
            }
            for (int j = 0; j < PANEL; j++)
                a->dst[r * a->ldd + pp * PANEL + j] = a->bias ? acc[j] + a->bias[pp * PANEL + j] : acc[j];
        }
}

// AVX-VNNI: one panel in two 8-column halves, 2 rows at a time (16 YMM registers).
#define YMM_TILE(NAME, TARGET, DOT)                                                                              \
    __attribute__((target(TARGET))) static void NAME(const tile_args *a, int mr, int np) {                    \
        for (int pp = 0; pp < np; pp++) {                                                                       \
            const uint8_t *u4 = a->u4 + pp * PANEL * a->K;                                                      \
            const float *sc = a->scale + pp * PANEL * a->NG, *of = a->offset + pp * PANEL * a->NG;              \
            for (int r0 = 0; r0 < mr; r0 += 2) {                                                                \
                const int rr = mr - r0 < 2 ? mr - r0 : 2;                                                       \
                __m256 acc[2][2] = {{_mm256_setzero_ps(), _mm256_setzero_ps()}, {_mm256_setzero_ps(), _mm256_setzero_ps()}}; \
                for (int64_t g = 0; g < a->NG; g++) {                                                           \
                    __m256i d[2][2] = {{_mm256_setzero_si256(), _mm256_setzero_si256()},                        \
                                       {_mm256_setzero_si256(), _mm256_setzero_si256()}};                       \
                    for (int64_t k = g * a->G; k < (g + 1) * a->G; k += 4) {                                    \
                        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(u4 + (k / 4) * PANEL * 4));     \
                        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(u4 + (k / 4) * PANEL * 4 + 32));\
                        for (int r = 0; r < rr; r++) {                                                          \
                            const __m256i xv = _mm256_set1_epi32(load4(a->xq + (r0 + r) * a->K + k));          \
                            d[r][0] = DOT(d[r][0], w0, xv);                                                     \
                            d[r][1] = DOT(d[r][1], w1, xv);                                                     \
                        }                                                                                       \
                    }                                                                                           \
                    for (int r = 0; r < rr; r++) {                                                              \
                        const __m256 s = _mm256_set1_ps(a->xsum[(r0 + r) * a->NG + g]);                         \
                        const __m256 sxv = _mm256_set1_ps(a->sx[(r0 + r) * a->NG + g]);                         \
                        for (int h = 0; h < 2; h++) {                                                           \
                            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(d[r][h]), _mm256_loadu_ps(sc + g * PANEL + 8 * h)); \
                            t = _mm256_fmadd_ps(_mm256_loadu_ps(of + g * PANEL + 8 * h), s, t);                 \
                            acc[r][h] = _mm256_fmadd_ps(t, sxv, acc[r][h]);                                     \
                        }                                                                                       \
                    }                                                                                           \
                }                                                                                               \
                for (int r = 0; r < rr; r++)                                                                    \
                    for (int h = 0; h < 2; h++) {                                                               \
                        __m256 v = acc[r][h];                                                                   \
                        if (a->bias) v = _mm256_add_ps(v, _mm256_loadu_ps(a->bias + pp * PANEL + 8 * h));       \
                        _mm256_storeu_ps(a->dst + (r0 + r) * a->ldd + pp * PANEL + 8 * h, v);                   \
                    }                                                                                           \
            }                                                                                                   \
        }                                                                                                       \
    }

__attribute__((target("avx2,avxvnni"))) static inline __m256i dot_avx_vnni(__m256i acc, __m256i w, __m256i x) {
    return _mm256_dpbusd_avx_epi32(acc, w, x);
}
YMM_TILE(tile_i8_avx_vnni, "avx2,fma,avxvnni", dot_avx_vnni)

// AVX2 has no 32-bit dot product: VPMADDUBSW gives u8 W x s8 x pair sums in 16 bits, which add up in 16 bits
// (VPADDW, off the multiply ports) for `steps16` steps of 4 k before one VPMADDWD by 1 widens them: for Q4
// weights (u <= 15) that is a whole group of 32, half the multiply-port work of widening every step. A 16-bit
// lane gains at most 2 * 127 * max_u a step, so steps16 = 32767 / (254 * max_u) steps cannot overflow.
// Wider integers (Q8_0: u up to 255, one pair sum could saturate) take the signed variant: q = u - c back
// in 8 bits, VPMADDUBSW(|qx|, sign(q, qx)) = qx * q pairwise (|pair| <= 2 * 127 * 127, widened every step),
// and D = Σ qx * q + c * Σ qx; it needs q >= -127 (sign(-128) does not negate).
// mr, whole_group (0, or the group size when it is a constant: a whole group adds up in 16 bits, or signed_w)
// and signed_w are constants in each instance, so the accumulators stay in registers and a group's loop unrolls.
__attribute__((target("avx2,fma"), always_inline)) static inline void
ymm_avx2_tile(const tile_args *a, const int mr, const int whole_group, const int signed_w) {
    const int64_t G = whole_group ? whole_group : a->G;
    const __m256i c8 = _mm256_set1_epi8((char)a->shift);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[MR][2];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t g = 0; g < a->NG; g++) {
        __m256i d[MR][2];
        for (int r = 0; r < mr; r++) d[r][0] = d[r][1] = _mm256_setzero_si256();
        if (signed_w)
            for (int64_t k = g * G; k < (g + 1) * G; k += 4) {
                const __m256i w0 = _mm256_sub_epi8(_mm256_loadu_si256((const __m256i *)(a->u4 + k * PANEL)), c8);
                const __m256i w1 = _mm256_sub_epi8(_mm256_loadu_si256((const __m256i *)(a->u4 + k * PANEL + 32)), c8);
                for (int r = 0; r < mr; r++) {
                    const __m256i xv = _mm256_set1_epi32(load4(a->xq + r * a->K + k)), ax = _mm256_abs_epi8(xv);
                    d[r][0] = _mm256_add_epi32(d[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w0, xv)), ones));
                    d[r][1] = _mm256_add_epi32(d[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w1, xv)), ones));
                }
            }
        const int64_t chunk = whole_group ? G : 4 * a->steps16;
        for (int64_t k0 = g * G; !signed_w && k0 < (g + 1) * G; k0 += chunk) {
            const int64_t k1 = k0 + chunk < (g + 1) * G ? k0 + chunk : (g + 1) * G;
            __m256i s16[MR][2];
            for (int r = 0; r < mr; r++) s16[r][0] = s16[r][1] = _mm256_setzero_si256();
            for (int64_t k = k0; k < k1; k += 4) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(a->u4 + k * PANEL));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(a->u4 + k * PANEL + 32));
                for (int r = 0; r < mr; r++) {
                    const __m256i xv = _mm256_set1_epi32(load4(a->xq + r * a->K + k));
                    s16[r][0] = _mm256_add_epi16(s16[r][0], _mm256_maddubs_epi16(w0, xv));
                    s16[r][1] = _mm256_add_epi16(s16[r][1], _mm256_maddubs_epi16(w1, xv));
                }
            }
            for (int r = 0; r < mr; r++)
                for (int h = 0; h < 2; h++) d[r][h] = _mm256_add_epi32(d[r][h], _mm256_madd_epi16(s16[r][h], ones));
        }
        if (signed_w)
            for (int r = 0; r < mr; r++) {
                const __m256i cx = _mm256_set1_epi32(a->shift * (int32_t)a->xsum[r * a->NG + g]);
                d[r][0] = _mm256_add_epi32(d[r][0], cx);
                d[r][1] = _mm256_add_epi32(d[r][1], cx);
            }
        for (int h = 0; h < 2; h++) {
            const __m256 sc = _mm256_loadu_ps(a->scale + g * PANEL + 8 * h), of = _mm256_loadu_ps(a->offset + g * PANEL + 8 * h);
            for (int r = 0; r < mr; r++) {
                __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(d[r][h]), sc);
                t = _mm256_fmadd_ps(of, _mm256_set1_ps(a->xsum[r * a->NG + g]), t);
                acc[r][h] = _mm256_fmadd_ps(t, _mm256_set1_ps(a->sx[r * a->NG + g]), acc[r][h]);
            }
        }
    }
    for (int r = 0; r < mr; r++)
        for (int h = 0; h < 2; h++) {
            __m256 v = acc[r][h];
            if (a->bias) v = _mm256_add_ps(v, _mm256_loadu_ps(a->bias + 8 * h));
            _mm256_storeu_ps(a->dst + r * a->ldd + 8 * h, v);
        }
}

#define AVX2_INSTANCE(MRV, WHOLE, SIGNED)                                                                  \
    __attribute__((target("avx2,fma"))) static void avx2_##MRV##_##WHOLE##_##SIGNED(const tile_args *a) { \
        ymm_avx2_tile(a, MRV, WHOLE, SIGNED);                                                              \
    }
#define AVX2_INSTANCES(WHOLE, SIGNED) AVX2_INSTANCE(1, WHOLE, SIGNED) AVX2_INSTANCE(2, WHOLE, SIGNED) \
    AVX2_INSTANCE(3, WHOLE, SIGNED) AVX2_INSTANCE(4, WHOLE, SIGNED)
AVX2_INSTANCES(0, 0) AVX2_INSTANCES(16, 0) AVX2_INSTANCES(32, 0) AVX2_INSTANCES(0, 1) AVX2_INSTANCES(32, 1)
static void tile_i8_avx2(const tile_args *a, int mr, int np) {
    static void (*const inst[5][MR])(const tile_args *) = {{avx2_1_0_0, avx2_2_0_0, avx2_3_0_0, avx2_4_0_0},
                                                          {avx2_1_16_0, avx2_2_16_0, avx2_3_16_0, avx2_4_16_0},
                                                          {avx2_1_32_0, avx2_2_32_0, avx2_3_32_0, avx2_4_32_0},
                                                          {avx2_1_0_1, avx2_2_0_1, avx2_3_0_1, avx2_4_0_1},
                                                          {avx2_1_32_1, avx2_2_32_1, avx2_3_32_1, avx2_4_32_1}};
    // A whole group in 16 bits (Q4 weights), or the signed variant's group of 32 (Q8_0): the group size as a
    // constant, so its loop unrolls.
    const int whole = 4 * a->steps16 >= a->G, g32 = a->G == 32;
    const int variant = a->steps16 == 0 ? (g32 ? 4 : 3) : whole && a->G == 16 ? 1 : whole && g32 ? 2 : 0;
    void (*const f)(const tile_args *) = inst[variant][mr - 1];
    for (int pp = 0; pp < np; pp++) {  // one panel at a time
        tile_args p = *a;
        p.u4 += pp * PANEL * a->K;
        p.scale += pp * PANEL * a->NG;
        p.offset += pp * PANEL * a->NG;
        if (p.bias) p.bias += pp * PANEL;
        p.dst += pp * PANEL;
        f(&p);
    }
}

// The AVX2 path's 16-bit run length for W (0: a single pair sum can saturate, u > 129: the signed variant).
static int64_t avx2_steps16(const cullme_i8panels *w) {
    return w->max_u == 0 ? w->group / 4 : 32767 / (254 * (int64_t)w->max_u);
}

// AVX512-VNNI: mr rows x np panels, 16 columns x 4 k (64 bytes) per VPDPBUSD; the x broadcast is shared by
// the np panels. mr and np are constants in each instance (the switch below), so the accumulators (up to 8
// int32 and 8 float) stay in registers.
__attribute__((target("avx512f,avx512bw,avx512vnni,fma"), always_inline)) static inline void
zmm_tile(const tile_args *a, const int mr, const int np) {
    __m512 acc[MR][2];
    for (int r = 0; r < mr; r++)
        for (int pp = 0; pp < np; pp++) acc[r][pp] = _mm512_setzero_ps();
    for (int64_t g = 0; g < a->NG; g++) {
        __m512i d[MR][2];
        for (int r = 0; r < mr; r++)
            for (int pp = 0; pp < np; pp++) d[r][pp] = _mm512_setzero_si512();
        for (int64_t k = g * a->G; k < (g + 1) * a->G; k += 4) {
            __m512i wv[2];
            for (int pp = 0; pp < np; pp++)
                wv[pp] = _mm512_loadu_si512((const void *)(a->u4 + pp * PANEL * a->K + (k / 4) * PANEL * 4));
            for (int r = 0; r < mr; r++) {
                const __m512i xv = _mm512_set1_epi32(load4(a->xq + r * a->K + k));
                for (int pp = 0; pp < np; pp++) d[r][pp] = _mm512_dpbusd_epi32(d[r][pp], wv[pp], xv);
            }
        }
        for (int pp = 0; pp < np; pp++) {
            const __m512 sc = _mm512_loadu_ps(a->scale + pp * PANEL * a->NG + g * PANEL);
            const __m512 of = _mm512_loadu_ps(a->offset + pp * PANEL * a->NG + g * PANEL);
            for (int r = 0; r < mr; r++) {
                __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(d[r][pp]), sc);
                t = _mm512_fmadd_ps(of, _mm512_set1_ps(a->xsum[r * a->NG + g]), t);
                acc[r][pp] = _mm512_fmadd_ps(t, _mm512_set1_ps(a->sx[r * a->NG + g]), acc[r][pp]);
            }
        }
    }
    for (int r = 0; r < mr; r++)
        for (int pp = 0; pp < np; pp++) {
            __m512 v = acc[r][pp];
            if (a->bias) v = _mm512_add_ps(v, _mm512_loadu_ps(a->bias + pp * PANEL));
            _mm512_storeu_ps(a->dst + r * a->ldd + pp * PANEL, v);
        }
}

#define ZMM_INSTANCE(MRV, NPV)                                                                            \
    __attribute__((target("avx512f,avx512bw,avx512vnni,fma"))) static void zmm_##MRV##x##NPV(const tile_args *a) { \
        zmm_tile(a, MRV, NPV);                                                                            \
    }
ZMM_INSTANCE(1, 1) ZMM_INSTANCE(2, 1) ZMM_INSTANCE(3, 1) ZMM_INSTANCE(4, 1)
ZMM_INSTANCE(1, 2) ZMM_INSTANCE(2, 2) ZMM_INSTANCE(3, 2) ZMM_INSTANCE(4, 2)
static void tile_i8_avx512_vnni(const tile_args *a, int mr, int np) {
    static void (*const inst[2][MR])(const tile_args *) = {{zmm_1x1, zmm_2x1, zmm_3x1, zmm_4x1},
                                                          {zmm_1x2, zmm_2x2, zmm_3x2, zmm_4x2}};
    inst[np - 1][mr - 1](a);
}

// ---- Dispatch --------------------------------------------------------------------------------------------
static const char *const path_names[] = {"generic", "avx2", "avx_vnni", "avx512_vnni"};
typedef void (*tile_fn)(const tile_args *, int, int);
static const tile_fn tiles[] = {tile_i8_generic, tile_i8_avx2, tile_i8_avx_vnni, tile_i8_avx512_vnni};
static int g_best = -1, g_path = -1, g_avx_vnni = -1;  // g_avx_vnni: the CPU has AVX-VNNI (whatever is best)
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int detect_best(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return PATH_GENERIC;
    const int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !fma || __get_cpuid_max(0, NULL) < 7) return PATH_GENERIC;
    const uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return PATH_GENERIC;  // XMM + YMM state
    __cpuid_count(7, 0, a, b, c, d);
    const int leaf7_max = (int)a;
    const int avx2 = (b >> 5) & 1, f512 = (b >> 16) & 1, bw512 = (b >> 30) & 1, vnni512 = (c >> 11) & 1;
    int avx_vnni = 0;
    if (avx2 && leaf7_max >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        avx_vnni = (a >> 4) & 1;
    }
    __atomic_store_n(&g_avx_vnni, avx_vnni, __ATOMIC_RELAXED);
    if (f512 && bw512 && vnni512 && (xcr0 & 0xE6) == 0xE6) return PATH_AVX512_VNNI;
    if (!avx2) return PATH_GENERIC;
    return avx_vnni ? PATH_AVX_VNNI : PATH_AVX2;
}

static int best_path(void) {
    int b = __atomic_load_n(&g_best, __ATOMIC_RELAXED);
    if (b < 0) { b = detect_best(); __atomic_store_n(&g_best, b, __ATOMIC_RELAXED); }
    return b;
}

static int current_path(void) {
    int p = __atomic_load_n(&g_path, __ATOMIC_RELAXED);
    if (p < 0) { p = best_path(); __atomic_store_n(&g_path, p, __ATOMIC_RELAXED); }
    return p;
}

const char *cullme_gemm_i8_path(void) { return path_names[current_path()]; }

void cullme_gemm_i8_force_path(const char *name) {
    const int best = best_path();
    int want = -1;
    if (name == NULL || strcmp(name, "auto") == 0) want = best;
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, path_names[i]) == 0) want = i;
    // AVX-VNNI is not implied by AVX512-VNNI (a different encoding), so it runs only where detected.
    if (want < 0 || want > best || (want == PATH_AVX_VNNI && !__atomic_load_n(&g_avx_vnni, __ATOMIC_RELAXED))) return;
    __atomic_store_n(&g_path, want, __ATOMIC_RELAXED);
}

void cullme_gemm_i8(const int8_t *xq, const float *sx, const float *xsum, int64_t M, const cullme_i8panels *w,
                    int64_t n_begin, int64_t n_end, float *out, int64_t ldo, const float *bias) {
    // AVX2 multiplies u > 129 (Q8_0) as signed q, which must be >= -127 (c <= 127); otherwise plain C.
    const int path = current_path();
    const int64_t steps16 = avx2_steps16(w);
    const tile_fn tile = path == PATH_AVX2 && steps16 == 0 && w->shift > 127 ? tile_i8_generic : tiles[path];
    const int64_t K = w->cols, G = w->group, NG = K / G;
    float tail[MR * 2 * PANEL] __attribute__((aligned(64)));
    float tail_bias[2 * PANEL];
    for (int64_t n0 = n_begin; n0 < n_end;) {
        const int64_t p = n0 / PANEL;
        const int np = n_end - n0 > PANEL ? 2 : 1;
        const int64_t width = n_end - n0 < np * PANEL ? n_end - n0 : np * PANEL;
        // A full tile is written in place; the last, narrower one through `tail` (bias padded with zeros).
        const int full = width == np * PANEL;
        if (!full && bias)
            for (int j = 0; j < np * PANEL; j++) tail_bias[j] = j < width ? bias[n0 + j] : 0.0f;
        for (int64_t m0 = 0; m0 < M; m0 += MR) {
            const int mr = (int)(M - m0 < MR ? M - m0 : MR);
            const tile_args a = {xq + m0 * K, sx + m0 * NG, xsum + m0 * NG, K, NG, G, w->u4 + p * PANEL * K,
                                 w->scale + p * PANEL * NG, w->offset + p * PANEL * NG,
                                 bias ? (full ? bias + n0 : tail_bias) : NULL,
                                 full ? out + m0 * ldo + n0 : tail, full ? ldo : np * PANEL, steps16, w->shift};
            tile(&a, mr, np);
            if (!full)
                for (int r = 0; r < mr; r++)
                    for (int64_t j = 0; j < width; j++) out[(m0 + r) * ldo + n0 + j] = tail[r * np * PANEL + j];
        }
        n0 += width;
    }
}
