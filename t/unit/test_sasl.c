/*
 * test_sasl - lib/proto/sasl.c: bounded base64 both ways, the PLAIN
 * message (authzid handling, missing or extra NULs, bounds), and the
 * PLAIN and LOGIN server exchanges with and without initial responses,
 * cancellation and garbage.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sasl.h"

/* --- base64 ---------------------------------------------------------------- */

static const struct {
	const char *plain;
	const char *b64;
} b64_cases[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
	{ "Username:", "VXNlcm5hbWU6" },
	{ "Password:", "UGFzc3dvcmQ6" },
	{ "\xff\xfe\xfd", "//79" },
};

START_TEST(test_b64_roundtrip)
{
	struct buf b = BUF_INIT(0);
	const char *p = b64_cases[_i].plain, *e = b64_cases[_i].b64;

	ck_assert_int_eq(sasl_b64_encode(p, strlen(p), &b), 0);
	ck_assert_str_eq(buf_cstr(&b), e);
	buf_reset(&b);
	ck_assert_int_eq(sasl_b64_decode(e, strlen(e), &b, 100), 0);
	ck_assert_uint_eq(b.len, strlen(p));
	ck_assert(memcmp(buf_cstr(&b), p, b.len) == 0);
	buf_free(&b);
}
END_TEST

static const char *const b64_bad[] = {
	"Zg=", "Zg", "Z", "Zm9", "Zg==Zg==", "Z===", "====", "Zm9v\n", " Zm9v",
	"Zm-v", "Zm_v", "Zh==" /* non-zero pad bits */, "Zm9=" /* ditto */,
	"Zm=v", "=m9v", "Zm9v\0", "Zg=a",
};

START_TEST(test_b64_bad)
{
	struct buf b = BUF_INIT(0);
	const char *s = b64_bad[_i];
	size_t n = strlen(s) + (strcmp(s, "Zm9v") == 0 ? 1 : 0);

	ck_assert_msg(sasl_b64_decode(s, n, &b, 100) == -1, "\"%s\" decoded", s);
	buf_free(&b);
}
END_TEST

START_TEST(test_b64_bound)
{
	struct buf b = BUF_INIT(0);

	ck_assert_int_eq(sasl_b64_decode("Zm9vYmFy", 8, &b, 6), 0);
	buf_reset(&b);
	ck_assert_int_eq(sasl_b64_decode("Zm9vYmFy", 8, &b, 5), -1);
	buf_reset(&b);
	ck_assert_int_eq(sasl_b64_decode("Zm9vYg==", 8, &b, 4), 0);
	ck_assert_uint_eq(b.len, 4);
	buf_free(&b);
	/* a buf with its own max refuses too */
	struct buf small = BUF_INIT(3);
	ck_assert_int_eq(sasl_b64_decode("Zm9vYmFy", 8, &small, 100), -1);
	buf_free(&small);
}
END_TEST

/* --- PLAIN message ----------------------------------------------------------- */

struct plain_case {
	const char *msg;
	size_t len;
	int ok;
	const char *authzid, *authcid, *passwd;
};

static const struct plain_case plain_cases[] = {
	{ "\0alice\0secret", 13, 1, "", "alice", "secret" },
	{ "alice\0alice\0secret", 18, 1, "alice", "alice", "secret" },
	{ "bob\0alice\0pw", 12, 1, "bob", "alice", "pw" },
	{ "\0alice@example.test\0p w:\xc3\xa9", 26, 1, "", "alice@example.test", "p w:\xc3\xa9" },
	{ "\0alice\0", 7, 0, NULL, NULL, NULL },              /* empty password */
	{ "\0\0secret", 8, 0, NULL, NULL, NULL },             /* empty authcid */
	{ "alice\0secret", 12, 0, NULL, NULL, NULL },         /* one NUL */
	{ "alicesecret", 11, 0, NULL, NULL, NULL },           /* none */
	{ "\0alice\0sec\0ret", 14, 0, NULL, NULL, NULL },     /* three NULs */
	{ "", 0, 0, NULL, NULL, NULL },
	{ "\0al\nice\0secret", 14, 0, NULL, NULL, NULL },     /* control in name */
	{ "a\rb\0alice\0secret", 16, 0, NULL, NULL, NULL },   /* control in authzid */
	{ "\0al\x7fice\0secret", 14, 0, NULL, NULL, NULL },
};

