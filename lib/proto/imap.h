/*
 * imap - pure IMAP4rev1/rev2 (RFC 3501, RFC 9051) command parser,
 * sequence sets, FETCH attribute pieces, and the string writer used by
 * every IMAP response. No I/O.
 *
 * Command parser (imap_parse): fed byte chunks of any size; the parse is a
 * byte-level state machine, so the same bytes in any split give the same
 * results (checked by fuzz/fuzz_imap.c). A command is
 *   tag SP name [SP args] CRLF
 * with args atoms, quoted strings (backslash escapes only for '"' and
 * '\\'), literals {n} / {n+} / {n-} / ~{n} (literal8), NIL, and
 * parenthesised lists. An atom may hold a bracketed part that runs to its
 * matching ']' whatever it contains, so "BODY.PEEK[HEADER.FIELDS (A B)]<0.10>"
 * is ONE atom token (split it with imap_fetch_att_split). A bare LF ends a
 * line as CRLF does.
 *
 * Results: IMAP_DONE: a command is complete, imap_parser_command() gives
 * it (valid until the next imap_parse call). IMAP_LITERAL: the client
 * announced a synchronizing literal of imap_parser_literal_size() bytes;
 * the caller sends "+ ..." and calls imap_literal_accept(), or answers the
 * command NO/BAD and calls imap_literal_reject() (the client then sends no
 * literal, and the parser waits for a new command). IMAP_ERROR: the line
 * is bad; imap_parser_error() is the reason for "tag BAD reason" (the tag
 * is imap_parser_tag(), NULL if there was none yet: answer "* BAD"); the
 * parser then skips the rest of the line by itself (including the bytes
 * of a non-synchronizing literal announced at its end) and goes on with
 * the next command. If imap_parser_must_close() is set after an error the
 * client sent an over-limit non-synchronizing literal whose bytes are not
 * worth reading: reply and close (RFC 7888 section 4).
 * IMAP_NEED_MORE: everything was consumed, feed more.
 * *consumed_r says how much of the chunk was used: a DONE, LITERAL or
 * ERROR stops right after the byte that caused it.
 *
 * The same grammar without tags is ManageSieve's (RFC 5804): with
 * limits.untagged the first token is the command name.
 *
 * Limits (struct imap_limits, IMAP_LIMITS_DEFAULT): line bytes outside
 * literals (65536), one literal (APPENDLIMIT), all literals of a command,
 * list nesting (IMAP_DEPTH 32: SEARCH and FETCH parentheses), tokens per
 * command (4096). literal_plus: LITERAL+ was advertised; without it
 * (LITERAL-), non-synchronizing literals over 4096 bytes are refused.
 *
 * BUGS: an atom with an unbalanced '[' (legal ATOM-CHAR, e.g. a mailbox
 * "a[b" sent unquoted) is refused with "Missing ']'"; clients quote such
 * names, and imap_quote() never writes '[' in an atom. Literal bytes are held in memory, up to literal_total_max per
 * command; a server wanting to stream APPEND to disk must set a small
 * limit and handle APPEND itself. AUTHENTICATE responses and IDLE's DONE
 * are not commands: the server reads those lines without this parser.
 */
#ifndef POSTERN_IMAP_H
#define POSTERN_IMAP_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum {
	IMAP_Q_NIL = 1,          /* NULL → NIL (else NULL → "") */
	IMAP_Q_ATOM = 2,         /* an atom when possible */
	IMAP_Q_UTF8 = 4,         /* valid UTF-8 may be quoted (UTF8=ACCEPT) */
};

#define IMAP_QUOTED_MAX 1024

/* imap_quote: write s[0..n) as an atom, quoted string or literal: NIL for
 * NULL (with IMAP_Q_NIL; else ""), an atom only with IMAP_Q_ATOM when every
 * byte is ATOM-CHAR other than '[' (and it is not "NIL"), a quoted string if no byte is
 * NUL, CR, LF or 8-bit (8-bit allowed with IMAP_Q_UTF8 when valid UTF-8,
 * for UTF8=ACCEPT sessions) and n <= IMAP_QUOTED_MAX, else a synchronizing
 * literal "{n}\r\n" and the bytes. */
void imap_quote(struct buf *out, const char *s, size_t n, unsigned flags);

/* --- Command parser -------------------------------------------------------- */

enum imap_result {
	IMAP_DONE,
	IMAP_NEED_MORE,
	IMAP_LITERAL,
	IMAP_ERROR,
};

