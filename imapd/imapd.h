/*
 * imapd internals. The broker and worker plumbing are shared with pop3d
 * (store/postlogin.h); here are the worker's open mailboxes with their
 * change watch (mailbox.c), the sessions (session.c: I/O, state, command
 * dispatch, untagged updates) and the commands (cmd_*.c).
 */
#ifndef POSTERN_IMAPD_H
#define POSTERN_IMAPD_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/conn.h"
#include "util/ipc.h"
#include "util/loop.h"
#include "proto/imap.h"
#include "store/index.h"

struct imapd_conf {
	uint64_t timeout_ms;
	uint64_t idle_notify_ms;         /* imapd_idle_notify_interval, 0: none */
	int hard_error_limit;
	int userip_limit;              /* imapd_client_connection_limit, 0: none */
	uint64_t append_limit;         /* APPENDLIMIT: message_size_limit */
};

extern struct imapd_conf imapd_conf;

/* ---- mailbox.c: mailboxes open in this worker ----
 * One struct imbox per Maildir path, shared by every session that has it
 * selected (or is copying into it), refcounted. Changes by anyone (local
 * delivering, another session, pop3d, this session) are seen through
 * inotify on new/, cur/ and the index file: gen goes up, and sessions
 * idling on the mailbox are told at once (session_box_changed). */
struct isess;

struct imbox {
	char *path;
	struct mailbox *mb;
	int refs;
	uint64_t gen;                  /* bumped by every change seen */
	uint64_t snap_gen;             /* gen the snapshot was taken at */
	struct mbx_msg *snap;          /* every message (mbx_list), or NULL */
	size_t nsnap;
	int wd[3];                     /* inotify: new/, cur/, index; -1 */
	struct imbox *next;
};

void imbox_init(struct loop *l);
struct imbox *imbox_acquire(const char *path, int create, char **err_r);
void imbox_release(struct imbox **b);
/* Something was written by us: look again before the next update. */
void imbox_changed(struct imbox *b);
/* The current message list (synced with the Maildir when gen moved). */
int imbox_snapshot(struct imbox *b, char **err_r);

/* ---- session.c ---- */
struct imsg {
	uint32_t uid;
	unsigned flags;
	char **keywords;               /* NULL-terminated, never NULL */
	uint64_t modseq;
	uint64_t size;                 /* wire size */
	int64_t internaldate;
	int recent;
	int gone;                      /* expunged, not yet reported */
};

struct isess {
	struct loop *loop;
	struct conn *conn;
	int fd;
	char *user, *rip, *maildir;
	uint64_t quota;                /* bytes for all folders, 0: none */
	int tls;
	struct imap_parser *parser;
	int rev2, utf8;
	int condstore, qresync;        /* RFC 7162, enabled by the client */
	int errors;
	int quit;                      /* 1: too many errors, 2: LOGOUT, 3: BYE */
	/* Selected state. */
	struct imbox *box;
	char *box_name;
	int readonly;
	struct imsg *msgs;
	size_t n, cap;
	uint64_t seen_gen;             /* box->gen the view matches */
	char **kw_known;               /* keywords the last FLAGS reply named */
	struct imap_seqset saved;      /* SEARCHRES "$": UIDs */
	int have_saved;
	/* IDLE */
	int idling;
	char *idle_tag;
	uint64_t idle_timer;           /* the next "Still here" */
	uint64_t last_input;           /* loop_now_ms() of the last client bytes */
	/* A FETCH that streams: resumed when the output drains. */
	struct fetch_job *job;
	/* Counters for the disconnect line. */
	unsigned n_fetch, n_store, n_append, n_expunge, n_copy;
	uint64_t fetch_bytes;
	struct isess *next;
};

void session_start(struct loop *l, const struct ipc_msg *m, int fd);
int session_count(void);
/* The mailbox b changed: idling sessions on it get their updates now. */
void session_box_changed(struct imbox *b);

/* \Recent as the session shows it: IMAP4rev2 has no such flag (RFC 9051
 * appendix E), so a session that enabled it never sees it. */
