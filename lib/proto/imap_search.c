/*
 * imap_search - SEARCH keys compiled into a tree and evaluated against
 * struct imap_view; ESEARCH/SEARCHRES/MODSEQ replies (contract in
 * imap_search.h). SORT and THREAD live in imap_sort.c.
 *
 * Invariants: parsing recurses once per parenthesis, OR or NOT and stops
 * at IMAP_SEARCH_DEPTH_MAX, so evaluation and freeing (which follow the
 * tree) are bounded too. A view is loaded only by a key that needs its
 * bytes, and keys that need nothing are evaluated first inside an AND,
 * so "UNSEEN BODY x" never opens a message that is already seen. Decoded
 * header and body text is cached for the view being matched, so several
 * text keys cost one decode.
 *
 * Text matching: both sides are case-mapped to lower case with
 * imap_casemap (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic) and
 * compared as bytes (substring). Header text is unfolded and RFC 2047-
 * decoded; FROM/TO/CC/BCC match the decoded field text (display names
 * and addresses), as Dovecot does, not an ENVELOPE re-rendering.
 * BODY looks at text/... leaf parts (and parts without Content-Type),
 * transfer-decoded and converted to UTF-8 from their charset, plus the
 * header of each embedded message/rfc822; attachments of other types
 * never match. TEXT = the whole header plus BODY's text plus the header
 * of every part of a multipart (RFC 3501: the body holds them), so an
 * attachment is found by its name, RFC 2231-decoded too.
 *
 * Dates: BEFORE/ON/SINCE use INTERNALDATE's day in UTC; SENT* use the
 * date written in the Date: field, its zone disregarded (RFC 3501
 * "disregarding time and timezone"), INTERNALDATE's day when the field is
 * missing or unreadable.
 *
 * BUGS: MODSEQ's entry name and type are accepted and ignored: the index
 * keeps one mod-sequence per message, which RFC 7162 3.1.5 allows. Body
 * text of text/html is matched with its markup.
 */
#include "proto/imap_search.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/imap_search_int.h"
#include "proto/mime.h"
#include "util/alloc.h"

/* Flag bits of struct imap_view.flags: the values of MBX_SEEN ...
 * (store/index.h, a layer above this one; test_imap_search checks that
 * they agree). */
#define F_SEEN     0x01u
#define F_ANSWERED 0x02u
#define F_FLAGGED  0x04u
#define F_DELETED  0x08u
#define F_DRAFT    0x10u

enum node_kind {
	N_ALL,
	N_AND,
	N_OR,
	N_NOT,
	N_FLAG,                    /* flag set (neg: unset) */
	N_KEYWORD,                 /* keyword set (neg: unset) */
	N_RECENT,
	N_NEW,
	N_OLD,
	N_LARGER,
	N_SMALLER,
	N_DATE,                    /* INTERNALDATE day: cmp <0 before, 0 on, >0 since */
	N_SENT,                    /* Date: day, same cmp */
	N_HEADER,                  /* name, needle */
	N_BODY,
	N_TEXT,
	N_SEQ,
	N_UID,
	N_MODSEQ,
};

struct node {
	enum node_kind kind;
	int neg;
	int cmp;
	unsigned flag;
	uint64_t num;
	int64_t day;
	char *name;                /* N_HEADER field name, N_KEYWORD keyword */
	struct buf needle;         /* case-mapped search string */
	struct imap_seqset set;    /* N_SEQ, N_UID (resolved) */
	struct node **kids;
	size_t nkids;
	unsigned needs;            /* IMAP_VIEW_* bits of this subtree */
};

struct imap_search {
	struct node *root;
	unsigned ret;
	int modseq;
	/* Text cache for the view last matched. */
	const struct imap_view *cv;
	uint32_t cv_uid;
	const char *cv_data;
	int have_hdr, have_body;
	/* part_text: the headers of the parts of multiparts (TEXT only). */
	struct buf hdr_text, body_text, part_text;
	struct buf tmp, tmp2;
};

/* --- Case mapping ---------------------------------------------------------- */

static uint32_t
to_lower(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c >= 0xc0 && c <= 0xde)
		return c == 0xd7 ? c : c + 32;
	if (c >= 0x100 && c <= 0x17f) {
		if (c == 0x130)
			return 'i';
		if (c == 0x178)
			return 0xff;
		if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17f)
			return c;
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
			return (c & 1) ? c + 1 : c;
		return (c & 1) ? c : c + 1;
	}
	if (c >= 0x391 && c <= 0x3ab && c != 0x3a2)
		return c + 32;
	if (c == 0x3c2)
		return 0x3c3;            /* final sigma */
	if (c >= 0x410 && c <= 0x42f)
		return c + 32;
	if (c >= 0x400 && c <= 0x40f)
		return c + 80;
	return c;
}

static uint32_t
to_upper(uint32_t c)
{
	if (c < 0x80)
		return c >= 'a' && c <= 'z' ? c - 32 : c;
	if (c >= 0xe0 && c <= 0xfe)
		return c == 0xf7 ? c : c - 32;
	if (c == 0xff)
		return 0x178;
	if (c >= 0x100 && c <= 0x17f) {
		if (c == 0x131)
			return 'I';
		if (c == 0x130 || c == 0x138 || c == 0x149 || c == 0x17f)
			return c;
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
			return (c & 1) ? c : c - 1;
		return (c & 1) ? c - 1 : c;
	}
	if (c >= 0x3b1 && c <= 0x3cb)
		return c == 0x3c2 ? 0x3a3 : c - 32;
	if (c >= 0x430 && c <= 0x44f)
		return c - 32;
	if (c >= 0x450 && c <= 0x45f)
		return c - 80;
	return c;
}

