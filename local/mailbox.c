/*
 * mailbox - the final copies: a system user's mailbox (Maildir or mbox
 * under $HOME per home_mailbox, or the spool file; or handed on to
 * mailbox_transport or mailbox_command), a virtual mailbox, and "/file"
 * destinations from aliases and .forward files.
 *
 * Invariants: every copy starts with Return-Path: and Delivered-To:;
 * mailboxes under $HOME, virtual mailboxes and files are written with the
 * owner's effective ids (priv_become); the spool file, whose directory
 * belongs to root, is created by root and given to the user, and is
 * refused unless it is a regular file owned by the user. The lower layers
 * (maildir.c, mbox.c) fsync before we report success.
 * Where a mailbox is and whose it is comes from lib/store/owner.c, shared
 * with pop3d, imapd and postern mailbox.
 * Trusts: passwd, virtual_* maps (owner.c refuses ".." in a mailbox path
 * and uids below virtual_minimum_uid).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "store/maildir.h"
#include "mail/maps.h"
#include "store/mbox.h"
#include "store/owner.h"
#include "store/quota.h"
#include "local.h"

int
local_produce(int (*out)(const char *, size_t, void *), void *octx, void *ctx)
{
	struct lproduce *pr = ctx;
	char *hdr;
	int rc;

	hdr = xasprintf("Return-Path: <%s>\nDelivered-To: %s\n", pr->msg->sender,
	    pr->rcpt);
	rc = out(hdr, strlen(hdr), octx);
	free(hdr);
	if (rc != 0)
		return rc;
	return local_content(pr->msg, out, octx);
}

static int
ends_with_slash(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[n - 1] == '/';
}

/* Maildir info letters for a new copy: rename new/NAME to
 * cur/NAME:2,INFO so that imapd indexes it with those flags. */
static int
set_info(const char *dir, const char *name, const char *info, char **err_r)
{
	char *from = xasprintf("%s/new/%s", dir, name);
	char *to = xasprintf("%s/cur/%s:2,%s", dir, name, info);
	int rc = rename(from, to) < 0 ? -1 : 0;

	if (rc < 0)
		*err_r = xasprintf("rename %s: %s", from, strerror(errno));
	else {
		char *cur = xasprintf("%s/cur", dir), *nw = xasprintf("%s/new", dir);

		/* both directory entries durable before we report success */
		if (fsync_dir(cur) < 0 || fsync_dir(nw) < 0) {
			*err_r = xasprintf("fsync %s: %s", cur, strerror(errno));
			rc = -1;
		}
		free(cur);
		free(nw);
	}
	free(from);
	free(to);
	return rc;
}

/* Deliver to a Maildir (path ends in '/') or an mbox file, as we are now.
 * sp (may be NULL) says where a Sieve action puts the copy: a folder of
 * the Maildir whose quota is counted at sp->qroot, with flags. */
static int
store_ex(struct lrcpt *r, const struct laddr *a, const char *path,
    const struct mbox_opts *o, int is_file, uint64_t quota, const struct lstore *sp)
{
	struct lproduce pr = { r->msg, a->addr };
	const char *dsn = "4.2.0";
	const char *qroot = sp != NULL ? sp->qroot : path;
	char *err = NULL, name[MAILDIR_NAME_MAX];
	int rc, present = 0;

	/* A Maildir's quota counts every folder (store/quota.h); the
	 * message's size here is its queued content, close enough to the
	 * copy (two header lines more) for a limit that is advisory. */
	if (ends_with_slash(path) && !is_file && quota > 0) {
		int over = quota_check(qroot, quota, (uint64_t)r->msg->env.content_size,
		    &err);
		if (over != 0) {
			if (over > 0)
				lr_fail(r, a->addr, lconf.overquota_bounce ? "5.2.2" : "4.2.2",
				    "mailbox full: quota of %llu bytes exceeded",
				    (unsigned long long)quota);
			else
				lr_fail(r, a->addr, "4.2.0", "cannot check the quota: %s", err);
			free(err);
			return -1;
		}
	}
	/* One name per (queue file, recipient): a retry after a crash
	 * between the copy and the 'D' mark finds the copy, not a twin. */
	if (ends_with_slash(path) && maildir_delivery_name(name, sizeof(name),
	    (long long)r->msg->env.arrival.tv_sec, r->msg->id, r->offset) == 0) {
		rc = maildir_deliver_named(path, name, local_produce, &pr, &present,
		    &dsn, &err);
		if (rc == 0 && !present && sp != NULL && sp->info != NULL &&
		    *sp->info != '\0' && set_info(path, name, sp->info, &err) < 0) {
			rc = -1;
			dsn = "4.2.0";
		}
		if (rc == 0 && sp != NULL && sp->name_r != NULL)
			snprintf(sp->name_r, sp->name_size, "%s", name);
	} else if (ends_with_slash(path))
		rc = maildir_deliver(path, local_produce, &pr, NULL, 0, &dsn, &err);
	else
		rc = mbox_deliver(path, r->msg->sender, time(NULL), local_produce, &pr,
		    o, &dsn, &err);
	if (rc == 0) {
		if (ends_with_slash(path) && !is_file && quota > 0 && !present)
			(void)quota_update(qroot, quota, (int64_t)r->msg->env.content_size, 1,
			    NULL);
		if (is_file)
			lr_ok(r, a->addr, "delivered to file: %s", path);
		else
			lr_ok(r, a->addr, "delivered to %s%s",
			    sp != NULL && sp->label != NULL ? sp->label :
			    ends_with_slash(path) ? "maildir" : "mailbox",
			    present ? " (already present)" : "");
		free(err);
		return 0;
	}
	lr_fail(r, a->addr, dsn, "%s", err != NULL ? err : "mailbox delivery failed");
	free(err);
	return -1;
}

