/*
 * maildir - Maildir delivery the safe way.
 *
 * Invariants: a message appears in new/ only complete and fsynced (it is
 * written under tmp/ first and renamed with RENAME_NOREPLACE, or
 * link+unlink where the file system lacks it, so an existing name is never
 * replaced); success is reported only after new/ itself is fsynced, so a
 * crash right after we return cannot lose the directory entry. Directories
 * are opened with O_NOFOLLOW and used through their descriptors (openat,
 * renameat), so a symlink swapped in after the checks is not followed.
 * Trusts: the caller has already become the mailbox owner; the path given
 * is the one the configuration names. Does not trust the directory
 * contents: symlinks and foreign-owned directories are refused.
 * Exactly once: maildir_deliver_named() takes a name derived from the
 * queue ID and the recipient (maildir_delivery_name), so a repeated
 * attempt - the agent was killed after the rename but before the queue
 * file said "done" - finds its earlier copy and reports success instead
 * of storing a second one.
 * Limits: the host name part of unique names is cut at 64 bytes. A copy
 * a reader already moved to cur/ is found under "name" or "name:..."
 * (one scan of cur/, only when new/ lacks it and cur/ changed since a
 * second before the arrival time the name starts with); one a reader renamed
 * otherwise or deleted is delivered again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "store/maildir.h"

#define OUTBUF_SIZE (64 * 1024)
#define MAILDIR_FDS 3   /* open_maildir(): the Maildir, tmp/, new/ */

/* Opened for a delivery; cur/ is only checked (stat_cur). */
static const char *const subdirs[] = { "tmp", "new" };

/*
 * The last Maildir delivered to, kept open (maildir_keep_open(): local,
 * which delivers message after message to the same few mailboxes). Opening
 * the Maildir, tmp/ and new/, checking each and closing them again cost
 * ten system calls a delivery; checking that the path and both
 * sub-directories are still the very directories held (device and inode:
 * an inode held open is never reused), still directories and still ours
 * costs three. Any difference, and any failure of a delivery, drops them,
 * and the next delivery opens afresh with every check of open_maildir().
 */
static struct {
	int on;
	char *path;
	uid_t uid;
	int fds[MAILDIR_FDS];
	struct stat st[MAILDIR_FDS];
} kept = { 0, NULL, 0, { -1, -1, -1 }, { { 0 } } };

static void
kept_drop(void)
{
	for (size_t i = 0; i < MAILDIR_FDS; i++) {
		if (kept.fds[i] >= 0)
			close(kept.fds[i]);
		kept.fds[i] = -1;
	}
	xfree(&kept.path);
}

void
maildir_keep_open(int on)
{
	if (!on)
		kept_drop();
	kept.on = on;
}

static int
same_dir(const struct stat *a, const struct stat *b, uid_t me)
{
	return S_ISDIR(a->st_mode) && a->st_dev == b->st_dev &&
	    a->st_ino == b->st_ino && a->st_uid == me;
}

