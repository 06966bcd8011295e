/*
 * test_passwd - lib/mail/passwd.c: every scheme verifies a hash made at
 * test time (with crypt_gensalt + crypt directly, and with passwd_hash),
 * a wrong password fails, unknown schemes and malformed hashes never
 * match, scheme/prefix mismatches are refused, the constant-time compare
 * is a correct compare, and passwd-file fields are split.
 */
#include <check.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "mail/passwd.h"

static const struct {
	const char *scheme;
	const char *prefix;
} schemes[] = {
	{ "YESCRYPT", "$y$" },
	{ "SHA512-CRYPT", "$6$" },
	{ "SHA256-CRYPT", "$5$" },
	{ "BLF-CRYPT", "$2b$" },
	{ "BCRYPT", "$2b$" },
	{ "BLF-CRYPT", "$2y$" },
	{ "CRYPT", "$y$" },
	{ "CRYPT", "$6$" },
	{ "sha512-crypt", "$6$" },
};

/* A crypt string for pw made straight with libxcrypt. */
static char *
make_hash(const char *prefix, const char *pw)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;
	const char *out;

	ck_assert_ptr_nonnull(crypt_gensalt_rn(prefix, 0, NULL, 0, setting,
	    sizeof(setting)));
	memset(&cd, 0, sizeof(cd));
	out = crypt_rn(pw, setting, &cd, sizeof(cd));
	ck_assert_ptr_nonnull(out);
	ck_assert(out[0] != '*');
	return strdup(out);
}

START_TEST(test_scheme_verifies)
{
	char *h = make_hash(schemes[_i].prefix, "correct horse");
	char stored[512];

	snprintf(stored, sizeof(stored), "{%s}%s", schemes[_i].scheme, h);
	ck_assert_msg(passwd_verify("correct horse", stored) == PASSWD_OK,
	    "%s did not verify", stored);
	ck_assert_int_eq(passwd_verify("correct horsE", stored), PASSWD_MISMATCH);
	ck_assert_int_eq(passwd_verify("", stored), PASSWD_MISMATCH);
	ck_assert_int_eq(passwd_verify("correct horse ", stored), PASSWD_MISMATCH);
	free(h);
}
END_TEST

START_TEST(test_bare_hash_is_crypt)
{
	char *h = make_hash("$6$", "pw");

	ck_assert_int_eq(passwd_verify("pw", h), PASSWD_OK);
	ck_assert_int_eq(passwd_verify("pW", h), PASSWD_MISMATCH);
	free(h);
}
END_TEST

START_TEST(test_hash_new)
{
	static const char *const names[] = { NULL, "YESCRYPT", "SHA512-CRYPT",
	    "SHA256-CRYPT", "BLF-CRYPT", "bcrypt" };
	static const char *const want[] = { "{YESCRYPT}$y$", "{YESCRYPT}$y$",
	    "{SHA512-CRYPT}$6$", "{SHA256-CRYPT}$5$", "{BLF-CRYPT}$2b$",
	    "{BLF-CRYPT}$2b$" };
	const char *err = NULL;
	char *h = passwd_hash("s3cret: with spaces", names[_i], &err), *h2;

	ck_assert_msg(h != NULL, "%s: %s", names[_i] ? names[_i] : "default", err);
	ck_assert_msg(strncmp(h, want[_i], strlen(want[_i])) == 0, "got %s", h);
	ck_assert(strchr(h, ':') == NULL);
	ck_assert_int_eq(passwd_verify("s3cret: with spaces", h), PASSWD_OK);
	ck_assert_int_eq(passwd_verify("s3cret", h), PASSWD_MISMATCH);
	/* fresh salt every time */
	h2 = passwd_hash("s3cret: with spaces", names[_i], &err);
	ck_assert_ptr_nonnull(h2);
	ck_assert_str_ne(h, h2);
	free(h);
	free(h2);
}
END_TEST

