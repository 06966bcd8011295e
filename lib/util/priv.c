/*
 * priv - privilege handling. No mail knowledge: callers say which user.
 *
 * Invariants: priv_drop either leaves the process with exactly the target
 * real, effective and saved ids and a single supplementary group, or fails
 * (the caller treats that as fatal). It verifies the result rather than
 * trusting the set*id return codes. priv_become changes effective ids only,
 * so priv_restore can return to root; the order matters: groups while still
 * root, then the uid (and back: uid first, then groups).
 * Trusts: the passwd database.
 * Limits: without root the only possible "drop" is to our own ids, which is
 * then a no-op success; anything else fails with EPERM.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/priv.h"

int
priv_is_root(void)
{
	return getuid() == 0;
}

int
priv_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	errno = 0;
	if (name == NULL || *name == '\0' || (pw = getpwnam(name)) == NULL) {
		if (errno == 0)
			errno = ENOENT;
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int
priv_drop(uid_t uid, gid_t gid, const char *chroot_dir)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	/* Still root underneath a priv_become(): get it back first. */
	if (geteuid() != 0 && getuid() == 0 && priv_restore() < 0)
		return -1;
	if (geteuid() != 0) {
		/* Unprivileged (tests, a developer's run): nothing to drop
		 * unless someone asks for a different identity or a chroot. */
		if ((chroot_dir != NULL && *chroot_dir != '\0') ||
		    uid != geteuid() || gid != getegid()) {
			errno = EPERM;
			return -1;
		}
		if (setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
			return -1;
		return 0;
	}
	if (chroot_dir != NULL && *chroot_dir != '\0') {
		if (chroot(chroot_dir) < 0 || chdir("/") < 0)
			return -1;
	}
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return -1;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -1;
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid) {
		errno = EPERM;
		return -1;
	}
	/* Belt and braces: if we really left root, getting it back must fail. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

int
priv_become(uid_t uid, gid_t gid)
{
	if (geteuid() != 0) {
		if (uid == geteuid() && gid == getegid())
			return 0;
		errno = EPERM;
		return -1;
	}
	if (setgroups(1, &gid) < 0 || setegid(gid) < 0)
		return -1;
	if (seteuid(uid) < 0) {
		int saved = errno;

		setegid(0);
		errno = saved;
		return -1;
	}
	if (geteuid() != uid || getegid() != gid) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

int
priv_restore(void)
{
	gid_t root = 0;

	if (getuid() != 0) {
		/* Never had root; priv_become was a no-op. */
		return 0;
	}
	if (seteuid(0) < 0 || setegid(0) < 0 || setgroups(1, &root) < 0)
		return -1;
	return geteuid() == 0 && getegid() == 0 ? 0 : -1;
}
