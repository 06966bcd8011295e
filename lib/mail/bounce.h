/*
 * bounce - delivery status notifications (RFC 3464 inside an RFC 6522
 * multipart/report) and the per-message bounce/defer log lines qmgr keeps
 * in <queue_directory>/bounce/ID and defer/ID.
 *
 * bounce_compose() is a pure function: it gets everything it needs as
 * arguments (dates pre-formatted, the original message bytes) and appends
 * the notification's content - header and body, LF line ends, every line
 * at most 998 octets - to out. qmgr writes that as a new queue file with
 * the null sender.
 *
 * Log lines (one per recipient, LF-terminated, fields TAB-separated; TAB,
 * CR, LF and other control characters inside fields become spaces):
 *   bounce/ID: addr TAB orig TAB dsn TAB relay TAB text
 *   defer/ID:  addr TAB dsn TAB text
 */
#ifndef POSTERN_BOUNCE_H
#define POSTERN_BOUNCE_H

#include <stddef.h>
#include <time.h>
#include "util/buf.h"

/* Line limit of RFC 5322 section 2.1.1, without the line end. */
#define BOUNCE_LINE_MAX 998
/* RFC 2046: a boundary is 1..70 characters. */
#define BOUNCE_BOUNDARY_MAX 70

struct bounce_rcpt {
	const char *addr;     /* the final recipient */
	const char *orig;     /* original recipient (ORCPT, or before aliasing); NULL/"" none */
	const char *dsn;      /* enhanced status "5.1.1"; a bad one reports 5.0.0 */
	const char *relay;    /* "mx.example[192.0.2.1]:25", "local", "none"; may be NULL */
	const char *text;     /* the agent's explanation */
	int is_smtp;          /* text carries a remote SMTP reply (see bounce_text_is_smtp) */
};

struct bounce_info {
	const char *myhostname;   /* Reporting-MTA, From: MAILER-DAEMON@... */
	const char *queue_id;     /* the original message's queue ID */
	const char *sender;       /* the original envelope sender: the DSN's To
	                           * ("" for a notification that failed) */
	const char *to;           /* NULL: the sender; else the postmaster, told of
	                           * a failed notification (a double bounce) */
	const char *envid;        /* ENVID (RFC 3461) or NULL */
	const char *date;         /* Date: of the notification (RFC 5322 form) */
	const char *arrival_date; /* Arrival-Date: of the original (RFC 5322 form) */
	const char *message_id;   /* "<...>" for the notification's Message-Id */
	const char *boundary;     /* MIME boundary: 1..70 bchars, not in the content */
	int expired;              /* recipients failed because the queue lifetime ran out */
	int delayed;              /* a delay warning (delay_warning_time): Action:
	                           * delayed, 4.x.x, the message is still tried */
	const char *retry_until;  /* delayed: Will-Retry-Until (RFC 5322 form) or NULL */
	int return_full;          /* RET=FULL: message/rfc822; else text/rfc822-headers */
	const char *orig_msg;     /* the original message (or at least its header) */
	size_t orig_len;
	const struct bounce_rcpt *rcpts;
	size_t nrcpt;             /* >= 1 */
};

/*
 * Append the notification (header and body) to out. With return_full == 0
 * only the header of orig_msg (up to the first empty line) is attached.
 * CRLF in orig_msg becomes LF; over-long lines are broken. Returns 0, or -1
 * with *err_r a static text: missing or invalid arguments, a boundary that
 * occurs in the attached message or in a recipient's text (pick another
 * and retry), or out's limit reached.
 */
int bounce_compose(struct buf *out, const struct bounce_info *info,
    const char **err_r);

/* Does text look like a remote server's reply ("host X said: 550 ...")? */
int bounce_text_is_smtp(const char *text);
/* The reply itself out of such a text: start and length (without the
 * "(in reply to ... command)" tail). Returns the whole text if it is not
 * of that form. */
const char *bounce_smtp_reply(const char *text, size_t *len_r);

/* "Mon, 2 Jan 2006 15:04:05 -0700" in local time into out (>= 64 bytes). */
void bounce_format_date(time_t t, char *out, size_t outlen);

/* Log lines: append one LF-terminated line to out. */
void bounce_log_bounce_line(struct buf *out, const char *addr, const char *orig,
    const char *dsn, const char *relay, const char *text);
void bounce_log_defer_line(struct buf *out, const char *addr, const char *dsn,
    const char *text);
/* Split line (no LF) in place at TABs into at most max fields; the last
 * field takes the rest. Returns the number of fields. */
size_t bounce_log_split(char *line, char **fields, size_t max);

#endif
