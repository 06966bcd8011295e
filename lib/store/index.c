/*
 * index - a Maildir and its LMDB index (see index.h for the contract).
 *
 * Databases in MAILDIR/postern.index:
 *   hdr   "hdr" -> struct hdr (version, UIDVALIDITY, uidnext, HIGHESTMODSEQ)
 *   msg   UID (4 bytes big-endian, so cursor order is UID order)
 *         -> struct rec, then the file name ("cur/BASE:2,FS"), then the
 *         keywords separated by spaces
 *   name  BASE (the file name up to ':') -> UID
 *   exp   UID -> MODSEQ of its expunge
 *   cache UID -> opaque bytes
 *
 * Invariants: uidnext only grows and only inside a committed write
 * transaction, which is also the only place a UID is given to a file
 * (LMDB's writer lock makes that one process at a time); every change of
 * flags, keywords, name or existence takes a new MODSEQ = ++HIGHESTMODSEQ
 * in the same transaction. Renames and unlinks happen under flock on the
 * index file and before the transaction, so a crash between the two leaves
 * a state the next reconcile repairs from the files (they are the truth).
 * Trusts: the index as much as LMDB does, but every record is length-
 * checked (a bad one is reported as corruption); nothing of the Maildir:
 * symlinks and non-regular files are ignored, names are bounded.
 * Limits: a file whose base name is longer than NAME_MAX_INDEXED (400)
 * bytes is not indexed, so POP3 and IMAP do not see it; at most SCAN_MAX
 * files per mailbox. Keywords are kept in the index only, not in the
 * Maildir file names.
 * This file: open, rebuild, reconcile and reading; changes to messages
 * are in index_msg.c, Maildir++ folders in folder.c (shared internals:
 * index_int.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/db.h"
#include "util/fsutil.h"
#include "util/strv.h"
#include "store/index.h"
#include "store/index_int.h"
#include "store/uidlist.h"

#define NAME_MAX_INDEXED 400           /* < LMDB's 511-byte key limit */
#define SCAN_MAX 10000000              /* files per mailbox */
#define INDEX_MAPSIZE ((size_t)4 << 20)

static const char *const dbnames[] = { "hdr", "msg", "name", "exp", "cache", NULL };

/* A test may stop the process inside the reconcile write transaction,
 * after UIDs were assigned and before the commit (t/unit/test_index.c). */
void (*mbx_hook_in_txn)(void);

int
idx_fail(char **err_r, int rc, char *text)
{
	if (err_r != NULL && *err_r == NULL)
		*err_r = text;
	else
		free(text);
	return rc;
}

void
idx_uid_key(uint32_t uid, unsigned char k[4])
{
	k[0] = (unsigned char)(uid >> 24);
	k[1] = (unsigned char)(uid >> 16);
	k[2] = (unsigned char)(uid >> 8);
	k[3] = (unsigned char)uid;
}

