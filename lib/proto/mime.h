/*
 * mime - pure MIME structure parser and the IMAP views of it (ENVELOPE,
 * BODYSTRUCTURE, BODY, BODY[section]), for imapd. No I/O, no allocation
 * hooks beyond lib/util/alloc.h (allocation failure is fatal).
 *
 * Input: a whole message in memory (bytes + length), lines ended by LF or
 * CRLF, any bytes at all (NULs, 8-bit, broken syntax). The parser never
 * fails on content: broken mail is described as well as it can be.
 *
 * Output: a struct mime_tree, an array of parts in document order with
 * byte offsets into the caller's message (borrowed, never copied). The
 * tree holds structure only (where headers and bodies are, their sizes
 * and line counts); Content-* fields are re-read from the header bytes
 * when a serializer needs them, which is cheap, so mime_serialize() can
 * cache just the costly part (the boundary scan over the whole body).
 *
 * Part tree: parts[0] is the message itself. A multipart part has its
 * body parts as children; a message/rfc822 or message/global part has one
 * child, the embedded message (its own header and body). Sizes and line
 * counts are those of the CRLF wire form that IMAP reports: a bare LF
 * counts as two octets. A body's line count is the number of line ends in
 * it, as Dovecot counts: a part body ends before the CRLF that belongs to
 * the next boundary, so "text\r\n--b" gives a body "text" of 0 lines.
 *
 * Limits (struct mime_limits, MIME_LIMITS_DEFAULT): nesting depth (32),
 * part count (1000), header fields looked at per header (1000), unfolded
 * field length kept (64 KiB). Past the depth bound a multipart or message
 * part is a leaf reported as text/plain; past the part bound the remaining
 * body parts of every open multipart are left out (the last part kept
 * covers its own bytes only) and the tree is flagged MIME_TF_TRUNCATED.
 *
 * Broken mail: a missing final boundary ends the last part at the end of
 * its parent; a multipart without boundary parameter, or whose body holds
 * no delimiter at all, is reported as text/plain; a part without a blank
 * line after its header is all header with an empty body; a field line
 * without a colon is skipped.
 *
 * BUGS: boundaries are matched top-down, so a part inside an embedded
 * message whose boundary equals an outer one ends the outer part there (as
 * RFC 2046 says such content must not occur). Charset conversion of
 * RFC 2047/2231 text uses iconv(3) for charsets other than UTF-8, US-ASCII
 * and ISO-8859-1; an unknown charset leaves the encoded word as is.
 */
#ifndef POSTERN_MIME_H
#define POSTERN_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct mime_limits {
	unsigned max_depth;        /* nesting of multipart/message parts (32) */
	unsigned max_parts;        /* parts in one tree, the message included (1000) */
	unsigned max_header_fields;/* fields looked at in one header block (1000) */
	size_t max_field_len;      /* unfolded field value kept (65536) */
};

#define MIME_LIMITS_DEFAULT { 32, 1000, 1000, 65536 }

#define MIME_NONE UINT32_MAX

enum {
	MIME_PF_MULTIPART = 1,     /* children are its body parts */
	MIME_PF_MESSAGE = 2,       /* message/rfc822|global: child is the message */
	MIME_PF_ASTEXT = 4,        /* Content-Type ignored: reported as text/plain */
	MIME_PF_DIGEST = 8,        /* in multipart/digest: default type message/rfc822 */
	MIME_PF_NOBLANK = 16,      /* header not ended by a blank line */
};

enum {
	MIME_TF_TRUNCATED = 1,     /* part bound hit: some parts left out */
	MIME_TF_DEEP = 2,          /* depth bound hit somewhere */
};

struct mime_part {
	size_t hdr_off, hdr_len;   /* header, blank line included */
	size_t body_off, body_len;
	size_t hdr_size, hdr_lines;  /* CRLF wire form */
	size_t body_size, body_lines;
	uint32_t parent;           /* MIME_NONE for parts[0] */
	uint32_t first_child, next;/* MIME_NONE when none */
	uint32_t nchildren;
	uint16_t depth;            /* 0 for the message */
	uint16_t flags;            /* MIME_PF_* */
};

