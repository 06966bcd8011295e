/*
 * maps - Postfix-style lookup tables: lmdb:/path, static:value and
 * unix:passwd.byname, alone or in lists; and the builder behind
 * "postern map build" and newaliases.
 *
 * Invariants: keys are stored and looked up in lower case. An LMDB table
 * is only ever replaced whole: the builder writes /path.lmdb.tmp.PID and
 * renames it over /path.lmdb, so a reader's mapping stays a consistent
 * old version until its next lookup, which stats the path and reopens
 * onto the new inode. Readers open read-only with MDB_NOLOCK: with no
 * writer ever touching a published file, no lock table is needed.
 * LMDB environments, transactions and MDB_* error texts come from the one
 * LMDB layer, lib/util/db.c (lmdb_err() is its db_strerror()).
 *
 * Trusts: the source text not at all (every line checked, errors name
 * file:line); the .lmdb file as much as LMDB itself does (it is written
 * by root-run tools in root-owned directories).
 *
 * Limits: LMDB keys are at most mdb_env_get_maxkeysize() (511) bytes; a
 * longer lookup key is simply not found. No quoted keys in aliases files.
 * The whole source is read into memory to build.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/db.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/config.h"
#include "mail/maps.h"

#define MAP_SOURCE_MAX ((size_t)1 << 30)
#define MAP_VALUE_MAX (1024 * 1024)
#define MAP_SPEC_MAX 4096

enum map_type { MAP_LMDB, MAP_STATIC, MAP_UNIX_PASSWD };

struct map {
	enum map_type type;
	char *spec;
	char *path;          /* lmdb: the source text file */
	char *dbpath;        /* lmdb: path + ".lmdb" */
	char *value;         /* static: */
	struct db db;        /* lmdb: env and dbi below alias db's */
	MDB_env *env;
	MDB_dbi dbi;
	dev_t dev;
	ino_t ino;
	struct timespec mtim;
	off_t size;
	unsigned long gen;
	int missing;         /* lmdb: the file is missing (warned once) */
};

struct maplist {
	struct map **v;
	size_t n;
};

static const char *
lmdb_err(int rc)
{
	return db_strerror(rc);
}

static void
lmdb_close_env(struct map *m)
{
	db_close(&m->db);
	m->env = NULL;
}

static int
lmdb_open_env(struct map *m, char **err_r)
{
	static const struct db_opts o = {
		.flags = MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, .mode = 0644 };
	struct stat st;
	char *err = NULL;
	int rc, fd;

	rc = db_open(&m->db, m->dbpath, &o, &err);
	if (rc == 0) {
		m->env = m->db.env;
		m->dbi = m->db.dbi[0];
		rc = mdb_env_get_fd(m->env, &fd);
	}
	if (rc == 0 && fstat(fd, &st) != 0)
		rc = errno;
	if (rc != 0) {
		if (err_r != NULL)
			*err_r = xasprintf("%s: open %s: %s", m->spec, m->dbpath,
			    lmdb_err(rc));
		free(err);
		lmdb_close_env(m);
		return -1;
	}
	/* db_open made it close-on-exec: local's commands do not inherit it */
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	m->mtim = st.st_mtim;
	m->size = st.st_size;
	m->gen++;
	return 0;
}

/* The table file is gone or not built yet: lookups fail temporarily
 * (callers defer or answer 4xx) and every lookup tries again, so building
 * it later needs no restart. Said once, not per lookup. */
static void
set_missing(struct map *m)
{
	if (!m->missing)
		log_warnx("%s: %s: %s; lookups fail temporarily until it is built",
		    m->spec, m->dbpath, strerror(ENOENT));
	m->missing = 1;
}

int
map_refresh(struct map *m)
{
	struct stat st;
	char *err = NULL;

	if (m->type != MAP_LMDB)
		return 0;
	if (stat(m->dbpath, &st) != 0) {
		if (errno == ENOENT)
			set_missing(m);
		else
			log_warn("%s: stat %s", m->spec, m->dbpath);
		return -1;
	}
	if (m->env != NULL && st.st_dev == m->dev && st.st_ino == m->ino &&
	    st.st_size == m->size && st.st_mtim.tv_sec == m->mtim.tv_sec &&
	    st.st_mtim.tv_nsec == m->mtim.tv_nsec)
		return 0;
	lmdb_close_env(m);
	if (lmdb_open_env(m, &err) != 0) {
		log_warnx("%s", err);
		free(err);
		return -1;
	}
	if (m->missing)
		log_info("%s: %s is available now", m->spec, m->dbpath);
	m->missing = 0;
	return 1;
}

