/*
 * test_quota - Maildir++ maildirsize accounting: the recount (INBOX and
 * folders, ",S=" sizes, a symlinked folder not followed), appended change
 * lines, a recount when the limit changes, the file grows too large or
 * holds garbage; and the index's use of it: an APPEND over the quota is
 * refused and leaves no file, an expunge gives the space back.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "store/index.h"
#include "store/maildir.h"
#include "store/quota.h"

#define FIXTURE_NAME "test_quota"
#include "maildir_fixture.h"

static void
put(const char *rel, size_t size)
{
	char p[PATH_MAX];
	char *data = xcalloc(1, size + 1);
	int fd;

	memset(data, 'x', size);
	snprintf(p, sizeof(p), "%s/%s", mdir, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, size), (ssize_t)size);
	close(fd);
	free(data);
}

static char *
slurp(const char *rel)
{
	char p[PATH_MAX], buf[8192];
	int fd;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/%s", mdir, rel);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return xstrdup(buf);
}

START_TEST(test_recount)
{
	const char *dsn;
	char *err = NULL, p[PATH_MAX], *s;
	uint64_t b, c;

	put("new/1.a.host", 100);
	put("cur/2.b.host:2,S", 50);
	/* ",S=" names the size: the file is not looked at. */
	put("cur/3.c.host,S=1000:2,", 10);
	snprintf(p, sizeof(p), "%s/.Sent", mdir);
	ck_assert_int_eq(maildir_make(p, &dsn, &err), 0);
	put(".Sent/cur/4.d.host:2,S", 200);
	/* A folder that is a symlink to somewhere else is not counted. */
	snprintf(p, sizeof(p), "%s/elsewhere", tmpbase);
	ck_assert_int_eq(maildir_make(p, &dsn, &err), 0);
	snprintf(p, sizeof(p), "%s/elsewhere/new/5.e.host", tmpbase);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	char link[PATH_MAX];
	snprintf(link, sizeof(link), "%s/.Evil", mdir);
	snprintf(p, sizeof(p), "%s/elsewhere", tmpbase);
	ck_assert_int_eq(symlink(p, link), 0);

	ck_assert_int_eq(quota_get(mdir, 100000, &b, &c, &err), 0);
	ck_assert_uint_eq(b, 1350);
	ck_assert_uint_eq(c, 4);
	s = slurp(QUOTA_FILE_NAME);
	ck_assert_str_eq(s, "100000S\n1350 4\n");
	free(s);

	ck_assert_int_eq(quota_update(mdir, 100000, 500, 1, &err), 0);
	ck_assert_int_eq(quota_update(mdir, 100000, -50, -1, &err), 0);
	ck_assert_int_eq(quota_get(mdir, 100000, &b, &c, &err), 0);
	ck_assert_uint_eq(b, 1800);
	ck_assert_uint_eq(c, 4);
	ck_assert_int_eq(quota_check(mdir, 100000, 98200, &err), 0);
	ck_assert_int_eq(quota_check(mdir, 100000, 98201, &err), 1);

	/* Another limit: recounted from the files (the change lines were
	 * not backed by files here, so they go). */
	ck_assert_int_eq(quota_get(mdir, 2000, &b, &c, &err), 0);
	ck_assert_uint_eq(b, 1350);
	s = slurp(QUOTA_FILE_NAME);
	ck_assert_str_eq(s, "2000S\n1350 4\n");
	free(s);
	/* No limit: nothing read or written. */
	ck_assert_int_eq(quota_get(mdir, 0, &b, &c, &err), 0);
	ck_assert_uint_eq(b, 0);
	ck_assert_int_eq(quota_check(mdir, 0, UINT64_MAX / 2, &err), 0);
}
END_TEST

START_TEST(test_fold_and_garbage)
{
	char *err = NULL, *s;
	uint64_t b, c;
	int i;

	put("new/1.a.host", 100);
	ck_assert_int_eq(quota_get(mdir, 5000, &b, &c, &err), 0);
	/* Enough lines to pass QUOTA_FILE_MAX: the next update folds them. */
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(quota_update(mdir, 5000, 1, 0, &err), 0);
	s = slurp(QUOTA_FILE_NAME);
	ck_assert_uint_lt(strlen(s), QUOTA_FILE_MAX);
	free(s);
	ck_assert_int_eq(quota_get(mdir, 5000, &b, &c, &err), 0);
	ck_assert_uint_ge(b, 100);

	/* Garbage (or a negative sum) is never believed: recounted. */
	put(QUOTA_FILE_NAME, 0);
	{
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", mdir, QUOTA_FILE_NAME);
		FILE *f = fopen(p, "w");
		fputs("5000S\n-999999 -3\nbogus\n", f);
		fclose(f);
	}
	ck_assert_int_eq(quota_get(mdir, 5000, &b, &c, &err), 0);
	ck_assert_uint_eq(b, 100);
	ck_assert_uint_eq(c, 1);
}
END_TEST

static const char msg[] = "Subject: q\n\n0123456789012345678901234567890123456789\n";

static int
produce(mail_out_fn out, void *octx, void *ctx)
{
	(void)ctx;
	return out(msg, sizeof(msg) - 1, octx);
}

static size_t
files_in(const char *sub)
{
	char cmd[PATH_MAX + 64];
	FILE *f;
	size_t n = 0;
	char line[512];

	snprintf(cmd, sizeof(cmd), "ls '%s/%s'", mdir, sub);
	f = popen(cmd, "r");
	while (fgets(line, sizeof(line), f) != NULL)
		n++;
	pclose(f);
	return n;
}

START_TEST(test_index_quota)
{
	struct mailbox *mb = NULL;
	char *err = NULL;
	uint32_t uid1, uid2, uid;
	uint64_t b, c, lim;
	size_t m = sizeof(msg) - 1;

	ck_assert_int_eq(mbx_open(mdir, 0, &mb, &err), 0);
	/* Room for two messages, not three. */
	mbx_set_quota(mb, mdir, 2 * m + m / 2);
	ck_assert_int_eq(mbx_append(mb, produce, NULL, 0, 0, &uid1, &err), 0);
	ck_assert_int_eq(mbx_append(mb, produce, NULL, 0, 0, &uid2, &err), 0);
	ck_assert_int_eq(mbx_quota_get(mb, &b, &c, &lim, &err), 0);
	ck_assert_uint_eq(b, 2 * m);
	ck_assert_uint_eq(c, 2);
	ck_assert_int_eq(mbx_quota_check(mb, m, &err), 1);
	ck_assert_int_eq(mbx_append(mb, produce, NULL, 0, 0, &uid, &err), MBX_OVERQUOTA);
	free(err);
	err = NULL;
	ck_assert_uint_eq(files_in("new"), 2);      /* the refused copy is gone */
	ck_assert_uint_eq(files_in("tmp"), 0);
	/* Expunge gives the room back. */
	ck_assert_int_eq(mbx_expunge(mb, &uid1, 1, &err), 0);
	ck_assert_int_eq(mbx_quota_get(mb, &b, &c, &lim, &err), 0);
	ck_assert_uint_eq(b, m);
	ck_assert_uint_eq(c, 1);
	ck_assert_int_eq(mbx_append(mb, produce, NULL, 0, 0, &uid, &err), 0);
	ck_assert_uint_gt(uid, uid2);
	mbx_close(&mb);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("quota");
	TCase *tc = tcase_create("quota");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_recount);
	tcase_add_test(tc, test_fold_and_garbage);
	tcase_add_test(tc, test_index_quota);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
