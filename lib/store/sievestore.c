/*
 * sievestore - a user's Sieve scripts in Pigeonhole's layout (see
 * sievestore.h for the contract). Every path below the directory is
 * built from a name sstore_name_ok accepted and opened relative to a
 * directory descriptor with O_NOFOLLOW; the active link's target is
 * checked against the directory before it is read.
 * LIMITS: the directory itself may not be a symbolic link (we open it
 * O_NOFOLLOW, as maildir.c does for a Maildir).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/strv.h"
#include "proto/mutf7.h"
#include "store/sievestore.h"

#define SCRIPT_READ_MAX (16 * 1024 * 1024)

char *
sstore_expand(const char *spec, const char *home)
{
	if (spec[0] == '~' && spec[1] == '/' && home != NULL)
		return xasprintf("%s%s%s", home, home[0] != '\0' &&
		    home[strlen(home) - 1] == '/' ? "" : "/", spec + 2);
	return xstrdup(spec);
}

char *
sstore_home(const char *home, const char *mailbox)
{
	char *h = xstrdup(home != NULL ? home : mailbox);
	size_t n = strlen(h);

	while (n > 1 && h[n - 1] == '/')
		h[--n] = '\0';
	return h;
}

void
sstore_init(struct sstore *st, const char *dir, const char *active)
{
	memset(st, 0, sizeof(*st));
	st->dir = xstrdup(dir);
	st->active = xstrdup(active);
}

void
sstore_free(struct sstore *st)
{
	xfree(&st->dir);
	xfree(&st->active);
}

int
sstore_name_ok(const char *name, const char **why_r)
{
	size_t n = strlen(name);

	if (n == 0 || n > SSTORE_NAME_MAX) {
		*why_r = "script name empty or too long";
		return -1;
	}
	if (name[0] == '.') {
		*why_r = "script name starts with '.'";
		return -1;
	}
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\') {
			*why_r = "script name has a control character, '/' or '\\'";
			return -1;
		}
	if (!utf8_valid(name, n)) {
		*why_r = "script name is not UTF-8";
		return -1;
	}
	return 0;
}

static int
fail(char **err_r, int rc, char *msg)
{
	if (err_r != NULL)
		*err_r = msg;
	else
		free(msg);
	return rc;
}

static int
check_name(const char *name, char **err_r)
{
	const char *why;

	if (sstore_name_ok(name, &why) != 0)
		return fail(err_r, -1, xasprintf("%s", why));
	return 0;
}

/* The directory, created (0700) when create is set. */
static int
dir_open(const struct sstore *st, int create, char **err_r)
{
	int fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && create) {
		if (mkdir_p(st->dir, 0700) < 0)
			return fail(err_r, -1, xasprintf("mkdir %s: %s", st->dir, strerror(errno)));
		fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return fail(err_r, errno == ENOENT ? SSTORE_NOTFOUND : -1,
		    xasprintf("open %s: %s", st->dir, strerror(errno)));
	return fd;
}

