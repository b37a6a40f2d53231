// BF16 GEMM for the opt-in fast inference mode: out[M, N] = x[M, K] · W[N, K]ᵀ (+ bias), operands
// rounded to bfloat16, products summed in float32 by VDPBF16PS. See include/cullme_gemm_bf16.h.
//
// The same blocking loop as gemm.c (gemm_driver.h: k-blocks > column blocks in L2 > row tiles in L1 >
// 12 x 32 micro-tiles) with k counted in pairs: one 32-bit word of a packed panel holds W[n, 2q], W[n, 2q+1]; one word of
// the x tile holds x[m, 2q], x[m, 2q+1] (converted from float32 once per tile). Lanes run along n and
// every element has one accumulation chain over q, so a row's bits depend on that row only.
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#include "cullme_gemm_bf16.h"
#include "gemm_driver.h"
#include <cpuid.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define PANEL 16
#define KP_MAX 576                // k pairs per block: the x tile (12 x 576 words, 27 KB) stays in L1
#define MR 12                     // rows per micro-tile
#define NV 2                      // panels per micro-tile (32 columns): 24 zmm accumulators
#define XS (KP_MAX + 16)          // x tile row stride in words (not a multiple of 4 KiB)

uint16_t cullme_fp32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu)) return (uint16_t)((u >> 16) | 0x0040u);
    if ((u & 0x7F800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);  // zero / subnormal -> signed zero
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float bf16_to_fp32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

size_t cullme_gemm_bf16_packed_words(int64_t N, int64_t K) {
    if (N <= 0 || K <= 0) return 0;
    return (size_t)((N + PANEL - 1) / PANEL) * PANEL * (size_t)((K + 1) / 2);
}

void cullme_gemm_bf16_pack(const float *w, int64_t N, int64_t K, uint32_t *packed) {
    const int64_t KP = (K + 1) / 2, np = (N + PANEL - 1) / PANEL;
    for (int64_t p = 0; p < np; p++) {
        uint32_t *dst = packed + p * PANEL * KP;
        for (int64_t j = 0; j < PANEL; j++) {
            const int64_t n = p * PANEL + j;
            for (int64_t q = 0; q < KP; q++) {
                uint32_t word = 0;
                if (n < N) {
                    const float *row = w + n * K;
                    word = cullme_fp32_to_bf16(row[2 * q]);
                    if (2 * q + 1 < K) word |= (uint32_t)cullme_fp32_to_bf16(row[2 * q + 1]) << 16;
                }
                dst[q * PANEL + j] = word;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch: the kernel runs only when CPUID and XCR0 say the instructions and ZMM state are there.
static int g_supported = -1;  // CPU + OS (atomic accesses)
static int g_disabled = -1;   // forced off (env at first use, or cullme_gemm_bf16_disable)

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!((c >> 27) & 1)) return 0;                   // OSXSAVE: xgetbv is allowed
    if ((read_xcr0() & 0xE6) != 0xE6) return 0;       // XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    const int f512 = (b >> 16) & 1, bw512 = (b >> 30) & 1, vl512 = (b >> 31) & 1;
    if (!(f512 && bw512 && vl512) || a < 1) return 0;  // a: highest subleaf of leaf 7
    __cpuid_count(7, 1, a, b, c, d);
    return (a >> 5) & 1;                              // AVX512_BF16
}

static int supported(void) {
    int s = __atomic_load_n(&g_supported, __ATOMIC_RELAXED);
    if (s < 0) { s = detect(); __atomic_store_n(&g_supported, s, __ATOMIC_RELAXED); }
    return s;
}

static int disabled(void) {
    int s = __atomic_load_n(&g_disabled, __ATOMIC_RELAXED);
    if (s < 0) {
        const char *e = getenv("ULLME_DISABLE_BF16");
        s = e != NULL && strcmp(e, "1") == 0;
        __atomic_store_n(&g_disabled, s, __ATOMIC_RELAXED);
    }
    return s;
}

int cullme_gemm_bf16_available(void) { return supported() && !disabled(); }

const char *cullme_gemm_bf16_path(void) {
    if (!supported()) return "exact fallback: CPU has no AVX512_BF16";
    if (disabled()) return "exact fallback: AVX512_BF16 disabled";
    return "avx512_bf16";
}

void cullme_gemm_bf16_disable(int off) { __atomic_store_n(&g_disabled, off ? 1 : 0, __ATOMIC_RELAXED); }

// ---------------------------------------------------------------------------------------------
// Plain C emulation of the kernel's sums (VDPBF16PS adds the odd product, then the even one; bf16
// products are exact in float32). Runs only when the instruction may not.
static void gemm_emulated(const float *x, int64_t M, int64_t K, const uint32_t *packed, int64_t n_begin,
                          int64_t n_end, float *out, int64_t ldo, const float *bias) {
    const int64_t KP = (K + 1) / 2;
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * K;
        for (int64_t n = n_begin; n < n_end; n++) {
            const uint32_t *wp = packed + (n / PANEL) * PANEL * KP + n % PANEL;
            float acc = 0.0f;
            for (int64_t q = 0; q < KP; q++) {
                const uint32_t word = wp[q * PANEL];
                const float x0 = bf16_to_fp32(cullme_fp32_to_bf16(xr[2 * q]));
                const float x1 = 2 * q + 1 < K ? bf16_to_fp32(cullme_fp32_to_bf16(xr[2 * q + 1])) : 0.0f;
                acc = acc + x1 * bf16_to_fp32((uint16_t)(word >> 16));
                acc = acc + x0 * bf16_to_fp32((uint16_t)word);
            }
            out[m * ldo + n] = bias ? acc + bias[n] : acc;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AVX512_BF16 kernel.
#define BF_TARGET __attribute__((target("avx512f,avx512bf16,avx512vl,avx512bw")))

static inline __attribute__((always_inline)) BF_TARGET __mmask16 mask16(int64_t c) {
    if (c >= 16) return (__mmask16)0xFFFF;
    if (c <= 0) return 0;
    return (__mmask16)((1u << c) - 1u);
}

// x tile: words xp[r * XS + q] = (bf16 x[m0 + r, k0 + 2q], bf16 x[m0 + r, k0 + 2q + 1]) for q < kcp,
// from kc = min(2 kcp, K - k0) floats (an odd tail gets a zero high half).
static BF_TARGET void pack_x(const float *x, int64_t K, int64_t m0, int mr, int64_t k0, int64_t kc,
                             void *tile) {
    uint32_t *xp = tile;
    for (int r = 0; r < mr; r++) {
        const float *src = x + (m0 + r) * K + k0;
        uint16_t *dst = (uint16_t *)(xp + r * XS);
        const int64_t elems = (kc + 1) / 2 * 2;  // whole words
        for (int64_t i = 0; i < elems; i += 16) {
            const __m512 v = _mm512_maskz_loadu_ps(mask16(kc - i), src + i);
            const __m256i b = (__m256i)_mm512_cvtneps_pbh(v);
            _mm256_mask_storeu_epi16(dst + i, mask16(elems - i), b);
        }
    }
}

static inline __attribute__((always_inline)) BF_TARGET void
k_bf16(const int R, const int V, const uint32_t *xp, const uint32_t *w, int64_t pstride, int64_t kcp,
       float *out, int64_t ldo, int64_t ncols, const float *bias, int first, int last) {
    __m512 acc[MR][NV];
    __mmask16 mk[NV];
    for (int j = 0; j < V; j++) mk[j] = mask16(ncols - 16 * j);
    if (first) {
        for (int r = 0; r < R; r++)
            for (int j = 0; j < V; j++) acc[r][j] = _mm512_setzero_ps();
    } else {
        for (int r = 0; r < R; r++)
            for (int j = 0; j < V; j++) acc[r][j] = _mm512_maskz_loadu_ps(mk[j], out + r * ldo + 16 * j);
    }
    const uint32_t *w1 = w + pstride;
    for (int64_t q = 0; q < kcp; q++) {
        __m512bh b[NV];
        b[0] = (__m512bh)_mm512_loadu_si512(w + q * PANEL);
        if (V > 1) b[1] = (__m512bh)_mm512_loadu_si512(w1 + q * PANEL);
        for (int r = 0; r < R; r++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32((int)xp[r * XS + q]);
            for (int j = 0; j < V; j++) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], a, b[j]);
        }
    }
    if (last && bias) {
        for (int j = 0; j < V; j++) {
            const __m512 bb = _mm512_maskz_loadu_ps(mk[j], bias + 16 * j);
            for (int r = 0; r < R; r++) acc[r][j] = _mm512_add_ps(acc[r][j], bb);
        }
    }
    for (int r = 0; r < R; r++)
        for (int j = 0; j < V; j++) _mm512_mask_storeu_ps(out + r * ldo + 16 * j, mk[j], acc[r][j]);
}

static BF_TARGET void tile(int mr, int nv, const void *xtile, const uint32_t *w, int64_t pstride,
                           int64_t kcp, float *out, int64_t ldo, int64_t ncols, const float *bias,
                           int first, int last) {
    const uint32_t *xp = xtile;
#define BF_CASE(R)                                                                            \
    case R:                                                                                   \
        if (nv == 2) k_bf16(R, 2, xp, w, pstride, kcp, out, ldo, ncols, bias, first, last);  \
        else k_bf16(R, 1, xp, w, pstride, kcp, out, ldo, ncols, bias, first, last);          \
        break;
    switch (mr) {
        BF_CASE(1) BF_CASE(2) BF_CASE(3) BF_CASE(4) BF_CASE(5) BF_CASE(6)
        BF_CASE(7) BF_CASE(8) BF_CASE(9) BF_CASE(10) BF_CASE(11) BF_CASE(12)
    }
#undef BF_CASE
}

void cullme_gemm_bf16(const float *x, int64_t M, int64_t K, const uint32_t *packed, int64_t N,
                      int64_t n_begin, int64_t n_end, float *out, int64_t ldo, const float *bias) {
    (void)N;
    if (M <= 0 || n_end <= n_begin) return;
    if (K <= 0) {  // empty sum: 0 (+ bias)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = n_begin; n < n_end; n++) out[m * ldo + n] = bias ? 0.0f + bias[n] : 0.0f;
        return;
    }
    if (!cullme_gemm_bf16_available()) {
        gemm_emulated(x, M, K, packed, n_begin, n_end, out, ldo, bias);
        return;
    }
    static const gemm_kernel kernel = {MR, NV, 2, KP_MAX, pack_x, tile};
    uint32_t xp[MR * XS] __attribute__((aligned(64)));
    gemm_drive(&kernel, x, M, K, packed, NULL, n_begin, n_end, out, ldo, bias, xp);
}
