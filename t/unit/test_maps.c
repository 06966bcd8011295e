/*
 * test_maps - building LMDB tables from text, lookups, reopening after a
 * rebuild, static: and unix:passwd.byname, lists, listing and errors;
 * the text tables (cidr:, regexp:, pcre:, texthash:, inline:) as files:
 * reload on change, a bad line making the table unusable until fixed.
 * Their syntax is tested from bytes in test_maptab.c.
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

/* Write DIR/name and return "type:DIR/name" (static storage). */
static const char *
source_as(const char *type, const char *name, const char *text)
{
	static char spec[256];
	char path[200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	snprintf(spec, sizeof(spec), "%s:%s", type, path);
	return spec;
}

static const char *
source(const char *name, const char *text)
{
	return source_as("lmdb", name, text);
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

/* A text table is re-read when its file changes: new rules answer, the
 * generation moves, an unchanged file is not re-read. */
START_TEST(test_text_reload)
{
	static const char *const types[] = { "regexp", "pcre", "cidr",
	    "texthash" };
	static const char *const v1[] = { "/^a(.*)$/ one$1\n", "/^a(.*)$/ one$1\n",
	    "192.0.2.0/24 one\n", "ab oneb\n" };
	static const char *const v2[] = { "/^a(.*)$/ second:$1\n/^b/ b\n",
	    "/^a(.*)$/ second:$1\n/^b/ b\n", "192.0.2.0/24 second\n",
	    "ab second:b\n" };
	const char *key = _i == 2 ? "192.0.2.7" : "ab";
	char *err = NULL, spec[256];
	struct map *m;
	unsigned long gen;

	snprintf(spec, sizeof(spec), "%s", source_as(types[_i], "t", v1[_i]));
	m = map_open(spec, &err);
	ck_assert_msg(m != NULL, "%s", err ? err : "?");
	expect(m, key, _i == 2 ? "one" : "oneb");
	gen = map_generation(m);
	ck_assert_int_eq(map_refresh(m), 0);
	ck_assert_uint_eq(map_generation(m), gen);
	(void)source_as(types[_i], "t", v2[_i]);
	expect(m, key, _i == 2 ? "second" : "second:b");
	ck_assert_uint_gt(map_generation(m), gen);
	map_close(&m);
}
END_TEST

/* A bad line: map_open names file:line; in a list the table opens but
 * every lookup fails temporarily (no later table answers instead), the
 * problem is logged once, and fixing the file makes it answer again. */
START_TEST(test_text_bad_line)
{
	char *err = NULL, *v = NULL, spec[256], want[300];
	struct maplist *ml;
	struct map *m;

	snprintf(spec, sizeof(spec), "%s", source_as("cidr", "c",
	    "10.0.0.0/8 ten\n"));
	ml = maplist_open(spec, &err);
	ck_assert_ptr_nonnull(ml);
	ck_assert_int_eq(maplist_lookup(ml, "10.1.1.1", &v), 1);
	ck_assert_str_eq(v, "ten");
	free(v);

	(void)source_as("cidr", "c", "10.0.0.0/8 ten\n# x\n10.0.0.1/8 bad\n");
	ck_assert_ptr_null(map_open(spec, &err));
	snprintf(want, sizeof(want), "%s/c:3: non-null host address bits",
	    tmpdir);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	free(err);
	ck_assert_int_eq(maplist_lookup(ml, "10.1.1.1", &v), -1);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(maplist_lookup(ml, "10.1.1.1", &v), -1);
	ck_assert_int_eq(log_count(want), 1);
	ck_assert_int_eq(log_count("lookups fail temporarily until it is fixed"),
	    1);

	(void)source_as("cidr", "c", "10.0.0.0/8 fixed\n");
	ck_assert_int_eq(maplist_lookup(ml, "10.1.1.1", &v), 1);
	ck_assert_str_eq(v, "fixed");
	free(v);
	maplist_close(&ml);

	/* bad from the start: a list still opens, its lookups fail */
	snprintf(spec, sizeof(spec), "%s, static:other",
	    source_as("regexp", "r", "/(a/ x\n"));
	ml = maplist_open(spec, &err);
	ck_assert_msg(ml != NULL, "%s", err ? err : "?");
	ck_assert_int_eq(maplist_lookup(ml, "a", &v), -1);
	maplist_close(&ml);
	m = map_open(spec + 0, &err);   /* a list is not one map */
	ck_assert_ptr_null(m);
	free(err);
}
END_TEST

/* A text table whose file is missing: strict open fails; a list opens,
 * fails lookups temporarily and picks the file up once it exists. */
START_TEST(test_text_missing)
{
	char *err = NULL, *v = NULL, spec[256];
	struct maplist *ml;

	snprintf(spec, sizeof(spec), "pcre:%s/later", tmpdir);
	ck_assert_ptr_null(map_open(spec, &err));
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	free(err);
	ml = maplist_open(spec, &err);
	ck_assert_ptr_nonnull(ml);
	ck_assert_int_eq(maplist_lookup(ml, "x", &v), -1);
	(void)source_as("pcre", "later", "/x/ found\n");
	ck_assert_int_eq(maplist_lookup(ml, "X", &v), 1);
	ck_assert_str_eq(v, "found");
	free(v);
	maplist_close(&ml);
}
END_TEST

/* Nothing to build for text tables: the source is checked, exit 0. */
START_TEST(test_text_build_and_list)
{
	char *err = NULL, spec[256], *out = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(spec, sizeof(spec), "%s", source_as("cidr", "c", "::/0 v6\n"));
	ck_assert_int_eq(map_build(spec, &err), 1);
	ck_assert_ptr_nonnull(strstr(err, "nothing to build"));
	free(err);
	snprintf(spec, sizeof(spec), "%s", source_as("regexp", "r", "/a/\n"));
	ck_assert_int_eq(map_build(spec, &err), -2);
	ck_assert_ptr_nonnull(strstr(err, "/r:1: missing result"));
	free(err);
	snprintf(spec, sizeof(spec), "texthash:%s/none", tmpdir);
	ck_assert_int_eq(map_build(spec, &err), -1);
	free(err);
	ck_assert_int_eq(map_build("inline:{a=b}", &err), 1);
	free(err);

	snprintf(spec, sizeof(spec), "%s", source_as("texthash", "h",
	    "b 2\nA 1\n"));
	f = open_memstream(&out, &len);
	ck_assert_int_eq(map_list(spec, f, &err), 0);
	ck_assert_int_eq(map_list("inline:{ {z = last one}, y=x }", f, &err), 0);
	fclose(f);
	ck_assert_str_eq(out, "a 1\nb 2\ny x\nz last one\n");
	free(out);
	snprintf(spec, sizeof(spec), "%s", source_as("cidr", "c", "::/0 v6\n"));
	ck_assert_int_eq(map_list(spec, stdout, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot be listed"));
	free(err);
}
END_TEST

/* inline: in a list, next to others; and its own errors. */
START_TEST(test_inline_list)
{
	char *err = NULL, *v = NULL;
	struct maplist *ml = maplist_open(
	    "inline:{ a=one, { B = two words } }, static:default", &err);

	ck_assert_msg(ml != NULL, "%s", err ? err : "?");
	ck_assert_int_eq(maplist_count(ml), 2);
	ck_assert_int_eq(maplist_lookup(ml, "b", &v), 1);
	ck_assert_str_eq(v, "two words");
	free(v);
	ck_assert_int_eq(maplist_lookup(ml, "c", &v), 1);
	ck_assert_str_eq(v, "default");
	free(v);
	maplist_close(&ml);
	ck_assert_ptr_null(maplist_open("inline:a=b", &err));
	ck_assert_ptr_nonnull(strstr(err, "expected inline:{"));
	free(err);
	ck_assert_ptr_null(maplist_open("inline:{a}", &err));
	ck_assert_ptr_nonnull(strstr(err, "expected key=value"));
	free(err);
}
END_TEST

/* An address: the whole of it first, then its @domain. */
START_TEST(test_lookup_addr)
{
	char *err = NULL, *v = NULL;
	struct maplist *ml = maplist_open(
	    "inline:{ a@x.test=whole, @x.test=domain, b=local }", &err);

	ck_assert_msg(ml != NULL, "%s", err ? err : "?");
	ck_assert_int_eq(maplist_lookup_addr(ml, "a@x.test", &v), 1);
	ck_assert_str_eq(v, "whole");
	free(v);
	ck_assert_int_eq(maplist_lookup_addr(ml, "c@x.test", &v), 1);
	ck_assert_str_eq(v, "domain");
	free(v);
	ck_assert_int_eq(maplist_lookup_addr(ml, "a@y.test", &v), 0);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(maplist_lookup_addr(ml, "b", &v), 1);   /* no domain */
	ck_assert_str_eq(v, "local");
	free(v);
	maplist_close(&ml);
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
	tcase_add_loop_test(tc, test_text_reload, 0, 4);
	tcase_add_test(tc, test_text_bad_line);
	tcase_add_test(tc, test_text_missing);
	tcase_add_test(tc, test_text_build_and_list);
	tcase_add_test(tc, test_inline_list);
	tcase_add_test(tc, test_lookup_addr);
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