/* One UTF-8 sequence at s[i..n): its length and *cp, or 0 if invalid. */
static size_t
utf8_get(const unsigned char *s, size_t i, size_t n, uint32_t *cp)
{
	unsigned char b = s[i];
	size_t len;
	uint32_t c, min;

	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	if ((b & 0xe0) == 0xc0) {
		len = 2, c = b & 0x1f, min = 0x80;
	} else if ((b & 0xf0) == 0xe0) {
		len = 3, c = b & 0x0f, min = 0x800;
	} else if ((b & 0xf8) == 0xf0) {
		len = 4, c = b & 0x07, min = 0x10000;
	} else
		return 0;
	if (n - i < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i + k] & 0x3f);
	}
	if (c < min || c > 0x10ffff)
		return 0;
	*cp = c;
	return len;
}

static void
utf8_put(struct buf *out, uint32_t c)
{
	char b[4];
	size_t n;

	if (c < 0x80) {
		b[0] = (char)c, n = 1;
	} else if (c < 0x800) {
		b[0] = (char)(0xc0 | (c >> 6)), b[1] = (char)(0x80 | (c & 0x3f)), n = 2;
	} else if (c < 0x10000) {
		b[0] = (char)(0xe0 | (c >> 12));
		b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[2] = (char)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (c >> 18));
		b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[3] = (char)(0x80 | (c & 0x3f));
		n = 4;
	}
	buf_append(out, b, n);
}

void
imap_casemap(const char *s, size_t n, struct buf *out, int upper)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	buf_reserve(out, n);
	while (i < n) {
		if (u[i] < 0x80) {
			unsigned char c = u[i++];
			if (upper && c >= 'a' && c <= 'z')
				c -= 32;
			else if (!upper && c >= 'A' && c <= 'Z')
				c += 32;
			buf_putc(out, c);
			continue;
		}
		uint32_t cp;
		size_t len = utf8_get(u, i, n, &cp);
		if (len == 0) {
			buf_putc(out, u[i++]);
			continue;
		}
		utf8_put(out, upper ? to_upper(cp) : to_lower(cp));
		i += len;
	}
	if (out->data == NULL)
		buf_puts(out, "");
}

/* --- Dates ----------------------------------------------------------------- */

static int64_t
day_of(int64_t t)
{
	return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

/* SEARCH's date: "d-Mon-yyyy" or "dd-Mon-yyyy". */
static int
parse_search_date(const char *s, size_t n, int64_t *day_r)
{
	size_t i = 0;
	unsigned d = 0, y = 0;

	while (i < n && i < 2 && isdigit((unsigned char)s[i]))
		d = d * 10 + (unsigned)(s[i++] - '0');
	if (i == 0 || n != i + 9 || s[i] != '-' || s[i + 4] != '-')
		return -1;
	unsigned m = imap_month(s + i + 1);
	for (size_t k = i + 5; k < n; k++) {
		if (!isdigit((unsigned char)s[k]))
			return -1;
		y = y * 10 + (unsigned)(s[k] - '0');
	}
	if (m == 0 || d < 1 || d > 31)
		return -1;
	*day_r = imap_days_from_civil(y, m, d);
	return 0;
}

size_t
imap_skip_comment(const char *s, size_t i, size_t n)
{
	unsigned depth = 0;

	for (; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		else if (s[i] == '(')
			depth++;
		else if (s[i] == ')' && --depth == 0)
			return i + 1;
	}
	return n;
}

/* Skip blanks and (nested) comments. */
static size_t
skip_cfws(const char *s, size_t i, size_t n)
{
	while (i < n) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
			i++;
		else if (s[i] == '(')
			i = imap_skip_comment(s, i, n);
		else
			break;
	}
	return i;
}

static size_t
get_num(const char *s, size_t i, size_t n, unsigned maxdig, unsigned *v,
    size_t *ndig)
{
	*v = 0;
	*ndig = 0;
	while (i < n && *ndig < maxdig && isdigit((unsigned char)s[i])) {
		*v = *v * 10 + (unsigned)(s[i++] - '0');
		(*ndig)++;
	}
	return i;
}

int
imap_rfc5322_date(const char *s, size_t n, int64_t *day_r, int64_t *utc_r)
{
	size_t i = skip_cfws(s, 0, n), nd;
	unsigned d, y, hh = 0, mm = 0, ss = 0;

	if (i + 3 <= n && isalpha((unsigned char)s[i])) {   /* day-of-week */
		while (i < n && isalpha((unsigned char)s[i]))
			i++;
		i = skip_cfws(s, i, n);
		if (i < n && s[i] == ',')
			i++;
		i = skip_cfws(s, i, n);
	}
	i = get_num(s, i, n, 2, &d, &nd);
	if (nd == 0)
		return -1;
	i = skip_cfws(s, i, n);
	if (i < n && s[i] == '-')
		i++;                    /* "3-Dec-2026", seen in the wild */
	if (n - i < 3)
		return -1;
	unsigned m = imap_month(s + i);
	if (m == 0)
		return -1;
	i += 3;
	while (i < n && isalpha((unsigned char)s[i]))
		i++;                    /* "December" */
	i = skip_cfws(s, i, n);
	if (i < n && s[i] == '-')
		i++;
	i = get_num(s, i, n, 4, &y, &nd);
	if (nd == 0)
		return -1;
	if (nd == 2)
		y += y < 50 ? 2000 : 1900;     /* RFC 5322 4.3 */
	else if (nd == 3)
		y += 1900;
	if (d < 1 || d > 31)
		return -1;
	int64_t day = imap_days_from_civil(y, m, d);
	int64_t off = 0;
	i = skip_cfws(s, i, n);
	size_t j = get_num(s, i, n, 2, &hh, &nd);
	if (nd > 0 && j < n && s[j] == ':') {
		j = get_num(s, j + 1, n, 2, &mm, &nd);
		if (j < n && s[j] == ':')
			j = get_num(s, j + 1, n, 2, &ss, &nd);
		i = skip_cfws(s, j, n);
		if (i < n && (s[i] == '+' || s[i] == '-')) {
			unsigned z;
			size_t e = get_num(s, i + 1, n, 4, &z, &nd);
			if (nd == 4)
				off = (int64_t)((z / 100) * 3600 + (z % 100) * 60)
				    * (s[i] == '-' ? -1 : 1);
			i = e;
		} else if (i < n && isalpha((unsigned char)s[i])) {
			static const struct { const char *z; int h; } zones[] = {
				{ "UT", 0 }, { "GMT", 0 }, { "UTC", 0 }, { "Z", 0 },
				{ "EST", -5 }, { "EDT", -4 }, { "CST", -6 },
				{ "CDT", -5 }, { "MST", -7 }, { "MDT", -6 },
				{ "PST", -8 }, { "PDT", -7 },
			};
			size_t e = i;
			while (e < n && isalpha((unsigned char)s[e]))
				e++;
			for (size_t k = 0; k < ARRAY_SIZE(zones); k++)
				if (strlen(zones[k].z) == e - i
				    && strncasecmp(s + i, zones[k].z, e - i) == 0)
					off = (int64_t)zones[k].h * 3600;
		}
		if (hh > 23 || mm > 59 || ss > 60)
			hh = mm = ss = 0;
	}
	if (day_r)
		*day_r = day;
	if (utc_r)
		*utc_r = day * 86400 + hh * 3600 + mm * 60 + ss - off;
	return 0;
}

