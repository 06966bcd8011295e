/*
 * cmd_fetch - FETCH and SEARCH on the selected mailbox, through the pure
 * imap_fetch and imap_search modules: this file gives them struct
 * imap_view (imap_view.h) for each message and loads bytes only when
 * asked (load_view).
 *
 * Loading: the file is mapped read-only (mbx_msg_open finds it whatever
 * its current name); its MIME tree comes from the index's cache slot
 * (mime_deserialize, which checks everything) or is parsed once and
 * stored there (mime_serialize + mbx_cache_put), so a second FETCH does
 * not reparse. One message is loaded at a time and released after its
 * response is written.
 * Streaming: a FETCH writes message after message while the output
 * buffer is below FETCH_HIGH, then waits for CONN_EV_DRAINED (the session
 * reads no command meanwhile), so FETCH 1:* BODY[] of a large mailbox
 * costs one message of memory, not the mailbox.
 * \Seen: a non-peek body item on a read-write mailbox sets \Seen in the
 * index before the response is written and adds FLAGS to it.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "proto/imap_fetch.h"
#include "proto/imap_search.h"
#include "proto/mime.h"
#include "imapd.h"

#define FETCH_HIGH (256 * 1024)

struct loaded {
	struct isess *s;
	void *map;                     /* mmap of the file, or NULL */
	size_t maplen;
	char *copy;                    /* the file plus its missing last LF */
	struct mime_tree tree;
	int have_tree;
};

struct fetch_job {
	char *tag;
	int uid;
	struct imap_fetch_req req;
	size_t *idx, n, next;
	int gone, failed;
	const char *no_text;           /* a -2 from imap_fetch_write */
};

static int
load_view(struct imap_view *v, unsigned want, void *ctx)
{
	struct loaded *L = ctx;
	struct isess *s = L->s;
	char *err = NULL;
	struct stat st;
	int fd = -1, r;

	if (v->data == NULL) {
		r = mbx_msg_open(s->box->mb, v->uid, &fd, &err);
		if (r < 0) {
			if (r != MBX_GONE)
				log_warnx("user=<%s>: %s: UID %" PRIu32 ": %s", s->user,
				    s->box_name, v->uid, err ? err : "?");
			free(err);
			return -1;
		}
		if (fstat(fd, &st) < 0) {
			close(fd);
			return -1;
		}
		L->maplen = (size_t)st.st_size;
		if (L->maplen > 0) {
			L->map = mmap(NULL, L->maplen, PROT_READ, MAP_PRIVATE, fd, 0);
			if (L->map == MAP_FAILED) {
				L->map = NULL;
				log_warn("user=<%s>: mmap UID %" PRIu32, s->user, v->uid);
				close(fd);
				return -1;
			}
		}
		close(fd);
		v->data = L->map != NULL ? L->map : "";
		v->len = L->maplen;
		/* RFC822.SIZE (the index's wire size, what POP3's RETR
		 * sends) ends an unended last line with CRLF: so does what
		 * is served, or BODY[] would be shorter than RFC822.SIZE. */
		if (v->len > 0 && v->data[v->len - 1] != '\n') {
			L->copy = xmalloc(v->len + 1);
			memcpy(L->copy, v->data, v->len);
			L->copy[v->len] = '\n';
			v->data = L->copy;
			v->len++;
		}
	}
	if ((want & IMAP_VIEW_TREE) && v->tree == NULL) {
		void *p = NULL;
		size_t n = 0;

		if (mbx_cache_get(s->box->mb, v->uid, &p, &n, NULL) == 0
		    && mime_deserialize(p, n, v->len, NULL, &L->tree) == 0) {
			L->have_tree = 1;
		} else {
			struct buf b = BUF_INIT(0);
			mime_parse(v->data, v->len, NULL, &L->tree);
			L->have_tree = 1;
			mime_serialize(&L->tree, &b);
			if (b.len <= MBX_CACHE_MAX)
				(void)mbx_cache_put(s->box->mb, v->uid, b.data, b.len, NULL);
			buf_free(&b);
		}
		free(p);
		v->tree = &L->tree;
	}
	return 0;
}

