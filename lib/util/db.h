/*
 * db - the one LMDB layer: open an environment, run read and write
 * transactions, and turn MDB_* codes into our errors in exactly one place.
 *
 * It handles LMDB's real failure modes so callers do not: a write that hits
 * MDB_MAP_FULL is aborted, the map doubled (up to max_mapsize) and the
 * whole transaction function run again; MDB_MAP_RESIZED (another process
 * grew the map) adopts the new size and retries; db_open() clears reader
 * slots left by dead processes (mdb_reader_check). Transactions live only
 * inside db_read()/db_write(): no caller can keep one open across a wait.
 *
 * Ownership: struct db is the caller's (db_close). Knows nothing of mail.
 */
#ifndef POSTERN_DB_H
#define POSTERN_DB_H

#include <lmdb.h>
#include <stddef.h>
#include <sys/types.h>

#define DB_MAXDBS 8

struct db {
	MDB_env *env;
	MDB_dbi dbi[DB_MAXDBS];
	size_t ndbi;
	size_t mapsize;
	size_t max_mapsize;
	char *path;
};

struct db_opts {
	unsigned flags;          /* extra mdb_env_open flags (MDB_NOSUBDIR ...) */
	mode_t mode;             /* file mode for created files */
	size_t mapsize;          /* initial; 0: 1 MiB */
	size_t max_mapsize;      /* growth limit; 0: 16 GiB */
	const char *const *dbs;  /* named databases to open/create; NULL: the main one */
};

/* The text for an MDB_* code or errno (the one translation point). */
const char *db_strerror(int rc);
/* 1 if rc means the file is not a usable LMDB environment (corrupt,
 * invalid, version mismatch): rebuild rather than retry. */
int db_rc_corrupt(int rc);

/* Open (creating) path; opens or creates every named database. 0, or an
 * MDB_* / errno code with *err_r xmalloc'd. */
int db_open(struct db *d, const char *path, const struct db_opts *o, char **err_r);
void db_close(struct db *d);

/* Run fn(txn, ctx) in a write transaction and commit when it returns 0;
 * abort when it returns non-zero: an MDB_* code or errno (*err_r set here),
 * or the caller's own code in -999..-1 (returned as is, *err_r untouched:
 * fn reports through its ctx). Map full: grow and run
 * fn again from the start - fn must not have effects outside the
 * transaction that a rerun would repeat wrongly. 0 or the error code with
 * *err_r (when fn did not set it). */
int db_write(struct db *d, int (*fn)(MDB_txn *txn, void *ctx), void *ctx, char **err_r);
/* The same, read-only (never commits). */
int db_read(struct db *d, int (*fn)(MDB_txn *txn, void *ctx), void *ctx, char **err_r);

#endif
