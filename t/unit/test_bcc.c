/*
 * test_bcc - always_bcc, sender_bcc_maps and recipient_bcc_maps: which
 * copies a message gets, with inline tables and a configuration written
 * to a temporary directory; and a table that fails its lookups.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"
#include "mail/bcc.h"
#include "mail/config.h"

static char tmpdir[64];

static void
configure(const char *text)
{
	char path[128], *err = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/postern.conf", tmpdir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
	ck_assert_msg(config_load(tmpdir, &err) == 0, "%s", err ? err : "?");
}

static void
setup(void)
{
	strcpy(tmpdir, "/tmp/test_bcc.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	log_open("test_bcc", "/dev/stderr");
}

static void
teardown(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/postern.conf", tmpdir);
	unlink(path);
	rmdir(tmpdir);
}

/* The copies for one message, space separated ("" for none; "FAIL"). */
static char *
copies(struct bcc *b, const char *sender, const char *rcpts)
{
	char **r = strv_split_list(rcpts), **list = NULL, *out;
	struct buf o = BUF_INIT(0);

	if (bcc_collect(b, sender, r, &list) < 0)
		buf_puts(&o, "FAIL");
	for (size_t i = 0; list != NULL && list[i] != NULL; i++)
		buf_printf(&o, "%s%s", i ? " " : "", list[i]);
	out = xstrdup(buf_cstr(&o));
	buf_free(&o);
	strv_free(&r);
	strv_free(&list);
	return out;
}

#define ASSERT_COPIES(b, sender, rcpts, want) do { \
	char *got_ = copies((b), (sender), (rcpts)); \
	ck_assert_str_eq(got_, (want)); \
	free(got_); \
} while (0)

START_TEST(test_none)
{
	struct bcc *b;
	char *err = NULL;

	configure("myorigin = example.test\n");
	ck_assert_ptr_nonnull(b = bcc_open(&err));
	ASSERT_COPIES(b, "a@x.test", "bob@example.test", "");
	bcc_close(&b);
	ck_assert_ptr_null(b);
}
END_TEST

START_TEST(test_tables)
{
	struct bcc *b;
	char *err = NULL;

	configure("myorigin = example.test\n"
	    "always_bcc = archive\n"
	    "sender_bcc_maps = inline:{alice@example.test=sent, "
	    "@lists.example.org=lists@example.test, {bad@x.test = a@x.test b@x.test}}\n"
	    "recipient_bcc_maps = inline:{bob@example.test=bob-copy@example.test, "
	    "@other.test=other@example.test}\n");
	ck_assert_ptr_nonnull(b = bcc_open(&err));
	/* always_bcc and the sender's, qualified with myorigin */
	ASSERT_COPIES(b, "alice@example.test", "carol@example.test",
	    "archive@example.test sent@example.test");
	/* the sender's domain; the domain of a key is case-blind */
	ASSERT_COPIES(b, "owner@Lists.Example.ORG", "carol@example.test",
	    "archive@example.test lists@example.test");
	/* each recipient's, by address or by domain, each copy once */
	ASSERT_COPIES(b, "x@y.test", "bob@example.test, a@other.test, b@other.test",
	    "archive@example.test bob-copy@example.test other@example.test");
	/* not to an address the message already has */
	ASSERT_COPIES(b, "x@y.test", "archive@example.test, bob-copy@example.test, "
	    "bob@example.test", "");
	/* the null sender has no sender copy, but the others */
	ASSERT_COPIES(b, "", "bob@example.test",
	    "archive@example.test bob-copy@example.test");
	/* a value that is not one address makes no copy (and loses no mail) */
	ASSERT_COPIES(b, "bad@x.test", "carol@example.test", "archive@example.test");
	bcc_close(&b);
}
END_TEST

START_TEST(test_failures)
{
	struct bcc *b;
	char *err = NULL, cf[512];

	/* a table that cannot be opened: named in the error */
	configure("sender_bcc_maps = hash:/etc/postfix/sender_bcc\n");
	ck_assert_ptr_null(b = bcc_open(&err));
	ck_assert_ptr_nonnull(strstr(err, "sender_bcc_maps: "));
	free(err);
	/* one whose lookups fail (a text table with a bad line): no copy is
	 * made, and the caller hears it */
	snprintf(cf, sizeof(cf), "%s/rcpt_bcc", tmpdir);
	{
		FILE *f = fopen(cf, "w");

		ck_assert_ptr_nonnull(f);
		fputs("bob@example.test copy@example.test\nno-value-here\n", f);
		fclose(f);
	}
	snprintf(cf, sizeof(cf), "always_bcc = archive@example.test\n"
	    "recipient_bcc_maps = texthash:%s/rcpt_bcc\n", tmpdir);
	configure(cf);
	ck_assert_ptr_nonnull(b = bcc_open(&err));
	ASSERT_COPIES(b, "x@y.test", "bob@example.test", "FAIL");
	bcc_close(&b);
	snprintf(cf, sizeof(cf), "%s/rcpt_bcc", tmpdir);
	unlink(cf);
}
END_TEST

static Suite *
bcc_suite(void)
{
	Suite *s = suite_create("bcc");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_none);
	tcase_add_test(tc, test_tables);
	tcase_add_test(tc, test_failures);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(bcc_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
