/*
 * mbox - mailbox file append with dot-lock + fcntl locking (mboxrd).
 *
 * Invariants: the file is locked (dot-lock first, then fcntl, the order
 * mail readers use) before its size is recorded; every failure after that
 * truncates the file back to the recorded size while still holding the
 * locks; success is reported after fsync. The From-line quoting is a small
 * state machine, so a "From " split across producer chunks is still seen.
 * Trusts: the caller's choice of path and effective uid. Does not trust
 * the file: O_NOFOLLOW, and it must be a regular file with one link owned
 * by the expected uid, or we refuse.
 * Limits: locks are waited for lock_timeout seconds (polling every 100 ms);
 * dot-locks older than stale_lock seconds are taken to be left by a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "store/mbox.h"

#define OUTBUF_SIZE (64 * 1024)
#define LOCK_POLL_US 100000

void
mbox_opts_init(struct mbox_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->owner = (uid_t)-1;
	o->group = (gid_t)-1;
	o->dotlock = 1;
}

static int
fail(const char **dsn_r, char **err_r, const char *dsn, char *text)
{
	*dsn_r = dsn;
	if (err_r != NULL)
		*err_r = text;
	else
		free(text);
	return -1;
}

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 0 locked (*lock_r set), 1 skipped (directory not writable), -1 error. */
static int
dotlock_take(const char *path, int timeout, int stale, char **lock_r)
{
	char *lock = xasprintf("%s.lock", path);
	double deadline = mono_now() + timeout;
	char pidbuf[32];
	struct stat st;
	int fd, n;

	*lock_r = NULL;
	for (;;) {
		fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			n = snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long)getpid());
			(void)write_all(fd, pidbuf, (size_t)n);
			close(fd);
			*lock_r = lock;
			return 0;
		}
		if (errno == EACCES || errno == EPERM || errno == EROFS) {
			log_warnx("cannot create dot-lock %s: %s; using fcntl lock only",
			    lock, strerror(errno));
			free(lock);
			return 1;
		}
		if (errno != EEXIST) {
			free(lock);
			return -1;
		}
		if (lstat(lock, &st) == 0 && time(NULL) - st.st_mtime > stale) {
			log_warnx("removing stale dot-lock %s", lock);
			if (unlink(lock) == 0 || errno == ENOENT)
				continue;
		}
		if (mono_now() >= deadline) {
			free(lock);
			errno = EAGAIN;
			return -1;
		}
		usleep(LOCK_POLL_US);
	}
}

static int
fcntl_lock(int fd, int timeout)
{
	struct flock fl;
	double deadline = mono_now() + timeout;

	for (;;) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EACCES && errno != EAGAIN && errno != EINTR)
			return -1;
		if (mono_now() >= deadline) {
			errno = EAGAIN;
			return -1;
		}
		usleep(LOCK_POLL_US);
	}
}

/* Open or create the mailbox; *created_r tells whether we made it. */
static int
open_mbox(const char *path, int *created_r)
{
	int fd, tries;

	*created_r = 0;
	for (tries = 0; tries < 3; tries++) {
		fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY |
		    O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT)
			return fd;
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0600);
		if (fd >= 0) {
			*created_r = 1;
			return fd;
		}
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

/* The output side: buffered writes plus the mboxrd From quoting. */
struct msink {
	int fd;
	int werr;
	struct buf b;
	int bol;          /* at the start of a line */
	size_t gt;        /* '>' seen at the start of this line, not yet written */
	size_t fromlen;   /* bytes of "From " matched after them */
	char last;        /* last content byte written, '\n' if none */
};

static int
msink_flush(struct msink *s)
{
	if (s->b.len == 0 || s->werr)
		return s->werr ? -1 : 0;
	if (write_all(s->fd, s->b.data, s->b.len) < 0) {
		s->werr = errno ? errno : EIO;
		return -1;
	}
	buf_reset(&s->b);
	return 0;
}

static int
msink_emit(struct msink *s, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (s->b.len + n > OUTBUF_SIZE && msink_flush(s) < 0)
		return -1;
	if (n >= OUTBUF_SIZE) {
		if (write_all(s->fd, p, n) < 0) {
			s->werr = errno ? errno : EIO;
			return -1;
		}
	} else {
		buf_append(&s->b, p, n);
	}
	s->last = p[n - 1];
	return 0;
}

