/*
 * hdrlimit - the primary message header as content streams past: Postfix's
 * header_size_limit, the hop count (hopcount_limit) and the Message-ID
 * for the log. Pure: bytes in, bytes out, no I/O.
 *
 * Input is message content with LF line ends, in pieces of any size; the
 * output is the same content with every logical header (a field and its
 * continuation lines) cut to about header_size_limit bytes, as Postfix's
 * cleanup does (mime_state.c):
 * - A logical header is read in pieces: each physical line, and each
 *   line_length_limit bytes of a longer line (Postfix stores long lines
 *   as records of that size). A piece that starts while the header is
 *   still under header_size_limit is kept whole; a piece that starts at or
 *   over the limit is discarded, with the LF before it. So a kept header
 *   is at most header_size_limit + line_length_limit + 1 bytes, and the
 *   message is still accepted (Postfix only logs it).
 * - The header ends at an empty line, or at a line that is neither a
 *   field ("name:" with name printable ASCII, no space or ':', within the
 *   first piece) nor a continuation of one; from there on every byte is
 *   passed through unchanged. Unlike Postfix, no empty line is inserted
 *   before such a line: the content stays as sent.
 * - Hops are the Received: fields of the primary header (Postfix counts
 *   these only); the caller compares them with hopcount_limit.
 * Limits: besides the output bound above, at most line_length_limit name
 * bytes and HDRLIMIT_FIELD_MAX field bytes are held.
 */
#ifndef POSTERN_HDRLIMIT_H
#define POSTERN_HDRLIMIT_H

#include <stddef.h>
#include "util/buf.h"

#define HDRLIMIT_FIELD_MAX 1000     /* field bytes kept for inspection */
#define HDRLIMIT_MSGID_MAX 200

struct hdrlimit {
	size_t header_size_limit;
	size_t piece;            /* line_length_limit */
	int state;               /* internal */
	int pending_lf;          /* a header line's LF, not yet written */
	int keep;                /* the current piece is written */
	int in_field;            /* a field is open (continuations allowed) */
	size_t cur;              /* bytes of the current logical header kept */
	size_t line_pos;         /* bytes of the current physical line */
	struct buf name;         /* a line start not yet known to be a field */
	struct buf field;        /* the first HDRLIMIT_FIELD_MAX bytes of it */
	long long hops;          /* Received: fields */
	long long truncated;     /* logical headers cut by the limit */
	char *message_id;        /* first Message-ID: value, or NULL */
};

void hdrlimit_init(struct hdrlimit *h, size_t header_size_limit,
    size_t line_length_limit);
/* Feed content p[0..n); what is kept is appended to out. */
void hdrlimit_feed(struct hdrlimit *h, const char *p, size_t n, struct buf *out);
/* End of content: write what is still held back. */
void hdrlimit_end(struct hdrlimit *h, struct buf *out);
void hdrlimit_free(struct hdrlimit *h);
/* Received: fields in a whole header block p[0..n) (LF line ends). */
long long hdrlimit_hops(const char *p, size_t n);

#endif