START_TEST(test_plain_parse)
{
	const struct plain_case *c = &plain_cases[_i];
	struct sasl_creds cr = { NULL, NULL, NULL };
	const char *err = NULL;
	int r = sasl_plain_parse(c->msg, c->len, &cr, &err);

	if (!c->ok) {
		ck_assert_msg(r == -1, "case %d accepted", _i);
		ck_assert_ptr_nonnull(err);
		ck_assert_ptr_null(cr.authcid);
		return;
	}
	ck_assert_msg(r == 0, "case %d: %s", _i, err);
	ck_assert_str_eq(cr.authzid, c->authzid);
	ck_assert_str_eq(cr.authcid, c->authcid);
	ck_assert_str_eq(cr.passwd, c->passwd);
	sasl_creds_free(&cr);
	ck_assert_ptr_null(cr.passwd);
}
END_TEST

START_TEST(test_plain_bounds)
{
	char msg[2 * SASL_NAME_MAX + SASL_PASS_MAX + 8];
	struct sasl_creds cr = { NULL, NULL, NULL };
	size_t n;

	/* longest allowed name and password */
	memset(msg, 'a', sizeof(msg));
	msg[0] = '\0';
	msg[1 + SASL_NAME_MAX] = '\0';
	n = 2 + SASL_NAME_MAX + SASL_PASS_MAX;
	ck_assert_int_eq(sasl_plain_parse(msg, n, &cr, NULL), 0);
	ck_assert_uint_eq(strlen(cr.authcid), SASL_NAME_MAX);
	ck_assert_uint_eq(strlen(cr.passwd), SASL_PASS_MAX);
	sasl_creds_free(&cr);
	/* one more byte of password */
	ck_assert_int_eq(sasl_plain_parse(msg, n + 1, &cr, NULL), -1);
	/* one more byte of name */
	memset(msg, 'a', sizeof(msg));
	msg[0] = '\0';
	msg[2 + SASL_NAME_MAX] = '\0';
	ck_assert_int_eq(sasl_plain_parse(msg, 2 + SASL_NAME_MAX + 5, &cr, NULL), -1);
}
END_TEST

/* --- exchanges ---------------------------------------------------------------- */

static char *
b64(const char *p, size_t n)
{
	struct buf b = BUF_INIT(0);

	sasl_b64_encode(p, n, &b);
	return buf_steal(&b);
}

START_TEST(test_plain_initial)
{
	struct sasl_server s;
	struct buf ch = BUF_INIT(0);
	char *ir = b64("\0alice\0secret", 13);

	sasl_server_init(&s);
	ck_assert_int_eq(sasl_server_start(&s, "plain", ir, strlen(ir), &ch, NULL),
	    SASL_DONE);
	ck_assert_int_eq(s.mech, SASL_MECH_PLAIN);
	ck_assert_str_eq(s.creds.authcid, "alice");
	ck_assert_str_eq(s.creds.passwd, "secret");
	ck_assert_str_eq(s.creds.authzid, "");
	sasl_server_reset(&s);
	ck_assert_ptr_null(s.creds.passwd);
	free(ir);
	buf_free(&ch);
}
END_TEST

START_TEST(test_plain_two_step)
{
	struct sasl_server s;
	struct buf ch = BUF_INIT(0);
	char *resp = b64("alice\0alice\0secret", 18);

	sasl_server_init(&s);
	ck_assert_int_eq(sasl_server_start(&s, "PLAIN", NULL, 0, &ch, NULL),
	    SASL_CONTINUE);
	ck_assert_str_eq(buf_cstr(&ch), "");
	ck_assert_int_eq(sasl_server_step(&s, resp, strlen(resp), &ch, NULL), SASL_DONE);
	ck_assert_str_eq(s.creds.authzid, "alice");
	ck_assert_str_eq(s.creds.passwd, "secret");
	/* no further steps after DONE */
	ck_assert_int_eq(sasl_server_step(&s, resp, strlen(resp), &ch, NULL),
	    SASL_ERR_SYNTAX);
	sasl_server_reset(&s);
	free(resp);
	buf_free(&ch);
}
END_TEST

