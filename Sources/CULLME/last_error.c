#include <string.h>
#include "cullme_error.h"

static _Thread_local char last_error[4096];

void cullme_set_last_error(const char *message) {
    if (!message) { last_error[0] = 0; return; }
    strncpy(last_error, message, sizeof last_error - 1);
    last_error[sizeof last_error - 1] = 0;
}

__attribute__((visibility("default"))) const char *ullme_last_error(void) { return last_error; }