struct mime_tree {
	struct mime_part *parts;   /* owned; parts[0] is the message */
	size_t nparts;
	size_t msg_len;            /* length of the message it describes */
	unsigned flags;            /* MIME_TF_* */
};

/* Parse msg[0..len) (borrowed; it must outlive every use of the tree that
 * reads bytes). lim may be NULL for the defaults. Never fails. */
void mime_parse(const char *msg, size_t len, const struct mime_limits *lim,
    struct mime_tree *t);
void mime_tree_free(struct mime_tree *t);

/* --- Cache form ------------------------------------------------------------ */

/* Append a compact, versioned binary form of t to out. */
void mime_serialize(const struct mime_tree *t, struct buf *out);
/* Rebuild a tree from p[0..n) for a message of msg_len bytes. The bytes
 * are untrusted (another process wrote them): every offset, link and count
 * is checked, and -1 (t left empty) means "reparse". 0 on success. */
int mime_deserialize(const void *p, size_t n, size_t msg_len,
    const struct mime_limits *lim, struct mime_tree *t);

/* --- Header fields --------------------------------------------------------- */

struct mime_field {
	const char *name;          /* borrowed from the header block */
	size_t name_len;
	const char *value;         /* raw, folded, after the colon */
	size_t value_len;
	const char *line;          /* the whole field, folds and line end included */
	size_t line_len;
};

/* Iterate over the fields of hdr[0..n): start with *pos = 0; 1 and *f
 * filled, or 0 at the end (the blank line or n). Lines without a colon are
 * skipped. */
int mime_field_next(const char *hdr, size_t n, size_t *pos,
    struct mime_field *f);
/* First field called name (case-insensitive) among the first
 * lim->max_header_fields: 1 and its value unfolded (CR and LF removed,
 * leading and trailing blanks trimmed, at most max_field_len bytes) in out
 * (reset first), or 0. lim may be NULL. */
int mime_header_get(const char *hdr, size_t n, const char *name,
    const struct mime_limits *lim, struct buf *out);

/* Decode RFC 2047 encoded words in s[0..n) to UTF-8, appended to out.
 * Blanks between two adjacent encoded words are dropped; a malformed word
 * or one in an unknown charset is kept as it is; other text is copied. */
void mime_decode_words(const char *s, size_t n, struct buf *out);

/* Convert p[0..n) from charset cs[0..cslen) to UTF-8, appended to out
 * (UTF-8, US-ASCII and ISO-8859-1 without iconv, others with iconv(3);
 * only charset-name characters reach iconv_open). 0, or -1 when the
 * charset is unknown or the bytes do not convert (out unchanged). Shared
 * by RFC 2047 decoding and body SEARCH. */
int mime_charset_to_utf8(const char *cs, size_t cslen, const char *p,
    size_t n, struct buf *out);

/* --- Content-* fields ------------------------------------------------------ */

struct mime_param {
	char *name;                /* as written; "name*" if RFC 2231 extended */
	char *value;               /* extended: "charset'lang'%XX..." merged */
};

struct mime_ctype {
	char *type, *subtype;      /* as written; NULL when absent or broken */
	struct mime_param *params;
	size_t nparams;
};

/* Parse a Content-Type or Content-Disposition value (type only, subtype
 * NULL, for a disposition): RFC 2045 tokens, quoted strings, comments,
 * RFC 2231 continuations merged (name*0, name*1*, ...). At most 64
 * parameters are kept. Never fails; free with mime_ctype_free. */
void mime_ctype_parse(const char *s, size_t n, struct mime_ctype *ct,
    int is_disposition);
void mime_ctype_free(struct mime_ctype *ct);
/* Parameter value by name (case-insensitive), RFC 2231 decoded to UTF-8
 * into out (reset first): 1 found, 0 not. */