START_TEST(test_plain_errors)
{
	struct sasl_server s;
	struct buf ch = BUF_INIT(0);
	char *bad = b64("alice\0secret", 12), big[SASL_LINE_MAX + 8];
	const char *err = NULL;

	sasl_server_init(&s);
	ck_assert_int_eq(sasl_server_start(&s, "PLAIN", "!!!!", 4, &ch, &err),
	    SASL_ERR_DECODE);
	ck_assert_int_eq(sasl_server_start(&s, "PLAIN", bad, strlen(bad), &ch, &err),
	    SASL_ERR_SYNTAX);
	ck_assert_ptr_null(s.creds.authcid);
	ck_assert_int_eq(sasl_server_start(&s, "PLAIN", "=", 1, &ch, &err),
	    SASL_ERR_SYNTAX);
	memset(big, 'A', sizeof(big));
	ck_assert_int_eq(sasl_server_start(&s, "PLAIN", big, SASL_LINE_MAX + 4, &ch,
	    &err), SASL_ERR_DECODE);
	ck_assert_int_eq(sasl_server_start(&s, "CRAM-MD5", NULL, 0, &ch, &err),
	    SASL_ERR_MECH);
	ck_assert_int_eq(sasl_server_start(&s, "PLAINX", NULL, 0, &ch, &err),
	    SASL_ERR_MECH);
	/* cancel */
	ck_assert_int_eq(sasl_server_start(&s, "PLAIN", NULL, 0, &ch, &err),
	    SASL_CONTINUE);
	ck_assert_int_eq(sasl_server_step(&s, "*", 1, &ch, &err), SASL_CANCEL);
	sasl_server_reset(&s);
	free(bad);
	buf_free(&ch);
}
END_TEST

START_TEST(test_login)
{
	struct sasl_server s;
	struct buf ch = BUF_INIT(0);

	sasl_server_init(&s);
	ck_assert_int_eq(sasl_server_start(&s, "login", NULL, 0, &ch, NULL),
	    SASL_CONTINUE);
	ck_assert_str_eq(buf_cstr(&ch), "VXNlcm5hbWU6");
	ck_assert_int_eq(sasl_server_step(&s, "YWxpY2U=", 8, &ch, NULL), SASL_CONTINUE);
	ck_assert_str_eq(buf_cstr(&ch), "UGFzc3dvcmQ6");
	ck_assert_int_eq(sasl_server_step(&s, "c2VjcmV0", 8, &ch, NULL), SASL_DONE);
	ck_assert_str_eq(s.creds.authcid, "alice");
	ck_assert_str_eq(s.creds.passwd, "secret");
	ck_assert_str_eq(s.creds.authzid, "");
	ck_assert_str_eq(sasl_mech_name(s.mech), "LOGIN");

	/* initial response = the user name */
	ck_assert_int_eq(sasl_server_start(&s, "LOGIN", "YWxpY2U=", 8, &ch, NULL),
	    SASL_CONTINUE);
	ck_assert_str_eq(buf_cstr(&ch), "UGFzc3dvcmQ6");
	ck_assert_ptr_null(s.creds.passwd);
	ck_assert_int_eq(sasl_server_step(&s, "*", 1, &ch, NULL), SASL_CANCEL);
	ck_assert_ptr_null(s.creds.authcid);
	sasl_server_reset(&s);
	buf_free(&ch);
}
END_TEST

static const struct {
	const char *user_b64;
	const char *pass_b64;
	enum sasl_result want_user, want_pass;
} login_bad[] = {
	{ "=", NULL, SASL_ERR_SYNTAX, 0 },              /* empty user */
	{ "YQBi", NULL, SASL_ERR_SYNTAX, 0 },           /* "a\0b" */
	{ "YQpi", NULL, SASL_ERR_SYNTAX, 0 },           /* "a\nb" */
	{ "YWxpY2U", NULL, SASL_ERR_DECODE, 0 },        /* bad length */
	{ "YWxpY2U=", "=", SASL_CONTINUE, SASL_ERR_SYNTAX },    /* empty pw */
	{ "YWxpY2U=", "cABx", SASL_CONTINUE, SASL_ERR_SYNTAX }, /* "p\0q" */
	{ "YWxpY2U=", "c2Vj?mV0", SASL_CONTINUE, SASL_ERR_DECODE },
};

