/*
 * uidlist - read Dovecot's Maildir UID list and keyword file (see
 * uidlist.h for why). Formats, from Dovecot's Maildir documentation:
 *
 *   dovecot-uidlist   a header line, then one line per message:
 *     version 3       "3 V<uidvalidity> N<nextuid> G<guid> ..." (fields
 *                     in any order), then "<uid> <ext>... :<file name>"
 *                     where each ext is a letter and a value
 *     versions 1, 2   "1 <uidvalidity> <nextuid>", then "<uid> <file name>"
 *   dovecot-keywords  "<n> <keyword>", n 0..25 is the letter 'a' + n in
 *                     the ":2," info of a file name
 *
 * The file name of a line is the name up to its ':' (what index.c calls
 * the base). Trusts nothing: lines are bounded, a UID must be above the
 * previous line's (nextuid is raised past the last one: Dovecot appends
 * lines without rewriting the header), a name holds no '/', a keyword is an
 * IMAP atom; a line that is not is skipped, and its file later gets a new
 * UID like any file Dovecot never saw.
 */
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "store/index.h"
#include "store/uidlist.h"

#define LINE_MAX_DC 1024
#define FILE_MAX_DC ((size_t)512 << 20)

/* The next line of text[*off..len), without its LF; NULL at the end. */
static const char *
next_line(const char *text, size_t len, size_t *off, size_t *n_r)
{
	const char *p, *nl;

	if (*off >= len)
		return NULL;
	p = text + *off;
	nl = memchr(p, '\n', len - *off);
	*n_r = nl != NULL ? (size_t)(nl - p) : len - *off;
	*off += *n_r + (nl != NULL);
	return p;
}

/* A decimal 1..UINT32_MAX at *p, which is moved past it; 0 if none. */
static uint32_t
num(const char **p, const char *end)
{
	uint64_t v = 0;
	const char *s = *p;

	while (s < end && *s >= '0' && *s <= '9' && v <= UINT32_MAX)
		v = v * 10 + (uint64_t)(*s++ - '0');
	if (s == *p || v > UINT32_MAX || (s < end && *s != ' '))
		return 0;
	*p = s;
	return (uint32_t)v;
}

static int
header(const char *p, const char *end, struct dc_uidlist *u, int *version)
{
	if (end - p < 2 || p[1] != ' ' || p[0] < '1' || p[0] > '3')
		return -1;
	*version = p[0] - '0';
	p += 2;
	if (*version < 3) {
		u->uidvalidity = num(&p, end);
		while (p < end && *p == ' ')
			p++;
		u->uidnext = num(&p, end);
	} else {
		while (p < end) {
			const char *f = p + 1;
			char key = *p;
			uint32_t v = num(&f, end);
			if (key == 'V' && v != 0)
				u->uidvalidity = v;
			else if (key == 'N' && v != 0)
				u->uidnext = v;
			p = memchr(p, ' ', (size_t)(end - p));
			if (p == NULL)
				break;
			p++;
		}
	}
	return u->uidvalidity != 0 && u->uidnext != 0 ? 0 : -1;
}

static int
by_base(const void *a, const void *b)
{
	return strcmp(((const struct dc_uid *)a)->base, ((const struct dc_uid *)b)->base);
}