/* --- Header access --------------------------------------------------------- */

size_t
imap_view_header_len(const struct imap_view *v)
{
	const char *p = v->data;
	size_t n = v->len, ls = 0;

	while (ls < n) {
		if (p[ls] == '\n')
			return ls + 1;
		if (p[ls] == '\r' && ls + 1 < n && p[ls + 1] == '\n')
			return ls + 2;
		const char *nl = memchr(p + ls, '\n', n - ls);
		if (nl == NULL)
			break;
		ls = (size_t)(nl - p) + 1;
	}
	return n;
}

/* Unfold a raw field value (CR and LF dropped, outer blanks trimmed),
 * appended to out, with its encoded words decoded if decode is set. */
static void
field_text(const char *v, size_t n, int decode, struct buf *tmp,
    struct buf *out)
{
	struct buf *u = decode ? tmp : out;

	if (decode)
		buf_reset(tmp);
	size_t i = 0, start = u->len;
	while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
		i++;
	for (; i < n; i++)
		if (v[i] != '\r' && v[i] != '\n')
			buf_putc(u, v[i]);
	while (u->len > start && (u->data[u->len - 1] == ' '
	    || u->data[u->len - 1] == '\t'))
		u->len--;
	if (u->data)
		u->data[u->len] = '\0';
	else
		buf_puts(u, "");
	if (decode)
		mime_decode_words(tmp->data, tmp->len, out);
}

int
imap_view_field(struct imap_view *v, const char *name, int decode,
    struct buf *out)
{
	struct buf tmp = BUF_INIT(0);
	struct mime_field f;
	size_t pos = 0, nlen = strlen(name);
	int found = 0;

	buf_reset(out);
	if (imap_view_need(v, IMAP_VIEW_DATA) < 0)
		return 0;
	size_t hl = imap_view_header_len(v);
	while (mime_field_next(v->data, hl, &pos, &f))
		if (f.name_len == nlen && strncasecmp(f.name, name, nlen) == 0) {
			field_text(f.value, f.value_len, decode, &tmp, out);
			found = 1;
			break;
		}
	buf_free(&tmp);
	return found;
}

/* --- Parsing --------------------------------------------------------------- */

struct pctx {
	const struct imap_command *c;
	size_t i;                  /* current argument, 0 at the end of a list */
	const struct imap_search_env *env;
	struct imap_search *s;
	const char *err;
	int rc;                    /* -1 syntax, -2 charset */
	const struct imap_arg *charset;   /* CHARSET other than UTF-8/US-ASCII */
};

static const struct imap_arg *
cur(const struct pctx *p)
{
	return p->i ? &p->c->args[p->i] : NULL;
}

static void
advance(struct pctx *p)
{
	p->i = p->c->args[p->i].next;
}

static int
is_atom(const struct imap_arg *a, const char *w)
{
	return a && a->kind == IMAP_ARG_ATOM && strcasecmp(a->str, w) == 0;
}

static const struct imap_arg *
take_string(struct pctx *p)
{
	const struct imap_arg *a = cur(p);

	if (!imap_arg_is_string(a)) {
		p->err = "Missing search string";
		return NULL;
	}
	advance(p);
	return a;
}

static int
parse_u64(const struct imap_arg *a, uint64_t *v)
{
	if (a == NULL || a->kind != IMAP_ARG_ATOM || a->len == 0 || a->len > 20)
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < a->len; i++) {
		if (!isdigit((unsigned char)a->str[i]))
			return -1;
		if (__builtin_mul_overflow(x, 10, &x)
		    || __builtin_add_overflow(x, (uint64_t)(a->str[i] - '0'), &x))
			return -1;
	}
	*v = x;
	return 0;
}

static struct node *
node_new(enum node_kind k)
{
	struct node *n = xcalloc(1, sizeof(*n));

	n->kind = k;
	return n;
}

static void
node_free(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->name);
	buf_free(&n->needle);
	imap_seqset_free(&n->set);
	free(n);
}

static void
node_add(struct node *parent, struct node *kid)
{
	parent->kids = xreallocarray(parent->kids, parent->nkids + 1,
	    sizeof(*parent->kids));
	parent->kids[parent->nkids++] = kid;
	parent->needs |= kid->needs;
}

static int
is_seqset_atom(const struct imap_arg *a)
{
	if (a == NULL || a->kind != IMAP_ARG_ATOM || a->len == 0)
		return 0;
	return strspn(a->str, "0123456789*:,$") == a->len;
}

