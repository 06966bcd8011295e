/*
 * alias - what a local address expands to: alias_maps, ~/.forward,
 * :include: files, and forwarding of the non-local results.
 *
 * Invariants: expansion is depth-limited (LOCAL_MAX_DEPTH) and bounded
 * (LOCAL_MAX_TARGETS per recipient); every destination is delivered at
 * most once per recipient (the seen list); an address found in its own
 * expansion goes to its own mailbox; a Delivered-To: header naming the
 * address being expanded is a loop (5.4.6). Commands and files are allowed
 * per source (allow_mail_to_commands/files: alias, forward, include) and
 * run with the rights of that source: the alias database owner, the
 * user, or the include file owner; default_privs instead of root.
 * Trusts: alias maps. Does not trust .forward or :include: files: read
 * with the rights they will be used with, O_NOFOLLOW, regular files only,
 * .forward owned by its user, size-limited.
 * Limits: .forward and :include: files up to LOCAL_FILE_MAX bytes.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/addr.h"
#include "mail/maps.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "local.h"

/* ---- target lists ---- */

/* Split at commas and new lines outside double quotes; items trimmed.
 * Lines whose first non-blank is '#' are comments. */
static char **
split_targets(const char *list)
{
	char **v = NULL;
	struct buf item = BUF_INIT(0);
	int inq = 0, bol = 1;
	const char *p;

	for (p = list; ; p++) {
		if (bol && !inq) {
			const char *q = p;

			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == '#') {
				while (*q != '\0' && *q != '\n')
					q++;
				p = q;
			}
			bol = 0;
		}
		if (*p == '\0' || (!inq && (*p == ',' || *p == '\n'))) {
			char *s = str_trim(xstrdup(buf_cstr(&item)));

			if (*s != '\0')
				strv_push(&v, s);
			free(s);
			buf_reset(&item);
			if (*p == '\0')
				break;
			if (*p == '\n')
				bol = 1;
			continue;
		}
		if (*p == '"')
			inq = !inq;
		else if (*p == '\\' && inq && p[1] != '\0')
			buf_putc(&item, *p++);
		buf_putc(&item, *p == '\r' || *p == '\t' ? ' ' : *p);
	}
	buf_free(&item);
	return v;
}

/* "\"|cmd a, b\"" -> "|cmd a, b"; other items are returned as they are. */
static char *
unquote_item(const char *s)
{
	size_t len = strlen(s);
	struct buf b = BUF_INIT(0);
	size_t i;

	if (len < 2 || s[0] != '"' || s[len - 1] != '"')
		return xstrdup(s);
	for (i = 1; i + 1 < len; i++) {
		if (s[i] == '\\' && i + 2 < len)
			i++;
		buf_putc(&b, s[i]);
	}
	if (b.len == 0)
		return xstrdup("");
	return buf_steal(&b);
}

static int
allowed(char **list, enum lsource src)
{
	const char *name = src == SRC_ALIAS ? "alias" : src == SRC_FORWARD ? "forward" :
	    src == SRC_INCLUDE ? "include" : "";

	return *name != '\0' && strv_contains_ci(list, name);
}

/* 1 if key was new (and is now remembered), 0 if seen before. */
static int
first_time(struct lrcpt *r, const char *key)
{
	if (strv_contains_ci(r->seen, key))
		return 0;
	strv_push(&r->seen, key);
	return 1;
}

static void add_forward(struct lrcpt *r, const struct laddr *a, const char *addr);
static void include_file(struct lrcpt *r, const struct laddr *a, const char *path,
    const struct lprivs *p, const char *self_key);