int
dc_uidlist_parse(const char *text, size_t len, struct dc_uidlist *u)
{
	size_t off = 0, n, cap = 0, i, j;
	const char *p;
	uint32_t last = 0;
	int version;

	memset(u, 0, sizeof(*u));
	p = next_line(text, len, &off, &n);
	if (p == NULL || n > LINE_MAX_DC || header(p, p + n, u, &version) != 0) {
		memset(u, 0, sizeof(*u));
		return -1;
	}
	while ((p = next_line(text, len, &off, &n)) != NULL) {
		const char *end = p + n, *name;
		uint32_t uid;
		size_t blen;

		if (n == 0 || n > LINE_MAX_DC)
			continue;
		uid = num(&p, end);
		if (uid == 0 || uid <= last)
			continue;
		if (version >= 3) {
			name = NULL;
			for (const char *q = p; q + 1 < end; q++)
				if (q[0] == ' ' && q[1] == ':') {
					name = q + 2;
					break;
				}
		} else {
			name = p < end ? p + 1 : NULL;
		}
		if (name == NULL)
			continue;
		const char *colon = memchr(name, ':', (size_t)(end - name));
		blen = (size_t)((colon != NULL ? colon : end) - name);
		if (blen == 0 || memchr(name, '/', blen) != NULL || memchr(name, ' ', blen) != NULL
		    || memchr(name, '\0', blen) != NULL)
			continue;
		if (u->n == cap) {
			cap = cap ? cap * 2 : 64;
			u->v = xreallocarray(u->v, cap, sizeof(*u->v));
		}
		u->v[u->n].base = xstrndup(name, blen);
		u->v[u->n].uid = uid;
		u->n++;
		last = uid;
	}
	/* Dovecot appends lines without rewriting the header, whose
	 * N may be older than the last line. */
	if (last >= u->uidnext)
		u->uidnext = last == UINT32_MAX ? UINT32_MAX : last + 1;
	/* A name twice is not to be trusted for either UID. */
	qsort(u->v, u->n, sizeof(*u->v), by_base);
	for (i = 0, j = 0; i < u->n; ) {
		size_t k = i + 1;
		while (k < u->n && strcmp(u->v[k].base, u->v[i].base) == 0)
			k++;
		if (k == i + 1)
			u->v[j++] = u->v[i];
		else
			for (size_t m = i; m < k; m++)
				free(u->v[m].base);
		i = k;
	}
	u->n = j;
	return 0;
}

void
dc_keywords_parse(const char *text, size_t len, struct dc_uidlist *u)
{
	size_t off = 0, n;
	const char *p;

	while ((p = next_line(text, len, &off, &n)) != NULL) {
		const char *end = p + n;
		uint32_t idx;
		char *kw;

		if (n == 0 || n > LINE_MAX_DC || *p < '0' || *p > '9')
			continue;
		/* num() takes 0 for "none", so read the index one past. */
		const char *q = p;
		uint64_t v = 0;
		while (q < end && *q >= '0' && *q <= '9' && v < 100)
			v = v * 10 + (uint64_t)(*q++ - '0');
		if (v >= 26 || q >= end || *q != ' ')
			continue;
		idx = (uint32_t)v;
		kw = xstrndup(q + 1, (size_t)(end - q - 1));
		if (!mbx_keyword_ok(kw) || u->kw[idx] != NULL) {
			free(kw);
			continue;
		}
		u->kw[idx] = kw;
	}
}

int
dc_uidlist_load(const char *dir, struct dc_uidlist *u)
{
	char *p = xasprintf("%s/%s", dir, DC_UIDLIST_NAME), *text = NULL;
	size_t len;
	int rc = -1;

	memset(u, 0, sizeof(*u));
	if (file_read_all(p, FILE_MAX_DC, &text, &len) == 0)
		rc = dc_uidlist_parse(text, len, u);
	free(text);
	free(p);
	if (rc != 0)
		return -1;
	p = xasprintf("%s/%s", dir, DC_KEYWORDS_NAME);
	text = NULL;
	if (file_read_all(p, 1 << 20, &text, &len) == 0)
		dc_keywords_parse(text, len, u);
	free(text);
	free(p);
	return 0;
}

const struct dc_uid *
dc_uidlist_find(const struct dc_uidlist *u, const char *base, size_t blen)
{
	size_t lo = 0, hi = u->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *b = u->v[mid].base;
		int c = strncmp(b, base, blen);
		if (c == 0 && b[blen] != '\0')
			c = 1;
		if (c == 0)
			return &u->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

char *
dc_uidlist_keywords(const struct dc_uidlist *u, const char *file)
{
	const char *info = strstr(file, ":2,");
	char *out = xstrdup(""), *n;
	int seen[26] = { 0 };

	if (info == NULL)
		return out;
	for (info += 3; *info != '\0'; info++) {
		if (*info < 'a' || *info > 'z' || seen[*info - 'a'] || u->kw[*info - 'a'] == NULL)
			continue;
		seen[*info - 'a'] = 1;
		n = xasprintf("%s%s%s", out, *out ? " " : "", u->kw[*info - 'a']);
		free(out);
		out = n;
	}
	return out;
}

void
dc_uidlist_free(struct dc_uidlist *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->v[i].base);
	free(u->v);
	for (size_t i = 0; i < 26; i++)
		free(u->kw[i]);
	memset(u, 0, sizeof(*u));
}
