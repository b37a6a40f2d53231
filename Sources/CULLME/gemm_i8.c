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
// operations, so every version gives the same bytes.
static void quantize_group_c(const float *xr, int32_t G, int8_t *qr, float *sx, float *xsum) {
    float amax = 0.0f;
    int finite = 1;
    for (int i = 0; i < G; i++) {
        if (!isfinite(xr[i])) finite = 0;
        else if (fabsf(xr[i]) > amax) amax = fabsf(xr[i]);
    }
    int32_t sum = 0;
    if (!finite || amax == 0.0f) {
        memset(qr, 0, (size_t)G);
        *sx = finite ? 0.0f : NAN;
    } else {
        const float d = amax / 127.0f, id = 1.0f / d;
        for (int i = 0; i < G; i++) {
            int q = (int)lrintf(xr[i] * id);
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            qr[i] = (int8_t)q;
            sum += q;
        }
        *sx = d;
    }
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
    if (bad || amax == 0.0f) {
        memset(qr, 0, (size_t)G);
        *sx = bad ? NAN : 0.0f;
        *xsum = 0.0f;
        return;
    }
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

static int current_path(void);
enum { PATH_GENERIC, PATH_AVX2, PATH_AVX_VNNI, PATH_AVX512_VNNI };

void cullme_i8_quantize_rows(const float *x, int64_t M, int64_t K, int32_t group, int8_t *xq, float *sx,
                             float *xsum) {
    const int64_t NG = K / group;
    void (*const quantize)(const float *, int32_t, int8_t *, float *, float *) =
        current_path() == PATH_AVX512_VNNI ? quantize_group_avx512 : quantize_group_c;
    for (int64_t m = 0; m < M; m++)
        for (int64_t g = 0; g < NG; g++)
            quantize(x + m * K + g * group, group, xq + m * K + g * group, sx + m * NG + g, xsum + m * NG + g);
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
} tile_args;

static inline int32_t load4(const int8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

static void tile_generic(const tile_args *a, int mr, int np) {
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

// AVX2 and AVX-VNNI: one panel in two 8-column halves, 2 rows at a time (16 YMM registers).
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

// u8 W x s8 x: VPMADDUBSW (pair sums in 16 bits: no saturation while u <= 128) then VPMADDWD by 1.
__attribute__((target("avx2"))) static inline __m256i dot_avx2(__m256i acc, __m256i w, __m256i x) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)));
}
__attribute__((target("avx2,avxvnni"))) static inline __m256i dot_avx_vnni(__m256i acc, __m256i w, __m256i x) {
    return _mm256_dpbusd_avx_epi32(acc, w, x);
}
YMM_TILE(tile_avx2, "avx2,fma", dot_avx2)
YMM_TILE(tile_avx_vnni, "avx2,fma,avxvnni", dot_avx_vnni)

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
static void tile_avx512_vnni(const tile_args *a, int mr, int np) {
    static void (*const inst[2][MR])(const tile_args *) = {{zmm_1x1, zmm_2x1, zmm_3x1, zmm_4x1},
                                                          {zmm_1x2, zmm_2x2, zmm_3x2, zmm_4x2}};
    inst[np - 1][mr - 1](a);
}

// ---- Dispatch --------------------------------------------------------------------------------------------
static const char *const path_names[] = {"generic", "avx2", "avx_vnni", "avx512_vnni"};
typedef void (*tile_fn)(const tile_args *, int, int);
static const tile_fn tiles[] = {tile_generic, tile_avx2, tile_avx_vnni, tile_avx512_vnni};
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
    // AVX2's 16-bit pair sums could saturate for u > 128 (Q8_0): such a matrix runs the plain C tile.
    const int path = current_path();
    const tile_fn tile = path == PATH_AVX2 && w->max_u > 128 ? tile_generic : tiles[path];
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
                                 full ? out + m0 * ldo + n0 : tail, full ? ldo : np * PANEL};
            tile(&a, mr, np);
            if (!full)
                for (int r = 0; r < mr; r++)
                    for (int64_t j = 0; j < width; j++) out[(m0 + r) * ldo + n0 + j] = tail[r * np * PANEL + j];
        }
        n0 += width;
    }
}
