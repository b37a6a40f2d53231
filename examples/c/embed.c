/* example.c — embed a query and three documents with libullme and rank the documents by cosine.
 *
 *   cc -Iinclude examples/c/embed.c -Lbuild/lib -lullme -Wl,-rpath,$PWD/build/lib -o example
 *   ./example [MODEL]                       (default: the default model, a NULL path: the cached
 *                                            SmolLM2-135M-Instruct GGUF with libullme's trained adapter)
 *   ./example [MODEL] --dump TEXTS.txt OUT.bin [--instruction S] [--candidate]
 *       embeds every line of TEXTS.txt (as queries, or as candidates with --candidate) and writes
 *       n*dim little-endian float32 to OUT.bin; prints "n dim" (used by the cross-language test).
 * Every status is checked; on failure the library's message (ullme_last_error) is printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ullme.h"

static int check(int status, const char *what) {
    if (status != ULLME_OK) {
        fprintf(stderr, "%s failed: %s: %s\n", what, ullme_status_name(status), ullme_last_error());
        return 1;
    }
    return 0;
}

/* Reads the lines of a file (without their '\n') into a malloc'd array; returns the count or -1. */
static long read_lines(const char *path, char ***lines, size_t **lens) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return -1; }
    size_t cap = 16, n = 0;
    *lines = malloc(cap * sizeof **lines); *lens = malloc(cap * sizeof **lens);
    char *line = NULL; size_t lcap = 0; ssize_t got;
    while ((got = getline(&line, &lcap, f)) >= 0) {
        if (got > 0 && line[got - 1] == '\n') got--;
        if (n == cap) { cap *= 2; *lines = realloc(*lines, cap * sizeof **lines); *lens = realloc(*lens, cap * sizeof **lens); }
        (*lines)[n] = malloc((size_t)got + 1);
        memcpy((*lines)[n], line, (size_t)got); (*lines)[n][got] = 0;
        (*lens)[n] = (size_t)got;
        n++;
    }
    free(line); fclose(f);
    return (long)n;
}

static int dump(ullme_model *model, int dim, const char *texts_path, const char *out_path,
                const char *instruction, int candidate) {
    char **lines; size_t *lens;
    long n = read_lines(texts_path, &lines, &lens);
    if (n < 0) return 1;
    float *out = malloc(((size_t)n * (size_t)dim + 1) * sizeof *out);
    ullme_embed_params ep = ullme_embed_default_params();
    ep.instruction = instruction;
    ep.is_query = !candidate;
    ullme_embed_stats stats;
    if (check(ullme_embed(model, (const char *const *)lines, lens, (size_t)n, &ep, out, (size_t)n * (size_t)dim, &stats), "ullme_embed")) return 1;
    FILE *f = fopen(out_path, "wb");
    if (!f) { perror(out_path); return 1; }
    if (fwrite(out, sizeof *out, (size_t)n * (size_t)dim, f) != (size_t)n * (size_t)dim) { perror(out_path); return 1; }
    fclose(f);
    printf("%ld %d\n", n, dim);
    for (long i = 0; i < n; i++) free(lines[i]);
    free(lines); free(lens); free(out);
    return 0;
}

int main(int argc, char **argv) {
    const char *model_path = NULL;  /* NULL: the default model */
    const char *dump_in = NULL, *dump_out = NULL, *instruction = NULL;
    int candidate = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dump") && i + 2 < argc) { dump_in = argv[++i]; dump_out = argv[++i]; }
        else if (!strcmp(argv[i], "--instruction") && i + 1 < argc) instruction = argv[++i];
        else if (!strcmp(argv[i], "--candidate")) candidate = 1;
        else if (argv[i][0] == '-') { fprintf(stderr, "usage: %s [MODEL] [--dump TEXTS OUT.bin [--instruction S] [--candidate]]\n", argv[0]); return 2; }
        else model_path = argv[i];
    }
    if (ullme_abi_version() != ULLME_ABI_VERSION) {
        fprintf(stderr, "libullme ABI %d, header %d\n", ullme_abi_version(), ULLME_ABI_VERSION);
        return 1;
    }

    ullme_model_params mp = ullme_model_default_params();
    ullme_model *model = NULL;
    if (check(ullme_model_load(model_path, &mp, &model), "ullme_model_load")) return 1;
    ullme_model_info info;
    if (check(ullme_model_get_info(model, &info), "ullme_model_get_info")) { ullme_model_free(model); return 1; }
    int dim = info.hidden_size;

    if (dump_in) {
        int rc = dump(model, dim, dump_in, dump_out, instruction, candidate);
        ullme_model_free(model);
        return rc;
    }

    const char *instr = "Given a question, retrieve passages that answer it";
    const char *query = "What were lighthouses used for?";
    const char *docs[3] = {
        "Lighthouses guided ships along dangerous coasts with a bright light at night.",
        "Sourdough bread needs flour, water, salt and a lively starter.",
        "The stock market closed higher on Tuesday after a volatile session.",
    };
    size_t doc_lens[3];
    for (int i = 0; i < 3; i++) doc_lens[i] = strlen(docs[i]);
    size_t qlen = strlen(query);

    float *q = malloc((size_t)dim * sizeof *q), *d = malloc(3 * (size_t)dim * sizeof *d);
    ullme_embed_params ep = ullme_embed_default_params();
    ep.instruction = instr;
    ep.is_query = 1;
    int rc = check(ullme_embed(model, &query, &qlen, 1, &ep, q, (size_t)dim, NULL), "ullme_embed (query)");
    ep.is_query = 0;
    if (!rc) rc = check(ullme_embed(model, docs, doc_lens, 3, &ep, d, 3 * (size_t)dim, NULL), "ullme_embed (documents)");
    if (!rc) {
        float score[3]; int order[3] = {0, 1, 2};
        for (int i = 0; i < 3; i++) {  /* embeddings are L2-normalised: cosine = dot product */
            double s = 0;
            for (int j = 0; j < dim; j++) s += (double)q[j] * d[i * dim + j];
            score[i] = (float)s;
        }
        for (int a = 0; a < 3; a++)
            for (int b = a + 1; b < 3; b++)
                if (score[order[b]] > score[order[a]]) { int t = order[a]; order[a] = order[b]; order[b] = t; }
        printf("libullme %s, %s (%s, dim %d)\nquery: %s\n", ullme_version(), model_path ? model_path : "the default model",
               info.architecture, dim, query);
        for (int r = 0; r < 3; r++) printf("%d. %.4f  %s\n", r + 1, score[order[r]], docs[order[r]]);
        if (!model_path && order[0] != 0) {  /* the trained default model must rank the lighthouse passage first */
            fprintf(stderr, "the default model ranked document %d first\n", order[0] + 1);
            rc = 1;
        }
    }
    free(q); free(d);
    ullme_model_free(model);
    return rc;
}
