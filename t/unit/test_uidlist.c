/*
 * test_uidlist - lib/store/uidlist.c: Dovecot's dovecot-uidlist (versions
 * 3 and 1, a header whose N is older than the last line, bad and repeated
 * lines skipped) and dovecot-keywords, lookups by base name, keyword
 * letters of a file name.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "store/uidlist.h"

static void
parse(const char *text, struct dc_uidlist *u, int want)
{
	ck_assert_int_eq(dc_uidlist_parse(text, strlen(text), u), want);
}

static uint32_t
uid(const struct dc_uidlist *u, const char *base)
{
	const struct dc_uid *d = dc_uidlist_find(u, base, strlen(base));

	return d != NULL ? d->uid : 0;
}

START_TEST(test_v3)
{
	struct dc_uidlist u;

	/* As Dovecot 2.3 leaves it: lines appended after a header N1. */
	parse("3 V1796647670 N1 Gfe22860df6aa166b1c1d000083ecc375\n"
	    "1 :1700000000.M0P1.bench\n"
	    "2 W1260 :1700000001.M1P1.bench,S=1234,W=1260\n"
	    "5 G0123 :1700000004.M4P1.bench\n", &u, 0);
	ck_assert_uint_eq(u.uidvalidity, 1796647670u);
	ck_assert_uint_eq(u.uidnext, 6);
	ck_assert_uint_eq(u.n, 3);
	ck_assert_uint_eq(uid(&u, "1700000000.M0P1.bench"), 1);
	ck_assert_uint_eq(uid(&u, "1700000001.M1P1.bench,S=1234,W=1260"), 2);
	ck_assert_uint_eq(uid(&u, "1700000004.M4P1.bench"), 5);
	ck_assert_uint_eq(uid(&u, "1700000004.M4P1"), 0);      /* a prefix */
	ck_assert_uint_eq(uid(&u, "1700000004.M4P1.benchX"), 0);
	dc_uidlist_free(&u);

	parse("3 N40 V7\n1 :a\n", &u, 0);   /* fields in any order */
	ck_assert_uint_eq(u.uidvalidity, 7);
	ck_assert_uint_eq(u.uidnext, 40);
	dc_uidlist_free(&u);
}
END_TEST

START_TEST(test_v1)
{
	struct dc_uidlist u;

	parse("1 1234 9\n3 1700000000.M0P1.host\n4 1700000001.M1P1.host:2,S\n", &u, 0);
	ck_assert_uint_eq(u.uidvalidity, 1234);
	ck_assert_uint_eq(u.uidnext, 9);
	ck_assert_uint_eq(uid(&u, "1700000000.M0P1.host"), 3);
	ck_assert_uint_eq(uid(&u, "1700000001.M1P1.host"), 4);
	dc_uidlist_free(&u);
}
END_TEST

START_TEST(test_bad)
{
	struct dc_uidlist u;
	static const char *const headers[] = {
		"", "3\n", "3 N5\n", "3 V5\n", "4 V1 N2\n", "1 0 5\n", "V1 N2\n",
		"3 V99999999999 N2\n",
	};

	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		parse(headers[i], &u, -1);
		ck_assert_uint_eq(u.n, 0);
	}
	/* Lines that are skipped: UIDs not ascending, no name, a '/',
	 * a zero UID, garbage; a name listed twice loses both. */
	parse("3 V1 N100\n"
	    "10 :ten\n"
	    "9 :nine\n"
	    "10 :ten-again\n"
	    "11 W5\n"
	    "12 :../etc/passwd\n"
	    "0 :zero\n"
	    "x :garbage\n"
	    "13 :twice\n"
	    "14 :twice\n"
	    "15 :fifteen\n", &u, 0);
	ck_assert_uint_eq(u.n, 2);
	ck_assert_uint_eq(uid(&u, "ten"), 10);
	ck_assert_uint_eq(uid(&u, "fifteen"), 15);
	ck_assert_uint_eq(uid(&u, "twice"), 0);
	ck_assert_uint_eq(uid(&u, "nine"), 0);
	ck_assert_uint_eq(u.uidnext, 100);
	dc_uidlist_free(&u);
}
END_TEST

START_TEST(test_keywords)
{
	struct dc_uidlist u;
	char *k;
	static const char kw[] = "0 $Label1\n1 Junk\n2 bad keyword\n27 Far\n"
	    "3 (paren\n25 Last\n1 Again\n";

	parse("3 V1 N2\n1 :x\n", &u, 0);
	dc_keywords_parse(kw, strlen(kw), &u);
	ck_assert_str_eq(u.kw[0], "$Label1");
	ck_assert_str_eq(u.kw[1], "Junk");
	ck_assert_ptr_null(u.kw[2]);
	ck_assert_ptr_null(u.kw[3]);
	ck_assert_str_eq(u.kw[25], "Last");
	k = dc_uidlist_keywords(&u, "cur/x:2,FSabcz");
	ck_assert_str_eq(k, "$Label1 Junk Last");
	free(k);
	k = dc_uidlist_keywords(&u, "new/x");
	ck_assert_str_eq(k, "");
	free(k);
	k = dc_uidlist_keywords(&u, "cur/x:2,aa");
	ck_assert_str_eq(k, "$Label1");
	free(k);
	dc_uidlist_free(&u);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("uidlist");
	TCase *tc = tcase_create("uidlist");

	tcase_add_test(tc, test_v3);
	tcase_add_test(tc, test_v1);
	tcase_add_test(tc, test_bad);
	tcase_add_test(tc, test_keywords);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
