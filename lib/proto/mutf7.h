/*
 * mutf7 - UTF-8 validation, and modified UTF-7 (RFC 3501 5.1.3) for the
 * mailbox names of IMAP4rev1 clients.
 *
 * utf8_valid(): strict RFC 3629: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence. NUL is
 * valid UTF-8 (callers that forbid it check themselves).
 *
 * Modified UTF-7: printable US-ASCII (0x20..0x7e) stands for itself, "&"
 * is "&-", anything else is "&" + base64 of UTF-16BE with "," for "/" and
 * no padding + "-". Decoding is strict: only the one canonical encoding of
 * a name is accepted (it must re-encode to the same bytes), so a bare "&",
 * an unterminated run, non-zero or too many pad bits, printable ASCII
 * inside a run, two adjacent runs, a lone or reversed surrogate, and any
 * byte outside 0x20..0x7e are all refused. Both directions append to out
 * and return 0, or -1 leaving out as it was. Mailbox names are bounded by
 * the caller (the command line limit); these functions take any length.
 *
 * BUGS: mutf7_to_utf8 re-encodes to check canonical form, so it costs two
 * passes and a temporary buffer as long as the name.
 */
#ifndef POSTERN_MUTF7_H
#define POSTERN_MUTF7_H

#include <stddef.h>

#include "util/buf.h"

int utf8_valid(const char *s, size_t n);
int mutf7_to_utf8(const char *s, size_t n, struct buf *out);
int utf8_to_mutf7(const char *s, size_t n, struct buf *out);
/* 1 if s[0..n) is canonical modified UTF-7. */
int mutf7_valid(const char *s, size_t n);

#endif
