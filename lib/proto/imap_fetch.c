/*
 * imap_fetch - FETCH attribute parsing and the per-message response writer
 * (contract in imap_fetch.h).
 *
 * Invariants: a request that imap_fetch_parse accepted only holds
 * sections that mime_section_resolve accepts, so writing never meets a
 * syntax error; every byte written from a message comes from a range that
 * mime_section_resolve computed from the tree (checked to describe exactly
 * v->len bytes) or from v->data[0..v->len). Trusts: nothing in the command;
 * the view's data and tree are the session's.
 *
 * Item names in the response follow RFC 9051 7.5.2: BODY.PEEK[x] and
 * BINARY.PEEK[x] answer as BODY[x] / BINARY[x], section keywords in upper
 * case and a HEADER.FIELDS list echoed as the client wrote it, a partial
 * <o.n> answers as <o>. An empty string is sent as "", any other body
 * string as a literal ({n}, or ~{n} when BINARY bytes hold a NUL).
 *
 * BUGS: BINARY[] (no part number), and BINARY of a multipart or message
 * part, is sent as BODY[] gives it, subparts not decoded (Dovecot decodes
 * each leaf and rewrites its Content-Transfer-Encoding field). BINARY and BINARY.SIZE decode the whole
 * part each time, even for a <partial>. IMAP_FW_UTF8 is not used yet:
 * 8-bit header text in ENVELOPE goes as a literal, valid for every client.
 */
#include "proto/imap_fetch.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "proto/mime.h"
#include "store/index.h"        /* MBX_SEEN ... (the view's flag bits) */
#include "util/alloc.h"

/* Items in one request after macros and duplicates: Thunderbird asks for
 * about a dozen; a bound keeps one command from asking for the same large
 * body in hundreds of slightly different partials. */
#define FETCH_ITEMS_MAX 64

static const char *const kind_name[] = {
	[IMAP_FI_UID] = "UID",
	[IMAP_FI_FLAGS] = "FLAGS",
	[IMAP_FI_INTERNALDATE] = "INTERNALDATE",
	[IMAP_FI_RFC822_SIZE] = "RFC822.SIZE",
	[IMAP_FI_ENVELOPE] = "ENVELOPE",
	[IMAP_FI_BODY] = "BODY",
	[IMAP_FI_BODYSTRUCTURE] = "BODYSTRUCTURE",
	[IMAP_FI_RFC822] = "RFC822",
	[IMAP_FI_RFC822_HEADER] = "RFC822.HEADER",
	[IMAP_FI_RFC822_TEXT] = "RFC822.TEXT",
	[IMAP_FI_SECTION] = "BODY",
	[IMAP_FI_BINARY] = "BINARY",
	[IMAP_FI_BINARY_SIZE] = "BINARY.SIZE",
	[IMAP_FI_MODSEQ] = "MODSEQ",
};

/* What each kind needs loaded. */
static unsigned
kind_need(enum imap_fetch_kind k, const char *section)
{
	switch (k) {
	case IMAP_FI_UID:
	case IMAP_FI_FLAGS:
	case IMAP_FI_INTERNALDATE:
	case IMAP_FI_RFC822_SIZE:
	case IMAP_FI_MODSEQ:
		return 0;
	case IMAP_FI_RFC822:
		return IMAP_VIEW_DATA;
	case IMAP_FI_SECTION:
	case IMAP_FI_BINARY:
	case IMAP_FI_BINARY_SIZE:
		/* BODY[] (Thunderbird's chunked download) needs no parse. */
		if (*section == '\0')
			return IMAP_VIEW_DATA;
		break;
	default:
		break;
	}
	return IMAP_VIEW_DATA | IMAP_VIEW_TREE;
}

static int
name_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

static int
same_item(const struct imap_fetch_item *a, const struct imap_fetch_item *b)
{
	if (a->kind != b->kind || a->has_partial != b->has_partial)
		return 0;
	if (a->has_partial && (a->partial_off != b->partial_off
	    || a->partial_len != b->partial_len))
		return 0;
	if ((a->section == NULL) != (b->section == NULL))
		return 0;
	return a->section == NULL || strcmp(a->section, b->section) == 0;
}

/* Add it (section already owned by it), merging a duplicate: the two
 * would answer under the same name. */
