/*
 * cmd_mailbox - commands that change or open mailboxes and messages:
 * SELECT/EXAMINE, CLOSE/UNSELECT, EXPUNGE/UID EXPUNGE, STORE, COPY/MOVE
 * (UIDPLUS COPYUID, RFC 6851), APPEND with MULTIAPPEND (RFC 3502) and
 * APPENDUID.
 *
 * Every write goes through lib/store (mbx_set_flags, mbx_set_keywords,
 * mbx_append, mbx_expunge), then imbox_changed() so this session's next
 * s_updates() and the other sessions see it.
 * BUGS: COPY reads each message into the new file through mbx_append (no
 * hard link): copies cost their size in disk and time.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"
#include "proto/imap_fetch.h"
#include "proto/imap_list.h"
#include "imapd.h"

static const struct {
	const char *name;
	unsigned bit;
} sysflags[] = {
	{ "\\Seen", MBX_SEEN },
	{ "\\Answered", MBX_ANSWERED },
	{ "\\Flagged", MBX_FLAGGED },
	{ "\\Deleted", MBX_DELETED },
	{ "\\Draft", MBX_DRAFT },
};

void
uidset_write(struct buf *b, const uint32_t *u, size_t n)
{
	for (size_t i = 0; i < n; ) {
		size_t j = i;
		while (j + 1 < n && u[j + 1] == u[j] + 1)
			j++;
		(void)buf_printf(b, "%s%" PRIu32, i > 0 ? "," : "", u[i]);
		if (j > i)
			(void)buf_printf(b, ":%" PRIu32, u[j]);
		i = j + 1;
	}
}

static int
folder_exists(const char *path)
{
	struct stat st;
	char *p = xasprintf("%s/cur", path);
	int r = stat(p, &st) == 0 && S_ISDIR(st.st_mode);

	free(p);
	return r;
}

/* Open a folder named by a client argument: 0, or -1 after the NO. */
static int
open_folder(struct isess *s, const char *tag, const struct imap_arg *a,
    int trycreate, char **name_r, struct imbox **b_r)
{
	char *path = NULL, *err = NULL;

	*b_r = NULL;
	if (s_folder_path(s, tag, a, name_r, &path) < 0)
		return -1;
	if (strcmp(*name_r, "INBOX") != 0 && !folder_exists(path)) {
		s_tagged(s, tag, "NO %s Mailbox doesn't exist: %s", trycreate
		    ? "[TRYCREATE]" : "[NONEXISTENT]", *name_r);
		goto fail;
	}
	if ((*b_r = s_box_acquire(s, path, 1, &err)) == NULL) {
		log_warnx("user=<%s>: %s: %s", s->user, path, err ? err : "?");
		s_tagged(s, tag, "NO [SERVERBUG] Cannot open the mailbox.");
		free(err);
		goto fail;
	}
	free(path);
	return 0;
fail:
	free(path);
	xfree(name_r);
	return -1;
}

/* SELECT (CONDSTORE) / (QRESYNC (uidvalidity modseq [known-uids ...])). */
struct qresync {
	int given;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset known;      /* empty: every UID */
	int have_known;
};

static int
num_arg(const struct imap_arg *a, uint64_t *v)
{
	char *end;

	if (a == NULL || a->kind != IMAP_ARG_ATOM || a->str[0] < '0' || a->str[0] > '9')
		return -1;
	*v = strtoull(a->str, &end, 10);
	return *end == '\0' ? 0 : -1;
}

