/*
 * owner - who owns a mailbox and where it is: one answer for local,
 * pop3d, imapd and `postern mailbox`.
 *
 * A name is either a login/local part of a system user (getpwnam, mailbox
 * per home_mailbox under $HOME, else mail_spool_directory/USER, a Maildir
 * when that parameter ends in '/'), or a virtual address user@domain
 * (virtual_mailbox_maps, virtual_uid_maps, virtual_gid_maps, below
 * virtual_mailbox_base), looked up in Postfix virtual(8) order: user@domain,
 * user@domain without its extension, @domain.
 *
 * Returns 1 found, 0 no such mailbox (*err_r says why: "unknown user"),
 * -1 temporary failure (maps unavailable, passwd lookup error, unsafe
 * configuration) with *err_r. *err_r xmalloc'd, caller frees.
 */
#ifndef POSTERN_OWNER_H
#define POSTERN_OWNER_H

#include <stdint.h>
#include <sys/types.h>

struct maplist;

struct owner_conf {
	char *home_mailbox;           /* "" or e.g. "Maildir/" */
	char *spool;                  /* mail_spool_directory */
	char *delim;                  /* recipient_delimiter */
	char *vbase;                  /* virtual_mailbox_base */
	char *vmbox_specs, *vuid_specs, *vgid_specs;   /* virtual_*_maps */
	char *vlimit_specs;           /* virtual_mailbox_limit_maps */
	long long mbox_limit;         /* mailbox_size_limit: system users */
	long long vmin_uid;           /* virtual_minimum_uid */
	int check_vmin;               /* refuse uids below vmin_uid: set when
	                               * running as root (local does) */
	/* opened on first use; a failed open is retried next time */
	struct maplist *vmbox, *vuid, *vgid, *vlimit;
};

/* Fill c from the loaded configuration (config.h); check_vmin is set when
 * the effective uid is 0. Free with owner_conf_free(). */
void owner_conf_load(struct owner_conf *c);
void owner_conf_free(struct owner_conf *c);

struct mailbox_owner {
	char *user;        /* system login name, or the virtual address */
	uid_t uid;
	gid_t gid;
	char *home;        /* system users: pw_dir ("/" if empty); virtual: NULL */
	char *path;        /* the INBOX: a Maildir path ends in '/', else an mbox file */
	int is_virtual;
	int in_spool;      /* path is mail_spool_directory/USER (a root-owned dir) */
	uint64_t quota;    /* bytes the whole mailbox may hold, 0 = no limit: for
	                    * a Maildir all folders together (store/quota.h), for
	                    * an mbox the file; mailbox_size_limit for system
	                    * users, virtual_mailbox_limit_maps for virtual ones
	                    * (no entry: no limit; virtual_mailbox_limit stays
	                    * Postfix's per-file limit) */
};

/* The mailbox of a system user already looked up (local does aliases and
 * .forward in between). Fills o->path and o->in_spool. */
void owner_system_path(const struct owner_conf *c, struct mailbox_owner *o);
/* System user by login name (getpwnam). */
int owner_system(const struct owner_conf *c, const char *login,
    struct mailbox_owner *o, char **err_r);
/* A virtual address split into its local part as written (any extension
 * included) and its domain (lower case). The texts in *err_r are the ones
 * local reports in its status lines. */
int owner_virtual(struct owner_conf *c, const char *local, const char *domain,
    struct mailbox_owner *o, char **err_r);
/* "user@domain": a virtual mailbox; anything else: a system login. */
int owner_lookup(struct owner_conf *c, const char *name, struct mailbox_owner *o,
    char **err_r);
void owner_free(struct mailbox_owner *o);
/* 1 if the path is a Maildir (ends in '/'). */
int owner_is_maildir(const char *path);

#endif