static char *
file_of(const char *name)
{
	return xasprintf("%s%s", name, SSTORE_EXT);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The script the link names, if it names one inside the directory:
 * xmalloc'd name, or NULL. */
static char *
link_target_name(const struct sstore *st)
{
	char target[PATH_MAX], *base, *dirpart, *name = NULL;
	const char *slash, *why;
	ssize_t n = readlink(st->active, target, sizeof(target) - 1);
	size_t bl, el = strlen(SSTORE_EXT);

	if (n <= 0)
		return NULL;
	target[n] = '\0';
	slash = strrchr(target, '/');
	base = xstrdup(slash != NULL ? slash + 1 : target);
	dirpart = slash != NULL ? xstrndup(target, (size_t)(slash - target)) : xstrdup(".");
	/* the link's directory part must be our directory: absolute, or
	 * relative to the link's own directory */
	if (dirpart[0] != '/') {
		const char *ls = strrchr(st->active, '/');
		char *abs = ls != NULL ? xasprintf("%.*s/%s", (int)(ls - st->active), st->active,
		    dirpart) : xstrdup(dirpart);

		free(dirpart);
		dirpart = abs;
	}
	{
		char *a = realpath(dirpart, NULL), *b = realpath(st->dir, NULL);

		bl = strlen(base);
		if (a != NULL && b != NULL && strcmp(a, b) == 0 && bl > el &&
		    strcmp(base + bl - el, SSTORE_EXT) == 0) {
			base[bl - el] = '\0';
			if (sstore_name_ok(base, &why) == 0)
				name = xstrdup(base);
		}
		free(a);
		free(b);
	}
	free(base);
	free(dirpart);
	return name;
}

int
sstore_list(const struct sstore *st, char ***names_r, char **active_r, char **err_r)
{
	char **v = xcalloc(1, sizeof(char *));
	struct dirent *de;
	DIR *d;
	int fd;
	size_t el = strlen(SSTORE_EXT);

	*names_r = NULL;
	if (active_r != NULL)
		*active_r = NULL;
	fd = dir_open(st, 0, err_r);
	if (fd == SSTORE_NOTFOUND) {
		if (err_r != NULL)
			xfree(err_r);
		*names_r = v;
		return 0;
	}
	if (fd < 0) {
		free(v);
		return -1;
	}
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		free(v);
		return fail(err_r, -1, xasprintf("opendir %s: %s", st->dir, strerror(errno)));
	}
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		const char *why;
		struct stat sb;
		char *name;

		if (l <= el || strcmp(de->d_name + l - el, SSTORE_EXT) != 0)
			continue;
		name = xstrndup(de->d_name, l - el);
		if (sstore_name_ok(name, &why) == 0 &&
		    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(sb.st_mode))
			strv_push(&v, name);
		free(name);
	}
	closedir(d);
	qsort(v, strv_len(v), sizeof(char *), name_cmp);
	*names_r = v;
	if (active_r != NULL) {
		char *a = link_target_name(st);

		if (a != NULL && strv_contains_ci(v, a))
			*active_r = a;
		else
			free(a);
	}
	return 0;
}

static int
read_at(int dfd, const char *file, size_t max, char **data_r, size_t *len_r, char **err_r)
{
	struct stat sb;
	char *buf;
	ssize_t n;
	int fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return fail(err_r, errno == ENOENT ? SSTORE_NOTFOUND : -1,
		    xasprintf("open %s: %s", file, strerror(errno)));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return fail(err_r, -1, xasprintf("%s: not a regular file", file));
	}
	if (max > 0 && (uint64_t)sb.st_size > max) {
		close(fd);
		return fail(err_r, -1, xasprintf("%s: script too large (%lld bytes, limit %zu)",
		    file, (long long)sb.st_size, max));
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	n = read_full(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (n < 0) {
		free(buf);
		return fail(err_r, -1, xasprintf("read %s: %s", file, strerror(errno)));
	}
	buf[n] = '\0';
	*data_r = buf;
	*len_r = (size_t)n;
	return 0;
}

int
sstore_get(const struct sstore *st, const char *name, char **data_r, size_t *len_r,
    char **err_r)
{
	char *file;
	int dfd, rc;

	*data_r = NULL;
	if (check_name(name, err_r) < 0)
		return -1;
	if ((dfd = dir_open(st, 0, err_r)) < 0)
		return dfd;
	file = file_of(name);
	rc = read_at(dfd, file, SCRIPT_READ_MAX, data_r, len_r, err_r);
	free(file);
	close(dfd);
	return rc;
}

/* Scripts and bytes now, not counting the one called except. */
static int
usage(int dfd, const char *except, uint64_t *count_r, uint64_t *bytes_r)
{
	int fd = dup(dfd);
	struct dirent *de;
	DIR *d;
	size_t el = strlen(SSTORE_EXT);

	*count_r = *bytes_r = 0;
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		struct stat sb;

		if (l <= el || strcmp(de->d_name + l - el, SSTORE_EXT) != 0 ||
		    de->d_name[0] == '.' || strcmp(de->d_name, except) == 0)
			continue;
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(sb.st_mode)) {
			(*count_r)++;
			*bytes_r += (uint64_t)sb.st_size;
		}
	}
	closedir(d);
	return 0;
}

