/*
 * folder - Maildir++ folders and subscriptions for the mail store
 * (contract: index.h): "Sent" is MAILDIR/.Sent, "Archive/2024"
 * MAILDIR/.Archive.2024; MAILDIR/subscriptions lists subscribed names.
 *
 * Invariants: a folder path never leaves the user's Maildir: every name
 * goes through mbx_folder_name_ok (proto/mboxname.c, the same rule imapd
 * applies to client input) before any path is built from it.
 *
 * Trusts: the Maildir path (from the owner lookup), and nothing inside
 * it. The caller runs as the mailbox owner, but the Maildir's contents may
 * have been arranged by someone else with that uid (a shell user, or
 * another virtual user sharing the virtual-mail uid through a planted
 * link), so delete and rename work relative to a descriptor of the
 * Maildir opened O_NOFOLLOW and never follow a symbolic link: a folder
 * entry or a tmp/new/cur that is a link is refused (ELOOP), never
 * traversed, so a recursive delete or a message move cannot be redirected
 * into a directory outside the Maildir. Delete removes only regular files
 * and the tmp/ new/ cur/ directories and refuses anything else before
 * removing a single file.
 *
 * Concurrency: subscriptions are changed under flock on
 * MAILDIR/postern.subscriptions-lock (read, change, write a temporary
 * file, rename), so two sessions subscribing at once both win. A folder
 * being deleted is first renamed to a hidden "..deleted.*" entry (not a
 * valid folder name, so no listing shows it) and then emptied, so other
 * sessions see it vanish at once.
 *
 * BUGS: renaming a folder with children is one rename(2) per folder; a
 * failure in the middle is rolled back as far as the file system lets
 * it, and a crash in the middle leaves some children under each name
 * (no message is lost). Renaming INBOX moves its files one by one; a
 * crash leaves some in each (again, none lost). A delete that fails after
 * its rename (a file that cannot be unlinked) leaves the hidden
 * "..deleted.*" directory behind for the administrator.
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

#include "proto/mboxname.h"
#include "proto/mutf7.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/db.h"
#include "util/fsutil.h"
#include "util/strv.h"
#include "store/index.h"
#include "store/index_int.h"

_Static_assert(MBX_FOLDER_NAME_MAX == MBOXNAME_LEN_MAX, "one name length limit");
_Static_assert(MBX_FOLDER_DEPTH_MAX == MBOXNAME_DEPTH_MAX, "one depth limit");

#define SUBS_NAME "subscriptions"
#define SUBS_LOCK_NAME "postern.subscriptions-lock"
#define SUBS_FILE_MAX (1024 * 1024)
#define SUBS_MAX 10000                 /* subscribed names per mailbox */
#define FOLDERS_MARKER_NAME "postern.folders-created"
#define TOMBSTONE_PREFIX "..deleted."

static const char *const init_folders[] = { "Drafts", "Sent", "Trash", "Junk", "Archive" };
/* INBOX too: a client showing subscribed folders only (LSUB, LIST
 * (SUBSCRIBED)) would otherwise list every folder but the one with mail. */
static const char *const init_subs[] = { "INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive" };

static int
is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

int
mbx_folder_name_ok(const char *name, char **err_r)
{
	const char *why;

	if (mboxname_check(name, strlen(name), &why) != 0)
		return idx_fail(err_r, MBX_ERR, xasprintf("folder name refused: %s", why));
	return 0;
}

/* ".Archive.2024" for "Archive/2024": the entry under the Maildir. Only
 * for names mbx_folder_name_ok accepted. */
static char *
folder_entry(const char *name)
{
	char *e = xasprintf(".%s", name);

	for (char *p = e + 1; *p != '\0'; p++)
		if (*p == '/')
			*p = '.';
	return e;
}

