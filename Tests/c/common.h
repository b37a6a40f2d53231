/* Helpers shared by the C tests of Tests/c (header-only). */
#ifndef ULLME_TEST_COMMON_H
#define ULLME_TEST_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ullme.h"

static int g_failures = 0;

#define CHECK(cond, ...) do { if (!(cond)) { g_failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, " [%s]\n", ullme_last_error()); } } while (0)
#define CHECK_STATUS(call, want) do { int s_ = (call); CHECK(s_ == (want), "%s returned %s, expected %s", #call, \
    ullme_status_name(s_), ullme_status_name(want)); } while (0)

static ullme_model *load_or_die(const char *path, const ullme_model_params *p) {
    ullme_model *m = NULL;
    int s = ullme_model_load(path, p, &m);
    if (s != ULLME_OK) { fprintf(stderr, "cannot load %s: %s %s\n", path, ullme_status_name(s), ullme_last_error()); exit(2); }
    return m;
}

/* Resident set size in kB (from /proc/self/status). */
static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) if (strncmp(line, "VmRSS:", 6) == 0) { kb = atol(line + 6); break; }
    fclose(f);
    return kb;
}
#endif
