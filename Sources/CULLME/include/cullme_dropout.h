// CULLME dropout masks: the LoRA dropout stream of Train/Random.swift, vectorised.
#ifndef CULLME_DROPOUT_H
#define CULLME_DROPOUT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// out[j] = keep if uniform(first + j) >= p else 0, for j in 0 ..< n, where
///     uniform(i) = (splitmix64(key ^ splitmix64(i + 0x9E3779B97F4A7C15)) >> 40) * 2^-24
/// and splitmix64 is SplitMix64's output function (with its own + 0x9E3779B97F4A7C15), i.e. exactly
/// KeyedRandom(key).uniform(i) of Train/Random.swift. Same bits on every path (AVX-512 DQ or C).
void cullme_dropout_mask(uint64_t key, uint64_t first, int64_t n, float p, float keep, float *out);

#ifdef __cplusplus
}
#endif
#endif // CULLME_DROPOUT_H
