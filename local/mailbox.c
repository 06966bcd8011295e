/*
 * mailbox - the final copies: a system user's mailbox (Maildir or mbox
 * under $HOME per home_mailbox, or the spool file), a virtual mailbox,
 * and "/file" destinations from aliases and .forward files.
 *
 * Invariants: every copy starts with Return-Path: and Delivered-To:;
 * mailboxes under $HOME, virtual mailboxes and files are written with the
 * owner's effective ids (priv_become); the spool file, whose directory
 * belongs to root, is created by root and given to the user, and is
 * refused unless it is a regular file owned by the user. The lower layers
 * (maildir.c, mbox.c) fsync before we report success.
 * Trusts: passwd, virtual_* maps (but refuses ".." in a mailbox path and
 * uids below virtual_minimum_uid).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "store/maildir.h"
#include "mail/maps.h"
#include "store/mbox.h"
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
	return queue_content(pr->msg->qfd, &pr->msg->env, out, octx);
}

static int
ends_with_slash(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[n - 1] == '/';
}

/* Deliver to a Maildir (path ends in '/') or an mbox file, as we are now. */
static int
store(struct lrcpt *r, const struct laddr *a, const char *path,
    const struct mbox_opts *o, int is_file)
{
	struct lproduce pr = { r->msg, a->addr };
	const char *dsn = "4.2.0";
	char *err = NULL, name[MAILDIR_NAME_MAX];
	int rc, present = 0;

	/* One name per (queue file, recipient): a retry after a crash
	 * between the copy and the 'D' mark finds the copy, not a twin. */
	if (ends_with_slash(path) && maildir_delivery_name(name, sizeof(name),
	    (long long)r->msg->env.arrival.tv_sec, r->msg->id, r->offset) == 0)
		rc = maildir_deliver_named(path, name, local_produce, &pr, &present,
		    &dsn, &err);
	else if (ends_with_slash(path))
		rc = maildir_deliver(path, local_produce, &pr, NULL, 0, &dsn, &err);
	else
		rc = mbox_deliver(path, r->msg->sender, time(NULL), local_produce, &pr,
		    o, &dsn, &err);
	if (rc == 0) {
		if (is_file)
			lr_ok(r, a->addr, "delivered to file: %s", path);
		else
			lr_ok(r, a->addr, "delivered to %s%s",
			    ends_with_slash(path) ? "maildir" : "mailbox",
			    present ? " (already present)" : "");
		free(err);
		return 0;
	}
	lr_fail(r, a->addr, dsn, "%s", err != NULL ? err : "mailbox delivery failed");
	free(err);
	return -1;
}

void
local_mailbox(struct lrcpt *r, const struct laddr *a, uid_t uid, gid_t gid,
    const char *user, const char *home)
{
	struct mbox_opts o;
	char *path;

	mbox_opts_init(&o);
	o.owner = uid;
	o.group = gid;
	o.size_limit = lconf.mbox_limit;
	if (*lconf.home_mailbox != '\0') {
		path = xasprintf("%s/%s", strcmp(home, "/") == 0 ? "" : home,
		    lconf.home_mailbox);
		if (local_become(r, a, uid, gid) == 0) {
			store(r, a, path, &o, 0);
			local_restore();
		}
		free(path);
		return;
	}
	path = xasprintf("%s/%s%s", lconf.spool, user, ends_with_slash(lconf.spool) ? "/" : "");
	if (ends_with_slash(path)) {
		/* A Maildir spool: the user owns the directory. */
		if (local_become(r, a, uid, gid) == 0) {
			store(r, a, path, &o, 0);
			local_restore();
		}
	} else if (!lconf.root && uid != geteuid()) {
		lr_fail(r, a->addr, "4.3.0", "cannot deliver as uid %ld: not running as root",
		    (long)uid);
	} else {
		/* The spool directory is root's: create as root, chown to the user. */
		o.chown_new = lconf.root;
		store(r, a, path, &o, 0);
	}
	free(path);
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
	store(r, a, path, &o, 1);
	local_restore();
}

/* ---- virtual mailboxes ---- */

static struct maplist *vmbox, *vuid, *vgid;

static struct maplist *
vmap(struct maplist **ml, const char *specs, const char *name, int *tempfail)
{
	char *err = NULL;

	if (*ml != NULL)
		return *ml;
	if (*specs == '\0')
		return NULL;
	*ml = maplist_open(specs, &err);
	if (*ml == NULL) {
		log_warnx("%s unavailable: %s", name, err != NULL ? err : "?");
		*tempfail = 1;
	}
	free(err);
	return *ml;
}

