/*
 * mutf7 - UTF-8 validation and modified UTF-7 (contract in mutf7.h).
 *
 * Trusts nothing: both directions take hostile bytes and fail with -1
 * rather than guess.
 */
#include "proto/mutf7.h"

#include <stdint.h>

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
