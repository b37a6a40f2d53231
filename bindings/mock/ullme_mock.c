/* A stand-in libullme implementing include/ullme.h with a fake model, so the bindings (Python, C, Go)
 * and their tests can be exercised before the Swift engine lands. NOT the engine: embeddings are a
 * deterministic function of the bytes. Build: cc -shared -fPIC -O2 -Iinclude bindings/mock/ullme_mock.c
 *   -o build/mock/libullme.so -lm
 * The fake model: any regular file starting with "GGUF" and >= 64 bytes, or a directory holding
 * config.json; dim 8, vocab 258 (bytes 0..255, BOS 256, EOS 257), max_positions 64. */
#include "ullme.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DIM 8
#define VOCAB 258
#define BOS 256
#define EOS 257
#define MAXPOS 64

static _Thread_local char g_err[512];

static int fail(int st, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); vsnprintf(g_err, sizeof g_err, fmt, ap); va_end(ap);
    return st;
}

struct ullme_model { ullme_model_params p; };

const char *ullme_version(void) { return "0.0.0-mock"; }
int ullme_abi_version(void) { return ULLME_ABI_VERSION; }
const char *ullme_last_error(void) { return g_err; }
const char *ullme_status_name(int s) {
    static const char *n[] = {"ULLME_OK", "ULLME_E_ARG", "ULLME_E_IO", "ULLME_E_FORMAT", "ULLME_E_UNSUPPORTED",
                              "ULLME_E_OOM", "ULLME_E_CANCELLED", "ULLME_E_STATE", "ULLME_E_INTERNAL"};
    return (s >= 0 && s <= 8) ? n[s] : "ULLME_E_UNKNOWN";
}

int ullme_pooling_from_name(const char *name, ullme_pooling *out) {
    static const char *n[] = {"mean", "weightedmean", "cls", "lasttoken"};
    if (!name || !out) return fail(ULLME_E_ARG, "pooling_from_name: NULL argument");
    for (int i = 0; i < 4; i++) if (!strcmp(name, n[i])) { *out = (ullme_pooling)i; return ULLME_OK; }
    return fail(ULLME_E_ARG, "unknown pooling '%s' (expected mean, weightedmean, cls or lasttoken)", name);
}
int ullme_attention_from_name(const char *name, ullme_attention *out) {
    if (!name || !out) return fail(ULLME_E_ARG, "attention_from_name: NULL argument");
    if (!strcmp(name, "bidirectional")) { *out = ULLME_ATTENTION_BIDIRECTIONAL; return ULLME_OK; }
    if (!strcmp(name, "causal")) { *out = ULLME_ATTENTION_CAUSAL; return ULLME_OK; }
    return fail(ULLME_E_ARG, "unknown attention '%s' (expected bidirectional or causal)", name);
}

ullme_model_params ullme_model_default_params(void) {
    ullme_model_params p = {sizeof(ullme_model_params), 0, ULLME_POOLING_MEAN, ULLME_ATTENTION_BIDIRECTIONAL, 512, 32};
    return p;
}
ullme_embed_params ullme_embed_default_params(void) {
    ullme_embed_params p; memset(&p, 0, sizeof p);
    p.struct_size = sizeof p; p.instruction_len = ULLME_NUL_TERMINATED; p.is_query = 1; p.normalize = 1;
    return p;
}

int ullme_model_load(const char *path, const ullme_model_params *params, ullme_model **out) {
    if (!path || !out) return fail(ULLME_E_ARG, "model_load: NULL %s", path ? "out" : "path");
    *out = NULL;
    ullme_model_params p = params ? *params : ullme_model_default_params();
    if (p.n_threads < 0) return fail(ULLME_E_ARG, "n_threads must be >= 0, got %d", p.n_threads);
    if (p.max_length < 1) return fail(ULLME_E_ARG, "max_length must be >= 1, got %d", p.max_length);
    if (p.batch_size < 1) return fail(ULLME_E_ARG, "batch_size must be >= 1, got %d", p.batch_size);
    if ((unsigned)p.pooling > 3) return fail(ULLME_E_ARG, "invalid pooling %d", (int)p.pooling);
    if ((unsigned)p.attention > 1) return fail(ULLME_E_ARG, "invalid attention %d", (int)p.attention);
    struct stat sb;
    if (stat(path, &sb) != 0) return fail(ULLME_E_IO, "cannot open '%s': %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        char cfg[4096]; snprintf(cfg, sizeof cfg, "%s/config.json", path);
        if (stat(cfg, &sb) != 0) return fail(ULLME_E_FORMAT, "'%s' has no config.json", path);
    } else {
        FILE *f = fopen(path, "rb");
        if (!f) return fail(ULLME_E_IO, "cannot open '%s': %s", path, strerror(errno));
        char magic[4] = {0};
        size_t got = fread(magic, 1, 4, f); fclose(f);
        if (got < 4 || memcmp(magic, "GGUF", 4)) return fail(ULLME_E_FORMAT, "'%s' is not a GGUF file (bad magic)", path);
        if (sb.st_size < 64) return fail(ULLME_E_FORMAT, "'%s' is truncated", path);
    }
    ullme_model *m = calloc(1, sizeof *m);
    if (!m) return fail(ULLME_E_OOM, "out of memory");
    m->p = p; *out = m;
    return ULLME_OK;
}
void ullme_model_free(ullme_model *m) { free(m); }

