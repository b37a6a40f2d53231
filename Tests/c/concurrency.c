/* 8 threads embed through one model handle; every result must be bit-identical to a single-threaded
 * run of the same call (same texts in the same call: a batched call is compared with a batched
 * reference, one-text calls with one-text references, because the GEMM kernels OpenBLAS picks depend
 * on the batch's row count, which changes the last bits; that difference is measured and printed).
 * Usage: concurrency MODEL_PATH [THREADS=8] [ROUNDS=4]. Exit 0 on success. */
#include <pthread.h>
#include "common.h"

#define N_TEXTS 24
static const char *texts[N_TEXTS];
static char storage[N_TEXTS][512];
static ullme_model *model;
static int dim, rounds;
static float *reference;

typedef struct { int id; int mismatches; int errors; } job;

static void make_texts(void) {
    static const char *words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "naïve", "café",
                                  "日本語", "42", "embedding", "model", "\xF0\x9F\x98\x80", "x"};
    for (int i = 0; i < N_TEXTS; i++) {
        storage[i][0] = 0;
        int n = 1 + (i * 7) % 40; /* different lengths: different batches and paddings */
        for (int w = 0; w < n; w++) {
            strcat(storage[i], words[(i * 3 + w * 5) % 16]);
            strcat(storage[i], w % 4 == 3 ? ". " : " ");
        }
        texts[i] = storage[i];
    }
}

/* 0: no instruction, 1: instruction + candidate, 2: instruction + query. */
static int mode_of(int id) { return id % 2 == 0 ? 0 : (id % 4 == 1 ? 2 : 1); }

static void set_mode(ullme_embed_params *ep, int mode) {
    *ep = ullme_embed_default_params();
    if (mode > 0) { ep->instruction = "Given a query, retrieve passages"; ep->is_query = mode == 2; }
}

/* Single-threaded references: batched and one text per call. */
static void embed_reference(int mode, float *batched, float *single) {
    ullme_embed_params ep;
    set_mode(&ep, mode);
    CHECK_STATUS(ullme_embed(model, texts, NULL, N_TEXTS, &ep, batched, (size_t)N_TEXTS * dim, NULL), ULLME_OK);
    for (int i = 0; i < N_TEXTS; i++)
        CHECK_STATUS(ullme_embed(model, &texts[i], NULL, 1, &ep, single + (size_t)i * dim, dim, NULL), ULLME_OK);
}

static void *worker(void *arg) {
    job *j = arg;
    float *out = malloc(sizeof(float) * N_TEXTS * dim);
    ullme_embed_params ep;
    set_mode(&ep, mode_of(j->id));
    for (int r = 0; r < rounds; r++) {
        /* Each thread also embeds texts one by one (other batch composition), in its own order. */
        if ((r + j->id) % 2 == 0) {
            if (ullme_embed(model, texts, NULL, N_TEXTS, &ep, out, (size_t)N_TEXTS * dim, NULL) != ULLME_OK) { j->errors++; continue; }
        } else {
            for (int k = 0; k < N_TEXTS; k++) {
                int i = (k * 5 + j->id) % N_TEXTS;
                if (ullme_embed(model, &texts[i], NULL, 1, &ep, out + (size_t)i * dim, dim, NULL) != ULLME_OK) j->errors++;
            }
        }
        int batched = (r + j->id) % 2 == 0;
        const float *ref = reference + ((size_t)mode_of(j->id) * 2 + (batched ? 0 : 1)) * N_TEXTS * dim;
        if (memcmp(out, ref, sizeof(float) * N_TEXTS * dim) != 0) j->mismatches++;
    }
    free(out);
    return NULL;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "Tests/fixtures/tiny-llama";
    int n_threads = argc > 2 ? atoi(argv[2]) : 8;
    rounds = argc > 3 ? atoi(argv[3]) : 4;
    make_texts();
    ullme_model_params mp = ullme_model_default_params();
    mp.batch_size = 8;
    model = load_or_die(path, &mp);
    ullme_model_info info;
    ullme_model_get_info(model, &info);
    dim = info.hidden_size;

    reference = calloc((size_t)6 * N_TEXTS * dim, sizeof(float));
    double maxdiff = 0;
    for (int mode = 0; mode < 3; mode++) {
        float *b = reference + (size_t)mode * 2 * N_TEXTS * dim, *o = b + (size_t)N_TEXTS * dim;
        embed_reference(mode, b, o);
        for (size_t k = 0; k < (size_t)N_TEXTS * dim; k++) {
            double d = b[k] > o[k] ? b[k] - o[k] : o[k] - b[k];
            if (d > maxdiff) maxdiff = d;
        }
    }
    printf("batched vs one-text-per-call (single thread): max |diff| = %.3g\n", maxdiff);

    pthread_t th[64];
    job jobs[64];
    if (n_threads > 64) n_threads = 64;
    for (int t = 0; t < n_threads; t++) { jobs[t] = (job){t, 0, 0}; pthread_create(&th[t], NULL, worker, &jobs[t]); }
    int mismatches = 0, errors = 0;
    for (int t = 0; t < n_threads; t++) { pthread_join(th[t], NULL); mismatches += jobs[t].mismatches; errors += jobs[t].errors; }
    CHECK(errors == 0, "%d embed calls failed", errors);
    CHECK(mismatches == 0, "%d of %d thread-rounds differ from the single-threaded result", mismatches, n_threads * rounds);
    printf("concurrency: %s dim=%d threads=%d rounds=%d texts=%d: %d mismatches, %d errors -> %s\n", path, dim, n_threads,
           rounds, N_TEXTS, mismatches, errors, g_failures ? "FAIL" : "OK");
    ullme_model_free(model);
    free(reference);
    return g_failures ? 1 : 0;
}
