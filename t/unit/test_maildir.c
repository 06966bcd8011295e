/*
 * test_maildir - Maildir delivery: exact bytes land in new/, nothing is
 * left in tmp/, symlinks and foreign directories are refused, names are
 * unique, a failing producer leaves no file behind.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "store/maildir.h"

struct src {
	const char *data;
	size_t len;
	size_t chunk;      /* bytes per out() call */
	size_t fail_at;    /* fail (EIO) after this many bytes; 0 = never */
};

static int
produce(mail_out_fn out, void *octx, void *ctx)
{
	struct src *s = ctx;
	size_t off = 0, n;

	while (off < s->len) {
		n = s->len - off < s->chunk ? s->len - off : s->chunk;
		if (s->fail_at && off + n > s->fail_at) {
			errno = EIO;
			return -1;
		}
		if (out(s->data + off, n, octx) < 0)
			return -1;
		off += n;
	}
	return 0;
}

static char tmpbase[PATH_MAX];

static void
setup(void)
{
	snprintf(tmpbase, sizeof(tmpbase), "/tmp/test_maildir.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpbase));
}

static void
rm_rf(const char *path)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", path);
}

static void
teardown(void)
{
	rm_rf(tmpbase);
}

/* Number of entries in dir (not . and ..); the last name in *name_r. */
static int
count_dir(const char *dir, char *name_r, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		n++;
		if (name_r != NULL)
			snprintf(name_r, size, "%s", de->d_name);
	}
	closedir(d);
	return n;
}

static char *
sub(const char *a, const char *b)
{
	return xasprintf("%s/%s", a, b);
}

START_TEST(test_deliver_exact_bytes)
{
	static const char msg[] = "Return-Path: <a@b>\nSubject: hi\n\nFrom me\nbody\n";
	size_t chunks[] = { sizeof(msg) - 1, 1, 7 };
	char name[MAILDIR_NAME_MAX], got_name[MAILDIR_NAME_MAX];
	const char *dsn = NULL;
	char *err = NULL, *md, *d, *path, *data;
	size_t i, len;

	for (i = 0; i < ARRAY_SIZE(chunks); i++) {
		struct src s = { msg, sizeof(msg) - 1, chunks[i], 0 };
		char leaf[32];

		snprintf(leaf, sizeof(leaf), "Maildir%zu/", i);
		md = sub(tmpbase, leaf);
		ck_assert_int_eq(maildir_deliver(md, produce, &s, name, sizeof(name),
		    &dsn, &err), 0);
		ck_assert_ptr_null(err);
		ck_assert_str_eq(dsn, "2.0.0");
		d = sub(md, "new");
		ck_assert_int_eq(count_dir(d, got_name, sizeof(got_name)), 1);
		ck_assert_str_eq(got_name, name);
		path = sub(d, name);
		ck_assert_int_eq(file_read_all(path, 1 << 20, &data, &len), 0);
		ck_assert_uint_eq(len, sizeof(msg) - 1);
		ck_assert_mem_eq(data, msg, len);
		free(data);
		free(path);
		free(d);
		d = sub(md, "tmp");
		ck_assert_int_eq(count_dir(d, NULL, 0), 0);
		free(d);
		d = sub(md, "cur");
		ck_assert_int_eq(count_dir(d, NULL, 0), 0);
		free(d);
		free(md);
	}
}
END_TEST

