/*
 * sievedir - a user's Sieve scripts in Pigeonhole's layout (sievedir.h).
 *
 * Invariants: a name reaches a path only after sievedir_name_ok(); files
 * are written by file_write_atomic (complete or absent, on disk when it
 * returns); the active link is replaced by rename(2), so a delivery reads
 * the old script or the new one; a .dovecot.sieve that is not a link into
 * sieve/ is the user's own file and is never replaced or deleted.
 * Runs as the mailbox owner (managesieve's worker, local after setuid).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/strv.h"
#include "proto/mutf7.h"
#include "store/sievedir.h"

#define SUFFIX ".sieve"
#define SUFFIX_LEN (sizeof(SUFFIX) - 1)
#define SCRIPT_READ_MAX (16u << 20)

char *
sievedir_home(const char *home, const char *mailbox)
{
	size_t n;

	if (home != NULL && *home != '\0' && strcmp(home, "/") != 0)
		return xstrdup(home);
	n = strlen(mailbox);
	while (n > 1 && mailbox[n - 1] == '/')
		n--;
	return xstrndup(mailbox, n);
}

void
sievedir_init(struct sievedir *d, const char *home, uint64_t max_size,
    unsigned max_scripts)
{
	d->home = xstrdup(home);
	d->dir = xasprintf("%s/" SIEVEDIR_DIR, home);
	d->link = xasprintf("%s/" SIEVEDIR_ACTIVE, home);
	d->max_size = max_size;
	d->max_scripts = max_scripts;
}

void
sievedir_free(struct sievedir *d)
{
	xfree(&d->home);
	xfree(&d->dir);
	xfree(&d->link);
}

int
sievedir_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > SIEVEDIR_NAME_MAX || name[0] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f || c == '/')
			return 0;
	}
	return utf8_valid(name, len);
}

static char *
script_path(const struct sievedir *d, const char *name)
{
	return xasprintf("%s/%s" SUFFIX, d->dir, name);
}

/* What .dovecot.sieve points to: 1 and *name_r, 0 no link, or
 * SIEVEDIR_NOTOURS when it exists but is not a link into sieve/. */
static int
read_link(const struct sievedir *d, char **name_r)
{
	char target[SIEVEDIR_NAME_MAX + 64];
	ssize_t n;
	struct stat st;

	*name_r = NULL;
	n = readlink(d->link, target, sizeof(target) - 1);
	if (n < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == EINVAL && lstat(d->link, &st) == 0)
			return SIEVEDIR_NOTOURS;
		return SIEVEDIR_IO;
	}
	target[n] = '\0';
	const char *p = target;
	if (strncmp(p, SIEVEDIR_DIR "/", sizeof(SIEVEDIR_DIR)) == 0)
		p += sizeof(SIEVEDIR_DIR);
	else if (strncmp(p, d->dir, strlen(d->dir)) == 0 && p[strlen(d->dir)] == '/')
		p += strlen(d->dir) + 1;
	else
		return SIEVEDIR_NOTOURS;
	size_t len = strlen(p);
	if (len <= SUFFIX_LEN || strcmp(p + len - SUFFIX_LEN, SUFFIX) != 0
	    || !sievedir_name_ok(p, len - SUFFIX_LEN))
		return SIEVEDIR_NOTOURS;
	*name_r = xstrndup(p, len - SUFFIX_LEN);
	return 1;
}

