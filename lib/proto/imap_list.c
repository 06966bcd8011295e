/*
 * imap_list - mailbox names, STATUS, and the LIST family for imapd
 * (contract in imap_list.h).
 *
 * Names: a client's mailbox argument is decoded (modified UTF-7 for rev1,
 * UTF-8 for rev2 / UTF8=ACCEPT), "INBOX" in any case (also as the first
 * level, "inbox/x") becomes "INBOX", one trailing '/' is dropped (RFC 3501
 * CREATE "foo/"), and then it must pass proto/mboxname.c, the very rule
 * the store applies before it builds a path.
 *
 * LIST (RFC 5258 section 3, RFC 3501 6.3.8/6.3.9, RFC 6154, RFC 5819):
 * every name that exists, is subscribed, or is a parent of one of those is
 * a candidate; a candidate is returned when a pattern matches it and
 *   - it satisfies the selection (exists; or subscribed with SUBSCRIBED;
 *     and has a special use with SPECIAL-USE), or
 *   - RECURSIVEMATCH with SUBSCRIBED, and a descendant satisfies the
 *     selection without matching a pattern: CHILDINFO ("SUBSCRIBED"), or
 *   - (LIST without SUBSCRIBED/SPECIAL-USE selection, and LSUB) a pattern
 *     ending in '%' matched it and a descendant satisfies the selection:
 *     the "level of hierarchy" of RFC 3501, returned \Noselect (LSUB and
 *     plain LIST) or \NonExistent (LIST-EXTENDED syntax).
 * Attributes: \NonExistent (or \Noselect in plain LIST) for names that do
 * not exist; \Subscribed with the SUBSCRIBED selection or return option;
 * \HasChildren/\HasNoChildren (existing descendants) in plain LIST and
 * with RETURN (CHILDREN); special-use attributes in plain LIST and with
 * the SPECIAL-USE selection or return option. LSUB returns subscribed
 * names with no attributes, and \Noselect for the unsubscribed parents of
 * the '%' rule. The output is in hierarchy order: INBOX and its children
 * first, every parent just before its children ('/' sorts lowest).
 *
 * Limits: patterns are at most IMAP_LIST_PATTERN_MAX bytes (after the
 * reference is prefixed) and at most IMAP_LIST_PATTERNS_MAX per command;
 * matching is bit-parallel (a row of name-prefix bits per pattern byte,
 * runs of wildcards collapsed): a pattern costs its length times
 * (name length / 64) word operations per name.
 *
 * BUGS: RECURSIVEMATCH with SPECIAL-USE but without SUBSCRIBED is
 * accepted and has no effect (RFC 6154 defines no CHILDINFO for it). The
 * reference is prefixed to the pattern as it is (RFC 3501 leaves a
 * reference without a trailing '/' to the implementation).
 */
#include "proto/imap_list.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/mboxname.h"
#include "proto/mutf7.h"
#include "store/index.h"   /* struct mbx_status: the numbers STATUS reports */
#include "util/alloc.h"
#include "util/strv.h"

#define IMAP_LIST_PATTERN_MAX 1024
#define IMAP_LIST_PATTERNS_MAX 64
/* A modified UTF-7 name is at most about 8/3 of its UTF-8 form. */
#define IMAP_MAILBOX_ARG_MAX (4 * MBOXNAME_LEN_MAX)

/* "INBOX" or "INBOX/...", the first level in any case. */
static int
inbox_level(const char *s)
{
	return strncasecmp(s, "INBOX", 5) == 0 && (s[5] == '\0' || s[5] == '/');
}

/* The wire bytes of a string argument to UTF-8 (xmalloc'd in *out_r). */
static int
arg_decode(const struct imap_arg *a, int utf8, size_t max, char **out_r,
    const char **err_r)
{
	struct buf b = BUF_INIT(0);

	*out_r = NULL;
	if (!imap_arg_is_string(a) || a->literal8) {
		*err_r = "Mailbox name expected";
		return -1;
	}
	if (a->len > max) {
		*err_r = "Mailbox name is too long";
		return -1;
	}
	if (memchr(a->str, '\0', a->len) != NULL) {
		*err_r = "Mailbox name has control characters";
		return -1;
	}
	if (utf8) {
		if (!utf8_valid(a->str, a->len)) {
			*err_r = "Mailbox name is not valid UTF-8";
			return -1;
		}
		buf_append(&b, a->str, a->len);
	} else if (mutf7_to_utf8(a->str, a->len, &b) != 0) {
		buf_free(&b);
		*err_r = "Mailbox name is not valid modified UTF-7";
		return -1;
	} else if (b.len > 0 && memchr(b.data, '\0', b.len) != NULL) {
		buf_free(&b);     /* "&AAA-" is U+0000: it would cut the name short */
		*err_r = "Mailbox name has control characters";
		return -1;
	}
	*out_r = b.data != NULL ? buf_steal(&b) : xstrdup("");
	return 0;
}

