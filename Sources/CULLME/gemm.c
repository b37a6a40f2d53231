// Deterministic FP32 GEMM for linear layers: out[M, N] = x[M, K] · W[N, K]ᵀ (+ bias).
// See include/cullme_gemm.h for the API and the determinism contract.
//
// How determinism is guaranteed (per output element, independent of batch / split / tile):
//  - Vector lanes run along n (output columns): lane j of an accumulator is exactly one output
//    element out[m, n]. x[m, k] is broadcast; W comes from the packed panel. No horizontal sums,
//    no split of k across lanes or accumulators, so the only reduction is the per-element chain
//        acc = 0; for k = 0, 1, ..., K-1: acc = fma(x[m,k], W[n,k], acc)
//    in increasing k, with single-rounding FMA on every path (_mm512/_mm256_fmadd_ps, fmaf).
//  - K-blocking (kc) splits that chain only by storing the float accumulator to `out` and
//    reloading it: exact, so the chain is unchanged whatever the block sizes are.
//  - Edge tiles (fewer rows than the micro-kernel height, fewer columns than the panel) run the
//    same kernel code with fewer rows / masked columns; every row and column follows the same chain.
//  - The bias is added once, after the last k: out = acc + bias[n] (one rounding).
// Hence rows are bit-identical for any M, position in the batch, N split, and across the three
// code paths (avx512, avx2, generic).
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#include "cullme_gemm.h"
#include "gemm_driver.h"
#include <math.h>
#include <string.h>
#include <cpuid.h>
#include <immintrin.h>

#define PANEL CULLME_GEMM_PANEL

// Cache blocking (results do not depend on these).
#ifndef KC_MAX
#define KC_MAX 576          // k-block: the x tile (MR x kc, 27 KB) stays in L1
#endif
#define MR_MAX 12           // tallest micro-kernel (AVX-512)

size_t cullme_gemm_packed_floats(int64_t N, int64_t K) {
    if (N <= 0 || K <= 0) return 0;
    return (size_t)((N + PANEL - 1) / PANEL) * PANEL * (size_t)K;
}

void cullme_gemm_pack(const float *w, int64_t N, int64_t K, float *packed) {
    int64_t np = (N + PANEL - 1) / PANEL;
    for (int64_t p = 0; p < np; p++) {
        float *dst = packed + p * PANEL * K;
        for (int64_t j = 0; j < PANEL; j++) {
            int64_t n = p * PANEL + j;
            if (n < N) {
                const float *src = w + n * K;
                for (int64_t k = 0; k < K; k++) dst[k * PANEL + j] = src[k];
            } else {
                for (int64_t k = 0; k < K; k++) dst[k * PANEL + j] = 0.0f;
            }
        }
    }
}

// x tile copy: xp[r * XS + k] = x[(m0 + r) * K + k0 + k] for r < mr, k < kc. A fixed row stride
// XS (not a multiple of 4 KiB: rows land in different L1 sets) lets the kernels address row r with
// a constant displacement from one pointer.
#define XS (KC_MAX + 16)
static void pack_x(const float *x, int64_t K, int64_t m0, int mr, int64_t k0, int64_t kc, void *tile) {
    float *xp = tile;
    for (int r = 0; r < mr; r++) memcpy(xp + r * XS, x + (m0 + r) * K + k0, (size_t)kc * sizeof(float));
}

// One micro-tile (gemm_kernel.tile): rows [0, mr) of the packed x tile times panels [0, nv) of W,
// ncols valid columns (<= nv * 16, > (nv - 1) * 16) of out/bias.

// ---------------------------------------------------------------------------------------------
// Generic C (fmaf): MR 4, one panel.
#define G_MR 4
static void tile_generic(int mr, int nv, const void *tile, const uint32_t *panels, int64_t pstride,
                         int64_t kc, float *out, int64_t ldo, int64_t ncols, const float *bias,
                         int first, int last) {
    const float *xp = tile, *w = (const float *)panels;
    (void)nv; (void)pstride;
    float acc[G_MR][PANEL];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < PANEL; j++)
            acc[r][j] = (first || j >= ncols) ? 0.0f : out[r * ldo + j];
    for (int64_t k = 0; k < kc; k++) {
        const float *wk = w + k * PANEL;
        for (int r = 0; r < mr; r++) {
            float a = xp[r * XS + k];
            for (int j = 0; j < PANEL; j++) acc[r][j] = fmaf(a, wk[j], acc[r][j]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < ncols; j++)
            out[r * ldo + j] = (last && bias) ? acc[r][j] + bias[j] : acc[r][j];
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA: 6 rows x 16 columns (12 ymm accumulators).
#define A2_MR 6
#define A2_TARGET __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) A2_TARGET __m256i a2_mask(int64_t c) {
    // lanes i < c set (c clipped to [0, 8])
    if (c > 8) c = 8;
    if (c < 0) c = 0;
    __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)c), iota);
}

