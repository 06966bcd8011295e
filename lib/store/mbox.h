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

#endif