uint32_t
idx_key_uid(const MDB_val *k)
{
	const unsigned char *p = k->mv_data;

	if (k->mv_size != 4)
		return 0;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- Maildir names and flags ---- */

static const struct {
	char letter;
	unsigned flag;
} letters[] = {
	{ 'D', MBX_DRAFT }, { 'F', MBX_FLAGGED }, { 'R', MBX_ANSWERED },
	{ 'S', MBX_SEEN }, { 'T', MBX_DELETED },
};

/* Length of the base name: up to the first ':'. */
size_t
idx_base_len(const char *file)
{
	return strcspn(file, ":");
}

static unsigned
info_flags(const char *file)
{
	const char *info = strstr(file, ":2,");
	unsigned f = 0;
	size_t i;

	if (info == NULL)
		return 0;
	for (info += 3; *info != '\0'; info++)
		for (i = 0; i < sizeof(letters) / sizeof(letters[0]); i++)
			if (*info == letters[i].letter)
				f |= letters[i].flag;
	return f;
}

/* "cur/BASE:2,<letters>", keeping letters of the old info we do not own
 * (keyword letters other tools set), all in ASCII order as Maildir asks. */
char *
idx_flagged_name(const char *base, size_t blen, const char *oldfile, unsigned flags)
{
	char set[128] = { 0 }, info[130];
	const char *old = oldfile != NULL ? strstr(oldfile, ":2,") : NULL;
	size_t i, n = 0;
	int c;

	if (old != NULL)
		for (old += 3; *old != '\0'; old++)
			if ((unsigned char)*old > ' ' && (unsigned char)*old < 127)
				set[(unsigned char)*old] = 1;
	for (i = 0; i < sizeof(letters) / sizeof(letters[0]); i++)
		set[(unsigned char)letters[i].letter] = (flags & letters[i].flag) != 0;
	for (c = 33; c < 127; c++)
		if (set[c] && c != ',' && c != ':' && c != '/')
			info[n++] = (char)c;
	info[n] = '\0';
	return xasprintf("cur/%.*s:2,%s", (int)blen, base, info);
}

/* ---- scanning the Maildir ---- */

struct sfile {
	char *name;           /* "new/X" or "cur/X:2,..." */
	size_t blen;          /* base length, within name + 4 */
	int64_t mtime;
	uint64_t size;
};

struct scan {
	struct sfile *v;
	size_t n, cap;
};

static const char *
sbase(const struct sfile *f)
{
	return f->name + 4;
}

static int
sfile_cmp_base_only(const void *a, const void *b)
{
	const struct sfile *x = a, *y = b;
	size_t n = x->blen < y->blen ? x->blen : y->blen;
	int c = memcmp(sbase(x), sbase(y), n);

	if (c != 0)
		return c;
	return x->blen == y->blen ? 0 : x->blen < y->blen ? -1 : 1;
}

static int
sfile_cmp_base(const void *a, const void *b)
{
	const struct sfile *x = a, *y = b;
	int c = sfile_cmp_base_only(a, b);

	if (c != 0)
		return c;
	/* cur/ before new/: a copy in both is the moved one */
	return x->name[0] == y->name[0] ? 0 : x->name[0] == 'c' ? -1 : 1;
}

static int
sfile_cmp_arrival(const void *a, const void *b)
{
	const struct sfile *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(sbase(x), sbase(y));
}

static void
scan_free(struct scan *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int
scan_dir(const char *path, const char *sub, struct scan *s, char **err_r)
{
	char *dpath = xasprintf("%s/%s", path, sub);
	struct dirent *de;
	struct stat st;
	DIR *d;
	int dfd;

	d = opendir(dpath);
	if (d == NULL) {
		int e = errno;

		idx_fail(err_r, MBX_ERR, xasprintf("open %s: %s", dpath, strerror(e)));
		free(dpath);
		return MBX_ERR;
	}
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		struct sfile *f;

		if (de->d_name[0] == '.' || idx_base_len(de->d_name) > NAME_MAX_INDEXED)
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (s->n >= SCAN_MAX)
			break;
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 64;
			s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
		}
		f = &s->v[s->n++];
		f->name = xasprintf("%s/%s", sub, de->d_name);
		f->blen = idx_base_len(de->d_name);
		f->mtime = st.st_mtim.tv_sec;
		f->size = (uint64_t)st.st_size;
	}
	closedir(d);
	free(dpath);
	return 0;
}

/* Both directories, sorted by base name, one entry per base (cur/ wins). */
static int
scan_maildir(const char *path, struct scan *s, char **err_r)
{
	size_t i, o;

	memset(s, 0, sizeof(*s));
	if (scan_dir(path, "new", s, err_r) != 0 || scan_dir(path, "cur", s, err_r) != 0) {
		scan_free(s);
		return MBX_ERR;
	}
	if (s->n == 0)
		return 0;
	qsort(s->v, s->n, sizeof(*s->v), sfile_cmp_base);
	for (i = 1, o = 1; i < s->n; i++) {
		struct sfile *p = &s->v[o - 1], *c = &s->v[i];

		if (p->blen == c->blen && memcmp(sbase(p), sbase(c), p->blen) == 0) {
			free(c->name);
			continue;
		}
		s->v[o++] = *c;
	}
	s->n = o;
	return 0;
}

static struct sfile *
scan_find(const struct scan *s, const char *base, size_t blen)
{
	struct sfile key;
	char *tmp = xasprintf("new/%.*s", (int)blen, base);

	key.name = tmp;
	key.blen = blen;
	struct sfile *r = s->n > 0 ? bsearch(&key, s->v, s->n, sizeof(*s->v),
	    sfile_cmp_base_only) : NULL;
	free(tmp);
	return r;
}

/* Octets with every line ending as CRLF, plus a CRLF for an unended
 * last line: what a POP3 RETR sends before dot-stuffing. */
static int
wire_size(const char *path, const char *name, uint64_t *size_r, uint64_t *wire_r)
{
	char *p = xasprintf("%s/%s", path, name), buf[65536];
	uint64_t size = 0, extra = 0;
	char prev = '\0';
	ssize_t n, i;
	int fd;

	fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(p);
	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n' && prev != '\r')
				extra++;
			prev = buf[i];
		}
		size += (uint64_t)n;
	}
	close(fd);
	if (size > 0 && prev != '\n')
		extra += prev == '\r' ? 1 : 2;
	*size_r = size;
	*wire_r = size + extra;
	return 0;
}

/* ---- records ---- */

static MDB_val
rec_pack(const struct rec *r, const char *name, const char *kw)
{
	MDB_val v;
	size_t nl = strlen(name), kl = kw != NULL ? strlen(kw) : 0;
	struct rec h = *r;
	char *p;

	h.namelen = (uint16_t)nl;
	h.kwlen = (uint16_t)kl;
	v.mv_size = sizeof(h) + nl + kl;
	p = xmalloc(v.mv_size);
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), name, nl);
	if (kl > 0)
		memcpy(p + sizeof(h) + nl, kw, kl);
	v.mv_data = p;
	return v;
}

