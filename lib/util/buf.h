/*
 * buf - the one byte-buffer type: binary-safe, bounded, always NUL-terminated.
 *
 * data[len] is always '\0' once anything has been stored (a spare byte is
 * kept), so buf_cstr() is usable with libc. Every growth is checked against
 * overflow and against max; exceeding max returns -1 with errno = ENOBUFS and
 * leaves the buffer unchanged. max == 0 means "no limit but SIZE_MAX".
 * Allocation failure is fatal (see alloc.h).
 */
#ifndef POSTERN_BUF_H
#define POSTERN_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include "util/compat.h"

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

#define BUF_INIT(maxlen) { NULL, 0, 0, (maxlen) }

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);           /* releases memory, keeps max */
void buf_reset(struct buf *b);          /* len = 0, keeps memory */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, int c);
int buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) PRINTF_LIKE(2, 0);
void buf_consume(struct buf *b, size_t n);   /* drop n bytes from the front */
void buf_truncate(struct buf *b, size_t len);
const char *buf_cstr(const struct buf *b);   /* "" when empty */
/* Take ownership of the storage as a C string; b becomes empty. */
char *buf_steal(struct buf *b);

#endif
