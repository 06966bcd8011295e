/*
 * test_owner - who owns a mailbox and where it is: system users by
 * home_mailbox or the spool, virtual addresses through the virtual_* maps
 * in Postfix's order, unsafe paths and low uids refused as temporary
 * failures, unknown users as "unknown user".
 */
#include <check.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fsutil.h"
#include "mail/maps.h"
#include "store/owner.h"

static char dir[64];
static struct owner_conf c;

static void
setup(void)
{
	char p[128], *err = NULL;
	static const char vm[] =
	    "alice@example.test example.test/alice/\n"
	    "bob@example.test example.test/bob.mbox\n"
	    "evil@example.test ../../etc/\n"
	    "low@example.test example.test/low/\n"
	    "@catch.test catch/\n";

	snprintf(dir, sizeof(dir), "/tmp/test_owner.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/vmailbox", dir);
	ck_assert_int_eq(file_write_atomic(p, vm, strlen(vm), 0644), 0);
	snprintf(p, sizeof(p), "lmdb:%s/vmailbox", dir);
	ck_assert_int_eq(map_build(p, &err), 0);
	snprintf(p, sizeof(p), "%s/vuid", dir);
	ck_assert_int_eq(file_write_atomic(p, "low@example.test 5\n", 19, 0644), 0);
	snprintf(p, sizeof(p), "lmdb:%s/vuid", dir);
	ck_assert_int_eq(map_build(p, &err), 0);

	memset(&c, 0, sizeof(c));
	c.home_mailbox = xstrdup("");
	c.spool = xstrdup("/var/mail");
	c.delim = xstrdup("+");
	c.vbase = xstrdup(dir);
	c.vmbox_specs = xasprintf("lmdb:%s/vmailbox", dir);
	c.vuid_specs = xasprintf("lmdb:%s/vuid, static:1234", dir);
	c.vgid_specs = xstrdup("static:1235");
	c.vmin_uid = 100;
	c.check_vmin = 1;
}

static void
teardown(void)
{
	char cmd[128];

	owner_conf_free(&c);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)system(cmd);
}

START_TEST(test_system_user)
{
	struct passwd *pw = getpwuid(getuid());
	struct mailbox_owner o;
	char *err = NULL, *want;

	ck_assert_ptr_nonnull(pw);
	char *name = xstrdup(pw->pw_name), *home = xstrdup(pw->pw_dir);

	ck_assert_int_eq(owner_system(&c, name, &o, &err), 1);
	ck_assert_uint_eq(o.uid, getuid());
	ck_assert_int_eq(o.is_virtual, 0);
	want = xasprintf("/var/mail/%s", name);
	ck_assert_str_eq(o.path, want);
	ck_assert_int_eq(o.in_spool, 1);
	ck_assert(!owner_is_maildir(o.path));
	free(want);
	owner_free(&o);

	free(c.spool);
	c.spool = xstrdup("/var/mail/");   /* a Maildir spool */
	ck_assert_int_eq(owner_lookup(&c, name, &o, &err), 1);
	want = xasprintf("/var/mail/%s/", name);
	ck_assert_str_eq(o.path, want);
	ck_assert(owner_is_maildir(o.path));
	free(want);
	owner_free(&o);

	free(c.home_mailbox);
	c.home_mailbox = xstrdup("Maildir/");
	ck_assert_int_eq(owner_system(&c, name, &o, &err), 1);
	want = xasprintf("%s/Maildir/", strcmp(home, "/") == 0 ? "" : home);
	ck_assert_str_eq(o.path, want);
	ck_assert_int_eq(o.in_spool, 0);
	free(want);
	owner_free(&o);

	ck_assert_int_eq(owner_system(&c, "no-such-user-here", &o, &err), 0);
	ck_assert_str_eq(err, "unknown user: \"no-such-user-here\"");
	free(err);
	free(name);
	free(home);
}
END_TEST

