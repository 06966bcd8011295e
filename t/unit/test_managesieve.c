/* Unit tests for lib/proto/managesieve.c: the ManageSieve reply lines and
 * the capability block. (Commands are parsed by lib/proto/imap.c in its
 * untagged mode: test_imap.c.) */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proto/managesieve.h"

START_TEST(test_replies)
{
	struct buf b = BUF_INIT(0);

	msieve_reply(&b, "NO", "QUOTA/MAXSIZE", "Too \"big\"");
	ck_assert_str_eq(buf_cstr(&b), "NO (QUOTA/MAXSIZE) \"Too \\\"big\\\"\"\r\n");
	buf_reset(&b);
	msieve_reply(&b, "OK", NULL, "line 1\r\nline 2");
	ck_assert_str_eq(buf_cstr(&b), "OK {14}\r\nline 1\r\nline 2\r\n");
	buf_reset(&b);
	msieve_capabilities(&b, MSIEVE_CAP_SASL | MSIEVE_CAP_STARTTLS, "fileinto", 4);
	ck_assert_str_eq(buf_cstr(&b), "\"IMPLEMENTATION\" \"Postern\"\r\n"
	    "\"SIEVE\" \"fileinto\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n\"STARTTLS\"\r\n"
	    "\"MAXREDIRECTS\" \"4\"\r\n\"VERSION\" \"1.0\"\r\n");
	buf_reset(&b);
	msieve_capabilities(&b, MSIEVE_CAP_AUTHED | MSIEVE_CAP_STARTTLS, "x", 0);
	ck_assert_str_eq(buf_cstr(&b), "\"IMPLEMENTATION\" \"Postern\"\r\n"
	    "\"SIEVE\" \"x\"\r\n\"VERSION\" \"1.0\"\r\n");
	buf_free(&b);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("managesieve");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_replies);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
