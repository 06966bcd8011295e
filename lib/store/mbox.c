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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

int
mbox_dotlock_take(const char *path, int timeout, int stale, char **lock_r)
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

int
mbox_fcntl_lock(int fd, int timeout)
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
		int r = mbox_dotlock_take(path, timeout, stale, &lock);

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
	if (mbox_fcntl_lock(fd, timeout) < 0) {
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
