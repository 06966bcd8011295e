/*
 * db - LMDB environments and transactions with LMDB's failure modes
 * handled in one place (see db.h).
 *
 * Invariants: every MDB_* code that leaves this file has gone through
 * db_strerror(); a transaction never outlives db_read()/db_write(); the
 * map only grows, doubling, and never past max_mapsize.
 * Limits: MDB_NOTLS is always set (a process may keep several read
 * transactions on one thread); fn is rerun after a map-full abort, so it
 * must be a pure function of what it reads in the transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/db.h"

#define DB_MAPSIZE_DEFAULT ((size_t)1 << 20)
#define DB_MAPSIZE_MAX ((size_t)16 << 30)
#define DB_RETRIES 40

const char *
db_strerror(int rc)
{
	/* mdb_strerror covers errno values too */
	return mdb_strerror(rc);
}

int
db_rc_corrupt(int rc)
{
	return rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_VERSION_MISMATCH ||
	    rc == MDB_PAGE_NOTFOUND || rc == MDB_BAD_DBI || rc == MDB_INCOMPATIBLE;
}

static int
db_fail(int rc, char **err_r, const char *what, const char *path)
{
	if (err_r != NULL && *err_r == NULL)
		*err_r = xasprintf("%s %s: %s", what, path, db_strerror(rc));
	return rc;
}

void
db_close(struct db *d)
{
	if (d->env != NULL)
		mdb_env_close(d->env);
	d->env = NULL;
	free(d->path);
	d->path = NULL;
	d->ndbi = 0;
}

int
db_open(struct db *d, const char *path, const struct db_opts *o, char **err_r)
{
	MDB_txn *txn = NULL;
	size_t i, ndbs = 0;
	int rc, fd, dead;

	memset(d, 0, sizeof(*d));
	d->path = xstrdup(path);
	d->mapsize = o->mapsize != 0 ? o->mapsize : DB_MAPSIZE_DEFAULT;
	d->max_mapsize = o->max_mapsize != 0 ? o->max_mapsize : DB_MAPSIZE_MAX;
	while (o->dbs != NULL && o->dbs[ndbs] != NULL)
		ndbs++;
	if (ndbs > DB_MAXDBS) {
		db_close(d);
		return db_fail(EINVAL, err_r, "open", path);
	}
	rc = mdb_env_create(&d->env);
	if (rc == 0 && ndbs > 0)
		rc = mdb_env_set_maxdbs(d->env, (MDB_dbi)ndbs);
	if (rc == 0)
		rc = mdb_env_set_mapsize(d->env, d->mapsize);
	if (rc == 0)
		rc = mdb_env_open(d->env, path, o->flags | MDB_NOTLS, o->mode);
	if (rc == 0) {
		/* An existing file may be bigger than our initial map. */
		MDB_envinfo info;

		if (mdb_env_info(d->env, &info) == 0 && info.me_mapsize > d->mapsize)
			d->mapsize = info.me_mapsize;
		/* Reader slots of processes that died inside a read. */
		if (!(o->flags & (MDB_RDONLY | MDB_NOLOCK)))
			(void)mdb_reader_check(d->env, &dead);
		if (mdb_env_get_fd(d->env, &fd) == 0)
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	if (rc == 0)
		rc = mdb_txn_begin(d->env, NULL, (o->flags & MDB_RDONLY) ? MDB_RDONLY : 0, &txn);
	for (i = 0; rc == 0 && i < (ndbs > 0 ? ndbs : 1); i++) {
		rc = mdb_dbi_open(txn, ndbs > 0 ? o->dbs[i] : NULL,
		    (o->flags & MDB_RDONLY) ? 0 : MDB_CREATE, &d->dbi[i]);
		d->ndbi = i + 1;
	}
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc != 0) {
		db_fail(rc, err_r, "open", path);
		db_close(d);
	}
	return rc;
}

/* Another process grew the map: adopt its size. */
static int
adopt_size(struct db *d)
{
	MDB_envinfo info;
	int rc = mdb_env_set_mapsize(d->env, 0);

	if (rc == 0 && mdb_env_info(d->env, &info) == 0)
		d->mapsize = info.me_mapsize;
	return rc;
}

static int
grow(struct db *d)
{
	size_t want;

	if (d->mapsize >= d->max_mapsize)
		return MDB_MAP_FULL;
	want = d->mapsize * 2 > d->max_mapsize ? d->max_mapsize : d->mapsize * 2;
	/* Legal only with no transaction of ours open: there is none. */
	if (mdb_env_set_mapsize(d->env, want) != 0)
		return MDB_MAP_FULL;
	d->mapsize = want;
	return 0;
}

static int
run(struct db *d, int write, int (*fn)(MDB_txn *, void *), void *ctx, char **err_r)
{
	MDB_txn *txn;
	int rc, tries;

	for (tries = 0; tries < DB_RETRIES; tries++) {
		txn = NULL;
		rc = mdb_txn_begin(d->env, NULL, write ? 0 : MDB_RDONLY, &txn);
		if (rc == MDB_MAP_RESIZED) {
			if ((rc = adopt_size(d)) != 0)
				break;
			continue;
		}
		if (rc != 0)
			break;
		rc = fn(txn, ctx);
		if (rc != 0 || !write) {
			mdb_txn_abort(txn);
			if (rc == MDB_MAP_FULL && write && (rc = grow(d)) == 0)
				continue;
			if (rc == MDB_MAP_RESIZED && (rc = adopt_size(d)) == 0)
				continue;
			break;
		}
		rc = mdb_txn_commit(txn);
		if (rc == MDB_MAP_FULL && (rc = grow(d)) == 0)
			continue;
		break;
	}
	if (rc > 0 || rc <= -1000)
		db_fail(rc, err_r, write ? "write" : "read", d->path);
	return rc;
}

int
db_write(struct db *d, int (*fn)(MDB_txn *txn, void *ctx), void *ctx, char **err_r)
{
	return run(d, 1, fn, ctx, err_r);
}

int
db_read(struct db *d, int (*fn)(MDB_txn *txn, void *ctx), void *ctx, char **err_r)
{
	return run(d, 0, fn, ctx, err_r);
}
