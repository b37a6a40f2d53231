// BF16 vs exact GEMM microbenchmark, one thread: cullme_gemm (fp32) and cullme_gemm_bf16 on one
// shape (default the SmolLM2 MLP up/gate product M=512, N=1536, K=576). Build & run:
// bench/run_gemm_bf16_bench.sh [M N K [min_seconds [rounds]]]. BENCH_TIMER=cpu measures the thread's
// CPU time (use on a shared machine). Also prints how far bf16 is from fp32 and from its C emulation.
#define _GNU_SOURCE
#include "cullme_gemm.h"
#include "cullme_gemm_bf16.h"
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

static double measure(int bf16, const float *x, int64_t M, int64_t K, const void *packed, int64_t N,
                      float *out, double min_time) {
    int it = 0;
    double t0 = now(), t;
    do {
        if (bf16) cullme_gemm_bf16(x, M, K, packed, N, 0, N, out, N, NULL);
        else cullme_gemm(x, M, K, packed, N, 0, N, out, N, NULL);
        it++;
        t = now() - t0;
    } while (t < min_time);
    return 2.0 * M * N * K * it / t * 1e-9;
}

int main(int argc, char **argv) {
    int64_t M = argc > 1 ? atoll(argv[1]) : 512, N = argc > 2 ? atoll(argv[2]) : 1536;
    int64_t K = argc > 3 ? atoll(argv[3]) : 576;
    double min_time = argc > 4 ? atof(argv[4]) : 0.3;
    int rounds = argc > 5 ? atoi(argv[5]) : 3;
    g_cpu_timer = getenv("BENCH_TIMER") && strcmp(getenv("BENCH_TIMER"), "cpu") == 0;
    float *x = malloc(M * K * 4), *w = malloc(N * K * 4), *o1 = malloc(M * N * 4), *o2 = malloc(M * N * 4);
    float *o3 = malloc(M * N * 4);
    float *p32 = aligned_alloc(64, (cullme_gemm_packed_floats(N, K) * 4 + 63) / 64 * 64);
    uint32_t *p16 = aligned_alloc(64, (cullme_gemm_bf16_packed_words(N, K) * 4 + 63) / 64 * 64);
    srand(1);
    for (int64_t i = 0; i < M * K; i++) x[i] = (float)(rand() % 1000000) / 1e6f - 0.5f;
    for (int64_t i = 0; i < N * K; i++) w[i] = ((float)(rand() % 1000000) / 1e6f - 0.5f) * 0.1f;
    cullme_gemm_pack(w, N, K, p32);
    cullme_gemm_bf16_pack(w, N, K, p16);
    cullme_gemm(x, M, K, p32, N, 0, N, o1, N, NULL);
    cullme_gemm_bf16(x, M, K, p16, N, 0, N, o2, N, NULL);
    printf("paths: exact %s, bf16 %s; M=%lld N=%lld K=%lld, 1 thread, %s\n", cullme_gemm_path(),
           cullme_gemm_bf16_path(), (long long)M, (long long)N, (long long)K,
           g_cpu_timer ? "thread CPU time" : "wall clock");
    cullme_gemm_bf16_disable(1);
    cullme_gemm_bf16(x, M, K, p16, N, 0, N, o3, N, NULL);
    cullme_gemm_bf16_disable(0);
    double d12 = 0, a1 = 0, d23 = 0;
    int64_t bitdiff = 0;
    for (int64_t i = 0; i < M * N; i++) {
        d12 = fmax(d12, fabs((double)o1[i] - o2[i])); a1 = fmax(a1, fabs(o1[i]));
        d23 = fmax(d23, fabs((double)o2[i] - o3[i])); bitdiff += memcmp(&o2[i], &o3[i], 4) != 0;
    }
    printf("bf16 vs fp32: max |diff| / max |out| = %.2e; kernel vs C emulation: %.2e (%lld of %lld differ in bits)\n",
           d12 / a1, d23 / a1, (long long)bitdiff, (long long)(M * N));
    double best[2] = {0, 0};
    for (int r = 0; r < rounds; r++)
        for (int b = 0; b < 2; b++) {
            double g = measure(b, x, M, K, b ? (void *)p16 : (void *)p32, N, b ? o2 : o1, min_time);
            if (g > best[b]) best[b] = g;
        }
    printf("GFLOP/s (best of %d): exact %.1f   bf16 %.1f   (%.2fx)\n", rounds, best[0], best[1], best[1] / best[0]);
    return 0;
}
