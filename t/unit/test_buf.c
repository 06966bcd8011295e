/* Unit tests for util/buf: growth, limits, NUL termination, consume. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

START_TEST(test_empty)
{
	struct buf b = BUF_INIT(0);

	ck_assert_str_eq(buf_cstr(&b), "");
	ck_assert_uint_eq(b.len, 0);
	buf_reset(&b);
	buf_consume(&b, 10);
	buf_truncate(&b, 0);
	ck_assert_str_eq(buf_cstr(&b), "");
	buf_free(&b);
}
END_TEST

START_TEST(test_growth)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	for (i = 0; i < 100000; i++)
		ck_assert_int_eq(buf_putc(&b, 'a' + (int)(i % 26)), 0);
	ck_assert_uint_eq(b.len, 100000);
	ck_assert(b.cap > b.len);
	ck_assert_int_eq(b.data[b.len], '\0');
	for (i = 0; i < 100000; i++)
		ck_assert_int_eq(b.data[i], 'a' + (int)(i % 26));
	buf_free(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(test_binary)
{
	struct buf b = BUF_INIT(0);
	static const char bin[] = { 'a', '\0', 'b', '\0', 'c' };

	ck_assert_int_eq(buf_append(&b, bin, sizeof(bin)), 0);
	ck_assert_uint_eq(b.len, 5);
	ck_assert_mem_eq(b.data, bin, 5);
	ck_assert_int_eq(b.data[5], '\0');
	buf_free(&b);
}
END_TEST

START_TEST(test_max)
{
	struct buf b = BUF_INIT(10);

	ck_assert_int_eq(buf_puts(&b, "0123456789"), 0);
	ck_assert_uint_eq(b.len, 10);
	errno = 0;
	ck_assert_int_eq(buf_putc(&b, 'x'), -1);
	ck_assert_int_eq(errno, ENOBUFS);
	ck_assert_str_eq(buf_cstr(&b), "0123456789");
	ck_assert_uint_eq(b.len, 10);
	errno = 0;
	ck_assert_int_eq(buf_printf(&b, "%d", 5), -1);
	ck_assert_int_eq(errno, ENOBUFS);
	ck_assert_str_eq(buf_cstr(&b), "0123456789");
	ck_assert_int_eq(buf_reserve(&b, SIZE_MAX), -1);
	buf_consume(&b, 5);
	ck_assert_str_eq(buf_cstr(&b), "56789");
	ck_assert_int_eq(buf_puts(&b, "abcdef"), -1);
	ck_assert_str_eq(buf_cstr(&b), "56789");
	ck_assert_int_eq(buf_puts(&b, "abcde"), 0);
	ck_assert_str_eq(buf_cstr(&b), "56789abcde");
	buf_free(&b);
	ck_assert_uint_eq(b.max, 10);
}
END_TEST

START_TEST(test_overflow)
{
	struct buf b = BUF_INIT(0);

	ck_assert_int_eq(buf_puts(&b, "x"), 0);
	errno = 0;
	ck_assert_int_eq(buf_reserve(&b, SIZE_MAX), -1);
	ck_assert_int_eq(errno, ENOBUFS);
	ck_assert_int_eq(buf_reserve(&b, SIZE_MAX - 1), -1);
	ck_assert_str_eq(buf_cstr(&b), "x");
	buf_free(&b);
}
END_TEST

START_TEST(test_printf)
{
	struct buf b = BUF_INIT(0);
	char big[1000];

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(buf_printf(&b, "%s=%d", "n", 42), 0);
	ck_assert_str_eq(buf_cstr(&b), "n=42");
	ck_assert_int_eq(buf_printf(&b, ";%s", big), 0);
	ck_assert_uint_eq(b.len, 4 + 1 + 999);
	ck_assert_int_eq(b.data[b.len], '\0');
	ck_assert_int_eq(b.data[5], 'z');
	buf_free(&b);
}
END_TEST

START_TEST(test_printf_exact_max)
{
	struct buf b = BUF_INIT(4);

	ck_assert_int_eq(buf_printf(&b, "%d", 1234), 0);
	ck_assert_str_eq(buf_cstr(&b), "1234");
	buf_reset(&b);
	ck_assert_int_eq(buf_printf(&b, "%d", 12345), -1);
	ck_assert_str_eq(buf_cstr(&b), "");
	buf_free(&b);
}
END_TEST

START_TEST(test_consume_truncate)
{
	struct buf b = BUF_INIT(0);

	buf_puts(&b, "hello world");
	buf_consume(&b, 6);
	ck_assert_str_eq(buf_cstr(&b), "world");
	buf_truncate(&b, 3);
	ck_assert_str_eq(buf_cstr(&b), "wor");
	buf_truncate(&b, 10);
	ck_assert_str_eq(buf_cstr(&b), "wor");
	buf_consume(&b, 3);
	ck_assert_str_eq(buf_cstr(&b), "");
	ck_assert_uint_eq(b.len, 0);
	buf_puts(&b, "again");
	buf_consume(&b, 100);
	ck_assert_uint_eq(b.len, 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_steal)
{
	struct buf b = BUF_INIT(0);
	char *s;

	s = buf_steal(&b);
	ck_assert_str_eq(s, "");
	free(s);
	buf_puts(&b, "mine");
	s = buf_steal(&b);
	ck_assert_str_eq(s, "mine");
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(buf_cstr(&b), "");
	free(s);
}
END_TEST

START_TEST(test_self_append)
{
	struct buf b = BUF_INIT(0);
	int i;

	buf_puts(&b, "ab");
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(buf_append(&b, b.data, b.len), 0);
	ck_assert_uint_eq(b.len, 2048);
	for (i = 0; i < 2048; i++)
		ck_assert_int_eq(b.data[i], i % 2 ? 'b' : 'a');
	buf_free(&b);
}
END_TEST

static Suite *
buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_growth);
	tcase_add_test(tc, test_binary);
	tcase_add_test(tc, test_max);
	tcase_add_test(tc, test_overflow);
	tcase_add_test(tc, test_printf);
	tcase_add_test(tc, test_printf_exact_max);
	tcase_add_test(tc, test_consume_truncate);
	tcase_add_test(tc, test_steal);
	tcase_add_test(tc, test_self_append);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(buf_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
