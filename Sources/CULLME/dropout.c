// LoRA dropout masks (see include/cullme_dropout.h). Why in C: a GRL step draws one number per LoRA input
// element (~5k per token and layer for SmolLM2), twice with GradCache; the Swift loop's 64-bit multiplies
// did not vectorise and took ~12 % of the step. AVX-512 DQ has 64-bit lane multiplies (VPMULLQ).
#include "cullme_dropout.h"
#include "cullme_gemm.h"
#include <cpuid.h>
#include <string.h>
#include <immintrin.h>

#define GAMMA 0x9E3779B97F4A7C15ULL
#define M1 0xBF58476D1CE4E5B9ULL
#define M2 0x94D049BB133111EBULL

static inline uint64_t splitmix64(uint64_t x) {
    uint64_t z = x + GAMMA;
    z = (z ^ (z >> 30)) * M1;
    z = (z ^ (z >> 27)) * M2;
    return z ^ (z >> 31);
}

static void mask_generic(uint64_t key, uint64_t first, int64_t n, float p, float keep, float *out) {
    for (int64_t j = 0; j < n; j++) {
        float u = (float)(splitmix64(key ^ splitmix64(first + (uint64_t)j + GAMMA)) >> 40) * 0x1p-24f;
        out[j] = u >= p ? keep : 0.0f;
    }
}

#define A5DQ __attribute__((target("avx512f,avx512dq")))

static inline __attribute__((always_inline)) A5DQ __m512i splitmix64x8(__m512i x) {
    __m512i z = _mm512_add_epi64(x, _mm512_set1_epi64((long long)GAMMA));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64((long long)M1));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64((long long)M2));
    return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

static A5DQ void mask_avx512dq(uint64_t key, uint64_t first, int64_t n, float p, float keep, float *out) {
    const __m512i k = _mm512_set1_epi64((long long)key), step = _mm512_set1_epi64(8);
    __m512i i = _mm512_add_epi64(_mm512_set1_epi64((long long)(first + GAMMA)), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 pv = _mm256_set1_ps(p), kv = _mm256_set1_ps(keep), scale = _mm256_set1_ps(0x1p-24f);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m512i bits = splitmix64x8(_mm512_xor_si512(k, splitmix64x8(i)));
        __m256 u = _mm256_mul_ps(_mm512_cvtepu64_ps(_mm512_srli_epi64(bits, 40)), scale);
        _mm256_storeu_ps(out + j, _mm256_and_ps(_mm256_cmp_ps(u, pv, _CMP_GE_OQ), kv));
        i = _mm512_add_epi64(i, step);
    }
    mask_generic(key, first + (uint64_t)j, n - j, p, keep, out + j);
}

// The GEMM's "avx512" path (AVX-512F/BW/VL and the OS's ZMM state; cullme_gemm_force_path switches it
// for tests) plus AVX-512 DQ from CPUID.
static int use_avx512dq(void) {
    static int dq = -1;
    int c = __atomic_load_n(&dq, __ATOMIC_RELAXED);
    if (c < 0) {
        unsigned a, b, cx, d;
        c = __get_cpuid_count(7, 0, &a, &b, &cx, &d) && ((b >> 17) & 1);
        __atomic_store_n(&dq, c, __ATOMIC_RELAXED);
    }
    return c && strcmp(cullme_gemm_path(), "avx512") == 0;
}

void cullme_dropout_mask(uint64_t key, uint64_t first, int64_t n, float p, float keep, float *out) {
    if (n <= 0) return;
    if (use_avx512dq()) mask_avx512dq(key, first, n, p, keep, out);
    else mask_generic(key, first, n, p, keep, out);
}
