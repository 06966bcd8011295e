/*
 * smtp - pure SMTP server-side parsers: command lines, ESMTP parameters,
 * xtext, and the DATA phase. No I/O, no mail knowledge above lib/util:
 * address parsing (MAIL FROM:<path>) is the caller's (smtpd, lib/mail/addr.h).
 *
 * Every parser takes bytes, an explicit state and a limits struct, and
 * answers SMTP_DONE, SMTP_NEED_MORE or SMTP_ERROR. Feeding the same bytes in
 * any split gives the same results.
 *
 * Command lines are split by util/line.h (line_split, conn_read_line): a
 * line ends at LF, CRs right before it are dropped, a bare LF is flagged
 * (smtpd_forbid_bare_newline), an over-long line (line_length_limit) is
 * discarded up to its LF and reported once.
 *
 * DATA (smtp_data_parse) - the rules that keep SMTP smuggling out:
 *  1. Output is the message content with LF line ends, dot-unstuffed.
 *  2. A line end is an LF; any CRs immediately before it are dropped
 *     ("\r\r\n" is one line end). A line end is "standard" only when exactly
 *     one CR precedes the LF. A bare CR elsewhere is content, kept as-is.
 *  3. End of data is ONLY a line that is exactly "." ended by a standard
 *     CRLF, whose preceding line also ended with a standard CRLF (or that is
 *     the very first line). "<LF>.<LF>", "<LF>.<CR><LF>", "<CR><LF>.<LF>"
 *     and "<CR><LF>.<CR><CR><LF>" are content: the lone "." line is then
 *     kept as the content line ".", not dropped and not unstuffed.
 *  4. Any other line that starts with "." loses that first "." (RFC 5321
 *     4.5.2 transparency), whatever its line end.
 *  5. Long lines are not an error (Postfix passes them on); the total output
 *     size is counted, and past max_size the parser keeps consuming to the
 *     end of data but stops producing output (out gets exactly the first
 *     max_size bytes) and sets too_big; the caller discards the message.
 *  6. *consumed_r tells how much input was used; bytes after the end-of-data
 *     line are left for the command parser (pipelined commands after ".").
 *  7. With lim->reject_bare_lf, the first line ended by a bare LF (no CR
 *     before it) stops the parser: SMTP_ERROR with bare_lf set, consumed
 *     through that LF. The caller says so and closes the session: nothing
 *     after it can be trusted to be either content or a command.
 *
 * BDAT (RFC 3030; smtp_bdat_args, smtp_bdat_parse): the chunk is exactly
 * the announced octets, with no dot-stuffing and no end-of-data line. The
 * only change made is the line end: each CRLF pair becomes the queue's LF
 * (a pair split across two chunks too); a lone CR, a lone LF, NULs and any
 * 8-bit octet are content as sent. Size counting is as for DATA (rule 5).
 */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include <stddef.h>
#include "util/buf.h"

enum smtp_result {
	SMTP_DONE,
	SMTP_NEED_MORE,
	SMTP_ERROR,
};

struct smtp_limits {
	size_t line_length_limit;  /* command line, terminator excluded (2048) */
	size_t params_max;         /* ESMTP parameters per command (16) */
	long long max_size;        /* DATA content bytes; 0 = unlimited */
	int reject_bare_lf;        /* DATA: stop at a line ended by a bare LF */
};

#define SMTP_LIMITS_DEFAULT { 2048, 16, 10240000, 0 }

/* --- Verbs --------------------------------------------------------------- */

enum smtp_verb {
	SMTP_UNKNOWN = 0,
	SMTP_HELO, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_RSET,
	SMTP_NOOP, SMTP_QUIT, SMTP_VRFY, SMTP_HELP, SMTP_EXPN, SMTP_STARTTLS,
	SMTP_AUTH, SMTP_BDAT, SMTP_ETRN,
	SMTP_VERB_COUNT,
};

/* Verb flags: policy the server applies before calling a handler. */
enum {
	SMTP_VF_ARG_NONE = 1,    /* takes no argument: "501 5.5.4 Syntax: VERB" */
	SMTP_VF_ARG_REQ = 2,     /* needs an argument */
	SMTP_VF_LAST = 4,        /* may only be last in a pipelined group (RFC 2920) */
	SMTP_VF_NO_TLS_CHECK = 8,/* allowed before TLS even when TLS is required */
	SMTP_VF_TXN = 16,        /* part of a mail transaction */
};

struct smtp_verb_info {
	const char *name;        /* upper case; logs use it lower-cased ("ehlo=1") */
	enum smtp_verb verb;
	unsigned flags;
	const char *syntax;      /* the 501 reply for a bad argument count */
};

/* The table, indexed by enum smtp_verb (index 0 is the "unknown" entry). */
extern const struct smtp_verb_info smtp_verbs[SMTP_VERB_COUNT];

/* Case-insensitive lookup of a verb of len bytes; the unknown entry if none. */
const struct smtp_verb_info *smtp_verb_lookup(const char *word, size_t len);

/* --- Command lines --------------------------------------------------------- */

struct smtp_cmd {
	const struct smtp_verb_info *verb;
	const char *arg;         /* borrowed from the line; "" when none */
	size_t arg_len;
};

/* Split a command line (no terminator) into verb and argument: the verb
 * ends at the first space or HT; the argument is the rest without leading
 * and trailing blanks. ERROR (*err_r a static full reply, "500 5.5.2 Error:
 * bad syntax") on an empty line or a NUL, CR or other control character
 * than HT in the line; an unknown verb is DONE with verb->verb ==
 * SMTP_UNKNOWN. */