/* A sequence set (sequence numbers or UIDs) or "$" into n->set. */
static int
parse_set(struct pctx *p, const struct imap_arg *a, struct node *n, int uid)
{
	if (imap_seqset_parse(a->str, a->len, &n->set, &p->err) < 0)
		return -1;
	if (n->set.saved) {
		/* "$": the saved UIDs as they are now (a SAVE in this same
		 * command replaces them only afterwards, RFC 5182 2.1). */
		n->kind = N_UID;
		const struct imap_seqset *sv = p->env->saved;
		if (sv != NULL && sv->n > 0) {
			n->set.r = xreallocarray(NULL, sv->n, sizeof(*sv->r));
			memcpy(n->set.r, sv->r, sv->n * sizeof(*sv->r));
			n->set.n = sv->n;
		}
		return 0;
	}
	n->kind = uid ? N_UID : N_SEQ;
	imap_seqset_resolve(&n->set, uid ? p->env->max_uid : p->env->max_seq, 0);
	return 0;
}

enum arg_type { A_NONE, A_STR, A_HDR, A_NUM, A_DATE, A_KEYWORD, A_SET, A_NOT,
	A_OR, A_MODSEQ };

static const struct {
	const char *name;
	enum node_kind kind;
	enum arg_type arg;
	unsigned flag;
	int neg;
	int cmp;
	const char *field;
} keys[] = {
	{ "ALL", N_ALL, A_NONE, 0, 0, 0, NULL },
	{ "ANSWERED", N_FLAG, A_NONE, F_ANSWERED, 0, 0, NULL },
	{ "BCC", N_HEADER, A_STR, 0, 0, 0, "Bcc" },
	{ "BEFORE", N_DATE, A_DATE, 0, 0, -1, NULL },
	{ "BODY", N_BODY, A_STR, 0, 0, 0, NULL },
	{ "CC", N_HEADER, A_STR, 0, 0, 0, "Cc" },
	{ "DELETED", N_FLAG, A_NONE, F_DELETED, 0, 0, NULL },
	{ "DRAFT", N_FLAG, A_NONE, F_DRAFT, 0, 0, NULL },
	{ "FLAGGED", N_FLAG, A_NONE, F_FLAGGED, 0, 0, NULL },
	{ "FROM", N_HEADER, A_STR, 0, 0, 0, "From" },
	{ "HEADER", N_HEADER, A_HDR, 0, 0, 0, NULL },
	{ "KEYWORD", N_KEYWORD, A_KEYWORD, 0, 0, 0, NULL },
	{ "LARGER", N_LARGER, A_NUM, 0, 0, 0, NULL },
	{ "MODSEQ", N_MODSEQ, A_MODSEQ, 0, 0, 0, NULL },
	{ "NEW", N_NEW, A_NONE, 0, 0, 0, NULL },
	{ "NOT", N_NOT, A_NOT, 0, 0, 0, NULL },
	{ "OLD", N_OLD, A_NONE, 0, 0, 0, NULL },
	{ "ON", N_DATE, A_DATE, 0, 0, 0, NULL },
	{ "OR", N_OR, A_OR, 0, 0, 0, NULL },
	{ "RECENT", N_RECENT, A_NONE, 0, 0, 0, NULL },
	{ "SEEN", N_FLAG, A_NONE, F_SEEN, 0, 0, NULL },
	{ "SENTBEFORE", N_SENT, A_DATE, 0, 0, -1, NULL },
	{ "SENTON", N_SENT, A_DATE, 0, 0, 0, NULL },
	{ "SENTSINCE", N_SENT, A_DATE, 0, 0, 1, NULL },
	{ "SINCE", N_DATE, A_DATE, 0, 0, 1, NULL },
	{ "SMALLER", N_SMALLER, A_NUM, 0, 0, 0, NULL },
	{ "SUBJECT", N_HEADER, A_STR, 0, 0, 0, "Subject" },
	{ "TEXT", N_TEXT, A_STR, 0, 0, 0, NULL },
	{ "TO", N_HEADER, A_STR, 0, 0, 0, "To" },
	{ "UID", N_UID, A_SET, 0, 0, 0, NULL },
	{ "UNANSWERED", N_FLAG, A_NONE, F_ANSWERED, 1, 0, NULL },
	{ "UNDELETED", N_FLAG, A_NONE, F_DELETED, 1, 0, NULL },
	{ "UNDRAFT", N_FLAG, A_NONE, F_DRAFT, 1, 0, NULL },
	{ "UNFLAGGED", N_FLAG, A_NONE, F_FLAGGED, 1, 0, NULL },
	{ "UNKEYWORD", N_KEYWORD, A_KEYWORD, 0, 1, 0, NULL },
	{ "UNSEEN", N_FLAG, A_NONE, F_SEEN, 1, 0, NULL },
};

static struct node *parse_key(struct pctx *p, unsigned depth);

/* Keys up to the end of the current list, ANDed. */
static struct node *
parse_keys(struct pctx *p, unsigned depth)
{
	struct node *and = node_new(N_AND);

	if (cur(p) == NULL) {
		p->err = "Missing search key";
		goto fail;
	}
	while (cur(p) != NULL) {
		struct node *k = parse_key(p, depth);
		if (k == NULL)
			goto fail;
		node_add(and, k);
	}
	if (and->nkids == 1) {
		struct node *k = and->kids[0];
		and->nkids = 0;
		node_free(and);
		return k;
	}
	return and;
fail:
	node_free(and);
	return NULL;
}

