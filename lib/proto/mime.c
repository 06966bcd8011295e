/*
 * mime - MIME structure parser and IMAP views (contract in mime.h).
 *
 * Invariants: nothing reads outside msg[0..len); every loop is bounded by
 * the input length or a limit; recursion depth is bounded by max_depth
 * (parse, serializers) and comment nesting by CMT_DEPTH. Trusts: nothing,
 * neither the message nor a cached tree handed to mime_deserialize.
 */
#include "proto/mime.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/imap.h"
#include "util/alloc.h"
#include "util/hex.h"

static const struct mime_limits default_limits = MIME_LIMITS_DEFAULT;

#define CMT_DEPTH 16         /* nested (comments) followed, deeper is text */
#define MAX_PARAMS 64
#define MAX_SECTIONS 64      /* RFC 2231 name*0 .. name*63 */
#define MAX_ADDRS 1000       /* addresses in one ENVELOPE list */

/* --- Lines and sizes ------------------------------------------------------- */

static size_t
eol(const char *p, size_t pos, size_t end)
{
	const char *q = memchr(p + pos, '\n', end - pos);
	return q ? (size_t)(q - p) : end;
}

static void
wire_count(const char *p, size_t n, size_t *size_r, size_t *lines_r)
{
	size_t lf = 0, bare = 0;
	const char *q = p, *end = p + n;

	while ((q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
		lf++;
		if (q == p || q[-1] != '\r')
			bare++;
		q++;
	}
	*size_r = n + bare;
	*lines_r = lf;
}

/* Length of the header block at msg[off..end): through the first empty
 * line, or all of it (*noblank_r = 1). */
static size_t
header_len(const char *msg, size_t off, size_t end, int *noblank_r)
{
	size_t pos = off;

	*noblank_r = 0;
	while (pos < end) {
		size_t e = eol(msg, pos, end);
		if (e == pos || (e == pos + 1 && msg[pos] == '\r')) {
			if (e < end)
				return e + 1 - off;
			break;
		}
		pos = e < end ? e + 1 : end;
	}
	*noblank_r = 1;
	return end - off;
}

/* --- Header fields --------------------------------------------------------- */

int
mime_field_next(const char *hdr, size_t n, size_t *pos, struct mime_field *f)
{
	size_t p = *pos;

	while (p < n) {
		size_t start = p, e = eol(hdr, p, n);
		if (e == p || (e == p + 1 && hdr[p] == '\r'))
			break;                  /* the blank line ends the header */
		/* Continuation lines belong to this field. */
		size_t end = e < n ? e + 1 : n;
		while (end < n && (hdr[end] == ' ' || hdr[end] == '\t')) {
			e = eol(hdr, end, n);
			end = e < n ? e + 1 : n;
		}
		p = end;
		const char *colon = memchr(hdr + start, ':', end - start);
		if (colon == NULL || colon == hdr + start)
			continue;
		size_t nl = (size_t)(colon - (hdr + start));
		while (nl > 0 && (hdr[start + nl - 1] == ' ' || hdr[start + nl - 1] == '\t'))
			nl--;
		if (nl == 0 || memchr(hdr + start, '\n', nl) != NULL)
			continue;
		f->name = hdr + start;
		f->name_len = nl;
		f->value = colon + 1;
		f->value_len = (size_t)(hdr + end - (colon + 1));
		f->line = hdr + start;
		f->line_len = end - start;
		*pos = p;
		return 1;
	}
	*pos = n;
	return 0;
}

static void
unfold(const char *v, size_t n, size_t max, struct buf *out)
{
	size_t i = 0, start = out->len;

	while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
		i++;
	for (; i < n && out->len - start < max; i++)
		if (v[i] != '\r' && v[i] != '\n')
			buf_putc(out, v[i]);
	while (out->len > start && (out->data[out->len - 1] == ' '
	    || out->data[out->len - 1] == '\t'))
		out->len--;
	if (out->data)
		out->data[out->len] = '\0';
}

/* The first field called name, or with all every one of them, their
 * non-empty values joined with ", " (at most max_field_len in all). */
static int
header_get(const char *hdr, size_t n, const char *name,
    const struct mime_limits *lim, struct buf *out, int all)
{
	struct mime_field f;
	size_t pos = 0, nlen = strlen(name), sep;
	unsigned count = 0;
	int found = 0;

	if (lim == NULL)
		lim = &default_limits;
	buf_reset(out);
	while (count++ < lim->max_header_fields && mime_field_next(hdr, n, &pos, &f)) {
		if (f.name_len != nlen || strncasecmp(f.name, name, nlen) != 0)
			continue;
		sep = SIZE_MAX;
		if (found && out->len > 0) {
			if (out->len + 2 >= lim->max_field_len)
				break;
			sep = out->len;
			buf_puts(out, ", ");
		}
		unfold(f.value, f.value_len, lim->max_field_len - out->len, out);
		if (sep != SIZE_MAX && out->len == sep + 2)
			out->len = sep;           /* an empty one adds nothing */
		found = 1;
		if (!all)
			break;
	}
	if (out->data)
		out->data[out->len] = '\0';
	return found;
}

int
mime_header_get(const char *hdr, size_t n, const char *name,
    const struct mime_limits *lim, struct buf *out)
{
	return header_get(hdr, n, name, lim, out, 0);
}

/* --- Charsets, RFC 2047 ---------------------------------------------------- */

/* Convert p[0..n) in charset cs to UTF-8 appended to out; -1 if the
 * charset is unknown or the bytes do not convert (out unchanged). */
static int
to_utf8(const char *cs, size_t cslen, const char *p, size_t n, struct buf *out)
{
	char name[64];

	if (cslen == 0 || cslen >= sizeof(name))
		return -1;
	/* Only charset-name characters reach iconv_open (no "//" options). */
	for (size_t i = 0; i < cslen; i++)
		if (!isalnum((unsigned char)cs[i]) && strchr("-_.:*", cs[i]) == NULL)
			return -1;
	memcpy(name, cs, cslen);
	name[cslen] = '\0';
	char *star = strchr(name, '*');  /* RFC 2231 language suffix */
	if (star)
		*star = '\0';
	if (strcasecmp(name, "utf-8") == 0 || strcasecmp(name, "us-ascii") == 0
	    || strcasecmp(name, "utf8") == 0) {
		buf_append(out, p, n);
		return 0;
	}
	if (strcasecmp(name, "iso-8859-1") == 0 || strcasecmp(name, "latin1") == 0) {
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c < 0x80)
				buf_putc(out, c);
			else {
				buf_putc(out, 0xc0 | (c >> 6));
				buf_putc(out, 0x80 | (c & 0x3f));
			}
		}
		return 0;
	}
	iconv_t cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return -1;
	size_t start = out->len, inleft = n;
	char *in = (char *)p;
	int rc = 0;
	while (inleft > 0) {
		char tmp[256], *o = tmp;
		size_t oleft = sizeof(tmp);
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);
		buf_append(out, tmp, (size_t)(o - tmp));
		if (r == (size_t)-1 && errno != E2BIG) {
			rc = -1;
			break;
		}
	}
	iconv_close(cd);
	if (rc < 0)
		buf_truncate(out, start);
	return rc;
}