int
imap_mailbox_arg(const struct imap_arg *a, int utf8, char **name_r, const char **err_r)
{
	char *name;
	size_t len;

	*name_r = NULL;
	if (arg_decode(a, utf8, IMAP_MAILBOX_ARG_MAX, &name, err_r) != 0)
		return -1;
	len = strlen(name);
	if (len > 1 && name[len - 1] == IMAP_HIER_SEP)
		name[--len] = '\0';
	if (inbox_level(name))
		memcpy(name, "INBOX", 5);
	if (mboxname_check(name, len, err_r) != 0) {
		free(name);
		return -1;
	}
	*name_r = name;
	return 0;
}

void
imap_write_mailbox(struct buf *out, const char *name, int utf8)
{
	struct buf m = BUF_INIT(0);
	size_t len = strlen(name);
	/* "~x" is a legal atom, but a leading '~' reads as literal8 to some
	 * parsers (ours among them): quote it. */
	unsigned atom = name[0] == '~' ? 0 : IMAP_Q_ATOM;

	if (utf8)
		imap_quote(out, name, len, atom | IMAP_Q_UTF8);
	else if (utf8_to_mutf7(name, len, &m) == 0)
		imap_quote(out, buf_cstr(&m), m.len, atom);
	else
		imap_quote(out, name, len, atom);   /* not UTF-8: a literal */
	buf_free(&m);
}

/* ---- STATUS ---- */

/* A keyword of the protocol and its bit. */
struct word_bit {
	const char *name;
	unsigned bit;
};

/* In the order "* STATUS" writes them. */
static const struct word_bit status_atts[] = {
	{ "MESSAGES", IMAP_ST_MESSAGES },
	{ "RECENT", IMAP_ST_RECENT },
	{ "UIDNEXT", IMAP_ST_UIDNEXT },
	{ "UIDVALIDITY", IMAP_ST_UIDVALIDITY },
	{ "UNSEEN", IMAP_ST_UNSEEN },
	{ "DELETED", IMAP_ST_DELETED },
	{ "SIZE", IMAP_ST_SIZE },
	{ "HIGHESTMODSEQ", IMAP_ST_HIGHESTMODSEQ },
};

static int
atom_is(const struct imap_arg *a, const char *word)
{
	return a != NULL && a->kind == IMAP_ARG_ATOM && a->len == strlen(word) &&
	    strncasecmp(a->str, word, a->len) == 0;
}

/* The bit of the atom a in t[0..n) (any case), 0 if it is none of them. */
static unsigned
word_bit_of(const struct word_bit *t, size_t n, const struct imap_arg *a)
{
	for (size_t i = 0; i < n; i++)
		if (atom_is(a, t[i].name))
			return t[i].bit;
	return 0;
}

int
imap_status_items_parse(const struct imap_command *c, size_t li, unsigned *items_r,
    const char **err_r)
{
	const struct imap_arg *a;
	unsigned items = 0;
	size_t k;

	*items_r = 0;
	if (li >= c->nargs || c->args[li].kind != IMAP_ARG_LIST || c->args[li].nchildren == 0) {
		*err_r = "STATUS items expected";
		return -1;
	}
	for (k = 0; (a = imap_arg_child(c, li, k)) != NULL; k++) {
		unsigned bit = word_bit_of(status_atts, ARRAY_SIZE(status_atts), a);

		if (bit == 0) {
			*err_r = "Unknown STATUS item";
			return -1;
		}
		items |= bit;
	}
	*items_r = items;
	return 0;
}

