/*
 * test_milter_client - lib/mail/milter_client.c: smtpd_milters /
 * non_smtpd_milters lists in Postfix's syntax, per-milter settings in
 * braces, and every malformed entry refused; envelope edits (sender,
 * recipients, quarantine) applied in order.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mail/milter_client.h"
#include "proto/milter.h"
#include "util/alloc.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct milter_spec_defaults defs = {
	.connect_timeout = 30, .command_timeout = 30, .content_timeout = 300,
	.default_action = MILTER_DEF_TEMPFAIL, .protocol = 6, .steps = MILTER_P_ALL,
};

START_TEST(test_list)
{
	struct milter_spec *v;
	size_t n;
	const char *err = NULL;

	ck_assert_int_eq(milter_list_parse("inet:127.0.0.1:8891, unix:/run/m.sock "
	    "{ inet:[::1]:10025, connect_timeout=10s, default_action=accept,"
	    " command_timeout=1m, content_timeout=2m, protocol=4 }", &defs, &v, &n,
	    &err), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(v[0].host, "127.0.0.1");
	ck_assert_uint_eq(v[0].port, 8891);
	ck_assert_int_eq(v[0].default_action, MILTER_DEF_TEMPFAIL);
	ck_assert_int_eq(v[0].connect_timeout, 30);
	ck_assert(v[1].is_unix);
	ck_assert_str_eq(v[1].path, "/run/m.sock");
	ck_assert_str_eq(v[2].host, "::1");
	ck_assert_uint_eq(v[2].port, 10025);
	ck_assert_str_eq(v[2].endpoint, "inet:[::1]:10025");
	ck_assert_int_eq(v[2].connect_timeout, 10);
	ck_assert_int_eq(v[2].command_timeout, 60);
	ck_assert_int_eq(v[2].content_timeout, 120);
	ck_assert_int_eq(v[2].protocol, 4);
	ck_assert_uint_eq(v[2].steps, milter_protocol_steps(4));
	ck_assert_int_eq(v[0].protocol, 6);
	ck_assert_uint_eq(v[0].steps, MILTER_P_ALL);
	ck_assert_int_eq(v[2].default_action, MILTER_DEF_ACCEPT);
	milter_specs_free(&v, n);
	ck_assert_ptr_null(v);

	ck_assert_int_eq(milter_list_parse("  ", &defs, &v, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(v);
}
END_TEST

static const char *const bad[] = {
	"inet:host",
	"inet::25",
	"inet:h:0",
	"inet:h:65536",
	"inet:h:25x",
	"inet:[::1:25",
	"unix:relative",
	"tcp:h:25",
	"{ inet:h:25",
	"{ inet:h:25, bogus=1 }",
	"{ inet:h:25, default_action=maybe }",
	"{ inet:h:25, connect_timeout=soon }",
	"{ inet:h:25, protocol=7 }",
	"{ inet:h:25, protocol=5 }",
	"{ inet:h:25 { unix:/x } }",
	"{ }",
	"inet:h:25 }",
};

START_TEST(test_bad)
{
	struct milter_spec *v = NULL;
	size_t n = 0;
	const char *err = NULL;

	ck_assert_msg(milter_list_parse(bad[_i], &defs, &v, &n, &err) == -1,
	    "accepted %s", bad[_i]);
	ck_assert_ptr_nonnull(err);
}
END_TEST

START_TEST(test_default_names)
{
	enum milter_default d;

	ck_assert_int_eq(milter_default_parse("quarantine", &d), 0);
	ck_assert_int_eq(d, MILTER_DEF_QUARANTINE);
	ck_assert_str_eq(milter_default_name(MILTER_DEF_REJECT), "reject");
	ck_assert_int_eq(milter_default_parse("Accept", &d), -1);
}
END_TEST

static void
add(struct milter_edits *e, int code, const char *str, const char *value)
{
	struct milter_reply rep = { .code = code, .str = str, .value = value };
	const char *err;
	ck_assert_int_eq(milter_edits_add(e, MILTER_A_ALL, &rep, &err), 0);
}

START_TEST(test_envelope)
{
	struct milter_envelope env = { 0 };
	struct milter_edits e;
	const char *err = NULL;

	env.sender = xstrdup("a@x.test");
	env.rcpts = xcalloc(2, sizeof(char *));
	env.rcpt_args = xcalloc(2, sizeof(char *));
	env.rcpts[0] = xstrdup("B@y.test");
	env.rcpts[1] = xstrdup("c@y.test");
	env.nrcpt = 2;
	milter_edits_init(&e, 0, 0);
	add(&e, MILTER_R_CHGFROM, "<>", NULL);
	add(&e, MILTER_R_DELRCPT, "<b@y.test>", NULL);
	add(&e, MILTER_R_ADDRCPT_PAR, "<d@z.test>", "NOTIFY=NEVER");
	add(&e, MILTER_R_ADDRCPT, "e@z.test", NULL);
	add(&e, MILTER_R_QUARANTINE, "looks odd", NULL);
	ck_assert_int_eq(milter_apply_envelope(&e, &env, &err), 0);
	ck_assert_str_eq(env.sender, "");
	ck_assert_uint_eq(env.nrcpt, 3);
	ck_assert_str_eq(env.rcpts[0], "c@y.test");
	ck_assert_str_eq(env.rcpts[1], "d@z.test");
	ck_assert_str_eq(env.rcpt_args[1], "NOTIFY=NEVER");
	ck_assert_str_eq(env.rcpts[2], "e@z.test");
	ck_assert_ptr_null(env.rcpt_args[2]);
	ck_assert(env.hold);
	ck_assert_str_eq(env.hold_reason, "looks odd");
	milter_edits_free(&e);

	/* Deleting everyone, or a malformed address, is an error. */
	milter_edits_init(&e, 0, 0);
	add(&e, MILTER_R_DELRCPT, "c@y.test", NULL);
	add(&e, MILTER_R_DELRCPT, "d@z.test", NULL);
	add(&e, MILTER_R_DELRCPT, "E@Z.TEST", NULL);
	ck_assert_int_eq(milter_apply_envelope(&e, &env, &err), -1);
	ck_assert_str_eq(err, "milter deleted every recipient");
	milter_edits_free(&e);
	milter_edits_init(&e, 0, 0);
	add(&e, MILTER_R_ADDRCPT, "<x@y\r\nRCPT TO:<z@w>>", NULL);
	ck_assert_int_eq(milter_apply_envelope(&e, &env, &err), -1);
	milter_edits_free(&e);
	milter_edits_init(&e, 0, 0);
	add(&e, MILTER_R_ADDRCPT, "<>", NULL);
	ck_assert_int_eq(milter_apply_envelope(&e, &env, &err), -1);
	milter_edits_free(&e);
	milter_envelope_free(&env);
	ck_assert_ptr_null(env.rcpts);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("milter_client");
	TCase *tc = tcase_create("milter_client");

	tcase_add_test(tc, test_list);
	tcase_add_loop_test(tc, test_bad, 0, N(bad));
	tcase_add_test(tc, test_default_names);
	tcase_add_test(tc, test_envelope);
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
