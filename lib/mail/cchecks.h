/*
 * cchecks - Postfix's built-in content inspection (header_checks(5)) on
 * message content as it streams past: header_checks, mime_header_checks,
 * nested_header_checks and body_checks. Pure: bytes in, bytes out, table
 * lookups and what fired go through the caller's callbacks; no I/O.
 *
 * Input is content with LF line ends (after hdrlimit), in pieces of any
 * size. What is checked, as Postfix's cleanup with MIME processing on:
 * - each logical header (a field and its continuation lines, joined by
 *   their "\n", without the last) of the primary header: MIME headers
 *   (Content-*, MIME-Version) against mime_header_checks, the others
 *   against header_checks;
 * - the headers of each multipart part against mime_header_checks, and
 *   those of an attached message (message/rfc822, or a part of a
 *   multipart/digest without a type) against nested_header_checks (their
 *   MIME headers against mime_header_checks);
 * - every other line (bodies, preambles, epilogues, the boundary lines)
 *   against body_checks, up to body_checks_size_limit bytes of each body
 *   part; a line is checked in pieces of line_length_limit bytes.
 * The header ends as hdrlimit says (an empty line, or a line that is
 * neither a field nor a continuation, which is then a body line).
 * Multipart nesting is followed to CCHECKS_DEPTH levels; deeper parts
 * count as body.
 *
 * Actions (the result's first word, any case; the rest is the text):
 * REJECT [text], DISCARD [text] (both end the inspection), HOLD [text],
 * WARN [text], INFO [text], IGNORE (the header or line is left out),
 * PREPEND text (a line before it), REPLACE text (instead of it),
 * REDIRECT address (the last one wins) and BCC address (each once, at
 * most CCHECKS_BCC_MAX), which the caller applies to the envelope,
 * DUNNO and OK (nothing). Postfix's FILTER, PASS and STRIP are not
 * implemented: cchecks_action_ok() says so for postern check; met at
 * run time, like an unknown word, they are reported as "unknown" and do
 * nothing else.
 */
#ifndef POSTERN_CCHECKS_H
#define POSTERN_CCHECKS_H

#include <stddef.h>
#include "util/buf.h"

#define CCHECKS_DEPTH 20          /* multipart levels followed */
#define CCHECKS_BOUNDARY_MAX 200  /* RFC 2046: 70; longer ones count as none */
#define CCHECKS_BCC_MAX 20        /* BCC actions kept per message */

enum cc_class { CC_HEADER, CC_MIME, CC_NESTED, CC_BODY, CC_NCLASS };

/* 1 found (*value_r xmalloc'd), 0 not found, -1 temporary failure. */
typedef int (*cc_lookup_fn)(void *ctx, enum cc_class c, const char *key,
    char **value_r);
/* An action that fired: action is Postfix's log word ("reject",
 * "discard", "hold", "warning", "info", "replace", "unknown"), what the
 * header or line (not NUL-safe beyond its length; may hold "\n"), text
 * the action's text ("" if none); for "unknown", text is the whole
 * result. */
typedef void (*cc_report_fn)(void *ctx, const char *action, enum cc_class c,
    const char *what, const char *text);

struct cchecks {
	cc_lookup_fn lookup;
	cc_report_fn report;
	void *ctx;
	int has[CC_NCLASS];      /* a table for the class */
	size_t body_limit;       /* body_checks_size_limit */
	size_t piece;            /* line_length_limit */
	/* results */
	int stopped;             /* REJECT, DISCARD or a lookup failure */
	int hold, discard, lookup_error;
	char *reject;            /* the SMTP reply for REJECT, or NULL */
	char *redirect;          /* REDIRECT's address, or NULL */
	char **bcc;              /* BCC's addresses (a strv), or NULL */
	/* internal */
	int in_header;           /* collecting a header block */
	int block;               /* its kind: 0 primary, 1 part, 2 nested */
	int line_start;          /* the next record starts a line */
	int spill;               /* the open header outgrew what is held */
	struct buf rec;          /* the record being read */
	struct buf cur;          /* the logical header held */
	size_t body_seen;        /* bytes of the current body part looked at */
	char *ctype;             /* the block's Content-Type value */
	char *bound[CCHECKS_DEPTH];
	int digest[CCHECKS_DEPTH];
	int depth;
	int part_digest;         /* the open part header is in a digest */
};

/* has[] says which classes have a table; with none, content passes
 * through unchanged (and cheaply). */
void cchecks_init(struct cchecks *c, const int has[CC_NCLASS],
    size_t body_limit, size_t line_length_limit, cc_lookup_fn lookup,
    cc_report_fn report, void *ctx);
/* Feed p[0..n); the content to keep is appended to out. */
void cchecks_feed(struct cchecks *c, const char *p, size_t n, struct buf *out);
/* End of content: the last held line or header. */
void cchecks_end(struct cchecks *c, struct buf *out);
void cchecks_free(struct cchecks *c);
/* Has a table (else feed only copies). */
int cchecks_active(const struct cchecks *c);
/* Is a table result an action Postern implements? NULL if so, else why
 * not (static text). */
const char *cchecks_action_ok(const char *result);

/*
 * The tables and the log, for smtpd and pickup (cchecks_tables.c).
 */
extern const char *const cchecks_param[CC_NCLASS];  /* "header_checks", ... */
struct cc_tables {
	struct maplist *t[CC_NCLASS];   /* NULL: no table for the class */
	size_t body_limit;              /* body_checks_size_limit */
	int envelope;   /* a table can REDIRECT or BCC: hold the content, so
	                 * the recipients can still change at its end */
};
/* Open the four tables of the configuration. 0, or -1 and *err_r. */
int cc_tables_open(struct cc_tables *t, char **err_r);
void cc_tables_close(struct cc_tables *t);
/* REDIRECT and BCC that fired, applied to w (whose content is not
 * written yet): REDIRECT replaces the recipients, BCC adds copies with
 * NOTIFY=NEVER, both through virtual_alias_maps (bcc_add_addr). 0, -1
 * lookup failure, -2 w refused (errno). */
struct queue_writer;
struct resolver;
int cc_envelope_apply(const struct cchecks *c, struct resolver *res,
    struct queue_writer *w);
/* Start inspecting a message with them (ctx: the cc_log_ctx below). */
void cc_tables_begin(struct cc_tables *t, struct cchecks *c,
    size_t line_length_limit, void *log_ctx);
/* What the log lines name, as Postfix's cleanup: "QUEUEID: reject:
 * header Subject: x from host[addr]; from=<s> to=<r> proto=ESMTP
 * helo=<h>: text". */
struct cc_log_ctx {
	struct cc_tables *tables;
	const char *id, *client, *from, *to;
	const char *proto, *helo;       /* NULL: not logged (local mail) */
};

#endif