int
sstore_put(const struct sstore *st, const char *name, const char *data, size_t len,
    char **err_r)
{
	char *file, tmp[64];
	uint64_t count, bytes;
	struct stat sb;
	int dfd, fd, rc = -1, exists;

	if (check_name(name, err_r) < 0)
		return -1;
	if (st->max_size > 0 && len > st->max_size)
		return fail(err_r, SSTORE_QUOTA, xasprintf("script too large (%zu bytes, limit %zu)",
		    len, st->max_size));
	if ((dfd = dir_open(st, 1, err_r)) < 0)
		return -1;
	file = file_of(name);
	exists = fstatat(dfd, file, &sb, AT_SYMLINK_NOFOLLOW) == 0;
	if (usage(dfd, file, &count, &bytes) < 0) {
		rc = fail(err_r, -1, xasprintf("scan %s: %s", st->dir, strerror(errno)));
		goto out;
	}
	if (st->max_scripts > 0 && !exists && count + 1 > st->max_scripts) {
		rc = fail(err_r, SSTORE_QUOTA, xasprintf("too many scripts (limit %llu)",
		    (unsigned long long)st->max_scripts));
		goto out;
	}
	if (st->max_storage > 0 && bytes + len > st->max_storage) {
		rc = fail(err_r, SSTORE_QUOTA, xasprintf("script storage full (limit %llu bytes)",
		    (unsigned long long)st->max_storage));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), ".tmp.%ld.sieve-new", (long)getpid());
	(void)unlinkat(dfd, tmp, 0);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = fail(err_r, -1, xasprintf("create %s/%s: %s", st->dir, tmp, strerror(errno)));
		goto out;
	}
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		int e = errno;

		close(fd);
		(void)unlinkat(dfd, tmp, 0);
		rc = fail(err_r, -1, xasprintf("write %s: %s", file, strerror(e)));
		goto out;
	}
	close(fd);
	if (renameat(dfd, tmp, dfd, file) < 0 || fsync(dfd) < 0) {
		int e = errno;

		(void)unlinkat(dfd, tmp, 0);
		rc = fail(err_r, -1, xasprintf("rename to %s: %s", file, strerror(e)));
		goto out;
	}
	rc = 0;
out:
	free(file);
	close(dfd);
	return rc;
}

/* The link's text: relative to the link's directory when the scripts
 * directory sits in it (Pigeonhole's "sieve/NAME.sieve"). */
static char *
link_text(const struct sstore *st, const char *name)
{
	const char *ls = strrchr(st->active, '/');
	size_t pl = ls != NULL ? (size_t)(ls - st->active) : 0;

	if (ls != NULL && strncmp(st->dir, st->active, pl) == 0 && st->dir[pl] == '/' &&
	    strchr(st->dir + pl + 1, '/') == NULL)
		return xasprintf("%s/%s%s", st->dir + pl + 1, name, SSTORE_EXT);
	return xasprintf("%s/%s%s", st->dir, name, SSTORE_EXT);
}

int
sstore_activate(const struct sstore *st, const char *name, char **err_r)
{
	char *file, *text, *tmp;
	struct stat sb;
	int dfd, rc = 0;

	if (name == NULL) {
		if (lstat(st->active, &sb) == 0 && !S_ISLNK(sb.st_mode))
			return fail(err_r, -1, xasprintf("%s is not a link: not changed",
			    st->active));
		if (unlink(st->active) < 0 && errno != ENOENT)
			return fail(err_r, -1, xasprintf("unlink %s: %s", st->active, strerror(errno)));
		(void)fsync_parent(st->active);
		return 0;
	}
	if (check_name(name, err_r) < 0)
		return -1;
	if ((dfd = dir_open(st, 0, err_r)) < 0)
		return dfd;
	file = file_of(name);
	if (fstatat(dfd, file, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode)) {
		free(file);
		close(dfd);
		return fail(err_r, SSTORE_NOTFOUND, xasprintf("no script \"%s\"", name));
	}
	free(file);
	close(dfd);
	if (lstat(st->active, &sb) == 0 && !S_ISLNK(sb.st_mode))
		return fail(err_r, -1, xasprintf("%s exists and is not a link: not replaced",
		    st->active));
	text = link_text(st, name);
	tmp = xasprintf("%s.tmp.%ld", st->active, (long)getpid());
	(void)unlink(tmp);
	if (symlink(text, tmp) < 0 || rename(tmp, st->active) < 0) {
		rc = fail(err_r, -1, xasprintf("link %s: %s", st->active, strerror(errno)));
		(void)unlink(tmp);
	} else
		(void)fsync_parent(st->active);
	free(text);
	free(tmp);
	return rc;
}

