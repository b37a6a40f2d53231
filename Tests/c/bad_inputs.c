/* bad_inputs.c — the C error paths of libullme: every bad input must give the documented status
 * (and a message), never a crash. Exits non-zero on any unexpected result.
 *   ./bad_inputs MODEL */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>
#include "ullme.h"

static int failures = 0, checks = 0;

#define EXPECT(call, want) expect_status((call), (want), #call, __LINE__)
static void expect_status(int got, int want, const char *what, int line) {
    checks++;
    const char *msg = ullme_last_error();
    if (got != want) {
        failures++;
        fprintf(stderr, "FAIL line %d: %s -> %s, want %s (%s)\n", line, what, ullme_status_name(got), ullme_status_name(want), msg);
    } else if (want != ULLME_OK && (msg == NULL || msg[0] == 0)) {
        failures++;
        fprintf(stderr, "FAIL line %d: %s -> %s without a message\n", line, what, ullme_status_name(got));
    }
}
#define TRUE(cond) do { checks++; if (!(cond)) { failures++; fprintf(stderr, "FAIL line %d: %s\n", __LINE__, #cond); } } while (0)

static int cancel_cb(void *user, size_t done, size_t total) { (void)done; (void)total; ++*(int *)user; return 1; }
static int count_cb(void *user, size_t done, size_t total) { (void)done; (void)total; ++*(int *)user; return 0; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s MODEL\n", argv[0]); return 2; }
    const char *path = argv[1];
    ullme_model *m = NULL;

    /* library-level */
    TRUE(ullme_abi_version() == ULLME_ABI_VERSION);
    TRUE(ullme_version() != NULL && ullme_last_error() != NULL);
    TRUE(ullme_status_name(999) != NULL && !strcmp(ullme_status_name(ULLME_E_ARG), "ULLME_E_ARG"));
    ullme_pooling pool; ullme_attention att;
    EXPECT(ullme_pooling_from_name("median", &pool), ULLME_E_ARG);
    EXPECT(ullme_pooling_from_name(NULL, &pool), ULLME_E_ARG);
    EXPECT(ullme_pooling_from_name("mean", NULL), ULLME_E_ARG);
    EXPECT(ullme_pooling_from_name("lasttoken", &pool), ULLME_OK); TRUE(pool == ULLME_POOLING_LASTTOKEN);
    EXPECT(ullme_attention_from_name("sideways", &att), ULLME_E_ARG);
    EXPECT(ullme_attention_from_name("causal", &att), ULLME_OK); TRUE(att == ULLME_ATTENTION_CAUSAL);
    ullme_model_free(NULL); /* no-op */

    /* loading */
    EXPECT(ullme_model_load(NULL, NULL, NULL), ULLME_E_ARG);
    EXPECT(ullme_model_load(NULL, NULL, &m), ULLME_OK);  /* NULL path: the default model (base + shipped adapter) */
    TRUE(m != NULL);
    ullme_model_free(m); m = NULL;
    EXPECT(ullme_model_load(path, NULL, NULL), ULLME_E_ARG);
    EXPECT(ullme_model_load("/nonexistent/dir/model.gguf", NULL, &m), ULLME_E_IO);
    TRUE(m == NULL);
    char tmpl[] = "/tmp/ullme-bad-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd >= 0) {
        char junk[4096]; memset(junk, 'x', sizeof junk); memcpy(junk, "NOPE", 4);
        if (write(fd, junk, sizeof junk) != (ssize_t)sizeof junk) perror("write");
        close(fd);
        EXPECT(ullme_model_load(tmpl, NULL, &m), ULLME_E_FORMAT);
        FILE *f = fopen(tmpl, "wb"); fclose(f); /* empty file */
        int st = ullme_model_load(tmpl, NULL, &m);
        checks++; if (st != ULLME_E_FORMAT && st != ULLME_E_IO) { failures++; fprintf(stderr, "FAIL: empty file -> %s\n", ullme_status_name(st)); }
        unlink(tmpl);
    }
    ullme_model_params p = ullme_model_default_params();
    TRUE(p.struct_size == sizeof p && p.max_length == 0 && p.batch_size == 32 && p.n_threads == 0);
    TRUE(p.pooling == ULLME_POOLING_AUTO && p.attention == ULLME_ATTENTION_AUTO && p.preset == NULL);
    p.n_threads = -1; EXPECT(ullme_model_load(path, &p, &m), ULLME_E_ARG);
    p = ullme_model_default_params(); p.max_length = -1; EXPECT(ullme_model_load(path, &p, &m), ULLME_E_ARG);
    p = ullme_model_default_params(); p.batch_size = 0; EXPECT(ullme_model_load(path, &p, &m), ULLME_E_ARG);
    p = ullme_model_default_params(); p.pooling = (ullme_pooling)99; EXPECT(ullme_model_load(path, &p, &m), ULLME_E_ARG);
    p = ullme_model_default_params(); p.attention = (ullme_attention)-3; EXPECT(ullme_model_load(path, &p, &m), ULLME_E_ARG);
    p = ullme_model_default_params(); TRUE(p.adapter_path == NULL);
    p.adapter_path = ""; EXPECT(ullme_model_load(path, &p, &m), ULLME_E_ARG);
    p.adapter_path = "/nonexistent-ullme-adapter"; EXPECT(ullme_model_load(path, &p, &m), ULLME_E_IO);
    TRUE(m == NULL);

    p = ullme_model_default_params(); p.max_length = 16;
    EXPECT(ullme_model_load(path, &p, &m), ULLME_OK);
    if (!m) { fprintf(stderr, "cannot continue without a model: %s\n", ullme_last_error()); return 1; }
    ullme_model_info info;
    EXPECT(ullme_model_get_info(NULL, &info), ULLME_E_ARG);
    EXPECT(ullme_model_get_info(m, NULL), ULLME_E_ARG);
    EXPECT(ullme_model_get_info(m, &info), ULLME_OK);
    ullme_model_params got;
    EXPECT(ullme_model_get_params(m, &got), ULLME_OK); TRUE(got.max_length == 16);
    size_t dim = (size_t)info.hidden_size, V = (size_t)info.vocab_size;

    /* embedding */
    const char *texts[2] = {"hello", "a much longer text about lighthouses, their keepers, the ships they guided and the storms they survived"};
    size_t lens[2] = {5, strlen(texts[1])};
    float *out = calloc(2 * dim, sizeof *out), *out2 = calloc(2 * dim, sizeof *out2);
    ullme_embed_stats st;
    EXPECT(ullme_embed(NULL, texts, lens, 2, NULL, out, 2 * dim, NULL), ULLME_E_ARG);
    EXPECT(ullme_embed(m, NULL, lens, 2, NULL, out, 2 * dim, NULL), ULLME_E_ARG);
    EXPECT(ullme_embed(m, texts, lens, 2, NULL, NULL, 2 * dim, NULL), ULLME_E_ARG);
    EXPECT(ullme_embed(m, texts, lens, 2, NULL, out, 2 * dim - 1, NULL), ULLME_E_ARG);
    const char *with_null[2] = {"ok", NULL};
    EXPECT(ullme_embed(m, with_null, NULL, 2, NULL, out, 2 * dim, NULL), ULLME_E_ARG);
    EXPECT(ullme_embed(m, texts, lens, 0, NULL, NULL, 0, &st), ULLME_OK);
    EXPECT(ullme_embed(m, texts, lens, 2, NULL, out, 2 * dim, &st), ULLME_OK);
    TRUE(st.n_texts == 2 && st.n_tokens > 0 && st.n_truncated == 1); /* max_length 16 cuts the second */
    EXPECT(ullme_embed(m, texts, NULL, 2, NULL, out2, 2 * dim, NULL), ULLME_OK); /* NUL-terminated */
    TRUE(memcmp(out, out2, 2 * dim * sizeof *out) == 0);
    const char *bad_utf8 = "caf\xc3 \xff\xfe";
    EXPECT(ullme_embed(m, &bad_utf8, NULL, 1, NULL, out, dim, NULL), ULLME_OK); /* invalid UTF-8 is not an error */
    const char *empty = "";
    size_t zero = 0;
    EXPECT(ullme_embed(m, &empty, &zero, 1, NULL, out, dim, NULL), ULLME_OK);
    ullme_embed_params ep = ullme_embed_default_params();
    TRUE(ep.struct_size == sizeof ep && ep.is_query == 1 && ep.normalize == -1 && ep.instruction_len == ULLME_NUL_TERMINATED);
    TRUE(ep.prompt == NULL && ep.prompt_len == ULLME_NUL_TERMINATED && ep.prompt_name == NULL && ep.exclude_prompt == -1);
    TRUE(ep.truncate_dim == 0);
    /* truncate_dim: out of range is refused; d keeps the first d of the full vector, re-normalised */
    ep.truncate_dim = -1;
    EXPECT(ullme_embed(m, texts, lens, 2, &ep, out, 2 * dim, NULL), ULLME_E_ARG);
    ep.truncate_dim = (int32_t)dim + 1;
    EXPECT(ullme_embed(m, texts, lens, 2, &ep, out, 2 * dim, NULL), ULLME_E_ARG);
    ep.truncate_dim = 8;
    EXPECT(ullme_embed(m, texts, lens, 2, &ep, out2, 2 * 8 - 1, NULL), ULLME_E_ARG); /* rows of 8 now */
    EXPECT(ullme_embed(m, texts, lens, 2, NULL, out, 2 * dim, NULL), ULLME_OK);
    EXPECT(ullme_embed(m, texts, lens, 2, &ep, out2, 2 * 8, NULL), ULLME_OK);
    for (int r = 0; r < 2; r++) {
        double n2 = 0, dot = 0;
        for (int j = 0; j < 8; j++) { n2 += (double)out[r * dim + j] * out[r * dim + j]; dot += (double)out[r * dim + j] * out2[r * 8 + j]; }
        TRUE(fabs(dot / sqrt(n2) - 1.0) < 1e-5); /* out2 row = normalised first 8 of out row */
    }
    ep.truncate_dim = 0;
    int calls = 0;
    ep.progress = cancel_cb; ep.progress_user = &calls;
    EXPECT(ullme_embed(m, texts, lens, 2, &ep, out, 2 * dim, NULL), ULLME_E_CANCELLED);
    TRUE(calls >= 1);
    calls = 0; ep.progress = count_cb;
    EXPECT(ullme_embed(m, texts, lens, 2, &ep, out, 2 * dim, NULL), ULLME_OK);
    TRUE(calls >= 1);

    /* tokenizer */
    int32_t ids[64]; size_t n_ids = 0;
    EXPECT(ullme_tokenize(m, "hello world", ULLME_NUL_TERMINATED, 1, NULL, 0, &n_ids), ULLME_E_ARG); /* size query */
    TRUE(n_ids >= 2);
    EXPECT(ullme_tokenize(m, "hello world", ULLME_NUL_TERMINATED, 1, ids, 1, &n_ids), ULLME_E_ARG);
    EXPECT(ullme_tokenize(m, "hello world", ULLME_NUL_TERMINATED, 1, ids, 64, NULL), ULLME_E_ARG);
    EXPECT(ullme_tokenize(NULL, "hello world", ULLME_NUL_TERMINATED, 1, ids, 64, &n_ids), ULLME_E_ARG);
    EXPECT(ullme_tokenize(m, "hello world", ULLME_NUL_TERMINATED, 1, ids, 64, &n_ids), ULLME_OK);
    char text[8]; size_t n_bytes = 0;
    EXPECT(ullme_detokenize(m, ids, n_ids, 1, text, 2, &n_bytes), ULLME_E_ARG);
    TRUE(n_bytes >= 11);
    int32_t bad_id = (int32_t)V;
    EXPECT(ullme_detokenize(m, &bad_id, 1, 1, text, sizeof text, &n_bytes), ULLME_E_ARG);

    /* hidden states and logits */
    size_t n = n_ids;
    float *h = calloc(n * dim, sizeof *h), *lg = calloc(n * V, sizeof *lg);
    EXPECT(ullme_hidden_states(m, ids, 0, ULLME_ATTENTION_CAUSAL, h, n * dim), ULLME_E_ARG);
    EXPECT(ullme_hidden_states(m, NULL, n, ULLME_ATTENTION_CAUSAL, h, n * dim), ULLME_E_ARG);
    EXPECT(ullme_hidden_states(m, ids, n, ULLME_ATTENTION_CAUSAL, h, n * dim - 1), ULLME_E_ARG);
    EXPECT(ullme_hidden_states(m, ids, n, (ullme_attention)7, h, n * dim), ULLME_E_ARG);
    EXPECT(ullme_hidden_states(m, &bad_id, 1, ULLME_ATTENTION_CAUSAL, h, dim), ULLME_E_ARG);
    int32_t neg = -1;
    EXPECT(ullme_hidden_states(m, &neg, 1, ULLME_ATTENTION_CAUSAL, h, dim), ULLME_E_ARG);
    EXPECT(ullme_hidden_states(m, ids, n, ULLME_ATTENTION_BIDIRECTIONAL, h, n * dim), ULLME_OK);
    EXPECT(ullme_logits(m, ids, n, lg, n * V - 1), ULLME_E_ARG);
    EXPECT(ullme_logits(m, ids, n, lg, n * V), ULLME_OK);
    size_t too_many = (size_t)info.max_positions + 1;
    int32_t *many = calloc(too_many, sizeof *many);
    float *hm = calloc(too_many * dim, sizeof *hm);
    EXPECT(ullme_hidden_states(m, many, too_many, ULLME_ATTENTION_CAUSAL, hm, too_many * dim), ULLME_E_ARG);

    free(many); free(hm); free(h); free(lg); free(out); free(out2);
    ullme_model_free(m);
    printf("bad_inputs: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