START_TEST(test_login_bad)
{
	struct sasl_server s;
	struct buf ch = BUF_INIT(0);
	const char *u = login_bad[_i].user_b64, *p = login_bad[_i].pass_b64;

	sasl_server_init(&s);
	ck_assert_int_eq(sasl_server_start(&s, "LOGIN", NULL, 0, &ch, NULL),
	    SASL_CONTINUE);
	ck_assert_int_eq(sasl_server_step(&s, u, strlen(u), &ch, NULL),
	    login_bad[_i].want_user);
	if (p != NULL)
		ck_assert_int_eq(sasl_server_step(&s, p, strlen(p), &ch, NULL),
		    login_bad[_i].want_pass);
	ck_assert_ptr_null(s.creds.passwd);
	sasl_server_reset(&s);
	buf_free(&ch);
}
END_TEST

/* A long user name for LOGIN: at the bound, and one over. */
START_TEST(test_login_bounds)
{
	struct sasl_server s;
	struct buf ch = BUF_INIT(0);
	char name[SASL_NAME_MAX + 2], *enc;

	memset(name, 'u', sizeof(name));
	sasl_server_init(&s);
	enc = b64(name, SASL_NAME_MAX);
	ck_assert_int_eq(sasl_server_start(&s, "LOGIN", enc, strlen(enc), &ch, NULL),
	    SASL_CONTINUE);
	free(enc);
	enc = b64(name, SASL_NAME_MAX + 1);
	ck_assert_int_eq(sasl_server_start(&s, "LOGIN", enc, strlen(enc), &ch, NULL),
	    SASL_ERR_DECODE);
	free(enc);
	sasl_server_reset(&s);
	buf_free(&ch);
}
END_TEST

/* Postfix's security options against our two plaintext mechanisms. */
START_TEST(test_security_options)
{
	const char *bad = "x";

	ck_assert_int_eq(sasl_plaintext_allowed("", &bad), 1);
	ck_assert_ptr_null(bad);
	ck_assert_int_eq(sasl_plaintext_allowed(NULL, &bad), 1);
	ck_assert_int_eq(sasl_plaintext_allowed("noanonymous", &bad), 1);
	ck_assert_int_eq(sasl_plaintext_allowed(" NoAnonymous ,", &bad), 1);
	ck_assert_int_eq(sasl_plaintext_allowed("noanonymous, noplaintext", &bad), 0);
	ck_assert_int_eq(sasl_plaintext_allowed("noactive", &bad), 0);
	ck_assert_int_eq(sasl_plaintext_allowed("nodictionary noanonymous", &bad), 0);
	ck_assert_int_eq(sasl_plaintext_allowed("mutual_auth", &bad), 0);
	ck_assert_int_eq(sasl_plaintext_allowed("forward_secrecy", &bad), 0);
	ck_assert_int_eq(sasl_plaintext_allowed("noanonymous, nosuch", &bad), -1);
	ck_assert_ptr_nonnull(bad);
	ck_assert_int_eq(sasl_plaintext_allowed("noanonymousx", &bad), -1);
	ck_assert_int_eq(sasl_plaintext_allowed("noplain", &bad), -1);
}
END_TEST

static Suite *
sasl_suite(void)
{
	Suite *s = suite_create("sasl");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_b64_roundtrip, 0, (int)(sizeof(b64_cases) / sizeof(b64_cases[0])));
	tcase_add_loop_test(tc, test_b64_bad, 0, (int)(sizeof(b64_bad) / sizeof(b64_bad[0])));
	tcase_add_test(tc, test_b64_bound);
	tcase_add_loop_test(tc, test_plain_parse, 0,
	    (int)(sizeof(plain_cases) / sizeof(plain_cases[0])));
	tcase_add_test(tc, test_plain_bounds);
	tcase_add_test(tc, test_plain_initial);
	tcase_add_test(tc, test_plain_two_step);
	tcase_add_test(tc, test_plain_errors);
	tcase_add_test(tc, test_login);
	tcase_add_loop_test(tc, test_login_bad, 0, (int)(sizeof(login_bad) / sizeof(login_bad[0])));
	tcase_add_test(tc, test_login_bounds);
	tcase_add_test(tc, test_security_options);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sasl_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
