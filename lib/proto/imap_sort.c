/*
 * imap_sort - SORT (RFC 5256, and RFC 5957 DISPLAYFROM/DISPLAYTO) and the
 * RFC 5256 base subject shared with THREAD (contract in imap_search.h).
 *
 * Each view's sort keys are computed once (one header read per view),
 * then the views are sorted with qsort on those keys; ties are broken by
 * sequence number, so the sort is stable whatever qsort does. Strings
 * compare as bytes after case mapping: ASCII upper case for the address
 * keys (i;ascii-casemap), imap_casemap upper case for SUBJECT and the
 * DISPLAY keys (an approximation of i;unicode-casemap).
 *
 * Addresses: the first mailbox of the field (group names skipped),
 * comments and quoting removed; FROM/TO/CC sort by its local part
 * (RFC 5256 "addr-mailbox"), DISPLAYFROM/DISPLAYTO by its RFC 2047-
 * decoded display name, or "local@domain" when it has none.
 *
 * BUGS: a view that cannot be loaded sorts as if its header were empty
 * (its DATE is its INTERNALDATE), as the contract asks.
 */
#include "proto/imap_search.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/imap_search_int.h"
#include "proto/mime.h"
#include "util/alloc.h"

/* --- Base subject (RFC 5256 section 2.1) ----------------------------------- */

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP at s[i..n): its end, or i. */
static size_t
blob(const char *s, size_t i, size_t n)
{
	if (i >= n || s[i] != '[')
		return i;
	size_t j = i + 1;
	while (j < n && s[j] != '[' && s[j] != ']')
		j++;
	if (j >= n || s[j] != ']')
		return i;
	j++;
	while (j < n && is_wsp(s[j]))
		j++;
	return j;
}

/* subj-refwd = ("RE" / ("FW" ["D"])) *WSP [subj-blob] ":" at s[i..n),
 * upper case already: its end, or i. */
static size_t
refwd(const char *s, size_t i, size_t n)
{
	size_t j = i;

	if (n - j >= 2 && memcmp(s + j, "RE", 2) == 0)
		j += 2;
	else if (n - j >= 2 && memcmp(s + j, "FW", 2) == 0) {
		j += 2;
		if (j < n && s[j] == 'D')
			j++;
	} else
		return i;
	while (j < n && is_wsp(s[j]))
		j++;
	j = blob(s, j, n);
	if (j < n && s[j] == ':')
		return j + 1;
	return i;
}

void
imap_base_subject(const char *s, size_t n, struct buf *out, int *is_reply_r)
{
	struct buf dec = BUF_INIT(0), up = BUF_INIT(0);
	int reply = 0;

	/* (1) decode, upper-case, blanks and line ends to one space. */
	mime_decode_words(s, n, &dec);
	imap_casemap(dec.data ? dec.data : "", dec.len, &up, 1);
	char *t = up.data;
	size_t len = 0;
	for (size_t i = 0; i < up.len; i++) {
		char c = t[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && len > 0 && t[len - 1] == ' ')
			continue;
		t[len++] = c;
	}
	size_t b = 0, e = len;   /* the subject is t[b..e) */
	for (;;) {
		/* (2) trailers: "(FWD)" and blanks. */
		for (;;) {
			if (e > b && is_wsp(t[e - 1]))
				e--;
			else if (e - b >= 5 && memcmp(t + e - 5, "(FWD)", 5) == 0) {
				e -= 5;
				reply = 1;
			} else
				break;
		}
		/* (3)-(5) leaders and blobs. */
		for (;;) {
			size_t before = b;
			for (;;) {
				if (b < e && is_wsp(t[b])) {
					b++;
					continue;
				}
				size_t j = b;
				for (size_t k; (k = blob(t, j, e)) != j;)
					j = k;
				size_t r = refwd(t, j, e);
				if (r == j)
					break;
				b = r;
				reply = 1;
			}
			size_t j = blob(t, b, e);
			if (j != b) {
				size_t k = j;
				while (k < e && is_wsp(t[k]))
					k++;
				if (k < e)
					b = j;  /* (4): only if a base subject remains */
			}
			if (b == before)
				break;
		}
		/* (6) "[FWD:" ... "]" */
		if (e - b >= 6 && memcmp(t + b, "[FWD:", 5) == 0 && t[e - 1] == ']') {
			b += 5;
			e -= 1;
			reply = 1;
			continue;
		}
		break;
	}
	buf_append(out, t ? t + b : "", e - b);
	if (out->data == NULL)
		buf_puts(out, "");
	if (is_reply_r)
		*is_reply_r = reply;
	buf_free(&dec);
	buf_free(&up);
}

/* --- Addresses ------------------------------------------------------------- */

static size_t
skip_quoted(const char *s, size_t i, size_t n)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return n;
}

/* s[b..e) without comments, quotes and backslashes; blanks dropped
 * (keep_blanks 0, for addr-specs) or squeezed to one (for phrases). */