int ullme_model_get_info(const ullme_model *m, ullme_model_info *o) {
    if (!m || !o) return fail(ULLME_E_ARG, "get_info: NULL argument");
    memset(o, 0, sizeof *o);
    strcpy(o->architecture, "mock");
    o->hidden_size = DIM; o->n_layers = 1; o->n_heads = 1; o->n_kv_heads = 1; o->intermediate_size = DIM;
    o->vocab_size = VOCAB; o->max_positions = MAXPOS; o->bos_token_id = BOS; o->eos_token_id = EOS;
    o->pad_token_id = EOS; o->n_parameters = VOCAB * DIM;
    return ULLME_OK;
}
int ullme_model_get_params(const ullme_model *m, ullme_model_params *o) {
    if (!m || !o) return fail(ULLME_E_ARG, "get_params: NULL argument");
    *o = m->p; return ULLME_OK;
}

static size_t tlen(const char *t, size_t n) { return n == ULLME_NUL_TERMINATED ? strlen(t) : n; }

int ullme_tokenize(const ullme_model *m, const char *text, size_t len, int add_special, int32_t *ids,
                   size_t cap, size_t *n_ids) {
    if (!m || !n_ids || (!text && len)) return fail(ULLME_E_ARG, "tokenize: NULL argument");
    if (!ids && cap) return fail(ULLME_E_ARG, "tokenize: ids is NULL with cap %zu", cap);
    len = text ? tlen(text, len) : 0;
    size_t n = len + (add_special ? 1 : 0);
    *n_ids = n;
    if (n > cap) return fail(ULLME_E_ARG, "tokenize: buffer too small (%zu ids needed, cap %zu)", n, cap);
    size_t k = 0;
    if (add_special) ids[k++] = BOS;
    for (size_t i = 0; i < len; i++) ids[k++] = (unsigned char)text[i];
    return ULLME_OK;
}
int ullme_detokenize(const ullme_model *m, const int32_t *ids, size_t n_ids, int skip_special, char *text,
                     size_t cap, size_t *n_bytes) {
    if (!m || !n_bytes || (!ids && n_ids)) return fail(ULLME_E_ARG, "detokenize: NULL argument");
    size_t n = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= VOCAB) return fail(ULLME_E_ARG, "detokenize: id %d out of range", ids[i]);
        if (ids[i] < 256) n++; else if (!skip_special) n += 5;
    }
    *n_bytes = n;
    if (n > cap) return fail(ULLME_E_ARG, "detokenize: buffer too small (%zu bytes needed)", n);
    size_t k = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 256) text[k++] = (char)ids[i];
        else if (!skip_special) { memcpy(text + k, ids[i] == BOS ? "<bos>" : "<eos>", 5); k += 5; }
    }
    return ULLME_OK;
}

static void hidden_row(const int32_t *ids, size_t n, size_t t, int causal, float *row) {
    size_t end = causal ? t + 1 : n;
    for (int j = 0; j < DIM; j++) {
        double s = 0;
        for (size_t u = 0; u < end; u++) s += sin((ids[u] + 1) * (j + 1) * 0.37 + 0.1 * (double)u) / (1.0 + (double)(t > u ? t - u : u - t));
        row[j] = (float)(s + 0.01 * (double)t);
    }
}