static void
target_addr(struct lrcpt *r, const struct laddr *a, const char *item,
    const struct lprivs *p, const char *self_key, const char *what)
{
	char *s = xstrdup(item), *q, *local = NULL, *domain = NULL, *key;
	int flags = 0, lc;
	size_t len;

	if (*s == '\\') {
		flags = LFLAG_NO_ALIAS | LFLAG_NO_FORWARD;
		memmove(s, s + 1, strlen(s));
	}
	len = strlen(s);
	if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
		memmove(s, s + 1, len - 2);
		s[len - 2] = '\0';
	}
	q = addr_qualify(s, lconf.myorigin);
	if (*s == '\0' || strlen(q) > ADDR_MAX || addr_valid(q, 1) != 0) {
		lr_fail(r, a->addr, "5.1.3", "bad address syntax in %s: \"%s\"", what, item);
		goto out;
	}
	addr_split(q, &local, &domain);
	lc = local_domain(domain);
	if (lc < 0) {
		lr_fail(r, a->addr, "4.3.0", "cannot resolve domain \"%s\": table "
		    "lookup failed", domain);
		goto out;
	}
	if (lc == 0) {
		add_forward(r, a, q);
		goto out;
	}
	key = addr_lookup_key(local, lconf.delim);
	if (self_key != NULL && strcmp(key, self_key) == 0)
		flags |= p->source == SRC_ALIAS ? LFLAG_NO_ALIAS :
		    LFLAG_NO_ALIAS | LFLAG_NO_FORWARD;
	free(key);
	local_deliver_addr(r, q, a->depth + 1, flags);
out:
	free(s);
	free(q);
	free(local);
	free(domain);
}

void
local_targets(struct lrcpt *r, const struct laddr *a, const char *list,
    const struct lprivs *p, const char *self_key, const char *what)
{
	char **items = split_targets(list), *it, *k;
	size_t i;

	for (i = 0; items != NULL && items[i] != NULL && !lr_stop(r); i++) {
		if (++r->ntargets > LOCAL_MAX_TARGETS) {
			lr_fail(r, a->addr, "5.3.0", "too many destinations in the expansion");
			break;
		}
		it = unquote_item(items[i]);
		if (it[0] == '|') {
			const char *cmd = it + 1;

			while (*cmd == ' ' || *cmd == '\t')
				cmd++;
			if (!allowed(lconf.allow_cmd, p->source)) {
				lr_fail(r, a->addr, "5.7.1", "mail to command is restricted "
				    "(%s)", what);
			} else if (*cmd == '\0') {
				lr_fail(r, a->addr, "5.3.0", "empty command in %s", what);
			} else {
				k = xasprintf("|%ld|%s", (long)p->uid, cmd);
				if (first_time(r, k))
					local_command(r, a, cmd, p);
				free(k);
			}
		} else if (it[0] == '/') {
			if (!allowed(lconf.allow_file, p->source)) {
				lr_fail(r, a->addr, "5.7.1", "mail to file is restricted (%s)",
				    what);
			} else {
				k = xasprintf("/%ld|%s", (long)p->uid, it);
				if (first_time(r, k))
					local_file(r, a, it, p);
				free(k);
			}
		} else if (strncasecmp(it, ":include:", 9) == 0) {
			include_file(r, a, str_trim(it + 9), p, self_key);
		} else {
			/* Plain addresses may be separated by white space too. */
			char **words = strv_split(it, " \t");
			size_t w;

			for (w = 0; words != NULL && words[w] != NULL && !lr_stop(r); w++)
				target_addr(r, a, words[w], p, self_key, what);
			strv_free(&words);
		}
		free(it);
	}
	strv_free(&items);
}

/* ---- alias maps ---- */

/* 1 found (*value_r, *p_r set), 0 not found, -1 temporary failure. */
static int
alias_lookup(const char *key, char **value_r, struct lprivs *p_r)
{
	char *err = NULL;
	struct stat st;
	size_t i;
	int rc;

	for (i = 0; lconf.alias_specs != NULL && lconf.alias_specs[i] != NULL; i++) {
		const char *spec = lconf.alias_specs[i];

		if (lconf.alias_db[i] == NULL) {
			lconf.alias_db[i] = map_open(spec, &err);
			if (lconf.alias_db[i] == NULL) {
				log_warnx("alias database %s unavailable: %s", spec,
				    err != NULL ? err : "?");
				free(err);
				return -1;
			}
		}
		rc = map_lookup(lconf.alias_db[i], key, value_r);
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		memset(p_r, 0, sizeof(*p_r));
		p_r->source = SRC_ALIAS;
		p_r->uid = lconf.nobody_uid;
		p_r->gid = lconf.nobody_gid;
		if (strncmp(spec, "lmdb:", 5) == 0) {
			char *db = xasprintf("%s.lmdb", spec + 5);

			if (stat(db, &st) == 0 && st.st_uid != 0) {
				p_r->uid = st.st_uid;
				p_r->gid = st.st_gid;
			}
			free(db);
		}
		local_privs_fix(p_r);
		return 1;
	}
	return 0;
}