static int
select_params(struct isess *s, const struct imap_command *c,
    const struct imap_arg *params, struct qresync *q)
{
	size_t li = (size_t)(params - c->args);
	const struct imap_arg *p;

	if (params->kind != IMAP_ARG_LIST)
		return -1;
	for (size_t k = 0; (p = imap_arg_child(c, li, k)) != NULL; k++) {
		if (p->kind == IMAP_ARG_ATOM && strcasecmp(p->str, "CONDSTORE") == 0) {
			/* SELECT itself sends HIGHESTMODSEQ, of the new mailbox */
			s->condstore = 1;
		} else if (p->kind == IMAP_ARG_ATOM && strcasecmp(p->str, "QRESYNC") == 0
		    && s->qresync) {
			const struct imap_arg *l = imap_arg_child(c, li, ++k), *x;
			size_t ql;
			uint64_t v;
			const char *err;
			if (l == NULL || l->kind != IMAP_ARG_LIST)
				return -1;
			ql = (size_t)(l - c->args);
			if (num_arg(imap_arg_child(c, ql, 0), &v) < 0 || v == 0 || v > UINT32_MAX)
				return -1;
			q->uidvalidity = (uint32_t)v;
			if (num_arg(imap_arg_child(c, ql, 1), &q->modseq) < 0)
				return -1;
			x = imap_arg_child(c, ql, 2);
			if (x != NULL) {
				if (x->kind != IMAP_ARG_ATOM
				    || imap_seqset_parse(x->str, x->len, &q->known, &err) < 0
				    || q->known.saved)
					return -1;
				(void)imap_seqset_resolve(&q->known, UINT32_MAX - 1, 0);
				q->have_known = 1;
			}
			q->given = 1;
		} else {
			return -1;
		}
	}
	return 0;
}

/* RFC 7162 3.2.5.2: what changed since the client's modseq. */
static void
qresync_report(struct isess *s, const struct qresync *q)
{
	struct mbx_expunge *ex = NULL;
	size_t nex = 0, k = 0;
	char *err = NULL;

	if (mbx_expunged_since(s->box->mb, q->modseq, &ex, &nex, &err) < 0) {
		log_warnx("user=<%s>: %s: expunge records: %s", s->user, s->box_name,
		    err ? err : "?");
		free(err);
	} else if (nex > 0) {
		uint32_t *u = xcalloc(nex, sizeof(*u));
		struct buf b = BUF_INIT(0);
		for (size_t i = 0; i < nex; i++)
			if (!q->have_known || imap_seqset_contains(&q->known, ex[i].uid))
				u[k++] = ex[i].uid;
		if (k > 0) {
			(void)buf_puts(&b, "* VANISHED (EARLIER) ");
			uidset_write(&b, u, k);
			(void)buf_puts(&b, "\r\n");
			s_write(s, b.data, b.len);
		}
		buf_free(&b);
		free(u);
	}
	free(ex);
	for (size_t i = 0; i < s->n; i++) {
		const struct imsg *m = &s->msgs[i];
		struct buf b = BUF_INIT(0);
		if (m->modseq <= q->modseq)
			continue;
		(void)buf_printf(&b, "* %zu FETCH (UID %" PRIu32 " FLAGS ", i + 1, m->uid);
		imap_write_flags(&b, m->flags, m->keywords, s_recent(s, m));
		(void)buf_printf(&b, " MODSEQ (%" PRIu64 "))\r\n", m->modseq);
		s_write(s, b.data, b.len);
		buf_free(&b);
	}
}