int mime_param_get(const struct mime_ctype *ct, const char *name,
    struct buf *out);

/* --- IMAP views ------------------------------------------------------------ */

/* Append the ENVELOPE of the message whose header is hdr[0..n). */
void mime_envelope(const char *hdr, size_t n, const struct mime_limits *lim,
    struct buf *out);
/* Append BODYSTRUCTURE (extensible = 1) or BODY (0) of the whole message
 * described by t, msg being its bytes. */
void mime_bodystructure(const struct mime_tree *t, const char *msg,
    const struct mime_limits *lim, int extensible, struct buf *out);

/* --- BODY[section] --------------------------------------------------------- */

enum mime_sect_kind {
	MIME_SECT_ALL,             /* "" or a part number: bytes as they are */
	MIME_SECT_HEADER,
	MIME_SECT_FIELDS,          /* HEADER.FIELDS (...) */
	MIME_SECT_FIELDS_NOT,      /* HEADER.FIELDS.NOT (...) */
	MIME_SECT_TEXT,
	MIME_SECT_MIME,
};

#define MIME_SECT_MAX_FIELDS 64

struct mime_section {
	enum mime_sect_kind kind;
	size_t off, len;           /* range in the message */
	uint32_t part;             /* index of the part the range belongs to */
	char *fields[MIME_SECT_MAX_FIELDS];  /* HEADER.FIELDS names, owned */
	size_t nfields;
};

/* Resolve a section spec (what is between "[" and "]", e.g. "1.2.HEADER",
 * "TEXT", "3.MIME", "HEADER.FIELDS (From Subject)"). 0: sec filled; 1: the
 * part does not exist (serve an empty string); -1: syntax error, *err_r a
 * static reason for a BAD reply. Free with mime_section_free. */
int mime_section_resolve(const struct mime_tree *t, const char *spec,
    size_t n, struct mime_section *sec, const char **err_r);
void mime_section_free(struct mime_section *sec);
/* Append the section's bytes in CRLF wire form (fields filtered for the
 * FIELDS kinds, blank line included) to out. */
void mime_section_fetch(const char *msg, const struct mime_section *sec,
    struct buf *out);

/* Append p[0..n) to out with every bare LF turned into CRLF. */
void mime_to_crlf(const char *p, size_t n, struct buf *out);
/* The same for octets [off, off + len) of that CRLF form only (clipped at
 * its end; nothing when off is past it), without building the rest: an
 * IMAP <partial> of a large message costs one scan, not a copy. */
void mime_to_crlf_range(const char *p, size_t n, size_t off, size_t len,
    struct buf *out);
/* Octets of p[0..n) in CRLF wire form (bare LF counted as two). */
size_t mime_wire_size(const char *p, size_t n);

/* --- Content-Transfer-Encoding --------------------------------------------- */

/* Decode p[0..n) according to the Content-Transfer-Encoding value enc
 * (NULL or empty = 7bit; 7bit, 8bit, binary: copied; quoted-printable and
 * base64 decoded leniently: stray characters skipped, broken escapes kept
 * literally). Appends to out; -1 for an unknown encoding (IMAP BINARY's
 * UNKNOWN-CTE), else 0. */
int mime_cte_decode(const char *enc, const char *p, size_t n,
    struct buf *out);

/* The same for the body of part i, its encoding read from the part's
 * own Content-Transfer-Encoding field. 0, or -1 (unknown encoding). */
int mime_part_decode(const struct mime_tree *t, const char *msg, uint32_t i,
    struct buf *out);
/* IMAP BINARY[part] (RFC 3516): as mime_part_decode, but a body without a
 * decoding step (7bit, 8bit, binary, none) comes out in CRLF wire form as
 * BODY[part] would; base64 and quoted-printable output is exact. */
int mime_part_binary(const struct mime_tree *t, const char *msg, uint32_t i,
    struct buf *out);

#endif
