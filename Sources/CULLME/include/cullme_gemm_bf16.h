// CULLME BF16 GEMM (the opt-in fast inference mode): out[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]) with
// x and W rounded to bfloat16 and the products summed in float32 by VDPBF16PS (AVX512_BF16), twice
// the FP32 FMA rate. Not exact: every operand loses 16 mantissa bits (relative error ~2^-9 per value).
//
// Determinism contract (as cullme_gemm's, with a different chain): every output element is
//     acc = +0.0f;  for p in 0 ..< ceil(K / 2): acc = dpbf16(acc, x pair p, W pair p);  out = acc (+ bias)
// where pair p holds elements 2p and 2p + 1 (bf16, a zero past K), in increasing p; the x pair is
// rounded from row m of x alone. A row's bits therefore do not depend on M, its place in the batch or
// the column split (n_begin / n_end, threads), so batch invariance holds in this mode too.
#ifndef CULLME_GEMM_BF16_H
#define CULLME_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// float32 -> bfloat16 bits, round to nearest even (as VCVTNEPS2BF16: subnormals become signed zero,
/// NaN stays a quiet NaN).
uint16_t cullme_fp32_to_bf16(float f);

/// Number of 32-bit words cullme_gemm_bf16_pack writes for W[N, K]: ceil(N / 16) * 16 * ceil(K / 2).
size_t cullme_gemm_bf16_packed_words(int64_t N, int64_t K);

/// Packs the row-major w[N, K] into 16-column panels of bf16 pairs: panel p occupies
/// packed[p*16*KP ..< (p+1)*16*KP] (KP = ceil(K / 2)) with word (q, j) at p*16*KP + q*16 + j holding
/// bf16(w[16p + j, 2q]) in its low half and bf16(w[16p + j, 2q + 1]) in its high half (0 past K or N).
/// Plain C: runs on any CPU.
void cullme_gemm_bf16_pack(const float *w, int64_t N, int64_t K, uint32_t *packed);

/// Single-threaded product with the same arguments and requirements as cullme_gemm (n_begin a
/// multiple of 16, threads on disjoint column ranges, < 40 KB of stack, no heap). Uses VDPBF16PS when
/// cullme_gemm_bf16_available(); otherwise a plain C emulation of the same sums (slow; for tests and so
/// that no unsupported instruction ever runs). Models do not call it then: they run exact cullme_gemm.
void cullme_gemm_bf16(const float *x, int64_t M, int64_t K, const uint32_t *packed, int64_t N,
                      int64_t n_begin, int64_t n_end, float *out, int64_t ldo, const float *bias);

/// 1 when this CPU and OS run the AVX512_BF16 kernel (CPUID.(7,1):EAX bit 5, AVX512F/VL/BW, XCR0 with
/// opmask and ZMM state) and it is not disabled (ULLME_DISABLE_BF16=1 in the environment at first use,
/// or cullme_gemm_bf16_disable(1)); else 0.
int cullme_gemm_bf16_available(void);

/// "avx512_bf16" when available, else why not: "exact fallback: CPU has no AVX512_BF16" or
/// "exact fallback: AVX512_BF16 disabled". Static storage.
const char *cullme_gemm_bf16_path(void);

/// For tests: 1 pretends the CPU has no AVX512_BF16 (cullme_gemm_bf16 then emulates), 0 restores the
/// automatic choice.
void cullme_gemm_bf16_disable(int disabled);

#ifdef __cplusplus
}
#endif
#endif // CULLME_GEMM_BF16_H
