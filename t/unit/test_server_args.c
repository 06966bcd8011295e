/*
 * test_server_args - the child command line master builds (server_args.h):
 * good lines parse into the right fields, every malformed one is refused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/strv.h"
#include "mail/server_args.h"

#define MAXARGS 16

struct good_case {
	const char *argv[MAXARGS];
	const char *config_dir;
	const char *service;
	const char *type;
	int privileged;
	int chroot_;
	int login_listener;
	int verbose;
	const char *overrides[4];
};

static const struct good_case good[] = {
	{ .argv = { "smtpd", "-c", "/etc/postern", "-n", "smtp", "-t", "inet" },
	  .config_dir = "/etc/postern", .service = "smtp", .type = "inet" },
	{ .argv = { "local", "-c", "/x", "-n", "local", "-t", "unix", "-p" },
	  .config_dir = "/x", .service = "local", .type = "unix", .privileged = 1 },
	{ .argv = { "smtpd", "-c/x", "-nsmtp", "-tinet", "-C", "-v", "-v" },
	  .config_dir = "/x", .service = "smtp", .type = "inet", .chroot_ = 1, .verbose = 2 },
	{ .argv = { "smtpd", "-n", "127.0.0.1:2525", "-t", "inet", "-o", "a=b",
	    "-o", "smtpd_banner=$myhostname ESMTP", "-oc=" },
	  .service = "127.0.0.1:2525", .type = "inet",
	  .overrides = { "a=b", "smtpd_banner=$myhostname ESMTP", "c=" } },
	{ .argv = { "auth", "-n", "auth", "-t", "unix", "-p", "-l" },
	  .service = "auth", .type = "unix", .privileged = 1, .login_listener = 1 },
	{ .argv = { "qmgr" } },
	{ .argv = { "qmgr", "-n", "qmgr", "--" }, .service = "qmgr" },
};

static const char *const bad[][MAXARGS] = {
	{ "smtpd", "-c" },                      /* missing value */
	{ "smtpd", "-n", "smtp", "-t" },
	{ "smtpd", "-t", "tcp" },               /* bad type */
	{ "smtpd", "-o", "novalue" },           /* -o without '=' */
	{ "smtpd", "-o", "=value" },            /* empty name */
	{ "smtpd", "-x" },                      /* unknown option */
	{ "smtpd", "-pv" },                     /* flags are not bundled */
	{ "auth", "-lp" },
	{ "smtpd", "stray" },                   /* operand */
	{ "smtpd", "-" },
	{ "smtpd", "-c", "" },                  /* empty value */
	{ "smtpd", "--", "x" },
};

static int
count(const char *const *v)
{
	int n = 0;

	while (n < MAXARGS && v[n] != NULL)
		n++;
	return n;
}

static int
streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

START_TEST(test_good)
{
	const struct good_case *c = &good[_i];
	struct server_args a;
	char *err = NULL;
	int i, n;

	ck_assert_msg(server_args_parse(count(c->argv), (char **)c->argv, &a, &err) == 0,
	    "case %d: got error \"%s\"", _i, err ? err : "");
	ck_assert_msg(streq(a.config_dir, c->config_dir), "case %d: config_dir got %s want %s",
	    _i, a.config_dir ? a.config_dir : "NULL", c->config_dir ? c->config_dir : "NULL");
	ck_assert_msg(streq(a.service, c->service), "case %d: service", _i);
	ck_assert_msg(streq(a.type, c->type), "case %d: type", _i);
	ck_assert_int_eq(a.privileged, c->privileged);
	ck_assert_int_eq(a.chroot_, c->chroot_);
	ck_assert_int_eq(a.login_listener, c->login_listener);
	ck_assert_int_eq(a.verbose, c->verbose);
	for (n = 0; n < 4 && c->overrides[n] != NULL; n++)
		;
	ck_assert_int_eq((int)strv_len(a.overrides), n);
	for (i = 0; i < n; i++)
		ck_assert_str_eq(a.overrides[i], c->overrides[i]);
	server_args_free(&a);
	ck_assert_ptr_null(a.overrides);
}
END_TEST

START_TEST(test_bad)
{
	struct server_args a;
	char *err = NULL;

	ck_assert_msg(server_args_parse(count(bad[_i]), (char **)bad[_i], &a, &err) < 0,
	    "case %d (%s %s) was accepted", _i, bad[_i][1], bad[_i][2] ? bad[_i][2] : "");
	ck_assert_ptr_nonnull(err);
	ck_assert(strlen(err) > 0);
	free(err);
	server_args_free(&a);
}
END_TEST

/* argc is authoritative: words past it are never read. */
START_TEST(test_argc_bound)
{
	char *argv[] = { "smtpd", "-n", "smtp", "-c", NULL };
	struct server_args a;
	char *err = NULL;

	ck_assert_int_eq(server_args_parse(3, argv, &a, &err), 0);
	ck_assert_str_eq(a.service, "smtp");
	ck_assert_ptr_null(a.config_dir);
	server_args_free(&a);
	ck_assert_int_lt(server_args_parse(4, argv, &a, &err), 0);
	free(err);
	server_args_free(&a);
}
END_TEST

/* spawn's words after the options: kept whole, options-like words too
 * (they belong to the command); refused by every other service. */
START_TEST(test_operands)
{
	char *argv[] = { "spawn", "-c", "/etc/postern", "-n", "policyd-spf", "-t", "unix",
		"-p", "-o", "maillog_file=/dev/stderr", "user=nobody",
		"argv=/usr/bin/policyd-spf", "-v", "/etc/x.conf", NULL };
	int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
	struct server_args a;
	char *err = NULL;

	ck_assert_int_eq(server_args_parse_ex(argc, argv, 1, &a, &err), 0);
	ck_assert_str_eq(a.service, "policyd-spf");
	ck_assert_int_eq(a.privileged, 1);
	ck_assert_int_eq(a.verbose, 0);
	ck_assert_int_eq((int)strv_len(a.overrides), 1);
	ck_assert_int_eq((int)strv_len(a.operands), 4);
	ck_assert_str_eq(a.operands[0], "user=nobody");
	ck_assert_str_eq(a.operands[1], "argv=/usr/bin/policyd-spf");
	ck_assert_str_eq(a.operands[2], "-v");
	ck_assert_str_eq(a.operands[3], "/etc/x.conf");
	server_args_free(&a);
	ck_assert_ptr_null(a.operands);
	ck_assert_int_lt(server_args_parse(argc, argv, &a, &err), 0);
	ck_assert_ptr_nonnull(strstr(err, "user=nobody"));
	free(err);
	server_args_free(&a);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("server_args");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_operands);
	tcase_add_loop_test(tc, test_good, 0, (int)(sizeof(good) / sizeof(good[0])));
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_argc_bound);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