/* ---- reading untrusted files (.forward, :include:) ---- */

/* 0 read (*data_r, *st_r), or -1 with errno (ELOOP for a symlink, EFTYPE-ish
 * EINVAL for a non-regular file, EFBIG for a file too large). */
static int
read_small_file(const char *path, char **data_r, struct stat *st_r)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	ssize_t n;
	char *data;
	int e;

	if (fd < 0)
		return -1;
	if (fstat(fd, st_r) < 0)
		goto bad;
	if (!S_ISREG(st_r->st_mode)) {
		errno = EINVAL;
		goto bad;
	}
	if (st_r->st_size > LOCAL_FILE_MAX) {
		errno = EFBIG;
		goto bad;
	}
	data = xmalloc((size_t)st_r->st_size + 1);
	n = read_full(fd, data, (size_t)st_r->st_size);
	if (n < 0) {
		free(data);
		goto bad;
	}
	data[n] = '\0';
	if (memchr(data, '\0', (size_t)n) != NULL) {
		free(data);
		errno = EINVAL;
		goto bad;
	}
	close(fd);
	*data_r = data;
	return 0;
bad:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

static int
blank_text(const char *s)
{
	char **items = split_targets(s);
	int blank = items == NULL || items[0] == NULL;

	strv_free(&items);
	return blank;
}

static void
include_file(struct lrcpt *r, const struct laddr *a, const char *path,
    const struct lprivs *p, const char *self_key)
{
	struct lprivs ip;
	struct laddr ia = *a;
	struct stat st;
	char *data = NULL, *what;
	int e;

	if (a->depth + 1 > LOCAL_MAX_DEPTH) {
		lr_fail(r, a->addr, "5.4.6", "alias expansion too deep at :include:%s", path);
		return;
	}
	if (path[0] != '/') {
		lr_fail(r, a->addr, "5.3.0", ":include: file name must be absolute: %s",
		    path);
		return;
	}
	what = xasprintf(":include: file %s", path);
	if (!first_time(r, what))
		goto out;
	if (local_become(r, a, p->uid, p->gid) < 0)
		goto out;
	if (read_small_file(path, &data, &st) < 0) {
		e = errno;
		local_restore();
		if (e == ELOOP)
			lr_fail(r, a->addr, "5.3.0", "refusing symbolic link %s", what);
		else if (e == EINVAL || e == EFBIG)
			lr_fail(r, a->addr, "5.3.0", "%s: %s", what,
			    e == EFBIG ? "file too large" : "not a regular text file");
		else
			lr_fail(r, a->addr, "4.3.0", "cannot read %s: %s", what, strerror(e));
		goto out;
	}
	local_restore();
	memset(&ip, 0, sizeof(ip));
	ip.source = SRC_INCLUDE;
	ip.uid = st.st_uid;
	ip.gid = st.st_gid;
	if (ip.uid == 0) {
		ip.uid = lconf.nobody_uid;
		ip.gid = lconf.nobody_gid;
	}
	local_privs_fix(&ip);
	ia.depth = a->depth + 1;
	local_targets(r, &ia, data, &ip, self_key, what);
out:
	free(data);
	free(what);
}

/* ---- ~/.forward ---- */

/* Postfix's forward_expansion_filter: anything else becomes '_'. A
 * value of only dots ("..", from an address extension) would climb out of
 * the directory it is placed in: its dots become '_' too. */
static void
filter_append(struct buf *b, const char *s)
{
	static const char ok[] = "!%-_=+:,.@";
	int dots = s[strspn(s, ".")] == '\0';

	for (; *s != '\0'; s++)
		buf_putc(b, *s == '.' && dots ? '_' :
		    isalnum((unsigned char)*s) || strchr(ok, *s) != NULL ? *s : '_');
}