/* 0, or -1 for a record of the wrong shape. Pointers into v. */
static int
rec_unpack(const MDB_val *v, struct rec *r, const char **name, const char **kw)
{
	if (v->mv_size < sizeof(*r))
		return -1;
	memcpy(r, v->mv_data, sizeof(*r));
	if (v->mv_size != sizeof(*r) + r->namelen + r->kwlen || r->namelen < 5)
		return -1;
	*name = (const char *)v->mv_data + sizeof(*r);
	*kw = *name + r->namelen;
	return 0;
}

static void
msg_fill(struct mbx_msg *m, uint32_t uid, const struct rec *r, const char *name,
    const char *kw)
{
	char *kws = xstrndup(kw, r->kwlen);

	m->uid = uid;
	m->modseq = r->modseq;
	m->flags = r->flags;
	m->size = r->size;
	m->wire_size = r->wire_size;
	m->internaldate = r->internaldate;
	m->name = xstrndup(name, r->namelen);
	m->keywords = strv_split(kws, " ");
	if (m->keywords == NULL)
		m->keywords = xcalloc(1, sizeof(char *));
	free(kws);
}

void
mbx_msg_free(struct mbx_msg *m)
{
	free(m->name);
	strv_free(&m->keywords);
	memset(m, 0, sizeof(*m));
}

void
mbx_msgs_free(struct mbx_msg **msgs, size_t n)
{
	size_t i;

	if (*msgs == NULL)
		return;
	for (i = 0; i < n; i++)
		mbx_msg_free(&(*msgs)[i]);
	free(*msgs);
	*msgs = NULL;
}

/* ---- header ---- */

int
idx_hdr_get(struct mailbox *mb, MDB_txn *txn, struct hdr *h)
{
	MDB_val k = { 3, "hdr" }, v;
	int rc = mdb_get(txn, mb->db.dbi[DB_HDR], &k, &v);

	if (rc != 0)
		return rc;
	if (v.mv_size != sizeof(*h))
		return MDB_CORRUPTED;
	memcpy(h, v.mv_data, sizeof(*h));
	if (h->version != INDEX_VERSION || h->uidvalidity == 0 || h->uidnext == 0)
		return MDB_CORRUPTED;
	return 0;
}

int
idx_hdr_put(struct mailbox *mb, MDB_txn *txn, const struct hdr *h)
{
	MDB_val k = { 3, "hdr" }, v = { sizeof(*h), (void *)h };

	return mdb_put(txn, mb->db.dbi[DB_HDR], &k, &v, 0);
}

static int
read_hdr_fn(MDB_txn *txn, void *ctx)
{
	struct mailbox *mb = ctx;

	return idx_hdr_get(mb, txn, &mb->hdr);
}

/* ---- UIDVALIDITY ---- */

static uint32_t
next_uidvalidity(const char *path)
{
	char *p = xasprintf("%s/%s", path, MBX_UIDVALIDITY_NAME), *text = NULL;
	unsigned long long last = 0;
	uint64_t now = (uint64_t)time(NULL), v;
	size_t len;

	if (file_read_all(p, 64, &text, &len) == 0) {
		last = strtoull(text, NULL, 10);
		free(text);
	}
	free(p);
	v = now > last ? now : last + 1;
	if (v > UINT32_MAX || v == 0)
		v = 1;   /* 2106: wraps; clients see a change all the same */
	return (uint32_t)v;
}

static int
save_uidvalidity(const char *path, uint32_t v, char **err_r)
{
	char *p = xasprintf("%s/%s", path, MBX_UIDVALIDITY_NAME);
	char text[16];
	int n = snprintf(text, sizeof(text), "%u\n", v);

	if (file_write_atomic(p, text, (size_t)n, 0600) != 0) {
		int e = errno;

		idx_fail(err_r, MBX_ERR, xasprintf("write %s: %s", p, strerror(e)));
		free(p);
		return MBX_ERR;
	}
	free(p);
	return 0;
}

/* ---- locking ---- */

int
idx_lock_ex(struct mailbox *mb, char **err_r)
{
	while (flock(mb->lockfd, LOCK_EX) != 0)
		if (errno != EINTR)
			return idx_fail(err_r, MBX_ERR, xasprintf("lock %s/%s: %s", mb->path,
			    MBX_INDEX_NAME, strerror(errno)));
	return 0;
}

void
idx_unlock(struct mailbox *mb)
{
	(void)flock(mb->lockfd, LOCK_UN);
}

/* ---- reconcile ---- */

struct newfile {
	struct sfile f;
	uint64_t wire;
	uint32_t uid;         /* out */
};

struct change {
	uint32_t uid;
	char *name;           /* new name, or NULL: vanished */
};

