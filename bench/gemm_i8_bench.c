// Int8 vs exact GEMM microbenchmark, one thread: cullme_gemm_q (exact, the same integer panels dequantised
// block by block) and cullme_gemm_i8 (int8 activations, integer dots) on one shape (default the SmolLM2 MLP
// up/gate product M=128, N=1536, K=576) with Q4_1-like weights (q in 0..15, a scale and a min per group of
// 32). Build & run: bench/run_gemm_i8_bench.sh [M N K [min_seconds]]. BENCH_TIMER=cpu measures the thread's
// CPU time (use on a shared machine); BENCH_WEIGHTS=q8_0 takes Q8_0-sized integers instead. Prints GFLOP/s of each kernel path this CPU has, the activation
// quantisation's share, and the relative error of int8 against exact.
#define _GNU_SOURCE
#include "cullme.h"
#include "cullme_gemm.h"
#include "cullme_gemm_i8.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_cpu_timer;
static double now(void) {
    struct timespec ts;
    clock_gettime(g_cpu_timer ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const int64_t M = argc > 3 ? atoll(argv[1]) : 128, N = argc > 3 ? atoll(argv[2]) : 1536, K = argc > 3 ? atoll(argv[3]) : 576;
    const double min_time = argc > 4 ? atof(argv[4]) : 1.0;
    g_cpu_timer = getenv("BENCH_TIMER") && strcmp(getenv("BENCH_TIMER"), "cpu") == 0;
    if (K % 32 != 0) { fprintf(stderr, "K must be a multiple of 32\n"); return 2; }
    cullme_qpanels *q = cullme_qpanels_new(N, K, 32);
    srand(1);
    const int64_t P = (N + 15) / 16 * 16;
    // BENCH_WEIGHTS=q8_0: Q8_0-sized integers (-127..127), the AVX2 path's signed variant.
    const int q8 = getenv("BENCH_WEIGHTS") && strcmp(getenv("BENCH_WEIGHTS"), "q8_0") == 0;
    for (int64_t i = 0; i < P * K; i++) q->q[i] = (int8_t)(q8 ? rand() % 255 - 127 : rand() % 16);
    for (int64_t i = 0; i < P * (K / 32); i++) { q->scale[i] = 0.01f * (float)(1 + rand() % 5); q->offset[i] = -0.08f; }
    cullme_i8panels *w = cullme_i8panels_new(q);
    float *x = malloc(sizeof(float) * M * K), *exact = malloc(sizeof(float) * M * N), *out = malloc(sizeof(float) * M * N);
    int8_t *xq = malloc(M * K);
    float *sx = malloc(sizeof(float) * M * (K / 32)), *xsum = malloc(sizeof(float) * M * (K / 32));
    for (int64_t i = 0; i < M * K; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    const double flop = 2.0 * M * N * K;
    int it = 0;
    double t0 = now(), t;
    do { cullme_gemm_q(x, M, K, q, 0, N, exact, N, NULL); it++; t = now() - t0; } while (t < min_time);
    const double exact_gf = flop * it / t * 1e-9;
    printf("M=%lld N=%lld K=%lld, one thread (%s timer)\nexact (cullme_gemm_q): %.1f GFLOP/s\n", (long long)M,
           (long long)N, (long long)K, g_cpu_timer ? "cpu" : "wall", exact_gf);
    const char *paths[] = {"avx512_vnni", "avx_vnni", "avx2", "generic"};
    for (int p = 0; p < 4; p++) {
        cullme_gemm_i8_force_path(paths[p]);
        if (strcmp(cullme_gemm_i8_path(), paths[p]) != 0) continue;
        it = 0; t0 = now();
        do { cullme_i8_quantize_rows(x, M, K, 32, xq, sx, xsum); it++; t = now() - t0; } while (t < min_time / 4);
        const double tquant = t / it;
        it = 0; t0 = now();
        do { cullme_gemm_i8(xq, sx, xsum, M, w, 0, N, out, N, NULL); it++; t = now() - t0; } while (t < min_time);
        const double tgemm = t / it;
        double err = 0, ref = 0;
        for (int64_t i = 0; i < M * N; i++) { err += (out[i] - exact[i]) * (out[i] - exact[i]); ref += exact[i] * exact[i]; }
        printf("int8 %-12s %.1f GFLOP/s (%.2fx exact); with the activation quantisation %.1f GFLOP/s; "
               "relative error %.2e\n", paths[p], flop / tgemm * 1e-9, flop / tgemm * 1e-9 / exact_gf,
               flop / (tgemm + tquant) * 1e-9, sqrt(err / ref));
    }
    return 0;
}
