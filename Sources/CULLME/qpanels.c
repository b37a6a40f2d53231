// Group-quantised weight panels: the integer GGUF types re-laid out for cullme_gemm (see cullme_gemm.h).
//
// Every integer ggml type dequantises as y = scale * q + offset per group of 16 or 32 weights (q a small
// integer, one float32 product and one float32 sum), e.g. Q4_1 as (q * d) + m and Q4_K as (d * sc) * q - dmin * m.
// Keeping q as int8 in the 16-column panel order of cullme_gemm_pack, with scale and offset per group,
// takes 1.25 bytes a weight instead of 4, and a product makes each W block (k-block x column block, in L2)
// from it right before the kernels run: the same floats in the same places as the float32 panels, so the
// same FMA chains and bit-identical results, at a third of the memory traffic. A row is only accepted after
// checking each of its values against the reference dequantisation (dequant.c), bit for bit.
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#include "cullme.h"
#include "cullme_gemm.h"
#include "gemm_driver.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>

#define PANEL CULLME_GEMM_PANEL

enum { T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14 };

int cullme_qpanels_group(uint32_t ggml_type) {
    switch (ggml_type) {
    case T_Q4_0: case T_Q4_1: case T_Q5_0: case T_Q5_1: case T_Q8_0: case T_Q4_K: case T_Q5_K: return 32;
    case T_Q6_K: return 16;
    default: return 0;
    }
}

static int64_t panels_of(int64_t N) { return (N + PANEL - 1) / PANEL; }

cullme_qpanels *cullme_qpanels_new(int64_t rows, int64_t cols, int32_t group) {
    if (rows <= 0 || cols <= 0 || (group != 16 && group != 32) || cols % group != 0) return NULL;
    cullme_qpanels *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    const size_t P = (size_t)panels_of(rows);
    const size_t qbytes = P * PANEL * (size_t)cols, gfloats = P * PANEL * (size_t)(cols / group);
    w->rows = rows;
    w->cols = cols;
    w->group = group;
    w->q = cullme_alloc(qbytes);
    w->scale = cullme_alloc(gfloats * sizeof(float));
    w->offset = cullme_alloc(gfloats * sizeof(float));
    if (!w->q || !w->scale || !w->offset) { cullme_qpanels_free(w); return NULL; }
    // Rows past N stay 0 * 0 + 0 = +0, as cullme_gemm_pack's panel tails.
    memset(w->q, 0, qbytes);
    memset(w->scale, 0, gfloats * sizeof(float));
    memset(w->offset, 0, gfloats * sizeof(float));
    return w;
}

void cullme_qpanels_free(cullme_qpanels *w) {
    if (!w) return;
    free(w->q);
    free(w->scale);
    free(w->offset);
    free(w);
}

size_t cullme_qpanels_bytes(const cullme_qpanels *w) {
    const size_t P = (size_t)panels_of(w->rows);
    return P * PANEL * (size_t)w->cols + 2 * P * PANEL * (size_t)(w->cols / w->group) * sizeof(float);
}

// ---- Extraction: one stored block -> q (block elements), scale and offset (one per native group) ----------
// Each mirrors dequant.c's reference so that scale * q + offset (no FMA) gives its value; "offset" -0.0f
// leaves a product unchanged bit for bit (x + -0 = x, also for x = +-0).

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline float h2f(const uint8_t *p) { return ullme_fp16_to_fp32(rd16(p)); }

static void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

