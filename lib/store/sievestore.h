/*
 * sievestore - a user's Sieve scripts, laid out as Pigeonhole lays them
 * out so a mailbox moved from Dovecot keeps its filters: a directory of
 * NAME.sieve files (default ~/sieve) and the active script as a symbolic
 * link to one of them (default ~/.dovecot.sieve -> sieve/NAME.sieve).
 * local reads the active script at delivery; a ManageSieve server
 * (RFC 5804) lists, stores, activates, renames and deletes through the
 * same calls, as the mailbox owner, in the post-login process.
 *
 * Invariants: a script name is checked (sstore_name_ok) before it
 * becomes a path, so no name leaves the directory; every file is opened
 * relative to the directory with O_NOFOLLOW; the active link is only
 * followed after its target was checked to be NAME.sieve inside the
 * directory (a link pointing elsewhere is "no active script"). A stored
 * script is written to a temporary file, fsynced and renamed in; the
 * link is replaced by rename, so a reader sees the old or the new one.
 * Quotas: a number of scripts and a total of bytes (0 = no limit).
 * Ownership: all calls run with the mailbox owner's ids; *err_r is
 * xmalloc'd for the caller to free.
 */
#ifndef POSTERN_SIEVESTORE_H
#define POSTERN_SIEVESTORE_H

#include <stddef.h>
#include <stdint.h>

#define SSTORE_NAME_MAX 128
#define SSTORE_EXT ".sieve"

/* Results besides 0 and -1 (error). */
#define SSTORE_NOTFOUND (-2)
#define SSTORE_QUOTA (-3)
#define SSTORE_EXISTS (-4)
#define SSTORE_ACTIVE (-5)      /* delete of the active script */

struct sstore {
	char *dir;              /* the scripts directory */
	char *active;           /* the active link's path */
	uint64_t max_scripts;   /* 0: no limit */
	uint64_t max_storage;   /* bytes of all scripts, 0: no limit */
	size_t max_size;        /* bytes of one script, 0: no limit */
};

/* "~/x" is x under home; anything else is taken as is. xmalloc'd. */
char *sstore_expand(const char *spec, const char *home);
/* The home "~/" means for a mailbox: a system user's home directory, or,
 * for a virtual user (home NULL), the Maildir itself, without trailing
 * '/'. local and managesieve both ask here, so they find the same
 * scripts. xmalloc'd. */
char *sstore_home(const char *home, const char *mailbox);
/* Fill st (copies the strings); free with sstore_free. */
void sstore_init(struct sstore *st, const char *dir, const char *active);
void sstore_free(struct sstore *st);

/* RFC 5804 1.6 names, and what a directory entry can hold: 1 to
 * SSTORE_NAME_MAX bytes of UTF-8, no control characters, no '/', no
 * leading '.'. 0, or -1 with *why_r a static reason. */
int sstore_name_ok(const char *name, const char **why_r);

/* The script names (strv, sorted) and the active one (NULL: none). */
int sstore_list(const struct sstore *st, char ***names_r, char **active_r, char **err_r);
/* The script's text (xmalloc'd, NUL-terminated, *len_r bytes). */
int sstore_get(const struct sstore *st, const char *name, char **data_r, size_t *len_r,
    char **err_r);
/* Store (create or replace), within the quotas: 0, SSTORE_QUOTA, -1. */
int sstore_put(const struct sstore *st, const char *name, const char *data, size_t len,
    char **err_r);
/* Make name the active script; NULL deactivates. 0, SSTORE_NOTFOUND, -1. */
int sstore_activate(const struct sstore *st, const char *name, char **err_r);
/* 0, SSTORE_NOTFOUND, SSTORE_ACTIVE, -1. */
int sstore_delete(const struct sstore *st, const char *name, char **err_r);
/* Never replaces: 0, SSTORE_NOTFOUND, SSTORE_EXISTS, -1. The active
 * link follows a renamed active script. */
int sstore_rename(const struct sstore *st, const char *from, const char *to, char **err_r);

/* What delivery runs: the active script's text. 1 and *data_r (and
 * *name_r, may be NULL: the script name, or the link's path when it is a
 * regular file as Pigeonhole also allows), 0 no active script, -1 error
 * (unreadable, too large). */
int sstore_active_read(const struct sstore *st, char **data_r, size_t *len_r,
    char **name_r, char **err_r);

#endif