static inline int
s_recent(const struct isess *s, const struct imsg *m)
{
	return !s->rev2 && m->recent;
}

/* Replies. */
void s_tagged(struct isess *s, const char *tag, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
void s_untagged(struct isess *s, const char *fmt, ...) PRINTF_LIKE(2, 3);
void s_write(struct isess *s, const void *p, size_t n);
/* A BAD reply that counts towards imapd_hard_error_limit. */
void s_bad(struct isess *s, const char *tag, const char *text);
/* Untagged EXISTS/RECENT/FETCH FLAGS/EXPUNGE for what changed since the
 * view was last brought up to date (RFC 9051 7.4, 5.2; EXPUNGE only when
 * allow_expunge, RFC 3501 7.4.1). */
void s_updates(struct isess *s, int allow_expunge);
/* Messages of the snapshot from index j on into the view, with the
 * \Recent ones this session claims (or, EXAMINE, sees unclaimed). */
void s_view_add_new(struct isess *s, size_t j);
/* A CONDSTORE enabling command (RFC 7162 3.1): from now on MODSEQ and
 * UID in FETCH replies, and, with a mailbox selected, its HIGHESTMODSEQ
 * in an untagged OK now, the value the client's later changes count from. */
void s_condstore_on(struct isess *s);
/* An untagged FLAGS naming every keyword of the view, sent first when
 * kw holds one the client has not been told of (RFC 9051 7.3.5: it
 * records each FLAGS reply; clients offer keywords from it). */
void s_keywords_seen(struct isess *s, char *const *kw);
/* The messages a sequence set names: view indexes, ascending. set may be
 * "$" (the saved result). 0, or -1 after a BAD reply. */
int s_seqset(struct isess *s, const char *tag, const struct imap_arg *a, int uid,
    size_t **idx_r, size_t *n_r);
/* "1:3,5" for ascending UIDs. */
void uidset_write(struct buf *b, const uint32_t *u, size_t n);
/* Close the selected mailbox (no expunge). */
void s_unselect(struct isess *s);
/* The internal folder name to a Maildir path. 0 or -1 after a NO. */
int s_folder_path(struct isess *s, const char *tag, const struct imap_arg *a,
    char **name_r, char **path_r);
void imsg_free_kw(struct imsg *m);
/* imbox_acquire with this user's quota set on the mailbox. */
struct imbox *s_box_acquire(struct isess *s, const char *path, int create,
    char **err_r);

/* ---- the commands: (s, c, uid) ---- */
struct imap_command;
void cmd_select(struct isess *s, const struct imap_command *c, int examine);
void cmd_close(struct isess *s, const struct imap_command *c, int expunge);
void cmd_expunge(struct isess *s, const struct imap_command *c, int uid);
void cmd_store(struct isess *s, const struct imap_command *c, int uid);
void cmd_copy(struct isess *s, const struct imap_command *c, int arg);   /* bit 0 uid, bit 1 move */
void cmd_append(struct isess *s, const struct imap_command *c, int arg);
void cmd_fetch(struct isess *s, const struct imap_command *c, int uid);
/* 1 finished, 0 more when the output drains, -1 fatal. */
int fetch_job_more(struct isess *s);
void fetch_job_free(struct fetch_job **j);
void cmd_search(struct isess *s, const struct imap_command *c, int uid);
void cmd_sort(struct isess *s, const struct imap_command *c, int uid);
void cmd_thread(struct isess *s, const struct imap_command *c, int uid);
void cmd_list(struct isess *s, const struct imap_command *c, int lsub);
void cmd_status(struct isess *s, const struct imap_command *c, int arg);
void cmd_create(struct isess *s, const struct imap_command *c, int arg);
void cmd_delete(struct isess *s, const struct imap_command *c, int arg);
void cmd_rename(struct isess *s, const struct imap_command *c, int arg);
void cmd_subscribe(struct isess *s, const struct imap_command *c, int on);
/* QUOTA (RFC 9208): GETQUOTAROOT (arg 1), GETQUOTA (0), SETQUOTA (2). */
void cmd_quota(struct isess *s, const struct imap_command *c, int what);

#endif
