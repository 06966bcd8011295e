/*
 * local - shared state of the local delivery agent (local.c, alias.c,
 * mailbox.c, command.c). One process delivers one request at a time.
 */
#ifndef POSTERN_LOCAL_H
#define POSTERN_LOCAL_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "util/buf.h"
#include "mail/deliver.h"
#include "mail/maps.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "store/owner.h"

#define LOCAL_MAX_DEPTH 20          /* alias/.forward/include nesting */
#define LOCAL_MAX_TARGETS 1000      /* destinations per recipient */
#define LOCAL_FILE_MAX (1024 * 1024) /* .forward and :include: files */

/* Configuration, read once per process (local.c). */
struct local_conf {
	char *qdir;
	uid_t owner_uid;            /* mail_owner, for forwarded queue files */
	gid_t owner_gid;
	char **alias_specs;         /* alias_maps, split */
	struct map **alias_db;      /* opened lazily; NULL entries = not open */
	char *delim;                /* recipient_delimiter */
	char **allow_cmd;           /* allow_mail_to_commands */
	char **allow_file;          /* allow_mail_to_files */
	char *forward_path;         /* raw, with $home etc. */
	long long cmd_limit;        /* command_time_limit, seconds */
	uid_t nobody_uid;           /* default_privs */
	gid_t nobody_gid;
	struct owner_conf owner;    /* where mailboxes are (lib/store/owner.h) */
	char *myorigin;
	long long mbox_limit;       /* mailbox_size_limit */
	long long vmbox_limit;      /* virtual_mailbox_limit */
	int overquota_bounce;       /* virtual_overquota_bounce */
	int root;                   /* started with euid 0: may become others */
	struct resolver *res;
	char *mailbox_transport;    /* "" or "transport[:nexthop]" */
	char *mailbox_command;      /* "" or a /bin/sh command line */
	/* local_sieve_* (sieve.c) */
	int sieve;
	char *sieve_dir, *sieve_active, *sieve_global;
	char **sieve_before, **sieve_after;
	long long sieve_max_size, sieve_max_scripts, sieve_max_storage;
	long long sieve_max_actions, sieve_max_redirects;
};
extern struct local_conf lconf;

/* The message of the current request. */
struct lmsg {
	int qfd;
	struct qenv env;
	const char *id;
	const char *sender;
	char **delivered_to;        /* Delivered-To values in the header, lower case */
	const struct dlv_request *req;  /* the request being served (borrowed) */
	struct buf content;         /* local_content()'s copy of a small message */
};

/* Whose rights a command or file delivery uses, and where it came from. */
enum lsource { SRC_NONE, SRC_ALIAS, SRC_FORWARD, SRC_INCLUDE };
struct lprivs {
	uid_t uid;
	gid_t gid;
	const char *user;           /* USER/LOGNAME for commands; may be NULL */
	const char *home;           /* cwd for commands; NULL: "/" */
	enum lsource source;
};

struct lfwd {
	char *addr;
	char *orig;
};

/* One recipient of the request, with everything its expansion did. */
struct lrcpt {
	struct lmsg *msg;
	const char *addr;           /* as qmgr gave it */
	const char *orig;
	const char *notify;
	const char *relay;          /* "local" or "virtual" */
	long long offset;           /* status byte offset: names Maildir copies */
	char **seen;                /* duplicate elimination keys */
	size_t ntargets;
	struct lfwd *fwd;           /* non-local addresses to forward */
	size_t nfwd;
	int nok;
	int npassed;                /* of nok: delivered by mailbox_transport */
	struct buf oktext;
	int elided;                 /* oktext got its "..." */
	int status;                 /* 0 none yet; 4 or 5 after a failure */
	char dsn[8];
	char *failtext;
};

/* The address being delivered right now (alias expansion moves it). */
struct laddr {
	const char *addr;           /* full address (qualified) */
	const char *local;          /* local part as written */
	const char *domain;
	const char *ext;            /* extension after recipient_delimiter, or "" */
	int depth;
};

/* Results (local.c). addr is the address the leaf delivered for. */
void lr_ok(struct lrcpt *r, const char *addr, const char *fmt, ...) PRINTF_LIKE(3, 4);
void lr_fail(struct lrcpt *r, const char *addr, const char *dsn, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
/* A temporary failure stops the expansion: the recipient is retried whole. */
int lr_stop(const struct lrcpt *r);
/* Privileges (local.c): act as uid/gid; -1 and an lr_fail when impossible. */
int local_become(struct lrcpt *r, const struct laddr *a, uid_t uid, gid_t gid);
void local_restore(void);
/* Current effective identity in unprivileged mode, else uid/gid as given. */
void local_privs_fix(struct lprivs *p);
int local_domain(const char *domain);   /* 1 local class, 0 not, -1 lookup failed */
int local_loop(const struct lmsg *m, const char *addr);   /* in Delivered-To */
/* The message content, as queue_content() gives it (cb's non-zero return
 * or -1 and errno). */
int local_content(struct lmsg *m, int (*cb)(const char *, size_t, void *), void *ctx);

/* alias.c */
void local_deliver_addr(struct lrcpt *r, const char *addr, int depth, int flags);
#define LFLAG_NO_ALIAS 1
#define LFLAG_NO_FORWARD 2
void local_forward(struct lrcpt *r);
void local_targets(struct lrcpt *r, const struct laddr *a, const char *list,
    const struct lprivs *p, const char *self_key, const char *what);

/* mailbox.c */
void local_mailbox(struct lrcpt *r, const struct laddr *a, uid_t uid, gid_t gid,
    const char *user, const char *home);
void local_virtual(struct lrcpt *r, const char *addr);
void local_file(struct lrcpt *r, const struct laddr *a, const char *path,
    const struct lprivs *p);
/* Where a Sieve action stores a copy (local_store). */
struct lstore {
	const char *qroot;          /* the user's top Maildir: quota is counted there */
	const char *info;           /* Maildir flag letters ("FS"), or NULL */
	const char *label;          /* for the status text, or NULL */
	char *name_r;               /* receives the file's base name, or NULL */
	size_t name_size;
};
/* One copy into the Maildir (or folder) at path, as we are now (the
 * owner): 0, or -1 after an lr_fail. */
int local_store(struct lrcpt *r, const struct laddr *a, const char *path, uint64_t quota,
    const struct lstore *sp);
/* The message as stored: Return-Path, Delivered-To, then the content. */
struct lproduce {
	struct lmsg *msg;
	const char *rcpt;           /* for Delivered-To */
};
int local_produce(int (*out)(const char *, size_t, void *), void *octx, void *ctx);

/* pass.c: mailbox delivery through mailbox_transport (Postfix
 * deliver_pass): hand the user's copy to that transport's agent and take
 * its answer as this copy's result. */
void local_pass(struct lrcpt *r, const struct laddr *a);

/* sieve.c: filtering at delivery (RFC 5228) for Maildir users. */
int local_sieve_wanted(const struct mailbox_owner *mo);
void local_sieve(struct lrcpt *r, const struct laddr *a, const struct mailbox_owner *mo);

/* command.c */
void local_command(struct lrcpt *r, const struct laddr *a, const char *cmd,
    const struct lprivs *p);

#endif