static void extract_block(uint32_t type, const uint8_t *b, int8_t *q, float *scale, float *offset) {
    switch (type) {
    case T_Q4_0: case T_Q4_1: {
        const int has_min = type == T_Q4_1;
        scale[0] = h2f(b);
        offset[0] = has_min ? h2f(b + 2) : -0.0f;
        const uint8_t *qs = b + (has_min ? 4 : 2);
        const int bias = has_min ? 0 : 8;
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)((qs[j] & 0x0F) - bias);
            q[j + 16] = (int8_t)((qs[j] >> 4) - bias);
        }
        break;
    }
    case T_Q5_0: case T_Q5_1: {
        const int has_min = type == T_Q5_1;
        scale[0] = h2f(b);
        offset[0] = has_min ? h2f(b + 2) : -0.0f;
        const uint32_t qh = rd32(b + (has_min ? 4 : 2));
        const uint8_t *qs = b + (has_min ? 8 : 6);
        const int bias = has_min ? 0 : 16;
        for (int j = 0; j < 16; j++) {
            const int xh0 = (int)(((qh >> j) << 4) & 0x10), xh1 = (int)((qh >> (j + 12)) & 0x10);
            q[j] = (int8_t)(((qs[j] & 0x0F) | xh0) - bias);
            q[j + 16] = (int8_t)(((qs[j] >> 4) | xh1) - bias);
        }
        break;
    }
    case T_Q8_0:
        scale[0] = h2f(b);
        offset[0] = -0.0f;
        memcpy(q, b + 2, 32);
        break;
    case T_Q4_K: case T_Q5_K: {
        const int five = type == T_Q5_K;
        const float d = h2f(b), min = h2f(b + 2);
        const uint8_t *scales = b + 4, *qh = b + 16, *ql = five ? b + 48 : b + 16;
        for (int g = 0; g < 8; g++) {
            uint8_t sc, m;
            scale_min_k4(g, scales, &sc, &m);
            scale[g] = d * (float)sc;
            offset[g] = -(min * (float)m);  // p - m1 == p + (-m1)
            const uint8_t *src = ql + 32 * (g / 2);
            for (int l = 0; l < 32; l++) {
                int v = g % 2 ? src[l] >> 4 : src[l] & 0xF;
                if (five && (qh[l] & (1u << g))) v += 16;
                q[32 * g + l] = (int8_t)v;
            }
        }
        break;
    }
    case T_Q6_K: {
        const float d = h2f(b + 208);
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int g = 0; g < 16; g++) {
            scale[g] = d * (float)sc[g];  // (d * sc) * q, as the reference
            offset[g] = -0.0f;
        }
        const uint8_t *ql = b, *qh = b + 128;
        for (int n = 0; n < 256; n += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; l++) {
                q[n + l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                q[n + l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                q[n + l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                q[n + l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        break;
    }
    }
}

static int block_shape(uint32_t type, int *elems, int *bytes) {
    switch (type) {
    case T_Q4_0: *elems = 32; *bytes = 18; return 1;
    case T_Q4_1: *elems = 32; *bytes = 20; return 1;
    case T_Q5_0: *elems = 32; *bytes = 22; return 1;
    case T_Q5_1: *elems = 32; *bytes = 24; return 1;
    case T_Q8_0: *elems = 32; *bytes = 34; return 1;
    case T_Q4_K: *elems = 256; *bytes = 144; return 1;
    case T_Q5_K: *elems = 256; *bytes = 176; return 1;
    case T_Q6_K: *elems = 256; *bytes = 210; return 1;
    default: return 0;
    }
}

static void reference_dequant(uint32_t type, const void *row, float *dst, int64_t blocks) {
    switch (type) {
    case T_Q4_0: ullme_dequant_q4_0(row, dst, blocks); break;
    case T_Q4_1: ullme_dequant_q4_1(row, dst, blocks); break;
    case T_Q5_0: ullme_dequant_q5_0(row, dst, blocks); break;
    case T_Q5_1: ullme_dequant_q5_1(row, dst, blocks); break;
    case T_Q8_0: ullme_dequant_q8_0(row, dst, blocks); break;
    case T_Q4_K: ullme_dequant_q4_K(row, dst, blocks); break;
    case T_Q5_K: ullme_dequant_q5_K(row, dst, blocks); break;
    case T_Q6_K: ullme_dequant_q6_K(row, dst, blocks); break;
    }
}

int cullme_qpanels_set_row(cullme_qpanels *w, int64_t n, uint32_t ggml_type, const void *row, float *scratch) {
    int elems, bytes;
    const int native = cullme_qpanels_group(ggml_type);
    if (!w || n < 0 || n >= w->rows || !row || !scratch || !native || native < w->group || native % w->group != 0 ||
        !block_shape(ggml_type, &elems, &bytes) || w->cols % elems != 0)
        return 0;
    const int64_t K = w->cols, G = w->group, NG = K / G;
    int8_t q[256];
    float scale[16], offset[16];
    int8_t *qp = w->q + (n / PANEL) * PANEL * K + n % PANEL;
    float *sp = w->scale + (n / PANEL) * PANEL * NG + n % PANEL;
    float *op = w->offset + (n / PANEL) * PANEL * NG + n % PANEL;
    const uint8_t *b = row;
    for (int64_t k0 = 0; k0 < K; k0 += elems, b += bytes) {
        extract_block(ggml_type, b, q, scale, offset);
        for (int i = 0; i < elems; i++) {
            qp[(k0 + i) * PANEL] = q[i];
            scratch[k0 + i] = (float)q[i] * scale[i / native] + offset[i / native];
        }
        for (int g = 0; g < elems / G; g++) {
            sp[((k0 / G) + g) * PANEL] = scale[g * G / native];
            op[((k0 / G) + g) * PANEL] = offset[g * G / native];
        }
    }
    float *ref = scratch + K;
    reference_dequant(ggml_type, row, ref, K / elems);
    return memcmp(ref, scratch, (size_t)K * sizeof(float)) == 0;
}

void cullme_qpanels_row(const cullme_qpanels *w, int64_t n, int64_t c0, int64_t c1, float *dst) {
    const int64_t K = w->cols, NG = K / w->group;
    const int8_t *qp = w->q + (n / PANEL) * PANEL * K + n % PANEL;
    const float *sp = w->scale + (n / PANEL) * PANEL * NG + n % PANEL;
    const float *op = w->offset + (n / PANEL) * PANEL * NG + n % PANEL;
    for (int64_t k = c0; k < c1; k++) {
        const int64_t g = k / w->group;
        dst[k - c0] = (float)qp[k * PANEL] * sp[g * PANEL] + op[g * PANEL];
    }
}

// ---- Block fill (gemm_wsource.fill): the float32 panels of one W block ----------------------------------
// One walker over panels and groups; per path only the steps of one group of one panel differ. Integer to
// float conversion is exact and the product and the sum round once each on every path.

// `steps` k steps of one panel within one group: out[s][j] = q[s][j] * scale[j] + offset[j].
typedef void (*group_fill_fn)(const int8_t *q, const float *scale, const float *offset, int64_t steps, float *out);

static void group_generic(const int8_t *q, const float *scale, const float *offset, int64_t steps, float *out) {
    for (int64_t s = 0; s < steps; s++, q += PANEL, out += PANEL)
        for (int j = 0; j < PANEL; j++) out[j] = (float)q[j] * scale[j] + offset[j];
}

__attribute__((target("avx2"))) static void group_avx2(const int8_t *q, const float *scale, const float *offset,
                                                       int64_t steps, float *out) {
    const __m256 d0 = _mm256_loadu_ps(scale), d1 = _mm256_loadu_ps(scale + 8);
    const __m256 m0 = _mm256_loadu_ps(offset), m1 = _mm256_loadu_ps(offset + 8);
    for (int64_t s = 0; s < steps; s++, q += PANEL, out += PANEL) {
        const __m128i v = _mm_loadu_si128((const __m128i *)q);
        const __m256 a = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
        const __m256 b = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)));
        _mm256_storeu_ps(out, _mm256_add_ps(_mm256_mul_ps(a, d0), m0));
        _mm256_storeu_ps(out + 8, _mm256_add_ps(_mm256_mul_ps(b, d1), m1));
    }
}