struct imap_limits {
	size_t line_max;           /* command bytes outside literals (65536) */
	uint64_t literal_max;      /* one literal: APPENDLIMIT (50 MiB) */
	uint64_t literal_total_max;/* all literals of one command (64 MiB) */
	unsigned depth_max;        /* parenthesis nesting (32) */
	unsigned args_max;         /* tokens in one command, lists included (4096) */
	int literal_plus;          /* 1: LITERAL+; 0: LITERAL- (non-sync <= 4096) */
	int untagged;              /* ManageSieve (RFC 5804): commands have no
	                            * tag, the name comes first; tag is "" */
};

#define IMAP_LIMITS_DEFAULT { 65536, 50u << 20, 64u << 20, 32, 4096, 1, 0 }
#define IMAP_LITERAL_MINUS_MAX 4096

enum imap_arg_kind {
	IMAP_ARG_ATOM,             /* includes bracketed FETCH/section atoms */
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,          /* {n}, {n+}, {n-}; literal8 flag for ~{n} */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_kind kind;
	const char *str;           /* NUL-terminated (may hold NULs: use len) */
	size_t len;
	uint32_t nchildren;        /* LIST: direct children; first at index + 1 */
	uint32_t next;             /* index of the next sibling, 0 if last */
	int literal8;
};

struct imap_command {
	const char *tag;
	const char *name;          /* upper-cased */
	/* args[0] is a LIST holding the arguments (nchildren may be 0). */
	const struct imap_arg *args;
	size_t nargs;
};

struct imap_parser;

struct imap_parser *imap_parser_new(const struct imap_limits *lim);
void imap_parser_free(struct imap_parser **pp);
enum imap_result imap_parse(struct imap_parser *p, const char *in, size_t n,
    size_t *consumed_r);
const struct imap_command *imap_parser_command(const struct imap_parser *p);
uint64_t imap_parser_literal_size(const struct imap_parser *p);
void imap_literal_accept(struct imap_parser *p);
void imap_literal_reject(struct imap_parser *p);
const char *imap_parser_error(const struct imap_parser *p);
const char *imap_parser_tag(const struct imap_parser *p);
int imap_parser_must_close(const struct imap_parser *p);
/* After IMAP_ERROR: 1 if the error is a literal over the size limit
 * ("[TOOBIG]"), whatever its text. */
int imap_parser_too_big(const struct imap_parser *p);

/* Child k (0-based) of list argument index li, or NULL. */
const struct imap_arg *imap_arg_child(const struct imap_command *c, size_t li,
    size_t k);
/* astring / string checks: 1 if a is an atom, quoted or literal. */
int imap_arg_is_string(const struct imap_arg *a);

/* --- Sequence sets --------------------------------------------------------- */

#define IMAP_SEQ_STAR UINT32_MAX   /* "*" before imap_seqset_resolve */
#define IMAP_SEQSET_MAX_RANGES 10000

struct imap_seq_range {
	uint32_t lo, hi;
};

struct imap_seqset {
	struct imap_seq_range *r;  /* owned */
	size_t n;
	int saved;                 /* "$" (RFC 5182 SEARCHRES) */
};

/* Parse s[0..n): "1,3:5,7:*", "*", "$". 0, or -1 with *err_r static. */
int imap_seqset_parse(const char *s, size_t n, struct imap_seqset *set,
    const char **err_r);
/* Replace "*" by max (the largest number in use: message count or UIDNEXT-1),
 * order each range, sort and merge ranges. For UID sets ranges beyond max
 * are kept (a client may name UIDs that do not exist); with clamp set
 * (message sequence numbers) a number above max makes it return -1. */
int imap_seqset_resolve(struct imap_seqset *set, uint32_t max, int clamp);
/* Iterate over a resolved set: *it = 0 first; 1 and *val, or 0 at end. */
int imap_seqset_next(const struct imap_seqset *set, uint64_t *it, uint32_t *val);
int imap_seqset_contains(const struct imap_seqset *set, uint32_t val);
void imap_seqset_free(struct imap_seqset *set);

/* --- FETCH attributes ------------------------------------------------------ */

struct imap_fetch_att {
	const char *name;          /* "BODY.PEEK", "BINARY", ... (not copied) */
	size_t name_len;
	int has_section;
	const char *section;       /* between the brackets */
	size_t section_len;
	int has_partial;
	uint32_t partial_off, partial_len;
};

/* Split an atom like "BODY.PEEK[1.2.TEXT]<0.100>" (borrowed). 0, or -1 and
 * *err_r for a bad partial or junk after it. */
int imap_fetch_att_split(const char *s, size_t n, struct imap_fetch_att *fa,
    const char **err_r);

/* --- Dates (SEARCH, APPEND, FETCH INTERNALDATE) ----------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t imap_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Month "Jan".."Dec" (case-insensitive) at s[0..3): 1..12, or 0. */
unsigned imap_month(const char *s);

#endif
