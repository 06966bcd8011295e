/*
 * quota - the storage limit of a Maildir user, kept the Maildir++ way: a
 * "maildirsize" file at the root of the user's Maildir, the file Courier,
 * maildrop and Dovecot keep, so a mailbox moved between them keeps its
 * count. Line 1 is the limit ("51200000S"); every later line is a change
 * "bytes count" (negative for removals) that a writer appends with one
 * O_APPEND write, so concurrent writers (local, pop3d, imapd sessions)
 * never lose each other's lines without any lock. The usage is the sum.
 *
 * The file is rebuilt from the Maildir (every file in new/ and cur/ of
 * the INBOX and of each .Folder, sized by its ",S=" name part or lstat)
 * when it is missing, unreadable, states another limit, or has grown past
 * QUOTA_FILE_MAX bytes; the rebuild is written to tmp/ and renamed in.
 * A recount racing a delivery may miss or double that one message until
 * the next rebuild: the count is advisory, as Maildir++ says, and never
 * blocks a delivery by more than one message's size.
 *
 * limit 0 means no limit: nothing is read or written. All calls run as
 * the mailbox owner. Errors: -1 with *err_r xmalloc'd (may be NULL).
 */
#ifndef POSTERN_QUOTA_H
#define POSTERN_QUOTA_H

#include <stdint.h>

#define QUOTA_FILE_NAME "maildirsize"
#define QUOTA_FILE_MAX 5120

/* Current usage of the Maildir at root. 0 or -1. */
int quota_get(const char *root, uint64_t limit, uint64_t *bytes_r,
    uint64_t *count_r, char **err_r);
/* Would adding add bytes exceed the limit? 1 yes, 0 no, -1 error. */
int quota_check(const char *root, uint64_t limit, uint64_t add, char **err_r);
/* Record a change (bytes and messages added, negative when removed).
 * 0 or -1 (the next rebuild repairs a lost line). */
int quota_update(const char *root, uint64_t limit, int64_t bytes, int64_t count,
    char **err_r);

#endif
