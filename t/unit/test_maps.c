/*
 * test_maps - building LMDB tables from text, lookups, reopening after a
 * rebuild, static: and unix:passwd.byname, lists, listing and errors.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "mail/maps.h"

static char tmpdir[64];
static char logpath[128];

static void
setup(void)
{
	strcpy(tmpdir, "/tmp/test_maps.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
	log_open("test_maps", logpath);
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", tmpdir);
}

/* Write DIR/name and return "lmdb:DIR/name" (static storage). */
static const char *
source(const char *name, const char *text)
{
	static char spec[256];
	char path[200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	snprintf(spec, sizeof(spec), "lmdb:%s", path);
	return spec;
}

static void
build_ok(const char *spec)
{
	char *err = NULL;
	int r = map_build(spec, &err);

	ck_assert_msg(r == 0, "map_build %s: %s", spec, err ? err : "?");
}

static void
expect(struct map *m, const char *key, const char *want)
{
	char *v = NULL;
	int r = map_lookup(m, key, &v);

	if (want == NULL) {
		ck_assert_msg(r == 0, "%s: found \"%s\", want none", key, v ? v : "");
		ck_assert_ptr_null(v);
	} else {
		ck_assert_msg(r == 1, "%s: r=%d, want \"%s\"", key, r, want);
		ck_assert_str_eq(v, want);
	}
	free(v);
}

static const char aliases[] =
    "# /etc/aliases\n"
    "\n"
    "Root: admin\n"
    "postmaster:   root\n"
    "list: alice,\n"
    "   bob,\n"
    "# comment in a continuation\n"
    "\tcarol\n"
    "MixedCase Value Kept\n"
    "colon:nospace\n"
    "pipe: \"|/usr/bin/foo -x\"\n"
    "root: duplicate-ignored\n"
    "spaced   lots   of   space   \n";

START_TEST(test_build_lookup)
{
	const char *spec = source("aliases", aliases);
	struct map *m;
	char *err = NULL, path[200];
	struct stat st;

	build_ok(spec);
	snprintf(path, sizeof(path), "%s/aliases.lmdb", tmpdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0644);
	/* no lock file and no temporary left behind */
	snprintf(path, sizeof(path), "%s/aliases.lmdb-lock", tmpdir);
	ck_assert_int_ne(access(path, F_OK), 0);
	m = map_open(spec, &err);
	ck_assert_msg(m != NULL, "%s", err);
	expect(m, "root", "admin");
	expect(m, "ROOT", "admin");
	expect(m, "postmaster", "root");
	expect(m, "list", "alice, bob, carol");
	expect(m, "mixedcase", "Value Kept");
	expect(m, "MIXEDCASE", "Value Kept");
	expect(m, "colon", "nospace");
	expect(m, "pipe", "\"|/usr/bin/foo -x\"");
	expect(m, "spaced", "lots   of   space");
	expect(m, "nobody", NULL);
	expect(m, "", NULL);
	expect(m, "root:", NULL);
	{
		char big[2000];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		expect(m, big, NULL);
	}
	map_close(&m);
	ck_assert_ptr_null(m);
	{
		FILE *f = fopen(logpath, "r");
		char text[4096];
		size_t n;

		ck_assert_ptr_nonnull(f);
		n = fread(text, 1, sizeof(text) - 1, f);
		text[n] = '\0';
		fclose(f);
		ck_assert_msg(strstr(text, "aliases:12: duplicate entry for \"root\" ignored")
		    != NULL, "log: %s", text);
	}
}
END_TEST

START_TEST(test_umask_mode)
{
	const char *spec = source("virtual", "a@b.c x\n");
	char path[200];
	struct stat st;
	mode_t old = umask(077);

	build_ok(spec);
	umask(old);
	snprintf(path, sizeof(path), "%s/virtual.lmdb", tmpdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0644);
}
END_TEST

START_TEST(test_reopen_after_rebuild)
{
	const char *spec = source("t", "key one\n");
	struct map *m;
	char *err = NULL, specbuf[256];
	unsigned long gen;

	snprintf(specbuf, sizeof(specbuf), "%s", spec);
	build_ok(specbuf);
	m = map_open(specbuf, &err);
	ck_assert_ptr_nonnull(m);
	expect(m, "key", "one");
	gen = map_generation(m);
	ck_assert_int_eq(map_refresh(m), 0);
	/* same second, same size: the new inode is what tells */
	source("t", "key two\nnew yes\n");
	build_ok(specbuf);
	expect(m, "key", "two");
	expect(m, "new", "yes");
	ck_assert_uint_gt(map_generation(m), gen);
	source("t", "key six\n");
	build_ok(specbuf);
	expect(m, "key", "six");
	expect(m, "new", NULL);
	/* a removed table is a temporary error, not "not found" */
	{
		char path[200], *v = NULL;

		snprintf(path, sizeof(path), "%s/t.lmdb", tmpdir);
		ck_assert_int_eq(unlink(path), 0);
		ck_assert_int_eq(map_lookup(m, "key", &v), -1);
		ck_assert_ptr_null(v);
	}
	map_close(&m);
}
END_TEST

START_TEST(test_many_keys)
{
	struct buf b = BUF_INIT(0);
	const char *spec;
	struct map *m;
	char *err = NULL, key[32], want[32];
	int i;

	/* tiny entries stress the mapsize estimate */
	for (i = 0; i < 50000; i++)
		buf_printf(&b, "%d %d\n", i, i % 7);
	spec = source("many", buf_cstr(&b));
	build_ok(spec);
	m = map_open(spec, &err);
	ck_assert_ptr_nonnull(m);
	for (i = 0; i < 50000; i += 997) {
		snprintf(key, sizeof(key), "%d", i);
		snprintf(want, sizeof(want), "%d", i % 7);
		expect(m, key, want);
	}
	map_close(&m);
	buf_free(&b);
}
END_TEST

static const struct {
	const char *text;
	const char *want;
} bad_sources[] = {
	{ "good value\njustakey\n", ":2: expected format: key whitespace value" },
	{ "a b\n  c\nkey:\n", ":3: expected format" },
	{ "  leading continuation\n", ":1: continuation line without a preceding line" },
	{ ": value\n", ":1: missing key" },
	{ "key: \n", ":1: expected format" },
};

START_TEST(test_bad_source)
{
	const char *spec = source("bad", bad_sources[_i].text);
	char *err = NULL, path[200];

	ck_assert_int_eq(map_build(spec, &err), -2);
	ck_assert_msg(err != NULL && strstr(err, bad_sources[_i].want) != NULL,
	    "case %d: got \"%s\", want \"%s\"", _i, err ? err : "", bad_sources[_i].want);
	ck_assert_ptr_nonnull(strstr(err, "/bad:"));
	free(err);
	/* a failed build leaves no table behind */
	snprintf(path, sizeof(path), "%s/bad.lmdb", tmpdir);
	ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(test_long_key)
{
	char text[1200], *err = NULL;
	const char *spec;

	memset(text, 'k', 600);
	strcpy(text + 600, " v\n");
	spec = source("long", text);
	ck_assert_int_eq(map_build(spec, &err), -2);
	ck_assert_ptr_nonnull(strstr(err, "long:1: key longer than"));
	free(err);
}
END_TEST

START_TEST(test_build_errors)
{
	char *err = NULL, spec[256];

	ck_assert_int_eq(map_build("hash:/etc/aliases", &err), -2);
	ck_assert_ptr_nonnull(strstr(err, "'hash'"));
	free(err);
	ck_assert_int_eq(map_build("static:foo", &err), -2);
	free(err);
	ck_assert_int_eq(map_build("noprefix", &err), -2);
	free(err);
	ck_assert_int_eq(map_build("lmdb:", &err), -2);
	free(err);
	snprintf(spec, sizeof(spec), "lmdb:%s/missing", tmpdir);
	ck_assert_int_eq(map_build(spec, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	free(err);
}
END_TEST

START_TEST(test_open_errors)
{
	char *err = NULL, spec[256];

	ck_assert_ptr_null(map_open("hash:/etc/aliases", &err));
	ck_assert_ptr_nonnull(strstr(err, "unsupported map type 'hash'"));
	free(err);
	ck_assert_ptr_null(map_open("unix:group.byname", &err));
	ck_assert_ptr_nonnull(strstr(err, "group.byname"));
	free(err);
	ck_assert_ptr_null(map_open("justaword", &err));
	free(err);
	snprintf(spec, sizeof(spec), "lmdb:%s/nothere", tmpdir);
	ck_assert_ptr_null(map_open(spec, &err));
	ck_assert_ptr_nonnull(strstr(err, "nothere.lmdb"));
	free(err);
	/* a file that is not LMDB */
	source("junk.lmdb", "this is not an lmdb file, just text that is long "
	    "enough to be read as a meta page by a careless reader........\n");
	snprintf(spec, sizeof(spec), "lmdb:%s/junk", tmpdir);
	ck_assert_ptr_null(map_open(spec, &err));
	free(err);
}
END_TEST

START_TEST(test_static)
{
	struct map *m;
	char *err = NULL;

	m = map_open("static:OK", &err);
	ck_assert_ptr_nonnull(m);
	expect(m, "anything", "OK");
	expect(m, "", "OK");
	map_close(&m);
	m = map_open("static:{ two words }", &err);
	ck_assert_ptr_nonnull(m);
	expect(m, "x", "two words");
	map_close(&m);
}
END_TEST

START_TEST(test_unix_passwd)
{
	struct map *m;
	char *err = NULL, *v = NULL;

	m = map_open("unix:passwd.byname", &err);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(map_lookup(m, "root", &v), 1);
	ck_assert_msg(strncmp(v, "root:x:0:0:", 11) == 0, "%s", v);
	free(v);
	ck_assert_int_eq(map_lookup(m, "ROOT", &v), 1);
	free(v);
	ck_assert_int_eq(map_lookup(m, "no-such-user-here", &v), 0);
	ck_assert_int_eq(map_lookup(m, "", &v), 0);
	map_close(&m);
}
END_TEST

START_TEST(test_maplist)
{
	struct maplist *ml;
	char *err = NULL, *v = NULL, specs[600], a[256];

	snprintf(a, sizeof(a), "%s", source("a", "one A1\nshared fromA\n"));
	build_ok(a);
	build_ok(source("b", "two B2\nshared fromB\n"));
	snprintf(specs, sizeof(specs), "%s,  lmdb:%s/b\tstatic:{last resort}", a, tmpdir);
	ml = maplist_open(specs, &err);
	ck_assert_msg(ml != NULL, "%s", err);
	ck_assert_uint_eq(maplist_count(ml), 3);
	ck_assert_int_eq(maplist_empty(ml), 0);
	ck_assert_int_eq(maplist_lookup(ml, "one", &v), 1);
	ck_assert_str_eq(v, "A1");
	free(v);
	ck_assert_int_eq(maplist_lookup(ml, "TWO", &v), 1);
	ck_assert_str_eq(v, "B2");
	free(v);
	ck_assert_int_eq(maplist_lookup(ml, "shared", &v), 1);
	ck_assert_str_eq(v, "fromA");
	free(v);
	ck_assert_int_eq(maplist_lookup(ml, "zzz", &v), 1);
	ck_assert_str_eq(v, "last resort");
	free(v);
	ck_assert_ptr_nonnull(maplist_get(ml, 2));
	ck_assert_ptr_null(maplist_get(ml, 3));
	maplist_close(&ml);
	ck_assert_ptr_null(ml);

	ml = maplist_open("", &err);
	ck_assert_ptr_nonnull(ml);
	ck_assert_int_eq(maplist_empty(ml), 1);
	ck_assert_int_eq(maplist_lookup(ml, "x", &v), 0);
	maplist_close(&ml);
	ml = maplist_open(" , ", &err);
	ck_assert_int_eq(maplist_empty(ml), 1);
	maplist_close(&ml);

	ck_assert_ptr_null(maplist_open("static:x, btree:/etc/foo", &err));
	ck_assert_ptr_nonnull(strstr(err, "'btree'"));
	free(err);
}
END_TEST

/* Count occurrences of needle in the test log. */
static int
log_count(const char *needle)
{
	char *data = NULL, *p;
	size_t len;
	int n = 0;

	if (file_read_all(logpath, 1 << 20, &data, &len) != 0)
		return 0;
	for (p = data; (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(data);
	return n;
}

/* A table not built yet: the list opens, lookups fail temporarily (and do
 * not fall through to a later table), the warning comes once, and
 * building the file later fixes lookups without reopening the list. */
START_TEST(test_maplist_missing_table)
{
	struct maplist *ml;
	char *err = NULL, *v = NULL, specs[600], later[256];
	int i;

	snprintf(later, sizeof(later), "lmdb:%s/later", tmpdir);
	snprintf(specs, sizeof(specs), "%s, static:fallback", later);
	ml = maplist_open(specs, &err);
	ck_assert_msg(ml != NULL, "maplist_open: %s", err ? err : "?");
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(maplist_lookup(ml, "key", &v), -1);
		ck_assert_ptr_null(v);
	}
	ck_assert_int_eq(log_count("later.lmdb: No such file or directory"), 1);
	build_ok(source("later", "key value\n"));
	ck_assert_int_eq(maplist_lookup(ml, "key", &v), 1);
	ck_assert_str_eq(v, "value");
	free(v);
	ck_assert_int_eq(maplist_lookup(ml, "other", &v), 1);
	ck_assert_str_eq(v, "fallback");
	free(v);
	ck_assert_int_eq(log_count("is available now"), 1);
	maplist_close(&ml);

	/* map_open itself stays strict. */
	snprintf(later, sizeof(later), "lmdb:%s/never", tmpdir);
	ck_assert_ptr_null(map_open(later, &err));
	free(err);
	/* Other errors still fail the list: a file that is not LMDB. */
	source("junk2.lmdb", "not an lmdb file at all, but long enough to be read "
	    "as a meta page by a careless reader.................................\n");
	snprintf(specs, sizeof(specs), "lmdb:%s/junk2", tmpdir);
	err = NULL;
	ck_assert_ptr_null(maplist_open(specs, &err));
	free(err);
}
END_TEST

START_TEST(test_list)
{
	const char *spec = source("l", "b 2\nA 1\nc: 3\n");
	char *data = NULL, *err = NULL;
	size_t len = 0;
	FILE *f;

	build_ok(spec);
	f = open_memstream(&data, &len);
	ck_assert_int_eq(map_list(spec, f, &err), 0);
	fclose(f);
	/* LMDB keeps keys sorted; output is itself a valid source */
	ck_assert_str_eq(data, "a 1\nb 2\nc 3\n");
	free(data);
	f = open_memstream(&data, &len);
	ck_assert_int_eq(map_list("static:x", f, &err), -1);
	fclose(f);
	free(data);
	free(err);
}
END_TEST

static int
count_cb(const char *key, const char *value, void *ctx)
{
	(void)key;
	(void)value;
	return ++*(int *)ctx == 2 ? 42 : 0;
}

START_TEST(test_foreach_stop)
{
	const char *spec = source("f", "a 1\nb 2\nc 3\n");
	struct map *m;
	char *err = NULL;
	int n = 0;

	build_ok(spec);
	m = map_open(spec, &err);
	ck_assert_int_eq(map_foreach(m, count_cb, &n, &err), 42);
	ck_assert_int_eq(n, 2);
	map_close(&m);
}
END_TEST

static Suite *
maps_suite(void)
{
	Suite *s = suite_create("maps");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_build_lookup);
	tcase_add_test(tc, test_umask_mode);
	tcase_add_test(tc, test_reopen_after_rebuild);
	tcase_add_test(tc, test_many_keys);
	tcase_add_loop_test(tc, test_bad_source, 0,
	    (int)(sizeof(bad_sources) / sizeof(bad_sources[0])));
	tcase_add_test(tc, test_long_key);
	tcase_add_test(tc, test_build_errors);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_static);
	tcase_add_test(tc, test_unix_passwd);
	tcase_add_test(tc, test_maplist);
	tcase_add_test(tc, test_maplist_missing_table);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_foreach_stop);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(maps_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