static int
msink_pending(struct msink *s, int quote)
{
	static const char gts[] = ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>";
	size_t n;

	if (quote && msink_emit(s, ">", 1) < 0)
		return -1;
	while (s->gt > 0) {
		n = s->gt < sizeof(gts) - 1 ? s->gt : sizeof(gts) - 1;
		if (msink_emit(s, gts, n) < 0)
			return -1;
		s->gt -= n;
	}
	if (msink_emit(s, "From ", s->fromlen) < 0)
		return -1;
	s->fromlen = 0;
	return 0;
}

static int
msink_out(const char *p, size_t n, void *ctx)
{
	struct msink *s = ctx;
	const char *nl;
	size_t i = 0, end;

	if (s->werr) {
		errno = s->werr;
		return -1;
	}
	while (i < n) {
		if (s->bol) {
			char c = p[i];

			if (s->fromlen == 0 && c == '>') {
				s->gt++;
				i++;
				continue;
			}
			if (c == "From "[s->fromlen]) {
				s->fromlen++;
				i++;
				if (s->fromlen == 5) {
					if (msink_pending(s, 1) < 0)
						return -1;
					s->bol = 0;
				}
				continue;
			}
			if (msink_pending(s, 0) < 0)
				return -1;
			s->bol = 0;
		}
		nl = memchr(p + i, '\n', n - i);
		end = nl != NULL ? (size_t)(nl - p) + 1 : n;
		if (msink_emit(s, p + i, end - i) < 0)
			return -1;
		if (nl != NULL)
			s->bol = 1;
		i = end;
	}
	return 0;
}