void
cmd_select(struct isess *s, const struct imap_command *c, int examine)
{
	const struct imap_arg *a = imap_arg_child(c, 0, 0);
	char *name = NULL, *err = NULL, **kws = NULL;
	struct imbox *box;
	size_t recent = 0, unseen = 0;

	const struct imap_arg *params = imap_arg_child(c, 0, 1);
	struct qresync q = { 0 };

	if (a == NULL || imap_arg_child(c, 0, 2) != NULL
	    || (params != NULL && select_params(s, c, params, &q) < 0)) {
		s_bad(s, c->tag, "Invalid arguments.");
		return;
	}
	if (s->box != NULL) {
		s_unselect(s);
		/* RFC 7162 3.2.11 asks it of a server that advertises
		 * QRESYNC, whether enabled or not; a client that does not
		 * know the code ignores it (RFC 3501 7.1). */
		s_untagged(s, "OK [CLOSED] Previous mailbox closed.");
	}
	if (open_folder(s, c->tag, a, 0, &name, &box) < 0)
		return;
	if (imbox_snapshot(box, &err) < 0) {
		log_warnx("user=<%s>: %s: %s", s->user, name, err ? err : "?");
		free(err);
		free(name);
		imbox_release(&box);
		s_tagged(s, c->tag, "NO [SERVERBUG] Cannot read the mailbox.");
		return;
	}
	s->box = box;
	s->box_name = name;
	s->readonly = examine;
	s->seen_gen = box->snap_gen;
	/* The whole snapshot is new to this view. */
	s->n = 0;
	s_view_add_new(s, 0);
	for (size_t i = 0; i < s->n; i++) {
		const struct imsg *v = &s->msgs[i];
		for (size_t k = 0; v->keywords[k] != NULL; k++)
			if (!strv_contains_ci(kws, v->keywords[k]))
				strv_push(&kws, v->keywords[k]);
		recent += v->recent;
		if (unseen == 0 && !(v->flags & MBX_SEEN))
			unseen = i + 1;
	}
	s_keywords_seen(s, kws);
	strv_free(&kws);
	if (examine)
		s_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox.");
	else
		s_untagged(s, "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted "
		    "\\Seen \\Draft \\*)] Flags permitted.");
	s_untagged(s, "%zu EXISTS", s->n);
	if (!s->rev2) {
		s_untagged(s, "%zu RECENT", recent);
		if (unseen > 0)
			s_untagged(s, "OK [UNSEEN %zu] First unseen.", unseen);
	}
	s_untagged(s, "OK [UIDVALIDITY %" PRIu32 "] UIDs valid", mbx_uidvalidity(box->mb));
	s_untagged(s, "OK [UIDNEXT %" PRIu32 "] Predicted next UID", mbx_uidnext(box->mb));
	/* RFC 7162 3.1.2.1: every SELECT of a CONDSTORE server says it. */
	s_untagged(s, "OK [HIGHESTMODSEQ %" PRIu64 "] Highest", mbx_highestmodseq(box->mb));
	if (q.given && q.uidvalidity == mbx_uidvalidity(box->mb))
		qresync_report(s, &q);
	imap_seqset_free(&q.known);
	if (s->rev2) {
		struct buf l = BUF_INIT(0);
		(void)buf_puts(&l, "* LIST () \"/\" ");
		imap_write_mailbox(&l, s->box_name, s->utf8);
		(void)buf_puts(&l, "\r\n");
		s_write(s, l.data, l.len);
		buf_free(&l);
	}
	s_tagged(s, c->tag, "OK [%s] %s completed.", examine ? "READ-ONLY" : "READ-WRITE",
	    examine ? "Examine" : "Select");
}

/* Expunge the \Deleted messages of the view (all, or those idx names). */
static int
expunge_deleted(struct isess *s, const size_t *idx, size_t nidx, size_t *count_r)
{
	uint32_t *uids = xcalloc(s->n + 1, sizeof(*uids));
	size_t k = 0;
	char *err = NULL;
	int r = 0;

	for (size_t j = 0; j < (idx != NULL ? nidx : s->n); j++) {
		const struct imsg *m = &s->msgs[idx != NULL ? idx[j] : j];
		if ((m->flags & MBX_DELETED) && !m->gone)
			uids[k++] = m->uid;
	}
	if (k > 0) {
		r = mbx_expunge(s->box->mb, uids, k, &err);
		if (r < 0) {
			log_warnx("user=<%s>: %s: expunge: %s", s->user, s->box_name,
			    err ? err : "?");
			free(err);
		}
		imbox_changed(s->box);
	}
	free(uids);
	*count_r = k;
	return r < 0 ? -1 : 0;
}

void
cmd_close(struct isess *s, const struct imap_command *c, int expunge)
{
	size_t k = 0;

	if (c->args[0].nchildren != 0) {
		s_bad(s, c->tag, "Invalid arguments.");
		return;
	}
	if (expunge && !s->readonly)
		(void)expunge_deleted(s, NULL, 0, &k);
	s->n_expunge += (unsigned)k;
	s_unselect(s);
	s_tagged(s, c->tag, "OK %s completed.", expunge ? "Close" : "Unselect");
}

void
cmd_expunge(struct isess *s, const struct imap_command *c, int uid)
{
	size_t *idx = NULL, n = 0, k = 0;

	if (uid ? (c->args[0].nchildren != 1) : (c->args[0].nchildren != 0)) {
		s_bad(s, c->tag, "Invalid arguments.");
		return;
	}
	if (s->readonly) {
		s_tagged(s, c->tag, "NO [READ-ONLY] Mailbox is read-only.");
		return;
	}
	if (uid && s_seqset(s, c->tag, imap_arg_child(c, 0, 0), 1, &idx, &n) < 0)
		return;
	if (expunge_deleted(s, uid ? idx : NULL, n, &k) < 0) {
		free(idx);
		s_updates(s, 1);
		s_tagged(s, c->tag, "NO [SERVERBUG] Some messages could not be expunged.");
		return;
	}
	free(idx);
	s->n_expunge += (unsigned)k;
	s_updates(s, 1);
	/* With QRESYNC on, the tagged OK says where the expunges left
	 * HIGHESTMODSEQ (RFC 7162, 3.2), so the client's next resync
	 * starts from there. */
	if (s->qresync)
		s_tagged(s, c->tag, "OK [HIGHESTMODSEQ %" PRIu64 "] Expunge completed.",
		    mbx_highestmodseq(s->box->mb));
	else
		s_tagged(s, c->tag, "OK Expunge completed.");
}

