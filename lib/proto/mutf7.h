/*
 * mutf7 - UTF-8 validation, and modified UTF-7 (RFC 3501 5.1.3) for the
 * mailbox names of IMAP4rev1 clients.
 *
 * utf8_valid(): strict RFC 3629: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence. NUL is
 * valid UTF-8 (callers that forbid it check themselves).
 */
#ifndef POSTERN_MUTF7_H
#define POSTERN_MUTF7_H

#include <stddef.h>

#include "util/buf.h"

int utf8_valid(const char *s, size_t n);

#endif