static struct node *
parse_key(struct pctx *p, unsigned depth)
{
	const struct imap_arg *a = cur(p), *v;
	struct node *n = NULL;

	if (depth > IMAP_SEARCH_DEPTH_MAX) {
		p->err = "Search keys nested too deeply";
		return NULL;
	}
	if (a->kind == IMAP_ARG_LIST) {
		size_t save = p->i;
		p->i = a->nchildren ? p->i + 1 : 0;
		n = parse_keys(p, depth + 1);
		p->i = save;
		if (n != NULL)
			advance(p);
		return n;
	}
	if (a->kind != IMAP_ARG_ATOM) {
		p->err = "Invalid search key";
		return NULL;
	}
	if (is_seqset_atom(a)) {
		n = node_new(N_SEQ);
		if (parse_set(p, a, n, 0) < 0)
			goto fail;
		advance(p);
		return n;
	}
	size_t k;
	for (k = 0; k < ARRAY_SIZE(keys); k++)
		if (strcasecmp(a->str, keys[k].name) == 0)
			break;
	if (k == ARRAY_SIZE(keys)) {
		p->err = "Unknown search key";
		return NULL;
	}
	advance(p);
	n = node_new(keys[k].kind);
	n->flag = keys[k].flag;
	n->neg = keys[k].neg;
	n->cmp = keys[k].cmp;
	switch (keys[k].arg) {
	case A_NONE:
		break;
	case A_HDR:
		if ((v = take_string(p)) == NULL)
			goto fail;
		if (v->len == 0 || memchr(v->str, '\0', v->len) != NULL
		    || memchr(v->str, ':', v->len) != NULL) {
			p->err = "Invalid header field name";
			goto fail;
		}
		n->name = xstrndup(v->str, v->len);
		/* FALLTHROUGH */
	case A_STR:
		if ((v = take_string(p)) == NULL)
			goto fail;
		if (keys[k].field)
			n->name = xstrdup(keys[k].field);
		if (p->charset != NULL) {
			struct buf u = BUF_INIT(0);
			if (mime_charset_to_utf8(p->charset->str, p->charset->len, v->str,
			    v->len, &u) < 0) {
				buf_free(&u);
				p->err = "Search string is not in the given charset";
				goto fail;
			}
			imap_casemap(u.data != NULL ? u.data : "", u.len, &n->needle, 0);
			buf_free(&u);
		} else {
			imap_casemap(v->str, v->len, &n->needle, 0);
		}
		break;
	case A_NUM:
		if (parse_u64(cur(p), &n->num) < 0) {
			p->err = "Invalid number";
			goto fail;
		}
		advance(p);
		break;
	case A_DATE:
		v = cur(p);
		if (!imap_arg_is_string(v) || parse_search_date(v->str, v->len, &n->day) < 0) {
			p->err = "Invalid date";
			goto fail;
		}
		advance(p);
		break;
	case A_KEYWORD:
		v = cur(p);
		if (v == NULL || v->kind != IMAP_ARG_ATOM) {
			p->err = "Invalid keyword";
			goto fail;
		}
		n->name = xstrndup(v->str, v->len);
		advance(p);
		break;
	case A_SET:
		v = cur(p);
		if (!is_seqset_atom(v) || parse_set(p, v, n, 1) < 0) {
			p->err = "Invalid UID set";
			goto fail;
		}
		advance(p);
		break;
	case A_NOT:
	case A_OR:
		for (int i = 0; i < (keys[k].arg == A_OR ? 2 : 1); i++) {
			if (cur(p) == NULL) {
				p->err = "Missing search key";
				goto fail;
			}
			struct node *kid = parse_key(p, depth + 1);
			if (kid == NULL)
				goto fail;
			node_add(n, kid);
		}
		break;
	case A_MODSEQ:
		/* [entry-name entry-type-req] mod-sequence-valzer */
		v = cur(p);
		if (v != NULL && v->kind != IMAP_ARG_LIST && parse_u64(v, &n->num) < 0) {
			if (!imap_arg_is_string(v)) {
				p->err = "Invalid MODSEQ entry";
				goto fail;
			}
			advance(p);
			v = cur(p);
			if (!is_atom(v, "all") && !is_atom(v, "shared") && !is_atom(v, "priv")) {
				p->err = "Invalid MODSEQ entry type";
				goto fail;
			}
			advance(p);
			v = cur(p);
		}
		if (parse_u64(v, &n->num) < 0 || n->num > INT64_MAX) {
			p->err = "Invalid MODSEQ value";
			goto fail;
		}
		advance(p);
		p->s->modseq = 1;
		break;
	}
	if (n->kind == N_HEADER || n->kind == N_SENT)
		n->needs |= IMAP_VIEW_DATA;
	else if (n->kind == N_BODY || n->kind == N_TEXT)
		n->needs |= IMAP_VIEW_DATA | IMAP_VIEW_TREE;
	return n;
fail:
	node_free(n);
	return NULL;
}

static int
parse_return(struct pctx *p)
{
	const struct imap_arg *l = cur(p);
	unsigned ret = IMAP_SR_ESEARCH;

	if (l == NULL || l->kind != IMAP_ARG_LIST) {
		p->err = "RETURN needs a list";
		return -1;
	}
	size_t i = l->nchildren ? p->i + 1 : 0;
	for (; i != 0; i = p->c->args[i].next) {
		const struct imap_arg *o = &p->c->args[i];
		if (is_atom(o, "MIN"))
			ret |= IMAP_SR_MIN;
		else if (is_atom(o, "MAX"))
			ret |= IMAP_SR_MAX;
		else if (is_atom(o, "ALL"))
			ret |= IMAP_SR_ALL;
		else if (is_atom(o, "COUNT"))
			ret |= IMAP_SR_COUNT;
		else if (is_atom(o, "SAVE"))
			ret |= IMAP_SR_SAVE;
		else {
			p->err = "Unknown RETURN option";
			return -1;
		}
	}
	if (ret == IMAP_SR_ESEARCH)
		ret |= IMAP_SR_ALL;     /* "RETURN ()" means ALL (RFC 4731 3.1) */
	p->s->ret = ret;
	advance(p);
	return 0;
}