START_TEST(test_hash_refused)
{
	const char *err = NULL;

	ck_assert_ptr_null(passwd_hash("pw", "PLAIN", &err));
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_null(passwd_hash("pw", "CRYPT", &err));
	ck_assert_ptr_null(passwd_hash("pw", "MD5-CRYPT", &err));
	ck_assert_ptr_null(passwd_hash("", NULL, &err));
	ck_assert_str_eq(passwd_scheme_canon("bcrypt"), "BLF-CRYPT");
	ck_assert_str_eq(passwd_scheme_canon("Yescrypt"), "YESCRYPT");
	ck_assert_ptr_null(passwd_scheme_canon("CRYPT"));
	ck_assert_ptr_null(passwd_scheme_canon("nope"));
}
END_TEST

START_TEST(test_bad_hashes)
{
	char *y = make_hash("$y$", "pw"), *s6 = make_hash("$6$", "pw");
	char *b = make_hash("$2b$", "pw");
	char buf[600];
	const char *bad[] = {
		"", "{}", "{", "{YESCRYPT", "{PLAIN}pw", "{MD5}abc", "{SSHA}abcd",
		"{YESCRYPT}", "{SHA512-CRYPT}", "{SHA512-CRYPT}$6$", "{SHA512-CRYPT}$6",
		"{BLF-CRYPT}$2x$05$abc", "{BLF-CRYPT}$2b$", "{CRYPT}*", "{CRYPT}!",
		"*", "!", "{CRYPT}$6$$", "{YESCRYPT}$y$j9T$",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(passwd_verify("pw", bad[i]) != PASSWD_OK, "\"%s\" matched",
		    bad[i]);
	for (i = 0; i < 9; i++)
		ck_assert_int_eq(passwd_verify("pw", bad[i]), PASSWD_BAD_HASH);

	/* right hash, wrong scheme label */
	snprintf(buf, sizeof(buf), "{SHA512-CRYPT}%s", y);
	ck_assert_int_eq(passwd_verify("pw", buf), PASSWD_BAD_HASH);
	snprintf(buf, sizeof(buf), "{YESCRYPT}%s", s6);
	ck_assert_int_eq(passwd_verify("pw", buf), PASSWD_BAD_HASH);
	snprintf(buf, sizeof(buf), "{SHA256-CRYPT}%s", b);
	ck_assert_int_eq(passwd_verify("pw", buf), PASSWD_BAD_HASH);
	/* truncated and altered hashes never match */
	snprintf(buf, sizeof(buf), "{YESCRYPT}%.*s", (int)strlen(y) - 1, y);
	ck_assert(passwd_verify("pw", buf) != PASSWD_OK);
	snprintf(buf, sizeof(buf), "{SHA512-CRYPT}%sA", s6);
	ck_assert(passwd_verify("pw", buf) != PASSWD_OK);
	/* an overlong hash */
	memset(buf, 'a', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	memcpy(buf, "{CRYPT}$6$", 10);
	ck_assert_int_eq(passwd_verify("pw", buf), PASSWD_BAD_HASH);
	ck_assert_int_eq(passwd_verify(NULL, s6), PASSWD_BAD_HASH);
	ck_assert_int_eq(passwd_verify("pw", NULL), PASSWD_BAD_HASH);
	free(y);
	free(s6);
	free(b);
}
END_TEST

/* Hashes moved over from Dovecot, PostfixAdmin or LDAP: verified, never
 * made (vectors from Python's hashlib and crypt, password "secret"). */
START_TEST(test_migrated_schemes)
{
	static const char *const ok[] = {
		"{SSHA512}aCu7JRc+kLsuEmFs1zTY+AiP7DSGnjjG+dH28Dp+E5usqoAixeTPihKqZmkWal4mUfp63tqvCAkFV1LKTDFH6XNhbHRzYWx0",
		"{SSHA256}oBmrdHcA6OZEkkCLeXh71YAerbvhXz1qqwjrPsXmEtNzYWx0c2FsdA==",
		"{ssha}1G904nLkTkGWjKNnQuB/hpWXC/hzYWx0c2FsdA==",
		"{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==",
		"{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=",
		"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
		"{MD5-CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//",
		"{MD5}$1$saltsalt$9xy1btjgzLYfb7hivXtC//",
	};
	const char *err = NULL;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(passwd_verify("secret", ok[i]) == PASSWD_OK, "%s", ok[i]);
		ck_assert_msg(passwd_verify("Secret", ok[i]) == PASSWD_MISMATCH, "%s", ok[i]);
		ck_assert_msg(passwd_verify("", ok[i]) == PASSWD_MISMATCH, "%s", ok[i]);
	}
	/* an unsalted digest labelled salted, a digest one byte short or
	 * long, bad base64, a crypt hash under a digest label */
	static const char *const bad[] = {
		"{SSHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==",
		"{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unog==",
		"{SHA256}oBmrdHcA6OZEkkCLeXh71YAerbvhXz1qqwjrPsXmEtNzYWx0c2FsdA==",
		"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ",
		"{SHA512}$6$abc$def",
		"{SSHA}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(passwd_verify("secret", bad[i]) == PASSWD_BAD_HASH, "%s", bad[i]);
	ck_assert_ptr_null(passwd_hash("pw", "SSHA512", &err));
	ck_assert_ptr_null(passwd_hash("pw", "MD5", &err));
	ck_assert_ptr_null(passwd_scheme_canon("MD5-CRYPT"));
}
END_TEST

START_TEST(test_streq_ct)
{
	ck_assert(passwd_streq_ct("abc", "abc"));
	ck_assert(passwd_streq_ct("", ""));
	ck_assert(!passwd_streq_ct("abc", "abd"));
	ck_assert(!passwd_streq_ct("abc", "ab"));
	ck_assert(!passwd_streq_ct("ab", "abc"));
	ck_assert(!passwd_streq_ct("", "a"));
	ck_assert(!passwd_streq_ct("a", ""));
}
END_TEST

START_TEST(test_field)
{
	char *f;

	f = passwd_field("{SHA512-CRYPT}$6$abc$def:1000:1000::/home/a::");
	ck_assert_str_eq(f, "{SHA512-CRYPT}$6$abc$def");
	free(f);
	f = passwd_field("{YESCRYPT}$y$j9T$x$y");
	ck_assert_str_eq(f, "{YESCRYPT}$y$j9T$x$y");
	free(f);
	f = passwd_field("");
	ck_assert_str_eq(f, "");
	free(f);
}
END_TEST

START_TEST(test_dummy)
{
	/* only that it runs and leaves later verifications intact */
	char *h = make_hash("$y$", "pw");

	char setting[CRYPT_GENSALT_OUTPUT_SIZE], *bare;

	passwd_dummy_prepare();
	passwd_dummy_verify("anything");
	passwd_dummy_verify("");
	ck_assert_int_eq(passwd_verify("pw", h), PASSWD_OK);
	free(h);
	/* The dummy is a bare setting: it must be verified (the full key
	 * derivation, a mismatch), not refused as malformed (no work,
	 * which would tell an unknown user by its speed). */
	ck_assert_ptr_nonnull(crypt_gensalt_rn("$y$", 0, NULL, 0, setting,
	    (int)sizeof(setting)));
	bare = xasprintf("{YESCRYPT}%s", setting);
	ck_assert_int_eq(passwd_verify("anything", bare), PASSWD_MISMATCH);
	free(bare);
}
END_TEST

static Suite *
passwd_suite(void)
{
	Suite *s = suite_create("passwd");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_scheme_verifies, 0,
	    (int)(sizeof(schemes) / sizeof(schemes[0])));
	tcase_add_test(tc, test_bare_hash_is_crypt);
	tcase_add_loop_test(tc, test_hash_new, 0, 6);
	tcase_add_test(tc, test_hash_refused);
	tcase_add_test(tc, test_bad_hashes);
	tcase_add_test(tc, test_migrated_schemes);
	tcase_add_test(tc, test_streq_ct);
	tcase_add_test(tc, test_field);
	tcase_add_test(tc, test_dummy);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(passwd_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
