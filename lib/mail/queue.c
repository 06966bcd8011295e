/*
 * queue - queue IDs, queue directories, writing and reading queue files.
 *
 * The file format is documented in queue.h. Invariants kept here:
 * - A file carries its queue-ID name only once it is complete: the writer
 *   fills ".tmp.<pid>.<n>.<rand>", writes 'E', fsyncs the file, renames it
 *   (never over an existing name) and fsyncs the directory. It holds an
 *   exclusive flock on the temporary file from creation to close, so a
 *   temporary file that is unlocked (and not brand new) has a dead writer
 *   and may be removed (qmgr_clean_stale()).
 * - The writer emits records strictly in format order (V T S A* R* M N* E)
 *   whatever the order of the API calls, so a reader can be strict.
 * - The reader trusts nothing in the file: every length is checked against
 *   the file size and a per-type limit before anything is allocated, and
 *   content is never loaded (records are walked by header with pread).
 *
 * Queue IDs: seconds (>= 6 chars) and microseconds (4 chars) in base 52,
 * 'z', then the inode number in base 51 (alphabet without 'z'), so the
 * last 'z' is the separator. The inode makes IDs unique among live files
 * on the queue file system even when the clock steps back.
 *
 * LIMITS: 'S'/'A'/'R' records 64 KiB each, 100000 recipients, 'N' records
 * QUEUE_CHUNK_MAX. The writer coalesces small content pieces into 'N'
 * records of up to 64 KiB.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/queue.h"

#define REC_HDR 5                     /* type byte + 4-byte length */
#define REC_ENV_MAX (64 * 1024)       /* 'S', 'A', 'R' data */
#define REC_TIME_MAX 32
#define RCPT_MAX 100000
#define WBUF_FLUSH (64 * 1024)        /* write buffer flush threshold */
#define CONTENT_COALESCE (64 * 1024)  /* small content pieces -> one 'N' */

static const char id_alphabet[] =
    "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
#define ID_SEC_BASE 52
#define ID_SEC_PAD 6
#define ID_USEC_BASE 52
#define ID_USEC_LEN 4
#define ID_SEP 'z'
#define ID_INUM_BASE 51

_Static_assert(sizeof(id_alphabet) - 1 == 52, "queue ID alphabet");
_Static_assert(QUEUE_ID_MAX >= 32, "queue ID buffer");

/* Set *err_r to an xmalloc'd text when the caller wants it. */
static void
set_err(char **err_r, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void
set_err(char **err_r, const char *fmt, ...)
{
	va_list ap;
	struct buf b = BUF_INIT(0);

	if (err_r == NULL)
		return;
	va_start(ap, fmt);
	(void)buf_vprintf(&b, fmt, ap);
	va_end(ap);
	*err_r = buf_steal(&b);
}

static int
id_digit(char c, int base)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = memchr(id_alphabet, c, (size_t)base);
	return p == NULL ? -1 : (int)(p - id_alphabet);
}

/* Append v in base to out, at least pad digits, most significant first. */
static size_t
id_encode(char *out, size_t room, unsigned long long v, int base, size_t pad)
{
	char tmp[64];
	size_t n = 0, i;

	do {
		tmp[n++] = id_alphabet[v % (unsigned)base];
		v /= (unsigned)base;
	} while (v > 0 && n < sizeof(tmp));
	while (n < pad && n < sizeof(tmp))
		tmp[n++] = id_alphabet[0];
	if (n >= room)
		return 0;
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}

int
queue_id_make(char id[QUEUE_ID_MAX], const struct timespec *ts, ino_t ino)
{
	size_t n, m, k;

	n = id_encode(id, QUEUE_ID_MAX, (unsigned long long)ts->tv_sec,
	    ID_SEC_BASE, ID_SEC_PAD);
	if (n == 0)
		return -1;
	m = id_encode(id + n, QUEUE_ID_MAX - n,
	    (unsigned long long)(ts->tv_nsec / 1000), ID_USEC_BASE, ID_USEC_LEN);
	if (m != ID_USEC_LEN || n + m + 2 >= QUEUE_ID_MAX)
		return -1;
	id[n + m] = ID_SEP;
	k = id_encode(id + n + m + 1, QUEUE_ID_MAX - n - m - 1,
	    (unsigned long long)ino, ID_INUM_BASE, 1);
	if (k == 0)
		return -1;
	return 0;
}

int
queue_id_valid(const char *id)
{
	size_t len, i, sep;
	const char *z;
	unsigned long usec = 0;

	if (id == NULL)
		return 0;
	len = strnlen(id, QUEUE_ID_MAX);
	if (len < ID_SEC_PAD + ID_USEC_LEN + 2 || len >= QUEUE_ID_MAX)
		return 0;
	z = strrchr(id, ID_SEP);
	if (z == NULL)
		return 0;
	sep = (size_t)(z - id);
	if (sep < ID_SEC_PAD + ID_USEC_LEN || sep + 1 >= len)
		return 0;
	for (i = 0; i < sep; i++)
		if (id_digit(id[i], ID_SEC_BASE) < 0)
			return 0;
	for (i = sep + 1; i < len; i++)
		if (id_digit(id[i], ID_INUM_BASE) < 0)
			return 0;
	/* A writer never produces usec >= 10^6: such a name is not ours. */
	for (i = sep - ID_USEC_LEN; i < sep; i++)
		usec = usec * ID_USEC_BASE + (unsigned long)id_digit(id[i], ID_USEC_BASE);
	return usec < 1000000;
}

char *
queue_path(const char *qdir, const char *dir, const char *id)
{
	return xasprintf("%s/%s/%s", qdir, dir, id);
}

/* A directory name below qdir: one path component, not "." or "..". */
static int
dir_name_ok(const char *dir)
{
	return dir != NULL && dir[0] != '\0' && strchr(dir, '/') == NULL &&
	    strcmp(dir, ".") != 0 && strcmp(dir, "..") != 0;
}

/* Queue directories. */

static const struct {
	const char *name;
	mode_t mode;
} queue_dirs[] = {
	{ QUEUE_INCOMING, 0700 },
	{ QUEUE_ACTIVE, 0700 },
	{ QUEUE_DEFERRED, 0700 },
	{ QUEUE_HOLD, 0700 },
	{ QUEUE_CORRUPT, 0700 },
	{ QUEUE_BOUNCE, 0700 },
	{ QUEUE_DEFER, 0700 },
	{ QUEUE_PRIVATE, 0700 },
	/* Searchable by all: sendmail(1) runs as any user and connects to
	 * public/pickup (no set-gid helper as in Postfix); pickup checks who
	 * the peer is. Not listable. */
	{ QUEUE_PUBLIC, 0711 },
	/* Like /tmp: any local user may drop a file, nobody may list. */
	{ QUEUE_MAILDROP, 01733 },
	{ QUEUE_RECYCLE, 0700 },
};

