#ifndef CULLME_ERROR_H
#define CULLME_ERROR_H
/* Thread-local storage for ullme_last_error(): Swift has no portable thread-local, C11 does. */
void cullme_set_last_error(const char *message);
const char *ullme_last_error(void);
#endif