/* The kept fds, if they are still path's Maildir, tmp/ and new/. */
static int
kept_take(const char *path, uid_t me, int fds[MAILDIR_FDS])
{
	struct stat st;
	size_t i;

	if (kept.path == NULL || kept.uid != me || strcmp(kept.path, path) != 0)
		return 0;
	if (lstat(path, &st) != 0 || !same_dir(&st, &kept.st[0], me))
		goto drop;
	for (i = 0; i < ARRAY_SIZE(subdirs); i++)
		if (fstatat(kept.fds[0], subdirs[i], &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !same_dir(&st, &kept.st[i + 1], me))
			goto drop;
	for (i = 0; i < MAILDIR_FDS; i++)
		fds[i] = kept.fds[i];
	return 1;
drop:
	kept_drop();
	return 0;
}

static void
kept_put(const char *path, uid_t me, const int fds[MAILDIR_FDS],
    const struct stat st[MAILDIR_FDS])
{
	kept_drop();
	kept.path = xstrdup(path);
	kept.uid = me;
	for (size_t i = 0; i < MAILDIR_FDS; i++) {
		kept.fds[i] = fds[i];
		kept.st[i] = st[i];
	}
}

/* After a delivery (or a failed open_maildir()): close what open_maildir()
 * gave, unless it is kept; failed drops the kept ones too. */
static void
release_maildir(int fds[MAILDIR_FDS], int failed)
{
	if (fds[0] >= 0 && fds[0] == kept.fds[0]) {
		if (failed)
			kept_drop();
		return;
	}
	for (size_t i = 0; i < MAILDIR_FDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

const char *
mailstore_errno_dsn(int err)
{
	switch (err) {
	case ENOSPC:
	case EDQUOT:
		return "4.2.2";
	case EFBIG:
		return "5.2.2";
	case ELOOP:
		return "5.2.0";
	default:
		return "4.2.0";
	}
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

/* The host name for unique names: at most 64 bytes, with '/' and ':'
 * escaped as \057 and \072 (they would break the name or its flags). */
static void
escaped_host(char out[256])
{
	/* Asked once per process: every delivery names a file. */
	static char esc[256];
	static int have;
	char host[256];
	size_t i, o = 0;

	if (have) {
		memcpy(out, esc, sizeof(esc));
		return;
	}
	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	host[64] = '\0';
	for (i = 0; host[i] != '\0' && o + 5 < 256; i++) {
		if (host[i] == '/') {
			memcpy(esc + o, "\\057", 4);
			o += 4;
		} else if (host[i] == ':') {
			memcpy(esc + o, "\\072", 4);
			o += 4;
		} else {
			esc[o++] = host[i];
		}
	}
	esc[o] = '\0';
	have = 1;
	memcpy(out, esc, sizeof(esc));
}

int
maildir_unique_name(char *buf, size_t size)
{
	static unsigned long counter;
	char esc[256];
	struct timeval tv;
	int n;

	escaped_host(esc);
	gettimeofday(&tv, NULL);
	n = snprintf(buf, size, "%lld.M%ldP%ldQ%lu.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)log_pid(), ++counter, esc);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return 0;
}

int
maildir_delivery_name(char *buf, size_t size, long long arrival,
    const char *queue_id, long long offset)
{
	char esc[256];
	const char *p;
	int n;

	/* Queue IDs are alphanumeric; anything else would be a caller bug
	 * that could smuggle a '/' into the name. */
	for (p = queue_id; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= 'a' && *p <= 'z')))
			return -1;
	if (*queue_id == '\0' || arrival < 0 || offset < 0)
		return -1;
	escaped_host(esc);
	n = snprintf(buf, size, "%lld.Q%sR%lld.%s", arrival, queue_id, offset, esc);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return 0;
}

/* Strip trailing slashes: "Maildir/" would make O_NOFOLLOW follow. */
static char *
clean_path(const char *dir)
{
	char *p = xstrdup(dir);
	size_t len = strlen(p);

	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	return p;
}

static int
check_dir(const struct stat *st, uid_t me, const char *path, const char **dsn_r,
    char **err_r)
{
	if (S_ISLNK(st->st_mode))
		return fail(dsn_r, err_r, "5.2.0",
		    xasprintf("maildir %s is a symbolic link", path));
	if (!S_ISDIR(st->st_mode))
		return fail(dsn_r, err_r, "5.2.0",
		    xasprintf("maildir %s is not a directory", path));
	if (st->st_uid != me)
		return fail(dsn_r, err_r, "5.2.0",
		    xasprintf("maildir %s is owned by uid %ld, not %ld", path,
		    (long)st->st_uid, (long)me));
	return 0;
}

/* cur/ of the Maildir open as dfd, made if missing: a directory of ours
 * (not a symbolic link); st gets its stat. */
static int
stat_cur(int dfd, const char *path, uid_t me, struct stat *st, const char **dsn_r,
    char **err_r)
{
	char *sub;
	int e, rc;

	rc = fstatat(dfd, "cur", st, AT_SYMLINK_NOFOLLOW);
	if (rc < 0 && errno == ENOENT) {
		if (mkdirat(dfd, "cur", 0700) < 0 && errno != EEXIST) {
			e = errno;
			return fail(dsn_r, err_r, mailstore_errno_dsn(e),
			    xasprintf("create maildir %s/cur: %s", path, strerror(e)));
		}
		rc = fstatat(dfd, "cur", st, AT_SYMLINK_NOFOLLOW);
	}
	if (rc < 0) {
		e = errno;
		return fail(dsn_r, err_r, mailstore_errno_dsn(e),
		    xasprintf("stat maildir %s/cur: %s", path, strerror(e)));
	}
	sub = xasprintf("%s/cur", path);
	rc = check_dir(st, me, sub, dsn_r, err_r);
	free(sub);
	return rc;
}

/* Open the Maildir and its sub-directories tmp/ and new/: fds[0] dir,
 * 1 tmp, 2 new. cur/ is made if missing and checked like the others, and
 * cur_st (if not NULL) gets its stat. */
static int
open_maildir(const char *dir, int fds[MAILDIR_FDS], struct stat *cur_st, const char **dsn_r,
    char **err_r)
{
	char *path = clean_path(dir);
	struct stat st, sts[MAILDIR_FDS];
	uid_t me = geteuid();
	size_t i;
	int e;

	for (i = 0; i < MAILDIR_FDS; i++)
		fds[i] = -1;
	if (kept.on && kept_take(path, me, fds))
		goto have;
	/* The Maildir almost always exists: open it first, and only create
	 * or diagnose it when that fails (saves a mkdir per path component
	 * and an lstat on every delivery). The fstat below checks it. */
	fds[0] = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fds[0] >= 0)
		goto opened;
	if (mkdir_p(path, 0700) < 0 && errno != EEXIST) {
		e = errno;
		fail(dsn_r, err_r, mailstore_errno_dsn(e),
		    xasprintf("create maildir %s: %s", path, strerror(e)));
		goto bad;
	}
	if (lstat(path, &st) < 0) {
		e = errno;
		fail(dsn_r, err_r, mailstore_errno_dsn(e),
		    xasprintf("maildir %s: %s", path, strerror(e)));
		goto bad;
	}
	if (check_dir(&st, me, path, dsn_r, err_r) < 0)
		goto bad;
	fds[0] = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
opened:
	if (fds[0] < 0 || fstat(fds[0], &sts[0]) < 0 ||
	    check_dir(&sts[0], me, path, dsn_r, err_r) < 0) {
		if (fds[0] < 0) {
			e = errno;
			fail(dsn_r, err_r, e == ELOOP ? "5.2.0" : mailstore_errno_dsn(e),
			    xasprintf("open maildir %s: %s", path, strerror(e)));
		}
		goto bad;
	}
	for (i = 0; i < ARRAY_SIZE(subdirs); i++) {
		/* Likewise: create a sub-directory only when it is missing. */
		fds[i + 1] = openat(fds[0], subdirs[i],
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fds[i + 1] < 0 && errno == ENOENT) {
			if (mkdirat(fds[0], subdirs[i], 0700) < 0 && errno != EEXIST) {
				e = errno;
				fail(dsn_r, err_r, mailstore_errno_dsn(e),
				    xasprintf("create maildir %s/%s: %s", path, subdirs[i],
				    strerror(e)));
				goto bad;
			}
			fds[i + 1] = openat(fds[0], subdirs[i],
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fds[i + 1] < 0) {
			e = errno;
			if (fstatat(fds[0], subdirs[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    !S_ISDIR(st.st_mode)) {
				char *sub = xasprintf("%s/%s", path, subdirs[i]);
				check_dir(&st, me, sub, dsn_r, err_r);
				free(sub);
			} else {
				fail(dsn_r, err_r, mailstore_errno_dsn(e),
				    xasprintf("open maildir %s/%s: %s", path,
				    subdirs[i], strerror(e)));
			}
			goto bad;
		}
		if (fstat(fds[i + 1], &sts[i + 1]) < 0) {
			e = errno;
			fail(dsn_r, err_r, "4.2.0", xasprintf("stat maildir %s/%s: %s",
			    path, subdirs[i], strerror(e)));
			goto bad;
		}
		if (sts[i + 1].st_uid != me) {
			char *sub = xasprintf("%s/%s", path, subdirs[i]);
			check_dir(&sts[i + 1], me, sub, dsn_r, err_r);
			free(sub);
			goto bad;
		}
	}
	if (kept.on)
		kept_put(path, me, fds, sts);
have:
	/* cur/ is only looked at, and seldom opened (already_present). */
	if (stat_cur(fds[0], path, me, &st, dsn_r, err_r) < 0)
		goto bad;
	if (cur_st != NULL)
		*cur_st = st;
	free(path);
	return 0;
bad:
	release_maildir(fds, 1);
	free(path);
	return -1;
}

int
maildir_make(const char *dir, const char **dsn_r, char **err_r)
{
	int fds[MAILDIR_FDS];

	if (open_maildir(dir, fds, NULL, dsn_r, err_r) < 0)
		return -1;
	release_maildir(fds, 0);
	return 0;
}

/* Buffered writer for the tmp file; remembers its own errno so a write
 * failure is told apart from a producer (input) failure. */
struct sink {
	int fd;
	int werr;
	struct buf b;
};

static int
sink_flush(struct sink *s)
{
	if (s->b.len == 0)
		return 0;
	if (write_all(s->fd, s->b.data, s->b.len) < 0) {
		s->werr = errno ? errno : EIO;
		return -1;
	}
	buf_reset(&s->b);
	return 0;
}

static int
sink_out(const char *p, size_t n, void *ctx)
{
	struct sink *s = ctx;

	if (s->werr) {
		errno = s->werr;
		return -1;
	}
	if (s->b.len + n > OUTBUF_SIZE && sink_flush(s) < 0)
		return -1;
	if (n >= OUTBUF_SIZE) {
		if (write_all(s->fd, p, n) < 0) {
			s->werr = errno ? errno : EIO;
			return -1;
		}
		return 0;
	}
	buf_append(&s->b, p, n);
	return 0;
}

static int
move_new(int tfd, int nfd, const char *name)
{
	if (renameat2(tfd, name, nfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* File systems without RENAME_NOREPLACE: link refuses to replace too. */
	if (linkat(tfd, name, nfd, name, 0) < 0)
		return -1;
	unlinkat(tfd, name, 0);
	return 0;
}

/* Is name in new/ already (an earlier attempt delivered it)? A reader
 * may have moved it to cur/ meanwhile: "name" or "name:2,FLAGS" there.
 * 1 yes, 0 no, -1 (errno) cur/ cannot be opened to look. */
static int
already_present(int mfd, int nfd, const struct stat *cur_st, const char *name)
{
	struct stat st;
	char flagged[MAILDIR_NAME_MAX + 8];
	DIR *d;
	struct dirent *de;
	size_t n = strlen(name);
	int dfd, found = 0;
	char *end;
	long long made;

	if (fstatat(nfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	/* A name starts with the message's arrival time, earlier than any
	 * attempt to deliver it. cur/ unchanged since then (its ctime, which
	 * utime() cannot set back, older than that second) cannot hold a
	 * copy an earlier attempt stored and a reader moved: skip the look
	 * there (cur_st: open_maildir's fstat of cur/, just taken). Saves
	 * its scan (O(messages in cur/)) on first deliveries. One second of
	 * margin: the arrival time came from the fine-grained clock, while
	 * the kernel may stamp cur/ from the coarse one, up to a tick behind,
	 * so across a second boundary a later change can carry the second
	 * before. */
	errno = 0;
	made = strtoll(name, &end, 10);
	if (errno == 0 && end != name && *end == '.' &&
	    (long long)cur_st->st_ctim.tv_sec < made - 1)
		return 0;
	dfd = openat(mfd, "cur", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		close(dfd);
		return 1;
	}
	snprintf(flagged, sizeof(flagged), "%s:2,", name);
	if (fstatat(dfd, flagged, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		close(dfd);
		return 1;
	}
	/* "name:2,S" etc.: one pass over cur/, only when cur/ changed since
	 * the message arrived. */
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return 0;
	}
	while (!found && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, name, n) == 0 && de->d_name[n] == ':')
			found = 1;
	closedir(d);
	return found;
}

static int
deliver(const char *dir, const char *fixed, mail_producer_fn produce, void *ctx,
    char *name_r, size_t name_size, int *present_r, const char **dsn_r, char **err_r)
{
	char name[MAILDIR_NAME_MAX];
	struct sink s;
	struct stat cur_st;
	int fds[MAILDIR_FDS], fd = -1, tries, e, rc = -1, i, prc, pe;

	if (err_r != NULL)
		*err_r = NULL;
	if (present_r != NULL)
		*present_r = 0;
	if (fixed != NULL && (*fixed == '\0' || strchr(fixed, '/') != NULL ||
	    fixed[0] == '.' || strlen(fixed) >= sizeof(name)))
		return fail(dsn_r, err_r, "4.3.5", xasprintf("bad maildir file name"));
	if (open_maildir(dir, fds, &cur_st, dsn_r, err_r) < 0)
		return -1;
	if (fixed != NULL && (i = already_present(fds[0], fds[2], &cur_st, fixed)) != 0) {
		if (i < 0) {
			e = errno;
			fail(dsn_r, err_r, mailstore_errno_dsn(e),
			    xasprintf("open maildir %s/cur: %s", dir, strerror(e)));
			goto out;
		}
		snprintf(name, sizeof(name), "%s", fixed);
		goto present;
	}
	for (tries = 0; tries < 5; tries++) {
		if (fixed != NULL)
			snprintf(name, sizeof(name), "%s", fixed);
		else if (maildir_unique_name(name, sizeof(name)) < 0) {
			fail(dsn_r, err_r, "4.2.0", xstrdup("maildir file name too long"));
			goto out;
		}
		fd = openat(fds[1], name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
		/* A fixed name left in tmp/ by an attempt that died while
		 * writing: ours to replace (qmgr hands a recipient to one
		 * agent at a time). */
		if (fixed != NULL)
			unlinkat(fds[1], name, 0);
	}
	s.fd = fd;
	s.werr = 0;
	buf_init(&s.b, 0);
	errno = 0;
	prc = produce(sink_out, &s, ctx);
	pe = errno;
	if (prc == 0 && sink_flush(&s) == 0 && fsync(fd) < 0)
		s.werr = errno;
	if (close(fd) < 0 && s.werr == 0 && prc == 0)
		s.werr = errno;
	buf_free(&s.b);
	if (prc != 0 || s.werr != 0) {
		if (s.werr)
			fail(dsn_r, err_r, mailstore_errno_dsn(s.werr),
			    xasprintf("write maildir file %s/tmp/%s: %s", dir, name,
			    strerror(s.werr)));
		else
			fail(dsn_r, err_r, "4.3.0",
			    xasprintf("cannot read message: %s",
			    pe ? strerror(pe) : "unknown error"));
		unlinkat(fds[1], name, 0);
		goto out;
	}
	if (move_new(fds[1], fds[2], name) < 0) {
		e = errno;
		unlinkat(fds[1], name, 0);
		if (e == EEXIST && fixed != NULL)
			goto present;
		fail(dsn_r, err_r, mailstore_errno_dsn(e),
		    xasprintf("rename maildir file %s/tmp/%s to new/: %s", dir,
		    name, strerror(e)));
		goto out;
	}
	if (fsync(fds[2]) < 0) {
		/* The file is in new/ but maybe not durably: report failure
		 * (a retry may duplicate; silence could lose it). */
		e = errno;
		fail(dsn_r, err_r, mailstore_errno_dsn(e),
		    xasprintf("fsync maildir %s/new: %s", dir, strerror(e)));
		goto out;
	}
	if (name_r != NULL && name_size > 0)
		snprintf(name_r, name_size, "%s", name);
	*dsn_r = "2.0.0";
	rc = 0;
	goto out;
present:
	/* Delivered by an earlier attempt that died before recording it.
	 * Its new/ entry was fsynced before that attempt could report
	 * anything, but it may not have been: sync again to be sure. */
	if (fsync(fds[2]) < 0) {
		e = errno;
		fail(dsn_r, err_r, mailstore_errno_dsn(e),
		    xasprintf("fsync maildir %s/new: %s", dir, strerror(e)));
		goto out;
	}
	if (present_r != NULL)
		*present_r = 1;
	if (name_r != NULL && name_size > 0)
		snprintf(name_r, name_size, "%s", name);
	*dsn_r = "2.0.0";
	rc = 0;
out:
	release_maildir(fds, rc != 0);
	return rc;
}

int
maildir_deliver(const char *dir, mail_producer_fn produce, void *ctx,
    char *name_r, size_t name_size, const char **dsn_r, char **err_r)
{
	return deliver(dir, NULL, produce, ctx, name_r, name_size, NULL, dsn_r, err_r);
}

int
maildir_deliver_named(const char *dir, const char *name, mail_producer_fn produce,
    void *ctx, int *present_r, const char **dsn_r, char **err_r)
{
	return deliver(dir, name, produce, ctx, NULL, 0, present_r, dsn_r, err_r);
}