unsigned long
map_generation(const struct map *m)
{
	return m->gen;
}

const char *
map_spec(const struct map *m)
{
	return m->spec;
}

/* Split "type:name"; a "{...}" name loses its braces. */
static int
spec_split(const char *spec, char **type_r, char **name_r)
{
	const char *colon = strchr(spec, ':');
	size_t n;

	if (colon == NULL || colon == spec)
		return -1;
	*type_r = xstrndup(spec, (size_t)(colon - spec));
	colon++;
	n = strlen(colon);
	if (n >= 2 && colon[0] == '{' && colon[n - 1] == '}')
		*name_r = str_trim(xstrndup(colon + 1, n - 2));
	else
		*name_r = xstrdup(colon);
	return 0;
}

/* lazy: an lmdb file that does not exist yet is not an error (see
 * set_missing); everything else still is. */
static struct map *
map_open_lazy(const char *spec, int lazy, char **err_r)
{
	struct map *m;
	struct stat st;
	char *type = NULL, *name = NULL;

	*err_r = NULL;
	if (spec == NULL || strlen(spec) > MAP_SPEC_MAX) {
		*err_r = xstrdup("map name too long");
		return NULL;
	}
	if (spec_split(spec, &type, &name) != 0) {
		*err_r = xasprintf("%s: bad map name: expected type:name", spec);
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	m->spec = xstrdup(spec);
	if (strcmp(type, "lmdb") == 0) {
		m->type = MAP_LMDB;
		if (*name == '\0') {
			*err_r = xasprintf("%s: missing file name", spec);
			goto fail;
		}
		m->path = xstrdup(name);
		m->dbpath = xasprintf("%s.lmdb", name);
		if (lazy && stat(m->dbpath, &st) != 0 && errno == ENOENT) {
			set_missing(m);
		} else if (lmdb_open_env(m, err_r) != 0)
			goto fail;
	} else if (strcmp(type, "static") == 0) {
		m->type = MAP_STATIC;
		m->value = xstrdup(name);
	} else if (strcmp(type, "unix") == 0) {
		m->type = MAP_UNIX_PASSWD;
		if (strcmp(name, "passwd.byname") != 0) {
			*err_r = xasprintf("%s: unsupported unix table '%s'", spec, name);
			goto fail;
		}
	} else {
		*err_r = xasprintf("%s: unsupported map type '%s'", spec, type);
		goto fail;
	}
	free(type);
	free(name);
	return m;
fail:
	free(type);
	free(name);
	map_close(&m);
	return NULL;
}

struct map *
map_open(const char *spec, char **err_r)
{
	return map_open_lazy(spec, 0, err_r);
}

void
map_close(struct map **mp)
{
	struct map *m = *mp;

	if (m == NULL)
		return;
	lmdb_close_env(m);
	free(m->spec);
	free(m->path);
	free(m->dbpath);
	free(m->value);
	free(m);
	*mp = NULL;
}

static char *passwd_line(const struct passwd *pw);

static int
passwd_lookup(const char *key, char **value_r)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(key);
	if (pw == NULL) {
		if (errno == 0 || errno == ENOENT || errno == ESRCH ||
		    errno == EBADF || errno == EPERM)
			return 0;
		log_warn("getpwnam %s", key);
		return -1;
	}
	*value_r = passwd_line(pw);
	return 1;
}

static char *
passwd_line(const struct passwd *pw)
{
	/* never expose a password field, even a shadowed "x" */
	return xasprintf("%s:x:%lu:%lu:%s:%s:%s", pw->pw_name,
	    (unsigned long)pw->pw_uid, (unsigned long)pw->pw_gid,
	    pw->pw_gecos ? pw->pw_gecos : "", pw->pw_dir ? pw->pw_dir : "",
	    pw->pw_shell ? pw->pw_shell : "");
}