void
imap_status_write(struct buf *out, const char *name, int utf8, unsigned items,
    const struct mbx_status *st, uint32_t recent, uint32_t deleted)
{
	const char *sep = "";

	buf_puts(out, "* STATUS ");
	imap_write_mailbox(out, name, utf8);
	buf_puts(out, " (");
	for (size_t i = 0; i < ARRAY_SIZE(status_atts); i++) {
		uint64_t v;

		if (!(items & status_atts[i].bit))
			continue;
		switch (status_atts[i].bit) {
		case IMAP_ST_MESSAGES: v = st->messages; break;
		case IMAP_ST_RECENT: v = recent; break;
		case IMAP_ST_UIDNEXT: v = st->uidnext; break;
		case IMAP_ST_UIDVALIDITY: v = st->uidvalidity; break;
		case IMAP_ST_UNSEEN: v = st->unseen; break;
		case IMAP_ST_DELETED: v = deleted; break;
		case IMAP_ST_SIZE: v = st->size; break;
		default: v = st->highestmodseq; break;
		}
		buf_printf(out, "%s%s %" PRIu64, sep, status_atts[i].name, v);
		sep = " ";
	}
	buf_puts(out, ")\r\n");
}

/* ---- LIST / LSUB arguments ---- */

void
imap_list_req_free(struct imap_list_req *r)
{
	free(r->ref);
	r->ref = NULL;
	if (r->patterns != NULL)
		strv_free(&r->patterns);
}

static const struct word_bit sel_opts[] = {
	{ "SUBSCRIBED", IMAP_LS_SUBSCRIBED },
	{ "REMOTE", IMAP_LS_REMOTE },
	{ "RECURSIVEMATCH", IMAP_LS_RECURSIVEMATCH },
	{ "SPECIAL-USE", IMAP_LS_SPECIALUSE },
}, ret_opts[] = {
	{ "SUBSCRIBED", IMAP_LR_SUBSCRIBED },
	{ "CHILDREN", IMAP_LR_CHILDREN },
	{ "SPECIAL-USE", IMAP_LR_SPECIALUSE },
	{ "STATUS", IMAP_LR_STATUS },
};

static size_t
arg_index(const struct imap_command *c, const struct imap_arg *a)
{
	return (size_t)(a - c->args);
}

static int
list_add_pattern(struct imap_list_req *r, const struct imap_arg *a, int utf8,
    const char **err_r)
{
	char *p;

	if (strv_len(r->patterns) >= IMAP_LIST_PATTERNS_MAX) {
		*err_r = "Too many LIST patterns";
		return -1;
	}
	if (arg_decode(a, utf8, IMAP_LIST_PATTERN_MAX, &p, err_r) != 0)
		return -1;
	if (strlen(r->ref) + strlen(p) > IMAP_LIST_PATTERN_MAX) {
		free(p);
		*err_r = "LIST pattern is too long";
		return -1;
	}
	strv_push(&r->patterns, p);
	free(p);
	return 0;
}

