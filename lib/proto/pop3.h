/*
 * pop3 - pure POP3 server-side parsing and message encoding (RFC 1939,
 * RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595 STLS, RFC 6856 UTF8). No I/O.
 *
 * Command lines are split by util/line.h (conn_read_line): LF ends a
 * line, CRs before it dropped, over-long lines refused once, whatever the
 * read boundaries. The limits are POP3_LINE_MAX and, during AUTH,
 * POP3_AUTH_LINE_MAX.
 *
 * Commands (pop3_cmd_parse): keyword (case-insensitive, 3-4 letters,
 * RFC 2449 allows up to 40 for extensions) and arguments separated by
 * single spaces; each argument at most POP3_ARG_MAX octets (RFC 2449 says
 * 40; AUTH's initial response and PASS are exempt). PASS keeps everything
 * after "PASS " as one argument, spaces included (RFC 1939 section 7).
 * Control characters and NUL are refused.
 *
 * Messages (pop3_enc): message bytes as stored (LF or CRLF line ends) go
 * out with CRLF line ends, and for RETR/TOP dot-stuffed. The size LIST and
 * STAT report is the same encoding without stuffing (pop3_wire_size), so
 * it is exactly what RETR sends before dot-stuffing. A last line without
 * a line end gets a CRLF (counted in the size too).
 */
#ifndef POP3_PROTO_H
#define POP3_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

enum pop3_result {
	POP3_DONE,
	POP3_NEED_MORE,
	POP3_ERROR,
};

#define POP3_ARG_MAX 40
/* RFC 2449: 255 octets for a command line including CRLF. AUTH lines
 * carry base64 and use a larger limit (the caller's). */
#define POP3_LINE_MAX 253
#define POP3_AUTH_LINE_MAX 2060

enum pop3_verb {
	POP3_UNKNOWN = 0,
	POP3_USER, POP3_PASS, POP3_APOP, POP3_AUTH, POP3_STLS, POP3_CAPA,
	POP3_UTF8, POP3_STAT, POP3_LIST, POP3_RETR, POP3_DELE, POP3_NOOP,
	POP3_RSET, POP3_QUIT, POP3_TOP, POP3_UIDL,
	POP3_VERB_COUNT,
};

/* States a command is valid in (RFC 1939 section 3). */
enum {
	POP3_ST_AUTH = 1,        /* AUTHORIZATION */
	POP3_ST_TRANS = 2,       /* TRANSACTION */
};

struct pop3_verb_info {
	const char *name;        /* upper case */
	enum pop3_verb verb;
	unsigned states;         /* POP3_ST_* where it is allowed */
	int min_args, max_args;  /* -1 max: the rest of the line is one argument */
};

extern const struct pop3_verb_info pop3_verbs[POP3_VERB_COUNT];

struct pop3_arg {
	const char *p;           /* borrowed from the line */
	size_t len;
};

struct pop3_cmd {
	const struct pop3_verb_info *verb;
	int argc;
	struct pop3_arg argv[2];
};

/* Split and check a line (no terminator). DONE with cmd filled (an
 * unknown keyword is DONE with verb->verb == POP3_UNKNOWN); ERROR with
 * *err_r a static text for "-ERR <text>" (bad characters, too many or too
 * few arguments, an argument too long). */
enum pop3_result pop3_cmd_parse(const char *line, size_t len,
    struct pop3_cmd *cmd_r, const char **err_r);

/* pop3_cmd_parse, then the checks both halves of the server make: the
 * keyword is known and allowed in state (POP3_ST_AUTH or POP3_ST_TRANS).
 * ERROR with *err_r the text for "-ERR <text>.". */
enum pop3_result pop3_cmd_accept(const char *line, size_t len, unsigned state,
    struct pop3_cmd *cmd_r, const char **err_r);

/* A message number or line count: decimal digits only, no sign, at most
 * 9 digits (so it fits with room to spare). 0 and *n_r, or -1. Message
 * numbers must also be >= 1 (the caller checks the range). */
int pop3_number(const struct pop3_arg *a, unsigned long *n_r);

/* --- CAPA (RFC 2449) -------------------------------------------------------- */

enum {
	POP3_CAPA_USER = 1,      /* USER/PASS allowed now */
	POP3_CAPA_SASL = 2,      /* AUTH allowed now */
	POP3_CAPA_STLS = 4,      /* STLS offered */
};

/* Append the whole CAPA response ("+OK ...", capability lines, "."),
 * CRLF-terminated. flags: POP3_CAPA_*, only in the AUTHORIZATION state. */
void pop3_capa(struct buf *out, unsigned flags, const char *sasl_mechs);

/* --- Message encoding ------------------------------------------------------ */

struct pop3_enc {
	int stuff;               /* dot-stuff (RETR/TOP); 0 for counting */
	long body_lines;         /* TOP: body lines to send; -1 = all */
	int bol;                 /* at the beginning of a line */
	int in_body;             /* past the empty line after the header */
	int hdr_empty;           /* the current header line is still empty */
	int cr;                  /* a CR was held back */
	int done;                /* TOP: enough lines, ignore the rest */
};

void pop3_enc_init(struct pop3_enc *e, int stuff, long body_lines);
/* Append the encoding of in[0..n) to out (out may be NULL to count
 * only); returns the number of octets produced (before stuffing dots are
 * counted as well when stuff is on). -1 if out's max is hit. */
long long pop3_enc_feed(struct pop3_enc *e, const char *in, size_t n, struct buf *out);
/* End of message: a final CRLF if the last line had none. Returns bytes
 * produced (0 or 2), or -1. Does not add the ".\r\n" terminator. */
long long pop3_enc_finish(struct pop3_enc *e, struct buf *out);
/* The octet count of the whole message as RETR sends it, unstuffed. */
long long pop3_wire_size(const char *msg, size_t n);

/* --- UIDL ------------------------------------------------------------------ */

/* Append the UIDL of a Maildir message by fmt (pop3d_uidl_format): %u the
 * UID, %v the UIDVALIDITY, %f the file's base name, %% a '%'. Before u or
 * v a width ("%08u": zero-padded to 8 digits) and X (lowercase hex) may
 * stand, as in Dovecot's pop3_uidl_format, whose default "%08Xu%08Xv"
 * gives the UIDLs Dovecot gave. -1 when fmt has anything else, lacks %u
 * and %f (UIDLs would not be unique), or has a byte a UIDL may not hold. */
int pop3_uidl_format(struct buf *out, const char *fmt, uint32_t uid,
    uint32_t uidvalidity, const char *base);

#endif
