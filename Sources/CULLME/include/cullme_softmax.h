// CULLME softmax: the attention rows' softmax with a vectorised exp.
//
// Determinism contract: the result depends only on the row's values; the "avx512", "avx2" and
// "generic" paths give bit-identical results (same polynomial with single-rounding FMAs, and the
// sum is kept as 16 lane partial sums, element i in lane i mod 16, reduced in one fixed tree).
// The path is the one cullme_gemm uses (cullme_gemm_path / cullme_gemm_force_path switch both).
#ifndef CULLME_SOFTMAX_H
#define CULLME_SOFTMAX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// e^x in float32 for x <= 0 as the softmax uses it (Cephes' expf polynomial, relative error
/// ~1e-7 against expf); x < -87.3 gives 0. Exposed for tests.
float cullme_exp_nonpositive(float x);

/// row[c] = softmax over the visible keys [begin, end) of row[0 ..< count]; entries outside
/// [begin, end) become 0. Requires 0 <= begin < end <= count; values must be finite.
void cullme_softmax_range(float *row, int64_t count, int64_t begin, int64_t end);

/// One logits row's cross-entropy pieces (the generation losses): out[0 ..< n) = -g * softmax(row) (out may
/// be row) and the return value log Σ_v e^row[v] = max + log(sum). n > 0, values finite.
float cullme_log_softmax_scaled(const float *row, int64_t n, float g, float *out);

#ifdef __cplusplus
}
#endif
#endif // CULLME_SOFTMAX_H
