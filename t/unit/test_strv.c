/* Unit tests for util/strv: list splitting and helpers. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/strv.h"

static const struct {
	const char *in;
	const char *want[6];
} split_cases[] = {
	{ .in = "", .want = { NULL } },
	{ .in = " , ,\t\n", .want = { NULL } },
	{ .in = "a", .want = { "a", NULL } },
	{ .in = "a,b", .want = { "a", "b", NULL } },
	{ .in = "  a ,, b\tc\r\nd  ", .want = { "a", "b", "c", "d", NULL } },
	{ .in = "127.0.0.0/8 [::1]/128, 10.0.0.1",
	  .want = { "127.0.0.0/8", "[::1]/128", "10.0.0.1", NULL } },
};

START_TEST(test_split_list)
{
	char **v = strv_split_list(split_cases[_i].in);
	size_t n = 0;

	ck_assert_ptr_nonnull(v);
	while (split_cases[_i].want[n] != NULL) {
		ck_assert_ptr_nonnull(v[n]);
		ck_assert_str_eq(v[n], split_cases[_i].want[n]);
		n++;
	}
	ck_assert_ptr_null(v[n]);
	ck_assert_uint_eq(strv_len(v), n);
	strv_free(&v);
	ck_assert_ptr_null(v);
}
END_TEST

START_TEST(test_split_seps)
{
	char **v = strv_split("a:b::c:", ":");

	ck_assert_uint_eq(strv_len(v), 3);
	ck_assert_str_eq(v[2], "c");
	strv_free(&v);
	v = strv_split(NULL, ":");
	ck_assert_uint_eq(strv_len(v), 0);
	strv_free(&v);
}
END_TEST

START_TEST(test_push_contains)
{
	char **v = NULL;
	char word[] = "Hello";

	ck_assert_uint_eq(strv_len(v), 0);
	ck_assert_int_eq(strv_contains_ci(v, "x"), 0);
	strv_push(&v, word);
	word[0] = 'J';             /* push copied it */
	strv_push(&v, "World");
	ck_assert_uint_eq(strv_len(v), 2);
	ck_assert_str_eq(v[0], "Hello");
	ck_assert_int_eq(strv_contains_ci(v, "hello"), 1);
	ck_assert_int_eq(strv_contains_ci(v, "WORLD"), 1);
	ck_assert_int_eq(strv_contains_ci(v, "worl"), 0);
	strv_free(&v);
	strv_free(&v);            /* second free is a no-op */
}
END_TEST

START_TEST(test_lower_trim)
{
	char a[] = "MiXeD-Case.EXAMPLE";
	char b[] = " \t spaced out \r\n";
	char c[] = "   ";
	char d[] = "";

	ck_assert_str_eq(str_lower(a), "mixed-case.example");
	ck_assert_str_eq(str_trim(b), "spaced out");
	ck_assert_str_eq(str_trim(c), "");
	ck_assert_str_eq(str_trim(d), "");
}
END_TEST

static Suite *
strv_suite(void)
{
	Suite *s = suite_create("strv");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_split_list, 0,
	    (int)(sizeof(split_cases) / sizeof(split_cases[0])));
	tcase_add_test(tc, test_split_seps);
	tcase_add_test(tc, test_push_contains);
	tcase_add_test(tc, test_lower_trim);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(strv_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
