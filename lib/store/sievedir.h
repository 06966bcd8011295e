/*
 * sievedir - a user's Sieve scripts, in Pigeonhole's layout so that
 * scripts carry over from Dovecot and back: HOME/sieve/NAME.sieve, and
 * the active one as the symbolic link HOME/.dovecot.sieve ->
 * sieve/NAME.sieve. HOME is the system user's home directory, or a
 * virtual user's Maildir (sievedir_home). ManageSieve (managesieve/) edits
 * it; local reads the link at delivery.
 *
 * Every change is atomic (write a temporary file, fsync, rename; the link
 * is replaced by rename too), so local never reads half a script and a
 * crash leaves the old or the new one. Script names come from clients:
 * sievedir_name_ok() refuses anything that could leave the directory.
 */
#ifndef POSTERN_SIEVEDIR_H
#define POSTERN_SIEVEDIR_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define SIEVEDIR_NAME_MAX 128          /* bytes of a script name */
#define SIEVEDIR_ACTIVE ".dovecot.sieve"
#define SIEVEDIR_DIR "sieve"

enum sievedir_err {
	SIEVEDIR_OK = 0,
	SIEVEDIR_IO = -1,              /* errno says why */
	SIEVEDIR_NONEXISTENT = -2,
	SIEVEDIR_EXISTS = -3,          /* rename onto an existing name */
	SIEVEDIR_ISACTIVE = -4,        /* delete of the active script */
	SIEVEDIR_BADNAME = -5,
	SIEVEDIR_MAXSIZE = -6,         /* quota: one script too large */
	SIEVEDIR_MAXSCRIPTS = -7,      /* quota: too many scripts */
	SIEVEDIR_NOTOURS = -8,         /* .dovecot.sieve is a file of the
	                                * user's, not our link: left alone */
};

struct sievedir {
	char *home;
	char *dir;                     /* HOME/sieve */
	char *link;                    /* HOME/.dovecot.sieve */
	uint64_t max_size;             /* bytes per script, 0 = no limit */
	unsigned max_scripts;          /* scripts per user, 0 = no limit */
};

/* HOME for a mailbox: home for system users (pw_dir), the Maildir
 * itself (without its trailing '/') for virtual users and for system
 * users without a home. xmalloc'd. */
char *sievedir_home(const char *home, const char *mailbox);

void sievedir_init(struct sievedir *d, const char *home, uint64_t max_size,
    unsigned max_scripts);
void sievedir_free(struct sievedir *d);

/* RFC 5804 section 1.6 names, narrowed: 1..SIEVEDIR_NAME_MAX bytes of
 * valid UTF-8, no control characters, no '/', not starting with '.'. */
int sievedir_name_ok(const char *name, size_t len);

/* Names (xmalloc'd strv, sorted) and the active one (index, -1 none). */
int sievedir_list(struct sievedir *d, char ***names_r, int *active_r);
/* The name of the active script into *name_r (xmalloc'd), or NULL. */
int sievedir_active(struct sievedir *d, char **name_r);
int sievedir_get(struct sievedir *d, const char *name, struct buf *out);
/* Would a script of size bytes fit under name (HAVESPACE, PUTSCRIPT)? */
int sievedir_fits(struct sievedir *d, const char *name, uint64_t size);
int sievedir_put(struct sievedir *d, const char *name, const char *data,
    size_t len);
/* name NULL or "": no script active. */
int sievedir_activate(struct sievedir *d, const char *name);
int sievedir_delete(struct sievedir *d, const char *name);
int sievedir_rename(struct sievedir *d, const char *from, const char *to);

#endif
