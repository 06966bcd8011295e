/* Unit tests for util/hex: one hexadecimal digit, either case. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/hex.h"

START_TEST(test_digits)
{
	const char *digits = "0123456789abcdef", *upper = "ABCDEF";
	int c, i;

	for (i = 0; i < 16; i++)
		ck_assert_int_eq(hex_digit(digits[i]), i);
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(hex_digit(upper[i]), 10 + i);
	/* Every other byte value, the neighbours of the ranges included. */
	for (c = -1; c < 256; c++)
		if (c < 0 || strchr("0123456789abcdefABCDEF", c) == NULL || c == 0)
			ck_assert_int_eq(hex_digit(c), -1);
}
END_TEST

static Suite *
hex_suite(void)
{
	Suite *s = suite_create("hex");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_digits);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(hex_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
