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
 * Limits: a file whose base name is longer than NAME_MAX_INDEXED is not
 * indexed (invisible to POP3/IMAP) and is warned about by reconcile's
 * caller through mbx_sync's error-free path - it simply stays out.
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

#define INDEX_VERSION 1
#define NAME_MAX_INDEXED 400           /* < LMDB's 511-byte key limit */
#define SCAN_MAX 10000000              /* files per mailbox */
#define INDEX_MAPSIZE ((size_t)4 << 20)

enum { DB_HDR, DB_MSG, DB_NAME, DB_EXP, DB_CACHE };
static const char *const dbnames[] = { "hdr", "msg", "name", "exp", "cache", NULL };

struct hdr {
	uint32_t version;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t pad;
	uint64_t highestmodseq;
};

struct rec {
	uint64_t modseq;
	uint64_t size;
	uint64_t wire_size;
	int64_t internaldate;
	uint32_t flags;
	uint16_t namelen;
	uint16_t kwlen;
};

struct mailbox {
	char *path;
	struct db db;
	int lockfd;           /* the index file, for flock */
	int readonly;
	int rebuilt;
	struct hdr hdr;       /* as of the last transaction */
};

/* A test may stop the process inside the reconcile write transaction,
 * after UIDs were assigned and before the commit (t/unit/test_index.c). */
void (*mbx_hook_in_txn)(void);

static int
fail(char **err_r, int rc, char *text)
{
	if (err_r != NULL && *err_r == NULL)
		*err_r = text;
	else
		free(text);
	return rc;
}

static void
uid_key(uint32_t uid, unsigned char k[4])
{
	k[0] = (unsigned char)(uid >> 24);
	k[1] = (unsigned char)(uid >> 16);
	k[2] = (unsigned char)(uid >> 8);
	k[3] = (unsigned char)uid;
}

static uint32_t
key_uid(const MDB_val *k)
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
static size_t
base_len(const char *file)
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
static char *
flagged_name(const char *base, size_t blen, const char *oldfile, unsigned flags)
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

		fail(err_r, MBX_ERR, xasprintf("open %s: %s", dpath, strerror(e)));
		free(dpath);
		return MBX_ERR;
	}
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		struct sfile *f;

		if (de->d_name[0] == '.' || base_len(de->d_name) > NAME_MAX_INDEXED)
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
		f->blen = base_len(de->d_name);
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

static int
hdr_get(struct mailbox *mb, MDB_txn *txn, struct hdr *h)
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

static int
hdr_put(struct mailbox *mb, MDB_txn *txn, const struct hdr *h)
{
	MDB_val k = { 3, "hdr" }, v = { sizeof(*h), (void *)h };

	return mdb_put(txn, mb->db.dbi[DB_HDR], &k, &v, 0);
}

static int
read_hdr_fn(MDB_txn *txn, void *ctx)
{
	struct mailbox *mb = ctx;

	return hdr_get(mb, txn, &mb->hdr);
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

		fail(err_r, MBX_ERR, xasprintf("write %s: %s", p, strerror(e)));
		free(p);
		return MBX_ERR;
	}
	free(p);
	return 0;
}

/* ---- locking ---- */

static int
lock_ex(struct mailbox *mb, char **err_r)
{
	while (flock(mb->lockfd, LOCK_EX) != 0)
		if (errno != EINTR)
			return fail(err_r, MBX_ERR, xasprintf("lock %s/%s: %s", mb->path,
			    MBX_INDEX_NAME, strerror(errno)));
	return 0;
}

static void
unlock(struct mailbox *mb)
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
		sc->ch[sc->nch].uid = key_uid(&k);
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

