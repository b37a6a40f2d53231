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

/// out[m, n] for m < M, n in [n_begin, n_end) from x[M, K] and the packed W; K > 0, M > 0. `xp` is the
/// kernel's x tile buffer.
static inline void gemm_drive(const gemm_kernel *kern, const float *x, int64_t M, int64_t K, const uint32_t *packed,
                              int64_t n_begin, int64_t n_end, float *out, int64_t ldo, const float *bias, void *xp) {
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
                    const uint32_t *wp = packed + (n0 / GEMM_PANEL) * pstride + s0 * GEMM_PANEL;
                    for (int64_t e = pf + pf_per_group; pf < e && pf < pf_total; pf++) {
                        const int64_t r = pf / (xlines + 1), l = pf % (xlines + 1);
                        _mm_prefetch((const char *)(x + (m1 + r) * K + k0) + 64 * l, _MM_HINT_T1);
                    }
                    if (!first && n0 + group < ne)  // next tile's partial sums
                        for (int r = 0; r < mr; r++)
                            for (int j = 0; j < nv; j++)
                                _mm_prefetch((const char *)(out + (m0 + r) * ldo + n0 + group + 16 * j), _MM_HINT_T0);
                    kern->tile(mr, nv, xp, wp, pstride, ks, out + m0 * ldo + n0, ldo, ncols,
                               bias ? bias + n0 : NULL, first, last);
                }
            }
        }
    }
}

#endif // CULLME_GEMM_DRIVER_H
