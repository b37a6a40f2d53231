// CULLME integer GEMM (the opt-in int8 inference mode): out[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]) with W
// the GGUF weights' own integers (cullme_qpanels: W = scale * q + offset per group of 16 or 32) and x
// quantised per row and group to int8 (as llama.cpp's Q8 activations): x ≈ sx * qx, qx in [-127, 127].
// W's integers are stored as u = q + c >= 0 (c = the matrix's -min q, or 0), so W = scale * u + offset'
// with offset' = offset - c * scale (rounded once, at load). Per row m, column n and group g the integer dot
// D = Σ qx·u is exact (int32), and
//     out[m, n] = Σ_g  sx[m, g] * (scale[n, g] * D + offset'[n, g] * Σ qx)        (+ bias[n])
// in float32, in increasing g, with the same fused multiply-adds on every path:
//     t = (float)D * scale;  t = fma(offset', (float)Σqx, t);  acc = fma(t, sx, acc)
// so every path (AVX512-VNNI VPDPBUSD, AVX-VNNI, AVX2 VPMADDUBSW, plain C) gives the same bits, and a row's
// bits depend only on that row (batch invariance, any column split). Not exact: x loses all but ~7 bits
// per group (relative error ~2^-8 of the group's largest value).
#ifndef CULLME_GEMM_I8_H
#define CULLME_GEMM_I8_H

#include <stddef.h>
#include <stdint.h>
#include "cullme_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

/// W's integers re-laid out for 4-byte dot products: panel p (16 columns), k step s: u4[p][s / 4][j][s % 4]
/// (u = q + shift, 16 * K bytes a panel), with scale and offset' [p][k / group][16].
typedef struct {
    int64_t rows, cols;
    int32_t group;
    int32_t shift;  /* c */
    int32_t max_u;  /* the largest u: the AVX2 path needs <= 128 (its 16-bit pair sums must not saturate) */
    uint8_t *u4;
    float *scale, *offset;
} cullme_i8panels;

/// The int8 panels of W (NULL when out of memory).
cullme_i8panels *cullme_i8panels_new(const cullme_qpanels *w);
void cullme_i8panels_free(cullme_i8panels *w);
size_t cullme_i8panels_bytes(const cullme_i8panels *w);

/// x[M, K] quantised per row and group (K a multiple of group): xq[m, k] = qx, sx[m, g] the group's scale
/// (largest |x| / 127; 0 for an all-zero group, NaN when the group holds a NaN or infinity), xsum[m, g] =
/// Σ qx (as a float: exact). One plain C implementation for every path.
void cullme_i8_quantize_rows(const float *x, int64_t M, int64_t K, int32_t group, int8_t *xq, float *sx,
                             float *xsum);

/// out[m, n] for n in [n_begin, n_end) (n_begin a multiple of 16) from quantised rows (M of them, K = w->cols)
/// and W's int8 panels; threads on disjoint column ranges. On the AVX2 path a W with max_u > 128 runs the
/// plain C tile (same bits, slower).
void cullme_gemm_i8(const int8_t *xq, const float *sx, const float *xsum, int64_t M, const cullme_i8panels *w,
                    int64_t n_begin, int64_t n_end, float *out, int64_t ldo, const float *bias);

/// The kernel this CPU runs: "avx512_vnni", "avx_vnni", "avx2" or "generic".
const char *cullme_gemm_i8_path(void);
/// Forces a path ("avx512_vnni", "avx_vnni", "avx2", "generic"; "auto" or NULL: the best); a path this
/// CPU lacks is ignored. For tests (every path gives the same bits) and the AVX2-only emulation.
void cullme_gemm_i8_force_path(const char *name);

#ifdef __cplusplus
}
#endif
#endif // CULLME_GEMM_I8_H