static const signed char b64val[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
	['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
	['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
	['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
	['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
	['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
	['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};  /* value + 1; 0 = not base64 */

/* Lenient base64: characters outside the alphabet are skipped, decoding
 * stops at '='. Returns the number of skipped characters other than
 * blanks and line ends, so strict callers can refuse. */
static size_t
b64_decode(const char *p, size_t n, struct buf *out)
{
	unsigned acc = 0, bits = 0;
	size_t junk = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '=')
			break;
		if (b64val[c] == 0) {
			if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
				junk++;
			continue;
		}
		acc = (acc << 6) | (unsigned)(b64val[c] - 1);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_putc(out, (int)((acc >> bits) & 0xff));
		}
	}
	return junk;
}

/* One encoded word at s[i..n): "=?cs?E?text?=". On success the decoded
 * UTF-8 is appended and the index after "?=" returned; else 0. */
static size_t
encoded_word(const char *s, size_t i, size_t n, struct buf *out)
{
	size_t p = i + 2, cs, cslen, enc, text, tend;

	if (i + 2 > n || s[i] != '=' || s[i + 1] != '?')
		return 0;
	cs = p;
	while (p < n && s[p] != '?' && s[p] != ' ' && s[p] != '\t' && p - cs < 64)
		p++;
	if (p >= n || s[p] != '?' || p == cs)
		return 0;
	cslen = p - cs;
	enc = ++p;
	if (p + 1 >= n || s[p + 1] != '?')
		return 0;
	text = p + 2;
	for (tend = text; tend + 1 < n; tend++) {
		if (s[tend] == ' ' || s[tend] == '\t' || s[tend] == '\r' || s[tend] == '\n')
			return 0;
		if (s[tend] == '?' && s[tend + 1] == '=')
			break;
	}
	if (tend + 1 >= n)
		return 0;

	struct buf raw = BUF_INIT(0);
	int ok = 1;
	if (s[enc] == 'Q' || s[enc] == 'q') {
		for (size_t k = text; k < tend; k++) {
			if (s[k] == '_')
				buf_putc(&raw, ' ');
			else if (s[k] == '=' && k + 2 < tend && hex_digit(s[k + 1]) >= 0
			    && hex_digit(s[k + 2]) >= 0) {
				buf_putc(&raw, hex_digit(s[k + 1]) * 16 + hex_digit(s[k + 2]));
				k += 2;
			} else if (s[k] == '=')
				ok = 0;
			else
				buf_putc(&raw, s[k]);
		}
	} else if (s[enc] == 'B' || s[enc] == 'b') {
		if (b64_decode(s + text, tend - text, &raw) != 0)
			ok = 0;
	} else
		ok = 0;
	if (ok && to_utf8(s + cs, cslen, raw.data ? raw.data : "", raw.len, out) < 0)
		ok = 0;
	buf_free(&raw);
	return ok ? tend + 2 : 0;
}

void
mime_decode_words(const char *s, size_t n, struct buf *out)
{
	size_t i = 0, lit = 0;   /* s[lit..i) is not yet copied */
	int after_word = 0;

	while (i < n) {
		size_t j;
		if (s[i] == '=' && i + 1 < n && s[i + 1] == '?') {
			/* Decode first, then decide about the gap before it. */
			struct buf w = BUF_INIT(0);
			if ((j = encoded_word(s, i, n, &w)) != 0) {
				int blank = 1;
				for (size_t k = lit; k < i; k++)
					if (s[k] != ' ' && s[k] != '\t' && s[k] != '\r' && s[k] != '\n')
						blank = 0;
				if (!(after_word && blank))
					buf_append(out, s + lit, i - lit);
				buf_append(out, w.data ? w.data : "", w.len);
				buf_free(&w);
				i = lit = j;
				after_word = 1;
				continue;
			}
			buf_free(&w);
		}
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			after_word = 0;
		i++;
	}
	buf_append(out, s + lit, n - lit);
}

/* --- Content-Type and friends (RFC 2045, 2231) ----------------------------- */

struct lex {
	const char *s;
	size_t n, i;
};

static void
skip_cfws(struct lex *lx)
{
	while (lx->i < lx->n) {
		char c = lx->s[lx->i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			lx->i++;
		else if (c == '(') {
			int depth = 0;
			while (lx->i < lx->n) {
				c = lx->s[lx->i++];
				if (c == '\\' && lx->i < lx->n)
					lx->i++;
				else if (c == '(')
					depth++;
				else if (c == ')' && --depth == 0)
					break;
			}
		} else
			break;
	}
}

static int
is_tspecial(int c)
{
	return c <= ' ' || c >= 127 || strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static char *
lex_token(struct lex *lx)
{
	size_t start = lx->i;

	while (lx->i < lx->n && !is_tspecial((unsigned char)lx->s[lx->i]))
		lx->i++;
	return lx->i > start ? xstrndup(lx->s + start, lx->i - start) : NULL;
}

/* A quoted string at lx (after skip_cfws), unquoted; NULL if none. An
 * unterminated one runs to the end. */
static char *
lex_quoted(struct lex *lx)
{
	struct buf b = BUF_INIT(0);

	if (lx->i >= lx->n || lx->s[lx->i] != '"')
		return NULL;
	lx->i++;
	while (lx->i < lx->n && lx->s[lx->i] != '"') {
		if (lx->s[lx->i] == '\\' && lx->i + 1 < lx->n)
			lx->i++;
		buf_putc(&b, lx->s[lx->i++]);
	}
	if (lx->i < lx->n)
		lx->i++;
	buf_putc(&b, 0);
	b.len--;
	return buf_steal(&b);
}

struct rawparam {
	char *base;        /* name without the RFC 2231 suffix */
	int section;       /* -1: none */
	int extended;      /* trailing '*' */
	char *value;
};

static void
pct_encode(const char *v, struct buf *out)
{
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (is_tspecial(c) || c == '*' || c == '\'' || c == '%')
			buf_printf(out, "%%%02X", c);
		else
			buf_putc(out, c);
	}
}

static void
add_param(struct mime_ctype *ct, char *name, char *value)
{
	if (ct->nparams >= MAX_PARAMS) {
		free(name);
		free(value);
		return;
	}
	ct->params = xreallocarray(ct->params, ct->nparams + 1, sizeof(*ct->params));
	ct->params[ct->nparams].name = name;
	ct->params[ct->nparams].value = value;
	ct->nparams++;
}

/* Merge RFC 2231 sections of raw[] into ct->params, in order of first
 * appearance. A gap in the section numbers ends the value there. */
static void
merge_params(struct mime_ctype *ct, struct rawparam *raw, size_t nraw)
{
	for (size_t i = 0; i < nraw; i++) {
		if (raw[i].base == NULL)
			continue;
		if (raw[i].section < 0) {
			if (raw[i].extended)
				add_param(ct, xasprintf("%s*", raw[i].base), raw[i].value);
			else
				add_param(ct, xstrdup(raw[i].base), raw[i].value);
			raw[i].value = NULL;
			continue;
		}
		/* Collect the sections of this name. */
		struct rawparam *sec[MAX_SECTIONS] = { 0 };
		int any_ext = 0;
		for (size_t j = i; j < nraw; j++)
			if (raw[j].base && raw[j].section >= 0
			    && strcasecmp(raw[j].base, raw[i].base) == 0) {
				if (raw[j].section < MAX_SECTIONS && sec[raw[j].section] == NULL)
					sec[raw[j].section] = &raw[j];
				if (raw[j].section < MAX_SECTIONS && raw[j].extended)
					any_ext = 1;
			}
		struct buf v = BUF_INIT(0);
		for (int k = 0; k < MAX_SECTIONS && sec[k]; k++) {
			if (any_ext && !sec[k]->extended) {
				if (k == 0)
					buf_puts(&v, "''");
				pct_encode(sec[k]->value, &v);
			} else
				buf_puts(&v, sec[k]->value);
		}
		buf_putc(&v, 0);
		v.len--;
		char *name = any_ext ? xasprintf("%s*", raw[i].base) : xstrdup(raw[i].base);
		add_param(ct, name, buf_steal(&v));
		/* Drop every section of the name, consumed or not. */
		char *base = raw[i].base;
		for (size_t j = i + 1; j < nraw; j++)
			if (raw[j].base && raw[j].section >= 0
			    && strcasecmp(raw[j].base, base) == 0) {
				free(raw[j].base);
				raw[j].base = NULL;
			}
	}
}

void
mime_ctype_parse(const char *s, size_t n, struct mime_ctype *ct,
    int is_disposition)
{
	struct lex lx = { s, n, 0 };
	struct rawparam raw[MAX_PARAMS];
	size_t nraw = 0;

	memset(ct, 0, sizeof(*ct));
	skip_cfws(&lx);
	ct->type = lex_token(&lx);
	if (!is_disposition) {
		skip_cfws(&lx);
		if (ct->type && lx.i < n && s[lx.i] == '/') {
			lx.i++;
			skip_cfws(&lx);
			ct->subtype = lex_token(&lx);
		}
		if (ct->subtype == NULL) {
			xfree(&ct->type);   /* "text" alone is no content type */
			return;
		}
	}
	while (lx.i < n && nraw < MAX_PARAMS) {
		/* Find the next ';' (anything else before it is junk). */
		while (lx.i < n && s[lx.i] != ';') {
			if (s[lx.i] == '"')
				free(lex_quoted(&lx));
			else
				lx.i++;
		}
		if (lx.i >= n)
			break;
		lx.i++;
		skip_cfws(&lx);
		char *name = lex_token(&lx);
		if (name == NULL)
			continue;
		skip_cfws(&lx);
		if (lx.i >= n || s[lx.i] != '=') {
			free(name);
			continue;
		}
		lx.i++;
		skip_cfws(&lx);
		char *value = lx.i < n && s[lx.i] == '"' ? lex_quoted(&lx) : lex_token(&lx);
		if (value == NULL)
			value = xstrdup("");
		struct rawparam *rp = &raw[nraw++];
		rp->base = name;
		rp->value = value;
		rp->section = -1;
		rp->extended = 0;
		/* Note: attribute tokens may not contain '*' per RFC 2231's
		 * grammar, but is_tspecial lets it through, so split here. */
		char *star = strchr(name, '*');
		if (star) {
			char *q = star + 1;
			if (*q >= '0' && *q <= '9') {
				int sn = 0;
				while (*q >= '0' && *q <= '9' && sn < 1000)
					sn = sn * 10 + (*q++ - '0');
				rp->section = sn;
				if (q - star > 2 && star[1] == '0')
					rp->section = MAX_SECTIONS;  /* leading zero: ignored */
				if (*q == '*') {
					rp->extended = 1;
					q++;
				}
			} else
				rp->extended = 1;    /* "name*": the star is the mark */
			if (*q != '\0') {          /* "a*b": not RFC 2231, keep as is */
				rp->section = -1;
				rp->extended = 0;
			} else
				*star = '\0';
		}
	}
	merge_params(ct, raw, nraw);
	for (size_t i = 0; i < nraw; i++) {
		free(raw[i].base);
		free(raw[i].value);
	}
}

void
mime_ctype_free(struct mime_ctype *ct)
{
	for (size_t i = 0; i < ct->nparams; i++) {
		free(ct->params[i].name);
		free(ct->params[i].value);
	}
	free(ct->params);
	free(ct->type);
	free(ct->subtype);
	memset(ct, 0, sizeof(*ct));
}

int
mime_param_get(const struct mime_ctype *ct, const char *name, struct buf *out)
{
	size_t nl = strlen(name);

	buf_reset(out);
	for (size_t i = 0; i < ct->nparams; i++) {
		const char *pn = ct->params[i].name, *v = ct->params[i].value;
		if (strcasecmp(pn, name) == 0) {
			buf_puts(out, v);
			return 1;
		}
		if (strncasecmp(pn, name, nl) == 0 && pn[nl] == '*' && pn[nl + 1] == '\0') {
			const char *q1 = strchr(v, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
			struct buf raw = BUF_INIT(0);
			const char *p = q2 ? q2 + 1 : v;
			for (; *p; p++) {
				if (*p == '%' && hex_digit(p[1]) >= 0 && hex_digit(p[2]) >= 0) {
					buf_putc(&raw, hex_digit(p[1]) * 16 + hex_digit(p[2]));
					p += 2;
				} else
					buf_putc(&raw, *p);
			}
			if (q1 == NULL || q1 == v
			    || to_utf8(v, (size_t)(q1 - v), raw.data ? raw.data : "", raw.len, out) < 0)
				buf_append(out, raw.data ? raw.data : "", raw.len);
			buf_free(&raw);
			return 1;
		}
	}
	return 0;
}

/* --- Parser ---------------------------------------------------------------- */

struct pctx {
	const char *msg;
	const struct mime_limits *lim;
	struct mime_tree *t;
	size_t cap;
	struct buf field;
};

static uint32_t
new_part(struct pctx *c, uint32_t parent)
{
	struct mime_tree *t = c->t;

	if (t->nparts >= c->lim->max_parts) {
		t->flags |= MIME_TF_TRUNCATED;
		return MIME_NONE;
	}
	if (t->nparts == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 8;
		t->parts = xreallocarray(t->parts, c->cap, sizeof(*t->parts));
	}
	struct mime_part *p = &t->parts[t->nparts];
	memset(p, 0, sizeof(*p));
	p->parent = parent;
	p->first_child = p->next = MIME_NONE;
	p->depth = parent == MIME_NONE ? 0 : t->parts[parent].depth + 1;
	if (parent != MIME_NONE) {
		struct mime_part *pp = &t->parts[parent];
		if (pp->first_child == MIME_NONE)
			pp->first_child = (uint32_t)t->nparts;
		else {
			uint32_t k = pp->first_child;
			while (t->parts[k].next != MIME_NONE)
				k = t->parts[k].next;
			t->parts[k].next = (uint32_t)t->nparts;
		}
		pp->nchildren++;
	}
	return (uint32_t)t->nparts++;
}

static void parse_entity(struct pctx *c, uint32_t idx, size_t off, size_t end);

/* Is the line at msg[ls..e) (e = its LF or the end) a delimiter for
 * boundary b? 0 no, 1 delimiter, 2 close delimiter. */
static int
is_delim(const char *msg, size_t ls, size_t e, const char *b, size_t blen)
{
	if (e - ls < 2 + blen || msg[ls] != '-' || msg[ls + 1] != '-'
	    || memcmp(msg + ls + 2, b, blen) != 0)
		return 0;
	size_t p = ls + 2 + blen;
	if (e - p >= 2 && msg[p] == '-' && msg[p + 1] == '-')
		return 2;
	while (p < e && (msg[p] == ' ' || msg[p] == '\t' || msg[p] == '\r'))
		p++;
	return p == e ? 1 : 0;
}

/* Split the body of multipart part idx at boundary b. 0 if the body has
 * no delimiter at all (the caller reports the part as text). */
static int
split_multipart(struct pctx *c, uint32_t idx, const char *b, size_t blen,
    int digest)
{
	const char *msg = c->msg;
	size_t pos = c->t->parts[idx].body_off;
	size_t end = pos + c->t->parts[idx].body_len;
	size_t start = 0;        /* current part's start */
	int inpart = 0, found = 0;

	while (pos < end) {
		size_t e = eol(msg, pos, end);
		int d = is_delim(msg, pos, e, b, blen);
		if (d) {
			if (!found) {
				/* The first delimiter: make sure a part can exist. */
				if (c->t->nparts >= c->lim->max_parts) {
					c->t->flags |= MIME_TF_TRUNCATED;
					return 0;
				}
				found = 1;
			}
			if (inpart) {
				size_t pe = pos;
				if (pe > start && msg[pe - 1] == '\n') {
					pe--;
					if (pe > start && msg[pe - 1] == '\r')
						pe--;
				}
				uint32_t k = new_part(c, idx);
				if (k == MIME_NONE)
					return 1;
				if (digest)
					c->t->parts[k].flags |= MIME_PF_DIGEST;
				parse_entity(c, k, start, pe);
			}
			if (d == 2)
				return 1;
			inpart = 1;
			start = e < end ? e + 1 : end;
		}
		pos = e < end ? e + 1 : end;
	}
	if (inpart) {            /* no close delimiter: the part runs to the end */
		uint32_t k = new_part(c, idx);
		if (k != MIME_NONE) {
			if (digest)
				c->t->parts[k].flags |= MIME_PF_DIGEST;
			parse_entity(c, k, start, end);
		}
	}
	return found;
}

static void
parse_entity(struct pctx *c, uint32_t idx, size_t off, size_t end)
{
	struct mime_part *p = &c->t->parts[idx];
	int noblank;

	p->hdr_off = off;
	p->hdr_len = header_len(c->msg, off, end, &noblank);
	p->body_off = off + p->hdr_len;
	p->body_len = end - p->body_off;
	if (noblank)
		p->flags |= MIME_PF_NOBLANK;
	wire_count(c->msg + off, p->hdr_len, &p->hdr_size, &p->hdr_lines);
	wire_count(c->msg + p->body_off, p->body_len, &p->body_size, &p->body_lines);

	struct mime_ctype ct;
	int have = mime_header_get(c->msg + off, p->hdr_len, "Content-Type",
	    c->lim, &c->field);
	mime_ctype_parse(have ? c->field.data : "", have ? c->field.len : 0, &ct, 0);
	int multipart = ct.type && strcasecmp(ct.type, "multipart") == 0;
	int message = ct.type ? strcasecmp(ct.type, "message") == 0
	    && (strcasecmp(ct.subtype, "rfc822") == 0 || strcasecmp(ct.subtype, "global") == 0)
	    : (p->flags & MIME_PF_DIGEST) != 0;
	uint16_t depth = p->depth;

	if ((multipart || message) && depth >= c->lim->max_depth) {
		c->t->flags |= MIME_TF_DEEP;
		c->t->parts[idx].flags |= MIME_PF_ASTEXT;
	} else if (multipart) {
		struct buf b = BUF_INIT(0);
		if (mime_param_get(&ct, "boundary", &b) && b.len > 0 && b.len <= 200) {
			int digest = strcasecmp(ct.subtype, "digest") == 0;
			c->t->parts[idx].flags |= MIME_PF_MULTIPART;
			if (!split_multipart(c, idx, b.data, b.len, digest)
			    || c->t->parts[idx].nchildren == 0)
				c->t->parts[idx].flags = (uint16_t)((c->t->parts[idx].flags
				    & ~MIME_PF_MULTIPART) | MIME_PF_ASTEXT);
		} else
			c->t->parts[idx].flags |= MIME_PF_ASTEXT;
		buf_free(&b);
	} else if (message) {
		uint32_t k = new_part(c, idx);
		if (k == MIME_NONE)
			c->t->parts[idx].flags |= MIME_PF_ASTEXT;
		else {
			c->t->parts[idx].flags |= MIME_PF_MESSAGE;
			parse_entity(c, k, c->t->parts[idx].body_off,
			    c->t->parts[idx].body_off + c->t->parts[idx].body_len);
		}
	}
	mime_ctype_free(&ct);
}

void
mime_parse(const char *msg, size_t len, const struct mime_limits *lim,
    struct mime_tree *t)
{
	struct pctx c = { msg, lim ? lim : &default_limits, t, 0, BUF_INIT(0) };
	struct mime_limits one;

	memset(t, 0, sizeof(*t));
	t->msg_len = len;
	if (c.lim->max_parts == 0) {    /* the message itself always exists */
		one = *c.lim;
		one.max_parts = 1;
		c.lim = &one;
	}
	parse_entity(&c, new_part(&c, MIME_NONE), 0, len);
	buf_free(&c.field);
}

void
mime_tree_free(struct mime_tree *t)
{
	free(t->parts);
	memset(t, 0, sizeof(*t));
}

/* --- Cache form ------------------------------------------------------------ */

#define SER_MAGIC "PMT1"
#define SER_PART 70          /* 8 u64 + u32 parent + u16 flags */

static void
put_le(struct buf *out, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		buf_putc(out, (int)((v >> (8 * i)) & 0xff));
}

static uint64_t
get_le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = bytes - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void
mime_serialize(const struct mime_tree *t, struct buf *out)
{
	buf_append(out, SER_MAGIC, 4);
	put_le(out, t->nparts, 4);
	put_le(out, t->msg_len, 8);
	put_le(out, t->flags, 4);
	for (size_t i = 0; i < t->nparts; i++) {
		const struct mime_part *p = &t->parts[i];
		put_le(out, p->hdr_off, 8);
		put_le(out, p->hdr_len, 8);
		put_le(out, p->body_off, 8);
		put_le(out, p->body_len, 8);
		put_le(out, p->hdr_size, 8);
		put_le(out, p->hdr_lines, 8);
		put_le(out, p->body_size, 8);
		put_le(out, p->body_lines, 8);
		put_le(out, p->parent, 4);
		put_le(out, p->flags, 2);
	}
}

int
mime_deserialize(const void *data, size_t n, size_t msg_len,
    const struct mime_limits *lim, struct mime_tree *t)
{
	const unsigned char *p = data;
	const uint16_t known = MIME_PF_MULTIPART | MIME_PF_MESSAGE | MIME_PF_ASTEXT
	    | MIME_PF_DIGEST | MIME_PF_NOBLANK;

	if (lim == NULL)
		lim = &default_limits;
	memset(t, 0, sizeof(*t));
	if (n < 20 || memcmp(p, SER_MAGIC, 4) != 0)
		return -1;
	uint64_t np = get_le(p + 4, 4);
	if (np == 0 || np > lim->max_parts || np > 65535 || (n - 20) / SER_PART != np
	    || (n - 20) % SER_PART != 0 || get_le(p + 8, 8) != msg_len)
		return -1;
	t->parts = xcalloc(np, sizeof(*t->parts));
	t->nparts = np;
	t->msg_len = msg_len;
	t->flags = (unsigned)get_le(p + 16, 4) & (MIME_TF_TRUNCATED | MIME_TF_DEEP);
	p += 20;
	for (size_t i = 0; i < np; i++, p += SER_PART) {
		struct mime_part *q = &t->parts[i];
		uint64_t v[8];
		for (int k = 0; k < 8; k++)
			v[k] = get_le(p + 8 * k, 8);
		uint32_t parent = (uint32_t)get_le(p + 64, 4);
		uint16_t flags = (uint16_t)get_le(p + 68, 2);
		/* Ranges: header then body, contiguous, inside the message. */
		if (v[0] > msg_len || v[1] > msg_len - v[0] || v[2] != v[0] + v[1]
		    || v[3] > msg_len - v[2] || v[4] < v[1] || v[6] < v[3]
		    || v[4] > 2 * v[1] || v[6] > 2 * v[3] || v[5] > v[1] || v[7] > v[3]
		    || (flags & ~known) != 0
		    || (flags & MIME_PF_MULTIPART && flags & MIME_PF_MESSAGE))
			goto bad;
		q->hdr_off = v[0];
		q->hdr_len = v[1];
		q->body_off = v[2];
		q->body_len = v[3];
		q->hdr_size = v[4];
		q->hdr_lines = v[5];
		q->body_size = v[6];
		q->body_lines = v[7];
		q->flags = flags;
		q->first_child = q->next = MIME_NONE;
		if (i == 0) {
			if (parent != MIME_NONE || q->hdr_off != 0 || q->body_off + q->body_len != msg_len)
				goto bad;
			q->parent = MIME_NONE;
			continue;
		}
		if (parent >= i)
			goto bad;
		struct mime_part *pp = &t->parts[parent];
		if (!(pp->flags & (MIME_PF_MULTIPART | MIME_PF_MESSAGE))
		    || pp->depth + 1u > lim->max_depth
		    || q->hdr_off < pp->body_off
		    || q->body_off + q->body_len > pp->body_off + pp->body_len
		    || (pp->flags & MIME_PF_MESSAGE && pp->nchildren > 0))
			goto bad;
		/* Siblings in order and apart; parts of a sibling's subtree were
		 * checked against the sibling, so the previous sibling is enough. */
		uint32_t last = MIME_NONE;
		for (uint32_t k = pp->first_child; k != MIME_NONE; k = t->parts[k].next)
			last = k;
		if (last != MIME_NONE) {
			if (q->hdr_off < t->parts[last].body_off + t->parts[last].body_len)
				goto bad;
			t->parts[last].next = (uint32_t)i;
		} else
			pp->first_child = (uint32_t)i;
		q->parent = parent;
		q->depth = (uint16_t)(pp->depth + 1);
		pp->nchildren++;
	}
	for (size_t i = 0; i < np; i++)
		if ((t->parts[i].flags & (MIME_PF_MULTIPART | MIME_PF_MESSAGE))
		    && t->parts[i].nchildren == 0)
			goto bad;
	return 0;
bad:
	mime_tree_free(t);
	return -1;
}

/* --- ENVELOPE -------------------------------------------------------------- */

static void
put_nstring(struct buf *out, const char *s, size_t n)
{
	imap_quote(out, s, n, IMAP_Q_NIL);
}

static void
put_field(struct buf *out, const char *hdr, size_t n, const char *name,
    const struct mime_limits *lim, struct buf *tmp)
{
	if (mime_header_get(hdr, n, name, lim, tmp))
		put_nstring(out, tmp->data ? tmp->data : "", tmp->len);
	else
		buf_puts(out, "NIL");
}

/* Address-list lexer (RFC 5322, lenient). Token kinds: 'a' atom or
 * dot-atom, 'q' quoted string, 'd' domain literal, 'c' comment, or the
 * special character itself. */
struct atok {
	int kind;
	struct buf text;         /* unquoted content */
};

static void
addr_lex(struct lex *lx, struct atok *t)
{
	buf_reset(&t->text);
	while (lx->i < lx->n && strchr(" \t\r\n", lx->s[lx->i]))
		lx->i++;
	if (lx->i >= lx->n) {
		t->kind = 0;
		return;
	}
	char c = lx->s[lx->i];
	if (c == '"') {
		char *q = lex_quoted(lx);
		buf_puts(&t->text, q);
		free(q);
		t->kind = 'q';
	} else if (c == '(') {
		int depth = 0;
		size_t start = lx->i;
		while (lx->i < lx->n) {
			c = lx->s[lx->i++];
			if (c == '\\' && lx->i < lx->n)
				lx->i++;
			else if (c == '(')
				depth++;
			else if (c == ')' && --depth == 0)
				break;
		}
		size_t e = lx->i;
		if (e > start && lx->s[e - 1] == ')' && depth == 0)
			e--;
		buf_append(&t->text, lx->s + start + 1, e > start + 1 ? e - start - 1 : 0);
		t->kind = 'c';
	} else if (c == '[') {
		size_t start = lx->i;
		while (lx->i < lx->n && lx->s[lx->i] != ']')
			lx->i++;
		if (lx->i < lx->n)
			lx->i++;
		buf_append(&t->text, lx->s + start, lx->i - start);
		t->kind = 'd';
	} else if (strchr("<>@,:;", c)) {
		lx->i++;
		t->kind = c;
	} else {
		size_t start = lx->i;
		while (lx->i < lx->n && !strchr(" \t\r\n\"()[]<>@,:;", lx->s[lx->i]))
			lx->i++;
		if (lx->i == start)
			lx->i++;          /* a stray ']' or similar: one byte */
		buf_append(&t->text, lx->s + start, lx->i - start);
		t->kind = 'a';
	}
	if (t->text.data == NULL)
		buf_puts(&t->text, "");
}

/* The next token that is not a comment: inside an angle-addr, comments
 * are only CFWS (RFC 5322 3.4.1, "<pete(his account)@silly.test>"). */
static void
addr_lex_cfws(struct lex *lx, struct atok *t)
{
	do
		addr_lex(lx, t);
	while (t->kind == 'c');
}

/* One address field: NIL when absent (b NULL, or empty without a
 * stand-in), else the text or the stand-in for an empty one. */
static void
put_addr_part(struct buf *out, const struct buf *b, const char *missing)
{
	if (b && b->len)
		put_nstring(out, b->data, b->len);
	else if (b && missing)
		put_nstring(out, missing, strlen(missing));
	else
		buf_puts(out, "NIL");
}

static void
put_addr(struct buf *out, const struct buf *name, const struct buf *adl,
    const struct buf *mbox, const struct buf *host, int *count)
{
	if (*count == 0)
		buf_putc(out, '(');
	(*count)++;
	buf_putc(out, '(');
	put_addr_part(out, name, NULL);
	buf_putc(out, ' ');
	put_addr_part(out, adl, NULL);
	buf_putc(out, ' ');
	put_addr_part(out, mbox, "MISSING_MAILBOX");
	buf_putc(out, ' ');
	put_addr_part(out, host, "MISSING_DOMAIN");
	buf_putc(out, ')');
}

static void
put_group(struct buf *out, const struct buf *name, int *count)
{
	if (*count == 0)
		buf_putc(out, '(');
	(*count)++;
	buf_puts(out, "(NIL NIL ");
	put_nstring(out, name->data ? name->data : "", name->len);
	buf_puts(out, " NIL)");
}

/* Write an address list, or NIL when it holds no address. */
static void
put_addresses(struct buf *out, const char *s, size_t n)
{
	struct lex lx = { s, n, 0 };
	struct atok tk = { 0, BUF_INIT(0) };
	struct buf phrase = BUF_INIT(0), adl = BUF_INIT(0), mbox = BUF_INIT(0),
	    host = BUF_INIT(0), comment = BUF_INIT(0);
	int count = 0, in_group = 0;

	addr_lex(&lx, &tk);
	while (tk.kind != 0 && count < MAX_ADDRS) {
		buf_reset(&phrase);
		buf_reset(&adl);
		buf_reset(&mbox);
		buf_reset(&host);
		buf_reset(&comment);
		/* A phrase, or a local part if '@' follows. */
		int words = 0;
		while (tk.kind == 'a' || tk.kind == 'q' || tk.kind == 'c' || tk.kind == 'd') {
			if (tk.kind == 'c')
				buf_append(&comment, tk.text.data, tk.text.len);
			else {
				if (words++ && tk.kind != 'd')
					buf_putc(&phrase, ' ');
				buf_append(&phrase, tk.text.data, tk.text.len);
			}
			addr_lex(&lx, &tk);
		}
		if (tk.kind == ':' && !in_group) {
			put_group(out, &phrase, &count);
			in_group = 1;
			addr_lex(&lx, &tk);
			continue;
		}
		if (tk.kind == '<') {
			/* angle-addr: [route ":"] local "@" domain ">" */
			addr_lex_cfws(&lx, &tk);
			if (tk.kind == '@') {
				while (tk.kind == '@' || tk.kind == ',') {
					buf_putc(&adl, tk.kind);
					addr_lex_cfws(&lx, &tk);
					if (tk.kind == 'a' || tk.kind == 'd') {
						buf_append(&adl, tk.text.data, tk.text.len);
						addr_lex_cfws(&lx, &tk);
					}
				}
				if (tk.kind == ':')
					addr_lex_cfws(&lx, &tk);
			}
			while (tk.kind == 'a' || tk.kind == 'q') {
				buf_append(&mbox, tk.text.data, tk.text.len);
				addr_lex_cfws(&lx, &tk);
			}
			if (tk.kind == '@') {
				addr_lex_cfws(&lx, &tk);
				while (tk.kind == 'a' || tk.kind == 'd') {
					buf_append(&host, tk.text.data, tk.text.len);
					addr_lex_cfws(&lx, &tk);
				}
			}
			while (tk.kind != 0 && tk.kind != '>' && tk.kind != ',' && tk.kind != ';')
				addr_lex_cfws(&lx, &tk);
			if (tk.kind == '>')
				addr_lex_cfws(&lx, &tk);
			if (mbox.len == 0 && host.len == 0 && phrase.len == 0) {
				/* "<>": the null path, no address */
			} else
				put_addr(out, &phrase, &adl, &mbox, &host, &count);
		} else if (tk.kind == '@') {
			/* addr-spec: the phrase was the local part (no blanks). */
			for (size_t i = 0; i < phrase.len; i++)
				if (phrase.data[i] != ' ')
					buf_putc(&mbox, phrase.data[i]);
			addr_lex(&lx, &tk);
			while (tk.kind == 'a' || tk.kind == 'd') {
				buf_append(&host, tk.text.data, tk.text.len);
				addr_lex(&lx, &tk);
			}
			while (tk.kind == 'c') {
				buf_append(&comment, tk.text.data, tk.text.len);
				addr_lex(&lx, &tk);
			}
			put_addr(out, &comment, NULL, &mbox, &host, &count);
		} else if (phrase.len > 0) {
			/* A bare word: a mailbox without domain. */
			put_addr(out, NULL, NULL, &phrase, &host, &count);
		}
		/* Skip to the next separator. */
		while (tk.kind != 0 && tk.kind != ',' && tk.kind != ';' && tk.kind != '<'
		    && tk.kind != 'a' && tk.kind != 'q')
			addr_lex(&lx, &tk);
		if (tk.kind == ';') {
			if (in_group) {
				put_addr(out, NULL, NULL, NULL, NULL, &count);
				in_group = 0;
			}
			addr_lex(&lx, &tk);
		} else if (tk.kind == ',')
			addr_lex(&lx, &tk);
	}
	if (in_group)
		put_addr(out, NULL, NULL, NULL, NULL, &count);
	buf_puts(out, count ? ")" : "NIL");
	buf_free(&tk.text);
	buf_free(&phrase);
	buf_free(&adl);
	buf_free(&mbox);
	buf_free(&host);
	buf_free(&comment);
}

static void
put_addr_field(struct buf *out, const char *hdr, size_t n, const char *name,
    const char *fallback, const struct mime_limits *lim, struct buf *tmp)
{
	/* A field given twice (RFC 5322 allows one) lists the addresses of
	 * both, as Dovecot does: none is hidden from the client. */
	if (!header_get(hdr, n, name, lim, tmp, 1) || tmp->len == 0) {
		if (fallback == NULL || !header_get(hdr, n, fallback, lim, tmp, 1)) {
			buf_puts(out, "NIL");
			return;
		}
	}
	put_addresses(out, tmp->data ? tmp->data : "", tmp->len);
}

void
mime_envelope(const char *hdr, size_t n, const struct mime_limits *lim,
    struct buf *out)
{
	struct buf tmp = BUF_INIT(0);

	buf_putc(out, '(');
	put_field(out, hdr, n, "Date", lim, &tmp);
	buf_putc(out, ' ');
	put_field(out, hdr, n, "Subject", lim, &tmp);
	buf_putc(out, ' ');
	put_addr_field(out, hdr, n, "From", NULL, lim, &tmp);
	buf_putc(out, ' ');
	put_addr_field(out, hdr, n, "Sender", "From", lim, &tmp);
	buf_putc(out, ' ');
	put_addr_field(out, hdr, n, "Reply-To", "From", lim, &tmp);
	buf_putc(out, ' ');
	put_addr_field(out, hdr, n, "To", NULL, lim, &tmp);
	buf_putc(out, ' ');
	put_addr_field(out, hdr, n, "Cc", NULL, lim, &tmp);
	buf_putc(out, ' ');
	put_addr_field(out, hdr, n, "Bcc", NULL, lim, &tmp);
	buf_putc(out, ' ');
	put_field(out, hdr, n, "In-Reply-To", lim, &tmp);
	buf_putc(out, ' ');
	put_field(out, hdr, n, "Message-ID", lim, &tmp);
	buf_putc(out, ')');
	buf_free(&tmp);
}

/* --- BODYSTRUCTURE --------------------------------------------------------- */

static void
put_params(struct buf *out, const struct mime_ctype *ct)
{
	if (ct->nparams == 0) {
		buf_puts(out, "NIL");
		return;
	}
	buf_putc(out, '(');
	for (size_t i = 0; i < ct->nparams; i++) {
		if (i)
			buf_putc(out, ' ');
		put_nstring(out, ct->params[i].name, strlen(ct->params[i].name));
		buf_putc(out, ' ');
		put_nstring(out, ct->params[i].value, strlen(ct->params[i].value));
	}
	buf_putc(out, ')');
}

/* body-ext-1part after md5 / body-ext-mpart after params: disposition,
 * language, location. */
static void
put_ext_tail(struct buf *out, const char *hdr, size_t n,
    const struct mime_limits *lim, struct buf *tmp)
{
	struct mime_ctype d;

	buf_putc(out, ' ');
	if (mime_header_get(hdr, n, "Content-Disposition", lim, tmp)) {
		mime_ctype_parse(tmp->data ? tmp->data : "", tmp->len, &d, 1);
		if (d.type) {
			buf_putc(out, '(');
			put_nstring(out, d.type, strlen(d.type));
			buf_putc(out, ' ');
			put_params(out, &d);
			buf_putc(out, ')');
		} else
			buf_puts(out, "NIL");
		mime_ctype_free(&d);
	} else
		buf_puts(out, "NIL");

	buf_putc(out, ' ');
	if (mime_header_get(hdr, n, "Content-Language", lim, tmp)) {
		/* language tags: comma separated tokens */
		struct lex lx = { tmp->data ? tmp->data : "", tmp->len, 0 };
		struct buf l = BUF_INIT(0);
		int count = 0;
		for (;;) {
			skip_cfws(&lx);
			char *tok = lex_token(&lx);
			if (tok) {
				if (count++)
					buf_putc(&l, ' ');
				put_nstring(&l, tok, strlen(tok));
				free(tok);
			}
			skip_cfws(&lx);
			if (lx.i >= lx.n || count >= 64)
				break;
			lx.i++;            /* ',' or junk */
		}
		if (count == 0)
			buf_puts(out, "NIL");
		else if (count == 1)
			buf_append(out, l.data, l.len);
		else {
			buf_putc(out, '(');
			buf_append(out, l.data, l.len);
			buf_putc(out, ')');
		}
		buf_free(&l);
	} else
		buf_puts(out, "NIL");
	buf_putc(out, ' ');
	put_field(out, hdr, n, "Content-Location", lim, tmp);
}

static void
put_body(const struct mime_tree *t, const char *msg, uint32_t idx,
    const struct mime_limits *lim, int ext, struct buf *out)
{
	const struct mime_part *p = &t->parts[idx];
	const char *hdr = msg + p->hdr_off;
	size_t hn = p->hdr_len;
	struct buf tmp = BUF_INIT(0);
	struct mime_ctype ct;
	int have;

	have = !(p->flags & MIME_PF_ASTEXT)
	    && mime_header_get(hdr, hn, "Content-Type", lim, &tmp);
	mime_ctype_parse(have ? tmp.data : "", have ? tmp.len : 0, &ct, 0);

	buf_putc(out, '(');
	if (p->flags & MIME_PF_MULTIPART && p->first_child != MIME_NONE) {
		for (uint32_t k = p->first_child; k != MIME_NONE; k = t->parts[k].next)
			put_body(t, msg, k, lim, ext, out);
		buf_putc(out, ' ');
		put_nstring(out, ct.subtype, strlen(ct.subtype));
		if (ext) {
			buf_putc(out, ' ');
			put_params(out, &ct);
			put_ext_tail(out, hdr, hn, lim, &tmp);
		}
		buf_putc(out, ')');
		mime_ctype_free(&ct);
		buf_free(&tmp);
		return;
	}

	int is_text, is_msg = (p->flags & MIME_PF_MESSAGE) && p->first_child != MIME_NONE;
	if (ct.type && !(p->flags & MIME_PF_MULTIPART) && !(ct.type
	    && strcasecmp(ct.type, "message") == 0 && !is_msg
	    && (strcasecmp(ct.subtype, "rfc822") == 0 || strcasecmp(ct.subtype, "global") == 0))) {
		put_nstring(out, ct.type, strlen(ct.type));
		buf_putc(out, ' ');
		put_nstring(out, ct.subtype, strlen(ct.subtype));
		buf_putc(out, ' ');
		is_text = strcasecmp(ct.type, "text") == 0;
		struct buf cs = BUF_INIT(0);
		if (is_text && !mime_param_get(&ct, "charset", &cs)) {
			/* RFC 2045 5.2: the default charset, said explicitly. */
			if (ct.nparams == 0)
				buf_puts(out, "(\"CHARSET\" \"US-ASCII\")");
			else {
				put_params(out, &ct);
				out->len--;   /* reopen the list to add the default */
				buf_puts(out, " \"CHARSET\" \"US-ASCII\")");
			}
		} else
			put_params(out, &ct);
		buf_free(&cs);
	} else if (is_msg) {
		buf_puts(out, "\"MESSAGE\" \"RFC822\" NIL");
		is_text = 0;
	} else {
		buf_puts(out, "\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\")");
		is_text = 1;
	}
	buf_putc(out, ' ');
	put_field(out, hdr, hn, "Content-ID", lim, &tmp);
	buf_putc(out, ' ');
	put_field(out, hdr, hn, "Content-Description", lim, &tmp);
	buf_putc(out, ' ');
	if (mime_header_get(hdr, hn, "Content-Transfer-Encoding", lim, &tmp) && tmp.len)
		put_nstring(out, tmp.data, tmp.len);
	else
		buf_puts(out, "\"7BIT\"");
	buf_printf(out, " %zu", p->body_size);
	if (is_msg) {
		const struct mime_part *m = &t->parts[p->first_child];
		buf_putc(out, ' ');
		mime_envelope(msg + m->hdr_off, m->hdr_len, lim, out);
		buf_putc(out, ' ');
		put_body(t, msg, p->first_child, lim, ext, out);
		buf_printf(out, " %zu", p->body_lines);
	} else if (is_text)
		buf_printf(out, " %zu", p->body_lines);
	if (ext) {
		buf_putc(out, ' ');
		put_field(out, hdr, hn, "Content-MD5", lim, &tmp);
		put_ext_tail(out, hdr, hn, lim, &tmp);
	}
	buf_putc(out, ')');
	mime_ctype_free(&ct);
	buf_free(&tmp);
}

void
mime_bodystructure(const struct mime_tree *t, const char *msg,
    const struct mime_limits *lim, int extensible, struct buf *out)
{
	if (t->nparts == 0)
		return;
	put_body(t, msg, 0, lim ? lim : &default_limits, extensible, out);
}

/* --- BODY[section] --------------------------------------------------------- */

static uint32_t
nth_child(const struct mime_tree *t, uint32_t idx, unsigned long k)
{
	uint32_t c = t->parts[idx].first_child;

	while (c != MIME_NONE && --k > 0)
		c = t->parts[c].next;
	return c;
}

static int
word_is(const char *s, size_t n, size_t *i, const char *w)
{
	size_t l = strlen(w);

	if (n - *i < l || strncasecmp(s + *i, w, l) != 0)
		return 0;
	*i += l;
	return 1;
}

int
mime_section_resolve(const struct mime_tree *t, const char *s, size_t n,
    struct mime_section *sec, const char **err_r)
{
	size_t i = 0;
	uint32_t cur = 0;
	int is_message = 1, numbered = 0, missing = 0;

	memset(sec, 0, sizeof(*sec));
	*err_r = NULL;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		unsigned long k = 0;
		if (s[i] == '0') {
			*err_r = "Invalid section number";
			return -1;
		}
		while (i < n && s[i] >= '0' && s[i] <= '9' && k < 100000)
			k = k * 10 + (unsigned long)(s[i++] - '0');
		if (i < n && s[i] >= '0' && s[i] <= '9') {
			*err_r = "Invalid section number";
			return -1;
		}
		numbered = 1;
		if (!missing) {
			uint32_t node = cur;
			/* A message/rfc822 part: numbers go on inside its message. */
			if (!is_message && t->parts[node].flags & MIME_PF_MESSAGE) {
				node = t->parts[node].first_child;
				is_message = 1;
			}
			if (t->parts[node].flags & MIME_PF_MULTIPART) {
				cur = nth_child(t, node, k);
				missing = cur == MIME_NONE;
			} else if (is_message && k == 1)
				cur = node;     /* a single-part message's only part */
			else
				missing = 1;
			is_message = 0;
		}
		if (i < n && s[i] == '.') {
			i++;
			if (i >= n) {
				*err_r = "Invalid section";
				return -1;
			}
		} else
			break;
	}
	sec->part = cur;
	if (i == n) {
		if (i > 0 && s[i - 1] == '.') {
			*err_r = "Invalid section";
			return -1;
		}
		sec->kind = MIME_SECT_ALL;
		if (missing)
			return 1;
		const struct mime_part *p = &t->parts[cur];
		if (is_message) {
			sec->off = 0;
			sec->len = t->msg_len;
		} else {
			sec->off = p->body_off;
			sec->len = p->body_len;
		}
		return 0;
	}
	if (word_is(s, n, &i, "MIME")) {
		if (!numbered) {
			*err_r = "MIME needs a part number";
			return -1;
		}
		sec->kind = MIME_SECT_MIME;
	} else if (word_is(s, n, &i, "TEXT"))
		sec->kind = MIME_SECT_TEXT;
	else if (word_is(s, n, &i, "HEADER.FIELDS.NOT"))
		sec->kind = MIME_SECT_FIELDS_NOT;
	else if (word_is(s, n, &i, "HEADER.FIELDS"))
		sec->kind = MIME_SECT_FIELDS;
	else if (word_is(s, n, &i, "HEADER"))
		sec->kind = MIME_SECT_HEADER;
	else {
		*err_r = "Invalid section text";
		return -1;
	}
	if (sec->kind == MIME_SECT_FIELDS || sec->kind == MIME_SECT_FIELDS_NOT) {
		if (i >= n || s[i] != ' ' || i + 1 >= n || s[i + 1] != '(') {
			*err_r = "HEADER.FIELDS needs a field list";
			return -1;
		}
		i += 2;
		for (;;) {
			while (i < n && s[i] == ' ')
				i++;
			if (i < n && s[i] == ')' && sec->nfields > 0) {
				i++;
				break;
			}
			struct lex lx = { s, n, i };
			char *f = NULL;
			if (i < n && s[i] == '"') {
				f = lex_quoted(&lx);
				if (lx.s[lx.i - 1] != '"' || lx.i == i + 1)
					xfree(&f);
			} else {
				while (lx.i < n && s[lx.i] > ' ' && s[lx.i] < 127
				    && !strchr("(){%*\"\\]:", s[lx.i]))
					lx.i++;
				if (lx.i > i)
					f = xstrndup(s + i, lx.i - i);
			}
			if (f == NULL || sec->nfields >= MIME_SECT_MAX_FIELDS) {
				free(f);
				mime_section_free(sec);
				*err_r = "Invalid header field list";
				return -1;
			}
			sec->fields[sec->nfields++] = f;
			i = lx.i;
		}
	}
	if (i != n) {
		mime_section_free(sec);
		*err_r = "Invalid section";
		return -1;
	}
	if (missing)
		return 1;
	const struct mime_part *p = &t->parts[cur];
	if (sec->kind == MIME_SECT_MIME) {
		sec->off = p->hdr_off;
		sec->len = p->hdr_len;
		return 0;
	}
	/* HEADER*, TEXT: of the message itself or of a message/rfc822 part. */
	if (!is_message) {
		if (!(p->flags & MIME_PF_MESSAGE))
			return 1;
		cur = p->first_child;
		p = &t->parts[cur];
	}
	sec->part = cur;
	if (sec->kind == MIME_SECT_TEXT) {
		sec->off = p->body_off;
		sec->len = p->body_len;
	} else {
		sec->off = p->hdr_off;
		sec->len = p->hdr_len;
	}
	return 0;
}

void
mime_section_free(struct mime_section *sec)
{
	for (size_t i = 0; i < sec->nfields; i++)
		xfree(&sec->fields[i]);
	sec->nfields = 0;
}

size_t
mime_wire_size(const char *p, size_t n)
{
	size_t size, lines;

	wire_count(p, n, &size, &lines);
	return size;
}

/* Append the part of s[0..k) that lies in [off, end), s sitting at wire
 * position w. */
static void
put_overlap(struct buf *out, const char *s, size_t k, size_t w, size_t off,
    size_t end)
{
	if (w >= end || (w < off && k <= off - w))
		return;
	size_t lo = w > off ? w : off, hi = k > end - w ? end : w + k;
	buf_append(out, s + (lo - w), hi - lo);
}

void
mime_to_crlf_range(const char *p, size_t n, size_t off, size_t len,
    struct buf *out)
{
	size_t i = 0, w = 0, end = len > SIZE_MAX - off ? SIZE_MAX : off + len;

	while (i < n && w < end) {
		const char *q = memchr(p + i, '\n', n - i);
		size_t e = q ? (size_t)(q - p) : n;
		put_overlap(out, p + i, e - i, w, off, end);
		w += e - i;
		if (q) {
			/* A bare LF goes out as CRLF; a CR before it is already sent. */
			int bare = e == 0 || p[e - 1] != '\r';
			put_overlap(out, bare ? "\r\n" : "\n", bare ? 2 : 1, w, off, end);
			w += bare ? 2 : 1;
			e++;
		}
		i = e;
	}
	if (out->data == NULL)
		buf_puts(out, "");
}

void
mime_to_crlf(const char *p, size_t n, struct buf *out)
{
	mime_to_crlf_range(p, n, 0, SIZE_MAX, out);
}

void
mime_section_fetch(const char *msg, const struct mime_section *sec,
    struct buf *out)
{
	if (sec->kind != MIME_SECT_FIELDS && sec->kind != MIME_SECT_FIELDS_NOT) {
		mime_to_crlf(msg + sec->off, sec->len, out);
		return;
	}
	const char *hdr = msg + sec->off;
	struct mime_field f;
	size_t pos = 0;
	unsigned count = 0;
	while (count++ < default_limits.max_header_fields
	    && mime_field_next(hdr, sec->len, &pos, &f)) {
		int match = 0;
		for (size_t k = 0; k < sec->nfields && !match; k++)
			match = strlen(sec->fields[k]) == f.name_len
			    && strncasecmp(sec->fields[k], f.name, f.name_len) == 0;
		if (match == (sec->kind == MIME_SECT_FIELDS)) {
			mime_to_crlf(f.line, f.line_len, out);
			if (f.line[f.line_len - 1] != '\n')
				buf_puts(out, "\r\n");
		}
	}
	/* The blank line goes with the fields, unless the message has none
	 * (RFC 9051 7.5.2: a message with no body and no blank line). */
	size_t e = sec->len;
	if (e > 0 && hdr[e - 1] == '\n') {
		e--;
		if (e > 0 && hdr[e - 1] == '\r')
			e--;
		if (e == 0 || hdr[e - 1] == '\n')
			buf_puts(out, "\r\n");
	}
	if (out->data == NULL)
		buf_puts(out, "");
}

/* --- Content-Transfer-Encoding --------------------------------------------- */

/* wire: an identity encoding's bytes in CRLF wire form (BINARY). */
static int
cte_decode(const char *enc, const char *p, size_t n, int wire, struct buf *out)
{
	if (enc == NULL || *enc == '\0' || strcasecmp(enc, "7bit") == 0
	    || strcasecmp(enc, "8bit") == 0 || strcasecmp(enc, "binary") == 0) {
		if (wire)
			mime_to_crlf(p, n, out);
		else
			buf_append(out, p, n);
		return 0;
	}
	if (strcasecmp(enc, "base64") == 0) {
		(void)b64_decode(p, n, out);
		return 0;
	}
	if (strcasecmp(enc, "quoted-printable") != 0)
		return -1;
	size_t i = 0;
	while (i < n) {
		size_t e = eol(p, i, n), le = e;
		/* Trailing blanks before a line end are transport padding. */
		if (le > i && p[le - 1] == '\r')
			le--;
		size_t ce = le;
		while (ce > i && (p[ce - 1] == ' ' || p[ce - 1] == '\t'))
			ce--;
		if (e == n)
			ce = le = e;    /* last line without line end: keep all */
		int soft = 0;
		for (size_t k = i; k < ce; k++) {
			if (p[k] != '=') {
				buf_putc(out, p[k]);
				continue;
			}
			if (k + 1 == ce) {
				soft = 1;       /* "=" at the end of the line */
				break;
			}
			if (k + 2 < ce
			    && hex_digit(p[k + 1]) >= 0 && hex_digit(p[k + 2]) >= 0) {
				buf_putc(out, hex_digit(p[k + 1]) * 16 + hex_digit(p[k + 2]));
				k += 2;
			} else
				buf_putc(out, '=');   /* broken escape: kept literally */
		}
		if (e < n && !soft)
			buf_puts(out, "\r\n");
		i = e < n ? e + 1 : n;
	}
	if (out->data == NULL)
		buf_puts(out, "");
	return 0;
}

int
mime_cte_decode(const char *enc, const char *p, size_t n, struct buf *out)
{
	return cte_decode(enc, p, n, 0, out);
}

static int part_decode(const struct mime_tree *t, const char *msg, uint32_t i,
    int wire, struct buf *out);

int
mime_part_decode(const struct mime_tree *t, const char *msg, uint32_t i,
    struct buf *out)
{
	return part_decode(t, msg, i, 0, out);
}

int
mime_part_binary(const struct mime_tree *t, const char *msg, uint32_t i,
    struct buf *out)
{
	return part_decode(t, msg, i, 1, out);
}

static int
part_decode(const struct mime_tree *t, const char *msg, uint32_t i, int wire,
    struct buf *out)
{
	const struct mime_part *pt = &t->parts[i];
	struct buf enc = BUF_INIT(0);
	int have = mime_header_get(msg + pt->hdr_off, pt->hdr_len,
	    "Content-Transfer-Encoding", NULL, &enc);
	int r = cte_decode(have ? enc.data : NULL, msg + pt->body_off,
	    pt->body_len, wire, out);
	buf_free(&enc);
	return r;
}

int
mime_charset_to_utf8(const char *cs, size_t cslen, const char *p, size_t n,
    struct buf *out)
{
	return to_utf8(cs, cslen, p, n, out);
}
