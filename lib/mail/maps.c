/*
 * maps - Postfix-style lookup tables: lmdb:/path, static:value,
 * unix:passwd.byname, and the tables read straight from text (cidr:,
 * regexp:, pcre:, texthash:, inline:{...}; parsed by maptab.c), alone or
 * in lists; and the builder behind "postern map build" and newaliases.
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
 * Text tables follow the same contract as LMDB ones: read whole at open,
 * stat'ed at each lookup and re-read when the file changed (a new
 * map_generation). A file that is missing or has a bad line makes the
 * table unusable, not partial: its lookups fail temporarily (-1) until
 * the file is fixed, and the problem is logged once per file version.
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
#include "mail/maptab.h"

#define MAP_SOURCE_MAX ((size_t)1 << 30)
#define MAP_VALUE_MAX MAPTAB_VALUE_MAX
#define MAP_TEXT_MAX ((size_t)64 << 20)   /* cidr, regexp, pcre source */
#define MAP_SPEC_MAX 4096

enum map_type { MAP_LMDB, MAP_STATIC, MAP_UNIX_PASSWD, MAP_TEXT, MAP_INLINE };

/* The table types read from text: name, parser, whether they need a build
 * step (none does), largest source accepted. */
static const struct text_type {
	const char *name;
	enum maptab_type type;
	size_t max;
} text_types[] = {
	{ "cidr", MAPTAB_CIDR, MAP_TEXT_MAX },
	{ "regexp", MAPTAB_REGEXP, MAP_TEXT_MAX },
	{ "pcre", MAPTAB_PCRE, MAP_TEXT_MAX },
	{ "texthash", MAPTAB_HASH, MAP_SOURCE_MAX },
};

static const struct text_type *
text_type(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(text_types) / sizeof(text_types[0]); i++)
		if (strcmp(text_types[i].name, name) == 0)
			return &text_types[i];
	return NULL;
}

