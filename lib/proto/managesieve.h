/*
 * managesieve - the response side of ManageSieve (RFC 5804) shared by
 * managesieve-login and managesieve: the capability block and OK/NO/BYE
 * lines with their response codes and quoted text. Commands are parsed
 * by lib/proto/imap.c in untagged mode (the same strings and literals).
 * No I/O.
 */
#ifndef POSTERN_MANAGESIEVE_H
#define POSTERN_MANAGESIEVE_H

#include "util/buf.h"

enum {
	MSIEVE_CAP_STARTTLS = 1,   /* STARTTLS is offered */
	MSIEVE_CAP_SASL = 2,       /* PLAIN and LOGIN may be used now */
	MSIEVE_CAP_AUTHED = 4,     /* after login: no SASL, no STARTTLS */
};

/* The capability block (section 1.7), one "NAME" ["value"] per line;
 * extensions is the Sieve interpreter's list (lib/sieve). */
void msieve_capabilities(struct buf *out, unsigned flags,
    const char *extensions, unsigned long max_redirects);
/* kind "OK"/"NO"/"BYE", code e.g. "QUOTA/MAXSIZE" or NULL (written in
 * parentheses), text quoted (a literal when it cannot be). */
void msieve_reply(struct buf *out, const char *kind, const char *code,
    const char *text);

#endif