static inline __attribute__((always_inline)) A2_TARGET void
k_avx2(const int MR, const float *xp, const float *w, int64_t kc, float *out, int64_t ldo,
       int64_t ncols, const float *bias, int first, int last) {
    __m256 acc[A2_MR][2];
    const int full = ncols >= PANEL;
    __m256i m0 = a2_mask(ncols), m1 = a2_mask(ncols - 8);
    if (first) {
        for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    } else if (full) {
        for (int r = 0; r < MR; r++) {
            acc[r][0] = _mm256_loadu_ps(out + r * ldo);
            acc[r][1] = _mm256_loadu_ps(out + r * ldo + 8);
        }
    } else {
        for (int r = 0; r < MR; r++) {
            acc[r][0] = _mm256_maskload_ps(out + r * ldo, m0);
            acc[r][1] = _mm256_maskload_ps(out + r * ldo + 8, m1);
        }
    }
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(w + k * PANEL);
        __m256 b1 = _mm256_loadu_ps(w + k * PANEL + 8);
        for (int r = 0; r < MR; r++) {
            __m256 a = _mm256_broadcast_ss(xp + r * XS + k);
            acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
        }
    }
    if (last && bias) {
        __m256 bb0, bb1;
        if (full) { bb0 = _mm256_loadu_ps(bias); bb1 = _mm256_loadu_ps(bias + 8); }
        else { bb0 = _mm256_maskload_ps(bias, m0); bb1 = _mm256_maskload_ps(bias + 8, m1); }
        for (int r = 0; r < MR; r++) {
            acc[r][0] = _mm256_add_ps(acc[r][0], bb0);
            acc[r][1] = _mm256_add_ps(acc[r][1], bb1);
        }
    }
    if (full) {
        for (int r = 0; r < MR; r++) {
            _mm256_storeu_ps(out + r * ldo, acc[r][0]);
            _mm256_storeu_ps(out + r * ldo + 8, acc[r][1]);
        }
    } else {
        for (int r = 0; r < MR; r++) {
            _mm256_maskstore_ps(out + r * ldo, m0, acc[r][0]);
            _mm256_maskstore_ps(out + r * ldo + 8, m1, acc[r][1]);
        }
    }
}

static A2_TARGET void tile_avx2(int mr, int nv, const void *tile, const uint32_t *panels, int64_t pstride,
                                int64_t kc, float *out, int64_t ldo, int64_t ncols,
                                const float *bias, int first, int last) {
    (void)nv; (void)pstride;
    const float *xp = tile, *w = (const float *)panels;
#define A2_CASE(R) case R: k_avx2(R, xp, w, kc, out, ldo, ncols, bias, first, last); break;
    switch (mr) {
        A2_CASE(1) A2_CASE(2) A2_CASE(3) A2_CASE(4) A2_CASE(5) A2_CASE(6)
    }
#undef A2_CASE
}

// ---------------------------------------------------------------------------------------------
// AVX-512F: 12 rows x 32 columns (2 panels, 24 zmm accumulators); 1 panel for an odd last panel.
#define A5_MR 12
#define A5_NV 2
#define A5_TARGET __attribute__((target("avx512f,avx512vl,avx512bw")))

static inline __attribute__((always_inline)) A5_TARGET __mmask16 a5_mask(int64_t c) {
    if (c >= 16) return (__mmask16)0xFFFF;
    if (c <= 0) return 0;
    return (__mmask16)((1u << c) - 1u);
}

static inline __attribute__((always_inline)) A5_TARGET void
k_avx512(const int MR, const int NV, const float *xp, const float *w, int64_t pstride, int64_t kc,
         float *out, int64_t ldo, int64_t ncols, const float *bias, int first, int last) {
    __m512 acc[A5_MR][A5_NV];
    __mmask16 mk[A5_NV];
    for (int j = 0; j < NV; j++) mk[j] = a5_mask(ncols - 16 * j);
    if (first) {
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NV; j++) acc[r][j] = _mm512_setzero_ps();
    } else {
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NV; j++) acc[r][j] = _mm512_maskz_loadu_ps(mk[j], out + r * ldo + 16 * j);
    }
    const float *w1 = w + pstride;
    for (int64_t k = 0; k < kc; k++) {
        __m512 b[A5_NV];
        b[0] = _mm512_loadu_ps(w + k * PANEL);
        if (NV > 1) b[1] = _mm512_loadu_ps(w1 + k * PANEL);
        for (int r = 0; r < MR; r++) {
            __m512 a = _mm512_set1_ps(xp[r * XS + k]);
            for (int j = 0; j < NV; j++) acc[r][j] = _mm512_fmadd_ps(a, b[j], acc[r][j]);
        }
    }
    if (last && bias) {
        for (int j = 0; j < NV; j++) {
            __m512 bb = _mm512_maskz_loadu_ps(mk[j], bias + 16 * j);
            for (int r = 0; r < MR; r++) acc[r][j] = _mm512_add_ps(acc[r][j], bb);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NV; j++) _mm512_mask_storeu_ps(out + r * ldo + 16 * j, mk[j], acc[r][j]);
}

