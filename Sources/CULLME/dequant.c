// Dequantisation kernels, ported from ggml's reference dequantize_row_* (ggml-quants.c).
// Results must equal gguf-py's gguf.quants.dequantize bit for bit (FormatsTests checks it), so
// the float operations follow the reference in kind and order: e.g. Q6_K is (d * sc) * q, where the
// second product can round, so d * (sc * q) would differ in the last bit. Products of an f16 scale
// with small integers (Q4_1, Q5_1, Q4_K, Q5_K) are exact in float32, so only the final add rounds;
// FMA contraction is switched off anyway so that no compiler flag can change a result.
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#include "cullme.h"
#include <string.h>

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK_K 256
#define K_SCALE_SIZE 12

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline float bits_to_f32(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }

float ullme_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;  // +-0
        } else {
            // subnormal: value = mant * 2^-24; normalise so that the implicit bit is bit 10
            int shift = __builtin_clz(mant) - 21;  // leading zeros within the 11-bit field
            mant = (mant << shift) & 0x3FFu;
            bits = sign | ((uint32_t)(127 - 15 + 1 - shift) << 23) | (mant << 13);
        }
    } else if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);  // inf / NaN (payload kept)
    } else {
        bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
    }
    return bits_to_f32(bits);
}

static inline float h2f(const uint8_t *p) { return ullme_fp16_to_fp32(rd16(p)); }

void ullme_dequant_f16(const void *src, float *dst, int64_t n) {
    const uint8_t *s = (const uint8_t *)src;
    for (int64_t i = 0; i < n; i++) dst[i] = h2f(s + 2 * i);
}

void ullme_dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint8_t *s = (const uint8_t *)src;
    for (int64_t i = 0; i < n; i++) dst[i] = bits_to_f32((uint32_t)rd16(s + 2 * i) << 16);
}

// block_q4_0 { f16 d; u8 qs[16]; }
void ullme_dequant_q4_0(const void *src, float *dst, int64_t n_blocks) {
    const uint8_t *b = (const uint8_t *)src;
    for (int64_t i = 0; i < n_blocks; i++, b += 18, dst += QK4_0) {
        const float d = h2f(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int x0 = (qs[j] & 0x0F) - 8;
            const int x1 = (qs[j] >> 4) - 8;
            dst[j] = (float)x0 * d;
            dst[j + QK4_0 / 2] = (float)x1 * d;
        }
    }
}

// block_q4_1 { f16 d; f16 m; u8 qs[16]; }
void ullme_dequant_q4_1(const void *src, float *dst, int64_t n_blocks) {
    const uint8_t *b = (const uint8_t *)src;
    for (int64_t i = 0; i < n_blocks; i++, b += 20, dst += QK4_1) {
        const float d = h2f(b), m = h2f(b + 2);
        const uint8_t *qs = b + 4;
        for (int j = 0; j < QK4_1 / 2; j++) {
            const float p0 = (float)(qs[j] & 0x0F) * d;
            const float p1 = (float)(qs[j] >> 4) * d;
            dst[j] = p0 + m;
            dst[j + QK4_1 / 2] = p1 + m;
        }
    }
}

// block_q5_0 { f16 d; u8 qh[4]; u8 qs[16]; }
void ullme_dequant_q5_0(const void *src, float *dst, int64_t n_blocks) {
    const uint8_t *b = (const uint8_t *)src;
    for (int64_t i = 0; i < n_blocks; i++, b += 22, dst += QK5_0) {
        const float d = h2f(b);
        const uint32_t qh = rd32(b + 2);
        const uint8_t *qs = b + 6;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const uint8_t xh0 = (uint8_t)(((qh >> (j + 0)) << 4) & 0x10);
            const uint8_t xh1 = (uint8_t)(((qh >> (j + 12))) & 0x10);
            const int x0 = ((qs[j] & 0x0F) | xh0) - 16;
            const int x1 = ((qs[j] >> 4) | xh1) - 16;
            dst[j] = (float)x0 * d;
            dst[j + QK5_0 / 2] = (float)x1 * d;
        }
    }
}