enum smtp_result smtp_cmd_parse(const char *line, size_t len,
    struct smtp_cmd *cmd_r, const char **err_r);
/* Check the argument against the verb's ARG_NONE/ARG_REQ flags: 0, or -1
 * with *err_r the verb's syntax reply. Separate from smtp_cmd_parse so a
 * server can answer "not implemented" before complaining about syntax. */
int smtp_cmd_args_ok(const struct smtp_cmd *cmd, const char **err_r);

/* --- ESMTP parameters ------------------------------------------------------ */

enum smtp_body {
	SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME,
};
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

enum {
	SMTP_NOTIFY_NEVER = 1,
	SMTP_NOTIFY_SUCCESS = 2,
	SMTP_NOTIFY_FAILURE = 4,
	SMTP_NOTIFY_DELAY = 8,
};

struct smtp_mail_params {
	long long size;          /* -1 when not given; LLONG_MAX if too large */
	enum smtp_body body;
	int smtputf8;
	enum smtp_ret ret;
	char *envid;             /* decoded xtext, xmalloc'd, or NULL */
	int auth_given;          /* AUTH= (RFC 4954 section 5) was given */
	char *auth;              /* its mailbox, decoded xtext, xmalloc'd;
	                          * NULL for AUTH=<> */
};

struct smtp_rcpt_params {
	unsigned notify;         /* SMTP_NOTIFY_* bits; 0 = not given */
	char *orcpt;             /* decoded address of ORCPT=rfc822;..., or NULL */
};

/* Parse the parameters after the path: s is "KEY=VALUE KEY ..." (leading
 * spaces allowed). Keys are case-insensitive. ERROR with *err_r an
 * xmalloc'd full reply ("555 5.5.4 Unsupported option: FOO", "501 5.5.4
 * Bad ENVID parameter syntax") on unknown, duplicate or malformed
 * parameters, or more than lim->params_max of them. On ERROR the struct
 * is already freed. */
enum smtp_result smtp_mail_params_parse(const char *s, size_t len,
    const struct smtp_limits *lim, struct smtp_mail_params *p, char **err_r);
void smtp_mail_params_free(struct smtp_mail_params *p);
enum smtp_result smtp_rcpt_params_parse(const char *s, size_t len,
    const struct smtp_limits *lim, struct smtp_rcpt_params *p, char **err_r);
void smtp_rcpt_params_free(struct smtp_rcpt_params *p);
/* "", "NEVER", or a subset of "SUCCESS,FAILURE,DELAY" in that order (the
 * queue file's notify field). Static storage. */
const char *smtp_notify_str(unsigned notify);

/* xtext (RFC 3461 section 4): decode in[0..n) into out (appended). 0, or
 * -1 on bad syntax, a lower-case hex digit, or a decoded control character
 * or NUL (those have no business in an envelope field). */
int smtp_xtext_decode(const char *in, size_t n, struct buf *out);
/* Encode a C string as xtext (appended to out). */
void smtp_xtext_encode(const char *s, struct buf *out);
/* A reply text that starts with its enhanced status code ("5.7.1 text",
 * class 2, 4 or 5): dsn "5.7.1" and *text_r "text"; else dsn def and the
 * whole text. Access tables, policy services and header_checks write it
 * so. */
void smtp_dsn_split(const char *text, const char *def, char dsn[16],
    const char **text_r);

/* --- DATA ------------------------------------------------------------------ */

struct smtp_data {
	int state;               /* internal: where in the current line */
	int prev_std;            /* previous line ended with exactly CRLF */
	size_t crs;              /* CRs held back, not yet known to end a line */
	long long size;          /* content bytes produced (counted even past the limit) */
	int too_big;             /* size went over lim->max_size */
	int bare_lf;             /* stopped at a bare LF (lim->reject_bare_lf) */
	int done;
};

void smtp_data_init(struct smtp_data *d);
/* Feed DATA-phase bytes. Content is appended to out (unless too_big).
 * NEED_MORE: all n bytes consumed. DONE: end of data seen, *consumed_r
 * bytes (through the final LF) used, the rest belongs to the next command.
 * ERROR: a bare LF with lim->reject_bare_lf (d->bare_lf set, *consumed_r
 * through it), or called again after DONE or ERROR. The caller may drain out between calls
 * (if out has a max and an append fails, too_big is set). */
enum smtp_result smtp_data_parse(struct smtp_data *d, const struct smtp_limits *lim,
    const char *in, size_t n, size_t *consumed_r, struct buf *out);

/* --- BDAT (RFC 3030) --------------------------------------------------------- */

/* The argument of BDAT: "chunk-size [LAST]" (LAST in any case, chunk-size
 * 1 to 18 digits). 0 and *size_r, *last_r; -1 on bad syntax, in which case
 * the caller cannot know where the chunk ends. */
int smtp_bdat_args(const char *arg, size_t len, long long *size_r, int *last_r);
/* Feed chunk octets (all of in[0..n) is content; the caller counts the
 * chunk). Content goes to out as for smtp_data_parse, with CRLF made LF.
 * d starts with smtp_data_init() at the first chunk of a message and is
 * kept across chunks. */
void smtp_bdat_parse(struct smtp_data *d, const struct smtp_limits *lim,
    const char *in, size_t n, struct buf *out);
/* After the LAST chunk: a CR still held back is content. */
void smtp_bdat_end(struct smtp_data *d, const struct smtp_limits *lim,
    struct buf *out);

#endif