static void
from_line(struct buf *b, const char *sender, time_t when)
{
	struct tm tm;
	char date[64];
	const char *cp;

	localtime_r(&when, &tm);
	if (strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		strcpy(date, "Thu Jan  1 00:00:00 1970");
	buf_puts(b, "From ");
	if (sender == NULL || *sender == '\0')
		sender = "MAILER-DAEMON";
	/* White space or controls would break the From line. */
	for (cp = sender; *cp != '\0'; cp++)
		buf_putc(b, (unsigned char)*cp <= ' ' || *cp == 0x7f ? '_' : *cp);
	buf_printf(b, " %s\n", date);
}

int
mbox_deliver(const char *path, const char *sender, time_t when,
    mail_producer_fn produce, void *ctx, const struct mbox_opts *o,
    const char **dsn_r, char **err_r)
{
	int timeout = o->lock_timeout > 0 ? o->lock_timeout : 10;
	int stale = o->stale_lock > 0 ? o->stale_lock : 300;
	char *lock = NULL;
	struct msink s;
	struct stat st;
	off_t orig = 0;
	int fd = -1, created, e, rc = -1, prc, pe;

	if (err_r != NULL)
		*err_r = NULL;
	memset(&s, 0, sizeof(s));
	buf_init(&s.b, 0);
	if (o->dotlock) {
		int r = dotlock_take(path, timeout, stale, &lock);

		if (r < 0) {
			e = errno;
			if (e == EAGAIN)
				fail(dsn_r, err_r, "4.2.0",
				    xasprintf("mailbox %s: dot-lock %s.lock is held", path, path));
			else
				fail(dsn_r, err_r, "4.2.0", xasprintf("create dot-lock %s.lock: %s",
				    path, strerror(e)));
			goto out;
		}
	}
	fd = open_mbox(path, &created);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP || (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)))
			fail(dsn_r, err_r, "5.2.0",
			    xasprintf("mailbox %s is a symbolic link", path));
		else if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
			fail(dsn_r, err_r, "5.2.0",
			    xasprintf("mailbox %s is not a regular file", path));
		else
			fail(dsn_r, err_r, mailstore_errno_dsn(e),
			    xasprintf("open mailbox %s: %s", path, strerror(e)));
		goto out;
	}
	if (created && o->chown_new && fchown(fd, o->owner, o->group) < 0) {
		e = errno;
		fail(dsn_r, err_r, "4.2.0", xasprintf("chown mailbox %s: %s", path,
		    strerror(e)));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		fail(dsn_r, err_r, "4.2.0", xasprintf("stat mailbox %s: %s", path,
		    strerror(e)));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(dsn_r, err_r, "5.2.0",
		    xasprintf("mailbox %s is not a regular file", path));
		goto out;
	}
	if (st.st_nlink != 1) {
		fail(dsn_r, err_r, "5.2.0",
		    xasprintf("mailbox %s has %lu hard links", path,
		    (unsigned long)st.st_nlink));
		goto out;
	}
	if (o->owner != (uid_t)-1 && st.st_uid != o->owner) {
		fail(dsn_r, err_r, "5.2.0",
		    xasprintf("mailbox %s is owned by uid %ld, not %ld", path,
		    (long)st.st_uid, (long)o->owner));
		goto out;
	}
	/* Blocking writes from here on (the open was non-blocking for FIFOs). */
	(void)fcntl(fd, F_SETFL, O_WRONLY | O_APPEND);
	if (fcntl_lock(fd, timeout) < 0) {
		e = errno;
		fail(dsn_r, err_r, "4.2.0", e == EAGAIN ?
		    xasprintf("mailbox %s is locked", path) :
		    xasprintf("lock mailbox %s: %s", path, strerror(e)));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		fail(dsn_r, err_r, "4.2.0", xasprintf("stat mailbox %s: %s", path,
		    strerror(e)));
		goto out;
	}
	orig = st.st_size;

	s.fd = fd;
	s.bol = 1;
	s.last = '\n';
	from_line(&s.b, sender, when);
	errno = 0;
	prc = produce(msink_out, &s, ctx);
	pe = errno;
	if (prc == 0 && s.werr == 0) {
		if (s.bol && (s.gt || s.fromlen))
			(void)msink_pending(&s, 0);
		if (s.last != '\n')
			(void)msink_emit(&s, "\n", 1);
		(void)msink_emit(&s, "\n", 1);
		if (msink_flush(&s) == 0 && fsync(fd) < 0)
			s.werr = errno;
	}
	if (prc == 0 && s.werr == 0 && o->size_limit > 0 &&
	    fstat(fd, &st) == 0 && st.st_size > o->size_limit) {
		if (ftruncate(fd, orig) < 0)
			log_warn("truncate mailbox %s", path);
		fail(dsn_r, err_r, "5.2.2", xasprintf("mailbox %s: size limit %lld "
		    "exceeded", path, o->size_limit));
		goto out;
	}
	if (prc != 0 || s.werr != 0) {
		if (ftruncate(fd, orig) < 0)
			log_warn("truncate mailbox %s back to %lld bytes", path,
			    (long long)orig);
		if (s.werr)
			fail(dsn_r, err_r, mailstore_errno_dsn(s.werr),
			    xasprintf("write mailbox %s: %s", path, strerror(s.werr)));
		else
			fail(dsn_r, err_r, "4.3.0", xasprintf("cannot read message: %s",
			    pe ? strerror(pe) : "unknown error"));
		goto out;
	}
	*dsn_r = "2.0.0";
	rc = 0;
out:
	buf_free(&s.b);
	/* close() drops the fcntl lock; the truncation above came first. */
	if (fd >= 0)
		close(fd);
	if (lock != NULL) {
		unlink(lock);
		free(lock);
	}
	return rc;
}

/* ---- reading: the spool as a POP3 maildrop ---- */

struct mbox_drop {
	char *path;
	char *lock;              /* our dot-lock, or NULL */
	int fd;
	char *map;
	size_t maplen;
	struct mbox_drop_msg *v;
	size_t n;
};

static int
drop_fail(char **err_r, char *text)
{
	if (err_r != NULL)
		*err_r = text;
	else
		free(text);
	return -1;
}

static int
is_from_line(const char *p, size_t len)
{
	return len >= 5 && memcmp(p, "From ", 5) == 0;
}

/* ^>+From : quoted by the writer; one '>' goes. */
static int
is_quoted_from(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && p[i] == '>')
		i++;
	return i > 0 && is_from_line(p + i, len - i);
}

