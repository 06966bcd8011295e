/*
 * index_msg - changes to one message of an indexed Maildir: open its file
 * wherever another process renamed it, flags (a Maildir rename plus a new
 * MODSEQ), keywords, expunge with records for QRESYNC, IMAP APPEND and
 * the per-message cache. Contract: index.h.
 *
 * Invariants: every rename and unlink happens under the index flock and
 * before the transaction that records it, so a crash in between leaves a
 * state reconcile repairs from the files; no transaction is open while
 * files are touched.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/db.h"
#include "util/strv.h"
#include "store/index.h"
#include "store/index_int.h"
#include "store/quota.h"

/* Find the current file of a message whose recorded name is stale:
 * new/BASE, or cur/BASE or cur/BASE:<anything>. *name_r xmalloc'd. */
static int
find_file(const char *path, const char *base, size_t blen, char **name_r)
{
	char *p = xasprintf("%s/new/%.*s", path, (int)blen, base);
	struct dirent *de;
	struct stat st;
	DIR *d;

	*name_r = NULL;
	if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
		*name_r = xasprintf("new/%.*s", (int)blen, base);
		free(p);
		return 0;
	}
	free(p);
	p = xasprintf("%s/cur", path);
	d = opendir(p);
	free(p);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, base, blen) == 0 &&
		    (de->d_name[blen] == '\0' || de->d_name[blen] == ':')) {
			*name_r = xasprintf("cur/%s", de->d_name);
			break;
		}
	closedir(d);
	return *name_r != NULL ? 0 : -1;
}

int
mbx_msg_open(struct mailbox *mb, uint32_t uid, int *fd_r, char **err_r)
{
	struct mbx_msg m;
	char *p, *cur = NULL;
	int rc, fd, tries;

	*fd_r = -1;
	if ((rc = mbx_msg_get(mb, uid, &m, err_r)) != 0)
		return rc;
	for (tries = 0; tries < 3; tries++) {
		p = xasprintf("%s/%s", mb->path, cur != NULL ? cur : m.name);
		fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		free(p);
		if (fd >= 0) {
			*fd_r = fd;
			break;
		}
		if (errno != ENOENT) {
			rc = idx_fail(err_r, MBX_ERR, xasprintf("open %s/%s: %s", mb->path,
			    cur != NULL ? cur : m.name, strerror(errno)));
			break;
		}
		/* Renamed by another process (a flag change) or expunged. */
		free(cur);
		if (find_file(mb->path, m.name + 4, idx_base_len(m.name + 4), &cur) != 0) {
			rc = MBX_GONE;
			break;
		}
	}
	if (*fd_r < 0 && rc == 0)
		rc = MBX_GONE;
	free(cur);
	mbx_msg_free(&m);
	return rc;
}

/* ---- changes ---- */

struct change_ctx {
	struct mailbox *mb;
	uint32_t uid;
	unsigned flags;       /* set_flags: the new flags */
	const char *name;     /* set_flags: the new name */
	const char *kw;       /* set_keywords: space-separated */
	uint64_t modseq;      /* out */
};

static int
change_fn(MDB_txn *txn, void *ctx)
{
	struct change_ctx *cc = ctx;
	struct hdr h;
	struct rec r;
	const char *name, *kw;
	char *n, *k;
	int rc;

	if ((rc = idx_hdr_get(cc->mb, txn, &h)) != 0)
		return rc;
	rc = idx_get_rec(cc->mb, txn, cc->uid, &r, &name, &kw);
	if (rc == MDB_NOTFOUND)
		return MBX_GONE;
	if (rc != 0)
		return rc;
	n = cc->name != NULL ? xstrdup(cc->name) : xstrndup(name, r.namelen);
	k = cc->kw != NULL ? xstrdup(cc->kw) : xstrndup(kw, r.kwlen);
	if (cc->name != NULL)
		r.flags = cc->flags;
	r.modseq = cc->modseq = ++h.highestmodseq;
	rc = idx_put_rec(cc->mb, txn, cc->uid, &r, n, k);
	free(n);
	free(k);
	if (rc == 0)
		rc = idx_hdr_put(cc->mb, txn, &h);
	if (rc == 0)
		cc->mb->hdr = h;
	return rc;
}

