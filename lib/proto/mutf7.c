/*
 * mutf7 - UTF-8 validation and modified UTF-7 (contract in mutf7.h).
 *
 * Trusts nothing: both directions take hostile bytes and fail with -1
 * rather than guess.
 */
#include "proto/mutf7.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/b64.h"

/* Decode one UTF-8 sequence at s[i..n): the code point, *len its length;
 * -1 if invalid (overlong, surrogate, > U+10FFFF, truncated). */
static long
utf8_decode(const unsigned char *s, size_t i, size_t n, size_t *len)
{
	unsigned char c = s[i];
	long cp;
	size_t need;

	if (c < 0x80) {
		*len = 1;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		cp = c & 0x07;
	} else
		return -1;
	if (n - i - 1 < need)
		return -1;
	for (size_t k = 1; k <= need; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i + k] & 0x3f);
	}
	if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000)
	    || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*len = need + 1;
	return cp;
}

int
utf8_valid(const char *s, size_t n)
{
	size_t i = 0, len;

	while (i < n) {
		if (utf8_decode((const unsigned char *)s, i, n, &len) < 0)
			return 0;
		i += len;
	}
	return 1;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static void
put_utf8(struct buf *out, uint32_t cp)
{
	if (cp < 0x80)
		buf_putc(out, (int)cp);
	else if (cp < 0x800) {
		buf_putc(out, 0xc0 | (int)(cp >> 6));
		buf_putc(out, 0x80 | (int)(cp & 0x3f));
	} else if (cp < 0x10000) {
		buf_putc(out, 0xe0 | (int)(cp >> 12));
		buf_putc(out, 0x80 | (int)((cp >> 6) & 0x3f));
		buf_putc(out, 0x80 | (int)(cp & 0x3f));
	} else {
		buf_putc(out, 0xf0 | (int)(cp >> 18));
		buf_putc(out, 0x80 | (int)((cp >> 12) & 0x3f));
		buf_putc(out, 0x80 | (int)((cp >> 6) & 0x3f));
		buf_putc(out, 0x80 | (int)(cp & 0x3f));
	}
}

/* Decode without the canonical-form check. */
static int
decode(const char *s, size_t n, struct buf *out)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e)
			return -1;
		if (c != '&') {
			buf_putc(out, c);
			i++;
			continue;
		}
		i++;
		if (i < n && s[i] == '-') {
			buf_putc(out, '&');
			i++;
			continue;
		}
		uint32_t acc = 0, high = 0;
		int bits = 0, units = 0;
		while (i < n && s[i] != '-') {
			int v = b64_digit((unsigned char)s[i++], ',');
			if (v < 0)
				return -1;
			acc = (acc << 6) | (uint32_t)v;
			bits += 6;
			if (bits < 16)
				continue;
			bits -= 16;
			uint32_t u = (acc >> bits) & 0xffff;
			acc &= (1u << bits) - 1;
			units++;
			if (high) {
				if (u < 0xdc00 || u > 0xdfff)
					return -1;
				put_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff)
				high = u;
			else if (u >= 0xdc00 && u <= 0xdfff)
				return -1;
			else if (u >= 0x20 && u <= 0x7e)
				return -1;      /* must stand for itself */
			else
				put_utf8(out, u);
		}
		if (i >= n || high || units == 0 || bits >= 6 || acc != 0)
			return -1;
		i++;                    /* the '-' */
	}
	return 0;
}

int
mutf7_to_utf8(const char *s, size_t n, struct buf *out)
{
	size_t start = out->len;
	struct buf again = BUF_INIT(0);
	int ok = decode(s, n, out) == 0
	    && utf8_to_mutf7(out->data ? out->data + start : "", out->len - start,
	    &again) == 0
	    && again.len == n && (n == 0 || memcmp(again.data, s, n) == 0);

	buf_free(&again);
	if (!ok) {
		buf_truncate(out, start);
		return -1;
	}
	if (out->data == NULL)
		buf_puts(out, "");
	return 0;
}

int
mutf7_valid(const char *s, size_t n)
{
	struct buf tmp = BUF_INIT(0);
	int rc = mutf7_to_utf8(s, n, &tmp);

	buf_free(&tmp);
	return rc == 0;
}

static void
flush_run(struct buf *out, const uint16_t *u, size_t nu)
{
	uint32_t acc = 0;
	int bits = 0;

	buf_putc(out, '&');
	for (size_t k = 0; k < nu; k++) {
		acc = (acc << 16) | u[k];
		bits += 16;
		while (bits >= 6) {
			bits -= 6;
			buf_putc(out, b64[(acc >> bits) & 0x3f]);
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		buf_putc(out, b64[(acc << (6 - bits)) & 0x3f]);
	buf_putc(out, '-');
}

int
utf8_to_mutf7(const char *s, size_t n, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = out->len, nu = 0, cap = 0;
	uint16_t *run = NULL;    /* UTF-16 units of the open run */

	while (i < n) {
		size_t len;
		long cp = utf8_decode(p, i, n, &len);
		if (cp < 0) {
			free(run);
			buf_truncate(out, start);
			return -1;
		}
		i += len;
		if (cp >= 0x20 && cp <= 0x7e) {
			if (nu) {
				flush_run(out, run, nu);
				nu = 0;
			}
			if (cp == '&')
				buf_puts(out, "&-");
			else
				buf_putc(out, (int)cp);
			continue;
		}
		if (nu + 2 > cap) {
			cap = cap ? cap * 2 : 16;
			run = xreallocarray(run, cap, sizeof(*run));
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			run[nu++] = (uint16_t)(0xd800 + (cp >> 10));
			run[nu++] = (uint16_t)(0xdc00 + (cp & 0x3ff));
		} else
			run[nu++] = (uint16_t)cp;
	}
	if (nu)
		flush_run(out, run, nu);
	free(run);
	if (out->data == NULL)
		buf_puts(out, "");
	return 0;
}