static int
store(struct lrcpt *r, const struct laddr *a, const char *path,
    const struct mbox_opts *o, int is_file, uint64_t quota)
{
	return store_ex(r, a, path, o, is_file, quota, NULL);
}

int
local_store(struct lrcpt *r, const struct laddr *a, const char *path, uint64_t quota,
    const struct lstore *sp)
{
	struct mbox_opts o;

	mbox_opts_init(&o);
	return store_ex(r, a, path, &o, 0, quota, sp);
}

void
local_mailbox(struct lrcpt *r, const struct laddr *a, uid_t uid, gid_t gid,
    const char *user, const char *home)
{
	struct mailbox_owner mo = { .user = xstrdup(user), .uid = uid, .gid = gid,
	    .home = xstrdup(home) };
	struct mbox_opts o;

	if (*lconf.mailbox_transport != '\0') {
		/* Postfix order: after aliases and .forward, before the mailbox. */
		owner_free(&mo);
		local_pass(r, a);
		return;
	}
	if (*lconf.mailbox_command != '\0') {
		/* Then mailbox_command (Postfix order), as the recipient; root's
		 * mail as default_privs, as Postfix does, since the command is
		 * a program of the administrator's choosing, not root's shell. */
		struct lprivs p = { uid, gid, user, home, SRC_NONE };

		if (uid == 0) {
			p.uid = lconf.nobody_uid;
			p.gid = lconf.nobody_gid;
		}
		local_privs_fix(&p);
		owner_free(&mo);
		local_command(r, a, lconf.mailbox_command, &p);
		return;
	}
	mbox_opts_init(&o);
	o.owner = uid;
	o.group = gid;
	o.size_limit = lconf.mbox_limit;
	owner_system_path(&lconf.owner, &mo);
	if (!mo.in_spool || owner_is_maildir(mo.path)) {
		/* Under $HOME, or a Maildir spool: the user owns the directory. */
		if (owner_is_maildir(mo.path) && local_sieve_wanted(&mo))
			local_sieve(r, a, &mo);
		else if (local_become(r, a, uid, gid) == 0) {
			store(r, a, mo.path, &o, 0, mo.quota);
			local_restore();
		}
	} else if (!lconf.root && uid != geteuid()) {
		lr_fail(r, a->addr, "4.3.0", "cannot deliver as uid %ld: not running as root",
		    (long)uid);
	} else {
		/* The spool directory is root's: create as root, chown to the user. */
		o.chown_new = lconf.root;
		store(r, a, mo.path, &o, 0, mo.quota);
	}
	owner_free(&mo);
}

void
local_file(struct lrcpt *r, const struct laddr *a, const char *path,
    const struct lprivs *p)
{
	struct mbox_opts o;

	if (strcmp(path, "/dev/null") == 0) {
		lr_ok(r, a->addr, "delivered to file: %s", path);
		return;
	}
	mbox_opts_init(&o);
	o.owner = p->uid;
	o.group = p->gid;
	o.size_limit = lconf.mbox_limit;
	if (local_become(r, a, p->uid, p->gid) < 0)
		return;
	store(r, a, path, &o, 1, 0);
	local_restore();
}

/* ---- virtual mailboxes (who and where: lib/store/owner.c) ---- */

void
local_virtual(struct lrcpt *r, const char *addr)
{
	char *local = NULL, *domain = NULL, *ext, *bare, *full, *err = NULL;
	struct mailbox_owner mo;
	struct mbox_opts o;
	struct laddr a;
	int rc;

	addr_split(addr, &local, &domain);
	str_lower(domain);
	bare = addr_lookup_key(local, lconf.delim);
	full = addr_lookup_key(local, "");
	ext = strlen(full) > strlen(bare) ? xstrdup(full + strlen(bare) + 1) : xstrdup("");
	a.addr = addr;
	a.local = local;
	a.domain = domain;
	a.ext = ext;
	a.depth = 0;
	if (local_loop(r->msg, addr)) {
		lr_fail(r, addr, "5.4.6", "mail forwarding loop for %s", addr);
		goto out;
	}
	rc = owner_virtual(&lconf.owner, local, domain, &mo, &err);
	if (rc <= 0) {
		lr_fail(r, addr, rc < 0 ? "4.3.0" : "5.1.1", "%s", err);
		goto out;
	}
	mbox_opts_init(&o);
	o.owner = lconf.root ? mo.uid : geteuid();
	o.group = mo.gid;
	o.size_limit = lconf.vmbox_limit;
	if (owner_is_maildir(mo.path) && local_sieve_wanted(&mo))
		local_sieve(r, &a, &mo);
	else if (local_become(r, &a, mo.uid, mo.gid) == 0) {
		store(r, &a, mo.path, &o, 0, mo.quota);
		local_restore();
	}
	owner_free(&mo);
out:
	free(err);
	free(local);
	free(domain);
	free(ext);
	free(bare);
	free(full);
}