int
imap_list_parse(const struct imap_command *c, int lsub, int utf8, struct imap_list_req *r,
    const char **err_r)
{
	const struct imap_arg *a, *o;
	size_t k = 0, j;

	memset(r, 0, sizeof(*r));
	r->lsub = lsub;
	r->patterns = xcalloc(1, sizeof(char *));
	a = imap_arg_child(c, 0, k);
	if (!lsub && a != NULL && a->kind == IMAP_ARG_LIST) {
		r->extended = 1;
		for (j = 0; (o = imap_arg_child(c, arg_index(c, a), j)) != NULL; j++) {
			unsigned bit = word_bit_of(sel_opts, ARRAY_SIZE(sel_opts), o);

			if (bit == 0) {
				*err_r = "Unknown LIST selection option";
				goto bad;
			}
			r->sel |= bit;
		}
		a = imap_arg_child(c, 0, ++k);
	}
	/* RFC 5258 3.1: RECURSIVEMATCH alone (or with REMOTE only) is BAD. */
	if ((r->sel & IMAP_LS_RECURSIVEMATCH) &&
	    !(r->sel & (IMAP_LS_SUBSCRIBED | IMAP_LS_SPECIALUSE))) {
		*err_r = "RECURSIVEMATCH needs another selection option";
		goto bad;
	}
	if (a == NULL || a->kind == IMAP_ARG_LIST || a->kind == IMAP_ARG_NIL) {
		*err_r = "Reference name expected";
		goto bad;
	}
	if (arg_decode(a, utf8, IMAP_LIST_PATTERN_MAX, &r->ref, err_r) != 0)
		goto bad;
	a = imap_arg_child(c, 0, ++k);
	if (a != NULL && a->kind == IMAP_ARG_LIST && !lsub) {
		r->extended = 1;
		for (j = 0; (o = imap_arg_child(c, arg_index(c, a), j)) != NULL; j++)
			if (list_add_pattern(r, o, utf8, err_r) != 0)
				goto bad;
		if (j == 0) {
			*err_r = "LIST pattern expected";
			goto bad;
		}
	} else if (a == NULL || !imap_arg_is_string(a)) {
		*err_r = "LIST pattern expected";
		goto bad;
	} else if (list_add_pattern(r, a, utf8, err_r) != 0)
		goto bad;
	a = imap_arg_child(c, 0, ++k);
	if (a != NULL && !lsub && atom_is(a, "RETURN")) {
		r->extended = 1;
		a = imap_arg_child(c, 0, ++k);
		if (a == NULL || a->kind != IMAP_ARG_LIST) {
			*err_r = "RETURN options expected";
			goto bad;
		}
		for (j = 0; (o = imap_arg_child(c, arg_index(c, a), j)) != NULL; j++) {
			unsigned bit = word_bit_of(ret_opts, ARRAY_SIZE(ret_opts), o);

			if (bit == 0) {
				*err_r = "Unknown LIST return option";
				goto bad;
			}
			r->ret |= bit;
			if (bit == IMAP_LR_STATUS) {
				unsigned items;

				o = imap_arg_child(c, arg_index(c, a), ++j);
				if (o == NULL || imap_status_items_parse(c, arg_index(c, o), &items,
				    err_r) != 0) {
					if (o == NULL)
						*err_r = "STATUS items expected";
					goto bad;
				}
				r->status_items |= items;
			}
		}
		a = imap_arg_child(c, 0, ++k);
	}
	if (a != NULL) {
		*err_r = "Unexpected arguments after LIST pattern";
		goto bad;
	}
	return 0;
bad:
	imap_list_req_free(r);
	return -1;
}

/* ---- matching ---- */

/* ref + pattern with each run of wildcards collapsed ("%*" is "*", "%%"
 * is "%"): the same matches, a shorter program. */
static char *
canon_pattern(const char *ref, const char *pattern)
{
	char *s = xasprintf("%s%s", ref, pattern), *w = s;

	for (const char *p = s; *p != '\0';) {
		if (*p != '*' && *p != '%') {
			*w++ = *p++;
			continue;
		}
		int star = 0;
		while (*p == '*' || *p == '%')
			star |= *p++ == '*';
		*w++ = star ? '*' : '%';
	}
	*w = '\0';
	return s;
}

/* A name prepared for matching, bit-parallel: bit j of a row (j = 0 ..
 * len) stands for "the pattern so far matches the first j bytes".
 * byte[c] has bit j set when name byte j-1 is c (on the INBOX level also
 * for the other case of a letter), noslash the bits whose byte is not
 * '/'. One pattern byte then costs a few operations per 64 name bytes. */
struct nmatch {
	size_t len, w;                 /* bytes; 64-bit words per row */
	uint64_t *byte;                /* 256 rows */
	uint64_t *noslash;
	uint64_t *row, *tmp;
};

static void
nmatch_init(struct nmatch *m, const char *n)
{
	size_t inbox = inbox_level(n) ? 5 : 0;

	m->len = strlen(n);
	m->w = (m->len + 1 + 63) / 64;
	m->byte = xcalloc(259 * m->w, sizeof(uint64_t));
	m->noslash = m->byte + 256 * m->w;
	m->row = m->noslash + m->w;
	m->tmp = m->row + m->w;
	for (size_t j = 1; j <= m->len; j++) {
		unsigned char c = (unsigned char)n[j - 1];
		uint64_t bit = (uint64_t)1 << (j % 64);

		m->byte[c * m->w + j / 64] |= bit;
		if (j <= inbox) {
			m->byte[(unsigned char)tolower(c) * m->w + j / 64] |= bit;
			m->byte[(unsigned char)toupper(c) * m->w + j / 64] |= bit;
		}
		if (c != '/')
			m->noslash[j / 64] |= bit;
	}
}

static void
nmatch_free(struct nmatch *m)
{
	free(m->byte);
	m->byte = NULL;
}

