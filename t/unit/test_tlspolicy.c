/*
 * test_tlspolicy - smtp_tls_security_level parsing, the
 * smtp_tls_policy_maps lookup order with an in-memory table, and the
 * protocol and cipher settings (Postfix's syntax) with in-memory
 * parameters.
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
		int rc = tlspolicy_find(cases[i].nexthop, cases[i].def, lookup, &t, &lev, &why,
		    NULL);

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
	    &why, NULL), 0);
	ck_assert_str_eq(t.keys, "[mx.b.test]:2525 mx.b.test .b.test .test ");
	t.keys[0] = '\0';
	ck_assert_int_eq(tlspolicy_find("[127.0.0.3]:25", TLS_LEV_MAY, lookup, &t, &lev,
	    &why, NULL), 0);
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
	    &why, NULL), -1);
	ck_assert_int_eq(lev, TLS_LEV_ENCRYPT);
	ck_assert_ptr_nonnull(strstr(why, "lookup failed"));
	/* No table: the default. */
	ck_assert_int_eq(tlspolicy_find("example.net", TLS_LEV_VERIFY, NULL, NULL, &lev,
	    &why, NULL), 0);
	ck_assert_int_eq(lev, TLS_LEV_VERIFY);
}
END_TEST

static unsigned
protos(const char *spec)
{
	unsigned mask = 99;
	const char *err = NULL;

	if (tls_protocols_parse(spec, &mask, &err) < 0) {
		ck_assert_ptr_nonnull(err);
		ck_assert_uint_eq(mask, 0);
		return 0;
	}
	return mask;
}

START_TEST(protocols)
{
	const unsigned both = TLS_VERS_12 | TLS_VERS_13;

	ck_assert_uint_eq(protos(""), both);
	ck_assert_uint_eq(protos(NULL), both);
	ck_assert_uint_eq(protos("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"), both);
	ck_assert_uint_eq(protos("!SSLv2:!SSLv3"), both);
	ck_assert_uint_eq(protos(">=TLSv1"), both);
	ck_assert_uint_eq(protos(">=TLSv1.2"), both);
	ck_assert_uint_eq(protos(">=TLSv1.3"), TLS_VERS_13);
	ck_assert_uint_eq(protos("<=TLSv1.2"), TLS_VERS_12);
	ck_assert_uint_eq(protos("!TLSv1.3"), TLS_VERS_12);
	ck_assert_uint_eq(protos("!tlsv1.2 !SSLv3"), TLS_VERS_13);    /* any case */
	ck_assert_uint_eq(protos("TLSv1.2"), TLS_VERS_12);            /* only these */
	ck_assert_uint_eq(protos("TLSv1.2, TLSv1.3"), both);
	ck_assert_uint_eq(protos(">=TLSv1.2 <=TLSv1.3 !TLSv1.2"), TLS_VERS_13);
	/* nothing Postern speaks left, or a word that is no protocol */
	ck_assert_uint_eq(protos("<=TLSv1.1"), 0);
	ck_assert_uint_eq(protos("TLSv1, TLSv1.1"), 0);
	ck_assert_uint_eq(protos("!TLSv1.2, !TLSv1.3"), 0);
	ck_assert_uint_eq(protos(">=TLSv1.3 <=TLSv1.2"), 0);
	ck_assert_uint_eq(protos("TLSv1.4"), 0);
	ck_assert_uint_eq(protos("!"), 0);
	ck_assert_uint_eq(protos(">="), 0);
	ck_assert_uint_eq(protos("=>TLSv1.2"), 0);
	ck_assert_uint_eq(protos("SSLv2x"), 0);
}
END_TEST

static const struct kv settings_params[] = {
	{ "smtpd_tls_protocols", "!SSLv2, !SSLv3" },
	{ "smtpd_tls_mandatory_protocols", ">=TLSv1.3" },
	{ "smtpd_tls_ciphers", "medium" },
	{ "smtpd_tls_mandatory_ciphers", "HIGH" },
	{ "smtpd_tls_exclude_ciphers", "aNULL, RC4:MD5" },
	{ "smtpd_tls_mandatory_exclude_ciphers", " 3DES " },
	{ "tls_high_cipherlist", "HIGH" },
	{ "tls_medium_cipherlist", "HIGH:MEDIUM" },
	{ "smtp_tls_protocols", "TLSv1.4" },
	{ "smtp_tls_mandatory_protocols", "" },
	{ "smtp_tls_ciphers", "medium" },
	{ "smtp_tls_mandatory_ciphers", "strong" },
	{ "smtp_tls_exclude_ciphers", "" },
	{ "smtp_tls_mandatory_exclude_ciphers", "" },
};

struct params {
	const struct kv *kv;
	size_t n;
};

/* A tls_param_fn over an in-memory table (arg: struct params). */
static const char *
param(const char *name, const void *arg)
{
	const struct params *t = arg;
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->kv[i].k, name) == 0)
			return t->kv[i].v;
	ck_abort_msg("unexpected parameter %s", name);
	return "";
}