/* A flag list or a single flag: system bits and keywords. 0 or -1 (BAD
 * text in *err_r). */
static int
parse_flags(const struct imap_command *c, size_t from, int list_only,
    unsigned *flags_r, char ***kw_r, const char **err_r)
{
	const struct imap_arg *a = imap_arg_child(c, 0, from);
	size_t li, k, n;

	*flags_r = 0;
	*kw_r = xcalloc(1, sizeof(char *));
	if (a == NULL) {
		*err_r = "Missing flags.";
		return -1;
	}
	/* "(\Seen foo)" or "\Seen foo" (RFC 3501 allows the list without
	 * parentheses in STORE). */
	if (a->kind == IMAP_ARG_LIST) {
		li = (size_t)(a - c->args);
		n = a->nchildren;
	} else if (list_only) {
		*err_r = "Invalid flag list.";
		return -1;
	} else {
		li = 0;
		n = c->args[0].nchildren - from;
	}
	for (k = 0; k < n; k++) {
		const struct imap_arg *f = imap_arg_child(c, li, li == 0 ? from + k : k);
		size_t i;
		if (f == NULL || f->kind != IMAP_ARG_ATOM) {
			*err_r = "Invalid flag.";
			return -1;
		}
		if (f->str[0] == '\\') {
			for (i = 0; i < sizeof(sysflags) / sizeof(*sysflags); i++)
				if (strcasecmp(f->str, sysflags[i].name) == 0)
					break;
			if (i == sizeof(sysflags) / sizeof(*sysflags)) {
				*err_r = "Invalid system flag.";
				return -1;
			}
			*flags_r |= sysflags[i].bit;
		} else if (f->len > MBX_KEYWORD_LEN_MAX || strpbrk(f->str, "[]") != NULL) {
			*err_r = "Invalid keyword.";
			return -1;
		} else if (!strv_contains_ci(*kw_r, f->str)) {
			if (strv_len(*kw_r) >= MBX_KEYWORDS_MAX) {
				*err_r = "Too many keywords.";
				return -1;
			}
			strv_push(kw_r, f->str);
		}
	}
	return 0;
}