START_TEST(test_refuse_symlinked_new)
{
	struct src s = { "x\n", 2, 2, 0 };
	const char *dsn = NULL;
	char *err = NULL, *md = sub(tmpbase, "Maildir"), *other = sub(tmpbase, "other");
	char *p;

	ck_assert_int_eq(mkdir(md, 0700), 0);
	ck_assert_int_eq(mkdir(other, 0700), 0);
	p = sub(md, "tmp");
	ck_assert_int_eq(mkdir(p, 0700), 0);
	free(p);
	p = sub(md, "new");
	ck_assert_int_eq(symlink(other, p), 0);
	free(p);
	ck_assert_int_eq(maildir_deliver(md, produce, &s, NULL, 0, &dsn, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(dsn, "5.2.0");
	ck_assert_int_eq(count_dir(other, NULL, 0), 0);
	p = sub(md, "tmp");
	ck_assert_int_eq(count_dir(p, NULL, 0), 0);
	free(p);
	free(err);
	free(md);
	free(other);
}
END_TEST

/* cur/ is only stat'ed on a delivery, not opened: still refused when it
 * is a symbolic link (or not a directory), and made when missing. */
START_TEST(test_cur_checked)
{
	struct src s = { "x\n", 2, 2, 0 };
	const char *dsn = NULL;
	char *err = NULL, *md = sub(tmpbase, "Maildir"), *other = sub(tmpbase, "other");
	char *p, *n;
	struct stat st;

	ck_assert_int_eq(mkdir(md, 0700), 0);
	ck_assert_int_eq(mkdir(other, 0700), 0);
	p = sub(md, "cur");
	ck_assert_int_eq(symlink(other, p), 0);
	ck_assert_int_eq(maildir_deliver(md, produce, &s, NULL, 0, &dsn, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "symbolic link"));
	ck_assert_str_eq(dsn, "5.2.0");
	n = sub(md, "new");
	ck_assert_int_eq(count_dir(n, NULL, 0), 0);
	free(err);
	err = NULL;
	/* A file there: not a directory. */
	ck_assert_int_eq(unlink(p), 0);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	ck_assert_int_eq(maildir_deliver(md, produce, &s, NULL, 0, &dsn, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a directory"));
	ck_assert_str_eq(dsn, "5.2.0");
	free(err);
	err = NULL;
	/* Missing: made, and the delivery goes through. */
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(maildir_deliver(md, produce, &s, NULL, 0, &dsn, &err), 0);
	ck_assert_str_eq(dsn, "2.0.0");
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(count_dir(n, NULL, 0), 1);
	free(n);
	free(p);
	free(md);
	free(other);
}
END_TEST

START_TEST(test_refuse_symlinked_maildir)
{
	struct src s = { "x\n", 2, 2, 0 };
	const char *dsn = NULL;
	char *err = NULL, *md = sub(tmpbase, "Maildir"), *other = sub(tmpbase, "other");
	char *mds = sub(tmpbase, "Maildir/");

	ck_assert_int_eq(mkdir(other, 0700), 0);
	ck_assert_int_eq(symlink(other, md), 0);
	/* With and without the trailing slash that would make open() follow. */
	ck_assert_int_eq(maildir_deliver(md, produce, &s, NULL, 0, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "5.2.0");
	free(err);
	err = NULL;
	ck_assert_int_eq(maildir_deliver(mds, produce, &s, NULL, 0, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "5.2.0");
	ck_assert_int_eq(count_dir(other, NULL, 0), 0);
	free(err);
	free(md);
	free(mds);
	free(other);
}
END_TEST

START_TEST(test_refuse_foreign_owner)
{
	struct src s = { "x\n", 2, 2, 0 };
	const char *dsn = NULL;
	char *err = NULL, *md = sub(tmpbase, "Maildir");

	if (geteuid() != 0)
		return;   /* needs root to create a directory owned by another uid */
	ck_assert_int_eq(mkdir(md, 0700), 0);
	ck_assert_int_eq(chown(md, 65534, 65534), 0);
	ck_assert_int_eq(maildir_deliver(md, produce, &s, NULL, 0, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "5.2.0");
	ck_assert_ptr_nonnull(strstr(err, "owned"));
	free(err);
	free(md);
}
END_TEST

/* Kept open between deliveries (local): every change that a fresh open
 * would see is seen - a new/ or a whole Maildir replaced gets the mail in
 * the new one, a symlink or a foreign owner swapped in is refused. */
static int
deliver_one(const char *md, const char **dsn)
{
	struct src s = { "kept\n", 5, 5, 0 };
	char *err = NULL;
	int rc = maildir_deliver(md, produce, &s, NULL, 0, dsn, &err);

	free(err);
	return rc;
}

static int
count_sub(const char *md, const char *leaf)
{
	char *p = sub(md, leaf);
	int n = count_dir(p, NULL, 0);

	free(p);
	return n;
}

/* path (a directory of md) moved aside and a symlink to target put in
 * its place: the delivery is refused (5.2.0) and nothing lands in
 * target; then path is put back. */
static void
refused_as_symlink(const char *md, const char *path, const char *aside,
    const char *target)
{
	const char *dsn = NULL;

	ck_assert_int_eq(rename(path, aside), 0);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(deliver_one(md, &dsn), -1);
	ck_assert_str_eq(dsn, "5.2.0");
	ck_assert_int_eq(count_dir(target, NULL, 0), 0);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rename(aside, path), 0);
}

START_TEST(test_kept_open)
{
	char *md = sub(tmpbase, "Maildir"), *moved = sub(tmpbase, "Maildir.moved");
	char *other = sub(tmpbase, "other"), *p, *q;
	const char *dsn = NULL;

	maildir_keep_open(1);
	ck_assert_int_eq(deliver_one(md, &dsn), 0);
	ck_assert_int_eq(deliver_one(md, &dsn), 0);
	ck_assert_int_eq(count_sub(md, "new"), 2);

	/* new/ replaced */
	p = sub(md, "new");
	q = sub(md, "new.old");
	ck_assert_int_eq(rename(p, q), 0);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	ck_assert_int_eq(deliver_one(md, &dsn), 0);
	ck_assert_int_eq(count_sub(md, "new"), 1);
	ck_assert_int_eq(count_sub(md, "new.old"), 2);
	free(q);

	/* the whole Maildir replaced */
	ck_assert_int_eq(rename(md, moved), 0);
	ck_assert_int_eq(deliver_one(md, &dsn), 0);
	ck_assert_int_eq(count_sub(md, "new"), 1);
	ck_assert_int_eq(count_sub(moved, "new"), 1);

	/* new/ swapped for a symlink */
	ck_assert_int_eq(mkdir(other, 0700), 0);
	q = sub(md, "new.2");
	refused_as_symlink(md, p, q, other);
	ck_assert_int_eq(deliver_one(md, &dsn), 0);
	ck_assert_int_eq(count_sub(md, "new"), 2);
	free(q);

	/* the Maildir swapped for a symlink */
	q = sub(tmpbase, "Maildir.2");
	refused_as_symlink(md, md, q, other);
	free(q);

	/* tmp/ given to someone else */
	if (geteuid() == 0) {
		ck_assert_int_eq(deliver_one(md, &dsn), 0);
		q = sub(md, "tmp");
		ck_assert_int_eq(chown(q, 65534, 65534), 0);
		ck_assert_int_eq(deliver_one(md, &dsn), -1);
		ck_assert_str_eq(dsn, "5.2.0");
		ck_assert_int_eq(chown(q, 0, 0), 0);
		free(q);
	}
	maildir_keep_open(0);
	free(p);
	free(md);
	free(moved);
	free(other);
}
END_TEST

START_TEST(test_unique_names)
{
	struct src s = { "m\n", 2, 2, 0 };
	char name[MAILDIR_NAME_MAX];
	const char *dsn;
	char *err = NULL, *md = sub(tmpbase, "Maildir"), *d;
	int i;

	for (i = 0; i < 300; i++)
		ck_assert_int_eq(maildir_deliver(md, produce, &s, name, sizeof(name),
		    &dsn, &err), 0);
	ck_assert_ptr_null(strchr(name, '/'));
	ck_assert_ptr_null(strchr(name, ':'));
	d = sub(md, "new");
	ck_assert_int_eq(count_dir(d, NULL, 0), 300);
	free(d);
	free(md);
}
END_TEST

START_TEST(test_unique_name_format)
{
	char a[MAILDIR_NAME_MAX], b[MAILDIR_NAME_MAX], pid[32];

	ck_assert_int_eq(maildir_unique_name(a, sizeof(a)), 0);
	ck_assert_int_eq(maildir_unique_name(b, sizeof(b)), 0);
	ck_assert_str_ne(a, b);
	snprintf(pid, sizeof(pid), "P%ldQ", (long)getpid());
	ck_assert_ptr_nonnull(strstr(a, pid));
	ck_assert_ptr_nonnull(strstr(a, ".M"));
	ck_assert_int_eq(maildir_unique_name(a, 8), -1);
}
END_TEST

START_TEST(test_producer_failure)
{
	static const char msg[] = "0123456789abcdef";
	struct src s = { msg, 16, 4, 9 };
	const char *dsn = NULL;
	char *err = NULL, *md = sub(tmpbase, "Maildir"), *d;

	ck_assert_int_eq(maildir_deliver(md, produce, &s, NULL, 0, &dsn, &err), -1);
	ck_assert_str_eq(dsn, "4.3.0");
	ck_assert_ptr_nonnull(err);
	d = sub(md, "tmp");
	ck_assert_int_eq(count_dir(d, NULL, 0), 0);
	free(d);
	d = sub(md, "new");
	ck_assert_int_eq(count_dir(d, NULL, 0), 0);
	free(d);
	free(err);
	free(md);
}
END_TEST

/* The same (queue ID, recipient) twice: one file, both succeed, the
 * second says "already present"; a stale tmp/ leftover is replaced; a
 * copy a reader moved to cur/ (with flags) also counts. */
START_TEST(test_named_idempotent)
{
	struct src s1 = { "first\n", 6, 6, 0 }, s2 = { "second\n", 7, 7, 0 };
	char name[MAILDIR_NAME_MAX], got[MAILDIR_NAME_MAX];
	const char *dsn = NULL;
	char *err = NULL, *md = sub(tmpbase, "Maildir/"), *d, *p, *data;
	size_t len;
	int present = -1, fd;

	ck_assert_int_eq(maildir_delivery_name(name, sizeof(name), 1700000000,
	    "4dQzBc1234z1", 1234), 0);
	ck_assert_ptr_nonnull(strstr(name, "1700000000.Q4dQzBc1234z1R1234."));
	ck_assert_ptr_null(strchr(name, '/'));
	ck_assert_int_eq(maildir_delivery_name(name, sizeof(name), 1, "../x", 1), -1);
	ck_assert_int_eq(maildir_delivery_name(name, sizeof(name), 1, "", 1), -1);
	ck_assert_int_eq(maildir_delivery_name(name, 16, 1700000000, "4dQzBc1234z1", 1), -1);
	ck_assert_int_eq(maildir_delivery_name(name, sizeof(name), 1700000000,
	    "4dQzBc1234z1", 1234), 0);

	/* A leftover of an attempt killed while writing. */
	ck_assert_int_eq(maildir_make(md, &dsn, &err), 0);
	p = xasprintf("%s/tmp/%s", md, name);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "part", 4), 4);
	close(fd);
	free(p);

	ck_assert_int_eq(maildir_deliver_named(md, name, produce, &s1, &present,
	    &dsn, &err), 0);
	ck_assert_int_eq(present, 0);
	ck_assert_str_eq(dsn, "2.0.0");
	ck_assert_int_eq(maildir_deliver_named(md, name, produce, &s2, &present,
	    &dsn, &err), 0);
	ck_assert_ptr_null(err);
	ck_assert_int_eq(present, 1);
	d = sub(md, "new");
	ck_assert_int_eq(count_dir(d, got, sizeof(got)), 1);
	ck_assert_str_eq(got, name);
	p = xasprintf("%s/%s", d, name);
	ck_assert_int_eq(file_read_all(p, 1 << 20, &data, &len), 0);
	ck_assert_uint_eq(len, 6);
	ck_assert_mem_eq(data, "first\n", 6);   /* not replaced */
	free(data);
	free(d);
	d = sub(md, "tmp");
	ck_assert_int_eq(count_dir(d, NULL, 0), 0);
	free(d);

	/* A reader moved it to cur/ and flagged it seen. */
	{
		char *to = xasprintf("%s/cur/%s:2,S", md, name);

		ck_assert_int_eq(rename(p, to), 0);
		free(to);
	}
	present = 0;
	ck_assert_int_eq(maildir_deliver_named(md, name, produce, &s2, &present,
	    &dsn, &err), 0);
	ck_assert_int_eq(present, 1);
	d = sub(md, "new");
	ck_assert_int_eq(count_dir(d, NULL, 0), 0);
	free(d);

	/* Another recipient (offset) is another file. */
	ck_assert_int_eq(maildir_delivery_name(name, sizeof(name), 1700000000,
	    "4dQzBc1234z1", 1300), 0);
	ck_assert_int_eq(maildir_deliver_named(md, name, produce, &s2, &present,
	    &dsn, &err), 0);
	ck_assert_int_eq(present, 0);
	d = sub(md, "new");
	ck_assert_int_eq(count_dir(d, NULL, 0), 1);
	free(d);

	/* A message that arrived just now, delivered, then moved to cur/
	 * by a reader: cur/ changed after the arrival, so a retry looks
	 * there and finds it (cur/ is only skipped when unchanged since). */
	ck_assert_int_eq(maildir_delivery_name(name, sizeof(name),
	    (long long)time(NULL) - 1, "4dQzBc1234z1", 1400), 0);
	ck_assert_int_eq(maildir_deliver_named(md, name, produce, &s1, &present,
	    &dsn, &err), 0);
	ck_assert_int_eq(present, 0);
	{
		char *from = xasprintf("%s/new/%s", md, name);
		char *to = xasprintf("%s/cur/%s:2,S", md, name);

		ck_assert_int_eq(rename(from, to), 0);
		free(from);
		free(to);
	}
	ck_assert_int_eq(maildir_deliver_named(md, name, produce, &s2, &present,
	    &dsn, &err), 0);
	ck_assert_int_eq(present, 1);
	d = sub(md, "new");
	ck_assert_int_eq(count_dir(d, NULL, 0), 1);   /* only offset 1300's */
	free(d);

	/* The same when the arrival second is one past cur/'s ctime: the
	 * arrival comes from the fine-grained clock, cur/'s stamp may come
	 * from the coarse one (a tick behind), so a move into cur/ just
	 * after a second boundary can carry the second before the arrival.
	 * The copy is put in cur/ under a name whose arrival is the second
	 * after the one we expect cur/ to be stamped with; if the stamp
	 * turns out otherwise (a second boundary passed), again. */
	{
		char *cur = sub(md, "cur");
		char *to = NULL;
		struct stat cst;
		time_t t;
		int tries;

		for (tries = 0; tries < 5; tries++) {
			t = time(NULL);
			ck_assert_int_eq(maildir_delivery_name(name, sizeof(name),
			    (long long)t + 1, "4dQzBc1234z1", 1500), 0);
			free(to);
			to = xasprintf("%s/cur/%s:2,S", md, name);
			fd = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
			ck_assert_int_ge(fd, 0);
			ck_assert_int_eq(write(fd, "first\n", 6), 6);
			close(fd);
			ck_assert_int_eq(stat(cur, &cst), 0);
			if (cst.st_ctim.tv_sec == t)
				break;
			ck_assert_int_eq(unlink(to), 0);
		}
		ck_assert_int_lt(tries, 5);
		free(to);
		free(cur);
	}
	present = 0;
	ck_assert_int_eq(maildir_deliver_named(md, name, produce, &s2, &present,
	    &dsn, &err), 0);
	ck_assert_int_eq(present, 1);
	d = sub(md, "new");
	ck_assert_int_eq(count_dir(d, NULL, 0), 1);   /* still only offset 1300's */
	free(d);

	/* Names that could escape new/ are refused. */
	ck_assert_int_eq(maildir_deliver_named(md, "../x", produce, &s2, &present,
	    &dsn, &err), -1);
	free(err);
	err = NULL;
	ck_assert_int_eq(maildir_deliver_named(md, ".hidden", produce, &s2, &present,
	    &dsn, &err), -1);
	free(err);
	free(p);
	free(md);
}
END_TEST

START_TEST(test_dsn_map)
{
	ck_assert_str_eq(mailstore_errno_dsn(ENOSPC), "4.2.2");
	ck_assert_str_eq(mailstore_errno_dsn(EDQUOT), "4.2.2");
	ck_assert_str_eq(mailstore_errno_dsn(EIO), "4.2.0");
	ck_assert_str_eq(mailstore_errno_dsn(EFBIG), "5.2.2");
}
END_TEST

static Suite *
maildir_suite(void)
{
	Suite *s = suite_create("maildir");
	TCase *tc = tcase_create("deliver");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_deliver_exact_bytes);
	tcase_add_test(tc, test_refuse_symlinked_new);
	tcase_add_test(tc, test_cur_checked);
	tcase_add_test(tc, test_refuse_symlinked_maildir);
	tcase_add_test(tc, test_refuse_foreign_owner);
	tcase_add_test(tc, test_unique_names);
	tcase_add_test(tc, test_unique_name_format);
	tcase_add_test(tc, test_producer_failure);
	tcase_add_test(tc, test_dsn_map);
	tcase_add_test(tc, test_named_idempotent);
	tcase_add_test(tc, test_kept_open);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(maildir_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