/* Expand $name, ${name}, ${name?text}, ${name:text} in a forward_path
 * entry. NULL when the entry uses a value that is empty (or unknown). */
static char *
fwd_expand(const char *t, const struct laddr *a, const char *user, const char *home)
{
	struct buf b = BUF_INIT(4096);
	const char *p = t;

	while (*p != '\0') {
		const char *name, *alt = NULL;
		size_t nlen, alen = 0;
		char op = 0;
		const char *v;
		int filter = 0;

		if (*p != '$') {
			buf_putc(&b, *p++);
			continue;
		}
		p++;
		if (*p == '$') {
			buf_putc(&b, *p++);
			continue;
		}
		if (*p == '{') {
			const char *end = strchr(p, '}');

			if (end == NULL)
				goto bad;
			name = p + 1;
			nlen = strcspn(name, "?:}");
			if (name[nlen] == '?' || name[nlen] == ':') {
				op = name[nlen];
				alt = name + nlen + 1;
				alen = (size_t)(end - alt);
			}
			p = end + 1;
		} else {
			name = p;
			nlen = 0;
			while (isalnum((unsigned char)name[nlen]) || name[nlen] == '_')
				nlen++;
			p += nlen;
		}
#define IS(n) (nlen == sizeof(n) - 1 && strncmp(name, n, nlen) == 0)
		if (IS("home"))
			v = home;
		else if (IS("user"))
			v = user;
		else if (IS("local"))
			v = a->local, filter = 1;
		else if (IS("extension"))
			v = a->ext, filter = 1;
		else if (IS("recipient_delimiter"))
			v = *a->ext != '\0' ? lconf.delim : "";
		else if (IS("domain"))
			v = a->domain, filter = 1;
		else if (IS("recipient"))
			v = a->addr, filter = 1;
		else {
			log_warnx("forward_path: unknown name $%.*s", (int)nlen, name);
			goto bad;
		}
#undef IS
		if (op == '?') {
			if (v != NULL && *v != '\0')
				buf_append(&b, alt, alen);
		} else if (op == ':') {
			if (v == NULL || *v == '\0')
				buf_append(&b, alt, alen);
		} else {
			if (v == NULL || *v == '\0')
				goto bad;
			if (filter)
				filter_append(&b, v);
			else
				buf_puts(&b, v);
		}
	}
	if (b.len == 0)
		goto bad;
	return buf_steal(&b);
bad:
	buf_free(&b);
	return NULL;
}

/* 1 the .forward decided (delivered or failed), 0 deliver to the mailbox. */
static int
dot_forward(struct lrcpt *r, const struct laddr *a, uid_t uid, gid_t gid,
    const char *user, const char *home, const char *key)
{
	char **paths = strv_split_list(lconf.forward_path);
	char *path = NULL, *data = NULL, *what;
	struct lprivs fp;
	struct stat st;
	size_t i;
	int e, rc = 0;

	for (i = 0; paths != NULL && paths[i] != NULL; i++) {
		free(path);
		path = fwd_expand(paths[i], a, user, home);
		if (path == NULL)
			continue;
		if (local_become(r, a, uid, gid) < 0) {
			rc = 1;
			goto out;
		}
		if (read_small_file(path, &data, &st) < 0) {
			e = errno;
			local_restore();
			if (e == ENOENT || e == ENOTDIR)
				continue;
			if (e == ELOOP || e == EINVAL || e == EFBIG) {
				log_warnx("%s: ignoring %s: %s", r->msg->id, path,
				    e == ELOOP ? "symbolic link" : e == EFBIG ?
				    "file too large" : "not a regular text file");
				continue;
			}
			lr_fail(r, a->addr, "4.3.0", "cannot read %s: %s", path, strerror(e));
			rc = 1;
			goto out;
		}
		local_restore();
		if (st.st_uid != uid) {
			log_warnx("%s: ignoring %s: owned by uid %ld, not %ld", r->msg->id,
			    path, (long)st.st_uid, (long)uid);
			free(data);
			data = NULL;
			continue;
		}
		break;
	}
	if (data == NULL || blank_text(data))
		goto out;
	memset(&fp, 0, sizeof(fp));
	fp.source = SRC_FORWARD;
	fp.uid = uid;
	fp.gid = gid;
	fp.user = user;
	fp.home = home;
	if (uid == 0) {
		fp.uid = lconf.nobody_uid;
		fp.gid = lconf.nobody_gid;
	}
	local_privs_fix(&fp);
	what = xasprintf(".forward file %s", path);
	local_targets(r, a, data, &fp, key, what);
	free(what);
	rc = 1;
out:
	free(data);
	free(path);
	strv_free(&paths);
	return rc;
}