/* Postfix virtual(8) order: user@domain, user@domain without the
 * extension, @domain. 1 found, 0 not, -1 temporary failure. */
static int
vlookup(struct maplist *ml, const struct laddr *a, char **value_r)
{
	char *key, *bare;
	int rc;

	key = xasprintf("%s@%s", a->local, a->domain);
	rc = maplist_lookup(ml, key, value_r);
	free(key);
	if (rc != 0)
		return rc;
	if (*a->ext != '\0') {
		bare = addr_lookup_key(a->local, lconf.delim);
		key = xasprintf("%s@%s", bare, a->domain);
		rc = maplist_lookup(ml, key, value_r);
		free(key);
		free(bare);
		if (rc != 0)
			return rc;
	}
	key = xasprintf("@%s", a->domain);
	rc = maplist_lookup(ml, key, value_r);
	free(key);
	return rc;
}

static int
parse_id(const char *s, long long *v)
{
	char *end;

	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *v >= 0 && *v < 0x7fffffff ? 0 : -1;
}

static int
unsafe_path(const char *p)
{
	return strcmp(p, "..") == 0 || strncmp(p, "../", 3) == 0 ||
	    strstr(p, "/../") != NULL ||
	    (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0);
}

void
local_virtual(struct lrcpt *r, const char *addr)
{
	char *local = NULL, *domain = NULL, *ext, *bare, *full;
	char *mbox = NULL, *suid = NULL, *sgid = NULL, *path = NULL;
	struct maplist *mb, *mu, *mg;
	struct mbox_opts o;
	struct laddr a;
	long long uid, gid;
	int tf = 0, rc;

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
	mb = vmap(&vmbox, lconf.vmbox_maps, "virtual_mailbox_maps", &tf);
	mu = vmap(&vuid, lconf.vuid_maps, "virtual_uid_maps", &tf);
	mg = vmap(&vgid, lconf.vgid_maps, "virtual_gid_maps", &tf);
	if (tf || mb == NULL || mu == NULL || mg == NULL) {
		lr_fail(r, addr, "4.3.0", "virtual mailbox maps unavailable or not configured");
		goto out;
	}
	rc = vlookup(mb, &a, &mbox);
	if (rc < 0) {
		lr_fail(r, addr, "4.3.0", "virtual mailbox lookup failed");
		goto out;
	}
	if (rc == 0) {
		lr_fail(r, addr, "5.1.1", "unknown user: \"%s\"", addr);
		goto out;
	}
	if ((rc = vlookup(mu, &a, &suid)) <= 0 || (rc = vlookup(mg, &a, &sgid)) <= 0) {
		lr_fail(r, addr, "4.3.0", "%s for %s",
		    rc < 0 ? "virtual uid/gid lookup failed" : "no virtual uid/gid", addr);
		goto out;
	}
	if (parse_id(str_trim(suid), &uid) < 0 || parse_id(str_trim(sgid), &gid) < 0) {
		lr_fail(r, addr, "4.3.0", "bad virtual uid/gid \"%s\"/\"%s\" for %s",
		    suid, sgid, addr);
		goto out;
	}
	str_trim(mbox);
	if (*mbox == '\0' || unsafe_path(mbox) ||
	    (*lconf.vbase == '\0' && *mbox != '/')) {
		lr_fail(r, addr, "4.3.0", "unsafe or relative virtual mailbox path \"%s\"",
		    mbox);
		goto out;
	}
	if (lconf.root && uid < lconf.vmin_uid) {
		lr_fail(r, addr, "4.3.0", "virtual uid %lld below virtual_minimum_uid %lld",
		    uid, lconf.vmin_uid);
		goto out;
	}
	path = *lconf.vbase != '\0' ? xasprintf("%s/%s", lconf.vbase, mbox) :
	    xstrdup(mbox);
	mbox_opts_init(&o);
	o.owner = lconf.root ? (uid_t)uid : geteuid();
	o.group = (gid_t)gid;
	o.size_limit = lconf.vmbox_limit;
	if (local_become(r, &a, (uid_t)uid, (gid_t)gid) == 0) {
		store(r, &a, path, &o, 0);
		local_restore();
	}
out:
	free(local);
	free(domain);
	free(ext);
	free(bare);
	free(full);
	free(mbox);
	free(suid);
	free(sgid);
	free(path);
}
