/*
 * smtpc - pure client-side SMTP/LMTP parsers, shared by the smtp(8) and
 * lmtp(8) delivery agents (one program, smtp/): server replies, the
 * EHLO/LHLO extension list, LMTP nexthops and the per-recipient replies
 * after DATA (RFC 2033 4.2). No I/O: fed bytes, unit-tested and fuzzable.
 */
#ifndef POSTERN_SMTPC_H
#define POSTERN_SMTPC_H

#include <stddef.h>

#include "util/buf.h"

#define SMTPC_LINE_MAX 2048       /* one reply line, CRLF included */
#define SMTPC_REPLY_LINES 100     /* lines of one multi-line reply */
#define SMTPC_REPLY_TEXT_MAX 4096 /* joined text kept for logs/bounces */

enum smtpc_result { SMTPC_DONE, SMTPC_NEED_MORE, SMTPC_ERROR };

/* --- Replies ----------------------------------------------------------- */

/* One reply being assembled from its lines. text: "NNN line1 line2 ..."
 * (control characters made spaces, capped near SMTPC_REPLY_TEXT_MAX);
 * lines: when want_lines, the text of each line without its code (the
 * EHLO/LHLO keywords). */
struct smtpc_reply {
	int want_lines;
	int code;                 /* after DONE: 200..599 */
	int nlines;
	struct buf text;          /* owned */
	char **lines;             /* owned strv, NULL if none */
	char err[96];             /* after ERROR */
};

/* Start (or restart) a reply; keeps text's memory. */
void smtpc_reply_init(struct smtpc_reply *r, int want_lines);
void smtpc_reply_free(struct smtpc_reply *r);
/* Feed the unread input in[0..n): complete lines are used and counted in
 * *consumed_r (a partial last line is left for the next call). DONE: the
 * reply is complete (bytes after it are the next reply's). NEED_MORE:
 * feed more. ERROR: a line over SMTPC_LINE_MAX, a malformed line, a code
 * that changes inside a reply, or too many lines (r->err). Bare LF ends a
 * line too (servers are not held to CRLF here; we send nothing back). */
enum smtpc_result smtpc_reply_parse(struct smtpc_reply *r, const char *in, size_t n,
    size_t *consumed_r);
/* One reply line "250-TEXT" / "250 TEXT" / "250": 0 and *code, *last;
 * -1 garbage. */
int smtpc_reply_line(const char *line, size_t len, int *code, int *last);

/* --- EHLO / LHLO ---------------------------------------------------------- */

enum {
	SMTPC_EXT_PIPELINING = 1,
	SMTPC_EXT_SIZE = 2,
	SMTPC_EXT_8BITMIME = 4,
	SMTPC_EXT_SMTPUTF8 = 8,
	SMTPC_EXT_DSN = 16,
	SMTPC_EXT_STARTTLS = 32,
	SMTPC_EXT_AUTH_PLAIN = 64,
	SMTPC_EXT_AUTH_LOGIN = 128,
	SMTPC_EXT_ENHANCEDSTATUSCODES = 256,
};

/* The extensions in the keyword lines of a 250 reply to EHLO or LHLO
 * (the first line, the greeting, is not a keyword: pass lines + 1 when
 * the strv holds it). *size_r: the SIZE limit, 0 when none. */
unsigned smtpc_ext_parse(char *const *lines, long long *size_r);

/* --- Nexthops -------------------------------------------------------------- */

/* "host", "host:port", "[addr]", "[addr]:port" (and "[ipv6:addr]"):
 * 0 and *host_r (xmalloc'd, lower case), *port_r (defport when none),
 * *bracket_r (brackets: no MX lookup); -1 malformed. */
int smtpc_hostport(const char *s, int defport, char **host_r, int *port_r,
    int *bracket_r);

/* --- LMTP nexthops (Postfix lmtp(8)) -------------------------------------- */

enum smtpc_dest_kind { SMTPC_DEST_INET, SMTPC_DEST_UNIX };

struct smtpc_dest {
	enum smtpc_dest_kind kind;
	char *host;               /* INET: host name or address, lower case */
	int port;                 /* INET */
	char *path;               /* UNIX: socket path */
};

/* "unix:/path", "inet:host", "inet:host:port", "inet:[addr]:port",
 * "host", "host:port", "[addr]", "[addr]:port"; defport when no port.
 * 0, or -1 for a malformed nexthop. No MX lookup ever applies to LMTP.
 * Free with smtpc_dest_free(). */
int smtpc_lmtp_dest(const char *nexthop, int defport, struct smtpc_dest *d);
void smtpc_dest_free(struct smtpc_dest *d);

/* --- LMTP replies after DATA (RFC 2033 4.2) -------------------------------
 * After the end of DATA an LMTP server sends one reply per recipient that
 * was accepted at RCPT, in RCPT order. The collector maps the k-th reply
 * to the k-th accepted recipient and knows when all have been read. */
struct smtpc_lmtp_dot {
	const unsigned char *accepted;  /* borrowed: accepted[i] for each RCPT */
	size_t nrcpt;
	size_t next;                    /* index of the next RCPT to scan */
};

void smtpc_lmtp_dot_init(struct smtpc_lmtp_dot *d, const unsigned char *accepted,
    size_t nrcpt);
/* The RCPT index the next reply belongs to, or -1 when every accepted
 * recipient has had its reply. Advances. */
long smtpc_lmtp_dot_next(struct smtpc_lmtp_dot *d);

#endif