struct map {
	enum map_type type;
	char *spec;
	char *path;          /* lmdb: the source text file */
	char *file;          /* the file read at lookup time: path + ".lmdb",
	                      * or a text table's path */
	char *value;         /* static: */
	const struct text_type *tt;  /* text tables */
	struct maptab *tab;  /* text and inline tables; NULL while unusable */
	int seen;            /* text: dev..size describe the last file tried */
	struct db db;        /* lmdb: env and dbi below alias db's */
	MDB_env *env;
	MDB_dbi dbi;
	dev_t dev;
	ino_t ino;
	struct timespec mtim;
	off_t size;
	unsigned long gen;
	int missing;         /* the file is missing (warned once) */
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
remember_file(struct map *m, const struct stat *st)
{
	m->dev = st->st_dev;
	m->ino = st->st_ino;
	m->mtim = st->st_mtim;
	m->size = st->st_size;
}

static int
same_file(const struct map *m, const struct stat *st)
{
	return st->st_dev == m->dev && st->st_ino == m->ino &&
	    st->st_size == m->size && st->st_mtim.tv_sec == m->mtim.tv_sec &&
	    st->st_mtim.tv_nsec == m->mtim.tv_nsec;
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

	rc = db_open(&m->db, m->file, &o, &err);
	if (rc == 0) {
		m->env = m->db.env;
		m->dbi = m->db.dbi[0];
		rc = mdb_env_get_fd(m->env, &fd);
	}
	if (rc == 0 && fstat(fd, &st) != 0)
		rc = errno;
	if (rc != 0) {
		if (err_r != NULL)
			*err_r = xasprintf("%s: open %s: %s", m->spec, m->file,
			    lmdb_err(rc));
		free(err);
		lmdb_close_env(m);
		return -1;
	}
	/* db_open made it close-on-exec: local's commands do not inherit it */
	remember_file(m, &st);
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
		log_warnx("%s: %s: %s; lookups fail temporarily until it is %s",
		    m->spec, m->file, strerror(ENOENT),
		    m->type == MAP_LMDB ? "built" : "created");
	m->missing = 1;
}

/* Read and parse a text table; replaces m->tab only on success. On a bad
 * line m->tab is dropped (the table is unusable, never half-loaded) and
 * the file version is remembered, so it is parsed again only once it
 * changes. 0, or -1 and *err_r. */
static int
text_load(struct map *m, const struct stat *st, char **err_r)
{
	struct maptab *t;
	char *text = NULL;
	size_t len = 0;

	maptab_free(&m->tab);
	if (file_read_all(m->file, m->tt->max, &text, &len) != 0) {
		/* not remembered: a chmod does not change what is compared,
		 * so an unreadable file is tried again at each lookup */
		*err_r = xasprintf("%s: read %s: %s", m->spec, m->file,
		    strerror(errno));
		m->seen = 0;
		return -1;
	}
	remember_file(m, st);
	m->seen = 1;
	t = maptab_parse(m->tt->type, m->file, text, len, err_r);
	free(text);
	if (t == NULL)
		return -1;
	m->tab = t;
	m->gen++;
	return 0;
}

int
map_refresh(struct map *m)
{
	struct stat st;
	char *err = NULL;
	int usable;

	if (m->type != MAP_LMDB && m->type != MAP_TEXT)
		return 0;
	if (stat(m->file, &st) != 0) {
		if (errno == ENOENT)
			set_missing(m);
		else
			log_warn("%s: stat %s", m->spec, m->file);
		return -1;
	}
	usable = m->type == MAP_LMDB ? m->env != NULL : m->tab != NULL;
	if ((usable || m->seen) && same_file(m, &st))
		return usable ? 0 : -1;
	if (m->type == MAP_TEXT) {
		if (text_load(m, &st, &err) != 0) {
			log_warnx("%s; lookups fail temporarily until it is fixed", err);
			free(err);
			return -1;
		}
	} else {
		lmdb_close_env(m);
		if (lmdb_open_env(m, &err) != 0) {
			log_warnx("%s", err);
			free(err);
			return -1;
		}
	}
	if (m->missing || (m->seen && !usable))
		log_info("%s: %s is available now", m->spec, m->file);
	m->missing = 0;
	return 1;
}

int
map_has_keys(const struct map *m)
{
	return m->type == MAP_LMDB || m->type == MAP_INLINE ||
	    (m->type == MAP_TEXT && m->tt->type == MAPTAB_HASH);
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
		m->file = xasprintf("%s.lmdb", name);
		if (lazy && stat(m->file, &st) != 0 && errno == ENOENT) {
			set_missing(m);
		} else if (lmdb_open_env(m, err_r) != 0)
			goto fail;
	} else if ((m->tt = text_type(type)) != NULL) {
		m->type = MAP_TEXT;
		if (*name == '\0') {
			*err_r = xasprintf("%s: missing file name", spec);
			goto fail;
		}
		m->file = xstrdup(name);
		if (stat(m->file, &st) != 0) {
			if (!lazy || errno != ENOENT) {
				*err_r = xasprintf("%s: open %s: %s", spec, m->file,
				    strerror(errno));
				goto fail;
			}
			set_missing(m);
		} else if (text_load(m, &st, err_r) != 0) {
			if (!lazy)
				goto fail;
			/* a daemon keeps running; its lookups fail temporarily */
			log_warnx("%s; lookups fail temporarily until it is fixed",
			    *err_r);
			xfree(err_r);
		}
	} else if (strcmp(type, "inline") == 0) {
		m->type = MAP_INLINE;
		if (spec[strlen(type) + 1] != '{') {
			*err_r = xasprintf("%s: expected inline:{key=value, ...}", spec);
			goto fail;
		}
		if ((m->tab = maptab_parse_inline(spec, name, err_r)) == NULL)
			goto fail;
		m->gen = 1;     /* loaded once and for all */
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
	maptab_free(&m->tab);
	free(m->spec);
	free(m->path);
	free(m->file);
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
	if (m->type == MAP_INLINE)
		return maptab_lookup(m->tab, key, value_r);
	if (m->type == MAP_TEXT) {
		/* regexp and pcre see the key as written: their results may
		 * copy parts of it, and their i flag decides about case */
		if (map_refresh(m) < 0)
			return -1;
		return maptab_lookup(m->tab, key, value_r);
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
map_foreach_result(struct map *m, int (*cb)(const char *result, void *ctx),
    void *ctx)
{
	if (m->type == MAP_STATIC)
		return cb(m->value, ctx);
	if ((m->type == MAP_TEXT || m->type == MAP_INLINE) && m->tab != NULL)
		return maptab_foreach_result(m->tab, cb, ctx);
	return 0;
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
	if (m->type == MAP_TEXT && map_refresh(m) < 0) {
		*err_r = xasprintf("%s: cannot read %s", m->spec, m->file);
		return -1;
	}
	if (m->type == MAP_STATIC || ((m->type == MAP_TEXT ||
	    m->type == MAP_INLINE) && !maptab_listable(m->tab))) {
		*err_r = xasprintf("%s: table cannot be listed", m->spec);
		return -1;
	}
	if (m->type == MAP_TEXT || m->type == MAP_INLINE)
		return maptab_foreach(m->tab, cb, ctx);
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
		*err_r = xasprintf("%s: cannot open %s", m->spec, m->file);
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
		*err_r = xasprintf("%s: read %s: %s", m->spec, m->file,
		    lmdb_err(rc));
		return -1;
	}
	return r;
}

/* Map lists */

char **
map_split_list(const char *s)
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
	v = map_split_list(specs ? specs : "");
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

struct maplist *
maplist_open_param(const char *param, char **err_r)
{
	const char *spec = config_str(param);
	struct maplist *ml;
	char *err = NULL;

	*err_r = NULL;
	if (*spec == '\0')
		return NULL;
	if ((ml = maplist_open(spec, &err)) == NULL) {
		*err_r = xasprintf("%s: %s", param, err != NULL ? err : "cannot open");
		free(err);
	}
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
maplist_lookup_addr(struct maplist *ml, const char *addr, char **value_r)
{
	const char *at;
	int r = maplist_lookup(ml, addr, value_r);

	if (r == 0 && (at = strrchr(addr, '@')) != NULL)
		r = maplist_lookup(ml, at, value_r);
	return r;
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

/* "Building" a table read from text: check it, build nothing. 1 and a
 * note in *err_r; -1 unreadable; -2 a bad line. */
static int
check_text(const char *spec, const char *type, const char *name,
    char **err_r)
{
	struct map *m;
	struct stat st;

	if (strcmp(type, "inline") != 0 && stat(name, &st) != 0) {
		*err_r = xasprintf("%s: open %s: %s", spec, name, strerror(errno));
		return -1;
	}
	if ((m = map_open(spec, err_r)) == NULL)
		return -2;
	map_close(&m);
	*err_r = xasprintf("%s: %s tables are read directly; nothing to build",
	    spec, type);
	return 1;
}

int
map_build(const char *spec, char **err_r)
{
	struct buf line = BUF_INIT(0);
	struct entry *e = NULL;
	struct lline ll;
	char *type = NULL, *path = NULL, *text = NULL, *file = NULL, *tmp = NULL;
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
	if (text_type(type) != NULL || strcmp(type, "inline") == 0) {
		ret = check_text(spec, type, path, err_r);
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
		why = maptab_parse_entry(line.data, &key, &value);
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
	file = xasprintf("%s.lmdb", path);
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
	if (chmod(tmp, 0644) != 0 || rename(tmp, file) != 0) {
		*err_r = xasprintf("install %s: %s", file, strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	if (fsync_parent(file) != 0) {
		*err_r = xasprintf("fsync directory of %s: %s", file,
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
	free(file);
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