int
map_lookup(struct map *m, const char *key, char **value_r)
{
	MDB_txn *txn = NULL;
	MDB_val k, v;
	char *lkey;
	int rc, r;

	*value_r = NULL;
	if (m->type == MAP_STATIC) {
		*value_r = xstrdup(m->value);
		return 1;
	}
	lkey = str_lower(xstrdup(key));
	if (m->type == MAP_UNIX_PASSWD) {
		r = *lkey == '\0' ? 0 : passwd_lookup(lkey, value_r);
		free(lkey);
		return r;
	}
	if (map_refresh(m) < 0) {
		free(lkey);
		return -1;
	}
	k.mv_data = lkey;
	k.mv_size = strlen(lkey);
	if (k.mv_size == 0 || k.mv_size > (size_t)mdb_env_get_maxkeysize(m->env)) {
		free(lkey);
		return 0;
	}
	rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn);
	if (rc == 0)
		rc = mdb_get(txn, m->dbi, &k, &v);
	if (rc == 0) {
		*value_r = xstrndup(v.mv_data, v.mv_size);
		r = 1;
	} else if (rc == MDB_NOTFOUND) {
		r = 0;
	} else {
		log_warnx("%s: lookup %s: %s", m->spec, lkey, lmdb_err(rc));
		r = -1;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	free(lkey);
	return r;
}

int
map_foreach(struct map *m, int (*cb)(const char *key, const char *value,
    void *ctx), void *ctx, char **err_r)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	struct passwd *pw;
	char *key, *val;
	int rc, r = 0;

	*err_r = NULL;
	if (m->type == MAP_STATIC) {
		*err_r = xasprintf("%s: table cannot be listed", m->spec);
		return -1;
	}
	if (m->type == MAP_UNIX_PASSWD) {
		setpwent();
		while (r == 0 && (pw = getpwent()) != NULL) {
			char *lkey = str_lower(xstrdup(pw->pw_name));

			val = passwd_line(pw);
			r = cb(lkey, val, ctx);
			free(val);
			free(lkey);
		}
		endpwent();
		return r;
	}
	if (map_refresh(m) < 0) {
		*err_r = xasprintf("%s: cannot open %s", m->spec, m->dbpath);
		return -1;
	}
	rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn);
	if (rc == 0)
		rc = mdb_cursor_open(txn, m->dbi, &cur);
	while (rc == 0 && r == 0) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		if (rc != 0)
			break;
		key = xstrndup(k.mv_data, k.mv_size);
		val = xstrndup(v.mv_data, v.mv_size);
		r = cb(key, val, ctx);
		free(key);
		free(val);
	}
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		*err_r = xasprintf("%s: read %s: %s", m->spec, m->dbpath,
		    lmdb_err(rc));
		return -1;
	}
	return r;
}

/* Map lists */

/* Split a list at commas and white space, keeping "{...}" together. */
static char **
split_specs(const char *s)
{
	char **v = xcalloc(1, sizeof(char *));
	const char *start;
	int depth;

	for (;;) {
		while (*s == ',' || isspace((unsigned char)*s))
			s++;
		if (*s == '\0')
			break;
		start = s;
		depth = 0;
		while (*s != '\0' && (depth > 0 ||
		    (*s != ',' && !isspace((unsigned char)*s)))) {
			if (*s == '{')
				depth++;
			else if (*s == '}' && depth > 0)
				depth--;
			s++;
		}
		{
			char *item = xstrndup(start, (size_t)(s - start));

			strv_push(&v, item);
			free(item);
		}
	}
	return v;
}

struct maplist *
maplist_open(const char *specs, char **err_r)
{
	struct maplist *ml = xcalloc(1, sizeof(*ml));
	char **v;
	size_t i;

	*err_r = NULL;
	v = split_specs(specs ? specs : "");
	for (i = 0; v[i] != NULL; i++) {
		struct map *m = map_open_lazy(v[i], 1, err_r);

		if (m == NULL) {
			strv_free(&v);
			maplist_close(&ml);
			return NULL;
		}
		ml->v = xreallocarray(ml->v, ml->n + 1, sizeof(*ml->v));
		ml->v[ml->n++] = m;
	}
	strv_free(&v);
	return ml;
}