static int
check_charset(struct pctx *p, const struct imap_arg *a)
{
	if (!imap_arg_is_string(a)) {
		p->err = "Missing charset";
		return -1;
	}
	/* Strings in another charset are converted to UTF-8 as they are
	 * read, with the converter MIME text uses: clients that search in
	 * their local charset (ISO-8859-1, windows-1252, ISO-2022-JP) work
	 * as against Dovecot. One the converter does not know is NO
	 * [BADCHARSET] (RFC 3501 6.4.4), as a client expects. */
	if (strcasecmp(a->str, "UTF-8") != 0 && strcasecmp(a->str, "US-ASCII") != 0) {
		struct buf probe = BUF_INIT(0);
		int known = mime_charset_to_utf8(a->str, a->len, "", 0, &probe) == 0;

		buf_free(&probe);
		if (!known) {
			p->err = "Unsupported charset";
			p->rc = -2;
			return -1;
		}
		p->charset = a;
	}
	advance(p);
	return 0;
}

int
imap_search_parse(const struct imap_command *c, size_t k,
    const struct imap_search_env *env, int allow_return, int charset_first,
    struct imap_search **s_r, const char **err_r)
{
	struct imap_search *s = xcalloc(1, sizeof(*s));
	const struct imap_arg *first = imap_arg_child(c, 0, k);
	struct pctx p = {
		.c = c, .i = first ? (size_t)(first - c->args) : 0, .env = env,
		.s = s, .err = "Invalid search", .rc = -1,
	};

	if (allow_return && is_atom(cur(&p), "RETURN")) {
		advance(&p);
		if (parse_return(&p) < 0)
			goto fail;
	}
	if (charset_first) {
		if (check_charset(&p, cur(&p)) < 0)
			goto fail;
	} else if (is_atom(cur(&p), "CHARSET")) {
		if (env->utf8) {
			p.err = "CHARSET is not allowed after ENABLE UTF8=ACCEPT";
			goto fail;
		}
		advance(&p);
		if (check_charset(&p, cur(&p)) < 0)
			goto fail;
	}
	s->root = parse_keys(&p, 0);
	if (s->root == NULL)
		goto fail;
	*s_r = s;
	return 0;
fail:
	*err_r = p.err;
	imap_search_free(&s);
	*s_r = NULL;
	return p.rc;
}

void
imap_search_free(struct imap_search **sp)
{
	struct imap_search *s = *sp;

	if (s == NULL)
		return;
	node_free(s->root);
	buf_free(&s->hdr_text);
	buf_free(&s->body_text);
	buf_free(&s->part_text);
	buf_free(&s->tmp);
	buf_free(&s->tmp2);
	free(s);
	*sp = NULL;
}

unsigned
imap_search_needs(const struct imap_search *s)
{
	return s->root->needs;
}

unsigned
imap_search_return(const struct imap_search *s)
{
	return s->ret;
}

void
imap_search_rev2(struct imap_search *s)
{
	if (!(s->ret & IMAP_SR_ESEARCH))
		s->ret = IMAP_SR_ESEARCH | IMAP_SR_ALL;
}

int
imap_search_uses_modseq(const struct imap_search *s)
{
	return s->modseq;
}

/* --- Matching -------------------------------------------------------------- */

static int
has_keyword(const struct imap_view *v, const char *kw)
{
	for (char *const *k = v->keywords; k && *k; k++)
		if (strcasecmp(*k, kw) == 0)
			return 1;
	return 0;
}

static int
contains(const struct buf *hay, const struct buf *needle)
{
	if (needle->len == 0)
		return 1;
	return hay->len >= needle->len
	    && memmem(hay->data, hay->len, needle->data, needle->len) != NULL;
}

static void
cache_check(struct imap_search *s, const struct imap_view *v)
{
	if (s->cv != v || s->cv_uid != v->uid || s->cv_data != v->data) {
		s->cv = v;
		s->cv_uid = v->uid;
		s->cv_data = v->data;
		s->have_hdr = s->have_body = 0;
	}
}

/* Every field of a header block as "name: decoded value\n", case-mapped,
 * appended to out. */
static void
header_text(struct imap_search *s, const char *hdr, size_t n, struct buf *out)
{
	struct mime_field f;
	size_t pos = 0;

	while (mime_field_next(hdr, n, &pos, &f)) {
		buf_reset(&s->tmp2);
		buf_append(&s->tmp2, f.name, f.name_len);
		buf_puts(&s->tmp2, ": ");
		field_text(f.value, f.value_len, 1, &s->tmp, &s->tmp2);
		buf_putc(&s->tmp2, '\n');
		imap_casemap(s->tmp2.data, s->tmp2.len, out, 0);
	}
}

/* The header of a part of a multipart into s->part_text, and the file
 * name it gives (Content-Disposition filename, Content-Type name) decoded
 * from RFC 2231, which header_text() leaves percent-encoded. */
static void
part_header_text(struct imap_search *s, const char *hdr, size_t n)
{
	static const struct { const char *field, *param; int disp; } names[] = {
		{ "Content-Disposition", "filename", 1 },
		{ "Content-Type", "name", 0 },
	};
	struct mime_ctype ct;

	header_text(s, hdr, n, &s->part_text);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!mime_header_get(hdr, n, names[i].field, NULL, &s->tmp))
			continue;
		mime_ctype_parse(s->tmp.data ? s->tmp.data : "", s->tmp.len, &ct,
		    names[i].disp);
		if (mime_param_get(&ct, names[i].param, &s->tmp2)) {
			imap_casemap(s->tmp2.data ? s->tmp2.data : "", s->tmp2.len,
			    &s->part_text, 0);
			buf_putc(&s->part_text, '\n');
		}
		mime_ctype_free(&ct);
	}
}

/* 1 if part i of t is text BODY looks at: a leaf text/... part, or one
 * without a usable Content-Type (text/plain by default); *cs filled with
 * its charset parameter (empty if none). */