START_TEST(test_virtual)
{
	static const struct {
		const char *name;
		int rc;
		const char *path;     /* under dir; or the error text */
		long uid;
	} cases[] = {
		{ "alice@example.test", 1, "/example.test/alice/", 1234 },
		{ "Alice@EXAMPLE.test", 1, "/example.test/alice/", 1234 },
		{ "alice+lists@example.test", 1, "/example.test/alice/", 1234 },
		{ "bob@example.test", 1, "/example.test/bob.mbox", 1234 },
		{ "anyone@catch.test", 1, "/catch/", 1234 },
		{ "nobody@example.test", 0, "unknown user: \"nobody@example.test\"", 0 },
		{ "evil@example.test", -1, "unsafe or relative virtual mailbox path \"../../etc/\"", 0 },
		{ "low@example.test", -1, "virtual uid 5 below virtual_minimum_uid 100", 0 },
	};
	struct mailbox_owner o;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err = NULL, *want;
		int rc = owner_lookup(&c, cases[i].name, &o, &err);

		ck_assert_msg(rc == cases[i].rc, "%s: got %d, want %d (%s)", cases[i].name, rc,
		    cases[i].rc, err != NULL ? err : "");
		if (rc == 1) {
			want = xasprintf("%s%s", dir, cases[i].path);
			ck_assert_str_eq(o.path, want);
			ck_assert_int_eq(o.uid, cases[i].uid);
			ck_assert_int_eq(o.gid, 1235);
			ck_assert_int_eq(o.is_virtual, 1);
			free(want);
			owner_free(&o);
		} else {
			ck_assert_str_eq(err, cases[i].path);
		}
		free(err);
	}
}
END_TEST

/* Maps not configured or missing: temporary, never "unknown user". */
/* virtual_mailbox_limit_maps gives the quota; no entry, no quota; a
 * value that is not a number is a temporary failure, not "unlimited". */
START_TEST(test_virtual_quota)
{
	struct mailbox_owner o;
	char *err = NULL;

	ck_assert_int_eq(owner_lookup(&c, "alice@example.test", &o, &err), 1);
	ck_assert_uint_eq(o.quota, 0);
	owner_free(&o);
	c.vlimit_specs = xstrdup("static:4096");
	ck_assert_int_eq(owner_lookup(&c, "alice@example.test", &o, &err), 1);
	ck_assert_uint_eq(o.quota, 4096);
	owner_free(&o);
	maplist_close(&c.vlimit);
	free(c.vlimit_specs);
	c.vlimit_specs = xstrdup("static:lots");
	ck_assert_int_eq(owner_lookup(&c, "alice@example.test", &o, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "bad virtual_mailbox_limit_maps value"));
	free(err);
	/* System users: mailbox_size_limit. */
	c.mbox_limit = 1000;
	struct passwd *pw = getpwuid(getuid());
	ck_assert_int_eq(owner_system(&c, pw->pw_name, &o, &err), 1);
	ck_assert_uint_eq(o.quota, 1000);
	owner_free(&o);
}
END_TEST

START_TEST(test_virtual_unavailable)
{
	struct mailbox_owner o;
	char *err = NULL;

	free(c.vgid_specs);
	c.vgid_specs = xstrdup("");
	ck_assert_int_eq(owner_lookup(&c, "alice@example.test", &o, &err), -1);
	ck_assert_str_eq(err, "virtual mailbox maps unavailable or not configured");
	free(err);
	free(c.vgid_specs);
	c.vgid_specs = xasprintf("lmdb:%s/not-built-yet", dir);
	ck_assert_int_eq(owner_lookup(&c, "alice@example.test", &o, &err), -1);
	free(err);
}
END_TEST

static Suite *
owner_suite(void)
{
	Suite *s = suite_create("owner");
	TCase *tc = tcase_create("owner");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_system_user);
	tcase_add_test(tc, test_virtual);
	tcase_add_test(tc, test_virtual_unavailable);
	tcase_add_test(tc, test_virtual_quota);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(owner_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