/* ---- one local address ---- */

static char *
extension_of(const char *local)
{
	char *bare = addr_lookup_key(local, ""), *key = addr_lookup_key(local, lconf.delim);
	char *ext;
	size_t klen = strlen(key);

	/* The key is the bare local part cut before the delimiter. */
	if (strlen(bare) > klen && strncmp(bare, key, klen) == 0)
		ext = xstrdup(bare + klen + 1);
	else
		ext = xstrdup("");
	free(bare);
	free(key);
	return ext;
}

void
local_deliver_addr(struct lrcpt *r, const char *addr, int depth, int flags)
{
	char *local = NULL, *domain = NULL, *ext = NULL, *full = NULL, *key = NULL;
	char *value = NULL, *seen, *name = NULL, *home = NULL, *what;
	struct lprivs ap;
	struct laddr a;
	struct passwd *pw;
	uid_t uid;
	gid_t gid;
	int rc;

	if (depth > LOCAL_MAX_DEPTH) {
		lr_fail(r, addr, "5.4.6", "alias expansion too deep");
		return;
	}
	seen = xasprintf("a:%d:%s", flags, addr);
	rc = first_time(r, seen);
	free(seen);
	if (!rc)
		return;
	addr_split(addr, &local, &domain);
	str_lower(domain);
	ext = extension_of(local);
	a.addr = addr;
	a.local = local;
	a.domain = domain;
	a.ext = ext;
	a.depth = depth;
	if (local_loop(r->msg, addr)) {
		lr_fail(r, addr, "5.4.6", "mail forwarding loop for %s", addr);
		goto out;
	}
	full = addr_lookup_key(local, "");
	key = addr_lookup_key(local, lconf.delim);
	if (!(flags & LFLAG_NO_ALIAS)) {
		rc = alias_lookup(full, &value, &ap);
		if (rc == 0 && strcmp(full, key) != 0)
			rc = alias_lookup(key, &value, &ap);
		if (rc < 0) {
			lr_fail(r, addr, "4.3.0", "alias database unavailable");
			goto out;
		}
		if (rc > 0) {
			what = xasprintf("alias %s", key);
			local_targets(r, &a, value, &ap, key, what);
			free(what);
			goto out;
		}
	}
	errno = 0;
	pw = *key != '\0' ? getpwnam(key) : NULL;
	if (pw == NULL) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH && errno != EBADF &&
		    errno != EPERM)
			lr_fail(r, addr, "4.3.0", "user lookup for \"%s\" failed: %s", key,
			    strerror(errno));
		else
			lr_fail(r, addr, "5.1.1", "unknown user: \"%s\"", key);
		goto out;
	}
	/* getpwnam's storage does not survive the recursion below. */
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	name = xstrdup(pw->pw_name);
	home = xstrdup(pw->pw_dir != NULL && *pw->pw_dir != '\0' ? pw->pw_dir : "/");
	if (!(flags & LFLAG_NO_FORWARD) &&
	    dot_forward(r, &a, uid, gid, name, home, key))
		goto out;
	local_mailbox(r, &a, uid, gid, name, home);
out:
	free(local);
	free(domain);
	free(ext);
	free(full);
	free(key);
	free(value);
	free(name);
	free(home);
}

/* ---- forwarding: a new queue file for the non-local addresses ---- */