int
mbx_set_flags(struct mailbox *mb, uint32_t uid, unsigned add, unsigned remove,
    uint64_t *modseq_r, char **err_r)
{
	struct change_ctx cc = { .mb = mb, .uid = uid };
	struct mbx_msg m;
	char *cur = NULL, *from, *to, *newname = NULL;
	size_t blen;
	int rc, tries;

	if (mb->readonly)
		return idx_fail(err_r, MBX_ERR, xstrdup("mailbox is read-only"));
	if (idx_lock_ex(mb, err_r) != 0)
		return MBX_ERR;
	if ((rc = mbx_msg_get(mb, uid, &m, err_r)) != 0) {
		idx_unlock(mb);
		return rc;
	}
	cc.flags = ((m.flags | add) & ~remove) & MBX_FLAGS_ALL;
	if (cc.flags == m.flags) {
		if (modseq_r != NULL)
			*modseq_r = m.modseq;
		goto out;
	}
	blen = idx_base_len(m.name + 4);
	cur = xstrdup(m.name);
	for (tries = 0; tries < 3; tries++) {
		free(newname);
		newname = idx_flagged_name(m.name + 4, blen, cur, cc.flags);
		from = xasprintf("%s/%s", mb->path, cur);
		to = xasprintf("%s/%s", mb->path, newname);
		rc = strcmp(from, to) == 0 ? 0 : rename(from, to);
		free(from);
		free(to);
		if (rc == 0)
			break;
		if (errno != ENOENT) {
			rc = idx_fail(err_r, MBX_ERR, xasprintf("rename %s/%s: %s", mb->path, cur,
			    strerror(errno)));
			goto out;
		}
		free(cur);
		if (find_file(mb->path, m.name + 4, blen, &cur) != 0) {
			rc = MBX_GONE;
			goto out;
		}
	}
	if (rc != 0) {
		rc = MBX_GONE;
		goto out;
	}
	cc.name = newname;
	rc = db_write(&mb->db, change_fn, &cc, err_r);
	if (rc == 0 && modseq_r != NULL)
		*modseq_r = cc.modseq;
	if (rc != 0 && rc != MBX_GONE)
		rc = MBX_ERR;
out:
	idx_unlock(mb);
	free(cur);
	free(newname);
	mbx_msg_free(&m);
	return rc;
}

int
mbx_keyword_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > MBX_KEYWORD_LEN_MAX)
		return 0;
	for (; *k != '\0'; k++)
		if ((unsigned char)*k <= ' ' || (unsigned char)*k >= 127 ||
		    strchr("(){%*\"\\]", *k) != NULL)
			return 0;
	return 1;
}

int
mbx_set_keywords(struct mailbox *mb, uint32_t uid, const char *const *keywords,
    uint64_t *modseq_r, char **err_r)
{
	struct change_ctx cc = { .mb = mb, .uid = uid };
	struct buf_s { char *p; size_t n; } b = { xstrdup(""), 0 };
	size_t i;
	int rc;

	if (mb->readonly)
		return idx_fail(err_r, MBX_ERR, xstrdup("mailbox is read-only"));
	for (i = 0; keywords != NULL && keywords[i] != NULL; i++) {
		char *nb;

		if (i >= MBX_KEYWORDS_MAX || !mbx_keyword_ok(keywords[i])) {
			free(b.p);
			return idx_fail(err_r, MBX_ERR, xasprintf("bad or too many keywords"));
		}
		nb = xasprintf("%s%s%s", b.p, i > 0 ? " " : "", keywords[i]);
		free(b.p);
		b.p = nb;
	}
	cc.kw = b.p;
	rc = db_write(&mb->db, change_fn, &cc, err_r);
	free(b.p);
	if (rc == 0 && modseq_r != NULL)
		*modseq_r = cc.modseq;
	return rc == 0 || rc == MBX_GONE ? rc : MBX_ERR;
}

struct expunge_ctx {
	struct mailbox *mb;
	const uint32_t *uids;
	size_t n;
};

static int
expunge_fn(MDB_txn *txn, void *ctx)
{
	struct expunge_ctx *ec = ctx;
	struct hdr h;
	size_t i;
	int rc, any = 0;

	if ((rc = idx_hdr_get(ec->mb, txn, &h)) != 0)
		return rc;
	h.highestmodseq++;
	for (i = 0; i < ec->n; i++) {
		struct rec r;
		const char *name, *kw;
		char *n;

		rc = idx_get_rec(ec->mb, txn, ec->uids[i], &r, &name, &kw);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		n = xstrndup(name, r.namelen);
		rc = idx_del_uid(ec->mb, txn, ec->uids[i], n, h.highestmodseq);
		free(n);
		if (rc != 0)
			return rc;
		any = 1;
	}
	if (!any)
		return 0;
	if ((rc = idx_hdr_put(ec->mb, txn, &h)) == 0)
		ec->mb->hdr = h;
	return rc;
}