// block_q5_1 { f16 d; f16 m; u8 qh[4]; u8 qs[16]; }
void ullme_dequant_q5_1(const void *src, float *dst, int64_t n_blocks) {
    const uint8_t *b = (const uint8_t *)src;
    for (int64_t i = 0; i < n_blocks; i++, b += 24, dst += QK5_1) {
        const float d = h2f(b), m = h2f(b + 2);
        const uint32_t qh = rd32(b + 4);
        const uint8_t *qs = b + 8;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const uint8_t xh0 = (uint8_t)(((qh >> (j + 0)) << 4) & 0x10);
            const uint8_t xh1 = (uint8_t)(((qh >> (j + 12))) & 0x10);
            const int x0 = (qs[j] & 0x0F) | xh0;
            const int x1 = (qs[j] >> 4) | xh1;
            const float p0 = (float)x0 * d;
            const float p1 = (float)x1 * d;
            dst[j] = p0 + m;
            dst[j + QK5_1 / 2] = p1 + m;
        }
    }
}

// block_q8_0 { f16 d; i8 qs[32]; }
void ullme_dequant_q8_0(const void *src, float *dst, int64_t n_blocks) {
    const uint8_t *b = (const uint8_t *)src;
    for (int64_t i = 0; i < n_blocks; i++, b += 34, dst += QK8_0) {
        const float d = h2f(b);
        const int8_t *qs = (const int8_t *)(b + 2);
        for (int j = 0; j < QK8_0; j++) dst[j] = (float)qs[j] * d;
    }
}

static inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

// block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; }
void ullme_dequant_q4_K(const void *src, float *dst, int64_t n_blocks) {
    const uint8_t *b = (const uint8_t *)src;
    for (int64_t i = 0; i < n_blocks; i++, b += 144) {
        const float d = h2f(b), min = h2f(b + 2);
        const uint8_t *scales = b + 4;
        const uint8_t *q = b + 4 + K_SCALE_SIZE;
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < QK_K; j += 64) {
            get_scale_min_k4(is + 0, scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = min * (float)m;
            get_scale_min_k4(is + 1, scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = min * (float)m;
            for (int l = 0; l < 32; ++l) { const float p = d1 * (float)(q[l] & 0xF); *dst++ = p - m1; }
            for (int l = 0; l < 32; ++l) { const float p = d2 * (float)(q[l] >> 4); *dst++ = p - m2; }
            q += 32;
            is += 2;
        }
    }
}

// block_q5_K { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }
void ullme_dequant_q5_K(const void *src, float *dst, int64_t n_blocks) {
    const uint8_t *b = (const uint8_t *)src;
    for (int64_t i = 0; i < n_blocks; i++, b += 176) {
        const float d = h2f(b), min = h2f(b + 2);
        const uint8_t *scales = b + 4;
        const uint8_t *qh = b + 4 + K_SCALE_SIZE;
        const uint8_t *ql = qh + QK_K / 8;
        int is = 0;
        uint8_t sc, m;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64) {
            get_scale_min_k4(is + 0, scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = min * (float)m;
            get_scale_min_k4(is + 1, scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = min * (float)m;
            for (int l = 0; l < 32; ++l) {
                const float p = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0));
                *dst++ = p - m1;
            }
            for (int l = 0; l < 32; ++l) {
                const float p = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0));
                *dst++ = p - m2;
            }
            ql += 32;
            is += 2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

// block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; }
void ullme_dequant_q6_K(const void *src, float *dst, int64_t n_blocks) {
    const uint8_t *b = (const uint8_t *)src;
    for (int64_t i = 0; i < n_blocks; i++, b += 210) {
        const float d = h2f(b + 208);
        const uint8_t *ql = b;
        const uint8_t *qh = b + QK_K / 2;
        const int8_t *sc = (const int8_t *)(b + QK_K / 2 + QK_K / 4);
        for (int n = 0; n < QK_K; n += 128) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                dst[l + 0] = d * (float)sc[is + 0] * (float)q1;
                dst[l + 32] = d * (float)sc[is + 2] * (float)q2;
                dst[l + 64] = d * (float)sc[is + 4] * (float)q3;
                dst[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            dst += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}