static void
clean(const char *s, size_t b, size_t e, int keep_blanks, struct buf *out)
{
	for (size_t i = b; i < e;) {
		if (s[i] == '(') {
			i = imap_skip_comment(s, i, e);
			continue;
		}
		if (s[i] == '"') {
			size_t q = skip_quoted(s, i, e);
			for (size_t k = i + 1; k < q && k < e; k++) {
				if (s[k] == '\\' && k + 1 < q)
					k++;
				else if (s[k] == '"')
					break;
				buf_putc(out, s[k]);
			}
			i = q;
			continue;
		}
		if (s[i] == ' ' || s[i] == '\t') {
			if (keep_blanks && out->len > 0 && out->data[out->len - 1] != ' ')
				buf_putc(out, ' ');
			i++;
			continue;
		}
		buf_putc(out, s[i++]);
	}
	while (out->len > 0 && out->data[out->len - 1] == ' ')
		out->len--;
	if (out->data)
		out->data[out->len] = '\0';
}

/* The first mailbox of an address list: display name (raw phrase), local
 * part and domain. 1 if one was found. */
static int
first_mailbox(const char *s, size_t n, struct buf *name, struct buf *local,
    struct buf *domain)
{
	struct buf spec = BUF_INIT(0);
	size_t seg = 0;
	int found = 0;

	buf_reset(name);
	buf_reset(local);
	buf_reset(domain);
	for (size_t i = 0; i <= n && !found;) {
		if (i < n && s[i] == '"') {
			i = skip_quoted(s, i, n);
			continue;
		}
		if (i < n && s[i] == '(') {
			i = imap_skip_comment(s, i, n);
			continue;
		}
		if (i < n && s[i] == '<') {
			size_t gt = i + 1;
			while (gt < n && s[gt] != '>')
				gt++;
			clean(s, seg, i, 1, name);
			size_t a = i + 1;
			/* obs-route "@a,@b:" before the addr-spec */
			const char *colon = memchr(s + a, ':', gt - a);
			if (a < gt && s[a] == '@' && colon != NULL)
				a = (size_t)(colon - s) + 1;
			buf_reset(&spec);
			clean(s, a, gt, 0, &spec);
			found = 1;
			break;
		}
		if (i < n && s[i] == ':') {
			seg = i + 1;       /* group name: the members follow */
			i++;
			continue;
		}
		if (i == n || s[i] == ',' || s[i] == ';') {
			buf_reset(&spec);
			clean(s, seg, i, 0, &spec);
			if (spec.len > 0)
				found = 1;
			seg = i + 1;
			i++;
			continue;
		}
		i++;
	}
	if (found) {
		const char *at = spec.len ? memrchr(spec.data, '@', spec.len) : NULL;
		size_t ll = at ? (size_t)(at - spec.data) : spec.len;
		buf_append(local, spec.data ? spec.data : "", ll);
		if (at)
			buf_append(domain, at + 1, spec.len - ll - 1);
	}
	buf_free(&spec);
	return found;
}

/* --- SORT ------------------------------------------------------------------ */

enum sort_key { S_ARRIVAL, S_CC, S_DATE, S_FROM, S_SIZE, S_SUBJECT, S_TO,
	S_DISPLAYFROM, S_DISPLAYTO };

#define SORT_KEYS_MAX 16

struct imap_sort {
	enum sort_key key[SORT_KEYS_MAX];
	int reverse[SORT_KEYS_MAX];
	size_t n;
};

static const struct {
	const char *name;
	enum sort_key key;
	const char *field;         /* header field it reads, NULL if none */
} sort_keys[] = {
	{ "ARRIVAL", S_ARRIVAL, NULL },
	{ "CC", S_CC, "Cc" },
	{ "DATE", S_DATE, "Date" },
	{ "DISPLAYFROM", S_DISPLAYFROM, "From" },
	{ "DISPLAYTO", S_DISPLAYTO, "To" },
	{ "FROM", S_FROM, "From" },
	{ "SIZE", S_SIZE, NULL },
	{ "SUBJECT", S_SUBJECT, "Subject" },
	{ "TO", S_TO, "To" },
};

int
imap_sort_parse(const struct imap_command *c, size_t k,
    struct imap_sort **so_r, size_t *next_k, const char **err_r)
{
	const struct imap_arg *l = imap_arg_child(c, 0, k);
	struct imap_sort *so;
	int reverse = 0;

	*so_r = NULL;
	if (l == NULL || l->kind != IMAP_ARG_LIST || l->nchildren == 0) {
		*err_r = "Missing sort criteria";
		return -1;
	}
	so = xcalloc(1, sizeof(*so));
	size_t li = (size_t)(l - c->args);
	for (size_t i = 0; i < l->nchildren; i++) {
		const struct imap_arg *a = imap_arg_child(c, li, i);
		if (a->kind != IMAP_ARG_ATOM)
			goto bad;
		if (strcasecmp(a->str, "REVERSE") == 0) {
			if (reverse)
				goto bad;
			reverse = 1;
			continue;
		}
		size_t j;
		for (j = 0; j < ARRAY_SIZE(sort_keys); j++)
			if (strcasecmp(a->str, sort_keys[j].name) == 0)
				break;
		if (j == ARRAY_SIZE(sort_keys))
			goto bad;
		if (so->n == SORT_KEYS_MAX) {
			*err_r = "Too many sort criteria";
			goto fail;
		}
		so->key[so->n] = sort_keys[j].key;
		so->reverse[so->n++] = reverse;
		reverse = 0;
	}
	if (reverse)
		goto bad;
	*so_r = so;
	*next_k = k + 1;
	return 0;
bad:
	*err_r = "Invalid sort criteria";
fail:
	free(so);
	return -1;
}