static int
is_text_part(const struct mime_tree *t, const char *msg, uint32_t i,
    struct buf *tmp, struct buf *cs)
{
	const struct mime_part *pt = &t->parts[i];
	struct mime_ctype ct;
	int text;

	buf_reset(cs);
	if (pt->flags & (MIME_PF_MULTIPART | MIME_PF_MESSAGE))
		return 0;
	if (!mime_header_get(msg + pt->hdr_off, pt->hdr_len, "Content-Type",
	    NULL, tmp))
		return 1;
	mime_ctype_parse(tmp->data ? tmp->data : "", tmp->len, &ct, 0);
	if (pt->flags & MIME_PF_ASTEXT)
		text = 1;
	else if (ct.type == NULL)
		text = !(pt->flags & MIME_PF_DIGEST);
	else
		text = strcasecmp(ct.type, "text") == 0;
	if (text)
		(void)mime_param_get(&ct, "charset", cs);
	mime_ctype_free(&ct);
	return text;
}

static int
load_body(struct imap_search *s, struct imap_view *v)
{
	cache_check(s, v);
	if (s->have_body)
		return 0;
	if (imap_view_need(v, IMAP_VIEW_DATA | IMAP_VIEW_TREE) < 0)
		return -1;
	cache_check(s, v);
	const struct mime_tree *t = v->tree;
	struct buf dec = BUF_INIT(0), utf = BUF_INIT(0), cs = BUF_INIT(0);
	buf_reset(&s->body_text);
	buf_reset(&s->part_text);
	for (uint32_t i = 0; i < t->nparts; i++) {
		const struct mime_part *pt = &t->parts[i];
		/* The header of an embedded message is text of the body. */
		if (pt->parent != MIME_NONE
		    && (t->parts[pt->parent].flags & MIME_PF_MESSAGE))
			header_text(s, v->data + pt->hdr_off, pt->hdr_len, &s->body_text);
		else if (pt->parent != MIME_NONE)
			part_header_text(s, v->data + pt->hdr_off, pt->hdr_len);
		if (!is_text_part(t, v->data, i, &s->tmp, &cs))
			continue;
		buf_reset(&dec);
		(void)mime_part_decode(t, v->data, i, &dec);
		buf_reset(&utf);
		const char *text = dec.data ? dec.data : "";
		size_t tlen = dec.len;
		if (cs.len > 0 && mime_charset_to_utf8(cs.data, cs.len, text,
		    tlen, &utf) == 0) {
			text = utf.data ? utf.data : "";
			tlen = utf.len;
		}
		imap_casemap(text, tlen, &s->body_text, 0);
		buf_putc(&s->body_text, '\n');
	}
	if (s->body_text.data == NULL)
		buf_puts(&s->body_text, "");
	if (s->part_text.data == NULL)
		buf_puts(&s->part_text, "");
	buf_free(&dec);
	buf_free(&utf);
	buf_free(&cs);
	s->have_body = 1;
	return 0;
}

static int
load_header(struct imap_search *s, struct imap_view *v)
{
	cache_check(s, v);
	if (s->have_hdr)
		return 0;
	if (imap_view_need(v, IMAP_VIEW_DATA) < 0)
		return -1;
	cache_check(s, v);
	buf_reset(&s->hdr_text);
	header_text(s, v->data, imap_view_header_len(v), &s->hdr_text);
	if (s->hdr_text.data == NULL)
		buf_puts(&s->hdr_text, "");
	s->have_hdr = 1;
	return 0;
}

/* HEADER name string: some field called name whose decoded value holds
 * the string (any such field, when the string is empty). */
static int
match_header(struct imap_search *s, const struct node *n, struct imap_view *v)
{
	struct mime_field f;
	size_t pos = 0, nlen = strlen(n->name);
	struct buf val = BUF_INIT(0), folded = BUF_INIT(0);
	int r = 0;

	if (imap_view_need(v, IMAP_VIEW_DATA) < 0)
		return -1;
	size_t hl = imap_view_header_len(v);
	while (r == 0 && mime_field_next(v->data, hl, &pos, &f)) {
		if (f.name_len != nlen || strncasecmp(f.name, n->name, nlen) != 0)
			continue;
		buf_reset(&val);
		field_text(f.value, f.value_len, 1, &s->tmp, &val);
		buf_reset(&folded);
		imap_casemap(val.data ? val.data : "", val.len, &folded, 0);
		r = contains(&folded, &n->needle);
	}
	buf_free(&val);
	buf_free(&folded);
	return r;
}

static int
date_cmp(int64_t day, const struct node *n)
{
	if (n->cmp < 0)
		return day < n->day;
	if (n->cmp > 0)
		return day >= n->day;
	return day == n->day;
}