static const struct params settings_table = {
	settings_params, sizeof(settings_params) / sizeof(settings_params[0])
};

START_TEST(settings)
{
	struct tls_settings t;
	char *err = NULL;

	ck_assert_int_eq(tls_settings_get("smtpd", 0, param, &settings_table, &t, &err), 0);
	ck_assert_uint_eq(t.versions, TLS_VERS_12 | TLS_VERS_13);
	ck_assert_str_eq(t.ciphers, "HIGH:MEDIUM:!aNULL:!RC4:!MD5");
	tls_settings_free(&t);
	ck_assert_ptr_null(t.ciphers);
	/* mandatory: its own versions and grade, both exclusion lists */
	ck_assert_int_eq(tls_settings_get("smtpd", 1, param, &settings_table, &t, &err), 0);
	ck_assert_uint_eq(t.versions, TLS_VERS_13);
	ck_assert_str_eq(t.ciphers, "HIGH:!aNULL:!RC4:!MD5:!3DES");
	tls_settings_free(&t);
	/* the parameter is named in what goes wrong */
	ck_assert_int_eq(tls_settings_get("smtp", 0, param, &settings_table, &t, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "smtp_tls_protocols = TLSv1.4: "));
	xfree(&err);
	ck_assert_int_eq(tls_settings_get("smtp", 1, param, &settings_table, &t, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "smtp_tls_mandatory_ciphers = strong: "
	    "unknown cipher grade"));
	xfree(&err);
	ck_assert_ptr_null(t.ciphers);
}
END_TEST

static const struct kv smtp_params[] = {
	{ "smtp_tls_ciphers", "medium" },
	{ "smtp_tls_mandatory_ciphers", "high" },
	{ "smtp_tls_exclude_ciphers", "RC4" },
	{ "smtp_tls_mandatory_exclude_ciphers", "MD5" },
	{ "tls_high_cipherlist", "HIGH" },
	{ "tls_medium_cipherlist", "HIGH:MEDIUM" },
	{ "tls_low_cipherlist", "LOW" },
};

static const struct params smtp_table = {
	smtp_params, sizeof(smtp_params) / sizeof(smtp_params[0])
};

/* A policy entry's attributes over the level's settings. */
static char *
apply_policy(const char *entry, int mandatory, unsigned *versions, int *rc)
{
	struct tls_settings t = { TLS_VERS_12 | TLS_VERS_13, xstrdup("BASE") };
	char *err = NULL, *r;

	*rc = tls_settings_policy(entry, mandatory, param, &smtp_table, &t, &err);
	*versions = t.versions;
	if (*rc < 0) {
		ck_assert_ptr_nonnull(err);
		tls_settings_free(&t);
		return err;
	}
	ck_assert_ptr_null(err);
	r = t.ciphers;
	return r;
}

START_TEST(policy_attributes)
{
	unsigned v;
	int rc;
	char *r;

	/* no attributes, or ones read elsewhere: the level's settings */
	r = apply_policy("encrypt", 1, &v, &rc);
	ck_assert_str_eq(r, "BASE");
	ck_assert_uint_eq(v, TLS_VERS_12 | TLS_VERS_13);
	free(r);
	r = apply_policy("verify match=hostname:nexthop", 1, &v, &rc);
	ck_assert_str_eq(r, "BASE");
	free(r);
	r = apply_policy("encrypt protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1:!TLSv1.2", 1,
	    &v, &rc);
	ck_assert_uint_eq(v, TLS_VERS_13);
	ck_assert_str_eq(r, "BASE");
	free(r);
	/* a grade: its list, less the level's exclusions and exclude= */
	r = apply_policy("encrypt ciphers=low exclude=3DES:SHA1", 1, &v, &rc);
	ck_assert_str_eq(r, "LOW:!RC4:!MD5:!3DES:!SHA1");
	free(r);
	r = apply_policy("may exclude=AES256", 0, &v, &rc);
	ck_assert_str_eq(r, "HIGH:MEDIUM:!RC4:!AES256");
	free(r);
	r = apply_policy("  encrypt   ciphers=HIGH  ", 1, &v, &rc);
	ck_assert_str_eq(r, "HIGH:!RC4:!MD5");
	free(r);
	/* what cannot be applied is an error, never the weaker default */
	r = apply_policy("encrypt protocols=TLSv1.1", 1, &v, &rc);
	ck_assert_int_eq(rc, -1);
	ck_assert_ptr_nonnull(strstr(r, "protocols=TLSv1.1: "));
	free(r);
	r = apply_policy("encrypt ciphers=strong", 1, &v, &rc);
	ck_assert_int_eq(rc, -1);
	ck_assert_ptr_nonnull(strstr(r, "ciphers=strong: unknown cipher grade"));
	free(r);
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
	tcase_add_test(tc, protocols);
	tcase_add_test(tc, settings);
	tcase_add_test(tc, policy_attributes);
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
