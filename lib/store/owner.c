/*
 * owner - who owns a mailbox and where it is (see owner.h), moved out of
 * local so that local, pop3d, imapd and `postern mailbox` agree.
 *
 * Invariants: a virtual mailbox path never contains a ".." component and
 * is absolute unless virtual_mailbox_base is set; a virtual uid below
 * virtual_minimum_uid is refused when we run as root; a failed map or
 * passwd lookup is a temporary failure, never "unknown user".
 * Trusts: passwd and the virtual_* maps.
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "mail/maps.h"
#include "store/owner.h"

/* Defaults live in the parameter table only (config_str panics on a
 * name the table lacks). */
static char *
conf_dup(const char *name)
{
	return xstrdup(config_str(name));
}

void
owner_conf_load(struct owner_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->home_mailbox = conf_dup("home_mailbox");
	c->spool = conf_dup("mail_spool_directory");
	c->delim = conf_dup("recipient_delimiter");
	c->vbase = conf_dup("virtual_mailbox_base");
	c->vmbox_specs = conf_dup("virtual_mailbox_maps");
	c->vuid_specs = conf_dup("virtual_uid_maps");
	c->vgid_specs = conf_dup("virtual_gid_maps");
	c->vlimit_specs = conf_dup("virtual_mailbox_limit_maps");
	c->mbox_limit = config_int("mailbox_size_limit");
	c->vmin_uid = config_int("virtual_minimum_uid");
	c->check_vmin = geteuid() == 0;
}

void
owner_conf_free(struct owner_conf *c)
{
	free(c->home_mailbox);
	free(c->spool);
	free(c->delim);
	free(c->vbase);
	free(c->vmbox_specs);
	free(c->vuid_specs);
	free(c->vgid_specs);
	free(c->vlimit_specs);
	maplist_close(&c->vlimit);
	maplist_close(&c->vmbox);
	maplist_close(&c->vuid);
	maplist_close(&c->vgid);
	memset(c, 0, sizeof(*c));
}

void
owner_free(struct mailbox_owner *o)
{
	free(o->user);
	free(o->home);
	free(o->path);
	memset(o, 0, sizeof(*o));
}

int
owner_is_maildir(const char *path)
{
	size_t n = strlen(path);

	return n > 0 && path[n - 1] == '/';
}

static int
fail(char **err_r, int rc, char *text)
{
	if (err_r != NULL)
		*err_r = text;
	else
		free(text);
	return rc;
}

void
owner_system_path(const struct owner_conf *c, struct mailbox_owner *o)
{
	free(o->path);
	o->quota = c->mbox_limit > 0 ? (uint64_t)c->mbox_limit : 0;
	if (*c->home_mailbox != '\0') {
		o->path = xasprintf("%s/%s", strcmp(o->home, "/") == 0 ? "" : o->home,
		    c->home_mailbox);
		o->in_spool = 0;
		return;
	}
	/* "/var/mail/" (a Maildir spool) gives /var/mail/USER/ */
	o->path = xasprintf("%.*s/%s%s", (int)(strlen(c->spool) -
	    (owner_is_maildir(c->spool) ? 1 : 0)), c->spool, o->user,
	    owner_is_maildir(c->spool) ? "/" : "");
	o->in_spool = 1;
}

int
owner_system(const struct owner_conf *c, const char *login, struct mailbox_owner *o,
    char **err_r)
{
	struct passwd *pw;

	memset(o, 0, sizeof(*o));
	errno = 0;
	pw = *login != '\0' ? getpwnam(login) : NULL;
	if (pw == NULL) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH && errno != EBADF &&
		    errno != EPERM)
			return fail(err_r, -1, xasprintf("user lookup for \"%s\" failed: %s",
			    login, strerror(errno)));
		return fail(err_r, 0, xasprintf("unknown user: \"%s\"", login));
	}
	o->user = xstrdup(pw->pw_name);
	o->uid = pw->pw_uid;
	o->gid = pw->pw_gid;
	o->home = xstrdup(pw->pw_dir != NULL && *pw->pw_dir != '\0' ? pw->pw_dir : "/");
	owner_system_path(c, o);
	return 1;
}

