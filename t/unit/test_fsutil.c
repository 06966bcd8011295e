/* Unit tests for util/fsutil: atomic writes, whole-file reads, mkdir_p. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fsutil.h"

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/postern-fsutil-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

START_TEST(test_atomic_write_read)
{
	char path[128], *data = NULL;
	size_t len = 0;
	struct stat st;
	static const char bin[] = { 'x', '\0', 'y' };

	snprintf(path, sizeof(path), "%s/file", dir);
	ck_assert_int_eq(file_write_atomic(path, "first\n", 6, 0640), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	ck_assert_int_eq(file_read_all(path, 1024, &data, &len), 0);
	ck_assert_uint_eq(len, 6);
	ck_assert_str_eq(data, "first\n");
	free(data);

	/* Replace: the new content, binary-safe, and no temp file left. */
	ck_assert_int_eq(file_write_atomic(path, bin, sizeof(bin), 0600), 0);
	ck_assert_int_eq(file_read_all(path, 0, &data, &len), 0);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(data, bin, 3);
	ck_assert_int_eq(data[3], '\0');
	free(data);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	{
		char tmp[160];

		snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
		ck_assert_int_eq(access(tmp, F_OK), -1);
	}

	/* Empty file. */
	ck_assert_int_eq(file_write_atomic(path, "", 0, 0600), 0);
	ck_assert_int_eq(file_read_all(path, 10, &data, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(data, "");
	free(data);
}
END_TEST

START_TEST(test_read_limits)
{
	char path[128], *data = (char *)1;
	size_t len = 99;
	char big[20000];

	snprintf(path, sizeof(path), "%s/big", dir);
	memset(big, 'b', sizeof(big));
	ck_assert_int_eq(file_write_atomic(path, big, sizeof(big), 0644), 0);
	errno = 0;
	ck_assert_int_eq(file_read_all(path, 19999, &data, &len), -1);
	ck_assert_int_eq(errno, EFBIG);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(file_read_all(path, 20000, &data, &len), 0);
	ck_assert_uint_eq(len, 20000);
	free(data);
	snprintf(path, sizeof(path), "%s/missing", dir);
	errno = 0;
	ck_assert_int_eq(file_read_all(path, 100, &data, &len), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_write_fails)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/nodir/file", dir);
	ck_assert_int_eq(file_write_atomic(path, "x", 1, 0600), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_mkdir_p)
{
	char path[160];
	struct stat st;

	snprintf(path, sizeof(path), "%s/a/b//c/", dir);
	ck_assert_int_eq(mkdir_p(path, 0700), 0);
	ck_assert_int_eq(mkdir_p(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(fsync_dir(path), 0);
	ck_assert_int_eq(fsync_parent(path), 0);
	snprintf(path, sizeof(path), "%s/plain", dir);
	ck_assert_int_eq(file_write_atomic(path, "x", 1, 0600), 0);
	ck_assert_int_eq(mkdir_p(path, 0700), -1);
	ck_assert_int_eq(errno, ENOTDIR);
	snprintf(path, sizeof(path), "%s/plain/sub", dir);
	ck_assert_int_eq(mkdir_p(path, 0700), -1);
}
END_TEST

START_TEST(test_write_all_read_full)
{
	int fds[2];
	char out[100];

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write_all(fds[1], "hello", 5), 0);
	close(fds[1]);
	ck_assert_int_eq(read_full(fds[0], out, sizeof(out)), 5);
	ck_assert_mem_eq(out, "hello", 5);
	ck_assert_int_eq(read_full(fds[0], out, sizeof(out)), 0);
	close(fds[0]);
}
END_TEST

static Suite *
fsutil_suite(void)
{
	Suite *s = suite_create("fsutil");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_atomic_write_read);
	tcase_add_test(tc, test_read_limits);
	tcase_add_test(tc, test_write_fails);
	tcase_add_test(tc, test_mkdir_p);
	tcase_add_test(tc, test_write_all_read_full);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fsutil_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
