// GEMM benchmark: cullme_gemm vs OpenBLAS cblas_sgemm(RowMajor, NoTrans, Trans) for the
// SmolLM2-135M linear layers, 1 and 2 threads. Build & run: bench/run_gemm_bench.sh
// (for 2 threads of ours, N is split at a multiple of 16 between the main thread and one
// persistent worker thread that waits with sched_yield like OpenBLAS; OpenBLAS uses its own pool).
#define _GNU_SOURCE
#include "cullme_gemm.h"
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern void openblas_set_num_threads(int);

// BENCH_TIMER=cpu: CPU time instead of wall time (for a machine shared with other jobs): the
// calling thread's CPU time for 1 thread, the process CPU time / 2 for 2 threads (spin-waits of
// both our worker and OpenBLAS's pool count as busy time, so imbalance still shows).
static int g_cpu_timer, g_threads = 1;
static double now(void) {
    struct timespec ts;
    clock_gettime(!g_cpu_timer ? CLOCK_MONOTONIC
                  : g_threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID, &ts);
    if (g_cpu_timer && g_threads == 2) return (ts.tv_sec + ts.tv_nsec * 1e-9) / 2;
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const float *x, *packed, *bias;
    float *out;
    int64_t M, K, N, nb, ne;
} job_t;

static job_t g_job;
static atomic_int g_gen, g_done, g_stop;

static void *worker(void *arg) {
    int seen = (int)(intptr_t)arg;  // generation at creation: only later jobs are ours
    for (;;) {
        int g;
        while ((g = atomic_load_explicit(&g_gen, memory_order_acquire)) == seen) {
            if (atomic_load_explicit(&g_stop, memory_order_relaxed)) return NULL;
            sched_yield();  // as OpenBLAS does while waiting
        }
        seen = g;
        job_t j = g_job;
        cullme_gemm(j.x, j.M, j.K, j.packed, j.N, j.nb, j.ne, j.out, j.N, j.bias);
        atomic_store_explicit(&g_done, g, memory_order_release);
    }
}

static void ours(int threads, const float *x, int64_t M, int64_t K, const float *packed, int64_t N,
                 float *out) {
    if (threads == 1) { cullme_gemm(x, M, K, packed, N, 0, N, out, N, NULL); return; }
    int64_t panels = (N + 15) / 16, split = (panels + 1) / 2 * 16;
    if (split > N) split = N;
    g_job = (job_t){x, packed, NULL, out, M, K, N, split, N};
    int g = atomic_load(&g_gen) + 1;
    atomic_store_explicit(&g_gen, g, memory_order_release);
    cullme_gemm(x, M, K, packed, N, 0, split, out, N, NULL);
    while (atomic_load_explicit(&g_done, memory_order_acquire) != g) sched_yield();  // as OpenBLAS does while waiting
}

static void blas(const float *x, int64_t M, int64_t K, const float *w, int64_t N, float *out) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x, (int)K, w,
                (int)K, 0.0f, out, (int)N);
}

// best GFLOP/s over `rounds` rounds of >= min_time seconds
static double measure(int which, int threads, const float *x, int64_t M, int64_t K, const float *w,
                      const float *packed, int64_t N, float *out, double min_time, int rounds) {
    double flops = 2.0 * M * N * K, best = 0;
    g_threads = threads;
    for (int r = 0; r < rounds; r++) {
        int it = 0;
        double t0 = now(), t;
        do {
            if (which) ours(threads, x, M, K, packed, N, out); else blas(x, M, K, w, N, out);
            it++;
            t = now() - t0;
        } while (t < min_time);
        double gf = flops * it / t * 1e-9;
        if (gf > best) best = gf;
    }
    return best;
}