static void
view_fill(struct isess *s, size_t i, struct imap_view *v, struct loaded *L)
{
	const struct imsg *m = &s->msgs[i];

	memset(v, 0, sizeof(*v));
	memset(L, 0, sizeof(*L));
	L->s = s;
	v->seq = (uint32_t)(i + 1);
	v->uid = m->uid;
	v->flags = m->flags;
	v->recent = s_recent(s, m);
	v->keywords = m->keywords;
	v->modseq = m->modseq;
	v->size = m->size;
	v->internaldate = m->internaldate;
	v->load = load_view;
	v->load_ctx = L;
}

static void
view_release(struct imap_view *v, struct loaded *L)
{
	if (L->have_tree)
		mime_tree_free(&L->tree);
	if (L->map != NULL)
		munmap(L->map, L->maplen);
	L->map = NULL;
	xfree(&L->copy);
	L->have_tree = 0;
	v->data = NULL;
	v->tree = NULL;
}

void
fetch_job_free(struct fetch_job **jp)
{
	struct fetch_job *j = *jp;

	if (j == NULL)
		return;
	imap_fetch_req_free(&j->req);
	free(j->idx);
	free(j->tag);
	free(j);
	*jp = NULL;
}

int
fetch_job_more(struct isess *s)
{
	struct fetch_job *j = s->job;
	struct buf out = BUF_INIT(0);

	while (j->next < j->n && conn_out_len(s->conn) < FETCH_HIGH) {
		size_t i = j->idx[j->next++];
		struct imsg *m = &s->msgs[i];
		struct imap_view v;
		struct loaded L;
		unsigned opts = (s->utf8 ? IMAP_FW_UTF8 : 0) | (s->condstore ? IMAP_FW_MODSEQ : 0);
		const char *err = NULL;
		int r;

		/* A message another session expunged, not yet reported:
		 * what the view holds (UID, FLAGS, sizes, dates) is still
		 * served, so a client's FETCH 1:* (UID FLAGS) works; asking
		 * for its text gets NO [EXPUNGEISSUED] below (RFC 2180 4.1). */
		if (j->req.sets_seen && !m->gone && !s->readonly && !(m->flags & MBX_SEEN)) {
			char *e = NULL;
			r = mbx_set_flags(s->box->mb, m->uid, MBX_SEEN, 0, &m->modseq, &e);
			if (r == 0) {
				m->flags |= MBX_SEEN;
				opts |= IMAP_FW_FLAGS;
				imbox_changed(s->box);
			} else if (r == MBX_GONE) {
				m->gone = 1;
				j->gone = 1;
				free(e);
				continue;
			} else {
				log_warnx("user=<%s>: %s: \\Seen: %s", s->user, s->box_name, e);
				free(e);
			}
		}
		view_fill(s, i, &v, &L);
		buf_reset(&out);
		r = imap_fetch_write(&j->req, &v, opts, &out, &err);
		view_release(&v, &L);
		if (r == -1) {
			j->gone = 1;
			continue;
		}
		if (r == -2) {
			j->no_text = err;
			continue;
		}
		s->fetch_bytes += out.len;
		s_write(s, out.data, out.len);
	}
	buf_free(&out);
	if (j->next < j->n)
		return 0;
	s->n_fetch++;
	s_updates(s, 0);
	if (j->no_text != NULL)
		s_tagged(s, j->tag, "NO [UNKNOWN-CTE] %s", j->no_text);
	else if (j->gone)
		s_tagged(s, j->tag, "NO [EXPUNGEISSUED] Some of the requested messages "
		    "no longer exist.");
	else
		s_tagged(s, j->tag, "OK Fetch completed.");
	fetch_job_free(&s->job);
	return 1;
}

/* UID FETCH ... (CHANGEDSINCE n VANISHED): the UIDs of the set expunged
 * since n (RFC 7162 3.2.6). */