int
mbx_folder_path(const char *maildir, const char *name, char **path_r, char **err_r)
{
	char *e;

	*path_r = NULL;
	if (is_inbox(name)) {
		*path_r = xstrdup(maildir);
		return 0;
	}
	if (mbx_folder_name_ok(name, err_r) != 0)
		return MBX_ERR;
	e = folder_entry(name);
	*path_r = xasprintf("%s/%s", maildir, e);
	free(e);
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entry ".A.b" (d_name) to the folder name "A/b" if it is one: a real
 * directory (not a link) with a cur/ inside and a name the rule accepts
 * (hides tombstones and names another program made that we could not
 * address). NULL otherwise. */
static char *
entry_folder_name(int mfd, const char *ent)
{
	struct stat st;
	char *name, *cur;
	int ok;

	if (ent[0] != '.' || ent[1] == '\0' || strcmp(ent, "..") == 0 ||
	    strlen(ent) > MBX_FOLDER_NAME_MAX + 1)
		return NULL;
	name = xstrdup(ent + 1);
	for (char *p = name; *p != '\0'; p++)
		if (*p == '.')
			*p = '/';
	if (mbx_folder_name_ok(name, NULL) != 0 || is_inbox(name) ||
	    fstatat(mfd, ent, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
		free(name);
		return NULL;
	}
	cur = xasprintf("%s/cur", ent);
	ok = fstatat(mfd, cur, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
	free(cur);
	if (!ok) {
		free(name);
		return NULL;
	}
	return name;
}

/* The Maildir itself, as a directory descriptor that no link redirects. */
static int
maildir_fd(const char *maildir, char **err_r)
{
	int fd = open(maildir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return idx_fail(err_r, MBX_ERR, xasprintf("open %s: %s", maildir, strerror(errno)));
	return fd;
}

/* A fresh directory stream over dirfd (its own file offset). */
static DIR *
dir_stream(int dirfd, const char *sub)
{
	int fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (d == NULL)
		close(fd);
	return d;
}

int
mbx_folder_list(const char *maildir, char ***names_r, char **err_r)
{
	struct dirent *de;
	char **v = xcalloc(1, sizeof(char *));
	DIR *d;
	int mfd;

	*names_r = NULL;
	if ((mfd = maildir_fd(maildir, err_r)) < 0) {
		free(v);
		return MBX_ERR;
	}
	d = dir_stream(mfd, ".");
	if (d == NULL) {
		idx_fail(err_r, MBX_ERR, xasprintf("open %s: %s", maildir, strerror(errno)));
		close(mfd);
		free(v);
		return MBX_ERR;
	}
	while ((de = readdir(d)) != NULL) {
		char *name = entry_folder_name(mfd, de->d_name);

		if (name != NULL) {
			strv_push(&v, name);
			free(name);
		}
	}
	closedir(d);
	close(mfd);
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
	/* Courier and Dovecot mark Maildir++ folders with this file (not the
	 * INBOX, which is the Maildir itself). */
	if (!is_inbox(name)) {
		mf = xasprintf("%s/maildirfolder", path);
		fd = open(mf, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
		free(mf);
	}
	free(path);
	return 0;
}

/* ---- delete ---- */

static const char *const maildir_subdirs[] = { "tmp", "new", "cur" };

static int
is_maildir_subdir(const char *n)
{
	for (size_t i = 0; i < ARRAY_SIZE(maildir_subdirs); i++)
		if (strcmp(n, maildir_subdirs[i]) == 0)
			return 1;
	return 0;
}

/* Check (doit 0) or remove (doit 1) the contents of the directory dfd:
 * regular files, and at the top (top 1) the tmp/ new/ cur/ directories
 * with regular files inside. Anything else (a link, a device, another
 * directory) is refused: MBX_ERR, *err_r naming it. */
static int
tree_walk(int dfd, const char *what, int top, int doit, char **err_r)
{
	struct dirent *de;
	struct stat st;
	DIR *d = dir_stream(dfd, ".");
	int rc = 0;

	if (d == NULL)
		return idx_fail(err_r, MBX_ERR, xasprintf("open %s: %s", what, strerror(errno)));
	while (rc == 0 && (de = readdir(d)) != NULL) {
		const char *n = de->d_name;

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue;   /* a concurrent expunge */
			rc = idx_fail(err_r, MBX_ERR, xasprintf("stat %s/%s: %s", what, n,
			    strerror(errno)));
		} else if (S_ISREG(st.st_mode)) {
			if (doit && unlinkat(dfd, n, 0) != 0 && errno != ENOENT)
				rc = idx_fail(err_r, MBX_ERR, xasprintf("unlink %s/%s: %s",
				    what, n, strerror(errno)));
		} else if (top && S_ISDIR(st.st_mode) && is_maildir_subdir(n)) {
			int sfd = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			char *sub = xasprintf("%s/%s", what, n);

			if (sfd < 0)
				rc = idx_fail(err_r, MBX_ERR, xasprintf("open %s: %s", sub,
				    strerror(errno)));
			else {
				rc = tree_walk(sfd, sub, 0, doit, err_r);
				close(sfd);
			}
			if (rc == 0 && doit && unlinkat(dfd, n, AT_REMOVEDIR) != 0)
				rc = idx_fail(err_r, MBX_ERR, xasprintf("remove %s: %s", sub,
				    strerror(errno)));
			free(sub);
		} else
			rc = idx_fail(err_r, MBX_ERR, xasprintf("%s/%s is not a mail file or "
			    "Maildir directory; not deleting the folder", what, n));
	}
	closedir(d);
	return rc;
}

/* Names of the entries under mfd that start with prefix (the Maildir++
 * entries of a folder's children when prefix is ".A.b."), or NULL with
 * *err_r if the Maildir cannot be read. */
static char **
entries_with_prefix(int mfd, const char *prefix, char **err_r)
{
	char **v;
	size_t plen = strlen(prefix);
	struct dirent *de;
	DIR *d = dir_stream(mfd, ".");

	if (d == NULL) {
		idx_fail(err_r, MBX_ERR, xasprintf("read the Maildir: %s", strerror(errno)));
		return NULL;
	}
	v = xcalloc(1, sizeof(char *));
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, plen) == 0)
			strv_push(&v, de->d_name);
	closedir(d);
	qsort(v, strv_len(v), sizeof(char *), name_cmp);
	return v;
}

/* Open the folder entry ent under mfd as a real directory owned by us. */
static int
folder_open(int mfd, const char *ent, const char *name, char **err_r)
{
	struct stat st;
	int fd = openat(mfd, ent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return idx_fail(err_r, MBX_NOENT, xasprintf("folder %s does not exist", name));
		if (errno == ELOOP || errno == ENOTDIR)
			return idx_fail(err_r, MBX_ERR, xasprintf("folder %s is not a directory "
			    "(a symbolic link?)", name));
		return idx_fail(err_r, MBX_ERR, xasprintf("open folder %s: %s", name,
		    strerror(errno)));
	}
	if (fstat(fd, &st) != 0 || st.st_uid != geteuid()) {
		close(fd);
		return idx_fail(err_r, MBX_ERR, xasprintf("folder %s is not owned by uid %ld",
		    name, (long)geteuid()));
	}
	return fd;
}

int
mbx_folder_delete(const char *maildir, const char *name, char **err_r)
{
	static unsigned seq;
	char *ent = NULL, *prefix = NULL, **kids = NULL, *tomb = NULL;
	int mfd = -1, fd = -1, rc = MBX_ERR;

	if (is_inbox(name))
		return idx_fail(err_r, MBX_ERR, xstrdup("INBOX cannot be deleted"));
	if (mbx_folder_name_ok(name, err_r) != 0)
		return MBX_ERR;
	if ((mfd = maildir_fd(maildir, err_r)) < 0)
		return MBX_ERR;
	ent = folder_entry(name);
	prefix = xasprintf("%s.", ent);
	if ((fd = folder_open(mfd, ent, name, err_r)) < 0) {
		rc = fd;
		goto out;
	}
	if ((kids = entries_with_prefix(mfd, prefix, err_r)) == NULL)
		goto out;
	if (kids[0] != NULL) {
		rc = idx_fail(err_r, MBX_HASKIDS, xasprintf("folder %s has child folders", name));
		goto out;
	}
	/* Refuse before removing anything, then take the folder out of sight
	 * in one rename and empty it through the descriptor we checked. */
	if (tree_walk(fd, name, 1, 0, err_r) != 0)
		goto out;
	tomb = xasprintf(TOMBSTONE_PREFIX "%ld.%ld.%u", (long)getpid(), (long)time(NULL), seq++);
	if (renameat(mfd, ent, mfd, tomb) != 0) {
		idx_fail(err_r, MBX_ERR, xasprintf("rename folder %s: %s", name, strerror(errno)));
		goto out;
	}
	if (tree_walk(fd, name, 1, 1, err_r) != 0)
		goto out;
	if (unlinkat(mfd, tomb, AT_REMOVEDIR) != 0) {
		idx_fail(err_r, MBX_ERR, xasprintf("remove folder %s: %s", name, strerror(errno)));
		goto out;
	}
	(void)fsync(mfd);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	close(mfd);
	strv_free(&kids);
	free(tomb);
	free(prefix);
	free(ent);
	return rc;
}

/* ---- rename ---- */

/* Directory rename that never replaces: renameat2(RENAME_NOREPLACE), or
 * on a file system without it, a check just before (racy only there). */
static int
rename_dir_noreplace(int mfd, const char *from, const char *to)
{
	struct stat st;

	if (renameat2(mfd, from, mfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -1;
	if (fstatat(mfd, to, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		return -1;
	}
	return renameat(mfd, from, mfd, to);
}

static int
entry_exists(int mfd, const char *ent)
{
	struct stat st;

	return fstatat(mfd, ent, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

/* RFC 3501 6.3.5: renaming INBOX moves its messages to a new folder;
 * INBOX stays, empty, and its children stay where they are. */
static int
inbox_rename(const char *maildir, int mfd, const char *to, char **err_r)
{
	char *ent = folder_entry(to);
	int tfd = -1, rc = MBX_ERR, bad = 0;

	if (entry_exists(mfd, ent)) {
		rc = idx_fail(err_r, MBX_EXISTS, xasprintf("folder %s already exists", to));
		goto out;
	}
	if (mbx_folder_create(maildir, to, err_r) != 0 ||
	    (tfd = folder_open(mfd, ent, to, err_r)) < 0)
		goto out;
	for (size_t i = 1; i < 3; i++) {    /* new/ and cur/; tmp/ is in flight */
		const char *sub = maildir_subdirs[i];
		int sfd = openat(mfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int dfd = openat(tfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct dirent *de;
		struct stat st;
		DIR *d = sfd >= 0 ? dir_stream(sfd, ".") : NULL;

		if (d == NULL || dfd < 0) {
			idx_fail(err_r, MBX_ERR, xasprintf("open %s/%s: %s", maildir, sub,
			    strerror(errno)));
			if (d != NULL)
				closedir(d);
			if (sfd >= 0)
				close(sfd);
			if (dfd >= 0)
				close(dfd);
			goto out;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.' ||
			    fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			if (renameat(sfd, de->d_name, dfd, de->d_name) != 0 && errno != ENOENT) {
				idx_fail(err_r, MBX_ERR, xasprintf("move %s/%s to %s: %s", sub,
				    de->d_name, to, strerror(errno)));
				bad = 1;
				break;
			}
		}
		closedir(d);
		(void)fsync(sfd);
		(void)fsync(dfd);
		close(sfd);
		close(dfd);
		if (bad)
			goto out;
	}
	rc = 0;
out:
	if (tfd >= 0)
		close(tfd);
	free(ent);
	return rc;
}

int
mbx_folder_rename(const char *maildir, const char *from, const char *to, char **err_r)
{
	char *fent = NULL, *tent = NULL, *prefix = NULL, **src = NULL, **dst = NULL;
	size_t n, done = 0, flen;
	int mfd, rc = MBX_ERR;
	struct stat st;

	if (mbx_folder_name_ok(from, err_r) != 0 || mbx_folder_name_ok(to, err_r) != 0)
		return MBX_ERR;
	if (is_inbox(to))
		return idx_fail(err_r, MBX_EXISTS, xstrdup("INBOX already exists"));
	if ((mfd = maildir_fd(maildir, err_r)) < 0)
		return MBX_ERR;
	if (is_inbox(from)) {
		rc = inbox_rename(maildir, mfd, to, err_r);
		close(mfd);
		return rc;
	}
	fent = folder_entry(from);
	tent = folder_entry(to);
	flen = strlen(fent);
	prefix = xasprintf("%s.", fent);
	/* The folder itself (if it exists: a parent may exist only through
	 * its children) and every child, each to its new entry. */
	if ((src = entries_with_prefix(mfd, prefix, err_r)) == NULL)
		goto out;
	if (fstatat(mfd, fent, &st, AT_SYMLINK_NOFOLLOW) == 0)
		strv_push(&src, fent);
	n = strv_len(src);
	if (n == 0) {
		rc = idx_fail(err_r, MBX_NOENT, xasprintf("folder %s does not exist", from));
		goto out;
	}
	if (strcmp(fent, tent) == 0 || entry_exists(mfd, tent)) {
		rc = idx_fail(err_r, MBX_EXISTS, xasprintf("folder %s already exists", to));
		goto out;
	}
	dst = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		char *newname;

		if (fstatat(mfd, src[i], &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
			idx_fail(err_r, MBX_ERR, xasprintf("folder entry %s is not a directory "
			    "(a symbolic link?)", src[i]));
			goto out;
		}
		dst[i] = xasprintf("%s%s", tent, src[i] + flen);
		/* A child moved deeper must still be a valid name. */
		newname = xstrdup(dst[i] + 1);
		for (char *p = newname; *p != '\0'; p++)
			if (*p == '.')
				*p = '/';
		if (mbx_folder_name_ok(newname, err_r) != 0) {
			free(newname);
			goto out;
		}
		free(newname);
		if (entry_exists(mfd, dst[i])) {
			idx_fail(err_r, MBX_ERR, xasprintf("folder entry %s already exists", dst[i]));
			goto out;
		}
	}
	for (done = 0; done < n; done++)
		if (rename_dir_noreplace(mfd, src[done], dst[done]) != 0) {
			idx_fail(err_r, MBX_ERR, xasprintf("rename %s to %s: %s", src[done],
			    dst[done], strerror(errno)));
			while (done-- > 0)
				(void)rename_dir_noreplace(mfd, dst[done], src[done]);
			goto out;
		}
	(void)fsync(mfd);
	rc = 0;
out:
	close(mfd);
	strv_free(&src);
	if (dst != NULL)
		strv_free(&dst);
	free(prefix);
	free(fent);
	free(tent);
	return rc;
}

/* ---- subscriptions ---- */

/* Normalized copy: "inbox" in any case is "INBOX". */
static char *
canon_name(const char *name)
{
	return xstrdup(is_inbox(name) ? "INBOX" : name);
}

/* Read MAILDIR/subscriptions (never through a link): names the rule
 * accepts, sorted, without duplicates. A missing file is an empty list.
 * Reads Dovecot's "V\t2" format too (levels separated by TAB, names in
 * modified UTF-7). */
static int
subs_read(int mfd, const char *maildir, char ***names_r, char **err_r)
{
	char **v = xcalloc(1, sizeof(char *)), *line, *next;
	struct buf b = BUF_INIT(SUBS_FILE_MAX + 1);
	char chunk[8192];
	int fd, dovecot2 = 0, first = 1;
	ssize_t r;
	size_t i, j;

	*names_r = NULL;
	fd = openat(mfd, SUBS_NAME, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		free(v);
		return idx_fail(err_r, MBX_ERR, xasprintf("open %s/" SUBS_NAME ": %s", maildir,
		    strerror(errno)));
	}
	while (fd >= 0 && (r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || buf_append(&b, chunk, (size_t)r) != 0) {
			idx_fail(err_r, MBX_ERR, xasprintf("read %s/" SUBS_NAME ": %s", maildir,
			    r < 0 ? strerror(errno) : "too big"));
			close(fd);
			buf_free(&b);
			free(v);
			return MBX_ERR;
		}
	}
	if (fd >= 0)
		close(fd);
	for (line = b.data; line != NULL && *line != '\0'; line = next) {
		size_t len;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (first && strcmp(line, "V\t2") == 0) {
			dovecot2 = 1;
			first = 0;
			continue;
		}
		first = 0;
		if (dovecot2)
			for (char *p = line; *p != '\0'; p++)
				if (*p == '\t')
					*p = '/';
		/* Dovecot's names are modified UTF-7 (as its folders on disk,
		 * which mbx_folders_init renames to UTF-8). */
		struct buf u = BUF_INIT(0);
		if (dovecot2 && strchr(line, '&') != NULL
		    && mutf7_to_utf8(line, strlen(line), &u) == 0)
			line = (char *)buf_cstr(&u);
		if (mbx_folder_name_ok(line, NULL) == 0) {
			char *c = canon_name(line);
			strv_push(&v, c);
			free(c);
		}
		buf_free(&u);
	}
	buf_free(&b);
	qsort(v, strv_len(v), sizeof(char *), name_cmp);
	for (i = j = 0; v[i] != NULL; i++) {
		if (j > 0 && strcmp(v[j - 1], v[i]) == 0)
			free(v[i]);
		else
			v[j++] = v[i];
	}
	v[j] = NULL;
	*names_r = v;
	return 0;
}

int
mbx_subs_list(const char *maildir, char ***names_r, char **err_r)
{
	int mfd, rc;

	*names_r = NULL;
	if ((mfd = maildir_fd(maildir, err_r)) < 0)
		return MBX_ERR;
	rc = subs_read(mfd, maildir, names_r, err_r);
	close(mfd);
	return rc;
}

/* What one locked read-change-rewrite of the subscriptions does to the
 * list: returns whether it changed anything. */
struct subs_edit {
	const char *const *names;   /* subscribe/unsubscribe these... */
	size_t n;
	int subscribe;
	const char *from, *to;      /* ...or rename from (and inferiors) to to */
};

static int
subs_apply(char ***vp, const struct subs_edit *e)
{
	char **v = *vp;
	size_t i, k, flen;
	int changed = 0;

	if (e->from != NULL && strcmp(e->from, "INBOX") == 0) {
		/* INBOX stays, and so do its inferiors: RENAME INBOX moves its
		 * messages only (RFC 3501 6.3.5). */
		for (k = 0; v[k] != NULL && strcmp(v[k], "INBOX") != 0; k++)
			;
		if (v[k] == NULL)
			return 0;
		strv_push(vp, e->to);   /* may move the vector: v is stale */
		return 1;
	}
	if (e->from != NULL) {
		flen = strlen(e->from);
		for (k = 0; v[k] != NULL; k++) {
			const char *rest = v[k] + flen;

			if (strncmp(v[k], e->from, flen) != 0 || (*rest != '\0' && *rest != '/'))
				continue;
			char *c = xasprintf("%s%s", e->to, rest);
			free(v[k]);
			v[k] = c;
			changed = 1;
		}
		return changed;
	}
	for (i = 0; i < e->n; i++) {
		char *c = canon_name(e->names[i]);

		v = *vp;
		for (k = 0; v[k] != NULL && strcmp(v[k], c) != 0; k++)
			;
		if (e->subscribe && v[k] == NULL) {
			strv_push(vp, c);
			changed = 1;
		} else if (!e->subscribe && v[k] != NULL) {
			free(v[k]);
			memmove(&v[k], &v[k + 1], (strv_len(v + k + 1) + 1) * sizeof(char *));
			changed = 1;
		}
		free(c);
	}
	return changed;
}

static int
subs_update(const char *maildir, const struct subs_edit *e, char **err_r)
{
	char **v = NULL, *path = NULL;
	struct buf b = BUF_INIT(0);
	int mfd, lfd = -1, rc = MBX_ERR;
	size_t i, j;

	for (i = 0; i < e->n; i++)
		if (mbx_folder_name_ok(e->names[i], err_r) != 0)
			return MBX_ERR;
	if ((mfd = maildir_fd(maildir, err_r)) < 0)
		return MBX_ERR;
	lfd = openat(mfd, SUBS_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX) != 0) {
		idx_fail(err_r, MBX_ERR, xasprintf("lock %s/" SUBS_LOCK_NAME ": %s", maildir,
		    strerror(errno)));
		goto out;
	}
	if (subs_read(mfd, maildir, &v, err_r) != 0)
		goto out;
	if (!subs_apply(&v, e)) {
		rc = 0;
		goto out;
	}
	if (strv_len(v) > SUBS_MAX) {
		idx_fail(err_r, MBX_ERR, xasprintf("more than %d subscriptions", SUBS_MAX));
		goto out;
	}
	qsort(v, strv_len(v), sizeof(char *), name_cmp);
	for (i = j = 0; v[i] != NULL; i++)
		if (j == 0 || strcmp(v[j - 1], v[i]) != 0)
			buf_printf(&b, "%s\n", v[j++] = v[i]);
		else
			free(v[i]);
	v[j] = NULL;
	path = xasprintf("%s/" SUBS_NAME, maildir);
	if (file_write_atomic(path, b.data != NULL ? b.data : "", b.len, 0600) != 0) {
		idx_fail(err_r, MBX_ERR, xasprintf("write %s: %s", path, strerror(errno)));
		goto out;
	}
	rc = 0;
out:
	if (lfd >= 0)
		close(lfd);   /* drops the flock */
	close(mfd);
	strv_free(&v);
	buf_free(&b);
	free(path);
	return rc;
}

int
mbx_subs_set(const char *maildir, const char *name, int subscribe, char **err_r)
{
	struct subs_edit e = { .names = &name, .n = 1, .subscribe = subscribe };

	return subs_update(maildir, &e, err_r);
}

int
mbx_subs_rename(const char *maildir, const char *from, const char *to, char **err_r)
{
	char *f, *t;
	int rc;

	if (mbx_folder_name_ok(from, err_r) != 0 || mbx_folder_name_ok(to, err_r) != 0)
		return MBX_ERR;
	f = canon_name(from);
	t = canon_name(to);
	rc = subs_update(maildir, &(struct subs_edit){ .from = f, .to = t }, err_r);
	free(f);
	free(t);
	return rc;
}

/* ---- first login ---- */

/* Dovecot names Maildir++ folders on disk in modified UTF-7 (its default
 * layout: "Entwürfe" is .Entw&APw-rfe, "A&B" is .A&-B); Postern in UTF-8.
 * A folder of a Maildir that Dovecot kept is renamed once, before the
 * first login creates any folder, if every level decodes, the result is a
 * valid name and nothing has that name yet; anything else stays as it is
 * (and shows under its literal name). Links are never followed. */
static void
dovecot_names_to_utf8(int mfd)
{
	int dfd = dup(mfd);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *e;

	if (dir == NULL) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((e = readdir(dir)) != NULL) {
		const char *name = e->d_name + 1;
		struct buf u = BUF_INIT(0), to = BUF_INIT(0);
		struct stat st;

		if (e->d_name[0] != '.' || strchr(name, '&') == NULL
		    || strlen(name) > MBX_FOLDER_NAME_MAX
		    || fstatat(mfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0
		    || !S_ISDIR(st.st_mode))
			continue;
		/* Level by level: a '.' that a level decodes to is not a
		 * separator, and mbx_folder_name_ok refuses it. */
		int ok = 1;
		for (const char *p = name; ok && *p != '\0'; ) {
			size_t n = strcspn(p, ".");
			if (u.len > 0)
				buf_putc(&u, '/');
			ok = mutf7_to_utf8(p, n, &u) == 0 && u.len > 0
			    && memchr(u.data, '.', u.len) == NULL;
			p += n + (p[n] == '.');
		}
		if (ok && mbx_folder_name_ok(buf_cstr(&u), NULL) == 0) {
			buf_putc(&to, '.');
			for (size_t i = 0; i < u.len; i++)
				buf_putc(&to, u.data[i] == '/' ? '.' : u.data[i]);
			if (strcmp(buf_cstr(&to), e->d_name) != 0
			    && fstatat(mfd, buf_cstr(&to), &st, AT_SYMLINK_NOFOLLOW) != 0
			    && errno == ENOENT)
				(void)renameat(mfd, e->d_name, mfd, buf_cstr(&to));
		}
		buf_free(&u);
		buf_free(&to);
	}
	closedir(dir);
}

/* Before the first login only (no marker yet), and only in a Maildir
 * that Dovecot kept. */
static void
adopt(int mfd)
{
	struct stat st;

	if (fstatat(mfd, FOLDERS_MARKER_NAME, &st, AT_SYMLINK_NOFOLLOW) != 0
	    && (fstatat(mfd, "dovecot-uidlist", &st, AT_SYMLINK_NOFOLLOW) == 0
	    || fstatat(mfd, "dovecot.list.index.log", &st, AT_SYMLINK_NOFOLLOW) == 0))
		dovecot_names_to_utf8(mfd);
}

void
mbx_folders_adopt(const char *maildir)
{
	int mfd = maildir_fd(maildir, NULL);

	if (mfd >= 0) {
		adopt(mfd);
		close(mfd);
	}
}

int
mbx_folders_init(const char *maildir, char **err_r)
{
	size_t n = ARRAY_SIZE(init_folders);
	struct stat st;
	int mfd, fd;

	if ((mfd = maildir_fd(maildir, err_r)) < 0)
		return MBX_ERR;
	if (fstatat(mfd, FOLDERS_MARKER_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		close(mfd);
		return 0;
	}
	adopt(mfd);
	for (size_t i = 0; i < n; i++)
		if (mbx_folder_create(maildir, init_folders[i], err_r) != 0) {
			close(mfd);
			return MBX_ERR;
		}
	if (subs_update(maildir, &(struct subs_edit){ .names = init_subs,
	    .n = ARRAY_SIZE(init_subs), .subscribe = 1 }, err_r) != 0) {
		close(mfd);
		return MBX_ERR;
	}
	/* Last, so a failure above is retried at the next login. */
	fd = openat(mfd, FOLDERS_MARKER_NAME, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		idx_fail(err_r, MBX_ERR, xasprintf("create %s/" FOLDERS_MARKER_NAME ": %s",
		    maildir, strerror(errno)));
		close(mfd);
		return MBX_ERR;
	}
	close(fd);
	close(mfd);
	return 0;
}