/* ---- virtual mailboxes ---- */

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
vlookup(struct maplist *ml, const char *local, const char *domain, const char *bare,
    int has_ext, char **value_r)
{
	char *key;
	int rc;

	key = xasprintf("%s@%s", local, domain);
	rc = maplist_lookup(ml, key, value_r);
	free(key);
	if (rc != 0)
		return rc;
	if (has_ext) {
		key = xasprintf("%s@%s", bare, domain);
		rc = maplist_lookup(ml, key, value_r);
		free(key);
		if (rc != 0)
			return rc;
	}
	key = xasprintf("@%s", domain);
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

int
owner_virtual(struct owner_conf *c, const char *local, const char *domain,
    struct mailbox_owner *o, char **err_r)
{
	char *bare, *full, *mbox = NULL, *suid = NULL, *sgid = NULL, *addr;
	struct maplist *mb, *mu, *mg;
	long long uid, gid;
	int tf = 0, rc, has_ext;

	memset(o, 0, sizeof(*o));
	bare = addr_lookup_key(local, c->delim);
	full = addr_lookup_key(local, "");
	has_ext = strlen(full) > strlen(bare);
	addr = xasprintf("%s@%s", local, domain);
	mb = vmap(&c->vmbox, c->vmbox_specs, "virtual_mailbox_maps", &tf);
	mu = vmap(&c->vuid, c->vuid_specs, "virtual_uid_maps", &tf);
	mg = vmap(&c->vgid, c->vgid_specs, "virtual_gid_maps", &tf);
	if (tf || mb == NULL || mu == NULL || mg == NULL) {
		rc = fail(err_r, -1, xstrdup("virtual mailbox maps unavailable or not configured"));
		goto out;
	}
	rc = vlookup(mb, local, domain, bare, has_ext, &mbox);
	if (rc < 0) {
		rc = fail(err_r, -1, xstrdup("virtual mailbox lookup failed"));
		goto out;
	}
	if (rc == 0) {
		rc = fail(err_r, 0, xasprintf("unknown user: \"%s\"", addr));
		goto out;
	}
	if ((rc = vlookup(mu, local, domain, bare, has_ext, &suid)) <= 0 ||
	    (rc = vlookup(mg, local, domain, bare, has_ext, &sgid)) <= 0) {
		rc = fail(err_r, -1, xasprintf("%s for %s",
		    rc < 0 ? "virtual uid/gid lookup failed" : "no virtual uid/gid", addr));
		goto out;
	}
	if (parse_id(str_trim(suid), &uid) < 0 || parse_id(str_trim(sgid), &gid) < 0) {
		rc = fail(err_r, -1, xasprintf("bad virtual uid/gid \"%s\"/\"%s\" for %s",
		    suid, sgid, addr));
		goto out;
	}
	str_trim(mbox);
	if (*mbox == '\0' || unsafe_path(mbox) || (*c->vbase == '\0' && *mbox != '/')) {
		rc = fail(err_r, -1, xasprintf("unsafe or relative virtual mailbox path \"%s\"",
		    mbox));
		goto out;
	}
	if (c->check_vmin && uid < c->vmin_uid) {
		rc = fail(err_r, -1, xasprintf("virtual uid %lld below virtual_minimum_uid %lld",
		    uid, c->vmin_uid));
		goto out;
	}
	o->user = xstrdup(addr);
	o->uid = (uid_t)uid;
	o->gid = (gid_t)gid;
	o->path = *c->vbase != '\0' ? xasprintf("%s/%s", c->vbase, mbox) : xstrdup(mbox);
	o->is_virtual = 1;
	o->quota = 0;
	if (c->vlimit_specs != NULL && *c->vlimit_specs != '\0') {
		struct maplist *ml = vmap(&c->vlimit, c->vlimit_specs,
		    "virtual_mailbox_limit_maps", &tf);
		char *lim = NULL, *end;
		unsigned long long v;

		rc = ml == NULL ? -1 : vlookup(ml, local, domain, bare, has_ext, &lim);
		if (rc < 0) {
			owner_free(o);
			rc = fail(err_r, -1, xasprintf("virtual_mailbox_limit_maps lookup "
			    "failed for %s", addr));
			goto out;
		}
		if (rc > 0) {
			errno = 0;
			v = strtoull(str_trim(lim), &end, 10);
			if (errno != 0 || end == lim || *end != '\0') {
				owner_free(o);
				rc = fail(err_r, -1, xasprintf("bad virtual_mailbox_limit_maps "
				    "value \"%s\" for %s", lim, addr));
				free(lim);
				goto out;
			}
			o->quota = v;
		}
		free(lim);
	}
	rc = 1;
out:
	free(bare);
	free(full);
	free(mbox);
	free(suid);
	free(sgid);
	free(addr);
	return rc;
}

int
owner_lookup(struct owner_conf *c, const char *name, struct mailbox_owner *o,
    char **err_r)
{
	const char *at = strrchr(name, '@');
	char *local, *domain;
	int rc;

	if (at == NULL)
		return owner_system(c, name, o, err_r);
	local = xstrndup(name, (size_t)(at - name));
	domain = str_lower(xstrdup(at + 1));
	rc = owner_virtual(c, local, domain, o, err_r);
	free(local);
	free(domain);
	return rc;
}