int
queue_dirs_create(const char *qdir, uid_t uid, gid_t gid, char **err_r)
{
	struct stat st;
	size_t i;
	char *path;

	if (mkdir_p(qdir, 0755) < 0) {
		set_err(err_r, "create %s: %s", qdir, strerror(errno));
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(queue_dirs); i++) {
		path = xasprintf("%s/%s", qdir, queue_dirs[i].name);
		if (mkdir(path, queue_dirs[i].mode) < 0 && errno != EEXIST) {
			set_err(err_r, "mkdir %s: %s", path, strerror(errno));
			goto fail;
		}
		if (lstat(path, &st) < 0) {
			set_err(err_r, "lstat %s: %s", path, strerror(errno));
			goto fail;
		}
		if (!S_ISDIR(st.st_mode)) {
			set_err(err_r, "%s: not a directory", path);
			goto fail;
		}
		/* chown before chmod: chown may clear mode bits. */
		if (uid != (uid_t)-1 && (st.st_uid != uid || st.st_gid != gid) &&
		    chown(path, uid, gid) < 0) {
			set_err(err_r, "chown %s: %s", path, strerror(errno));
			goto fail;
		}
		/* Always: mkdir's mode is filtered by the umask. */
		if (chmod(path, queue_dirs[i].mode) < 0) {
			set_err(err_r, "chmod %s: %s", path, strerror(errno));
			goto fail;
		}
		xfree(&path);
	}
	return 0;
fail:
	xfree(&path);
	return -1;
}

int
queue_move(const char *qdir, const char *from, const char *to, const char *id)
{
	char *src, *dst;
	int ret = -1, save;

	if (!queue_id_valid(id) || !dir_name_ok(from) || !dir_name_ok(to)) {
		errno = EINVAL;
		return -1;
	}
	src = queue_path(qdir, from, id);
	dst = queue_path(qdir, to, id);
	/* No directory fsync (one per message in qmgr's incoming -> active,
	 * as Postfix's qmgr): rename() is atomic, so after a crash the file
	 * is in from/ or in to/, never in neither, and its contents and
	 * recipient marks live in the inode, which the name does not
	 * change. A move lost in a crash only runs again (qmgr moves what
	 * it finds in active/ back to incoming/ at start). A caller to whom
	 * the new place itself matters (postern queue hold) fsyncs to/. */
	if (rename(src, dst) == 0)
		ret = 0;
	save = errno;
	xfree(&src);
	xfree(&dst);
	errno = save;
	return ret;
}

/*
 * Names need to differ, not to be secret: O_EXCL and RENAME_NOREPLACE
 * catch a collision. So a per-process generator seeded once (from
 * getrandom, and the clock, which is a vDSO call) instead of getrandom and
 * getpid per name - two system calls a message, which in a guest cost as
 * much as a few hundred bytes of SMTP. A child after fork() seeds again,
 * so parent and child never walk the same sequence.
 */
static struct {
	uint64_t s;
	pid_t pid;
	pthread_once_t once;
} qrand = { 0, 0, PTHREAD_ONCE_INIT };

static void
qrand_forget(void)
{
	qrand.pid = 0;
}

static void
qrand_atfork(void)
{
	(void)pthread_atfork(NULL, NULL, qrand_forget);
}

