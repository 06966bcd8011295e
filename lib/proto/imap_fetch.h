/*
 * imap_fetch - IMAP FETCH (RFC 3501/9051 section 6.4.5, RFC 3516 BINARY,
 * RFC 7162 CONDSTORE/QRESYNC modifiers): parse the attribute list once
 * per command, then write one "* n FETCH (...)" response per message.
 * Pure: bytes come from struct imap_view (imap_view.h), output goes into
 * a struct buf. Uses mime.c for ENVELOPE, BODY, BODYSTRUCTURE and
 * BODY[section]; every octet count and <partial> offset is in the CRLF
 * wire form (stored bare LFs are sent as CRLF).
 */
#ifndef POSTERN_IMAP_FETCH_H
#define POSTERN_IMAP_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "proto/imap.h"
#include "proto/imap_view.h"

enum imap_fetch_kind {
	IMAP_FI_UID,
	IMAP_FI_FLAGS,
	IMAP_FI_INTERNALDATE,
	IMAP_FI_RFC822_SIZE,
	IMAP_FI_ENVELOPE,
	IMAP_FI_BODY,              /* BODY without section: non-extensible */
	IMAP_FI_BODYSTRUCTURE,
	IMAP_FI_RFC822,            /* = BODY[] and sets \Seen */
	IMAP_FI_RFC822_HEADER,     /* = BODY.PEEK[HEADER] */
	IMAP_FI_RFC822_TEXT,       /* = BODY[TEXT] and sets \Seen */
	IMAP_FI_SECTION,           /* BODY[...] / BODY.PEEK[...] */
	IMAP_FI_BINARY,            /* BINARY[...] / BINARY.PEEK[...] */
	IMAP_FI_BINARY_SIZE,
	IMAP_FI_MODSEQ,
};

struct imap_fetch_item {
	enum imap_fetch_kind kind;
	int peek;                  /* .PEEK: does not set \Seen */
	char *section;             /* owned copy of the text between [ ] */
	int has_partial;
	uint32_t partial_off, partial_len;
};

struct imap_fetch_req {
	struct imap_fetch_item *items;   /* owned */
	size_t n;
	unsigned need;             /* IMAP_VIEW_* bits some item needs */
	int sets_seen;             /* a non-peek body item: the session sets
	                            * \Seen (read-write mailbox) before writing */
	int has_modseq;            /* MODSEQ item or CHANGEDSINCE given */
	int changedsince_given;
	uint64_t changedsince;     /* CHANGEDSINCE n: skip views with modseq <= n */
	int vanished;              /* (VANISHED) modifier (UID FETCH, QRESYNC) */
};

/* Parse the attribute argument (child k of c->args[0]: an atom, a macro
 * ALL/FAST/FULL, or a parenthesised list) and the optional modifier list
 * after it ("(CHANGEDSINCE n [VANISHED])"). uid: UID FETCH, which adds
 * IMAP_FI_UID. 0, or -1 with *err_r a static text for "tag BAD".
 * With imap_parse's commands k is 1 for FETCH ("FETCH" set atts) and 2
 * for UID FETCH (name "UID", children "FETCH" set atts). Syntax only:
 * enabling CONDSTORE on a MODSEQ item or CHANGEDSINCE (RFC 7162 3.1),
 * and BAD for VANISHED while QRESYNC is not enabled, are the session's. */
int imap_fetch_parse(const struct imap_command *c, size_t k, int uid,
    struct imap_fetch_req *req, const char **err_r);
void imap_fetch_req_free(struct imap_fetch_req *req);

/* Options for imap_fetch_write (bits). */
#define IMAP_FW_FLAGS  1u          /* add FLAGS even if not asked (\Seen was
                                    * just set, RFC 3501 6.4.5) */
#define IMAP_FW_MODSEQ 2u          /* add MODSEQ (CONDSTORE enabled) */
#define IMAP_FW_UTF8   4u          /* UTF8=ACCEPT: 8-bit header text may be
                                    * quoted instead of a literal */

/* Append "* seq FETCH (...)\r\n" for v to out. 0; -1 when the message
 * could not be loaded (v->load failed: out is left as it was); -2 for a
 * BINARY item whose Content-Transfer-Encoding is unknown (*err_r is the
 * text after "tag NO ", "[UNKNOWN-CTE] ..." included; out left as it was).
 * With CHANGEDSINCE, a view whose modseq <= changedsince gets 0 and no
 * output. Items come in the order asked (UID first for UID FETCH), then
 * FLAGS and MODSEQ when opts or CHANGEDSINCE add them. */
int imap_fetch_write(const struct imap_fetch_req *req, struct imap_view *v,
    unsigned opts, struct buf *out, const char **err_r);

/* "(\Seen \Flagged kw1 ...)" with \Recent when recent, for FETCH FLAGS and
 * the untagged flag updates a session sends on its own. */
void imap_write_flags(struct buf *out, unsigned flags, char *const *keywords,
    int recent);
/* "\"05-Dec-2026 12:00:00 +0000\"" (RFC 3501 date-time, UTC). */
void imap_write_datetime(struct buf *out, int64_t t);
/* Parse an APPEND/SEARCH date-time "dd-Mon-yyyy hh:mm:ss +zzzz" (quoted
 * contents) to seconds: 0 or -1. */
int imap_parse_datetime(const char *s, size_t n, int64_t *t_r);

#endif