int main(int argc, char **argv) {
    const char *path = getenv("CULLME_GEMM_PATH");
    if (path) cullme_gemm_force_path(path);
    g_cpu_timer = getenv("BENCH_TIMER") && strcmp(getenv("BENCH_TIMER"), "cpu") == 0;
    double min_time = argc > 1 ? atof(argv[1]) : 0.25;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    const int64_t shapes[][2] = {{960, 576}, {576, 576}, {3072, 576}, {576, 1536}, {49152, 576}};
    const int64_t Ms[] = {256, 1024, 4096};
    printf("cullme_gemm path: %s   (GFLOP/s, best of %d rounds of >= %.2fs)\n", cullme_gemm_path(),
           rounds, min_time);
    printf("timer: %s\n", g_cpu_timer ? "CPU time (BENCH_TIMER=cpu)" : "wall clock");
    printf("%6s %6s %5s | %8s %8s | %8s %8s | vs blas\n", "M", "N", "K", "ours1T", "blas1T", "ours2T",
           "blas2T");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
            int64_t N = shapes[s][0], K = shapes[s][1], M = Ms[mi];
            if (argc > 3 && atoll(argv[3]) != M) continue;  // optional filters: M N
            if (argc > 4 && atoll(argv[4]) != N) continue;
            if (N == 49152 && M > 1024) continue;  // lm head: only needed for short batches
            float *x = aligned_alloc(64, M * K * 4), *w = aligned_alloc(64, N * K * 4);
            float *packed = aligned_alloc(64, (cullme_gemm_packed_floats(N, K) * 4 + 63) / 64 * 64);
            float *o1 = aligned_alloc(64, M * N * 4), *o2 = aligned_alloc(64, M * N * 4);
            srand(1);
            for (int64_t i = 0; i < M * K; i++) x[i] = (float)(rand() % 1000000) / 1e6f - 0.5f;
            for (int64_t i = 0; i < N * K; i++) w[i] = ((float)(rand() % 1000000) / 1e6f - 0.5f) * 0.1f;
            cullme_gemm_pack(w, N, K, packed);
            // agreement with OpenBLAS: max |ours - blas| / max |blas|
            ours(1, x, M, K, packed, N, o1);
            blas(x, M, K, w, N, o2);
            double maxd = 0, maxa = 0;
            for (int64_t i = 0; i < M * N; i++) {
                double d = fabs((double)o1[i] - o2[i]);
                if (d > maxd) maxd = d;
                if (fabs(o2[i]) > maxa) maxa = fabs(o2[i]);
            }
            double maxrel = maxd / maxa;
            double r[4];
            openblas_set_num_threads(1);
            r[0] = r[1] = r[2] = r[3] = 0;
            for (int rd = 0; rd < rounds; rd++) {  // alternate ours / OpenBLAS, keep the best
                double a = measure(1, 1, x, M, K, w, packed, N, o1, min_time, 1);
                double b = measure(0, 1, x, M, K, w, packed, N, o2, min_time, 1);
                if (a > r[0]) r[0] = a;
                if (b > r[1]) r[1] = b;
            }
            if (getenv("BENCH_1T")) goto print;
            for (int rd = 0; rd < rounds; rd++) {
                pthread_t th;
                usleep(200000);  // let OpenBLAS's pool threads stop spinning and go to sleep
                atomic_store(&g_stop, 0);
                pthread_create(&th, NULL, worker, (void *)(intptr_t)atomic_load(&g_gen));
                double a = measure(1, 2, x, M, K, w, packed, N, o1, min_time, 1);
                atomic_store(&g_stop, 1);
                pthread_join(th, NULL);
                openblas_set_num_threads(2);
                double b = measure(0, 2, x, M, K, w, packed, N, o2, min_time, 1);
                openblas_set_num_threads(1);
                if (a > r[2]) r[2] = a;
                if (b > r[3]) r[3] = b;
            }
        print:
            printf("%6lld %6lld %5lld | %8.1f %8.1f | %8.1f %8.1f | %.1e\n", (long long)M, (long long)N,
                   (long long)K, r[0], r[1], r[2], r[3], maxrel);
            fflush(stdout);
            free(x); free(w); free(packed); free(o1); free(o2);
        }
    }
    return 0;
}