static int
add_item(struct imap_fetch_req *req, struct imap_fetch_item *it,
    const char **err_r)
{
	for (size_t i = 0; i < req->n; i++) {
		if (same_item(&req->items[i], it)) {
			req->items[i].peek &= it->peek;
			free(it->section);
			return 0;
		}
	}
	if (req->n >= FETCH_ITEMS_MAX) {
		free(it->section);
		*err_r = "Too many fetch attributes";
		return -1;
	}
	req->items = xreallocarray(req->items, req->n + 1, sizeof(*req->items));
	req->items[req->n++] = *it;
	return 0;
}

static int
add_simple(struct imap_fetch_req *req, enum imap_fetch_kind k,
    const char **err_r)
{
	struct imap_fetch_item it = { .kind = k };

	/* RFC822.HEADER is the one body item that never sets \Seen. */
	it.peek = k == IMAP_FI_RFC822_HEADER;
	return add_item(req, &it, err_r);
}

/* Check a section against a one-part tree: that finds every syntax
 * error mime_section_resolve would find in a real message (a part
 * number that is missing there is not an error, only an empty answer). */
static int
section_valid(const char *s, size_t n, int binary, const char **err_r)
{
	struct mime_part part = {
		.parent = MIME_NONE, .first_child = MIME_NONE, .next = MIME_NONE,
	};
	struct mime_tree t = { .parts = &part, .nparts = 1 };
	struct mime_section sec;

	if (binary) {
		/* section-binary = "[" [section-part] "]" (RFC 3516). */
		for (size_t i = 0; i < n; i++) {
			if ((s[i] < '0' || s[i] > '9') && s[i] != '.') {
				*err_r = "Invalid BINARY section";
				return -1;
			}
		}
	}
	if (memchr(s, '\0', n) != NULL) {
		*err_r = "Invalid section";
		return -1;
	}
	if (mime_section_resolve(&t, s, n, &sec, err_r) < 0)
		return -1;
	mime_section_free(&sec);
	return 0;
}

/* The section as it goes back to the client: keywords upper-cased, the
 * field list (from its "(") as given. */
static char *
section_copy(const char *s, size_t n)
{
	char *c = xstrndup(s, n);

	for (size_t i = 0; i < n && c[i] != '('; i++)
		if (c[i] >= 'a' && c[i] <= 'z')
			c[i] = (char)(c[i] - 'a' + 'A');
	return c;
}

static int
parse_att(struct imap_fetch_req *req, const char *s, size_t n,
    const char **err_r)
{
	static const enum imap_fetch_kind plain[] = {
		IMAP_FI_UID, IMAP_FI_FLAGS, IMAP_FI_INTERNALDATE,
		IMAP_FI_RFC822_SIZE, IMAP_FI_ENVELOPE, IMAP_FI_BODY,
		IMAP_FI_BODYSTRUCTURE, IMAP_FI_RFC822, IMAP_FI_RFC822_HEADER,
		IMAP_FI_RFC822_TEXT, IMAP_FI_MODSEQ,
	};
	struct imap_fetch_att fa;
	struct imap_fetch_item it = { .kind = IMAP_FI_SECTION };

	if (imap_fetch_att_split(s, n, &fa, err_r) < 0)
		return -1;
	if (!fa.has_section) {
		if (fa.has_partial) {
			*err_r = "Partial needs a section";
			return -1;
		}
		for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
			if (name_is(fa.name, fa.name_len, kind_name[plain[i]]))
				return add_simple(req, plain[i], err_r);
		*err_r = "Unknown fetch attribute";
		return -1;
	}
	if (name_is(fa.name, fa.name_len, "BODY"))
		;
	else if (name_is(fa.name, fa.name_len, "BODY.PEEK"))
		it.peek = 1;
	else if (name_is(fa.name, fa.name_len, "BINARY"))
		it.kind = IMAP_FI_BINARY;
	else if (name_is(fa.name, fa.name_len, "BINARY.PEEK")) {
		it.kind = IMAP_FI_BINARY;
		it.peek = 1;
	} else if (name_is(fa.name, fa.name_len, "BINARY.SIZE")) {
		it.kind = IMAP_FI_BINARY_SIZE;
		it.peek = 1;
		if (fa.has_partial) {
			*err_r = "BINARY.SIZE takes no partial";
			return -1;
		}
	} else {
		*err_r = "Unknown fetch attribute";
		return -1;
	}
	if (section_valid(fa.section, fa.section_len, it.kind != IMAP_FI_SECTION,
	    err_r) < 0)
		return -1;
	it.section = section_copy(fa.section, fa.section_len);
	it.has_partial = fa.has_partial;
	it.partial_off = fa.partial_off;
	it.partial_len = fa.partial_len;
	return add_item(req, &it, err_r);
}