__attribute__((target("avx512f"))) static void group_avx512(const int8_t *q, const float *scale, const float *offset,
                                                             int64_t steps, float *out) {
    const __m512 d = _mm512_loadu_ps(scale), m = _mm512_loadu_ps(offset);
    for (int64_t s = 0; s < steps; s++, q += PANEL, out += PANEL) {
        const __m512 a = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)));
        _mm512_storeu_ps(out, _mm512_add_ps(_mm512_mul_ps(a, d), m));
    }
}

typedef struct {
    const cullme_qpanels *w;
    group_fill_fn group;
} fill_context;

static void fill_block(const void *ctx, int64_t p0, int64_t np, int64_t s0, int64_t ks, uint32_t *buf) {
    const fill_context *c = ctx;
    const cullme_qpanels *w = c->w;
    const int64_t K = w->cols, G = w->group, NG = K / G;
    float *out = (float *)buf;
    for (int64_t p = p0; p < p0 + np; p++) {
        const int8_t *q = w->q + p * PANEL * K;
        const float *sc = w->scale + p * PANEL * NG, *of = w->offset + p * PANEL * NG;
        for (int64_t s = s0; s < s0 + ks;) {
            const int64_t g = s / G, end = (g + 1) * G < s0 + ks ? (g + 1) * G : s0 + ks;
            c->group(q + s * PANEL, sc + g * PANEL, of + g * PANEL, end - s, out);
            out += (end - s) * PANEL;
            s = end;
        }
    }
}

// One block buffer per thread, kept for the thread's life (a product runs many blocks; allocating per call
// would fault its pages in every time).
static pthread_key_t block_key;
static pthread_once_t block_once = PTHREAD_ONCE_INIT;
typedef struct { uint32_t *words; int64_t capacity; } block_buffer;

static void block_buffer_free(void *p) {
    block_buffer *b = p;
    free(b->words);
    free(b);
}
static void block_key_make(void) { pthread_key_create(&block_key, block_buffer_free); }

static uint32_t *thread_block_buffer(int64_t words) {
    pthread_once(&block_once, block_key_make);
    block_buffer *b = pthread_getspecific(block_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b) return NULL;
        pthread_setspecific(block_key, b);
    }
    if (b->capacity < words) {
        free(b->words);
        b->words = aligned_alloc(64, (size_t)(words * 4 + 63) / 64 * 64);
        b->capacity = b->words ? words : 0;
    }
    return b->words;
}

int cullme_gemm_q(const float *x, int64_t M, int64_t K, const cullme_qpanels *w, int64_t n_begin, int64_t n_end,
                  float *out, int64_t ldo, const float *bias) {
    static const group_fill_fn groups[] = {group_generic, group_avx2, group_avx512};  // by cullme_gemm's path
    const fill_context ctx = {w, groups[cullme_gemm_path_index()]};
    gemm_wsource ws = {fill_block, &ctx, thread_block_buffer(cullme_gemm_block_words(K))};
    if (!ws.buf) return -1;
    cullme_gemm_from_blocks(x, M, K, &ws, n_begin, n_end, out, ldo, bias);
    return 0;
}
