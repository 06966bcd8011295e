/*
 * alloc - allocation that succeeds or ends the process.
 *
 * Daemons treat running out of memory as fatal (log_fatal, exit 1): there is
 * no sane partial state to continue from. Sizes are checked for overflow.
 * xfree() takes a pointer to the pointer and clears it.
 */
#ifndef POSTERN_ALLOC_H
#define POSTERN_ALLOC_H

#include <stddef.h>
#include "util/compat.h"

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* xreallocarray: realloc to count*size with overflow check. */
void *xreallocarray(void *p, size_t count, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
#define xfree(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

#endif
