// The cache-blocking loop that cullme_gemm (float32) and cullme_gemm_bf16 share (internal header).
//
// Both pack W in 16-column panels with one 4-byte word per column and k "step": one float (float32)
// or one pair of bfloat16 (bf16). The loop nests k-blocks (x tile in L1) > column blocks (W block in
// L2_W_BYTES) > row tiles of kernel->mr rows > groups of kernel->nv panels > the micro-kernel. Block
// sizes never change a result: a k-block boundary stores and reloads the exact float32 partial sum.
#ifndef CULLME_GEMM_DRIVER_H
#define CULLME_GEMM_DRIVER_H

#include <stdint.h>
#include <immintrin.h>

#define GEMM_PANEL 16
#define GEMM_L2_W_BYTES (640 * 1024)  // W block (nc columns x k steps) kept in L2 while all rows stream by

typedef struct {
    int mr, nv;           // rows per micro-tile, panels per micro-tile
    int step_elems;       // x elements per k step: 1 (float32) or 2 (bf16 pairs)
    int64_t max_steps;    // k steps per block (the x tile of mr rows stays in L1)
    // Copies rows m0 ..< m0 + mr, elements k0 ..< k0 + kc of x into the kernel's x tile `xp`.
    void (*pack_x)(const float *x, int64_t K, int64_t m0, int mr, int64_t k0, int64_t kc, void *xp);
    // One micro-tile: mr rows of xp times nv panels of w (`steps` k steps), ncols valid columns of out.
    void (*tile)(int mr, int nv, const void *xp, const uint32_t *w, int64_t pstride, int64_t steps,
                 float *out, int64_t ldo, int64_t ncols, const float *bias, int first, int last);
} gemm_kernel;

/// Where W's blocks come from when they are not packed whole: `fill` writes the panels p0 ..< p0 + np of
/// k steps s0 ..< s0 + ks into buf (panel-major, 16 * ks words a panel), exactly the words the whole packing
/// would hold there. The driver fills each group of panels of a (k-block, column block) once, just before
/// its first row tile, and runs every later row tile on the filled block.
typedef struct {
    void (*fill)(const void *ctx, int64_t p0, int64_t np, int64_t s0, int64_t ks, uint32_t *buf);
    const void *ctx;
    uint32_t *buf;  // >= gemm_block_words(kernel, K) words
} gemm_wsource;

/// Words a gemm_wsource buffer needs for the blocks gemm_drive makes (the column block's cap below, or
/// one group of panels if a single group is larger).
static inline int64_t gemm_block_words(const gemm_kernel *kern, int64_t K) {
    const int64_t S = (K + kern->step_elems - 1) / kern->step_elems;
    const int64_t ks = S < kern->max_steps ? S : kern->max_steps;
    const int64_t group_words = ks * (int64_t)kern->nv * GEMM_PANEL;
    const int64_t cap = GEMM_L2_W_BYTES / (int64_t)sizeof(uint32_t);
    return group_words > cap ? group_words : cap;
}