int
mbx_expunge(struct mailbox *mb, const uint32_t *uids, size_t n, char **err_r)
{
	struct expunge_ctx ec = { mb, uids, n };
	size_t i;
	int rc = 0;

	if (mb->readonly)
		return idx_fail(err_r, MBX_ERR, xstrdup("mailbox is read-only"));
	if (idx_lock_ex(mb, err_r) != 0)
		return MBX_ERR;
	int64_t freed = 0, nfreed = 0;
	for (i = 0; i < n; i++) {
		struct mbx_msg m;
		char *p, *cur = NULL;

		if (mbx_msg_get(mb, uids[i], &m, NULL) != 0)
			continue;
		freed += (int64_t)m.size;
		nfreed++;
		p = xasprintf("%s/%s", mb->path, m.name);
		if (unlink(p) != 0 && errno == ENOENT &&
		    find_file(mb->path, m.name + 4, idx_base_len(m.name + 4), &cur) == 0) {
			free(p);
			p = xasprintf("%s/%s", mb->path, cur);
			(void)unlink(p);
		}
		free(p);
		free(cur);
		mbx_msg_free(&m);
	}
	/* The unlinks before the records: a crash in between is repaired
	 * by the next reconcile, which sees the files gone. */
	rc = db_write(&mb->db, expunge_fn, &ec, err_r);
	idx_unlock(mb);
	if (mb->quota_limit > 0)
		(void)quota_update(mb->quota_root, mb->quota_limit, -freed, -nfreed, NULL);
	return rc == 0 ? 0 : MBX_ERR;
}

/* ---- quota ---- */

void
mbx_set_quota(struct mailbox *mb, const char *root, uint64_t limit)
{
	free(mb->quota_root);
	mb->quota_root = limit > 0 ? xstrdup(root) : NULL;
	mb->quota_limit = limit;
}

int
mbx_quota_get(struct mailbox *mb, uint64_t *bytes_r, uint64_t *count_r,
    uint64_t *limit_r, char **err_r)
{
	*limit_r = mb->quota_limit;
	*bytes_r = *count_r = 0;
	if (mb->quota_limit == 0)
		return 0;
	return quota_get(mb->quota_root, mb->quota_limit, bytes_r, count_r, err_r) == 0
	    ? 0 : MBX_ERR;
}

int
mbx_quota_check(struct mailbox *mb, uint64_t bytes, char **err_r)
{
	if (mb->quota_limit == 0)
		return 0;
	int r = quota_check(mb->quota_root, mb->quota_limit, bytes, err_r);
	return r < 0 ? MBX_ERR : r;
}

struct exp_ctx {
	struct mailbox *mb;
	uint64_t since;
	struct mbx_expunge *v;
	size_t n;
};

