/*
 * test_mastercf - the service table: the shipped example, defaults,
 * continuation lines, -o arguments and every kind of bad line.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "mail/mastercf.h"

static char tmpdir[64];
static char path[128];

static void
setup(void)
{
	strcpy(tmpdir, "/tmp/test_mastercf.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/master.conf", tmpdir);
	log_open("test_mastercf", "/dev/stderr");
}

static void
teardown(void)
{
	unlink(path);
	rmdir(tmpdir);
}

static int
load(const char *text, struct master_service **svcs, size_t *n, char **err)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	return mastercf_load(path, 100, svcs, n, err);
}

START_TEST(test_shipped_example)
{
	struct master_service *s = NULL;
	const char *src = getenv("POSTERN_SRCDIR");
	char file[512], *err = NULL;
	size_t n = 0;

	snprintf(file, sizeof(file), "%s/etc/master.conf", src ? src : "../..");
	if (access(file, R_OK) != 0)
		snprintf(file, sizeof(file), "/work/main/etc/master.conf");
	ck_assert_msg(mastercf_load(file, 100, &s, &n, &err) == 0, "%s", err);
	ck_assert_uint_ge(n, 3);
	ck_assert_str_eq(s[0].name, "smtp");
	ck_assert_str_eq(s[0].type, "inet");
	ck_assert_int_eq(s[0].private_, 0);
	ck_assert_int_eq(s[0].unpriv, 1);
	ck_assert_int_eq(s[0].chroot_, 0);
	ck_assert_int_eq(s[0].wakeup, 0);
	ck_assert_int_eq(s[0].maxproc, 100);
	ck_assert_str_eq(s[0].command, "smtpd");
	ck_assert_ptr_null(s[0].args[0]);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s[i].name, "qmgr") == 0) {
			ck_assert_int_eq(s[i].wakeup, 300);
			ck_assert_int_eq(s[i].maxproc, 1);
		}
		if (strcmp(s[i].name, "local") == 0)
			ck_assert_int_eq(s[i].unpriv, 0);
	}
	mastercf_free(s, n);
}
END_TEST

START_TEST(test_defaults_and_args)
{
	struct master_service *s = NULL;
	char *err = NULL;
	size_t n = 0;

	ck_assert_msg(load("# header\n"
	    "127.0.0.1:2525 inet n - n - 10 smtpd -v\n"
	    "# a comment between continuations\n"
	    "  -o smtpd_tls_security_level=encrypt\n"
	    "\n"
	    "\t-o smtpd_client_restrictions=permit_mynetworks,reject\n"
	    "[::1]:25 inet - - - - 0 smtpd\n"
	    "qmgr unix n - n 300 1 qmgr\n"
	    "pickup unix n - y 60? 1 pickup\n"
	    "local unix - n n - - local\n"
	    "smtp inet y n y 5 - smtpd\n",
	    &s, &n, &err) == 0, "%s", err);
	ck_assert_uint_eq(n, 6);
	ck_assert_str_eq(s[0].name, "127.0.0.1:2525");
	ck_assert_int_eq(s[0].maxproc, 10);
	ck_assert_int_eq(s[0].lineno, 2);
	ck_assert_str_eq(s[0].args[0], "-v");
	ck_assert_str_eq(s[0].args[1], "-o");
	ck_assert_str_eq(s[0].args[2], "smtpd_tls_security_level=encrypt");
	ck_assert_str_eq(s[0].args[3], "-o");
	ck_assert_str_eq(s[0].args[4], "smtpd_client_restrictions=permit_mynetworks,reject");
	ck_assert_ptr_null(s[0].args[5]);
	/* '-' defaults: private y, unpriv y, chroot n, wakeup 0, maxproc default */
	ck_assert_str_eq(s[1].name, "[::1]:25");
	ck_assert_int_eq(s[1].private_, 1);
	ck_assert_int_eq(s[1].unpriv, 1);
	ck_assert_int_eq(s[1].chroot_, 0);
	ck_assert_int_eq(s[1].wakeup, 0);
	ck_assert_int_eq(s[1].maxproc, 0);
	ck_assert_int_eq(s[1].lineno, 7);
	ck_assert_int_eq(s[2].wakeup, 300);
	ck_assert_int_eq(s[2].private_, 0);
	ck_assert_int_eq(s[3].wakeup, 60);
	ck_assert_int_eq(s[3].chroot_, 1);
	ck_assert_int_eq(s[4].unpriv, 0);
	ck_assert_int_eq(s[4].maxproc, 100);
	ck_assert_int_eq(s[5].private_, 1);
	ck_assert_int_eq(s[5].unpriv, 0);
	ck_assert_int_eq(s[5].chroot_, 1);
	ck_assert_int_eq(s[5].wakeup, 5);
	mastercf_free(s, n);
}
END_TEST

