/* Unit tests for util/log: file line format, tiers, errno, line forging,
 * truncation, the fatal hook and the exit status of fatal. */
#include <check.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/log.h"

static char path[64];

static void
setup(void)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/postern-log-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	log_open("postern/test", path);
}

static void
teardown(void)
{
	unlink(path);
}

static char *
slurp(void)
{
	char *data = NULL;
	size_t len;

	ck_assert_int_eq(file_read_all(path, 1 << 20, &data, &len), 0);
	return data;
}

START_TEST(test_format)
{
	char *data, want[64], *p;
	int lines = 0;

	log_info("%s: client=%s", "4dQz", "x[1.2.3.4]");
	data = slurp();
	/* "Mon DD HH:MM:SS host postern/test[pid]: text\n" */
	ck_assert_uint_gt(strlen(data), 16);
	ck_assert_int_eq(data[3], ' ');
	ck_assert_int_eq(data[6], ' ');
	ck_assert_int_eq(data[9], ':');
	ck_assert_int_eq(data[12], ':');
	snprintf(want, sizeof(want), " postern/test[%ld]: 4dQz: client=x[1.2.3.4]\n",
	    (long)getpid());
	p = strstr(data, want);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, want);
	for (p = data; *p; p++)
		lines += *p == '\n';
	ck_assert_int_eq(lines, 1);
	ck_assert_str_eq(log_progname(), "postern/test");
	free(data);
}
END_TEST

START_TEST(test_tiers)
{
	char *data;

	log_set_verbose(0);
	log_debug("hidden");
	errno = ENOENT;
	log_warn("open %s", "x");
	ck_assert_int_eq(errno, ENOENT);    /* errno preserved */
	log_warnx("plain");
	errno = EACCES;
	log_error("e1");
	log_errorx("e2");
	log_set_verbose(1);
	ck_assert_int_eq(log_verbose(), 1);
	log_debug("shown");
	data = slurp();
	ck_assert_ptr_null(strstr(data, "hidden"));
	ck_assert_ptr_nonnull(strstr(data, "]: warning: open x: No such file or directory\n"));
	ck_assert_ptr_nonnull(strstr(data, "]: warning: plain\n"));
	ck_assert_ptr_nonnull(strstr(data, "]: error: e1: Permission denied\n"));
	ck_assert_ptr_nonnull(strstr(data, "]: error: e2\n"));
	ck_assert_ptr_nonnull(strstr(data, "]: shown\n"));
	free(data);
}
END_TEST

START_TEST(test_no_forging)
{
	char *data, *p;
	int lines = 0;

	log_info("helo=%s", "evil\r\nNov 22 00:00:00 host postern/smtpd[1]: forged");
	data = slurp();
	for (p = data; *p; p++)
		lines += *p == '\n';
	ck_assert_int_eq(lines, 1);
	ck_assert_ptr_nonnull(strstr(data, "helo=evil  Nov 22"));
	free(data);
}
END_TEST

START_TEST(test_truncate)
{
	char *big = malloc(20000), *data;

	memset(big, 'A', 19999);
	big[19999] = '\0';
	log_info("%s", big);
	log_info("after");
	data = slurp();
	ck_assert_uint_lt(strlen(data), 8192 + 600);
	ck_assert_ptr_nonnull(strstr(data, "]: after\n"));
	free(data);
	free(big);
}
END_TEST

static jmp_buf jb;

static void
hook(void)
{
	longjmp(jb, 1);
}

START_TEST(test_fatal_hook)
{
	char *data;

	log_set_fatal_hook(hook);
	if (setjmp(jb) == 0) {
		log_fatalx("bad %d", 7);
		ck_abort_msg("fatal returned");
	}
	log_set_fatal_hook(NULL);
	data = slurp();
	ck_assert_ptr_nonnull(strstr(data, "]: fatal: bad 7\n"));
	free(data);
}
END_TEST

START_TEST(test_fatal_exits)
{
	/* fatal exits before the checked teardown can run: remove the log then. */
	atexit(teardown);
	log_fatalx("bye");
}
END_TEST

START_TEST(test_stderr)
{
	log_open("postern/x", "-");
	log_info("to stderr");
	log_open("postern/x", "/dev/stderr");
	log_info("to stderr too");
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_tiers);
	tcase_add_test(tc, test_no_forging);
	tcase_add_test(tc, test_truncate);
	tcase_add_test(tc, test_fatal_hook);
	tcase_add_exit_test(tc, test_fatal_exits, 1);
	tcase_add_test(tc, test_stderr);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