static void
fetch_vanished(struct isess *s, const struct imap_command *c, uint64_t since)
{
	const struct imap_arg *a = imap_arg_child(c, 0, 0);
	struct imap_seqset set = { 0 };
	struct mbx_expunge *ex = NULL;
	size_t nex = 0, k = 0;
	const char *err = NULL;
	char *e = NULL;

	if (imap_seqset_parse(a->str, a->len, &set, &err) < 0 || set.saved)
		goto out;
	(void)imap_seqset_resolve(&set, s->n > 0 ? s->msgs[s->n - 1].uid : 0, 0);
	if (mbx_expunged_since(s->box->mb, since, &ex, &nex, &e) < 0) {
		free(e);
		goto out;
	}
	uint32_t *u = xcalloc(nex + 1, sizeof(*u));
	for (size_t i = 0; i < nex; i++)
		if (imap_seqset_contains(&set, ex[i].uid))
			u[k++] = ex[i].uid;
	if (k > 0) {
		struct buf b = BUF_INIT(0);
		(void)buf_puts(&b, "* VANISHED (EARLIER) ");
		uidset_write(&b, u, k);
		(void)buf_puts(&b, "\r\n");
		s_write(s, b.data, b.len);
		buf_free(&b);
	}
	free(u);
out:
	free(ex);
	imap_seqset_free(&set);
}

void
cmd_fetch(struct isess *s, const struct imap_command *c, int uid)
{
	struct fetch_job *j = xcalloc(1, sizeof(*j));
	const char *err = NULL;

	if (imap_fetch_parse(c, 1, uid, &j->req, &err) < 0) {
		s_bad(s, c->tag, err ? err : "Invalid FETCH arguments.");
		fetch_job_free(&j);
		return;
	}
	if (j->req.vanished && !s->qresync) {
		s_bad(s, c->tag, "VANISHED needs ENABLE QRESYNC.");
		fetch_job_free(&j);
		return;
	}
	if (j->req.has_modseq)
		s_condstore_on(s);
	if (s_seqset(s, c->tag, imap_arg_child(c, 0, 0), uid, &j->idx, &j->n) < 0) {
		fetch_job_free(&j);
		return;
	}
	j->tag = xstrdup(c->tag);
	j->uid = uid;
	if (j->req.vanished)
		fetch_vanished(s, c, j->req.changedsince);
	s->job = j;
	/* The session loop runs fetch_job_more() until it is done. */
}

/* ---- SEARCH ---- */

static void
save_result(struct isess *s, struct imap_view *const *matched, size_t n)
{
	imap_seqset_free(&s->saved);
	s->saved.r = xcalloc(n + 1, sizeof(*s->saved.r));
	s->saved.n = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t u = matched[i]->uid;
		if (s->saved.n > 0 && s->saved.r[s->saved.n - 1].hi + 1 == u)
			s->saved.r[s->saved.n - 1].hi = u;
		else
			s->saved.r[s->saved.n++] = (struct imap_seq_range){ u, u };
	}
	s->have_saved = 1;
}

/* Parse the search keys at child k and match every message: *matched_r
 * (views in sequence order, into *views_r). keep: leave what was loaded
 * for a sort or thread that follows (view_release all at the end).
 * 0, or -1 after the reply. */
struct matches {
	struct imap_view *views, **matched;
	struct loaded *L;
	size_t n, nm;
	int gone;
};

static void
matches_free(struct matches *m)
{
	for (size_t i = 0; i < m->n; i++)
		view_release(&m->views[i], &m->L[i]);
	free(m->views);
	free(m->L);
	free(m->matched);
}