static const struct {
	const char *text;
	const char *want;
} bad[] = {
	{ "smtp inet n - n - -\n", "master.conf:1: expected 8 or more columns" },
	{ "# c\nqmgr unix n - n 300 1 qmgr\n\n\nsmtp inet n - n\n", "master.conf:5: expected 8 or more columns" },
	{ "a unix - - - - - x\n  -o a=b\nsmtp inet\n", "master.conf:3: expected 8" },
	{ "smtp tcp n - n - - smtpd\n", "master.conf:1: bad transport type 'tcp'" },
	{ "smtp fifo n - n - - smtpd\n", "bad transport type 'fifo'" },
	{ "smtp inet x - n - - smtpd\n", "master.conf:1: bad boolean 'x'" },
	{ "smtp inet n yes n - - smtpd\n", "bad boolean 'yes'" },
	{ "smtp inet n - Y - - smtpd\n", "bad boolean 'Y'" },
	{ "qmgr unix n - n 3x 1 qmgr\n", "bad wakeup time '3x'" },
	{ "qmgr unix n - n ? 1 qmgr\n", "bad wakeup time '?'" },
	{ "qmgr unix n - n - -1 qmgr\n", "bad process limit '-1'" },
	{ "qmgr unix n - n - 99999999999 qmgr\n", "bad process limit" },
	{ "qmgr unix n - n - 1 ../bin/sh\n", "bad command name '../bin/sh'" },
	{ "qmgr unix n - n - 1 -\n", "bad command name '-'" },
	{ "smtp inet n - n - - smtpd -o\n", "-o requires name=value" },
	{ "smtp inet n - n - - smtpd -o novalue\n", "-o requires name=value" },
	{ "smtp inet n - n - - smtpd -o =x\n", "-o requires name=value" },
	{ "host: inet n - n - - smtpd\n", "bad port 'host:'" },
	{ "70000 inet n - n - - smtpd\n", "bad port '70000'" },
	{ "0 inet n - n - - smtpd\n", "bad port '0'" },
	{ ":25 inet n - n - - smtpd\n", "bad inet address ':25'" },
	{ "[::1 inet n - n - - smtpd\n", "bad inet address" },
	{ "[::1]25 inet n - n - - smtpd\n", "needs host:port" },
	{ "a/b:25 inet n - n - - smtpd\n", "bad inet address 'a/b:25'" },
	{ "../x unix n - n - - qmgr\n", "bad service name '../x'" },
	{ ".. unix n - n - - qmgr\n", "bad service name" },
	{ "  smtp inet n - n - - smtpd\n", "master.conf:1: continuation line" },
	{ "smtp inet n - n - - smtpd\nsmtp inet n - n - - smtpd\n",
	  "master.conf:2: duplicate service smtp/inet (first at line 1)" },
};

START_TEST(test_bad_lines)
{
	struct master_service *s = (void *)1;
	char *err = NULL;
	size_t n = 99;

	ck_assert_int_eq(load(bad[_i].text, &s, &n, &err), -1);
	ck_assert_ptr_null(s);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, bad[_i].want) != NULL,
	    "case %d: got \"%s\", want \"%s\"", _i, err, bad[_i].want);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "no path: %s", err);
	free(err);
}
END_TEST

START_TEST(test_same_name_other_type)
{
	struct master_service *s = NULL;
	char *err = NULL;
	size_t n = 0;

	/* Postfix has smtp/inet (smtpd) and smtp/unix (the client) */
	ck_assert_msg(load("smtp inet n - n - - smtpd\nsmtp unix - - n - - smtp\n",
	    &s, &n, &err) == 0, "%s", err);
	ck_assert_uint_eq(n, 2);
	mastercf_free(s, n);
}
END_TEST

START_TEST(test_empty_and_missing)
{
	struct master_service *s = NULL;
	char *err = NULL;
	size_t n = 5;

	ck_assert_int_eq(load("# nothing\n\n", &s, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	mastercf_free(s, n);
	unlink(path);
	ck_assert_int_eq(mastercf_load(path, 100, &s, &n, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	free(err);
}
END_TEST

START_TEST(test_garbage)
{
	struct master_service *s = NULL;
	char text[4096], *err = NULL;
	size_t n = 0, i;
	unsigned seed = 12345;

	/* fixed-seed garbage: must be refused or accepted, never crash */
	for (int round = 0; round < 200; round++) {
		for (i = 0; i < sizeof(text) - 1; i++) {
			seed = seed * 1103515245 + 12345;
			text[i] = " \t\n-yn0123456789abcinetux:o=#[]"[(seed >> 16) % 31];
		}
		text[i] = '\0';
		if (load(text, &s, &n, &err) == 0)
			mastercf_free(s, n);
		else
			free(err);
		s = NULL;
		err = NULL;
	}
}
END_TEST

static Suite *
mastercf_suite(void)
{
	Suite *s = suite_create("mastercf");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_shipped_example);
	tcase_add_test(tc, test_defaults_and_args);
	tcase_add_loop_test(tc, test_bad_lines, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_same_name_other_type);
	tcase_add_test(tc, test_empty_and_missing);
	tcase_add_test(tc, test_garbage);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(mastercf_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