static int
parse_macro(struct imap_fetch_req *req, const char *s, size_t n,
    const char **err_r)
{
	static const enum imap_fetch_kind all[] = {
		IMAP_FI_FLAGS, IMAP_FI_INTERNALDATE, IMAP_FI_RFC822_SIZE,
		IMAP_FI_ENVELOPE, IMAP_FI_BODY,
	};
	size_t count;

	if (name_is(s, n, "FAST"))
		count = 3;
	else if (name_is(s, n, "ALL"))
		count = 4;
	else if (name_is(s, n, "FULL"))
		count = 5;
	else
		return 1;
	for (size_t i = 0; i < count; i++)
		if (add_simple(req, all[i], err_r) < 0)
			return -1;
	return 0;
}

/* mod-sequence-valzer: "0" or 1..2^63-1 (RFC 7162). */
static int
parse_modseq(const struct imap_arg *a, uint64_t *v_r)
{
	uint64_t v = 0;

	if (a == NULL || a->kind != IMAP_ARG_ATOM || a->len == 0 || a->len > 19
	    || (a->str[0] == '0' && a->len > 1))
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		if (a->str[i] < '0' || a->str[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(a->str[i] - '0');
	}
	if (v > INT64_MAX)
		return -1;
	*v_r = v;
	return 0;
}

static int
parse_modifiers(const struct imap_command *c, const struct imap_arg *list,
    int uid, struct imap_fetch_req *req, const char **err_r)
{
	size_t li = (size_t)(list - c->args);

	if (list->kind != IMAP_ARG_LIST || list->nchildren == 0)
		goto bad;
	for (size_t k = 0; k < list->nchildren; k++) {
		const struct imap_arg *a = imap_arg_child(c, li, k);
		if (a->kind != IMAP_ARG_ATOM)
			goto bad;
		if (name_is(a->str, a->len, "CHANGEDSINCE")
		    && !req->changedsince_given) {
			if (parse_modseq(imap_arg_child(c, li, ++k),
			    &req->changedsince) < 0) {
				*err_r = "Invalid CHANGEDSINCE value";
				return -1;
			}
			req->changedsince_given = 1;
		} else if (name_is(a->str, a->len, "VANISHED") && !req->vanished)
			req->vanished = 1;
		else
			goto bad;
	}
	/* RFC 7162 3.2.6: VANISHED only in UID FETCH with CHANGEDSINCE. */
	if (req->vanished && (!uid || !req->changedsince_given)) {
		*err_r = "VANISHED needs UID FETCH and CHANGEDSINCE";
		return -1;
	}
	req->has_modseq = 1;
	return 0;
bad:
	*err_r = "Invalid FETCH modifier";
	return -1;
}

int
imap_fetch_parse(const struct imap_command *c, size_t k, int uid,
    struct imap_fetch_req *req, const char **err_r)
{
	const struct imap_arg *a = imap_arg_child(c, 0, k);
	const struct imap_arg *mod = imap_arg_child(c, 0, k + 1);
	int r = 0;

	memset(req, 0, sizeof(*req));
	*err_r = NULL;
	if (uid)
		r = add_simple(req, IMAP_FI_UID, err_r);
	if (a == NULL) {
		*err_r = "Missing fetch attributes";
		r = -1;
	} else if (a->kind == IMAP_ARG_ATOM) {
		int m = parse_macro(req, a->str, a->len, err_r);
		r = m == 1 ? parse_att(req, a->str, a->len, err_r) : m;
	} else if (a->kind == IMAP_ARG_LIST && a->nchildren > 0) {
		size_t li = (size_t)(a - c->args);
		for (size_t i = 0; r == 0 && i < a->nchildren; i++) {
			const struct imap_arg *e = imap_arg_child(c, li, i);
			if (e->kind != IMAP_ARG_ATOM) {
				*err_r = "Invalid fetch attribute";
				r = -1;
			} else
				r = parse_att(req, e->str, e->len, err_r);
		}
	} else {
		*err_r = "Invalid fetch attributes";
		r = -1;
	}
	if (r == 0 && mod != NULL)
		r = parse_modifiers(c, mod, uid, req, err_r);
	if (r == 0 && imap_arg_child(c, 0, k + 2) != NULL) {
		*err_r = "Junk after fetch attributes";
		r = -1;
	}
	if (r < 0) {
		imap_fetch_req_free(req);
		return -1;
	}
	for (size_t i = 0; i < req->n; i++) {
		const struct imap_fetch_item *it = &req->items[i];
		req->need |= kind_need(it->kind, it->section);
		if (it->kind == IMAP_FI_MODSEQ)
			req->has_modseq = 1;
		if (!it->peek && (it->kind == IMAP_FI_RFC822
		    || it->kind == IMAP_FI_RFC822_TEXT
		    || it->kind == IMAP_FI_SECTION || it->kind == IMAP_FI_BINARY))
			req->sets_seen = 1;
	}
	return 0;
}

void
imap_fetch_req_free(struct imap_fetch_req *req)
{
	for (size_t i = 0; i < req->n; i++)
		xfree(&req->items[i].section);
	xfree(&req->items);
	memset(req, 0, sizeof(*req));
}

/* --- Writing --------------------------------------------------------------- */

/* Clip [off, off + len) of a string of total octets to what exists. */
static void
clip(const struct imap_fetch_item *it, size_t total, size_t *off_r,
    size_t *len_r)
{
	size_t off = 0, len = total;

	if (it->has_partial) {
		off = it->partial_off < total ? it->partial_off : total;
		len = total - off < it->partial_len ? total - off : it->partial_len;
	}
	*off_r = off;
	*len_r = len;
}

static void
put_literal_head(struct buf *out, size_t len, int literal8)
{
	if (len == 0)
		buf_puts(out, "\"\"");
	else
		buf_printf(out, "%s{%zu}\r\n", literal8 ? "~" : "", len);
}

/* A literal may not hold NUL (RFC 3501 CHAR8, RFC 9051 9): in one that
 * is not literal8, each NUL of out[from..] is sent as 0x80, as Dovecot
 * does, and the size stays what it was announced as. */
static void
unnul(struct buf *out, size_t from)
{
	char *q = out->data + from, *end = out->data + out->len;

	while (q < end && (q = memchr(q, '\0', (size_t)(end - q))) != NULL)
		*q++ = (char)0x80;
}

/* p[0..n) as stored, sent in wire form with the item's partial. */
static void
put_wire(struct buf *out, const struct imap_fetch_item *it, const char *p,
    size_t n)
{
	size_t off, len, from;

	clip(it, mime_wire_size(p, n), &off, &len);
	put_literal_head(out, len, 0);
	from = out->len;
	if (len > 0)
		mime_to_crlf_range(p, n, off, len, out);
	unnul(out, from);
}

/* p[0..n) already in wire form (or decoded), with the item's partial. */
static void
put_bytes(struct buf *out, const struct imap_fetch_item *it, const char *p,
    size_t n, int binary)
{
	size_t off, len, from;
	int literal8;

	clip(it, n, &off, &len);
	literal8 = binary && memchr(p + off, '\0', len) != NULL;
	put_literal_head(out, len, literal8);
	from = out->len;
	buf_append(out, p + off, len);
	if (!literal8)
		unnul(out, from);
}

/* BODY[spec] of v (spec validated by imap_fetch_parse). */
static void
put_section(struct buf *out, const struct imap_fetch_item *it,
    const struct imap_view *v, const char *spec)
{
	struct mime_section sec;
	const char *err;

	if (*spec == '\0') {
		put_wire(out, it, v->data, v->len);
		return;
	}
	if (mime_section_resolve(v->tree, spec, strlen(spec), &sec, &err) != 0) {
		buf_puts(out, "\"\"");      /* no such part: empty, as Dovecot */
		mime_section_free(&sec);
		return;
	}
	if (sec.kind == MIME_SECT_FIELDS || sec.kind == MIME_SECT_FIELDS_NOT) {
		struct buf tmp = BUF_INIT(0);
		mime_section_fetch(v->data, &sec, &tmp);
		put_bytes(out, it, tmp.data, tmp.len, 0);
		buf_free(&tmp);
	} else
		put_wire(out, it, v->data + sec.off, sec.len);
	mime_section_free(&sec);
}

/* BINARY[spec] or BINARY.SIZE[spec] of v: 0, or -1 for a part whose
 * Content-Transfer-Encoding is unknown (nothing written). */
static int
put_binary(struct buf *out, const struct imap_fetch_item *it,
    const struct imap_view *v)
{
	struct mime_section sec = { .kind = MIME_SECT_ALL };
	struct buf dec = BUF_INIT(0);
	const char *err;
	int r = 0;

	if (*it->section == '\0')
		mime_to_crlf(v->data, v->len, &dec);
	else if (mime_section_resolve(v->tree, it->section, strlen(it->section),
	    &sec, &err) == 0)
		r = mime_part_binary(v->tree, v->data, sec.part, &dec);
	mime_section_free(&sec);
	if (dec.data == NULL)
		buf_puts(&dec, "");
	if (r == 0 && it->kind == IMAP_FI_BINARY)
		put_bytes(out, it, dec.data, dec.len, 1);
	else if (r == 0)
		buf_printf(out, "%zu", dec.len);
	buf_free(&dec);
	return r;
}

static void
put_modseq(struct buf *out, const struct imap_view *v)
{
	buf_printf(out, "MODSEQ (%" PRIu64 ")", v->modseq);
}

static void
put_flags(struct buf *out, const struct imap_view *v)
{
	buf_puts(out, "FLAGS ");
	imap_write_flags(out, v->flags, v->keywords, v->recent);
}

/* One item; -2 for BINARY of an unknown Content-Transfer-Encoding. */
static int
put_item(struct buf *out, const struct imap_fetch_item *it,
    const struct imap_view *v)
{
	const char *name = kind_name[it->kind];

	switch (it->kind) {
	case IMAP_FI_UID:
		buf_printf(out, "UID %" PRIu32, v->uid);
		break;
	case IMAP_FI_FLAGS:
		put_flags(out, v);
		break;
	case IMAP_FI_INTERNALDATE:
		buf_puts(out, "INTERNALDATE ");
		imap_write_datetime(out, v->internaldate);
		break;
	case IMAP_FI_RFC822_SIZE:
		buf_printf(out, "RFC822.SIZE %" PRIu64, v->size);
		break;
	case IMAP_FI_ENVELOPE:
		buf_puts(out, "ENVELOPE ");
		mime_envelope(v->data + v->tree->parts[0].hdr_off,
		    v->tree->parts[0].hdr_len, NULL, out);
		break;
	case IMAP_FI_BODY:
	case IMAP_FI_BODYSTRUCTURE:
		buf_printf(out, "%s ", name);
		mime_bodystructure(v->tree, v->data, NULL,
		    it->kind == IMAP_FI_BODYSTRUCTURE, out);
		break;
	case IMAP_FI_RFC822:
	case IMAP_FI_RFC822_HEADER:
	case IMAP_FI_RFC822_TEXT:
		buf_printf(out, "%s ", name);
		put_section(out, it, v, it->kind == IMAP_FI_RFC822 ? ""
		    : it->kind == IMAP_FI_RFC822_TEXT ? "TEXT" : "HEADER");
		break;
	case IMAP_FI_SECTION:
	case IMAP_FI_BINARY:
	case IMAP_FI_BINARY_SIZE:
		buf_printf(out, "%s[%s]", name, it->section);
		if (it->has_partial)
			buf_printf(out, "<%" PRIu32 ">", it->partial_off);
		buf_putc(out, ' ');
		if (it->kind == IMAP_FI_SECTION)
			put_section(out, it, v, it->section);
		else if (put_binary(out, it, v) < 0)
			return -2;
		break;
	case IMAP_FI_MODSEQ:
		put_modseq(out, v);
		break;
	}
	return 0;
}

int
imap_fetch_write(const struct imap_fetch_req *req, struct imap_view *v,
    unsigned opts, struct buf *out, const char **err_r)
{
	int have_flags = 0, have_modseq = 0;

	*err_r = NULL;
	if (req->changedsince_given && v->modseq <= req->changedsince)
		return 0;
	if (req->need != 0) {
		if (imap_view_need(v, req->need) < 0 || v->data == NULL)
			return -1;
		/* A tree for other bytes would send ranges outside them. */
		if ((req->need & IMAP_VIEW_TREE) && (v->tree == NULL
		    || v->tree->nparts == 0 || v->tree->msg_len != v->len))
			return -1;
	}
	size_t start = out->len;
	buf_printf(out, "* %" PRIu32 " FETCH (", v->seq);
	for (size_t i = 0; i < req->n; i++) {
		const struct imap_fetch_item *it = &req->items[i];
		if (i > 0)
			buf_putc(out, ' ');
		if (put_item(out, it, v) < 0) {
			buf_truncate(out, start);
			*err_r = "[UNKNOWN-CTE] Cannot decode this part's "
			    "Content-Transfer-Encoding";
			return -2;
		}
		have_flags |= it->kind == IMAP_FI_FLAGS;
		have_modseq |= it->kind == IMAP_FI_MODSEQ;
	}
	if ((opts & IMAP_FW_FLAGS) && !have_flags) {
		buf_putc(out, ' ');
		put_flags(out, v);
	}
	if (((opts & IMAP_FW_MODSEQ) || req->has_modseq) && !have_modseq) {
		buf_putc(out, ' ');
		put_modseq(out, v);
	}
	buf_puts(out, ")\r\n");
	return 0;
}

/* --- Flags and dates ------------------------------------------------------- */

void
imap_write_flags(struct buf *out, unsigned flags, char *const *keywords,
    int recent)
{
	static const struct {
		unsigned bit;
		const char *name;
	} sys[] = {
		{ MBX_ANSWERED, "\\Answered" }, { MBX_FLAGGED, "\\Flagged" },
		{ MBX_DELETED, "\\Deleted" }, { MBX_SEEN, "\\Seen" },
		{ MBX_DRAFT, "\\Draft" },
	};
	const char *sep = "";

	buf_putc(out, '(');
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		if (flags & sys[i].bit) {
			buf_printf(out, "%s%s", sep, sys[i].name);
			sep = " ";
		}
	}
	if (recent) {
		buf_printf(out, "%s\\Recent", sep);
		sep = " ";
	}
	for (size_t i = 0; keywords != NULL && keywords[i] != NULL; i++) {
		buf_puts(out, sep);
		/* The index only keeps atoms; anything else is quoted, never
		 * raw, so a damaged index cannot break the response. */
		imap_quote(out, keywords[i], strlen(keywords[i]), IMAP_Q_ATOM);
		sep = " ";
	}
	buf_putc(out, ')');
}

