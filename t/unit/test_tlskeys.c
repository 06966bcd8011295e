/* Unit tests for util/tlskeys: the shared ticket key chain and its file. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/tlskeys.h"

static const unsigned char secret_a[TLSKEYS_SECRET_LEN] = "0123456789abcdef0123456789abcde";

/* Two processes given the same file agree on every later epoch's key,
 * whichever order they advance in. */
START_TEST(test_chain_agrees)
{
	struct tlskeys a, b;

	tlskeys_init(&a, secret_a, 60, 100);
	tlskeys_init(&b, secret_a, 60, 100);
	tlskeys_advance(&a, 101 * 60);
	tlskeys_advance(&a, 103 * 60 + 59);
	tlskeys_advance(&b, 103 * 60);
	ck_assert_int_eq(a.epoch, 103);
	ck_assert_int_eq(b.epoch, 103);
	ck_assert_mem_eq(a.cur.name, b.cur.name, TLSKEYS_NAME_LEN);
	ck_assert_mem_eq(a.cur.aes, b.cur.aes, 32);
	ck_assert_mem_eq(a.cur.mac, b.cur.mac, 32);
	ck_assert_int_eq(a.have_prev, 1);
	ck_assert_mem_eq(a.prev.mac, b.prev.mac, 32);
}
END_TEST

/* Rotation: the previous key is still accepted (and said to be the
 * previous one), the one before that is not; the clock going back
 * changes nothing. */
START_TEST(test_rotation)
{
	struct tlskeys k;
	struct tlskey k100, k101;
	int prev;

	tlskeys_init(&k, secret_a, 60, 100);
	k100 = k.cur;
	ck_assert_ptr_eq(tlskeys_find(&k, k100.name, &prev), &k.cur);
	ck_assert_int_eq(prev, 0);
	tlskeys_advance(&k, 101 * 60);
	k101 = k.cur;
	ck_assert_mem_ne(k100.name, k101.name, TLSKEYS_NAME_LEN);
	ck_assert_mem_ne(k100.aes, k101.aes, 32);
	ck_assert_ptr_eq(tlskeys_find(&k, k100.name, &prev), &k.prev);
	ck_assert_int_eq(prev, 1);
	tlskeys_advance(&k, 99 * 60);
	ck_assert_int_eq(k.epoch, 101);
	tlskeys_advance(&k, 102 * 60);
	ck_assert_ptr_null(tlskeys_find(&k, k100.name, &prev));
	ck_assert_ptr_eq(tlskeys_find(&k, k101.name, &prev), &k.prev);
}
END_TEST

/* A process that reads the file after master advanced it computes what
 * the process that read the older file computes. */
START_TEST(test_file_round_trip)
{
	struct tlskeys m, early, late;
	char line[TLSKEYS_TEXT_MAX];
	const char *err;

	tlskeys_init(&m, secret_a, 3600, 500000);
	ck_assert_int_eq(tlskeys_format(&m, line, sizeof(line)), 0);
	ck_assert_int_eq(tlskeys_parse(line, strlen(line), &early, &err), 0);
	ck_assert_int_eq(early.have_prev, 0);
	tlskeys_advance(&m, 500001LL * 3600);
	ck_assert_int_eq(tlskeys_format(&m, line, sizeof(line)), 0);
	ck_assert_ptr_null(strstr(line, "30313233"));  /* the first secret is gone */
	ck_assert_int_eq(tlskeys_parse(line, strlen(line), &late, &err), 0);
	ck_assert_int_eq(late.interval, 3600);
	ck_assert_int_eq(late.have_prev, 1);
	tlskeys_advance(&early, 500001LL * 3600 + 5);
	ck_assert_mem_eq(early.cur.name, late.cur.name, TLSKEYS_NAME_LEN);
	ck_assert_mem_eq(early.cur.aes, late.cur.aes, 32);
	ck_assert_mem_eq(early.prev.aes, late.prev.aes, 32);
	ck_assert_mem_eq(early.prev.name, late.prev.name, TLSKEYS_NAME_LEN);
}
END_TEST

static const char *bad_files[] = {
	"",
	"postern-ticket-keys\n",
	"postern-ticket-keys 2 60 1 " "00000000000000000000000000000000"
	    "00000000000000000000000000000000 -\n",
	"postern-ticket-keys 1 0 1 " "00000000000000000000000000000000"
	    "00000000000000000000000000000000 -\n",
	"postern-ticket-keys 1 60 1 " "0000000000000000000000000000000"
	    "0000000000000000000000000000000 -\n",
	"postern-ticket-keys 1 60 1 " "0000000000000000000000000000000G"
	    "00000000000000000000000000000000 -\n",
	"postern-ticket-keys 1 60 1 " "00000000000000000000000000000000"
	    "00000000000000000000000000000000 00\n",
	"postern-ticket-keys 1 60 1 " "00000000000000000000000000000000"
	    "00000000000000000000000000000000 - extra\n",
	"postern-ticket-keys 1 60 1 " "00000000000000000000000000000000"
	    "00000000000000000000000000000000\n",
	"postern-ticket-keys 1 99999999999 1 " "00000000000000000000000000000000"
	    "00000000000000000000000000000000 -\n",
};

START_TEST(test_parse_rejects)
{
	struct tlskeys k;
	const char *err = NULL;

	ck_assert_int_eq(tlskeys_parse(bad_files[_i], strlen(bad_files[_i]), &k, &err), -1);
	ck_assert_ptr_nonnull(err);
}
END_TEST

START_TEST(test_parse_bounded)
{
	char big[TLSKEYS_TEXT_MAX + 10];
	struct tlskeys k;
	const char *err;

	memset(big, ' ', sizeof(big));
	ck_assert_int_eq(tlskeys_parse(big, sizeof(big), &k, &err), -1);
}
END_TEST

static Suite *
tlskeys_suite(void)
{
	Suite *s = suite_create("tlskeys");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_chain_agrees);
	tcase_add_test(tc, test_rotation);
	tcase_add_test(tc, test_file_round_trip);
	tcase_add_loop_test(tc, test_parse_rejects, 0,
	    (int)(sizeof(bad_files) / sizeof(bad_files[0])));
	tcase_add_test(tc, test_parse_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tlskeys_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
