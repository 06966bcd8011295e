/*
 * imap - IMAP command parser, sequence sets and the string writer
 * (contract in imap.h).
 *
 * Invariants: no parser reads past the bytes it is given; all parser state
 * lives in struct imap_parser, so any split of the input gives the same
 * result. Trusts: nothing; every byte may be hostile.
 */
#include "proto/imap.h"

#include <string.h>
#include <strings.h>

#include "proto/mutf7.h"

static int
is_atom_char(unsigned char c)
{
	return c > ' ' && c < 127 && strchr("(){%*\"\\]", c) == NULL;
}

void
imap_quote(struct buf *out, const char *s, size_t n, unsigned flags)
{
	int atom = (flags & IMAP_Q_ATOM) && n > 0, quoted = n <= IMAP_QUOTED_MAX;
	int high = 0;

	if (s == NULL) {
		buf_puts(out, flags & IMAP_Q_NIL ? "NIL" : "\"\"");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!is_atom_char(c))
			atom = 0;
		if (c == 0 || c == '\r' || c == '\n')
			quoted = 0;
		else if (c >= 0x80)
			high = 1;
	}
	if (atom && n == 3 && strncasecmp(s, "NIL", 3) == 0)
		atom = 0;
	if (high && !((flags & IMAP_Q_UTF8) && utf8_valid(s, n)))
		quoted = 0;
	if (atom)
		buf_append(out, s, n);
	else if (quoted) {
		buf_putc(out, '"');
		for (size_t i = 0; i < n; i++) {
			if (s[i] == '"' || s[i] == '\\')
				buf_putc(out, '\\');
			buf_putc(out, s[i]);
		}
		buf_putc(out, '"');
	} else {
		buf_printf(out, "{%zu}\r\n", n);
		buf_append(out, s, n);
	}
}