static const char months[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* RFC 3501 dates have four-digit years. */
#define DATE_MIN 0                   /* 01-Jan-1970 00:00:00 +0000 */
#define DATE_MAX INT64_C(253402300799)  /* 31-Dec-9999 23:59:59 +0000 */

void
imap_write_datetime(struct buf *out, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)(t < DATE_MIN ? DATE_MIN : t > DATE_MAX ? DATE_MAX : t);

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
	    months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

/* n decimal digits at s: the value, or -1. */
static int
digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int
imap_parse_datetime(const char *s, size_t n, int64_t *t_r)
{
	static const int mdays[12] = {
		31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
	};
	char fixed[26];

	/* "dd-Mon-yyyy hh:mm:ss +zzzz", the day maybe " d" (date-day-fixed)
	 * or, as some clients write it and Dovecot takes it, "d": an APPEND
	 * refused for that would lose the client's copy of a sent message. */
	if (n == 25 && s[1] == '-') {
		fixed[0] = ' ';
		memcpy(fixed + 1, s, 25);
		s = fixed;
		n = 26;
	}
	if (n != 26 || s[2] != '-' || s[6] != '-' || s[11] != ' '
	    || s[14] != ':' || s[17] != ':' || s[20] != ' '
	    || (s[21] != '+' && s[21] != '-'))
		return -1;
	int day = s[0] == ' ' ? digits(s + 1, 1) : digits(s, 2);
	int mon = (int)imap_month(s + 3) - 1;
	int year = digits(s + 7, 4), hh = digits(s + 12, 2);
	int mm = digits(s + 15, 2), ss = digits(s + 18, 2);
	int zh = digits(s + 22, 2), zm = digits(s + 24, 2);
	if (mon < 0 || year < 0 || day < 1 || day > mdays[mon] || hh < 0
	    || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 || zh < 0
	    || zh > 23 || zm < 0 || zm > 59)
		return -1;
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (mon == 1 && day == 29 && !leap)
		return -1;
	int64_t zone = (int64_t)(zh * 3600 + zm * 60) * (s[21] == '-' ? -1 : 1);
	*t_r = imap_days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 + hh * 3600
	    + mm * 60 + ss - zone;
	return 0;
}
