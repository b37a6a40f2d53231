/* load -> embed -> free, N times; prints RSS at cycles 10 and N and fails if it grew by more than
 * 10% + 8 MB. Run under valgrind --leak-check=full (or an ASan build) for leak checking.
 * Usage: load_cycle MODEL_PATH [CYCLES=1000]. */
#include "common.h"

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "Tests/fixtures/tiny-llama";
    int cycles = argc > 2 ? atoi(argv[2]) : 1000;
    const char *texts[3] = {"hello world", "x", "The quick brown fox jumps over the lazy dog. 日本語 \xF0\x9F\x98\x80"};
    long rss10 = -1, rss_end = -1;
    float first[3 * 4096];
    int dim = 0;
    for (int c = 1; c <= cycles; c++) {
        ullme_model *m = load_or_die(path, NULL);
        ullme_model_info info;
        CHECK_STATUS(ullme_model_get_info(m, &info), ULLME_OK);
        dim = info.hidden_size;
        if (dim > 4096) { fprintf(stderr, "hidden size too large for this test\n"); return 2; }
        float out[3 * 4096];
        ullme_embed_stats st;
        CHECK_STATUS(ullme_embed(m, texts, NULL, 3, NULL, out, (size_t)3 * dim, &st), ULLME_OK);
        int32_t ids[64];
        size_t n = 0;
        CHECK_STATUS(ullme_tokenize(m, texts[2], ULLME_NUL_TERMINATED, 1, ids, 64, &n), ULLME_OK);
        /* a failing call too: the error path must not leak either */
        CHECK_STATUS(ullme_tokenize(m, texts[2], ULLME_NUL_TERMINATED, 1, ids, 1, &n), ULLME_E_ARG);
        if (c == 1) memcpy(first, out, sizeof(float) * 3 * dim);
        else CHECK(memcmp(first, out, sizeof(float) * 3 * dim) == 0, "cycle %d: embeddings differ from cycle 1", c);
        ullme_model_free(m);
        /* a failing load (missing file) */
        ullme_model *bad = NULL;
        CHECK_STATUS(ullme_model_load("/nonexistent/model.gguf", NULL, &bad), ULLME_E_IO);
        if (c == 10) rss10 = rss_kb();
        if (c == cycles) rss_end = rss_kb();
        if (g_failures > 5) break;
    }
    printf("load_cycle: %s cycles=%d dim=%d rss@10=%ld kB rss@%d=%ld kB growth=%ld kB\n", path, cycles, dim, rss10, cycles,
           rss_end, rss_end - rss10);
    if (cycles >= 100) CHECK(rss_end <= rss10 + rss10 / 10 + 8192, "RSS grew from %ld kB to %ld kB", rss10, rss_end);
    printf("load_cycle: %s\n", g_failures ? "FAIL" : "OK");
    return g_failures ? 1 : 0;
}