/* 1 if the canonical pattern p matches the prepared name. */
static int
nmatch_run(struct nmatch *m, const char *p)
{
	size_t w = m->w, k;
	uint64_t *row = m->row, *t = m->tmp, any;

	memset(row, 0, w * sizeof(uint64_t));
	row[0] = 1;
	for (; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '*') {
			/* every prefix from the shortest one matched so far */
			for (k = 0; k < w && row[k] == 0; k++)
				;
			if (k == w)
				return 0;
			row[k] |= ~(row[k] - 1);
			for (k++; k < w; k++)
				row[k] = ~(uint64_t)0;
		} else if (c == '%') {
			/* from each matched prefix on through bytes that are not
			 * '/': with T = row | noslash, adding row to T carries
			 * through each run of T from its first row bit; the bits
			 * that change are the run (RFC 3501 '%'). */
			uint64_t carry = 0;

			for (k = 0; k < w; k++) {
				uint64_t tk = row[k] | m->noslash[k], sum = tk + row[k], c2;

				c2 = sum < tk;
				sum += carry;
				c2 |= sum < carry;
				carry = c2;
				t[k] = (((sum ^ tk) & tk) | row[k]);
			}
			memcpy(row, t, w * sizeof(uint64_t));
		} else {
			uint64_t in = 0, *mask = m->byte + (size_t)c * w;

			for (k = 0; k < w; k++) {
				uint64_t out = row[k] >> 63;

				row[k] = ((row[k] << 1) | in) & mask[k];
				in = out;
			}
		}
		/* keep only prefixes of the name (bits 0 .. len) */
		if ((m->len + 1) % 64 != 0)
			row[w - 1] &= ((uint64_t)1 << ((m->len + 1) % 64)) - 1;
		for (any = 0, k = 0; k < w; k++)
			any |= row[k];
		if (any == 0)
			return 0;
	}
	return (row[m->len / 64] >> (m->len % 64)) & 1;
}

int
imap_list_match(const char *ref, const char *pattern, const char *name)
{
	char *p = canon_pattern(ref, pattern);
	struct nmatch m;
	int ok;

	nmatch_init(&m, name);
	ok = nmatch_run(&m, p);
	nmatch_free(&m);
	free(p);
	return ok;
}

/* ---- LIST ---- */

enum {
	C_EXISTS = 1,
	C_SUB = 2,
	C_MATCH = 4,
	C_MATCH_PCT = 8,           /* matched by a pattern ending in '%' */
	C_HAS_CHILD = 16,          /* an existing descendant */
	C_SEL = 32,                /* satisfies the selection */
	C_SEL_DESC = 64,           /* a descendant satisfies it */
	C_SEL_DESC_UNMATCHED = 128,/* ... and matches no pattern */
};

struct cand {
	char *name;
	unsigned f;
};

/* INBOX and its children first, then parents right before children. */
static int
hier_cmp(const char *a, const char *b)
{
	int ia = inbox_level(a), ib = inbox_level(b);

	if (ia != ib)
		return ia ? -1 : 1;
	for (;; a++, b++) {
		unsigned char ca = (unsigned char)*a, cb = (unsigned char)*b;

		if (ca == cb) {
			if (ca == '\0')
				return 0;
			continue;
		}
		if (ca == '\0')
			return -1;
		if (cb == '\0')
			return 1;
		if (ca == '/')
			return -1;
		if (cb == '/')
			return 1;
		return ca < cb ? -1 : 1;
	}
}

static int
cand_cmp(const void *a, const void *b)
{
	return hier_cmp(((const struct cand *)a)->name, ((const struct cand *)b)->name);
}

static void
cand_add(struct cand **v, size_t *n, size_t *cap, const char *name, size_t len, unsigned f)
{
	char *s;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 32;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	s = xmalloc(len + 1);
	memcpy(s, name, len);
	s[len] = '\0';
	if (inbox_level(s))
		memcpy(s, "INBOX", 5);
	(*v)[*n].name = s;
	(*v)[*n].f = f;
	(*n)++;
}

/* The name and each of its parents ("a/b/c": "a", "a/b"). */
static void
cand_add_tree(struct cand **v, size_t *n, size_t *cap, const char *name, unsigned f)
{
	for (const char *p = strchr(name, '/'); p != NULL; p = strchr(p + 1, '/'))
		cand_add(v, n, cap, name, (size_t)(p - name), 0);
	cand_add(v, n, cap, name, strlen(name), f);
}