/// out[m, n] for m < M, n in [n_begin, n_end) from x[M, K] and the packed W; K > 0, M > 0. `xp` is the
/// kernel's x tile buffer. W is `packed` whole, or, when `ws` is not NULL, made block by block by ws->fill.
static inline void gemm_drive(const gemm_kernel *kern, const float *x, int64_t M, int64_t K, const uint32_t *packed,
                              const gemm_wsource *ws, int64_t n_begin, int64_t n_end, float *out, int64_t ldo,
                              const float *bias, void *xp) {
    const int MR = kern->mr;
    const int64_t S = (K + kern->step_elems - 1) / kern->step_elems;  // k steps in all
    const int64_t nkb = (S + kern->max_steps - 1) / kern->max_steps;
    const int64_t ksb = (S + nkb - 1) / nkb;                           // balanced k-blocks
    const int64_t group = (int64_t)kern->nv * GEMM_PANEL;
    const int64_t pstride = (int64_t)GEMM_PANEL * S;

    for (int64_t s0 = 0; s0 < S; s0 += ksb) {
        const int64_t ks = S - s0 < ksb ? S - s0 : ksb;
        const int64_t k0 = s0 * kern->step_elems;
        const int64_t kc = K - k0 < ks * kern->step_elems ? K - k0 : ks * kern->step_elems;  // x elements
        const int first = s0 == 0, last = s0 + ks == S;
        // Column blocks: W block (nc x ks words) fits L2; blocks balanced (no narrow last block,
        // which would re-read every x tile for little work).
        const int64_t ngroups = (n_end - n_begin + group - 1) / group;
        int64_t gmax = GEMM_L2_W_BYTES / (ks * (int64_t)sizeof(uint32_t) * group);
        if (gmax < 1) gmax = 1;
        const int64_t nnb = (ngroups + gmax - 1) / gmax;
        const int64_t nc = (ngroups + nnb - 1) / nnb * group;
        const int64_t xlines = kc * (int64_t)sizeof(float) / 64;  // cache lines per x row of the block
        for (int64_t nb = n_begin; nb < n_end; nb += nc) {
            const int64_t ne = nb + nc < n_end ? nb + nc : n_end;
            const int64_t gcount = (ne - nb + group - 1) / group;
            for (int64_t m0 = 0; m0 < M; m0 += MR) {
                const int mr = (int)(M - m0 < MR ? M - m0 : MR);
                const int64_t m1 = m0 + MR;  // next tile, prefetched into L2 while this one runs
                const int mr1 = (int)(M - m1 < MR ? (M - m1 > 0 ? M - m1 : 0) : MR);
                const int64_t pf_total = (int64_t)mr1 * (xlines + 1);
                const int64_t pf_per_group = (pf_total + gcount - 1) / gcount;
                int64_t pf = 0;
                kern->pack_x(x, K, m0, mr, k0, kc, xp);
                for (int64_t n0 = nb; n0 < ne; n0 += group) {
                    const int64_t ncols = ne - n0 < group ? ne - n0 : group;
                    const int nv = (int)((ncols + GEMM_PANEL - 1) / GEMM_PANEL);
                    const uint32_t *wp = ws ? ws->buf + (n0 - nb) * ks : packed + (n0 / GEMM_PANEL) * pstride + s0 * GEMM_PANEL;
                    // Made just before the first row tile uses it: the source streams in while the
                    // kernels work on the previous group.
                    if (ws && m0 == 0) ws->fill(ws->ctx, n0 / GEMM_PANEL, nv, s0, ks, (uint32_t *)wp);
                    for (int64_t e = pf + pf_per_group; pf < e && pf < pf_total; pf++) {
                        const int64_t r = pf / (xlines + 1), l = pf % (xlines + 1);
                        _mm_prefetch((const char *)(x + (m1 + r) * K + k0) + 64 * l, _MM_HINT_T1);
                    }
                    if (!first && n0 + group < ne)  // next tile's partial sums
                        for (int r = 0; r < mr; r++)
                            for (int j = 0; j < nv; j++)
                                _mm_prefetch((const char *)(out + (m0 + r) * ldo + n0 + group + 16 * j), _MM_HINT_T0);
                    kern->tile(mr, nv, xp, wp, ws ? GEMM_PANEL * ks : pstride, ks, out + m0 * ldo + n0, ldo, ncols,
                               bias ? bias + n0 : NULL, first, last);
                }
            }
        }
    }
}

// cullme_gemm with W made block by block (gemm.c; the float32 kernels, same results as W packed whole).
void cullme_gemm_from_blocks(const float *x, int64_t M, int64_t K, const gemm_wsource *ws,
                             int64_t n_begin, int64_t n_end, float *out, int64_t ldo, const float *bias);
// Words the gemm_wsource buffer of cullme_gemm_from_blocks needs for K, on the current path.
int64_t cullme_gemm_block_words(int64_t K);
// cullme_gemm's current path: 0 generic, 1 avx2, 2 avx512 (kernels that pair with it follow it).
int cullme_gemm_path_index(void);

#endif // CULLME_GEMM_DRIVER_H