void
cmd_store(struct isess *s, const struct imap_command *c, int uid)
{
	const struct imap_arg *item = imap_arg_child(c, 0, 1);
	size_t *idx = NULL, n = 0, fk = 2, nmod = 0;
	unsigned flags;
	char **kw = NULL, *err = NULL;
	const char *perr = NULL, *p;
	int mode, silent = 0, failed = 0, gone = 0, have_unch = 0;
	uint64_t unchangedsince = 0;
	uint32_t *modified = NULL;

	if (item != NULL && item->kind == IMAP_ARG_LIST) {
		/* (UNCHANGEDSINCE n): RFC 7162 3.1.3. */
		const struct imap_arg *u = imap_arg_child(c, (size_t)(item - c->args), 0);
		if (item->nchildren != 2 || u->kind != IMAP_ARG_ATOM
		    || strcasecmp(u->str, "UNCHANGEDSINCE") != 0
		    || num_arg(imap_arg_child(c, (size_t)(item - c->args), 1),
		    &unchangedsince) < 0) {
			s_bad(s, c->tag, "Invalid STORE modifier.");
			return;
		}
		have_unch = 1;
		s_condstore_on(s);
		item = imap_arg_child(c, 0, 2);
		fk = 3;
	}
	if (item == NULL || item->kind != IMAP_ARG_ATOM) {
		s_bad(s, c->tag, "Invalid arguments.");
		return;
	}
	p = item->str;
	mode = *p == '+' ? 1 : *p == '-' ? -1 : 0;
	if (mode != 0)
		p++;
	if (strncasecmp(p, "FLAGS", 5) != 0 || (p[5] != '\0' && strcasecmp(p + 5, ".SILENT") != 0)) {
		s_bad(s, c->tag, "Invalid STORE item.");
		return;
	}
	silent = p[5] != '\0';
	if (parse_flags(c, fk, 0, &flags, &kw, &perr) < 0) {
		strv_free(&kw);
		s_bad(s, c->tag, perr);
		return;
	}
	if (s_seqset(s, c->tag, imap_arg_child(c, 0, 0), uid, &idx, &n) < 0) {
		strv_free(&kw);
		return;
	}
	if (s->readonly) {
		strv_free(&kw);
		free(idx);
		s_tagged(s, c->tag, "NO [READ-ONLY] Mailbox is read-only.");
		return;
	}
	for (size_t j = 0; j < n; j++) {
		struct imsg *m = &s->msgs[idx[j]];
		unsigned nf = mode == 0 ? flags : mode > 0 ? m->flags | flags : m->flags & ~flags;
		char **nk = NULL;
		int r = 0;
		uint64_t modseq0 = m->modseq;

		if (m->gone) {
			gone = 1;
			continue;
		}
		if (have_unch && m->modseq > unchangedsince) {
			if (modified == NULL)
				modified = xcalloc(n, sizeof(*modified));
			modified[nmod++] = uid ? m->uid : (uint32_t)(idx[j] + 1);
			continue;
		}
		/* The new keyword set. */
		nk = xcalloc(1, sizeof(char *));
		if (mode >= 0)
			for (size_t i = 0; kw[i] != NULL; i++)
				strv_push(&nk, kw[i]);
		if (mode != 0)
			for (size_t i = 0; m->keywords[i] != NULL; i++)
				if (mode > 0 ? !strv_contains_ci(nk, m->keywords[i])
				    : !strv_contains_ci(kw, m->keywords[i]))
					strv_push(&nk, m->keywords[i]);
		if (nf != m->flags) {
			r = mbx_set_flags(s->box->mb, m->uid, nf & ~m->flags, m->flags & ~nf,
			    &m->modseq, &err);
			if (r == 0)
				m->flags = nf;
		}
		if (r == 0 && strv_len(nk) + strv_len(m->keywords) > 0) {
			int same = strv_len(nk) == strv_len(m->keywords);
			for (size_t i = 0; same && nk[i] != NULL; i++)
				same = strv_contains_ci(m->keywords, nk[i]);
			if (!same) {
				r = mbx_set_keywords(s->box->mb, m->uid, (const char *const *)nk,
				    &m->modseq, &err);
				if (r == 0) {
					imsg_free_kw(m);
					m->keywords = nk;
					nk = NULL;
				}
			}
		}
		strv_free(&nk);
		if (r == MBX_GONE) {
			m->gone = 1;
			gone = 1;
		} else if (r < 0) {
			log_warnx("user=<%s>: %s: store UID %" PRIu32 ": %s", s->user,
			    s->box_name, m->uid, err ? err : "?");
			xfree(&err);
			failed = 1;
		} else if (!silent || (s->condstore && m->modseq != modseq0)) {
			/* .SILENT still tells a CONDSTORE client the new
			 * MODSEQ, or its cache would keep the old one
			 * (RFC 7162 3.1.3). */
			struct buf b = BUF_INIT(0);
			if (!silent)
				s_keywords_seen(s, m->keywords);
			(void)buf_printf(&b, "* %zu FETCH (", idx[j] + 1);
			if (uid || s->condstore)
				(void)buf_printf(&b, "UID %" PRIu32 " ", m->uid);
			if (!silent) {
				(void)buf_puts(&b, "FLAGS ");
				imap_write_flags(&b, m->flags, m->keywords, s_recent(s, m));
			}
			if (s->condstore)
				(void)buf_printf(&b, "%sMODSEQ (%" PRIu64 ")", silent ? "" : " ",
				    m->modseq);
			(void)buf_puts(&b, ")\r\n");
			s_write(s, b.data, b.len);
			buf_free(&b);
		}
	}
	s->n_store++;
	strv_free(&kw);
	free(idx);
	imbox_changed(s->box);
	s_updates(s, 0);
	if (failed)
		s_tagged(s, c->tag, "NO [SERVERBUG] Some flags could not be stored.");
	else if (gone)
		s_tagged(s, c->tag, "NO [EXPUNGEISSUED] Some of the messages no longer exist.");
	else if (nmod > 0) {
		struct buf b = BUF_INIT(0);
		uidset_write(&b, modified, nmod);
		s_tagged(s, c->tag, "OK [MODIFIED %s] Conditional STORE failed.", buf_cstr(&b));
		buf_free(&b);
	} else
		s_tagged(s, c->tag, "OK Store completed.");
	free(modified);
}

