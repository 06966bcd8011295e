/*
 * priv - privilege handling. No mail knowledge: callers say which user.
 */
#ifndef POSTERN_PRIV_H
#define POSTERN_PRIV_H

#include <sys/types.h>

int priv_is_root(void);                              /* real uid 0 */
int priv_user(const char *name, uid_t *uid, gid_t *gid);   /* 0, -1 unknown */
/* Permanently become uid/gid (setgroups to just gid), optionally after
 * chroot(dir). Verifies the change stuck (getuid/geteuid/getresuid). */
int priv_drop(uid_t uid, gid_t gid, const char *chroot_dir);
/* Temporarily act as uid/gid (effective ids only); priv_restore() returns
 * to root. For local delivery, which must create files as the recipient. */
int priv_become(uid_t uid, gid_t gid);
int priv_restore(void);

#endif