static void
drop_unmap(struct mbox_drop *d)
{
	if (d->map != NULL && d->maplen > 0)
		munmap(d->map, d->maplen);
	d->map = NULL;
	d->maplen = 0;
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

/* Sizes and the UIDL of one message. */
static void
drop_measure(struct mbox_drop *d, struct mbox_drop_msg *m)
{
	const char *p = d->map + m->body_off, *end = d->map + m->body_end, *nl;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned long long size = 0, lines = 0;
	size_t i;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		size += len - (is_quoted_from(p, len) ? 1 : 0);
		if (nl != NULL)
			lines++;
		p += len;
	}
	m->size = size;
	/* each LF becomes CRLF; an unended last line gets one */
	m->wire_size = size + lines + (size > 0 && d->map[m->body_end - 1] != '\n' ? 2 : 0);
	if (EVP_Digest(d->map + m->from_off, (size_t)(m->body_end - m->from_off), md, NULL,
	    EVP_sha256(), NULL) != 1)
		memset(md, 0, sizeof(md));   /* still unique: the suffix below */
	for (i = 0; i < 16; i++)
		snprintf(m->uidl + 2 * i, 3, "%02x", md[i]);
}

static int
drop_parse(struct mbox_drop *d, char **err_r)
{
	struct stat st;
	size_t off = 0, cap = 0, i, j;
	int e;

	drop_unmap(d);
	if (fstat(d->fd, &st) != 0) {
		e = errno;
		return drop_fail(err_r, xasprintf("stat %s: %s", d->path, strerror(e)));
	}
	if (st.st_size == 0)
		return 0;
	d->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, d->fd, 0);
	if (d->map == MAP_FAILED) {
		e = errno;
		d->map = NULL;
		return drop_fail(err_r, xasprintf("map %s: %s", d->path, strerror(e)));
	}
	d->maplen = (size_t)st.st_size;
	while (off < d->maplen) {
		const char *p = d->map + off;
		const char *nl = memchr(p, '\n', d->maplen - off);
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : d->maplen - off;

		if (is_from_line(p, len)) {
			if (d->n == cap) {
				cap = cap ? cap * 2 : 64;
				d->v = xreallocarray(d->v, cap, sizeof(*d->v));
			}
			memset(&d->v[d->n], 0, sizeof(d->v[0]));
			d->v[d->n].from_off = (off_t)off;
			d->v[d->n].body_off = (off_t)(off + len);
			d->n++;
		} else if (d->n == 0 && off == 0) {
			drop_unmap(d);
			return drop_fail(err_r, xasprintf("%s: not an mbox file (no From line "
			    "at the start)", d->path));
		}
		off += len;
	}
	for (i = 0; i < d->n; i++) {
		struct mbox_drop_msg *m = &d->v[i];

		m->next_off = i + 1 < d->n ? d->v[i + 1].from_off : (off_t)d->maplen;
		m->body_end = m->next_off;
		/* the blank line the writer put after the message */
		if (m->body_end - m->body_off >= 2 && d->map[m->body_end - 1] == '\n' &&
		    d->map[m->body_end - 2] == '\n')
			m->body_end--;
		else if (m->body_end - m->body_off == 1 && d->map[m->body_off] == '\n')
			m->body_end--;
		drop_measure(d, m);
		/* identical messages still get distinct UIDLs */
		for (j = 0; j < i; j++)
			if (strncmp(d->v[j].uidl, m->uidl, 32) == 0) {
				snprintf(m->uidl + 32, sizeof(m->uidl) - 32, "-%zu", i);
				break;
			}
	}
	return 0;
}

