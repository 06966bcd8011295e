/*
 * submit - local submission (sendmail(1) -> pickup): the stream format
 * and the message processing, as pure functions over bytes.
 *
 * The stream, on the public/pickup socket and in a maildrop/ file alike,
 * is a sequence of ipc frames (util/ipc.h):
 *
 *   envelope  "request"="submit", "version"=SUBMIT_VERSION, and any of
 *             "sender" (-f; "" = null sender), "fullname" (-F), "rcpt"
 *             (repeated), "extract"="yes" (-t), "notify" (-N, as the
 *             queue file writes it), "ret" (FULL|HDRS), "envid", "body"
 *             (7BIT|8BITMIME), "arrival" (unix seconds, maildrop only)
 *   content   "data"=bytes (LF line ends, no NUL), any number
 *   end       "end"="yes", "size"=total content bytes
 *
 * On the socket pickup answers one frame: "status"="ok" and "queue_id",
 * or "status"="fail"|"temp", "exit" (a sysexits code) and "reason".
 * Who the submitter is never comes from the stream: pickup takes it from
 * SO_PEERCRED or from the maildrop file's owner.
 *
 * The header processing below is what pickup applies to every local
 * submission: recipients from To/Cc/Bcc with -t (Resent-To/-Cc/-Bcc
 * instead when the message has any of those), Bcc and Resent-Bcc
 * removed, Received: added on top, Date:, Message-ID: and From: added at
 * the end of the header when missing, a leading mbox "From " line dropped.
 */
#ifndef POSTERN_SUBMIT_H
#define POSTERN_SUBMIT_H

#include <stddef.h>
#include <time.h>
#include "util/buf.h"

#define SUBMIT_VERSION "1"
#define SUBMIT_SOCKET "pickup"            /* under public/ */
#define SUBMIT_CHUNK (64 * 1024)          /* content bytes per frame */
#define SUBMIT_ENVELOPE_MAX (1024 * 1024) /* envelope frame limit */

/*
 * Where does the header end? p[0..n) is the start of the content. A header
 * is a run of fields ("Name: value" lines and their continuation lines),
 * optionally after one mbox "From " line; it ends before an empty line,
 * before the first line that is neither, at the end of input (eof), or at
 * the last whole field within limit bytes. 1 and *len_r (bytes of the
 * header block, the empty line not included), or 0: need more input.
 */
int submit_header_extent(const char *p, size_t n, int eof, size_t limit,
    size_t *len_r);

/*
 * Parse an RFC 5322 address-list (a field body, folded or not): mailboxes,
 * "Name <addr>", groups ("friends: a@b, c@d;"), comments, quoted strings.
 * Each mailbox is appended to *addrs (strv) without its display name; an
 * address without a domain gets "@origin". 0, or -1 and *err_r (static
 * text) for syntax that cannot be read as addresses.
 */
int submit_addr_list(const char *s, size_t n, const char *origin,
    char ***addrs, const char **err_r);

/*
 * An address from the command line or MAIL FROM/-f: optional <>, no
 * display name. Returns an xmalloc'd "local@domain" (qualified with origin
 * when it has no domain; "" stays "" when allow_null), or NULL when it is
 * not a valid address.
 */
char *submit_addr_normalize(const char *s, const char *origin, int allow_null);

/*
 * The recipients a -t submission names: from the To/Cc/Bcc fields of the
 * header block hdr[0..len) (from the Resent- ones if any exist), appended
 * to *rcpts. 0, or -1 and *err_r (xmalloc'd, "bad address syntax in To:
 * header: ...").
 */
int submit_extract_rcpts(const char *hdr, size_t len, const char *origin,
    char ***rcpts, char **err_r);

struct submit_info {
	int extract;             /* -t: fill out->rcpts */
	const char *sender;      /* envelope sender, "" for the null sender */
	const char *fullname;    /* display name for an added From:, or NULL */
	const char *origin;      /* myorigin */
	const char *hostname;    /* myhostname */
	const char *mail_name;   /* "Postern" */
	const char *queue_id;
	long uid;                /* the submitter, for Received: */
	time_t now;
};

struct submit_out {
	struct buf header;       /* new header block: LF ends, no empty line */
	char **rcpts;            /* -t recipients (strv), NULL if none */
	char *message_id;        /* Message-ID value seen or added (logging) */
};

/* Rewrite the header block hdr[0..len) as described above. 0, or -1 and
 * *err_r (xmalloc'd) for an unreadable address field with -t. out is
 * initialised here; free it with submit_out_free() in both cases. */
int submit_header_rewrite(const char *hdr, size_t len,
    const struct submit_info *si, struct submit_out *out, char **err_r);
void submit_out_free(struct submit_out *out);

/* RFC 5322 date-time of t in local time, "Mon, 2 Jan 2006 15:04:05 -0700 (MST)". */
void submit_date(time_t t, char *out, size_t n);

/* The display name from a passwd GECOS field: up to the first ',', '&'
 * replaced by the login name with its first letter upper-cased. xmalloc'd. */
char *submit_gecos_name(const char *gecos, const char *login);

#endif