int
maplist_lookup(struct maplist *ml, const char *key, char **value_r)
{
	size_t i;
	int r;

	*value_r = NULL;
	if (ml == NULL)
		return 0;
	for (i = 0; i < ml->n; i++) {
		r = map_lookup(ml->v[i], key, value_r);
		/* a failure must not let a later table answer in its place */
		if (r != 0)
			return r;
	}
	return 0;
}

int
maplist_empty(const struct maplist *ml)
{
	return ml == NULL || ml->n == 0;
}

size_t
maplist_count(const struct maplist *ml)
{
	return ml ? ml->n : 0;
}

struct map *
maplist_get(const struct maplist *ml, size_t i)
{
	return ml != NULL && i < ml->n ? ml->v[i] : NULL;
}

void
maplist_close(struct maplist **mlp)
{
	struct maplist *ml = *mlp;
	size_t i;

	if (ml == NULL)
		return;
	for (i = 0; i < ml->n; i++)
		map_close(&ml->v[i]);
	free(ml->v);
	free(ml);
	*mlp = NULL;
}

/* Building */

struct entry {
	char *key;
	char *value;
	int lineno;
};

static void
entries_free(struct entry *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(e[i].key);
		free(e[i].value);
	}
	free(e);
}

/* Parse one logical line into key and value; NULL or the problem. */
static const char *
parse_entry(char *line, char **key_r, char **value_r)
{
	char *p = line, *key, *value;
	size_t n;

	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	if (*p == '\0') {
		/* aliases(5) lets "name:value" go without a blank */
		p = strchr(line, ':');
		if (p == NULL || p[1] == '\0')
			return "expected format: key whitespace value";
		*p++ = '\0';
		key = line;
		value = p;
	} else {
		*p++ = '\0';
		key = line;
		value = p;
	}
	n = strlen(key);
	if (n > 0 && key[n - 1] == ':')
		key[--n] = '\0';
	if (n == 0)
		return "missing key";
	str_trim(value);
	if (*value == '\0')
		return "expected format: key whitespace value";
	if (strlen(value) > MAP_VALUE_MAX)
		return "value too long";
	*key_r = str_lower(xstrdup(key));
	*value_r = xstrdup(value);
	return NULL;
}

struct build_ctx {
	const char *src;
	struct entry *e;
	size_t n;
	MDB_dbi dbi;
	size_t maxkey;
	int pass;            /* duplicates are warned about on the first only */
	char *err;
};

static int
build_fn(MDB_txn *txn, void *ctx)
{
	struct build_ctx *bc = ctx;
	MDB_val k, v;
	size_t i;
	int rc;

	for (i = 0; i < bc->n; i++) {
		if (strlen(bc->e[i].key) > bc->maxkey) {
			bc->err = xasprintf("%s:%d: key longer than %zu bytes", bc->src,
			    bc->e[i].lineno, bc->maxkey);
			return -2;
		}
		k.mv_data = bc->e[i].key;
		k.mv_size = strlen(bc->e[i].key);
		v.mv_data = bc->e[i].value;
		v.mv_size = strlen(bc->e[i].value);
		rc = mdb_put(txn, bc->dbi, &k, &v, MDB_NOOVERWRITE);
		if (rc == MDB_KEYEXIST) {
			if (bc->pass == 0)
				log_warnx("%s:%d: duplicate entry for \"%s\" ignored", bc->src,
				    bc->e[i].lineno, bc->e[i].key);
			continue;
		}
		if (rc != 0) {
			bc->pass++;
			return rc;   /* map full: db_write grows the map and reruns */
		}
	}
	return 0;
}

