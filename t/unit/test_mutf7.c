/*
 * test_mutf7 - lib/proto/mutf7.c: modified UTF-7 both ways (RFC 3501
 * 5.1.3's example and more), refusal of every non-canonical or broken
 * form, and strict UTF-8 validation.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mutf7.h"

static const struct {
	const char *mutf7, *utf8;
} good[] = {
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語" },
	{ "INBOX", "INBOX" },
	{ "", "" },
	{ "&-", "&" },
	{ "Tom &- Jerry", "Tom & Jerry" },
	{ "&AOk-t&AOk-", "été" },
	{ "&2D3eAA-", "\xf0\x9f\x98\x80" },              /* U+1F600, a surrogate pair */
	{ "&AAk-", "\t" },
	{ "&AH8-", "\x7f" },
	{ "a&AOkA6QDp-b", "aéééb" },
};

START_TEST(test_good)
{
	struct buf o = BUF_INIT(0);

	ck_assert_int_eq(mutf7_to_utf8(good[_i].mutf7, strlen(good[_i].mutf7), &o), 0);
	ck_assert_str_eq(buf_cstr(&o), good[_i].utf8);
	buf_reset(&o);
	ck_assert_int_eq(utf8_to_mutf7(good[_i].utf8, strlen(good[_i].utf8), &o), 0);
	ck_assert_str_eq(buf_cstr(&o), good[_i].mutf7);
	ck_assert(mutf7_valid(good[_i].mutf7, strlen(good[_i].mutf7)));
	buf_free(&o);
}
END_TEST

static const char *const bad_mutf7[] = {
	"&",                /* unterminated */
	"&U,BTFw",          /* unterminated run */
	"&AGE-",            /* "a" encoded: must stand for itself */
	"&AOk",             /* no '-' */
	"&AOl-",            /* non-zero pad bits */
	"&AOkA-",           /* 6 pad bits: a partial unit */
	"&A-",              /* fewer than 16 bits */
	"&AOk-&AOk-",       /* two adjacent runs: "&AOkA6Q-" is the one form */
	"&2D0-",            /* lone high surrogate */
	"&3gA-",            /* lone low surrogate */
	"&3gDYPQ-",         /* reversed pair */
	"&U/BTFw-",         /* '/' is not modified base64 */
	"&U=-",
	"caf\xc3\xa9",      /* raw 8-bit */
	"a\tb",             /* control character outside a run */
	"a\x7f",
	"&&-",
};

START_TEST(test_bad)
{
	struct buf o = BUF_INIT(0);

	buf_puts(&o, "keep");
	ck_assert_msg(mutf7_to_utf8(bad_mutf7[_i], strlen(bad_mutf7[_i]), &o) == -1,
	    "'%s' accepted as '%s'", bad_mutf7[_i], buf_cstr(&o));
	ck_assert_str_eq(buf_cstr(&o), "keep");
	ck_assert(!mutf7_valid(bad_mutf7[_i], strlen(bad_mutf7[_i])));
	buf_free(&o);
}
END_TEST

static const char *const bad_utf8[] = {
	"\xc0\xaf",             /* overlong '/' */
	"\xe0\x80\xaf",         /* overlong */
	"\xf0\x80\x80\xaf",     /* overlong */
	"\xed\xa0\x80",         /* surrogate U+D800 */
	"\xf4\x90\x80\x80",     /* above U+10FFFF */
	"\xc3",                 /* truncated */
	"\xe6\x97",
	"\x80",
	"\xff",
	"a\xc3(",
};

START_TEST(test_bad_utf8)
{
	struct buf o = BUF_INIT(0);

	ck_assert(!utf8_valid(bad_utf8[_i], strlen(bad_utf8[_i])));
	ck_assert_int_eq(utf8_to_mutf7(bad_utf8[_i], strlen(bad_utf8[_i]), &o), -1);
	ck_assert_uint_eq(o.len, 0);
	buf_free(&o);
}
END_TEST

START_TEST(test_utf8_valid)
{
	ck_assert(utf8_valid("", 0));
	ck_assert(utf8_valid("a\0b", 3));
	ck_assert(utf8_valid("\xed\x9f\xbf", 3));       /* U+D7FF */
	ck_assert(utf8_valid("\xee\x80\x80", 3));       /* U+E000 */
	ck_assert(utf8_valid("\xf4\x8f\xbf\xbf", 4));   /* U+10FFFF */
	ck_assert(utf8_valid("\xc2\x80", 2));
}
END_TEST

START_TEST(test_long_run)
{
	/* A run much longer than any internal chunk round-trips. */
	struct buf u = BUF_INIT(0), m = BUF_INIT(0), back = BUF_INIT(0);

	for (int i = 0; i < 1000; i++)
		buf_puts(&u, i % 3 ? "日" : "\xf0\x9f\x98\x80");
	ck_assert_int_eq(utf8_to_mutf7(u.data, u.len, &m), 0);
	ck_assert_uint_eq(m.data[0], '&');
	ck_assert_ptr_null(memchr(m.data + 1, '&', m.len - 1));
	ck_assert_int_eq(mutf7_to_utf8(m.data, m.len, &back), 0);
	ck_assert_uint_eq(back.len, u.len);
	ck_assert(memcmp(back.data, u.data, u.len) == 0);
	buf_free(&u);
	buf_free(&m);
	buf_free(&back);
}
END_TEST

static Suite *
mutf7_suite(void)
{
	Suite *s = suite_create("mutf7");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_good, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_loop_test(tc, test_bad, 0, sizeof(bad_mutf7) / sizeof(bad_mutf7[0]));
	tcase_add_loop_test(tc, test_bad_utf8, 0, sizeof(bad_utf8) / sizeof(bad_utf8[0]));
	tcase_add_test(tc, test_utf8_valid);
	tcase_add_test(tc, test_long_run);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(mutf7_suite());

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
