/*
 * buf - the one byte-buffer type: binary-safe, bounded, NUL-terminated.
 *
 * Invariants: cap > len whenever data != NULL, and data[len] == '\0'; len
 * never exceeds max (when max != 0). Growth is checked with overflow
 * builtins; a refused growth leaves the buffer exactly as it was and sets
 * errno = ENOBUFS.
 * Trusts: callers for pointer validity only; lengths are checked.
 * Limits: growth doubles capacity, so a buffer may hold up to twice its
 * data in memory (capped at max + 1).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

int
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, limit, ncap;

	/* need counts the spare NUL byte. */
	if (__builtin_add_overflow(b->len, extra, &need) ||
	    (b->max != 0 && need > b->max) ||
	    __builtin_add_overflow(need, 1, &need)) {
		errno = ENOBUFS;
		return -1;
	}
	if (need <= b->cap)
		return 0;
	limit = b->max != 0 ? b->max + 1 : SIZE_MAX;
	ncap = b->cap < 64 ? 64 : b->cap;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need;
			break;
		}
		ncap *= 2;
	}
	if (ncap > limit)
		ncap = limit;
	if (ncap < need)
		ncap = need;
	b->data = xrealloc(b->data, ncap);
	b->cap = ncap;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	const char *cp = p;

	/* Appending a piece of ourselves: the reserve may move the data. */
	if (b->data != NULL && cp >= b->data && cp < b->data + b->cap) {
		size_t off = (size_t)(cp - b->data);

		if (buf_reserve(b, n) < 0)
			return -1;
		p = b->data + off;
	} else if (buf_reserve(b, n) < 0) {
		return -1;
	}
	if (n > 0)
		memmove(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_putc(struct buf *b, int c)
{
	char ch = (char)c;

	return buf_append(b, &ch, 1);
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	size_t avail;
	int n;

	if (buf_reserve(b, 0) < 0)
		return -1;
	avail = b->cap - b->len;
	va_copy(aq, ap);
	n = vsnprintf(b->data + b->len, avail, fmt, aq);
	va_end(aq);
	if (n < 0) {
		b->data[b->len] = '\0';
		return -1;
	}
	if ((size_t)n >= avail) {
		b->data[b->len] = '\0';
		if (buf_reserve(b, (size_t)n) < 0)
			return -1;
		va_copy(aq, ap);
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, aq);
		va_end(aq);
		if (n < 0) {
			b->data[b->len] = '\0';
			return -1;
		}
	}
	b->len += (size_t)n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void
buf_truncate(struct buf *b, size_t len)
{
	if (len >= b->len)
		return;
	b->len = len;
	b->data[len] = '\0';
}

const char *
buf_cstr(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

char *
buf_steal(struct buf *b)
{
	char *p;

	if (b->data == NULL)
		return xstrdup("");
	p = b->data;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