/* Write all entries into a fresh LMDB file at tmp. 0, -1 (err), -2 (source). */
static int
write_lmdb(const char *tmp, const char *src, struct entry *e, size_t n,
    size_t mapsize, char **err_r)
{
	struct db_opts o = { .flags = MDB_NOSUBDIR | MDB_NOLOCK, .mode = 0644,
	    .mapsize = mapsize, .max_mapsize = (size_t)1 << 40 };
	struct build_ctx bc = { .src = src, .e = e, .n = n };
	struct db d;
	char *err = NULL;
	int rc;

	(void)unlink(tmp);
	if (db_open(&d, tmp, &o, &err) != 0) {
		*err_r = xasprintf("create %s: %s", tmp, err != NULL ? err : "?");
		free(err);
		(void)unlink(tmp);
		return -1;
	}
	bc.dbi = d.dbi[0];
	bc.maxkey = (size_t)mdb_env_get_maxkeysize(d.env);
	rc = db_write(&d, build_fn, &bc, &err);
	if (rc == 0)
		rc = mdb_env_sync(d.env, 1);
	if (rc != 0) {
		if (bc.err != NULL)
			*err_r = bc.err;
		else
			*err_r = xasprintf("write %s: %s", tmp, err != NULL ? err :
			    lmdb_err(rc));
		free(err);
		db_close(&d);
		(void)unlink(tmp);
		return rc == -2 ? -2 : -1;
	}
	db_close(&d);
	return 0;
}

int
map_build(const char *spec, char **err_r)
{
	struct buf line = BUF_INIT(0);
	struct entry *e = NULL;
	struct lline ll;
	char *type = NULL, *path = NULL, *text = NULL, *dbpath = NULL, *tmp = NULL;
	char *key, *value;
	const char *why;
	size_t len = 0, n = 0, cap = 0, mapsize;
	int lineno, r, ret = -1;

	*err_r = NULL;
	if (spec == NULL || spec_split(spec, &type, &path) != 0) {
		*err_r = xasprintf("%s: bad map name: expected type:name",
		    spec ? spec : "");
		ret = -2;
		goto out;
	}
	if (strcmp(type, "lmdb") != 0) {
		*err_r = xasprintf("%s: map type '%s' cannot be built", spec, type);
		ret = -2;
		goto out;
	}
	if (*path == '\0') {
		*err_r = xasprintf("%s: missing file name", spec);
		ret = -2;
		goto out;
	}
	if (file_read_all(path, MAP_SOURCE_MAX, &text, &len) != 0) {
		*err_r = xasprintf("open %s: %s", path, strerror(errno));
		goto out;
	}
	lline_init(&ll, text, len);
	ll.max = MAP_VALUE_MAX + 1024;
	while ((r = lline_next(&ll, &line, &lineno, &why)) != 0) {
		if (r < 0) {
			*err_r = xasprintf("%s:%d: %s", path, lineno, why);
			ret = -2;
			goto out;
		}
		why = parse_entry(line.data, &key, &value);
		if (why != NULL) {
			*err_r = xasprintf("%s:%d: %s", path, lineno, why);
			ret = -2;
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			e = xreallocarray(e, cap, sizeof(*e));
		}
		e[n].key = key;
		e[n].value = value;
		e[n].lineno = lineno;
		n++;
	}
	dbpath = xasprintf("%s.lmdb", path);
	tmp = xasprintf("%s.lmdb.tmp.%ld", path, (long)getpid());
	/* mapsize only reserves address space; the file grows as written,
	 * and db_write() grows the map if this guess is short */
	mapsize = len * 4 + n * 64 + 1024 * 1024;
	r = write_lmdb(tmp, path, e, n, mapsize, err_r);
	if (r != 0) {
		ret = r;
		goto out;
	}
	/* readable by mail_owner whatever the umask */
	if (chmod(tmp, 0644) != 0 || rename(tmp, dbpath) != 0) {
		*err_r = xasprintf("install %s: %s", dbpath, strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	if (fsync_parent(dbpath) != 0) {
		*err_r = xasprintf("fsync directory of %s: %s", dbpath,
		    strerror(errno));
		goto out;
	}
	ret = 0;
out:
	entries_free(e, n);
	buf_free(&line);
	free(text);
	free(type);
	free(path);
	free(dbpath);
	free(tmp);
	return ret;
}

static int
list_cb(const char *key, const char *value, void *ctx)
{
	FILE *out = ctx;

	return fprintf(out, "%s %s\n", key, value) < 0 ? -1 : 0;
}

int
map_list(const char *spec, FILE *out, char **err_r)
{
	struct map *m = map_open(spec, err_r);
	int r;

	if (m == NULL)
		return -1;
	r = map_foreach(m, list_cb, out, err_r);
	map_close(&m);
	if (r != 0 && *err_r == NULL)
		*err_r = xasprintf("%s: write error", spec);
	return r == 0 ? 0 : -1;
}
