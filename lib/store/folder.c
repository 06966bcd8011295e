/*
 * folder - Maildir++ folder names for the mail store (contract: index.h):
 * "Sent" is MAILDIR/.Sent, "Archive/2024" MAILDIR/.Archive.2024.
 *
 * Invariants: a folder path never leaves the user's Maildir: names with
 * "..", '.', '\\', control characters, empty levels or too many levels
 * are refused before any path is built.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/db.h"
#include "util/strv.h"
#include "store/index.h"
#include "store/index_int.h"

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
		return idx_fail(err_r, MBX_ERR, xstrdup("folder name empty or too long"));
	for (p = name; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '.' || *p == '\\')
			return idx_fail(err_r, MBX_ERR, xasprintf("folder name \"%s\": "
			    "no '.', '\\' or control characters", name));
	for (comp = name;; comp = p + 1) {
		p = strchr(comp, '/');
		if ((p != NULL ? (size_t)(p - comp) : strlen(comp)) == 0)
			return idx_fail(err_r, MBX_ERR, xasprintf("folder name \"%s\": empty level",
			    name));
		if (++depth > MBX_FOLDER_DEPTH_MAX)
			return idx_fail(err_r, MBX_ERR, xasprintf("folder name \"%s\": too deep",
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
		return idx_fail(err_r, MBX_ERR, xasprintf("open %s: %s", maildir, strerror(errno)));
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
		return idx_fail(err_r, MBX_ERR, err);
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
