/* Hostile and careless input through the C API: every call must return a status, never crash.
 * Usage: bad_input MODEL_PATH. Exit 0 when every check passes. */
#include <stdint.h>
#include <time.h>
#include "common.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "Tests/fixtures/tiny-llama";
    ullme_model_params mp = ullme_model_default_params();
    mp.max_length = 128;
    ullme_model *m = load_or_die(path, &mp);
    ullme_model_info info;
    CHECK_STATUS(ullme_model_get_info(m, &info), ULLME_OK);
    const int dim = info.hidden_size;
    float *out = calloc((size_t)8 * dim, sizeof(float));
    ullme_embed_stats st;
    int32_t ids[256];
    size_t n = 0;
    char buf[256];

    /* ---- NULL pointers everywhere ---- */
    ullme_model *tmp = (ullme_model *)1;
    CHECK_STATUS(ullme_model_load(NULL, NULL, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_model_load("/nonexistent/model.gguf", NULL, &tmp), ULLME_E_IO);
    CHECK(tmp == NULL, "out not cleared on failure");
    CHECK_STATUS(ullme_model_load(path, NULL, NULL), ULLME_E_ARG);
    ullme_model_free(NULL);
    CHECK_STATUS(ullme_model_get_info(NULL, &info), ULLME_E_ARG);
    CHECK_STATUS(ullme_model_get_info(m, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_model_get_params(NULL, &mp), ULLME_E_ARG);
    CHECK_STATUS(ullme_model_get_params(m, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_tokenize(NULL, "a", 1, 1, ids, 256, &n), ULLME_E_ARG);
    CHECK_STATUS(ullme_tokenize(m, "a", 1, 1, ids, 256, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_tokenize(m, NULL, 5, 1, ids, 256, &n), ULLME_E_ARG);
    CHECK_STATUS(ullme_tokenize(m, NULL, 0, 0, ids, 256, &n), ULLME_OK);
    CHECK_STATUS(ullme_tokenize(m, "abc", 3, 1, NULL, 256, &n), ULLME_E_ARG);
    CHECK_STATUS(ullme_detokenize(NULL, ids, 1, 0, buf, sizeof buf, &n), ULLME_E_ARG);
    CHECK_STATUS(ullme_detokenize(m, NULL, 3, 0, buf, sizeof buf, &n), ULLME_E_ARG);
    CHECK_STATUS(ullme_detokenize(m, ids, 0, 0, NULL, 0, &n), ULLME_OK);
    CHECK_STATUS(ullme_detokenize(m, ids, 1, 0, buf, sizeof buf, NULL), ULLME_E_ARG);
    const char *one[1] = {"hello"};
    CHECK_STATUS(ullme_embed(NULL, one, NULL, 1, NULL, out, dim, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_embed(m, NULL, NULL, 1, NULL, out, dim, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_embed(m, one, NULL, 1, NULL, NULL, dim, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_embed(m, NULL, NULL, 0, NULL, NULL, 0, &st), ULLME_OK);
    const char *nulltext[1] = {NULL};
    size_t five = 5;
    CHECK_STATUS(ullme_embed(m, nulltext, &five, 1, NULL, out, dim, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_hidden_states(NULL, ids, 1, ULLME_ATTENTION_CAUSAL, out, dim), ULLME_E_ARG);
    ids[0] = 0;
    CHECK_STATUS(ullme_hidden_states(m, NULL, 1, ULLME_ATTENTION_CAUSAL, out, dim), ULLME_E_ARG);
    CHECK_STATUS(ullme_hidden_states(m, ids, 1, ULLME_ATTENTION_CAUSAL, NULL, dim), ULLME_E_ARG);
    CHECK_STATUS(ullme_logits(NULL, ids, 1, out, dim), ULLME_E_ARG);
    CHECK_STATUS(ullme_logits(m, ids, 1, NULL, 0), ULLME_E_ARG);
    ullme_pooling pool;
    ullme_attention att;
    CHECK_STATUS(ullme_pooling_from_name(NULL, &pool), ULLME_E_ARG);
    CHECK_STATUS(ullme_pooling_from_name("mean", NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_pooling_from_name("MEAN!", &pool), ULLME_E_ARG);
    CHECK_STATUS(ullme_attention_from_name(NULL, &att), ULLME_E_ARG);
    CHECK_STATUS(ullme_attention_from_name("sideways", &att), ULLME_E_ARG);
    CHECK(strcmp(ullme_status_name(-1), "ULLME_E_UNKNOWN") == 0 && strcmp(ullme_status_name(1000), "ULLME_E_UNKNOWN") == 0,
          "status names out of range");
    CHECK(ullme_last_error() != NULL && ullme_version() != NULL, "never NULL");

    /* ---- wrong struct_size / enums / ranges ---- */
    ullme_model_params bad = ullme_model_default_params();
    bad.struct_size = 4;
    CHECK_STATUS(ullme_model_load(path, &bad, &tmp), ULLME_E_ARG);
    bad = ullme_model_default_params(); bad.pooling = (ullme_pooling)99;
    CHECK_STATUS(ullme_model_load(path, &bad, &tmp), ULLME_E_ARG);
    bad = ullme_model_default_params(); bad.attention = (ullme_attention)-3;
    CHECK_STATUS(ullme_model_load(path, &bad, &tmp), ULLME_E_ARG);
    bad = ullme_model_default_params(); bad.max_length = -1;   /* 0 = the model's own (AUTO) */
    CHECK_STATUS(ullme_model_load(path, &bad, &tmp), ULLME_E_ARG);
    bad = ullme_model_default_params(); bad.batch_size = -1;
    CHECK_STATUS(ullme_model_load(path, &bad, &tmp), ULLME_E_ARG);
    bad = ullme_model_default_params(); bad.n_threads = -7;
    CHECK_STATUS(ullme_model_load(path, &bad, &tmp), ULLME_E_ARG);
    ullme_embed_params ep = ullme_embed_default_params();
    ep.struct_size = (uint32_t)sizeof(ullme_embed_params) + 8;
    CHECK_STATUS(ullme_embed(m, one, NULL, 1, &ep, out, dim, NULL), ULLME_E_ARG);
    ep = ullme_embed_default_params();
    ep.instruction = NULL; ep.instruction_len = 12;
    CHECK_STATUS(ullme_embed(m, one, NULL, 1, &ep, out, dim, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_hidden_states(m, ids, 1, (ullme_attention)7, out, dim), ULLME_E_ARG);

    /* ---- wrong buffer sizes and lengths ---- */
    CHECK_STATUS(ullme_embed(m, one, NULL, 1, NULL, out, dim - 1, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_embed(m, one, NULL, 2, NULL, out, dim, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_embed(m, one, NULL, SIZE_MAX, NULL, out, SIZE_MAX, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_embed(m, one, NULL, SIZE_MAX / 2, NULL, out, SIZE_MAX / 2, NULL), ULLME_E_ARG);
    size_t hugelen = SIZE_MAX - 1; /* a negative length once it crosses into a signed size */
    CHECK_STATUS(ullme_embed(m, one, &hugelen, 1, NULL, out, dim, NULL), ULLME_E_ARG);
    CHECK_STATUS(ullme_tokenize(m, "abc", SIZE_MAX - 5, 1, ids, 256, &n), ULLME_E_ARG);
    CHECK_STATUS(ullme_tokenize(m, "hello world", ULLME_NUL_TERMINATED, 0, ids, 1, &n), ULLME_E_ARG);
    CHECK(n > 1, "n_ids not set to the needed count (%zu)", n);
    CHECK_STATUS(ullme_tokenize(m, "hello world", ULLME_NUL_TERMINATED, 0, NULL, 0, &n), ULLME_E_ARG);
    CHECK(n > 1, "size query did not report the count");
    ids[0] = -1;
    CHECK_STATUS(ullme_detokenize(m, ids, 1, 0, buf, sizeof buf, &n), ULLME_E_ARG);
    ids[0] = info.vocab_size;
    CHECK_STATUS(ullme_detokenize(m, ids, 1, 0, buf, sizeof buf, &n), ULLME_E_ARG);
    CHECK_STATUS(ullme_detokenize(m, ids, SIZE_MAX - 1, 0, buf, sizeof buf, &n), ULLME_E_ARG);
    ids[0] = 1; ids[1] = 2;
    CHECK_STATUS(ullme_detokenize(m, ids, 2, 0, buf, 0, &n), n == 0 ? ULLME_OK : ULLME_E_ARG);
    CHECK_STATUS(ullme_hidden_states(m, ids, 0, ULLME_ATTENTION_CAUSAL, out, dim), ULLME_E_ARG);
    CHECK_STATUS(ullme_hidden_states(m, ids, (size_t)info.max_positions + 1, ULLME_ATTENTION_CAUSAL, out, dim), ULLME_E_ARG);
    CHECK_STATUS(ullme_hidden_states(m, ids, SIZE_MAX, ULLME_ATTENTION_CAUSAL, out, dim), ULLME_E_ARG);
    CHECK_STATUS(ullme_hidden_states(m, ids, 2, ULLME_ATTENTION_CAUSAL, out, 2 * dim - 1), ULLME_E_ARG);
    ids[0] = info.vocab_size + 5;
    CHECK_STATUS(ullme_hidden_states(m, ids, 1, ULLME_ATTENTION_CAUSAL, out, dim), ULLME_E_ARG);
    ids[0] = -9;
    CHECK_STATUS(ullme_logits(m, ids, 1, out, 8 * dim), info.vocab_size <= 8 * dim ? ULLME_E_ARG : ULLME_E_ARG);

    /* ---- texts: empty, NUL bytes, invalid UTF-8, 1 MB ---- */
    const char *empty[1] = {""};
    int s = ullme_embed(m, empty, NULL, 1, NULL, out, dim, &st);
    CHECK(s == ULLME_OK || (s == ULLME_E_ARG && info.bos_token_id < 0), "empty text: %s", ullme_status_name(s));
    const char nul[] = "before\0after\0";
    size_t nul_len = sizeof nul - 1;
    const char *nuls[1] = {nul};
    CHECK_STATUS(ullme_embed(m, nuls, &nul_len, 1, NULL, out, dim, &st), ULLME_OK);
    size_t n_nul = 0, n_before = 0;
    CHECK_STATUS(ullme_tokenize(m, nul, nul_len, 0, ids, 256, &n_nul), ULLME_OK);
    CHECK_STATUS(ullme_tokenize(m, nul, ULLME_NUL_TERMINATED, 0, ids, 256, &n_before), ULLME_OK);
    CHECK(n_nul > n_before, "NUL bytes inside an explicit length were dropped (%zu vs %zu ids)", n_nul, n_before);
    const char invalid[] = "\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xf8\xa1\xa1\xa1\xa1\xed\xa0\x80\xc0\xaf";
    const char *inv[1] = {invalid};
    CHECK_STATUS(ullme_embed(m, inv, NULL, 1, NULL, out, dim, &st), ULLME_OK);
    CHECK_STATUS(ullme_tokenize(m, invalid, ULLME_NUL_TERMINATED, 1, ids, 256, &n), ULLME_OK);
    for (int i = 0; i < dim; i++) if (out[i] != out[i]) { CHECK(0, "NaN in the embedding of invalid UTF-8"); break; }

    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    for (size_t i = 0; i < big; i++) huge[i] = "lorem ipsum dolor sit amet, \xC3\xA9\xE6\x97\xA5 0123456789\n"[i % 40];
    huge[big] = 0;
    char *nospace = malloc(big + 1);
    for (size_t i = 0; i < big; i++) nospace[i] = (char)('a' + i % 26);
    nospace[big] = 0;
    const char *bigs[2] = {huge, nospace};
    double t0 = now();
    CHECK_STATUS(ullme_embed(m, bigs, NULL, 2, NULL, out, 2 * dim, &st), ULLME_OK);
    double t1 = now();
    CHECK(st.n_truncated == 2 && st.n_tokens <= 2 * (size_t)mp.max_length, "1 MB texts: %zu truncated, %zu tokens",
          st.n_truncated, st.n_tokens);
    CHECK_STATUS(ullme_tokenize(m, huge, big, 0, NULL, 0, &n), ULLME_E_ARG);
    printf("1 MB texts: embed (2 texts, truncated to %d tokens) %.2f s; tokenize reports %zu ids\n", mp.max_length, t1 - t0, n);
    /* random bytes, 64 KB */
    unsigned x = 12345;
    for (size_t i = 0; i < 65536; i++) { x = x * 1103515245u + 12345u; huge[i] = (char)(x >> 16); }
    size_t rlen = 65536;
    const char *rnd[1] = {huge};
    CHECK_STATUS(ullme_embed(m, rnd, &rlen, 1, NULL, out, dim, &st), ULLME_OK);

    /* ---- files ---- */
    CHECK_STATUS(ullme_model_load("/nonexistent", NULL, &tmp), ULLME_E_IO);
    CHECK_STATUS(ullme_model_load("/tmp", NULL, &tmp), ULLME_E_IO);
    CHECK_STATUS(ullme_model_load("/dev/null", NULL, &tmp), ULLME_E_IO);
    FILE *f = fopen("/tmp/ullme-bad-input.gguf", "wb");
    fwrite("GGUF\3\0\0\0\1\0\0\0\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff", 1, 24, f);
    fclose(f);
    CHECK_STATUS(ullme_model_load("/tmp/ullme-bad-input.gguf", NULL, &tmp), ULLME_E_FORMAT);
    remove("/tmp/ullme-bad-input.gguf");

    printf("bad_input: %s: %s\n", path, g_failures ? "FAIL" : "OK");
    free(huge); free(nospace); free(out);
    ullme_model_free(m);
    return g_failures ? 1 : 0;
}