static int check_ids(const ullme_model *m, const int32_t *ids, size_t n, float *out, size_t out_len, size_t row) {
    if (!m || !ids || !out) return fail(ULLME_E_ARG, "NULL argument");
    if (n < 1 || n > MAXPOS) return fail(ULLME_E_ARG, "n_ids must be between 1 and %d, got %zu", MAXPOS, n);
    if (out_len < n * row) return fail(ULLME_E_ARG, "out_len %zu < %zu", out_len, n * row);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= VOCAB) return fail(ULLME_E_ARG, "id %d at %zu out of range [0, %d)", ids[i], i, VOCAB);
    return ULLME_OK;
}

int ullme_hidden_states(const ullme_model *m, const int32_t *ids, size_t n, ullme_attention a, float *out, size_t out_len) {
    int st = check_ids(m, ids, n, out, out_len, DIM);
    if (st) return st;
    if ((unsigned)a > 1) return fail(ULLME_E_ARG, "invalid attention %d", (int)a);
    for (size_t t = 0; t < n; t++) hidden_row(ids, n, t, a == ULLME_ATTENTION_CAUSAL, out + t * DIM);
    return ULLME_OK;
}
int ullme_logits(const ullme_model *m, const int32_t *ids, size_t n, float *out, size_t out_len) {
    int st = check_ids(m, ids, n, out, out_len, VOCAB);
    if (st) return st;
    float h[DIM];
    for (size_t t = 0; t < n; t++) {
        hidden_row(ids, n, t, 1, h);
        for (int v = 0; v < VOCAB; v++) { double s = 0; for (int j = 0; j < DIM; j++) s += h[j] * cos((v + 1) * (j + 1) * 0.11); out[t * VOCAB + v] = (float)s; }
    }
    return ULLME_OK;
}

int ullme_embed(const ullme_model *m, const char *const *texts, const size_t *lens, size_t n,
                const ullme_embed_params *params, float *out, size_t out_len, ullme_embed_stats *stats) {
    if (!m) return fail(ULLME_E_ARG, "embed: model is NULL");
    if (n == 0) { if (stats) { stats->n_texts = 0; stats->n_tokens = 0; stats->n_truncated = 0; } return ULLME_OK; }
    if (!texts || !out) return fail(ULLME_E_ARG, "embed: NULL %s", texts ? "out" : "texts");
    if (out_len < n * DIM) return fail(ULLME_E_ARG, "embed: out_len %zu < n_texts * hidden_size = %zu", out_len, n * DIM);
    ullme_embed_params p = params ? *params : ullme_embed_default_params();
    const char *ins = p.instruction ? p.instruction : "";
    size_t il = tlen(ins, p.instruction_len);
    size_t ntok = 0, ntrunc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!texts[i]) return fail(ULLME_E_ARG, "embed: texts[%zu] is NULL", i);
        size_t l = tlen(texts[i], lens ? lens[i] : ULLME_NUL_TERMINATED);
        size_t cap = l + il + 16;
        int32_t *ids = malloc((cap + 1) * sizeof *ids);
        if (!ids) return fail(ULLME_E_OOM, "out of memory");
        size_t k = 0;
        ids[k++] = BOS;
        if (il) {
            for (size_t j = 0; j < il; j++) ids[k++] = (unsigned char)ins[j];
            const char *sep = p.is_query ? "\n" : "\nCandidate:\n";
            for (const char *c = sep; *c; c++) ids[k++] = (unsigned char)*c;
        }
        for (size_t j = 0; j < l; j++) ids[k++] = (unsigned char)texts[i][j];
        size_t maxl = (size_t)m->p.max_length < MAXPOS ? (size_t)m->p.max_length : MAXPOS;
        if (k > maxl) { k = maxl; ntrunc++; }
        ntok += k;
        float h[DIM], acc[DIM] = {0};
        for (size_t t = 0; t < k; t++) { hidden_row(ids, k, t, m->p.attention == ULLME_ATTENTION_CAUSAL, h); for (int j = 0; j < DIM; j++) acc[j] += h[j] / (float)k; }
        free(ids);
        double nn = 0; for (int j = 0; j < DIM; j++) nn += acc[j] * acc[j];
        nn = sqrt(nn);
        for (int j = 0; j < DIM; j++) out[i * DIM + j] = (p.normalize && nn > 0) ? (float)(acc[j] / nn) : acc[j];
        if (p.progress && p.progress(p.progress_user, i + 1, n)) return fail(ULLME_E_CANCELLED, "embed: cancelled by the progress callback");
    }
    if (stats) { stats->n_texts = n; stats->n_tokens = ntok; stats->n_truncated = ntrunc; }
    return ULLME_OK;
}