static int
match(struct imap_search *s, const struct node *n, struct imap_view *v)
{
	int r;

	switch (n->kind) {
	case N_ALL:
		return 1;
	case N_AND:
		/* Keys that need no message bytes first. */
		for (int pass = 0; pass < 2; pass++)
			for (size_t i = 0; i < n->nkids; i++) {
				if ((n->kids[i]->needs == 0) != (pass == 0))
					continue;
				if ((r = match(s, n->kids[i], v)) <= 0)
					return r;
			}
		return 1;
	case N_OR:
		if ((r = match(s, n->kids[0], v)) != 0)
			return r;
		return match(s, n->kids[1], v);
	case N_NOT:
		r = match(s, n->kids[0], v);
		return r < 0 ? r : !r;
	case N_FLAG:
		return ((v->flags & n->flag) != 0) != n->neg;
	case N_KEYWORD:
		return has_keyword(v, n->name) != n->neg;
	case N_RECENT:
		return v->recent != 0;
	case N_NEW:
		return v->recent && !(v->flags & F_SEEN);
	case N_OLD:
		return !v->recent;
	case N_LARGER:
		return v->size > n->num;
	case N_SMALLER:
		return v->size < n->num;
	case N_DATE:
		return date_cmp(day_of(v->internaldate), n);
	case N_SENT: {
		int64_t day;
		if (imap_view_field(v, "Date", 0, &s->tmp2) == 0
		    || imap_rfc5322_date(s->tmp2.data, s->tmp2.len, &day, NULL) < 0) {
			if (v->data == NULL)
				return -1;
			day = day_of(v->internaldate);
		}
		return date_cmp(day, n);
	}
	case N_HEADER:
		return match_header(s, n, v);
	case N_BODY:
		if (load_body(s, v) < 0)
			return -1;
		return contains(&s->body_text, &n->needle);
	case N_TEXT:
		if (load_header(s, v) < 0 || load_body(s, v) < 0)
			return -1;
		return contains(&s->hdr_text, &n->needle)
		    || contains(&s->body_text, &n->needle)
		    || contains(&s->part_text, &n->needle);
	case N_SEQ:
		return imap_seqset_contains(&n->set, v->seq);
	case N_UID:
		return imap_seqset_contains(&n->set, v->uid);
	case N_MODSEQ:
		return v->modseq >= n->num;
	}
	return 0;
}

int
imap_search_match(struct imap_search *s, struct imap_view *v)
{
	return match(s, s->root, v);
}

/* --- Replies --------------------------------------------------------------- */

static uint32_t
number(const struct imap_view *v, int uid)
{
	return uid ? v->uid : v->seq;
}

/* Ascending numbers as a compact sequence set: "2:4,7". */
static void
write_set(struct imap_view *const *m, size_t n, int uid, struct buf *out)
{
	size_t i = 0;

	while (i < n) {
		uint32_t lo = number(m[i], uid), hi = lo;
		size_t j = i + 1;
		while (j < n && number(m[j], uid) == hi + 1)
			hi = number(m[j++], uid);
		if (i > 0)
			buf_putc(out, ',');
		if (hi == lo)
			buf_printf(out, "%u", lo);
		else
			buf_printf(out, "%u:%u", lo, hi);
		i = j;
	}
}

static uint64_t
max_modseq(struct imap_view *const *m, size_t n)
{
	uint64_t mx = 0;

	for (size_t i = 0; i < n; i++)
		if (m[i]->modseq > mx)
			mx = m[i]->modseq;
	return mx;
}

void
imap_search_write(const struct imap_search *s, const char *tag, int uid,
    struct imap_view *const *matched, size_t n, struct buf *out)
{
	unsigned ret = s->ret;

	if (!(ret & IMAP_SR_ESEARCH)) {
		buf_puts(out, "* SEARCH");
		for (size_t i = 0; i < n; i++)
			buf_printf(out, " %u", number(matched[i], uid));
		if (s->modseq && n > 0)
			buf_printf(out, " (MODSEQ %llu)",
			    (unsigned long long)max_modseq(matched, n));
		buf_puts(out, "\r\n");
		return;
	}
	/* SAVE alone: the result is only saved (RFC 5182 2.4). */
	if ((ret & (IMAP_SR_MIN | IMAP_SR_MAX | IMAP_SR_ALL | IMAP_SR_COUNT)) == 0)
		return;
	buf_puts(out, "* ESEARCH (TAG ");
	imap_quote(out, tag, strlen(tag), 0);
	buf_putc(out, ')');
	if (uid)
		buf_puts(out, " UID");
	if (n > 0 && (ret & IMAP_SR_MIN))
		buf_printf(out, " MIN %u", number(matched[0], uid));
	if (n > 0 && (ret & IMAP_SR_MAX))
		buf_printf(out, " MAX %u", number(matched[n - 1], uid));
	if (ret & IMAP_SR_COUNT)
		buf_printf(out, " COUNT %zu", n);
	if (n > 0 && (ret & IMAP_SR_ALL)) {
		buf_puts(out, " ALL ");
		write_set(matched, n, uid, out);
	}
	if (s->modseq && n > 0) {
		/* With only MIN and/or MAX, the highest of the messages they
		 * name (RFC 7162 3.1.5); else of all that matched. */
		uint64_t mx;
		if (ret & (IMAP_SR_ALL | IMAP_SR_COUNT))
			mx = max_modseq(matched, n);
		else {
			mx = 0;
			if (ret & IMAP_SR_MIN)
				mx = matched[0]->modseq;
			if ((ret & IMAP_SR_MAX) && matched[n - 1]->modseq > mx)
				mx = matched[n - 1]->modseq;
		}
		buf_printf(out, " MODSEQ %llu", (unsigned long long)mx);
	}
	buf_puts(out, "\r\n");
}

void
imap_search_saved(const struct imap_search *s, struct imap_view *const *matched,
    size_t n, struct imap_seqset *out)
{
	unsigned ret = s->ret;
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return;
	/* SAVE with MIN and/or MAX (and neither ALL nor COUNT) keeps only
	 * those (RFC 5182 2.4). */
	int minmax = (ret & (IMAP_SR_MIN | IMAP_SR_MAX))
	    && !(ret & (IMAP_SR_ALL | IMAP_SR_COUNT));
	for (size_t i = 0; i < n; i++) {
		if (minmax && !((i == 0 && (ret & IMAP_SR_MIN))
		    || (i == n - 1 && (ret & IMAP_SR_MAX))))
			continue;
		uint32_t u = matched[i]->uid;
		if (out->n > 0 && out->r[out->n - 1].hi + 1 == u) {
			out->r[out->n - 1].hi = u;
			continue;
		}
		if (out->n == cap) {
			cap = cap ? cap * 2 : 8;
			out->r = xreallocarray(out->r, cap, sizeof(*out->r));
		}
		out->r[out->n].lo = out->r[out->n].hi = u;
		out->n++;
	}
}