struct sync_ctx {
	struct mailbox *mb;
	const struct scan *scan;
	/* phase 1 (read): what differs */
	struct newfile *nf;
	size_t nnf;
	struct change *ch;
	size_t nch;
	/* phase 2 (write) */
	int changed;
	int bad;              /* a corrupt record */
};

static int
diff_fn(MDB_txn *txn, void *ctx)
{
	struct sync_ctx *sc = ctx;
	struct mailbox *mb = sc->mb;
	const struct scan *s = sc->scan;
	MDB_cursor *cur;
	MDB_val k, v;
	char *seen = s->n > 0 ? xcalloc(s->n, 1) : NULL;
	size_t i;
	int rc;

	rc = mdb_cursor_open(txn, mb->db.dbi[DB_MSG], &cur);
	while (rc == 0 && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		struct rec r;
		const char *name, *kw, *colon;
		struct sfile *f;
		size_t blen;

		if (rec_unpack(&v, &r, &name, &kw) != 0) {
			sc->bad = 1;
			rc = -1;
			break;
		}
		/* record names are not NUL-terminated */
		colon = memchr(name + 4, ':', r.namelen - 4u);
		blen = colon != NULL ? (size_t)(colon - (name + 4)) : r.namelen - 4u;
		f = scan_find(s, name + 4, blen);
		if (f != NULL)
			seen[f - s->v] = 1;
		if (f != NULL && strlen(f->name) == r.namelen &&
		    memcmp(f->name, name, r.namelen) == 0)
			continue;
		sc->ch = xreallocarray(sc->ch, sc->nch + 1, sizeof(*sc->ch));
		sc->ch[sc->nch].uid = idx_key_uid(&k);
		sc->ch[sc->nch].name = f != NULL ? xstrdup(f->name) : NULL;
		sc->nch++;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
	for (i = 0; rc == 0 && i < s->n; i++) {
		if (seen[i])
			continue;
		sc->nf = xreallocarray(sc->nf, sc->nnf + 1, sizeof(*sc->nf));
		memset(&sc->nf[sc->nnf], 0, sizeof(*sc->nf));
		sc->nf[sc->nnf].f = s->v[i];
		sc->nf[sc->nnf].f.name = xstrdup(s->v[i].name);
		sc->nnf++;
	}
	free(seen);
	return rc;
}

int
idx_del_uid(struct mailbox *mb, MDB_txn *txn, uint32_t uid, const char *name, uint64_t modseq)
{
	unsigned char kb[4];
	MDB_val k = { 4, kb }, nk, ev = { sizeof(modseq), &modseq };
	int rc;

	idx_uid_key(uid, kb);
	nk.mv_data = (void *)(name + 4);
	nk.mv_size = idx_base_len(name + 4);
	rc = mdb_del(txn, mb->db.dbi[DB_MSG], &k, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mdb_del(txn, mb->db.dbi[DB_NAME], &nk, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mdb_del(txn, mb->db.dbi[DB_CACHE], &k, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mdb_put(txn, mb->db.dbi[DB_EXP], &k, &ev, 0);
	return rc;
}

int
idx_get_rec(struct mailbox *mb, MDB_txn *txn, uint32_t uid, struct rec *r,
    const char **name, const char **kw)
{
	unsigned char kb[4];
	MDB_val k = { 4, kb }, v;
	int rc;

	idx_uid_key(uid, kb);
	rc = mdb_get(txn, mb->db.dbi[DB_MSG], &k, &v);
	if (rc == 0 && rec_unpack(&v, r, name, kw) != 0)
		rc = MDB_CORRUPTED;
	return rc;
}

int
idx_put_rec(struct mailbox *mb, MDB_txn *txn, uint32_t uid, const struct rec *r,
    const char *name, const char *kw)
{
	unsigned char kb[4];
	MDB_val k = { 4, kb }, v = rec_pack(r, name, kw);
	int rc;

	idx_uid_key(uid, kb);
	rc = mdb_put(txn, mb->db.dbi[DB_MSG], &k, &v, 0);
	free(v.mv_data);
	return rc;
}

/* Give the new files UIDs in arrival order. Already indexed ones (a
 * concurrent writer was faster) keep theirs. */
static int
add_new(struct mailbox *mb, MDB_txn *txn, struct hdr *h, struct newfile *nf, size_t n)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < n; i++) {
		struct rec r;
		MDB_val nk = { nf[i].f.blen, nf[i].f.name + 4 }, nv;
		uint32_t uid;

		rc = mdb_get(txn, mb->db.dbi[DB_NAME], &nk, &nv);
		if (rc == 0 && nv.mv_size == 4) {
			memcpy(&uid, nv.mv_data, 4);
			nf[i].uid = uid;
			continue;
		}
		if (rc != MDB_NOTFOUND && rc != 0)
			break;
		/* A file Dovecot knew keeps its UID (below the imported
		 * uidnext, unique in the list, and the index is new). */
		const struct dc_uid *dc = mb->import != NULL
		    ? dc_uidlist_find(mb->import, nf[i].f.name + 4, nf[i].f.blen) : NULL;
		char *kw = dc != NULL ? dc_uidlist_keywords(mb->import, nf[i].f.name) : NULL;
		if (dc != NULL) {
			uid = dc->uid;
		} else if (h->uidnext == UINT32_MAX) {
			rc = ERANGE;   /* UID space exhausted */
			break;
		} else {
			uid = h->uidnext++;
		}
		memset(&r, 0, sizeof(r));
		r.modseq = ++h->highestmodseq;
		r.size = nf[i].f.size;
		r.wire_size = nf[i].wire;
		r.internaldate = nf[i].f.mtime;
		r.flags = info_flags(nf[i].f.name);
		nv.mv_data = &uid;
		nv.mv_size = 4;
		rc = mdb_put(txn, mb->db.dbi[DB_NAME], &nk, &nv, 0);
		if (rc == 0)
			rc = idx_put_rec(mb, txn, uid, &r, nf[i].f.name, kw != NULL ? kw : "");
		free(kw);
		nf[i].uid = uid;
	}
	return rc;
}

static int
apply_fn(MDB_txn *txn, void *ctx)
{
	struct sync_ctx *sc = ctx;
	struct mailbox *mb = sc->mb;
	struct hdr h;
	size_t i;
	int rc;

	sc->changed = 0;
	if ((rc = idx_hdr_get(mb, txn, &h)) != 0)
		return rc;
	for (i = 0; i < sc->nch; i++) {
		struct rec r;
		const char *name, *kw;
		char *kwc, *oldname;

		rc = idx_get_rec(mb, txn, sc->ch[i].uid, &r, &name, &kw);
		if (rc == MDB_NOTFOUND)
			continue;   /* someone else expunged it meanwhile */
		if (rc != 0)
			return rc;
		sc->changed = 1;
		oldname = xstrndup(name, r.namelen);
		if (sc->ch[i].name == NULL) {
			rc = idx_del_uid(mb, txn, sc->ch[i].uid, oldname, ++h.highestmodseq);
		} else {
			kwc = xstrndup(kw, r.kwlen);
			r.flags = info_flags(sc->ch[i].name);
			r.modseq = ++h.highestmodseq;
			rc = idx_put_rec(mb, txn, sc->ch[i].uid, &r, sc->ch[i].name, kwc);
			free(kwc);
		}
		free(oldname);
		if (rc != 0)
			return rc;
	}
	if (sc->nnf > 0) {
		sc->changed = 1;
		if ((rc = add_new(mb, txn, &h, sc->nf, sc->nnf)) != 0)
			return rc;
	}
	if (h.flags & HDR_IMPORTING) {
		h.flags &= ~HDR_IMPORTING;   /* the imported UIDs are given */
		sc->changed = 1;
	}
	if (sc->changed && (rc = idx_hdr_put(mb, txn, &h)) != 0)
		return rc;
	if (mbx_hook_in_txn != NULL)
		mbx_hook_in_txn();
	mb->hdr = h;
	return 0;
}

static void
sync_ctx_free(struct sync_ctx *sc)
{
	size_t i;

	for (i = 0; i < sc->nnf; i++)
		free(sc->nf[i].f.name);
	free(sc->nf);
	for (i = 0; i < sc->nch; i++)
		free(sc->ch[i].name);
	free(sc->ch);
	sc->nf = NULL;
	sc->ch = NULL;
	sc->nnf = sc->nch = 0;
}

int
idx_reconcile(struct mailbox *mb, int *changed_r, char **err_r)
{
	struct sync_ctx sc;
	struct scan s, s2;
	size_t i, j;
	int rc;

	memset(&sc, 0, sizeof(sc));
	sc.mb = mb;
	if (changed_r != NULL)
		*changed_r = 0;
	if (idx_lock_ex(mb, err_r) != 0)
		return MBX_ERR;
	if (scan_maildir(mb->path, &s, err_r) != 0) {
		idx_unlock(mb);
		return MBX_ERR;
	}
	sc.scan = &s;
	rc = db_read(&mb->db, diff_fn, &sc, err_r);
	/* Vanished ones: a second scan, which a concurrent rename cannot
	 * also hide (it would have to rename the same file again). */
	for (i = 0; rc == 0 && i < sc.nch; i++)
		if (sc.ch[i].name == NULL)
			break;
	if (rc == 0 && i < sc.nch && scan_maildir(mb->path, &s2, err_r) == 0) {
		sc.scan = &s2;
		sync_ctx_free(&sc);
		rc = db_read(&mb->db, diff_fn, &sc, err_r);
		scan_free(&s);
		s = s2;
		sc.scan = &s;
	} else if (rc == 0 && i < sc.nch) {
		rc = MBX_ERR;
	}
	/* Sizes of new files, with no transaction open. */
	for (i = 0, j = 0; rc == 0 && i < sc.nnf; i++) {
		if (wire_size(mb->path, sc.nf[i].f.name, &sc.nf[i].f.size, &sc.nf[i].wire) != 0) {
			free(sc.nf[i].f.name);   /* gone or unreadable: next time */
			continue;
		}
		sc.nf[j++] = sc.nf[i];
	}
	sc.nnf = j;
	if (sc.nnf > 1)
		qsort(sc.nf, sc.nnf, sizeof(*sc.nf), sfile_cmp_arrival);
	if (rc == 0 && (sc.nnf > 0 || sc.nch > 0 || (mb->hdr.flags & HDR_IMPORTING)) &&
	    !mb->readonly)
		rc = db_write(&mb->db, apply_fn, &sc, err_r);
	else if (rc == 0)
		rc = db_read(&mb->db, read_hdr_fn, mb, err_r);   /* others' changes */
	if (rc == 0 && changed_r != NULL)
		*changed_r = sc.changed;
	if (sc.bad)
		idx_fail(err_r, MBX_ERR, xasprintf("%s/%s: corrupt record; run postern mailbox reindex",
		    mb->path, MBX_INDEX_NAME));
	idx_unlock(mb);
	sync_ctx_free(&sc);
	scan_free(&s);
	return rc == 0 ? 0 : MBX_ERR;
}

int
mbx_sync(struct mailbox *mb, int *changed_r, char **err_r)
{
	return idx_reconcile(mb, changed_r, err_r);
}

/* ---- open ---- */

static char *
index_path(const char *path, const char *suffix)
{
	return xasprintf("%s/%s%s", path, MBX_INDEX_NAME, suffix);
}

static void
move_aside(const char *path)
{
	char *a = index_path(path, ""), *b = index_path(path, ".corrupt");
	char *la = index_path(path, "-lock");

	(void)rename(a, b);
	(void)unlink(la);
	free(a);
	free(b);
	free(la);
}

struct init_ctx {
	struct mailbox *mb;
	uint32_t uidvalidity;
	uint32_t uidnext;     /* of an imported dovecot-uidlist, or 0 */
	int created;
};

static int
init_fn(MDB_txn *txn, void *ctx)
{
	struct init_ctx *ic = ctx;
	struct hdr h;
	int rc = idx_hdr_get(ic->mb, txn, &h);

	ic->created = 0;
	if (rc == MDB_NOTFOUND) {
		MDB_stat st;

		/* a header-less index with records is not ours to trust */
		if (mdb_stat(txn, ic->mb->db.dbi[DB_MSG], &st) == 0 && st.ms_entries > 0)
			return MDB_CORRUPTED;
		memset(&h, 0, sizeof(h));
		h.version = INDEX_VERSION;
		h.uidvalidity = ic->uidvalidity;
		h.uidnext = ic->uidnext != 0 ? ic->uidnext : 1;
		if (ic->mb->import != NULL)
			h.flags |= HDR_IMPORTING;
		h.highestmodseq = 1;
		rc = idx_hdr_put(ic->mb, txn, &h);
		ic->created = 1;
	}
	if (rc == 0)
		ic->mb->hdr = h;
	return rc;
}

/* The first index of a Maildir that Dovecot kept (a dovecot-uidlist, and
 * no postern.uidvalidity: Postern never gave a UID here) takes Dovecot's
 * UIDVALIDITY and uidnext, and the UIDs and keywords go to the first
 * reconcile (add_new). The index lock is taken before the index is made
 * and kept until that reconcile ends, so no other process gives the
 * files new UIDs in between. Nothing imported when the list is unusable. */
static void
import_dovecot(struct mailbox *mb, struct init_ctx *ic)
{
	char *p = xasprintf("%s/%s", mb->path, MBX_UIDVALIDITY_NAME);
	struct dc_uidlist *u;
	int fresh = access(p, F_OK) != 0 && errno == ENOENT;

	free(p);
	if (!fresh || mdb_env_get_fd(mb->db.env, &mb->lockfd) != 0)
		return;
	u = xcalloc(1, sizeof(*u));
	if (dc_uidlist_load(mb->path, u) != 0 || idx_lock_ex(mb, NULL) != 0) {
		free(u);
		return;
	}
	mb->import = u;
	ic->uidvalidity = u->uidvalidity;
	ic->uidnext = u->uidnext;
}

/* An index made by an import whose first reconcile never ended (the
 * process was killed): load the list again, under the lock that the
 * reconcile keeps, unless another opener finished it meanwhile. Without
 * a usable list the reconcile just clears the mark. */
static void
resume_import(struct mailbox *mb)
{
	struct dc_uidlist *u;

	if (mdb_env_get_fd(mb->db.env, &mb->lockfd) != 0 || idx_lock_ex(mb, NULL) != 0)
		return;
	if (db_read(&mb->db, read_hdr_fn, mb, NULL) != 0 ||
	    !(mb->hdr.flags & HDR_IMPORTING)) {
		idx_unlock(mb);
		return;
	}
	u = xcalloc(1, sizeof(*u));
	if (dc_uidlist_load(mb->path, u) != 0 || u->uidvalidity != mb->hdr.uidvalidity) {
		free(u);
		idx_unlock(mb);
		return;
	}
	mb->import = u;
}

static int
open_db(struct mailbox *mb, char **err_r)
{
	static const struct db_opts o0 = { .flags = MDB_NOSUBDIR, .mode = 0600 };
	struct db_opts o = o0;
	char *ip = index_path(mb->path, "");
	struct init_ctx ic = { mb, 0, 0, 0 };
	int rc, attempt;

	o.dbs = dbnames;
	o.mapsize = INDEX_MAPSIZE;
	for (attempt = 0; attempt < 2; attempt++) {
		char *err = NULL;

		rc = db_open(&mb->db, ip, &o, &err);
		if (rc == 0)
			rc = db_read(&mb->db, read_hdr_fn, mb, &err);
		if (rc == MDB_NOTFOUND) {
			free(err);
			err = NULL;
			if (!mb->readonly && attempt == 0)
				import_dovecot(mb, &ic);
			/* A new index: the UIDVALIDITY is on disk before any
			 * UID is given under it, so a crash cannot make a
			 * later rebuild pick it again. */
			if (ic.uidvalidity == 0)
				ic.uidvalidity = next_uidvalidity(mb->path);
			rc = save_uidvalidity(mb->path, ic.uidvalidity, &err) == 0 ? 0 : EIO;
		}
		if (rc == 0 && ic.uidvalidity != 0)
			rc = db_write(&mb->db, init_fn, &ic, &err);
		if (mb->import != NULL && (rc != 0 || !ic.created)) {
			/* Another process made the index (and imported). */
			dc_uidlist_free(mb->import);
			xfree(&mb->import);
			idx_unlock(mb);
		}
		if (rc != 0 && mb->db.env != NULL)
			db_close(&mb->db);
		if (rc == 0) {
			free(err);
			break;
		}
		if (!db_rc_corrupt(rc) || attempt > 0) {
			idx_fail(err_r, MBX_ERR, err);
			free(ip);
			return MBX_ERR;
		}
		free(err);
		move_aside(mb->path);
	}
	free(ip);
	if (mdb_env_get_fd(mb->db.env, &mb->lockfd) != 0)
		return idx_fail(err_r, MBX_ERR, xstrdup("index: no file descriptor"));
	if (!ic.created && mb->import == NULL && (mb->hdr.flags & HDR_IMPORTING) &&
	    !mb->readonly)
		resume_import(mb);
	if (ic.created)
		mb->rebuilt = 1;
	return 0;
}

/* The Maildir rule: a file left in tmp/ and untouched for 36 hours is
 * a dead writer's (an APPEND cut off by a kill, a crashed tool), never a
 * message. Removed when a mailbox is opened; regular files only, no link
 * followed. ctime counts too: a writer that set an old mtime (APPEND's
 * INTERNALDATE) did so just now. */
long mbx_tmp_dead_seconds = 36 * 3600;

static void
sweep_tmp(const char *path)
{
	char *p = xasprintf("%s/tmp", path);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	time_t old = time(NULL) - mbx_tmp_dead_seconds;
	struct dirent *e;
	struct stat st;

	free(p);
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
		    && S_ISREG(st.st_mode) && st.st_mtime < old && st.st_ctime < old
		    && st.st_atime < old)
			(void)unlinkat(fd, e->d_name, 0);
	closedir(d);
}

int
mbx_open(const char *path, int flags, struct mailbox **mb_r, char **err_r)
{
	struct mailbox *mb;
	struct stat st;
	const char *dsn;
	char *err = NULL;
	size_t n;

	*mb_r = NULL;
	if (flags & MBX_CREATE) {
		if (maildir_make(path, &dsn, &err) != 0)
			return idx_fail(err_r, MBX_ERR, err);
	}
	if (lstat(path, &st) != 0)
		return idx_fail(err_r, MBX_ERR, xasprintf("%s: %s", path, strerror(errno)));
	if (!S_ISDIR(st.st_mode))
		return idx_fail(err_r, MBX_ERR, xasprintf("%s: not a directory", path));
	/* The index is created with our ids: we must be the owner. */
	if (st.st_uid != geteuid())
		return idx_fail(err_r, MBX_ERR, xasprintf("%s: owned by uid %ld, not by us (uid %ld)",
		    path, (long)st.st_uid, (long)geteuid()));
	mb = xcalloc(1, sizeof(*mb));
	mb->path = xstrdup(path);
	n = strlen(mb->path);
	while (n > 1 && mb->path[n - 1] == '/')
		mb->path[--n] = '\0';
	mb->readonly = (flags & MBX_READONLY) != 0;
	mb->lockfd = -1;
	if (open_db(mb, err_r) != 0 || idx_reconcile(mb, NULL, err_r) != 0) {
		mbx_close(&mb);
		return MBX_ERR;
	}
	if (mb->import != NULL) {
		dc_uidlist_free(mb->import);
		xfree(&mb->import);
	}
	if (!mb->readonly)
		sweep_tmp(mb->path);
	*mb_r = mb;
	return 0;
}

void
mbx_close(struct mailbox **mbp)
{
	struct mailbox *mb = *mbp;

	if (mb == NULL)
		return;
	db_close(&mb->db);
	if (mb->import != NULL)
		dc_uidlist_free(mb->import);
	free(mb->import);
	free(mb->path);
	free(mb->quota_root);
	free(mb);
	*mbp = NULL;
}

int
mbx_reindex(const char *path, char **err_r)
{
	struct mailbox *mb;

	move_aside(path);
	if (mbx_open(path, 0, &mb, err_r) != 0)
		return MBX_ERR;
	mbx_close(&mb);
	return 0;
}

uint32_t
mbx_uidvalidity(const struct mailbox *mb)
{
	return mb->hdr.uidvalidity;
}

uint32_t
mbx_uidnext(const struct mailbox *mb)
{
	return mb->hdr.uidnext;
}

uint64_t
mbx_highestmodseq(const struct mailbox *mb)
{
	return mb->hdr.highestmodseq;
}

const char *
mbx_path(const struct mailbox *mb)
{
	return mb->path;
}

int
mbx_rebuilt(const struct mailbox *mb)
{
	return mb->rebuilt;
}

/* ---- reading ---- */

struct list_ctx {
	struct mailbox *mb;
	struct mbx_msg *v;
	size_t n;
	uint32_t uid;         /* one message: its UID */
	struct mbx_status *st;
};

static void
list_reset(struct list_ctx *lc)
{
	mbx_msgs_free(&lc->v, lc->n);
	lc->n = 0;
}

static int
list_fn(MDB_txn *txn, void *ctx)
{
	struct list_ctx *lc = ctx;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t cap = 0;
	int rc;

	list_reset(lc);
	if ((rc = idx_hdr_get(lc->mb, txn, &lc->mb->hdr)) != 0)
		return rc;
	rc = mdb_cursor_open(txn, lc->mb->db.dbi[DB_MSG], &cur);
	while (rc == 0 && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		struct rec r;
		const char *name, *kw;

		if (rec_unpack(&v, &r, &name, &kw) != 0) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (lc->st != NULL) {
			lc->st->messages++;
			lc->st->unseen += (r.flags & MBX_SEEN) == 0;
			lc->st->size += r.size;
			continue;
		}
		if (lc->n == cap) {
			cap = cap ? cap * 2 : 64;
			lc->v = xreallocarray(lc->v, cap, sizeof(*lc->v));
		}
		msg_fill(&lc->v[lc->n++], idx_key_uid(&k), &r, name, kw);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
mbx_list(struct mailbox *mb, struct mbx_msg **msgs_r, size_t *n_r, char **err_r)
{
	struct list_ctx lc = { .mb = mb };

	*msgs_r = NULL;
	*n_r = 0;
	if (db_read(&mb->db, list_fn, &lc, err_r) != 0) {
		list_reset(&lc);
		return MBX_ERR;
	}
	*msgs_r = lc.v;
	*n_r = lc.n;
	return 0;
}

int
mbx_status(struct mailbox *mb, struct mbx_status *st, char **err_r)
{
	struct list_ctx lc = { .mb = mb, .st = st };

	memset(st, 0, sizeof(*st));
	if (db_read(&mb->db, list_fn, &lc, err_r) != 0)
		return MBX_ERR;
	st->uidvalidity = mb->hdr.uidvalidity;
	st->uidnext = mb->hdr.uidnext;
	st->highestmodseq = mb->hdr.highestmodseq;
	return 0;
}

static int
get_fn(MDB_txn *txn, void *ctx)
{
	struct list_ctx *lc = ctx;
	struct rec r;
	const char *name, *kw;
	int rc = idx_get_rec(lc->mb, txn, lc->uid, &r, &name, &kw);

	if (rc == MDB_NOTFOUND)
		return MBX_GONE;
	if (rc == 0) {
		lc->v = xcalloc(1, sizeof(*lc->v));
		lc->n = 1;
		msg_fill(lc->v, lc->uid, &r, name, kw);
	}
	return rc;
}

int
mbx_msg_get(struct mailbox *mb, uint32_t uid, struct mbx_msg *m, char **err_r)
{
	struct list_ctx lc = { .mb = mb, .uid = uid };
	int rc;

	memset(m, 0, sizeof(*m));
	rc = db_read(&mb->db, get_fn, &lc, err_r);
	if (rc == MBX_GONE)
		return MBX_GONE;
	if (rc != 0)
		return MBX_ERR;
	*m = lc.v[0];
	free(lc.v);
	return 0;
}

