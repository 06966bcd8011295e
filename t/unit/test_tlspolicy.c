/*
 * test_tlspolicy - smtp_tls_security_level parsing and the
 * smtp_tls_policy_maps lookup order, with an in-memory table.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "mail/tlspolicy.h"

struct kv {
	const char *k, *v;
};

struct table {
	const struct kv *e;
	size_t n;
	int fail;               /* lookups return -1 */
	char keys[512];         /* every key tried, space separated */
};

static int
lookup(void *ctx, const char *key, char **value_r)
{
	struct table *t = ctx;
	size_t i;

	strncat(t->keys, key, sizeof(t->keys) - strlen(t->keys) - 2);
	strcat(t->keys, " ");
	if (t->fail)
		return -1;
	for (i = 0; i < t->n; i++)
		if (strcmp(t->e[i].k, key) == 0) {
			*value_r = xstrdup(t->e[i].v);
			return 1;
		}
	return 0;
}

START_TEST(levels)
{
	static const struct {
		const char *in;
		int rc;
		enum tls_level lev;
	} cases[] = {
		{ "none", 0, TLS_LEV_NONE }, { "may", 0, TLS_LEV_MAY },
		{ "encrypt", 0, TLS_LEV_ENCRYPT }, { "verify", 0, TLS_LEV_VERIFY },
		{ "secure", 0, TLS_LEV_VERIFY }, { "VERIFY", 0, TLS_LEV_VERIFY },
		{ "  encrypt protocols=>=TLSv1.2", 0, TLS_LEV_ENCRYPT },
		{ "verify match=hostname", 0, TLS_LEV_VERIFY },
		{ "dane", 0, TLS_LEV_MAY }, { "dane-only", 0, TLS_LEV_ENCRYPT },
		{ "", -1, 0 }, { "maybe", -1, 0 }, { "encrypted", -1, 0 }, { "ma", -1, 0 },
		{ " ", -1, 0 },
	};
	size_t i;
	enum tls_level lev;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		lev = TLS_LEV_MAY;
		int rc = tls_level_parse(cases[i].in, &lev);

		ck_assert_msg(rc == cases[i].rc, "\"%s\": rc %d want %d", cases[i].in, rc,
		    cases[i].rc);
		if (rc == 0)
			ck_assert_msg(lev == cases[i].lev, "\"%s\": level %s", cases[i].in,
			    tls_level_name(lev));
	}
	ck_assert_int_eq(tls_level_parse(NULL, &lev), -1);
	ck_assert_str_eq(tls_level_name(TLS_LEV_ENCRYPT), "encrypt");
}
END_TEST

static const struct kv policy[] = {
	{ "example.net", "encrypt" },
	{ "[10.0.0.1]:2525", "none" },
	{ "relay.example.org", "verify match=hostname" },
	{ ".corp.test", "verify" },
	{ "broken.test", "sometimes" },
};

START_TEST(lookup_table)
{
	static const struct {
		const char *nexthop;
		enum tls_level def;
		int rc;
		enum tls_level want;
	} cases[] = {
		{ "example.net", TLS_LEV_MAY, 0, TLS_LEV_ENCRYPT },
		{ "EXAMPLE.NET", TLS_LEV_MAY, 0, TLS_LEV_ENCRYPT },
		{ "example.net:587", TLS_LEV_MAY, 0, TLS_LEV_ENCRYPT },
		{ "[10.0.0.1]:2525", TLS_LEV_MAY, 0, TLS_LEV_NONE },
		{ "[relay.example.org]:587", TLS_LEV_MAY, 0, TLS_LEV_VERIFY },
		{ "mx.corp.test", TLS_LEV_MAY, 0, TLS_LEV_VERIFY },
		{ "a.b.corp.test", TLS_LEV_NONE, 0, TLS_LEV_VERIFY },
		{ "corp.test", TLS_LEV_MAY, 0, TLS_LEV_MAY },  /* ".corp.test" is for subdomains */
		{ "other.test", TLS_LEV_ENCRYPT, 0, TLS_LEV_ENCRYPT },
		{ "[10.0.0.1]", TLS_LEV_MAY, 0, TLS_LEV_MAY },
		{ "broken.test", TLS_LEV_MAY, -2, TLS_LEV_MAY },
		{ "", TLS_LEV_MAY, 0, TLS_LEV_MAY },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct table t = { policy, sizeof(policy) / sizeof(policy[0]), 0, "" };
		enum tls_level lev = TLS_LEV_NONE;
		const char *why = NULL;
		int rc = tlspolicy_find(cases[i].nexthop, cases[i].def, lookup, &t, &lev, &why);

		ck_assert_msg(rc == cases[i].rc, "%s: rc %d want %d", cases[i].nexthop, rc,
		    cases[i].rc);
		ck_assert_msg(lev == cases[i].want, "%s: got %s want %s (keys: %s)",
		    cases[i].nexthop, tls_level_name(lev), tls_level_name(cases[i].want),
		    t.keys);
		ck_assert_ptr_nonnull(why);
	}
}
END_TEST

START_TEST(lookup_order)
{
	struct table t = { NULL, 0, 0, "" };
	enum tls_level lev;
	const char *why;

	ck_assert_int_eq(tlspolicy_find("[Mx.B.test]:2525", TLS_LEV_MAY, lookup, &t, &lev,
	    &why), 0);
	ck_assert_str_eq(t.keys, "[mx.b.test]:2525 mx.b.test .b.test .test ");
	t.keys[0] = '\0';
	ck_assert_int_eq(tlspolicy_find("[127.0.0.3]:25", TLS_LEV_MAY, lookup, &t, &lev,
	    &why), 0);
	/* No parent-domain keys for an address literal. */
	ck_assert_str_eq(t.keys, "[127.0.0.3]:25 127.0.0.3 ");
}
END_TEST

START_TEST(lookup_failure)
{
	struct table t = { policy, 1, 1, "" };
	enum tls_level lev = TLS_LEV_NONE;
	const char *why = NULL;

	ck_assert_int_eq(tlspolicy_find("example.net", TLS_LEV_ENCRYPT, lookup, &t, &lev,
	    &why), -1);
	ck_assert_int_eq(lev, TLS_LEV_ENCRYPT);
	ck_assert_ptr_nonnull(strstr(why, "lookup failed"));
	/* No table: the default. */
	ck_assert_int_eq(tlspolicy_find("example.net", TLS_LEV_VERIFY, NULL, NULL, &lev,
	    &why), 0);
	ck_assert_int_eq(lev, TLS_LEV_VERIFY);
}
END_TEST

static Suite *
tlspolicy_suite(void)
{
	Suite *s = suite_create("tlspolicy");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, levels);
	tcase_add_test(tc, lookup_table);
	tcase_add_test(tc, lookup_order);
	tcase_add_test(tc, lookup_failure);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tlspolicy_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