/* Set bits on every parent of c[i] present in the sorted array. */
static void
mark_parents(struct cand *c, size_t n, size_t i, unsigned bits)
{
	const char *name = c[i].name;

	for (const char *p = strchr(name, '/'); p != NULL; p = strchr(p + 1, '/')) {
		struct cand key;
		char *pre = xmalloc((size_t)(p - name) + 1);
		struct cand *hit;

		memcpy(pre, name, (size_t)(p - name));
		pre[p - name] = '\0';
		key.name = pre;
		hit = bsearch(&key, c, n, sizeof(*c), cand_cmp);
		if (hit != NULL)
			hit->f |= bits;
		free(pre);
	}
}

static void
entry_add(struct imap_list_entry **e, size_t *n, size_t *cap, const char *name,
    unsigned attrs, int childinfo)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*e = xreallocarray(*e, *cap, sizeof(**e));
	}
	(*e)[*n].name = xstrdup(name);
	(*e)[*n].attrs = attrs;
	(*e)[*n].childinfo_subscribed = childinfo;
	(*n)++;
}

int
imap_list_run(const struct imap_list_req *r, char *const *folders, char *const *subs,
    unsigned (*special)(const char *name), struct imap_list_entry **e_r, size_t *n_r)
{
	struct cand *c = NULL;
	size_t nc = 0, capc = 0, cape = 0, i, j, npat = 0;
	char **pats = xcalloc(strv_len(r->patterns) + 1, sizeof(char *));
	int recursive, pct_rule, want_children, want_special, want_subscribed;

	*e_r = NULL;
	*n_r = 0;
	for (i = 0; r->patterns[i] != NULL; i++)
		if (r->patterns[i][0] != '\0')
			pats[npat++] = canon_pattern(r->ref, r->patterns[i]);
	if (npat == 0) {
		/* Only "": the hierarchy delimiter and the (empty) root name. */
		free(pats);
		entry_add(e_r, n_r, &cape, "", IMAP_LA_NOSELECT, 0);
		return 0;
	}
	for (i = 0; folders != NULL && folders[i] != NULL; i++)
		cand_add_tree(&c, &nc, &capc, folders[i], C_EXISTS);
	for (i = 0; subs != NULL && subs[i] != NULL; i++)
		cand_add_tree(&c, &nc, &capc, subs[i], C_SUB);
	if (nc > 0)
		qsort(c, nc, sizeof(*c), cand_cmp);
	for (i = j = 0; i < nc; i++) {    /* merge duplicates */
		if (j > 0 && hier_cmp(c[j - 1].name, c[i].name) == 0) {
			c[j - 1].f |= c[i].f;
			free(c[i].name);
		} else
			c[j++] = c[i];
	}
	nc = j;

	for (i = 0; i < nc; i++) {
		unsigned f = c[i].f;
		int sel;

		struct nmatch m;

		nmatch_init(&m, c[i].name);
		for (j = 0; j < npat; j++)
			if (nmatch_run(&m, pats[j])) {
				f |= C_MATCH;
				if (pats[j][strlen(pats[j]) - 1] == '%')
					f |= C_MATCH_PCT;
			}
		nmatch_free(&m);
		if (r->lsub)
			sel = (f & C_SUB) != 0;
		else {
			sel = (f & ((r->sel & IMAP_LS_SUBSCRIBED) ? C_SUB : C_EXISTS)) != 0;
			if ((r->sel & IMAP_LS_SPECIALUSE) &&
			    (!(f & C_EXISTS) || special == NULL || special(c[i].name) == 0))
				sel = 0;
		}
		c[i].f = f | (sel ? C_SEL : 0);
	}
	for (i = 0; i < nc; i++) {
		unsigned bits = 0;

		if (c[i].f & C_EXISTS)
			bits |= C_HAS_CHILD;
		if (c[i].f & C_SEL)
			bits |= C_SEL_DESC | ((c[i].f & C_MATCH) ? 0 : C_SEL_DESC_UNMATCHED);
		if (bits != 0)
			mark_parents(c, nc, i, bits);
	}

	recursive = !r->lsub && (r->sel & IMAP_LS_RECURSIVEMATCH) && (r->sel & IMAP_LS_SUBSCRIBED);
	pct_rule = r->lsub || !(r->sel & (IMAP_LS_SUBSCRIBED | IMAP_LS_SPECIALUSE));
	want_children = !r->lsub && (!r->extended || (r->ret & IMAP_LR_CHILDREN));
	want_special = !r->lsub && (!r->extended || (r->ret & IMAP_LR_SPECIALUSE) ||
	    (r->sel & IMAP_LS_SPECIALUSE));
	want_subscribed = !r->lsub && ((r->sel & IMAP_LS_SUBSCRIBED) ||
	    (r->ret & IMAP_LR_SUBSCRIBED));
	for (i = 0; i < nc; i++) {
		unsigned f = c[i].f, attrs = 0;
		int childinfo = recursive && (f & C_SEL_DESC_UNMATCHED);

		if (!(f & C_MATCH))
			continue;
		if (!(f & C_SEL) && !childinfo &&
		    !(pct_rule && (f & C_MATCH_PCT) && (f & C_SEL_DESC)))
			continue;
		if (r->lsub) {
			if (!(f & C_SEL))
				attrs |= IMAP_LA_NOSELECT;
		} else {
			if (!(f & C_EXISTS))
				attrs |= r->extended ? IMAP_LA_NONEXISTENT : IMAP_LA_NOSELECT;
			if (want_subscribed && (f & C_SUB))
				attrs |= IMAP_LA_SUBSCRIBED;
			if (want_children)
				attrs |= (f & C_HAS_CHILD) ? IMAP_LA_HASCHILDREN : IMAP_LA_HASNOCHILDREN;
			if (want_special && (f & C_EXISTS) && special != NULL)
				attrs |= special(c[i].name) & IMAP_LA_SPECIAL;
		}
		entry_add(e_r, n_r, &cape, c[i].name, attrs, childinfo);
	}
	for (i = 0; i < nc; i++)
		free(c[i].name);
	free(c);
	for (j = 0; j < npat; j++)
		free(pats[j]);
	free(pats);
	return 0;
}

