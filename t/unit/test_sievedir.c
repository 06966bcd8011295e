/* Unit tests for lib/store/sievedir.c and lib/proto/managesieve.c: script
 * names, the Pigeonhole layout on disk, quotas, the active link, and the
 * ManageSieve reply lines. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/strv.h"
#include "proto/managesieve.h"
#include "store/sievedir.h"

static char home[] = "/tmp/test_sievedir.XXXXXX";

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(home));
}

static void
teardown(void)
{
	char *cmd = xasprintf("rm -rf '%s'", home);

	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	strcpy(home, "/tmp/test_sievedir.XXXXXX");
}

START_TEST(test_names)
{
	ck_assert(sievedir_name_ok("vacation", 8));
	ck_assert(sievedir_name_ok("Ferien \xc3\xa4", 9));
	ck_assert(!sievedir_name_ok("", 0));
	ck_assert(!sievedir_name_ok("../x", 4));
	ck_assert(!sievedir_name_ok("a/b", 3));
	ck_assert(!sievedir_name_ok(".hidden", 7));
	ck_assert(!sievedir_name_ok("a\nb", 3));
	ck_assert(!sievedir_name_ok("a\0b", 3));
	ck_assert(!sievedir_name_ok("\xff", 1));
	char longname[SIEVEDIR_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname));
	ck_assert(sievedir_name_ok(longname, SIEVEDIR_NAME_MAX));
	ck_assert(!sievedir_name_ok(longname, SIEVEDIR_NAME_MAX + 1));
}
END_TEST

START_TEST(test_home)
{
	char *h = sievedir_home("/home/alice", "/home/alice/Maildir/");
	ck_assert_str_eq(h, "/home/alice");
	free(h);
	h = sievedir_home(NULL, "/var/vmail/example.test/bob/");
	ck_assert_str_eq(h, "/var/vmail/example.test/bob");
	free(h);
	h = sievedir_home("/", "/var/mail/carol/");
	ck_assert_str_eq(h, "/var/mail/carol");
	free(h);
}
END_TEST

static char *
link_target(void)
{
	static char t[256];
	char *p = xasprintf("%s/.dovecot.sieve", home);
	ssize_t n = readlink(p, t, sizeof(t) - 1);

	free(p);
	if (n < 0)
		return NULL;
	t[n] = '\0';
	return t;
}

START_TEST(test_lifecycle)
{
	struct sievedir d;
	struct buf b = BUF_INIT(0);
	char **v, *act;
	int a;

	sievedir_init(&d, home, 100, 2);
	/* Nothing there yet: an empty list, no active script. */
	ck_assert_int_eq(sievedir_list(&d, &v, &a), SIEVEDIR_OK);
	ck_assert_uint_eq(strv_len(v), 0);
	ck_assert_int_eq(a, -1);
	strv_free(&v);

	ck_assert_int_eq(sievedir_put(&d, "one", "keep;\r\n", 7), SIEVEDIR_OK);
	ck_assert_int_eq(sievedir_put(&d, "two", "discard;", 8), SIEVEDIR_OK);
	/* Quotas: a third script, a script over the size. Replacing fits. */
	ck_assert_int_eq(sievedir_put(&d, "three", "keep;", 5), SIEVEDIR_MAXSCRIPTS);
	ck_assert_int_eq(sievedir_fits(&d, "two", 50), SIEVEDIR_OK);
	ck_assert_int_eq(sievedir_fits(&d, "two", 101), SIEVEDIR_MAXSIZE);
	ck_assert_int_eq(sievedir_put(&d, "../evil", "keep;", 5), SIEVEDIR_BADNAME);

	ck_assert_int_eq(sievedir_get(&d, "one", &b), SIEVEDIR_OK);
	ck_assert_uint_eq(b.len, 7);
	ck_assert(memcmp(b.data, "keep;\r\n", 7) == 0);
	ck_assert_int_eq(sievedir_get(&d, "nope", &b), SIEVEDIR_NONEXISTENT);

	/* Activate: the Pigeonhole link, relative, into sieve/. */
	ck_assert_int_eq(sievedir_activate(&d, "nope"), SIEVEDIR_NONEXISTENT);
	ck_assert_int_eq(sievedir_activate(&d, "two"), SIEVEDIR_OK);
	ck_assert_str_eq(link_target(), "sieve/two.sieve");
	ck_assert_int_eq(sievedir_list(&d, &v, &a), SIEVEDIR_OK);
	ck_assert_uint_eq(strv_len(v), 2);
	ck_assert_str_eq(v[0], "one");
	ck_assert_int_eq(a, 1);
	strv_free(&v);
	ck_assert_int_eq(sievedir_delete(&d, "two"), SIEVEDIR_ISACTIVE);

	/* Renaming the active script moves the link with it. */
	ck_assert_int_eq(sievedir_rename(&d, "two", "one"), SIEVEDIR_EXISTS);
	ck_assert_int_eq(sievedir_rename(&d, "two", "deux"), SIEVEDIR_OK);
	ck_assert_str_eq(link_target(), "sieve/deux.sieve");
	ck_assert_int_eq(sievedir_active(&d, &act), SIEVEDIR_OK);
	ck_assert_str_eq(act, "deux");
	free(act);

	/* Deactivate, then delete. */
	ck_assert_int_eq(sievedir_activate(&d, ""), SIEVEDIR_OK);
	ck_assert_ptr_null(link_target());
	ck_assert_int_eq(sievedir_delete(&d, "deux"), SIEVEDIR_OK);
	ck_assert_int_eq(sievedir_delete(&d, "deux"), SIEVEDIR_NONEXISTENT);
	buf_free(&b);
	sievedir_free(&d);
}
END_TEST

START_TEST(test_users_own_file)
{
	/* A .dovecot.sieve the user wrote by hand is never replaced. */
	struct sievedir d;
	char *p = xasprintf("%s/.dovecot.sieve", home);
	FILE *f = fopen(p, "w");

	ck_assert_ptr_nonnull(f);
	fputs("keep;\n", f);
	fclose(f);
	sievedir_init(&d, home, 0, 0);
	ck_assert_int_eq(sievedir_put(&d, "a", "keep;", 5), SIEVEDIR_OK);
	ck_assert_int_eq(sievedir_activate(&d, "a"), SIEVEDIR_NOTOURS);
	struct stat st;
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	free(p);
	sievedir_free(&d);
}
END_TEST

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
	Suite *s = suite_create("sievedir");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_home);
	tcase_add_test(tc, test_lifecycle);
	tcase_add_test(tc, test_users_own_file);
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