static A5_TARGET void tile_avx512(int mr, int nv, const void *tile, const uint32_t *panels, int64_t pstride,
                                  int64_t kc, float *out, int64_t ldo, int64_t ncols,
                                  const float *bias, int first, int last) {
    const float *xp = tile, *w = (const float *)panels;
#define A5_CASE(R)                                                                              \
    case R:                                                                                     \
        if (nv == 2) k_avx512(R, 2, xp, w, pstride, kc, out, ldo, ncols, bias, first, last);   \
        else k_avx512(R, 1, xp, w, pstride, kc, out, ldo, ncols, bias, first, last);           \
        break;
    switch (mr) {
        A5_CASE(1) A5_CASE(2) A5_CASE(3) A5_CASE(4) A5_CASE(5) A5_CASE(6)
        A5_CASE(7) A5_CASE(8) A5_CASE(9) A5_CASE(10) A5_CASE(11) A5_CASE(12)
    }
#undef A5_CASE
}

// ---------------------------------------------------------------------------------------------
// Path selection.
enum { PATH_GENERIC = 0, PATH_AVX2 = 1, PATH_AVX512 = 2 };
static const char *const path_names[] = {"generic", "avx2", "avx512"};
static int g_path = -1;     // current path (atomic accesses)
static int g_best = -1;     // best supported path

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int detect_best(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return PATH_GENERIC;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return PATH_GENERIC;
    uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return PATH_GENERIC;  // XMM + YMM state enabled by the OS
    if (__get_cpuid_max(0, NULL) < 7) return PATH_GENERIC;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1, f512 = (b >> 16) & 1, bw512 = (b >> 30) & 1, vl512 = (b >> 31) & 1;
    if (f512 && bw512 && vl512 && fma && (xcr0 & 0xE6) == 0xE6) return PATH_AVX512;  // + opmask/ZMM
    if (avx2 && fma) return PATH_AVX2;
    return PATH_GENERIC;
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

const char *cullme_gemm_path(void) { return path_names[current_path()]; }

void cullme_gemm_force_path(const char *name) {
    int best = best_path();
    int want;
    if (name == NULL || strcmp(name, "auto") == 0) want = best;
    else if (strcmp(name, "avx512") == 0) want = PATH_AVX512;
    else if (strcmp(name, "avx2") == 0) want = PATH_AVX2;
    else if (strcmp(name, "generic") == 0) want = PATH_GENERIC;
    else return;
    if (want > best) return;  // not supported here
    __atomic_store_n(&g_path, want, __ATOMIC_RELAXED);
}

// ---------------------------------------------------------------------------------------------
// The blocking loop is gemm_driver.h's (shared with the bf16 GEMM), k-blocks of at most KC_MAX floats.
static const gemm_kernel kernels[] = {
    [PATH_GENERIC] = {G_MR, 1, 1, KC_MAX, pack_x, tile_generic},
    [PATH_AVX2] = {A2_MR, 1, 1, KC_MAX, pack_x, tile_avx2},
    [PATH_AVX512] = {A5_MR, A5_NV, 1, KC_MAX, pack_x, tile_avx512},
};

static void gemm_run(const gemm_kernel *kern, const float *x, int64_t M, int64_t K, const float *packed,
                     const gemm_wsource *ws, int64_t n_begin, int64_t n_end, float *out, int64_t ldo, const float *bias) {
    if (M <= 0 || n_end <= n_begin) return;
    if (K <= 0) {  // empty sum: 0 (+ bias)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = n_begin; n < n_end; n++) out[m * ldo + n] = bias ? 0.0f + bias[n] : 0.0f;
        return;
    }
    float xp[MR_MAX * XS] __attribute__((aligned(64)));
    gemm_drive(kern, x, M, K, (const uint32_t *)packed, ws, n_begin, n_end, out, ldo, bias, xp);
}

void cullme_gemm(const float *x, int64_t M, int64_t K, const float *packed, int64_t N,
                 int64_t n_begin, int64_t n_end, float *out, int64_t ldo, const float *bias) {
    (void)N;
    gemm_run(&kernels[current_path()], x, M, K, packed, NULL, n_begin, n_end, out, ldo, bias);
}

int cullme_gemm_path_index(void) { return current_path(); }

int64_t cullme_gemm_block_words(int64_t K) { return gemm_block_words(&kernels[current_path()], K); }

void cullme_gemm_from_blocks(const float *x, int64_t M, int64_t K, const gemm_wsource *ws,
                             int64_t n_begin, int64_t n_end, float *out, int64_t ldo, const float *bias) {
    gemm_run(&kernels[current_path()], x, M, K, NULL, ws, n_begin, n_end, out, ldo, bias);
}