static int
run_search(struct isess *s, const struct imap_command *c, size_t k, int allow_return,
    int charset_first, int keep, struct imap_search **q_r, struct matches *m)
{
	struct imap_search_env env = { 0 };
	const char *err = NULL;
	int r;

	memset(m, 0, sizeof(*m));
	env.max_seq = (uint32_t)s->n;
	env.max_uid = s->n > 0 ? s->msgs[s->n - 1].uid : 0;
	env.saved = s->have_saved ? &s->saved : NULL;
	env.utf8 = s->utf8;
	r = imap_search_parse(c, k, &env, allow_return, charset_first, q_r, &err);
	if (r == -2) {
		s_tagged(s, c->tag, "NO [BADCHARSET (US-ASCII UTF-8)] %s",
		    err ? err : "Unknown charset.");
		return -1;
	}
	if (r < 0) {
		s_bad(s, c->tag, err ? err : "Invalid search arguments.");
		return -1;
	}
	m->n = s->n;
	m->views = xcalloc(s->n + 1, sizeof(*m->views));
	m->L = xcalloc(s->n + 1, sizeof(*m->L));
	m->matched = xcalloc(s->n + 1, sizeof(*m->matched));
	for (size_t i = 0; i < s->n; i++) {
		view_fill(s, i, &m->views[i], &m->L[i]);
		if (s->msgs[i].gone)
			continue;
		r = imap_search_match(*q_r, &m->views[i]);
		if (!keep || r <= 0)
			view_release(&m->views[i], &m->L[i]);
		if (r < 0)
			m->gone = 1;
		else if (r > 0)
			m->matched[m->nm++] = &m->views[i];
	}
	return 0;
}

static void
search_done(struct isess *s, const char *tag, int gone, const char *what)
{
	s_updates(s, 0);
	if (gone)
		s_tagged(s, tag, "OK [EXPUNGEISSUED] %s completed, some messages no "
		    "longer exist.", what);
	else
		s_tagged(s, tag, "OK %s completed.", what);
}

void
cmd_search(struct isess *s, const struct imap_command *c, int uid)
{
	struct imap_search *q = NULL;
	struct matches m;
	struct buf out = BUF_INIT(0);

	if (run_search(s, c, 0, 1, 0, 0, &q, &m) < 0)
		return;
	if (s->rev2)
		imap_search_rev2(q);
	if (imap_search_uses_modseq(q))
		s_condstore_on(s);
	imap_search_write(q, c->tag, uid, m.matched, m.nm, &out);
	if (imap_search_return(q) & IMAP_SR_SAVE)
		save_result(s, m.matched, m.nm);
	s_write(s, out.data, out.len);
	buf_free(&out);
	imap_search_free(&q);
	matches_free(&m);
	search_done(s, c->tag, m.gone, "Search");
}

void
cmd_sort(struct isess *s, const struct imap_command *c, int uid)
{
	struct imap_sort *so = NULL;
	struct imap_search *q = NULL;
	struct matches m;
	struct buf out = BUF_INIT(0);
	const char *err = NULL;
	size_t next = 0;

	if (imap_sort_parse(c, 0, &so, &next, &err) < 0) {
		s_bad(s, c->tag, err ? err : "Invalid sort criteria.");
		return;
	}
	if (run_search(s, c, next, 0, 1, 1, &q, &m) < 0) {
		imap_sort_free(&so);
		return;
	}
	imap_sort_run(so, m.matched, m.nm);
	imap_sort_write(uid, m.matched, m.nm, &out);
	s_write(s, out.data, out.len);
	buf_free(&out);
	imap_sort_free(&so);
	imap_search_free(&q);
	matches_free(&m);
	search_done(s, c->tag, m.gone, "Sort");
}

void
cmd_thread(struct isess *s, const struct imap_command *c, int uid)
{
	enum imap_thread_alg alg;
	struct imap_search *q = NULL;
	struct matches m;
	struct buf out = BUF_INIT(0);
	const char *err = NULL;

	if (imap_thread_parse(c, 0, &alg, &err) < 0) {
		s_bad(s, c->tag, err ? err : "Invalid thread algorithm.");
		return;
	}
	if (run_search(s, c, 1, 0, 1, 1, &q, &m) < 0)
		return;
	imap_thread_write(alg, uid, m.matched, m.nm, &out);
	s_write(s, out.data, out.len);
	buf_free(&out);
	imap_search_free(&q);
	matches_free(&m);
	search_done(s, c->tag, m.gone, "Thread");
}
