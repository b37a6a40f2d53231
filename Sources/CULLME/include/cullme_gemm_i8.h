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
    int32_t max_u;  /* the largest u: above 129 the AVX2 path multiplies q = u - shift (its pair sums must not saturate) */
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

/// Activation outliers, which int8 cannot carry: a group's one large value sets its scale and flattens the
/// rest to a few levels. Entries with |x| > CULLME_I8_OUTLIER_RMS * rms(row) leave the int8 product and are
/// multiplied in float32 by cullme_gemm_i8_outliers. On the SmolLM2 parity texts this moved the worst
/// bidirectional cosine to transformers from 0.9985 to 0.9996 (and the causal one from 0.9998 to 0.9999) for
/// 1-2 % of the entries. At most K / 9 entries of a row can exceed 3 * rms (their squares alone would exceed
/// the row's sum), so a row has at most K / 9 + 1 of them.
#define CULLME_I8_OUTLIER_RMS 3.0f
static inline int64_t cullme_i8_outliers_max(int64_t M, int64_t K) { return M * (K / 9 + 1); }

/// Splits x[M, K]: `inliers` = x with its outliers zeroed (the int8 product's input); row m's outliers are
/// (k_idx[i], val[i]) for i in [start[m], start[m + 1]), in increasing k (start has M + 1 entries; k_idx and
/// val room for cullme_i8_outliers_max(M, K)). rms is the row's root mean square, summed in increasing k
/// (a row of NaN or infinity has none: int8 then gives NaN, as the exact mode). Returns the total count.
int64_t cullme_i8_split_outliers(const float *x, int64_t M, int64_t K, float *inliers, int64_t *start,
                                 int32_t *k_idx, float *val);

/// out[m, n] += Σ_i val[i] * W[n, k_idx[i]] over row m's outliers, for n in [n_begin, n_end) (n_begin a
/// multiple of 16), with W[n, k] = fma(scale, u, offset') and per element
///     acc = 0;  for each outlier in order: acc = fma(val, fma(scale, u, offset'), acc);  out += acc
/// on every path (AVX2 lanes or plain C), so the paths agree bit for bit. Run after cullme_gemm_i8 on the
/// same range.
void cullme_gemm_i8_outliers(const int64_t *start, const int32_t *k_idx, const float *val, int64_t M,
                             const cullme_i8panels *w, int64_t n_begin, int64_t n_end, float *out, int64_t ldo);

/// out[m, n] for n in [n_begin, n_end) (n_begin a multiple of 16) from quantised rows (M of them, K = w->cols)
/// and W's int8 panels; threads on disjoint column ranges. On the AVX2 path a W with max_u > 129 runs the
/// slower signed variant, and one with a q of -128 the plain C tile (same bits).
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