int
sstore_delete(const struct sstore *st, const char *name, char **err_r)
{
	char *file, *active;
	int dfd, rc = 0;

	if (check_name(name, err_r) < 0)
		return -1;
	active = link_target_name(st);
	if (active != NULL && strcmp(active, name) == 0) {
		free(active);
		return fail(err_r, SSTORE_ACTIVE, xasprintf("script \"%s\" is active", name));
	}
	free(active);
	if ((dfd = dir_open(st, 0, err_r)) < 0)
		return dfd;
	file = file_of(name);
	if (unlinkat(dfd, file, 0) < 0)
		rc = fail(err_r, errno == ENOENT ? SSTORE_NOTFOUND : -1,
		    xasprintf("delete %s: %s", name, strerror(errno)));
	else
		(void)fsync(dfd);
	free(file);
	close(dfd);
	return rc;
}

int
sstore_rename(const struct sstore *st, const char *from, const char *to, char **err_r)
{
	char *f, *t, *active;
	int dfd, rc = 0;

	if (check_name(from, err_r) < 0 || check_name(to, err_r) < 0)
		return -1;
	if ((dfd = dir_open(st, 0, err_r)) < 0)
		return dfd;
	f = file_of(from);
	t = file_of(to);
	active = link_target_name(st);
	if (renameat2(dfd, f, dfd, t, RENAME_NOREPLACE) < 0)
		rc = fail(err_r, errno == EEXIST ? SSTORE_EXISTS : errno == ENOENT ?
		    SSTORE_NOTFOUND : -1, xasprintf("rename %s: %s", from, strerror(errno)));
	else {
		(void)fsync(dfd);
		if (active != NULL && strcmp(active, from) == 0)
			rc = sstore_activate(st, to, err_r);
	}
	free(active);
	free(f);
	free(t);
	close(dfd);
	return rc;
}

int
sstore_active_read(const struct sstore *st, char **data_r, size_t *len_r, char **name_r,
    char **err_r)
{
	struct stat sb;
	char *name, *file;
	int dfd, rc;

	*data_r = NULL;
	if (name_r != NULL)
		*name_r = NULL;
	if (lstat(st->active, &sb) < 0) {
		if (errno == ENOENT)
			return 0;
		return fail(err_r, -1, xasprintf("lstat %s: %s", st->active, strerror(errno)));
	}
	if (S_ISREG(sb.st_mode)) {
		/* a plain file there is the active script (Pigeonhole allows it) */
		int fd = open(st->active, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		char *slash;

		if (fd < 0)
			return fail(err_r, -1, xasprintf("open %s: %s", st->active, strerror(errno)));
		close(fd);
		slash = xstrdup(st->active);
		{
			char *d = strrchr(slash, '/');
			const char *base = d != NULL ? d + 1 : slash;
			int pfd;

			if (d != NULL)
				*d = '\0';
			pfd = open(d != NULL ? (slash[0] != '\0' ? slash : "/") : ".",
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (pfd < 0) {
				free(slash);
				return fail(err_r, -1, xasprintf("open %s: %s", st->active,
				    strerror(errno)));
			}
			rc = read_at(pfd, base, st->max_size, data_r, len_r, err_r);
			close(pfd);
		}
		free(slash);
		if (rc < 0)
			return -1;
		if (name_r != NULL)
			*name_r = xstrdup(st->active);
		return 1;
	}
	if (!S_ISLNK(sb.st_mode))
		return 0;
	if ((name = link_target_name(st)) == NULL)
		return fail(err_r, -1, xasprintf("%s points outside %s: ignored", st->active,
		    st->dir));
	if ((dfd = dir_open(st, 0, err_r)) < 0) {
		free(name);
		return -1;
	}
	file = file_of(name);
	rc = read_at(dfd, file, st->max_size, data_r, len_r, err_r);
	free(file);
	close(dfd);
	if (rc == SSTORE_NOTFOUND) {
		/* a dangling link: no active script */
		if (err_r != NULL)
			xfree(err_r);
		free(name);
		return 0;
	}
	if (rc < 0) {
		free(name);
		return -1;
	}
	if (name_r != NULL)
		*name_r = name;
	else
		free(name);
	return 1;
}