static void
add_forward(struct lrcpt *r, const struct laddr *a, const char *addr)
{
	char *k = xasprintf("f:%s", addr);
	int fresh = first_time(r, k);

	free(k);
	if (!fresh)
		return;
	r->fwd = xreallocarray(r->fwd, r->nfwd + 1, sizeof(*r->fwd));
	r->fwd[r->nfwd].addr = xstrdup(addr);
	r->fwd[r->nfwd].orig = xstrdup(a->addr);
	r->nfwd++;
}

static int
fwd_content(const char *p, size_t n, void *ctx)
{
	return queue_writer_content(ctx, p, n);
}

void
local_forward(struct lrcpt *r)
{
	static const char *const keep[] = { "envid", "ret", "body", "smtputf8" };
	struct lmsg *m = r->msg;
	struct queue_writer *w = NULL;
	struct lfwd *out = NULL;
	char **exp = NULL, **origs = NULL, *err = NULL, id[QUEUE_ID_MAX];
	size_t i, j, nout = 0;
	struct buf hdr = BUF_INIT(0);
	const char *v;
	int rc;

	if (r->nfwd == 0)
		return;
	/* Forwarded mail skips smtpd, so apply virtual_alias_maps here. */
	for (i = 0; i < r->nfwd; i++) {
		rc = lconf.res != NULL ? resolver_virtual_alias(lconf.res, r->fwd[i].addr,
		    &exp) : 0;
		if (rc < 0) {
			if (rc == -1)
				lr_fail(r, r->fwd[i].orig, "4.3.0",
				    "virtual alias lookup for %s failed", r->fwd[i].addr);
			else
				lr_fail(r, r->fwd[i].orig, "5.4.6",
				    "virtual alias loop or too many addresses for %s",
				    r->fwd[i].addr);
			strv_free(&exp);
			if (rc == -1)
				goto done;
			continue;
		}
		if (rc == 0)
			strv_push(&exp, r->fwd[i].addr);
		for (j = 0; exp != NULL && exp[j] != NULL; j++) {
			out = xreallocarray(out, nout + 1, sizeof(*out));
			out[nout].addr = xstrdup(exp[j]);
			out[nout].orig = xstrdup(r->fwd[i].orig);
			nout++;
		}
		strv_free(&exp);
	}
	if (nout == 0)
		goto done;
	w = queue_writer_open(lconf.qdir, QUEUE_INCOMING,
	    lconf.root ? lconf.owner_uid : (uid_t)-1,
	    lconf.root ? lconf.owner_gid : (gid_t)-1, &err);
	if (w == NULL)
		goto fail;
	if (queue_writer_sender(w, m->sender) < 0)
		goto fail;
	for (i = 0; i < ARRAY_SIZE(keep); i++)
		if ((v = qenv_attr(&m->env, keep[i])) != NULL &&
		    queue_writer_attr(w, keep[i], v) < 0)
			goto fail;
	for (i = 0; i < nout; i++) {
		if (queue_writer_rcpt(w, out[i].addr, out[i].orig, r->notify) < 0)
			goto fail;
		if (!strv_contains_ci(origs, out[i].orig)) {
			strv_push(&origs, out[i].orig);
			buf_printf(&hdr, "Delivered-To: %s\n", out[i].orig);
		}
	}
	if (queue_writer_content(w, hdr.data, hdr.len) < 0 ||
	    local_content(m, fwd_content, w) != 0 ||
	    queue_writer_commit(w, id) < 0)
		goto fail;
	queue_writer_free(&w);
	log_info("%s: forwarded as %s (%zu recipient%s, orig_to=<%s>)", m->id, id,
	    nout, nout == 1 ? "" : "s", r->addr);
	(void)trigger_send("qmgr", "I");
	lr_ok(r, r->addr, "forwarded as %s", id);
	goto done;
fail:
	if (err == NULL)
		err = xstrdup(strerror(errno));
	lr_fail(r, r->addr, "4.3.0", "cannot forward: %s", err);
	if (w != NULL)
		queue_writer_abort(&w);
done:
	for (i = 0; i < nout; i++) {
		free(out[i].addr);
		free(out[i].orig);
	}
	free(out);
	free(err);
	strv_free(&origs);
	buf_free(&hdr);
}