void
imap_sort_free(struct imap_sort **so)
{
	xfree(so);
}

static const char *
key_field(enum sort_key k)
{
	for (size_t j = 0; j < ARRAY_SIZE(sort_keys); j++)
		if (sort_keys[j].key == k)
			return sort_keys[j].field;
	return NULL;
}

unsigned
imap_sort_needs(const struct imap_sort *so)
{
	for (size_t i = 0; i < so->n; i++)
		if (key_field(so->key[i]) != NULL)
			return IMAP_VIEW_DATA;
	return 0;
}

struct sort_item {
	struct imap_view *v;
	int64_t num[SORT_KEYS_MAX];
	char *str[SORT_KEYS_MAX];
};

/* The sort string of key k for view v (xmalloc'd). */
static char *
sort_string(struct imap_view *v, enum sort_key k, struct buf *raw)
{
	struct buf name = BUF_INIT(0), local = BUF_INIT(0), domain = BUF_INIT(0);
	struct buf res = BUF_INIT(0), tmp = BUF_INIT(0);

	(void)imap_view_field(v, key_field(k), 0, raw);
	const char *r = raw->data ? raw->data : "";
	if (k == S_SUBJECT) {
		imap_base_subject(r, raw->len, &res, NULL);
	} else if (first_mailbox(r, raw->len, &name, &local, &domain)) {
		if (k == S_DISPLAYFROM || k == S_DISPLAYTO) {
			if (name.len > 0)
				mime_decode_words(name.data, name.len, &tmp);
			else {
				buf_append(&tmp, local.data ? local.data : "", local.len);
				if (domain.len > 0) {
					buf_putc(&tmp, '@');
					buf_append(&tmp, domain.data, domain.len);
				}
			}
			imap_casemap(tmp.data ? tmp.data : "", tmp.len, &res, 1);
		} else {
			for (size_t i = 0; i < local.len; i++)
				buf_putc(&res, toupper((unsigned char)local.data[i]));
		}
	}
	if (res.data == NULL)
		buf_puts(&res, "");
	buf_free(&name);
	buf_free(&local);
	buf_free(&domain);
	buf_free(&tmp);
	return buf_steal(&res);
}

/* The sent date in UTC seconds: Date:, else INTERNALDATE (RFC 5256). */
int64_t
imap_sent_date(struct imap_view *v, struct buf *tmp)
{
	int64_t t;

	if (imap_view_field(v, "Date", 0, tmp)
	    && imap_rfc5322_date(tmp->data, tmp->len, NULL, &t) == 0)
		return t;
	return v->internaldate;
}

static int
item_cmp(const void *a, const void *b, void *arg)
{
	const struct sort_item *x = a, *y = b;
	const struct imap_sort *sort_spec = arg;

	for (size_t i = 0; i < sort_spec->n; i++) {
		int c;
		if (x->str[i] != NULL)
			c = strcmp(x->str[i], y->str[i]);
		else
			c = x->num[i] < y->num[i] ? -1 : x->num[i] > y->num[i];
		if (c != 0)
			return sort_spec->reverse[i] ? -c : c;
	}
	return x->v->seq < y->v->seq ? -1 : x->v->seq > y->v->seq;
}

void
imap_sort_run(const struct imap_sort *so, struct imap_view **views, size_t n)
{
	struct sort_item *it = xcalloc(n ? n : 1, sizeof(*it));
	struct buf raw = BUF_INIT(0);

	for (size_t i = 0; i < n; i++) {
		it[i].v = views[i];
		for (size_t k = 0; k < so->n; k++) {
			switch (so->key[k]) {
			case S_ARRIVAL:
				it[i].num[k] = views[i]->internaldate;
				break;
			case S_SIZE:
				it[i].num[k] = (int64_t)views[i]->size;
				break;
			case S_DATE:
				it[i].num[k] = imap_sent_date(views[i], &raw);
				break;
			default:
				it[i].str[k] = sort_string(views[i], so->key[k], &raw);
				break;
			}
		}
	}
	qsort_r(it, n, sizeof(*it), item_cmp, (void *)so);
	for (size_t i = 0; i < n; i++) {
		views[i] = it[i].v;
		for (size_t k = 0; k < so->n; k++)
			free(it[i].str[k]);
	}
	free(it);
	buf_free(&raw);
}

void
imap_sort_write(int uid, struct imap_view *const *views, size_t n,
    struct buf *out)
{
	buf_puts(out, "* SORT");
	for (size_t i = 0; i < n; i++)
		buf_printf(out, " %u", uid ? views[i]->uid : views[i]->seq);
	buf_puts(out, "\r\n");
}