static uint64_t
qrand_next(void)
{
	struct timespec ts;
	uint64_t z;

	(void)pthread_once(&qrand.once, qrand_atfork);
	if (qrand.pid == 0) {
		qrand.pid = getpid();
		if (getrandom(&qrand.s, sizeof(qrand.s), GRND_NONBLOCK) !=
		    (ssize_t)sizeof(qrand.s))
			qrand.s = 0;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		qrand.s ^= (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
		    ((uint64_t)qrand.pid << 40);
	}
	/* splitmix64 */
	z = (qrand.s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * Recycled queue files. Every message is one inode created by a writer
 * and freed by qmgr moments later. ext4 without a journal does not hand
 * out an inode freed in the last minute while it can find another, and
 * finds out by looking at each free one of the group in turn, under the
 * directory's lock: at a few hundred messages a second, every create of
 * a queue file (and of a Maildir file near it) walks thousands of them
 * (find_inode_bit, recently_deleted in perf: a quarter of the machine's
 * CPU in the SMTP benchmark). So qmgr does not unlink a finished file:
 * it renames it to recycle/, and the next writer in incoming/ renames one
 * from there to its ".tmp" name and writes over it instead of creating an
 * inode.
 *
 * Writes over, not truncates: freeing the blocks (with the "discard"
 * mount option, a discard request each) and allocating them again for
 * the next message made every fsync'd queue file dearer - a truncate in
 * qmgr and a block allocation in smtpd per message, a third of qmgr's
 * CPU in the SMTP benchmark. So qmgr truncates only a file larger than
 * QUEUE_RECYCLE_KEEP (recycle/ then holds at most QUEUE_RECYCLE_MAX times
 * that), and the writer cuts off what is left of a longer old message
 * before its fsync (queue_writer_seal()).
 *
 * Safe because the name, not the inode, carries a message: a recycled
 * file is invisible to every reader of the queue (nothing lists
 * recycle/; it is 0600 and mail_owner's, like every queue file), a
 * claimed one is a ".tmp" file like a new one (locked by its writer
 * before anything is written; whatever a crash left in it is never read,
 * since a ".tmp" file is never a message), and it gets a queue-ID name
 * only after it has exactly the new message's bytes and the usual fsync.
 * A claim that races with qmgr's removal of stale
 * ".tmp" files sees a link count of 0 after taking its lock and moves on.
 * recycle/ is bounded: qmgr unlinks instead while it holds
 * QUEUE_RECYCLE_MAX files (counted again every RECYCLE_RECOUNT removals).
 * Per process state, for the loop thread only.
 */
#define RECYCLE_BATCH 32
#define RECYCLE_RECOUNT 256

static struct {
	char *qdir;                            /* whose names these are */
	char names[RECYCLE_BATCH][QUEUE_ID_MAX];
	int n;                                 /* names[0..n) not tried yet */
	int empty;                             /* last listing found none */
	struct timespec empty_mtime;           /* recycle/'s mtime before it */
	unsigned removals;                     /* since the last count */
	int full;                              /* recycle/ at the bound */
} pool;

static void
pool_for(const char *qdir)
{
	if (pool.qdir != NULL && strcmp(pool.qdir, qdir) == 0)
		return;
	free(pool.qdir);
	pool.qdir = xstrdup(qdir);
	pool.n = 0;
	pool.empty = 0;
	pool.removals = 0;
	pool.full = 0;
}

/* Read up to RECYCLE_BATCH names (all of them when count_r: how many
 * there are, up to QUEUE_RECYCLE_MAX). Shuffled, so that two writers
 * listing at once mostly try different files. */
static int
pool_list(const char *qdir, size_t *count_r)
{
	struct dirent *de;
	char *path = xasprintf("%s/%s", qdir, QUEUE_RECYCLE);
	size_t count = 0;
	DIR *d = opendir(path);

	xfree(&path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		count++;
		if (count_r != NULL) {
			if (count >= QUEUE_RECYCLE_MAX)
				break;
			continue;
		}
		memcpy(pool.names[pool.n], de->d_name, strlen(de->d_name) + 1);
		if (++pool.n == RECYCLE_BATCH)
			break;
	}
	closedir(d);
	if (count_r != NULL) {
		*count_r = count;
		return 0;
	}
	for (int i = pool.n - 1; i > 0; i--) {
		char t[QUEUE_ID_MAX];
		int j = (int)(qrand_next() % (uint64_t)(i + 1));

		memcpy(t, pool.names[i], sizeof(t));
		memcpy(pool.names[i], pool.names[j], sizeof(t));
		memcpy(pool.names[j], t, sizeof(t));
	}
	return 0;
}

/* Take a recycled file as tmppath, opened write-only with its old bytes
 * still in it (the writer writes over them and cuts the rest at seal): its
 * fd, or -1 when there is none (the caller creates one). */
static int
pool_take(const char *qdir, const char *tmppath)
{
	char *src;
	int fd;

	pool_for(qdir);
	for (;;) {
		if (pool.n == 0) {
			struct stat st;

			/* An empty listing holds while recycle/ is unchanged:
			 * one stat instead of a listing per new file. */
			src = xasprintf("%s/%s", qdir, QUEUE_RECYCLE);
			if (stat(src, &st) < 0) {
				xfree(&src);
				return -1;
			}
			xfree(&src);
			if (pool.empty &&
			    st.st_mtim.tv_sec == pool.empty_mtime.tv_sec &&
			    st.st_mtim.tv_nsec == pool.empty_mtime.tv_nsec)
				return -1;
			if (pool_list(qdir, NULL) < 0 || pool.n == 0) {
				pool.empty = 1;
				pool.empty_mtime = st.st_mtim;
				return -1;
			}
			pool.empty = 0;
		}
		pool.n--;
		src = xasprintf("%s/%s/%s", qdir, QUEUE_RECYCLE, pool.names[pool.n]);
		if (renameat2(AT_FDCWD, src, AT_FDCWD, tmppath, RENAME_NOREPLACE) < 0) {
			int e = errno;

			xfree(&src);
			if (e == ENOENT)
				continue;       /* another writer took it */
			pool.n = 0;
			return -1;
		}
		xfree(&src);
		fd = open(tmppath, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		(void)unlink(tmppath);
	}
}

int
queue_remove(const char *qdir, const char *from, const char *id, off_t size)
{
	char *src, *dst;
	size_t count;
	int ret, save;

	if (!queue_id_valid(id) || !dir_name_ok(from)) {
		errno = EINVAL;
		return -1;
	}
	pool_for(qdir);
	if (++pool.removals >= RECYCLE_RECOUNT || pool.full) {
		if (pool.removals >= RECYCLE_RECOUNT) {
			pool.removals = 0;
			pool.full = pool_list(qdir, &count) < 0 ||
			    count >= QUEUE_RECYCLE_MAX;
		}
	}
	src = queue_path(qdir, from, id);
	dst = queue_path(qdir, QUEUE_RECYCLE, id);
	/* Like unlink, not synced: after a crash the file may be back in
	 * from/, exactly as an unlink that did not reach the disk. */
	if (!pool.full && rename(src, dst) == 0) {
		/* A small file keeps its blocks for the next message to
		 * write over; only a large one gives them back. */
		if (size > QUEUE_RECYCLE_KEEP)
			(void)truncate(dst, 0);
		ret = 0;
	} else {
		/* Full, or the rename failed (recycle/ missing, say): unlink,
		 * whose ENOENT is the one that says the file is gone. */
		ret = unlink(src);
	}
	save = errno;
	xfree(&src);
	xfree(&dst);
	errno = save;
	return ret;
}

int
queue_open_shared(const char *qdir, const char *dir, const char *id, int wait_ms,
    struct qenv *env, char **err_r)
{
	char *path, *rerr = NULL;
	int fd, waited = 0, save = 0;

	memset(env, 0, sizeof(*env));
	if (err_r != NULL)
		*err_r = NULL;
	if (!queue_id_valid(id) || dir == NULL || (strcmp(dir, QUEUE_ACTIVE) != 0 &&
	    strcmp(dir, QUEUE_INCOMING) != 0 && strcmp(dir, QUEUE_DEFERRED) != 0)) {
		set_err(err_r, "bad queue file name");
		errno = EINVAL;
		return -1;
	}
	path = queue_path(qdir, dir, id);
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		save = errno;
		set_err(err_r, "open %s: %s", path, strerror(save));
		goto fail;
	}
	/* qmgr holds LOCK_EX only for the moment it reads the file. */
	while (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		save = errno;
		if ((save != EWOULDBLOCK && save != EINTR) || waited >= wait_ms) {
			set_err(err_r, "lock %s: %s", path, strerror(save));
			goto fail;
		}
		usleep(20000);
		waited += 20;
	}
	if (queue_read(fd, env, &rerr) < 0) {
		save = errno;
		set_err(err_r, "read %s: %s", path, rerr != NULL ? rerr : strerror(save));
		free(rerr);
		goto fail;
	}
	snprintf(env->id, sizeof(env->id), "%s", id);
	free(path);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	free(path);
	errno = save;
	return -1;
}

/* Writer. */

enum wstate {
	W_ENVELOPE,   /* before the first content call */
	W_CONTENT,    /* 'M' and envelope written */
	W_SEALED,     /* 'E' written: only the commit steps remain */
	W_LINKED,     /* renamed to its queue ID, directory not yet synced */
	W_DONE,       /* committed */
	W_FAILED,
};

struct queue_writer {
	int fd;
	enum wstate state;
	int err;                /* errno of the failure, W_FAILED */
	char *dirpath;          /* <qdir>/<dir> */
	char *tmppath;
	char *finalpath;
	char id[QUEUE_ID_MAX];
	struct timespec arrival;
	int have_sender;
	struct buf wb;          /* bytes not yet written to fd */
	struct buf env;         /* encoded T and S records */
	struct buf attrs;       /* encoded A records */
	struct buf rcpts;       /* encoded R records */
	struct buf pend;        /* content not yet in an 'N' record */
	size_t nrcpt;
	off_t content_size;
	off_t written;          /* bytes written to fd */
	off_t stale;            /* size of the recycled file we write over */
	int withdraw_failed;    /* the final name could not be taken back */
};

static void
put_hdr(struct buf *b, int type, size_t len)
{
	unsigned char h[REC_HDR];

	h[0] = (unsigned char)type;
	h[1] = (unsigned char)(len >> 24);
	h[2] = (unsigned char)(len >> 16);
	h[3] = (unsigned char)(len >> 8);
	h[4] = (unsigned char)len;
	(void)buf_append(b, h, sizeof(h));
}

static int
w_fail(struct queue_writer *w, int err)
{
	if (w->state != W_FAILED) {
		w->state = W_FAILED;
		w->err = err;
	}
	errno = err;
	return -1;
}

/* Every byte goes through here: seal() cuts the file at w->written. */
static int
w_write(struct queue_writer *w, const void *p, size_t n)
{
	if (write_all(w->fd, p, n) < 0)
		return w_fail(w, errno ? errno : EIO);
	w->written += (off_t)n;
	return 0;
}

static int
w_flush(struct queue_writer *w)
{
	if (w->wb.len == 0)
		return 0;
	if (w_write(w, w->wb.data, w->wb.len) < 0)
		return -1;
	buf_reset(&w->wb);
	return 0;
}

/* Queue one record in the write buffer; flushes when the buffer is full. */
static int
w_record(struct queue_writer *w, int type, const void *p, size_t n)
{
	put_hdr(&w->wb, type, n);
	if (n > 0)
		(void)buf_append(&w->wb, p, n);
	if (w->wb.len >= WBUF_FLUSH)
		return w_flush(w);
	return 0;
}

/* Queue a whole buffer of pre-encoded records: through the write
 * buffer, so the envelope and a small message go out in one write(). */
static int
w_raw(struct queue_writer *w, const struct buf *b)
{
	if (b->len == 0)
		return 0;
	(void)buf_append(&w->wb, b->data, b->len);
	if (w->wb.len >= WBUF_FLUSH)
		return w_flush(w);
	return 0;
}

static void
tmp_suffix(char *out, size_t len)
{
	static unsigned counter;
	uint64_t r = qrand_next();

	snprintf(out, len, ".tmp.%ld.%u.%016llx", (long)qrand.pid, counter++,
	    (unsigned long long)r);
}

struct queue_writer *
queue_writer_open(const char *qdir, const char *dir, uid_t owner, gid_t group,
    char **err_r)
{
	struct queue_writer *w;
	struct timespec now;
	struct stat st;
	char name[96];
	int tries, recycled = 0;

	if (!dir_name_ok(dir)) {
		set_err(err_r, "bad queue directory name");
		errno = EINVAL;
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->fd = -1;
	buf_init(&w->wb, 0);
	buf_init(&w->env, 0);
	buf_init(&w->attrs, 0);
	buf_init(&w->rcpts, 0);
	buf_init(&w->pend, 0);
	w->dirpath = xasprintf("%s/%s", qdir, dir);
again:
	for (tries = 0; tries < 10; tries++) {
		tmp_suffix(name, sizeof(name));
		xfree(&w->tmppath);
		w->tmppath = xasprintf("%s/%s", w->dirpath, name);
		if (!recycled && strcmp(dir, QUEUE_INCOMING) == 0 &&
		    (w->fd = pool_take(qdir, w->tmppath)) >= 0) {
			recycled = 1;
			break;
		}
		w->fd = open(w->tmppath, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (w->fd >= 0 || errno != EEXIST)
			break;
	}
	if (w->fd < 0) {
		set_err(err_r, "create %s: %s", w->tmppath, strerror(errno));
		goto fail_nounlink;
	}
	/* "Writer alive" for qmgr's orphan scan; dies with this process. */
	while (flock(w->fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			set_err(err_r, "lock %s: %s", w->tmppath, strerror(errno));
			goto fail;
		}
	}
	if (recycled == 1) {
		/* qmgr's orphan scan may have removed the name between our
		 * rename and our lock; a file of someone else's (not ours to
		 * give away, or not a plain private file) is not reused. */
		int bad = fstat(w->fd, &st) < 0;

		if (!bad && (st.st_nlink != 1 || !S_ISREG(st.st_mode) ||
		    (st.st_mode & 07777) != 0600 ||
		    (st.st_uid != geteuid() && geteuid() != 0))) {
			if (st.st_nlink > 0)
				(void)unlink(w->tmppath);
			bad = 1;
		}
		if (bad) {
			close(w->fd);
			w->fd = -1;
			recycled = 2;   /* create one this time */
			goto again;
		}
	}
	clock_gettime(CLOCK_REALTIME, &now);
	w->arrival = now;
	if (owner != (uid_t)-1 &&
	    !(recycled == 1 && st.st_uid == owner && st.st_gid == group) &&
	    fchown(w->fd, owner, group) < 0) {
		set_err(err_r, "fchown %s: %s", w->tmppath, strerror(errno));
		goto fail;
	}
	if (recycled != 1 && fstat(w->fd, &st) < 0) {
		set_err(err_r, "fstat %s: %s", w->tmppath, strerror(errno));
		goto fail;
	}
	if (recycled == 1)
		w->stale = st.st_size;
	if (queue_id_make(w->id, &now, st.st_ino) < 0) {
		errno = EOVERFLOW;
		set_err(err_r, "cannot make a queue ID");
		goto fail;
	}
	w->finalpath = xasprintf("%s/%s", w->dirpath, w->id);
	w->state = W_ENVELOPE;
	(void)w_record(w, 'V', QUEUE_VERSION, strlen(QUEUE_VERSION));
	return w;

fail:
	{
		int save = errno;

		(void)unlink(w->tmppath);
		errno = save;
	}
fail_nounlink:
	{
		int save = errno;

		w->state = W_FAILED;
		queue_writer_free(&w);
		errno = save;
	}
	return NULL;
}

const char *
queue_writer_id(const struct queue_writer *w)
{
	return w->id;
}

/* Common checks for an envelope call. */
static int
w_envelope_ok(struct queue_writer *w)
{
	if (w->state == W_FAILED) {
		errno = w->err;
		return -1;
	}
	if (w->state != W_ENVELOPE) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
queue_writer_arrival(struct queue_writer *w, const struct timespec *ts)
{
	if (w_envelope_ok(w) < 0)
		return -1;
	if (w->have_sender || ts == NULL || ts->tv_sec < 0 || ts->tv_nsec < 0 ||
	    ts->tv_nsec >= 1000000000L) {
		errno = EINVAL;
		return -1;
	}
	w->arrival = *ts;
	return 0;
}

int
queue_writer_sender(struct queue_writer *w, const char *sender)
{
	char t[REC_TIME_MAX];
	size_t n;
	int tl;

	if (w_envelope_ok(w) < 0)
		return -1;
	if (w->have_sender || sender == NULL) {
		errno = EINVAL;
		return -1;
	}
	n = strlen(sender);
	if (n > REC_ENV_MAX) {
		errno = E2BIG;
		return -1;
	}
	tl = snprintf(t, sizeof(t), "%lld.%06ld", (long long)w->arrival.tv_sec,
	    w->arrival.tv_nsec / 1000);
	put_hdr(&w->env, 'T', (size_t)tl);
	(void)buf_append(&w->env, t, (size_t)tl);
	put_hdr(&w->env, 'S', n);
	(void)buf_append(&w->env, sender, n);
	w->have_sender = 1;
	return 0;
}

int
queue_writer_attr(struct queue_writer *w, const char *name, const char *value)
{
	size_t nl, vl;

	if (w_envelope_ok(w) < 0)
		return -1;
	if (!w->have_sender || name == NULL || value == NULL || name[0] == '\0' ||
	    strchr(name, '=') != NULL) {
		errno = EINVAL;
		return -1;
	}
	nl = strlen(name);
	vl = strlen(value);
	if (nl > REC_ENV_MAX || vl > REC_ENV_MAX - nl - 1) {
		errno = E2BIG;
		return -1;
	}
	put_hdr(&w->attrs, 'A', nl + 1 + vl);
	(void)buf_append(&w->attrs, name, nl);
	(void)buf_putc(&w->attrs, '=');
	(void)buf_append(&w->attrs, value, vl);
	return 0;
}

int
queue_writer_rcpt(struct queue_writer *w, const char *addr, const char *orig,
    const char *notify)
{
	size_t al, ol, nl;

	if (w_envelope_ok(w) < 0)
		return -1;
	if (!w->have_sender || addr == NULL || addr[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if (orig == NULL)
		orig = "";
	if (notify == NULL)
		notify = "";
	al = strlen(addr);
	ol = strlen(orig);
	nl = strlen(notify);
	if (al > REC_ENV_MAX || ol > REC_ENV_MAX || nl > REC_ENV_MAX ||
	    1 + al + 1 + ol + 1 + nl > REC_ENV_MAX || w->nrcpt >= RCPT_MAX) {
		errno = E2BIG;
		return -1;
	}
	put_hdr(&w->rcpts, 'R', 1 + al + 1 + ol + 1 + nl);
	(void)buf_putc(&w->rcpts, 'P');
	(void)buf_append(&w->rcpts, addr, al + 1);
	(void)buf_append(&w->rcpts, orig, ol + 1);
	(void)buf_append(&w->rcpts, notify, nl);
	w->nrcpt++;
	return 0;
}

int
queue_writer_set_sender(struct queue_writer *w, const char *sender)
{
	if (w_envelope_ok(w) < 0)
		return -1;
	if (!w->have_sender || sender == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (strlen(sender) > REC_ENV_MAX) {
		errno = E2BIG;
		return -1;
	}
	buf_reset(&w->env);
	w->have_sender = 0;
	return queue_writer_sender(w, sender);
}

size_t
queue_writer_rcpt_count(const struct queue_writer *w)
{
	return w->nrcpt;
}

/* Length of the R record at off in the rcpts buffer (header included). */
static size_t
rcpt_rec_len(const struct queue_writer *w, size_t off)
{
	const unsigned char *h = (const unsigned char *)w->rcpts.data + off;

	return REC_HDR + ((size_t)h[1] << 24 | (size_t)h[2] << 16
	    | (size_t)h[3] << 8 | (size_t)h[4]);
}

int
queue_writer_rcpt_truncate(struct queue_writer *w, size_t n)
{
	size_t off = 0;

	if (w_envelope_ok(w) < 0)
		return -1;
	if (n > w->nrcpt) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		off += rcpt_rec_len(w, off);
	buf_truncate(&w->rcpts, off);
	w->nrcpt = n;
	return 0;
}

int
queue_writer_rcpt_delete(struct queue_writer *w, const char *addr)
{
	size_t off = 0;
	int dropped = 0;

	if (w_envelope_ok(w) < 0)
		return -1;
	while (off < w->rcpts.len) {
		size_t len = rcpt_rec_len(w, off);
		/* 'P', addr NUL, orig NUL, notify */
		const char *a = w->rcpts.data + off + REC_HDR + 1;
		const char *o = a + strlen(a) + 1;
		if (strcasecmp(a, addr) != 0 && strcasecmp(o, addr) != 0) {
			off += len;
			continue;
		}
		memmove(w->rcpts.data + off, w->rcpts.data + off + len,
		    w->rcpts.len - off - len);
		buf_truncate(&w->rcpts, w->rcpts.len - len);
		w->nrcpt--;
		dropped++;
	}
	return dropped;
}

int
queue_writer_rcpt_has(const struct queue_writer *w, const char *addr)
{
	for (size_t off = 0; off < w->rcpts.len; off += rcpt_rec_len(w, off))
		if (strcasecmp(w->rcpts.data + off + REC_HDR + 1, addr) == 0)
			return 1;
	return 0;
}

char **
queue_writer_rcpt_list(const struct queue_writer *w)
{
	char **v = NULL;

	for (size_t off = 0; off < w->rcpts.len; off += rcpt_rec_len(w, off))
		strv_push(&v, w->rcpts.data + off + REC_HDR + 1);
	if (v == NULL)
		v = xcalloc(1, sizeof(*v));
	return v;
}

int
queue_writer_rcpt_all_done(struct queue_writer *w)
{
	if (w_envelope_ok(w) < 0)
		return -1;
	for (size_t off = 0; off < w->rcpts.len; off += rcpt_rec_len(w, off))
		w->rcpts.data[off + REC_HDR] = 'D';
	return 0;
}

int
queue_writer_set_dir(struct queue_writer *w, const char *dir)
{
	if (w->state == W_FAILED || w->state >= W_SEALED || !dir_name_ok(dir)) {
		errno = w->state == W_FAILED ? w->err : EINVAL;
		return -1;
	}
	/* The directory fsynced at commit is the one the name goes into. */
	char *qdir = xstrndup(w->dirpath, (size_t)(strrchr(w->dirpath, '/') - w->dirpath));
	free(w->dirpath);
	w->dirpath = xasprintf("%s/%s", qdir, dir);
	free(w->finalpath);
	w->finalpath = xasprintf("%s/%s", w->dirpath, w->id);
	free(qdir);
	return 0;
}

/* Leave the envelope state: write T S A* R* M. */
static int
w_start_content(struct queue_writer *w)
{
	if (!w->have_sender) {
		errno = EINVAL;
		return -1;
	}
	if (w_raw(w, &w->env) < 0 || w_raw(w, &w->attrs) < 0 ||
	    w_raw(w, &w->rcpts) < 0)
		return -1;
	buf_free(&w->env);
	buf_free(&w->attrs);
	buf_free(&w->rcpts);
	w->state = W_CONTENT;
	return w_record(w, 'M', NULL, 0);
}

static int
w_flush_pending(struct queue_writer *w)
{
	int ret;

	if (w->pend.len == 0)
		return 0;
	ret = w_record(w, 'N', w->pend.data, w->pend.len);
	buf_reset(&w->pend);
	return ret;
}

int
queue_writer_content(struct queue_writer *w, const void *p, size_t n)
{
	const char *cp = p;
	size_t m;

	if (w->state == W_FAILED) {
		errno = w->err;
		return -1;
	}
	if (w->state == W_ENVELOPE && w_start_content(w) < 0)
		return -1;
	if (w->state != W_CONTENT) {
		errno = EINVAL;
		return -1;
	}
	if ((off_t)n < 0 || w->content_size > (off_t)(INT64_MAX - (off_t)n)) {
		errno = EFBIG;
		return -1;
	}
	while (n > 0) {
		if (w->pend.len == 0 && n >= CONTENT_COALESCE) {
			/* Large piece: record header, then the bytes unbuffered. */
			m = n < QUEUE_CHUNK_MAX ? n : QUEUE_CHUNK_MAX;
			put_hdr(&w->wb, 'N', m);
			if (w_flush(w) < 0)
				return -1;
			if (w_write(w, cp, m) < 0)
				return -1;
		} else {
			m = CONTENT_COALESCE - w->pend.len;
			if (m > n)
				m = n;
			(void)buf_append(&w->pend, cp, m);
			if (w->pend.len >= CONTENT_COALESCE && w_flush_pending(w) < 0)
				return -1;
		}
		cp += m;
		n -= m;
		w->content_size += (off_t)m;
	}
	return 0;
}

off_t
queue_writer_content_size(const struct queue_writer *w)
{
	return w->content_size;
}

/* rename without replacing: renameat2 where the file system has it. */
static int
rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -1;
	if (link(from, to) < 0)
		return -1;
	(void)unlink(from);
	return 0;
}

int
queue_writer_seal(struct queue_writer *w)
{
	if (w->state == W_FAILED) {
		errno = w->err;
		return -1;
	}
	if (w->state == W_DONE || w->state == W_SEALED) {
		errno = EINVAL;
		return -1;
	}
	if (w->nrcpt == 0) {
		errno = EINVAL;
		return -1;
	}
	if (w->state == W_ENVELOPE && w_start_content(w) < 0)
		return -1;
	if (w_flush_pending(w) < 0 || w_record(w, 'E', NULL, 0) < 0 ||
	    w_flush(w) < 0)
		return -1;
	/* The rest of a longer recycled message we wrote over. */
	if (w->stale > w->written && ftruncate(w->fd, w->written) < 0)
		return w_fail(w, errno);
	w->state = W_SEALED;
	return 0;
}

int
queue_writer_start_sync(struct queue_writer *w)
{
	if (w->state != W_SEALED) {
		errno = EINVAL;
		return -1;
	}
	/* Only a hint to start the write-back: fsync below is the promise. */
	(void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	return 0;
}

int
queue_writer_sync(struct queue_writer *w)
{
	if (w->state != W_SEALED) {
		errno = w->state == W_FAILED ? w->err : EINVAL;
		return -1;
	}
	if (fsync(w->fd) < 0)
		return w_fail(w, errno);
	return 0;
}

int
queue_writer_link(struct queue_writer *w)
{
	int fd;

	if (w->state != W_SEALED) {
		errno = w->state == W_FAILED ? w->err : EINVAL;
		return -1;
	}
	/* The lock ("writer alive" for qmgr's orphan scan of .tmp names)
	 * goes with the close, just before the name appears: qmgr pushes a
	 * locked queue file back for a minute, so it must never find one. */
	fd = w->fd;
	w->fd = -1;
	if (close(fd) < 0)
		return w_fail(w, errno);
	if (rename_noreplace(w->tmppath, w->finalpath) < 0)
		return w_fail(w, errno);
	w->state = W_LINKED;
	return 0;
}

const char *
queue_writer_dir(const struct queue_writer *w)
{
	return w->dirpath;
}

int
queue_writer_done(struct queue_writer *w, int dir_err)
{
	if (w->state != W_LINKED) {
		errno = w->state == W_FAILED ? w->err : EINVAL;
		return -1;
	}
	if (dir_err != 0) {
		/* Not durable: take the name back so the client retries;
		 * if qmgr already took the file, a duplicate is the worst.
		 * The caller aborts the writer, which unlinks the tmp name. */
		w->withdraw_failed = rename(w->finalpath, w->tmppath) < 0;
		return w_fail(w, dir_err);
	}
	w->state = W_DONE;
	return 0;
}

int
queue_writer_withdraw_failed(const struct queue_writer *w)
{
	return w->withdraw_failed;
}

int
queue_writer_commit(struct queue_writer *w, char id_r[QUEUE_ID_MAX])
{
	int dir_err = 0;

	if (queue_writer_seal(w) < 0 || queue_writer_sync(w) < 0 ||
	    queue_writer_link(w) < 0)
		return -1;
	if (fsync_dir(w->dirpath) < 0)
		dir_err = errno ? errno : EIO;
	if (queue_writer_done(w, dir_err) < 0) {
		if (w->withdraw_failed)
			log_warn("%s: cannot withdraw unsynced queue file", w->id);
		errno = dir_err != 0 ? dir_err : errno;
		return -1;
	}
	if (id_r != NULL)
		memcpy(id_r, w->id, QUEUE_ID_MAX);
	return 0;
}

int
queue_writer_retarget(struct queue_writer *w, const char *qdir, const char *dir)
{
	if (w->state >= W_SEALED) {
		errno = EINVAL;
		return -1;
	}
	free(w->dirpath);
	free(w->finalpath);
	w->dirpath = xasprintf("%s/%s", qdir, dir);
	w->finalpath = xasprintf("%s/%s", w->dirpath, w->id);
	return 0;
}

void
queue_writer_abort(struct queue_writer **wp)
{
	struct queue_writer *w = *wp;

	if (w == NULL)
		return;
	if (w->state != W_DONE && w->tmppath != NULL)
		(void)unlink(w->tmppath);
	queue_writer_free(wp);
}

void
queue_writer_free(struct queue_writer **wp)
{
	struct queue_writer *w = *wp;

	if (w == NULL)
		return;
	if (w->fd >= 0)
		(void)close(w->fd);
	buf_free(&w->wb);
	buf_free(&w->env);
	buf_free(&w->attrs);
	buf_free(&w->rcpts);
	buf_free(&w->pend);
	xfree(&w->dirpath);
	xfree(&w->tmppath);
	xfree(&w->finalpath);
	free(w);
	*wp = NULL;
}

/* Reader. */

/* A small read-ahead window over pread: envelope records are many and
 * short, content records are skipped by offset. */
struct rd {
	int fd;
	off_t size;
	off_t wstart;
	size_t wlen;
	char win[8192];
};

/* Read exactly n bytes at off. 0, or -1 (errno; EINVAL at a short read).
 * ahead: fill the window (envelope); else read just n (content headers,
 * where read-ahead would mostly fetch content that is skipped). */
static int
rd_get(struct rd *r, off_t off, void *dst, size_t n, int ahead)
{
	ssize_t got;
	size_t done = 0;

	if (off < 0 || off > r->size || (off_t)n > r->size - off) {
		errno = EINVAL;
		return -1;
	}
	if (off >= r->wstart && off - r->wstart <= (off_t)r->wlen &&
	    n <= r->wlen - (size_t)(off - r->wstart)) {
		memcpy(dst, r->win + (off - r->wstart), n);
		return 0;
	}
	if (ahead && n <= sizeof(r->win)) {
		size_t fill = sizeof(r->win);

		/* Nothing past the size is ever asked for (checked above):
		 * stop there, without a pread that only finds the end. */
		if ((off_t)fill > r->size - off)
			fill = (size_t)(r->size - off);
		r->wstart = off;
		r->wlen = 0;
		while (r->wlen < fill) {
			got = pread(r->fd, r->win + r->wlen, fill - r->wlen,
			    off + (off_t)r->wlen);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return -1;
			if (got == 0)
				break;
			r->wlen += (size_t)got;
		}
		if (r->wlen < n) {
			errno = EINVAL;   /* file shrank under us */
			return -1;
		}
		memcpy(dst, r->win, n);
		return 0;
	}
	while (done < n) {
		got = pread(r->fd, (char *)dst + done, n - done, off + (off_t)done);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -1;
		if (got == 0) {
			errno = EINVAL;
			return -1;
		}
		done += (size_t)got;
	}
	return 0;
}

static size_t
get_len(const unsigned char *h)
{
	return ((size_t)h[1] << 24) | ((size_t)h[2] << 16) | ((size_t)h[3] << 8) |
	    (size_t)h[4];
}

/* "<sec>.<usec>": 1..19 digits, '.', exactly 6 digits. */
static int
parse_time(const char *s, size_t n, struct timespec *ts)
{
	long long sec = 0;
	long usec = 0;
	size_t i = 0, d;

	for (d = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++, d++) {
		if (d >= 18)
			return -1;
		sec = sec * 10 + (s[i] - '0');
	}
	if (d == 0 || i >= n || s[i] != '.')
		return -1;
	for (i++, d = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++, d++)
		usec = usec * 10 + (s[i] - '0');
	if (d != 6 || i != n)
		return -1;
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = usec * 1000;
	return 0;
}

static int
corrupt(char **err_r, off_t off, const char *what)
{
	set_err(err_r, "corrupt queue file: %s at offset %lld", what, (long long)off);
	errno = EINVAL;
	return -1;
}

int
queue_read(int fd, struct qenv *env, char **err_r)
{
	struct rd *r;
	struct stat st;
	unsigned char h[REC_HDR];
	char *data = NULL;
	const char *nul1, *nul2, *eq;
	off_t off = 0;
	size_t len, cap_rcpt = 0, cap_attr = 0;
	int type, prev = 0, save;
	struct qrcpt *rc;

	memset(env, 0, sizeof(*env));
	if (err_r != NULL)
		*err_r = NULL;
	if (fstat(fd, &st) < 0) {
		save = errno;
		set_err(err_r, "fstat: %s", strerror(errno));
		errno = save;
		return -1;
	}
	if (!S_ISREG(st.st_mode))
		return corrupt(err_r, 0, "not a regular file");
	r = xmalloc(sizeof(*r));
	r->fd = fd;
	r->size = st.st_size;
	r->wstart = 0;
	r->wlen = 0;
	env->file_size = st.st_size;

	for (;;) {
		if (off == r->size) {
			corrupt(err_r, off, "missing end record");
			goto fail;
		}
		if (r->size - off < REC_HDR) {
			corrupt(err_r, off, "truncated record header");
			goto fail;
		}
		if (rd_get(r, off, h, REC_HDR, prev != 'M' && prev != 'N') < 0)
			goto io;
		type = h[0];
		len = get_len(h);
		if ((off_t)len > r->size - off - REC_HDR) {
			corrupt(err_r, off, "record length past end of file");
			goto fail;
		}
		/* Order: V T S A* R+ M N* E. */
		switch (type) {
		case 'V':
			if (prev != 0 || len != strlen(QUEUE_VERSION))
				goto order;
			break;
		case 'T':
			if (prev != 'V' || len >= REC_TIME_MAX)
				goto order;
			break;
		case 'S':
			if (prev != 'T' || len > REC_ENV_MAX)
				goto order;
			break;
		case 'A':
			if ((prev != 'S' && prev != 'A') || len > REC_ENV_MAX)
				goto order;
			break;
		case 'R':
			if ((prev != 'S' && prev != 'A' && prev != 'R') ||
			    len > REC_ENV_MAX || len < 4)
				goto order;
			if (env->nrcpt >= RCPT_MAX) {
				corrupt(err_r, off, "too many recipients");
				goto fail;
			}
			break;
		case 'M':
			if (prev != 'R' || len != 0)
				goto order;
			env->content_off = off;
			break;
		case 'N':
			if ((prev != 'M' && prev != 'N') || len > QUEUE_CHUNK_MAX)
				goto order;
			env->content_size += (off_t)len;
			break;
		case 'E':
			if ((prev != 'M' && prev != 'N') || len != 0)
				goto order;
			if (off + REC_HDR != r->size) {
				corrupt(err_r, off + REC_HDR, "data after end record");
				goto fail;
			}
			break;
		default:
			corrupt(err_r, off, "unknown record type");
			goto fail;
		}
		if (type != 'N' && type != 'M' && type != 'E') {
			data = xmalloc(len + 1);
			if (rd_get(r, off + REC_HDR, data, len, 1) < 0)
				goto io;
			data[len] = '\0';
		}
		switch (type) {
		case 'V':
			if (memcmp(data, QUEUE_VERSION, len) != 0) {
				corrupt(err_r, off, "unknown version");
				goto fail;
			}
			break;
		case 'T':
			if (parse_time(data, len, &env->arrival) < 0) {
				corrupt(err_r, off, "bad arrival time");
				goto fail;
			}
			break;
		case 'S':
			if (memchr(data, '\0', len) != NULL) {
				corrupt(err_r, off, "NUL in sender");
				goto fail;
			}
			env->sender = data;
			data = NULL;
			break;
		case 'A':
			eq = memchr(data, '=', len);
			if (memchr(data, '\0', len) != NULL || eq == NULL || eq == data) {
				corrupt(err_r, off, "bad attribute");
				goto fail;
			}
			if (env->nattr == cap_attr) {
				cap_attr = cap_attr ? cap_attr * 2 : 8;
				env->attrs = xreallocarray(env->attrs, cap_attr,
				    sizeof(*env->attrs));
			}
			env->attrs[env->nattr].name = xstrndup(data, (size_t)(eq - data));
			env->attrs[env->nattr].value = xstrdup(eq + 1);
			env->nattr++;
			break;
		case 'R':
			/* status, addr \0 orig \0 notify: exactly two NULs. */
			nul1 = memchr(data + 1, '\0', len - 1);
			nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)(data + len - nul1 - 1)) : NULL;
			if ((data[0] != 'P' && data[0] != 'D' && data[0] != 'W') || nul1 == NULL ||
			    nul1 == data + 1 || nul2 == NULL ||
			    memchr(nul2 + 1, '\0', (size_t)(data + len - nul2 - 1)) != NULL) {
				corrupt(err_r, off, "bad recipient record");
				goto fail;
			}
			if (env->nrcpt == cap_rcpt) {
				cap_rcpt = cap_rcpt ? cap_rcpt * 2 : 8;
				env->rcpts = xreallocarray(env->rcpts, cap_rcpt,
				    sizeof(*env->rcpts));
			}
			rc = &env->rcpts[env->nrcpt++];
			rc->status = data[0] == 'W' ? 'P' : data[0];
			rc->warned = data[0] == 'W';
			rc->status_off = off + REC_HDR;
			rc->addr = xstrdup(data + 1);
			rc->orig = xstrdup(nul1 + 1);
			rc->notify = xstrdup(nul2 + 1);
			break;
		}
		xfree(&data);
		prev = type;
		off += REC_HDR + (off_t)len;
		if (type == 'E')
			break;
	}
	free(r);
	return 0;

order:
	corrupt(err_r, off, "record out of order or with a bad length");
	goto fail;
io:
	save = errno;
	if (save == EINVAL)
		corrupt(err_r, off, "short read");
	else
		set_err(err_r, "read: %s", strerror(save));
	errno = save;
fail:
	save = errno;
	xfree(&data);
	free(r);
	qenv_free(env);
	errno = save;
	return -1;
}

void
qenv_free(struct qenv *env)
{
	size_t i;

	for (i = 0; i < env->nattr; i++) {
		free(env->attrs[i].name);
		free(env->attrs[i].value);
	}
	for (i = 0; i < env->nrcpt; i++) {
		free(env->rcpts[i].addr);
		free(env->rcpts[i].orig);
		free(env->rcpts[i].notify);
	}
	free(env->attrs);
	free(env->rcpts);
	free(env->sender);
	memset(env, 0, sizeof(*env));
}

const char *
qenv_attr(const struct qenv *env, const char *name)
{
	size_t i;

	for (i = 0; i < env->nattr; i++)
		if (strcmp(env->attrs[i].name, name) == 0)
			return env->attrs[i].value;
	return NULL;
}

int
queue_content(int fd, const struct qenv *env,
    int (*cb)(const char *p, size_t n, void *ctx), void *ctx)
{
	unsigned char h[REC_HDR];
	char *chunk;
	off_t off, size = env->file_size;
	size_t len, n, want, done, pre;
	ssize_t got;
	int ret = 0, have_hdr = 0;

	/* The file was validated by queue_read(); still bound every step
	 * in case it changed since. */
	if (env->content_off <= 0 || env->content_off > size - REC_HDR) {
		errno = EINVAL;
		return -1;
	}
	chunk = xmalloc(CONTENT_COALESCE + 2 * REC_HDR);
	off = env->content_off + REC_HDR;
	for (;;) {
		/* A header not brought along by the record before it (the
		 * first one) is read with what follows it: a message that
		 * fits in one record, the usual case, costs one pread. */
		pre = 0;
		if (!have_hdr) {
			want = size - off < (off_t)(CONTENT_COALESCE + 2 * REC_HDR) ?
			    (size_t)(size - off) : CONTENT_COALESCE + 2 * REC_HDR;
			do
				got = want >= REC_HDR ? pread(fd, chunk, want, off) : 0;
			while (got < 0 && errno == EINTR);
			if (got < REC_HDR) {
				errno = EINVAL;
				ret = -1;
				break;
			}
			memcpy(h, chunk, REC_HDR);
			pre = (size_t)got - REC_HDR;
		}
		have_hdr = 0;
		len = get_len(h);
		if (h[0] == 'E' && len == 0)
			break;
		if (h[0] != 'N' || len > QUEUE_CHUNK_MAX ||
		    (off_t)len > size - off - REC_HDR) {
			errno = EINVAL;
			ret = -1;
			break;
		}
		off += REC_HDR;
		done = 0;
		if (pre > 0) {
			done = pre < len ? pre : len;
			if (pre >= len + REC_HDR) {
				memcpy(h, chunk + REC_HDR + len, REC_HDR);
				have_hdr = 1;
			}
			if (done > 0 && (ret = cb(chunk + REC_HDR, done, ctx)) != 0)
				goto out;
		}
		for (; done < len; done += n) {
			n = len - done < CONTENT_COALESCE ? len - done : CONTENT_COALESCE;
			/* The record's last piece brings the next header along:
			 * one pread per record instead of two. */
			want = n;
			if (done + n == len && size - off - (off_t)len >= REC_HDR)
				want += REC_HDR;
			got = pread(fd, chunk, want, off + (off_t)done);
			if (got < 0 && errno == EINTR) {
				n = 0;
				continue;
			}
			if (got <= 0) {
				if (got == 0)
					errno = EINVAL;
				ret = -1;
				goto out;
			}
			if ((size_t)got > n) {
				/* A short read of the header: read it again. */
				if ((size_t)got == want) {
					memcpy(h, chunk + n, REC_HDR);
					have_hdr = 1;
				}
				got = (ssize_t)n;
			}
			n = (size_t)got;
			if ((ret = cb(chunk, n, ctx)) != 0)
				goto out;
		}
		off += (off_t)len;
	}
out:
	free(chunk);
	return ret;
}

int
queue_mark_rcpt(int fd, off_t status_off, char status)
{
	unsigned char h[REC_HDR + 1];
	char c = status;
	ssize_t n;

	if ((status != 'P' && status != 'D' && status != 'W') || status_off < REC_HDR) {
		errno = EINVAL;
		return -1;
	}
	/* Refuse an offset that does not point at a recipient's status byte,
	 * and a warning mark on one that is no longer pending. */
	if (pread(fd, h, sizeof(h), status_off - REC_HDR) != (ssize_t)sizeof(h) ||
	    h[0] != 'R' || (h[REC_HDR] != 'P' && h[REC_HDR] != 'D' && h[REC_HDR] != 'W') ||
	    (status == 'W' && h[REC_HDR] == 'D')) {
		errno = EINVAL;
		return -1;
	}
	do
		n = pwrite(fd, &c, 1, status_off);
	while (n < 0 && errno == EINTR);
	if (n != 1) {
		if (n == 0)
			errno = EIO;
		return -1;
	}
	return 0;
}

int
queue_space_ok(unsigned long long avail, unsigned long long minfree,
    unsigned long long size)
{
	if (avail <= minfree)
		return 0;
	return size == 0 || (size < avail - minfree && size < avail / 2);
}

int
queue_space(const char *qdir, unsigned long long minfree,
    unsigned long long size, unsigned long long *avail_r)
{
	struct statvfs vfs;

	*avail_r = 0;
	if (statvfs(qdir, &vfs) < 0)
		return -1;
	/* f_bavail: the blocks left to a writer that is not root (the
	 * reserve is not the queue's), saturating rather than wrapping. */
	if (vfs.f_frsize != 0 && vfs.f_bavail > ULLONG_MAX / vfs.f_frsize)
		*avail_r = ULLONG_MAX;
	else
		*avail_r = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	return queue_space_ok(*avail_r, minfree, size);
}
