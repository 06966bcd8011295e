/*
 * test_policy - the policy delegation protocol: attribute encoding and
 * the reply parser, whole and trickled a byte at a time, with the bounds
 * and the errors a misbehaving service can cause.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/log.h"
#include "proto/policy.h"

static const struct {
	const char *in;
	int rc;
	const char *action;   /* rc 1 */
	const char *err;      /* rc -1 */
} cases[] = {
	{ "action=DUNNO\n\n", 1, "DUNNO", NULL },
	{ "action=DEFER_IF_PERMIT Greylisted, see http://x/\n\n", 1,
	  "DEFER_IF_PERMIT Greylisted, see http://x/", NULL },
	{ "foo=bar\naction=REJECT no\naction=OK\n\n", 1, "REJECT no", NULL },
	{ "action=PREPEND X-A: b\r\n\r\n", 1, "PREPEND X-A: b", NULL },
	{ "action=REJECT a\tb\x01\n\n", 1, "REJECT a?b?", NULL },
	{ "action=OK\n\nextra=ignored\n", 1, "OK", NULL },
	{ "action=OK\n", 0, NULL, NULL },
	{ "", 0, NULL, NULL },
	{ "\n", -1, NULL, "without action" },
	{ "foo=bar\n\n", -1, NULL, "without action" },
	{ "garbage\naction=OK\n\n", -1, NULL, "name=value" },
};

/* The connection rules of smtpd's pool (smtpd/policy.c). */
START_TEST(test_conn_rules)
{
	/* request_limit 0: no limit; max_ttl ends reuse */
	ck_assert_int_eq(policy_conn_keep(1000, 0, 0, 1000000), 1);
	ck_assert_int_eq(policy_conn_keep(3, 3, 0, 1000000), 0);
	ck_assert_int_eq(policy_conn_keep(2, 3, 0, 1000000), 1);
	ck_assert_int_eq(policy_conn_keep(1, 0, 999999, 1000000), 1);
	ck_assert_int_eq(policy_conn_keep(1, 0, 1000000, 1000000), 0);
	/* idle wait: max_idle, cut short by what is left of max_ttl */
	ck_assert_uint_eq(policy_idle_ms(0, 300000, 1000000), 300000);
	ck_assert_uint_eq(policy_idle_ms(900000, 300000, 1000000), 100000);
	ck_assert_uint_eq(policy_idle_ms(2000000, 300000, 1000000), 0);
	/* a reused connection closed while idle: again at once, not a try */
	ck_assert_int_eq(policy_retry_decide(1, 0, 0, 1), POLICY_RETRY_NOW);
	/* a reply began, or a fresh connection failed: a try */
	ck_assert_int_eq(policy_retry_decide(1, 1, 1, 2), POLICY_RETRY_LATER);
	ck_assert_int_eq(policy_retry_decide(0, 0, 1, 2), POLICY_RETRY_LATER);
	ck_assert_int_eq(policy_retry_decide(0, 0, 2, 2), POLICY_GIVE_UP);
	ck_assert_int_eq(policy_retry_decide(0, 0, 1, 1), POLICY_GIVE_UP);
}
END_TEST

START_TEST(test_reply_whole_and_trickled)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *in = cases[i].in;
		size_t n = strlen(in);
		char *action = NULL;
		const char *err = NULL;
		int rc = policy_reply_parse(in, n, 4096, &action, &err);

		ck_assert_msg(rc == cases[i].rc, "%zu: got %d want %d", i, rc, cases[i].rc);
		if (rc == 1)
			ck_assert_str_eq(action, cases[i].action);
		if (rc == -1)
			ck_assert_msg(strstr(err, cases[i].err) != NULL, "%zu: %s", i, err);
		free(action);
		/* byte at a time: incomplete until the line that decides */
		for (size_t k = 0; k <= n; k++) {
			int r = policy_reply_parse(in, k, 4096, &action, &err);
			if (r == 1) {
				ck_assert_int_eq(cases[i].rc, 1);
				ck_assert_str_eq(action, cases[i].action);
				free(action);
				action = NULL;
				break;
			}
			if (r == -1) {
				ck_assert_int_eq(cases[i].rc, -1);
				break;
			}
		}
	}
}
END_TEST

START_TEST(test_reply_bound)
{
	char big[200];
	char *action = NULL;
	const char *err = NULL;

	memset(big, 'x', sizeof(big));
	memcpy(big, "a=", 2);
	ck_assert_int_eq(policy_reply_parse(big, 99, 100, &action, &err), 0);
	ck_assert_int_eq(policy_reply_parse(big, 100, 100, &action, &err), -1);
	ck_assert_str_eq(err, "reply too long");
	ck_assert_ptr_null(action);
}
END_TEST

START_TEST(test_attr)
{
	struct buf b = BUF_INIT(0);

	policy_attr(&b, "sender", "a@b");
	policy_attr(&b, "helo_name", "evil\r\naction=OK\n");
	policy_attr(&b, "sasl_username", NULL);
	ck_assert_str_eq(buf_cstr(&b), "sender=a@b\nhelo_name=evil??action=OK?\n"
	    "sasl_username=\n");
	buf_free(&b);
}
END_TEST

static Suite *
policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_reply_whole_and_trickled);
	tcase_add_test(tc, test_conn_rules);
	tcase_add_test(tc, test_reply_bound);
	tcase_add_test(tc, test_attr);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	int failures;

	log_open("test_policy", "/dev/null");
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