/* ---- COPY, MOVE, APPEND: mbx_append producers ---- */

static int
produce_fd(mail_out_fn out, void *out_ctx, void *ctx)
{
	int fd = *(int *)ctx;
	char tmp[65536];
	ssize_t r;

	while ((r = read(fd, tmp, sizeof(tmp))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || out(tmp, (size_t)r, out_ctx) < 0)
			return -1;
	}
	return 0;
}

struct mem {
	const char *p;
	size_t n;
};

static int
produce_mem(mail_out_fn out, void *out_ctx, void *ctx)
{
	const struct mem *m = ctx;

	return m->n > 0 && out(m->p, m->n, out_ctx) < 0 ? -1 : 0;
}

void
cmd_copy(struct isess *s, const struct imap_command *c, int arg)
{
	int uid = arg & 1, move = arg >> 1, failed = 0;
	const struct imap_arg *dest = imap_arg_child(c, 0, 1);
	size_t *idx = NULL, n = 0, k = 0;
	uint32_t *src = NULL, *dst = NULL;
	struct imbox *to = NULL;
	char *name = NULL, *err = NULL;
	struct buf b = BUF_INIT(0);

	if (dest == NULL || imap_arg_child(c, 0, 2) != NULL) {
		s_bad(s, c->tag, "Invalid arguments.");
		return;
	}
	if (s_seqset(s, c->tag, imap_arg_child(c, 0, 0), uid, &idx, &n) < 0)
		return;
	if (move && s->readonly) {
		free(idx);
		s_tagged(s, c->tag, "NO [READ-ONLY] Mailbox is read-only.");
		return;
	}
	if (open_folder(s, c->tag, dest, 1, &name, &to) < 0) {
		free(idx);
		return;
	}
	src = xcalloc(n + 1, sizeof(*src));
	dst = xcalloc(n + 1, sizeof(*dst));
	if (!move) {
		/* RFC 9208: ask first, with the sizes the view knows. */
		uint64_t total = 0;
		for (size_t j = 0; j < n; j++)
			total += s->msgs[idx[j]].size;
		if (mbx_quota_check(to->mb, total, NULL) == 1)
			failed = 2;
	}
	for (size_t j = 0; j < n && !failed; j++) {
		struct imsg *m = &s->msgs[idx[j]];
		int fd = -1, r;
		uint32_t nu = 0;

		if (m->gone)
			continue;
		r = mbx_msg_open(s->box->mb, m->uid, &fd, &err);
		if (r == MBX_GONE) {
			m->gone = 1;
			continue;
		}
		if (r == 0)
			r = mbx_append(to->mb, produce_fd, &fd, m->flags, (time_t)m->internaldate,
			    &nu, &err);
		if (fd >= 0)
			close(fd);
		if (r == 0 && m->keywords[0] != NULL)
			r = mbx_set_keywords(to->mb, nu, (const char *const *)m->keywords, NULL, &err);
		if (r == MBX_OVERQUOTA) {
			xfree(&err);
			failed = 2;
			break;
		}
		if (r < 0) {
			log_warnx("user=<%s>: copy UID %" PRIu32 " to %s: %s", s->user, m->uid,
			    name, err ? err : "?");
			xfree(&err);
			failed = 1;
			break;
		}
		src[k] = m->uid;
		dst[k++] = nu;
	}
	if (failed && k > 0) {
		/* All or nothing (RFC 9051 6.4.7): take the copies back. */
		(void)mbx_expunge(to->mb, dst, k, NULL);
		k = 0;
	}
	if (k > 0)
		imbox_changed(to);
	if (!failed && k > 0) {
		(void)buf_printf(&b, "[COPYUID %" PRIu32 " ", mbx_uidvalidity(to->mb));
		uidset_write(&b, src, k);
		(void)buf_putc(&b, ' ');
		uidset_write(&b, dst, k);
		(void)buf_putc(&b, ']');
	}
	if (!failed && move && k > 0) {
		if (mbx_expunge(s->box->mb, src, k, &err) < 0) {
			log_warnx("user=<%s>: move from %s: %s", s->user, s->box_name,
			    err ? err : "?");
			xfree(&err);
			failed = 1;
		}
		imbox_changed(s->box);
		s_untagged(s, "OK %s Moved.", buf_cstr(&b));
	}
	s->n_copy += (unsigned)k;
	imbox_release(&to);
	free(name);
	free(idx);
	free(src);
	free(dst);
	s_updates(s, 1);
	if (failed == 2)
		s_tagged(s, c->tag, "NO [OVERQUOTA] Quota exceeded.");
	else if (failed)
		s_tagged(s, c->tag, "NO [SERVERBUG] %s failed.", move ? "Move" : "Copy");
	else if (move)
		s_tagged(s, c->tag, "OK Move completed.");
	else
		s_tagged(s, c->tag, "OK %s%sCopy completed.", buf_cstr(&b), b.len ? " " : "");
	buf_free(&b);
}

