/*
 * quota - Maildir++ "maildirsize" accounting (see quota.h for the rules).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "store/maildir.h"
#include "store/quota.h"

static int
qfail(char **err_r, char *msg)
{
	if (err_r != NULL)
		*err_r = msg;
	else
		free(msg);
	return -1;
}

/* "root/name" whether or not root ends in '/'. */
static char *
qpath(const char *root, const char *name)
{
	size_t n = strlen(root);

	return xasprintf("%.*s/%s", (int)(n > 1 && root[n - 1] == '/' ? n - 1 : n), root,
	    name);
}

/* Size of one message file: the ",S=" part Maildir++ writers put in the
 * name saves a stat. */
static uint64_t
file_size(int dfd, const char *name)
{
	const char *s = strstr(name, ",S=");
	struct stat st;

	if (s != NULL) {
		char *end;
		unsigned long long v = strtoull(s + 3, &end, 10);
		if (end != s + 3 && (*end == '\0' || *end == ',' || *end == ':'))
			return v;
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
		return (uint64_t)st.st_size;
	return 0;
}

static void
count_dir(const char *dir, uint64_t *bytes, uint64_t *count)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		*bytes += file_size(dirfd(d), de->d_name);
		(*count)++;
	}
	closedir(d);
}

static void
count_maildir(const char *md, uint64_t *bytes, uint64_t *count)
{
	char *p = qpath(md, "new");
	count_dir(p, bytes, count);
	free(p);
	p = qpath(md, "cur");
	count_dir(p, bytes, count);
	free(p);
}

/* Recount everything and write a fresh maildirsize (tmp + rename). */
static int
rebuild(const char *root, uint64_t limit, uint64_t *bytes_r, uint64_t *count_r,
    char **err_r)
{
	uint64_t bytes = 0, count = 0;
	DIR *d;
	struct dirent *de;
	char uniq[MAILDIR_NAME_MAX], *tmpname, *tmp, *dst, *line;
	int fd, rc = 0;

	int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0 && errno == ENOENT) {
		/* No Maildir yet (the first delivery makes it): empty. */
		*bytes_r = *count_r = 0;
		return 0;
	}
	count_maildir(root, &bytes, &count);
	if (rfd >= 0 && (d = fdopendir(rfd)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			struct stat st;
			if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0
			    || strcmp(de->d_name, "..") == 0)
				continue;
			/* A folder is a real directory: a symlink could point
			 * the count at someone else's files. */
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0
			    || !S_ISDIR(st.st_mode))
				continue;
			char *sub = qpath(root, de->d_name);
			count_maildir(sub, &bytes, &count);
			free(sub);
		}
		closedir(d);
	} else if (rfd >= 0)
		close(rfd);
	*bytes_r = bytes;
	*count_r = count;

	if (maildir_unique_name(uniq, sizeof(uniq)) < 0)
		return qfail(err_r, xstrdup("cannot make a unique name"));
	tmpname = xasprintf("tmp/%s.maildirsize", uniq);
	tmp = qpath(root, tmpname);
	dst = qpath(root, QUOTA_FILE_NAME);
	line = xasprintf("%" PRIu64 "S\n%" PRIu64 " %" PRIu64 "\n", limit, bytes, count);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line)
	    || close(fd) != 0 || rename(tmp, dst) != 0) {
		rc = qfail(err_r, xasprintf("cannot write %s: %s", dst, strerror(errno)));
		if (fd >= 0)
			unlink(tmp);
	}
	free(line);
	free(tmpname);
	free(tmp);
	free(dst);
	return rc;
}

int
quota_get(const char *root, uint64_t limit, uint64_t *bytes_r, uint64_t *count_r,
    char **err_r)
{
	char *path, buf[QUOTA_FILE_MAX + 1], *p, *nl;
	ssize_t n;
	int fd;
	int64_t bytes = 0, count = 0;

	*bytes_r = *count_r = 0;
	if (limit == 0)
		return 0;
	path = qpath(root, QUOTA_FILE_NAME);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return rebuild(root, limit, bytes_r, count_r, err_r);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0 || n >= (ssize_t)sizeof(buf))
		return rebuild(root, limit, bytes_r, count_r, err_r);
	buf[n] = '\0';
	/* Line 1: the limit this file was counted for ("NS" and/or "NC"). */
	nl = strchr(buf, '\n');
	if (nl == NULL)
		return rebuild(root, limit, bytes_r, count_r, err_r);
	*nl = '\0';
	{
		char *end;
		unsigned long long v = strtoull(buf, &end, 10);
		if (end == buf || *end != 'S' || v != limit)
			return rebuild(root, limit, bytes_r, count_r, err_r);
	}
	for (p = nl + 1; *p != '\0'; p = nl + 1) {
		long long b, c;
		char *end;
		nl = strchr(p, '\n');
		if (nl == NULL)
			break;          /* a line being written: not counted yet */
		*nl = '\0';
		errno = 0;
		b = strtoll(p, &end, 10);
		if (errno != 0 || end == p || *end != ' ')
			return rebuild(root, limit, bytes_r, count_r, err_r);
		c = strtoll(end + 1, &end, 10);
		if (errno != 0 || *end != '\0')
			return rebuild(root, limit, bytes_r, count_r, err_r);
		bytes += b;
		count += c;
	}
	if (bytes < 0 || count < 0)
		return rebuild(root, limit, bytes_r, count_r, err_r);
	*bytes_r = (uint64_t)bytes;
	*count_r = (uint64_t)count;
	return 0;
}

int
quota_check(const char *root, uint64_t limit, uint64_t add, char **err_r)
{
	uint64_t bytes, count;

	if (limit == 0)
		return 0;
	if (quota_get(root, limit, &bytes, &count, err_r) < 0)
		return -1;
	return bytes + add > limit ? 1 : 0;
}

int
quota_update(const char *root, uint64_t limit, int64_t bytes, int64_t count,
    char **err_r)
{
	char *path, *line;
	struct stat st;
	int fd, rc = 0;
	uint64_t b, c;

	if (limit == 0 || (bytes == 0 && count == 0))
		return 0;
	path = qpath(root, QUOTA_FILE_NAME);
	fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size >= QUOTA_FILE_MAX) {
		/* No file yet, or time to fold the lines: the recount sees
		 * the change already made. */
		if (fd >= 0)
			close(fd);
		free(path);
		return rebuild(root, limit, &b, &c, err_r);
	}
	line = xasprintf("%" PRId64 " %" PRId64 "\n", bytes, count);
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		rc = qfail(err_r, xasprintf("cannot append to %s: %s", path, strerror(errno)));
	close(fd);
	free(line);
	free(path);
	return rc;
}