int
sievedir_active(struct sievedir *d, char **name_r)
{
	int r = read_link(d, name_r);

	return r == SIEVEDIR_NOTOURS ? 0 : r < 0 ? r : 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
sievedir_list(struct sievedir *d, char ***names_r, int *active_r)
{
	char **v = NULL, *act = NULL;
	struct dirent *de;
	DIR *dir;

	*names_r = NULL;
	*active_r = -1;
	if ((dir = opendir(d->dir)) == NULL) {
		if (errno != ENOENT)
			return SIEVEDIR_IO;
		*names_r = xcalloc(1, sizeof(char *));   /* none yet */
		return SIEVEDIR_OK;
	}
	while ((de = readdir(dir)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len <= SUFFIX_LEN || strcmp(de->d_name + len - SUFFIX_LEN, SUFFIX) != 0
		    || !sievedir_name_ok(de->d_name, len - SUFFIX_LEN))
			continue;
		de->d_name[len - SUFFIX_LEN] = '\0';
		strv_push(&v, de->d_name);
	}
	(void)closedir(dir);
	if (v == NULL)
		v = xcalloc(1, sizeof(*v));
	qsort(v, strv_len(v), sizeof(*v), cmp_str);
	if (read_link(d, &act) == 1) {
		for (size_t i = 0; v[i] != NULL; i++)
			if (strcmp(v[i], act) == 0)
				*active_r = (int)i;
	}
	free(act);
	*names_r = v;
	return SIEVEDIR_OK;
}

static int
exists(const struct sievedir *d, const char *name)
{
	char *p = script_path(d, name);
	struct stat st;
	int r = lstat(p, &st) == 0 && S_ISREG(st.st_mode) ? 1
	    : errno == ENOENT || errno == ENOTDIR ? 0 : SIEVEDIR_IO;

	free(p);
	return r;
}

int
sievedir_get(struct sievedir *d, const char *name, struct buf *out)
{
	char *p, *data;
	size_t len;
	int r;

	if (!sievedir_name_ok(name, strlen(name)))
		return SIEVEDIR_BADNAME;
	p = script_path(d, name);
	r = file_read_all(p, SCRIPT_READ_MAX, &data, &len);
	free(p);
	if (r < 0)
		return errno == ENOENT ? SIEVEDIR_NONEXISTENT : SIEVEDIR_IO;
	buf_append(out, data, len);
	free(data);
	return SIEVEDIR_OK;
}

int
sievedir_fits(struct sievedir *d, const char *name, uint64_t size)
{
	char **v;
	int act, r;
	size_t n;

	if (!sievedir_name_ok(name, strlen(name)))
		return SIEVEDIR_BADNAME;
	if (d->max_size > 0 && size > d->max_size)
		return SIEVEDIR_MAXSIZE;
	if (d->max_scripts == 0)
		return SIEVEDIR_OK;
	if ((r = sievedir_list(d, &v, &act)) < 0)
		return r;
	n = strv_len(v);
	r = SIEVEDIR_OK;
	if (n >= d->max_scripts) {
		/* Replacing a script does not add one. */
		r = SIEVEDIR_MAXSCRIPTS;
		for (size_t i = 0; i < n; i++)
			if (strcmp(v[i], name) == 0)
				r = SIEVEDIR_OK;
	}
	strv_free(&v);
	return r;
}

int
sievedir_put(struct sievedir *d, const char *name, const char *data, size_t len)
{
	char *p;
	int r;

	if ((r = sievedir_fits(d, name, len)) < 0)
		return r;
	if (mkdir_p(d->dir, 0700) < 0)
		return SIEVEDIR_IO;
	p = script_path(d, name);
	r = file_write_atomic(p, data, len, 0600);
	free(p);
	return r < 0 ? SIEVEDIR_IO : SIEVEDIR_OK;
}

int
sievedir_activate(struct sievedir *d, const char *name)
{
	char *cur = NULL, *target, *tmp;
	int r = read_link(d, &cur);

	free(cur);
	if (r == SIEVEDIR_NOTOURS)
		return r;
	if (r < 0)
		return r;
	if (name == NULL || *name == '\0') {
		if (r == 1 && unlink(d->link) < 0)
			return SIEVEDIR_IO;
		return fsync_dir(d->home) < 0 ? SIEVEDIR_IO : SIEVEDIR_OK;
	}
	if (!sievedir_name_ok(name, strlen(name)))
		return SIEVEDIR_BADNAME;
	if ((r = exists(d, name)) <= 0)
		return r == 0 ? SIEVEDIR_NONEXISTENT : r;
	target = xasprintf(SIEVEDIR_DIR "/%s" SUFFIX, name);
	tmp = xasprintf("%s.tmp.%ld", d->link, (long)getpid());
	(void)unlink(tmp);
	r = symlink(target, tmp) < 0 || rename(tmp, d->link) < 0
	    || fsync_dir(d->home) < 0 ? SIEVEDIR_IO : SIEVEDIR_OK;
	if (r != SIEVEDIR_OK) {
		int e = errno;
		(void)unlink(tmp);
		errno = e;
	}
	free(target);
	free(tmp);
	return r;
}

int
sievedir_delete(struct sievedir *d, const char *name)
{
	char *act = NULL, *p;
	int r;

	if (!sievedir_name_ok(name, strlen(name)))
		return SIEVEDIR_BADNAME;
	if (read_link(d, &act) == 1 && strcmp(act, name) == 0) {
		free(act);
		return SIEVEDIR_ISACTIVE;
	}
	free(act);
	p = script_path(d, name);
	r = unlink(p) < 0 ? (errno == ENOENT ? SIEVEDIR_NONEXISTENT : SIEVEDIR_IO)
	    : fsync_dir(d->dir) < 0 ? SIEVEDIR_IO : SIEVEDIR_OK;
	free(p);
	return r;
}

int
sievedir_rename(struct sievedir *d, const char *from, const char *to)
{
	char *act = NULL, *pf, *pt;
	int r, was_active;

	if (!sievedir_name_ok(from, strlen(from)) || !sievedir_name_ok(to, strlen(to)))
		return SIEVEDIR_BADNAME;
	if ((r = exists(d, from)) <= 0)
		return r == 0 ? SIEVEDIR_NONEXISTENT : r;
	if ((r = exists(d, to)) != 0)
		return r > 0 ? SIEVEDIR_EXISTS : r;
	was_active = read_link(d, &act) == 1 && strcmp(act, from) == 0;
	free(act);
	pf = script_path(d, from);
	pt = script_path(d, to);
	/* link(2) then unlink: never replaces a script created meanwhile. */
	if (link(pf, pt) < 0)
		r = errno == EEXIST ? SIEVEDIR_EXISTS : SIEVEDIR_IO;
	else if (was_active && (r = sievedir_activate(d, to)) < 0)
		(void)unlink(pt);
	else
		r = unlink(pf) < 0 || fsync_dir(d->dir) < 0 ? SIEVEDIR_IO : SIEVEDIR_OK;
	free(pf);
	free(pt);
	return r;
}
