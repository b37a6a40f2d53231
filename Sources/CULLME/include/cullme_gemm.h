// CULLME GEMM: out[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]) with a pre-packed, static W.
//
// Determinism contract: every output element is computed as
//     acc = +0.0f;  for k in 0 ..< K: acc = fmaf(x[m, k], W[n, k], acc);  out[m, n] = acc (+ bias[n])
// i.e. one correctly rounded FMA chain in increasing k (each lane of a vector accumulator holds one
// output element; K-blocking only stores/reloads the exact float partial sum in `out`). The result
// of out[m, n] therefore depends on row m of x, row n of W and bias[n] only: it is bit-identical
// whatever M is, wherever row m sits in the batch, however [n_begin, n_end) is split across calls
// or threads, and whether the row went through a full micro-tile or an edge tile. Because the
// chain is the same fmaf sequence on every path, the "avx512", "avx2" and "generic" paths also give
// bit-identical results (the generic path calls fmaf(), slow without hardware FMA but exact).
#ifndef CULLME_GEMM_H
#define CULLME_GEMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Panel width of the packed layout (columns of W, i.e. output features, per panel).
#define CULLME_GEMM_PANEL 16

/// Number of floats cullme_gemm_pack writes for a W[N, K]: ceil(N / 16) * 16 * K.
size_t cullme_gemm_packed_floats(int64_t N, int64_t K);

/// Packs the row-major weight w[N, K] (PyTorch [out, in]) into panels: panel p (columns
/// 16p ..< 16p+16) occupies packed[p*16*K ..< (p+1)*16*K] with element (k, j) at p*16*K + k*16 + j
/// = w[16p + j, k], zero for 16p + j >= N. `packed` needs cullme_gemm_packed_floats(N, K) floats;
/// 64-byte alignment is recommended (not required). Done once at load; the layout is the same for
/// every code path.
void cullme_gemm_pack(const float *w, int64_t N, int64_t K, float *packed);

/// Single-threaded: for m in 0 ..< M and n in n_begin ..< n_end,
///     out[m * ldo + n] = sum_k x[m * K + k] * W[n, k]  (+ bias[n] if bias != NULL).
/// x is row-major [M, K] (row stride K), `packed` comes from cullme_gemm_pack(W, N, K, ...).
/// Requirements: 0 <= n_begin <= n_end <= N, n_begin a multiple of CULLME_GEMM_PANEL (16)
/// (n_end may be anything up to N); ldo >= n_end; `out` must not overlap x, packed or bias.
/// Columns outside [n_begin, n_end) are neither read nor written. Threads may call this
/// concurrently on disjoint column ranges of the same `out` (split N at multiples of 16).
/// No heap allocation; uses < 40 KB of stack. M == 0 or n_begin == n_end does nothing;
/// K == 0 gives 0 (+ bias).
void cullme_gemm(const float *x, int64_t M, int64_t K, const float *packed, int64_t N,
                 int64_t n_begin, int64_t n_end, float *out, int64_t ldo, const float *bias);

/// The code path cullme_gemm uses in this process: "avx512", "avx2" or "generic"
/// (chosen at first use from CPUID/XCR0: AVX-512F+VL+BW, else AVX2+FMA, else plain C).
const char *cullme_gemm_path(void);

/// For tests/benchmarks: force "avx512", "avx2" or "generic"; NULL or "auto" restores the
/// automatic choice. A path the CPU/OS does not support is ignored (check cullme_gemm_path()).
void cullme_gemm_force_path(const char *name);

/// ---- Group-quantised panels (qpanels.c) ----
/// W[n, k] = scale[n, k / group] * q[n, k] + offset[n, k / group] (a float32 product, then a float32 sum;
/// q int8), stored in cullme_gemm_pack's panel order: q[p][k][16], scale and offset [p][k / group][16].
/// The integer GGUF types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) are exactly of this form, so
/// cullme_gemm_q over these panels gives cullme_gemm's results on the dequantised weights bit for bit, with
/// 1.25 bytes a weight (group 32) to read instead of 4.
typedef struct {
    int64_t rows, cols;  /* N, K */
    int32_t group;       /* 16 or 32; divides cols */
    int8_t *q;
    float *scale, *offset;
} cullme_qpanels;

/// The group (32, or 16 for Q6_K) of a ggml type id with an integer form; 0 for any other type.
int cullme_qpanels_group(uint32_t ggml_type);
/// Zeroed panels for W[rows, cols] (NULL for bad sizes or out of memory); free with cullme_qpanels_free.
cullme_qpanels *cullme_qpanels_new(int64_t rows, int64_t cols, int32_t group);
void cullme_qpanels_free(cullme_qpanels *w);
/// Bytes the panels hold.
size_t cullme_qpanels_bytes(const cullme_qpanels *w);
/// Sets row n from a stored row of `cols` elements of ggml type `ggml_type`. Returns 1 when every value
/// equals the reference dequantisation (ullme_dequant_*) bit for bit, 0 otherwise (unsupported type, a
/// group that does not divide the type's, or a value that differs): the panels are then not to be used.
/// `scratch` holds 2 * cols floats.
int cullme_qpanels_set_row(cullme_qpanels *w, int64_t n, uint32_t ggml_type, const void *row, float *scratch);
/// Row n's values for columns c0 ..< c1 into dst.
void cullme_qpanels_row(const cullme_qpanels *w, int64_t n, int64_t c0, int64_t c1, float *dst);
/// cullme_gemm with W given as panels (same contract and results). Each W block is dequantised into a
/// per-thread buffer (kept for the thread's life) right before the kernels use it. Returns 0, or -1 if that
/// buffer could not be allocated (nothing written).
int cullme_gemm_q(const float *x, int64_t M, int64_t K, const cullme_qpanels *w, int64_t n_begin, int64_t n_end,
                  float *out, int64_t ldo, const float *bias);

#ifdef __cplusplus
}
#endif
#endif // CULLME_GEMM_H