int
mbox_drop_open(const char *path, const struct mbox_opts *o, struct mbox_drop **d_r,
    char **err_r)
{
	int timeout = o->lock_timeout > 0 ? o->lock_timeout : 10;
	int stale = o->stale_lock > 0 ? o->stale_lock : 300;
	struct mbox_drop *d;
	struct stat st;
	int e;

	*d_r = NULL;
	d = xcalloc(1, sizeof(*d));
	d->path = xstrdup(path);
	d->fd = -1;
	if (o->dotlock && dotlock_take(path, timeout, stale, &d->lock) < 0) {
		e = errno;
		mbox_drop_close(&d);
		return drop_fail(err_r, e == EAGAIN ?
		    xasprintf("mailbox %s: dot-lock %s.lock is held", path, path) :
		    xasprintf("create dot-lock %s.lock: %s", path, strerror(e)));
	}
	d->fd = open(path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (d->fd < 0 && errno == ENOENT) {
		*d_r = d;   /* no mail yet: an empty maildrop */
		return 0;
	}
	if (d->fd < 0) {
		e = errno;
		mbox_drop_close(&d);
		return drop_fail(err_r, xasprintf("open mailbox %s: %s", path, strerror(e)));
	}
	if (fstat(d->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    (o->owner != (uid_t)-1 && st.st_uid != o->owner)) {
		mbox_drop_close(&d);
		return drop_fail(err_r, xasprintf("mailbox %s is not a regular file with one "
		    "link owned by uid %ld", path, (long)o->owner));
	}
	(void)fcntl(d->fd, F_SETFL, O_RDWR);
	if (fcntl_lock(d->fd, timeout) < 0) {
		e = errno;
		mbox_drop_close(&d);
		return drop_fail(err_r, e == EAGAIN ? xasprintf("mailbox %s is locked", path) :
		    xasprintf("lock mailbox %s: %s", path, strerror(e)));
	}
	if (drop_parse(d, err_r) != 0) {
		mbox_drop_close(&d);
		return -1;
	}
	*d_r = d;
	return 0;
}

size_t
mbox_drop_count(const struct mbox_drop *d)
{
	return d->n;
}

const struct mbox_drop_msg *
mbox_drop_msg(const struct mbox_drop *d, size_t i)
{
	return i < d->n ? &d->v[i] : NULL;
}

int
mbox_drop_read(struct mbox_drop *d, size_t i, mail_out_fn out, void *out_ctx,
    char **err_r)
{
	const char *p, *end, *nl;

	if (i >= d->n)
		return drop_fail(err_r, xasprintf("no message %zu", i + 1));
	p = d->map + d->v[i].body_off;
	end = d->map + d->v[i].body_end;
	while (p < end) {
		size_t len;
		int q;

		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		q = is_quoted_from(p, len);
		if (out(p + q, len - (size_t)q, out_ctx) != 0)
			return drop_fail(err_r, xasprintf("write: %s", strerror(errno)));
		p += len;
	}
	return 0;
}

/* Copy [from, from+len) down to to (to <= from) in the file. */
static int
move_down(int fd, off_t from, off_t to, off_t len)
{
	char buf[OUTBUF_SIZE];
	ssize_t r;

	while (len > 0) {
		size_t want = len < (off_t)sizeof(buf) ? (size_t)len : sizeof(buf);

		r = pread(fd, buf, want, from);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				errno = EIO;
			return -1;
		}
		if (pwrite(fd, buf, (size_t)r, to) != r)
			return -1;
		from += r;
		to += r;
		len -= r;
	}
	return 0;
}

int
mbox_drop_expunge(struct mbox_drop *d, const size_t *idx, size_t n, char **err_r)
{
	char *del;
	off_t w = -1;
	size_t i;
	int e;

	if (n == 0 || d->n == 0)
		return 0;
	del = xcalloc(d->n, 1);
	for (i = 0; i < n; i++)
		if (idx[i] < d->n)
			del[idx[i]] = 1;
	for (i = 0; i < d->n; i++) {
		struct mbox_drop_msg *m = &d->v[i];

		if (del[i]) {
			if (w < 0)
				w = m->from_off;
			continue;
		}
		if (w < 0)
			continue;
		if (move_down(d->fd, m->from_off, w, m->next_off - m->from_off) != 0)
			goto fail;
		w += m->next_off - m->from_off;
	}
	free(del);
	del = NULL;
	if (w >= 0 && (ftruncate(d->fd, w) != 0 || fsync(d->fd) != 0))
		goto fail;
	return drop_parse(d, err_r);
fail:
	e = errno;
	free(del);
	return drop_fail(err_r, xasprintf("rewrite mailbox %s: %s", d->path, strerror(e)));
}

void
mbox_drop_close(struct mbox_drop **dp)
{
	struct mbox_drop *d = *dp;

	if (d == NULL)
		return;
	drop_unmap(d);
	if (d->fd >= 0)
		close(d->fd);   /* drops the fcntl lock */
	if (d->lock != NULL) {
		unlink(d->lock);
		free(d->lock);
	}
	free(d->path);
	free(d);
	*dp = NULL;
}
