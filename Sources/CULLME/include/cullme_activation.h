// CULLME activations: the SwiGLU MLP's act = silu(gate) * up and its backward, with the softmax's vectorised exp.
//
// Why: glibc's scalar expf and a division per element made the SiLU 4 % of an embedding and, with its
// derivative, 5-6 % of a training step. Contract: sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) below,
// e = cullme_exp_nonpositive(-|x|) (so e^-x never overflows); silu(x) = x * sigmoid(x). The "avx512", "avx2"
// and "generic" paths (cullme_gemm_path) evaluate the same operations lane by lane: the same bits.
#ifndef CULLME_ACTIVATION_H
#define CULLME_ACTIVATION_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// out[t, i] = silu(gu[t, i]) * gu[t, n + i] for gu[T, 2n] (gate | up, as the fused projection lays them out).
void cullme_swiglu_forward(float *out, const float *gu, int64_t T, int64_t n);

/// The backward of cullme_swiglu_forward for dAct[T, n]: with g = gate, u = up, s = sigmoid(g),
///     dGU[t, i] = (dAct * u) * (s * (1 + g * (1 - s))),   dGU[t, n + i] = dAct * silu(g).
void cullme_swiglu_backward(float *dGU, const float *dAct, const float *gu, int64_t T, int64_t n);

#ifdef __cplusplus
}
#endif
#endif // CULLME_ACTIVATION_H