/* The message of one APPEND at argument k: a literal (or literal8,
 * RFC 3516), or with UTF8=ACCEPT enabled "UTF8 (literal8)" (RFC 6855
 * section 4). NULL if neither; *k_r moves past it. */
static const struct imap_arg *
append_data(const struct isess *s, const struct imap_command *c, size_t *k_r)
{
	const struct imap_arg *a = imap_arg_child(c, 0, *k_r), *l, *lit;

	if (a != NULL && a->kind == IMAP_ARG_LITERAL) {
		(*k_r)++;
		return a;
	}
	if (a == NULL || !s->utf8 || a->kind != IMAP_ARG_ATOM
	    || strcasecmp(a->str, "UTF8") != 0)
		return NULL;
	l = imap_arg_child(c, 0, *k_r + 1);
	if (l == NULL || l->kind != IMAP_ARG_LIST || l->nchildren != 1)
		return NULL;
	lit = imap_arg_child(c, (size_t)(l - c->args), 0);
	if (lit == NULL || lit->kind != IMAP_ARG_LITERAL)
		return NULL;
	*k_r += 2;
	return lit;
}

void
cmd_append(struct isess *s, const struct imap_command *c, int arg)
{
	const struct imap_arg *a;
	struct imbox *to = NULL;
	char *name = NULL, *err = NULL;
	uint32_t *uids = NULL;
	size_t k = 0, nuids = 0, argc = c->args[0].nchildren;
	struct buf b = BUF_INIT(0);
	int failed = 0;

	if (argc < 2) {
		s_bad(s, c->tag, "Invalid arguments.");
		return;
	}
	/* Check every message's arguments before storing any. */
	for (k = 1; k < argc; ) {
		a = imap_arg_child(c, 0, k);
		if (a->kind == IMAP_ARG_LIST)
			a = imap_arg_child(c, 0, ++k);
		if (a != NULL && a->kind == IMAP_ARG_QUOTED)
			a = imap_arg_child(c, 0, ++k);
		if (a == NULL || append_data(s, c, &k) == NULL) {
			s_bad(s, c->tag, "Invalid arguments: a message literal was expected.");
			return;
		}
		nuids++;
	}
	if (open_folder(s, c->tag, imap_arg_child(c, 0, 0), 1, &name, &to) < 0)
		return;
	uids = xcalloc(nuids + 1, sizeof(*uids));
	nuids = 0;
	for (k = 1; k < argc && !failed; ) {
		unsigned flags = 0;
		char **kw = NULL;
		int64_t when = 0;
		const char *perr = NULL;
		struct mem m;

		a = imap_arg_child(c, 0, k);
		if (a->kind == IMAP_ARG_LIST) {
			if (parse_flags(c, k, 1, &flags, &kw, &perr) < 0) {
				strv_free(&kw);
				s_bad(s, c->tag, perr);
				goto out_noreply;
			}
			a = imap_arg_child(c, 0, ++k);
		}
		if (a->kind == IMAP_ARG_QUOTED) {
			if (imap_parse_datetime(a->str, a->len, &when) < 0) {
				strv_free(&kw);
				s_bad(s, c->tag, "Invalid date-time.");
				goto out_noreply;
			}
			a = imap_arg_child(c, 0, ++k);
		}
		a = append_data(s, c, &k);
		m.p = a->str;
		m.n = a->len;
		if (a->len == 0) {
			strv_free(&kw);
			s_tagged(s, c->tag, "NO Empty message.");
			goto out_noreply;
		}
		int ar = mbx_append(to->mb, produce_mem, &m, flags, (time_t)when,
		    &uids[nuids], &err);
		if (ar == MBX_OVERQUOTA) {
			xfree(&err);
			failed = 2;
		} else if (ar < 0 || (kw != NULL && kw[0] != NULL && mbx_set_keywords(to->mb,
		    uids[nuids], (const char *const *)kw, NULL, &err) < 0)) {
			log_warnx("user=<%s>: append to %s: %s", s->user, name, err ? err : "?");
			xfree(&err);
			failed = 1;
		} else {
			nuids++;
		}
		strv_free(&kw);
	}
	if (failed && nuids > 0) {
		(void)mbx_expunge(to->mb, uids, nuids, NULL);
		nuids = 0;
	}
	if (nuids > 0)
		imbox_changed(to);
	s->n_append += (unsigned)nuids;
	s_updates(s, 1);
	if (failed == 2) {
		s_tagged(s, c->tag, "NO [OVERQUOTA] Quota exceeded.");
	} else if (failed) {
		s_tagged(s, c->tag, "NO [SERVERBUG] Append failed.");
	} else {
		(void)buf_printf(&b, "OK [APPENDUID %" PRIu32 " ", mbx_uidvalidity(to->mb));
		uidset_write(&b, uids, nuids);
		(void)buf_puts(&b, "] Append completed.");
		s_tagged(s, c->tag, "%s", buf_cstr(&b));
	}
out_noreply:
	buf_free(&b);
	free(uids);
	free(name);
	imbox_release(&to);
}

