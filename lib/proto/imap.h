/*
 * imap - pure IMAP4rev1/rev2 (RFC 3501, RFC 9051) command-line parser,
 * sequence sets, and the string writer used by every IMAP response.
 *
 * imap_quote(): writes a string as an atom, a quoted string or a literal,
 * whichever the bytes allow: NIL for NULL (with IMAP_Q_NIL), an atom only
 * if asked (IMAP_Q_ATOM) and every byte is ATOM-CHAR, a quoted string if
 * no byte is NUL, CR, LF or 8-bit (8-bit allowed with IMAP_Q_UTF8 when the
 * bytes are valid UTF-8, for UTF8=ACCEPT sessions) and it is at most
 * IMAP_QUOTED_MAX bytes, else a synchronizing literal "{n}\r\n" + bytes.
 */
#ifndef POSTERN_IMAP_H
#define POSTERN_IMAP_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum {
	IMAP_Q_NIL = 1,          /* NULL → NIL (else NULL → "") */
	IMAP_Q_ATOM = 2,         /* an atom when possible */
	IMAP_Q_UTF8 = 4,         /* valid UTF-8 may be quoted (UTF8=ACCEPT) */
};

#define IMAP_QUOTED_MAX 1024

void imap_quote(struct buf *out, const char *s, size_t n, unsigned flags);

#endif
