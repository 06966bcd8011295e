/*
 * test_db - the one LMDB layer: a write that overflows a tiny map grows it
 * and succeeds; a map grown by another process is adopted; a reader killed
 * inside its transaction leaves no slot behind; a caller's own code passes
 * through untouched; corrupt files are told apart from passing trouble.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/db.h"

static char dir[64], path[128];
static const char *const names[] = { "a", "b", NULL };

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_db.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db", dir);
}

static void
teardown(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)system(cmd);
}

static void
open_small(struct db *d, size_t mapsize)
{
	struct db_opts o = { .flags = MDB_NOSUBDIR, .mode = 0600, .mapsize = mapsize,
	    .dbs = names };
	char *err = NULL;

	if (db_open(d, path, &o, &err) != 0)
		ck_abort_msg("db_open: %s", err);
}

struct fill {
	struct db *d;
	int from, count;
	size_t vsize;
};

static int
fill_fn(MDB_txn *txn, void *ctx)
{
	struct fill *f = ctx;
	static char val[8192];
	char key[32];
	MDB_val k, v;
	int i, rc;

	memset(val, 'v', sizeof(val));
	for (i = f->from; i < f->from + f->count; i++) {
		snprintf(key, sizeof(key), "key%08d", i);
		k.mv_data = key;
		k.mv_size = strlen(key);
		v.mv_data = val;
		v.mv_size = f->vsize;
		if ((rc = mdb_put(txn, f->d->dbi[1], &k, &v, 0)) != 0)
			return rc;
	}
	return 0;
}

static int
count_fn(MDB_txn *txn, void *ctx)
{
	struct fill *f = ctx;
	MDB_stat st;
	int rc = mdb_stat(txn, f->d->dbi[1], &st);

	f->count = (int)st.ms_entries;
	return rc;
}

START_TEST(test_map_full_grows)
{
	struct db d;
	struct fill f = { &d, 0, 2000, 4000 };   /* ~8 MB into a 64 KiB map */
	char *err = NULL;
	size_t before;

	open_small(&d, 64 * 1024);
	before = d.mapsize;
	ck_assert_int_eq(db_write(&d, fill_fn, &f, &err), 0);
	ck_assert_uint_gt(d.mapsize, before);
	f.count = 0;
	ck_assert_int_eq(db_read(&d, count_fn, &f, &err), 0);
	ck_assert_int_eq(f.count, 2000);
	db_close(&d);
	/* the growth stops at max_mapsize: then the error is reported */
	struct db_opts o = { .flags = MDB_NOSUBDIR, .mode = 0600, .mapsize = 64 * 1024,
	    .max_mapsize = 128 * 1024, .dbs = names };
	snprintf(path, sizeof(path), "%s/db2", dir);
	ck_assert_int_eq(db_open(&d, path, &o, &err), 0);
	f.from = 0;
	f.count = 2000;
	ck_assert_int_eq(db_write(&d, fill_fn, &f, &err), MDB_MAP_FULL);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "MDB_MAP_FULL"));
	free(err);
	db_close(&d);
}
END_TEST

/* Another process grows the map; our next transaction adopts it. */
START_TEST(test_map_resized_by_other)
{
	struct db d;
	struct fill f = { &d, 0, 1, 100 };
	char *err = NULL;
	pid_t pid;
	int st;

	open_small(&d, 64 * 1024);
	ck_assert_int_eq(db_write(&d, fill_fn, &f, &err), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct db d2;
		struct fill f2 = { &d2, 1000, 2000, 4000 };

		open_small(&d2, 64 * 1024);
		_exit(db_write(&d2, fill_fn, &f2, NULL) == 0 && d2.mapsize > 64 * 1024 ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	f.from = 5;
	ck_assert_int_eq(db_write(&d, fill_fn, &f, &err), 0);
	ck_assert_int_eq(db_read(&d, count_fn, &f, &err), 0);
	ck_assert_int_eq(f.count, 2002);
	db_close(&d);
}
END_TEST

static int
hold_fn(MDB_txn *txn, void *ctx)
{
	(void)txn;
	(void)ctx;
	kill(getpid(), SIGKILL);
	return 0;
}

/* A reader killed inside its transaction: db_open clears its slot. */
START_TEST(test_stale_reader)
{
	struct db d;
	MDB_envinfo info;
	pid_t pid;
	int st, dead = -1;

	open_small(&d, 0);
	db_close(&d);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct db d2;

		open_small(&d2, 0);
		(void)db_read(&d2, hold_fn, NULL, NULL);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st));
	open_small(&d, 0);
	ck_assert_int_eq(mdb_reader_check(d.env, &dead), 0);
	ck_assert_int_eq(dead, 0);   /* already cleared by db_open */
	ck_assert_int_eq(mdb_env_info(d.env, &info), 0);
	db_close(&d);
}
END_TEST

static int
own_code_fn(MDB_txn *txn, void *ctx)
{
	(void)txn;
	(void)ctx;
	return -2;
}

START_TEST(test_codes)
{
	struct db d;
	char *err = NULL;
	int fd;

	open_small(&d, 0);
	ck_assert_int_eq(db_write(&d, own_code_fn, NULL, &err), -2);
	ck_assert_ptr_null(err);
	db_close(&d);
	ck_assert(db_rc_corrupt(MDB_CORRUPTED));
	ck_assert(db_rc_corrupt(MDB_INVALID));
	ck_assert(!db_rc_corrupt(MDB_MAP_FULL));
	ck_assert(!db_rc_corrupt(EACCES));
	ck_assert_str_eq(db_strerror(ENOENT), strerror(ENOENT));
	/* garbage is reported as corruption, not as a passing failure */
	snprintf(path, sizeof(path), "%s/junk", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(write(fd, "not an lmdb file at all, no no ", 32), 32);
	close(fd);
	struct db_opts o = { .flags = MDB_NOSUBDIR, .mode = 0600, .dbs = names };
	int rc = db_open(&d, path, &o, &err);
	ck_assert(db_rc_corrupt(rc));
	ck_assert_ptr_nonnull(err);
	free(err);
}
END_TEST

static Suite *
db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("db");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_map_full_grows);
	tcase_add_test(tc, test_map_resized_by_other);
	tcase_add_test(tc, test_stale_reader);
	tcase_add_test(tc, test_codes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(db_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