void
imap_list_entries_free(struct imap_list_entry **e, size_t n)
{
	if (*e == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free((*e)[i].name);
	free(*e);
	*e = NULL;
}

/* In the order they are written. */
static const struct {
	unsigned bit;
	const char *name;
} list_attrs[] = {
	{ IMAP_LA_NOSELECT, "\\Noselect" },
	{ IMAP_LA_NOINFERIORS, "\\NoInferiors" },
	{ IMAP_LA_SUBSCRIBED, "\\Subscribed" },
	{ IMAP_LA_NONEXISTENT, "\\NonExistent" },
	{ IMAP_LA_HASCHILDREN, "\\HasChildren" },
	{ IMAP_LA_HASNOCHILDREN, "\\HasNoChildren" },
	{ IMAP_LA_ALL, "\\All" },
	{ IMAP_LA_ARCHIVE, "\\Archive" },
	{ IMAP_LA_DRAFTS, "\\Drafts" },
	{ IMAP_LA_JUNK, "\\Junk" },
	{ IMAP_LA_SENT, "\\Sent" },
	{ IMAP_LA_TRASH, "\\Trash" },
};

void
imap_list_write(struct buf *out, const struct imap_list_req *r,
    const struct imap_list_entry *e, int utf8)
{
	const char *sep = "";

	buf_puts(out, r->lsub ? "* LSUB (" : "* LIST (");
	for (size_t i = 0; i < ARRAY_SIZE(list_attrs); i++)
		if (e->attrs & list_attrs[i].bit) {
			buf_printf(out, "%s%s", sep, list_attrs[i].name);
			sep = " ";
		}
	buf_puts(out, ") \"/\" ");
	imap_write_mailbox(out, e->name, utf8);
	if (!r->lsub && e->childinfo_subscribed)
		buf_puts(out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	buf_puts(out, "\r\n");
}

/* The folders mbx_folders_init creates, by their exact names. */
unsigned
imap_special_use(const char *name)
{
	static const struct {
		const char *name;
		unsigned bit;
	} uses[] = {
		{ "Archive", IMAP_LA_ARCHIVE },
		{ "Drafts", IMAP_LA_DRAFTS },
		{ "Junk", IMAP_LA_JUNK },
		{ "Sent", IMAP_LA_SENT },
		{ "Trash", IMAP_LA_TRASH },
	};

	for (size_t i = 0; i < ARRAY_SIZE(uses); i++)
		if (strcmp(name, uses[i].name) == 0)
			return uses[i].bit;
	return 0;
}
