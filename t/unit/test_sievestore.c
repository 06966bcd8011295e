/* Unit tests for store/sievestore: Pigeonhole's layout, names that
 * cannot leave the directory, quotas, the active link. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/strv.h"
#include "store/sievestore.h"

static char home[PATH_MAX];
static struct sstore st;

static void
setup(void)
{
	char *d, *a;

	snprintf(home, sizeof(home), "/tmp/sstore.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(home));
	d = sstore_expand("~/sieve", home);
	a = sstore_expand("~/.dovecot.sieve", home);
	sstore_init(&st, d, a);
	free(d);
	free(a);
}

static void
teardown(void)
{
	char *cmd = xasprintf("rm -rf '%s'", home);

	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	sstore_free(&st);
}

START_TEST(test_names)
{
	static const struct {
		const char *name;
		int ok;
	} nc[] = {
		{ "vacation", 1 }, { "my rules", 1 }, { "r\xc3\xa8gles", 1 }, { "", 0 },
		{ ".hidden", 0 }, { "..", 0 }, { "a/b", 0 }, { "../x", 0 }, { "a\\b", 0 },
		{ "a\nb", 0 }, { "\xff", 0 },
	};
	const char *why;
	char longname[200];

	for (size_t i = 0; i < sizeof(nc) / sizeof(nc[0]); i++)
		ck_assert_msg((sstore_name_ok(nc[i].name, &why) == 0) == nc[i].ok, "%zu", i);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(sstore_name_ok(longname, &why), -1);
}
END_TEST

START_TEST(test_put_list_activate)
{
	char **names = NULL, *active = NULL, *data = NULL, *err = NULL, *name = NULL;
	char target[PATH_MAX];
	size_t len;
	ssize_t n;

	/* nothing yet: an empty list, no active script */
	ck_assert_int_eq(sstore_list(&st, &names, &active, &err), 0);
	ck_assert_uint_eq(strv_len(names), 0);
	strv_free(&names);
	ck_assert_int_eq(sstore_active_read(&st, &data, &len, NULL, &err), 0);

	ck_assert_int_eq(sstore_put(&st, "b", "keep;", 5, &err), 0);
	ck_assert_int_eq(sstore_put(&st, "a", "discard;", 8, &err), 0);
	ck_assert_int_eq(sstore_put(&st, "../evil", "x", 1, &err), -1);
	free(err);
	err = NULL;
	ck_assert_int_eq(sstore_list(&st, &names, &active, &err), 0);
	ck_assert_uint_eq(strv_len(names), 2);
	ck_assert_str_eq(names[0], "a");
	ck_assert_ptr_null(active);
	strv_free(&names);

	ck_assert_int_eq(sstore_activate(&st, "nope", &err), SSTORE_NOTFOUND);
	free(err);
	err = NULL;
	ck_assert_int_eq(sstore_activate(&st, "a", &err), 0);
	/* Pigeonhole's relative link */
	n = readlink(st.active, target, sizeof(target) - 1);
	ck_assert_int_gt(n, 0);
	target[n] = '\0';
	ck_assert_str_eq(target, "sieve/a.sieve");
	ck_assert_int_eq(sstore_active_read(&st, &data, &len, &name, &err), 1);
	ck_assert_str_eq(data, "discard;");
	ck_assert_str_eq(name, "a");
	free(data);
	free(name);
	ck_assert_int_eq(sstore_list(&st, &names, &active, &err), 0);
	ck_assert_str_eq(active, "a");
	free(active);
	strv_free(&names);

	/* the active script cannot be deleted; renaming it moves the link */
	ck_assert_int_eq(sstore_delete(&st, "a", &err), SSTORE_ACTIVE);
	free(err);
	err = NULL;
	ck_assert_int_eq(sstore_rename(&st, "a", "b", &err), SSTORE_EXISTS);
	free(err);
	err = NULL;
	ck_assert_int_eq(sstore_rename(&st, "a", "c", &err), 0);
	ck_assert_int_eq(sstore_active_read(&st, &data, &len, &name, &err), 1);
	ck_assert_str_eq(name, "c");
	free(data);
	free(name);
	ck_assert_int_eq(sstore_get(&st, "c", &data, &len, &err), 0);
	ck_assert_uint_eq(len, 8);
	free(data);
	/* deactivate, then delete */
	ck_assert_int_eq(sstore_activate(&st, NULL, &err), 0);
	ck_assert_int_eq(sstore_active_read(&st, &data, &len, NULL, &err), 0);
	ck_assert_int_eq(sstore_delete(&st, "c", &err), 0);
	ck_assert_int_eq(sstore_delete(&st, "c", &err), SSTORE_NOTFOUND);
	free(err);
}
END_TEST

START_TEST(test_quota)
{
	char *err = NULL;

	st.max_scripts = 2;
	st.max_storage = 20;
	st.max_size = 12;
	ck_assert_int_eq(sstore_put(&st, "a", "0123456789", 10, &err), 0);
	ck_assert_int_eq(sstore_put(&st, "b", "0123456789abc", 13, &err), SSTORE_QUOTA);
	free(err);
	err = NULL;
	ck_assert_int_eq(sstore_put(&st, "b", "0123456789", 10, &err), 0);
	/* replacing counts the new size, not twice */
	ck_assert_int_eq(sstore_put(&st, "b", "01234", 5, &err), 0);
	ck_assert_int_eq(sstore_put(&st, "c", "x", 1, &err), SSTORE_QUOTA);
	free(err);
	err = NULL;
	ck_assert_int_eq(sstore_put(&st, "a", "0123456789ab", 12, &err), 0);
	ck_assert_int_eq(sstore_put(&st, "b", "0123456789", 10, &err), SSTORE_QUOTA);
	free(err);
}
END_TEST

/* A link someone pointed outside the directory is never followed. */
START_TEST(test_link_outside)
{
	char *outside = xasprintf("%s/secret.sieve", home), *data = NULL, *err = NULL;
	size_t len;
	FILE *f = fopen(outside, "w");

	ck_assert_ptr_nonnull(f);
	fputs("discard;", f);
	fclose(f);
	ck_assert_int_eq(sstore_put(&st, "a", "keep;", 5, &err), 0);
	ck_assert_int_eq(symlink(outside, st.active), 0);
	ck_assert_int_eq(sstore_active_read(&st, &data, &len, NULL, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "outside"));
	free(err);
	/* a symlinked script inside the directory is not read either */
	unlink(st.active);
	{
		char *l = xasprintf("%s/sieve/l.sieve", home);

		ck_assert_int_eq(symlink(outside, l), 0);
		free(l);
	}
	ck_assert_int_eq(sstore_activate(&st, "l", &err), SSTORE_NOTFOUND);
	free(err);
	/* a plain file as the active script is read (Pigeonhole compatible) */
	ck_assert_int_eq(rename(outside, st.active), 0);
	ck_assert_int_eq(sstore_active_read(&st, &data, &len, NULL, &err), 1);
	ck_assert_str_eq(data, "discard;");
	free(data);
	free(outside);
}
END_TEST

static Suite *
sstore_suite(void)
{
	Suite *s = suite_create("sievestore");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_put_list_activate);
	tcase_add_test(tc, test_quota);
	tcase_add_test(tc, test_link_outside);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sstore_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
