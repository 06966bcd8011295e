/*
 * fsutil - file helpers with the durability rules of DESIGN.md.
 *
 * Invariants: a file written with file_write_atomic is either the old
 * version or the complete new one, and is on stable storage (file and
 * directory entry fsync'ed) when 0 is returned. All I/O retries EINTR and
 * short transfers.
 * Trusts: the caller's paths (these helpers do not defend against a hostile
 * user racing in the same directory; callers use private directories).
 * Limits: file_read_all is for small files (config, maps); max bounds it.
 */
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

int
write_all(int fd, const void *p, size_t n)
{
	const char *cp = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, cp, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		cp += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t
read_full(int fd, void *p, size_t n)
{
	char *cp = p;
	size_t got = 0;
	ssize_t r;

	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	while (got < n) {
		r = read(fd, cp + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int
fsync_dir_fd(int fd)
{
	/* Some file systems refuse fsync on a directory; nothing to do then. */
	if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS)
		return -1;
	return 0;
}

int
fsync_dir(const char *dir)
{
	int fd, rc, saved;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync_dir_fd(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* dirname into a fresh string; "." for a bare name, "/" for "/x". */
static char *
parent_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	while (slash > path && slash[-1] == '/')
		slash--;
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

int
fsync_parent(const char *path)
{
	char *dir = parent_of(path);
	int rc, saved;

	rc = fsync_dir(dir);
	saved = errno;
	free(dir);
	errno = saved;
	return rc;
}

int
mkdir_p(const char *path, mode_t mode)
{
	char *p, *s;
	struct stat st;
	int saved;

	if (*path == '\0') {
		errno = ENOENT;
		return -1;
	}
	p = xstrdup(path);
	for (s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		{
			char c = *s;

			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				saved = errno;
				free(p);
				errno = saved;
				return -1;
			}
			*s = c;
		}
		if (*s == '\0')
			break;
	}
	if (stat(p, &st) < 0) {
		saved = errno;
		free(p);
		errno = saved;
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		free(p);
		errno = ENOTDIR;
		return -1;
	}
	free(p);
	return 0;
}

int
file_read_all(const char *path, size_t max, char **data_r, size_t *len_r)
{
	char *data = NULL;
	size_t len = 0, cap = 0;
	ssize_t r;
	int fd, saved;

	*data_r = NULL;
	if (len_r != NULL)
		*len_r = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap == 0 ? 8192 : cap * 2;
			if (max != 0 && cap > max + 2)
				cap = max + 2;   /* one byte to detect "too big", one NUL */
			data = xrealloc(data, cap);
		}
		r = read(fd, data + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (max != 0 && len > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	data[len] = '\0';
	*data_r = data;
	if (len_r != NULL)
		*len_r = len;
	return 0;
fail:
	saved = errno;
	close(fd);
	free(data);
	errno = saved;
	return -1;
}

int
file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp;
	int fd, saved;

	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		goto fail_nofd;
	/* open() applied the umask; the caller asked for exactly mode. */
	if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	free(tmp);
	return fsync_parent(path);
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
fail_nofd:
	saved = errno;
	free(tmp);
	errno = saved;
	return -1;
}
