/*
 * fuzz_imap_search - libFuzzer target over lib/proto/imap_search.c,
 * imap_sort.c and imap_thread.c.
 *
 * The input is "keys\n" followed by message bytes. The keys are parsed
 * as "a SEARCH RETURN (...) keys" style commands by the real command
 * parser (SEARCH, then "SORT (criteria) UTF-8 keys" when the keys start
 * with '('); the message is split at its NUL bytes into up to four views
 * that are matched, sorted and threaded both ways. Nothing may crash,
 * leak or read out of bounds; a match must be 0 or 1 (views always
 * load) and repeat its answer (the text cache must not change it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap.h"
#include "proto/imap_search.h"
#include "proto/mime.h"

#define NVIEWS 4

static char *kw[] = { "$Label1", "Work", NULL };

struct fview {
	struct imap_view v;
	struct mime_tree t;
	const char *p;
	size_t n;
};

static int
load(struct imap_view *v, unsigned want, void *ctx)
{
	struct fview *f = ctx;

	v->data = f->p;
	v->len = f->n;
	if ((want & IMAP_VIEW_TREE) && v->tree == NULL) {
		mime_parse(f->p, f->n, NULL, &f->t);
		v->tree = &f->t;
	}
	return 0;
}

static const struct imap_command *
parse(struct imap_parser *p, const char *line, size_t n)
{
	size_t used;

	if (imap_parse(p, line, n, &used) != IMAP_DONE)
		return NULL;
	return imap_parser_command(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *nl = memchr(in, '\n', size);
	if (nl == NULL || nl - in > 2000)
		return 0;
	size_t klen = (size_t)(nl - in);
	const char *msg = nl + 1;
	size_t mlen = size - klen - 1;

	static struct fview fv[NVIEWS];
	struct imap_view *views[NVIEWS], *matched[NVIEWS];
	size_t nv = 0, off = 0;
	while (nv < NVIEWS && off <= mlen) {
		const char *z = memchr(msg + off, '\0', mlen - off);
		size_t e = z ? (size_t)(z - msg) : mlen;
		struct fview *f = &fv[nv];
		memset(f, 0, sizeof(*f));
		f->p = msg + off;
		f->n = e - off;
		f->v.seq = (uint32_t)nv + 1;
		f->v.uid = (uint32_t)nv * 3 + 2;
		f->v.flags = (unsigned)(e & 0x1f);
		f->v.recent = (int)(nv & 1);
		f->v.keywords = kw + (nv & 1);
		f->v.modseq = e;
		f->v.size = f->n;
		f->v.internaldate = (int64_t)e * 86400;
		f->v.load = load;
		f->v.load_ctx = f;
		views[nv] = &f->v;
		nv++;
		off = e + 1;
		if (z == NULL)
			break;
	}

	struct imap_seqset saved = { 0 };
	struct imap_search_env env = { (uint32_t)nv, (uint32_t)nv * 3, &saved, 0 };
	struct imap_parser *p = imap_parser_new(NULL);
	char *line = malloc(klen + 32);
	int sort = klen > 0 && in[0] == '(';
	size_t ll = (size_t)sprintf(line, "a %s ", sort ? "SORT" : "SEARCH");
	memcpy(line + ll, in, klen);
	ll += klen;
	memcpy(line + ll, "\r\n", 2);
	ll += 2;
	const struct imap_command *c = parse(p, line, ll);
	struct buf out = BUF_INIT(0);
	if (c != NULL) {
		struct imap_sort *so = NULL;
		struct imap_search *s = NULL;
		const char *err;
		size_t k = 0;
		int ok = sort ? imap_sort_parse(c, 0, &so, &k, &err) == 0 : 1;
		if (ok && imap_search_parse(c, k, &env, !sort, sort, &s, &err) == 0) {
			size_t n = 0;
			for (size_t i = 0; i < nv; i++) {
				int r = imap_search_match(s, views[i]);
				if (r < 0 || r > 1 || imap_search_match(s, views[i]) != r)
					abort();
				if (r)
					matched[n++] = views[i];
			}
			imap_search_write(s, "a", 0, matched, n, &out);
			imap_search_write(s, "a", 1, matched, n, &out);
			imap_search_saved(s, matched, n, &saved);
			imap_seqset_free(&saved);
			if (so) {
				imap_sort_run(so, matched, n);
				imap_sort_write(0, matched, n, &out);
			}
			imap_thread_write(IMAP_THREAD_REFERENCES, 0, views, nv, &out);
			imap_thread_write(IMAP_THREAD_ORDEREDSUBJECT, 1, views, nv, &out);
			imap_search_free(&s);
		}
		imap_sort_free(&so);
	}
	imap_base_subject(in, klen, &out, NULL);
	buf_free(&out);
	free(line);
	imap_parser_free(&p);
	for (size_t i = 0; i < nv; i++)
		mime_tree_free(&fv[i].t);
	return 0;
}
