/*
 * alloc - allocation that succeeds or ends the process.
 *
 * Invariants: every function returns a valid pointer or does not return;
 * size arithmetic is overflow-checked before reaching libc. A zero-size
 * request is turned into one byte so callers never see NULL.
 * Trusts: nothing; sizes may come straight from the network.
 * Limits: out of memory is fatal (log_fatalx, exit 1) by design.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/log.h"

static NORETURN void
oom(size_t n)
{
	log_fatalx("out of memory allocating %zu bytes", n);
}

void *
xmalloc(size_t n)
{
	void *p;

	if (n == 0)
		n = 1;
	if ((p = malloc(n)) == NULL)
		oom(n);
	return p;
}

void *
xcalloc(size_t count, size_t size)
{
	void *p;
	size_t n;

	if (__builtin_mul_overflow(count, size, &n))
		log_fatalx("xcalloc: size overflow (%zu * %zu)", count, size);
	if (n == 0)
		count = size = 1;
	if ((p = calloc(count, size)) == NULL)
		oom(n);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q;

	if (n == 0)
		n = 1;
	if ((q = realloc(p, n)) == NULL)
		oom(n);
	return q;
}

void *
xreallocarray(void *p, size_t count, size_t size)
{
	size_t n;

	if (__builtin_mul_overflow(count, size, &n))
		log_fatalx("xreallocarray: size overflow (%zu * %zu)", count, size);
	return xrealloc(p, n);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p;

	if (len == SIZE_MAX)
		oom(len);
	p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	return p;
}