static int
del_uid(struct mailbox *mb, MDB_txn *txn, uint32_t uid, const char *name, uint64_t modseq)
{
	unsigned char kb[4];
	MDB_val k = { 4, kb }, nk, ev = { sizeof(modseq), &modseq };
	int rc;

	uid_key(uid, kb);
	nk.mv_data = (void *)(name + 4);
	nk.mv_size = base_len(name + 4);
	rc = mdb_del(txn, mb->db.dbi[DB_MSG], &k, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mdb_del(txn, mb->db.dbi[DB_NAME], &nk, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mdb_del(txn, mb->db.dbi[DB_CACHE], &k, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mdb_put(txn, mb->db.dbi[DB_EXP], &k, &ev, 0);
	return rc;
}

static int
get_rec(struct mailbox *mb, MDB_txn *txn, uint32_t uid, struct rec *r,
    const char **name, const char **kw)
{
	unsigned char kb[4];
	MDB_val k = { 4, kb }, v;
	int rc;

	uid_key(uid, kb);
	rc = mdb_get(txn, mb->db.dbi[DB_MSG], &k, &v);
	if (rc == 0 && rec_unpack(&v, r, name, kw) != 0)
		rc = MDB_CORRUPTED;
	return rc;
}

static int
put_rec(struct mailbox *mb, MDB_txn *txn, uint32_t uid, const struct rec *r,
    const char *name, const char *kw)
{
	unsigned char kb[4];
	MDB_val k = { 4, kb }, v = rec_pack(r, name, kw);
	int rc;

	uid_key(uid, kb);
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
		if (h->uidnext == UINT32_MAX) {
			rc = ERANGE;   /* UID space exhausted */
			break;
		}
		uid = h->uidnext++;
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
			rc = put_rec(mb, txn, uid, &r, nf[i].f.name, "");
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
	if ((rc = hdr_get(mb, txn, &h)) != 0)
		return rc;
	for (i = 0; i < sc->nch; i++) {
		struct rec r;
		const char *name, *kw;
		char *kwc, *oldname;

		rc = get_rec(mb, txn, sc->ch[i].uid, &r, &name, &kw);
		if (rc == MDB_NOTFOUND)
			continue;   /* someone else expunged it meanwhile */
		if (rc != 0)
			return rc;
		sc->changed = 1;
		oldname = xstrndup(name, r.namelen);
		if (sc->ch[i].name == NULL) {
			rc = del_uid(mb, txn, sc->ch[i].uid, oldname, ++h.highestmodseq);
		} else {
			kwc = xstrndup(kw, r.kwlen);
			r.flags = info_flags(sc->ch[i].name);
			r.modseq = ++h.highestmodseq;
			rc = put_rec(mb, txn, sc->ch[i].uid, &r, sc->ch[i].name, kwc);
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
	if (sc->changed && (rc = hdr_put(mb, txn, &h)) != 0)
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

static int
reconcile(struct mailbox *mb, int *changed_r, char **err_r)
{
	struct sync_ctx sc;
	struct scan s, s2;
	size_t i, j;
	int rc;

	memset(&sc, 0, sizeof(sc));
	sc.mb = mb;
	if (changed_r != NULL)
		*changed_r = 0;
	if (lock_ex(mb, err_r) != 0)
		return MBX_ERR;
	if (scan_maildir(mb->path, &s, err_r) != 0) {
		unlock(mb);
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
	if (rc == 0 && (sc.nnf > 0 || sc.nch > 0) && !mb->readonly)
		rc = db_write(&mb->db, apply_fn, &sc, err_r);
	else if (rc == 0)
		rc = db_read(&mb->db, read_hdr_fn, mb, err_r);   /* others' changes */
	if (rc == 0 && changed_r != NULL)
		*changed_r = sc.changed;
	if (sc.bad)
		fail(err_r, MBX_ERR, xasprintf("%s/%s: corrupt record; run postern mailbox reindex",
		    mb->path, MBX_INDEX_NAME));
	unlock(mb);
	sync_ctx_free(&sc);
	scan_free(&s);
	return rc == 0 ? 0 : MBX_ERR;
}

int
mbx_sync(struct mailbox *mb, int *changed_r, char **err_r)
{
	return reconcile(mb, changed_r, err_r);
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
	int created;
};

static int
init_fn(MDB_txn *txn, void *ctx)
{
	struct init_ctx *ic = ctx;
	struct hdr h;
	int rc = hdr_get(ic->mb, txn, &h);

	ic->created = 0;
	if (rc == MDB_NOTFOUND) {
		MDB_stat st;

		/* a header-less index with records is not ours to trust */
		if (mdb_stat(txn, ic->mb->db.dbi[DB_MSG], &st) == 0 && st.ms_entries > 0)
			return MDB_CORRUPTED;
		memset(&h, 0, sizeof(h));
		h.version = INDEX_VERSION;
		h.uidvalidity = ic->uidvalidity;
		h.uidnext = 1;
		h.highestmodseq = 1;
		rc = hdr_put(ic->mb, txn, &h);
		ic->created = 1;
	}
	if (rc == 0)
		ic->mb->hdr = h;
	return rc;
}

static int
open_db(struct mailbox *mb, char **err_r)
{
	static const struct db_opts o0 = { .flags = MDB_NOSUBDIR, .mode = 0600 };
	struct db_opts o = o0;
	char *ip = index_path(mb->path, "");
	struct init_ctx ic = { mb, 0, 0 };
	int rc, attempt;

	o.dbs = dbnames;
	o.mapsize = INDEX_MAPSIZE;
	for (attempt = 0; attempt < 2; attempt++) {
		char *err = NULL;

		rc = db_open(&mb->db, ip, &o, &err);
		if (rc == 0) {
			ic.uidvalidity = next_uidvalidity(mb->path);
			rc = db_write(&mb->db, init_fn, &ic, &err);
			if (rc != 0)
				db_close(&mb->db);
		}
		if (rc == 0) {
			free(err);
			break;
		}
		if (!db_rc_corrupt(rc) || attempt > 0) {
			fail(err_r, MBX_ERR, err);
			free(ip);
			return MBX_ERR;
		}
		free(err);
		move_aside(mb->path);
	}
	free(ip);
	if (mdb_env_get_fd(mb->db.env, &mb->lockfd) != 0)
		return fail(err_r, MBX_ERR, xstrdup("index: no file descriptor"));
	if (ic.created) {
		mb->rebuilt = 1;
		if (save_uidvalidity(mb->path, mb->hdr.uidvalidity, err_r) != 0)
			return MBX_ERR;
	}
	return 0;
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
			return fail(err_r, MBX_ERR, err);
	}
	if (lstat(path, &st) != 0)
		return fail(err_r, MBX_ERR, xasprintf("%s: %s", path, strerror(errno)));
	if (!S_ISDIR(st.st_mode))
		return fail(err_r, MBX_ERR, xasprintf("%s: not a directory", path));
	/* The index is created with our ids: we must be the owner. */
	if (st.st_uid != geteuid())
		return fail(err_r, MBX_ERR, xasprintf("%s: owned by uid %ld, not by us (uid %ld)",
		    path, (long)st.st_uid, (long)geteuid()));
	mb = xcalloc(1, sizeof(*mb));
	mb->path = xstrdup(path);
	n = strlen(mb->path);
	while (n > 1 && mb->path[n - 1] == '/')
		mb->path[--n] = '\0';
	mb->readonly = (flags & MBX_READONLY) != 0;
	mb->lockfd = -1;
	if (open_db(mb, err_r) != 0 || reconcile(mb, NULL, err_r) != 0) {
		mbx_close(&mb);
		return MBX_ERR;
	}
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
	free(mb->path);
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
	if ((rc = hdr_get(lc->mb, txn, &lc->mb->hdr)) != 0)
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
		msg_fill(&lc->v[lc->n++], key_uid(&k), &r, name, kw);
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
	int rc = get_rec(lc->mb, txn, lc->uid, &r, &name, &kw);

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
			rc = fail(err_r, MBX_ERR, xasprintf("open %s/%s: %s", mb->path,
			    cur != NULL ? cur : m.name, strerror(errno)));
			break;
		}
		/* Renamed by another process (a flag change) or expunged. */
		free(cur);
		if (find_file(mb->path, m.name + 4, base_len(m.name + 4), &cur) != 0) {
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

	if ((rc = hdr_get(cc->mb, txn, &h)) != 0)
		return rc;
	rc = get_rec(cc->mb, txn, cc->uid, &r, &name, &kw);
	if (rc == MDB_NOTFOUND)
		return MBX_GONE;
	if (rc != 0)
		return rc;
	n = cc->name != NULL ? xstrdup(cc->name) : xstrndup(name, r.namelen);
	k = cc->kw != NULL ? xstrdup(cc->kw) : xstrndup(kw, r.kwlen);
	if (cc->name != NULL)
		r.flags = cc->flags;
	r.modseq = cc->modseq = ++h.highestmodseq;
	rc = put_rec(cc->mb, txn, cc->uid, &r, n, k);
	free(n);
	free(k);
	if (rc == 0)
		rc = hdr_put(cc->mb, txn, &h);
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
		return fail(err_r, MBX_ERR, xstrdup("mailbox is read-only"));
	if (lock_ex(mb, err_r) != 0)
		return MBX_ERR;
	if ((rc = mbx_msg_get(mb, uid, &m, err_r)) != 0) {
		unlock(mb);
		return rc;
	}
	cc.flags = ((m.flags | add) & ~remove) & MBX_FLAGS_ALL;
	if (cc.flags == m.flags) {
		if (modseq_r != NULL)
			*modseq_r = m.modseq;
		goto out;
	}
	blen = base_len(m.name + 4);
	cur = xstrdup(m.name);
	for (tries = 0; tries < 3; tries++) {
		free(newname);
		newname = flagged_name(m.name + 4, blen, cur, cc.flags);
		from = xasprintf("%s/%s", mb->path, cur);
		to = xasprintf("%s/%s", mb->path, newname);
		rc = strcmp(from, to) == 0 ? 0 : rename(from, to);
		free(from);
		free(to);
		if (rc == 0)
			break;
		if (errno != ENOENT) {
			rc = fail(err_r, MBX_ERR, xasprintf("rename %s/%s: %s", mb->path, cur,
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
	unlock(mb);
	free(cur);
	free(newname);
	mbx_msg_free(&m);
	return rc;
}

static int
keyword_ok(const char *k)
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
		return fail(err_r, MBX_ERR, xstrdup("mailbox is read-only"));
	for (i = 0; keywords != NULL && keywords[i] != NULL; i++) {
		char *nb;

		if (i >= MBX_KEYWORDS_MAX || !keyword_ok(keywords[i])) {
			free(b.p);
			return fail(err_r, MBX_ERR, xasprintf("bad or too many keywords"));
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

	if ((rc = hdr_get(ec->mb, txn, &h)) != 0)
		return rc;
	h.highestmodseq++;
	for (i = 0; i < ec->n; i++) {
		struct rec r;
		const char *name, *kw;
		char *n;

		rc = get_rec(ec->mb, txn, ec->uids[i], &r, &name, &kw);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		n = xstrndup(name, r.namelen);
		rc = del_uid(ec->mb, txn, ec->uids[i], n, h.highestmodseq);
		free(n);
		if (rc != 0)
			return rc;
		any = 1;
	}
	if (!any)
		return 0;
	if ((rc = hdr_put(ec->mb, txn, &h)) == 0)
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
		return fail(err_r, MBX_ERR, xstrdup("mailbox is read-only"));
	if (lock_ex(mb, err_r) != 0)
		return MBX_ERR;
	for (i = 0; i < n; i++) {
		struct mbx_msg m;
		char *p, *cur = NULL;

		if (mbx_msg_get(mb, uids[i], &m, NULL) != 0)
			continue;
		p = xasprintf("%s/%s", mb->path, m.name);
		if (unlink(p) != 0 && errno == ENOENT &&
		    find_file(mb->path, m.name + 4, base_len(m.name + 4), &cur) == 0) {
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
	unlock(mb);
	return rc == 0 ? 0 : MBX_ERR;
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
		xc->v[xc->n].uid = key_uid(&k);
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
		return fail(err_r, MBX_ERR, xstrdup("mailbox is read-only"));
	if (maildir_deliver(mb->path, produce, ctx, name, sizeof(name), &dsn, &err) != 0)
		return fail(err_r, MBX_ERR, err);
	p = xasprintf("%s/new/%s", mb->path, name);
	if (internaldate != 0) {
		ts[0].tv_sec = ts[1].tv_sec = internaldate;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		(void)utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
	}
	if ((flags & MBX_FLAGS_ALL) != 0) {
		newname = flagged_name(name, strlen(name), NULL, flags & MBX_FLAGS_ALL);
		to = xasprintf("%s/%s", mb->path, newname);
		if (rename(p, to) != 0) {
			int e = errno;

			free(to);
			free(newname);
			free(p);
			return fail(err_r, MBX_ERR, xasprintf("rename %s: %s", name, strerror(e)));
		}
		free(to);
		free(newname);
	}
	free(p);
	if (reconcile(mb, NULL, err_r) != 0)
		return MBX_ERR;
	nc.base = name;
	nc.blen = strlen(name);
	if (db_read(&mb->db, name_fn, &nc, err_r) != 0)
		return fail(err_r, MBX_ERR, xasprintf("%s: appended but not indexed", name));
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

	uid_key(cc->uid, kb);
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

	uid_key(cc->uid, kb);
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
		return fail(err_r, MBX_ERR, xasprintf("cache entry of %zu bytes too large", len));
	rc = db_write(&mb->db, cache_put_fn, &cc, err_r);
	return rc == 0 || rc == MBX_GONE ? rc : MBX_ERR;
}

/* ---- folders ---- */

int
mbx_folder_path(const char *maildir, const char *name, char **path_r, char **err_r)
{
	const char *p, *comp;
	char *dot;
	size_t depth = 0, len = strlen(name), i;

	*path_r = NULL;
	if (strcasecmp(name, "INBOX") == 0) {
		*path_r = xstrdup(maildir);
		return 0;
	}
	if (len == 0 || len > MBX_FOLDER_NAME_MAX)
		return fail(err_r, MBX_ERR, xstrdup("folder name empty or too long"));
	for (p = name; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '.' || *p == '\\')
			return fail(err_r, MBX_ERR, xasprintf("folder name \"%s\": "
			    "no '.', '\\' or control characters", name));
	for (comp = name;; comp = p + 1) {
		p = strchr(comp, '/');
		if ((p != NULL ? (size_t)(p - comp) : strlen(comp)) == 0)
			return fail(err_r, MBX_ERR, xasprintf("folder name \"%s\": empty level",
			    name));
		if (++depth > MBX_FOLDER_DEPTH_MAX)
			return fail(err_r, MBX_ERR, xasprintf("folder name \"%s\": too deep",
			    name));
		if (p == NULL)
			break;
	}
	dot = xasprintf("%s/.%s", maildir, name);
	for (i = strlen(maildir) + 2; dot[i] != '\0'; i++)
		if (dot[i] == '/')
			dot[i] = '.';
	*path_r = dot;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
mbx_folder_list(const char *maildir, char ***names_r, char **err_r)
{
	struct dirent *de;
	struct stat st;
	char **v = xcalloc(1, sizeof(char *));
	DIR *d;
	size_t i;

	*names_r = NULL;
	d = opendir(maildir);
	if (d == NULL) {
		free(v);
		return fail(err_r, MBX_ERR, xasprintf("open %s: %s", maildir, strerror(errno)));
	}
	while ((de = readdir(d)) != NULL) {
		char *cur, *name;

		if (de->d_name[0] != '.' || de->d_name[1] == '\0' ||
		    strcmp(de->d_name, "..") == 0 || strlen(de->d_name) > MBX_FOLDER_NAME_MAX + 1)
			continue;
		cur = xasprintf("%s/%s/cur", maildir, de->d_name);
		if (lstat(cur, &st) == 0 && S_ISDIR(st.st_mode)) {
			name = xstrdup(de->d_name + 1);
			for (i = 0; name[i] != '\0'; i++)
				if (name[i] == '.')
					name[i] = '/';
			strv_push(&v, name);
			free(name);
		}
		free(cur);
	}
	closedir(d);
	qsort(v, strv_len(v), sizeof(char *), name_cmp);
	*names_r = v;
	return 0;
}

int
mbx_folder_create(const char *maildir, const char *name, char **err_r)
{
	const char *dsn;
	char *path, *err = NULL, *mf;
	int fd;

	if (mbx_folder_path(maildir, name, &path, err_r) != 0)
		return MBX_ERR;
	if (maildir_make(path, &dsn, &err) != 0) {
		free(path);
		return fail(err_r, MBX_ERR, err);
	}
	/* Courier and Dovecot mark Maildir++ folders with this file. */
	mf = xasprintf("%s/maildirfolder", path);
	fd = open(mf, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	free(mf);
	free(path);
	return 0;
}