/* QUOTA (RFC 9208): one quota root, "", for all of the user's folders;
 * its limit is the administrator's (mailbox_size_limit or
 * virtual_mailbox_limit_maps), so SETQUOTA is refused. */
void
cmd_quota(struct isess *s, const struct imap_command *c, int what)
{
	const struct imap_arg *a = imap_arg_child(c, 0, 0);
	struct imbox *b = NULL;
	char *path = NULL, *name = NULL, *err = NULL;
	uint64_t bytes = 0, count = 0, limit = 0;

	if (what == 2) {
		s_tagged(s, c->tag, "NO [NOPERM] Quotas are set by the administrator.");
		return;
	}
	if (a == NULL || !imap_arg_is_string(a) || imap_arg_child(c, 0, 1) != NULL) {
		s_bad(s, c->tag, "Invalid arguments.");
		return;
	}
	if (what == 1) {
		if (open_folder(s, c->tag, a, 0, &name, &b) < 0)
			return;
		struct buf l = BUF_INIT(0);
		(void)buf_puts(&l, "* QUOTAROOT ");
		imap_write_mailbox(&l, name, s->utf8);
		(void)buf_puts(&l, s->quota > 0 ? " \"\"\r\n" : "\r\n");
		s_write(s, l.data, l.len);
		buf_free(&l);
	} else if (a->len != 0 || s->quota == 0) {
		s_tagged(s, c->tag, "NO [NONEXISTENT] No such quota root.");
		return;
	} else if (s->box != NULL) {
		b = s->box;
		b->refs++;
	} else {
		path = xstrdup(s->maildir);
		b = s_box_acquire(s, path, 1, &err);
		if (b == NULL) {
			log_warnx("user=<%s>: quota: %s", s->user, err ? err : "?");
			free(err);
			free(path);
			s_tagged(s, c->tag, "NO [SERVERBUG] Cannot read the quota.");
			return;
		}
	}
	if (s->quota > 0) {
		if (mbx_quota_get(b->mb, &bytes, &count, &limit, &err) < 0) {
			log_warnx("user=<%s>: quota: %s", s->user, err ? err : "?");
			xfree(&err);
		} else {
			s_untagged(s, "QUOTA \"\" (STORAGE %" PRIu64 " %" PRIu64 ")",
			    (bytes + 1023) / 1024, limit / 1024);
		}
	}
	imbox_release(&b);
	free(path);
	free(name);
	s_tagged(s, c->tag, "OK %s completed.", what ? "Getquotaroot" : "Getquota");
}
