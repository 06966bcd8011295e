/*
 * maildir - deliver one message into a Maildir (tmp/ new/ cur/), safely.
 *
 * The message comes from a producer callback, so the same code serves the
 * local delivery agent (which streams a queue file) and tests (which feed
 * bytes). Everything is created with the caller's effective uid/gid: the
 * caller becomes the mailbox owner before calling (priv_become).
 *
 * Success (0) means the file is in new/ and both the file and the new/
 * directory entry are on stable storage. On failure (-1) *dsn_r is a
 * static enhanced status code ("4.2.0": temporary, keep the message
 * queued; "5.2.0": permanent, e.g. a symlinked Maildir) and *err_r an
 * xmalloc'd human text the caller frees.
 */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H

#include <stddef.h>

/* Shared with mbox.h: out() stores n bytes of message, 0 or -1 (errno).
 * A producer calls out() for every piece of the message, in order, with
 * any chunking, and returns 0, or non-zero on failure (its own failure,
 * or out()'s: the store remembers which). */
#ifndef POSTERN_MAIL_PRODUCER
#define POSTERN_MAIL_PRODUCER
typedef int (*mail_out_fn)(const char *p, size_t n, void *out_ctx);
typedef int (*mail_producer_fn)(mail_out_fn out, void *out_ctx, void *ctx);
#endif

#define MAILDIR_NAME_MAX 256

/* Create dir (and missing parents) and its tmp/ new/ cur/ (mode 0700).
 * Refuses a dir or sub-directory that is a symlink, not a directory, or
 * not owned by the effective uid. 0, or -1 with *dsn_r and *err_r. */
int maildir_make(const char *dir, const char **dsn_r, char **err_r);

/* Deliver: maildir_make, write tmp/<unique> (O_EXCL|O_NOFOLLOW, 0600),
 * fsync, rename to new/<unique> without replacing anything, fsync new/.
 * name_r (may be NULL) receives the unique base name. A producer failure
 * or any error removes the tmp file. ENOSPC/EDQUOT give 4.2.2, EFBIG
 * 5.2.2, refusals (symlink, owner) 5.2.0, other errors 4.2.0; a producer
 * failure that is not a write error gives 4.3.0. */
int maildir_deliver(const char *dir, mail_producer_fn produce, void *ctx,
    char *name_r, size_t name_size, const char **dsn_r, char **err_r);

/* The same with a caller-chosen, deterministic name for new/ (no '/',
 * no leading '.'): when name is already in new/ (or in cur/, as "name" or
 * "name:2,..."), an earlier attempt delivered it - nothing is written,
 * *present_r (may be NULL) is set to 1, and the result is success. The
 * rename into new/ never replaces: losing that race counts as present. */
int maildir_deliver_named(const char *dir, const char *name, mail_producer_fn produce,
    void *ctx, int *present_r, const char **dsn_r, char **err_r);

/* The name for one queued recipient: "<arrival>.Q<queue_id>R<offset>.<host>"
 * (host escaped as below). queue_id must be alphanumeric. 0, or -1 for a
 * bad argument or a size too small. */
int maildir_delivery_name(char *buf, size_t size, long long arrival,
    const char *queue_id, long long offset);

/* A new unique name "<sec>.M<usec>P<pid>Q<n>.<host>" (host with '/' and
 * ':' escaped as \057 and \072). 0, or -1 if size is too small. */
int maildir_unique_name(char *buf, size_t size);

/* Keep the last Maildir delivered to open for the next delivery (on: 1),
 * checked again before each use; 0 closes it. For a process that
 * delivers one message after another (local). */
void maildir_keep_open(int on);

/* The DSN for an errno while storing mail (shared with mbox.c). */
const char *mailstore_errno_dsn(int err);

#endif
