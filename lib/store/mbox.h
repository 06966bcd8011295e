/*
 * mbox - append one message to a Unix mailbox file (mboxrd format).
 *
 * The message is written as "From <sender> <asctime date>", the content
 * with mboxrd quoting (a line matching ^>*From gets one more '>'), a
 * newline if the content lacked a final one, and a blank line. The file is
 * locked with a dot-lock (<path>.lock) and fcntl() before writing; on any
 * failure it is truncated back to its original size before the locks are
 * released, so readers never see a partial message. Success means the
 * data was fsynced.
 *
 * Returns 0, or -1 with *dsn_r (static "4.2.0", "5.2.0", ...; 4 = keep
 * the message queued) and *err_r (xmalloc'd text, caller frees).
 */
#ifndef POSTERN_MBOX_H
#define POSTERN_MBOX_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "store/maildir.h"   /* mail_out_fn, mail_producer_fn */

struct mbox_opts {
	uid_t owner;        /* the file must be owned by this uid; (uid_t)-1: any */
	gid_t group;        /* group for a file we create with chown_new */
	int chown_new;      /* fchown a file we create to owner/group (needs root) */
	int dotlock;        /* also take <path>.lock; skipped with a warning when
			     * the directory is not writable by us */
	int lock_timeout;   /* seconds to wait for either lock; 0: 10 */
	int stale_lock;     /* a dot-lock older than this is removed; 0: 300 */
	long long size_limit;  /* > 0: refuse (5.2.2) when the file would exceed it */
};

/* Fill o with the defaults: owner -1, group -1, dotlock on. */
void mbox_opts_init(struct mbox_opts *o);

/* Create the file (0600) when missing; refuse a symlink, a non-regular
 * file, a file with more than one link, or a file not owned by o->owner
 * (5.2.0). when: the time for the From line. */
int mbox_deliver(const char *path, const char *sender, time_t when,
    mail_producer_fn produce, void *ctx, const struct mbox_opts *o,
    const char **dsn_r, char **err_r);

/* The two locks, for mbox.c and mbox_drop.c. Dot-lock <path>.lock: 0
 * locked (*lock_r set), 1 skipped (directory not writable, logged), -1
 * (errno; EAGAIN after timeout seconds). fcntl write lock on fd: 0, or
 * -1 (errno; EAGAIN after timeout seconds). */
int mbox_dotlock_take(const char *path, int timeout, int stale, char **lock_r);
int mbox_fcntl_lock(int fd, int timeout);

/* ---- reading: an mbox spool as a POP3 maildrop (INBOX) ----
 *
 * mbox_drop_open() takes the same locks local takes to deliver (dot-lock
 * <path>.lock when the directory lets us, then fcntl on the file) and
 * holds them until mbox_drop_close(): RFC 1939's exclusive maildrop lock.
 * local waits lock_timeout seconds, then defers (4.2.0), so mail stays
 * queued while a session is open. Messages start at "From " lines; their
 * content is unquoted as local quoted it (mboxrd: one '>' less on
 * ^>+From lines) and loses the blank separator line. A missing file is an
 * empty maildrop. Every function: 0, or -1 with *err_r (xmalloc'd).
 */
struct mbox_drop;
struct mbox_drop_msg {
	off_t from_off;        /* the "From " line */
	off_t body_off;        /* content start */
	off_t body_end;        /* content end (the separator excluded) */
	off_t next_off;        /* the next "From " line, or the file size */
	unsigned long long size;       /* content octets after unquoting */
	unsigned long long wire_size;  /* the same with CRLF line ends and a
	                                * final CRLF: POP3 RETR before dot-stuffing */
	char uidl[56];         /* stable: a hash of the From line and content,
	                        * "-N" added for a repeated one (RFC 1939: <= 70) */
};

/* o: owner (file must belong to it when set), dotlock, lock_timeout,
 * stale_lock. */
int mbox_drop_open(const char *path, const struct mbox_opts *o, struct mbox_drop **d_r,
    char **err_r);
size_t mbox_drop_count(const struct mbox_drop *d);
/* Borrowed; i < count. */
const struct mbox_drop_msg *mbox_drop_msg(const struct mbox_drop *d, size_t i);
/* Feed message i's unquoted content (LF line ends) to out, in pieces. */
int mbox_drop_read(struct mbox_drop *d, size_t i, mail_out_fn out, void *out_ctx,
    char **err_r);
/* Remove the messages whose indexes are listed: the file is compacted in
 * place under the lock (the spool directory is not ours to write a copy
 * into), truncated and fsynced; then the drop is parsed afresh. BUGS: a
 * crash in the middle of compaction can leave a message twice. */
int mbox_drop_expunge(struct mbox_drop *d, const size_t *idx, size_t n, char **err_r);
/* Unlock, unmap, close; *d set to NULL. */
void mbox_drop_close(struct mbox_drop **d);

#endif