static int
exp_fn(MDB_txn *txn, void *ctx)
{
	struct exp_ctx *xc = ctx;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	free(xc->v);
	xc->v = NULL;
	xc->n = 0;
	rc = mdb_cursor_open(txn, xc->mb->db.dbi[DB_EXP], &cur);
	while (rc == 0 && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		uint64_t ms;

		if (v.mv_size != sizeof(ms)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(&ms, v.mv_data, sizeof(ms));
		if (ms <= xc->since)
			continue;
		xc->v = xreallocarray(xc->v, xc->n + 1, sizeof(*xc->v));
		xc->v[xc->n].uid = idx_key_uid(&k);
		xc->v[xc->n].modseq = ms;
		xc->n++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
mbx_expunged_since(struct mailbox *mb, uint64_t since, struct mbx_expunge **exp_r,
    size_t *n_r, char **err_r)
{
	struct exp_ctx xc = { mb, since, NULL, 0 };

	*exp_r = NULL;
	*n_r = 0;
	if (db_read(&mb->db, exp_fn, &xc, err_r) != 0) {
		free(xc.v);
		return MBX_ERR;
	}
	*exp_r = xc.v;
	*n_r = xc.n;
	return 0;
}

struct name_ctx {
	struct mailbox *mb;
	const char *base;
	size_t blen;
	uint32_t uid;
};

static int
name_fn(MDB_txn *txn, void *ctx)
{
	struct name_ctx *nc = ctx;
	MDB_val k = { nc->blen, (void *)nc->base }, v;
	int rc = mdb_get(txn, nc->mb->db.dbi[DB_NAME], &k, &v);

	if (rc == MDB_NOTFOUND)
		return MBX_GONE;
	if (rc == 0 && v.mv_size == 4)
		memcpy(&nc->uid, v.mv_data, 4);
	return rc;
}

int
mbx_append(struct mailbox *mb, mail_producer_fn produce, void *ctx, unsigned flags,
    time_t internaldate, uint32_t *uid_r, char **err_r)
{
	char name[MAILDIR_NAME_MAX], *p, *to, *newname;
	struct name_ctx nc = { .mb = mb };
	struct timespec ts[2];
	const char *dsn;
	char *err = NULL;

	if (mb->readonly)
		return idx_fail(err_r, MBX_ERR, xstrdup("mailbox is read-only"));
	/* Count (or recount) before the new file exists, so a recount does
	 * not find it and then have it added a second time. */
	if (mb->quota_limit > 0) {
		int over = mbx_quota_check(mb, 0, err_r);
		if (over != 0)
			return over > 0 ? idx_fail(err_r, MBX_OVERQUOTA, xstrdup("quota exceeded"))
			    : MBX_ERR;
	}
	if (maildir_deliver(mb->path, produce, ctx, name, sizeof(name), &dsn, &err) != 0)
		return idx_fail(err_r, MBX_ERR, err);
	p = xasprintf("%s/new/%s", mb->path, name);
	if (mb->quota_limit > 0) {
		/* Checked with the exact size once written; the file is in
		 * new/ only for this moment, before any reconcile of ours. */
		struct stat st;
		int over = stat(p, &st) != 0 ? -1 : mbx_quota_check(mb, (uint64_t)st.st_size,
		    err_r);
		if (over != 0) {
			(void)unlink(p);
			free(p);
			return over > 0 ? idx_fail(err_r, MBX_OVERQUOTA, xstrdup("quota exceeded"))
			    : idx_fail(err_r, MBX_ERR, xstrdup("cannot check the quota"));
		}
		(void)quota_update(mb->quota_root, mb->quota_limit, (int64_t)st.st_size, 1,
		    NULL);
	}
	if (internaldate != 0) {
		ts[0].tv_sec = ts[1].tv_sec = internaldate;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		(void)utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
	}
	if ((flags & MBX_FLAGS_ALL) != 0) {
		newname = idx_flagged_name(name, strlen(name), NULL, flags & MBX_FLAGS_ALL);
		to = xasprintf("%s/%s", mb->path, newname);
		if (rename(p, to) != 0) {
			int e = errno;

			free(to);
			free(newname);
			free(p);
			return idx_fail(err_r, MBX_ERR, xasprintf("rename %s: %s", name, strerror(e)));
		}
		free(to);
		free(newname);
	}
	free(p);
	if (idx_reconcile(mb, NULL, err_r) != 0)
		return MBX_ERR;
	nc.base = name;
	nc.blen = strlen(name);
	if (db_read(&mb->db, name_fn, &nc, err_r) != 0)
		return idx_fail(err_r, MBX_ERR, xasprintf("%s: appended but not indexed", name));
	if (uid_r != NULL)
		*uid_r = nc.uid;
	return 0;
}

/* ---- cache ---- */

struct cache_ctx {
	struct mailbox *mb;
	uint32_t uid;
	const void *data;
	size_t len;
	void *out;
	size_t outlen;
};

static int
cache_get_fn(MDB_txn *txn, void *ctx)
{
	struct cache_ctx *cc = ctx;
	unsigned char kb[4];
	MDB_val k = { 4, kb }, v;
	int rc;

	idx_uid_key(cc->uid, kb);
	rc = mdb_get(txn, cc->mb->db.dbi[DB_CACHE], &k, &v);
	if (rc == MDB_NOTFOUND)
		return MBX_GONE;
	if (rc == 0) {
		cc->out = xmalloc(v.mv_size + 1);
		memcpy(cc->out, v.mv_data, v.mv_size);
		cc->outlen = v.mv_size;
	}
	return rc;
}

static int
cache_put_fn(MDB_txn *txn, void *ctx)
{
	struct cache_ctx *cc = ctx;
	unsigned char kb[4];
	MDB_val k = { 4, kb }, v = { cc->len, (void *)cc->data }, mv;
	int rc;

	idx_uid_key(cc->uid, kb);
	rc = mdb_get(txn, cc->mb->db.dbi[DB_MSG], &k, &mv);
	if (rc == MDB_NOTFOUND)
		return MBX_GONE;
	if (rc == 0)
		rc = mdb_put(txn, cc->mb->db.dbi[DB_CACHE], &k, &v, 0);
	return rc;
}

int
mbx_cache_get(struct mailbox *mb, uint32_t uid, void **data_r, size_t *len_r,
    char **err_r)
{
	struct cache_ctx cc = { .mb = mb, .uid = uid };
	int rc;

	*data_r = NULL;
	*len_r = 0;
	rc = db_read(&mb->db, cache_get_fn, &cc, err_r);
	if (rc != 0) {
		free(cc.out);
		return rc == MBX_GONE ? MBX_GONE : MBX_ERR;
	}
	*data_r = cc.out;
	*len_r = cc.outlen;
	return 0;
}

int
mbx_cache_put(struct mailbox *mb, uint32_t uid, const void *data, size_t len,
    char **err_r)
{
	struct cache_ctx cc = { .mb = mb, .uid = uid, .data = data, .len = len };
	int rc;

	if (len > MBX_CACHE_MAX)
		return idx_fail(err_r, MBX_ERR, xasprintf("cache entry of %zu bytes too large", len));
	rc = db_write(&mb->db, cache_put_fn, &cc, err_r);
	return rc == 0 || rc == MBX_GONE ? rc : MBX_ERR;
}

/* ---- \Recent ----
 * One key in the hdr database, "recent": the first UID no session has
 * claimed yet (absent: 1). */

struct recent_ctx {
	struct mailbox *mb;
	int claim;
	uint32_t lo, hi;
};

static int
recent_get(struct recent_ctx *rc, MDB_txn *txn)
{
	MDB_val k = { 6, "recent" }, v;
	int r = mdb_get(txn, rc->mb->db.dbi[DB_HDR], &k, &v);

	if (r == MDB_NOTFOUND) {
		rc->lo = 1;
		return 0;
	}
	if (r != 0)
		return r;
	if (v.mv_size != sizeof(rc->lo))
		return MDB_CORRUPTED;
	memcpy(&rc->lo, v.mv_data, sizeof(rc->lo));
	return 0;
}

static int
recent_fn(MDB_txn *txn, void *ctx)
{
	struct recent_ctx *rc = ctx;
	struct hdr h;
	int r;

	if ((r = idx_hdr_get(rc->mb, txn, &h)) != 0 || (r = recent_get(rc, txn)) != 0)
		return r;
	rc->mb->hdr = h;
	rc->hi = h.uidnext;
	if (rc->lo > rc->hi)
		rc->lo = rc->hi;
	if (rc->claim && rc->lo < rc->hi) {
		MDB_val k = { 6, "recent" }, v = { sizeof(rc->hi), &rc->hi };
		return mdb_put(txn, rc->mb->db.dbi[DB_HDR], &k, &v, 0);
	}
	return 0;
}

int
mbx_recent_claim(struct mailbox *mb, uint32_t *lo_r, uint32_t *hi_r, char **err_r)
{
	struct recent_ctx rc = { .mb = mb, .claim = 0 };

	/* Look first: most calls find nothing new and must not write (a
	 * write wakes every watcher of the index file). */
	if (db_read(&mb->db, recent_fn, &rc, err_r) != 0)
		return MBX_ERR;
	if (rc.lo < rc.hi && !mb->readonly) {
		rc.claim = 1;
		if (db_write(&mb->db, recent_fn, &rc, err_r) != 0)
			return MBX_ERR;
	} else {
		rc.lo = rc.hi;
	}
	*lo_r = rc.lo;
	*hi_r = rc.hi;
	return 0;
}

int
mbx_recent_first(struct mailbox *mb, uint32_t *first_r, char **err_r)
{
	struct recent_ctx rc = { .mb = mb, .claim = 0 };

	if (db_read(&mb->db, recent_fn, &rc, err_r) != 0)
		return MBX_ERR;
	*first_r = rc.lo;
	return 0;
}
